//! End-to-end: the k3s-style commands around a cluster. `skiff check-config` and `skiff
//! completion bash|zsh` on this host; then a server (node netns 1) and an agent (2) where the
//! agent re-joins with a bootstrap token from `skiff token create` (fresh kubelet
//! certificates signed for the token's user), `token list` shows it, and after `token delete`
//! the agent's next join is refused with a message naming the fix; `certificate check` lists the
//! server's and node's certificates, and `certificate rotate` refuses while the server runs.
//!
//! The cluster test needs root and the packages `bash .ci/run` installs; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::multinode::{MultiNode, MultiNodeSpec};
use skiff_e2e::netns::{self, node_ip, NsProcess, TEST_KUBELET_ARGS};
use skiff_e2e::*;
use std::process::Command;
use std::time::{Duration, Instant};

const TOKEN: &str = "cli-e2e-secret";
/// Time for the 2 nodes to be Ready.
const READY: Duration = Duration::from_secs(120);
/// Time for a restarted agent to join (or to give up on a refused token).
const JOIN: Duration = Duration::from_secs(60);

fn skiff(args: &[&str]) -> Output {
    assert!(
        skiff_bin().is_file(),
        "skiff binary {} not found: build it first with `cargo build -p skiff`",
        skiff_bin().display()
    );
    let mut c = Command::new(skiff_bin());
    c.args(args);
    run_command(c, None, COMMAND_TIMEOUT)
}

#[test]
fn check_config_reports_every_item_and_its_verdict() {
    let out = skiff(&["check-config"]);
    let last = out.stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("STATUS: "), "no STATUS line:\n{out}");
    // The exit code follows the verdict.
    assert_eq!(out.code == 0, last == "STATUS: pass", "{out}");
    for section in [
        "System:",
        "Generally Necessary:",
        "Network Drivers:",
        "Storage Drivers:",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == section),
            "{section}:\n{out}"
        );
    }
    for item in [
        "- containerd: ",
        "- runc: ",
        "- nft: ",
        "- CNI plugins (bridge, host-local, loopback, portmap): ",
        "- /proc/sys/net/ipv4/ip_forward: ",
        "- cgroup hierarchy: ",
        "- CONFIG_OVERLAY_FS: ",
        "- CONFIG_BRIDGE_NETFILTER: ",
        "- CONFIG_VXLAN: ",
        "- CONFIG_NF_TABLES: ",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(item)),
            "{item}:\n{out}"
        );
    }
    // This test machine is one skiff runs on: containerd and runc are found.
    let line = |p: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(p))
            .unwrap()
            .to_string()
    };
    assert!(!line("- containerd: ").contains("fail"), "{out}");
    assert!(!line("- runc: ").contains("fail"), "{out}");
}

