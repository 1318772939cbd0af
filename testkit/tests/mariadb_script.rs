#![allow(clippy::unwrap_used)]
//! `scripts/mariadb.sh` and `PrivateMariaDb`: real `mariadbd` processes, each test its own
//! (several seconds each).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tars_testkit::mysql::{self, PrivateMariaDb, URL_ENV};
use tars_testkit::wait_for;

/// The `mariadb` command-line client.
fn client() -> &'static str {
    let found = |name: &str| Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success());
    if found("mariadb") {
        "mariadb"
    } else {
        "mysql"
    }
}

/// A client connected over TCP as `tars`, running `sql` in batch mode (no headers).
fn tcp(db: &PrivateMariaDb, extra: &[&str], sql: &str) -> Command {
    let mut cmd = Command::new(client());
    cmd.args(["--no-defaults", "-h127.0.0.1", "-utars", "-ptars2015", "-N", "-B"])
        .arg(format!("-P{}", db.port().unwrap()))
        .args(extra)
        .args(["test", "-e", sql])
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`, asserts success, returns its stdout trimmed.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn query(db: &PrivateMariaDb, sql: &str) -> String {
    run(&mut tcp(db, &[], sql))
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Err(_) => true,
        Ok(s) => s.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
    }
}

#[test]
fn data_survives_kill9_and_restart_on_the_same_port() {
    let db = PrivateMariaDb::start().unwrap();
    let port = db.port().unwrap();
    assert_ne!(port, 3306, "{}", db.url());
    assert_eq!(db.url(), format!("mysql://tars:tars2015@127.0.0.1:{port}/test"));
    assert!(db.running());

    // root over the private socket, tars over TCP.
    let socket = format!("--socket={}", db.socket().display());
    let root = run(Command::new(client()).args(["--no-defaults", &socket, "-uroot", "-N", "-B", "-e", "select 1"]));
    assert_eq!(root, "1");
    assert_eq!(query(&db, "select 1"), "1");
    let dbs = query(&db, "show databases");
    for name in ["db_tars", "tars_stat", "tars_property", "test"] {
        assert!(dbs.lines().any(|l| l == name), "no database {name} in {dbs:?}");
    }
    // The script's other subcommands agree.
    let script = mysql::script_path();
    let url = run(Command::new("bash").arg(&script).arg("url").arg(db.dir()));
    assert_eq!(url, db.url());
    let pid = db.pid().unwrap();
    let printed = run(Command::new("bash").arg(&script).arg("pid").arg(db.dir()));
    assert_eq!(printed, pid.to_string());

    query(&db, "create table crash (id int primary key, v varchar(32)) engine=InnoDB");
    query(&db, "insert into crash values (1, 'committed')");
    // A transaction still open when the server dies: crash recovery must roll it back.
    let mut open: Child = tcp(&db, &[], "begin; insert into crash values (2, 'uncommitted'); select sleep(60)")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The client runs its statements in order and stops at the first error, so once its
    // `sleep` is running the insert is done and still uncommitted. (`innodb_trx` was the
    // first probe here, but its snapshot cache sometimes showed no row for a whole 30 s.)
    let seen = wait_for(Duration::from_secs(30), || {
        let n = query(&db, "select count(*) from information_schema.processlist where info = 'select sleep(60)'");
        (n != "0").then_some(())
    });
    if seen.is_none() {
        let processes = query(&db, "show full processlist");
        let _ = open.kill();
        let out = open.wait_with_output().unwrap();
        panic!(
            "the open transaction never showed up; client {}: {}\nprocesslist:\n{processes}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    db.kill9().unwrap();
    assert!(gone(pid));
    assert!(!db.running());
    let _ = open.wait();

    db.restart().unwrap();
    assert_eq!(db.port().unwrap(), port);
    let pid2 = db.pid().unwrap();
    assert_ne!(pid2, pid);
    assert_eq!(query(&db, "select id, v from crash order by id"), "1\tcommitted");
    // `start` on a running instance is a no-op that prints the same URL.
    db.restart().unwrap();
    assert_eq!(db.pid().unwrap(), pid2);

    db.stop().unwrap();
    assert!(gone(pid2), "mariadbd {pid2} still running after stop");
    assert!(!db.running());
    db.stop().unwrap(); // idempotent
    assert!(db.dir().join("data").is_dir(), "stop keeps the data");
}

#[test]
fn accepts_tls_and_cleans_up_on_drop() {
    let db = PrivateMariaDb::start().unwrap();
    let status = run(&mut tcp(&db, &["--ssl"], "SHOW STATUS LIKE 'Ssl_cipher'"));
    let cipher = status.split('\t').nth(1).unwrap_or("");
    assert!(!cipher.is_empty(), "no TLS cipher: {status:?}");
    // The certificate chains to the CA next to it and names 127.0.0.1.
    let ca = format!("--ssl-ca={}", db.ca_cert().display());
    let verified = run(&mut tcp(&db, &["--ssl", &ca, "--ssl-verify-server-cert"], "select 'verified'"));
    assert_eq!(verified, "verified");

    let pid = db.pid().unwrap();
    let dir = db.dir().to_owned();
    drop(db);
    assert!(gone(pid), "mariadbd {pid} still running after drop");
    assert!(!Path::new(&dir).exists(), "{} not removed", dir.display());
}

#[test]
fn url_from_explains_how_to_get_a_server() {
    assert_eq!(mysql::url_from(Some("mysql://a:b@127.0.0.1:1/test".into())).unwrap(), "mysql://a:b@127.0.0.1:1/test");
    for missing in [None, Some(String::new()), Some("  ".into())] {
        let message = mysql::url_from(missing).unwrap_err();
        assert!(message.contains(URL_ENV), "{message}");
        assert!(message.contains("scripts/test.sh"), "{message}");
        assert!(message.contains("scripts/mariadb.sh start"), "{message}");
    }
}

const CHILD_ENV: &str = "TARS_TESTKIT_MYSQL_URL_CHILD";

/// Does nothing unless run by `mysql_url_panics_when_unset` in a child process.
#[test]
fn mysql_url_child() {
    if std::env::var_os(CHILD_ENV).is_some() {
        println!("got {}", mysql::mysql_url());
    }
}

#[test]
fn mysql_url_panics_when_unset() {
    // In a child process, so this process's environment stays untouched.
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mysql_url_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env_remove(URL_ENV)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "mysql_url() did not panic:\n{text}");
    assert!(text.contains("needs a real MariaDB"), "{text}");
    assert!(text.contains("scripts/mariadb.sh start"), "{text}");

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mysql_url_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env(URL_ENV, "mysql://tars:tars2015@127.0.0.1:1/test")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("got mysql://tars:tars2015@127.0.0.1:1/test"), "{text}");
}
