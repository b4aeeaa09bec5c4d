//! skiff-bench: one run that measures skiff server start, memory, durable create throughput,
//! GET/LIST/watch latency, and the same write load against etcd (the peer) and raw SQLite
//! (the floor); prints a markdown report and writes it (or JSON) with `--out`.

mod crd;
mod dns;
mod error;
mod etcd;
mod http;
mod load;
mod pods;
mod postgres;
mod procs;
mod report;
mod skiff;
mod sqlite;
mod stats;
mod webhook;

use bytes::Bytes;
use clap::Parser;
use error::{BenchError, Result};
use hyper::Method;
use load::Limits;
use report::{EtcdReport, PostgresReport, Report, Settings, SkiffReport, SqliteReport};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(
    name = "skiff-bench",
    about = "Benchmarks skiff server against etcd (peer) and raw SQLite (floor) on this machine"
)]
struct Args {
    /// The skiff binary (default: `skiff` next to this binary, else target/release/skiff).
    #[arg(long)]
    skiff_bin: Option<PathBuf>,
    /// The etcd binary (Debian: apt-get install -y etcd-server).
    #[arg(long, default_value = "etcd")]
    etcd_bin: PathBuf,
    /// Client concurrency levels of the write load, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    levels: Vec<usize>,
    /// Rounds of the interleaved write comparison (median round is used for ratios).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds per write-load level.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Operations per write-load level at most.
    #[arg(long, default_value_t = 20_000)]
    max_ops: u64,
    /// Cold starts (fresh data dir each).
    #[arg(long, default_value_t = 5)]
    cold_runs: usize,
    /// Warm restarts (existing data dir).
    #[arg(long, default_value_t = 3)]
    warm_runs: usize,
    /// Seconds to wait after start before reading the idle RSS.
    #[arg(long, default_value_t = 3.0)]
    idle: f64,
    /// GET requests (one client).
    #[arg(long, default_value_t = 2000)]
    get_count: u64,
    /// Pods in the LIST namespace.
    #[arg(long, default_value_t = 1000)]
    list_pods: u64,
    /// LIST requests (one client).
    #[arg(long, default_value_t = 30)]
    list_count: u64,
    /// Concurrent watchers.
    #[arg(long, default_value_t = 100)]
    watchers: usize,
    /// Creates per second during the watch phase.
    #[arg(long, default_value_t = 50.0)]
    watch_rate: f64,
    /// Seconds of creates during the watch phase.
    #[arg(long, default_value_t = 4.0)]
    watch_secs: f64,
    /// Skip the skiff phases.
    #[arg(long)]
    skip_skiff: bool,
    /// Skip the etcd phases.
    #[arg(long)]
    skip_etcd: bool,
    /// Skip the SQLite phases.
    #[arg(long)]
    skip_sqlite: bool,
    /// Skip the PostgreSQL phases (skiff with `--datastore-endpoint postgres://…` and raw
    /// inserts; a throwaway cluster from Debian's postgresql).
    #[arg(long)]
    skip_postgres: bool,
    /// Skip the cluster DNS phase (skiff-dns query latency against a bare UDP responder).
    #[arg(long)]
    skip_dns: bool,
    /// Skip the custom resource phase (creates of a custom resource with a schema and CEL
    /// rules vs ConfigMaps, interleaved rounds on the main server).
    #[arg(long)]
    skip_crd: bool,
    /// Skip the admission webhook phase (ConfigMap creates through a no-op validating
    /// webhook on loopback HTTPS vs none, interleaved rounds on the main server).
    #[arg(long)]
    skip_webhook: bool,
    /// Custom resource phase: closed-loop clients.
    #[arg(long, default_value_t = 4)]
    crd_clients: usize,
    /// DNS phase: Services in the zone.
    #[arg(long, default_value_t = 2000)]
    dns_services: usize,
    /// DNS phase: A queries to each server (skiff-dns and the floor).
    #[arg(long, default_value_t = 20_000)]
    dns_queries: usize,
    /// Parent directory of the temporary data dirs (default: the system temp dir).
    #[arg(long)]
    tmp_dir: Option<PathBuf>,
    /// Write the report here: `.json` gets JSON, anything else markdown (repeatable).
    #[arg(long)]
    out: Vec<PathBuf>,
    /// Run only the pod start benchmark (root; real containerd in a network namespace of its
    /// own): create → Running against raw CRI calls, node Ready time, agent memory.
    #[arg(long)]
    pods: bool,
    /// Pod benchmark: pods started one at a time (interleaved with as many raw CRI starts).
    #[arg(long, default_value_t = 20)]
    pod_runs: usize,
    /// Pod benchmark: pods started at once.
    #[arg(long, default_value_t = 30)]
    pod_batch: usize,
    /// A few seconds instead of minutes: tiny counts, one round — checks that every phase
    /// still runs (CI starts it; it needs etcd-server and postgresql installed); the figures
    /// mean nothing. Exits non-zero when a phase fails, like a full run.
    #[arg(long)]
    smoke: bool,
}

