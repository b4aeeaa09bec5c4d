//! skiff's PKI: CAs and certificates (rcgen), kubeconfig writer, node token.
//!
//! Files under the tls directory (k3s layout; keys 0600, certificates 0644):
//! `server-ca.crt/.key`, `client-ca.crt/.key`, `serving-kube-apiserver.crt/.key`,
//! `client-admin.crt/.key`, `service.key` (service account signing key), `service.pub`.
//! All keys are ECDSA P-256; CAs live 10 years, leaf certificates 1 year.

mod certs;
mod csr;
mod der;
mod error;
mod fsutil;
mod jwt;
mod kubeconfig;
mod nodepass;
mod signer;
mod token;
mod verify;

pub use certs::{
    client_cert_identity, load_or_create, Pki, PkiConfig, DEFAULT_DNS_SANS, DEFAULT_IP_SANS,
};
pub use csr::{
    cert_matches_key, cert_validity, csr_pem, generate_key_pem, needs_renewal, parse_csr,
    NODES_GROUP, NODE_USER_PREFIX,
};
pub use error::PkiError;
pub use jwt::SERVICE_ACCOUNT_ISSUER;
pub use kubeconfig::{render_kubeconfig, write_kubeconfig};
pub use nodepass::{hash_node_password, verify_node_password};
pub use signer::{
    check_client_usages, check_kubelet_serving, requested_subject, RequestedSubject,
    KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_SIGNER, MAX_SIGNED_SECONDS,
};
pub use token::{
    ca_hash, generate_bootstrap_token, load_or_create_token, parse_bootstrap_token, parse_token,
    ParsedToken,
};
pub use verify::AcceptAnyServerCert;

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const FILES: [&str; 10] = [
        "server-ca.crt",
        "server-ca.key",
        "client-ca.crt",
        "client-ca.key",
        "serving-kube-apiserver.crt",
        "serving-kube-apiserver.key",
        "client-admin.crt",
        "client-admin.key",
        "service.key",
        "service.pub",
    ];

    fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
        rustls_pemfile::certs(&mut pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    fn serving_sans(pki: &Pki) -> (Vec<String>, Vec<IpAddr>) {
        let der = certs(pki.serving_cert_pem()).remove(0);
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let (dns, ips) = certs::cert_sans(&cert);
        (dns.into_iter().collect(), ips.into_iter().collect())
    }

    #[test]
    fn create_then_reload_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("server/tls");
        let cfg = PkiConfig {
            dns_sans: vec!["node-a".into()],
            ip_sans: vec!["192.168.5.10".parse().unwrap()],
        };
        let a = load_or_create(&tls, &cfg).unwrap();
        for f in FILES {
            let mode = std::fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
            if f.ends_with(".key") {
                assert_eq!(mode, 0o600, "{f}");
            } else {
                assert_eq!(mode, 0o644, "{f}");
            }
        }
        assert_eq!(a.server_ca_pem(), read(&tls, "server-ca.crt"));
        assert_eq!(a.client_ca_pem(), read(&tls, "client-ca.crt"));
        assert_ne!(a.server_ca_pem(), a.client_ca_pem());
        let before: Vec<String> = FILES.iter().map(|f| read(&tls, f)).collect();

        let b = load_or_create(&tls, &cfg).unwrap();
        assert_eq!(a.server_ca_pem(), b.server_ca_pem());
        assert_eq!(ca_hash(a.server_ca_pem()), ca_hash(b.server_ca_pem()));
        assert_eq!(a.admin_cert_pem(), b.admin_cert_pem());
        assert_eq!(a.serving_cert_pem(), b.serving_cert_pem());
        let after: Vec<String> = FILES.iter().map(|f| read(&tls, f)).collect();
        assert_eq!(before, after, "a restart must not rewrite any file");

        // Loosened key permissions are tightened again.
        std::fs::set_permissions(
            tls.join("client-ca.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        load_or_create(&tls, &cfg).unwrap();
        let mode = std::fs::metadata(tls.join("client-ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn serving_cert_covers_sans_and_is_reissued_only_when_needed() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = PkiConfig {
            dns_sans: vec!["node-a".into(), "api.example.com".into()],
            ip_sans: vec!["192.168.5.10".parse().unwrap()],
        };
        let a = load_or_create(dir.path(), &cfg).unwrap();
        let (dns, ips) = serving_sans(&a);
        for want in DEFAULT_DNS_SANS
            .iter()
            .copied()
            .chain(["node-a", "api.example.com"])
        {
            assert!(dns.iter().any(|d| d == want), "missing {want}");
        }
        for want in DEFAULT_IP_SANS
            .iter()
            .copied()
            .chain(["192.168.5.10".parse().unwrap()])
        {
            assert!(ips.contains(&want), "missing {want}");
        }

        // A subset of the SANs: the cert stays.
        let subset = PkiConfig {
            dns_sans: vec!["node-a".into()],
            ip_sans: vec![],
        };
        let b = load_or_create(dir.path(), &subset).unwrap();
        assert_eq!(a.serving_cert_pem(), b.serving_cert_pem());

        // A new SAN: re-issued by the same CA, CA unchanged.
        let more = PkiConfig {
            dns_sans: vec!["node-a".into(), "api.example.com".into()],
            ip_sans: vec!["192.168.5.10".parse().unwrap(), "10.0.0.7".parse().unwrap()],
        };
        let c = load_or_create(dir.path(), &more).unwrap();
        assert_ne!(a.serving_cert_pem(), c.serving_cert_pem());
        assert_eq!(a.server_ca_pem(), c.server_ca_pem());
        assert_eq!(a.admin_cert_pem(), c.admin_cert_pem());
        assert!(serving_sans(&c).1.contains(&"10.0.0.7".parse().unwrap()));
        assert_eq!(
            c.serving_cert_pem(),
            read(dir.path(), "serving-kube-apiserver.crt")
        );
    }

    #[test]
    fn admin_and_issued_identities() {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        let chain = certs(pki.admin_cert_pem());
        assert_eq!(chain.len(), 2, "leaf followed by the client CA");
        assert_eq!(chain[1].as_ref(), certs(pki.client_ca_pem())[0].as_ref());
        assert_eq!(
            client_cert_identity(&chain[0]).unwrap(),
            (
                "system:admin".to_string(),
                vec!["system:masters".to_string()]
            )
        );
        let (cert, key) = pki
            .issue_client_cert("system:node:n1", &["system:nodes"])
            .unwrap();
        assert!(key.contains("PRIVATE KEY"));
        assert_eq!(
            client_cert_identity(&certs(&cert)[0]).unwrap(),
            (
                "system:node:n1".to_string(),
                vec!["system:nodes".to_string()]
            )
        );
        let (cert, _) = pki.issue_client_cert("system:kube-proxy", &[]).unwrap();
        assert_eq!(
            client_cert_identity(&certs(&cert)[0]).unwrap(),
            ("system:kube-proxy".to_string(), vec![])
        );
        assert!(pki.issue_client_cert("", &[]).is_err());
        assert!(client_cert_identity(b"not a certificate").is_err());
    }

    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: rustls::ClientConfig,
        name: &str,
    ) -> Result<(Option<Vec<u8>>, Option<Vec<u8>>), String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server_task = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = tokio_rustls::TlsAcceptor::from(server)
                .accept(tcp)
                .await
                .map_err(|e| e.to_string())?;
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.to_vec());
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())?;
            Ok::<_, String>((peer, alpn))
        });
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let client_result = async {
            let mut tls = connector
                .connect(server_name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            assert_eq!(&buf, b"pong");
            Ok::<_, String>(())
        }
        .await;
        let server_result = server_task.await.unwrap();
        client_result?;
        server_result
    }

    fn client_config(pki: &Pki, identity: Option<(&str, &str)>) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(pki.server_ca_pem()) {
            roots.add(c).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let mut cfg = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    certs(cert),
                    rustls_pemfile::private_key(&mut key.as_bytes())
                        .unwrap()
                        .unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        cfg
    }

    #[tokio::test]
    async fn tls_handshake_with_admin_cert_over_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        let server = pki.rustls_server_config().unwrap();

        // Admin client certificate: the server sees system:admin / system:masters.
        let client = client_config(&pki, Some((pki.admin_cert_pem(), pki.admin_key_pem())));
        let (peer, alpn) = handshake(server.clone(), client, "127.0.0.1")
            .await
            .unwrap();
        let peer = peer.expect("server saw the client certificate");
        assert_eq!(
            client_cert_identity(&peer).unwrap(),
            (
                "system:admin".to_string(),
                vec!["system:masters".to_string()]
            )
        );
        assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));

        // Multi-group certificate from issue_client_cert, checked by name "kubernetes.default.svc".
        let (cert, key) = pki.issue_client_cert("alice", &["devs", "ops"]).unwrap();
        let client = client_config(&pki, Some((&cert, &key)));
        let (peer, _) = handshake(server.clone(), client, "kubernetes.default.svc")
            .await
            .unwrap();
        assert_eq!(
            client_cert_identity(&peer.unwrap()).unwrap(),
            (
                "alice".to_string(),
                vec!["devs".to_string(), "ops".to_string()]
            )
        );

        // No client certificate is allowed (bearer-token clients).
        let (peer, _) = handshake(server.clone(), client_config(&pki, None), "localhost")
            .await
            .unwrap();
        assert!(peer.is_none());

        // A certificate from another cluster's client CA is refused.
        let other_dir = tempfile::tempdir().unwrap();
        let other = load_or_create(other_dir.path(), &PkiConfig::default()).unwrap();
        let client = client_config(&pki, Some((other.admin_cert_pem(), other.admin_key_pem())));
        assert!(handshake(server.clone(), client, "localhost")
            .await
            .is_err());

        // A name outside the SANs fails server verification on the client.
        let client = client_config(&pki, None);
        assert!(handshake(server, client, "not-in-sans.example")
            .await
            .is_err());
    }

    #[test]
    fn kubeconfig_from_pki_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(&dir.path().join("tls"), &PkiConfig::default()).unwrap();
        let path = dir.path().join("skiff.yaml");
        write_kubeconfig(
            &path,
            0o600,
            "https://127.0.0.1:6443",
            pki.server_ca_pem(),
            pki.admin_cert_pem(),
            pki.admin_key_pem(),
        )
        .unwrap();
        let v: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        use base64::Engine;
        let ca = base64::engine::general_purpose::STANDARD
            .decode(
                v["clusters"][0]["cluster"]["certificate-authority-data"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        assert_eq!(ca, pki.server_ca_pem().as_bytes());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
