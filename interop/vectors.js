'use strict';
// Reference TARS encodings made with the official Node packages (@tars/stream 2.0.3 and
// @tars/rpc 2.0.15, pinned in package.json), for the tars-rs interop tests
// (core-net/tests/node_interop.rs and protocol/tests/node_interop.rs).
//
//   npm ci --prefix interop        # once
//   node interop/vectors.js        # prints {"<case name>": "<hex bytes>", ...}
//
// Only the official encoders are used: TarsOutputStream, UniAttribute/Tup, RequestF.js's
// RequestPacket/ResponsePacket, and the compose() functions of @tars/rpc's tars-client.js and
// tars-server.js. The structs below (Small, Opts, Middle, Outer and the framework structs) are
// hand-written `_writeTo` functions in the style tars2node generates, following TarsCpp's
// optional-field rules (wire.md 1.10): require members always written; optional members
// skipped when equal to their default or empty; optional bool, enum and struct members
// always written.
//
// Every value is deterministic; the Rust tests rebuild each case by name. Case names must stay
// in sync with the Rust side, which fails on a name missing on either side.

process.noDeprecation = true; // tars-server.js composeTUP uses `new Buffer(n)`

const path = require('path');
const Tars = require('@tars/stream');
const RequestF = require('@tars/rpc/core/rpc-tars/RequestF.js').tars;
const TarsClientStream = require('@tars/rpc/core/rpc-tars/tars-client.js');
const TarsServerStream = require('@tars/rpc/core/rpc-tars/tars-server.js');

function fail(msg) {
    process.stderr.write('vectors.js: ' + msg + '\n');
    process.exit(2);
}

const PINNED = { '@tars/stream': '2.0.3', '@tars/rpc': '2.0.15' };
for (const pkg of Object.keys(PINNED)) {
    const got = require(pkg + '/package.json').version;
    if (got !== PINNED[pkg]) {
        fail(pkg + ' is ' + got + ', expected ' + PINNED[pkg] + ': run `npm ci --prefix interop`');
    }
}
// RequestF.js must use the same @tars/stream as we do.
const rpcDir = path.dirname(require.resolve('@tars/rpc/package.json'));
if (require.resolve('@tars/stream', { paths: [rpcDir] }) !== require.resolve('@tars/stream')) {
    fail('@tars/rpc resolves a different @tars/stream: run `npm ci --prefix interop`');
}

// ---------------------------------------------------------------------------------------------
// helpers

const cases = new Map();

function hexOf(x) {
    if (x instanceof Tars.BinBuffer) x = x.toNodeBuffer();
    if (x instanceof Tars.TarsOutputStream) x = x.getBinBuffer().toNodeBuffer();
    if (!Buffer.isBuffer(x)) throw new Error('not a buffer: ' + x);
    return x.toString('hex');
}

function add(name, bytes) {
    if (cases.has(name)) throw new Error('duplicate case name ' + name);
    cases.set(name, hexOf(bytes));
}

/** Runs fn on a fresh TarsOutputStream and returns its BinBuffer. */
function enc(fn) {
    const os = new Tars.TarsOutputStream();
    fn(os);
    return os.getBinBuffer();
}

function bin(bytes) {
    return new Tars.BinBuffer(Buffer.from(bytes));
}

function list(proto, values, bValue) {
    const l = Tars.List(proto, bValue);
    for (const v of values) l.push(v);
    return l;
}

/** entries: [[k, v], ...] inserted in this order (keep it the sorted order for string keys). */
function map(kproto, vproto, entries) {
    const m = Tars.Map(kproto, vproto);
    for (const [k, v] of entries) m.insert(k, v);
    return m;
}

function repeatPattern(n) {
    const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[i % alphabet.length];
    return s;
}

// ---------------------------------------------------------------------------------------------
// test structs (IDL in comments; the Rust test has the same definitions)

// struct Small { 0 require int a; 1 require string b; };
function Small(a, b) {
    this.a = a === undefined ? 0 : a;
    this.b = b === undefined ? '' : b;
}
Small._classname = 'interop.Small';
Small._write = function (os, tag, v) { os.writeStruct(tag, v); };
Small.prototype._writeTo = function (os) {
    os.writeInt32(0, this.a);
    os.writeString(1, this.b);
};

