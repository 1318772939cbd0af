//! The route model: database rows in, per-servant endpoint lists out. Sans-IO.
//!
//! A [`RouteRow`] is one adapter of one server on one node (upstream's `t_adapter_conf RIGHT
//! JOIN t_server_conf`) or one `t_registry_info` row. [`build_servant`] turns every row of a
//! servant into its [`ServantRoutes`], applying upstream's rules: standbys (`bak_flag = 1`)
//! are invisible, an endpoint is active iff setting and present state are `active` and flow is
//! not `inactive`, group ids come from the group rules, set members are indexed by set name.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use tars_proto::endpoint::Endpoint;
use tars_proto::rpc::ParamWriter;
use tars_protocol::tars::EndpointF;

/// One row of the route query, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteRow {
    /// `t_server_conf.id` (0 for registry rows).
    pub server_id: i64,
    /// `t_adapter_conf.id`, 0 when the server has no adapter.
    pub adapter_id: i64,
    /// Application.
    pub application: String,
    /// Server name.
    pub server_name: String,
    /// Node name (the host the server runs on).
    pub node_name: String,
    /// The object, e.g. `App.Server.Obj`; empty when the server has no adapter.
    pub servant: String,
    /// The endpoint string, e.g. `tcp -h 10.0.0.1 -p 20000 -t 60000`.
    pub endpoint: String,
    /// `enable_group` (`Y`/`N`).
    pub enable_group: String,
    /// `setting_state`.
    pub setting_state: String,
    /// `present_state`.
    pub present_state: String,
    /// `flow_state`.
    pub flow_state: String,
    /// `enable_set` (`Y`/`N`).
    pub enable_set: String,
    /// `set_name`.
    pub set_name: String,
    /// `set_area`.
    pub set_area: String,
    /// `set_group`.
    pub set_group: String,
    /// `ip_group_name`: names the endpoint's group instead of its IP.
    pub ip_group_name: String,
    /// `bak_flag`: 1 marks a standby.
    pub bak_flag: i32,
}

impl RouteRow {
    /// Active as upstream defines it: both states `active` and flow not `inactive`.
    pub fn is_active(&self) -> bool {
        self.setting_state == "active" && self.present_state == "active" && self.flow_state != "inactive"
    }
}

/// IP and name → group id (`t_server_group_rule`), and the group priority list
/// (`t_group_priority`, in `list_order`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Groups {
    by_ip: HashMap<String, i32>,
    by_name: HashMap<String, i32>,
    priorities: Vec<Priority>,
}

/// One `t_group_priority` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    /// `station`.
    pub station: String,
    /// The group ids of `group_list`.
    pub groups: BTreeSet<i32>,
}

/// One `t_server_group_rule` row, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRule {
    /// `group_id`.
    pub group_id: i32,
    /// `allow_ip_rule`: IPs or `a.b.c.*` patterns separated by `|`.
    pub allow_ip_rule: String,
    /// `group_name`.
    pub group_name: String,
}

/// One `t_group_priority` row, as read (`ORDER BY list_order`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityRow {
    /// `group_list`: group ids separated by `|`, `,` or `;`.
    pub group_list: String,
    /// `station`.
    pub station: String,
}

impl Groups {
    /// The group tables from their rows. Later rules win for an IP listed twice, as upstream's
    /// map insertion order gives.
    pub fn new(rules: &[GroupRule], priorities: &[PriorityRow]) -> Groups {
        let mut g = Groups::default();
        for r in rules {
            for ip in r.allow_ip_rule.split('|').map(str::trim).filter(|s| !s.is_empty()) {
                g.by_ip.insert(ip.to_owned(), r.group_id);
            }
            g.by_name.insert(r.group_name.clone(), r.group_id);
        }
        for p in priorities {
            let groups = p.group_list.split(['|', ',', ';']).filter_map(|s| s.trim().parse::<i32>().ok()).collect();
            g.priorities.push(Priority { station: p.station.clone(), groups });
        }
        g
    }

    /// The group of `ip`: an exact rule, else its `a.b.c.*` rule, else −1.
    pub fn group_of_ip(&self, ip: &str) -> i32 {
        if let Some(g) = self.by_ip.get(ip) {
            return *g;
        }
        match ip.rsplit_once('.') {
            Some((prefix, _)) if ip.parse::<std::net::Ipv4Addr>().is_ok() => {
                self.by_ip.get(&format!("{prefix}.*")).copied().unwrap_or(-1)
            }
            _ => -1,
        }
    }

