//! The EndpointSlice controller: for every Service with a selector, discovery.k8s.io/v1
//! EndpointSlices `<svc>-<random>` (at most 100 endpoints each) listing the selected pods with
//! their ready/serving/terminating conditions, grouped by resolved port set, owned by the
//! Service — what `kubectl describe service` and service proxies read.

use crate::controller::{Action, Controller};
use crate::endpoints::{
    address_hostname, api_code, find_port, pod_ips, pod_node_name, pod_ready, pod_ref,
    port_protocol, rfc3339, selected_pods, service_ip_set, service_is_ipv6,
    should_pod_be_in_endpoints, PortKey, HEADLESS_LABEL, LAST_CHANGE_TRIGGER_TIME,
};
use crate::informer::{Factory, Store};
use crate::util::ObjectKey;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Label naming the Service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label naming the controller that manages a slice.
pub const MANAGED_BY_LABEL: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's `managed-by` value.
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Upstream's default `--max-endpoints-per-slice`.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;

/// The changes to one Service's slices.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SlicePlan {
    /// New slices (named by the server from `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Changed slices (full objects carrying their resourceVersion).
    pub update: Vec<EndpointSlice>,
    /// Names of slices to delete.
    pub delete: Vec<String>,
}

impl SlicePlan {
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// Whether a slice is one of this controller's slices for the Service.
pub fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.uid();
    slice.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
        && slice
            .owner_references()
            .iter()
            .any(|o| Some(&o.uid) == uid.as_ref() && o.kind == "Service" && o.api_version == "v1")
}

