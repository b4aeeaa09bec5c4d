//! The kernel side over rtnetlink: find the external interface, keep the `flannel.1` VXLAN
//! device, read the routes/ARP/FDB entries the pod network owns, and apply [`Op`]s.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{
    InfoData, InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use crate::plan::{self, Mac, NetState, Op};
use crate::{Backend, Error};

const ENODEV: i32 = -19;

fn nl(what: &str) -> impl Fn(rtnetlink::Error) -> Error + '_ {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

/// The interface node traffic leaves by.
#[derive(Debug, Clone)]
pub struct External {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
    pub ip: Ipv4Addr,
}

/// A netlink connection in the current network namespace.
#[derive(Clone)]
pub struct Kernel {
    h: Handle,
}

impl Kernel {
    /// Opens a rtnetlink socket (its reader runs as a task).
    pub fn connect() -> Result<Kernel, Error> {
        let (conn, h, _) = rtnetlink::new_connection()
            .map_err(|e| Error::Netlink(format!("open a netlink socket: {e}")))?;
        tokio::spawn(conn);
        Ok(Kernel { h })
    }

    async fn link_by_name(&self, name: &str) -> Result<Option<LinkMessage>, Error> {
        let mut s = self.h.link().get().match_name(name.to_string()).execute();
        match s.try_next().await {
            Ok(l) => Ok(l),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == ENODEV => Ok(None),
            Err(e) => Err(Error::Netlink(format!("look up link {name}: {e}"))),
        }
    }

    async fn link_by_index(&self, index: u32) -> Result<Option<LinkMessage>, Error> {
        let mut s = self.h.link().get().match_index(index).execute();
        match s.try_next().await {
            Ok(l) => Ok(l),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == ENODEV => Ok(None),
            Err(e) => Err(Error::Netlink(format!("look up link {index}: {e}"))),
        }
    }

