//! Unit tests of the table printers: columns and cells kind by kind, and durations.

use super::*;
use crate::registry::RESOURCES;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-06-01T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ago(d: Duration) -> String {
    (now() - d).to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn strs(v: &[Value]) -> Vec<String> {
    v.iter()
        .map(|c| match c {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[test]
fn human_duration_matches_upstream_cases() {
    let cases: &[(Duration, &str)] = &[
        (Duration::seconds(1), "1s"),
        (Duration::seconds(70), "70s"),
        (Duration::seconds(190), "3m10s"),
        (Duration::minutes(70), "70m"),
        (Duration::hours(47), "47h"),
        (Duration::hours(49), "2d1h"),
        (Duration::hours(8 * 24 + 2), "8d"),
        (Duration::hours(367 * 24), "367d"),
        (Duration::hours(365 * 2 * 24 + 25), "2y1d"),
        (Duration::hours(365 * 8 * 24 + 2), "8y"),
        (Duration::seconds(0), "0s"),
        (Duration::seconds(45), "45s"),
        (Duration::seconds(119), "119s"),
        (Duration::seconds(120), "2m"),
        (Duration::seconds(330), "5m30s"),
        (Duration::minutes(95), "95m"),
        (Duration::minutes(179), "179m"),
        (Duration::minutes(180), "3h"),
        (Duration::minutes(310), "5h10m"),
        (Duration::hours(30), "30h"),
        (Duration::hours(76), "3d4h"),
        (Duration::hours(72), "3d"),
        (Duration::days(689), "689d"),
        (Duration::days(730), "2y"),
        (Duration::milliseconds(-1500), "0s"),
        (Duration::seconds(-1), "0s"),
        (Duration::seconds(-2), "<invalid>"),
    ];
    for (d, want) in cases {
        assert_eq!(human_duration(*d), *want, "duration {d:?}");
    }
}

#[test]
fn age_and_unknown() {
    let o = json!({"metadata": {"creationTimestamp": ago(Duration::minutes(5))}});
    assert_eq!(age(&o, now()), "5m");
    assert_eq!(age(&json!({}), now()), "<unknown>");
    let micro = json!({"metadata": {"creationTimestamp": "2024-06-01T11:59:15.123456Z"}});
    assert_eq!(age(&micro, now()), "44s");
}

fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default",
                     "creationTimestamp": ago(Duration::minutes(5))},
        "spec": {"nodeName": "node1", "containers": [{"name": "web", "image": "nginx"}]},
        "status": status
    })
}

fn pod_row(p: &Value) -> Vec<String> {
    strs(&cells("", "Pod", p, now()))
}

#[test]
fn pod_running() {
    let p = pod(json!({
        "phase": "Running", "podIP": "10.42.0.5", "podIPs": [{"ip": "10.42.0.5"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0,
                               "state": {"running": {"startedAt": ago(Duration::minutes(4))}}}]
    }));
    assert_eq!(
        pod_row(&p),
        [
            "web-1",
            "1/1",
            "Running",
            "0",
            "5m",
            "10.42.0.5",
            "node1",
            "<none>",
            "<none>"
        ]
    );
    assert_eq!(row_conditions("", "Pod", &p), None);
}

#[test]
fn pod_crash_loop_with_recent_restart() {
    let p = pod(json!({
        "phase": "Running",
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "finishedAt": ago(Duration::seconds(65))}}}]
    }));
    let row = pod_row(&p);
    assert_eq!(row[1..4], ["0/1", "CrashLoopBackOff", "3 (65s ago)"]);
    assert_eq!(row[5], "<none>");
}

