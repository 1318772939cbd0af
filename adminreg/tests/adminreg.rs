//! tarsAdminRegistry end to end on real sockets, over a migrated `db_tars` (SQLite on every
//! IO driver, MariaDB once): a fake node (a `BlockingClient` with a push handler that calls
//! `reportNode` and answers every push with `reportResult`, as tarsnode does) and a client
//! calling `AdminRegObj` as TarsWeb does.
//!
//! Covered: the push round trip of start/stop/notify/getServerState/getLogData/
//! getLogFileList with the database side effects (`setting_state`); a node that never
//! answers → 1002 and a notify row; a push-only node without a connection → 1012, an
//! unregistered node → 1001; serial (fail → cancel the rest) and parallel tasks with their
//! statuses in `t_task_item`; undeploy deleting the rows; profile template inheritance; the
//! `t_registry_info` row; the peer disconnecting → its handle dropped. The push round trip's
//! latency is printed (p50 over 200 `pingNode`).

#![allow(clippy::unwrap_used)]

use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tars_adminreg::{AdminRegService, ADMIN_REG_OBJ};
use tars_core_net::app::{Application, Running};
use tars_core_net::client::config::ClientConfig;
use tars_core_net::client::{BlockingClient, ObjectProxy, Push};
use tars_core_net::rt::{self, IoMode};
use tars_proto::codec::{BinString, Field, Writer};
use tars_proto::config::Config;
use tars_proto::rpc::CallOptions;
use tars_protocol::tars::{
    AdminRegProxy, EMTaskItemStatus, EMTaskStatus, NodePushMessage, ReportNode, ServerState, ServerStateDesc,
    ServerStateInfo, TaskItemReq, TaskReq, TaskRsp,
};
use tars_sql::Value;
use tars_testkit::db::TestDb;

fn start(db: &TestDb, io: IoMode) -> Running {
    start_with(db, io, "")
}

/// AdminReg with `server_keys` added to its `<server>` section.
fn start_with(db: &TestDb, io: IoMode, server_keys: &str) -> Running {
    let text = format!(
        "<tars>\n<application>\n<server>\napp=tars\nserver=tarsAdminRegistry\nlocal=tcp -h 127.0.0.1 -p 0 -t 10000\n{server_keys}\
         <{ADMIN_REG_OBJ}Adapter>\nendpoint=tcp -h 127.0.0.1 -p 0 -t 60000\nservant={ADMIN_REG_OBJ}\n\
         </{ADMIN_REG_OBJ}Adapter>\n</server>\n</application>\n\
         <nodeinfo>\ncommand_timeout=1500\nsync_node_timeout=1500\n</nodeinfo>\n</tars>\n"
    );
    Application::new(Config::parse(&text).unwrap())
        .unwrap()
        .io(io)
        .shards(2)
        .service(AdminRegService::new(Some(db.store.clone())))
        .start()
        .unwrap()
}

fn object(running: &Running) -> String {
    let port = running.server().addr(&format!("{ADMIN_REG_OBJ}Adapter")).unwrap().port();
    format!("{ADMIN_REG_OBJ}@tcp -h 127.0.0.1 -p {port} -t 60000")
}

fn proxy(comm: &Rc<tars_core_net::client::Communicator>, obj: &str) -> AdminRegProxy<ObjectProxy> {
    AdminRegProxy::new(comm.proxy(obj).unwrap(), ADMIN_REG_OBJ)
        .with_options(CallOptions { timeout_ms: 10_000, ..CallOptions::default() })
}

fn encoded(write: impl FnOnce(&mut Writer)) -> BinString {
    let mut w = Writer::new();
    write(&mut w);
    BinString(tars_proto::Bytes::copy_from_slice(w.as_slice()))
}

