//! `tars.tarsconfig.ConfigObj`: the generated `Config` servant over [`crate::files`].
//!
//! Each call is one [`Query`], answered from the shard's cached [`Files`] when the cache holds
//! them, else on a store worker through [`SqlSource`]; nothing blocks a shard.
//!
//! The caller's host, for the node-level files, is the request context's `node_name` when
//! present, else the peer's IP (TarsCpp's `Current::getHostName`; TarsCpp servers put their
//! node name in every call's context).

use std::sync::Arc;

use tars_proto::rpc::{Current, ServantError};
use tars_protocol::tars::{Config, ConfigInfo, GetConfigListInfo};
use tars_sql::Store;

use crate::cache::{Files, ShardView};
use crate::files::{self, Answer, Source};
use crate::limit::{Limiter, LIMITED};
use crate::sql::SqlSource;

/// One `ConfigF` call, owned, so it can travel to a store worker.
#[derive(Debug, Clone)]
pub enum Query {
    /// `loadConfig` with an empty server.
    App {
        /// App.
        app: String,
        /// File.
        file: String,
    },
    /// `loadConfig` with a server, `loadConfigByHost`, `checkConfig`.
    Host {
        /// `App.Server`.
        app_server: String,
        /// File.
        file: String,
        /// Node.
        host: String,
    },
    /// `loadConfigByInfo` / `checkConfigByInfo` for a server.
    Info {
        /// App.
        app: String,
        /// Server.
        server: String,
        /// File.
        file: String,
        /// Node.
        host: String,
        /// `setdivision`.
        division: String,
    },
    /// `loadConfigByInfo` for an application.
    AppInfo {
        /// App.
        app: String,
        /// File.
        file: String,
        /// `setdivision`.
        division: String,
    },
    /// `ListConfig`.
    List {
        /// App.
        app: String,
        /// Server.
        server: String,
        /// Node.
        host: String,
    },
    /// `ListConfigByInfo`.
    ListInfo {
        /// App.
        app: String,
        /// Server.
        server: String,
        /// Node.
        host: String,
        /// `setdivision`.
        division: String,
    },
    /// `ListAllConfigByInfo`.
    ListAll {
        /// App.
        app: String,
        /// Server.
        server: String,
        /// `bAppOnly`.
        app_only: bool,
        /// Node filter, may be empty.
        host: String,
        /// `setdivision`.
        division: String,
    },
}

/// A [`Query`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A file's text.
    Text(Answer<String>),
    /// File names.
    Names(Answer<Vec<String>>),
}

impl Query {
    /// Answers from `src`.
    pub fn run<S: Source>(&self, src: &mut S) -> Reply {
        match self {
            Query::App { app, file } => Reply::Text(files::load_app(src, app, file)),
            Query::Host { app_server, file, host } => Reply::Text(files::load_by_host(src, app_server, file, host)),
            Query::Info { app, server, file, host, division } => {
                Reply::Text(files::load_by_info(src, app, server, file, host, division))
            }
            Query::AppInfo { app, file, division } => Reply::Text(files::load_app_by_info(src, app, file, division)),
            Query::List { app, server, host } => Reply::Names(files::list(src, app, server, host)),
            Query::ListInfo { app, server, host, division } => {
                Reply::Names(files::list_by_info(src, app, server, host, division))
            }
            Query::ListAll { app, server, app_only, host, division } => {
                Reply::Names(files::list_all(src, app, server, *app_only, host, division))
            }
        }
    }
}

/// The `ConfigObj` servant. One per IO shard; the store, the limiter and the cache's shared
/// state are the service's, the [`ShardView`] is this shard's own.
#[derive(Debug)]
pub struct ConfigImp {
    store: Store,
    limiter: Arc<Limiter>,
    view: ShardView,
}

impl ConfigImp {
    /// A servant; serve it as `tars_protocol::tars::ConfigServant(ConfigImp::new(..))`.
    pub fn new(store: Store, limiter: Arc<Limiter>, view: ShardView) -> ConfigImp {
        ConfigImp { store, limiter, view }
    }

    async fn answer(&self, q: Query) -> Reply {
        if let Some(files) = self.view.files() {
            let mut src: &Files = &files;
            return q.run(&mut src);
        }
        let text = matches!(q, Query::App { .. } | Query::Host { .. } | Query::Info { .. } | Query::AppInfo { .. });
        match self.store.run(move |s| Ok(q.run(&mut SqlSource(s)))).await {
            Ok(r) => r,
            Err(e) if text => Reply::Text(Answer { ret: -1, out: e.to_string() }),
            Err(e) => {
                tracing::warn!(error = %e, "config: listing files failed");
                Reply::Names(Answer { ret: -1, out: Vec::new() })
            }
        }
    }

