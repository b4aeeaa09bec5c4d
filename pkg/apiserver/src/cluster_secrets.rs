//! Shared cluster secrets for several servers on one external datastore (k3s's bootstrap data):
//! the first server stores its CAs and service-account signing key under
//! `/bootstrap/<first 12 hex digits of sha256(token password)>`, encrypted with a key derived
//! from the token password (PBKDF2-HMAC-SHA1, 5000 rounds, 8-byte salt → AES-256-GCM, the
//! parameters k3s uses); later servers with the same token fetch and write them into their tls
//! directory before loading their PKI, so every server has the same CAs (kubeconfigs and join
//! tokens work against all of them) and signs the same service-account tokens. Serving and
//! admin certificates stay per server (each has its own SANs), issued by the shared CAs.
//!
//! The crypto is `ring`'s (PBKDF2, AES-GCM, the system RNG); the file bundle is JSON.

use crate::StartError;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::Path;

/// Prefix of the bootstrap keys in the datastore.
pub const PREFIX: &str = "/bootstrap/";
/// The files of the tls directory every server must share, with their modes.
pub const SHARED_FILES: [(&str, u32); 5] = [
    ("server-ca.crt", 0o644),
    ("server-ca.key", 0o600),
    ("client-ca.crt", 0o644),
    ("client-ca.key", 0o600),
    ("service.key", 0o600),
];
const SALT_LEN: usize = 8;
const ROUNDS: u32 = 5000;

/// The datastore key of the bootstrap data for a token password.
pub fn storage_key(password: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, password.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("{PREFIX}{}", &hex[..12])
}

fn derive(password: &str, salt: &[u8]) -> LessSafeKey {
    let mut key = [0u8; 32];
    pbkdf2(password, salt, &mut key);
    // A 32-byte key is always valid for AES-256-GCM.
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("32-byte AES-256 key"))
}

fn pbkdf2(password: &str, salt: &[u8], out: &mut [u8]) {
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA1,
        NonZeroU32::new(ROUNDS).expect("non-zero rounds"),
        salt,
        password.as_bytes(),
        out,
    );
}

fn fail(msg: impl Into<String>) -> StartError {
    StartError::Config(msg.into())
}

/// Encrypts `plain` for `password`: `base64(salt):base64(nonce || ciphertext+tag)`.
pub fn encrypt(password: &str, plain: &[u8]) -> Result<String, StartError> {
    let rng = SystemRandom::new();
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill(&mut salt)
        .and_then(|()| rng.fill(&mut nonce))
        .map_err(|_| fail("the system random generator failed; retry"))?;
    let key = derive(password, &salt);
    let mut sealed = plain.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut sealed,
    )
    .map_err(|_| fail("cannot encrypt the cluster secrets"))?;
    let mut body = nonce.to_vec();
    body.extend_from_slice(&sealed);
    Ok(format!(
        "{}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(body)
    ))
}

/// Decrypts what [`encrypt`] produced; `None` when the password is not the one it was sealed
/// with (or the data was altered).
pub fn decrypt(password: &str, data: &str) -> Option<Vec<u8>> {
    let (salt, body) = data.trim().split_once(':')?;
    let salt = STANDARD.decode(salt).ok()?;
    let mut body = STANDARD.decode(body).ok()?;
    if body.len() < NONCE_LEN {
        return None;
    }
    let nonce = Nonce::try_assume_unique_for_key(&body[..NONCE_LEN]).ok()?;
    let key = derive(password, &salt);
    let plain = key
        .open_in_place(nonce, Aad::empty(), &mut body[NONCE_LEN..])
        .ok()?;
    Some(plain.to_vec())
}

/// The shared files of `tls_dir` as a JSON object of name → content.
pub fn pack(tls_dir: &Path) -> Result<Vec<u8>, StartError> {
    let mut files = BTreeMap::new();
    for (name, _) in SHARED_FILES {
        let path = tls_dir.join(name);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        files.insert(name.to_string(), text);
    }
    serde_json::to_vec(&files).map_err(|e| fail(format!("cannot encode cluster secrets: {e}")))
}