/// What the fake node answers: `Slow.*` never, `Fail.*` with -1, everything else with 0.
fn answer(msg: &NodePushMessage) -> Option<(i32, i32, BinString)> {
    use NodePushMessage as M;
    let fail = |app: &str| if app == "Fail" { -1 } else { 0 };
    Some(match msg {
        M::Ping { request_id, .. } => (*request_id, 0, "ping succ".into()),
        M::StartServer { request_id, application, server_name, .. }
        | M::StopServer { request_id, application, server_name, .. }
        | M::DestroyServer { request_id, application, server_name, .. }
        | M::LoadServer { request_id, application, server_name, .. } => {
            if application == "Slow" {
                return None;
            }
            (*request_id, fail(application), format!("{} {application}.{server_name}", msg.func()).into())
        }
        M::NotifyServer { request_id, command, .. } => (*request_id, 0, format!("notified: {command}").into()),
        M::GetStateInfo { request_id, .. } => {
            let info = ServerStateInfo { server_state: ServerState::Active, process_id: 4242, ..Default::default() };
            (
                *request_id,
                0,
                encoded(|w| {
                    info.write_to(0, w);
                    "state ok".to_owned().write_to(1, w);
                }),
            )
        }
        M::GetLogFileList { request_id, .. } => {
            (*request_id, 0, encoded(|w| vec!["a.log".to_owned(), "b.log".to_owned()].write_to(0, w)))
        }
        M::GetLogData { request_id, log_file, cmd, .. } => (*request_id, 0, format!("{log_file}|{cmd}").into()),
        _ => return None,
    })
}

/// A fake node `name` connected to `obj`; `seen` gets every push.
fn fake_node(io: IoMode, obj: &str, name: &str, seen: Arc<Mutex<Vec<NodePushMessage>>>) -> BlockingClient {
    let client = BlockingClient::start(ClientConfig::default(), io).unwrap();
    let (o, n) = (obj.to_owned(), name.to_owned());
    client.run(move |comm| async move {
        let weak = Rc::downgrade(&comm);
        let obj = o.clone();
        comm.on_push(move |p: Push| {
            let msg = NodePushMessage::decode(&p.func, p.version, &p.body).unwrap();
            seen.lock().unwrap().push(msg.clone());
            let (Some(comm), Some((id, ret, result))) = (weak.upgrade(), answer(&msg)) else { return };
            let obj = obj.clone();
            rt::spawn(async move {
                proxy(&comm, &obj).report_result(id, msg.func(), ret, &result).await.unwrap();
            })
            .detach();
        });
        let rn = ReportNode { node_name: n, sid: "test-sid".into() };
        proxy(&comm, &o).report_node(&rn).await.unwrap();
    });
    client
}

/// A TarsWeb-like caller.
struct Web {
    client: BlockingClient,
    obj: String,
}

