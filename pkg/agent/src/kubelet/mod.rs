//! The kubelet: runs the pods bound to this node as containers over CRI (sync loop, pod status,
//! restarts, termination, adoption after a restart), with volumes, env, probes and hooks.
//!
//! One watch of the node's pods feeds one worker task per pod uid (work on a pod is serialised,
//! pods run in parallel). A relist of CRI state every second (PLEG-style) and probe results
//! wake a pod's worker. Each sync observes the runtime, decides (sandbox, images, init
//! containers, containers, restarts with back-off), acts, and patches the pod status when it
//! changed. Nothing is kept on disk: after a restart the state is rebuilt from CRI labels and
//! annotations and running containers are adopted.

pub mod backoff;
pub mod env;
pub mod events;
pub mod hooks;
pub mod images;
pub mod linux;
pub mod probe;
pub mod runtime;
pub mod spec;
pub mod status;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use k8s_cri::v1::{
    CreateContainerRequest, PodSandboxConfig, RunPodSandboxRequest, StartContainerRequest,
};
use k8s_openapi::api::core::v1::{Container, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use self::backoff::{go_duration, Backoff};
use self::events::{EventType, Recorder};
use self::probe::Prober;
use self::spec::{container_hash, Kind, SandboxEnv};
use self::status::{
    ObservedContainer, ObservedPod, ObservedSandbox, ProbeView, RunState, StatusInput, Waiting,
};
use self::volumes::{PreparedVolumes, VolumeContext};
use crate::cri::Cri;
use crate::eviction::{self, Candidate, EvictionThresholds, Resource};
use crate::host::HostFacts;
use crate::Error;

/// Sandbox and container label with the pod's name.
pub const LABEL_POD_NAME: &str = "io.kubernetes.pod.name";
/// Sandbox and container label with the pod's namespace.
pub const LABEL_POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
/// Sandbox and container label with the pod's uid (how CRI state is grouped into pods).
pub const LABEL_POD_UID: &str = "io.kubernetes.pod.uid";

/// How often a pod is synced when nothing wakes it.
const RESYNC: Duration = Duration::from_secs(20);
/// How often a terminal pod is looked at (to notice a deletion is handled by the watch).
const TERMINAL_RESYNC: Duration = Duration::from_secs(300);
/// How often the CRI state is relisted.
const RELIST: Duration = Duration::from_secs(1);
/// How often volumes are prepared again (service account tokens, configmaps, secrets).
const VOLUME_REFRESH: Duration = Duration::from_secs(60);
/// How often the eviction manager reads the host (upstream's housekeeping interval).
const EVICTION_CHECK: Duration = Duration::from_secs(10);
/// The shortest stop grace the kubelet uses.
const MIN_GRACE: i64 = 2;
/// Exited instances kept per container (the newest is lastState / `--previous`).
const KEEP_INSTANCES: usize = 2;

/// The kubelet's settings.
#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    pub node_ip: Ipv4Addr,
    /// `<data>/agent`: pod dirs at `<root_dir>/pods/<uid>/…`.
    pub root_dir: PathBuf,
    /// CRI log_directory = `<pod_log_dir>/<ns>_<name>_<uid>`.
    pub pod_log_dir: PathBuf,
    pub cluster_dns: Vec<Ipv4Addr>,
    pub cluster_domain: String,
    /// Hard eviction thresholds (host readings against them decide evictions).
    pub eviction: EvictionThresholds,
}

/// What a pod's worker currently knows of its API object.
#[derive(Clone)]
enum Slot {
    Pod(Arc<Pod>),
    /// The API object is gone (or never existed here): kill and remove.
    Gone,
}

struct Kubelet {
    client: kube::Client,
    cri: Cri,
    cfg: KubeletConfig,
    node_ip: String,
    recorder: Recorder,
    prober: Prober,
    volumes: VolumeContext,
    host_resolv_conf: String,
    workers: Mutex<HashMap<String, watch::Sender<Slot>>>,
    /// Pods whose worker finished (removed); late watch events for them are ignored.
    done: Mutex<HashSet<String>>,
    /// The first complete pod list arrived: CRI pods without a worker are orphans.
    listed: AtomicBool,
    /// Pods the eviction manager chose, with their status message, until their worker
    /// reported them Failed/Evicted.
    evictions: Mutex<HashMap<String, String>>,
}

/// In-memory state of one pod's worker.
#[derive(Default)]
struct PodState {
    restart_backoff: Backoff,
    image_backoff: Backoff,
    image_failed: HashMap<String, (Instant, String)>,
    sandbox_backoff: Backoff,
    sandbox_failed_at: Option<Instant>,
    waiting: HashMap<String, Waiting>,
    volumes: Option<PreparedVolumes>,
    volumes_at: Option<Instant>,
    /// The last status this worker patched (newer than the watch's copy).
    last_status: Option<serde_json::Value>,
    /// Container ids whose probes run.
    probing: HashSet<String>,
    /// Container ids killed for a failed liveness probe or a changed spec.
    killed: HashSet<String>,
}

/// What a worker does next.
enum Next {
    After(Duration),
    Done,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn uid_of(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn pod_desc(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        uid_of(pod)
    )
}

fn field_path(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Init => format!("spec.initContainers{{{name}}}"),
        Kind::Regular => format!("spec.containers{{{name}}}"),
    }
}

/// The monotonic instant of a runtime wall-clock time in Unix nanoseconds.
fn instant_of(ns: i64) -> Instant {
    let then = UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64);
    let ago = SystemTime::now().duration_since(then).unwrap_or_default();
    let now = Instant::now();
    now.checked_sub(ago).unwrap_or(now)
}

/// upstream's `ShouldContainerBeRestarted` for an exited container.
pub fn should_restart(restart_policy: &str, exit_code: i32) -> bool {
    match restart_policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// The grace period a deleted pod's containers get: what is left until its deletion
/// timestamp, within [2 s, deletionGracePeriodSeconds].
pub fn remaining_grace(pod: &Pod, now: Timestamp) -> i64 {
    let grace = pod
        .metadata
        .deletion_grace_period_seconds
        .or_else(|| {
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
        })
        .unwrap_or(30);
    let left = pod
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.as_second() - now.as_second())
        .unwrap_or(grace);
    left.min(grace).max(MIN_GRACE)
}

