//! Server boot: a `skiff server` on a free loopback port under a wrapper that stops it when the
//! test process goes away, its admin credentials, and the per-test namespace with its
//! `default` service account.

use crate::command::{kubectl_bin, run_command, skiff_bin, tail, COMMAND_TIMEOUT};
use base64::Engine as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// How long the server may take from spawn to `/readyz` answering 200 with the kubeconfig written.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free loopback port");
    l.local_addr().expect("local addr").port()
}

/// Where the admin client credentials extracted from the kubeconfig live.
#[derive(Debug)]
pub(crate) struct Creds {
    pub(crate) server: String,
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

/// A running `skiff server` on a free loopback port, with its own data dir, kubeconfig and
/// kubectl cache dir. Dropping it stops the server and removes the dir.
pub struct Cluster {
    wrapper: Mutex<Child>,
    stdin: Mutex<Option<ChildStdin>>,
    pub(crate) dir: PathBuf,
    pub port: u16,
    pub(crate) creds: Creds,
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
        Self::boot(None, extra)
    }

    /// Boots a server that reads `config_yaml` as its config file (`--config`), plus extra
    /// flags. The harness's own flags (port, data dir, kubeconfig, `--disable-agent`) are on
    /// the command line, so they win over the same keys in the file.
    pub fn try_start_with_config(config_yaml: &str, extra: &[&str]) -> Result<Cluster, String> {
        Self::boot(Some(config_yaml), extra)
    }

    fn boot(config_yaml: Option<&str>, extra: &[&str]) -> Result<Cluster, String> {
        crate::arm_watchdog();
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
        // Without a config of the test's own, a path that does not exist keeps a host-wide
        // /etc/skiff/config.yaml out.
        let config = match config_yaml {
            Some(text) => {
                let p = dir.join("config.yaml");
                std::fs::write(&p, text)
                    .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
                p
            }
            None => dir.join("no-config.yaml"),
        };
        let mut args: Vec<String> = vec![
            "server".into(),
            "--config".into(),
            config.display().to_string(),
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
}

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