    async fn ipv4_addresses(&self) -> Result<Vec<(u32, Ipv4Addr, u8)>, Error> {
        let msgs: Vec<AddressMessage> = self
            .h
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list addresses"))?;
        Ok(msgs
            .iter()
            .filter_map(|m| {
                let ip = m.attributes.iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(ip)) => Some(*ip),
                    _ => None,
                })?;
                Some((m.header.index, ip, m.header.prefix_len))
            })
            .collect())
    }

    /// The interface `--flannel-iface` names, or the one holding the node IP.
    pub async fn external(
        &self,
        iface: Option<&str>,
        node_ip: Ipv4Addr,
    ) -> Result<External, Error> {
        let addrs = self.ipv4_addresses().await?;
        let (link, ip) = match iface {
            Some(name) => {
                let link = self.link_by_name(name).await?.ok_or_else(|| {
                    Error::Config(format!(
                        "--flannel-iface {name}: no such interface in this network namespace"
                    ))
                })?;
                let idx = link.header.index;
                let ip = addrs
                    .iter()
                    .filter(|(i, _, _)| *i == idx)
                    .map(|(_, ip, _)| *ip)
                    .find(|ip| *ip == node_ip)
                    .or_else(|| addrs.iter().find(|(i, _, _)| *i == idx).map(|a| a.1))
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "--flannel-iface {name} has no IPv4 address: give it one or pick another interface"
                        ))
                    })?;
                (link, ip)
            }
            None => {
                let idx = addrs
                    .iter()
                    .find(|(_, ip, _)| *ip == node_ip)
                    .map(|a| a.0)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "no interface holds the node IP {node_ip}: pass --node-ip with a local address or --flannel-iface"
                        ))
                    })?;
                let link = self.link_by_index(idx).await?.ok_or_else(|| {
                    Error::Netlink(format!("interface {idx} of {node_ip} vanished"))
                })?;
                (link, node_ip)
            }
        };
        let mut name = String::new();
        let mut mtu = 1500;
        for a in &link.attributes {
            match a {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        Ok(External {
            name,
            index: link.header.index,
            mtu,
            ip,
        })
    }

    /// Creates (or repairs) `flannel.1`: VNI 1, port 8472, learning off, local = the external
    /// IP over the external interface, MAC `mac`, MTU external − 50, `<pod network>/32`, up.
    /// A device with other VXLAN parameters is re-created, as flannel does.
    pub async fn ensure_vxlan(
        &self,
        ext: &External,
        mac: &Mac,
        pod_cidr: Ipv4Net,
    ) -> Result<u32, Error> {
        let mtu = plan::pod_mtu(Backend::Vxlan, ext.mtu);
        let name = plan::VXLAN_DEVICE;
        let mut index = None;
        if let Some(link) = self.link_by_name(name).await? {
            let wanted = [
                InfoVxlan::Id(plan::VNI),
                InfoVxlan::Local(ext.ip),
                InfoVxlan::Link(ext.index),
                InfoVxlan::Port(plan::VXLAN_PORT),
                InfoVxlan::Learning(false),
            ];
            let info: Vec<InfoVxlan> = link
                .attributes
                .iter()
                .filter_map(|a| match a {
                    LinkAttribute::LinkInfo(i) => Some(i),
                    _ => None,
                })
                .flatten()
                .filter_map(|i| match i {
                    LinkInfo::Data(InfoData::Vxlan(v)) => Some(v.clone()),
                    _ => None,
                })
                .flatten()
                .collect();
            if wanted.iter().all(|w| info.contains(w)) {
                let same_mac = link
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Address(m) if m[..] == mac[..]));
                let same_mtu = link
                    .attributes
                    .iter()
                    .any(|a| matches!(a, LinkAttribute::Mtu(m) if *m == mtu));
                let up = link.header.flags.contains(LinkFlags::Up);
                index = Some((link.header.index, same_mac && same_mtu && up));
            } else {
                tracing::info!(
                    device = name,
                    "re-creating the VXLAN device: its parameters changed"
                );
                self.h
                    .link()
                    .del(link.header.index)
                    .execute()
                    .await
                    .map_err(nl("delete the stale VXLAN device"))?;
            }
        }
        let index = match index {
            // Setting a MAC, even the same one, flushes the device's ARP entries: touch the
            // device only when something differs.
            Some((i, true)) => i,
            Some((i, false)) => {
                self.h
                    .link()
                    .set(
                        LinkUnspec::new_with_index(i)
                            .address(mac.to_vec())
                            .mtu(mtu)
                            .up()
                            .build(),
                    )
                    .execute()
                    .await
                    .map_err(nl("set up the VXLAN device"))?;
                i
            }
            None => {
                let msg = LinkVxlan::new(name, plan::VNI)
                    .dev(ext.index)
                    .local(ext.ip)
                    .port(plan::VXLAN_PORT)
                    .learning(false)
                    .address(mac.to_vec())
                    .mtu(mtu)
                    .up()
                    .build();
                self.h.link().add(msg).execute().await.map_err(nl(
                    "create the VXLAN device flannel.1 (is the vxlan kernel module available?)",
                ))?;
                let link = self.link_by_name(name).await?.ok_or_else(|| {
                    Error::Netlink("flannel.1 vanished right after it was created".into())
                })?;
                tracing::info!(device = name, mtu, "created the VXLAN device");
                link.header.index
            }
        };
        // Exactly `<pod network>/32` on the device.
        let want = pod_cidr.network();
        let mut have = false;
        for (i, ip, len) in self.ipv4_addresses().await? {
            if i == index && ip == want && len == 32 {
                have = true;
            } else if i == index {
                let mut msgs = self
                    .h
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .set_address_filter(IpAddr::V4(ip))
                    .execute();
                while let Some(m) = msgs.try_next().await.map_err(nl("list addresses"))? {
                    self.h
                        .address()
                        .del(m)
                        .execute()
                        .await
                        .map_err(nl("remove a stale address"))?;
                }
            }
        }
        if have {
            return Ok(index);
        }
        self.h
            .address()
            .add(index, IpAddr::V4(want), 32)
            .replace()
            .execute()
            .await
            .map_err(nl("address the VXLAN device"))?;
        Ok(index)
    }

    /// Removes `flannel.1` (another backend runs now); its routes and entries go with it.
    pub async fn remove_vxlan(&self) -> Result<(), Error> {
        if let Some(link) = self.link_by_name(plan::VXLAN_DEVICE).await? {
            self.h
                .link()
                .del(link.header.index)
                .execute()
                .await
                .map_err(nl("delete flannel.1"))?;
            tracing::info!("removed the VXLAN device: this node no longer runs the vxlan backend");
        }
        Ok(())
    }

    /// What the kernel holds that the pod network owns: main-table routes into the cluster
    /// CIDR (other than this node's own) with a gateway on flannel.1 or the external interface,
    /// and the permanent ARP and FDB entries on flannel.1.
    pub async fn state(
        &self,
        vxlan: Option<u32>,
        ext: u32,
        cluster_cidr: Ipv4Net,
        own: Ipv4Net,
    ) -> Result<NetState, Error> {
        let mut st = NetState::default();
        let routes: Vec<RouteMessage> = self
            .h
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute()
            .try_collect()
            .await
            .map_err(nl("list routes"))?;
        for r in routes {
            if r.header.table != RouteHeader::RT_TABLE_MAIN {
                continue;
            }
            let (mut dst, mut gw, mut oif) = (None, None, None);
            for a in &r.attributes {
                match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => dst = Some(*ip),
                    RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gw = Some(*ip),
                    RouteAttribute::Oif(i) => oif = Some(*i),
                    _ => {}
                }
            }
            let (Some(dst), Some(gw), Some(oif)) = (dst, gw, oif) else {
                continue;
            };
            let Ok(net) = Ipv4Net::new(dst, r.header.destination_prefix_length) else {
                continue;
            };
            if net == own || !cluster_cidr.contains(&net) {
                continue;
            }
            if oif == ext || Some(oif) == vxlan {
                st.routes.insert(net, gw);
            }
        }
        let Some(vx) = vxlan else {
            return Ok(st);
        };
        let neigh: Vec<NeighbourMessage> = self
            .h
            .neighbours()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(nl("list neighbours"))?;
        for n in neigh {
            if n.header.ifindex != vx || n.header.state != NeighbourState::Permanent {
                continue;
            }
            if let (Some(ip), Some(mac)) = (neigh_ip(&n), neigh_mac(&n)) {
                st.neighbours.insert(ip, mac);
            }
        }
        let fdb: Vec<NeighbourMessage> = self
            .h
            .neighbours()
            .get()
            .set_address_family(AddressFamily::Bridge)
            .execute()
            .try_collect()
            .await
            .map_err(nl("list the FDB"))?;
        for n in fdb {
            if n.header.ifindex != vx {
                continue;
            }
            if let (Some(ip), Some(mac)) = (neigh_ip(&n), neigh_mac(&n)) {
                if mac != [0; 6] {
                    st.fdb.insert(mac, ip);
                }
            }
        }
        Ok(st)
    }

    /// Applies one change. Routes go over flannel.1 (onlink) for VXLAN, over the external
    /// interface for host-gw.
    pub async fn apply(
        &self,
        op: &Op,
        backend: Backend,
        vxlan: Option<u32>,
        ext: u32,
    ) -> Result<(), Error> {
        let vx = || vxlan.ok_or_else(|| Error::Netlink("the VXLAN device is not set up".into()));
        match op {
            Op::SetNeighbour(ip, mac) => self
                .h
                .neighbours()
                .add(vx()?, IpAddr::V4(*ip))
                .link_layer_address(mac)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(nl("add an ARP entry")),
            Op::SetFdb(mac, dst) => self
                .h
                .neighbours()
                .add_bridge(vx()?, mac)
                .destination(IpAddr::V4(*dst))
                .flags(NeighbourFlags::Own)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await
                .map_err(nl("add an FDB entry")),
            Op::SetRoute(net, gw) => {
                let b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(net.network(), net.prefix_len())
                    .gateway(*gw);
                let msg = match backend {
                    Backend::Vxlan => b.output_interface(vx()?).onlink().build(),
                    _ => b.output_interface(ext).build(),
                };
                self.h
                    .route()
                    .add(msg)
                    .replace()
                    .execute()
                    .await
                    .map_err(nl("add a route"))
            }
            Op::DelRoute(net, gw) => {
                let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(net.network(), net.prefix_len())
                    .gateway(*gw);
                // Match whichever protocol added it.
                b.get_mut().header.protocol = RouteProtocol::Unspec;
                self.h
                    .route()
                    .del(b.build())
                    .execute()
                    .await
                    .map_err(nl("delete a route"))
            }
            // rtnetlink has no builder for deletes; the message is built by hand from the
            // crate's types: family, device and the keys the kernel matches on.
            Op::DelNeighbour(ip, _) => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Inet;
                m.header.ifindex = vx()?;
                m.attributes
                    .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(*ip)));
                self.h
                    .neighbours()
                    .del(m)
                    .execute()
                    .await
                    .map_err(nl("delete an ARP entry"))
            }
            Op::DelFdb(mac, dst) => {
                let mut m = NeighbourMessage::default();
                m.header.family = AddressFamily::Bridge;
                m.header.ifindex = vx()?;
                m.header.flags = NeighbourFlags::Own;
                m.attributes
                    .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
                m.attributes
                    .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                        *dst,
                    )));
                self.h
                    .neighbours()
                    .del(m)
                    .execute()
                    .await
                    .map_err(nl("delete an FDB entry"))
            }
        }
    }
}

