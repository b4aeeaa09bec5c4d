//! Closed-loop load: N clients, each on its own keep-alive connection, issue requests back to
//! back until a deadline or an operation budget runs out; latencies and CPU use are recorded.

use crate::error::Result;
use crate::http::{Conn, Target};
use crate::procs::{cpu_time, thread_cpu, thread_cpu_delta};
use crate::stats::{summarize, us, Summary};
use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds request number `i` (every index is used once).
pub type MakeRequest = Arc<dyn Fn(u64) -> (Method, String, Option<Bytes>) + Send + Sync>;

/// Bounds of one load phase: whichever is reached first ends it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub duration: Duration,
    pub max_ops: u64,
}

/// What one load phase measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct LoadResult {
    /// Which round of the interleaved write comparison (0-based).
    pub round: usize,
    pub clients: usize,
    /// Successful operations.
    pub ops: u64,
    pub errors: u64,
    pub elapsed_s: f64,
    pub ops_per_s: f64,
    pub latency: Summary,
    /// CPU seconds the server process used during the phase (if measured).
    pub server_cpu_s: Option<f64>,
    /// CPU seconds per server thread name during the phase, busiest first.
    pub server_threads: Vec<(String, f64)>,
    /// CPU seconds this bench process used during the phase.
    pub bench_cpu_s: Option<f64>,
    /// Write transactions committed (SQLite floor only): ops / commits = mean batch size.
    pub commits: Option<u64>,
    pub first_error: Option<String>,
    /// Indices of the acknowledged operations (for the durability check).
    #[serde(skip)]
    pub ok_ids: Vec<u64>,
}

impl LoadResult {
    /// Fills throughput and CPU fields from raw measurements.
    pub fn finish(
        &mut self,
        elapsed: Duration,
        lat_us: Vec<u64>,
        server_cpu: Option<Duration>,
        bench_cpu: Option<Duration>,
    ) {
        self.elapsed_s = elapsed.as_secs_f64();
        self.ops_per_s = if self.elapsed_s > 0.0 {
            self.ops as f64 / self.elapsed_s
        } else {
            0.0
        };
        self.latency = summarize(lat_us);
        self.server_cpu_s = server_cpu.map(|d| d.as_secs_f64());
        self.bench_cpu_s = bench_cpu.map(|d| d.as_secs_f64());
    }
}

/// CPU time of a process (`pid`, or "self") between two points.
pub struct CpuMark {
    pid: String,
    at: Option<Duration>,
}

impl CpuMark {
    /// Starts measuring.
    pub fn start(pid: impl ToString) -> CpuMark {
        let pid = pid.to_string();
        let at = cpu_time(&pid);
        CpuMark { pid, at }
    }

    /// CPU used since `start`.
    pub fn used(&self) -> Option<Duration> {
        let now = cpu_time(&self.pid)?;
        now.checked_sub(self.at?)
    }
}

struct ClientOutcome {
    lat_us: Vec<u64>,
    ok_ids: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `clients` closed-loop clients against `target`; a response with status `expect`
/// counts as success. `server_pid` is sampled for CPU use.
pub async fn http_load(
    target: &Target,
    clients: usize,
    limits: Limits,
    expect: u16,
    make: MakeRequest,
    server_pid: Option<u32>,
) -> Result<LoadResult> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        conns.push(Conn::connect(target).await?);
    }
    let counter = Arc::new(AtomicU64::new(0));
    let server_cpu = server_pid.map(CpuMark::start);
    let threads_before = server_pid.map(thread_cpu);
    let bench_cpu = CpuMark::start("self");
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::with_capacity(clients);
    for mut conn in conns {
        let counter = counter.clone();
        let make = make.clone();
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            let mut out = ClientOutcome {
                lat_us: Vec::new(),
                ok_ids: Vec::new(),
                errors: 0,
                first_error: None,
            };
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= limits.max_ops {
                    break;
                }
                let (method, path, body) = make(i);
                let t0 = Instant::now();
                match conn.request(method, &path, body).await {
                    Ok((status, _)) if status == expect => {
                        out.lat_us.push(us(t0.elapsed()));
                        out.ok_ids.push(i);
                    }
                    Ok((status, body)) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| {
                            format!(
                                "status {status}: {}",
                                String::from_utf8_lossy(&body[..body.len().min(300)])
                            )
                        });
                    }
                    Err(e) => {
                        out.errors += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                        match Conn::connect(&target).await {
                            Ok(c) => conn = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            out
        }));
    }
    let mut result = LoadResult {
        clients,
        ..Default::default()
    };
    let mut lat = Vec::new();
    for t in tasks {
        match t.await {
            Ok(o) => {
                result.ops += o.ok_ids.len() as u64;
                result.errors += o.errors;
                if result.first_error.is_none() {
                    result.first_error = o.first_error;
                }
                lat.extend(o.lat_us);
                result.ok_ids.extend(o.ok_ids);
            }
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    let elapsed = start.elapsed();
    result.finish(
        elapsed,
        lat,
        server_cpu.as_ref().and_then(CpuMark::used),
        bench_cpu.used(),
    );
    if let (Some(pid), Some(before)) = (server_pid, threads_before) {
        result.server_threads = thread_cpu_delta(&before, &thread_cpu(pid));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_computes_throughput() {
        let mut r = LoadResult {
            ops: 500,
            ..Default::default()
        };
        r.finish(Duration::from_millis(250), vec![1000; 500], None, None);
        assert!((r.ops_per_s - 2000.0).abs() < 1e-6);
        assert_eq!(r.latency.count, 500);
        assert_eq!(r.latency.p99_ms, 1.0);
    }

    #[tokio::test]
    async fn closed_loop_respects_the_operation_budget() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        // Each test request fits in one read.
                        if s.write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        let make: MakeRequest = Arc::new(|i| {
            (
                Method::POST,
                format!("/x/{i}"),
                Some(Bytes::from_static(b"{}")),
            )
        });
        let limits = Limits {
            duration: Duration::from_secs(10),
            max_ops: 100,
        };
        let r = http_load(&Target::Plain(addr), 4, limits, 201, make, None)
            .await
            .unwrap();
        assert_eq!(r.ops, 100);
        assert_eq!(r.errors, 0);
        let mut ids = r.ok_ids.clone();
        ids.sort_unstable();
        assert_eq!(ids, (0..100).collect::<Vec<_>>());
    }
}
