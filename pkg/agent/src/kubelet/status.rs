//! The pod status as a pure function of what the runtime shows (sandboxes, container
//! instances), the probe results, the sync loop's waiting reasons and the old status:
//! phase, conditions, container statuses and IPs as upstream's kubelet reports them.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{
    Container, ContainerState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Waiting reason of a container whose pod has no init containers.
pub const CONTAINER_CREATING: &str = "ContainerCreating";
/// Waiting reason of every container of a pod with init containers, until it runs.
pub const POD_INITIALIZING: &str = "PodInitializing";

/// A container instance's runtime state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Created,
    Running,
    Exited,
    Unknown,
}

/// One container instance as the runtime reports it (times in Unix nanoseconds, 0 = unset).
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedContainer {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    /// From the `io.kubernetes.container.restartCount` annotation.
    pub restart_count: i32,
    /// From the `io.kubernetes.container.hash` annotation.
    pub hash: String,
    pub state: RunState,
    pub created_at: i64,
    pub started_at: i64,
    pub finished_at: i64,
    pub exit_code: i32,
    pub reason: String,
    /// The termination message (file, or the log tail for `FallbackToLogsOnError`).
    pub message: String,
    pub image_ref: String,
}

/// One pod sandbox as the runtime reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservedSandbox {
    pub id: String,
    pub attempt: u32,
    pub ready: bool,
    pub created_at: i64,
    pub ips: Vec<String>,
}

/// Everything the runtime holds for one pod uid.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedPod {
    pub sandboxes: Vec<ObservedSandbox>,
    pub containers: Vec<ObservedContainer>,
}

impl ObservedPod {
    /// The newest sandbox.
    pub fn sandbox(&self) -> Option<&ObservedSandbox> {
        self.sandboxes
            .iter()
            .max_by_key(|s| (s.created_at, s.attempt))
    }

    /// The instances of container `name`, newest first.
    pub fn instances(&self, name: &str) -> Vec<&ObservedContainer> {
        let mut v: Vec<&ObservedContainer> =
            self.containers.iter().filter(|c| c.name == name).collect();
        v.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.attempt, c.created_at)));
        v
    }

    /// The newest instance of container `name`.
    pub fn latest(&self, name: &str) -> Option<&ObservedContainer> {
        self.instances(name).into_iter().next()
    }
}

/// Probe results of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProbeView {
    pub ready: bool,
    pub started: bool,
}

/// A reason the sync loop keeps a container waiting (image pull errors, back-off, config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// The inputs of [`pod_status`].
pub struct StatusInput<'a> {
    pub pod: &'a Pod,
    pub observed: &'a ObservedPod,
    pub probes: &'a HashMap<String, ProbeView>,
    pub waiting: &'a HashMap<String, Waiting>,
    pub node_ip: &'a str,
    pub qos_class: &'a str,
    /// The pod is being deleted (its containers will not restart).
    pub deleting: bool,
    pub now: Timestamp,
}

/// A Unix-nanosecond runtime time as an API time (whole seconds), `None` when unset.
pub fn time_from_nanos(ns: i64) -> Option<Time> {
    (ns > 0)
        .then(|| Timestamp::from_second(ns / 1_000_000_000).ok())
        .flatten()
        .map(Time)
}

fn now_time(now: Timestamp) -> Time {
    Time(Timestamp::from_second(now.as_second()).unwrap_or(now))
}

fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

fn terminated_of(c: &ObservedContainer) -> ContainerStateTerminated {
    let reason = if !c.reason.is_empty() {
        c.reason.clone()
    } else if c.exit_code == 0 {
        "Completed".to_string()
    } else {
        "Error".to_string()
    };
    ContainerStateTerminated {
        container_id: Some(format!("containerd://{}", c.id)),
        exit_code: c.exit_code,
        finished_at: time_from_nanos(c.finished_at),
        message: (!c.message.is_empty()).then(|| c.message.clone()),
        reason: Some(reason),
        signal: None,
        started_at: time_from_nanos(c.started_at),
    }
}

