//! The TARS config format (`tars_proto::config`): grammar, paths, serialisation, merge.

use tars_proto::config::{Config, ConfigError, ParseErrorKind, MAX_DEPTH, MAX_LINE_LEN};

fn parse(text: &str) -> Config {
    match Config::parse(text) {
        Ok(c) => c,
        Err(e) => panic!("{e}\n--- text ---\n{text}"),
    }
}

fn text(c: &Config) -> String {
    match c.to_text() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

fn parse_err(text: &str) -> (usize, ParseErrorKind) {
    match Config::parse(text) {
        Ok(c) => panic!("parsed, expected an error: {c:?}"),
        Err(ConfigError::Parse { line, kind }) => (line, kind),
        Err(e) => panic!("not a parse error: {e}"),
    }
}

/// A tarsregistry-style server config, as a template would render it.
const REGISTRY: &str = r#"
# tarsregistry configuration
<tars>
    <application>
        enableset=n
        setdivision=NULL
        <server>
            app=tars
            server=tarsregistry
            localip=10.0.0.5
            local=tcp -h 127.0.0.1 -p 17897 -t 3000
            basepath=/usr/local/app/tars/tarsregistry/bin/
            datapath=/usr/local/app/tars/tarsregistry/data/
            logpath=/usr/local/app/tars/app_log/
            logsize=10M
            lognum=10
            logLevel=DEBUG
            config=tars.tarsconfig.ConfigObj
            notify=tars.tarsnotify.NotifyObj
            log=tars.tarslog.LogObj
            deactivating-timeout=3000
            activating-timeout=60000
            <QueryAdapter>
                endpoint=tcp -h 10.0.0.5 -p 17890 -t 10000
                allow
                maxconns=10000
                threads=5
                queuecap=10000
                queuetimeout=4000
                servant=tars.tarsregistry.QueryObj
                protocol=tars
            </QueryAdapter>
            <RegistryAdapter>
                endpoint=tcp -h 10.0.0.5 -p 17891 -t 30000
                allow
                maxconns=2048
                threads=5
                queuecap=10000
                queuetimeout=4000
                servant=tars.tarsregistry.RegistryObj
            </RegistryAdapter>
        </server>
        <client>
            locator=tars.tarsregistry.QueryObj@tcp -h 10.0.0.5 -p 17890
            sync-invoke-timeout=3000
            async-invoke-timeout=5000
            refresh-endpoint-interval=60000
            stat=tars.tarsstat.StatObj
            property=tars.tarsproperty.PropertyObj
            report-interval=60000
            asyncthread=3
            modulename=tars.tarsregistry
        </client>
    </application>
    <reap>
        loadObjectsInterval1=13
        LeastChangedTime1=60
        loadObjectsInterval2=3600
        registryTimeout=150
        recoverProtect=true
        recoverProtectRate=30
        heartbeatoff=false
    </reap>
    <db>
        dbhost=db.tars.local
        dbname=db_tars
        dbuser=tars
        dbpass=tars2015
        dbport=3306
        charset=utf8
    </db>
</tars>
"#;

#[test]
fn registry_config_queries() {
    let c = parse(REGISTRY);
    assert_eq!(c.get("/tars/application/server<app>"), Some("tars"));
    assert_eq!(c.get("/tars/application/server<server>"), Some("tarsregistry"));
    assert_eq!(c.get("/tars/application/server<local>"), Some("tcp -h 127.0.0.1 -p 17897 -t 3000"));
    assert_eq!(c.get("/tars/application/server/QueryAdapter<servant>"), Some("tars.tarsregistry.QueryObj"));
    assert_eq!(c.get("/tars/application/server/QueryAdapter<allow>"), Some(""));
    assert_eq!(c.get("/tars/application/client<locator>"), Some("tars.tarsregistry.QueryObj@tcp -h 10.0.0.5 -p 17890"));
    assert_eq!(c.require("/tars/reap<registryTimeout>"), Ok("150"));
    assert_eq!(c.get("/tars/db<dbport>"), Some("3306"));
    assert_eq!(c.domains("/tars"), vec!["application", "reap", "db"]);
    assert_eq!(c.domains("/tars/application"), vec!["server", "client"]);
    assert_eq!(c.domains("/tars/application/server"), vec!["QueryAdapter", "RegistryAdapter"]);
    assert_eq!(c.domains("/"), vec!["tars"]);
    assert_eq!(
        c.params("/tars/db"),
        vec![
            ("dbhost", "db.tars.local"),
            ("dbname", "db_tars"),
            ("dbuser", "tars"),
            ("dbpass", "tars2015"),
            ("dbport", "3306"),
            ("charset", "utf8"),
        ]
    );
    assert_eq!(c.params("/tars/application/server").len(), 15);
    assert_eq!(c.get_or("/tars/application/server<netthread>", "1"), "1");
    assert_eq!(c.get_or("/tars/application/server<lognum>", "1"), "10");
    assert_eq!(c.require("/tars/reap<missing>"), Err(ConfigError::NotFound("/tars/reap<missing>".to_owned())));
    assert!(c.has_domain("/tars/application/server/RegistryAdapter"));
    assert!(!c.has_domain("/tars/application/server/NodeAdapter"));
}

#[test]
fn registry_config_round_trips() {
    let c = parse(REGISTRY);
    let t = text(&c);
    assert!(
        t.starts_with("<tars>\n  <application>\n    enableset=n\n    setdivision=NULL\n    <server>\n      app=tars\n")
    );
    assert!(t.contains("\n      <QueryAdapter>\n        endpoint=tcp -h 10.0.0.5 -p 17890 -t 10000\n        allow\n"));
    assert!(t.contains("\n      </QueryAdapter>\n      <RegistryAdapter>\n"));
    assert!(t.ends_with("    charset=utf8\n  </db>\n</tars>\n"));
    assert!(!t.contains('#'));
    let again = parse(&t);
    assert_eq!(again, c);
    assert_eq!(text(&again), t);
}

#[test]
fn lines_are_trimmed_and_comments_only_at_line_start() {
    let c = parse("\t <a> \r\n  \n# comment=1\n   # also a comment\n x = 1 # not a comment \t\r\n</a>\r\n");
    assert_eq!(c.params("/a"), vec![("x", "1 # not a comment")]);
    assert_eq!(text(&c), "<a>\n  x=1 # not a comment\n</a>\n");
}

#[test]
fn tag_name_is_trimmed_and_rest_of_line_ignored() {
    let c = parse("< a  b >x=1\n y=2\n</a  b> trailing junk\n");
    assert_eq!(c.domains("/"), vec!["a  b"]);
    assert_eq!(c.params("/a  b"), vec![("y", "2")]);
}

#[test]
fn reopened_domain_merges() {
    let c = parse("<a>\nx=1\n<b>\nk=1\n</b>\n</a>\n<a>\ny=2\n<c>\n</c>\n<b>\nk=2\n</b>\n</a>\n");
    assert_eq!(c.domains("/a"), vec!["b", "c"]);
    assert_eq!(c.params("/a"), vec![("x", "1"), ("y", "2")]);
    assert_eq!(c.get("/a/b<k>"), Some("2"));
    assert_eq!(text(&c), "<a>\n  x=1\n  y=2\n  <b>\n    k=2\n  </b>\n  <c>\n  </c>\n</a>\n");
}

#[test]
fn split_at_first_unescaped_equals() {
    let c = parse("<d>\na=b=c\nk\\=x=v\\=w\nurl = http://h/?q=1 \nflag\n=only\n</d>\n");
    assert_eq!(
        c.params("/d"),
        vec![("a", "b=c"), ("k=x", "v=w"), ("url", "http://h/?q=1"), ("flag", ""), ("", "only")]
    );
    // A doubled backslash does not escape the `=` after it.
    let c = parse("<d>\na\\\\=b\n</d>\n");
    assert_eq!(c.params("/d"), vec![("a\\", "b")]);
}

#[test]
fn escapes_are_decoded() {
    let c = parse("<d>\nk=a\\\\b\\rc\\nd\\te\\=f\nk\\tey\\n\n</d>\n");
    assert_eq!(c.params("/d"), vec![("k", "a\\b\rc\nd\te=f"), ("k\tey\n", "")]);
    assert_eq!(text(&c), "<d>\n  k=a\\\\b\\rc\\nd\\te\\=f\n  k\\tey\\n\n</d>\n");
}

#[test]
fn invalid_escapes_are_errors() {
    assert_eq!(parse_err("<d>\nk=a\\x\n</d>\n"), (2, ParseErrorKind::InvalidEscape('x')));
    assert_eq!(parse_err("<d>\n\nk=a\\\n</d>\n"), (3, ParseErrorKind::TrailingBackslash));
    assert_eq!(parse_err("k\\ =1"), (1, ParseErrorKind::TrailingBackslash));
    assert_eq!(parse_err("<d>\nC:\\path\n</d>"), (2, ParseErrorKind::InvalidEscape('p')));
}

#[test]
fn repeated_key_last_wins_and_moves_to_end() {
    let c = parse("<d>\na=1\nb=2\nc=3\na=4\n</d>\n");
    assert_eq!(c.params("/d"), vec![("b", "2"), ("c", "3"), ("a", "4")]);
    assert_eq!(text(&c), "<d>\n  b=2\n  c=3\n  a=4\n</d>\n");
}

#[test]
fn tag_errors_have_line_numbers() {
    assert_eq!(parse_err("<a>\n<b\n</a>"), (2, ParseErrorKind::UnterminatedTag));
    assert_eq!(
        parse_err("<a>\n<b>\n</a>\n"),
        (3, ParseErrorKind::MismatchedClose { open: "b".into(), close: "a".into() })
    );
    // The closing name is compared exactly, untrimmed.
    assert_eq!(
        parse_err("<a>\n</ a>\n"),
        (2, ParseErrorKind::MismatchedClose { open: "a".into(), close: " a".into() })
    );
    assert_eq!(parse_err("x=1\n\n</a>\n"), (3, ParseErrorKind::CloseWithoutOpen { close: "a".into() }));
    // Unclosed: the innermost open domain, at the line that opened it.
    assert_eq!(parse_err("<a>\nx=1\n<b>\ny=2\n"), (3, ParseErrorKind::Unclosed("b".into())));
}

#[test]
fn depth_limit() {
    let deep = |n: usize| {
        let mut s = String::new();
        for i in 0..n {
            s.push_str(&format!("<d{i}>\n"));
        }
        for i in (0..n).rev() {
            s.push_str(&format!("</d{i}>\n"));
        }
        s
    };
    let c = parse(&deep(MAX_DEPTH));
    assert_eq!(parse(&text(&c)), c);
    assert_eq!(parse_err(&deep(MAX_DEPTH + 1)), (MAX_DEPTH + 1, ParseErrorKind::TooDeep(MAX_DEPTH)));
    // Re-opening does not count twice.
    let mut s = String::new();
    for _ in 0..1000 {
        s.push_str("<a>\n</a>\n");
    }
    assert_eq!(parse(&s).domains("/"), vec!["a"]);
}

#[test]
fn line_length_limit() {
    let ok = format!("<a>\nk={}\n</a>\n", "v".repeat(MAX_LINE_LEN - 2));
    assert_eq!(parse(&ok).get("/a<k>").map(str::len), Some(MAX_LINE_LEN - 2));
    let long = format!("<a>\nk={}\n</a>\n", "v".repeat(MAX_LINE_LEN - 1));
    assert_eq!(parse_err(&long), (2, ParseErrorKind::LineTooLong { len: MAX_LINE_LEN + 1, limit: MAX_LINE_LEN }));
}

#[test]
fn error_messages() {
    let e = Config::parse("<a>\n<b>\n</a>\n").expect_err("mismatch");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.to_string(), "config line 3: `</a>` does not match the open domain `<b>`");
    let c = Config::new();
    let e = c.require("/tars/reap<registryTimeout>").expect_err("missing");
    assert_eq!(e.line(), None);
    assert_eq!(e.to_string(), "config path `/tars/reap<registryTimeout>` not found");
}

