//! What containerd's CRI holds, grouped by pod uid (the kubelet keeps no database: after a
//! restart everything is rebuilt from labels and annotations), and the stop/remove calls.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_cri::v1::{
    ContainerFilter, ContainerStatusRequest, ListContainersRequest, ListPodSandboxRequest,
    PodSandboxFilter, PodSandboxStatusRequest, RemoveContainerRequest, RemovePodSandboxRequest,
    StopContainerRequest, StopPodSandboxRequest,
};

use super::spec::{ANN_HASH, ANN_RESTART_COUNT, ANN_TERMINATION_POLICY, LABEL_CONTAINER_NAME};
use super::status::{ObservedContainer, ObservedPod, ObservedSandbox, RunState};
use super::LABEL_POD_UID;
use crate::cri::Cri;

/// Largest termination message kept (upstream: 4096 bytes).
const MAX_MESSAGE: usize = 4096;
/// `FallbackToLogsOnError`: at most this many log lines / bytes.
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

fn run_state(v: i32) -> RunState {
    match v {
        0 => RunState::Created,
        1 => RunState::Running,
        2 => RunState::Exited,
        _ => RunState::Unknown,
    }
}

/// One cheap listing of everything: per pod uid, the ids and states of its sandboxes and
/// containers (the PLEG fingerprint).
pub async fn fingerprints(cri: &Cri) -> Result<HashMap<String, Vec<(String, i32)>>, String> {
    let mut rt = cri.runtime.clone();
    let sandboxes = rt
        .list_pod_sandbox(ListPodSandboxRequest { filter: None })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .items;
    let containers = rt
        .list_containers(ListContainersRequest { filter: None })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .containers;
    let mut out: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    for s in sandboxes {
        if let Some(uid) = s.labels.get(LABEL_POD_UID) {
            out.entry(uid.clone()).or_default().push((s.id, s.state));
        }
    }
    for c in containers {
        if let Some(uid) = c.labels.get(LABEL_POD_UID) {
            out.entry(uid.clone())
                .or_default()
                .push((c.id, 10 + c.state));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// The host file mounted at a container instance's terminationMessagePath.
pub fn termination_file(
    root_dir: &Path,
    uid: &str,
    container: &str,
    restart_count: i32,
) -> PathBuf {
    root_dir
        .join("pods")
        .join(uid)
        .join("containers")
        .join(container)
        .join(restart_count.to_string())
}

/// The text of CRI log lines (`<time> <stream> <P|F> <text>`), partial lines joined.
pub fn log_text(raw: &str) -> String {
    let mut out = String::new();
    for line in raw.lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, _, tag, text) = (parts.next(), parts.next(), parts.next(), parts.next());
        out.push_str(text.unwrap_or(""));
        if tag != Some("P") {
            out.push('\n');
        }
    }
    out
}

/// The last `FALLBACK_LINES` lines, at most `FALLBACK_BYTES` bytes, of a log's text.
pub fn log_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(FALLBACK_LINES);
    let mut tail = lines[start..].join("\n");
    if tail.len() > FALLBACK_BYTES {
        let mut cut = tail.len() - FALLBACK_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail = tail[cut..].to_string();
    }
    tail
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
    s
}

/// A running container's use of memory (working set) and disk (writable layer), in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub memory: u64,
    pub disk: u64,
}

/// Per pod uid, per container name: what the runtime's stats say it uses now
/// (`ListContainerStats`; the eviction manager ranks pods by it).
pub async fn container_usage(cri: &Cri) -> Result<HashMap<String, HashMap<String, Usage>>, String> {
    let mut rt = cri.runtime.clone();
    let stats = rt
        .list_container_stats(k8s_cri::v1::ListContainerStatsRequest { filter: None })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .stats;
    let mut out: HashMap<String, HashMap<String, Usage>> = HashMap::new();
    for st in stats {
        let Some(attr) = st.attributes else { continue };
        let Some(uid) = attr.labels.get(LABEL_POD_UID) else {
            continue;
        };
        let name = attr
            .labels
            .get(LABEL_CONTAINER_NAME)
            .cloned()
            .or_else(|| attr.metadata.map(|m| m.name))
            .unwrap_or_default();
        let memory = st
            .memory
            .and_then(|m| m.working_set_bytes)
            .map_or(0, |v| v.value);
        let disk = st
            .writable_layer
            .and_then(|f| f.used_bytes)
            .map_or(0, |v| v.value);
        let u = out.entry(uid.clone()).or_default().entry(name).or_default();
        u.memory += memory;
        u.disk += disk;
    }
    Ok(out)
}

