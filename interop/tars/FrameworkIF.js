'use strict';
// The TARS framework interfaces a business server calls (protocol/tars/*.tars) as data, for
// the recording peer ../app_peer.js and its servant bases in Framework.js:
//
//   NodeF.tars      tars.ServerF    (tars.tarsnode.ServerObj)
//   StatF.tars      tars.StatF      (tars.tarsstat.StatObj)
//   PropertyF.tars  tars.PropertyF  (tars.tarsproperty.PropertyObj)
//   LogF.tars       tars.Log        (tars.tarslog.LogObj)
//   NotifyF.tars    tars.Notify     (tars.tarsnotify.NotifyObj)
//   ConfigF.tars    tars.Config     (tars.tarsconfig.ConfigObj)
//   QueryF.tars     tars.QueryF     (tars.tarsregistry.QueryObj), EndpointF.tars
//
// The structs, enums and methods below are copied from the IDL text (one string per member or
// method, parsed here), so they can be checked against protocol/tars/ line by line.
//
// Unlike InteropIF.js, values are not @tars/stream objects but plain JSON-ready values, read
// straight off the wire with @tars/stream's TarsInputStream:
//   struct            -> plain object, IDL field names in IDL order; an absent optional
//                        field takes its IDL default (explicit, or 0 / "" / false / empty)
//   vector<T>         -> array
//   map<K, V>         -> array of [key, value] pairs in wire order, duplicates kept (the key
//                        may be a struct, i.e. a plain object)
//   enum              -> its int value
//   long, unsigned int-> number, or a decimal string when beyond +-(2^53 - 1)
//   vector<byte>      -> lowercase hex string
// @tars/stream's own containers cannot do this for a recording peer: its Map keeps map<int, V>
// keys in numeric order, not wire order, and merges struct keys it finds _equal (so a
// duplicated StatMicMsgHead would vanish). Writing (the peer's replies) takes the same plain
// values and follows TarsCpp's rules for optional struct members: require members always
// written; optional ones skipped when equal to their default or empty, except bool, enum and
// struct members, which are always written.
//
// Each type gives:
//   read(is, tag, require) -> value, or undefined when the optional tag is absent (throws
//                             @tars/stream's DecodeRequireNotExist / DecodeMismatch like its
//                             own read functions)
//   write(os, tag, value)
//   def()                  -> the implicit default
//   cppName                -> TarsCpp's type name (the TUP version 2 type key)
// Methods: tars2node-style numbering, return value at tag 0, parameters at tags 1.. in
// declaration order (in and out parameters share the numbering); for TUP (versions 2 and 3)
// the return value under "" and parameters by name.

const TarsStream = require('@tars/stream');

const DH = TarsStream.DataHelp;

// --------------------------------------------------------------------------------- types

/** long / unsigned int: exact as a number when safe, else the decimal string. */
function int64Value(v) {
    if (typeof v !== 'string') return v;
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
}