// struct Empty { };
function Empty() {}
Empty._classname = 'interop.Empty';
Empty._write = function (os, tag, v) { os.writeStruct(tag, v); };
Empty.prototype._writeTo = function (os) {};

// enum Color { RED, GREEN = 5, BLUE };
const Color = { RED: 0, GREEN: 5, BLUE: 6 };

// struct Opts {
//   0 require int id;
//   1 optional int count;
//   2 optional string name = "dflt";
//   3 optional bool flag;
//   4 optional vector<int> items;
//   5 optional map<string, string> attrs;
//   6 optional long big = 7;
//   7 optional double ratio;
//   8 optional Small inner;
//   9 optional Color color;
//   10 optional byte b;
//   11 optional vector<byte> blob;
//   12 optional float f = 1.5;
//   13 optional unsigned int u;
//   200 optional string tail;
// };
function Opts() {
    this.id = 0;
    this.count = 0;
    this.name = 'dflt';
    this.flag = false;
    this.items = Tars.List(Tars.Int32);
    this.attrs = Tars.Map(Tars.String, Tars.String);
    this.big = 7;
    this.ratio = 0;
    this.inner = new Small();
    this.color = Color.RED;
    this.b = 0;
    this.blob = new Tars.BinBuffer();
    this.f = 1.5;
    this.u = 0;
    this.tail = '';
}
Opts._classname = 'interop.Opts';
Opts._write = function (os, tag, v) { os.writeStruct(tag, v); };
Opts.prototype._writeTo = function (os) {
    os.writeInt32(0, this.id);
    if (this.count !== 0) os.writeInt32(1, this.count);
    if (this.name !== 'dflt') os.writeString(2, this.name);
    os.writeBoolean(3, this.flag);
    if (this.items.length > 0) os.writeList(4, this.items);
    if (this.attrs.size() > 0) os.writeMap(5, this.attrs);
    if (this.big !== 7) os.writeInt64(6, this.big);
    if (this.ratio !== 0) os.writeDouble(7, this.ratio);
    os.writeStruct(8, this.inner);
    os.writeInt32(9, this.color);
    if (this.b !== 0) os.writeInt8(10, this.b);
    if (this.blob.length > 0) os.writeBytes(11, this.blob);
    if (this.f !== 1.5) os.writeFloat(12, this.f);
    if (this.u !== 0) os.writeUInt32(13, this.u);
    if (this.tail !== '') os.writeString(200, this.tail);
};

function optsSet() {
    const o = new Opts();
    o.id = 42;
    o.count = -7;
    o.name = 'custom';
    o.flag = true;
    o.items = list(Tars.Int32, [1, 2, 3]);
    o.attrs = map(Tars.String, Tars.String, [['a', '1'], ['b', '2']]);
    o.big = 1099511627776; // 2^40
    o.ratio = 0.125;
    o.inner = new Small(9, 'in');
    o.color = Color.BLUE;
    o.b = -5;
    o.blob = bin([9, 8, 7]);
    o.f = 2.5;
    o.u = 4000000000;
    o.tail = 'end';
    return o;
}

// struct Middle { 0 optional vector<Small> items; 1 optional string note; };
function Middle() {
    this.items = Tars.List(Small);
    this.note = '';
}
Middle._classname = 'interop.Middle';
Middle._write = function (os, tag, v) { os.writeStruct(tag, v); };
Middle.prototype._writeTo = function (os) {
    if (this.items.length > 0) os.writeList(0, this.items);
    if (this.note !== '') os.writeString(1, this.note);
};

// struct Outer { 0 require int id; 1 optional Middle mid; 2 optional map<string, Middle> byName; };
function Outer() {
    this.id = 0;
    this.mid = new Middle();
    this.byName = Tars.Map(Tars.String, Middle);
}
Outer._classname = 'interop.Outer';
Outer._write = function (os, tag, v) { os.writeStruct(tag, v); };
Outer.prototype._writeTo = function (os) {
    os.writeInt32(0, this.id);
    os.writeStruct(1, this.mid);
    if (this.byName.size() > 0) os.writeMap(2, this.byName);
};