impl Args {
    /// `--smoke`: every phase, with counts small enough for a debug build in seconds.
    fn smoke(&mut self) {
        self.levels = vec![1, 4];
        self.rounds = 1;
        self.duration = 0.5;
        self.max_ops = 100;
        self.cold_runs = 1;
        self.warm_runs = 1;
        self.idle = 0.2;
        self.get_count = 50;
        self.list_pods = 20;
        self.list_count = 3;
        self.watchers = 4;
        self.watch_rate = 20.0;
        self.watch_secs = 0.5;
        self.pod_runs = 1;
        self.pod_batch = 2;
        self.dns_services = 50;
        self.dns_queries = 200;
    }
}

fn secs(s: f64, arg: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(s).map_err(|e| BenchError::Arg {
        arg: arg.into(),
        why: format!("{e}: give a positive number of seconds"),
    })
}

fn skiff_bin(args: &Args) -> PathBuf {
    if let Some(p) = &args.skiff_bin {
        return p.clone();
    }
    if let Some(sibling) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("skiff")))
        .filter(|p| p.is_file())
    {
        return sibling;
    }
    PathBuf::from("target/release/skiff")
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    if args.smoke {
        args.smoke();
    }
    if args.pods && !pods::inside_netns() {
        return match pods::run_in_netns() {
            Ok(st) if st.success() => ExitCode::SUCCESS,
            Ok(_) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("skiff-bench: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("skiff-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.pods {
        return rt.block_on(run_pods(&args));
    }
    // Dropping `run` (on a signal) drops its child guards and temp dirs: nothing is left behind.
    let res = rt.block_on(async {
        tokio::select! {
            r = run(&args) => r,
            _ = shutdown_signal() => Err(BenchError::Phase("interrupted: children killed, temp dirs removed".into())),
        }
    });
    match res {
        Ok(report) => {
            let code = emit(&args.out, &report.markdown(), &report);
            let problems = report.problems();
            if problems.is_empty() {
                code
            } else {
                eprintln!(
                    "skiff-bench: {} problem(s), see \"Not measured / errors\" above; first: {}",
                    problems.len(),
                    problems[0]
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("skiff-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the markdown report and writes it to each `--out` (`.json` gets the JSON form).
fn emit(outs: &[PathBuf], md: &str, report: &impl serde::Serialize) -> ExitCode {
    println!("{md}");
    for out in outs {
        let text = if out.extension().is_some_and(|e| e == "json") {
            serde_json::to_string_pretty(report).unwrap_or_default()
        } else {
            md.to_string()
        };
        if let Err(e) = std::fs::write(out, text) {
            eprintln!("skiff-bench: cannot write {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// `--pods`, inside the bench's network namespace.
async fn run_pods(args: &Args) -> ExitCode {
    let settings = pods::PodSettings {
        single_runs: args.pod_runs.max(1),
        batch: args.pod_batch.max(1),
        idle_s: args.idle,
    };
    let parent = args.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = match tempfile::Builder::new()
        .prefix("skiff-podbench-")
        .tempdir_in(&parent)
    {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "skiff-bench: cannot create a temp dir in {}: {e}",
                parent.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let bin = skiff_bin(args);
    let res = tokio::select! {
        r = pods::run(&bin, tmp.path(), &settings) => r,
        _ = shutdown_signal() => Err(BenchError::Phase("interrupted".into())),
    };
    match res {
        Ok(r) => {
            let m = procs::machine();
            let machine = serde_json::to_string(&m).unwrap_or_default();
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            emit(&args.out, &r.markdown(&settings, &command, &machine), &r)
        }
        Err(e) => {
            eprintln!("skiff-bench: {e}; logs kept in {}", tmp.keep().display());
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

async fn run(args: &Args) -> Result<Report> {
    let limits = Limits {
        duration: secs(args.duration, "--duration")?,
        max_ops: args.max_ops,
    };
    if args.levels.is_empty() || args.levels.contains(&0) {
        return Err(BenchError::Arg {
            arg: "--levels".into(),
            why: "give positive client counts, e.g. 1,16,64".into(),
        });
    }
    let parent = args.tmp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("skiff-bench-")
        .tempdir_in(&parent)
        .map_err(BenchError::io(format!(
            "creating a temp dir in {}",
            parent.display()
        )))?;
    let skiff_bin = skiff_bin(args);
    let mut report = Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        machine: procs::machine(),
        settings: Settings {
            levels: args.levels.clone(),
            rounds: args.rounds.max(1),
            duration_s: args.duration,
            max_ops: args.max_ops,
            cold_runs: args.cold_runs,
            warm_runs: args.warm_runs,
            idle_s: args.idle,
            watchers: args.watchers,
            watch_rate: args.watch_rate,
            watch_s: args.watch_secs,
            list_pods: args.list_pods,
            skiff_bin: skiff_bin.display().to_string(),
            etcd_bin: args.etcd_bin.display().to_string(),
        },
        loadavg_start: procs::loadavg(),
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
    };
    let skiff_dir = tmp.path().join("skiff");
    let etcd_dir = tmp.path().join("etcd");
    let sqlite_dir = tmp.path().join("sqlite");
    for d in [&skiff_dir, &etcd_dir, &sqlite_dir] {
        mkdir(d)?;
    }

    // 1. skiff start-up: cold and warm, then the server that takes the load (idle RSS).
    let mut server = None;
    if args.skip_skiff {
        report.skipped.push("skiff (--skip-skiff)".into());
    } else {
        eprintln!("skiff-bench: skiff start-up ({})", skiff_bin.display());
        if start_phases(args, &skiff_bin, &skiff_dir, &mut report).await {
            server = main_server(args, &skiff_bin, &skiff_dir, &mut report).await;
        }
    }
    // What etcd and SQLite store per write: the pod as skiff stored it, else the request body.
    let mut value = skiff::pod_body("default", "c64-0");
    if let Some(sv) = &server {
        match conn_get(&sv.target, "/api/v1/namespaces/default/pods/bench-probe").await {
            Ok(b) => {
                report.skiff.stored_pod_bytes = Some(b.len());
                value = b;
            }
            Err(e) => report
                .errors
                .push(format!("skiff GET of the probe pod: {e}")),
        }
    }
    report.value_bytes = value.len();

    // 2. The peer.
    // 2a. The peer also backs a skiff server (`--datastore-endpoint http://…`).
    let (etcd, mut etcd_server) = if args.skip_etcd {
        report.skipped.push("etcd (--skip-etcd)".into());
        (None, None)
    } else {
        match etcd::start(&args.etcd_bin, &etcd_dir).await {
            Ok(e) => {
                report.etcd.version = Some(e.version.clone());
                let sv = if server.is_some() {
                    datastore_server(&skiff_bin, &skiff_dir, "etcd", &e.endpoint, &mut report).await
                } else {
                    None
                };
                (Some(e), sv)
            }
            Err(e) => {
                report.errors.push(format!("etcd: {e}"));
                (None, None)
            }
        }
    };

    // 2b. PostgreSQL: skiff serving from it, and its raw inserts.
    let (pg, mut pg_server) = if args.skip_postgres {
        report.skipped.push("postgres (--skip-postgres)".into());
        (None, None)
    } else {
        eprintln!("skiff-bench: postgres (throwaway cluster)");
        match postgres::start().await {
            Ok(pg) => {
                report.postgres.version = Some(pg.version.clone());
                let sv = if server.is_some() {
                    datastore_server(
                        &skiff_bin,
                        &skiff_dir,
                        "postgres",
                        &pg.skiff_url,
                        &mut report,
                    )
                    .await
                } else {
                    None
                };
                (Some(pg), sv)
            }
            Err(e) => {
                report.errors.push(format!("postgres: {e}"));
                (None, None)
            }
        }
    };

    // 3. The floor, one fsync per insert.
    let value_bytes = value.clone();
    if args.skip_sqlite {
        report.skipped.push("sqlite (--skip-sqlite)".into());
    } else {
        eprintln!("skiff-bench: sqlite, one fsync per insert");
        match sqlite::single(&sqlite_dir.join("single.db"), limits, value_bytes.clone()).await {
            Ok(r) => report.sqlite.single = Some(r),
            Err(e) => report.errors.push(format!("sqlite single inserts: {e}")),
        }
    }

    // 4. The write comparison: every level on skiff, etcd and SQLite back to back, so the
    //    three see the same neighbours on this shared machine.
    let mut acked: Vec<String> = Vec::new();
    for round in 0..report.settings.rounds {
        for &c in &args.levels {
            if let Some(sv) = server.as_mut() {
                eprintln!(
                    "skiff-bench: round {}: skiff creates, {c} clients",
                    round + 1
                );
                let pid = sv.skiff.child.pid();
                match skiff::create_load(&sv.target, round, c, limits, pid).await {
                    Ok(mut r) => {
                        r.round = round;
                        acked.extend(r.ok_ids.iter().map(|&i| skiff::create_name(round, c, i)));
                        report.skiff.creates.push(r);
                    }
                    Err(e) => report.errors.push(format!(
                        "skiff creates at {c} clients (round {}): {e}",
                        round + 1
                    )),
                }
                if let Err(e) = sv.skiff.child.check_alive() {
                    report
                        .errors
                        .push(format!("skiff server died during the create load: {e}"));
                    server = None;
                }
            }
            if let Some(e) = &etcd {
                eprintln!("skiff-bench: round {}: etcd puts, {c} clients", round + 1);
                match etcd::put_load(e, round, c, limits, &value).await {
                    Ok(mut r) => {
                        r.round = round;
                        report.etcd.puts.push(r);
                    }
                    Err(err) => report.errors.push(format!(
                        "etcd puts at {c} clients (round {}): {err}",
                        round + 1
                    )),
                }
            }
            if let Some(sv) = etcd_server.as_mut() {
                eprintln!(
                    "skiff-bench: round {}: skiff on etcd creates, {c} clients",
                    round + 1
                );
                let pid = sv.skiff.child.pid();
                match skiff::create_load(&sv.target, round, c, limits, pid).await {
                    Ok(mut r) => {
                        r.round = round;
                        report.etcd.skiff_creates.push(r);
                    }
                    Err(e) => report.errors.push(format!(
                        "skiff on etcd creates at {c} clients (round {}): {e}",
                        round + 1
                    )),
                }
                if let Err(e) = sv.skiff.child.check_alive() {
                    report
                        .errors
                        .push(format!("skiff on etcd died during the create load: {e}"));
                    etcd_server = None;
                }
            }
            if !args.skip_sqlite {
                eprintln!(
                    "skiff-bench: round {}: sqlite group commit, {c} clients",
                    round + 1
                );
                let db = sqlite_dir.join(format!("group-{round}-{c}.db"));
                match sqlite::group(&db, c, limits, value_bytes.clone()).await {
                    Ok(mut r) => {
                        r.round = round;
                        report.sqlite.group.push(r);
                    }
                    Err(e) => report.errors.push(format!(
                        "sqlite group commit at {c} clients (round {}): {e}",
                        round + 1
                    )),
                }
                let _ = std::fs::remove_file(&db);
            }
            if let Some(sv) = pg_server.as_mut() {
                eprintln!(
                    "skiff-bench: round {}: skiff on postgres creates, {c} clients",
                    round + 1
                );
                let pid = sv.skiff.child.pid();
                match skiff::create_load(&sv.target, round, c, limits, pid).await {
                    Ok(mut r) => {
                        r.round = round;
                        report.postgres.skiff_creates.push(r);
                    }
                    Err(e) => report.errors.push(format!(
                        "skiff on postgres creates at {c} clients (round {}): {e}",
                        round + 1
                    )),
                }
                if let Err(e) = sv.skiff.child.check_alive() {
                    report.errors.push(format!(
                        "skiff on postgres died during the create load: {e}"
                    ));
                    pg_server = None;
                }
            }
            if let Some(pg) = &pg {
                eprintln!(
                    "skiff-bench: round {}: postgres inserts, {c} clients",
                    round + 1
                );
                match postgres::insert_load(pg, round, c, limits, value_bytes.clone()).await {
                    Ok(mut r) => {
                        r.round = round;
                        report.postgres.inserts.push(r);
                    }
                    Err(e) => report.errors.push(format!(
                        "postgres inserts at {c} clients (round {}): {e}",
                        round + 1
                    )),
                }
            }
        }
    }
    // Watch delivery on each external engine, the same phase the SQLite server gets later.
    if let Some(sv) = &pg_server {
        eprintln!("skiff-bench: skiff on postgres watch");
        match engine_watch(args, sv).await {
            Ok(w) => report.postgres.skiff_watch = Some(w),
            Err(e) => report
                .errors
                .push(format!("skiff on postgres watch latency: {e}")),
        }
    }
    if let Some(sv) = &etcd_server {
        eprintln!("skiff-bench: skiff on etcd watch");
        match engine_watch(args, sv).await {
            Ok(w) => report.etcd.skiff_watch = Some(w),
            Err(e) => report
                .errors
                .push(format!("skiff on etcd watch latency: {e}")),
        }
    }
    if let Some(sv) = pg_server {
        report.postgres.skiff_rss_after_load_kib = procs::rss_kib(sv.skiff.child.pid());
        drop(sv);
    }
    drop(pg);
    if let Some(sv) = etcd_server {
        report.etcd.skiff_rss_after_load_kib = procs::rss_kib(sv.skiff.child.pid());
        drop(sv);
    }
    if let Some(e) = etcd {
        report.etcd.rss_after_load_kib = procs::rss_kib(e.child.pid());
        drop(e);
    }
    let _ = std::fs::remove_dir_all(&etcd_dir);
    let _ = std::fs::remove_dir_all(&sqlite_dir);
    report.loadavg_after_writes = procs::loadavg();

    // 4b. Custom resources (a schema and CEL rules) vs ConfigMaps, on the main server.
    if args.skip_crd {
        report.skipped.push("custom resources (--skip-crd)".into());
    } else if let Some(sv) = &server {
        eprintln!("skiff-bench: custom resource creates vs ConfigMaps");
        let (pid, rounds) = (sv.skiff.child.pid(), args.rounds.max(1));
        match crd::run(&sv.target, pid, args.crd_clients, rounds, limits).await {
            Ok(r) => report.crd = Some(r),
            Err(e) => report.errors.push(format!("custom resources: {e}")),
        }
    }
    // 4c. Admission webhook round trip: a no-op validating webhook vs none.
    if args.skip_webhook {
        report
            .skipped
            .push("admission webhook (--skip-webhook)".into());
    } else if let Some(sv) = &server {
        eprintln!("skiff-bench: ConfigMap creates through a no-op webhook vs none");
        let (pid, rounds) = (sv.skiff.child.pid(), args.rounds.max(1));
        match webhook::run(&sv.target, pid, args.crd_clients, rounds, limits).await {
            Ok(r) => report.webhook = Some(r),
            Err(e) => report.errors.push(format!("admission webhook: {e}")),
        }
    }
    // 5. skiff reads, watch fan-out, and the crash check.
    if let Some(sv) = server {
        read_phases(args, &skiff_bin, &skiff_dir, sv, &acked, &mut report).await;
    }
    // 6. Cluster DNS: in-process, loopback only.
    if args.skip_dns {
        report.skipped.push("dns (--skip-dns)".into());
    } else {
        eprintln!("skiff-bench: cluster DNS, {} Services", args.dns_services);
        match dns::run(args.dns_services, args.dns_queries).await {
            Ok(r) => report.dns = Some(r),
            Err(e) => report.errors.push(format!("cluster DNS: {e}")),
        }
    }
    report.loadavg_end = procs::loadavg();
    report.evaluate();
    Ok(report)
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(BenchError::io(format!("creating {}", p.display())))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The server under load and its admin client.
struct Server {
    skiff: skiff::Skiff,
    target: http::Target,
    data: PathBuf,
}

/// Cold starts (fresh data dir each) and warm restarts (the last data dir again). False when
/// the server could not start at all.
async fn start_phases(args: &Args, bin: &Path, dir: &Path, report: &mut Report) -> bool {
    let s = &mut report.skiff;
    let mut kc = Vec::new();
    let mut cold = Vec::new();
    let mut last_dir = None;
    for r in 0..args.cold_runs {
        let d = dir.join(format!("cold-{r}"));
        let res = match mkdir(&d) {
            Ok(()) => skiff::start(bin, &d, &dir.join(format!("cold-{r}.log"))).await,
            Err(e) => Err(e),
        };
        match res {
            Ok(sk) => {
                cold.push(sk.ready);
                kc.push(sk.kubeconfig_written);
                last_dir = Some(d);
            }
            Err(e) => {
                report.errors.push(format!("skiff cold start: {e}"));
                return false;
            }
        }
    }
    s.cold_start_ms = cold.iter().map(|d| ms(*d)).collect();
    s.cold_start_median_ms = stats::median_ms(&cold);
    s.cold_kubeconfig_median_ms = stats::median_ms(&kc);
    let mut warm = Vec::new();
    if let Some(d) = &last_dir {
        for r in 0..args.warm_runs {
            match skiff::start(bin, d, &dir.join(format!("warm-{r}.log"))).await {
                Ok(sk) => warm.push(sk.ready),
                Err(e) => {
                    report.errors.push(format!("skiff warm restart: {e}"));
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(d);
    }
    s.warm_restart_ms = warm.iter().map(|d| ms(*d)).collect();
    s.warm_restart_median_ms = stats::median_ms(&warm);
    true
}

/// Starts a skiff server on the datastore `endpoint` (`engine`: postgres or etcd, for names
/// and messages) and creates what pods need.
async fn datastore_server(
    bin: &Path,
    dir: &Path,
    engine: &str,
    endpoint: &str,
    report: &mut Report,
) -> Option<Server> {
    let data = dir.join(format!("on-{engine}"));
    // A shared datastore needs the cluster token every server sharing it is started with.
    let extra = [
        "--datastore-endpoint".to_string(),
        endpoint.to_string(),
        "--token".to_string(),
        "skiff-bench-shared-datastore".to_string(),
    ];
    let log = dir.join(format!("on-{engine}.log"));
    let started = match mkdir(&data) {
        Ok(()) => skiff::start_with(bin, &data, &log, &extra).await,
        Err(e) => Err(e),
    };
    let setup = async {
        let sk = started?;
        let target = sk.admin()?;
        let mut c = http::Conn::connect(&target).await?;
        skiff::create_default_service_account(&mut c, "default").await?;
        Ok::<_, BenchError>(Server {
            skiff: sk,
            target,
            data,
        })
    };
    match setup.await {
        Ok(sv) => Some(sv),
        Err(e) => {
            report.errors.push(format!("skiff on {engine}: {e}"));
            None
        }
    }
}

/// Starts the server that takes the load, reads its idle RSS and creates the probe pod.
async fn main_server(args: &Args, bin: &Path, dir: &Path, report: &mut Report) -> Option<Server> {
    let data = dir.join("main");
    let started = match mkdir(&data) {
        Ok(()) => skiff::start(bin, &data, &dir.join("main.log")).await,
        Err(e) => Err(e),
    };
    let sk = match started {
        Ok(sk) => sk,
        Err(e) => {
            report.errors.push(format!("skiff main server: {e}"));
            return None;
        }
    };
    let target = match sk.admin() {
        Ok(t) => t,
        Err(e) => {
            report.errors.push(format!("skiff admin client: {e}"));
            return None;
        }
    };
    tokio::time::sleep(Duration::from_secs_f64(args.idle.max(0.0))).await;
    report.skiff.idle_rss_kib = procs::rss_kib(sk.child.pid());
    report.skiff.idle_mem = procs::mem_breakdown(sk.child.pid());
    let probe = async {
        let mut c = http::Conn::connect(&target).await?;
        skiff::create_default_service_account(&mut c, "default").await?;
        c.expect(
            Method::POST,
            "/api/v1/namespaces/default/pods",
            Some(skiff::pod_body("default", "bench-probe")),
            201,
        )
        .await
    };
    if let Err(e) = probe.await {
        report.errors.push(format!("skiff probe pod create: {e}"));
        return None;
    }
    Some(Server {
        skiff: sk,
        target,
        data,
    })
}

/// The watch phase on a server that runs on an external engine.
async fn engine_watch(args: &Args, sv: &Server) -> Result<skiff::WatchResult> {
    skiff::watch_phase(
        &sv.target,
        args.watchers,
        args.watch_rate,
        args.watch_secs,
        sv.skiff.child.pid(),
    )
    .await
}

/// GET and LIST latency, watch fan-out, memory after the load, and kill -9 + restart.
async fn read_phases(
    args: &Args,
    bin: &Path,
    dir: &Path,
    mut sv: Server,
    acked: &[String],
    report: &mut Report,
) {
    let errors = &mut report.errors;
    let s = &mut report.skiff;
    let pid = sv.skiff.child.pid();
    let target = sv.target.clone();
    let path = "/api/v1/namespaces/default/pods/bench-probe";
    let get_limits = Limits {
        duration: Duration::from_secs(20),
        max_ops: args.get_count,
    };
    eprintln!("skiff-bench: skiff GET");
    match skiff::get_load(&target, path, get_limits, pid).await {
        Ok(r) => s.get = Some(r),
        Err(e) => errors.push(format!("skiff GET latency: {e}")),
    }

    eprintln!("skiff-bench: skiff LIST");
    let list_limits = Limits {
        duration: Duration::from_secs(30),
        max_ops: args.list_count,
    };
    match skiff::list_phase(&target, args.list_pods, list_limits, pid).await {
        Ok(r) => s.list = Some(r),
        Err(e) => errors.push(format!("skiff LIST latency: {e}")),
    }

    eprintln!("skiff-bench: skiff watch");
    match skiff::watch_phase(
        &target,
        args.watchers,
        args.watch_rate,
        args.watch_secs,
        pid,
    )
    .await
    {
        Ok(r) => s.watch = Some(r),
        Err(e) => errors.push(format!("skiff watch latency: {e}")),
    }
    s.rss_after_load_kib = procs::rss_kib(pid);
    s.mem_after_load = procs::mem_breakdown(pid);
    s.peak_rss_kib = procs::peak_rss_kib(pid);

    // Crash and restart: every acknowledged create must still be there.
    eprintln!("skiff-bench: skiff kill -9 and restart");
    sv.skiff.child.kill();
    match skiff::start(bin, &sv.data, &dir.join("restart.log")).await {
        Ok(again) => {
            s.crash_restart_ms = Some(ms(again.ready));
            let names = match again.admin() {
                Ok(t) => skiff::all_pod_names(&t, "default").await,
                Err(e) => Err(e),
            };
            match names {
                Ok(names) => {
                    s.crash_restart_objects = Some(names.len());
                    s.acked_creates = Some(acked.len() as u64);
                    s.acked_missing_after_kill9 =
                        Some(acked.iter().filter(|n| !names.contains(*n)).count() as u64);
                }
                Err(e) => errors.push(format!("skiff durability check: {e}")),
            }
        }
        Err(e) => errors.push(format!("skiff restart after kill -9: {e}")),
    }
    s.data_dir_bytes = Some(procs::dir_size(&sv.data));
}

async fn conn_get(target: &http::Target, path: &str) -> Result<Bytes> {
    let mut c = http::Conn::connect(target).await?;
    c.expect(Method::GET, path, None, 200).await
}
