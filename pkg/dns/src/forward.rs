//! Names outside the cluster zone go to the node's resolvers (`--resolv-conf`), as k3s's
//! CoreDNS `forward . /etc/resolv.conf` + `cache 30`.
//!
//! Hand-written over hickory-proto messages rather than hickory-resolver: the resolver's lookup
//! API returns records, not the upstream's whole reply (rcode, authority section), which a
//! forwarder must pass through unchanged.

use crate::Error;
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long one upstream gets for one question.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time an upstream reply is kept (k3s's `cache 30`).
const MAX_CACHE_TTL: u32 = 30;
/// Negative replies (NXDOMAIN, NODATA) are kept this long.
const NEGATIVE_CACHE_TTL: u32 = 5;
/// Cache entries before the cache starts over (bounds memory on a busy node).
const MAX_CACHE_ENTRIES: usize = 10_000;

/// The nameservers in a resolv.conf, loopback ones skipped (they would point back at a local
/// stub that cannot answer for the node's network namespace, as k3s checks), at most three.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then_some(())?;
            // Zone ids (`fe80::1%eth0`) cannot be parsed by IpAddr; those are skipped.
            w.next()?.parse::<IpAddr>().ok()
        })
        .filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

/// The TTL to keep a reply for: its smallest record TTL, capped; negatives briefly.
fn cache_ttl(m: &Message) -> Option<u32> {
    match m.response_code() {
        ResponseCode::NoError | ResponseCode::NXDomain => {}
        _ => return None,
    }
    if m.truncated() {
        return None;
    }
    let ttl = m
        .answers()
        .iter()
        .map(|r| r.ttl())
        .min()
        .unwrap_or(NEGATIVE_CACHE_TTL);
    Some(ttl.min(MAX_CACHE_TTL))
}

type Key = (Name, RecordType);

