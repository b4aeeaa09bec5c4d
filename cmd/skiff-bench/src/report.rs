//! The report: everything measured in one run, the targets with PASS/MISS, the peer and floor
//! ratios, rendered as markdown (also printed) or JSON.

use crate::load::LoadResult;
use crate::procs::{Machine, MemBreakdown};
use crate::skiff::{ListResult, WatchResult};
use serde::Serialize;
use std::fmt::Write;

/// Run parameters worth recording next to the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub levels: Vec<usize>,
    pub rounds: usize,
    pub duration_s: f64,
    pub max_ops: u64,
    pub cold_runs: usize,
    pub warm_runs: usize,
    pub idle_s: f64,
    pub watchers: usize,
    pub watch_rate: f64,
    pub watch_s: f64,
    pub list_pods: u64,
    pub skiff_bin: String,
    pub etcd_bin: String,
}

/// Figures for skiff; `None` means not measured (the reason is in `Report::errors`).
#[derive(Debug, Clone, Serialize, Default)]
pub struct SkiffReport {
    pub cold_start_ms: Vec<f64>,
    pub cold_start_median_ms: Option<f64>,
    pub cold_kubeconfig_median_ms: Option<f64>,
    pub warm_restart_ms: Vec<f64>,
    pub warm_restart_median_ms: Option<f64>,
    pub idle_rss_kib: Option<u64>,
    pub idle_mem: Option<MemBreakdown>,
    pub mem_after_load: Option<MemBreakdown>,
    pub creates: Vec<LoadResult>,
    pub stored_pod_bytes: Option<usize>,
    pub get: Option<LoadResult>,
    pub list: Option<ListResult>,
    pub watch: Option<WatchResult>,
    pub rss_after_load_kib: Option<u64>,
    pub peak_rss_kib: Option<u64>,
    pub crash_restart_ms: Option<f64>,
    pub crash_restart_objects: Option<usize>,
    pub acked_creates: Option<u64>,
    pub acked_missing_after_kill9: Option<u64>,
    pub data_dir_bytes: Option<u64>,
}

/// Figures for etcd.
#[derive(Debug, Clone, Serialize, Default)]
pub struct EtcdReport {
    pub version: Option<String>,
    pub puts: Vec<LoadResult>,
    pub rss_after_load_kib: Option<u64>,
    /// Pod creates on a skiff server started with `--datastore-endpoint http://…` (this etcd).
    pub skiff_creates: Vec<LoadResult>,
    pub skiff_rss_after_load_kib: Option<u64>,
    /// Watch delivery on the skiff-on-etcd server (same phase as skiff's own on SQLite).
    pub skiff_watch: Option<WatchResult>,
}

/// Figures for the SQLite floor.
#[derive(Debug, Clone, Serialize, Default)]
pub struct SqliteReport {
    pub single: Option<LoadResult>,
    pub group: Vec<LoadResult>,
}

/// Figures for the PostgreSQL engine: skiff serving from it and its raw inserts.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PostgresReport {
    pub version: Option<String>,
    /// Pod creates on a skiff server started with `--datastore-endpoint postgres://…`.
    pub skiff_creates: Vec<LoadResult>,
    /// Raw INSERTs, one commit each, one connection per client.
    pub inserts: Vec<LoadResult>,
    pub skiff_rss_after_load_kib: Option<u64>,
    /// Watch delivery on the skiff-on-PostgreSQL server.
    pub skiff_watch: Option<WatchResult>,
}

/// One full run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: String,
    pub machine: Machine,
    pub settings: Settings,
    pub loadavg_start: Option<[f64; 3]>,
    pub loadavg_after_writes: Option<[f64; 3]>,
    pub loadavg_end: Option<[f64; 3]>,
    pub value_bytes: usize,
    pub skiff: SkiffReport,
    pub etcd: EtcdReport,
    pub sqlite: SqliteReport,
    pub postgres: PostgresReport,
    /// The cluster DNS phase (`None`: skipped or failed).
    pub dns: Option<crate::dns::DnsReport>,
    /// Custom resource creates (schema + CEL) vs ConfigMap creates.
    pub crd: Option<crate::crd::CrdReport>,
    /// Admission webhook round trip (no-op validating webhook vs none).
    pub webhook: Option<crate::webhook::WebhookReport>,
    pub targets: Vec<Verdict>,
    /// Phases that failed (the run then exits non-zero).
    pub errors: Vec<String>,
    /// Phases left out on purpose (`--skip-*`, `--smoke`).
    pub skipped: Vec<String>,
}

