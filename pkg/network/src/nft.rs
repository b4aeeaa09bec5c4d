//! The `inet skiff-flannel` nftables table: forward accept for the cluster CIDR and flannel's
//! masquerade sequence, replaced atomically with `nft -f -`.

use ipnet::Ipv4Net;
use tokio::io::AsyncWriteExt;

use crate::Error;

/// The table skiff owns for the pod network.
pub const TABLE: &str = "skiff-flannel";
/// kube-proxy's masquerade mark: packets carrying it are masqueraded by the service proxy.
pub const KUBE_PROXY_MARK: u32 = 0x4000;

/// The whole table as one `nft -f` transaction: create (so the delete cannot fail), delete,
/// re-create — atomic, so traffic never sees a half table.
/// - forward: accept from and to the cluster CIDR;
/// - postrouting (srcnat): leave what the proxy masquerades and pod ↔ pod alone, masquerade
///   pod → outside and host → remote pods, never pod → pod.
pub fn ruleset(cluster_cidr: Ipv4Net, pod_cidr: Ipv4Net) -> String {
    let c = cluster_cidr.trunc();
    let p = pod_cidr.trunc();
    let m = KUBE_PROXY_MARK;
    format!(
        "table inet {TABLE}\n\
         delete table inet {TABLE}\n\
         table inet {TABLE} {{\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tip saddr {c} accept\n\
         \t\tip daddr {c} accept\n\
         \t}}\n\
         \tchain postrtg {{\n\
         \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
         \t\tmeta mark & {m:#x} == {m:#x} return\n\
         \t\tip saddr {p} ip daddr {c} return\n\
         \t\tip saddr {c} ip daddr {p} return\n\
         \t\tip saddr != {c} ip daddr {p} return\n\
         \t\tip saddr {c} ip daddr != 224.0.0.0/4 masquerade fully-random\n\
         \t\tip saddr != {c} ip daddr {c} masquerade fully-random\n\
         \t}}\n\
         }}\n"
    )
}

/// Loads `text` with `nft -f -` (one transaction).
pub async fn apply(text: &str) -> Result<(), Error> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "cannot run nft ({e}): install nftables (apt-get install nftables)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| Error::Nft(format!("write the ruleset to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Nft(format!("wait for nft: {e}")))?;
    if !out.status.success() {
        return Err(Error::Nft(format!(
            "nft -f refused the {TABLE} table: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruleset_replaces_the_table_and_keeps_pod_to_pod_unnated() {
        let t = ruleset(
            "10.42.0.0/16".parse().unwrap(),
            "10.42.1.0/24".parse().unwrap(),
        );
        let lines: Vec<&str> = t.lines().map(str::trim).collect();
        assert_eq!(lines[0], "table inet skiff-flannel");
        assert_eq!(lines[1], "delete table inet skiff-flannel");
        assert!(lines.contains(&"ip saddr 10.42.0.0/16 accept"));
        assert!(lines.contains(&"ip daddr 10.42.0.0/16 accept"));
        let pos = |l: &str| {
            lines
                .iter()
                .position(|x| *x == l)
                .unwrap_or_else(|| panic!("{l:?} missing in\n{t}"))
        };
        // The returns come before both masquerades, in flannel's order.
        let order = [
            pos("meta mark & 0x4000 == 0x4000 return"),
            pos("ip saddr 10.42.1.0/24 ip daddr 10.42.0.0/16 return"),
            pos("ip saddr 10.42.0.0/16 ip daddr 10.42.1.0/24 return"),
            pos("ip saddr != 10.42.0.0/16 ip daddr 10.42.1.0/24 return"),
            pos("ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random"),
            pos("ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade fully-random"),
        ];
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{t}");
        assert!(t.contains("type nat hook postrouting priority srcnat;"));
        assert!(t.contains("type filter hook forward priority filter;"));
    }

    #[test]
    fn host_bits_are_dropped_from_the_networks() {
        let t = ruleset(
            "10.42.3.4/16".parse().unwrap(),
            "10.42.1.9/24".parse().unwrap(),
        );
        assert!(
            t.contains("ip saddr 10.42.1.0/24 ip daddr 10.42.0.0/16 return"),
            "{t}"
        );
    }
}
