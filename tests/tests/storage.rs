//! End-to-end: local-path storage (the default StorageClass, DefaultStorageClass admission,
//! WaitForFirstConsumer scheduling, the provisioner and the PV binder) and node IPAM, with
//! `skiff server --disable-agent` and simulated nodes, driven by the stock kubectl.

use skiff_e2e::*;
use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

struct Shared {
    cluster: Cluster,
    _hollow: NodeProcess,
}

/// One shared server with two hollow nodes `disco-0`, `disco-1`, both Ready.
fn k() -> &'static Cluster {
    static C: OnceLock<Result<Shared, String>> = OnceLock::new();
    match C.get_or_init(|| {
        let cluster = Cluster::try_start(&[])?;
        let hollow = cluster.spawn_hollow(2, "disco-");
        cluster.wait_nodes_ready(&["disco-0", "disco-1"], &hollow, WAIT);
        Ok(Shared {
            cluster,
            _hollow: hollow,
        })
    }) {
        Ok(s) => &s.cluster,
        Err(e) => panic!("{e}"),
    }
}

/// Polls `f` every 200 ms until it returns Some, panicking with the server log after `WAIT`.
#[track_caller]
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < WAIT,
            "{what} did not happen within {WAIT:?}\n--- server log tail ---\n{}",
            tail(&k().server_log(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn get_json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["get"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", "json"]);
    let out = k().kubectl(&a);
    out.success();
    out.json()
}

/// Rows of a `kubectl get` table keyed by column header, by the first column.
fn table_rows(out: &Output) -> BTreeMap<String, BTreeMap<String, String>> {
    out.clean();
    let rows = parse_table(&out.stdout);
    let header = &rows[0];
    rows[1..]
        .iter()
        .map(|r| {
            let m: BTreeMap<String, String> =
                header.iter().cloned().zip(r.iter().cloned()).collect();
            (r[0].clone(), m)
        })
        .collect()
}

fn statefulset(ns: &str) -> String {
    format!(
        r#"{{"apiVersion": "apps/v1", "kind": "StatefulSet",
  "metadata": {{"name": "web", "namespace": "{ns}"}},
  "spec": {{"serviceName": "web", "replicas": 2,
    "selector": {{"matchLabels": {{"app": "web"}}}},
    "template": {{"metadata": {{"labels": {{"app": "web"}}}},
      "spec": {{"containers": [{{"name": "web", "image": "busybox",
        "volumeMounts": [{{"name": "data", "mountPath": "/data"}}]}}]}}}},
    "volumeClaimTemplates": [{{"metadata": {{"name": "data"}},
      "spec": {{"accessModes": ["ReadWriteOnce"],
        "resources": {{"requests": {{"storage": "1Gi"}}}}}}}}]}}}}"#
    )
}

#[test]
fn local_path_is_the_default_class_and_fills_in_claims() {
    let c = k();
    let ns = c.namespace("sc-default");
    let out = c.kubectl(&["get", "storageclass"]);
    let rows = table_rows(&out);
    // The name column reads `local-path (default)`.
    let lp = &rows["local-path (default)"];
    assert_eq!(lp["PROVISIONER"], "rancher.io/local-path", "{out}");
    assert_eq!(lp["RECLAIMPOLICY"], "Delete", "{out}");
    assert_eq!(lp["VOLUMEBINDINGMODE"], "WaitForFirstConsumer", "{out}");

    let claim = |name: &str, class: &str| {
        format!(
            r#"{{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
  "metadata": {{"name": "{name}", "namespace": "{ns}"}},
  "spec": {{{class}"accessModes": ["ReadWriteOnce"], "resources": {{"requests": {{"storage": "1Gi"}}}}}}}}"#
        )
    };
    c.kubectl_stdin(&["create", "-f", "-"], &claim("plain", ""))
        .success();
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &claim("none", r#""storageClassName": "", "#),
    )
    .success();
    assert_eq!(
        c.jsonpath(&ns, "pvc/plain", "{.spec.storageClassName}"),
        "local-path"
    );
    assert_eq!(c.jsonpath(&ns, "pvc/none", "{.spec.storageClassName}"), "");
    // No consumer yet: Pending, with upstream's event.
    let out = c.kubectl(&["get", "pvc", "-n", &ns]);
    let rows = table_rows(&out);
    assert_eq!(rows["plain"]["STATUS"], "Pending", "{out}");
    assert_eq!(rows["plain"]["STORAGECLASS"], "local-path", "{out}");
    eventually("the WaitForFirstConsumer event", || {
        let out = c.kubectl(&["describe", "pvc", "plain", "-n", &ns]);
        out.stdout
            .contains("waiting for first consumer to be created before binding")
            .then_some(())
    });
}

