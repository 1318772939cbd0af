//! QueryF's answers, computed from one servant's routes and the group tables. Sans-IO.
//!
//! Each function mirrors one upstream lookup (`RegistryServer/QueryImp.cpp` over
//! `DbHandle.cpp`'s caches): `None` routes means the
//! servant is unknown.

use tars_protocol::tars::EndpointF;

use super::table::{Groups, ServantRoutes};

/// `(return code, active, inactive)`, as the `find*` methods with out parameters answer.
pub type Found = (i32, Vec<EndpointF>, Vec<EndpointF>);

/// `findObjectById`: the active endpoints.
pub fn by_id(routes: Option<&ServantRoutes>) -> Vec<EndpointF> {
    routes.map(|r| r.active.clone()).unwrap_or_default()
}

/// `findObjectById4Any`: every endpoint, no grouping.
pub fn any(routes: Option<&ServantRoutes>) -> Found {
    match routes {
        Some(r) => (0, r.active.clone(), r.inactive.clone()),
        None => (0, Vec::new(), Vec::new()),
    }
}

fn with_work_group(eps: &[EndpointF], pred: impl Fn(i32) -> bool) -> Vec<EndpointF> {
    eps.iter().filter(|e| pred(e.groupworkid)).cloned().collect()
}

/// `findObjectById4All` / `findObjectByIdInSameGroup`: group-priority routing by the
/// caller's IP. Same group first; then the first priority entry containing the caller's
/// group that has active endpoints; then servers with grouping disabled; then everything.
pub fn in_group_priority(routes: Option<&ServantRoutes>, groups: &Groups, caller_ip: &str) -> Found {
    let group = groups.group_of_ip(caller_ip);
    if group == -1 {
        return any(routes);
    }
    let Some(r) = routes else { return (0, Vec::new(), Vec::new()) };
    let mut active = with_work_group(&r.active, |g| g == group);
    let mut inactive = with_work_group(&r.inactive, |g| g == group);
    for p in groups.priorities() {
        if !active.is_empty() {
            break;
        }
        if !p.groups.contains(&group) {
            continue;
        }
        active = with_work_group(&r.active, |g| p.groups.contains(&g));
        inactive = with_work_group(&r.inactive, |g| p.groups.contains(&g));
    }
    if active.is_empty() {
        active = with_work_group(&r.active, |g| g == -1);
        inactive = with_work_group(&r.inactive, |g| g == -1);
    }
    if active.is_empty() {
        active = r.active.clone();
        inactive = r.inactive.clone();
    }
    (0, active, inactive)
}

/// `findObjectByIdInSameStation`: the endpoints whose real group belongs to the first
/// priority entry of `station`; −1 with empty lists when no entry has that station.
pub fn in_station(routes: Option<&ServantRoutes>, groups: &Groups, station: &str) -> Found {
    let Some(p) = groups.priorities().iter().find(|p| p.station == station) else {
        return (-1, Vec::new(), Vec::new());
    };
    let Some(r) = routes else { return (0, Vec::new(), Vec::new()) };
    let pick = |eps: &[EndpointF]| eps.iter().filter(|e| p.groups.contains(&e.grouprealid)).cloned().collect();
    (0, pick(&r.active), pick(&r.inactive))
}

/// `findObjectByIdInSameSet`. `setId` must be `name.area.group` with name and area not `*`
/// (else −1). A servant without that set falls back to group routing; group `*` takes the
/// whole area; otherwise the exact set, then the area's `*` group; nothing found is −1 with
/// empty lists.
pub fn in_set(routes: Option<&ServantRoutes>, groups: &Groups, caller_ip: &str, set_id: &str) -> Found {
    let parts: Vec<&str> = set_id.split('.').collect();
    let [name, area, group] = parts[..] else { return (-1, Vec::new(), Vec::new()) };
    if name == "*" || area == "*" {
        return (-1, Vec::new(), Vec::new());
    }
    let Some(members) = routes.and_then(|r| r.sets.get(name)) else {
        return in_group_priority(routes, groups, caller_ip);
    };
    let set_area = format!("{name}.{area}");
    let collect = |want: &dyn Fn(&super::table::SetMember) -> bool| {
        let (mut active, mut inactive) = (Vec::new(), Vec::new());
        for m in members.iter().filter(|m| want(m)) {
            if m.active {
                active.push(m.endpoint.clone());
            } else {
                inactive.push(m.endpoint.clone());
            }
        }
        (active, inactive)
    };
    let (active, inactive) = if group == "*" {
        collect(&|m| m.set_area == set_area)
    } else {
        let exact = format!("{name}.{area}.{group}");
        let found = collect(&|m| m.set_id == exact);
        if found.0.is_empty() && found.1.is_empty() {
            let wild = format!("{name}.{area}.*");
            collect(&|m| m.set_id == wild)
        } else {
            found
        }
    };
    if active.is_empty() && inactive.is_empty() {
        return (-1, active, inactive);
    }
    (0, active, inactive)
}

#[cfg(test)]
mod tests {
    use super::super::table::{build_servant, GroupRule, PriorityRow, RouteRow};
    use super::*;

