//! The node's CNI network: a `cni0` bridge with host-local IPAM over the node's pod CIDR, plus
//! `portmap` for hostPorts, written atomically where containerd's CRI plugin watches.

use serde_json::json;

use super::{write_atomic, Paths};
use crate::cidr::Ipv4Net;
use crate::Error;

/// The bridge every pod of the node is attached to.
pub const CNI_BRIDGE: &str = "cni0";
/// The conflist file name in the CNI conf dir.
pub const CNI_CONFLIST: &str = "10-skiff.conflist";

/// The conflist for `pod_cidr` (e.g. `10.42.1.0/24`; the gateway is its first address).
pub fn cni_conflist(paths: &Paths, pod_cidr: &str) -> Result<String, Error> {
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
    let conf = json!({
        "cniVersion": "1.0.0",
        "name": "skiff",
        "plugins": [
            {
                "type": "bridge",
                "bridge": CNI_BRIDGE,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "dataDir": paths.cni_state_dir.to_string_lossy(),
                    "ranges": [[{
                        "subnet": format!("{network}/{}", net.prefix()),
                        "gateway": gateway.to_string(),
                    }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                },
            },
            {
                "type": "portmap",
                "capabilities": { "portMappings": true },
            },
        ],
    });
    let mut text = serde_json::to_string_pretty(&conf)
        .map_err(|e| Error::Runtime(format!("encode the CNI config: {e}")))?;
    text.push('\n');
    Ok(text)
}

/// Writes `10-skiff.conflist` (temp file + rename, so containerd never reads half a file)
/// and creates the IPAM state dir.
pub fn write_cni_config(paths: &Paths, pod_cidr: &str) -> Result<(), Error> {
    let text = cni_conflist(paths, pod_cidr)?;
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
