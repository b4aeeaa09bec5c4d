//! TLS for port 443: certificates from the Ingresses' `kubernetes.io/tls` Secrets chosen by
//! SNI (exact host, then the `*.` wildcard one label up, then an Ingress TLS section without
//! hosts), else a self-signed default certificate, as Traefik does.

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::route::{normalize_host, TlsRef};
use crate::Error;

/// Certificates by host name, swapped whole when Ingresses or Secrets change.
#[derive(Debug, Default)]
pub struct CertIndex {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    any: Option<Arc<CertifiedKey>>,
}

impl CertIndex {
    /// Builds the index from the routing table's TLS sections (oldest Ingress first, which
    /// wins a host) and the certificates loaded for them by (namespace, secret).
    pub fn build(
        tls: &[TlsRef],
        certs: &HashMap<(String, String), Arc<CertifiedKey>>,
    ) -> CertIndex {
        let mut idx = CertIndex::default();
        for t in tls {
            let Some(cert) = certs.get(&(t.namespace.clone(), t.secret.clone())) else {
                continue;
            };
            if t.hosts.is_empty() && idx.any.is_none() {
                idx.any = Some(cert.clone());
            }
            for h in &t.hosts {
                let slot = match h.strip_prefix("*.") {
                    Some(suffix) => idx.wildcard.entry(suffix.to_string()),
                    None => idx.exact.entry(h.clone()),
                };
                slot.or_insert_with(|| cert.clone());
            }
        }
        idx
    }

    /// The certificate for an SNI name (`None`: use the default certificate).
    pub fn lookup(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = sni.map(normalize_host) {
            if let Some(c) = self.exact.get(&name) {
                return Some(c.clone());
            }
            if let Some((_, rest)) = name.split_once('.') {
                if let Some(c) = self.wildcard.get(rest) {
                    return Some(c.clone());
                }
            }
        }
        self.any.clone()
    }
}

/// The rustls resolver the 443 listener uses.
#[derive(Debug)]
pub struct Resolver {
    pub index: RwLock<Arc<CertIndex>>,
    default: Arc<CertifiedKey>,
}

impl Resolver {
    pub fn new(default: Arc<CertifiedKey>) -> Self {
        Resolver {
            index: RwLock::new(Arc::new(CertIndex::default())),
            default,
        }
    }

    pub fn set(&self, idx: CertIndex) {
        match self.index.write() {
            Ok(mut g) => *g = Arc::new(idx),
            Err(p) => *p.into_inner() = Arc::new(idx),
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let idx = match self.index.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        Some(
            idx.lookup(hello.server_name())
                .unwrap_or_else(|| self.default.clone()),
        )
    }
}

/// A certificate chain and key from PEM (`tls.crt`, `tls.key` of a Secret).
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<Arc<CertifiedKey>, Error> {
    let chain: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Tls(format!("tls.crt is not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Tls("tls.crt holds no certificate".into()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .map_err(|e| Error::Tls(format!("tls.key is not PEM: {e}")))?
        .ok_or_else(|| Error::Tls("tls.key holds no private key".into()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Tls(format!("tls.key: {e}")))?;
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// The certificate served when no Ingress has one for the name asked (self-signed, made at
/// start; Traefik's is called "TRAEFIK DEFAULT CERT").
pub fn default_certificate() -> Result<Arc<CertifiedKey>, Error> {
    let mut params = rcgen::CertificateParams::new(vec!["skiff-ingress-default".to_string()])
        .map_err(|e| Error::Tls(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SKIFF INGRESS DEFAULT CERT");
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Tls(e.to_string()))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    certified_key(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
}

/// The rustls server configuration of the 443 listener (HTTP/2 and HTTP/1.1 by ALPN).
pub fn server_config(resolver: Arc<Resolver>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(name: &str) -> Arc<CertifiedKey> {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        certified_key(
            ck.cert.pem().as_bytes(),
            ck.signing_key.serialize_pem().as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn sni_picks_exact_then_wildcard_then_hostless() {
        let (a, w, any) = (cert("a.com"), cert("x.b.com"), cert("any"));
        let mut certs = HashMap::new();
        certs.insert(("ns".to_string(), "a".to_string()), a.clone());
        certs.insert(("ns".to_string(), "w".to_string()), w.clone());
        certs.insert(("ns".to_string(), "any".to_string()), any.clone());
        let tref = |secret: &str, hosts: &[&str]| TlsRef {
            namespace: "ns".into(),
            secret: secret.into(),
            hosts: hosts.iter().map(|h| h.to_string()).collect(),
        };
        let idx = CertIndex::build(
            &[
                tref("a", &["a.com"]),
                tref("w", &["*.b.com"]),
                tref("any", &[]),
                tref("missing", &["m.com"]),
            ],
            &certs,
        );
        let same = |x: Option<Arc<CertifiedKey>>, y: &Arc<CertifiedKey>| {
            x.is_some_and(|x| Arc::ptr_eq(&x, y))
        };
        assert!(same(idx.lookup(Some("a.com")), &a));
        assert!(same(idx.lookup(Some("A.com")), &a));
        assert!(same(idx.lookup(Some("x.b.com")), &w));
        assert!(same(idx.lookup(Some("y.x.b.com")), &any));
        assert!(same(idx.lookup(Some("m.com")), &any));
        assert!(same(idx.lookup(None), &any));
        assert!(CertIndex::default().lookup(Some("a.com")).is_none());
    }

    #[test]
    fn pem_errors_say_which_part() {
        let err = certified_key(b"nope", b"nope").unwrap_err().to_string();
        assert!(err.contains("tls.crt"), "{err}");
        assert!(default_certificate().is_ok());
    }
}
