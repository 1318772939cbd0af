'use strict';
// Reports call statistics and properties with the official @tars/monitor client (pinned in
// package.json), for the interop tests of tarsstat and tarsproperty
// (stat/tests/node_monitor.rs).
//
//   node interop/monitor_client.js '<plan JSON>'
//
// <plan JSON>:
//   {"stat": "<StatObj locator>", "property": "<PropertyObj locator>",
//    "moduleName": "App.Server", "localIp": "10.1.1.1",
//    "calls": [{"headers": {masterName, slaveName, interfaceName, masterIp, slaveIp, slavePort,
//                           returnValue, bFromClient}, "type": "success"|"timeout"|"error",
//               "time": <ms>, "times": <repeat, default 1>}, ...],
//    "properties": [{"name": "queue", "policies": ["Sum", "Count", "Max", "Min", "Avg",
//                    {"Distr": [10, 100]}], "values": [3, 15, 200]}, ...]}
//
// Each call goes through stat.report and each value through the property's report, exactly as
// an application would use the package. Both clients flush on their own timers (the report
// interval is set to 200 ms so the test does not wait 10 s), sending oneway requests
// (packetType 1) as in production. Prints `SENT <calls> <values>` and exits 0 once both
// timers have fired and the requests had time to leave; exit 1 with the error on stderr.

process.removeAllListeners('warning');
process.on('warning', (w) => {
    if (!/inside circular dependency/.test(w.message)) process.stderr.write(w.stack + '\n');
});

const Monitor = require('@tars/monitor');
const Configure = require('@tars/utils').Config;

const INTERVAL_MS = 200;
// After the timers fire: long enough for the connection and the oneway writes.
const DRAIN_MS = 1500;

function fail(msg) {
    process.stderr.write('monitor_client.js: ' + msg + '\n');
    process.exit(1);
}

if (process.argv.length !== 3) fail("usage: node monitor_client.js '<plan JSON>'");
let plan;
try {
    plan = JSON.parse(process.argv[2]);
} catch (e) {
    fail('bad plan JSON: ' + e.message);
}

// stat: the package reads only the servant from a config; set it (and a short interval) the
// way its own init would.
Monitor.stat.StatObj = plan.stat;
Monitor.stat.reportInterval = INTERVAL_MS;

// property: init from a TARS config text, which is where it takes the module name and the
// reporter's own IP from.
const conf = new Configure();
conf.parseText([
    '<tars>', '<application>', '<server>', 'localip=' + plan.localIp, '</server>',
    '<client>', 'property=' + plan.property, 'modulename=' + plan.moduleName,
    'report-interval=' + INTERVAL_MS, '</client>', '</application>', '</tars>', '',
].join('\n'));
Monitor.property.init(conf);

let calls = 0;
for (const c of plan.calls || []) {
    const type = { success: Monitor.stat.TYPE.SUCCESS, timeout: Monitor.stat.TYPE.TIMEOUT,
        error: Monitor.stat.TYPE.ERROR }[c.type];
    if (type === undefined) fail('unknown call type ' + JSON.stringify(c.type));
    for (let i = 0; i < (c.times || 1); i++) {
        Monitor.stat.report(Object.assign({}, c.headers), type, c.time);
        calls += 1;
    }
}

let values = 0;
for (const p of plan.properties || []) {
    const policies = p.policies.map((name) => {
        if (typeof name === 'object') return new Monitor.property.POLICY.Distr(name.Distr);
        const Policy = Monitor.property.POLICY[name];
        if (!Policy) fail('unknown policy ' + JSON.stringify(name));
        return new Policy();
    });
    const prop = Monitor.property.create(p.name, policies);
    for (const v of p.values) {
        prop.report(v);
        values += 1;
    }
}

setTimeout(() => {
    process.stdout.write('SENT ' + calls + ' ' + values + '\n');
    process.exit(0);
}, INTERVAL_MS + DRAIN_MS);