#[test]
fn pod_pending_and_init_states() {
    let creating = pod(json!({"phase": "Pending",
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
    assert_eq!(pod_row(&creating)[2], "ContainerCreating");

    let mut with_init = pod(json!({"phase": "Pending",
        "initContainerStatuses": [{"name": "init", "ready": false, "restartCount": 0,
            "state": {"running": {}}}],
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "PodInitializing"}}}]}));
    with_init["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
    assert_eq!(pod_row(&with_init)[1..3], ["0/1", "Init:0/1"]);

    with_init["status"]["initContainerStatuses"][0]["state"] =
        json!({"waiting": {"reason": "ImagePullBackOff"}});
    assert_eq!(pod_row(&with_init)[2], "Init:ImagePullBackOff");

    with_init["status"]["initContainerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 2}});
    with_init["status"]["initContainerStatuses"][0]["restartCount"] = json!(4);
    assert_eq!(pod_row(&with_init)[2..4], ["Init:ExitCode:2", "4"]);

    with_init["status"]["initContainerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 137, "signal": 9}});
    assert_eq!(pod_row(&with_init)[2], "Init:Signal:9");

    with_init["status"]["initContainerStatuses"][0]["state"] =
        json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    assert_eq!(pod_row(&with_init)[2], "Init:Error");

    let gated = pod(json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
    assert_eq!(pod_row(&gated)[1..3], ["0/1", "SchedulingGated"]);
}

#[test]
fn pod_sidecar_counts_towards_ready() {
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(Duration::minutes(3))}}}],
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
    p["spec"]["initContainers"] =
        json!([{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]);
    assert_eq!(pod_row(&p)[1..4], ["2/2", "Running", "1 (3m ago)"]);
}

#[test]
fn pod_completed_terminating_and_node_lost() {
    let done = pod(json!({"phase": "Succeeded",
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}));
    assert_eq!(pod_row(&done)[1..3], ["0/1", "Completed"]);
    assert_eq!(
        row_conditions("", "Pod", &done),
        Some(
            json!([{"type": "Completed", "status": "True", "reason": "Succeeded",
                     "message": "The pod has completed successfully."}])
        )
    );

    let mut deleting = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "state": {"running": {}}}]}));
    deleting["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
    assert_eq!(pod_row(&deleting)[1..3], ["1/1", "Terminating"]);

    let mut lost = pod(json!({"phase": "Running", "reason": "NodeLost"}));
    lost["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
    assert_eq!(pod_row(&lost)[2], "Unknown");

    let mut finished_deleting = done.clone();
    finished_deleting["metadata"]["deletionTimestamp"] = json!(ago(Duration::seconds(3)));
    assert_eq!(pod_row(&finished_deleting)[2], "Completed");

    let evicted = pod(json!({"phase": "Failed", "reason": "Evicted"}));
    assert_eq!(pod_row(&evicted)[2], "Evicted");

    let oom = pod(json!({"phase": "Running",
        "containerStatuses": [{"name": "web", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 137}}}]}));
    assert_eq!(pod_row(&oom)[2], "ExitCode:137");
}

#[test]
fn pod_readiness_gates_and_nominated_node() {
    let mut p = pod(json!({"phase": "Pending", "nominatedNodeName": "node2",
        "conditions": [{"type": "example.com/gate", "status": "True"}]}));
    p["spec"]["readinessGates"] =
        json!([{"conditionType": "example.com/gate"}, {"conditionType": "other"}]);
    let row = pod_row(&p);
    assert_eq!(row[7..9], ["node2", "1/2"]);
}

