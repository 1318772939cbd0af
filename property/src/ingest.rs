//! What tarsproperty does with one entry of `reportPropMsg`, sans-IO: upstream's ingest rules
//! (`PropertyServer/PropertyImp.cpp`), the per-key set of policy values
//! (`PropertyServer/PropertyHashMap.h`) and one row of the hourly table
//! (`PropertyServer/PropertyDbManager.cpp`).
//!
//! Differences from upstream, on purpose:
//! - A bad value is rejected on its own and reported; the rest of the entry, and of the
//!   request, is kept (upstream stores anything and crashes later on some of it).
//! - Values of the same policy within one entry are merged; upstream stores a new key's body
//!   verbatim, duplicates included, and merges only into an existing key.
//! - A key holds at most [`MAX_POLICIES_PER_KEY`] policies, so unknown policy names cannot grow
//!   it without bound.
//! - Text is cut to the column widths and characters outside the BMP are replaced when the key
//!   is built (see `tars_monitor::text::column_text` for why), which also bounds what one
//!   hostile key can cost.

use tars_monitor::text::{column_text, fit};

use tars_protocol::tars::{StatPropMsgBody, StatPropMsgHead};
use tars_sql::Value;

use crate::policy::{Policy, PolicyError, PropValue};

/// Widths (in characters) of the text columns of `property_table`
/// (`tars_sql::schema::monitor`); a test checks them against the schema.
mod width {
    pub(super) const F_TFLAG: usize = 8;
    pub(super) const MASTER_NAME: usize = 128;
    pub(super) const MASTER_IP: usize = 16;
    pub(super) const PROPERTY_NAME: usize = 100;
    pub(super) const SET_NAME: usize = 15;
    pub(super) const SET_AREA: usize = 15;
    pub(super) const SET_ID: usize = 15;
    pub(super) const POLICY: usize = 20;
    pub(super) const VALUE: usize = 255;
}

/// The most policies one key holds: the six known ones and a few unknown ones.
pub const MAX_POLICIES_PER_KEY: usize = 16;

/// The aggregation key of one property: `StatPropMsgHead` without `sContainer` and
/// `iPropertyVer` (upstream drops both), with `ip` the reporter's connection IP. `Hash + Eq`,
/// so a shard can keep a `HashMap<PropKey, PropEntry>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PropKey {
    /// Reporting module (`master_name`).
    pub module_name: String,
    /// The reporter's connection IP (`master_ip`).
    pub ip: String,
    /// Property name.
    pub property_name: String,
    /// Set name.
    pub set_name: String,
    /// Set area.
    pub set_area: String,
    /// Set group id.
    pub set_id: String,
}

impl PropKey {
    /// Bytes the key owns on the heap (memory budget accounting).
    pub fn heap_bytes(&self) -> usize {
        [&self.module_name, &self.ip, &self.property_name, &self.set_name, &self.set_area, &self.set_id]
            .iter()
            .map(|s| s.capacity())
            .sum()
    }
}

/// The values of one key, one per policy, in the order the policies were first seen. A short
/// vector rather than a map: a property has one or two policies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropEntry {
    values: Vec<(Policy, PropValue)>,
}

impl PropEntry {
    /// Merges `value` into this key's value for `policy`, or adds it when the policy is new.
    ///
    /// Errors leave the entry unchanged: the merge failed ([`PropValue::merge`]), or the
    /// policy is new and [`MAX_POLICIES_PER_KEY`] are already held.
    pub fn add(&mut self, policy: Policy, value: PropValue) -> Result<(), PolicyError> {
        if let Some((_, existing)) = self.values.iter_mut().find(|(p, _)| *p == policy) {
            return existing.merge(value);
        }
        if self.values.len() >= MAX_POLICIES_PER_KEY {
            return Err(PolicyError::TooManyPolicies { max: MAX_POLICIES_PER_KEY });
        }
        self.values.push((policy, value));
        Ok(())
    }

    /// Merges every value of `other` (a newer report of the same key) into this one, policy
    /// by policy. The values that could not be merged are returned and were not applied; the
    /// rest were.
    pub fn merge(&mut self, other: PropEntry) -> Vec<PolicyError> {
        let mut errors = Vec::new();
        for (policy, value) in other.values {
            if let Err(e) = self.add(policy, value) {
                errors.push(e);
            }
        }
        errors
    }