#[test]
fn serialisation_orders_top_level_alphabetically_and_deeper_by_creation() {
    let c = parse("<zeta>\n<y>\n</y>\n<x>\n</x>\n</zeta>\n<alpha>\nk\n</alpha>\n<Mid>\n</Mid>\n");
    assert_eq!(c.domains("/"), vec!["zeta", "alpha", "Mid"]);
    assert_eq!(text(&c), "<Mid>\n</Mid>\n<alpha>\n  k\n</alpha>\n<zeta>\n  <y>\n  </y>\n  <x>\n  </x>\n</zeta>\n");
    // After a round trip the root's creation order is the alphabetical one.
    assert_eq!(parse(&text(&c)).domains("/"), vec!["Mid", "alpha", "zeta"]);
}

#[test]
fn root_params_are_readable_but_not_serialised() {
    let c = parse("top=1\n<a>\nk=v\n</a>\nlater=2\n");
    assert_eq!(c.get("/<top>"), Some("1"));
    assert_eq!(c.params("/"), vec![("top", "1"), ("later", "2")]);
    assert_eq!(text(&c), "<a>\n  k=v\n</a>\n");
    assert_eq!(parse(&text(&c)).params("/"), vec![]);
}

#[test]
fn empty_config_and_empty_names() {
    assert_eq!(text(&parse("")), "");
    assert_eq!(text(&parse("\n\n# only comments\n")), "");
    let c = parse("<>\n=\n</>\n");
    assert_eq!(c.domains("/"), vec![""]);
    // Empty key and value: written as `=` so that it reads back.
    assert_eq!(text(&c), "<>\n  =\n</>\n");
    assert_eq!(parse(&text(&c)), c);
}

