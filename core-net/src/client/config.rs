//! The client (communicator) part of a TARS config: `/tars/application/client`, plus the set
//! keys of `/tars/application`.
//!
//! ```text
//! <tars>
//!   <application>
//!     enableset=Y
//!     setdivision=gz.sz.1
//!     <client>
//!       locator=tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890
//!       sync-invoke-timeout=3000
//!       async-invoke-timeout=5000
//!       refresh-endpoint-interval=60000
//!       report-interval=60000
//!       stat=tars.tarsstat.StatObj
//!       property=tars.tarsproperty.PropertyObj
//!       modulename=A.S
//!       <A.S.EchoObj>
//!         accesskey=tars-test-user
//!         secretkey=123456
//!       </A.S.EchoObj>
//!     </client>
//!   </application>
//! </tars>
//! ```
//!
//! Defaults are TarsCpp's communicator defaults, so a missing `<client>` domain gives a
//! working direct-connection client. Where we are stricter than TarsCpp: a number that does
//! not parse or is 0 is an error naming the key (C++ reads garbage as 0, which for an interval
//! means a busy loop), and a locator that does not parse or lists no endpoint is an error at
//! start-up rather than on the first indirect call. Empty values count as absent.
//!
//! A sub-domain of `<client>` named after an object holds that object's keys for endpoints
//! with `-e 1` (TarsCpp's `Communicator::setProperty` reads `accesskey` and `secretkey` there,
//! and `AdapterProxy` sends them in the handshake, see [`crate::auth`]). Calls to an `-e 1`
//! endpoint of an object without keys fail with a connect error saying so. Where TarsCpp would
//! send a handshake with an empty key, a sub-domain with only one of the two is an error here.
//!
//! Keys of the C++ communicator that govern its own thread pools (`netthread`, `asyncthread`,
//! …) have no meaning in a thread-per-core runtime and are ignored. `modulename` is left unset
//! when absent; a server fills in its `app.server`, as TarsCpp's `Application` does.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::auth::Keys;

use tars_proto::config::Config;
use tars_proto::endpoint::{EndpointError, ObjectRef};

/// The config domain holding the client keys.
pub const CLIENT_PATH: &str = "/tars/application/client";
/// `sync-invoke-timeout` when absent.
pub const DEFAULT_SYNC_INVOKE_TIMEOUT: Duration = Duration::from_millis(3_000);
/// `async-invoke-timeout` when absent.
pub const DEFAULT_ASYNC_INVOKE_TIMEOUT: Duration = Duration::from_millis(5_000);
/// `refresh-endpoint-interval` when absent.
pub const DEFAULT_REFRESH_ENDPOINT_INTERVAL: Duration = Duration::from_millis(60_000);
/// `report-interval` when absent.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_millis(60_000);

/// Why the client part of a config was rejected; each variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientConfigError {
    /// A value that is not what the key takes.
    #[error("client config: `{key}={value}`: expected {expected}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value as written.
        value: String,
        /// What the key takes.
        expected: &'static str,
    },
    /// A locator that is not an object string.
    #[error("client config: locator `{value}`: {source}")]
    Locator {
        /// The locator as written.
        value: String,
        /// What is wrong with it.
        source: EndpointError,
    },
    /// A locator without `@endpoint`: it could never be reached.
    #[error("client config: locator `{0}` lists no endpoint (expected `Obj@tcp -h … -p …`)")]
    LocatorWithoutEndpoints(String),
    /// An object sub-domain with `accesskey` or `secretkey` but not both.
    #[error("client config: object `{object}` has no `{key}` beside the other key")]
    HalfKeys {
        /// The object (sub-domain) name.
        object: String,
        /// The missing key.
        key: &'static str,
    },
    /// `enableset=Y` without a usable `setdivision`.
    #[error("`enableset` is on but `setdivision={0}` is not `name.area.group`")]
    BadSetDivision(String),
}

/// A set id, `name.area.group`: calls prefer servers of the same set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SetDivision {
    /// The set name; never `*`.
    pub name: String,
    /// The area; never `*`.
    pub area: String,
    /// The group; `*` means every group of the area.
    pub group: String,
}

