'use strict';
// Servant bases for the TARS framework interfaces of FrameworkIF.js on @tars/rpc 2.0.15:
// tars.ServerFImp, tars.StatFImp, tars.PropertyFImp, tars.LogImp, tars.NotifyImp,
// tars.ConfigImp and tars.QueryFImp (tars2node's `<module>.<interface>Imp` names).
//
// Hand-written in the shape of `tars2node --server` output (see Interop.js and README.md),
// with one difference: parameters are the plain JSON-ready values of FrameworkIF.js, not
// @tars/stream objects, and replies take plain values too.
//   - the Imp is the handleImp of a BindAdapterOption; @tars/rpc calls `initialize()`, then
//     `onDispatch(current, funcName, binBuffer)` per request, which runs `__<funcName>` or
//     returns FUNC_NOT_FOUND (-3); an exception (e.g. a decode error) makes the framework send
//     an error reply (DECODE_ERROR unless the exception has a code, BindAdapter.js).
//   - `__<method>` decodes the parameters (version 1: in parameters required at their tags;
//     TUP 2/3: in parameters required by name), sets `current.sendResponse` to the method's
//     encoder and calls `this.<method>(current, <all parameters in declaration order>)`, out
//     parameters as their defaults.
//   - the implementation answers `current.sendResponse(ret, <out values in order>)` (no
//     arguments for a void method) or `current.sendErrorResponse(code, message)`; the
//     framework drops replies to oneway requests (cPacketType 1, TarsCurrent.js).
//   - `__tars_ping` answers every ping with return value 0.
//   - `Imp.METHODS` lists the method descriptions (name, ret, args with name/type/tag/dir).
// Any version other than 2 and 3 is decoded as version 1, as tars2node output does.

const assert = require('assert');
const TarsStream = require('@tars/stream');
const TarsError = require('@tars/rpc').error;
const { TYPES, INTERFACES, isTup, tupRead, tupWrite } = require('./FrameworkIF.js');

const tars = {};
module.exports.tars = tars;

// `this` is the TarsCurrent.
function makeResponder(m) {
    if (m.ret === null && m.outs.length === 0) {
        return function () { this.doResponse(new TarsStream.BinBuffer()); };
    }
    return function (ret, ...outValues) {
        const version = this.getRequestVersion();
        if (isTup(version)) {
            const attr = new TarsStream.UniAttribute();
            attr.tupVersion = version;
            if (m.ret !== null) tupWrite(attr, '', m.ret, ret);
            m.outs.forEach((a, i) => tupWrite(attr, a.name, a.type, outValues[i]));
            this.doResponse(attr.encode());
        } else {
            const os = new TarsStream.TarsOutputStream();
            if (m.ret !== null) m.ret.write(os, 0, ret);
            m.outs.forEach((a, i) => a.type.write(os, a.tag, outValues[i]));
            this.doResponse(os.getBinBuffer());
        }
    };
}

/** The values of all parameters of `m` from a request body (out parameters: defaults). */
function decodeParams(m, version, binBuffer) {
    if (isTup(version)) {
        const attr = new TarsStream.UniAttribute();
        attr.tupVersion = version;
        attr.decode(binBuffer);
        return m.args.map((a) => {
            if (a.dir === 'out') return a.type.def();
            const v = tupRead(attr, a.name, a.type);
            if (v === undefined) throw new TarsStream.TupNotFoundKey('UniAttribute not found key:' + a.name);
            return v;
        });
    }
    const is = new TarsStream.TarsInputStream(binBuffer);
    return m.args.map((a) => (a.dir === 'out' ? a.type.def() : a.type.read(is, a.tag, true)));
}

function defineServant(interfaceName) {
    const Imp = function () {
        this._name = undefined;
        this._worker = undefined;
    };
    Imp.METHODS = INTERFACES[interfaceName];
    Imp.prototype.initialize = function () {};
    Imp.prototype.onDispatch = function (current, funcName, binBuffer) {
        if ('__' + funcName in this) {
            return this['__' + funcName](current, binBuffer);
        }
        return TarsError.SERVER.FUNC_NOT_FOUND;
    };
    for (const m of Imp.METHODS) {
        const respond = makeResponder(m);
        Imp.prototype[m.name] = function () {
            assert.fail(m.name + ' function not implemented');
        };
        Imp.prototype['__' + m.name] = function (current, binBuffer) {
            const values = decodeParams(m, current.getRequestVersion(), binBuffer);
            current.sendResponse = respond;
            this[m.name](current, ...values);
            return TarsError.SUCCESS;
        };
    }
    const respondPing = makeResponder({ ret: TYPES.int, outs: [] });
    Imp.prototype.__tars_ping = function (current) {
        respondPing.call(current, 0);
        return TarsError.SUCCESS;
    };
    tars[interfaceName + 'Imp'] = Imp;
}

Object.keys(INTERFACES).forEach(defineServant);
