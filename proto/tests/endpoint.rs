//! Endpoint and object/locator strings (TarsCpp `util/src/tc_clientsocket.cpp`,
//! `TC_Endpoint::parse`): every option, the defaults, the weight rules, the list splitting, the
//! limits and the round trips.

use tars_proto::endpoint::{
    Endpoint, EndpointError, ObjectRef, Transport, DEFAULT_TIMEOUT_MS, MAX_ENDPOINTS, MAX_ENDPOINT_LEN, MAX_HOST_LEN,
    MAX_OBJECT_LEN,
};

fn ep(s: &str) -> Endpoint {
    Endpoint::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn obj(s: &str) -> ObjectRef {
    ObjectRef::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn round_trip_ep(e: &Endpoint) {
    let text = e.to_string();
    assert_eq!(&Endpoint::parse(&text).unwrap_or_else(|err| panic!("{text:?}: {err}")), e, "{text}");
}

fn round_trip_obj(o: &ObjectRef) {
    let text = o.to_string();
    assert_eq!(&ObjectRef::parse(&text).unwrap_or_else(|err| panic!("{text:?}: {err}")), o, "{text}");
}

#[test]
fn transport_istcp_both_ways() {
    for (t, n, w) in [(Transport::Udp, 0, "udp"), (Transport::Tcp, 1, "tcp"), (Transport::Ssl, 2, "ssl")] {
        assert_eq!(t.istcp(), n);
        assert_eq!(Transport::from_istcp(n), Some(t));
        assert_eq!(t.as_str(), w);
        assert_eq!(Transport::from_word(w), Some(t));
        assert_eq!(t.to_string(), w);
    }
    assert_eq!(Transport::from_istcp(3), None);
    assert_eq!(Transport::from_istcp(-1), None);
    assert_eq!(Transport::from_word("TCP"), None);
    assert_eq!(ep("ssl -h a -p 1").istcp(), 2);
    assert_eq!(ep("udp -h a -p 1").transport, Transport::Udp);
}

#[test]
fn basic_and_defaults() {
    let e = ep("tcp -h 1.2.3.4 -p 10000 -t 60000");
    assert_eq!(e.transport, Transport::Tcp);
    assert_eq!(e.host, "1.2.3.4");
    assert_eq!(e.port, 10000);
    assert_eq!(e.timeout_ms, 60000);

    let d = ep("tcp -h host");
    assert_eq!(d, Endpoint::new(Transport::Tcp, "host", 0));
    assert_eq!(d.port, 0);
    assert_eq!(d.timeout_ms, DEFAULT_TIMEOUT_MS);
    assert_eq!(d.timeout_ms, 3000);
    assert_eq!((d.grid, d.qos, d.weight, d.weight_type, d.auth_type), (0, 0, -1, 0, 0));
    assert_eq!(d.bind, None);
}

#[test]
fn every_option() {
    let e = ep("ssl -h h.example -p 65535 -t 0 -g 3 -q 46 -w 70 -v 1 -e 1 -b 10.1.1.1");
    let want = Endpoint {
        transport: Transport::Ssl,
        host: "h.example".into(),
        port: 65535,
        timeout_ms: 0,
        grid: 3,
        qos: 46,
        weight: 70,
        weight_type: 1,
        auth_type: 1,
        bind: Some("10.1.1.1".into()),
    };
    assert_eq!(e, want);
    assert_eq!(e.to_string(), "ssl -h h.example -p 65535 -t 0 -g 3 -q 46 -w 70 -v 1 -e 1 -b 10.1.1.1");
    round_trip_ep(&e);
}

#[test]
fn tabs_newlines_and_repeated_options() {
    let e = ep("\t tcp\r\n-h  a\t-p 1  -h b -p 2 ");
    assert_eq!(e.host, "b");
    assert_eq!(e.port, 2);
    assert_eq!(ep("tcp -h a -p +80").port, 80);
}

#[test]
fn display_omits_zero_and_unset() {
    assert_eq!(ep("tcp -h a -p 1").to_string(), "tcp -h a -p 1 -t 3000");
    assert_eq!(ep("udp -h a -p 1 -t 5 -g 0 -q 0 -e 0").to_string(), "udp -h a -p 1 -t 5");
    // A weight without a weight type is kept as is and written back.
    assert_eq!(ep("tcp -h a -p 1 -w 0").to_string(), "tcp -h a -p 1 -t 3000 -w 0");
    assert_eq!(ep("tcp -h a -p 1 -w 500").weight, 500);
}

#[test]
fn weight_rules() {
    // -v != 0 and no -w: weight becomes 100.
    let e = ep("tcp -h a -p 1 -v 1");
    assert_eq!((e.weight, e.weight_type), (100, 1));
    assert_eq!(e.to_string(), "tcp -h a -p 1 -t 3000 -w 100 -v 1");
    // Capped at 100 with -v.
    assert_eq!(ep("tcp -h a -p 1 -w 250 -v 1").weight, 100);
    // Order does not matter.
    assert_eq!(ep("tcp -h a -p 1 -v 1 -w 250").weight, 100);
    assert_eq!(ep("tcp -h a -p 1 -v 2 -w 30").weight, 30);
    // Without -v nothing is changed.
    assert_eq!(ep("tcp -h a -p 1 -w 250").weight, 250);
    assert_eq!(ep("tcp -h a -p 1 -v 0").weight, -1);
    for s in ["tcp -h a -p 1 -v 1", "tcp -h a -p 1 -w 250 -v 1", "tcp -h a -p 1 -w 250"] {
        round_trip_ep(&ep(s));
    }
}

#[test]
fn star_means_any() {
    let e = ep("tcp -h * -p 10000");
    assert_eq!(e.host, "0.0.0.0");
    assert_eq!(e.to_string(), "tcp -h 0.0.0.0 -p 10000 -t 3000");
}

#[test]
fn ipv6_hosts() {
    let e = ep("tcp -h ::1 -p 80");
    assert_eq!(e.host, "::1");
    assert_eq!(e.port, 80);
    round_trip_ep(&e);
    assert_eq!(ep("udp -h fe80::1:2 -p 9").host, "fe80::1:2");

    let o = obj("App.S.Obj@tcp -h ::1 -p 80:tcp -h fe80::a:b -p 81 -t 10: udp -h 2001:db8:: -p 82");
    let hosts: Vec<&str> = o.endpoints.iter().map(|e| e.host.as_str()).collect();
    assert_eq!(hosts, ["::1", "fe80::a:b", "2001:db8::"]);
    assert_eq!(o.endpoints[1].timeout_ms, 10);
    assert_eq!(o.endpoints[2].transport, Transport::Udp);
    round_trip_obj(&o);
}

#[test]
fn hosts_containing_transport_words() {
    let o = obj("A.B.C@tcp -h mytcphost -p 1:tcp -h udp.example -p 2:udp -h ssl-tcp-udp -p 3:tcp -h tcp -p 4");
    let hosts: Vec<&str> = o.endpoints.iter().map(|e| e.host.as_str()).collect();
    assert_eq!(hosts, ["mytcphost", "udp.example", "ssl-tcp-udp", "tcp"]);
    let ports: Vec<u16> = o.endpoints.iter().map(|e| e.port).collect();
    assert_eq!(ports, [1, 2, 3, 4]);
    // A ':' inside a host followed by a transport word that does not end there is no split.
    let o = obj("A.B.C@tcp -h a:tcpx -p 1:tcp -h b:udp.x -p 2");
    assert_eq!(o.endpoints.len(), 2);
    assert_eq!(o.endpoints[0].host, "a:tcpx");
    assert_eq!(o.endpoints[1].host, "b:udp.x");
    round_trip_obj(&o);
}

#[test]
fn unknown_options_ignored() {
    let e = ep("tcp -h a -x foo -p 5 -z -f 1 -Q");
    assert_eq!(e.host, "a");
    assert_eq!(e.port, 5);
    assert_eq!(e.to_string(), "tcp -h a -p 5 -t 3000");
}

#[test]
fn errors() {
    assert_eq!(Endpoint::parse("tcp -p 1"), Err(EndpointError::MissingHost));
    assert_eq!(Endpoint::parse("tcp -h -p 1"), Err(EndpointError::MissingValue { option: 'h' }));
    assert_eq!(Endpoint::parse("tcp -h"), Err(EndpointError::MissingValue { option: 'h' }));
    assert_eq!(
        Endpoint::parse("tcp -h a -p 70000"),
        Err(EndpointError::BadValue { option: 'p', value: "70000".into() })
    );
    assert_eq!(Endpoint::parse("tcp -h a -p x"), Err(EndpointError::BadValue { option: 'p', value: "x".into() }));
    assert_eq!(Endpoint::parse("tcp -h a -p"), Err(EndpointError::MissingValue { option: 'p' }));
    assert_eq!(Endpoint::parse("tcp -h a -e 2"), Err(EndpointError::BadValue { option: 'e', value: "2".into() }));
    assert_eq!(Endpoint::parse("tcp -h a -e x"), Err(EndpointError::BadValue { option: 'e', value: "x".into() }));
    assert_eq!(
        Endpoint::parse("tcp -h a -t 2147483648"),
        Err(EndpointError::BadValue { option: 't', value: "2147483648".into() })
    );
    // Arguments cannot start with '-': a negative value reads as a missing one.
    assert_eq!(Endpoint::parse("tcp -h a -w -5"), Err(EndpointError::MissingValue { option: 'w' }));
    assert_eq!(Endpoint::parse("tcp -h a -g"), Err(EndpointError::MissingValue { option: 'g' }));
    assert_eq!(Endpoint::parse("tcp -h a -q 1.5"), Err(EndpointError::BadValue { option: 'q', value: "1.5".into() }));
    assert_eq!(Endpoint::parse("tcp -h a -v y"), Err(EndpointError::BadValue { option: 'v', value: "y".into() }));
    assert_eq!(Endpoint::parse("tcp -h a -b"), Err(EndpointError::MissingValue { option: 'b' }));
    assert_eq!(Endpoint::parse("tcp -h a -port 1"), Err(EndpointError::BadToken("-port".into())));
    assert_eq!(Endpoint::parse("tcp -h a stray"), Err(EndpointError::BadToken("stray".into())));
    assert_eq!(Endpoint::parse("quic -h a"), Err(EndpointError::UnknownTransport("quic".into())));
    assert_eq!(Endpoint::parse("TCP -h a"), Err(EndpointError::UnknownTransport("TCP".into())));
    assert_eq!(Endpoint::parse(" \t "), Err(EndpointError::Empty));
    assert_eq!(Endpoint::parse(""), Err(EndpointError::Empty));

    let msg = Endpoint::parse("tcp -h a -p x").map_err(|e| e.to_string());
    assert_eq!(msg, Err("-p: invalid value `x`".to_owned()));
    assert_eq!(Endpoint::parse("tcp -p 1").map_err(|e| e.to_string()), Err("missing host (-h)".to_owned()));
}

#[test]
fn spec_examples() {
    let loc = obj("tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890");
    assert_eq!(loc.name, "tars.tarsregistry.QueryObj");
    assert_eq!(loc.servant_name(), "tars.tarsregistry.QueryObj");
    assert!(loc.is_direct());
    assert_eq!(loc.hash, None);
    assert_eq!(loc.endpoints.len(), 2);
    assert_eq!(loc.endpoints[0], Endpoint::new(Transport::Tcp, "10.0.0.1", 17890));
    assert_eq!(loc.endpoints[1], Endpoint::new(Transport::Tcp, "10.0.0.2", 17890));
    assert_eq!(
        loc.to_string(),
        "tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890 -t 3000:tcp -h 10.0.0.2 -p 17890 -t 3000"
    );
    round_trip_obj(&loc);

    let direct = obj("App.Server.Obj@tcp -h 10.0.0.1 -p 10001 -t 60000:tcp -h 10.0.0.2 -p 10001");
    assert_eq!(direct.endpoints[0].timeout_ms, 60000);
    assert_eq!(direct.endpoints[1].timeout_ms, 3000);
    assert_eq!(direct.endpoints[1].port, 10001);

    let indirect = obj("App.Server.Obj");
    assert_eq!(indirect.name, "App.Server.Obj");
    assert!(!indirect.is_direct());
    assert!(indirect.endpoints.is_empty());
    assert_eq!(indirect.to_string(), "App.Server.Obj");
}

#[test]
fn hash_and_servant_name() {
    let o = obj("App.Server.Obj#hash@tcp -h a -p 1:tcp -h b -p 2");
    assert_eq!(o.name, "App.Server.Obj");
    assert_eq!(o.servant_name(), "App.Server.Obj");
    assert_eq!(o.hash.as_deref(), Some("hash"));
    assert_eq!(o.endpoints.len(), 2);
    assert_eq!(o.endpoints[1].host, "b");
    assert_eq!(o.to_string(), "App.Server.Obj#hash@tcp -h a -p 1 -t 3000:tcp -h b -p 2 -t 3000");
    round_trip_obj(&o);

    let o = obj("App.Server.Obj#7");
    assert_eq!((o.servant_name(), o.hash.as_deref(), o.is_direct()), ("App.Server.Obj", Some("7"), false));
    assert_eq!(o.to_string(), "App.Server.Obj#7");
    assert_eq!(obj("App.Server.Obj#").hash, None);
}

#[test]
fn scheme_stripped_and_whitespace() {
    assert_eq!(obj("tars://App.Server.Obj").name, "App.Server.Obj");
    let o = obj("  tars://App.Server.Obj @ tcp -h a -p 1 : tcp -h b -p 2 ");
    assert_eq!(o.name, "App.Server.Obj");
    assert_eq!(o.endpoints.len(), 2);
    assert_eq!(o.endpoints[1].host, "b");
    // Repeated schemes go too, so the name does not change again when parsed back.
    assert_eq!(obj("a:// b+c.d-e://X").name, "X");
    // Not a scheme: kept.
    assert_eq!(obj("x y://z").name, "x y://z");
    round_trip_obj(&obj("x y://z"));
}

#[test]
fn object_errors() {
    assert_eq!(ObjectRef::parse(""), Err(EndpointError::EmptyName));
    assert_eq!(ObjectRef::parse("@tcp -h a -p 1"), Err(EndpointError::EmptyName));
    assert_eq!(ObjectRef::parse("tars://#h"), Err(EndpointError::EmptyName));
    assert_eq!(ObjectRef::parse("A.B.C@"), Err(EndpointError::NoEndpoints));
    assert_eq!(ObjectRef::parse("A.B.C@  "), Err(EndpointError::NoEndpoints));
    assert_eq!(
        ObjectRef::parse("A.B.C@tcp -h a -p 1:tcp -p 2"),
        Err(EndpointError::InList { index: 1, source: Box::new(EndpointError::MissingHost) })
    );
    assert_eq!(
        ObjectRef::parse("A.B.C@tcp -h a -p 1:"),
        Err(EndpointError::InList {
            index: 0,
            source: Box::new(EndpointError::BadValue { option: 'p', value: "1:".into() })
        })
    );
    // Go's split-on-every-':' would make `tcp -h a -p 1` and garbage here; the ':' before
    // a non-transport word is not a separator, so the port is bad.
    assert!(matches!(
        ObjectRef::parse("A.B.C@tcp -h a -p 1:foo"),
        Err(EndpointError::InList { index: 0, source }) if matches!(*source, EndpointError::BadValue { option: 'p', .. })
    ));
    let msg = ObjectRef::parse("A.B.C@tcp -h a -p 1:tcp -p 2").map_err(|e| e.to_string());
    assert_eq!(msg, Err("endpoint 1: missing host (-h)".to_owned()));
}

#[test]
fn limits() {
    let many = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("tcp -h h{i} -p {}", i % 65536)).collect();
        format!("A.B.C@{}", list.join(":"))
    };
    let o = obj(&many(MAX_ENDPOINTS));
    assert_eq!(o.endpoints.len(), MAX_ENDPOINTS);
    round_trip_obj(&o);
    assert_eq!(ObjectRef::parse(&many(MAX_ENDPOINTS + 1)), Err(EndpointError::TooManyEndpoints { max: MAX_ENDPOINTS }));

    let long = "x".repeat(MAX_OBJECT_LEN + 1);
    assert_eq!(
        ObjectRef::parse(&long),
        Err(EndpointError::TooLong { what: "object string", len: MAX_OBJECT_LEN + 1, max: MAX_OBJECT_LEN })
    );
    let long_ep = format!("tcp -h a{}", " ".repeat(MAX_ENDPOINT_LEN));
    assert!(matches!(Endpoint::parse(&long_ep), Err(EndpointError::TooLong { what: "endpoint string", .. })));
    let long_host = format!("tcp -h {} -p 1", "h".repeat(MAX_HOST_LEN + 1));
    assert!(matches!(Endpoint::parse(&long_host), Err(EndpointError::TooLong { what: "host", .. })));
    let ok_host = format!("tcp -h {} -p 1", "h".repeat(MAX_HOST_LEN));
    round_trip_ep(&ep(&ok_host));
    // Many separators and whitespace: linear, no panic.
    let junk = format!("A@{}", ": ".repeat(100_000));
    assert!(ObjectRef::parse(&junk).is_err());
}

