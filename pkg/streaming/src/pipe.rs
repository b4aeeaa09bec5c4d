//! In-process pipes between the user's `AsyncRead`/`AsyncWrite` halves and a connection's
//! reader and writer tasks. Every outgoing byte goes through one ordered queue per connection, so
//! a status written after the last stdout write is also sent after it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

/// Largest payload put in one outgoing message/frame.
pub(crate) const MAX_CHUNK: usize = 32 * 1024;
/// Outgoing queue depth (messages), shared by all streams of a connection.
pub(crate) const OUT_QUEUE: usize = 64;
/// Incoming per-stream queue depth (messages); a full queue stops the connection reader.
pub(crate) const IN_QUEUE: usize = 16;

/// Something for a connection's writer task to send. `id` is the SPDY stream id or the
/// WebSocket channel number.
#[derive(Debug)]
pub(crate) enum Out {
    Data {
        id: u32,
        data: Bytes,
    },
    /// Half-close: SPDY DATA with FIN (WebSocket: nothing to send).
    Fin {
        id: u32,
    },
    /// SPDY SYN_REPLY for a client stream.
    Reply {
        id: u32,
    },
    /// SPDY RST_STREAM.
    Reset {
        id: u32,
        status: u32,
    },
    /// The client reset this stream: drop further output for it.
    PeerReset {
        id: u32,
    },
    /// SPDY WINDOW_UPDATE (`id` 0 = session window).
    Window {
        id: u32,
        delta: u32,
    },
    /// SPDY PING echo.
    Ping {
        id: u32,
    },
    /// Close the whole connection cleanly (SPDY GOAWAY, WebSocket close frame) and stop.
    Close,
}

pub(crate) type OutTx = mpsc::Sender<Out>;
pub(crate) type CtlTx = mpsc::UnboundedSender<Out>;

type ReserveFut = Pin<
    Box<dyn Future<Output = Result<mpsc::OwnedPermit<Out>, mpsc::error::SendError<()>>> + Send>,
>;

/// `AsyncWrite` that turns writes into `Out::Data` for one stream/channel.
/// Shutdown or drop sends `Out::Fin` (after all data written before it).
pub struct ChanWriter {
    tx: Option<OutTx>,
    id: u32,
    pending: Option<ReserveFut>,
}

impl std::fmt::Debug for ChanWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChanWriter").field("id", &self.id).finish()
    }
}

fn broken() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "stream connection closed")
}

impl ChanWriter {
    pub(crate) fn new(tx: OutTx, id: u32) -> Self {
        ChanWriter {
            tx: Some(tx),
            id,
            pending: None,
        }
    }

    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<mpsc::OwnedPermit<Out>>> {
        let Some(tx) = &self.tx else {
            return Poll::Ready(Err(broken()));
        };
        let fut = self
            .pending
            .get_or_insert_with(|| Box::pin(tx.clone().reserve_owned()));
        let res = ready!(fut.as_mut().poll(cx));
        self.pending = None;
        Poll::Ready(res.map_err(|_| broken()))
    }
}

impl AsyncWrite for ChanWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let permit = ready!(self.poll_permit(cx))?;
        let n = buf.len().min(MAX_CHUNK);
        permit.send(Out::Data {
            id: self.id,
            data: Bytes::copy_from_slice(&buf[..n]),
        });
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.tx.is_none() {
            return Poll::Ready(Ok(()));
        }
        let permit = ready!(self.poll_permit(cx))?;
        permit.send(Out::Fin { id: self.id });
        self.tx = None;
        Poll::Ready(Ok(()))
    }
}

impl Drop for ChanWriter {
    fn drop(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let fin = Out::Fin { id: self.id };
        match tx.try_send(fin) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(fin)) => {
                // Still queued behind everything written so far, so ordering holds.
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tx.send(fin).await;
                    });
                }
            }
        }
    }
}

/// Flow-control bookkeeping for a SPDY stream: WINDOW_UPDATE after consuming this much.
const WINDOW_UPDATE_AT: u32 = 16 * 1024;

/// `AsyncRead` over the chunks a connection reader delivers for one stream/channel.
/// EOF when the client closes the stream (SPDY FIN, v5 CLOSE) or the connection.
pub struct ChanReader {
    rx: mpsc::Receiver<Bytes>,
    buf: Bytes,
    window: Option<(CtlTx, u32, u32)>,
}

impl std::fmt::Debug for ChanReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChanReader")
            .field("buffered", &self.buf.len())
            .finish()
    }
}

impl ChanReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChanReader {
            rx,
            buf: Bytes::new(),
            window: None,
        }
    }

    /// Reports consumption as WINDOW_UPDATE for SPDY stream `id`.
    pub(crate) fn with_window(rx: mpsc::Receiver<Bytes>, ctl: CtlTx, id: u32) -> Self {
        ChanReader {
            rx,
            buf: Bytes::new(),
            window: Some((ctl, id, 0)),
        }
    }

    fn consumed(&mut self, n: usize) {
        if let Some((ctl, id, acc)) = &mut self.window {
            *acc += n as u32;
            if *acc >= WINDOW_UPDATE_AT {
                let _ = ctl.send(Out::Window {
                    id: *id,
                    delta: *acc,
                });
                *acc = 0;
            }
        }
    }
}

impl AsyncRead for ChanReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        while self.buf.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(b) => self.buf = b,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.buf.len().min(out.remaining());
        let chunk = self.buf.split_to(n);
        out.put_slice(&chunk);
        self.consumed(n);
        Poll::Ready(Ok(()))
    }
}

/// A bidirectional stream (port-forward data): reads what the client sends, writes to it.
#[derive(Debug)]
pub struct DataStream {
    reader: ChanReader,
    writer: ChanWriter,
}

impl DataStream {
    pub(crate) fn new(reader: ChanReader, writer: ChanWriter) -> Self {
        DataStream { reader, writer }
    }

    /// The two halves, for copying in two tasks.
    pub fn into_split(self) -> (ChanReader, ChanWriter) {
        (self.reader, self.writer)
    }
}

impl AsyncRead for DataStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.reader).poll_read(cx, buf)
    }
}

impl AsyncWrite for DataStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writer_orders_data_then_fin() {
        let (tx, mut rx) = mpsc::channel(OUT_QUEUE);
        let mut w = ChanWriter::new(tx, 7);
        w.write_all(b"hello").await.unwrap();
        drop(w);
        match rx.recv().await.unwrap() {
            Out::Data { id: 7, data } => assert_eq!(&data[..], b"hello"),
            o => panic!("unexpected {o:?}"),
        }
        assert!(matches!(rx.recv().await.unwrap(), Out::Fin { id: 7 }));
    }

    #[tokio::test]
    async fn reader_reports_window() {
        let (tx, rx) = mpsc::channel(IN_QUEUE);
        let (ctl, mut ctl_rx) = mpsc::unbounded_channel();
        let mut r = ChanReader::with_window(rx, ctl, 5);
        tx.send(Bytes::from(vec![1u8; 20_000])).await.unwrap();
        drop(tx);
        let mut all = Vec::new();
        r.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), 20_000);
        match ctl_rx.recv().await.unwrap() {
            Out::Window { id: 5, delta } => assert!((WINDOW_UPDATE_AT..=20_000).contains(&delta)),
            o => panic!("unexpected {o:?}"),
        }
    }
}
