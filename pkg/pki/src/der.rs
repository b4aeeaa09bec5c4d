//! Minimal DER and PEM plumbing: builds a subject name with several O attributes (rcgen
//! keeps one value per attribute type, Kubernetes groups need many) and re-signs a
//! certificate whose subject was replaced.

use base64::Engine;
use rcgen::SigningKey;

use crate::PkiError;

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_BIT_STRING: u8 = 0x03;
/// DER of the OID 2.5.4.3 (commonName).
const OID_COMMON_NAME: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x03];
/// DER of the OID 2.5.4.10 (organizationName).
const OID_ORGANIZATION: [u8; 5] = [0x06, 0x03, 0x55, 0x04, 0x0a];

/// One parsed tag-length-value element.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

/// Reads one DER element (single-byte tags, definite lengths) from the front of `buf`.
fn read_tlv(buf: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let tag = *buf.first()?;
    let first_len = *buf.get(1)?;
    let (len, header) = if first_len < 0x80 {
        (usize::from(first_len), 2usize)
    } else {
        let n = usize::from(first_len & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for b in buf.get(2..2 + n)? {
            len = (len << 8) | usize::from(*b);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let whole = buf.get(..end)?;
    let content = whole.get(header..)?;
    Some((
        Tlv {
            tag,
            content,
            whole,
        },
        buf.get(end..)?,
    ))
}

/// Encodes one DER element.
fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 6);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn attribute(oid: &[u8], value: &str) -> Vec<u8> {
    let mut atv = oid.to_vec();
    atv.extend(tlv(TAG_UTF8_STRING, value.as_bytes()));
    tlv(TAG_SET, &tlv(TAG_SEQUENCE, &atv))
}

/// The DER `Name` with one RDN per organization followed by the common name, in the order
/// Go's crypto/x509 writes them (so `openssl x509 -subject` reads `O = …, CN = …`).
pub(crate) fn encode_name(cn: &str, orgs: &[&str]) -> Vec<u8> {
    let mut rdns = Vec::new();
    for org in orgs {
        rdns.extend(attribute(&OID_ORGANIZATION, org));
    }
    rdns.extend(attribute(&OID_COMMON_NAME, cn));
    tlv(TAG_SEQUENCE, &rdns)
}

/// Replaces the subject of `cert_der` with `subject_der` and signs the new
/// to-be-signed part again with `issuer_key` (the key that signed the original).
pub(crate) fn replace_subject(
    cert_der: &[u8],
    subject_der: &[u8],
    issuer_key: &impl SigningKey,
) -> Result<Vec<u8>, PkiError> {
    let malformed = || PkiError::generate("with custom subject", "unexpected certificate layout");
    let (cert, _) = read_tlv(cert_der).ok_or_else(malformed)?;
    let (tbs, after_tbs) = read_tlv(cert.content).ok_or_else(malformed)?;
    let (sig_alg, _) = read_tlv(after_tbs).ok_or_else(malformed)?;
    if cert.tag != TAG_SEQUENCE || tbs.tag != TAG_SEQUENCE || sig_alg.tag != TAG_SEQUENCE {
        return Err(malformed());
    }
    // TBSCertificate: [0] version, serial, signature, issuer, validity, subject, ...
    let mut rest = tbs.content;
    let mut new_tbs = Vec::with_capacity(tbs.content.len() + subject_der.len());
    let (first, _) = read_tlv(rest).ok_or_else(malformed)?;
    if first.tag != 0xa0 {
        return Err(malformed());
    }
    for _ in 0..5 {
        let (item, next) = read_tlv(rest).ok_or_else(malformed)?;
        new_tbs.extend_from_slice(item.whole);
        rest = next;
    }
    let (old_subject, after_subject) = read_tlv(rest).ok_or_else(malformed)?;
    if old_subject.tag != TAG_SEQUENCE {
        return Err(malformed());
    }
    new_tbs.extend_from_slice(subject_der);
    new_tbs.extend_from_slice(after_subject);
    let new_tbs = tlv(TAG_SEQUENCE, &new_tbs);
    let signature = issuer_key
        .sign(&new_tbs)
        .map_err(|e| PkiError::generate("with custom subject", e))?;
    let mut bits = vec![0u8];
    bits.extend(signature);
    let mut body = new_tbs;
    body.extend_from_slice(sig_alg.whole);
    body.extend(tlv(TAG_BIT_STRING, &bits));
    Ok(tlv(TAG_SEQUENCE, &body))
}

/// PEM-encodes `der` with the given label (64-column base64, trailing newline).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_roundtrip_short_and_long_lengths() {
        for len in [0usize, 5, 127, 128, 255, 256, 70_000] {
            let content = vec![7u8; len];
            let enc = tlv(TAG_SEQUENCE, &content);
            let (t, rest) = read_tlv(&enc).unwrap();
            assert_eq!(t.tag, TAG_SEQUENCE);
            assert_eq!(t.content.len(), len);
            assert_eq!(t.whole.len(), enc.len());
            assert!(rest.is_empty());
        }
        assert!(read_tlv(&[0x30, 0x05, 1, 2]).is_none());
        assert!(read_tlv(&[0x30, 0x80]).is_none());
    }

    #[test]
    fn name_parses_with_x509_parser() {
        let der = encode_name("alice", &["devs", "ops"]);
        use x509_parser::prelude::FromDer;
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        let cn: Vec<_> = name
            .iter_common_name()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        let o: Vec<_> = name
            .iter_organization()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        assert_eq!(cn, ["alice"]);
        assert_eq!(o, ["devs", "ops"]);
    }

    #[test]
    fn pem_has_64_column_lines() {
        let pem = pem_encode("CERTIFICATE", &[1u8; 100]);
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----\n"));
        assert!(pem.ends_with("-----END CERTIFICATE-----\n"));
        assert!(pem.lines().all(|l| l.len() <= 64));
    }
}
