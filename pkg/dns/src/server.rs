//! The DNS server (hickory-server over UDP and TCP): questions in the cluster zone are
//! answered from the table, others forwarded.

use crate::forward::Forwarder;
use crate::records::{Data, Qtype, Rcode, Resolution, Table};
use crate::Error;
use hickory_proto::op::{Edns, Header, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{CNAME, PTR, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::authority::MessageResponseBuilder;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::ServerFuture;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Idle TCP connections are closed after this long.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// The cluster zone: its name, TTL, and the current table (swapped whole on every rebuild).
#[derive(Clone)]
pub struct Zone {
    pub domain: String,
    pub ttl: u32,
    table: Arc<RwLock<Arc<Table>>>,
}

impl Zone {
    /// An unsynced zone (cluster names SERVFAIL until [`Zone::set`]).
    pub fn new(domain: &str, ttl: u32) -> Zone {
        Zone {
            domain: domain.trim_end_matches('.').to_ascii_lowercase(),
            ttl,
            table: Arc::new(RwLock::new(Arc::new(Table::new(domain)))),
        }
    }

    pub fn set(&self, t: Table) {
        *self.table.write() = Arc::new(t);
    }

    fn table(&self) -> Arc<Table> {
        self.table.read().clone()
    }
}

fn fqdn(name: &str) -> Name {
    // Names in the table come from validated Kubernetes names; a bad one is dropped by the
    // caller rather than failing the whole answer.
    Name::from_ascii(format!("{name}.")).unwrap_or_else(|_| Name::root())
}

fn rdata(d: &Data) -> RData {
    match d {
        Data::A(ip) => RData::A((*ip).into()),
        Data::Cname(t) => RData::CNAME(CNAME(fqdn(t))),
        Data::Srv {
            priority,
            weight,
            port,
            target,
        } => RData::SRV(SRV::new(*priority, *weight, *port, fqdn(target))),
        Data::Ptr(t) => RData::PTR(PTR(fqdn(t))),
        Data::Txt(s) => RData::TXT(TXT::new(vec![s.clone()])),
    }
}

fn qtype(t: RecordType) -> Qtype {
    match t {
        RecordType::A => Qtype::A,
        RecordType::AAAA => Qtype::Aaaa,
        RecordType::CNAME => Qtype::Cname,
        RecordType::SRV => Qtype::Srv,
        RecordType::PTR => Qtype::Ptr,
        RecordType::TXT => Qtype::Txt,
        RecordType::ANY => Qtype::Any,
        _ => Qtype::Other,
    }
}

struct Handler {
    zone: Zone,
    fwd: Arc<Forwarder>,
}

impl Handler {
    fn soa(&self) -> Record {
        let z = fqdn(&self.zone.domain);
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        Record::from_rdata(
            z.clone(),
            self.zone.ttl,
            RData::SOA(SOA::new(
                fqdn(&format!("ns.dns.{}", self.zone.domain)),
                fqdn(&format!("hostmaster.{}", self.zone.domain)),
                serial,
                7200,
                1800,
                86400,
                self.zone.ttl,
            )),
        )
    }

    fn record(&self, qname: &Name, lower: &str, name: &str, d: &Data) -> Record {
        // The question's own spelling for its own name (0x20 case randomisation survives).
        let owner = if name == lower {
            qname.clone()
        } else {
            fqdn(name)
        };
        let ttl = match d {
            Data::Txt(_) => crate::records::DNS_VERSION_TTL,
            _ => self.zone.ttl,
        };
        Record::from_rdata(owner, ttl, rdata(d))
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler>(
        &self,
        request: &Request,
        mut rh: R,
    ) -> ResponseInfo {
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if request.edns().is_some() {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            builder.edns(e);
        }
        let mut header = Header::response_from_request(request.header());
        header.set_recursion_available(true);
        let bad = request.message_type() != MessageType::Query
            || request.op_code() != OpCode::Query
            || request.queries().len() != 1;
        if bad {
            let code = if request.op_code() == OpCode::Query {
                ResponseCode::FormErr
            } else {
                ResponseCode::NotImp
            };
            return send(&mut rh, builder.error_msg(request.header(), code)).await;
        }
        let q = &request.queries()[0];
        let qname = q.original().name().clone();
        let lower = qname.to_lowercase().to_ascii();
        let lower = lower.trim_end_matches('.').to_string();
        match self.zone.table().resolve(&lower, qtype(q.query_type())) {
            Resolution::Answer {
                rcode,
                answers,
                additionals,
                soa,
            } => {
                header.set_authoritative(rcode != Rcode::ServFail);
                header.set_response_code(match rcode {
                    Rcode::NoError => ResponseCode::NoError,
                    Rcode::NxDomain => ResponseCode::NXDomain,
                    Rcode::ServFail => ResponseCode::ServFail,
                });
                let mut records: Vec<Record> = answers
                    .iter()
                    .map(|(n, d)| self.record(&qname, &lower, n, d))
                    .collect();
                // An ExternalName alias out of the zone: its target's addresses from upstream,
                // as CoreDNS answers (the CNAME alone when upstream cannot say).
                if let [(_, Data::Cname(target))] = answers.as_slice() {
                    let wants_address = matches!(q.query_type(), RecordType::A | RecordType::AAAA);
                    let in_zone = target == &self.zone.domain
                        || target.ends_with(&format!(".{}", self.zone.domain));
                    if wants_address && !in_zone {
                        if let Ok(reply) = self.fwd.ask(&fqdn(target), q.query_type()).await {
                            records.extend(reply.answers().iter().cloned());
                        }
                    }
                }
                let answers = records;
                let additionals: Vec<Record> = additionals
                    .iter()
                    .map(|(n, d)| self.record(&qname, &lower, n, d))
                    .collect();
                let soa: Vec<Record> = soa.then(|| self.soa()).into_iter().collect();
                let resp =
                    builder.build(header, answers.iter(), [], soa.iter(), additionals.iter());
                send(&mut rh, resp).await
            }
            Resolution::Forward => match self.fwd.ask(&qname, q.query_type()).await {
                Ok(reply) => {
                    header.set_response_code(reply.response_code());
                    let resp = builder.build(
                        header,
                        reply.answers().iter(),
                        reply.name_servers().iter(),
                        [],
                        reply.additionals().iter(),
                    );
                    send(&mut rh, resp).await
                }
                Err(e) => {
                    tracing::debug!(name = %qname, error = %e, "forwarding failed");
                    send(
                        &mut rh,
                        builder.error_msg(request.header(), ResponseCode::ServFail),
                    )
                    .await
                }
            },
        }
    }
}

async fn send<'a, R: ResponseHandler>(
    rh: &mut R,
    resp: hickory_server::authority::MessageResponse<
        '_,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    >,
) -> ResponseInfo {
    let header = *resp.header();
    match rh.send_response(resp).await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!(error = %e, "sending a DNS reply failed");
            let mut h = header;
            h.set_response_code(ResponseCode::ServFail);
            h.into()
        }
    }
}

