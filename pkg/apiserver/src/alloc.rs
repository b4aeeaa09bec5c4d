//! Service IP and NodePort allocation from the configured ranges: no duplicates, freed on
//! delete, rebuilt from stored Services at start. A write holds what it took in a
//! [`Reservation`], which gives it back on drop unless the write landed and kept it.

use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// Allocates cluster IPs from an IPv4 CIDR (network and broadcast excluded).
#[derive(Debug)]
pub struct IpAllocator {
    base: u32,
    size: u32,
    used: BTreeSet<u32>,
    next: u32,
}

impl IpAllocator {
    /// `cidr` like `10.43.0.0/16`.
    pub fn new(cidr: &str) -> Result<Self, String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {cidr:?}: expected a.b.c.d/n"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {cidr:?}: bad address"))?;
        let bits: u32 = bits
            .parse()
            .ok()
            .filter(|b| (8..=30).contains(b))
            .ok_or_else(|| format!("invalid CIDR {cidr:?}: prefix must be between 8 and 30"))?;
        let size = 1u32 << (32 - bits);
        let base = u32::from(ip) & !(size - 1);
        Ok(IpAllocator {
            base,
            size,
            used: BTreeSet::new(),
            next: 11,
        })
    }

    /// The n-th address of the range (`10.43.0.1` for 1).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(self.base + n)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let v = u32::from(ip);
        v > self.base && v < self.base + self.size - 1
    }

    /// Marks a specific address as used; errors explain why it cannot be had.
    pub fn allocate(&mut self, ip: Ipv4Addr) -> Result<(), String> {
        if !self.contains(ip) {
            return Err(format!(
                "failed to allocate IP {ip}: the provided IP ({ip}) is not in the valid range. The range of valid IPs is {}/{}",
                Ipv4Addr::from(self.base),
                32 - self.size.trailing_zeros()
            ));
        }
        if !self.used.insert(u32::from(ip)) {
            return Err(format!(
                "failed to allocate IP {ip}: provided IP is already allocated"
            ));
        }
        Ok(())
    }

    /// Takes the next free address.
    pub fn allocate_next(&mut self) -> Option<Ipv4Addr> {
        let span = self.size - 2;
        for i in 0..span {
            let off = 1 + (self.next - 1 + i) % span;
            let v = self.base + off;
            if !self.used.contains(&v) {
                self.used.insert(v);
                self.next = off + 1;
                return Some(Ipv4Addr::from(v));
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }
}

/// Allocates node ports from a range such as 30000-32767.
#[derive(Debug)]
pub struct PortAllocator {
    pub lo: u16,
    pub hi: u16,
    used: BTreeSet<u16>,
    next: u16,
}

impl PortAllocator {
    pub fn new(lo: u16, hi: u16) -> Self {
        PortAllocator {
            lo,
            hi,
            used: BTreeSet::new(),
            next: lo,
        }
    }

    pub fn allocate(&mut self, port: u16) -> Result<(), String> {
        if port < self.lo || port > self.hi {
            return Err(format!(
                "provided port is not in the valid range. The range of valid ports is {}-{}",
                self.lo, self.hi
            ));
        }
        if !self.used.insert(port) {
            return Err("provided port is already allocated".into());
        }
        Ok(())
    }

    pub fn allocate_next(&mut self) -> Option<u16> {
        let span = (self.hi - self.lo) as u32 + 1;
        for i in 0..span {
            let p = self.lo + (((self.next - self.lo) as u32 + i) % span) as u16;
            if self.used.insert(p) {
                self.next = if p == self.hi { self.lo } else { p + 1 };
                return Some(p);
            }
        }
        None
    }

    pub fn release(&mut self, port: u16) {
        self.used.remove(&port);
    }
}

/// Addresses and ports one write took from the allocators. Dropping it releases them, so every
/// way out of a write (errors, a conflict and retry, a dry run, a no-op, a completed deletion)
/// gives them back; [`Reservation::keep`] is called only once the write that records them
/// committed.
#[must_use = "a reservation is released when dropped: keep() it once the write committed"]
pub struct Reservation<'a> {
    ips: &'a Mutex<IpAllocator>,
    ports: &'a Mutex<PortAllocator>,
    held_ips: Vec<Ipv4Addr>,
    held_ports: Vec<u16>,
}

