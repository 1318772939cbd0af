//! Who may call the registry's node-facing servants: every `RegistryObj` call (nodes
//! register, heart-beat, report states and versions, and fetch their servers, templates,
//! docker registry credentials and the framework key) and every call of the K8STARS
//! container interface. QueryObj stays open to everyone: clients must find routes.
//!
//! `/tars/registry<nodeallow>` lists the peers admitted, in the adapter `allow` syntax
//! (addresses, IPv4 `*` patterns, CIDR blocks, separated by `,` or `;`), or is `*` for every
//! peer, which is upstream's behaviour and so must be asked for. Without the key only
//! loopback peers are admitted. A refused call answers with a TARS error (−99, saying why)
//! before it touches the database, and is logged at most once per peer a minute.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tars_core_net::server::allow::AllowList;
use tars_proto::rpc::{Current, ServantError};

use crate::config::ConfigError;
use crate::Context;

/// The config key.
pub const NODE_ALLOW_KEY: &str = "/tars/registry<nodeallow>";
/// What is admitted without the key (and what `tars up` sets): loopback only.
pub const LOOPBACK: &str = "127.0.0.0/8,::1";

/// Who may call the node-facing servants.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeAllow {
    /// `*`: every peer.
    Everyone,
    /// Peers the list admits.
    Listed {
        /// The parsed list.
        list: AllowList,
        /// As configured, for the start-up line.
        text: String,
        /// Whether the key was absent and [`LOOPBACK`] stands in.
        defaulted: bool,
    },
}

impl Default for NodeAllow {
    fn default() -> Self {
        NodeAllow::Listed { list: loopback(), text: LOOPBACK.to_owned(), defaulted: true }
    }
}

fn loopback() -> AllowList {
    // A constant that parses; the fallback (everyone) is never taken.
    AllowList::parse(LOOPBACK, "", "").unwrap_or_default()
}

impl NodeAllow {
    /// Parses the key's value; `None` or empty is the loopback default.
    pub fn parse(value: Option<&str>) -> Result<NodeAllow, ConfigError> {
        let text = value.map(str::trim).unwrap_or_default();
        if text.is_empty() {
            return Ok(NodeAllow::default());
        }
        if text == "*" {
            return Ok(NodeAllow::Everyone);
        }
        let bad = |reason: String| ConfigError { key: NODE_ALLOW_KEY.into(), value: text.into(), reason };
        // `*` alone means everyone; inside a list it would silently match almost nothing.
        if text.split([',', ';']).any(|e| e.trim() == "*") {
            return Err(bad("`*` (every peer) must stand alone".into()));
        }
        let list = AllowList::parse(text, "", "").map_err(|e| bad(e.to_string()))?;
        Ok(NodeAllow::Listed { list, text: text.to_owned(), defaulted: false })
    }

    /// Whether a call from `peer` is served; a call whose peer the transport did not give is
    /// served only when everyone is.
    pub fn admits(&self, peer: Option<IpAddr>) -> bool {
        match self {
            NodeAllow::Everyone => true,
            NodeAllow::Listed { list, .. } => peer.is_some_and(|ip| list.is_allowed(ip)),
        }
    }

    /// The one line logged at start.
    pub fn log_start(&self) {
        match self {
            NodeAllow::Everyone => tracing::warn!(
                "registry: {NODE_ALLOW_KEY} = *: RegistryObj and the container interface (node registration, \
                 state reports, server configs, docker credentials, the framework key) answer every peer"
            ),
            NodeAllow::Listed { text, defaulted: true, .. } => tracing::info!(
                "registry: RegistryObj and the container interface answer loopback peers only ({text}); \
                 list the nodes' addresses or CIDR blocks in {NODE_ALLOW_KEY}, or * for every peer"
            ),
            NodeAllow::Listed { text, defaulted: false, .. } => {
                tracing::info!(
                    "registry: RegistryObj and the container interface answer {text} only ({NODE_ALLOW_KEY})"
                )
            }
        }
    }
}

impl fmt::Display for NodeAllow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeAllow::Everyone => f.write_str("*"),
            NodeAllow::Listed { text, .. } => f.write_str(text),
        }
    }
}

/// Serves the call when its peer is admitted; otherwise logs (rate-limited) and answers the
/// error the caller gets.
pub fn admit(ctx: &Context, current: &Current, call: &'static str) -> Result<(), ServantError> {
    let peer = current.peer.map(|p| p.ip().to_canonical());
    if ctx.config.node_allow.admits(peer) {
        return Ok(());
    }
    let shown = peer.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    match ctx.refusals.note(peer, Instant::now()) {
        Note::Log(refused) => tracing::warn!(
            peer = %shown,
            call,
            refused,
            "registry: refused a call from a peer outside {NODE_ALLOW_KEY} (logged once per peer a minute; \
             refused: calls since the last line)"
        ),
        Note::Crowd(refused) => tracing::warn!(
            peers = MAX_PEERS,
            refused,
            "registry: refusing calls from more peers than are logged one by one (outside {NODE_ALLOW_KEY})"
        ),
        Note::Quiet => {}
    }
    Err(ServantError::unknown(format!("{call}: peer {shown} is not allowed by the registry's {NODE_ALLOW_KEY}")))
}

