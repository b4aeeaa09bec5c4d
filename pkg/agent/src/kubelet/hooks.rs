//! Container lifecycle handlers (postStart / preStop): exec through CRI ExecSync, httpGet to
//! the pod, sleep; plus the exec, HTTP and port helpers the probes share.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use k8s_cri::v1::ExecSyncRequest;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction, LifecycleHandler, Pod};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::cri::Cri;

/// The `User-Agent` of probes and hooks (upstream: `kube-probe/<major>.<minor>`).
pub const USER_AGENT: &str = "kube-probe/1.33";

/// `format.Pod`: `name_namespace(uid)`.
pub fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// A port given by number (or numeric string) or by the name of one of the container's ports.
pub fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    let named = match port {
        IntOrString::Int(n) => {
            return u16::try_from(*n)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid port number: {n}"))
        }
        IntOrString::String(s) => s,
    };
    if let Ok(n) = named.parse::<i64>() {
        return u16::try_from(n)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port number: {n}"));
    }
    c.ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref() == Some(named.as_str()))
        .and_then(|p| u16::try_from(p.container_port).ok())
        .ok_or_else(|| format!("couldn't find port: {named} in {}", c.name))
}

/// The outcome of one exec in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    /// Exit code and combined stdout+stderr.
    Exited(i32, String),
    TimedOut,
}

/// Runs `cmd` in the container through CRI ExecSync with a deadline.
pub async fn exec_sync(
    cri: &Cri,
    container_id: &str,
    cmd: &[String],
    timeout: Duration,
) -> Result<ExecOutcome, String> {
    let secs = timeout.as_secs().max(1) as i64;
    let req = ExecSyncRequest {
        container_id: container_id.to_string(),
        cmd: cmd.to_vec(),
        timeout: secs,
    };
    let mut rt = cri.runtime.clone();
    let call = rt.exec_sync(req);
    match tokio::time::timeout(timeout + Duration::from_secs(2), call).await {
        Err(_) => Ok(ExecOutcome::TimedOut),
        Ok(Err(s)) if s.code() == tonic::Code::DeadlineExceeded => Ok(ExecOutcome::TimedOut),
        Ok(Err(s)) if s.message().contains("timeout") && s.message().contains("exceeded") => {
            Ok(ExecOutcome::TimedOut)
        }
        Ok(Err(s)) => Err(format!("exec in container {container_id}: {}", s.message())),
        Ok(Ok(r)) => {
            let r = r.into_inner();
            let mut out = String::from_utf8_lossy(&r.stdout).into_owned();
            out.push_str(&String::from_utf8_lossy(&r.stderr));
            Ok(ExecOutcome::Exited(r.exit_code, out))
        }
    }
}

/// The HTTP request line and headers of a probe or hook GET.
pub fn http_request(host: &str, port: u16, path: &str, headers: &[(String, String)]) -> String {
    let path = if path.is_empty() { "/" } else { path };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let host_header = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("GET {path} HTTP/1.1\r\n");
    let has = |name: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name));
    if !has("host") {
        req.push_str(&format!("Host: {host_header}\r\n"));
    }
    if !has("user-agent") {
        req.push_str(&format!("User-Agent: {USER_AGENT}\r\n"));
    }
    if !has("accept") {
        req.push_str("Accept: */*\r\n");
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Connection: close\r\n\r\n");
    req
}

/// The status code of an HTTP/1.x response's status line.
pub fn parse_status_line(head: &str) -> Option<u16> {
    let line = head.lines().next()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

/// What an HTTP GET produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    Status(u16),
    /// Connection or protocol error, phrased like Go's `http.Client` (`Get "url": …`).
    Error(String),
}

/// Where an httpGet goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl HttpTarget {
    /// `http://host:port/path` as Go prints it in errors.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let path = if self.path.starts_with('/') || self.path.is_empty() {
            self.path.clone()
        } else {
            format!("/{}", self.path)
        };
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{host}:{}{path}", self.port)
    }
}

/// The target of an httpGet: host defaults to `pod_ip`, the port may be a container port name.
pub fn http_target(a: &HTTPGetAction, c: &Container, pod_ip: &str) -> Result<HttpTarget, String> {
    let scheme = a.scheme.as_deref().unwrap_or("HTTP");
    let https = match scheme.to_ascii_uppercase().as_str() {
        "HTTP" => false,
        "HTTPS" => true,
        _ => return Err(format!("unsupported scheme {scheme:?}: use HTTP or HTTPS")),
    };
    Ok(HttpTarget {
        https,
        host: a
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string()),
        port: resolve_port(&a.port, c)?,
        path: a.path.clone().unwrap_or_default(),
        headers: a
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect(),
    })
}

