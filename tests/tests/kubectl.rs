//! End-to-end: the stock kubectl against one shared `skiff server`, one namespace per test,
//! every output compared with what a real Kubernetes 1.32 API server (without controllers) gives.

use serde_json::{json, Value};
use skiff_e2e::*;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn k() -> &'static Cluster {
    static C: OnceLock<Result<Cluster, String>> = OnceLock::new();
    static API: OnceLock<Result<Cluster, String>> = OnceLock::new();
    let c = if API_ONLY.with(|a| a.get()) {
        API.get_or_init(|| {
            Cluster::try_start(&["--disable-controller-manager", "--disable-scheduler"])
        })
    } else {
        C.get_or_init(|| Cluster::try_start(&[]))
    };
    match c {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

thread_local! {
    static API_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Makes `k()` (and every helper) use a second shared server without controllers and
/// scheduler for the rest of the calling test: for tests about what the API server alone
/// stores and serves (hand-made ReplicaSets, untouched status).
fn use_api_only_server() {
    API_ONLY.with(|a| a.set(true));
}

/// Asserts exit code, stdout and stderr all at once, printing the server log tail on failure.
#[track_caller]
fn expect(out: &Output, code: i32, stdout: &str, stderr: &str) {
    expect_on(k(), out, code, stdout, stderr)
}

#[track_caller]
fn expect_on(c: &Cluster, out: &Output, code: i32, stdout: &str, stderr: &str) {
    if out.code != code || out.stdout != stdout || out.stderr != stderr {
        panic!(
            "unexpected kubectl result\n{out}\n--- wanted exit code {code}, stdout ---\n{stdout}\n--- wanted stderr ---\n{stderr}\n--- server log tail ---\n{}",
            tail(&c.server_log(), 30)
        );
    }
}

#[track_caller]
fn expect_table(out: &Output, want: &str) {
    expect_table_on(k(), out, want)
}

#[track_caller]
fn expect_table_on(c: &Cluster, out: &Output, want: &str) {
    let got = normalize_tables(&out.stdout);
    if out.code != 0 || got != want || !out.stderr.is_empty() {
        panic!(
            "unexpected table\n{out}\n--- normalised ---\n{got}\n--- wanted ---\n{want}\n--- server log tail ---\n{}",
            tail(&c.server_log(), 30)
        );
    }
}

fn jsonpath(ns: &str, what: &str, path: &str) -> String {
    let out = k().kubectl(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")]);
    out.clean();
    out.stdout
}

fn get_json(ns: &str, what: &str) -> Value {
    let out = k().kubectl(&["get", what, "-n", ns, "-o", "json"]);
    out.clean();
    out.json()
}

#[test]
fn get_nodes_and_empty_namespace_print_no_resources() {
    expect(
        &k().kubectl(&["get", "nodes"]),
        0,
        "",
        "No resources found\n",
    );
    let ns = k().namespace("t-empty");
    expect(
        &k().kubectl(&["get", "pods", "-n", &ns]),
        0,
        "",
        "No resources found in t-empty namespace.\n",
    );
    expect(
        &k().kubectl(&["get", "deploy,rs,po", "-o", "wide", "-n", &ns]),
        0,
        "",
        "No resources found in t-empty namespace.\n",
    );
}

#[test]
fn default_namespaces_and_kubernetes_service_exist() {
    let out = k().kubectl(&["get", "namespaces", "-o", "name"]);
    out.clean();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            out.stdout.lines().any(|l| l == format!("namespace/{ns}")),
            "namespace {ns} missing:\n{out}"
        );
    }
    let svc = get_json("default", "service/kubernetes");
    assert_eq!(svc["spec"]["type"], "ClusterIP", "{svc}");
    assert_eq!(svc["spec"]["clusterIP"], "10.43.0.1", "{svc}");
    // targetPort is the port the API server listens on.
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name":"https","port":443,"protocol":"TCP","targetPort":k().port}]),
        "{svc}"
    );
}

#[test]
fn create_deployment_protobuf_then_get_wide_and_yaml() {
    use_api_only_server();
    let ns = k().namespace("t-deploy");
    expect(
        &k().kubectl(&[
            "create",
            "deployment",
            "pagweb",
            "--image=web:v1",
            "--replicas=3",
            "-n",
            &ns,
        ]),
        0,
        "deployment.apps/pagweb created\n",
        "",
    );
    expect_table(
        &k().kubectl(&["get", "deploy,rs,po", "-o", "wide", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "AGE",
                "CONTAINERS",
                "IMAGES",
                "SELECTOR",
            ],
            &[
                "deployment.apps/pagweb",
                "0/3",
                "0",
                "0",
                "<age>",
                "web",
                "web:v1",
                "app=pagweb",
            ],
        ]),
    );
    expect_table(
        &k().kubectl(&["get", "deployments", "-n", &ns]),
        &table(&[
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            &["pagweb", "0/3", "0", "0", "<age>"],
        ]),
    );
    // The stored object carries the upstream defaults (and nothing else).
    let mut d = get_json(&ns, "deployment/pagweb");
    scrub(&mut d);
    assert_eq!(
        d,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "creationTimestamp": "<time>",
                "generation": 1,
                "labels": {"app": "pagweb"},
                "name": "pagweb",
                "namespace": "t-deploy",
                "resourceVersion": "<rv>",
                "uid": "<uid>"
            },
            "spec": {
                "progressDeadlineSeconds": 600,
                "replicas": 3,
                "revisionHistoryLimit": 10,
                "selector": {"matchLabels": {"app": "pagweb"}},
                "strategy": {
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                    "type": "RollingUpdate"
                },
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "pagweb"}},
                    "spec": {
                        "containers": [{
                            "image": "web:v1",
                            "imagePullPolicy": "IfNotPresent",
                            "name": "web",
                            "resources": {},
                            "terminationMessagePath": "/dev/termination-log",
                            "terminationMessagePolicy": "File"
                        }],
                        "dnsPolicy": "ClusterFirst",
                        "restartPolicy": "Always",
                        "schedulerName": "default-scheduler",
                        "securityContext": {},
                        "terminationGracePeriodSeconds": 30
                    }
                }
            },
            "status": {}
        })
    );
    // -o yaml is the same object.
    let y = k().kubectl(&["get", "deployment", "pagweb", "-n", &ns, "-o", "yaml"]);
    y.clean();
    assert!(
        y.stdout.starts_with(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  creationTimestamp: \""
        ),
        "{y}"
    );
    assert!(
        y.stdout
            .contains("\n  replicas: 3\n  revisionHistoryLimit: 10\n"),
        "{y}"
    );
    assert!(y.stdout.ends_with("status: {}\n"), "{y}");
    // Creating it again is a 409 AlreadyExists.
    expect(
        &k().kubectl(&[
            "create",
            "deployment",
            "pagweb",
            "--image=web:v1",
            "-n",
            &ns,
        ]),
        1,
        "",
        "error: failed to create deployment: deployments.apps \"pagweb\" already exists\n",
    );
}