#[test]
fn deployment_replicaset_statefulset_daemonset() {
    let d = json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::hours(30))},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"spec": {"containers": [
                    {"name": "web", "image": "nginx:1.27"}, {"name": "log", "image": "busybox"}]}}},
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
    let row = cells("apps", "Deployment", &d, now());
    assert_eq!(
        row,
        vec![
            json!("web"),
            json!("2/3"),
            json!(3),
            json!(2),
            json!("30h"),
            json!("web,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web")
        ]
    );
    let rs = cells("apps", "ReplicaSet", &d, now());
    assert_eq!(
        rs,
        vec![
            json!("web"),
            json!(3),
            json!(0),
            json!(2),
            json!("30h"),
            json!("web,log"),
            json!("nginx:1.27,busybox"),
            json!("app=web")
        ]
    );
    let sts = cells("apps", "StatefulSet", &d, now());
    assert_eq!(
        strs(&sts),
        ["web", "2/3", "30h", "web,log", "nginx:1.27,busybox"]
    );
    let no_status = json!({"metadata": {"name": "x"}, "spec": {"selector": {}}});
    assert_eq!(
        strs(&cells("apps", "Deployment", &no_status, now()))[1..4],
        ["0/1", "0", "0"]
    );

    let ds = json!({"metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "a", "image": "agent:1"}]}}},
        "status": {"desiredNumberScheduled": 2, "currentNumberScheduled": 2, "numberReady": 1,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}});
    assert_eq!(
        cells("apps", "DaemonSet", &ds, now()),
        vec![
            json!("agent"),
            json!(2),
            json!(2),
            json!(1),
            json!(2),
            json!(1),
            json!("kubernetes.io/os=linux"),
            json!("<unknown>"),
            json!("a"),
            json!("agent:1"),
            json!("app=agent")
        ]
    );
}

fn svc(spec: Value, status: Value) -> Vec<String> {
    let s = json!({"metadata": {"name": "web", "creationTimestamp": ago(Duration::days(3))},
                   "spec": spec, "status": status});
    strs(&cells("", "Service", &s, now()))
}

#[test]
fn services_of_each_type() {
    assert_eq!(
        svc(
            json!({"type": "ClusterIP", "clusterIP": "10.43.0.10", "clusterIPs": ["10.43.0.10"],
                   "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
                   "selector": {"app": "web"}}),
            json!({})
        ),
        [
            "web",
            "ClusterIP",
            "10.43.0.10",
            "<none>",
            "80/TCP",
            "3d",
            "app=web"
        ]
    );
    assert_eq!(
        svc(
            json!({"type": "NodePort", "clusterIP": "10.43.0.11",
                   "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080},
                             {"port": 53, "protocol": "UDP"}]}),
            json!({})
        ),
        [
            "web",
            "NodePort",
            "10.43.0.11",
            "<none>",
            "80:30080/TCP,53/UDP",
            "3d",
            "<none>"
        ]
    );
    assert_eq!(
        svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.43.0.12",
                   "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
            json!({"loadBalancer": {}})
        )[3],
        "<pending>"
    );
    assert_eq!(
        svc(
            json!({"type": "LoadBalancer", "clusterIP": "10.43.0.12", "externalIPs": ["1.2.3.4"],
                   "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
            json!({"loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"ip": "192.168.1.10"}]}})
        )[3],
        "192.168.1.10,192.168.1.20,1.2.3.4"
    );
    assert_eq!(
        svc(
            json!({"type": "ExternalName", "externalName": "db.example.com"}),
            json!({})
        )[1..5],
        ["ExternalName", "<none>", "db.example.com", "<none>"]
    );
    assert_eq!(
        svc(
            json!({"type": "ClusterIP", "clusterIP": "None", "externalIPs": ["5.6.7.8"],
                   "ports": [{"port": 5432}]}),
            json!({})
        )[2..5],
        ["None", "5.6.7.8", "5432/TCP"]
    );
}

#[test]
fn endpoints_and_slices() {
    let ep = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.42.0.5"}, {"ip": "10.42.0.6"}, {"ip": "10.42.0.7"}, {"ip": "10.42.0.8"}],
         "ports": [{"port": 80}]},
        {"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}]});
    assert_eq!(
        strs(&cells("", "Endpoints", &ep, now()))[1],
        "10.42.0.5:80,10.42.0.6:80,10.42.0.7:80 + 2 more..."
    );
    let small = json!({"metadata": {"name": "web"}, "subsets": [
        {"addresses": [{"ip": "10.42.0.5"}, {"ip": "fd00::1"}], "ports": [{"port": 80}, {"port": 443}]}]});
    assert_eq!(
        strs(&cells("", "Endpoints", &small, now()))[1],
        "10.42.0.5:80,[fd00::1]:80,10.42.0.5:443 + 1 more..."
    );
    let headless =
        json!({"metadata": {"name": "db"}, "subsets": [{"addresses": [{"ip": "10.42.0.9"}]}]});
    assert_eq!(
        strs(&cells("", "Endpoints", &headless, now()))[1],
        "10.42.0.9"
    );
    let empty = json!({"metadata": {"name": "none"}});
    assert_eq!(strs(&cells("", "Endpoints", &empty, now()))[1], "<none>");

    let slice = json!({"metadata": {"name": "web-abc"}, "addressType": "IPv4",
        "ports": [{"port": 80, "name": "http"}, {"name": "named"}, {}],
        "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6"]},
                      {"addresses": ["10.42.0.7"]}, {"addresses": ["10.42.0.8"]}]});
    assert_eq!(
        strs(&cells("discovery.k8s.io", "EndpointSlice", &slice, now()))[1..4],
        [
            "IPv4",
            "80,named,*",
            "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more..."
        ]
    );
    let bare = json!({"metadata": {"name": "x"}, "addressType": "IPv4"});
    assert_eq!(
        strs(&cells("discovery.k8s.io", "EndpointSlice", &bare, now()))[2..4],
        ["<unset>", "<unset>"]
    );
}

