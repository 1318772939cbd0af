//! `getLogData` / `getLogFileList` on real files. The expected bytes come from running the same
//! pipeline with `/bin/sh -c` (GNU coreutils, grep, sed, glibc iconv) in a UTF-8 locale: a test
//! oracle only; the product never starts a process.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use tars_node::logview::{LogDir, LogViewError, Pipeline, FILE_PLACEHOLDER, MAX_LINE};
use tars_testkit::process::TempDir;

const APP: &str = "Test";
const SERVER: &str = "HelloServer";

/// A log root with `<root>/Test/HelloServer/` made.
fn log_root(tag: &str) -> (TempDir, PathBuf) {
    let tmp = TempDir::new(tag).unwrap();
    let dir = tmp.0.join("log").join(APP).join(SERVER);
    std::fs::create_dir_all(&dir).unwrap();
    (tmp, dir)
}

/// What `sh` prints for `cmd` on `path`, with the placeholder replaced as upstream does.
fn oracle(cmd: &str, path: &Path) -> Vec<u8> {
    let quoted = format!("'{}'", path.display());
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd.replace(FILE_PLACEHOLDER, &quoted))
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap();
    out.stdout
}

/// JavaScript's `parseInt` for the inputs these tests use: `None` is NaN.
fn parse_int(s: &str) -> Option<i64> {
    s.trim().parse().ok()
}

fn js_num(n: Option<i64>) -> String {
    n.map_or_else(|| "NaN".to_owned(), |n| n.to_string())
}

/// The command TarsWeb v3.0.14 LogviewService builds from the page's fields.
fn tarsweb_cmd(
    search_sign: &str,
    search_lines: &str,
    keyword: &str,
    ignore_case: bool,
    view: &str,
    lines: &str,
) -> String {
    let mut search = parse_int(search_lines);
    // `NaN <= 0` and `NaN >= 50000` are both false in JavaScript: NaN stays.
    if let Some(n) = search {
        if n <= 0 || n >= 50000 {
            search = Some(50000);
        }
    }
    let mut cmd = if search_sign == "from_end" {
        format!("tail -{} {FILE_PLACEHOLDER}", js_num(search))
    } else {
        format!("head -{} {FILE_PLACEHOLDER}", js_num(search))
    };
    let mut flag = " -a ".to_owned();
    if ignore_case {
        flag += " -i ";
    }
    if !keyword.is_empty() {
        cmd += &format!(" | grep {flag}{keyword}");
    }
    let show = js_num(parse_int(lines));
    cmd += &if view == "from_end" { format!("|tail -{show}") } else { format!("|head -{show}") };
    cmd += r" | iconv -c -f UTF-8 -t UTF-8|sed 's/[\cA-\cZ]//g'";
    cmd
}

/// Tabs, control bytes, invalid UTF-8, glibc-only sequences, CRLF, empty lines, a 10 KiB line,
/// NUL, ANSI colours, shell syntax as text, and no final newline.
fn mixed_content() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"2024-01-01 INFO start\n");
    v.extend_from_slice(b"error: disk\tfull\x01\x02 here\n");
    v.extend_from_slice(b"ERROR upper case\r\n");
    v.extend_from_slice("Error mixed \u{17f} \u{c4}rger case\n".as_bytes());
    v.extend_from_slice(b"\n");
    v.extend_from_slice(b"invalid \xff\xfe error \xe4\xb8 cut\n");
    v.extend_from_slice(b"a.b axb a-b\n");
    v.extend_from_slice("中文 error 日志\n".as_bytes());
    v.extend_from_slice(b"x_y-1.2 version\n");
    v.extend_from_slice(&[b'e'; 10 * 1024]);
    v.extend_from_slice(b" long error\n");
    v.extend_from_slice(b"$(touch marker) literal; `id` && rm > x | y\n");
    v.extend_from_slice(b"foo bar baz\n");
    v.extend_from_slice(b"a^b a$b\n");
    v.extend_from_slice(b"glibc \xf4\x90\x80\x80 \xed\xa0\x80 \xc0\xaf \xf8\x88\x80\x80\x80 end\n");
    v.extend_from_slice(b"\x1b[31mcolored error\x1b[0m\n");
    v.extend_from_slice(b"nul\x00byte error\n");
    v.extend_from_slice(b"\r\n");
    for i in 0..40 {
        v.extend_from_slice(format!("line {i} info k{i}\n").as_bytes());
    }
    v.extend_from_slice(b"last line error without newline");
    v
}

