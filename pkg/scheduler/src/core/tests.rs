//! Unit tests of the scheduling core: upstream's messages, each filter and score, and the
//! entry points.

use super::score::{balanced_allocation_score, least_allocated_score};
use super::*;
use k8s_openapi::api::core::v1::Taint;
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde_json::{json, Value};
use std::collections::HashSet;

fn node(name: &str, cpu: &str, memory: &str, pods: &str) -> Value {
    json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "10Gi"},
            "conditions": [{"type": "Ready", "status": "True"}]
        }
    })
}

fn ni(v: Value) -> NodeInfo {
    NodeInfo::new(serde_json::from_value(v).unwrap())
}

fn std_nodes(n: usize) -> Vec<NodeInfo> {
    (1..=n)
        .map(|i| ni(node(&format!("node{i}"), "4", "8Gi", "110")))
        .collect()
}

fn pod_v(name: &str, cpu: Option<&str>) -> Value {
    let mut c = json!({"name": "c", "image": "nginx"});
    if let Some(cpu) = cpu {
        c["resources"] = json!({"requests": {"cpu": cpu}});
    }
    json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [c]}
    })
}

fn pod(v: Value) -> Pod {
    serde_json::from_value(v).unwrap()
}

fn owned(name: &str, owner_uid: &str) -> Pod {
    let mut v = pod_v(name, Some("100m"));
    v["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
        "uid": owner_uid, "controller": true
    }]);
    pod(v)
}

fn rng() -> StdRng {
    StdRng::seed_from_u64(7)
}

fn err(p: &Pod, nodes: &[NodeInfo]) -> String {
    schedule_with_rng(p, nodes, &mut rng())
        .unwrap_err()
        .to_string()
}

fn set(v: &mut Value, path: &str, x: Value) {
    *v.pointer_mut(path).unwrap() = x;
}

#[test]
fn no_nodes_message() {
    let e = schedule(&pod(pod_v("p", None)), &[]).unwrap_err();
    assert_eq!(e.to_string(), "no nodes available to schedule pods");
    assert_eq!(e.condition_reason(), "SchedulerError");
}

#[test]
fn upstream_message_taint_and_cpu() {
    let mut n1 = node("node1", "4", "8Gi", "110");
    n1["spec"]["taints"] =
        json!([{"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"}]);
    let nodes = vec![
        ni(n1),
        ni(node("node2", "1", "8Gi", "110")),
        ni(node("node3", "1", "8Gi", "110")),
    ];
    let e = schedule(&pod(pod_v("p", Some("2"))), &nodes).unwrap_err();
    assert_eq!(e.condition_reason(), "Unschedulable");
    assert_eq!(
        e.to_string(),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
         2 Insufficient cpu. preemption: 0/3 nodes are available: \
         1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod."
    );
}