fn state_of(c: &ObservedContainer) -> ContainerState {
    match c.state {
        RunState::Running => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: time_from_nanos(c.started_at),
            }),
            ..Default::default()
        },
        RunState::Exited => ContainerState {
            terminated: Some(terminated_of(c)),
            ..Default::default()
        },
        RunState::Created => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(CONTAINER_CREATING.into()),
                message: None,
            }),
            ..Default::default()
        },
        RunState::Unknown => ContainerState {
            terminated: Some(ContainerStateTerminated {
                container_id: Some(format!("containerd://{}", c.id)),
                exit_code: 137,
                reason: Some("ContainerStatusUnknown".into()),
                message: Some(
                    "The container could not be located when the pod was terminated".into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// The status of one spec container (init or regular).
fn container_status(
    input: &StatusInput<'_>,
    c: &Container,
    default_reason: &str,
    init: bool,
) -> ContainerStatus {
    let instances = input.observed.instances(&c.name);
    let probe = input.probes.get(&c.name).copied().unwrap_or_default();
    let mut st = ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        ready: false,
        restart_count: 0,
        ..Default::default()
    };
    match instances.first() {
        None => {
            st.state = Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(default_reason.to_string()),
                    message: None,
                }),
                ..Default::default()
            });
            // keep what the old status knew of earlier instances (e.g. after a sandbox change)
            if let Some(old) = old_container_status(input.pod, &c.name) {
                st.restart_count = old.restart_count;
                st.last_state = old.last_state.clone();
            }
        }
        Some(cur) => {
            st.container_id = Some(format!("containerd://{}", cur.id));
            st.image_id = cur.image_ref.clone();
            st.restart_count = cur.restart_count;
            st.state = Some(state_of(cur));
            let running = cur.state == RunState::Running;
            // a completed init container counts as ready
            st.ready = if init {
                cur.state == RunState::Exited && cur.exit_code == 0
            } else {
                running && probe.ready
            };
            st.started = Some(running && (init || probe.started));
            if let Some(prev) = instances.get(1) {
                st.last_state = Some(ContainerState {
                    terminated: Some(terminated_of(prev)),
                    ..Default::default()
                });
            }
        }
    }
    // a container the sync loop could not (re)start shows why it waits
    if let Some(w) = input.waiting.get(&c.name) {
        let running = instances
            .first()
            .is_some_and(|c| c.state == RunState::Running);
        if !running {
            if let Some(term) = st.state.as_ref().and_then(|s| s.terminated.clone()) {
                st.last_state = Some(ContainerState {
                    terminated: Some(term),
                    ..Default::default()
                });
            }
            st.state = Some(ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(w.reason.clone()),
                    message: (!w.message.is_empty()).then(|| w.message.clone()),
                }),
                ..Default::default()
            });
        }
    }
    st
}

fn old_container_status<'p>(pod: &'p Pod, name: &str) -> Option<&'p ContainerStatus> {
    let status = pod.status.as_ref()?;
    status
        .container_statuses
        .iter()
        .flatten()
        .chain(status.init_container_statuses.iter().flatten())
        .find(|s| s.name == name)
}

fn is_running(s: &ContainerStatus) -> bool {
    s.state.as_ref().is_some_and(|s| s.running.is_some())
}

fn terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.state.as_ref().and_then(|s| s.terminated.as_ref())
}

fn last_terminated(s: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    s.last_state.as_ref().and_then(|s| s.terminated.as_ref())
}

/// upstream's getPhase over the generated container statuses.
pub fn phase(
    pod: &Pod,
    init: &[ContainerStatus],
    regular: &[ContainerStatus],
    pod_is_terminal: bool,
) -> &'static str {
    let policy = restart_policy(pod);
    let (mut pending_init, mut failed_init) = (0, 0);
    for s in init {
        if is_running(s) {
            pending_init += 1;
        } else if let Some(t) = terminated(s) {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else if let Some(t) = last_terminated(s) {
            if t.exit_code != 0 {
                failed_init += 1;
            }
        } else {
            pending_init += 1;
        }
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    let mut any_started = false;
    for s in regular {
        if is_running(s) {
            running += 1;
            any_started = true;
        } else if let Some(t) = terminated(s) {
            stopped += 1;
            any_started = true;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if last_terminated(s).is_some() {
            stopped += 1;
            any_started = true;
        } else {
            waiting += 1;
        }
    }
    if failed_init > 0 && policy == "Never" {
        return "Failed";
    }
    if (pending_init > 0 && !any_started) || waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        if pod_is_terminal {
            return if stopped == succeeded {
                "Succeeded"
            } else {
                "Failed"
            };
        }
        if policy == "Always" {
            return "Running";
        }
        if stopped == succeeded {
            return "Succeeded";
        }
        if policy == "Never" {
            return "Failed";
        }
        return "Running";
    }
    "Pending"
}

fn condition(
    old: &[PodCondition],
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    message: Option<String>,
    now: &Time,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let transition = old
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.clone());
    PodCondition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.map(str::to_string),
        message,
        last_transition_time: Some(transition),
        last_probe_time: None,
        observed_generation: None,
    }
}

