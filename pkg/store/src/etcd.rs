//! The etcd v3 engine: keys live under `/skiff/kv` in etcd, the revision is etcd's own
//! (`mod_revision` = resourceVersion), optimistic concurrency is a Txn comparing the key's
//! `mod_revision` (or `create_revision` for creates), watches are etcd's native watches from a
//! revision with previous values, and compaction is etcd's. etcd does not report its compact
//! revision, so skiff records the one it asks for under `/skiff/meta/compact_revision` (every
//! server reads it at start and follows it with a watch) and also learns it from etcd's
//! "compacted" answers.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Certificate, Client, CompactionOptions, Compare, CompareOp, ConnectOptions, GetOptions,
    Identity, SortOrder, SortTarget, TlsOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
};
use tokio::sync::{broadcast, mpsc};

use crate::db::KeyRange;
use crate::writer::{Request, WriteOp, WriteOutcome};
use crate::{Core, DatastoreTls, Event, EventType, Feed, KeyValue, ListResult, StoreError};

/// Every skiff key is stored under this prefix.
const KV_PREFIX: &str = "/skiff/kv";
/// Where the compact revision skiff asked etcd for is recorded.
const COMPACT_KEY: &str = "/skiff/meta/compact_revision";
/// How long connecting (and each request) may take before etcd counts as unreachable.
const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Etcd {
    client: Client,
    /// Whether the endpoints are https: transport errors may then be TLS failures.
    tls: bool,
    /// The endpoints, for messages.
    pub(crate) display: String,
}

fn etcd_key(key: &str) -> String {
    format!("{KV_PREFIX}{key}")
}

/// The etcd key range `[start, end)` of a skiff key range.
fn etcd_range(range: &KeyRange) -> (String, String) {
    let start = etcd_key(&range.prefix);
    let end = match &range.end {
        Some(end) => etcd_key(end),
        // Everything under the data prefix: the prefix with its last byte bumped.
        None => KeyRange::prefix(KV_PREFIX).end.unwrap_or_default(),
    };
    (start, end)
}

/// Whether an etcd error says the revision was compacted.
fn is_compacted(err: &etcd_client::Error) -> bool {
    err.to_string()
        .contains("required revision has been compacted")
}

/// An error with its sources, `: `-joined (tonic's transport errors keep the cause, e.g. a
/// certificate problem, in the source chain).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Whether a transport error's text says the TLS handshake failed (rather than the network).
fn is_tls_failure(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    ["certificate", "handshake", "tls", "unknownissuer", "alert"]
        .iter()
        .any(|w| reason.contains(w))
}

impl Etcd {
    fn err(&self, err: etcd_client::Error) -> StoreError {
        let reason = error_chain(&err);
        if self.tls && is_tls_failure(&reason) {
            return StoreError::Tls {
                endpoint: self.display.clone(),
                reason,
            };
        }
        match &err {
            etcd_client::Error::GRpcStatus(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
                ) =>
            {
                StoreError::Credentials {
                    endpoint: self.display.clone(),
                    reason: status.message().to_owned(),
                }
            }
            etcd_client::Error::GRpcStatus(status) if status.code() == tonic::Code::Unavailable => {
                StoreError::Unreachable {
                    endpoint: self.display.clone(),
                    reason,
                }
            }
            etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => {
                StoreError::Unreachable {
                    endpoint: self.display.clone(),
                    reason,
                }
            }
            _ => StoreError::Etcd(err.to_string()),
        }
    }

