//! The Endpoints controller: for every Service with a selector, an Endpoints object of the same
//! name listing the selected pods' addresses (ready and not ready) and their resolved ports, as
//! upstream's endpoints controller does. Also home of the small helpers the infrastructure
//! controllers (endpoints, endpointslice, namespace, node lifecycle, service account) share.

use crate::controller::{Action, Controller};
use crate::events::Recorder;
use crate::informer::{Factory, Store};
use crate::util::{key_of, ObjectKey};
use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, Endpoints, ObjectReference, Pod, Service,
    ServicePort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Annotation: when the change that this Endpoints/EndpointSlice reflects happened.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Annotation set when more than [`MAX_CAPACITY`] addresses had to be dropped.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Label on the Endpoints/EndpointSlices of a headless Service.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Annotation of leader-election records kept in Endpoints objects.
pub const LEADER_ANNOTATION: &str = "control-plane.alpha.kubernetes.io/leader";
/// At most this many addresses in one Endpoints object (upstream's `maxCapacity`).
pub const MAX_CAPACITY: usize = 1000;

// ---------------------------------------------------------------------------------------------
// Shared helpers of the infrastructure controllers.
// ---------------------------------------------------------------------------------------------

/// The HTTP status code of an API error, if the error came from the server.
pub(crate) fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// A map selector (Service `spec.selector`) matches labels when every pair is present.
pub(crate) use skiff_api::matchers::labels::map_selector_matches as selector_matches;

/// Whether the pod's Ready condition is True.
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod_ready_condition(pod).is_some_and(|c| c.status == "True")
}

fn pod_ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
}

// ---------------------------------------------------------------------------------------------
// Pure planning core (shared with the EndpointSlice controller).
// ---------------------------------------------------------------------------------------------

/// Upstream's `ShouldPodBeInEndpoints`: not terminal, has an IP, and not terminating unless
/// `include_terminating` (EndpointSlices list terminating pods with conditions).
pub fn should_pod_be_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    if phase == "Succeeded" || phase == "Failed" {
        return false;
    }
    let has_ip = status.is_some_and(|s| {
        s.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
            || s.pod_ips.as_ref().is_some_and(|ips| !ips.is_empty())
    });
    if !has_ip {
        return false;
    }
    include_terminating || pod.metadata.deletion_timestamp.is_none()
}

/// The service port's protocol (defaulted TCP).
pub(crate) fn port_protocol(p: &ServicePort) -> String {
    p.protocol.clone().unwrap_or_else(|| "TCP".to_string())
}

/// Upstream's `FindPort`: a numeric targetPort is used as is (unset means `port`); a named one
/// is looked up among the pod's container ports (and restartable init containers) with the
/// same protocol. `None` when the pod has no such port.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    match &sp.target_port {
        None => Some(sp.port),
        Some(IntOrString::Int(n)) => Some(*n),
        Some(IntOrString::String(name)) => {
            let proto = port_protocol(sp);
            let spec = pod.spec.as_ref()?;
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == proto
                })
                .map(|p| p.container_port)
        }
    }
}

/// Whether the Service has a cluster IP (not headless).
pub(crate) fn service_ip_set(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != "None"
}

/// Whether the Service's primary IP family is IPv6.
pub(crate) fn service_is_ipv6(svc: &Service) -> bool {
    let spec = svc.spec.as_ref();
    if let Some(f) = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
    {
        return f == "IPv6";
    }
    spec.and_then(|s| s.cluster_ip.as_deref())
        .is_some_and(|ip| ip.contains(':'))
}

/// The pod's IPs of one family (from `podIPs`, else `podIP`).
pub(crate) fn pod_ips(pod: &Pod, ipv6: bool) -> Vec<String> {
    let Some(st) = pod.status.as_ref() else {
        return Vec::new();
    };
    let mut ips: Vec<String> = st.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect();
    if ips.is_empty() {
        ips.extend(st.pod_ip.clone().filter(|ip| !ip.is_empty()));
    }
    ips.retain(|ip| ip.contains(':') == ipv6);
    ips
}

