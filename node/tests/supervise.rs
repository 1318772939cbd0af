#![allow(clippy::unwrap_used)]
// Children here are reaped by the watcher or `stop` through their pidfd, which is under test.
#![allow(clippy::zombie_processes)]
//! `supervise`: spawning through a real `tars_start.sh`, pidfd exit watching, stop.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use tars_node::launch::Launch;
use tars_node::supervise::{
    is_alive, proc_state, rss_kb, spawn, stop, SpawnOptions, StopOutcome, SuperviseError, Watcher,
};

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tars-supervise-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A launch shaped like `launch::start_script`'s native-mode output, running `launch_line`.
fn launch_for(dir: &std::path::Path, launch_line: &str, tail: &str) -> Launch {
    let script_path = dir.join("tars_start.sh").to_string_lossy().into_owned();
    let pid_file = format!("{script_path}.pid");
    let script = format!("#!/bin/sh\ntrap 'exit' TERM INT\npid=0\n\n{launch_line}{tail}");
    Launch {
        script_path: script_path.clone(),
        script,
        pid_file,
        argv: vec![script_path],
        cwd: dir.to_string_lossy().into_owned(),
        env: vec![("TARS_TEST_VAR".to_owned(), "from-env".to_owned())],
        stdout_log: Some(dir.join("log/App/Server/App.Server.log").to_string_lossy().into_owned()),
    }
}

fn kill9(pid: u32) {
    kill_process(Pid::from_raw(pid as i32).unwrap(), Signal::KILL).unwrap();
}

fn sleeper() -> Child {
    Command::new("/bin/sleep").arg("300").spawn().unwrap()
}

/// Waits until `pid` has exec'd into `comm`.
fn wait_comm(pid: u32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim() == comm).unwrap_or(false) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} never became {comm}");
}

/// Gone from /proc or at least not a zombie.
fn not_zombie(pid: u32) -> bool {
    !matches!(proc_state(pid), Some('Z'))
}

