//! What the loader has seen of every `t_server_conf` and `t_adapter_conf` row: its id, the
//! server it belongs to and its `registry_timestamp`. Sans-IO.
//!
//! A timestamp is taken when a statement runs, not when its transaction commits, so "rows
//! stamped since the last poll" misses a transaction that commits later than the look-back,
//! and a row whose stamp was set by hand to an old time. Comparing every row's stamp with
//! the one last seen finds both, and deletions, but reading every row each poll is too dear.
//! So the database sums instead (row count, id sum, stamp sum per table, [`Totals`]), and
//! the loader compares them with the sums of what it has seen ([`Stamps::totals`]): equal
//! sums mean nothing was missed; otherwise one read of every row's id and stamp
//! ([`Stamps::replace`]) names exactly the servers whose rows were added, removed, moved or
//! restamped. Rows the change query returns update the seen stamps first
//! ([`Stamps::observe`]), so ordinary changes never cause that read.

use std::collections::{BTreeSet, HashMap};

use super::master::ServerKey;

/// The two tables whose rows make routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// `t_server_conf`.
    Server = 0,
    /// `t_adapter_conf`.
    Adapter = 1,
}

/// One row's identity and stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// Which table.
    pub table: Table,
    /// The row's `id`.
    pub id: i64,
    /// `(application, server_name)` of the row.
    pub key: ServerKey,
    /// `registry_timestamp` in seconds as the database converts it (0 for NULL).
    pub at: i64,
}

/// `COUNT(*)`, `SUM(id)` and the sum of stamps (seconds) of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Rows.
    pub rows: i64,
    /// Sum of ids: moves on an insert or delete even when another keeps the count.
    pub ids: i64,
    /// Sum of stamps: moves when a row that was not seen changing got a new stamp.
    pub stamps: i64,
}

/// [`Totals`] of `t_server_conf` and of `t_adapter_conf`.
pub type TableTotals = [Totals; 2];

/// The stamps last seen, by table and id.
#[derive(Debug, Default)]
pub struct Stamps {
    rows: [HashMap<i64, (ServerKey, i64)>; 2],
}

impl Stamps {
    /// Replaces everything with a read of every row; returns the servers whose rows differ
    /// from what was seen (a row added, removed, moved to another server or restamped).
    pub fn replace(&mut self, all: Vec<Stamp>) -> BTreeSet<ServerKey> {
        let mut fresh: [HashMap<i64, (ServerKey, i64)>; 2] = Default::default();
        for s in all {
            fresh[s.table as usize].insert(s.id, (s.key, s.at));
        }
        let mut changed = BTreeSet::new();
        for (old, new) in self.rows.iter().zip(&fresh) {
            for (id, (key, at)) in new {
                match old.get(id) {
                    Some((k, a)) if k == key && a == at => {}
                    Some((k, _)) => {
                        changed.insert(k.clone());
                        changed.insert(key.clone());
                    }
                    None => {
                        changed.insert(key.clone());
                    }
                }
            }
            changed.extend(old.iter().filter(|(id, _)| !new.contains_key(id)).map(|(_, (k, _))| k.clone()));
        }
        self.rows = fresh;
        changed
    }

    /// Records rows the change query returned; returns their servers, and the server a row
    /// belonged to before, when it moved.
    pub fn observe(&mut self, rows: Vec<Stamp>) -> BTreeSet<ServerKey> {
        let mut changed = BTreeSet::new();
        for s in rows {
            changed.insert(s.key.clone());
            if let Some((old, _)) = self.rows[s.table as usize].insert(s.id, (s.key, s.at)) {
                changed.insert(old);
            }
        }
        changed
    }

    /// The sums the database would give if it held exactly the rows seen.
    pub fn totals(&self) -> TableTotals {
        let sum = |rows: &HashMap<i64, (ServerKey, i64)>| {
            rows.iter().fold(Totals::default(), |t, (id, (_, at))| Totals {
                rows: t.rows.wrapping_add(1),
                ids: t.ids.wrapping_add(*id),
                stamps: t.stamps.wrapping_add(*at),
            })
        };
        [sum(&self.rows[0]), sum(&self.rows[1])]
    }

    /// Rows seen, both tables.
    pub fn len(&self) -> usize {
        self.rows[0].len() + self.rows[1].len()
    }

    /// Whether no row has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(table: Table, id: i64, server: &str, at: i64) -> Stamp {
        Stamp { table, id, key: ("A".into(), server.into()), at }
    }

    fn keys(v: &[&str]) -> BTreeSet<ServerKey> {
        v.iter().map(|s| ("A".to_owned(), (*s).to_owned())).collect()
    }

    #[test]
    fn a_full_read_names_added_removed_moved_and_restamped_servers() {
        let mut s = Stamps::default();
        let base = vec![
            st(Table::Server, 1, "S1", 100),
            st(Table::Server, 2, "S2", 100),
            st(Table::Adapter, 1, "S1", 100),
            st(Table::Adapter, 2, "S3", 100),
        ];
        assert_eq!(s.replace(base.clone()), keys(&["S1", "S2", "S3"]));
        assert_eq!(s.replace(base.clone()), keys(&[]));
        // A late commit stamped earlier than the last poll, a deleted adapter, a new server,
        // an adapter moved from S1 to S4; adapter id 2 and server id 1 share nothing.
        let next = vec![
            st(Table::Server, 1, "S1", 100),
            st(Table::Server, 2, "S2", 90),
            st(Table::Server, 3, "S5", 100),
            st(Table::Adapter, 1, "S4", 100),
        ];
        assert_eq!(s.replace(next), keys(&["S1", "S2", "S3", "S4", "S5"]));
    }

    #[test]
    fn totals_follow_what_was_observed() {
        let mut s = Stamps::default();
        s.replace(vec![st(Table::Server, 1, "S1", 100), st(Table::Adapter, 7, "S1", 50)]);
        assert_eq!(s.totals(), [Totals { rows: 1, ids: 1, stamps: 100 }, Totals { rows: 1, ids: 7, stamps: 50 }]);
        assert_eq!(
            s.observe(vec![st(Table::Server, 1, "S1", 130), st(Table::Server, 4, "S2", 130)]),
            keys(&["S1", "S2"])
        );
        assert_eq!(s.totals()[0], Totals { rows: 2, ids: 5, stamps: 260 });
        // A row observed under another server names both.
        assert_eq!(s.observe(vec![st(Table::Adapter, 7, "S9", 131)]), keys(&["S1", "S9"]));
        assert_eq!(s.len(), 3);
    }
}