impl SetDivision {
    /// Parses `name.area.group`: three non-empty parts, name and area not `*` (the registry
    /// ignores such sets, so a server in one would never be found).
    pub fn parse(s: &str) -> Option<SetDivision> {
        let mut parts = s.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(name), Some(area), Some(group), None)
                if !name.is_empty() && !area.is_empty() && !group.is_empty() && name != "*" && area != "*" =>
            {
                Some(SetDivision { name: name.to_owned(), area: area.to_owned(), group: group.to_owned() })
            }
            _ => None,
        }
    }
}

/// `name.area.group`, the form that travels in `STATUS_SETNAME_VALUE`.
impl fmt::Display for SetDivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.name, self.area, self.group)
    }
}

/// Communicator settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `locator`: the registry's `QueryObj`, with endpoints. `None` allows only direct
    /// (`Obj@endpoints`) proxies.
    pub locator: Option<ObjectRef>,
    /// `sync-invoke-timeout`: default deadline of a blocking call.
    pub sync_invoke_timeout: Duration,
    /// `async-invoke-timeout`: default deadline of a non-blocking call.
    pub async_invoke_timeout: Duration,
    /// `refresh-endpoint-interval`: how often indirect proxies ask the locator again.
    pub refresh_endpoint_interval: Duration,
    /// `report-interval`: how often call statistics and properties are sent.
    pub report_interval: Duration,
    /// `stat`: the stat object name; `None` disables call statistics.
    pub stat: Option<String>,
    /// `property`: the property object name; `None` disables property reports.
    pub property: Option<String>,
    /// `modulename`: this client's name in call statistics.
    pub module_name: Option<String>,
    /// `/tars/application<enableset>`: `Y`/`N` (also `yes`/`no`, `true`/`false`, `1`/`0`, any
    /// case).
    pub enable_set: bool,
    /// `/tars/application<setdivision>`, present exactly when `enable_set` is on. With the set
    /// off it is ignored, as TarsCpp does.
    pub set_division: Option<SetDivision>,
    /// `<client><Obj>accesskey/secretkey`: the keys each object (`App.Server.Obj`, no `#` or
    /// `@`) authenticates with on `-e 1` endpoints.
    pub auth_keys: BTreeMap<String, Keys>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            locator: None,
            sync_invoke_timeout: DEFAULT_SYNC_INVOKE_TIMEOUT,
            async_invoke_timeout: DEFAULT_ASYNC_INVOKE_TIMEOUT,
            refresh_endpoint_interval: DEFAULT_REFRESH_ENDPOINT_INTERVAL,
            report_interval: DEFAULT_REPORT_INTERVAL,
            stat: None,
            property: None,
            module_name: None,
            enable_set: false,
            set_division: None,
            auth_keys: BTreeMap::new(),
        }
    }
}

impl ClientConfig {
    /// Reads `/tars/application/client` and the set keys of `/tars/application`.
    pub fn from_config(config: &Config) -> Result<ClientConfig, ClientConfigError> {
        let client = |k: &str| config.get(&format!("{CLIENT_PATH}<{k}>")).filter(|v| !v.is_empty());
        let owned = |k: &str| client(k).map(str::to_owned);
        let millis = |key: &'static str, default: Duration| match client(key) {
            None => Ok(default),
            Some(v) => match v.parse::<u64>() {
                Ok(ms) if ms > 0 => Ok(Duration::from_millis(ms)),
                _ => Err(ClientConfigError::Invalid { key, value: v.to_owned(), expected: "positive milliseconds" }),
            },
        };

        let locator = match client("locator") {
            None => None,
            Some(v) => {
                let r =
                    ObjectRef::parse(v).map_err(|source| ClientConfigError::Locator { value: v.to_owned(), source })?;
                if !r.is_direct() {
                    return Err(ClientConfigError::LocatorWithoutEndpoints(v.to_owned()));
                }
                Some(r)
            }
        };

