//! Polling: a generic wait and the waits on pods and nodes tests use.

use crate::cluster::Cluster;
use crate::command::tail;
use crate::nodes::NodeProcess;
use crate::objects::{parse_pod_rows, PodRow, POD_ROWS_JSONPATH};
use std::thread;
use std::time::{Duration, Instant};

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

impl Cluster {
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
