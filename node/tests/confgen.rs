//! Config generation and start scripts of `tars-node`, end to end on descriptors like the ones
//! TarsWeb deploys.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::process::Command;
use std::time::Duration;

use tars_node::confgen::{
    existing_local_port, generate, pick_local_port, write_atomic, ConfGenError, EnvVar, Generated, NodeEnv, Written,
    LOCAL_PORT_MAX, LOCAL_PORT_MIN,
};
use tars_node::launch::{self, Probe};
use tars_proto::config::Config;
use tars_proto::endpoint::Endpoint;
use tars_protocol::tars::{AdapterDescriptor, ServerDescriptor};
use tars_testkit::process::TempDir;

/// The keys and macros of upstream's `tars.default` template, in its domain layout (our own
/// text: different spacing, no comments).
const TARS_DEFAULT: &str = "<tars>
<application>
enableset=${enableset}
setdivision=${setdivision}
<client>
locator = ${locator}
sync-invoke-timeout = 3000
async-invoke-timeout = 5000
refresh-endpoint-interval = 60000
stat = tars.tarsstat.StatObj
property = tars.tarsproperty.PropertyObj
report-interval = 60000
asyncthread = ${asyncthread}
modulename = ${modulename}
</client>
<server>
app = ${app}
server = ${server}
nodename = ${nodename}
localip = ${localip}
local = ${local}
basepath = ${basepath}
datapath = ${datapath}
logpath = ${logpath}
logsize = 10M
lognum = 10
logLevel = DEBUG
config = tars.tarsconfig.ConfigObj
notify = tars.tarsnotify.NotifyObj
log = tars.tarslog.LogObj
deactivating-timeout = 3000
activating-timeout = 60000
</server>
</application>
</tars>
";

const ROOT: &str = "/usr/local/app/tars/tarsnode/data/Test.HelloServer";
const CONF: &str = "/usr/local/app/tars/tarsnode/data/Test.HelloServer/conf/Test.HelloServer.config.conf";

fn adapter(endpoint: &str, servant: &str, threads: &str, allow: &str, protocol: &str) -> AdapterDescriptor {
    AdapterDescriptor {
        adapter_name: format!("{servant}Adapter"),
        thread_num: threads.to_owned(),
        endpoint: endpoint.to_owned(),
        max_connections: 100000,
        allow_ip: allow.to_owned(),
        servant: servant.to_owned(),
        queuecap: 10000,
        queuetimeout: 60000,
        protocol: protocol.to_owned(),
        ..AdapterDescriptor::default()
    }
}

fn hello_desc(profile: &str) -> ServerDescriptor {
    let adapters = BTreeMap::from([
        (
            "Test.HelloServer.EchoObjAdapter".to_owned(),
            adapter("tcp -h 172.16.8.1 -p 10002", "Test.HelloServer.EchoObj", "2", "10.0.0.1;10.0.0.2", ""),
        ),
        (
            "Test.HelloServer.HelloObjAdapter".to_owned(),
            adapter("tcp -h 172.16.8.1 -p 10001 -t 60000", "Test.HelloServer.HelloObj", "5", "", "tars"),
        ),
    ]);
    ServerDescriptor {
        application: "Test".to_owned(),
        server_name: "HelloServer".to_owned(),
        node_name: "172.16.8.1".to_owned(),
        setting_state: "active".to_owned(),
        present_state: "inactive".to_owned(),
        profile: profile.to_owned(),
        adapters,
        server_type: "tars_cpp".to_owned(),
        async_thread_num: 3,
        ..ServerDescriptor::default()
    }
}

fn node_env() -> NodeEnv {
    NodeEnv {
        node_name: "172.16.8.1".to_owned(),
        server_adapter: Endpoint::parse("tcp -h 172.16.8.1 -p 19386 -t 60000").expect("node endpoint"),
        data_path: "/usr/local/app/tars/tarsnode/data".to_owned(),
        log_path: "/usr/local/app/tars/app_log".to_owned(),
        locator: "tars.tarsregistry.QueryObj@tcp -h 172.16.8.1 -p 17890:tcp -h 172.16.8.2 -p 17890".to_owned(),
        framework_key: String::new(),
    }
}

