'use strict';
// Loads config files from a ConfigObj with the official @tars/config client (pinned in
// package.json), as a Node.js TARS server does, for config/tests/config.rs.
//
//   node interop/config_client.js <TARS config file> <app file name>
//
// The TARS config file names app, server, localip and `config` (the ConfigObj endpoint) in
// <tars><application><server>. Prints one JSON object:
//   {"list": <loadList()>, "all": [{filename, content}] (loadConfig() of every listed file, as
//    text), "server": <loadServerConfig() as text>, "serverParsed": <the same, parsed by the
//    package's own config parser>, "app": <loadConfig(<app file>, {location: APP}) as text>}
// Exit 1 with the error on stderr.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const TarsConfig = require('@tars/config');

function fail(msg) {
    process.stderr.write('config_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 4) fail('usage: node config_client.js <TARS config file> <app file>');

const config = new TarsConfig(process.argv[2]);
const TEXT = { format: config.FORMAT.TEXT };

(async () => {
    const out = {};
    out.list = await config.loadList();
    out.all = await config.loadConfig(TEXT);
    out.server = await config.loadServerConfig(TEXT);
    out.serverParsed = await config.loadServerConfig();
    out.app = await config.loadConfig(process.argv[3], { location: config.LOCATION.APP, format: config.FORMAT.TEXT });
    process.stdout.write(JSON.stringify(out) + '\n');
    process.exit(0);
})().catch((e) => fail(e && e.stack ? e.stack : JSON.stringify(e)));
