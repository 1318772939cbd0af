'use strict';
// The recording peer: one @tars/rpc 2.0.15 process that plays every TARS framework service a
// business server talks to, and prints each call it receives as one JSON line. For the
// tars-rs tests of the SDK's application duties (heartbeats, stat / property reports, remote
// log, notify, config, locator lookups).
//
//   npm ci --prefix interop                  # once
//   node interop/app_peer.js '<plan JSON>'
//
// <plan JSON> (every key optional):
//   {"files":  {"<filename>": "<content>", ...},           served by ConfigObj
//    "routes": {"App.Server.Obj": [{"host": "127.0.0.1", "port": 1234}, ...], ...},
//                                                          answered by QueryObj; an entry may
//                                                          also give any other EndpointF field
//                                                          (timeout 60000, istcp 1 by default)
//    "ports":  {"tars.tarsstat.StatObj": 17001, ...}}      fixed ports; default 0 (a free one)
//
// Servants, each on its own port on 127.0.0.1 (tars protocol, request versions 1, 2 and 3):
//   tars.tarsnode.ServerObj      ServerF   keepAlive, keepActiving, reportVersion -> 0;
//                                          getLatestKeepAliveTime -> the time (s) of the last
//                                          keepAlive received, 0 before the first
//   tars.tarsstat.StatObj        StatF     reportMicMsg, reportSampleMsg -> 0
//   tars.tarsproperty.PropertyObj PropertyF reportPropMsg -> 0
//   tars.tarslog.LogObj          Log       logger, loggerbyInfo (void)
//   tars.tarsnotify.NotifyObj    Notify    reportNotifyInfo (void)
//   tars.tarsconfig.ConfigObj    Config    loadConfig / loadConfigByHost / loadConfigByInfo ->
//                                          0 and the plan file's content ("" when the plan has
//                                          no such file, still 0, as upstream tarsconfig);
//                                          ListConfig / ListConfigByInfo / ListAllConfigByInfo
//                                          -> 0 and the plan's file names (in plan order);
//                                          checkConfig / checkConfigByInfo -> 0 and ""
//   tars.tarsregistry.QueryObj   QueryF    the locator: for one of the servants above, its own
//                                          endpoint (127.0.0.1, its port, timeout 60000, tcp);
//                                          else the plan's routes for the id; else nothing.
//                                          findObjectById -> the list; findObjectById4Any /
//                                          4All / InSameGroup / InSameStation / InSameSet -> 0,
//                                          active = the list, inactive = [] (station and set
//                                          are not used to filter); findObjectNodeName -> 0
//                                          and the hosts, or -1 and [] when the id is unknown;
//                                          registerChange, registerQuery, getLocker -> 0
// Every servant also answers tars_ping.
//
// Output on stdout, one line each:
//   READY {"tars.tarsnode.ServerObj": <port>, ...}           once, when all servants listen
//   {"obj": "<servant>", "func": "<function>", "t": <Date.now() ms>, "oneway": <bool>,
//    "version": <iVersion>, "requestId": <n>, "servantName": "<sServantName as sent>",
//    "timeout": <iTimeout>, "context": {...}, "status": {...}, "args": {<in param>: <value>}}
//                                                            per request received, oneway ones
//                                                            too, before it is answered
// "args" holds the in parameters by IDL name as tars/FrameworkIF.js reads them: structs as
// objects with the IDL field names (absent optional fields as their IDL default), vectors as
// arrays, maps as arrays of [key, value] pairs in wire order with duplicates kept (a struct
// key is an object), enums as ints, long / unsigned int as numbers (decimal strings beyond
// +-(2^53 - 1)), vector<byte> as hex; tars_ping has "args": {}. A request that cannot be
// served is recorded with "args": null and "error": "<why>": a body that does not decode as
// the IDL says (answered with iRet -1, DECODE_ERROR) or an unknown function (answered -3,
// FUNC_NOT_FOUND). "context" / "status" are the request's string maps as objects.
//
// Serves until SIGTERM / SIGINT or until its stdin reaches end of file: keep a pipe to its
// stdin open for as long as it should run. Idle connections are never closed. Diagnostics go
// to stderr; exit status 2 on bad usage or a listen error.

// @tars/monitor and @tars/registry read require('@tars/rpc').error while @tars/rpc is still
// loading (a require cycle); Node warns about it on every start. Keep stderr for real problems.
process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const TarsRpc = require('@tars/rpc');
const TarsError = TarsRpc.error;
const { tars } = require('./tars/Framework.js');