impl<'a> Reservation<'a> {
    /// Takes ownership of addresses and ports already marked used in `ips` and `ports`.
    pub fn new(
        ips: &'a Mutex<IpAllocator>,
        ports: &'a Mutex<PortAllocator>,
        held_ips: Vec<Ipv4Addr>,
        held_ports: Vec<u16>,
    ) -> Self {
        Reservation {
            ips,
            ports,
            held_ips,
            held_ports,
        }
    }

    /// The write committed: the object now records these, so they stay allocated.
    pub fn keep(mut self) {
        self.held_ips.clear();
        self.held_ports.clear();
    }

    /// What is held (and would be released on drop).
    pub fn held(&self) -> (&[Ipv4Addr], &[u16]) {
        (&self.held_ips, &self.held_ports)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.held_ips.is_empty() {
            let mut ips = self.ips.lock();
            for ip in self.held_ips.drain(..) {
                ips.release(ip);
            }
        }
        if !self.held_ports.is_empty() {
            let mut ports = self.ports.lock();
            for p in self.held_ports.drain(..) {
                ports.release(p);
            }
        }
    }
}

/// Store prefix of the claims that keep two servers on one datastore from handing out the
/// same cluster IP or node port: the in-memory allocators above only know this server's
/// writes, so before a Service write keeps what it took, the taking is claimed by creating
/// `/skiff/allocations/{serviceips,nodeports}/<value>` (a store create is atomic across
/// servers). Claims are not deleted on release: a claim whose owner Service no longer holds the
/// value (and is older than [`CLAIM_IN_FLIGHT_SECS`], so the owner's write had time to land)
/// is stale and taken over with a compare-and-swap. Used only with an external datastore.
pub const CLAIM_PREFIX: &str = "/skiff/allocations/";
/// How long a claim whose owner does not (yet) hold the value counts as a write in flight.
pub const CLAIM_IN_FLIGHT_SECS: i64 = 10;

/// The claim key of a cluster IP.
pub fn ip_claim_key(ip: Ipv4Addr) -> String {
    format!("{CLAIM_PREFIX}serviceips/{ip}")
}

/// The claim key of a node port.
pub fn port_claim_key(port: u16) -> String {
    format!("{CLAIM_PREFIX}nodeports/{port}")
}

/// What a claim records: the owning Service (`namespace/name`) and when it was claimed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    pub owner: String,
    pub at: i64,
}

/// What to do about an existing claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The claim is this Service's already.
    Ours,
    /// Another Service holds the value (or is about to): pick another.
    Taken,
    /// Its owner no longer holds the value: take it over.
    Stale,
}

