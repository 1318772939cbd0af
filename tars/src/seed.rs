//! What a fresh `db_tars` needs before framework objects resolve through the locator: the
//! profile templates and, for every framework service this process serves, its
//! `t_server_conf` row and one `t_adapter_conf` row per object.
//!
//! Upstream installs the same rows with SQL at deploy time (TarsFramework
//! `deploy/framework/sql/tars_servers.sql`, `tars_servers_master.sql`,
//! `tars_servers_logs.sql`) and uploads every file of `deploy/framework/sql/template/` into
//! `t_profile_template` (`deploy/tars-install.sh`, `update_template`). The template texts here
//! are ours, with the domains, keys and `${...}` macros those files use, so servers and TarsWeb
//! read what they expect.
//!
//! Seeding is idempotent and keeps what operators edited: rows are inserted when the table's
//! unique key is missing, never replaced. Two things follow the running process: an adapter's
//! `-h`/`-p` (the address actually bound, its other endpoint options kept) and a server's
//! `present_state` and `tars_version`. Both updates stamp `registry_timestamp`, as the
//! registry's own upserts do, so its change poll routes them.

use std::net::{IpAddr, SocketAddr, UdpSocket};

use tars_proto::config::escape_value;
use tars_proto::endpoint::Endpoint;
use tars_sql::schema::monitor;
use tars_sql::{params, InsertMode, Session, Store, StoreError, StoreUrl};

/// One `t_profile_template` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// `template_name`.
    pub name: &'static str,
    /// `parents_name`: the template this one is merged over (the child's keys win).
    pub parent: &'static str,
    /// `profile`: the config text.
    pub profile: String,
}

/// The root of every template. Upstream gives `tars.default` itself as its own parent, which
/// the registry's cycle guard makes harmless.
pub const DEFAULT_TEMPLATE: &str = "tars.default";

/// The parent of the framework services that open the framework databases.
pub const FRAMEWORK_DB_TEMPLATE: &str = "tars.framework-db";

const TARS_DEFAULT: &str = "\
<tars>
  <application>
    # set routing: on (y) or off (n), and this server's set (name.area.group)
    enableset = ${enableset}
    setdivision = ${setdivision}
    <client>
      # the registry's QueryObj, with endpoints
      locator = ${locator}
      # call deadlines, milliseconds
      sync-invoke-timeout = 3000
      async-invoke-timeout = 5000
      # how often endpoints are asked of the locator again, milliseconds
      refresh-endpoint-interval = 60000
      # where call statistics and custom metrics go, and how often, milliseconds
      stat = tars.tarsstat.StatObj
      property = tars.tarsproperty.PropertyObj
      report-interval = 60000
      # threads running asynchronous callbacks
      asyncthread = ${asyncthread}
      # this server's name in call statistics
      modulename = ${modulename}
    </client>
    <server>
      app = ${app}
      server = ${server}
      nodename = ${nodename}
      localip = ${localip}
      # the AdminObj endpoint the node talks to
      local = ${local}
      basepath = ${basepath}
      datapath = ${datapath}
      logpath = ${logpath}
      # log rolling: size and count of files, and the level
      logsize = 10M
      lognum = 10
      logLevel = DEBUG
      # framework objects a server uses: configuration files, notifications, remote log
      config = tars.tarsconfig.ConfigObj
      notify = tars.tarsnotify.NotifyObj
      log = tars.tarslog.LogObj
      # how long the node waits for a stop and for a start, milliseconds
      deactivating-timeout = 3000
      activating-timeout = 60000
    </server>
  </application>
</tars>
";

const TARS_REGISTRY: &str = "\
<tars>
  <reap>
    # seconds between heartbeats and incremental route loads; look-back of those loads
    loadObjectsInterval1 = 13
    LeastChangedTime1 = 600
    # seconds between full route loads
    loadObjectsInterval2 = 3601
    # seconds of silence after which a node, or a registry, counts as gone
    nodeTimeout = 250
    registryTimeout = 150
    loadObjectsInterval = 30
    queryInterval = 150
    querylesttime = 300
    asyncthread = 6
    openDayLog = N
    # seconds between checks of the docker registries
    checkDockerRegistry = 60
  </reap>
  <objname>
    patchServerObj = tars.tarspatch.PatchObj
    QueryObjName = tars.tarsregistry.QueryObj
    RegistryObjName = tars.tarsregistry.RegistryObj
  </objname>
  <objcache>
    # the route snapshot served while the database is unreachable
    FilePath = ${datapath}/objectCache.dat
    FileSize = 8M
    min_block = 50
    max_block = 200
    factor = 1.2
  </objcache>
  <nodeinfo>
    # the template of a node whose row names none
    defaultTemplate = tars.tarsnode
  </nodeinfo>
  <container>
    socket = /var/run/docker.sock
    timeout = 300
  </container>
