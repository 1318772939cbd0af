//! The server operations the servant and the task runner share (upstream
//! `AdminRegistryImp::startServer` & co.): the database side first (`setting_state`), then the
//! node; a failure leaves a notice in `t_server_notifys` for TarsWeb's notify list.
//!
//! A `tars_dns` server has no process: only its `present_state` changes, as upstream.

use crate::codes;
use crate::db::{self, StateColumn};
use crate::node::{Command, NodeCaller, Output};

/// The server type that runs nowhere.
const DNS_TYPE: &str = "tars_dns";

/// A `(code, text)` result.
pub type Outcome = (i32, String);

impl NodeCaller {
    /// Sets a state column and reads the server's type; `None` when the server has no row.
    async fn mark(
        &self,
        app: &str,
        server: &str,
        node: &str,
        state: Option<&'static str>,
    ) -> Result<Option<String>, String> {
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        self.shared
            .store
            .run(move |sess| {
                if let Some(state) = state {
                    db::set_state(sess, &a, &s, &n, StateColumn::Setting, state)?;
                }
                Ok(db::server_row(sess, &a, &s, &n)?.map(|r| r.server_type))
            })
            .await
            .map_err(|e| format!("database: {e}"))
    }

    async fn present(&self, app: &str, server: &str, node: &str, state: &'static str) -> Outcome {
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        match self.shared.store.run(move |sess| db::set_state(sess, &a, &s, &n, StateColumn::Present, state)).await {
            Ok(_) => (codes::SUCCESS, String::new()),
            Err(e) => (codes::UNKNOWN, format!("database: {e}")),
        }
    }

    /// Writes a notice for the server (errors are logged, not returned).
    pub async fn notice(&self, app: &str, server: &str, node: &str, message: String) {
        tracing::info!(server = %format!("{app}.{server}_{node}"), %message, "adminreg: notice");
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        if let Err(e) = self.shared.store.run(move |sess| db::notify(sess, &a, &s, &n, &message)).await {
            tracing::warn!(error = %e, "adminreg: cannot write t_server_notifys");
        }
    }

    async fn node_op(&self, what: &str, app: &str, server: &str, node: &str, cmd: Command) -> Outcome {
        let a = self.run(node, cmd).await;
        let text = a.text();
        if a.ret != codes::SUCCESS {
            self.notice(app, server, node, format!("{what} error: {} {text}", codes::name(a.ret))).await;
        }
        (a.ret, text)
    }

    /// `startServer`: `setting_state = active`, then the node starts it.
    pub async fn start_server(&self, app: &str, server: &str, node: &str) -> Outcome {
        match self.mark(app, server, node, Some("active")).await {
            Err(e) => {
                self.notice(app, server, node, format!("start server: {e}")).await;
                (codes::UNKNOWN, e)
            }
            Ok(Some(t)) if t == DNS_TYPE => self.present(app, server, node, "active").await,
            Ok(_) => self.node_op("start server", app, server, node, Command::Start(app.into(), server.into())).await,
        }
    }

    /// `stopServer`: `setting_state = inactive`, then the node stops it.
    pub async fn stop_server(&self, app: &str, server: &str, node: &str) -> Outcome {
        match self.mark(app, server, node, Some("inactive")).await {
            Err(e) => {
                self.notice(app, server, node, format!("stop server: {e}")).await;
                (codes::UNKNOWN, e)
            }
            Ok(Some(t)) if t == DNS_TYPE => self.present(app, server, node, "inactive").await,
            Ok(_) => self.node_op("stop server", app, server, node, Command::Stop(app.into(), server.into())).await,
        }
    }

    /// `restartServer`: the node stops it; on success `setting_state = active` and it starts.
    pub async fn restart_server(&self, app: &str, server: &str, node: &str) -> Outcome {
        let kind = match self.mark(app, server, node, None).await {
            Ok(t) => t,
            Err(e) => return (codes::UNKNOWN, e),
        };
        if kind.as_deref() != Some(DNS_TYPE) {
            let (ret, text) =
                self.node_op("restart server, stop", app, server, node, Command::Stop(app.into(), server.into())).await;
            if ret != codes::SUCCESS {
                return (ret, text);
            }
        }
        // As upstream: a restarted server is back in the routes.
        self.set_flow(app, server, node, true).await;
        self.start_server(app, server, node).await
    }

    /// `flow_state` of one server (errors are logged); the rows it changed.
    pub async fn set_flow(&self, app: &str, server: &str, node: &str, active: bool) -> u64 {
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        match self.shared.store.run(move |sess| db::set_flow_state(sess, &a, &s, &[n], active)).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(server = %format!("{app}.{server}_{node}"), error = %e, "adminreg: cannot set flow_state");
                0
            }
        }
    }

    /// `destroyServer`: `setting_state = inactive`, then the node destroys it.
    pub async fn destroy_server(&self, app: &str, server: &str, node: &str) -> Outcome {
        match self.mark(app, server, node, Some("inactive")).await {
            Err(e) => (codes::UNKNOWN, e),
            Ok(Some(t)) if t == DNS_TYPE => self.present(app, server, node, "inactive").await,
            Ok(_) => {
                self.node_op("destroy server", app, server, node, Command::Destroy(app.into(), server.into())).await
            }
        }
    }

    /// `notifyServer`: the node passes `command` to the server's `AdminObj.notify`.
    pub async fn notify_server(&self, app: &str, server: &str, node: &str, command: &str) -> Outcome {
        let a = self.run(node, Command::Notify(app.into(), server.into(), command.into())).await;
        (a.ret, a.text())
    }

    /// `undeploy`: stop (whatever the node says), then the rows go.
    pub async fn undeploy(&self, app: &str, server: &str, node: &str) -> Outcome {
        let (ret, text) = self.stop_server(app, server, node).await;
        if ret != codes::SUCCESS {
            tracing::info!(server = %format!("{app}.{server}_{node}"), ret, %text, "adminreg: undeploy: stop failed");
        }
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        match self.shared.store.run(move |sess| db::undeploy(sess, &a, &s, &n)).await {
            Ok(_) => (codes::SUCCESS, String::new()),
            Err(e) => (codes::UNKNOWN, format!("database: {e}")),
        }
    }

    /// `uninstallServer`: only an inactive server; the node destroys it, then the rows go.
    pub async fn uninstall(&self, app: &str, server: &str, node: &str) -> Outcome {
        let a = self.run(node, Command::State(app.into(), server.into())).await;
        if a.ret != codes::SUCCESS {
            return (a.ret, a.text());
        }
        if let Output::State(info, _) = &a.out {
            if info.server_state.name() != Some("Inactive") {
                return (codes::SERVICE_STATE, format!("server is {:?}, not Inactive", info.server_state.name()));
            }
        }
        let _ = self.destroy_server(app, server, node).await;
        let (a, s, n) = (app.to_owned(), server.to_owned(), node.to_owned());
        match self.shared.store.run(move |sess| db::uninstall(sess, &a, &s, &n)).await {
            Ok(_) => (codes::SUCCESS, String::new()),
            Err(e) => (codes::UNKNOWN, format!("database: {e}")),
        }
    }
}
