//! The node's own settings, read from its config file with upstream's keys
//! (`NodeServer.cpp`, `KeepAliveThread.cpp`, `ServerFactory::loadConfig`), plus a few of ours
//! (marked). Sans-IO: a [`Config`] in, [`NodeSettings`] out.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `/tars/application/server<localip>` | | the node's IP / name (`localip.tars.com` means unset) |
//! | `/tars/application/server<datapath>` | `./data` | server dirs, lib dir, descriptor cache |
//! | `/tars/application/server<logpath>` | `./app_log` | `<logpath>/<App>/<Server>/` |
//! | `/tars/application/client<locator>` | | the registry's QueryObj, put in servers' configs |
//! | `/tars/node<registryObj>` | `tars.tarsregistry.RegistryObj` | |
//! | `/tars/node/keepalive<heartTimeout>` | 45 (s) | heart-beat timeout of a server without its own `hearttimeout` |
//! | `/tars/node/keepalive<monitorInterval>` | 2 (s, clamped 1–10) | the check tick |
//! | `/tars/node/keepalive<monitorIntervalMs>` | (ours) | the check tick in ms (50–10000), overrides the above |
//! | `/tars/node/keepalive<synStatInterval>` | 60 (s) | `updateServerBatch` period |
//! | `/tars/node/keepalive<synTimeout>` | 300 (s) | `--monitor`: the node is stale after this |
//! | `/tars/node/keepalive<reportAliveInterval>` | 10 (s, ours) | `RegistryObj.keepAlive` period |
//! | `/tars/node/keepalive<configInterval>` | 60 (s, ours) | node template and locator refresh period |
//! | `/tars/node/hashmap<file>` | `serversCache.dat` | descriptor cache file under datapath (our format) |
//! | `/tars/app_conf<name>` | | `App1\|App2`: apps with their own section |
//! | `/tars/app_conf/default<ActivatorMaxCount>` | 10 | restart throttle: starts... |
//! | `/tars/app_conf/default<ActivatorTimeInterval>` | 60 (s) | ...each within this of the previous... |
//! | `/tars/app_conf/default<ActivatorPunishInterval>` | 600 (s) | ...refuse auto start this long |
//! | `/tars/app_conf/<App>/...` | | the same keys for one application |

use std::collections::BTreeMap;
use std::time::Duration;

use tars_proto::config::Config;

/// The IP upstream's template puts in `localip`, meaning "not set".
pub const PLACEHOLDER_IP: &str = "localip.tars.com";

/// The restart throttle (`Activator`): more than `max_count` starts each within `interval` of
/// the previous one refuse automatic starts for `punish`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// `ActivatorMaxCount`.
    pub max_count: u32,
    /// `ActivatorTimeInterval`.
    pub interval: Duration,
    /// `ActivatorPunishInterval`.
    pub punish: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { max_count: 10, interval: Duration::from_secs(60), punish: Duration::from_secs(600) }
    }
}

/// Everything the node reads from its own config.
#[derive(Debug, Clone)]
pub struct NodeSettings {
    /// `localip`, unless empty or [`PLACEHOLDER_IP`].
    pub local_ip: Option<String>,
    /// `datapath`.
    pub data_path: String,
    /// `logpath`.
    pub log_path: String,
    /// `<client><locator>`.
    pub locator: String,
    /// `registryObj`.
    pub registry_obj: String,
    /// `heartTimeout`.
    pub heart_timeout: Duration,
    /// `monitorInterval` / `monitorIntervalMs`.
    pub monitor_interval: Duration,
    /// `synStatInterval`.
    pub syn_stat_interval: Duration,
    /// `synTimeout`.
    pub syn_timeout: Duration,
    /// `reportAliveInterval`.
    pub report_alive_interval: Duration,
    /// `configInterval`.
    pub config_interval: Duration,
    /// `hashmap<file>`.
    pub cache_file: String,
    /// `/tars/node<adminObj>`: the AdminReg object the push link reports to.
    pub admin_obj: String,
    /// `/tars/node/keepalive<reportNodeInterval>` (ours; upstream's fixed 10 s): between
    /// `AdminReg.reportNode` rounds.
    pub report_node_interval: Duration,
    /// The default throttle.
    pub throttle: Throttle,
    /// Per-application throttles.
    pub app_throttle: BTreeMap<String, Throttle>,
}

