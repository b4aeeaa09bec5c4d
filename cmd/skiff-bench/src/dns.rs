//! The cluster DNS phase: A-query latency over UDP against skiff's node-local DNS server
//! (`skiff_dns::serve`, the code the agent runs) answering from a zone of N Services, one client
//! asking sequentially. The floor, measured in the same run with the same client: a bare UDP
//! responder on loopback that sends back a prepared answer of the same size (socket and kernel
//! cost, no DNS work). The two are interleaved in blocks so both see the same machine.

use crate::error::{BenchError, Result};
use crate::stats::{summarize, us, Summary};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

/// Queries per block before switching between skiff and the floor.
const BLOCK: usize = 500;
/// How long one answer may take before the phase fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Namespaces the Services are spread over.
const NAMESPACES: usize = 50;

/// What the phase measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct DnsReport {
    pub services: usize,
    pub table_build_ms: f64,
    /// skiff's server: query sent → answer received.
    pub skiff: Summary,
    /// The bare UDP responder.
    pub floor: Summary,
}

fn service(i: usize) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": format!("svc-{i}"), "namespace": format!("ns-{}", i % NAMESPACES)},
        "spec": {"clusterIP": format!("10.43.{}.{}", 1 + i / 250, 1 + i % 250),
            "ports": [{"name": "http", "port": 80}]}
    })
}

/// The A question for Service `i`, with message id `id`.
fn question(i: usize, id: u16) -> Result<Vec<u8>> {
    let name = format!("svc-{i}.ns-{}.svc.cluster.local.", i % NAMESPACES);
    let name = Name::from_ascii(&name).map_err(|e| BenchError::Phase(format!("dns name: {e}")))?;
    let mut q = Message::new();
    q.set_id(id).add_query(Query::query(name, RecordType::A));
    q.to_vec()
        .map_err(|e| BenchError::Phase(format!("encoding a dns question: {e}")))
}

/// Sends `n` questions (Service `start + k` modulo `services`) and times each answer; every
/// answer must carry exactly one record.
async fn ask(
    sock: &UdpSocket,
    services: usize,
    start: usize,
    n: usize,
    out: &mut Vec<u64>,
) -> Result<()> {
    let mut buf = vec![0u8; 4096];
    for k in 0..n {
        let i = (start + k) % services;
        let bytes = question(i, (start + k) as u16)?;
        let t = Instant::now();
        sock.send(&bytes)
            .await
            .map_err(BenchError::io("sending a dns question"))?;
        let got = tokio::time::timeout(ANSWER_TIMEOUT, sock.recv(&mut buf))
            .await
            .map_err(|_| BenchError::Phase(format!("no dns answer within {ANSWER_TIMEOUT:?}")))?
            .map_err(BenchError::io("receiving a dns answer"))?;
        out.push(us(t.elapsed()));
        let m = Message::from_vec(&buf[..got])
            .map_err(|e| BenchError::Phase(format!("bad dns answer: {e}")))?;
        if m.answers().len() != 1 {
            return Err(BenchError::Phase(format!(
                "svc-{i}: {} answers, expected one A record",
                m.answers().len()
            )));
        }
    }
    Ok(())
}

/// The floor: answers every datagram with `answer` (its id patched to the question's).
async fn floor_responder(sock: UdpSocket, answer: Vec<u8>) {
    let mut buf = vec![0u8; 4096];
    let mut out = answer;
    while let Ok((n, from)) = sock.recv_from(&mut buf).await {
        if n >= 2 && out.len() >= 2 {
            out[..2].copy_from_slice(&buf[..2]);
        }
        if sock.send_to(&out, from).await.is_err() {
            break;
        }
    }
}

async fn client(to: SocketAddr) -> Result<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(BenchError::io("binding the dns client"))?;
    s.connect(to)
        .await
        .map_err(BenchError::io("connecting the dns client"))?;
    Ok(s)
}