#[test]
fn angle_brackets_make_serialisation_fail() {
    let c = parse("<a>\nk=x<y\n</a>\n");
    assert_eq!(c.get("/a<k>"), Some("x<y"));
    assert!(matches!(c.to_text(), Err(ConfigError::Unwritable { what: "value", .. })));
    let c = parse("<a>\nk>=1\n</a>\n");
    assert!(matches!(c.to_text(), Err(ConfigError::Unwritable { what: "key", .. })));
    let c = parse("<<a>\n</<a>\n");
    assert_eq!(c.domains("/"), vec!["<a"]);
    assert!(matches!(c.to_text(), Err(ConfigError::Unwritable { what: "domain name", .. })));
    // Names that would not read back as themselves.
    for (input, name) in
        [("<a=b>\n</a=b>", "a=b"), ("<a\\b>\n</a\\b>", "a\\b"), ("< /a>\n<//a>", "/a"), ("<a\tb>\n</a\tb>", "a\tb")]
    {
        let c = parse(input);
        assert_eq!(c.domains("/"), vec![name]);
        assert!(matches!(c.to_text(), Err(ConfigError::Unwritable { what: "domain name", .. })), "{name}");
    }
}

#[test]
fn paths() {
    let c = parse("<tars>\nenWeighted=1\n<a>\n<b>\nk=v\n</b>\n</a>\n</tars>\n");
    assert_eq!(c.get("/tars/<enWeighted>"), Some("1"));
    assert_eq!(c.get("/tars<enWeighted>"), Some("1"));
    assert_eq!(c.get("//tars//a/b/<k>"), Some("v"));
    assert_eq!(c.get("/tars/a/b<k>trailing"), Some("v"));
    assert_eq!(c.domains("/tars/a/"), vec!["b"]);
    assert_eq!(c.domains("//tars///a"), vec!["b"]);
    assert_eq!(c.get("/tars/a<k>"), None);
    assert_eq!(c.get("/nope/a/b<k>"), None);
    assert_eq!(c.domains("/nope"), Vec::<&str>::new());
    assert_eq!(c.params("/nope"), vec![]);
    let invalid = |path: &str, reason: &'static str| ConfigError::InvalidPath { path: path.to_owned(), reason };
    assert_eq!(c.require("tars<enWeighted>"), Err(invalid("tars<enWeighted>", "must start with `/`")));
    assert_eq!(c.require("/tars"), Err(invalid("/tars", "has no `<key>`")));
    assert_eq!(c.require("/tars<k"), Err(invalid("/tars<k", "has no `>` after the key")));
    assert_eq!(c.require("/t>ars<k"), Err(invalid("/t>ars<k", "has `>` before `<`")));
    assert_eq!(c.get("tars<enWeighted>"), None);
    assert_eq!(c.get_or("tars<enWeighted>", "d"), "d");
    assert!(c.domains("tars").is_empty());
    assert!(c.has_domain("/"));
    assert!(!c.has_domain("tars"));
}