</tars>
";

const TARS_ADMIN_REGISTRY: &str = "\
<tars>
  <objname>
    AdminRegObjName = tars.tarsAdminRegistry.AdminRegObj
    RegistryObjName = tars.tarsregistry.RegistryObj
    patchServerObj = tars.tarspatch.PatchObj
  </objname>
  <nodeinfo>
    defaultTemplate = tars.tarsnode
    # milliseconds a call to a node may take
    sync_node_timeout = 4000
  </nodeinfo>
  <reap>
    updateHeartInterval = 15
    registryTimeout = 150
  </reap>
  <patch>
    # milliseconds for a call to tarspatch, records kept, seconds a patch may wait
    patch_timeout = 30000
    patchHistory = 200
    patch_wait_timeout = 300
  </patch>
  <db_reserve>
    # days of statistics and metrics kept
    stat_reserve_time = 31
    property_reserve_time = 31
  </db_reserve>
  <container>
    socket = /var/run/docker.sock
  </container>
</tars>
";

const TARS_CONFIG: &str = "\
<tars>
  <application>
    <server>
      log = tars.tarslog.LogObj
    </server>
  </application>
</tars>
";

const TARS_NOTIFY: &str = "\
<tars>
  <application>
    <server>
      log = tars.tarslog.LogObj
      logLevel = DEBUG
    </server>
  </application>
  # when old notifications are deleted (sec min hour day month weekday), and how many stay
  cron = 0 0 3 * * *
  retainHistory = 100
</tars>
";

const TARS_NODE: &str = "\
<tars>
  <application>
    <client>
      sync-invoke-timeout = 6000
      asyncthread = 3
    </client>
    <server>
      deactivating-timeout = 3000
    </server>
  </application>
  <node>
    registryObj = tars.tarsregistry.RegistryObj
    adminObj = tars.tarsAdminRegistry.AdminRegObj
    # hosts allowed to send commands besides the registries
    cmd_white_list_ip =
    <keepalive>
      # seconds: a server's heartbeat timeout, the state check, the state sync
      heartTimeout = 45
      monitorInterval = 3
      synStatInterval = 60
    </keepalive>
    <hashmap>
      file = serversCache.dat
      minBlock = 500
      maxBlock = 500
      factor = 1
      size = 10M
    </hashmap>
    <container>
      socket = /var/run/docker.sock
      timeout = 300
    </container>
  </node>
</tars>
";

const TARS_LOG: &str = "\
<tars>
  <application>
    <server>
      logLevel = ERROR
    </server>
  </application>
  <log>
    # where the remote logs are written
    logpath = ${datapath}/remote_app_log
    logthread = 10
    <format>
      hour = xx
    </format>
  </log>
  <elk>
    protocol = http
    <nodes>
    </nodes>
    log_dir = ${datapath}/remote_app_log/_tars_/_trace_
  </elk>
</tars>
";

const TARS_PATCH: &str = "\
<tars>
  <application>
    <server>
      log = tars.tarslog.LogObj
      logLevel = DEBUG
    </server>
  </application>
  # where published packages are kept and uploads arrive
  directory = ${datapath}/patchs/tars
  uploadDirectory = ${datapath}/patchs/tars.upload
  size = 1M
  MemMax = 100M
  MemMin = 100K
</tars>
";

const EMPTY: &str = "<tars>\n</tars>\n";

const TARS_CPP_DEFAULT: &str = "\
<tars>
  <application>
    <client>
    </client>
    <server>
      opencoroutine = 0
      coroutinememsize = 1G
      coroutinestack = 128K
      closecout = 0
      netthread = 1
    </server>
  </application>