const KUBELET_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// The pod status the kubelet reports for `input`.
pub fn pod_status(input: &StatusInput<'_>) -> PodStatus {
    let pod = input.pod;
    let spec = pod.spec.clone().unwrap_or_default();
    let old = pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let now = now_time(input.now);
    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let default_reason = if init_specs.is_empty() {
        CONTAINER_CREATING
    } else {
        POD_INITIALIZING
    };
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(input, c, default_reason, true))
        .collect();
    let regular: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| container_status(input, c, default_reason, false))
        .collect();

    let old_phase = old.phase.as_deref().unwrap_or("Pending");
    let old_terminal = matches!(old_phase, "Succeeded" | "Failed");
    let computed = phase(pod, &init, &regular, input.deleting);
    let phase = if old_terminal { old_phase } else { computed };
    let terminal = matches!(phase, "Succeeded" | "Failed");

    let sandbox = input.observed.sandbox().filter(|s| s.ready);
    let host_network = spec.host_network.unwrap_or(false);
    let pod_ips: Vec<String> = if host_network {
        vec![input.node_ip.to_string()]
    } else {
        sandbox.map(|s| s.ips.clone()).unwrap_or_default()
    };
    // a terminal pod keeps the IPs it had
    let pod_ips = if pod_ips.is_empty() && terminal {
        old.pod_ips.iter().flatten().map(|p| p.ip.clone()).collect()
    } else {
        pod_ips
    };

    let incomplete_init: Vec<&str> = init
        .iter()
        .filter(|s| terminated(s).is_none_or(|t| t.exit_code != 0))
        .map(|s| s.name.as_str())
        .collect();
    let any_regular_started = regular
        .iter()
        .any(|s| is_running(s) || terminated(s).is_some() || last_terminated(s).is_some());
    let initialized = incomplete_init.is_empty() || any_regular_started;
    let unready: Vec<&str> = regular
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.as_str())
        .collect();
    let gates_ok = spec.readiness_gates.iter().flatten().all(|g| {
        old_conditions
            .iter()
            .any(|c| c.type_ == g.condition_type && c.status == "True")
    });
    let list = |v: &[&str]| v.join(" ");

    let terminal_reason = match phase {
        "Succeeded" => Some("PodCompleted"),
        "Failed" => Some("PodFailed"),
        _ => None,
    };
    let mut conditions: Vec<PodCondition> = old_conditions
        .iter()
        .filter(|c| !KUBELET_CONDITIONS.contains(&c.type_.as_str()))
        .cloned()
        .collect();
    conditions.push(condition(
        &old_conditions,
        "PodReadyToStartContainers",
        sandbox.is_some() && !terminal,
        None,
        None,
        &now,
    ));
    conditions.push(if initialized {
        condition(
            &old_conditions,
            "Initialized",
            true,
            (phase == "Succeeded").then_some("PodCompleted"),
            None,
            &now,
        )
    } else {
        condition(
            &old_conditions,
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: [{}]",
                list(&incomplete_init)
            )),
            &now,
        )
    });
    let containers_ready = unready.is_empty() && !terminal;
    let (ready_reason, ready_message) = if containers_ready {
        (None, None)
    } else if let Some(r) = terminal_reason {
        (Some(r), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: [{}]",
                list(&unready)
            )),
        )
    };
    let ready = containers_ready && gates_ok;
    let (pod_ready_reason, pod_ready_message) = if ready {
        (None, None)
    } else if containers_ready {
        (
            Some("ReadinessGatesNotReady"),
            Some("corresponding condition of pod readiness gate is not ready".to_string()),
        )
    } else {
        (ready_reason, ready_message.clone())
    };
    conditions.push(condition(
        &old_conditions,
        "Ready",
        ready,
        pod_ready_reason,
        pod_ready_message,
        &now,
    ));
    conditions.push(condition(
        &old_conditions,
        "ContainersReady",
        containers_ready,
        ready_reason,
        ready_message,
        &now,
    ));
    conditions.push(
        old_conditions
            .iter()
            .find(|c| c.type_ == "PodScheduled")
            .cloned()
            .unwrap_or_else(|| condition(&old_conditions, "PodScheduled", true, None, None, &now)),
    );

    let start_time = old.start_time.clone().or_else(|| Some(now.clone()));
    let (reason, message) = if phase == old_phase {
        (old.reason.clone(), old.message.clone())
    } else {
        (None, None)
    };
    PodStatus {
        phase: Some(phase.to_string()),
        conditions: Some(conditions),
        host_ip: Some(input.node_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: input.node_ip.to_string(),
        }]),
        pod_ip: pod_ips.first().cloned(),
        pod_ips: (!pod_ips.is_empty())
            .then(|| pod_ips.iter().map(|ip| PodIP { ip: ip.clone() }).collect()),
        start_time,
        init_container_statuses: (!init.is_empty()).then_some(init),
        container_statuses: Some(regular),
        qos_class: Some(input.qos_class.to_string()),
        reason,
        message,
        nominated_node_name: old.nominated_node_name.clone(),
        ephemeral_container_statuses: old.ephemeral_container_statuses.clone(),
        resize: old.resize.clone(),
        resource_claim_statuses: old.resource_claim_statuses.clone(),
        observed_generation: pod.metadata.generation,
    }
}