const APP_YAML: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels:
    app: app
spec:
  replicas: 2
  selector:
    matchLabels:
      app: app
  template:
    metadata:
      labels:
        app: app
    spec:
      containers:
      - name: web
        image: web:v1
        ports:
        - containerPort: 80
";

#[test]
fn apply_edit_apply_configured_and_unchanged() {
    // About what the API server writes: no deployment controller bumping status meanwhile.
    use_api_only_server();
    let ns = k().namespace("t-apply");
    let file = k().write_file("app.yaml", APP_YAML);
    let f = file.to_str().unwrap();
    expect(
        &k().kubectl(&["apply", "-f", f, "-n", &ns]),
        0,
        "deployment.apps/app created\n",
        "",
    );
    expect(
        &k().kubectl(&["apply", "-f", f, "-n", &ns]),
        0,
        "deployment.apps/app unchanged\n",
        "",
    );
    let last = jsonpath(
        &ns,
        "deploy/app",
        "{.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
    );
    let last: Value = serde_json::from_str(&last).expect("last-applied is JSON");
    assert_eq!(
        last["spec"]["template"]["spec"]["containers"][0]["image"],
        "web:v1"
    );

    // edit: an editor that rewrites the image.
    expect(
        &k().kubectl_env(
            &["edit", "deployment/app", "-n", &ns],
            &[("KUBE_EDITOR", "sed -i 's#image: web:v1#image: web:v2#'")],
        ),
        0,
        "deployment.apps/app edited\n",
        "",
    );
    assert_eq!(
        jsonpath(
            &ns,
            "deploy/app",
            "{.spec.template.spec.containers[0].image}"
        ),
        "web:v2"
    );
    assert_eq!(jsonpath(&ns, "deploy/app", "{.metadata.generation}"), "2");

    // apply puts the file's image back (three-way strategic merge patch), then nothing changes.
    expect(
        &k().kubectl(&["apply", "-f", f, "-n", &ns]),
        0,
        "deployment.apps/app configured\n",
        "",
    );
    assert_eq!(
        jsonpath(
            &ns,
            "deploy/app",
            "{.spec.template.spec.containers[0].image}"
        ),
        "web:v1"
    );
    assert_eq!(
        jsonpath(
            &ns,
            "deploy/app",
            "{.spec.template.spec.containers[0].ports}"
        ),
        r#"[{"containerPort":80,"protocol":"TCP"}]"#
    );
    expect(
        &k().kubectl(&["apply", "-f", f, "-n", &ns]),
        0,
        "deployment.apps/app unchanged\n",
        "",
    );

    // A changed manifest is configured.
    let file2 = k().write_file("app3.yaml", &APP_YAML.replace("replicas: 2", "replicas: 3"));
    expect(
        &k().kubectl(&["apply", "-f", file2.to_str().unwrap(), "-n", &ns]),
        0,
        "deployment.apps/app configured\n",
        "",
    );
    assert_eq!(jsonpath(&ns, "deploy/app", "{.spec.replicas}"), "3");

    // patch: a strategic merge patch, and one that changes nothing.
    expect(
        &k().kubectl(&[
            "patch",
            "deploy",
            "app",
            "-n",
            &ns,
            "-p",
            r#"{"spec":{"replicas":4}}"#,
        ]),
        0,
        "deployment.apps/app patched\n",
        "",
    );
    let rv = jsonpath(&ns, "deploy/app", "{.metadata.resourceVersion}");
    expect(
        &k().kubectl(&[
            "patch",
            "deploy",
            "app",
            "-n",
            &ns,
            "-p",
            r#"{"spec":{"replicas":4}}"#,
        ]),
        0,
        "deployment.apps/app patched (no change)\n",
        "",
    );
    assert_eq!(
        jsonpath(&ns, "deploy/app", "{.metadata.resourceVersion}"),
        rv,
        "a no-op patch must not write"
    );
    // merge and JSON patches.
    expect(
        &k().kubectl(&[
            "patch",
            "deploy",
            "app",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"metadata":{"labels":{"tier":"web"}}}"#,
        ]),
        0,
        "deployment.apps/app patched\n",
        "",
    );
    expect(
        &k().kubectl(&[
            "patch",
            "deploy",
            "app",
            "-n",
            &ns,
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
        ]),
        0,
        "deployment.apps/app patched\n",
        "",
    );
    assert_eq!(
        jsonpath(
            &ns,
            "deploy/app",
            "{.metadata.labels.tier} {.spec.replicas}"
        ),
        "web 1"
    );
}

