'use strict';
// Writes log lines through a LogObj with the official remote logger, @tars/logs over
// @tars/winston-tars (pinned in package.json), as a Node.js TARS server does, for
// log/tests/node_logger.rs.
//
//   node interop/log_client.js <TARS config> <TARS config with a set> <LogObj endpoint> <tag>
//
// Both config files name app, server and logpath in <tars><application><server>; the second
// also has enableset=y and setdivision in <tars><application>. The loggers, each sending
// `<tag> <n>` lines:
//   - new tarsLogs('TarsRemote', 'remote', {format: LogByHour}): loggerbyInfo, sFormat
//     %Y%m%d%H, sLogType 1hour, the Detail formatter (time|pid|LEVEL|message);
//   - new tarsLogs('TarsDate', 'access', {logTo: Remote}): loggerbyInfo, LogByDay, the
//     Simple formatter (time|message);
//   - new tarsLogs('TarsRemote', 'setlog', {tarsConfig: <the set config>, separ: '#',
//     concatStr: '-', format: LogByMinute(5)}): the set level in the directory, '#' and
//     '-', sLogType 5minute;
// then waits for the transports' 500 ms batching to send, and prints {"pid": <pid>}.
// Exit 1 with the error on stderr.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

// The install holds two copies of winston: the top-level 2.4.7 that @tars/winston-tars (a
// peer dependency) registers its transports and `tars` levels on, and 2.4.1 nested under
// @tars/logs, which would see neither ("argument type not found in winston.transports").
// Resolve the nested one to the top-level copy, as a deduplicated install would.
const path = require('path');
const logsDir = path.dirname(require.resolve('@tars/logs/package.json'));
const nestedWinston = require.resolve('winston', { paths: [logsDir] });
const sharedWinston = require.resolve('winston');
if (nestedWinston !== sharedWinston) {
    require(sharedWinston);
    require.cache[nestedWinston] = require.cache[sharedWinston];
}
require('@tars/winston-tars');

const TarsLogs = require('@tars/logs');
const TarsConfigure = require('@tars/utils').Config;

function fail(msg) {
    process.stderr.write('log_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 6) fail('usage: node log_client.js <config> <set config> <LogObj endpoint> <tag>');
const [configFile, setConfigFile, endpoint, tag] = process.argv.slice(2);

try {
    TarsLogs.setConfig(configFile);
    const setConfig = new TarsConfigure();
    setConfig.parseFile(setConfigFile);

    const remote = new TarsLogs('TarsRemote', 'remote', {
        tarsLogServant: endpoint,
        format: TarsLogs.DateFormat.LogByHour,
    });
    const access = new TarsLogs('TarsDate', 'access', {
        tarsLogServant: endpoint,
        logTo: TarsLogs.LogTo.Remote,
    });
    const setlog = new TarsLogs('TarsRemote', 'setlog', {
        tarsLogServant: endpoint,
        tarsConfig: setConfig,
        separ: '#',
        concatStr: '-',
        format: new TarsLogs.DateFormat.LogByMinute(5),
    });

    for (let n = 0; n < 3; n += 1) {
        remote.info(tag + ' ' + n);
        access.info(tag + ' ' + n);
        setlog.error(tag + ' ' + n);
    }

    // TarsRemote sends its buffer 500 ms after the first line, fire and forget.
    setTimeout(() => {
        process.stdout.write(JSON.stringify({ pid: process.pid }) + '\n');
        process.exit(0);
    }, 1500);
} catch (e) {
    fail(e && e.stack ? e.stack : String(e));
}
