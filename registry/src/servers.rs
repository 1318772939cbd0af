//! What a node is told about its servers (`getServers`) and about itself (`getNodeTemplate`):
//! rows of `t_server_conf` / `t_adapter_conf` turned into `ServerDescriptor`s, and profile
//! templates resolved through their `parents_name` chain.
//!
//! Template resolution follows upstream (`CDbHandle::getProfileTemplate`): a template is merged
//! with its parent's resolved text so the **child wins** key by key (`joinConfig(parent,
//! false)`), a name already seen in the chain stops the walk (so `tars.default` naming itself
//! as its parent is harmless), and a missing template contributes nothing. The server's own
//! `profile` column is then laid over the resolved template, the **server winning**. We add a
//! depth limit ([`MAX_TEMPLATE_DEPTH`]) and skip only the one level whose text does not parse
//! (upstream loses that level and every ancestor above it).
//!
//! All database work for one answer runs in one job on the store's worker thread: the server
//! query and then one query per template level, each distinct template resolved once per call.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};

use tars_proto::config::Config;
use tars_protocol::tars::{AdapterDescriptor, ServerDescriptor};
use tars_sql::{Row, Session, Store, StoreError, Value};

/// Longest template chain followed. Upstream has no limit (only the cycle guard); a chain this
/// long is a data error, and stopping keeps one bad row from costing unbounded queries.
pub const MAX_TEMPLATE_DEPTH: usize = 32;

/// The profile key whose value, when a server's own profile sets it, is its `asyncThreadNum`.
const ASYNC_THREAD_KEY: &str = "/tars/application/client<asyncthread>";

/// One `t_profile_template` row: a template's own text and the name of its parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRow {
    /// `template_name`.
    pub name: String,
    /// `parents_name`; empty for none.
    pub parents: String,
    /// `profile`: the template's own config text.
    pub profile: String,
}

/// The chain of `name`, child first: each template followed by its parent, stopping at a
/// template that does not exist, a name already in the chain, or [`MAX_TEMPLATE_DEPTH`] levels.
/// `load` fetches one template by name.
pub fn template_chain<E>(
    name: &str,
    mut load: impl FnMut(&str) -> Result<Option<TemplateRow>, E>,
) -> Result<Vec<TemplateRow>, E> {
    let mut chain: Vec<TemplateRow> = Vec::new();
    let mut next = name.to_owned();
    while !next.is_empty() && chain.len() < MAX_TEMPLATE_DEPTH {
        if chain.iter().any(|t| t.name == next) {
            break;
        }
        let Some(row) = load(&next)? else {
            tracing::debug!(template = ?next, "profile template not found; chain ends here");
            break;
        };
        next = row.parents.clone();
        chain.push(row);
    }
    if chain.len() == MAX_TEMPLATE_DEPTH && !next.is_empty() && !chain.iter().any(|t| t.name == next) {
        tracing::warn!(template = ?name, depth = MAX_TEMPLATE_DEPTH, "profile template chain too deep; ancestors ignored");
    }
    Ok(chain)
}

/// Merges a chain (child first, as [`template_chain`] returns it) into one config: the oldest
/// ancestor first, each descendant laid over it so the child's keys win. A level whose text
/// does not parse, or cannot be merged, is skipped with a warning.
pub fn merge_chain(chain: &[TemplateRow]) -> Config {
    let mut merged = Config::new();
    for level in chain.iter().rev() {
        let parsed = match Config::parse(&level.profile) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(template = ?level.name, error = %e, "profile template does not parse; level skipped");
                continue;
            }
        };
        if let Err(e) = merged.join(&parsed, true) {
            tracing::warn!(template = ?level.name, error = %e, "profile template cannot be merged; level skipped");
        }
    }
    merged
}