        let enable_set = match config.get("/tars/application<enableset>").unwrap_or("") {
            v if ["y", "yes", "true", "1"].iter().any(|w| v.eq_ignore_ascii_case(w)) => true,
            v if v.is_empty() || ["n", "no", "false", "0"].iter().any(|w| v.eq_ignore_ascii_case(w)) => false,
            v => {
                return Err(ClientConfigError::Invalid {
                    key: "enableset",
                    value: v.to_owned(),
                    expected: "`Y` or `N`",
                })
            }
        };
        let set_division = if enable_set {
            let v = config.get("/tars/application<setdivision>").unwrap_or("");
            Some(SetDivision::parse(v).ok_or_else(|| ClientConfigError::BadSetDivision(v.to_owned()))?)
        } else {
            None
        };

        let mut auth_keys = BTreeMap::new();
        for object in config.domains(CLIENT_PATH) {
            let key = |k: &str| config.get(&format!("{CLIENT_PATH}/{object}<{k}>")).filter(|v| !v.is_empty());
            let missing = |key| ClientConfigError::HalfKeys { object: object.to_owned(), key };
            match (key("accesskey"), key("secretkey")) {
                (Some(ak), Some(sk)) => {
                    auth_keys.insert(object.to_owned(), Keys::new(ak, sk));
                }
                (Some(_), None) => return Err(missing("secretkey")),
                (None, Some(_)) => return Err(missing("accesskey")),
                (None, None) => {}
            }
        }

