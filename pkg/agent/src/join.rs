//! Secure join like k3s: fetch the server's CA bundle from `/cacerts` without verification,
//! fetch it again verifying the server against it, pin it to the token's `K10<sha256>` hash,
//! and only then build the authenticated kube-rs client (bearer = the token's password).
//! [`join_node`] goes further and gives the node its own identity (`system:node:<name>`):
//! node password, key pairs kept on the node, certificates signed from CSRs.

use std::path::Path;
use std::sync::Arc;

use kube::config::AuthInfo;

use crate::Error;

/// What a successful join yields.
pub struct Joined {
    /// A client that verifies the server against the pinned CA and sends the node token.
    pub client: kube::Client,
    /// The server URL as given.
    pub url: http::Uri,
    /// The pinned CA bundle (PEM, exactly as served).
    pub ca_pem: String,
    /// Whether the bundle was checked against a `K10` token hash (false for a bare password).
    pub pinned: bool,
}

/// Parses the server URL; it must be `https://host[:port]`.
pub fn parse_server_url(url: &str) -> Result<http::Uri, Error> {
    let uri: http::Uri = url
        .trim()
        .trim_end_matches('/')
        .parse()
        .map_err(|_| Error::Join(format!("invalid --server {url:?}: use https://HOST:6443")))?;
    if uri.scheme_str() != Some("https") || uri.host().is_none() {
        return Err(Error::Join(format!(
            "invalid --server {url:?}: the URL must be https://HOST:PORT"
        )));
    }
    Ok(uri)
}

/// The DER certificates of a PEM bundle; an error when it holds none.
pub fn pem_to_der(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut rd = pem.as_bytes();
    let mut out = Vec::new();
    for cert in rustls_pemfile::certs(&mut rd) {
        let cert =
            cert.map_err(|e| Error::Join(format!("the server's /cacerts is not valid PEM: {e}")))?;
        out.push(cert.as_ref().to_vec());
    }
    if out.is_empty() {
        return Err(Error::Join(
            "the server's /cacerts holds no certificate: is --server a skiff server?".into(),
        ));
    }
    Ok(out)
}

/// Checks the CA bundle against the token: `Ok(true)` when pinned and equal, `Ok(false)`
/// when the token is a bare password (nothing to compare), an error on mismatch.
pub fn check_ca_pin(token: &skiff_pki::ParsedToken, ca_pem: &str) -> Result<bool, Error> {
    let Some(want) = &token.ca_hash else {
        return Ok(false);
    };
    let got = skiff_pki::ca_hash(ca_pem);
    if !got.eq_ignore_ascii_case(want) {
        return Err(Error::Join(format!(
            "the server's CA bundle (sha256 {got}) does not match the token's CA hash {want}: \
             this is not the server the token belongs to, or its CA changed; check --server and \
             get the current token with `skiff token` on the server"
        )));
    }
    Ok(true)
}

fn base_config(url: &http::Uri) -> kube::Config {
    let mut cfg = kube::Config::new(url.clone());
    cfg.connect_timeout = Some(std::time::Duration::from_secs(10));
    cfg.default_namespace = "default".into();
    cfg
}

async fn get_cacerts(cfg: kube::Config) -> Result<String, Error> {
    let client = kube::Client::try_from(cfg)
        .map_err(|e| Error::Join(format!("cannot build an HTTPS client: {e}")))?;
    let req = http::Request::get("/cacerts")
        .body(Vec::new())
        .map_err(|e| Error::Join(format!("cannot build the /cacerts request: {e}")))?;
    client.request_text(req).await.map_err(|e| {
        Error::Join(format!(
            "cannot get /cacerts from the server: {e}: check --server and that the server is up"
        ))
    })
}

