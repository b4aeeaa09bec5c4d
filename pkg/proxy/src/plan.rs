//! The pure planner: Services + EndpointSlices + Nodes (as this node sees them) → the nftables
//! table `ip skiff-proxy` (kube-proxy's nftables design: verdict maps keyed by destination,
//! one chain per service port and endpoint, random balancing, affinity sets, masquerade mark).

use k8s_openapi::api::core::v1::{Node, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The table every rule lives in (one owner: this proxy).
pub const TABLE: &str = "skiff-proxy";
/// Services with this annotation set to "true" are answered on the node itself (cluster DNS).
pub const NODE_LOCAL_ANNOTATION: &str = "skiff.io/node-local-dns";
/// Node label that turns ServiceLB into allow-list mode when any node carries it.
pub const ENABLE_LB_LABEL: &str = "svccontroller.skiff.io/enablelb";
/// The mark bit of packets to masquerade on the way out (kube-proxy's default bit 14).
pub const MASQ_MARK: &str = "0x4000";
/// Session affinity timeout when the Service names none (Kubernetes' default, 3 h).
pub const DEFAULT_AFFINITY_TIMEOUT: i32 = 10800;

/// What the planner knows about the node it runs on.
#[derive(Debug, Clone)]
pub struct NodeContext {
    pub node_name: String,
    /// The cluster (pod) network: ClusterIP traffic from outside it is masqueraded.
    pub cluster_cidr: String,
}

/// A planned element of a verdict map: its key (nft syntax) and verdict.
pub type Elements = BTreeMap<String, String>;

/// The planned table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Per-service and per-endpoint chains: name → rules.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Affinity sets: name → timeout in seconds.
    pub affinity_sets: BTreeMap<String, i32>,
    /// `ip . proto . port` → verdict (ClusterIPs, external IPs, load-balancer addresses).
    pub service_ips: Elements,
    /// `proto . port` → verdict (node ports on every local address).
    pub service_nodeports: Elements,
    /// `ip . proto . port` → reject/drop for service addresses without usable endpoints.
    pub no_endpoint_services: Elements,
    /// `proto . port` → reject/drop for node ports without usable endpoints.
    pub no_endpoint_nodeports: Elements,
    /// UDP endpoints in use (`ip`, port): when one goes, its conntrack entries are flushed.
    pub udp_endpoints: BTreeSet<(Ipv4Addr, u16)>,
}

/// The fixed chains: name, `type hook priority` (None for a regular chain), rules.
fn base_chains() -> Vec<(&'static str, Option<&'static str>, Vec<String>)> {
    let new = "ct state new";
    vec![
        (
            "filter-input",
            Some("type filter hook input priority -110"),
            vec![
                format!("{new} jump nodeport-endpoints-check"),
                format!("{new} jump service-endpoints-check"),
            ],
        ),
        // Before DNAT and before routing: a pod's connection to a Service without endpoints
        // is refused even when the node has no route for the service range.
        (
            "filter-prerouting",
            Some("type filter hook prerouting priority -110"),
            vec![format!("{new} jump service-endpoints-check")],
        ),
        (
            "filter-output",
            Some("type filter hook output priority -110"),
            vec![format!("{new} jump service-endpoints-check")],
        ),
        (
            "nat-prerouting",
            Some("type nat hook prerouting priority -100"),
            vec!["jump services".into()],
        ),
        (
            "nat-output",
            Some("type nat hook output priority -100"),
            vec!["jump services".into()],
        ),
        (
            "nat-postrouting",
            Some("type nat hook postrouting priority 100"),
            vec!["jump masquerading".into()],
        ),
        (
            "services",
            None,
            vec![
                "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports".into(),
            ],
        ),
        (
            "service-endpoints-check",
            None,
            vec!["ip daddr . meta l4proto . th dport vmap @no-endpoint-services".into()],
        ),
        (
            "nodeport-endpoints-check",
            None,
            vec!["fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports".into()],
        ),
        (
            "reject-chain",
            None,
            vec![
                "meta l4proto tcp reject with tcp reset".into(),
                "reject with icmp type port-unreachable".into(),
            ],
        ),
        (
            "mark-for-masquerade",
            None,
            vec![format!("meta mark set meta mark | {MASQ_MARK}")],
        ),
        (
            "masquerading",
            None,
            vec![
                format!("meta mark & {MASQ_MARK} == 0 return"),
                format!("meta mark set meta mark ^ {MASQ_MARK}"),
                // Port-preserving, not `fully-random` as kube-proxy does: the kernel keys a
                // connection's TCP timestamp offset on its 4-tuple, so a random source port can
                // land on a tuple the backend still holds in TIME-WAIT with a newer timestamp and
                // the SYN is refused by PAWS (a 1 s retransmit; measured in BENCHMARKS.md,
                // "Why the NAT paths lose"). Keeping the client's port maps each backend tuple to
                // one client tuple, so its timestamps only grow; netfilter still picks another
                // port when the client's is taken.
                "masquerade".into(),
            ],
        ),
    ]
}

const MAPS: [(&str, &str); 4] = [
    (
        "service-ips",
        "ipv4_addr . inet_proto . inet_service : verdict",
    ),
    ("service-nodeports", "inet_proto . inet_service : verdict"),
    (
        "no-endpoint-services",
        "ipv4_addr . inet_proto . inet_service : verdict",
    ),
    (
        "no-endpoint-nodeports",
        "inet_proto . inet_service : verdict",
    ),
];

