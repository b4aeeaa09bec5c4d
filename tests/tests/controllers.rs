//! End-to-end: the controllers and scheduler inside `skiff server` with simulated nodes
//! (`skiff hollow`, `skiff agent --runtime sim`), driven by the stock kubectl, one namespace per
//! test; the stories of issue 3's "Done when" list.

use skiff_e2e::*;
use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

struct Shared {
    cluster: Cluster,
    _hollow: NodeProcess,
}

/// One shared server with three hollow nodes `nodo-0..2`, all Ready.
fn k() -> &'static Cluster {
    static C: OnceLock<Result<Shared, String>> = OnceLock::new();
    match C.get_or_init(|| {
        let cluster = Cluster::try_start(&[])?;
        let hollow = cluster.spawn_hollow(3, "nodo-");
        wait_nodes_ready(&cluster, &["nodo-0", "nodo-1", "nodo-2"], &hollow);
        Ok(Shared {
            cluster,
            _hollow: hollow,
        })
    }) {
        Ok(s) => &s.cluster,
        Err(e) => panic!("{e}"),
    }
}

fn wait_nodes_ready(c: &Cluster, names: &[&str], p: &NodeProcess) {
    c.wait_nodes_ready(names, p, WAIT);
}

#[track_caller]
fn expect_on(c: &Cluster, out: &Output, code: i32, stdout: &str, stderr: &str) {
    c.expect(out, code, stdout, stderr)
}

#[track_caller]
fn expect(out: &Output, code: i32, stdout: &str, stderr: &str) {
    expect_on(k(), out, code, stdout, stderr)
}

#[track_caller]
fn expect_table_on(c: &Cluster, out: &Output, want: &str) {
    c.expect_table(out, want)
}

fn jsonpath_on(c: &Cluster, ns: &str, what: &str, path: &str) -> String {
    c.jsonpath(ns, what, path)
}

fn pods_on(c: &Cluster, ns: &str, selector: &str) -> Vec<PodRow> {
    c.pods(ns, selector)
}

#[track_caller]
fn wait_running_on(
    c: &Cluster,
    ns: &str,
    selector: &str,
    n: usize,
    timeout: Duration,
) -> Vec<PodRow> {
    c.wait_running(ns, selector, n, timeout)
}

fn wait_running(ns: &str, selector: &str, n: usize) -> Vec<PodRow> {
    wait_running_on(k(), ns, selector, n, WAIT)
}

fn create_deployment(ns: &str, name: &str, image: &str, replicas: u32) {
    expect(
        &k().kubectl(&[
            "create",
            "deployment",
            name,
            &format!("--image={image}"),
            &format!("--replicas={replicas}"),
            "--port=80",
            "-n",
            ns,
        ]),
        0,
        &format!("deployment.apps/{name} created\n"),
        "",
    );
}

/// The (single, current) ReplicaSet name of a deployment's selector.
fn rs_names(ns: &str, selector: &str) -> Vec<String> {
    let out = k().kubectl(&[
        "get",
        "rs",
        "-n",
        ns,
        "-l",
        selector,
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"\\n\"}{end}",
    ]);
    out.clean();
    out.stdout.lines().map(String::from).collect()
}

fn wait_deploy_complete(ns: &str, name: &str, replicas: u32) {
    let want = format!("{replicas}/{replicas}/{replicas}/{replicas}");
    wait_for(WAIT, &format!("deploy/{name} {want}"), || {
        let got = jsonpath_on(
            k(),
            ns,
            &format!("deploy/{name}"),
            "{.status.replicas}/{.status.updatedReplicas}/{.status.readyReplicas}/{.status.availableReplicas}",
        );
        (got == want).then_some(())
    });
}

