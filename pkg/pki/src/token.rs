//! The node join token in k3s form: `K10<sha256 of the CA bundle>::<user>:<password>`,
//! kept in `<server>/token` with `node-token` as an alias.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::fsutil::{ensure_dir, read_opt, write_atomic};
use crate::PkiError;

const PREFIX: &str = "K10";
const DEFAULT_USER: &str = "server";

/// A parsed join token.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedToken {
    /// The pinned CA hash (lower-case hex); `None` for a bare password.
    pub ca_hash: Option<String>,
    pub username: String,
    pub password: String,
}

impl ParsedToken {
    /// The token in its full `K10<hash>::<user>:<password>` form (`K10<hash>::<id>.<secret>`
    /// for a bootstrap token), or the bare password when there is no CA hash.
    pub fn to_token_string(&self) -> String {
        match &self.ca_hash {
            Some(hash) if self.username.is_empty() => format!("{PREFIX}{hash}::{}", self.password),
            Some(hash) => format!("{PREFIX}{hash}::{}:{}", self.username, self.password),
            None => self.password.clone(),
        }
    }

    /// The `(id, secret)` of a bootstrap token (`<id>.<secret>` as the password).
    pub fn bootstrap(&self) -> Option<(&str, &str)> {
        parse_bootstrap_token(&self.password)
    }
}

/// Splits a bootstrap token `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`, the format kubeadm
/// and k3s use) into its id and secret; `None` for anything else.
pub fn parse_bootstrap_token(s: &str) -> Option<(&str, &str)> {
    let (id, secret) = s.split_once('.')?;
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// A new random bootstrap token `<id>.<secret>`.
pub fn generate_bootstrap_token() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect()
    };
    let id = pick(6);
    format!("{id}.{}", pick(16))
}

/// SHA-256 (lower-case hex) of the exact CA bundle bytes.
pub fn ca_hash(ca_bundle_pem: &str) -> String {
    hex::encode(Sha256::digest(ca_bundle_pem.as_bytes()))
}

