//! End-to-end: StatefulSet, Job, CronJob, cordon/drain and a rolling update watched live, on
//! `skiff server` with simulated nodes, driven by the stock kubectl; one namespace per test.
//! Pods end on their own through the sim agent's `skiff.io/sim-exit-code` annotation.

use skiff_e2e::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const NODES: [&str; 3] = ["nodo-0", "nodo-1", "nodo-2"];

struct Shared {
    cluster: Cluster,
    _hollow: NodeProcess,
}

/// One shared server with three hollow nodes `nodo-0..2`, all Ready. No test cordons them:
/// the drain story has its own server.
fn k() -> &'static Cluster {
    static C: OnceLock<Result<Shared, String>> = OnceLock::new();
    match C.get_or_init(|| {
        let cluster = Cluster::try_start(&[])?;
        let hollow = cluster.spawn_hollow(3, "nodo-");
        cluster.wait_nodes_ready(&NODES, &hollow, WAIT);
        Ok(Shared {
            cluster,
            _hollow: hollow,
        })
    }) {
        Ok(s) => &s.cluster,
        Err(e) => panic!("{e}"),
    }
}

/// A `kubectl get pods -w` in `ns` that is known to be watching: a sentinel pod `centinela`
/// is created first and its row awaited, so every later change is in the capture.
struct PodWatch {
    bg: Background,
    rows: Vec<WatchRow>,
}

const SENTINEL: &str = "centinela";

impl PodWatch {
    fn start(c: &Cluster, ns: &str) -> PodWatch {
        let pod = format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{SENTINEL}"}},"spec":{{"containers":[{{"name":"c","image":"busybox:1.36"}}]}}}}"#
        );
        c.expect(
            &c.kubectl_stdin(&["create", "-f", "-", "-n", ns], &pod),
            0,
            &format!("pod/{SENTINEL} created\n"),
            "",
        );
        let mut w = PodWatch {
            bg: c.spawn_kubectl(&["get", "pods", "-w", "-n", ns]),
            rows: Vec::new(),
        };
        w.read_until(Duration::from_secs(20), "the sentinel row", |rows| {
            rows.iter().any(|r| r.name == SENTINEL)
        });
        w
    }

    fn watching(c: &Cluster, ns: &str, selector: &str, initial: usize) -> PodWatch {
        let mut w = PodWatch {
            bg: c.spawn_kubectl(&["get", "pods", "-w", "-l", selector, "-n", ns]),
            rows: Vec::new(),
        };
        w.read_until(Duration::from_secs(20), "the initial rows", |rows| {
            rows.len() >= initial
        });
        w
    }

    /// Reads rows until `done` holds for all rows read so far.
    #[track_caller]
    fn read_until(&mut self, timeout: Duration, what: &str, done: impl Fn(&[WatchRow]) -> bool) {
        let start = Instant::now();
        while !done(&self.rows) {
            let left = timeout.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "watch `{}` did not show {what} within {timeout:?}; rows: {:#?}\nstderr: {}",
                self.bg.command_line(),
                self.rows,
                self.bg.stderr()
            );
            if let Some(line) = self.bg.next_line(left.min(Duration::from_millis(500))) {
                if let Some(r) = WatchRow::parse(&line) {
                    self.rows.push(r);
                }
            } else if let Some(code) = self.bg.exit_code() {
                panic!(
                    "watch `{}` exited with {code}: {}",
                    self.bg.command_line(),
                    self.bg.stderr()
                );
            }
        }
    }

    /// Index of the first row of `name` matching `f`.
    fn first(&self, name: &str, f: impl Fn(&WatchRow) -> bool) -> Option<usize> {
        self.rows.iter().position(|r| r.name == name && f(r))
    }
}

fn terminating(r: &WatchRow) -> bool {
    r.status == "Terminating"
}

const STS: &str = "apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels:
    app: nginx
spec:
  clusterIP: None
  selector:
    app: nginx
  ports:
  - port: 80
    name: web
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: registry.k8s.io/nginx-slim:0.24
        ports:
        - containerPort: 80
          name: web
        volumeMounts:
        - name: www
          mountPath: /usr/share/nginx/html
  volumeClaimTemplates:
  - metadata:
      name: www
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests:
          storage: 1Gi
