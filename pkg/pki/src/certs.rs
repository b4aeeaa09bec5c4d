//! The server's certificate authorities and certificates under the tls directory, laid out
//! like k3s: created on first start, reused afterwards, leaf certificates re-issued when
//! they no longer fit (SANs, issuer, expiry).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};
use x509_parser::prelude::{GeneralName, X509Certificate};

use crate::der;
use crate::fsutil::{enforce_mode, ensure_dir, read_opt, write_atomic};
use crate::jwt::{load_or_create_service_key, ServiceAccountKey};
use crate::PkiError;

/// DNS names every serving certificate carries.
pub const DEFAULT_DNS_SANS: [&str; 5] = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// IP addresses every serving certificate carries: loopback and the `kubernetes` Service
/// ClusterIP (first address of the default service CIDR 10.43.0.0/16).
pub const DEFAULT_IP_SANS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V6(Ipv6Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1)),
];

const CA_VALIDITY_DAYS: i64 = 3650;
const LEAF_VALIDITY_DAYS: i64 = 365;
/// Leaf certificates closer than this to expiry are re-issued at start (k3s uses 90 days).
const RENEW_BEFORE_DAYS: i64 = 90;
/// Back-dating of `notBefore` to tolerate small clock differences between nodes.
const BACKDATE_MINUTES: i64 = 5;

const SERVER_CA: &str = "server-ca";
const CLIENT_CA: &str = "client-ca";
const SERVING: &str = "serving-kube-apiserver";
const ADMIN: &str = "client-admin";
const SERVING_CN: &str = "kube-apiserver";
const ADMIN_CN: &str = "system:admin";
const ADMIN_ORG: &str = "system:masters";

/// Extra subject alternative names for the API serving certificate. The caller adds
/// localhost, 127.0.0.1, the hostname, node IPs and `--tls-san` values; the defaults in
/// [`DEFAULT_DNS_SANS`] and [`DEFAULT_IP_SANS`] are always added. A DNS entry that parses as an
/// IP address is treated as one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PkiConfig {
    pub dns_sans: Vec<String>,
    pub ip_sans: Vec<IpAddr>,
}

/// A CA: its certificate PEM (exactly the file content) and private key PEM.
pub(crate) struct Ca {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    pub(crate) fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(|e| PkiError::generate("issuer", e))?;
        Issuer::from_ca_cert_pem(&self.cert_pem, key).map_err(|e| PkiError::generate("issuer", e))
    }
}

/// The loaded PKI of a server: CAs, API serving certificate, admin client certificate and
/// service account signing key. Private keys are held in memory as PEM.
pub struct Pki {
    server_ca: Ca,
    client_ca: Ca,
    serving_cert_pem: String,
    serving_key_pem: String,
    admin_cert_pem: String,
    admin_key_pem: String,
    pub(crate) sa: ServiceAccountKey,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("server_ca_hash", &crate::ca_hash(&self.server_ca.cert_pem))
            .field("service_account_kid", &self.sa.kid)
            .finish_non_exhaustive()
    }
}

/// Loads the PKI from `tls_dir`, creating whatever is missing (see the crate docs for the
/// file names). CAs and the service account key are never replaced once they exist; the
/// serving and admin certificates are re-issued by the same CA when they are missing, do not
/// match their key or CA, are within 90 days of expiry, or (serving) do not cover every
/// requested SAN.
pub fn load_or_create(tls_dir: &Path, cfg: &PkiConfig) -> Result<Pki, PkiError> {
    ensure_dir(tls_dir)?;
    let server_ca = load_or_create_ca(tls_dir, SERVER_CA, "skiff-server-ca")?;
    let client_ca = load_or_create_ca(tls_dir, CLIENT_CA, "skiff-client-ca")?;

    let (dns, ips) = wanted_sans(cfg)?;
    let (serving_cert_pem, serving_key_pem) = load_or_issue_leaf(
        tls_dir,
        SERVING,
        &server_ca,
        |cert| serving_cert_problem(cert, &dns, &ips),
        || {
            issue_leaf(
                &server_ca,
                SERVING_CN,
                &[],
                &dns,
                &ips,
                ExtendedKeyUsagePurpose::ServerAuth,
            )
        },
    )?;
    let (admin_cert_pem, admin_key_pem) =
        load_or_issue_leaf(tls_dir, ADMIN, &client_ca, admin_cert_problem, || {
            issue_leaf(
                &client_ca,
                ADMIN_CN,
                &[ADMIN_ORG],
                &[],
                &[],
                ExtendedKeyUsagePurpose::ClientAuth,
            )
        })?;
    let sa = load_or_create_service_key(tls_dir)?;

    Ok(Pki {
        server_ca,
        client_ca,
        serving_cert_pem,
        serving_key_pem,
        admin_cert_pem,
        admin_key_pem,
        sa,
    })
}

