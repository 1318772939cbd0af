//! Storage URLs: `mysql://user:pass@host:port/db?...` or `sqlite:PATH`.
//!
//! The URL carries a password, so it is never printed as given: [`StoreUrl`]'s `Display` and
//! `Debug` show it with the password masked, and errors only ever see the masked form.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::StoreError;

/// Parameters we read from the URL's query string before handing the rest to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolParams {
    /// Connections, each on its own blocking thread (`pool=`).
    pub pool: usize,
    /// How long a connection attempt may take (`connect_timeout_ms=`).
    pub connect_timeout: Duration,
    /// Socket read/write timeout of one statement (`op_timeout_ms=`).
    pub op_timeout: Duration,
}

/// Where a store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// MySQL or MariaDB.
    Mysql {
        /// The URL the driver gets (with the password; never printed).
        driver_url: String,
        /// Pool parameters.
        params: PoolParams,
    },
    /// The embedded SQLite backend: one database file.
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Pool parameters.
        params: PoolParams,
    },
}

fn take_params(query: &str, default_pool: usize, url: &str) -> Result<(PoolParams, Vec<String>), StoreError> {
    let mut p =
        PoolParams { pool: default_pool, connect_timeout: Duration::from_secs(3), op_timeout: Duration::from_secs(30) };
    let mut rest = Vec::new();
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let num = || {
            v.parse::<u64>()
                .map_err(|_| StoreError::BadUrl { url: redact(url), reason: format!("{k}={v:?} is not a number") })
        };
        match k {
            "pool" => p.pool = (num()? as usize).clamp(1, 256),
            "connect_timeout_ms" => p.connect_timeout = Duration::from_millis(num()?.max(1)),
            "op_timeout_ms" => p.op_timeout = Duration::from_millis(num()?.max(1)),
            _ => rest.push(kv.to_owned()),
        }
    }
    Ok((p, rest))
}

impl StoreUrl {
    /// Parses a storage URL.
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let url = url.trim();
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        if let Some(rest) = base.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(StoreError::BadUrl { url: redact(url), reason: "no database file path".into() });
            }
            let (params, unknown) = take_params(query, 1, url)?;
            if let Some(k) = unknown.first() {
                return Err(StoreError::BadUrl { url: redact(url), reason: format!("unknown parameter {k:?}") });
            }
            return Ok(StoreUrl::Sqlite { path: PathBuf::from(path), params });
        }
        if base.starts_with("mysql://") {
            let (params, rest) = take_params(query, 4, url)?;
            let driver_url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
            // Let the driver validate host, port and its own parameters now, not at first use.
            mysql::Opts::from_url(&driver_url)
                .map_err(|e| StoreError::BadUrl { url: redact(url), reason: redact(&e.to_string()) })?;
            return Ok(StoreUrl::Mysql { driver_url, params });
        }
        Err(StoreError::BadUrl {
            url: redact(url),
            reason: "expected mysql://user:pass@host:port/db or sqlite:PATH".into(),
        })
    }

    /// Builds a MySQL URL from the keys of an upstream `<db>` config section
    /// (`dbhost`, `dbport`, `dbuser`, `dbpass`, `dbname`).
    pub fn from_db_section(host: &str, port: u16, user: &str, pass: &str, db: &str) -> Result<StoreUrl, StoreError> {
        StoreUrl::parse(&format!(
            "mysql://{}:{}@{}:{port}/{}",
            percent_encode(user),
            percent_encode(pass),
            host,
            percent_encode(db)
        ))
    }

    /// The database described by an upstream config section such as `/tars/db` or
    /// `/tars/statdb/db1`: `dbhost`, `dbport` (default 3306), `dbuser`, `dbpass`, `dbname`.
    /// Our extension: a `url` key (`mysql://...` or `sqlite:PATH`) takes precedence.
    /// `Ok(None)` when the section does not exist.
    pub fn from_config(config: &tars_proto::config::Config, section: &str) -> Result<Option<StoreUrl>, StoreError> {
        if !config.has_domain(section) {
            return Ok(None);
        }
        let key = |k: &str| config.get(&format!("{section}<{k}>")).map(str::trim).filter(|v| !v.is_empty());
        if let Some(url) = key("url") {
            return StoreUrl::parse(url).map(Some);
        }
        let bad = |reason: String| StoreError::BadUrl { url: format!("config section {section}"), reason };
        let host = key("dbhost").ok_or_else(|| bad("dbhost is missing".into()))?;
        let db = key("dbname").ok_or_else(|| bad("dbname is missing".into()))?;
        let port = match key("dbport") {
            Some(p) => p.parse::<u16>().map_err(|_| bad(format!("dbport {p:?} is not a port")))?,
            None => 3306,
        };
        StoreUrl::from_db_section(host, port, key("dbuser").unwrap_or(""), key("dbpass").unwrap_or(""), db).map(Some)
    }

    /// The embedded database `name` in data directory `dir`.
    pub fn embedded(dir: &std::path::Path, name: &str) -> StoreUrl {
        StoreUrl::Sqlite {
            path: dir.join(format!("{name}.sqlite3")),
            params: PoolParams {
                pool: 1,
                connect_timeout: Duration::from_secs(3),
                op_timeout: Duration::from_secs(30),
            },
        }
    }

    /// Pool parameters.
    pub fn params(&self) -> &PoolParams {
        match self {
            StoreUrl::Mysql { params, .. } | StoreUrl::Sqlite { params, .. } => params,
        }
    }

    /// The backend's dialect.
    pub fn dialect(&self) -> crate::Dialect {
        match self {
            StoreUrl::Mysql { .. } => crate::Dialect::Mysql,
            StoreUrl::Sqlite { .. } => crate::Dialect::Sqlite,
        }
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreUrl::Mysql { driver_url, .. } => f.write_str(&redact(driver_url)),
            StoreUrl::Sqlite { path, .. } => write!(f, "sqlite:{}", path.display()),
        }
    }
}

impl fmt::Debug for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreUrl({self})")
    }
}

/// `url` (`mysql://user:pass@host:port/db?params`) with `db` as its database, the query string
/// kept: the same server's other framework database, or a test's own database.
pub fn url_with_database(url: &str, db: &str) -> String {
    let (head, query) = url.split_once('?').map_or((url, None), |(h, q)| (h, Some(q)));
    let after_scheme = head.find("://").map_or(0, |i| i + 3);
    let server = match head[after_scheme..].find('/') {
        Some(i) => &head[..after_scheme + i],
        None => head,
    };
    match query {
        Some(q) if !q.is_empty() => format!("{server}/{db}?{q}"),
        _ => format!("{server}/{db}"),
    }
}

/// Masks the password in anything that looks like `scheme://user:password@host`. A password
/// may itself hold `/`, `?` or `@` (unencoded, as people type them), so the user info runs to
/// the last `@` before the next whitespace: masking too much is fine, too little is not.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let token_end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        match tail[..token_end].rfind('@') {
            Some(at) => {
                let userinfo = &tail[..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => {
                        out.push_str(user);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
