//! The pure planner: NetworkPolicies + Pods + Namespaces (as one node sees them) → the
//! nftables table `inet skiff-netpol` that enforces them for the pods of that node.
//!
//! Semantics follow upstream's NetworkPolicy API: a pod is isolated for a direction when some
//! policy of its namespace selects it with that direction in `policyTypes`; an isolated pod's
//! traffic in that direction passes only when a rule of one of those policies allows it (the
//! union, order-free). A rule matches when one of its peers AND one of its ports match (no
//! peers = any peer, no ports = any port). Replies of allowed connections, a pod's traffic to
//! itself and traffic from the pod's own node always pass (as kube-router does).
//!
//! Layout: a base chain on the forward hook accepts established/related traffic, then looks
//! the source up in `egress-pods` and the destination in `ingress-pods`, verdict maps that
//! jump to one chain per isolated local pod and direction. Those chains `return` on an
//! allowed packet and reject the rest (TCP with a reset: the kernel rate-limits the ICMP errors
//! a plain `reject` sends per destination, and a dropped SYN leaves the client retrying for a
//! second or more instead of failing at once). Peer pods are named sets of IPs, one per policy rule;
//! egress rules with named ports use a set of `ip . proto . port` (the name resolves on the
//! destination pod, which may differ per pod).

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sha2::{Digest, Sha256};
use skiff_api::matchers::labels::selector_matches;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// The table skiff's NetworkPolicy enforcement owns (no other component touches it).
pub const TABLE: &str = "skiff-netpol";
/// The label the API server puts on every Namespace with its name (also assumed when absent).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// Longest chain/set name skiff writes (the kernel allows 255 bytes).
const MAX_NAME: usize = 200;

/// A policy direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    /// The policyTypes value.
    fn type_name(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }

    /// The packet field the peer is matched on (the other end of the connection).
    fn peer_field(self) -> &'static str {
        match self {
            Direction::Ingress => "ip saddr",
            Direction::Egress => "ip daddr",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Direction::Ingress => "in",
            Direction::Egress => "out",
        }
    }
}

/// The element type of a named set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetType {
    /// Peer pod IPs.
    Addr,
    /// `ip . proto . port` of peer pods for an egress named port.
    AddrProtoPort,
}

impl SetType {
    fn nft(self) -> &'static str {
        match self {
            SetType::Addr => "ipv4_addr",
            SetType::AddrProtoPort => "ipv4_addr . inet_proto . inet_service",
        }
    }
}

/// A planned named set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDef {
    pub kind: SetType,
    /// Elements in nft syntax, sorted.
    pub elements: BTreeSet<String>,
}

/// The planned table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ruleset {
    /// Named sets: name → definition.
    pub sets: BTreeMap<String, SetDef>,
    /// Per-pod chains: name → rules.
    pub chains: BTreeMap<String, Vec<String>>,
    /// Ingress-isolated local pods: IP → their chain.
    pub ingress: BTreeMap<Ipv4Addr, String>,
    /// Egress-isolated local pods: IP → their chain.
    pub egress: BTreeMap<Ipv4Addr, String>,
}

impl Ruleset {
    /// The whole table as one `nft -f` transaction: create (so the delete cannot fail),
    /// delete, re-create — atomic, so traffic never sees a half table.
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(1024);
        let _ = writeln!(s, "table inet {TABLE}");
        let _ = writeln!(s, "delete table inet {TABLE}");
        let _ = writeln!(s, "table inet {TABLE} {{");
        for (name, set) in &self.sets {
            let _ = writeln!(s, "\tset {name} {{\n\t\ttype {}", set.kind.nft());
            if !set.elements.is_empty() {
                let elems: Vec<&str> = set.elements.iter().map(String::as_str).collect();
                let _ = writeln!(s, "\t\telements = {{ {} }}", elems.join(", "));
            }
            s.push_str("\t}\n");
        }
        for (name, rules) in &self.chains {
            let _ = writeln!(s, "\tchain {name} {{");
            for r in rules {
                let _ = writeln!(s, "\t\t{r}");
            }
            s.push_str("\t}\n");
        }
        for (map, pods) in [
            ("ingress-pods", &self.ingress),
            ("egress-pods", &self.egress),
        ] {
            let _ = writeln!(s, "\tmap {map} {{\n\t\ttype ipv4_addr : verdict");
            if !pods.is_empty() {
                let elems: Vec<String> = pods
                    .iter()
                    .map(|(ip, chain)| format!("{ip} : jump {chain}"))
                    .collect();
                let _ = writeln!(s, "\t\telements = {{ {} }}", elems.join(", "));
            }
            s.push_str("\t}\n");
        }
        s.push_str(
            "\tchain forward {\n\
             \t\ttype filter hook forward priority filter; policy accept;\n\
             \t\tct state established,related accept\n\
             \t\tip saddr vmap @egress-pods\n\
             \t\tip daddr vmap @ingress-pods\n\
             \t}\n",
        );
        s.push_str("}\n");
        s
    }
}

