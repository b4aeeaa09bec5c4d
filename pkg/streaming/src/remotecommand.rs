//! exec and attach: negotiation, stream set-up for WebSocket and SPDY, and the exit status.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;
use tracing::{debug, warn};

use crate::negotiate::{self, Resp};
use crate::options::{
    status_payload, ExitStatus, ResizeDecoder, StatusFormat, StreamOptions, TermSize,
};
use crate::pipe::{ChanReader, ChanWriter, Out, OutTx, IN_QUEUE};
use crate::spdy::session;
use crate::ws;
use crate::StreamError;

/// How long the client has to open its SPDY streams.
pub const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;

/// The streams of one exec/attach session. Fields are `None` when not requested.
pub struct Streams {
    /// EOF when the client closes stdin (v5 CLOSE, SPDY FIN) or the connection.
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    /// Terminal sizes (only with tty).
    pub resize: Option<mpsc::Receiver<TermSize>>,
    /// Send the exit status last; it ends the session.
    pub status: StatusSender,
}

impl std::fmt::Debug for Streams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streams")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// Writes the exit status and closes the connection.
#[derive(Debug)]
pub struct StatusSender {
    out: OutTx,
    /// Error stream (SPDY) or channel 3 (WebSocket); `None` if the client opened none.
    error: Option<ChanWriter>,
    /// Streams to half-close before the status (SPDY stdout/stderr).
    fin: Vec<u32>,
    format: StatusFormat,
    closed: watch::Receiver<bool>,
    /// Stream halves that must not half-close before the end (their drop would send FIN).
    _keep: Vec<ChanWriter>,
}

impl StatusSender {
    /// Writes the status on the error channel/stream in the negotiated version's format
    /// (JSON Status for v4/v5, error text for older), after everything already written on
    /// stdout/stderr, then closes the connection cleanly (SPDY GOAWAY, WebSocket close frame).
    pub async fn send(mut self, status: ExitStatus) -> io::Result<()> {
        let broken = || io::Error::new(io::ErrorKind::BrokenPipe, "stream connection closed");
        for id in &self.fin {
            self.out
                .send(Out::Fin { id: *id })
                .await
                .map_err(|_| broken())?;
        }
        if let Some(mut w) = self.error.take() {
            if let Some(payload) = status_payload(&status, self.format) {
                w.write_all(&payload).await?;
            }
            w.shutdown().await?;
        }
        self.out.send(Out::Close).await.map_err(|_| broken())?;
        let _ = self.closed.wait_for(|c| *c).await;
        Ok(())
    }
}

/// Resolves to the session's [`Streams`] once the connection is upgraded (and, for SPDY, the
/// client has opened its streams).
pub struct PendingStreams(Pin<Box<dyn Future<Output = Result<Streams, StreamError>> + Send>>);

impl Future for PendingStreams {
    type Output = Result<Streams, StreamError>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll(cx)
    }
}

/// Negotiates WebSocket (v5/v4/v1 channel.k8s.io and the base64 forms) or SPDY/3.1
/// (v4…v1) for exec/attach. Send the returned response now; on success, await the
/// [`PendingStreams`] in a spawned task (it needs the 101 to have been sent).
pub fn accept_remotecommand<B>(
    req: &mut http::Request<B>,
    opts: StreamOptions,
) -> (Resp, Option<PendingStreams>) {
    if negotiate::is_websocket(req.headers()) {
        let (resp, protocol) = match negotiate::websocket(
            req.method(),
            req.headers(),
            &negotiate::WS_EXEC_PROTOCOLS,
        ) {
            negotiate::Handshake::Accept(r, p) => (r, p),
            negotiate::Handshake::Reject(r) => return (r, None),
        };
        let on_upgrade = hyper::upgrade::on(req);
        let fut = async move {
            let upgraded = on_upgrade
                .await
                .map_err(|e| StreamError::Upgrade(e.to_string()))?;
            let ws =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            Ok(websocket_streams(ws, &protocol, opts))
        };
        return (resp, Some(PendingStreams(Box::pin(fut))));
    }
    let (resp, protocol) = match negotiate::spdy(req.headers(), &negotiate::SPDY_EXEC_PROTOCOLS) {
        negotiate::Handshake::Accept(r, p) => (r, p),
        negotiate::Handshake::Reject(r) => return (r, None),
    };
    let on_upgrade = hyper::upgrade::on(req);
    let fut = async move {
        let upgraded = on_upgrade
            .await
            .map_err(|e| StreamError::Upgrade(e.to_string()))?;
        spdy_streams(TokioIo::new(upgraded), &protocol, opts).await
    };
    (resp, Some(PendingStreams(Box::pin(fut))))
}

