'use strict';
// An @tars/rpc 2.0.15 client for TarsTest.Interop (testkit/tars/Interop.tars), for the tars-rs
// interop tests (Node client -> Rust server).
//
//   npm ci --prefix interop                                # once
//   node interop/rpc_client.js <host> <port> <version>     # version 1 (tars) or 3 (tup); 2 works too
//
// Calls TarsTest.InteropServer.InteropObj@tcp -h <host> -p <port> -t 60000 with a 10 s call
// timeout, exercising every method of the interface (plus the framework's tars_ping), checks
// each result itself and prints one JSON line per check to stdout:
//   {"check":"<name>","ok":true|false,"detail":...}
// then a last line `DONE <passed> <failed>`. Exit status 0 only if every check passed (1 if
// one failed, 2 on bad usage).

// @tars/monitor and @tars/registry read require('@tars/rpc').error while @tars/rpc is still
// loading (a require cycle); Node warns about it on every start. Keep stderr for real problems.
process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const net = require('net');
const TarsRpc = require('@tars/rpc');
const { TarsTest } = require('./tars/InteropProxy.js');

const SERVANT = 'TarsTest.InteropServer.InteropObj';
const CALL_TIMEOUT_MS = 10000;
const WATCHDOG_MS = 120000;

function usage(msg) {
    process.stderr.write('rpc_client.js: ' + msg + '\n' +
        'usage: node interop/rpc_client.js <host> <port> <version: 1 (tars) | 3 (tup)>\n');
    process.exit(2);
}

const [host, portArg, versionArg] = process.argv.slice(2);
if (process.argv.length !== 5) usage('expected 3 arguments');
if (!/^\d+$/.test(portArg) || +portArg < 1 || +portArg > 65535) usage('bad port ' + portArg);
if (!['1', '2', '3'].includes(versionArg)) usage('bad version ' + versionArg);
const version = +versionArg;

const proxy = TarsRpc.client.stringToProxy(TarsTest.InteropProxy,
    SERVANT + '@tcp -h ' + host + ' -p ' + portArg + ' -t 60000');
proxy.setTimeout(CALL_TIMEOUT_MS);
proxy.setVersion(version); // before the first call: the connection's reply parser is chosen then

// ---------------------------------------------------------------------------------- harness

let passed = 0;
let failed = 0;
let finished = false;

function report(check, ok, detail) {
    if (finished) return;
    if (ok) passed += 1; else failed += 1;
    process.stdout.write(JSON.stringify({ check, ok, detail: detail === undefined ? null : detail }) + '\n');
}

function finish() {
    if (finished) return;
    finished = true;
    process.stdout.write('DONE ' + passed + ' ' + failed + '\n');
    process.exit(failed === 0 ? 0 : 1);
}

// What a rejected call tells: the framework code and message (and, for TUP replies, the
// STATUS_RESULT_DESC @tars/rpc does not copy into the message).
function describeError(e) {
    if (!e || !e.response || !e.response.error) {
        return { exception: String(e && e.stack ? e.stack : e) };
    }
    const d = { name: e.name, code: e.response.error.code, message: e.response.error.message };
    const pkt = e.rpcResponse;
    if (pkt && pkt.status && typeof pkt.status.get === 'function') {
        const desc = pkt.status.get('STATUS_RESULT_DESC');
        if (desc !== undefined) d.statusResultDesc = desc;
    }
    return d;
}