";

#[test]
fn statefulset_starts_in_order_keeps_identity_and_claims_scales_down_from_the_top() {
    let c = k();
    let ns = c.namespace("w-sts");
    let mut w = PodWatch::start(c, &ns);
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], STS),
        0,
        "service/nginx created\nstatefulset.apps/web created\n",
        "",
    );
    let pods = c.wait_running(&ns, "app=nginx", 3, WAIT);
    let names: Vec<&str> = pods.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["web-0", "web-1", "web-2"]);
    w.read_until(Duration::from_secs(10), "web-2 Running", |rows| {
        rows.iter().any(|r| r.name == "web-2" && r.running_ready())
    });
    // OrderedReady: web-N appears only once web-(N-1) is Running and Ready.
    for n in 1..3 {
        let (prev, this) = (format!("web-{}", n - 1), format!("web-{n}"));
        let appears = w.first(&this, |_| true).expect("row of the pod");
        let prev_state = w.rows[..appears].iter().rfind(|r| r.name == prev);
        assert!(
            prev_state.is_some_and(|r| r.running_ready()),
            "{this} appeared while {prev} was {prev_state:?}: {:#?}",
            w.rows
        );
    }
    // Stable identity: hostname = pod name, subdomain = the governing service.
    for i in 0..3 {
        assert_eq!(
            c.jsonpath(
                &ns,
                &format!("pod/web-{i}"),
                "{.spec.hostname}/{.spec.subdomain}/{.spec.volumes[?(@.name==\"www\")].persistentVolumeClaim.claimName}"
            ),
            format!("web-{i}/nginx/www-web-{i}")
        );
    }
    let claims = || {
        c.jsonpath(
            &ns,
            "pvc",
            "{range .items[*]}{.metadata.name}{\"\\n\"}{end}",
        )
    };
    assert_eq!(claims(), "www-web-0\nwww-web-1\nwww-web-2\n");
    wait_for(WAIT, "sts/web 3 ready", || {
        (c.jsonpath(&ns, "sts/web", "{.status.readyReplicas}") == "3").then_some(())
    });
    c.expect_table(
        &c.kubectl(&["get", "sts", "-n", &ns]),
        &table(&[&["NAME", "READY", "AGE"], &["web", "3/3", "<age>"]]),
    );

    // Scale down: highest ordinal first, one at a time; the claims stay (Retain).
    c.expect(
        &c.kubectl(&["scale", "sts", "web", "--replicas=1", "-n", &ns]),
        0,
        "statefulset.apps/web scaled\n",
        "",
    );
    c.wait_running(&ns, "app=nginx", 1, WAIT);
    w.read_until(Duration::from_secs(10), "web-1 Terminating", |rows| {
        rows.iter().any(|r| r.name == "web-1" && terminating(r))
    });
    let web1_goes = w.first("web-1", terminating).unwrap_or_default();
    let web2_goes = w.first("web-2", terminating);
    let web2_last = w.rows.iter().rposition(|r| r.name == "web-2");
    assert!(
        web2_goes.is_some_and(|i| i < web1_goes) && web2_last.is_some_and(|i| i < web1_goes),
        "web-2 must be gone before web-1 starts terminating: {:#?}",
        w.rows
    );
    assert_eq!(claims(), "www-web-0\nwww-web-1\nwww-web-2\n");
    c.expect_table(
        &c.kubectl(&["get", "sts", "-n", &ns]),
        &table(&[&["NAME", "READY", "AGE"], &["web", "1/1", "<age>"]]),
    );

    // A deleted member comes back under the same name (a new pod).
    let old_uid = c.jsonpath(&ns, "pod/web-0", "{.metadata.uid}");
    // kubectl waits for the deletion (the sim agent takes --pod-stop-delay to stop the pod).
    c.expect(
        &c.kubectl(&["delete", "pod", "web-0", "-n", &ns]),
        0,
        "pod \"web-0\" deleted\n",
        "",
    );
    wait_for(WAIT, "web-0 recreated and Running", || {
        let out = c.kubectl(&[
            "get",
            "pod",
            "web-0",
            "-n",
            &ns,
            "--ignore-not-found",
            "-o",
            "jsonpath={.metadata.uid}|{.status.phase}|{.spec.hostname}|{.metadata.deletionTimestamp}",
        ]);
        let f: Vec<&str> = out.stdout.split('|').collect();
        (f.len() == 4 && f[0] != old_uid && f[1] == "Running" && f[2] == "web-0" && f[3].is_empty())
            .then_some(())
    });
    c.wait_running(&ns, "app=nginx", 1, WAIT);
}

