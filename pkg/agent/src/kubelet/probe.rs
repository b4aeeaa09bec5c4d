//! Liveness, readiness and startup probes: one loop per probe of each running container
//! instance (exec, httpGet, tcpSocket, grpc), thresholds like upstream's prober workers,
//! `Unhealthy` events, and a [`ProbeUpdate`] to the sync loop whenever a result changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, Probe};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::events::{EventType, Recorder};
use super::hooks::{
    exec_sync, http_get, http_target, io_text, resolve_port, ExecOutcome, HttpOutcome,
};
use crate::cri::Cri;

/// Tells the sync loop to look at a container again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeUpdate {
    pub pod_uid: String,
    pub container: String,
}

/// What the probes currently say about a container instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeState {
    pub ready: bool,
    pub started: bool,
    /// Set when the liveness (or startup) probe failed for good: the container must be
    /// restarted; the text is the Killing event's message.
    pub liveness_failed: Option<String>,
}

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

impl ProbeKind {
    fn label(self) -> &'static str {
        match self {
            ProbeKind::Liveness => "Liveness",
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Startup => "Startup",
        }
    }
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeResult {
    Success,
    Failure(String),
}

/// Timing and thresholds with the API defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

/// The probe's timing (defaults: period 10 s, timeout 1 s, thresholds 1 and 3).
pub fn timing(p: &Probe) -> Timing {
    let secs =
        |v: Option<i32>, d: i32| Duration::from_secs(v.filter(|v| *v > 0).unwrap_or(d) as u64);
    Timing {
        initial_delay: Duration::from_secs(p.initial_delay_seconds.unwrap_or(0).max(0) as u64),
        period: secs(p.period_seconds, 10),
        timeout: secs(p.timeout_seconds, 1),
        success_threshold: p.success_threshold.filter(|v| *v > 0).unwrap_or(1) as u32,
        failure_threshold: p.failure_threshold.filter(|v| *v > 0).unwrap_or(3) as u32,
    }
}

/// Consecutive-result counting (upstream worker: a result must repeat `threshold` times
/// before it replaces the last one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counter {
    pub last: Option<bool>,
    run_value: Option<bool>,
    run: u32,
}

impl Counter {
    pub fn new(initial: Option<bool>) -> Counter {
        Counter {
            last: initial,
            run_value: None,
            run: 0,
        }
    }

    /// Records one result; returns the new settled value when it changed.
    pub fn observe(&mut self, success: bool, t: &Timing) -> Option<bool> {
        if self.run_value == Some(success) {
            self.run = self.run.saturating_add(1);
        } else {
            self.run_value = Some(success);
            self.run = 1;
        }
        let need = if success {
            t.success_threshold
        } else {
            t.failure_threshold
        };
        if self.run >= need && self.last != Some(success) {
            self.last = Some(success);
            return Some(success);
        }
        None
    }
}

/// gRPC health-checking messages (`grpc.health.v1`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    #[prost(string, tag = "1")]
    pub service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// The names of `HealthCheckResponse.ServingStatus`.