/// A pod as the planner uses it: running with an IPv4 address on the pod network.
#[derive(Debug, Clone)]
struct PodView<'a> {
    namespace: &'a str,
    name: &'a str,
    node: &'a str,
    ip: Ipv4Addr,
    labels: Option<&'a BTreeMap<String, String>>,
    pod: &'a Pod,
}

/// Pods that take part in policy: an IPv4 pod IP, not on the host network, not finished.
/// When two pods claim one IP (a deleted pod's address reused), the newest claim wins.
fn pod_views<'a>(pods: &[&'a Pod]) -> Vec<PodView<'a>> {
    let mut by_ip: BTreeMap<Ipv4Addr, PodView<'a>> = BTreeMap::new();
    for pod in pods {
        let Some(spec) = &pod.spec else { continue };
        let Some(status) = &pod.status else { continue };
        if spec.host_network == Some(true)
            || matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"))
        {
            continue;
        }
        let Some(ip) = status
            .pod_ip
            .as_deref()
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        else {
            continue;
        };
        let view = PodView {
            namespace: pod.metadata.namespace.as_deref().unwrap_or("default"),
            name: pod.metadata.name.as_deref().unwrap_or(""),
            node: spec.node_name.as_deref().unwrap_or(""),
            ip,
            labels: pod.metadata.labels.as_ref(),
            pod,
        };
        let newer = |old: &PodView| {
            let deleting = |v: &PodView| v.pod.metadata.deletion_timestamp.is_some();
            match (deleting(old), deleting(&view)) {
                (true, false) => true,
                (false, true) => false,
                _ => {
                    pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
                        > old.pod.metadata.creation_timestamp.as_ref().map(|t| t.0)
                }
            }
        };
        match by_ip.get(&ip) {
            Some(old) if !newer(old) => {}
            _ => {
                by_ip.insert(ip, view);
            }
        }
    }
    by_ip.into_values().collect()
}

/// Namespace name → its labels, with the name label the API server sets on every Namespace.
fn namespace_labels(namespaces: &[&Namespace]) -> BTreeMap<String, BTreeMap<String, String>> {
    namespaces
        .iter()
        .filter_map(|ns| {
            let name = ns.metadata.name.clone()?;
            let mut labels = ns.metadata.labels.clone().unwrap_or_default();
            labels
                .entry(NAMESPACE_NAME_LABEL.into())
                .or_insert_with(|| name.clone());
            Some((name, labels))
        })
        .collect()
}

