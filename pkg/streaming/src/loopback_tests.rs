//! In-process loopback tests: a hyper server on 127.0.0.1 serving exec and port-forward with
//! this crate, driven by tiny WebSocket and SPDY clients written here.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::spdy::frame::{self, Frame};
use crate::spdy::zlib::{HeaderCompressor, HeaderDecompressor};
use crate::{
    accept_portforward, accept_remotecommand, ports_from_query, ExitStatus, StreamOptions,
};

/// The "container": exec echoes stdin to stdout, then writes "bye\n" to stderr and exits 3;
/// port-forward echoes each connection with the port prepended.
async fn handle(mut req: http::Request<Body>) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let query = req.uri().query().unwrap_or("").to_string();
    if req.uri().path().starts_with("/portForward/") {
        let ports = ports_from_query(&query).unwrap_or_default();
        let (resp, pending) = accept_portforward(&mut req, ports);
        if let Some(pending) = pending {
            tokio::spawn(async move {
                let mut session = pending.await.expect("port-forward session");
                while let Some(fs) = session.next().await {
                    tokio::spawn(async move {
                        if fs.port == 81 {
                            fs.error.send("nothing listens on 81").await.unwrap();
                        }
                        let (mut r, mut w) = fs.data.into_split();
                        w.write_all(format!("{}:", fs.port).as_bytes())
                            .await
                            .unwrap();
                        tokio::io::copy(&mut r, &mut w).await.unwrap();
                    });
                }
            });
        }
        return Ok(resp);
    }
    let opts = match StreamOptions::from_query(&query) {
        Ok(o) => o,
        Err(e) => {
            return Ok(crate::negotiate::text_error(
                http::StatusCode::BAD_REQUEST,
                &e,
            ))
        }
    };
    let path = req.uri().path().to_string();
    let (resp, pending) = accept_remotecommand(&mut req, opts);
    if let Some(pending) = pending {
        tokio::spawn(async move {
            let mut s = pending.await.expect("exec streams");
            if path.contains("/big/") {
                // more than the 64 KiB SPDY window, which kubectl never re-opens
                let mut stdout = s.stdout.take().expect("stdout");
                stdout.write_all(&vec![b'x'; BIG]).await.unwrap();
                drop(stdout);
                s.status.send(ExitStatus::Success).await.unwrap();
                return;
            }
            if path.contains("/tty/") {
                let mut resize = s.resize.take().expect("resize with tty");
                let size = resize.recv().await.expect("a size");
                let mut stdout = s.stdout.take().expect("stdout");
                stdout
                    .write_all(format!("{}x{}", size.width, size.height).as_bytes())
                    .await
                    .unwrap();
                s.status.send(ExitStatus::Success).await.unwrap();
                return;
            }
            let mut stdin = s.stdin.take().expect("stdin");
            let mut stdout = s.stdout.take().expect("stdout");
            let mut stderr = s.stderr.take().expect("stderr");
            // The client may hang up at any time: errors here only mean it is gone.
            let _ = tokio::io::copy(&mut stdin, &mut stdout).await;
            let _ = stderr.write_all(b"bye\n").await;
            let _ = s.status.send(ExitStatus::Code(3)).await;
        });
    }
    Ok(resp)
}

const BIG: usize = 300 * 1024;

async fn server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service_fn(handle))
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

fn assert_exit_3(status: &[u8]) {
    let v: serde_json::Value = serde_json::from_slice(status).unwrap();
    assert_eq!(v["status"], "Failure");
    assert_eq!(v["reason"], "NonZeroExitCode");
    assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(v["details"]["causes"][0]["message"], "3");
}

#[tokio::test]
async fn exec_over_websocket_v5() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/exec/default/p/c?command=cat&input=1&output=1&error=1")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    // the kubelet's "connected" message: empty, on stdout
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(vec![1]));
    ws.send(Message::binary(b"\x00hello\n".to_vec()))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::binary(b"\x01hello\n".to_vec())
    );
    ws.send(Message::binary(vec![255, 0])).await.unwrap(); // close stdin
    let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
    let mut closed = false;
    while let Some(msg) = ws.next().await {
        match msg.unwrap() {
            Message::Binary(b) => got.entry(b[0]).or_default().extend_from_slice(&b[1..]),
            Message::Close(_) => closed = true,
            _ => {}
        }
    }
    assert!(closed, "server closed with a close frame");
    assert_eq!(got.get(&2).map(Vec::as_slice), Some(&b"bye\n"[..]));
    assert_exit_3(&got[&3]);
}

