//! Bootstrap-token authentication (upstream's `--enable-bootstrap-token-auth`, which k3s agents
//! join with): a credential `<id>.<secret>` is checked against Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token` and, while it is
//! valid, authenticates as `system:bootstrap:<id>` in `system:bootstrappers` plus its
//! `auth-extra-groups`. `skiff token create|list|delete` manage those Secrets; expired ones are
//! deleted (upstream's token cleaner).

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use base64::Engine;
use serde_json::Value;
use skiff_api::rbac::UserInfo;
use std::sync::Arc;
use std::time::Duration;

/// How often expired token Secrets are looked for.
const CLEAN_EVERY: Duration = Duration::from_secs(30);

/// Namespace of the token Secrets.
pub const NAMESPACE: &str = "kube-system";
/// Type of a bootstrap token Secret.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Prefix of a token Secret's name (`bootstrap-token-<id>`).
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The group every bootstrap token user is in; the agent routes admit it.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// User name prefix of a bootstrap token (`system:bootstrap:<id>`).
pub const USER_PREFIX: &str = "system:bootstrap:";

/// The bootstrap token a request's `Authorization` header carries: `Bearer <id>.<secret>`, or
/// Basic with `<id>.<secret>` as the password (how skiff agents send their join token).
pub fn credential(authorization: Option<&str>) -> Option<(String, String)> {
    let auth = authorization?.trim();
    let token = if let Some(t) = auth.strip_prefix("Bearer ") {
        t.trim().to_string()
    } else {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.strip_prefix("Basic ")?.trim())
            .ok()?;
        let s = String::from_utf8(raw).ok()?;
        s.split_once(':')?.1.to_string()
    };
    let (id, secret) = skiff_pki::parse_bootstrap_token(&token)?;
    Some((id.to_string(), secret.to_string()))
}

/// A value of the Secret's `data` (base64) or, failing that, `stringData`.
fn field(secret: &Value, key: &str) -> Option<String> {
    if let Some(b64) = secret["data"][key].as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok());
    }
    secret["stringData"][key].as_str().map(str::to_string)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Upstream's checks of token `<id>.<secret>` against its Secret at `now_unix`: the user it
