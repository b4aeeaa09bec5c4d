//! port-forward: SPDY (`portforward.k8s.io`, streams paired by `requestID`), SPDY tunnelled in a
//! WebSocket (`SPDY/3.1+portforward.k8s.io`), and the WebSocket channel protocol (port i on
//! channels 2i/2i+1).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

use crate::negotiate::{self, Resp};
use crate::pipe::{ChanReader, ChanWriter, DataStream, OutTx, IN_QUEUE};
use crate::spdy::session::{self, Incoming};
use crate::wsio::WsIo;
use crate::{ws, StreamError};

/// How long a SPDY data/error stream waits for its partner.
pub const PAIR_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes an error message to the client for one forwarded connection.
#[derive(Debug)]
pub struct ErrorSender {
    writer: ChanWriter,
}

impl ErrorSender {
    /// Writes `msg` (kubectl prints it as `an error occurred forwarding L -> R: msg`) and closes
    /// the error stream. Dropping the sender without a message closes it too.
    pub async fn send(mut self, msg: &str) -> io::Result<()> {
        self.writer.write_all(msg.as_bytes()).await?;
        self.writer.shutdown().await
    }
}

/// One forwarded connection: proxy `data` to `port` in the pod. Dropping (or shutting down) the
/// data stream tells the client the pod side is done.
#[derive(Debug)]
pub struct ForwardStream {
    pub port: u16,
    pub data: DataStream,
    pub error: ErrorSender,
}

/// The forwarded connections of one port-forward session.
pub struct PortForwardSession {
    inner: Inner,
}

enum Inner {
    Spdy {
        incoming: mpsc::UnboundedReceiver<Incoming>,
        pending: HashMap<String, Partial>,
        _out: OutTx,
    },
    Ws(VecDeque<ForwardStream>),
}

#[derive(Default)]
struct Partial {
    data: Option<Incoming>,
    error: Option<Incoming>,
    deadline: Option<Instant>,
}

impl PortForwardSession {
    /// The next forwarded connection (SPDY: one per data/error stream pair the client opens;
    /// WebSocket: one per requested port). `None` when the client has closed the session.
    /// Keep calling it: it also times out half-opened pairs.
    pub async fn next(&mut self) -> Option<ForwardStream> {
        match &mut self.inner {
            Inner::Ws(q) => q.pop_front(),
            Inner::Spdy {
                incoming, pending, ..
            } => loop {
                let earliest = pending.values().filter_map(|p| p.deadline).min();
                let timer = async {
                    match earliest {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    inc = incoming.recv() => {
                        let inc = inc?;
                        if let Some(fs) = add_stream(pending, inc).await {
                            return Some(fs);
                        }
                    }
                    _ = timer => {
                        let now = Instant::now();
                        let expired: Vec<String> = pending
                            .iter()
                            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for id in expired {
                            if let Some(p) = pending.remove(&id) {
                                warn!(request = %id, "port-forward: timed out waiting for streams");
                                if let Some(e) = p.error {
                                    let _ = ErrorSender { writer: e.writer }
                                        .send(&format!("(request={id}) timed out waiting for streams"))
                                        .await;
                                }
                            }
                        }
                    }
                }
            },
        }
    }
}

/// The request id of a stream; old clients without `requestID` get one derived from the
/// stream id, as the kubelet does.
fn request_id(inc: &Incoming) -> String {
    if let Some(id) = inc.header("requestid") {
        return id.to_string();
    }
    match inc.header("streamtype") {
        Some("data") => inc.id.saturating_sub(2).to_string(),
        _ => inc.id.to_string(),
    }
}

async fn add_stream(
    pending: &mut HashMap<String, Partial>,
    inc: Incoming,
) -> Option<ForwardStream> {
    let id = request_id(&inc);
    let kind = inc.header("streamtype").unwrap_or("").to_string();
    let p = pending.entry(id.clone()).or_default();
    p.deadline
        .get_or_insert_with(|| Instant::now() + PAIR_TIMEOUT);
    let dup = match kind.as_str() {
        "data" if p.data.is_none() => {
            p.data = Some(inc);
            None
        }
        "error" if p.error.is_none() => {
            p.error = Some(inc);
            None
        }
        "data" => Some("data stream already assigned"),
        _ => Some("error stream already assigned"),
    };
    if let Some(msg) = dup {
        warn!(request = %id, msg, "port-forward: duplicate stream");
        if let Some(e) = &mut p.error {
            let _ = e
                .writer
                .write_all(format!("error processing stream for request {id}: {msg}").as_bytes())
                .await;
        }
        return None;
    }
    if p.data.is_some() && p.error.is_some() {
        let p = pending.remove(&id)?;
        let (data, error) = (p.data?, p.error?);
        // validated when the stream was accepted
        let port = data
            .header("port")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        debug!(request = %id, port, "port-forward: stream pair complete");
        // The client never writes on the error stream; its reader is not needed.
        return Some(ForwardStream {
            port,
            data: DataStream::new(data.reader, data.writer),
            error: ErrorSender {
                writer: error.writer,
            },
        });
    }
    None
}

/// Rejects streams without a valid `port` and `streamType` (RST_STREAM, as the kubelet does).
fn validate_stream(headers: &[(String, String)]) -> Result<(), String> {
    let get = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    let port = get("port").ok_or_else(|| "\"port\" header is required".to_string())?;
    let p: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse \"{port}\" as a port: {e}"))?;
    if p < 1 {
        return Err(format!("port \"{port}\" must be > 0"));
    }
    match get("streamtype") {
        None | Some("") => Err("\"streamType\" header is required".to_string()),
        Some("data") | Some("error") => Ok(()),
        Some(other) => Err(format!("invalid stream type \"{other}\"")),
    }
}