/// Joins the server at `url` with `token` (a `K10…` token or a bare password). Writes the
/// pinned CA bundle to `<data_dir>/agent/server-ca.crt` when `data_dir` is given.
pub async fn join(url: &str, token: &str, data_dir: Option<&Path>) -> Result<Joined, Error> {
    let uri = parse_server_url(url)?;
    let parsed =
        skiff_pki::parse_token(token).map_err(|e| Error::Join(format!("invalid --token: {e}")))?;

    let mut insecure = base_config(&uri);
    insecure.accept_invalid_certs = true;
    let bundle = get_cacerts(insecure).await?;
    let ders = pem_to_der(&bundle)?;

    let mut verifying = base_config(&uri);
    verifying.root_cert = Some(ders.clone());
    let again = get_cacerts(verifying).await?;
    if again != bundle {
        return Err(Error::Join(
            "the server's CA bundle changed between two requests: retry the join".into(),
        ));
    }

    let pinned = check_ca_pin(&parsed, &bundle)?;
    if !pinned {
        tracing::warn!(
            "the token is a bare password: the server's CA is not pinned; use the full K10 token \
             from `skiff token` to protect the join"
        );
    }

    if let Some(dir) = data_dir {
        let agent_dir = dir.join("agent");
        std::fs::create_dir_all(&agent_dir).map_err(|e| {
            Error::Join(format!(
                "cannot create {}: {e}: check --data-dir",
                agent_dir.display()
            ))
        })?;
        let path = agent_dir.join("server-ca.crt");
        std::fs::write(&path, &bundle).map_err(|e| {
            Error::Join(format!(
                "cannot write {}: {e}: check --data-dir",
                path.display()
            ))
        })?;
    }

    let mut cfg = base_config(&uri);
    cfg.root_cert = Some(ders);
    cfg.auth_info = serde_json::from_value::<AuthInfo>(serde_json::json!({
        "token": parsed.password,
    }))
    .map_err(|e| Error::Join(format!("cannot set the bearer token: {e}")))?;
    let client = kube::Client::try_from(cfg)
        .map_err(|e| Error::Join(format!("cannot build the API client: {e}")))?;
    Ok(Joined {
        client,
        url: uri,
        ca_pem: bundle,
        pinned,
    })
}

// ---------------------------------------------------------------------------------------
// Per-node identity: node password, kubelet key pairs, certificates signed from CSRs.

/// What [`join_node`] needs.
#[derive(Debug, Clone)]
pub struct NodeIdentityOptions {
    /// `https://HOST:PORT` of the server.
    pub server: String,
    /// A `K10…` token or a bare password.
    pub token: String,
    pub node_name: String,
    /// Put in the serving certificate's SANs (with 127.0.0.1).
    pub node_ips: Vec<std::net::IpAddr>,
    /// The data dir; files go to `<data_dir>/agent/`.
    pub data_dir: std::path::PathBuf,
    /// The server URL written into `kubelet.kubeconfig` when it is not `server`: the
    /// `--server` address while the agent talks through its loopback load balancer, so the
    /// file also works from other hosts.
    pub kubeconfig_server: Option<String>,
}

/// A node with its own identity.
pub struct NodeJoined {
    /// A client authenticated as `system:node:<name>` that verifies the server against the
    /// pinned CA.
    pub client: kube::Client,
    pub url: http::Uri,
    /// The server CA bundle (PEM, exactly as served).
    pub ca_pem: String,
    /// Whether the bundle was checked against a `K10` token hash.
    pub pinned: bool,
    /// The kubelet client certificate `client` presents (leaf + client CA).
    pub client_cert_pem: String,
    /// The kubelet serving certificate (leaf + server CA) and its key.
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    /// The CA that signs client certificates (for the kubelet API's client auth).
    pub client_ca_pem: String,
}

/// File names under `<data>/agent/`.
pub const NODE_PASSWORD_FILE: &str = "node-password";
pub const CLIENT_KEY_FILE: &str = "client-kubelet.key";
pub const CLIENT_CERT_FILE: &str = "client-kubelet.crt";
pub const SERVING_KEY_FILE: &str = "serving-kubelet.key";
pub const SERVING_CERT_FILE: &str = "serving-kubelet.crt";
pub const KUBELET_KUBECONFIG_FILE: &str = "kubelet.kubeconfig";

const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(30);

/// Why one join attempt failed: worth retrying (server unreachable or busy) or not.
#[derive(Debug)]
enum Attempt {
    Retry(String),
    Fatal(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Fatal(e)
    }
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Writes `data` to `path` with `mode`, through a temp file and a rename.
fn write_private(path: &Path, data: &[u8], mode: u32) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_err(format!(
            "cannot create {}: check --data-dir",
            tmp.display()
        )))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .map_err(io_err(format!(
            "cannot write {}: check --data-dir",
            tmp.display()
        )))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!(
        "cannot write {}: check --data-dir",
        path.display()
    )))
}

fn read_opt(path: &Path) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            what: format!("cannot read {}: check its permissions", path.display()),
            source: e,
        }),
    }
}

