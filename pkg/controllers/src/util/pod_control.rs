//! Creating and deleting a controller's pods with events (upstream's `PodControl` and
//! `slowStartBatch`): creates go out in batches of 1, 2, 4, … and stop after the first batch
//! with a failure, so a quota or admission error costs one request, not hundreds; every
//! create and delete records `SuccessfulCreate`/`FailedCreate`/`SuccessfulDelete`/
//! `FailedDelete` on the owner with upstream's messages.

use super::{api_message, is_not_found};
use crate::events::Recorder;
use futures::future::join_all;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{Api, DeleteParams, PostParams, Preconditions};
use kube::Resource;

/// Upstream's event reasons (`pkg/controller/controller_utils.go`).
pub const FAILED_CREATE: &str = "FailedCreate";
pub const SUCCESSFUL_CREATE: &str = "SuccessfulCreate";
pub const FAILED_DELETE: &str = "FailedDelete";
pub const SUCCESSFUL_DELETE: &str = "SuccessfulDelete";

/// Upstream's slow-start batch sizes: 1, 2, 4, … until `total` is covered.
pub fn slow_start_batches(total: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let (mut left, mut size) = (total, 1usize);
    while left > 0 {
        let b = size.min(left);
        out.push(b);
        left -= b;
        size = size.saturating_mul(2);
    }
    out
}

/// `items` cut into slow-start batches.
pub fn slow_start<T>(items: &[T]) -> Vec<&[T]> {
    let mut rest = items;
    slow_start_batches(items.len())
        .into_iter()
        .map(|n| {
            let (batch, tail) = rest.split_at(n);
            rest = tail;
            batch
        })
        .collect()
}

/// A pod `owner` creates from `template`: [`super::child_meta`], generateName `<prefix>-`,
/// the template's spec.
pub fn pod_from_template<K>(owner: &K, template: &PodTemplateSpec, prefix: &str) -> Pod
where
    K: Resource<DynamicType = ()>,
{
    let mut metadata = super::child_meta(owner, template.metadata.as_ref());
    metadata.generate_name = Some(format!("{prefix}-"));
    Pod {
        metadata,
        spec: template.spec.clone(),
        status: None,
    }
}

/// What a slow-start create did.
#[derive(Debug, Default)]
pub struct Created {
    /// The pods the API created, in order.
    pub pods: Vec<Pod>,
    /// The last create error, if any create failed.
    pub error: Option<kube::Error>,
    /// How many creates failed or were never tried after a failed batch.
    pub not_created: usize,
}

impl Created {
    /// The names of the created pods.
    pub fn names(&self) -> Vec<String> {
        self.pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }
}

/// Creates and deletes pods for controllers, recording events through one recorder.
pub struct PodControl {
    client: kube::Client,
    recorder: Recorder,
}

impl PodControl {
    /// A pod control whose events come from `component` (e.g. `replicaset-controller`).
    pub fn new(client: kube::Client, component: &str) -> Self {
        PodControl {
            recorder: Recorder::new(client.clone(), component),
            client,
        }
    }

    /// The event recorder (for the controller's other events).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Creates `pods` in namespace `ns` for `owner` in slow-start batches, recording an event
    /// per create; stops after the first batch in which a create failed.
    pub async fn create_pods<K>(&self, owner: &K, ns: &str, pods: &[Pod]) -> Created
    where
        K: Resource<DynamicType = ()>,
    {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let post = PostParams::default();
        let mut out = Created::default();
        for batch in slow_start(pods) {
            let results = join_all(batch.iter().map(|p| api.create(&post, p))).await;
            for r in results {
                match r {
                    Ok(p) => {
                        let name = p.metadata.name.as_deref().unwrap_or("");
                        let msg = format!("Created pod: {name}");
                        self.recorder
                            .record(owner, "Normal", SUCCESSFUL_CREATE, &msg)
                            .await;
                        out.pods.push(p);
                    }
                    Err(e) => {
                        let msg = format!("Error creating: {}", api_message(&e));
                        self.recorder
                            .record(owner, "Warning", FAILED_CREATE, &msg)
                            .await;
                        out.error = Some(e);
                    }
                }
            }
            if out.error.is_some() {
                break;
            }
        }
        out.not_created = pods.len() - out.pods.len();
        out
    }

