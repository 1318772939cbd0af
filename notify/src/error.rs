//! The service's errors.

use tars_proto::config::SettingError;
use tars_sql::StoreError;

/// What can stop tarsnotify from starting.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A config key has a bad value.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// No `<db>` section.
    #[error("no <db> section under <tars> (dbhost, dbport, dbuser, dbpass, dbname, or url)")]
    NoDatabase,
    /// The database URL or the schema.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}