/// Loads one template by name.
fn load_template(s: &mut dyn Session, name: &str) -> Result<Option<TemplateRow>, StoreError> {
    let rows = s.query(
        "SELECT template_name, parents_name, profile FROM t_profile_template WHERE template_name = ?",
        &[Value::from(name)],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    Ok(Some(TemplateRow {
        name: text(row, "template_name")?,
        parents: text(row, "parents_name")?,
        profile: text(row, "profile")?,
    }))
}

/// Resolves template `name` through its parents (empty if it does not exist).
pub fn resolve_template(s: &mut dyn Session, name: &str) -> Result<Config, StoreError> {
    let chain = template_chain(name, |n| load_template(s, n))?;
    Ok(merge_chain(&chain))
}

/// `getNodeTemplate`: the resolved profile text of `node`'s template (`t_node_info.template_name`),
/// or of `default_template` when the node names none or has no row. Empty when the template
/// does not exist.
pub async fn node_template(store: &Store, node: &str, default_template: &str) -> Result<String, StoreError> {
    let node = node.to_owned();
    let default_template = default_template.to_owned();
    store
        .run(move |s| {
            let rows = s.query("SELECT template_name FROM t_node_info WHERE node_name = ?", &[Value::from(&node)])?;
            let named = match rows.first() {
                Some(row) => text(row, "template_name")?,
                None => String::new(),
            };
            let name = if named.trim().is_empty() { default_template } else { named };
            let resolved = resolve_template(s, &name)?;
            Ok(config_text(&resolved, &name))
        })
        .await
}

/// The text of a resolved config; merged configs always serialise (a level that could not was
/// skipped), so the error arm only guards against a future change.
fn config_text(c: &Config, what: &str) -> String {
    c.to_text().unwrap_or_else(|e| {
        tracing::warn!(template = ?what, error = %e, "resolved profile does not serialise");
        String::new()
    })
}

/// `getServers`: one descriptor per server of `node` (only `app` / `server` when non-empty),
/// except `tars_dns` servers, with their adapters and resolved profiles.
pub async fn get_servers(
    store: &Store,
    app: &str,
    server: &str,
    node: &str,
) -> Result<Vec<ServerDescriptor>, StoreError> {
    let (app, server, node) = (app.to_owned(), server.to_owned(), node.to_owned());
    store.run(move |s| load_servers(s, &app, &server, &node)).await
}

/// The server query: every column a descriptor needs, one row per adapter (one row with NULL
/// adapter columns for a server without adapters). The filters are appended as fixed text.
const SERVERS_SQL: &str = "SELECT s.application AS application, s.server_name AS server_name, \
     s.node_name AS node_name, s.base_path AS base_path, s.exe_path AS exe_path, \
     s.setting_state AS setting_state, s.present_state AS present_state, s.profile AS profile, \
     s.template_name AS template_name, s.patch_version AS patch_version, s.patch_time AS patch_time, \
     s.patch_user AS patch_user, s.server_type AS server_type, s.start_script_path AS start_script_path, \
     s.stop_script_path AS stop_script_path, s.monitor_script_path AS monitor_script_path, \
     s.config_center_port AS config_center_port, s.async_thread_num AS async_thread_num, \
     s.enable_set AS enable_set, s.set_name AS set_name, s.set_area AS set_area, s.set_group AS set_group, \
     s.run_type AS run_type, s.base_image_id AS base_image_id, \
     i.image AS base_image, i.sha AS base_image_sha, \
     a.adapter_name AS adapter_name, a.thread_num AS thread_num, a.endpoint AS endpoint, \
     a.max_connections AS max_connections, a.allow_ip AS allow_ip, a.servant AS servant, \
     a.queuecap AS queuecap, a.queuetimeout AS queuetimeout, a.protocol AS protocol, a.handlegroup AS handlegroup \
     FROM t_server_conf AS s \
     LEFT JOIN t_adapter_conf AS a ON a.application = s.application AND a.server_name = s.server_name \
     AND a.node_name = s.node_name \
     LEFT JOIN t_base_image AS i ON i.id = s.base_image_id \
     WHERE s.node_name = ? AND s.server_type <> 'tars_dns'";

/// Runs the server query and builds the descriptors (on a storage worker thread).
fn load_servers(s: &mut dyn Session, app: &str, server: &str, node: &str) -> Result<Vec<ServerDescriptor>, StoreError> {
    let mut sql = String::from(SERVERS_SQL);
    let mut params = vec![Value::from(node)];
    if !app.is_empty() {
        sql.push_str(" AND s.application = ?");
        params.push(Value::from(app));
    }
    if !server.is_empty() {
        sql.push_str(" AND s.server_name = ?");
        params.push(Value::from(server));
    }
    sql.push_str(" ORDER BY s.application, s.server_name, a.adapter_name");
    let rows = s.query(&sql, &params)?;

    let mut templates: HashMap<String, Config> = HashMap::new();
    let mut servers: Vec<ServerDescriptor> = Vec::new();
    // (application, server_name) → index in `servers`, or None for a server left out.
    let mut index: BTreeMap<(String, String), Option<usize>> = BTreeMap::new();
    for row in &rows {
        let key = (text(row, "application")?, text(row, "server_name")?);
        let slot = match index.get(&key) {
            Some(slot) => *slot,
            None => {
                let template_name = text(row, "template_name")?;
                let template = match templates.entry(template_name) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let resolved = resolve_template(s, e.key())?;
                        e.insert(resolved)
                    }
                };
                let slot = server_descriptor(row, template)?.map(|d| {
                    servers.push(d);
                    servers.len() - 1
                });
                index.insert(key, slot);
                slot
            }
        };
        if let (Some(i), Some(adapter)) = (slot, adapter_descriptor(row)?) {
            if let Some(d) = servers.get_mut(i) {
                d.adapters.insert(adapter.adapter_name.clone(), adapter);
            }
        }
    }
    Ok(servers)
}