#[test]
fn apply_server_side_with_conflict_and_force() {
    let ns = k().namespace("t-ssa");
    let cm = |v: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa\ndata:\n  key: {v}\n")
    };
    expect(
        &k().kubectl_stdin(
            &["apply", "--server-side", "-f", "-", "-n", &ns],
            &cm("one"),
        ),
        0,
        "configmap/ssa serverside-applied\n",
        "",
    );
    // Same manager, same content: still serverside-applied.
    expect(
        &k().kubectl_stdin(
            &["apply", "--server-side", "-f", "-", "-n", &ns],
            &cm("one"),
        ),
        0,
        "configmap/ssa serverside-applied\n",
        "",
    );
    let mf = get_managed(&ns);
    assert_eq!(
        mf,
        vec![(
            "kubectl".to_string(),
            "Apply".to_string(),
            json!({"f:data":{"f:key":{}}})
        )]
    );

    // Another manager changing the same field conflicts.
    expect(
        &k().kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--field-manager=other",
                "-f",
                "-",
                "-n",
                &ns,
            ],
            &cm("two"),
        ),
        1,
        "",
        "error: Apply failed with 1 conflict: conflict with \"kubectl\": .data.key
Please review the fields above--they currently have other managers. Here
are the ways you can resolve this warning:
* If you intend to manage all of these fields, please re-run the apply
  command with the `--force-conflicts` flag.
* If you do not intend to manage all of the fields, please edit your
  manifest to remove references to the fields that should keep their
  current managers.
* You may co-own fields by updating your manifest to match the existing
  value; in this case, you'll become the manager if the other manager(s)
  stop managing the field (remove it from their configuration).
See https://kubernetes.io/docs/reference/using-api/server-side-apply/#conflicts\n",
    );
    assert_eq!(
        jsonpath(&ns, "cm/ssa", "{.data.key}"),
        "one",
        "a conflicting apply must not write"
    );
    expect(
        &k().kubectl_stdin(
            &[
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=other",
                "-f",
                "-",
                "-n",
                &ns,
            ],
            &cm("two"),
        ),
        0,
        "configmap/ssa serverside-applied\n",
        "",
    );
    assert_eq!(jsonpath(&ns, "cm/ssa", "{.data.key}"), "two");
    // The field moved to "other"; kubectl's entry owned nothing else and is gone.
    assert_eq!(
        get_managed(&ns),
        vec![(
            "other".to_string(),
            "Apply".to_string(),
            json!({"f:data":{"f:key":{}}})
        )]
    );
    // Server-side apply of an object that does not exist yet creates it.
    expect(
        &k().kubectl_stdin(
            &["apply", "--server-side", "-f", "-", "-n", &ns],
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ssa2\ndata:\n  a: b\n",
        ),
        0,
        "configmap/ssa2 serverside-applied\n",
        "",
    );
    assert_eq!(jsonpath(&ns, "cm/ssa2", "{.data.a}"), "b");
}

fn get_managed(ns: &str) -> Vec<(String, String, Value)> {
    let out = k().kubectl(&[
        "get",
        "cm",
        "ssa",
        "-n",
        ns,
        "-o",
        "json",
        "--show-managed-fields",
    ]);
    out.clean();
    let v = out.json();
    v["metadata"]["managedFields"]
        .as_array()
        .unwrap_or_else(|| panic!("no managedFields: {v}"))
        .iter()
        .map(|e| {
            assert_eq!(e["apiVersion"], "v1", "{e}");
            assert_eq!(e["fieldsType"], "FieldsV1", "{e}");
            assert!(is_rfc3339(e["time"].as_str().unwrap_or("")), "{e}");
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

#[test]
fn scale_uses_the_scale_subresource() {
    let ns = k().namespace("t-scale");
    expect(
        &k().kubectl(&["create", "deployment", "web", "--image=web:v1", "-n", &ns]),
        0,
        "deployment.apps/web created\n",
        "",
    );
    expect(
        &k().kubectl(&["scale", "deploy", "web", "--replicas=5", "-n", &ns]),
        0,
        "deployment.apps/web scaled\n",
        "",
    );
    assert_eq!(jsonpath(&ns, "deploy/web", "{.spec.replicas}"), "5");
    // The deployment controller brings status.replicas (what Scale reports) up to 5.
    wait_for(
        Duration::from_secs(20),
        "deploy/web status.replicas 5",
        || (jsonpath(&ns, "deploy/web", "{.status.replicas}") == "5").then_some(()),
    );
    let uid = jsonpath(&ns, "deploy/web", "{.metadata.uid}");
    let out = k().kubectl(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/t-scale/deployments/web/scale",
    ]);
    out.clean();
    let scale = out.json();
    assert_eq!(scale["kind"], "Scale", "{scale}");
    assert_eq!(scale["apiVersion"], "autoscaling/v1", "{scale}");
    assert_eq!(scale["metadata"]["name"], "web", "{scale}");
    assert_eq!(scale["metadata"]["namespace"], "t-scale", "{scale}");
    assert_eq!(scale["metadata"]["uid"], uid.as_str(), "{scale}");
    assert_eq!(scale["spec"], json!({"replicas": 5}), "{scale}");
    assert_eq!(
        scale["status"],
        json!({"replicas": 5, "selector": "app=web"}),
        "{scale}"
    );
    // A failed precondition is checked against the scale subresource and writes nothing.
    expect(
        &k().kubectl(&[
            "scale",
            "deploy",
            "web",
            "--current-replicas=4",
            "--replicas=6",
            "-n",
            &ns,
        ]),
        1,
        "",
        "error: Expected replicas to be 4, was 5\n",
    );
    assert_eq!(jsonpath(&ns, "deploy/web", "{.spec.replicas}"), "5");
}

#[test]
fn expose_nodeport_then_get_and_describe_service() {
    // Its own server: NodePort and ClusterIP allocation is cluster-wide state.
    let c = Cluster::start();
    let jsonpath = |ns: &str, what: &str, path: &str| {
        let out = c.kubectl(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")]);
        out.clean();
        out.stdout
    };
    let ns = c.namespace("t-expose");
    expect_on(
        &c,
        &c.kubectl(&["create", "deployment", "web", "--image=web:v1", "-n", &ns]),
        0,
        "deployment.apps/web created\n",
        "",
    );
    expect_on(
        &c,
        &c.kubectl(&[
            "expose",
            "deployment",
            "web",
            "--port=80",
            "--type=NodePort",
            "-n",
            &ns,
        ]),
        0,
        "service/web exposed\n",
        "",
    );
    let ip = jsonpath(&ns, "svc/web", "{.spec.clusterIP}");
    let np: u32 = jsonpath(&ns, "svc/web", "{.spec.ports[0].nodePort}")
        .parse()
        .expect("nodePort is a number");
    assert!(
        (30000..=32767).contains(&np),
        "nodePort {np} outside 30000-32767"
    );
    assert!(
        ip.starts_with("10.43.") && ip != "10.43.0.1",
        "clusterIP {ip} not from 10.43.0.0/16"
    );
    let port = format!("80:{np}/TCP");
    expect_table_on(
        &c,
        &c.kubectl(&["get", "svc", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
            ],
            &["web", "NodePort", &ip, "<none>", &port, "<age>"],
        ]),
    );
    expect_table_on(
        &c,
        &c.kubectl(&["get", "svc", "-o", "wide", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE",
                "SELECTOR",
            ],
            &["web", "NodePort", &ip, "<none>", &port, "<age>", "app=web"],
        ]),
    );
    // The endpoints controller writes an (empty: no pods) Endpoints object for the service,
    // which describe prints as an empty Endpoints line (`<none>` is for a missing object).
    wait_for(Duration::from_secs(20), "endpoints/web", || {
        (c.kubectl(&["get", "endpoints", "web", "-n", &ns]).code == 0).then_some(())
    });
    let want = format!(
        "Name:                     web
Namespace:                t-expose
Labels:                   app=web
Annotations:              <none>
Selector:                 app=web
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       {ip}
IPs:                      {ip}
Port:                     <unset>  80/TCP
TargetPort:               80/TCP
NodePort:                 <unset>  {np}/TCP
Endpoints:                
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"
    );
    expect_on(
        &c,
        &c.kubectl(&["describe", "service", "web", "-n", &ns]),
        0,
        &want,
        "",
    );

    // The allocated port is taken: asking for it again is a 422 naming the field.
    let dup = format!(
        r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"dup"}},"spec":{{"type":"NodePort","selector":{{"app":"web"}},"ports":[{{"port":80,"nodePort":{np}}}]}}}}"#
    );
    expect_on(&c,
        &c.kubectl_stdin(&["create", "-f", "-", "-n", &ns], &dup),
        1,
        "",
        &format!("The Service \"dup\" is invalid: spec.ports[0].nodePort: Invalid value: {np}: provided port is already allocated\n"),
    );
    let low = r#"{"apiVersion":"v1","kind":"Service","metadata":{"name":"low"},"spec":{"type":"NodePort","selector":{"app":"web"},"ports":[{"port":80,"nodePort":80}]}}"#;
    expect_on(&c,
        &c.kubectl_stdin(&["create", "-f", "-", "-n", &ns], low),
        1,
        "",
        "The Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid range. The range of valid ports is 30000-32767\n",
    );
    // Deleting the service frees its port.
    expect_on(
        &c,
        &c.kubectl(&["delete", "svc", "web", "-n", &ns]),
        0,
        "service \"web\" deleted\n",
        "",
    );
    expect_on(
        &c,
        &c.kubectl_stdin(&["create", "-f", "-", "-n", &ns], &dup),
        0,
        "service/dup created\n",
        "",
    );
}