    fn row(host: &str, group: bool, state: &str) -> RouteRow {
        RouteRow {
            servant: "A.S.Obj".into(),
            node_name: host.into(),
            endpoint: format!("tcp -h {host} -p 1 -t 1000"),
            enable_group: if group { "Y" } else { "N" }.into(),
            setting_state: "active".into(),
            present_state: state.into(),
            flow_state: "active".into(),
            enable_set: "N".into(),
            ..RouteRow::default()
        }
    }

    fn set_row(host: &str, name: &str, area: &str, group: &str) -> RouteRow {
        let mut r = row(host, false, "active");
        (r.enable_set, r.set_name, r.set_area, r.set_group) = ("Y".into(), name.into(), area.into(), group.into());
        r
    }

    fn hosts(v: &[EndpointF]) -> Vec<&str> {
        v.iter().map(|e| e.host.as_str()).collect()
    }

    fn groups() -> Groups {
        let rules = [
            GroupRule { group_id: 1, allow_ip_rule: "10.1.0.*".into(), group_name: "one".into() },
            GroupRule { group_id: 2, allow_ip_rule: "10.2.0.*".into(), group_name: "two".into() },
            GroupRule { group_id: 3, allow_ip_rule: "10.3.0.*".into(), group_name: "three".into() },
        ];
        Groups::new(&rules, &[PriorityRow { group_list: "3|2".into(), station: "north".into() }])
    }

    #[test]
    fn group_priority_walks_same_group_priority_ungrouped_then_all() {
        let g = groups();
        let rows = [row("10.1.0.1", true, "active"), row("10.2.0.1", true, "active"), row("10.9.0.1", false, "active")];
        let (r, _) = build_servant(&rows, &g);
        // Same group.
        assert_eq!(hosts(&in_group_priority(Some(&r), &g, "10.1.0.50").1), ["10.1.0.1"]);
        // Group 3 has no endpoint; its priority entry {3, 2} gives group 2.
        assert_eq!(hosts(&in_group_priority(Some(&r), &g, "10.3.0.7").1), ["10.2.0.1"]);
        // Unknown caller group: everything.
        assert_eq!(in_group_priority(Some(&r), &g, "172.16.0.1").1.len(), 3);
        // Group 1's own endpoint inactive: no priority entry holds group 1, so ungrouped servers.
        let rows =
            [row("10.1.0.1", true, "inactive"), row("10.2.0.1", true, "active"), row("10.9.0.1", false, "active")];
        let (r, _) = build_servant(&rows, &g);
        let (ret, active, inactive) = in_group_priority(Some(&r), &g, "10.1.0.50");
        assert_eq!((ret, hosts(&active), inactive.len()), (0, vec!["10.9.0.1"], 0));
        // Nothing ungrouped either: all.
        let rows = [row("10.1.0.1", true, "inactive"), row("10.2.0.1", true, "active")];
        let (r, _) = build_servant(&rows, &g);
        let (_, active, inactive) = in_group_priority(Some(&r), &g, "10.1.0.50");
        assert_eq!((hosts(&active), hosts(&inactive)), (vec!["10.2.0.1"], vec!["10.1.0.1"]));
        assert_eq!(in_group_priority(None, &g, "10.1.0.50"), (0, vec![], vec![]));
    }

    #[test]
    fn station_uses_real_groups_and_unknown_station_is_minus_one() {
        let g = groups();
        let rows =
            [row("10.2.0.1", false, "active"), row("10.1.0.1", false, "active"), row("10.3.0.1", false, "inactive")];
        let (r, _) = build_servant(&rows, &g);
        let (ret, active, inactive) = in_station(Some(&r), &g, "north");
        assert_eq!((ret, hosts(&active), hosts(&inactive)), (0, vec!["10.2.0.1"], vec!["10.3.0.1"]));
        assert_eq!(in_station(Some(&r), &g, "south"), (-1, vec![], vec![]));
    }

    #[test]
    fn set_rules() {
        let g = groups();
        let rows = [
            set_row("10.0.0.1", "sz", "a", "1"),
            set_row("10.0.0.2", "sz", "a", "2"),
            set_row("10.0.0.3", "sz", "a", "*"),
            set_row("10.0.0.4", "sz", "b", "1"),
            row("10.0.0.5", false, "active"),
        ];
        let (r, _) = build_servant(&rows, &g);
        assert_eq!(hosts(&in_set(Some(&r), &g, "1.1.1.1", "sz.a.1").1), ["10.0.0.1"]);
        assert_eq!(hosts(&in_set(Some(&r), &g, "1.1.1.1", "sz.a.9").1), ["10.0.0.3"]);
        assert_eq!(hosts(&in_set(Some(&r), &g, "1.1.1.1", "sz.a.*").1), ["10.0.0.1", "10.0.0.2", "10.0.0.3"]);
        assert_eq!(in_set(Some(&r), &g, "1.1.1.1", "sz.c.1"), (-1, vec![], vec![]));
        assert_eq!(in_set(Some(&r), &g, "1.1.1.1", "sz.c.*"), (-1, vec![], vec![]));
        // Malformed set ids.
        for bad in ["sz.a", "*.a.1", "sz.*.1", "sz.a.1.2", ""] {
            assert_eq!(in_set(Some(&r), &g, "1.1.1.1", bad).0, -1, "{bad}");
        }
        // A set name the servant does not use: group routing over everything.
        let (ret, active, _) = in_set(Some(&r), &g, "1.1.1.1", "gz.a.1");
        assert_eq!((ret, active.len()), (0, 5));
    }
}