// ---------------------------------------------------------------------------------------------
// integers

// [label, decimal value]. Each value is written with the narrowest declared type that holds it
// (byte/short/int/long = writeInt8/16/32/64) as "<type>_<label>", and also with writeInt64 as
// "long_<label>" (the width follows the value, not the declared type).
const INTS = [
    ['0', '0'], ['1', '1'], ['m1', '-1'], ['127', '127'], ['m128', '-128'],
    ['128', '128'], ['m129', '-129'], ['32767', '32767'], ['m32768', '-32768'],
    ['32768', '32768'], ['m32769', '-32769'], ['2p31m1', '2147483647'], ['m2p31', '-2147483648'],
    ['2p31', '2147483648'], ['m2p31m1', '-2147483649'], ['2p32', '4294967296'], ['m2p32', '-4294967296'],
    ['2p53m1', '9007199254740991'], ['m2p53p1', '-9007199254740991'],
    ['2p53p1', '9007199254740993'], ['m2p53m1', '-9007199254740993'],
    ['0x0123456789abcdef', '81985529216486895'], ['m0x0123456789abcdef', '-81985529216486895'],
    ['max', '9223372036854775807'], ['min', '-9223372036854775808'],
];

function narrowestType(v) {
    const b = BigInt(v);
    if (b >= -128n && b <= 127n) return 'byte';
    if (b >= -32768n && b <= 32767n) return 'short';
    if (b >= -2147483648n && b <= 2147483647n) return 'int';
    return 'long';
}

function writeLong(os, tag, v) {
    const b = BigInt(v);
    if (b >= -9007199254740991n && b <= 9007199254740991n) {
        os.writeInt64(tag, Number(v));
    } else {
        os.writeInt64(tag, v, true); // bString: exact int64 through big.js
    }
}

for (const [label, v] of INTS) {
    const ty = narrowestType(v);
    const writer = { byte: 'writeInt8', short: 'writeInt16', int: 'writeInt32' }[ty];
    if (writer) add(ty + '_' + label, enc(os => os[writer](0, Number(v))));
    add('long_' + label, enc(os => writeLong(os, 0, v)));
}

add('ubyte_200', enc(os => os.writeUInt8(0, 200)));
add('ubyte_255', enc(os => os.writeUInt8(0, 255)));
add('ushort_40000', enc(os => os.writeUInt16(0, 40000)));
add('ushort_65535', enc(os => os.writeUInt16(0, 65535)));
add('uint_3000000000', enc(os => os.writeUInt32(0, 3000000000)));
add('uint_4294967295', enc(os => os.writeUInt32(0, 4294967295)));
add('bool_true', enc(os => os.writeBoolean(0, true)));
add('bool_false', enc(os => os.writeBoolean(0, false)));

// ---------------------------------------------------------------------------------------------
// floats and doubles. f32 values are the JS double rounded to binary32 (as writeFloatBE does).

const FLOATS = [
    ['1_5', 1.5], ['m0_25', -0.25], ['3_4e38', 3.4e38], ['1em30', 1e-30], ['subnormal_1em40', 1e-40],
    ['third', 1 / 3], ['inf', Infinity], ['m_inf', -Infinity],
    // Node writes 0 (and -0) as ZeroTag; TarsCpp and tars-rs never narrow floats (divergence).
    ['zero', 0], ['m_zero', -0],
];
const DOUBLES = [
    ['1_5', 1.5], ['m0_25', -0.25], ['3_4e38', 3.4e38], ['1em300', 1e-300], ['min_subnormal', 5e-324],
    ['max', 1.7976931348623157e308], ['pi', Math.PI], ['inf', Infinity], ['m_inf', -Infinity],
    ['zero', 0], ['m_zero', -0],
];
for (const [label, v] of FLOATS) add('float_' + label, enc(os => os.writeFloat(0, v)));
for (const [label, v] of DOUBLES) add('double_' + label, enc(os => os.writeDouble(0, v)));

// ---------------------------------------------------------------------------------------------
// strings

