//! Property values and how they merge, per policy (upstream `PropertyServer/PropertyHashMap.h`
//! for the merge, `PropertyServer/PropertyDbManager.cpp` for the text written to `value`).
//!
//! Upstream keeps every value as the client's string and re-parses it on each merge; we parse
//! once, on ingest, into a [`PropValue`], and render only when a row is written. Parsing is
//! where hostile or broken input is rejected, value by value, so that nothing later can fail
//! the way upstream does (`PropertyHashMap.h` indexes out of bounds on an empty `Avg` or a
//! mismatched `Distr`).
//!
//! Bounds: a value longer than [`MAX_VALUE_CHARS`] (the `varchar(255)` column) is rejected, as
//! is a `Distr` with more than [`MAX_DISTR_BUCKETS`] buckets, an unknown policy name longer
//! than [`MAX_POLICY_CHARS`] (the `varchar(20)` column), and an `Avg` of magnitude
//! [`AVG_ABS_LIMIT`] or more. Every rendered value fits the column.

use std::fmt::Write as _;

use crate::decimal::Decimal;

/// Longest value accepted, in characters: the `value` column is `varchar(255)`.
pub const MAX_VALUE_CHARS: usize = 255;
/// Most buckets accepted in one `Distr` value. TarsCpp clients send their ranges plus `max`.
/// [`MAX_VALUE_CHARS`] already implies it (64 items of `l|n` and 63 commas are 255
/// characters); the check stays so the bound holds if the column ever widens.
pub const MAX_DISTR_BUCKETS: usize = 64;
/// Longest policy name accepted, in characters: the `policy` column is `varchar(20)`. Only
/// unknown policies can be that long; the bound keeps their names from costing memory.
pub const MAX_POLICY_CHARS: usize = 20;
/// `Avg` values (sums, with `a=c`) must be smaller than this in magnitude: `%f` prints every
/// integer digit, so an average of 1e300 would not fit `varchar(255)`. No real metric is near.
pub const AVG_ABS_LIMIT: f64 = 1e100;

/// Why a value was rejected, or could not be merged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    /// The value does not fit the `value` column.
    #[error("value of {chars} characters is longer than {max}")]
    ValueTooLong {
        /// Its length in characters (after merging, for a merge).
        chars: usize,
        /// [`MAX_VALUE_CHARS`].
        max: usize,
    },
    /// An unknown policy name that does not fit the `policy` column.
    #[error("policy name of {chars} characters is longer than {max}")]
    PolicyNameTooLong {
        /// Its length in characters.
        chars: usize,
        /// [`MAX_POLICY_CHARS`].
        max: usize,
    },
    /// A `Sum`, `Count`, `Max` or `Min` value, or a `Distr` count, that does not start with a
    /// number (an integer; for `Sum`, `Max` and `Min` also a decimal).
    #[error("{policy} value {value:?} does not start with an integer")]
    NotAnInteger {
        /// The policy the value was given for.
        policy: &'static str,
        /// The value (at most [`MAX_VALUE_CHARS`] characters).
        value: String,
    },
    /// An `Avg` value that is not `a` or `a=c` (a finite number below [`AVG_ABS_LIMIT`],
    /// `c` an unsigned integer).
    #[error("Avg value {value:?} is invalid: {reason}")]
    InvalidAvg {
        /// The value (at most [`MAX_VALUE_CHARS`] characters).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `Distr` value that is not `label|count,label|count,…`.
    #[error("Distr value {value:?} is invalid: {reason}")]
    InvalidDistr {
        /// The value (at most [`MAX_VALUE_CHARS`] characters).
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `Distr` value with more than [`MAX_DISTR_BUCKETS`] buckets.
    #[error("Distr value has more than {max} buckets")]
    TooManyBuckets {
        /// [`MAX_DISTR_BUCKETS`].
        max: usize,
    },
    /// Two `Distr` values with different buckets; the existing value is left unchanged.
    #[error("Distr buckets differ: existing {existing:?}, new {new:?}")]
    DistrMismatch {
        /// The existing value's labels, comma-separated.
        existing: String,
        /// The new value's labels, comma-separated.
        new: String,
    },
    /// Values of two different policies were merged (a caller bug).
    #[error("cannot merge a {new} value into a {existing} value")]
    PolicyMismatch {
        /// The existing value's policy.
        existing: String,
        /// The new value's policy.
        new: String,
    },
    /// A key already holds as many policies as it may ([`crate::ingest::MAX_POLICIES_PER_KEY`]).
    #[error("more than {max} policies for one property")]
    TooManyPolicies {
        /// The bound.
        max: usize,
    },
}

/// How the values of one property are aggregated. Names are matched case-sensitively, exactly
/// as upstream's `PropertyHashMap::add` compares them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Sum (exact decimal).
    Sum,
    /// Integer sum of counts.
    Count,
    /// Maximum (exact decimal).
    Max,
    /// Minimum, exact decimal (clients already ignore zeros; the server does not).
    Min,
    /// Average, weighted by the counts clients send (1 when they send none).
    Avg,
    /// Histogram `label|count,…`, summed bucket by bucket.
    Distr,
    /// Any other name: upstream keeps the first value it receives.
    Other(String),
}

