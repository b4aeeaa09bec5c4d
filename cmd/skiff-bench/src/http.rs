//! A minimal HTTP/1.1 client: one keep-alive connection per simulated client, plain or TLS
//! (rustls with the ring provider), with the admin credentials read from a kubeconfig.

use crate::error::{BenchError, Result};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio::net::TcpStream;

/// Where to connect and how.
#[derive(Clone)]
pub enum Target {
    /// Plain HTTP (etcd's JSON gateway on loopback).
    Plain(SocketAddr),
    /// HTTPS with the given client configuration (skiff).
    Tls(SocketAddr, Arc<ClientConfig>),
}

impl Target {
    /// The socket address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Plain(a) | Target::Tls(a, _) => *a,
        }
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    /// Opens a connection (TCP_NODELAY, then TLS when the target asks for it).
    pub async fn connect(target: &Target) -> Result<Conn> {
        let addr = target.addr();
        let what = format!("connect {addr}");
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::http(&what, e))?;
        tcp.set_nodelay(true)
            .map_err(|e| BenchError::http(&what, e))?;
        let sender = match target {
            Target::Plain(_) => {
                let (sender, conn) = http1::handshake(TokioIo::new(tcp))
                    .await
                    .map_err(|e| BenchError::http(&what, e))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
            Target::Tls(_, cfg) => {
                let connector = tokio_rustls::TlsConnector::from(cfg.clone());
                let name = ServerName::IpAddress(addr.ip().into());
                let tls = connector
                    .connect(name, tcp)
                    .await
                    .map_err(|e| BenchError::http(&what, e))?;
                let (sender, conn) = http1::handshake(TokioIo::new(tls))
                    .await
                    .map_err(|e| BenchError::http(&what, e))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                sender
            }
        };
        Ok(Conn {
            sender,
            host: addr.to_string(),
        })
    }

    /// Sends a request and returns the response with its body still streaming.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response<Incoming>> {
        let what = || format!("{method} {path}");
        self.sender
            .ready()
            .await
            .map_err(|e| BenchError::http(what(), e))?;
        let mut b = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(HOST, &self.host)
            .header(ACCEPT, "application/json");
        let body = match body {
            Some(bytes) => {
                b = b.header(CONTENT_TYPE, "application/json");
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let req = b.body(body).map_err(|e| BenchError::http(what(), e))?;
        self.sender
            .send_request(req)
            .await
            .map_err(|e| BenchError::http(what(), e))
    }

    /// Sends a request and reads the whole response: (status, body).
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(u16, Bytes)> {
        let what = format!("{method} {path}");
        let resp = self.send(method, path, body).await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| BenchError::http(&what, e))?
            .to_bytes();
        Ok((status, body))
    }

    /// Like [`Conn::request`] but fails unless the status is `want`.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        want: u16,
    ) -> Result<Bytes> {
        let what = format!("{method} {path}");
        let (status, body) = self.request(method, path, body).await?;
        if status != want {
            return Err(BenchError::Status {
                what,
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned(),
            });
        }
        Ok(body)
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS client configuration that does not verify the server (anonymous `/readyz` polling).
pub fn insecure_tls() -> Result<Arc<ClientConfig>> {
    let p = provider();
    let cfg = ClientConfig::builder_with_provider(p.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BenchError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(skiff_pki::AcceptAnyServerCert(p)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// The API address and an mTLS client configuration (server CA + admin client cert) from a
/// kubeconfig with embedded `*-data` fields, as `skiff server --write-kubeconfig` writes it.
pub fn load_kubeconfig(path: &Path) -> Result<Target> {
    let bad = |why: String| BenchError::Kubeconfig {
        path: path.to_path_buf(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let v: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let field = |v: &serde_yaml::Value, key: &str| -> Result<String> {
        v.get(key)
            .and_then(|x| x.as_str())
            .map(str::to_string)
            .ok_or_else(|| bad(format!("{key} is missing")))
    };
    let decode = |s: String, key: &str| -> Result<Vec<u8>> {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| bad(format!("{key} is not base64: {e}")))
    };
    let cluster = &v["clusters"][0]["cluster"];
    let user = &v["users"][0]["user"];
    let server = field(cluster, "server")?;
    let addr: SocketAddr = server
        .strip_prefix("https://")
        .map(|s| s.trim_end_matches('/'))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(format!("server {server:?} is not https://IP:PORT")))?;
    let ca = decode(
        field(cluster, "certificate-authority-data")?,
        "certificate-authority-data",
    )?;
    let cert = decode(
        field(user, "client-certificate-data")?,
        "client-certificate-data",
    )?;
    let key = decode(field(user, "client-key-data")?, "client-key-data")?;
    let cfg = mtls_config(&ca, &cert, &key)?;
    Ok(Target::Tls(addr, cfg))
}

/// A TLS client configuration trusting `ca_pem` and presenting `cert_pem`/`key_pem`.
pub fn mtls_config(ca_pem: &[u8], cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ClientConfig>> {
    let tls = |e: &dyn std::fmt::Display| BenchError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(&mut &ca_pem[..]) {
        roots.add(c.map_err(|e| tls(&e))?).map_err(|e| tls(&e))?;
    }
    if roots.is_empty() {
        return Err(BenchError::Tls("the CA bundle holds no certificate".into()));
    }
    let certs = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls(&e))?;
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| tls(&e))?
        .ok_or_else(|| BenchError::Tls("the client key PEM holds no private key".into()))?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_root_certificates(roots)
        .with_client_auth_cert(certs, key)
        .map_err(|e| tls(&e))?;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_without_certificates_is_rejected_with_the_field_name() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(
            &p,
            "apiVersion: v1\nclusters:\n- cluster:\n    server: https://127.0.0.1:6443\n  name: default\nusers:\n- name: default\n  user: {}\n",
        )
        .unwrap();
        let err = load_kubeconfig(&p).err().unwrap().to_string();
        assert!(
            err.contains("certificate-authority-data is missing"),
            "{err}"
        );
    }

    #[test]
    fn kubeconfig_with_a_hostname_server_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("kc");
        std::fs::write(
            &p,
            "clusters:\n- cluster:\n    server: https://localhost:6443\n    certificate-authority-data: eA==\nusers:\n- user: {}\n",
        )
        .unwrap();
        let err = load_kubeconfig(&p).err().unwrap().to_string();
        assert!(err.contains("not https://IP:PORT"), "{err}");
    }

    #[test]
    fn insecure_config_builds() {
        assert!(insecure_tls().is_ok());
    }

    #[tokio::test]
    async fn plain_request_round_trip() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(req.starts_with("POST /v3/kv/put HTTP/1.1"), "{req}");
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .unwrap();
        });
        let mut c = Conn::connect(&Target::Plain(addr)).await.unwrap();
        let body = c
            .expect(
                Method::POST,
                "/v3/kv/put",
                Some(Bytes::from_static(b"{}")),
                200,
            )
            .await
            .unwrap();
        assert_eq!(&body[..], b"ok");
    }
}
