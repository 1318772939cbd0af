//! The generated framework types: the envelope's optional members,
//! known byte examples as TarsCpp encodes them, and property round trips.

use proptest::prelude::*;
use std::collections::BTreeMap;
use tars_proto::codec::{Field, Reader, Struct, Writer};
use tars_proto::packet;
use tars_proto::rpc::{ParamReader, ParamWriter};
use tars_protocol::tars;

#[test]
fn response_packet_omits_empty_optionals() {
    // TarsCpp writes an optional member only when it differs from its default; so does the
    // envelope generated from RequestF.tars.
    let bytes = packet::ResponsePacket { i_version: 1, ..Default::default() }.encode();
    let mut r = Reader::new(&bytes);
    assert_eq!(r.read_required::<i16>(1).expect("iVersion"), 1);
    assert_eq!(r.read_optional::<String>(8).expect("reads"), None);
    let full = packet::ResponsePacket { i_version: 1, s_result_desc: "no func".into(), ..Default::default() };
    let bytes = full.encode();
    let mut r = Reader::new(&bytes);
    assert_eq!(r.read_optional::<String>(8).expect("reads").as_deref(), Some("no func"));
    assert_eq!(packet::ResponsePacket::decode(&bytes).expect("decodes"), full);
}

#[test]
fn endpoint_and_server_info_examples() {
    // One minimal EndpointF inside a findObjectById reply, as TarsCpp encodes it.
    let ep = tars::EndpointF { host: "10.0.0.1".into(), port: 10001, timeout: 60000, istcp: 1, ..Default::default() };
    let mut w = Writer::new();
    ep.write_to(0, &mut w);
    assert_eq!(hex::encode(w.as_slice()), "0a060831302e302e302e31112711220000ea6030014c0b");
    // ServerF.keepAlive's ServerInfo.
    let si = tars::ServerInfo {
        application: "Test".into(),
        server_name: "HelloServer".into(),
        pid: 12345,
        adapter: "Test.HelloServer.HelloObjAdapter".into(),
    };
    let mut w = Writer::new();
    si.write_to(1, &mut w);
    let want = format!(
        "1a0604{}160b{}2130393620{}0b",
        hex::encode("Test"),
        hex::encode("HelloServer"),
        hex::encode("Test.HelloServer.HelloObjAdapter")
    );
    assert_eq!(hex::encode(w.as_slice()), want);
}

#[test]
fn idl_defaults_and_enums() {
    let li = tars::LogInfo::default();
    assert!(li.b_has_sufix && li.b_has_app_name_prefix && !li.b_has_square_bracket);
    assert_eq!((li.s_concat_str.as_str(), li.s_separ.as_str()), ("_", "|"));
    // iPropertyVer defaults to 1 and is then never on the wire.
    let head = tars::StatPropMsgHead { module_name: "m".into(), ..Default::default() };
    assert_eq!(head.i_property_ver, 1);
    let bytes = head.encode();
    assert_eq!(Reader::new(&bytes).read_optional::<i32>(7).expect("reads"), None);
    assert_eq!(tars::ServerState::Active.0, 2);
    assert_eq!(tars::AUTH_STATE::AUTH_INIT.0, -127);
    assert_eq!(tars::TARSSERVERUNKNOWNERR, packet::ret::UNKNOWN);
    assert_eq!(tars::JSONVERSION, packet::version::JSON);
    assert_eq!(tars::QUERYF_METHODS.len(), 10);
}

#[test]
fn stat_heads_order_as_map_keys() {
    // key[StatMicMsgHead, ...] covers every member, in tag order.
    let a = tars::StatMicMsgHead { master_name: "a".into(), slave_port: 9, ..Default::default() };
    let b = tars::StatMicMsgHead { master_name: "b".into(), slave_port: 1, ..Default::default() };
    let mut m = BTreeMap::new();
    m.insert(b.clone(), tars::StatMicMsgBody { count: 2, ..Default::default() });
    m.insert(a.clone(), tars::StatMicMsgBody { count: 1, ..Default::default() });
    assert_eq!(m.keys().collect::<Vec<_>>(), [&a, &b]);
}

