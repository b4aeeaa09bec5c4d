//! Watchers: replay history from SQLite, then follow the writer's broadcast, without gaps or
//! duplicates; a watcher that falls behind the broadcast re-reads what it missed from SQLite.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::db::{self, KeyRange};
use crate::{Core, Event, StoreError};

/// How many rows one history read returns.
const REPLAY_CHUNK: usize = 1000;

/// A stream of events under a prefix, from a starting revision on.
pub struct Watcher {
    core: Arc<Core>,
    range: KeyRange,
    /// The revision of the last event delivered (or the starting revision).
    last: i64,
    buf: VecDeque<Event>,
    rx: broadcast::Receiver<Event>,
    /// Whether history is caught up and events come from the broadcast.
    live: bool,
    done: bool,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("prefix", &self.range.prefix)
            .field("last", &self.last)
            .field("live", &self.live)
            .finish()
    }
}

impl Watcher {
    pub(crate) fn new(
        core: Arc<Core>,
        range: KeyRange,
        after: i64,
        rx: broadcast::Receiver<Event>,
        live: bool,
    ) -> Watcher {
        Watcher {
            core,
            range,
            last: after,
            buf: VecDeque::new(),
            rx,
            live,
            done: false,
        }
    }

    /// The revision of the last event this watcher delivered (or its starting revision).
    pub fn last_revision(&self) -> i64 {
        self.last
    }

    /// The next event; `None` once the store is closed or after an error was returned.
    /// An error is `Compacted` when the events this watcher still needs were compacted
    /// away while it was behind.
    pub async fn recv(&mut self) -> Option<Result<Event, StoreError>> {
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
                    Ok(event) => {
                        if event.revision() > self.last && self.range.contains(&event.kv.key) {
                            self.buf.push_back(event);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        // Subscribe afresh first, then re-read the missed part from SQLite.
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
                let read = self
                    .core
                    .pool
                    .run(move |conn| db::history(conn, &range, after, REPLAY_CHUNK))
                    .await;
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
