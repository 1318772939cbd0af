//! A server's config file, `<serverDir>/conf/<App>.<Server>.config.conf`, generated from its
//! descriptor the way tarsnode's `CommandLoad.cpp` does it, and written atomically.
//!
//! The registry hands the node a [`ServerDescriptor`] whose `profile` is the server's own
//! config text already merged with its template chain. The node turns it into the file the
//! server reads at start-up:
//!
//! 1. **Base** config: `/tars/application/server<node>` (where the server reports to this node)
//!    and one `/tars/application/server/<adapter>` domain per adapter, with the keys `allow`,
//!    `endpoint`, `maxconns`, `protocol`, `queuecap`, `queuetimeout`, `servant`, `threads`.
//! 2. **Macros**: `${name}` in the profile text is replaced by the value's config-escaped form
//!    ([`escape_value`], TC_Config's `reverse_parse`). See [`macros`] for the list.
//! 3. **Merge**: the substituted profile is joined onto the base with the profile winning
//!    ([`Config::join`] with `update`), so a profile may override any base key.
//! 4. **Render**: [`Config::to_text`], then every `\s` in the text becomes a space.
//!
//! The keys the node itself needs (log path, JVM options, env, timeouts, container volumes...)
//! are read back from the merged config into [`ServerKeys`].
//!
//! Everything here is pure except three small IO helpers kept apart so the generation can be
//! tested without a file system or network: [`port_is_free`] (a connect probe),
//! [`create_dirs`] and [`write_atomic`].
//!
//! # Paths ([`ServerPaths`])
//!
//! - `serverDir`: the descriptor's `basePath` if absolute, else `<node data path>/<App>.<Server>`.
//! - `exePath`/`exe`: an empty `exePath` gives `<serverDir>/bin/` and `<exePath><Server>`
//!   (java, nodejs and php servers get the interpreter from the profile key `java`, `nodejs` or
//!   `php`, default `java`, `node`, `php`); a relative one names the executable under
//!   `<serverDir>/bin/`, an absolute one names it directly (java servers keep
//!   `<serverDir>/bin/` as exePath). exePath always ends with `/`.
//! - start/stop/monitor scripts: relative ones resolve against exePath.
//! - lib path `<node data path>/lib/`, data dir `<serverDir>/data/`, log dir
//!   `<node log path>/<App>/<Server>/`.
//!
//! # Where this differs from `CommandLoad.cpp`
//!
//! - `${priKey}` is substituted when the framework key is non-empty (upstream's test is
//!   inverted and only defines the macro when the key is empty).
//! - Macros are substituted in one pass: a macro value that itself contains `${x}` is not
//!   expanded again (upstream replaces macro by macro, so the result depended on name order).
//!   Only macros the profile uses must be writable; upstream fails on any macro value with `<`
//!   or `>`.
//! - `hearttimeout` is held as a [`Duration`] read as milliseconds (upstream compares the
//!   millisecond value against seconds).
//! - The file is written to a temporary file, fsynced and renamed into place (upstream
//!   truncates and rewrites it in place).
//! - App, server and adapter names that could escape the server directory or break the config
//!   text are rejected instead of being written.
//! - The non-Linux `host.docker.internal` rewrite of `127.0.0.1` is not done: the caller passes
//!   the locator and the node endpoint as they should appear.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tars_proto::config::{Config, ConfigError};
use tars_proto::endpoint::{Endpoint, EndpointError, Transport};
use tars_protocol::tars::{AdapterDescriptor, ServerDescriptor};

/// The object servers report their state to (`/tars/application/server<node>`).
pub const NODE_SERVER_OBJ: &str = "tars.tarsnode.ServerObj";

/// Lowest port handed out for a server's `local` admin endpoint.
pub const LOCAL_PORT_MIN: u16 = 30000;

/// Highest port handed out for a server's `local` admin endpoint.
pub const LOCAL_PORT_MAX: u16 = 44999;