    /// The group called `name`, or −1.
    pub fn group_by_name(&self, name: &str) -> i32 {
        self.by_name.get(name).copied().unwrap_or(-1)
    }

    /// The priority list, in order.
    pub fn priorities(&self) -> &[Priority] {
        &self.priorities
    }
}

/// A set member: an endpoint with its set identity.
#[derive(Debug, Clone, PartialEq)]
pub struct SetMember {
    /// `name.area.group`.
    pub set_id: String,
    /// `name.area`.
    pub set_area: String,
    /// Whether the endpoint is active.
    pub active: bool,
    /// The endpoint as clients receive it.
    pub endpoint: EndpointF,
}

/// Everything QueryObj needs to answer for one servant. Immutable once built; shards share
/// it through `Arc`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServantRoutes {
    /// Active endpoints, in a stable order.
    pub active: Vec<EndpointF>,
    /// Inactive endpoints, in a stable order.
    pub inactive: Vec<EndpointF>,
    /// Set members by set name.
    pub sets: BTreeMap<String, Vec<SetMember>>,
    /// The results of `findObjectById` and `findObjectById4Any` as a TARS (v1) reply body,
    /// encoded once per change instead of once per call (see `query_obj::QueryServant`).
    pub encoded: EncodedAnswers,
}

/// Pre-encoded TARS v1 reply bodies of one servant.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EncodedAnswers {
    /// `findObjectById`: the active list as the return value.
    pub by_id: bytes::Bytes,
    /// `findObjectById4Any`: return 0, active (tag 2) and inactive (tag 3) lists.
    pub any: bytes::Bytes,
}

impl EncodedAnswers {
    /// Encodes the answers for `active` and `inactive`.
    pub fn new(active: &Vec<EndpointF>, inactive: &Vec<EndpointF>) -> EncodedAnswers {
        let mut w = ParamWriter::new(TARS_VERSION);
        w.write_ret(active);
        let by_id = w.finish();
        let mut w = ParamWriter::new(TARS_VERSION);
        w.write_ret(&0i32);
        w.write(2, "activeEp", active);
        w.write(3, "inactiveEp", inactive);
        EncodedAnswers { by_id, any: w.finish() }
    }
}

/// The protocol version whose replies are pre-encoded (`TARSVERSION`, what SDKs send).
pub const TARS_VERSION: i16 = 1;

impl ServantRoutes {
    /// Whether the servant has nothing to answer with.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty() && self.inactive.is_empty()
    }
}

/// Why a row gave no endpoint (logged by the loader, once per row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{servant} on {node}: endpoint {endpoint:?}: {reason}")]
pub struct BadRow {
    /// The servant.
    pub servant: String,
    /// The node.
    pub node: String,
    /// The endpoint string.
    pub endpoint: String,
    /// The parse error.
    pub reason: String,
}

/// The endpoint a row advertises, or `None` for standbys and adapter-less rows.
pub fn endpoint_of(row: &RouteRow, groups: &Groups) -> Result<Option<EndpointF>, BadRow> {
    if row.servant.is_empty() || row.bak_flag == 1 {
        return Ok(None);
    }
    let ep = Endpoint::parse(&row.endpoint).map_err(|e| BadRow {
        servant: row.servant.clone(),
        node: row.node_name.clone(),
        endpoint: row.endpoint.clone(),
        reason: e.to_string(),
    })?;
    let grouprealid = if row.ip_group_name.trim().is_empty() {
        groups.group_of_ip(&ep.host)
    } else {
        groups.group_by_name(row.ip_group_name.trim())
    };
    let enable_group = row.enable_group.eq_ignore_ascii_case("y");
    let set_id = if row.enable_set.eq_ignore_ascii_case("y") {
        format!("{}.{}.{}", row.set_name, row.set_area, row.set_group)
    } else {
        String::new()
    };
    Ok(Some(EndpointF {
        host: ep.host.clone(),
        port: i32::from(ep.port),
        timeout: i32::try_from(ep.timeout_ms).unwrap_or(i32::MAX),
        istcp: ep.istcp(),
        grid: ep.grid,
        groupworkid: if enable_group { grouprealid } else { -1 },
        grouprealid,
        set_id,
        qos: ep.qos,
        bak_flag: row.bak_flag,
        weight: ep.weight,
        // Dynamic weights (type 2) need upstream's LoadBalanceThread, which is off by default;
        // with it off upstream hands such endpoints out as round robin.
        weight_type: if ep.weight_type == 2 { 0 } else { ep.weight_type },
        auth_type: ep.auth_type,
        node_name: row.node_name.trim().to_owned(),
    }))
}

