//! Service IP and NodePort allocation from the configured ranges: no duplicates, freed on
//! delete, rebuilt from stored Services at start.

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

#[cfg(test)]
mod tests {
    use super::*;

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