#[test]
fn round_trips() {
    for s in [
        "tcp -h 1.2.3.4 -p 10000 -t 60000",
        "udp -h * -p 0",
        "ssl -h ::1 -p 443 -e 1",
        "tcp -h a -p 1 -g 1 -q 2 -w 3 -v 1 -e 1 -b 127.0.0.1",
        "tcp -h a -p 1 -t 0",
        "tcp -h a -p 1 -b fe80::",
    ] {
        let e = ep(s);
        round_trip_ep(&e);
        assert_eq!(ep(&e.to_string()).to_string(), e.to_string());
    }
    for s in [
        "App.Server.Obj",
        "App.Server.Obj#h",
        "App.Server.Obj#h#i@tcp -h a -p 1",
        "App.Server.Obj@tcp -h a@b -p 1 -b fe80:::udp -h ::ffff:1.2.3.4 -p 2 -v 1",
        "tars://App.Server.Obj@ssl -h x -p 1 -w 5",
    ] {
        let o = obj(s);
        round_trip_obj(&o);
    }
    let o = obj("App.Server.Obj@tcp -h a -p 1 -b fe80:::udp -h b -p 2");
    assert_eq!(o.endpoints[0].bind.as_deref(), Some("fe80::"));
    assert_eq!(o.endpoints[1].host, "b");
}

#[test]
fn from_str() {
    let e: Endpoint = "tcp -h a -p 1".parse().expect("endpoint");
    assert_eq!(e.port, 1);
    let o: ObjectRef = "A.B.C@tcp -h a -p 1".parse().expect("object");
    assert!(o.is_direct());
    assert!("tcp".parse::<Endpoint>().is_err());
}