</tars>
";

const CLIENT_SERVER_ONLY: &str = "\
<tars>
  <application>
    <client>
    </client>
    <server>
    </server>
  </application>
</tars>
";

/// `<client>` and the common `<server>` keys of the Java and PHP defaults, which do not
/// inherit `tars.default`'s timeouts.
fn script_language_default(server_tail: &str) -> String {
    format!(
        "<tars>
  <application>
    enableset = ${{enableset}}
    setdivision = ${{setdivision}}
    <client>
      locator = ${{locator}}
      sync-invoke-timeout = 20000
      async-invoke-timeout = 20000
      refresh-endpoint-interval = 60000
      stat = tars.tarsstat.StatObj
      property = tars.tarsproperty.PropertyObj
      report-interval = 60000
      modulename = ${{modulename}}
    </client>
    <server>
      app = ${{app}}
      server = ${{server}}
      localip = ${{localip}}
      local = ${{local}}
      basepath = ${{basepath}}
      datapath = ${{datapath}}
      logpath = ${{logpath}}
      loglevel = DEBUG
      logsize = 15M
      log = tars.tarslog.LogObj
      config = tars.tarsconfig.ConfigObj
      notify = tars.tarsnotify.NotifyObj
{server_tail}    </server>
  </application>
</tars>
"
    )
}

const JAVA_SERVER: &str = "      mainclass = com.qq.tars.server.startup.Main
      classpath = ${basepath}/conf:${basepath}/WEB-INF/classes:${basepath}/WEB-INF/lib
      jvmparams = -Xms512m -Xmx1024m -Xss1000k -XX:ErrorFile\\=${logpath}/${app}/${server}/jvm_error.log
      sessiontimeout = 120000
      sessioncheckinterval = 60000
      tcpnodelay = true
      udpbuffersize = 8192
      charsetname = UTF-8
      backupfiles = conf
";

const PHP_SERVER: &str = "      logLevel = DEBUG
      php = /usr/bin/php
      buffer_output_size = 12582912
      open_tcp_nodelay = 1
      open_eof_check = 0
      open_eof_split = 0
      task_worker_num = 1
      dispatch_mode = 2
      daemonize = 1
";

const SPRINGBOOT: &str = "\
<tars>
  <application>
    <server>
      packageFormat = jar
      mainclass = -jar ${basepath}/${app}.${server}.jar
    </server>
  </application>
</tars>
";

/// Placeholder for the table name in the monitor DDL, replaced by upstream's `${TABLE}`.
const TABLE_PLACEHOLDER: &str = "tarsrs_seed_table";

/// `sql = CREATE TABLE ${TABLE} ...`: the hourly table a C++ tarsstat or tarsproperty creates,
/// rendered from our own schema of it (ours creates its tables from that schema directly).
fn create_table_key(table: tars_sql::schema::Table) -> Result<String, StoreError> {
    let ddl = tars_sql::ddl::mysql_create_table(&table)?
        .replace(&format!("`{TABLE_PLACEHOLDER}`"), "`${TABLE}`")
        .lines()
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    escape_value(&ddl)
        .map_err(|e| StoreError::Column { column: "t_profile_template.profile".into(), reason: e.to_string() })
}

fn stat_template() -> Result<String, StoreError> {
    Ok(format!(
        "<tars>
  # the DDL of an hourly table (the C++ tarsstat reads it)
  sql = {}
  enWeighted = 1
  <masteripGroup>
  </masteripGroup>
  <hashmap>
    masterfile = hashmap_master.txt
    slavefile = hashmap_slave.txt
    insertInterval = 5
    enableStatCount = 0
    size = 64M
  </hashmap>
  <reapSql>
    interval = 5
    insertDbThreadNum = 4
  </reapSql>
  <db_reserve>
    # days kept
    stat_reserve_time = 31
  </db_reserve>
</tars>
",
        create_table_key(monitor::stat_table(TABLE_PLACEHOLDER))?
    ))
}

