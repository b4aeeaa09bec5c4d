//! Tests of the store against real SQLite files in temporary directories.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::db::KeyRange;
use crate::{EventType, ListOptions, Options, Store, StoreError};

fn no_compaction() -> Options {
    Options {
        compact_interval: Duration::ZERO,
        ..Options::default()
    }
}

fn open(dir: &Path) -> Store {
    Store::open(&dir.join("db").join("state.db"), no_compaction()).unwrap()
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Size of the database file plus its WAL.
fn db_and_wal(store: &Store) -> u64 {
    let db = store.db_path().unwrap();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    file_size(db) + file_size(Path::new(&wal))
}

#[test]
fn key_range_bounds_exactly_the_prefix() {
    let r = KeyRange::prefix("/registry/pods/");
    assert_eq!(r.end.as_deref(), Some("/registry/pods0"));
    assert!(r.contains("/registry/pods/default/a"));
    assert!(!r.contains("/registry/podsx"));
    assert_eq!(KeyRange::prefix("").end, None);
    assert_eq!(KeyRange::prefix("a\u{10FFFF}").end.as_deref(), Some("b"));
    assert_eq!(
        KeyRange::prefix("\u{D7FF}").end.as_deref(),
        Some("\u{E000}")
    );
}

#[tokio::test]
async fn crud_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_eq!(store.current_revision(), 0);
    assert!(store.get("/a").await.unwrap().is_none());

    let r1 = store.create("/a", b"one".to_vec()).await.unwrap();
    assert_eq!(r1, 1);
    assert_eq!(store.current_revision(), 1);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!(&*kv.value, b"one");
    assert_eq!((kv.create_revision, kv.mod_revision), (1, 1));

    assert!(matches!(
        store.create("/a", b"x".to_vec()).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.update("/a", b"x".to_vec(), 7).await,
        Err(StoreError::Conflict {
            current_revision: 1
        })
    ));
    let r2 = store.update("/a", b"two".to_vec(), r1).await.unwrap();
    assert_eq!(r2, 2);
    let r3 = store.update("/a", b"three".to_vec(), 0).await.unwrap();
    assert_eq!(r3, 3);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!(
        (&*kv.value, kv.create_revision, kv.mod_revision),
        (&b"three"[..], 1, 3)
    );

    assert!(matches!(
        store.update("/missing", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete("/a", r2).await,
        Err(StoreError::Conflict {
            current_revision: 3
        })
    ));
    let (r4, deleted) = store.delete("/a", r3).await.unwrap();
    assert_eq!(r4, 4);
    assert_eq!(&*deleted.value, b"three");
    assert_eq!(deleted.mod_revision, 3);
    assert!(store.get("/a").await.unwrap().is_none());
    assert!(matches!(
        store.delete("/a", 0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update("/a", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound)
    ));

    // Re-creating after a delete starts a new incarnation.
    let r5 = store.create("/a", b"again".to_vec()).await.unwrap();
    assert_eq!(r5, 5);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, kv.mod_revision), (5, 5));
    assert_eq!(store.count("/").await.unwrap(), 1);
    // Refused writes do not use up revisions.
    assert_eq!(store.current_revision(), 5);
}

