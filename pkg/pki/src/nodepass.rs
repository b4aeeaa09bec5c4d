//! Node passwords: the salted, iterated hash the server keeps in a node's password Secret and
//! its constant-time check. PBKDF2-HMAC-SHA256 from `ring` (no scrypt crate in the workspace);
//! the passwords are 128 random bits, so a moderate iteration count is plenty.

use std::num::NonZeroU32;

use base64::Engine;
use ring::pbkdf2;

const SCHEME: &str = "pbkdf2-sha256";
const ITERATIONS: u32 = 20_000;
const SALT_LEN: usize = 16;
const HASH_LEN: usize = 32;

/// Hashes `password` with a fresh random salt: `pbkdf2-sha256$<iterations>$<salt>$<hash>`
/// (salt and hash in unpadded base64).
pub fn hash_node_password(password: &str) -> String {
    let salt: [u8; SALT_LEN] = rand::random();
    hash_with(password, &salt, ITERATIONS)
}

fn hash_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = [0u8; HASH_LEN];
    let iters = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        salt,
        password.as_bytes(),
        &mut out,
    );
    format!(
        "{SCHEME}${iterations}${}${}",
        b64.encode(salt),
        b64.encode(out)
    )
}

/// Whether `password` matches `stored` (a value from [`hash_node_password`]); a malformed
/// stored value never matches.
pub fn verify_node_password(password: &str, stored: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut parts = stored.trim().split('$');
    let (Some(SCHEME), Some(iters), Some(salt), Some(hash), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    let (Ok(iters), Ok(salt), Ok(hash)) = (
        iters.parse::<NonZeroU32>(),
        b64.decode(salt),
        b64.decode(hash),
    ) else {
        return false;
    };
    pbkdf2::verify(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iters,
        &salt,
        password.as_bytes(),
        &hash,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_the_same_password_and_is_salted() {
        let a = hash_node_password("0123456789abcdef");
        let b = hash_node_password("0123456789abcdef");
        assert_ne!(a, b, "fresh salt per hash");
        assert!(a.starts_with("pbkdf2-sha256$20000$"));
        assert!(verify_node_password("0123456789abcdef", &a));
        assert!(verify_node_password("0123456789abcdef", &b));
        assert!(!verify_node_password("0123456789abcdeF", &a));
        assert!(!verify_node_password("", &a));
        assert!(!a.contains("0123456789abcdef"));
    }

    #[test]
    fn malformed_stored_values_never_match() {
        let good = hash_with("pw", b"saltsaltsaltsalt", 10);
        assert!(verify_node_password("pw", &good));
        for bad in [
            "",
            "pw",
            "pbkdf2-sha256$0$c2FsdA$aGFzaA",
            "pbkdf2-sha256$10$!!$aGFzaA",
            "md5$10$c2FsdA$aGFzaA",
            &format!("{good}$extra"),
        ] {
            assert!(!verify_node_password("pw", bad), "{bad}");
        }
    }
}
