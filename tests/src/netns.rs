//! Multi-node test network: a "switch" network namespace with a bridge and N node namespaces
//! wired into it, each node with its own mount namespace, plus the test registry.
//!
//! Layout of one [`TestNet`] (`P` = test process id, `K` = per-process counter):
//! - netns `skiffe2e-P-K-sw`: bridge `br0` with 192.0.2.254/24; the registry listens there.
//! - netns `skiffe2e-P-K-<i>` for node i in 1..=N: `eth0` (a veth into `br0`) with
//!   192.0.2.i/24, `lo` up, no default route, so nothing sent from a node can leave the host.
//! - every namespace has a holder process (`nsenter --net` + `unshare --mount`) that remounts
//!   `/sys` for that netns (keeping the host's cgroup mounts) and mounts private tmpfs over `/run`,
//!   `/etc/cni` and `/var/lib/cni` (node-global paths that containerd, runc and the CNI plugins
//!   would otherwise share between nodes: runc state under `/run/containerd/runc`, pod netns
//!   files under `/run/netns`, host-local IPAM under `/var/lib/cni`) and then sleeps; commands run
//!   with `nsenter` into that netns and mount namespace, so a restarted agent sees the same
//!   mounts as the one it replaces.
//! - a temp dir `$TMPDIR/skiffe2e-P-K` for data dirs, logs and images.
//!
//! Teardown is a bash "reaper" started at creation that waits for its stdin to close (on
//! [`Drop`], or when the test process dies, even by SIGKILL — statics are never dropped): it
//! kills every process group spawned here, every process in the namespaces, every container
//! whose root filesystem lives under the temp dir, deletes the namespaces, unmounts leftovers
//! and removes the dir (kept with `SKIFF_E2E_KEEP=1`). [`TestNet::create`] first sweeps
//! `skiffe2e-*` namespaces whose test process is gone, with the same script.

use crate::{run_command, tail, Output, COMMAND_TIMEOUT};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// The switch's address on the test network; the registry listens on it.
pub const SWITCH_IP: &str = "192.0.2.254";
/// `HOST:PORT` of the test registry.
pub const REGISTRY: &str = "192.0.2.254:5000";
/// The index of the switch namespace in [`TestNet::run_in`] / [`TestNet::spawn_in`].
pub const SWITCH: usize = 0;
/// Prefix of every namespace and temp dir this module creates.
pub const PREFIX: &str = "skiffe2e-";
/// Flags every real node of the tests gets: the nodes share the host's disk, whose free space
/// the tests do not control, so only the memory threshold is kept (as upstream, naming one
/// signal sets the others to zero); without this a host disk under 10% free evicts every pod.
pub const TEST_KUBELET_ARGS: &[&str] = &["--kubelet-arg", "eviction-hard=memory.available<100Mi"];
/// Paths that get a private tmpfs in every namespace's mount namespace.
pub const PRIVATE_MOUNTS: &[&str] = &["/run", "/etc/cni", "/var/lib/cni"];

/// The programs the bed needs, with the Debian package that provides each.
pub const TOOLS: &[(&str, &str)] = &[
    ("/usr/sbin/ip", "iproute2"),
    ("/usr/bin/nsenter", "util-linux"),
    ("/usr/bin/containerd", "containerd"),
    ("/usr/bin/ctr", "containerd"),
    ("/usr/sbin/runc", "runc"),
    ("/usr/lib/cni/bridge", "containernetworking-plugins"),
    ("/usr/lib/cni/host-local", "containernetworking-plugins"),
    ("/usr/sbin/nft", "nftables"),
    ("/usr/sbin/iptables", "iptables"),
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/skopeo", "skopeo"),
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/curl", "curl"),
];

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Whether the multi-node tests should run: `SKIFF_E2E_NODES=0` skips them (for developers
/// without root); anything else, or unset, runs them and fails if the bed cannot be built.
pub fn bed_enabled() -> bool {
    std::env::var("SKIFF_E2E_NODES").map_or(true, |v| v.trim() != "0")
}

/// Checks that we run as root and that every tool in [`TOOLS`] exists; the error names what to
/// install or how to skip.
pub fn check_prerequisites() -> Result<(), String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if effective_uid(&status) != Some(0) {
        return Err(
            "the multi-node e2e tests need root (network namespaces, mounts, containerd): \
                    run them as root, or set SKIFF_E2E_NODES=0 to skip them"
                .into(),
        );
    }
    let missing = missing_packages(TOOLS, |p| Path::new(p).exists());
    if !missing.is_empty() {
        return Err(format!(
            "the multi-node e2e tests need these Debian packages: apt-get install -y {} \
             (or run `bash .ci/run`; SKIFF_E2E_NODES=0 skips the tests)",
            missing.join(" ")
        ));
    }
    Ok(())
}

