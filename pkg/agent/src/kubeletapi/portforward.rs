//! `/portForward/…`: each forwarded connection from `skiff-streaming` is connected to
//! `localhost:<port>` inside the pod's network namespace (a short-lived thread enters the
//! namespace with setns, connects, and hands the socket back; the socket stays in that
//! namespace) and copied both ways.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use k8s_cri::v1::{NamespaceMode, PodSandboxStatusRequest};
use skiff_streaming::{ForwardStream, PortForwardSession};

use crate::cri::Cri;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where connections to the pod are made.
#[derive(Debug, Clone, PartialEq)]
pub enum NetNs {
    /// A hostNetwork pod: the agent's own namespace.
    Host,
    /// `/proc/<pid>/ns/net` of the sandbox, or the netns path from its spec.
    Path(PathBuf),
}

/// The sandbox's network namespace from CRI `PodSandboxStatus` verbose info (containerd puts
/// the pause process' pid and the runtime spec in `info["info"]`).
pub fn netns_from_info(info_json: &str) -> Option<PathBuf> {
    let v: serde_json::Value = serde_json::from_str(info_json).ok()?;
    if let Some(pid) = v["pid"].as_u64().filter(|p| *p > 0) {
        return Some(PathBuf::from(format!("/proc/{pid}/ns/net")));
    }
    v["runtimeSpec"]["linux"]["namespaces"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "network")
        .and_then(|n| n["path"].as_str())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

/// Go's text of a dial error: the OS message without Rust's `(os error N)`, lowercased.
pub fn go_error_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// The network namespace of sandbox `id`.
pub async fn sandbox_netns(cri: &Cri, id: &str) -> Result<NetNs, String> {
    let mut rt = cri.runtime.clone();
    let resp = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: true,
        })
        .await
        .map_err(|s| {
            format!(
                "failed to get the status of pod sandbox {id}: {}",
                s.message()
            )
        })?
        .into_inner();
    let host = resp
        .status
        .as_ref()
        .and_then(|s| s.linux.as_ref())
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref())
        .is_some_and(|o| o.network == NamespaceMode::Node as i32);
    if host {
        return Ok(NetNs::Host);
    }
    resp.info
        .get("info")
        .and_then(|i| netns_from_info(i))
        .map(NetNs::Path)
        .ok_or_else(|| format!("pod sandbox {id} has no network namespace (is it running?)"))
}

/// Connects to localhost:`port` in `netns` (IPv4, then IPv6) on a thread of its own.
async fn connect(netns: NetNs, port: u16) -> Result<TcpStream, (std::io::Error, std::io::Error)> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(connect_blocking(&netns, port));
    });
    rx.await.unwrap_or_else(|_| {
        let e = || std::io::Error::other("the connect thread died");
        Err((e(), e()))
    })
}

fn connect_blocking(
    netns: &NetNs,
    port: u16,
) -> Result<TcpStream, (std::io::Error, std::io::Error)> {
    if let NetNs::Path(p) = netns {
        let entered = std::fs::File::open(p).and_then(|f| {
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&f),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .map_err(std::io::Error::from)
        });
        if let Err(e) = entered {
            let again = std::io::Error::new(e.kind(), e.to_string());
            return Err((e, again));
        }
    }
    let v4 = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let e4 = match TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, port));
    match TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e6) => Err((e4, e6)),
    }
}

/// Serves one port-forward session for sandbox `sandbox_id` until the client closes it.
pub async fn run(cri: &Cri, sandbox_id: &str, pod_uid: &str, mut session: PortForwardSession) {
    let netns = sandbox_netns(cri, sandbox_id).await;
    while let Some(fs) = session.next().await {
        let netns = netns.clone();
        let (sandbox_id, pod_uid) = (sandbox_id.to_string(), pod_uid.to_string());
        tokio::spawn(async move { forward(netns, &sandbox_id, &pod_uid, fs).await });
    }
}

async fn forward(netns: Result<NetNs, String>, sandbox_id: &str, pod_uid: &str, fs: ForwardStream) {
    let ForwardStream {
        port,
        mut data,
        error,
    } = fs;
    let prefix = format!("error forwarding port {port} to pod {sandbox_id}, uid {pod_uid}");
    let netns = match netns {
        Ok(n) => n,
        Err(e) => {
            let _ = error.send(&format!("{prefix}: {e}")).await;
            return;
        }
    };
    let tcp = match connect(netns.clone(), port).await {
        Ok(s) => s,
        Err((e4, e6)) => {
            let ns_name = match &netns {
                NetNs::Host => "host".to_string(),
                NetNs::Path(p) => p.display().to_string(),
            };
            let msg = format!(
                "{prefix}: failed to execute portforward in network namespace \"{ns_name}\": \
                 failed to connect to localhost:{port} inside namespace \"{sandbox_id}\", \
                 IPv4: dial tcp4 127.0.0.1:{port}: connect: {} IPv6 dial tcp6 [::1]:{port}: \
                 connect: {} ",
                go_error_text(&e4),
                go_error_text(&e6)
            );
            tracing::debug!(%msg, "port-forward failed");
            let _ = error.send(&msg).await;
            return;
        }
    };
    let tcp = match tcp
        .set_nonblocking(true)
        .and_then(|_| tokio::net::TcpStream::from_std(tcp))
    {
        Ok(t) => t,
        Err(e) => {
            let _ = error.send(&format!("{prefix}: {e}")).await;
            return;
        }
    };
    let _ = tcp.set_nodelay(true);
    let mut tcp = tcp;
    // The error stream stays open (empty) while the connection lives; dropping it closes it.
    let _error = error;
    if let Err(e) = tokio::io::copy_bidirectional(&mut data, &mut tcp).await {
        tracing::debug!(port, error = %e, "port-forward connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_netns_comes_from_the_pid_or_the_spec() {
        assert_eq!(
            netns_from_info(r#"{"pid": 4242, "runtimeSpec": {}}"#),
            Some(PathBuf::from("/proc/4242/ns/net"))
        );
        assert_eq!(
            netns_from_info(
                r#"{"pid": 0, "runtimeSpec": {"linux": {"namespaces": [
                    {"type": "pid"}, {"type": "network", "path": "/var/run/netns/cni-1"}]}}}"#
            ),
            Some(PathBuf::from("/var/run/netns/cni-1"))
        );
        assert_eq!(netns_from_info("{}"), None);
        assert_eq!(netns_from_info("nope"), None);
    }

    #[test]
    fn dial_errors_read_like_go() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(go_error_text(&e), "connection refused");
    }

    #[tokio::test]
    async fn host_connections_reach_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = connect(NetNs::Host, port).await.unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
        drop(listener);
        let (e4, _) = connect(NetNs::Host, port).await.unwrap_err();
        assert_eq!(e4.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
