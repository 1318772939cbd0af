'use strict';
// Makes a planned set of calls with the official @tars/rpc client, configured as a deployed
// Node server's client (`<client> stat=… modulename=…`), so that its built-in call statistics
// (AdapterProxy -> @tars/monitor) go to the tarsstat named in the config. For
// stat/tests/node_monitor.rs, which makes the same calls with our SDK and compares the rows.
//
//   node interop/stat_client.js <config file> <object> '<plan JSON>'
//
// <plan JSON>: {"fast": N, "slow": N, "slowMs": ms, "timeouts": N, "timeoutMs": ms,
//               "sleepMs": ms, "fails": N, "failCode": code}
// - `fast` echoString calls, `slow` slowEcho(i, slowMs) calls (3 s deadline);
// - `timeouts` slowEcho(i, sleepMs) calls with a `timeoutMs` deadline;
// - `fails` fail(failCode) calls.
// Prints `DONE <ok> <timeouts> <failed>` once the statistics timer has fired and the oneway
// report had time to leave; exit 1 with the error on stderr.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const TarsRpc = require('@tars/rpc');
const Monitor = require('@tars/monitor');
const { TarsTest } = require('./tars/InteropProxy.js');

// The package reports only when this is set (its "production environment" switch).
process.env.TARS_MONITOR = '1';
// Below the package's 10 s minimum, set directly so the test does not wait 10 s.
const INTERVAL_MS = 200;
const DRAIN_MS = 1500;
const WATCHDOG_MS = 60000;

function fail(msg) {
    process.stderr.write('stat_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 5) fail("usage: node stat_client.js <config file> <object> '<plan JSON>'");
const [configFile, object, planText] = process.argv.slice(2);
let plan;
try {
    plan = JSON.parse(planText);
} catch (e) {
    fail('bad plan JSON: ' + e.message);
}

TarsRpc.client.initialize(configFile);
Monitor.stat.reportInterval = INTERVAL_MS;
const proxy = TarsRpc.client.stringToProxy(TarsTest.InteropProxy, object);

setTimeout(() => fail('not done within ' + WATCHDOG_MS + ' ms'), WATCHDOG_MS).unref();

async function main() {
    let ok = 0, timeouts = 0, failed = 0;
    proxy.setTimeout(3000);
    for (let i = 0; i < plan.fast; i++) {
        const r = await proxy.echoString('call ' + i);
        if (r.response.return === 'call ' + i) ok += 1;
    }
    for (let i = 0; i < plan.slow; i++) {
        const r = await proxy.slowEcho(i, plan.slowMs);
        if (r.response.return === i) ok += 1;
    }
    proxy.setTimeout(plan.timeoutMs);
    for (let i = 0; i < plan.timeouts; i++) {
        try {
            await proxy.slowEcho(i, plan.sleepMs);
            fail('slowEcho ' + plan.sleepMs + ' ms answered within ' + plan.timeoutMs + ' ms');
        } catch (e) {
            if (e && e.response && e.response.error && e.response.error.code === TarsRpc.error.CLIENT.REQUEST_TIMEOUT) {
                timeouts += 1;
            } else {
                throw e;
            }
        }
    }
    proxy.setTimeout(3000);
    for (let i = 0; i < plan.fails; i++) {
        try {
            await proxy.fail(plan.failCode);
        } catch (e) {
            if (e && e.response && e.response.error && e.response.error.code === plan.failCode) failed += 1;
            else throw e;
        }
    }
    // The statistics timer starts at the first call's report; wait past it.
    setTimeout(() => {
        process.stdout.write('DONE ' + ok + ' ' + timeouts + ' ' + failed + '\n');
        process.exit(0);
    }, INTERVAL_MS + DRAIN_MS);
}

main().catch((e) => fail(String(e && e.stack ? e.stack : JSON.stringify(e))));
