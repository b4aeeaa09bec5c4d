//! The writer thread: owns the write connection, group-commits every queued write in one
//! transaction, publishes the committed events, and runs compaction in small steps between
//! write batches.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::db::{COMPACT_KEY, PROGRESS_KEY};
use crate::{Core, Event, EventType, Feed, KeyValue, StoreError};

/// The most writes committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How many revisions one compaction step covers (one short transaction each).
const COMPACT_STEP: i64 = 2000;

pub(crate) enum WriteOp {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        value: Vec<u8>,
        expected: i64,
    },
    Delete {
        key: String,
        expected: i64,
    },
}

pub(crate) struct WriteOutcome {
    pub(crate) revision: i64,
    /// The deleted value, for deletes.
    pub(crate) deleted: Option<KeyValue>,
}

type WriteReply = oneshot::Sender<Result<WriteOutcome, StoreError>>;
type CompactReply = oneshot::Sender<Result<(), StoreError>>;

pub(crate) enum Request {
    Write { op: WriteOp, reply: WriteReply },
    Compact { revision: i64, reply: CompactReply },
}

/// A compaction in progress: rows superseded at or below `target` are removed step by step,
/// walking the superseding rows from `next` (exclusive) up to `target`.
struct CompactJob {
    target: i64,
    next: i64,
    waiters: Vec<CompactReply>,
}

struct Writer {
    conn: Connection,
    core: Arc<Core>,
    events: broadcast::Sender<Feed>,
    /// The last committed revision.
    revision: i64,
    /// The compact revision stored in the database.
    compact: i64,
    /// How far compaction has got: rows superseded by rows up to here are gone.
    compacted_through: i64,
    job: Option<CompactJob>,
}

pub(crate) fn spawn(
    conn: Connection,
    core: Arc<Core>,
    events: broadcast::Sender<Feed>,
    rx: mpsc::Receiver<Request>,
    revision: i64,
    compact: i64,
    compacted_through: i64,
) -> Result<(), StoreError> {
    let mut writer = Writer {
        conn,
        core,
        events,
        revision,
        compact,
        compacted_through,
        job: None,
    };
    std::thread::Builder::new()
        .name("skiff-store-writer".into())
        .spawn(move || writer.run(rx))?;
    Ok(())
}

/// The latest row of a key, as the writer needs it.
struct Latest {
    id: i64,
    deleted: bool,
    create_revision: i64,
    value: Vec<u8>,
}

