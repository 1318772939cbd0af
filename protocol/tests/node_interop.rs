//! The generated framework structs against the official Node encoder.
//!
//! `interop/framework.js` (run through `interop/vectors.js`) encodes framework structs with
//! `@tars/stream` 2.0.3, using hand-written `_writeTo` functions that mirror our IDL and
//! TarsCpp's optional-field rules, plus `@tars/rpc` 2.0.15's own RequestPacket/ResponsePacket.
//! For every `fw_*` case this test builds the same value with the generated types in
//! `tars_protocol::tars`, asserts our bytes equal Node's, and decodes Node's bytes back to the
//! original value. A case present on one side only is a failure; the other cases belong to
//! `core-net/tests/node_interop.rs`.
//!
//! Needs `node` on the PATH and `npm ci --prefix interop` run once from the workspace root; the
//! test fails (it never skips) when either is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;

use bytes::Bytes;
use tars_proto::codec::{Field, Reader, Struct, Writer};
use tars_proto::json;
use tars_protocol::tars;

#[path = "../../interop/node.rs"]
mod node;

/// The Node cases this test owns.
const FRAMEWORK_PREFIX: &str = "fw_";

/// Runs vectors.js and returns its `fw_*` cases, `name -> bytes`.
fn node_framework_vectors() -> BTreeMap<String, Vec<u8>> {
    let stdout = node::run_vectors();
    let parsed = json::parse(&stdout).expect("vectors.js printed invalid JSON");
    let obj = parsed.as_object().expect("vectors.js must print a JSON object");
    obj.iter()
        .filter(|(name, _)| name.starts_with(FRAMEWORK_PREFIX))
        .map(|(name, v)| {
            let hex = match v {
                json::Value::String(h) => Some(h.as_str()),
                _ => None,
            };
            node::case_bytes(name, hex)
        })
        .collect()
}

type EncodeFn = Box<dyn Fn() -> Vec<u8>>;
type CheckFn = Box<dyn Fn(&[u8]) -> Result<(), String>>;

struct Case {
    name: &'static str,
    encode: EncodeFn,
    decode: CheckFn,
    extra: Vec<CheckFn>,
}

impl Case {
    /// Node's bytes must equal `hex` (an example checked against TarsCpp's encoder).
    fn spec(mut self, hex: &'static str) -> Case {
        self.extra.push(Box::new(move |node| {
            let want = hex::decode(hex.replace(' ', "")).map_err(|e| e.to_string())?;
            if node == want.as_slice() {
                Ok(())
            } else {
                Err(format!("Node's bytes differ from the TarsCpp example\n{}", diff("TarsCpp", &want, node)))
            }
        }));
        self
    }
}

fn eq<T: PartialEq + Debug>(got: &T, want: &T) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("decoded  {got:?}\n      expected {want:?}"))
    }
}

/// A value written as one field at `tag`.
fn field<T: Field + PartialEq + Debug + Clone + 'static>(name: &'static str, tag: u8, v: T) -> Case {
    let want = v.clone();
    Case {
        name,
        encode: Box::new(move || {
            let mut w = Writer::new();
            v.write_to(tag, &mut w);
            w.freeze().to_vec()
        }),
        decode: Box::new(move |b| {
            let mut r = Reader::new(b);
            let got: T = r.read_required(tag).map_err(|e| format!("decode: {e}"))?;
            if !r.is_empty() {
                return Err(format!("{} bytes left after the field", r.remaining()));
            }
            eq(&got, &want)
        }),
        extra: Vec::new(),
    }
}

/// A struct as a top-level body (no struct markers).
fn body<S: Struct + PartialEq + Debug + Clone + 'static>(name: &'static str, v: S) -> Case {
    let want = v.clone();
    Case {
        name,
        encode: Box::new(move || v.encode().to_vec()),
        decode: Box::new(move |b| {
            eq(&S::decode(b).map_err(|e| format!("decode: {e}"))?, &want)?;
            eq(&S::decode_bytes(&Bytes::copy_from_slice(b)).map_err(|e| format!("decode_bytes: {e}"))?, &want)
        }),
        extra: Vec::new(),
    }
}