/// `body` inside `/tars/application/server`, one tag per line as the grammar needs.
fn server_profile(body: &str) -> String {
    format!("<tars>\n<application>\n<server>\n{body}\n</server>\n</application>\n</tars>\n")
}

fn gen(desc: &ServerDescriptor, env: &NodeEnv) -> Generated {
    generate(desc, env, 30123).expect("generate")
}

/// What upstream writes for this descriptor: the base (node object, adapters in reverse name
/// order with their keys alphabetical) merged with the template, base domains and keys first,
/// keys the template adds appended, comments gone. Indentation is TC_Config's two spaces.
const EXPECTED: &str = "<tars>
  <application>
    enableset=n
    setdivision=NULL
    <server>
      node=tars.tarsnode.ServerObj@tcp -h 172.16.8.1 -p 19386 -t 60000
      app=Test
      server=HelloServer
      nodename=172.16.8.1
      localip=172.16.8.1
      local=tcp -h 127.0.0.1 -p 30123 -t 10000
      basepath=/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/
      datapath=/usr/local/app/tars/tarsnode/data/Test.HelloServer/data/
      logpath=/usr/local/app/tars/app_log
      logsize=10M
      lognum=10
      logLevel=DEBUG
      config=tars.tarsconfig.ConfigObj
      notify=tars.tarsnotify.NotifyObj
      log=tars.tarslog.LogObj
      deactivating-timeout=3000
      activating-timeout=60000
      <Test.HelloServer.HelloObjAdapter>
        allow
        endpoint=tcp -h 172.16.8.1 -p 10001 -t 60000
        maxconns=100000
        protocol=tars
        queuecap=10000
        queuetimeout=60000
        servant=Test.HelloServer.HelloObj
        threads=5
      </Test.HelloServer.HelloObjAdapter>
      <Test.HelloServer.EchoObjAdapter>
        allow=10.0.0.1;10.0.0.2
        endpoint=tcp -h 172.16.8.1 -p 10002 -t 3000
        maxconns=100000
        protocol=tars
        queuecap=10000
        queuetimeout=60000
        servant=Test.HelloServer.EchoObj
        threads=2
      </Test.HelloServer.EchoObjAdapter>
    </server>
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 172.16.8.1 -p 17890:tcp -h 172.16.8.2 -p 17890
      sync-invoke-timeout=3000
      async-invoke-timeout=5000
      refresh-endpoint-interval=60000
      stat=tars.tarsstat.StatObj
      property=tars.tarsproperty.PropertyObj
      report-interval=60000
      asyncthread=3
      modulename=Test.HelloServer
    </client>
  </application>
</tars>
";

#[test]
fn golden_tars_default_cpp_server() {
    let g = gen(&hello_desc(TARS_DEFAULT), &node_env());
    assert_eq!(g.text, EXPECTED);
    assert_eq!(g.paths.conf_file, CONF);
    assert_eq!(g.paths.exe, format!("{ROOT}/bin/HelloServer"));
    assert_eq!(g.paths.lib_path, "/usr/local/app/tars/tarsnode/data/lib/");
    assert_eq!(g.paths.log_dir, "/usr/local/app/tars/app_log/Test/HelloServer/");
    assert_eq!(g.keys.log_path, "/usr/local/app/tars/app_log");
    assert_eq!(g.keys.heart_timeout, Duration::from_millis(45000));
    assert_eq!(g.keys.activating_timeout, Duration::from_secs(60));
    assert_eq!(g.keys.deactivating_timeout, Duration::from_secs(3));
    assert_eq!(g.keys.package_format, "tgz");
    assert_eq!(g.keys.backup_files, "classes/autoconf");
    assert!(g.keys.enable_working);
    assert_eq!(g.keys.local.map(|e| e.port), Some(30123));
}