#[test]
fn nodes() {
    let n = json!({"metadata": {"name": "node1", "creationTimestamp": ago(Duration::days(10)),
            "labels": {"node-role.kubernetes.io/master": "true",
                       "node-role.kubernetes.io/control-plane": "true", "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                  {"type": "Ready", "status": "True"}],
                   "addresses": [{"type": "InternalIP", "address": "192.168.1.5"},
                                 {"type": "Hostname", "address": "node1"}],
                   "nodeInfo": {"kubeletVersion": "v1.32.0+skiff", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                "kernelVersion": "6.1.0-18-amd64", "containerRuntimeVersion": "containerd://1.7.20"}}});
    assert_eq!(
        strs(&cells("", "Node", &n, now())),
        [
            "node1",
            "Ready",
            "control-plane,master",
            "10d",
            "v1.32.0+skiff",
            "192.168.1.5",
            "<none>",
            "Debian GNU/Linux 12 (bookworm)",
            "6.1.0-18-amd64",
            "containerd://1.7.20"
        ]
    );
    let mut cordoned = n.clone();
    cordoned["spec"]["unschedulable"] = json!(true);
    cordoned["status"]["conditions"][1]["status"] = json!("Unknown");
    assert_eq!(
        strs(&cells("", "Node", &cordoned, now()))[1],
        "NotReady,SchedulingDisabled"
    );
    let bare = json!({"metadata": {"name": "n2", "labels": {"kubernetes.io/role": "worker"}}});
    let row = strs(&cells("", "Node", &bare, now()));
    assert_eq!(row[1..3], ["Unknown", "worker"]);
    assert_eq!(row[7..10], ["<unknown>", "<unknown>", "<unknown>"]);
    let plain = json!({"metadata": {"name": "n3"}});
    assert_eq!(strs(&cells("", "Node", &plain, now()))[2], "<none>");
}

#[test]
fn events_core_and_events_api() {
    let e = json!({"metadata": {"name": "web-1.17d", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "fieldPath": "spec.containers{web}"},
        "reason": "Pulled", "message": "Successfully pulled image \"nginx\"\n", "type": "Normal",
        "source": {"component": "kubelet", "host": "node1"},
        "firstTimestamp": ago(Duration::minutes(10)), "lastTimestamp": ago(Duration::minutes(2)),
        "count": 4});
    assert_eq!(
        cells("", "Event", &e, now()),
        vec![
            json!("2m"),
            json!("Normal"),
            json!("Pulled"),
            json!("pod/web-1"),
            json!("spec.containers{web}"),
            json!("kubelet, node1"),
            json!("Successfully pulled image \"nginx\""),
            json!("10m"),
            json!(4),
            json!("web-1.17d")
        ]
    );
    let single = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Node"},
        "eventTime": "2024-06-01T11:59:30.000000Z", "reportingComponent": "skiff-controller",
        "reportingInstance": "srv", "type": "Warning", "reason": "R", "message": "m"});
    assert_eq!(
        strs(&cells("", "Event", &single, now())),
        [
            "30s",
            "Warning",
            "R",
            "node",
            "",
            "skiff-controller, srv",
            "m",
            "30s",
            "1",
            "x"
        ]
    );
    let series = json!({"metadata": {"name": "s"}, "regarding": {"kind": "Deployment", "name": "web"},
        "eventTime": ago(Duration::hours(1)), "series": {"count": 7, "lastObservedTime": ago(Duration::seconds(5))},
        "reportingController": "deployment-controller", "note": "Scaled", "type": "Normal", "reason": "ScalingReplicaSet"});
    assert_eq!(
        strs(&cells("events.k8s.io", "Event", &series, now())),
        [
            "5s",
            "Normal",
            "ScalingReplicaSet",
            "deployment/web",
            "",
            "deployment-controller",
            "Scaled",
            "60m",
            "7",
            "s"
        ]
    );
}

