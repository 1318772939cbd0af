//! Per-adapter peer filtering: the `allow`, `deny` and `order` keys of an adapter.
//!
//! The decision is TarsCpp's `BindAdapter::isIpAllow`, so a config written for a C++ server
//! admits and refuses the same peers here:
//!
//! - `order=allow,deny` (the default): a peer matching any `allow` pattern is admitted; else
//!   one matching any `deny` pattern is refused.
//! - `order=deny,allow`: `deny` is checked first, then `allow`.
//! - A peer matching neither list is admitted exactly when the `allow` list is empty, so
//!   setting `allow` alone turns the adapter into a whitelist.
//!
//! Lists are split on `;` and `,`; each entry is trimmed and empty entries are dropped.
//! `order` is two words separated by any of `;`, `,`, space or tab, case-insensitive, as
//! `Application::parseOrder`; an empty `order` means the default.
//!
//! # Patterns
//!
//! - An address, e.g. `10.0.0.1` or `::1`: that peer only.
//! - An IPv4 pattern with `*`, e.g. `192.168.*.*`: TarsCpp's `TC_Common::matchPeriod` (see
//!   [`match_period`]), where `*` stands for one whole dot-separated segment.
//! - Our extension, CIDR: `10.0.0.0/8`, `fe80::/10`. IPv6 peers can only be matched by an
//!   address or a CIDR, since `matchPeriod` is about dotted segments.
//!
//! Unlike TarsCpp, an entry that could never match a peer (a host name, `10.0.0.300`, a bad
//! prefix length) is an error rather than silently dead, because a typo in a deny list
//! otherwise opens the adapter without a trace. A peer given as an IPv4-mapped IPv6 address
//! (`::ffff:10.0.0.1`, what a dual-stack listener reports) is treated as the IPv4 address.

use std::fmt;
use std::net::IpAddr;

/// Why an `allow`/`deny`/`order` setting was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowListError {
    /// `order` is not `allow,deny` or `deny,allow`.
    #[error("invalid order `{0}`, expected `allow,deny` or `deny,allow`")]
    BadOrder(String),
    /// A list entry that is not an address, an IPv4 `*` pattern or a CIDR block.
    #[error("invalid {list} entry `{entry}`: {reason}")]
    BadPattern {
        /// `"allow"` or `"deny"`.
        list: &'static str,
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Which list is consulted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// `allow,deny`: an `allow` match wins over a `deny` match.
    #[default]
    AllowDeny,
    /// `deny,allow`: a `deny` match wins over an `allow` match.
    DenyAllow,
}

impl Order {
    /// Parses `allow,deny` / `deny,allow` (any of `;`, `,`, space, tab between the words, any
    /// case); empty text is the default, [`Order::AllowDeny`].
    pub fn parse(s: &str) -> Result<Order, AllowListError> {
        let words: Vec<&str> = s.split([';', ',', ' ', '\t']).filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            [] => Ok(Order::AllowDeny),
            [a, b] if a.eq_ignore_ascii_case("allow") && b.eq_ignore_ascii_case("deny") => Ok(Order::AllowDeny),
            [a, b] if a.eq_ignore_ascii_case("deny") && b.eq_ignore_ascii_case("allow") => Ok(Order::DenyAllow),
            _ => Err(AllowListError::BadOrder(s.to_owned())),
        }
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Order::AllowDeny => "allow,deny",
            Order::DenyAllow => "deny,allow",
        })
    }
}

/// One entry of an `allow` or `deny` list. Built only by parsing, so it is always one that
/// can match some peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpPattern {
    text: String,
    kind: PatternKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternKind {
    Exact(IpAddr),
    /// An IPv4 `matchPeriod` pattern containing `*`; kept as text.
    Wildcard,
    Cidr {
        net: IpAddr,
        prefix: u8,
    },
}