#[test]
fn container_mode_listens_on_all_interfaces() {
    let mut desc = hello_desc(TARS_DEFAULT);
    desc.run_type = "container".to_owned();
    let g = gen(&desc, &node_env());
    let conf = Config::parse(&g.text).expect("parse");
    assert_eq!(
        conf.get("/tars/application/server/Test.HelloServer.HelloObjAdapter<endpoint>"),
        Some("tcp -h 0.0.0.0 -p 10001 -t 60000")
    );
    assert_eq!(conf.get("/tars/application/server<local>"), Some("tcp -h 0.0.0.0 -p 30123 -t 10000"));
}

#[test]
fn set_and_keys_read_back() {
    let profile = "<tars>\n<application>
enableset=${enableset}
setdivision=${setdivision}
redirectpath=/tmp/out.log
<server>
hearttimeout=7000
activating-timeout=garbage
deactivating-timeout=900000
env=A=1;B=2|C
enableworking=N
packageFormat=jar
</server>
<container>\n<volumes>
/data/host=/data/in
</volumes>\n<ports>
web=8080
</ports>\n</container>
</application>\n</tars>";
    let mut desc = hello_desc(profile);
    desc.set_id = "mtt.s.1".to_owned();
    let g = gen(&desc, &node_env());
    let conf = Config::parse(&g.text).expect("parse");
    assert_eq!(conf.get("/tars/application<enableset>"), Some("y"));
    assert_eq!(conf.get("/tars/application<setdivision>"), Some("mtt.s.1"));
    let k = &g.keys;
    assert_eq!(k.heart_timeout, Duration::from_secs(7));
    assert_eq!(k.activating_timeout, Duration::from_secs(60));
    assert_eq!(k.deactivating_timeout, Duration::from_secs(60));
    assert_eq!(k.redirect_path, "/tmp/out.log");
    assert!(!k.enable_working);
    assert_eq!(k.package_format, "jar");
    assert_eq!(
        k.env,
        vec![
            EnvVar { name: "A".into(), value: Some("1".into()) },
            EnvVar { name: "B".into(), value: Some("2".into()) },
            EnvVar { name: "C".into(), value: None },
        ]
    );
    assert_eq!(k.volumes.get("/data/host").map(String::as_str), Some("/data/in"));
    assert_eq!(k.ports.get("web").map(String::as_str), Some("8080"));
}

#[test]
fn profile_wins_over_base() {
    let profile = format!(
        "{TARS_DEFAULT}<tars>\n<application>\n<server>
node=elsewhere
<Test.HelloServer.HelloObjAdapter>
threads=20
</Test.HelloServer.HelloObjAdapter>
</server>\n</application>\n</tars>"
    );
    let g = gen(&hello_desc(&profile), &node_env());
    let conf = Config::parse(&g.text).expect("parse");
    assert_eq!(conf.get("/tars/application/server/Test.HelloServer.HelloObjAdapter<threads>"), Some("20"));
    assert_eq!(conf.get("/tars/application/server<node>"), Some("elsewhere"));
    // Keys the profile does not touch keep the base values.
    assert_eq!(conf.get("/tars/application/server/Test.HelloServer.EchoObjAdapter<threads>"), Some("2"));
}

#[test]
fn local_port_survives_regeneration_and_new_ports_avoid_taken_ones() {
    let desc = hello_desc(TARS_DEFAULT);
    let env = node_env();
    let first = generate(&desc, &env, 31999).expect("generate");
    let port = existing_local_port(&first.text);
    assert_eq!(port, Some(31999));
    let again = generate(&desc, &env, port.unwrap_or_default()).expect("generate");
    assert_eq!(again.text, first.text);
    assert_eq!(existing_local_port(&server_profile("local=tcp -h 127.0.0.1")), None);
    assert_eq!(existing_local_port("not a config <"), None);

    // Everything below 44000 is handed out; the probe also says 44000..44100 are in use.
    let taken: HashSet<u16> = (LOCAL_PORT_MIN..44000).collect();
    for seed in [0, 1, 99, u64::MAX] {
        let p = pick_local_port(&taken, |p| !(44000..44100).contains(&p), seed).expect("a free port");
        assert!((44100..=LOCAL_PORT_MAX).contains(&p), "{p}");
    }
    let all: HashSet<u16> = (LOCAL_PORT_MIN..=LOCAL_PORT_MAX).collect();
    assert_eq!(pick_local_port(&all, |_| true, 5), None);
}

