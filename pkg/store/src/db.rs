//! SQLite schema, connection setup, the read-only connection pool and the read queries.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Row};
use tokio::sync::Semaphore;

use crate::{Event, EventType, KeyValue, ListResult, StoreError};

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
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The `meta` key that holds the compact revision.
pub(crate) const COMPACT_KEY: &str = "compact_revision";

/// The `meta` key that holds how far compaction has removed superseded rows.
pub(crate) const PROGRESS_KEY: &str = "compact_progress";

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the write connection: creates the schema, turns on WAL with full fsync and
/// incremental auto-vacuum.
pub(crate) fn open_write(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Only takes effect on a new, empty database (before the first table exists).
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "sqlite refused WAL mode (got {mode}); put the database on a local file system"
        ))));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
    if synchronous != 2 {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "sqlite refused synchronous=FULL (got {synchronous}); check the sqlite build"
        ))));
    }
    // Shrink the WAL back to this size after checkpoints.
    conn.pragma_update(None, "journal_size_limit", 4 * 1024 * 1024)?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn open_read(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// The current revision, the compact revision and the compaction progress stored in the
/// database.
pub(crate) fn load_revisions(conn: &Connection) -> Result<(i64, i64, i64), StoreError> {
    let max_id: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM kv", [], |r| r.get(0))?;
    let seq: i64 = conn
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'kv'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let compact = compact_revision(conn)?;
    let progress = meta(conn, PROGRESS_KEY)?.min(compact);
    Ok((max_id.max(seq).max(compact), compact, progress))
}

fn meta(conn: &Connection, key: &str) -> Result<i64, StoreError> {
    let value = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()?;
    Ok(value.unwrap_or(0))
}

pub(crate) fn compact_revision(conn: &Connection) -> Result<i64, StoreError> {
    meta(conn, COMPACT_KEY)
}

/// A small pool of read-only connections; each read runs on tokio's blocking pool.
pub(crate) struct ReadPool {
    conns: Arc<parking_lot::Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    pub(crate) fn open(path: &Path, size: usize) -> Result<ReadPool, StoreError> {
        let conns = (0..size)
            .map(|_| open_read(path))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReadPool {
            conns: Arc::new(parking_lot::Mutex::new(conns)),
            permits: Arc::new(Semaphore::new(size)),
        })
    }

    /// Runs `f` on a free read connection. Cancellation-safe: the connection goes back to
    /// the pool even when the caller stops waiting.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let conns = self.conns.clone();
        let task = tokio::task::spawn_blocking(move || {
            let Some(mut conn) = conns.lock().pop() else {
                return Err(StoreError::Closed);
            };
            let result = f(&mut conn);
            conns.lock().push(conn);
            drop(permit);
            result
        });
        task.await.map_err(|err| {
            StoreError::Io(std::io::Error::other(format!("read task failed: {err}")))
        })?
    }
}

/// A half-open key range `[lo, hi)` that holds exactly the keys starting with a prefix.
#[derive(Clone, Debug)]
pub(crate) struct KeyRange {
    pub(crate) prefix: String,
    /// `None` when the range has no upper bound (empty prefix).
    pub(crate) end: Option<String>,
}

impl KeyRange {
    pub(crate) fn prefix(prefix: &str) -> KeyRange {
        // UTF-8 byte order equals code point order, so bumping the last character gives the
        // first string after every string that starts with the prefix.
        let mut chars: Vec<char> = prefix.chars().collect();
        let mut end = None;
        while let Some(last) = chars.pop() {
            let mut next = last as u32 + 1;
            if (0xD800..0xE000).contains(&next) {
                next = 0xE000;
            }
            if let Some(c) = char::from_u32(next) {
                chars.push(c);
                end = Some(chars.into_iter().collect());
                break;
            }
        }
        KeyRange {
            prefix: prefix.to_owned(),
            end,
        }
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        key.starts_with(&self.prefix)
    }
}

fn blob(row: &Row<'_>, idx: usize) -> rusqlite::Result<Arc<[u8]>> {
    let v: Vec<u8> = row.get(idx)?;
    Ok(Arc::from(v))
}

pub(crate) fn get(conn: &mut Connection, key: &str) -> Result<Option<KeyValue>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 \
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([key], |r| {
            let deleted: bool = r.get(1)?;
            Ok((!deleted).then_some((r.get(0)?, r.get(2)?, blob(r, 3)?)))
        })
        .optional()?;
    Ok(row.flatten().map(|(id, create, value)| KeyValue {
        key: key.to_owned(),
        value,
        create_revision: create,
        mod_revision: id,
    }))
}

/// SQL for "the latest row at or below a revision of every key in a range".
fn latest_rows_sql(range: &KeyRange, lower_exclusive: bool) -> String {
    let lower = if lower_exclusive {
        "name > ?1"
    } else {
        "name >= ?1"
    };
    let upper = if range.end.is_some() {
        " AND name < ?2"
    } else {
        " AND ?2 IS NULL"
    };
    format!("SELECT MAX(id) AS mid FROM kv WHERE {lower}{upper} AND id <= ?3 GROUP BY name")
}