impl NodeSettings {
    /// Reads the keys (unreadable numbers fall back to the default, as upstream's `strto`).
    pub fn from_config(c: &Config) -> NodeSettings {
        let secs = |key: &str, default: u64| Duration::from_secs(num(c.get(key)).unwrap_or(default));
        let monitor = match num(c.get("/tars/node/keepalive<monitorIntervalMs>")) {
            Some(ms) => Duration::from_millis(ms.clamp(50, 10_000)),
            None => Duration::from_secs(num(c.get("/tars/node/keepalive<monitorInterval>")).unwrap_or(2).clamp(1, 10)),
        };
        let local_ip = c
            .get("/tars/application/server<localip>")
            .map(str::trim)
            .filter(|ip| !ip.is_empty() && *ip != PLACEHOLDER_IP)
            .map(str::to_owned);
        let throttle = read_throttle(c, "/tars/app_conf/default", Throttle::default());
        let mut app_throttle = BTreeMap::new();
        for app in c.get_or("/tars/app_conf<name>", "").split('|').map(str::trim).filter(|a| !a.is_empty()) {
            app_throttle.insert(app.to_owned(), read_throttle(c, &format!("/tars/app_conf/{app}"), throttle));
        }
        NodeSettings {
            local_ip,
            data_path: c.get_or("/tars/application/server<datapath>", "./data").trim().to_owned(),
            log_path: c.get_or("/tars/application/server<logpath>", "./app_log").trim().to_owned(),
            locator: c.get_or("/tars/application/client<locator>", "").trim().to_owned(),
            registry_obj: c.get_or("/tars/node<registryObj>", "tars.tarsregistry.RegistryObj").trim().to_owned(),
            heart_timeout: secs("/tars/node/keepalive<heartTimeout>", 45),
            monitor_interval: monitor,
            syn_stat_interval: secs("/tars/node/keepalive<synStatInterval>", 60).max(Duration::from_secs(1)),
            syn_timeout: secs("/tars/node/keepalive<synTimeout>", 300),
            report_alive_interval: secs("/tars/node/keepalive<reportAliveInterval>", 10).max(Duration::from_secs(1)),
            config_interval: secs("/tars/node/keepalive<configInterval>", 60).max(Duration::from_secs(1)),
            cache_file: c.get_or("/tars/node/hashmap<file>", "serversCache.dat").trim().to_owned(),
            admin_obj: c.get_or("/tars/node<adminObj>", crate::adminlink::ADMIN_OBJ).trim().to_owned(),
            report_node_interval: secs("/tars/node/keepalive<reportNodeInterval>", 10).max(Duration::from_secs(1)),
            throttle,
            app_throttle,
        }
    }

    /// The throttle of application `app`.
    pub fn throttle_for(&self, app: &str) -> Throttle {
        self.app_throttle.get(app).copied().unwrap_or(self.throttle)
    }
}

fn num(v: Option<&str>) -> Option<u64> {
    v.and_then(|v| v.trim().parse::<u64>().ok())
}

fn read_throttle(c: &Config, domain: &str, base: Throttle) -> Throttle {
    let get = |k: &str| num(c.get(&format!("{domain}<{k}>")));
    Throttle {
        max_count: get("ActivatorMaxCount").and_then(|n| u32::try_from(n).ok()).unwrap_or(base.max_count),
        interval: get("ActivatorTimeInterval").map(Duration::from_secs).unwrap_or(base.interval),
        punish: get("ActivatorPunishInterval").map(Duration::from_secs).unwrap_or(base.punish),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upstream_template_keys() {
        let text =
            "<tars>\n<application>\n<server>\nlocalip=localip.tars.com\ndatapath=/d\n</server>\n</application>\n\
                    <node>\n<keepalive>\nheartTimeout=45\nmonitorInterval=30\n</keepalive>\n</node>\n\
                    <app_conf>\nname=A|B\n<default>\nActivatorMaxCount=3\n</default>\n\
                    <A>\nActivatorPunishInterval=5\n</A>\n</app_conf>\n</tars>\n";
        let c = Config::parse(text).unwrap();
        let s = NodeSettings::from_config(&c);
        assert_eq!(s.local_ip, None);
        assert_eq!(s.data_path, "/d");
        assert_eq!(s.monitor_interval, Duration::from_secs(10));
        assert_eq!(s.throttle.max_count, 3);
        let a = s.throttle_for("A");
        assert_eq!((a.max_count, a.punish), (3, Duration::from_secs(5)));
        assert_eq!(s.throttle_for("C"), s.throttle);
    }
}