function die(msg) {
    process.stderr.write('app_peer.js: ' + msg + '\n');
    process.exit(2);
}

// ------------------------------------------------------------------------------ the plan

if (process.argv.length !== 3) die("usage: node interop/app_peer.js '<plan JSON>'");
let plan;
try {
    plan = JSON.parse(process.argv[2]);
} catch (e) {
    die('bad plan JSON: ' + e.message);
}
if (plan === null || typeof plan !== 'object' || Array.isArray(plan)) die('the plan must be a JSON object');

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isPort = (v) => Number.isInteger(v) && v >= 0 && v <= 65535;
const own = (obj, key) => Object.prototype.hasOwnProperty.call(obj, key);

const files = plan.files === undefined ? {} : plan.files;
if (!isObject(files)) die('"files" must be an object of name -> content');
for (const name of Object.keys(files)) {
    if (typeof files[name] !== 'string') die('file ' + JSON.stringify(name) + ': content must be a string');
}

const routes = plan.routes === undefined ? {} : plan.routes;
if (!isObject(routes)) die('"routes" must be an object of object id -> endpoint list');
for (const id of Object.keys(routes)) {
    if (!Array.isArray(routes[id])) die('route ' + JSON.stringify(id) + ': must be a list');
    for (const ep of routes[id]) {
        if (!isObject(ep) || typeof ep.host !== 'string' || !isPort(ep.port)) {
            die('route ' + JSON.stringify(id) + ': every entry needs "host" (string) and "port"');
        }
    }
}

// ------------------------------------------------------------------------- the servants

// Request handlers by servant: `answer[method](current, ...all parameters)`. A method with no
// handler answers 0 (and default out values), or nothing for a void method.
let lastKeepAliveSec = 0;
const ports = {}; // servant -> bound port, filled in as they listen

const SERVANTS = {
    'tars.tarsnode.ServerObj': {
        Imp: tars.ServerFImp,
        answer: {
            keepAlive(current) {
                lastKeepAliveSec = Math.floor(Date.now() / 1000);
                current.sendResponse(0);
            },
            getLatestKeepAliveTime(current) { current.sendResponse(lastKeepAliveSec); },
        },
    },
    'tars.tarsstat.StatObj': { Imp: tars.StatFImp, answer: {} },
    'tars.tarsproperty.PropertyObj': { Imp: tars.PropertyFImp, answer: {} },
    'tars.tarslog.LogObj': { Imp: tars.LogImp, answer: {} },
    'tars.tarsnotify.NotifyObj': { Imp: tars.NotifyImp, answer: {} },
    'tars.tarsconfig.ConfigObj': { Imp: tars.ConfigImp, answer: configAnswers() },
    'tars.tarsregistry.QueryObj': { Imp: tars.QueryFImp, answer: queryAnswers() },
};

function configAnswers() {
    const content = (name) => (own(files, name) ? files[name] : '');
    const names = () => Object.keys(files);
    return {
        ListConfig: (current) => current.sendResponse(0, names()),
        loadConfig: (current, _app, _server, filename) => current.sendResponse(0, content(filename)),
        loadConfigByHost: (current, _appServer, filename) => current.sendResponse(0, content(filename)),
        ListConfigByInfo: (current) => current.sendResponse(0, names()),
        loadConfigByInfo: (current, info) => current.sendResponse(0, content(info.filename)),
        ListAllConfigByInfo: (current) => current.sendResponse(0, names()),
    };
}

function queryAnswers() {
    // EndpointF values (FrameworkIF.js fills in the fields left out).
    const endpoints = (id) => {
        if (own(ports, id)) return [{ host: '127.0.0.1', port: ports[id], timeout: 60000, istcp: 1 }];
        if (own(routes, id)) return routes[id].map((ep) => Object.assign({ timeout: 60000, istcp: 1 }, ep));
        return [];
    };
    const activeInactive = (current, id) => current.sendResponse(0, endpoints(id), []);
    return {
        findObjectById: (current, id) => current.sendResponse(endpoints(id)),
        findObjectById4Any: activeInactive,
        findObjectById4All: activeInactive,
        findObjectByIdInSameGroup: activeInactive,
        findObjectByIdInSameStation: activeInactive,
        findObjectByIdInSameSet: activeInactive,
        findObjectNodeName: (current, id) => {
            const hosts = [...new Set(endpoints(id).map((ep) => ep.host))];
            current.sendResponse(hosts.length > 0 ? 0 : -1, hosts);
        },
    };
}