fn property_template() -> Result<String, StoreError> {
    Ok(format!(
        "<tars>
  # the DDL of an hourly table (the C++ tarsproperty reads it)
  sql = {}
  <hashmap>
    factor = 1.5
    file = hashmap.txt
    insertInterval = 5
    maxBlock = 200
    minBlock = 100
    size = 64M
  </hashmap>
  <reapSql>
    Interval = 10
  </reapSql>
  <db_reserve>
    # days kept
    property_reserve_time = 31
  </db_reserve>
</tars>
",
        create_table_key(monitor::property_table(TABLE_PLACEHOLDER))?
    ))
}

/// One database section of `tars.framework-db`: upstream's `dbhost`, `dbport`, `dbuser`,
/// `dbpass`, `dbname` for MySQL (when they describe the URL exactly), else our `url` key.
fn db_section(url: &StoreUrl, table_prefix: Option<&str>, indent: &str) -> Result<String, StoreError> {
    let bad = |e: tars_proto::config::ConfigError| StoreError::Column {
        column: "t_profile_template.profile".into(),
        reason: e.to_string(),
    };
    let mut out = String::new();
    let mut key = |k: &str, v: &str| -> Result<(), StoreError> {
        out.push_str(&format!("{indent}{k} = {}\n", escape_value(v).map_err(bad)?));
        Ok(())
    };
    match url {
        StoreUrl::Mysql { driver_url, .. } => match mysql_parts(driver_url) {
            Some(p) => {
                key("dbhost", &p.host)?;
                key("dbname", &p.db)?;
                if let Some(prefix) = table_prefix {
                    key("tbname", prefix)?;
                }
                key("dbuser", &p.user)?;
                key("dbpass", &p.pass)?;
                key("dbport", &p.port.to_string())?;
                key("charset", "utf8")?;
            }
            None => key("url", driver_url)?,
        },
        StoreUrl::Sqlite { path, .. } => {
            key("url", &format!("sqlite:{}", path.display()))?;
            if let Some(prefix) = table_prefix {
                key("tbname", prefix)?;
            }
        }
    }
    Ok(out)
}

struct MysqlParts {
    host: String,
    port: u16,
    user: String,
    pass: String,
    db: String,
}

/// `mysql://user:pass@host:port/db` split into upstream's keys, only when building the URL
/// back from them gives the same URL (no query string, nothing percent-encoded).
fn mysql_parts(url: &str) -> Option<MysqlParts> {
    let rest = url.strip_prefix("mysql://")?;
    let (auth, rest) = rest.rsplit_once('@')?;
    let (user, pass) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, db) = rest.split_once('/')?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 3306),
    };
    let parts =
        MysqlParts { host: host.to_owned(), port, user: user.to_owned(), pass: pass.to_owned(), db: db.to_owned() };
    match StoreUrl::from_db_section(&parts.host, parts.port, &parts.user, &parts.pass, &parts.db) {
        Ok(StoreUrl::Mysql { driver_url, .. }) if driver_url == url => Some(parts),
        _ => None,
    }
}

fn framework_db(stores: &crate::Stores) -> Result<String, StoreError> {
    Ok(format!(
        "<tars>
  # the framework databases: configuration and state, custom metrics, call statistics
  <db>
{}  </db>
  <propertydb>
    <db1>
{}    </db1>
  </propertydb>
  <statdb>
    <db1>
{}    </db1>
  </statdb>
</tars>
",
        db_section(stores.db_tars.url(), None, "    ")?,
        db_section(stores.property.url(), Some(monitor::PROPERTY_PREFIX), "      ")?,
        db_section(stores.stat.url(), Some(monitor::STAT_PREFIX), "      ")?,
    ))
}