/// The node password: read from `<agent_dir>/node-password`, or created there once (16
/// random bytes as hex and a newline, mode 0600).
pub fn load_or_create_node_password(agent_dir: &Path) -> Result<String, Error> {
    let path = agent_dir.join(NODE_PASSWORD_FILE);
    if let Some(s) = read_opt(&path)? {
        let pw = s.trim().to_string();
        if !pw.is_empty() {
            return Ok(pw);
        }
    }
    let bytes: [u8; 16] = rand::random();
    let pw = hex::encode(bytes);
    write_private(&path, format!("{pw}\n").as_bytes(), 0o600)?;
    tracing::info!(path = %path.display(), "created the node password");
    Ok(pw)
}

/// The key at `path` (ECDSA P-256, PKCS#8 PEM), generated and saved (0600) when missing.
pub fn load_or_create_key(path: &Path) -> Result<String, Error> {
    if let Some(pem) = read_opt(path)? {
        if rcgen::KeyPair::from_pem(&pem).is_ok() {
            return Ok(pem);
        }
        tracing::warn!(path = %path.display(), "unreadable key; generating a new one");
    }
    let pem = skiff_pki::generate_key_pem()
        .map_err(|e| Error::Join(format!("cannot generate a key: {e}")))?;
    write_private(path, pem.as_bytes(), 0o600)?;
    Ok(pem)
}

/// Whether a saved certificate can be reused: it belongs to `key_pem`, chains to `ca_pem`
/// (its issuer is that CA's subject), and more than a third of its life remains at `now`.
pub fn reusable_cert(cert_pem: &str, key_pem: &str, ca_pem: &str, now: i64) -> bool {
    if !skiff_pki::cert_matches_key(cert_pem, key_pem) {
        return false;
    }
    if !issued_by(cert_pem, ca_pem) {
        return false;
    }
    match skiff_pki::cert_validity(cert_pem) {
        Ok((nb, na)) => !skiff_pki::needs_renewal(nb, na, now),
        Err(_) => false,
    }
}

/// Whether the first certificate of `cert_pem` names the first certificate of `ca_pem` as its
/// issuer.
pub fn issued_by(cert_pem: &str, ca_pem: &str) -> bool {
    (|| {
        let leaf = pem_to_der(cert_pem).ok()?.into_iter().next()?;
        let ca = pem_to_der(ca_pem).ok()?.into_iter().next()?;
        let (_, leaf_issuer) = x509_issuer_subject(&leaf)?;
        let (ca_subject, _) = x509_issuer_subject(&ca)?;
        Some(leaf_issuer == ca_subject)
    })()
    .unwrap_or(false)
}

/// (subject DER, issuer DER) of a certificate, read with a minimal DER walk: Certificate →
/// TBSCertificate → [version], serial, signature, issuer, validity, subject.
fn x509_issuer_subject(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn tlv(b: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        // (content, whole, rest)
        let first = *b.get(1)?;
        let (len, hdr) = if first < 0x80 {
            (first as usize, 2)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 {
                return None;
            }
            let mut l = 0usize;
            for x in b.get(2..2 + n)? {
                l = (l << 8) | *x as usize;
            }
            (l, 2 + n)
        };
        let end = hdr.checked_add(len)?;
        Some((b.get(hdr..end)?, b.get(..end)?, b.get(end..)?))
    }
    let (cert, _, _) = tlv(der)?;
    let (tbs, _, _) = tlv(cert)?;
    let mut rest = tbs;
    if *rest.first()? == 0xa0 {
        rest = tlv(rest)?.2;
    }
    rest = tlv(rest)?.2; // serial
    rest = tlv(rest)?.2; // signature algorithm
    let (_, issuer, after_issuer) = tlv(rest)?;
    let after_validity = tlv(after_issuer)?.2;
    let (_, subject, _) = tlv(after_validity)?;
    Some((subject.to_vec(), issuer.to_vec()))
}

/// A minimal HTTPS/1.1 client for the join calls (one request per connection).
struct JoinHttp {
    host: String,
    port: u16,
    tls: Arc<rustls::ClientConfig>,
}

/// An HTTP answer: status and body.
struct HttpAnswer {
    status: u16,
    body: Vec<u8>,
}