impl Writer {
    fn run(&mut self, mut rx: mpsc::Receiver<Request>) {
        loop {
            let first = if self.job.is_some() {
                match rx.try_recv() {
                    Ok(req) => Some(req),
                    Err(mpsc::error::TryRecvError::Empty) => None,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            } else {
                match rx.blocking_recv() {
                    Some(req) => Some(req),
                    None => return,
                }
            };
            if let Some(first) = first {
                let mut writes = Vec::new();
                let mut compacts = Vec::new();
                let mut next = Some(first);
                while let Some(req) = next.take() {
                    match req {
                        Request::Write { op, reply } => writes.push((op, reply)),
                        Request::Compact { revision, reply } => compacts.push((revision, reply)),
                    }
                    if writes.len() < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !writes.is_empty() {
                    self.commit_batch(writes);
                }
                for (revision, reply) in compacts {
                    self.start_compaction(revision, reply);
                }
            }
            if self.job.is_some() {
                self.compact_step();
            }
        }
    }

    /// Applies every write in one transaction, commits once, publishes, then replies.
    fn commit_batch(&mut self, writes: Vec<(WriteOp, WriteReply)>) {
        let mut results = Vec::with_capacity(writes.len());
        let mut events = Vec::new();
        let outcome = (|| -> Result<(), rusqlite::Error> {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut revision = self.revision;
            for (op, _) in &writes {
                match apply(&tx, op, revision + 1)? {
                    Ok((outcome, event)) => {
                        revision = outcome.revision;
                        events.push(event);
                        results.push(Ok(outcome));
                    }
                    Err(err) => results.push(Err(err)),
                }
            }
            tx.commit()?;
            self.revision = revision;
            Ok(())
        })();
        if let Err(err) = outcome {
            tracing::error!(error = %err, "store write batch failed; rolled back");
            let msg = err.to_string();
            for (_, reply) in writes {
                let _ = reply.send(Err(StoreError::Io(std::io::Error::other(format!(
                    "write not committed: {msg}"
                )))));
            }
            return;
        }
        self.core.current_rev.store(self.revision, Ordering::SeqCst);
        self.core.commits.fetch_add(1, Ordering::Relaxed);
        for event in events {
            // No receivers is fine: nobody is watching.
            let _ = self.events.send(Feed::Event(event));
        }
        for ((_, reply), result) in writes.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }

    fn start_compaction(&mut self, revision: i64, reply: CompactReply) {
        let revision = revision.min(self.revision);
        if revision <= self.compact {
            if let Some(job) = self.job.as_mut() {
                job.waiters.push(reply);
            } else {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        if let Err(err) = self.set_compact_revision(revision) {
            let _ = reply.send(Err(err.into()));
            return;
        }
        match self.job.as_mut() {
            Some(job) => {
                job.target = revision;
                job.waiters.push(reply);
            }
            None => {
                self.job = Some(CompactJob {
                    target: revision,
                    next: self.compacted_through,
                    waiters: vec![reply],
                })
            }
        }
    }

    fn set_compact_revision(&mut self, revision: i64) -> Result<(), rusqlite::Error> {
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![COMPACT_KEY, revision],
        )?;
        self.compact = revision;
        self.core.compact_rev.store(revision, Ordering::SeqCst);
        Ok(())
    }

    /// Removes one step of superseded rows; finishes the job with a vacuum and a WAL
    /// checkpoint once the target is reached.
    fn compact_step(&mut self) {
        let Some((lo, target)) = self.job.as_ref().map(|job| (job.next, job.target)) else {
            return;
        };
        let hi = (lo + COMPACT_STEP).min(target);
        let step = (|| -> Result<(), rusqlite::Error> {
            let tx = self.conn.transaction()?;
            // A row is superseded when a newer row of its key points back at it.
            tx.prepare_cached(
                "DELETE FROM kv WHERE id IN (SELECT prev_revision FROM kv \
                 WHERE id > ?1 AND id <= ?2 AND prev_revision > 0)",
            )?
            .execute(params![lo, hi])?;
            tx.prepare_cached("DELETE FROM kv WHERE id > ?1 AND id <= ?2 AND deleted = 1")?
                .execute(params![lo, hi])?;
            tx.prepare_cached(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute(params![PROGRESS_KEY, hi])?;
            tx.commit()
        })();
        if let Err(err) = step {
            tracing::error!(error = %err, "store compaction step failed");
            if let Some(job) = self.job.take() {
                let msg = err.to_string();
                for reply in job.waiters {
                    let _ = reply.send(Err(StoreError::Io(std::io::Error::other(format!(
                        "compaction failed: {msg}"
                    )))));
                }
            }
            return;
        }
        self.compacted_through = hi;
        if hi < target {
            if let Some(job) = self.job.as_mut() {
                job.next = hi;
            }
            return;
        }
        let Some(job) = self.job.take() else {
            return;
        };
        let tidy = vacuum_and_checkpoint(&self.conn);
        if let Err(err) = tidy {
            tracing::warn!(error = %err, "store vacuum or checkpoint after compaction failed");
        }
        tracing::debug!(revision = target, "store compacted");
        for reply in job.waiters {
            let _ = reply.send(Ok(()));
        }
    }
}

/// Returns free pages to the file system, then moves the WAL into the database and truncates
/// it. A checkpoint that readers hold back is not an error; the next one finishes it.
fn vacuum_and_checkpoint(conn: &Connection) -> Result<(), rusqlite::Error> {
    // Each step of incremental_vacuum frees pages; run it to the end.
    let mut stmt = conn.prepare_cached("PRAGMA incremental_vacuum")?;
    let mut rows = stmt.query([])?;
    while rows.next()?.is_some() {}
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
}

fn latest(conn: &Connection, key: &str) -> Result<Option<Latest>, rusqlite::Error> {
    conn.prepare_cached(
        "SELECT id, deleted, create_revision, value FROM kv WHERE name = ?1 \
         ORDER BY id DESC LIMIT 1",
    )?
    .query_row([key], |r| {
        Ok(Latest {
            id: r.get(0)?,
            deleted: r.get(1)?,
            create_revision: r.get(2)?,
            value: r.get(3)?,
        })
    })
    .optional()
}

struct NewRow<'a> {
    id: i64,
    key: &'a str,
    created: bool,
    deleted: bool,
    create_revision: i64,
    prev_revision: i64,
    value: &'a [u8],
    old_value: Option<&'a [u8]>,
}

fn insert(conn: &Connection, row: &NewRow<'_>) -> Result<(), rusqlite::Error> {
    conn.prepare_cached(
        "INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value, \
         old_value) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        row.id,
        row.key,
        row.created,
        row.deleted,
        row.create_revision,
        row.prev_revision,
        row.value,
        row.old_value
    ])?;
    Ok(())
}

/// Checks and applies one write at `revision`. The outer error is SQLite failing (the whole
/// batch rolls back); the inner error is this write being refused (the others go on).
#[allow(clippy::type_complexity)]
fn apply(
    conn: &Connection,
    op: &WriteOp,
    revision: i64,
) -> Result<Result<(WriteOutcome, Event), StoreError>, rusqlite::Error> {
    let kv = |key: &str, value: &[u8], create_revision: i64, mod_revision: i64| KeyValue {
        key: key.to_owned(),
        value: Arc::from(value),
        create_revision,
        mod_revision,
    };
    match op {
        WriteOp::Create { key, value } => {
            let current = latest(conn, key)?;
            if current.as_ref().is_some_and(|l| !l.deleted) {
                return Ok(Err(StoreError::AlreadyExists));
            }
            insert(
                conn,
                &NewRow {
                    id: revision,
                    key,
                    created: true,
                    deleted: false,
                    create_revision: revision,
                    prev_revision: current.map_or(0, |l| l.id),
                    value,
                    old_value: None,
                },
            )?;
            let event = Event {
                kind: EventType::Put,
                kv: kv(key, value, revision, revision),
                prev: None,
            };
            Ok(Ok((
                WriteOutcome {
                    revision,
                    deleted: None,
                },
                event,
            )))
        }
        WriteOp::Update {
            key,
            value,
            expected,
        } => {
            let current = match latest(conn, key)? {
                Some(l) if !l.deleted => l,
                _ => return Ok(Err(StoreError::NotFound)),
            };
            if *expected != 0 && *expected != current.id {
                return Ok(Err(StoreError::Conflict {
                    current_revision: current.id,
                }));
            }
            insert(
                conn,
                &NewRow {
                    id: revision,
                    key,
                    created: false,
                    deleted: false,
                    create_revision: current.create_revision,
                    prev_revision: current.id,
                    value,
                    old_value: Some(&current.value),
                },
            )?;
            let event = Event {
                kind: EventType::Put,
                kv: kv(key, value, current.create_revision, revision),
                prev: Some(kv(key, &current.value, current.create_revision, current.id)),
            };
            Ok(Ok((
                WriteOutcome {
                    revision,
                    deleted: None,
                },
                event,
            )))
        }
        WriteOp::Delete { key, expected } => {
            let current = match latest(conn, key)? {
                Some(l) if !l.deleted => l,
                _ => return Ok(Err(StoreError::NotFound)),
            };
            if *expected != 0 && *expected != current.id {
                return Ok(Err(StoreError::Conflict {
                    current_revision: current.id,
                }));
            }
            insert(
                conn,
                &NewRow {
                    id: revision,
                    key,
                    created: false,
                    deleted: true,
                    create_revision: current.create_revision,
                    prev_revision: current.id,
                    value: &current.value,
                    old_value: None,
                },
            )?;
            let prev = kv(key, &current.value, current.create_revision, current.id);
            let event = Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    mod_revision: revision,
                    ..prev.clone()
                },
                prev: Some(prev.clone()),
            };
            Ok(Ok((
                WriteOutcome {
                    revision,
                    deleted: Some(prev),
                },
                event,
            )))
        }
    }
}