/// Upstream's `ShouldSetHostname`: the pod names this Service as its subdomain.
pub(crate) fn should_set_hostname(pod: &Pod, svc: &Service) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.hostname.as_deref().is_some_and(|h| !h.is_empty())
        && spec.subdomain.as_deref() == Some(svc.name_any().as_str())
        && pod.namespace() == svc.namespace()
}

/// The hostname an address of `pod` in `svc` carries (when [`should_set_hostname`]).
pub(crate) fn address_hostname(pod: &Pod, svc: &Service) -> Option<String> {
    should_set_hostname(pod, svc)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten()
}

/// The node a pod runs on, if it is bound.
pub(crate) fn pod_node_name(pod: &Pod) -> Option<String> {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
}

/// The reference to a pod that addresses carry.
pub(crate) fn pod_ref(pod: &Pod) -> ObjectReference {
    ObjectReference {
        kind: Some("Pod".to_string()),
        namespace: pod.namespace(),
        name: Some(pod.name_any()),
        uid: pod.uid(),
        ..Default::default()
    }
}

fn service_selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec.as_ref().and_then(|s| s.selector.as_ref())
}

/// The pods (of the Service's namespace) its selector picks.
pub fn selected_pods<'a>(svc: &Service, pods: impl IntoIterator<Item = &'a Pod>) -> Vec<&'a Pod> {
    let Some(sel) = service_selector(svc) else {
        return Vec::new();
    };
    let ns = svc.namespace();
    pods.into_iter()
        .filter(|p| p.namespace() == ns && selector_matches(sel, p.labels()))
        .collect()
}

/// The canonical subsets of a Service's Endpoints: for each pod (ready → `addresses`, else
/// `notReadyAddresses`; all ready with `publishNotReadyAddresses`) and each service port the
/// pod resolves, repacked so that ports offered by the same addresses share one subset.
pub fn desired_subsets(svc: &Service, pods: &[&Pod]) -> Vec<EndpointSubset> {
    let spec = svc.spec.clone().unwrap_or_default();
    let publish_not_ready = spec.publish_not_ready_addresses.unwrap_or(false);
    let headless = spec.cluster_ip.as_deref() == Some("None");
    let ports = spec.ports.unwrap_or_default();
    let ipv6 = service_is_ipv6(svc);
    // port (None = the headless "no ports" marker) → (address key → (address, ready))
    type AddrMap = BTreeMap<(String, String), (EndpointAddress, bool)>;
    let mut by_port: BTreeMap<Option<PortKey>, AddrMap> = BTreeMap::new();
    for pod in pods {
        if !should_pod_be_in_endpoints(pod, false) {
            continue;
        }
        let Some(ip) = pod_ips(pod, ipv6).into_iter().next() else {
            continue;
        };
        let addr = EndpointAddress {
            ip: ip.clone(),
            hostname: address_hostname(pod, svc),
            node_name: pod_node_name(pod),
            target_ref: Some(pod_ref(pod)),
        };
        let ready = publish_not_ready || pod_ready(pod);
        let akey = (ip, pod.uid().unwrap_or_default());
        if ports.is_empty() {
            if headless {
                by_port.entry(None).or_default().insert(akey, (addr, ready));
            }
            continue;
        }
        for sp in &ports {
            let Some(num) = find_port(pod, sp) else {
                continue;
            };
            let pk = PortKey {
                name: sp.name.clone().unwrap_or_default(),
                port: num,
                protocol: port_protocol(sp),
                app_protocol: sp.app_protocol.clone(),
            };
            by_port
                .entry(Some(pk))
                .or_default()
                .insert(akey.clone(), (addr.clone(), ready));
        }
    }
    // Group the ports that the very same addresses (with the same readiness) offer.
    // (address signature, addresses, ports offered by exactly those addresses)
    type Group = (Vec<((String, String), bool)>, AddrMap, Vec<PortKey>);
    let mut groups: Vec<Group> = Vec::new();
    for (pk, addrs) in by_port {
        let sig: Vec<((String, String), bool)> =
            addrs.iter().map(|(k, (_, r))| (k.clone(), *r)).collect();
        match groups.iter_mut().find(|(s, _, _)| *s == sig) {
            Some((_, _, ps)) => ps.extend(pk),
            None => groups.push((sig, addrs, pk.into_iter().collect())),
        }
    }
    let mut subsets: Vec<EndpointSubset> = groups
        .into_iter()
        .map(|(_, addrs, mut ports)| {
            ports.sort();
            let (mut ready, mut not_ready): (Vec<_>, Vec<_>) =
                addrs.into_values().partition(|(_, r)| *r);
            let sort = |v: &mut Vec<(EndpointAddress, bool)>| {
                v.sort_by(|a, b| {
                    ip_sort_key(&a.0.ip)
                        .cmp(&ip_sort_key(&b.0.ip))
                        .then_with(|| uid_of(&a.0).cmp(uid_of(&b.0)))
                })
            };
            sort(&mut ready);
            sort(&mut not_ready);
            let list = |v: Vec<(EndpointAddress, bool)>| {
                let v: Vec<EndpointAddress> = v.into_iter().map(|(a, _)| a).collect();
                (!v.is_empty()).then_some(v)
            };
            EndpointSubset {
                addresses: list(ready),
                not_ready_addresses: list(not_ready),
                ports: (!ports.is_empty())
                    .then(|| ports.into_iter().map(PortKey::into_endpoint_port).collect()),
            }
        })
        .collect();
    subsets.sort_by_key(subset_sort_key);
    subsets
}

