'use strict';
// A business server written with the official Node SDK, for node/tests/nodejs.rs: our tarsnode
// deploys it as a `tars_nodejs` server and starts it through node-agent (../node-agent, the
// stand-in), which forks this file with TARS_CONFIG naming the config tarsnode generated.
//
// - @tars/config 2.0.5: `new TarsConfig()` (reads TARS_CONFIG; ConfigObj resolved through the
//   locator of tars.application.client) loads FILE (default `hello.conf`, or $BUSINESS_CONFIG_FILE)
//   as text, and writes it byte for byte to <datapath>/<FILE> (tars.application.server.datapath),
//   next to `worker.pid` (this process's pid). A failed load exits 3 (so the node restarts).
// - @tars/rpc 2.0.15: then serves `<App>.<Server>.EchoObj` with the TarsTest.Interop servant
//   (../tars/Interop.js, testkit/tars/Interop.tars): echoString returns its argument; the other
//   methods are not implemented. The server is set up as @tars/rpc's README shows:
//   createServer(), initialize(TARS_CONFIG, addServant), start().
// - Exits on SIGTERM, and when node-agent goes away (the IPC channel closes).
//
// The package may be copied elsewhere (the test copies it into the server's bin/ directory):
// `tars/` next to this file (a symlink to ../tars) is used when present.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const fs = require('fs');
const path = require('path');
const TarsRpc = require('@tars/rpc');
const TarsConfig = require('@tars/config');
const { Config } = require('@tars/utils');

const local = path.join(__dirname, 'tars', 'Interop.js');
const { TarsTest } = require(fs.existsSync(local) ? local : path.join(__dirname, '..', 'tars', 'Interop.js'));

const FILE = process.env.BUSINESS_CONFIG_FILE || 'hello.conf';

function log(msg) {
    process.stdout.write(`[business ${process.pid}] ${msg}\n`);
}

function fail(code, msg) {
    process.stderr.write(`[business ${process.pid}] ${msg}\n`);
    process.exit(code);
}

if (!process.env.TARS_CONFIG) fail(2, 'TARS_CONFIG is not set');
process.on('disconnect', () => {
    log('node-agent went away; exiting');
    process.exit(0);
});

class Echo extends TarsTest.InteropImp {}
Echo.prototype.echoString = function (current, s) {
    current.sendResponse(s);
};

async function main() {
    const conf = new Config();
    conf.parseFile(process.env.TARS_CONFIG);
    const dataDir = conf.get('tars.application.server.datapath', '') || __dirname;
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(path.join(dataDir, 'worker.pid'), String(process.pid));

    const config = new TarsConfig();
    let text;
    try {
        text = await config.loadConfig(FILE, { format: config.FORMAT.TEXT });
    } catch (e) {
        fail(3, `loadConfig(${FILE}) failed: ${JSON.stringify(e && e.response ? e.response.error : String(e))}`);
    }
    const tmp = path.join(dataDir, FILE + '.tmp');
    fs.writeFileSync(tmp, text, 'utf8');
    fs.renameSync(tmp, path.join(dataDir, FILE));
    log(`loaded ${FILE} (${Buffer.byteLength(text, 'utf8')} bytes) into ${dataDir}`);

    const svr = TarsRpc.server.createServer();
    svr.initialize(process.env.TARS_CONFIG, (server) => {
        server.addServant(Echo, `${server.Application}.${server.ServerName}.EchoObj`);
    });
    await svr.start();
    log(`serving ${svr.Application}.${svr.ServerName}.EchoObj`);
    process.on('SIGTERM', () => {
        log('SIGTERM: stopping');
        svr.stop();
        process.exit(0);
    });
}

main().catch((e) => fail(1, e && e.stack ? e.stack : String(e)));
