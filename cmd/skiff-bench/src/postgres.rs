//! The PostgreSQL engine: a throwaway cluster (Debian's postgresql, `skiff_store::pgcluster`),
//! skiff serving from it (`--datastore-endpoint`), and its floor — raw INSERTs of the same
//! value into a table of skiff's log shape, one transaction (one WAL flush, which PostgreSQL
//! shares between concurrent commits) per insert, one connection per client.

use crate::error::{BenchError, Result};
use crate::load::{CpuMark, Limits, LoadResult};
use crate::stats::us;
use bytes::Bytes;
use skiff_store::pgcluster::PgCluster;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// The same table shape, indexes and unique constraint as skiff's `skiff_kv`.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS raw_kv (
    id BIGSERIAL PRIMARY KEY,
    name TEXT COLLATE \"C\" NOT NULL,
    created BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    create_revision BIGINT NOT NULL,
    prev_revision BIGINT NOT NULL,
    value BYTEA NOT NULL,
    old_value BYTEA
);
CREATE INDEX IF NOT EXISTS raw_kv_name_id ON raw_kv (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS raw_kv_name_prev ON raw_kv (name, prev_revision);
";

const INSERT: &str = "INSERT INTO raw_kv (name, created, deleted, create_revision, \
     prev_revision, value) VALUES ($1, true, false, 0, 0, $2)";

fn pg_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Phase(format!("postgres {what}: {e}"))
}

/// A running throwaway cluster with one database for skiff and one for the raw inserts.
pub struct Postgres {
    /// Stopped and removed on drop.
    _cluster: PgCluster,
    pub version: String,
    /// `--datastore-endpoint` for the skiff server.
    pub skiff_url: String,
    raw_url: String,
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let config = tokio_postgres::Config::from_str(url).map_err(|e| pg_err("url", e))?;
    let (client, conn) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| pg_err("connect", e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// Starts the cluster (fails with what to install when PostgreSQL is missing).
pub async fn start() -> Result<Postgres> {
    let cluster = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .map_err(|e| pg_err("start", e))?
        .map_err(|e| pg_err("start", e))?;
    let skiff_url = cluster
        .create_database("skiff")
        .await
        .map_err(|e| pg_err("create database", e))?;
    let raw_url = cluster
        .create_database("raw")
        .await
        .map_err(|e| pg_err("create database", e))?;
    let client = connect(&raw_url).await?;
    client
        .batch_execute(SCHEMA)
        .await
        .map_err(|e| pg_err("schema", e))?;
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(|e| pg_err("version", e))?
        .get(0);
    let fsync: String = client
        .query_one("SHOW fsync", &[])
        .await
        .map_err(|e| pg_err("settings", e))?
        .get(0);
    let sync_commit: String = client
        .query_one("SHOW synchronous_commit", &[])
        .await
        .map_err(|e| pg_err("settings", e))?
        .get(0);
    if fsync != "on" || sync_commit != "on" {
        return Err(pg_err(
            "settings",
            format!("fsync={fsync}, synchronous_commit={sync_commit}: the comparison needs durable commits (both on)"),
        ));
    }
    Ok(Postgres {
        _cluster: cluster,
        version,
        skiff_url,
        raw_url,
    })
}

/// `clients` connections each INSERT back to back (autocommit: one durable commit per row).
pub async fn insert_load(
    pg: &Postgres,
    round: usize,
    clients: usize,
    limits: Limits,
    value: Bytes,
) -> Result<LoadResult> {
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = connect(&pg.raw_url).await?;
        let stmt = client
            .prepare(INSERT)
            .await
            .map_err(|e| pg_err("prepare", e))?;
        conns.push((client, stmt));
    }
    let counter = Arc::new(AtomicU64::new(0));
    let cpu = CpuMark::start("self");
    let start = Instant::now();
    let deadline = start + limits.duration;
    let mut tasks = Vec::new();
    for (client, stmt) in conns {
        let counter = counter.clone();
        let value = value.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut first_error = None;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= limits.max_ops {
                    break;
                }
                let name = format!("/registry/pods/default/r{round}-c{clients}-{i}");
                let t0 = Instant::now();
                match client.execute(&stmt, &[&name, &&value[..]]).await {
                    Ok(_) => lat.push(us(t0.elapsed())),
                    Err(e) => {
                        first_error = Some(e.to_string());
                        break;
                    }
                }
            }
            (lat, first_error)
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| pg_err("insert task", e))?;
        lat.extend(l);
        if let Some(e) = e {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let elapsed = start.elapsed();
    let mut r = LoadResult {
        clients,
        ops: lat.len() as u64,
        errors,
        first_error,
        commits: Some(lat.len() as u64),
        ..Default::default()
    };
    r.finish(elapsed, lat, None, cpu.used());
    Ok(r)
}