/// Parses `K10<hash>::<user>:<password>` or a bare password (then `ca_hash` is `None`
/// and the user is `server`). Surrounding whitespace is ignored.
pub fn parse_token(s: &str) -> Result<ParsedToken, PkiError> {
    let s = s.trim();
    if s.is_empty() {
        return Err(PkiError::InvalidToken("the token is empty".into()));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(PkiError::InvalidToken(
            "the token contains whitespace".into(),
        ));
    }
    let Some(rest) = s.strip_prefix(PREFIX).filter(|r| r.contains("::")) else {
        return Ok(ParsedToken {
            ca_hash: None,
            username: DEFAULT_USER.into(),
            password: s.to_string(),
        });
    };
    let (hash, creds) = rest
        .split_once("::")
        .ok_or_else(|| PkiError::InvalidToken("missing '::' after the CA hash".into()))?;
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(PkiError::InvalidToken(
            "the CA hash after K10 must be 64 hex digits".into(),
        ));
    }
    if !creds.contains(':') && parse_bootstrap_token(creds).is_some() {
        // A bootstrap token (`skiff token create`): no user, the whole of it is the credential.
        return Ok(ParsedToken {
            ca_hash: Some(hash.to_ascii_lowercase()),
            username: String::new(),
            password: creds.to_string(),
        });
    }
    let (username, password) = creds.split_once(':').ok_or_else(|| {
        PkiError::InvalidToken(
            "expected <user>:<password> or a bootstrap token <id>.<secret> after '::'".into(),
        )
    })?;
    if username.is_empty() || password.is_empty() {
        return Err(PkiError::InvalidToken(
            "the user and password must not be empty".into(),
        ));
    }
    Ok(ParsedToken {
        ca_hash: Some(hash.to_ascii_lowercase()),
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// Loads or creates the server token in `<server_dir>/token` (0600) and points
/// `<server_dir>/node-token` at it. `given` (from `--token`) wins over the file: a full K10
/// token must carry this CA's hash; a bare password is wrapped as
/// `K10<hash>::server:<password>`. Without `given`, the file is reused (its hash refreshed if
/// the CA changed), or a new token with 32 random hex digits is created.
pub fn load_or_create_token(
    server_dir: &Path,
    ca_bundle_pem: &str,
    given: Option<&str>,
) -> Result<String, PkiError> {
    ensure_dir(server_dir)?;
    let hash = ca_hash(ca_bundle_pem);
    let path = server_dir.join("token");
    let existing = read_opt(&path)?;
    let existing_parsed = match existing.as_deref().map(str::trim) {
        Some(s) if !s.is_empty() => Some(parse_token(s).map_err(|e| PkiError::BadFile {
            path: path.clone(),
            what: "token file",
            reason: e.to_string(),
        })?),
        _ => None,
    };

    let parsed = match given {
        Some(g) => {
            let p = parse_token(g)?;
            if let Some(h) = &p.ca_hash {
                if *h != hash {
                    return Err(PkiError::TokenCaMismatch {
                        given: h.clone(),
                        actual: hash,
                    });
                }
            }
            if let Some(old) = &existing_parsed {
                if old.password != p.password {
                    tracing::warn!(file = %path.display(), "the given token replaces the stored one; agents joined with the old token must use the new one");
                }
            }
            p
        }
        None => match existing_parsed {
            Some(p) => {
                if p.ca_hash.as_deref().is_some_and(|h| h != hash) {
                    tracing::warn!(file = %path.display(), "the stored token names another CA; rewriting it with the current CA hash");
                }
                p
            }
            None => ParsedToken {
                ca_hash: None,
                username: DEFAULT_USER.into(),
                password: hex::encode(rand::random::<[u8; 16]>()),
            },
        },
    };
    let token = ParsedToken {
        ca_hash: Some(hash),
        ..parsed
    }
    .to_token_string();

    let content = format!("{token}\n");
    if existing.as_deref() != Some(content.as_str()) {
        write_atomic(&path, content.as_bytes(), 0o600)?;
    } else {
        crate::fsutil::enforce_mode(&path, 0o600)?;
    }
    link_node_token(server_dir)?;
    Ok(token)
}

/// Makes `node-token` a symlink to `token` (as k3s does), replacing whatever was there.
fn link_node_token(server_dir: &Path) -> Result<(), PkiError> {
    let alias = server_dir.join("node-token");
    if std::fs::read_link(&alias).is_ok_and(|t| t == Path::new("token")) {
        return Ok(());
    }
    let tmp = server_dir.join(format!(".node-token.tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink("token", &tmp)
        .map_err(|e| PkiError::io("create symlink", &tmp, e))?;
    std::fs::rename(&tmp, &alias).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        PkiError::io("rename into place", &alias, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

    #[test]
    fn hash_is_sha256_hex_of_bytes() {
        assert_eq!(
            ca_hash(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_ne!(ca_hash(CA), ca_hash(&CA.replace('\n', "\r\n")));
    }

    #[test]
    fn parse_full_and_bare() {
        let h = ca_hash(CA);
        let t = parse_token(&format!("K10{h}::server:abc:def\n")).unwrap();
        assert_eq!(t.ca_hash.as_deref(), Some(h.as_str()));
        assert_eq!(t.username, "server");
        assert_eq!(t.password, "abc:def");
        assert_eq!(t.to_token_string(), format!("K10{h}::server:abc:def"));
        let bare = parse_token("s3cret").unwrap();
        assert_eq!(
            bare,
            ParsedToken {
                ca_hash: None,
                username: "server".into(),
                password: "s3cret".into()
            }
        );
        assert!(parse_token("").is_err());
        assert!(parse_token("K10abc::server:x").is_err());
        assert!(parse_token(&format!("K10{h}::server")).is_err());
        assert!(parse_token(&format!("K10{h}::server:")).is_err());
        assert!(parse_token("pass word").is_err());
    }

    #[test]
    fn bootstrap_tokens_parse_full_and_bare() {
        let h = ca_hash(CA);
        let t = parse_token(&format!("K10{h}::abcdef.0123456789abcdef")).unwrap();
        assert_eq!(t.ca_hash.as_deref(), Some(h.as_str()));
        assert_eq!(t.username, "");
        assert_eq!(t.bootstrap(), Some(("abcdef", "0123456789abcdef")));
        assert_eq!(
            t.to_token_string(),
            format!("K10{h}::abcdef.0123456789abcdef")
        );
        let bare = parse_token("abcdef.0123456789abcdef").unwrap();
        assert_eq!(bare.ca_hash, None);
        assert_eq!(bare.bootstrap(), Some(("abcdef", "0123456789abcdef")));
        // Not the bootstrap format: upper case, wrong lengths, a user part.
        assert!(parse_token(&format!("K10{h}::ABCDEF.0123456789abcdef")).is_err());
        assert!(parse_token(&format!("K10{h}::abcde.0123456789abcdef")).is_err());
        assert_eq!(
            parse_token(&format!("K10{h}::server:abcdef.0123456789abcdef"))
                .unwrap()
                .bootstrap(),
            Some(("abcdef", "0123456789abcdef"))
        );
        assert_eq!(parse_token("server-password").unwrap().bootstrap(), None);
    }

    #[test]
    fn generated_bootstrap_tokens_have_the_format_and_differ() {
        let a = generate_bootstrap_token();
        let b = generate_bootstrap_token();
        assert!(parse_bootstrap_token(&a).is_some(), "{a}");
        assert_ne!(a, b);
        assert_eq!(
            parse_bootstrap_token("abcdef.0123456789abcdeg"),
            Some(("abcdef", "0123456789abcdeg"))
        );
        assert_eq!(parse_bootstrap_token("abcdef0123456789abcdef"), None);
        assert_eq!(parse_bootstrap_token("abc-ef.0123456789abcdef"), None);
    }

    #[test]
    fn created_token_is_reused_and_aliased() {
        let dir = tempfile::tempdir().unwrap();
        let server = dir.path().join("server");
        let t1 = load_or_create_token(&server, CA, None).unwrap();
        let p = parse_token(&t1).unwrap();
        assert_eq!(p.ca_hash.unwrap(), ca_hash(CA));
        assert_eq!(p.username, "server");
        assert_eq!(p.password.len(), 32);
        assert!(p.password.chars().all(|c| c.is_ascii_hexdigit()));
        let meta = std::fs::metadata(server.join("token")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::read_to_string(server.join("token"))
                .unwrap()
                .trim(),
            t1
        );
        assert_eq!(
            std::fs::read_to_string(server.join("node-token"))
                .unwrap()
                .trim(),
            t1
        );
        let t2 = load_or_create_token(&server, CA, None).unwrap();
        assert_eq!(t1, t2);
        // A new CA keeps the password but refreshes the hash.
        let other_ca = CA.replace("MIIB", "MIIC");
        let t3 = parse_token(&load_or_create_token(&server, &other_ca, None).unwrap()).unwrap();
        assert_eq!(t3.password, parse_token(&t1).unwrap().password);
        assert_eq!(t3.ca_hash.unwrap(), ca_hash(&other_ca));
    }

    #[test]
    fn given_token_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_token(dir.path(), CA, None).unwrap();
        let t = load_or_create_token(dir.path(), CA, Some("mypassword")).unwrap();
        assert_eq!(t, format!("K10{}::server:mypassword", ca_hash(CA)));
        assert_eq!(load_or_create_token(dir.path(), CA, None).unwrap(), t);
        let full = format!("K10{}::server:other", ca_hash(CA));
        assert_eq!(
            load_or_create_token(dir.path(), CA, Some(&full)).unwrap(),
            full
        );
        let wrong = format!("K10{}::server:x", ca_hash("other"));
        assert!(matches!(
            load_or_create_token(dir.path(), CA, Some(&wrong)),
            Err(PkiError::TokenCaMismatch { .. })
        ));
    }
}