#[test]
fn deleted_pod_is_replaced_with_a_new_name_within_two_seconds() {
    let ns = k().namespace("c-heal");
    create_deployment(&ns, "pagweb", "nginx:1.27", 1);
    let pods = wait_running(&ns, "app=pagweb", 1);
    wait_deploy_complete(&ns, "pagweb", 1);
    let old = pods[0].name.clone();
    let start = Instant::now();
    expect(
        &k().kubectl(&["delete", "pod", &old, "-n", &ns, "--wait=false"]),
        0,
        &format!("pod \"{old}\" deleted\n"),
        "",
    );
    let new = wait_for(Duration::from_secs(10), "a replacement pod Running", || {
        pods_on(k(), &ns, "app=pagweb")
            .into_iter()
            .find(|p| p.name != old && !p.deleting && p.phase == "Running" && p.ready == "True")
    });
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "replacement pod {} Running only after {took:?}",
        new.name
    );
    wait_running(&ns, "app=pagweb", 1);
    wait_deploy_complete(&ns, "pagweb", 1);
    let rs = rs_names(&ns, "app=pagweb");
    assert_eq!(rs.len(), 1, "{rs:?}");
    expect_table_on(
        k(),
        &k().kubectl(&["get", "deploy,rs", "-n", &ns]),
        &(table(&[
            &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
            &["deployment.apps/pagweb", "1/1", "1", "1", "<age>"],
        ]) + "\n"
            + &table(&[
                &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
                &[
                    &format!("replicaset.apps/{}", rs[0]),
                    "1",
                    "1",
                    "1",
                    "<age>",
                ],
            ])),
    );
}

