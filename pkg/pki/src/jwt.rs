//! Service account tokens: an ECDSA P-256 signing key kept in `service.key`/`service.pub`
//! and compact JWS (ES256) signing and verification with the Kubernetes key id.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{KeyPair, PublicKeyData};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::certs::Pki;
use crate::fsutil::{enforce_mode, read_opt, write_atomic};
use crate::PkiError;

/// The issuer of service account tokens (`--service-account-issuer` default of k3s).
pub const SERVICE_ACCOUNT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const ALG: &str = "ES256";
/// Allowed clock difference for `nbf`.
const NBF_LEEWAY_SECS: i64 = 60;

/// The service account signing key.
pub(crate) struct ServiceAccountKey {
    signing: EcdsaKeyPair,
    public_pem: String,
    pub(crate) kid: String,
}

pub(crate) fn load_or_create_service_key(dir: &Path) -> Result<ServiceAccountKey, PkiError> {
    let key_path = dir.join("service.key");
    let pub_path = dir.join("service.pub");
    let key = match read_opt(&key_path)? {
        Some(pem) => {
            enforce_mode(&key_path, 0o600)?;
            KeyPair::from_pem(&pem).map_err(|e| PkiError::BadFile {
                path: key_path.clone(),
                what: "service account key",
                reason: e.to_string(),
            })?
        }
        None => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
                .map_err(|e| PkiError::generate("service account key", e))?;
            write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
            tracing::info!(key = %key_path.display(), "created service account signing key");
            key
        }
    };
    let signing = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        key.serialized_der(),
        &SystemRandom::new(),
    )
    .map_err(|e| PkiError::BadFile {
        path: key_path.clone(),
        what: "service account key",
        reason: format!("an ECDSA P-256 PKCS#8 key is required ({e})"),
    })?;
    let public_pem = key.public_key_pem();
    if read_opt(&pub_path)?.as_deref() != Some(public_pem.as_str()) {
        write_atomic(&pub_path, public_pem.as_bytes(), 0o644)?;
    }
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(key.subject_public_key_info()));
    Ok(ServiceAccountKey {
        signing,
        public_pem,
        kid,
    })
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Pki {
    /// The service account public key (SPKI PEM, content of `service.pub`).
    pub fn service_account_public_pem(&self) -> &str {
        &self.sa.public_pem
    }

    /// The key id put in token headers: base64url(sha256(SPKI DER)), as Kubernetes computes it.
    pub fn service_account_key_id(&self) -> &str {
        &self.sa.kid
    }

    /// Signs `claims` (a JSON object) as an ES256 compact JWS with header
    /// `{"alg":"ES256","kid":…}`. An absent `iss` is set to [`SERVICE_ACCOUNT_ISSUER`];
    /// every other claim is taken as given.
    pub fn sign_service_account_token(&self, claims: &Value) -> Result<String, PkiError> {
        let mut claims = claims.clone();
        let obj = claims
            .as_object_mut()
            .ok_or_else(|| PkiError::Claims("claims are not a JSON object".into()))?;
        obj.entry("iss")
            .or_insert_with(|| Value::String(SERVICE_ACCOUNT_ISSUER.into()));
        let header = json!({"alg": ALG, "kid": self.sa.kid});
        let header = serde_json::to_vec(&header).map_err(|e| PkiError::Claims(e.to_string()))?;
        let body = serde_json::to_vec(&claims).map_err(|e| PkiError::Claims(e.to_string()))?;
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(body)
        );
        let sig = self
            .sa
            .signing
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| PkiError::Claims("the signing key failed".into()))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(sig.as_ref())
        ))
    }

    /// Verifies a token signed by [`Pki::sign_service_account_token`]: alg ES256, kid (when
    /// present) equal to ours, the signature, `iss` equal to [`SERVICE_ACCOUNT_ISSUER`],
    /// `exp` in the future and `nbf` not in the future (when present). Returns the claims.
    pub fn verify_service_account_token(&self, token: &str) -> Result<Value, PkiError> {
        let reject = |m: &str| PkiError::TokenRejected(m.to_string());
        let mut parts = token.trim().split('.');
        let (Some(h64), Some(c64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(reject("not a compact JWS with three parts"));
        };
        let header: Value = URL_SAFE_NO_PAD
            .decode(h64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| reject("malformed header"))?;
        if header.get("alg").and_then(Value::as_str) != Some(ALG) {
            return Err(reject("unsupported alg, ES256 expected"));
        }
        if let Some(kid) = header.get("kid") {
            if kid.as_str() != Some(self.sa.kid.as_str()) {
                return Err(reject("unknown key id"));
            }
        }
        let sig = URL_SAFE_NO_PAD
            .decode(s64)
            .map_err(|_| reject("malformed signature"))?;
        let signing_input_len = h64.len() + 1 + c64.len();
        let signing_input = token
            .trim()
            .get(..signing_input_len)
            .ok_or_else(|| reject("malformed token"))?;
        UnparsedPublicKey::new(
            &ECDSA_P256_SHA256_FIXED,
            self.sa.signing.public_key().as_ref(),
        )
        .verify(signing_input.as_bytes(), &sig)
        .map_err(|_| reject("bad signature"))?;
        let claims: Value = URL_SAFE_NO_PAD
            .decode(c64)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| reject("malformed claims"))?;
        if !claims.is_object() {
            return Err(reject("claims are not an object"));
        }
        if claims.get("iss").and_then(Value::as_str) != Some(SERVICE_ACCOUNT_ISSUER) {
            return Err(reject("wrong issuer"));
        }
        let now = unix_now();
        if let Some(exp) = claims.get("exp") {
            let exp = exp.as_i64().ok_or_else(|| reject("exp is not a number"))?;
            if exp <= now {
                return Err(reject("token expired"));
            }
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_i64().ok_or_else(|| reject("nbf is not a number"))?;
            if nbf > now + NBF_LEEWAY_SECS {
                return Err(reject("token not valid yet"));
            }
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load_or_create, PkiConfig};

    fn pki() -> (tempfile::TempDir, Pki) {
        let dir = tempfile::tempdir().unwrap();
        let pki = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        (dir, pki)
    }

    #[test]
    fn sign_verify_roundtrip_and_header() {
        let (_d, pki) = pki();
        let claims = json!({"sub": "system:serviceaccount:default:default", "exp": unix_now() + 3600,
            "kubernetes.io": {"namespace": "default"}});
        let token = pki.sign_service_account_token(&claims).unwrap();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["kid"], pki.service_account_key_id());
        let got = pki.verify_service_account_token(&token).unwrap();
        assert_eq!(got["sub"], "system:serviceaccount:default:default");
        assert_eq!(got["iss"], SERVICE_ACCOUNT_ISSUER);
        assert_eq!(got["kubernetes.io"]["namespace"], "default");
    }

    #[test]
    fn tampered_expired_and_foreign_tokens_are_rejected() {
        let (_d, pki) = pki();
        let token = pki
            .sign_service_account_token(&json!({"sub": "a", "exp": unix_now() + 60}))
            .unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        // Change the claims but keep the signature.
        let forged_claims = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&json!({"sub": "admin", "iss": SERVICE_ACCOUNT_ISSUER})).unwrap(),
        );
        let forged = format!("{}.{}.{}", parts[0], forged_claims, parts[2]);
        assert!(matches!(
            pki.verify_service_account_token(&forged),
            Err(PkiError::TokenRejected(_))
        ));
        // Flip a signature byte.
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[5] ^= 1;
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(sig));
        assert!(pki.verify_service_account_token(&bad_sig).is_err());
        // alg none.
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        assert!(pki
            .verify_service_account_token(&format!("{none_header}.{}.", parts[1]))
            .is_err());
        // Expired.
        let expired = pki
            .sign_service_account_token(&json!({"sub": "a", "exp": unix_now() - 1}))
            .unwrap();
        assert!(pki.verify_service_account_token(&expired).is_err());
        // Wrong issuer.
        let other_iss = pki
            .sign_service_account_token(&json!({"sub": "a", "iss": "someone-else"}))
            .unwrap();
        assert!(pki.verify_service_account_token(&other_iss).is_err());
        // Signed by another server's key.
        let (_d2, other) = super::tests::pki();
        let foreign = other
            .sign_service_account_token(&json!({"sub": "a"}))
            .unwrap();
        assert!(pki.verify_service_account_token(&foreign).is_err());
        // Garbage.
        assert!(pki.verify_service_account_token("a.b").is_err());
        assert!(pki
            .sign_service_account_token(&json!("not an object"))
            .is_err());
    }

    #[test]
    fn key_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        let token = a.sign_service_account_token(&json!({"sub": "x"})).unwrap();
        let b = load_or_create(dir.path(), &PkiConfig::default()).unwrap();
        assert_eq!(a.service_account_key_id(), b.service_account_key_id());
        assert_eq!(b.verify_service_account_token(&token).unwrap()["sub"], "x");
        let pub_pem = std::fs::read_to_string(dir.path().join("service.pub")).unwrap();
        assert_eq!(pub_pem, b.service_account_public_pem());
        assert!(pub_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
    }
}
