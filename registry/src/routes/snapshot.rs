//! The route snapshot file: the loader's raw rows, TARS-encoded (`tars/RouteSnapshot.tars`),
//! written atomically after changes, read at start when the database does not answer.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use tars_proto::codec::Struct as _;

use super::table::{GroupRule, PriorityRow, RouteRow};
use crate::wire::tarsrs::{RouteSnapshot, SnapshotGroupRule, SnapshotPriority, SnapshotRow};

const MAGIC: &str = "tars-rs route snapshot";
const VERSION: i32 = 1;

/// Why a snapshot could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The file could not be read or written.
    #[error("route snapshot {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a snapshot, or is damaged.
    #[error("route snapshot {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Snapshot {
    /// Server rows.
    pub servers: Vec<RouteRow>,
    /// `t_registry_info` rows.
    pub registry: Vec<RouteRow>,
    /// Group rules.
    pub rules: Vec<GroupRule>,
    /// Group priorities.
    pub priorities: Vec<PriorityRow>,
    /// When it was written (database clock text, for the log).
    pub saved_at: String,
}

fn to_wire(r: &RouteRow) -> SnapshotRow {
    SnapshotRow {
        server_id: r.server_id,
        adapter_id: r.adapter_id,
        application: r.application.clone(),
        server_name: r.server_name.clone(),
        node_name: r.node_name.clone(),
        servant: r.servant.clone(),
        endpoint: r.endpoint.clone(),
        enable_group: r.enable_group.clone(),
        setting_state: r.setting_state.clone(),
        present_state: r.present_state.clone(),
        flow_state: r.flow_state.clone(),
        enable_set: r.enable_set.clone(),
        set_name: r.set_name.clone(),
        set_area: r.set_area.clone(),
        set_group: r.set_group.clone(),
        ip_group_name: r.ip_group_name.clone(),
        bak_flag: r.bak_flag,
    }
}

fn from_wire(r: SnapshotRow) -> RouteRow {
    RouteRow {
        server_id: r.server_id,
        adapter_id: r.adapter_id,
        application: r.application,
        server_name: r.server_name,
        node_name: r.node_name,
        servant: r.servant,
        endpoint: r.endpoint,
        enable_group: r.enable_group,
        setting_state: r.setting_state,
        present_state: r.present_state,
        flow_state: r.flow_state,
        enable_set: r.enable_set,
        set_name: r.set_name,
        set_area: r.set_area,
        set_group: r.set_group,
        ip_group_name: r.ip_group_name,
        bak_flag: r.bak_flag,
    }
}

/// Encodes a snapshot.
pub fn encode(
    servers: &[&RouteRow],
    registry: &[RouteRow],
    rules: &[GroupRule],
    priorities: &[PriorityRow],
    saved_at: &str,
) -> bytes::Bytes {
    RouteSnapshot {
        magic: MAGIC.to_owned(),
        version: VERSION,
        saved_at: saved_at.to_owned(),
        servers: servers.iter().map(|r| to_wire(r)).collect(),
        registry: registry.iter().map(to_wire).collect(),
        rules: rules
            .iter()
            .map(|g| SnapshotGroupRule {
                group_id: g.group_id,
                allow_ip_rule: g.allow_ip_rule.clone(),
                group_name: g.group_name.clone(),
            })
            .collect(),
        priorities: priorities
            .iter()
            .map(|p| SnapshotPriority { group_list: p.group_list.clone(), station: p.station.clone() })
            .collect(),
    }
    .encode()
}

/// Decodes a snapshot; `path` is for the error.
pub fn decode(bytes: &[u8], path: &Path) -> Result<Snapshot, SnapshotError> {
    let corrupt = |reason: String| SnapshotError::Corrupt { path: path.to_owned(), reason };
    let s = RouteSnapshot::decode(bytes).map_err(|e| corrupt(e.to_string()))?;
    if s.magic != MAGIC {
        return Err(corrupt("not a route snapshot".into()));
    }
    if s.version != VERSION {
        return Err(corrupt(format!("snapshot version {} (this build reads {VERSION})", s.version)));
    }
    Ok(Snapshot {
        servers: s.servers.into_iter().map(from_wire).collect(),
        registry: s.registry.into_iter().map(from_wire).collect(),
        rules: s
            .rules
            .into_iter()
            .map(|g| GroupRule { group_id: g.group_id, allow_ip_rule: g.allow_ip_rule, group_name: g.group_name })
            .collect(),
        priorities: s
            .priorities
            .into_iter()
            .map(|p| PriorityRow { group_list: p.group_list, station: p.station })
            .collect(),
        saved_at: s.saved_at,
    })
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the new one, never half:
/// a temporary file beside it, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let io = |source| SnapshotError::Io { path: path.to_owned(), source };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp_name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Makes the rename durable; not all filesystems allow it, and losing only the rename
        // leaves the previous snapshot, which is still valid.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads the snapshot at `path`.
pub fn read(path: &Path) -> Result<Snapshot, SnapshotError> {
    let bytes = std::fs::read(path).map_err(|source| SnapshotError::Io { path: path.to_owned(), source })?;
    decode(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage_is_an_error() {
        let row = RouteRow {
            server_id: 3,
            servant: "A.S.Obj".into(),
            endpoint: "tcp -h h -p 1".into(),
            ..Default::default()
        };
        let rules = [GroupRule { group_id: 1, allow_ip_rule: "10.*".into(), group_name: "g".into() }];
        let prio = [PriorityRow { group_list: "1".into(), station: "s".into() }];
        let bytes = encode(&[&row], std::slice::from_ref(&row), &rules, &prio, "2026-01-01 00:00:00");
        let s = decode(&bytes, Path::new("x")).expect("decodes");
        assert_eq!(s.servers, vec![row.clone()]);
        assert_eq!(s.registry, vec![row]);
        assert_eq!(s.rules, rules);
        assert_eq!(s.priorities, prio);
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut], Path::new("x")).is_err(), "cut at {cut}");
        }
        let other = RouteSnapshot { magic: "something else".into(), version: 1, ..Default::default() }.encode();
        let err = decode(&other, Path::new("x")).expect_err("wrong magic");
        assert!(err.to_string().contains("not a route snapshot"), "{err}");
    }
}