#[tokio::test]
async fn exec_websocket_rejects_unknown_protocol() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/exec/default/p/c?command=cat&output=1")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v9.channel.k8s.io".parse().unwrap(),
    );
    match tokio_tungstenite::client_async(req, tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {other:?}"),
    }
}

/// A minimal SPDY/3.1 client: HTTP upgrade, then frames with one zlib context per direction.
struct SpdyClient {
    tcp: TcpStream,
    buf: BytesMut,
    z_out: HeaderCompressor,
    z_in: HeaderDecompressor,
}

impl SpdyClient {
    async fn connect(addr: SocketAddr, path: &str, protocols: &[&str]) -> (SpdyClient, String) {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
        );
        for p in protocols {
            req.push_str(&format!("X-Stream-Protocol-Version: {p}\r\n"));
        }
        req.push_str("Content-Length: 0\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        let mut buf = BytesMut::new();
        let head = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(buf.split_to(i + 4).to_vec()).unwrap();
                break head;
            }
            assert!(
                tcp.read_buf(&mut buf).await.unwrap() > 0,
                "server hung up during the handshake"
            );
        };
        let client = SpdyClient {
            tcp,
            buf,
            z_out: HeaderCompressor::new().unwrap(),
            z_in: HeaderDecompressor::default(),
        };
        (client, head)
    }

    async fn send(&mut self, f: Frame) {
        let mut b = BytesMut::new();
        frame::encode(&f, &mut b);
        self.tcp.write_all(&b).await.unwrap();
    }

    async fn open(&mut self, id: u32, headers: &[(&str, &str)]) {
        let block = self.z_out.compress(&frame::header_block(headers)).unwrap();
        self.send(Frame::SynStream {
            stream_id: id,
            associated_id: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            header_block: block.into(),
        })
        .await;
    }

    async fn data(&mut self, id: u32, data: &[u8], fin: bool) {
        self.send(Frame::Data {
            stream_id: id,
            fin,
            data: Bytes::copy_from_slice(data),
        })
        .await;
    }

    /// The next frame, with header blocks checked to decompress; `None` at EOF.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(f) = frame::decode(&mut self.buf).unwrap() {
                if let Frame::SynReply { header_block, .. } = &f {
                    let raw = self.z_in.decompress(header_block).unwrap();
                    frame::parse_header_block(&raw).unwrap();
                }
                return Some(f);
            }
            if self.tcp.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }
}

#[tokio::test]
async fn exec_over_spdy_v4() {
    let addr = server().await;
    let (mut c, head) = SpdyClient::connect(
        addr,
        "/exec/default/p/c?command=cat&input=1&output=1&error=1",
        &["v4.channel.k8s.io", "v3.channel.k8s.io"],
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("x-stream-protocol-version: v4.channel.k8s.io"),
        "{head}"
    );
    c.open(1, &[("streamType", "error")]).await;
    c.open(3, &[("streamType", "stdin")]).await;
    c.open(5, &[("streamType", "stdout")]).await;
    c.open(7, &[("streamType", "stderr")]).await;
    c.send(Frame::Ping { id: 1 }).await;
    let mut replies = Vec::new();
    while replies.len() < 4 {
        match c.next().await.unwrap() {
            Frame::SynReply { stream_id, .. } => replies.push(stream_id),
            Frame::Ping { id } => assert_eq!(id, 1),
            f => panic!("unexpected {f:?}"),
        }
    }
    replies.sort();
    assert_eq!(replies, vec![1, 3, 5, 7]);
    c.data(3, b"hello\n", false).await;
    let mut data: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut fins = Vec::new();
    let mut goaway = false;
    let mut closed_stdin = false;
    while let Some(f) = c.next().await {
        match f {
            Frame::Data {
                stream_id,
                fin,
                data: d,
            } => {
                data.entry(stream_id).or_default().extend_from_slice(&d);
                if fin {
                    fins.push(stream_id);
                }
                if stream_id == 5 && data[&5] == b"hello\n" && !closed_stdin {
                    closed_stdin = true;
                    c.data(3, b"", true).await; // stdin EOF
                }
            }
            Frame::GoAway { .. } => {
                goaway = true;
                break;
            }
            Frame::Ping { .. } | Frame::WindowUpdate { .. } => {}
            f => panic!("unexpected {f:?}"),
        }
    }
    assert!(goaway, "session ended with GOAWAY");
    assert_eq!(data[&5], b"hello\n");
    assert_eq!(data[&7], b"bye\n");
    assert_exit_3(&data[&1]);
    fins.sort();
    assert_eq!(fins, vec![1, 5, 7]);
}