// Runs one check: fn returns {ok, detail} or throws (then the check fails with the error).
async function check(name, fn) {
    try {
        const { ok, detail } = await fn();
        report(name, !!ok, detail);
    } catch (e) {
        report(name, false, { error: describeError(e) });
    }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const eq = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function listOf(list) { return list.value.slice(); }
function mapOf(map) {
    const o = {};
    map.forEach((k, v) => { o[k] = v; });
    return o;
}
function payloadObject(p) {
    return {
        id: p.id, name: p.name, values: listOf(p.values), tags: mapOf(p.tags), words: listOf(p.words),
        counts: mapOf(p.counts), ratio: p.ratio, flag: p.flag,
    };
}

// -------------------------------------------------------------------------------- the checks

// A plain TCP connect first, so that a server that is not there fails in a second rather than
// after every call's 10 s timeout.
function probe() {
    return new Promise((resolve) => {
        const sock = net.connect({ host, port: +portArg });
        const done = (err) => { sock.destroy(); resolve(err); };
        sock.setTimeout(5000, () => done(new Error('connect timed out after 5000 ms')));
        sock.once('connect', () => done(null));
        sock.once('error', (e) => done(e));
    });
}

async function main() {
    const err = await probe();
    if (err) {
        report('connect', false, { endpoint: host + ':' + portArg, error: err.message });
        return;
    }

    await check('tars_ping', async () => {
        await proxy.tars_ping();
        return { ok: true };
    });

    const strings = {
        echoString_ascii: 'hello, tars',
        echoString_utf8: 'héllo wörld ✓ 你好 🚀',
        echoString_empty: '',
        echoString_long: 'x'.repeat(300) + 'é', // > 255 bytes: a STRING4 head
    };
    for (const [name, s] of Object.entries(strings)) {
        await check(name, async () => {
            const r = await proxy.echoString(s);
            return { ok: r.response.return === s, detail: { sent: s.length > 40 ? s.length + ' chars' : s, got: r.response.return.length > 40 ? r.response.return.length + ' chars' : r.response.return } };
        });
    }

    // [a (int), b (long)]: sums beyond 32 bits, negative, mixed; all within +-2^53 (JS numbers).
    const sums = [
        [1, 2],
        [-5, -7],
        [2147483647, 1],
        [-2147483648, -5000000000],
        [-1, 4294967296],
        [7, 9007199254740000],
        [-100, -9007199254740000],
    ];
    for (const [a, b] of sums) {
        await check('addInts(' + a + ',' + b + ')', async () => {
            const r = await proxy.addInts(a, b);
            return { ok: r.response.return === a + b, detail: { expected: a + b, got: r.response.return } };
        });
    }

    await check('roundTrip', async () => {
        const p = new TarsTest.Payload();
        p.id = 41;
        p.name = 'payload ✓';
        for (const v of [1, -2, 300, -70000, 2147483647, -2147483648]) p.values.push(v);
        p.tags.insert('alpha', '1');
        p.tags.insert('beta', 'two');
        p.tags.insert('ключ', 'значение');
        for (const w of ['x', 'y z', '']) p.words.push(w);
        p.counts.insert('small', 5);
        p.counts.insert('big', 5000000000);
        p.counts.insert('neg', -7000000000);
        p.ratio = 0.3125;
        p.flag = true;
        const sent = payloadObject(p);
        const r = await proxy.roundTrip(p);
        const got = payloadObject(r.response.arguments.echoed);
        const expected = Object.assign({}, sent, { id: sent.id + 1, words: sent.words.concat(['seen']) });
        // maps compare by content, not order
        const norm = (o) => Object.assign({}, o, {
            tags: Object.entries(o.tags).sort(), counts: Object.entries(o.counts).sort(),
        });
        const ok = r.response.return === sent.values.length && eq(norm(got), norm(expected));
        return { ok, detail: { return: r.response.return, echoed: got, expected } };
    });

    await check('splitName', async () => {
        const full = 'Grace Brewster Hopper';
        const r = await proxy.splitName(full);
        const got = { return: r.response.return, first: r.response.arguments.first, last: r.response.arguments.last };
        const expected = { return: full.length, first: 'Grace', last: 'Brewster Hopper' };
        return { ok: eq(got, expected), detail: got };
    });

    for (const code of [-13, -99]) {
        await check('fail(' + code + ')', async () => {
            let r;
            try {
                r = await proxy.fail(code);
            } catch (e) {
                const d = describeError(e);
                // Version 1: the ResponsePacket's iRet and sResultDesc. TUP: @tars/rpc takes the
                // code from status STATUS_RESULT_CODE and leaves the message empty, so the
                // description is checked in status STATUS_RESULT_DESC.
                const desc = version === 1 ? d.message : d.statusResultDesc;
                return { ok: d.name === 'RPC_ERROR' && d.code === code && desc === 'fail ' + code, detail: d };
            }
            return { ok: false, detail: { resolved: r.response } };
        });
    }

    // fire() is oneway: @tars/rpc sends it with cPacketType 1 and rejects the promise at once
    // with "one way call do not need response"; then lastFired must show it.
    let before = null;
    try {
        const r = await proxy.lastFired();
        before = r.response.return;
    } catch (e) { /* reported by the lastFired check below */ }
    await check('fire(oneway)', async () => {
        try {
            const r = await proxy.fire('hello', { packetType: 1 });
            return { ok: false, detail: { resolved: r.response } };
        } catch (e) {
            const d = describeError(e);
            return { ok: d.message === 'one way call do not need response', detail: d };
        }
    });
    await check('lastFired', async () => {
        let last = null;
        const deadline = Date.now() + 3000;
        while (Date.now() < deadline) {
            const r = await proxy.lastFired();
            last = { count: r.response.return, note: r.response.arguments.note, countBefore: before };
            if (last.count >= 1 && (before === null || last.count > before) && last.note === 'hello') {
                return { ok: true, detail: last };
            }
            await sleep(50);
        }
        return { ok: false, detail: last };
    });

    await check('bigBlob(70000)', async () => {
        const r = await proxy.bigBlob(70000);
        const buf = r.response.return.toNodeBuffer();
        let bad = -1;
        for (let i = 0; i < buf.length; i++) {
            if (buf[i] !== i % 251) { bad = i; break; }
        }
        return { ok: buf.length === 70000 && bad < 0, detail: { length: buf.length, firstBadByte: bad < 0 ? null : bad } };
    });

    await check('slowEcho x50 concurrent', async () => {
        const started = Date.now();
        const results = await Promise.all(Array.from({ length: 50 }, (_, i) =>
            proxy.slowEcho(i, 20).then(
                (r) => ({ i, ret: r.response.return, echoed: r.response.arguments.echoed }),
                (e) => ({ i, error: describeError(e) }))));
        const wrong = results.filter((x) => x.ret !== x.i || x.echoed !== 2 * x.i);
        return { ok: wrong.length === 0, detail: { calls: results.length, wrong: wrong.slice(0, 5), elapsedMs: Date.now() - started } };
    });
}

// A malformed reply can make @tars/rpc throw inside its socket handler (tars-client.js feed()
// has no try/catch): report it as a failed check instead of dying without a DONE line.
process.on('uncaughtException', (e) => {
    report('uncaught exception', false, { exception: String(e && e.stack ? e.stack : e) });
    finish();
});
setTimeout(() => {
    report('watchdog', false, { message: 'checks still running after ' + WATCHDOG_MS + ' ms' });
    finish();
}, WATCHDOG_MS).unref();

main().then(finish, (e) => {
    report('harness', false, { exception: String(e && e.stack ? e.stack : e) });
    finish();
});