/// The endpoint of one pod (upstream's `podToEndpoint`).
pub fn pod_to_endpoint(pod: &Pod, svc: &Service, ipv6: bool) -> Endpoint {
    let serving = pod_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = svc
        .spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false);
    Endpoint {
        addresses: pod_ips(pod, ipv6),
        conditions: Some(EndpointConditions {
            ready: Some(publish || (serving && !terminating)),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: address_hostname(pod, svc),
        node_name: pod_node_name(pod),
        target_ref: Some(pod_ref(pod)),
        ..Default::default()
    }
}

/// The ports a pod offers for the Service (upstream's `getEndpointPorts`), sorted.
fn endpoint_ports(svc: &Service, pod: &Pod) -> Vec<PortKey> {
    let mut out: Vec<PortKey> = svc
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            find_port(pod, sp).map(|port| PortKey {
                name: sp.name.clone().unwrap_or_default(),
                port,
                protocol: port_protocol(sp),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect();
    out.sort();
    out
}

fn slice_ports(slice: &EndpointSlice) -> Vec<PortKey> {
    let mut out: Vec<PortKey> = slice
        .ports
        .iter()
        .flatten()
        .map(|p| PortKey {
            name: p.name.clone().unwrap_or_default(),
            port: p.port.unwrap_or(0),
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            app_protocol: p.app_protocol.clone(),
        })
        .collect();
    out.sort();
    out
}

fn to_slice_ports(ports: &[PortKey]) -> Option<Vec<EndpointPort>> {
    (!ports.is_empty()).then(|| {
        ports
            .iter()
            .map(|p| EndpointPort {
                name: Some(p.name.clone()),
                port: Some(p.port),
                protocol: Some(p.protocol.clone()),
                app_protocol: p.app_protocol.clone(),
            })
            .collect()
    })
}

/// The labels every slice of the Service carries (upstream's `setEndpointSliceLabels`).
pub fn slice_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc
        .labels()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                SERVICE_NAME_LABEL | MANAGED_BY_LABEL | HEADLESS_LABEL
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !service_ip_set(svc) {
        l.insert(HEADLESS_LABEL.to_string(), String::new());
    }
    l.insert(SERVICE_NAME_LABEL.to_string(), svc.name_any());
    l.insert(MANAGED_BY_LABEL.to_string(), CONTROLLER_NAME.to_string());
    l
}

fn endpoint_key(e: &Endpoint) -> String {
    e.target_ref
        .as_ref()
        .and_then(|r| r.uid.clone().or_else(|| r.name.clone()))
        .or_else(|| e.addresses.first().cloned())
        .unwrap_or_default()
}

fn new_slice(svc: &Service, address_type: &str, ports: &[PortKey]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", svc.name_any())),
            namespace: svc.namespace(),
            labels: Some(slice_labels(svc)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".to_string(),
                kind: "Service".to_string(),
                name: svc.name_any(),
                uid: svc.uid().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        address_type: address_type.to_string(),
        endpoints: Vec::new(),
        ports: to_slice_ports(ports),
    }
}

fn set_trigger(slice: &mut EndpointSlice, trigger: Option<Timestamp>) {
    let ann = slice.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => {
            ann.insert(LAST_CHANGE_TRIGGER_TIME.to_string(), rfc3339(t));
        }
        None => {
            ann.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if ann.is_empty() {
        slice.metadata.annotations = None;
    }
}

/// Plans a Service's slices from its selected pods and the slices it has now (upstream's
/// reconciler, simplified: endpoints stay in the slice they are in; new ones fill slices with
/// room, then new slices of at most `max` endpoints; an empty Service keeps one placeholder).
pub fn plan(
    svc: &Service,
    pods: &[&Pod],
    existing: &[&EndpointSlice],
    trigger: Option<Timestamp>,
    max: usize,
) -> SlicePlan {
    let max = max.max(1);
    let ipv6 = service_is_ipv6(svc);
    let address_type = if ipv6 { "IPv6" } else { "IPv4" };
    let labels = slice_labels(svc);
    // Desired endpoints, grouped by port set; sorted by pod name for stable placement.
    let mut sorted: Vec<&&Pod> = pods.iter().collect();
    sorted.sort_by_key(|p| p.name_any());
    let mut desired: BTreeMap<Vec<PortKey>, Vec<Endpoint>> = BTreeMap::new();
    for pod in sorted {
        if !should_pod_be_in_endpoints(pod, true) {
            continue;
        }
        let ep = pod_to_endpoint(pod, svc, ipv6);
        if ep.addresses.is_empty() {
            continue;
        }
        desired
            .entry(endpoint_ports(svc, pod))
            .or_default()
            .push(ep);
    }
    let mut out = SlicePlan::default();
    let mut mine: Vec<&EndpointSlice> = Vec::new();
    for s in existing {
        if s.address_type != address_type {
            out.delete.push(s.name_any());
        } else {
            mine.push(s);
        }
    }
    if desired.is_empty() {
        // Keep (or create) a single placeholder slice without endpoints.
        let placeholder = mine
            .iter()
            .find(|s| s.endpoints.is_empty() && s.ports.as_ref().is_none_or(Vec::is_empty));
        match placeholder {
            Some(p) => {
                if p.labels() != &labels {
                    let mut u = (*p).clone();
                    u.metadata.labels = Some(labels.clone());
                    set_trigger(&mut u, trigger);
                    out.update.push(u);
                }
                for s in &mine {
                    if s.name_any() != p.name_any() {
                        out.delete.push(s.name_any());
                    }
                }
            }
            None => {
                let mut s = new_slice(svc, address_type, &[]);
                set_trigger(&mut s, trigger);
                out.create.push(s);
                out.delete.extend(mine.iter().map(|s| s.name_any()));
            }
        }
        return out;
    }
    let mut kept: HashSet<String> = HashSet::new();
    for (ports, eps) in desired {
        let mut remaining: Vec<Endpoint> = eps;
        let mut wanted: HashMap<String, usize> = remaining
            .iter()
            .enumerate()
            .map(|(i, e)| (endpoint_key(e), i))
            .collect();
        let mut taken: HashSet<usize> = HashSet::new();
        let group: Vec<&&EndpointSlice> = mine.iter().filter(|s| slice_ports(s) == ports).collect();
        let mut to_update: Vec<EndpointSlice> = Vec::new();
        let mut unchanged: Vec<EndpointSlice> = Vec::new();
        for s in group {
            let mut changed = s.labels() != &labels;
            let mut kept = Vec::new();
            for e in &s.endpoints {
                match wanted.remove(&endpoint_key(e)) {
                    Some(i) => {
                        if remaining[i] != *e {
                            changed = true;
                        }
                        kept.push(remaining[i].clone());
                        taken.insert(i);
                    }
                    None => changed = true,
                }
            }
            if kept.is_empty() {
                out.delete.push(s.name_any());
                continue;
            }
            let mut u = (**s).clone();
            u.endpoints = kept;
            if changed {
                u.metadata.labels = Some(labels.clone());
                to_update.push(u);
            } else {
                unchanged.push(u);
            }
        }
        let mut i = 0;
        remaining = remaining
            .drain(..)
            .filter(|_| {
                let keep = !taken.contains(&i);
                i += 1;
                keep
            })
            .collect();
        // Fill the slices being updated anyway.
        for u in to_update.iter_mut() {
            while u.endpoints.len() < max && !remaining.is_empty() {
                u.endpoints.push(remaining.remove(0));
            }
        }
        // Then the unchanged slice that ends closest to full, then new slices.
        while !remaining.is_empty() {
            let chunk = remaining.len().min(max);
            let fit = unchanged
                .iter()
                .enumerate()
                .filter(|(_, s)| s.endpoints.len() + chunk <= max)
                .max_by_key(|(_, s)| s.endpoints.len())
                .map(|(i, _)| i);
            match fit {
                Some(i) => {
                    let mut s = unchanged.remove(i);
                    s.endpoints.extend(remaining.drain(..chunk));
                    s.metadata.labels = Some(labels.clone());
                    to_update.push(s);
                }
                None => {
                    let mut s = new_slice(svc, address_type, &ports);
                    s.endpoints.extend(remaining.drain(..chunk));
                    set_trigger(&mut s, trigger);
                    out.create.push(s);
                }
            }
        }
        for mut u in to_update {
            set_trigger(&mut u, trigger);
            out.update.push(u);
        }
        kept.extend(unchanged.iter().map(|s| s.name_any()));
    }
    // Slices whose port set no endpoint has any more.
    for s in &mine {
        let name = s.name_any();
        let handled = out.update.iter().any(|u| u.name_any() == name)
            || out.delete.contains(&name)
            || kept.contains(&name);
        if !handled {
            out.delete.push(name);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The control loop.
// ---------------------------------------------------------------------------------------------

/// Slices this controller wrote and the store has not caught up with yet:
/// service key → slice name → expected resourceVersion (`None`: expected gone).
type Expectations = HashMap<String, HashMap<String, Option<u64>>>;

struct Ctx {
    sel: crate::endpoints::Selection,
    slices: Arc<Store<EndpointSlice>>,
    expected: Mutex<Expectations>,
}

impl std::ops::Deref for Ctx {
    type Target = crate::endpoints::Selection;
    fn deref(&self) -> &Self::Target {
        &self.sel
    }
}

/// Whether this controller manages the slice (it watched only such slices before the
/// informers were shared).
fn managed(s: &EndpointSlice) -> bool {
    s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME)
}

/// Registers the EndpointSlice controller's handlers on the shared informers and spawns its
/// worker (it starts once the caches have synced).
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Ctx {
        sel: crate::endpoints::Selection::new(factory),
        slices: factory.store::<EndpointSlice>(),
        expected: Mutex::new(HashMap::new()),
    });
    let c = ctx.clone();
    Controller::new(factory, "endpointslice")
        .backoff(Duration::from_secs(1), Duration::from_secs(1))
        .reconciles::<Service>()
        .watches::<EndpointSlice, _>(|ch| {
            let s = ch.object();
            let svc = s.labels().get(SERVICE_NAME_LABEL).filter(|_| managed(s));
            svc.map(|svc| ObjectKey::new(s.namespace().unwrap_or_default(), svc))
        })
        .watches::<Pod, _>(move |ch| c.services_for(ch.object()))
        .run(ctx, |ctx: Arc<Ctx>, key: ObjectKey| async move {
            // `false`: the cache is behind this controller's writes, look again soon.
            let done = reconcile(&ctx, &key.to_string()).await?;
            let again = (!done).then_some(Duration::from_millis(200));
            Ok::<_, kube::Error>(Action::after(again))
        });
}

fn rv_of(s: &EndpointSlice) -> Option<u64> {
    s.resource_version().and_then(|r| r.parse().ok())
}

/// Whether the cache shows every write this controller made for the Service.
fn cache_caught_up(ctx: &Ctx, key: &str, current: &[&EndpointSlice]) -> bool {
    let Ok(mut exp) = ctx.expected.lock() else {
        return true;
    };
    let Some(want) = exp.get(key) else {
        return true;
    };
    let ok = want.iter().all(|(name, rv)| {
        let have = current.iter().find(|s| s.name_any() == *name);
        match (rv, have) {
            (None, None) => true,
            (None, Some(_)) => false,
            (Some(_), None) => false,
            (Some(rv), Some(s)) => rv_of(s).is_some_and(|h| h >= *rv),
        }
    });
    if ok {
        exp.remove(key);
    }
    ok
}

fn expect(ctx: &Ctx, key: &str, name: String, rv: Option<u64>) {
    if let Ok(mut exp) = ctx.expected.lock() {
        exp.entry(key.to_string()).or_default().insert(name, rv);
    }
}

/// Returns `Ok(false)` when the cache is behind and the key should be retried shortly.
async fn reconcile(ctx: &Ctx, key: &str) -> Result<bool, kube::Error> {
    let members = &ctx.members;
    let parsed = ObjectKey::parse(key);
    let (ns, name) = (parsed.namespace.as_str(), parsed.name.as_str());
    let svc = ctx.services.get(ns, name);
    let labelled: Vec<Arc<EndpointSlice>> = ctx.slices.list_filter(ns, |s| {
        managed(s) && s.labels().get(SERVICE_NAME_LABEL).map(String::as_str) == Some(name)
    });
    let current: Vec<&EndpointSlice> = labelled.iter().map(|s| s.as_ref()).collect();
    if !cache_caught_up(ctx, key, &current) {
        return Ok(false);
    }
    let api: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let Some(svc) = svc.filter(|s| {
        s.spec
            .as_ref()
            .and_then(|sp| sp.selector.as_ref())
            .is_some()
    }) else {
        if let Ok(mut m) = members.lock() {
            m.remove(key);
        }
        if let Ok(mut t) = ctx.tracker.lock() {
            t.forget(key);
        }
        // The Service is gone (or lost its selector): its slices go with it (the garbage
        // collector would do the same through the ownerReference).
        let gone = ctx.services.get(ns, name).is_none();
        if gone {
            for s in &current {
                delete(&api, &s.name_any()).await?;
                expect(ctx, key, s.name_any(), None);
            }
        }
        return Ok(true);
    };
    let all_pods = ctx.pods.list(ns);
    let pods = selected_pods(&svc, all_pods.iter().map(|p| p.as_ref()));
    if let Ok(mut m) = members.lock() {
        m.insert(key.to_string(), pods.iter().map(|p| p.name_any()).collect());
    }
    let trigger = ctx
        .tracker
        .lock()
        .ok()
        .and_then(|mut t| t.compute(key, &svc, &pods));
    // Slices labelled for the Service but not ours (another manager, or a stale owner) are
    // left alone unless they carry our managed-by label and a stale owner.
    let mut existing = Vec::new();
    for s in &current {
        if owned_by(s, &svc) {
            existing.push(*s);
        } else if s.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(CONTROLLER_NAME) {
            delete(&api, &s.name_any()).await?;
            expect(ctx, key, s.name_any(), None);
        }
    }
    let p = plan(&svc, &pods, &existing, trigger, MAX_ENDPOINTS_PER_SLICE);
    for name in &p.delete {
        delete(&api, name).await?;
        expect(ctx, key, name.clone(), None);
    }
    for s in &p.update {
        match api.replace(&s.name_any(), &PostParams::default(), s).await {
            Ok(o) => expect(ctx, key, o.name_any(), rv_of(&o)),
            Err(e) if api_code(&e) == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    for s in &p.create {
        match api.create(&PostParams::default(), s).await {
            Ok(o) => expect(ctx, key, o.name_any(), rv_of(&o)),
            // The namespace is terminating.
            Err(e) if api_code(&e) == Some(403) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

async fn delete(api: &Api<EndpointSlice>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if api_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::tests::{pod, service, sport};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    fn named(mut s: EndpointSlice, name: &str) -> EndpointSlice {
        s.metadata.name = Some(name.to_string());
        s.metadata.resource_version = Some("1".into());
        s
    }

    #[test]
    fn one_slice_with_conditions_labels_and_owner() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(8080))]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let b = pod("b", "10.42.0.2", false, &[]);
        let mut t = pod("t", "10.42.0.3", true, &[]);
        t.metadata.deletion_timestamp = Some(Time("2025-01-01T00:01:00Z".parse().unwrap()));
        let p = plan(&svc, &[&a, &b, &t], &[], None, MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(p.create.len(), 1);
        let s = &p.create[0];
        assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
        assert_eq!(s.address_type, "IPv4");
        assert_eq!(
            s.labels().get(SERVICE_NAME_LABEL).map(String::as_str),
            Some("web")
        );
        assert_eq!(
            s.labels().get(MANAGED_BY_LABEL).map(String::as_str),
            Some(CONTROLLER_NAME)
        );
        assert_eq!(s.labels().get("tier").map(String::as_str), Some("front"));
        let o = &s.owner_references()[0];
        assert_eq!(
            (o.kind.as_str(), o.uid.as_str(), o.controller),
            ("Service", "svc-uid", Some(true))
        );
        let conds: Vec<(bool, bool, bool)> = s
            .endpoints
            .iter()
            .map(|e| {
                let c = e.conditions.as_ref().unwrap();
                (c.ready.unwrap(), c.serving.unwrap(), c.terminating.unwrap())
            })
            .collect();
        assert_eq!(
            conds,
            [
                (true, true, false),
                (false, false, false),
                (false, true, true)
            ]
        );
        assert_eq!(s.endpoints[0].node_name.as_deref(), Some("n1"));
        assert_eq!(s.ports.as_ref().unwrap()[0].port, Some(8080));
    }

    #[test]
    fn at_most_max_endpoints_per_slice() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        let pods: Vec<Pod> = (0..250)
            .map(|i| {
                pod(
                    &format!("p{i:03}"),
                    &format!("10.42.{}.{}", i / 200, i % 200 + 1),
                    true,
                    &[],
                )
            })
            .collect();
        let refs: Vec<&Pod> = pods.iter().collect();
        let p = plan(&svc, &refs, &[], None, MAX_ENDPOINTS_PER_SLICE);
        let sizes: Vec<usize> = p.create.iter().map(|s| s.endpoints.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
    }

    #[test]
    fn pods_lacking_a_named_port_go_to_another_slice() {
        let svc = service(vec![sport("web", 80, IntOrString::String("http".into()))]);
        let a = pod("a", "10.42.0.1", true, &[("http", 8080)]);
        let c = pod("c", "10.42.0.3", true, &[]);
        let p = plan(&svc, &[&a, &c], &[], None, MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(p.create.len(), 2);
        assert!(p
            .create
            .iter()
            .any(|s| s.ports.is_none() && s.endpoints.len() == 1));
    }

    #[test]
    fn steady_state_is_a_no_op_and_changes_update_in_place() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let p = plan(&svc, &[&a], &[], None, MAX_ENDPOINTS_PER_SLICE);
        let s = named(p.create[0].clone(), "web-abcde");
        assert!(plan(&svc, &[&a], &[&s], None, MAX_ENDPOINTS_PER_SLICE).is_empty());
        // A new pod joins the existing slice.
        let b = pod("b", "10.42.0.2", true, &[]);
        let p = plan(&svc, &[&a, &b], &[&s], None, MAX_ENDPOINTS_PER_SLICE);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.update[0].name_any(), "web-abcde");
        assert_eq!(p.update[0].endpoints.len(), 2);
        // All pods gone: the slice becomes a placeholder.
        let p = plan(&svc, &[], &[&s], None, MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(p.create.len(), 1);
        assert!(p.create[0].endpoints.is_empty());
        assert_eq!(p.delete, ["web-abcde"]);
        // An existing placeholder is kept.
        let ph = named(p.create[0].clone(), "web-fghij");
        assert!(plan(&svc, &[], &[&ph], None, MAX_ENDPOINTS_PER_SLICE).is_empty());
        // A pod appears: the placeholder is replaced.
        let p = plan(&svc, &[&a], &[&ph], None, MAX_ENDPOINTS_PER_SLICE);
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.delete, ["web-fghij"]);
    }

    #[test]
    fn readiness_change_updates_the_endpoint() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let s = named(
            plan(&svc, &[&a], &[], None, 100).create[0].clone(),
            "web-x1",
        );
        let a2 = pod("a", "10.42.0.1", false, &[]);
        let p = plan(&svc, &[&a2], &[&s], None, 100);
        assert_eq!(p.update.len(), 1);
        assert_eq!(
            p.update[0].endpoints[0].conditions.as_ref().unwrap().ready,
            Some(false)
        );
    }
}