/// Every template, with its parent as upstream's install assigns them: the framework services
/// that open the databases inherit `tars.framework-db`, `tars.springboot` inherits
/// `tars.tarsjava.default`, everything else `tars.default`.
pub fn templates(stores: &crate::Stores) -> Result<Vec<Template>, StoreError> {
    let t = |name, parent, profile: &str| Template { name, parent, profile: profile.to_owned() };
    let db = FRAMEWORK_DB_TEMPLATE;
    let root = DEFAULT_TEMPLATE;
    Ok(vec![
        t(DEFAULT_TEMPLATE, root, TARS_DEFAULT),
        Template { name: FRAMEWORK_DB_TEMPLATE, parent: root, profile: framework_db(stores)? },
        t("tars.tarsregistry", db, TARS_REGISTRY),
        t("tars.tarsAdminRegistry", db, TARS_ADMIN_REGISTRY),
        t("tars.tarsconfig", db, TARS_CONFIG),
        t("tars.tarsnotify", db, TARS_NOTIFY),
        Template { name: "tars.tarsstat", parent: db, profile: stat_template()? },
        Template { name: "tars.tarsproperty", parent: db, profile: property_template()? },
        t("tars.tarsquerystat", db, EMPTY),
        t("tars.tarsqueryproperty", db, EMPTY),
        t("tars.tarsnode", root, TARS_NODE),
        t("tars.tarslog", root, TARS_LOG),
        t("tars.tarspatch", root, TARS_PATCH),
        t("tars.cpp.default", root, TARS_CPP_DEFAULT),
        t("tars.go.default", root, CLIENT_SERVER_ONLY),
        t("tars.nodejs.default", root, CLIENT_SERVER_ONLY),
        Template { name: "tars.tarsjava.default", parent: root, profile: script_language_default(JAVA_SERVER) },
        Template { name: "tars.tarsphp.default", parent: root, profile: script_language_default(PHP_SERVER) },
        t("tars.springboot", "tars.tarsjava.default", SPRINGBOOT),
    ])
}

/// One object of a framework service, with upstream's `t_adapter_conf` settings for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameworkObject {
    /// e.g. `tars.tarsstat.StatObj`; the adapter is this with `Adapter` appended.
    pub servant: &'static str,
    /// `thread_num`.
    pub threads: i32,
    /// `max_connections`.
    pub max_connections: i32,
    /// `queuecap`.
    pub queuecap: i32,
    /// `queuetimeout` (ms).
    pub queuetimeout: i32,
    /// `protocol`: `tars`, or `not_tars` for the query services' legacy JSON objects.
    pub protocol: &'static str,
}

/// A framework service: its `t_server_conf` row (application `tars`) and its objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameworkServer {
    /// `server_name`.
    pub server: &'static str,
    /// `template_name`.
    pub template: &'static str,
    /// Its objects.
    pub objects: &'static [FrameworkObject],
}

const fn obj(
    servant: &'static str,
    threads: i32,
    max_connections: i32,
    queuecap: i32,
    queuetimeout: i32,
) -> FrameworkObject {
    FrameworkObject { servant, threads, max_connections, queuecap, queuetimeout, protocol: "tars" }
}

/// An object speaking its own protocol (`protocol=not_tars`).
const fn raw_obj(servant: &'static str, threads: i32, max_connections: i32) -> FrameworkObject {
    FrameworkObject { protocol: "not_tars", ..obj(servant, threads, max_connections, 100_000, 60_000) }
}

