//! Pure planning for the pod network: the flannel annotations a node publishes, the lease each
//! Node's annotations describe, the routes/neighbours/FDB entries wanted for the other nodes,
//! and the diff between that and what the kernel holds.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::Backend;

/// Prefix of flannel's node annotations (kube subnet manager).
pub const PREFIX: &str = "flannel.alpha.coreos.com/";
/// `flannel.<VNI>`: the VXLAN device.
pub const VXLAN_DEVICE: &str = "flannel.1";
/// flannel's Linux default VNI.
pub const VNI: u32 = 1;
/// flannel's Linux default VXLAN UDP port (the kernel's, not IANA's 4789).
pub const VXLAN_PORT: u16 = 8472;
/// Outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;

/// A MAC address.
pub type Mac = [u8; 6];

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses `aa:bb:cc:dd:ee:ff` (either case).
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The VTEP MAC of a node: derived from its name, so it stays the same across restarts (and
/// the other nodes' ARP/FDB entries stay right) without state on disk. Locally administered,
/// unicast.
pub fn vtep_mac(node_name: &str) -> Mac {
    let digest = Sha256::digest(format!("skiff-vtep:{node_name}").as_bytes());
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest[..6]);
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

/// The MTU pods get: the external MTU minus the VXLAN overhead, or the external MTU.
pub fn pod_mtu(backend: Backend, external_mtu: u32) -> u32 {
    match backend {
        Backend::Vxlan => external_mtu.saturating_sub(VXLAN_OVERHEAD),
        Backend::HostGw | Backend::None => external_mtu,
    }
}

/// The annotations this node publishes (a merge patch's `metadata.annotations`).
pub fn node_annotations(backend: Backend, public_ip: Ipv4Addr, mac: &Mac) -> Value {
    let data = match backend {
        Backend::Vxlan => json!({"VNI": VNI, "VtepMAC": format_mac(mac)}).to_string(),
        _ => "null".to_string(),
    };
    json!({
        format!("{PREFIX}kube-subnet-manager"): "true",
        format!("{PREFIX}backend-type"): backend.as_str(),
        format!("{PREFIX}backend-data"): data,
        format!("{PREFIX}public-ip"): public_ip.to_string(),
    })
}

/// What another node's annotations and spec say about its piece of the pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub node: String,
    pub pod_cidr: Ipv4Net,
    pub public_ip: Ipv4Addr,
    pub backend: String,
    /// VXLAN only.
    pub vtep_mac: Option<Mac>,
}

/// The lease of `node`, if it runs the kube subnet manager and has a pod CIDR and public IP.
/// `public-ip-overwrite` wins over `public-ip`, as in flannel.
pub fn lease_of(node: &Node) -> Option<Lease> {
    let ann = node.metadata.annotations.as_ref()?;
    let get = |k: &str| ann.get(&format!("{PREFIX}{k}")).map(|s| s.trim());
    if get("kube-subnet-manager") != Some("true") {
        return None;
    }
    let pod_cidr: Ipv4Net = node.spec.as_ref()?.pod_cidr.as_deref()?.parse().ok()?;
    let public_ip = get("public-ip-overwrite")
        .filter(|s| !s.is_empty())
        .or(get("public-ip"))?
        .parse()
        .ok()?;
    let backend = get("backend-type")?.to_string();
    let vtep_mac = get("backend-data")
        .and_then(|d| serde_json::from_str::<Value>(d).ok())
        .and_then(|d| d.get("VtepMAC").and_then(Value::as_str).and_then(parse_mac));
    Some(Lease {
        node: node.metadata.name.clone().unwrap_or_default(),
        pod_cidr: pod_cidr.trunc(),
        public_ip,
        backend,
        vtep_mac,
    })
}

/// Kernel state for the remote nodes: routes by destination, ARP entries on the VXLAN device by
/// IP, FDB entries on it by MAC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetState {
    /// pod CIDR → gateway (VXLAN: the remote network address, onlink on flannel.1; host-gw:
    /// the remote node IP on the external interface).
    pub routes: BTreeMap<Ipv4Net, Ipv4Addr>,
    pub neighbours: BTreeMap<Ipv4Addr, Mac>,
    pub fdb: BTreeMap<Mac, Ipv4Addr>,
}

