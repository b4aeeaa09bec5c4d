//! skiff's revisioned key-value log with watch (kine-style), on SQLite in WAL mode or on a
//! PostgreSQL database shared by several servers.
//!
//! Every write appends one row to the log; the row id is the global revision (the
//! Kubernetes `resourceVersion`). SQLite: one writer thread owns the write connection and
//! commits everything queued in one transaction (group commit, one fsync); reads use a small
//! pool of read-only connections; watchers replay history from SQLite and then follow an
//! in-process broadcast that the writer publishes after each commit. PostgreSQL (`pg.rs`):
//! the same log and group commit, revisions from a counter row every write transaction
//! locks, and the broadcast fed by LISTEN/NOTIFY plus catch-up reads by revision, so watchers
//! see every server's writes. A background task compacts superseded rows.
//! [`Store::open_endpoint`] picks the engine from a k3s-style `--datastore-endpoint`.

mod db;
mod engine;
mod etcd;
pub mod etcdserver;
mod pg;
pub mod pgcluster;
mod watch;
mod writer;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

pub use watch::Watcher;

use db::{KeyRange, ReadPool};
use engine::Engine;
use writer::{Request, WriteOp, WriteOutcome};

/// How many events the in-process broadcast keeps for live watchers; a watcher that falls
/// further behind re-reads the missed events from SQLite.
const EVENT_CAPACITY: usize = 8192;
/// How many write requests may wait for the writer thread before callers are held back.
const REQUEST_QUEUE: usize = 8192;

/// Tuning of a [`Store`].
#[derive(Clone, Debug)]
pub struct Options {
    /// How often the background compactor runs; `Duration::ZERO` turns it off.
    pub compact_interval: Duration,
    /// How many most recent revisions the background compactor keeps.
    pub compact_keep_revisions: i64,
    /// The compactor also keeps every revision written within this window, so a watcher that
    /// reconnects after a short break resumes instead of re-listing (kube-apiserver compacts
    /// etcd every 5 minutes for the same reason). `Duration::ZERO`: revision count only.
    pub compact_keep_for: Duration,
    /// How many read-only SQLite connections serve reads (at least 1).
    pub read_connections: usize,
    /// TLS to the datastore: etcd over `https://`, or PostgreSQL (see [`Store::open_postgres`]).
    pub tls: DatastoreTls,
}

/// TLS files for the datastore connection, k3s's `--datastore-cafile`, `--datastore-certfile`
/// and `--datastore-keyfile`: the CA that signed the datastore's certificate (the system's
/// roots when unset) and a client certificate with its key (both or neither).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DatastoreTls {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl DatastoreTls {
    /// Whether any TLS file is given.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            compact_interval: Duration::from_secs(30),
            compact_keep_revisions: 1000,
            compact_keep_for: Duration::from_secs(60),
            read_connections: 4,
            tls: DatastoreTls::default(),
        }
    }
}

/// One key at one revision.
#[derive(Clone, Debug)]
pub struct KeyValue {
    pub key: String,
    pub value: Arc<[u8]>,
    /// The revision that created this incarnation of the key.
    pub create_revision: i64,
    /// The revision of the write that produced this value.
    pub mod_revision: i64,
}

/// What a watch event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventType {
    Put,
    Delete,
}

/// One change, as seen by a watcher.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    /// For `Put`: the new value. For `Delete`: the deleted value, with `mod_revision` set to
    /// the delete's revision.
    pub kv: KeyValue,
    /// The value before this event: set for updates and deletes, `None` for creates.
    pub prev: Option<KeyValue>,
}

impl Event {
    /// The revision of the write that produced this event.
    pub fn revision(&self) -> i64 {
        self.kv.mod_revision
    }
}

/// What the store's broadcast carries to this process's watchers.
#[derive(Clone, Debug)]
pub(crate) enum Feed {
    /// The next committed event, in revision order.
    Event(Event),
    /// The broadcast skipped events (they were compacted before this process read them):
    /// watchers re-read from the engine.
    Resync,
}