const JOBS: &str = "apiVersion: batch/v1
kind: Job
metadata:
  name: calc
spec:
  completions: 3
  parallelism: 2
  template:
    metadata:
      annotations:
        skiff.io/sim-exit-code: \"0\"
        skiff.io/sim-run-seconds: \"1\"
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:1.36
---
apiVersion: batch/v1
kind: Job
metadata:
  name: falla
spec:
  backoffLimit: 1
  template:
    metadata:
      annotations:
        skiff.io/sim-exit-code: \"3\"
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: busybox:1.36
";

#[test]
fn job_completes_with_bounded_parallelism_and_fails_past_its_backoff_limit() {
    let c = k();
    let ns = c.namespace("w-job");
    let mut w = PodWatch::start(c, &ns);
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], JOBS),
        0,
        "job.batch/calc created\njob.batch/falla created\n",
        "",
    );
    c.expect(
        &c.kubectl(&[
            "wait",
            "--for=condition=complete",
            "job/calc",
            "-n",
            &ns,
            "--timeout=60s",
        ]),
        0,
        "job.batch/calc condition met\n",
        "",
    );
    c.expect_table(
        &c.kubectl(&["get", "jobs", "calc", "-n", &ns]),
        &table(&[
            &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            &["calc", "Complete", "3/3", "<age>", "<age>"],
        ]),
    );
    let pods = c.pods(&ns, "batch.kubernetes.io/job-name=calc");
    assert_eq!(pods.len(), 3, "{pods:#?}");
    assert!(pods.iter().all(|p| p.phase == "Succeeded"), "{pods:#?}");
    let calc: BTreeSet<String> = pods.iter().map(|p| p.name.clone()).collect();
    w.read_until(Duration::from_secs(10), "3 calc pods Completed", |rows| {
        calc.iter().all(|n| {
            rows.iter()
                .rfind(|r| &r.name == n)
                .is_some_and(|r| r.status == "Completed")
        })
    });
    // Replay the watch: never more than `parallelism` calc pods unfinished at once.
    let mut state: BTreeMap<&str, &str> = BTreeMap::new();
    let mut most = 0;
    for r in w.rows.iter().filter(|r| calc.contains(&r.name)) {
        state.insert(&r.name, &r.status);
        let active = state
            .values()
            .filter(|s| !matches!(**s, "Completed" | "Error" | "Terminating"))
            .count();
        most = most.max(active);
    }
    assert_eq!(most, 2, "parallelism 2 not honoured: {:#?}", w.rows);

    c.expect(
        &c.kubectl(&[
            "wait",
            "--for=condition=failed",
            "job/falla",
            "-n",
            &ns,
            "--timeout=60s",
        ]),
        0,
        "job.batch/falla condition met\n",
        "",
    );
    assert_eq!(
        c.jsonpath(
            &ns,
            "job/falla",
            "{.status.conditions[?(@.type==\"Failed\")].reason}/{.status.failed}/{.status.succeeded}"
        ),
        "BackoffLimitExceeded/2/"
    );
    let failed = c.pods(&ns, "batch.kubernetes.io/job-name=falla");
    assert_eq!(failed.len(), 2, "backoffLimit 1 = 2 tries: {failed:#?}");
    assert!(failed.iter().all(|p| p.phase == "Failed"), "{failed:#?}");
    c.expect_table(
        &c.kubectl(&["get", "jobs", "-n", &ns]),
        &table(&[
            &["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"],
            &["calc", "Complete", "3/3", "<age>", "<age>"],
            &["falla", "Failed", "0/1", "<age>", "<age>"],
        ]),
    );
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn epoch_seconds(t: &str) -> i64 {
    assert!(is_rfc3339(t), "{t:?} is not an RFC 3339 UTC time");
    let n = |a: usize, b: usize| t[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    // Days from civil (proleptic Gregorian), as in Howard Hinnant's date algorithms.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11, 13) * 3600 + n(14, 16) * 60 + n(17, 19)
}

#[test]
fn epoch_seconds_of_known_times() {
    assert_eq!(epoch_seconds("1970-01-01T00:00:00Z"), 0);
    assert_eq!(epoch_seconds("2000-03-01T00:00:00Z"), 951_868_800);
    assert_eq!(epoch_seconds("2026-11-22T03:34:00Z"), 29_921_974 * 60);
}

#[test]
fn cronjob_creates_a_job_at_the_next_minute_and_create_job_from_it_works() {
    let c = k();
    let ns = c.namespace("w-cron");
    c.expect(
        &c.kubectl(&[
            "create",
            "cronjob",
            "tick",
            "--image=busybox:1.36",
            "--schedule=*/1 * * * *",
            "-n",
            &ns,
        ]),
        0,
        "cronjob.batch/tick created\n",
        "",
    );
    // Its pods finish at once (sim annotation), so each Job completes.
    c.expect(
        &c.kubectl(&[
            "patch",
            "cronjob",
            "tick",
            "-n",
            &ns,
            "--type=merge",
            "-p",
            r#"{"spec":{"jobTemplate":{"spec":{"template":{"metadata":{"annotations":{"skiff.io/sim-exit-code":"0"}}}}}}}"#,
        ]),
        0,
        "cronjob.batch/tick patched\n",
        "",
    );
    c.expect_table(
        &c.kubectl(&["get", "cronjob", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            &[
                "tick",
                "*/1 * * * *",
                "<none>",
                "False",
                "0",
                "<none>",
                "<age>",
            ],
        ]),
    );
    c.expect(
        &c.kubectl(&["create", "job", "manual", "--from=cronjob/tick", "-n", &ns]),
        0,
        "job.batch/manual created\n",
        "",
    );
    assert_eq!(
        c.jsonpath(
            &ns,
            "job/manual",
            "{.metadata.annotations.cronjob\\.kubernetes\\.io/instantiate}/{.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}/{.spec.template.spec.containers[0].image}"
        ),
        "manual/CronJob/tick/busybox:1.36"
    );
    c.expect(
        &c.kubectl(&[
            "wait",
            "--for=condition=complete",
            "job/manual",
            "-n",
            &ns,
            "--timeout=60s",
        ]),
        0,
        "job.batch/manual condition met\n",
        "",
    );
    // The next minute boundary is at most 60 s away.
    let job = wait_for(
        Duration::from_secs(70),
        "a scheduled Job tick-<minute>",
        || {
            c.jsonpath(
                &ns,
                "jobs",
                "{range .items[*]}{.metadata.name}{\"\\n\"}{end}",
            )
            .lines()
            .find(|n| n.starts_with("tick-"))
            .map(String::from)
        },
    );
    let last = c.jsonpath(&ns, "cronjob/tick", "{.status.lastScheduleTime}");
    let at = epoch_seconds(&last);
    assert_eq!(at % 60, 0, "lastScheduleTime {last} is not on a minute");
    assert_eq!(job, format!("tick-{}", at / 60));
    assert_eq!(
        c.jsonpath(
            &ns,
            &format!("job/{job}"),
            "{.metadata.annotations.batch\\.kubernetes\\.io/cronjob-scheduled-timestamp}/{.metadata.ownerReferences[0].name}"
        ),
        format!("{last}/tick")
    );
    c.expect(
        &c.kubectl(&[
            "wait",
            "--for=condition=complete",
            &format!("job/{job}"),
            "-n",
            &ns,
            "--timeout=60s",
        ]),
        0,
        &format!("job.batch/{job} condition met\n"),
        "",
    );
    wait_for(WAIT, "the cronjob to record the success", || {
        let s = c.jsonpath(
            &ns,
            "cronjob/tick",
            "{.status.active}|{.status.lastSuccessfulTime}",
        );
        s.strip_prefix('|').filter(|t| is_rfc3339(t)).map(|_| ())
    });
    c.expect_table(
        &c.kubectl(&["get", "cronjob", "tick", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "SCHEDULE",
                "TIMEZONE",
                "SUSPEND",
                "ACTIVE",
                "LAST SCHEDULE",
                "AGE",
            ],
            &[
                "tick",
                "*/1 * * * *",
                "<none>",
                "False",
                "0",
                "<age>",
                "<age>",
            ],
        ]),
    );
}