#[test]
fn jobs_and_cronjobs() {
    let j = json!({"metadata": {"name": "pi", "creationTimestamp": ago(Duration::minutes(3))},
        "spec": {"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
                 "template": {"spec": {"containers": [{"name": "pi", "image": "perl"}]}}},
        "status": {"succeeded": 1, "startTime": ago(Duration::minutes(3)),
                   "completionTime": ago(Duration::seconds(160)),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}});
    assert_eq!(
        strs(&cells("batch", "Job", &j, now())),
        [
            "pi",
            "Complete",
            "1/1",
            "20s",
            "3m",
            "pi",
            "perl",
            "batch.kubernetes.io/controller-uid=u1"
        ]
    );
    let running = json!({"metadata": {"name": "w"}, "spec": {"parallelism": 3},
        "status": {"startTime": ago(Duration::seconds(330)), "active": 3}});
    assert_eq!(
        strs(&cells("batch", "Job", &running, now()))[1..4],
        ["Running", "0/1 of 3", "5m30s"]
    );
    let failed = json!({"metadata": {"name": "f"}, "spec": {"completions": 5},
        "status": {"succeeded": 2, "conditions": [{"type": "Failed", "status": "True"}]}});
    assert_eq!(
        strs(&cells("batch", "Job", &failed, now()))[1..4],
        ["Failed", "2/5", ""]
    );
    let suspended = json!({"metadata": {"name": "s"}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}});
    assert_eq!(
        strs(&cells("batch", "Job", &suspended, now()))[1..3],
        ["Suspended", "0/1"]
    );

    let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(Duration::days(2))},
        "spec": {"schedule": "*/5 * * * *", "suspend": false,
                 "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "h", "image": "busybox"}]}}}}},
        "status": {"active": [{"name": "hello-1"}], "lastScheduleTime": ago(Duration::seconds(40))}});
    assert_eq!(
        cells("batch", "CronJob", &cj, now()),
        vec![
            json!("hello"),
            json!("*/5 * * * *"),
            json!("<none>"),
            json!("False"),
            json!(1),
            json!("40s"),
            json!("2d"),
            json!("h"),
            json!("busybox"),
            json!("<none>")
        ]
    );
}

