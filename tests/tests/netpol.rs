//! End-to-end: NetworkPolicy enforced by skiff-netpol on every node. A `skiff server` (node
//! netns 1) and two `skiff agent`s (2, 3) of a [`TestNet`] on the VXLAN pod network; in
//! namespace `np` a web pod on n3 (HTTP on 80 "http" and 8080) and two busybox clients on n2
//! (`role=client`, `role=other`); in `np2` a second web pod, on n2 too. Requests go from the pods
//! with `kubectl exec … wget` bounded by busybox's `timeout`:
//! - a default-deny ingress policy in `np` blocks pod → pod across nodes (the web pod's own node
//!   still reaches it);
//! - a policy allowing `role=client` on the named port `http` lets exactly that through (not
//!   port 8080, not `role=other`);
//! - an egress ipBlock (10.42.0.0/16 except web2's address) on `role=client`: web yes, web2
//!   (same node, across the bridge) no;
//! - deleting the policies restores traffic within 1 s (measured from a node with a request
//!   loop, printed).
//!
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS`; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::images::{self, ImageSpec};
use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns;
use skiff_e2e::*;
use std::thread;
use std::time::{Duration, Instant};

const TOKEN: &str = "netpol-secret";
/// Time for 3 nodes to be Ready, and for the pods to run (images pulled through the mirror).
const READY: Duration = Duration::from_secs(120);
/// Time for a policy change to reach the nodes' tables (the watch, a 100 ms debounce, one nft
/// transaction — well under this; the margin is for a loaded 2-core machine).
const CONVERGE: Duration = Duration::from_secs(20);
/// How soon deleting the policies must restore traffic (issue 11).
const RESTORE: Duration = Duration::from_secs(1);

struct Cluster(MultiNode);

impl std::ops::Deref for Cluster {
    type Target = MultiNode;
    fn deref(&self) -> &MultiNode {
        &self.0
    }
}

impl Cluster {
    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_command(
            self.kubectl_cmd(args),
            Some(stdin.as_bytes()),
            COMMAND_TIMEOUT,
        )
    }

    /// `kubectl exec -n NS POD -- wget -qO- URL`, bounded by busybox's `timeout` (its
    /// `wget -T` is unusable here) and by the runner's own deadline.
    fn wget_in_pod(&self, ns: &str, pod: &str, url: &str) -> Output {
        let c = self.kubectl_cmd(&[
            "exec",
            "-n",
            ns,
            pod,
            "--",
            images::BUSYBOX,
            "timeout",
            "3",
            "wget",
            "-qO-",
            url,
        ]);
        self.net.run(c, Duration::from_secs(15))
    }

    /// `busybox wget -qO- URL` from node `node`'s netns, bounded.
    fn wget_from_node(&self, node: usize, url: &str) -> Output {
        self.net
            .run_in(node, &["timeout", "3", "busybox", "wget", "-qO-", url])
    }

    /// The node's view of the table, for failure messages.
    fn table(&self, node: usize) -> String {
        let out = self
            .net
            .run_in(node, &["nft", "list", "table", "inet", "skiff-netpol"]);
        format!(
            "--- n{node} inet skiff-netpol ---\n{}{}",
            out.stdout, out.stderr
        )
    }
}

/// Web server pod: the test nginx image serving its name on 80 (port name `http`) and 8080.
fn web_pod(ns: &str, name: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"app":"web"}}}},
        "spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":1,
        "containers":[{{"name":"web","image":"nginx:1.27",
          "command":["sh","-c","hostname > /www/index.html && httpd -p 8080 -h /www && exec httpd -f -p 80 -h /www"],
          "ports":[{{"name":"http","containerPort":80}},{{"name":"alt","containerPort":8080}}]}}]}}}}"#
    )
}

/// A busybox client pod labelled `role=ROLE`.
fn client_pod(ns: &str, name: &str, role: &str, node: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}","labels":{{"role":"{role}"}}}},
        "spec":{{"nodeName":"{node}","terminationGracePeriodSeconds":1,
        "containers":[{{"name":"c","image":"busybox:1.36","command":["sleep","3600"]}}]}}}}"#
    )
}

/// The pods of `ns` once `n` of them run with an IP: name → IP.
fn wait_pods(c: &Cluster, ns: &str, n: usize) -> Vec<PodRow> {
    let start = Instant::now();
    loop {
        let out = c.kubectl(&["get", "pods", "-n", ns, "-o", POD_ROWS_JSONPATH]);
        let rows = parse_pod_rows(&out.stdout);
        if rows.len() == n
            && rows
                .iter()
                .all(|p| p.phase == "Running" && !p.ip.is_empty())
        {
            return rows;
        }
        assert!(
            start.elapsed() < READY,
            "{n} pods of {ns} not Running within {READY:?}:\n{out}\n{}",
            c.logs()
        );
        thread::sleep(Duration::from_millis(250));
    }
}

fn ip_of(rows: &[PodRow], name: &str) -> String {
    rows.iter()
        .find(|p| p.name == name)
        .map(|p| p.ip.clone())
        .unwrap_or_else(|| panic!("no {name} in {rows:?}"))
}

/// Polls `f` until it answers `want` (Some: that body; None: any failure), within `CONVERGE`;
/// then checks once more that the state holds (not a passing glitch).
fn until(c: &Cluster, what: &str, want: Option<&str>, f: impl Fn() -> Output) {
    let ok = |out: &Output| match want {
        Some(body) => out.code == 0 && out.stdout.trim() == body,
        None => out.code != 0,
    };
    let start = Instant::now();
    loop {
        let out = f();
        if ok(&out) {
            let again = f();
            assert!(ok(&again), "{what}: did not hold: {again}");
            eprintln!("{what}: after {:?}", start.elapsed());
            return;
        }
        assert!(
            start.elapsed() < CONVERGE,
            "{what}: not within {CONVERGE:?}; last: {out}\n{}{}{}",
            c.table(2),
            c.table(3),
            c.logs()
        );
        thread::sleep(Duration::from_millis(200));
    }
}

fn check(c: &Cluster) {
    for ns in ["np", "np2"] {
        c.kubectl(&["create", "namespace", ns]).success();
    }
    for manifest in [
        web_pod("np", "web", "n3"),
        client_pod("np", "client", "client", "n2"),
        client_pod("np", "other", "other", "n2"),
        // Beside the clients: egress is also checked between pods of one node (the bridge).
        web_pod("np2", "web2", "n2"),
    ] {
        c.kubectl_stdin(&["apply", "-f", "-"], &manifest).success();
    }
    let np = wait_pods(c, "np", 3);
    let np2 = wait_pods(c, "np2", 1);
    let (web, web2) = (ip_of(&np, "web"), ip_of(&np2, "web2"));
    eprintln!("web {web} on n3, web2 {web2} and the clients on n2");
    let web80 = format!("http://{web}/");
    let web8080 = format!("http://{web}:8080/");
    let web2_80 = format!("http://{web2}/");

    // Before any policy everything is open.
    until(c, "client → web:80 open", Some("web"), || {
        c.wget_in_pod("np", "client", &web80)
    });
    until(c, "other → web:80 open", Some("web"), || {
        c.wget_in_pod("np", "other", &web80)
    });
    until(c, "client → web2 open", Some("web2"), || {
        c.wget_in_pod("np", "client", &web2_80)
    });

    // Default deny for ingress in np: blocked across nodes; the web pod's own node still in.
    let deny = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"default-deny","namespace":"np"},
        "spec":{"podSelector":{},"policyTypes":["Ingress"]}}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], deny).success();
    until(c, "default deny: client → web:80 blocked", None, || {
        c.wget_in_pod("np", "client", &web80)
    });
    let out = c.wget_in_pod("np", "other", &web80);
    assert_ne!(out.code, 0, "default deny: other → web:80 passed: {out}");
    let out = c.wget_from_node(3, &web80);
    assert_eq!(
        out.stdout.trim(),
        "web",
        "the pod's own node reaches it: {out}"
    );
    // Namespaces without policies are untouched.
    let out = c.wget_in_pod("np", "client", &web2_80);
    assert_eq!(out.stdout.trim(), "web2", "np2 has no policy: {out}");

    // Allow role=client on the named port http (80) only.
    let allow = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"allow-client","namespace":"np"},
        "spec":{"podSelector":{"matchLabels":{"app":"web"}},
          "ingress":[{"from":[{"podSelector":{"matchLabels":{"role":"client"}}}],
                      "ports":[{"port":"http"}]}]}}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], allow).success();
    until(c, "allow: client → web:80 open", Some("web"), || {
        c.wget_in_pod("np", "client", &web80)
    });
    let out = c.wget_in_pod("np", "client", &web8080);
    assert_ne!(out.code, 0, "allow: client → web:8080 passed: {out}");
    let out = c.wget_in_pod("np", "other", &web80);
    assert_ne!(out.code, 0, "allow: other → web:80 passed: {out}");

    // Egress of role=client: the pod network except web2.
    let egress = format!(
        r#"{{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{{"name":"client-egress","namespace":"np"}},
        "spec":{{"podSelector":{{"matchLabels":{{"role":"client"}}}},"policyTypes":["Egress"],
          "egress":[{{"to":[{{"ipBlock":{{"cidr":"10.42.0.0/16","except":["{web2}/32"]}}}}]}}]}}}}"#
    );
    c.kubectl_stdin(&["apply", "-f", "-"], &egress).success();
    until(c, "egress ipBlock: client → web2 blocked", None, || {
        c.wget_in_pod("np", "client", &web2_80)
    });
    let out = c.wget_in_pod("np", "client", &web80);
    assert_eq!(
        out.stdout.trim(),
        "web",
        "egress ipBlock: client → web: {out}"
    );
    let out = c.wget_in_pod("np", "other", &web2_80);
    assert_eq!(
        out.stdout.trim(),
        "web2",
        "other is not egress-isolated: {out}"
    );

    // Deleting the policies restores traffic within a second. Node n1 (not a pod, so blocked
    // by the default deny) polls web with a short request loop; the time runs from the moment
    // the delete returned.
    let out = c.wget_from_node(1, &web80);
    assert_ne!(out.code, 0, "n1 → web passed while web is isolated: {out}");
    c.kubectl(&["delete", "networkpolicy", "--all", "-n", "np"])
        .success();
    let deleted = Instant::now();
    let restored = loop {
        let out = c.wget_from_node(1, &web80);
        if out.code == 0 && out.stdout.trim() == "web" {
            break deleted.elapsed();
        }
        assert!(
            deleted.elapsed() < CONVERGE,
            "traffic not restored within {CONVERGE:?}: {out}\n{}{}",
            c.table(3),
            c.logs()
        );
        thread::sleep(Duration::from_millis(20));
    };
    eprintln!("policies deleted → n1 → web restored in {restored:?}");
    assert!(
        restored <= RESTORE,
        "deleting the policies restored traffic only after {restored:?} (want ≤ {RESTORE:?})"
    );
    until(
        c,
        "after delete: other → web:8080 open",
        Some("web"),
        || c.wget_in_pod("np", "other", &web8080),
    );
    until(
        c,
        "after delete: client → web2 open",
        Some("web2"),
        || c.wget_in_pod("np", "client", &web2_80),
    );
    // Every node still has the table, now without isolated pods.
    for node in 1..=3 {
        let t = c.table(node);
        assert!(t.contains("hook forward"), "{t}");
        assert!(!t.contains("chain pod-"), "{t}");
    }
    for p in &c.procs {
        assert!(
            !p.log().contains("network policy rules not applied"),
            "{}",
            c.logs()
        );
    }
}

#[test]
fn network_policies_are_enforced_on_every_node() {
    if !netns::bed_enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skiff-e2e netpol tests SKIPPED: SKIFF_E2E_NODES=0 (they need root and the \
             packages `bash .ci/run` installs) ***\n"
        );
        return;
    }
    let spec = MultiNodeSpec {
        nodes: 3,
        token: TOKEN,
        images: &[ImageSpec::nginx(), ImageSpec::busybox()],
        ready: READY,
        label: "netpol",
    };
    let c = Cluster(MultiNode::start(&spec, |_| Vec::new()));
    let t0 = Instant::now();
    check(&c);
    eprintln!("netpol: checked in {:?}", t0.elapsed());
    drop(c);

    // `--disable network-policy` (k3s's name): no table, policies have no effect.
    let spec = MultiNodeSpec {
        nodes: 1,
        label: "netpol disabled",
        ..spec
    };
    let c = Cluster(MultiNode::start(&spec, |_| {
        vec!["--disable".into(), "network-policy".into()]
    }));
    check_disabled(&c);
}

fn check_disabled(c: &Cluster) {
    c.kubectl(&["create", "namespace", "np"]).success();
    for manifest in [
        web_pod("np", "web", "n1"),
        client_pod("np", "client", "client", "n1"),
    ] {
        c.kubectl_stdin(&["apply", "-f", "-"], &manifest).success();
    }
    let web = ip_of(&wait_pods(c, "np", 2), "web");
    let deny = r#"{"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy",
        "metadata":{"name":"default-deny","namespace":"np"},
        "spec":{"podSelector":{},"policyTypes":["Ingress","Egress"]}}"#;
    c.kubectl_stdin(&["apply", "-f", "-"], deny).success();
    // Ten times what enforcement takes when it runs (see the restore time above).
    thread::sleep(Duration::from_secs(1));
    let out = c.wget_in_pod("np", "client", &format!("http://{web}/"));
    assert_eq!(out.stdout.trim(), "web", "--disable network-policy: {out}");
    let t = c.table(1);
    assert!(!t.contains("hook forward"), "no table when disabled: {t}");
    eprintln!("netpol disabled: policies not enforced, no table");
}
