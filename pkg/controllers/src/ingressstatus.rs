//! Ingress status: every Ingress the nodes' ingress proxies serve (class `skiff` — any class
//! whose controller is `skiff.io/ingress-controller` — or no class) gets the Ready nodes'
//! InternalIPs in `status.loadBalancer.ingress`, as Traefik's `publishedService` copies
//! ServiceLB's addresses in k3s; `kubectl get ingress` shows them as ADDRESS. An Ingress that
//! stops being ours (another class) has the addresses it got from here cleared.

use crate::controller::{Action, Controller};
use crate::informer::{Factory, Store};
use crate::util::{key_of, patch_status, ObjectKey};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::networking::v1::{Ingress, IngressClass};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// `spec.controller` of the classes skiff serves (skiff-ingress's `route::CONTROLLER`).
pub const CONTROLLER: &str = "skiff.io/ingress-controller";
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The Ready nodes' InternalIPs, sorted and deduplicated.
pub fn node_addresses(nodes: &[&Node]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| is_ready(n))
        .flat_map(|n| {
            n.status
                .as_ref()
                .and_then(|s| s.addresses.clone())
                .unwrap_or_default()
        })
        .filter(|a| a.type_ == "InternalIP")
        .map(|a| a.address)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Whether skiff's ingress serves `ing` given the IngressClasses: its class has skiff's
/// controller, or it names no class while some skiff class exists.
pub fn ours(ing: &Ingress, classes: &[&IngressClass]) -> bool {
    let skiff: BTreeSet<&str> = classes
        .iter()
        .filter(|c| c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER))
        .filter_map(|c| c.metadata.name.as_deref())
        .collect();
    if skiff.is_empty() {
        return false;
    }
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.as_deref())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLASS_ANNOTATION))
                .map(String::as_str)
        });
    class.is_none_or(|c| skiff.contains(c))
}

/// The addresses `ing` carries now.
pub fn current(ing: &Ingress) -> Vec<String> {
    ing.status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

/// The addresses `ing` should carry (`None`: not ours, leave it alone unless it has ours).
pub fn plan(ing: &Ingress, classes: &[&IngressClass], nodes: &[&Node]) -> Option<Vec<String>> {
    ours(ing, classes).then(|| node_addresses(nodes))
}

struct Ctx {
    client: kube::Client,
    ingresses: Arc<Store<Ingress>>,
    classes: Arc<Store<IngressClass>>,
    nodes: Arc<Store<Node>>,
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, kube::Error> {
    let Some(ing) = ctx.ingresses.get(&key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let classes = ctx.classes.all();
    let class_refs: Vec<&IngressClass> = classes.iter().map(|c| c.as_ref()).collect();
    let nodes = ctx.nodes.all();
    let node_refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    let now = current(&ing);
    let want = match plan(&ing, &class_refs, &node_refs) {
        Some(w) => w,
        // Not ours: clear only addresses that are our nodes' (another controller may own it).
        None if !now.is_empty() && now == node_addresses(&node_refs) => Vec::new(),
        None => return Ok(Action::Done),
    };
    if want == now {
        return Ok(Action::Done);
    }
    let ingress: Vec<_> = want
        .iter()
        .map(|ip| serde_json::json!({"ip": ip}))
        .collect();
    let value = if ingress.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::Value::Array(ingress)
    };
    patch_status(
        &ctx.client,
        ing.as_ref(),
        serde_json::json!({"loadBalancer": {"ingress": value}}),
    )
    .await?;
    tracing::debug!(namespace = %key.namespace, name = %key.name, addresses = ?want, "ingress status updated");
    Ok(Action::Done)
}

/// Registers the controller (unless `--disable ingress`).
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    if !cfg.ingress {
        return;
    }
    let ingresses = factory.store::<Ingress>();
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        ingresses: ingresses.clone(),
        classes: factory.store::<IngressClass>(),
        nodes: factory.store::<Node>(),
    });
    let all =
        move || -> Vec<ObjectKey> { ingresses.all().iter().map(|i| key_of(i.as_ref())).collect() };
    let on_node = all.clone();
    let on_class = all.clone();
    Controller::new(factory, "ingressstatus")
        .reconciles::<Ingress>()
        .backoff(Duration::from_millis(500), Duration::from_secs(30))
        .resync_keys(all)
        .resync(Duration::from_secs(60))
        .watches::<Node, _>(move |_| on_node())
        .watches::<IngressClass, _>(move |_| on_class())
        .run(ctx, reconcile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(ip: &str, ready: bool) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": ip},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": "h"}]}
        }))
        .unwrap()
    }

    fn class(name: &str, controller: &str) -> IngressClass {
        serde_json::from_value(
            json!({"metadata": {"name": name}, "spec": {"controller": controller}}),
        )
        .unwrap()
    }

    fn ing(spec: serde_json::Value, annotations: serde_json::Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "default", "annotations": annotations},
            "spec": spec,
        }))
        .unwrap()
    }

    #[test]
    fn ready_nodes_internal_ips_for_our_ingresses() {
        let (a, b, c) = (
            node("192.0.2.2", true),
            node("192.0.2.1", true),
            node("192.0.2.3", false),
        );
        let nodes = [&a, &b, &c];
        let skiff = class("skiff", CONTROLLER);
        let nginx = class("nginx", "k8s.io/ingress-nginx");
        let classes = [&skiff, &nginx];
        let want = Some(vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()]);
        assert_eq!(
            plan(
                &ing(json!({"ingressClassName": "skiff"}), json!({})),
                &classes,
                &nodes
            ),
            want
        );
        assert_eq!(plan(&ing(json!({}), json!({})), &classes, &nodes), want);
        assert_eq!(
            plan(
                &ing(json!({"ingressClassName": "nginx"}), json!({})),
                &classes,
                &nodes
            ),
            None
        );
        assert_eq!(
            plan(
                &ing(json!({}), json!({CLASS_ANNOTATION: "nginx"})),
                &classes,
                &nodes
            ),
            None
        );
        // Without a skiff class (server started with --disable ingress) nothing is ours.
        assert_eq!(plan(&ing(json!({}), json!({})), &[&nginx], &nodes), None);
    }
}
