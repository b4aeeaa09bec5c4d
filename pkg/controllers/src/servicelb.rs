//! ServiceLB (k3s's klipper-lb contract, without pods): every `type: LoadBalancer` Service
//! without a `loadBalancerClass` is served by the service proxy of each eligible node on that
//! node's own addresses, and this controller publishes those addresses in
//! `status.loadBalancer.ingress`. Eligible nodes are the Ready ones — all of them, or only
//! those labelled `svccontroller.skiff.io/enablelb=true` once any node carries the label. A
//! port another (older) LoadBalancer Service already holds leaves the Service pending, with a
//! Warning event saying which Service holds it.

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Factory, Store};
use crate::util::{key_of, patch_status, ObjectKey};
use k8s_openapi::api::core::v1::{Node, Service};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// Node label selecting the nodes that serve load balancers (allow-list mode when present).
pub const ENABLE_LB_LABEL: &str = "svccontroller.skiff.io/enablelb";

/// What the controller decided for one Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not ours (not a LoadBalancer, or another class): leave alone; `clear` when it still
    /// carries ingress addresses from when it was ours.
    NotOurs { clear: bool },
    /// Publish these addresses (sorted).
    Ingress(Vec<String>),
    /// No address: why (the Warning event's reason and message).
    Pending {
        reason: &'static str,
        message: String,
    },
}

fn is_ready(n: &Node) -> bool {
    n.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The nodes that serve load balancers.
pub fn eligible_nodes<'a>(nodes: &[&'a Node]) -> Vec<&'a Node> {
    let label = |n: &Node| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ENABLE_LB_LABEL))
            .cloned()
    };
    let allow_list = nodes.iter().any(|n| label(n).is_some());
    nodes
        .iter()
        .copied()
        .filter(|n| is_ready(n))
        .filter(|n| !allow_list || label(n).as_deref() == Some("true"))
        .collect()
}

/// The addresses load balancers are published on: the nodes' ExternalIPs when any node has
/// one, else their InternalIPs.
fn node_ips(nodes: &[&Node]) -> Vec<String> {
    let addrs = |kind: &str| -> Vec<String> {
        nodes
            .iter()
            .flat_map(|n| {
                n.status
                    .as_ref()
                    .and_then(|s| s.addresses.clone())
                    .unwrap_or_default()
            })
            .filter(|a| a.type_ == kind)
            .map(|a| a.address)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let ext = addrs("ExternalIP");
    if ext.is_empty() {
        addrs("InternalIP")
    } else {
        ext
    }
}

fn wants_lb(s: &Service) -> bool {
    s.spec.as_ref().is_some_and(|sp| {
        sp.type_.as_deref() == Some("LoadBalancer") && sp.load_balancer_class.is_none()
    })
}

fn ports(s: &Service) -> Vec<(i32, String)> {
    s.spec
        .as_ref()
        .and_then(|sp| sp.ports.as_ref())
        .into_iter()
        .flatten()
        .map(|p| (p.port, p.protocol.clone().unwrap_or_else(|| "TCP".into())))
        .collect()
}

fn age_key(s: &Service) -> (String, String, String) {
    (
        s.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        s.metadata.namespace.clone().unwrap_or_default(),
        s.metadata.name.clone().unwrap_or_default(),
    )
}

fn has_ingress(s: &Service) -> bool {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .is_some_and(|i| !i.is_empty())
}

/// Decides the load-balancer status of `svc` given every Service and Node. Every LoadBalancer
/// Service is served on all eligible nodes, so a port held by an older one is taken on every
/// eligible node.
pub fn plan(svc: &Service, services: &[&Service], nodes: &[&Node]) -> Decision {
    if !wants_lb(svc) {
        return Decision::NotOurs {
            clear: has_ingress(svc)
                && svc
                    .spec
                    .as_ref()
                    .is_none_or(|s| s.load_balancer_class.is_none()),
        };
    }
    let mine = age_key(svc);
    for (port, proto) in ports(svc) {
        let holder = services
            .iter()
            .filter(|o| wants_lb(o) && age_key(o) < mine)
            .find(|o| ports(o).contains(&(port, proto.clone())));
        if let Some(h) = holder {
            return Decision::Pending {
                reason: "PortInUse",
                message: format!(
                    "port {port}/{proto} is already used by LoadBalancer service {}/{} on every eligible node; use another port or delete that service",
                    h.metadata.namespace.as_deref().unwrap_or(""),
                    h.metadata.name.as_deref().unwrap_or("")
                ),
            };
        }
    }
    let ips = node_ips(&eligible_nodes(nodes));
    if ips.is_empty() {
        return Decision::Pending {
            reason: "UnAvailableLoadBalancer",
            message: "There are no available nodes for LoadBalancer".into(),
        };
    }
    Decision::Ingress(ips)
}

fn current_ips(s: &Service) -> Vec<String> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.clone())
        .collect()
}

