//! Watchers: replay history from the engine, then follow the store's broadcast (the SQLite
//! writer's, or the PostgreSQL listener's), without gaps or duplicates; a watcher that falls
//! behind the broadcast (or is told to resync) re-reads what it missed from the engine.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::db::KeyRange;
use crate::{Core, Event, Feed, StoreError};

/// How many rows one history read returns.
const REPLAY_CHUNK: usize = 1000;

/// A stream of events under a prefix, from a starting revision on.
pub struct Watcher {
    kind: Kind,
}

enum Kind {
    /// SQLite and PostgreSQL: history from the engine, then the store's broadcast.
    Log(LogWatcher),
    /// etcd's own watch.
    Etcd(Box<crate::etcd::EtcdWatcher>),
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            Kind::Log(w) => w.fmt(f),
            Kind::Etcd(w) => f
                .debug_struct("Watcher")
                .field("engine", &"etcd")
                .field("last", &w.last)
                .finish(),
        }
    }
}

impl Watcher {
    pub(crate) fn etcd(w: crate::etcd::EtcdWatcher) -> Watcher {
        Watcher {
            kind: Kind::Etcd(Box::new(w)),
        }
    }

    pub(crate) fn new(
        core: Arc<Core>,
        range: KeyRange,
        after: i64,
        rx: broadcast::Receiver<Feed>,
        live: bool,
    ) -> Watcher {
        Watcher {
            kind: Kind::Log(LogWatcher::new(core, range, after, rx, live)),
        }
    }

    /// The revision of the last event this watcher delivered (or its starting revision).
    pub fn last_revision(&self) -> i64 {
        match &self.kind {
            Kind::Log(w) => w.last,
            Kind::Etcd(w) => w.last,
        }
    }

    /// The next event; `None` once the store is closed or after an error was returned.
    /// An error is `Compacted` when the events this watcher still needs were compacted
    /// away while it was behind.
    pub async fn recv(&mut self) -> Option<Result<Event, StoreError>> {
        match &mut self.kind {
            Kind::Log(w) => w.recv().await,
            Kind::Etcd(w) => w.recv().await,
        }
    }
}

struct LogWatcher {
    core: Arc<Core>,
    range: KeyRange,
    /// The revision of the last event delivered (or the starting revision).
    last: i64,
    buf: VecDeque<Event>,
    rx: broadcast::Receiver<Feed>,
    /// Whether history is caught up and events come from the broadcast.
    live: bool,
    done: bool,
}

impl std::fmt::Debug for LogWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.range.prefix)
            .field("last", &self.last)
            .field("live", &self.live)
            .finish()
    }
}

impl LogWatcher {
    fn new(
        core: Arc<Core>,
        range: KeyRange,
        after: i64,
        rx: broadcast::Receiver<Feed>,
        live: bool,
    ) -> LogWatcher {
        LogWatcher {
            core,
            range,
            last: after,
            buf: VecDeque::new(),
            rx,
            live,
            done: false,
        }
    }

    async fn recv(&mut self) -> Option<Result<Event, StoreError>> {
        if self.done {
            return None;
        }
        loop {
            if let Some(event) = self.buf.pop_front() {
                self.last = event.revision();
                return Some(Ok(event));
            }
            if self.live {
                match self.rx.recv().await {
                    Ok(Feed::Event(event)) => {
                        if event.revision() > self.last && self.range.contains(&event.kv.key) {
                            self.buf.push_back(event);
                        }
                    }
                    // The broadcast skipped events: re-read from the engine.
                    Ok(Feed::Resync) => self.live = false,
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Subscribe afresh first, then re-read the missed part from the engine.
                        self.rx = self.rx.resubscribe();
                        self.live = false;
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        self.done = true;
                        return None;
                    }
                }
            } else {
                let range = self.range.clone();
                let after = self.last;
                let read = self.core.engine.history(range, after, REPLAY_CHUNK).await;
                match read {
                    Ok(events) => {
                        // A short read saw everything committed before it; everything after
                        // it is in the broadcast, which was subscribed before the read.
                        self.live = events.len() < REPLAY_CHUNK;
                        self.buf.extend(events);
                    }
                    Err(err) => {
                        self.done = true;
                        return Some(Err(err));
                    }
                }
            }
        }
    }
}