#[tokio::test]
async fn list_by_prefix_with_pages_at_a_revision() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for i in 0..10 {
        store
            .create(
                &format!("/registry/pods/ns/p{i}"),
                format!("v{i}").into_bytes(),
            )
            .await
            .unwrap();
    }
    store
        .create("/registry/podsx/other", b"x".to_vec())
        .await
        .unwrap();
    store
        .create("/registry/nodes/n1", b"n".to_vec())
        .await
        .unwrap();
    assert_eq!(store.count("/registry/pods/").await.unwrap(), 10);
    assert_eq!(store.count("/registry/").await.unwrap(), 12);
    assert_eq!(store.count("").await.unwrap(), 12);

    let all = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(all.kvs.len(), 10);
    assert!(!all.more);
    assert_eq!(all.remaining, 0);
    assert_eq!(all.revision, store.current_revision());
    let keys: Vec<_> = all.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    let page1 = store
        .list(
            "/registry/pods/",
            ListOptions {
                limit: 4,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page1.kvs.len(), 4);
    assert!(page1.more);
    assert_eq!(page1.remaining, 6);
    let at = page1.revision;

    // Changes after the first page must not show in later pages read at its revision.
    store.delete("/registry/pods/ns/p5", 0).await.unwrap();
    store
        .update("/registry/pods/ns/p6", b"changed".to_vec(), 0)
        .await
        .unwrap();
    store
        .create("/registry/pods/ns/p55", b"new".to_vec())
        .await
        .unwrap();

    let mut seen: Vec<String> = page1.kvs.iter().map(|kv| kv.key.clone()).collect();
    let mut after = seen.last().cloned();
    loop {
        let page = store
            .list(
                "/registry/pods/",
                ListOptions {
                    revision: at,
                    start_after: after.clone(),
                    limit: 4,
                },
            )
            .await
            .unwrap();
        assert_eq!(page.revision, at);
        for kv in &page.kvs {
            assert!(kv.mod_revision <= at);
            if kv.key == "/registry/pods/ns/p6" {
                assert_eq!(&*kv.value, b"v6");
            }
        }
        seen.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        after = seen.last().cloned();
        if !page.more {
            assert_eq!(page.remaining, 0);
            break;
        }
        assert_eq!(page.remaining as usize, 10 - seen.len());
    }
    assert_eq!(seen, keys);

    let now = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    let now_keys: Vec<_> = now.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert!(now_keys.contains(&"/registry/pods/ns/p55"));
    assert!(!now_keys.contains(&"/registry/pods/ns/p5"));
    assert_eq!(now.kvs.len(), 10);

    let future = store
        .list(
            "/",
            ListOptions {
                revision: store.current_revision() + 5,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(future, Err(StoreError::FutureRevision { .. })));
}

#[tokio::test]
async fn watch_events_carry_values_and_previous_values() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut w = store.watch("/k/", 0).unwrap();
    let c = store.create("/k/a", b"1".to_vec()).await.unwrap();
    store.create("/other", b"x".to_vec()).await.unwrap();
    let u = store.update("/k/a", b"2".to_vec(), c).await.unwrap();
    let (d, _) = store.delete("/k/a", u).await.unwrap();

    let e = w.recv().await.unwrap().unwrap();
    assert_eq!(e.kind, EventType::Put);
    assert_eq!((e.kv.mod_revision, &*e.kv.value), (c, &b"1"[..]));
    assert!(e.prev.is_none());
    let e = w.recv().await.unwrap().unwrap();
    assert_eq!(e.kind, EventType::Put);
    assert_eq!((e.kv.mod_revision, e.kv.create_revision), (u, c));
    let prev = e.prev.unwrap();
    assert_eq!((&*prev.value, prev.mod_revision), (&b"1"[..], c));
    let e = w.recv().await.unwrap().unwrap();
    assert_eq!(e.kind, EventType::Delete);
    assert_eq!((e.kv.mod_revision, &*e.kv.value), (d, &b"2"[..]));
    assert_eq!(e.prev.unwrap().mod_revision, u);

    // The same history replayed from SQLite reads the same.
    let mut replay = store.watch("/k/", 0).unwrap();
    let kinds: Vec<_> = [
        replay.recv().await.unwrap().unwrap(),
        replay.recv().await.unwrap().unwrap(),
        replay.recv().await.unwrap().unwrap(),
    ]
    .into_iter()
    .map(|e| {
        (
            e.kind,
            e.kv.mod_revision,
            e.kv.value.to_vec(),
            e.prev.map(|p| (p.mod_revision, p.value.to_vec())),
        )
    })
    .collect();
    assert_eq!(
        kinds,
        vec![
            (EventType::Put, c, b"1".to_vec(), None),
            (EventType::Put, u, b"2".to_vec(), Some((c, b"1".to_vec()))),
            (
                EventType::Delete,
                d,
                b"2".to_vec(),
                Some((u, b"2".to_vec()))
            ),
        ]
    );
}

