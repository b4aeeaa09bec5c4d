//! The crate's error type.

/// What can go wrong while setting up or running a stream session.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The HTTP connection could not be upgraded (the server did not enable upgrades, or the
    /// client went away before the 101 was sent).
    #[error(
        "unable to upgrade connection: {0}; serve the kubelet API with HTTP/1 upgrades enabled"
    )]
    Upgrade(String),
    /// The client did not open the streams it announced in time (SPDY).
    #[error("timed out waiting for client to create streams")]
    StreamTimeout,
    /// The client closed the connection before the session was set up.
    #[error("connection closed by the client before all streams were created; retry the command")]
    ClosedEarly,
    /// A malformed frame or message arrived.
    #[error("protocol error: {0}; the client does not speak this protocol version correctly")]
    Protocol(String),
    /// SPDY header block (de)compression failed.
    #[error("header compression error: {0}; the client's zlib stream is corrupt")]
    Compression(String),
    /// IO on the upgraded connection failed.
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    /// WebSocket protocol failure.
    #[error("websocket error: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}