#[test]
fn scale_to_three_spreads_over_nodes_then_ten_then_one() {
    let ns = k().namespace("c-scale");
    create_deployment(&ns, "pagweb", "nginx:1.27", 1);
    wait_running(&ns, "app=pagweb", 1);
    expect(
        &k().kubectl(&["scale", "deploy", "pagweb", "--replicas=3", "-n", &ns]),
        0,
        "deployment.apps/pagweb scaled\n",
        "",
    );
    let pods = wait_running(&ns, "app=pagweb", 3);
    wait_deploy_complete(&ns, "pagweb", 3);
    let nodes: BTreeSet<&str> = pods.iter().map(|p| p.node.as_str()).collect();
    assert_eq!(
        nodes,
        ["nodo-0", "nodo-1", "nodo-2"].into_iter().collect(),
        "3 pods must land on 3 different nodes: {pods:#?}"
    );
    // The wide table shows exactly that.
    let mut rows: Vec<Vec<String>> = vec![[
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED NODE",
        "READINESS GATES",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()];
    for p in &pods {
        rows.push(
            [
                p.name.as_str(),
                "1/1",
                "Running",
                "0",
                "<age>",
                &p.ip,
                &p.node,
                "<none>",
                "<none>",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        );
    }
    expect_table_on(
        k(),
        &k().kubectl(&["get", "pod", "-o", "wide", "-n", &ns]),
        &render_table(&rows),
    );
    for n in [10u32, 1] {
        expect(
            &k().kubectl(&[
                "scale",
                "deploy",
                "pagweb",
                &format!("--replicas={n}"),
                "-n",
                &ns,
            ]),
            0,
            "deployment.apps/pagweb scaled\n",
            "",
        );
        wait_running(&ns, "app=pagweb", n as usize);
        wait_deploy_complete(&ns, "pagweb", n);
        expect_table_on(
            k(),
            &k().kubectl(&["get", "deploy", "pagweb", "-n", &ns]),
            &table(&[
                &["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
                &[
                    "pagweb",
                    &format!("{n}/{n}"),
                    &n.to_string(),
                    &n.to_string(),
                    "<age>",
                ],
            ]),
        );
    }
}

fn deployment_yaml(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: pagweb
spec:
  replicas: 2
  selector:
    matchLabels:
      app: pagweb
  template:
    metadata:
      labels:
        app: pagweb
    spec:
      containers:
      - name: web
        image: {image}
"
    )
}

#[test]
fn rollout_new_image_history_and_undo() {
    let ns = k().namespace("c-rollout");
    expect(
        &k().kubectl_stdin(
            &["apply", "-f", "-", "-n", &ns],
            &deployment_yaml("nginx:1.27"),
        ),
        0,
        "deployment.apps/pagweb created\n",
        "",
    );
    wait_deploy_complete(&ns, "pagweb", 2);
    expect(
        &k().kubectl_stdin(
            &["apply", "-f", "-", "-n", &ns],
            &deployment_yaml("nginx:1.28"),
        ),
        0,
        "deployment.apps/pagweb configured\n",
        "",
    );
    let out = k().kubectl(&[
        "rollout",
        "status",
        "deployment/pagweb",
        "-n",
        &ns,
        "--timeout=60s",
    ]);
    assert!(
        out.code == 0
            && out.stderr.is_empty()
            && out
                .stdout
                .ends_with("deployment \"pagweb\" successfully rolled out\n"),
        "rollout status failed:\n{out}\n--- server log tail ---\n{}",
        tail(&k().server_log(), 40)
    );
    let pods = wait_running(&ns, "app=pagweb", 2);
    assert!(pods.iter().all(|p| p.image == "nginx:1.28"), "{pods:#?}");
    expect(
        &k().kubectl(&["rollout", "history", "deployment/pagweb", "-n", &ns]),
        0,
        "deployment.apps/pagweb \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n\n",
        "",
    );
    assert_eq!(rs_names(&ns, "app=pagweb").len(), 2);
    expect(
        &k().kubectl(&["rollout", "undo", "deployment/pagweb", "-n", &ns]),
        0,
        "deployment.apps/pagweb rolled back\n",
        "",
    );
    let out = k().kubectl(&[
        "rollout",
        "status",
        "deployment/pagweb",
        "-n",
        &ns,
        "--timeout=60s",
    ]);
    assert!(
        out.code == 0
            && out
                .stdout
                .ends_with("deployment \"pagweb\" successfully rolled out\n"),
        "rollout status after undo failed:\n{out}"
    );
    assert_eq!(
        jsonpath_on(
            k(),
            &ns,
            "deploy/pagweb",
            "{.spec.template.spec.containers[0].image}"
        ),
        "nginx:1.27"
    );
    wait_for(WAIT, "pods back on nginx:1.27", || {
        let pods = pods_on(k(), &ns, "app=pagweb");
        (pods.len() == 2
            && pods
                .iter()
                .all(|p| p.image == "nginx:1.27" && p.phase == "Running" && !p.deleting))
        .then_some(())
    });
    // Undo re-uses revision 1's ReplicaSet, which becomes revision 3.
    expect(
        &k().kubectl(&["rollout", "history", "deployment/pagweb", "-n", &ns]),
        0,
        "deployment.apps/pagweb \nREVISION  CHANGE-CAUSE\n2         <none>\n3         <none>\n\n",
        "",
    );
    assert_eq!(rs_names(&ns, "app=pagweb").len(), 2);
}

#[test]
fn cascading_delete_removes_replicasets_and_pods_orphan_keeps_them() {
    let ns = k().namespace("c-cascade");
    create_deployment(&ns, "gone", "nginx:1.27", 2);
    create_deployment(&ns, "kept", "nginx:1.27", 2);
    wait_running(&ns, "app=gone", 2);
    let kept_pods = wait_running(&ns, "app=kept", 2);
    let kept_rs = rs_names(&ns, "app=kept");
    expect(
        &k().kubectl(&["delete", "deployment", "gone", "-n", &ns]),
        0,
        "deployment.apps \"gone\" deleted\n",
        "",
    );
    wait_for(WAIT, "RS and pods of gone deleted", || {
        (rs_names(&ns, "app=gone").is_empty() && pods_on(k(), &ns, "app=gone").is_empty())
            .then_some(())
    });
    expect(
        &k().kubectl(&["get", "rs,po", "-n", &ns, "-l", "app=gone"]),
        0,
        "",
        "No resources found in c-cascade namespace.\n",
    );
    expect(
        &k().kubectl(&[
            "delete",
            "deployment",
            "kept",
            "--cascade=orphan",
            "-n",
            &ns,
        ]),
        0,
        "deployment.apps \"kept\" deleted\n",
        "",
    );
    // Give the garbage collector time to (wrongly) act, then check nothing went.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(rs_names(&ns, "app=kept"), kept_rs);
    assert_eq!(
        jsonpath_on(
            k(),
            &ns,
            &format!("rs/{}", kept_rs[0]),
            "{.metadata.ownerReferences}"
        ),
        "",
        "orphaned ReplicaSet must lose its ownerReference"
    );
    let now = pods_on(k(), &ns, "app=kept");
    assert_eq!(
        now.iter().map(|p| &p.name).collect::<Vec<_>>(),
        kept_pods.iter().map(|p| &p.name).collect::<Vec<_>>()
    );
    expect_table_on(
        k(),
        &k().kubectl(&["get", "deploy,rs", "-n", &ns]),
        &table(&[
            &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            &[
                &format!("replicaset.apps/{}", kept_rs[0]),
                "2",
                "2",
                "2",
                "<age>",
            ],
        ]),
    );
}

#[test]
fn describe_service_lists_ready_endpoints() {
    let ns = k().namespace("c-endpoints");
    create_deployment(&ns, "pagweb", "nginx:1.27", 2);
    expect(
        &k().kubectl(&["expose", "deployment", "pagweb", "--port=80", "-n", &ns]),
        0,
        "service/pagweb exposed\n",
        "",
    );
    let pods = wait_running(&ns, "app=pagweb", 2);
    let mut ips: Vec<String> = pods.iter().map(|p| format!("{}:80", p.ip)).collect();
    ips.sort();
    let line = wait_for(WAIT, "Endpoints line with both pods", || {
        let out = k().kubectl(&["describe", "service", "pagweb", "-n", &ns]);
        out.clean();
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with("Endpoints:"))
            .map(String::from)?;
        let mut got: Vec<String> = line["Endpoints:".len()..]
            .trim()
            .split(',')
            .map(String::from)
            .collect();
        got.sort();
        (got == ips).then_some(line)
    });
    // describe reads the EndpointSlices and `get endpoints` the Endpoints object; neither
    // order is specified upstream, so each is compared as a set.
    let eps = jsonpath_on(
        k(),
        &ns,
        "endpoints/pagweb",
        "{range .subsets[*].addresses[*]}{.ip}:80,{end}",
    );
    let as_set = |s: &str| {
        let mut v: Vec<String> = s
            .trim()
            .trim_end_matches(',')
            .split(',')
            .map(String::from)
            .collect();
        v.sort();
        v
    };
    assert_eq!(as_set(&line["Endpoints:".len()..]), as_set(&eps));
    expect_table_on(
        k(),
        &k().kubectl(&["get", "endpoints", "pagweb", "-n", &ns]),
        &table(&[
            &["NAME", "ENDPOINTS", "AGE"],
            &["pagweb", eps.trim_end_matches(','), "<age>"],
        ]),
    );
}

#[test]
fn stopped_node_goes_not_ready_and_its_pods_move_then_it_comes_back() {
    let c = Cluster::try_start(&[
        "--node-monitor-grace-period",
        "10s",
        "--default-unreachable-toleration-seconds",
        "5",
        "--default-not-ready-toleration-seconds",
        "5",
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    let hollow = c.spawn_hollow(2, "vivo-");
    // Started one after the other: nodes registering at the same moment can pick the same pod
    // CIDR, and the losing process then fails (see the report for the agent bug).
    wait_nodes_ready(&c, &["vivo-0", "vivo-1"], &hollow);
    let mut agent = c.spawn_sim_agent("morto");
    wait_nodes_ready(&c, &["vivo-0", "vivo-1", "morto"], &agent);
    let ns = c.namespace("c-nodefail");
    expect_on(
        &c,
        &c.kubectl(&[
            "create",
            "deployment",
            "pagweb",
            "--image=nginx:1.27",
            "--replicas=6",
            "-n",
            &ns,
        ]),
        0,
        "deployment.apps/pagweb created\n",
        "",
    );
    let pods = wait_running_on(&c, &ns, "app=pagweb", 6, WAIT);
    let on_dead: Vec<String> = pods
        .iter()
        .filter(|p| p.node == "morto")
        .map(|p| p.name.clone())
        .collect();
    assert!(!on_dead.is_empty(), "no pod landed on morto: {pods:#?}");
    agent.kill();
    let start = Instant::now();
    wait_for(Duration::from_secs(40), "morto NotReady", || {
        let s = jsonpath_on(
            &c,
            "default",
            "node/morto",
            "{.status.conditions[?(@.type==\"Ready\")].status}",
        );
        (s == "Unknown" || s == "False").then_some(())
    });
    let not_ready_after = start.elapsed();
    let out = c.kubectl(&["get", "node", "morto"]);
    out.clean();
    let rows = parse_table(&out.stdout);
    assert_eq!(rows[1][0], "morto", "{out}");
    assert_eq!(rows[1][1], "NotReady", "{out}");
    // Grace period 10 s + tolerations 5 s: the pods are replaced on the live nodes.
    let moved = wait_for(Duration::from_secs(60), "pods recreated off morto", || {
        let pods = pods_on(&c, &ns, "app=pagweb");
        let live: Vec<PodRow> = pods
            .into_iter()
            .filter(|p| !p.deleting && p.node != "morto")
            .collect();
        (live.len() == 6
            && live
                .iter()
                .all(|p| p.phase == "Running" && p.ready == "True"))
        .then_some(live)
    });
    assert!(
        moved.iter().all(|p| !on_dead.contains(&p.name)),
        "{moved:#?} {on_dead:?}"
    );
    eprintln!(
        "morto NotReady after {not_ready_after:?}, pods moved after {:?}",
        start.elapsed()
    );
    // Restarted with the same data dir, the node is Ready again.
    let agent2 = c.spawn_sim_agent("morto");
    wait_nodes_ready(&c, &["vivo-0", "vivo-1", "morto"], &agent2);
    let out = c.kubectl(&["get", "node", "morto"]);
    out.clean();
    let rows = parse_table(&out.stdout);
    assert_eq!(rows[1][1], "Ready", "{out}");
}

#[test]
fn daemonset_runs_one_pod_per_node() {
    let ns = k().namespace("c-daemonset");
    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agente
spec:
  selector:
    matchLabels:
      app: agente
  template:
    metadata:
      labels:
        app: agente
    spec:
      containers:
      - name: a
        image: busybox:1.36
";
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], ds),
        0,
        "daemonset.apps/agente created\n",
        "",
    );
    let pods = wait_running(&ns, "app=agente", 3);
    let mut nodes: Vec<&str> = pods.iter().map(|p| p.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, ["nodo-0", "nodo-1", "nodo-2"], "{pods:#?}");
    wait_for(WAIT, "ds/agente status 3 ready", || {
        (jsonpath_on(
            k(),
            &ns,
            "ds/agente",
            "{.status.desiredNumberScheduled}/{.status.currentNumberScheduled}/{.status.numberReady}/{.status.updatedNumberScheduled}/{.status.numberAvailable}",
        ) == "3/3/3/3/3")
            .then_some(())
    });
    expect_table_on(
        k(),
        &k().kubectl(&["get", "ds", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "DESIRED",
                "CURRENT",
                "READY",
                "UP-TO-DATE",
                "AVAILABLE",
                "NODE SELECTOR",
                "AGE",
            ],
            &["agente", "3", "3", "3", "3", "3", "<none>", "<age>"],
        ]),
    );
}