/// The wanted state for `leases` seen from `self_name`: other nodes with the same backend and
/// a pod CIDR inside the cluster CIDR. Returns the state and the leases skipped, with why.
pub fn desired(
    self_name: &str,
    backend: Backend,
    cluster_cidr: Ipv4Net,
    leases: &[Lease],
) -> (NetState, Vec<(String, String)>) {
    let mut st = NetState::default();
    let mut skipped = Vec::new();
    if backend == Backend::None {
        return (st, skipped);
    }
    for l in leases {
        if l.node == self_name {
            continue;
        }
        if l.backend != backend.as_str() {
            skipped.push((
                l.node.clone(),
                format!(
                    "backend {:?}, this node runs {:?}",
                    l.backend,
                    backend.as_str()
                ),
            ));
            continue;
        }
        if !cluster_cidr.contains(&l.pod_cidr) {
            skipped.push((
                l.node.clone(),
                format!(
                    "pod CIDR {} is outside the cluster CIDR {cluster_cidr}",
                    l.pod_cidr
                ),
            ));
            continue;
        }
        match backend {
            Backend::Vxlan => {
                let Some(mac) = l.vtep_mac else {
                    skipped.push((l.node.clone(), "no VtepMAC in backend-data".into()));
                    continue;
                };
                let gw = l.pod_cidr.network();
                st.routes.insert(l.pod_cidr, gw);
                st.neighbours.insert(gw, mac);
                st.fdb.insert(mac, l.public_ip);
            }
            Backend::HostGw => {
                st.routes.insert(l.pod_cidr, l.public_ip);
            }
            Backend::None => {}
        }
    }
    (st, skipped)
}

/// One change to the kernel's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    DelRoute(Ipv4Net, Ipv4Addr),
    DelNeighbour(Ipv4Addr, Mac),
    DelFdb(Mac, Ipv4Addr),
    SetNeighbour(Ipv4Addr, Mac),
    SetFdb(Mac, Ipv4Addr),
    /// Added or replaced.
    SetRoute(Ipv4Net, Ipv4Addr),
}