// ---------------------------------------------------------------------------- recording

function record(servant, current, func, fields) {
    const req = current.getRequest();
    const line = {
        obj: servant,
        func,
        t: Date.now(),
        oneway: req.cPacketType === 1,
        version: req.iVersion,
        requestId: req.iRequestId,
        servantName: req.sServantName,
        timeout: req.iTimeout,
        context: req.context.toObject(),
        status: req.status.toObject(),
    };
    // Pipes and files: process.stdout writes are synchronous on Linux, so each line is out
    // before the reply is sent.
    process.stdout.write(JSON.stringify(Object.assign(line, fields)) + '\n');
}

/** Makes `Imp` record every request for `servant`, then answer it with `answer`. */
function recordingServant(servant, Imp, answer) {
    class Recording extends Imp {}
    for (const m of Imp.METHODS) {
        const handler = answer[m.name] || ((current) => {
            if (m.ret === null && m.outs.length === 0) current.sendResponse();
            else current.sendResponse(0, ...m.outs.map((a) => a.type.def()));
        });
        Recording.prototype[m.name] = function (current, ...values) {
            const args = {};
            m.args.forEach((a, i) => { if (a.dir === 'in') args[a.name] = values[i]; });
            record(servant, current, m.name, { args });
            current._appPeerRecorded = true;
            handler(current, ...values);
        };
    }
    // Requests that never reach a method: decode errors, unknown functions, pings.
    Recording.prototype.onDispatch = function (current, funcName, binBuffer) {
        if (funcName === 'tars_ping') record(servant, current, funcName, { args: {} });
        let ret;
        try {
            ret = Imp.prototype.onDispatch.call(this, current, funcName, binBuffer);
        } catch (e) {
            // Thrown before the method ran: the request body does not decode as the IDL says.
            if (!current._appPeerRecorded) record(servant, current, funcName, { args: null, error: e.message });
            process.stderr.write('app_peer.js: ' + servant + '.' + funcName + ': ' + e.message + '\n');
            throw e; // the framework answers with e.code, or DECODE_ERROR (-1)
        }
        if (ret === TarsError.SERVER.FUNC_NOT_FOUND) {
            record(servant, current, funcName, { args: null, error: 'no such function' });
        }
        return ret;
    };
    return Recording;
}

// ---------------------------------------------------------------------------- the server

const fixedPorts = plan.ports === undefined ? {} : plan.ports;
if (!isObject(fixedPorts)) die('"ports" must be an object of servant -> port');
for (const name of Object.keys(fixedPorts)) {
    if (!own(SERVANTS, name)) die('"ports": unknown servant ' + JSON.stringify(name));
    if (!isPort(fixedPorts[name])) die('"ports": bad port for ' + name);
}

const servers = [];
let listening = 0;
for (const name of Object.keys(SERVANTS)) {
    const { Imp, answer } = SERVANTS[name];
    const server = TarsRpc.server.createServer();
    const option = new TarsRpc.server.BindAdapterOption();
    // -t 0: no idle timeout, the SDK under test may stay quiet for longer than a minute.
    option.endpoint = 'tcp -h 127.0.0.1 -p ' + (own(fixedPorts, name) ? fixedPorts[name] : 0) + ' -t 0';
    option.name = name + 'Adapter';
    option.servant = name;
    option.handleImp = recordingServant(name, Imp, answer);
    server.start(option);
    servers.push(server);

    // @tars/rpc does not report the bound port; its listener is a plain net.Server
    // (HeroServer._adapters[0]._netthread._listener, see core/server/NetThread.js).
    const listener = server._adapters[0]._netthread._listener;
    listener.on('error', (e) => die(name + ': listen failed: ' + e.message));
    listener.on('listening', () => {
        ports[name] = listener.address().port;
        listening += 1;
        if (listening === Object.keys(SERVANTS).length) {
            const ready = {};
            for (const n of Object.keys(SERVANTS)) ready[n] = ports[n];
            process.stdout.write('READY ' + JSON.stringify(ready) + '\n');
        }
    });
}

let stopping = false;
function stop(why) {
    if (stopping) return;
    stopping = true;
    process.stderr.write('app_peer.js: stopping (' + why + ')\n');
    for (const server of servers) {
        try { server.stop(); } catch (e) { /* already closed */ }
    }
    process.exit(0);
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin error'));
process.stdin.resume();
