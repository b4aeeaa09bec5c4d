//! A server-side SPDY/3.1 session over any byte stream: a reader task that decodes frames and
//! hands each client-created stream to the caller, and a writer task that owns the header
//! compressor and serializes everything the streams send.
//!
//! Flow control: we send WINDOW_UPDATE (stream and session) as data is consumed, so clients
//! that honour windows keep going. We do not stop sending when the client's window is used up:
//! kubectl's SPDY library (moby/spdystream) never sends WINDOW_UPDATE, and the kubelet's own
//! SPDY server does not enforce windows either, so enforcing them would stall every exec that
//! prints more than 64 KiB.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tracing::{debug, warn};

use super::frame::{self, Frame};
use super::zlib::{HeaderCompressor, HeaderDecompressor};
use crate::pipe::{ChanReader, ChanWriter, CtlTx, Out, OutTx, IN_QUEUE, OUT_QUEUE};

/// How long to wait for the client to hang up after our GOAWAY before closing ourselves.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Session-level WINDOW_UPDATE threshold.
const SESSION_WINDOW_UPDATE_AT: u32 = 16 * 1024;

/// A stream the client opened, already answered with SYN_REPLY.
#[derive(Debug)]
pub struct Incoming {
    pub id: u32,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub reader: ChanReader,
    pub writer: ChanWriter,
}

impl Incoming {
    pub fn header(&self, name: &str) -> Option<&str> {
        frame::header(&self.headers, name)
    }
}

/// Decides whether a new stream is accepted (`Err` → RST_STREAM CANCEL, logged).
pub type Validator = fn(&[(String, String)]) -> Result<(), String>;

pub struct Session {
    pub incoming: mpsc::UnboundedReceiver<Incoming>,
    /// Keeps the connection open; dropping every sender closes it (GOAWAY).
    pub out: OutTx,
    /// Becomes true once the writer has sent GOAWAY (or failed).
    pub closed: watch::Receiver<bool>,
}

/// Starts reader and writer tasks on `io`.
pub fn start<IO>(io: IO, validate: Validator) -> Session
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (r, w) = tokio::io::split(io);
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
    let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
    let (in_tx, in_rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = watch::channel(false);
    let (reader_done_tx, reader_done_rx) = watch::channel(false);
    let last_id = Arc::new(AtomicU32::new(0));
    let reader = Reader {
        out: out_tx.downgrade(),
        ctl: ctl_tx,
        incoming: in_tx,
        validate,
        last_id: last_id.clone(),
        streams: HashMap::new(),
        decompressor: HeaderDecompressor::default(),
        going_away: false,
        session_unacked: 0,
    };
    let closed_for_reader = closed_rx.clone();
    tokio::spawn(async move {
        if let Err(e) = reader.run(r, closed_for_reader).await {
            debug!(error = %e, "spdy session reader ended");
        }
        let _ = reader_done_tx.send(true);
    });
    tokio::spawn(write_loop(
        w,
        out_rx,
        ctl_rx,
        closed_tx,
        last_id,
        reader_done_rx,
    ));
    Session {
        incoming: in_rx,
        out: out_tx,
        closed: closed_rx,
    }
}

struct Reader {
    out: mpsc::WeakSender<Out>,
    ctl: CtlTx,
    incoming: mpsc::UnboundedSender<Incoming>,
    validate: Validator,
    last_id: Arc<AtomicU32>,
    /// Open client streams; `None` once the client half-closed or reset.
    streams: HashMap<u32, Option<mpsc::Sender<Bytes>>>,
    decompressor: HeaderDecompressor,
    going_away: bool,
    session_unacked: u32,
}

