//! The system side: applies a rendered ruleset with `nft -f -` (one atomic transaction),
//! flushes stale UDP conntrack entries with `conntrack -D`, and sets the sysctls service
//! traffic needs. Hand-written over the `nft`/`conntrack` binaries: the netlink crates for
//! nftables cover far less of the syntax (verdict maps, numgen, fib) than the CLI parses.

use crate::Error;
use std::net::Ipv4Addr;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// Runs `nft -f -` with `script` on stdin.
pub async fn apply(script: &str) -> Result<(), Error> {
    let mut child = tokio::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::Nft(format!(
                "cannot run nft: {e} (install the nftables package)"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(|e| Error::Nft(format!("cannot write to nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| Error::Nft(format!("nft did not finish: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

/// Whether the table is still there (someone may have flushed the ruleset): its small
/// `services` chain lists.
pub async fn table_present() -> bool {
    tokio::process::Command::new("nft")
        .args(["list", "chain", "ip", crate::plan::TABLE, "services"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success())
}

/// Deletes the UDP conntrack entries whose replies come from `ip:port` (an endpoint that
/// went away), so clients are not stuck on it. "Nothing to delete" is no error.
pub async fn flush_udp(ip: Ipv4Addr, port: u16) -> Result<(), Error> {
    let out = tokio::process::Command::new("conntrack")
        .args([
            "-D",
            "-p",
            "udp",
            "--reply-src",
            &ip.to_string(),
            "--reply-port-src",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .await
        .map_err(|e| {
            Error::Conntrack(format!(
                "cannot run conntrack: {e} (install the conntrack package)"
            ))
        })?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || err.contains("0 flow entries") {
        Ok(())
    } else {
        Err(Error::Conntrack(err.trim().to_string()))
    }
}

/// Forwarding on, and bridged pod traffic through the ip hooks (so a pod reaching a Service
/// backed by a pod on the same bridge gets its replies un-NATed).
pub fn set_sysctls() {
    for (path, value) in [
        ("/proc/sys/net/ipv4/ip_forward", "1"),
        ("/proc/sys/net/bridge/bridge-nf-call-iptables", "1"),
    ] {
        if let Err(e) = std::fs::write(path, value) {
            tracing::warn!(path, error = %e, "cannot set sysctl; service traffic may not flow");
        }
    }
}