impl Ruleset {
    fn map(&self, name: &str) -> &Elements {
        match name {
            "service-ips" => &self.service_ips,
            "service-nodeports" => &self.service_nodeports,
            "no-endpoint-services" => &self.no_endpoint_services,
            _ => &self.no_endpoint_nodeports,
        }
    }

    /// One `nft -f` transaction that makes the table exactly this plan. `previous` is the plan
    /// last applied (its chains and sets that are gone get deleted); `None` rebuilds the table
    /// from nothing (first sync, or after a failure), which also clears leftovers of an earlier
    /// run. An update touches only what changed (chains rewritten only when their rules
    /// differ, map elements diffed), so affinity sets that stay keep their entries and a sync
    /// costs in proportion to the change, not to the number of Services.
    pub fn render(&self, previous: Option<&Ruleset>) -> String {
        let t = format!("ip {TABLE}");
        let mut s = String::new();
        let Some(prev) = previous else {
            return self.render_full();
        };
        // Only what changed: new sets and chains, changed chains rewritten, map elements
        // diffed, then what is gone deleted (after every reference to it is).
        for (name, timeout) in &self.affinity_sets {
            if !prev.affinity_sets.contains_key(name) {
                let _ = writeln!(s, "add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}");
            }
        }
        for name in self.chains.keys() {
            if !prev.chains.contains_key(name) {
                let _ = writeln!(s, "add chain {t} {name}");
            }
        }
        for (name, _) in MAPS {
            let (old, new) = (prev.map(name), self.map(name));
            let gone: Vec<&String> = old
                .iter()
                .filter(|(k, v)| new.get(*k) != Some(*v))
                .map(|(k, _)| k)
                .collect();
            if !gone.is_empty() {
                let keys: Vec<&str> = gone.iter().map(|k| k.as_str()).collect();
                let _ = writeln!(s, "delete element {t} {name} {{ {} }}", keys.join(", "));
            }
        }
        let stale: Vec<&String> = prev
            .chains
            .keys()
            .filter(|c| !self.chains.contains_key(*c))
            .collect();
        for (name, rules) in &self.chains {
            if prev.chains.get(name).is_some_and(|r| r != rules) {
                let _ = writeln!(s, "flush chain {t} {name}");
            }
        }
        for c in &stale {
            let _ = writeln!(s, "flush chain {t} {c}");
        }
        for (name, rules) in &self.chains {
            if prev.chains.get(name) != Some(rules) {
                for r in rules {
                    let _ = writeln!(s, "add rule {t} {name} {r}");
                }
            }
        }
        for (name, _) in MAPS {
            let (old, new) = (prev.map(name), self.map(name));
            let added: Vec<String> = new
                .iter()
                .filter(|(k, v)| old.get(*k) != Some(*v))
                .map(|(k, v)| format!("{k} : {v}"))
                .collect();
            if !added.is_empty() {
                let _ = writeln!(s, "add element {t} {name} {{ {} }}", added.join(", "));
            }
        }
        // Jumping chains before the endpoint chains they jump to.
        for c in stale.iter().filter(|c| !c.starts_with("endpoint-")) {
            let _ = writeln!(s, "delete chain {t} {c}");
        }
        for c in stale.iter().filter(|c| c.starts_with("endpoint-")) {
            let _ = writeln!(s, "delete chain {t} {c}");
        }
        for set in prev.affinity_sets.keys() {
            if !self.affinity_sets.contains_key(set) {
                let _ = writeln!(s, "delete set {t} {set}");
            }
        }
        s
    }

    /// The whole table from nothing (whatever an earlier run left is deleted first).
    fn render_full(&self) -> String {
        let t = format!("ip {TABLE}");
        let mut s = String::new();
        let _ = writeln!(s, "add table {t}\ndelete table {t}");
        let _ = writeln!(
            s,
            "add table {t} {{ comment \"rules for skiff's service proxy\" ; }}"
        );
        let base = base_chains();
        for (name, hook, _) in &base {
            match hook {
                Some(h) => {
                    let _ = writeln!(s, "add chain {t} {name} {{ {h} ; }}");
                }
                None => {
                    let _ = writeln!(s, "add chain {t} {name}");
                }
            }
        }
        for (name, ty) in MAPS {
            let _ = writeln!(s, "add map {t} {name} {{ type {ty} ; }}");
        }
        for (name, timeout) in &self.affinity_sets {
            let _ = writeln!(
                s,
                "add set {t} {name} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
            );
        }
        for name in self.chains.keys() {
            let _ = writeln!(s, "add chain {t} {name}");
        }
        for (name, _, rules) in &base {
            for r in rules {
                let _ = writeln!(s, "add rule {t} {name} {r}");
            }
        }
        for (name, rules) in &self.chains {
            for r in rules {
                let _ = writeln!(s, "add rule {t} {name} {r}");
            }
        }
        for (name, _) in MAPS {
            let elems = self.map(name);
            if elems.is_empty() {
                continue;
            }
            let list: Vec<String> = elems.iter().map(|(k, v)| format!("{k} : {v}")).collect();
            let _ = writeln!(s, "add element {t} {name} {{ {} }}", list.join(", "));
        }
        s
    }