#[test]
fn completion_scripts_are_valid_shell() {
    let out = skiff(&["completion", "bash"]);
    out.success();
    assert!(out.stdout.contains("complete -F _skiff"), "{out}");
    for word in ["check-config", "certificate", "completion", "--data-dir"] {
        assert!(
            out.stdout.contains(word),
            "{word} missing:\n{}",
            tail(&out.stdout, 20)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("skiff.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    let mut bash = Command::new("bash");
    bash.arg("-n").arg(&script);
    run_command(bash, None, COMMAND_TIMEOUT).success();
    let zsh = skiff(&["completion", "zsh"]);
    zsh.success();
    assert!(zsh.stdout.starts_with("#compdef skiff"), "{zsh}");
    let bad = skiff(&["completion", "fish"]);
    assert_ne!(bad.code, 0, "{bad}");
}

#[test]
fn token_generate_prints_a_bootstrap_token() {
    let out = skiff(&["token", "generate"]);
    out.success();
    let t = out.stdout.trim();
    let (id, secret) = t.split_once('.').unwrap_or_else(|| panic!("{out}"));
    assert_eq!((id.len(), secret.len()), (6, 16), "{out}");
    assert!(t
        .chars()
        .all(|c| c == '.' || c.is_ascii_lowercase() || c.is_ascii_digit()));
}

/// The cluster and a way to (re)start its agent.
struct Bed {
    c: MultiNode,
}

impl Bed {
    fn dir(&self, n: &str) -> String {
        self.c.net.dir().join(n).display().to_string()
    }

    /// `skiff ARGS` inside node 1's namespaces (where 127.0.0.1:6443 is the server).
    fn skiff_in_server(&self, args: &[&str]) -> Output {
        let bin = skiff_bin().display().to_string();
        let mut all = vec![bin.as_str()];
        all.extend_from_slice(args);
        self.c.net.run_in(1, &all)
    }

    /// Starts a `skiff agent` for node n2 (data dir n2) with `token`.
    fn start_agent(&self, token: &str, log: &str) -> NsProcess {
        let skiff = skiff_bin().display().to_string();
        let server = format!("https://{}:6443", node_ip(1));
        let (config, data) = (self.dir("no-config.yaml"), self.dir("n2"));
        let registries = self.c.net.dir().join("registries.yaml");
        let registries = registries.display().to_string();
        let ip = node_ip(2);
        let args = [
            skiff.as_str(),
            "agent",
            "--config",
            &config,
            "--server",
            &server,
            "--token",
            token,
            "--node-name",
            "n2",
            "--node-ip",
            &ip,
            "--data-dir",
            &data,
            "--private-registry",
            &registries,
            TEST_KUBELET_ARGS[0],
            TEST_KUBELET_ARGS[1],
        ];
        self.c.net.spawn_in(2, log, &args)
    }

    fn node_ready(&self, name: &str) -> bool {
        self.c
            .jsonpath(
                &["node", name],
                "{.status.conditions[?(@.type==\"Ready\")].status}",
            )
            .trim()
            == "True"
    }
}

#[test]
fn bootstrap_tokens_join_agents_until_deleted_and_certificates_are_listed() {
    if !netns::bed_enabled() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** skiff-e2e cli cluster test SKIPPED: SKIFF_E2E_NODES=0 (it needs root and the \
             packages `bash .ci/run` installs) ***\n"
        );
        return;
    }
    let spec = MultiNodeSpec {
        nodes: 2,
        token: TOKEN,
        images: &[],
        ready: READY,
        label: "cli",
    };
    let mut bed = Bed {
        c: MultiNode::start(&spec, |_| vec![]),
    };
    let kubeconfig = bed.c.kubeconfig.display().to_string();
    let n1 = bed.dir("n1");

    // token create through the admin kubeconfig: K10<the server's CA hash>::<id>.<secret>.
    let out = bed.skiff_in_server(&[
        "token",
        "create",
        "--kubeconfig",
        &kubeconfig,
        "--ttl",
        "2h",
        "--description",
        "e2e-join",
    ]);
    out.success();
    let boot = out.stdout.trim().to_string();
    let node_token = skiff(&["token", "-d", &n1]);
    node_token.success();
    let hash = node_token.stdout.trim()[3..67].to_string();
    assert!(
        boot.starts_with(&format!("K10{hash}::")),
        "{boot} vs {node_token}"
    );
    let creds = boot.rsplit_once("::").unwrap().1.to_string();
    let id = creds.split_once('.').unwrap().0.to_string();
    assert_eq!(creds.len(), 23, "{boot}");

    // token list with the data dir's admin credentials (no --kubeconfig): kubeadm's columns.
    let list = bed.skiff_in_server(&["token", "list", "-d", &n1]);
    list.success();
    let header = list.stdout.lines().next().unwrap_or("");
    let cols: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        cols,
        [
            "TOKEN",
            "TTL",
            "EXPIRES",
            "USAGES",
            "DESCRIPTION",
            "EXTRA",
            "GROUPS"
        ],
        "{list}"
    );
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("token {id} not listed:\n{list}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(matches!(cells[1], "1h" | "2h"), "{row}");
    assert_eq!(
        &cells[3..],
        [
            "authentication,signing",
            "e2e-join",
            "system:bootstrappers:skiff:default-node-token"
        ],
        "{row}"
    );
    // It is an upstream bootstrap token Secret.
    let ty = bed.c.jsonpath(
        &[
            "secret",
            "-n",
            "kube-system",
            &format!("bootstrap-token-{id}"),
        ],
        "{.type}",
    );
    assert_eq!(ty, "bootstrap.kubernetes.io/token");

    // The agent re-joins with the bootstrap token and without its kubelet certificates, so the
    // server signs new ones for the token's user.
    bed.c.procs[1].kill_group();
    let agent_dir = bed.c.net.dir().join("n2").join("agent");
    for f in [
        "client-kubelet.crt",
        "client-kubelet.key",
        "serving-kubelet.crt",
        "serving-kubelet.key",
    ] {
        std::fs::remove_file(agent_dir.join(f)).unwrap();
    }
    let t0 = Instant::now();
    let mut agent = bed.start_agent(&boot, "agent-n2-bootstrap");
    wait_for(JOIN, "the agent joined with the bootstrap token", || {
        if let Some(code) = agent.exit_code() {
            panic!(
                "the agent exited ({code}):\n{}\n{}",
                tail(&agent.log(), 40),
                bed.c.logs()
            );
        }
        agent
            .log()
            .contains("joined the server with the node's own certificate")
            .then_some(())
    });
    assert!(agent_dir.join("client-kubelet.crt").is_file());
    wait_for(JOIN, "n2 Ready after the bootstrap join", || {
        bed.node_ready("n2").then_some(())
    });
    eprintln!(
        "cli: agent joined with a bootstrap token in {:?}",
        t0.elapsed()
    );

    // token delete (by the full token): gone from the list, and the next join is refused.
    let del = bed.skiff_in_server(&["token", "delete", "-d", &n1, &boot]);
    del.success();
    assert!(
        del.stdout
            .contains(&format!("bootstrap token \"{id}\" deleted")),
        "{del}"
    );
    let list = bed.skiff_in_server(&["token", "list", "-d", &n1]);
    list.success();
    assert!(!list.stdout.contains(&id), "{list}");
    let again = bed.skiff_in_server(&["token", "delete", "-d", &n1, &id]);
    assert_ne!(again.code, 0, "{again}");
    assert!(again.stderr.contains("not found"), "{again}");

    agent.kill_group();
    let mut refused = bed.start_agent(&boot, "agent-n2-refused");
    let code = refused.wait_exit(JOIN);
    let log = refused.log();
    assert!(
        matches!(code, Some(c) if c != 0),
        "the agent did not stop on a deleted token (exit {code:?}):\n{}",
        tail(&log, 30)
    );
    for want in [
        "401",
        &format!("bootstrap token {id} is not valid"),
        "skiff token create",
    ] {
        assert!(log.contains(want), "{want:?} missing:\n{}", tail(&log, 30));
    }
    // The server token still joins.
    let mut back = bed.start_agent(TOKEN, "agent-n2-back");
    wait_for(JOIN, "the agent joined again with the server token", || {
        if let Some(code) = back.exit_code() {
            panic!("the agent exited ({code}):\n{}", tail(&back.log(), 40));
        }
        back.log()
            .contains("joined the server with the node's own certificate")
            .then_some(())
    });

    // certificate check: the server's and the node's certificates, each with its CA.
    let out = skiff(&["certificate", "check", "-d", &n1, "--output", "table"]);
    out.success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["FILENAME", "SUBJECT", "USAGES", "EXPIRES", "RESIDUAL", "TIME", "STATUS"],
        "{out}"
    );
    for (file, subject, usage) in [
        ("server-ca.crt", "skiff-server-ca", "CertSign"),
        ("client-admin.crt", "system:admin", "ClientAuth"),
        ("serving-kube-apiserver.crt", "kube-apiserver", "ServerAuth"),
        ("client-kubelet.crt", "system:node:n1", "ClientAuth"),
        ("serving-kubelet.crt", "n1", "ServerAuth"),
    ] {
        assert!(
            lines.iter().any(|l| {
                let c: Vec<&str> = l.split_whitespace().collect();
                c.len() > 3
                    && c[0] == file
                    && c[1].starts_with(subject)
                    && c[2] == usage
                    && l.ends_with("OK")
            }),
            "{file} {subject} {usage} missing:\n{out}"
        );
    }
    let text = skiff(&["certificate", "check", "-d", &n1]);
    text.success();
    assert!(
        text.stdout.lines().any(|l| l.starts_with(
            "admin: certificate client-admin.crt (CN=system:admin) is ok, expires at "
        )),
        "{text}"
    );
    // rotate refuses while the server runs, and names the fix.
    let rot = skiff(&["certificate", "rotate", "-d", &n1]);
    assert_ne!(rot.code, 0, "{rot}");
    assert!(rot.stderr.contains("stop it first"), "{rot}");
    assert!(bed
        .c
        .net
        .dir()
        .join("n1/server/tls/client-admin.crt")
        .is_file());
    drop((back, refused));
}
