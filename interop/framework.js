'use strict';
// Framework structs (protocol/tars/*.tars) encoded with @tars/stream, for
// protocol/tests/node_interop.rs. Each struct's `_writeTo` is written by hand from the IDL,
// following TarsCpp's optional-field rules (wire.md 1.10): require members always written;
// optional members skipped when equal to their (explicit or implicit) default or empty;
// optional bool, enum and struct members always written.
//
// Every case name starts with "fw_"; vectors.js calls this module with its helpers.

module.exports = function framework({ Tars, RequestF, add, enc, list, map }) {
    /** Declares a struct type usable in Tars.List / Tars.Map. */
    function struct(name, defaults, writeTo, keyFields) {
        function T(values) {
            Object.assign(this, defaults(), values || {});
        }
        T._classname = 'tars.' + name;
        T._write = function (os, tag, v) { os.writeStruct(tag, v); };
        T.prototype._writeTo = function (os) { writeTo.call(this, os); };
        if (keyFields) {
            // Struct map keys (Tars.Map picks its MultiMap for types with _equal): entries are
            // written in insertion order, so callers insert them in TarsCpp's key order.
            T.prototype._equal = function (o) { return keyFields.every(f => this[f] === o[f]); };
            T.prototype._genKey = function () { return 'key:' + JSON.stringify(keyFields.map(f => this[f])); };
        }
        return T;
    }

    // ----------------------------------------------------------------------- EndpointF.tars

    const EndpointF = struct('EndpointF', () => ({
        host: '', port: 0, timeout: 0, istcp: 0, grid: 0, groupworkid: 0, grouprealid: 0, setId: '',
        qos: 0, bakFlag: 0, weight: 0, weightType: 0, authType: 0, nodeName: '',
    }), function (os) {
        os.writeString(0, this.host);
        os.writeInt32(1, this.port);
        os.writeInt32(2, this.timeout);
        os.writeInt32(3, this.istcp);
        os.writeInt32(4, this.grid);
        if (this.groupworkid !== 0) os.writeInt32(5, this.groupworkid);
        if (this.grouprealid !== 0) os.writeInt32(6, this.grouprealid);
        if (this.setId !== '') os.writeString(7, this.setId);
        if (this.qos !== 0) os.writeInt32(8, this.qos);
        if (this.bakFlag !== 0) os.writeInt32(9, this.bakFlag);
        if (this.weight !== 0) os.writeInt32(11, this.weight);
        if (this.weightType !== 0) os.writeInt32(12, this.weightType);
        if (this.authType !== 0) os.writeInt32(13, this.authType);
        if (this.nodeName !== '') os.writeString(14, this.nodeName);
    });

    const ObjectItem = struct('ObjectItem', () => ({
        vActiveEndpoints: Tars.List(EndpointF), vInactiveEndpoints: Tars.List(EndpointF),
    }), function (os) {
        if (this.vActiveEndpoints.length > 0) os.writeList(0, this.vActiveEndpoints);
        if (this.vInactiveEndpoints.length > 0) os.writeList(1, this.vInactiveEndpoints);
    });

    // wire.md 2.13: host 10.0.0.1, port 10001, timeout 60000, tcp, grid 0; optional zeros omitted.
    const epMinimal = new EndpointF({ host: '10.0.0.1', port: 10001, timeout: 60000, istcp: 1 });
    const epMixed = new EndpointF({
        host: 'node-2.example', port: 18600, timeout: 3000, istcp: 2, grid: -1,
        groupworkid: 0, grouprealid: 5, setId: 'app.sz.1', qos: 0, bakFlag: 1,
        weight: 100, weightType: 1, authType: 0, nodeName: 'node-2',
    });
    add('fw_endpointf_spec', enc(os => os.writeStruct(0, epMinimal)));
    add('fw_endpointf_mixed', enc(os => os.writeStruct(0, epMixed)));
    add('fw_object_item', enc(os => new ObjectItem({
        vActiveEndpoints: list(EndpointF, [epMinimal, epMixed]),
    })._writeTo(os)));
    // QueryF.findObjectById response sBuffer: the return value (vector<EndpointF>) at tag 0.
    add('fw_find_object_by_id_response', enc(os => os.writeList(0, list(EndpointF, [epMinimal, epMixed]))));

    // ---------------------------------------------------------------------------- StatF.tars

    const HEAD_KEY = ['masterName', 'slaveName', 'interfaceName', 'masterIp', 'slaveIp', 'slavePort',
        'returnValue', 'slaveSetName', 'slaveSetArea', 'slaveSetID', 'tarsVersion'];
    const StatMicMsgHead = struct('StatMicMsgHead', () => ({
        masterName: '', slaveName: '', interfaceName: '', masterIp: '', slaveIp: '', slavePort: 0,
        returnValue: 0, slaveSetName: '', slaveSetArea: '', slaveSetID: '', tarsVersion: '',
    }), function (os) {
        os.writeString(0, this.masterName);
        os.writeString(1, this.slaveName);
        os.writeString(2, this.interfaceName);
        os.writeString(3, this.masterIp);
        os.writeString(4, this.slaveIp);
        os.writeInt32(5, this.slavePort);
        os.writeInt32(6, this.returnValue);
        if (this.slaveSetName !== '') os.writeString(7, this.slaveSetName);
        if (this.slaveSetArea !== '') os.writeString(8, this.slaveSetArea);
        if (this.slaveSetID !== '') os.writeString(9, this.slaveSetID);
        if (this.tarsVersion !== '') os.writeString(10, this.tarsVersion);
    }, HEAD_KEY);

    const StatMicMsgBody = struct('StatMicMsgBody', () => ({
        count: 0, timeoutCount: 0, execCount: 0, intervalCount: Tars.Map(Tars.Int32, Tars.Int32),
        totalRspTime: 0, maxRspTime: 0, minRspTime: 0,
    }), function (os) {
        os.writeInt32(0, this.count);
        os.writeInt32(1, this.timeoutCount);
        os.writeInt32(2, this.execCount);
        os.writeMap(3, this.intervalCount);
        os.writeInt64(4, this.totalRspTime);
        os.writeInt32(5, this.maxRspTime);
        os.writeInt32(6, this.minRspTime);
    });

    // Two heads that differ first in slavePort: TarsCpp orders them 9000 < 10001 (numerically).
    const headA = new StatMicMsgHead({
        masterName: 'Test.Client', slaveName: 'Test.HelloServer', interfaceName: 'greet',
        masterIp: '10.0.0.1', slaveIp: '10.0.0.2', slavePort: 9000, returnValue: 0, tarsVersion: '3.0.0',
    });
    const headB = new StatMicMsgHead({
        masterName: 'Test.Client', slaveName: 'Test.HelloServer', interfaceName: 'greet',
        masterIp: '10.0.0.1', slaveIp: '10.0.0.2', slavePort: 10001, returnValue: -1,
        slaveSetName: 'app', slaveSetArea: 'sz', slaveSetID: '1',
    });
    const bodyA = new StatMicMsgBody({
        count: 10, timeoutCount: 1, execCount: 2,
        intervalCount: map(Tars.Int32, Tars.Int32, [[100, 5], [200, 3], [500, 1], [1000, 1]]),
        totalRspTime: 123456789012, maxRspTime: 999, minRspTime: 0,
    });
    const bodyB = new StatMicMsgBody({ count: 1, totalRspTime: 7, maxRspTime: 7, minRspTime: 7 });
    const stats = map(StatMicMsgHead, StatMicMsgBody, [[headA, bodyA], [headB, bodyB]]);
    add('fw_stat_mic_msg_map', enc(os => os.writeMap(0, stats)));
    // StatF.reportMicMsg(msg, bFromClient) request sBuffer: params at tags 1 and 2.
    add('fw_report_mic_msg_params', enc(os => {
        os.writeMap(1, stats);
        os.writeBoolean(2, true);
    }));

    // ------------------------------------------------------------------------ PropertyF.tars

    const StatPropMsgHead = struct('StatPropMsgHead', () => ({
        moduleName: '', ip: '', propertyName: '', setName: '', setArea: '', setID: '', sContainer: '',
        iPropertyVer: 1,
    }), function (os) {
        os.writeString(0, this.moduleName);
        os.writeString(1, this.ip);
        os.writeString(2, this.propertyName);
        if (this.setName !== '') os.writeString(3, this.setName);
        if (this.setArea !== '') os.writeString(4, this.setArea);
        if (this.setID !== '') os.writeString(5, this.setID);
        if (this.sContainer !== '') os.writeString(6, this.sContainer);
        if (this.iPropertyVer !== 1) os.writeInt32(7, this.iPropertyVer);
    });
    const propBase = { moduleName: 'Test.HelloServer', ip: '10.0.0.2', propertyName: 'queue size' };
    add('fw_stat_prop_head_default_ver', enc(os => os.writeStruct(0, new StatPropMsgHead(propBase))));
    add('fw_stat_prop_head_ver2', enc(os => os.writeStruct(0,
        new StatPropMsgHead(Object.assign({}, propBase, { setName: 'app', iPropertyVer: 2 })))));

    // ----------------------------------------------------------------------------- LogF.tars

    const LogInfo = struct('LogInfo', () => ({
        appname: '', servername: '', sFilename: '', sFormat: '', setdivision: '',
        bHasSufix: true, bHasAppNamePrefix: true, bHasSquareBracket: false,
        sConcatStr: '_', sSepar: '|', sLogType: '',
    }), function (os) {
        os.writeString(0, this.appname);
        os.writeString(1, this.servername);
        os.writeString(2, this.sFilename);
        os.writeString(3, this.sFormat);
        if (this.setdivision !== '') os.writeString(4, this.setdivision);
        os.writeBoolean(5, this.bHasSufix); // optional bool: always written
        os.writeBoolean(6, this.bHasAppNamePrefix);
        os.writeBoolean(7, this.bHasSquareBracket);
        if (this.sConcatStr !== '_') os.writeString(8, this.sConcatStr);
        if (this.sSepar !== '|') os.writeString(9, this.sSepar);
        if (this.sLogType !== '') os.writeString(10, this.sLogType);
    });
    const logBase = { appname: 'Test', servername: 'HelloServer', sFilename: 'access', sFormat: '%Y%m%d' };
    add('fw_loginfo_defaults', enc(os => os.writeStruct(0, new LogInfo(logBase))));
    add('fw_loginfo_custom', enc(os => os.writeStruct(0, new LogInfo(Object.assign({}, logBase, {
        setdivision: 'app.sz.1', bHasSufix: false, bHasAppNamePrefix: false, bHasSquareBracket: true,
        sConcatStr: '-', sSepar: ',', sLogType: '2hour',
    })))));

    // ---------------------------------------------------------------- RegistryDescriptor.tars

    const AdapterDescriptor = struct('AdapterDescriptor', () => ({
        adapterName: '', threadNum: '', endpoint: '', maxConnections: 0, allowIp: '', servant: '',
        queuecap: 0, queuetimeout: 0, grid: 0, protocol: '', handlegroup: '', shmkey: 0, shmcap: 0,
    }), function (os) {
        os.writeString(0, this.adapterName);
        os.writeString(1, this.threadNum);
        os.writeString(2, this.endpoint);
        os.writeInt32(3, this.maxConnections);
        os.writeString(4, this.allowIp);
        os.writeString(5, this.servant);
        os.writeInt32(6, this.queuecap);
        os.writeInt32(7, this.queuetimeout);
        os.writeInt32(8, this.grid);
        if (this.protocol !== '') os.writeString(9, this.protocol);
        if (this.handlegroup !== '') os.writeString(10, this.handlegroup);
        if (this.shmkey !== 0) os.writeInt32(11, this.shmkey);
        if (this.shmcap !== 0) os.writeInt32(12, this.shmcap);
    });

    const ServerDescriptor = struct('ServerDescriptor', () => ({
        application: '', serverName: '', nodeName: '', basePath: '', exePath: '', settingState: '',
        presentState: '', profile: '', patchVersion: '', patchTime: '', patchUser: '',
        adapters: Tars.Map(Tars.String, AdapterDescriptor), serverType: '', startScript: '',
        stopScript: '', monitorScript: '', configCenterPort: 0, asyncThreadNum: 0, setId: '',
        sJmx_port: '', runType: '', baseImage: '', sha: '', baseImageId: '',
    }), function (os) {
        os.writeString(0, this.application);
        os.writeString(1, this.serverName);
        os.writeString(2, this.nodeName);
        os.writeString(3, this.basePath);
        os.writeString(4, this.exePath);
        os.writeString(5, this.settingState);
        os.writeString(6, this.presentState);
        os.writeString(7, this.profile);
        os.writeString(8, this.patchVersion);
        os.writeString(9, this.patchTime);
        os.writeString(10, this.patchUser);
        os.writeMap(11, this.adapters);
        if (this.serverType !== '') os.writeString(12, this.serverType);
        if (this.startScript !== '') os.writeString(13, this.startScript);
        if (this.stopScript !== '') os.writeString(14, this.stopScript);
        if (this.monitorScript !== '') os.writeString(15, this.monitorScript);
        if (this.configCenterPort !== 0) os.writeInt32(16, this.configCenterPort);
        if (this.asyncThreadNum !== 0) os.writeInt32(17, this.asyncThreadNum);
        if (this.setId !== '') os.writeString(18, this.setId);
        if (this.sJmx_port !== '') os.writeString(19, this.sJmx_port);
        if (this.runType !== '') os.writeString(20, this.runType);
        if (this.baseImage !== '') os.writeString(21, this.baseImage);
        if (this.sha !== '') os.writeString(22, this.sha);
        if (this.baseImageId !== '') os.writeString(23, this.baseImageId);
    });

    const server = new ServerDescriptor({
        application: 'Test', serverName: 'HelloServer', nodeName: '10.0.0.2',
        basePath: '/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/',
        exePath: '/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/HelloServer',
        settingState: 'active', presentState: 'inactive', profile: '', patchVersion: '42',
        patchTime: '2024-01-02 03:04:05', patchUser: 'admin',
        adapters: map(Tars.String, AdapterDescriptor, [
            ['Test.HelloServer.AdminAdapter', new AdapterDescriptor({
                adapterName: 'Test.HelloServer.AdminAdapter', threadNum: '1',
                endpoint: 'tcp -h 127.0.0.1 -p 20001 -t 60000', maxConnections: 64, allowIp: '',
                servant: 'AdminObj', queuecap: 100, queuetimeout: 60000, grid: 0,
            })],
            ['Test.HelloServer.HelloObjAdapter', new AdapterDescriptor({
                adapterName: 'Test.HelloServer.HelloObjAdapter', threadNum: '5',
                endpoint: 'tcp -h 10.0.0.2 -p 10001 -t 60000', maxConnections: 100000,
                allowIp: '10.0.0.0/8', servant: 'Test.HelloServer.HelloObj', queuecap: 50000,
                queuetimeout: 20000, grid: 0, protocol: 'not_tars', handlegroup: 'grp', shmkey: 5, shmcap: 6,
            })],
        ]),
        serverType: 'tars_cpp', startScript: '', stopScript: 'stop.sh', monitorScript: '',
        configCenterPort: 0, asyncThreadNum: 3, setId: '', sJmx_port: '', runType: 'container',
        baseImage: 'tars/base:latest', sha: '', baseImageId: 'sha256:abc',
    });
    add('fw_server_descriptor', enc(os => os.writeStruct(0, server)));
    add('fw_server_descriptor_body', enc(os => server._writeTo(os)));

    // ------------------------------------------------------------------------- RequestF.tars

    // @tars/rpc's own RequestPacket / ResponsePacket as top-level bodies (no length prefix).
    const req = new RequestF.RequestPacket();
    req.iVersion = 1;
    req.iMessageType = 0x104;
    req.iRequestId = -7;
    req.sServantName = 'tars.tarsregistry.QueryObj';
    req.sFuncName = 'findObjectById';
    req.sBuffer = enc(os => os.writeString(1, 'Test.HelloServer.HelloObj'));
    req.iTimeout = 3000;
    req.context.insert('node_name', '10.0.0.1');
    req.status.insert('STATUS_DYED_KEY', 'u1');
    add('fw_request_packet', req.toBinBuffer());

    const rsp = new RequestF.ResponsePacket();
    rsp.iVersion = 1;
    rsp.iRequestId = -7;
    rsp.iMessageType = 0x104;
    rsp.iRet = -6;
    rsp.sBuffer = enc(os => os.writeList(0, list(EndpointF, [epMinimal])));
    rsp.status.insert('TARS_FUNC', 'push');
    rsp.sResultDesc = 'server invoke timeout';
    rsp.context.insert('k', 'v');
    add('fw_response_packet', rsp.toBinBuffer());
};