pub(crate) fn list(
    conn: &mut Connection,
    range: &KeyRange,
    revision: i64,
    start_after: Option<String>,
    limit: usize,
) -> Result<ListResult, StoreError> {
    let tx = conn.transaction()?;
    let compact = compact_revision(&tx)?;
    if revision < compact {
        return Err(StoreError::Compacted {
            compact_revision: compact,
            requested: revision,
        });
    }
    let (lower, exclusive) = match start_after {
        Some(after) if after.as_str() >= range.prefix.as_str() => (after, true),
        _ => (range.prefix.clone(), false),
    };
    let inner = latest_rows_sql(range, exclusive);
    let fetch = if limit == 0 { -1 } else { limit as i64 + 1 };
    let mut kvs = Vec::new();
    {
        let sql = format!(
            "SELECT kv.id, kv.name, kv.create_revision, kv.value FROM ({inner}) AS m \
             JOIN kv ON kv.id = m.mid WHERE kv.deleted = 0 ORDER BY kv.name LIMIT ?4"
        );
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![lower, range.end, revision, fetch], |r| {
            Ok(KeyValue {
                mod_revision: r.get(0)?,
                key: r.get(1)?,
                create_revision: r.get(2)?,
                value: blob(r, 3)?,
            })
        })?;
        for row in rows {
            kvs.push(row?);
        }
    }
    let more = limit > 0 && kvs.len() > limit;
    let mut remaining = 0;
    if more {
        kvs.truncate(limit);
        let last = kvs.last().map(|kv| kv.key.clone()).unwrap_or_default();
        let inner = latest_rows_sql(range, true);
        let sql = format!(
            "SELECT COUNT(*) FROM ({inner}) AS m JOIN kv ON kv.id = m.mid WHERE kv.deleted = 0"
        );
        remaining = tx
            .prepare_cached(&sql)?
            .query_row(params![last, range.end, revision], |r| r.get(0))?;
    }
    tx.commit()?;
    Ok(ListResult {
        kvs,
        revision,
        more,
        remaining,
    })
}

pub(crate) fn count(conn: &mut Connection, range: &KeyRange) -> Result<i64, StoreError> {
    let inner = latest_rows_sql(range, false);
    let sql = format!(
        "SELECT COUNT(*) FROM ({inner}) AS m JOIN kv ON kv.id = m.mid WHERE kv.deleted = 0"
    );
    let n = conn
        .prepare_cached(&sql)?
        .query_row(params![range.prefix, range.end, i64::MAX], |r| r.get(0))?;
    Ok(n)
}

/// Turns a `kv` row (id, name, created, deleted, create_revision, prev_revision, value,
/// old_value) into the event it recorded.
fn event_from_row(r: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(build_event(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        blob(r, 6)?,
        r.get(7)?,
    ))
}

/// The event a log row records (the row's columns, as both engines store them).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_event(
    id: i64,
    key: String,
    created: bool,
    deleted: bool,
    create_revision: i64,
    prev_revision: i64,
    value: Arc<[u8]>,
    old_value: Option<Vec<u8>>,
) -> Event {
    let kv = KeyValue {
        key: key.clone(),
        value: value.clone(),
        create_revision,
        mod_revision: id,
    };
    let (kind, prev) = if deleted {
        let prev = KeyValue {
            key,
            value,
            create_revision,
            mod_revision: prev_revision,
        };
        (EventType::Delete, Some(prev))
    } else if created {
        (EventType::Put, None)
    } else {
        let prev = old_value.map(|old| KeyValue {
            key,
            value: Arc::from(old),
            create_revision,
            mod_revision: prev_revision,
        });
        (EventType::Put, prev)
    };
    Event { kind, kv, prev }
}

/// Up to `limit` events under `range` with revision > `after`, in revision order, read in one
/// snapshot that also checks the compact revision.
pub(crate) fn history(
    conn: &mut Connection,
    range: &KeyRange,
    after: i64,
    limit: usize,
) -> Result<Vec<Event>, StoreError> {
    let tx = conn.transaction()?;
    let compact = compact_revision(&tx)?;
    if after < compact {
        return Err(StoreError::Compacted {
            compact_revision: compact,
            requested: after,
        });
    }
    let upper = if range.end.is_some() {
        "name < ?3"
    } else {
        "?3 IS NULL"
    };
    let sql = format!(
        "SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value \
         FROM kv WHERE id > ?1 AND name >= ?2 AND {upper} ORDER BY id LIMIT ?4"
    );
    let mut events = Vec::new();
    {
        let mut stmt = tx.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![after, range.prefix, range.end, limit as i64],
            event_from_row,
        )?;
        for row in rows {
            events.push(row?);
        }
    }
    tx.commit()?;
    Ok(events)
}
