//! The agent's client-side load balancer for the API (k3s's on 127.0.0.1:6444): a TCP proxy on
//! loopback that every connection of the agent to the API goes through, dialing the server it
//! used last and, when that one refuses or does not answer, the next one of the servers the
//! cluster lists at `/v1-skiff/apiservers` (refreshed every [`REFRESH`]); `--server` stays in
//! the set as the registration address. TLS passes through untouched: every server shares the
//! CA and has 127.0.0.1 in its serving certificate, so the agent verifies whichever answers.
//!
//! Hand-written over tokio (accept, connect with a timeout, `copy_bidirectional`): the
//! maintained proxy crates are HTTP-level or bring a server framework for this one loop.

use crate::Error;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// k3s's port for the agent load balancer; another free port is taken when it is in use
/// (several agents on one host).
pub const DEFAULT_PORT: u16 = 6444;
/// How often the server list is refreshed.
pub const REFRESH: Duration = Duration::from_secs(10);
const DIAL_TIMEOUT: Duration = Duration::from_secs(3);

struct Inner {
    /// `host:port` of every known server; index [`Inner::current`] is dialed first.
    servers: Mutex<Vec<String>>,
    current: AtomicUsize,
    /// The `--server` address, kept in the set whatever the list says.
    registration: String,
    /// The servers as the cluster last listed them (without the registration address unless
    /// listed).
    listed: Mutex<Vec<String>>,
}

/// A running load balancer; clones share it.
#[derive(Clone)]
pub struct LoadBalancer {
    inner: Arc<Inner>,
    local: SocketAddr,
}

/// The `host:port` of an `https://host[:port]` URL (port 443 when absent).
pub fn host_port(url: &str) -> Result<String, Error> {
    let uri = crate::join::parse_server_url(url)?;
    let host = uri.host().unwrap_or_default();
    Ok(format!("{host}:{}", uri.port_u16().unwrap_or(443)))
}

/// The order to dial `servers` in: the current one first, then the others in list order.
pub fn dial_order(servers: &[String], current: usize) -> Vec<(usize, String)> {
    let n = servers.len();
    (0..n)
        .map(|i| {
            let idx = (current + i) % n;
            (idx, servers[idx].clone())
        })
        .collect()
}

/// The new server set from a fetched list: the listed servers, then the registration address
/// when it is not among them; the index of the server dialed so far in the new set (0 when it
/// is gone).
pub fn merge(listed: &[String], registration: &str, current: Option<&str>) -> (Vec<String>, usize) {
    let mut set: Vec<String> = Vec::new();
    for s in listed {
        if !s.is_empty() && !set.contains(s) {
            set.push(s.clone());
        }
    }
    if !set.iter().any(|s| s == registration) {
        set.push(registration.to_string());
    }
    let idx = current
        .and_then(|c| set.iter().position(|s| s == c))
        .unwrap_or(0);
    (set, idx)
}

impl LoadBalancer {
    /// Listens on 127.0.0.1:6444 (or a free port) in front of `server_url`.
    pub async fn start(server_url: &str) -> Result<LoadBalancer, Error> {
        let registration = host_port(server_url)?;
        let listener = match TcpListener::bind(("127.0.0.1", DEFAULT_PORT)).await {
            Ok(l) => l,
            Err(_) => TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| {
                Error::Config(format!(
                    "cannot listen on 127.0.0.1 for the API load balancer: {e}; pass --disable-apiserver-lb"
                ))
            })?,
        };
        let local = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("the API load balancer's address: {e}")))?;
        let inner = Arc::new(Inner {
            servers: Mutex::new(vec![registration.clone()]),
            current: AtomicUsize::new(0),
            registration,
            listed: Mutex::new(Vec::new()),
        });
        tokio::spawn(accept_loop(listener, inner.clone()));
        tracing::info!(listen = %local, server = %inner.registration, "API load balancer started");
        Ok(LoadBalancer { inner, local })
    }

    /// The URL the agent's clients use: `https://127.0.0.1:<port>`.
    pub fn local_url(&self) -> String {
        format!("https://{}", self.local)
    }

    /// The server set, current first.
    pub fn servers(&self) -> Vec<String> {
        let servers = self.inner.servers.lock().clone();
        dial_order(&servers, self.inner.current.load(Ordering::Relaxed))
            .into_iter()
            .map(|(_, s)| s)
            .collect()
    }

    /// The servers the cluster lists at `/v1-skiff/apiservers` (empty until the first
    /// refresh, or when no server advertises an address).
    pub fn listed(&self) -> Vec<String> {
        self.inner.listed.lock().clone()
    }

    /// Replaces the server set with `listed` (plus the registration address).
    pub fn set_servers(&self, listed: &[String]) {
        *self.inner.listed.lock() = listed.iter().filter(|s| !s.is_empty()).cloned().collect();
        let mut servers = self.inner.servers.lock();
        let cur = servers
            .get(self.inner.current.load(Ordering::Relaxed))
            .cloned();
        let (set, idx) = merge(listed, &self.inner.registration, cur.as_deref());
        if *servers != set {
            tracing::info!(servers = ?set, "API servers changed");
        }
        *servers = set;
        self.inner.current.store(idx, Ordering::Relaxed);
    }

    /// Polls `/v1-skiff/apiservers` through `client` every [`REFRESH`] until the process ends.
    pub fn spawn_refresh(&self, client: kube::Client) {
        let lb = self.clone();
        tokio::spawn(async move {
            loop {
                let req = http::Request::get("/v1-skiff/apiservers").body(Vec::new());
                match req {
                    Ok(req) => match client.request::<Vec<String>>(req).await {
                        Ok(list) => lb.set_servers(&list),
                        Err(e) => tracing::debug!(error = %e, "cannot refresh the API server list"),
                    },
                    Err(e) => tracing::debug!(error = %e, "API server list request"),
                }
                tokio::time::sleep(REFRESH).await;
            }
        });
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let (conn, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "API load balancer accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let inner = inner.clone();
        tokio::spawn(async move {
            if let Some(mut upstream) = dial(&inner).await {
                let mut conn = conn;
                let _ = conn.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream).await;
            }
        });
    }
}