#[test]
fn statefulset_claims_are_provisioned_on_their_pods_nodes() {
    let c = k();
    let ns = c.namespace("sts-storage");
    c.kubectl_stdin(&["apply", "-f", "-"], &statefulset(&ns))
        .success();
    c.wait_running(&ns, "app=web", 2, WAIT);
    let bound = eventually("both claims Bound", || {
        let v = get_json(&["pvc", "-n", &ns]);
        let items = v["items"].as_array().cloned().unwrap_or_default();
        (items.len() == 2 && items.iter().all(|i| i["status"]["phase"] == "Bound")).then_some(items)
    });
    let pods: BTreeMap<String, String> = c
        .pods(&ns, "app=web")
        .into_iter()
        .map(|p| (p.name, p.node))
        .collect();
    let pvc_table = table_rows(&c.kubectl(&["get", "pvc", "-n", &ns]));
    let pv_out = c.kubectl(&["get", "pv"]);
    let pv_table = table_rows(&pv_out);
    for claim in &bound {
        let name = claim["metadata"]["name"].as_str().unwrap().to_string();
        let pod = name.strip_prefix("data-").unwrap();
        let node = &pods[pod];
        let uid = claim["metadata"]["uid"].as_str().unwrap();
        let pv_name = format!("pvc-{uid}");
        assert_eq!(
            claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"],
            node.as_str()
        );
        assert_eq!(
            claim["metadata"]["annotations"]["pv.kubernetes.io/bind-completed"],
            "yes"
        );
        assert_eq!(claim["spec"]["volumeName"], pv_name.as_str());
        assert_eq!(claim["status"]["capacity"]["storage"], "1Gi");
        let row = &pvc_table[&name];
        assert_eq!(row["STATUS"], "Bound");
        assert_eq!(row["VOLUME"], pv_name);
        assert_eq!(row["CAPACITY"], "1Gi");
        assert_eq!(row["ACCESS MODES"], "RWO");
        assert_eq!(row["STORAGECLASS"], "local-path");

        let pv = get_json(&["pv", &pv_name]);
        assert_eq!(
            pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
            serde_json::json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [node]})
        );
        assert_eq!(
            pv["spec"]["hostPath"],
            serde_json::json!({
                "path": format!("/var/lib/skiff/storage/{pv_name}_{ns}_{name}"),
                "type": "DirectoryOrCreate"
            })
        );
        assert_eq!(
            pv["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"],
            "rancher.io/local-path"
        );
        assert_eq!(pv["spec"]["claimRef"]["uid"], uid);
        let row = &pv_table[&pv_name];
        assert_eq!(row["CAPACITY"], "1Gi", "{pv_out}");
        assert_eq!(row["ACCESS MODES"], "RWO", "{pv_out}");
        assert_eq!(row["RECLAIM POLICY"], "Delete", "{pv_out}");
        assert_eq!(row["STATUS"], "Bound", "{pv_out}");
        assert_eq!(row["CLAIM"], format!("{ns}/{name}"), "{pv_out}");
        assert_eq!(row["STORAGECLASS"], "local-path", "{pv_out}");
    }

    // The pod comes back on the node that holds its volume, every time.
    let first = pods["web-0"].clone();
    for _ in 0..3 {
        c.kubectl(&["delete", "pod", "web-0", "-n", &ns, "--wait=true"])
            .success();
        let back = c.wait_running(&ns, "app=web", 2, WAIT);
        let node = &back.iter().find(|p| p.name == "web-0").unwrap().node;
        assert_eq!(node, &first, "web-0 moved off its volume's node");
    }

    // Deleting a claim releases its volume; reclaim policy Delete deletes the PV, which waits
    // for the node's cleanup (its finalizer) — done here by hand, as the node would.
    c.kubectl(&["delete", "statefulset", "web", "-n", &ns])
        .success();
    let claim1 = bound
        .iter()
        .find(|b| b["metadata"]["name"] == "data-web-1")
        .unwrap();
    let pv1 = format!("pvc-{}", claim1["metadata"]["uid"].as_str().unwrap());
    c.kubectl(&["delete", "pvc", "data-web-1", "-n", &ns, "--wait=false"])
        .success();
    eventually("the released volume being deleted", || {
        let pv = get_json(&["pv", &pv1]);
        pv["metadata"]["deletionTimestamp"]
            .is_string()
            .then_some(())
    });
    assert_eq!(
        get_json(&["pv", &pv1])["metadata"]["finalizers"],
        serde_json::json!(["skiff.io/local-path-cleanup"])
    );
    c.kubectl(&[
        "patch",
        "pv",
        &pv1,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ])
    .success();
    eventually("the volume gone", || {
        let out = c.kubectl(&["get", "pv", &pv1]);
        (out.code != 0 && out.stderr.contains("NotFound")).then_some(())
    });
}