const DRAIN: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: pagweb
spec:
  replicas: 6
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
        image: nginx:1.27
        volumeMounts:
        - name: cache
          mountPath: /cache
      volumes:
      - name: cache
        emptyDir: {}
---
apiVersion: apps/v1
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

fn nodes_table(c: &Cluster, status: [&str; 3]) -> String {
    let version = c.jsonpath(
        "default",
        "node/nodo-0",
        "{.status.nodeInfo.kubeletVersion}",
    );
    let mut rows: Vec<Vec<String>> = vec![["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
        .iter()
        .map(|s| s.to_string())
        .collect()];
    for (n, s) in NODES.iter().zip(status) {
        rows.push(
            [*n, s, "<none>", "<age>", &version]
                .iter()
                .map(|s| s.to_string())
                .collect(),
        );
    }
    render_table(&rows)
}

#[test]
fn cordon_drain_and_uncordon_move_pods_off_a_node() {
    // Its own server: draining nodo-1 of the shared one would evict the other tests' pods.
    let c = Cluster::try_start(&[]).unwrap_or_else(|e| panic!("{e}"));
    let hollow = c.spawn_hollow(3, "nodo-");
    c.wait_nodes_ready(&NODES, &hollow, WAIT);
    let ns = c.namespace("w-drain");
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], DRAIN),
        0,
        "deployment.apps/pagweb created\ndaemonset.apps/agente created\n",
        "",
    );
    let before = c.wait_running(&ns, "app=pagweb", 6, WAIT);
    let daemons = c.wait_running(&ns, "app=agente", 3, WAIT);
    let on_node: Vec<String> = before
        .iter()
        .filter(|p| p.node == "nodo-1")
        .map(|p| p.name.clone())
        .collect();
    assert!(!on_node.is_empty(), "no pod on nodo-1: {before:#?}");
    let daemon = daemons
        .iter()
        .find(|p| p.node == "nodo-1")
        .map(|p| p.name.clone())
        .expect("a daemon pod on nodo-1");

    c.expect(
        &c.kubectl(&["cordon", "nodo-1"]),
        0,
        "node/nodo-1 cordoned\n",
        "",
    );
    c.expect_table(
        &c.kubectl(&["get", "nodes"]),
        &nodes_table(&c, ["Ready", "Ready,SchedulingDisabled", "Ready"]),
    );
    // New pods avoid the cordoned node.
    c.expect(
        &c.kubectl(&["scale", "deploy", "pagweb", "--replicas=9", "-n", &ns]),
        0,
        "deployment.apps/pagweb scaled\n",
        "",
    );
    let scaled = c.wait_running(&ns, "app=pagweb", 9, WAIT);
    let added: Vec<&PodRow> = scaled
        .iter()
        .filter(|p| !before.iter().any(|b| b.name == p.name))
        .collect();
    assert_eq!(added.len(), 3, "{scaled:#?}");
    assert!(
        added.iter().all(|p| p.node != "nodo-1"),
        "a new pod landed on cordoned nodo-1: {added:#?}"
    );

    // emptyDir pods need --delete-emptydir-data.
    let out = c.kubectl(&["drain", "nodo-1", "--ignore-daemonsets"]);
    assert!(
        out.code == 1
            && out.stdout == "node/nodo-1 already cordoned\n"
            && out.stderr.contains(
                "cannot delete Pods with local storage (use --delete-emptydir-data to override): "
            ),
        "{out}"
    );

    let out = c.kubectl(&[
        "drain",
        "nodo-1",
        "--ignore-daemonsets",
        "--delete-emptydir-data",
    ]);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let mut want_evicting: BTreeSet<String> = on_node
        .iter()
        .map(|p| format!("evicting pod {ns}/{p}"))
        .collect();
    let mut want_evicted: BTreeSet<String> =
        on_node.iter().map(|p| format!("pod/{p} evicted")).collect();
    let ok = out.code == 0
        && out.stderr == format!("Warning: ignoring DaemonSet-managed Pods: {ns}/{daemon}\n")
        && lines.first() == Some(&"node/nodo-1 already cordoned")
        && lines.last() == Some(&"node/nodo-1 drained")
        && lines.len() == 2 + 2 * on_node.len()
        && lines[1..lines.len() - 1]
            .iter()
            .all(|l| want_evicting.remove(*l) || want_evicted.remove(*l));
    assert!(
        ok && want_evicting.is_empty() && want_evicted.is_empty(),
        "unexpected drain output (pods on nodo-1: {on_node:?}, daemon {daemon}):\n{out}\n--- server log tail ---\n{}",
        tail(&c.server_log(), 30)
    );
    // Every "evicting" line comes before its "evicted" line.
    for p in &on_node {
        let a = lines.iter().position(|l| l.ends_with(&format!("/{p}")));
        let b = lines.iter().position(|l| *l == format!("pod/{p} evicted"));
        assert!(a < b, "{out}");
    }
    // The Deployment's pods are recreated on the other nodes; the daemon pod stays.
    let after = c.wait_running(&ns, "app=pagweb", 9, WAIT);
    assert!(
        after.iter().all(|p| p.node != "nodo-1"),
        "a pod is still on drained nodo-1: {after:#?}"
    );
    assert!(after.iter().all(|p| !on_node.contains(&p.name)));
    assert!(c.pods(&ns, "app=agente").iter().any(|p| p.name == daemon));

    c.expect(
        &c.kubectl(&["uncordon", "nodo-1"]),
        0,
        "node/nodo-1 uncordoned\n",
        "",
    );
    c.expect_table(
        &c.kubectl(&["get", "nodes"]),
        &nodes_table(&c, ["Ready", "Ready", "Ready"]),
    );
    // The unschedulable taint goes at once, and nodo-1 (now the emptiest) gets new pods.
    wait_for(
        Duration::from_secs(3),
        "the unschedulable taint removed",
        || {
            c.jsonpath("default", "node/nodo-1", "{.spec.taints}")
                .is_empty()
                .then_some(())
        },
    );
    c.expect(
        &c.kubectl(&["scale", "deploy", "pagweb", "--replicas=12", "-n", &ns]),
        0,
        "deployment.apps/pagweb scaled\n",
        "",
    );
    let last = c.wait_running(&ns, "app=pagweb", 12, WAIT);
    assert!(
        last.iter().any(|p| p.node == "nodo-1"),
        "no new pod on uncordoned nodo-1: {last:#?}"
    );
    // A node that joins gets the DaemonSet's pod; when its Node object goes, so does the pod.
    let agent = c.spawn_sim_agent("nuevo");
    c.wait_nodes_ready(&["nuevo"], &agent, WAIT);
    let daemons = c.wait_running(&ns, "app=agente", 4, WAIT);
    assert!(
        daemons.iter().any(|p| p.node == "nuevo"),
        "no daemon pod on the new node: {daemons:#?}"
    );
    drop(agent);
    c.expect(
        &c.kubectl(&["delete", "node", "nuevo"]),
        0,
        "node \"nuevo\" deleted\n",
        "",
    );
    wait_for(WAIT, "the daemon pod of the removed node gone", || {
        let pods = c.pods(&ns, "app=agente");
        (pods.len() == 3 && pods.iter().all(|p| p.node != "nuevo")).then_some(())
    });
    drop(hollow);
}

