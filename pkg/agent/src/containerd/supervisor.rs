//! Runs the system containerd with skiff's per-data-dir config: writes config.toml and the
//! hosts.toml files, starts it, waits for the CRI, forwards its log to tracing and restarts it
//! with backoff when it exits.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::services::v1::version_client::VersionClient;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::config::{containerd_config, detect_systemd_cgroup, ConfigInputs};
use super::registries::{hosts_toml, Registries};
use super::{io_err, write_atomic, ContainerdOptions, Paths};
use crate::cri::Cri;
use crate::Error;

const INSTALL_HINT: &str = "apt-get install containerd runc containernetworking-plugins";
/// How long containerd may take to answer CRI calls after it starts.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long containerd gets to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A run this long resets the backoff.
const HEALTHY_RUN: Duration = Duration::from_secs(60);
/// Log lines kept for error messages.
const TAIL: usize = 15;

type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running containerd; [`Supervisor::shutdown`] (or dropping it) stops it.
#[derive(Debug)]
pub struct Supervisor {
    socket: PathBuf,
    version: String,
    /// The running containerd's pid (0 while it is down).
    pid: Arc<AtomicU32>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// containerd's gRPC socket (for [`Cri::connect`]).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// containerd's version, e.g. `1.6.20~ds1` (`containerd://<version>` in node status).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The pid of the containerd process now running, if one is.
    pub fn pid(&self) -> Option<u32> {
        Some(self.pid.load(Ordering::Relaxed)).filter(|p| *p != 0)
    }

    /// Stops containerd (SIGTERM, then SIGKILL after 10 s) and waits for it. Running
    /// containers keep running under their shims, as with any containerd restart.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // dropping the sender tells the task to stop; if the runtime goes away first, the
        // child is killed when the task is dropped (kill_on_drop)
        self.stop.take();
    }
}

/// Writes config + hosts.toml files, starts containerd, waits until its CRI answers and keeps
/// supervising it.
pub async fn start(opts: &ContainerdOptions) -> Result<Supervisor, Error> {
    let paths = Paths::new(&opts.data_dir);
    paths.check_socket_lengths()?;
    let binary = find_binary(opts.binary.as_deref())?;
    if find_on_path("runc").is_none() {
        tracing::warn!("runc is not on PATH: containers cannot start; run `{INSTALL_HINT}`");
    }
    if !paths.cni_bin_dir.is_dir() {
        tracing::warn!(dir = %paths.cni_bin_dir.display(),
            "no CNI plugins: pods cannot get a network; run `{INSTALL_HINT}`");
    }
    write_config(&paths, &opts.private_registry)?;
    stop_stale(&paths).await;
    let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
    let started = std::time::Instant::now();
    let mut child = spawn(&binary, &paths, &tail)?;
    let ready = tokio::select! {
        r = Cri::connect_wait(&paths.socket, READY_TIMEOUT) => r.map_err(|e| (e, None)),
        status = child.wait() => Err((
            Error::Runtime(String::new()),
            Some(status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string())),
        )),
    };
    let cri = match ready {
        Ok(cri) => cri,
        Err((e, exited)) => {
            if exited.is_none() {
                terminate(&mut child).await;
            }
            // let the log readers drain the last lines
            tokio::time::sleep(Duration::from_millis(100)).await;
            let last = tail_text(&tail);
            return Err(Error::Runtime(match exited {
                Some(status) => format!(
                    "containerd exited at start ({status}): check {} and its log: {last}",
                    paths.config_toml.display()
                ),
                None => format!(
                    "containerd did not answer on {} within {READY_TIMEOUT:?} ({e}): its log: {last}",
                    paths.socket.display()
                ),
            }));
        }
    };
    let version = VersionClient::new(cri.channel.clone())
        .version(())
        .await
        .map(|r| r.into_inner().version)
        .map_err(|s| {
            Error::Runtime(format!(
                "containerd version: {}: check containerd's log",
                s.message()
            ))
        })?;
    tracing::info!(%version, socket = %paths.socket.display(), elapsed = ?started.elapsed(),
        "containerd is ready");
    let (stop_tx, stop_rx) = oneshot::channel();
    let pid = Arc::new(AtomicU32::new(child.id().unwrap_or(0)));
    let task = tokio::spawn(supervise(
        child,
        binary,
        paths.clone(),
        stop_rx,
        tail,
        pid.clone(),
    ));
    Ok(Supervisor {
        socket: paths.socket,
        version,
        pid,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

/// Whether a process's argv is a containerd started with `config` (by an earlier agent).
fn is_our_containerd(argv: &[String], config: &Path) -> bool {
    let is_containerd = argv
        .first()
        .map(|a| Path::new(a).file_name().is_some_and(|n| n == "containerd"))
        .unwrap_or(false);
    let config = config.to_string_lossy();
    is_containerd
        && argv
            .windows(2)
            .any(|w| (w[0] == "--config" || w[0] == "-c") && w[1] == config.as_ref())
}

/// A containerd left running with this data dir's config (an agent that was killed) holds
/// the metadata lock: stop it so ours can start. Its containers keep running under their shims.
async fn stop_stale(paths: &Paths) {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    let me = std::process::id();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if !is_our_containerd(&argv, &paths.config_toml) {
            continue;
        }
        tracing::warn!(
            pid,
            "a containerd from an earlier run still uses this data dir: stopping it"
        );
        for signal in ["-TERM", "-KILL"] {
            let _ = Command::new("kill")
                .arg(signal)
                .arg(pid.to_string())
                .status()
                .await;
            let gone = async {
                // a zombie (not reaped by its parent) no longer holds any lock
                while std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|st| !st.contains(") Z "))
                    .unwrap_or(false)
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            if tokio::time::timeout(STOP_GRACE, gone).await.is_ok() {
                break;
            }
        }
    }
}

/// Creates the directories and writes config.toml (or copies config.toml.tmpl) and a fresh
/// certs.d from `registries.yaml`.
fn write_config(paths: &Paths, registries_yaml: &Path) -> Result<(), Error> {
    for dir in [
        &paths.config_dir,
        &paths.root,
        &paths.state,
        &paths.cni_conf_dir,
        &paths.cni_state_dir,
        &paths.images_dir,
    ] {
        std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    }
    let yaml = match std::fs::read_to_string(registries_yaml) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_err(format!("read {}", registries_yaml.display()))(e)),
    };
    let hosts = hosts_toml(&yaml)?;
    let registries = Registries::parse(&yaml)?;
    // certs.d is generated: start from scratch so removed registries disappear
    match std::fs::remove_dir_all(&paths.certs_d) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("remove {}", paths.certs_d.display()))(e)),
    }
    for (dir, text) in &hosts {
        write_atomic(&paths.certs_d.join(dir).join("hosts.toml"), text.as_bytes())?;
    }
    std::fs::create_dir_all(&paths.certs_d)
        .map_err(io_err(format!("create {}", paths.certs_d.display())))?;
    let text = config_text(paths, registries)?;
    write_atomic(&paths.config_toml, text.as_bytes())
}