/// Resolves to a [`PortForwardSession`] once the connection is upgraded.
pub struct PendingForward(
    Pin<Box<dyn Future<Output = Result<PortForwardSession, StreamError>> + Send>>,
);

impl Future for PendingForward {
    type Output = Result<PortForwardSession, StreamError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// Negotiates port-forward: SPDY/3.1 (`portforward.k8s.io`), SPDY inside WebSocket
/// (`SPDY/3.1+portforward.k8s.io`) or the WebSocket channel protocol (which needs
/// `ports_from_query`, see [`crate::ports_from_query`]). Send the response now; on success,
/// await the [`PendingForward`] in a spawned task.
pub fn accept_portforward<B>(
    req: &mut http::Request<B>,
    ports_from_query: Vec<u16>,
) -> (Resp, Option<PendingForward>) {
    if negotiate::is_websocket(req.headers()) {
        let (resp, protocol) = match negotiate::websocket(
            req.method(),
            req.headers(),
            &negotiate::WS_PORTFORWARD_PROTOCOLS,
        ) {
            negotiate::Handshake::Accept(r, p) => (r, p),
            negotiate::Handshake::Reject(r) => return (r, None),
        };
        if protocol != negotiate::WS_SPDY_TUNNEL_PROTOCOL && ports_from_query.is_empty() {
            return (
                negotiate::text_error(
                    http::StatusCode::BAD_REQUEST,
                    "query parameter \"port\" is required",
                ),
                None,
            );
        }
        let on_upgrade = hyper::upgrade::on(req);
        let fut = async move {
            let upgraded = on_upgrade
                .await
                .map_err(|e| StreamError::Upgrade(e.to_string()))?;
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            if protocol == negotiate::WS_SPDY_TUNNEL_PROTOCOL {
                debug!("port-forward: spdy tunnelled in websocket");
                Ok(spdy_session(WsIo::new(ws)))
            } else {
                Ok(websocket_session(ws, &protocol, &ports_from_query))
            }
        };
        return (resp, Some(PendingForward(Box::pin(fut))));
    }
    let (resp, _protocol) =
        match negotiate::spdy(req.headers(), &negotiate::SPDY_PORTFORWARD_PROTOCOLS) {
            negotiate::Handshake::Accept(r, p) => (r, p),
            negotiate::Handshake::Reject(r) => return (r, None),
        };
    let on_upgrade = hyper::upgrade::on(req);
    let fut = async move {
        let upgraded = on_upgrade
            .await
            .map_err(|e| StreamError::Upgrade(e.to_string()))?;
        Ok(spdy_session(TokioIo::new(upgraded)))
    };
    (resp, Some(PendingForward(Box::pin(fut))))
}

pub(crate) fn spdy_session<IO>(io: IO) -> PortForwardSession
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let s = session::start(io, validate_stream);
    PortForwardSession {
        inner: Inner::Spdy {
            incoming: s.incoming,
            pending: HashMap::new(),
            _out: s.out,
        },
    }
}

pub(crate) fn websocket_session<IO>(
    ws: WebSocketStream<IO>,
    protocol: &str,
    ports: &[u16],
) -> PortForwardSession
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let codec = ws::Codec {
        base64: protocol.contains("base64"),
        v5: false,
    };
    let mut channels = HashMap::new();
    let mut readers = Vec::new();
    let mut initial = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let data_ch = (2 * i) as u8;
        let (tx, rx) = mpsc::channel(IN_QUEUE);
        channels.insert(data_ch, tx);
        readers.push(rx);
        let le = Bytes::copy_from_slice(&port.to_le_bytes());
        initial.push((data_ch, le.clone()));
        initial.push((data_ch + 1, le));
    }
    let session = ws::start(
        ws,
        codec,
        ws::Inputs {
            channels,
            resize: None,
        },
        initial,
    );
    let streams = ports
        .iter()
        .zip(readers)
        .enumerate()
        .map(|(i, (port, rx))| ForwardStream {
            port: *port,
            data: DataStream::new(
                ChanReader::new(rx),
                ChanWriter::new(session.out.clone(), (2 * i) as u32),
            ),
            error: ErrorSender {
                writer: ChanWriter::new(session.out.clone(), (2 * i + 1) as u32),
            },
        })
        .collect();
    // The connection closes once every stream is dropped.
    PortForwardSession {
        inner: Inner::Ws(streams),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stream_validation() {
        assert!(validate_stream(&h(&[("port", "80"), ("streamtype", "data")])).is_ok());
        assert_eq!(
            validate_stream(&h(&[("streamtype", "data")])).unwrap_err(),
            "\"port\" header is required"
        );
        assert!(
            validate_stream(&h(&[("port", "0"), ("streamtype", "data")]))
                .unwrap_err()
                .contains("> 0")
        );
        assert_eq!(
            validate_stream(&h(&[("port", "80"), ("streamtype", "stdin")])).unwrap_err(),
            "invalid stream type \"stdin\""
        );
    }
}