/// One target and whether it was met.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    /// "PASS", "MISS" or "not measured".
    pub result: String,
}

fn verdict(target: &str, measured: Option<(String, bool)>) -> Verdict {
    match measured {
        Some((m, ok)) => Verdict {
            target: target.into(),
            measured: m,
            result: if ok { "PASS" } else { "MISS" }.into(),
        },
        None => Verdict {
            target: target.into(),
            measured: "-".into(),
            result: "not measured".into(),
        },
    }
}

/// The round with the median throughput at `clients` (upper median for an even count).
fn at_level(v: &[LoadResult], clients: usize) -> Option<&LoadResult> {
    let mut rs: Vec<&LoadResult> = v
        .iter()
        .filter(|r| r.clients == clients && r.ops > 0)
        .collect();
    rs.sort_by(|a, b| a.ops_per_s.total_cmp(&b.ops_per_s));
    rs.get(rs.len() / 2).copied()
}

fn ratio(a: Option<&LoadResult>, b: Option<&LoadResult>) -> Option<f64> {
    let (a, b) = (a?, b?);
    (b.ops_per_s > 0.0).then(|| a.ops_per_s / b.ops_per_s)
}

impl Report {
    /// Evaluates the targets of issue 2 against the figures.
    pub fn evaluate(&mut self) {
        let s = &self.skiff;
        let mut t = Vec::new();
        t.push(verdict(
            "cold start to /readyz < 0.5 s (median)",
            s.cold_start_median_ms
                .map(|m| (format!("{m:.1} ms"), m < 500.0)),
        ));
        t.push(verdict(
            "idle RSS < 40 MiB",
            s.idle_rss_kib
                .map(|k| (format!("{:.1} MiB", k as f64 / 1024.0), k < 40 * 1024)),
        ));
        let c64 = at_level(&s.creates, 64);
        t.push(verdict(
            ">= 3,000 durable creates/s at 64 clients",
            c64.map(|r| (format!("{:.0} /s", r.ops_per_s), r.ops_per_s >= 3000.0)),
        ));
        t.push(verdict(
            "creates at 64 clients >= 1.0x etcd",
            ratio(c64, at_level(&self.etcd.puts, 64)).map(|x| (format!("{x:.2}x"), x >= 1.0)),
        ));
        t.push(verdict(
            "skiff on etcd creates at 64 clients >= 0.8x raw etcd puts",
            ratio(
                at_level(&self.etcd.skiff_creates, 64),
                at_level(&self.etcd.puts, 64),
            )
            .map(|x| (format!("{x:.2}x"), x >= 0.8)),
        ));
        t.push(verdict(
            "GET p99 < 5 ms",
            s.get.as_ref().filter(|g| g.ops > 0).map(|g| {
                (
                    format!("{:.2} ms", g.latency.p99_ms),
                    g.latency.p99_ms < 5.0,
                )
            }),
        ));
        t.push(verdict(
            "watch delivery p99 < 20 ms (100 watchers)",
            s.watch.as_ref().filter(|w| w.events_received > 0).map(|w| {
                let complete = w.events_received == w.events_expected;
                (
                    format!(
                        "{:.2} ms ({} of {} events)",
                        w.ack_to_event.p99_ms, w.events_received, w.events_expected
                    ),
                    w.ack_to_event.p99_ms < 20.0 && complete,
                )
            }),
        ));
        t.push(verdict(
            "custom resource creates (schema + CEL) >= 0.7x ConfigMap creates",
            self.crd
                .as_ref()
                .map(|c| (format!("{:.2}x", c.ratio), c.ratio >= 0.7)),
        ));
        self.targets = t;
    }

