//! Signing `certificates.k8s.io` CertificateSigningRequests as kube-controller-manager's
//! signers do: the subject and subject alternative names come from the request, the usages
//! from the CSR object (checked per signer with upstream's rules and messages), the duration is
//! the requested one capped at one year; `kubernetes.io/kube-apiserver-client` signs with the
//! client CA, `kubernetes.io/kubelet-serving` with the server CA.

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};
use time::Duration;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509CertificationRequest};

use crate::certs::{now, random_serial};
use crate::{der, Pki, PkiError};

/// The signer of the API server's client certificates.
pub const KUBE_APISERVER_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The signer of kubelet serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
/// The longest certificate a signer issues (kube-controller-manager's
/// `--cluster-signing-duration` default).
pub const MAX_SIGNED_SECONDS: i64 = 365 * 24 * 3600;

/// What a certificate request asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestedSubject {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub ip_addresses: Vec<IpAddr>,
    pub emails: Vec<String>,
    pub uris: Vec<String>,
}

fn der_of(pem_or_der: &[u8]) -> Result<Vec<u8>, PkiError> {
    let trimmed = pem_or_der.trim_ascii_start();
    if !trimmed.starts_with(b"-----BEGIN") {
        return Ok(pem_or_der.to_vec());
    }
    let mut rd = trimmed;
    match rustls_pemfile::read_one(&mut rd) {
        Ok(Some(rustls_pemfile::Item::Csr(der))) => Ok(der.to_vec()),
        Ok(_) => Err(PkiError::BadCsr(
            "PEM block type must be CERTIFICATE REQUEST".into(),
        )),
        Err(e) => Err(PkiError::BadCsr(format!("unreadable PEM: {e}"))),
    }
}

