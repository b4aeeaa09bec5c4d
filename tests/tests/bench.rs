//! End-to-end: `skiff-bench --smoke` still runs every phase of the benchmark against the built
//! server (start-up, creates, GET, LIST, watch, kill -9 + restart; SQLite floor; etcd and
//! PostgreSQL, raw and under skiff) in seconds, so a change that breaks the bench fails the
//! tests instead of surfacing at the next benchmark run.

use skiff_e2e::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn bench_smoke_runs_every_phase() {
    let bench = bench_bin();
    assert!(
        bench.is_file(),
        "{} not found: build it with `cargo build -p skiff -p skiff-bench` (or point SKIFF_BENCH_BIN at it)",
        bench.display()
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("smoke.json");
    let mut cmd = Command::new(&bench);
    cmd.arg("--smoke")
        .arg("--skiff-bin")
        .arg(skiff_bin())
        .arg("--tmp-dir")
        .arg(dir.path())
        .arg("--out")
        .arg(&json);
    let out = run_command(cmd, None, Duration::from_secs(240));
    out.success();
    let text = std::fs::read_to_string(&json).expect("the bench wrote its JSON report");
    let r: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
    let s = &r["skiff"];
    assert!(
        r["errors"].as_array().is_some_and(|e| e.is_empty()),
        "{out}"
    );
    assert_eq!(r["skipped"], serde_json::json!([]), "{out}");
    assert!(s["cold_start_median_ms"].as_f64().is_some(), "{out}");
    assert!(s["warm_restart_median_ms"].as_f64().is_some(), "{out}");
    let creates = s["creates"].as_array().expect("creates");
    assert_eq!(
        creates.len(),
        2,
        "one create phase per level (1, 4):\n{out}"
    );
    for c in creates {
        assert!(c["ops"].as_u64().unwrap_or(0) > 0, "no creates: {c}\n{out}");
        assert_eq!(c["errors"], 0, "failed creates: {c}\n{out}");
    }
    assert!(s["get"]["ops"].as_u64().unwrap_or(0) > 0, "{out}");
    assert_eq!(s["list"]["pods"], 20, "{out}");
    let w = &s["watch"];
    assert!(w["events_expected"].as_u64().unwrap_or(0) > 0, "{out}");
    assert_eq!(w["events_received"], w["events_expected"], "{out}");
    assert_eq!(s["acked_missing_after_kill9"], 0, "{out}");
    assert!(s["acked_creates"].as_u64().unwrap_or(0) > 0, "{out}");
    assert_eq!(
        r["sqlite"]["group"].as_array().map(Vec::len),
        Some(2),
        "{out}"
    );
    // The other engines: raw etcd puts and PostgreSQL inserts, and skiff serving from each.
    for (engine, raw) in [("etcd", "puts"), ("postgres", "inserts")] {
        for phase in [raw, "skiff_creates"] {
            let levels = r[engine][phase].as_array().expect(phase);
            assert_eq!(levels.len(), 2, "{engine} {phase}: one per level\n{out}");
            for l in levels {
                assert!(
                    l["ops"].as_u64().unwrap_or(0) > 0,
                    "{engine} {phase}: {l}\n{out}"
                );
                assert_eq!(l["errors"], 0, "{engine} {phase}: {l}\n{out}");
            }
        }
    }
    // Every child and temp dir is gone: only the report is left in --tmp-dir.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, [std::ffi::OsString::from("smoke.json")], "{out}");
}
