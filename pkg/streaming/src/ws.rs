//! The Kubernetes channel protocols over WebSocket (`channel.k8s.io` and its `base64.`, `v4.`
//! and `v5.` forms): each message is a channel byte (an ASCII digit in the base64 forms) plus the
//! payload. One reader task demultiplexes client messages into per-channel pipes; one writer task
//! sends what the streams write.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

use crate::options::{ResizeDecoder, TermSize};
use crate::pipe::{Out, OutTx, OUT_QUEUE};

/// v5 CLOSE marker: the client sends `[255, channel]` to close one of its channels.
pub const CLOSE_CHANNEL: u8 = 255;
/// The resize channel of exec/attach.
pub const RESIZE_CHANNEL: u8 = 4;
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Message encoding for one negotiated subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Codec {
    pub base64: bool,
    /// v5: honours the CLOSE message.
    pub v5: bool,
}

/// Builds the message for `payload` on `channel`.
pub fn encode(codec: Codec, channel: u8, payload: &[u8]) -> Message {
    if codec.base64 {
        let mut s = String::with_capacity(1 + payload.len() * 4 / 3 + 4);
        s.push(char::from(b'0' + channel));
        base64::engine::general_purpose::STANDARD.encode_string(payload, &mut s);
        Message::text(s)
    } else {
        let mut v = Vec::with_capacity(payload.len() + 1);
        v.push(channel);
        v.extend_from_slice(payload);
        Message::binary(v)
    }
}

/// What a client message means.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(u8, Bytes),
    /// v5 CLOSE of this channel.
    Close(u8),
    /// Nothing to do (empty message, bad base64).
    Skip,
    /// A malformed CLOSE: the read loop ends, as upstream's does.
    Stop,
}

/// Interprets one client message (text or binary payload bytes).
pub fn decode(codec: Codec, msg: &[u8]) -> Decoded {
    let Some((&first, rest)) = msg.split_first() else {
        return Decoded::Skip;
    };
    if codec.v5 && first == CLOSE_CHANNEL {
        return match rest {
            [ch] => Decoded::Close(*ch),
            _ => Decoded::Stop,
        };
    }
    if codec.base64 {
        let ch = first.wrapping_sub(b'0');
        match base64::engine::general_purpose::STANDARD.decode(rest) {
            Ok(v) => Decoded::Data(ch, Bytes::from(v)),
            Err(e) => {
                debug!(error = %e, "websocket: invalid base64 payload ignored");
                Decoded::Skip
            }
        }
    } else {
        Decoded::Data(first, Bytes::copy_from_slice(rest))
    }
}

/// Where incoming channel data goes.
pub struct Inputs {
    pub channels: HashMap<u8, mpsc::Sender<Bytes>>,
    pub resize: Option<mpsc::Sender<TermSize>>,
}

/// A running WebSocket channel session.
pub struct WsSession {
    pub out: OutTx,
    pub closed: watch::Receiver<bool>,
}

/// Starts reader and writer tasks; `initial` messages are queued first.
pub fn start<IO>(
    ws: WebSocketStream<IO>,
    codec: Codec,
    inputs: Inputs,
    initial: Vec<(u8, Bytes)>,
) -> WsSession
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE.max(initial.len() + 1));
    for (ch, data) in initial {
        // Capacity was reserved above, so this cannot fail.
        let _ = out_tx.try_send(Out::Data {
            id: u32::from(ch),
            data,
        });
    }
    let (closed_tx, closed_rx) = watch::channel(false);
    let (sink, stream) = ws.split();
    let (reader_done_tx, reader_done_rx) = watch::channel(false);
    let reader = tokio::spawn(async move {
        read_loop(stream, codec, inputs).await;
        let _ = reader_done_tx.send(true);
    });
    tokio::spawn(write_loop(
        sink,
        codec,
        out_rx,
        closed_tx,
        reader.abort_handle(),
        reader_done_rx,
    ));
    WsSession {
        out: out_tx,
        closed: closed_rx,
    }
}

