//! Pod network addressing for simulated nodes: IPv4 CIDR blocks, the per-node pod CIDR picked
//! from the cluster CIDR (lowest block no other node holds), and a per-node pod IP pool.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// Errors of pod network addressing.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CidrError {
    #[error("invalid CIDR {0:?}: use an IPv4 network like 10.42.0.0/16")]
    Invalid(String),
    #[error(
        "no free /{mask} block left in {cluster}: use a larger --cluster-cidr or a larger --node-cidr-mask-size"
    )]
    Exhausted { cluster: Ipv4Net, mask: u8 },
    #[error(
        "node CIDR mask /{mask} must be longer than the cluster CIDR {cluster} and at most /30"
    )]
    BadMask { cluster: Ipv4Net, mask: u8 },
}

/// skiff's default cluster (pod) CIDR, 10.42.0.0/16.
pub const DEFAULT_CLUSTER_CIDR: Ipv4Net = Ipv4Net {
    base: 0x0a2a_0000,
    prefix: 16,
};

/// An IPv4 network (address masked to its prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    base: u32,
    prefix: u8,
}

impl Ipv4Net {
    /// The network containing `addr` with `prefix` bits (host bits are cleared).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, CidrError> {
        if prefix > 32 {
            return Err(CidrError::Invalid(format!("{addr}/{prefix}")));
        }
        Ok(Ipv4Net {
            base: u32::from(addr) & mask_bits(prefix),
            prefix,
        })
    }

    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.base)
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Number of addresses in the block.
    pub fn size(&self) -> u64 {
        1u64 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask_bits(self.prefix) == self.base
    }

    /// Whether the two blocks share any address.
    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        let p = self.prefix.min(other.prefix);
        self.base & mask_bits(p) == other.base & mask_bits(p)
    }

    /// The address at `offset` from the network address, if inside the block.
    pub fn nth(&self, offset: u64) -> Option<Ipv4Addr> {
        (offset < self.size()).then(|| Ipv4Addr::from(self.base.wrapping_add(offset as u32)))
    }

    /// The `index`-th sub-block of length `prefix` inside this block.
    pub fn subnet(&self, prefix: u8, index: u64) -> Option<Ipv4Net> {
        if prefix < self.prefix || prefix > 32 {
            return None;
        }
        let count = 1u64 << (prefix - self.prefix);
        if index >= count {
            return None;
        }
        let step = 1u64 << (32 - u32::from(prefix));
        Some(Ipv4Net {
            base: self.base + (index * step) as u32,
            prefix,
        })
    }
}

fn mask_bits(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network(), self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError::Invalid(s.to_string());
        let (ip, prefix) = s.trim().split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ipv4Net::new(ip, prefix)
    }
}

/// Candidate pod CIDRs of length `mask` inside `cluster`, lowest first, none overlapping
/// `taken` (the podCIDRs nodes already hold; entries that do not parse as IPv4 are skipped).
#[derive(Debug, Clone)]
pub struct FreeBlocks {
    cluster: Ipv4Net,
    mask: u8,
    taken: Vec<Ipv4Net>,
    index: u64,
}

impl FreeBlocks {
    pub fn new(cluster: Ipv4Net, mask: u8, taken: &[String]) -> Result<Self, CidrError> {
        if mask <= cluster.prefix() || mask > 30 {
            return Err(CidrError::BadMask { cluster, mask });
        }
        Ok(FreeBlocks {
            cluster,
            mask,
            taken: taken.iter().filter_map(|t| t.parse().ok()).collect(),
            index: 0,
        })
    }

    /// The next free block; an error once the cluster CIDR is used up.
    pub fn next_block(&mut self) -> Result<Ipv4Net, CidrError> {
        loop {
            let Some(block) = self.cluster.subnet(self.mask, self.index) else {
                return Err(CidrError::Exhausted {
                    cluster: self.cluster,
                    mask: self.mask,
                });
            };
            self.index += 1;
            if !self.taken.iter().any(|t| t.overlaps(&block)) {
                return Ok(block);
            }
        }
    }
}

/// Picks `count` pod CIDRs of length `mask` inside `cluster`, lowest first, none overlapping
/// `taken` nor each other.
pub fn allocate_node_cidrs(
    cluster: Ipv4Net,
    mask: u8,
    taken: &[String],
    count: usize,
) -> Result<Vec<Ipv4Net>, CidrError> {
    let mut free = FreeBlocks::new(cluster, mask, taken)?;
    (0..count).map(|_| free.next_block()).collect()
}