impl Policy {
    /// Bytes the name owns on the heap (memory budget accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            Policy::Other(name) => name.capacity(),
            _ => 0,
        }
    }

    /// The policy called `name`. Unknown names become [`Policy::Other`], unless they are
    /// longer than [`MAX_POLICY_CHARS`] characters.
    pub fn parse(name: &str) -> Result<Policy, PolicyError> {
        Ok(match name {
            "Sum" => Policy::Sum,
            "Count" => Policy::Count,
            "Max" => Policy::Max,
            "Min" => Policy::Min,
            "Avg" => Policy::Avg,
            "Distr" => Policy::Distr,
            other => {
                let chars = other.chars().count();
                if chars > MAX_POLICY_CHARS {
                    return Err(PolicyError::PolicyNameTooLong { chars, max: MAX_POLICY_CHARS });
                }
                Policy::Other(other.to_owned())
            }
        })
    }

    /// The name, as written to the `policy` column.
    pub fn as_str(&self) -> &str {
        match self {
            Policy::Sum => "Sum",
            Policy::Count => "Count",
            Policy::Max => "Max",
            Policy::Min => "Min",
            Policy::Avg => "Avg",
            Policy::Distr => "Distr",
            Policy::Other(name) => name,
        }
    }
}

/// A histogram: labels and their counts, in the client's order. The labels are kept joined by
/// `,` in one string (two allocations per value instead of one per bucket); they are never
/// empty and contain neither `,` nor `|`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Distr {
    labels: String,
    counts: Vec<i64>,
}

impl Distr {
    /// `(label, count)` in order.
    pub fn buckets(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.labels.split(',').zip(self.counts.iter().copied())
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.counts.len()
    }

    /// True when there is no bucket (never the case for a parsed value).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// Characters of the rendered value if the counts were `counts`.
    fn rendered_chars(&self, counts: impl Iterator<Item = i64>) -> usize {
        let pipes = self.counts.len();
        self.labels.chars().count() + pipes + counts.map(decimal_len).sum::<usize>()
    }

