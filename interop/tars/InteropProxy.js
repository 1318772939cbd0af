'use strict';
// Client proxy for TarsTest.Interop (testkit/tars/Interop.tars) on @tars/rpc 2.0.15.
//
// Hand-written in place of `tars2node --client` output (the generator is not on npm); it keeps
// the generated proxy's contract, checked against tars2node 20200707's output for Interop.tars
// (see README.md):
//   const proxy = require('@tars/rpc').client.stringToProxy(TarsTest.InteropProxy, 'Obj@tcp ...');
//   proxy.setTimeout(ms); proxy.setVersion(1 | 2 | 3);       // before the first call
//   proxy.<method>(in args..., [property]) -> Promise of
//       {request, response: {costtime, return, arguments: {<out param>: value, ...}}}
//   rejected with an Error whose .response.error = {code, message} (name "RPC_ERROR", or
//   "DECODE_ERROR" with code -11000 when the reply body cannot be decoded).
// The optional last argument is @tars/rpc's call property ({packetType: 1} for a oneway call,
// context, dyeing, hashCode); like generated code, the last argument is always passed on and
// tars_invoke ignores it unless it is such an object.
// Version 1 encodes the in parameters at their declaration tags (out parameters are not sent);
// version 2/3 wraps them in a UniAttribute by name and reads the reply's UniAttribute: return
// value under "" (default when absent), out parameters by name (required).
// Like newer tars2node, the proxy also gets `tars_ping()` (void, no parameters).
//
// One addition to the generated shape: a rejected call's error also carries `rpcResponse`, the
// reply packet @tars/rpc decoded (a ResponsePacket for version 1, a RequestPacket with the
// STATUS_RESULT_CODE / STATUS_RESULT_DESC status entries for TUP), or undefined.

const TarsStream = require('@tars/stream');
const TarsError = require('@tars/rpc').error;
const { TarsTest, METHODS, isTup } = require('./InteropIF.js');

module.exports.TarsTest = TarsTest;

function makeError(data, message, type) {
    const error = new Error(message || '');
    error.request = data.request;
    error.response = { costtime: data.request.costtime };
    if (type === TarsError.CLIENT.DECODE_ERROR) {
        error.name = 'DECODE_ERROR';
        error.response.error = { code: type, message };
    } else {
        error.name = 'RPC_ERROR';
        error.response.error = data.error;
    }
    error.rpcResponse = data.response;
    return error;
}

TarsTest.InteropProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
TarsTest.InteropProxy.prototype.setTimeout = function (iTimeout) { this._worker.timeout = iTimeout; };
TarsTest.InteropProxy.prototype.getTimeout = function () { return this._worker.timeout; };
TarsTest.InteropProxy.prototype.setVersion = function (iVersion) { this._worker.version = iVersion; };
TarsTest.InteropProxy.prototype.getVersion = function () { return this._worker.version; };

function defineMethod(m) {
    // IE: version 1 request body.
    const encodeTars = (inValues) => {
        const os = new TarsStream.TarsOutputStream();
        m.ins.forEach((a, i) => a.type.w(os, a.tag, inValues[i]));
        return os.getBinBuffer();
    };
    // PE: TUP request body (tup_invoke encodes it with the proxy's version).
    const encodeTup = (inValues, version) => {
        const tup = new TarsStream.UniAttribute();
        tup.tupVersion = version;
        m.ins.forEach((a, i) => a.type.tw(tup, a.name, inValues[i]));
        return tup;
    };
    // ID / PD: reply body.
    const decode = (data, tup) => {
        try {
            const response = { costtime: data.request.costtime };
            if (m.ret === null && m.outs.length === 0) {
                return { request: data.request, response }; // void: the body is not read
            }
            if (tup) {
                const attr = data.response.tup;
                if (m.ret !== null) response.return = m.ret.tr(attr, '', m.ret.def());
                if (m.outs.length > 0) response.arguments = {};
                for (const a of m.outs) response.arguments[a.name] = a.type.tr(attr, a.name, undefined);
            } else {
                const is = new TarsStream.TarsInputStream(data.response.sBuffer);
                if (m.ret !== null) response.return = m.ret.r(is, 0, true);
                if (m.outs.length > 0) response.arguments = {};
                for (const a of m.outs) response.arguments[a.name] = a.type.r(is, a.tag, true);
            }
            return { request: data.request, response };
        } catch (e) {
            throw makeError(data, e.message, TarsError.CLIENT.DECODE_ERROR);
        }
    };
    // ER
    const onError = (data) => {
        throw makeError(data, 'Call Interop::' + m.name + ' failed');
    };

    TarsTest.InteropProxy.prototype[m.name] = function (...args) {
        const inValues = args.slice(0, m.ins.length);
        const property = arguments[arguments.length - 1];
        const version = this._worker.version;
        if (isTup(version)) {
            return this._worker.tup_invoke(m.name, encodeTup(inValues, version), property, m.IF)
                .then((data) => decode(data, true), onError);
        }
        return this._worker.tars_invoke(m.name, encodeTars(inValues), property, m.IF)
            .then((data) => decode(data, false), onError);
    };
    TarsTest.InteropProxy[m.name] = m.IF;
}

METHODS.forEach(defineMethod);
defineMethod({
    name: 'tars_ping', ret: null, args: [], ins: [], outs: [],
    IF: { name: 'tars_ping', return: 'void', arguments: [] },
});