    /// UDP endpoints `previous` had that this plan no longer has.
    pub fn gone_udp_endpoints(&self, previous: &Ruleset) -> Vec<(Ipv4Addr, u16)> {
        previous
            .udp_endpoints
            .difference(&self.udp_endpoints)
            .copied()
            .collect()
    }
}

/// A short stable tag for chain names (kube-proxy hashes the same way; names stay unique even
/// when the readable suffix is cut).
fn tag(s: &str) -> String {
    let h = Sha256::digest(s.as_bytes());
    hex::encode(&h[..4])
}

/// A chain name that nft accepts: `prefix-<hash>-<readable id>` cut to a safe length.
fn chain_name(prefix: &str, id: &str) -> String {
    let readable: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/') {
                c
            } else {
                '_'
            }
        })
        .take(160)
        .collect();
    format!("{prefix}-{}-{readable}", tag(id))
}

/// One usable endpoint of a service port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Endpoint {
    ip: Ipv4Addr,
    port: u16,
    local: bool,
}

#[derive(Debug, Default)]
struct Candidate {
    ip: Option<Ipv4Addr>,
    ready: bool,
    serving: bool,
    terminating: bool,
    local: bool,
}

fn is_true(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true")
}

/// Whether the proxy leaves this Service alone.
pub fn skipped(svc: &Service) -> bool {
    let m = &svc.metadata;
    if is_true(
        m.annotations
            .as_ref()
            .and_then(|a| a.get(NODE_LOCAL_ANNOTATION)),
    ) {
        return true;
    }
    let labels = m.labels.as_ref();
    if labels.is_some_and(|l| {
        l.contains_key("service.kubernetes.io/service-proxy-name")
            || l.contains_key("service.kubernetes.io/headless")
    }) {
        return true;
    }
    let Some(spec) = &svc.spec else { return true };
    if spec.type_.as_deref() == Some("ExternalName") {
        return true;
    }
    !matches!(spec.cluster_ip.as_deref(), Some(ip) if ip.parse::<Ipv4Addr>().is_ok())
}

fn proto_of(p: Option<&str>) -> &'static str {
    match p {
        Some("UDP") => "udp",
        Some("SCTP") => "sctp",
        _ => "tcp",
    }
}

/// Endpoints of `port` in the slices of the service: the ready ones, else (kube-proxy's
/// fallback) the serving-and-terminating ones; `local_only` keeps those on this node.
fn endpoints_for(
    slices: &[&EndpointSlice],
    port: &ServicePort,
    node: &str,
    local_only: bool,
) -> Vec<Endpoint> {
    let want_name = port.name.as_deref().unwrap_or("");
    let want_proto = port.protocol.as_deref().unwrap_or("TCP");
    let mut by_addr: BTreeMap<(Ipv4Addr, u16), Candidate> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        let Some(sp) = slice.ports.iter().flatten().find(|p| {
            p.name.as_deref().unwrap_or("") == want_name
                && p.protocol.as_deref().unwrap_or("TCP") == want_proto
        }) else {
            continue;
        };
        let Some(num) = sp.port.and_then(|p| u16::try_from(p).ok()) else {
            continue;
        };
        for ep in &slice.endpoints {
            let Some(ip) = ep
                .addresses
                .first()
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let c = ep.conditions.as_ref();
            let cand = Candidate {
                ip: Some(ip),
                ready: c.and_then(|c| c.ready).unwrap_or(true),
                serving: c
                    .and_then(|c| c.serving)
                    .unwrap_or_else(|| c.and_then(|c| c.ready).unwrap_or(true)),
                terminating: c.and_then(|c| c.terminating).unwrap_or(false),
                local: ep.node_name.as_deref() == Some(node),
            };
            by_addr.entry((ip, num)).or_insert(cand);
        }
    }
    let pick = |ready_only: bool| -> Vec<Endpoint> {
        by_addr
            .iter()
            .filter(|(_, c)| !local_only || c.local)
            .filter(|(_, c)| {
                if ready_only {
                    c.ready && !c.terminating
                } else {
                    c.serving && c.terminating
                }
            })
            .filter_map(|((_, port), c)| {
                Some(Endpoint {
                    ip: c.ip?,
                    port: *port,
                    local: c.local,
                })
            })
            .collect()
    };
    let ready = pick(true);
    if ready.is_empty() {
        pick(false)
    } else {
        ready
    }
}

/// Whether this node serves LoadBalancer ports: every node, or (when any node carries the
/// enablelb label) only those labelled `true`.
pub fn lb_eligible(node: &Node, all: &[&Node]) -> bool {
    let val = |n: &Node| {
        n.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(ENABLE_LB_LABEL))
            .cloned()
    };
    if all.iter().any(|n| val(n).is_some()) {
        val(node).as_deref() == Some("true")
    } else {
        true
    }
}