    fn parse(s: &str) -> Result<Distr, PolicyError> {
        let invalid = |reason| PolicyError::InvalidDistr { value: s.to_owned(), reason };
        let mut labels = String::with_capacity(s.len());
        let mut counts = Vec::new();
        // Empty items are skipped, as upstream's `sepstr` does.
        for item in s.split(',').filter(|item| !item.is_empty()) {
            if counts.len() == MAX_DISTR_BUCKETS {
                return Err(PolicyError::TooManyBuckets { max: MAX_DISTR_BUCKETS });
            }
            let (label, count) = item.split_once('|').ok_or_else(|| invalid("an item has no `|`"))?;
            if label.is_empty() {
                return Err(invalid("an item has an empty label"));
            }
            if count.contains('|') {
                return Err(invalid("an item has more than one `|`"));
            }
            let count =
                parse_ll(count).ok_or_else(|| PolicyError::NotAnInteger { policy: "Distr", value: s.to_owned() })?;
            if !labels.is_empty() {
                labels.push(',');
            }
            labels.push_str(label);
            counts.push(count);
        }
        if counts.is_empty() {
            return Err(invalid("no buckets"));
        }
        let distr = Distr { labels, counts };
        let chars = distr.rendered_chars(distr.counts.iter().copied());
        if chars > MAX_VALUE_CHARS {
            return Err(PolicyError::ValueTooLong { chars, max: MAX_VALUE_CHARS });
        }
        Ok(distr)
    }

    /// Adds `other`'s counts bucket by bucket, or leaves `self` unchanged when the buckets
    /// differ or the sum would not fit the column.
    fn merge(&mut self, other: &Distr) -> Result<(), PolicyError> {
        if self.labels != other.labels || self.counts.len() != other.counts.len() {
            return Err(PolicyError::DistrMismatch { existing: self.labels.clone(), new: other.labels.clone() });
        }
        let summed = || self.counts.iter().zip(&other.counts).map(|(a, b)| a.saturating_add(*b));
        let chars = self.rendered_chars(summed());
        if chars > MAX_VALUE_CHARS {
            return Err(PolicyError::ValueTooLong { chars, max: MAX_VALUE_CHARS });
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.saturating_add(*b);
        }
        Ok(())
    }
}

/// Characters of `v` in decimal.
fn decimal_len(v: i64) -> usize {
    let sign = usize::from(v < 0);
    let digits = v.unsigned_abs().checked_ilog10().map_or(1, |d| d as usize + 1);
    sign + digits
}

/// One aggregated value of one policy.
#[derive(Debug, Clone, PartialEq)]
pub enum PropValue {
    /// [`Policy::Sum`].
    Sum(Decimal),
    /// [`Policy::Count`].
    Count(i64),
    /// [`Policy::Max`].
    Max(Decimal),
    /// [`Policy::Min`].
    Min(Decimal),
    /// [`Policy::Avg`]: the weighted sum of the reported averages and the total weight.
    Avg {
        /// Sum of `a` over the merged values.
        sum: f64,
        /// Sum of `c` over the merged values (1 for a value without `=c`).
        count: u64,
    },
    /// [`Policy::Distr`].
    Distr(Distr),
    /// [`Policy::Other`]: the first value, verbatim.
    Other(String),
}

impl PropValue {
    /// Bytes the value owns on the heap (memory budget accounting).
    pub fn heap_bytes(&self) -> usize {
        match self {
            PropValue::Distr(d) => d.labels.capacity() + d.counts.capacity() * size_of::<i64>(),
            PropValue::Other(s) => s.capacity(),
            _ => 0,
        }
    }

