'use strict';
// Sends notices with the official @tars/notify client (pinned in package.json), as a Node.js
// TARS server does, for notify/tests/notify.rs.
//
//   node interop/notify_client.js <TARS config file> <TARS config file with a set>
//
// Each config names app, server and `notify` (the NotifyObj endpoint) in
// <tars><application><server>; the second also has enableset=y and a setdivision.
// With the first: report() of each tag, with and without a thread id, and notify() at each
// level; then, with the second (init() again with its parsed config), one report in the set.
// Every call's reply is awaited. Prints one JSON object:
//   {"pid": <process.pid, the default thread id>, "sent": <calls>, "ok": <answered calls>,
//    "errors": [<messages of failed calls>]}
// Exit 1 with the error on stderr.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const Notify = require('@tars/notify');
const NotifyF = require('@tars/notify/NotifyFProxy');
const TarsConfigure = require('@tars/utils').Config;

function fail(msg) {
    process.stderr.write('notify_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 4) fail('usage: node notify_client.js <TARS config file> <TARS config file with a set>');

// The package drops each call's promise; keep them to wait for every answer.
const calls = [];
const proto = NotifyF.tars.NotifyProxy.prototype;
const original = proto.reportNotifyInfo;
proto.reportNotifyInfo = function () {
    const p = original.apply(this, arguments);
    calls.push(p);
    return p;
};

Notify.init(process.argv[2]);
Notify.report('[alarm] server down');
Notify.report('restart [fail] exit 134', 'thread-7');
Notify.report('plain report');
Notify.report('[warn] then [error] both');
Notify.notify('disk almost full', Notify.LEVEL.NOTIFYWARN);
Notify.notify('[alarm] in a notify', Notify.LEVEL.NOTIFYERROR, '42');
Notify.notify('all good');

const withSet = new TarsConfigure();
withSet.parseFile(process.argv[3]);
Notify.init(withSet);
Notify.report('in the set [warn]');

(async () => {
    const results = await Promise.allSettled(calls);
    const errors = results
        .filter((r) => r.status === 'rejected')
        .map((r) => (r.reason && r.reason.response ? JSON.stringify(r.reason.response.error) : String(r.reason)));
    const out = { pid: process.pid, sent: calls.length, ok: results.length - errors.length, errors };
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
})().catch((e) => fail(e && e.stack ? e.stack : JSON.stringify(e)));