/// Forwards questions to upstream resolvers with a small TTL cache.
pub struct Forwarder {
    upstreams: Vec<SocketAddr>,
    cache: Mutex<HashMap<Key, (Instant, Message)>>,
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Forwarder {
        Forwarder {
            upstreams,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the resolvers from `path`; none usable is an empty list (SERVFAIL for outside
    /// names) rather than an error, so the cluster zone is still served.
    pub fn from_resolv_conf(path: &std::path::Path) -> Forwarder {
        let servers = match std::fs::read_to_string(path) {
            Ok(s) => nameservers(&s),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read the resolv.conf: names outside the cluster fail; pass --resolv-conf with the node's resolvers");
                vec![]
            }
        };
        if servers.is_empty() {
            tracing::warn!(path = %path.display(), "no non-loopback nameserver: names outside the cluster fail; pass --resolv-conf with the node's resolvers");
        }
        Forwarder::new(servers)
    }

    /// The upstream reply for one question (records, rcode, authority), or an error when
    /// every upstream failed.
    pub async fn ask(&self, name: &Name, qtype: RecordType) -> Result<Message, Error> {
        let key = (name.to_lowercase(), qtype);
        if let Some((until, m)) = self.cache.lock().get(&key) {
            if *until > Instant::now() {
                return Ok(m.clone());
            }
        }
        if self.upstreams.is_empty() {
            return Err(Error::Upstream("no upstream nameserver".into()));
        }
        let mut q = Message::new();
        q.set_id(rand_id())
            .set_message_type(MessageType::Query)
            .set_op_code(OpCode::Query)
            .set_recursion_desired(true)
            .add_query(Query::query(name.clone(), qtype));
        let bytes = q
            .to_vec()
            .map_err(|e| Error::Upstream(format!("encode a query: {e}")))?;
        let mut last = String::new();
        for up in &self.upstreams {
            match exchange(*up, &bytes, q.id()).await {
                Ok(reply) => {
                    if let Some(ttl) = cache_ttl(&reply) {
                        let mut c = self.cache.lock();
                        if c.len() >= MAX_CACHE_ENTRIES {
                            c.clear();
                        }
                        c.insert(
                            key,
                            (
                                Instant::now() + Duration::from_secs(ttl.into()),
                                reply.clone(),
                            ),
                        );
                    }
                    return Ok(reply);
                }
                Err(e) => {
                    tracing::debug!(upstream = %up, error = %e, "upstream nameserver failed");
                    last = format!("{up}: {e}");
                }
            }
        }
        Err(Error::Upstream(last))
    }
}

fn rand_id() -> u16 {
    // Query ids need only be unpredictable enough to tell replies apart; the clock's
    // nanoseconds mixed with a counter do that without another dependency.
    use std::sync::atomic::{AtomicU16, Ordering};
    static N: AtomicU16 = AtomicU16::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as u16) ^ N.fetch_add(0x9e37, Ordering::Relaxed)
}

/// One question to one upstream: UDP, then TCP when the reply is truncated.
async fn exchange(up: SocketAddr, query: &[u8], id: u16) -> Result<Message, String> {
    let udp = async {
        let bind: SocketAddr = if up.is_ipv4() {
            "0.0.0.0:0".parse().expect("address")
        } else {
            "[::]:0".parse().expect("address")
        };
        let s = tokio::net::UdpSocket::bind(bind)
            .await
            .map_err(|e| e.to_string())?;
        s.connect(up).await.map_err(|e| e.to_string())?;
        s.send(query).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s.recv(&mut buf).await.map_err(|e| e.to_string())?;
            match Message::from_vec(&buf[..n]) {
                Ok(m) if m.id() == id && m.message_type() == MessageType::Response => {
                    return Ok::<Message, String>(m)
                }
                _ => continue,
            }
        }
    };
    let m = tokio::time::timeout(UPSTREAM_TIMEOUT, udp)
        .await
        .map_err(|_| "timed out".to_string())??;
    if !m.truncated() {
        return Ok(m);
    }
    let tcp = async {
        let mut s = tokio::net::TcpStream::connect(up)
            .await
            .map_err(|e| e.to_string())?;
        let len = u16::try_from(query.len()).map_err(|e| e.to_string())?;
        s.write_all(&len.to_be_bytes())
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(query).await.map_err(|e| e.to_string())?;
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; u16::from_be_bytes(l).into()];
        s.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
        Message::from_vec(&buf).map_err(|e| e.to_string())
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, tcp)
        .await
        .map_err(|_| "timed out over TCP".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_skips_loopback_and_keeps_three() {
        let conf = "# generated\nsearch example.org\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n\
                    nameserver ::1\nnameserver 2001:db8::1\noptions ndots:2\nnameserver 10.0.0.3\n\
                    nameserver 10.0.0.4\nnameserver bogus\n";
        assert_eq!(
            nameservers(conf),
            ["10.0.0.2:53", "[2001:db8::1]:53", "10.0.0.3:53"]
                .map(|s| s.parse::<SocketAddr>().unwrap())
        );
        assert!(nameservers("nameserver 127.0.0.1\n").is_empty());
    }

    #[test]
    fn cache_ttl_is_the_smallest_capped_and_errors_are_not_kept() {
        use hickory_proto::rr::{RData, Record};
        let mut m = Message::new();
        m.set_response_code(ResponseCode::NoError);
        let n = Name::from_ascii("a.example.").unwrap();
        m.add_answer(Record::from_rdata(
            n.clone(),
            300,
            RData::A("192.0.2.1".parse().unwrap()),
        ));
        assert_eq!(cache_ttl(&m), Some(30));
        m.add_answer(Record::from_rdata(
            n,
            7,
            RData::A("192.0.2.2".parse().unwrap()),
        ));
        assert_eq!(cache_ttl(&m), Some(7));
        let mut neg = Message::new();
        neg.set_response_code(ResponseCode::NXDomain);
        assert_eq!(cache_ttl(&neg), Some(NEGATIVE_CACHE_TTL));
        neg.set_response_code(ResponseCode::ServFail);
        assert_eq!(cache_ttl(&neg), None);
    }

    #[tokio::test]
    async fn a_silent_upstream_fails_within_the_timeout() {
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let f = Forwarder::new(vec![silent.local_addr().unwrap()]);
        let started = Instant::now();
        let r = f
            .ask(&Name::from_ascii("x.example.").unwrap(), RecordType::A)
            .await;
        assert!(r.is_err());
        assert!(started.elapsed() < UPSTREAM_TIMEOUT + Duration::from_secs(1));
    }
}