    /// Bytes the entry owns on the heap (memory budget accounting).
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * size_of::<(Policy, PropValue)>()
            + self.values.iter().map(|(p, v)| p.heap_bytes() + v.heap_bytes()).sum::<usize>()
    }

    /// `(policy, value)`, one per row to write.
    pub fn iter(&self) -> impl Iterator<Item = (&Policy, &PropValue)> + '_ {
        self.values.iter().map(|(p, v)| (p, v))
    }

    /// Number of policies held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when no value is held (every value of the report was rejected); such an entry
    /// should not be stored.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// One value of a report that was not kept.
#[derive(Debug, Clone, PartialEq)]
pub struct RejectedValue {
    /// Its position in `StatPropMsgBody::vInfo`.
    pub index: usize,
    /// Why.
    pub error: PolicyError,
}

/// One report entry after [`normalize`]: the key, the values that were kept, and the ones that
/// were not. There is no whole-entry failure: a bad value never costs the others.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizedProp {
    /// The aggregation key.
    pub key: PropKey,
    /// The valid values, merged per policy.
    pub entry: PropEntry,
    /// The values that were rejected, for the caller to log and count.
    pub rejected: Vec<RejectedValue>,
}

/// Applies upstream's ingest rules to one borrowed entry: `ip` := `peer_ip`, `sContainer` and
/// `iPropertyVer` dropped, text fitted to the columns; then each value is parsed for its
/// policy ([`PropValue::parse`]) and merged into the entry, and each failure is reported with
/// its position. Borrowing costs a copy of the head; see [`normalize_owned`].
pub fn normalize(head: &StatPropMsgHead, body: &StatPropMsgBody, peer_ip: &str) -> NormalizedProp {
    normalize_owned(head.clone(), body, peer_ip)
}

/// [`normalize`], taking the head by value so the decoded strings become the key's.
pub fn normalize_owned(head: StatPropMsgHead, body: &StatPropMsgBody, peer_ip: &str) -> NormalizedProp {
    let mut ip = head.ip;
    ip.clear();
    ip.push_str(peer_ip);
    let key = PropKey {
        module_name: fit(head.module_name, width::MASTER_NAME),
        ip: fit(ip, width::MASTER_IP),
        property_name: fit(head.property_name, width::PROPERTY_NAME),
        set_name: fit(head.set_name, width::SET_NAME),
        set_area: fit(head.set_area, width::SET_AREA),
        set_id: fit(head.set_id, width::SET_ID),
    };
    with_values(key, body)
}

fn with_values(key: PropKey, body: &StatPropMsgBody) -> NormalizedProp {
    let mut entry = PropEntry { values: Vec::with_capacity(body.v_info.len().min(MAX_POLICIES_PER_KEY)) };
    let mut rejected = Vec::new();
    for (index, info) in body.v_info.iter().enumerate() {
        let added = Policy::parse(&info.policy).and_then(|policy| {
            let value = PropValue::parse(&policy, &info.value)?;
            entry.add(policy, value)
        });
        if let Err(error) = added {
            rejected.push(RejectedValue { index, error });
        }
    }
    NormalizedProp { key, entry, rejected }
}

