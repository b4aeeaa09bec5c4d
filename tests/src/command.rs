//! Running processes: the binaries under test, one command run to completion with a timeout,
//! and what it printed.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one test binary may run (`SKIFF_E2E_BINARY_TIMEOUT` seconds overrides) before
/// the watchdog ends it, so a stuck test fails the run instead of eating CI's whole budget.
pub const BINARY_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Starts, once per test binary, a thread that exits the process with code 101 (a test
/// failure) after [`BINARY_TIMEOUT`]. The test networks' reapers clean up on that exit.
pub fn arm_watchdog() {
    static ARMED: std::sync::Once = std::sync::Once::new();
    ARMED.call_once(|| {
        let limit = std::env::var("SKIFF_E2E_BINARY_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(BINARY_TIMEOUT);
        thread::spawn(move || {
            thread::sleep(limit);
            eprintln!(
                "skiff-e2e watchdog: this test binary ran longer than {limit:?}; a test is stuck. \
                 Exiting so the run fails instead of hanging."
            );
            std::process::exit(101);
        });
    });
}

/// How long one kubectl or curl invocation may run before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    pub args: Vec<String>,
    pub stdout: String,
    pub stderr: String,
    /// The exit code, or -1 if the process was killed by a signal.
    pub code: i32,
    pub elapsed: Duration,
}

impl Output {
    /// Panics with the whole output unless the command exited 0.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(self.code, 0, "command failed:\n{self}");
        self
    }

    /// Panics with the whole output unless the command exited 0 with an empty stderr.
    #[track_caller]
    pub fn clean(&self) -> &Self {
        assert!(
            self.code == 0 && self.stderr.is_empty(),
            "command did not exit 0 with an empty stderr:\n{self}"
        );
        self
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.args.join(" "))?;
        writeln!(f, "exit code: {} (after {:?})", self.code, self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

/// The skiff binary the tests run.
pub fn skiff_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    target_dir().join("debug/skiff")
}

/// The benchmark binary (`SKIFF_BENCH_BIN`, else `skiff-bench` beside the debug `skiff`;
/// `cargo build -p skiff-bench` builds it).
pub fn bench_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BENCH_BIN") {
        return PathBuf::from(p);
    }
    target_dir().join("debug/skiff-bench")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The kubectl the tests drive (`KUBECTL`, else `kubectl` on PATH).
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

/// Runs a command to completion with a timeout, feeding `stdin` if given.
pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>, timeout: Duration) -> Output {
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    // Its own process group, so a timeout kills whatever it started too (a grandchild that
    // kept the pipes open would block the readers below forever).
    .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", args.join(" ")));
    if let Some(data) = stdin {
        let mut w = child.stdin.take().expect("piped stdin");
        let data = data.to_vec();
        thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let out_t = reader(move |b| out.read_to_end(b));
    let err_t = reader(move |b| err.read_to_end(b));
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for child") {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            timed_out = true;
            break child.wait().expect("wait for killed child");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        args,
        stdout: String::from_utf8_lossy(&collect(&out_t)).into_owned(),
        stderr: String::from_utf8_lossy(&collect(&err_t)).into_owned(),
        code: status.code().unwrap_or(-1),
        elapsed: start.elapsed(),
    };
    assert!(!timed_out, "command timed out after {timeout:?}:\n{output}");
    output
}

/// Reads a pipe to its end on a thread; the bytes arrive on the returned channel.
fn reader(
    mut read: impl FnMut(&mut Vec<u8>) -> std::io::Result<usize> + Send + 'static,
) -> std::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let mut b = Vec::new();
        let _ = read(&mut b);
        let _ = tx.send(b);
    });
    rx
}

/// What a [`reader`] read, waiting at most 10 s after the process ended (a process that
/// escaped the group kill may still hold the pipe: its output is then cut, not waited for).
fn collect(rx: &std::sync::mpsc::Receiver<Vec<u8>>) -> Vec<u8> {
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default()
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
