//! Which servers share the datastore (what `/v1-skiff/apiservers` answers, k3s's
//! `/v1-k3s/apiservers`): every server writes `/skiff/apiservers/<host:port>` with the time of
//! its last heartbeat every [`HEARTBEAT`]; an entry older than [`TTL`] is a server that
//! stopped. Agents poll the list to keep their client-side load balancer's server set.

use crate::state::AppState;
use serde_json::json;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// Store prefix of the membership entries.
pub const PREFIX: &str = "/skiff/apiservers/";
/// How often a server renews its entry.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// How long an entry counts without renewal.
pub const TTL: Duration = Duration::from_secs(20);

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The address agents reach this server on: `--advertise-address`, else the first IP among
/// the serving certificate's extra SANs (the server's `--node-ip` is one), else a specific
/// `--bind-address`; None when only loopback is known.
pub fn own_address(st: &AppState) -> Option<String> {
    let ip: IpAddr = st
        .cfg
        .advertise_address
        .or_else(|| st.cfg.tls_sans.iter().find_map(|s| s.parse().ok()))
        .or_else(|| (!st.cfg.bind_address.is_unspecified()).then_some(st.cfg.bind_address))?;
    if ip.is_loopback() {
        return None;
    }
    Some(match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{}", st.cfg.port),
        IpAddr::V4(v4) => format!("{v4}:{}", st.cfg.port),
    })
}

/// The live addresses among `(address, last heartbeat)` entries, sorted.
pub fn live(entries: &[(String, i64)], now: i64, ttl: Duration) -> Vec<String> {
    let ttl = ttl.as_secs() as i64;
    let mut out: Vec<String> = entries
        .iter()
        .filter(|(_, at)| now - *at < ttl)
        .map(|(a, _)| a.clone())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The live servers, as `host:port`.
pub async fn list(st: &AppState) -> Result<Vec<String>, skiff_store::StoreError> {
    let got = st.store.list(PREFIX, Default::default()).await?;
    let entries: Vec<(String, i64)> = got
        .kvs
        .iter()
        .filter_map(|kv| {
            let v: serde_json::Value = serde_json::from_slice(&kv.value).ok()?;
            Some((
                kv.key.strip_prefix(PREFIX)?.to_string(),
                v["heartbeat"].as_i64()?,
            ))
        })
        .collect();
    let mut out = live(&entries, unix_now(), TTL);
    if out.is_empty() {
        out.extend(own_address(st));
    }
    Ok(out)
}

/// Renews this server's entry until the process ends (nothing when it has no address others
/// can reach).
pub async fn heartbeat(st: Arc<AppState>) {
    let Some(me) = own_address(&st) else {
        tracing::info!("no --advertise-address or --node-ip: this server is not listed in /v1-skiff/apiservers");
        return;
    };
    let key = format!("{PREFIX}{me}");
    let mut tick = tokio::time::interval(HEARTBEAT);
    loop {
        tick.tick().await;
        let value = json!({"heartbeat": unix_now()}).to_string().into_bytes();
        let r = match st.store.get(&key).await {
            Ok(Some(kv)) => st
                .store
                .update(&key, value, kv.mod_revision)
                .await
                .map(|_| ()),
            Ok(None) => st.store.create(&key, value).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {}
            // Another process wrote the key between the read and the write: next tick.
            Err(skiff_store::StoreError::Conflict { .. })
            | Err(skiff_store::StoreError::AlreadyExists) => {}
            Err(e) => tracing::warn!(error = %e, "cannot renew this server's apiservers entry"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_recent_heartbeats_count() {
        let entries = vec![
            ("10.0.0.2:6443".to_string(), 100),
            ("10.0.0.1:6443".to_string(), 95),
            ("10.0.0.3:6443".to_string(), 70),
        ];
        assert_eq!(
            live(&entries, 110, Duration::from_secs(20)),
            vec!["10.0.0.1:6443", "10.0.0.2:6443"]
        );
        assert!(live(&entries, 1000, Duration::from_secs(20)).is_empty());
    }
}
