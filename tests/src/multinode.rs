//! A `skiff server` (node netns 1) and `skiff agent`s (2..=n) of a [`TestNet`] on containerd,
//! pulling through the test registry as their docker.io mirror: the cluster the multi-node
//! e2e files (pod network, Services, DNS) share, with the kubectl runner they drive it with.

use crate::images::{self, ImageSpec};
use crate::netns::{node_ip, NsProcess, TestNet, REGISTRY, TEST_KUBELET_ARGS};
use crate::{skiff_bin, tail, wait_for, Output, COMMAND_TIMEOUT};
use std::path::PathBuf;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// What to start.
pub struct MultiNodeSpec<'a> {
    /// Nodes in all: the server's and `nodes - 1` agents.
    pub nodes: usize,
    /// The server's `--token`.
    pub token: &'a str,
    /// Images pushed to the test registry before the nodes start.
    pub images: &'a [ImageSpec],
    /// Time for every node to be Ready.
    pub ready: Duration,
    /// Names the cluster in the start-up line it prints.
    pub label: &'a str,
}

/// A running multi-node cluster; everything stops when it is dropped.
pub struct MultiNode {
    pub net: TestNet,
    _registry: NsProcess,
    pub procs: Vec<NsProcess>,
    pub kubeconfig: PathBuf,
}

impl MultiNode {
    /// Starts the server, then the agents, each with `extra` appended to its arguments (`extra`
    /// gets the test network, e.g. to write a file the flags name), and waits until every node
    /// is Ready.
    pub fn start(spec: &MultiNodeSpec, extra: impl FnOnce(&TestNet) -> Vec<String>) -> Self {
        Self::start_with(spec, &[], extra)
    }

    /// [`MultiNode::start`] with `server_extra` flags for the server only (control-plane
    /// flags an agent does not take).
    pub fn start_with(
        spec: &MultiNodeSpec,
        server_extra: &[&str],
        extra: impl FnOnce(&TestNet) -> Vec<String>,
    ) -> Self {
        assert!(
            skiff_bin().is_file(),
            "skiff binary {} not found: build it first with `cargo build -p skiff`",
            skiff_bin().display()
        );
        let t0 = Instant::now();
        let net = TestNet::create(spec.nodes).unwrap_or_else(|e| panic!("{e}"));
        let registry = net.start_registry().unwrap_or_else(|e| panic!("{e}"));
        net.push_images(spec.images)
            .unwrap_or_else(|e| panic!("{e}"));
        let registries = net.dir().join("registries.yaml");
        std::fs::write(
            &registries,
            images::registries_yaml(&format!("http://{REGISTRY}")),
        )
        .unwrap();
        for sub in ["home", "kcache"] {
            std::fs::create_dir_all(net.dir().join(sub)).unwrap();
        }
        for i in 1..=spec.nodes {
            std::fs::create_dir_all(net.dir().join(format!("n{i}"))).unwrap();
        }
        let extra = extra(&net);
        let kubeconfig = net.dir().join("kubeconfig");
        let dir = |n: &str| net.dir().join(n).display().to_string();
        let skiff = skiff_bin().display().to_string();
        let mut server_args = vec![
            skiff.clone(),
            "server".into(),
            "--config".into(),
            dir("no-config.yaml"),
            "--data-dir".into(),
            dir("n1"),
            "--node-name".into(),
            "n1".into(),
            "--node-ip".into(),
            node_ip(1),
            "--private-registry".into(),
            registries.display().to_string(),
            TEST_KUBELET_ARGS[0].into(),
            TEST_KUBELET_ARGS[1].into(),
            "--write-kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--token".into(),
            spec.token.into(),
        ];
        server_args.extend(extra.iter().cloned());
        server_args.extend(server_extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = server_args.iter().map(String::as_str).collect();
        let mut procs = vec![net.spawn_in(1, "server", &refs)];
        wait_for(Duration::from_secs(30), "the server's readyz", || {
            if procs[0].exit_code().is_some() {
                panic!("skiff server exited:\n{}", tail(&procs[0].log(), 40));
            }
            let out = net.run_in(
                1,
                &[
                    "curl",
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                    "https://127.0.0.1:6443/readyz",
                ],
            );
            (kubeconfig.is_file() && out.stdout.trim() == "200").then_some(())
        });
        for i in 2..=spec.nodes {
            let mut args = vec![
                skiff.clone(),
                "agent".into(),
                "--config".into(),
                dir("no-config.yaml"),
                "--server".into(),
                format!("https://{}:6443", node_ip(1)),
                "--token".into(),
                spec.token.into(),
                "--node-name".into(),
                format!("n{i}"),
                "--node-ip".into(),
                node_ip(i),
                "--data-dir".into(),
                dir(&format!("n{i}")),
                "--private-registry".into(),
                registries.display().to_string(),
                TEST_KUBELET_ARGS[0].into(),
                TEST_KUBELET_ARGS[1].into(),
            ];
            args.extend(extra.iter().cloned());
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            procs.push(net.spawn_in(i, &format!("agent-n{i}"), &refs));
        }
        let c = MultiNode {
            net,
            _registry: registry,
            procs,
            kubeconfig,
        };
        let start = Instant::now();
        loop {
            let out = c.kubectl(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            ]);
            if out.stdout.lines().filter(|l| l.ends_with("=True")).count() == spec.nodes {
                break;
            }
            assert!(
                start.elapsed() < spec.ready,
                "{} nodes not Ready within {:?}:\n{out}\n{}",
                spec.nodes,
                spec.ready,
                c.logs()
            );
            thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "{}: {} nodes Ready in {:?}",
            spec.label,
            spec.nodes,
            t0.elapsed()
        );
        c
    }

    /// kubectl run in node 1's netns with the cluster's kubeconfig and a private cache.
    pub fn kubectl_cmd(&self, args: &[&str]) -> Command {
        let mut all = vec!["kubectl"];
        all.extend_from_slice(args);
        let mut c = self.net.command_in(1, &all);
        c.env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.net.dir().join("kcache"))
            .env("HOME", self.net.dir().join("home"));
        c
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.net.run(self.kubectl_cmd(args), COMMAND_TIMEOUT)
    }

    /// `kubectl get WHAT -o jsonpath=PATH`, stdout only.
    pub fn jsonpath(&self, what: &[&str], path: &str) -> String {
        let mut args = vec!["get"];
        args.extend_from_slice(what);
        let p = format!("jsonpath={path}");
        args.extend_from_slice(&["-o", &p]);
        self.kubectl(&args).stdout
    }

    /// The tails of the server's and every agent's logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        let names = std::iter::once("server".to_string())
            .chain((2..=self.procs.len()).map(|i| format!("agent-n{i}")));
        for name in names {
            let text = std::fs::read_to_string(self.net.dir().join(format!("{name}.log")))
                .unwrap_or_default();
            s.push_str(&format!("--- {name} log tail ---\n{}\n", tail(&text, 30)));
        }
        s
    }
}