/// Where the data lives, from a k3s-style `--datastore-endpoint`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Datastore {
    /// A SQLite file (the default: empty endpoint, or `sqlite://PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…` or `postgresql://…`), kept as written.
    Postgres(String),
    /// etcd v3 endpoints (`http://HOST:2379` or `https://HOST:2379`, comma-separated for
    /// several, all with the same scheme).
    Etcd(Vec<String>),
}

impl Datastore {
    /// Reads `--datastore-endpoint`: empty means SQLite at `default_sqlite`; `sqlite://PATH`
    /// (query parameters ignored, empty path = the default), `postgres://` and
    /// `postgresql://` URLs; etcd endpoints (`http://` or `https://`, comma-separated); unknown
    /// schemes are refused with what to use instead.
    pub fn parse(endpoint: &str, default_sqlite: &Path) -> Result<Datastore, StoreError> {
        let endpoint = endpoint.trim();
        if endpoint.is_empty() {
            return Ok(Datastore::Sqlite(default_sqlite.to_path_buf()));
        }
        if let Some(rest) = endpoint.strip_prefix("sqlite://") {
            let path = rest.split('?').next().unwrap_or("");
            return Ok(Datastore::Sqlite(if path.is_empty() {
                default_sqlite.to_path_buf()
            } else {
                PathBuf::from(path)
            }));
        }
        if endpoint.starts_with("postgres://") || endpoint.starts_with("postgresql://") {
            return Ok(Datastore::Postgres(endpoint.to_owned()));
        }
        if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            let endpoints: Vec<String> = endpoint
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect();
            let https = endpoints[0].starts_with("https://");
            if let Some(other) = endpoints
                .iter()
                .find(|e| e.starts_with("https://") != https)
            {
                return Err(StoreError::Endpoint(format!(
                    "{other}: every etcd endpoint must use the same scheme; list only http:// or only https:// endpoints"
                )));
            }
            return Ok(Datastore::Etcd(endpoints));
        }
        let scheme = endpoint.split("://").next().unwrap_or(endpoint);
        Err(StoreError::Endpoint(format!(
            "unknown datastore scheme {scheme:?}; use sqlite://PATH, postgres://USER:PASSWORD@HOST:PORT/DATABASE or etcd's https://HOST:2379"
        )))
    }
}

/// Paging and point-in-time options of [`Store::list`].
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// The revision to read at; 0 means the latest.
    pub revision: i64,
    /// Only keys strictly after this one (for continue tokens).
    pub start_after: Option<String>,
    /// At most this many keys; 0 means all.
    pub limit: usize,
}

/// One page of a [`Store::list`].
#[derive(Clone, Debug)]
pub struct ListResult {
    /// Live keys under the prefix, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The revision the list was read at.
    pub revision: i64,
    /// Whether more keys follow this page.
    pub more: bool,
    /// How many keys follow this page (0 when `more` is false).
    pub remaining: i64,
}

