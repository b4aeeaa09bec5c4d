//! End-to-end test harness: boots the built `skiff server` in a temp dir and drives the real kubectl.
//!
//! The harness builds nothing: it runs the binary named by `SKIFF_BIN`, else
//! `$CARGO_TARGET_DIR/debug/skiff`, else `<workspace>/target/debug/skiff` (build it first with
//! `cargo build -p skiff`). Every server runs under a small bash wrapper that kills it and removes
//! its temp dir as soon as the test process goes away, so a server held in a `static` (one shared
//! server per test file) does not outlive the tests even though statics are never dropped.

pub mod images;
pub mod netns;

use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long one kubectl or curl invocation may run before the harness kills it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the server may take from spawn to `/readyz` answering 200 with the kubeconfig written.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

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

/// An HTTP answer from the server (via curl).
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl HttpResponse {
    /// Parses the body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| {
            panic!("HTTP {} body is not JSON ({e}): {}", self.status, self.body)
        })
    }
}

/// Who an HTTP request is sent as.
#[derive(Debug, Clone)]
pub enum Auth {
    /// The admin client certificate from the kubeconfig.
    Admin,
    /// No credentials at all.
    Anonymous,
    /// A bearer token.
    Token(String),
}

/// The skiff binary the tests run.
pub fn skiff_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SKIFF_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/skiff")
}