/// The set a row belongs to: `(set_name, set_area = name.area, set_id = name.area.group)`,
/// when it enables sets with a valid division (no empty part, name and area not `*`).
fn set_of(row: &RouteRow) -> Option<(String, String, String)> {
    if !row.enable_set.eq_ignore_ascii_case("y") {
        return None;
    }
    let (n, a, g) = (&row.set_name, &row.set_area, &row.set_group);
    if n.is_empty() || a.is_empty() || g.is_empty() || n == "*" || a == "*" {
        return None;
    }
    Some((n.clone(), format!("{n}.{a}"), format!("{n}.{a}.{g}")))
}

/// Stable order so that every registry on one database answers identically.
fn order(e: &EndpointF) -> (&str, i32, &str, i32, i32) {
    (&e.host, e.port, &e.node_name, e.istcp, e.timeout)
}

/// Builds the routes of one servant from all of its rows; bad rows are returned, not fatal.
pub fn build_servant<'a>(
    rows: impl IntoIterator<Item = &'a RouteRow>,
    groups: &Groups,
) -> (ServantRoutes, Vec<BadRow>) {
    let mut out = ServantRoutes::default();
    let mut bad = Vec::new();
    for row in rows {
        let ep = match endpoint_of(row, groups) {
            Ok(Some(ep)) => ep,
            Ok(None) => continue,
            Err(e) => {
                bad.push(e);
                continue;
            }
        };
        let active = row.is_active();
        if let Some((name, set_area, set_id)) = set_of(row) {
            out.sets.entry(name).or_default().push(SetMember { set_id, set_area, active, endpoint: ep.clone() });
        }
        if active {
            out.active.push(ep);
        } else {
            out.inactive.push(ep);
        }
    }
    out.active.sort_by(|a, b| order(a).cmp(&order(b)));
    out.inactive.sort_by(|a, b| order(a).cmp(&order(b)));
    // One address from two rows (a framework object in both `t_registry_info` and
    // `t_adapter_conf`, as `tars up` and upstream's install write it) is one endpoint: listed
    // twice, a client would open it twice and weigh it double. Active wins over inactive.
    let same = |a: &EndpointF, b: &EndpointF| a.host == b.host && a.port == b.port && a.istcp == b.istcp;
    out.active.dedup_by(|a, b| same(a, b));
    out.inactive.dedup_by(|a, b| same(a, b));
    let active = &out.active;
    out.inactive.retain(|i| !active.iter().any(|a| same(a, i)));
    for members in out.sets.values_mut() {
        members.sort_by(|a, b| order(&a.endpoint).cmp(&order(&b.endpoint)));
    }
    out.encoded = EncodedAnswers::new(&out.active, &out.inactive);
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(servant: &str, host: &str) -> RouteRow {
        RouteRow {
            server_id: 1,
            adapter_id: 1,
            application: "A".into(),
            server_name: "S".into(),
            node_name: host.into(),
            servant: servant.into(),
            endpoint: format!("tcp -h {host} -p 1000 -t 60000"),
            enable_group: "N".into(),
            setting_state: "active".into(),
            present_state: "active".into(),
            flow_state: "active".into(),
            enable_set: "N".into(),
            ..RouteRow::default()
        }
    }

    #[test]
    fn one_address_from_two_rows_is_one_endpoint() {
        let groups = Groups::default();
        let a = row("A.S.Obj", "10.0.0.1");
        let mut b = row("A.S.Obj", "10.0.0.1");
        b.node_name = String::new();
        let mut c = row("A.S.Obj", "10.0.0.2");
        c.present_state = "inactive".into();
        let mut d = row("A.S.Obj", "10.0.0.2");
        d.node_name = "other".into();
        let mut e = row("A.S.Obj", "10.0.0.1");
        e.present_state = "inactive".into();
        let (routes, bad) = build_servant([&a, &b, &c, &d, &e], &groups);
        assert!(bad.is_empty());
        let hosts = |v: &[EndpointF]| v.iter().map(|e| e.host.clone()).collect::<Vec<_>>();
        assert_eq!(hosts(&routes.active), ["10.0.0.1", "10.0.0.2"]);
        assert!(routes.inactive.is_empty(), "{:?}", routes.inactive);
    }

    #[test]
    fn states_standbys_and_order() {
        let mut inactive = row("A.S.Obj", "10.0.0.3");
        inactive.present_state = "inactive".into();
        let mut no_flow = row("A.S.Obj", "10.0.0.4");
        no_flow.flow_state = "inactive".into();
        let mut standby = row("A.S.Obj", "10.0.0.5");
        standby.bak_flag = 1;
        let rows = [row("A.S.Obj", "10.0.0.2"), inactive, no_flow, standby, row("A.S.Obj", "10.0.0.1")];
        let (r, bad) = build_servant(&rows, &Groups::default());
        assert!(bad.is_empty());
        let hosts = |v: &[EndpointF]| v.iter().map(|e| e.host.clone()).collect::<Vec<_>>();
        assert_eq!(hosts(&r.active), ["10.0.0.1", "10.0.0.2"]);
        assert_eq!(hosts(&r.inactive), ["10.0.0.3", "10.0.0.4"]);
        assert_eq!(r.active[0].timeout, 60000);
        assert_eq!(r.active[0].istcp, 1);
    }

    #[test]
    fn group_ids_by_ip_prefix_and_name() {
        let rules = [
            GroupRule { group_id: 7, allow_ip_rule: "10.0.0.*|192.168.1.5".into(), group_name: "g7".into() },
            GroupRule { group_id: 9, allow_ip_rule: "10.0.0.9".into(), group_name: "g9".into() },
        ];
        let g = Groups::new(&rules, &[PriorityRow { group_list: "7|9, 11;x".into(), station: "sz".into() }]);
        assert_eq!(g.group_of_ip("10.0.0.9"), 9);
        assert_eq!(g.group_of_ip("10.0.0.1"), 7);
        assert_eq!(g.group_of_ip("192.168.1.5"), 7);
        assert_eq!(g.group_of_ip("192.168.1.6"), -1);
        assert_eq!(g.group_of_ip("not-an-ip"), -1);
        assert_eq!(g.priorities()[0].groups, BTreeSet::from([7, 9, 11]));
        let mut grouped = row("A.S.Obj", "10.0.0.1");
        grouped.enable_group = "Y".into();
        let mut named = row("A.S.Obj", "10.0.0.2");
        named.ip_group_name = "g9".into();
        let (r, _) = build_servant(&[grouped, named], &g);
        assert_eq!((r.active[0].grouprealid, r.active[0].groupworkid), (7, 7));
        assert_eq!((r.active[1].grouprealid, r.active[1].groupworkid), (9, -1));
    }

    #[test]
    fn sets_need_a_valid_division_and_bad_endpoints_are_reported() {
        let mut a = row("A.S.Obj", "10.0.0.1");
        (a.enable_set, a.set_name, a.set_area, a.set_group) = ("Y".into(), "sz".into(), "a".into(), "1".into());
        let mut star = row("A.S.Obj", "10.0.0.2");
        (star.enable_set, star.set_name, star.set_area, star.set_group) =
            ("Y".into(), "*".into(), "a".into(), "1".into());
        let mut broken = row("A.S.Obj", "10.0.0.3");
        broken.endpoint = "tcp -h".into();
        let (r, bad) = build_servant(&[a, star, broken], &Groups::default());
        assert_eq!(bad.len(), 1);
        assert_eq!(r.active.len(), 2);
        assert_eq!(r.active[0].set_id, "sz.a.1");
        let members = &r.sets["sz"];
        assert_eq!(members.len(), 1);
        assert_eq!((members[0].set_id.as_str(), members[0].set_area.as_str()), ("sz.a.1", "sz.a"));
        assert!(!r.sets.contains_key("*"));
    }
}