    /// Parses one client value for `policy`.
    ///
    /// - `Count`: like upstream's `strto<long long>` (`atoll`, or `strtoll(…, 16)` when the
    ///   value starts with `0x`): leading whitespace, an optional sign, then digits; the rest
    ///   is ignored and out-of-range values saturate.
    /// - `Sum`, `Max`, `Min`: the same for integers, byte for byte, but a fraction and an
    ///   exponent are kept ([`Decimal::parse`]): upstream stores `1.25` as `1`, we store `1.25`.
    /// - Unlike upstream, a value with no digits at all is rejected instead of counting as 0
    ///   (a garbage `Min` would otherwise zero the minimum).
    /// - `Avg`: `a` (a client's own average, weight 1) or `a=c` (a sum and its count, as
    ///   upstream stores merged values); `a` must be a finite decimal number below
    ///   [`AVG_ABS_LIMIT`] in magnitude and `c` an unsigned integer. Anything else, including
    ///   an empty value, is rejected: upstream parses with `atof` (garbage → 0) and crashes on
    ///   an empty value.
    /// - `Distr`: `label|count,label|count,…`, empty items skipped; an item without `|`, with an
    ///   empty label or a second `|` is rejected (upstream indexes out of bounds).
    /// - Other policies: the value verbatim.
    ///
    /// Any value longer than [`MAX_VALUE_CHARS`] characters is rejected first.
    pub fn parse(policy: &Policy, s: &str) -> Result<PropValue, PolicyError> {
        if s.len() > MAX_VALUE_CHARS {
            let chars = s.chars().count();
            if chars > MAX_VALUE_CHARS {
                return Err(PolicyError::ValueTooLong { chars, max: MAX_VALUE_CHARS });
            }
        }
        let not_a_number = |name| PolicyError::NotAnInteger { policy: name, value: s.to_owned() };
        let num = |name| Decimal::parse(s).ok_or_else(|| not_a_number(name));
        Ok(match policy {
            Policy::Sum => PropValue::Sum(num("Sum")?),
            Policy::Count => PropValue::Count(parse_ll(s).ok_or_else(|| not_a_number("Count"))?),
            Policy::Max => PropValue::Max(num("Max")?),
            Policy::Min => PropValue::Min(num("Min")?),
            Policy::Avg => parse_avg(s)?,
            Policy::Distr => PropValue::Distr(Distr::parse(s)?),
            Policy::Other(_) => PropValue::Other(s.to_owned()),
        })
    }

    /// The policy this value belongs to, by name (for errors).
    fn policy_name(&self) -> &'static str {
        match self {
            PropValue::Sum(_) => "Sum",
            PropValue::Count(_) => "Count",
            PropValue::Max(_) => "Max",
            PropValue::Min(_) => "Min",
            PropValue::Avg { .. } => "Avg",
            PropValue::Distr(_) => "Distr",
            PropValue::Other(_) => "other",
        }
    }

    /// Merges `other` into `self` (existing ⊕ new) as upstream's `PropertyHashMap::add`:
    /// saturating sums for `Sum` and `Count`, max and min, `Avg` sums and counts added,
    /// `Distr` counts added bucket by bucket, and the first value kept for other policies.
    ///
    /// On error `self` is unchanged: `Distr` values whose labels differ
    /// ([`PolicyError::DistrMismatch`]) or whose sum would not fit the column, and values of
    /// two different policies.
    pub fn merge(&mut self, other: PropValue) -> Result<(), PolicyError> {
        match (self, other) {
            (PropValue::Sum(a), PropValue::Sum(b)) => *a = a.saturating_add(b),
            (PropValue::Count(a), PropValue::Count(b)) => *a = a.saturating_add(b),
            (PropValue::Max(a), PropValue::Max(b)) => *a = (*a).max(b),
            (PropValue::Min(a), PropValue::Min(b)) => *a = (*a).min(b),
            (PropValue::Avg { sum, count }, PropValue::Avg { sum: s, count: c }) => {
                *sum += s;
                *count = count.saturating_add(c);
            }
            (PropValue::Distr(a), PropValue::Distr(b)) => a.merge(&b)?,
            (PropValue::Other(_), PropValue::Other(_)) => {}
            (existing, new) => {
                return Err(PolicyError::PolicyMismatch {
                    existing: existing.policy_name().to_owned(),
                    new: new.policy_name().to_owned(),
                });
            }
        }
        Ok(())
    }

    /// The text written to the `value` column, as upstream writes it: integers in decimal
    /// (`Sum`/`Max`/`Min` with their fraction, without trailing zeros: [`Decimal::render`]);
    /// `Avg` as sum / count (the sum itself when the count is 0, as upstream) formatted like
    /// TarsCpp's `TC_Common::tostr(double)`: `%f` (six decimals), then trailing zeros and a
    /// trailing `.` removed (`1.500000` → `1.5`, `2.000000` → `2`, `1e-7` → `0`); `Distr` as
    /// `label|count,…`; other policies verbatim. Never longer than [`MAX_VALUE_CHARS`]
    /// characters for a parsed value.
    pub fn render(&self) -> String {
        match self {
            PropValue::Count(v) => v.to_string(),
            PropValue::Sum(v) | PropValue::Max(v) | PropValue::Min(v) => v.render(),
            PropValue::Avg { sum, count } => {
                let avg = if *count == 0 { *sum } else { *sum / *count as f64 };
                tostr_double(avg)
            }
            PropValue::Distr(d) => {
                let mut out = String::with_capacity(d.labels.len() + 8 * d.counts.len());
                for (i, (label, count)) in d.buckets().enumerate() {
                    if i != 0 {
                        out.push(',');
                    }
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{label}|{count}");
                }
                out
            }
            PropValue::Other(v) => v.clone(),
        }
    }
}

