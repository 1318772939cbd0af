//! The loader's copy of the route data, and the deltas it publishes. Sans-IO.
//!
//! [`Master`] keeps the raw rows by server (so a changed server is replaced whole, and a
//! server gone from the database is removed), the `t_registry_info` rows and the group
//! tables. Every change marks the servants it touches; [`Master::take_delta`] rebuilds only
//! those and reports the ones whose answers actually changed, removals included.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::table::{build_servant, BadRow, GroupRule, Groups, PriorityRow, RouteRow, ServantRoutes};

/// `(application, server_name)`.
pub type ServerKey = (String, String);

/// Where a servant's rows come from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Source {
    Server(ServerKey),
    Registry,
}

/// What changed since the last delta: new routes for a servant, or `None` for a servant
/// that no longer has any row.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// Changed servants.
    pub servants: Vec<(String, Option<Arc<ServantRoutes>>)>,
    /// New group tables, when they changed.
    pub groups: Option<Arc<Groups>>,
}

impl Delta {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.servants.is_empty() && self.groups.is_none()
    }
}

/// The loader's state. Lives on the loader thread only.
#[derive(Debug, Default)]
pub struct Master {
    servers: HashMap<ServerKey, Vec<RouteRow>>,
    registry: Vec<RouteRow>,
    rules: Vec<GroupRule>,
    priorities: Vec<PriorityRow>,
    groups: Arc<Groups>,
    groups_changed: bool,
    servants: HashMap<String, Arc<ServantRoutes>>,
    sources: HashMap<String, BTreeSet<Source>>,
    dirty: BTreeSet<String>,
}

impl Master {
    /// Replaces every row of `key` (none: the server is gone).
    pub fn set_server(&mut self, key: ServerKey, rows: Vec<RouteRow>) {
        let old = if rows.is_empty() { self.servers.remove(&key) } else { self.servers.insert(key.clone(), rows) };
        if old.as_ref() == self.servers.get(&key) {
            return;
        }
        let source = Source::Server(key.clone());
        self.retarget(&source, old.as_deref().unwrap_or_default(), self.servers.get(&key).cloned().unwrap_or_default());
    }

    /// Replaces the `t_registry_info` rows.
    pub fn set_registry(&mut self, rows: Vec<RouteRow>) {
        if rows == self.registry {
            return;
        }
        let old = std::mem::replace(&mut self.registry, rows.clone());
        self.retarget(&Source::Registry, &old, rows);
    }

    fn retarget(&mut self, source: &Source, old: &[RouteRow], new: Vec<RouteRow>) {
        for r in old.iter().filter(|r| !r.servant.is_empty()) {
            if let Some(s) = self.sources.get_mut(&r.servant) {
                s.remove(source);
                if s.is_empty() {
                    self.sources.remove(&r.servant);
                }
            }
            self.dirty.insert(r.servant.clone());
        }
        for r in new.iter().filter(|r| !r.servant.is_empty()) {
            self.sources.entry(r.servant.clone()).or_default().insert(source.clone());
            self.dirty.insert(r.servant.clone());
        }
    }

    /// Replaces the group tables; when they differ every servant is rebuilt.
    pub fn set_groups(&mut self, rules: Vec<GroupRule>, priorities: Vec<PriorityRow>) {
        if rules == self.rules && priorities == self.priorities {
            return;
        }
        self.groups = Arc::new(Groups::new(&rules, &priorities));
        self.rules = rules;
        self.priorities = priorities;
        self.groups_changed = true;
        self.dirty.extend(self.sources.keys().cloned());
    }

    /// The servers currently known.
    pub fn server_keys(&self) -> impl Iterator<Item = &ServerKey> {
        self.servers.keys()
    }

    /// How many endpoints of `key` that are active now would not be with `rows`: the
    /// measure recover protection applies to a delta.
    pub fn active_lost(&self, key: &ServerKey, rows: &[RouteRow]) -> usize {
        let Some(old) = self.servers.get(key) else { return 0 };
        let after: BTreeSet<(&str, &str)> = rows.iter().filter(|r| counts_active(r)).map(endpoint_key).collect();
        old.iter().filter(|r| counts_active(r)).map(endpoint_key).collect::<BTreeSet<_>>().difference(&after).count()
    }