#[test]
fn get_pods_watch_shows_added_modified_deleted_live() {
    let ns = k().namespace("t-watch");
    let mut w = k().spawn_kubectl(&["get", "pods", "-w", "--output-watch-events", "-n", &ns]);
    // Another scheduler's pod: the built-in scheduler leaves it alone (no Unschedulable update).
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"schedulerName":"other-scheduler","containers":[{"name":"c","image":"busybox"}]}}"#;
    expect(
        &k().kubectl_stdin(&["create", "-f", "-", "-n", &ns], pod),
        0,
        "pod/p created\n",
        "",
    );
    let mut rows: Vec<Vec<String>> = Vec::new();
    let next = |rows: &mut Vec<Vec<String>>, what: &str| {
        let l = w.next_line(Duration::from_secs(20)).unwrap_or_else(|| {
            panic!(
                "`kubectl {}` printed no row for {what} within 20 s; rows so far: {rows:?}; stderr: {}\n--- server log tail ---\n{}",
                w.command_line(),
                w.stderr(),
                tail(&k().server_log(), 30)
            )
        });
        rows.push(watch_cells(&l));
    };
    next(&mut rows, "the header");
    next(&mut rows, "ADDED");
    expect(
        &k().kubectl(&["label", "pod", "p", "x=y", "-n", &ns]),
        0,
        "pod/p labeled\n",
        "",
    );
    next(&mut rows, "MODIFIED after label");
    let start = Instant::now();
    expect(
        &k().kubectl(&["delete", "pod", "p", "-n", &ns]),
        0,
        "pod \"p\" deleted\n",
        "",
    );
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "delete of an unscheduled pod took {:?}",
        start.elapsed()
    );
    next(&mut rows, "MODIFIED (Terminating)");
    next(&mut rows, "DELETED");
    let want: Vec<Vec<String>> = [
        ["EVENT", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["ADDED", "p", "0/1", "Pending", "0", "<age>"],
        ["MODIFIED", "p", "0/1", "Pending", "0", "<age>"],
        ["MODIFIED", "p", "0/1", "Terminating", "0", "<age>"],
        ["DELETED", "p", "0/1", "Terminating", "0", "<age>"],
    ]
    .iter()
    .map(|r| r.iter().map(|c| c.to_string()).collect())
    .collect();
    assert_eq!(rows, want);
    assert_eq!(
        w.exit_code(),
        None,
        "the watch must stay open; stderr: {}",
        w.stderr()
    );
    w.kill();
}

const BUNDLE: &str = "apiVersion: v1
kind: ConfigMap
metadata:
  name: c
data:
  k: v
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
spec:
  selector:
    matchLabels:
      app: d
  template:
    metadata:
      labels:
        app: d
    spec:
      containers:
      - name: c
        image: busybox
---
apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  containers:
  - name: c
    image: busybox
";