impl Reader {
    async fn run<R: AsyncRead + Unpin>(
        mut self,
        mut r: R,
        mut closed: watch::Receiver<bool>,
    ) -> Result<(), crate::StreamError> {
        let mut buf = BytesMut::with_capacity(16 * 1024);
        loop {
            while let Some(f) =
                frame::decode(&mut buf).map_err(|e| crate::StreamError::Protocol(e.to_string()))?
            {
                self.handle(f).await?;
            }
            tokio::select! {
                n = r.read_buf(&mut buf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                _ = async { let _ = closed.wait_for(|c| *c).await; } => {
                    // We sent GOAWAY; keep reading (client pings, FINs) for a grace period only.
                    let _ = tokio::time::timeout(CLOSE_GRACE, async {
                        while r.read_buf(&mut buf).await.map(|n| n > 0).unwrap_or(false) {
                            buf.clear();
                        }
                    }).await;
                    return Ok(());
                }
            }
        }
    }

    fn headers(&mut self, block: &[u8]) -> Result<Vec<(String, String)>, crate::StreamError> {
        let raw = self
            .decompressor
            .decompress(block)
            .map_err(crate::StreamError::Compression)?;
        frame::parse_header_block(&raw).map_err(crate::StreamError::Protocol)
    }

    fn reset(&self, id: u32, status: u32) {
        let _ = self.ctl.send(Out::Reset { id, status });
    }

    async fn handle(&mut self, f: Frame) -> Result<(), crate::StreamError> {
        match f {
            Frame::SynStream {
                stream_id,
                flags,
                header_block,
                ..
            } => {
                // Always decompress: the zlib context must see every block.
                let headers = self.headers(&header_block)?;
                let last = self.last_id.load(Ordering::Relaxed);
                if stream_id == 0 || stream_id % 2 == 0 || stream_id <= last {
                    warn!(stream_id, "spdy: invalid client stream id");
                    self.reset(stream_id, frame::RST_PROTOCOL_ERROR);
                    return Ok(());
                }
                self.last_id.store(stream_id, Ordering::Relaxed);
                let Some(out) = self.out.upgrade().filter(|_| !self.going_away) else {
                    self.reset(stream_id, frame::RST_REFUSED_STREAM);
                    return Ok(());
                };
                if let Err(e) = (self.validate)(&headers) {
                    warn!(stream_id, error = %e, "spdy: stream rejected");
                    self.reset(stream_id, frame::RST_CANCEL);
                    return Ok(());
                }
                let (tx, rx) = mpsc::channel(IN_QUEUE);
                let fin = flags & frame::FLAG_FIN != 0;
                self.streams.insert(stream_id, (!fin).then_some(tx));
                let _ = self.ctl.send(Out::Reply { id: stream_id });
                debug!(stream_id, ?headers, "spdy: stream opened");
                let inc = Incoming {
                    id: stream_id,
                    headers,
                    reader: ChanReader::with_window(rx, self.ctl.clone(), stream_id),
                    writer: ChanWriter::new(out, stream_id),
                };
                let _ = self.incoming.send(inc);
            }
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                self.session_unacked += data.len() as u32;
                if self.session_unacked >= SESSION_WINDOW_UPDATE_AT {
                    let _ = self.ctl.send(Out::Window {
                        id: 0,
                        delta: self.session_unacked,
                    });
                    self.session_unacked = 0;
                }
                if let Some(slot) = self.streams.get_mut(&stream_id) {
                    if let Some(tx) = slot {
                        if !data.is_empty() && tx.send(data).await.is_err() {
                            // The reader half was dropped: nobody wants this stream's input.
                            *slot = None;
                        }
                    }
                    if fin {
                        *slot = None;
                    }
                } else {
                    debug!(stream_id, "spdy: data for unknown stream ignored");
                }
            }
            Frame::RstStream { stream_id, status } => {
                debug!(stream_id, status, "spdy: client reset stream");
                self.streams.remove(&stream_id);
                let _ = self.ctl.send(Out::PeerReset { id: stream_id });
            }
            Frame::Headers {
                stream_id,
                flags,
                header_block,
            } => {
                self.headers(&header_block)?;
                if flags & frame::FLAG_FIN != 0 {
                    if let Some(slot) = self.streams.get_mut(&stream_id) {
                        *slot = None;
                    }
                }
            }
            Frame::SynReply { header_block, .. } => {
                self.headers(&header_block)?;
            }
            Frame::Ping { id } => {
                let _ = self.ctl.send(Out::Ping { id });
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                debug!(last_good_stream_id, status, "spdy: client sent GOAWAY");
                self.going_away = true;
            }
            Frame::Settings { entries, .. } => {
                if let Some((_, _, window)) = entries
                    .iter()
                    .find(|e| e.1 == frame::SETTINGS_INITIAL_WINDOW_SIZE)
                {
                    // Not enforced on our sends (see the module doc).
                    debug!(window, "spdy: client initial window size");
                }
            }
            Frame::WindowUpdate { .. } => {}
            Frame::Unknown { frame_type } => {
                debug!(frame_type, "spdy: unknown control frame ignored")
            }
        }
        Ok(())
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut out_rx: mpsc::Receiver<Out>,
    mut ctl_rx: mpsc::UnboundedReceiver<Out>,
    closed: watch::Sender<bool>,
    last_id: Arc<AtomicU32>,
    mut reader_done: watch::Receiver<bool>,
) {
    let mut compressor = match HeaderCompressor::new() {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "spdy: cannot set up header compression");
            let _ = closed.send(true);
            return;
        }
    };
    let mut finished: HashSet<u32> = HashSet::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let item = tokio::select! {
            biased;
            Some(c) = ctl_rx.recv() => c,
            o = out_rx.recv() => o.unwrap_or(Out::Close),
            _ = async { let _ = reader_done.wait_for(|d| *d).await; } => {
                // The client hung up (or broke the protocol): nothing more can be delivered, so
                // stop now and let every stream writer fail instead of waiting.
                debug!("spdy: client connection ended");
                break;
            }
        };
        let frame = match item {
            Out::Data { id, data } => {
                if finished.contains(&id) {
                    continue;
                }
                Frame::Data {
                    stream_id: id,
                    fin: false,
                    data,
                }
            }
            Out::Fin { id } => {
                if !finished.insert(id) {
                    continue;
                }
                Frame::Data {
                    stream_id: id,
                    fin: true,
                    data: Bytes::new(),
                }
            }
            Out::PeerReset { id } => {
                finished.insert(id);
                continue;
            }
            Out::Reply { id } => match compressor.compress(&frame::header_block(&[])) {
                Ok(block) => Frame::SynReply {
                    stream_id: id,
                    flags: 0,
                    header_block: block.into(),
                },
                Err(e) => {
                    warn!(error = %e, "spdy: header compression failed");
                    break;
                }
            },
            Out::Reset { id, status } => {
                finished.insert(id);
                Frame::RstStream {
                    stream_id: id,
                    status,
                }
            }
            Out::Window { id, delta } => Frame::WindowUpdate {
                stream_id: id,
                delta,
            },
            Out::Ping { id } => Frame::Ping { id },
            Out::Close => {
                let goaway = Frame::GoAway {
                    last_good_stream_id: last_id.load(Ordering::Relaxed),
                    status: frame::GOAWAY_OK,
                };
                buf.clear();
                frame::encode(&goaway, &mut buf);
                let _ = w.write_all(&buf).await;
                let _ = w.flush().await;
                let _ = closed.send(true);
                // Let the client read everything and hang up first.
                let _ = tokio::time::timeout(CLOSE_GRACE, reader_done.wait_for(|d| *d)).await;
                let _ = w.shutdown().await;
                return;
            }
        };
        buf.clear();
        frame::encode(&frame, &mut buf);
        if let Err(e) = w.write_all(&buf).await {
            debug!(error = %e, "spdy: write failed");
            break;
        }
        if ctl_rx.is_empty() && out_rx.is_empty() {
            if let Err(e) = w.flush().await {
                debug!(error = %e, "spdy: flush failed");
                break;
            }
        }
    }
    let _ = closed.send(true);
    let _ = w.shutdown().await;
}