/// Sets up channels 0–4 on an upgraded WebSocket.
pub(crate) fn websocket_streams<IO>(
    ws: WebSocketStream<IO>,
    protocol: &str,
    opts: StreamOptions,
) -> Streams
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let codec = ws::Codec {
        base64: protocol.contains("base64"),
        v5: protocol == "v5.channel.k8s.io",
    };
    let format = if protocol.starts_with("v4.") || protocol.starts_with("v5.") {
        StatusFormat::Json
    } else {
        StatusFormat::Text
    };
    let mut channels = HashMap::new();
    let stdin_rx = opts.stdin.then(|| {
        let (tx, rx) = mpsc::channel(IN_QUEUE);
        channels.insert(STDIN, tx);
        rx
    });
    let (resize_tx, resize_rx) = if opts.tty {
        let (tx, rx) = mpsc::channel(8);
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    // The kubelet announces the connection with an empty message on the lowest channel it writes.
    let first = if opts.stdout {
        STDOUT
    } else if opts.stderr {
        STDERR
    } else {
        ERROR
    };
    let session = ws::start(
        ws,
        codec,
        ws::Inputs {
            channels,
            resize: resize_tx,
        },
        vec![(first, Bytes::new())],
    );
    debug!(protocol, ?opts, "websocket exec session started");
    Streams {
        stdin: stdin_rx
            .map(|rx| Box::new(ChanReader::new(rx)) as Box<dyn AsyncRead + Send + Unpin>),
        stdout: opts.stdout.then(|| {
            Box::new(ChanWriter::new(session.out.clone(), u32::from(STDOUT)))
                as Box<dyn AsyncWrite + Send + Unpin>
        }),
        stderr: opts.stderr.then(|| {
            Box::new(ChanWriter::new(session.out.clone(), u32::from(STDERR)))
                as Box<dyn AsyncWrite + Send + Unpin>
        }),
        resize: resize_rx,
        status: StatusSender {
            error: Some(ChanWriter::new(session.out.clone(), u32::from(ERROR))),
            out: session.out,
            fin: Vec::new(),
            _keep: Vec::new(),
            format,
            closed: session.closed,
        },
    }
}

/// Runs a SPDY session on `io` and waits for the client's streams.
pub(crate) async fn spdy_streams<IO>(
    io: IO,
    protocol: &str,
    opts: StreamOptions,
) -> Result<Streams, StreamError>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let version = match protocol {
        "v4.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    };
    let format = if version == 4 {
        StatusFormat::Json
    } else {
        StatusFormat::Text
    };
    let mut s = session::start(io, |_| Ok(()));
    let expected = 1
        + usize::from(opts.stdin)
        + usize::from(opts.stdout)
        + usize::from(opts.stderr)
        + usize::from(opts.tty && version >= 3);
    let mut by_type: HashMap<String, session::Incoming> = HashMap::new();
    let mut received = 0;
    let deadline = tokio::time::sleep(STREAM_CREATION_TIMEOUT);
    tokio::pin!(deadline);
    while received < expected {
        tokio::select! {
            inc = s.incoming.recv() => {
                let Some(inc) = inc else { return Err(StreamError::ClosedEarly) };
                received += 1;
                let kind = inc.header("streamtype").unwrap_or("").to_string();
                match kind.as_str() {
                    "error" | "stdin" | "stdout" | "stderr" | "resize" => {
                        by_type.insert(kind, inc);
                    }
                    other => warn!(stream_type = other, "spdy exec: unexpected stream type"),
                }
            }
            _ = &mut deadline => {
                warn!(received, expected, "spdy exec: timed out waiting for client to create streams");
                return Err(StreamError::StreamTimeout);
            }
        }
    }
    debug!(protocol, ?opts, "spdy exec session started");
    // The stdin stream's write side stays open (v2+) until the session ends, like the kubelet's.
    let mut keep = Vec::new();
    let stdin = by_type.remove("stdin").map(|i| {
        if version == 1 {
            // v1 servers half-close stdin right after set-up; reading still works.
            let mut w = i.writer;
            tokio::spawn(async move {
                let _ = w.shutdown().await;
            });
        } else {
            keep.push(i.writer);
        }
        Box::new(i.reader) as Box<dyn AsyncRead + Send + Unpin>
    });
    let mut fin = Vec::new();
    let stdout = by_type.remove("stdout").map(|i| {
        fin.push(i.id);
        Box::new(i.writer) as Box<dyn AsyncWrite + Send + Unpin>
    });
    let stderr = by_type.remove("stderr").map(|i| {
        fin.push(i.id);
        Box::new(i.writer) as Box<dyn AsyncWrite + Send + Unpin>
    });
    let resize = by_type.remove("resize").filter(|_| opts.tty).map(|i| {
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(resize_pump(i.reader, tx));
        rx
    });
    let error = by_type.remove("error").map(|i| i.writer);
    Ok(Streams {
        stdin,
        stdout,
        stderr,
        resize,
        status: StatusSender {
            out: s.out,
            error,
            fin,
            format,
            closed: s.closed,
            _keep: keep,
        },
    })
}

async fn resize_pump(mut r: ChanReader, tx: mpsc::Sender<TermSize>) {
    use tokio::io::AsyncReadExt;
    let mut dec = ResizeDecoder::default();
    let mut buf = vec![0u8; 1024];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        for size in dec.push(&buf[..n]) {
            if tx.send(size).await.is_err() {
                return;
            }
        }
    }
}