fn uid_of(a: &EndpointAddress) -> &str {
    a.target_ref
        .as_ref()
        .and_then(|r| r.uid.as_deref())
        .unwrap_or("")
}

/// Sorts IPv4 addresses numerically (10.42.0.9 before 10.42.0.10), others as text.
fn ip_sort_key(ip: &str) -> (u8, u128, String) {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => (4, u32::from(v4) as u128, String::new()),
        Ok(std::net::IpAddr::V6(v6)) => (6, u128::from(v6), String::new()),
        Err(_) => (9, 0, ip.to_string()),
    }
}

fn subset_sort_key(s: &EndpointSubset) -> (u8, u128, String, i32) {
    let first = s
        .addresses
        .iter()
        .flatten()
        .chain(s.not_ready_addresses.iter().flatten())
        .next()
        .map(|a| ip_sort_key(&a.ip))
        .unwrap_or((0, 0, String::new()));
    let port = s
        .ports
        .as_ref()
        .and_then(|p| p.first())
        .map(|p| p.port)
        .unwrap_or(0);
    (first.0, first.1, first.2, port)
}

/// One resolved endpoint port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PortKey {
    pub name: String,
    pub port: i32,
    pub protocol: String,
    pub app_protocol: Option<String>,
}

impl PortKey {
    fn into_endpoint_port(self) -> EndpointPort {
        EndpointPort {
            name: (!self.name.is_empty()).then_some(self.name),
            port: self.port,
            protocol: Some(self.protocol),
            app_protocol: self.app_protocol,
        }
    }
}

/// Upstream's `truncateEndpoints`: keeps at most [`MAX_CAPACITY`] addresses, ready ones first,
/// each subset keeping its proportional share. Returns whether anything was dropped.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let total_ready: usize = subsets
        .iter()
        .map(|s| s.addresses.as_ref().map_or(0, Vec::len))
        .sum();
    let total_not_ready: usize = subsets
        .iter()
        .map(|s| s.not_ready_addresses.as_ref().map_or(0, Vec::len))
        .sum();
    if total_ready + total_not_ready <= MAX_CAPACITY {
        return false;
    }
    let truncate_ready = total_ready > MAX_CAPACITY;
    let (max, num_total) = if truncate_ready {
        (MAX_CAPACITY, total_ready)
    } else {
        (MAX_CAPACITY - total_ready, total_not_ready)
    };
    let mut can_be_added = max;
    for s in subsets.iter_mut() {
        let in_subset = if truncate_ready {
            s.addresses.as_ref().map_or(0, Vec::len)
        } else {
            s.not_ready_addresses.as_ref().map_or(0, Vec::len)
        };
        let share = ((in_subset as f64 / num_total as f64) * max as f64).ceil() as usize;
        let to_add = share.min(can_be_added);
        if truncate_ready {
            if let Some(a) = s.addresses.as_mut() {
                a.truncate(to_add);
                can_be_added -= a.len();
            }
            s.not_ready_addresses = None;
        } else if let Some(a) = s.not_ready_addresses.as_mut() {
            a.truncate(to_add);
            can_be_added -= a.len();
        }
    }
    true
}

