//! Secure join like k3s: fetch the server's CA bundle from `/cacerts` without verification,
//! fetch it again verifying the server against it, pin it to the token's `K10<sha256>` hash,
//! and only then build the authenticated kube-rs client (bearer = the token's password).

use std::path::Path;

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
}