/// The pod's labels for a sandbox or container: its own plus the three kubelet labels.
pub fn pod_labels(pod: &Pod) -> BTreeMap<String, String> {
    let mut labels = pod.metadata.labels.clone().unwrap_or_default();
    labels.insert(
        super::LABEL_POD_NAME.into(),
        pod.metadata.name.clone().unwrap_or_default(),
    );
    labels.insert(
        super::LABEL_POD_NAMESPACE.into(),
        pod.metadata.namespace.clone().unwrap_or_default(),
    );
    labels.insert(
        super::LABEL_POD_UID.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: i64 = 1_000_000_000;

    fn pod(spec: serde_json::Value, status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web-x", "namespace": "default", "uid": "u1"},
            "spec": spec,
            "status": status,
        }))
        .unwrap()
    }

    fn one(policy: &str) -> Pod {
        pod(
            json!({"restartPolicy": policy, "containers": [{"name": "web", "image": "busybox"}]}),
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}),
        )
    }

    fn sandbox() -> ObservedSandbox {
        ObservedSandbox {
            id: "sb".into(),
            attempt: 0,
            ready: true,
            created_at: 100 * S,
            ips: vec!["10.42.0.7".into()],
        }
    }

    fn inst(name: &str, rc: i32, state: RunState, exit: i32) -> ObservedContainer {
        ObservedContainer {
            id: format!("{name}-{rc}"),
            sandbox_id: "sb".into(),
            name: name.into(),
            attempt: rc as u32,
            restart_count: rc,
            hash: String::new(),
            state,
            created_at: (101 + rc as i64) * S,
            started_at: (102 + rc as i64) * S,
            finished_at: if state == RunState::Exited {
                (103 + rc as i64) * S
            } else {
                0
            },
            exit_code: exit,
            reason: String::new(),
            message: String::new(),
            image_ref: "docker.io/library/busybox@sha256:abc".into(),
        }
    }

    struct Case {
        pod: Pod,
        obs: ObservedPod,
        probes: HashMap<String, ProbeView>,
        waiting: HashMap<String, Waiting>,
        deleting: bool,
    }

    impl Case {
        fn new(pod: Pod, containers: Vec<ObservedContainer>) -> Case {
            Case {
                pod,
                obs: ObservedPod {
                    sandboxes: vec![sandbox()],
                    containers,
                },
                probes: HashMap::new(),
                waiting: HashMap::new(),
                deleting: false,
            }
        }
        fn ready(mut self, name: &str) -> Case {
            self.probes.insert(
                name.into(),
                ProbeView {
                    ready: true,
                    started: true,
                },
            );
            self
        }
        fn waiting(mut self, name: &str, reason: &str, message: &str) -> Case {
            self.waiting.insert(
                name.into(),
                Waiting {
                    reason: reason.into(),
                    message: message.into(),
                },
            );
            self
        }
        fn status(&self) -> PodStatus {
            pod_status(&StatusInput {
                pod: &self.pod,
                observed: &self.obs,
                probes: &self.probes,
                waiting: &self.waiting,
                node_ip: "192.0.2.10",
                qos_class: "BestEffort",
                deleting: self.deleting,
                now: Timestamp::from_second(2_000).unwrap(),
            })
        }
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    fn cs(s: &PodStatus) -> &ContainerStatus {
        &s.container_statuses.as_ref().unwrap()[0]
    }

    fn waiting_reason(c: &ContainerStatus) -> Option<&str> {
        c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()
    }

    #[test]
    fn no_containers_yet_is_pending_container_creating() {
        let mut case = Case::new(one("Always"), vec![]);
        case.obs.sandboxes.clear();
        let s = case.status();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(waiting_reason(cs(&s)), Some(CONTAINER_CREATING));
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
        assert_eq!(
            cond(&s, "ContainersReady").message.as_deref(),
            Some("containers with unready status: [web]")
        );
        assert_eq!(s.pod_ip, None);
        assert_eq!(s.host_ip.as_deref(), Some("192.0.2.10"));
        assert_eq!(s.qos_class.as_deref(), Some("BestEffort"));
        // the scheduler's condition is kept as it was
        let sched = cond(&s, "PodScheduled");
        assert_eq!(
            sched.last_transition_time.as_ref().unwrap().0.as_second(),
            1_767_225_600
        );
    }

    #[test]
    fn running_and_ready_container() {
        let s = Case::new(one("Always"), vec![inst("web", 0, RunState::Running, 0)])
            .ready("web")
            .status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let c = cs(&s);
        assert!(c.ready);
        assert_eq!(c.started, Some(true));
        assert_eq!(c.container_id.as_deref(), Some("containerd://web-0"));
        assert_eq!(c.image, "busybox");
        assert_eq!(c.image_id, "docker.io/library/busybox@sha256:abc");
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .running
                .as_ref()
                .unwrap()
                .started_at
                .as_ref()
                .unwrap()
                .0
                .as_second(),
            102
        );
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "True");
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.7"));
        assert_eq!(s.pod_ips.as_ref().unwrap()[0].ip, "10.42.0.7");
        assert_eq!(s.start_time.as_ref().unwrap().0.as_second(), 2_000);
    }

    #[test]
    fn running_but_unready_by_probe() {
        let s = Case::new(one("Always"), vec![inst("web", 0, RunState::Running, 0)]).status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert!(!cs(&s).ready);
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(
            cond(&s, "Ready").reason.as_deref(),
            Some("ContainersNotReady")
        );
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state_and_restarts() {
        let s = Case::new(
            one("Always"),
            vec![
                inst("web", 0, RunState::Exited, 1),
                inst("web", 1, RunState::Exited, 1),
            ],
        )
        .waiting(
            "web",
            "CrashLoopBackOff",
            "back-off 20s restarting failed container=web pod=web-x_default(u1)",
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let c = cs(&s);
        assert_eq!(waiting_reason(c), Some("CrashLoopBackOff"));
        assert_eq!(c.restart_count, 1);
        let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        assert_eq!(last.reason.as_deref(), Some("Error"));
        assert_eq!(last.container_id.as_deref(), Some("containerd://web-1"));
        assert_eq!(last.finished_at.as_ref().unwrap().0.as_second(), 104);
    }

    #[test]
    fn restarted_container_reports_the_previous_instance_as_last_state() {
        let s = Case::new(
            one("Always"),
            vec![
                inst("web", 2, RunState::Running, 0),
                inst("web", 1, RunState::Exited, 137),
            ],
        )
        .status();
        let c = cs(&s);
        assert_eq!(c.restart_count, 2);
        assert!(c.state.as_ref().unwrap().running.is_some());
        assert_eq!(
            c.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            137
        );
    }

    #[test]
    fn completed_never_pod_succeeds_and_failed_one_fails() {
        let s = Case::new(one("Never"), vec![inst("web", 0, RunState::Exited, 0)]).status();
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let t = cs(&s).state.as_ref().unwrap().terminated.clone().unwrap();
        assert_eq!(t.reason.as_deref(), Some("Completed"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodCompleted"));
        assert_eq!(
            cond(&s, "Initialized").reason.as_deref(),
            Some("PodCompleted")
        );
        assert_eq!(cond(&s, "PodReadyToStartContainers").status, "False");
        let s = Case::new(one("Never"), vec![inst("web", 0, RunState::Exited, 3)]).status();
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        assert_eq!(cond(&s, "Ready").reason.as_deref(), Some("PodFailed"));
        // OnFailure: success ends the pod, failure keeps it running (it restarts)
        let s = Case::new(one("OnFailure"), vec![inst("web", 0, RunState::Exited, 0)]).status();
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        let s = Case::new(one("OnFailure"), vec![inst("web", 0, RunState::Exited, 1)]).status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        // Always: an exited container is restarted, the pod stays Running
        let s = Case::new(one("Always"), vec![inst("web", 0, RunState::Exited, 0)]).status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
    }

    #[test]
    fn oom_killed_and_runtime_reasons_are_kept() {
        let mut c = inst("web", 0, RunState::Exited, 137);
        c.reason = "OOMKilled".into();
        let s = Case::new(one("Never"), vec![c]).status();
        let t = cs(&s).state.as_ref().unwrap().terminated.clone().unwrap();
        assert_eq!(t.reason.as_deref(), Some("OOMKilled"));
    }

    #[test]
    fn termination_message_is_reported() {
        let mut c = inst("web", 0, RunState::Exited, 2);
        c.message = "disk full".into();
        let s = Case::new(one("Never"), vec![c]).status();
        let t = cs(&s).state.as_ref().unwrap().terminated.clone().unwrap();
        assert_eq!(t.message.as_deref(), Some("disk full"));
    }

    #[test]
    fn terminal_phase_never_changes() {
        let mut p = one("Always");
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        p.status.as_mut().unwrap().pod_ips = Some(vec![PodIP {
            ip: "10.42.0.7".into(),
        }]);
        let mut case = Case::new(p, vec![inst("web", 0, RunState::Exited, 0)]);
        case.obs.sandboxes[0].ready = false;
        let s = case.status();
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.42.0.7"));
    }

    #[test]
    fn image_pull_errors_show_as_waiting_reasons() {
        for reason in [
            "ErrImagePull",
            "ImagePullBackOff",
            "CreateContainerConfigError",
            "InvalidImageName",
        ] {
            let s = Case::new(one("Always"), vec![])
                .waiting("web", reason, "configmap \"x\" not found")
                .status();
            assert_eq!(s.phase.as_deref(), Some("Pending"));
            let c = cs(&s);
            assert_eq!(waiting_reason(c), Some(reason));
            assert_eq!(
                c.state
                    .as_ref()
                    .unwrap()
                    .waiting
                    .as_ref()
                    .unwrap()
                    .message
                    .as_deref(),
                Some("configmap \"x\" not found")
            );
        }
    }

    fn with_init(policy: &str) -> Pod {
        pod(
            json!({"restartPolicy": policy,
                "initContainers": [{"name": "setup", "image": "busybox"}],
                "containers": [{"name": "web", "image": "busybox"}]}),
            json!({}),
        )
    }

    #[test]
    fn init_running_is_pending_pod_initializing() {
        let s = Case::new(
            with_init("Always"),
            vec![inst("setup", 0, RunState::Running, 0)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(waiting_reason(cs(&s)), Some(POD_INITIALIZING));
        let init = &s.init_container_statuses.as_ref().unwrap()[0];
        assert!(init.state.as_ref().unwrap().running.is_some());
        assert!(!init.ready);
        let c = cond(&s, "Initialized");
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("ContainersNotInitialized"));
        assert_eq!(
            c.message.as_deref(),
            Some("containers with incomplete status: [setup]")
        );
        // PodScheduled is added when the old status lacks it
        assert_eq!(cond(&s, "PodScheduled").status, "True");
    }

    #[test]
    fn init_done_then_main_runs() {
        let s = Case::new(
            with_init("Always"),
            vec![
                inst("setup", 0, RunState::Exited, 0),
                inst("web", 0, RunState::Running, 0),
            ],
        )
        .ready("web")
        .status();
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(cond(&s, "Initialized").status, "True");
        let init = &s.init_container_statuses.as_ref().unwrap()[0];
        assert!(init.ready);
        assert_eq!(
            init.state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("Completed")
        );
    }

    #[test]
    fn failed_init_fails_a_never_pod_and_crash_loops_otherwise() {
        let s = Case::new(
            with_init("Never"),
            vec![inst("setup", 0, RunState::Exited, 1)],
        )
        .status();
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let s = Case::new(
            with_init("Always"),
            vec![inst("setup", 0, RunState::Exited, 1)],
        )
        .waiting("setup", "CrashLoopBackOff", "back-off 10s")
        .status();
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let init = &s.init_container_statuses.as_ref().unwrap()[0];
        assert_eq!(waiting_reason(init), Some("CrashLoopBackOff"));
        assert_eq!(
            init.last_state
                .as_ref()
                .unwrap()
                .terminated
                .as_ref()
                .unwrap()
                .exit_code,
            1
        );
    }

    #[test]
    fn deleting_pod_with_stopped_containers_gets_a_final_phase() {
        let mut case = Case::new(one("Always"), vec![inst("web", 0, RunState::Exited, 137)]);
        case.deleting = true;
        assert_eq!(case.status().phase.as_deref(), Some("Failed"));
        let mut case = Case::new(one("Always"), vec![inst("web", 0, RunState::Exited, 0)]);
        case.deleting = true;
        assert_eq!(case.status().phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn transition_times_are_kept_while_a_condition_holds() {
        let mut p = one("Always");
        p.status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
            .push(PodCondition {
                type_: "Ready".into(),
                status: "True".into(),
                last_transition_time: Some(Time(Timestamp::from_second(500).unwrap())),
                ..Default::default()
            });
        let s = Case::new(p.clone(), vec![inst("web", 0, RunState::Running, 0)])
            .ready("web")
            .status();
        assert_eq!(
            cond(&s, "Ready")
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .as_second(),
            500
        );
        let s = Case::new(p, vec![inst("web", 0, RunState::Running, 0)]).status();
        assert_eq!(
            cond(&s, "Ready")
                .last_transition_time
                .as_ref()
                .unwrap()
                .0
                .as_second(),
            2_000
        );
    }

    #[test]
    fn conditions_come_in_upstream_order_after_foreign_ones() {
        let mut p = one("Always");
        p.status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
            .insert(
                0,
                PodCondition {
                    type_: "DisruptionTarget".into(),
                    status: "True".into(),
                    ..Default::default()
                },
            );
        let s = Case::new(p, vec![]).status();
        let types: Vec<&str> = s
            .conditions
            .as_ref()
            .unwrap()
            .iter()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(
            types,
            vec![
                "DisruptionTarget",
                "PodReadyToStartContainers",
                "Initialized",
                "Ready",
                "ContainersReady",
                "PodScheduled"
            ]
        );
    }

    #[test]
    fn host_network_pods_use_the_node_ip() {
        let p = pod(
            json!({"hostNetwork": true, "containers": [{"name": "web"}]}),
            json!({}),
        );
        let mut case = Case::new(p, vec![inst("web", 0, RunState::Running, 0)]);
        case.obs.sandboxes[0].ips.clear();
        assert_eq!(case.status().pod_ip.as_deref(), Some("192.0.2.10"));
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let p = pod(
            json!({"readinessGates": [{"conditionType": "example.com/lb"}], "containers": [{"name": "web"}]}),
            json!({}),
        );
        let s = Case::new(p, vec![inst("web", 0, RunState::Running, 0)])
            .ready("web")
            .status();
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(
            cond(&s, "Ready").reason.as_deref(),
            Some("ReadinessGatesNotReady")
        );
    }
}
