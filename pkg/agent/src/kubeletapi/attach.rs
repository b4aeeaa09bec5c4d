//! `/attach/…`: CRI `Attach` gives a single-use URL on containerd's stream server; this
//! connects to it as a WebSocket client (`v4.channel.k8s.io`) and bridges its channels to the
//! client's streams from `skiff-streaming`.

use futures::{SinkExt, StreamExt};
use k8s_cri::v1::AttachRequest;
use skiff_streaming::{ExitStatus, Streams, TermSize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::cri::Cri;

/// The channel protocol spoken to containerd's stream server.
const PROTOCOL: &str = "v4.channel.k8s.io";

/// The exit status a v4 status message (JSON `metav1.Status`) describes.
pub fn status_from_json(payload: &[u8]) -> ExitStatus {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return ExitStatus::Error(String::from_utf8_lossy(payload).into_owned());
    };
    if v["status"] == "Success" {
        return ExitStatus::Success;
    }
    if v["reason"] == "NonZeroExitCode" {
        let code = v["details"]["causes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["reason"] == "ExitCode")
            .and_then(|c| c["message"].as_str()?.parse::<i32>().ok());
        if let Some(code) = code {
            return ExitStatus::Code(code);
        }
    }
    let msg = v["message"].as_str().unwrap_or("attach failed").to_string();
    // containerd's stream server already says "Internal error occurred: …".
    ExitStatus::Error(
        msg.strip_prefix("Internal error occurred: ")
            .unwrap_or(&msg)
            .to_string(),
    )
}

/// The resize message for channel 4 (client-go's struct has no json tags).
pub fn resize_message(size: &TermSize) -> Vec<u8> {
    let mut m = vec![4u8];
    m.extend_from_slice(
        serde_json::json!({"Width": size.width, "Height": size.height})
            .to_string()
            .as_bytes(),
    );
    m
}

/// Attaches to container `id` and bridges until the stream server closes the connection.
pub async fn run(cri: &Cri, id: &str, tty: bool, streams: Streams) {
    let Streams {
        stdin,
        mut stdout,
        mut stderr,
        resize,
        status,
    } = streams;
    let mut rt = cri.runtime.clone();
    let url = match rt
        .attach(AttachRequest {
            container_id: id.to_string(),
            stdin: stdin.is_some(),
            tty,
            stdout: stdout.is_some(),
            stderr: stderr.is_some() && !tty,
        })
        .await
    {
        Ok(r) => r.into_inner().url,
        Err(s) => {
            let _ = status
                .send(ExitStatus::Error(format!(
                    "error attaching to container: {}",
                    s.message()
                )))
                .await;
            return;
        }
    };
    let ws = match connect(&url).await {
        Ok(ws) => ws,
        Err(e) => {
            let _ = status
                .send(ExitStatus::Error(format!(
                    "error attaching to container: cannot reach the runtime's stream server: {e}"
                )))
                .await;
            return;
        }
    };
    let (mut sink, mut source) = ws.split();
    let (out_tx, mut out_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(8);
    // stdin → channel 0
    let stdin_task = tokio::spawn({
        let tx = out_tx.clone();
        async move {
            let Some(mut r) = stdin else { return };
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match r.read(&mut buf[1..]).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        buf[0] = 0;
                        if tx.send(buf[..n + 1].to_vec()).await.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    });
    // resize → channel 4
    let resize_task = tokio::spawn({
        let tx = out_tx.clone();
        async move {
            let Some(mut rx) = resize else { return };
            while let Some(size) = rx.recv().await {
                if tx.send(resize_message(&size)).await.is_err() {
                    return;
                }
            }
        }
    });
    drop(out_tx);
    let writer = tokio::spawn(async move {
        while let Some(m) = out_rx.recv().await {
            if sink.send(Message::binary(m)).await.is_err() {
                return;
            }
        }
    });
    let mut status_payload: Vec<u8> = Vec::new();
    while let Some(msg) = source.next().await {
        let data = match msg {
            Ok(Message::Binary(b)) => b.to_vec(),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => continue,
        };
        let Some((&ch, payload)) = data.split_first() else {
            continue;
        };
        if payload.is_empty() {
            continue;
        }
        let w = match ch {
            1 => stdout.as_mut(),
            2 => stderr.as_mut(),
            3 => {
                status_payload.extend_from_slice(payload);
                continue;
            }
            _ => continue,
        };
        if let Some(w) = w {
            if w.write_all(payload).await.is_err() || w.flush().await.is_err() {
                break;
            }
        }
    }
    stdin_task.abort();
    resize_task.abort();
    writer.abort();
    let end = if status_payload.is_empty() {
        ExitStatus::Success
    } else {
        status_from_json(&status_payload)
    };
    let _ = status.send(end).await;
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn connect(url: &str) -> Result<Ws, String> {
    let ws_url = url
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut req = ws_url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("bad stream URL {url}: {e}"))?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        http::HeaderValue::from_static(PROTOCOL),
    );
    let uri = req.uri().clone();
    let host = uri.host().unwrap_or("127.0.0.1").trim_matches(['[', ']']);
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let (ws, _) = tokio_tungstenite::client_async(req, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_status_messages_map_to_exit_statuses() {
        assert_eq!(
            status_from_json(br#"{"metadata":{},"status":"Success"}"#),
            ExitStatus::Success
        );
        assert_eq!(
            status_from_json(
                br#"{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#
            ),
            ExitStatus::Code(3)
        );
        assert_eq!(
            status_from_json(
                br#"{"metadata":{},"status":"Failure","message":"Internal error occurred: boom","reason":"InternalError"}"#
            ),
            ExitStatus::Error("boom".into())
        );
        assert_eq!(
            status_from_json(b"plain"),
            ExitStatus::Error("plain".into())
        );
    }

    #[test]
    fn resize_goes_on_channel_four() {
        let m = resize_message(&TermSize {
            width: 80,
            height: 24,
        });
        assert_eq!(m[0], 4);
        assert_eq!(&m[1..], br#"{"Width":80,"Height":24}"#);
    }
}
