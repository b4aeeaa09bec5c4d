//! The skiff side: start the server (cold and warm), idle memory, pod create/GET/LIST load,
//! watch fan-out latency, and a crash (SIGKILL) + restart check that acknowledged creates
//! survived.

use crate::error::{BenchError, Result};
use crate::http::{insecure_tls, load_kubeconfig, Conn, Target};
use crate::load::{http_load, CpuMark, Limits, LoadResult, MakeRequest};
use crate::procs::{free_port, ChildGuard};
use crate::stats::{summarize, us, Summary};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Method;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a server may take to answer `/readyz` before the bench gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `skiff server` (killed on drop).
pub struct Skiff {
    pub child: ChildGuard,
    pub kubeconfig: PathBuf,
    /// Spawn → `/readyz` 200.
    pub ready: Duration,
    /// Spawn → kubeconfig on disk.
    pub kubeconfig_written: Duration,
}

impl Skiff {
    /// The authenticated (admin client cert) target from the kubeconfig.
    pub fn admin(&self) -> Result<Target> {
        load_kubeconfig(&self.kubeconfig)
    }
}

/// Starts `skiff server` on `data_dir` (fresh or existing) and times it to `/readyz` OK,
/// polling every 2 ms.
pub async fn start(bin: &Path, data_dir: &Path, log: &Path) -> Result<Skiff> {
    start_with(bin, data_dir, log, &[]).await
}