#[test]
fn replicaset_template_change_replaces_a_pod_only_when_it_dies() {
    let ns = k().namespace("c-rstemplate");
    let rs = |image: &str| {
        format!(
            "apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: conj
spec:
  replicas: 2
  selector:
    matchLabels:
      app: conj
  template:
    metadata:
      labels:
        app: conj
    spec:
      containers:
      - name: c
        image: {image}
"
        )
    };
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], &rs("nginx:1.27")),
        0,
        "replicaset.apps/conj created\n",
        "",
    );
    let before = wait_running(&ns, "app=conj", 2);
    expect(
        &k().kubectl_stdin(&["apply", "-f", "-", "-n", &ns], &rs("nginx:1.28")),
        0,
        "replicaset.apps/conj configured\n",
        "",
    );
    // A ReplicaSet does not roll: the running pods stay as they are.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(wait_running(&ns, "app=conj", 2), before);
    let victim = before[0].name.clone();
    expect(
        &k().kubectl(&["delete", "pod", &victim, "-n", &ns, "--wait=false"]),
        0,
        &format!("pod \"{victim}\" deleted\n"),
        "",
    );
    let after = wait_running(&ns, "app=conj", 2);
    let mut images: Vec<(bool, String)> = after
        .iter()
        .map(|p| (p.name == before[1].name, p.image.clone()))
        .collect();
    images.sort();
    assert_eq!(
        images,
        [
            (false, "nginx:1.28".to_string()),
            (true, "nginx:1.27".to_string())
        ],
        "{after:#?}"
    );
    expect_table_on(
        k(),
        &k().kubectl(&["get", "rs", "conj", "-n", &ns]),
        &table(&[
            &["NAME", "DESIRED", "CURRENT", "READY", "AGE"],
            &["conj", "2", "2", "2", "<age>"],
        ]),
    );
}