pub fn serving_status_name(s: i32) -> &'static str {
    match s {
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// A prost codec for the two health messages (tonic 0.14 keeps its own in another crate).
struct HealthCodec;
struct HealthEncoder;
struct HealthDecoder;

impl tonic::codec::Encoder for HealthEncoder {
    type Item = HealthCheckRequest;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Self::Item,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        prost::Message::encode(&item, dst).map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Decoder for HealthDecoder {
    type Item = HealthCheckResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, Self::Error> {
        <HealthCheckResponse as prost::Message>::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Codec for HealthCodec {
    type Encode = HealthCheckRequest;
    type Decode = HealthCheckResponse;
    type Encoder = HealthEncoder;
    type Decoder = HealthDecoder;
    fn encoder(&mut self) -> HealthEncoder {
        HealthEncoder
    }
    fn decoder(&mut self) -> HealthDecoder {
        HealthDecoder
    }
}

/// One gRPC health check (`grpc.health.v1.Health/Check`).
pub async fn grpc_check(host: &str, port: u16, service: &str, timeout: Duration) -> ProbeResult {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let endpoint = match tonic::transport::Endpoint::from_shared(format!("http://{addr}")) {
        Ok(e) => e.connect_timeout(timeout).timeout(timeout),
        Err(e) => return ProbeResult::Failure(format!("invalid gRPC address {addr}: {e}")),
    };
    let channel = match tokio::time::timeout(timeout, endpoint.connect()).await {
        Ok(Ok(c)) => c,
        _ => {
            return ProbeResult::Failure(format!(
                "timeout: failed to connect service {addr:?} within {}s",
                timeout.as_secs()
            ))
        }
    };
    let mut grpc = tonic::client::Grpc::new(channel);
    let call = async {
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let path = http::uri::PathAndQuery::from_static("/grpc.health.v1.Health/Check");
        grpc.unary(
            tonic::Request::new(HealthCheckRequest {
                service: service.to_string(),
            }),
            path,
            HealthCodec,
        )
        .await
    };
    match tokio::time::timeout(timeout, call).await {
        Err(_) => ProbeResult::Failure(format!(
            "timeout: health rpc did not complete within {}s",
            timeout.as_secs()
        )),
        Ok(Err(s)) => ProbeResult::Failure(format!(
            "rpc error: code = {:?} desc = {}",
            s.code(),
            s.message()
        )),
        Ok(Ok(r)) if r.get_ref().status == 1 => ProbeResult::Success,
        Ok(Ok(r)) => ProbeResult::Failure(format!(
            "service unhealthy (responded with {:?})",
            serving_status_name(r.get_ref().status)
        )),
    }
}

/// A TCP connect with a deadline (`dial tcp ip:port: …` on failure).
pub async fn tcp_check(host: &str, port: u16, timeout: Duration) -> ProbeResult {
    let shown = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => ProbeResult::Success,
        Ok(Err(e)) => ProbeResult::Failure(format!("dial tcp {shown}: connect: {}", io_text(&e))),
        Err(_) => ProbeResult::Failure(format!("dial tcp {shown}: i/o timeout")),
    }
}

/// Runs a probe's action once.
pub async fn run_probe(
    cri: &Cri,
    p: &Probe,
    c: &Container,
    container_id: &str,
    pod_ip: &str,
    timeout: Duration,
) -> ProbeResult {
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match exec_sync(cri, container_id, &cmd, timeout).await {
            Ok(ExecOutcome::Exited(0, _)) => ProbeResult::Success,
            Ok(ExecOutcome::Exited(_, out)) => ProbeResult::Failure(out),
            Ok(ExecOutcome::TimedOut) => {
                ProbeResult::Failure(format!("command {:?} timed out", cmd.join(" ")))
            }
            Err(e) => ProbeResult::Failure(e),
        };
    }
    if let Some(a) = &p.http_get {
        let target = match http_target(a, c, pod_ip) {
            Ok(t) => t,
            Err(e) => return ProbeResult::Failure(e),
        };
        return match http_get(&target, timeout).await {
            HttpOutcome::Status(code) if (200..400).contains(&code) => ProbeResult::Success,
            HttpOutcome::Status(code) => {
                ProbeResult::Failure(format!("HTTP probe failed with statuscode: {code}"))
            }
            HttpOutcome::Error(e) => ProbeResult::Failure(e),
        };
    }
    if let Some(t) = &p.tcp_socket {
        let host = t
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| pod_ip.to_string());
        return match resolve_port(&t.port, c) {
            Ok(port) => tcp_check(&host, port, timeout).await,
            Err(e) => ProbeResult::Failure(e),
        };
    }
    if let Some(g) = &p.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return ProbeResult::Failure(format!("invalid port number: {}", g.port));
        };
        return grpc_check(pod_ip, port, g.service.as_deref().unwrap_or(""), timeout).await;
    }
    ProbeResult::Failure("the probe has no action: set exec, httpGet, tcpSocket or grpc".into())
}