add('string_empty', enc(os => os.writeString(0, '')));
add('string_ascii', enc(os => os.writeString(0, 'hello tars')));
add('string_utf8', enc(os => os.writeString(0, 'h\u00e9llo \u4e16\u754c \u{1F680}')));
add('string_255', enc(os => os.writeString(0, repeatPattern(255))));
add('string_256', enc(os => os.writeString(0, repeatPattern(256))));
add('string_70000', enc(os => os.writeString(0, repeatPattern(70000))));
add('string_utf8_256_bytes', enc(os => os.writeString(0, '\u00e9'.repeat(128))));

// ---------------------------------------------------------------------------------------------
// tags: every type at tags 0, 14, 15, 16, 200, 255

const TAG_VALUES = [
    ['int', (os, t) => os.writeInt32(t, 300)],
    ['zero', (os, t) => os.writeInt32(t, 0)],
    ['long', (os, t) => os.writeInt64(t, 1099511627776)],
    ['bool', (os, t) => os.writeBoolean(t, true)],
    ['float', (os, t) => os.writeFloat(t, -1.5)],
    ['double', (os, t) => os.writeDouble(t, 2.5)],
    ['string', (os, t) => os.writeString(t, 't')],
    ['bytes', (os, t) => os.writeBytes(t, bin([1, 2]))],
    ['list', (os, t) => os.writeList(t, list(Tars.Int32, [1]))],
    ['map', (os, t) => os.writeMap(t, map(Tars.String, Tars.String, [['k', 'v']]))],
    ['struct', (os, t) => os.writeStruct(t, new Small(5, 'x'))],
];
for (const tag of [0, 14, 15, 16, 200, 255]) {
    for (const [ty, write] of TAG_VALUES) add('tag' + tag + '_' + ty, enc(os => write(os, tag)));
}

// ---------------------------------------------------------------------------------------------
// vector<byte>, lists, maps

add('bytes_empty', enc(os => os.writeBytes(0, new Tars.BinBuffer())));
add('bytes_3_tag1', enc(os => os.writeBytes(1, bin([0x01, 0x03, 0xe8]))));
add('bytes_high', enc(os => os.writeBytes(0, bin([0x80, 0xff, 0x00, 0x7f]))));
add('bytes_256', enc(os => os.writeBytes(0, bin(Array.from({ length: 256 }, (_, i) => i)))));

add('list_int_empty', enc(os => os.writeList(0, list(Tars.Int32, []))));
add('list_int', enc(os => os.writeList(0, list(Tars.Int32, [1, 300, -1, 0, 70000, -2147483648]))));
add('list_long', enc(os => os.writeList(0,
    list(Tars.Int64, ['0', '1099511627776', '-1', '9223372036854775807', '-9223372036854775808'], true))));
add('list_string', enc(os => os.writeList(0, list(Tars.String, ['a', '', 'h\u00e9llo', repeatPattern(300)]))));
add('list_nested', enc(os => os.writeList(0,
    list(Tars.List(Tars.Int32), [list(Tars.Int32, [1, 2]), list(Tars.Int32, []), list(Tars.Int32, [3])]))));
add('list_bool', enc(os => os.writeList(0, list(Tars.Boolean, [true, false, true]))));
add('list_float', enc(os => os.writeList(0, list(Tars.Float, [0.5, -8]))));
add('list_double', enc(os => os.writeList(0, list(Tars.Double, [1.5, -2.25, 1e100]))));
add('list_ubyte', enc(os => os.writeList(0, list(Tars.UInt8, [0, 1, 200, 255]))));
add('list_bytes', enc(os => os.writeList(0, list(Tars.BinBuffer, [bin([1, 2]), new Tars.BinBuffer()]))));
add('list_struct', enc(os => os.writeList(0, list(Small, [new Small(1, 'a'), new Small(2, 'bb')]))));

add('map_empty', enc(os => os.writeMap(0, Tars.Map(Tars.String, Tars.String))));
add('map_string_string', enc(os => os.writeMap(0,
    map(Tars.String, Tars.String, [['alpha', '1'], ['beta', 'two'], ['gamma', '']]))));
add('map_int_string', enc(os => os.writeMap(0,
    map(Tars.Int32, Tars.String, [[0, 'zero'], [1, 'one'], [300, 'three hundred'], [70000, 'big']]))));