/// Every framework service and object upstream's install SQL registers (and the node's, which
/// has none there), with its settings. [`seed_servers`] writes the rows of those whose
/// objects this process actually serves, so a service joins `tars up` by being served.
pub const FRAMEWORK: &[FrameworkServer] = &[
    FrameworkServer {
        server: "tarsregistry",
        template: "tars.tarsregistry",
        objects: &[
            obj("tars.tarsregistry.QueryObj", 5, 100_000, 100_000, 10_000),
            obj("tars.tarsregistry.RegistryObj", 5, 100_000, 100_000, 10_000),
        ],
    },
    FrameworkServer {
        server: "tarsAdminRegistry",
        template: "tars.tarsAdminRegistry",
        objects: &[obj("tars.tarsAdminRegistry.AdminRegObj", 5, 2000, 100_000, 60_000)],
    },
    FrameworkServer {
        server: "tarsnode",
        template: "tars.tarsnode",
        objects: &[
            obj("tars.tarsnode.NodeObj", 5, 200_000, 100_000, 60_000),
            obj("tars.tarsnode.ServerObj", 5, 200_000, 100_000, 60_000),
        ],
    },
    FrameworkServer {
        server: "tarsconfig",
        template: "tars.tarsconfig",
        objects: &[obj("tars.tarsconfig.ConfigObj", 10, 200_000, 100_000, 60_000)],
    },
    FrameworkServer {
        server: "tarsstat",
        template: "tars.tarsstat",
        objects: &[obj("tars.tarsstat.StatObj", 5, 200_000, 100_000, 60_000)],
    },
    FrameworkServer {
        server: "tarsproperty",
        template: "tars.tarsproperty",
        objects: &[obj("tars.tarsproperty.PropertyObj", 5, 200_000, 100_000, 60_000)],
    },
    FrameworkServer {
        server: "tarsnotify",
        template: "tars.tarsnotify",
        objects: &[obj("tars.tarsnotify.NotifyObj", 5, 200_000, 100_000, 60_000)],
    },
    FrameworkServer {
        server: "tarslog",
        template: "tars.tarslog",
        objects: &[
            obj("tars.tarslog.LogObj", 5, 200_000, 200_000, 60_000),
            obj("tars.tarslog.TopologyObj", 5, 200_000, 200_000, 60_000),
        ],
    },
    FrameworkServer {
        server: "tarsquerystat",
        template: "tars.tarsquerystat",
        objects: &[
            obj("tars.tarsquerystat.QueryObj", 5, 200_000, 100_000, 60_000),
            raw_obj("tars.tarsquerystat.NoTarsObj", 5, 200_000),
        ],
    },
    FrameworkServer {
        server: "tarsqueryproperty",
        template: "tars.tarsqueryproperty",
        objects: &[
            obj("tars.tarsqueryproperty.QueryObj", 5, 200_000, 100_000, 60_000),
            raw_obj("tars.tarsqueryproperty.NoTarsObj", 5, 200_000),
        ],
    },
    FrameworkServer {
        server: "tarspatch",
        template: "tars.tarspatch",
        objects: &[obj("tars.tarspatch.PatchObj", 10, 200_000, 200_000, 60_000)],
    },
];

/// What one seeding run changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Seeded {
    /// Templates inserted.
    pub templates: u64,
    /// `t_server_conf` rows inserted.
    pub servers: u64,
    /// `t_server_conf` rows brought back to `active` or to this version.
    pub servers_updated: u64,
    /// `t_adapter_conf` rows inserted.
    pub adapters: u64,
    /// `t_adapter_conf` rows whose endpoint moved to the bound address.
    pub adapters_updated: u64,
}

/// Inserts the templates that are missing; existing ones, edited or not, stay as they are.
pub fn seed_templates(store: &Store, templates: Vec<Template>) -> Result<u64, StoreError> {
    store.run_blocking(move |s| {
        let sql = format!(
            "{} t_profile_template (template_name, parents_name, profile, posttime, lastuser) VALUES (?, ?, ?, {}, ?)",
            s.dialect().insert_verb(InsertMode::Ignore),
            s.dialect().now()
        );
        tars_sql::transaction(s, |s| {
            let mut n = 0;
            for t in &templates {
                n += s.exec(&sql, &params![t.name, t.parent, t.profile.as_str(), LAST_USER])?;
            }
            Ok(n)
        })
    })
}

const APPLICATION: &str = "tars";
const LAST_USER: &str = "admin";
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The host a row names for `bind` (the `--host` the endpoints bound): itself, unless it is
/// the unspecified address; then the address this host reaches other hosts from, found by
/// connecting a UDP socket (nothing is sent), or loopback when there is no route.
pub fn node_ip(bind: &str) -> String {
    let Ok(ip) = bind.parse::<IpAddr>() else { return bind.to_owned() };
    if !ip.is_unspecified() {
        return bind.to_owned();
    }
    let probe = || -> std::io::Result<IpAddr> {
        let (local, remote): (SocketAddr, SocketAddr) = if ip.is_ipv4() {
            (([0, 0, 0, 0], 0).into(), ([192, 0, 2, 1], 9).into())
        } else {
            (
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
                ("2001:db8::1".parse::<std::net::Ipv6Addr>().map_err(std::io::Error::other)?, 9).into(),
            )
        };
        let s = UdpSocket::bind(local)?;
        s.connect(remote)?;
        Ok(s.local_addr()?.ip())
    };
    match probe() {
        Ok(found) if !found.is_unspecified() => found.to_string(),
        _ if ip.is_ipv4() => "127.0.0.1".to_owned(),
        _ => "::1".to_owned(),
    }
}

