//! The one error type of skiff-pki.

use std::path::PathBuf;

/// Everything that can go wrong while creating, loading or using skiff's PKI material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file or directory operation failed.
    #[error(
        "cannot {action} {path}: {source}; check that the path exists and skiff may write to it"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file on disk exists but cannot be used.
    #[error("{path} is not a usable {what}: {reason}; repair it or move it away so skiff creates a new one")]
    BadFile {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// A private key is missing while the certificate it belongs to is present.
    #[error("{cert} exists but its key {key} is missing; restore the key or remove both files to create a new pair")]
    MissingKey { cert: PathBuf, key: PathBuf },
    /// A requested subject alternative name cannot go into a certificate.
    #[error(
        "invalid subject alternative name {name:?}: {reason}; pass a DNS name or an IP address"
    )]
    InvalidSan { name: String, reason: String },
    /// Building or signing a certificate failed.
    #[error("cannot create certificate {what}: {reason}; check the CA files in the tls directory")]
    Generate { what: String, reason: String },
    /// The rustls server configuration could not be built.
    #[error("cannot build the TLS server configuration: {0}; check the serving certificate and client CA files")]
    Tls(String),
    /// A presented client certificate could not be read.
    #[error(
        "invalid client certificate: {0}; present an X.509 certificate issued by the client CA"
    )]
    BadCertificate(String),
    /// A node's certificate signing request cannot be used.
    #[error("invalid certificate signing request: {0}; send a PEM or DER PKCS#10 request signed with the node's own key")]
    BadCsr(String),
    /// A join token (or its password) is malformed.
    #[error("invalid token: {0}; use the value of <data>/server/token or a plain password")]
    InvalidToken(String),
    /// A full K10 token names a CA other than this server's.
    #[error("token CA hash {given} does not match this server's CA hash {actual}; use the token from <data>/server/token of this server or pass only the password")]
    TokenCaMismatch { given: String, actual: String },
    /// A kubeconfig could not be rendered.
    #[error("cannot render kubeconfig: {0}; report this as a skiff bug")]
    Render(String),
    /// Service account token claims cannot be signed.
    #[error("cannot sign service account token: {0}; pass the claims as a JSON object")]
    Claims(String),
    /// A service account token failed verification.
    #[error("service account token rejected: {0}; request a new token")]
    TokenRejected(String),
}

impl PkiError {
    pub(crate) fn io(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        PkiError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn generate(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        PkiError::Generate {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