/// Reads the subject and SANs of a PEM (or DER) PKCS#10 request and checks its signature.
pub fn requested_subject(csr: &[u8]) -> Result<RequestedSubject, PkiError> {
    let der = der_of(csr)?;
    let (_, req) = X509CertificationRequest::from_der(&der)
        .map_err(|e| PkiError::BadCsr(format!("cannot parse the request: {e}")))?;
    // rcgen's parser checks the self-signature (proof of the private key).
    crate::parse_csr(&der)?;
    let info = &req.certification_request_info;
    let text = |a: &x509_parser::x509::AttributeTypeAndValue| a.as_str().unwrap_or("").to_string();
    let mut out = RequestedSubject {
        common_name: info
            .subject
            .iter_common_name()
            .next()
            .map(text)
            .unwrap_or_default(),
        organizations: info.subject.iter_organization().map(text).collect(),
        ..Default::default()
    };
    if let Some(exts) = req.requested_extensions() {
        for ext in exts {
            if let ParsedExtension::SubjectAlternativeName(san) = ext {
                for name in &san.general_names {
                    match name {
                        GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                        GeneralName::RFC822Name(e) => out.emails.push(e.to_string()),
                        GeneralName::URI(u) => out.uris.push(u.to_string()),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => out
                                .ip_addresses
                                .push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                            16 => out
                                .ip_addresses
                                .push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                            _ => {}
                        },
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Upstream's check of a `kubernetes.io/kube-apiserver-client` request's usages: digital
/// signature and key encipherment are optional, client auth is required, nothing else.
pub fn check_client_usages(usages: &[&str]) -> Result<(), String> {
    let mut client_auth = false;
    for u in usages {
        match *u {
            "digital signature" | "key encipherment" => {}
            "client auth" => client_auth = true,
            other => return Err(format!("invalid usage for client certificate: {other}")),
        }
    }
    if !client_auth {
        return Err("missing required usage for client certificate: client auth".into());
    }
    Ok(())
}

/// Upstream's `ValidateKubeletServingCSR`: organization exactly `system:nodes`, a DNS or IP
/// SAN, no email or URI SANs, usages {digital signature, [key encipherment,] server auth},
/// common name `system:node:…`.
pub fn check_kubelet_serving(req: &RequestedSubject, usages: &[&str]) -> Result<(), String> {
    if req.organizations != ["system:nodes"] {
        return Err("subject organization is not system:nodes".into());
    }
    if req.dns_names.is_empty() && req.ip_addresses.is_empty() {
        return Err("DNS or IP subjectAltName is required".into());
    }
    if !req.emails.is_empty() {
        return Err("Email subjectAltNames are not allowed".into());
    }
    if !req.uris.is_empty() {
        return Err("URI subjectAltNames are not allowed".into());
    }
    let mut set: Vec<&str> = usages.to_vec();
    set.sort_unstable();
    set.dedup();
    let full = ["digital signature", "key encipherment", "server auth"];
    let no_rsa = ["digital signature", "server auth"];
    if set != full && set != no_rsa {
        return Err("usages did not match [digital signature key encipherment server auth]".into());
    }
    if !req.common_name.starts_with("system:node:") {
        return Err("subject common name does not begin with system:node:".into());
    }
    Ok(())
}

impl Pki {
    /// Signs an approved request for `signer` (one of the two built-in signers) with the
    /// request's subject and SANs, the given usages and `seconds` of validity (capped at one
    /// year, backdated five minutes). Returns the leaf certificate PEM.
    pub fn sign_requested(
        &self,
        csr: &[u8],
        signer: &str,
        usages: &[&str],
        seconds: Option<i64>,
    ) -> Result<String, PkiError> {
        let req = requested_subject(csr)?;
        let ca = match signer {
            KUBE_APISERVER_CLIENT_SIGNER => self.client_ca(),
            KUBELET_SERVING_SIGNER => self.server_ca(),
            other => {
                return Err(PkiError::BadCsr(format!(
                    "signer {other} is not served by skiff: use {KUBE_APISERVER_CLIENT_SIGNER} or {KUBELET_SERVING_SIGNER}"
                )))
            }
        };
        let parsed = crate::parse_csr(csr)?;
        let issuer = ca.issuer()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, req.common_name.as_str());
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = Vec::new();
        params.extended_key_usages = Vec::new();
        for u in usages {
            match *u {
                "digital signature" => params.key_usages.push(KeyUsagePurpose::DigitalSignature),
                "key encipherment" => params.key_usages.push(KeyUsagePurpose::KeyEncipherment),
                "client auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ClientAuth),
                "server auth" => params
                    .extended_key_usages
                    .push(ExtendedKeyUsagePurpose::ServerAuth),
                _ => {}
            }
        }
        params.use_authority_key_identifier_extension = true;
        let secs = seconds
            .unwrap_or(MAX_SIGNED_SECONDS)
            .clamp(600, MAX_SIGNED_SECONDS);
        params.not_before = now() - Duration::minutes(5);
        params.not_after = now() + Duration::seconds(secs);
        params.serial_number = Some(random_serial());
        for name in &req.dns_names {
            let ia5 = name
                .as_str()
                .try_into()
                .map_err(|e: rcgen::Error| PkiError::InvalidSan {
                    name: name.clone(),
                    reason: e.to_string(),
                })?;
            params.subject_alt_names.push(SanType::DnsName(ia5));
        }
        for ip in &req.ip_addresses {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let cert = params
            .signed_by(&parsed.public_key, &issuer)
            .map_err(|e| PkiError::generate(req.common_name.clone(), e))?;
        let cert_der = if req.organizations.is_empty() {
            cert.der().to_vec()
        } else {
            // rcgen holds one value per attribute type; write the subject with every group.
            let orgs: Vec<&str> = req.organizations.iter().map(String::as_str).collect();
            der::replace_subject(
                cert.der(),
                &der::encode_name(&req.common_name, &orgs),
                issuer.key(),
            )?
        };
        Ok(der::pem_encode("CERTIFICATE", &cert_der))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::KeyPair;

    fn request(cn: &str, orgs: &[&str], dns: &[&str]) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>()).unwrap();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, cn);
        for o in orgs {
            dn.push(DnType::OrganizationName, *o);
        }
        params.distinguished_name = dn;
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn usages_checked_as_upstream() {
        assert!(check_client_usages(&["digital signature", "client auth"]).is_ok());
        assert_eq!(
            check_client_usages(&["digital signature"]).unwrap_err(),
            "missing required usage for client certificate: client auth"
        );
        assert_eq!(
            check_client_usages(&["client auth", "server auth"]).unwrap_err(),
            "invalid usage for client certificate: server auth"
        );
        let node = RequestedSubject {
            common_name: "system:node:n1".into(),
            organizations: vec!["system:nodes".into()],
            dns_names: vec!["n1".into()],
            ..Default::default()
        };
        assert!(check_kubelet_serving(&node, &["digital signature", "server auth"]).is_ok());
        assert!(check_kubelet_serving(
            &node,
            &["key encipherment", "digital signature", "server auth"]
        )
        .is_ok());
        assert_eq!(
            check_kubelet_serving(&node, &["client auth"]).unwrap_err(),
            "usages did not match [digital signature key encipherment server auth]"
        );
        let no_san = RequestedSubject {
            dns_names: vec![],
            ..node.clone()
        };
        assert_eq!(
            check_kubelet_serving(&no_san, &["digital signature", "server auth"]).unwrap_err(),
            "DNS or IP subjectAltName is required"
        );
        let other_org = RequestedSubject {
            organizations: vec!["dev".into()],
            ..node
        };
        assert_eq!(
            check_kubelet_serving(&other_org, &["digital signature", "server auth"]).unwrap_err(),
            "subject organization is not system:nodes"
        );
    }

    #[test]
    fn signs_the_requested_subject_with_the_client_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pki = crate::load_or_create(dir.path(), &crate::PkiConfig::default()).unwrap();
        // rcgen writes one organization per request (openssl can write several).
        let pem = request("alice", &["dev"], &[]);
        let req = requested_subject(pem.as_bytes()).unwrap();
        assert_eq!(req.common_name, "alice");
        assert_eq!(req.organizations, vec!["dev"]);
        let cert = pki
            .sign_requested(
                pem.as_bytes(),
                KUBE_APISERVER_CLIENT_SIGNER,
                &["digital signature", "client auth"],
                Some(3600),
            )
            .unwrap();
        let der = crate::certs::first_cert_der(&cert).unwrap();
        let (cn, groups) = crate::client_cert_identity(&der).unwrap();
        assert_eq!(cn, "alice");
        assert_eq!(groups, vec!["dev"]);
        let (nb, na) = crate::cert_validity(&cert).unwrap();
        assert!((na - nb - 3600 - 300).abs() <= 2, "{}", na - nb);
        assert!(pki
            .sign_requested(pem.as_bytes(), "example.com/other", &["client auth"], None)
            .is_err());
        assert!(requested_subject(
            b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"
        )
        .is_err());
    }
}