fn parse_avg(s: &str) -> Result<PropValue, PolicyError> {
    let invalid = |reason| PolicyError::InvalidAvg { value: s.to_owned(), reason };
    let (a, c) = match s.split_once('=') {
        Some((a, c)) => (a, Some(c)),
        None => (s, None),
    };
    let a = a.trim();
    if a.is_empty() {
        return Err(invalid("empty"));
    }
    let sum: f64 = a.parse().map_err(|_| invalid("not a number"))?;
    if !sum.is_finite() || sum.abs() >= AVG_ABS_LIMIT {
        return Err(invalid("not finite or too large"));
    }
    let count = match c {
        None => 1,
        Some(c) => c.trim().parse::<u64>().map_err(|_| invalid("the count after `=` is not an unsigned integer"))?,
    };
    Ok(PropValue::Avg { sum, count })
}

/// `TC_Common::tostr(double)`: `std::to_string` (`%f`), then trailing zeros removed, and the
/// `.` too when only zeros followed it. Rust's `{:.6}` rounds exactly like glibc's `%f`
/// (correctly rounded, ties to even). Non-finite values are spelled as glibc spells them.
fn tostr_double(v: f64) -> String {
    if v.is_nan() {
        return if v.is_sign_negative() { "-nan" } else { "nan" }.to_owned();
    }
    if v.is_infinite() {
        return if v < 0.0 { "-inf" } else { "inf" }.to_owned();
    }
    let mut s = format!("{v:.6}");
    if s.ends_with('0') {
        let kept = s.trim_end_matches('0').len();
        s.truncate(kept);
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Upstream's `TC_Common::strto<long long>`: `strtoll(s, 16)` when `s` starts with `0x`,
/// else `atoll(s)`, both saturating on overflow; `None` when no digit is found (where upstream
/// returns 0), except for a bare `0x`, which `strtoll` reads as the `0`.
fn parse_ll(s: &str) -> Option<i64> {
    if let Some(hex) = s.strip_prefix("0x") {
        let mut v: i64 = 0;
        for d in hex.chars().map_while(|c| c.to_digit(16)) {
            v = v.saturating_mul(16).saturating_add(i64::from(d));
        }
        return Some(v);
    }
    // C's isspace: space, \t, \n, \v, \f, \r.
    let s = s.trim_start_matches([' ', '\t', '\n', '\u{b}', '\u{c}', '\r']);
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, s.get(1..).unwrap_or("")),
        Some(b'+') => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    let mut any = false;
    for d in digits.bytes().map_while(|b| b.is_ascii_digit().then(|| i64::from(b - b'0'))) {
        any = true;
        v = v.saturating_mul(10);
        v = if negative { v.saturating_sub(d) } else { v.saturating_add(d) };
    }
    any.then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(policy: &str, value: &str) -> Result<PropValue, PolicyError> {
        PropValue::parse(&Policy::parse(policy).expect("policy"), value)
    }

    fn merged(policy: &str, a: &str, b: &str) -> String {
        let mut v = parse(policy, a).expect("a");
        v.merge(parse(policy, b).expect("b")).expect("merge");
        v.render()
    }

    #[test]
    fn policy_names_are_case_sensitive() {
        assert_eq!(Policy::parse("Sum"), Ok(Policy::Sum));
        assert_eq!(Policy::parse("Distr"), Ok(Policy::Distr));
        assert_eq!(Policy::parse("sum"), Ok(Policy::Other("sum".into())));
        assert_eq!(Policy::parse("AVG").map(|p| p.as_str().to_owned()), Ok("AVG".to_owned()));
        for p in ["Sum", "Count", "Max", "Min", "Avg", "Distr"] {
            assert_eq!(Policy::parse(p).expect(p).as_str(), p);
            assert!(!matches!(Policy::parse(p), Ok(Policy::Other(_))), "{p}");
        }
        assert_eq!(Policy::parse(&"x".repeat(20)), Ok(Policy::Other("x".repeat(20))));
        assert!(matches!(Policy::parse(&"x".repeat(21)), Err(PolicyError::PolicyNameTooLong { chars: 21, .. })));
    }

    #[test]
    fn integers_parse_like_strtoll() {
        assert_eq!(parse_ll("42"), Some(42));
        assert_eq!(parse_ll("  -7"), Some(-7));
        assert_eq!(parse_ll("+8"), Some(8));
        assert_eq!(parse_ll("12.9"), Some(12));
        assert_eq!(parse_ll("3abc"), Some(3));
        assert_eq!(parse_ll("0x1A"), Some(26));
        assert_eq!(parse_ll("0x"), Some(0));
        assert_eq!(parse_ll("-0x10"), Some(0));
        assert_eq!(parse_ll("99999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_ll("-99999999999999999999"), Some(i64::MIN));
        assert_eq!(parse_ll("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_ll(""), None);
        assert_eq!(parse_ll("abc"), None);
        assert_eq!(parse_ll("-"), None);
        assert_eq!(parse_ll(" + 1"), None);
    }

    #[test]
    fn sum_count_max_min() {
        assert_eq!(merged("Sum", "5", "7"), "12");
        // Fractions are kept (upstream: "3"); integers are upstream's.
        assert_eq!(merged("Sum", "1.9", "2.9"), "4.8");
        assert_eq!(merged("Max", "1.25", "1.2"), "1.25");
        assert_eq!(merged("Min", "1.25", "1.2"), "1.2");
        assert_eq!(merged("Count", "1.9", "2.9"), "3", "a count is an integer");
        assert_eq!(merged("Count", "9223372036854775807", "1"), "9223372036854775807");
        assert_eq!(merged("Max", "-3", "-8"), "-3");
        assert_eq!(merged("Min", "3", "0"), "0", "the server does not ignore zeros");
        assert_eq!(merged("Min", "3", "8"), "3");
        assert!(matches!(parse("Sum", ""), Err(PolicyError::NotAnInteger { policy: "Sum", .. })));
        assert!(matches!(parse("Max", "x"), Err(PolicyError::NotAnInteger { policy: "Max", .. })));
    }

    #[test]
    fn avg_is_weighted_and_formatted_like_tostr_double() {
        // Two per-report averages, weight 1 each.
        assert_eq!(merged("Avg", "1", "2"), "1.5");
        // Sums with counts.
        assert_eq!(merged("Avg", "10=4", "2=1"), "2.4");
        assert_eq!(merged("Avg", "10=4", "3"), "2.6");
        assert_eq!(parse("Avg", "7").expect("avg").render(), "7");
        assert_eq!(parse("Avg", "1=3").expect("avg").render(), "0.333333");
        assert_eq!(parse("Avg", "2=3").expect("avg").render(), "0.666667");
        // A zero count renders the sum, as upstream.
        assert_eq!(parse("Avg", "5=0").expect("avg").render(), "5");
        assert_eq!(merged("Avg", "0=0", "5=1"), "5");
        assert_eq!(parse("Avg", " -0.0000001 ").expect("avg").render(), "-0");
        assert_eq!(parse("Avg", "1e20").expect("avg").render(), "100000000000000000000");
        assert_eq!(parse("Avg", "0.0078125").expect("avg").render(), "0.007812");
    }

    #[test]
    fn tostr_double_strips_like_upstream() {
        assert_eq!(tostr_double(1.03), "1.03");
        assert_eq!(tostr_double(100.0), "100");
        assert_eq!(tostr_double(0.0), "0");
        assert_eq!(tostr_double(-2.5), "-2.5");
        assert_eq!(tostr_double(123456.7890125), "123456.789012");
        assert_eq!(tostr_double(f64::INFINITY), "inf");
        assert_eq!(tostr_double(f64::NEG_INFINITY), "-inf");
        assert_eq!(tostr_double(f64::NAN), "nan");
    }

    #[test]
    fn bad_avg_values_are_rejected() {
        for bad in
            ["", "=", "=3", " ", "abc", "1.5abc", "1=2=3", "1=-1", "1=x", "nan", "inf", "-infinity", "1e100", "1="]
        {
            assert!(matches!(parse("Avg", bad), Err(PolicyError::InvalidAvg { .. })), "{bad:?}");
        }
        assert!(parse("Avg", "9.9e99").is_ok());
    }

    #[test]
    fn distr_parse_merge_render() {
        assert_eq!(merged("Distr", "10|1,20|2,max|0", "10|4,20|0,max|5"), "10|5,20|2,max|5");
        assert_eq!(merged("Distr", ",10|1,,20|2,", "10|1,20|1"), "10|2,20|3");
        let Ok(PropValue::Distr(d)) = parse("Distr", "a|1,b|-2") else { panic!("distr") };
        assert_eq!(d.buckets().collect::<Vec<_>>(), vec![("a", 1), ("b", -2)]);
        assert_eq!(d.len(), 2);
        for bad in ["", ",", "10", "10|1,20", "|1", "1|2|3", "1|x"] {
            assert!(parse("Distr", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn distr_mismatch_leaves_the_existing_value() {
        let mut v = parse("Distr", "10|1,20|2").expect("distr");
        let before = v.clone();
        let err = v.merge(parse("Distr", "10|1,20|2,30|3").expect("distr")).expect_err("bucket count");
        assert_eq!(err, PolicyError::DistrMismatch { existing: "10,20".into(), new: "10,20,30".into() });
        assert!(matches!(v.merge(parse("Distr", "10|1,25|2").expect("distr")), Err(PolicyError::DistrMismatch { .. })));
        assert_eq!(v, before);
    }

    #[test]
    fn distr_bounds() {
        // 64 one-character buckets are exactly 255 characters; a 65th cannot fit the column,
        // so the length bound is what rejects it.
        let most = vec!["a|1"; MAX_DISTR_BUCKETS].join(",");
        assert_eq!(most.len(), MAX_VALUE_CHARS);
        assert!(matches!(parse("Distr", &most), Ok(PropValue::Distr(d)) if d.len() == MAX_DISTR_BUCKETS));
        let more = vec!["a|1"; MAX_DISTR_BUCKETS + 1].join(",");
        assert!(matches!(parse("Distr", &more), Err(PolicyError::ValueTooLong { chars: 259, .. })));
        // Empty items are skipped, not counted.
        assert!(parse("Distr", &format!("{},,,", vec!["a|1"; 63].join(","))).is_ok());

        // Too long to be parsed at all.
        assert!(matches!(parse("Distr", &vec!["ab|1"; 70].join(",")), Err(PolicyError::ValueTooLong { .. })));

        // 20 buckets of "a|999999999" are 239 characters; one more digit per count is 259.
        let mut v = parse("Distr", &vec!["a|999999999"; 20].join(",")).expect("fits");
        let before = v.clone();
        let err = v.merge(parse("Distr", &vec!["a|1"; 20].join(",")).expect("ones")).expect_err("too long");
        assert_eq!(err, PolicyError::ValueTooLong { chars: 259, max: MAX_VALUE_CHARS });
        assert_eq!(v, before);
        v.merge(parse("Distr", &vec!["a|0"; 20].join(",")).expect("zeros")).expect("same length");

        // Hex counts render longer than they were written; the result still has to fit.
        let s = vec!["a|0xFFFFFFFFFF"; 17].join(",");
        assert_eq!(s.len(), 254);
        assert!(matches!(parse("Distr", &s), Err(PolicyError::ValueTooLong { chars: 271, .. })));
    }

    #[test]
    fn other_policies_keep_the_first_value() {
        assert_eq!(merged("Median", "first", "second"), "first");
        assert_eq!(parse("Median", "").expect("other").render(), "");
    }

    #[test]
    fn long_values_and_mixed_policies_are_rejected() {
        assert!(matches!(parse("Median", &"x".repeat(256)), Err(PolicyError::ValueTooLong { chars: 256, .. })));
        assert!(parse("Median", &"é".repeat(255)).is_ok(), "255 characters of 2 bytes fit");
        let mut v = PropValue::Sum(Decimal::from_int(1));
        assert!(matches!(v.merge(PropValue::Count(1)), Err(PolicyError::PolicyMismatch { .. })));
        assert_eq!(v, PropValue::Sum(Decimal::from_int(1)));
    }

    #[test]
    fn decimal_len_counts_sign_and_digits() {
        for v in [0, 9, 10, -1, -10, 99, 100, i64::MAX, i64::MIN] {
            assert_eq!(decimal_len(v), v.to_string().len(), "{v}");
        }
    }

    proptest! {
        #[test]
        fn parse_merge_render_never_panic_and_fit(
            policy in prop::sample::select(vec!["Sum", "Count", "Max", "Min", "Avg", "Distr", "X"]),
            a in "[-+0-9a-x|,.=e ]{0,300}",
            b in "[-+0-9a-x|,.=e ]{0,300}",
        ) {
            let policy = Policy::parse(policy).expect("policy");
            if let (Ok(mut x), Ok(y)) = (PropValue::parse(&policy, &a), PropValue::parse(&policy, &b)) {
                prop_assert!(x.render().chars().count() <= MAX_VALUE_CHARS);
                let before = x.clone();
                if x.merge(y).is_err() {
                    prop_assert_eq!(&x, &before);
                }
                prop_assert!(x.render().chars().count() <= MAX_VALUE_CHARS);
            }
        }

        #[test]
        fn integer_values_round_trip(v in any::<i64>()) {
            for policy in [Policy::Sum, Policy::Count, Policy::Max, Policy::Min] {
                let parsed = PropValue::parse(&policy, &v.to_string()).expect("int");
                prop_assert_eq!(parsed.render(), v.to_string());
            }
        }

        #[test]
        fn distr_round_trips(buckets in prop::collection::vec(("[a-z0-9]{1,4}", -1000i64..1000), 1..20)) {
            let s = buckets.iter().map(|(l, n)| format!("{l}|{n}")).collect::<Vec<_>>().join(",");
            let v = PropValue::parse(&Policy::Distr, &s).expect("distr");
            prop_assert_eq!(v.render(), s);
        }

        #[test]
        fn avg_matches_the_arithmetic(xs in prop::collection::vec(-1e6f64..1e6, 1..10)) {
            let mut acc = PropValue::parse(&Policy::Avg, &xs[0].to_string()).expect("avg");
            for x in &xs[1..] {
                acc.merge(PropValue::parse(&Policy::Avg, &x.to_string()).expect("avg")).expect("merge");
            }
            let want = xs.iter().sum::<f64>() / xs.len() as f64;
            let got: f64 = acc.render().parse().expect("number");
            prop_assert!((got - want).abs() <= 1e-6 + want.abs() * 1e-12, "{got} vs {want}");
        }
    }
}
