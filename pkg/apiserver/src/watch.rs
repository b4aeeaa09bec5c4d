//! Watch: a chunked stream of `{"type","object"}` lines from the store's revision log, with
//! initial events, selector transitions, bookmarks, Table encoding and 410 on compaction.

use crate::error::{ApiError, ApiResult};
use crate::objects::{from_kv, meta_str};
use crate::request::{Output, Query, Target};
use crate::rest::{self, Filters};
use crate::state::AppState;
use crate::table::{self, IncludeObject};
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};
use skiff_store::{EventType, StoreError};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

struct Encoder {
    target: Target,
    output: Output,
    include: IncludeObject,
    headers_sent: bool,
}

impl Encoder {
    fn line(&mut self, typ: &str, obj: Value) -> Bytes {
        let object = match self.output {
            Output::Json => {
                let mut o = obj;
                if typ != "ERROR" && typ != "BOOKMARK" {
                    o["kind"] = json!(self.target.res.kind);
                    o["apiVersion"] = json!(self.target.res.api_version());
                }
                o
            }
            Output::Table { beta } => {
                if typ == "ERROR" {
                    obj
                } else {
                    let rv = meta_str(&obj, "resourceVersion").unwrap_or("").to_string();
                    let headers = !self.headers_sent;
                    self.headers_sent = true;
                    let rows = if typ == "BOOKMARK" { vec![] } else { vec![obj] };
                    table::to_table(
                        self.target.res,
                        &rows,
                        self.include,
                        beta,
                        json!({"resourceVersion": rv}),
                        headers,
                    )
                }
            }
        };
        let mut buf =
            serde_json::to_vec(&json!({"type": typ, "object": object})).unwrap_or_default();
        buf.push(b'\n');
        Bytes::from(buf)
    }
}

