'use strict';
// Client proxy for tars.ServerF (protocol/tars/NodeF.tars), the interface every server calls on
// its node (tars.tarsnode.ServerObj), on @tars/rpc 2.0.15 and @tars/stream 2.0.3; used by
// ./bin/node-agent.
//
// Hand-written in place of `tars2node --client` output (the generator is not on npm), in the
// shape of the NodeFProxy.js that upstream's @tars/node-agent ships: struct tars.ServerInfo,
// proxy tars.ServerFProxy with one method per IDL operation, version 1 (tars) encoding only,
// which is all node-agent uses.
//
// Tags, copied from protocol/tars/NodeF.tars:
//   struct ServerInfo { 0 require string application; 1 require string serverName;
//                       2 require int pid; 3 optional string adapter; };
//   int keepAlive(ServerInfo serverInfo)                          serverInfo at tag 1
//   int keepActiving(ServerInfo serverInfo)                       serverInfo at tag 1
//   int reportVersion(string app, string serverName, string version)  tags 1, 2, 3
//   unsigned int getLatestKeepAliveTime()
// The return value is read at tag 0. Like generated code, the optional `adapter` is always
// written (TarsCpp skips an empty optional string; both decode the same).
// ./check_proxy.js compares every request body with ../tars/FrameworkIF.js's encoding of the
// IDL (node/tests/nodejs.rs runs it); our tarsnode decoding the calls is the end-to-end check.
//
//   const proxy = require('@tars/rpc').client.stringToProxy(tars.ServerFProxy,
//       'tars.tarsnode.ServerObj@tcp -h 127.0.0.1 -p 19386 -t 60000');
//   const si = new tars.ServerInfo(); si.application = 'App'; ...
//   proxy.keepAlive(si)  -> Promise of {request, response: {costtime, return}}
//   rejected with {request, response: {costtime, error: {code, message}}}

const TarsStream = require('@tars/stream');
const TarsError = require('@tars/rpc').error;

const tars = {};
module.exports.tars = tars;

tars.ServerInfo = function () {
    this.application = '';
    this.serverName = '';
    this.pid = 0;
    this.adapter = '';
    this._classname = 'tars.ServerInfo';
};
tars.ServerInfo._classname = 'tars.ServerInfo';
tars.ServerInfo._write = function (os, tag, value) { os.writeStruct(tag, value); };
tars.ServerInfo._read = function (is, tag, def) { return is.readStruct(tag, true, def); };
tars.ServerInfo._readFrom = function (is) {
    const tmp = new tars.ServerInfo();
    tmp.application = is.readString(0, true, '');
    tmp.serverName = is.readString(1, true, '');
    tmp.pid = is.readInt32(2, true, 0);
    tmp.adapter = is.readString(3, false, '');
    return tmp;
};
tars.ServerInfo.prototype._writeTo = function (os) {
    os.writeString(0, this.application);
    os.writeString(1, this.serverName);
    os.writeInt32(2, this.pid);
    os.writeString(3, this.adapter);
};
tars.ServerInfo.prototype.toObject = function () {
    return { application: this.application, serverName: this.serverName, pid: this.pid, adapter: this.adapter };
};

tars.ServerFProxy = function () {
    this._name = undefined;
    this._worker = undefined;
};
tars.ServerFProxy.prototype.setTimeout = function (iTimeout) { this._worker.timeout = iTimeout; };
tars.ServerFProxy.prototype.getTimeout = function () { return this._worker.timeout; };

function decoder(readReturn) {
    return function (data) {
        try {
            const is = new TarsStream.TarsInputStream(data.response.sBuffer);
            return { request: data.request, response: { costtime: data.request.costtime, return: readReturn(is) } };
        } catch (e) {
            throw {
                request: data.request,
                response: {
                    costtime: data.request.costtime,
                    error: { code: TarsError.CLIENT.DECODE_ERROR, message: e.message },
                },
            };
        }
    };
}

function onError(data) {
    throw { request: data.request, response: { costtime: data.request.costtime, error: data.error } };
}

const readInt = (is) => is.readInt32(0, true, 0);

function encodeServerInfo(serverInfo) {
    const os = new TarsStream.TarsOutputStream();
    os.writeStruct(1, serverInfo);
    return os.getBinBuffer();
}

tars.ServerFProxy.prototype.keepAlive = function (serverInfo) {
    return this._worker.tars_invoke('keepAlive', encodeServerInfo(serverInfo), arguments[arguments.length - 1])
        .then(decoder(readInt), onError);
};

tars.ServerFProxy.prototype.keepActiving = function (serverInfo) {
    return this._worker.tars_invoke('keepActiving', encodeServerInfo(serverInfo), arguments[arguments.length - 1])
        .then(decoder(readInt), onError);
};

tars.ServerFProxy.prototype.reportVersion = function (app, serverName, version) {
    const os = new TarsStream.TarsOutputStream();
    os.writeString(1, app);
    os.writeString(2, serverName);
    os.writeString(3, version);
    return this._worker.tars_invoke('reportVersion', os.getBinBuffer(), arguments[arguments.length - 1])
        .then(decoder(readInt), onError);
};

tars.ServerFProxy.prototype.getLatestKeepAliveTime = function () {
    const os = new TarsStream.TarsOutputStream();
    return this._worker.tars_invoke('getLatestKeepAliveTime', os.getBinBuffer(), arguments[arguments.length - 1])
        .then(decoder((is) => is.readUInt32(0, true, 0)), onError);
};
