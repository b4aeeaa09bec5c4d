//! The service account controller and root CA publisher: every active namespace has a
//! `default` ServiceAccount (re-created when deleted) and a `kube-root-ca.crt` ConfigMap with
//! the cluster CA (`ca.crt`), as upstream's serviceaccounts-controller and
//! root-ca-cert-publisher do.

use crate::controller::{Action, Controller};
use crate::endpoints::api_code;
use crate::informer::Factory;
use crate::util::ObjectKey;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::ResourceExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The account every namespace gets.
pub const DEFAULT_ACCOUNT: &str = "default";
/// The ConfigMap carrying the cluster CA.
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
/// Its data key.
pub const ROOT_CA_KEY: &str = "ca.crt";
/// Upstream's description annotation on the ConfigMap.
pub const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
/// Upstream's description text.
pub const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// What one namespace needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    CreateAccount(ServiceAccount),
    CreateConfigMap(ConfigMap),
    UpdateConfigMap(ConfigMap),
}

/// Whether a namespace takes new objects (exists, not terminating).
pub fn active(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_none()
        && ns.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Terminating")
}

/// Plans one namespace: the `default` account and, with a CA, the root CA ConfigMap.
pub fn plan(
    ns: Option<&Namespace>,
    account: Option<&ServiceAccount>,
    configmap: Option<&ConfigMap>,
    ca_pem: &str,
) -> Vec<Change> {
    let Some(ns) = ns.filter(|n| active(n)) else {
        return Vec::new();
    };
    let name = ns.name_any();
    let mut out = Vec::new();
    if account.is_none() {
        out.push(Change::CreateAccount(ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT_ACCOUNT.to_string()),
                namespace: Some(name.clone()),
                ..Default::default()
            },
            ..Default::default()
        }));
    }
    if ca_pem.is_empty() {
        return out;
    }
    let want_data = BTreeMap::from([(ROOT_CA_KEY.to_string(), ca_pem.to_string())]);
    match configmap {
        None => out.push(Change::CreateConfigMap(ConfigMap {
            metadata: ObjectMeta {
                name: Some(ROOT_CA_CONFIGMAP.to_string()),
                namespace: Some(name),
                annotations: Some(BTreeMap::from([(
                    DESCRIPTION_ANNOTATION.to_string(),
                    DESCRIPTION.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(want_data),
            ..Default::default()
        })),
        Some(cm) => {
            let data_ok = cm.data.as_ref() == Some(&want_data) && cm.binary_data.is_none();
            let ann_ok = cm
                .annotations()
                .get(DESCRIPTION_ANNOTATION)
                .map(String::as_str)
                == Some(DESCRIPTION);
            if !data_ok || !ann_ok {
                let mut u = cm.clone();
                u.data = Some(want_data);
                u.binary_data = None;
                u.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .insert(DESCRIPTION_ANNOTATION.to_string(), DESCRIPTION.to_string());
                out.push(Change::UpdateConfigMap(u));
            }
        }
    }
    out
}

/// Registers the service account controller's (and root CA publisher's) handlers on the
/// shared informers and spawns its worker (failures are retried after 1 s). Only the root CA
/// ConfigMaps are watched, not every ConfigMap.
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    let configmaps =
        factory.informer_selected::<ConfigMap>("", &format!("metadata.name={ROOT_CA_CONFIGMAP}"));
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        cfg,
        namespaces: factory.store::<Namespace>(),
        accounts: factory.store::<ServiceAccount>(),
        configmaps: configmaps.store(),
    });
    // Keys are namespaces: everything this controller makes lives in one namespace.
    let in_namespace = |ns: Option<String>| ObjectKey::cluster(ns.unwrap_or_default());
    Controller::new(factory, "serviceaccount")
        .backoff(Duration::from_secs(1), Duration::from_secs(1))
        .watches::<Namespace, _>(|ch| Some(ObjectKey::cluster(ch.object().name_any())))
        .watches::<ServiceAccount, _>(move |ch| {
            let a = ch.object();
            let default = a.metadata.name.as_deref() == Some(DEFAULT_ACCOUNT);
            default.then(|| in_namespace(a.namespace()))
        })
        .watches_informer(configmaps, move |ch| {
            Some(in_namespace(ch.object().namespace()))
        })
        .run(ctx, |ctx: Arc<Ctx>, key: ObjectKey| async move {
            let ns = key.name;
            let n = ctx.namespaces.get("", &ns);
            let a = ctx.accounts.get(&ns, DEFAULT_ACCOUNT);
            let c = ctx.configmaps.get(&ns, ROOT_CA_CONFIGMAP);
            let changes = plan(n.as_deref(), a.as_deref(), c.as_deref(), &ctx.cfg.ca_pem);
            apply(&ctx.client, &ns, changes)
                .await
                .map(|()| Action::Done)
        });
}

struct Ctx {
    client: kube::Client,
    cfg: Arc<crate::Config>,
    namespaces: Arc<crate::informer::Store<Namespace>>,
    accounts: Arc<crate::informer::Store<ServiceAccount>>,
    configmaps: Arc<crate::informer::Store<ConfigMap>>,
}

async fn apply(client: &kube::Client, ns: &str, changes: Vec<Change>) -> Result<(), kube::Error> {
    let pp = PostParams::default();
    for c in changes {
        let res = match c {
            Change::CreateAccount(sa) => Api::<ServiceAccount>::namespaced(client.clone(), ns)
                .create(&pp, &sa)
                .await
                .map(|_| ()),
            Change::CreateConfigMap(cm) => Api::<ConfigMap>::namespaced(client.clone(), ns)
                .create(&pp, &cm)
                .await
                .map(|_| ()),
            Change::UpdateConfigMap(cm) => Api::<ConfigMap>::namespaced(client.clone(), ns)
                .replace(ROOT_CA_CONFIGMAP, &pp, &cm)
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => {}
            // Exists already (the cache lags), or the namespace is going away.
            Err(e) if matches!(api_code(&e), Some(409) | Some(403) | Some(404)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ns(phase: &str) -> Namespace {
        Namespace {
            metadata: ObjectMeta {
                name: Some("dev".into()),
                ..Default::default()
            },
            status: Some(NamespaceStatus {
                phase: Some(phase.into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn new_namespace_gets_account_and_ca() {
        let n = ns("Active");
        let c = plan(Some(&n), None, None, "PEM");
        assert_eq!(c.len(), 2);
        let Change::CreateAccount(sa) = &c[0] else {
            panic!()
        };
        assert_eq!(
            (sa.name_any().as_str(), sa.namespace().as_deref()),
            ("default", Some("dev"))
        );
        let Change::CreateConfigMap(cm) = &c[1] else {
            panic!()
        };
        assert_eq!(cm.name_any(), "kube-root-ca.crt");
        assert_eq!(cm.data.as_ref().unwrap()["ca.crt"], "PEM");
        assert_eq!(cm.annotations()[DESCRIPTION_ANNOTATION], DESCRIPTION);
    }

    #[test]
    fn up_to_date_namespace_needs_nothing_and_stale_ca_is_fixed() {
        let n = ns("Active");
        let c = plan(Some(&n), None, None, "PEM");
        let (Change::CreateAccount(sa), Change::CreateConfigMap(cm)) = (&c[0], &c[1]) else {
            panic!()
        };
        assert!(plan(Some(&n), Some(sa), Some(cm), "PEM").is_empty());
        let changed = plan(Some(&n), Some(sa), Some(cm), "NEW");
        let [Change::UpdateConfigMap(u)] = changed.as_slice() else {
            panic!("{changed:?}")
        };
        assert_eq!(u.data.as_ref().unwrap()["ca.crt"], "NEW");
    }

    #[test]
    fn terminating_or_missing_namespaces_and_empty_ca_are_skipped() {
        assert!(plan(Some(&ns("Terminating")), None, None, "PEM").is_empty());
        let mut d = ns("Active");
        d.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        assert!(plan(Some(&d), None, None, "PEM").is_empty());
        assert!(plan(None, None, None, "PEM").is_empty());
        let c = plan(Some(&ns("Active")), None, None, "");
        assert!(matches!(c.as_slice(), [Change::CreateAccount(_)]));
    }
}