impl Pki {
    /// The server CA bundle (exact content of `server-ca.crt`): served at `/cacerts`, put in
    /// kubeconfigs, hashed into the join token.
    pub fn server_ca_pem(&self) -> &str {
        &self.server_ca.cert_pem
    }

    /// The client CA bundle (exact content of `client-ca.crt`).
    pub fn client_ca_pem(&self) -> &str {
        &self.client_ca.cert_pem
    }

    pub(crate) fn server_ca(&self) -> &Ca {
        &self.server_ca
    }

    pub(crate) fn client_ca(&self) -> &Ca {
        &self.client_ca
    }

    /// The admin client certificate (CN system:admin, O system:masters) followed by the
    /// client CA certificate.
    pub fn admin_cert_pem(&self) -> &str {
        &self.admin_cert_pem
    }

    /// The admin client private key (PKCS#8 PEM).
    pub fn admin_key_pem(&self) -> &str {
        &self.admin_key_pem
    }

    /// The API serving certificate followed by the server CA certificate.
    pub fn serving_cert_pem(&self) -> &str {
        &self.serving_cert_pem
    }

    /// The API serving private key (PKCS#8 PEM).
    pub fn serving_key_pem(&self) -> &str {
        &self.serving_key_pem
    }

    /// Issues a client certificate from the client CA: subject `O=<org>…, CN=<cn>`, EKU
    /// clientAuth, valid one year, fresh ECDSA P-256 key. Returns (certificate followed by
    /// the client CA certificate, private key), both PEM.
    pub fn issue_client_cert(&self, cn: &str, orgs: &[&str]) -> Result<(String, String), PkiError> {
        issue_leaf(
            &self.client_ca,
            cn,
            orgs,
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
    }

    /// Issues a serving certificate from the server CA (e.g. a kubelet's): subject `CN=<cn>`,
    /// EKU serverAuth, the given SANs only, valid one year. Returns (certificate followed by
    /// the server CA certificate, private key), both PEM.
    pub fn issue_serving_cert(
        &self,
        cn: &str,
        dns_sans: &[String],
        ip_sans: &[IpAddr],
    ) -> Result<(String, String), PkiError> {
        let cfg = PkiConfig {
            dns_sans: dns_sans.to_vec(),
            ip_sans: ip_sans.to_vec(),
        };
        let (dns, ips) = normalize_sans(&cfg)?;
        issue_leaf(
            &self.server_ca,
            cn,
            &[],
            &dns,
            &ips,
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A rustls server configuration for the API port: serving certificate chain; client
    /// certificates requested but optional, verified against the client CA when presented;
    /// ALPN `h2`, `http/1.1`; ring crypto provider.
    pub fn rustls_server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for ca in parse_certs(&self.client_ca.cert_pem).map_err(PkiError::Tls)? {
            roots
                .add(ca)
                .map_err(|e| PkiError::Tls(format!("client CA: {e}")))?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .map_err(|e| PkiError::Tls(format!("client certificate verifier: {e}")))?;
        let chain = parse_certs(&self.serving_cert_pem).map_err(PkiError::Tls)?;
        let key = parse_key(&self.serving_key_pem).map_err(PkiError::Tls)?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| PkiError::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .map_err(|e| PkiError::Tls(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// The identity in a client certificate: (first CN, every O) — Kubernetes' user name and
/// groups.
pub fn client_cert_identity(cert_der: &[u8]) -> Result<(String, Vec<String>), PkiError> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der)
        .map_err(|e| PkiError::BadCertificate(e.to_string()))?;
    identity_of(&cert)
}

fn identity_of(cert: &X509Certificate<'_>) -> Result<(String, Vec<String>), PkiError> {
    let subject = cert.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .ok_or_else(|| PkiError::BadCertificate("the subject has no common name".into()))?
        .as_str()
        .map_err(|e| PkiError::BadCertificate(format!("common name: {e}")))?
        .to_string();
    let orgs = subject
        .iter_organization()
        .map(|o| {
            o.as_str()
                .map(str::to_string)
                .map_err(|e| PkiError::BadCertificate(format!("organization: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cn, orgs))
}

pub(crate) fn parse_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = rustls_pemfile::certs(&mut pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in PEM".into());
    }
    Ok(certs)
}

fn parse_key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    rustls_pemfile::private_key(&mut pem.as_bytes())
        .map_err(|e| format!("cannot read private key PEM: {e}"))?
        .ok_or_else(|| "no private key in PEM".to_string())
}

fn paths(dir: &Path, stem: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{stem}.crt")),
        dir.join(format!("{stem}.key")),
    )
}

pub(crate) fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and minimally encoded.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn load_or_create_ca(dir: &Path, stem: &str, cn_prefix: &str) -> Result<Ca, PkiError> {
    let (crt_path, key_path) = paths(dir, stem);
    let cert = read_opt(&crt_path)?;
    let key = read_opt(&key_path)?;
    match (cert, key) {
        (Some(cert_pem), Some(key_pem)) => {
            let bad = |reason: String| PkiError::BadFile {
                path: crt_path.clone(),
                what: "CA certificate",
                reason,
            };
            let der = first_cert_der(&cert_pem).map_err(bad)?;
            let (_, x509) =
                x509_parser::parse_x509_certificate(&der).map_err(|e| bad(e.to_string()))?;
            if !x509.is_ca() {
                return Err(bad("it is not a CA certificate".into()));
            }
            let key = KeyPair::from_pem(&key_pem).map_err(|e| PkiError::BadFile {
                path: key_path.clone(),
                what: "private key",
                reason: e.to_string(),
            })?;
            if !key_matches(&key, &x509) {
                return Err(bad(format!(
                    "it does not belong to the key {}",
                    key_path.display()
                )));
            }
            enforce_mode(&key_path, 0o600)?;
            Ok(Ca { cert_pem, key_pem })
        }
        (Some(_), None) => Err(PkiError::MissingKey {
            cert: crt_path,
            key: key_path,
        }),
        (None, existing_key) => {
            let key = match existing_key {
                Some(pem) => {
                    tracing::warn!(key = %key_path.display(), "CA certificate missing; self-signing a new one with the existing key");
                    KeyPair::from_pem(&pem).map_err(|e| PkiError::BadFile {
                        path: key_path.clone(),
                        what: "private key",
                        reason: e.to_string(),
                    })?
                }
                None => KeyPair::generate().map_err(|e| PkiError::generate(stem, e))?,
            };
            let mut params = CertificateParams::default();
            let mut dn = DistinguishedName::new();
            dn.push(
                DnType::CommonName,
                format!("{cn_prefix}@{}", now().unix_timestamp()),
            );
            params.distinguished_name = dn;
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
            ];
            params.not_before = now() - Duration::minutes(BACKDATE_MINUTES);
            params.not_after = now() + Duration::days(CA_VALIDITY_DAYS);
            params.serial_number = Some(random_serial());
            let cert = params
                .self_signed(&key)
                .map_err(|e| PkiError::generate(stem, e))?;
            let key_pem = key.serialize_pem();
            let cert_pem = cert.pem();
            write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
            write_atomic(&crt_path, cert_pem.as_bytes(), 0o644)?;
            tracing::info!(cert = %crt_path.display(), "created certificate authority");
            Ok(Ca { cert_pem, key_pem })
        }
    }
}

pub(crate) fn first_cert_der(pem: &str) -> Result<Vec<u8>, String> {
    parse_certs(pem).map(|mut certs| certs.swap_remove(0).to_vec())
}

pub(crate) fn key_matches(key: &KeyPair, cert: &X509Certificate<'_>) -> bool {
    key.public_key_raw() == cert.public_key().subject_public_key.data.as_ref()
}

/// Reuses `<stem>.crt/.key` when they are still good, otherwise issues a new pair with
/// `issue` and writes it. `problem` returns why an otherwise valid certificate is unfit.
fn load_or_issue_leaf(
    dir: &Path,
    stem: &str,
    ca: &Ca,
    problem: impl Fn(&X509Certificate<'_>) -> Option<String>,
    issue: impl FnOnce() -> Result<(String, String), PkiError>,
) -> Result<(String, String), PkiError> {
    let (crt_path, key_path) = paths(dir, stem);
    let existing = match (read_opt(&crt_path)?, read_opt(&key_path)?) {
        (Some(c), Some(k)) => Some((c, k)),
        _ => None,
    };
    let reason = match &existing {
        None => Some("missing".to_string()),
        Some((cert_pem, key_pem)) => leaf_problem(cert_pem, key_pem, ca, &problem),
    };
    match (existing, reason) {
        (Some((cert_pem, key_pem)), None) => {
            enforce_mode(&key_path, 0o600)?;
            Ok((cert_pem, key_pem))
        }
        (_, reason) => {
            let reason = reason.unwrap_or_default();
            let (cert_pem, key_pem) = issue()?;
            write_atomic(&key_path, key_pem.as_bytes(), 0o600)?;
            write_atomic(&crt_path, cert_pem.as_bytes(), 0o644)?;
            tracing::info!(cert = %crt_path.display(), %reason, "issued certificate");
            Ok((cert_pem, key_pem))
        }
    }
}

fn leaf_problem(
    cert_pem: &str,
    key_pem: &str,
    ca: &Ca,
    problem: &impl Fn(&X509Certificate<'_>) -> Option<String>,
) -> Option<String> {
    let der = match first_cert_der(cert_pem) {
        Ok(d) => d,
        Err(e) => return Some(e),
    };
    let (_, cert) = match x509_parser::parse_x509_certificate(&der) {
        Ok(c) => c,
        Err(e) => return Some(format!("unreadable certificate: {e}")),
    };
    let key = match KeyPair::from_pem(key_pem) {
        Ok(k) => k,
        Err(e) => return Some(format!("unreadable key: {e}")),
    };
    if !key_matches(&key, &cert) {
        return Some("certificate does not match its key".into());
    }
    let ca_der = match first_cert_der(&ca.cert_pem) {
        Ok(d) => d,
        Err(e) => return Some(format!("unreadable CA: {e}")),
    };
    match x509_parser::parse_x509_certificate(&ca_der) {
        Ok((_, ca_cert)) if ca_cert.subject().as_raw() == cert.issuer().as_raw() => {}
        Ok(_) => return Some("issued by another CA".into()),
        Err(e) => return Some(format!("unreadable CA: {e}")),
    }
    let renew_at = (now() + Duration::days(RENEW_BEFORE_DAYS)).unix_timestamp();
    if cert.validity().not_after.timestamp() <= renew_at {
        return Some("expires within 90 days".into());
    }
    problem(&cert)
}

fn serving_cert_problem(
    cert: &X509Certificate<'_>,
    dns: &[String],
    ips: &[IpAddr],
) -> Option<String> {
    let (have_dns, have_ips) = cert_sans(cert);
    let missing: Vec<String> = dns
        .iter()
        .filter(|d| !have_dns.contains(*d))
        .cloned()
        .chain(
            ips.iter()
                .filter(|ip| !have_ips.contains(*ip))
                .map(|ip| ip.to_string()),
        )
        .collect();
    if missing.is_empty() {
        None
    } else {
        Some(format!("does not cover {}", missing.join(", ")))
    }
}

fn admin_cert_problem(cert: &X509Certificate<'_>) -> Option<String> {
    match identity_of(cert) {
        Ok((cn, orgs)) if cn == ADMIN_CN && orgs == [ADMIN_ORG] => None,
        Ok((cn, orgs)) => Some(format!("unexpected identity {cn} {orgs:?}")),
        Err(e) => Some(e.to_string()),
    }
}

/// DNS (lower-case) and IP subject alternative names of a certificate.
pub(crate) fn cert_sans(cert: &X509Certificate<'_>) -> (BTreeSet<String>, BTreeSet<IpAddr>) {
    let mut dns = BTreeSet::new();
    let mut ips = BTreeSet::new();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    dns.insert(d.to_ascii_lowercase());
                }
                GeneralName::IPAddress(bytes) => {
                    if let Ok(b) = <[u8; 4]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(b));
                    } else if let Ok(b) = <[u8; 16]>::try_from(*bytes) {
                        ips.insert(IpAddr::from(b));
                    }
                }
                _ => {}
            }
        }
    }
    (dns, ips)
}

/// The serving certificate's SANs: the defaults plus the configured ones, deduplicated.
fn wanted_sans(cfg: &PkiConfig) -> Result<(Vec<String>, Vec<IpAddr>), PkiError> {
    let mut all = PkiConfig {
        dns_sans: DEFAULT_DNS_SANS.iter().map(|s| s.to_string()).collect(),
        ip_sans: DEFAULT_IP_SANS.to_vec(),
    };
    all.dns_sans.extend(cfg.dns_sans.iter().cloned());
    all.ip_sans.extend(cfg.ip_sans.iter().copied());
    normalize_sans(&all)
}

/// Lower-cases and deduplicates DNS names (keeping order), moves IP literals to the IP list,
/// and rejects names that cannot be encoded.
pub(crate) fn normalize_sans(cfg: &PkiConfig) -> Result<(Vec<String>, Vec<IpAddr>), PkiError> {
    let mut dns: Vec<String> = Vec::new();
    let mut ips: Vec<IpAddr> = Vec::new();
    let push_ip = |ip: IpAddr, ips: &mut Vec<IpAddr>| {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    };
    for ip in &cfg.ip_sans {
        push_ip(*ip, &mut ips);
    }
    for raw in &cfg.dns_sans {
        let name = raw.trim();
        if name.is_empty() {
            continue;
        }
        let unbracketed = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            push_ip(ip, &mut ips);
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let valid = lower.len() <= 253
            && lower.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '*')
            });
        if !valid {
            return Err(PkiError::InvalidSan {
                name: raw.clone(),
                reason: "not a valid DNS name".into(),
            });
        }
        if !dns.contains(&lower) {
            dns.push(lower);
        }
    }
    Ok((dns, ips))
}