/// The node CIDR mask for `count` new nodes: /24 when that many free /24 blocks are left,
/// otherwise the largest blocks (up to /30) of which that many are free.
pub fn choose_mask(cluster: Ipv4Net, taken: &[String], count: usize) -> Result<u8, CidrError> {
    let first = 24.max(cluster.prefix() + 1);
    for mask in first..=30 {
        let mut free = FreeBlocks::new(cluster, mask, taken)?;
        if (0..count).all(|_| free.next_block().is_ok()) {
            return Ok(mask);
        }
    }
    Err(CidrError::Exhausted { cluster, mask: 30 })
}

/// The pod IPs of one node: offsets 2..size-1 of its pod CIDR (`.1` is the bridge gateway,
/// the last address is broadcast), handed out lowest free first.
#[derive(Debug, Clone)]
pub struct PodIpPool {
    net: Ipv4Net,
    used: Vec<u64>,
}

impl PodIpPool {
    pub fn new(net: Ipv4Net) -> Self {
        let words = net.size().div_ceil(64) as usize;
        PodIpPool {
            net,
            used: vec![0; words.max(1)],
        }
    }

    pub fn net(&self) -> Ipv4Net {
        self.net
    }

    /// How many pod IPs the block offers.
    pub fn capacity(&self) -> u64 {
        self.net.size().saturating_sub(3)
    }

    fn usable(&self, offset: u64) -> bool {
        offset >= 2 && offset + 1 < self.net.size()
    }

    fn bit(&self, offset: u64) -> bool {
        self.used[(offset / 64) as usize] & (1 << (offset % 64)) != 0
    }

    fn set(&mut self, offset: u64, on: bool) {
        let w = &mut self.used[(offset / 64) as usize];
        if on {
            *w |= 1 << (offset % 64);
        } else {
            *w &= !(1 << (offset % 64));
        }
    }