/// The trigger-time bookkeeping of upstream's `TriggerTimeTracker`: the time of the earliest
/// change (a pod's Ready transition, or the Service's creation) not yet reflected.
#[derive(Debug, Default)]
pub struct TriggerTimeTracker {
    states: HashMap<String, TrackerState>,
}

#[derive(Debug, Default, Clone)]
struct TrackerState {
    pods: HashMap<String, Timestamp>,
    service: Option<Timestamp>,
}

impl TriggerTimeTracker {
    /// The last-change trigger time for the Service `key` given its current pods; `None` when
    /// nothing changed since the previous call.
    pub fn compute(&mut self, key: &str, svc: &Service, pods: &[&Pod]) -> Option<Timestamp> {
        let known = self.states.get(key).cloned();
        let prev = known.clone().unwrap_or_default();
        let mut min_changed: Option<Timestamp> = None;
        let mut pod_times = HashMap::new();
        for pod in pods {
            let Some(t) = pod_ready_condition(pod)
                .and_then(|c| c.last_transition_time.as_ref())
                .map(|t| t.0)
            else {
                continue;
            };
            let name = pod.name_any();
            if prev.pods.get(&name).is_none_or(|old| t > *old) {
                min_changed = Some(min_changed.map_or(t, |m: Timestamp| m.min(t)));
            }
            pod_times.insert(name, t);
        }
        let svc_time = svc.metadata.creation_timestamp.as_ref().map(|t| t.0);
        if let Some(t) = svc_time {
            if prev.service.is_none_or(|old| t > old) {
                min_changed = Some(min_changed.map_or(t, |m: Timestamp| m.min(t)));
            }
        }
        self.states.insert(
            key.to_string(),
            TrackerState {
                pods: pod_times,
                service: svc_time,
            },
        );
        if known.is_none() {
            return svc_time;
        }
        min_changed
    }

    /// Forgets a deleted Service.
    pub fn forget(&mut self, key: &str) {
        self.states.remove(key);
    }
}

/// What to do with a Service's Endpoints.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    None,
    Create(Endpoints),
    Update(Endpoints),
    Delete { namespace: String, name: String },
}

/// The labels an Endpoints object carries: the Service's, plus the headless marker.
fn endpoints_labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.labels().clone();
    if service_ip_set(svc) {
        l.remove(HEADLESS_LABEL);
    } else {
        l.insert(HEADLESS_LABEL.to_string(), String::new());
    }
    l
}

/// Plans the Endpoints of one Service key. `svc` is `None` once the Service is gone;
/// `trigger` is the tracker's last-change time.
pub fn plan(
    svc: Option<&Service>,
    pods: &[&Pod],
    current: Option<&Endpoints>,
    trigger: Option<Timestamp>,
) -> Change {
    let Some(svc) = svc else {
        return match current {
            // Leader-election records live in Endpoints without a Service (upstream skips them).
            Some(ep) if ep.annotations().contains_key(LEADER_ANNOTATION) => Change::None,
            Some(ep) => Change::Delete {
                namespace: ep.namespace().unwrap_or_default(),
                name: ep.name_any(),
            },
            None => Change::None,
        };
    };
    if service_selector(svc).is_none() {
        // Endpoints of selector-less Services are managed by their users.
        return Change::None;
    }
    let mut subsets = desired_subsets(svc, pods);
    let labels = endpoints_labels(svc);
    let cur_subsets = current.and_then(|c| c.subsets.clone()).unwrap_or_default();
    let cur_labels = current.map(|c| c.labels().clone()).unwrap_or_default();
    let cur_over = current.is_some_and(|c| c.annotations().contains_key(OVER_CAPACITY));
    let truncated = truncate(&mut subsets);
    if current.is_some() && cur_subsets == subsets && cur_labels == labels && cur_over == truncated
    {
        return Change::None;
    }
    let mut annotations = current.map(|c| c.annotations().clone()).unwrap_or_default();
    match trigger {
        Some(t) => {
            annotations.insert(LAST_CHANGE_TRIGGER_TIME.to_string(), rfc3339(t));
        }
        None => {
            annotations.remove(LAST_CHANGE_TRIGGER_TIME);
        }
    }
    if truncated {
        annotations.insert(OVER_CAPACITY.to_string(), "truncated".to_string());
    } else {
        annotations.remove(OVER_CAPACITY);
    }
    let mut ep = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: Some(svc.name_any()),
            namespace: svc.namespace(),
            ..Default::default()
        },
        ..Default::default()
    });
    ep.metadata.labels = (!labels.is_empty()).then_some(labels);
    ep.metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    ep.subsets = (!subsets.is_empty()).then_some(subsets);
    if current.is_some() {
        Change::Update(ep)
    } else {
        Change::Create(ep)
    }
}