struct Ctx {
    client: kube::Client,
    recorder: Recorder,
    services: Arc<Store<Service>>,
    nodes: Arc<Store<Node>>,
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, kube::Error> {
    let Some(svc) = ctx.services.get(&key.namespace, &key.name) else {
        return Ok(Action::Done);
    };
    let all = ctx.services.all();
    let refs: Vec<&Service> = all.iter().map(|s| s.as_ref()).collect();
    let nodes = ctx.nodes.all();
    let node_refs: Vec<&Node> = nodes.iter().map(|n| n.as_ref()).collect();
    let current = current_ips(&svc);
    match plan(&svc, &refs, &node_refs) {
        Decision::NotOurs { clear: false } => {}
        Decision::NotOurs { clear: true } => {
            patch_status(
                &ctx.client,
                svc.as_ref(),
                serde_json::json!({"loadBalancer": {"ingress": null}}),
            )
            .await?;
        }
        Decision::Ingress(ips) => {
            if ips != current {
                let ingress: Vec<_> = ips
                    .iter()
                    .map(|ip| serde_json::json!({"ip": ip, "ipMode": "VIP"}))
                    .collect();
                patch_status(
                    &ctx.client,
                    svc.as_ref(),
                    serde_json::json!({"loadBalancer": {"ingress": ingress}}),
                )
                .await?;
                let msg = format!("Updated LoadBalancer with new IPs: {current:?} -> {ips:?}");
                ctx.recorder
                    .record(svc.as_ref(), "Normal", "UpdatedLoadBalancer", &msg)
                    .await;
            }
        }
        Decision::Pending { reason, message } => {
            if !current.is_empty() {
                patch_status(
                    &ctx.client,
                    svc.as_ref(),
                    serde_json::json!({"loadBalancer": {"ingress": null}}),
                )
                .await?;
            }
            ctx.recorder
                .record(svc.as_ref(), "Warning", reason, &message)
                .await;
        }
    }
    Ok(Action::Done)
}

/// Registers the controller (unless `--disable servicelb`).
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    if !cfg.service_lb {
        return;
    }
    let services = factory.store::<Service>();
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        recorder: Recorder::new(factory.client(), "service-lb-controller"),
        services: services.clone(),
        nodes: factory.store::<Node>(),
    });
    let all_lb = {
        let services = services.clone();
        move || -> Vec<ObjectKey> {
            services
                .filter(|s| wants_lb(s) || has_ingress(s))
                .iter()
                .map(|s| key_of(s.as_ref()))
                .collect()
        }
    };
    let on_node = all_lb.clone();
    let on_service = all_lb.clone();
    Controller::new(factory, "servicelb")
        .backoff(Duration::from_millis(500), Duration::from_secs(30))
        .resync_keys(all_lb)
        .resync(Duration::from_secs(60))
        // A Service change can free or take a port other LoadBalancers wait for.
        .watches::<Service, _>(move |c| {
            let s = c.object();
            if wants_lb(s) || has_ingress(s) {
                on_service()
            } else {
                Vec::new()
            }
        })
        // Only readiness, labels and addresses matter; the store's state is read at reconcile.
        .watches::<Node, _>(move |_| on_node())
        .run(ctx, reconcile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lb(name: &str, port: i32, created: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": {"type": "LoadBalancer", "ports": [{"port": port, "protocol": "TCP"}]},
        }))
        .unwrap()
    }

    fn node(name: &str, ip: &str, ready: bool, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
            },
        }))
        .unwrap()
    }

    #[test]
    fn ingress_is_every_ready_node_sorted() {
        let s = lb("web", 8080, "2026-01-01T00:00:00Z");
        let nodes = [
            node("b", "192.0.2.2", true, json!({})),
            node("a", "192.0.2.1", true, json!({})),
            node("c", "192.0.2.3", false, json!({})),
        ];
        let n: Vec<&Node> = nodes.iter().collect();
        assert_eq!(
            plan(&s, &[&s], &n),
            Decision::Ingress(vec!["192.0.2.1".into(), "192.0.2.2".into()])
        );
    }

    #[test]
    fn enablelb_label_switches_to_allow_list() {
        let s = lb("web", 8080, "2026-01-01T00:00:00Z");
        let nodes = [
            node("a", "192.0.2.1", true, json!({ENABLE_LB_LABEL: "true"})),
            node("b", "192.0.2.2", true, json!({})),
            node("c", "192.0.2.3", true, json!({ENABLE_LB_LABEL: "false"})),
        ];
        let n: Vec<&Node> = nodes.iter().collect();
        assert_eq!(
            plan(&s, &[&s], &n),
            Decision::Ingress(vec!["192.0.2.1".into()])
        );
    }

    #[test]
    fn taken_port_leaves_the_newer_service_pending() {
        let old = lb("old", 8080, "2026-01-01T00:00:00Z");
        let new = lb("new", 8080, "2026-01-02T00:00:00Z");
        let other = lb("other", 9090, "2026-01-03T00:00:00Z");
        let nodes = [node("a", "192.0.2.1", true, json!({}))];
        let n: Vec<&Node> = nodes.iter().collect();
        let all = [&old, &new, &other];
        assert_eq!(
            plan(&old, &all, &n),
            Decision::Ingress(vec!["192.0.2.1".into()])
        );
        assert_eq!(
            plan(&other, &all, &n),
            Decision::Ingress(vec!["192.0.2.1".into()])
        );
        match plan(&new, &all, &n) {
            Decision::Pending { reason, message } => {
                assert_eq!(reason, "PortInUse");
                assert!(
                    message.contains("port 8080/TCP") && message.contains("default/old"),
                    "{message}"
                );
            }
            d => panic!("{d:?}"),
        }
    }

    #[test]
    fn no_nodes_pending_and_non_lb_cleared() {
        let s = lb("web", 80, "2026-01-01T00:00:00Z");
        assert!(matches!(
            plan(&s, &[&s], &[]),
            Decision::Pending {
                reason: "UnAvailableLoadBalancer",
                ..
            }
        ));
        let mut c = s.clone();
        c.spec.as_mut().unwrap().type_ = Some("ClusterIP".into());
        assert_eq!(plan(&c, &[&c], &[]), Decision::NotOurs { clear: false });
        c.status =
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}))
                .unwrap();
        assert_eq!(plan(&c, &[&c], &[]), Decision::NotOurs { clear: true });
        let mut classed = s.clone();
        classed.spec.as_mut().unwrap().load_balancer_class = Some("example.com/lb".into());
        assert_eq!(
            plan(&classed, &[&classed], &[]),
            Decision::NotOurs { clear: false }
        );
    }
}
