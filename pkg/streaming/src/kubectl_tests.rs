//! Interop with the real kubectl (Go client-go: gorilla WebSocket v5, moby/spdystream SPDY/3.1,
//! and the SPDY-in-WebSocket port-forward tunnel) against a minimal fake apiserver on
//! 127.0.0.1 whose pod subresources are served by this crate. kubectl must be on PATH (the CI
//! script requires it). Each test also checks which protocol the upgrade used.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming as Body;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::{accept_portforward, accept_remotecommand, ExitStatus, StreamOptions};

fn json(body: serde_json::Value) -> http::Response<Full<Bytes>> {
    let mut r = http::Response::new(Full::new(Bytes::from(body.to_string())));
    r.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    r
}

type Log = Arc<Mutex<Vec<String>>>;

/// Records "<ws|spdy> <status>" for every streaming request, to prove which protocol was used.
async fn apiserver(
    log: Log,
    req: http::Request<Body>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let streaming =
        req.uri().path().ends_with("/exec") || req.uri().path().ends_with("/portforward");
    let kind = if crate::is_websocket_request(req.headers()) {
        "ws"
    } else {
        "spdy"
    };
    let resp = route(req).await;
    if streaming {
        log.lock()
            .unwrap()
            .push(format!("{kind} {}", resp.status().as_u16()));
    }
    Ok(resp)
}

async fn route(mut req: http::Request<Body>) -> http::Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    match path.as_str() {
        "/api" => json(
            serde_json::json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        "/apis" => {
            json(serde_json::json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}))
        }
        "/api/v1" => json(
            serde_json::json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                {"name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod", "verbs": ["get", "list"], "shortNames": ["po"]},
                {"name": "pods/exec", "singularName": "", "namespaced": true, "kind": "PodExecOptions", "verbs": ["create", "get"]},
                {"name": "pods/portforward", "singularName": "", "namespaced": true, "kind": "PodPortForwardOptions", "verbs": ["create", "get"]}
            ]}),
        ),
        "/api/v1/namespaces/default/pods/p" => json(serde_json::json!({
            "kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], "nodeName": "n1"},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                "image": "busybox", "imageID": "", "state": {"running": {}}}]}
        })),
        "/api/v1/namespaces/default/pods/p/exec" => {
            let opts = StreamOptions::from_query(&query).unwrap();
            let (resp, pending) = accept_remotecommand(&mut req, opts);
            if let Some(pending) = pending {
                tokio::spawn(async move {
                    let Ok(mut s) = pending.await else { return };
                    let mut stdin = s.stdin.take().expect("stdin");
                    let mut stdout = s.stdout.take().expect("stdout");
                    let mut stderr = s.stderr.take().expect("stderr");
                    let _ = tokio::io::copy(&mut stdin, &mut stdout).await;
                    let _ = stderr.write_all(b"bye\n").await;
                    drop((stdout, stderr));
                    let _ = s.status.send(ExitStatus::Code(3)).await;
                });
            }
            resp
        }
        "/api/v1/namespaces/default/pods/p/portforward" => {
            let ports = crate::ports_from_query(&query).unwrap_or_default();
            let (resp, pending) = accept_portforward(&mut req, ports);
            if let Some(pending) = pending {
                tokio::spawn(async move {
                    let Ok(mut session) = pending.await else {
                        return;
                    };
                    while let Some(fs) = session.next().await {
                        tokio::spawn(async move {
                            if fs.port == 81 {
                                // what the agent reports when nothing listens in the pod
                                drop(fs.data);
                                let _ = fs
                                    .error
                                    .send("dial tcp4 127.0.0.1:81: connect: connection refused")
                                    .await;
                                return;
                            }
                            let (mut r, mut w) = fs.data.into_split();
                            let _ = w.write_all(format!("{}:", fs.port).as_bytes()).await;
                            let _ = tokio::io::copy(&mut r, &mut w).await;
                        });
                    }
                });
            }
            resp
        }
        _ => {
            let mut r = json(
                serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
            );
            *r.status_mut() = http::StatusCode::NOT_FOUND;
            r
        }
    }
}

struct Fake {
    log: Log,
    dir: std::path::PathBuf,
}