fn neigh_ip(n: &NeighbourMessage) -> Option<Ipv4Addr> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => Some(*ip),
        // AF_BRIDGE (FDB) messages carry NDA_DST undecoded.
        NeighbourAttribute::Destination(NeighbourAddress::Other(b)) if b.len() == 4 => {
            Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
        _ => None,
    })
}

fn neigh_mac(n: &NeighbourMessage) -> Option<Mac> {
    n.attributes.iter().find_map(|a| match a {
        NeighbourAttribute::LinkLayerAddress(l) if l.len() == 6 => {
            let mut m = [0u8; 6];
            m.copy_from_slice(l);
            Some(m)
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{desired, diff, vtep_mac, Lease};
    use std::process::Command;

    const LIVE: &str = "SKIFF_NETWORK_LIVE_NETNS";

    fn sh(script: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Re-runs itself in a fresh network namespace (`unshare -n`, root only) and programs a
    /// VXLAN device, ARP, FDB and routes for two fake remote nodes there, then removes one.
    #[test]
    fn vxlan_state_round_trips_through_the_kernel() {
        if std::env::var_os(LIVE).is_none() {
            let exe = std::env::current_exe().unwrap();
            let out = Command::new("unshare")
                .arg("-n")
                .arg(&exe)
                .args([
                    "--exact",
                    "kernel::tests::vxlan_state_round_trips_through_the_kernel",
                ])
                .args(["--nocapture", "--test-threads=1"])
                .env(LIVE, "1")
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if !out.status.success() && text.contains("unshare failed") {
                eprintln!("*** SKIPPED: needs root for a network namespace: {text}");
                return;
            }
            assert!(out.status.success(), "{text}");
            assert!(text.contains("1 passed"), "{text}");
            return;
        }
        // No dummy driver on every kernel: a veth pair stands in for the node's interface.
        sh("ip link add name eth9 mtu 1500 type veth peer name eth9p && ip addr add 192.0.2.1/24 dev eth9 && ip link set eth9p up && ip link set eth9 up && ip link set lo up");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let k = Kernel::connect().unwrap();
            let ext = k
                .external(None, "192.0.2.1".parse().unwrap())
                .await
                .unwrap();
            assert_eq!((ext.name.as_str(), ext.mtu), ("eth9", 1500));
            let mac = vtep_mac("n1");
            let own: Ipv4Net = "10.42.0.0/24".parse().unwrap();
            let vx = k.ensure_vxlan(&ext, &mac, own).await.unwrap();
            // Idempotent: the same device again.
            assert_eq!(k.ensure_vxlan(&ext, &mac, own).await.unwrap(), vx);
            let link = sh("ip -d link show flannel.1");
            for want in [
                "mtu 1450",
                "vxlan id 1 ",
                "local 192.0.2.1",
                "dev eth9",
                "dstport 8472",
                "nolearning",
            ] {
                assert!(link.contains(want), "{want:?} in {link}");
            }
            assert!(link.contains(&plan::format_mac(&mac)), "{link}");
            assert!(sh("ip addr show flannel.1").contains("inet 10.42.0.0/32"));

            let cluster: Ipv4Net = "10.42.0.0/16".parse().unwrap();
            let lease = |n: &str, c: &str, ip: &str| Lease {
                node: n.into(),
                pod_cidr: c.parse().unwrap(),
                public_ip: ip.parse().unwrap(),
                backend: "vxlan".into(),
                vtep_mac: Some(vtep_mac(n)),
            };
            let leases = [
                lease("n2", "10.42.1.0/24", "192.0.2.2"),
                lease("n3", "10.42.2.0/24", "192.0.2.3"),
            ];
            let (want, _) = desired("n1", Backend::Vxlan, cluster, &leases);
            let cur = k.state(Some(vx), ext.index, cluster, own).await.unwrap();
            for op in diff(&want, &cur) {
                k.apply(&op, Backend::Vxlan, Some(vx), ext.index)
                    .await
                    .unwrap();
            }
            let cur = k.state(Some(vx), ext.index, cluster, own).await.unwrap();
            assert_eq!(cur, want);
            // The periodic re-assert of the device keeps the entries (a MAC write would flush
            // the ARP ones).
            k.ensure_vxlan(&ext, &mac, own).await.unwrap();
            assert_eq!(
                k.state(Some(vx), ext.index, cluster, own).await.unwrap(),
                want
            );
            let routes = sh("ip route show root 10.42.0.0/16");
            assert!(
                routes.contains("10.42.1.0/24 via 10.42.1.0 dev flannel.1 proto static onlink"),
                "{routes}"
            );
            let fdb = sh("bridge fdb show dev flannel.1");
            assert!(
                fdb.contains(&format!(
                    "{} dst 192.0.2.2 self permanent",
                    plan::format_mac(&vtep_mac("n2"))
                )),
                "{fdb}"
            );

            // n3 leaves: its three entries go, n2's stay.
            let (want2, _) = desired("n1", Backend::Vxlan, cluster, &leases[..1]);
            let ops = diff(&want2, &cur);
            assert_eq!(ops.len(), 3, "{ops:?}");
            for op in ops {
                k.apply(&op, Backend::Vxlan, Some(vx), ext.index)
                    .await
                    .unwrap();
            }
            assert_eq!(
                k.state(Some(vx), ext.index, cluster, own).await.unwrap(),
                want2
            );

            // host-gw takes over: the device goes, the route is re-pointed at the node IP.
            k.remove_vxlan().await.unwrap();
            let (gw, _) = desired(
                "n1",
                Backend::HostGw,
                cluster,
                &[Lease {
                    backend: "host-gw".into(),
                    ..leases[0].clone()
                }],
            );
            let cur = k.state(None, ext.index, cluster, own).await.unwrap();
            for op in diff(&gw, &cur) {
                k.apply(&op, Backend::HostGw, None, ext.index)
                    .await
                    .unwrap();
            }
            assert_eq!(k.state(None, ext.index, cluster, own).await.unwrap(), gw);
            assert!(sh("ip route show root 10.42.0.0/16")
                .contains("10.42.1.0/24 via 192.0.2.2 dev eth9"));
        });
    }
}