    /// Connects and checks that etcd answers (reachability and credentials at once).
    pub(crate) async fn open(endpoints: &[String], tls: &DatastoreTls) -> Result<Etcd, StoreError> {
        let display = endpoints.join(",");
        let mut options = ConnectOptions::new()
            .with_connect_timeout(TIMEOUT)
            .with_timeout(TIMEOUT)
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(10));
        if endpoints.iter().any(|e| e.starts_with("https://")) {
            options = options.with_tls(tls_options(tls)?);
        } else if tls.is_set() {
            return Err(StoreError::Endpoint(format!(
                "{display}: --datastore-cafile/--datastore-certfile/--datastore-keyfile need https:// etcd endpoints; use https:// or drop the files"
            )));
        }
        let client = match Client::connect(endpoints, Some(options)).await {
            Ok(client) => client,
            Err(err) => {
                let reason = error_chain(&err);
                return Err(if is_tls_failure(&reason) {
                    StoreError::Tls {
                        endpoint: display,
                        reason,
                    }
                } else {
                    StoreError::Unreachable {
                        endpoint: display,
                        reason,
                    }
                });
            }
        };
        let tls = endpoints.iter().any(|e| e.starts_with("https://"));
        let etcd = Etcd {
            client,
            display,
            tls,
        };
        let mut kv = etcd.client.kv_client();
        if let Err(err) = kv.get(COMPACT_KEY, None).await {
            let reason = error_chain(&err);
            // With TLS 1.3 a server that wants a client certificate (or rejects the one sent)
            // says so only by closing the connection after the handshake.
            let dropped = ["connection closed", "broken pipe", "connection reset"]
                .iter()
                .any(|w| reason.to_ascii_lowercase().contains(w));
            if etcd.tls && dropped {
                return Err(StoreError::Tls {
                    endpoint: etcd.display,
                    reason: format!(
                        "etcd closed the connection after the TLS handshake (it may want a client certificate it trusts): {reason}"
                    ),
                });
            }
            return Err(etcd.err(err));
        }
        Ok(etcd)
    }

    /// The current revision and the compact revision skiff recorded.
    pub(crate) async fn load_revisions(&self) -> Result<(i64, i64), StoreError> {
        let mut kv = self.client.kv_client();
        let resp = kv.get(COMPACT_KEY, None).await.map_err(|e| self.err(e))?;
        let current = resp.header().map_or(0, |h| h.revision());
        let compact = resp
            .kvs()
            .first()
            .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
            .unwrap_or(0);
        Ok((current, compact))
    }

    fn compacted(&self, core: &Core, requested: i64) -> StoreError {
        StoreError::Compacted {
            compact_revision: core.compact_rev.load(Ordering::SeqCst).max(requested + 1),
            requested,
        }
    }

    fn seen(core: &Core, revision: i64) {
        core.current_rev.fetch_max(revision, Ordering::SeqCst);
    }

    pub(crate) async fn get(&self, core: &Core, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let mut kv = self.client.kv_client();
        let resp = kv.get(etcd_key(key), None).await.map_err(|e| self.err(e))?;
        if let Some(h) = resp.header() {
            Self::seen(core, h.revision());
        }
        Ok(resp.kvs().first().map(|e| to_kv(key.to_owned(), e)))
    }

    pub(crate) async fn list(
        &self,
        core: &Core,
        range: &KeyRange,
        revision: i64,
        start_after: Option<String>,
        limit: usize,
    ) -> Result<ListResult, StoreError> {
        let (mut start, end) = etcd_range(range);
        if let Some(after) = start_after {
            if after.as_str() >= range.prefix.as_str() {
                // The first key after `after`: `after` followed by a zero byte.
                start = format!("{}\0", etcd_key(&after));
            }
        }
        // Revision 0: etcd's latest, reported in the answer's header.
        let mut options = GetOptions::new()
            .with_range(end)
            .with_revision(revision.max(0))
            .with_sort(SortTarget::Key, SortOrder::Ascend);
        if limit > 0 {
            options = options.with_limit(limit as i64);
        }
        let mut kv = self.client.kv_client();
        let resp = match kv.get(start, Some(options)).await {
            Ok(resp) => resp,
            Err(e) if is_compacted(&e) => return Err(self.compacted(core, revision)),
            Err(e) => return Err(self.err(e)),
        };
        let header_revision = resp.header().map_or(0, |h| h.revision());
        Self::seen(core, header_revision);
        let revision = if revision > 0 {
            revision
        } else {
            header_revision
        };
        let kvs: Vec<KeyValue> = resp
            .kvs()
            .iter()
            .filter_map(|e| Some(to_kv(user_key(e.key())?, e)))
            .collect();
        let more = resp.more();
        let remaining = if more {
            resp.count() - kvs.len() as i64
        } else {
            0
        };
        Ok(ListResult {
            kvs,
            revision,
            more,
            remaining,
        })
    }

    pub(crate) async fn count(&self, core: &Core, range: &KeyRange) -> Result<i64, StoreError> {
        let (start, end) = etcd_range(range);
        let mut kv = self.client.kv_client();
        let resp = kv
            .get(
                start,
                Some(GetOptions::new().with_range(end).with_count_only()),
            )
            .await
            .map_err(|e| self.err(e))?;
        if let Some(h) = resp.header() {
            Self::seen(core, h.revision());
        }
        Ok(resp.count())
    }

    /// One write as one Txn.
    async fn write(&self, core: &Core, op: WriteOp) -> Result<WriteOutcome, StoreError> {
        let (key, guard, then) = match &op {
            WriteOp::Create { key, value } => (
                key,
                Compare::create_revision(etcd_key(key), CompareOp::Equal, 0),
                TxnOp::put(etcd_key(key), value.clone(), None),
            ),
            WriteOp::Update {
                key,
                value,
                expected,
            } => (
                key,
                if *expected == 0 {
                    Compare::create_revision(etcd_key(key), CompareOp::Greater, 0)
                } else {
                    Compare::mod_revision(etcd_key(key), CompareOp::Equal, *expected)
                },
                TxnOp::put(etcd_key(key), value.clone(), None),
            ),
            WriteOp::Delete { key, expected } => (
                key,
                if *expected == 0 {
                    Compare::create_revision(etcd_key(key), CompareOp::Greater, 0)
                } else {
                    Compare::mod_revision(etcd_key(key), CompareOp::Equal, *expected)
                },
                TxnOp::delete(
                    etcd_key(key),
                    Some(etcd_client::DeleteOptions::new().with_prev_key()),
                ),
            ),
        };
        let txn = Txn::new()
            .when([guard])
            .and_then([then])
            .or_else([TxnOp::get(etcd_key(key), None)]);
        let mut kv = self.client.kv_client();
        let resp = kv.txn(txn).await.map_err(|e| self.err(e))?;
        let revision = resp.header().map_or(0, |h| h.revision());
        Self::seen(core, revision);
        let responses = resp.op_responses();
        if resp.succeeded() {
            let deleted = match (&op, responses.into_iter().next()) {
                (WriteOp::Delete { .. }, Some(TxnOpResponse::Delete(d))) => {
                    d.prev_kvs().first().map(|e| to_kv(key.clone(), e))
                }
                _ => None,
            };
            return Ok(WriteOutcome { revision, deleted });
        }
        let current = match responses.into_iter().next() {
            Some(TxnOpResponse::Get(g)) => g.kvs().first().map(|e| e.mod_revision()),
            _ => None,
        };
        Err(match (&op, current) {
            (WriteOp::Create { .. }, _) => StoreError::AlreadyExists,
            (_, None) => StoreError::NotFound,
            (_, Some(current_revision)) => StoreError::Conflict { current_revision },
        })
    }

    /// Records the compact revision, then has etcd compact (and waits until it has).
    async fn compact(&self, core: &Core, revision: i64) -> Result<(), StoreError> {
        let mut kv = self.client.kv_client();
        // Never lowers the recorded value: put only when it is older.
        let current = self.load_revisions().await?.1;
        if revision > current {
            kv.put(COMPACT_KEY, revision.to_string(), None)
                .await
                .map_err(|e| self.err(e))?;
        }
        core.compact_rev.fetch_max(revision, Ordering::SeqCst);
        match kv
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
        {
            Ok(_) => Ok(()),
            // Another server compacted as far already.
            Err(e) if is_compacted(&e) => Ok(()),
            Err(e) => Err(self.err(e)),
        }
    }
}

