'use strict';
// Calls TarsTest.InteropServer.InteropObj by name only (no endpoint), so that @tars/rpc
// resolves it through the registry given as its locator; for registry/tests/node_interop.rs.
//
//   node interop/rpc_resolve.js '<options JSON>'
//
// options: {"calls": N,                     how many echoString calls, one after the other
//           "locator": "...",               communicator property `locator` (optional)
//           "setdivision": "name.area.group", "enableset": "y"   properties (optional; set
//                                           before enableset, since setting enableset checks
//                                           the division)
//           "setName": "name.area.group"}   stringToProxy's third argument (optional)
// Without "locator", the client config comes from the file named by TARS_CONFIG
// (tars.application.client.locator, tars.application.enableset, tars.application.setdivision),
// which @tars/rpc reads itself.
//
// The test servers answer echoString with their own label, so the output says who answered:
//   {"answers": {"<label>": count, ...}, "errors": [...], "registryCalls": [[method, args...], ...]}
// registryCalls are the @tars/registry client calls @tars/rpc made (recorded by wrapping the
// client's methods, which still run unchanged). Exit 0 when every call was answered, 1 if not.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const Registry = require('@tars/registry');
const TarsRpc = require('@tars/rpc');
const { TarsTest } = require('./tars/InteropProxy.js');

const SERVANT = 'TarsTest.InteropServer.InteropObj';

function fail(msg) {
    process.stderr.write('rpc_resolve.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 3) fail("usage: node rpc_resolve.js '<options JSON>'");
let opts;
try {
    opts = JSON.parse(process.argv[2]);
} catch (e) {
    fail('bad options JSON: ' + e.message);
}
if (!(opts.calls > 0)) fail('options need "calls" > 0');
if (opts.locator === undefined && process.env.TARS_CONFIG === undefined) fail('no locator and no TARS_CONFIG');

// Every @tars/registry client (EndpointManager makes its own with Registry.New()) shares this
// prototype: record each lookup, then do it.
const registryCalls = [];
const proto = Object.getPrototypeOf(Registry);
for (const m of ['findObjectById', 'findObjectById4Any', 'findObjectById4All', 'findObjectByIdInSameGroup',
    'findObjectByIdInSameStation', 'findObjectByIdInSameSet']) {
    const original = proto[m];
    proto[m] = function (...args) {
        registryCalls.push([m, ...args]);
        return original.apply(this, args);
    };
}

const comm = TarsRpc.client;
if (opts.locator !== undefined) comm.setProperty('locator', opts.locator);
if (opts.setdivision !== undefined) comm.setProperty('setdivision', opts.setdivision);
if (opts.enableset !== undefined) comm.setProperty('enableset', opts.enableset);

const describe = (e) => (e && e.response && e.response.error ? e.response.error : String(e && e.stack ? e.stack : e));

async function main() {
    const proxy = opts.setName === undefined
        ? comm.stringToProxy(TarsTest.InteropProxy, SERVANT)
        : comm.stringToProxy(TarsTest.InteropProxy, SERVANT, opts.setName);
    proxy.setTimeout(10000);
    const answers = {};
    const errors = [];
    for (let i = 0; i < opts.calls; i++) {
        try {
            const r = await proxy.echoString('who');
            answers[r.response.return] = (answers[r.response.return] || 0) + 1;
        } catch (e) {
            errors.push(describe(e));
        }
    }
    process.stdout.write(JSON.stringify({ answers, errors, registryCalls }) + '\n');
    process.exit(errors.length === 0 ? 0 : 1);
}

setTimeout(() => fail('calls still running after 60 s'), 60000).unref();
main().catch((e) => fail(String(e && e.stack ? e.stack : e)));