        Ok(ClientConfig {
            locator,
            sync_invoke_timeout: millis("sync-invoke-timeout", DEFAULT_SYNC_INVOKE_TIMEOUT)?,
            async_invoke_timeout: millis("async-invoke-timeout", DEFAULT_ASYNC_INVOKE_TIMEOUT)?,
            refresh_endpoint_interval: millis("refresh-endpoint-interval", DEFAULT_REFRESH_ENDPOINT_INTERVAL)?,
            report_interval: millis("report-interval", DEFAULT_REPORT_INTERVAL)?,
            stat: owned("stat"),
            property: owned("property"),
            module_name: owned("modulename"),
            enable_set,
            set_division,
            auth_keys,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> Result<ClientConfig, ClientConfigError> {
        ClientConfig::from_config(&Config::parse(text).expect("must be present and valid"))
    }

    fn with_client(body: &str) -> Result<ClientConfig, ClientConfigError> {
        client(&format!("<tars>\n<application>\n<client>\n{body}\n</client>\n</application>\n</tars>"))
    }

    #[test]
    fn full_config() {
        let c = client(
            "<tars>
  <application>
    enableset=Y
    setdivision=gz.sz.1
    <client>
      locator=tars.tarsregistry.QueryObj@tcp -h 10.0.0.1 -p 17890:tcp -h 10.0.0.2 -p 17890
      sync-invoke-timeout=2000
      async-invoke-timeout=4000
      refresh-endpoint-interval=30000
      report-interval=10000
      stat=tars.tarsstat.StatObj
      property=tars.tarsproperty.PropertyObj
      modulename=A.S
      asyncthread=3
    </client>
  </application>
</tars>",
        )
        .expect("must be present and valid");
        let loc = c.locator.as_ref().expect("must be present and valid");
        assert_eq!(loc.name, "tars.tarsregistry.QueryObj");
        assert_eq!(loc.endpoints.len(), 2);
        assert_eq!(c.sync_invoke_timeout, Duration::from_secs(2));
        assert_eq!(c.async_invoke_timeout, Duration::from_secs(4));
        assert_eq!(c.refresh_endpoint_interval, Duration::from_secs(30));
        assert_eq!(c.report_interval, Duration::from_secs(10));
        assert_eq!(c.stat.as_deref(), Some("tars.tarsstat.StatObj"));
        assert_eq!(c.property.as_deref(), Some("tars.tarsproperty.PropertyObj"));
        assert_eq!(c.module_name.as_deref(), Some("A.S"));
        assert!(c.enable_set);
        let set = c.set_division.expect("must be present and valid");
        assert_eq!((set.name.as_str(), set.area.as_str(), set.group.as_str()), ("gz", "sz", "1"));
        assert_eq!(set.to_string(), "gz.sz.1");
    }

    #[test]
    fn defaults() {
        let d = ClientConfig::default();
        assert_eq!(client("<tars>\n<application>\n</application>\n</tars>").expect("must be present and valid"), d);
        assert_eq!(client("").expect("must be present and valid"), d);
        assert_eq!(with_client("locator=\nstat=\nsync-invoke-timeout=").expect("must be present and valid"), d);
        assert_eq!(d.sync_invoke_timeout, Duration::from_millis(3000));
        assert_eq!(d.async_invoke_timeout, Duration::from_millis(5000));
        assert_eq!(d.refresh_endpoint_interval, Duration::from_millis(60000));
        assert_eq!(d.report_interval, Duration::from_millis(60000));
        assert!(d.locator.is_none() && !d.enable_set && d.set_division.is_none());
    }

    #[test]
    fn bad_numbers_name_the_key() {
        for key in ["sync-invoke-timeout", "async-invoke-timeout", "refresh-endpoint-interval", "report-interval"] {
            for value in ["3s", "-1", "0"] {
                let err = with_client(&format!("{key}={value}")).expect_err("must be rejected");
                assert_eq!(
                    err,
                    ClientConfigError::Invalid { key, value: value.into(), expected: "positive milliseconds" }
                );
                assert!(err.to_string().contains(key));
            }
        }
    }

    #[test]
    fn locator_validation() {
        assert!(matches!(with_client("locator=@tcp -h a -p 1"), Err(ClientConfigError::Locator { .. })));
        assert!(matches!(
            with_client("locator=tars.tarsregistry.QueryObj@tcp -p 1"),
            Err(ClientConfigError::Locator { source: EndpointError::InList { .. }, .. })
        ));
        assert_eq!(
            with_client("locator=tars.tarsregistry.QueryObj").expect_err("must be rejected"),
            ClientConfigError::LocatorWithoutEndpoints("tars.tarsregistry.QueryObj".into())
        );
    }

    #[test]
    fn object_keys() {
        let c = with_client(
            "<A.S.EchoObj>\naccesskey=tars-test-user\nsecretkey=123456\n</A.S.EchoObj>\n<A.S.SslObj>\nca=ca.pem\n</A.S.SslObj>",
        )
        .expect("valid");
        assert_eq!(c.auth_keys.len(), 1, "a sub-domain without keys adds none");
        let k = &c.auth_keys["A.S.EchoObj"];
        assert_eq!((k.access_key(), k.secret_key()), ("tars-test-user", "123456"));
        assert!(!format!("{c:?}").contains("123456"), "Debug hides the secret");
        assert_eq!(
            with_client("<A.S.X>\naccesskey=ak\n</A.S.X>").expect_err("refused"),
            ClientConfigError::HalfKeys { object: "A.S.X".into(), key: "secretkey" }
        );
        assert_eq!(
            with_client("<A.S.X>\naccesskey=\nsecretkey=sk\n</A.S.X>").expect_err("refused"),
            ClientConfigError::HalfKeys { object: "A.S.X".into(), key: "accesskey" }
        );
    }

    #[test]
    fn enableset_values() {
        let app = |lines: &str| client(&format!("<tars>\n<application>\n{lines}\n</application>\n</tars>"));
        for on in ["Y", "y", "yes", "TRUE", "1"] {
            let c = app(&format!("enableset={on}\nsetdivision=a.b.*")).expect("must be present and valid");
            assert!(c.enable_set, "{on}");
            assert_eq!(c.set_division.expect("must be present and valid").to_string(), "a.b.*");
        }
        for off in ["N", "n", "no", "false", "0", ""] {
            let c = app(&format!("enableset={off}\nsetdivision=not valid")).expect("must be present and valid");
            assert!(!c.enable_set && c.set_division.is_none(), "{off}: setdivision ignored when off");
        }
        assert_eq!(
            app("enableset=maybe").expect_err("must be rejected"),
            ClientConfigError::Invalid { key: "enableset", value: "maybe".into(), expected: "`Y` or `N`" }
        );
        for bad in ["", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "*.b.c", "a.*.c"] {
            assert_eq!(
                app(&format!("enableset=Y\nsetdivision={bad}")).expect_err("must be rejected"),
                ClientConfigError::BadSetDivision(bad.into()),
                "{bad}"
            );
        }
        assert_eq!(app("enableset=Y").expect_err("must be rejected"), ClientConfigError::BadSetDivision(String::new()));
    }
}