#[test]
fn delete_file_and_delete_wait_return_promptly() {
    let ns = k().namespace("t-delete");
    let file = k().write_file("bundle.yaml", BUNDLE);
    let f = file.to_str().unwrap();
    expect(
        &k().kubectl(&["apply", "-f", f, "-n", &ns]),
        0,
        "configmap/c created\ndeployment.apps/d created\npod/p created\n",
        "",
    );
    let out = k().kubectl(&["delete", "-f", f, "-n", &ns]);
    expect(
        &out,
        0,
        "configmap \"c\" deleted\ndeployment.apps \"d\" deleted\npod \"p\" deleted\n",
        "",
    );
    assert!(
        out.elapsed < Duration::from_secs(10),
        "delete -f took {:?}",
        out.elapsed
    );
    expect(
        &k().kubectl(&["get", "-f", f, "-n", &ns]),
        1,
        "",
        "Error from server (NotFound): configmaps \"c\" not found\n\
         Error from server (NotFound): deployments.apps \"d\" not found\n\
         Error from server (NotFound): pods \"p\" not found\n",
    );
    expect(
        &k().kubectl(&["delete", "configmap", "nope", "-n", &ns]),
        1,
        "",
        "Error from server (NotFound): configmaps \"nope\" not found\n",
    );

    // --wait on a pod held by a finalizer returns as soon as the finalizer is removed.
    let held = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"held","finalizers":["example.com/hold"]},"spec":{"containers":[{"name":"c","image":"busybox"}]}}"#;
    expect(
        &k().kubectl_stdin(&["create", "-f", "-", "-n", &ns], held),
        0,
        "pod/held created\n",
        "",
    );
    let mut del = k().spawn_kubectl(&["delete", "pod", "held", "--wait=true", "-n", &ns]);
    let line = del.next_line(Duration::from_secs(10));
    assert_eq!(
        line.as_deref(),
        Some("pod \"held\" deleted"),
        "stderr: {}",
        del.stderr()
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        del.exit_code(),
        None,
        "delete --wait returned while the finalizer still holds the pod"
    );
    assert!(is_rfc3339(&jsonpath(
        &ns,
        "pod/held",
        "{.metadata.deletionTimestamp}"
    )));
    expect(
        &k().kubectl(&[
            "get",
            "pod",
            "held",
            "-n",
            &ns,
            "--no-headers",
            "-o",
            "custom-columns=S:.metadata.deletionGracePeriodSeconds",
        ]),
        0,
        "0\n",
        "",
    );
    expect(
        &k().kubectl(&[
            "patch",
            "pod",
            "held",
            "-n",
            &ns,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ]),
        0,
        "pod/held patched\n",
        "",
    );
    let start = Instant::now();
    let code = wait_for(
        Duration::from_secs(10),
        "delete --wait to return after the finalizer went",
        || del.exit_code(),
    );
    assert_eq!(code, 0, "stderr: {}", del.stderr());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "delete --wait lagged {:?}",
        start.elapsed()
    );
    expect(
        &k().kubectl(&["get", "pod", "held", "-n", &ns]),
        1,
        "",
        "Error from server (NotFound): pods \"held\" not found\n",
    );
}

fn replica_set(
    name_hash: &str,
    revision: &str,
    image: &str,
    uid: &str,
    cause: Option<&str>,
) -> String {
    let cause = cause
        .map(|c| format!(",\"kubernetes.io/change-cause\":\"{c}\""))
        .unwrap_or_default();
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{{"name":"roll-{name_hash}",
"labels":{{"app":"roll","pod-template-hash":"{name_hash}"}},
"annotations":{{"deployment.kubernetes.io/revision":"{revision}"{cause}}},
"ownerReferences":[{{"apiVersion":"apps/v1","kind":"Deployment","name":"roll","uid":"{uid}","controller":true,"blockOwnerDeletion":true}}]}},
"spec":{{"replicas":0,"selector":{{"matchLabels":{{"app":"roll","pod-template-hash":"{name_hash}"}}}},
"template":{{"metadata":{{"labels":{{"app":"roll","pod-template-hash":"{name_hash}"}}}},
"spec":{{"containers":[{{"name":"web","image":"{image}"}}]}}}}}}}}"#
    )
}

#[test]
fn rollout_history_and_undo_with_hand_made_replicasets() {
    use_api_only_server();
    let ns = k().namespace("t-rollout");
    // The revision annotation is what the deployment controller would have set.
    let deploy = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"roll","labels":{"app":"roll"},
"annotations":{"deployment.kubernetes.io/revision":"2"}},
"spec":{"replicas":1,"selector":{"matchLabels":{"app":"roll"}},
"template":{"metadata":{"labels":{"app":"roll"}},"spec":{"containers":[{"name":"web","image":"web:v2"}]}}}}"#;
    expect(
        &k().kubectl_stdin(&["create", "-f", "-", "-n", &ns], deploy),
        0,
        "deployment.apps/roll created\n",
        "",
    );
    let uid = jsonpath(&ns, "deploy/roll", "{.metadata.uid}");
    expect(
        &k().kubectl_stdin(
            &["create", "-f", "-", "-n", &ns],
            &replica_set("6d4f8b7c9a", "1", "web:v1", &uid, None),
        ),
        0,
        "replicaset.apps/roll-6d4f8b7c9a created\n",
        "",
    );
    expect(
        &k().kubectl_stdin(
            &["create", "-f", "-", "-n", &ns],
            &replica_set(
                "7f9c5d6b8e",
                "2",
                "web:v2",
                &uid,
                Some("kubectl set image deployment/roll web=web:v2"),
            ),
        ),
        0,
        "replicaset.apps/roll-7f9c5d6b8e created\n",
        "",
    );
    expect(
        &k().kubectl(&["rollout", "history", "deployment/roll", "-n", &ns]),
        0,
        "deployment.apps/roll \nREVISION  CHANGE-CAUSE\n1         <none>\n2         kubectl set image deployment/roll web=web:v2\n\n",
        "",
    );
    expect(
        &k().kubectl(&["rollout", "undo", "deployment/roll", "-n", &ns]),
        0,
        "deployment.apps/roll rolled back\n",
        "",
    );
    assert_eq!(
        jsonpath(
            &ns,
            "deploy/roll",
            "{.spec.template.spec.containers[0].image}"
        ),
        "web:v1"
    );
    assert_eq!(
        jsonpath(&ns, "deploy/roll", "{.spec.template.metadata.labels}"),
        r#"{"app":"roll"}"#,
        "the pod-template-hash label must not be copied back"
    );
    expect(
        &k().kubectl(&["rollout", "undo", "deployment/roll", "-n", &ns]),
        0,
        // kubectl prints the revision it was asked for: 0, "the previous one".
        "deployment.apps/roll skipped rollback (current template already matches revision 0)\n",
        "",
    );
    expect(
        &k().kubectl(&[
            "rollout",
            "undo",
            "deployment/roll",
            "--to-revision=5",
            "-n",
            &ns,
        ]),
        1,
        "",
        "error: unable to find specified revision 5 in history\n",
    );
}

