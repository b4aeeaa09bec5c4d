//! Certificate signing requests from nodes: parsing a PEM or DER PKCS#10 request, signing the
//! kubelet client and serving certificates from it (the key never leaves the node), building a
//! request on the node side, and reading a certificate's validity window.

use std::net::IpAddr;

use rcgen::{CertificateParams, CertificateSigningRequestParams, ExtendedKeyUsagePurpose, KeyPair};
use rustls::pki_types::CertificateSigningRequestDer;

use crate::certs::{first_cert_der, normalize_sans, sign_leaf};
use crate::{Pki, PkiConfig, PkiError};

/// Group every kubelet client certificate carries.
pub const NODES_GROUP: &str = "system:nodes";
/// Prefix of a node's user name (`system:node:<name>`).
pub const NODE_USER_PREFIX: &str = "system:node:";

/// Reads a certificate request sent as PEM (`CERTIFICATE REQUEST`) or raw DER and checks its
/// self-signature (proof that the sender holds the private key).
pub fn parse_csr(body: &[u8]) -> Result<CertificateSigningRequestParams, PkiError> {
    let trimmed = body.trim_ascii_start();
    let der: Vec<u8> = if trimmed.starts_with(b"-----BEGIN") {
        let mut rd = trimmed;
        let item = rustls_pemfile::read_one(&mut rd)
            .map_err(|e| PkiError::BadCsr(format!("unreadable PEM: {e}")))?;
        match item {
            Some(rustls_pemfile::Item::Csr(der)) => der.to_vec(),
            Some(_) => {
                return Err(PkiError::BadCsr(
                    "the PEM block is not a CERTIFICATE REQUEST".into(),
                ))
            }
            None => return Err(PkiError::BadCsr("no PEM block found".into())),
        }
    } else {
        body.to_vec()
    };
    if der.is_empty() {
        return Err(PkiError::BadCsr("the request body is empty".into()));
    }
    CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(der))
        .map_err(|e| PkiError::BadCsr(e.to_string()))
}