#[tokio::test]
async fn spdy_handshake_errors() {
    let addr = server().await;
    let (_, head) =
        SpdyClient::connect(addr, "/exec/default/p/c?output=1", &["v9.channel.k8s.io"]).await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    let (_, head) = SpdyClient::connect(addr, "/exec/default/p/c?output=1", &[]).await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

/// Drives one port-forward connection (requestID `rid`) on an established SPDY session.
async fn spdy_forward_roundtrip(c: &mut SpdyClient) {
    c.open(
        1,
        &[("streamType", "error"), ("port", "80"), ("requestID", "0")],
    )
    .await;
    c.data(1, b"", true).await; // kubectl closes its side of the error stream at once
    c.open(
        3,
        &[("streamType", "data"), ("port", "80"), ("requestID", "0")],
    )
    .await;
    c.open(
        5,
        &[("streamType", "data"), ("port", "0"), ("requestID", "1")],
    )
    .await; // rejected
    c.data(3, b"ping", true).await;
    let mut data: HashMap<u32, Vec<u8>> = HashMap::new();
    let mut fins = Vec::new();
    let mut reset = Vec::new();
    while fins.len() < 2 {
        match c.next().await.expect("frame") {
            Frame::SynReply { .. } | Frame::WindowUpdate { .. } | Frame::Ping { .. } => {}
            Frame::RstStream { stream_id, .. } => reset.push(stream_id),
            Frame::Data {
                stream_id,
                fin,
                data: d,
            } => {
                data.entry(stream_id).or_default().extend_from_slice(&d);
                if fin {
                    fins.push(stream_id);
                }
            }
            f => panic!("unexpected {f:?}"),
        }
    }
    assert_eq!(data[&3], b"80:ping");
    assert!(data.get(&1).is_none_or(|d| d.is_empty()), "no error text");
    assert_eq!(reset, vec![5]);
}

#[tokio::test]
async fn portforward_over_spdy() {
    let addr = server().await;
    let (mut c, head) =
        SpdyClient::connect(addr, "/portForward/default/p", &["portforward.k8s.io"]).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    spdy_forward_roundtrip(&mut c).await;
}

/// A byte stream over a client WebSocket, for the SPDY tunnel test.
async fn tunnel_client(addr: SocketAddr) -> SpdyClient {
    // Run the SPDY client over a local TCP pair whose far end is pumped into the WebSocket.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/portForward/default/p")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "SPDY/3.1+portforward.k8s.io".parse().unwrap(),
    );
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "SPDY/3.1+portforward.k8s.io"
    );
    let pump = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pump_addr = pump.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = pump.accept().await.unwrap();
        let (mut r, mut w) = sock.into_split();
        let (mut sink, mut stream) = ws.split();
        let up = async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = r.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                    break;
                }
            }
        };
        let down = async move {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Binary(b) = m {
                    if w.write_all(&b).await.is_err() {
                        break;
                    }
                }
            }
        };
        tokio::join!(up, down);
    });
    let tcp = TcpStream::connect(pump_addr).await.unwrap();
    SpdyClient {
        tcp,
        buf: BytesMut::new(),
        z_out: HeaderCompressor::new().unwrap(),
        z_in: HeaderDecompressor::default(),
    }
}

#[tokio::test]
async fn portforward_spdy_in_websocket() {
    let addr = server().await;
    let mut c = tunnel_client(addr).await;
    spdy_forward_roundtrip(&mut c).await;
}