// Divergence: a JS object lists integer-like keys first (ascending), then the others in insertion
// order, so Node writes 1, 10, -5 although the keys were inserted sorted (-5, 1, 10).
add('map_int_string_negative_keys', enc(os => os.writeMap(0,
    map(Tars.Int32, Tars.String, [[-5, 'minus five'], [1, 'one'], [10, 'ten']]))));
add('map_string_list', enc(os => os.writeMap(0,
    map(Tars.String, Tars.List(Tars.Int32), [['a', list(Tars.Int32, [1, 2])], ['b', list(Tars.Int32, [])]]))));
add('map_string_struct', enc(os => os.writeMap(0,
    map(Tars.String, Small, [['x', new Small(1, 'one')], ['y', new Small(-1, '')]]))));
add('map_string_map', enc(os => os.writeMap(0,
    map(Tars.String, Tars.Map(Tars.String, Tars.String), [
        ['inner', map(Tars.String, Tars.String, [['k', 'v']])],
        ['none', Tars.Map(Tars.String, Tars.String)],
    ]))));
add('map_string_bytes', enc(os => os.writeMap(0,
    map(Tars.String, Tars.BinBuffer, [['a', bin([1, 2, 3])], ['b', new Tars.BinBuffer()]]))));

// ---------------------------------------------------------------------------------------------
// structs

add('struct_empty', enc(os => os.writeStruct(0, new Empty())));
add('struct_empty_body', enc(os => new Empty()._writeTo(os)));
add('struct_small_tag2', enc(os => os.writeStruct(2, new Small(5, 'x'))));
add('struct_opts_defaults', enc(os => os.writeStruct(0, new Opts())));
add('struct_opts_set', enc(os => os.writeStruct(0, optsSet())));
add('struct_opts_set_body', enc(os => optsSet()._writeTo(os)));
{
    const o = new Outer();
    o.id = 1;
    o.mid.items = list(Small, [new Small(1, 'a'), new Small(0, '')]);
    o.mid.note = 'n';
    const m2 = new Middle();
    m2.items = list(Small, [new Small(3, 'c')]);
    o.byName = map(Tars.String, Middle, [['empty', new Middle()], ['one', m2]]);
    add('struct_nested_full', enc(os => os.writeStruct(0, o)));
}
{
    const o = new Outer();
    o.id = 2; // mid present (structs are always written) but with its list and note empty
    add('struct_nested_empty', enc(os => os.writeStruct(0, o)));
}

// ---------------------------------------------------------------------------------------------
// whole frames

// tars-client.js compose(): a v1 request with context and a dyeing status entry.
const client = new TarsClientStream();
add('frame_v1_request', client.compose({
    iRequestId: 1,
    sServantName: 'Test.HelloServer.HelloObj',
    sFuncName: 'greet',
    appBuffer: enc(os => {
        os.writeInt32(1, 1000);
        os.writeString(2, 'tars');
        os.writeString(3, '');
        os.writeStruct(4, new Small(7, 'seven'));
        os.writeList(5, list(Tars.Int32, [1, 2, 3]));
    }),
    iTimeout: 3000,
    property: {
        context: { client: 'node', node_name: 'node-1' },
        dyeing: { dyeing: true, key: 'user42' },
    },
}));

// wire.md 2.13: greet(1000, "tars") with empty context and status.
add('frame_v1_request_spec_2_13', client.compose({
    iRequestId: 1,
    sServantName: 'Test.HelloServer.HelloObj',
    sFuncName: 'greet',
    appBuffer: enc(os => {
        os.writeInt32(1, 1000);
        os.writeString(2, 'tars');
        os.writeString(3, '');
    }),
    iTimeout: 3000,
}));

add('frame_v1_oneway', client.compose({
    iRequestId: 2,
    sServantName: 'Test.HelloServer.HelloObj',
    sFuncName: 'notify',
    appBuffer: enc(os => os.writeString(1, 'fire and forget')),
    property: { packetType: 1 },
}));