fn min_wake(a: Option<Duration>, b: Duration) -> Option<Duration> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Runs the kubelet until the pod watch ends.
pub async fn run(client: kube::Client, cri: Cri, cfg: KubeletConfig) -> Result<(), Error> {
    for dir in [cfg.root_dir.join("pods"), cfg.pod_log_dir.clone()] {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: format!("create {}", dir.display()),
            source,
        })?;
    }
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let recorder = Recorder::new(client.clone(), &cfg.node_name);
    let prober = Prober::new(cri.clone(), recorder.clone(), probe_tx);
    let kl = Arc::new(Kubelet {
        volumes: VolumeContext {
            client: client.clone(),
            root_dir: cfg.root_dir.clone(),
            node_name: cfg.node_name.clone(),
        },
        node_ip: cfg.node_ip.to_string(),
        host_resolv_conf: std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        client: client.clone(),
        cri,
        cfg,
        recorder,
        prober,
        workers: Mutex::new(HashMap::new()),
        done: Mutex::new(HashSet::new()),
        listed: AtomicBool::new(false),
        evictions: Mutex::new(HashMap::new()),
    });
    let probes = tokio::spawn({
        let kl = kl.clone();
        async move {
            while let Some(u) = probe_rx.recv().await {
                kl.wake(&u.pod_uid);
            }
        }
    });
    let relist = tokio::spawn(kl.clone().relist_loop());
    let eviction = tokio::spawn(kl.clone().eviction_loop());

    let api: Api<Pod> = Api::all(client);
    let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", kl.cfg.node_name));
    let mut stream = watcher::watcher(api, wc).default_backoff().boxed();
    let mut listing: HashSet<String> = HashSet::new();
    tracing::info!(node = %kl.cfg.node_name, "kubelet: watching the node's pods");
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(Event::Init) => listing.clear(),
            Ok(Event::InitApply(pod)) => {
                listing.insert(uid_of(&pod));
                kl.update(pod);
            }
            Ok(Event::InitDone) => {
                let gone: Vec<String> = lock(&kl.workers)
                    .keys()
                    .filter(|uid| !listing.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    kl.gone(&uid);
                }
                if !kl.listed.swap(true, Ordering::SeqCst) {
                    tracing::info!(pods = listing.len(), "kubelet: first pod list complete");
                }
            }
            Ok(Event::Apply(pod)) => kl.update(pod),
            Ok(Event::Delete(pod)) => kl.gone(&uid_of(&pod)),
            Err(e) => tracing::warn!(error = %e, "kubelet: pod watch failed; retrying"),
        }
    }
    probes.abort();
    relist.abort();
    eviction.abort();
    Err(Error::Runtime(
        "the kubelet's pod watch ended: restart the agent".into(),
    ))
}

impl Kubelet {
    fn update(self: &Arc<Self>, pod: Pod) {
        let uid = uid_of(&pod);
        if uid.is_empty() || lock(&self.done).contains(&uid) {
            return;
        }
        let slot = Slot::Pod(Arc::new(pod));
        let mut workers = lock(&self.workers);
        match workers.get(&uid) {
            Some(tx) => {
                tx.send_replace(slot);
            }
            None => {
                let (tx, rx) = watch::channel(slot);
                workers.insert(uid.clone(), tx);
                tokio::spawn(self.clone().worker(uid, rx));
            }
        }
    }

    fn gone(self: &Arc<Self>, uid: &str) {
        if let Some(tx) = lock(&self.workers).get(uid) {
            tx.send_replace(Slot::Gone);
        }
    }

    fn wake(&self, uid: &str) {
        if let Some(tx) = lock(&self.workers).get(uid) {
            tx.send_modify(|_| {});
        }
    }

    /// Relists CRI state every second: wakes the workers of pods whose sandboxes or
    /// containers changed and, after the first pod list, removes pods no worker owns.
    async fn relist_loop(self: Arc<Self>) {
        let mut prev: HashMap<String, Vec<(String, i32)>> = HashMap::new();
        let mut failing = false;
        loop {
            tokio::time::sleep(RELIST).await;
            let fp = match runtime::fingerprints(&self.cri).await {
                Ok(fp) => fp,
                Err(e) => {
                    if !failing {
                        tracing::warn!(error = %e, "kubelet: cannot list CRI state: is containerd running?");
                    }
                    failing = true;
                    continue;
                }
            };
            failing = false;
            let listed = self.listed.load(Ordering::SeqCst);
            for (uid, f) in &fp {
                if prev.get(uid) != Some(f) {
                    self.wake(uid);
                }
                if listed {
                    let mut workers = lock(&self.workers);
                    if !workers.contains_key(uid) {
                        tracing::info!(uid = %uid, "kubelet: removing an orphaned pod from the runtime");
                        let (tx, rx) = watch::channel(Slot::Gone);
                        workers.insert(uid.clone(), tx);
                        lock(&self.done).remove(uid);
                        tokio::spawn(self.clone().worker(uid.clone(), rx));
                    }
                }
            }
            for uid in prev.keys().filter(|u| !fp.contains_key(*u)) {
                self.wake(uid);
            }
            prev = fp;
        }
    }

