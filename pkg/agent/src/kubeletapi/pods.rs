//! Finding a pod and its containers in the runtime by the kubelet's CRI labels (namespace,
//! name, uid, container name), the way the kubelet API resolves `{ns}/{pod}/{container}`.

use std::collections::HashMap;

use k8s_cri::v1::{
    Container, ContainerFilter, ContainerState, ContainerStatus, ContainerStatusRequest,
    ListContainersRequest, ListPodSandboxRequest, PodSandbox, PodSandboxFilter, PodSandboxState,
};

use super::ApiError;
use crate::cri::Cri;
use crate::kubelet::spec::LABEL_CONTAINER_NAME;
use crate::kubelet::{LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID};

fn runtime_error(what: &str, s: tonic::Status) -> ApiError {
    ApiError::internal(format!("{what}: {}", s.message()))
}

/// The pod's sandbox: the ready one, else the newest; `None` when the runtime has no sandbox
/// for `ns/name`.
pub async fn find_sandbox(cri: &Cri, ns: &str, name: &str) -> Result<Option<PodSandbox>, ApiError> {
    let labels = HashMap::from([
        (LABEL_POD_NAMESPACE.to_string(), ns.to_string()),
        (LABEL_POD_NAME.to_string(), name.to_string()),
    ]);
    let mut rt = cri.runtime.clone();
    let items = rt
        .list_pod_sandbox(ListPodSandboxRequest {
            filter: Some(PodSandboxFilter {
                label_selector: labels,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| runtime_error("list pod sandboxes", s))?
        .into_inner()
        .items;
    Ok(pick_sandbox(items))
}

/// The ready sandbox if there is one, else the newest.
pub fn pick_sandbox(items: Vec<PodSandbox>) -> Option<PodSandbox> {
    items.into_iter().max_by_key(|s| {
        (
            s.state == PodSandboxState::SandboxReady as i32,
            s.created_at,
        )
    })
}

/// The pod uid a sandbox belongs to.
pub fn sandbox_uid(s: &PodSandbox) -> String {
    s.labels
        .get(LABEL_POD_UID)
        .cloned()
        .or_else(|| s.metadata.as_ref().map(|m| m.uid.clone()))
        .unwrap_or_default()
}

/// Every instance of container `name` of pod `uid`, newest attempt first.
pub async fn instances(cri: &Cri, uid: &str, name: &str) -> Result<Vec<Container>, ApiError> {
    let labels = HashMap::from([
        (LABEL_POD_UID.to_string(), uid.to_string()),
        (LABEL_CONTAINER_NAME.to_string(), name.to_string()),
    ]);
    let mut rt = cri.runtime.clone();
    let items = rt
        .list_containers(ListContainersRequest {
            filter: Some(ContainerFilter {
                label_selector: labels,
                ..Default::default()
            }),
        })
        .await
        .map_err(|s| runtime_error("list containers", s))?
        .into_inner()
        .containers;
    Ok(newest_first(items))
}

/// Sorts container instances by attempt, then creation time, newest first.
pub fn newest_first(mut items: Vec<Container>) -> Vec<Container> {
    items.sort_by_key(|c| {
        std::cmp::Reverse((c.metadata.as_ref().map_or(0, |m| m.attempt), c.created_at))
    });
    items
}

/// The runtime status of one container.
pub async fn status(cri: &Cri, id: &str) -> Result<ContainerStatus, ApiError> {
    let mut rt = cri.runtime.clone();
    rt.container_status(ContainerStatusRequest {
        container_id: id.to_string(),
        verbose: false,
    })
    .await
    .map_err(|s| runtime_error("container status", s))?
    .into_inner()
    .status
    .ok_or_else(|| ApiError::internal(format!("container {id} has no status")))
}

/// Whether container `id` is still running (an unknown container is not).
pub async fn is_running(cri: &Cri, id: &str) -> bool {
    matches!(status(cri, id).await, Ok(s) if s.state == ContainerState::ContainerRunning as i32)
}

/// A container the kubelet API acts on: the pod it is in and its runtime record.
#[derive(Debug, Clone)]
pub struct Target {
    pub sandbox: PodSandbox,
    pub container: Container,
}

/// Resolves `{ns}/{pod}/{container}` to the current (newest) instance, with upstream's errors:
/// 404 for an unknown pod, 400 for a container that is not running when `need_running`.
pub async fn resolve(
    cri: &Cri,
    client: Option<&kube::Client>,
    ns: &str,
    pod: &str,
    container: &str,
    need_running: bool,
) -> Result<Target, ApiError> {
    let Some(sandbox) = find_sandbox(cri, ns, pod).await? else {
        return Err(no_sandbox(client, ns, pod, container).await);
    };
    let uid = sandbox_uid(&sandbox);
    let Some(current) = instances(cri, &uid, container).await?.into_iter().next() else {
        return Err(no_container(client, ns, pod, container).await);
    };
    if need_running && current.state != ContainerState::ContainerRunning as i32 {
        return Err(ApiError::bad_request(format!(
            "container {container} is not running (state={})",
            state_name(current.state)
        )));
    }
    Ok(Target {
        sandbox,
        container: current,
    })
}

/// upstream's container state names.
pub fn state_name(state: i32) -> &'static str {
    match ContainerState::try_from(state) {
        Ok(ContainerState::ContainerCreated) => "CONTAINER_CREATED",
        Ok(ContainerState::ContainerRunning) => "CONTAINER_RUNNING",
        Ok(ContainerState::ContainerExited) => "CONTAINER_EXITED",
        _ => "CONTAINER_UNKNOWN",
    }
}

/// The API object of a pod this node may read (`None` when absent or not this node's).
async fn api_pod(
    client: Option<&kube::Client>,
    ns: &str,
    pod: &str,
) -> Option<k8s_openapi::api::core::v1::Pod> {
    let client = client?;
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client.clone(), ns);
    api.get_opt(pod).await.ok().flatten()
}

fn has_container(p: &k8s_openapi::api::core::v1::Pod, name: &str) -> bool {
    p.spec.as_ref().is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| c.name == name)
            || s.ephemeral_containers
                .iter()
                .flatten()
                .any(|c| c.name == name)
    })
}