/// The pure decision on an existing claim: `owner_holds` is whether the claim's owner
/// Service currently records the value.
pub fn verdict(claim: &Claim, me: &str, owner_holds: bool, now: i64) -> Verdict {
    if claim.owner == me {
        Verdict::Ours
    } else if owner_holds || now - claim.at < CLAIM_IN_FLIGHT_SECS {
        Verdict::Taken
    } else {
        Verdict::Stale
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Whether the stored Service `owner` (`namespace/name`) records `value` (an IP or a port).
async fn owner_holds(
    st: &crate::AppState,
    owner: &str,
    value: &str,
) -> Result<bool, skiff_store::StoreError> {
    let Some(res) = skiff_api::registry::find("", "v1", "services") else {
        return Ok(false);
    };
    let Some((ns, name)) = owner.split_once('/') else {
        return Ok(false);
    };
    let key = crate::request::object_key(res, Some(ns), name);
    let Some(kv) = st.store.get(&key).await? else {
        return Ok(false);
    };
    let svc: serde_json::Value = serde_json::from_slice(&kv.value).unwrap_or_default();
    Ok(held_values(&svc).iter().any(|v| v == value))
}

/// Claims `key` (for `value`) for Service `me`; false when another Service has it.
pub async fn claim(
    st: &crate::AppState,
    key: &str,
    value: &str,
    me: &str,
) -> Result<bool, skiff_store::StoreError> {
    let mine = || {
        serde_json::to_vec(&Claim {
            owner: me.to_string(),
            at: unix_now(),
        })
        .unwrap_or_default()
    };
    for _ in 0..4 {
        match st.store.create(key, mine()).await {
            Ok(_) => return Ok(true),
            Err(skiff_store::StoreError::AlreadyExists) => {}
            Err(e) => return Err(e),
        }
        let Some(kv) = st.store.get(key).await? else {
            continue;
        };
        let existing: Claim = serde_json::from_slice(&kv.value).unwrap_or(Claim {
            owner: String::new(),
            at: 0,
        });
        let holds = if existing.owner == me {
            true
        } else {
            owner_holds(st, &existing.owner, value).await?
        };
        match verdict(&existing, me, holds, unix_now()) {
            Verdict::Taken => return Ok(false),
            Verdict::Ours | Verdict::Stale => {
                match st.store.update(key, mine(), kv.mod_revision).await {
                    Ok(_) => return Ok(true),
                    Err(skiff_store::StoreError::Conflict { .. })
                    | Err(skiff_store::StoreError::NotFound) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(false)
}

/// How often each server sweeps stale claims.
pub const CLAIM_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// The values (cluster IPs and node ports, as text) a Service's spec holds.
fn held_values(svc: &serde_json::Value) -> Vec<String> {
    let spec = &svc["spec"];
    let mut out: Vec<String> = spec["clusterIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(std::iter::once(&spec["clusterIP"]))
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    out.extend(spec["healthCheckNodePort"].as_u64().map(|p| p.to_string()));
    out.extend(
        spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_u64().map(|p| p.to_string())),
    );
    out
}

/// The claims to delete: `(key, claim, value)` entries older than the in-flight window whose
/// owner (`namespace/name`) does not hold the value in `held` (owner → values its Service
/// records).
pub fn stale_claims<'a>(
    claims: &'a [(String, Claim, String)],
    held: &std::collections::HashMap<String, Vec<String>>,
    now: i64,
) -> Vec<&'a str> {
    claims
        .iter()
        .filter(|(_, claim, value)| {
            let holds = held
                .get(&claim.owner)
                .is_some_and(|values| values.iter().any(|v| v == value));
            verdict(claim, "", holds, now) == Verdict::Stale
        })
        .map(|(key, _, _)| key.as_str())
        .collect()
}

/// Deletes the claims whose Service no longer holds the value (a deleted Service, a changed
/// type or port), every [`CLAIM_SWEEP_EVERY`], so the claim space does not only grow. Each
/// delete is a compare-and-swap on the claim's revision: a claim renewed or taken over meanwhile
/// stays, and servers sweeping at once do not collide. Shared datastores only.
pub async fn sweep_claims(st: std::sync::Arc<crate::AppState>) {
    let mut tick = tokio::time::interval(CLAIM_SWEEP_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = sweep_once(&st).await {
            tracing::warn!(error = %e, "allocation claims: sweep failed");
        }
    }
}

async fn sweep_once(st: &crate::AppState) -> Result<usize, skiff_store::StoreError> {
    let Some(res) = skiff_api::registry::find("", "v1", "services") else {
        return Ok(0);
    };
    let claims = st.store.list(CLAIM_PREFIX, Default::default()).await?;
    if claims.kvs.is_empty() {
        return Ok(0);
    }
    let services = st.store.list(&res.key_prefix(), Default::default()).await?;
    let held: std::collections::HashMap<String, Vec<String>> = services
        .kvs
        .iter()
        .filter_map(|kv| {
            let svc: serde_json::Value = serde_json::from_slice(&kv.value).ok()?;
            let owner = kv.key.strip_prefix(&res.key_prefix())?.to_string();
            Some((owner, held_values(&svc)))
        })
        .collect();
    let parsed: Vec<(String, Claim, String)> = claims
        .kvs
        .iter()
        .filter_map(|kv| {
            let claim: Claim = serde_json::from_slice(&kv.value).ok()?;
            let value = kv.key.rsplit('/').next()?.to_string();
            Some((kv.key.clone(), claim, value))
        })
        .collect();
    let revisions: std::collections::HashMap<&str, i64> = claims
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.mod_revision))
        .collect();
    let mut deleted = 0;
    for key in stale_claims(&parsed, &held, unix_now()) {
        match st.store.delete(key, revisions[key]).await {
            Ok(_) => deleted += 1,
            // Renewed, taken over or swept by another server meanwhile.
            Err(skiff_store::StoreError::Conflict { .. })
            | Err(skiff_store::StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    if deleted > 0 {
        tracing::debug!(deleted, "allocation claims: stale claims removed");
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_claims_are_those_no_service_holds() {
        let svc = serde_json::json!({"spec": {"clusterIP": "10.43.0.9", "clusterIPs": ["10.43.0.9"],
            "ports": [{"port": 80, "nodePort": 30080}]}});
        let mut held = std::collections::HashMap::new();
        held.insert("default/web".to_string(), held_values(&svc));
        let claim = |owner: &str, at: i64| Claim {
            owner: owner.into(),
            at,
        };
        let claims = vec![
            (
                "k/ip".to_string(),
                claim("default/web", 0),
                "10.43.0.9".to_string(),
            ),
            (
                "k/port".to_string(),
                claim("default/web", 0),
                "30080".to_string(),
            ),
            (
                "k/gone".to_string(),
                claim("default/old", 0),
                "10.43.0.7".to_string(),
            ),
            (
                "k/moved".to_string(),
                claim("default/web", 0),
                "30081".to_string(),
            ),
            (
                "k/fresh".to_string(),
                claim("default/new", 995),
                "10.43.0.8".to_string(),
            ),
        ];
        assert_eq!(
            stale_claims(&claims, &held, 1000),
            vec!["k/gone", "k/moved"]
        );
    }

    #[test]
    fn claims_are_ours_taken_or_stale() {
        let c = Claim {
            owner: "default/a".into(),
            at: 100,
        };
        assert_eq!(verdict(&c, "default/a", false, 1000), Verdict::Ours);
        assert_eq!(verdict(&c, "default/b", true, 1000), Verdict::Taken);
        // The owner's write may still be landing.
        assert_eq!(verdict(&c, "default/b", false, 105), Verdict::Taken);
        assert_eq!(verdict(&c, "default/b", false, 110), Verdict::Stale);
        assert_eq!(
            ip_claim_key(Ipv4Addr::new(10, 43, 0, 9)),
            "/skiff/allocations/serviceips/10.43.0.9"
        );
        assert_eq!(port_claim_key(30080), "/skiff/allocations/nodeports/30080");
    }

    #[test]
    fn reservation_is_released_on_drop_and_kept_on_keep() {
        let ips = Mutex::new(IpAllocator::new("10.43.0.0/16").unwrap());
        let ports = Mutex::new(PortAllocator::new(30000, 30001));
        let ip = ips.lock().allocate_next().unwrap();
        ports.lock().allocate(30000).unwrap();
        {
            let r = Reservation::new(&ips, &ports, vec![ip], vec![30000]);
            assert_eq!(r.held(), (&[ip][..], &[30000u16][..]));
            // Dropped without keep(): a failed or retried write.
        }
        ips.lock().allocate(ip).unwrap();
        ports.lock().allocate(30000).unwrap();
        Reservation::new(&ips, &ports, vec![ip], vec![30000]).keep();
        assert!(ips.lock().allocate(ip).is_err());
        assert!(ports.lock().allocate(30000).is_err());
    }

    #[test]
    fn ips() {
        let mut a = IpAllocator::new("10.43.0.0/16").unwrap();
        assert_eq!(a.nth(1), Ipv4Addr::new(10, 43, 0, 1));
        a.allocate(Ipv4Addr::new(10, 43, 0, 1)).unwrap();
        assert!(a
            .allocate(Ipv4Addr::new(10, 43, 0, 1))
            .unwrap_err()
            .contains("already allocated"));
        assert!(a.allocate(Ipv4Addr::new(10, 44, 0, 1)).is_err());
        let x = a.allocate_next().unwrap();
        let y = a.allocate_next().unwrap();
        assert_ne!(x, y);
        a.release(x);
        let mut small = IpAllocator::new("10.0.0.0/30").unwrap();
        assert!(small.allocate_next().is_some());
        assert!(small.allocate_next().is_some());
        assert!(small.allocate_next().is_none());
    }

    #[test]
    fn ports() {
        let mut p = PortAllocator::new(30000, 30002);
        assert!(p.allocate(80).unwrap_err().contains("30000-30002"));
        p.allocate(30001).unwrap();
        assert!(p.allocate(30001).is_err());
        let a = p.allocate_next().unwrap();
        let b = p.allocate_next().unwrap();
        assert!(p.allocate_next().is_none());
        assert_ne!(a, b);
        p.release(a);
        assert_eq!(p.allocate_next(), Some(a));
    }
}