// readInt64's last argument (bString) makes @tars/stream return a 64-bit value as an exact
// decimal string instead of a rounded number.
const PRIMITIVES = {
    bool: {
        cppName: 'bool',
        def: () => false,
        // TarsCpp reads a bool as a char and takes any non-zero value as true.
        read: (is, tag, req) => {
            const v = is.readInt8(tag, req, undefined);
            return v === undefined ? undefined : v !== 0;
        },
        write: (os, tag, v) => os.writeBoolean(tag, v),
    },
    byte: {
        cppName: 'char',
        def: () => 0,
        read: (is, tag, req) => is.readInt8(tag, req, undefined),
        write: (os, tag, v) => os.writeInt8(tag, v),
    },
    short: {
        cppName: 'int16',
        def: () => 0,
        read: (is, tag, req) => is.readInt16(tag, req, undefined),
        write: (os, tag, v) => os.writeInt16(tag, v),
    },
    int: {
        cppName: 'int32',
        def: () => 0,
        read: (is, tag, req) => is.readInt32(tag, req, undefined),
        write: (os, tag, v) => os.writeInt32(tag, v),
    },
    // On the wire an unsigned int is a long (TarsCpp and @tars/stream both).
    'unsigned int': {
        cppName: 'uint32',
        def: () => 0,
        read: (is, tag, req) => int64Value(is.readInt64(tag, req, undefined, true)),
        write: (os, tag, v) => os.writeInt64(tag, v),
    },
    long: {
        cppName: 'int64',
        def: () => 0,
        read: (is, tag, req) => int64Value(is.readInt64(tag, req, undefined, true)),
        write: (os, tag, v) => os.writeInt64(tag, v, typeof v === 'string'),
    },
    string: {
        cppName: 'string',
        def: () => '',
        read: (is, tag, req) => is.readString(tag, req, undefined),
        write: (os, tag, v) => os.writeString(tag, v),
    },
    // vector<byte>: a SIMPLE_LIST (type 13).
    'vector<byte>': {
        cppName: 'list<char>',
        def: () => '',
        read: (is, tag, req) => {
            if (!is._skipToTag(tag, req)) return undefined;
            return is.readBytes(tag, true, TarsStream.BinBuffer).toNodeBuffer().toString('hex');
        },
        write: (os, tag, v) => os.writeBytes(tag, new TarsStream.BinBuffer(Buffer.from(v, 'hex'))),
    },
};

/** Reads the head at `tag` (false when the optional tag is absent) and checks its type. */
function openContainer(is, tag, req, type, what) {
    if (!is._skipToTag(tag, req)) return false;
    const head = is._readFrom();
    if (head.type !== type) {
        throw new TarsStream.DecodeMismatch('read ' + what + ' type mismatch, tag: ' + tag + ', get type: ' + head.type);
    }
    return true;
}

function readSize(is, tag) {
    const n = is.readInt32(0, true);
    if (n < 0) throw new TarsStream.DecodeInvalidValue('invalid size, tag: ' + tag + ', size: ' + n);
    return n;
}

function vectorOf(elem) {
    return {
        cppName: 'list<' + elem.cppName + '>',
        def: () => [],
        read: (is, tag, req) => {
            if (!openContainer(is, tag, req, DH.EN_LIST, "'vector'")) return undefined;
            const out = [];
            for (let i = readSize(is, tag); i > 0; i--) out.push(elem.read(is, 0, true));
            return out;
        },
        write: (os, tag, v) => {
            os._writeTo(tag, DH.EN_LIST);
            os.writeInt32(0, v.length);
            for (const x of v) elem.write(os, 0, x);
        },
    };
}

function mapOf(key, value) {
    return {
        cppName: 'map<' + key.cppName + ',' + value.cppName + '>',
        def: () => [],
        read: (is, tag, req) => {
            if (!openContainer(is, tag, req, DH.EN_MAP, "'map'")) return undefined;
            const out = [];
            for (let i = readSize(is, tag); i > 0; i--) {
                const k = key.read(is, 0, true);
                out.push([k, value.read(is, 1, true)]);
            }
            return out;
        },
        write: (os, tag, pairs) => {
            os._writeTo(tag, DH.EN_MAP);
            os.writeInt32(0, pairs.length);
            for (const [k, v] of pairs) {
                key.write(os, 0, k);
                value.write(os, 1, v);
            }
        },
    };
}

const TYPES = Object.assign({}, PRIMITIVES);

/** A type expression as written in the IDL: a name, vector<T> or map<K, V>. */
function typeOf(expr) {
    const s = expr.replace(/\s+/g, ' ').trim();
    if (TYPES[s]) return TYPES[s];
    const m = /^(vector|map)\s*<(.*)>$/.exec(s);
    if (!m) throw new Error('FrameworkIF: unknown type ' + JSON.stringify(expr));
    if (m[1] === 'vector') return vectorOf(typeOf(m[2]));
    // Split K, V at the comma outside any <>.
    let depth = 0;
    for (let i = 0; i < m[2].length; i++) {
        const c = m[2][i];
        if (c === '<') depth++;
        else if (c === '>') depth--;
        else if (c === ',' && depth === 0) return mapOf(typeOf(m[2].slice(0, i)), typeOf(m[2].slice(i + 1)));
    }
    throw new Error('FrameworkIF: bad map type ' + JSON.stringify(expr));
}