/// The node's own IPv4 addresses from its status (InternalIP, ExternalIP).
pub fn node_addresses(node: &Node) -> Vec<Ipv4Addr> {
    let mut out: Vec<Ipv4Addr> = node
        .status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn creation_order(s: &Service) -> (String, String, String) {
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

/// Plans the table for `ctx.node_name` (`node` is its Node object when known; `nodes` are all
/// Nodes, for ServiceLB eligibility).
pub fn plan(
    services: &[&Service],
    slices: &[&EndpointSlice],
    node: Option<&Node>,
    nodes: &[&Node],
    ctx: &NodeContext,
) -> Ruleset {
    let mut rs = Ruleset::default();
    let mut slices_by_svc: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
    for s in slices {
        let Some(name) = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("kubernetes.io/service-name"))
        else {
            continue;
        };
        if s.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("service.kubernetes.io/headless"))
        {
            continue;
        }
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        slices_by_svc.entry((ns, name.clone())).or_default().push(s);
    }
    let own_addrs = node.map(node_addresses).unwrap_or_default();
    let eligible = node.is_some_and(|n| lb_eligible(n, nodes));
    // Oldest first: when two Services claim one key (a load-balancer port on this node's
    // address), the older keeps it, as ServiceLB's port check decides.
    let mut ordered: Vec<&Service> = services.iter().copied().filter(|s| !skipped(s)).collect();
    ordered.sort_by_key(|s| creation_order(s));
    for svc in ordered {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.clone().unwrap_or_default();
        let empty = Vec::new();
        let svc_slices = slices_by_svc
            .get(&(ns.clone(), name.clone()))
            .unwrap_or(&empty);
        plan_service(&mut rs, svc, svc_slices, &own_addrs, eligible, ctx);
    }
    rs
}

fn plan_service(
    rs: &mut Ruleset,
    svc: &Service,
    slices: &[&EndpointSlice],
    own_addrs: &[Ipv4Addr],
    eligible: bool,
    ctx: &NodeContext,
) {
    let Some(spec) = &svc.spec else { return };
    let Some(cip) = spec
        .cluster_ip
        .as_deref()
        .and_then(|c| c.parse::<Ipv4Addr>().ok())
    else {
        return;
    };
    let ns = svc.metadata.namespace.as_deref().unwrap_or("");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    let etp_local = spec.external_traffic_policy.as_deref() == Some("Local")
        && matches!(ty, "NodePort" | "LoadBalancer");
    let itp_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .filter(|t| *t > 0)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });
    // External addresses: externalIPs, LB ingress IPs from status, and (when this node serves
    // load balancers) its own addresses for LoadBalancer Services.
    let mut external: BTreeSet<Ipv4Addr> = spec
        .external_ips
        .iter()
        .flatten()
        .filter_map(|i| i.parse().ok())
        .collect();
    if ty == "LoadBalancer" && spec.load_balancer_class.is_none() {
        for ing in svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref())
            .into_iter()
            .flatten()
        {
            if ing.ip_mode.as_deref().is_some_and(|m| m != "VIP") {
                continue;
            }
            if let Some(ip) = ing.ip.as_deref().and_then(|i| i.parse().ok()) {
                external.insert(ip);
            }
        }
        if eligible {
            external.extend(own_addrs.iter().copied());
        }
    }
    for port in spec.ports.iter().flatten() {
        let Ok(svc_port) = u16::try_from(port.port) else {
            continue;
        };
        let proto = proto_of(port.protocol.as_deref());
        let pname = port
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("p{svc_port}"));
        let id = format!("{ns}/{name}/{proto}/{pname}");
        let node_port = port
            .node_port
            .filter(|_| matches!(ty, "NodePort" | "LoadBalancer"))
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0);

        let cluster_eps = endpoints_for(slices, port, &ctx.node_name, false);
        let local_eps: Vec<Endpoint> = cluster_eps.iter().filter(|e| e.local).cloned().collect();
        let local_eps = if local_eps.is_empty() && !cluster_eps.is_empty() {
            // The local fallback to terminating endpoints is decided per locality.
            endpoints_for(slices, port, &ctx.node_name, true)
        } else {
            local_eps
        };
        if proto == "udp" {
            rs.udp_endpoints
                .extend(cluster_eps.iter().map(|e| (e.ip, e.port)));
        }

        let cip_key = format!("{cip} . {proto} . {svc_port}");
        let ext_keys: Vec<String> = external
            .iter()
            .map(|ip| format!("{ip} . {proto} . {svc_port}"))
            .collect();
        let np_key = node_port.map(|p| format!("{proto} . {p}"));

        if cluster_eps.is_empty() {
            let reject = "goto reject-chain".to_string();
            rs.no_endpoint_services.insert(cip_key, reject.clone());
            for k in ext_keys {
                rs.no_endpoint_services.entry(k).or_insert(reject.clone());
            }
            if let Some(k) = np_key {
                rs.no_endpoint_nodeports.entry(k).or_insert(reject);
            }
            continue;
        }

        let svc_chain = chain_name("service", &id);
        let chain_rules = balance(rs, &id, proto, &cluster_eps, affinity);
        let masq_offcluster = format!(
            "ip daddr {cip} ip saddr != {} jump mark-for-masquerade",
            ctx.cluster_cidr
        );
        // The cluster-wide chain (ClusterIP with internalTrafficPolicy Cluster, external
        // traffic with externalTrafficPolicy Cluster, and pods/host under Local).
        let mut rules = vec![masq_offcluster.clone()];
        rules.extend(chain_rules);
        rs.chains.insert(svc_chain.clone(), rules);

        let local_chain = chain_name("local", &id);
        let need_local = itp_local || etp_local;
        if need_local && !local_eps.is_empty() {
            let mut rules = vec![masq_offcluster];
            rules.extend(balance(rs, &id, proto, &local_eps, affinity));
            rs.chains.insert(local_chain.clone(), rules);
        }

        // ClusterIP.
        if itp_local {
            if local_eps.is_empty() {
                rs.no_endpoint_services.insert(cip_key, "drop".into());
            } else {
                rs.service_ips
                    .insert(cip_key, format!("goto {local_chain}"));
            }
        } else {
            rs.service_ips.insert(cip_key, format!("goto {svc_chain}"));
        }

        // External entry (NodePort, LoadBalancer, externalIPs).
        if ext_keys.is_empty() && np_key.is_none() {
            continue;
        }
        let ext_chain = chain_name("external", &id);
        let ext_rules = if etp_local {
            let mut r = vec![
                format!("ip saddr {} goto {svc_chain}", ctx.cluster_cidr),
                "fib saddr type local jump mark-for-masquerade".to_string(),
                format!("fib saddr type local goto {svc_chain}"),
            ];
            if !local_eps.is_empty() {
                r.push(format!("goto {local_chain}"));
            }
            r
        } else {
            vec![
                "jump mark-for-masquerade".to_string(),
                format!("goto {svc_chain}"),
            ]
        };
        rs.chains.insert(ext_chain.clone(), ext_rules);
        for k in ext_keys {
            if rs.service_ips.contains_key(&k) {
                continue;
            }
            rs.service_ips.insert(k, format!("goto {ext_chain}"));
        }
        if let Some(k) = np_key {
            if etp_local && local_eps.is_empty() {
                rs.no_endpoint_nodeports
                    .entry(k.clone())
                    .or_insert("drop".into());
            }
            rs.service_nodeports
                .entry(k)
                .or_insert(format!("goto {ext_chain}"));
        }
    }
}

