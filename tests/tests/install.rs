//! End-to-end: `install.sh` from the checkout, the way users set up a cluster. A server is
//! installed in node netns 1 and an agent (SKIFF_URL/SKIFF_TOKEN) in node netns 2 of a
//! [`TestNet`] (no route out), each into a temp root (bin, systemd, data, config, log and pid
//! paths all overridden) with `INSTALL_SKIFF_BINARY` = the built binary. Checks: the written
//! units pass `systemd-analyze verify`; the installed `kubectl` symlink shows 2 Ready nodes
//! (and prints the install→Ready time); a second run restarts nothing (same pids);
//! `skiff-killall.sh` leaves no skiff process, mount, link or nftables table; the uninstallers
//! leave no file.
//!
//! systemd is not PID 1 inside the test namespaces (their `/run` is a private tmpfs), so the
//! installer runs skiff under its supervisor, as on CI machines and in containers.
//! Needs root and the Debian packages named in `skiff_e2e::netns::TOOLS`; `SKIFF_E2E_NODES=0`
//! skips it with a loud message.

use skiff_e2e::netns::{self, node_ip, TestNet};
use skiff_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Time for one install.sh run (it waits for its service to be ready).
const INSTALL: Duration = Duration::from_secs(120);
/// Time for both nodes to be Ready once the agent's install returned.
const READY: Duration = Duration::from_secs(90);

fn install_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("install.sh")
}

/// One node's temp root and the paths the installer is pointed at.
struct Root {
    dir: PathBuf,
}

impl Root {
    fn new(net: &TestNet, name: &str) -> Root {
        let dir = net.dir().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Root { dir }
    }
    fn p(&self, sub: &str) -> PathBuf {
        self.dir.join(sub)
    }
    fn s(&self, sub: &str) -> String {
        self.p(sub).display().to_string()
    }
    /// The pids of the supervisor and of skiff under it.
    fn pids(&self, service: &str) -> (String, String) {
        let read = |f: String| {
            std::fs::read_to_string(self.p(&f))
                .unwrap_or_default()
                .trim()
                .to_string()
        };
        (
            read(format!("run/{service}.pid")),
            read(format!("run/{service}.pid.child")),
        )
    }
}

