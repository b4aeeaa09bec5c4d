//! The floor: raw SQLite inserts with the durability skiff promises (WAL, synchronous=FULL),
//! one transaction (one fsync) per insert, and group commit behind N concurrent producers.

use crate::error::{BenchError, Result};
use crate::load::{CpuMark, Limits, LoadResult};
use crate::stats::us;
use bytes::Bytes;
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

/// Same table shape as skiff's revision log.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL,
    old_value BLOB
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
";

const INSERT: &str = "INSERT INTO kv (name, created, deleted, create_revision, prev_revision, value, old_value) VALUES (?1, 1, 0, 0, 0, ?2, NULL)";

/// Opens (creating) a database with WAL and synchronous=FULL, checking both took effect.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(BenchError::Phase(format!(
            "sqlite refused WAL mode (got {mode}); use a temp dir on a local file system"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    if sync != 2 {
        return Err(BenchError::Phase(format!(
            "sqlite refused synchronous=FULL (got {sync})"
        )));
    }
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

/// One thread, one autocommit INSERT (one fsync) per operation.
pub async fn single(db: &Path, limits: Limits, value: Bytes) -> Result<LoadResult> {
    let db = db.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<LoadResult> {
        let conn = open(&db)?;
        let mut stmt = conn.prepare_cached(INSERT)?;
        let cpu = CpuMark::start("self");
        let start = Instant::now();
        let deadline = start + limits.duration;
        let mut lat = Vec::new();
        let mut r = LoadResult {
            clients: 1,
            ..Default::default()
        };
        let mut i = 0u64;
        while i < limits.max_ops && Instant::now() < deadline {
            let t0 = Instant::now();
            stmt.execute(params![format!("/registry/pods/default/s-{i}"), &value[..]])?;
            lat.push(us(t0.elapsed()));
            i += 1;
        }
        r.ops = i;
        r.commits = Some(i);
        r.finish(start.elapsed(), lat, None, cpu.used());
        Ok(r)
    })
    .await
    .map_err(|e| BenchError::Phase(format!("sqlite single-insert thread failed: {e}")))?
}

struct Job {
    name: String,
    done: tokio::sync::oneshot::Sender<bool>,
}

/// `clients` producers hand inserts to one writer thread that commits everything queued in
/// one transaction (group commit), acknowledging each insert after its commit.
pub async fn group(db: &Path, clients: usize, limits: Limits, value: Bytes) -> Result<LoadResult> {
    let conn = open(db)?;
    let (tx, rx) = mpsc::channel::<Job>();
    let commits = Arc::new(AtomicU64::new(0));
    let writer_commits = commits.clone();
    let writer = std::thread::spawn(move || -> Result<()> {
        let mut conn = conn;
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            while let Ok(j) = rx.try_recv() {
                batch.push(j);
            }
            let t = conn.transaction()?;
            {
                let mut stmt = t.prepare_cached(INSERT)?;
                for j in &batch {
                    stmt.execute(params![j.name, &value[..]])?;
                }
            }
            t.commit()?;
            writer_commits.fetch_add(1, Ordering::Relaxed);
            for j in batch {
                let _ = j.done.send(true);
            }
        }
        Ok(())
    });
    let counter = Arc::new(AtomicU64::new(0));
    let cpu = CpuMark::start("self");
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let tx = tx.clone();
        let counter = counter.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= limits.max_ops {
                    break;
                }
                let (done, wait) = tokio::sync::oneshot::channel();
                let t0 = Instant::now();
                let job = Job {
                    name: format!("/registry/pods/default/g{clients}-{i}"),
                    done,
                };
                if tx.send(job).is_err() {
                    break;
                }
                match wait.await {
                    Ok(true) => lat.push(us(t0.elapsed())),
                    _ => break,
                }
            }
            lat
        }));
    }
    drop(tx);
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let elapsed = start.elapsed();
    // All senders are gone once the producers finished: the writer drains and exits.
    match writer.join() {
        Ok(res) => res?,
        Err(_) => return Err(BenchError::Phase("sqlite writer thread panicked".into())),
    }
    let mut r = LoadResult {
        clients,
        ops: lat.len() as u64,
        commits: Some(commits.load(Ordering::Relaxed)),
        ..Default::default()
    };
    r.finish(elapsed, lat, None, cpu.used());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits(n: u64) -> Limits {
        Limits {
            duration: Duration::from_secs(30),
            max_ops: n,
        }
    }

    #[test]
    fn open_sets_wal_and_full_sync() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir.path().join("db")).unwrap();
        let m: String = c
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(m, "wal");
        let s: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
        assert_eq!(s, 2);
    }

    #[tokio::test]
    async fn single_inserts_every_row_in_its_own_commit() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let r = single(&db, limits(50), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(r.ops, 50);
        assert_eq!(r.commits, Some(50));
        let c = open(&db).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn group_commit_batches_concurrent_inserts() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let r = group(&db, 16, limits(400), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        assert_eq!(r.ops, 400);
        let commits = r.commits.unwrap();
        assert!((1..=400).contains(&commits));
        let c = open(&db).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 400);
    }
}
