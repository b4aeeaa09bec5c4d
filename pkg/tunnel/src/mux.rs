//! The multiplexer: virtual byte connections over one ordered frame stream, each with a
//! send window so a reader that stops reading stalls only its own connection.

use crate::TunnelError;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Bytes a side may send on one connection before the peer acknowledges them.
pub const WINDOW: u32 = 256 * 1024;
/// The largest Data payload sent at once.
pub const CHUNK: usize = 32 * 1024;
/// Buffer between a virtual connection's user and the multiplexer, per direction.
const DUPLEX_BUF: usize = 64 * 1024;

/// One tunnel frame, independent of direction (see `proto/tunnel.proto`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Dial { conn_id: u64, port: u16 },
    DialResult { conn_id: u64, error: Option<String> },
    Data { conn_id: u64, data: Bytes },
    Close { conn_id: u64, reset: bool },
    WindowUpdate { conn_id: u64, increment: u32 },
}

enum Incoming {
    Data(Bytes),
    Eof,
    Reset,
}

struct Entry {
    tx: mpsc::UnboundedSender<Incoming>,
    credit: Arc<Semaphore>,
}

type DialReply = oneshot::Sender<Result<(), String>>;

struct Inner {
    out: mpsc::Sender<Frame>,
    conns: Mutex<HashMap<u64, Entry>>,
    pending: Mutex<HashMap<u64, DialReply>>,
    next_id: AtomicU64,
    closed: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes a connection from the table once both of its pump tasks ended.
struct Guard {
    inner: Weak<Inner>,
    id: u64,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            lock(&inner.conns).remove(&self.id);
        }
    }
}

/// One end of a tunnel session. Frames to send to the peer go to the `out` channel given to
/// [`Mux::new`]; frames from the peer are passed to [`Mux::handle`] in order.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