fn write_mixed(dir: &Path) -> PathBuf {
    let path = dir.join("Test.HelloServer.log");
    std::fs::write(&path, mixed_content()).unwrap();
    path
}

fn run(cmd: &str, path: &Path) -> Result<Vec<u8>, LogViewError> {
    Pipeline::parse(cmd)?.run(path)
}

#[test]
fn tarsweb_forms_match_gnu() {
    let (_tmp, dir) = log_root("lv-forms");
    let path = write_mixed(&dir);
    let mut nonempty = 0;
    let mut checked = 0;
    for sign in ["from_end", "from_begin"] {
        for search in ["5", "30", "0", "100000"] {
            for keyword in [
                "",
                "error",
                "ERROR",
                "中文",
                "a.b",
                "x_y-1.2",
                "K",
                "s",
                "ä",
                "'foo bar'",
                "\"a^b\"",
                "'ror$'",
                "'^line 3'",
            ] {
                for ignore in [false, true] {
                    for view in ["from_end", "from_begin"] {
                        for lines in ["3", "1000", "0"] {
                            let cmd = tarsweb_cmd(sign, search, keyword, ignore, view, lines);
                            let want = oracle(&cmd, &path);
                            let got = run(&cmd, &path).unwrap_or_else(|e| panic!("{cmd}: {e}"));
                            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{cmd}");
                            assert_eq!(got, want, "{cmd}");
                            nonempty += usize::from(!got.is_empty());
                            checked += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(checked, 2 * 4 * 13 * 2 * 2 * 3);
    // Most forms with a nonzero line count print something: the comparison is not between two empty strings.
    assert!(nonempty > checked / 3, "{nonempty} of {checked}");
}

#[test]
fn tarsweb_keeps_tabs_out_and_crlf_as_lf() {
    let (_tmp, dir) = log_root("lv-sed");
    let path = write_mixed(&dir);
    let cmd = tarsweb_cmd("from_begin", "3", "", false, "from_begin", "3");
    let got = String::from_utf8(run(&cmd, &path).unwrap()).unwrap();
    assert_eq!(got, "2024-01-01 INFO start\nerror: diskfull here\nERROR upper case\n");
}

#[test]
fn older_forms_match_gnu() {
    let (_tmp, dir) = log_root("lv-old");
    // A text file (no NUL, valid UTF-8): grep without -a treats it as text too.
    let path = dir.join("clean.log");
    let mut text = String::new();
    for i in 0..300 {
        text += &format!("{i} {} Error foo bar\tx\r\n", if i % 7 == 0 { "error" } else { "info" });
        if i % 50 == 0 {
            text += "\n";
        }
    }
    text += "tail without newline error";
    std::fs::write(&path, &text).unwrap();
    let cmds = [
        "tail -100 __log_file_name__",
        "head -50 __log_file_name__",
        "tail -n 7 __log_file_name__",
        "head -n3 __log_file_name__",
        "tail -0 __log_file_name__",
        "tail -50000 __log_file_name__",
        "grep -a error __log_file_name__ | tail -100",
        "grep error __log_file_name__|head -5",
        "grep -v info __log_file_name__",
        "grep -ai '^1.*' __log_file_name__",
        "grep -ai '^1' __log_file_name__ | grep -v 0 | tail -n 4",
        "grep -a 'foo bar' __log_file_name__ | head -2",
        "grep -a 'newline error$' __log_file_name__",
        "grep -a 'x.$' __log_file_name__ | tail -3",
        "grep -a '' __log_file_name__ | tail -3",
        "head -20 __log_file_name__ | tail -5 | grep -i ERROR",
        "tail -20 __log_file_name__ | iconv -c -f utf8 -t UTF-8 | sed 's/[\\cA-\\cZ]//g'",
        "'tail' -2 __log_file_name__",
    ];
    for cmd in cmds {
        let want = oracle(cmd, &path);
        if cmd.contains(".*") {
            // `*` is outside the accepted subset: refused rather than guessed.
            assert!(matches!(run(cmd, &path), Err(LogViewError::Refused { .. })), "{cmd}");
            continue;
        }
        let got = run(cmd, &path).unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&want), "{cmd}");
        if cmd != "tail -0 __log_file_name__" {
            assert!(!got.is_empty(), "{cmd}");
        }
    }
}

#[test]
fn shell_syntax_in_the_keyword_runs_nothing() {
    let (tmp, dir) = log_root("lv-meta");
    let path = write_mixed(&dir);
    let marker = tmp.0.join("marker");
    let m = marker.display();
    let keywords = [
        format!("x; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("x && touch {m}"),
        format!("x > {m}"),
        format!("x | touch {m}"),
        format!("x|touch {m}"),
        format!("x || touch {m}"),
        format!("x & touch {m}"),
        format!("'x'; touch {m}"),
        format!("\"$(touch {m})\""),
        format!("\"`touch {m}`\""),
        format!("x\ntouch {m}"),
        format!("x < {m}"),
        "foo bar".to_owned(),
        "a*".to_owned(),
        "~root".to_owned(),
        "'unterminated".to_owned(),
        "-e x".to_owned(),
    ];
    let ld = LogDir::new(tmp.0.join("log"));
    for kw in &keywords {
        let cmd = tarsweb_cmd("from_end", "100", kw, false, "from_end", "100");
        let err = ld.data(APP, SERVER, "Test.HelloServer.log", &cmd).unwrap_err();
        assert!(matches!(err, LogViewError::Refused { .. }), "{kw}: {err}");
        assert!(err.to_string().starts_with("getLogData: refused"), "{err}");
        assert!(!marker.exists(), "{kw}");
    }
    // Quoted, the same text is a literal pattern, as it is to sh: it finds the line holding it.
    for kw in ["'$(touch marker) literal;'", "'`id` && rm > x | y'", "\"literal; \"", "'a$b'"] {
        let cmd = tarsweb_cmd("from_end", "100", kw, false, "from_end", "100");
        let got = ld.data(APP, SERVER, "Test.HelloServer.log", &cmd).unwrap();
        let want = String::from_utf8(oracle(&cmd, &path)).unwrap();
        assert_eq!(got, want, "{kw}");
        assert!(!marker.exists(), "{kw}");
    }
    let literal = tarsweb_cmd("from_end", "100", "'$(touch marker)'", false, "from_end", "100");
    assert_eq!(
        ld.data(APP, SERVER, "Test.HelloServer.log", &literal).unwrap(),
        "$(touch marker) literal; `id` && rm > x | y\n"
    );
    assert!(!marker.exists());
}

#[test]
fn other_programs_and_files_are_refused_with_a_clear_message() {
    let cases = [
        ("rm -rf __log_file_name__", "getLogData: refused \"rm\": is not one of tail, head, grep, iconv, sed"),
        ("tail -NaN __log_file_name__", "the line count is not a number"),
        ("tail -100 /etc/passwd", "the first stage must end with __log_file_name__"),
        ("tail -100 ../x.log", "the first stage must end with __log_file_name__"),
        ("tail -100 __log_file_name__.bak", "__log_file_name__ must be a word of its own"),
        ("tail -100 __log_file_name__ | tail -5 __log_file_name__", "only the first stage may read"),
        ("tail -100 __log_file_name__ | sh", "\"sh\": is not one of"),
        ("tail -100 __log_file_name__ | sed 's/x/y/'", "the only sed accepted"),
        ("tail -100 __log_file_name__ | iconv -f GBK -t UTF-8", "the only iconv accepted"),
        ("tail -50001 __log_file_name__", "too large"),
        ("tail -100 __log_file_name__ |", "empty stage"),
        ("", "empty stage"),
        ("grep -r x __log_file_name__", "only the options -a, -i and -v"),
        ("grep -a foo bar __log_file_name__", "more than one operand"),
        ("grep -a 'x[0-9]' __log_file_name__", "bracket expressions"),
        ("grep -a 'x\\|y' __log_file_name__", "only the escapes"),
    ];
    for (cmd, want) in cases {
        let err = Pipeline::parse(cmd).unwrap_err();
        assert!(matches!(err, LogViewError::Refused { .. }), "{cmd}: {err}");
        assert!(err.to_string().contains(want), "{cmd}: {err}");
    }
}

#[test]
fn a_refused_command_touches_no_file() {
    let (tmp, _dir) = log_root("lv-noio");
    let ld = LogDir::new(tmp.0.join("log"));
    let err = ld.data(APP, SERVER, "missing.log", "cat __log_file_name__").unwrap_err();
    assert!(matches!(err, LogViewError::Refused { .. }), "{err}");
    let err = ld.data(APP, SERVER, "missing.log", "tail -5 __log_file_name__").unwrap_err();
    assert!(matches!(err, LogViewError::NotALogFile { .. }), "{err}");
}

#[test]
fn names_from_the_network_are_plain_names() {
    let (tmp, dir) = log_root("lv-names");
    write_mixed(&dir);
    let outside = tmp.0.join("secret.log");
    std::fs::write(&outside, "SECRET\n").unwrap();
    std::fs::write(tmp.0.join("log").join(APP).join("up.log"), "SECRET\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("escape.log")).unwrap();
    std::os::unix::fs::symlink("../up.log", dir.join("relative.log")).unwrap();
    std::os::unix::fs::symlink("Test.HelloServer.log", dir.join("inside.log")).unwrap();
    std::fs::create_dir(dir.join("sub.log")).unwrap();
    let ld = LogDir::new(tmp.0.join("log"));
    let cmd = "tail -5 __log_file_name__";
    for file in ["..", "../up.log", "../../secret.log", "/etc/passwd", "a\0b", "", ".", "a/b.log", "x..log"] {
        let err = ld.data(APP, SERVER, file, cmd).unwrap_err();
        assert!(matches!(err, LogViewError::BadName { field: "log file", .. }), "{file:?}: {err}");
    }
    for (app, server) in [("..", SERVER), (APP, ".."), ("Test/HelloServer", "x"), (APP, "a\0"), ("", SERVER)] {
        let err = ld.data(app, server, "Test.HelloServer.log", cmd).unwrap_err();
        assert!(matches!(err, LogViewError::BadName { .. }), "{app:?} {server:?}: {err}");
        assert!(matches!(ld.list(app, server), Err(LogViewError::BadName { .. })));
    }
    for file in ["escape.log", "relative.log", "sub.log", "missing.log"] {
        let err = ld.data(APP, SERVER, file, cmd).unwrap_err();
        assert!(matches!(err, LogViewError::NotALogFile { .. }), "{file}: {err}");
        assert!(!err.to_string().contains("SECRET"));
    }
    let inside = ld.data(APP, SERVER, "inside.log", cmd).unwrap();
    assert!(inside.ends_with("last line error without newline"), "{inside}");
}

#[test]
fn list_shows_log_files_newest_name_first() {
    let (tmp, dir) = log_root("lv-list");
    for name in ["Test.HelloServer.log", "Test.HelloServer_20240101.log", "a.log", "notes.txt", ".log", "x.log.1"] {
        std::fs::write(dir.join(name), "x\n").unwrap();
    }
    std::fs::create_dir(dir.join("dir.log")).unwrap();
    let outside = tmp.0.join("secret.log");
    std::fs::write(&outside, "SECRET\n").unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("escape.log")).unwrap();
    std::os::unix::fs::symlink("a.log", dir.join("link.log")).unwrap();
    let ld = LogDir::new(tmp.0.join("log"));
    assert_eq!(
        ld.list(APP, SERVER).unwrap(),
        ["x.log.1", "link.log", "a.log", "Test.HelloServer_20240101.log", "Test.HelloServer.log"]
    );
    assert_eq!(ld.list(APP, "NoSuchServer").unwrap(), Vec::<String>::new());
}

/// Numbered lines up to `bytes` bytes.
fn big_file(path: &Path, bytes: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut text = String::with_capacity(bytes + 100);
    let mut i = 0u64;
    while text.len() < bytes {
        let line = format!("{i:010} some log text for line {i} {}", "x".repeat((i % 50) as usize + 40));
        text += &line;
        text.push('\n');
        lines.push(line);
        i += 1;
    }
    std::fs::write(path, &text).unwrap();
    lines
}

#[test]
fn tail_of_a_20_mb_file_is_its_last_lines() {
    let (_tmp, dir) = log_root("lv-big");
    let path = dir.join("big.log");
    let lines = big_file(&path, 20 * 1024 * 1024);
    for n in [1usize, 1000, 20_000] {
        let got = String::from_utf8(run(&format!("tail -{n} __log_file_name__"), &path).unwrap()).unwrap();
        let want: String = lines[lines.len() - n..].iter().map(|l| format!("{l}\n")).collect();
        assert_eq!(got, want, "tail -{n}");
    }
    let cmd = tarsweb_cmd("from_end", "50000", "7777", true, "from_end", "10");
    assert_eq!(run(&cmd, &path).unwrap(), oracle(&cmd, &path));
    // 50000 lines of about 70 bytes: more than the 4 MiB answer.
    let err = run("tail -50000 __log_file_name__", &path).unwrap_err();
    assert!(matches!(err, LogViewError::TooLarge { .. }), "{err}");
}

#[test]
fn a_line_is_cut_at_64_kib() {
    let (_tmp, dir) = log_root("lv-long");
    let path = dir.join("long.log");
    // One 20 MB line without a newline, a multi-byte character across the cut.
    let mut text = vec![b'a'; MAX_LINE - 1];
    text.extend_from_slice("中".as_bytes());
    text.resize(20 * 1024 * 1024, b'b');
    std::fs::write(&path, &text).unwrap();
    let got = run("tail -1 __log_file_name__", &path).unwrap();
    assert_eq!(got, vec![b'a'; MAX_LINE - 1]);
    let got = run("head -1 __log_file_name__ | grep -a a", &path).unwrap();
    assert_eq!(got.len(), MAX_LINE);
    assert!(run("grep -a b __log_file_name__", &path).unwrap().is_empty());
}

#[test]
fn tail_in_a_pipe_is_bounded_in_bytes_but_exact() {
    let (_tmp, dir) = log_root("lv-ring");
    let path = dir.join("ring.log");
    let mut text = Vec::new();
    // 100 lines of 60 KiB (6 MB) and then 2000 short ones.
    for i in 0..100 {
        text.extend_from_slice(format!("{i} ").as_bytes());
        text.extend_from_slice(&vec![b'z'; 60 * 1024]);
        text.push(b'\n');
    }
    for i in 0..2000 {
        text.extend_from_slice(format!("short {i}\n").as_bytes());
    }
    std::fs::write(&path, &text).unwrap();
    // The big lines pass through the ring and leave it: the answer fits, and is exact.
    let cmd = "head -50000 __log_file_name__ | tail -1500";
    let got = run(cmd, &path).unwrap();
    assert_eq!(got, oracle(cmd, &path));
    assert!(got.starts_with(b"short 500\n"));
    // Here the ring would have to hold 6 MB: refused, not truncated.
    let err = run("head -100 __log_file_name__ | tail -100 | grep -v q", &path).unwrap_err();
    assert!(matches!(err, LogViewError::TooLarge { .. }), "{err}");
    let err = run("head -100 __log_file_name__", &path).unwrap_err();
    assert!(matches!(err, LogViewError::TooLarge { .. }), "{err}");
}
