//! In-process tests of the write rules against a real SQLite store: optimistic concurrency,
//! status isolation, generation, finalizer-only edits while deleting, delete preconditions,
//! the reservation release on a conflict, and evictions under a PodDisruptionBudget.

use super::*;
use crate::alloc::{IpAllocator, PortAllocator};
use crate::request;
use crate::state::{AppState, ServerConfig};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

struct Env {
    st: Arc<AppState>,
    _dir: tempfile::TempDir,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = skiff_pki::load_or_create(
        &dir.path().join("tls"),
        &skiff_pki::PkiConfig {
            dns_sans: vec![],
            ip_sans: vec![],
        },
    )
    .expect("pki");
    let store =
        skiff_store::Store::open(&dir.path().join("state.db"), Default::default()).expect("store");
    let cfg = ServerConfig {
        data_dir: dir.path().to_path_buf(),
        ..Default::default()
    };
    let st = Arc::new(AppState {
        cfg,
        store,
        pki: Arc::new(pki),
        token: String::new(),
        token_password: String::new(),
        ips: parking_lot::Mutex::new(IpAllocator::new("10.43.0.0/16").expect("cidr")),
        ports: parking_lot::Mutex::new(PortAllocator::new(30000, 32767)),
        policy: parking_lot::RwLock::new(Default::default()),
        started: std::time::Instant::now(),
        ready: Default::default(),
        metrics: Default::default(),
        watch_lines: Default::default(),
        node_graph: Default::default(),
        kubelets: Default::default(),
        crds: Default::default(),
        apiservices: Default::default(),
        vap: Default::default(),
        webhooks: Default::default(),
        namespaces: Default::default(),
        service_accounts: Default::default(),
    });
    let ns = res("", "v1", "namespaces");
    create_object(&st, ns, None, json!({"metadata": {"name": "d"}}), &opts())
        .await
        .expect("namespace");
    Env { st, _dir: dir }
}

fn res(g: &str, v: &str, plural: &str) -> &'static ResourceInfo {
    registry::find(g, v, plural).expect("registered")
}

fn opts() -> WriteOpts {
    WriteOpts {
        field_manager: "test".into(),
        field_validation: "Ignore".into(),
        ..Default::default()
    }
}

fn rv(o: &Value) -> String {
    o.pointer("/metadata/resourceVersion")
        .and_then(|r| r.as_str())
        .unwrap_or_default()
        .to_string()
}