/// Everything the runtime holds for pod `uid`, with each container's full status and
/// termination message; sandbox IPs come from PodSandboxStatus of ready sandboxes.
pub async fn observe_pod(cri: &Cri, uid: &str, root_dir: &Path) -> Result<ObservedPod, String> {
    let mut rt = cri.runtime.clone();
    let selector: HashMap<String, String> = [(LABEL_POD_UID.to_string(), uid.to_string())].into();
    let sandboxes = rt
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: selector.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .items;
    let mut pod = ObservedPod::default();
    for s in sandboxes {
        let ready = s.state == 0;
        let mut ips = Vec::new();
        if ready {
            if let Ok(st) = rt
                .pod_sandbox_status(PodSandboxStatusRequest {
                    pod_sandbox_id: s.id.clone(),
                    verbose: false,
                })
                .await
            {
                if let Some(net) = st.into_inner().status.and_then(|s| s.network) {
                    if !net.ip.is_empty() {
                        ips.push(net.ip);
                    }
                    ips.extend(net.additional_ips.into_iter().map(|p| p.ip));
                }
            }
        }
        pod.sandboxes.push(ObservedSandbox {
            id: s.id,
            attempt: s.metadata.map(|m| m.attempt).unwrap_or(0),
            ready,
            created_at: s.created_at,
            ips,
        });
    }
    let containers = rt
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: selector,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner()
        .containers;
    for c in containers {
        let Ok(resp) = rt
            .container_status(ContainerStatusRequest {
                container_id: c.id.clone(),
                verbose: false,
            })
            .await
        else {
            continue; // removed meanwhile
        };
        let Some(st) = resp.into_inner().status else {
            continue;
        };
        let name = st
            .labels
            .get(LABEL_CONTAINER_NAME)
            .cloned()
            .or_else(|| st.metadata.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default();
        let restart_count = st
            .annotations
            .get(ANN_RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| st.metadata.as_ref().map(|m| m.attempt as i32).unwrap_or(0));
        let state = run_state(st.state);
        let mut message = String::new();
        if state == RunState::Exited {
            let file = termination_file(root_dir, uid, &name, restart_count);
            message = std::fs::read_to_string(&file).unwrap_or_default();
            let fallback = st
                .annotations
                .get(ANN_TERMINATION_POLICY)
                .map(String::as_str)
                == Some("FallbackToLogsOnError");
            if message.is_empty() && fallback && st.exit_code != 0 && !st.log_path.is_empty() {
                message = log_tail(&log_text(
                    &std::fs::read_to_string(&st.log_path).unwrap_or_default(),
                ));
            }
            if message.is_empty() && !st.message.is_empty() {
                message = st.message.clone();
            }
            message = cut(message, MAX_MESSAGE);
        }
        pod.containers.push(ObservedContainer {
            id: st.id,
            sandbox_id: c.pod_sandbox_id,
            name,
            attempt: st.metadata.map(|m| m.attempt).unwrap_or(0),
            restart_count,
            hash: st.annotations.get(ANN_HASH).cloned().unwrap_or_default(),
            state,
            created_at: st.created_at,
            started_at: st.started_at,
            finished_at: st.finished_at,
            exit_code: st.exit_code,
            reason: st.reason,
            message,
            image_ref: st.image_ref,
        });
    }
    Ok(pod)
}

/// StopContainer with `grace_secs` (0 kills at once); a missing container is not an error.
pub async fn stop_container(cri: &Cri, id: &str, grace_secs: i64) -> Result<(), String> {
    let mut rt = cri.runtime.clone();
    match rt
        .stop_container(StopContainerRequest {
            container_id: id.to_string(),
            timeout: grace_secs.max(0),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(format!("stop container {id}: {}", s.message())),
    }
}

pub async fn remove_container(cri: &Cri, id: &str) -> Result<(), String> {
    let mut rt = cri.runtime.clone();
    match rt
        .remove_container(RemoveContainerRequest {
            container_id: id.to_string(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(format!("remove container {id}: {}", s.message())),
    }
}

pub async fn stop_sandbox(cri: &Cri, id: &str) -> Result<(), String> {
    let mut rt = cri.runtime.clone();
    match rt
        .stop_pod_sandbox(StopPodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(format!("stop pod sandbox {id}: {}", s.message())),
    }
}

pub async fn remove_sandbox(cri: &Cri, id: &str) -> Result<(), String> {
    let mut rt = cri.runtime.clone();
    match rt
        .remove_pod_sandbox(RemovePodSandboxRequest {
            pod_sandbox_id: id.to_string(),
        })
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(()),
        Err(s) => Err(format!("remove pod sandbox {id}: {}", s.message())),
    }
}

/// Instances to remove: per container name all but the newest `keep`, and every instance of
/// a name the pod no longer has.
pub fn prune(pod: &ObservedPod, spec_names: &[&str], keep: usize) -> Vec<String> {
    let mut by_name: HashMap<&str, Vec<&ObservedContainer>> = HashMap::new();
    for c in &pod.containers {
        by_name.entry(c.name.as_str()).or_default().push(c);
    }
    let mut out = Vec::new();
    for (name, mut v) in by_name {
        v.sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.attempt, c.created_at)));
        let keep = if spec_names.contains(&name) { keep } else { 0 };
        out.extend(
            v.into_iter()
                .skip(keep)
                .filter(|c| c.state != RunState::Running)
                .map(|c| c.id.clone()),
        );
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, name: &str, rc: i32, state: RunState) -> ObservedContainer {
        ObservedContainer {
            id: id.into(),
            sandbox_id: "s".into(),
            name: name.into(),
            attempt: rc as u32,
            restart_count: rc,
            hash: String::new(),
            state,
            created_at: rc as i64,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            reason: String::new(),
            message: String::new(),
            image_ref: String::new(),
        }
    }

    #[test]
    fn prune_keeps_the_two_newest_per_container_and_drops_unknown_names() {
        let pod = ObservedPod {
            sandboxes: vec![],
            containers: vec![
                inst("a0", "web", 0, RunState::Exited),
                inst("a1", "web", 1, RunState::Exited),
                inst("a2", "web", 2, RunState::Running),
                inst("b0", "old", 0, RunState::Exited),
                inst("c0", "side", 0, RunState::Exited),
            ],
        };
        assert_eq!(prune(&pod, &["web", "side"], 2), vec!["a0", "b0"]);
    }

    #[test]
    fn cri_log_lines_become_text_and_tails_are_bounded() {
        let raw = "2026-01-01T00:00:00.1Z stdout F hello\n2026-01-01T00:00:00.2Z stderr P par\n2026-01-01T00:00:00.3Z stderr F tial\n";
        assert_eq!(log_text(raw), "hello\npartial\n");
        let many: String = (0..200).map(|i| format!("line {i}\n")).collect();
        let tail = log_tail(&many);
        assert!(tail.starts_with("line 120"), "{tail}");
        assert!(tail.ends_with("line 199"));
        let big = "x".repeat(5000);
        assert_eq!(log_tail(&big).len(), FALLBACK_BYTES);
    }

    #[test]
    fn termination_files_live_under_the_pod_dir() {
        let p = termination_file(Path::new("/d/agent"), "u1", "web", 3);
        assert_eq!(p, PathBuf::from("/d/agent/pods/u1/containers/web/3"));
    }
}