impl HttpAnswer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The message of a `v1 Status` body, else the body text.
    fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| self.text().trim().to_string())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl JoinHttp {
    fn new(url: &http::Uri, tls: rustls::ClientConfig) -> JoinHttp {
        let host = url
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        JoinHttp {
            host,
            port: url.port_u16().unwrap_or(443),
            tls: Arc::new(tls),
        }
    }

    fn insecure(url: &http::Uri) -> Result<JoinHttp, Error> {
        let p = provider();
        let cfg = rustls::ClientConfig::builder_with_provider(p.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Join(format!("cannot set up TLS: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(skiff_pki::AcceptAnyServerCert(p)))
            .with_no_client_auth();
        Ok(JoinHttp::new(url, cfg))
    }

    /// Verifies the server against `ca_pem`; presents `identity` (cert chain, key) if given.
    fn pinned(
        url: &http::Uri,
        ca_pem: &str,
        identity: Option<(&str, &str)>,
    ) -> Result<JoinHttp, Error> {
        let mut roots = rustls::RootCertStore::empty();
        for der in pem_to_der(ca_pem)? {
            roots
                .add(der.into())
                .map_err(|e| Error::Join(format!("the server's CA is unusable: {e}")))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Join(format!("cannot set up TLS: {e}")))?
            .with_root_certificates(roots);
        let cfg = match identity {
            Some((cert, key)) => {
                let chain = pem_to_der(cert)?.into_iter().map(Into::into).collect();
                let key = rustls_pemfile::private_key(&mut key.as_bytes())
                    .ok()
                    .flatten()
                    .ok_or_else(|| Error::Join("the saved client key is unreadable".into()))?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    Error::Join(format!("the saved client certificate is unusable: {e}"))
                })?
            }
            None => builder.with_no_client_auth(),
        };
        Ok(JoinHttp::new(url, cfg))
    }

    /// Sends one request. Transport failures (connect, TLS, timeout) are `Err(message)`.
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<HttpAnswer, String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let fut = async {
            let tcp = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| e.to_string())?;
            let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                .map_err(|e| format!("invalid server name {:?}: {e}", self.host))?;
            let mut tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            let host_header = if self.host.contains(':') {
                format!("[{}]:{}", self.host, self.port)
            } else {
                format!("{}:{}", self.host, self.port)
            };
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: skiff-agent\r\n\
                 Connection: close\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            tls.write_all(head.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(body).await.map_err(|e| e.to_string())?;
            tls.flush().await.map_err(|e| e.to_string())?;
            let mut raw = Vec::new();
            // The server may close without close_notify; what was read so far counts.
            if let Err(e) = tls.read_to_end(&mut raw).await {
                if raw.is_empty() {
                    return Err(e.to_string());
                }
            }
            parse_http_response(&raw)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())),
        }
    }
}

/// Parses an HTTP/1.1 response (Content-Length, chunked, or read-to-close bodies).
fn parse_http_response(raw: &[u8]) -> Result<HttpAnswer, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server's answer has no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("the server's answer has no HTTP status")?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k == "content-length" {
                length = v.parse::<usize>().ok();
            }
        }
    }
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let nl = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunked body")?;
            let size_str = String::from_utf8_lossy(&rest[..nl]);
            let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "bad chunk size")?;
            rest = &rest[nl + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(..size).ok_or("truncated chunk")?);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
        body = out;
    } else if let Some(n) = length {
        body.truncate(n);
    }
    Ok(HttpAnswer { status, body })
}

/// Whether a status is worth retrying (server starting, overloaded).
fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// The error for a non-200 answer of a join call.
fn answer_error(what: &str, a: &HttpAnswer) -> Attempt {
    if retryable_status(a.status) {
        return Attempt::Retry(format!("{what}: {} ({})", a.message(), a.status));
    }
    let msg = a.message();
    Attempt::Fatal(Error::Join(match a.status {
        401 => format!(
            "{what}: the server rejected the token (401 {msg}): use the current token from \
             `skiff token` (or <data>/server/token) on the server"
        ),
        403 => format!("{what}: {msg} (403)"),
        _ => format!("{what}: {msg} ({})", a.status),
    }))
}

fn basic_auth(password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("node:{password}"))
    )
}