async fn fake() -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log = Log::default();
    let server_log = log.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let log = server_log.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| apiserver(log.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    let dir = std::env::temp_dir().join(format!(
        "skiff-streaming-kubectl-{}-{}",
        std::process::id(),
        addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: f\n  cluster:\n    server: http://{addr}\n\
         users:\n- name: u\n  user:\n    token: t\ncontexts:\n- name: f\n  context:\n    cluster: f\n    user: u\n    namespace: default\n\
         current-context: f\n"
    );
    std::fs::write(dir.join("config"), kubeconfig).unwrap();
    Fake { log, dir }
}

impl Fake {
    fn kubectl(&self, websockets: bool) -> tokio::process::Command {
        let mut c = tokio::process::Command::new("kubectl");
        c.env("KUBECONFIG", self.dir.join("config"))
            .env("HOME", &self.dir)
            .arg("--cache-dir")
            .arg(self.dir.join("cache"))
            .env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", websockets.to_string())
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }
}

async fn exec_roundtrip(websockets: bool, input: Vec<u8>) {
    let f = fake().await;
    let mut child = f
        .kubectl(websockets)
        .args(["exec", "-i", "p", "--", "cat"])
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feed = input.clone();
    tokio::spawn(async move {
        stdin.write_all(&feed).await.unwrap();
    });
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.stdout == input,
        "stdout: {} of {} bytes; stderr: {stderr}",
        out.stdout.len(),
        input.len()
    );
    assert!(stderr.contains("bye"), "{stderr}");
    assert!(
        stderr.contains("command terminated with exit code 3"),
        "{stderr}"
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let want = if websockets { "ws 101" } else { "spdy 101" };
    assert_eq!(*f.log.lock().unwrap(), vec![want.to_string()]);
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn kubectl_exec_websocket_v5() {
    exec_roundtrip(true, b"hello\n".to_vec()).await;
}

/// Several MiB each way: no flow-control stall with either protocol.
fn large() -> Vec<u8> {
    (0..3 * 1024 * 1024).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn kubectl_exec_large_websocket() {
    exec_roundtrip(true, large()).await;
}

#[tokio::test]
async fn kubectl_exec_large_spdy() {
    exec_roundtrip(false, large()).await;
}

#[tokio::test]
async fn kubectl_exec_spdy() {
    exec_roundtrip(false, b"hello\n".to_vec()).await;
}

async fn port_forward_roundtrip(websockets: bool) {
    let f = fake().await;
    let mut child = f
        .kubectl(websockets)
        .args(["port-forward", "pod/p", ":8080"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // "Forwarding from 127.0.0.1:NNNNN -> 8080"
    let local: SocketAddr = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    for round in 0..2 {
        let mut conn = TcpStream::connect(local).await.unwrap();
        let msg = format!("ping{round}");
        conn.write_all(msg.as_bytes()).await.unwrap();
        let want = format!("8080:{msg}");
        let mut got = vec![0u8; want.len()];
        tokio::time::timeout(Duration::from_secs(10), conn.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&got), want);
    }
    child.kill().await.unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .await
        .unwrap();
    assert!(!err.contains("error"), "{err}");
    // one upgraded connection carries both forwarded connections
    let want = if websockets { "ws 101" } else { "spdy 101" };
    assert_eq!(*f.log.lock().unwrap(), vec![want.to_string()]);
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn kubectl_port_forward_tunnel() {
    port_forward_roundtrip(true).await;
}

#[tokio::test]
async fn kubectl_port_forward_spdy() {
    port_forward_roundtrip(false).await;
}

/// The error text reaches kubectl, which reports it for that connection.
async fn port_forward_error(websockets: bool) {
    let f = fake().await;
    let mut child = f
        .kubectl(websockets)
        .args(["port-forward", "pod/p", ":81"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let local: SocketAddr = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    let mut conn = TcpStream::connect(local).await.unwrap();
    let mut buf = Vec::new();
    // kubectl closes the local connection once the pod side is done
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut buf)).await;
    assert!(buf.is_empty());
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    while !seen.contains("connection refused") {
        match tokio::time::timeout(Duration::from_secs(10), stderr.next_line()).await {
            Ok(Ok(Some(l))) => seen.push_str(&l),
            _ => break,
        }
    }
    let _ = child.kill().await;
    assert!(seen.contains("an error occurred forwarding"), "{seen}");
    assert!(
        seen.contains("-> 81: dial tcp4 127.0.0.1:81: connect: connection refused"),
        "{seen}"
    );
    let _ = std::fs::remove_dir_all(&f.dir);
}

#[tokio::test]
async fn kubectl_port_forward_error_tunnel() {
    port_forward_error(true).await;
}

#[tokio::test]
async fn kubectl_port_forward_error_spdy() {
    port_forward_error(false).await;
}