fn deployment() -> Value {
    json!({"metadata": {"name": "web"}, "spec": {
        "replicas": 1,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}},
                     "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

#[tokio::test]
async fn updates_need_the_current_resource_version_and_no_ops_do_not_write() {
    let e = env().await;
    let cms = res("", "v1", "configmaps");
    let cm = create_object(
        &e.st,
        cms,
        Some("d"),
        json!({"metadata": {"name": "c"}, "data": {"a": "1"}}),
        &opts(),
    )
    .await
    .unwrap();
    let first = rv(&cm);
    let mut body = cm.clone();
    body["data"]["a"] = json!("2");
    let updated = update_object(
        &e.st,
        cms,
        Some("d"),
        "c",
        Mutation::Replace(body.clone()),
        &opts(),
        None,
    )
    .await
    .unwrap();
    assert_ne!(rv(&updated), first);
    assert_eq!(updated["data"]["a"], "2");
    // The same body again carries the old revision: a conflict.
    body["data"]["a"] = json!("3");
    let err = update_object(
        &e.st,
        cms,
        Some("d"),
        "c",
        Mutation::Replace(body),
        &opts(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    assert!(err.message.contains("the object has been modified"));
    // Writing what is stored changes nothing, not even the revision.
    let same = update_object(
        &e.st,
        cms,
        Some("d"),
        "c",
        Mutation::Replace(updated.clone()),
        &opts(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(rv(&same), rv(&updated));
}

#[tokio::test]
async fn status_and_spec_are_written_only_through_their_own_endpoints() {
    let e = env().await;
    let deps = res("apps", "v1", "deployments");
    let d = create_object(&e.st, deps, Some("d"), deployment(), &opts())
        .await
        .unwrap();
    assert_eq!(d["metadata"]["generation"], 1);
    // A status write takes only status.
    let mut s = d.clone();
    s["status"] = json!({"replicas": 7});
    s["spec"]["replicas"] = json!(5);
    let after = update_object(
        &e.st,
        deps,
        Some("d"),
        "web",
        Mutation::Status(s),
        &opts(),
        Some("status"),
    )
    .await
    .unwrap();
    assert_eq!(after["status"]["replicas"], 7);
    assert_eq!(after["spec"]["replicas"], 1);
    assert_eq!(after["metadata"]["generation"], 1);
    // A main-resource write keeps the stored status and bumps the generation on a spec change.
    let mut m = after.clone();
    m["spec"]["replicas"] = json!(3);
    m["status"] = json!({"replicas": 0});
    let after = update_object(
        &e.st,
        deps,
        Some("d"),
        "web",
        Mutation::Replace(m),
        &opts(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(after["spec"]["replicas"], 3);
    assert_eq!(after["status"]["replicas"], 7);
    assert_eq!(after["metadata"]["generation"], 2);
    // A status patch that drops status removes it; the spec stays.
    let patched = patch(
        &e.st,
        deps,
        Some("d"),
        "web",
        Some("status"),
        "application/json-patch+json",
        br#"[{"op":"remove","path":"/status"},{"op":"replace","path":"/spec/replicas","value":9}]"#,
        &opts(),
    )
    .await
    .unwrap();
    assert!(patched.get("status").is_none());
    assert_eq!(patched["spec"]["replicas"], 3);
}

#[tokio::test]
async fn a_deleting_object_takes_only_finalizer_removals_and_goes_with_the_last() {
    let e = env().await;
    let cms = res("", "v1", "configmaps");
    create_object(
        &e.st,
        cms,
        Some("d"),
        json!({"metadata": {"name": "c", "finalizers": ["a.io/x"]}}),
        &opts(),
    )
    .await
    .unwrap();
    let deleting = delete_object(&e.st, cms, Some("d"), "c", &DeleteOpts::default())
        .await
        .unwrap();
    assert!(deleting.pointer("/metadata/deletionTimestamp").is_some());
    let mut more = deleting.clone();
    more["metadata"]["finalizers"] = json!(["a.io/x", "b.io/y"]);
    let err = update_object(
        &e.st,
        cms,
        Some("d"),
        "c",
        Mutation::Replace(more),
        &opts(),
        None,
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, 422);
    assert!(err.message.contains("no new finalizers can be added"));
    let mut none = deleting.clone();
    none["metadata"]["finalizers"] = json!([]);
    update_object(
        &e.st,
        cms,
        Some("d"),
        "c",
        Mutation::Replace(none),
        &opts(),
        None,
    )
    .await
    .unwrap();
    let gone = get_object(&e.st, cms, Some("d"), "c").await.unwrap_err();
    assert_eq!(gone.code, 404);
}

#[tokio::test]
async fn delete_preconditions_are_checked() {
    let e = env().await;
    let cms = res("", "v1", "configmaps");
    let cm = create_object(
        &e.st,
        cms,
        Some("d"),
        json!({"metadata": {"name": "c"}}),
        &opts(),
    )
    .await
    .unwrap();
    let wrong_uid = DeleteOpts {
        precondition_uid: Some("nope".into()),
        ..Default::default()
    };
    let err = delete_object(&e.st, cms, Some("d"), "c", &wrong_uid)
        .await
        .unwrap_err();
    assert_eq!(err.code, 409);
    assert!(err
        .message
        .contains("Precondition failed: UID in precondition: nope"));
    let wrong_rv = DeleteOpts {
        precondition_rv: Some("1".into()),
        ..Default::default()
    };
    let err = delete_object(&e.st, cms, Some("d"), "c", &wrong_rv)
        .await
        .unwrap_err();
    assert!(err
        .message
        .contains("Precondition failed: ResourceVersion in precondition: 1"));
    let right = DeleteOpts {
        precondition_uid: cm["metadata"]["uid"].as_str().map(String::from),
        precondition_rv: Some(rv(&cm)),
        ..Default::default()
    };
    delete_object(&e.st, cms, Some("d"), "c", &right)
        .await
        .unwrap();
    assert_eq!(
        get_object(&e.st, cms, Some("d"), "c")
            .await
            .unwrap_err()
            .code,
        404
    );
}

/// The store moves underneath an update that reserved a NodePort: the retry must find the port
/// free again (it was leaked before the reservation guard), and a write that completes the
/// deletion keeps nothing it reserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_are_released_on_conflict_and_on_completed_deletion() {
    let e = env().await;
    let svcs = res("", "v1", "services");
    create_object(
        &e.st,
        svcs,
        Some("d"),
        json!({"metadata": {"name": "s", "finalizers": ["a.io/x"]}, "spec": {
            "type": "NodePort", "selector": {"app": "web"},
            "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30100}]}}),
        &opts(),
    )
    .await
    .unwrap();
    delete_object(&e.st, svcs, Some("d"), "s", &DeleteOpts::default())
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let (st, c) = (Arc::clone(&e.st), Arc::clone(&calls));
    let key = request::object_key(svcs, Some("d"), "s");
    let out = update_object(
        &e.st,
        svcs,
        Some("d"),
        "s",
        Mutation::With(Box::new(move |cur: &Value| {
            if c.fetch_add(1, Ordering::SeqCst) == 0 {
                // Another writer gets in first (same content, a new revision).
                let rev: i64 = rv(cur).parse().unwrap_or(0);
                let stored = crate::objects::to_stored(cur);
                tokio::task::block_in_place(|| {
                    tokio::runtime::Handle::current().block_on(st.store.update(&key, stored, rev))
                })
                .expect("concurrent write");
            }
            let mut n = cur.clone();
            n["spec"]["ports"][0]["nodePort"] = json!(30123);
            n["metadata"]["finalizers"] = json!([]);
            Ok(n)
        })),
        &opts(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "one conflict, one retry");
    assert_eq!(out["spec"]["ports"][0]["nodePort"], 30123);
    assert_eq!(
        get_object(&e.st, svcs, Some("d"), "s")
            .await
            .unwrap_err()
            .code,
        404
    );
    // Both the old port and the one the deleting write reserved are free again.
    let mut ports = e.st.ports.lock();
    ports.allocate(30100).expect("30100 released");
    ports.allocate(30123).expect("30123 released");
}

#[tokio::test]
async fn a_dry_run_or_failed_create_keeps_no_reservation() {
    let e = env().await;
    let svcs = res("", "v1", "services");
    let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "NodePort",
        "ports": [{"port": 80, "targetPort": 80, "protocol": "TCP", "nodePort": 30200}]}});
    let dry = WriteOpts {
        dry_run: true,
        ..opts()
    };
    create_object(&e.st, svcs, Some("d"), svc.clone(), &dry)
        .await
        .unwrap();
    create_object(&e.st, svcs, Some("d"), svc.clone(), &opts())
        .await
        .unwrap();
    // The same name again: AlreadyExists, and its cluster IP is given back.
    let mut again = svc.clone();
    again["spec"]["ports"][0]["nodePort"] = json!(30201);
    let err = create_object(&e.st, svcs, Some("d"), again, &opts())
        .await
        .unwrap_err();
    assert_eq!(err.reason, "AlreadyExists");
    e.st.ports.lock().allocate(30201).expect("30201 released");
    assert!(e.st.ports.lock().allocate(30200).is_err());
}

async fn running_pod(e: &Env, name: &str, ready: bool) {
    let pods = res("", "v1", "pods");
    let p = create_object(
        &e.st,
        pods,
        Some("d"),
        json!({"metadata": {"name": name, "labels": {"app": "web"}},
               "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        &opts(),
    )
    .await
    .unwrap();
    let mut s = p.clone();
    s["status"] = json!({"phase": "Running", "conditions": [
        {"type": "Ready", "status": if ready { "True" } else { "False" }}]});
    update_object(
        &e.st,
        pods,
        Some("d"),
        name,
        Mutation::Status(s),
        &opts(),
        Some("status"),
    )
    .await
    .unwrap();
}

async fn budget(e: &Env, allowed: i64, current: i64, desired: i64) {
    let pdbs = res("policy", "v1", "poddisruptionbudgets");
    let b = match get_object(&e.st, pdbs, Some("d"), "web").await {
        Ok(b) => b,
        Err(_) => create_object(
            &e.st,
            pdbs,
            Some("d"),
            json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 2,
                   "selector": {"matchLabels": {"app": "web"}}}}),
            &opts(),
        )
        .await
        .unwrap(),
    };
    let mut s = b.clone();
    s["status"] = json!({"observedGeneration": 1, "disruptionsAllowed": allowed,
        "currentHealthy": current, "desiredHealthy": desired, "expectedPods": current});
    update_object(
        &e.st,
        pdbs,
        Some("d"),
        "web",
        Mutation::Status(s),
        &opts(),
        Some("status"),
    )
    .await
    .unwrap();
}

fn eviction(name: &str) -> Value {
    json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "d"}})
}

#[tokio::test]
async fn eviction_honours_the_budget() {
    let e = env().await;
    let pods = res("", "v1", "pods");
    let pdbs = res("policy", "v1", "poddisruptionbudgets");
    let sa = res("", "v1", "serviceaccounts");
    create_object(
        &e.st,
        sa,
        Some("d"),
        json!({"metadata": {"name": "default"}}),
        &opts(),
    )
    .await
    .unwrap();
    running_pod(&e, "a", true).await;
    running_pod(&e, "b", true).await;
    budget(&e, 0, 2, 2).await;
    let err = evict(&e.st, pods, Some("d"), "a", &eviction("a"), false)
        .await
        .unwrap_err();
    assert_eq!((err.code, err.reason), (429, "TooManyRequests"));
    assert_eq!(
        err.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    assert_eq!(
        err.details.as_ref().unwrap()["causes"][0],
        json!({"reason": "DisruptionBudget",
               "message": "The disruption budget web needs 2 healthy pods and has 2 currently"})
    );
    get_object(&e.st, pods, Some("d"), "a")
        .await
        .expect("a stays");

    // One disruption allowed: a dry run takes nothing, the eviction takes it and records a.
    budget(&e, 1, 2, 1).await;
    let ok = evict(&e.st, pods, Some("d"), "a", &eviction("a"), true)
        .await
        .unwrap();
    assert_eq!(ok["status"], "Success");
    get_object(&e.st, pods, Some("d"), "a")
        .await
        .expect("dry run");
    let b = get_object(&e.st, pdbs, Some("d"), "web").await.unwrap();
    assert_eq!(b["status"]["disruptionsAllowed"], 1);
    let ok = evict(&e.st, pods, Some("d"), "a", &eviction("a"), false)
        .await
        .unwrap();
    assert_eq!(ok["code"], 201);
    assert_eq!(
        get_object(&e.st, pods, Some("d"), "a")
            .await
            .unwrap_err()
            .code,
        404
    );
    let b = get_object(&e.st, pdbs, Some("d"), "web").await.unwrap();
    assert_eq!(b["status"]["disruptionsAllowed"], 0);
    assert!(b["status"]["disruptedPods"].get("a").is_some());
    assert_eq!(b["status"]["conditions"][0]["reason"], "InsufficientPods");

    // An unready pod goes while the budget is met without it.
    running_pod(&e, "c", false).await;
    budget(&e, 0, 2, 1).await;
    evict(&e.st, pods, Some("d"), "c", &eviction("c"), false)
        .await
        .unwrap();
    let b = get_object(&e.st, pdbs, Some("d"), "web").await.unwrap();
    assert_eq!(b["status"]["disruptionsAllowed"], 0);

    // Two budgets over one pod: upstream's 500.
    create_object(
        &e.st,
        pdbs,
        Some("d"),
        json!({"metadata": {"name": "web2"}, "spec": {"maxUnavailable": 1,
               "selector": {"matchLabels": {"app": "web"}}}}),
        &opts(),
    )
    .await
    .unwrap();
    let err = evict(&e.st, pods, Some("d"), "b", &eviction("b"), false)
        .await
        .unwrap_err();
    assert_eq!(err.code, 500);
    assert_eq!(
        err.message,
        "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
    );
    assert!(err.status_body().get("reason").is_none());
}

#[tokio::test]
async fn a_create_answers_the_stored_bytes_as_the_object_would_encode() {
    let e = env().await;
    let sas = res("", "v1", "serviceaccounts");
    create_object(
        &e.st,
        sas,
        Some("d"),
        json!({"metadata": {"name": "default"}}),
        &opts(),
    )
    .await
    .unwrap();
    let bodies = [
        (
            res("", "v1", "configmaps"),
            json!({"metadata": {"name": "c", "resourceVersion": "9", "annotations": {"a": "}\"{"}},
                   "data": {"metadata": "{\"x\":1}"}}),
        ),
        (
            res("", "v1", "pods"),
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i",
                   "ports": [{"containerPort": 80}]}]}}),
        ),
        (res("apps", "v1", "deployments"), deployment()),
    ];
    for (r, body) in bodies {
        let c = create_object_encoded(&e.st, r, Some("d"), body, &opts())
            .await
            .unwrap();
        let json = c.json.expect("stored as served");
        assert_eq!(
            String::from_utf8(json).unwrap(),
            serde_json::to_string(&c.object).unwrap()
        );
        assert!(!rv(&c.object).is_empty());
    }
    // Stored in another shape (core/v1 Event): the object is encoded instead.
    let ev = create_object_encoded(
        &e.st,
        res("events.k8s.io", "v1", "events"),
        Some("d"),
        json!({"metadata": {"name": "e"}, "regarding": {"kind": "Pod", "name": "p"},
               "note": "n", "reason": "R", "eventTime": "2026-01-01T00:00:00.000000Z",
               "reportingController": "c", "reportingInstance": "i", "action": "A", "type": "Normal"}),
        &opts(),
    )
    .await
    .unwrap();
    assert!(ev.json.is_none());
}

#[test]
fn the_resource_version_goes_last_into_metadata() {
    use crate::objects::with_rv_last;
    let cases = [
        (
            r#"{"metadata":{}}"#,
            r#"{"metadata":{"resourceVersion":"7"}}"#,
        ),
        (
            r#"{"kind":"X","metadata":{"name":"a\"}","labels":{"b":"{"}},"spec":{"metadata":{}}}"#,
            r#"{"kind":"X","metadata":{"name":"a\"}","labels":{"b":"{"},"resourceVersion":"7"},"spec":{"metadata":{}}}"#,
        ),
    ];
    for (stored, want) in cases {
        let got = with_rv_last(stored.as_bytes(), 7).unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
    assert!(with_rv_last(br#"{"spec":{"metadata":{}}}"#, 7).is_none());
}