    /// Endpoints active in the server rows now held. The registry's own `t_registry_info`
    /// rows are left out: recover protection is about the servers nodes report.
    pub fn active_endpoints(&self) -> usize {
        self.servers
            .values()
            .map(|rows| rows.iter().filter(|r| counts_active(r)).map(endpoint_key).collect::<BTreeSet<_>>().len())
            .sum()
    }

    /// Rebuilds the servants changes touched; returns what differs from before, and the rows
    /// that did not parse.
    pub fn take_delta(&mut self) -> (Delta, Vec<BadRow>) {
        let mut delta = Delta::default();
        let mut bad = Vec::new();
        if std::mem::take(&mut self.groups_changed) {
            delta.groups = Some(self.groups.clone());
        }
        for servant in std::mem::take(&mut self.dirty) {
            let rows = self.rows_of(&servant);
            let (routes, errs) = build_servant(rows, &self.groups);
            bad.extend(errs);
            let new = if routes.is_empty() && routes.sets.is_empty() { None } else { Some(routes) };
            match (new, self.servants.get(&servant)) {
                (None, None) => {}
                (None, Some(_)) => {
                    self.servants.remove(&servant);
                    delta.servants.push((servant, None));
                }
                (Some(n), Some(old)) if **old == n => {}
                (Some(n), _) => {
                    let n = Arc::new(n);
                    self.servants.insert(servant.clone(), n.clone());
                    delta.servants.push((servant, Some(n)));
                }
            }
        }
        (delta, bad)
    }

    fn rows_of(&self, servant: &str) -> Vec<&RouteRow> {
        let mut out = Vec::new();
        for source in self.sources.get(servant).into_iter().flatten() {
            let rows: &[RouteRow] = match source {
                Source::Server(k) => self.servers.get(k).map(Vec::as_slice).unwrap_or_default(),
                Source::Registry => &self.registry,
            };
            out.extend(rows.iter().filter(|r| r.servant == servant));
        }
        out
    }

    /// Every servant's routes and the group tables: what a new subscriber starts from.
    pub fn full(&self) -> (HashMap<String, Arc<ServantRoutes>>, Arc<Groups>) {
        (self.servants.clone(), self.groups.clone())
    }

    /// Everything the snapshot file keeps: server rows (sorted), registry rows, group rules
    /// and priorities.
    pub fn raw(&self) -> (Vec<&RouteRow>, &[RouteRow], &[GroupRule], &[PriorityRow]) {
        let sorted: BTreeMap<&ServerKey, &Vec<RouteRow>> = self.servers.iter().collect();
        (sorted.into_values().flatten().collect(), &self.registry, &self.rules, &self.priorities)
    }

    /// How many servants have routes.
    pub fn servant_count(&self) -> usize {
        self.servants.len()
    }
}

/// Whether a row puts an endpoint on its servant's active list (standbys are never listed).
fn counts_active(r: &RouteRow) -> bool {
    !r.servant.is_empty() && r.bak_flag != 1 && r.is_active()
}

fn endpoint_key(r: &RouteRow) -> (&str, &str) {
    (&r.servant, &r.endpoint)
}