#[test]
fn pri_key_substituted_when_set() {
    let profile = server_profile("priKey=${priKey}");
    let mut env = node_env();
    env.framework_key = "k=1\\2".to_owned();
    let g = gen(&hello_desc(&profile), &env);
    assert!(g.text.contains("      priKey=k\\=1\\\\2\n"), "{}", g.text);
    let conf = Config::parse(&g.text).expect("parse");
    assert_eq!(conf.get("/tars/application/server<priKey>"), Some("k=1\\2"));

    // No key: the macro is not defined and stays as written.
    let g = gen(&hello_desc(&profile), &node_env());
    assert!(g.text.contains("priKey=${priKey}"), "{}", g.text);
}

#[test]
fn macro_values_are_escaped_and_not_reexpanded() {
    let profile = server_profile("sha=${sha}\nimage=${baseimage}\nmainclass=${mainclass}\nunknown=${nosuch}");
    let mut desc = hello_desc(&profile);
    desc.sha = "a=b\tc\nd".to_owned();
    desc.base_image = "${app}".to_owned();
    let g = gen(&desc, &node_env());
    assert!(g.text.contains("sha=a\\=b\\tc\\nd\n"), "{}", g.text);
    let conf = Config::parse(&g.text).expect("parse");
    assert_eq!(conf.get("/tars/application/server<sha>"), Some("a=b\tc\nd"));
    assert_eq!(conf.get("/tars/application/server<image>"), Some("${app}"));
    assert_eq!(conf.get("/tars/application/server<mainclass>"), Some("com.qq.test.helloserver.HelloServer"));
    assert_eq!(conf.get("/tars/application/server<unknown>"), Some("${nosuch}"));

    desc.sha = "<script>".to_owned();
    match generate(&desc, &node_env(), 30123) {
        Err(ConfGenError::MacroValue { name, .. }) => assert_eq!(name, "sha"),
        other => panic!("expected a macro error, got {other:?}"),
    }
}

#[test]
fn backslash_s_becomes_a_space() {
    let profile = server_profile("greeting=hello\\\\sworld");
    let g = gen(&hello_desc(&profile), &node_env());
    assert!(g.text.contains("greeting=hello\\ world\n"), "{}", g.text);
}

#[test]
fn bad_descriptors_are_errors_not_panics() {
    let mut desc = hello_desc(TARS_DEFAULT);
    desc.server_name = "../../etc".to_owned();
    assert!(matches!(generate(&desc, &node_env(), 30123), Err(ConfGenError::BadName { field: "serverName", .. })));

    let mut desc = hello_desc(TARS_DEFAULT);
    if let Some(a) = desc.adapters.get_mut("Test.HelloServer.EchoObjAdapter") {
        a.endpoint = "tcp -p".to_owned();
    }
    match generate(&desc, &node_env(), 30123) {
        Err(ConfGenError::AdapterEndpoint { adapter, .. }) => assert_eq!(adapter, "Test.HelloServer.EchoObjAdapter"),
        other => panic!("expected an endpoint error, got {other:?}"),
    }

    let mut desc = hello_desc(TARS_DEFAULT);
    desc.adapters.insert("a<b".to_owned(), adapter("tcp -h 1.2.3.4 -p 1", "x", "1", "", ""));
    assert!(matches!(generate(&desc, &node_env(), 30123), Err(ConfGenError::BadAdapterName(_))));

    let desc = hello_desc("<tars>\n<application>\n");
    assert!(matches!(generate(&desc, &node_env(), 30123), Err(ConfGenError::Profile(_))));
}

