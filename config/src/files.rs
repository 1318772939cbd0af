//! Which rows of `t_config_files` a call reads, and how their texts are put together: every
//! `ConfigF` method as upstream's `ConfigImp.cpp` does it, sans-IO, over a [`Source`] of rows.
//!
//! Two sources implement it: the in-memory [`crate::cache::Files`] a shard answers from, and
//! [`crate::sql::SqlSource`], a database session on a store worker (before the first load,
//! or when the table does not fit the cache's budget). Both give the same answers; the tests
//! hold them to it.
//!
//! The levels of `t_config_files.level`: 1 an application's file (`server_name` is the app),
//! 2 a server's file for all its nodes (`App.Server`), 3 one node's (`App.Server` and `host`).
//! `t_config_references` attaches level-1 files to a level-2 or level-3 file.
//!
//! A server's file is a **textual concatenation**, joined by `"\r\n\r\n"`, of: the files the
//! level-2 file references, the level-2 file, the files the node's level-3 file references,
//! the level-3 file; empty parts are skipped. A consumer parsing it as a TARS config gets
//! "the later key wins", so the node beats the server beats the app.

/// `t_config_files.level` of an application's file.
pub const LEVEL_APP: i32 = 1;
/// A server's file, for all its nodes.
pub const LEVEL_SERVER: i32 = 2;
/// One node's file of a server.
pub const LEVEL_NODE: i32 = 3;

/// What joins the parts of a concatenated file (upstream's `mergeConfig`).
pub const SEPARATOR: &str = "\r\n\r\n";

/// A set as the table stores it: three columns, all empty for "no set".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SetId {
    /// `set_name`.
    pub name: String,
    /// `set_area`.
    pub area: String,
    /// `set_group`.
    pub group: String,
}

impl SetId {
    /// No set: the three columns empty.
    pub fn none() -> SetId {
        SetId::default()
    }

    /// `name.area.group`, as `TC_Common::sepstr` splits it: empty parts are dropped, and
    /// exactly three must remain (`a..b.c` is `a`, `b`, `c`; `a.b` is invalid).
    pub fn parse(division: &str) -> Option<SetId> {
        let mut parts = division.split('.').filter(|p| !p.is_empty());
        let (name, area, group) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Some(SetId { name: name.to_owned(), area: area.to_owned(), group: group.to_owned() })
    }
}

/// One row lookup: `server_name`, `filename`, `level`, the set columns, and `host` when the
/// lookup names one.
#[derive(Debug, Clone, Copy)]
pub struct FileKey<'a> {
    /// `server_name`: the app (level 1) or `App.Server`.
    pub server_name: &'a str,
    /// `filename`.
    pub filename: &'a str,
    /// `level`.
    pub level: i32,
    /// `host`, when filtered (level 3).
    pub host: Option<&'a str>,
    /// The set columns, matched exactly.
    pub set: &'a SetId,
}

/// A listing of file names.
#[derive(Debug, Clone, Copy)]
pub struct ListKey<'a> {
    /// `server_name`.
    pub server_name: &'a str,
    /// `level`, when filtered.
    pub level: Option<i32>,
    /// `host`, when filtered.
    pub host: Option<&'a str>,
    /// The set columns, when filtered.
    pub set: Option<&'a SetId>,
    /// Each name once (`SELECT DISTINCT`), in name order; otherwise one per row, in id order.
    pub distinct: bool,
}

/// Rows of `t_config_files` and `t_config_references`.
pub trait Source {
    /// Why a read failed.
    type Error: std::fmt::Display;