fn tls_connector() -> Result<tokio_rustls::TlsConnector, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    let cfg = CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls setup: {e}"))?
            .dangerous()
            // Probes do not verify TLS upstream either.
            .with_custom_certificate_verifier(Arc::new(skiff_pki::AcceptAnyServerCert(provider)))
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    });
    cfg.clone().map(tokio_rustls::TlsConnector::from)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    req: &str,
    url: &str,
) -> Result<u16, String> {
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("Get {url:?}: {}", io_text(&e)))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("Get {url:?}: {}", io_text(&e)))?;
        if n == 0 || buf.len() > 10 * 1024 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(2).any(|w| w == b"\r\n") {
            break;
        }
    }
    parse_status_line(&String::from_utf8_lossy(&buf))
        .ok_or_else(|| format!("Get {url:?}: malformed HTTP response"))
}

/// One HTTP/1.1 GET (TLS unverified for HTTPS) with a deadline over a fresh connection;
/// redirects are not followed (a 3xx counts as it is).
pub async fn http_get(t: &HttpTarget, timeout: Duration) -> HttpOutcome {
    let url = t.url();
    let req = http_request(&t.host, t.port, &t.path, &t.headers);
    let shown = if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let work = async {
        let s = tokio::net::TcpStream::connect((t.host.as_str(), t.port))
            .await
            .map_err(|e| format!("Get {url:?}: dial tcp {shown}: connect: {}", io_text(&e)))?;
        if t.https {
            let name = rustls::pki_types::ServerName::try_from(t.host.clone())
                .map_err(|e| format!("Get {url:?}: invalid host: {e}"))?;
            let tls = tls_connector()?
                .connect(name, s)
                .await
                .map_err(|e| format!("Get {url:?}: {e}"))?;
            exchange(tls, &req, &url).await
        } else {
            exchange(s, &req, &url).await
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => HttpOutcome::Error(format!(
            "Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Ok(Err(e)) => HttpOutcome::Error(e),
        Ok(Ok(code)) => HttpOutcome::Status(code),
    }
}

/// Go-like text of a socket error (`connection refused`).
pub fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        std::io::ErrorKind::TimedOut => "i/o timeout".into(),
        _ => {
            let s = e.to_string();
            // "No route to host (os error 113)" → "no route to host"
            let s = s.split(" (os error").next().unwrap_or(&s).to_string();
            let mut c = s.chars();
            match c.next() {
                Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
                None => s,
            }
        }
    }
}

/// Runs a lifecycle handler; the error is upstream's FailedPostStartHook/FailedPreStopHook text.
pub async fn run_handler(
    cri: &Cri,
    h: &LifecycleHandler,
    pod: &Pod,
    c: &Container,
    container_id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        let shown = format!("[{}]", cmd.join(" "));
        let fail = |err: String, msg: &str| {
            format!(
                "Exec lifecycle hook ({shown}) for Container {:?} in Pod {:?} failed - error: {err}, message: {msg:?}",
                c.name,
                pod_desc(pod)
            )
        };
        return match exec_sync(cri, container_id, &cmd, timeout)
            .await
            .map_err(|e| fail(e, ""))?
        {
            ExecOutcome::Exited(0, _) => Ok(()),
            ExecOutcome::Exited(code, out) => Err(fail(
                format!("command '{}' exited with {code}: {out}", cmd.join(" ")),
                &out,
            )),
            ExecOutcome::TimedOut => Err(fail(
                format!(
                    "command '{}' timed out after {}s",
                    cmd.join(" "),
                    timeout.as_secs()
                ),
                "",
            )),
        };
    }
    if let Some(a) = &h.http_get {
        let path = a.path.clone().unwrap_or_default();
        let fail = |err: String| {
            format!(
                "HTTP lifecycle hook ({path}) for Container {:?} in Pod {:?} failed - error: {err}",
                c.name,
                pod_desc(pod)
            )
        };
        let target = http_target(a, c, pod_ip).map_err(&fail)?;
        return match http_get(&target, timeout).await {
            HttpOutcome::Status(_) => Ok(()),
            HttpOutcome::Error(e) => Err(fail(e)),
        };
    }
    if let Some(s) = &h.sleep {
        let want = Duration::from_secs(s.seconds.max(0) as u64);
        tokio::time::sleep(want.min(timeout)).await;
        return Ok(());
    }
    if h.tcp_socket.is_some() {
        // Deprecated upstream and a no-op there too (only kept for backwards compatibility).
        return Ok(());
    }
    Err(format!(
        "lifecycle hook for Container {:?} in Pod {:?} has no action: set exec, httpGet or sleep",
        c.name,
        pod_desc(pod)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container() -> Container {
        serde_json::from_value(serde_json::json!({
            "name": "web", "ports": [{"name": "http", "containerPort": 8080}]
        }))
        .unwrap()
    }

    #[test]
    fn ports_resolve_by_number_and_name() {
        let c = container();
        assert_eq!(resolve_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve_port(&IntOrString::String("81".into()), &c), Ok(81));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &c),
            Ok(8080)
        );
        assert_eq!(
            resolve_port(&IntOrString::String("nope".into()), &c).unwrap_err(),
            "couldn't find port: nope in web"
        );
        assert!(resolve_port(&IntOrString::Int(0), &c).is_err());
        assert!(resolve_port(&IntOrString::Int(70000), &c).is_err());
    }

    #[test]
    fn requests_carry_headers_and_status_lines_parse() {
        let r = http_request(
            "10.42.0.5",
            8080,
            "healthz",
            &[("X-Probe".into(), "1".into())],
        );
        assert!(
            r.starts_with(
                "GET /healthz HTTP/1.1\r\nHost: 10.42.0.5:8080\r\nUser-Agent: kube-probe/1.33\r\n"
            ),
            "{r}"
        );
        assert!(r.contains("X-Probe: 1\r\n") && r.ends_with("\r\n\r\n"));
        let r = http_request("h", 1, "", &[("Host".into(), "example".into())]);
        assert!(
            r.starts_with("GET / HTTP/1.1\r\n")
                && r.contains("Host: example\r\n")
                && !r.contains("Host: h:1")
        );
        assert_eq!(
            parse_status_line("HTTP/1.1 500 Internal Server Error\r\n"),
            Some(500)
        );
        assert_eq!(parse_status_line("HTTP/1.0 302 Found\r\n"), Some(302));
        assert_eq!(parse_status_line("SSH-2.0-x\r\n"), None);
    }

    fn target(port: u16, path: &str, https: bool) -> HttpTarget {
        HttpTarget {
            https,
            host: "127.0.0.1".into(),
            port,
            path: path.into(),
            headers: vec![("X-A".into(), "b".into())],
        }
    }

    #[test]
    fn targets_default_to_the_pod_ip() {
        let a: HTTPGetAction =
            serde_json::from_value(serde_json::json!({"port": "http", "scheme": "HTTPS"})).unwrap();
        let t = http_target(&a, &container(), "10.0.0.1").unwrap();
        assert!(t.https);
        assert_eq!(t.url(), "https://10.0.0.1:8080");
        let a: HTTPGetAction =
            serde_json::from_value(serde_json::json!({"port": 80, "path": "x", "host": "fd00::1"}))
                .unwrap();
        assert_eq!(
            http_target(&a, &container(), "10.0.0.1").unwrap().url(),
            "http://[fd00::1]:80/x"
        );
        let a: HTTPGetAction =
            serde_json::from_value(serde_json::json!({"port": 80, "scheme": "FTP"})).unwrap();
        assert!(http_target(&a, &container(), "10.0.0.1").is_err());
    }

    /// A real HTTP exchange on loopback.
    #[tokio::test]
    async fn http_get_reads_the_status_and_reports_refusals() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let req = String::from_utf8_lossy(&buf[..n]).into_owned();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            req
        });
        let got = http_get(&target(port, "/ready", false), Duration::from_secs(2)).await;
        assert_eq!(got, HttpOutcome::Status(503));
        let req = server.await.unwrap();
        assert!(
            req.starts_with("GET /ready HTTP/1.1") && req.contains("X-A: b"),
            "{req}"
        );

        // Nothing listens on the port any more.
        match http_get(&target(port, "/", false), Duration::from_secs(2)).await {
            HttpOutcome::Error(e) => assert_eq!(e, format!("Get \"http://127.0.0.1:{port}/\": dial tcp 127.0.0.1:{port}: connect: connection refused")),
            other => panic!("{other:?}"),
        }
    }

    /// HTTPS against a real rustls server with a self-signed certificate.
    #[tokio::test]
    async fn https_get_does_not_verify_the_certificate() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["pod.local".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            let mut s = acceptor.accept(s).await.unwrap();
            let mut buf = vec![0u8; 1024];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            s.shutdown().await.ok();
        });
        let got = http_get(&target(port, "/healthz", true), Duration::from_secs(5)).await;
        assert_eq!(got, HttpOutcome::Status(204));
    }

    #[tokio::test]
    async fn http_get_times_out_on_a_silent_server() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let (_s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        match http_get(&target(port, "/", false), Duration::from_millis(200)).await {
            HttpOutcome::Error(e) => assert!(e.contains("context deadline exceeded"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
