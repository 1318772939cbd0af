'use strict';
// An @tars/rpc 2.0.15 server for TarsTest.Interop (testkit/tars/Interop.tars), servant
// TarsTest.InteropServer.InteropObj, for the tars-rs interop tests (Rust client -> Node server).
//
//   npm ci --prefix interop            # once
//   node interop/rpc_server.js <port>  # port 0 picks a free one
//
// Listens on 127.0.0.1 (tars protocol, versions 1, 2 and 3), prints exactly one line
// `READY <port>` to stdout once listening, then serves until SIGTERM / SIGINT or until its
// stdin reaches end of file: keep a pipe to its stdin open for as long as it should run (a
// test that dies closes the pipe and the server goes with it; stdin from /dev/null stops it at
// once). Diagnostics go to stderr; exit status 2 on bad usage or a listen error.

// @tars/monitor and @tars/registry read require('@tars/rpc').error while @tars/rpc is still
// loading (a require cycle); Node warns about it on every start. Keep stderr for real problems.
process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const TarsRpc = require('@tars/rpc');
const TarsStream = require('@tars/stream');
const { TarsTest } = require('./tars/Interop.js');

const SERVANT = 'TarsTest.InteropServer.InteropObj';

function die(msg) {
    process.stderr.write('rpc_server.js: ' + msg + '\n');
    process.exit(2);
}

const portArg = process.argv[2];
if (process.argv.length !== 3 || !/^\d+$/.test(portArg) || +portArg > 65535) {
    die('usage: node interop/rpc_server.js <port>   (0 = pick a free port)');
}

// ------------------------------------------------------------------------------ the servant

// fire() state: one servant instance per adapter, but keep it module-wide anyway.
let firedCount = 0;
let firedLast = '';

const Imp = TarsTest.InteropImp.prototype;

// string echoString(string s): returns s unchanged.
Imp.echoString = function (current, s) {
    current.sendResponse(s);
};

// long addInts(int a, long b): returns a + b (JS numbers: exact within +-2^53).
Imp.addInts = function (current, a, b) {
    current.sendResponse(a + b);
};

// int roundTrip(Payload p, out Payload echoed): echoed = p with id + 1 and "seen" appended to
// words; returns the number of values.
Imp.roundTrip = function (current, p, _echoed) {
    const echoed = new TarsTest.Payload();
    echoed.id = p.id + 1;
    echoed.name = p.name;
    p.values.forEach((v) => { echoed.values.push(v); });
    p.tags.forEach((k, v) => { echoed.tags.insert(k, v); });
    p.words.forEach((w) => { echoed.words.push(w); });
    echoed.words.push('seen');
    p.counts.forEach((k, v) => { echoed.counts.insert(k, v); });
    echoed.ratio = p.ratio;
    echoed.flag = p.flag;
    current.sendResponse(p.values.length, echoed);
};

// int splitName(string full, out string first, out string last): splits at the first space;
// returns the length of full.
Imp.splitName = function (current, full, _first, _last) {
    const i = full.indexOf(' ');
    const first = i < 0 ? full : full.slice(0, i);
    const last = i < 0 ? '' : full.slice(i + 1);
    // "length": the UTF-8 byte length, which is what C++/Rust servants count.
    current.sendResponse(Buffer.byteLength(full, 'utf8'), first, last);
};

// int fail(int code): fails with framework code `code` and message "fail <code>".
Imp.fail = function (current, code) {
    current.sendErrorResponse(code, 'fail ' + code);
};

// void fire(string note): oneway; records note. The framework drops the (empty) reply when
// the request is oneway (cPacketType 1) and sends it otherwise.
Imp.fire = function (current, note) {
    firedCount += 1;
    firedLast = note;
    current.sendResponse();
};

// int lastFired(out string note): how many notes fire() has recorded, and the last one.
Imp.lastFired = function (current, _note) {
    current.sendResponse(firedCount, firedLast);
};

// vector<byte> bigBlob(int size): size bytes, byte i = i % 251.
Imp.bigBlob = function (current, size) {
    const n = Math.max(0, size | 0);
    const buf = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) buf[i] = i % 251;
    current.sendResponse(new TarsStream.BinBuffer(buf));
};

// int slowEcho(int v, int delayMs, out int echoed): waits delayMs, returns v, echoed = v * 2.
Imp.slowEcho = function (current, v, delayMs, _echoed) {
    setTimeout(() => current.sendResponse(v, v * 2), Math.max(0, delayMs | 0));
};

// ------------------------------------------------------------------------------- the server

const server = TarsRpc.server.createServer();
const option = new TarsRpc.server.BindAdapterOption();
option.endpoint = 'tcp -h 127.0.0.1 -p ' + portArg + ' -t 60000';
option.name = SERVANT + 'Adapter';
option.servant = SERVANT;
option.handleImp = TarsTest.InteropImp;
server.start(option);

// @tars/rpc does not report the bound port; its listener is a plain net.Server
// (HeroServer._adapters[i]._netthread._listener, see core/server/NetThread.js).
const listener = server._adapters[0]._netthread._listener;
listener.on('error', (e) => die('listen failed: ' + e.message));
listener.on('listening', () => {
    process.stdout.write('READY ' + listener.address().port + '\n');
});

let stopping = false;
function stop(why) {
    if (stopping) return;
    stopping = true;
    process.stderr.write('rpc_server.js: stopping (' + why + ')\n');
    try { server.stop(); } catch (e) { /* already closed */ }
    process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin error'));
process.stdin.resume();