/// No sandbox: the pod is unknown here (404), or known but not started yet (400).
async fn no_sandbox(
    client: Option<&kube::Client>,
    ns: &str,
    pod: &str,
    container: &str,
) -> ApiError {
    match api_pod(client, ns, pod).await {
        Some(p) if has_container(&p, container) => ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        )),
        Some(_) => ApiError::not_found(format!("container {container} is not valid for pod {pod}")),
        None => ApiError::not_found(format!("pod \"{pod}\" does not exist")),
    }
}

/// A sandbox but no such container yet: not created yet (400) or not in the pod (404).
async fn no_container(
    client: Option<&kube::Client>,
    ns: &str,
    pod: &str,
    container: &str,
) -> ApiError {
    match api_pod(client, ns, pod).await {
        Some(p) if has_container(&p, container) => ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating"
        )),
        _ => ApiError::not_found(format!("container {container} is not valid for pod {pod}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{ContainerMetadata, PodSandboxMetadata};

    fn sandbox(id: &str, ready: bool, created: i64) -> PodSandbox {
        PodSandbox {
            id: id.into(),
            state: if ready {
                PodSandboxState::SandboxReady as i32
            } else {
                PodSandboxState::SandboxNotready as i32
            },
            created_at: created,
            metadata: Some(PodSandboxMetadata {
                uid: format!("uid-{id}"),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_ready_sandbox_wins_then_the_newest() {
        let picked = pick_sandbox(vec![
            sandbox("old-ready", true, 1),
            sandbox("new-dead", false, 5),
        ]);
        assert_eq!(picked.unwrap().id, "old-ready");
        let picked = pick_sandbox(vec![sandbox("a", false, 1), sandbox("b", false, 5)]);
        assert_eq!(sandbox_uid(picked.as_ref().unwrap()), "uid-b");
        assert!(pick_sandbox(vec![]).is_none());
    }

    #[test]
    fn instances_sort_by_attempt() {
        let c = |id: &str, attempt: u32, created: i64| Container {
            id: id.into(),
            created_at: created,
            metadata: Some(ContainerMetadata {
                name: "c".into(),
                attempt,
            }),
            ..Default::default()
        };
        let sorted = newest_first(vec![c("a0", 0, 9), c("a2", 2, 1), c("a1", 1, 5)]);
        let ids: Vec<_> = sorted.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["a2", "a1", "a0"]);
        assert_eq!(
            state_name(ContainerState::ContainerExited as i32),
            "CONTAINER_EXITED"
        );
    }
}
