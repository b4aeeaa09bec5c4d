//! What a fresh cluster has before anyone asks: the four system namespaces, the `kubernetes`
//! Service and its endpoints, the default RBAC policy; plus the allocator rebuild at start and
//! the event TTL sweeper.

use crate::admission;
use crate::error::ApiResult;
use crate::objects::from_kv;
use crate::rest::{self, WriteOpts};
use crate::state::AppState;
use serde_json::{json, Value};
use skiff_api::registry;
use std::sync::Arc;

/// The options of the server's own writes.
pub(crate) fn system_opts() -> WriteOpts {
    WriteOpts {
        dry_run: false,
        field_manager: "skiff-apiserver".into(),
        field_validation: "Ignore".into(),
        apply: false,
    }
}

async fn ensure(
    st: &Arc<AppState>,
    plural: &str,
    group: &str,
    ns: Option<&str>,
    obj: Value,
) -> ApiResult<()> {
    let res = registry::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
        .ok_or_else(|| crate::error::ApiError::internal(format!("{plural} not registered")))?;
    let n = crate::objects::name(&obj).to_string();
    match rest::get_object(st, res, ns, &n).await {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => {
            match rest::create_object(st, res, ns, obj, &system_opts()).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// Creates the built-in objects that are missing.
pub async fn run(st: &Arc<AppState>) -> ApiResult<()> {
    rebuild_allocations(st).await?;
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        ensure(
            st,
            "namespaces",
            "",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await?;
    }
    for role in skiff_api::rbac::bootstrap_cluster_roles() {
        ensure(st, "clusterroles", "rbac.authorization.k8s.io", None, role).await?;
    }
    for b in skiff_api::rbac::bootstrap_cluster_role_bindings() {
        ensure(
            st,
            "clusterrolebindings",
            "rbac.authorization.k8s.io",
            None,
            b,
        )
        .await?;
    }
    // k3s's local-path StorageClass (the default class, served by skiff's provisioner).
    ensure(
        st,
        "storageclasses",
        "storage.k8s.io",
        None,
        json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "local-path", "annotations": {
                "storageclass.kubernetes.io/is-default-class": "true",
                "defaultVolumeType": "hostPath"}},
            "provisioner": "rancher.io/local-path",
            "volumeBindingMode": "WaitForFirstConsumer",
            "reclaimPolicy": "Delete"
        }),
    )
    .await?;
    let first_ip = st.ips.lock().nth(1).to_string();
    ensure(
        st,
        "services",
        "",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": first_ip,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": st.cfg.port}],
                "sessionAffinity": "None"}
        }),
    )
    .await?;
    let addr = advertise(st);
    ensure(
        st,
        "endpoints",
        "",
        Some("default"),
        json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": addr}], "ports": [{"name": "https", "port": st.cfg.port, "protocol": "TCP"}]}]
        }),
    )
    .await?;
    ensure(
        st,
        "endpointslices",
        "discovery.k8s.io",
        Some("default"),
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [addr], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": st.cfg.port, "protocol": "TCP"}]
        }),
    )
    .await?;
    if st.cfg.dns_service {
        // The address is held back at start so no other Service takes it; kube-dns gets it.
        let svc = registry::find("", "v1", "services");
        if let Some(res) = svc {
            if let Err(e) = rest::get_object(st, res, Some("kube-system"), "kube-dns").await {
                if e.code == 404 {
                    st.ips.lock().release(st.cfg.cluster_dns);
                }
            }
        }
        ensure(
            st,
            "services",
            "",
            Some("kube-system"),
            kube_dns_service(&st.cfg),
        )
        .await?;
    }
    if st.cfg.ingress_class {
        ensure(
            st,
            "ingressclasses",
            "networking.k8s.io",
            None,
            ingress_class(),
        )
        .await?;
    }
    Ok(())
}

/// The IngressClass every node's ingress proxy (skiff-ingress) serves, marked as the default
/// class so admission fills it into Ingresses created without one (k3s ships `traefik` so).
fn ingress_class() -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass",
        "metadata": {"name": "skiff",
            "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"}},
        "spec": {"controller": "skiff.io/ingress-controller"}
    })
}

/// `kube-system/kube-dns` as k3s ships it (labels, ports dns/dns-tcp, `--cluster-dns`), without
/// a selector: every node serves the address itself (skiff-dns), so the annotation tells the
/// service proxy to leave it alone.
fn kube_dns_service(cfg: &crate::state::ServerConfig) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system",
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS"},
            "annotations": {"skiff.io/node-local-dns": "true"}},
        "spec": {"type": "ClusterIP", "clusterIP": cfg.cluster_dns.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}],
            "sessionAffinity": "None"}
    })
}

fn advertise(st: &AppState) -> String {
    match st.cfg.advertise_address {
        Some(a) => a.to_string(),
        None => {
            if st.cfg.bind_address.is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                st.cfg.bind_address.to_string()
            }
        }
    }
}

/// Marks every stored Service's cluster IPs and node ports as taken.
async fn rebuild_allocations(st: &Arc<AppState>) -> ApiResult<()> {
    let Some(res) = registry::find("", "v1", "services") else {
        return Ok(());
    };
    let list = st.store.list(&res.key_prefix(), Default::default()).await?;
    for kv in &list.kvs {
        if let Ok(v) = from_kv(kv) {
            admission::restore(st, &v);
        }
    }
    Ok(())
}

/// Deletes events older than the TTL, every minute (events.k8s.io Events share the storage).
pub async fn sweep_events(st: Arc<AppState>) {
    let ttl = chrono::Duration::from_std(st.cfg.event_ttl).unwrap_or(chrono::Duration::hours(1));
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let cutoff = chrono::Utc::now() - ttl;
        {
            let Some(res) = registry::find("", "v1", "events") else {
                return;
            };
            let Ok(list) = st.store.list(&res.key_prefix(), Default::default()).await else {
                continue;
            };
            for kv in &list.kvs {
                let Ok(v) = from_kv(kv) else { continue };
                let stamp = [
                    "/lastTimestamp",
                    "/series/lastObservedTime",
                    "/deprecatedLastTimestamp",
                    "/eventTime",
                    "/metadata/creationTimestamp",
                ]
                .iter()
                .find_map(|p| v.pointer(p).and_then(|t| t.as_str()))
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
                if let Some(t) = stamp {
                    if t < cutoff {
                        let _ = st.store.delete(&kv.key, kv.mod_revision).await;
                    }
                }
            }
        }
    }
}