impl Pki {
    /// Signs a kubelet client certificate for `node` from its request: subject
    /// `O=system:nodes, CN=system:node:<node>`, EKU clientAuth, one year, by the client CA.
    /// Whatever subject or extensions the request asks for are ignored. Returns the leaf
    /// followed by the client CA certificate (PEM).
    pub fn sign_kubelet_client_csr(&self, csr: &[u8], node: &str) -> Result<String, PkiError> {
        let req = parse_csr(csr)?;
        let cn = format!("{NODE_USER_PREFIX}{node}");
        sign_leaf(
            self.client_ca(),
            &req.public_key,
            &cn,
            &[NODES_GROUP],
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// Signs a kubelet serving certificate for `node` from its request: subject `CN=<node>`,
    /// SANs DNS `<node>`, `localhost`, IP 127.0.0.1 and `ips`, EKU serverAuth, one year, by the
    /// server CA. Returns the leaf followed by the server CA certificate (PEM).
    pub fn sign_kubelet_serving_csr(
        &self,
        csr: &[u8],
        node: &str,
        ips: &[IpAddr],
    ) -> Result<String, PkiError> {
        let req = parse_csr(csr)?;
        let mut cfg = PkiConfig {
            dns_sans: vec![node.to_string(), "localhost".into()],
            ip_sans: vec![IpAddr::from([127, 0, 0, 1])],
        };
        cfg.ip_sans.extend(ips.iter().copied());
        let (dns, ips) = normalize_sans(&cfg)?;
        sign_leaf(
            self.server_ca(),
            &req.public_key,
            node,
            &[],
            &dns,
            &ips,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }
}

/// A PEM certificate request for `key_pem` (the node side). The subject carries only `cn`; the
/// server decides the real subject and extensions.
pub fn csr_pem(key_pem: &str, cn: &str) -> Result<String, PkiError> {
    let key = KeyPair::from_pem(key_pem).map_err(|e| PkiError::generate("request key", e))?;
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let req = params
        .serialize_request(&key)
        .map_err(|e| PkiError::generate("request", e))?;
    req.pem().map_err(|e| PkiError::generate("request", e))
}

/// A fresh ECDSA P-256 private key, PKCS#8 PEM.
pub fn generate_key_pem() -> Result<String, PkiError> {
    KeyPair::generate()
        .map(|k| k.serialize_pem())
        .map_err(|e| PkiError::generate("key", e))
}

/// Validity of the first certificate of a PEM bundle as (notBefore, notAfter) unix seconds.
pub fn cert_validity(pem: &str) -> Result<(i64, i64), PkiError> {
    let der = first_cert_der(pem).map_err(PkiError::BadCertificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    Ok((
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    ))
}

/// Whether the first certificate of `cert_pem` was made for `key_pem` (same public key).
pub fn cert_matches_key(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(der) = first_cert_der(cert_pem) else {
        return false;
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return false;
    };
    let Ok(key) = KeyPair::from_pem(key_pem) else {
        return false;
    };
    crate::certs::key_matches(&key, &cert)
}

/// Whether a certificate valid from `not_before` to `not_after` should be renewed at `now`
/// (all unix seconds): when less than a third of its life remains, or it is not yet valid.
pub fn needs_renewal(not_before: i64, not_after: i64, now: i64) -> bool {
    let life = not_after - not_before;
    if life <= 0 || now < not_before {
        return true;
    }
    (not_after - now) * 3 < life
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{client_cert_identity, load_or_create};
    use std::sync::Arc;

    fn pki() -> (tempfile::TempDir, Pki) {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        (dir, pki)
    }

    fn ders(pem: &str) -> Vec<Vec<u8>> {
        crate::certs::parse_certs(pem)
            .unwrap()
            .into_iter()
            .map(|c| c.to_vec())
            .collect()
    }

    fn verify_client(ca_pem: &str, leaf: &[u8]) -> Result<(), rustls::Error> {
        let mut roots = rustls::RootCertStore::empty();
        for c in crate::certs::parse_certs(ca_pem).unwrap() {
            roots.add(c).unwrap();
        }
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        v.verify_client_cert(
            &leaf.to_vec().into(),
            &[],
            rustls::pki_types::UnixTime::now(),
        )
        .map(|_| ())
    }

    #[test]
    fn client_csr_is_signed_with_the_node_identity_and_keeps_the_key() {
        let (_d, pki) = pki();
        let key = generate_key_pem().unwrap();
        // The request asks for another identity; the server decides.
        let csr = csr_pem(&key, "system:admin").unwrap();
        let chain = pki.sign_kubelet_client_csr(csr.as_bytes(), "n1").unwrap();
        let certs = ders(&chain);
        assert_eq!(certs.len(), 2, "leaf followed by the client CA");
        assert_eq!(certs[1], ders(pki.client_ca_pem())[0]);
        assert_eq!(
            client_cert_identity(&certs[0]).unwrap(),
            (
                "system:node:n1".to_string(),
                vec!["system:nodes".to_string()]
            )
        );
        assert!(cert_matches_key(&chain, &key));
        assert!(!cert_matches_key(&chain, &generate_key_pem().unwrap()));
        verify_client(pki.client_ca_pem(), &certs[0]).unwrap();
        // Not accepted where the server CA is expected.
        assert!(verify_client(pki.server_ca_pem(), &certs[0]).is_err());
        let (nb, na) = cert_validity(&chain).unwrap();
        let year = na - nb;
        assert!((365 * 86400..=366 * 86400).contains(&year), "{year}");
    }

    #[test]
    fn serving_csr_gets_node_sans_and_der_bodies_work() {
        let (_d, pki) = pki();
        let key = generate_key_pem().unwrap();
        let csr = csr_pem(&key, "n1").unwrap();
        let der = rustls_pemfile::read_one(&mut csr.as_bytes())
            .unwrap()
            .unwrap();
        let rustls_pemfile::Item::Csr(der) = der else {
            panic!("not a CSR")
        };
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let chain = pki
            .sign_kubelet_serving_csr(der.as_ref(), "N1", &[ip])
            .unwrap();
        let certs = ders(&chain);
        assert_eq!(certs[1], ders(pki.server_ca_pem())[0]);
        let (_, x) = x509_parser::parse_x509_certificate(&certs[0]).unwrap();
        let (dns, ips) = crate::certs::cert_sans(&x);
        assert!(dns.contains("n1") && dns.contains("localhost"), "{dns:?}");
        assert!(ips.contains(&ip) && ips.contains(&"127.0.0.1".parse().unwrap()));
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        assert!(cert_matches_key(&chain, &key));
    }

    #[test]
    fn bad_requests_are_refused() {
        let (_d, pki) = pki();
        for body in [
            &b""[..],
            b"garbage",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        ] {
            let err = pki.sign_kubelet_client_csr(body, "n1").unwrap_err();
            assert!(matches!(err, PkiError::BadCsr(_)), "{err}");
        }
        // A request whose signature does not match its key (tampered subject).
        let key = generate_key_pem().unwrap();
        let csr = csr_pem(&key, "tamperme").unwrap();
        let Some(rustls_pemfile::Item::Csr(der)) =
            rustls_pemfile::read_one(&mut csr.as_bytes()).unwrap()
        else {
            panic!("not a CSR")
        };
        let mut der = der.as_ref().to_vec();
        let pos = der.windows(8).position(|w| w == b"tamperme").unwrap();
        der[pos] = b'x';
        assert!(matches!(
            pki.sign_kubelet_client_csr(&der, "n1"),
            Err(PkiError::BadCsr(_))
        ));
    }

    #[test]
    fn renewal_after_two_thirds_of_life() {
        assert!(!needs_renewal(0, 300, 0));
        assert!(!needs_renewal(0, 300, 200));
        assert!(needs_renewal(0, 300, 201));
        assert!(needs_renewal(0, 300, 400));
        assert!(needs_renewal(100, 400, 50), "not yet valid");
        assert!(needs_renewal(5, 5, 5));
    }
}