    async fn worker(self: Arc<Self>, uid: String, mut rx: watch::Receiver<Slot>) {
        let mut st = PodState::default();
        loop {
            let slot = rx.borrow_and_update().clone();
            let result = match &slot {
                Slot::Pod(pod) if pod.metadata.deletion_timestamp.is_some() => {
                    self.terminate(pod, &mut st).await
                }
                Slot::Pod(pod) => self.sync(pod, &mut st).await,
                Slot::Gone => self.remove(&uid).await,
            };
            let wait = match result {
                Ok(Next::Done) => break,
                Ok(Next::After(d)) => d,
                Err(e) => {
                    tracing::warn!(uid = %uid, error = %e, "kubelet: pod sync failed; retrying");
                    Duration::from_secs(2)
                }
            };
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = tokio::time::sleep(wait) => {}
            }
        }
        lock(&self.done).insert(uid.clone());
        lock(&self.workers).remove(&uid);
        tracing::debug!(uid = %uid, "kubelet: pod worker finished");
    }

    /// The pods that may be evicted: live (not terminal, not being deleted), not already
    /// chosen.
    fn active_pods(&self) -> Vec<Arc<Pod>> {
        let chosen = lock(&self.evictions).clone();
        lock(&self.workers)
            .iter()
            .filter(|(uid, _)| !chosen.contains_key(*uid))
            .filter_map(|(_, tx)| match &*tx.borrow() {
                Slot::Pod(p) => Some(p.clone()),
                Slot::Gone => None,
            })
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect()
    }

    /// The eviction manager: every [`EVICTION_CHECK`], reads the host against the hard
    /// thresholds and, when one is crossed, evicts the first pod of upstream's ranking for the
    /// starved resource — one pod per round, so the next round sees what the last one freed.
    async fn eviction_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(EVICTION_CHECK).await;
            let facts = HostFacts::read(&self.cfg.root_dir);
            if eviction::starved(&facts, &self.cfg.eviction).is_empty() {
                continue;
            }
            if !lock(&self.evictions).is_empty() {
                // the last eviction is still being carried out
                continue;
            }
            let usage = match runtime::container_usage(&self.cri).await {
                Ok(u) => u,
                Err(e) => {
                    tracing::warn!(error = %e, "eviction: cannot read container stats");
                    HashMap::new()
                }
            };
            let pods = self.active_pods();
            let candidates = |resource: Resource| -> Vec<Candidate> {
                pods.iter()
                    .map(|p| {
                        let per = usage.get(&uid_of(p));
                        Candidate::from_pod(p, resource, |name| {
                            per.and_then(|m| m.get(name)).map_or(0, |u| match resource {
                                Resource::Memory => u.memory,
                                Resource::EphemeralStorage => u.disk,
                            })
                        })
                    })
                    .collect()
            };
            let Some((uid, starved, message)) =
                eviction::plan(&facts, &self.cfg.eviction, candidates)
            else {
                continue;
            };
            tracing::warn!(uid = %uid, resource = starved.resource.as_str(),
                threshold = %starved.threshold, available = starved.available,
                "eviction: node low on resource, evicting a pod");
            lock(&self.evictions).insert(uid.clone(), message);
            self.wake(&uid);
        }
    }

    /// Carries out an eviction: kills the containers (no grace, as upstream's hard eviction),
    /// stops the sandbox, records `Evicted` and reports the pod Failed with reason `Evicted`
    /// and a `DisruptionTarget` condition. The pod object stays, as upstream leaves it.
    async fn evict(
        &self,
        pod: &Pod,
        st: &mut PodState,
        obs: ObservedPod,
        message: &str,
    ) -> Result<Next, String> {
        let uid = uid_of(pod);
        for c in obs
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
        {
            runtime::stop_container(&self.cri, &c.id, 0).await?;
        }
        for s in obs.sandboxes.iter().filter(|s| s.ready) {
            runtime::stop_sandbox(&self.cri, &s.id).await?;
        }
        self.prober.stop_pod(&uid);
        st.waiting.clear();
        let obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
        let mut base = st
            .last_status
            .clone()
            .or_else(|| {
                pod.status
                    .as_ref()
                    .and_then(|s| serde_json::to_value(s).ok())
            })
            .unwrap_or_else(|| serde_json::json!({}));
        base["phase"] = "Failed".into();
        base["reason"] = "Evicted".into();
        base["message"] = message.into();
        let now = Timestamp::now().to_string();
        let disruption = serde_json::json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "TerminationByKubelet",
            "message": message,
            "lastProbeTime": null,
            "lastTransitionTime": now,
        });
        let mut conds: Vec<serde_json::Value> = base["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| c["type"] != "DisruptionTarget")
            .collect();
        conds.push(disruption);
        base["conditions"] = conds.into();
        st.last_status = Some(base);
        let status = self.compute_status(pod, &obs, st, false);
        // Report it even if it equals the base above: the API still has the old phase.
        st.last_status = None;
        self.patch_status(pod, st, &status).await?;
        self.recorder
            .pod(pod, None, EventType::Warning, "Evicted", message);
        tracing::info!(pod = %pod_desc(pod), "eviction: pod evicted");
        lock(&self.evictions).remove(&uid);
        Ok(Next::After(TERMINAL_RESYNC))
    }

    fn pods_api(&self, pod: &Pod) -> Api<Pod> {
        Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or("default"),
        )
    }

    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> PodSandboxConfig {
        let env = SandboxEnv {
            cluster_dns: &self.cfg.cluster_dns,
            cluster_domain: &self.cfg.cluster_domain,
            host_resolv_conf: &self.host_resolv_conf,
            log_directory: self
                .cfg
                .pod_log_dir
                .join(spec::log_dir_name(pod))
                .to_string_lossy()
                .into_owned(),
            attempt,
        };
        let mut cfg = spec::sandbox_config(pod, &env);
        cfg.linux = Some(linux::sandbox_config(pod));
        cfg
    }

    /// The status as of now; `deleting`: containers will not restart.
    fn compute_status(
        &self,
        pod: &Pod,
        obs: &ObservedPod,
        st: &PodState,
        deleting: bool,
    ) -> PodStatus {
        let uid = uid_of(pod);
        let mut base = pod.clone();
        if let Some(last) = st
            .last_status
            .as_ref()
            .and_then(|v| serde_json::from_value::<PodStatus>(v.clone()).ok())
        {
            // our newest status, with the conditions others own from the API copy
            let mut last = last;
            let theirs: Vec<_> = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.clone())
                .unwrap_or_default();
            let mut conds: Vec<_> = last.conditions.take().unwrap_or_default();
            for c in theirs {
                if !conds.iter().any(|x| x.type_ == c.type_) {
                    conds.push(c);
                }
            }
            last.conditions = Some(conds);
            base.status = Some(last);
        }
        let spec = pod.spec.clone().unwrap_or_default();
        let probes: HashMap<String, ProbeView> = spec
            .containers
            .iter()
            .map(|c| {
                let p = self.prober.state(&uid, &c.name);
                (
                    c.name.clone(),
                    ProbeView {
                        ready: p.ready,
                        started: p.started,
                    },
                )
            })
            .collect();
        status::pod_status(&StatusInput {
            pod: &base,
            observed: obs,
            probes: &probes,
            waiting: &st.waiting,
            node_ip: &self.node_ip,
            qos_class: linux::qos_class(pod),
            deleting,
            now: Timestamp::now(),
        })
    }

    /// Patches `pods/status` when it differs from what was last reported.
    async fn patch_status(
        &self,
        pod: &Pod,
        st: &mut PodState,
        status: &PodStatus,
    ) -> Result<(), String> {
        let new = serde_json::to_value(status).map_err(|e| e.to_string())?;
        let old = st.last_status.clone().or_else(|| {
            pod.status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
        });
        if old.as_ref() == Some(&new) {
            return Ok(());
        }
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        match self
            .pods_api(pod)
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "status": new })),
            )
            .await
        {
            Ok(_) => {
                st.last_status = Some(new);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(format!("patch status of pod {}: {e}", pod_desc(pod))),
        }
    }

    /// One sync of a live pod.
    async fn sync(&self, pod: &Pod, st: &mut PodState) -> Result<Next, String> {
        let uid = uid_of(pod);
        let spec = pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let host_network = spec.host_network.unwrap_or(false);
        let phase = st
            .last_status
            .as_ref()
            .and_then(|s| s.get("phase").and_then(|p| p.as_str()).map(str::to_string))
            .or_else(|| pod.status.as_ref().and_then(|s| s.phase.clone()))
            .unwrap_or_default();
        let mut obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;

        let evict = lock(&self.evictions).get(&uid).cloned();
        if let Some(message) = evict {
            if matches!(phase.as_str(), "Succeeded" | "Failed") {
                lock(&self.evictions).remove(&uid);
            } else {
                return self.evict(pod, st, obs, &message).await;
            }
        }

        if matches!(phase.as_str(), "Succeeded" | "Failed") {
            // terminal: never restart; the sandbox goes, the containers stay for logs
            for c in obs
                .containers
                .iter()
                .filter(|c| c.state == RunState::Running)
            {
                runtime::stop_container(&self.cri, &c.id, MIN_GRACE).await?;
            }
            for s in obs.sandboxes.iter().filter(|s| s.ready) {
                runtime::stop_sandbox(&self.cri, &s.id).await?;
            }
            self.prober.stop_pod(&uid);
            st.waiting.clear();
            let status = self.compute_status(pod, &obs, st, false);
            self.patch_status(pod, st, &status).await?;
            return Ok(Next::After(TERMINAL_RESYNC));
        }

        st.waiting.clear();
        let log_dir = self.cfg.pod_log_dir.join(spec::log_dir_name(pod));
        std::fs::create_dir_all(&log_dir)
            .map_err(|e| format!("create the pod log directory {}: {e}", log_dir.display()))?;

        // volumes
        let refresh = st.volumes_at.is_none_or(|t| t.elapsed() >= VOLUME_REFRESH);
        if refresh {
            match volumes::prepare(&self.volumes, pod).await {
                Ok(v) => {
                    st.volumes = Some(v);
                    st.volumes_at = Some(Instant::now());
                }
                Err(msg) if st.volumes.is_none() => {
                    self.recorder
                        .pod(pod, None, EventType::Warning, "FailedMount", &msg);
                    let status = self.compute_status(pod, &obs, st, false);
                    self.patch_status(pod, st, &status).await?;
                    return Ok(Next::After(Duration::from_secs(10)));
                }
                Err(msg) => {
                    tracing::warn!(pod = %pod_desc(pod), error = %msg, "kubelet: refreshing volumes failed")
                }
            }
        }

        // sandbox
        let sandbox = match obs.sandbox().filter(|s| s.ready).cloned() {
            Some(s) => s,
            None => match self.create_sandbox(pod, &obs, st).await? {
                Ok(()) => {
                    obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
                    match obs.sandbox().filter(|s| s.ready).cloned() {
                        Some(s) => s,
                        None => return Ok(Next::After(Duration::from_secs(1))),
                    }
                }
                Err(wait) => {
                    let status = self.compute_status(pod, &obs, st, false);
                    self.patch_status(pod, st, &status).await?;
                    return Ok(Next::After(wait));
                }
            },
        };
        let sandbox_cfg = self.sandbox_config(pod, sandbox.attempt);
        let pod_ip = if host_network {
            self.node_ip.clone()
        } else {
            sandbox.ips.first().cloned().unwrap_or_default()
        };

        // probes for running containers (new or adopted), kills for liveness and spec changes
        let mut killed_any = false;
        for c in &spec.containers {
            let Some(cur) = latest_in(&obs, &c.name, &sandbox.id) else {
                continue;
            };
            if cur.state != RunState::Running {
                continue;
            }
            if st.probing.insert(cur.id.clone()) {
                self.prober.start(pod, c, &cur.id, &pod_ip);
            }
            if st.killed.contains(&cur.id) {
                continue;
            }
            let p = self.prober.state(&uid, &c.name);
            let why = if let Some(msg) = p.liveness_failed {
                Some(msg)
            } else if !cur.hash.is_empty() && cur.hash != container_hash(c) {
                Some(format!(
                    "Container {} definition changed, will be restarted",
                    c.name
                ))
            } else {
                None
            };
            if let Some(msg) = why {
                let fp = field_path(Kind::Regular, &c.name);
                self.recorder
                    .pod(pod, Some(&fp), EventType::Normal, "Killing", &msg);
                self.prober.stop_container(&uid, &c.name);
                st.killed.insert(cur.id.clone());
                let grace = spec
                    .termination_grace_period_seconds
                    .unwrap_or(30)
                    .max(MIN_GRACE);
                self.run_pre_stop(pod, c, &cur.id, &pod_ip, grace).await;
                runtime::stop_container(&self.cri, &cur.id, grace).await?;
                killed_any = true;
            }
        }
        if killed_any {
            obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
        }

        let mut wake: Option<Duration> = None;
        // init containers, in order, each to completion
        let init_specs = spec.init_containers.clone().unwrap_or_default();
        let mut init_done = true;
        for c in &init_specs {
            let cur = latest_in(&obs, &c.name, &sandbox.id).cloned();
            match cur {
                Some(x) if x.state == RunState::Exited && x.exit_code == 0 => continue,
                Some(x) if x.state == RunState::Running => {
                    init_done = false;
                    break;
                }
                Some(x) if x.state == RunState::Exited => {
                    init_done = false;
                    if should_restart(&policy, x.exit_code) {
                        if let Some(d) = self
                            .restart(
                                pod,
                                c,
                                Kind::Init,
                                &x,
                                &sandbox.id,
                                &sandbox_cfg,
                                &pod_ip,
                                st,
                            )
                            .await?
                        {
                            wake = min_wake(wake, d);
                        }
                    }
                    break;
                }
                other => {
                    init_done = false;
                    if let Some(x) = &other {
                        runtime::remove_container(&self.cri, &x.id).await?;
                    }
                    let count = next_restart_count(&obs, &c.name);
                    if let Some(d) = self
                        .start(
                            pod,
                            c,
                            Kind::Init,
                            count,
                            &sandbox.id,
                            &sandbox_cfg,
                            &pod_ip,
                            st,
                        )
                        .await?
                    {
                        wake = min_wake(wake, d);
                    }
                    break;
                }
            }
        }

        // regular containers
        if init_done {
            for c in &spec.containers {
                let cur = latest_in(&obs, &c.name, &sandbox.id).cloned();
                match cur {
                    Some(x) if x.state == RunState::Running => {}
                    Some(x) if x.state == RunState::Exited => {
                        if should_restart(&policy, x.exit_code) {
                            if let Some(d) = self
                                .restart(
                                    pod,
                                    c,
                                    Kind::Regular,
                                    &x,
                                    &sandbox.id,
                                    &sandbox_cfg,
                                    &pod_ip,
                                    st,
                                )
                                .await?
                            {
                                wake = min_wake(wake, d);
                            }
                        }
                    }
                    other => {
                        if let Some(x) = &other {
                            runtime::remove_container(&self.cri, &x.id).await?;
                        }
                        let count = next_restart_count(&obs, &c.name);
                        if let Some(d) = self
                            .start(
                                pod,
                                c,
                                Kind::Regular,
                                count,
                                &sandbox.id,
                                &sandbox_cfg,
                                &pod_ip,
                                st,
                            )
                            .await?
                        {
                            wake = min_wake(wake, d);
                        }
                    }
                }
            }
        }

        // status
        let obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
        let status = self.compute_status(pod, &obs, st, false);
        let terminal = matches!(status.phase.as_deref(), Some("Succeeded" | "Failed"));
        if terminal {
            for s in obs.sandboxes.iter().filter(|s| s.ready) {
                runtime::stop_sandbox(&self.cri, &s.id).await?;
            }
            self.prober.stop_pod(&uid);
        }
        self.patch_status(pod, st, &status).await?;
        self.collect_garbage(pod, &obs, &sandbox).await;
        if terminal {
            return Ok(Next::After(Duration::from_millis(100)));
        }
        Ok(Next::After(wake.map_or(RESYNC, |w| w.min(RESYNC))))
    }

    /// Creates a new sandbox (killing what is left of the old one). `Err(wait)`: it failed
    /// (event sent) or is in back-off; retry after `wait`.
    async fn create_sandbox(
        &self,
        pod: &Pod,
        obs: &ObservedPod,
        st: &mut PodState,
    ) -> Result<Result<(), Duration>, String> {
        let now = Instant::now();
        if let Some(failed) = st.sandbox_failed_at {
            if let Some(rem) = st.sandbox_backoff.remaining("sandbox", failed, now) {
                return Ok(Err(rem));
            }
        }
        for c in obs
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
        {
            runtime::stop_container(&self.cri, &c.id, MIN_GRACE).await?;
        }
        for s in &obs.sandboxes {
            runtime::stop_sandbox(&self.cri, &s.id).await?;
        }
        let attempt = obs
            .sandboxes
            .iter()
            .map(|s| s.attempt + 1)
            .max()
            .unwrap_or(0);
        let config = self.sandbox_config(pod, attempt);
        let mut rt = self.cri.runtime.clone();
        let started = std::time::Instant::now();
        match rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config),
                runtime_handler: String::new(),
            })
            .await
        {
            Ok(resp) => {
                st.sandbox_backoff.reset("sandbox");
                st.sandbox_failed_at = None;
                tracing::info!(pod = %pod_desc(pod), sandbox = %resp.into_inner().pod_sandbox_id,
                    took = ?started.elapsed(), "kubelet: sandbox created");
                Ok(Ok(()))
            }
            Err(s) => {
                let msg = format!("Failed to create pod sandbox: {}", s.message());
                self.recorder.pod(
                    pod,
                    None,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    &msg,
                );
                st.sandbox_backoff.next("sandbox", now);
                st.sandbox_failed_at = Some(now);
                Ok(Err(st.sandbox_backoff.delay("sandbox")))
            }
        }
    }

    /// Restarts exited container `x` unless it is in back-off (then `CrashLoopBackOff`).
    #[allow(clippy::too_many_arguments)]
    async fn restart(
        &self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        x: &ObservedContainer,
        sandbox_id: &str,
        sandbox_cfg: &PodSandboxConfig,
        pod_ip: &str,
        st: &mut PodState,
    ) -> Result<Option<Duration>, String> {
        let now = Instant::now();
        let failed_at = instant_of(x.finished_at.max(x.created_at));
        if let Some(rem) = st.restart_backoff.remaining(&c.name, failed_at, now) {
            let delay = go_duration(st.restart_backoff.delay(&c.name));
            let name = pod.metadata.name.as_deref().unwrap_or_default();
            let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
            let uid = uid_of(pod);
            st.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message: format!(
                        "back-off {delay} restarting failed container={} pod={name}_{ns}({uid})",
                        c.name
                    ),
                },
            );
            self.recorder.pod(
                pod,
                Some(&field_path(kind, &c.name)),
                EventType::Warning,
                "BackOff",
                &format!(
                    "Back-off restarting failed container {} in pod {name}_{ns}({uid})",
                    c.name
                ),
            );
            return Ok(Some(rem));
        }
        st.restart_backoff.next(&c.name, now);
        self.start(
            pod,
            c,
            kind,
            x.restart_count + 1,
            sandbox_id,
            sandbox_cfg,
            pod_ip,
            st,
        )
        .await
    }

    /// Pulls, creates and starts one container instance; failures become waiting reasons
    /// (and events). Returns when to look again, if sooner than the resync.
    #[allow(clippy::too_many_arguments)]
    async fn start(
        &self,
        pod: &Pod,
        c: &Container,
        kind: Kind,
        restart_count: i32,
        sandbox_id: &str,
        sandbox_cfg: &PodSandboxConfig,
        pod_ip: &str,
        st: &mut PodState,
    ) -> Result<Option<Duration>, String> {
        let uid = uid_of(pod);
        let fp = field_path(kind, &c.name);
        let image = c.image.clone().unwrap_or_default();
        let now = Instant::now();
        let wait = |st: &mut PodState, reason: &str, message: String| {
            st.waiting.insert(
                c.name.clone(),
                Waiting {
                    reason: reason.to_string(),
                    message,
                },
            );
        };

        // image
        if let Some((failed, msg)) = st.image_failed.get(&image).cloned() {
            if let Some(rem) = st.image_backoff.remaining(&image, failed, now) {
                let m = format!("Back-off pulling image \"{image}\"");
                self.recorder
                    .pod(pod, Some(&fp), EventType::Normal, "BackOff", &m);
                wait(st, "ImagePullBackOff", format!("{m}: ErrImagePull: {msg}"));
                return Ok(Some(rem));
            }
        }
        let image_ref = match images::ensure_image(
            &self.cri,
            &self.client,
            &self.recorder,
            pod,
            c,
            &fp,
            sandbox_cfg,
        )
        .await
        {
            Ok(r) => {
                st.image_backoff.reset(&image);
                st.image_failed.remove(&image);
                r
            }
            Err(e) => {
                if e.reason == "ErrImagePull" {
                    st.image_backoff.next(&image, now);
                    st.image_failed
                        .insert(image.clone(), (now, e.message.clone()));
                }
                let delay = st.image_backoff.delay(&image).max(backoff::INITIAL);
                wait(st, e.reason, e.message);
                return Ok(Some(delay));
            }
        };

        // config
        let envs = match env::container_env(&self.client, pod, c, pod_ip, &self.node_ip).await {
            Ok(v) => v,
            Err(msg) => {
                self.recorder.pod(
                    pod,
                    Some(&fp),
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {msg}"),
                );
                wait(st, "CreateContainerConfigError", msg);
                return Ok(Some(backoff::INITIAL));
            }
        };
        let prepared = st.volumes.as_ref().ok_or("volumes are not prepared")?;
        let mut mounts = match volumes::container_mounts(pod, c, prepared) {
            Ok(m) => m,
            Err(msg) => {
                self.recorder.pod(
                    pod,
                    Some(&fp),
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {msg}"),
                );
                wait(st, "CreateContainerConfigError", msg);
                return Ok(Some(backoff::INITIAL));
            }
        };
        // one termination-log file per instance, so lastState keeps its own message
        let term_path = c
            .termination_message_path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/dev/termination-log".into());
        let file = runtime::termination_file(&self.cfg.root_dir, &uid, &c.name, restart_count);
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        std::fs::write(&file, b"").map_err(|e| format!("create {}: {e}", file.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666))
                .map_err(|e| format!("chmod {}: {e}", file.display()))?;
        }
        let host_path = file.to_string_lossy().into_owned();
        match mounts.iter_mut().find(|m| m.container_path == term_path) {
            Some(m) => m.host_path = host_path,
            None => mounts.push(k8s_cri::v1::Mount {
                container_path: term_path,
                host_path,
                ..Default::default()
            }),
        }
        let mut config = spec::container_config(pod, c, kind, restart_count, &image_ref);
        config.command = env::expand_args(&config.command, &envs);
        config.args = env::expand_args(&config.args, &envs);
        config.envs = envs;
        config.mounts = mounts;
        config.linux = Some(linux::container_config(pod, c));

        let mut rt = self.cri.runtime.clone();
        let id = match rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: sandbox_id.to_string(),
                config: Some(config),
                sandbox_config: Some(sandbox_cfg.clone()),
            })
            .await
        {
            Ok(r) => r.into_inner().container_id,
            Err(s) => {
                let msg = s.message().to_string();
                self.recorder.pod(
                    pod,
                    Some(&fp),
                    EventType::Warning,
                    "Failed",
                    &format!("Error: {msg}"),
                );
                wait(st, "CreateContainerError", msg);
                return Ok(Some(backoff::INITIAL));
            }
        };
        self.recorder.pod(
            pod,
            Some(&fp),
            EventType::Normal,
            "Created",
            &format!("Created container: {}", c.name),
        );
        if let Err(s) = rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            let msg = s.message().to_string();
            self.recorder.pod(
                pod,
                Some(&fp),
                EventType::Warning,
                "Failed",
                &format!("Error: {msg}"),
            );
            wait(st, "RunContainerError", msg);
            return Ok(Some(backoff::INITIAL));
        }
        self.recorder.pod(
            pod,
            Some(&fp),
            EventType::Normal,
            "Started",
            &format!("Started container {}", c.name),
        );
        self.link_log(pod, c, &id, restart_count);
        if kind == Kind::Regular {
            st.probing.insert(id.clone());
            self.prober.start(pod, c, &id, pod_ip);
        }
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = pod
                .spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30)
                .max(MIN_GRACE);
            if let Err(msg) = hooks::run_handler(
                &self.cri,
                h,
                pod,
                c,
                &id,
                pod_ip,
                Duration::from_secs(grace as u64),
            )
            .await
            {
                let m = msg;
                self.recorder.pod(
                    pod,
                    Some(&fp),
                    EventType::Warning,
                    "FailedPostStartHook",
                    &m,
                );
                self.recorder.pod(
                    pod,
                    Some(&fp),
                    EventType::Normal,
                    "Killing",
                    &format!("FailedPostStartHook: Container {} failed post-start hook, will be restarted", c.name),
                );
                self.prober.stop_container(&uid, &c.name);
                runtime::stop_container(&self.cri, &id, grace).await?;
                wait(st, "PostStartHookError", m);
            }
        }
        tracing::info!(pod = %pod_desc(pod), container = %c.name, id = %id, restart_count,
            "kubelet: container started");
        Ok(None)
    }

    /// `<pod_log_dir>/../containers/<pod>_<ns>_<container>-<id>.log` → the instance's log.
    fn link_log(&self, pod: &Pod, c: &Container, id: &str, restart_count: i32) {
        let Some(parent) = self.cfg.pod_log_dir.parent() else {
            return;
        };
        let dir = parent.join("containers");
        let mut name = format!(
            "{}_{}_{}-{id}.log",
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            c.name
        );
        if name.len() > 255 {
            let mut n = 255;
            while !name.is_char_boundary(n) {
                n -= 1;
            }
            name.truncate(n);
        }
        let target = self
            .cfg
            .pod_log_dir
            .join(spec::log_dir_name(pod))
            .join(&c.name)
            .join(format!("{restart_count}.log"));
        let link = dir.join(name);
        let result = std::fs::create_dir_all(&dir).and_then(|_| {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&target, &link)
        });
        if let Err(e) = result {
            tracing::debug!(link = %link.display(), error = %e, "kubelet: cannot link the container log");
        }
    }

    fn unlink_logs(&self, id: &str) {
        let Some(parent) = self.cfg.pod_log_dir.parent() else {
            return;
        };
        let Ok(entries) = std::fs::read_dir(parent.join("containers")) else {
            return;
        };
        let suffix = format!("-{id}.log");
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(&suffix) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    async fn run_pre_stop(&self, pod: &Pod, c: &Container, id: &str, pod_ip: &str, grace: i64) {
        let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
            return;
        };
        if let Err(msg) = hooks::run_handler(
            &self.cri,
            h,
            pod,
            c,
            id,
            pod_ip,
            Duration::from_secs(grace.max(0) as u64),
        )
        .await
        {
            self.recorder.pod(
                pod,
                Some(&field_path(Kind::Regular, &c.name)),
                EventType::Warning,
                "FailedPreStopHook",
                &msg,
            );
        }
    }

    /// Removes old container instances (keeping the newest two per container) and old
    /// sandboxes none of the kept instances belong to.
    async fn collect_garbage(&self, pod: &Pod, obs: &ObservedPod, current: &ObservedSandbox) {
        let spec = pod.spec.clone().unwrap_or_default();
        let names: Vec<&str> = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.name.as_str())
            .collect();
        let doomed = runtime::prune(obs, &names, KEEP_INSTANCES);
        for id in &doomed {
            if let Err(e) = runtime::remove_container(&self.cri, id).await {
                tracing::warn!(error = %e, "kubelet: removing an old container failed");
            }
            self.unlink_logs(id);
        }
        for s in obs
            .sandboxes
            .iter()
            .filter(|s| s.id != current.id && !s.ready)
        {
            let used = obs
                .containers
                .iter()
                .any(|c| c.sandbox_id == s.id && !doomed.contains(&c.id));
            if !used {
                if let Err(e) = runtime::remove_sandbox(&self.cri, &s.id).await {
                    tracing::warn!(error = %e, "kubelet: removing an old sandbox failed");
                }
            }
        }
    }

    /// A deleted pod: preStop hooks, stop with the remaining grace, stop and remove the
    /// sandbox, clean volumes, then delete the API object for good.
    async fn terminate(&self, pod: &Pod, st: &mut PodState) -> Result<Next, String> {
        let uid = uid_of(pod);
        let grace = remaining_grace(pod, Timestamp::now());
        let obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
        let spec = pod.spec.clone().unwrap_or_default();
        let pod_ip = if spec.host_network.unwrap_or(false) {
            self.node_ip.clone()
        } else {
            obs.sandbox()
                .and_then(|s| s.ips.first().cloned())
                .unwrap_or_default()
        };
        let started = std::time::Instant::now();
        let stops = obs
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .map(|x| {
                let c = spec
                    .containers
                    .iter()
                    .chain(spec.init_containers.iter().flatten())
                    .find(|c| c.name == x.name);
                let pod_ip = pod_ip.clone();
                async move {
                    if let Some(c) = c {
                        self.run_pre_stop(pod, c, &x.id, &pod_ip, grace).await;
                        self.recorder.pod(
                            pod,
                            Some(&field_path(Kind::Regular, &c.name)),
                            EventType::Normal,
                            "Killing",
                            &format!("Stopping container {}", c.name),
                        );
                    }
                    let left = (grace - started.elapsed().as_secs() as i64).max(MIN_GRACE);
                    runtime::stop_container(&self.cri, &x.id, left).await
                }
            });
        for r in futures::future::join_all(stops).await {
            r?;
        }
        self.prober.stop_pod(&uid);
        for s in &obs.sandboxes {
            runtime::stop_sandbox(&self.cri, &s.id).await?;
        }
        st.waiting.clear();
        let obs = runtime::observe_pod(&self.cri, &uid, &self.cfg.root_dir).await?;
        let status = self.compute_status(pod, &obs, st, true);
        if let Err(e) = self.patch_status(pod, st, &status).await {
            tracing::debug!(error = %e, "kubelet: final status not reported");
        }
        self.remove_runtime_state(&uid, &obs).await?;
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods_api(pod).delete(name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(format!("delete pod {}: {e}", pod_desc(pod))),
        }
        tracing::info!(pod = %pod_desc(pod), "kubelet: pod terminated and deleted");
        Ok(Next::Done)
    }

    /// A pod whose API object is gone: kill and remove everything of it.
    async fn remove(&self, uid: &str) -> Result<Next, String> {
        let obs = runtime::observe_pod(&self.cri, uid, &self.cfg.root_dir).await?;
        let stops = obs
            .containers
            .iter()
            .filter(|c| c.state == RunState::Running)
            .map(|c| runtime::stop_container(&self.cri, &c.id, MIN_GRACE));
        for r in futures::future::join_all(stops).await {
            r?;
        }
        self.prober.stop_pod(uid);
        for s in &obs.sandboxes {
            runtime::stop_sandbox(&self.cri, &s.id).await?;
        }
        self.remove_runtime_state(uid, &obs).await?;
        tracing::info!(uid = %uid, "kubelet: removed a pod whose API object is gone");
        Ok(Next::Done)
    }

    async fn remove_runtime_state(&self, uid: &str, obs: &ObservedPod) -> Result<(), String> {
        for c in &obs.containers {
            runtime::remove_container(&self.cri, &c.id).await?;
            self.unlink_logs(&c.id);
        }
        for s in &obs.sandboxes {
            runtime::remove_sandbox(&self.cri, &s.id).await?;
        }
        if let Err(e) = volumes::cleanup(&self.volumes, uid).await {
            tracing::warn!(uid = %uid, error = %e, "kubelet: volume cleanup failed");
        }
        remove_pod_dirs(&self.cfg.root_dir, &self.cfg.pod_log_dir, uid);
        // the pod's QoS (and so its cgroup parent) is unknown once its object is gone
        for parent in pod_cgroup_parents(uid) {
            if let Err(e) = linux::remove_pod_cgroup(&parent) {
                tracing::debug!(uid = %uid, error = %e, "kubelet: pod cgroup not removed");
            }
        }
        Ok(())
    }
}