#[test]
fn config_and_rbac_and_misc_kinds() {
    let cm = json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}});
    assert_eq!(cells("", "ConfigMap", &cm, now())[1], json!(3));
    let sec = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
    assert_eq!(
        cells("", "Secret", &sec, now())[1..3],
        [json!("kubernetes.io/tls"), json!(2)]
    );
    let sa = json!({"metadata": {"name": "default"}});
    assert_eq!(cells("", "ServiceAccount", &sa, now())[1], json!(0));
    let ns = json!({"metadata": {"name": "kube-system"}, "status": {"phase": "Active"}});
    assert_eq!(strs(&cells("", "Namespace", &ns, now()))[1], "Active");

    let rb = json!({"metadata": {"name": "rb"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                     {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                     {"kind": "User", "name": "bob"}]});
    assert_eq!(
        strs(&cells(
            "rbac.authorization.k8s.io",
            "RoleBinding",
            &rb,
            now()
        )),
        [
            "rb",
            "ClusterRole/view",
            "<unknown>",
            "alice, bob",
            "devs",
            "tools/ci"
        ]
    );

    let role = json!({"metadata": {"name": "r", "creationTimestamp": "2024-05-01T08:09:10Z"}});
    assert_eq!(
        columns("rbac.authorization.k8s.io", "Role")
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>(),
        ["Name", "Created At"]
    );
    assert_eq!(columns("", "LimitRange")[1].type_, "date");
    assert_eq!(
        strs(&cells(
            "rbac.authorization.k8s.io",
            "ClusterRole",
            &role,
            now()
        )),
        ["r", "2024-05-01T08:09:10Z"]
    );

    let lease = json!({"metadata": {"name": "node1"}, "spec": {"holderIdentity": "node1"}});
    assert_eq!(
        strs(&cells("coordination.k8s.io", "Lease", &lease, now()))[1],
        "node1"
    );

    let sc = json!({"metadata": {"name": "local-path",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": "rancher.io/local-path", "volumeBindingMode": "WaitForFirstConsumer"});
    assert_eq!(
        cells("storage.k8s.io", "StorageClass", &sc, now())[..5],
        [
            json!("local-path (default)"),
            json!("rancher.io/local-path"),
            json!("Delete"),
            json!("WaitForFirstConsumer"),
            json!(false)
        ]
    );

    let pc = json!({"metadata": {"name": "system-node-critical"}, "value": 2000001000,
        "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority"});
    assert_eq!(
        cells("scheduling.k8s.io", "PriorityClass", &pc, now()),
        vec![
            json!("system-node-critical"),
            json!(2000001000),
            json!(false),
            json!("<unknown>"),
            json!("PreemptLowerPriority")
        ]
    );

    let cr = json!({"metadata": {"name": "agent-5d4f", "ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent", "controller": true}]},
        "revision": 2});
    assert_eq!(
        cells("apps", "ControllerRevision", &cr, now())[1..3],
        [json!("daemonset.apps/agent"), json!(2)]
    );

    let pdb = json!({"metadata": {"name": "p"}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}});
    assert_eq!(
        cells("policy", "PodDisruptionBudget", &pdb, now())[1..4],
        [json!("50%"), json!("N/A"), json!(1)]
    );

    let ing = json!({"metadata": {"name": "i"}, "spec": {"ingressClassName": "traefik",
            "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"}, {"host": "d.example.com"}],
            "tls": [{"hosts": ["a.example.com"]}]},
        "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.5"}]}}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "Ingress", &ing, now()))[1..5],
        [
            "traefik",
            "a.example.com,b.example.com,c.example.com + 2 more...",
            "192.168.1.5",
            "80, 443"
        ]
    );
    let plain_ing = json!({"metadata": {"name": "j"}, "spec": {"rules": [{}]}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "Ingress", &plain_ing, now()))[1..5],
        ["<none>", "*", "", "80"]
    );
    let ic = json!({"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller",
        "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "IngressClass", &ic, now()))[1..3],
        [
            "traefik.io/ingress-controller",
            "IngressParameters.k8s.example.com/p"
        ]
    );
    let np = json!({"metadata": {"name": "deny"}, "spec": {"podSelector": {}}});
    assert_eq!(
        strs(&cells("networking.k8s.io", "NetworkPolicy", &np, now()))[1],
        "<none>"
    );

    let pvc = json!({"metadata": {"name": "data"}, "spec": {"volumeName": "pv-1", "storageClassName": "local-path",
            "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem"},
        "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}});
    assert_eq!(
        strs(&cells("", "PersistentVolumeClaim", &pvc, now())),
        [
            "data",
            "Bound",
            "pv-1",
            "1Gi",
            "RWO,ROX",
            "local-path",
            "<unset>",
            "<unknown>",
            "Filesystem"
        ]
    );
    let pv = json!({"metadata": {"name": "pv-1"}, "spec": {"capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"], "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": "default", "name": "data"}, "storageClassName": "local-path"},
        "status": {"phase": "Bound"}});
    assert_eq!(
        strs(&cells("", "PersistentVolume", &pv, now())),
        [
            "pv-1",
            "1Gi",
            "RWO",
            "Delete",
            "Bound",
            "default/data",
            "local-path",
            "<unset>",
            "",
            "<unknown>",
            "<unset>"
        ]
    );
    let rq = json!({"metadata": {"name": "q"}, "status": {
        "hard": {"pods": "10", "limits.cpu": "2", "requests.memory": "1Gi"},
        "used": {"pods": "3", "limits.cpu": "500m"}}});
    assert_eq!(
        strs(&cells("", "ResourceQuota", &rq, now()))[2..4],
        ["pods: 3/10, requests.memory: 0/1Gi", "limits.cpu: 500m/2"]
    );
    let rc = json!({"metadata": {"name": "rc"}, "spec": {"replicas": 2, "selector": {"app": "x"},
        "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}, "status": {"replicas": 2, "readyReplicas": 1}});
    assert_eq!(
        cells("", "ReplicationController", &rc, now()),
        vec![
            json!("rc"),
            json!(2),
            json!(2),
            json!(1),
            json!("<unknown>"),
            json!("c"),
            json!("i"),
            json!("app=x")
        ]
    );
    let pt = json!({"metadata": {"name": "pt"}, "template": {"metadata": {"labels": {"a": "b"}},
        "spec": {"containers": [{"name": "c", "image": "i"}]}}});
    assert_eq!(
        strs(&cells("", "PodTemplate", &pt, now())),
        ["pt", "c", "i", "a=b"]
    );
}

#[test]
fn every_registry_kind_has_one_cell_per_column() {
    let objs = [
        json!({}),
        json!({"metadata": {"name": "x", "creationTimestamp": ago(Duration::hours(1))}}),
    ];
    for r in RESOURCES {
        let cols = columns(r.group, r.kind);
        assert!(!cols.is_empty());
        assert_eq!(
            cols[0].name,
            if r.kind == "Event" {
                "Last Seen"
            } else {
                "Name"
            }
        );
        for o in &objs {
            let row = cells(r.group, r.kind, o, now());
            assert_eq!(row.len(), cols.len(), "{}/{}", r.group, r.kind);
            for (c, v) in cols.iter().zip(&row) {
                if c.type_ == "integer" {
                    assert!(v.is_i64(), "{} {} {v}", r.kind, c.name);
                }
            }
        }
    }
}

#[test]
fn wide_columns_and_serialization() {
    let pods: Vec<(&str, i32)> = columns("", "Pod")
        .iter()
        .map(|c| (c.name, c.priority))
        .collect();
    assert_eq!(
        pods,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    let ev: Vec<(&str, i32)> = columns("", "Event")
        .iter()
        .map(|c| (c.name, c.priority))
        .collect();
    assert_eq!(
        ev,
        [
            ("Last Seen", 0),
            ("Type", 0),
            ("Reason", 0),
            ("Object", 0),
            ("Subobject", 1),
            ("Source", 1),
            ("Message", 0),
            ("First Seen", 1),
            ("Count", 1),
            ("Name", 1)
        ]
    );
    let v = serde_json::to_value(&columns("", "Namespace")[0]).unwrap();
    assert_eq!(v["type"], "string");
    assert_eq!(v["format"], "name");
    assert_eq!(v["priority"], 0);
    assert!(v["description"]
        .as_str()
        .unwrap()
        .starts_with("Name must be unique"));
    assert_eq!(columns("events.k8s.io", "Event"), columns("", "Event"));
}
