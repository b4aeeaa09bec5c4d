//! End-to-end: what the binary says about itself and how it reads its config file —
//! `kubectl version` shows the commit the server was built from; a config file's keys act as
//! flags, an explicit flag wins over its key, an unknown key stops the server naming the key.

use skiff_e2e::*;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn cluster() -> &'static Cluster {
    static C: OnceLock<Cluster> = OnceLock::new();
    C.get_or_init(Cluster::start)
}

fn git(args: &[&str]) -> Output {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(args);
    run_command(cmd, None, Duration::from_secs(30))
}

/// `git rev-parse HEAD` of the tree under test, or "unknown" outside a git checkout (what the
/// build records then).
fn tree_commit() -> String {
    let out = git(&["rev-parse", "HEAD"]);
    if out.code == 0 {
        out.stdout.trim().to_string()
    } else {
        "unknown".to_string()
    }
}

/// Panics unless `reported` is the commit the tree under test is at. The one exception: in a
/// checkout shared with others, HEAD may move after the build recorded it (at `build_date`) —
/// then HEAD must be a later commit than that and `reported` one of its ancestors (a fresh
/// clone, as in CI, always gets the exact check).
#[track_caller]
fn assert_built_from_tree(reported: &str, build_date: &str, out: &Output) {
    let head = tree_commit();
    if reported == head {
        return;
    }
    let secs = |o: Output| o.stdout.trim().parse::<u64>().ok();
    let head_time = secs(git(&["log", "-1", "--format=%ct", "HEAD"]));
    let mut date = Command::new("date");
    date.args(["-u", "-d", build_date, "+%s"]);
    let built = secs(run_command(date, None, COMMAND_TIMEOUT));
    let moved_after_build = matches!((head_time, built), (Some(h), Some(b)) if h >= b);
    let ancestor = git(&["merge-base", "--is-ancestor", reported, &head]).code == 0;
    assert!(
        moved_after_build && ancestor,
        "the server binary reports commit {reported:?} (built {build_date}) but the tree under \
         test is at {head} (rebuild with `cargo build -p skiff`):\n{out}"
    );
    eprintln!(
        "note: HEAD moved to {head} after the binary recorded {reported} (a shared checkout)"
    );
}

#[test]
fn kubectl_version_shows_the_commit_the_server_was_built_from() {
    let c = cluster();
    let out = c.kubectl(&["version", "-o", "json"]);
    out.success();
    let v = out.json();
    let server = &v["serverVersion"];
    let commit = server["gitCommit"].as_str().unwrap_or_default();
    let date = server["buildDate"].as_str().unwrap_or_default();
    assert_built_from_tree(commit, date, &out);
    let state = server["gitTreeState"].as_str().unwrap_or_default();
    if server["gitCommit"] == "unknown" {
        assert_eq!(state, "unknown", "{out}");
    } else {
        assert!(state == "clean" || state == "dirty", "{out}");
    }
    assert!(
        is_rfc3339(date),
        "buildDate {date:?} is not RFC 3339 UTC:\n{out}"
    );
    assert_eq!(server["major"], "1", "{out}");
    assert_eq!(server["minor"], "32", "{out}");
    let git_version = server["gitVersion"].as_str().unwrap_or_default();
    assert!(git_version.starts_with("v1.32.0+skiff"), "{out}");
    assert!(
        server["goVersion"]
            .as_str()
            .is_some_and(|s| s.starts_with("rustc ")),
        "{out}"
    );
    // kubectl compared the versions without complaint (no skew warning on stderr).
    assert!(!out.stderr.contains("WARNING"), "{out}");
}

#[test]
fn skiff_version_names_the_commit_too() {
    let mut cmd = Command::new(skiff_bin());
    cmd.arg("--version");
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    out.success();
    // "skiff 0.1.0 (commit <hash>, tree <state>, built <date> with rustc <version>)"
    let field = |after: &str, until: char| {
        out.stdout
            .split(after)
            .nth(1)
            .and_then(|s| s.split(until).next())
            .unwrap_or_default()
            .to_string()
    };
    assert_built_from_tree(&field("(commit ", ','), &field(", built ", ' '), &out);
}

#[test]
fn config_file_keys_are_flags_and_the_command_line_wins() {
    // The harness passes --https-listen-port and --data-dir itself: their keys here must lose.
    let c = Cluster::try_start_with_config(
        "https-listen-port: 1\n\
         data-dir: /nonexistent/skiff\n\
         service-node-port-range: 31200-31209\n\
         service-cidr: 10.45.0.0/16\n\
         tls-san: [config.skiff.test]\n\
         log: info\n",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ns = c.namespace("config-file");
    c.kubectl(&[
        "create", "service", "nodeport", "web", "--tcp=80", "-n", &ns,
    ])
    .success();
    let ip = c.jsonpath(&ns, "service/web", "{.spec.clusterIP}");
    assert!(
        ip.starts_with("10.45."),
        "clusterIP {ip} not from service-cidr"
    );
    let port: u16 = c
        .jsonpath(&ns, "service/web", "{.spec.ports[0].nodePort}")
        .parse()
        .expect("a nodePort");
    assert!((31200..=31209).contains(&port), "nodePort {port}");
    // tls-san reached the serving certificate.
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(format!(
        "openssl s_client -connect 127.0.0.1:{} -servername config.skiff.test </dev/null 2>/dev/null \
         | openssl x509 -noout -ext subjectAltName",
        c.port
    ));
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    assert!(out.stdout.contains("DNS:config.skiff.test"), "{out}");
}

#[test]
fn an_unknown_config_key_stops_the_server_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = dir.path().join("config.yaml");
    std::fs::write(&cfg, "https-listen-port: 7443\nnode-lable: [a=b]\n").unwrap();
    let mut cmd = Command::new(skiff_bin());
    cmd.arg("server")
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let out = run_command(cmd, None, COMMAND_TIMEOUT);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("unknown key \"node-lable\""), "{out}");
    assert!(out.stderr.contains(&cfg.display().to_string()), "{out}");
    assert!(
        !dir.path().join("data").exists(),
        "the server started anyway:\n{out}"
    );
}
