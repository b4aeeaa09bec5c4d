//! The peer: a single-member etcd on loopback, written through its v3 JSON gateway
//! (`POST /v3/kv/put`, base64 key and value) over plain HTTP/1.1. The same etcd also backs a
//! skiff server started with `--datastore-endpoint` (its keys live under `/skiff/`).

use crate::error::{BenchError, Result};
use crate::http::{Conn, Target};
use crate::load::{http_load, Limits, LoadResult, MakeRequest};
use crate::procs::{free_port, ChildGuard};
use base64::Engine;
use bytes::Bytes;
use hyper::Method;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running etcd (killed on drop).
pub struct Etcd {
    pub child: ChildGuard,
    pub target: Target,
    pub version: String,
    /// `http://127.0.0.1:PORT`, for skiff's `--datastore-endpoint`.
    pub endpoint: String,
}

/// Starts `etcd` with its data under `dir` and waits (up to 30 s) until `/health` is OK.
pub async fn start(bin: &Path, dir: &Path) -> Result<Etcd> {
    let client = free_port()?;
    let peer = free_port()?;
    let curl = format!("http://127.0.0.1:{client}");
    let purl = format!("http://127.0.0.1:{peer}");
    let args: Vec<String> = vec![
        "--name".into(),
        "bench".into(),
        "--data-dir".into(),
        dir.join("etcd").display().to_string(),
        "--listen-client-urls".into(),
        curl.clone(),
        "--advertise-client-urls".into(),
        curl.clone(),
        "--listen-peer-urls".into(),
        purl.clone(),
        "--initial-advertise-peer-urls".into(),
        purl.clone(),
        "--initial-cluster".into(),
        format!("bench={purl}"),
    ];
    let log = dir.join("etcd.log");
    let mut child = ChildGuard::spawn("etcd", bin, &args, &log).map_err(|e| match e {
        BenchError::Spawn { program, source } => BenchError::Phase(format!(
            "cannot start {program}: {source}; install Debian's etcd-server (apt-get install -y etcd-server) or pass --etcd-bin"
        )),
        other => other,
    })?;
    let addr: SocketAddr = ([127, 0, 0, 1], client).into();
    let target = Target::Plain(addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        child.check_alive()?;
        if let Ok(mut c) = Conn::connect(&target).await {
            if let Ok((200, body)) = c.request(Method::GET, "/health", None).await {
                if String::from_utf8_lossy(&body).contains("true") {
                    let version = match c.request(Method::GET, "/version", None).await {
                        Ok((200, v)) => serde_json::from_slice::<serde_json::Value>(&v)
                            .ok()
                            .and_then(|j| j["etcdserver"].as_str().map(str::to_string))
                            .unwrap_or_else(|| "unknown".into()),
                        _ => "unknown".into(),
                    };
                    return Ok(Etcd {
                        child,
                        target,
                        version,
                        endpoint: curl,
                    });
                }
            }
        }
        if Instant::now() > deadline {
            return Err(BenchError::NotReady {
                what: "etcd".into(),
                secs: 30,
                log,
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The JSON body of a v3 gateway put.
pub fn put_body(key: &str, value_b64: &str) -> Bytes {
    let k = base64::engine::general_purpose::STANDARD.encode(key);
    Bytes::from(format!("{{\"key\":\"{k}\",\"value\":\"{value_b64}\"}}"))
}

/// Closed-loop puts of `value` under unique keys
/// `/registry/pods/default/e{round}-{clients}-{i}`.
pub async fn put_load(
    etcd: &Etcd,
    round: usize,
    clients: usize,
    limits: Limits,
    value: &[u8],
) -> Result<LoadResult> {
    let value_b64: Arc<str> = base64::engine::general_purpose::STANDARD
        .encode(value)
        .into();
    let make: MakeRequest = Arc::new(move |i| {
        let key = format!("/registry/pods/default/e{round}-{clients}-{i}");
        (
            Method::POST,
            "/v3/kv/put".to_string(),
            Some(put_body(&key, &value_b64)),
        )
    });
    http_load(
        &etcd.target,
        clients,
        limits,
        200,
        make,
        Some(etcd.child.pid()),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_body_base64_encodes_the_key() {
        let b = put_body("/a", "dg==");
        assert_eq!(&b[..], br#"{"key":"L2E=","value":"dg=="}"#);
    }
}