/// Adds the endpoint chains (and affinity sets) of `eps` and returns the rules of the chain
/// that picks one: the source's remembered endpoint first (session affinity), else uniformly
/// at random.
fn balance(
    rs: &mut Ruleset,
    id: &str,
    proto: &str,
    eps: &[Endpoint],
    affinity: Option<i32>,
) -> Vec<String> {
    let mut pick = Vec::new();
    let mut names = Vec::new();
    for e in eps {
        let ep_id = format!("{id}__{}/{}", e.ip, e.port);
        let chain = chain_name("endpoint", &ep_id);
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", e.ip)];
        if let Some(t) = affinity {
            let set = chain_name("affinity", &format!("{ep_id}/{t}"));
            rules.push(format!("update @{set} {{ ip saddr }}"));
            pick.push(format!("ip saddr @{set} goto {chain}"));
            rs.affinity_sets.insert(set, t);
        }
        rules.push(format!("meta l4proto {proto} dnat to {}:{}", e.ip, e.port));
        rs.chains.insert(chain.clone(), rules);
        names.push(chain);
    }
    let vmap: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| format!("{i} : goto {n}"))
        .collect();
    pick.push(format!(
        "numgen random mod {} vmap {{ {} }}",
        names.len(),
        vmap.join(", ")
    ));
    pick
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(name: &str, spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default",
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec,
        }))
        .unwrap()
    }

    /// A slice of `svc` with port `http`/80 and endpoints `(ip, node, ready, terminating)`.
    fn slice(svc: &str, eps: &[(&str, &str, bool, bool)]) -> EndpointSlice {
        let endpoints: Vec<_> = eps
            .iter()
            .map(|(ip, node, ready, term)| {
                json!({"addresses": [ip], "nodeName": node,
                       "conditions": {"ready": ready, "serving": true, "terminating": term}})
            })
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-abc"), "namespace": "default",
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
        .unwrap()
    }

    fn node(name: &str, ip: &str, labels: serde_json::Value) -> Node {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": labels},
            "status": {"addresses": [{"type": "InternalIP", "address": ip},
                                      {"type": "Hostname", "address": name}]},
        }))
        .unwrap()
    }

    fn ctx() -> NodeContext {
        NodeContext {
            node_name: "n1".into(),
            cluster_cidr: "10.42.0.0/16".into(),
        }
    }

    fn http_port(extra: serde_json::Value) -> serde_json::Value {
        let mut p = json!({"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080});
        for (k, v) in extra.as_object().unwrap() {
            p[k] = v.clone();
        }
        p
    }

    fn run(svcs: &[Service], slices: &[EndpointSlice], nodes: &[Node]) -> Ruleset {
        let s: Vec<&Service> = svcs.iter().collect();
        let e: Vec<&EndpointSlice> = slices.iter().collect();
        let n: Vec<&Node> = nodes.iter().collect();
        plan(&s, &e, nodes.first(), &n, &ctx())
    }

    fn chain<'a>(rs: &'a Ruleset, prefix: &str) -> Vec<&'a Vec<String>> {
        rs.chains
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .collect()
    }

    #[test]
    fn cluster_ip_balances_over_ready_endpoints_only() {
        let s = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "ports": [http_port(json!({}))]}),
        );
        let sl = slice(
            "web",
            &[
                ("10.42.0.2", "n1", true, false),
                ("10.42.1.2", "n2", true, false),
                ("10.42.1.3", "n2", false, true),
            ],
        );
        let rs = run(&[s], &[sl], &[node("n1", "192.0.2.1", json!({}))]);
        let verdict = &rs.service_ips["10.43.0.5 . tcp . 80"];
        assert!(verdict.starts_with("goto service-"), "{verdict}");
        let svc_chain = &rs.chains[verdict.trim_start_matches("goto ")];
        assert_eq!(
            svc_chain[0],
            "ip daddr 10.43.0.5 ip saddr != 10.42.0.0/16 jump mark-for-masquerade"
        );
        assert!(svc_chain[1].starts_with("numgen random mod 2 vmap { 0 : goto endpoint-"));
        let eps = chain(&rs, "endpoint-");
        assert_eq!(eps.len(), 2, "the terminating endpoint is out of rotation");
        let dnats: BTreeSet<&str> = eps.iter().map(|r| r.last().unwrap().as_str()).collect();
        assert_eq!(
            dnats,
            BTreeSet::from([
                "meta l4proto tcp dnat to 10.42.0.2:8080",
                "meta l4proto tcp dnat to 10.42.1.2:8080"
            ])
        );
        // Hairpin: an endpoint reaching its own service is masqueraded.
        assert!(eps
            .iter()
            .any(|r| r[0] == "ip saddr 10.42.0.2 jump mark-for-masquerade"));
        assert!(rs.service_nodeports.is_empty() && rs.no_endpoint_services.is_empty());
    }

    #[test]
    fn only_terminating_endpoints_are_a_fallback() {
        let s = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "ports": [http_port(json!({}))]}),
        );
        let sl = slice("web", &[("10.42.1.3", "n2", false, true)]);
        let rs = run(&[s], &[sl], &[]);
        assert_eq!(chain(&rs, "endpoint-").len(), 1);
        assert!(rs.service_ips.contains_key("10.43.0.5 . tcp . 80"));
    }

    #[test]
    fn no_endpoints_reject_on_cluster_ip_and_node_port() {
        let s = svc(
            "web",
            json!({"type": "NodePort", "clusterIP": "10.43.0.5",
                   "ports": [http_port(json!({"nodePort": 30080}))]}),
        );
        let rs = run(&[s], &[], &[node("n1", "192.0.2.1", json!({}))]);
        assert!(rs.service_ips.is_empty() && rs.chains.is_empty());
        assert_eq!(
            rs.no_endpoint_services["10.43.0.5 . tcp . 80"],
            "goto reject-chain"
        );
        assert_eq!(rs.no_endpoint_nodeports["tcp . 30080"], "goto reject-chain");
    }

    #[test]
    fn node_port_masquerades_with_cluster_policy() {
        let s = svc(
            "web",
            json!({"type": "NodePort", "clusterIP": "10.43.0.5",
                   "ports": [http_port(json!({"nodePort": 30080}))]}),
        );
        let sl = slice("web", &[("10.42.1.2", "n2", true, false)]);
        let rs = run(&[s], &[sl], &[node("n1", "192.0.2.1", json!({}))]);
        let ext = rs.service_nodeports["tcp . 30080"].trim_start_matches("goto ");
        assert!(ext.starts_with("external-"));
        let svc_chain = rs.service_ips["10.43.0.5 . tcp . 80"].clone();
        assert_eq!(
            rs.chains[ext],
            vec!["jump mark-for-masquerade".to_string(), svc_chain]
        );
    }

    #[test]
    fn external_local_keeps_source_and_uses_local_endpoints() {
        let s = svc(
            "web",
            json!({"type": "NodePort", "clusterIP": "10.43.0.5", "externalTrafficPolicy": "Local",
                   "ports": [http_port(json!({"nodePort": 30080}))]}),
        );
        let sl = slice(
            "web",
            &[
                ("10.42.0.2", "n1", true, false),
                ("10.42.1.2", "n2", true, false),
            ],
        );
        let rs = run(
            std::slice::from_ref(&s),
            &[sl],
            &[node("n1", "192.0.2.1", json!({}))],
        );
        let ext = rs.service_nodeports["tcp . 30080"].trim_start_matches("goto ");
        let rules = &rs.chains[ext];
        assert!(rules[0].starts_with("ip saddr 10.42.0.0/16 goto service-"));
        assert_eq!(rules[1], "fib saddr type local jump mark-for-masquerade");
        let local = rules[3].trim_start_matches("goto ");
        assert!(local.starts_with("local-"), "{rules:?}");
        assert!(rs.chains[local][1].starts_with("numgen random mod 1 "));
        // No local endpoint: external traffic is dropped, not sent to another node.
        let remote = slice("web", &[("10.42.1.2", "n2", true, false)]);
        let rs = run(&[s], &[remote], &[node("n1", "192.0.2.1", json!({}))]);
        assert_eq!(rs.no_endpoint_nodeports["tcp . 30080"], "drop");
        assert!(rs.service_ips["10.43.0.5 . tcp . 80"].starts_with("goto service-"));
    }

    #[test]
    fn internal_local_without_local_endpoints_drops() {
        let s = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "internalTrafficPolicy": "Local",
                   "ports": [http_port(json!({}))]}),
        );
        let remote = slice("web", &[("10.42.1.2", "n2", true, false)]);
        let rs = run(std::slice::from_ref(&s), &[remote], &[]);
        assert_eq!(rs.no_endpoint_services["10.43.0.5 . tcp . 80"], "drop");
        assert!(!rs.service_ips.contains_key("10.43.0.5 . tcp . 80"));
        let local = slice(
            "web",
            &[
                ("10.42.0.2", "n1", true, false),
                ("10.42.1.2", "n2", true, false),
            ],
        );
        let rs = run(&[s], &[local], &[]);
        let v = &rs.service_ips["10.43.0.5 . tcp . 80"];
        assert!(v.starts_with("goto local-"));
        assert!(rs.chains[v.trim_start_matches("goto ")][1].contains("mod 1 "));
    }

    #[test]
    fn session_affinity_sets_per_endpoint() {
        let s = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "sessionAffinity": "ClientIP",
                   "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}},
                   "ports": [http_port(json!({}))]}),
        );
        let sl = slice(
            "web",
            &[
                ("10.42.0.2", "n1", true, false),
                ("10.42.1.2", "n2", true, false),
            ],
        );
        let rs = run(&[s], &[sl], &[]);
        assert_eq!(rs.affinity_sets.len(), 2);
        assert!(rs.affinity_sets.values().all(|t| *t == 60));
        let v = rs.service_ips["10.43.0.5 . tcp . 80"].trim_start_matches("goto ");
        let rules = &rs.chains[v];
        assert!(
            rules[1].starts_with("ip saddr @affinity-") && rules[1].contains(" goto endpoint-")
        );
        assert!(rules[3].starts_with("numgen"));
        for ep in chain(&rs, "endpoint-") {
            assert!(ep[1].starts_with("update @affinity-") && ep[1].ends_with("{ ip saddr }"));
        }
    }

    #[test]
    fn load_balancer_on_own_addresses_when_eligible() {
        let lb = |name: &str, port: i32, created: &str| -> Service {
            let mut s = svc(
                name,
                json!({"type": "LoadBalancer", "clusterIP": format!("10.43.0.{port}"),
                       "ports": [{"name": "http", "port": port, "protocol": "TCP", "nodePort": 30000 + port}]}),
            );
            s.metadata.creation_timestamp = Some(serde_json::from_value(json!(created)).unwrap());
            s
        };
        let sl = |svc: &str| slice(svc, &[("10.42.0.2", "n1", true, false)]);
        // Two Services on one port: the older one keeps the node's address.
        let svcs = [
            lb("b", 80, "2026-01-02T00:00:00Z"),
            lb("a", 80, "2026-01-03T00:00:00Z"),
        ];
        let rs = run(
            &svcs,
            &[sl("a"), sl("b")],
            &[node("n1", "192.0.2.1", json!({}))],
        );
        let v = &rs.service_ips["192.0.2.1 . tcp . 80"];
        assert!(v.contains("default/b/"), "{v}");
        // Allow-list mode: another node is labelled, this one not → no LB address here.
        let nodes = [
            node("n1", "192.0.2.1", json!({})),
            node("n2", "192.0.2.2", json!({ENABLE_LB_LABEL: "true"})),
        ];
        let rs = run(&svcs[..1], &[sl("b")], &nodes);
        assert!(!rs.service_ips.contains_key("192.0.2.1 . tcp . 80"));
        assert!(rs.service_nodeports.contains_key("tcp . 30080"));
        // The status's ingress IPs are captured on every node.
        let mut s = svcs[0].clone();
        s.status =
            serde_json::from_value(json!({"loadBalancer": {"ingress": [{"ip": "192.0.2.2"}]}}))
                .unwrap();
        let rs = run(&[s], &[sl("b")], &nodes);
        assert!(rs.service_ips["192.0.2.2 . tcp . 80"].starts_with("goto external-"));
    }

    #[test]
    fn skips_node_local_dns_headless_and_external_name() {
        let mut dns = svc(
            "kube-dns",
            json!({"clusterIP": "10.43.0.10",
            "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}]}),
        );
        dns.metadata.annotations =
            Some([(NODE_LOCAL_ANNOTATION.to_string(), "true".to_string())].into());
        let headless = svc(
            "h",
            json!({"clusterIP": "None", "ports": [http_port(json!({}))]}),
        );
        let ext = svc(
            "x",
            json!({"type": "ExternalName", "externalName": "example.org"}),
        );
        let rs = run(
            &[dns, headless, ext],
            &[slice("h", &[("10.42.0.2", "n1", true, false)])],
            &[],
        );
        assert_eq!(rs, Ruleset::default());
    }

    #[test]
    fn udp_endpoints_tracked_for_conntrack() {
        let s = svc(
            "dns",
            json!({"clusterIP": "10.43.0.7",
            "ports": [{"name": "http", "port": 53, "protocol": "UDP"}]}),
        );
        let mut sl = slice(
            "dns",
            &[
                ("10.42.0.2", "n1", true, false),
                ("10.42.0.3", "n1", true, false),
            ],
        );
        sl.ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        let before = run(std::slice::from_ref(&s), &[sl.clone()], &[]);
        sl.endpoints.pop();
        let after = run(&[s], &[sl], &[]);
        assert_eq!(
            after.gone_udp_endpoints(&before),
            vec![("10.42.0.3".parse().unwrap(), 8080)]
        );
    }

    #[test]
    fn render_rebuilds_then_deletes_stale_chains() {
        let s = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "ports": [http_port(json!({}))]}),
        );
        let two = run(
            std::slice::from_ref(&s),
            &[slice(
                "web",
                &[
                    ("10.42.0.2", "n1", true, false),
                    ("10.42.0.3", "n1", true, false),
                ],
            )],
            &[],
        );
        let one = run(
            &[s],
            &[slice("web", &[("10.42.0.2", "n1", true, false)])],
            &[],
        );
        let full = two.render(None);
        assert!(full.starts_with("add table ip skiff-proxy\ndelete table ip skiff-proxy\n"));
        assert!(full.contains(
            "add element ip skiff-proxy service-ips { 10.43.0.5 . tcp . 80 : goto service-"
        ));
        let inc = one.render(Some(&two));
        assert!(!inc.contains("delete table"));
        let deleted: Vec<&str> = inc
            .lines()
            .filter(|l| l.starts_with("delete chain"))
            .collect();
        assert_eq!(deleted.len(), 1, "{inc}");
        assert!(deleted[0].contains("__10.42.0.3/8080"));
    }

    #[test]
    fn an_update_touches_only_what_changed() {
        let web = svc(
            "web",
            json!({"clusterIP": "10.43.0.5", "ports": [http_port(json!({}))]}),
        );
        let api = svc(
            "api",
            json!({"clusterIP": "10.43.0.6", "ports": [http_port(json!({}))]}),
        );
        let svcs = [web, api];
        let before = run(
            &svcs,
            &[
                slice("web", &[("10.42.0.2", "n1", true, false)]),
                slice("api", &[("10.42.0.7", "n1", true, false)]),
            ],
            &[],
        );
        assert_eq!(
            before.render(Some(&before)),
            "",
            "nothing changed, nothing to do"
        );
        let after = run(
            &svcs,
            &[
                slice(
                    "web",
                    &[
                        ("10.42.0.2", "n1", true, false),
                        ("10.42.0.3", "n1", true, false),
                    ],
                ),
                slice("api", &[("10.42.0.7", "n1", true, false)]),
            ],
            &[],
        );
        let inc = after.render(Some(&before));
        assert!(
            !inc.contains("default/api/"),
            "the other Service is untouched: {inc}"
        );
        assert!(
            !inc.contains("element"),
            "the ClusterIP keeps its chain: {inc}"
        );
        assert_eq!(
            inc.lines().filter(|l| l.starts_with("flush chain")).count(),
            1,
            "{inc}"
        );
        assert!(
            inc.contains("add chain ip skiff-proxy endpoint-") && inc.contains("__10.42.0.3/8080")
        );
    }

    /// The rendered text is accepted by the real nft (in a throwaway network namespace), both
    /// as a rebuild and as an incremental update. Needs root, `nft` and `unshare`.
    #[test]
    fn nft_accepts_the_rendered_ruleset() {
        let ok = std::process::Command::new("unshare")
            .args(["--net", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok
            || std::process::Command::new("nft")
                .arg("--version")
                .output()
                .is_err()
        {
            eprintln!("skipped: needs root, unshare and nft");
            return;
        }
        let svcs = [
            svc(
                "web",
                json!({"type": "LoadBalancer", "clusterIP": "10.43.0.5",
                "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local",
                "ports": [http_port(json!({"nodePort": 30080}))]}),
            ),
            svc(
                "udp",
                json!({"clusterIP": "10.43.0.6", "internalTrafficPolicy": "Local",
                "ports": [{"name": "http", "port": 53, "protocol": "UDP"}]}),
            ),
            svc(
                "none",
                json!({"type": "NodePort", "clusterIP": "10.43.0.7",
                "ports": [http_port(json!({"nodePort": 30081}))]}),
            ),
        ];
        let mut udp = slice("udp", &[("10.42.0.9", "n1", true, false)]);
        udp.ports.as_mut().unwrap()[0].protocol = Some("UDP".into());
        let first = run(
            &svcs,
            &[
                slice(
                    "web",
                    &[
                        ("10.42.0.2", "n1", true, false),
                        ("10.42.1.2", "n2", true, false),
                    ],
                ),
                udp.clone(),
            ],
            &[node("n1", "192.0.2.1", json!({}))],
        );
        let sl2 = [slice("web", &[("10.42.1.2", "n2", true, false)]), udp];
        let second = run(&svcs, &sl2, &[node("n1", "192.0.2.1", json!({}))]);
        // Third: the UDP Service switches to internalTrafficPolicy Cluster (a map element
        // changes its verdict) and the endpoint-less Service goes away.
        let mut svcs3 = svcs.to_vec();
        svcs3.pop();
        svcs3[1].spec.as_mut().unwrap().internal_traffic_policy = Some("Cluster".into());
        let third = run(&svcs3, &sl2, &[node("n1", "192.0.2.1", json!({}))]);
        let script = format!(
            "{}\n{}\n{}",
            first.render(None),
            second.render(Some(&first)),
            third.render(Some(&second))
        );
        let mut child = std::process::Command::new("unshare")
            .args([
                "--net",
                "sh",
                "-c",
                "nft -f - && nft list table ip skiff-proxy",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listing.contains("numgen random mod 1"), "{listing}");
        assert!(
            !listing.contains("10.42.0.2:8080"),
            "stale endpoint gone: {listing}"
        );
        assert!(listing.contains("dnat to 10.42.0.9:8080"), "{listing}");
        assert!(
            listing.contains("10.43.0.6 . udp . 53 : goto service-"),
            "{listing}"
        );
        assert!(!listing.contains("10.43.0.7"), "{listing}");
        assert!(!listing.contains("local-1c"), "{listing}");
    }
}