/// Connects to the current server or, failing that, the next that answers (which becomes
/// current).
async fn dial(inner: &Inner) -> Option<TcpStream> {
    let order = {
        let servers = inner.servers.lock();
        dial_order(&servers, inner.current.load(Ordering::Relaxed))
    };
    for (idx, addr) in order {
        match tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(addr.as_str())).await {
            Ok(Ok(s)) => {
                if inner.current.swap(idx, Ordering::Relaxed) != idx {
                    tracing::info!(server = %addr, "API load balancer switched server");
                }
                return Some(s);
            }
            Ok(Err(e)) => tracing::debug!(server = %addr, error = %e, "API server refused"),
            Err(_) => tracing::debug!(server = %addr, "API server did not answer"),
        }
    }
    tracing::warn!("no API server answered; the agent retries");
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn dialing_starts_at_the_current_server_and_wraps() {
        let servers = s(&["a:1", "b:1", "c:1"]);
        let order: Vec<String> = dial_order(&servers, 1).into_iter().map(|x| x.1).collect();
        assert_eq!(order, s(&["b:1", "c:1", "a:1"]));
        assert!(dial_order(&[], 0).is_empty());
    }

    #[test]
    fn the_registration_address_stays_and_the_current_server_is_kept() {
        let (set, idx) = merge(&s(&["b:1", "c:1"]), "reg:1", Some("c:1"));
        assert_eq!(set, s(&["b:1", "c:1", "reg:1"]));
        assert_eq!(idx, 1);
        let (set, idx) = merge(&s(&["reg:1", "b:1", "b:1"]), "reg:1", Some("gone:1"));
        assert_eq!(set, s(&["reg:1", "b:1"]));
        assert_eq!(idx, 0);
    }

    #[test]
    fn urls_become_host_port() {
        assert_eq!(host_port("https://10.0.0.1:6443").unwrap(), "10.0.0.1:6443");
        assert_eq!(host_port("https://example.org").unwrap(), "example.org:443");
        assert!(host_port("http://x:1").is_err());
    }

    #[tokio::test]
    async fn connections_fail_over_to_the_next_server() {
        // Two upstreams: the first is closed (refuses), the second answers "b".
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dead_addr = dead.local_addr().unwrap().to_string();
        drop(dead);
        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            while let Ok((mut c, _)) = live.accept().await {
                let _ = c.write_all(b"b").await;
            }
        });
        let lb = LoadBalancer::start(&format!("https://{dead_addr}"))
            .await
            .unwrap();
        lb.set_servers(&[dead_addr.clone(), live_addr.clone()]);
        use tokio::io::AsyncReadExt;
        let mut c = TcpStream::connect(lb.local).await.unwrap();
        let mut buf = [0u8; 1];
        tokio::time::timeout(Duration::from_secs(10), c.read_exact(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&buf, b"b");
        assert_eq!(lb.servers()[0], live_addr);
    }
}