const ROLLING: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: onda
spec:
  replicas: 4
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
      maxSurge: 1
  selector:
    matchLabels:
      app: onda
  template:
    metadata:
      labels:
        app: onda
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

#[test]
fn rolling_update_seen_in_get_pods_watch_never_drops_below_three_ready() {
    let c = k();
    let ns = c.namespace("w-rolling");
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], ROLLING),
        0,
        "deployment.apps/onda created\n",
        "",
    );
    let old: BTreeSet<String> = c
        .wait_running(&ns, "app=onda", 4, WAIT)
        .into_iter()
        .map(|p| p.name)
        .collect();
    let status = |c: &Cluster| {
        let out = c.kubectl(&[
            "rollout",
            "status",
            "deployment/onda",
            "-n",
            &ns,
            "--timeout=60s",
        ]);
        assert!(
            out.code == 0
                && out.stderr.is_empty()
                && out
                    .stdout
                    .ends_with("deployment \"onda\" successfully rolled out\n"),
            "rollout status failed:\n{out}\n--- server log tail ---\n{}",
            tail(&c.server_log(), 40)
        );
    };
    status(c);
    let mut w = PodWatch::watching(c, &ns, "app=onda", 4);
    let initial = w.rows.len();
    assert!(
        w.rows
            .iter()
            .all(|r| old.contains(&r.name) && r.running_ready()),
        "{:#?}",
        w.rows
    );
    c.expect(
        &c.kubectl(&["set", "image", "deploy/onda", "web=nginx:1.28", "-n", &ns]),
        0,
        "deployment.apps/onda image updated\n",
        "",
    );
    status(c);
    let new: BTreeSet<String> = c
        .wait_running(&ns, "app=onda", 4, WAIT)
        .into_iter()
        .map(|p| {
            assert_eq!(p.image, "nginx:1.28", "{p:?}");
            p.name
        })
        .collect();
    assert!(new.is_disjoint(&old));
    w.read_until(
        Duration::from_secs(10),
        "old pods Terminating and new pods Running",
        |rows| {
            old.iter()
                .all(|n| rows.iter().any(|r| &r.name == n && terminating(r)))
                && new
                    .iter()
                    .all(|n| rows.iter().any(|r| &r.name == n && r.running_ready()))
        },
    );
    // Replay the rows: at least replicas - maxUnavailable = 3 pods Running and Ready, at most
    // replicas + maxSurge = 5 not terminating, at every step.
    let mut state: BTreeMap<&str, &WatchRow> = BTreeMap::new();
    let (mut fewest, mut most) = (usize::MAX, 0);
    for (i, r) in w.rows.iter().enumerate() {
        state.insert(&r.name, r);
        if i + 1 < initial {
            continue;
        }
        let ready = state.values().filter(|r| r.running_ready()).count();
        let alive = state.values().filter(|r| !terminating(r)).count();
        fewest = fewest.min(ready);
        most = most.max(alive);
    }
    assert!(
        fewest >= 3 && most <= 5,
        "{fewest} ready at the lowest, {most} pods at the highest: {:#?}",
        w.rows
    );
    // Rolling, not recreating: an old pod went Terminating before the last new one was Ready.
    let first_gone = old
        .iter()
        .filter_map(|n| w.first(n, terminating))
        .min()
        .unwrap();
    let last_ready = new
        .iter()
        .filter_map(|n| w.first(n, |r| r.running_ready()))
        .max()
        .unwrap();
    assert!(first_gone < last_ready, "{:#?}", w.rows);
    let rows = w.rows.len();
    w.bg.kill();
    eprintln!("rolling update: {rows} watch rows, {fewest}..{most} pods ready..alive");
}