    /// Deletes pod `ns/name` of `owner` (only the pod with `uid`, when given). `Ok(true)`: it
    /// was deleted; `Ok(false)`: it was already gone (404) or replaced (409 on the uid
    /// precondition). Other errors record `FailedDelete`.
    pub async fn delete_pod<K>(
        &self,
        owner: &K,
        ns: &str,
        name: &str,
        uid: Option<&str>,
    ) -> Result<bool, kube::Error>
    where
        K: Resource<DynamicType = ()>,
    {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            preconditions: uid.map(|u| Preconditions {
                uid: Some(u.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(name, &dp).await {
            Ok(_) => {
                let msg = format!("Deleted pod: {name}");
                self.recorder
                    .record(owner, "Normal", SUCCESSFUL_DELETE, &msg)
                    .await;
                Ok(true)
            }
            Err(e) if is_not_found(&e) => Ok(false),
            Err(kube::Error::Api(s)) if uid.is_some() && s.code == 409 => Ok(false),
            Err(e) => {
                let msg = format!("Error deleting: {}", api_message(&e));
                self.recorder
                    .record(owner, "Warning", FAILED_DELETE, &msg)
                    .await;
                Err(e)
            }
        }
    }

    /// Deletes `pods` (name, uid) one by one with a uid precondition each; pods already gone
    /// or replaced are skipped. Returns the uids deleted, or the first other error with the
    /// uids deleted before it (for the expectations).
    pub async fn delete_pods<K>(
        &self,
        owner: &K,
        ns: &str,
        pods: &[(String, String)],
    ) -> Result<Vec<String>, (kube::Error, Vec<String>)>
    where
        K: Resource<DynamicType = ()>,
    {
        let mut deleted = vec![];
        for (name, uid) in pods {
            match self.delete_pod(owner, ns, name, Some(uid)).await {
                Ok(true) => deleted.push(uid.clone()),
                Ok(false) => {}
                Err(e) => return Err((e, deleted)),
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use kube::client::Body;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// One API request as the fake server saw it: method, path, and the time it arrived.
    type Seen = Arc<Mutex<Vec<(String, String, tokio::time::Instant)>>>;

    /// A kube client over an in-process service: pod creates take 10 ms and succeed until
    /// `fail_after` of them did, events are accepted, deletes answer `delete_code`.
    fn client(fail_after: usize, delete_code: u16) -> (kube::Client, Seen) {
        let seen: Seen = Arc::default();
        let creates = Arc::new(AtomicUsize::new(0));
        let s = seen.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let (s, creates) = (s.clone(), creates.clone());
            async move {
                let method = req.method().to_string();
                let path = req.uri().path().to_string();
                s.lock()
                    .unwrap()
                    .push((method.clone(), path.clone(), tokio::time::Instant::now()));
                let (code, body) = if path.ends_with("/pods") && method == "POST" {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    let n = creates.fetch_add(1, Ordering::SeqCst);
                    if n < fail_after {
                        let pod = serde_json::json!({"apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": format!("p{n}"), "namespace": "ns"}});
                        (201, pod.to_string())
                    } else {
                        let st = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                            "status": "Failure", "code": 403, "reason": "Forbidden",
                            "message": "exceeded quota: pods"});
                        (403, st.to_string())
                    }
                } else if method == "DELETE" {
                    let st = serde_json::json!({"kind": "Status", "apiVersion": "v1",
                        "status": if delete_code == 200 { "Success" } else { "Failure" },
                        "code": delete_code, "message": "pods \"x\" not found"});
                    (delete_code, st.to_string())
                } else {
                    // events: echo an empty Event back
                    let ev = serde_json::json!({"apiVersion": "v1", "kind": "Event",
                        "metadata": {"name": "e", "namespace": "ns"},
                        "involvedObject": {}});
                    (201, ev.to_string())
                };
                let resp = Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(body.into_bytes()))
                    .unwrap();
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        (kube::Client::new(svc, "ns"), seen)
    }

    fn owner() -> ReplicaSet {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web".into());
        rs.metadata.namespace = Some("ns".into());
        rs.metadata.uid = Some("u1".into());
        rs
    }

    fn pod_creates(seen: &Seen) -> Vec<tokio::time::Instant> {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(m, p, _)| m == "POST" && p.ends_with("/pods"))
            .map(|(_, _, t)| *t)
            .collect()
    }

    fn events(seen: &Seen) -> usize {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|(_, p, _)| p.contains("/events"))
            .count()
    }

    #[test]
    fn batches_double() {
        assert_eq!(slow_start_batches(10), vec![1, 2, 4, 3]);
        assert!(slow_start_batches(0).is_empty());
        let items: Vec<u32> = (1..=8).collect();
        let sizes: Vec<usize> = slow_start(&items).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, vec![1, 2, 4, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn creates_in_slow_start_batches_with_events() {
        let (c, seen) = client(usize::MAX, 200);
        let pc = PodControl::new(c, "test-controller");
        let out = pc
            .create_pods(&owner(), "ns", &vec![Pod::default(); 7])
            .await;
        assert!(out.error.is_none());
        assert_eq!(
            out.names(),
            ["p0", "p1", "p2", "p3", "p4", "p5", "p6"].map(String::from)
        );
        assert_eq!(out.not_created, 0);
        // batches 1, 2, 4: the creates of one batch arrive together, 10 ms after the last batch
        let times = pod_creates(&seen);
        let start = times[0];
        let offsets: Vec<u128> = times.iter().map(|t| (*t - start).as_millis()).collect();
        assert_eq!(offsets.len(), 7);
        assert_eq!(offsets[0], 0);
        assert!(
            offsets[1..3].iter().all(|o| (10..20).contains(o)),
            "{offsets:?}"
        );
        assert!(
            offsets[3..].iter().all(|o| (20..30).contains(o)),
            "{offsets:?}"
        );
        assert_eq!(events(&seen), 7, "one SuccessfulCreate per pod");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_batch_stops_the_creates_and_records_failed_create() {
        let (c, seen) = client(2, 200);
        let pc = PodControl::new(c, "daemonset-controller");
        let out = pc
            .create_pods(&owner(), "ns", &vec![Pod::default(); 10])
            .await;
        // batch 1 (p0), batch 2 (p1 + a failure): stop there
        assert_eq!(out.names(), ["p0", "p1"].map(String::from));
        assert_eq!(out.not_created, 8);
        assert_eq!(pod_creates(&seen).len(), 3);
        let Some(kube::Error::Api(s)) = &out.error else {
            panic!("the create error is returned: {:?}", out.error);
        };
        assert_eq!(s.code, 403);
        assert_eq!(
            events(&seen),
            3,
            "two SuccessfulCreate and one FailedCreate"
        );
    }

    #[tokio::test]
    async fn deletes_tolerate_gone_pods() {
        let (c, _) = client(0, 404);
        let pc = PodControl::new(c, "test-controller");
        assert!(!pc.delete_pod(&owner(), "ns", "x", None).await.unwrap());
        let (c, seen) = client(0, 200);
        let pc = PodControl::new(c, "test-controller");
        let pods = [
            ("a".to_string(), "ua".to_string()),
            ("b".into(), "ub".into()),
        ];
        assert_eq!(
            pc.delete_pods(&owner(), "ns", &pods).await.unwrap(),
            ["ua", "ub"]
        );
        assert_eq!(events(&seen), 2);
        let (c, seen) = client(0, 500);
        let pc = PodControl::new(c, "test-controller");
        let err = pc.delete_pods(&owner(), "ns", &pods).await.unwrap_err();
        assert!(err.1.is_empty());
        assert_eq!(events(&seen), 1, "FailedDelete");
    }
}
