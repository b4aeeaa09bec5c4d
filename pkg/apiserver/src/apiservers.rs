//! Which servers share the datastore (what `/v1-skiff/apiservers` answers, k3s's
//! `/v1-k3s/apiservers`): every server writes `/skiff/apiservers/<host:port>` with the time of
//! its last heartbeat every [`HEARTBEAT`]; an entry older than [`TTL`] is a server that
//! stopped. Agents poll the list to keep their client-side load balancer's server set, and
//! each server keeps the `default/kubernetes` Endpoints and EndpointSlice listing every live
//! server (upstream's lease endpoint reconciler), so pods reach any of them.

use crate::error::ApiResult;
use crate::rest::Mutation;
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry;
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
        match list(&st).await {
            Ok(live) => {
                if let Err(e) = reconcile_kubernetes(&st, &hosts(&live)).await {
                    tracing::warn!(error = %e.message, "cannot update the kubernetes endpoints");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the apiservers"),
        }
    }
}

/// The hosts of `host:port` addresses (IPv6 without brackets), sorted and unique.
fn hosts(addresses: &[String]) -> Vec<String> {
    let mut out: Vec<String> = addresses
        .iter()
        .filter_map(|a| {
            let (host, _) = a.rsplit_once(':')?;
            Some(
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
            )
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// `default/kubernetes` Endpoints with the servers' addresses, everything else kept.
fn endpoints_with(current: &Value, ips: &[String], port: u16) -> Value {
    let mut o = current.clone();
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    o["subsets"] = json!([{
        "addresses": addresses,
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]
    }]);
    o
}

/// `default/kubernetes` EndpointSlice with the servers' addresses, everything else kept.
fn slice_with(current: &Value, ips: &[String], port: u16) -> Value {
    let mut o = current.clone();
    let v6 = current["addressType"] == "IPv6";
    let endpoints: Vec<Value> = ips
        .iter()
        .filter(|ip| ip.contains(':') == v6)
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    o["endpoints"] = Value::Array(endpoints);
    o["ports"] = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    o
}

/// Rewrites the `kubernetes` Endpoints and EndpointSlice when the live servers changed (an
/// unchanged object is not written).
async fn reconcile_kubernetes(st: &Arc<AppState>, ips: &[String]) -> ApiResult<()> {
    if ips.is_empty() {
        return Ok(());
    }
    let port = st.cfg.port;
    let opts = crate::bootstrap::system_opts();
    let kinds: [(&str, &str, &str, SetFn); 2] = [
        ("", "v1", "endpoints", endpoints_with),
        ("discovery.k8s.io", "v1", "endpointslices", slice_with),
    ];
    for (group, version, plural, set) in kinds {
        let Some(res) = registry::find(group, version, plural) else {
            continue;
        };
        let ips = ips.to_vec();
        let r = crate::rest::update_object(
            st,
            res,
            Some("default"),
            "kubernetes",
            Mutation::With(Box::new(move |cur: &Value| Ok(set(cur, &ips, port)))),
            &opts,
            None,
        )
        .await;
        match r {
            // Not there yet (bootstrap creates it) or already gone: nothing to keep.
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    Ok(())
}

type SetFn = fn(&Value, &[String], u16) -> Value;

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

    #[test]
    fn kubernetes_endpoints_list_every_server() {
        let ips = hosts(&[
            "10.0.0.2:6443".to_string(),
            "[fd00::1]:6443".to_string(),
            "10.0.0.1:6443".to_string(),
        ]);
        assert_eq!(ips, vec!["10.0.0.1", "10.0.0.2", "fd00::1"]);
        let ep = json!({"metadata": {"name": "kubernetes", "labels": {"a": "b"}},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}]}]});
        let got = endpoints_with(&ep, &ips[..2], 6443);
        assert_eq!(got["metadata"], ep["metadata"]);
        assert_eq!(
            got["subsets"],
            json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
                "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}])
        );
        let slice = json!({"metadata": {"name": "kubernetes"}, "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]});
        let got = slice_with(&slice, &ips, 6443);
        assert_eq!(got["addressType"], "IPv4");
        assert_eq!(
            got["endpoints"],
            json!([{"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": true}}])
        );
    }
}