/// Joins the server with this node's own identity, retrying with backoff while the server
/// cannot be reached: pins the CA like [`join`], keeps the node password and key pairs under
/// `<data>/agent/`, gets the kubelet client and serving certificates signed from CSRs (reusing
/// saved ones while more than a third of their life remains), writes `kubelet.kubeconfig`,
/// and returns a client authenticated as `system:node:<name>`.
pub async fn join_node(opts: &NodeIdentityOptions) -> Result<NodeJoined, Error> {
    let uri = parse_server_url(&opts.server)?;
    let token = skiff_pki::parse_token(&opts.token)
        .map_err(|e| Error::Join(format!("invalid --token: {e}")))?;
    let node = opts.node_name.trim().to_ascii_lowercase();
    if node.is_empty() {
        return Err(Error::Join(
            "the node name is empty: pass --node-name".into(),
        ));
    }
    let agent_dir = opts.data_dir.join("agent");
    std::fs::create_dir_all(&agent_dir).map_err(io_err(format!(
        "cannot create {}: check --data-dir",
        agent_dir.display()
    )))?;
    let password = load_or_create_node_password(&agent_dir)?;
    let mut delay = std::time::Duration::from_secs(1);
    loop {
        match join_once(opts, &uri, &token, &node, &agent_dir, &password).await {
            Ok(j) => return Ok(j),
            Err(Attempt::Fatal(e)) => return Err(e),
            Err(Attempt::Retry(why)) => {
                tracing::warn!(
                    "cannot reach the server at {uri}: {why}, retrying in {}s",
                    delay.as_secs()
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn get_ok(
    http: &JoinHttp,
    path: &str,
    headers: &[(&str, String)],
) -> Result<String, Attempt> {
    let a = http
        .request("GET", path, headers, &[])
        .await
        .map_err(Attempt::Retry)?;
    if a.status != 200 {
        return Err(answer_error(&format!("GET {path}"), &a));
    }
    Ok(a.text())
}

async fn join_once(
    opts: &NodeIdentityOptions,
    uri: &http::Uri,
    token: &skiff_pki::ParsedToken,
    node: &str,
    agent_dir: &Path,
    password: &str,
) -> Result<NodeJoined, Attempt> {
    // 1. The CA bundle, unverified, then again verified against itself; then the pin.
    let bundle = get_ok(&JoinHttp::insecure(uri)?, "/cacerts", &[]).await?;
    pem_to_der(&bundle)?;
    let again = get_ok(&JoinHttp::pinned(uri, &bundle, None)?, "/cacerts", &[]).await?;
    if again != bundle {
        return Err(Attempt::Retry(
            "the server's CA bundle changed between two requests".into(),
        ));
    }
    let pinned = check_ca_pin(token, &bundle)?;
    if !pinned {
        tracing::warn!(
            "the token is a bare password: the server's CA is not pinned; use the full K10 token \
             from `skiff token` to protect the join"
        );
    }
    write_private(&agent_dir.join("server-ca.crt"), bundle.as_bytes(), 0o600)?;

    // 2. The client CA (also checks the token: a wrong one fails here with 401).
    let auth = basic_auth(&token.password);
    let http = JoinHttp::pinned(uri, &bundle, None)?;
    let client_ca = get_ok(
        &http,
        "/v1-skiff/client-ca.crt",
        &[("Authorization", auth.clone())],
    )
    .await?;
    pem_to_der(&client_ca)?;
    write_private(
        &agent_dir.join("client-ca.crt"),
        client_ca.as_bytes(),
        0o600,
    )?;

    // 3. Key pairs and certificates.
    let now = chrono::Utc::now().timestamp();
    let client_key = load_or_create_key(&agent_dir.join(CLIENT_KEY_FILE))?;
    let serving_key = load_or_create_key(&agent_dir.join(SERVING_KEY_FILE))?;
    let saved_client = read_opt(&agent_dir.join(CLIENT_CERT_FILE))?;
    // A saved client certificate still valid is presented too (renewal by the node itself).
    let renewal_identity = saved_client
        .as_deref()
        .filter(|c| {
            skiff_pki::cert_validity(c).is_ok_and(|(nb, na)| nb <= now && now < na)
                && skiff_pki::cert_matches_key(c, &client_key)
                && issued_by(c, &client_ca)
        })
        .map(|c| (c.to_string(), client_key.clone()));
    let cert_http = match &renewal_identity {
        Some((c, k)) => match JoinHttp::pinned(uri, &bundle, Some((c, k))) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "cannot present the saved client certificate");
                JoinHttp::pinned(uri, &bundle, None)?
            }
        },
        None => JoinHttp::pinned(uri, &bundle, None)?,
    };
    let ips = opts
        .node_ips
        .iter()
        .map(|ip| ip.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let mut headers = vec![
        ("Authorization", auth),
        ("Skiff-Node-Name", node.to_string()),
        ("Skiff-Node-Password", password.to_string()),
        ("Content-Type", "application/pkcs10".to_string()),
    ];
    if !ips.is_empty() {
        headers.push(("Skiff-Node-IP", ips));
    }
    let serving_cert = obtain_cert(
        &cert_http,
        agent_dir,
        SERVING_CERT_FILE,
        "serving-kubelet.crt",
        &serving_key,
        &bundle,
        node,
        &headers,
        now,
    )
    .await?;
    let client_cert = obtain_cert(
        &cert_http,
        agent_dir,
        CLIENT_CERT_FILE,
        "client-kubelet.crt",
        &client_key,
        &client_ca,
        &format!("system:node:{node}"),
        &headers,
        now,
    )
    .await?;

    // 4. kubeconfig and client.
    let url = opts
        .kubeconfig_server
        .clone()
        .unwrap_or_else(|| uri.to_string());
    let url = url.trim_end_matches('/');
    skiff_pki::write_kubeconfig(
        &agent_dir.join(KUBELET_KUBECONFIG_FILE),
        0o600,
        url,
        &bundle,
        &client_cert,
        &client_key,
    )
    .map_err(|e| Error::Join(format!("cannot write the kubelet kubeconfig: {e}")))?;
    let client = node_client(uri, &bundle, &client_cert, &client_key)?;
    tracing::info!(%node, "joined with the node's own identity");
    Ok(NodeJoined {
        client,
        url: uri.clone(),
        ca_pem: bundle,
        pinned,
        client_cert_pem: client_cert,
        serving_cert_pem: serving_cert,
        serving_key_pem: serving_key,
        client_ca_pem: client_ca,
    })
}

/// Reuses `<agent_dir>/<file>` when still good, else sends a CSR to `/v1-skiff/<route>`.
#[allow(clippy::too_many_arguments)]
async fn obtain_cert(
    http: &JoinHttp,
    agent_dir: &Path,
    file: &str,
    route: &str,
    key_pem: &str,
    ca_pem: &str,
    cn: &str,
    headers: &[(&str, String)],
    now: i64,
) -> Result<String, Attempt> {
    let path = agent_dir.join(file);
    if let Some(saved) = read_opt(&path)? {
        if reusable_cert(&saved, key_pem, ca_pem, now) {
            return Ok(saved);
        }
        tracing::info!(cert = %path.display(), "renewing the node certificate");
    }
    let csr = skiff_pki::csr_pem(key_pem, cn)
        .map_err(|e| Error::Join(format!("cannot build a certificate request: {e}")))?;
    let what = format!("POST /v1-skiff/{route}");
    let a = http
        .request(
            "POST",
            &format!("/v1-skiff/{route}"),
            headers,
            csr.as_bytes(),
        )
        .await
        .map_err(Attempt::Retry)?;
    if a.status != 200 {
        return Err(answer_error(&what, &a));
    }
    let chain = a.text();
    if !skiff_pki::cert_matches_key(&chain, key_pem) {
        return Err(Attempt::Fatal(Error::Join(format!(
            "{what}: the server answered a certificate for another key: is --server a skiff server?"
        ))));
    }
    write_private(&path, chain.as_bytes(), 0o600)?;
    Ok(chain)
}

/// A kube client that verifies the server against `ca_pem` and presents the node's client
/// certificate.
pub fn node_client(
    uri: &http::Uri,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<kube::Client, Error> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut cfg = base_config(uri);
    cfg.root_cert = Some(pem_to_der(ca_pem)?);
    cfg.auth_info = serde_json::from_value::<AuthInfo>(serde_json::json!({
        "client-certificate-data": b64.encode(cert_pem),
        "client-key-data": b64.encode(key_pem),
    }))
    .map_err(|e| Error::Join(format!("cannot set the client certificate: {e}")))?;
    kube::Client::try_from(cfg)
        .map_err(|e| Error::Join(format!("cannot build the API client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real_ca() -> String {
        let dir = tempfile::tempdir().unwrap();
        let pki = skiff_pki::load_or_create(dir.path(), &skiff_pki::PkiConfig::default()).unwrap();
        pki.server_ca_pem().to_string()
    }

    #[test]
    fn server_url_must_be_https() {
        assert_eq!(
            parse_server_url("https://127.0.0.1:6443/")
                .unwrap()
                .port_u16(),
            Some(6443)
        );
        assert!(parse_server_url("http://127.0.0.1:6443").is_err());
        assert!(parse_server_url("127.0.0.1:6443").is_err());
        assert!(parse_server_url("https://").is_err());
    }

    #[test]
    fn pem_bundle_decodes() {
        assert_eq!(pem_to_der(&real_ca()).unwrap().len(), 1);
        assert!(pem_to_der("not a pem").is_err());
    }

    #[test]
    fn pinned_token_must_match_the_bundle() {
        let ca = real_ca();
        let hash = skiff_pki::ca_hash(&ca);
        let good = skiff_pki::parse_token(&format!("K10{hash}::server:secret")).unwrap();
        assert!(check_ca_pin(&good, &ca).unwrap());
        let upper =
            skiff_pki::parse_token(&format!("K10{}::server:secret", hash.to_ascii_uppercase()))
                .unwrap();
        assert!(check_ca_pin(&upper, &ca).unwrap());
        let other =
            skiff_pki::parse_token(&format!("K10{}::server:secret", "0".repeat(64))).unwrap();
        let err = check_ca_pin(&other, &ca).unwrap_err().to_string();
        assert!(err.contains("does not match the token's CA hash"), "{err}");
        assert!(err.contains(&hash), "{err}");
    }

    #[test]
    fn bare_password_is_not_pinned() {
        let ca = real_ca();
        let bare = skiff_pki::parse_token("justapassword").unwrap();
        assert_eq!(bare.password, "justapassword");
        assert!(!check_ca_pin(&bare, &ca).unwrap());
    }

    #[test]
    fn node_password_is_created_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_node_password(dir.path()).unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        let path = dir.path().join(NODE_PASSWORD_FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{a}\n"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_node_password(dir.path()).unwrap(), a);
    }

    #[test]
    fn keys_are_kept_and_certs_reused_only_while_fit() {
        let dir = tempfile::tempdir().unwrap();
        let key_path = dir.path().join(CLIENT_KEY_FILE);
        let key = load_or_create_key(&key_path).unwrap();
        assert_eq!(load_or_create_key(&key_path).unwrap(), key);
        let pki_dir = tempfile::tempdir().unwrap();
        let pki =
            skiff_pki::load_or_create(pki_dir.path(), &skiff_pki::PkiConfig::default()).unwrap();
        let csr = skiff_pki::csr_pem(&key, "x").unwrap();
        let cert = pki.sign_kubelet_client_csr(csr.as_bytes(), "n1").unwrap();
        let now = chrono::Utc::now().timestamp();
        assert!(reusable_cert(&cert, &key, pki.client_ca_pem(), now));
        // Another CA, another key, or late in life: not reusable.
        assert!(!reusable_cert(&cert, &key, pki.server_ca_pem(), now));
        let other_key = skiff_pki::generate_key_pem().unwrap();
        assert!(!reusable_cert(&cert, &other_key, pki.client_ca_pem(), now));
        let (nb, na) = skiff_pki::cert_validity(&cert).unwrap();
        let late = na - (na - nb) / 4;
        assert!(!reusable_cert(&cert, &key, pki.client_ca_pem(), late));
    }

    #[test]
    fn http_answers_parse_with_length_chunked_and_close() {
        let a = parse_http_response(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\npongXX").unwrap();
        assert_eq!((a.status, a.text().as_str()), (200, "pong"));
        let a = parse_http_response(
            b"HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"mes\r\nf\r\nsage\":\"no way\"}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(a.status, 403);
        assert_eq!(a.message(), "no way");
        let a = parse_http_response(b"HTTP/1.1 500 x\r\n\r\nboom").unwrap();
        assert_eq!(a.message(), "boom");
        assert!(parse_http_response(b"garbage").is_err());
        assert!(matches!(answer_error("x", &a), Attempt::Retry(_)));
        let denied = HttpAnswer {
            status: 401,
            body: b"{\"message\":\"Unauthorized\"}".to_vec(),
        };
        match answer_error("GET /v1-skiff/client-ca.crt", &denied) {
            Attempt::Fatal(e) => assert!(e.to_string().contains("rejected the token"), "{e}"),
            Attempt::Retry(m) => panic!("401 must not be retried: {m}"),
        }
    }
}