/// [`start`] with extra server flags (e.g. `--datastore-endpoint`).
pub async fn start_with(
    bin: &Path,
    data_dir: &Path,
    log: &Path,
    extra: &[String],
) -> Result<Skiff> {
    let port = free_port()?;
    let kubeconfig = data_dir.join("kubeconfig");
    let mut args: Vec<String> = vec![
        "server".into(),
        // Keep a host-wide /etc/skiff/config.yaml out of the measurement.
        "--config".into(),
        data_dir.join("no-config.yaml").display().to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
        "--https-listen-port".into(),
        port.to_string(),
        "--bind-address".into(),
        "127.0.0.1".into(),
        "--write-kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--disable-agent".into(),
        // The API server and store are measured alone: with the scheduler on, every
        // benchmark pod (there are no nodes) would add FailedScheduling writes.
        "--disable-controller-manager".into(),
        "--disable-scheduler".into(),
    ];
    args.extend(extra.iter().cloned());
    // A kubeconfig from an earlier run would look "written" at once and name an old port.
    let _ = std::fs::remove_file(&kubeconfig);
    let probe = Target::Tls(SocketAddr::from(([127, 0, 0, 1], port)), insecure_tls()?);
    let t0 = Instant::now();
    let mut child = ChildGuard::spawn("skiff server", bin, &args, log)?;
    let timeout = || BenchError::NotReady {
        what: "skiff server".into(),
        secs: READY_TIMEOUT.as_secs(),
        log: log.to_path_buf(),
    };
    let ready = 'outer: loop {
        child.check_alive()?;
        if let Ok(mut c) = Conn::connect(&probe).await {
            // Reuse the connection while it is up; reconnect only when it fails.
            while let Ok((status, _)) = c.request(Method::GET, "/readyz", None).await {
                if status == 200 {
                    break 'outer t0.elapsed();
                }
                if t0.elapsed() > READY_TIMEOUT {
                    return Err(timeout());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        if t0.elapsed() > READY_TIMEOUT {
            return Err(timeout());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let kubeconfig_written = loop {
        child.check_alive()?;
        if kubeconfig.exists() && load_kubeconfig(&kubeconfig).is_ok() {
            break t0.elapsed();
        }
        if t0.elapsed() > READY_TIMEOUT {
            return Err(BenchError::NotReady {
                what: "skiff server kubeconfig".into(),
                secs: READY_TIMEOUT.as_secs(),
                log: log.to_path_buf(),
            });
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    Ok(Skiff {
        child,
        kubeconfig,
        ready,
        kubeconfig_written,
    })
}

/// A small, realistic pod (labels, one container with a port and resources).
pub fn pod_body(namespace: &str, name: &str) -> Bytes {
    Bytes::from(format!(
        concat!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","#,
            r#""labels":{{"app":"bench","tier":"web"}}}},"spec":{{"containers":[{{"name":"web","#,
            r#""image":"nginx:1.27","ports":[{{"containerPort":80,"protocol":"TCP"}}],"#,
            r#""resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}},"limits":{{"memory":"128Mi"}}}}}}]}}}}"#
        ),
        name = name,
        ns = namespace
    ))
}

/// Creates namespace `name` and its `default` service account.
pub async fn create_namespace(conn: &mut Conn, name: &str) -> Result<()> {
    let body =
        format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
    conn.expect(
        Method::POST,
        "/api/v1/namespaces",
        Some(Bytes::from(body)),
        201,
    )
    .await?;
    create_default_service_account(conn, name).await
}

/// Creates the `default` ServiceAccount of `ns`. Pods need their service account (the API
/// server's ServiceAccount admission answers 403 without it); the bench runs the server with
/// the controllers off, so it does what the service-account controller would have done.
pub async fn create_default_service_account(conn: &mut Conn, ns: &str) -> Result<()> {
    let body = format!(
        r#"{{"apiVersion":"v1","kind":"ServiceAccount","metadata":{{"name":"default","namespace":"{ns}"}}}}"#
    );
    conn.expect(
        Method::POST,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        Some(Bytes::from(body)),
        201,
    )
    .await
    .map(|_| ())
}

/// The name of the pod created as operation `i` of round `round` with `clients` clients.
pub fn create_name(round: usize, clients: usize, i: u64) -> String {
    format!("r{round}-c{clients}-{i}")
}

/// Closed-loop pod creates in `default` with unique names.
pub async fn create_load(
    target: &Target,
    round: usize,
    clients: usize,
    limits: Limits,
    pid: u32,
) -> Result<LoadResult> {
    let name = move |i| create_name(round, clients, i);
    create_load_in(target, "default", clients, limits, pid, name).await
}

async fn create_load_in(
    target: &Target,
    ns: &str,
    clients: usize,
    limits: Limits,
    pid: u32,
    name: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Result<LoadResult> {
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let ns = ns.to_string();
    let make: MakeRequest =
        Arc::new(move |i| (Method::POST, path.clone(), Some(pod_body(&ns, &name(i)))));
    http_load(target, clients, limits, 201, make, Some(pid)).await
}

/// Sequential GETs of `path` (one client).
pub async fn get_load(target: &Target, path: &str, limits: Limits, pid: u32) -> Result<LoadResult> {
    let path = path.to_string();
    let make: MakeRequest = Arc::new(move |_| (Method::GET, path.clone(), None));
    http_load(target, 1, limits, 200, make, Some(pid)).await
}

/// LIST of a namespace holding a known number of pods.
#[derive(Debug, Clone, Serialize)]
pub struct ListResult {
    pub pods: usize,
    pub response_bytes: usize,
    pub load: LoadResult,
}

/// Fills namespace `bench-list` with `pods` pods (16 clients) and times full LISTs of it.
pub async fn list_phase(
    target: &Target,
    pods: u64,
    limits: Limits,
    pid: u32,
) -> Result<ListResult> {
    let mut c = Conn::connect(target).await?;
    create_namespace(&mut c, "bench-list").await?;
    let fill = Limits {
        duration: Duration::from_secs(120),
        max_ops: pods,
    };
    let r = create_load_in(target, "bench-list", 16, fill, pid, |i| format!("l-{i}")).await?;
    if r.ops != pods {
        return Err(BenchError::Phase(format!(
            "filling bench-list created {} of {pods} pods ({} errors, first: {})",
            r.ops,
            r.errors,
            r.first_error.unwrap_or_default()
        )));
    }
    let path = "/api/v1/namespaces/bench-list/pods";
    let body = c.expect(Method::GET, path, None, 200).await?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| BenchError::Phase(format!("LIST answer is not JSON: {e}")))?;
    let n = v["items"].as_array().map(|a| a.len()).unwrap_or(0);
    let load = get_load(target, path, limits, pid).await?;
    Ok(ListResult {
        pods: n,
        response_bytes: body.len(),
        load,
    })
}

/// Watch fan-out: create-acknowledged → event received, over every watcher.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WatchResult {
    pub watchers: usize,
    pub creates: u64,
    pub rate_per_s: f64,
    pub events_expected: u64,
    pub events_received: u64,
    /// Create answered (ack) → ADDED event read by a watcher (0 when the event came first).
    pub ack_to_event: Summary,
    /// Create request sent → ADDED event read by a watcher.
    pub send_to_event: Summary,
    /// Events that arrived before the creator read its 201.
    pub before_ack: u64,
    pub create_latency: Summary,
    pub server_cpu_s: Option<f64>,
    pub bench_cpu_s: Option<f64>,
}

#[derive(Deserialize)]
struct WatchEvent {
    #[serde(rename = "type")]
    kind: String,
    object: EventObject,
}

#[derive(Deserialize)]
struct EventObject {
    metadata: EventMeta,
}

#[derive(Deserialize)]
struct EventMeta {
    #[serde(default)]
    name: String,
}

/// The index of pod `w-<i>` of an ADDED event line, if it is one.
fn added_index(line: &[u8]) -> Option<u64> {
    let ev: WatchEvent = serde_json::from_slice(line).ok()?;
    if ev.kind != "ADDED" {
        return None;
    }
    ev.object.metadata.name.strip_prefix("w-")?.parse().ok()
}

/// Opens `watchers` watch streams on namespace `bench-watch`, creates `rate` pods per second
/// for `secs` seconds from one client, and measures delivery to every watcher.
pub async fn watch_phase(
    target: &Target,
    watchers: usize,
    rate: f64,
    secs: f64,
    pid: u32,
) -> Result<WatchResult> {
    let mut creator = Conn::connect(target).await?;
    create_namespace(&mut creator, "bench-watch").await?;
    let body = creator
        .expect(
            Method::GET,
            "/api/v1/namespaces/bench-watch/pods",
            None,
            200,
        )
        .await?;
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| BenchError::Phase(format!("LIST answer is not JSON: {e}")))?;
    let rv = v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    let creates = ((rate * secs).round() as u64).max(1);
    let stop = Arc::new(AtomicBool::new(false));
    let watch_path = format!("/api/v1/namespaces/bench-watch/pods?watch=true&resourceVersion={rv}");
    let mut readers = Vec::with_capacity(watchers);
    for _ in 0..watchers {
        let mut conn = Conn::connect(target).await?;
        let resp = conn.send(Method::GET, &watch_path, None).await?;
        if resp.status().as_u16() != 200 {
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(BenchError::Status {
                what: format!("GET {watch_path}"),
                status,
                body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            });
        }
        let stop = stop.clone();
        readers.push(tokio::spawn(async move {
            let _conn = conn;
            let mut body = resp.into_body();
            let mut buf: Vec<u8> = Vec::new();
            let mut got: Vec<(u64, Instant)> = Vec::with_capacity(creates as usize);
            while (got.len() as u64) < creates {
                let frame =
                    match tokio::time::timeout(Duration::from_millis(100), body.frame()).await {
                        Err(_) if stop.load(Ordering::Relaxed) => break,
                        Err(_) => continue,
                        Ok(None) | Ok(Some(Err(_))) => break,
                        Ok(Some(Ok(f))) => f,
                    };
                let now = Instant::now();
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                let mut start = 0;
                while let Some(nl) = buf[start..].iter().position(|&b| b == b'\n') {
                    if let Some(i) = added_index(&buf[start..start + nl]) {
                        got.push((i, now));
                    }
                    start += nl + 1;
                }
                buf.drain(..start);
            }
            got
        }));
    }
    // Give the server a moment to register the last stream before the first create.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_cpu = CpuMark::start(pid);
    let bench_cpu = CpuMark::start("self");
    let mut sent: Vec<Option<(Instant, Instant)>> = vec![None; creates as usize];
    let mut create_lat = Vec::with_capacity(creates as usize);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut create_error = None;
    for i in 0..creates {
        tick.tick().await;
        let t_send = Instant::now();
        let body = pod_body("bench-watch", &format!("w-{i}"));
        match creator
            .request(
                Method::POST,
                "/api/v1/namespaces/bench-watch/pods",
                Some(body),
            )
            .await
        {
            Ok((201, _)) => {
                let ack = Instant::now();
                create_lat.push(us(ack - t_send));
                sent[i as usize] = Some((t_send, ack));
            }
            Ok((status, b)) => {
                create_error.get_or_insert_with(|| {
                    format!(
                        "status {status}: {}",
                        String::from_utf8_lossy(&b[..b.len().min(300)])
                    )
                });
            }
            Err(e) => {
                create_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    // Let stragglers arrive, then stop the readers.
    let wait_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < wait_until && readers.iter().any(|r| !r.is_finished()) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut ack_to = Vec::new();
    let mut send_to = Vec::new();
    let mut before_ack = 0;
    let mut received = 0u64;
    for r in readers {
        let got = r.await.unwrap_or_default();
        for (i, at) in got {
            if let Some(Some((s, a))) = sent.get(i as usize) {
                received += 1;
                if at < *a {
                    before_ack += 1;
                }
                ack_to.push(us(at.saturating_duration_since(*a)));
                send_to.push(us(at.saturating_duration_since(*s)));
            }
        }
    }
    let acked = sent.iter().filter(|s| s.is_some()).count() as u64;
    if acked == 0 {
        return Err(BenchError::Phase(format!(
            "no watch-phase create succeeded: {}",
            create_error.unwrap_or_default()
        )));
    }
    Ok(WatchResult {
        watchers,
        creates: acked,
        rate_per_s: rate,
        events_expected: acked * watchers as u64,
        events_received: received,
        ack_to_event: summarize(ack_to),
        send_to_event: summarize(send_to),
        before_ack,
        create_latency: summarize(create_lat),
        server_cpu_s: server_cpu.used().map(|d| d.as_secs_f64()),
        bench_cpu_s: bench_cpu.used().map(|d| d.as_secs_f64()),
    })
}

/// Every pod name in namespace `ns`, read with paged LISTs (limit/continue).
pub async fn all_pod_names(target: &Target, ns: &str) -> Result<HashSet<String>> {
    let mut c = Conn::connect(target).await?;
    let mut names = HashSet::new();
    let mut cont = String::new();
    loop {
        let mut path = format!("/api/v1/namespaces/{ns}/pods?limit=2000");
        if !cont.is_empty() {
            path.push_str("&continue=");
            path.push_str(&cont);
        }
        let body = c.expect(Method::GET, &path, None, 200).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| BenchError::Phase(format!("LIST answer is not JSON: {e}")))?;
        for item in v["items"].as_array().into_iter().flatten() {
            if let Some(n) = item["metadata"]["name"].as_str() {
                names.insert(n.to_string());
            }
        }
        match v["metadata"]["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = c.to_string(),
            _ => break,
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_body_is_valid_json_with_the_name() {
        let b = pod_body("default", "c64-7");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["metadata"]["name"], "c64-7");
        assert_eq!(v["metadata"]["namespace"], "default");
        assert_eq!(v["spec"]["containers"][0]["image"], "nginx:1.27");
        assert_eq!(
            v["spec"]["containers"][0]["resources"]["limits"]["memory"],
            "128Mi"
        );
    }

    #[test]
    fn added_events_yield_their_index() {
        let line = br#"{"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"w-42","namespace":"x"}}}"#;
        assert_eq!(added_index(line), Some(42));
        let modified = br#"{"type":"MODIFIED","object":{"metadata":{"name":"w-42"}}}"#;
        assert_eq!(added_index(modified), None);
        let other = br#"{"type":"ADDED","object":{"metadata":{"name":"web"}}}"#;
        assert_eq!(added_index(other), None);
        assert_eq!(added_index(b"not json"), None);
    }

    #[test]
    fn create_names_are_unique_per_level() {
        assert_ne!(create_name(0, 1, 5), create_name(0, 16, 5));
        assert_ne!(create_name(0, 1, 5), create_name(1, 1, 5));
        assert_eq!(create_name(1, 64, 0), "r1-c64-0");
    }
}
