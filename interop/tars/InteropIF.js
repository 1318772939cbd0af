'use strict';
// The Interop interface of testkit/tars/Interop.tars as data, shared by InteropProxy.js (client)
// and Interop.js (servant). For each method: the tars2node-style "$IF" description (name,
// return class, arguments with class and direction, as @tars/rpc's tars_invoke/tup_invoke
// receive it) plus, per return value and parameter, the @tars/stream calls tars2node generates
// for that type:
//
//   version 1 (tars): return value at tag 0, parameters at tags 1.. in declaration order
//                     (in and out parameters share the numbering);
//   version 2/3 (TUP): UniAttribute entries, return value under "", parameters by name.
//
// The generated code's reads differ only in `require` / default per position, so each type
// gives `r(is, tag, require)` (tars) and `tr(tup, name, def)` (TUP; def === undefined means the
// key is required, UniAttribute then throws TupNotFoundKey when it is absent).

const TarsStream = require('@tars/stream');
const { TarsTest } = require('./InteropTars.js');

const TYPES = {
    int32: {
        cls: 'int32',
        def: () => 0,
        w: (os, tag, v) => os.writeInt32(tag, v),
        r: (is, tag, req) => is.readInt32(tag, req, 0),
        tw: (tup, name, v) => tup.writeInt32(name, v),
        tr: (tup, name, def) => tup.readInt32(name, def),
    },
    int64: {
        cls: 'int64',
        def: () => 0,
        w: (os, tag, v) => os.writeInt64(tag, v),
        r: (is, tag, req) => is.readInt64(tag, req, 0),
        tw: (tup, name, v) => tup.writeInt64(name, v),
        tr: (tup, name, def) => tup.readInt64(name, def),
    },
    string: {
        cls: 'string',
        def: () => '',
        w: (os, tag, v) => os.writeString(tag, v),
        r: (is, tag, req) => is.readString(tag, req, ''),
        tw: (tup, name, v) => tup.writeString(name, v),
        tr: (tup, name, def) => tup.readString(name, def),
    },
    // vector<byte>: a SIMPLE_LIST (type 13) of bytes, a TarsStream.BinBuffer in JS.
    bytes: {
        cls: 'list(char)',
        def: () => new TarsStream.BinBuffer(),
        w: (os, tag, v) => os.writeBytes(tag, v),
        r: (is, tag, req) => is.readBytes(tag, req, TarsStream.BinBuffer),
        tw: (tup, name, v) => tup.writeBytes(name, v),
        tr: (tup, name, def) => tup.readBytes(name, def),
    },
    Payload: {
        cls: 'TarsTest.Payload',
        def: () => new TarsTest.Payload(),
        w: (os, tag, v) => os.writeStruct(tag, v),
        r: (is, tag, req) => is.readStruct(tag, req, TarsTest.Payload),
        tw: (tup, name, v) => tup.writeStruct(name, v),
        tr: (tup, name, def) => tup.readStruct(name, TarsTest.Payload, def),
    },
};

// [name, return type or null for void, [[param, type, 'in' | 'out'], ...]]: IDL order.
const METHODS = [
    ['echoString', 'string', [['s', 'string', 'in']]],
    ['addInts', 'int64', [['a', 'int32', 'in'], ['b', 'int64', 'in']]],
    ['roundTrip', 'int32', [['p', 'Payload', 'in'], ['echoed', 'Payload', 'out']]],
    ['splitName', 'int32', [['full', 'string', 'in'], ['first', 'string', 'out'], ['last', 'string', 'out']]],
    ['fail', 'int32', [['code', 'int32', 'in']]],
    ['fire', null, [['note', 'string', 'in']]],
    ['lastFired', 'int32', [['note', 'string', 'out']]],
    ['bigBlob', 'bytes', [['size', 'int32', 'in']]],
    ['slowEcho', 'int32', [['v', 'int32', 'in'], ['delayMs', 'int32', 'in'], ['echoed', 'int32', 'out']]],
];

function describe([name, ret, params]) {
    const args = params.map(([pname, type, dir], i) => ({ name: pname, type: TYPES[type], tag: i + 1, dir }));
    return {
        name,
        ret: ret === null ? null : TYPES[ret],
        args,
        ins: args.filter((a) => a.dir === 'in'),
        outs: args.filter((a) => a.dir === 'out'),
        // What tars2node puts in __<Module>_<Interface>$<method>$IF.
        IF: {
            name,
            return: ret === null ? 'void' : TYPES[ret].cls,
            arguments: args.map((a) => ({ name: a.name, class: a.type.cls, direction: a.dir })),
        },
    };
}

module.exports.TarsTest = TarsTest;
module.exports.TYPES = TYPES;
module.exports.METHODS = METHODS.map(describe);
module.exports.isTup = (version) =>
    version === TarsStream.Tup.TUP_SIMPLE || version === TarsStream.Tup.TUP_COMPLEX;