/// Writes the rows of every [`FRAMEWORK`] service with at least one object in `bound`
/// (`servant → address bound`), as served on node `node`: servers and adapters inserted when
/// missing, endpoints moved to the bound port, servers marked active at this version.
pub fn seed_servers(store: &Store, node: &str, bound: &[(&str, SocketAddr)]) -> Result<Seeded, StoreError> {
    let node = node.to_owned();
    let mut work: Vec<(FrameworkServer, Vec<(FrameworkObject, String)>)> = Vec::new();
    for server in FRAMEWORK {
        let objects: Vec<(FrameworkObject, String)> = server
            .objects
            .iter()
            .filter_map(|o| {
                let (_, addr) = bound.iter().find(|(s, _)| *s == o.servant)?;
                Some((*o, format!("tcp -h {node} -p {} -t 60000", addr.port())))
            })
            .collect();
        if !objects.is_empty() {
            work.push((*server, objects));
        }
    }
    store.run_blocking(move |s| tars_sql::transaction(s, |s| write_servers(s, &node, &work)))
}

fn write_servers(
    s: &mut dyn Session,
    node: &str,
    work: &[(FrameworkServer, Vec<(FrameworkObject, String)>)],
) -> Result<Seeded, StoreError> {
    let d = s.dialect();
    let now = d.now();
    let ignore = d.insert_verb(InsertMode::Ignore);
    let insert_server = format!(
        "{ignore} t_server_conf (application, server_name, node_group, node_name, registry_timestamp, base_path, \
         exe_path, template_name, bak_flag, setting_state, present_state, process_id, patch_version, patch_time, \
         patch_user, tars_version, posttime, lastuser, server_type, profile) \
         VALUES (?, ?, '', ?, {now}, '', '', ?, 0, 'active', 'active', 0, ?, {now}, '', ?, {now}, ?, 'tars_cpp', '')"
    );
    let refresh_server = format!(
        "UPDATE t_server_conf SET present_state = 'active', tars_version = ?, registry_timestamp = {now} \
         WHERE application = ? AND server_name = ? AND node_name = ? \
         AND (present_state <> 'active' OR tars_version <> ?)"
    );
    let insert_adapter = format!(
        "{ignore} t_adapter_conf (application, server_name, node_name, adapter_name, registry_timestamp, thread_num, \
         endpoint, max_connections, allow_ip, servant, queuecap, queuetimeout, posttime, lastuser, protocol, \
         handlegroup) VALUES (?, ?, ?, ?, {now}, ?, ?, ?, '', ?, ?, ?, {now}, ?, ?, '')"
    );
    let read_endpoint = "SELECT COALESCE(endpoint, '') FROM t_adapter_conf \
         WHERE application = ? AND server_name = ? AND node_name = ? AND adapter_name = ?";
    let move_endpoint = format!(
        "UPDATE t_adapter_conf SET endpoint = ?, registry_timestamp = {now} \
         WHERE application = ? AND server_name = ? AND node_name = ? AND adapter_name = ?"
    );
    let mut out = Seeded::default();
    for (server, objects) in work {
        let key = params![APPLICATION, server.server, node];
        let mut p = key.clone();
        p.extend(params![server.template, VERSION, VERSION, LAST_USER]);
        let added = s.exec(&insert_server, &p)?;
        out.servers += added;
        if added == 0 {
            let mut p = params![VERSION];
            p.extend(key.iter().cloned());
            p.push(VERSION.into());
            out.servers_updated += s.exec(&refresh_server, &p)?;
        }
        for (o, endpoint) in objects {
            let adapter = format!("{}Adapter", o.servant);
            let mut k = key.clone();
            k.push(adapter.as_str().into());
            let mut p = k.clone();
            p.extend(params![
                o.threads,
                endpoint.as_str(),
                o.max_connections,
                o.servant,
                o.queuecap,
                o.queuetimeout,
                LAST_USER,
                o.protocol
            ]);
            let added = s.exec(&insert_adapter, &p)?;
            out.adapters += added;
            if added > 0 {
                continue;
            }
            let Some(row) = s.query(read_endpoint, &k)?.into_iter().next() else { continue };
            let current: String = row.get(0)?;
            let Some(moved) = moved_endpoint(&current, endpoint) else { continue };
            let mut p = params![moved.as_str()];
            p.extend(k);
            out.adapters_updated += s.exec(&move_endpoint, &p)?;
        }
    }
    Ok(out)
}