/// Whether `spec` isolates its pods for `dir` (policyTypes, defaulted as the API server does:
/// Ingress always, Egress when egress rules exist).
pub fn affects(spec: &NetworkPolicySpec, dir: Direction) -> bool {
    match spec.policy_types.as_deref() {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == dir.type_name()),
        _ => match dir {
            Direction::Ingress => true,
            Direction::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

/// An ipBlock as matched: the network minus its exceptions (IPv4 only; the pod network is).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    cidr: Ipv4Net,
    except: Vec<Ipv4Net>,
}

impl Block {
    fn parse(cidr: &str, except: &[String]) -> Option<Block> {
        let net = |s: &str| s.trim().parse::<Ipv4Net>().ok().map(|n| n.trunc());
        let cidr = net(cidr)?;
        let except: Vec<Ipv4Net> = except.iter().filter_map(|e| net(e)).collect();
        Some(Block {
            cidr,
            // Overlapping intervals are an error in an nft set: merge them first.
            except: Ipv4Net::aggregate(&except),
        })
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        self.cidr.contains(&ip) && !self.except.iter().any(|e| e.contains(&ip))
    }

    /// The match on `field` (`ip saddr`/`ip daddr`).
    fn nft(&self, field: &str) -> String {
        let mut s = format!("{field} {}", self.cidr);
        if !self.except.is_empty() {
            let ex: Vec<String> = self.except.iter().map(|e| e.to_string()).collect();
            let _ = write!(s, " {field} != {{ {} }}", ex.join(", "));
        }
        s
    }
}

/// The peers of one rule.
#[derive(Debug, Clone)]
enum Peers {
    /// No `from`/`to`: every source/destination.
    Any,
    /// Pods chosen by the selector peers (IPs) and the ipBlock peers.
    Some {
        pods: BTreeSet<Ipv4Addr>,
        has_selectors: bool,
        blocks: Vec<Block>,
    },
}

/// Whether `peer` (a selector peer) selects `pod`, for a policy in `policy_ns`.
fn peer_selects(
    peer: &NetworkPolicyPeer,
    policy_ns: &str,
    pod: &PodView,
    ns_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> bool {
    let ns_ok = match &peer.namespace_selector {
        None => pod.namespace == policy_ns,
        Some(sel) => {
            let fallback;
            let labels = match ns_labels.get(pod.namespace) {
                Some(l) => l,
                None => {
                    fallback = BTreeMap::from([(
                        NAMESPACE_NAME_LABEL.to_string(),
                        pod.namespace.to_string(),
                    )]);
                    &fallback
                }
            };
            selector_matches(sel, Some(labels))
        }
    };
    ns_ok
        && match &peer.pod_selector {
            None => true,
            Some(sel) => selector_matches(sel, pod.labels),
        }
}

fn resolve_peers(
    peers: Option<&Vec<NetworkPolicyPeer>>,
    policy_ns: &str,
    pods: &[PodView],
    ns_labels: &BTreeMap<String, BTreeMap<String, String>>,
) -> Peers {
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        return Peers::Any;
    };
    let mut ips = BTreeSet::new();
    let mut has_selectors = false;
    let mut blocks = Vec::new();
    for peer in peers {
        if let Some(b) = &peer.ip_block {
            // An IPv6 or malformed block matches no IPv4 packet.
            if let Some(block) = Block::parse(&b.cidr, b.except.as_deref().unwrap_or(&[])) {
                blocks.push(block);
            }
            continue;
        }
        if peer.pod_selector.is_none() && peer.namespace_selector.is_none() {
            // Validation refuses an empty peer; it selects nothing.
            continue;
        }
        has_selectors = true;
        ips.extend(
            pods.iter()
                .filter(|p| peer_selects(peer, policy_ns, p, ns_labels))
                .map(|p| p.ip),
        );
    }
    Peers::Some {
        pods: ips,
        has_selectors,
        blocks,
    }
}

impl Peers {
    fn contains(&self, ip: Ipv4Addr) -> bool {
        match self {
            Peers::Any => true,
            Peers::Some { pods, blocks, .. } => {
                pods.contains(&ip) || blocks.iter().any(|b| b.contains(ip))
            }
        }
    }
}

/// A port entry of a rule, resolved as far as it can be without the pod it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortSpec {
    Any,
    Proto(&'static str),
    Range(&'static str, u16, u16),
    Named(&'static str, String),
    /// Cannot match anything (a bad protocol or port number).
    Never,
}

fn protocol(p: Option<&str>) -> Option<&'static str> {
    match p.unwrap_or("TCP") {
        "TCP" => Some("tcp"),
        "UDP" => Some("udp"),
        "SCTP" => Some("sctp"),
        _ => None,
    }
}

fn port_specs(ports: Option<&Vec<NetworkPolicyPort>>) -> Vec<PortSpec> {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return vec![PortSpec::Any];
    };
    ports
        .iter()
        .map(|p| {
            let Some(proto) = protocol(p.protocol.as_deref()) else {
                return PortSpec::Never;
            };
            match &p.port {
                None => PortSpec::Proto(proto),
                Some(IntOrString::Int(n)) => {
                    let Ok(lo) = u16::try_from(*n) else {
                        return PortSpec::Never;
                    };
                    if lo == 0 {
                        return PortSpec::Never;
                    }
                    let hi = p
                        .end_port
                        .and_then(|e| u16::try_from(e).ok())
                        .filter(|e| *e >= lo)
                        .unwrap_or(lo);
                    PortSpec::Range(proto, lo, hi)
                }
                Some(IntOrString::String(s)) => match s.parse::<u16>() {
                    // A number given as a string is a number (as upstream's IntOrString).
                    Ok(n) if n > 0 => PortSpec::Range(proto, n, n),
                    Ok(_) => PortSpec::Never,
                    Err(_) => PortSpec::Named(proto, s.clone()),
                },
            }
        })
        .collect()
}

/// The number of `pod`'s container port called `name` with protocol `proto`.
fn named_port(pod: &Pod, proto: &str, name: &str) -> Option<u16> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(name) && protocol(p.protocol.as_deref()) == Some(proto))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

fn port_match(proto: &str, lo: u16, hi: u16) -> String {
    if lo == hi {
        format!("{proto} dport {lo}")
    } else {
        format!("{proto} dport {lo}-{hi}")
    }
}

/// `<prefix>-<8 hex of sha256(key)>-<key>`, cut to the kernel's limit (the hash keeps it unique).
fn object_name(prefix: &str, key: &str) -> String {
    let hash = hex::encode(&Sha256::digest(key.as_bytes())[..4]);
    let mut name = format!("{prefix}-{hash}-{key}");
    name.truncate(MAX_NAME);
    name
}

/// A rule's peers and ports as written (`from`/`to`, `ports`).
type RawRule<'a> = (
    Option<&'a Vec<NetworkPolicyPeer>>,
    Option<&'a Vec<NetworkPolicyPort>>,
);

