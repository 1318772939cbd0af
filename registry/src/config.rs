//! The registry's settings, read from upstream's config keys (`/tars/reap`, `/tars/nodeinfo`,
//! `/tars/objname`, `/tars/objcache`) plus a few of our own (`/tars/container`,
//! `/tars/registry<nodeallow>`), each documented where it is read.

use std::path::PathBuf;
use std::time::Duration;

use tars_proto::config::Config;

use crate::peers::{NodeAllow, NODE_ALLOW_KEY};

/// Everything the registry's background work and servants need to know from the config file.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// `/tars/reap<loadObjectsInterval1>`: how often the registry heart-beats its own
    /// `t_registry_info` rows (upstream also reloads routes then; we poll far more often).
    pub heartbeat_interval: Duration,
    /// `/tars/reap<loadObjectsInterval2>`: a full route reload as a safety net. Deletions do not
    /// wait for it: the change poll detects them.
    pub full_reload_interval: Duration,
    /// `/tars/reap<registryTimeout>`: registries (and AdminReg) silent this long are marked
    /// inactive in `t_registry_info`.
    pub registry_timeout: Duration,
    /// `/tars/reap<nodeTimeout>`: nodes silent this long go inactive with their servers.
    pub node_timeout: Duration,
    /// `/tars/reap<nodeTimeoutInterval>`: how often that check runs.
    pub node_timeout_interval: Duration,
    /// `/tars/reap<recoverProtect>` (`Y`/`N`): refuse a full reload while more than
    /// `recover_protect_rate` percent of nodes are inactive (a half-restored database), and
    /// hold back a poll's changes that would take more than that share of the active endpoints
    /// off the active lists at once (the rule is in `routes::loader`).
    pub recover_protect: bool,
    /// `/tars/reap<recoverProtectRate>`, percent.
    pub recover_protect_rate: u32,
    /// `/tars/reap<heartbeatoff>` (`Y`): do not advertise this registry in `t_registry_info`.
    pub heartbeat_off: bool,
    /// `/tars/reap<changePollMs>` (ours): how often the database is asked what changed.
    /// Bounds how stale an answer can be; default 200 ms.
    pub change_poll: Duration,
    /// `/tars/reap<deletePollMs>` (ours): how often the row counts, id sums and stamp sums
    /// are compared with what the loader has seen, which is how deleted rows and late commits
    /// are found (a delete moves no timestamp; a late commit's stamp is older than the poll).
    /// It scans both tables' stamp index, so it runs less often than the change poll; default
    /// 500 ms, never more often than the change poll.
    pub delete_poll: Duration,
    /// `/tars/objcache<FilePath>` (upstream's unused cache-file key): the route snapshot a
    /// restarted registry answers from while the database is down. Relative paths are under
    /// the server's `datapath`. Empty disables it.
    pub snapshot_path: Option<PathBuf>,
    /// `/tars/nodeinfo<defaultTemplate>`: the profile template of nodes that name none.
    pub default_node_template: String,
    /// `/tars/objname<QueryObjName>`.
    pub query_obj: String,
    /// `/tars/objname<RegistryObjName>`.
    pub registry_obj: String,
    /// The K8STARS container servant (ours: `/tars/objname<ContainerObjName>`).
    pub container_obj: String,
    /// `/tars/container<cleanInactiveAfter>` (ours, seconds): container nodes inactive longer
    /// than this are removed with their servers, adapters and node config files. 0 disables.
    pub clean_inactive_after: Duration,
    /// `/tars/container<cleanInterval>` (ours, seconds): how often that clean-up runs.
    pub clean_interval: Duration,
    /// `/tars/container<prometheusSd>` (ours): `host:port` of the Prometheus HTTP
    /// service-discovery endpoint (`GET /prometheus/sd`). Empty disables it.
    pub prometheus_sd: Option<String>,
    /// `/tars/registry<nodeallow>` (ours): the peers RegistryObj and the container interface
    /// answer (see [`crate::peers`]); loopback only without the key, `*` for everyone.
    pub node_allow: NodeAllow,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            heartbeat_interval: Duration::from_secs(10),
            full_reload_interval: Duration::from_secs(300),
            registry_timeout: Duration::from_secs(150),
            node_timeout: Duration::from_secs(250),
            node_timeout_interval: Duration::from_secs(60),
            recover_protect: false,
            recover_protect_rate: 30,
            heartbeat_off: false,
            change_poll: Duration::from_millis(200),
            delete_poll: Duration::from_millis(500),
            snapshot_path: None,
            default_node_template: "tars.tarsnode".to_owned(),
            query_obj: "tars.tarsregistry.QueryObj".to_owned(),
            registry_obj: "tars.tarsregistry.RegistryObj".to_owned(),
            container_obj: "tars.tarsregistry.Registry".to_owned(),
            clean_inactive_after: Duration::from_secs(24 * 3600),
            clean_interval: Duration::from_secs(3600),
            prometheus_sd: None,
            node_allow: NodeAllow::default(),
        }
    }
}

