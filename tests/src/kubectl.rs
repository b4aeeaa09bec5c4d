//! The kubectl runner: one-shot invocations with the cluster's kubeconfig and cache dir, a
//! background kubectl whose lines are read live, and exact-output assertions.

use crate::cluster::Cluster;
use crate::command::{kubectl_bin, run_command, tail, Output, COMMAND_TIMEOUT};
use crate::tables::normalize_tables;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

impl Cluster {
    pub(crate) fn kubectl_command(
        &self,
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Command {
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