/// One rule of one policy, resolved against the cluster.
struct CompiledRule {
    dir: Direction,
    /// `<ns>/<policy>/<dir>/<index>`: names its sets.
    key: String,
    peers: Peers,
    ports: Vec<PortSpec>,
}

/// Plans the table for the pods of node `node`.
pub fn plan(
    policies: &[&NetworkPolicy],
    pods: &[&Pod],
    namespaces: &[&Namespace],
    node: &str,
) -> Ruleset {
    let views = pod_views(pods);
    let ns_labels = namespace_labels(namespaces);
    let mut sorted: Vec<&NetworkPolicy> = policies.to_vec();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let local: Vec<&PodView> = views.iter().filter(|p| p.node == node).collect();
    let mut out = Ruleset::default();
    // Per local pod and direction: the rules that apply (None = not isolated).
    let mut applied: BTreeMap<(Ipv4Addr, Direction), Vec<usize>> = BTreeMap::new();
    let mut rules: Vec<CompiledRule> = Vec::new();
    for policy in sorted {
        let Some(spec) = &policy.spec else { continue };
        let ns = policy.metadata.namespace.as_deref().unwrap_or("default");
        let name = policy.metadata.name.as_deref().unwrap_or("");
        let targets: Vec<&&PodView> = local
            .iter()
            .filter(|p| {
                p.namespace == ns
                    // An absent podSelector is the empty one: every pod of the namespace.
                    && spec
                        .pod_selector
                        .as_ref()
                        .is_none_or(|sel| selector_matches(sel, p.labels))
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        for dir in [Direction::Ingress, Direction::Egress] {
            if !affects(spec, dir) {
                continue;
            }
            let mut indices = Vec::new();
            let raw: Vec<RawRule> = match dir {
                Direction::Ingress => spec
                    .ingress
                    .iter()
                    .flatten()
                    .map(|r| (r.from.as_ref(), r.ports.as_ref()))
                    .collect(),
                Direction::Egress => spec
                    .egress
                    .iter()
                    .flatten()
                    .map(|r| (r.to.as_ref(), r.ports.as_ref()))
                    .collect(),
            };
            for (i, (peers, ports)) in raw.into_iter().enumerate() {
                indices.push(rules.len());
                rules.push(CompiledRule {
                    dir,
                    key: format!("{ns}/{name}/{}/{i}", dir.short()),
                    peers: resolve_peers(peers, ns, &views, &ns_labels),
                    ports: port_specs(ports),
                });
            }
            for t in &targets {
                applied
                    .entry((t.ip, dir))
                    .or_default()
                    .extend(indices.iter().copied());
            }
        }
    }
    for ((ip, dir), rule_ids) in applied {
        let Some(pod) = local.iter().find(|p| p.ip == ip) else {
            continue;
        };
        let chain = object_name(
            &format!("pod-{}", dir.short()),
            &format!("{}/{}", pod.namespace, pod.name),
        );
        let mut lines = vec!["ct state invalid drop".to_string()];
        // A pod cannot block itself; its own node always reaches it.
        match dir {
            Direction::Ingress => {
                lines.push(format!("ip saddr {ip} return"));
                lines.push("fib saddr type local return".into());
            }
            Direction::Egress => lines.push(format!("ip daddr {ip} return")),
        }
        for id in rule_ids {
            rule_lines(&rules[id], pod, &views, &mut out.sets, &mut lines);
        }
        lines.push("meta l4proto tcp reject with tcp reset".into());
        lines.push("reject".into());
        match dir {
            Direction::Ingress => out.ingress.insert(ip, chain.clone()),
            Direction::Egress => out.egress.insert(ip, chain.clone()),
        };
        out.chains.insert(chain, lines);
    }
    out
}

/// Appends the lines allowing `rule` for the isolated local pod `pod` (each line `return`s).
fn rule_lines(
    rule: &CompiledRule,
    pod: &PodView,
    pods: &[PodView],
    sets: &mut BTreeMap<String, SetDef>,
    lines: &mut Vec<String>,
) {
    let field = rule.dir.peer_field();
    // The peer matches, each ANDed with a port match below.
    let mut peer_matches: Vec<String> = Vec::new();
    match &rule.peers {
        Peers::Any => peer_matches.push(String::new()),
        Peers::Some {
            pods: ips,
            has_selectors,
            blocks,
        } => {
            if *has_selectors {
                let name = object_name("peers", &rule.key);
                sets.entry(name.clone()).or_insert_with(|| SetDef {
                    kind: SetType::Addr,
                    elements: ips.iter().map(|ip| ip.to_string()).collect(),
                });
                peer_matches.push(format!("{field} @{name}"));
            }
            peer_matches.extend(blocks.iter().map(|b| b.nft(field)));
        }
    }
    for (pi, port) in rule.ports.iter().enumerate() {
        let port_match = match port {
            PortSpec::Any => String::new(),
            PortSpec::Never => continue,
            PortSpec::Proto(p) => format!("meta l4proto {p}"),
            PortSpec::Range(p, lo, hi) => port_match(p, *lo, *hi),
            PortSpec::Named(p, name) => match rule.dir {
                // Ingress: the name is the isolated pod's own container port.
                Direction::Ingress => match named_port(pod.pod, p, name) {
                    Some(n) => port_match(p, n, n),
                    None => continue,
                },
                // Egress: it resolves on each destination pod the peers allow.
                Direction::Egress => {
                    let set = object_name("named", &format!("{}/{pi}", rule.key));
                    sets.entry(set.clone()).or_insert_with(|| SetDef {
                        kind: SetType::AddrProtoPort,
                        elements: pods
                            .iter()
                            .filter(|d| rule.peers.contains(d.ip))
                            .filter_map(|d| {
                                named_port(d.pod, p, name).map(|n| format!("{} . {p} . {n}", d.ip))
                            })
                            .collect(),
                    });
                    lines.push(format!("ip daddr . meta l4proto . th dport @{set} return"));
                    continue;
                }
            },
        };
        for peer in &peer_matches {
            let line = [peer.as_str(), port_match.as_str(), "return"]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            lines.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str, node: &str, ip: &str, labels: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"namespace": ns, "name": name, "labels": labels,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "x",
                "ports": [{"name": "http", "containerPort": 8080},
                          {"name": "dns", "containerPort": 5353, "protocol": "UDP"}]}]},
            "status": {"phase": "Running", "podIP": ip},
        }))
        .unwrap()
    }

    fn ns(name: &str, labels: serde_json::Value) -> Namespace {
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
    }

    fn policy(ns: &str, name: &str, spec: serde_json::Value) -> NetworkPolicy {
        serde_json::from_value(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec}))
            .unwrap()
    }

    /// A small cluster: web (app=web) and db (app=db) on n1, client (app=client) on n2 in
    /// `prod`; tools (app=client) on n2 in `dev`.
    fn cluster() -> (Vec<Pod>, Vec<Namespace>) {
        (
            vec![
                pod("prod", "web", "n1", "10.42.1.2", json!({"app": "web"})),
                pod("prod", "db", "n1", "10.42.1.3", json!({"app": "db"})),
                pod(
                    "prod",
                    "client",
                    "n2",
                    "10.42.2.2",
                    json!({"app": "client"}),
                ),
                pod("dev", "tools", "n2", "10.42.2.3", json!({"app": "client"})),
            ],
            vec![
                ns("prod", json!({"env": "prod"})),
                ns("dev", json!({"env": "dev"})),
            ],
        )
    }

    fn plan_for(policies: &[NetworkPolicy], node: &str) -> Ruleset {
        let (pods, nss) = cluster();
        let p: Vec<&NetworkPolicy> = policies.iter().collect();
        let pods: Vec<&Pod> = pods.iter().collect();
        let nss: Vec<&Namespace> = nss.iter().collect();
        plan(&p, &pods, &nss, node)
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    /// The allow lines of `pod_ip`'s chain for `dir` (without the fixed head and the two rejects).
    fn allows(r: &Ruleset, dir: Direction, pod_ip: &str) -> Vec<String> {
        let map = match dir {
            Direction::Ingress => &r.ingress,
            Direction::Egress => &r.egress,
        };
        let chain = &r.chains[&map[&ip(pod_ip)]];
        assert_eq!(
            chain.first().map(String::as_str),
            Some("ct state invalid drop")
        );
        assert_eq!(
            chain[chain.len() - 2..],
            ["meta l4proto tcp reject with tcp reset", "reject"]
        );
        let head = if dir == Direction::Ingress { 3 } else { 2 };
        chain[head..chain.len() - 2].to_vec()
    }

    fn set_of<'a>(r: &'a Ruleset, line: &str) -> &'a SetDef {
        let name = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix('@'))
            .unwrap_or_else(|| panic!("no set in {line:?}"));
        &r.sets[name]
    }

    #[test]
    fn no_policy_isolates_nothing() {
        let r = plan_for(&[], "n1");
        assert!(r.ingress.is_empty() && r.egress.is_empty() && r.chains.is_empty());
        let text = r.render();
        assert!(text.starts_with("table inet skiff-netpol\ndelete table inet skiff-netpol\n"));
        assert!(text.contains("type filter hook forward priority filter; policy accept;"));
    }

    #[test]
    fn default_deny_ingress_isolates_every_local_pod_of_the_namespace_only() {
        let deny = policy(
            "prod",
            "deny",
            json!({"podSelector": {}, "policyTypes": ["Ingress"]}),
        );
        let r = plan_for(std::slice::from_ref(&deny), "n1");
        assert_eq!(
            r.ingress.keys().copied().collect::<Vec<_>>(),
            vec![ip("10.42.1.2"), ip("10.42.1.3")]
        );
        assert!(
            r.egress.is_empty(),
            "ingress-only policy leaves egress open"
        );
        assert!(allows(&r, Direction::Ingress, "10.42.1.2").is_empty());
        let chain = &r.chains[&r.ingress[&ip("10.42.1.2")]];
        // Self and the node itself stay allowed, before the final reject.
        assert_eq!(chain[1], "ip saddr 10.42.1.2 return");
        assert_eq!(chain[2], "fib saddr type local return");
        // On n2 only pods of n2 are programmed: client (prod) is, tools (dev) is not.
        let r2 = plan_for(&[deny], "n2");
        assert_eq!(
            r2.ingress.keys().copied().collect::<Vec<_>>(),
            vec![ip("10.42.2.2")]
        );
    }

    #[test]
    fn policy_types_default_as_the_api_server_does() {
        // No policyTypes and egress rules: both directions.
        let p = policy(
            "prod",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "web"}},
            "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}]}),
        );
        let r = plan_for(&[p], "n1");
        assert!(r.ingress.contains_key(&ip("10.42.1.2")));
        assert_eq!(
            allows(&r, Direction::Egress, "10.42.1.2"),
            vec!["udp dport 53 return"]
        );
        // Egress only: ingress stays open even with ingress rules listed.
        let p = policy(
            "prod",
            "p",
            json!({"podSelector": {}, "policyTypes": ["Egress"],
            "ingress": [{}]}),
        );
        let r = plan_for(&[p], "n1");
        assert!(r.ingress.is_empty());
        assert!(
            allows(&r, Direction::Egress, "10.42.1.2").is_empty(),
            "egress: [] denies all"
        );
    }

    #[test]
    fn pod_selector_and_port_allow_exactly_that() {
        let p = policy(
            "prod",
            "allow-client",
            json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                         "ports": [{"port": 80, "protocol": "TCP"}]}]}),
        );
        let r = plan_for(&[p], "n1");
        assert_eq!(r.ingress.len(), 1, "db is not selected: {r:?}");
        let lines = allows(&r, Direction::Ingress, "10.42.1.2");
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("ip saddr @peers-") && lines[0].ends_with(" tcp dport 80 return")
        );
        // The podSelector peer is in the policy's namespace: dev/tools (also app=client) is not.
        let set = set_of(&r, &lines[0]);
        assert_eq!(set.kind, SetType::Addr);
        assert_eq!(set.elements, BTreeSet::from(["10.42.2.2".to_string()]));
    }

    #[test]
    fn namespace_selector_alone_and_combined_with_a_pod_selector() {
        let any_in_dev = policy(
            "prod",
            "a",
            json!({"podSelector": {},
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"env": "dev"}}}]}]}),
        );
        let r = plan_for(&[any_in_dev], "n1");
        let lines = allows(&r, Direction::Ingress, "10.42.1.3");
        assert_eq!(
            set_of(&r, &lines[0]).elements,
            BTreeSet::from(["10.42.2.3".to_string()])
        );
        assert!(lines[0].ends_with("return") && !lines[0].contains("dport"));

        // Both in one peer: client pods in namespaces named prod (the automatic name label).
        let and = policy(
            "prod",
            "b",
            json!({"podSelector": {}, "ingress": [{"from": [{
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}},
            "podSelector": {"matchLabels": {"app": "client"}}}]}]}),
        );
        let r = plan_for(&[and], "n1");
        let lines = allows(&r, Direction::Ingress, "10.42.1.3");
        assert_eq!(
            set_of(&r, &lines[0]).elements,
            BTreeSet::from(["10.42.2.2".to_string()])
        );

        // As two peers (OR): every client pod anywhere, plus every pod in dev.
        let or = policy(
            "prod",
            "c",
            json!({"podSelector": {}, "ingress": [{"from": [
            {"namespaceSelector": {}}, {"podSelector": {"matchLabels": {"app": "db"}}}]}]}),
        );
        let r = plan_for(&[or], "n1");
        let lines = allows(&r, Direction::Ingress, "10.42.1.2");
        assert_eq!(
            set_of(&r, &lines[0]).elements.len(),
            4,
            "every pod of every namespace"
        );
    }

    #[test]
    fn policies_are_a_union_in_any_order() {
        let a = policy(
            "prod",
            "a",
            json!({"podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"ports": [{"port": 80}]}]}),
        );
        let b = policy(
            "prod",
            "b",
            json!({"podSelector": {},
            "ingress": [{"ports": [{"port": 443}]}]}),
        );
        let ab = plan_for(&[a.clone(), b.clone()], "n1");
        let ba = plan_for(&[b, a], "n1");
        assert_eq!(ab, ba);
        assert_eq!(
            allows(&ab, Direction::Ingress, "10.42.1.2"),
            vec!["tcp dport 80 return", "tcp dport 443 return"]
        );
        assert_eq!(
            allows(&ab, Direction::Ingress, "10.42.1.3"),
            vec!["tcp dport 443 return"]
        );
    }

    #[test]
    fn empty_rule_allows_everything_and_missing_ports_mean_any_port() {
        let p = policy("prod", "all", json!({"podSelector": {}, "ingress": [{}]}));
        let r = plan_for(&[p], "n1");
        assert_eq!(allows(&r, Direction::Ingress, "10.42.1.2"), vec!["return"]);
        let p = policy(
            "prod",
            "udp",
            json!({"podSelector": {},
            "ingress": [{"ports": [{"protocol": "UDP"}, {"protocol": "SCTP", "port": 9}]}]}),
        );
        let r = plan_for(&[p], "n1");
        assert_eq!(
            allows(&r, Direction::Ingress, "10.42.1.2"),
            vec!["meta l4proto udp return", "sctp dport 9 return"]
        );
    }

    #[test]
    fn ip_blocks_with_except_and_end_port() {
        let p = policy(
            "prod",
            "egress",
            json!({"podSelector": {"matchLabels": {"app": "db"}},
            "policyTypes": ["Egress"],
            "egress": [{"to": [{"ipBlock": {"cidr": "10.42.0.0/16",
                                            "except": ["10.42.2.3/32", "10.42.2.0/24", "10.42.9.9/32"]}},
                               {"ipBlock": {"cidr": "192.0.2.7/24"}},
                               {"ipBlock": {"cidr": "2001:db8::/64"}}],
                        "ports": [{"port": 8000, "endPort": 8080}]}]}),
        );
        let r = plan_for(&[p], "n1");
        assert_eq!(
            allows(&r, Direction::Egress, "10.42.1.3"),
            vec![
                // The overlapping exceptions are merged; host bits are dropped; IPv6 is skipped.
                "ip daddr 10.42.0.0/16 ip daddr != { 10.42.2.0/24, 10.42.9.9/32 } tcp dport 8000-8080 return",
                "ip daddr 192.0.2.0/24 tcp dport 8000-8080 return",
            ]
        );
        assert_eq!(
            r.chains[&r.egress[&ip("10.42.1.3")]][1],
            "ip daddr 10.42.1.3 return"
        );
    }

    #[test]
    fn named_ports_resolve_on_the_isolated_pod_for_ingress_and_on_peers_for_egress() {
        let mut pods = cluster().0;
        // The client serves "http" on another number.
        let mut other = pod("prod", "alt", "n2", "10.42.2.9", json!({"app": "client"}));
        other.spec.as_mut().unwrap().containers[0]
            .ports
            .as_mut()
            .unwrap()[0]
            .container_port = 9090;
        pods.push(other);
        let nss = cluster().1;
        let p = policy(
            "prod",
            "named",
            json!({"podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"},
                                   {"port": "dns"}, {"port": "nope"}]}],
            "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "client"}}}],
                        "ports": [{"port": "http"}]}]}),
        );
        let r = plan(
            &[&p],
            &pods.iter().collect::<Vec<_>>(),
            &nss.iter().collect::<Vec<_>>(),
            "n1",
        );
        // dns/TCP and nope do not exist on the pod: no line, never a wider one.
        assert_eq!(
            allows(&r, Direction::Ingress, "10.42.1.2"),
            vec!["tcp dport 8080 return", "udp dport 5353 return"]
        );
        let lines = allows(&r, Direction::Egress, "10.42.1.2");
        assert_eq!(lines.len(), 1);
        assert!(
            lines[0].starts_with("ip daddr . meta l4proto . th dport @named-"),
            "{lines:?}"
        );
        let set = set_of(&r, &lines[0]);
        assert_eq!(set.kind, SetType::AddrProtoPort);
        assert_eq!(
            set.elements,
            BTreeSet::from([
                "10.42.2.2 . tcp . 8080".to_string(),
                "10.42.2.9 . tcp . 9090".to_string()
            ])
        );
    }

    #[test]
    fn ports_that_cannot_match_allow_nothing_rather_than_everything() {
        let p = policy(
            "prod",
            "bad",
            json!({"podSelector": {},
            "ingress": [{"ports": [{"port": 0}, {"port": 70000}, {"port": 80, "protocol": "ICMP"}]}]}),
        );
        let r = plan_for(&[p], "n1");
        assert!(allows(&r, Direction::Ingress, "10.42.1.2").is_empty());
    }

    #[test]
    fn host_network_pending_and_finished_pods_are_neither_targets_nor_peers() {
        let (mut pods, nss) = cluster();
        let mut host = pod("prod", "host", "n1", "192.0.2.1", json!({"app": "client"}));
        host.spec.as_mut().unwrap().host_network = Some(true);
        let mut done = pod("prod", "done", "n1", "10.42.1.7", json!({"app": "client"}));
        done.status.as_mut().unwrap().phase = Some("Succeeded".into());
        let mut pending = pod("prod", "pending", "n1", "", json!({"app": "client"}));
        pending.status.as_mut().unwrap().pod_ip = None;
        pods.extend([host, done, pending]);
        let p = policy(
            "prod",
            "p",
            json!({"podSelector": {},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}]}),
        );
        let r = plan(
            &[&p],
            &pods.iter().collect::<Vec<_>>(),
            &nss.iter().collect::<Vec<_>>(),
            "n1",
        );
        assert_eq!(
            r.ingress.keys().copied().collect::<Vec<_>>(),
            vec![ip("10.42.1.2"), ip("10.42.1.3")]
        );
        let lines = allows(&r, Direction::Ingress, "10.42.1.2");
        assert_eq!(
            set_of(&r, &lines[0]).elements,
            BTreeSet::from(["10.42.2.2".to_string()])
        );
    }

    #[test]
    fn a_reused_address_belongs_to_the_pod_not_being_deleted() {
        let (mut pods, nss) = cluster();
        let mut old = pod("prod", "old", "n1", "10.42.1.2", json!({"app": "old"}));
        old.metadata.deletion_timestamp = old.metadata.creation_timestamp.clone();
        pods.insert(0, old);
        let p = policy(
            "prod",
            "p",
            json!({"podSelector": {"matchLabels": {"app": "web"}}}),
        );
        let r = plan(
            &[&p],
            &pods.iter().collect::<Vec<_>>(),
            &nss.iter().collect::<Vec<_>>(),
            "n1",
        );
        assert!(r.ingress[&ip("10.42.1.2")].ends_with("-prod/web"), "{r:?}");
    }

    #[test]
    fn rendered_table_defines_sets_and_chains_before_the_maps_that_use_them() {
        let p = policy(
            "prod",
            "allow-client",
            json!({"podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
            "egress": [{"to": [{"podSelector": {}}], "ports": [{"port": "http"}]}]}),
        );
        let r = plan_for(&[p], "n1");
        let t = r.render();
        let pos = |s: &str| t.find(s).unwrap_or_else(|| panic!("{s:?} missing in\n{t}"));
        assert!(pos("\tset peers-") < pos("\tchain pod-in-"));
        assert!(pos("\tset named-") < pos("\tchain pod-out-"));
        assert!(pos("\tchain pod-in-") < pos("\tmap ingress-pods"));
        assert!(pos("\tmap egress-pods") < pos("\tchain forward"));
        assert!(t.contains("type ipv4_addr . inet_proto . inet_service"));
        assert!(t.contains("10.42.1.2 : jump pod-in-"));
        assert!(pos("ct state established,related accept") < pos("ip saddr vmap @egress-pods"));
        assert!(pos("ip saddr vmap @egress-pods") < pos("ip daddr vmap @ingress-pods"));
        // Names stay within the kernel's limit however long the objects' names are.
        let long = "x".repeat(250);
        assert!(object_name("pod-in", &format!("{long}/{long}")).len() <= MAX_NAME);
    }

    /// The kernel takes what the planner writes: every construct at once (sets of both types,
    /// ipBlock with except, ranges, named ports, fib, the maps), loaded by the real `nft` into
    /// a throw-away network namespace (`unshare --net`), then loaded again (the replace path).
    /// Needs root, util-linux and nftables (CI has them); `SKIFF_E2E_NODES=0` skips it like
    /// the other tests that need root.
    #[test]
    fn rendered_table_loads_into_the_kernel() {
        use std::io::Write;
        if std::env::var("SKIFF_E2E_NODES").is_ok_and(|v| v.trim() == "0") {
            eprintln!("rendered_table_loads_into_the_kernel SKIPPED: SKIFF_E2E_NODES=0");
            return;
        }
        let p = policy(
            "prod",
            "all",
            json!({"podSelector": {},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "client"}}},
                                  {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}],
                         "ports": [{"port": "http"}, {"port": 80, "endPort": 90},
                                   {"protocol": "UDP"}]}],
            "egress": [{"to": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]},
                       {"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}]}]}),
        );
        let script = plan_for(&[p], "n1").render();
        let twice = format!("{script}{script}");
        let mut child = std::process::Command::new("unshare")
            .args(["--net", "nft", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run unshare as root (apt-get install util-linux nftables; SKIFF_E2E_NODES=0 skips)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(twice.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft refused:\n{}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