    /// The report as markdown (what the bench prints).
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let la = |l: Option<[f64; 3]>| {
            l.map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]))
                .unwrap_or_else(|| "unknown".into())
        };
        let _ = writeln!(o, "## skiff-bench run\n");
        let _ = writeln!(o, "- command: `{}`", self.command);
        let _ = writeln!(
            o,
            "- machine: {} CPUs ({}), {} MiB RAM, kernel {}, {}",
            m.nproc, m.cpu_model, m.mem_total_mib, m.kernel, m.date_utc
        );
        let _ = writeln!(
            o,
            "- load average (1/5/15 min; other jobs share this machine): start {}, after the write comparison {}, end {}",
            la(self.loadavg_start),
            la(self.loadavg_after_writes),
            la(self.loadavg_end)
        );
        let st = &self.settings;
        let _ = writeln!(
            o,
            "- each load level: {} s or {} operations, whichever first; closed loop, one HTTP/1.1 keep-alive connection per client; {} round(s), each level run on skiff, etcd and SQLite back to back; ratios use each system's median round",
            st.duration_s, st.max_ops, st.rounds
        );
        let _ = writeln!(
            o,
            "- value written to etcd and SQLite: {} bytes (the stored pod as skiff returns it)\n",
            self.value_bytes
        );

        let _ = writeln!(o, "### Targets\n");
        let _ = writeln!(o, "| target | measured | result |\n|---|---|---|");
        for v in &self.targets {
            let _ = writeln!(o, "| {} | {} | {} |", v.target, v.measured, v.result);
        }

        let s = &self.skiff;
        let _ = writeln!(o, "\n### skiff server\n");
        let fmt_ms = |x: Option<f64>| {
            x.map(|v| format!("{v:.1} ms"))
                .unwrap_or_else(|| "not measured".into())
        };
        let list = |v: &[f64]| {
            v.iter()
                .map(|x| format!("{x:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            o,
            "- cold start → /readyz 200 (fresh data dir): median {} (runs: {} ms); kubeconfig on disk: median {}",
            fmt_ms(s.cold_start_median_ms),
            list(&s.cold_start_ms),
            fmt_ms(s.cold_kubeconfig_median_ms)
        );
        let _ = writeln!(
            o,
            "- warm restart (existing data dir): median {} (runs: {} ms)",
            fmt_ms(s.warm_restart_median_ms),
            list(&s.warm_restart_ms)
        );
        let mib = |k: Option<u64>| {
            k.map(|k| format!("{:.1} MiB", k as f64 / 1024.0))
                .unwrap_or_else(|| "not measured".into())
        };
        let _ = writeln!(
            o,
            "- RSS: idle {}, after the load {}, peak {}",
            mib(s.idle_rss_kib),
            mib(s.rss_after_load_kib),
            mib(s.peak_rss_kib)
        );
        let brk = |m: &Option<MemBreakdown>| {
            m.map(|m| {
                format!(
                    "anon {:.1} MiB, file-backed {:.1} MiB, shmem {:.1} MiB, {} threads",
                    m.anon_kib as f64 / 1024.0,
                    m.file_kib as f64 / 1024.0,
                    m.shmem_kib as f64 / 1024.0,
                    m.threads
                )
            })
        };
        if let Some(b) = brk(&s.idle_mem) {
            let _ = writeln!(o, "- idle RSS by kind: {b}");
        }
        if let Some(b) = brk(&s.mem_after_load) {
            let _ = writeln!(o, "- RSS by kind after the load: {b}");
        }
        if let Some(b) = s.stored_pod_bytes {
            let _ = writeln!(o, "- stored pod (GET answer): {b} bytes");
        }
        if let Some(g) = &s.get {
            let _ = writeln!(
                o,
                "- GET one pod (1 client, {} requests): p50 {:.2} ms, p99 {:.2} ms, {:.0} /s",
                g.ops, g.latency.p50_ms, g.latency.p99_ms, g.ops_per_s
            );
        }
        if let Some(l) = &s.list {
            let _ = writeln!(
                o,
                "- LIST a namespace of {} pods ({} KiB JSON, 1 client, {} requests): p50 {:.1} ms, p99 {:.1} ms",
                l.pods,
                l.response_bytes / 1024,
                l.load.ops,
                l.load.latency.p50_ms,
                l.load.latency.p99_ms
            );
        }
        if let Some(w) = &s.watch {
            let _ = writeln!(o, "- watch: {}", watch_line(w));
        }
        if let (Some(acked), Some(missing)) = (s.acked_creates, s.acked_missing_after_kill9) {
            let _ = writeln!(
                o,
                "- durability: SIGKILL after the load, restart → /readyz in {}, {} objects listed in `default`; {missing} of {acked} acknowledged creates missing",
                fmt_ms(s.crash_restart_ms),
                s.crash_restart_objects.unwrap_or(0)
            );
        }
        if let Some(b) = s.data_dir_bytes {
            let _ = writeln!(
                o,
                "- data dir after the run: {:.1} MiB",
                b as f64 / 1048576.0
            );
        }

        let _ = writeln!(
            o,
            "\n### Durable writes: skiff vs etcd (peer) vs SQLite (floor)\n"
        );
        let _ = writeln!(
            o,
            "| system | round | clients | ops/s | p50 ms | p99 ms | max ms | ops | errors | server CPU s | bench CPU s | commits |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|---|");
        let row = |o: &mut String, name: &str, r: &LoadResult| {
            let opt = |x: Option<f64>| x.map(|v| format!("{v:.2}")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                o,
                "| {name} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |",
                r.round + 1,
                r.clients,
                r.ops_per_s,
                r.latency.p50_ms,
                r.latency.p99_ms,
                r.latency.max_ms,
                r.ops,
                r.errors,
                opt(r.server_cpu_s),
                opt(r.bench_cpu_s),
                r.commits
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "-".into())
            );
        };
        if let Some(r) = &self.sqlite.single {
            row(&mut o, "SQLite, 1 fsync per insert", r);
        }
        for round in 0..self.settings.rounds {
            for &c in &self.settings.levels {
                let pick = |v: &[LoadResult]| {
                    v.iter()
                        .find(|r| r.round == round && r.clients == c)
                        .cloned()
                };
                if let Some(r) = pick(&s.creates) {
                    row(&mut o, "skiff pod create (HTTPS)", &r);
                }
                if let Some(r) = pick(&self.etcd.puts) {
                    row(&mut o, "etcd put (HTTP gateway)", &r);
                }
                if let Some(r) = pick(&self.etcd.skiff_creates) {
                    row(&mut o, "skiff on etcd, pod create (HTTPS)", &r);
                }
                if let Some(r) = pick(&self.sqlite.group) {
                    row(&mut o, "SQLite, group commit", &r);
                }
                if let Some(r) = pick(&self.postgres.skiff_creates) {
                    row(&mut o, "skiff on PostgreSQL, pod create (HTTPS)", &r);
                }
                if let Some(r) = pick(&self.postgres.inserts) {
                    row(&mut o, "PostgreSQL insert, 1 commit each", &r);
                }
            }
        }

        let busy: Vec<&LoadResult> = s
            .creates
            .iter()
            .filter(|r| !r.server_threads.is_empty())
            .collect();
        if !busy.is_empty() {
            let _ = writeln!(o, "\nskiff server CPU by thread during the creates (CPU seconds; wall time per level ≈ elapsed):\n");
            for r in busy {
                let threads: Vec<String> = r
                    .server_threads
                    .iter()
                    .take(6)
                    .map(|(n, c)| format!("{n} {c:.2}"))
                    .collect();
                let per_op = r
                    .server_cpu_s
                    .filter(|_| r.ops > 0)
                    .map(|c| format!("{:.0} µs CPU/create", c * 1e6 / r.ops as f64))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "- round {}, {} clients, {:.2} s: {} ({per_op})",
                    r.round + 1,
                    r.clients,
                    r.elapsed_s,
                    threads.join(", ")
                );
            }
        }
        let _ = writeln!(o, "\n### Ratios (throughput)\n");
        let _ = writeln!(o, "| clients | skiff/etcd | skiff/SQLite group commit | skiff/SQLite 1 fsync per insert |");
        let _ = writeln!(o, "|---|---|---|---|");
        let single = self.sqlite.single.as_ref().filter(|r| r.ops > 0);
        for &c in &self.settings.levels {
            let sk = at_level(&s.creates, c);
            let f = |x: Option<f64>| {
                x.map(|v| format!("{v:.2}x"))
                    .unwrap_or_else(|| "not measured".into())
            };
            let _ = writeln!(
                o,
                "| {c} | {} | {} | {} |",
                f(ratio(sk, at_level(&self.etcd.puts, c))),
                f(ratio(sk, at_level(&self.sqlite.group, c))),
                f(ratio(sk, single))
            );
        }
        if let Some(v) = &self.postgres.version {
            let pg = &self.postgres;
            let _ = writeln!(o, "\n### Storage engines (throughput)\n");
            let _ = writeln!(
                o,
                "| clients | skiff on PostgreSQL/raw PostgreSQL inserts | skiff on PostgreSQL/skiff on SQLite |"
            );
            let _ = writeln!(o, "|---|---|---|");
            for &c in &self.settings.levels {
                let on_pg = at_level(&pg.skiff_creates, c);
                let f = |x: Option<f64>| {
                    x.map(|v| format!("{v:.2}x"))
                        .unwrap_or_else(|| "not measured".into())
                };
                let _ = writeln!(
                    o,
                    "| {c} | {} | {} |",
                    f(ratio(on_pg, at_level(&pg.inserts, c))),
                    f(ratio(on_pg, at_level(&s.creates, c)))
                );
            }
            if let Some(w) = &pg.skiff_watch {
                let _ = writeln!(o, "\n- watch on skiff-on-PostgreSQL: {}", watch_line(w));
            }
            let _ = writeln!(
                o,
                "\nPostgreSQL {v} (throwaway cluster, default settings: fsync and synchronous_commit on); skiff-on-PostgreSQL RSS after the load: {}",
                mib(pg.skiff_rss_after_load_kib)
            );
        }
        if let Some(v) = &self.etcd.version {
            let e = &self.etcd;
            if !e.skiff_creates.is_empty() {
                let _ = writeln!(o, "\n### skiff on etcd (throughput)\n");
                let _ = writeln!(
                    o,
                    "| clients | skiff on etcd/raw etcd puts | skiff on etcd/skiff on SQLite |"
                );
                let _ = writeln!(o, "|---|---|---|");
                for &c in &self.settings.levels {
                    let on_etcd = at_level(&e.skiff_creates, c);
                    let f = |x: Option<f64>| {
                        x.map(|v| format!("{v:.2}x"))
                            .unwrap_or_else(|| "not measured".into())
                    };
                    let _ = writeln!(
                        o,
                        "| {c} | {} | {} |",
                        f(ratio(on_etcd, at_level(&e.puts, c))),
                        f(ratio(on_etcd, at_level(&s.creates, c)))
                    );
                }
            }
            if let Some(w) = &e.skiff_watch {
                let _ = writeln!(o, "\n- watch on skiff-on-etcd: {}", watch_line(w));
            }
            let _ = writeln!(
                o,
                "\netcd {v}; etcd RSS after the load: {}; skiff-on-etcd RSS after the load: {}",
                mib(e.rss_after_load_kib),
                mib(e.skiff_rss_after_load_kib)
            );
        }
        if let Some(d) = &self.dns {
            o.push_str(&crate::dns::markdown(d));
        }
        if let Some(c) = &self.crd {
            o.push_str(&crate::crd::markdown(c));
        }
        if let Some(w) = &self.webhook {
            o.push_str(&crate::webhook::markdown(w));
        }
        let problems = self.problems();
        if !problems.is_empty() || !self.skipped.is_empty() {
            let _ = writeln!(o, "\n### Not measured / errors\n");
            for e in &self.skipped {
                let _ = writeln!(o, "- skipped: {e}");
            }
            for e in &problems {
                let _ = writeln!(o, "- {e}");
            }
        }
        o
    }

    /// Failed phases and the first failed request of each write level: empty for a good run.
    pub fn problems(&self) -> Vec<String> {
        let firsts = self
            .skiff
            .creates
            .iter()
            .chain(&self.etcd.puts)
            .chain(&self.etcd.skiff_creates)
            .chain(&self.postgres.skiff_creates)
            .chain(&self.postgres.inserts)
            .filter_map(|r| {
                r.first_error
                    .as_ref()
                    .map(|e| format!("round {} at {} clients: {e}", r.round + 1, r.clients))
            });
        self.errors.iter().cloned().chain(firsts).collect()
    }
}