/// Groups rows by server.
pub fn by_server(rows: Vec<RouteRow>) -> BTreeMap<ServerKey, Vec<RouteRow>> {
    let mut out: BTreeMap<ServerKey, Vec<RouteRow>> = BTreeMap::new();
    for r in rows {
        out.entry((r.application.clone(), r.server_name.clone())).or_default().push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(app: &str, servant: &str, host: &str, id: i64) -> RouteRow {
        RouteRow {
            server_id: id,
            adapter_id: id,
            application: app.into(),
            server_name: "S".into(),
            node_name: host.into(),
            servant: servant.into(),
            endpoint: format!("tcp -h {host} -p 1"),
            setting_state: "active".into(),
            present_state: "active".into(),
            flow_state: "active".into(),
            enable_group: "N".into(),
            enable_set: "N".into(),
            ..RouteRow::default()
        }
    }

    fn names(d: &Delta) -> Vec<(String, bool)> {
        d.servants.iter().map(|(n, r)| (n.clone(), r.is_some())).collect()
    }

    #[test]
    fn deltas_carry_only_changes_and_removals() {
        let mut m = Master::default();
        let key = ("A".to_owned(), "S".to_owned());
        m.set_server(key.clone(), vec![row("A", "A.S.Obj", "10.0.0.1", 1), row("A", "A.S.Obj2", "10.0.0.1", 2)]);
        let (d, _) = m.take_delta();
        assert_eq!(names(&d), [("A.S.Obj".into(), true), ("A.S.Obj2".into(), true)]);
        // Same rows again: nothing.
        m.set_server(key.clone(), vec![row("A", "A.S.Obj", "10.0.0.1", 1), row("A", "A.S.Obj2", "10.0.0.1", 2)]);
        assert!(m.take_delta().0.is_empty());
        // Obj2's adapter deleted: Obj2 removed, Obj untouched.
        m.set_server(key.clone(), vec![row("A", "A.S.Obj", "10.0.0.1", 1)]);
        assert_eq!(names(&m.take_delta().0), [("A.S.Obj2".into(), false)]);
        // The server deleted.
        m.set_server(key, vec![]);
        assert_eq!(names(&m.take_delta().0), [("A.S.Obj".into(), false)]);
        assert_eq!(m.servant_count(), 0);
    }

    #[test]
    fn a_servant_fed_by_two_servers_keeps_the_other_half() {
        let mut m = Master::default();
        m.set_server(("A".into(), "S".into()), vec![row("A", "X.Obj", "10.0.0.1", 1)]);
        m.set_server(("B".into(), "S".into()), vec![row("B", "X.Obj", "10.0.0.2", 2)]);
        m.take_delta();
        m.set_server(("A".into(), "S".into()), vec![]);
        let (d, _) = m.take_delta();
        let routes = d.servants[0].1.as_ref().expect("still routed");
        assert_eq!(routes.active.len(), 1);
        assert_eq!(routes.active[0].host, "10.0.0.2");
    }

    #[test]
    fn group_change_rebuilds_everything() {
        let mut m = Master::default();
        m.set_server(("A".into(), "S".into()), vec![row("A", "A.S.Obj", "10.0.0.1", 1)]);
        m.take_delta();
        let rules = vec![GroupRule { group_id: 4, allow_ip_rule: "10.0.0.*".into(), group_name: "g".into() }];
        m.set_groups(rules.clone(), vec![]);
        let (d, _) = m.take_delta();
        assert!(d.groups.is_some());
        assert_eq!(d.servants[0].1.as_ref().map(|r| r.active[0].grouprealid), Some(4));
        m.set_groups(rules, vec![]);
        assert!(m.take_delta().0.is_empty());
    }

    #[test]
    fn lost_active_endpoints_are_counted_per_server() {
        let mut m = Master::default();
        let key = ("A".to_owned(), "S".to_owned());
        let rows = vec![row("A", "A.S.Obj", "10.0.0.1", 1), row("A", "A.S.Obj", "10.0.0.2", 2)];
        m.set_server(key.clone(), rows.clone());
        let mut standby = row("A", "A.S.Obj", "10.0.0.3", 3);
        standby.bak_flag = 1;
        m.set_server(("A".into(), "T".into()), vec![row("A", "A.T.Obj", "10.0.0.1", 4), standby]);
        assert_eq!(m.active_endpoints(), 3);
        let mut down = rows.clone();
        down[0].present_state = "inactive".into();
        assert_eq!(m.active_lost(&key, &down), 1);
        assert_eq!(m.active_lost(&key, &[]), 2);
        assert_eq!(m.active_lost(&key, &rows), 0);
        assert_eq!(m.active_lost(&("A".into(), "New".into()), &rows), 0);
    }
}
