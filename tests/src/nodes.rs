//! Node processes: `skiff hollow` and `skiff agent --runtime sim` against a cluster, killed
//! when the test lets go of them.

use crate::cluster::Cluster;
use crate::command::{run_command, skiff_bin, COMMAND_TIMEOUT};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

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
            // Like the server: keep a host-wide /etc/skiff/config.yaml out of the test.
            "--config".to_string(),
            self.dir().join("no-config.yaml").display().to_string(),
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