/// One watch phase as a sentence: who watched, how fast events came after the create's ack.
fn watch_line(w: &WatchResult) -> String {
    format!(
        "{} watchers, {} creates at {}/s: create-ack → event p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; send → event p99 {:.2} ms; {} of {} events received ({} before the ack); create p99 {:.2} ms; server CPU {}",
        w.watchers,
        w.creates,
        w.rate_per_s,
        w.ack_to_event.p50_ms,
        w.ack_to_event.p99_ms,
        w.ack_to_event.max_ms,
        w.send_to_event.p99_ms,
        w.events_received,
        w.events_expected,
        w.before_ack,
        w.create_latency.p99_ms,
        w.server_cpu_s
            .map(|c| format!("{c:.2} s"))
            .unwrap_or_else(|| "unknown".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Summary;

    fn report() -> Report {
        Report {
            command: "skiff-bench".into(),
            machine: crate::procs::machine(),
            settings: Settings {
                levels: vec![1, 64],
                rounds: 1,
                duration_s: 5.0,
                max_ops: 3000,
                cold_runs: 5,
                warm_runs: 3,
                idle_s: 3.0,
                watchers: 100,
                watch_rate: 50.0,
                watch_s: 4.0,
                list_pods: 1000,
                skiff_bin: "skiff".into(),
                etcd_bin: "etcd".into(),
            },
            loadavg_start: None,
            loadavg_after_writes: None,
            loadavg_end: None,
            value_bytes: 0,
            skiff: SkiffReport::default(),
            etcd: EtcdReport::default(),
            sqlite: SqliteReport::default(),
            postgres: PostgresReport::default(),
            dns: None,
            crd: None,
            webhook: None,
            targets: vec![],
            errors: vec![],
            skipped: vec![],
        }
    }

    fn load(clients: usize, ops_per_s: f64, p99: f64) -> LoadResult {
        LoadResult {
            clients,
            ops: 100,
            ops_per_s,
            latency: Summary {
                p99_ms: p99,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn unmeasured_targets_say_so() {
        let mut r = report();
        r.evaluate();
        assert!(r.targets.len() >= 7, "{:?}", r.targets);
        assert!(r.targets.iter().all(|v| v.result == "not measured"));
        assert!(r.markdown().contains("| skiff/etcd |"));
    }

    #[test]
    fn targets_pass_and_miss_on_the_figures() {
        let mut r = report();
        r.skiff.cold_start_median_ms = Some(120.0);
        r.skiff.idle_rss_kib = Some(50 * 1024);
        r.skiff.creates = vec![load(64, 2500.0, 40.0)];
        r.etcd.puts = vec![load(64, 2000.0, 50.0)];
        r.etcd.skiff_creates = vec![load(64, 1500.0, 60.0)];
        r.etcd.version = Some("3.4.23".into());
        r.skiff.get = Some(load(1, 3000.0, 1.5));
        r.evaluate();
        let result = |name: &str| {
            r.targets
                .iter()
                .find(|v| v.target.starts_with(name))
                .map(|v| (v.result.as_str(), v.measured.as_str()))
                .unwrap_or_else(|| panic!("no target {name}: {:?}", r.targets))
        };
        assert_eq!(result("cold start").0, "PASS");
        assert_eq!(result("idle RSS").0, "MISS");
        assert_eq!(result(">= 3,000").0, "MISS");
        assert_eq!(
            result("creates at 64 clients >= 1.0x etcd"),
            ("PASS", "1.25x")
        );
        assert_eq!(result("skiff on etcd"), ("MISS", "0.75x"));
        assert_eq!(result("GET p99").0, "PASS");
        assert_eq!(result("watch delivery").0, "not measured");
        let md = r.markdown();
        assert!(
            md.contains("| 64 | 1.25x | not measured | not measured |"),
            "{md}"
        );
        assert!(md.contains("| 64 | 0.75x | 0.60x |"), "{md}");
        assert!(
            md.contains("| skiff on etcd, pod create (HTTPS) | 1 | 64 | 1500 |"),
            "{md}"
        );
    }

    #[test]
    fn failed_requests_and_phases_are_problems_and_skips_are_not() {
        let mut r = report();
        r.skipped.push("etcd (--skip-etcd)".into());
        assert!(r.problems().is_empty());
        let mut bad = load(16, 10.0, 1.0);
        bad.first_error = Some("POST /api/v1/namespaces/default/pods: 403".into());
        r.skiff.creates.push(bad);
        r.errors.push("skiff LIST latency: timed out".into());
        assert_eq!(
            r.problems(),
            [
                "skiff LIST latency: timed out",
                "round 1 at 16 clients: POST /api/v1/namespaces/default/pods: 403"
            ]
        );
        let md = r.markdown();
        assert!(md.contains("- skipped: etcd (--skip-etcd)\n"), "{md}");
        assert!(md.contains("- skiff LIST latency: timed out\n"), "{md}");
    }

    #[test]
    fn ratios_use_the_median_round() {
        let v = vec![
            load(64, 100.0, 1.0),
            load(64, 300.0, 1.0),
            load(64, 200.0, 1.0),
        ];
        assert_eq!(at_level(&v, 64).map(|r| r.ops_per_s), Some(200.0));
        assert!(at_level(&v, 16).is_none());
    }
}