/// A running server; [`Server::done`] waits until it stops.
pub struct Server {
    inner: ServerFuture<Handler>,
    /// Where it listens (the UDP and TCP sockets share it).
    pub addr: SocketAddr,
}

impl Server {
    pub async fn done(mut self) -> Result<(), Error> {
        self.inner
            .block_until_done()
            .await
            .map_err(|e| Error::Server(e.to_string()))
    }
}

/// Listens on `addr` (UDP and TCP; port 0 picks one, the same for both where possible)
/// and answers from `zone`, forwarding other names through `fwd`.
pub async fn serve(addr: SocketAddr, zone: Zone, fwd: Arc<Forwarder>) -> Result<Server, Error> {
    let listen = |addr| move |source| Error::Listen { addr, source };
    let udp = tokio::net::UdpSocket::bind(addr)
        .await
        .map_err(listen(addr))?;
    let bound = udp.local_addr().map_err(listen(addr))?;
    let tcp = tokio::net::TcpListener::bind(bound)
        .await
        .map_err(listen(bound))?;
    let mut inner = ServerFuture::new(Handler { zone, fwd });
    inner.register_socket(udp);
    inner.register_listener(tcp, TCP_IDLE);
    Ok(Server { inner, addr: bound })
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Message, Query};
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn ask(server: SocketAddr, name: &str, t: RecordType) -> Message {
        let mut q = Message::new();
        q.set_id(7)
            .set_recursion_desired(true)
            .add_query(Query::query(Name::from_ascii(name).unwrap(), t));
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        s.send_to(&q.to_vec().unwrap(), server).await.unwrap();
        let mut buf = vec![0; 4096];
        let (n, _) = tokio::time::timeout(Duration::from_secs(5), s.recv_from(&mut buf))
            .await
            .expect("a reply in time")
            .unwrap();
        Message::from_vec(&buf[..n]).unwrap()
    }

    /// A one-shot upstream that answers every A question with 192.0.2.7.
    async fn upstream() -> SocketAddr {
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let mut r = Message::new();
                r.set_id(q.id()).set_message_type(MessageType::Response);
                for qq in q.queries() {
                    r.add_query(qq.clone());
                    r.add_answer(Record::from_rdata(
                        qq.name().clone(),
                        60,
                        RData::A("192.0.2.7".parse().unwrap()),
                    ));
                }
                s.send_to(&r.to_vec().unwrap(), from).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test]
    async fn answers_the_zone_and_forwards_the_rest_over_udp() {
        let zone = Zone::new("cluster.local", 5);
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "mongo", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20"}}))
        .unwrap();
        let ext: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "db.example.org"}}))
        .unwrap();
        zone.set(Table::build("cluster.local", [&svc, &ext], []));
        let fwd = Arc::new(Forwarder::new(vec![upstream().await]));
        let server = serve("127.0.0.1:0".parse().unwrap(), zone, fwd)
            .await
            .unwrap();
        let addr = server.addr;
        tokio::spawn(server.done());

        let r = ask(addr, "Mongo.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.authoritative());
        assert_eq!(r.answers().len(), 1);
        assert_eq!(r.answers()[0].ttl(), 5);
        assert_eq!(
            r.answers()[0].name().to_ascii(),
            "Mongo.default.svc.cluster.local."
        );
        assert_eq!(
            r.answers()[0].data(),
            &RData::A("10.43.0.20".parse().unwrap())
        );

        let r = ask(addr, "nope.default.svc.cluster.local.", RecordType::A).await;
        assert_eq!(r.response_code(), ResponseCode::NXDomain);
        assert!(r.answers().is_empty());
        assert!(matches!(r.name_servers()[0].data(), RData::SOA(_)));

        let r = ask(addr, "mongo.default.svc.cluster.local.", RecordType::AAAA).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(r.answers().is_empty());
        assert_eq!(r.name_servers().len(), 1);

        let r = ask(addr, "www.example.org.", RecordType::A).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert!(!r.authoritative());
        assert_eq!(
            r.answers()[0].data(),
            &RData::A("192.0.2.7".parse().unwrap())
        );

        // ExternalName out of the zone: the CNAME, then the target's address from upstream.
        let r = ask(addr, "ext.default.svc.cluster.local.", RecordType::A).await;
        let data: Vec<&RData> = r.answers().iter().map(|a| a.data()).collect();
        assert_eq!(
            data,
            [
                &RData::CNAME(CNAME(Name::from_ascii("db.example.org.").unwrap())),
                &RData::A("192.0.2.7".parse().unwrap())
            ]
        );

        // TCP (length-prefixed) answers the same.
        let mut q = Message::new();
        q.set_id(9).add_query(Query::query(
            Name::from_ascii("mongo.default.svc.cluster.local.").unwrap(),
            RecordType::A,
        ));
        let bytes = q.to_vec().unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&(bytes.len() as u16).to_be_bytes())
            .await
            .unwrap();
        s.write_all(&bytes).await.unwrap();
        let mut l = [0u8; 2];
        s.read_exact(&mut l).await.unwrap();
        let mut buf = vec![0u8; u16::from_be_bytes(l).into()];
        s.read_exact(&mut buf).await.unwrap();
        let r = Message::from_vec(&buf).unwrap();
        assert_eq!(r.id(), 9);
        assert_eq!(
            r.answers()[0].data(),
            &RData::A("10.43.0.20".parse().unwrap())
        );
    }

    #[tokio::test]
    async fn without_upstreams_outside_names_fail_fast() {
        let zone = Zone::new("cluster.local", 5);
        zone.set(Table::build("cluster.local", [], []));
        let server = serve(
            "127.0.0.1:0".parse().unwrap(),
            zone,
            Arc::new(Forwarder::new(vec![])),
        )
        .await
        .unwrap();
        let addr = server.addr;
        tokio::spawn(server.done());
        let r = ask(addr, "www.example.org.", RecordType::A).await;
        assert_eq!(r.response_code(), ResponseCode::ServFail);
        // The zone still answers.
        let r = ask(addr, "dns-version.cluster.local.", RecordType::TXT).await;
        assert_eq!(r.response_code(), ResponseCode::NoError);
        assert_eq!(r.answers().len(), 1);
    }
}