impl IpPattern {
    /// Parses one entry; `list` (`"allow"` or `"deny"`) only labels the error.
    fn parse(list: &'static str, entry: &str) -> Result<IpPattern, AllowListError> {
        let bad = |reason| AllowListError::BadPattern { list, entry: entry.to_owned(), reason };
        let kind = if let Some((addr, prefix)) = entry.split_once('/') {
            let net: IpAddr = addr.parse().map_err(|_| bad("the part before `/` is not an IP address"))?;
            let max = if net.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix.parse().map_err(|_| bad("the prefix length is not a number"))?;
            if prefix > max {
                return Err(bad("the prefix length is longer than the address"));
            }
            match net {
                // `::ffff:a.b.c.d/n` with n >= 96 is an IPv4 block; peers are compared as IPv4.
                IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                    Some(v4) => PatternKind::Cidr { net: IpAddr::V4(v4), prefix: prefix - 96 },
                    None => PatternKind::Cidr { net, prefix },
                },
                _ => PatternKind::Cidr { net, prefix },
            }
        } else if entry.contains('*') {
            if !entry.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'*') {
                return Err(bad("a `*` pattern may hold only digits, `.` and `*` (use CIDR for IPv6)"));
            }
            PatternKind::Wildcard
        } else {
            let ip: IpAddr = entry.parse().map_err(|_| bad("not an IP address, `*` pattern or CIDR block"))?;
            PatternKind::Exact(canonical(ip))
        };
        Ok(IpPattern { text: entry.to_owned(), kind })
    }

    /// Whether `ip` (already canonical) matches.
    fn matches(&self, ip: IpAddr) -> bool {
        match self.kind {
            PatternKind::Exact(want) => ip == want,
            PatternKind::Wildcard => ip.is_ipv4() && match_period(&ip.to_string(), &self.text),
            PatternKind::Cidr { net, prefix } => in_block(ip, net, prefix),
        }
    }

    /// The entry as written in the config.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for IpPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// An adapter's peer filter, checked once per accepted connection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    /// Which list wins when a peer matches both.
    pub order: Order,
    /// `allow` entries, in config order.
    pub allow: Vec<IpPattern>,
    /// `deny` entries, in config order.
    pub deny: Vec<IpPattern>,
}

impl AllowList {
    /// Parses the three config values (see the [module docs](self)). The default
    /// (`AllowList::default()`) admits everyone.
    pub fn parse(allow: &str, deny: &str, order: &str) -> Result<AllowList, AllowListError> {
        Ok(AllowList {
            order: Order::parse(order)?,
            allow: parse_list("allow", allow)?,
            deny: parse_list("deny", deny)?,
        })
    }

    /// Whether a connection from `ip` is admitted (TarsCpp `isIpAllow`).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        let hit = |list: &[IpPattern]| list.iter().any(|p| p.matches(ip));
        match self.order {
            Order::AllowDeny => {
                if hit(&self.allow) {
                    return true;
                }
                if hit(&self.deny) {
                    return false;
                }
            }
            Order::DenyAllow => {
                if hit(&self.deny) {
                    return false;
                }
                if hit(&self.allow) {
                    return true;
                }
            }
        }
        self.allow.is_empty()
    }
}

fn parse_list(list: &'static str, text: &str) -> Result<Vec<IpPattern>, AllowListError> {
    text.split([';', ',']).map(str::trim).filter(|e| !e.is_empty()).map(|e| IpPattern::parse(list, e)).collect()
}

/// IPv4-mapped IPv6 addresses as IPv4, so one pattern covers both forms of a peer.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn in_block(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    fn same_prefix(a: u128, b: u128, prefix: u8, bits: u8) -> bool {
        let shift = bits - prefix;
        // A shift by the full width (prefix 0) would overflow; every address matches then.
        shift >= bits || (a >> shift) == (b >> shift)
    }
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => same_prefix(u32::from(a).into(), u32::from(b).into(), prefix, 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => same_prefix(a.into(), b.into(), prefix, 128),
        _ => false,
    }
}

