//! The system side: loads a rendered table with `nft -f -` (one atomic transaction), checks it
//! is still there, removes it when enforcement is switched off, and turns on the sysctl that
//! sends bridged (same-node) pod traffic through the forward hook. Hand-written over the `nft`
//! binary, as the service proxy does: the netlink crates for nftables cover far less of the
//! syntax (verdict maps, concatenated sets, fib) than the CLI parses.

use crate::plan::TABLE;
use crate::Error;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Runs `nft -f -` with `script` on stdin.
pub async fn apply(script: &str) -> Result<(), Error> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "cannot run nft ({e}): install nftables (apt-get install nftables)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| Error::Nft(format!("cannot write the {TABLE} table to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Nft(format!("nft did not finish: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft(format!(
            "nft -f refused the {TABLE} table: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether the table is still there (someone may have flushed the ruleset): its base chain lists.
pub async fn table_present() -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "chain", "inet", TABLE, "forward"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Deletes the table if it exists (enforcement switched off): no pod stays isolated by rules
/// nobody keeps up to date.
pub async fn remove_table() -> Result<(), Error> {
    apply(&format!("table inet {TABLE}\ndelete table inet {TABLE}\n")).await
}

/// Bridged pod traffic (two pods on one node) through the ip hooks, so policies see it.
pub fn set_sysctls() {
    let path = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    if let Err(e) = std::fs::write(path, "1") {
        tracing::warn!(
            path,
            error = %e,
            "cannot set sysctl (load br_netfilter: modprobe br_netfilter); policies do not apply between pods of one node"
        );
    }
}
