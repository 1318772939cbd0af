'use strict';
// Checks ./NodeFProxy.js against protocol/tars/NodeF.tars as ../tars/FrameworkIF.js carries it
// (the IDL text line by line, encoded with TarsCpp's optional-member rules); run by
// node/tests/nodejs.rs:
//
//   node interop/node-agent/check_proxy.js
//
// For each ServerF method and a few argument sets, the request body the proxy hands to
// @tars/rpc's tars_invoke is compared with FrameworkIF's encoding of the same values, and
// decoded back with FrameworkIF. The only allowed difference: the proxy writes the optional
// `adapter` even when empty (as generated @tars/stream code does) where TarsCpp skips it; both
// decode to the same value. Prints `OK <n>` and exits 0, or prints each mismatch and exits 1.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const assert = require('assert');
const TarsStream = require('@tars/stream');
const { INTERFACES } = require('../tars/FrameworkIF.js');
const { tars } = require('./NodeFProxy.js');

const bodies = {};
const proxy = new tars.ServerFProxy();
proxy._worker = {
    tars_invoke(func, buf) {
        bodies[func] = buf.toNodeBuffer();
        return new Promise(() => {});
    },
};

const hex = (b) => Buffer.from(b).toString('hex');
let checked = 0;
const failures = [];
const cases = [
    { application: 'App', serverName: 'Srv', pid: 123456, adapter: '' },
    { application: 'App', serverName: 'Srv', pid: 1, adapter: 'App.Srv.EchoObjAdapter' },
    { application: 'Té', serverName: 'S', pid: 2147483647, adapter: 'AdminAdapter' },
];
for (const c of cases) {
    const si = new tars.ServerInfo();
    Object.assign(si, c);
    proxy.keepAlive(si);
    proxy.keepActiving(si);
    proxy.reportVersion(c.application, c.serverName, 'v ' + c.pid);
    proxy.getLatestKeepAliveTime();
    for (const m of INTERFACES.ServerF) {
        const values = {
            keepAlive: [c],
            keepActiving: [c],
            reportVersion: [c.application, c.serverName, 'v ' + c.pid],
            getLatestKeepAliveTime: [],
        }[m.name];
        assert(values, 'ServerF method not covered: ' + m.name);
        const os = new TarsStream.TarsOutputStream();
        m.ins.forEach((a, i) => a.type.write(os, a.tag, values[i]));
        const ref = os.getBinBuffer().toNodeBuffer();
        const ours = bodies[m.name];
        const is = new TarsStream.TarsInputStream(new TarsStream.BinBuffer(ours));
        const back = m.ins.map((a) => a.type.read(is, a.tag, true));
        checked++;
        let same = hex(ours) === hex(ref);
        if (!same && c.adapter === '' && m.ins.length === 1 && m.ins[0].type === INTERFACES.ServerF[0].ins[0].type) {
            // ServerInfo with an empty adapter: ours carries tag 3 = "" (36 00) before the
            // struct end; TarsCpp leaves it out.
            same = hex(ours) === hex(ref).replace(/0b$/, '36000b');
        }
        try {
            assert.deepStrictEqual(back, values);
        } catch (e) {
            same = false;
        }
        if (!same) failures.push(`${m.name}(${JSON.stringify(values)}): ours ${hex(ours)}, IDL ${hex(ref)}, decoded ${JSON.stringify(back)}`);
    }
}
if (failures.length > 0) {
    for (const f of failures) process.stdout.write('MISMATCH ' + f + '\n');
    process.exit(1);
}
process.stdout.write('OK ' + checked + '\n');