/// Everything that can go wrong in the store.
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("key not found")]
    NotFound,
    #[error("key already exists; update it instead or delete it first")]
    AlreadyExists,
    #[error(
        "revision conflict: the key is now at revision {current_revision}; re-read it and retry"
    )]
    Conflict { current_revision: i64 },
    #[error("revision {requested} has been compacted (oldest available is {compact_revision}); re-list to get a newer revision")]
    Compacted {
        compact_revision: i64,
        requested: i64,
    },
    #[error(
        "revision {requested} is newer than the current revision {current_revision}; retry later"
    )]
    FutureRevision {
        requested: i64,
        current_revision: i64,
    },
    #[error("the store is closed; restart the server")]
    Closed,
    #[error("invalid --datastore-endpoint: {0}")]
    Endpoint(String),
    #[error("cannot reach the datastore at {endpoint}: {reason}; check --datastore-endpoint and that the database server is running and reachable")]
    Unreachable { endpoint: String, reason: String },
    #[error("the datastore at {endpoint} refused the credentials: {reason}; check the user and password in --datastore-endpoint")]
    Credentials { endpoint: String, reason: String },
    #[error("the TLS connection to the datastore at {endpoint} failed: {reason}; check --datastore-cafile (the CA that signed the datastore's certificate), --datastore-certfile and --datastore-keyfile (a client certificate the datastore trusts)")]
    Tls { endpoint: String, reason: String },
    #[error("postgres: {0}; check the database server's log")]
    Postgres(String),
    #[error("etcd: {0}; check the etcd cluster's health and log")]
    Etcd(String),
    #[error("sqlite: {0}; check the database file and free disk space")]
    Sqlite(#[from] rusqlite::Error),
    #[error("io: {0}; check the data directory's permissions and free disk space")]
    Io(#[from] std::io::Error),
}

/// State shared by the store handle, the writer thread and the watchers.
pub(crate) struct Core {
    pub(crate) engine: Engine,
    pub(crate) current_rev: AtomicI64,
    pub(crate) compact_rev: AtomicI64,
    /// How many write transactions the writer has committed (for group-commit checks).
    pub(crate) commits: AtomicU64,
}

struct Inner {
    core: Arc<Core>,
    requests: mpsc::Sender<Request>,
    events: broadcast::Sender<Feed>,
    location: Location,
    compactor: parking_lot::Mutex<Option<tokio::task::AbortHandle>>,
    /// The PostgreSQL listener task.
    listener: Option<tokio::task::AbortHandle>,
}

enum Location {
    Sqlite(PathBuf),
    /// The endpoint without its password.
    Postgres(String),
    /// The endpoints.
    Etcd(String),
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(handle) = self.compactor.lock().take() {
            handle.abort();
        }
        if let Some(handle) = self.listener.take() {
            handle.abort();
        }
    }
}

/// A revisioned key-value store on one SQLite file or a PostgreSQL database. Cheap to clone;
/// all clones share one writer. The writer stops when the last clone is dropped.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let location = match &self.inner.location {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(endpoint) | Location::Etcd(endpoint) => endpoint.clone(),
        };
        f.debug_struct("Store")
            .field("location", &location)
            .field("current_revision", &self.current_revision())
            .field("compact_revision", &self.compact_revision())
            .finish()
    }
}

impl Store {
    /// Opens the datastore `endpoint` names (see [`Datastore::parse`]); SQLite at
    /// `default_sqlite` when it is empty. Must be called inside a tokio runtime.
    pub async fn open_endpoint(
        endpoint: &str,
        default_sqlite: &Path,
        opts: Options,
    ) -> Result<Store, StoreError> {
        let datastore = Datastore::parse(endpoint, default_sqlite)?;
        if opts.tls.is_set() && matches!(datastore, Datastore::Sqlite(_)) {
            return Err(StoreError::Endpoint(
                "--datastore-cafile, --datastore-certfile and --datastore-keyfile apply to etcd (https:// endpoints) and PostgreSQL (postgres:// endpoints) only; drop them for SQLite".into(),
            ));
        }
        match datastore {
            Datastore::Sqlite(path) => Self::open(&path, opts),
            Datastore::Postgres(url) => Self::open_postgres(&url, opts).await,
            Datastore::Etcd(endpoints) => Self::open_etcd(&endpoints, opts).await,
        }
    }