fn endpoint() -> impl Strategy<Value = tars::EndpointF> {
    (".{0,16}", any::<i32>(), any::<i32>(), 0..3i32, any::<i32>(), any::<i32>(), ".{0,8}", any::<i32>(), ".{0,8}")
        .prop_map(|(host, port, timeout, istcp, grid, weight, set_id, qos, node_name)| tars::EndpointF {
            host,
            port,
            timeout,
            istcp,
            grid,
            weight,
            set_id,
            qos,
            node_name,
            ..Default::default()
        })
}

fn adapter() -> impl Strategy<Value = tars::AdapterDescriptor> {
    (".{0,12}", ".{0,30}", any::<i32>(), ".{0,12}", any::<i32>(), ".{0,6}", any::<i32>()).prop_map(
        |(adapter_name, endpoint, max_connections, servant, queuecap, protocol, shmkey)| tars::AdapterDescriptor {
            adapter_name,
            endpoint,
            max_connections,
            servant,
            queuecap,
            protocol,
            shmkey,
            ..Default::default()
        },
    )
}

fn stat_head() -> impl Strategy<Value = tars::StatMicMsgHead> {
    (".{0,8}", ".{0,8}", ".{0,8}", any::<i32>(), any::<i32>(), ".{0,4}").prop_map(
        |(master_name, slave_name, interface_name, slave_port, return_value, tars_version)| tars::StatMicMsgHead {
            master_name,
            slave_name,
            interface_name,
            slave_port,
            return_value,
            tars_version,
            ..Default::default()
        },
    )
}

fn stat_body() -> impl Strategy<Value = tars::StatMicMsgBody> {
    (any::<i32>(), any::<i32>(), prop::collection::btree_map(any::<i32>(), any::<i32>(), 0..9), any::<i64>()).prop_map(
        |(count, timeout_count, interval_count, total_rsp_time)| tars::StatMicMsgBody {
            count,
            timeout_count,
            interval_count,
            total_rsp_time,
            ..Default::default()
        },
    )
}

proptest! {
    #[test]
    fn endpoints_round_trip(eps in prop::collection::vec(endpoint(), 0..8)) {
        let item = tars::ObjectItem { v_active_endpoints: eps.clone(), v_inactive_endpoints: eps };
        prop_assert_eq!(tars::ObjectItem::decode(&item.encode()).expect("decodes"), item);
    }

    #[test]
    fn server_descriptors_round_trip(
        app in ".{0,8}",
        state in ".{0,8}",
        adapters in prop::collection::btree_map(".{0,8}", adapter(), 0..4),
        async_threads in any::<i32>(),
    ) {
        let d = tars::ServerDescriptor {
            application: app,
            setting_state: state,
            adapters,
            async_thread_num: async_threads,
            ..Default::default()
        };
        prop_assert_eq!(tars::ServerDescriptor::decode(&d.encode()).expect("decodes"), d);
    }

    #[test]
    fn stat_reports_round_trip(entries in prop::collection::vec((stat_head(), stat_body()), 0..6), from_client in any::<bool>()) {
        let mut m = BTreeMap::new();
        for (k, v) in entries {
            m.entry(k).or_insert(v);
        }
        let mut w = ParamWriter::new(1);
        w.write(1, "msg", &m);
        w.write(2, "bFromClient", &from_client);
        let body = w.finish();
        let mut r = ParamReader::new(1, &body).expect("reader");
        let back: BTreeMap<tars::StatMicMsgHead, tars::StatMicMsgBody> = r.read(1, "msg").expect("decodes");
        prop_assert_eq!(back, m);
        prop_assert_eq!(r.read::<bool>(2, "bFromClient").expect("decodes"), from_client);
    }
}
