//! What differs between tarsquerystat and tarsqueryproperty: the data they read, where its
//! databases are configured, and which of the hourly table's columns a request may name.
//!
//! The allow lists come from the table definitions the writers create
//! (`tars_sql::schema::monitor::{stat_table, property_table}`): a column a request names must
//! be one of them, so nothing but a known identifier ever reaches the SQL text.

use tars_sql::schema::monitor::{property_table, stat_table, PROPERTY_PREFIX, STAT_PREFIX};
use tars_sql::schema::Table;

/// The two query services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// tarsquerystat: call statistics (`tars_stat`).
    Stat,
    /// tarsqueryproperty: custom metrics (`tars_property`).
    Property,
}

/// Columns never named by a request: the insert time, and stat's latency histogram (text that
/// neither sums nor groups usefully).
const HIDDEN: &[&str] = &["stattime", "interv_count"];

/// Stat's columns that can be summed.
const STAT_INDEXES: &[&str] =
    &["succ_count", "timeout_count", "exce_count", "total_time", "ave_time", "maxrsp_time", "minrsp_time"];
/// Property's column that can be summed (text holding a number, as upstream sums it).
const PROPERTY_INDEXES: &[&str] = &["value"];

impl Kind {
    /// The `dataid` a request for this service carries (`tars_stat`, `tars_property`).
    pub fn dataid(self) -> &'static str {
        match self {
            Kind::Stat => "tars_stat",
            Kind::Property => "tars_property",
        }
    }

    /// The servant's name.
    pub fn servant(self) -> &'static str {
        match self {
            Kind::Stat => "tars.tarsquerystat.QueryObj",
            Kind::Property => "tars.tarsqueryproperty.QueryObj",
        }
    }

    /// The servant of the legacy JSON protocol (upstream before v2.1, TarsWeb up to 1.5.1):
    /// an adapter with `protocol=not_tars` ([`crate::legacy`]).
    pub fn legacy_servant(self) -> &'static str {
        match self {
            Kind::Stat => "tars.tarsquerystat.NoTarsObj",
            Kind::Property => "tars.tarsqueryproperty.NoTarsObj",
        }
    }

    /// What the legacy protocol sums when a request names no `indexs` (upstream:
    /// `succ_count`; property has only `value`).
    pub fn default_index(self) -> &'static str {
        match self {
            Kind::Stat => "succ_count",
            Kind::Property => "value",
        }
    }

    /// The server's name, for logs and the binary.
    pub fn server(self) -> &'static str {
        match self {
            Kind::Stat => "tarsquerystat",
            Kind::Property => "tarsqueryproperty",
        }
    }

    /// Where the databases are configured: the writer's own sections.
    pub fn db_root(self) -> &'static str {
        match self {
            Kind::Stat => "/tars/statdb",
            Kind::Property => "/tars/propertydb",
        }
    }

    /// The table prefix of a section without `tbname`.
    pub fn default_prefix(self) -> &'static str {
        match self {
            Kind::Stat => STAT_PREFIX,
            Kind::Property => PROPERTY_PREFIX,
        }
    }

    /// The hourly table as its writer creates it.
    pub fn table(self) -> Table {
        match self {
            Kind::Stat => stat_table("hour"),
            Kind::Property => property_table("hour"),
        }
    }

    /// The columns `indexs` may name (summed).
    pub fn indexes(self) -> Columns {
        let wanted = match self {
            Kind::Stat => STAT_INDEXES,
            Kind::Property => PROPERTY_INDEXES,
        };
        Columns(self.table().columns.iter().map(|c| c.name).filter(|c| wanted.contains(c)).collect())
    }

    /// The columns `groupby` may name: every other visible column.
    pub fn dimensions(self) -> Columns {
        let idx = self.indexes();
        Columns(
            self.table().columns.iter().map(|c| c.name).filter(|c| !HIDDEN.contains(c) && !idx.contains(c)).collect(),
        )
    }

    /// The columns a condition may name: dimensions and indexes.
    pub fn filterable(self) -> Columns {
        let mut all = self.dimensions().0;
        all.extend(self.indexes().0);
        Columns(all)
    }
}

/// A set of column names from the schema (few: a linear search is the fastest lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns(pub Vec<&'static str>);

impl Columns {
    /// The schema's own spelling of `name`, when it is one of these columns. The match is
    /// exact: `Master_Name` or `master_name ` are not columns.
    pub fn find(&self, name: &str) -> Option<&'static str> {
        self.0.iter().copied().find(|c| *c == name)
    }

    /// True when `name` is one of these columns.
    pub fn contains(&self, name: &str) -> bool {
        self.find(name).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_come_from_the_schema() {
        let dims = Kind::Stat.dimensions();
        for c in ["f_date", "f_tflag", "master_name", "slave_name", "interface_name", "master_ip", "slave_ip"] {
            assert!(dims.contains(c), "{c}");
        }
        assert!(!dims.contains("stattime") && !dims.contains("interv_count") && !dims.contains("succ_count"));
        assert_eq!(Kind::Stat.indexes().0.len(), STAT_INDEXES.len());
        let pdims = Kind::Property.dimensions();
        for c in ["f_date", "f_tflag", "master_name", "master_ip", "property_name", "policy", "set_name"] {
            assert!(pdims.contains(c), "{c}");
        }
        assert_eq!(Kind::Property.indexes().0, ["value"]);
        assert!(!pdims.contains("slave_name"));
        assert!(Kind::Stat.filterable().contains("succ_count"));
        assert_eq!(Kind::Stat.dimensions().find("master_name "), None);
    }
}