/// The descriptor of the server in `row` (adapters not yet filled in), its profile being
/// `template` overlaid with the server's own profile. `None`, logged, when the server's profile
/// does not parse or merge: that server is left out of the answer rather than started with a
/// config missing its overrides (upstream fails the whole call, for every server of the node).
fn server_descriptor(row: &Row, template: &Config) -> Result<Option<ServerDescriptor>, StoreError> {
    let application = text(row, "application")?;
    let server_name = text(row, "server_name")?;
    let own = text(row, "profile")?;
    let server_type = text(row, "server_type")?;
    let own_profile = match Config::parse(&own) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(server = %format!("{application}.{server_name}"), error = %e,
                "server profile does not parse; server left out of getServers");
            return Ok(None);
        }
    };
    let async_thread_num = async_thread_num(&server_type, &value(row, "async_thread_num")?, &own_profile);
    let mut merged = template.clone();
    if let Err(e) = merged.join(&own_profile, true) {
        tracing::error!(server = %format!("{application}.{server_name}"), error = %e,
            "server profile cannot be merged with its template; server left out of getServers");
        return Ok(None);
    }
    let Ok(profile) = merged.to_text() else {
        tracing::error!(server = %format!("{application}.{server_name}"), "merged server profile does not serialise");
        return Ok(None);
    };
    let set_id = if text(row, "enable_set")?.eq_ignore_ascii_case("y") {
        format!("{}.{}.{}", text(row, "set_name")?, text(row, "set_area")?, text(row, "set_group")?)
    } else {
        String::new()
    };
    Ok(Some(ServerDescriptor {
        application,
        server_name,
        node_name: text(row, "node_name")?,
        base_path: text(row, "base_path")?,
        exe_path: text(row, "exe_path")?,
        setting_state: text(row, "setting_state")?,
        present_state: text(row, "present_state")?,
        profile,
        patch_version: text(row, "patch_version")?,
        patch_time: text(row, "patch_time")?,
        patch_user: text(row, "patch_user")?,
        adapters: BTreeMap::new(),
        server_type,
        start_script: text(row, "start_script_path")?,
        stop_script: text(row, "stop_script_path")?,
        monitor_script: text(row, "monitor_script_path")?,
        config_center_port: int(&value(row, "config_center_port")?),
        async_thread_num,
        set_id,
        run_type: text(row, "run_type")?,
        // Found in `t_base_image` by `base_image_id`; empty when there is no such image.
        base_image: text(row, "base_image")?,
        sha: text(row, "base_image_sha")?,
        base_image_id: text(row, "base_image_id")?,
        ..ServerDescriptor::default()
    }))
}

/// The adapter in `row`, or `None` for the row of a server without adapters.
fn adapter_descriptor(row: &Row) -> Result<Option<AdapterDescriptor>, StoreError> {
    let adapter_name = text(row, "adapter_name")?;
    if adapter_name.is_empty() {
        return Ok(None);
    }
    Ok(Some(AdapterDescriptor {
        adapter_name,
        thread_num: text(row, "thread_num")?,
        endpoint: text(row, "endpoint")?,
        max_connections: int(&value(row, "max_connections")?),
        allow_ip: text(row, "allow_ip")?,
        servant: text(row, "servant")?,
        queuecap: int(&value(row, "queuecap")?),
        queuetimeout: int(&value(row, "queuetimeout")?),
        grid: 0,
        protocol: text(row, "protocol")?,
        handlegroup: text(row, "handlegroup")?,
        ..AdapterDescriptor::default()
    }))
}

/// `asyncThreadNum` as upstream computes it: the server profile's
/// `/tars/application/client<asyncthread>` when set, else `async_thread_num` raised to at least
/// 3 (0 for `tars_nodejs`, whose runtime has no async threads).
pub fn async_thread_num(server_type: &str, column: &Value, own_profile: &Config) -> i32 {
    let floor = if server_type == "tars_nodejs" { 0 } else { 3 };
    match own_profile.get(ASYNC_THREAD_KEY) {
        Some(v) => strto_int(v),
        None => int(column).max(floor),
    }
}

/// Reads an integer the way TarsCpp's `strto<int>` does: leading blanks, an optional sign and
/// digits; anything unreadable (or out of range) is 0.
pub fn strto_int(s: &str) -> i32 {
    let t = s.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    let Ok(n) = digits[..end].parse::<i64>() else { return 0 };
    i32::try_from(if neg { -n } else { n }).unwrap_or(0)
}