/// The `-t` of the `local` admin endpoint, in milliseconds.
const LOCAL_TIMEOUT_MS: u32 = 10000;

/// Default of `hearttimeout`, in milliseconds.
const DEFAULT_HEART_TIMEOUT_MS: u64 = 45000;

/// Default of `activating-timeout`, in milliseconds.
const DEFAULT_ACTIVATING_TIMEOUT_MS: u64 = 60000;

/// Bounds of `deactivating-timeout`, in milliseconds; the lower one is also the default
/// (`CommandStop.cpp` waits 2 to 60 seconds).
const DEACTIVATING_TIMEOUT_MS: (u64, u64) = (2000, 60000);

/// Why a config could not be generated. Each variant names the field, adapter, macro or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfGenError {
    /// `application` or `serverName` is empty.
    #[error("descriptor field `{field}` is empty")]
    EmptyName {
        /// `"application"` or `"serverName"`.
        field: &'static str,
    },
    /// A name that would leave the server directory or break a path (contains `/` or NUL, or
    /// is `.` / `..`).
    #[error("descriptor field `{field}` has an unusable value `{value}`")]
    BadName {
        /// The descriptor field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// An adapter name that cannot be a config domain name.
    #[error("adapter name `{0}` cannot be a config domain")]
    BadAdapterName(String),
    /// An adapter's endpoint string does not parse.
    #[error("adapter `{adapter}`: endpoint `{endpoint}`: {source}")]
    AdapterEndpoint {
        /// The adapter (the key of `adapters`).
        adapter: String,
        /// The endpoint as given.
        endpoint: String,
        /// Why it does not parse.
        source: EndpointError,
    },
    /// A base value that cannot be written as config text (it contains `<` or `>`).
    #[error("config value `{path}` = `{value}` contains `<` or `>`")]
    Unwritable {
        /// The config path.
        path: String,
        /// The value.
        value: String,
    },
    /// A macro used by the profile whose value contains `<` or `>`.
    #[error("macro `${{{name}}}` = `{value}` contains `<` or `>`")]
    MacroValue {
        /// The macro name.
        name: String,
        /// Its value.
        value: String,
    },
    /// The profile, after macro substitution, is not valid config text.
    #[error("profile: {0}")]
    Profile(#[source] ConfigError),
    /// Setting a base key, merging or rendering failed.
    #[error("config `{path}`: {source}")]
    Config {
        /// The path or step (`"merge"`, `"render"`) that failed.
        path: String,
        /// The config error.
        source: ConfigError,
    },
    /// A key of the merged config that the node reads has a value it cannot use.
    #[error("config key `{key}` = `{value}`: {reason}")]
    BadKey {
        /// The config path.
        key: &'static str,
        /// The value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// What the generation needs from the node itself (not in the descriptor).
#[derive(Debug, Clone)]
pub struct NodeEnv {
    /// This node's name (`${nodename}`).
    pub node_name: String,
    /// The node's `ServerAdapter` endpoint; its host is `${localip}`.
    pub server_adapter: Endpoint,
    /// The node's data directory (servers live in `<data_path>/<App>.<Server>`).
    pub data_path: String,
    /// The node's log path (`${logpath}`).
    pub log_path: String,
    /// `${locator}`: `tars.tarsregistry.QueryObj@tcp -h h1 -p p1:...` (the active registry
    /// endpoints); empty leaves the macro undefined.
    pub locator: String,
    /// The framework private key (`${priKey}`); empty leaves the macro undefined.
    pub framework_key: String,
}

/// A server's language runtime, from the descriptor's `serverType` (trimmed, lower-cased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerType {
    /// `tars_cpp`.
    Cpp,
    /// `tars_go`.
    Go,
    /// `tars_java`.
    Java,
    /// `tars_nodejs`.
    NodeJs,
    /// `tars_php`.
    Php,
    /// Anything else (`not_tars`, empty...); launched like C++.
    Other(String),
}

impl ServerType {
    /// Reads a descriptor's `serverType`.
    pub fn parse(s: &str) -> ServerType {
        match s.trim().to_lowercase().as_str() {
            "tars_cpp" => ServerType::Cpp,
            "tars_go" => ServerType::Go,
            "tars_java" => ServerType::Java,
            "tars_nodejs" => ServerType::NodeJs,
            "tars_php" => ServerType::Php,
            other => ServerType::Other(other.to_owned()),
        }
    }

    /// The profile key naming the interpreter, and its default, for interpreted servers.
    fn interpreter(&self) -> Option<(&'static str, &'static str)> {
        match self {
            ServerType::Java => Some(("java", "java")),
            ServerType::NodeJs => Some(("nodejs", "node")),
            ServerType::Php => Some(("php", "php")),
            _ => None,
        }
    }
}

/// Where a server's files are. Directories that end in `/` say so in their docs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPaths {
    /// `application`.
    pub app: String,
    /// `serverName`.
    pub server: String,
    /// The runtime.
    pub server_type: ServerType,
    /// `runType == "container"`.
    pub container: bool,
    /// The server directory, no trailing `/`.
    pub server_dir: String,
    /// The executable's directory, ending in `/`.
    pub exe_path: String,
    /// The executable (or interpreter) to run.
    pub exe: String,
    /// `<serverDir>/conf/`.
    pub conf_dir: String,
    /// `<serverDir>/conf/<App>.<Server>.config.conf`.
    pub conf_file: String,
    /// `<serverDir>/data/`.
    pub data_dir: String,
    /// `<node data path>/lib/`.
    pub lib_path: String,
    /// `<node log path>/<App>/<Server>/`.
    pub log_dir: String,
    /// The descriptor's start script, resolved against exePath; empty when none.
    pub start_script: String,
    /// The stop script, likewise.
    pub stop_script: String,
    /// The monitor script, likewise.
    pub monitor_script: String,
}

impl ServerPaths {
    /// Resolves the paths of `desc` on this node, as `CommandLoad::execute`.
    pub fn new(desc: &ServerDescriptor, env: &NodeEnv) -> Result<ServerPaths, ConfGenError> {
        let app = checked_name("application", &desc.application)?;
        let server = checked_name("serverName", &desc.server_name)?;
        let server_type = ServerType::parse(&desc.server_type);
        let base = desc.base_path.trim();
        let server_dir =
            if is_absolute(base) { simplify(base) } else { simplify(&format!("{}/{app}.{server}", env.data_path)) };
        let (exe, exe_path) = exe_and_dir(desc, &server_type, &server_dir, server);
        let exe_path = dir_slash(&exe_path);
        let conf_dir = format!("{server_dir}/conf/");
        Ok(ServerPaths {
            app: app.to_owned(),
            server: server.to_owned(),
            container: desc.run_type == "container",
            conf_file: format!("{conf_dir}{app}.{server}.config.conf"),
            conf_dir,
            data_dir: format!("{server_dir}/data/"),
            lib_path: dir_slash(&format!("{}/lib", env.data_path)),
            log_dir: dir_slash(&format!("{}/{app}/{server}", env.log_path)),
            start_script: script_path(&desc.start_script, &exe_path),
            stop_script: script_path(&desc.stop_script, &exe_path),
            monitor_script: script_path(&desc.monitor_script, &exe_path),
            exe: simplify(&exe),
            exe_path,
            server_dir,
            server_type,
        })
    }

    /// `<App>.<Server>`.
    pub fn server_id(&self) -> String {
        format!("{}.{}", self.app, self.server)
    }
}

/// The executable and its directory (not yet slash-terminated), as `CommandLoad::execute`.
fn exe_and_dir(desc: &ServerDescriptor, ty: &ServerType, server_dir: &str, server: &str) -> (String, String) {
    let exe_path = desc.exe_path.trim();
    let bin = format!("{server_dir}/bin/");
    if exe_path.is_empty() {
        let exe = match ty.interpreter() {
            Some((key, default)) => profile_key(&desc.profile, key, default),
            None => format!("{bin}{server}"),
        };
        (exe, bin)
    } else if !is_absolute(exe_path) {
        // A relative exePath names the executable (possibly shared by several servers).
        let exe = format!("{bin}{exe_path}");
        let dir = parent_dir(&exe);
        (exe, dir)
    } else {
        let dir = if *ty == ServerType::Java { bin } else { parent_dir(exe_path) };
        (exe_path.to_owned(), dir)
    }
}

/// A key of `/tars/application/server` in the raw profile, or `default` if the profile does
/// not parse or lacks it.
fn profile_key(profile: &str, key: &str, default: &str) -> String {
    Config::parse(profile)
        .ok()
        .and_then(|c| c.get(&format!("/tars/application/server<{key}>")).map(str::to_owned))
        .unwrap_or_else(|| default.to_owned())
}

fn script_path(script: &str, exe_path: &str) -> String {
    let s = script.trim();
    if s.is_empty() {
        String::new()
    } else if is_absolute(s) {
        simplify(s)
    } else {
        simplify(&format!("{exe_path}{s}"))
    }
}

/// Rejects empty names and names that would escape or break the server directory path.
fn checked_name<'a>(field: &'static str, value: &'a str) -> Result<&'a str, ConfGenError> {
    if value.is_empty() {
        return Err(ConfGenError::EmptyName { field });
    }
    if value.contains(['/', '\0']) || value == "." || value == ".." || value.chars().any(char::is_control) {
        return Err(ConfGenError::BadName { field, value: value.to_owned() });
    }
    Ok(value)
}

pub(crate) fn is_absolute(p: &str) -> bool {
    p.starts_with('/')
}

/// Lexical path clean-up, as `TC_File::simplifyDirectory`: repeated `/` collapse, `.` segments
/// go, `..` removes the previous segment (never above the root), and a trailing `/` is
/// dropped except for the root itself.
pub fn simplify(path: &str) -> String {
    let absolute = is_absolute(path);
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if absolute => {}
                _ => parts.push(".."),
            },
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    match (absolute, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// `simplify(p)` with exactly one trailing `/`.
pub(crate) fn dir_slash(p: &str) -> String {
    let s = simplify(p);
    if s.ends_with('/') {
        s
    } else {
        s + "/"
    }
}

/// The directory part of a file path, with its trailing `/` (`TC_File::extractFilePath`).
fn parent_dir(p: &str) -> String {
    match p.rfind('/') {
        Some(i) => p[..=i].to_owned(),
        None => "./".to_owned(),
    }
}

/// One `env` entry: `NAME=value`, or a bare `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvVar {
    /// The variable name as written (trimmed).
    pub name: String,
    /// The value after the first `=`; `None` for an entry without `=`.
    pub value: Option<String>,
}

/// Splits an `env` value (`A=1;B=2|C=3`) into its entries; empty entries are skipped.
pub fn parse_env(s: &str) -> Vec<EnvVar> {
    s.split([';', '|'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| match e.split_once('=') {
            Some((n, v)) => EnvVar { name: n.trim().to_owned(), value: Some(v.to_owned()) },
            None => EnvVar { name: e.to_owned(), value: None },
        })
        .collect()
}

/// The keys of the merged config that the node acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerKeys {
    /// `/tars/application/server<logpath>`, default empty.
    pub log_path: String,
    /// `jvmparams`: extra JVM options, a whitespace-separated word list.
    pub jvm_params: String,
    /// `mainclass`.
    pub main_class: String,
    /// `classpath`.
    pub class_path: String,
    /// `packageFormat`, default `tgz` (`jar` launches without `-cp`).
    pub package_format: String,
    /// `env`, split at `;` and `|`.
    pub env: Vec<EnvVar>,
    /// `hearttimeout`, read as **milliseconds**, default 45 s; an unreadable or zero value
    /// gives the default.
    pub heart_timeout: Duration,
    /// `activating-timeout` in milliseconds, default 60 s; unreadable or zero gives the default.
    pub activating_timeout: Duration,
    /// `deactivating-timeout` in milliseconds, clamped to 2..=60 s; absent or unreadable gives
    /// 2 s (`CommandStop.cpp` reads it from the file at stop time with the same bounds).
    pub deactivating_timeout: Duration,
    /// `/tars/application/container/volumes`: host path to container path.
    pub volumes: BTreeMap<String, String>,
    /// `/tars/application/container/ports`.
    pub ports: BTreeMap<String, String>,
    /// `/tars/application<redirectpath>`: where stdout/stderr go instead of the roll log.
    pub redirect_path: String,
    /// `backupfiles`, default `classes/autoconf`.
    pub backup_files: String,
    /// `enableworking` (`y`, the default, case-insensitive) lets the node sync state.
    pub enable_working: bool,
    /// The merged `local` admin endpoint; `None` when the key is absent.
    pub local: Option<Endpoint>,
    /// `entrance` (php servers' entry script), if set.
    pub entrance: Option<String>,
    /// `php` (php interpreter), if set.
    pub php: Option<String>,
}

const SERVER: &str = "/tars/application/server";

impl ServerKeys {
    /// Reads the keys from a merged config (domains as `CommandLoad::updateConfigFile`).
    pub fn read(conf: &Config) -> Result<ServerKeys, ConfGenError> {
        let server = |key: &str| conf.get(&format!("{SERVER}<{key}>"));
        let or = |key: &str, default: &str| server(key).unwrap_or(default).to_owned();
        let local = match server("local") {
            None => None,
            Some(v) => Some(Endpoint::parse(v).map_err(|e| ConfGenError::BadKey {
                key: "/tars/application/server<local>",
                value: v.to_owned(),
                reason: e.to_string(),
            })?),
        };
        let (lo, hi) = DEACTIVATING_TIMEOUT_MS;
        Ok(ServerKeys {
            log_path: or("logpath", ""),
            jvm_params: or("jvmparams", ""),
            main_class: or("mainclass", ""),
            class_path: or("classpath", ""),
            package_format: or("packageFormat", "tgz"),
            env: parse_env(server("env").unwrap_or("")),
            heart_timeout: millis(server("hearttimeout"), DEFAULT_HEART_TIMEOUT_MS),
            activating_timeout: millis(server("activating-timeout"), DEFAULT_ACTIVATING_TIMEOUT_MS),
            deactivating_timeout: Duration::from_millis(
                server("deactivating-timeout").and_then(|v| v.trim().parse::<u64>().ok()).unwrap_or(lo).clamp(lo, hi),
            ),
            volumes: domain_map(conf, "/tars/application/container/volumes"),
            ports: domain_map(conf, "/tars/application/container/ports"),
            redirect_path: conf.get_or("/tars/application<redirectpath>", "").to_owned(),
            backup_files: or("backupfiles", "classes/autoconf"),
            enable_working: server("enableworking").unwrap_or("y").eq_ignore_ascii_case("y"),
            local,
            entrance: server("entrance").map(str::to_owned),
            php: server("php").map(str::to_owned),
        })
    }
}

/// A millisecond key; absent, unreadable or zero gives `default_ms`.
fn millis(v: Option<&str>, default_ms: u64) -> Duration {
    let ms = v.and_then(|v| v.trim().parse::<u64>().ok()).filter(|&ms| ms > 0).unwrap_or(default_ms);
    Duration::from_millis(ms)
}

fn domain_map(conf: &Config, path: &str) -> BTreeMap<String, String> {
    conf.params(path).into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// A generated config: the file text, the keys read back from it, and the paths.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The file content.
    pub text: String,
    /// The keys the node acts on.
    pub keys: ServerKeys,
    /// The server's paths.
    pub paths: ServerPaths,
}

/// Generates the config of `desc` on this node, with `local_port` as the admin port
/// (see [`existing_local_port`] and [`pick_local_port`]).
pub fn generate(desc: &ServerDescriptor, env: &NodeEnv, local_port: u16) -> Result<Generated, ConfGenError> {
    let paths = ServerPaths::new(desc, env)?;
    let mut conf = base_config(desc, env, paths.container)?;
    let macros = macros(desc, env, &paths, local_port);
    let profile_text = substitute(&desc.profile, &macros)?;
    let profile = Config::parse(&profile_text).map_err(ConfGenError::Profile)?;
    conf.join(&profile, true).map_err(|source| ConfGenError::Config { path: "merge".to_owned(), source })?;
    let text = conf.to_text().map_err(|source| ConfGenError::Config { path: "render".to_owned(), source })?;
    // `CommandLoad.cpp` turns the two characters `\s` into a space in the rendered text.
    let text = text.replace("\\s", " ");
    let keys = ServerKeys::read(&conf)?;
    Ok(Generated { text, keys, paths })
}

/// The base config: the node object and one domain per adapter (`insertDomainParam` calls of
/// `CommandLoad.cpp`). Adapters are inserted in reverse name order, as upstream iterates its
/// map backwards, so the sub-domains come out in that order.
pub fn base_config(desc: &ServerDescriptor, env: &NodeEnv, container: bool) -> Result<Config, ConfGenError> {
    let mut conf = Config::new();
    set(&mut conf, &format!("{SERVER}<node>"), &format!("{NODE_SERVER_OBJ}@{}", env.server_adapter))?;
    for (name, adapter) in desc.adapters.iter().rev() {
        if name.is_empty() {
            continue;
        }
        check_adapter_name(name)?;
        for (key, value) in adapter_params(name, adapter, container)? {
            set(&mut conf, &format!("{SERVER}/{name}<{key}>"), &value)?;
        }
    }
    Ok(conf)
}

/// An adapter's keys in the order upstream's `std::map` gives them (alphabetical).
fn adapter_params(
    name: &str,
    a: &AdapterDescriptor,
    container: bool,
) -> Result<BTreeMap<&'static str, String>, ConfGenError> {
    let mut ep = Endpoint::parse(&a.endpoint).map_err(|source| ConfGenError::AdapterEndpoint {
        adapter: name.to_owned(),
        endpoint: a.endpoint.clone(),
        source,
    })?;
    if container {
        // Inside a container the server listens on every interface of its network namespace.
        ep.host = "0.0.0.0".to_owned();
    }
    let protocol = if a.protocol.is_empty() { "tars" } else { a.protocol.as_str() };
    Ok(BTreeMap::from([
        ("endpoint", ep.to_string()),
        ("allow", a.allow_ip.clone()),
        ("queuecap", a.queuecap.to_string()),
        ("queuetimeout", a.queuetimeout.to_string()),
        ("maxconns", a.max_connections.to_string()),
        ("threads", a.thread_num.clone()),
        ("servant", a.servant.clone()),
        ("protocol", protocol.to_owned()),
    ]))
}