async fn read_loop<S>(mut stream: S, codec: Codec, mut inputs: Inputs)
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let mut resize = ResizeDecoder::default();
    while let Some(msg) = stream.next().await {
        let bytes: Bytes = match msg {
            Ok(Message::Binary(b)) => b,
            Ok(Message::Text(t)) => Bytes::copy_from_slice(t.as_bytes()),
            Ok(Message::Close(_)) => {
                // Keep polling so the close reply gets flushed; the stream ends after it.
                inputs.channels.clear();
                inputs.resize = None;
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                debug!(error = %e, "websocket: read ended");
                break;
            }
        };
        match decode(codec, &bytes) {
            Decoded::Skip => {}
            Decoded::Stop => {
                debug!("websocket: malformed close message, ending read loop");
                break;
            }
            Decoded::Close(ch) => {
                debug!(channel = ch, "websocket: client closed channel");
                inputs.channels.remove(&ch);
                if ch == RESIZE_CHANNEL {
                    inputs.resize = None;
                }
            }
            Decoded::Data(ch, data) => {
                if ch == RESIZE_CHANNEL && inputs.resize.is_some() {
                    for size in resize.push(&data) {
                        if let Some(tx) = &inputs.resize {
                            if tx.send(size).await.is_err() {
                                inputs.resize = None;
                            }
                        }
                    }
                } else if let Some(tx) = inputs.channels.get(&ch) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        inputs.channels.remove(&ch);
                    }
                }
            }
        }
    }
    // Dropping the senders gives every input EOF.
}

async fn write_loop<S>(
    mut sink: S,
    codec: Codec,
    mut out_rx: mpsc::Receiver<Out>,
    closed: watch::Sender<bool>,
    reader: tokio::task::AbortHandle,
    mut reader_done: watch::Receiver<bool>,
) where
    S: futures::Sink<Message, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    loop {
        let item = tokio::select! {
            biased;
            o = out_rx.recv() => o.unwrap_or(Out::Close),
            _ = async { let _ = reader_done.wait_for(|d| *d).await; } => {
                // The client closed or dropped the connection: stop, so stream writers fail.
                debug!("websocket: client connection ended");
                break;
            }
        };
        match item {
            Out::Data { id, data } => {
                let ch = u8::try_from(id).unwrap_or(u8::MAX);
                let res = if out_rx.is_empty() {
                    sink.send(encode(codec, ch, &data)).await
                } else {
                    sink.feed(encode(codec, ch, &data)).await
                };
                if let Err(e) = res {
                    debug!(error = %e, "websocket: write failed");
                    break;
                }
            }
            Out::Close => {
                let frame = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = closed.send(true);
                // The reader sees the client's close reply; then both halves drop.
                let timed_out = tokio::time::timeout(CLOSE_GRACE, reader_done.wait_for(|d| *d))
                    .await
                    .is_err();
                if timed_out {
                    reader.abort();
                }
                let _ = sink.close().await;
                return;
            }
            // Half-close, replies, windows and pings are SPDY notions.
            _ => {}
        }
    }
    let _ = closed.send(true);
    let _ = sink.close().await;
    reader.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: Codec = Codec {
        base64: false,
        v5: false,
    };
    const V5: Codec = Codec {
        base64: false,
        v5: true,
    };
    const B64: Codec = Codec {
        base64: true,
        v5: false,
    };

    #[test]
    fn channel_framing() {
        assert_eq!(encode(RAW, 1, b"hi"), Message::binary(vec![1, b'h', b'i']));
        assert_eq!(encode(RAW, 1, b""), Message::binary(vec![1]));
        assert_eq!(
            decode(RAW, &[0, b'a']),
            Decoded::Data(0, Bytes::from_static(b"a"))
        );
        assert_eq!(decode(RAW, &[]), Decoded::Skip);
        // without v5, 255 is just an (unknown) channel
        assert_eq!(
            decode(RAW, &[255, 0]),
            Decoded::Data(255, Bytes::from_static(&[0]))
        );
    }

    #[test]
    fn v5_close() {
        assert_eq!(decode(V5, &[255, 0]), Decoded::Close(0));
        assert_eq!(decode(V5, &[255]), Decoded::Stop);
        assert_eq!(decode(V5, &[255, 0, 1]), Decoded::Stop);
        assert_eq!(
            decode(V5, &[0, b'x']),
            Decoded::Data(0, Bytes::from_static(b"x"))
        );
    }

    #[test]
    fn base64_variant() {
        // the example from apimachinery's wsstream docs: "foo\n" on stdin, "\n" on stdout
        assert_eq!(
            decode(B64, b"0Zm9vCg=="),
            Decoded::Data(0, Bytes::from_static(b"foo\n"))
        );
        assert_eq!(encode(B64, 1, b"\n"), Message::text("1Cg=="));
        assert_eq!(encode(B64, 3, b""), Message::text("3"));
        assert_eq!(decode(B64, b"0***"), Decoded::Skip);
    }
}
