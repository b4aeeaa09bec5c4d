//! Kubernetes stream protocols (exec, attach, port-forward), server side, for the kubelet API.
//!
//! The agent's kubelet API server calls [`accept_remotecommand`] or [`accept_portforward`] with
//! the incoming request. Both negotiate the protocol from the headers and return the response to
//! send right away (101 Switching Protocols, or the kubelet's 400/403 error text) plus, on
//! success, a future that completes after hyper has upgraded the connection:
//!
//! ```text
//! let opts = StreamOptions::from_query(query).map_err(bad_request)?;
//! let (resp, pending) = skiff_streaming::accept_remotecommand(&mut req, opts);
//! if let Some(pending) = pending {
//!     tokio::spawn(async move {
//!         let Ok(streams) = pending.await else { return };   // StreamError is logged/ignored
//!         // copy container output into streams.stdout/stderr, streams.stdin into the process,
//!         // apply streams.resize, then:
//!         let _ = streams.status.send(ExitStatus::Code(code)).await;
//!     });
//! }
//! return resp; // http::Response<http_body_util::Full<bytes::Bytes>>
//! ```
//!
//! The request may have any body type `B`; the connection must be served with HTTP/1 upgrades
//! enabled (`hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`, or
//! hyper-util's `serve_connection_with_upgrades`), since the futures use `hyper::upgrade::on`.
//!
//! Protocols:
//! - exec/attach over WebSocket: `v5.channel.k8s.io` (kubectl ≥ 1.30), `v4.channel.k8s.io`,
//!   `channel.k8s.io`, their `base64.` forms, or no subprotocol; over SPDY/3.1:
//!   `v4.channel.k8s.io` … `channel.k8s.io` via `X-Stream-Protocol-Version`.
//! - port-forward: SPDY/3.1 `portforward.k8s.io` (one [`ForwardStream`] per data/error
//!   stream pair), SPDY inside WebSocket `SPDY/3.1+portforward.k8s.io` (kubectl ≥ 1.31), and the
//!   WebSocket channel protocol (`v4.channel.k8s.io`, base64, none; one [`ForwardStream`] per
//!   `port` query value).
//!
//! Semantics the caller relies on:
//! - [`Streams::stdin`] reaches EOF when the client closes stdin (v5 CLOSE `[255,0]`, SPDY FIN)
//!   or the connection.
//! - Writes to stdout/stderr are sent in order; [`StatusSender::send`] is sent after all of them,
//!   then the connection is closed cleanly. Dropping everything without a status also closes it.
//! - [`PortForwardSession::next`] must be polled in a loop; drop each [`ForwardStream`]'s data
//!   stream when the pod side is done, and use its [`ErrorSender`] for a failure text.
//! - When the client hangs up, inputs reach EOF and writes fail with `BrokenPipe`, so copy loops
//!   end on their own.
//! - SPDY exec/attach resolves once the client opened its streams (1 error + one per requested
//!   std stream + resize with tty on v3/v4); after 30 s it fails with
//!   [`StreamError::StreamTimeout`] and the connection is closed.
//! - Not implemented: the kubelet's 4 h idle timeout on streaming connections.
//!
//! Tests: unit tests per module, an in-process loopback suite (hand-written WebSocket and SPDY
//! clients) and `kubectl_tests`, which drives the real kubectl against a fake apiserver on
//! 127.0.0.1 (exec over WebSocket v5 and SPDY, port-forward over the SPDY-in-WebSocket tunnel
//! and SPDY).

mod error;
#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod loopback_tests;
mod negotiate;
mod options;
mod pipe;
mod portforward;
mod remotecommand;
mod spdy;
mod ws;
mod wsio;

pub use error::StreamError;
pub use negotiate::{
    HEADER_ACCEPTED_PROTOCOL_VERSIONS, HEADER_PROTOCOL_VERSION, SPDY_EXEC_PROTOCOLS,
    SPDY_PORTFORWARD_PROTOCOLS, WS_EXEC_PROTOCOLS, WS_PORTFORWARD_PROTOCOLS,
    WS_SPDY_TUNNEL_PROTOCOL,
};
pub use options::{ports_from_query, ExitStatus, StreamOptions, TermSize};
pub use pipe::{ChanReader, ChanWriter, DataStream};
pub use portforward::{
    accept_portforward, ErrorSender, ForwardStream, PendingForward, PortForwardSession,
};
pub use remotecommand::{
    accept_remotecommand, PendingStreams, StatusSender, Streams, STREAM_CREATION_TIMEOUT,
};

/// Whether the request asks for a WebSocket upgrade.
pub fn is_websocket_request(headers: &http::HeaderMap) -> bool {
    negotiate::is_websocket(headers)
}