/// Runs the phase: a zone of `services` Services, `queries` questions to each server.
pub async fn run(services: usize, queries: usize) -> Result<DnsReport> {
    let services = services.max(1);
    let objs: Vec<k8s_openapi::api::core::v1::Service> = (0..services)
        .map(|i| serde_json::from_value(service(i)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| BenchError::Phase(format!("building the Services: {e}")))?;
    let t = Instant::now();
    let table = skiff_dns::records::Table::build("cluster.local", &objs, []);
    let table_build_ms = t.elapsed().as_secs_f64() * 1000.0;
    let zone = skiff_dns::Zone::new("cluster.local", skiff_dns::DEFAULT_TTL);
    zone.set(table);
    let server = skiff_dns::serve(
        "127.0.0.1:0".parse().expect("a socket address"),
        zone,
        Arc::new(skiff_dns::forward::Forwarder::new(vec![])),
    )
    .await
    .map_err(|e| BenchError::Phase(format!("starting the dns server: {e}")))?;
    let skiff_addr = server.addr;
    let served = tokio::spawn(server.done());
    let skiff = client(skiff_addr).await?;

    // The floor's prepared answer: skiff's own answer to the first question.
    let mut buf = vec![0u8; 4096];
    skiff
        .send(&question(0, 0)?)
        .await
        .map_err(BenchError::io("sending a dns question"))?;
    let n = tokio::time::timeout(ANSWER_TIMEOUT, skiff.recv(&mut buf))
        .await
        .map_err(|_| BenchError::Phase("no dns answer for the floor's template".into()))?
        .map_err(BenchError::io("receiving a dns answer"))?;
    let floor_sock = UdpSocket::bind("127.0.0.1:0")
        .await
        .map_err(BenchError::io("binding the floor responder"))?;
    let floor_addr = floor_sock
        .local_addr()
        .map_err(BenchError::io("the floor responder's address"))?;
    let responder = tokio::spawn(floor_responder(floor_sock, buf[..n].to_vec()));
    let floor = client(floor_addr).await?;

    let (mut s_times, mut f_times) = (Vec::with_capacity(queries), Vec::with_capacity(queries));
    let mut done = 0;
    let result = async {
        while done < queries {
            let n = BLOCK.min(queries - done);
            ask(&skiff, services, done, n, &mut s_times).await?;
            ask(&floor, services, done, n, &mut f_times).await?;
            done += n;
        }
        Ok::<_, BenchError>(())
    }
    .await;
    served.abort();
    responder.abort();
    result?;
    Ok(DnsReport {
        services,
        table_build_ms,
        skiff: summarize(s_times),
        floor: summarize(f_times),
    })
}

/// The report section.
pub fn markdown(r: &DnsReport) -> String {
    let row = |name: &str, x: &Summary| {
        format!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            x.count, x.p50_ms, x.p90_ms, x.p99_ms, x.max_ms
        )
    };
    let mut o = format!(
        "\n### Cluster DNS (UDP A queries, {} Services, one client)\n\n\
         | server | queries | p50 ms | p90 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n",
        r.services
    );
    o.push_str(&row("skiff-dns", &r.skiff));
    o.push_str(&row("floor: bare UDP responder", &r.floor));
    let over = r.skiff.p50_ms - r.floor.p50_ms;
    o.push_str(&format!(
        "\nskiff-dns adds {:.3} ms at p50 over the floor; table of {} Services built in {:.1} ms.\n",
        over, r.services, r.table_build_ms
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_answers_every_question_on_both_servers() {
        let r = run(20, 60).await.unwrap();
        assert_eq!(r.services, 20);
        assert_eq!(r.skiff.count, 60);
        assert_eq!(r.floor.count, 60);
        assert!(r.skiff.p50_ms > 0.0 && r.floor.p50_ms > 0.0, "{r:?}");
        let md = markdown(&r);
        assert!(md.contains("| skiff-dns | 60 |"), "{md}");
        assert!(md.contains("floor: bare UDP responder"), "{md}");
    }
}
