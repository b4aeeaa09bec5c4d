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

#[cfg(test)]
mod tests {
    use super::*;

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
