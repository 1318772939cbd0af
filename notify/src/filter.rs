//! Upstream's `/tars/filter`: a notice whose message contains one of the substrings listed
//! for its server, or for `default`, is dropped before it is queued.
//!
//! ```text
//! <filter>
//!     TestHello=heartbeat timeout;reload|noise
//!     default=[debug]
//! </filter>
//! ```
//!
//! The key is the application and the server name joined **without** a dot (`TestHello` for
//! `Test.Hello`), as upstream; values are separated by `;` or `|`, empty ones ignored.
//! Built once at configure and shared read-only by every shard.

use std::collections::HashMap;

use tars_proto::config::Config;

/// The key that applies to every server.
pub const DEFAULT_KEY: &str = "default";

/// The substring filter. Read-only once built: the shards share it through an `Arc`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    rules: HashMap<String, Vec<String>>,
}

impl Filter {
    /// The filter of `/tars/filter`; empty without that section.
    pub fn from_config(config: &Config) -> Filter {
        Filter::from_pairs(config.params("/tars/filter"))
    }

    /// The filter of `(key, value)` pairs as the section holds them.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Filter {
        let mut rules: HashMap<String, Vec<String>> = HashMap::new();
        for (key, value) in pairs {
            let list = rules.entry(key.to_owned()).or_default();
            for part in value.split([';', '|']).filter(|p| !p.is_empty()) {
                if !list.iter().any(|p| p == part) {
                    list.push(part.to_owned());
                }
            }
        }
        rules.retain(|_, v| !v.is_empty());
        Filter { rules }
    }

    /// Whether nothing is filtered.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a message of `app`.`server` is dropped.
    pub fn drops(&self, app: &str, server: &str, message: &str) -> bool {
        if self.rules.is_empty() {
            return false;
        }
        let hit = |key: &str| self.rules.get(key).is_some_and(|l| l.iter().any(|p| message.contains(p.as_str())));
        let mut key = String::with_capacity(app.len() + server.len());
        key.push_str(app);
        key.push_str(server);
        hit(&key) || hit(DEFAULT_KEY)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn server_keys_without_the_dot_and_default() {
        let f = Filter::from_pairs([("TestHello", "noise;reload|x y"), ("default", "[debug]"), ("Other", ";|")]);
        assert!(f.drops("Test", "Hello", "some noise here"));
        assert!(f.drops("Test", "Hello", "config reload"));
        assert!(f.drops("Test", "Hello", "with x y"));
        assert!(!f.drops("Test", "Hello", "x-y"));
        assert!(f.drops("Any", "Server", "[debug] line"));
        assert!(!f.drops("Any", "Server", "noise"));
        assert!(!f.drops("Test.", "Hello", "noise"), "the key has no dot");
        assert!(!f.drops("Other", "", "anything"), "empty values filter nothing");
        assert!(!Filter::default().drops("a", "b", "c"));
    }

    #[test]
    fn from_a_config_section() {
        let c = Config::parse("<tars>\n<filter>\nAppSvc=drop me\n</filter>\n</tars>\n").unwrap_or_default();
        let f = Filter::from_config(&c);
        assert!(f.drops("App", "Svc", "please drop me"));
        assert!(!f.drops("App", "Svc", "keep"));
        assert!(Filter::from_config(&Config::new()).is_empty());
    }
}