#[test]
fn typed_create_commands_send_protobuf_and_get_all_lists_them() {
    let ns = k().namespace("t-create");
    let cases: &[(&[&str], &str)] = &[
        (
            &["create", "namespace", "t-create-extra"],
            "namespace/t-create-extra created\n",
        ),
        (
            &[
                "create",
                "configmap",
                "cm",
                "--from-literal=a=b",
                "-n",
                "t-create",
            ],
            "configmap/cm created\n",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=k=v",
                "-n",
                "t-create",
            ],
            "secret/s created\n",
        ),
        (
            &[
                "create",
                "service",
                "nodeport",
                "np",
                "--tcp=80:8080",
                "-n",
                "t-create",
            ],
            "service/np created\n",
        ),
        (
            &["create", "job", "j", "--image=busybox", "-n", "t-create"],
            "job.batch/j created\n",
        ),
        (
            &[
                "create",
                "cronjob",
                "cj",
                "--image=busybox",
                "--schedule=*/5 * * * *",
                "-n",
                "t-create",
            ],
            "cronjob.batch/cj created\n",
        ),
        (
            &["create", "serviceaccount", "sa", "-n", "t-create"],
            "serviceaccount/sa created\n",
        ),
        (
            &[
                "create",
                "role",
                "r",
                "--verb=get",
                "--resource=pods",
                "-n",
                "t-create",
            ],
            "role.rbac.authorization.k8s.io/r created\n",
        ),
        (
            &[
                "create",
                "rolebinding",
                "rb",
                "--role=r",
                "--serviceaccount=t-create:sa",
                "-n",
                "t-create",
            ],
            "rolebinding.rbac.authorization.k8s.io/rb created\n",
        ),
    ];
    let mut failures = Vec::new();
    for (args, want) in cases {
        let out = k().kubectl(args);
        if out.code != 0 || out.stdout != *want || !out.stderr.is_empty() {
            failures.push(out.to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "typed create commands failed:\n{}",
        failures.join("\n\n")
    );
    assert_eq!(
        jsonpath(
            "t-create-extra",
            "namespace/t-create-extra",
            "{.status.phase}"
        ),
        "Active"
    );
    assert_eq!(jsonpath(&ns, "cm/cm", "{.data}"), r#"{"a":"b"}"#);
    assert_eq!(
        jsonpath(&ns, "secret/s", "{.type} {.data.k}"),
        "Opaque dg=="
    );
    let svc = get_json(&ns, "svc/np");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(svc["spec"]["selector"], json!({"app": "np"}));
    assert_eq!(svc["metadata"]["labels"], json!({"app": "np"}));
    let np = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap_or(0);
    assert!((30000..=32767).contains(&np), "{svc}");
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name":"80-8080","nodePort":np,"port":80,"protocol":"TCP","targetPort":8080}])
    );
    let job = get_json(&ns, "job/j");
    let juid = job["metadata"]["uid"].as_str().unwrap_or("").to_string();
    assert_eq!(job["spec"]["backoffLimit"], 6, "{job}");
    assert_eq!(job["spec"]["completions"], 1, "{job}");
    assert_eq!(job["spec"]["parallelism"], 1, "{job}");
    assert_eq!(job["spec"]["completionMode"], "NonIndexed", "{job}");
    assert_eq!(job["spec"]["suspend"], false, "{job}");
    assert_eq!(
        job["spec"]["podReplacementPolicy"], "TerminatingOrFailed",
        "{job}"
    );
    assert_eq!(
        job["spec"]["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": juid}}),
        "{job}"
    );
    assert_eq!(
        job["spec"]["template"]["metadata"]["labels"],
        json!({"batch.kubernetes.io/controller-uid": juid, "batch.kubernetes.io/job-name": "j",
               "controller-uid": juid, "job-name": "j"}),
        "{job}"
    );
    assert_eq!(
        job["spec"]["template"]["spec"]["restartPolicy"], "Never",
        "{job}"
    );
    let cj = get_json(&ns, "cronjob/cj");
    assert_eq!(cj["spec"]["schedule"], "*/5 * * * *", "{cj}");
    assert_eq!(cj["spec"]["concurrencyPolicy"], "Allow", "{cj}");
    assert_eq!(cj["spec"]["suspend"], false, "{cj}");
    assert_eq!(cj["spec"]["successfulJobsHistoryLimit"], 3, "{cj}");
    assert_eq!(cj["spec"]["failedJobsHistoryLimit"], 1, "{cj}");
    assert_eq!(
        get_json(&ns, "role/r")["rules"],
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}])
    );
    let rb = get_json(&ns, "rolebinding/rb");
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"})
    );
    assert_eq!(
        rb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "sa", "namespace": "t-create"}])
    );

    let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
    let port = format!("80:{np}/TCP");
    // The job controller starts the job: one (Pending, no nodes) pod and a start time, which
    // `get all` shows as a pod row and a DURATION.
    // 60 s: under a full parallel test run the service account controller, the job controller
    // and its retry of a pod refused for a not-yet-created `default` account can take a while.
    let pod = wait_for(
        Duration::from_secs(60),
        "the job's pod and start time",
        || {
            let pods = jsonpath(&ns, "pods", "{.items[*].metadata.name}");
            let started = jsonpath(&ns, "job/j", "{.status.startTime}");
            (!pods.is_empty() && !pods.contains(' ') && !started.is_empty()).then_some(pods)
        },
    );
    let pod = format!("pod/{pod}");
    let want = format!(
        "{}\n{}\n{}\n{}",
        table(&[
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &[&pod, "0/1", "Pending", "0", "<age>"],
        ]),
        table(&[
            &[
                "NAME",
                "TYPE",
                "CLUSTER-IP",
                "EXTERNAL-IP",
                "PORT(S)",
                "AGE"
            ],
            &["service/np", "NodePort", &ip, "<none>", &port, "<age>"],
        ]),
        table(&[
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE"
            ],
            &[
                "cronjob.batch/cj",
                "*/5 * * * *",
                "<none>",
                "False",
                "0",
                "<none>",
                "<age>"
            ],
        ]),
        table(&[
            &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            &["job.batch/j", "Running", "0/1", "<age>", "<age>"],
        ]),
    );
    expect_table(&k().kubectl(&["get", "all", "-n", &ns]), &want);
    expect_table(
        &k().kubectl(&[
            "get",
            "secret/s",
            "configmap/cm",
            "serviceaccount/sa",
            "-n",
            &ns,
        ]),
        &format!(
            "{}\n{}\n{}",
            table(&[
                &["NAME", "TYPE", "DATA", "AGE"],
                &["secret/s", "Opaque", "1", "<age>"]
            ]),
            table(&[&["NAME", "DATA", "AGE"], &["configmap/cm", "1", "<age>"]]),
            table(&[
                &["NAME", "SECRETS", "AGE"],
                &["serviceaccount/sa", "0", "<age>"]
            ]),
        ),
    );
}

