//! Typed storage errors: a caller can tell "the database is away" (retry later, spool) from "the
//! statement is wrong" (a bug or bad data) without reading messages.

/// What went wrong talking to a store. `store` is always the redacted URL: no password.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL does not name a backend we know, or its parameters are wrong.
    #[error("bad storage URL {url}: {reason}")]
    BadUrl {
        /// The URL with its password masked.
        url: String,
        /// Why.
        reason: String,
    },
    /// No connection could be made; the store is backing off before the next attempt.
    #[error("storage {store} is unavailable: {reason}")]
    Unavailable {
        /// Redacted URL.
        store: String,
        /// The last connection error.
        reason: String,
    },
    /// The connection broke while the request ran; whether it took effect is unknown unless it
    /// ran in a transaction, which the server rolls back.
    #[error("lost the connection to {store}: {reason}")]
    ConnectionLost {
        /// Redacted URL.
        store: String,
        /// The driver's error.
        reason: String,
    },
    /// The request waited in the queue longer than its deadline and was not started.
    #[error("storage {store} did not start the request within {waited_ms} ms")]
    Timeout {
        /// Redacted URL.
        store: String,
        /// How long it waited.
        waited_ms: u64,
    },
    /// The request queue is full.
    #[error("storage {store} has {queued} requests queued; refusing more")]
    Overloaded {
        /// Redacted URL.
        store: String,
        /// Queue length.
        queued: usize,
    },
    /// The store's workers are gone.
    #[error("storage {store} is closed")]
    Closed {
        /// Redacted URL.
        store: String,
    },
    /// The server rejected the statement.
    #[error("query failed on {store}: {message}")]
    Query {
        /// Redacted URL.
        store: String,
        /// The server's error code, when it gave one.
        code: Option<u32>,
        /// The server's message.
        message: String,
    },
    /// SQLite kept answering `SQLITE_SCHEMA` ("database schema has changed"): another
    /// connection changed the schema (created tables) while this statement was being prepared,
    /// on each of `attempts` tries made for as long as a statement waits for a lock. The
    /// statement did nothing; it may succeed later, unchanged.
    #[error("the schema of {store} kept changing under a statement ({attempts} attempts): {message}")]
    SchemaChanged {
        /// Redacted URL.
        store: String,
        /// How many times the statement was prepared and run.
        attempts: u32,
        /// SQLite's message.
        message: String,
    },
    /// A value could not be read as the requested type.
    #[error("column {column}: {reason}")]
    Column {
        /// Column name (or index).
        column: String,
        /// Why.
        reason: String,
    },
    /// A table or column name that is not a plain identifier.
    #[error("not a valid SQL identifier: {0:?}")]
    BadIdentifier(String),
    /// The backend cannot do this.
    #[error("{what} is not supported by the {backend} backend")]
    Unsupported {
        /// The operation.
        what: &'static str,
        /// Backend name.
        backend: &'static str,
    },
    /// A migration step failed.
    #[error("migration {version} ({name}) of {database} failed: {source}")]
    Migration {
        /// Database (schema set) name.
        database: &'static str,
        /// Migration version.
        version: u32,
        /// Migration name.
        name: &'static str,
        /// The failure.
        source: Box<StoreError>,
    },
    /// A local file operation (the embedded backend's data directory) failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// True when the database could not be reached or the connection broke: the request may
    /// succeed later, unchanged.
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable { .. }
            | StoreError::ConnectionLost { .. }
            | StoreError::Timeout { .. }
            | StoreError::Overloaded { .. } => true,
            StoreError::Migration { source, .. } => source.is_unavailable(),
            _ => false,
        }
    }
}