#[test]
fn adopts_pid_from_pid_file_and_logs_stdout() {
    let dir = temp_dir("adopt");
    let server = dir.join("server.sh");
    fs::write(&server, "echo hello-from-server $TARS_TEST_VAR\nexec /bin/sleep 300\n").unwrap();
    let launch = launch_for(&dir, &format!("/bin/sh {} ", server.display()), &{
        let pf = dir.join("tars_start.sh.pid");
        format!(" & pid=$!\necho $pid > {}\n\n", pf.display())
    });
    let started = spawn(&launch, &SpawnOptions::default()).unwrap();
    let from_file: u32 = fs::read_to_string(&launch.pid_file).unwrap().trim().parse().unwrap();
    assert_eq!(started.pid, from_file);
    assert_ne!(started.pid, started.script_pid);
    assert!(started.from_pid_file);
    assert!(is_alive(started.pid));
    // The script is our child and was reaped: gone, not a zombie.
    let deadline = Instant::now() + Duration::from_secs(2);
    while proc_state(started.script_pid).is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(proc_state(started.script_pid), None, "script left behind");
    // The script is executable.
    let mode = std::os::unix::fs::PermissionsExt::mode(&fs::metadata(&launch.script_path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755);
    // stdout went to the log, with the env applied.
    let log = launch.stdout_log.clone().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = fs::read_to_string(&log).unwrap_or_default();
        if text.contains("hello-from-server") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(text.contains("hello-from-server from-env"), "log: {text:?}");
    wait_comm(started.pid, "sleep");
    assert!(rss_kb(started.pid).unwrap() > 0);
    // Sleeping, or running for a moment on a loaded machine: alive, not a zombie or stopped.
    assert!(matches!(proc_state(started.pid), Some('S' | 'R')), "{:?}", proc_state(started.pid));
    assert_eq!(stop(started.pid, Duration::from_secs(2)).unwrap(), StopOutcome::Exited);
    assert!(!is_alive(started.pid));
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn no_pid_file_is_an_error_and_leaves_nothing_running() {
    let dir = temp_dir("nopid");
    let bg = dir.join("bg.pid");
    // Starts a background job but never writes the pid file, then exits.
    let launch = launch_for(&dir, "/bin/sleep 300 ", &format!(" &\necho $! > {}\nexit 0\n", bg.display()));
    let t0 = Instant::now();
    let err = spawn(&launch, &SpawnOptions { pid_wait: Duration::from_millis(500) }).unwrap_err();
    assert!(matches!(err, SuperviseError::NoPid { .. }), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let bg_pid: u32 = fs::read_to_string(&bg).unwrap().trim().parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while is_alive(bg_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(!is_alive(bg_pid), "background job of the script still running");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn script_still_running_at_deadline_is_adopted() {
    let dir = temp_dir("container");
    // Container mode: the script runs the server in the foreground and writes no pid file.
    let launch = launch_for(&dir, "/bin/sleep 300 ", "\n");
    let t0 = Instant::now();
    let started = spawn(&launch, &SpawnOptions { pid_wait: Duration::from_millis(300) }).unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(300));
    assert!(!started.from_pid_file);
    assert_eq!(started.pid, started.script_pid);
    assert!(is_alive(started.pid));
    // sh runs its `exit` trap only after the foreground command returns, so SIGTERM does not
    // stop it; SIGKILL does, and stop reaps it (our child).
    let grace = Duration::from_millis(500);
    assert_eq!(stop(started.pid, grace).unwrap(), StopOutcome::Killed);
    assert_eq!(proc_state(started.pid), None);
    // stop signals the pid only; the foreground sleep in the script's group is left.
    let _ = rustix::process::kill_process_group(Pid::from_raw(started.pid as i32).unwrap(), Signal::KILL);
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn kill9_latency_and_reaping() {
    let (w, rx) = Watcher::<usize>::new().unwrap();
    let mut lat = Vec::new();
    for i in 0..20 {
        let child = sleeper();
        let pid = child.id();
        drop(child);
        let id = w.watch(pid, i).unwrap();
        let t0 = Instant::now();
        kill9(pid);
        let ev = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!((ev.id, ev.tag, ev.pid), (id, i, pid));
        lat.push(ev.at.saturating_duration_since(t0));
        // Our child, reaped by the watcher: gone from /proc.
        assert_eq!(proc_state(pid), None, "pid {pid} left as {:?}", proc_state(pid));
    }
    lat.sort();
    let p50 = lat[lat.len() / 2];
    let p99 = lat[(lat.len() * 99).div_ceil(100) - 1];
    eprintln!("kill -9 -> Exited over 20: min {:?} p50 {p50:?} p99 {p99:?} max {:?}", lat[0], lat[19]);
    assert!(p99 < Duration::from_millis(100), "p99 {p99:?}");
    assert!(w.is_empty());
}

#[test]
fn fifty_watched_ten_killed_and_unwatch() {
    let (w, rx) = Watcher::<usize>::new().unwrap();
    let mut children: Vec<Child> = (0..50).map(|_| sleeper()).collect();
    let ids: Vec<_> = children.iter().enumerate().map(|(i, c)| w.watch(c.id(), i).unwrap()).collect();
    assert_eq!(w.len(), 50);
    let killed: HashSet<usize> = (0..50).filter(|i| i % 5 == 0).collect();
    for &i in &killed {
        kill9(children[i].id());
    }
    let mut got = HashSet::new();
    while got.len() < 10 {
        let ev = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(ev.pid, children[ev.tag].id());
        assert!(got.insert(ev.tag), "tag {} twice", ev.tag);
    }
    assert_eq!(got, killed);
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "extra event");
    assert_eq!(w.len(), 40);
    for &i in &killed {
        assert_eq!(proc_state(children[i].id()), None, "killed child not reaped");
    }
    // Unwatch 5, kill them: no events.
    let unwatched: Vec<usize> = (0..50).filter(|i| i % 5 == 1).take(5).collect();
    for &i in &unwatched {
        assert_eq!(w.unwatch(ids[i]), Some(i));
        assert_eq!(w.unwatch(ids[i]), None);
    }
    assert_eq!(w.len(), 35);
    for &i in &unwatched {
        kill9(children[i].id());
        children[i].wait().unwrap();
    }
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "event for an unwatched pid");
    // The rest: killed, reported, reaped.
    let rest: Vec<usize> = (0..50).filter(|i| !killed.contains(i) && !unwatched.contains(i)).collect();
    for &i in &rest {
        kill9(children[i].id());
    }
    for _ in &rest {
        rx.recv_timeout(Duration::from_secs(2)).unwrap();
    }
    assert!(w.is_empty());
    for c in &children {
        assert!(not_zombie(c.id()));
    }
}

#[test]
fn watching_a_gone_pid_reports_at_once() {
    let (w, rx) = Watcher::<&'static str>::new().unwrap();
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    let t0 = Instant::now();
    let id = w.watch(pid, "gone").unwrap();
    let ev = rx.recv_timeout(Duration::from_millis(100)).unwrap();
    assert_eq!((ev.id, ev.tag, ev.pid), (id, "gone", pid));
    assert!(t0.elapsed() < Duration::from_millis(100));
    assert!(w.is_empty());
}

#[test]
fn stop_term_then_kill() {
    // Exits on SIGTERM.
    let child = Command::new("/bin/sh").args(["-c", "exec /bin/sleep 300"]).spawn().unwrap();
    let pid = child.id();
    wait_comm(pid, "sleep");
    let t0 = Instant::now();
    assert_eq!(stop(pid, Duration::from_secs(2)).unwrap(), StopOutcome::Exited);
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(proc_state(pid), None, "not reaped");

    // Ignores SIGTERM (SIG_IGN survives exec).
    let child = Command::new("/bin/sh").args(["-c", "trap '' TERM; exec /bin/sleep 300"]).spawn().unwrap();
    let pid = child.id();
    wait_comm(pid, "sleep");
    let grace = Duration::from_secs(1);
    let t0 = Instant::now();
    assert_eq!(stop(pid, grace).unwrap(), StopOutcome::Killed);
    let took = t0.elapsed();
    assert!(took >= grace && took < grace + Duration::from_secs(3), "took {took:?}");
    assert_eq!(proc_state(pid), None, "not reaped");

    // Already gone.
    let mut child = Command::new("/bin/true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    assert_eq!(stop(pid, grace).unwrap(), StopOutcome::NotRunning);
}

#[test]
fn proc_readers_on_self() {
    let me = std::process::id();
    assert!(is_alive(me));
    assert!(rss_kb(me).unwrap() > 100);
    // The main thread's state: it runs or sleeps waiting for the test threads.
    assert!(matches!(proc_state(me), Some('R' | 'S')), "{:?}", proc_state(me));
    assert!(!is_alive(0));
    assert_eq!(rss_kb(u32::MAX), None);
}

/// Container mode: the script runs the server in the foreground and is adopted itself;
/// stopping it stops the server too (the whole process group is signalled).
#[test]
fn container_stop_kills_the_process_group() {
    let dir = temp_dir("group");
    let mut launch = launch_for(&dir, "/bin/sleep 300 ", "\n");
    launch.stdout_log = None;
    let started = spawn(&launch, &SpawnOptions { pid_wait: Duration::from_millis(300) }).unwrap();
    assert!(!started.from_pid_file);
    let members = || -> Vec<u32> {
        fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|t| {
                    let rest = &t[t.rfind(')').unwrap() + 1..];
                    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
                    f[2].parse::<u32>().ok() == Some(started.script_pid) && f[0] != "Z"
                })
            })
            .collect()
    };
    assert!(members().len() >= 2, "script and sleep run: {:?}", members());
    let outcome = tars_node::supervise::stop_started(&started, Duration::from_secs(2)).unwrap();
    assert_ne!(outcome, StopOutcome::NotRunning);
    assert!(members().is_empty(), "left running: {:?}", members());
}