/// The template's text when `config.toml.tmpl` exists, else the generated config.
fn config_text(paths: &Paths, registries: Registries) -> Result<String, Error> {
    match std::fs::read_to_string(&paths.config_tmpl) {
        Ok(t) if t.contains("{{") => Err(Error::Config(format!(
            "{} uses template directives, which skiff does not expand: write the final \
             containerd config in it",
            paths.config_tmpl.display()
        ))),
        Ok(t) => {
            tracing::info!(template = %paths.config_tmpl.display(), "using the containerd config template");
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(containerd_config(
            paths,
            &ConfigInputs {
                systemd_cgroup: detect_systemd_cgroup(),
                registries,
            },
        )),
        Err(e) => Err(io_err(format!("read {}", paths.config_tmpl.display()))(e)),
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn find_binary(configured: Option<&Path>) -> Result<PathBuf, Error> {
    let found = match configured {
        Some(p) if p.components().count() > 1 => p.is_file().then(|| p.to_path_buf()),
        Some(p) => find_on_path(&p.to_string_lossy()),
        None => find_on_path("containerd"),
    };
    found.ok_or_else(|| {
        Error::Runtime(format!(
            "containerd{} is not installed: run `{INSTALL_HINT}`",
            configured
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default()
        ))
    })
}

fn spawn(binary: &Path, paths: &Paths, tail: &Tail) -> Result<Child, Error> {
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(&paths.config_toml)
        .arg("--address")
        .arg(&paths.socket)
        .arg("--root")
        .arg(&paths.root)
        .arg("--state")
        .arg(&paths.state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot run {}: {e}: run `{INSTALL_HINT}`",
                binary.display()
            ))
        })?;
    tracing::info!(pid = child.id(), config = %paths.config_toml.display(), "started containerd");
    if let Some(out) = child.stdout.take() {
        tokio::spawn(pump(BufReader::new(out), tail.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(pump(BufReader::new(err), tail.clone()));
    }
    Ok(child)
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(r: BufReader<R>, tail: Tail) {
    let mut lines = r.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (level, msg) = parse_log_line(&line);
        match level {
            Level::Error => tracing::error!(target: "containerd", "{msg}"),
            Level::Warn => tracing::warn!(target: "containerd", "{msg}"),
            Level::Info => tracing::debug!(target: "containerd", "{msg}"),
            Level::Debug => tracing::trace!(target: "containerd", "{msg}"),
        }
        if let Ok(mut t) = tail.lock() {
            if t.len() == TAIL {
                t.pop_front();
            }
            t.push_back(msg);
        }
    }
}

fn tail_text(tail: &Tail) -> String {
    tail.lock()
        .map(|t| t.iter().cloned().collect::<Vec<_>>().join(" | "))
        .unwrap_or_default()
}

/// containerd's log levels as skiff forwards them (info goes to debug: containerd logs
/// every CRI call at info).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

/// Splits a logrus text line (`time="…" level=info msg="…" k=v`) into its level and the
/// message followed by the other fields, without the time.
fn parse_log_line(line: &str) -> (Level, String) {
    let mut level = Level::Info;
    let mut msg = String::new();
    let mut rest = Vec::new();
    let mut s = line.trim();
    let mut parsed_any = false;
    while !s.is_empty() {
        let Some(eq) = s.find('=') else { break };
        let key = &s[..eq];
        if key.is_empty() || key.contains(' ') {
            break;
        }
        let after = &s[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            // quoted with backslash escapes
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(match n {
                                'n' => '\n',
                                't' => '\t',
                                other => other,
                            });
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end.min(q.len())..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        parsed_any = true;
        match key {
            "time" => {}
            "level" => {
                level = match value.as_str() {
                    "error" | "fatal" | "panic" => Level::Error,
                    "warning" | "warn" => Level::Warn,
                    "debug" | "trace" => Level::Debug,
                    _ => Level::Info,
                }
            }
            "msg" => msg = value,
            _ => rest.push(format!("{key}={value}")),
        }
        s = next.trim_start();
    }
    if !parsed_any {
        return (Level::Info, line.to_string());
    }
    if !rest.is_empty() {
        if !msg.is_empty() {
            msg.push(' ');
        }
        msg.push_str(&rest.join(" "));
    }
    (level, msg)
}

/// SIGTERM (via `kill`, no unsafe here), then SIGKILL after the grace period.
async fn terminate(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
        if let Ok(Ok(status)) = tokio::time::timeout(STOP_GRACE, child.wait()).await {
            tracing::info!(%status, "containerd stopped");
            return;
        }
        tracing::warn!("containerd ignored SIGTERM for {STOP_GRACE:?}: killing it");
    }
    let _ = child.kill().await;
}

/// The delay before restart number `n` after a run of `ran`.
fn next_backoff(current: Duration, ran: Duration) -> Duration {
    if ran >= HEALTHY_RUN {
        BACKOFF_MIN
    } else {
        (current * 2).clamp(BACKOFF_MIN, BACKOFF_MAX)
    }
}

async fn supervise(
    child: Child,
    binary: PathBuf,
    paths: Paths,
    mut stop: oneshot::Receiver<()>,
    tail: Tail,
    pid: Arc<AtomicU32>,
) {
    let mut child = Some(child);
    let mut since = tokio::time::Instant::now();
    let mut backoff = BACKOFF_MIN / 2;
    loop {
        if let Some(c) = child.as_mut() {
            tokio::select! {
                _ = &mut stop => {
                    terminate(c).await;
                    pid.store(0, Ordering::Relaxed);
                    return;
                }
                status = c.wait() => {
                    pid.store(0, Ordering::Relaxed);
                    let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                    backoff = next_backoff(backoff, since.elapsed());
                    tracing::error!(%status, restart_in = ?backoff, last_log = %tail_text(&tail),
                        "containerd exited: restarting it");
                    child = None;
                }
            }
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        since = tokio::time::Instant::now();
        match spawn(&binary, &paths, &tail) {
            Ok(c) => {
                pid.store(c.id().unwrap_or(0), Ordering::Relaxed);
                child = Some(c);
            }
            Err(e) => {
                backoff = next_backoff(backoff, Duration::ZERO);
                tracing::error!(error = %e, restart_in = ?backoff, "cannot restart containerd");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logrus_lines_become_level_and_message() {
        let (l, m) = parse_log_line(
            r#"time="2026-12-02T17:40:00.1Z" level=info msg="starting containerd" revision= version="1.6.20~ds1""#,
        );
        assert_eq!(l, Level::Info);
        assert_eq!(m, "starting containerd revision= version=1.6.20~ds1");
        let (l, m) = parse_log_line(
            r#"time="x" level=error msg="failed to load plugin \"io.containerd.snapshotter.v1.btrfs\"" error="path /x must be a btrfs filesystem""#,
        );
        assert_eq!(l, Level::Error);
        assert_eq!(
            m,
            "failed to load plugin \"io.containerd.snapshotter.v1.btrfs\" error=path /x must be a btrfs filesystem"
        );
        assert_eq!(parse_log_line("level=warning msg=hi").0, Level::Warn);
        assert_eq!(parse_log_line("level=debug msg=hi").0, Level::Debug);
        assert_eq!(parse_log_line("level=fatal msg=x").0, Level::Error);
        let (l, m) = parse_log_line("panic: runtime error");
        assert_eq!((l, m.as_str()), (Level::Info, "panic: runtime error"));
        let (_, m) = parse_log_line(r#"level=info msg="unterminated"#);
        assert_eq!(m, "unterminated");
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets_after_a_healthy_run() {
        let short = Duration::from_secs(1);
        let mut b = BACKOFF_MIN / 2;
        let mut seen = Vec::new();
        for _ in 0..7 {
            b = next_backoff(b, short);
            seen.push(b.as_secs());
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(next_backoff(b, HEALTHY_RUN), BACKOFF_MIN);
    }

    #[test]
    fn stale_containerds_are_recognised_by_their_config() {
        let cfg = Path::new("/d/agent/etc/containerd/config.toml");
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_our_containerd(
            &argv(&[
                "containerd",
                "--config",
                "/d/agent/etc/containerd/config.toml",
                "--root",
                "/x"
            ]),
            cfg
        ));
        assert!(is_our_containerd(
            &argv(&[
                "/usr/bin/containerd",
                "-c",
                "/d/agent/etc/containerd/config.toml"
            ]),
            cfg
        ));
        assert!(!is_our_containerd(
            &argv(&["containerd", "--config", "/other/config.toml"]),
            cfg
        ));
        assert!(!is_our_containerd(
            &argv(&[
                "containerd-shim-runc-v2",
                "--config",
                "/d/agent/etc/containerd/config.toml"
            ]),
            cfg
        ));
        assert!(!is_our_containerd(&argv(&["containerd"]), cfg));
        assert!(!is_our_containerd(&[], cfg));
    }

    #[test]
    fn missing_containerd_names_the_packages() {
        let e = find_binary(Some(Path::new("/nonexistent/containerd"))).unwrap_err();
        assert!(
            e.to_string()
                .contains("apt-get install containerd runc containernetworking-plugins"),
            "{e}"
        );
        let e = find_binary(Some(Path::new("no-such-containerd-binary"))).unwrap_err();
        assert!(e.to_string().contains("apt-get install"), "{e}");
    }

    #[test]
    fn config_and_hosts_files_are_written_and_templates_win() {
        let t = tempfile::tempdir().unwrap();
        let paths = Paths::new(t.path());
        let reg = t.path().join("registries.yaml");
        std::fs::write(
            &reg,
            "mirrors: {docker.io: {endpoint: [\"http://192.0.2.1:5000\"]}}",
        )
        .unwrap();
        write_config(&paths, &reg).unwrap();
        let hosts = std::fs::read_to_string(paths.certs_d.join("docker.io/hosts.toml")).unwrap();
        assert!(
            hosts.contains("[host.\"http://192.0.2.1:5000/v2\"]"),
            "{hosts}"
        );
        let cfg = std::fs::read_to_string(&paths.config_toml).unwrap();
        assert!(cfg.contains("restrict_oom_score_adj = true"));

        // a registry removed from the file disappears from certs.d
        std::fs::remove_file(&reg).unwrap();
        write_config(&paths, &reg).unwrap();
        assert!(!paths.certs_d.join("docker.io").exists());
        assert!(paths.certs_d.is_dir());

        std::fs::write(&paths.config_tmpl, "version = 2\n# mine\n").unwrap();
        write_config(&paths, &reg).unwrap();
        assert_eq!(
            std::fs::read_to_string(&paths.config_toml).unwrap(),
            "version = 2\n# mine\n"
        );
        std::fs::write(&paths.config_tmpl, "{{ template \"base\" . }}\n").unwrap();
        let e = write_config(&paths, &reg).unwrap_err();
        assert!(e.to_string().contains("does not expand"), "{e}");
    }
}
