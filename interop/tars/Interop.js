'use strict';
// Servant base for TarsTest.Interop (testkit/tars/Interop.tars) on @tars/rpc 2.0.15.
//
// Hand-written in place of `tars2node --server` output (the generator is not on npm); it keeps
// the generated servant's contract, checked against tars2node 20200707's output for
// Interop.tars (see README.md):
//   - TarsTest.InteropImp is the handleImp given to @tars/rpc's server (BindAdapterOption);
//     the framework calls `initialize()` once, then `onDispatch(current, funcName, binBuffer)`
//     per request, which runs `__<funcName>` or returns FUNC_NOT_FOUND (-3); any non-zero
//     return, or an exception, makes the framework send an error reply (BindAdapter.js).
//   - `__<method>` decodes the parameters (version 1: in parameters required at their tags, out
//     parameters optional; TUP: in parameters required by name, out parameters optional), sets
//     `current.sendResponse` to the method's encoder and calls
//     `this.<method>(current, <all parameters in declaration order>)`.
//   - the implementation answers with `current.sendResponse(ret, <out values in order>)`
//     (no arguments for a void method), or fails the call with
//     `current.sendErrorResponse(code, message)`. Replies to oneway requests are dropped by
//     the framework (TarsCurrent.js).
//   - `__tars_ping` answers every ping with return value 0.
// The JSON_VERSION (5) branch that newer tars2node adds is left out: every version other than
// 2 and 3 is decoded as version 1, as older tars2node output does.

const assert = require('assert');
const TarsStream = require('@tars/stream');
const TarsError = require('@tars/rpc').error;
const { TarsTest, METHODS, TYPES, isTup } = require('./InteropIF.js');

module.exports.TarsTest = TarsTest;

TarsTest.InteropImp = function () {
    this._name = undefined;
    this._worker = undefined;
};

TarsTest.InteropImp.prototype.initialize = function () {};

TarsTest.InteropImp.prototype.onDispatch = function (current, funcName, binBuffer) {
    if ('__' + funcName in this) {
        return this['__' + funcName](current, binBuffer);
    }
    return TarsError.SERVER.FUNC_NOT_FOUND;
};

// RE: `this` is the TarsCurrent.
function makeResponder(m) {
    if (m.ret === null && m.outs.length === 0) {
        return function () { this.doResponse(new TarsStream.BinBuffer()); };
    }
    return function (ret, ...outValues) {
        const version = this.getRequestVersion();
        if (isTup(version)) {
            const tup = new TarsStream.UniAttribute();
            tup.tupVersion = version;
            if (m.ret !== null) m.ret.tw(tup, '', ret);
            m.outs.forEach((a, i) => a.type.tw(tup, a.name, outValues[i]));
            this.doResponse(tup.encode());
        } else {
            const os = new TarsStream.TarsOutputStream();
            if (m.ret !== null) m.ret.w(os, 0, ret);
            m.outs.forEach((a, i) => a.type.w(os, a.tag, outValues[i]));
            this.doResponse(os.getBinBuffer());
        }
    };
}

function defineMethod(m) {
    const respond = makeResponder(m);
    TarsTest.InteropImp.prototype[m.name] = function () {
        assert.fail(m.name + ' function not implemented');
    };
    TarsTest.InteropImp.prototype['__' + m.name] = function (current, binBuffer) {
        const version = current.getRequestVersion();
        let values;
        if (isTup(version)) {
            const tup = new TarsStream.UniAttribute();
            tup.tupVersion = version;
            tup.decode(binBuffer);
            values = m.args.map((a) => a.type.tr(tup, a.name, a.dir === 'in' ? undefined : a.type.def()));
        } else {
            const is = new TarsStream.TarsInputStream(binBuffer);
            values = m.args.map((a) => a.type.r(is, a.tag, a.dir === 'in'));
        }
        current.sendResponse = respond;
        this[m.name](current, ...values);
        return TarsError.SUCCESS;
    };
}

METHODS.forEach(defineMethod);

const respondPing = makeResponder({ ret: TYPES.int32, outs: [] });
TarsTest.InteropImp.prototype.__tars_ping = function (current) {
    respondPing.call(current, 0);
    return TarsError.SUCCESS;
};