/// authenticates as, or why not (the reason goes into the 401 message).
pub fn evaluate(
    secret: &Value,
    id: &str,
    token_secret: &str,
    now_unix: i64,
) -> Result<UserInfo, String> {
    if secret["type"].as_str() != Some(SECRET_TYPE) {
        return Err(format!("its secret is not of type {SECRET_TYPE}"));
    }
    if !secret["metadata"]["deletionTimestamp"].is_null() {
        return Err("it is being deleted".into());
    }
    let stored = field(secret, "token-secret").unwrap_or_default();
    if field(secret, "token-id").as_deref() != Some(id)
        || !constant_time_eq(stored.as_bytes(), token_secret.as_bytes())
    {
        return Err("the secret does not match".into());
    }
    if let Some(exp) = field(secret, "expiration") {
        let at = chrono::DateTime::parse_from_rfc3339(exp.trim())
            .map_err(|_| format!("its expiration {exp:?} is not an RFC 3339 time"))?;
        if at.timestamp() <= now_unix {
            return Err(format!("it expired at {exp}"));
        }
    }
    if field(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err("it is not for authentication (usage-bootstrap-authentication)".into());
    }
    let mut groups = vec![BOOTSTRAPPERS_GROUP.to_string()];
    for g in field(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        if !g.starts_with("system:bootstrappers:") {
            return Err(format!(
                "its extra group {g:?} does not start with system:bootstrappers:"
            ));
        }
        if !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    groups.push("system:authenticated".into());
    Ok(UserInfo {
        name: format!("{USER_PREFIX}{id}"),
        uid: String::new(),
        groups,
    })
}

/// Authenticates a request whose other authenticators said no: `Ok(None)` when it carries no
/// bootstrap token, `Err` (a 401 naming the fix) when it carries one that is not valid.
pub async fn authenticate(
    st: &AppState,
    authorization: Option<&str>,
) -> Result<Option<UserInfo>, ApiError> {
    let Some((id, token_secret)) = credential(authorization) else {
        return Ok(None);
    };
    let refused = |why: &str| {
        tracing::info!(token_id = %id, reason = why, "bootstrap token refused");
        ApiError::new(
            401,
            "Unauthorized",
            format!(
                "bootstrap token {id} is not valid: {why}; create a new one with `skiff token create` on the server"
            ),
        )
    };
    let Some(res) = skiff_api::registry::find("", "v1", "secrets") else {
        return Err(ApiError::internal("secrets not registered"));
    };
    let name = format!("{SECRET_PREFIX}{id}");
    let secret = match crate::rest::get_object(st, res, Some(NAMESPACE), &name).await {
        Ok(s) => s,
        Err(e) if e.code == 404 => return Err(refused("it does not exist (deleted or expired)")),
        Err(e) => return Err(e),
    };
    evaluate(&secret, &id, &token_secret, chrono::Utc::now().timestamp())
        .map(Some)
        .map_err(|why| refused(&why))
}

/// Whether `secret` is a bootstrap token whose `expiration` has passed at `now_unix`.
pub fn expired(secret: &Value, now_unix: i64) -> bool {
    secret["type"].as_str() == Some(SECRET_TYPE)
        && field(secret, "expiration")
            .and_then(|e| chrono::DateTime::parse_from_rfc3339(e.trim()).ok())
            .is_some_and(|at| at.timestamp() <= now_unix)
}

/// Deletes expired bootstrap token Secrets every [`CLEAN_EVERY`] (what upstream's token
/// cleaner controller does), so `skiff token list` shows only live tokens.
pub async fn clean_expired(st: Arc<AppState>) {
    let mut tick = tokio::time::interval(CLEAN_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = clean_once(&st).await {
            tracing::warn!(error = %e.message, "bootstrap tokens: cleanup failed, retrying");
        }
    }
}

/// One pass of [`clean_expired`].
pub async fn clean_once(st: &Arc<AppState>) -> ApiResult<()> {
    let Some(res) = skiff_api::registry::find("", "v1", "secrets") else {
        return Err(ApiError::internal("secrets not registered"));
    };
    let prefix = format!("{}{NAMESPACE}/{SECRET_PREFIX}", res.key_prefix());
    let list = st.store.list(&prefix, Default::default()).await?;
    let now = chrono::Utc::now().timestamp();
    for kv in &list.kvs {
        let Ok(secret) = crate::objects::from_kv(kv) else {
            continue;
        };
        if !expired(&secret, now) {
            continue;
        }
        let name = secret["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let opts = crate::rest::DeleteOpts::default();
        match crate::rest::delete_object(st, res, Some(NAMESPACE), &name, &opts).await {
            Ok(_) => tracing::info!(secret = %name, "deleted an expired bootstrap token"),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn token_secret(extra: &[(&str, &str)]) -> Value {
        let mut data = serde_json::Map::new();
        for (k, v) in [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
            ("usage-bootstrap-signing", "true"),
        ]
        .iter()
        .chain(extra)
        {
            data.insert(k.to_string(), json!(b64(v)));
        }
        json!({
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "type": SECRET_TYPE,
            "data": data,
        })
    }

    #[test]
    fn the_header_carries_the_token_as_bearer_or_basic_password() {
        let want = Some(("abcdef".to_string(), "0123456789abcdef".to_string()));
        assert_eq!(credential(Some("Bearer abcdef.0123456789abcdef")), want);
        let basic = format!("Basic {}", b64("node:abcdef.0123456789abcdef"));
        assert_eq!(credential(Some(&basic)), want);
        assert_eq!(credential(Some("Bearer server-password")), None);
        assert_eq!(credential(Some(&format!("Basic {}", b64("node:pw")))), None);
        assert_eq!(credential(None), None);
    }

    #[test]
    fn a_valid_token_authenticates_as_its_bootstrap_user() {
        let s = token_secret(&[
            ("expiration", "2030-01-01T00:00:00Z"),
            (
                "auth-extra-groups",
                "system:bootstrappers:skiff:default-node-token",
            ),
        ]);
        let now = chrono::DateTime::parse_from_rfc3339("2029-12-31T23:59:59Z")
            .unwrap()
            .timestamp();
        let u = evaluate(&s, "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(u.name, "system:bootstrap:abcdef");
        assert_eq!(
            u.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:skiff:default-node-token",
                "system:authenticated"
            ]
        );
        // Without an expiration it never expires.
        assert!(evaluate(
            &token_secret(&[]),
            "abcdef",
            "0123456789abcdef",
            i64::MAX / 2
        )
        .is_ok());
    }

    #[test]
    fn only_bootstrap_tokens_past_their_expiration_are_expired() {
        let s = token_secret(&[("expiration", "2030-01-01T00:00:00Z")]);
        let at = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .timestamp();
        assert!(!expired(&s, at - 1));
        assert!(expired(&s, at));
        assert!(!expired(&token_secret(&[]), i64::MAX / 2));
        let mut opaque = s.clone();
        opaque["type"] = json!("Opaque");
        assert!(!expired(&opaque, at + 1));
    }

    #[test]
    fn invalid_tokens_are_refused_with_the_reason() {
        let now = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:01Z")
            .unwrap()
            .timestamp();
        let expired = token_secret(&[("expiration", "2030-01-01T00:00:00Z")]);
        let why = evaluate(&expired, "abcdef", "0123456789abcdef", now).unwrap_err();
        assert!(why.contains("expired"), "{why}");
        let s = token_secret(&[]);
        assert!(evaluate(&s, "abcdef", "0123456789abcdeX", now)
            .unwrap_err()
            .contains("does not match"));
        assert!(evaluate(&s, "abcdeg", "0123456789abcdef", now).is_err());
        let mut wrong_type = s.clone();
        wrong_type["type"] = json!("Opaque");
        assert!(evaluate(&wrong_type, "abcdef", "0123456789abcdef", now).is_err());
        let mut deleting = s.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2030-01-01T00:00:00Z");
        assert!(evaluate(&deleting, "abcdef", "0123456789abcdef", now).is_err());
        let signing_only = token_secret(&[("usage-bootstrap-authentication", "false")]);
        assert!(evaluate(&signing_only, "abcdef", "0123456789abcdef", now)
            .unwrap_err()
            .contains("usage-bootstrap-authentication"));
        let bad_group = token_secret(&[("auth-extra-groups", "system:masters")]);
        assert!(evaluate(&bad_group, "abcdef", "0123456789abcdef", now).is_err());
        // stringData (an object written without data) is read too.
        let string_data = json!({
            "type": SECRET_TYPE,
            "metadata": {},
            "stringData": {"token-id": "abcdef", "token-secret": "0123456789abcdef",
                           "usage-bootstrap-authentication": "true"},
        });
        assert!(evaluate(&string_data, "abcdef", "0123456789abcdef", now).is_ok());
    }
}