#[test]
fn set_and_insert_domain() {
    let mut c = Config::new();
    assert_eq!(c.set("/tars/application/server<app>", "tars"), Ok(()));
    assert_eq!(c.set("/tars/application/server<server>", "x"), Ok(()));
    assert_eq!(c.set("/tars/application/server<app>", "Test"), Ok(()));
    assert_eq!(c.insert_domain("/tars/application/client"), Ok(()));
    assert_eq!(c.insert_domain("/tars/application"), Ok(()));
    assert_eq!(c.set("/tars/<k>", "a=b\n"), Ok(()));
    assert_eq!(c.set("/<rootkey>", "r"), Ok(()));
    assert_eq!(c.get("/<rootkey>"), Some("r"));
    assert_eq!(
        text(&c),
        "<tars>\n  k=a\\=b\\n\n  <application>\n    <server>\n      server=x\n      app=Test\n    </server>\n    <client>\n    </client>\n  </application>\n</tars>\n"
    );
    assert_eq!(
        c.set("/a\\b<k>", "v"),
        Err(ConfigError::InvalidPath {
            path: "/a\\b<k>".to_owned(),
            reason: "contains `\\`, `=`, a tab or a line break"
        })
    );
    assert!(matches!(c.insert_domain("/ a"), Err(ConfigError::InvalidPath { .. })));
    assert!(matches!(c.set("a<k>", "v"), Err(ConfigError::InvalidPath { .. })));
    let deep = "/d".repeat(MAX_DEPTH + 1);
    assert_eq!(c.insert_domain(&deep), Err(ConfigError::TooDeep(MAX_DEPTH)));
    assert_eq!(c.set(&format!("{deep}<k>"), "v"), Err(ConfigError::TooDeep(MAX_DEPTH)));
    assert!(!c.has_domain("/d"));
    assert_eq!(c.insert_domain(&"/d".repeat(MAX_DEPTH)), Ok(()));
    // A value with `<` is stored, and serialisation reports it.
    assert_eq!(c.set("/x<k>", "<v>"), Ok(()));
    assert!(matches!(c.to_text(), Err(ConfigError::Unwritable { what: "value", .. })));
}