/// RFC 3339 with nanoseconds when present (upstream's `RFC3339Nano`).
pub(crate) fn rfc3339(t: Timestamp) -> String {
    t.to_string()
}

// ---------------------------------------------------------------------------------------------
// The control loop.
// ---------------------------------------------------------------------------------------------

/// What the Endpoints and EndpointSlice controllers both keep: the Service and Pod caches,
/// which pods each Service last selected, and the trigger-time tracker.
pub(crate) struct Selection {
    pub client: kube::Client,
    pub services: Arc<Store<Service>>,
    pub pods: Arc<Store<Pod>>,
    pub tracker: Mutex<TriggerTimeTracker>,
    pub members: Membership,
}

impl Selection {
    pub fn new(factory: &Factory) -> Self {
        Selection {
            client: factory.client(),
            services: factory.store(),
            pods: factory.store(),
            tracker: Mutex::default(),
            members: Membership::default(),
        }
    }

    /// The Services (keys) that select `pod` now or listed it before.
    pub fn services_for(&self, pod: &Pod) -> Vec<ObjectKey> {
        services_for_pod(&self.services, &self.members, pod)
    }
}

struct Ctx {
    sel: Selection,
    endpoints: Arc<Store<Endpoints>>,
    recorder: Recorder,
}

impl std::ops::Deref for Ctx {
    type Target = Selection;
    fn deref(&self) -> &Selection {
        &self.sel
    }
}

/// Which Services each pod was last seen in (to requeue a Service when a pod stops matching).
type Membership = Arc<Mutex<HashMap<String, HashSet<String>>>>;

/// Registers the Endpoints controller's handlers on the shared informers and spawns its
/// worker (it starts once the caches have synced; failed Services are retried after 1 s).
pub fn start(factory: &Factory, _cfg: Arc<crate::Config>) {
    let ctx = Arc::new(Ctx {
        sel: Selection::new(factory),
        endpoints: factory.store::<Endpoints>(),
        recorder: Recorder::new(factory.client(), "endpoint-controller"),
    });
    let c = ctx.clone();
    Controller::new(factory, "endpoints")
        .backoff(Duration::from_secs(1), Duration::from_secs(1))
        .reconciles::<Service>()
        .watches::<Endpoints, _>(|ch| Some(key_of(ch.object().as_ref())))
        // Pods → the Services that select them now or listed them before.
        .watches::<Pod, _>(move |ch| c.services_for(ch.object()))
        .run(ctx, |ctx: Arc<Ctx>, key: ObjectKey| async move {
            reconcile(&ctx, &key.to_string())
                .await
                .map(|()| Action::Done)
        });
}

pub(crate) fn services_for_pod(
    services: &Store<Service>,
    members: &Membership,
    pod: &Pod,
) -> Vec<ObjectKey> {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let mut keys: Vec<ObjectKey> = services
        .list_filter(&ns, |s| {
            service_selector(s).is_some_and(|sel| selector_matches(sel, pod.labels()))
        })
        .iter()
        .map(|s| ObjectKey::new(&ns, s.name_any()))
        .collect();
    if let Ok(m) = members.lock() {
        keys.extend(
            m.iter()
                .filter(|(k, pods)| ObjectKey::parse(k).namespace == ns && pods.contains(&name))
                .map(|(k, _)| ObjectKey::parse(k)),
        );
    }
    keys
}