impl Mux {
    /// A session whose outgoing frames are written to `out`.
    pub fn new(out: mpsc::Sender<Frame>) -> Self {
        Mux {
            inner: Arc::new(Inner {
                out,
                conns: Mutex::new(HashMap::new()),
                pending: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// Whether [`Mux::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Relaxed)
    }

    /// How many virtual connections are open.
    pub fn conn_count(&self) -> usize {
        lock(&self.inner.conns).len()
    }

    /// Opens a virtual connection to `port` on the peer (server side) and waits up to
    /// `timeout` for the peer to connect.
    pub async fn dial(&self, port: u16, timeout: Duration) -> Result<DuplexStream, TunnelError> {
        if self.is_closed() {
            return Err(TunnelError::Closed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.pending).insert(id, tx);
        // Registered before the Dial goes out, so Data right after the DialResult finds it.
        let conn = self.accept(id);
        let outcome = async {
            self.inner
                .out
                .send(Frame::Dial { conn_id: id, port })
                .await
                .map_err(|_| TunnelError::Closed)?;
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok(()))) => Ok(()),
                Ok(Ok(Err(e))) => Err(TunnelError::Dial(e)),
                Ok(Err(_)) => Err(TunnelError::Closed),
                Err(_) => Err(TunnelError::DialTimeout(timeout)),
            }
        }
        .await;
        match outcome {
            Ok(()) => Ok(conn),
            Err(e) => {
                lock(&self.inner.pending).remove(&id);
                self.forget(id);
                Err(e)
            }
        }
    }

    /// Registers connection `conn_id` opened by the peer (agent side, before answering the
    /// Dial) and returns its user end.
    pub fn accept(&self, conn_id: u64) -> DuplexStream {
        let (user, internal) = tokio::io::duplex(DUPLEX_BUF);
        let (mut r, mut w) = tokio::io::split(internal);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(WINDOW as usize));
        lock(&self.inner.conns).insert(
            conn_id,
            Entry {
                tx,
                credit: credit.clone(),
            },
        );
        let guard = Arc::new(Guard {
            inner: Arc::downgrade(&self.inner),
            id: conn_id,
        });
        // user → peer
        let out = self.inner.out.clone();
        let send_credit = credit.clone();
        let g = guard.clone();
        tokio::spawn(async move {
            let _g = g;
            // Small while the connection is quiet (an idle `logs -f` costs little), doubled up
            // to CHUNK while reads fill it.
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let full = n == buf.len();
                match send_credit.acquire_many(n as u32).await {
                    Ok(p) => p.forget(),
                    // Reset by the peer or the session closed: nothing more to say.
                    Err(_) => return,
                }
                let data = Bytes::copy_from_slice(&buf[..n]);
                if full && buf.len() < CHUNK {
                    buf.resize(buf.len() * 2, 0);
                }
                if out.send(Frame::Data { conn_id, data }).await.is_err() {
                    return;
                }
            }
            let _ = out
                .send(Frame::Close {
                    conn_id,
                    reset: false,
                })
                .await;
        });
        // peer → user
        let out = self.inner.out.clone();
        tokio::spawn(async move {
            let _g = guard;
            let mut unacked: u32 = 0;
            while let Some(m) = rx.recv().await {
                match m {
                    Incoming::Data(b) => {
                        if w.write_all(&b).await.is_err() {
                            // The user is gone: stop both directions.
                            credit.close();
                            let _ = out
                                .send(Frame::Close {
                                    conn_id,
                                    reset: true,
                                })
                                .await;
                            return;
                        }
                        unacked += b.len() as u32;
                        if unacked >= WINDOW / 4 {
                            let f = Frame::WindowUpdate {
                                conn_id,
                                increment: unacked,
                            };
                            if out.send(f).await.is_err() {
                                break;
                            }
                            unacked = 0;
                        }
                    }
                    Incoming::Eof => {
                        let _ = w.shutdown().await;
                        return;
                    }
                    Incoming::Reset => break,
                }
            }
            credit.close();
            let _ = w.shutdown().await;
        });
        user
    }

    /// Drops connection `conn_id` without telling the peer (its pump tasks end).
    fn forget(&self, conn_id: u64) {
        if let Some(e) = lock(&self.inner.conns).remove(&conn_id) {
            e.credit.close();
            let _ = e.tx.send(Incoming::Reset);
        }
    }

    /// Sends a frame to the peer (the agent's DialResult); false when the session is gone.
    pub async fn send(&self, f: Frame) -> bool {
        self.inner.out.send(f).await.is_ok()
    }

    /// Handles one frame from the peer, in arrival order. Returns `(conn_id, port)` for a
    /// Dial, which the caller (the agent) answers with [`Mux::accept`] + a DialResult.
    pub fn handle(&self, f: Frame) -> Option<(u64, u16)> {
        match f {
            Frame::Dial { conn_id, port } => return Some((conn_id, port)),
            Frame::DialResult { conn_id, error } => {
                let waiter = lock(&self.inner.pending).remove(&conn_id);
                match waiter {
                    Some(w) => {
                        let _ = w.send(match error {
                            None => Ok(()),
                            Some(e) => Err(e),
                        });
                    }
                    // The dial timed out meanwhile: let the peer drop its connection.
                    None if error.is_none() => {
                        let _ = self.inner.out.try_send(Frame::Close {
                            conn_id,
                            reset: true,
                        });
                    }
                    None => {}
                }
            }
            Frame::Data { conn_id, data } => {
                if let Some(e) = lock(&self.inner.conns).get(&conn_id) {
                    let _ = e.tx.send(Incoming::Data(data));
                }
            }
            Frame::Close { conn_id, reset } => {
                if let Some(e) = lock(&self.inner.conns).get(&conn_id) {
                    if reset {
                        e.credit.close();
                        let _ = e.tx.send(Incoming::Reset);
                    } else {
                        let _ = e.tx.send(Incoming::Eof);
                    }
                }
            }
            Frame::WindowUpdate { conn_id, increment } => {
                if let Some(e) = lock(&self.inner.conns).get(&conn_id) {
                    // A peer granting more than it could owe is ignored (and cannot overflow).
                    let avail = e.credit.available_permits();
                    if avail + (increment as usize) <= 2 * WINDOW as usize {
                        e.credit.add_permits(increment as usize);
                    }
                }
            }
        }
        None
    }

    /// Ends the session: every connection sees EOF (writes fail), pending dials fail.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Relaxed);
        let conns: Vec<Entry> = lock(&self.inner.conns).drain().map(|(_, e)| e).collect();
        for e in conns {
            e.credit.close();
            let _ = e.tx.send(Incoming::Reset);
        }
        lock(&self.inner.pending).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Two muxes back to back; B answers dials to port 7 by echoing, to port 8 by never
    /// reading, and refuses others. Counts the Data bytes A sent.
    fn pair() -> (Mux, Mux, Arc<AtomicUsize>) {
        let (a_tx, mut a_rx) = mpsc::channel::<Frame>(16);
        let (b_tx, mut b_rx) = mpsc::channel::<Frame>(16);
        let a = Mux::new(a_tx);
        let b = Mux::new(b_tx);
        let sent = Arc::new(AtomicUsize::new(0));
        let (a2, b2, sent2) = (a.clone(), b.clone(), sent.clone());
        tokio::spawn(async move {
            while let Some(f) = a_rx.recv().await {
                if let Frame::Data { data, .. } = &f {
                    sent2.fetch_add(data.len(), Ordering::Relaxed);
                }
                if let Some((id, port)) = b2.handle(f) {
                    let b3 = b2.clone();
                    tokio::spawn(async move {
                        if port != 7 && port != 8 {
                            b3.send(Frame::DialResult {
                                conn_id: id,
                                error: Some("port not allowed".into()),
                            })
                            .await;
                            return;
                        }
                        let conn = b3.accept(id);
                        b3.send(Frame::DialResult {
                            conn_id: id,
                            error: None,
                        })
                        .await;
                        if port == 7 {
                            let (mut r, mut w) = tokio::io::split(conn);
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                            let _ = w.shutdown().await;
                        } else {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            drop(conn);
                        }
                    });
                }
            }
        });
        tokio::spawn(async move {
            while let Some(f) = b_rx.recv().await {
                a2.handle(f);
            }
        });
        (a, b, sent)
    }

    #[tokio::test]
    async fn echo_with_half_close_and_cleanup() {
        let (a, b, _) = pair();
        let conn = a.dial(7, Duration::from_secs(5)).await.unwrap();
        let (mut r, mut w) = tokio::io::split(conn);
        let payload: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
        let p2 = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&p2).await.unwrap();
            w.shutdown().await.unwrap();
            w
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), payload.len());
        assert!(got == payload);
        drop(writer.await.unwrap());
        drop(r);
        for _ in 0..100 {
            if a.conn_count() == 0 && b.conn_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!((a.conn_count(), b.conn_count()), (0, 0));
    }

    #[tokio::test]
    async fn refused_dial_reports_the_agent_error() {
        let (a, _b, _) = pair();
        let err = a.dial(9, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the agent could not connect: port not allowed"
        );
        assert_eq!(a.conn_count(), 0);
    }

    #[tokio::test]
    async fn a_stalled_reader_bounds_what_is_in_flight() {
        let (a, _b, sent) = pair();
        let conn = a.dial(8, Duration::from_secs(5)).await.unwrap();
        let (_r, mut w) = tokio::io::split(conn);
        tokio::spawn(async move {
            let chunk = vec![1u8; 64 * 1024];
            loop {
                if w.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let in_flight = sent.load(Ordering::Relaxed);
        assert!(in_flight >= WINDOW as usize, "sent only {in_flight}");
        assert!(
            in_flight <= WINDOW as usize + DUPLEX_BUF + WINDOW as usize / 4,
            "sent {in_flight} bytes to a reader that never reads"
        );
    }

    #[tokio::test]
    async fn closing_the_session_ends_connections_and_dials() {
        let (a, _b, _) = pair();
        let conn = a.dial(8, Duration::from_secs(5)).await.unwrap();
        a.close();
        let (mut r, _w) = tokio::io::split(conn);
        let mut buf = Vec::new();
        assert_eq!(r.read_to_end(&mut buf).await.unwrap(), 0);
        assert!(matches!(
            a.dial(7, Duration::from_secs(1)).await,
            Err(TunnelError::Closed)
        ));
    }

    #[tokio::test]
    async fn an_unanswered_dial_times_out() {
        let (tx, _rx) = mpsc::channel(4);
        let m = Mux::new(tx);
        let err = m.dial(7, Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(err, TunnelError::DialTimeout(_)));
        assert_eq!(m.conn_count(), 0);
    }
}