/// One encoded watch line: (resource identity, store key, revision, event type).
type LineKey = (usize, String, i64, &'static str);

/// How many encoded lines [`LineCache`] keeps (the newest; a line is only reused by watchers
/// that are still close to the head of the log).
const LINE_CACHE_ENTRIES: usize = 4096;

/// JSON watch lines shared by every unfiltered JSON watcher of a resource (the controllers'
/// informers, the scheduler, the agents): a store event is decoded and encoded once instead of
/// once per watcher.
#[derive(Default)]
pub struct LineCache {
    inner: parking_lot::Mutex<(HashMap<LineKey, Bytes>, VecDeque<LineKey>)>,
}

impl LineCache {
    fn get(&self, key: &LineKey) -> Option<Bytes> {
        self.inner.lock().0.get(key).cloned()
    }

    fn put(&self, key: LineKey, line: Bytes) {
        let mut g = self.inner.lock();
        let (map, order) = &mut *g;
        if map.insert(key.clone(), line).is_none() {
            order.push_back(key);
        }
        while order.len() > LINE_CACHE_ENTRIES {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

fn wants(target: &Target, filters: &Filters, obj: &Value) -> bool {
    if let Some(n) = &target.name {
        if meta_str(obj, "name") != Some(n.as_str()) {
            return false;
        }
    }
    filters.matches(obj)
}

/// Starts a watch and returns the streaming response.
pub async fn watch(
    st: Arc<AppState>,
    target: Target,
    q: Query,
    output: Output,
) -> ApiResult<Response> {
    let filters = Filters::from_query(&q, target.res)?;
    let include = match output {
        Output::Table { .. } => IncludeObject::from_query(&q)?,
        Output::Json => IncludeObject::Object,
    };
    let timeout = q
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| t as u64)
        .unwrap_or_else(|| {
            use rand::Rng;
            1800 + rand::thread_rng().gen_range(0..1800)
        });
    let bookmarks = q.flag("allowWatchBookmarks") && matches!(output, Output::Json);
    let rv = q.get("resourceVersion").unwrap_or("").to_string();
    let send_initial = match q.get("sendInitialEvents") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let initial = match send_initial {
        Some(b) => b,
        None => rv.is_empty() || rv == "0",
    };
    let prefix = target.collection_prefix();

    // Initial state (when asked), then the log from that revision.
    let mut initial_objs = vec![];
    let start_rev: i64 = if initial {
        let mut lq = q.clone();
        lq.map.remove("limit");
        lq.map.remove("continue");
        lq.map.remove("resourceVersion");
        lq.map.remove("resourceVersionMatch");
        let out = rest::list_objects(&st, &target, &lq).await?;
        initial_objs = out.items;
        out.revision
    } else if rv.is_empty() || rv == "0" {
        st.store.current_revision()
    } else {
        rv.parse().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resource version {rv:?}: expected an integer"
            ))
        })?
    };
    let watcher = st.store.watch(&prefix, start_rev);
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(256);
    let mut enc = Encoder {
        target: target.clone(),
        output,
        include,
        headers_sent: false,
    };
    let kind = target.res.kind;
    let api = target.res.api_version();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        let mut watcher = match watcher {
            Ok(w) => w,
            Err(StoreError::Compacted {
                compact_revision,
                requested,
            }) => {
                let status = ApiError::gone(format!(
                    "too old resource version: {requested} ({compact_revision})"
                ))
                .status_body();
                let _ = tx.send(Ok(enc.line("ERROR", status))).await;
                return;
            }
            Err(e) => {
                let status = ApiError::internal(format!("watch failed: {e}")).status_body();
                let _ = tx.send(Ok(enc.line("ERROR", status))).await;
                return;
            }
        };
        for o in initial_objs {
            if tx.send(Ok(enc.line("ADDED", o))).await.is_err() {
                return;
            }
        }
        let unfiltered =
            enc.target.name.is_none() && filters.labels.is_none() && filters.fields.is_none();
        let shared_lines = unfiltered && matches!(enc.output, Output::Json);
        let res_id = enc.target.res as *const _ as usize;
        let mut last_rev = start_rev;
        if send_initial == Some(true) {
            let bm = json!({"kind": kind, "apiVersion": api, "metadata": {
                "resourceVersion": last_rev.to_string(),
                "annotations": {"k8s.io/initial-events-end": "true"}}});
            if tx.send(Ok(enc.line("BOOKMARK", bm))).await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(Duration::from_secs(15));
        tick.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = tx.closed() => return,
                _ = tick.tick(), if bookmarks => {
                    let bm = json!({"kind": kind, "apiVersion": api, "metadata": {"resourceVersion": last_rev.to_string()}});
                    if tx.send(Ok(enc.line("BOOKMARK", bm))).await.is_err() { return; }
                }
                ev = watcher.recv() => {
                    let ev = match ev {
                        None => return,
                        Some(Ok(ev)) => ev,
                        Some(Err(StoreError::Compacted { compact_revision, requested })) => {
                            let status = ApiError::gone(format!("too old resource version: {requested} ({compact_revision})")).status_body();
                            let _ = tx.send(Ok(enc.line("ERROR", status))).await;
                            return;
                        }
                        Some(Err(e)) => {
                            let status = ApiError::internal(format!("watch failed: {e}")).status_body();
                            let _ = tx.send(Ok(enc.line("ERROR", status))).await;
                            return;
                        }
                    };
                    last_rev = ev.kv.mod_revision;
                    if shared_lines {
                        let typ = match (&ev.kind, &ev.prev) {
                            (EventType::Delete, _) => "DELETED",
                            (EventType::Put, Some(_)) => "MODIFIED",
                            (EventType::Put, None) => "ADDED",
                        };
                        let key = (res_id, ev.kv.key.clone(), ev.kv.mod_revision, typ);
                        let line = match st.watch_lines.get(&key) {
                            Some(line) => line,
                            None => {
                                let Ok(cur) = from_kv(&ev.kv).map(|o| crate::convert::from_storage(enc.target.res, o)) else { continue };
                                let line = enc.line(typ, cur);
                                st.watch_lines.put(key, line.clone());
                                line
                            }
                        };
                        if tx.send(Ok(line)).await.is_err() { return; }
                        continue;
                    }
                    let Ok(cur) = from_kv(&ev.kv).map(|o| crate::convert::from_storage(enc.target.res, o)) else { continue };
                    let line = match ev.kind {
                        EventType::Delete => {
                            if wants(&enc.target, &filters, &cur) { Some(("DELETED", cur)) } else { None }
                        }
                        EventType::Put => {
                            let now = wants(&enc.target, &filters, &cur);
                            // Without selectors every object is wanted: no need to decode the old one.
                            let before = if unfiltered {
                                ev.prev.as_ref().map(|_| true)
                            } else {
                                ev.prev.as_ref().and_then(|p| from_kv(p).ok()).map(|o| crate::convert::from_storage(enc.target.res, o)).map(|p| wants(&enc.target, &filters, &p))
                            };
                            match (before, now) {
                                (None, true) => Some(("ADDED", cur)),
                                (Some(true), true) => Some(("MODIFIED", cur)),
                                (Some(false), true) => Some(("ADDED", cur)),
                                (Some(true), false) => Some(("DELETED", cur)),
                                _ => None,
                            }
                        }
                    };
                    if let Some((t, o)) = line {
                        if tx.send(Ok(enc.line(t, o))).await.is_err() { return; }
                    }
                }
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-cache, private")
        .body(Body::from_stream(stream))
        .map_err(|e| ApiError::internal(format!("building the watch response failed: {e}")))
}

#[cfg(test)]
mod line_cache_tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_only() {
        let c = LineCache::default();
        for rev in 0..(LINE_CACHE_ENTRIES as i64 + 10) {
            c.put(
                (1, "/k".into(), rev, "MODIFIED"),
                Bytes::from(rev.to_string()),
            );
        }
        assert!(c.get(&(1, "/k".into(), 0, "MODIFIED")).is_none());
        assert!(c.get(&(1, "/k".into(), 9, "MODIFIED")).is_none());
        let newest = LINE_CACHE_ENTRIES as i64 + 9;
        assert_eq!(
            c.get(&(1, "/k".into(), newest, "MODIFIED")),
            Some(Bytes::from(newest.to_string()))
        );
        // Another resource or event type is another line.
        assert!(c.get(&(2, "/k".into(), newest, "MODIFIED")).is_none());
        assert!(c.get(&(1, "/k".into(), newest, "DELETED")).is_none());
        assert_eq!(c.inner.lock().0.len(), LINE_CACHE_ENTRIES);
    }
}
