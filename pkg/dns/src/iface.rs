//! The dummy interface `skiff-dns` holding the cluster DNS address as a /32 (rtnetlink).

use crate::Error;
use futures::TryStreamExt;
use rtnetlink::{LinkDummy, LinkUnspec};
use std::net::{IpAddr, Ipv4Addr};

/// -ENODEV, as netlink reports a missing link.
const ENODEV: i32 = -19;
/// -EOPNOTSUPP: the kernel lacks the link type (no dummy driver).
const EOPNOTSUPP: i32 = -95;

fn nl(what: &'static str) -> impl Fn(rtnetlink::Error) -> Error {
    move |e| Error::Netlink(format!("{what}: {e}"))
}

/// Creates `name` (dummy, up) if missing and puts `addr/32` on it; idempotent.
pub async fn ensure(name: &str, addr: Ipv4Addr) -> Result<(), Error> {
    let (conn, h, _) = rtnetlink::new_connection()
        .map_err(|e| Error::Netlink(format!("open a netlink socket: {e}")))?;
    let conn = tokio::spawn(conn);
    let result = async {
        let find = |name: String| {
            let h = h.clone();
            async move {
                let mut s = h.link().get().match_name(name.clone()).execute();
                match s.try_next().await {
                    Ok(l) => Ok(l),
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == ENODEV => Ok(None),
                    Err(e) => Err(Error::Netlink(format!("look up link {name}: {e}"))),
                }
            }
        };
        let link = match find(name.to_string()).await? {
            Some(l) => l,
            None => {
                let added = h
                    .link()
                    .add(LinkDummy::new(name).up().build())
                    .execute()
                    .await;
                let on = match added {
                    Ok(()) => name,
                    // Kernels without the dummy driver: loopback delivers the address locally
                    // just as well (pods still reach it through their gateway).
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == EOPNOTSUPP => {
                        tracing::info!(
                            "this kernel has no dummy interfaces: the cluster DNS address goes on lo"
                        );
                        "lo"
                    }
                    Err(e) => return Err(nl("create the cluster DNS interface")(e)),
                };
                find(on.to_string())
                    .await?
                    .ok_or_else(|| Error::Netlink(format!("{on} vanished after it was created")))?
            }
        };
        let index = link.header.index;
        h.link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(nl("bring the cluster DNS interface up"))?;
        h.address()
            .add(index, IpAddr::V4(addr), 32)
            .replace()
            .execute()
            .await
            .map_err(nl("address the cluster DNS interface"))?;
        tracing::info!(interface = name, %addr, "cluster DNS address is local");
        Ok(())
    }
    .await;
    conn.abort();
    result
}