#[test]
fn explain_reads_openapi_v3() {
    expect(
        &k().kubectl(&["explain", "deployment.spec.replicas"]),
        0,
        "GROUP:      apps
KIND:       Deployment
VERSION:    v1

FIELD: replicas <integer>


DESCRIPTION:
    Number of desired pods. This is a pointer to distinguish between explicit
    zero and not specified. Defaults to 1.
    

",
        "",
    );
}

#[test]
fn auth_can_i_for_admin_and_impersonated_service_account() {
    let ns = k().namespace("t-cani");
    expect(
        &k().kubectl(&["auth", "can-i", "create", "deployments", "-n", &ns]),
        0,
        "yes\n",
        "",
    );
    expect(&k().kubectl(&["auth", "can-i", "*", "*"]), 0, "yes\n", "");
    let sa = "--as=system:serviceaccount:t-cani:nobody";
    expect(
        &k().kubectl(&["auth", "can-i", "list", "pods", sa, "-n", &ns]),
        1,
        "no\n",
        "",
    );
    expect(
        &k().kubectl(&[
            "create",
            "rolebinding",
            "nobody-view",
            "--clusterrole=view",
            "--serviceaccount=t-cani:nobody",
            "-n",
            &ns,
        ]),
        0,
        "rolebinding.rbac.authorization.k8s.io/nobody-view created\n",
        "",
    );
    let out = wait_for(
        Duration::from_secs(5),
        "the rolebinding to take effect",
        || {
            let o = k().kubectl(&["auth", "can-i", "list", "pods", sa, "-n", &ns]);
            (o.code == 0).then_some(o)
        },
    );
    expect(&out, 0, "yes\n", "");
    expect(
        &k().kubectl(&["auth", "can-i", "create", "pods", sa, "-n", &ns]),
        1,
        "no\n",
        "",
    );
    expect(
        &k().kubectl(&["auth", "can-i", "get", "secrets", sa, "-n", &ns]),
        1,
        "no\n",
        "",
    );
    expect(
        &k().kubectl(&["auth", "can-i", "list", "pods", sa, "-n", "default"]),
        1,
        "no\n",
        "",
    );
}