/// Removes `<root>/pods/<uid>` (what volume cleanup left) and the pod's log directory.
fn remove_pod_dirs(root_dir: &Path, pod_log_dir: &Path, uid: &str) {
    let _ = std::fs::remove_dir_all(root_dir.join("pods").join(uid).join("containers"));
    let _ = std::fs::remove_dir(root_dir.join("pods").join(uid));
    let suffix = format!("_{uid}");
    if let Ok(entries) = std::fs::read_dir(pod_log_dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(&suffix) {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Every cgroup parent a pod with `uid` may have had (Guaranteed, Burstable, BestEffort).
fn pod_cgroup_parents(uid: &str) -> [String; 3] {
    [
        format!("/kubepods/pod{uid}"),
        format!("/kubepods/burstable/pod{uid}"),
        format!("/kubepods/besteffort/pod{uid}"),
    ]
}

/// The newest instance of container `name` in sandbox `sandbox_id`.
fn latest_in<'a>(
    obs: &'a ObservedPod,
    name: &str,
    sandbox_id: &str,
) -> Option<&'a ObservedContainer> {
    obs.instances(name)
        .into_iter()
        .find(|c| c.sandbox_id == sandbox_id)
}

/// The restart count of the next instance of `name`: one more than the newest one anywhere.
fn next_restart_count(obs: &ObservedPod, name: &str) -> i32 {
    obs.latest(name).map(|c| c.restart_count + 1).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_parents_cover_every_qos_class() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"uid": "u1"}, "spec": {"containers": [{"name": "c"}]}
        }))
        .unwrap();
        assert!(pod_cgroup_parents("u1").contains(&linux::cgroup_parent(&pod)));
    }

    #[test]
    fn restart_policies_decide_restarts() {
        assert!(should_restart("Always", 0));
        assert!(should_restart("Always", 1));
        assert!(!should_restart("OnFailure", 0));
        assert!(should_restart("OnFailure", 2));
        assert!(!should_restart("Never", 1));
    }

    #[test]
    fn grace_is_what_is_left_within_bounds() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let pod = |deletion: i64, grace: i64| -> Pod {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "p", "deletionGracePeriodSeconds": grace,
                    "deletionTimestamp": Timestamp::from_second(deletion).unwrap().to_string()},
                "spec": {"containers": []}
            }))
            .unwrap()
        };
        assert_eq!(remaining_grace(&pod(1_000_030, 30), now), 30);
        assert_eq!(remaining_grace(&pod(1_000_010, 30), now), 10);
        assert_eq!(remaining_grace(&pod(999_000, 30), now), MIN_GRACE);
        assert_eq!(remaining_grace(&pod(1_000_100, 5), now), 5);
    }

    #[test]
    fn runtime_times_map_to_past_instants() {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let t = instant_of(now_ns - 5_000_000_000);
        let ago = Instant::now().duration_since(t);
        assert!(
            ago >= Duration::from_secs(5) && ago < Duration::from_secs(6),
            "{ago:?}"
        );
    }

    #[test]
    fn next_instances_count_on_from_the_newest() {
        let mut obs = ObservedPod::default();
        assert_eq!(next_restart_count(&obs, "web"), 0);
        for (id, sb, rc) in [("a", "s1", 0), ("b", "s2", 1)] {
            obs.containers.push(ObservedContainer {
                id: id.into(),
                sandbox_id: sb.into(),
                name: "web".into(),
                attempt: rc as u32,
                restart_count: rc,
                hash: String::new(),
                state: RunState::Exited,
                created_at: rc as i64,
                started_at: 0,
                finished_at: 0,
                exit_code: 1,
                reason: String::new(),
                message: String::new(),
                image_ref: String::new(),
            });
        }
        assert_eq!(next_restart_count(&obs, "web"), 2);
        assert_eq!(latest_in(&obs, "web", "s1").unwrap().id, "a");
        assert!(latest_in(&obs, "web", "s3").is_none());
    }
}