/// A column's raw value; a missing column is an error (the query and the reader disagree).
fn value(row: &Row, col: &str) -> Result<Value, StoreError> {
    row.get_by::<Value>(col)
}

/// A column as text, as TarsCpp's `MysqlData` gives it: NULL is empty, numbers in decimal.
fn text(row: &Row, col: &str) -> Result<String, StoreError> {
    Ok(match value(row, col)? {
        Value::Null => String::new(),
        Value::Text(s) => s,
        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
    })
}

/// A column as an `int`: NULL, unreadable or out-of-range values are 0.
fn int(v: &Value) -> i32 {
    match v {
        Value::Int(i) => i32::try_from(*i).unwrap_or(0),
        Value::UInt(u) => i32::try_from(*u).unwrap_or(0),
        Value::Text(s) => strto_int(s),
        Value::Bytes(b) => strto_int(&String::from_utf8_lossy(b)),
        Value::Float(f) if f.is_finite() && f.abs() < 2.0e9 => *f as i32,
        Value::Float(_) | Value::Null => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, parents: &str, profile: &str) -> TemplateRow {
        TemplateRow { name: name.into(), parents: parents.into(), profile: profile.into() }
    }

    fn lookup<'a>(rows: &'a [TemplateRow]) -> impl FnMut(&str) -> Result<Option<TemplateRow>, ()> + 'a {
        move |n| Ok(rows.iter().find(|r| r.name == n).cloned())
    }

    #[test]
    fn chain_follows_parents_and_stops_at_cycles_and_missing() {
        let rows = [row("c", "b", ""), row("b", "a", ""), row("a", "a", ""), row("x", "y", "")];
        let names =
            |n| template_chain(n, lookup(&rows)).expect("no error").into_iter().map(|r| r.name).collect::<Vec<_>>();
        assert_eq!(names("c"), ["c", "b", "a"]);
        assert_eq!(names("x"), ["x"]);
        assert!(names("missing").is_empty());
        assert!(names("").is_empty());
    }

    #[test]
    fn chain_is_bounded() {
        let rows: Vec<_> = (0..100).map(|i| row(&format!("t{i}"), &format!("t{}", i + 1), "")).collect();
        assert_eq!(template_chain("t0", lookup(&rows)).expect("no error").len(), MAX_TEMPLATE_DEPTH);
    }

    #[test]
    fn merge_lets_the_child_win_and_keeps_parent_keys() {
        let chain = [
            row("child", "mid", "<tars>\n<application>\n<server>\nlogLevel=DEBUG\n</server>\n</application>\n</tars>\n"),
            row("mid", "root", "<tars>\n<application>\n<server>\nlogLevel=INFO\nlogsize=5M\n</server>\n</application>\n</tars>\n"),
            row("root", "", "<tars>\n<application>\n<server>\nlogLevel=ERROR\nlognum=10\nlogsize=10M\n</server>\n</application>\n</tars>\n"),
        ];
        let c = merge_chain(&chain);
        assert_eq!(c.get("/tars/application/server<logLevel>"), Some("DEBUG"));
        assert_eq!(c.get("/tars/application/server<logsize>"), Some("5M"));
        assert_eq!(c.get("/tars/application/server<lognum>"), Some("10"));
    }

    #[test]
    fn a_broken_level_is_skipped_alone() {
        let chain = [
            row("child", "mid", "<a>\nk=child\n</a>\n"),
            row("mid", "root", "<a>\n</b>\n"),
            row("root", "", "<a>\nr=1\n</a>\n"),
        ];
        let c = merge_chain(&chain);
        assert_eq!(c.get("/a<k>"), Some("child"));
        assert_eq!(c.get("/a<r>"), Some("1"));
    }

    #[test]
    fn async_threads_follow_upstream() {
        let empty = Config::new();
        assert_eq!(async_thread_num("tars_cpp", &Value::Int(1), &empty), 3);
        assert_eq!(async_thread_num("tars_cpp", &Value::Int(8), &empty), 8);
        assert_eq!(async_thread_num("tars_cpp", &Value::Null, &empty), 3);
        assert_eq!(async_thread_num("tars_nodejs", &Value::Int(0), &empty), 0);
        let own = Config::parse("<tars>\n<application>\n<client>\nasyncthread=2\n</client>\n</application>\n</tars>\n")
            .expect("parses");
        assert_eq!(async_thread_num("tars_cpp", &Value::Int(8), &own), 2);
    }

    #[test]
    fn strto_reads_like_tarscpp() {
        assert_eq!(strto_int(" 12"), 12);
        assert_eq!(strto_int("-4x"), -4);
        assert_eq!(strto_int("x"), 0);
        assert_eq!(strto_int(""), 0);
        assert_eq!(strto_int("99999999999"), 0);
    }
}