impl Web {
    fn call<T, F>(&self, f: impl FnOnce(AdminRegProxy<ObjectProxy>) -> F + Send + 'static) -> T
    where
        T: Send + 'static,
        F: std::future::Future<Output = T> + 'static,
    {
        let obj = self.obj.clone();
        self.client.run(move |comm| async move { f(proxy(&comm, &obj)).await })
    }

    fn op(&self, op: &'static str, app: &str, server: &str, node: &str) -> (i32, String) {
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        self.call(move |p| async move {
            let mut out = String::new();
            let ret = match op {
                "start" => p.start_server(&a, &s, &n, &mut out).await,
                "stop" => p.stop_server(&a, &s, &n, &mut out).await,
                "restart" => p.restart_server(&a, &s, &n, &mut out).await,
                "notify" => p.notify_server(&a, &s, &n, "tars.setloglevel DEBUG", &mut out).await,
                "undeploy" => p.undeploy(&a, &s, &n, "admin", &mut out).await,
                _ => unreachable!(),
            };
            (ret.unwrap(), out)
        })
    }

    fn ping(&self, node: &str) -> bool {
        let n = node.to_owned();
        self.call(move |p| async move { p.ping_node(&n, &mut String::new()).await.unwrap() })
    }

    fn task(&self, task_no: &str) -> TaskRsp {
        let t = task_no.to_owned();
        self.call(move |p| async move {
            let mut rsp = TaskRsp::default();
            assert_eq!(p.get_task_rsp(&t, &mut rsp).await.unwrap(), 0);
            rsp
        })
    }

    fn wait_task(&self, task_no: &str) -> TaskRsp {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let t = self.task(task_no);
            let done = t.task_item_rsp.iter().all(|i| {
                matches!(
                    i.status,
                    EMTaskItemStatus::EM_I_SUCCESS | EMTaskItemStatus::EM_I_FAILED | EMTaskItemStatus::EM_I_CANCEL
                )
            });
            if done {
                return t;
            }
            assert!(Instant::now() < deadline, "task {task_no} did not finish: {t:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn server_row(db: &TestDb, app: &str, server: &str, node: &str, template: &str, profile: &str) {
    db.exec(
        "INSERT INTO t_server_conf (application, server_name, node_name, template_name, profile, setting_state, \
         present_state, server_type) VALUES (?, ?, ?, ?, ?, 'inactive', 'inactive', 'tars_cpp')",
        vec![app.into(), server.into(), node.into(), template.into(), profile.into()],
    );
}

fn setting(db: &TestDb, app: &str, server: &str, node: &str) -> String {
    let rows = db.query(
        "SELECT setting_state FROM t_server_conf WHERE application = ? AND server_name = ? AND node_name = ?",
        vec![app.into(), server.into(), node.into()],
    );
    rows[0].get_by::<String>("setting_state").unwrap()
}

fn count(db: &TestDb, sql: &str, params: Vec<Value>) -> i64 {
    db.query(sql, params)[0].get::<i64>(0).unwrap()
}

fn task(no: &str, serial: bool, items: &[(&str, &str, &str)]) -> TaskReq {
    TaskReq {
        task_item_req: items
            .iter()
            .enumerate()
            .map(|(i, (cmd, app, server))| TaskItemReq {
                task_no: no.into(),
                item_no: format!("{no}-item{i}"),
                application: (*app).into(),
                server_name: (*server).into(),
                node_name: "n1".into(),
                command: (*cmd).into(),
                user_name: "admin".into(),
                ..TaskItemReq::default()
            })
            .collect(),
        task_no: no.into(),
        serial,
        user_name: "admin".into(),
        ..TaskReq::default()
    }
}

fn scenario(db: &TestDb, io: IoMode, bench: bool) {
    for s in ["Hello", "Other"] {
        server_row(db, "Test", s, "n1", "", "");
    }
    server_row(db, "Fail", "Bad", "n1", "", "");
    server_row(db, "Slow", "Sleepy", "n1", "", "");
    db.exec(
        "INSERT INTO t_node_info (node_name, node_obj, present_state, tars_version) VALUES ('n2', '', 'active', 'v9')",
        vec![],
    );
    let running = start(db, io);
    let obj = object(&running);
    let web = Web { client: BlockingClient::start(ClientConfig::default(), io).unwrap(), obj: obj.clone() };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let node = fake_node(io, &obj, "n1", seen.clone());
    assert!(web.ping("n1"));

    // Push round trips, with the database side first.
    assert_eq!(web.op("start", "Test", "Hello", "n1"), (0, "startServer Test.Hello".into()));
    assert_eq!(setting(db, "Test", "Hello", "n1"), "active");
    assert_eq!(web.op("stop", "Test", "Hello", "n1"), (0, "stopServer Test.Hello".into()));
    assert_eq!(setting(db, "Test", "Hello", "n1"), "inactive");
    assert_eq!(web.op("notify", "Test", "Hello", "n1"), (0, "notified: tars.setloglevel DEBUG".into()));
    assert!(seen
        .lock()
        .unwrap()
        .iter()
        .any(|m| matches!(m, NodePushMessage::StartServer { server_name, .. } if server_name == "Hello")));
    let (ret, state, text) = web.call(|p| async move {
        let (mut st, mut out) = (ServerStateDesc::default(), String::new());
        let ret = p.get_server_state("Test", "Hello", "n1", &mut st, &mut out).await.unwrap();
        (ret, st, out)
    });
    assert_eq!((ret, text.as_str()), (0, "state ok"));
    assert_eq!((state.present_state_in_node.as_str(), state.process_id), ("Active", 4242));
    assert_eq!(state.setting_state_in_reg, "inactive");
    let (ret, data) = web.call(|p| async move {
        let mut out = String::new();
        let ret = p.get_log_data("Test", "Hello", "n1", "x.log", "tail -10 __log_file_name__", &mut out).await;
        (ret.unwrap(), out)
    });
    assert_eq!((ret, data.as_str()), (0, "x.log|tail -10 __log_file_name__"));
    let files = web.call(|p| async move {
        let mut l = Vec::new();
        assert_eq!(p.get_log_file_list("Test", "Hello", "n1", &mut l).await.unwrap(), 0);
        l
    });
    assert_eq!(files, ["a.log", "b.log"]);

    // A node that never answers, one without a connection, one not registered.
    let t0 = Instant::now();
    assert_eq!(web.op("start", "Slow", "Sleepy", "n1").0, 1002);
    assert!(t0.elapsed() >= Duration::from_millis(1400), "{:?}", t0.elapsed());
    let shared = running.service::<AdminRegService>().unwrap().shared().unwrap().clone();
    assert_eq!(shared.links.in_flight(), 0, "a timed-out request id is released");
    let notes = count(
        db,
        "SELECT COUNT(*) FROM t_server_notifys WHERE server_id = ? AND result LIKE ?",
        vec!["Slow.Sleepy_n1".into(), "%EM_TARS_CALL_NODE_TIMEOUT_ERR%".into()],
    );
    assert_eq!(notes, 1);
    assert_eq!(web.op("start", "Test", "Hello", "n2").0, 1012);
    assert_eq!(web.op("start", "Test", "Hello", "n3").0, 1001);
    assert!(!web.ping("n2"));

    // Tasks: serial stops at the first failure and cancels the rest; parallel runs all.
    let serial =
        task("task-serial", true, &[("start", "Test", "Hello"), ("start", "Fail", "Bad"), ("stop", "Test", "Hello")]);
    web.call(move |p| async move { assert_eq!(p.add_task_req(&serial).await.unwrap(), 0) });
    let t = web.wait_task("task-serial");
    let st: Vec<_> = t.task_item_rsp.iter().map(|i| i.status).collect();
    assert_eq!(st, [EMTaskItemStatus::EM_I_SUCCESS, EMTaskItemStatus::EM_I_FAILED, EMTaskItemStatus::EM_I_CANCEL]);
    assert_eq!(t.status, EMTaskStatus::EM_T_PARIAL);
    let rows = db.query("SELECT status FROM t_task_item WHERE task_no = 'task-serial' ORDER BY item_no", vec![]);
    let st: Vec<i64> = rows.iter().map(|r| r.get::<i64>(0).unwrap()).collect();
    assert_eq!(st, [3, 4, 5]);
    assert_eq!(count(db, "SELECT COUNT(*) FROM t_task WHERE task_no = 'task-serial'", vec![]), 1);
    let parallel = task("task-par", false, &[("restart", "Test", "Hello"), ("stop", "Test", "Other")]);
    web.call(move |p| async move { assert_eq!(p.add_task_req(&parallel).await.unwrap(), 0) });
    let t = web.wait_task("task-par");
    assert_eq!(t.status, EMTaskStatus::EM_T_SUCCESS, "{t:?}");
    assert_eq!(setting(db, "Test", "Hello", "n1"), "active");
    // Finished tasks come from the database, with their history.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(web.task("task-par").status, EMTaskStatus::EM_T_SUCCESS);
    let hist = web.call(|p| async move {
        let mut v = Vec::new();
        assert_eq!(p.get_task_history("Test", "Hello", "start", &mut v).await.unwrap(), 0);
        v
    });
    assert_eq!(hist.len(), 1);

    // Undeploy deletes the rows.
    db.exec(
        "INSERT INTO t_adapter_conf (application, server_name, node_name, adapter_name) \
         VALUES ('Test', 'Other', 'n1', 'Test.Other.ObjAdapter')",
        vec![],
    );
    assert_eq!(web.op("undeploy", "Test", "Other", "n1").0, 0);
    assert_eq!(count(db, "SELECT COUNT(*) FROM t_server_conf WHERE server_name = 'Other'", vec![]), 0);
    assert_eq!(count(db, "SELECT COUNT(*) FROM t_adapter_conf WHERE server_name = 'Other'", vec![]), 0);

    // Published in t_registry_info.
    let published = count(
        db,
        "SELECT COUNT(*) FROM t_registry_info WHERE servant = ? AND present_state = 'active'",
        vec![ADMIN_REG_OBJ.into()],
    );
    assert_eq!(published, 1);

    if bench {
        let mut times: Vec<Duration> = (0..200)
            .map(|_| {
                let t = Instant::now();
                assert!(web.ping("n1"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!("adminreg pingNode push round trip ({io:?}): p50 {:?}, p99 {:?}", times[100], times[197]);
    }

    // The node goes away: its connection is dropped.
    drop(node);
    let deadline = Instant::now() + Duration::from_secs(5);
    while shared.links.connections("n1") > 0 {
        assert!(Instant::now() < deadline, "closed connection still held");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(web.op("stop", "Test", "Hello", "n1").0, 1001);
    running.shutdown();
    running.wait().unwrap();
}

fn templates(db: &TestDb, io: IoMode) {
    db.exec(
        "INSERT INTO t_profile_template (template_name, parents_name, profile) VALUES \
         ('t.base', 't.base', '<tars>\n<application>\na=1\nb=1\n</application>\n</tars>\n'), \
         ('t.child', 't.base', '<tars>\n<application>\nb=2\n</application>\n</tars>\n')",
        vec![],
    );
    server_row(db, "Test", "Tpl", "n1", "t.child", "<tars>\n<application>\nc=3\n</application>\n</tars>\n");
    let running = start(db, io);
    let web = Web { client: BlockingClient::start(ClientConfig::default(), io).unwrap(), obj: object(&running) };
    let (ret, text) = web.call(|p| async move {
        let (mut t, mut d) = (String::new(), String::new());
        (p.get_server_profile_template("Test", "Tpl", "n1", &mut t, &mut d).await.unwrap(), t)
    });
    assert_eq!(ret, 0);
    let c = Config::parse(&text).unwrap();
    let got: Vec<_> = ["a", "b", "c"].iter().map(|k| c.get(&format!("/tars/application<{k}>")).unwrap_or("")).collect();
    assert_eq!(got, ["1", "2", "3"]);
    let (ret, text) = web.call(|p| async move {
        let (mut t, mut d) = (String::new(), String::new());
        (p.get_profile_template("t.child", &mut t, &mut d).await.unwrap(), t)
    });
    assert_eq!(ret, 0);
    assert!(text.contains("a=1") && text.contains("b=2") && !text.contains("c=3"), "{text}");
    let version = web.call(|p| async move {
        let mut v = String::new();
        p.get_version(&mut v).await.unwrap();
        v
    });
    assert!(version.starts_with("tars-rs-"));
    running.shutdown();
    running.wait().unwrap();
}

fn flow(db: &TestDb, node: &str) -> String {
    let rows = db.query(
        "SELECT flow_state FROM t_server_conf WHERE application = 'Test' AND server_name = 'Hello' AND node_name = ?",
        vec![node.into()],
    );
    rows[0].get_by::<String>("flow_state").unwrap()
}

fn elegant(no: &str, items: &[(&str, &str)]) -> TaskReq {
    let mut t = task(no, false, &[]);
    t.task_item_req = items
        .iter()
        .enumerate()
        .map(|(i, (cmd, node))| TaskItemReq {
            task_no: no.into(),
            item_no: format!("{no}-item{i}"),
            application: "Test".into(),
            server_name: "Hello".into(),
            node_name: (*node).into(),
            command: (*cmd).into(),
            ..TaskItemReq::default()
        })
        .collect();
    t.is_elegant = true;
    t.each_num = 1;
    t
}

/// Elegant tasks (upstream `TaskListElegant`): one batch at a time, each out of the routes
/// (`flow_state`, `EM_I_PAUSE_FLOW`) for `elegant_wait_second` before it runs; a restart puts
/// its server back, a stop leaves it out; a newer elegant task for the server cancels the
/// batches not started.
#[test]
fn elegant_tasks() {
    let db = TestDb::sqlite("adminreg-elegant");
    for n in ["n1", "n2"] {
        server_row(&db, "Test", "Hello", n, "", "");
    }
    let io = IoMode::EpollEt;
    let running = start_with(&db, io, "elegant_wait_second=2\n");
    let obj = object(&running);
    let web = Web { client: BlockingClient::start(ClientConfig::default(), io).unwrap(), obj: obj.clone() };
    let seen = Arc::new(Mutex::new(Vec::new()));
    let _nodes = [fake_node(io, &obj, "n1", seen.clone()), fake_node(io, &obj, "n2", seen.clone())];
    assert!(web.ping("n1") && web.ping("n2"));
    assert_eq!((flow(&db, "n1"), flow(&db, "n2")), ("active".into(), "active".into()));

    let t0 = Instant::now();
    let req = elegant("el-1", &[("restart", "n1"), ("stop", "n2")]);
    web.call(move |p| async move { assert_eq!(p.add_task_req(&req).await.unwrap(), 0) });
    // The first batch is out of the routes and waits; the second is untouched.
    std::thread::sleep(Duration::from_millis(500));
    let t = web.task("el-1");
    assert_eq!(t.task_item_rsp[0].status, EMTaskItemStatus::EM_I_PAUSE_FLOW, "{t:?}");
    assert_eq!(t.task_item_rsp[1].status, EMTaskItemStatus::EM_I_NOT_START, "{t:?}");
    assert_eq!((flow(&db, "n1"), flow(&db, "n2")), ("inactive".into(), "active".into()));
    assert!(seen.lock().unwrap().iter().all(|m| !matches!(m, NodePushMessage::StopServer { .. })), "nothing ran yet");
    let t = web.wait_task("el-1");
    let took = t0.elapsed();
    assert!(t.task_item_rsp.iter().all(|i| i.status == EMTaskItemStatus::EM_I_SUCCESS), "{t:?}");
    assert!(took >= Duration::from_secs(4), "two batches of 2 s each: {took:?}");
    assert_eq!((flow(&db, "n1"), flow(&db, "n2")), ("active".into(), "inactive".into()));

    // A newer elegant task for the same server: the old one's second batch is cancelled.
    let old = elegant("el-2", &[("restart", "n1"), ("restart", "n2")]);
    web.call(move |p| async move { assert_eq!(p.add_task_req(&old).await.unwrap(), 0) });
    std::thread::sleep(Duration::from_millis(300));
    let new = elegant("el-3", &[("start", "n2")]);
    web.call(move |p| async move { assert_eq!(p.add_task_req(&new).await.unwrap(), 0) });
    let t = web.wait_task("el-2");
    let st: Vec<_> = t.task_item_rsp.iter().map(|i| i.status).collect();
    assert_eq!(st, [EMTaskItemStatus::EM_I_SUCCESS, EMTaskItemStatus::EM_I_CANCEL], "{t:?}");
    let t = web.wait_task("el-3");
    assert_eq!(t.task_item_rsp[0].status, EMTaskItemStatus::EM_I_SUCCESS, "{t:?}");
    // A start that succeeds puts the server back in the routes.
    assert_eq!(flow(&db, "n2"), "active");
    running.shutdown();
    running.wait().unwrap();
}

/// Tasks left unfinished by an AdminReg that stopped are ended by the next one to start, once
/// they are older than any instance takes to run them; a young one is left alone (another
/// instance may be running it).
#[test]
fn abandoned_tasks_are_ended() {
    let db = TestDb::sqlite("adminreg-abandoned");
    for (no, age) in [("old", 3600_i64), ("young", 0)] {
        db.store
            .run_blocking(move |s| {
                let d = s.dialect();
                let at = d.seconds_before(d.now());
                s.exec(
                    &format!("INSERT INTO t_task (task_no, serial, user_name, create_time) VALUES (?, 1, 'admin', {at})"),
                    &tars_sql::params![no, age],
                )?;
                for (i, status) in [EMTaskItemStatus::EM_I_RUNNING, EMTaskItemStatus::EM_I_NOT_START].iter().enumerate() {
                    s.exec(
                        "INSERT INTO t_task_item (task_no, item_no, application, server_name, node_name, command, status) \
                         VALUES (?, ?, 'Test', 'Hello', 'n1', 'restart', ?)",
                        &tars_sql::params![no, format!("{no}-{i}"), status.0],
                    )?;
                }
                Ok(())
            })
            .unwrap();
    }
    let running = start(&db, IoMode::EpollEt);
    let status = |no: &str| -> Vec<(i64, String)> {
        db.query("SELECT status, log FROM t_task_item WHERE task_no = ? ORDER BY item_no", vec![no.into()])
            .iter()
            .map(|r| {
                (r.get_by::<i64>("status").unwrap(), r.get_by::<Option<String>>("log").unwrap().unwrap_or_default())
            })
            .collect()
    };
    let old = status("old");
    assert_eq!(old.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [4, 5], "FAILED, CANCEL: {old:?}");
    assert!(old.iter().all(|(_, log)| log.contains("no tarsAdminRegistry runs this task")), "{old:?}");
    assert_eq!(status("young").iter().map(|(s, _)| *s).collect::<Vec<_>>(), [2, 0]);
    let web =
        Web { client: BlockingClient::start(ClientConfig::default(), IoMode::EpollEt).unwrap(), obj: object(&running) };
    assert_eq!(web.task("old").status, EMTaskStatus::EM_T_PARIAL);
    running.shutdown();
    running.wait().unwrap();
}

tars_core_net::on_every_driver! {
    sqlite => |io| scenario(&TestDb::sqlite("adminreg"), io, io == IoMode::EpollEt);
}

#[test]
fn mariadb() {
    scenario(&TestDb::mysql("adminreg", "scenario"), IoMode::EpollEt, false);
    templates(&TestDb::mysql("adminreg", "tpl"), IoMode::EpollEt);
}

#[test]
fn sqlite_templates() {
    templates(&TestDb::sqlite("adminreg-tpl"), IoMode::EpollEt);
}