const BASE: &str = "\
<tars>
  <application>
    <server>
      logLevel=DEBUG
      logsize=10M
      <Adapter>
        threads=5
      </Adapter>
    </server>
  </application>
  <db>
    dbhost=base
  </db>
</tars>
<zz>
  only=base
</zz>
";

const SERVER: &str = "\
rootparam=lost
<tars>
  <application>
    <server>
      logLevel=ERROR
      app=Test
      <Other>
        threads=1
      </Other>
    </server>
  </application>
</tars>
<aa>
  only=server
</aa>
";

/// The textual definition of `joinConfig`.
fn textual_join(a: &Config, b: &Config, update: bool) -> Config {
    let joined = if update { text(a) + &text(b) } else { text(b) + &text(a) };
    parse(&joined)
}

#[test]
fn join_update_other_wins() {
    let base = parse(BASE);
    let server = parse(SERVER);
    let mut merged = base.clone();
    assert_eq!(merged.join(&server, true), Ok(()));
    assert_eq!(merged, textual_join(&base, &server, true));
    assert_eq!(merged.get("/tars/application/server<logLevel>"), Some("ERROR"));
    assert_eq!(merged.get("/<rootparam>"), None);
    assert_eq!(
        text(&merged),
        "\
<aa>
  only=server
</aa>
<tars>
  <application>
    <server>
      logsize=10M
      logLevel=ERROR
      app=Test
      <Adapter>
        threads=5
      </Adapter>
      <Other>
        threads=1
      </Other>
    </server>
  </application>
  <db>
    dbhost=base
  </db>
</tars>
<zz>
  only=base
</zz>
"
    );
    // Creation order at the root follows the concatenated text.
    assert_eq!(merged.domains("/"), vec!["tars", "zz", "aa"]);
}