    /// Takes the lowest free pod IP, or `None` when the block is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let offset = (2..self.net.size().saturating_sub(1)).find(|&o| !self.bit(o))?;
        self.set(offset, true);
        self.net.nth(offset)
    }

    /// Marks `ip` as used (a pod re-adopted after a restart); false when it is outside the
    /// usable range or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        if !self.net.contains(ip) {
            return false;
        }
        let offset = u64::from(u32::from(ip) - u32::from(self.net.network()));
        if !self.usable(offset) || self.bit(offset) {
            return false;
        }
        self.set(offset, true);
        true
    }

    /// Returns `ip` to the pool (no-op when it is not ours).
    pub fn release(&mut self, ip: Ipv4Addr) {
        if self.net.contains(ip) {
            let offset = u64::from(u32::from(ip) - u32::from(self.net.network()));
            if self.usable(offset) {
                self.set(offset, false);
            }
        }
    }

    pub fn in_use(&self) -> usize {
        self.used.iter().map(|w| w.count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(DEFAULT_CLUSTER_CIDR.to_string(), "10.42.0.0/16");
        assert_eq!(net("10.42.3.7/24").to_string(), "10.42.3.0/24");
        assert!("10.42.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.42.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("fd00::/64".parse::<Ipv4Net>().is_err());
        assert_eq!(net("0.0.0.0/0").size(), 1 << 32);
    }

    #[test]
    fn overlap_and_contains() {
        assert!(net("10.42.0.0/16").overlaps(&net("10.42.5.0/24")));
        assert!(net("10.42.5.0/24").overlaps(&net("10.42.0.0/16")));
        assert!(!net("10.42.5.0/24").overlaps(&net("10.42.6.0/24")));
        assert!(net("10.42.5.0/24").contains("10.42.5.200".parse().unwrap()));
        assert!(!net("10.42.5.0/24").contains("10.42.6.1".parse().unwrap()));
    }

    #[test]
    fn allocates_lowest_free_blocks() {
        let cluster = net("10.42.0.0/16");
        let taken = vec![
            "10.42.0.0/24".to_string(),
            "10.42.2.0/24".to_string(),
            "garbage".to_string(),
            "fd00::/64".to_string(),
        ];
        let got = allocate_node_cidrs(cluster, 24, &taken, 3).unwrap();
        let got: Vec<String> = got.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["10.42.1.0/24", "10.42.3.0/24", "10.42.4.0/24"]);
    }

    #[test]
    fn smaller_blocks_skip_overlapping_larger_ones() {
        let cluster = net("10.42.0.0/16");
        let taken = vec!["10.42.0.0/24".to_string()];
        let got = allocate_node_cidrs(cluster, 26, &taken, 2).unwrap();
        assert_eq!(got[0].to_string(), "10.42.1.0/26");
        assert_eq!(got[1].to_string(), "10.42.1.64/26");
    }

    #[test]
    fn exhaustion_and_bad_mask_are_errors() {
        let cluster = net("10.42.0.0/16");
        assert_eq!(
            allocate_node_cidrs(cluster, 24, &[], 256).unwrap().len(),
            256
        );
        assert!(matches!(
            allocate_node_cidrs(cluster, 24, &[], 257),
            Err(CidrError::Exhausted { .. })
        ));
        assert!(matches!(
            allocate_node_cidrs(cluster, 16, &[], 1),
            Err(CidrError::BadMask { .. })
        ));
        assert_eq!(
            allocate_node_cidrs(cluster, 26, &[], 1000).unwrap().len(),
            1000
        );
    }

    #[test]
    fn mask_shrinks_only_when_24s_run_out() {
        let cluster = net("10.42.0.0/16");
        assert_eq!(choose_mask(cluster, &[], 1).unwrap(), 24);
        assert_eq!(choose_mask(cluster, &[], 256).unwrap(), 24);
        assert_eq!(choose_mask(cluster, &[], 257).unwrap(), 25);
        assert_eq!(choose_mask(cluster, &[], 1000).unwrap(), 26);
        let taken: Vec<String> = (0..60).map(|i| format!("10.42.{i}.0/24")).collect();
        assert_eq!(choose_mask(cluster, &taken, 196).unwrap(), 24);
        assert_eq!(choose_mask(cluster, &taken, 197).unwrap(), 25);
        // 60 /24s cover 240 /26s: 784 /26s left, so 1000 nodes need /27s
        assert_eq!(choose_mask(cluster, &taken, 784).unwrap(), 26);
        assert_eq!(choose_mask(cluster, &taken, 785).unwrap(), 27);
        assert!(choose_mask(net("10.0.0.0/28"), &[], 5).is_err());
        assert_eq!(choose_mask(net("10.0.0.0/26"), &[], 1).unwrap(), 27);
    }

    #[test]
    fn pool_hands_out_unique_ips_and_reuses_released_ones() {
        let mut pool = PodIpPool::new(net("10.42.7.0/24"));
        assert_eq!(pool.capacity(), 253);
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a.to_string(), "10.42.7.2");
        assert_eq!(b.to_string(), "10.42.7.3");
        pool.release(a);
        assert_eq!(pool.allocate().unwrap(), a);
        let mut all = std::collections::HashSet::new();
        all.insert(a);
        all.insert(b);
        while let Some(ip) = pool.allocate() {
            assert!(all.insert(ip), "{ip} handed out twice");
        }
        assert_eq!(all.len(), 253);
        assert!(!all.contains(&"10.42.7.255".parse().unwrap()));
        assert!(!all.contains(&"10.42.7.1".parse().unwrap()));
        assert_eq!(pool.in_use(), 253);
    }

    #[test]
    fn reserve_marks_adopted_ips() {
        let mut pool = PodIpPool::new(net("10.42.7.0/24"));
        assert!(pool.reserve("10.42.7.2".parse().unwrap()));
        assert!(!pool.reserve("10.42.7.2".parse().unwrap()));
        assert!(!pool.reserve("10.42.8.2".parse().unwrap()));
        assert!(!pool.reserve("10.42.7.1".parse().unwrap()));
        assert_eq!(pool.allocate().unwrap().to_string(), "10.42.7.3");
    }

    #[test]
    fn tiny_pools() {
        let mut pool = PodIpPool::new(net("10.42.0.0/30"));
        assert_eq!(pool.capacity(), 1);
        assert_eq!(pool.allocate().unwrap().to_string(), "10.42.0.2");
        assert!(pool.allocate().is_none());
    }
}