fn check_adapter_name(name: &str) -> Result<(), ConfGenError> {
    let bad = name.contains(['/', '<', '>', '\\', '=']) || name.chars().any(char::is_control) || name.trim() != name;
    if bad {
        return Err(ConfGenError::BadAdapterName(name.to_owned()));
    }
    Ok(())
}

/// Sets a base value, refusing one that could not be rendered.
fn set(conf: &mut Config, path: &str, value: &str) -> Result<(), ConfGenError> {
    if value.contains(['<', '>']) {
        return Err(ConfGenError::Unwritable { path: path.to_owned(), value: value.to_owned() });
    }
    conf.set(path, value).map_err(|source| ConfGenError::Config { path: path.to_owned(), source })
}

/// The macro values, by name, as `CommandLoad::updateConfigFile` defines them.
pub fn macros(
    desc: &ServerDescriptor,
    env: &NodeEnv,
    paths: &ServerPaths,
    local_port: u16,
) -> BTreeMap<String, String> {
    let app = &paths.app;
    let server = &paths.server;
    let mut local = Endpoint::new(Transport::Tcp, if paths.container { "0.0.0.0" } else { "127.0.0.1" }, local_port);
    local.timeout_ms = LOCAL_TIMEOUT_MS;
    let set_id = desc.set_id.as_str();
    let mut m: BTreeMap<String, String> = [
        ("modulename", format!("{app}.{server}")),
        ("app", app.clone()),
        ("server", server.clone()),
        ("nodename", env.node_name.clone()),
        ("serverid", paths.server_id()),
        ("localip", env.server_adapter.host.clone()),
        ("exe", paths.exe.clone()),
        ("basepath", paths.exe_path.clone()),
        ("datapath", paths.data_dir.clone()),
        ("logpath", env.log_path.clone()),
        ("local", local.to_string()),
        ("mainclass", format!("com.qq.{}.{}.{server}", app.to_lowercase(), server.to_lowercase())),
        ("config-center-port", desc.config_center_port.to_string()),
        ("setdivision", if set_id.is_empty() { "NULL".to_owned() } else { set_id.to_owned() }),
        ("enableset", if set_id.is_empty() { "n" } else { "y" }.to_owned()),
        ("asyncthread", desc.async_thread_num.to_string()),
        ("baseimage", desc.base_image.clone()),
        ("sha", desc.sha.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if !env.locator.is_empty() {
        m.insert("locator".to_owned(), env.locator.clone());
    }
    // Upstream's condition is inverted (it defines `priKey` only for an empty key); the macro
    // is meant to carry the key, so it is defined when there is one.
    if !env.framework_key.is_empty() {
        m.insert("priKey".to_owned(), env.framework_key.clone());
    }
    m
}

/// Replaces each `${name}` of a defined macro by its escaped value, in one left-to-right pass;
/// unknown `${...}` are left as written.
pub fn substitute(text: &str, macros: &BTreeMap<String, String>) -> Result<String, ConfGenError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}').and_then(|end| macros.get(&after[..end]).map(|v| (end, v))) {
            Some((end, value)) => {
                out.push_str(&escape_value(&after[..end], value)?);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str("${");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A value escaped for config text, as TC_Config's `reverse_parse`: `\`, CR, LF, tab and `=`
/// become `\\`, `\r`, `\n`, `\t`, `\=`; `<` and `>` cannot be written. `name` names the macro
/// in the error.
pub fn escape_value(name: &str, value: &str) -> Result<String, ConfGenError> {
    tars_proto::config::escape_value(value)
        .map_err(|_| ConfGenError::MacroValue { name: name.to_owned(), value: value.to_owned() })
}

/// The `local` port of an existing config file's text, if it has a usable one.
pub fn existing_local_port(old_text: &str) -> Option<u16> {
    let conf = Config::parse(old_text).ok()?;
    let ep = Endpoint::parse(conf.get("/tars/application/server<local>")?).ok()?;
    (ep.port != 0).then_some(ep.port)
}

/// A free admin port in [`LOCAL_PORT_MIN`]..=[`LOCAL_PORT_MAX`]: not in `taken` (ports this
/// node already gave to servers) and for which `is_free` (e.g. [`port_is_free`]) holds.
///
/// `seed` picks the starting point; from there the ports are visited in a fixed stride
/// co-prime with the range size, so every port is tried once and the search ends. `None`
/// when no port qualifies (upstream loops forever instead).
pub fn pick_local_port(taken: &HashSet<u16>, is_free: impl Fn(u16) -> bool, seed: u64) -> Option<u16> {
    // 15000 = 2^3 * 3 * 5^4; 7919 is a prime not dividing it, so the walk is a permutation.
    const STRIDE: u64 = 7919;
    let span = u64::from(LOCAL_PORT_MAX - LOCAL_PORT_MIN) + 1;
    let start = seed % span;
    (0..span)
        .filter_map(|i| u16::try_from((start + i * STRIDE) % span).ok())
        .map(|offset| LOCAL_PORT_MIN + offset)
        .find(|p| !taken.contains(p) && is_free(*p))
}

/// Whether nothing accepts connections on `127.0.0.1:port` (the probe of `CommandLoad.cpp`).
pub fn port_is_free(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err()
}

/// Creates the directories a loaded server needs: exePath, lib path, conf dir, data dir and
/// log dir (as `CommandLoad.cpp`).
pub fn create_dirs(paths: &ServerPaths) -> io::Result<()> {
    for d in [&paths.exe_path, &paths.lib_path, &paths.conf_dir, &paths.data_dir, &paths.log_dir] {
        fs::create_dir_all(d)?;
    }
    Ok(())
}

/// What [`write_atomic`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file already held exactly this text; nothing was touched.
    Unchanged,
    /// The file was (re)written; `backed_up` when an older, different version was copied to
    /// `<path>.bak` first.
    Written {
        /// Whether `<path>.bak` now holds the previous content.
        backed_up: bool,
    },
}

/// Writes `text` to `path` unless it already holds it. A differing old file is copied to
/// `<path>.bak` first; the new content goes to a temporary file in the same directory, is
/// fsynced and renamed over `path`, so a reader sees either the old or the new file whole.
pub fn write_atomic(path: &Path, text: &str) -> io::Result<Written> {
    let backed_up = match fs::read(path) {
        Ok(old) if old == text.as_bytes() => return Ok(Written::Unchanged),
        Ok(old) => {
            fs::write(with_suffix(path, ".bak"), old)?;
            true
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(e),
    };
    let tmp = with_suffix(path, &format!(".tmp.{}", std::process::id()));
    let result = write_synced(&tmp, text).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_parent(path);
    Ok(Written::Written { backed_up })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn write_synced(path: &Path, text: &str) -> io::Result<()> {
    let mut f = fs::File::create(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// Makes the rename durable; a failure here leaves a correct file, so it is not reported.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplify_matches_tc_file() {
        assert_eq!(simplify("/a//b/./c/"), "/a/b/c");
        assert_eq!(simplify("/a/b/../c"), "/a/c");
        assert_eq!(simplify("/../x"), "/x");
        assert_eq!(simplify("/"), "/");
        assert_eq!(simplify("java"), "java");
        assert_eq!(dir_slash("/a/b//"), "/a/b/");
    }

    #[test]
    fn env_splits_on_both_separators() {
        let env = parse_env("A=1; B=x=y|C||");
        assert_eq!(
            env,
            vec![
                EnvVar { name: "A".into(), value: Some("1".into()) },
                EnvVar { name: "B".into(), value: Some("x=y".into()) },
                EnvVar { name: "C".into(), value: None },
            ]
        );
    }

    #[test]
    fn names_that_escape_the_server_dir_are_rejected() {
        assert!(matches!(checked_name("application", "../x"), Err(ConfGenError::BadName { .. })));
        assert!(matches!(checked_name("serverName", ""), Err(ConfGenError::EmptyName { .. })));
        assert!(checked_name("serverName", "HelloServer").is_ok());
    }

    #[test]
    fn pick_visits_every_port_once() {
        let seen = std::cell::RefCell::new(HashSet::new());
        let r = pick_local_port(&HashSet::new(), |p| !seen.borrow_mut().insert(p), 7);
        // Every port was new, so `is_free` said no each time and the walk covered the range.
        assert_eq!(r, None);
        let seen = seen.into_inner();
        assert_eq!(seen.len(), usize::from(LOCAL_PORT_MAX - LOCAL_PORT_MIN) + 1);
        assert!(seen.iter().all(|p| (LOCAL_PORT_MIN..=LOCAL_PORT_MAX).contains(p)));
    }
}