/// TarsCpp's `TC_Common::matchPeriod(s, pat)`, byte for byte.
///
/// An empty `s` never matches and an empty `pat` matches everything. A pattern without `*`
/// must equal `s`. Otherwise the two are walked together: a literal byte must equal the byte
/// of `s`, and `*` consumes a non-empty run of bytes up to the next `.` (it fails if `s` has a
/// `.` there). They match when both are used up together, so `*` never spans a dot and
/// `192.168.*` does not match `192.168.1.2`.
pub fn match_period(s: &str, pat: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if pat.is_empty() {
        return true;
    }
    if !pat.contains('*') {
        return s == pat;
    }
    let (s, pat) = (s.as_bytes(), pat.as_bytes());
    let (mut si, mut pi) = (0, 0);
    // The C++ do/while runs while both have bytes left; both are non-empty on entry.
    while si < s.len() && pi < pat.len() {
        if pat[pi] == b'*' {
            if s[si] == b'.' {
                return false;
            }
            while si < s.len() && s[si] != b'.' {
                si += 1;
            }
        } else {
            if pat[pi] != s[si] {
                return false;
            }
            si += 1;
        }
        pi += 1;
    }
    si == s.len() && pi == pat.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("must be present and valid")
    }

    fn list(allow: &str, deny: &str, order: &str) -> AllowList {
        AllowList::parse(allow, deny, order).expect("must be present and valid")
    }

    #[test]
    fn match_period_edge_cases() {
        // Empty subject, empty pattern.
        assert!(!match_period("", ""));
        assert!(!match_period("", "*"));
        assert!(match_period("1.2.3.4", ""));
        // No `*`: exact equality only.
        assert!(match_period("1.2.3.4", "1.2.3.4"));
        assert!(!match_period("1.2.3.4", "1.2.3.40"));
        assert!(!match_period("1.2.3.40", "1.2.3.4"));
        // `*` is one whole segment.
        assert!(match_period("192.168.1.2", "192.168.*.*"));
        assert!(match_period("192.168.100.250", "192.168.*.*"));
        assert!(match_period("192.168.1.2", "*.*.*.*"));
        assert!(match_period("192.168.1.2", "192.*.1.2"));
        assert!(!match_period("192.168.1.2", "192.168.*"));
        assert!(!match_period("192.168.1", "192.168.*.*"));
        assert!(!match_period("1.2.3.4", "*"));
        assert!(match_period("1234", "*"));
        // `*` refuses an empty segment.
        assert!(!match_period("1..3.4", "1.*.3.4"));
        // Literal prefix then `*` inside a segment.
        assert!(match_period("192.168.15.1", "192.168.1*.1"));
        assert!(!match_period("192.168.1.1", "192.168.1*.1"));
        assert!(!match_period("192.168.25.1", "192.168.1*.1"));
        // A literal mismatch anywhere.
        assert!(!match_period("10.168.1.2", "192.168.*.*"));
        // Subject left over, pattern left over.
        assert!(!match_period("1.2.3.4.5", "*.*.*.*"));
        assert!(!match_period("1.2.3", "1.2.3*"));
        assert!(match_period("1.2.3", "1.2.*"));
    }

    #[test]
    fn order_parsing() {
        assert_eq!(Order::parse("").expect("must be present and valid"), Order::AllowDeny);
        assert_eq!(Order::parse("allow,deny").expect("must be present and valid"), Order::AllowDeny);
        assert_eq!(Order::parse("Deny; ALLOW").expect("must be present and valid"), Order::DenyAllow);
        assert_eq!(Order::parse("deny \t allow").expect("must be present and valid"), Order::DenyAllow);
        assert!(matches!(Order::parse("allow"), Err(AllowListError::BadOrder(_))));
        assert!(Order::parse("allow,allow").is_err());
        assert!(Order::parse("allow,deny,allow").is_err());
        assert_eq!(Order::DenyAllow.to_string(), "deny,allow");
    }

    #[test]
    fn list_splitting_trims_and_drops_empties() {
        let l = list(" 10.0.0.1 ;, 10.0.0.2,,;", "", "");
        let texts: Vec<&str> = l.allow.iter().map(IpPattern::as_str).collect();
        assert_eq!(texts, ["10.0.0.1", "10.0.0.2"]);
        assert!(l.deny.is_empty());
    }

    #[test]
    fn bad_patterns_are_errors() {
        for (entry, list_name) in [
            ("localhost", "allow"),
            ("10.0.0.300", "allow"),
            ("10.0.0.0/33", "deny"),
            ("::/129", "deny"),
            ("10.0.0.0/x", "deny"),
            ("host/8", "deny"),
            ("fe80::*", "allow"),
        ] {
            let (a, d) = if list_name == "allow" { (entry, "") } else { ("", entry) };
            match AllowList::parse(a, d, "") {
                Err(AllowListError::BadPattern { list, entry: e, .. }) => {
                    assert_eq!(list, list_name);
                    assert_eq!(e, entry);
                }
                other => panic!("{entry}: {other:?}"),
            }
        }
        assert!(matches!(AllowList::parse("", "", "allow"), Err(AllowListError::BadOrder(_))));
    }

    #[test]
    fn empty_lists_allow_everyone() {
        let l = list("", "", "allow,deny");
        assert!(l.is_allowed(ip("1.2.3.4")));
        assert!(l.is_allowed(ip("::1")));
        assert!(AllowList::default().is_allowed(ip("10.0.0.1")));
        assert!(list("", "", "deny,allow").is_allowed(ip("1.2.3.4")));
    }

    #[test]
    fn allow_deny_order() {
        let l = list("10.0.0.1", "10.0.0.*", "allow,deny");
        assert!(l.is_allowed(ip("10.0.0.1")), "allow wins over deny");
        assert!(!l.is_allowed(ip("10.0.0.2")), "deny");
        assert!(!l.is_allowed(ip("11.0.0.2")), "neither, allow list not empty");
        let deny_only = list("", "10.0.0.*", "allow,deny");
        assert!(!deny_only.is_allowed(ip("10.0.0.2")));
        assert!(deny_only.is_allowed(ip("11.0.0.2")), "neither, allow list empty");
    }

    #[test]
    fn deny_allow_order() {
        let l = list("10.0.0.*", "10.0.0.1", "deny,allow");
        assert!(!l.is_allowed(ip("10.0.0.1")), "deny wins over allow");
        assert!(l.is_allowed(ip("10.0.0.2")), "allow");
        assert!(!l.is_allowed(ip("11.0.0.2")), "neither, allow list not empty");
        let deny_only = list("", "10.0.0.1", "deny,allow");
        assert!(!deny_only.is_allowed(ip("10.0.0.1")));
        assert!(deny_only.is_allowed(ip("10.0.0.2")), "neither, allow list empty");
    }

    #[test]
    fn cidr_blocks() {
        let l = list("10.0.0.0/8;192.168.1.128/25;fe80::/10", "", "");
        assert!(l.is_allowed(ip("10.255.1.2")));
        assert!(!l.is_allowed(ip("11.0.0.1")));
        assert!(l.is_allowed(ip("192.168.1.200")));
        assert!(!l.is_allowed(ip("192.168.1.100")));
        assert!(l.is_allowed(ip("fe80::1234")));
        assert!(!l.is_allowed(ip("fe00::1")));
        assert!(!l.is_allowed(ip("::1")), "IPv6 never matches an IPv4 block");
        let all4 = list("", "0.0.0.0/0", "");
        assert!(!all4.is_allowed(ip("8.8.8.8")));
        assert!(all4.is_allowed(ip("::2")), "0.0.0.0/0 is IPv4 only");
        let all6 = list("", "::/0", "");
        assert!(!all6.is_allowed(ip("2001:db8::1")));
        let host = list("10.0.0.5/32;2001:db8::1/128", "", "");
        assert!(host.is_allowed(ip("10.0.0.5")));
        assert!(!host.is_allowed(ip("10.0.0.4")));
        assert!(host.is_allowed(ip("2001:db8::1")));
        assert!(!host.is_allowed(ip("2001:db8::2")));
    }

    #[test]
    fn ipv6_exact_and_mapped_peers() {
        let l = list("::1;10.0.0.1", "", "");
        assert!(l.is_allowed(ip("0:0:0:0:0:0:0:1")), "addresses compare by value, not text");
        assert!(!l.is_allowed(ip("::2")));
        assert!(l.is_allowed(ip("::ffff:10.0.0.1")), "mapped peer matches the IPv4 entry");
        let wild = list("10.0.*.*", "", "");
        assert!(wild.is_allowed(ip("::ffff:10.0.3.4")), "mapped peer matches an IPv4 wildcard");
        assert!(!list("*", "", "").is_allowed(ip("::1")), "wildcards never match IPv6 peers");
        let mapped_entry = list("::ffff:10.0.0.9", "", "");
        assert!(mapped_entry.is_allowed(ip("10.0.0.9")), "a mapped entry matches the IPv4 peer");
        let mapped_cidr = list("::ffff:10.0.0.0/104", "", "");
        assert!(mapped_cidr.is_allowed(ip("10.0.0.9")), "a mapped block is the IPv4 block");
        assert!(mapped_cidr.is_allowed(ip("::ffff:10.9.0.9")));
        assert!(!mapped_cidr.is_allowed(ip("11.0.0.9")));
    }
}
