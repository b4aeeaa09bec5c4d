//! In-memory copies kept by list + watch of one store prefix (the API server's informers):
//! one loop that lists, replays the watch from the list's revision, and relists when the watch
//! breaks, shared by the RBAC, admission, node-graph and namespace caches.

use serde_json::Value;
use skiff_store::{EventType, KeyValue, ListResult, Store};
use std::time::Duration;

/// How a cache decodes one stored object: a whole `Value` (with `metadata.resourceVersion`
/// stamped), or a view of the few fields it needs (cheaper for a busy prefix such as pods).
/// `None`: the object does not decode and is skipped.
pub trait FromKv: Sized {
    fn from_kv(kv: &KeyValue) -> Option<Self>;
}

impl FromKv for Value {
    fn from_kv(kv: &KeyValue) -> Option<Self> {
        crate::objects::from_kv(kv).ok()
    }
}

/// What changed under the followed prefix.
pub enum Change<'a, T = Value> {
    /// A fresh list: every object under the prefix at `revision` (replaces what was held).
    Reset {
        objects: Vec<(&'a str, T)>,
        revision: i64,
    },
    /// An object was created or updated.
    Put {
        key: &'a str,
        object: T,
        revision: i64,
    },
    /// An object was deleted.
    Delete { key: &'a str, revision: i64 },
}

/// Lists `prefix`, hands the objects to `apply`, then every later change, for as long as the
/// server runs. `what` names the cache in log lines. Objects that do not decode are skipped
/// (they are reported by the requests that read them).
pub async fn follow<T: FromKv>(
    store: &Store,
    what: &str,
    prefix: &str,
    mut apply: impl FnMut(Change<'_, T>),
) {
    loop {
        let list = match store.list(prefix, Default::default()).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, %prefix, "{what}: list failed, retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        apply(reset(&list));
        let mut w = match store.watch(prefix, list.revision) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, %prefix, "{what}: watch failed, relisting");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        while let Some(ev) = w.recv().await {
            let Ok(ev) = ev else { break };
            let (key, revision) = (ev.kv.key.as_str(), ev.kv.mod_revision);
            match ev.kind {
                EventType::Put => {
                    if let Some(object) = T::from_kv(&ev.kv) {
                        apply(Change::Put {
                            key,
                            object,
                            revision,
                        });
                    }
                }
                EventType::Delete => apply(Change::Delete { key, revision }),
            }
        }
    }
}

/// The `Reset` change of a list.
fn reset<T: FromKv>(list: &ListResult) -> Change<'_, T> {
    Change::Reset {
        objects: list
            .kvs
            .iter()
            .filter_map(|kv| Some((kv.key.as_str(), T::from_kv(kv)?)))
            .collect(),
        revision: list.revision,
    }
}

/// Lists `prefix` once and hands the result to `apply` as a `Reset` (a cache brought up to
/// date at once after a write through this server, instead of waiting for its watch). A failed
/// list changes nothing: the watch catches up.
pub async fn relist<T: FromKv>(store: &Store, prefix: &str, apply: impl FnOnce(Change<'_, T>)) {
    match store.list(prefix, Default::default()).await {
        Ok(list) => apply(reset(&list)),
        Err(e) => tracing::warn!(error = %e, %prefix, "relist failed; the watch will catch up"),
    }
}