/// The changes that turn `current` into `want`: removals first (routes before the entries they
/// use), then ARP and FDB entries before the routes that need them, so the kernel never ARPs
/// for a gateway.
pub fn diff(want: &NetState, current: &NetState) -> Vec<Op> {
    let mut ops = Vec::new();
    for (k, v) in &current.routes {
        if !want.routes.contains_key(k) {
            ops.push(Op::DelRoute(*k, *v));
        }
    }
    for (k, v) in &current.neighbours {
        if !want.neighbours.contains_key(k) {
            ops.push(Op::DelNeighbour(*k, *v));
        }
    }
    for (k, v) in &current.fdb {
        if !want.fdb.contains_key(k) {
            ops.push(Op::DelFdb(*k, *v));
        }
    }
    for (k, v) in &want.neighbours {
        if current.neighbours.get(k) != Some(v) {
            ops.push(Op::SetNeighbour(*k, *v));
        }
    }
    for (k, v) in &want.fdb {
        if current.fdb.get(k) != Some(v) {
            ops.push(Op::SetFdb(*k, *v));
        }
    }
    for (k, v) in &want.routes {
        if current.routes.get(k) != Some(v) {
            ops.push(Op::SetRoute(*k, *v));
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use kube::api::ObjectMeta;

    fn node(name: &str, cidr: Option<&str>, ann: Value) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: serde_json::from_value(ann).unwrap(),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: cidr.map(str::to_string),
                ..Default::default()
            }),
            status: None,
        }
    }

    fn annotated(name: &str, cidr: &str, backend: Backend, ip: &str) -> Node {
        let ann = node_annotations(backend, ip.parse().unwrap(), &vtep_mac(name));
        node(name, Some(cidr), ann)
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn macs_are_stable_local_unicast_and_round_trip() {
        let a = vtep_mac("n1");
        assert_eq!(a, vtep_mac("n1"));
        assert_ne!(a, vtep_mac("n2"));
        assert_eq!(a[0] & 0x03, 0x02, "locally administered, unicast");
        assert_eq!(parse_mac(&format_mac(&a)), Some(a));
        assert_eq!(
            parse_mac("AA:bb:cc:dd:ee:0f"),
            Some([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f])
        );
        assert_eq!(parse_mac("aa:bb:cc:dd:ee"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:ff:00"), None);
        assert_eq!(parse_mac("aa:bb:cc:dd:ee:fff"), None);
    }

    #[test]
    fn mtu_follows_the_backend() {
        assert_eq!(pod_mtu(Backend::Vxlan, 1500), 1450);
        assert_eq!(pod_mtu(Backend::HostGw, 1500), 1500);
        assert_eq!(pod_mtu(Backend::None, 9000), 9000);
    }

    #[test]
    fn annotations_are_flannels() {
        let mac = [0x02, 0, 0, 0, 0, 1];
        let a = node_annotations(Backend::Vxlan, "192.0.2.1".parse().unwrap(), &mac);
        assert_eq!(a["flannel.alpha.coreos.com/kube-subnet-manager"], "true");
        assert_eq!(a["flannel.alpha.coreos.com/backend-type"], "vxlan");
        assert_eq!(a["flannel.alpha.coreos.com/public-ip"], "192.0.2.1");
        let data: Value =
            serde_json::from_str(a["flannel.alpha.coreos.com/backend-data"].as_str().unwrap())
                .unwrap();
        assert_eq!(data, json!({"VNI": 1, "VtepMAC": "02:00:00:00:00:01"}));
        let h = node_annotations(Backend::HostGw, "192.0.2.1".parse().unwrap(), &mac);
        assert_eq!(h["flannel.alpha.coreos.com/backend-type"], "host-gw");
        assert_eq!(h["flannel.alpha.coreos.com/backend-data"], "null");
    }

    #[test]
    fn leases_need_the_subnet_manager_a_cidr_and_an_ip() {
        let n = annotated("n2", "10.42.2.0/24", Backend::Vxlan, "192.0.2.2");
        let l = lease_of(&n).unwrap();
        assert_eq!(l.pod_cidr, net("10.42.2.0/24"));
        assert_eq!(l.public_ip, "192.0.2.2".parse::<Ipv4Addr>().unwrap());
        assert_eq!(l.backend, "vxlan");
        assert_eq!(l.vtep_mac, Some(vtep_mac("n2")));

        let mut no_cidr = n.clone();
        no_cidr.spec.as_mut().unwrap().pod_cidr = None;
        assert_eq!(lease_of(&no_cidr), None);
        assert_eq!(lease_of(&node("x", Some("10.42.3.0/24"), json!({}))), None);
        let mut not_managed = n.clone();
        not_managed
            .metadata
            .annotations
            .as_mut()
            .unwrap()
            .insert(format!("{PREFIX}kube-subnet-manager"), "false".into());
        assert_eq!(lease_of(&not_managed), None);

        let mut overwritten = n.clone();
        overwritten.metadata.annotations.as_mut().unwrap().insert(
            format!("{PREFIX}public-ip-overwrite"),
            "198.51.100.7".into(),
        );
        assert_eq!(
            lease_of(&overwritten).unwrap().public_ip,
            "198.51.100.7".parse::<Ipv4Addr>().unwrap()
        );
    }

    fn leases(nodes: &[Node]) -> Vec<Lease> {
        nodes.iter().filter_map(lease_of).collect()
    }

    #[test]
    fn vxlan_wants_arp_fdb_and_an_onlink_route_per_other_node() {
        let nodes = [
            annotated("n1", "10.42.0.0/24", Backend::Vxlan, "192.0.2.1"),
            annotated("n2", "10.42.1.0/24", Backend::Vxlan, "192.0.2.2"),
            annotated("n3", "10.42.2.0/24", Backend::Vxlan, "192.0.2.3"),
        ];
        let (st, skipped) = desired("n1", Backend::Vxlan, net("10.42.0.0/16"), &leases(&nodes));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            st.routes.into_iter().collect::<Vec<_>>(),
            vec![
                (net("10.42.1.0/24"), "10.42.1.0".parse().unwrap()),
                (net("10.42.2.0/24"), "10.42.2.0".parse().unwrap()),
            ]
        );
        assert_eq!(
            st.neighbours.get(&"10.42.2.0".parse().unwrap()),
            Some(&vtep_mac("n3"))
        );
        assert_eq!(
            st.fdb.get(&vtep_mac("n2")),
            Some(&"192.0.2.2".parse().unwrap())
        );
        assert_eq!(st.fdb.len(), 2);
    }

    #[test]
    fn host_gw_wants_a_route_via_each_node_ip() {
        let nodes = [
            annotated("n1", "10.42.0.0/24", Backend::HostGw, "192.0.2.1"),
            annotated("n2", "10.42.1.0/24", Backend::HostGw, "192.0.2.2"),
        ];
        let (st, _) = desired("n1", Backend::HostGw, net("10.42.0.0/16"), &leases(&nodes));
        assert_eq!(
            st.routes.into_iter().collect::<Vec<_>>(),
            vec![(net("10.42.1.0/24"), "192.0.2.2".parse().unwrap())]
        );
        assert!(st.neighbours.is_empty() && st.fdb.is_empty());
        let (none, _) = desired("n1", Backend::None, net("10.42.0.0/16"), &leases(&nodes));
        assert_eq!(none, NetState::default());
    }

    #[test]
    fn other_backends_and_foreign_cidrs_are_skipped_with_a_reason() {
        let nodes = [
            annotated("n2", "10.42.1.0/24", Backend::HostGw, "192.0.2.2"),
            annotated("n3", "10.99.1.0/24", Backend::Vxlan, "192.0.2.3"),
        ];
        let (st, skipped) = desired("n1", Backend::Vxlan, net("10.42.0.0/16"), &leases(&nodes));
        assert_eq!(st, NetState::default());
        assert_eq!(skipped.len(), 2);
        assert!(skipped[0].1.contains("host-gw"), "{skipped:?}");
        assert!(
            skipped[1].1.contains("outside the cluster CIDR"),
            "{skipped:?}"
        );
    }

    #[test]
    fn diff_removes_stale_entries_first_and_adds_arp_before_routes() {
        let nodes = [
            annotated("n2", "10.42.1.0/24", Backend::Vxlan, "192.0.2.2"),
            annotated("n3", "10.42.2.0/24", Backend::Vxlan, "192.0.2.3"),
        ];
        let (want, _) = desired("n1", Backend::Vxlan, net("10.42.0.0/16"), &leases(&nodes));
        // Nothing there yet: every entry is set, ARP and FDB before routes.
        let ops = diff(&want, &NetState::default());
        assert_eq!(ops.len(), 6);
        let first_route = ops
            .iter()
            .position(|o| matches!(o, Op::SetRoute(..)))
            .unwrap();
        assert!(ops[..first_route]
            .iter()
            .all(|o| matches!(o, Op::SetNeighbour(..) | Op::SetFdb(..))));
        // Converged: nothing to do.
        assert!(diff(&want, &want).is_empty());
        // n3 went away and n2 moved to another IP: n3's entries go, n2's FDB is replaced.
        let moved = [annotated("n2", "10.42.1.0/24", Backend::Vxlan, "192.0.2.9")];
        let (want2, _) = desired("n1", Backend::Vxlan, net("10.42.0.0/16"), &leases(&moved));
        let ops = diff(&want2, &want);
        let gw3: Ipv4Addr = "10.42.2.0".parse().unwrap();
        assert_eq!(
            ops,
            vec![
                Op::DelRoute(net("10.42.2.0/24"), gw3),
                Op::DelNeighbour(gw3, vtep_mac("n3")),
                Op::DelFdb(vtep_mac("n3"), "192.0.2.3".parse().unwrap()),
                Op::SetFdb(vtep_mac("n2"), "192.0.2.9".parse().unwrap()),
            ]
        );
    }
}