type Key = (String, String);

struct Entry {
    /// Distinguishes instances so a stale loop cannot write over a newer one.
    generation: u64,
    state: ProbeState,
    has_readiness: bool,
    tasks: Vec<JoinHandle<()>>,
}

struct Inner {
    cri: Cri,
    recorder: Recorder,
    updates: UnboundedSender<ProbeUpdate>,
    entries: Mutex<HashMap<Key, Entry>>,
    next_generation: std::sync::atomic::AtomicU64,
}

/// Runs the probes of every container on the node.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

fn field_path(pod: &Pod, c: &str) -> String {
    let init = pod
        .spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .any(|ic| ic.name == c);
    if init {
        format!("spec.initContainers{{{c}}}")
    } else {
        format!("spec.containers{{{c}}}")
    }
}

impl Prober {
    pub fn new(cri: Cri, recorder: Recorder, updates: UnboundedSender<ProbeUpdate>) -> Prober {
        Prober {
            inner: Arc::new(Inner {
                cri,
                recorder,
                updates,
                entries: Mutex::new(HashMap::new()),
                next_generation: std::sync::atomic::AtomicU64::new(1),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// (Re)starts the probe loops of this container instance: not started while a startup
    /// probe is pending, not ready until the readiness probe passes.
    pub fn start(&self, pod: &Pod, c: &Container, container_id: &str, pod_ip: &str) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let key = (uid.clone(), c.name.clone());
        let generation = self
            .inner
            .next_generation
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let has_startup = c.startup_probe.is_some();
        let has_readiness = c.readiness_probe.is_some();
        let mut tasks = Vec::new();
        let probes = [
            (ProbeKind::Startup, c.startup_probe.clone()),
            (ProbeKind::Readiness, c.readiness_probe.clone()),
            (ProbeKind::Liveness, c.liveness_probe.clone()),
        ];
        for (kind, probe) in probes {
            let Some(probe) = probe else { continue };
            let w = Worker {
                prober: self.clone(),
                key: key.clone(),
                generation,
                kind,
                probe,
                pod: pod.clone(),
                container: c.clone(),
                container_id: container_id.to_string(),
                pod_ip: pod_ip.to_string(),
            };
            tasks.push(tokio::spawn(w.run()));
        }
        let entry = Entry {
            generation,
            state: ProbeState {
                ready: false,
                started: !has_startup,
                liveness_failed: None,
            },
            has_readiness,
            tasks,
        };
        if let Some(old) = self.lock().insert(key, entry) {
            for t in old.tasks {
                t.abort();
            }
        }
    }

    /// The current state; a container without readiness probe is ready once started.
    pub fn state(&self, pod_uid: &str, container: &str) -> ProbeState {
        let map = self.lock();
        match map.get(&(pod_uid.to_string(), container.to_string())) {
            Some(e) => {
                let mut s = e.state.clone();
                if !e.has_readiness {
                    s.ready = s.started;
                }
                s
            }
            None => ProbeState::default(),
        }
    }

    /// Stops the loops of one container and forgets it.
    pub fn stop_container(&self, pod_uid: &str, container: &str) {
        if let Some(e) = self
            .lock()
            .remove(&(pod_uid.to_string(), container.to_string()))
        {
            for t in e.tasks {
                t.abort();
            }
        }
    }

    /// Stops every loop of a pod.
    pub fn stop_pod(&self, pod_uid: &str) {
        let mut map = self.lock();
        let keys: Vec<Key> = map.keys().filter(|k| k.0 == pod_uid).cloned().collect();
        for k in keys {
            if let Some(e) = map.remove(&k) {
                for t in e.tasks {
                    t.abort();
                }
            }
        }
    }

    /// Applies `f` to the state of `key` if `generation` is still current; sends an update when
    /// the state changed. Returns false when the instance is gone (the loop should end).
    fn update(&self, key: &Key, generation: u64, f: impl FnOnce(&mut ProbeState)) -> bool {
        let changed = {
            let mut map = self.lock();
            let Some(e) = map.get_mut(key) else {
                return false;
            };
            if e.generation != generation {
                return false;
            }
            let before = e.state.clone();
            f(&mut e.state);
            before != e.state
        };
        if changed {
            let _ = self.inner.updates.send(ProbeUpdate {
                pod_uid: key.0.clone(),
                container: key.1.clone(),
            });
        }
        true
    }

    fn started(&self, key: &Key, generation: u64) -> Option<bool> {
        let map = self.lock();
        let e = map.get(key)?;
        (e.generation == generation).then_some(e.state.started)
    }
}

struct Worker {
    prober: Prober,
    key: Key,
    generation: u64,
    kind: ProbeKind,
    probe: Probe,
    pod: Pod,
    container: Container,
    container_id: String,
    pod_ip: String,
}

impl Worker {
    async fn run(self) {
        let t = timing(&self.probe);
        tokio::time::sleep(t.initial_delay).await;
        let initial = match self.kind {
            ProbeKind::Liveness => Some(true),
            ProbeKind::Readiness | ProbeKind::Startup => Some(false),
        };
        let mut counter = Counter::new(initial);
        let fp = field_path(&self.pod, &self.container.name);
        loop {
            let Some(started) = self.prober.started(&self.key, self.generation) else {
                return;
            };
            // Liveness and readiness wait for the startup probe; startup stops once started.
            let skip = match self.kind {
                ProbeKind::Startup => started,
                _ => !started,
            };
            if self.kind == ProbeKind::Startup && started {
                return;
            }
            if !skip {
                let result = run_probe(
                    &self.prober.inner.cri,
                    &self.probe,
                    &self.container,
                    &self.container_id,
                    &self.pod_ip,
                    t.timeout,
                )
                .await;
                if let ProbeResult::Failure(msg) = &result {
                    self.prober.inner.recorder.pod(
                        &self.pod,
                        Some(&fp),
                        EventType::Warning,
                        "Unhealthy",
                        &format!("{} probe failed: {msg}", self.kind.label()),
                    );
                }
                let success = result == ProbeResult::Success;
                if let Some(now) = counter.observe(success, &t) {
                    let name = self.container.name.clone();
                    let alive = match (self.kind, now) {
                        (ProbeKind::Readiness, ready) => {
                            self.prober
                                .update(&self.key, self.generation, |s| s.ready = ready)
                        }
                        (ProbeKind::Startup, true) => {
                            self.prober
                                .update(&self.key, self.generation, |s| s.started = true)
                        }
                        (ProbeKind::Startup, false) => {
                            self.prober.update(&self.key, self.generation, |s| {
                                s.liveness_failed = Some(format!(
                                    "Container {name} failed startup probe, will be restarted"
                                ))
                            });
                            return;
                        }
                        (ProbeKind::Liveness, false) => {
                            self.prober.update(&self.key, self.generation, |s| {
                                s.liveness_failed = Some(format!(
                                    "Container {name} failed liveness probe, will be restarted"
                                ))
                            });
                            return;
                        }
                        (ProbeKind::Liveness, true) => true,
                    };
                    if !alive {
                        return;
                    }
                }
            }
            tokio::time::sleep(t.period).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(success: u32, failure: u32) -> Timing {
        Timing {
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            success_threshold: success,
            failure_threshold: failure,
        }
    }

    #[test]
    fn thresholds_need_consecutive_results() {
        let tm = t(2, 3);
        let mut c = Counter::new(Some(false));
        assert_eq!(c.observe(true, &tm), None);
        assert_eq!(c.observe(false, &tm), None);
        assert_eq!(c.observe(true, &tm), None);
        assert_eq!(c.observe(true, &tm), Some(true));
        assert_eq!(c.observe(true, &tm), None, "no change, no update");
        assert_eq!(c.observe(false, &tm), None);
        assert_eq!(c.observe(false, &tm), None);
        assert_eq!(c.observe(true, &tm), None);
        assert_eq!(c.observe(false, &tm), None);
        assert_eq!(c.observe(false, &tm), None);
        assert_eq!(c.observe(false, &tm), Some(false));

        let mut live = Counter::new(Some(true));
        let tm = t(1, 1);
        assert_eq!(live.observe(true, &tm), None);
        assert_eq!(live.observe(false, &tm), Some(false));
    }

    #[test]
    fn timing_defaults() {
        let p: Probe =
            serde_json::from_value(serde_json::json!({"exec": {"command": ["true"]}})).unwrap();
        let tm = timing(&p);
        assert_eq!(
            tm,
            Timing {
                initial_delay: Duration::ZERO,
                period: Duration::from_secs(10),
                timeout: Duration::from_secs(1),
                success_threshold: 1,
                failure_threshold: 3
            }
        );
        let p: Probe = serde_json::from_value(serde_json::json!({"initialDelaySeconds": 5, "periodSeconds": 2, "timeoutSeconds": 3, "failureThreshold": 1})).unwrap();
        let tm = timing(&p);
        assert_eq!(
            (
                tm.initial_delay.as_secs(),
                tm.period.as_secs(),
                tm.timeout.as_secs(),
                tm.failure_threshold
            ),
            (5, 2, 3, 1)
        );
    }

    #[test]
    fn field_paths_name_init_containers() {
        let pod: Pod = serde_json::from_value(serde_json::json!({"spec": {
            "initContainers": [{"name": "side"}], "containers": [{"name": "web"}]}}))
        .unwrap();
        assert_eq!(field_path(&pod, "web"), "spec.containers{web}");
        assert_eq!(field_path(&pod, "side"), "spec.initContainers{side}");
    }

    #[tokio::test]
    async fn tcp_probe_against_loopback() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(
            tcp_check("127.0.0.1", port, Duration::from_secs(1)).await,
            ProbeResult::Success
        );
        drop(l);
        assert_eq!(
            tcp_check("127.0.0.1", port, Duration::from_secs(1)).await,
            ProbeResult::Failure(format!(
                "dial tcp 127.0.0.1:{port}: connect: connection refused"
            ))
        );
    }

    /// A hand-rolled grpc.health.v1 server would need the server codegen; a refused port is
    /// the real failure path available without it.
    #[tokio::test]
    async fn grpc_probe_reports_unreachable_services() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        match grpc_check("127.0.0.1", port, "", Duration::from_secs(1)).await {
            ProbeResult::Failure(m) => assert_eq!(
                m,
                format!("timeout: failed to connect service \"127.0.0.1:{port}\" within 1s")
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(serving_status_name(2), "NOT_SERVING");
    }
}

/// Exec hooks and probes in a real container, on a containerd in namespaces of its own
/// (`containerd::live_tests::Bed`); runs unless `SKIFF_E2E_NODES=0` and fails naming what to
/// install when root or a package is missing. No probe traffic leaves the namespace.
#[cfg(test)]
mod live {
    use super::*;
    use crate::containerd::live_tests::{busybox_image, should_run, Bed};
    use crate::containerd::{ensure_pause_image, import_dir, start, write_cni_config, Paths};
    use crate::kubelet::{hooks, linux};
    use k8s_cri::v1 as cri;

    fn recorder() -> Recorder {
        // No API server: events fail to send and are only logged (the recorder never blocks);
        // kubelet::volumes::live checks events against a real server.
        let cfg = kube::Config::new("https://127.0.0.1:1".parse().unwrap());
        Recorder::new(kube::Client::try_from(cfg).unwrap(), "live-node")
    }

    async fn wait_state(
        p: &Prober,
        uid: &str,
        what: &str,
        f: impl Fn(&ProbeState) -> bool,
    ) -> ProbeState {
        for _ in 0..100 {
            let s = p.state(uid, "c");
            if f(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}: {:?}", p.state(uid, "c"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn exec_hooks_and_probes_in_a_real_container() {
        if !should_run(&[]) {
            return;
        }
        let bed = Bed::create();
        let opts = bed.containerd("d", &bed.tmp.path().join("registries.yaml"));
        let sup = start(&opts).await.expect("start containerd");
        let paths = Paths::new(&opts.data_dir);
        let result = exercise(&paths, sup.socket()).await;
        sup.shutdown().await;
        drop(bed);
        result.unwrap();
    }

    async fn exercise(paths: &Paths, socket: &std::path::Path) -> Result<(), String> {
        let c = Cri::connect_wait(socket, Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        write_cni_config(paths, "10.42.7.0/24").map_err(|e| e.to_string())?;
        ensure_pause_image(&c).await.map_err(|e| e.to_string())?;
        busybox_image()
            .write_archive("busybox:kin", &paths.images_dir.join("bb.tar"))
            .map_err(|e| e.to_string())?;
        import_dir(&c, &paths.images_dir)
            .await
            .map_err(|e| e.to_string())?;

        let uid = format!("kin-{}", std::process::id());
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "kin", "namespace": "default", "uid": uid},
            "spec": {"containers": [{"name": "c", "image": "busybox:kin",
                "resources": {"limits": {"cpu": "200m", "memory": "64Mi"}, "requests": {"cpu": "100m", "memory": "32Mi"}},
                "readinessProbe": {"exec": {"command": ["cat", "/tmp/ready"]}, "periodSeconds": 1},
                "livenessProbe": {"exec": {"command": ["sh", "-c", "test ! -e /tmp/dead"]}, "periodSeconds": 1, "failureThreshold": 2}
            }]}
        })).unwrap();
        let container = pod.spec.as_ref().unwrap().containers[0].clone();
        let sandbox_config = cri::PodSandboxConfig {
            metadata: Some(cri::PodSandboxMetadata {
                name: "kin".into(),
                uid: uid.clone(),
                namespace: "default".into(),
                attempt: 0,
            }),
            hostname: "kin".into(),
            log_directory: paths.root.join("kin-logs").to_string_lossy().into_owned(),
            linux: Some(linux::sandbox_config(&pod)),
            ..Default::default()
        };
        let mut rt = c.runtime.clone();
        let sandbox = rt
            .run_pod_sandbox(cri::RunPodSandboxRequest {
                config: Some(sandbox_config.clone()),
                runtime_handler: String::new(),
            })
            .await
            .map_err(|s| format!("RunPodSandbox: {}", s.message()))?
            .into_inner()
            .pod_sandbox_id;
        let outcome = async {
            let id = rt
                .create_container(cri::CreateContainerRequest {
                    pod_sandbox_id: sandbox.clone(),
                    config: Some(cri::ContainerConfig {
                        metadata: Some(cri::ContainerMetadata { name: "c".into(), attempt: 0 }),
                        image: Some(cri::ImageSpec { image: "docker.io/library/busybox:kin".into(), ..Default::default() }),
                        command: vec!["sleep".into(), "1000".into()],
                        log_path: "c/0.log".into(),
                        linux: Some(linux::container_config(&pod, &container)),
                        ..Default::default()
                    }),
                    sandbox_config: Some(sandbox_config.clone()),
                })
                .await
                .map_err(|s| format!("CreateContainer: {}", s.message()))?
                .into_inner()
                .container_id;
            rt.start_container(cri::StartContainerRequest { container_id: id.clone() })
                .await
                .map_err(|s| format!("StartContainer: {}", s.message()))?;

            // lifecycle hooks
            let h: k8s_openapi::api::core::v1::LifecycleHandler = serde_json::from_value(
                serde_json::json!({"exec": {"command": ["sh", "-c", "echo started > /tmp/hook"]}})).unwrap();
            hooks::run_handler(&c, &h, &pod, &container, &id, "", Duration::from_secs(5)).await?;
            let out = hooks::exec_sync(&c, &id, &["cat".into(), "/tmp/hook".into()], Duration::from_secs(5)).await?;
            assert_eq!(out, hooks::ExecOutcome::Exited(0, "started\n".into()));
            let bad: k8s_openapi::api::core::v1::LifecycleHandler = serde_json::from_value(
                serde_json::json!({"exec": {"command": ["sh", "-c", "echo oops; exit 3"]}})).unwrap();
            let e = hooks::run_handler(&c, &bad, &pod, &container, &id, "", Duration::from_secs(5)).await.unwrap_err();
            assert_eq!(e, format!("Exec lifecycle hook ([sh -c echo oops; exit 3]) for Container \"c\" in Pod \"kin_default({uid})\" failed - error: command 'sh -c echo oops; exit 3' exited with 3: oops\n, message: \"oops\\n\""));
            let sleep: k8s_openapi::api::core::v1::LifecycleHandler = serde_json::from_value(serde_json::json!({"sleep": {"seconds": 1}})).unwrap();
            let t = std::time::Instant::now();
            hooks::run_handler(&c, &sleep, &pod, &container, &id, "", Duration::from_secs(5)).await?;
            assert!(t.elapsed() >= Duration::from_secs(1));

            // a probe exec that outlives its timeout
            let slow: Probe = serde_json::from_value(serde_json::json!({"exec": {"command": ["sleep", "5"]}})).unwrap();
            let r = run_probe(&c, &slow, &container, &id, "", Duration::from_secs(1)).await;
            assert_eq!(r, ProbeResult::Failure("command \"sleep 5\" timed out".into()));

            // probe loops: readiness waits for /tmp/ready, liveness fails once /tmp/dead exists
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let prober = Prober::new(c.clone(), recorder(), tx);
            prober.start(&pod, &container, &id, "");
            let s = prober.state(&uid, "c");
            assert!(s.started && !s.ready && s.liveness_failed.is_none(), "{s:?}");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            assert!(!prober.state(&uid, "c").ready, "not ready before the file exists");
            hooks::exec_sync(&c, &id, &["touch".into(), "/tmp/ready".into()], Duration::from_secs(5)).await?;
            wait_state(&prober, &uid, "ready", |s| s.ready).await;
            let upd = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .map_err(|_| "no probe update within 10 s after ready".to_string())?
                .unwrap();
            assert_eq!(upd, ProbeUpdate { pod_uid: uid.clone(), container: "c".into() });
            hooks::exec_sync(&c, &id, &["touch".into(), "/tmp/dead".into()], Duration::from_secs(5)).await?;
            let s = wait_state(&prober, &uid, "liveness failure", |s| s.liveness_failed.is_some()).await;
            assert_eq!(s.liveness_failed.as_deref(), Some("Container c failed liveness probe, will be restarted"));
            prober.stop_pod(&uid);
            assert_eq!(prober.state(&uid, "c"), ProbeState::default());

            rt.stop_container(cri::StopContainerRequest { container_id: id.clone(), timeout: 0 })
                .await
                .map_err(|s| format!("StopContainer: {}", s.message()))?;
            rt.remove_container(cri::RemoveContainerRequest { container_id: id })
                .await
                .map_err(|s| format!("RemoveContainer: {}", s.message()))?;
            Ok::<(), String>(())
        }
        .await;
        let _ = rt
            .stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: sandbox.clone(),
            })
            .await;
        let _ = rt
            .remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: sandbox,
            })
            .await;
        // runc leaves the (empty) pod cgroup directories behind.
        let removed = linux::remove_pod_cgroup(&linux::cgroup_parent(&pod));
        outcome?;
        removed
    }
}