/// A function's parameters (a bare field sequence), written by `write` and checked by `read`.
fn params(
    name: &'static str,
    write: impl Fn(&mut Writer) + 'static,
    read: impl Fn(&mut Reader<'_>) -> Result<(), String> + 'static,
) -> Case {
    Case {
        name,
        encode: Box::new(move || {
            let mut w = Writer::new();
            write(&mut w);
            w.freeze().to_vec()
        }),
        decode: Box::new(move |b| {
            let mut r = Reader::new(b);
            read(&mut r)?;
            if r.is_empty() {
                Ok(())
            } else {
                Err(format!("{} bytes left", r.remaining()))
            }
        }),
        extra: Vec::new(),
    }
}

fn s(x: &str) -> String {
    x.to_owned()
}

fn smap(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries.iter().map(|(k, v)| (s(k), s(v))).collect()
}

// ---------------------------------------------------------------------------------------------
// The values (same as interop/framework.js)

fn ep_minimal() -> tars::EndpointF {
    tars::EndpointF { host: s("10.0.0.1"), port: 10001, timeout: 60000, istcp: 1, ..Default::default() }
}

fn ep_mixed() -> tars::EndpointF {
    tars::EndpointF {
        host: s("node-2.example"),
        port: 18600,
        timeout: 3000,
        istcp: 2,
        grid: -1,
        groupworkid: 0,
        grouprealid: 5,
        set_id: s("app.sz.1"),
        qos: 0,
        bak_flag: 1,
        weight: 100,
        weight_type: 1,
        auth_type: 0,
        node_name: s("node-2"),
    }
}

fn stats() -> BTreeMap<tars::StatMicMsgHead, tars::StatMicMsgBody> {
    let head_a = tars::StatMicMsgHead {
        master_name: s("Test.Client"),
        slave_name: s("Test.HelloServer"),
        interface_name: s("greet"),
        master_ip: s("10.0.0.1"),
        slave_ip: s("10.0.0.2"),
        slave_port: 9000,
        return_value: 0,
        tars_version: s("3.0.0"),
        ..Default::default()
    };
    let head_b = tars::StatMicMsgHead {
        slave_port: 10001,
        return_value: -1,
        slave_set_name: s("app"),
        slave_set_area: s("sz"),
        slave_set_id: s("1"),
        tars_version: String::new(),
        ..head_a.clone()
    };
    let body_a = tars::StatMicMsgBody {
        count: 10,
        timeout_count: 1,
        exec_count: 2,
        interval_count: BTreeMap::from([(100, 5), (200, 3), (500, 1), (1000, 1)]),
        total_rsp_time: 123_456_789_012,
        max_rsp_time: 999,
        min_rsp_time: 0,
    };
    let body_b =
        tars::StatMicMsgBody { count: 1, total_rsp_time: 7, max_rsp_time: 7, min_rsp_time: 7, ..Default::default() };
    // head_b is inserted second but would sort first if slavePort compared as text
    BTreeMap::from([(head_b, body_b), (head_a, body_a)])
}

fn prop_head() -> tars::StatPropMsgHead {
    tars::StatPropMsgHead {
        module_name: s("Test.HelloServer"),
        ip: s("10.0.0.2"),
        property_name: s("queue size"),
        ..Default::default()
    }
}

fn log_base() -> tars::LogInfo {
    tars::LogInfo {
        appname: s("Test"),
        servername: s("HelloServer"),
        s_filename: s("access"),
        s_format: s("%Y%m%d"),
        ..Default::default()
    }
}

fn server_descriptor() -> tars::ServerDescriptor {
    let admin = tars::AdapterDescriptor {
        adapter_name: s("Test.HelloServer.AdminAdapter"),
        thread_num: s("1"),
        endpoint: s("tcp -h 127.0.0.1 -p 20001 -t 60000"),
        max_connections: 64,
        allow_ip: String::new(),
        servant: s("AdminObj"),
        queuecap: 100,
        queuetimeout: 60000,
        grid: 0,
        ..Default::default()
    };
    let hello = tars::AdapterDescriptor {
        adapter_name: s("Test.HelloServer.HelloObjAdapter"),
        thread_num: s("5"),
        endpoint: s("tcp -h 10.0.0.2 -p 10001 -t 60000"),
        max_connections: 100_000,
        allow_ip: s("10.0.0.0/8"),
        servant: s("Test.HelloServer.HelloObj"),
        queuecap: 50000,
        queuetimeout: 20000,
        grid: 0,
        protocol: s("not_tars"),
        handlegroup: s("grp"),
        shmkey: 5,
        shmcap: 6,
    };
    tars::ServerDescriptor {
        application: s("Test"),
        server_name: s("HelloServer"),
        node_name: s("10.0.0.2"),
        base_path: s("/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/"),
        exe_path: s("/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/HelloServer"),
        setting_state: s("active"),
        present_state: s("inactive"),
        profile: String::new(),
        patch_version: s("42"),
        patch_time: s("2024-01-02 03:04:05"),
        patch_user: s("admin"),
        adapters: BTreeMap::from([(admin.adapter_name.clone(), admin), (hello.adapter_name.clone(), hello)]),
        server_type: s("tars_cpp"),
        stop_script: s("stop.sh"),
        async_thread_num: 3,
        run_type: s("container"),
        base_image: s("tars/base:latest"),
        base_image_id: s("sha256:abc"),
        ..Default::default()
    }
}

fn cases() -> Vec<Case> {
    vec![
        field("fw_endpointf_spec", 0, ep_minimal())
            .spec("0A 06 08 31 30 2E 30 2E 30 2E 31 11 27 11 22 00 00 EA 60 30 01 4C 0B"),
        field("fw_endpointf_mixed", 0, ep_mixed()),
        body(
            "fw_object_item",
            tars::ObjectItem { v_active_endpoints: vec![ep_minimal(), ep_mixed()], v_inactive_endpoints: vec![] },
        ),
        field("fw_find_object_by_id_response", 0, vec![ep_minimal(), ep_mixed()]),
        field("fw_stat_mic_msg_map", 0, stats()),
        params(
            "fw_report_mic_msg_params",
            |w| {
                stats().write_to(1, w);
                true.write_to(2, w);
            },
            |r| {
                eq(&r.read_required(1).map_err(|e| format!("msg: {e}"))?, &stats())?;
                eq(&r.read_required::<bool>(2).map_err(|e| format!("bFromClient: {e}"))?, &true)
            },
        ),
        field("fw_stat_prop_head_default_ver", 0, prop_head()),
        field(
            "fw_stat_prop_head_ver2",
            0,
            tars::StatPropMsgHead { set_name: s("app"), i_property_ver: 2, ..prop_head() },
        ),
        field("fw_loginfo_defaults", 0, log_base()),
        field(
            "fw_loginfo_custom",
            0,
            tars::LogInfo {
                setdivision: s("app.sz.1"),
                b_has_sufix: false,
                b_has_app_name_prefix: false,
                b_has_square_bracket: true,
                s_concat_str: s("-"),
                s_separ: s(","),
                s_log_type: s("2hour"),
                ..log_base()
            },
        ),
        field("fw_server_descriptor", 0, server_descriptor()),
        body("fw_server_descriptor_body", server_descriptor()),
        body(
            "fw_request_packet",
            tars_proto::packet::RequestPacket {
                i_version: 1,
                c_packet_type: 0,
                i_message_type: 0x104,
                i_request_id: -7,
                s_servant_name: s("tars.tarsregistry.QueryObj"),
                s_func_name: s("findObjectById"),
                s_buffer: {
                    let mut w = Writer::new();
                    w.write_str(1, "Test.HelloServer.HelloObj");
                    w.freeze()
                },
                i_timeout: 3000,
                context: smap(&[("node_name", "10.0.0.1")]),
                status: smap(&[("STATUS_DYED_KEY", "u1")]),
            },
        ),
        body(
            "fw_response_packet",
            tars_proto::packet::ResponsePacket {
                i_version: 1,
                c_packet_type: 0,
                i_request_id: -7,
                i_message_type: 0x104,
                i_ret: -6,
                s_buffer: {
                    let mut w = Writer::new();
                    vec![ep_minimal()].write_to(0, &mut w);
                    w.freeze()
                },
                status: smap(&[("TARS_FUNC", "push")]),
                s_result_desc: s("server invoke timeout"),
                context: smap(&[("k", "v")]),
            },
        ),
    ]
}

fn spaced(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

fn diff(label: &str, ours: &[u8], node: &[u8]) -> String {
    let first = ours.iter().zip(node).position(|(a, b)| a != b).unwrap_or(ours.len().min(node.len()));
    format!(
        "      {label}: {} bytes, node: {} bytes, first difference at offset {first}\n      {label:>5}: {}\n       node: {}\n",
        ours.len(),
        node.len(),
        spaced(ours),
        spaced(node)
    )
}

#[test]
fn node_framework_cases_match_generated_structs() {
    let vectors = node_framework_vectors();
    let cases = cases();

    let node_names: BTreeSet<&str> = vectors.keys().map(String::as_str).collect();
    let mut our_names = BTreeSet::new();
    for c in &cases {
        assert!(c.name.starts_with(FRAMEWORK_PREFIX), "{} must start with {FRAMEWORK_PREFIX}", c.name);
        assert!(our_names.insert(c.name), "duplicate case {}", c.name);
    }
    let only_node: Vec<_> = node_names.difference(&our_names).collect();
    let only_ours: Vec<_> = our_names.difference(&node_names).collect();
    assert!(
        only_node.is_empty() && only_ours.is_empty(),
        "case lists out of sync\n  in interop/framework.js only: {only_node:?}\n  in this test only: {only_ours:?}"
    );

    let mut failures = Vec::new();
    for case in &cases {
        let node = &vectors[case.name];
        let ours = (case.encode)();
        if &ours != node {
            failures.push(format!("[{}] our encoding differs from Node's\n{}", case.name, diff("ours", &ours, node)));
        }
        if let Err(e) = (case.decode)(node) {
            failures.push(format!("[{}] decoding Node's bytes: {e}", case.name));
        }
        if let Err(e) = (case.decode)(&ours) {
            failures.push(format!("[{}] decoding our own bytes: {e}", case.name));
        }
        for check in &case.extra {
            if let Err(e) = check(node) {
                failures.push(format!("[{}] {e}", case.name));
            }
        }
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
    assert!(cases.len() >= 14, "only {} framework cases", cases.len());
}