/** enum Name { ... }: an int on the wire. */
function defineEnum(name, members) {
    TYPES[name] = Object.assign({}, PRIMITIVES.int, { cppName: 'int32', members });
}

/**
 * struct Name { "<tag> require|optional <type> <name> [= <default>]", ... }.
 * Defaults are JSON literals ("_", 1, true).
 */
function defineStruct(name, memberLines) {
    const fields = memberLines.map((line) => {
        const m = /^(\d+)\s+(require|optional)\s+(.+?)\s+(\w+)(?:\s*=\s*(.+))?$/.exec(line.trim());
        if (!m) throw new Error('FrameworkIF: bad member of ' + name + ': ' + line);
        const type = typeOf(m[3]);
        const explicit = m[5] === undefined ? undefined : JSON.parse(m[5]);
        return {
            tag: +m[1],
            require: m[2] === 'require',
            type,
            name: m[4],
            def: explicit === undefined ? type.def : () => explicit,
            // TarsCpp's optional-member rule (see the top of the file).
            always: m[2] === 'require' || type === PRIMITIVES.bool || type.members !== undefined
                || type.fields !== undefined,
        };
    });
    const readFields = (is) => {
        const obj = {};
        for (const f of fields) {
            const v = f.type.read(is, f.tag, f.require);
            obj[f.name] = v === undefined ? f.def() : v;
        }
        return obj;
    };
    const writeFields = (os, obj) => {
        for (const f of fields) {
            const v = obj[f.name] === undefined ? f.def() : obj[f.name];
            if (!f.always) {
                if (Array.isArray(v) ? v.length === 0 : v === f.def()) continue;
            }
            f.type.write(os, f.tag, v);
        }
    };
    TYPES[name] = {
        cppName: 'tars.' + name,
        fields,
        def: () => {
            const obj = {};
            for (const f of fields) obj[f.name] = f.def();
            return obj;
        },
        read: (is, tag, req) => {
            if (!openContainer(is, tag, req, DH.EN_STRUCTBEGIN, 'struct')) return undefined;
            const obj = readFields(is);
            is._skipToStructEnd();
            return obj;
        },
        write: (os, tag, obj) => os.writeStruct(tag, { _writeTo: (o) => writeFields(o, obj) }),
    };
}

/** "<ret> <name>(<[out] type name>, ...)" -> method description. */
function parseMethod(line) {
    const m = /^(.+?)\s+(\w+)\s*\((.*)\)$/.exec(line.trim());
    if (!m) throw new Error('FrameworkIF: bad method ' + line);
    const params = [];
    let depth = 0;
    let start = 0;
    const list = m[3];
    for (let i = 0; i <= list.length; i++) {
        const c = list[i];
        if (c === '<') depth++;
        else if (c === '>') depth--;
        else if ((c === ',' && depth === 0) || i === list.length) {
            const p = list.slice(start, i).trim();
            start = i + 1;
            if (p === '') continue;
            const pm = /^(out\s+)?(.+?)\s+(\w+)$/.exec(p);
            if (!pm) throw new Error('FrameworkIF: bad parameter ' + p + ' of ' + line);
            params.push({ name: pm[3], type: typeOf(pm[2]), dir: pm[1] ? 'out' : 'in' });
        }
    }
    params.forEach((p, i) => { p.tag = i + 1; });
    return {
        name: m[2],
        ret: m[1] === 'void' ? null : typeOf(m[1]),
        args: params,
        ins: params.filter((p) => p.dir === 'in'),
        outs: params.filter((p) => p.dir === 'out'),
    };
}

// ------------------------------------------------------------------------ EndpointF.tars

defineStruct('EndpointF', [
    '0  require  string host',
    '1  require  int    port',
    '2  require  int    timeout',
    '3  require  int    istcp',
    '4  require  int    grid',
    '5  optional int    groupworkid',
    '6  optional int    grouprealid',
    '7  optional string setId',
    '8  optional int    qos',
    '9  optional int    bakFlag',
    '11 optional int    weight',
    '12 optional int    weightType',
    '13 optional int    authType',
    '14 optional string nodeName',
]);