/// The kubectl the tests drive (`KUBECTL`, else `kubectl` on PATH).
pub fn kubectl_bin() -> String {
    std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".to_string())
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
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
    .stderr(Stdio::piped());
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
    let out_t = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = out.read_to_end(&mut b);
        b
    });
    let err_t = thread::spawn(move || {
        let mut b = Vec::new();
        let _ = err.read_to_end(&mut b);
        b
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for child") {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            timed_out = true;
            break child.wait().expect("wait for killed child");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let output = Output {
        args,
        stdout: String::from_utf8_lossy(&out_t.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned(),
        code: status.code().unwrap_or(-1),
        elapsed: start.elapsed(),
    };
    assert!(!timed_out, "command timed out after {timeout:?}:\n{output}");
    output
}

/// Polls `f` every 100 ms until it returns `Some`, panicking with `what` after `timeout`.
#[track_caller]
pub fn wait_for<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Where the admin client credentials extracted from the kubeconfig live.
#[derive(Debug)]
struct Creds {
    server: String,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// A running `skiff server` on a free loopback port, with its own data dir, kubeconfig and
/// kubectl cache dir. Dropping it stops the server and removes the dir.
pub struct Cluster {
    wrapper: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    dir: PathBuf,
    pub port: u16,
    creds: Creds,
    /// Started with `--disable-controller-manager`: nobody creates `default` service accounts.
    no_controllers: bool,
}

impl Cluster {
    /// Boots a server with the default flags and waits for it to be ready; panics with the
    /// server log if it is not ready within [`READY_TIMEOUT`].
    pub fn start() -> Cluster {
        Self::try_start(&[]).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Boots a server with extra `skiff server` flags.
    pub fn try_start(extra: &[&str]) -> Result<Cluster, String> {
        let bin = skiff_bin();
        if !bin.is_file() {
            return Err(format!(
                "skiff binary {} not found: build it first with `cargo build -p skiff` \
                 (or point SKIFF_BIN at it)",
                bin.display()
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("skiff-e2e-")
            .tempdir()
            .map_err(|e| format!("cannot create a temp dir: {e}"))?
            .keep();
        for sub in ["data", "cache", "home"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
        }
        let port = free_port();
        let kubeconfig = dir.join("kubeconfig");
        let mut args: Vec<String> = vec![
            "server".into(),
            "--config".into(),
            dir.join("no-config.yaml").display().to_string(),
            "--data-dir".into(),
            dir.join("data").display().to_string(),
            "--https-listen-port".into(),
            port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
            "--write-kubeconfig".into(),
            kubeconfig.display().to_string(),
            "--disable-agent".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        // The wrapper: run the server in the background, wait for our stdin to close (test
        // process gone or Cluster dropped), then stop the server and remove the dir.
        let script = r#"
bin=$1; dir=$2; shift 2
"$bin" "$@" </dev/null >"$dir/server.stdout" 2>"$dir/server.log" &
pid=$!
echo $pid >"$dir/server.pid"
cat >/dev/null
kill -TERM $pid 2>/dev/null
for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
[ -n "$SKIFF_E2E_KEEP" ] || rm -rf "$dir"
"#;
        let mut wrapper = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("skiff-e2e")
            .arg(&bin)
            .arg(&dir)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run bash to start the server: {e}"))?;
        let stdin = wrapper.stdin.take();
        let start = Instant::now();
        let url = format!("https://127.0.0.1:{port}/readyz");
        let log = |dir: &Path| std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        loop {
            if start.elapsed() > READY_TIMEOUT {
                let l = log(&dir);
                drop(stdin);
                let _ = wrapper.wait();
                return Err(format!(
                    "skiff server was not ready within {READY_TIMEOUT:?} (readyz 200 and kubeconfig written); \
                     args: {args:?}\n--- server log ---\n{l}"
                ));
            }
            if let Some(pid) = std::fs::read_to_string(dir.join("server.pid"))
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
            {
                let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map(|s| {
                        !s.rsplit(')')
                            .next()
                            .unwrap_or("")
                            .trim_start()
                            .starts_with('Z')
                    })
                    .unwrap_or(false);
                if !alive {
                    let l = log(&dir);
                    drop(stdin);
                    let _ = wrapper.wait();
                    return Err(format!(
                        "skiff server exited during start-up; args: {args:?}\n--- server log ---\n{l}"
                    ));
                }
            }
            if kubeconfig.is_file() {
                let mut c = Command::new("curl");
                c.args([
                    "-sk",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "2",
                ])
                .arg(&url);
                let out = run_command(c, None, COMMAND_TIMEOUT);
                if out.stdout.trim() == "200" {
                    break;
                }
            }
            thread::sleep(Duration::from_millis(50));
        }
        let creds = match extract_creds(&dir, &kubeconfig) {
            Ok(c) => c,
            Err(e) => {
                drop(stdin);
                let _ = wrapper.wait();
                return Err(e);
            }
        };
        let cluster = Cluster {
            wrapper: Mutex::new(wrapper),
            stdin: Mutex::new(stdin),
            dir,
            port,
            creds,
            no_controllers: extra.contains(&"--disable-controller-manager"),
        };
        cluster.default_service_account("default")?;
        Ok(cluster)
    }

    /// The temp dir holding data, kubeconfig, cache and server log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's data dir (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The admin kubeconfig the server wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// `https://127.0.0.1:PORT` as written in the kubeconfig.
    pub fn server_url(&self) -> &str {
        &self.creds.server
    }

    /// The CA certificate (PEM file) that signs the serving certificate.
    pub fn ca_file(&self) -> &Path {
        &self.creds.ca
    }

    /// The server's log so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// Writes `text` to a file in the temp dir and returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("write test file");
        p
    }

    /// Writes a kubeconfig that authenticates with `token` only (no client certificate).
    pub fn token_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {}\ncontexts:\n- name: c\n  context:\n    cluster: skiff\n    user: u\ncurrent-context: c\n",
            self.creds.server,
            self.creds.ca.display(),
            token
        );
        self.write_file(name, &text)
    }

    fn kubectl_command(&self, kubeconfig: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(kubectl_bin());
        cmd.args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", self.dir.join("cache"))
            .env("HOME", self.dir.join("home"))
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR")
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs kubectl with the admin kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        run_command(
            self.kubectl_command(&self.kubeconfig(), args, &[]),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// Runs kubectl with `stdin` fed to it (e.g. `apply -f -`).
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_command(
            self.kubectl_command(&self.kubeconfig(), args, &[]),
            Some(stdin.as_bytes()),
            COMMAND_TIMEOUT,
        )
    }

    /// Runs kubectl with extra environment variables (e.g. `KUBE_EDITOR`).
    pub fn kubectl_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        run_command(
            self.kubectl_command(&self.kubeconfig(), args, env),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// Runs kubectl with another kubeconfig (e.g. one from [`Cluster::token_kubeconfig`]).
    pub fn kubectl_with_kubeconfig(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        run_command(
            self.kubectl_command(kubeconfig, args, &[]),
            None,
            COMMAND_TIMEOUT,
        )
    }

    /// Starts a long-running kubectl (e.g. `get pods -w`) whose stdout lines can be read live.
    pub fn spawn_kubectl(&self, args: &[&str]) -> Background {
        let mut cmd = self.kubectl_command(&self.kubeconfig(), args, &[]);
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        let out = child.stdout.take().expect("piped stdout");
        let mut err = child.stderr.take().expect("piped stderr");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let s2 = stderr.clone();
        thread::spawn(move || {
            let mut b = String::new();
            let _ = err.read_to_string(&mut b);
            if let Ok(mut s) = s2.lock() {
                s.push_str(&b);
            }
        });
        Background {
            child,
            lines: rx,
            stderr,
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// Creates a namespace for one test (JSON through `create -f -`, no client validation, so
    /// that a broken typed-create or OpenAPI path does not take every test down with it).
    #[track_caller]
    pub fn namespace(&self, name: &str) -> String {
        let body =
            format!(r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"{name}"}}}}"#);
        let out = self.kubectl_stdin(&["create", "--validate=false", "-f", "-"], &body);
        assert!(
            out.code == 0,
            "cannot create namespace {name}:\n{out}\n--- server log tail ---\n{}",
            tail(&self.server_log(), 40)
        );
        if let Err(e) = self.default_service_account(name) {
            panic!("{e}");
        }
        name.to_string()
    }

    /// Pods need their service account (ServiceAccount admission): like upstream's e2e
    /// framework, wait for the controller to create `default` in `ns`, or create it when the
    /// cluster runs without controllers.
    fn default_service_account(&self, ns: &str) -> Result<(), String> {
        if self.no_controllers {
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ServiceAccount","metadata":{{"name":"default","namespace":"{ns}"}}}}"#
            );
            let out = self.kubectl_stdin(&["create", "--validate=false", "-f", "-"], &body);
            if out.code != 0 && !out.stderr.contains("AlreadyExists") {
                return Err(format!(
                    "cannot create the default service account in {ns}:\n{out}"
                ));
            }
            return Ok(());
        }
        let start = Instant::now();
        loop {
            let out = self.kubectl(&["get", "serviceaccount", "default", "-n", ns, "-o", "name"]);
            if out.code == 0 {
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                return Err(format!(
                    "no default service account in {ns} after {READY_TIMEOUT:?}:\n{out}"
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends one HTTP request with curl. `content_type` None sends no Content-Type header.
    pub fn http(
        &self,
        auth: Auth,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> HttpResponse {
        let n = REQ.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let body_out = self.dir.join(format!("curl-{n}.out"));
        let mut c = Command::new("curl");
        // HTTP/1.1: curl aborts an HTTP/2 upload the server answers early (413) without
        // reporting the answer, which kubectl (Go) does see.
        c.args(["-sS", "--http1.1", "--max-time", "30", "-X", method])
            .arg("--cacert")
            .arg(&self.creds.ca)
            .arg("-o")
            .arg(&body_out)
            .args(["-w", "%{http_code} %{content_type}"]);
        match &auth {
            Auth::Admin => {
                c.arg("--cert").arg(&self.creds.cert);
                c.arg("--key").arg(&self.creds.key);
            }
            Auth::Anonymous => {}
            Auth::Token(t) => {
                c.arg("-H").arg(format!("Authorization: Bearer {t}"));
            }
        }
        // curl adds its own Content-Type for --data-binary unless told otherwise.
        match content_type {
            Some(ct) => {
                c.arg("-H").arg(format!("Content-Type: {ct}"));
            }
            None => {
                c.arg("-H").arg("Content-Type:");
            }
        }
        c.args(["-H", "Accept: application/json"]);
        if let Some(b) = body {
            let f = self.dir.join(format!("curl-{n}.in"));
            std::fs::write(&f, b).expect("write request body");
            c.arg("--data-binary").arg(format!("@{}", f.display()));
        }
        c.arg(format!("{}{}", self.creds.server, path));
        let out = run_command(c, None, COMMAND_TIMEOUT);
        assert_eq!(out.code, 0, "curl failed:\n{out}");
        let (status, ct) = out.stdout.split_once(' ').unwrap_or((&out.stdout, ""));
        let body = std::fs::read(&body_out).unwrap_or_default();
        HttpResponse {
            status: status.trim().parse().unwrap_or(0),
            content_type: ct.trim().to_string(),
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }
}

static REQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(mut s) = self.stdin.lock() {
            s.take();
        }
        if let Ok(mut w) = self.wrapper.lock() {
            let _ = w.wait();
        }
    }
}

fn extract_creds(dir: &Path, kubeconfig: &Path) -> Result<Creds, String> {
    let mut cmd = Command::new(kubectl_bin());
    cmd.args(["config", "view", "--raw", "-o", "json"])
        .env("KUBECONFIG", kubeconfig)
        .env("HOME", dir.join("home"));
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    if out.code != 0 {
        return Err(format!("kubectl cannot read the kubeconfig:\n{out}"));
    }
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .map_err(|e| format!("kubectl config view is not JSON: {e}"))?;
    let cluster = &v["clusters"][0]["cluster"];
    let user = &v["users"][0]["user"];
    let server = cluster["server"]
        .as_str()
        .ok_or("kubeconfig has no clusters[0].cluster.server")?
        .trim_end_matches('/')
        .to_string();
    let material = |data_key: &str,
                    file_key: &str,
                    obj: &serde_json::Value,
                    name: &str|
     -> Result<PathBuf, String> {
        if let Some(d) = obj[data_key].as_str() {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|e| format!("kubeconfig {data_key} is not base64: {e}"))?;
            let p = dir.join(name);
            std::fs::write(&p, bytes).map_err(|e| e.to_string())?;
            Ok(p)
        } else if let Some(f) = obj[file_key].as_str() {
            Ok(PathBuf::from(f))
        } else {
            Err(format!("kubeconfig has neither {data_key} nor {file_key}"))
        }
    };
    Ok(Creds {
        server,
        ca: material(
            "certificate-authority-data",
            "certificate-authority",
            cluster,
            "ca.crt",
        )?,
        cert: material(
            "client-certificate-data",
            "client-certificate",
            user,
            "admin.crt",
        )?,
        key: material("client-key-data", "client-key", user, "admin.key")?,
    })
}

/// The last `n` lines of `s`.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A kubectl left running in the background (e.g. a watch); killed on drop.
pub struct Background {
    child: Child,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
    args: Vec<String>,
}

impl Background {
    /// The next stdout line, or None if none arrived within `timeout` or stdout closed.
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        match self.lines.recv_timeout(timeout) {
            Ok(l) => Some(l),
            Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Whether the process has exited, and with which code.
    pub fn exit_code(&mut self) -> Option<i32> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// What it printed on stderr so far (complete only after it exited).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The command line, for messages.
    pub fn command_line(&self) -> String {
        self.args.join(" ")
    }

    /// Kills the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether `s` is an apimachinery human duration such as `0s`, `45s`, `5m30s`, `95m`, `5h10m`,
/// `3d4h`, `2y` or `689d`.
pub fn is_age(s: &str) -> bool {
    let mut pairs = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        let unit = rest[digits..].chars().next();
        match unit {
            Some('s' | 'm' | 'h' | 'd' | 'y') => {}
            _ => return false,
        }
        rest = &rest[digits + 1..];
        pairs += 1;
    }
    (1..=2).contains(&pairs)
}

/// Header names of columns whose cells are durations that change between runs.
const AGE_COLUMNS: &[&str] = &["AGE", "LAST SEEN", "DURATION", "LAST SCHEDULE"];

/// Splits one kubectl table into cells by the header's column starts (columns are separated by
/// at least 3 spaces in kubectl's tabwriter; header names hold at most single spaces).
pub fn parse_table(block: &str) -> Vec<Vec<String>> {
    let mut lines = block.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let bytes = header.as_bytes();
    let mut starts = vec![0usize];
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b' ' {
            let run = bytes[i..].iter().take_while(|&&b| b == b' ').count();
            if run >= 2 && i + run < bytes.len() {
                starts.push(i + run);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    let split = |line: &str| -> Vec<String> {
        let chars: Vec<char> = line.chars().collect();
        let mut cells = Vec::new();
        for (k, &s) in starts.iter().enumerate() {
            let e = starts
                .get(k + 1)
                .copied()
                .unwrap_or(usize::MAX)
                .min(chars.len());
            let s = s.min(chars.len());
            cells.push(chars[s..e].iter().collect::<String>().trim().to_string());
        }
        cells
    };
    std::iter::once(header).chain(lines).map(split).collect()
}

/// Renders rows the way kubectl's tabwriter does (min width 6, padding 3, last column unpadded).
pub fn render_table(rows: &[Vec<String>]) -> String {
    let ncols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                let w = (widths[i] + 3).max(6);
                line.push_str(c);
                line.push_str(&" ".repeat(w - c.chars().count()));
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Builds a table from string slices, for expected outputs with run-time values.
pub fn table(rows: &[&[&str]]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    render_table(&rows)
}

/// Normalises kubectl table output: each blank-line separated block is a table whose AGE-like
/// cells (AGE, LAST SEEN, DURATION, LAST SCHEDULE holding a duration) become `<age>`; the block is
/// then re-rendered with kubectl's column rules, so everything else compares exactly.
pub fn normalize_tables(out: &str) -> String {
    fn flush(block: &mut Vec<String>, result: &mut String) {
        if block.is_empty() {
            return;
        }
        let mut rows = parse_table(&block.join("\n"));
        let age_cols: Vec<usize> = rows[0]
            .iter()
            .enumerate()
            .filter(|(_, h)| AGE_COLUMNS.contains(&h.as_str()))
            .map(|(i, _)| i)
            .collect();
        for r in rows.iter_mut().skip(1) {
            for &i in &age_cols {
                if let Some(c) = r.get_mut(i) {
                    if is_age(c) {
                        *c = "<age>".to_string();
                    }
                }
            }
        }
        result.push_str(&render_table(&rows));
        block.clear();
    }
    let mut result = String::new();
    let mut block: Vec<String> = Vec::new();
    for line in out.split_inclusive('\n') {
        if line.trim().is_empty() {
            flush(&mut block, &mut result);
            result.push_str(line);
        } else {
            block.push(line.trim_end_matches('\n').to_string());
        }
    }
    flush(&mut block, &mut result);
    if !out.ends_with('\n') && result.ends_with('\n') {
        result.pop();
    }
    result
}

/// Splits a watch row into whitespace-separated cells with durations replaced by `<age>`
/// (kubectl's watch output keeps growing column widths, so rows are compared cell by cell).
pub fn watch_cells(line: &str) -> Vec<String> {
    line.split_whitespace()
        .map(|c| {
            if is_age(c) {
                "<age>".to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Replaces the values of volatile metadata fields (uid, resourceVersion, creationTimestamp,
/// managedFields times) with placeholders after checking their format, so whole objects compare.
pub fn scrub(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, val) in m.iter_mut() {
                match (k.as_str(), &*val) {
                    ("uid", Value::String(s)) => {
                        assert!(
                            s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4,
                            "uid {s:?} is not a UUID"
                        );
                        *val = Value::String("<uid>".into());
                    }
                    ("resourceVersion", Value::String(s)) => {
                        assert!(
                            !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()),
                            "resourceVersion {s:?} is not a decimal number"
                        );
                        *val = Value::String("<rv>".into());
                    }
                    ("creationTimestamp" | "deletionTimestamp" | "time", Value::String(s)) => {
                        assert!(is_rfc3339(s), "{k} {s:?} is not an RFC 3339 UTC time");
                        *val = Value::String("<time>".into());
                    }
                    _ => scrub(val),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(scrub),
        _ => {}
    }
}

/// Whether `s` looks like `2024-01-02T03:04:05Z`.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b'Z'
        && b.iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit())
}

/// Parses `k=v` lines or a JSON object of string values into a map (for small assertions).
pub fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

impl Cluster {
    /// The node join token of this server (`skiff token -d <data dir>`).
    pub fn token(&self) -> String {
        let mut cmd = Command::new(skiff_bin());
        cmd.arg("token").arg("-d").arg(self.data_dir());
        let out = run_command(cmd, None, COMMAND_TIMEOUT);
        assert!(out.code == 0, "skiff token failed:\n{out}");
        out.stdout.trim().to_string()
    }

    /// Starts `skiff hollow --nodes n --name-prefix prefix` against this server.
    pub fn spawn_hollow(&self, n: usize, prefix: &str) -> NodeProcess {
        let args = vec![
            "hollow".to_string(),
            "--nodes".to_string(),
            n.to_string(),
            "--server".to_string(),
            self.server_url().to_string(),
            "--token".to_string(),
            self.token(),
            "--name-prefix".to_string(),
            prefix.to_string(),
        ];
        NodeProcess::spawn(self.dir(), &format!("hollow-{prefix}"), args)
    }

    /// Starts one `skiff agent --runtime sim` node named `name` with its data dir under the
    /// cluster dir (the same dir again when restarted, so the node keeps its identity).
    pub fn spawn_sim_agent(&self, name: &str) -> NodeProcess {
        let data = self.dir().join(format!("agent-{name}"));
        let _ = std::fs::create_dir_all(&data);
        let args = vec![
            "agent".to_string(),
            "--runtime".to_string(),
            "sim".to_string(),
            "--server".to_string(),
            self.server_url().to_string(),
            "--token".to_string(),
            self.token(),
            "--node-name".to_string(),
            name.to_string(),
            "--data-dir".to_string(),
            data.display().to_string(),
        ];
        NodeProcess::spawn(self.dir(), &format!("agent-{name}"), args)
    }
}

/// A `skiff agent` / `skiff hollow` process run under a bash wrapper that SIGKILLs it as soon as
/// the wrapper's stdin closes: on [`NodeProcess::kill`], on drop, or when the test process exits
/// (so nodes started for a `static` shared cluster do not outlive the tests).
pub struct NodeProcess {
    wrapper: Child,
    stdin: Option<ChildStdin>,
    log: PathBuf,
}

impl NodeProcess {
    fn spawn(dir: &Path, name: &str, args: Vec<String>) -> NodeProcess {
        let log = dir.join(format!("{name}.log"));
        let script = r#"
bin=$1; log=$2; shift 2
"$bin" "$@" </dev/null >>"$log" 2>&1 &
pid=$!
cat >/dev/null
kill -KILL $pid 2>/dev/null
wait $pid 2>/dev/null
"#;
        let mut wrapper = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("skiff-e2e-node")
            .arg(skiff_bin())
            .arg(&log)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run bash to start a skiff node process");
        let stdin = wrapper.stdin.take();
        NodeProcess {
            wrapper,
            stdin,
            log,
        }
    }

    /// What the process logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process with SIGKILL (a node dying without saying goodbye) and waits for it.
    pub fn kill(&mut self) {
        self.stdin.take();
        let _ = self.wrapper.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// kubectl `-o` argument whose output [`parse_pod_rows`] reads.
pub const POD_ROWS_JSONPATH: &str = "jsonpath={range .items[*]}{.metadata.name}|{.status.phase}|{.status.conditions[?(@.type==\"Ready\")].status}|{.spec.nodeName}|{.status.podIP}|{.spec.containers[0].image}|{.metadata.deletionTimestamp}{\"\\n\"}{end}";

/// The rows of `kubectl get pods -o` [`POD_ROWS_JSONPATH`].
pub fn parse_pod_rows(stdout: &str) -> Vec<PodRow> {
    stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            let at = |i: usize| f.get(i).copied().unwrap_or_default().to_string();
            PodRow {
                name: at(0),
                phase: at(1),
                ready: at(2),
                node: at(3),
                ip: at(4),
                image: at(5),
                deleting: !at(6).is_empty(),
            }
        })
        .collect()
}

/// One row per pod: name, phase, ready condition, node, IP, first container image,
/// deletionTimestamp (empty when not terminating).
#[derive(Debug, Clone, PartialEq)]
pub struct PodRow {
    pub name: String,
    pub phase: String,
    pub ready: String,
    pub node: String,
    pub ip: String,
    pub image: String,
    pub deleting: bool,
}

/// One row of `kubectl get pods -w`: name, READY (`1/1`) and STATUS (`Running`, `Terminating`…).
#[derive(Debug, Clone, PartialEq)]
pub struct WatchRow {
    pub name: String,
    pub ready: String,
    pub status: String,
}

impl WatchRow {
    /// Parses a watch line (None for the header or a line with fewer than 3 cells).
    pub fn parse(line: &str) -> Option<WatchRow> {
        let c = watch_cells(line);
        if c.len() < 3 || c[0] == "NAME" {
            return None;
        }
        Some(WatchRow {
            name: c[0].clone(),
            ready: c[1].clone(),
            status: c[2].clone(),
        })
    }

    /// Running with every container ready (`n/n`, n > 0).
    pub fn running_ready(&self) -> bool {
        self.status == "Running"
            && self
                .ready
                .split_once('/')
                .is_some_and(|(a, b)| a == b && a != "0")
    }
}

impl Cluster {
    /// Panics (with the server log tail) unless kubectl exited `code` with exactly this output.
    #[track_caller]
    pub fn expect(&self, out: &Output, code: i32, stdout: &str, stderr: &str) {
        if out.code != code || out.stdout != stdout || out.stderr != stderr {
            panic!(
                "unexpected kubectl result\n{out}\n--- wanted exit code {code}, stdout ---\n{stdout}\n--- wanted stderr ---\n{stderr}\n--- server log tail ---\n{}",
                tail(&self.server_log(), 30)
            );
        }
    }

    /// Panics unless kubectl exited 0 with an empty stderr and a table equal to `want` after
    /// [`normalize_tables`].
    #[track_caller]
    pub fn expect_table(&self, out: &Output, want: &str) {
        let got = normalize_tables(&out.stdout);
        if out.code != 0 || got != want || !out.stderr.is_empty() {
            panic!(
                "unexpected table\n{out}\n--- normalised ---\n{got}\n--- wanted ---\n{want}\n--- server log tail ---\n{}",
                tail(&self.server_log(), 30)
            );
        }
    }

    /// `kubectl get WHAT -n NS -o jsonpath=PATH`, which must succeed cleanly.
    #[track_caller]
    pub fn jsonpath(&self, ns: &str, what: &str, path: &str) -> String {
        let out = self.kubectl(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")]);
        out.clean();
        out.stdout
    }

    /// The pods of `ns` matching `selector` (empty: all), in name order.
    #[track_caller]
    pub fn pods(&self, ns: &str, selector: &str) -> Vec<PodRow> {
        let out = self.kubectl(&[
            "get",
            "pods",
            "-n",
            ns,
            "-l",
            selector,
            "-o",
            POD_ROWS_JSONPATH,
        ]);
        out.clean();
        parse_pod_rows(&out.stdout)
    }

    /// Waits until exactly `n` pods match, none terminating, all Running and Ready.
    #[track_caller]
    pub fn wait_running(
        &self,
        ns: &str,
        selector: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<PodRow> {
        let start = Instant::now();
        loop {
            let pods = self.pods(ns, selector);
            if pods.len() == n
                && pods
                    .iter()
                    .all(|p| !p.deleting && p.phase == "Running" && p.ready == "True")
            {
                return pods;
            }
            assert!(
                start.elapsed() < timeout,
                "not {n} Running+Ready pods for {selector:?} in {ns} within {timeout:?}: {pods:#?}\n--- server log tail ---\n{}",
                tail(&self.server_log(), 40)
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every node in `names` has condition Ready=True; `p` is the process running
    /// them (its log goes into the panic message).
    #[track_caller]
    pub fn wait_nodes_ready(&self, names: &[&str], p: &NodeProcess, timeout: Duration) {
        let start = Instant::now();
        loop {
            let out = self.kubectl(&[
                "get",
                "nodes",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type==\"Ready\")].status}{\"\\n\"}{end}",
            ]);
            let ready: Vec<&str> = out
                .stdout
                .lines()
                .filter_map(|l| l.strip_suffix("=True"))
                .collect();
            if names.iter().all(|n| ready.contains(n)) {
                return;
            }
            assert!(
                start.elapsed() < timeout,
                "nodes {names:?} not Ready within {timeout:?}:\n{out}\n--- node log ---\n{}\n--- server log tail ---\n{}",
                tail(&p.log(), 30),
                tail(&self.server_log(), 30)
            );
            thread::sleep(Duration::from_millis(200));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_recognised() {
        for a in [
            "0s", "45s", "5m30s", "95m", "5h10m", "30h", "3d4h", "689d", "2y",
        ] {
            assert!(is_age(a), "{a}");
        }
        for n in [
            "", "s", "5", "1x", "web:v1", "80/TCP", "1m2s3h", "<none>", "0/3",
        ] {
            assert!(!is_age(n), "{n}");
        }
    }

    #[test]
    fn tables_normalise_ages_and_keep_everything_else() {
        let raw = "NAME                     READY   UP-TO-DATE   AVAILABLE   AGE    CONTAINERS   IMAGES   SELECTOR\n\
                   deployment.apps/pagweb   0/3     0            0           2m5s   web          web:v1   app=pagweb\n";
        let want = "NAME                     READY   UP-TO-DATE   AVAILABLE   AGE     CONTAINERS   IMAGES   SELECTOR\n\
                    deployment.apps/pagweb   0/3     0            0           <age>   web          web:v1   app=pagweb\n";
        assert_eq!(normalize_tables(raw), want);
        // A table that already uses kubectl's widths re-renders unchanged.
        assert_eq!(normalize_tables(want), want);
    }

    #[test]
    fn empty_cells_and_spaces_inside_cells_survive() {
        let raw = "NAME          STATUS    COMPLETIONS   DURATION   AGE\n\
                   job.batch/j   Running   0/1                      5s\n\
                   \n\
                   NAME               SCHEDULE      TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE\n\
                   cronjob.batch/cj   */5 * * * *   <none>     False     0        <none>          12s\n";
        let rows = parse_table(raw.split("\n\n").next().unwrap());
        assert_eq!(rows[1], vec!["job.batch/j", "Running", "0/1", "", "5s"]);
        let n = normalize_tables(raw);
        assert!(
            n.contains("job.batch/j   Running   0/1                      <age>\n"),
            "{n}"
        );
        assert!(
            n.contains("*/5 * * * *   <none>     False     0        <none>          <age>\n"),
            "{n}"
        );
    }

    #[test]
    fn watch_rows_parse() {
        assert_eq!(
            WatchRow::parse("NAME    READY   STATUS    RESTARTS   AGE"),
            None
        );
        let r = WatchRow::parse("web-0   1/1     Running   0          5s").unwrap();
        assert_eq!((r.name.as_str(), r.ready.as_str()), ("web-0", "1/1"));
        assert!(r.running_ready());
        let t = WatchRow::parse("web-2   1/1     Terminating   0          9s").unwrap();
        assert!(!t.running_ready());
        assert!(!WatchRow::parse("x   0/1   Running   0   1s")
            .unwrap()
            .running_ready());
    }

    #[test]
    fn table_builder_matches_kubectl_widths() {
        assert_eq!(
            table(&[&["NAME", "AGE"], &["a", "<age>"]]),
            "NAME   AGE\na      <age>\n"
        );
    }

    #[test]
    fn scrub_replaces_volatile_fields() {
        let mut v = serde_json::json!({"metadata":{"uid":"0f8e1c3a-1111-2222-3333-444455556666",
            "resourceVersion":"12","creationTimestamp":"2024-01-02T03:04:05Z"}});
        scrub(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"metadata":{"uid":"<uid>","resourceVersion":"<rv>","creationTimestamp":"<time>"}})
        );
    }
}