/// The effective uid from `/proc/self/status` text.
pub fn effective_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
}

/// The packages (deduplicated, in table order) whose program `exists` says is absent.
pub fn missing_packages(tools: &[(&str, &str)], exists: impl Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (path, pkg) in tools {
        if !exists(path) && !out.iter().any(|p| p == pkg) {
            out.push(pkg.to_string());
        }
    }
    out
}

/// Groups `ip netns list` output into stale test networks: names `skiffe2e-<pid>-<k>-…` whose
/// `<pid>` is not `alive`, keyed by the network's name `skiffe2e-<pid>-<k>`.
pub fn stale_networks(
    netns_list: &str,
    alive: impl Fn(u32) -> bool,
) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in netns_list.lines() {
        // `ip netns list` prints `name` or `name (id: 3)`.
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(k), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid_n) = pid.parse::<u32>() else {
            continue;
        };
        if k.parse::<u32>().is_err() || alive(pid_n) {
            continue;
        }
        out.entry(format!("{PREFIX}{pid}-{k}"))
            .or_default()
            .push(name.to_string());
    }
    out
}

/// The address of node `i` (1-based) on the test network.
pub fn node_ip(i: usize) -> String {
    format!("192.0.2.{i}")
}

/// The teardown script; args: `<dir> <netns>…`. It first waits for stdin to close.
const REAPER: &str = r#"
cat >/dev/null
dir=$1; shift
kill_round() {
  if [ -f "$dir/pgids" ]; then
    while read -r g; do [ -n "$g" ] && kill -KILL -- "-$g" 2>/dev/null; done <"$dir/pgids"
  fi
  for ns in "$@"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
  done
  # containers (their own netns and mount ns) whose root filesystem lives under our dir
  for m in /proc/[0-9]*/mountinfo; do
    p=${m#/proc/}; p=${p%/mountinfo}
    [ "$p" = "$$" ] && continue
    while read -r _ _ _ _ mp rest; do
      if [ "$mp" = / ]; then
        case "$rest" in *"$dir/"*) kill -KILL "$p" 2>/dev/null ;; esac
        break
      fi
    done <"$m" 2>/dev/null
  done
}
for _ in 1 2 3; do kill_round "$@"; sleep 0.2; done
for ns in "$@"; do ip netns delete "$ns" 2>/dev/null; done
# mounts under our dir that reached this mount namespace
for mp in $(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
  umount -l "$mp" 2>/dev/null
done
[ -n "$SKIFF_E2E_KEEP" ] || rm -rf "$dir"
"#;

/// The holder of one namespace's mount namespace (already in the netns and a new private mount
/// namespace): mounts the private tmpfs, remounts `/sys` for the netns while keeping the host's
/// cgroup hierarchies (a plain `ip netns exec` drops `/sys/fs/cgroup` with the old `/sys`, and
/// runc then fails with `no cgroup mount found in mountinfo`), says `ready`, sleeps.
const HOLDER: &str = r#"
set -e
for d in "$@"; do mkdir -p "$d"; mount -t tmpfs -o mode=0755 tmpfs "$d"; done
mkdir -p /run/netns /run/lock /run/skiffe2e-cgroup
mount --rbind /sys/fs/cgroup /run/skiffe2e-cgroup
mount -t sysfs sysfs /sys
mount --move /run/skiffe2e-cgroup /sys/fs/cgroup
rmdir /run/skiffe2e-cgroup
echo ready
exec sleep infinity
"#;

/// A process started in one of the namespaces, in its own process group, output appended to a
/// log file. Dropping it kills the whole group.
pub struct NsProcess {
    child: Child,
    pub pid: u32,
    pub log: PathBuf,
    done: bool,
}

impl NsProcess {
    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The exit code once it exited (-1 for a signal), None while it runs.
    pub fn exit_code(&mut self) -> Option<i32> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.code().unwrap_or(-1)),
            _ => None,
        }
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(c) = self.exit_code() {
                return Some(c);
            }
            if start.elapsed() > timeout {
                return None;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILLs only this process (its children, e.g. a containerd it started, live on), as a
    /// crash would.
    pub fn kill_9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done = true;
    }

    /// SIGKILLs the process and its whole process group.
    pub fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.pid)])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.done = true;
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        if !self.done {
            self.kill_group();
        }
    }
}

/// The switch, the nodes, their holders and the reaper (see the module doc).
pub struct TestNet {
    /// `skiffe2e-<pid>-<k>`: the prefix of the namespaces and the temp dir's name.
    pub name: String,
    dir: PathBuf,
    nodes: usize,
    holders: Vec<Child>,
    reaper: Mutex<Option<(Child, ChildStdin)>>,
}