// ---------------------------------------------------------------------------- NodeF.tars

defineStruct('ServerInfo', [
    '0 require  string application',
    '1 require  string serverName',
    '2 require  int    pid',
    '3 optional string adapter',
]);

// ---------------------------------------------------------------------------- StatF.tars

defineStruct('StatMicMsgHead', [
    '0  require  string masterName',
    '1  require  string slaveName',
    '2  require  string interfaceName',
    '3  require  string masterIp',
    '4  require  string slaveIp',
    '5  require  int    slavePort',
    '6  require  int    returnValue',
    '7  optional string slaveSetName',
    '8  optional string slaveSetArea',
    '9  optional string slaveSetID',
    '10 optional string tarsVersion',
]);
defineStruct('StatMicMsgBody', [
    '0 require int          count',
    '1 require int          timeoutCount',
    '2 require int          execCount',
    '3 require map<int,int> intervalCount',
    '4 require long         totalRspTime',
    '5 require int          maxRspTime',
    '6 require int          minRspTime',
]);
defineStruct('StatSampleMsg', [
    '0 require string unid',
    '1 require string masterName',
    '2 require string slaveName',
    '3 require string interfaceName',
    '4 require string masterIp',
    '5 require string slaveIp',
    '6 require int    depth',
    '7 require int    width',
    '8 require int    parentWidth',
]);

// ------------------------------------------------------------------------ PropertyF.tars

defineStruct('StatPropMsgHead', [
    '0 require  string moduleName',
    '1 require  string ip',
    '2 require  string propertyName',
    '3 optional string setName',
    '4 optional string setArea',
    '5 optional string setID',
    '6 optional string sContainer',
    '7 optional int    iPropertyVer = 1',
]);
defineStruct('StatPropInfo', [
    '0 require string policy',
    '1 require string value',
]);
defineStruct('StatPropMsgBody', [
    '0 require vector<StatPropInfo> vInfo',
]);

// ----------------------------------------------------------------------------- LogF.tars

defineStruct('LogInfo', [
    '0  require  string appname',
    '1  require  string servername',
    '2  require  string sFilename',
    '3  require  string sFormat',
    '4  optional string setdivision',
    '5  optional bool   bHasSufix = true',
    '6  optional bool   bHasAppNamePrefix = true',
    '7  optional bool   bHasSquareBracket = false',
    '8  optional string sConcatStr = "_"',
    '9  optional string sSepar = "|"',
    '10 optional string sLogType = ""',
]);

// -------------------------------------------------------------------------- NotifyF.tars

defineEnum('NOTIFYLEVEL', { NOTIFYNORMAL: 0, NOTIFYWARN: 1, NOTIFYERROR: 2 });
defineEnum('ReportType', { REPORT: 0, NOTIFY: 1 });
defineStruct('ReportInfo', [
    '1 require  ReportType  eType',
    '2 require  string      sApp',
    '3 require  string      sSet',
    '4 require  string      sContainer',
    '5 require  string      sServer',
    '6 require  string      sMessage',
    '7 optional string      sThreadId',
    '8 optional NOTIFYLEVEL eLevel',
    '9 optional string      sNodeName',
]);

// -------------------------------------------------------------------------- ConfigF.tars

defineStruct('ConfigInfo', [
    '0 require  string appname',
    '1 require  string servername',
    '2 require  string filename',
    '3 require  bool   bAppOnly = false',
    '4 optional string host',
    '5 optional string setdivision',
]);
defineStruct('GetConfigListInfo', [
    '0 require  string appname',
    '1 optional string servername',
    '2 optional bool   bAppOnly = false',
    '3 optional string host = ""',
    '4 optional string setdivision = ""',
    '5 optional string containername = ""',
]);

// --------------------------------------------------------------------------- QueryF.tars

defineStruct('GetMasterSlaveLock', [
    '0 optional string application',
    '1 optional string server_name',
    '2 optional string node_name',
    '3 optional bool   isMaster',
    '4 optional bool   lastErr',
    '5 optional int    timeout',
    '6 optional int    bakType',
]);