#[test]
fn impossible_node_selector() {
    let mut p = pod_v("p", None);
    p["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
    assert_eq!(
        err(&pod(p), &std_nodes(3)),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn node_selector_matches_labels() {
    let mut nodes = std_nodes(3);
    let mut n = node("node2", "4", "8Gi", "110");
    n["metadata"]["labels"]["disktype"] = json!("ssd");
    nodes[1] = ni(n);
    let mut p = pod_v("p", None);
    p["spec"]["nodeSelector"] = json!({"disktype": "ssd"});
    assert_eq!(schedule(&pod(p), &nodes).unwrap(), "node2");
}

#[test]
fn cordoned_nodes_are_skipped_unless_tolerated() {
    let mut nodes = std_nodes(3);
    for (i, slot) in nodes.iter_mut().enumerate().take(2) {
        let mut n = node(&format!("node{}", i + 1), "4", "8Gi", "110");
        n["spec"]["unschedulable"] = json!(true);
        *slot = ni(n);
    }
    for _ in 0..20 {
        assert_eq!(schedule(&pod(pod_v("p", None)), &nodes).unwrap(), "node3");
    }
    let mut n3 = node("node3", "4", "8Gi", "110");
    n3["spec"]["unschedulable"] = json!(true);
    nodes[2] = ni(n3);
    assert_eq!(
        err(&pod(pod_v("p", None)), &nodes),
        "0/3 nodes are available: 3 node(s) were unschedulable. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    let mut tol = pod_v("ds", None);
    tol["spec"]["tolerations"] = json!([{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]);
    assert!(schedule(&pod(tol), &nodes).is_ok());
}

#[test]
fn not_ready_and_unknown_nodes_imply_taints() {
    let mut a = node("node1", "4", "8Gi", "110");
    set(&mut a, "/status/conditions/0/status", json!("False"));
    let mut b = node("node2", "4", "8Gi", "110");
    set(&mut b, "/status/conditions/0/status", json!("Unknown"));
    let mut c = node("node3", "4", "8Gi", "110");
    c["status"]["conditions"] = json!([]);
    let nodes = vec![ni(a), ni(b), ni(c)];
    assert_eq!(
        err(&pod(pod_v("p", None)), &nodes),
        "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }, \
         2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
    // A pod tolerating not-ready may go to the NotReady node.
    let mut p = pod_v("p", None);
    p["spec"]["tolerations"] =
        json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}]);
    let got = schedule(&pod(p), &nodes).unwrap();
    assert!(got == "node1" || got == "node3", "{got}");
    // An already-present NoSchedule taint is not duplicated.
    let mut d = node("node4", "4", "8Gi", "110");
    set(&mut d, "/status/conditions/0/status", json!("False"));
    d["spec"]["taints"] = json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]);
    assert_eq!(ni(d).effective_taints().len(), 1);
}

#[test]
fn taints_and_tolerations() {
    let mut n1 = node("node1", "4", "8Gi", "110");
    n1["spec"]["taints"] = json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]);
    let mut n2 = node("node2", "4", "8Gi", "110");
    n2["spec"]["taints"] = json!([{"key": "evict", "value": "x", "effect": "NoExecute"}]);
    let nodes = vec![ni(n1), ni(n2)];
    assert_eq!(
        err(&pod(pod_v("p", None)), &nodes),
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, \
         1 node(s) had untolerated taint {evict: x}. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
    let mut p = pod_v("p", None);
    p["spec"]["tolerations"] =
        json!([{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]);
    assert_eq!(schedule(&pod(p), &nodes).unwrap(), "node1");
    let mut wrong_value = pod_v("p", None);
    wrong_value["spec"]["tolerations"] = json!([{"key": "dedicated", "value": "cpu"}]);
    assert!(schedule(&pod(wrong_value), &nodes).is_err());
    let mut all = pod_v("p", None);
    all["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
    assert!(schedule(&pod(all), &nodes).is_ok());
}

#[test]
fn toleration_matching_rules() {
    let taint = Taint {
        key: "k".into(),
        value: Some("v".into()),
        effect: "NoSchedule".into(),
        time_added: None,
    };
    let t = |v: Value| -> Toleration { serde_json::from_value(v).unwrap() };
    assert!(toleration_tolerates(
        &t(json!({"key": "k", "value": "v"})),
        &taint
    ));
    assert!(toleration_tolerates(
        &t(json!({"key": "k", "operator": "Exists"})),
        &taint
    ));
    assert!(toleration_tolerates(
        &t(json!({"operator": "Exists"})),
        &taint
    ));
    assert!(!toleration_tolerates(
        &t(json!({"key": "k", "value": "w"})),
        &taint
    ));
    assert!(!toleration_tolerates(
        &t(json!({"key": "k", "operator": "Exists", "effect": "NoExecute"})),
        &taint
    ));
    assert!(!toleration_tolerates(
        &t(json!({"key": "other", "operator": "Exists"})),
        &taint
    ));
    assert!(!toleration_tolerates(
        &t(json!({"key": "k", "operator": "Gt", "value": "v"})),
        &taint
    ));
}

#[test]
fn prefer_no_schedule_only_scores() {
    let mut n1 = node("node1", "4", "8Gi", "110");
    n1["spec"]["taints"] = json!([{"key": "soft", "effect": "PreferNoSchedule"}]);
    let nodes = vec![ni(n1), ni(node("node2", "4", "8Gi", "110"))];
    let mut r = rng();
    for _ in 0..20 {
        assert_eq!(
            schedule_with_rng(&pod(pod_v("p", None)), &nodes, &mut r).unwrap(),
            "node2"
        );
    }
    // Alone, the softly tainted node is still used.
    assert_eq!(
        schedule(&pod(pod_v("p", None)), &nodes[..1]).unwrap(),
        "node1"
    );
    // A pod tolerating it sees both nodes alike on that score.
    let mut p = pod_v("p", None);
    p["spec"]["tolerations"] =
        json!([{"key": "soft", "operator": "Exists", "effect": "PreferNoSchedule"}]);
    let tolerating = pod(p.clone());
    let c = PodConstraints::new(&tolerating);
    let s = score_nodes(&c, &nodes, &[0, 1]);
    assert_eq!(s[0], s[1]);
}

#[test]
fn resources_messages_and_sorting() {
    let mut nodes: Vec<NodeInfo> = (1..=10)
        .map(|i| ni(node(&format!("n{i}"), "1", "1Gi", "110")))
        .collect();
    nodes.push(ni(node("big-cpu", "64", "1Gi", "110")));
    nodes.push(ni(node("big-cpu2", "64", "1Gi", "110")));
    let mut p = pod_v("p", None);
    p["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "2", "memory": "2Gi"}});
    // "10 Insufficient cpu" sorts before "12 Insufficient memory" and Go sorts bytewise.
    assert_eq!(
        err(&pod(p), &nodes),
        "0/12 nodes are available: 10 Insufficient cpu, 12 Insufficient memory. \
         preemption: 0/12 nodes are available: 12 No preemption victims found for incoming pod."
    );
}

#[test]
fn bytewise_sort_of_counts() {
    let mut reasons = BTreeMap::new();
    reasons.insert("Insufficient cpu".to_string(), 2);
    reasons.insert("node(s) were unschedulable".to_string(), 10);
    assert_eq!(
        render_fit(12, None, &reasons, ""),
        "0/12 nodes are available: 10 node(s) were unschedulable, 2 Insufficient cpu."
    );
    assert_eq!(
        render_fit(
            3,
            Some("pod affinity terms conflict"),
            &reasons,
            "preemption: x"
        ),
        "0/3 nodes are available: pod affinity terms conflict. preemption: x"
    );
}

#[test]
fn too_many_pods_ephemeral_and_extended() {
    let mut n = ni(node("node1", "4", "8Gi", "1"));
    n.add_pod(PodInfo::from_pod(&pod(pod_v("other", None))));
    let nodes = vec![n];
    assert_eq!(
        err(&pod(pod_v("p", None)), &nodes),
        "0/1 nodes are available: 1 Too many pods. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    let mut p = pod_v("p", None);
    p["spec"]["containers"][0]["resources"] =
        json!({"requests": {"ephemeral-storage": "20Gi"}, "limits": {"example.com/gpu": "1"}});
    assert_eq!(
        err(&pod(p), &std_nodes(1)),
        "0/1 nodes are available: 1 Insufficient ephemeral-storage, 1 Insufficient example.com/gpu. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
}

#[test]
fn assumed_pods_consume_resources() {
    let mut nodes = vec![
        ni(node("node1", "1", "8Gi", "110")),
        ni(node("node2", "1", "8Gi", "110")),
    ];
    let p1 = pod(pod_v("a", Some("600m")));
    let first = schedule(&p1, &nodes).unwrap();
    let i = nodes.iter().position(|n| n.name() == first).unwrap();
    nodes[i].add_pod(PodInfo::from_pod(&p1));
    let p2 = pod(pod_v("b", Some("600m")));
    let second = schedule(&p2, &nodes).unwrap();
    assert_ne!(first, second);
    let j = nodes.iter().position(|n| n.name() == second).unwrap();
    nodes[j].add_pod(PodInfo::from_pod(&p2));
    assert!(schedule(&pod(pod_v("c", Some("600m"))), &nodes).is_err());
    nodes[i].remove_pod("default/a");
    assert_eq!(
        schedule(&pod(pod_v("c", Some("600m"))), &nodes).unwrap(),
        first
    );
    assert_eq!(nodes[i].requested().milli_cpu, 0);
}

#[test]
fn node_affinity_operators() {
    let labels: BTreeMap<String, String> = [("zone", "a"), ("cores", "8"), ("gpu", "yes")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let term = |exprs: Value, fields: Value| -> Term {
        Term::parse(
            &serde_json::from_value(json!({"matchExpressions": exprs, "matchFields": fields}))
                .unwrap(),
        )
    };
    let e = |k: &str, op: &str, vals: Value| json!([{"key": k, "operator": op, "values": vals}]);
    let none = json!([]);
    assert!(term(e("zone", "In", json!(["a", "b"])), none.clone()).matches(&labels, "n"));
    assert!(!term(e("zone", "In", json!(["b"])), none.clone()).matches(&labels, "n"));
    assert!(term(e("zone", "NotIn", json!(["b"])), none.clone()).matches(&labels, "n"));
    assert!(term(e("missing", "NotIn", json!(["b"])), none.clone()).matches(&labels, "n"));
    assert!(!term(e("zone", "NotIn", json!(["a"])), none.clone()).matches(&labels, "n"));
    assert!(term(e("gpu", "Exists", json!(null)), none.clone()).matches(&labels, "n"));
    assert!(!term(e("gpu", "DoesNotExist", json!(null)), none.clone()).matches(&labels, "n"));
    assert!(term(e("missing", "DoesNotExist", json!(null)), none.clone()).matches(&labels, "n"));
    assert!(term(e("cores", "Gt", json!(["4"])), none.clone()).matches(&labels, "n"));
    assert!(!term(e("cores", "Gt", json!(["8"])), none.clone()).matches(&labels, "n"));
    assert!(term(e("cores", "Lt", json!(["16"])), none.clone()).matches(&labels, "n"));
    assert!(
        !term(e("zone", "Lt", json!(["16"])), none.clone()).matches(&labels, "n"),
        "non-numeric label"
    );
    assert!(
        !term(e("cores", "Gt", json!(["x"])), none.clone()).matches(&labels, "n"),
        "invalid term"
    );
    assert!(
        !term(e("zone", "In", json!([])), none.clone()).matches(&labels, "n"),
        "In needs values"
    );
    let f = |op: &str, v: &str| json!([{"key": "metadata.name", "operator": op, "values": [v]}]);
    assert!(term(none.clone(), f("In", "n")).matches(&labels, "n"));
    assert!(!term(none.clone(), f("In", "m")).matches(&labels, "n"));
    assert!(term(none.clone(), f("NotIn", "m")).matches(&labels, "n"));
    assert!(
        !term(none.clone(), none.clone()).matches(&labels, "n"),
        "an empty term matches nothing"
    );
}

#[test]
fn required_terms_are_ored_and_expressions_anded() {
    let mut nodes = std_nodes(3);
    let mut n = node("node3", "4", "8Gi", "110");
    n["metadata"]["labels"]["zone"] = json!("b");
    n["metadata"]["labels"]["tier"] = json!("gold");
    nodes[2] = ni(n);
    let mut p = pod_v("p", None);
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
    "nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]},
                              {"key": "tier", "operator": "In", "values": ["gold"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["nowhere"]}]}
    ]}}});
    assert_eq!(schedule(&pod(p.clone()), &nodes).unwrap(), "node3");
    set(&mut p, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchExpressions/1/values", json!(["silver"]));
    assert_eq!(
        err(&pod(p), &nodes),
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn match_fields_prefilter_like_daemonset_pods() {
    let mut nodes = std_nodes(3);
    nodes[0] = ni(node("node1", "100m", "8Gi", "110"));
    let mut p = pod_v("ds-x", Some("500m"));
    p["spec"]["affinity"] = json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node1"]}]}]}}});
    assert_eq!(
        err(&pod(p.clone()), &nodes),
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't satisfy plugin(s) [NodeAffinity]. \
         preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, \
         2 Preemption is not helpful for scheduling."
    );
    set(&mut p, "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values", json!(["node2"]));
    assert_eq!(schedule(&pod(p.clone()), &nodes).unwrap(), "node2");
    // Two name requirements with disjoint values in one term conflict.
    p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"] = json!([
        {"key": "metadata.name", "operator": "In", "values": ["node1"]},
        {"key": "metadata.name", "operator": "In", "values": ["node2"]}]);
    assert_eq!(
        err(&pod(p), &nodes),
        "0/3 nodes are available: pod affinity terms conflict. \
         preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    );
}

#[test]
fn preferred_node_affinity_wins() {
    let mut nodes = std_nodes(3);
    let mut n = node("node2", "4", "8Gi", "110");
    n["metadata"]["labels"]["disk"] = json!("ssd");
    nodes[1] = ni(n);
    let mut p = pod_v("p", None);
    p["spec"]["affinity"] = json!({"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 50, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}}]}});
    let mut r = rng();
    for _ in 0..20 {
        assert_eq!(
            schedule_with_rng(&pod(p.clone()), &nodes, &mut r).unwrap(),
            "node2"
        );
    }
}

#[test]
fn host_port_conflicts() {
    let with_port = |name: &str, port: i32, proto: Option<&str>, ip: Option<&str>| {
        let mut v = pod_v(name, None);
        let mut cp = json!({"containerPort": 80, "hostPort": port});
        if let Some(p) = proto {
            cp["protocol"] = json!(p);
        }
        if let Some(ip) = ip {
            cp["hostIP"] = json!(ip);
        }
        v["spec"]["containers"][0]["ports"] = json!([cp]);
        pod(v)
    };
    let mut nodes = std_nodes(1);
    nodes[0].add_pod(PodInfo::from_pod(&with_port("a", 8080, None, None)));
    assert_eq!(
        err(&with_port("b", 8080, Some("TCP"), None), &nodes),
        "0/1 nodes are available: 1 node(s) didn't have free ports for the requested pod ports. \
         preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    assert!(schedule(&with_port("c", 8080, Some("UDP"), None), &nodes).is_ok());
    assert!(schedule(&with_port("d", 8081, None, None), &nodes).is_ok());
    assert!(
        schedule(&with_port("e", 8080, None, Some("10.0.0.1")), &nodes).is_err(),
        "wildcard in use"
    );
    let mut nodes = std_nodes(1);
    nodes[0].add_pod(PodInfo::from_pod(&with_port(
        "a",
        8080,
        None,
        Some("10.0.0.1"),
    )));
    assert!(schedule(&with_port("f", 8080, None, Some("10.0.0.2")), &nodes).is_ok());
    assert!(schedule(&with_port("g", 8080, None, None), &nodes).is_err());
    nodes[0].remove_pod("default/a");
    assert!(schedule(&with_port("g", 8080, None, None), &nodes).is_ok());
}

#[test]
fn node_name_preset() {
    let mut p = pod_v("p", None);
    p["spec"]["nodeName"] = json!("node2");
    assert_eq!(schedule(&pod(p.clone()), &std_nodes(3)).unwrap(), "node2");
    p["spec"]["nodeName"] = json!("node9");
    assert_eq!(
        err(&pod(p), &std_nodes(2)),
        "0/2 nodes are available: 2 node(s) didn't match the requested node name. \
         preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
    );
}

#[test]
fn preemption_policy_never_and_priorities() {
    let mut p = pod_v("p", Some("8"));
    p["spec"]["preemptionPolicy"] = json!("Never");
    assert_eq!(
        err(&pod(p), &std_nodes(3)),
        "0/3 nodes are available: 3 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    );
    // A higher-priority pod that would not fit even without the lower-priority pods.
    let mut nodes = std_nodes(1);
    let mut low = pod_v("low", Some("1"));
    low["spec"]["priority"] = json!(0);
    nodes[0].add_pod(PodInfo::from_pod(&pod(low)));
    let mut high = pod_v("high", Some("6"));
    high["spec"]["priority"] = json!(1000);
    assert_eq!(
        err(&pod(high), &nodes),
        "0/1 nodes are available: 1 Insufficient cpu. \
         preemption: 0/1 nodes are available: 1 Insufficient cpu."
    );
}

#[test]
fn least_allocated_prefers_emptier_nodes() {
    let mut nodes = std_nodes(2);
    nodes[0].add_pod(PodInfo::from_pod(&pod(pod_v("busy", Some("3")))));
    let mut r = rng();
    for i in 0..20 {
        let p = pod(pod_v(&format!("p{i}"), Some("100m")));
        assert_eq!(schedule_with_rng(&p, &nodes, &mut r).unwrap(), "node2");
    }
    let x = pod(pod_v("x", Some("1")));
    let c = PodConstraints::new(&x);
    // node2: cpu (4000-1000)/4000 → 75; memory (8Gi-200Mi)/8Gi → 97; mean 86.
    assert_eq!(least_allocated_score(&c, &nodes[1]), 86);
    // Balanced: cpu 1/4 = .25, memory 0 → std .125 → 87.
    assert_eq!(balanced_allocation_score(&c, &nodes[1]), 87);
}

#[test]
fn replicas_spread_across_equal_nodes() {
    let mut nodes = std_nodes(3);
    let mut r = rng();
    for i in 0..9 {
        let p = owned(&format!("web-{i}"), "rs-uid");
        let n = schedule_with_rng(&p, &nodes, &mut r).unwrap();
        let k = nodes.iter().position(|x| x.name() == n).unwrap();
        nodes[k].add_pod(PodInfo::from_pod(&p));
    }
    for n in &nodes {
        assert_eq!(n.owner_count("default/rs-uid"), 3, "{}", n.name());
    }
}

#[test]
fn ties_are_broken_randomly() {
    let nodes = std_nodes(3);
    let mut seen = HashSet::new();
    let mut r = rng();
    for _ in 0..100 {
        seen.insert(schedule_with_rng(&pod(pod_v("p", None)), &nodes, &mut r).unwrap());
    }
    assert_eq!(seen.len(), 3);
}

#[test]
fn pod_requests_with_init_sidecars_overhead_and_limits() {
    let p = pod(json!({
        "metadata": {"name": "p", "namespace": "default"},
        "spec": {
            "initContainers": [
                {"name": "init", "image": "i", "resources": {"requests": {"cpu": "2", "memory": "100Mi"}}},
                {"name": "side", "image": "i", "restartPolicy": "Always", "resources": {"requests": {"cpu": "100m"}}}
            ],
            "containers": [
                {"name": "a", "image": "i", "resources": {"requests": {"cpu": "200m"}, "limits": {"memory": "1Gi"}}},
                {"name": "b", "image": "i"}
            ],
            "overhead": {"cpu": "10m"}
        }
    }));
    let r = pod_requests(&p, false);
    // max(200m + 100m sidecar, 2 init) + 10m overhead.
    assert_eq!(r.milli_cpu, 2010);
    // Containers: 1Gi (limit as request) vs init 100Mi.
    assert_eq!(r.memory, 1024 * 1024 * 1024);
    let nz = pod_requests(&p, true);
    // Container b counts at 100m/200Mi for scoring.
    assert_eq!(nz.milli_cpu, 2010);
    assert_eq!(
        nz.memory,
        1024 * 1024 * 1024 + DEFAULT_MEMORY_REQUEST + DEFAULT_MEMORY_REQUEST
    );
}

#[test]
fn feasible_node_sampling() {
    assert_eq!(num_feasible_nodes_to_find(3), 3);
    assert_eq!(num_feasible_nodes_to_find(99), 99);
    assert_eq!(num_feasible_nodes_to_find(100), 100);
    assert_eq!(num_feasible_nodes_to_find(1000), 420);
    assert_eq!(num_feasible_nodes_to_find(5000), 500);
    assert_eq!(num_feasible_nodes_to_find(10000), 500);
}

#[test]
fn missing_pods_allocatable_defaults_to_110() {
    let mut v = node("n", "4", "8Gi", "1");
    v["status"]["allocatable"]
        .as_object_mut()
        .unwrap()
        .remove("pods");
    let n = ni(v);
    assert_eq!(n.allowed_pods, DEFAULT_MAX_PODS);
}

#[test]
fn same_scheduling_inputs_ignores_heartbeats() {
    let a = node("n", "4", "8Gi", "110");
    let mut b = a.clone();
    b["status"]["conditions"][0]["lastHeartbeatTime"] = json!("2024-01-01T00:00:00Z");
    assert!(ni(a.clone()).same_scheduling_inputs(&ni(b)));
    let mut c = a.clone();
    c["spec"]["unschedulable"] = json!(true);
    assert!(!ni(a.clone()).same_scheduling_inputs(&ni(c)));
    let mut d = a.clone();
    d["metadata"]["labels"]["x"] = json!("y");
    assert!(!ni(a).same_scheduling_inputs(&ni(d)));
}
