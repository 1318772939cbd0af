//! What can stop the gateway from starting.

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A `/tars/gateway` key has a value of the wrong kind.
    #[error(transparent)]
    Setting(#[from] tars_proto::config::SettingError),
    /// The client thread could not start.
    #[error("gateway client: {0}")]
    Client(String),
    /// The HTTP address could not be bound.
    #[error("gateway: cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
}