#[test]
fn rollout_pause_resume_and_restart() {
    let c = k();
    let ns = c.namespace("w-pause");
    let rs_count = |c: &Cluster| {
        c.kubectl(&["get", "rs", "-n", &ns, "-l", "app=pausa", "-o", "name"])
            .stdout
            .lines()
            .count()
    };
    let rolled_out = |c: &Cluster| {
        let out = c.kubectl(&[
            "rollout",
            "status",
            "deployment/pausa",
            "-n",
            &ns,
            "--timeout=60s",
        ]);
        assert!(
            out.code == 0
                && out
                    .stdout
                    .ends_with("deployment \"pausa\" successfully rolled out\n"),
            "rollout status failed:\n{out}"
        );
    };
    c.expect(
        &c.kubectl(&[
            "create",
            "deployment",
            "pausa",
            "--image=web:v1",
            "--replicas=2",
            "-n",
            &ns,
        ]),
        0,
        "deployment.apps/pausa created\n",
        "",
    );
    rolled_out(c);
    c.expect(
        &c.kubectl(&["rollout", "pause", "deployment/pausa", "-n", &ns]),
        0,
        "deployment.apps/pausa paused\n",
        "",
    );
    c.expect(
        &c.kubectl(&["set", "image", "deployment/pausa", "web=web:v2", "-n", &ns]),
        0,
        "deployment.apps/pausa image updated\n",
        "",
    );
    // Paused: the new template makes no ReplicaSet, and the Progressing condition says why.
    wait_for(WAIT, "Progressing=Unknown DeploymentPaused", || {
        (c.jsonpath(
            &ns,
            "deploy/pausa",
            "{.status.conditions[?(@.type==\"Progressing\")].status}/{.status.conditions[?(@.type==\"Progressing\")].reason}",
        ) == "Unknown/DeploymentPaused")
            .then_some(())
    });
    assert_eq!(rs_count(c), 1);
    c.expect(
        &c.kubectl(&["rollout", "resume", "deployment/pausa", "-n", &ns]),
        0,
        "deployment.apps/pausa resumed\n",
        "",
    );
    rolled_out(c);
    assert_eq!(rs_count(c), 2);
    c.expect(
        &c.kubectl(&["rollout", "restart", "deployment/pausa", "-n", &ns]),
        0,
        "deployment.apps/pausa restarted\n",
        "",
    );
    rolled_out(c);
    // The restart is a new template revision (kubectl.kubernetes.io/restartedAt) on web:v2.
    assert_eq!(rs_count(c), 3);
    let pods = c.wait_running(&ns, "app=pausa", 2, WAIT);
    assert!(pods.iter().all(|p| p.image == "web:v2"), "{pods:#?}");
    assert!(!c
        .jsonpath(
            &ns,
            "deploy/pausa",
            "{.spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/restartedAt}"
        )
        .is_empty());
    c.expect(
        &c.kubectl(&["rollout", "history", "deployment/pausa", "-n", &ns]),
        0,
        "deployment.apps/pausa \nREVISION  CHANGE-CAUSE\n1         <none>\n2         <none>\n3         <none>\n\n",
        "",
    );
}

