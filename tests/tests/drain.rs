//! End-to-end: `kubectl drain` honours a PodDisruptionBudget. A Deployment of two replicas on
//! one simulated node, covered by a budget with minAvailable = 2: the drain keeps retrying
//! with kubectl's PDB message and leaves the pods; once the Deployment is scaled to three
//! (the third pod on a second node) the drain goes through, one eviction at a time.

use skiff_e2e::*;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(60);

const APP: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: tienda
spec:
  replicas: 2
  selector:
    matchLabels:
      app: tienda
  template:
    metadata:
      labels:
        app: tienda
    spec:
      containers:
      - name: web
        image: nginx:1.27
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: tienda-pdb
spec:
  minAvailable: 2
  selector:
    matchLabels:
      app: tienda
";

/// Waits until the budget's status reports `allowed` disruptions for `healthy` healthy pods
/// (the controller observed the current generation).
fn wait_budget(c: &Cluster, ns: &str, healthy: u32, allowed: u32) {
    let want = format!("{healthy}/2/{allowed}/1");
    wait_for(WAIT, &format!("budget status {want}"), || {
        let got = c.jsonpath(
            ns,
            "pdb/tienda-pdb",
            "{.status.currentHealthy}/{.status.desiredHealthy}/{.status.disruptionsAllowed}/{.status.observedGeneration}",
        );
        (got == want).then_some(())
    });
}

/// `kubectl get pdb` with its columns, the age normalised.
fn pdb_table(c: &Cluster, ns: &str, allowed: &str) {
    c.expect_table(
        &c.kubectl(&["get", "pdb", "-n", ns]),
        &table(&[
            &[
                "NAME",
                "MIN AVAILABLE",
                "MAX UNAVAILABLE",
                "ALLOWED DISRUPTIONS",
                "AGE",
            ],
            &["tienda-pdb", "2", "N/A", allowed, "<age>"],
        ]),
    );
}

#[test]
fn drain_waits_for_the_disruption_budget_then_goes_through_after_scaling_up() {
    let c = Cluster::try_start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let first = c.spawn_sim_agent("puerto-a");
    c.wait_nodes_ready(&["puerto-a"], &first, WAIT);
    let ns = c.namespace("drenaje");
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], APP),
        0,
        "deployment.apps/tienda created\npoddisruptionbudget.policy/tienda-pdb created\n",
        "",
    );
    let pods = c.wait_running(&ns, "app=tienda", 2, WAIT);
    assert!(pods.iter().all(|p| p.node == "puerto-a"), "{pods:#?}");
    wait_budget(&c, &ns, 2, 0);
    pdb_table(&c, &ns, "0");
    let conditions = c.jsonpath(
        &ns,
        "pdb/tienda-pdb",
        "{.status.conditions[0].type}/{.status.conditions[0].status}/{.status.conditions[0].reason}/{.status.expectedPods}",
    );
    assert_eq!(conditions, "DisruptionAllowed/False/InsufficientPods/2");

    // Blocked: every eviction answers 429 and kubectl retries until its timeout.
    let out = c.kubectl(&["drain", "puerto-a", "--ignore-daemonsets", "--timeout=12s"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.starts_with("node/puerto-a cordoned\n"), "{out}");
    let blocked = pods.iter().any(|p| {
        out.stderr.contains(&format!(
            "error when evicting pods/\"{}\" -n \"{ns}\" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.",
            p.name
        ))
    });
    assert!(
        blocked,
        "no PDB retry message:\n{out}\n--- server log tail ---\n{}",
        tail(&c.server_log(), 30)
    );
    let still = c.wait_running(&ns, "app=tienda", 2, WAIT);
    assert_eq!(
        still.iter().map(|p| &p.name).collect::<Vec<_>>(),
        pods.iter().map(|p| &p.name).collect::<Vec<_>>(),
        "the budget did not keep the pods"
    );
    wait_budget(&c, &ns, 2, 0);

    // A second node and a third replica: one disruption is allowed, and each eviction waits
    // for the replacement to become ready before the next one is allowed.
    let second = c.spawn_sim_agent("puerto-b");
    c.wait_nodes_ready(&["puerto-b"], &second, WAIT);
    c.expect(
        &c.kubectl(&["scale", "deploy", "tienda", "--replicas=3", "-n", &ns]),
        0,
        "deployment.apps/tienda scaled\n",
        "",
    );
    let three = c.wait_running(&ns, "app=tienda", 3, WAIT);
    assert_eq!(
        three.iter().filter(|p| p.node == "puerto-b").count(),
        1,
        "{three:#?}"
    );
    wait_budget(&c, &ns, 3, 1);
    pdb_table(&c, &ns, "1");

    let out = c.kubectl(&["drain", "puerto-a", "--ignore-daemonsets", "--timeout=90s"]);
    assert_eq!(
        out.code,
        0,
        "{out}\n--- server log tail ---\n{}",
        tail(&c.server_log(), 30)
    );
    assert!(
        out.stdout.starts_with("node/puerto-a already cordoned\n"),
        "{out}"
    );
    assert!(out.stdout.ends_with("node/puerto-a drained\n"), "{out}");
    for p in &pods {
        assert!(
            out.stdout.contains(&format!("pod/{} evicted\n", p.name)),
            "{} not evicted:\n{out}",
            p.name
        );
    }
    let after = c.wait_running(&ns, "app=tienda", 3, WAIT);
    assert!(after.iter().all(|p| p.node == "puerto-b"), "{after:#?}");
    wait_budget(&c, &ns, 3, 1);
    drop(second);
    drop(first);
}
