//! The node's CNI network: a `cni0` bridge with host-local IPAM over the node's pod CIDR, plus
//! `portmap` for hostPorts, written atomically where containerd's CRI plugin watches. With the
//! pod network (skiff-network) running it matches what flannel's CNI plugin delegates: MTU of
//! the backend, a route to the cluster CIDR, no bridge masquerade (the pod network's nftables
//! table masquerades, and never pod → pod).

use serde_json::json;

use super::{write_atomic, Paths};
use crate::cidr::Ipv4Net;
use crate::Error;

/// The bridge every pod of the node is attached to.
pub const CNI_BRIDGE: &str = "cni0";
/// The conflist file name in the CNI conf dir.
pub const CNI_CONFLIST: &str = "10-skiff.conflist";

/// How the bridge fits the pod network between nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniNetwork {
    /// MTU of the bridge and the pods' interfaces (1450 under VXLAN); `None`: the default.
    pub mtu: Option<u32>,
    /// The cluster CIDR, routed via the gateway in each pod (flannel's `routes`).
    pub cluster_cidr: Option<String>,
    /// Whether the bridge plugin masquerades pod traffic leaving the pod CIDR (only when no
    /// pod network masquerades instead: it would NAT pod → remote pod).
    pub ip_masq: bool,
}

impl Default for CniNetwork {
    fn default() -> Self {
        CniNetwork {
            mtu: None,
            cluster_cidr: None,
            ip_masq: true,
        }
    }
}

/// The conflist for `pod_cidr` (e.g. `10.42.1.0/24`; the gateway is its first address).
pub fn cni_conflist(paths: &Paths, pod_cidr: &str) -> Result<String, Error> {
    cni_conflist_with(paths, pod_cidr, &CniNetwork::default())
}

/// [`cni_conflist`] fitted to the pod network.
pub fn cni_conflist_with(
    paths: &Paths,
    pod_cidr: &str,
    netw: &CniNetwork,
) -> Result<String, Error> {
    let net: Ipv4Net = pod_cidr.parse().map_err(|e| {
        Error::Config(format!(
            "pod CIDR {pod_cidr:?}: {e}: the node's spec.podCIDR must be an IPv4 network such as 10.42.1.0/24"
        ))
    })?;
    if net.prefix() > 30 {
        return Err(Error::Config(format!(
            "pod CIDR {pod_cidr} leaves no room for pods: use a /30 or larger network"
        )));
    }
    let network = net.network();
    let gateway = std::net::Ipv4Addr::from(u32::from(network) + 1);
    let mut routes = vec![json!({ "dst": "0.0.0.0/0" })];
    if let Some(c) = &netw.cluster_cidr {
        routes.push(json!({ "dst": c }));
    }
    let mut conf = json!({
        "cniVersion": "1.0.0",
        "name": "skiff",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": netw.ip_masq,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": paths.cni_state_dir.to_string_lossy(),
                    "ranges": [[{
                        "subnet": format!("{network}/{}", net.prefix()),
                        "gateway": gateway.to_string(),
                    }]],
                    "routes": routes,
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
            },
        ],
    });
    if let Some(mtu) = netw.mtu {
        conf["plugins"][0]["mtu"] = json!(mtu);
    }
    let mut text = serde_json::to_string_pretty(&conf)
        .map_err(|e| Error::Runtime(format!("encode the CNI config: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// Writes `10-skiff.conflist` (temp file + rename, so containerd never reads half a file)
/// and creates the IPAM state dir.
pub fn write_cni_config(paths: &Paths, pod_cidr: &str) -> Result<(), Error> {
    write_cni_config_with(paths, pod_cidr, &CniNetwork::default())
}

/// [`write_cni_config`] fitted to the pod network.
pub fn write_cni_config_with(
    paths: &Paths,
    pod_cidr: &str,
    netw: &CniNetwork,
) -> Result<(), Error> {
    let text = cni_conflist_with(paths, pod_cidr, netw)?;
    std::fs::create_dir_all(&paths.cni_state_dir).map_err(super::io_err(format!(
        "create {}",
        paths.cni_state_dir.display()
    )))?;
    write_atomic(&paths.cni_conf_dir.join(CNI_CONFLIST), text.as_bytes())?;
    tracing::info!(pod_cidr, dir = %paths.cni_conf_dir.display(), "wrote the CNI config");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn conflist_is_a_bridge_with_the_pod_cidr_and_portmap() {
        let paths = Paths::new(Path::new("/d"));
        let text = cni_conflist(&paths, "10.42.1.0/24").unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], "cni0");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], true);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(bridge["ipam"]["type"], "host-local");
        assert_eq!(bridge["ipam"]["dataDir"], "/d/agent/cni");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.42.1.0/24");
        assert_eq!(bridge["ipam"]["ranges"][0][0]["gateway"], "10.42.1.1");
        assert_eq!(bridge["ipam"]["routes"][0]["dst"], "0.0.0.0/0");
        assert_eq!(v["plugins"][1]["type"], "portmap");
        assert_eq!(v["plugins"][1]["capabilities"]["portMappings"], true);
    }

    #[test]
    fn the_pod_network_sets_mtu_cluster_route_and_no_bridge_masquerade() {
        let paths = Paths::new(Path::new("/d"));
        let netw = CniNetwork {
            mtu: Some(1450),
            cluster_cidr: Some("10.42.0.0/16".into()),
            ip_masq: false,
        };
        let text = cni_conflist_with(&paths, "10.42.1.0/24", &netw).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["mtu"], 1450);
        assert_eq!(bridge["ipMasq"], false);
        assert_eq!(bridge["hairpinMode"], true);
        assert_eq!(
            bridge["ipam"]["routes"],
            serde_json::json!([{"dst": "0.0.0.0/0"}, {"dst": "10.42.0.0/16"}])
        );
        // Without a pod network: no MTU key, the bridge masquerades.
        let plain: serde_json::Value =
            serde_json::from_str(&cni_conflist(&paths, "10.42.1.0/24").unwrap()).unwrap();
        assert!(plain["plugins"][0].get("mtu").is_none());
        assert_eq!(plain["plugins"][0]["ipMasq"], true);
    }

    #[test]
    fn bad_cidrs_are_refused() {
        let paths = Paths::new(Path::new("/d"));
        assert!(cni_conflist(&paths, "10.42.1.0").is_err());
        assert!(cni_conflist(&paths, "10.42.1.0/31").is_err());
        let e = cni_conflist(&paths, "fd00::/64").unwrap_err();
        assert!(e.to_string().contains("IPv4"), "{e}");
    }

    #[test]
    fn write_puts_the_file_where_containerd_looks() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::new(t.path());
        write_cni_config(&paths, "10.42.7.0/24").unwrap();
        let text = std::fs::read_to_string(paths.cni_conf_dir.join(CNI_CONFLIST)).unwrap();
        assert!(text.contains("10.42.7.1"));
        assert!(paths.cni_state_dir.is_dir());
    }
}