impl TestNet {
    /// Sweeps stale networks, then builds the switch and `nodes` node namespaces. Errors name
    /// what to install (see [`check_prerequisites`]).
    pub fn create(nodes: usize) -> Result<TestNet, String> {
        assert!((1..=253).contains(&nodes), "1 to 253 nodes");
        crate::arm_watchdog();
        check_prerequisites()?;
        sweep_stale();
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let mut names = vec![format!("{name}-sw")];
        names.extend((1..=nodes).map(|i| format!("{name}-{i}")));
        // The reaper first, so a failure below still cleans up.
        let mut reaper = Command::new("bash")
            .arg("-c")
            .arg(REAPER)
            .arg("skiffe2e-reaper")
            .arg(&dir)
            .args(&names)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run bash for the test network reaper: {e}"))?;
        let stdin = reaper.stdin.take().expect("piped stdin");
        let mut net = TestNet {
            name,
            dir,
            nodes,
            holders: Vec::new(),
            reaper: Mutex::new(Some((reaper, stdin))),
        };
        net.build(&names)?;
        Ok(net)
    }

    fn build(&mut self, names: &[String]) -> Result<(), String> {
        let sw = &names[0];
        let mut script = format!(
            "set -e\nip netns add {sw}\nip -n {sw} link set lo up\n\
             ip -n {sw} link add br0 type bridge\nip -n {sw} addr add {SWITCH_IP}/24 dev br0\n\
             ip -n {sw} link set br0 up\n"
        );
        for (i, ns) in names.iter().enumerate().skip(1) {
            script.push_str(&format!(
                "ip netns add {ns}\nip -n {ns} link set lo up\n\
                 ip -n {sw} link add v{i} type veth peer name eth0 netns {ns}\n\
                 ip -n {sw} link set v{i} master br0 up\n\
                 ip -n {ns} addr add {ip}/24 dev eth0\nip -n {ns} link set eth0 up\n",
                ip = node_ip(i)
            ));
        }
        let mut c = Command::new("bash");
        c.arg("-c").arg(&script);
        let out = run_command(c, None, COMMAND_TIMEOUT);
        if out.code != 0 {
            return Err(format!("cannot build the test network:\n{out}"));
        }
        for ns in names {
            let mut holder = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{ns}"))
                .args(["--", "unshare", "--mount", "--propagation", "private", "--"])
                .args(["bash", "-c", HOLDER, "skiffe2e-holder"])
                .args(PRIVATE_MOUNTS)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .process_group(0)
                .spawn()
                .map_err(|e| format!("cannot run nsenter and unshare (util-linux): {e}"))?;
            self.record_pgid(holder.id());
            let mut line = String::new();
            let _ =
                BufReader::new(holder.stdout.take().expect("piped stdout")).read_line(&mut line);
            if line.trim() != "ready" {
                let _ = holder.kill();
                return Err(format!(
                    "the mount namespace holder of {ns} failed (mounting tmpfs over {PRIVATE_MOUNTS:?})"
                ));
            }
            self.holders.push(holder);
        }
        Ok(())
    }