#[test]
fn paths_follow_base_and_exe_path() {
    let mut desc = hello_desc(TARS_DEFAULT);
    desc.base_path = "/srv/hello/".to_owned();
    desc.exe_path = "sub/HelloBin".to_owned();
    desc.start_script = "start.sh".to_owned();
    let g = gen(&desc, &node_env());
    assert_eq!(g.paths.server_dir, "/srv/hello");
    assert_eq!(g.paths.exe, "/srv/hello/bin/sub/HelloBin");
    assert_eq!(g.paths.exe_path, "/srv/hello/bin/sub/");
    assert_eq!(g.paths.start_script, "/srv/hello/bin/sub/start.sh");

    desc.exe_path = "/opt/bin/Hello".to_owned();
    let g = gen(&desc, &node_env());
    assert_eq!((g.paths.exe.as_str(), g.paths.exe_path.as_str()), ("/opt/bin/Hello", "/opt/bin/"));

    let mut desc = hello_desc(&server_profile("java=/opt/jdk/bin/java"));
    desc.server_type = "tars_java".to_owned();
    assert_eq!(gen(&desc, &node_env()).paths.exe, "/opt/jdk/bin/java");
}

#[test]
fn write_keeps_bak_only_for_changes() {
    let dir = TempDir::new("confgen-write").expect("tempdir");
    let path = dir.0.join("Test.HelloServer.config.conf");
    let bak = dir.0.join("Test.HelloServer.config.conf.bak");

    assert_eq!(write_atomic(&path, "one\n").expect("write"), Written::Written { backed_up: false });
    assert!(!bak.exists());
    assert_eq!(write_atomic(&path, "one\n").expect("write"), Written::Unchanged);
    assert!(!bak.exists());

    assert_eq!(write_atomic(&path, "two\n").expect("write"), Written::Written { backed_up: true });
    assert_eq!(fs::read_to_string(&bak).expect("bak"), "one\n");
    assert_eq!(fs::read_to_string(&path).expect("conf"), "two\n");

    // Unchanged content leaves the previous backup alone.
    assert_eq!(write_atomic(&path, "two\n").expect("write"), Written::Unchanged);
    assert_eq!(fs::read_to_string(&bak).expect("bak"), "one\n");
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(&dir.0).expect("dir").filter_map(Result::ok).map(|e| e.file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

fn native_tail(line: &str, exe_path: &str) -> String {
    format!("{line} & pid=$!\necho $pid > {exe_path}tars_start.sh.pid\n\n")
}

const HEAD: &str = "#!/bin/sh
. /etc/profile
export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/usr/local/app/tars/tarsnode/data/Test.HelloServer/bin/:/usr/local/app/tars/tarsnode/data/lib/
trap 'exit' TERM INT
pid=0

";

#[test]
fn start_script_cpp_and_go() {
    for ty in ["tars_cpp", "tars_go"] {
        let mut desc = hello_desc(TARS_DEFAULT);
        desc.server_type = ty.to_owned();
        let g = gen(&desc, &node_env());
        let script = launch::start_script(&g.paths, &g.keys, &Probe::default()).expect("script");
        let line = format!("{ROOT}/bin/HelloServer --config={CONF} ");
        assert_eq!(script, format!("{HEAD}{}", native_tail(&line, &format!("{ROOT}/bin/"))));
    }
}

#[test]
fn start_script_java() {
    let profile = format!(
        "{TARS_DEFAULT}<tars>\n<application>\n<server>
jvmparams=-Xms512m   -Xmx1g\t-Dx=a;b
classpath=${{basepath}}/conf:${{basepath}}/lib
mainclass=${{mainclass}}
</server>\n</application>\n</tars>"
    );
    let mut desc = hello_desc(&profile);
    desc.server_type = "tars_java".to_owned();
    let g = gen(&desc, &node_env());
    assert_eq!(g.paths.exe, "java");
    let script = launch::start_script(&g.paths, &g.keys, &Probe::default()).expect("script");
    // The `*` is quoted so java expands it; `;` in a JVM word is quoted too.
    let line = format!(
        "java -Dconfig={CONF} -Xms512m -Xmx1g '-Dx=a;b' -cp '{ROOT}/bin//conf:{ROOT}/bin//lib/*' \
         com.qq.test.helloserver.HelloServer "
    );
    assert_eq!(script, format!("{HEAD}{}", native_tail(&line, &format!("{ROOT}/bin/"))));

    let mut keys = g.keys.clone();
    keys.package_format = "jar".to_owned();
    let script = launch::start_script(&g.paths, &keys, &Probe::default()).expect("script");
    assert!(
        script.contains(&format!(
            "java -Dconfig={CONF} -Xms512m -Xmx1g '-Dx=a;b' com.qq.test.helloserver.HelloServer  & pid=$!\n"
        )),
        "{script}"
    );
}

#[test]
fn start_script_nodejs() {
    let mut desc = hello_desc(TARS_DEFAULT);
    desc.server_type = "tars_nodejs".to_owned();
    let g = gen(&desc, &node_env());
    let bin = format!("{ROOT}/bin/");
    let probe = Probe { exe_exists: false, bundled_node: false, package_dir: Some(format!("{ROOT}/bin/src")) };
    let script = launch::start_script(&g.paths, &g.keys, &probe).expect("script");
    let line = format!("node {ROOT}/bin/tars_nodejs/node-agent/bin/node-agent {ROOT}/bin/src -c {CONF} ");
    assert_eq!(script, format!("{HEAD}{}", native_tail(&line, &bin)));

    let probe = Probe { exe_exists: false, bundled_node: true, package_dir: None };
    let script = launch::start_script(&g.paths, &g.keys, &probe).expect("script");
    let line =
        format!("{ROOT}/bin/tars_nodejs/node {ROOT}/bin/tars_nodejs/node-agent/bin/node-agent {ROOT}/bin -c {CONF} ");
    assert_eq!(script, format!("{HEAD}{}", native_tail(&line, &bin)));
}

#[test]
fn start_and_stop_scripts_php() {
    let mut desc = hello_desc(TARS_DEFAULT);
    desc.server_type = "tars_php".to_owned();
    let g = gen(&desc, &node_env());
    let script = launch::start_script(&g.paths, &g.keys, &Probe::default()).expect("script");
    let line = format!("php {ROOT}/bin/src/index.php --config={CONF} ");
    assert_eq!(script, format!("{HEAD}{}", native_tail(&line, &format!("{ROOT}/bin/"))));

    desc.run_type = "container".to_owned();
    let g = gen(&desc, &node_env());
    let script = launch::start_script(&g.paths, &g.keys, &Probe::default()).expect("script");
    let head = HEAD.replace(". /etc/profile\n", "");
    assert_eq!(script, format!("{head}{line}\nwhile true; do sleep 1; done\n"));

    let stop = launch::php_stop_script(&g.paths, &g.keys, &Probe::default()).expect("stop");
    let log = "/usr/local/app/tars/app_log/Test/HelloServer/";
    assert_eq!(
        stop,
        format!(
            "#!/bin/sh\nif [ ! -d {log} ];then mkdir -p {log}; fi\n\
             php {ROOT}/bin/src/index.php --config={CONF} stop  >> {log}Test.HelloServer.log 2>&1 \n\
             echo \"end-tars_stop.sh\"\n"
        )
    );
}

#[test]
fn env_values_cannot_inject_commands() {
    let g = gen(&hello_desc(TARS_DEFAULT), &node_env());
    let dir = TempDir::new("confgen-sh").expect("tempdir");
    let marker = dir.0.join("pwned");
    let evil = format!("'; rm -rf /; ' $(touch {m}) `touch {m}` \"q\" \\ *", m = marker.display());
    let mut keys = g.keys.clone();
    keys.env = vec![
        EnvVar { name: "EVIL".into(), value: Some(evil.clone()) },
        EnvVar { name: "BASE".into(), value: Some("/opt".into()) },
        EnvVar { name: "REF".into(), value: Some("${BASE}/x y:$BASE".into()) },
    ];
    let script = launch::start_script(&g.paths, &keys, &Probe::default()).expect("script");

    let path = dir.0.join("tars_start.sh");
    fs::write(&path, &script).expect("write script");
    let check = Command::new("/bin/sh").arg("-n").arg(&path).status().expect("sh -n");
    assert!(check.success(), "{script}");

    let exports: String = script
        .lines()
        .filter(|l| l.starts_with("export ") && !l.contains("LD_LIBRARY"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("{exports}printf '%s|%s' \"$EVIL\" \"$REF\""))
        .current_dir(&dir.0)
        .output()
        .expect("sh -c");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{evil}|/opt/x y:/opt"));
    assert!(!marker.exists(), "a command in an env value ran");
}

#[test]
fn plan_gives_spawn_parameters() {
    let g = gen(&hello_desc(TARS_DEFAULT), &node_env());
    let mut keys = g.keys.clone();
    keys.env = vec![
        EnvVar { name: "P".into(), value: Some("$HOME/bin".into()) },
        EnvVar { name: "Q".into(), value: Some("${P}:x".into()) },
        EnvVar { name: "EMPTY".into(), value: Some(String::new()) },
    ];
    let lookup = |n: &str| match n {
        "HOME" => Some("/root".to_owned()),
        "LD_LIBRARY_PATH" => Some("/usr/lib".to_owned()),
        _ => None,
    };
    let plan = launch::plan(&g.paths, &keys, &Probe::default(), lookup).expect("plan");
    assert_eq!(plan.argv, vec![format!("{ROOT}/bin/tars_start.sh")]);
    assert_eq!(plan.pid_file, format!("{ROOT}/bin/tars_start.sh.pid"));
    assert_eq!(plan.cwd, "/usr/local/app/tars/app_log");
    assert_eq!(plan.stdout_log.as_deref(), Some("/usr/local/app/tars/app_log/Test/HelloServer/Test.HelloServer.log"));
    assert_eq!(
        plan.env,
        vec![
            ("P".to_owned(), "/root/bin".to_owned()),
            ("Q".to_owned(), "/root/bin:x".to_owned()),
            ("LD_LIBRARY_PATH".to_owned(), format!("/usr/lib:{ROOT}/bin/:/usr/local/app/tars/tarsnode/data/lib/")),
        ]
    );
    assert!(plan.script.starts_with("#!/bin/sh\n"));
}

#[test]
fn probe_finds_package_json_outside_node_modules() {
    let dir = TempDir::new("confgen-probe").expect("tempdir");
    let bin = dir.0.join("bin");
    fs::create_dir_all(bin.join("a_node_modules_like/node_modules/x")).expect("mkdir");
    fs::write(bin.join("a_node_modules_like/node_modules/x/package.json"), "{}").expect("write");
    fs::create_dir_all(bin.join("tars_nodejs")).expect("mkdir");
    fs::write(bin.join("tars_nodejs/node"), "").expect("write");
    fs::write(bin.join("tars_nodejs/package.json"), "{}").expect("write");
    fs::create_dir_all(bin.join("src")).expect("mkdir");
    fs::write(bin.join("src/package.json"), "{}").expect("write");

    let mut desc = hello_desc(TARS_DEFAULT);
    desc.server_type = "tars_nodejs".to_owned();
    desc.base_path = dir.0.display().to_string();
    let g = gen(&desc, &node_env());
    let p = launch::probe(&g.paths);
    assert!(p.bundled_node);
    assert_eq!(p.package_dir, Some(format!("{}/src", bin.display())));
}