#[tokio::test]
async fn portforward_over_websocket_channels() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/portForward/default/p?port=80,81")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
    // port numbers, little-endian, first on each of the four channels
    for _ in 0..4 {
        match ws.next().await.unwrap().unwrap() {
            Message::Binary(b) => {
                let expect: u16 = if b[0] < 2 { 80 } else { 81 };
                assert_eq!(&b[1..], &expect.to_le_bytes());
            }
            m => panic!("unexpected {m:?}"),
        }
    }
    ws.send(Message::binary(b"\x00a".to_vec())).await.unwrap();
    ws.send(Message::binary(b"\x02b".to_vec())).await.unwrap();
    let done = |g: &HashMap<u8, Vec<u8>>| {
        g.get(&0).is_some_and(|v| v.len() == 4)
            && g.get(&2).is_some_and(|v| v.len() == 4)
            && g.contains_key(&3)
    };
    while !done(&got) {
        if let Message::Binary(b) = ws.next().await.unwrap().unwrap() {
            got.entry(b[0]).or_default().extend_from_slice(&b[1..]);
        }
    }
    // closing the connection ends both forwarded streams
    ws.send(Message::Close(None)).await.unwrap();
    while let Some(Ok(msg)) = ws.next().await {
        assert!(matches!(msg, Message::Close(_)), "{msg:?}");
    }
    assert_eq!(got[&0], b"80:a");
    assert_eq!(got[&2], b"81:b");
    assert_eq!(got[&3], b"nothing listens on 81");
}

#[tokio::test]
async fn spdy_output_beyond_the_window_without_window_updates() {
    let addr = server().await;
    let (mut c, head) =
        SpdyClient::connect(addr, "/exec/default/big/c?output=1", &["v4.channel.k8s.io"]).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    c.open(1, &[("streamType", "error")]).await;
    c.open(3, &[("streamType", "stdout")]).await;
    let mut out = 0usize;
    let mut status = Vec::new();
    loop {
        match c.next().await.expect("frame before GOAWAY") {
            Frame::Data {
                stream_id: 3, data, ..
            } => out += data.len(),
            Frame::Data {
                stream_id: 1, data, ..
            } => status.extend_from_slice(&data),
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    assert_eq!(out, BIG);
    assert_eq!(status, br#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn websocket_tty_resize() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/exec/default/tty/c?command=sh&input=1&output=1&tty=1")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::binary(vec![1]));
    ws.send(Message::binary(
        b"\x04{\"Width\":120,\"Height\":40}\n".to_vec(),
    ))
    .await
    .unwrap();
    let mut got: HashMap<u8, Vec<u8>> = HashMap::new();
    while let Some(Ok(msg)) = ws.next().await {
        if let Message::Binary(b) = msg {
            got.entry(b[0]).or_default().extend_from_slice(&b[1..]);
        }
    }
    assert_eq!(got[&1], b"120x40");
    assert_eq!(got[&3], br#"{"metadata":{},"status":"Success"}"#);
}

#[tokio::test]
async fn websocket_base64_v4_exec() {
    let addr = server().await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut req = format!("ws://{addr}/exec/default/p/c?command=cat&input=1&output=1&error=1")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v4.base64.channel.k8s.io".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("1"));
    ws.send(Message::text("0aGkK")).await.unwrap(); // "hi\n"
    assert_eq!(ws.next().await.unwrap().unwrap(), Message::text("1aGkK"));
    // v4 has no CLOSE; hanging up ends stdin, and the session still ends cleanly
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
}

#[tokio::test(start_paused = true)]
async fn spdy_stream_creation_timeout() {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let opts = StreamOptions {
        stdin: true,
        stdout: true,
        stderr: false,
        tty: false,
    };
    let pending = tokio::spawn(crate::remotecommand::spdy_streams(
        server_io,
        "v4.channel.k8s.io",
        opts,
    ));
    let mut client_io = client_io;
    let mut z = HeaderCompressor::new().unwrap();
    let block = z
        .compress(&frame::header_block(&[("streamtype", "error")]))
        .unwrap();
    let mut b = BytesMut::new();
    frame::encode(
        &Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            header_block: block.into(),
        },
        &mut b,
    );
    client_io.write_all(&b).await.unwrap();
    // only one of the three expected streams arrives
    let err = pending.await.unwrap().unwrap_err();
    assert!(matches!(err, crate::StreamError::StreamTimeout), "{err}");
    assert_eq!(
        err.to_string(),
        "timed out waiting for client to create streams"
    );
}