/// One row of the hourly property table for one (key, policy), in exactly
/// `tars_sql::schema::monitor::PROPERTY_COLUMNS` order; `f_date` and `tflag` are the window's
/// label. `value` is [`PropValue::render`] (the average for `Avg`); all text is fitted to the
/// columns.
pub fn property_row(key: &PropKey, policy: &Policy, value: &PropValue, f_date: &str, tflag: &str) -> Vec<Value> {
    let text = |s: &str, w| Value::Text(column_text(s, w).into_owned());
    vec![
        Value::Text(f_date.to_owned()),
        text(tflag, width::F_TFLAG),
        text(&key.module_name, width::MASTER_NAME),
        text(&key.ip, width::MASTER_IP),
        text(&key.property_name, width::PROPERTY_NAME),
        text(&key.set_name, width::SET_NAME),
        text(&key.set_area, width::SET_AREA),
        text(&key.set_id, width::SET_ID),
        text(policy.as_str(), width::POLICY),
        Value::Text(fit(value.render(), width::VALUE)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use tars_protocol::tars::StatPropInfo;
    use tars_sql::schema::monitor::{property_table, PROPERTY_COLUMNS};
    use tars_sql::schema::ColType;

    fn head() -> StatPropMsgHead {
        StatPropMsgHead {
            module_name: "App.Server".into(),
            ip: "127.0.0.1".into(),
            property_name: "queue".into(),
            set_name: "s".into(),
            set_area: "a".into(),
            set_id: "1".into(),
            s_container: "container".into(),
            i_property_ver: 2,
        }
    }

    fn body(values: &[(&str, &str)]) -> StatPropMsgBody {
        StatPropMsgBody {
            v_info: values.iter().map(|(p, v)| StatPropInfo { policy: (*p).into(), value: (*v).into() }).collect(),
        }
    }

    fn rendered(entry: &PropEntry) -> Vec<(String, String)> {
        entry.iter().map(|(p, v)| (p.as_str().to_owned(), v.render())).collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
    }

    #[test]
    fn ip_is_the_peers_and_container_and_version_are_dropped() {
        let n = normalize(&head(), &body(&[("Sum", "3")]), "10.9.8.7");
        assert_eq!(
            n.key,
            PropKey {
                module_name: "App.Server".into(),
                ip: "10.9.8.7".into(),
                property_name: "queue".into(),
                set_name: "s".into(),
                set_area: "a".into(),
                set_id: "1".into(),
            }
        );
        let mut other = head();
        other.s_container = "elsewhere".into();
        other.i_property_ver = 1;
        other.ip = "1.2.3.4".into();
        assert_eq!(normalize(&other, &body(&[]), "10.9.8.7").key, n.key);
        assert!(n.rejected.is_empty());
    }

    #[test]
    fn owned_and_borrowed_agree() {
        let b = body(&[("Sum", "3"), ("Avg", ""), ("Distr", "1|2")]);
        assert_eq!(normalize(&head(), &b, "10.9.8.7"), normalize_owned(head(), &b, "10.9.8.7"));
    }

    #[test]
    fn bad_values_are_reported_and_the_rest_kept() {
        let n = normalize(
            &head(),
            &body(&[("Sum", "3"), ("Avg", ""), ("Max", "x"), ("Count", "2"), ("Distr", "1|2,3"), ("Sum", "4")]),
            "p",
        );
        assert_eq!(rendered(&n.entry), pairs(&[("Sum", "7"), ("Count", "2")]));
        let indexes: Vec<usize> = n.rejected.iter().map(|r| r.index).collect();
        assert_eq!(indexes, vec![1, 2, 4]);
        assert!(matches!(n.rejected[0].error, PolicyError::InvalidAvg { .. }));
        assert!(matches!(n.rejected[1].error, PolicyError::NotAnInteger { policy: "Max", .. }));
        assert!(matches!(n.rejected[2].error, PolicyError::InvalidDistr { .. }));
    }

    #[test]
    fn duplicate_policies_in_one_report_merge() {
        let n = normalize(
            &head(),
            &body(&[
                ("Avg", "1"),
                ("Distr", "a|1,b|1"),
                ("Avg", "2"),
                ("Distr", "a|2,c|1"),
                ("X", "first"),
                ("X", "2nd"),
            ]),
            "p",
        );
        assert_eq!(rendered(&n.entry), pairs(&[("Avg", "1.5"), ("Distr", "a|1,b|1"), ("X", "first")]));
        assert_eq!(n.rejected.len(), 1);
        assert_eq!(n.rejected[0].index, 3);
        assert!(matches!(n.rejected[0].error, PolicyError::DistrMismatch { .. }));
    }

    #[test]
    fn policies_per_key_are_capped() {
        let names: Vec<String> = (0..MAX_POLICIES_PER_KEY + 2).map(|i| format!("P{i}")).collect();
        let values: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "v")).collect();
        let n = normalize(&head(), &body(&values), "p");
        assert_eq!(n.entry.len(), MAX_POLICIES_PER_KEY);
        assert_eq!(n.rejected.len(), 2);
        assert!(n.rejected.iter().all(|r| r.error == PolicyError::TooManyPolicies { max: MAX_POLICIES_PER_KEY }));
        // A known policy is still merged into a full entry.
        let mut entry = n.entry;
        assert!(entry.add(Policy::Other("P0".into()), PropValue::Other("w".into())).is_ok());
    }

    #[test]
    fn entries_merge_across_reports_and_report_failures() {
        let mut a = normalize(&head(), &body(&[("Sum", "1"), ("Distr", "a|1")]), "p").entry;
        let b = normalize(&head(), &body(&[("Sum", "2"), ("Distr", "b|1"), ("Min", "5")]), "p").entry;
        let errors = a.merge(b);
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0], PolicyError::DistrMismatch { .. }));
        assert_eq!(rendered(&a), pairs(&[("Sum", "3"), ("Distr", "a|1"), ("Min", "5")]));
        assert!(!a.is_empty());
        assert!(normalize(&head(), &body(&[("Avg", "")]), "p").entry.is_empty());
    }

    #[test]
    fn key_text_is_fitted_to_the_columns() {
        let mut h = head();
        h.module_name = "m".repeat(200);
        h.property_name = "p😀".repeat(60);
        h.set_name = "set-name-longer-than-15".into();
        let n = normalize(&h, &body(&[]), "2001:db8:0:0:0:0:0:1");
        assert_eq!(n.key.module_name, "m".repeat(128));
        assert_eq!(n.key.property_name, "p\u{FFFD}".repeat(50));
        assert_eq!(n.key.set_name, "set-name-longer");
        assert_eq!(n.key.ip, "2001:db8:0:0:0:0");
        assert_eq!(normalize_owned(h, &body(&[]), "2001:db8:0:0:0:0:0:1").key, n.key);
    }

    #[test]
    fn row_has_exact_values_in_column_order() {
        let n = normalize(&head(), &body(&[("Avg", "10=4"), ("Avg", "3"), ("Weird😀", "v😀")]), "10.9.8.7");
        let rows: Vec<Vec<Value>> =
            n.entry.iter().map(|(p, v)| property_row(&n.key, p, v, "2025-05-26", "0960")).collect();
        let t = |s: &str| Value::Text(s.to_owned());
        let common = [
            ("f_date", t("2025-05-26")),
            ("f_tflag", t("0960")),
            ("master_name", t("App.Server")),
            ("master_ip", t("10.9.8.7")),
            ("property_name", t("queue")),
            ("set_name", t("s")),
            ("set_area", t("a")),
            ("set_id", t("1")),
        ];
        let tails =
            [[("policy", t("Avg")), ("value", t("2.6"))], [("policy", t("Weird\u{FFFD}")), ("value", t("v\u{FFFD}"))]];
        assert_eq!(rows.len(), 2);
        for (row, tail) in rows.iter().zip(&tails) {
            assert_eq!(row.len(), PROPERTY_COLUMNS.len());
            let expected: Vec<&(&str, Value)> = common.iter().chain(tail.iter()).collect();
            assert_eq!(expected.len(), PROPERTY_COLUMNS.len());
            for ((col, value), (name, want)) in PROPERTY_COLUMNS.iter().zip(row).zip(expected) {
                assert_eq!(col, name);
                assert_eq!(value, want, "{col}");
            }
        }
    }

    #[test]
    fn column_text_copy_matches_the_rules() {
        assert!(matches!(column_text("abcd", 3), Cow::Borrowed("abc")));
        assert!(matches!(column_text("é中x", 2), Cow::Borrowed("é中")));
        assert_eq!(column_text("a😀b", 10), "a\u{FFFD}b");
        assert_eq!(column_text("😀😀😀", 2), "\u{FFFD}\u{FFFD}");
        assert_eq!(column_text("abc😀", 3), "abc");
        assert_eq!(column_text("abc", 0), "");
    }

    #[test]
    fn widths_match_the_schema() {
        let table = property_table("t");
        for (name, w) in [
            ("f_tflag", width::F_TFLAG),
            ("master_name", width::MASTER_NAME),
            ("master_ip", width::MASTER_IP),
            ("property_name", width::PROPERTY_NAME),
            ("set_name", width::SET_NAME),
            ("set_area", width::SET_AREA),
            ("set_id", width::SET_ID),
            ("policy", width::POLICY),
            ("value", width::VALUE),
        ] {
            let col = table.column(name).expect(name);
            assert_eq!(col.ty, ColType::Varchar(w as u16), "{name}");
        }
        assert_eq!(width::VALUE, crate::policy::MAX_VALUE_CHARS);
        assert_eq!(width::POLICY, crate::policy::MAX_POLICY_CHARS);
    }
}