/// The client TLS settings from the files: the CA (else the system's roots) and the client
/// certificate and key (both or neither).
fn tls_options(tls: &DatastoreTls) -> Result<TlsOptions, StoreError> {
    let read = |flag: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            StoreError::Endpoint(format!(
                "{flag} {}: {e}; give a readable PEM file",
                path.display()
            ))
        })
    };
    let mut options = TlsOptions::new();
    options = match &tls.ca_file {
        Some(ca) => options.ca_certificate(Certificate::from_pem(read("--datastore-cafile", ca)?)),
        None => options.with_native_roots(),
    };
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let identity = Identity::from_pem(
                read("--datastore-certfile", cert)?,
                read("--datastore-keyfile", key)?,
            );
            options = options.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(StoreError::Endpoint(
                "--datastore-certfile and --datastore-keyfile go together; give both or neither"
                    .into(),
            ))
        }
    }
    Ok(options)
}

/// The skiff key of an etcd key under the data prefix.
fn user_key(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    key.strip_prefix(KV_PREFIX).map(str::to_owned)
}

fn to_kv(key: String, e: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key,
        value: Arc::from(e.value()),
        create_revision: e.create_revision(),
        mod_revision: e.mod_revision(),
    }
}

/// The write task: every write is its own etcd Txn, sent at once (etcd batches concurrent
/// requests into raft proposals itself).
pub(crate) async fn run_writer(etcd: Arc<Etcd>, core: Arc<Core>, mut rx: mpsc::Receiver<Request>) {
    while let Some(req) = rx.recv().await {
        let (etcd, core) = (etcd.clone(), core.clone());
        tokio::spawn(async move {
            match req {
                Request::Write { op, reply } => {
                    let result = etcd.write(&core, op).await;
                    if result.is_ok() {
                        core.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    let _ = reply.send(result);
                }
                Request::Compact { revision, reply } => {
                    let _ = reply.send(etcd.compact(&core, revision).await);
                }
            }
        });
    }
}

/// Follows the recorded compact revision (other servers compact too) and keeps the current
/// revision fresh with progress notifications. Reconnects with backoff.
pub(crate) async fn run_follower(etcd: Arc<Etcd>, core: Arc<Core>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let mut watch = etcd.client.watch_client();
        let opened = watch
            .watch(
                COMPACT_KEY,
                Some(WatchOptions::new().with_progress_notify()),
            )
            .await;
        if let Ok(mut stream) = opened {
            backoff = Duration::from_millis(100);
            while let Ok(Some(resp)) = stream.message().await {
                if let Some(h) = resp.header() {
                    Etcd::seen(&core, h.revision());
                }
                for ev in resp.events() {
                    if let Some(rev) = ev
                        .kv()
                        .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
                    {
                        core.compact_rev.fetch_max(rev, Ordering::SeqCst);
                    }
                }
            }
        }
        tracing::warn!(endpoint = %etcd.display, retry_in = ?backoff, "etcd watch lost; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// A native etcd watch over a key range from a revision on, with previous values. Opened
/// on the first `recv`; reopened from the last delivered revision when the stream breaks.
pub(crate) struct EtcdWatcher {
    etcd: Arc<Etcd>,
    core: Arc<Core>,
    range: KeyRange,
    pub(crate) last: i64,
    stream: Option<etcd_client::WatchStream>,
    buf: VecDeque<Event>,
    failures: u32,
    done: bool,
    /// Closed when the store is dropped: the watcher ends then.
    closed: broadcast::Receiver<Feed>,
}

impl EtcdWatcher {
    pub(crate) fn new(
        etcd: Arc<Etcd>,
        core: Arc<Core>,
        range: KeyRange,
        after: i64,
        closed: broadcast::Receiver<Feed>,
    ) -> Self {
        EtcdWatcher {
            etcd,
            core,
            range,
            last: after,
            stream: None,
            buf: VecDeque::new(),
            failures: 0,
            done: false,
            closed,
        }
    }

    pub(crate) async fn recv(&mut self) -> Option<Result<Event, StoreError>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.buf.pop_front() {
                self.last = event.revision();
                return Some(Ok(event));
            }
            if self.stream.is_none() {
                let (start, end) = etcd_range(&self.range);
                let options = WatchOptions::new()
                    .with_range(end)
                    .with_start_revision(self.last + 1)
                    .with_prev_key()
                    .with_progress_notify();
                let mut watch = self.etcd.client.watch_client();
                match watch.watch(start, Some(options)).await {
                    Ok(stream) => self.stream = Some(stream),
                    Err(err) => {
                        if let Some(end) = self.give_up(self.etcd.err(err)).await {
                            return Some(Err(end));
                        }
                        continue;
                    }
                }
            }
            let Some(stream) = self.stream.as_mut() else {
                continue;
            };
            let message = tokio::select! {
                m = stream.message() => m,
                closed = self.closed.recv() => {
                    if matches!(closed, Err(broadcast::error::RecvError::Closed)) {
                        self.done = true;
                        return None;
                    }
                    continue;
                }
            };
            match message {
                Ok(Some(resp)) => {
                    self.failures = 0;
                    if resp.compact_revision() > 0 {
                        self.core
                            .compact_rev
                            .fetch_max(resp.compact_revision(), Ordering::SeqCst);
                        self.done = true;
                        return Some(Err(StoreError::Compacted {
                            compact_revision: resp.compact_revision(),
                            requested: self.last,
                        }));
                    }
                    if resp.canceled() {
                        self.stream = None;
                        let err =
                            StoreError::Etcd(format!("watch canceled: {}", resp.cancel_reason()));
                        if let Some(end) = self.give_up(err).await {
                            return Some(Err(end));
                        }
                        continue;
                    }
                    if resp.events().is_empty() && !resp.created() {
                        // A progress notification: every event up to its revision was sent,
                        // so a reopened watch may start after it.
                        let revision = resp.header().map_or(0, |h| h.revision());
                        if revision > self.last {
                            Etcd::seen(&self.core, revision);
                            self.last = revision;
                        }
                        continue;
                    }
                    for ev in resp.events() {
                        if let Some(event) = to_event(ev) {
                            if event.revision() > self.last {
                                Etcd::seen(&self.core, event.revision());
                                self.buf.push_back(event);
                            }
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    // The stream broke: reopen from the last delivered revision.
                    self.stream = None;
                    let err = StoreError::Unreachable {
                        endpoint: self.etcd.display.clone(),
                        reason: "the watch stream ended".into(),
                    };
                    if let Some(end) = self.give_up(err).await {
                        return Some(Err(end));
                    }
                }
            }
        }
    }

    /// Waits before a retry; after a few failures in a row returns the error to end with.
    async fn give_up(&mut self, err: StoreError) -> Option<StoreError> {
        self.failures += 1;
        if self.failures > 5 {
            self.done = true;
            return Some(err);
        }
        tokio::time::sleep(Duration::from_millis(100) * 2u32.pow(self.failures)).await;
        None
    }
}

fn to_event(ev: &etcd_client::Event) -> Option<Event> {
    let kv = ev.kv()?;
    let key = user_key(kv.key())?;
    let prev = ev.prev_kv().map(|p| to_kv(key.clone(), p));
    match ev.event_type() {
        etcd_client::EventType::Put => Some(Event {
            kind: EventType::Put,
            kv: to_kv(key, kv),
            // A first version is a create, whatever an earlier incarnation left behind.
            prev: if kv.version() == 1 { None } else { prev },
        }),
        etcd_client::EventType::Delete => {
            // etcd leaves out the previous value when it was compacted away already.
            let prev = prev.unwrap_or_else(|| KeyValue {
                key,
                value: Arc::from(&[][..]),
                create_revision: 0,
                mod_revision: 0,
            });
            Some(Event {
                kind: EventType::Delete,
                kv: KeyValue {
                    mod_revision: kv.mod_revision(),
                    ..prev.clone()
                },
                prev: Some(prev),
            })
        }
    }
}