// ---------------------------------------------------------------------------- interfaces

const INTERFACES = {
    ServerF: [
        'int keepAlive(ServerInfo serverInfo)',
        'int keepActiving(ServerInfo serverInfo)',
        'int reportVersion(string app, string serverName, string version)',
        'unsigned int getLatestKeepAliveTime()',
    ],
    StatF: [
        'int reportMicMsg(map<StatMicMsgHead, StatMicMsgBody> msg, bool bFromClient)',
        'int reportSampleMsg(vector<StatSampleMsg> msg)',
    ],
    PropertyF: [
        'int reportPropMsg(map<StatPropMsgHead, StatPropMsgBody> statmsg)',
    ],
    Log: [
        'void logger(string app, string server, string file, string format, vector<string> buffer)',
        'void loggerbyInfo(LogInfo info, vector<string> buffer)',
    ],
    Notify: [
        'void reportNotifyInfo(ReportInfo info)',
    ],
    Config: [
        'int ListConfig(string app, string server, out vector<string> vf)',
        'int loadConfig(string app, string server, string filename, out string config)',
        'int loadConfigByHost(string appServerName, string filename, string host, out string config)',
        'int checkConfig(string appServerName, string filename, string host, out string result)',
        'int ListConfigByInfo(ConfigInfo configInfo, out vector<string> vf)',
        'int loadConfigByInfo(ConfigInfo configInfo, out string config)',
        'int checkConfigByInfo(ConfigInfo configInfo, out string result)',
        'int ListAllConfigByInfo(GetConfigListInfo configInfo, out vector<string> vf)',
    ],
    QueryF: [
        'vector<EndpointF> findObjectById(string id)',
        'int findObjectById4Any(string id, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)',
        'int findObjectById4All(string id, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)',
        'int findObjectByIdInSameGroup(string id, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)',
        'int findObjectByIdInSameStation(string id, string sStation, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)',
        'int findObjectByIdInSameSet(string id, string setId, out vector<EndpointF> activeEp, out vector<EndpointF> inactiveEp)',
        'int findObjectNodeName(string id, out vector<string> nodeName)',
        'int registerChange(map<string, string> timestamp, string name)',
        'int registerQuery(string id, string name)',
        'int getLocker(GetMasterSlaveLock req)',
    ],
};

for (const name of Object.keys(INTERFACES)) INTERFACES[name] = INTERFACES[name].map(parseMethod);

// ------------------------------------------------------------------------------- TUP body

const isTup = (version) =>
    version === TarsStream.Tup.TUP_SIMPLE || version === TarsStream.Tup.TUP_COMPLEX;

/**
 * The value stored under `name` in a decoded UniAttribute, or undefined when absent. Version
 * 3 keeps name -> bytes; version 2 name -> (type name -> bytes), where the one entry is taken
 * whatever its type name (TarsCpp writes "list<string>", @tars/stream "List<string>").
 */
function tupRead(attr, name, type) {
    let buf;
    if (attr.tupVersion === TarsStream.Tup.TUP_SIMPLE) {
        buf = attr._data.get(name);
    } else {
        const byType = attr._mmap.get(name);
        if (byType !== undefined) byType.forEach((_typeName, b) => { if (buf === undefined) buf = b; });
    }
    if (buf === undefined) return undefined;
    return type.read(new TarsStream.TarsInputStream(buf), 0, true);
}

/** Stores `value` under `name` the way UniAttribute's own write functions do. */
function tupWrite(attr, name, type, value) {
    const os = new TarsStream.TarsOutputStream();
    type.write(os, 0, value);
    const buf = new TarsStream.BinBuffer(os.getBinBuffer().toNodeBuffer());
    if (attr.tupVersion === TarsStream.Tup.TUP_SIMPLE) {
        attr._data.set(name, buf);
    } else {
        const byType = new TarsStream.Map(TarsStream.String, TarsStream.BinBuffer);
        byType.set(type.cppName, buf);
        attr._mmap.set(name, byType);
    }
}

module.exports = { TYPES, INTERFACES, typeOf, isTup, tupRead, tupWrite };