    async fn text(&self, q: Query, out: &mut String) -> i32 {
        match self.answer(q).await {
            Reply::Text(a) => {
                *out = a.out;
                a.ret
            }
            Reply::Names(_) => -1,
        }
    }

    async fn names(&self, q: Query, out: &mut Vec<String>) -> i32 {
        match self.answer(q).await {
            Reply::Names(a) => {
                *out = a.out;
                a.ret
            }
            Reply::Text(_) => -1,
        }
    }

    /// The file, parsed with our config grammar: -1 with the parse error in `out`.
    async fn check(&self, q: Query, out: &mut String) -> i32 {
        if self.text(q, out).await != 0 {
            return -1;
        }
        match tars_proto::config::Config::parse(out) {
            Ok(_) => 0,
            Err(e) => {
                *out = e.to_string();
                -1
            }
        }
    }
}

/// TarsCpp's `Current::getHostName`: the context's `node_name`, else the peer's IP.
pub fn caller_host(current: &Current) -> String {
    match current.context.get("node_name") {
        Some(n) if !n.is_empty() => n.clone(),
        _ => current.peer_ip().unwrap_or_default(),
    }
}

impl Config for ConfigImp {
    async fn list_config(
        &self,
        current: &mut Current,
        app: String,
        server: String,
        vf: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        let host = caller_host(current);
        Ok(self.names(Query::List { app, server, host }, vf).await)
    }

    async fn load_config(
        &self,
        current: &mut Current,
        app: String,
        server: String,
        filename: String,
        config: &mut String,
    ) -> Result<i32, ServantError> {
        let host = caller_host(current);
        if self.limiter.limited(&app, &server, &host, &filename) {
            return Ok(LIMITED);
        }
        let q = if server.is_empty() {
            Query::App { app, file: filename }
        } else {
            Query::Host { app_server: format!("{app}.{server}"), file: filename, host }
        };
        Ok(self.text(q, config).await)
    }

    async fn load_config_by_host(
        &self,
        _current: &mut Current,
        app_server_name: String,
        filename: String,
        host: String,
        config: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(self.text(Query::Host { app_server: app_server_name, file: filename, host }, config).await)
    }

    async fn check_config(
        &self,
        _current: &mut Current,
        app_server_name: String,
        filename: String,
        host: String,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        Ok(self.check(Query::Host { app_server: app_server_name, file: filename, host }, result).await)
    }

    async fn list_config_by_info(
        &self,
        current: &mut Current,
        info: ConfigInfo,
        vf: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        let host = if info.host.is_empty() { caller_host(current) } else { info.host };
        let q = Query::ListInfo { app: info.appname, server: info.servername, host, division: info.setdivision };
        Ok(self.names(q, vf).await)
    }

    async fn load_config_by_info(
        &self,
        current: &mut Current,
        info: ConfigInfo,
        config: &mut String,
    ) -> Result<i32, ServantError> {
        // Limited by the caller, not by the host the info names (as upstream).
        if self.limiter.limited(&info.appname, &info.servername, &caller_host(current), &info.filename) {
            return Ok(LIMITED);
        }
        Ok(self.text(info_query(current, info), config).await)
    }

    async fn check_config_by_info(
        &self,
        current: &mut Current,
        info: ConfigInfo,
        result: &mut String,
    ) -> Result<i32, ServantError> {
        // Upstream checks the server's file even for an app-only info.
        let host = if info.host.is_empty() { caller_host(current) } else { info.host };
        let q = Query::Info {
            app: info.appname,
            server: info.servername,
            file: info.filename,
            host,
            division: info.setdivision,
        };
        Ok(self.check(q, result).await)
    }

    async fn list_all_config_by_info(
        &self,
        current: &mut Current,
        info: GetConfigListInfo,
        vf: &mut Vec<String>,
    ) -> Result<i32, ServantError> {
        if self.limiter.limited(&info.appname, &info.servername, &caller_host(current), "") {
            return Ok(LIMITED);
        }
        let q = Query::ListAll {
            app: info.appname,
            server: info.servername,
            app_only: info.b_app_only,
            host: info.host,
            division: info.setdivision,
        };
        Ok(self.names(q, vf).await)
    }
}

fn info_query(current: &Current, info: ConfigInfo) -> Query {
    if info.b_app_only || info.servername.is_empty() {
        Query::AppInfo { app: info.appname, file: info.filename, division: info.setdivision }
    } else {
        let host = if info.host.is_empty() { caller_host(current) } else { info.host };
        Query::Info {
            app: info.appname,
            server: info.servername,
            file: info.filename,
            host,
            division: info.setdivision,
        }
    }
}
