'use strict';
// Resolves a servant through a registry with the official @tars/registry client, then calls
// its echoString (TarsTest.Interop) by name through @tars/rpc with that registry as the
// locator; for node/tests/nodejs.rs.
//
//   node interop/node_business/client.js '<locator>' '<object>' '<text>'
//
// Prints one line per endpoint findObjectById4Any returned, `active <host>:<port>` and
// `inactive <host>:<port>`, then `echo <answer as JSON string>`. Exit 1 (error on stderr) when
// the lookup or the call fails.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const Registry = require('@tars/registry');
const TarsRpc = require('@tars/rpc');
const { TarsTest } = require('../tars/InteropProxy.js');

function fail(msg) {
    process.stderr.write('client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 5) fail("usage: node client.js '<locator>' '<object>' '<text>'");
const [locator, obj, text] = process.argv.slice(2);
const errorOf = (e) => JSON.stringify(e && e.response && e.response.error ? e.response.error : String(e && e.stack ? e.stack : e));

(async () => {
    const registry = Registry.New();
    registry.setLocator(locator);
    let r;
    try {
        r = await registry.findObjectById4Any(obj);
    } catch (e) {
        fail('findObjectById4Any(' + obj + '): ' + errorOf(e));
    }
    const args = r.response.arguments;
    for (const e of args.activeEp.value) process.stdout.write(`active ${e.host}:${e.port}\n`);
    for (const e of args.inactiveEp.value) process.stdout.write(`inactive ${e.host}:${e.port}\n`);

    TarsRpc.client.setProperty('locator', locator);
    const proxy = TarsRpc.client.stringToProxy(TarsTest.InteropProxy, obj);
    proxy.setTimeout(10000);
    let answer;
    try {
        answer = await proxy.echoString(text);
    } catch (e) {
        fail('echoString: ' + errorOf(e));
    }
    process.stdout.write('echo ' + JSON.stringify(answer.response.return) + '\n');
    process.exit(0);
})().catch((e) => fail(errorOf(e)));