/// Writes from several tasks; returns every acknowledged (revision, key) pair.
async fn churn(store: &Store, tasks: usize, per_task: usize) -> Vec<(i64, String)> {
    let mut handles = Vec::new();
    for t in 0..tasks {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let prefix = if t % 2 == 0 { "/w/a/" } else { "/w/b/" };
            for i in 0..per_task {
                let key = format!("{prefix}{t}-{}", i % 5);
                let rev = match store.create(&key, vec![i as u8]).await {
                    Ok(rev) => rev,
                    Err(StoreError::AlreadyExists) => {
                        if i % 7 == 0 {
                            store.delete(&key, 0).await.unwrap().0
                        } else {
                            store.update(&key, vec![i as u8], 0).await.unwrap()
                        }
                    }
                    Err(err) => panic!("unexpected {err}"),
                };
                acked.push((rev, key));
            }
            acked
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    all
}

async fn collect_until(w: &mut crate::Watcher, last: i64) -> Vec<i64> {
    let mut revs = Vec::new();
    while revs.last().copied().unwrap_or(0) < last {
        let e = tokio::time::timeout(Duration::from_secs(30), w.recv())
            .await
            .expect("watch stalled")
            .unwrap()
            .unwrap();
        revs.push(e.revision());
    }
    revs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn watch_replays_then_follows_without_gaps_under_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Some history before anyone watches.
    let before = churn(&store, 4, 50).await;
    let mid = before[before.len() / 2].0;

    let mut from_zero = store.watch("/w/a/", 0).unwrap();
    let mut from_mid = store.watch("/w/a/", mid).unwrap();
    let mut all_keys = store.watch("", store.current_revision()).unwrap();
    let during = churn(&store, 8, 300).await;
    // A watcher that starts only after all writes replays everything.
    let mut late = store.watch("/w/", 0).unwrap();

    let acked: Vec<(i64, String)> = before.into_iter().chain(during.clone()).collect();
    let last = acked.last().unwrap().0;
    assert_eq!(last, store.current_revision());
    let expect = |after: i64, prefix: &str| -> Vec<i64> {
        acked
            .iter()
            .filter(|(r, k)| *r > after && k.starts_with(prefix))
            .map(|(r, _)| *r)
            .collect()
    };
    let last_a = expect(0, "/w/a/").last().copied().unwrap();
    assert_eq!(
        collect_until(&mut from_zero, last_a).await,
        expect(0, "/w/a/")
    );
    assert_eq!(
        collect_until(&mut from_mid, last_a).await,
        expect(mid, "/w/a/")
    );
    let start = during.first().unwrap().0 - 1;
    assert_eq!(collect_until(&mut all_keys, last).await, expect(start, ""));
    assert_eq!(collect_until(&mut late, last).await, expect(0, "/w/"));
    // Revisions are exactly 1..=last: strictly increasing, no gaps, no reuse.
    let revs: Vec<i64> = acked.iter().map(|(r, _)| *r).collect();
    assert_eq!(revs, (1..=last).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_rereads_from_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with_capacity(&dir.path().join("state.db"), no_compaction(), 4).unwrap();
    let mut w = store.watch("/", 0).unwrap();
    assert!(w.recv().now_or_never().is_none());
    // Far more events than the broadcast holds while the watcher does not read.
    let acked = churn(&store, 4, 100).await;
    let last = acked.last().unwrap().0;
    let revs = collect_until(&mut w, last).await;
    assert_eq!(revs, (1..=last).collect::<Vec<_>>());
    // And again, live, after catching up.
    let more = churn(&store, 2, 50).await;
    let revs = collect_until(&mut w, more.last().unwrap().0).await;
    assert_eq!(
        revs,
        (last + 1..=more.last().unwrap().0).collect::<Vec<_>>()
    );
}

trait NowOrNever: std::future::Future + Sized {
    /// Polls once; `None` if not ready.
    fn now_or_never(self) -> Option<Self::Output> {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(self);
        match fut.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }
}
impl<F: std::future::Future> NowOrNever for F {}

#[tokio::test]
async fn compaction_removes_history_and_refuses_old_revisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let a1 = store.create("/a", b"a1".to_vec()).await.unwrap();
    let _a2 = store.update("/a", b"a2".to_vec(), 0).await.unwrap();
    let b1 = store.create("/b", b"b1".to_vec()).await.unwrap();
    let (bd, _) = store.delete("/b", 0).await.unwrap();
    let c1 = store.create("/c", b"c1".to_vec()).await.unwrap();
    let compact_at = store.current_revision();
    let a3 = store.update("/a", b"a3".to_vec(), 0).await.unwrap();

    store.compact(compact_at).await.unwrap();
    assert_eq!(store.compact_revision(), compact_at);
    // Compacting to an older revision is a no-op.
    store.compact(a1).await.unwrap();
    assert_eq!(store.compact_revision(), compact_at);

    let old = store
        .list(
            "/",
            ListOptions {
                revision: b1,
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(
        old,
        Err(StoreError::Compacted { compact_revision, requested }) if compact_revision == compact_at && requested == b1
    ));
    assert!(matches!(
        store.watch("/", bd),
        Err(StoreError::Compacted { .. })
    ));

    // The compact revision itself is still readable, with the values it had then.
    let at = store
        .list(
            "/",
            ListOptions {
                revision: compact_at,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let got: Vec<_> = at
        .kvs
        .iter()
        .map(|kv| (kv.key.as_str(), kv.value.to_vec(), kv.mod_revision))
        .collect();
    assert_eq!(
        got,
        vec![("/a", b"a2".to_vec(), 2), ("/c", b"c1".to_vec(), c1)]
    );
    let mut w = store.watch("/", compact_at).unwrap();
    let e = w.recv().await.unwrap().unwrap();
    assert_eq!((e.kv.mod_revision, &*e.kv.value), (a3, &b"a3"[..]));
    assert_eq!(e.prev.unwrap().value.to_vec(), b"a2".to_vec());

    // Only the latest row of each live key at the compact revision, plus newer rows, remain.
    let rows: i64 = rusqlite::Connection::open(store.db_path().unwrap())
        .unwrap()
        .query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 3);
    assert!(matches!(
        store.compact(store.current_revision() + 1).await,
        Err(StoreError::FutureRevision { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_behind_a_compaction_gets_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open_with_capacity(&dir.path().join("state.db"), no_compaction(), 4).unwrap();
    let mut w = store.watch("/", 0).unwrap();
    churn(&store, 2, 50).await;
    store.compact(store.current_revision() - 10).await.unwrap();
    match w.recv().await {
        Some(Err(StoreError::Compacted { requested: 0, .. })) => {}
        other => panic!("expected compacted, got {other:?}"),
    }
    assert!(w.recv().await.is_none());
}

#[tokio::test]
async fn reopen_continues_revisions_and_keeps_compact_revision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("dir").join("state.db");
    let (last, compact) = {
        let store = Store::open(&path, no_compaction()).unwrap();
        for i in 0..20 {
            store.create(&format!("/k{i}"), vec![i]).await.unwrap();
        }
        for i in 0..20 {
            store.delete(&format!("/k{i}"), 0).await.unwrap();
        }
        // Everything is deleted and compacted away: the table is empty afterwards.
        store.compact(store.current_revision()).await.unwrap();
        (store.current_revision(), store.compact_revision())
    };
    assert_eq!((last, compact), (40, 40));
    // The writer thread closes once the store is dropped; give it a moment.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let store = Store::open(&path, no_compaction()).unwrap();
    assert_eq!(store.current_revision(), last);
    assert_eq!(store.compact_revision(), compact);
    assert!(matches!(
        store.watch("/", compact - 1),
        Err(StoreError::Compacted { .. })
    ));
    let rev = store.create("/k0", b"back".to_vec()).await.unwrap();
    assert_eq!(rev, last + 1);
    let kv = store.get("/k0").await.unwrap().unwrap();
    assert_eq!((kv.create_revision, &*kv.value), (last + 1, &b"back"[..]));
    assert_eq!(store.count("/").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_compaction_keeps_the_file_bounded() {
    let _turn = HEAVY.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        compact_interval: Duration::from_millis(200),
        compact_keep_revisions: 1000,
        compact_keep_for: Duration::ZERO,
        read_connections: 2,
        ..Options::default()
    };
    let store = Store::open(&dir.path().join("state.db"), opts).unwrap();
    let keys: Vec<String> = (0..5)
        .map(|i| format!("/registry/configmaps/default/cm{i}"))
        .collect();
    let value = vec![b'x'; 200];
    for key in &keys {
        store.create(key, value.clone()).await.unwrap();
    }
    const UPDATES: usize = 100_000;
    const TASKS: usize = 64;
    let started = Instant::now();
    let mut max_size = 0;
    let mut samples = Vec::new();
    let mut done = 0;
    while done < UPDATES {
        let round = 10_000.min(UPDATES - done);
        let mut handles = Vec::new();
        for t in 0..TASKS {
            let store = store.clone();
            let key = keys[t % keys.len()].clone();
            let value = value.clone();
            let n = round / TASKS + usize::from(t < round % TASKS);
            handles.push(tokio::spawn(async move {
                for _ in 0..n {
                    store.update(&key, value.clone(), 0).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        done += round;
        let size = db_and_wal(&store);
        max_size = max_size.max(size);
        samples.push((done, size));
    }
    let elapsed = started.elapsed();
    // Let the background compactor catch up with the last round and checkpoint the WAL.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.compact_revision() < store.current_revision() - 1000
        || db_and_wal(&store) >= 5 * 1024 * 1024
    {
        assert!(
            Instant::now() < deadline,
            "background compaction did not bound the file: {} B",
            db_and_wal(&store)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let final_size = db_and_wal(&store);
    println!(
        "{UPDATES} updates over 5 keys in {elapsed:?} ({:.0}/s); db+wal after each 10k: {samples:?}; max {max_size} B, final {final_size} B (db {} B)",
        UPDATES as f64 / elapsed.as_secs_f64(),
        file_size(store.db_path().unwrap())
    );
    assert!(store.compact_revision() > 0);
    let conn = rusqlite::Connection::open(store.db_path().unwrap()).unwrap();
    let auto_vacuum: i64 = conn
        .query_row("PRAGMA auto_vacuum", [], |r| r.get(0))
        .unwrap();
    assert_eq!(auto_vacuum, 2, "auto_vacuum must be INCREMENTAL");
    // Bounded at every point, not growing with the update count (100k updates of 400 B of
    // values would be ~40 MB without compaction).
    assert!(max_size < 12 * 1024 * 1024, "db+wal peaked at {max_size} B");
    assert!(final_size < 5 * 1024 * 1024);
    for key in &keys {
        assert!(store.get(key).await.unwrap().is_some());
    }
    let history = store
        .list(
            "/",
            ListOptions {
                revision: store.compact_revision(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(history.kvs.len(), 5);
}

/// Tests that measure time or write a lot take turns, so their figures mean something.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs `clients` tasks creating `total` keys between them; returns creates per second and
/// the average number of writes per commit.
async fn create_throughput(store: &Store, clients: usize, total: usize, tag: &str) -> (f64, f64) {
    let commits_before = store.inner.core.commits.load(Ordering::Relaxed);
    let started = Instant::now();
    let mut handles = Vec::new();
    for c in 0..clients {
        let store = store.clone();
        let tag = tag.to_owned();
        let n = total / clients;
        handles.push(tokio::spawn(async move {
            let mut revs = Vec::with_capacity(n);
            for i in 0..n {
                let key = format!("/registry/pods/{tag}/c{c}-{i}");
                let value = format!("{{\"kind\":\"Pod\",\"metadata\":{{\"name\":\"c{c}-{i}\"}}}}");
                revs.push(store.create(&key, value.into_bytes()).await.unwrap());
            }
            revs
        }));
    }
    let mut revs = Vec::new();
    for h in handles {
        revs.extend(h.await.unwrap());
    }
    let rate = revs.len() as f64 / started.elapsed().as_secs_f64();
    let commits = store.inner.core.commits.load(Ordering::Relaxed) - commits_before;
    let per_commit = revs.len() as f64 / commits as f64;
    // All acknowledged, all distinct, all present.
    let distinct: HashSet<i64> = revs.iter().copied().collect();
    assert_eq!(distinct.len(), (total / clients) * clients);
    let listed = store
        .list(&format!("/registry/pods/{tag}/"), ListOptions::default())
        .await
        .unwrap();
    assert_eq!(listed.kvs.len(), revs.len());
    (rate, per_commit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_acknowledges_every_concurrent_write_durably() {
    let dir = tempfile::tempdir().unwrap();
    let _turn = HEAVY.lock().await;
    let store = open(dir.path());
    let mut report = BTreeMap::new();
    for (clients, total) in [(1, 300), (16, 4_000), (64, 16_000)] {
        let (rate, per_commit) =
            create_throughput(&store, clients, total, &format!("t{clients}")).await;
        report.insert(clients, (rate.round(), (per_commit * 10.0).round() / 10.0));
    }
    println!("durable creates/s and writes per commit by concurrent clients: {report:?}");
    // Group commit: with many clients waiting, one commit (one fsync) serves many writes.
    assert_eq!(report[&1].1, 1.0);
    assert!(report[&64].1 >= 4.0, "{report:?}");
    // Mixed outcomes in one batch: conflicts fail alone.
    let rev = store.create("/mixed", b"0".to_vec()).await.unwrap();
    let mut handles = Vec::new();
    for i in 0..32 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            store.update("/mixed", vec![i], rev).await
        }));
    }
    let mut ok = 0;
    let mut conflicts = 0;
    for h in handles {
        match h.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict { .. }) => conflicts += 1,
            Err(err) => panic!("unexpected {err}"),
        }
    }
    assert_eq!((ok, conflicts), (1, 31));
}

/// The environment variable that turns `crash_child` into the writer of the kill -9 test.
const CRASH_DIR_ENV: &str = "SKIFF_STORE_CRASH_CHILD_DIR";

/// Child side of `acknowledged_writes_survive_kill_9`: writes until killed, printing each
/// acknowledged key. Does nothing when run on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
        return;
    };
    let store = Store::open(&Path::new(&dir).join("state.db"), no_compaction()).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for c in 0..16 {
        let store = store.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            for i in 0.. {
                let key = format!("/crash/c{c}-{i}");
                let rev = store.create(&key, b"v".to_vec()).await.unwrap();
                if tx.send(format!("ACK {rev} {key}")).is_err() {
                    return;
                }
            }
        });
    }
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    while let Some(line) = rx.recv().await {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_kill_9() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("ACK ") {
            let (rev, key) = rest.split_once(' ').unwrap();
            acked.push((rev.parse::<i64>().unwrap(), key.to_owned()));
            if acked.len() == 2000 {
                // SIGKILL, mid-stream, while writers are still committing.
                child.kill().unwrap();
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 2000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&dir.path().join("state.db"), no_compaction()).unwrap();
        for (rev, key) in &acked {
            let kv = store
                .get(key)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("lost {key}"));
            assert_eq!(kv.mod_revision, *rev);
        }
        let max = acked.iter().map(|(r, _)| *r).max().unwrap();
        assert!(store.current_revision() >= max);
        let next = store.create("/after-crash", b"x".to_vec()).await.unwrap();
        assert!(next > max);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_not_blocked_behind_a_held_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create("/a", b"1".to_vec()).await.unwrap();
    // Another connection holds SQLite's write lock, so the writer thread has to wait.
    let blocker = rusqlite::Connection::open(store.db_path().unwrap()).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let pending = {
        let store = store.clone();
        tokio::spawn(async move { store.create("/b", b"2".to_vec()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished());
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        let kv = store.get("/a").await.unwrap().unwrap();
        let list = store.list("/", ListOptions::default()).await.unwrap();
        (kv, list)
    })
    .await
    .expect("reads waited for the writer");
    assert_eq!(&*read.0.value, b"1");
    assert_eq!(read.1.kvs.len(), 1);
    blocker.execute_batch("COMMIT").unwrap();
    assert_eq!(pending.await.unwrap().unwrap(), 2);
}

#[tokio::test]
async fn watchers_end_when_the_store_closes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.create("/a", b"1".to_vec()).await.unwrap();
    let mut w = store.watch("/", 0).unwrap();
    drop(store);
    // History already committed is still delivered, then the stream ends.
    assert_eq!(w.recv().await.unwrap().unwrap().revision(), 1);
    let end = tokio::time::timeout(Duration::from_secs(5), w.recv()).await;
    assert!(end.unwrap().is_none());
}

#[test]
fn background_compaction_needs_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&dir.path().join("state.db"), Options::default()).unwrap_err();
    assert!(err.to_string().contains("tokio runtime"), "{err}");
}

#[test]
fn compaction_keeps_the_time_window_and_the_revision_count() {
    use std::collections::VecDeque;
    use std::time::Instant;
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut samples = VecDeque::new();
    // Nothing is a minute old yet: nothing goes.
    samples.push_back((t0, 5_000));
    assert_eq!(
        super::compaction_target(&mut samples, t0 + s(30), 9_000, 1000, s(60)),
        0
    );
    samples.push_back((t0 + s(30), 9_000));
    // At 70 s, the t0 sample (rev 5,000) is the newest one a minute old.
    assert_eq!(
        super::compaction_target(&mut samples, t0 + s(70), 20_000, 1000, s(60)),
        5_000
    );
    samples.push_back((t0 + s(70), 20_000));
    // At 100 s the 30 s sample is old enough.
    assert_eq!(
        super::compaction_target(&mut samples, t0 + s(100), 21_000, 1000, s(60)),
        9_000
    );
    // The revision count wins when it keeps more.
    assert_eq!(
        super::compaction_target(&mut samples, t0 + s(200), 20_500, 1000, s(60)),
        19_500
    );
    // No window: count only.
    assert_eq!(
        super::compaction_target(&mut VecDeque::new(), t0, 20_500, 1000, Duration::ZERO),
        19_500
    );
}