/// A key that is present but does not parse.
#[derive(Debug, thiserror::Error)]
#[error("config key {key}: {reason} (value {value:?})")]
pub struct ConfigError {
    /// The key path.
    pub key: String,
    /// What it holds.
    pub value: String,
    /// What is wrong.
    pub reason: String,
}

impl RegistryConfig {
    /// Reads the keys from `config`; `data_path` resolves a relative snapshot path.
    /// Upstream's minimum values are not enforced (tests use second-scale timeouts); values
    /// below one second are raised to one.
    pub fn from_config(config: &Config, data_path: Option<&str>) -> Result<RegistryConfig, ConfigError> {
        let d = RegistryConfig::default();
        let secs = |key: &str, default: Duration| -> Result<Duration, ConfigError> {
            match config.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map(|s| Duration::from_secs(s.max(1))).map_err(|_| ConfigError {
                    key: key.into(),
                    value: v.into(),
                    reason: "not a whole number of seconds".into(),
                }),
            }
        };
        let flag = |key: &str| config.get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("y"));
        let text = |key: &str, default: &str| {
            config.get(key).map(str::trim).filter(|v| !v.is_empty()).unwrap_or(default).to_owned()
        };
        let millis = |key: &str, default: Duration| match config.get(key).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => v.parse::<u64>().map(|ms| Duration::from_millis(ms.clamp(10, 60_000))).map_err(|_| {
                ConfigError { key: key.into(), value: v.into(), reason: "not a whole number of milliseconds".into() }
            }),
        };
        let change_poll = millis("/tars/reap<changePollMs>", d.change_poll)?;
        let delete_poll = millis("/tars/reap<deletePollMs>", d.delete_poll)?.max(change_poll);
        let rate = match config.get("/tars/reap<recoverProtectRate>").map(str::trim).filter(|v| !v.is_empty()) {
            None => d.recover_protect_rate,
            Some(v) => v.parse::<u32>().ok().filter(|r| *r <= 100).ok_or_else(|| ConfigError {
                key: "/tars/reap<recoverProtectRate>".into(),
                value: v.into(),
                reason: "not a percentage".into(),
            })?,
        };
        let snapshot_path = config.get("/tars/objcache<FilePath>").map(str::trim).filter(|v| !v.is_empty()).map(|p| {
            let p = PathBuf::from(p);
            match data_path {
                Some(base) if p.is_relative() => PathBuf::from(base).join(p),
                _ => p,
            }
        });
        let clean_after = match config.get("/tars/container<cleanInactiveAfter>").map(str::trim) {
            Some("0") => Duration::ZERO,
            _ => secs("/tars/container<cleanInactiveAfter>", d.clean_inactive_after)?,
        };
        Ok(RegistryConfig {
            heartbeat_interval: secs("/tars/reap<loadObjectsInterval1>", d.heartbeat_interval)?,
            full_reload_interval: secs("/tars/reap<loadObjectsInterval2>", d.full_reload_interval)?,
            registry_timeout: secs("/tars/reap<registryTimeout>", d.registry_timeout)?,
            node_timeout: secs("/tars/reap<nodeTimeout>", d.node_timeout)?,
            node_timeout_interval: secs("/tars/reap<nodeTimeoutInterval>", d.node_timeout_interval)?,
            recover_protect: flag("/tars/reap<recoverProtect>"),
            recover_protect_rate: rate,
            heartbeat_off: flag("/tars/reap<heartbeatoff>"),
            change_poll,
            delete_poll,
            snapshot_path,
            default_node_template: text("/tars/nodeinfo<defaultTemplate>", &d.default_node_template),
            query_obj: text("/tars/objname<QueryObjName>", &d.query_obj),
            registry_obj: text("/tars/objname<RegistryObjName>", &d.registry_obj),
            container_obj: text("/tars/objname<ContainerObjName>", &d.container_obj),
            clean_inactive_after: clean_after,
            clean_interval: secs("/tars/container<cleanInterval>", d.clean_interval)?,
            prometheus_sd: config
                .get("/tars/container<prometheusSd>")
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned),
            node_allow: NodeAllow::parse(config.get(NODE_ALLOW_KEY))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_template_keys_are_read() {
        let text = "<tars>\n<reap>\nloadObjectsInterval1 = 13\nloadObjectsInterval2 = 3601\nnodeTimeout = 250\n\
                    registryTimeout = 150\nheartbeatoff = Y\nrecoverProtect=Y\nrecoverProtectRate=40\n</reap>\n\
                    <nodeinfo>\ndefaultTemplate = tars.tarsnode2\n</nodeinfo>\n\
                    <objcache>\nFilePath = routes.dat\n</objcache>\n</tars>\n";
        let c = RegistryConfig::from_config(&Config::parse(text).expect("parses"), Some("/data")).expect("valid");
        assert_eq!(c.heartbeat_interval, Duration::from_secs(13));
        assert_eq!(c.full_reload_interval, Duration::from_secs(3601));
        assert_eq!(c.node_timeout, Duration::from_secs(250));
        assert!(c.heartbeat_off);
        assert!(c.recover_protect);
        assert_eq!(c.recover_protect_rate, 40);
        assert_eq!(c.default_node_template, "tars.tarsnode2");
        assert_eq!(c.snapshot_path, Some(PathBuf::from("/data/routes.dat")));
        assert_eq!(c.change_poll, Duration::from_millis(200));
        assert_eq!(c.delete_poll, Duration::from_millis(500));
    }

    #[test]
    fn the_delete_poll_is_never_more_frequent_than_the_change_poll() {
        let text = "<tars>\n<reap>\nchangePollMs = 300\ndeletePollMs = 100\n</reap>\n</tars>\n";
        let c = RegistryConfig::from_config(&Config::parse(text).expect("parses"), None).expect("valid");
        assert_eq!((c.change_poll, c.delete_poll), (Duration::from_millis(300), Duration::from_millis(300)));
        let text = "<tars>\n<reap>\ndeletePollMs = 2000\n</reap>\n</tars>\n";
        let c = RegistryConfig::from_config(&Config::parse(text).expect("parses"), None).expect("valid");
        assert_eq!(c.delete_poll, Duration::from_millis(2000));
        let bad = Config::parse("<tars>\n<reap>\ndeletePollMs = often\n</reap>\n</tars>\n").expect("parses");
        let e = RegistryConfig::from_config(&bad, None).expect_err("rejected");
        assert!(e.to_string().contains("/tars/reap<deletePollMs>"), "{e}");
    }

    #[test]
    fn a_bad_number_names_its_key() {
        let c = Config::parse("<tars>\n<reap>\nnodeTimeout = soon\n</reap>\n</tars>\n").expect("parses");
        let e = RegistryConfig::from_config(&c, None).expect_err("rejected");
        assert!(e.to_string().contains("/tars/reap<nodeTimeout>"), "{e}");
    }
}