#[test]
fn label_and_field_selectors_and_jsonpath() {
    let ns = k().namespace("t-select");
    let pod = |name: &str, app: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","labels":{{"app":"{app}"}}}},"spec":{{"containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        )
    };
    for (n, a) in [("a1", "a"), ("a2", "a"), ("b1", "b")] {
        expect(
            &k().kubectl_stdin(&["create", "-f", "-", "-n", &ns], &pod(n, a)),
            0,
            &format!("pod/{n} created\n"),
            "",
        );
    }
    expect(
        &k().kubectl(&["get", "pods", "-l", "app=a", "-o", "name", "-n", &ns]),
        0,
        "pod/a1\npod/a2\n",
        "",
    );
    expect(
        &k().kubectl(&["get", "pods", "-l", "app!=a", "-o", "name", "-n", &ns]),
        0,
        "pod/b1\n",
        "",
    );
    expect(
        &k().kubectl(&["get", "pods", "-l", "app in (b,c)", "-o", "name", "-n", &ns]),
        0,
        "pod/b1\n",
        "",
    );
    expect(
        &k().kubectl(&["get", "pods", "-l", "app=zzz", "-n", &ns]),
        0,
        "",
        "No resources found in t-select namespace.\n",
    );
    expect(
        &k().kubectl(&[
            "get",
            "pods",
            "--field-selector",
            "metadata.name=a2",
            "-o",
            "name",
            "-n",
            &ns,
        ]),
        0,
        "pod/a2\n",
        "",
    );
    expect(
        &k().kubectl(&[
            "get",
            "pods",
            "--field-selector",
            "status.phase=Pending,metadata.name!=a1",
            "-o",
            "name",
            "-n",
            &ns,
        ]),
        0,
        "pod/a2\npod/b1\n",
        "",
    );
    expect(
        &k().kubectl(&["get", "pods", "--field-selector", "spec.foo=x", "-n", &ns]),
        1,
        "",
        "Error from server (BadRequest): Unable to find \"/v1, Resource=pods\" that match label selector \"\", field selector \"spec.foo=x\": field label not supported: spec.foo\n",
    );
    expect(
        &k().kubectl(&[
            "get",
            "pods",
            "-n",
            &ns,
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.labels.app} {end}",
        ]),
        0,
        "a1=a a2=a b1=b ",
        "",
    );
    expect(
        &k().kubectl(&[
            "get",
            "pod",
            "a1",
            "-n",
            &ns,
            "-o",
            "jsonpath={.status.phase} {.spec.containers[0].image}",
        ]),
        0,
        "Pending busybox",
        "",
    );
    expect_table(
        &k().kubectl(&["get", "pods", "-n", &ns, "--show-labels"]),
        &table(&[
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE", "LABELS"],
            &["a1", "0/1", "Pending", "0", "<age>", "app=a"],
            &["a2", "0/1", "Pending", "0", "<age>", "app=a"],
            &["b1", "0/1", "Pending", "0", "<age>", "app=b"],
        ]),
    );
    expect_table(
        &k().kubectl(&["get", "pods", "-n", &ns, "-o", "wide", "-l", "app=b"]),
        &table(&[
            &[
                "NAME",
                "READY",
                "STATUS",
                "RESTARTS",
                "AGE",
                "IP",
                "NODE",
                "NOMINATED NODE",
                "READINESS GATES",
            ],
            &[
                "b1", "0/1", "Pending", "0", "<age>", "<none>", "<none>", "<none>", "<none>",
            ],
        ]),
    );
    // -A adds the namespace column from the row objects.
    let all = k().kubectl(&["get", "pods", "-A", "-l", "app=b"]);
    expect_table(
        &all,
        &table(&[
            &["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["t-select", "b1", "0/1", "Pending", "0", "<age>"],
        ]),
    );
    // --sort-by asks for full objects in the table.
    expect(
        &k().kubectl(&[
            "get",
            "pods",
            "-n",
            &ns,
            "--sort-by=.metadata.name",
            "-o",
            "name",
        ]),
        0,
        "pod/a1\npod/a2\npod/b1\n",
        "",
    );
    // Paging with --chunk-size gives the same list.
    expect(
        &k().kubectl(&["get", "pods", "-n", &ns, "--chunk-size=1", "-o", "name"]),
        0,
        "pod/a1\npod/a2\npod/b1\n",
        "",
    );
}

#[test]
fn raw_health_endpoints_and_version() {
    expect(&k().kubectl(&["get", "--raw", "/healthz"]), 0, "ok", "");
    expect(&k().kubectl(&["get", "--raw", "/livez"]), 0, "ok", "");
    expect(&k().kubectl(&["get", "--raw", "/readyz"]), 0, "ok", "");
    let out = k().kubectl(&["version", "-o", "json"]);
    out.clean();
    let v = out.json();
    let sv = &v["serverVersion"];
    assert_eq!(sv["major"], "1", "{v}");
    assert_eq!(sv["minor"], "32", "{v}");
    for key in [
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    ] {
        assert!(
            sv[key].as_str().is_some_and(|s| !s.is_empty()),
            "serverVersion.{key} missing: {v}"
        );
    }
    let git = sv["gitVersion"].as_str().unwrap_or("");
    assert!(git.starts_with("v1.32."), "{v}");
    let out = k().kubectl(&["version"]);
    out.clean();
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("Server Version: {git}")),
        "{out}"
    );
    // api-resources comes from aggregated discovery (a real cluster adds controllerrevisions).
    let out = k().kubectl(&["api-resources", "--api-group=apps", "-o", "name"]);
    out.clean();
    let names: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| *l != "controllerrevisions.apps")
        .collect();
    assert_eq!(
        names,
        [
            "daemonsets.apps",
            "deployments.apps",
            "replicasets.apps",
            "statefulsets.apps"
        ],
        "{out}"
    );
}

#[test]
fn pods_need_their_service_account_and_get_its_token_mounted() {
    let ns = k().namespace("t-sa");
    let pod = |name: &str, sa: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  serviceAccountName: {sa}\n  containers:\n  - name: c\n    image: busybox:1.36\n"
        )
    };
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], &pod("lonely", "ghost")),
        1,
        "",
        "Error from server (Forbidden): error when creating \"STDIN\": pods \"lonely\" is forbidden: \
         error looking up service account t-sa/ghost: serviceaccount \"ghost\" not found\n",
    );
    expect(
        &k().kubectl(&["get", "pods", "-n", &ns]),
        0,
        "",
        "No resources found in t-sa namespace.\n",
    );
    expect(
        &k().kubectl(&["create", "serviceaccount", "ghost", "-n", &ns]),
        0,
        "serviceaccount/ghost created\n",
        "",
    );
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], &pod("lonely", "ghost")),
        0,
        "pod/lonely created\n",
        "",
    );
    let p = get_json(&ns, "pod/lonely");
    let vol = &p["spec"]["volumes"][0];
    let vname = vol["name"].as_str().unwrap_or_default().to_string();
    assert!(
        vname.starts_with("kube-api-access-") && vname.len() == "kube-api-access-".len() + 5,
        "{p:#}"
    );
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"],
        serde_json::json!({"expirationSeconds": 3607, "path": "token"})
    );
    assert_eq!(
        p["spec"]["containers"][0]["volumeMounts"],
        serde_json::json!([{"name": vname, "readOnly": true,
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}])
    );
    let describe = k().kubectl(&["describe", "pod", "lonely", "-n", &ns]);
    assert!(
        describe.stdout.contains(&format!(
            "      /var/run/secrets/kubernetes.io/serviceaccount from {vname} (ro)\n"
        )),
        "{describe}"
    );
    // automountServiceAccountToken: false on the pod: no token volume.
    let quiet =
        pod("quiet", "ghost").replace("spec:\n", "spec:\n  automountServiceAccountToken: false\n");
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], &quiet),
        0,
        "pod/quiet created\n",
        "",
    );
    assert_eq!(jsonpath(&ns, "pod/quiet", "{.spec.volumes}"), "");
}
