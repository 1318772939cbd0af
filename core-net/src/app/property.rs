//! Properties, as TarsCpp's `PropertyReport` keeps and sends them to tarsproperty
//! (`PropertyF.reportPropMsg`).
//!
//! A [`Property`] is a name and its policies; [`Property::report`] adds a value from any
//! thread (shards included) with a few relaxed atomic operations, no lock. Every
//! `report-interval` the duty thread takes each property's values (resetting them) and
//! sends one `StatPropMsgHead` per property with one `StatPropInfo` per policy:
//!
//! | policy | value sent |
//! |---|---|
//! | `Sum` | the sum of the interval's values |
//! | `Count` | how many values were reported |
//! | `Max` / `Min` | the largest / smallest value (`Min` is not sent when it is 0, as TarsCpp) |
//! | `Avg` | sum / count |
//! | `Distr` | `b1\|n1,b2\|n2,…`: for each bound, how many values were at most that bound and above the previous one (values above the last bound count in the last) |
//!
//! Whole numbers are written without a fraction (`12`), as TarsCpp writes its integers;
//! other values with up to 6 decimals. A property that got no value in an interval is not
//! sent. Unlike tarsproperty from upstream, ours keeps the fraction (§ hardening).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tars_protocol::tars::{StatPropInfo, StatPropMsgBody, StatPropMsgHead};

use super::stat::Module;

/// How a property's values are combined.
#[derive(Debug, Clone, PartialEq)]
pub enum Policy {
    /// The sum.
    Sum,
    /// How many values.
    Count,
    /// The largest.
    Max,
    /// The smallest.
    Min,
    /// The mean.
    Avg,
    /// A histogram over these upper bounds (ascending).
    Distr(Vec<f64>),
}

impl Policy {
    /// The policy's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Sum => "Sum",
            Policy::Count => "Count",
            Policy::Max => "Max",
            Policy::Min => "Min",
            Policy::Avg => "Avg",
            Policy::Distr(_) => "Distr",
        }
    }
}

/// An `f64` in an `AtomicU64`.
#[derive(Debug)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn new(v: f64) -> AtomicF64 {
        AtomicF64(AtomicU64::new(v.to_bits()))
    }

    fn update(&self, f: impl Fn(f64) -> f64) {
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| Some(f(f64::from_bits(b)).to_bits()));
    }

    fn swap(&self, v: f64) -> f64 {
        f64::from_bits(self.0.swap(v.to_bits(), Ordering::Relaxed))
    }
}

/// One property's values since the last report. Shared by every thread that reports.
#[derive(Debug)]
struct Values {
    name: String,
    policies: Vec<Policy>,
    count: AtomicU64,
    sum: AtomicF64,
    max: AtomicF64,
    min: AtomicF64,
    /// One counter per bound of the (first) `Distr` policy.
    distr: Vec<AtomicU64>,
    bounds: Vec<f64>,
}

/// A property handle: cheap to clone, `Send + Sync`; report from anywhere.
#[derive(Debug, Clone)]
pub struct Property(Arc<Values>);