/// Writes the shared files of a bundle into `tls_dir` (only those whose content differs);
/// returns how many were written.
pub fn unpack(bundle: &[u8], tls_dir: &Path) -> Result<usize, StartError> {
    let files: BTreeMap<String, String> = serde_json::from_slice(bundle).map_err(|e| {
        fail(format!(
            "the datastore's cluster secrets are unreadable ({e}); were they written by another program?"
        ))
    })?;
    std::fs::create_dir_all(tls_dir)
        .map_err(|e| fail(format!("cannot create {}: {e}", tls_dir.display())))?;
    let mut written = 0;
    for (name, mode) in SHARED_FILES {
        let Some(text) = files.get(name) else {
            return Err(fail(format!(
                "the datastore's cluster secrets lack {name}; remove the {PREFIX} key and start the first server again"
            )));
        };
        let path = tls_dir.join(name);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            continue;
        }
        write_mode(&path, text.as_bytes(), mode)?;
        written += 1;
    }
    Ok(written)
}

fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), StartError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let io = |e: std::io::Error| fail(format!("cannot write {}: {e}", path.display()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).and_then(|()| f.sync_all()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// What the start-up did with the shared secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This server's secrets were stored: it is the first server.
    Stored,
    /// The datastore's secrets were written into this server's tls directory.
    Fetched,
}

/// Makes `tls_dir` hold the datastore's shared secrets for `password`, storing this server's
/// (created by `create_local`) when the datastore has none yet. A datastore whose secrets were
/// stored under another token refuses the start.
pub async fn sync(
    store: &skiff_store::Store,
    tls_dir: &Path,
    password: &str,
    create_local: impl Fn() -> Result<(), StartError>,
) -> Result<Outcome, StartError> {
    let key = storage_key(password);
    for _ in 0..5 {
        if let Some(kv) = store.get(&key).await? {
            let data = String::from_utf8_lossy(&kv.value).into_owned();
            let bundle = decrypt(password, &data).ok_or_else(|| {
                fail("the token does not match the datastore's: its cluster secrets cannot be decrypted with it; start this server with the token of the first server (`skiff token` there)")
            })?;
            let n = unpack(&bundle, tls_dir)?;
            tracing::info!(key = %key, files_written = n, "cluster secrets fetched from the datastore");
            return Ok(Outcome::Fetched);
        }
        let others = store.list(PREFIX, Default::default()).await?;
        if !others.kvs.is_empty() {
            return Err(fail(
                "the token does not match the datastore's: the datastore holds cluster secrets stored with another token; start this server with the token of the first server (`skiff token` there)",
            ));
        }
        create_local()?;
        let sealed = encrypt(password, &pack(tls_dir)?)?;
        match store.create(&key, sealed.into_bytes()).await {
            Ok(_) => {
                tracing::info!(key = %key, "cluster secrets stored in the datastore for the servers that join it");
                return Ok(Outcome::Stored);
            }
            // Another server stored its secrets first: take those.
            Err(skiff_store::StoreError::AlreadyExists) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(fail(
        "the cluster secrets in the datastore keep changing during start-up; retry",
    ))
}

/// The token password an external datastore's servers share: from `--token` (a K10 token or
/// a bare password) or, on a restart without it, from `<server_dir>/token`.
pub fn shared_password(given: Option<&str>, server_dir: &Path) -> Result<String, StartError> {
    if let Some(t) = given {
        return Ok(skiff_pki::parse_token(t)?.password);
    }
    let path = server_dir.join("token");
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => Ok(skiff_pki::parse_token(t.trim())?.password),
        _ => Err(fail(
            "an external --datastore-endpoint needs --token (or --token-file): every server sharing the datastore is started with the same token",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_data_opens_only_with_its_password() {
        let sealed = encrypt("s3cret", b"the CA key").unwrap();
        assert_eq!(decrypt("s3cret", &sealed).unwrap(), b"the CA key");
        assert!(decrypt("other", &sealed).is_none());
        // A fresh salt and nonce every time: the same input seals differently.
        assert_ne!(sealed, encrypt("s3cret", b"the CA key").unwrap());
    }

    #[test]
    fn altered_or_malformed_data_is_refused() {
        let sealed = encrypt("pw", b"payload").unwrap();
        let (salt, body) = sealed.split_once(':').unwrap();
        let mut raw = STANDARD.decode(body).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("{salt}:{}", STANDARD.encode(raw));
        assert!(decrypt("pw", &tampered).is_none());
        assert!(decrypt("pw", "no-colon").is_none());
        assert!(decrypt("pw", "AAAA:AA==").is_none());
    }

    #[test]
    fn the_derived_key_is_pbkdf2_hmac_sha1() {
        // RFC 6070 test vector: P="password", S="salt", c=1, dkLen=20 — checked through ring
        // with the same algorithm our derivation names.
        let mut out = [0u8; 20];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA1,
            NonZeroU32::new(1).unwrap(),
            b"salt",
            b"password",
            &mut out,
        );
        let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "0c60c80f961f0e71f3a9b524af6012062fe037a6");
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        pbkdf2("pw", b"12345678", &mut a);
        pbkdf2("pw", b"12345679", &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn the_storage_key_depends_on_the_password_only() {
        let k = storage_key("abc");
        assert_eq!(k, storage_key("abc"));
        assert_ne!(k, storage_key("abd"));
        // sha256("abc") = ba7816bf8f01cfea…
        assert_eq!(k, "/bootstrap/ba7816bf8f01");
    }

    #[test]
    fn pack_and_unpack_carry_the_shared_files_with_their_modes() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        for (name, _) in SHARED_FILES {
            std::fs::write(a.path().join(name), format!("content of {name}")).unwrap();
        }
        let bundle = pack(a.path()).unwrap();
        let b = tempfile::tempdir().unwrap();
        let tls = b.path().join("tls");
        assert_eq!(unpack(&bundle, &tls).unwrap(), SHARED_FILES.len());
        for (name, mode) in SHARED_FILES {
            let p = tls.join(name);
            assert_eq!(
                std::fs::read_to_string(&p).unwrap(),
                format!("content of {name}")
            );
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                mode
            );
        }
        // Unchanged files are not rewritten.
        assert_eq!(unpack(&bundle, &tls).unwrap(), 0);
        assert!(unpack(b"{}", &tls).is_err());
    }

    #[tokio::test]
    async fn the_first_server_stores_and_the_next_fetches_and_a_wrong_token_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = skiff_store::Store::open(&dir.path().join("s.db"), Default::default()).unwrap();
        let first = dir.path().join("one");
        let make = |tls: std::path::PathBuf| {
            move || -> Result<(), StartError> {
                skiff_pki::load_or_create(&tls, &Default::default())?;
                Ok(())
            }
        };
        let out = sync(&store, &first, "pw", make(first.clone()))
            .await
            .unwrap();
        assert_eq!(out, Outcome::Stored);
        let second = dir.path().join("two");
        let out = sync(&store, &second, "pw", || panic!("must not create"))
            .await
            .unwrap();
        assert_eq!(out, Outcome::Fetched);
        for (name, _) in SHARED_FILES {
            assert_eq!(
                std::fs::read(first.join(name)).unwrap(),
                std::fs::read(second.join(name)).unwrap(),
                "{name}"
            );
        }
        let a = skiff_pki::load_or_create(&first, &Default::default()).unwrap();
        let b = skiff_pki::load_or_create(&second, &Default::default()).unwrap();
        assert_eq!(a.server_ca_pem(), b.server_ca_pem());
        assert_eq!(a.service_account_key_id(), b.service_account_key_id());
        let third = dir.path().join("three");
        let err = sync(&store, &third, "wrong", || panic!("must not create"))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the token does not match the datastore's"),
            "{err}"
        );
    }
}