    /// Connects to etcd at `endpoints` (`http://HOST:2379`, or `https://HOST:2379` with
    /// `opts.tls`) and starts the write task and the compact-revision follower. Fails with
    /// `Unreachable` or `Credentials` when etcd cannot be used. Must be called inside a tokio
    /// runtime.
    pub async fn open_etcd(endpoints: &[String], opts: Options) -> Result<Store, StoreError> {
        let etcd = Arc::new(etcd::Etcd::open(endpoints, &opts.tls).await?);
        let (current, compact) = etcd.load_revisions().await?;
        let shown = etcd.display.clone();
        let core = Arc::new(Core {
            engine: Engine::Etcd(etcd.clone()),
            current_rev: AtomicI64::new(current),
            compact_rev: AtomicI64::new(compact),
            commits: AtomicU64::new(0),
        });
        // etcd's watches carry events; the broadcast stays empty.
        let (events, _) = broadcast::channel(1);
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE);
        tokio::spawn(etcd::run_writer(etcd.clone(), core.clone(), rx));
        let follower = tokio::spawn(etcd::run_follower(etcd, core.clone()));
        tracing::info!(endpoint = %shown, revision = current, "datastore: etcd");
        let inner = Arc::new(Inner {
            core,
            requests,
            events,
            location: Location::Etcd(shown),
            compactor: parking_lot::Mutex::new(None),
            listener: Some(follower.abort_handle()),
        });
        if !opts.compact_interval.is_zero() {
            let task = tokio::spawn(compactor(
                Arc::downgrade(&inner),
                opts.compact_interval,
                opts.compact_keep_revisions.max(0),
                opts.compact_keep_for,
            ));
            *inner.compactor.lock() = Some(task.abort_handle());
        }
        Ok(Store { inner })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://USER:PASSWORD@HOST:PORT/DB`),
    /// creates the schema if missing and starts the write and listen tasks. TLS is used when
    /// `opts.tls` names any file or the URL has `sslmode=require`; the server's certificate is
    /// then verified against `opts.tls.ca_file` (else the system's roots) for the URL's host.
    /// The default `sslmode=prefer` without files connects in plain text; `sslmode=disable`
    /// with files is refused. Fails with `Unreachable`, `Credentials` or `Tls` when the
    /// database cannot be used. Must be called inside a tokio runtime.
    pub async fn open_postgres(url: &str, opts: Options) -> Result<Store, StoreError> {
        let pg = Arc::new(pg::Pg::open(url, opts.read_connections.max(1) + 2, &opts.tls).await?);
        let (current, compact) = pg.load_revisions().await?;
        let shown = pg.display.clone();
        let core = Arc::new(Core {
            engine: Engine::Postgres(pg.clone()),
            current_rev: AtomicI64::new(current),
            compact_rev: AtomicI64::new(compact),
            commits: AtomicU64::new(0),
        });
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE);
        tokio::spawn(pg::run_writer(pg.clone(), core.clone(), rx));
        let listener = tokio::spawn(pg::run_listener(pg, core.clone(), events.clone(), current));
        tracing::info!(endpoint = %shown, revision = current, "datastore: postgres");
        let inner = Arc::new(Inner {
            core,
            requests,
            events,
            location: Location::Postgres(shown),
            compactor: parking_lot::Mutex::new(None),
            listener: Some(listener.abort_handle()),
        });
        if !opts.compact_interval.is_zero() {
            let task = tokio::spawn(compactor(
                Arc::downgrade(&inner),
                opts.compact_interval,
                opts.compact_keep_revisions.max(0),
                opts.compact_keep_for,
            ));
            *inner.compactor.lock() = Some(task.abort_handle());
        }
        Ok(Store { inner })
    }

    /// Opens (or creates) the database at `path`, creating parent directories. Must be called
    /// inside a tokio runtime when background compaction is on.
    pub fn open(path: &Path, opts: Options) -> Result<Store, StoreError> {
        Self::open_with_capacity(path, opts, EVENT_CAPACITY)
    }

    pub(crate) fn open_with_capacity(
        path: &Path,
        opts: Options,
        event_capacity: usize,
    ) -> Result<Store, StoreError> {
        let runtime = if opts.compact_interval.is_zero() {
            None
        } else {
            Some(tokio::runtime::Handle::try_current().map_err(|_| {
                std::io::Error::other(
                    "background compaction needs a tokio runtime; open the store inside one",
                )
            })?)
        };
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)?;
            }
        }
        let conn = db::open_write(path)?;
        let (current, compact, progress) = db::load_revisions(&conn)?;
        let pool = ReadPool::open(path, opts.read_connections.max(1))?;
        let core = Arc::new(Core {
            engine: Engine::Sqlite(pool),
            current_rev: AtomicI64::new(current),
            compact_rev: AtomicI64::new(compact),
            commits: AtomicU64::new(0),
        });
        let (events, _) = broadcast::channel(event_capacity.max(1));
        let (requests, rx) = mpsc::channel(REQUEST_QUEUE);
        writer::spawn(
            conn,
            core.clone(),
            events.clone(),
            rx,
            current,
            compact,
            progress,
        )?;
        let inner = Arc::new(Inner {
            core,
            requests,
            events,
            location: Location::Sqlite(path.to_path_buf()),
            compactor: parking_lot::Mutex::new(None),
            listener: None,
        });
        if let Some(rt) = runtime {
            let task = rt.spawn(compactor(
                Arc::downgrade(&inner),
                opts.compact_interval,
                opts.compact_keep_revisions.max(0),
                opts.compact_keep_for,
            ));
            *inner.compactor.lock() = Some(task.abort_handle());
        }
        Ok(Store { inner })
    }

    /// The latest live value of `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let core = &self.inner.core;
        core.engine.get(core, key).await
    }

    /// The live keys under `prefix`, sorted by key, at `opts.revision` (0 = latest).
    pub async fn list(&self, prefix: &str, opts: ListOptions) -> Result<ListResult, StoreError> {
        let mut current = self.current_revision();
        let revision = if opts.revision <= 0 {
            current
        } else {
            opts.revision
        };
        if revision > current {
            // Another server may have written it: ask the engine before refusing.
            if let Some(shared) = self.inner.core.engine.shared_revision().await? {
                current = self
                    .inner
                    .core
                    .current_rev
                    .fetch_max(shared, Ordering::SeqCst)
                    .max(shared);
            }
        }
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current_revision: current,
            });
        }
        let compact = self.compact_revision();
        if revision < compact {
            return Err(StoreError::Compacted {
                compact_revision: compact,
                requested: revision,
            });
        }
        let core = &self.inner.core;
        // etcd reads "the latest" itself: other servers may have written since this store
        // last heard of a revision, and a read at the latest must see their writes.
        let revision = if opts.revision <= 0 && matches!(core.engine, Engine::Etcd(_)) {
            0
        } else {
            revision
        };
        core.engine
            .list(
                core,
                KeyRange::prefix(prefix),
                revision,
                opts.start_after,
                opts.limit,
            )
            .await
    }

    /// How many live keys are under `prefix`.
    pub async fn count(&self, prefix: &str) -> Result<i64, StoreError> {
        let core = &self.inner.core;
        core.engine.count(core, KeyRange::prefix(prefix)).await
    }

    /// Creates `key`; fails with `AlreadyExists` when it is live. Returns the new revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<i64, StoreError> {
        let out = self
            .write(WriteOp::Create {
                key: key.to_owned(),
                value,
            })
            .await?;
        Ok(out.revision)
    }

    /// Replaces the value of a live `key`. `expected_mod_revision` 0 means unconditional;
    /// otherwise the key's current revision must match or `Conflict` is returned.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected_mod_revision: i64,
    ) -> Result<i64, StoreError> {
        let out = self
            .write(WriteOp::Update {
                key: key.to_owned(),
                value,
                expected: expected_mod_revision,
            })
            .await?;
        Ok(out.revision)
    }

    /// Deletes a live `key` (`expected_mod_revision` 0 = whatever its revision). Returns the
    /// delete's revision and the deleted value.
    pub async fn delete(
        &self,
        key: &str,
        expected_mod_revision: i64,
    ) -> Result<(i64, KeyValue), StoreError> {
        let out = self
            .write(WriteOp::Delete {
                key: key.to_owned(),
                expected: expected_mod_revision,
            })
            .await?;
        let deleted = out.deleted.ok_or(StoreError::Closed)?;
        Ok((out.revision, deleted))
    }

    async fn write(&self, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Write { op, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Watches keys under `prefix` for events with revision > `after_revision`, in revision
    /// order, without gaps or duplicates. Fails with `Compacted` when `after_revision` is
    /// older than the compact revision.
    pub fn watch(&self, prefix: &str, after_revision: i64) -> Result<Watcher, StoreError> {
        let after_revision = after_revision.max(0);
        let rx = self.inner.events.subscribe();
        let compact = self.compact_revision();
        if after_revision < compact {
            return Err(StoreError::Compacted {
                compact_revision: compact,
                requested: after_revision,
            });
        }
        if let Engine::Etcd(etcd) = &self.inner.core.engine {
            return Ok(Watcher::etcd(etcd::EtcdWatcher::new(
                etcd.clone(),
                self.inner.core.clone(),
                KeyRange::prefix(prefix),
                after_revision,
                rx,
            )));
        }
        // Subscribed before reading the current revision: every event after it reaches `rx`.
        let caught_up = after_revision >= self.current_revision();
        Ok(Watcher::new(
            self.inner.core.clone(),
            KeyRange::prefix(prefix),
            after_revision,
            rx,
            caught_up,
        ))
    }

    /// The revision of the latest committed write.
    pub fn current_revision(&self) -> i64 {
        self.inner.core.current_rev.load(Ordering::SeqCst)
    }

    /// The oldest revision that lists and watches can still start from.
    pub fn compact_revision(&self) -> i64 {
        self.inner.core.compact_rev.load(Ordering::SeqCst)
    }

    /// Removes history at or below `revision` (rows superseded by a newer row of the same key,
    /// and tombstones); on SQLite then checkpoints the WAL and returns free pages to the file
    /// system.
    /// A revision at or below the compact revision is a no-op.
    pub async fn compact(&self, revision: i64) -> Result<(), StoreError> {
        let current = self.current_revision();
        if revision > current {
            return Err(StoreError::FutureRevision {
                requested: revision,
                current_revision: current,
            });
        }
        if revision <= self.compact_revision() {
            return Ok(());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Compact { revision, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// The path of the SQLite database file (`None` on PostgreSQL).
    pub fn db_path(&self) -> Option<&Path> {
        match &self.inner.location {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) | Location::Etcd(_) => None,
        }
    }

    /// Which engine serves this store: `sqlite`, `postgres` or `etcd`.
    pub fn engine_name(&self) -> &'static str {
        match self.inner.location {
            Location::Sqlite(_) => "sqlite",
            Location::Postgres(_) => "postgres",
            Location::Etcd(_) => "etcd",
        }
    }
}

/// Compacts to `current - keep` every `interval` while the store is alive.
async fn compactor(store: Weak<Inner>, interval: Duration, keep: i64, keep_for: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    // (when, current revision then): the revisions older than `keep_for` are the ones recorded
    // at least that long ago.
    let mut samples: std::collections::VecDeque<(std::time::Instant, i64)> = Default::default();
    loop {
        tick.tick().await;
        let Some(inner) = store.upgrade() else {
            return;
        };
        let store = Store { inner };
        let now = std::time::Instant::now();
        let current = store.current_revision();
        samples.push_back((now, current));
        let target = compaction_target(&mut samples, now, current, keep, keep_for);
        if target > store.compact_revision() {
            if let Err(err) = store.compact(target).await {
                tracing::warn!(error = %err, target, "background compaction failed");
            }
        }
    }
}

/// The revision to compact to: at least `keep` revisions stay, and with a `keep_for` window
/// every revision newer than the newest sample older than the window stays too. Samples no
/// longer needed are dropped.
fn compaction_target(
    samples: &mut std::collections::VecDeque<(std::time::Instant, i64)>,
    now: std::time::Instant,
    current: i64,
    keep: i64,
    keep_for: Duration,
) -> i64 {
    let by_count = current - keep;
    if keep_for.is_zero() {
        samples.clear();
        return by_count;
    }
    // The newest sample at least `keep_for` old bounds what may go.
    let mut old_enough = None;
    while let Some(&(t, rev)) = samples.front() {
        if now.duration_since(t) >= keep_for {
            old_enough = Some(rev);
            samples.pop_front();
        } else {
            break;
        }
    }
    if let Some(rev) = old_enough {
        // Keep it as the oldest sample: it still bounds the next round.
        samples.push_front((now - keep_for, rev));
    }
    match old_enough {
        Some(rev) => by_count.min(rev),
        None => 0,
    }
}