    /// The `(id, config)` of the row `key` selects, when exactly one does (upstream takes a
    /// row only when the query returns one).
    fn file(&mut self, key: &FileKey<'_>) -> Result<Option<(i64, String)>, Self::Error>;

    /// The ids `config_id` references, in `reference_id` order (the order of the table's
    /// unique index, which is what upstream's query returns on MySQL).
    fn references(&mut self, config_id: i64) -> Result<Vec<i64>, Self::Error>;

    /// The `(server_name, filename, config)` of the row with this id.
    fn by_id(&mut self, id: i64) -> Result<Option<(String, String, String)>, Self::Error>;

    /// File names.
    fn names(&mut self, key: &ListKey<'_>) -> Result<Vec<String>, Self::Error>;
}

/// What a call answers: upstream's return code and its out parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer<T> {
    /// 0, or -1 (an invalid set division or a database failure).
    pub ret: i32,
    /// The file, the names, or on failure the error text (loads) or nothing (lists).
    pub out: T,
}

impl<T> Answer<T> {
    fn ok(out: T) -> Answer<T> {
        Answer { ret: 0, out }
    }
}

/// Appends `part` to `text` with the separator, skipping empties (upstream's `mergeConfig`).
fn join(text: &mut String, part: &str) {
    if part.is_empty() {
        return;
    }
    if !text.is_empty() {
        text.push_str(SEPARATOR);
    }
    text.push_str(part);
}

/// A level-1 file joined with its variant for `set`, when the set is valid and has one
/// (upstream's `loadRefConfigByPK`).
fn reference_text<S: Source>(src: &mut S, id: i64, set: Option<&SetId>) -> Result<String, S::Error> {
    let Some((server_name, filename, app_text)) = src.by_id(id)? else { return Ok(String::new()) };
    let mut text = app_text;
    if let Some(set) = set {
        let key = FileKey { server_name: &server_name, filename: &filename, level: LEVEL_APP, host: None, set };
        if let Some((_, set_text)) = src.file(&key)? {
            join(&mut text, &set_text);
        }
    }
    Ok(text)
}

/// One level of a server's file: its references, then itself. `set_refs`: the set the
/// referenced app files are specialised for (only the `...ByInfo` calls do that).
fn level_text<S: Source>(
    src: &mut S,
    key: &FileKey<'_>,
    set_refs: Option<&SetId>,
    text: &mut String,
) -> Result<(), S::Error> {
    // Upstream looks up the references of id 0 when there is no row; no row has id 0.
    let (id, own) = src.file(key)?.unwrap_or((0, String::new()));
    if id != 0 {
        for r in src.references(id)? {
            join(text, &reference_text(src, r, set_refs)?);
        }
    }
    join(text, &own);
    Ok(())
}

fn failed<E: std::fmt::Display>(e: E) -> Answer<String> {
    Answer { ret: -1, out: e.to_string() }
}

/// `loadConfig` with an empty server: the application's file, outside any set
/// (`loadAppConfig`).
pub fn load_app<S: Source>(src: &mut S, app: &str, filename: &str) -> Answer<String> {
    let key = FileKey { server_name: app, filename, level: LEVEL_APP, host: None, set: &SetId::none() };
    match src.file(&key) {
        Ok(f) => Answer::ok(f.map(|(_, t)| t).unwrap_or_default()),
        Err(e) => failed(e),
    }
}

/// `loadConfigByHost` (and `loadConfig` with a server): a server's file for `host`, outside
/// any set; referenced app files are taken as they are.
pub fn load_by_host<S: Source>(src: &mut S, app_server: &str, filename: &str, host: &str) -> Answer<String> {
    let none = SetId::none();
    let mut text = String::new();
    let server = FileKey { server_name: app_server, filename, level: LEVEL_SERVER, host: None, set: &none };
    let node = FileKey { host: Some(host), level: LEVEL_NODE, ..server };
    match level_text(src, &server, None, &mut text).and_then(|()| level_text(src, &node, None, &mut text)) {
        Ok(()) => Answer::ok(text),
        Err(e) => failed(e),
    }
}

/// The set a `...ByInfo` call names: `Ok(None)` for no set, `Err` for an invalid division.
fn info_set(division: &str) -> Result<Option<SetId>, ()> {
    if division.is_empty() {
        Ok(None)
    } else {
        SetId::parse(division).map(Some).ok_or(())
    }
}

/// `loadConfigByInfo` for a server (`loadConfigByHost(ConfigInfo)`): rows of the info's set
/// (or outside sets), referenced app files joined with their variant for that set.
pub fn load_by_info<S: Source>(
    src: &mut S,
    app: &str,
    server: &str,
    filename: &str,
    host: &str,
    division: &str,
) -> Answer<String> {
    let Ok(set) = info_set(division) else { return Answer { ret: -1, out: String::new() } };
    let rows_set = set.clone().unwrap_or_default();
    let app_server = format!("{app}.{server}");
    let mut text = String::new();
    let server_key = FileKey { server_name: &app_server, filename, level: LEVEL_SERVER, host: None, set: &rows_set };
    let node_key = FileKey { host: Some(host), level: LEVEL_NODE, ..server_key };
    let refs = set.as_ref();
    match level_text(src, &server_key, refs, &mut text).and_then(|()| level_text(src, &node_key, refs, &mut text)) {
        Ok(()) => Answer::ok(text),
        Err(e) => failed(e),
    }
}

/// `loadConfigByInfo` for an application (`bAppOnly`, or an empty server): the app's file,
/// joined with its variant for the info's set (`loadAppConfigByInfo`).
pub fn load_app_by_info<S: Source>(src: &mut S, app: &str, filename: &str, division: &str) -> Answer<String> {
    let Ok(set) = info_set(division) else { return Answer { ret: -1, out: String::new() } };
    let key = FileKey { server_name: app, filename, level: LEVEL_APP, host: None, set: &SetId::none() };
    let mut text = String::new();
    let run = |src: &mut S, text: &mut String| -> Result<(), S::Error> {
        if let Some((_, t)) = src.file(&key)? {
            join(text, &t);
        }
        if let Some(set) = &set {
            if let Some((_, t)) = src.file(&FileKey { set, ..key })? {
                join(text, &t);
            }
        }
        Ok(())
    };
    match run(src, &mut text) {
        Ok(()) => Answer::ok(text),
        Err(e) => failed(e),
    }
}

fn listed<E: std::fmt::Display>(r: Result<Vec<String>, E>) -> Answer<Vec<String>> {
    match r {
        Ok(names) => Answer::ok(names),
        Err(e) => {
            tracing::warn!(error = %e, "config: listing files failed");
            Answer { ret: -1, out: Vec::new() }
        }
    }
}

/// `ListConfig`: the names of the node's (level 3) files of `App.Server` on `host`, outside
/// any set. Level 3 only: when a server-level file is added, TarsWeb also adds an empty
/// node-level row for each of the server's nodes, so this lists those too.
pub fn list<S: Source>(src: &mut S, app: &str, server: &str, host: &str) -> Answer<Vec<String>> {
    let app_server = format!("{app}.{server}");
    let none = SetId::none();
    let key = ListKey {
        server_name: &app_server,
        level: Some(LEVEL_NODE),
        host: Some(host),
        set: Some(&none),
        distinct: false,
    };
    listed(src.names(&key))
}

/// `ListConfigByInfo`: as [`list`], in the info's set.
pub fn list_by_info<S: Source>(
    src: &mut S,
    app: &str,
    server: &str,
    host: &str,
    division: &str,
) -> Answer<Vec<String>> {
    let Ok(set) = info_set(division) else { return Answer { ret: -1, out: Vec::new() } };
    let set = set.unwrap_or_default();
    let app_server = format!("{app}.{server}");
    let key = ListKey {
        server_name: &app_server,
        level: Some(LEVEL_NODE),
        host: Some(host),
        set: Some(&set),
        distinct: false,
    };
    listed(src.names(&key))
}

/// `ListAllConfigByInfo`: with `bAppOnly`, the app's file names in any set; otherwise the
/// names of `App.Server` at every level (at level 3 on `host` only, when one is given), in
/// the info's set or outside sets.
pub fn list_all<S: Source>(
    src: &mut S,
    app: &str,
    server: &str,
    app_only: bool,
    host: &str,
    division: &str,
) -> Answer<Vec<String>> {
    if app_only {
        let key = ListKey { server_name: app, level: Some(LEVEL_APP), host: None, set: None, distinct: true };
        return listed(src.names(&key));
    }
    let Ok(set) = info_set(division) else { return Answer { ret: -1, out: Vec::new() } };
    let set = set.unwrap_or_default();
    let app_server = format!("{app}.{server}");
    let (level, host) = if host.is_empty() { (None, None) } else { (Some(LEVEL_NODE), Some(host)) };
    let key = ListKey { server_name: &app_server, level, host, set: Some(&set), distinct: true };
    listed(src.names(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_divisions_split_as_upstream() {
        let s = |n: &str, a: &str, g: &str| SetId { name: n.into(), area: a.into(), group: g.into() };
        assert_eq!(SetId::parse("sz.a.1"), Some(s("sz", "a", "1")));
        assert_eq!(SetId::parse("sz..a.1"), Some(s("sz", "a", "1")));
        assert_eq!(SetId::parse("sz.a"), None);
        assert_eq!(SetId::parse("sz.a.1.x"), None);
        assert_eq!(SetId::parse(""), None);
    }

    #[test]
    fn empty_parts_are_not_joined() {
        let mut t = String::new();
        join(&mut t, "");
        join(&mut t, "a");
        join(&mut t, "");
        join(&mut t, "b");
        assert_eq!(t, "a\r\n\r\nb");
    }
}