/// How long one peer's refusals are folded into one log line.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// Peers tracked one by one; beyond them refusals are counted together, so a scan from many
/// addresses costs bounded memory and one line a minute.
const MAX_PEERS: usize = 1024;

/// What to log for one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    /// A line for this peer, covering this many refusals.
    Log(u64),
    /// A line for the peers beyond [`MAX_PEERS`], covering this many refusals.
    Crowd(u64),
    /// Nothing: already said within the minute.
    Quiet,
}

/// Refused calls per peer, for the rate-limited log. Touched only by refused calls.
#[derive(Debug, Default)]
pub struct Refusals {
    inner: Mutex<Tally>,
}

#[derive(Debug, Default)]
struct Tally {
    peers: HashMap<Option<IpAddr>, Window>,
    crowd: Option<Window>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// When the last line was logged.
    logged: Instant,
    /// Refusals since then.
    unlogged: u64,
}

impl Window {
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        if now.duration_since(self.logged) < LOG_EVERY {
            return None;
        }
        let n = self.unlogged;
        *self = Window { logged: now, unlogged: 0 };
        Some(n)
    }
}

impl Refusals {
    /// Records one refused call from `peer` at `now`.
    pub fn note(&self, peer: Option<IpAddr>, now: Instant) -> Note {
        let mut t = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(w) = t.peers.get_mut(&peer) {
            return w.note(now).map_or(Note::Quiet, Note::Log);
        }
        if t.peers.len() >= MAX_PEERS {
            t.peers.retain(|_, w| now.duration_since(w.logged) < LOG_EVERY);
        }
        if t.peers.len() >= MAX_PEERS {
            return match &mut t.crowd {
                Some(w) => w.note(now).map_or(Note::Quiet, Note::Crowd),
                None => {
                    t.crowd = Some(Window { logged: now, unlogged: 0 });
                    Note::Crowd(1)
                }
            };
        }
        t.peers.insert(peer, Window { logged: now, unlogged: 0 });
        Note::Log(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("an address"))
    }

    #[test]
    fn the_key_parses_to_loopback_a_list_or_everyone() {
        let d = NodeAllow::parse(None).expect("default");
        assert_eq!(d, NodeAllow::default());
        assert!(d.admits(ip("127.0.0.1")) && d.admits(ip("::1")) && d.admits(ip("127.9.9.9")));
        assert!(!d.admits(ip("10.0.0.1")) && !d.admits(None));
        assert_eq!(NodeAllow::parse(Some("  ")).expect("empty"), NodeAllow::default());
        let any = NodeAllow::parse(Some(" * ")).expect("everyone");
        assert!(any.admits(ip("203.0.113.9")) && any.admits(None));
        let l = NodeAllow::parse(Some("10.0.0.0/8, 192.168.1.7;fd00::/8")).expect("list");
        assert!(l.admits(ip("10.2.3.4")) && l.admits(ip("192.168.1.7")) && l.admits(ip("fd00::1")));
        assert!(!l.admits(ip("127.0.0.1")) && !l.admits(ip("192.168.1.8")));
        assert_eq!(l.to_string(), "10.0.0.0/8, 192.168.1.7;fd00::/8");
        for bad in ["10.0.0.0/33", "node1", "*, 10.0.0.1"] {
            let e = NodeAllow::parse(Some(bad)).expect_err(bad);
            assert!(e.to_string().contains(NODE_ALLOW_KEY), "{e}");
        }
    }

    #[test]
    fn refusals_log_once_per_peer_a_minute() {
        let r = Refusals::default();
        let t0 = Instant::now();
        let later = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(r.note(ip("10.0.0.1"), t0), Note::Log(1));
        assert_eq!(r.note(ip("10.0.0.1"), later(1)), Note::Quiet);
        assert_eq!(r.note(ip("10.0.0.2"), later(2)), Note::Log(1));
        assert_eq!(r.note(ip("10.0.0.1"), later(59)), Note::Quiet);
        assert_eq!(r.note(ip("10.0.0.1"), later(61)), Note::Log(3));
        assert_eq!(r.note(ip("10.0.0.1"), later(62)), Note::Quiet);
    }

    #[test]
    fn many_peers_share_one_line() {
        let r = Refusals::default();
        let t0 = Instant::now();
        for i in 0..MAX_PEERS {
            let peer = Some(IpAddr::from([10, 1, (i / 256) as u8, (i % 256) as u8]));
            assert_eq!(r.note(peer, t0), Note::Log(1));
        }
        assert_eq!(r.note(ip("10.9.0.1"), t0), Note::Crowd(1));
        assert_eq!(r.note(ip("10.9.0.2"), t0), Note::Quiet);
        // A minute on, the quiet peers are forgotten and new ones are tracked again.
        assert_eq!(r.note(ip("10.9.0.3"), t0 + LOG_EVERY), Note::Log(1));
    }
}