#[test]
fn static_volumes_bind_to_the_claim_they_name_and_are_retained() {
    let c = k();
    let ns = c.namespace("static-pv");
    let pv = format!(
        r#"{{"apiVersion": "v1", "kind": "PersistentVolume",
  "metadata": {{"name": "static-{ns}"}},
  "spec": {{"capacity": {{"storage": "2Gi"}}, "accessModes": ["ReadWriteOnce"],
    "storageClassName": "", "hostPath": {{"path": "/srv/static"}},
    "claimRef": {{"namespace": "{ns}", "name": "mine"}}}}}}"#
    );
    c.kubectl_stdin(&["create", "-f", "-"], &pv).success();
    eventually("the reserved volume Available", || {
        (get_json(&["pv", &format!("static-{ns}")])["status"]["phase"] == "Available").then_some(())
    });
    let claim = format!(
        r#"{{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
  "metadata": {{"name": "mine", "namespace": "{ns}"}},
  "spec": {{"storageClassName": "", "accessModes": ["ReadWriteOnce"],
    "resources": {{"requests": {{"storage": "1Gi"}}}}}}}}"#
    );
    c.kubectl_stdin(&["create", "-f", "-"], &claim).success();
    eventually("the claim Bound to the static volume", || {
        let out = c.kubectl(&["get", "pvc", "mine", "-n", &ns]);
        let rows = table_rows(&out);
        let r = &rows["mine"];
        (r["STATUS"] == "Bound" && r["VOLUME"] == format!("static-{ns}") && r["CAPACITY"] == "2Gi")
            .then_some(())
    });
    c.kubectl(&["delete", "pvc", "mine", "-n", &ns]).success();
    eventually("the volume Released and kept (Retain)", || {
        let out = c.kubectl(&["get", "pv", &format!("static-{ns}")]);
        let rows = table_rows(&out);
        (rows[&format!("static-{ns}")]["STATUS"] == "Released").then_some(())
    });
    c.kubectl(&["delete", "pv", &format!("static-{ns}")])
        .success();
}

#[test]
fn a_pod_with_a_missing_claim_is_unschedulable_with_upstreams_message() {
    let c = k();
    let ns = c.namespace("missing-pvc");
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "p", "namespace": "{ns}"}},
  "spec": {{"containers": [{{"name": "c", "image": "busybox"}}],
    "volumes": [{{"name": "d", "persistentVolumeClaim": {{"claimName": "nope"}}}}]}}}}"#
    );
    c.kubectl_stdin(&["create", "-f", "-"], &pod).success();
    eventually("the FailedScheduling event", || {
        let out = c.kubectl(&["get", "events", "-n", &ns, "-o", "json"]);
        out.stdout
            .contains("0/2 nodes are available: persistentvolumeclaim \\\"nope\\\" not found.")
            .then_some(())
    });
}

#[test]
fn a_node_without_a_pod_cidr_gets_one_and_releases_it_when_deleted() {
    let c = k();
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "bare-ipam",
  "labels": {"kubernetes.io/hostname": "bare-ipam"}}}"#;
    c.kubectl_stdin(&["create", "-f", "-"], node).success();
    let cidr = eventually("a pod CIDR for bare-ipam", || {
        let v = get_json(&["node", "bare-ipam"]);
        v["spec"]["podCIDR"].as_str().map(String::from)
    });
    let v = get_json(&["node", "bare-ipam"]);
    assert_eq!(v["spec"]["podCIDRs"], serde_json::json!([cidr]));
    assert!(
        cidr.starts_with("10.42.") && cidr.ends_with(".0/24"),
        "{cidr}"
    );
    // No other node has it.
    let nodes = get_json(&["nodes"]);
    let holders: Vec<&str> = nodes["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["spec"]["podCIDR"] == cidr.as_str())
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(holders, vec!["bare-ipam"]);
    // Its claim is the same Lease the simulated agents use.
    let lease = format!("pod-cidr-{}-24", cidr.trim_end_matches("/24"));
    assert_eq!(
        c.jsonpath(
            "kube-system",
            &format!("lease/{lease}"),
            "{.spec.holderIdentity}"
        ),
        "bare-ipam"
    );
    c.kubectl(&["delete", "node", "bare-ipam"]).success();
    eventually("the claim released", || {
        let out = c.kubectl(&["get", "lease", &lease, "-n", "kube-system"]);
        (out.code != 0 && out.stderr.contains("NotFound")).then_some(())
    });
}