#[test]
fn join_without_update_self_wins() {
    let base = parse(BASE);
    let server = parse(SERVER);
    // The template resolution: child.joinConfig(parent, false), the child wins.
    let mut child = server.clone();
    assert_eq!(child.join(&base, false), Ok(()));
    assert_eq!(child, textual_join(&server, &base, false));
    assert_eq!(child.get("/tars/application/server<logLevel>"), Some("ERROR"));
    assert_eq!(
        child.params("/tars/application/server"),
        vec![("logsize", "10M"), ("logLevel", "ERROR"), ("app", "Test")]
    );
    assert_eq!(child.domains("/tars/application/server"), vec!["Adapter", "Other"]);
    assert_eq!(child.domains("/"), vec!["tars", "zz", "aa"]);
    // Same text as base.join(server, true): both are `base + server`.
    let mut updated = base.clone();
    assert_eq!(updated.join(&server, true), Ok(()));
    assert_eq!(child, updated);
    // And the other way round, base wins.
    let mut base_wins = base.clone();
    assert_eq!(base_wins.join(&server, false), Ok(()));
    assert_eq!(base_wins.get("/tars/application/server<logLevel>"), Some("DEBUG"));
    assert_eq!(base_wins.get("/tars/application/server<app>"), Some("Test"));
    assert_eq!(
        base_wins.params("/tars/application/server"),
        vec![("app", "Test"), ("logLevel", "DEBUG"), ("logsize", "10M")]
    );
}

#[test]
fn join_never_deletes_and_drops_own_root_params() {
    let mut a = parse("mine=1\n<x>\nk=1\nkeep=1\n</x>\n");
    let b = parse("<x>\nk=2\n</x>\n");
    assert_eq!(a.join(&b, true), Ok(()));
    assert_eq!(a.params("/x"), vec![("keep", "1"), ("k", "2")]);
    assert_eq!(a.params("/"), vec![]);
}

#[test]
fn join_fails_on_unwritable_and_leaves_self_alone() {
    let mut a = parse("<x>\nk=1\n</x>\n");
    let before = a.clone();
    let bad = parse("<y>\nk=<\n</y>\n");
    assert!(matches!(a.join(&bad, true), Err(ConfigError::Unwritable { .. })));
    assert_eq!(a, before);
}

#[test]
fn join_with_long_escaped_lines() {
    // Escaping doubles a line; the merge's re-parse is not bound by the input line limit.
    let value = "\t".repeat(MAX_LINE_LEN - 10);
    let mut a = Config::new();
    assert_eq!(a.set("/x<k>", &format!("a{value}b")), Ok(()));
    let b = parse("<x>\nj=1\n</x>\n");
    assert_eq!(a.join(&b, true), Ok(()));
    assert_eq!(a.get("/x<k>").map(str::len), Some(MAX_LINE_LEN - 8));
}

proptest::proptest! {
    /// What the fuzz target checks, on text made of the grammar's special characters.
    #[test]
    fn accepted_text_round_trips(s in "[<>/=\\\\# \t\r\nabnrt]{0,200}") {
        if let Ok(c) = Config::parse(&s) {
            if let Ok(t) = c.to_text() {
                let again = parse(&t);
                proptest::prop_assert_eq!(text(&again), t);
                let mut merged = again.clone();
                proptest::prop_assert_eq!(merged.join(&again, true), Ok(()));
                proptest::prop_assert_eq!(merged, again);
            }
        }
    }

    /// Configs built from valid lines always parse and round-trip.
    #[test]
    fn structured_text_round_trips(lines in proptest::collection::vec("(<[ab]{0,2}>|</[ab]{0,2}>|[ab\\\\=]{0,4}(=[ab\\\\=]{0,4})?)", 0..40)) {
        let s = lines.join("\n");
        if let Ok(c) = Config::parse(&s) {
            let t = text(&c);
            proptest::prop_assert_eq!(text(&parse(&t)), t);
        }
    }
}

#[test]
fn numbers_name_the_key_when_they_are_not() {
    let c = Config::parse("<tars>\n<a>\nn = 42 \nblank=\nbad=4x\n</a>\n</tars>\n").expect("valid");
    assert_eq!(c.number("/tars/a<n>", "a number").expect("valid"), Some(42));
    assert_eq!(c.number("/tars/a<blank>", "a number").expect("valid"), None);
    assert_eq!(c.number("/tars/a<missing>", "a number").expect("valid"), None);
    let e = c.number("/tars/a<bad>", "a number of seconds").expect_err("not a number");
    assert_eq!(e.to_string(), "/tars/a<bad>: \"4x\" is not a number of seconds");
}
