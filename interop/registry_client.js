'use strict';
// Queries a TARS registry's QueryObj with the official @tars/registry client (pinned in
// package.json), for registry/tests/node_interop.rs.
//
//   node interop/registry_client.js '<locator>' '<queries JSON>'
//
// <locator>: e.g. tars.tarsregistry.QueryObj@tcp -h 127.0.0.1 -p 17890 -t 60000
// <queries JSON>: [{"method": "findObjectByIdInSameSet", "id": "A.S.Obj", "arg": "sz.a.1"}, ...]
//   method: findObjectById | findObjectById4Any | findObjectById4All | findObjectByIdInSameGroup
//           | findObjectByIdInSameStation (arg: station) | findObjectByIdInSameSet (arg: set id)
//
// Prints one JSON line per query, in order:
//   {"method", "id", "arg", "ret", "active": [...], "inactive": [...]}
// each endpoint as "host:port", plus " set=<setId>" when it has one and " udp" when not TCP.
// findObjectById has no return code and no inactive list: "ret" is null, "inactive" is [].
// Exit 0 when every query got an answer; 1 (with the error on stderr) when one failed.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const Registry = require('@tars/registry');

const METHODS = ['findObjectById', 'findObjectById4Any', 'findObjectById4All', 'findObjectByIdInSameGroup',
    'findObjectByIdInSameStation', 'findObjectByIdInSameSet'];

function fail(msg) {
    process.stderr.write('registry_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 4) fail("usage: node registry_client.js '<locator>' '<queries JSON>'");
const locator = process.argv[2];
let queries;
try {
    queries = JSON.parse(process.argv[3]);
} catch (e) {
    fail('bad queries JSON: ' + e.message);
}
for (const q of queries) {
    if (!METHODS.includes(q.method)) fail('unknown method ' + JSON.stringify(q.method));
}

const show = (list) => list.value.map((e) =>
    e.host + ':' + e.port + (e.setId ? ' set=' + e.setId : '') + (e.istcp ? '' : ' udp'));

async function main() {
    const registry = Registry.New();
    registry.setLocator(locator);
    for (const q of queries) {
        const withArg = q.method === 'findObjectByIdInSameStation' || q.method === 'findObjectByIdInSameSet';
        let r;
        try {
            r = await (withArg ? registry[q.method](q.id, q.arg) : registry[q.method](q.id));
        } catch (e) {
            const err = e && e.response && e.response.error ? e.response.error : String(e && e.stack ? e.stack : e);
            fail(q.method + '(' + q.id + (withArg ? ', ' + q.arg : '') + ') failed: ' + JSON.stringify(err));
        }
        const out = { method: q.method, id: q.id, arg: withArg ? q.arg : null };
        if (q.method === 'findObjectById') {
            Object.assign(out, { ret: null, active: show(r.response.return), inactive: [] });
        } else {
            Object.assign(out, {
                ret: r.response.return,
                active: show(r.response.arguments.activeEp),
                inactive: show(r.response.arguments.inactiveEp),
            });
        }
        process.stdout.write(JSON.stringify(out) + '\n');
    }
}

setTimeout(() => fail('queries still running after 60 s'), 60000).unref();
main().then(() => process.exit(0), (e) => fail(String(e && e.stack ? e.stack : e)));