impl Property {
    /// Adds `value`.
    pub fn report(&self, value: f64) {
        let v = &self.0;
        v.sum.update(|s| s + value);
        v.max.update(|m| m.max(value));
        v.min.update(|m| m.min(value));
        if !v.bounds.is_empty() {
            let i = v.bounds.iter().position(|&b| value <= b).unwrap_or(v.bounds.len() - 1);
            v.distr[i].fetch_add(1, Ordering::Relaxed);
        }
        // Last, so a report taken concurrently never sees a count without its value.
        v.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The property's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

/// Every property of one application. `Send + Sync`.
#[derive(Debug, Default)]
pub struct Properties {
    all: Mutex<BTreeMap<String, Property>>,
}

impl Properties {
    /// The property `name` with `policies`, created on first use; asking again for a name
    /// gives the same property (with its first policies).
    pub fn create(&self, name: &str, policies: &[Policy]) -> Property {
        let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = all.get(name) {
            return p.clone();
        }
        let bounds = policies
            .iter()
            .find_map(|p| match p {
                Policy::Distr(b) => Some(b.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let p = Property(Arc::new(Values {
            name: name.to_owned(),
            policies: policies.to_vec(),
            count: AtomicU64::new(0),
            sum: AtomicF64::new(0.0),
            max: AtomicF64::new(f64::NEG_INFINITY),
            min: AtomicF64::new(f64::INFINITY),
            distr: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            bounds,
        }));
        all.insert(name.to_owned(), p.clone());
        p
    }

    /// Takes every property's values (resetting them) as one report, for `module`.
    pub fn take(&self, module: &Module) -> BTreeMap<StatPropMsgHead, StatPropMsgBody> {
        let all: Vec<Property> = self.all.lock().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
        let set = module.set.clone().unwrap_or_default();
        let mut out = BTreeMap::new();
        for p in all {
            let v = &p.0;
            let count = v.count.swap(0, Ordering::Relaxed);
            let sum = v.sum.swap(0.0);
            let max = v.max.swap(f64::NEG_INFINITY);
            let min = v.min.swap(f64::INFINITY);
            let distr: Vec<u64> = v.distr.iter().map(|c| c.swap(0, Ordering::Relaxed)).collect();
            if count == 0 {
                continue;
            }
            let mut info = Vec::new();
            for policy in &v.policies {
                let value = match policy {
                    Policy::Sum => number(sum),
                    Policy::Count => count.to_string(),
                    Policy::Max => number(max),
                    Policy::Min if min == 0.0 => continue,
                    Policy::Min => number(min),
                    Policy::Avg => number(sum / count as f64),
                    Policy::Distr(_) => v
                        .bounds
                        .iter()
                        .zip(&distr)
                        .map(|(b, n)| format!("{}|{n}", number(*b)))
                        .collect::<Vec<_>>()
                        .join(","),
                };
                info.push(StatPropInfo { policy: policy.name().to_owned(), value });
            }
            let head = StatPropMsgHead {
                module_name: module.with_set(),
                property_name: v.name.clone(),
                set_name: set.0.clone(),
                set_area: set.1.clone(),
                set_id: set.2.clone(),
                i_property_ver: 2,
                ..StatPropMsgHead::default()
            };
            out.insert(head, StatPropMsgBody { v_info: info });
        }
        out
    }
}

/// `12` for whole numbers, else up to 6 decimals without trailing zeros.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_as_sent() {
        let props = Properties::default();
        let all = [Policy::Sum, Policy::Count, Policy::Max, Policy::Min, Policy::Avg, Policy::Distr(vec![10.0, 100.0])];
        let p = props.create("latency", &all);
        for v in [1.0, 5.0, 50.0, 500.0, 0.25] {
            p.report(v);
        }
        let _idle = props.create("idle", &[Policy::Sum]);
        let module = Module { name: "A.B".into(), ..Module::default() };
        let report = props.take(&module);
        assert_eq!(report.len(), 1, "an idle property is not sent");
        let (head, body) = report.iter().next().expect("one");
        assert_eq!(
            (head.module_name.as_str(), head.property_name.as_str(), head.i_property_ver),
            ("A.B", "latency", 2)
        );
        let got: Vec<(&str, &str)> = body.v_info.iter().map(|i| (i.policy.as_str(), i.value.as_str())).collect();
        assert_eq!(
            got,
            [
                ("Sum", "556.25"),
                ("Count", "5"),
                ("Max", "500"),
                ("Min", "0.25"),
                ("Avg", "111.25"),
                ("Distr", "10|3,100|2")
            ]
        );
        assert!(props.take(&module).is_empty(), "values reset after a report");
        p.report(0.0);
        let report = props.take(&module);
        let body = report.values().next().expect("one");
        assert!(body.v_info.iter().all(|i| i.policy != "Min"), "a zero minimum is not sent");
    }
}