// A RequestPacket with several status entries, framed exactly as compose() does.
{
    const req = new RequestF.RequestPacket();
    req.iVersion = 1;
    req.cPacketType = 0;
    req.iMessageType = 0x80 | 0x100;
    req.iRequestId = 2147483647;
    req.sServantName = 'tars.tarsregistry.QueryObj';
    req.sFuncName = 'findObjectById';
    req.sBuffer = enc(os => os.writeString(1, 'Test.HelloServer.HelloObj'));
    req.iTimeout = 60000;
    req.context.insert('node_name', '10.0.0.1');
    req.status.insert('STATUS_GRID_KEY', 'g1');
    req.status.insert('STATUS_SETNAME_VALUE', 'app.sz.1');
    req.status.insert('STATUS_TRACE_KEY', 'f-abc|1|0');
    const os = new Tars.TarsOutputStream();
    os.setHeaderLength(0);
    req._writeTo(os);
    os.setHeaderLength(os.getBinBuffer().length);
    add('frame_v1_request_status', os.getBinBuffer().toNodeBuffer());
}

// TUP v3 request with Tars.Tup (attribute names inserted in sorted order).
{
    const tup = new Tars.Tup();
    tup.servantName = 'Test.HelloServer.HelloObj';
    tup.funcName = 'greet';
    tup.requestId = 7;
    tup.writeMap('attrs', map(Tars.String, Tars.String, [['k1', 'v1'], ['k2', 'v2']]));
    tup.writeInt64('big', '-9223372036854775808', true);
    tup.writeBytes('blob', bin([0xde, 0xad, 0xbe, 0xef]));
    tup.writeBoolean('flag', true);
    tup.writeInt32('id', 1000);
    tup.writeString('name', 'tars');
    tup.writeList('nums', list(Tars.Int32, [1, 300]));
    tup.writeDouble('ratio', 0.5);
    tup.writeStruct('small', new Small(5, 'x'));
    add('frame_tup_request', tup.encode());
}

// wire.md 2.10: the TUP sBuffer for {"id": 1000, "name": "tars"}.
{
    const attr = new Tars.UniAttribute();
    attr.writeInt32('id', 1000);
    attr.writeString('name', 'tars');
    add('tup_body_spec_2_10', attr.encode());
}

// tars-server.js composeTARS(): a v1 error reply with sResultDesc and a response context.
const server = new TarsServerStream();
add('frame_v1_response_error', server.compose({
    origin: { iVersion: 1, iMessageType: 4, iRequestId: 9 },
    iResultCode: -3,
    sResultDesc: "no function 'foo'",
    property: { context: { trace: 't1' } },
}));

// composeTARS(): the wire.md 2.13 reply (ret 0, reply "hi tars"), no sResultDesc, no context.
add('frame_v1_response_ok_spec_2_13', server.compose({
    origin: { iVersion: 1, iMessageType: 0, iRequestId: 1 },
    appBuffer: enc(os => {
        os.writeInt32(0, 0);
        os.writeString(3, 'hi tars');
    }),
    iResultCode: 0,
    sResultDesc: '',
}));

// tars-server.js composeTUP(): a TUP reply (RequestPacket-shaped).
{
    const attr = new Tars.UniAttribute();
    attr.writeInt32('', 0);
    attr.writeString('reply', 'hi tars');
    attr.writeInt32('tars_ret', 0);
    add('frame_tup_response', server.compose({
        origin: {
            iVersion: 3, iMessageType: 0, iRequestId: 7,
            sServantName: 'Test.HelloServer.HelloObj', sFuncName: 'greet',
        },
        appBuffer: attr.encode(),
        iResultCode: 0,
        sResultDesc: '',
    }));
}
add('frame_tup_response_error', server.compose({
    origin: {
        iVersion: 3, iMessageType: 0, iRequestId: 8,
        sServantName: 'Test.HelloServer.HelloObj', sFuncName: 'nosuch',
    },
    iResultCode: -3,
    sResultDesc: 'no function',
}));

// ---------------------------------------------------------------------------------------------
// framework structs (cases "fw_*", checked by protocol/tests/node_interop.rs)

require('./framework.js')({ Tars, RequestF, add, enc, list, map });

process.stdout.write(JSON.stringify(Object.fromEntries(cases), null, 1) + '\n');