/// Issues a leaf certificate signed by `ca` with a fresh key. Returns (leaf + CA PEM, key PEM).
fn issue_leaf(
    ca: &Ca,
    cn: &str,
    orgs: &[&str],
    dns: &[String],
    ips: &[IpAddr],
    eku: ExtendedKeyUsagePurpose,
) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate().map_err(|e| PkiError::generate(cn, e))?;
    let chain = sign_leaf(ca, &key, cn, orgs, dns, ips, eku)?;
    Ok((chain, key.serialize_pem()))
}

/// Signs a leaf certificate for `public_key` with `ca`: subject `O=<orgs>…, CN=<cn>`, the given
/// SANs and EKU, valid one year. Returns the leaf followed by the CA certificate, PEM.
pub(crate) fn sign_leaf(
    ca: &Ca,
    public_key: &impl rcgen::PublicKeyData,
    cn: &str,
    orgs: &[&str],
    dns: &[String],
    ips: &[IpAddr],
    eku: ExtendedKeyUsagePurpose,
) -> Result<String, PkiError> {
    if cn.is_empty() {
        return Err(PkiError::generate(
            "with an empty common name",
            "the common name is required",
        ));
    }
    let issuer = ca.issuer()?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now() - Duration::minutes(BACKDATE_MINUTES);
    params.not_after = now() + Duration::days(LEAF_VALIDITY_DAYS);
    params.serial_number = Some(random_serial());
    for name in dns {
        let ia5 = name
            .as_str()
            .try_into()
            .map_err(|e: rcgen::Error| PkiError::InvalidSan {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        params.subject_alt_names.push(SanType::DnsName(ia5));
    }
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(*ip));
    }
    let cert = params
        .signed_by(public_key, &issuer)
        .map_err(|e| PkiError::generate(cn, e))?;
    let cert_der = if orgs.is_empty() {
        cert.der().to_vec()
    } else {
        // rcgen holds one value per attribute type; write the subject with every group.
        der::replace_subject(cert.der(), &der::encode_name(cn, orgs), issuer.key())?
    };
    let mut chain = der::pem_encode("CERTIFICATE", &cert_der);
    chain.push_str(&ca.cert_pem);
    if !chain.ends_with('\n') {
        chain.push('\n');
    }
    Ok(chain)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_first(pem: &str) -> Vec<u8> {
        first_cert_der(pem).unwrap()
    }

    #[test]
    fn sans_are_normalized() {
        let cfg = PkiConfig {
            dns_sans: vec![
                "Node-1".into(),
                "node-1".into(),
                "192.168.1.5".into(),
                "[fd00::1]".into(),
                " ".into(),
            ],
            ip_sans: vec!["127.0.0.1".parse().unwrap()],
        };
        let (dns, ips) = wanted_sans(&cfg).unwrap();
        assert_eq!(dns.iter().filter(|d| *d == "node-1").count(), 1);
        assert!(dns.contains(&"kubernetes.default.svc.cluster.local".to_string()));
        assert!(ips.contains(&"192.168.1.5".parse().unwrap()));
        assert!(ips.contains(&"fd00::1".parse().unwrap()));
        assert!(ips.contains(&"10.43.0.1".parse().unwrap()));
        assert_eq!(
            ips.iter()
                .filter(|i| i.is_loopback() && i.is_ipv4())
                .count(),
            1
        );
        let bad = PkiConfig {
            dns_sans: vec!["bad name".into()],
            ip_sans: vec![],
        };
        assert!(matches!(
            wanted_sans(&bad),
            Err(PkiError::InvalidSan { .. })
        ));
    }

    #[test]
    fn multi_org_client_cert_verifies_against_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = load_or_create_ca(dir.path(), "client-ca", "test-ca").unwrap();
        let (cert_pem, key_pem) = issue_leaf(
            &ca,
            "alice",
            &["devs", "ops", "system:authenticated"],
            &[],
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )
        .unwrap();
        let der = parse_first(&cert_pem);
        let (cn, orgs) = client_cert_identity(&der).unwrap();
        assert_eq!(cn, "alice");
        assert_eq!(orgs, ["devs", "ops", "system:authenticated"]);
        // The re-signed certificate must verify with webpki against the CA.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(parse_first(&ca.cert_pem)))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_client_cert(&CertificateDer::from(der.clone()), &[], now)
            .unwrap();
        // Key belongs to the certificate.
        let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
        assert!(key_matches(&KeyPair::from_pem(&key_pem).unwrap(), &x509));
        // Tampering with the subject breaks the signature.
        let mut tampered = der.clone();
        let pos = tampered.windows(4).position(|w| w == b"devs").unwrap();
        tampered[pos] = b'x';
        assert!(verifier
            .verify_client_cert(&CertificateDer::from(tampered), &[], now)
            .is_err());
    }

    #[test]
    fn ca_cert_without_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_ca(dir.path(), "server-ca", "x").unwrap();
        std::fs::remove_file(dir.path().join("server-ca.key")).unwrap();
        assert!(matches!(
            load_or_create_ca(dir.path(), "server-ca", "x"),
            Err(PkiError::MissingKey { .. })
        ));
    }
}