/// `sh install.sh` in node `i`'s namespaces with every path under `root`.
fn install(net: &TestNet, i: usize, root: &Root, env: &[(&str, &str)]) -> Output {
    let sh = install_sh().display().to_string();
    let mut cmd = net.command_in(i, &["sh", &sh]);
    for v in [
        "SKIFF_URL",
        "SKIFF_TOKEN",
        "SKIFF_TOKEN_FILE",
        "SKIFF_NODE_NAME",
        "KUBECONFIG",
        "INSTALL_SKIFF_EXEC",
        "INSTALL_SKIFF_NAME",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("INSTALL_SKIFF_BINARY", skiff_bin())
        .env("INSTALL_SKIFF_SKIP_PACKAGES", "true")
        // kubectl is on PATH here (/usr/bin): link anyway, to drive the cluster through it.
        .env("INSTALL_SKIFF_SYMLINK", "force")
        .env("INSTALL_SKIFF_BIN_DIR", root.p("bin"))
        .env("INSTALL_SKIFF_SYSTEMD_DIR", root.p("systemd"))
        .env("INSTALL_SKIFF_DATA_DIR", root.p("data"))
        .env("INSTALL_SKIFF_CONFIG_DIR", root.p("config"))
        .env("INSTALL_SKIFF_LOG_FILE", root.p("log/skiff.log"))
        .env(
            "INSTALL_SKIFF_PID_FILE",
            root.p(&format!("run/{}.pid", service(env))),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    net.run(cmd, INSTALL)
}

/// An install that must fail with `message` in its error output.
#[track_caller]
fn refused(net: &TestNet, root: &Root, env: &[(&str, &str)], message: &str) {
    let out = install(net, 2, root, env);
    assert!(
        out.code != 0 && out.stderr.contains(message),
        "install.sh with {env:?} should stop with {message:?}:\n{out}"
    );
}

fn service(env: &[(&str, &str)]) -> &'static str {
    if env.iter().any(|(k, _)| *k == "SKIFF_URL") {
        "skiff-agent"
    } else {
        "skiff"
    }
}

/// The installed `kubectl` symlink (skiff's multi-call) in node 1, KUBECONFIG unset so skiff
/// finds the admin kubeconfig.
fn kubectl(net: &TestNet, root: &Root, args: &[&str]) -> Output {
    let k = root.s("bin/kubectl");
    let mut all = vec![k.as_str()];
    all.extend_from_slice(args);
    let mut cmd = net.command_in(1, &all);
    cmd.env_remove("KUBECONFIG")
        .env("SKIFF_KUBECONFIG_OUTPUT", root.p("config/skiff.yaml"))
        .env("KUBECACHEDIR", net.dir().join("kcache"))
        .env("HOME", net.dir().join("home"));
    net.run(cmd, COMMAND_TIMEOUT)
}

fn ready_nodes(net: &TestNet, root: &Root) -> Output {
    kubectl(
        net,
        root,
        &[
            "get",
            "nodes",
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
        ],
    )
}

/// Pids of processes that belong to an install under `root`: skiff from its bin dir, or
/// anything (containerd, shims) whose command line names a path under it.
fn processes_under(root: &Path) -> Vec<String> {
    let bin = root.join("bin").join("skiff");
    let needle = format!("{}/", root.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let exe = std::fs::read_link(e.path().join("exe")).unwrap_or_default();
        let cmdline = std::fs::read(e.path().join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        if exe == bin || cmdline.contains(&needle) {
            out.push(format!("{name}: {cmdline}"));
        }
    }
    out
}

/// Every file or symlink left under `dir` (directories alone do not count).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let t = e.file_type().unwrap();
        if t.is_dir() {
            out.extend(files_under(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

fn logs(roots: &[&Root]) -> String {
    roots
        .iter()
        .map(|r| {
            format!(
                "--- {}:\n{}",
                r.dir.display(),
                tail(
                    &std::fs::read_to_string(r.p("log/skiff.log")).unwrap_or_default(),
                    40
                )
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn install_sh_sets_up_a_server_and_an_agent_and_removes_them() {
    if !netns::bed_enabled() {
        eprintln!("SKIPPED install.rs: SKIFF_E2E_NODES=0");
        return;
    }
    assert!(
        skiff_bin().is_file(),
        "skiff binary {} not found: build it first with `cargo build -p skiff`",
        skiff_bin().display()
    );
    let net = TestNet::create(2).unwrap_or_else(|e| panic!("{e}"));
    for sub in ["home", "kcache"] {
        std::fs::create_dir_all(net.dir().join(sub)).unwrap();
    }
    let (r1, r2) = (Root::new(&net, "n1"), Root::new(&net, "n2"));
    let server_exec = format!("server --node-name n1 --node-ip {}", node_ip(1));
    let server_env = [("INSTALL_SKIFF_EXEC", server_exec.as_str())];

    // The server.
    let t0 = Instant::now();
    let out = install(&net, 1, &r1, &server_env);
    let server_install = t0.elapsed();
    assert!(
        out.code == 0,
        "server install failed:\n{out}\n{}",
        logs(&[&r1])
    );
    assert!(
        out.stdout.contains("systemd is not PID 1"),
        "the installer should say it runs skiff under its supervisor:\n{out}"
    );
    let token = std::fs::read_to_string(r1.p("data/server/node-token"))
        .unwrap()
        .trim()
        .to_string();
    let env_file = r1.p("systemd/skiff.service.env");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "{} must be 0600", env_file.display());

    // Installs that cannot work stop early and say what to do.
    refused(
        &net,
        &r2,
        &[
            ("SKIFF_URL", &format!("https://{}:6443", node_ip(1))),
            ("SKIFF_TOKEN", &format!("K10{}::server:x", "0".repeat(64))),
        ],
        "does not match the server",
    );
    let wrong_password = token
        .rsplit_once(':')
        .map(|(head, _)| format!("{head}:wrong"))
        .unwrap();
    refused(
        &net,
        &r2,
        &[
            ("SKIFF_URL", &format!("https://{}:6443", node_ip(1))),
            ("SKIFF_TOKEN", &wrong_password),
        ],
        "rejected SKIFF_TOKEN",
    );
    refused(
        &net,
        &r2,
        &[
            ("SKIFF_URL", "https://192.0.2.99:6443"),
            ("SKIFF_TOKEN", &token),
        ],
        "cannot reach the server",
    );
    refused(
        &net,
        &r2,
        &[
            ("SKIFF_URL", "http://192.0.2.1:6443"),
            ("SKIFF_TOKEN", &token),
        ],
        "must start with https://",
    );
    // A release whose checksum file does not match its binary.
    let release = net.dir().join("release/v0");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(skiff_bin(), release.join("skiff-amd64")).unwrap();
    std::fs::write(
        release.join("sha256sum-amd64.txt"),
        format!("{}  skiff-amd64\n", "0".repeat(64)),
    )
    .unwrap();
    let base = format!("file://{}", net.dir().join("release").display());
    if std::env::consts::ARCH == "x86_64" {
        refused(
            &net,
            &r2,
            &[
                ("INSTALL_SKIFF_BINARY", ""),
                ("INSTALL_SKIFF_DOWNLOAD_URL", &base),
                ("INSTALL_SKIFF_VERSION", "v0"),
            ],
            "checksum mismatch",
        );
    }
    let left = files_under(&r2.dir);
    assert!(left.is_empty(), "a refused install wrote files: {left:#?}");

    // The agent, joined with the URL and the server's token.
    let url = format!("https://{}:6443", node_ip(1));
    let agent_exec = format!("--node-name n2 --node-ip {}", node_ip(2));
    let agent_env = [
        ("SKIFF_URL", url.as_str()),
        ("SKIFF_TOKEN", token.as_str()),
        ("INSTALL_SKIFF_EXEC", agent_exec.as_str()),
    ];
    let t1 = Instant::now();
    let out = install(&net, 2, &r2, &agent_env);
    assert!(
        out.code == 0,
        "agent install failed:\n{out}\n{}",
        logs(&[&r1, &r2])
    );
    let agent_env_file = std::fs::read_to_string(r2.p("systemd/skiff-agent.service.env")).unwrap();
    assert!(
        agent_env_file.contains(&format!("SKIFF_TOKEN='{token}'")),
        "the agent's env file holds the token:\n{agent_env_file}"
    );

    // Both nodes Ready, through the installed kubectl symlink.
    let start = Instant::now();
    loop {
        let out = ready_nodes(&net, &r1);
        let ready = out.stdout.lines().filter(|l| l.ends_with("=True")).count();
        if ready == 2 {
            break;
        }
        assert!(
            start.elapsed() < READY,
            "2 nodes not Ready within {READY:?}:\n{out}\n{}",
            logs(&[&r1, &r2])
        );
        thread::sleep(Duration::from_millis(200));
    }
    // Without the refused installs in between: server install, then agent install to Ready.
    eprintln!(
        "install.rs: install.sh to 2 nodes Ready: {:?} (server install {:?}, agent install to Ready {:?})",
        server_install + t1.elapsed(),
        server_install,
        t1.elapsed()
    );
    let out = kubectl(&net, &r1, &["get", "nodes"]);
    assert!(
        out.code == 0 && out.stdout.contains("n1") && out.stdout.contains("n2"),
        "kubectl get nodes through the symlink:\n{out}"
    );
    // `skiff kubectl` does the same as the symlink.
    let skiff = r1.s("bin/skiff");
    let mut cmd = net.command_in(1, &[&skiff, "kubectl", "get", "nodes", "-o", "name"]);
    cmd.env_remove("KUBECONFIG")
        .env("SKIFF_KUBECONFIG_OUTPUT", r1.p("config/skiff.yaml"))
        .env("HOME", net.dir().join("home"));
    let out = net.run(cmd, COMMAND_TIMEOUT);
    assert!(
        out.code == 0 && out.stdout.contains("node/n2"),
        "skiff kubectl get nodes:\n{out}"
    );

    // The admin kubeconfig copied to another host with `server:` set to the server's address
    // works with the stock kubectl (the serving certificate covers the node IP).
    let admin = std::fs::read_to_string(r1.p("config/skiff.yaml")).unwrap();
    assert!(
        admin.contains("https://127.0.0.1:6443"),
        "admin kubeconfig:\n{admin}"
    );
    let copied = net.dir().join("copied-kubeconfig");
    std::fs::write(
        &copied,
        admin.replace(
            "https://127.0.0.1:6443",
            &format!("https://{}:6443", node_ip(1)),
        ),
    )
    .unwrap();
    let mut cmd = net.command_in(2, &["kubectl", "get", "nodes", "-o", "name"]);
    cmd.env("KUBECONFIG", &copied)
        .env("HOME", net.dir().join("home"));
    let out = net.run(cmd, COMMAND_TIMEOUT);
    assert!(
        out.code == 0 && out.stdout.contains("node/n1"),
        "stock kubectl on node 2 with the copied kubeconfig:\n{out}"
    );
    std::fs::remove_file(&copied).unwrap();

    // A pod runs on the installed agent: skiff's own pause image is on every node (imported at
    // start, never pulled), so this needs no registry.
    let out = kubectl(
        &net,
        &r1,
        &[
            "run",
            "on-agent",
            "--image=skiff.invalid/pause:1.0",
            "--image-pull-policy=Never",
            "--restart=Never",
            "--overrides={\"apiVersion\":\"v1\",\"spec\":{\"nodeName\":\"n2\"}}",
        ],
    );
    assert_eq!(out.code, 0, "kubectl run on the agent:\n{out}");
    let start = Instant::now();
    loop {
        let out = kubectl(
            &net,
            &r1,
            &[
                "get",
                "pod",
                "on-agent",
                "-o",
                "jsonpath={.status.phase} {.spec.nodeName} {.status.containerStatuses[0].ready}",
            ],
        );
        if out.stdout == "Running n2 true" {
            break;
        }
        assert!(
            start.elapsed() < READY,
            "the pod did not run on the agent within {READY:?}:\n{out}\n{}",
            logs(&[&r1, &r2])
        );
        thread::sleep(Duration::from_millis(200));
    }
    eprintln!(
        "install.rs: pod Running on the agent {:?} after kubectl run",
        start.elapsed()
    );

    // The written units pass systemd-analyze verify.
    for unit in [
        r1.p("systemd/skiff.service"),
        r2.p("systemd/skiff-agent.service"),
    ] {
        let mut c = Command::new("systemd-analyze");
        c.arg("verify").arg(&unit);
        let out = run_command(c, None, COMMAND_TIMEOUT);
        assert!(
            out.code == 0 && out.stderr.trim().is_empty(),
            "systemd-analyze verify {}:\n{out}",
            unit.display()
        );
    }

    // Same settings again: nothing restarts.
    let before = (r1.pids("skiff"), r2.pids("skiff-agent"));
    assert!(
        !before.0 .1.is_empty() && !before.1 .1.is_empty(),
        "pid files: {before:?}"
    );
    let out = install(&net, 1, &r1, &server_env);
    assert!(
        out.code == 0 && out.stdout.contains("nothing to restart"),
        "server re-install:\n{out}"
    );
    let out = install(&net, 2, &r2, &agent_env);
    assert!(
        out.code == 0 && out.stdout.contains("nothing to restart"),
        "agent re-install:\n{out}"
    );
    let after = (r1.pids("skiff"), r2.pids("skiff-agent"));
    assert_eq!(
        before, after,
        "a re-run with the same settings restarted skiff"
    );
    for pid in [&after.0 .1, &after.1 .1] {
        assert!(
            Path::new(&format!("/proc/{pid}")).exists(),
            "skiff pid {pid} is gone after the re-run"
        );
    }

    // Different settings restart the agent once; the same new settings again restart nothing.
    let labelled = format!("{agent_exec} --node-label installed=again");
    let changed_env = [
        ("SKIFF_URL", url.as_str()),
        ("SKIFF_TOKEN", token.as_str()),
        ("INSTALL_SKIFF_EXEC", labelled.as_str()),
    ];
    let out = install(&net, 2, &r2, &changed_env);
    assert!(
        out.code == 0 && out.stdout.contains("settings changed"),
        "agent install with a new flag:\n{out}\n{}",
        logs(&[&r2])
    );
    let restarted = r2.pids("skiff-agent");
    assert_ne!(restarted, after.1, "new settings did not restart the agent");
    let out = install(&net, 2, &r2, &changed_env);
    assert!(
        out.code == 0 && out.stdout.contains("nothing to restart"),
        "agent re-install with the new flag:\n{out}"
    );
    assert_eq!(
        r2.pids("skiff-agent"),
        restarted,
        "the same new settings restarted again"
    );
    wait_for(READY, "the restarted agent's node label", || {
        let out = kubectl(
            &net,
            &r1,
            &[
                "get",
                "node",
                "n2",
                "-o",
                "jsonpath={.metadata.labels.installed}",
            ],
        );
        (out.stdout.trim() == "again").then_some(())
    });

    // killall: no process, mount, link or nftables table of skiff stays.
    for (i, r) in [(1, &r1), (2, &r2)] {
        let out = net.run_in(i, &["sh", &r.s("bin/skiff-killall.sh")]);
        assert!(out.code == 0, "skiff-killall.sh on node {i}:\n{out}");
        let left = processes_under(&r.dir);
        assert!(
            left.is_empty(),
            "processes left after skiff-killall.sh on node {i}: {left:#?}"
        );
        let mounts = net.run_in(i, &["cat", "/proc/self/mounts"]);
        let ours: Vec<&str> = mounts
            .stdout
            .lines()
            .filter(|l| l.contains(&r.s("")))
            .collect();
        assert!(ours.is_empty(), "mounts left on node {i}: {ours:#?}");
        let links = net.run_in(i, &["ip", "-o", "link", "show"]);
        for l in ["cni0", "flannel.1"] {
            assert!(
                !links.stdout.contains(&format!(": {l}")),
                "link {l} left on node {i}:\n{links}"
            );
        }
        let tables = net.run_in(i, &["nft", "list", "tables"]);
        assert!(
            !tables.stdout.contains("skiff"),
            "nftables tables left on node {i}:\n{tables}"
        );
    }

    // uninstall: no file of skiff stays under the roots.
    let out = net.run_in(2, &["sh", &r2.s("bin/skiff-agent-uninstall.sh")]);
    assert!(out.code == 0, "skiff-agent-uninstall.sh:\n{out}");
    let out = net.run_in(1, &["sh", &r1.s("bin/skiff-uninstall.sh")]);
    assert!(out.code == 0, "skiff-uninstall.sh:\n{out}");
    for r in [&r1, &r2] {
        let left = files_under(&r.dir);
        assert!(left.is_empty(), "files left after uninstall: {left:#?}");
    }
}

/// install.sh stays POSIX sh and shellcheck-clean (Debian's `shellcheck`, installed by .ci/run).
#[test]
fn install_sh_is_shellcheck_clean() {
    let mut c = Command::new("shellcheck");
    c.args(["--shell=sh"]).arg(install_sh());
    let out = run_command(c, None, COMMAND_TIMEOUT);
    assert!(
        out.code == 0,
        "shellcheck install.sh (install Debian's shellcheck if it is missing):\n{out}"
    );
}

/// Where systemd is the init: install.sh drives `systemctl` (a recording stand-in here) —
/// enable and restart on the first run, nothing on a re-run with the same settings, one
/// restart when they change — and writes a unit with the k3s service settings.
#[test]
fn install_sh_with_systemd_restarts_only_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let root = Root {
        dir: dir.path().to_path_buf(),
    };
    let fake = root.p("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    let calls = root.p("systemctl.calls");
    // `is-active` answers from a marker the fake `restart` leaves.
    let script = format!(
        "#!/bin/sh\necho \"$*\" >>'{calls}'\ncase \"$1\" in\n  restart) touch '{active}' ;;\n  is-active) [ -f '{active}' ] ;;\nesac\n",
        calls = calls.display(),
        active = root.p("active").display()
    );
    let systemctl = fake.join("systemctl");
    std::fs::write(&systemctl, script).unwrap();
    std::fs::set_permissions(
        &systemctl,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |exec: &str| {
        let mut c = Command::new("sh");
        c.arg(install_sh())
            .env_remove("SKIFF_URL")
            .env_remove("SKIFF_TOKEN")
            .env("PATH", &path)
            .env("INSTALL_SKIFF_INIT", "systemd")
            .env("INSTALL_SKIFF_BINARY", skiff_bin())
            .env("INSTALL_SKIFF_SKIP_PACKAGES", "true")
            .env("INSTALL_SKIFF_SYMLINK", "skip")
            .env("INSTALL_SKIFF_EXEC", exec)
            .env("INSTALL_SKIFF_BIN_DIR", root.p("bin"))
            .env("INSTALL_SKIFF_SYSTEMD_DIR", root.p("systemd"))
            .env("INSTALL_SKIFF_DATA_DIR", root.p("data"))
            .env("INSTALL_SKIFF_CONFIG_DIR", root.p("config"))
            .env("INSTALL_SKIFF_LOG_FILE", root.p("log/skiff.log"))
            .env("INSTALL_SKIFF_PID_FILE", root.p("run/skiff.pid"));
        let out = run_command(c, None, COMMAND_TIMEOUT);
        assert!(out.code == 0, "install.sh (systemd):\n{out}");
        let log = std::fs::read_to_string(&calls).unwrap_or_default();
        std::fs::remove_file(&calls).ok();
        log
    };
    if !Path::new("/usr/bin/containerd").exists() {
        eprintln!(
            "SKIPPED install_sh_with_systemd_restarts_only_on_change: containerd is not installed"
        );
        return;
    }
    let first = run("server --disable-agent");
    assert!(
        first.contains("enable skiff") && first.contains("restart skiff"),
        "first run: {first}"
    );
    let again = run("server --disable-agent");
    assert!(
        !again.contains("restart"),
        "same settings restarted: {again}"
    );
    let changed = run("server --disable-agent --tls-san skiff.example");
    assert_eq!(
        changed.matches("restart skiff").count(),
        1,
        "new settings: {changed}"
    );
    let unit = std::fs::read_to_string(root.p("systemd/skiff.service")).unwrap();
    for line in [
        "Type=notify",
        "KillMode=process",
        "Delegate=yes",
        "Restart=always",
        "LimitNOFILE=1048576",
        "TasksMax=infinity",
        "ExecStartPre=-/sbin/modprobe br_netfilter",
        "ExecStartPre=-/sbin/modprobe overlay",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "unit lacks {line}:\n{unit}"
        );
    }
    let env_line = format!("EnvironmentFile=-{}", root.s("systemd/skiff.service.env"));
    assert!(unit.contains(&env_line), "unit lacks {env_line}:\n{unit}");
    assert!(
        unit.contains(&format!(
            "ExecStart={} server --data-dir",
            root.s("bin/skiff")
        )) && unit.contains("--tls-san skiff.example"),
        "ExecStart:\n{unit}"
    );
}