    fn record_pgid(&self, pgid: u32) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("pgids"))
        {
            let _ = writeln!(f, "{pgid}");
        }
    }

    /// The temp dir of this network (data dirs, logs, images).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many nodes.
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    /// The netns name of `index` ([`SWITCH`] or a node 1..=N).
    pub fn netns(&self, index: usize) -> String {
        assert!(index <= self.nodes, "no node {index}");
        if index == SWITCH {
            format!("{}-sw", self.name)
        } else {
            format!("{}-{index}", self.name)
        }
    }

    /// `nsenter` into the netns and mount namespace of `index`, then `args`.
    pub fn command_in(&self, index: usize, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", self.netns(index)))
            .arg(format!("--mount=/proc/{}/ns/mnt", self.holders[index].id()))
            .arg("--")
            .args(args);
        c
    }

    /// Runs `args` inside `index`'s namespaces to completion ([`COMMAND_TIMEOUT`]).
    pub fn run_in(&self, index: usize, args: &[&str]) -> Output {
        run_command(self.command_in(index, args), None, COMMAND_TIMEOUT)
    }

    /// Runs a prepared command (see [`TestNet::command_in`]) with a timeout.
    pub fn run(&self, cmd: Command, timeout: Duration) -> Output {
        run_command(cmd, None, timeout)
    }

    /// Starts `args` inside `index`'s namespaces in a new process group, stdout and stderr
    /// appended to `<dir>/<log_name>.log`.
    pub fn spawn_in(&self, index: usize, log_name: &str, args: &[&str]) -> NsProcess {
        self.spawn_cmd(self.command_in(index, args), log_name)
    }

    /// Starts a prepared command (see [`TestNet::command_in`], e.g. with extra env).
    pub fn spawn_cmd(&self, mut cmd: Command, log_name: &str) -> NsProcess {
        let log = self.dir.join(format!("{log_name}.log"));
        let open = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", log.display()))
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(open())
            .stderr(open())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nsenter: {e}"));
        let pid = child.id();
        self.record_pgid(pid);
        NsProcess {
            child,
            pid,
            log,
            done: false,
        }
    }

    /// Starts Debian's `docker-registry` in the switch namespace on [`REGISTRY`] with its
    /// storage under the temp dir, and waits until `/v2/` answers.
    pub fn start_registry(&self) -> Result<NsProcess, String> {
        let root = self.dir.join("registry");
        std::fs::create_dir_all(root.join("storage")).map_err(|e| e.to_string())?;
        let config = root.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {REGISTRY}\n",
                root.join("storage").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut p = self.spawn_in(
            SWITCH,
            "registry",
            &["docker-registry", "serve", &config.display().to_string()],
        );
        let start = Instant::now();
        loop {
            let out = self.run_in(
                SWITCH,
                &[
                    "curl",
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                    &format!("http://{REGISTRY}/v2/"),
                ],
            );
            if out.stdout.trim() == "200" {
                return Ok(p);
            }
            if p.exit_code().is_some() || start.elapsed() > Duration::from_secs(20) {
                return Err(format!(
                    "the test registry did not answer on http://{REGISTRY}/v2/:\n{}",
                    tail(&p.log(), 20)
                ));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Builds `specs` as OCI archives under the temp dir and pushes them with skopeo from the
    /// switch namespace to the registry.
    pub fn push_images(&self, specs: &[crate::images::ImageSpec]) -> Result<(), String> {
        let dir = self.dir.join("images");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        for spec in specs {
            let file = dir.join(format!(
                "{}-{}.tar",
                spec.repository.replace('/', "_"),
                spec.tag
            ));
            crate::images::write_archive(spec, &file).map_err(|e| e.to_string())?;
            let push = crate::images::push_command(spec, &file, REGISTRY);
            let args: Vec<String> = std::iter::once(push.get_program())
                .chain(push.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = self.run_in(SWITCH, &refs);
            if out.code != 0 {
                return Err(format!("cannot push {}:\n{out}", spec.reference(REGISTRY)));
            }
        }
        Ok(())
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for h in &mut self.holders {
            let _ = h.kill();
            let _ = h.wait();
        }
        if let Some((mut reaper, stdin)) = self.reaper.lock().ok().and_then(|mut r| r.take()) {
            drop(stdin);
            let _ = reaper.wait();
        }
    }
}

/// Tears down test networks left by test processes that no longer exist.
fn sweep_stale() {
    let list = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let stale = stale_networks(&list, |pid| Path::new(&format!("/proc/{pid}")).exists());
    for (name, names) in stale {
        eprintln!("skiff-e2e: removing the stale test network {name} ({names:?})");
        let _ = Command::new("bash")
            .arg("-c")
            .arg(REAPER)
            .arg("skiffe2e-sweep")
            .arg(std::env::temp_dir().join(&name))
            .args(&names)
            .stdin(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_networks_are_those_of_dead_processes() {
        let list = "skiffe2e-100-0-sw (id: 3)\nskiffe2e-100-0-1 (id: 4)\nskiffe2e-200-1-1\n\
                    skiffe2e-100-2-sw\nother-ns\nskiffe2e-bad-0-1\nskiffe2e-300-x-1\ncni-1234\n";
        let stale = stale_networks(list, |pid| pid == 200);
        let want: BTreeMap<String, Vec<String>> = [
            (
                "skiffe2e-100-0".to_string(),
                vec![
                    "skiffe2e-100-0-sw".to_string(),
                    "skiffe2e-100-0-1".to_string(),
                ],
            ),
            (
                "skiffe2e-100-2".to_string(),
                vec!["skiffe2e-100-2-sw".to_string()],
            ),
        ]
        .into_iter()
        .collect();
        assert_eq!(stale, want);
        assert!(stale_networks(list, |_| true).is_empty());
    }

    #[test]
    fn uid_comes_from_the_effective_column() {
        let s = "Name:\tx\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(s), Some(0));
        assert_eq!(effective_uid("Name: x\n"), None);
    }

    #[test]
    fn missing_packages_are_named_once() {
        let tools = [("/a", "p1"), ("/b", "p1"), ("/c", "p2"), ("/d", "p3")];
        assert_eq!(
            missing_packages(&tools, |p| p == "/c"),
            vec!["p1".to_string(), "p3".to_string()]
        );
        assert!(missing_packages(&tools, |_| true).is_empty());
    }

    #[test]
    fn node_addresses_are_in_the_documentation_range() {
        assert_eq!(node_ip(1), "192.0.2.1");
        assert_eq!(node_ip(253), "192.0.2.253");
    }
}