async fn reconcile(ctx: &Ctx, key: &str) -> Result<(), kube::Error> {
    let members = &ctx.members;
    let parsed = ObjectKey::parse(key);
    let (ns, name) = (parsed.namespace.as_str(), parsed.name.as_str());
    let svc = ctx.services.get(ns, name);
    let current = ctx.endpoints.get(ns, name);
    let all_pods = ctx.pods.list(ns);
    let pods = match svc.as_deref() {
        Some(s) => selected_pods(s, all_pods.iter().map(|p| p.as_ref())),
        None => Vec::new(),
    };
    if let Ok(mut m) = members.lock() {
        if svc.is_some() {
            m.insert(key.to_string(), pods.iter().map(|p| p.name_any()).collect());
        } else {
            m.remove(key);
        }
    }
    let trigger = match svc.as_deref() {
        Some(s) => ctx
            .tracker
            .lock()
            .ok()
            .and_then(|mut t| t.compute(key, s, &pods)),
        None => {
            if let Ok(mut t) = ctx.tracker.lock() {
                t.forget(key);
            }
            None
        }
    };
    let api: Api<Endpoints> = Api::namespaced(ctx.client.clone(), ns);
    match plan(svc.as_deref(), &pods, current.as_deref(), trigger) {
        Change::None => Ok(()),
        Change::Create(ep) => match api.create(&PostParams::default(), &ep).await {
            Ok(_) => Ok(()),
            // The namespace is terminating, or a racing create: nothing to do.
            Err(e) if matches!(api_code(&e), Some(403) | Some(409)) => Ok(()),
            Err(e) => {
                if let Some(s) = svc.as_deref() {
                    ctx.recorder
                        .record(
                            s,
                            "Warning",
                            "FailedToCreateEndpoint",
                            &format!("Failed to create endpoint for service {ns}/{name}: {e}"),
                        )
                        .await;
                }
                Err(e)
            }
        },
        Change::Update(ep) => match api.replace(name, &PostParams::default(), &ep).await {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => {
                if api_code(&e) != Some(409) {
                    if let Some(s) = svc.as_deref() {
                        ctx.recorder
                            .record(
                                s,
                                "Warning",
                                "FailedToUpdateEndpoint",
                                &format!("Failed to update endpoint {ns}/{name}: {e}"),
                            )
                            .await;
                    }
                }
                Err(e)
            }
        },
        Change::Delete { name, .. } => match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(e) if api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e),
        },
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Container, ContainerPort, PodCondition, PodIP, PodSpec, PodStatus, ServiceSpec,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    pub(crate) fn pod(name: &str, ip: &str, ready: bool, ports: &[(&str, i32)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("n1".into()),
                containers: vec![Container {
                    name: "c".into(),
                    ports: Some(
                        ports
                            .iter()
                            .map(|(n, p)| ContainerPort {
                                name: Some(n.to_string()),
                                container_port: *p,
                                ..Default::default()
                            })
                            .collect(),
                    ),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Running".into()),
                pod_ip: Some(ip.into()),
                pod_ips: Some(vec![PodIP { ip: ip.into() }]),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(ts("2025-01-01T00:00:10Z"))),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    pub(crate) fn service(ports: Vec<ServicePort>) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some("web".into()),
                namespace: Some("default".into()),
                uid: Some("svc-uid".into()),
                labels: Some(BTreeMap::from([("tier".to_string(), "front".to_string())])),
                creation_timestamp: Some(Time(ts("2025-01-01T00:00:00Z"))),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                selector: Some(BTreeMap::from([("app".to_string(), "web".to_string())])),
                cluster_ip: Some("10.43.0.20".into()),
                ports: Some(ports),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub(crate) fn sport(name: &str, port: i32, target: IntOrString) -> ServicePort {
        ServicePort {
            name: Some(name.into()),
            port,
            protocol: Some("TCP".into()),
            target_port: Some(target),
            ..Default::default()
        }
    }

    #[test]
    fn ready_and_not_ready_addresses_share_a_subset() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(8080))]);
        let a = pod("a", "10.42.0.10", true, &[]);
        let b = pod("b", "10.42.0.9", false, &[]);
        let c = pod("c", "10.42.0.8", true, &[]);
        let subsets = desired_subsets(&svc, &[&a, &b, &c]);
        assert_eq!(subsets.len(), 1);
        let s = &subsets[0];
        let ips_of = |a: &Option<Vec<EndpointAddress>>| -> Vec<String> {
            a.iter().flatten().map(|a| a.ip.clone()).collect()
        };
        let ips = ips_of(&s.addresses);
        assert_eq!(ips, ["10.42.0.8", "10.42.0.10"]);
        let nr = ips_of(&s.not_ready_addresses);
        assert_eq!(nr, ["10.42.0.9"]);
        let port = &s.ports.as_ref().unwrap()[0];
        assert_eq!(
            (port.name.as_deref(), port.port, port.protocol.as_deref()),
            (Some("http"), 8080, Some("TCP"))
        );
        let addr = &s.addresses.as_ref().unwrap()[0];
        assert_eq!(addr.node_name.as_deref(), Some("n1"));
        let r = addr.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                r.kind.as_deref(),
                r.name.as_deref(),
                r.namespace.as_deref(),
                r.uid.as_deref()
            ),
            (Some("Pod"), Some("c"), Some("default"), Some("uid-c"))
        );
    }

    #[test]
    fn publish_not_ready_addresses_lists_everything_as_ready() {
        let mut svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        svc.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        let b = pod("b", "10.42.0.9", false, &[]);
        let subsets = desired_subsets(&svc, &[&b]);
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 1);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn named_target_ports_resolve_per_pod() {
        let svc = service(vec![sport("web", 80, IntOrString::String("http".into()))]);
        let a = pod("a", "10.42.0.1", true, &[("http", 8080)]);
        let b = pod("b", "10.42.0.2", true, &[("http", 9090)]);
        let c = pod("c", "10.42.0.3", true, &[("metrics", 9100)]);
        let subsets = desired_subsets(&svc, &[&a, &b, &c]);
        // Two subsets (different ports), the pod without the named port is left out.
        assert_eq!(subsets.len(), 2);
        let got: Vec<(String, i32)> = subsets
            .iter()
            .map(|s| {
                (
                    s.addresses.as_ref().unwrap()[0].ip.clone(),
                    s.ports.as_ref().unwrap()[0].port,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("10.42.0.1".to_string(), 8080),
                ("10.42.0.2".to_string(), 9090)
            ]
        );
    }

    #[test]
    fn ports_offered_by_the_same_pods_are_packed_together() {
        let svc = service(vec![
            sport("http", 80, IntOrString::String("http".into())),
            sport("admin", 81, IntOrString::Int(9000)),
        ]);
        let a = pod("a", "10.42.0.1", true, &[("http", 8080)]);
        let b = pod("b", "10.42.0.2", true, &[]);
        let subsets = desired_subsets(&svc, &[&a, &b]);
        // admin:9000 is offered by a and b; http:8080 only by a.
        assert_eq!(subsets.len(), 2);
        let admin = subsets
            .iter()
            .find(|s| s.ports.as_ref().unwrap()[0].port == 9000)
            .unwrap();
        assert_eq!(admin.addresses.as_ref().unwrap().len(), 2);
        let http = subsets
            .iter()
            .find(|s| s.ports.as_ref().unwrap()[0].port == 8080)
            .unwrap();
        assert_eq!(http.addresses.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn terminating_terminal_and_ipless_pods_are_left_out() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        let mut t = pod("t", "10.42.0.1", true, &[]);
        t.metadata.deletion_timestamp = Some(Time(ts("2025-01-01T00:01:00Z")));
        let mut f = pod("f", "10.42.0.2", false, &[]);
        f.status.as_mut().unwrap().phase = Some("Failed".into());
        let mut n = pod("n", "", false, &[]);
        n.status.as_mut().unwrap().pod_ips = None;
        assert!(desired_subsets(&svc, &[&t, &f, &n]).is_empty());
        assert!(should_pod_be_in_endpoints(&t, true));
    }

    #[test]
    fn headless_without_ports_lists_addresses() {
        let mut svc = service(vec![]);
        svc.spec.as_mut().unwrap().cluster_ip = Some("None".into());
        let a = pod("a", "10.42.0.1", true, &[]);
        let subsets = desired_subsets(&svc, &[&a]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        match plan(Some(&svc), &[&a], None, None) {
            Change::Create(ep) => assert_eq!(
                ep.labels().get(HEADLESS_LABEL).map(String::as_str),
                Some("")
            ),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn plan_creates_updates_and_deletes() {
        let svc = service(vec![sport("http", 80, IntOrString::Int(80))]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let t = ts("2025-01-01T00:00:10Z");
        let Change::Create(ep) = plan(Some(&svc), &[&a], None, Some(t)) else {
            panic!("expected a create")
        };
        assert_eq!(ep.name_any(), "web");
        assert_eq!(ep.labels().get("tier").map(String::as_str), Some("front"));
        assert_eq!(
            ep.annotations()
                .get(LAST_CHANGE_TRIGGER_TIME)
                .map(String::as_str),
            Some("2025-01-01T00:00:10Z")
        );
        // Unchanged → nothing, even with a new trigger time.
        assert_eq!(plan(Some(&svc), &[&a], Some(&ep), Some(t)), Change::None);
        // A pod turns unready → update.
        let a2 = pod("a", "10.42.0.1", false, &[]);
        match plan(Some(&svc), &[&a2], Some(&ep), None) {
            Change::Update(u) => {
                assert!(u.subsets.as_ref().unwrap()[0].addresses.is_none());
                assert!(!u.annotations().contains_key(LAST_CHANGE_TRIGGER_TIME));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Service gone → delete.
        assert_eq!(
            plan(None, &[], Some(&ep), None),
            Change::Delete {
                namespace: "default".into(),
                name: "web".into()
            }
        );
        // No selector → left alone.
        let mut manual = svc.clone();
        manual.spec.as_mut().unwrap().selector = None;
        assert_eq!(plan(Some(&manual), &[], None, None), Change::None);
    }

    #[test]
    fn truncation_keeps_ready_addresses_first() {
        let addrs = |n: usize, base: u32| -> Vec<EndpointAddress> {
            (0..n)
                .map(|i| EndpointAddress {
                    ip: std::net::Ipv4Addr::from(base + i as u32).to_string(),
                    ..Default::default()
                })
                .collect()
        };
        let mut subsets = vec![EndpointSubset {
            addresses: Some(addrs(900, 0x0a000000)),
            not_ready_addresses: Some(addrs(300, 0x0b000000)),
            ports: None,
        }];
        assert!(truncate(&mut subsets));
        assert_eq!(subsets[0].addresses.as_ref().unwrap().len(), 900);
        assert_eq!(subsets[0].not_ready_addresses.as_ref().unwrap().len(), 100);
    }

    #[test]
    fn trigger_time_tracks_first_unreflected_change() {
        let svc = service(vec![]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let mut tr = TriggerTimeTracker::default();
        // First sight: the Service's creation.
        assert_eq!(
            tr.compute("default/web", &svc, &[&a]),
            Some(ts("2025-01-01T00:00:00Z"))
        );
        // Nothing changed.
        assert_eq!(tr.compute("default/web", &svc, &[&a]), None);
        // A pod's readiness flips later.
        let mut b = pod("a", "10.42.0.1", false, &[]);
        b.status.as_mut().unwrap().conditions.as_mut().unwrap()[0].last_transition_time =
            Some(Time(ts("2025-01-01T00:05:00Z")));
        assert_eq!(
            tr.compute("default/web", &svc, &[&b]),
            Some(ts("2025-01-01T00:05:00Z"))
        );
    }

    #[test]
    fn selected_pods_use_the_selector_and_namespace() {
        let svc = service(vec![]);
        let a = pod("a", "10.42.0.1", true, &[]);
        let mut other = pod("o", "10.42.0.2", true, &[]);
        other.metadata.namespace = Some("kube-system".into());
        let mut unlabeled = pod("u", "10.42.0.3", true, &[]);
        unlabeled.metadata.labels = None;
        let got = selected_pods(&svc, [&a, &other, &unlabeled]);
        assert_eq!(got.len(), 1);
    }
}