#[test]
fn daemonset_rolling_update_replaces_every_node_pod() {
    let c = k();
    let ns = c.namespace("w-dsroll");
    let ds = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: vigia
spec:
  selector:
    matchLabels: {app: vigia}
  template:
    metadata:
      labels: {app: vigia}
    spec:
      containers:
      - name: v
        image: busybox:1.36
";
    c.expect(
        &c.kubectl_stdin(&["apply", "-f", "-", "-n", &ns], ds),
        0,
        "daemonset.apps/vigia created\n",
        "",
    );
    let before = c.wait_running(&ns, "app=vigia", 3, WAIT);
    c.expect(
        &c.kubectl(&["set", "image", "ds/vigia", "v=busybox:1.37", "-n", &ns]),
        0,
        "daemonset.apps/vigia image updated\n",
        "",
    );
    let out = c.kubectl(&["rollout", "status", "ds/vigia", "-n", &ns, "--timeout=60s"]);
    assert!(
        out.code == 0
            && out
                .stdout
                .ends_with("daemon set \"vigia\" successfully rolled out\n"),
        "rollout status failed:\n{out}"
    );
    let after = c.wait_running(&ns, "app=vigia", 3, WAIT);
    let mut nodes: Vec<&str> = after.iter().map(|p| p.node.as_str()).collect();
    nodes.sort();
    assert_eq!(nodes, NODES, "{after:#?}");
    assert!(
        after.iter().all(|p| p.image == "busybox:1.37"),
        "{after:#?}"
    );
    assert!(
        after
            .iter()
            .all(|p| before.iter().all(|b| b.name != p.name)),
        "every pod replaced: {before:#?} {after:#?}"
    );
}