/// `current` with the host and port of `bound`, its other options (timeout, weight, auth)
/// kept; `None` when it already names them. An endpoint that does not parse is replaced.
fn moved_endpoint(current: &str, bound: &str) -> Option<String> {
    let Ok(want) = Endpoint::parse(bound) else { return None };
    match Endpoint::parse(current) {
        Ok(ep) if ep.host == want.host && ep.port == want.port => None,
        Ok(mut ep) => {
            ep.host = want.host;
            ep.port = want.port;
            Some(ep.to_string())
        }
        Err(_) => Some(bound.to_owned()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tars_proto::config::Config;

    fn stores(dir: &std::path::Path) -> crate::Stores {
        crate::Stores::embedded(dir).unwrap()
    }

    #[test]
    fn every_template_parses_and_names_its_parent() {
        let dir = tars_testkit::process::TempDir::new("seed-templates").unwrap();
        let all = templates(&stores(&dir.0)).unwrap();
        let names: Vec<_> = all.iter().map(|t| t.name).collect();
        for t in &all {
            let c = Config::parse(&t.profile).unwrap_or_else(|e| panic!("{}: {e}", t.name));
            assert!(names.contains(&t.parent), "{}: parent {}", t.name, t.parent);
            assert!(c.has_domain("/tars"), "{}", t.name);
        }
        let default = Config::parse(&all[0].profile).unwrap();
        assert_eq!(default.get("/tars/application/client<locator>"), Some("${locator}"));
        assert_eq!(default.get("/tars/application/server<local>"), Some("${local}"));
        assert_eq!(default.get("/tars/application/client<stat>"), Some("tars.tarsstat.StatObj"));
        let stat = Config::parse(&all.iter().find(|t| t.name == "tars.tarsstat").unwrap().profile).unwrap();
        let sql = stat.get("/tars<sql>").unwrap();
        assert!(
            sql.starts_with("CREATE TABLE IF NOT EXISTS `${TABLE}` ( `stattime`") && sql.contains("`interface_name`"),
            "{sql}"
        );
        let db = Config::parse(&all[1].profile).unwrap();
        let url = StoreUrl::from_config(&db, "/tars/statdb/db1").unwrap().unwrap();
        assert_eq!(url.to_string(), StoreUrl::embedded(&dir.0, "tars_stat").to_string());
        assert_eq!(db.get("/tars/statdb/db1<tbname>"), Some("tars_stat_"));
    }

    #[test]
    fn mysql_urls_become_upstream_keys_when_they_round_trip() {
        let p = mysql_parts("mysql://tars:tars2015@10.0.0.1:3307/db_tars").unwrap();
        assert_eq!(
            (p.host.as_str(), p.port, p.user.as_str(), p.pass.as_str(), p.db.as_str()),
            ("10.0.0.1", 3307, "tars", "tars2015", "db_tars")
        );
        assert!(mysql_parts("mysql://tars:tars2015@10.0.0.1:3307/db_tars?pool=8").is_none());
    }

    #[test]
    fn endpoints_move_to_the_bound_port_and_keep_their_options() {
        let bound = "tcp -h 10.0.0.1 -p 2000 -t 60000";
        assert_eq!(moved_endpoint("tcp -h 10.0.0.1 -p 2000 -t 3000", bound), None);
        assert_eq!(
            moved_endpoint("tcp -h 10.0.0.1 -p 1000 -t 3000", bound).as_deref(),
            Some("tcp -h 10.0.0.1 -p 2000 -t 3000")
        );
        assert_eq!(moved_endpoint("garbage", bound).as_deref(), Some(bound));
    }

    #[test]
    fn the_unspecified_address_is_never_a_node_name() {
        assert_eq!(node_ip("127.0.0.1"), "127.0.0.1");
        assert_eq!(node_ip("myhost"), "myhost");
        let ip: IpAddr = node_ip("0.0.0.0").parse().unwrap();
        assert!(!ip.is_unspecified());
    }
}
