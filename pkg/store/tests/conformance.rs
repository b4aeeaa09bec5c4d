//! One conformance suite for every storage engine behind `skiff_store::Store`: the same cases
//! run on SQLite (a temporary file), PostgreSQL (a throwaway cluster from Debian's
//! `postgresql`) and etcd (a throwaway `etcd` from Debian's `etcd-server`), both started by
//! the test on loopback; a missing engine fails the test with what to install. Each case runs
//! on a fresh database (a new PostgreSQL database, a new etcd), stopped on drop even when a
//! case panics. Revisions are compared relatively: etcd's start at 1 and count every write.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use skiff_store::etcdserver::EtcdServer;
use skiff_store::pgcluster::PgCluster;
use skiff_store::{EventType, ListOptions, Options, Store, StoreError, Watcher};

/// The longest any single wait in this suite may take.
const WAIT: Duration = Duration::from_secs(20);

fn no_compaction() -> Options {
    Options {
        compact_interval: Duration::ZERO,
        ..Options::default()
    }
}

/// Where a case's data lives; `open` makes a new `Store` on it.
enum Bed {
    Sqlite(tempfile::TempDir),
    Postgres(String),
    Etcd(EtcdServer),
}

impl Bed {
    async fn open(&self) -> Store {
        match self {
            Bed::Sqlite(dir) => Store::open(&dir.path().join("state.db"), no_compaction())
                .expect("open sqlite store"),
            Bed::Postgres(url) => Store::open_postgres(url, no_compaction())
                .await
                .expect("open postgres store"),
            Bed::Etcd(server) => Store::open_etcd(&[server.endpoint()], no_compaction())
                .await
                .expect("open etcd store"),
        }
    }

    /// Whether several `Store`s (servers) may share the data. SQLite is one server's file:
    /// its single writer thread owns the revision counter.
    fn shared(&self) -> bool {
        matches!(self, Bed::Postgres(_) | Bed::Etcd(_))
    }
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {WAIT:?}"))
}

async fn next_event(w: &mut Watcher) -> skiff_store::Event {
    within("watch event", w.recv())
        .await
        .expect("watch ended")
        .expect("watch failed")
}

/// Events from `w` until one at or past `last`; their revisions.
async fn revisions_until(w: &mut Watcher, last: i64) -> Vec<i64> {
    let mut seen = Vec::new();
    loop {
        let ev = next_event(w).await;
        seen.push(ev.revision());
        if ev.revision() >= last {
            return seen;
        }
    }
}

async fn crud_and_conflicts(bed: &Bed) {
    let store = bed.open().await;
    let base = store.current_revision();
    assert!(store.get("/a").await.unwrap().is_none());
    let r1 = store.create("/a", b"one".to_vec()).await.unwrap();
    assert!(r1 > base);
    assert_eq!(store.current_revision(), r1);
    let kv = store.get("/a").await.unwrap().unwrap();
    assert_eq!(
        (&*kv.value, kv.create_revision, kv.mod_revision),
        (&b"one"[..], r1, r1)
    );
    assert!(matches!(
        store.create("/a", b"x".to_vec()).await,
        Err(StoreError::AlreadyExists)
    ));
    assert!(matches!(
        store.update("/a", b"x".to_vec(), r1 + 100).await,
        Err(StoreError::Conflict { current_revision }) if current_revision == r1
    ));
    let r2 = store.update("/a", b"two".to_vec(), r1).await.unwrap();
    let r3 = store.update("/a", b"three".to_vec(), 0).await.unwrap();
    assert!(r1 < r2 && r2 < r3);
    assert!(matches!(
        store.update("/missing", b"x".to_vec(), 0).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.delete("/a", r2).await,
        Err(StoreError::Conflict { current_revision }) if current_revision == r3
    ));
    let (r4, deleted) = store.delete("/a", r3).await.unwrap();
    assert!(r4 > r3);
    assert_eq!((&*deleted.value, deleted.mod_revision), (&b"three"[..], r3));
    assert!(store.get("/a").await.unwrap().is_none());
    assert!(matches!(
        store.delete("/a", 0).await,
        Err(StoreError::NotFound)
    ));
    let r5 = store.create("/a", b"again".to_vec()).await.unwrap();
    let kv = store.get("/a").await.unwrap().unwrap();
    assert!(r5 > r4);
    assert_eq!((kv.create_revision, kv.mod_revision), (r5, r5));
    // Refused writes use up no revision.
    assert_eq!(store.current_revision(), r5);
    assert_eq!(store.count("/").await.unwrap(), 1);
}

async fn concurrent_compare_and_swap_has_one_winner(bed: &Bed) {
    let store = bed.open().await;
    let base = store.create("/cas", b"0".to_vec()).await.unwrap();
    let tries = (0..16).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { store.update("/cas", vec![i], base).await })
    });
    let mut wins = 0;
    for t in tries {
        match within("cas update", t).await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { current_revision }) => assert!(current_revision > base),
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(wins, 1, "exactly one compare-and-swap wins");
}

async fn list_at_a_revision_with_pages(bed: &Bed) {
    let store = bed.open().await;
    for i in 0..10 {
        store
            .create(
                &format!("/registry/pods/default/p{i}"),
                format!("v{i}").into_bytes(),
            )
            .await
            .unwrap();
    }
    store
        .create("/registry/podsx", b"other".to_vec())
        .await
        .unwrap();
    let at = store.current_revision();
    store
        .update("/registry/pods/default/p3", b"changed".to_vec(), 0)
        .await
        .unwrap();
    store.delete("/registry/pods/default/p5", 0).await.unwrap();

    let now = store
        .list("/registry/pods/", ListOptions::default())
        .await
        .unwrap();
    assert_eq!(now.revision, store.current_revision());
    assert_eq!(now.kvs.len(), 9);
    assert!(now.kvs.windows(2).all(|w| w[0].key < w[1].key));
    assert_eq!(
        &*now
            .kvs
            .iter()
            .find(|kv| kv.key.ends_with("p3"))
            .unwrap()
            .value,
        b"changed"
    );
    assert_eq!(store.count("/registry/pods/").await.unwrap(), 9);

    let then = store
        .list(
            "/registry/pods/",
            ListOptions {
                revision: at,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(then.revision, at);
    let values: BTreeMap<String, Vec<u8>> = then
        .kvs
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.to_vec()))
        .collect();
    assert_eq!(values.len(), 10);
    assert_eq!(values["/registry/pods/default/p3"], b"v3");
    assert!(values.contains_key("/registry/pods/default/p5"));

    // Pages of 4 at the old revision: 4 + 4 + 2, with the remaining counts.
    let mut keys = Vec::new();
    let mut start_after = None;
    let mut remainders = Vec::new();
    loop {
        let page = store
            .list(
                "/registry/pods/",
                ListOptions {
                    revision: at,
                    start_after: start_after.clone(),
                    limit: 4,
                },
            )
            .await
            .unwrap();
        keys.extend(page.kvs.iter().map(|kv| kv.key.clone()));
        remainders.push(page.remaining);
        if !page.more {
            break;
        }
        start_after = page.kvs.last().map(|kv| kv.key.clone());
    }
    assert_eq!(remainders, vec![6, 2, 0]);
    assert_eq!(keys, values.keys().cloned().collect::<Vec<_>>());

    assert!(matches!(
        store
            .list(
                "/",
                ListOptions {
                    revision: store.current_revision() + 5,
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::FutureRevision { .. })
    ));
}

async fn watch_from_a_revision(bed: &Bed) {
    let store = bed.open().await;
    let r1 = store.create("/w/a", b"1".to_vec()).await.unwrap();
    let r2 = store.update("/w/a", b"2".to_vec(), r1).await.unwrap();
    store.create("/other/x", b"x".to_vec()).await.unwrap();
    let (r4, _) = store.delete("/w/a", r2).await.unwrap();

    let mut all = store.watch("/w/", 0).unwrap();
    let created = next_event(&mut all).await;
    assert_eq!(
        (
            created.kind.clone(),
            created.revision(),
            created.prev.is_none()
        ),
        (EventType::Put, r1, true)
    );
    let updated = next_event(&mut all).await;
    assert_eq!(updated.revision(), r2);
    assert_eq!(updated.prev.as_ref().map(|p| &*p.value), Some(&b"1"[..]));
    let deleted = next_event(&mut all).await;
    assert_eq!(
        (deleted.kind.clone(), deleted.revision()),
        (EventType::Delete, r4)
    );
    assert_eq!(
        deleted.prev.as_ref().map(|p| (&*p.value, p.mod_revision)),
        Some((&b"2"[..], r2))
    );

    // From the middle: only later events, then live ones.
    let mut mid = store.watch("/w/", r1).unwrap();
    assert_eq!(next_event(&mut mid).await.revision(), r2);
    assert_eq!(next_event(&mut mid).await.revision(), r4);
    let r5 = store.create("/w/b", b"b".to_vec()).await.unwrap();
    store.create("/other/y", b"y".to_vec()).await.unwrap();
    let r7 = store.create("/w/c", b"c".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut mid).await.revision(), r5);
    assert_eq!(next_event(&mut mid).await.revision(), r7);
    assert_eq!(next_event(&mut all).await.revision(), r5);
}

async fn watch_has_no_gaps_under_concurrent_writers(bed: &Bed) {
    let store = bed.open().await;
    let seed = store.create("/c/seed", b"s".to_vec()).await.unwrap();
    let mut w = store.watch("/c/", 0).unwrap();
    let writers = (0..4).map(|t| {
        let store = store.clone();
        tokio::spawn(async move {
            let key = format!("/c/k{t}");
            let mut rev = store.create(&key, b"0".to_vec()).await.unwrap();
            let mut revs = vec![rev];
            for i in 1..25u8 {
                rev = store.update(&key, vec![i], rev).await.unwrap();
                revs.push(rev);
            }
            revs
        })
    });
    let mut expected = vec![seed];
    for t in writers {
        expected.extend(within("writer", t).await.unwrap());
    }
    expected.sort_unstable();
    let last = *expected.last().unwrap();
    let seen = revisions_until(&mut w, last).await;
    // On SQLite and PostgreSQL these are every revision from 1 on: revisions are dense.
    assert_eq!(seen, expected, "every acknowledged write once, in order");
}

async fn watch_across_two_stores(bed: &Bed) {
    let a = bed.open().await;
    let b = bed.open().await;
    let start = b.current_revision();
    let mut wb = b.watch("/x/", start).unwrap();
    let mut revs = Vec::new();
    for i in 0..20 {
        revs.push(a.create(&format!("/x/{i:02}"), vec![i]).await.unwrap());
    }
    let r_upd = a.update("/x/03", b"u".to_vec(), revs[3]).await.unwrap();
    revs.push(r_upd);
    let seen = revisions_until(&mut wb, r_upd).await;
    assert_eq!(
        seen, revs,
        "the second store sees the first's writes once, in order"
    );
    // Writes through the second store reach a watcher of the first.
    let mut wa = a.watch("/x/", r_upd).unwrap();
    let r_b = b
        .update("/x/04", b"from-b".to_vec(), revs[4])
        .await
        .unwrap();
    let ev = next_event(&mut wa).await;
    assert_eq!((ev.revision(), &*ev.kv.value), (r_b, &b"from-b"[..]));
    // A revision the other store wrote can be listed at at once.
    let page = b
        .list(
            "/x/",
            ListOptions {
                revision: r_b,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.kvs.len(), 20);
    // Optimistic concurrency holds across stores.
    assert!(matches!(
        a.update("/x/04", b"stale".to_vec(), revs[4]).await,
        Err(StoreError::Conflict { current_revision }) if current_revision == r_b
    ));
    // A watcher started late on another store replays from the revision asked.
    let mut late = b.watch("/x/", revs[17]).unwrap();
    let seen = revisions_until(&mut late, r_b).await;
    assert_eq!(seen, vec![revs[18], revs[19], r_upd, r_b]);
}

async fn compaction_expires_old_revisions(bed: &Bed) {
    let store = bed.open().await;
    let r1 = store.create("/k/a", b"1".to_vec()).await.unwrap();
    let r2 = store.update("/k/a", b"2".to_vec(), r1).await.unwrap();
    let r3 = store.create("/k/b", b"b".to_vec()).await.unwrap();
    store.delete("/k/b", r3).await.unwrap();
    let r5 = store.update("/k/a", b"3".to_vec(), r2).await.unwrap();
    let r6 = store.create("/k/c", b"c".to_vec()).await.unwrap();
    within("compact", store.compact(r5)).await.unwrap();
    assert_eq!(store.compact_revision(), r5);
    assert!(matches!(
        store
            .list(
                "/k/",
                ListOptions {
                    revision: r2,
                    ..Default::default()
                }
            )
            .await,
        Err(StoreError::Compacted { compact_revision, requested }) if compact_revision == r5 && requested == r2
    ));
    assert!(matches!(
        store.watch("/k/", r2),
        Err(StoreError::Compacted { .. })
    ));
    // At and after the compact revision everything is still there.
    let page = store
        .list(
            "/k/",
            ListOptions {
                revision: r5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let keys: Vec<&str> = page.kvs.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, vec!["/k/a"]);
    assert_eq!(&*page.kvs[0].value, b"3");
    let mut w = store.watch("/k/", r5).unwrap();
    assert_eq!(next_event(&mut w).await.revision(), r6);
    assert_eq!(&*store.get("/k/a").await.unwrap().unwrap().value, b"3");
    // The compact revision is the database's: a store opened later (another server, or
    // after a restart) refuses the same old revisions.
    drop(w);
    drop(store);
    let again = bed.open().await;
    assert_eq!(again.compact_revision(), r5);
    assert!(matches!(
        again.watch("/k/", r1),
        Err(StoreError::Compacted { .. })
    ));
}

async fn watchers_end_when_the_store_closes(bed: &Bed) {
    let store = bed.open().await;
    let mut w = store.watch("/", store.current_revision()).unwrap();
    drop(store);
    assert!(
        within("watch end", w.recv()).await.is_none(),
        "a watcher ends once its store is gone"
    );
}

/// Runs every case, each on a fresh database made by `fresh`.
async fn run_suite<F, Fut>(mut fresh: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = Bed>,
{
    macro_rules! case {
        ($name:ident) => {{
            let bed = fresh(stringify!($name)).await;
            eprintln!("case {}", stringify!($name));
            $name(&bed).await;
        }};
    }
    case!(crud_and_conflicts);
    case!(concurrent_compare_and_swap_has_one_winner);
    case!(list_at_a_revision_with_pages);
    case!(watch_from_a_revision);
    case!(watch_has_no_gaps_under_concurrent_writers);
    case!(compaction_expires_old_revisions);
    case!(watchers_end_when_the_store_closes);
    let bed = fresh("watch_across_two_stores").await;
    if bed.shared() {
        eprintln!("case watch_across_two_stores");
        watch_across_two_stores(&bed).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conforms() {
    run_suite(|_| async { Bed::Sqlite(tempfile::tempdir().unwrap()) }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conforms() {
    let cluster = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL: {e}"));
    let cluster = &cluster;
    run_suite(|name| async move {
        Bed::Postgres(
            within("create database", cluster.create_database(name))
                .await
                .unwrap(),
        )
    })
    .await;

    // Unreachable and refused credentials are told apart, and say what to check.
    let refused = Store::open_postgres(
        &format!(
            "postgres://{}:wrong@127.0.0.1:{}/postgres",
            skiff_store::pgcluster::USER,
            cluster.port()
        ),
        no_compaction(),
    )
    .await
    .expect_err("a wrong password must be refused");
    let msg = refused.to_string();
    assert!(
        matches!(refused, StoreError::Credentials { .. })
            && msg.contains("refused the credentials"),
        "{msg}"
    );
    assert!(!msg.contains("wrong"), "the password is never shown: {msg}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = Store::open_postgres(
        &format!("postgres://skiff:pw@127.0.0.1:{port}/skiff"),
        no_compaction(),
    )
    .await
    .expect_err("nothing listens there");
    let msg = unreachable.to_string();
    assert!(
        matches!(unreachable, StoreError::Unreachable { .. }) && msg.contains("cannot reach"),
        "{msg}"
    );

    // TLS files make TLS required: a server without TLS is a TLS error, not plain text.
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path(), "plain");
    let no_tls = within(
        "open postgres over TLS on a server without it",
        Store::open_postgres(&cluster.url("postgres"), with_tls(&pki.ca, None)),
    )
    .await
    .expect_err("the server has no TLS");
    let msg = no_tls.to_string();
    assert!(
        matches!(no_tls, StoreError::Tls { .. })
            && msg.contains("does not support TLS")
            && msg.contains("--datastore-cafile"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_conforms() {
    run_suite(|_| async {
        Bed::Etcd(
            tokio::task::spawn_blocking(EtcdServer::start)
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("cannot start a throwaway etcd: {e}")),
        )
    })
    .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let unreachable = within(
        "open unreachable etcd",
        Store::open_etcd(&[format!("http://127.0.0.1:{port}")], no_compaction()),
    )
    .await
    .expect_err("nothing listens there");
    let msg = unreachable.to_string();
    assert!(
        matches!(unreachable, StoreError::Unreachable { .. }) && msg.contains("cannot reach"),
        "{msg}"
    );
}

#[tokio::test]
async fn endpoints_choose_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let default = dir.path().join("db").join("state.db");
    let store = Store::open_endpoint("", &default, no_compaction())
        .await
        .unwrap();
    assert_eq!(store.engine_name(), "sqlite");
    assert_eq!(store.db_path(), Some(default.as_path()));
    let other = dir.path().join("other.db");
    let store = Store::open_endpoint(
        &format!("sqlite://{}?_journal=WAL", other.display()),
        &default,
        no_compaction(),
    )
    .await
    .unwrap();
    assert_eq!(store.db_path(), Some(other.as_path()));
    let mixed = Store::open_endpoint(
        "https://127.0.0.1:2379,http://127.0.0.1:2380",
        &default,
        no_compaction(),
    )
    .await
    .unwrap_err();
    assert!(mixed.to_string().contains("same scheme"), "{mixed}");
    let tls = Options {
        tls: skiff_store::DatastoreTls {
            ca_file: Some(dir.path().join("ca.crt")),
            ..Default::default()
        },
        ..no_compaction()
    };
    let plain = Store::open_endpoint("http://127.0.0.1:1", &default, tls.clone())
        .await
        .unwrap_err();
    assert!(plain.to_string().contains("need https://"), "{plain}");
    let sqlite = Store::open_endpoint("", &default, tls.clone())
        .await
        .unwrap_err();
    let msg = sqlite.to_string();
    assert!(
        matches!(sqlite, StoreError::Endpoint(_))
            && msg.contains("apply to etcd")
            && msg.contains("drop them for SQLite"),
        "{msg}"
    );
    let sqlite_url = format!("sqlite://{}", other.display());
    let sqlite = Store::open_endpoint(&sqlite_url, &default, tls.clone())
        .await
        .unwrap_err();
    assert!(matches!(sqlite, StoreError::Endpoint(_)), "{sqlite}");
    // sslmode=disable contradicts the TLS files; refused before any connection is tried.
    let disabled = Store::open_endpoint(
        "postgres://skiff:pw@127.0.0.1:1/skiff?sslmode=disable",
        &default,
        tls,
    )
    .await
    .unwrap_err();
    let msg = disabled.to_string();
    assert!(
        matches!(disabled, StoreError::Endpoint(_)) && msg.contains("sslmode=disable"),
        "{msg}"
    );
    let bad = Store::open_endpoint("mysql://x", &default, no_compaction())
        .await
        .unwrap_err();
    assert!(
        bad.to_string().contains("unknown datastore scheme"),
        "{bad}"
    );
}

/// A CA and certificates signed by it for a TLS test (etcd, PostgreSQL), written as PEM files
/// under `dir`. Both leaves name localhost and 127.0.0.1; the client's common name is the
/// throwaway PostgreSQL's user.
struct TestPki {
    ca: std::path::PathBuf,
    server_cert: std::path::PathBuf,
    server_key: std::path::PathBuf,
    client_cert: std::path::PathBuf,
    client_key: std::path::PathBuf,
}

fn test_pki(dir: &std::path::Path, tag: &str) -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("test-ca-{tag}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |cn: &str, eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params
            .subject_alt_names
            .push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params.extended_key_usages = vec![eku];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server_pem, server_key_pem) = leaf("server", ExtendedKeyUsagePurpose::ServerAuth);
    let (client_pem, client_key_pem) = leaf(
        skiff_store::pgcluster::USER,
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, pem: &str| {
        let path = dir.join(format!("{tag}-{name}"));
        std::fs::write(&path, pem).unwrap();
        path
    };
    TestPki {
        ca: write("ca.crt", &ca_cert.pem()),
        server_cert: write("server.crt", &server_pem),
        server_key: write("server.key", &server_key_pem),
        client_cert: write("client.crt", &client_pem),
        client_key: write("client.key", &client_key_pem),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_over_tls_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path(), "good");
    let server = tokio::task::spawn_blocking({
        let tls = skiff_store::etcdserver::ServerTls {
            cert_file: pki.server_cert.clone(),
            key_file: pki.server_key.clone(),
            client_ca_file: pki.ca.clone(),
        };
        move || EtcdServer::start_tls(&tls)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("cannot start a throwaway etcd: {e}"));
    let endpoint = server.endpoint();
    assert!(endpoint.starts_with("https://"), "{endpoint}");
    let with = with_tls;
    let dummy = dir.path().join("db.sqlite");
    let store = within(
        "open etcd over TLS",
        Store::open_endpoint(
            &endpoint,
            &dummy,
            with(&pki.ca, Some((&pki.client_cert, &pki.client_key))),
        ),
    )
    .await
    .expect("open etcd over TLS with a client certificate");
    assert_eq!(store.engine_name(), "etcd");
    let mut w = store.watch("/tls/", store.current_revision()).unwrap();
    let rev = store.create("/tls/a", b"secret".to_vec()).await.unwrap();
    let ev = next_event(&mut w).await;
    assert_eq!((ev.revision(), &*ev.kv.value), (rev, &b"secret"[..]));
    drop(w);
    drop(store);

    // Without a client certificate etcd refuses the connection: the error names the TLS files.
    let refused = within(
        "open etcd without a client certificate",
        Store::open_endpoint(&endpoint, &dummy, with(&pki.ca, None)),
    )
    .await
    .expect_err("etcd asks for a client certificate");
    let msg = refused.to_string();
    assert!(msg.contains("--datastore-certfile"), "{msg}");
    // A CA that did not sign etcd's certificate: the server is not trusted.
    let other = test_pki(dir.path(), "other");
    let untrusted = within(
        "open etcd with the wrong CA",
        Store::open_endpoint(
            &endpoint,
            &dummy,
            with(&other.ca, Some((&pki.client_cert, &pki.client_key))),
        ),
    )
    .await
    .expect_err("etcd's certificate is not signed by that CA");
    let msg = untrusted.to_string();
    assert!(msg.contains("--datastore-cafile"), "{msg}");
    drop(server);
}

/// Options with TLS files: a CA, and a client certificate with its key.
fn with_tls(ca: &std::path::Path, client: Option<(&std::path::Path, &std::path::Path)>) -> Options {
    Options {
        tls: skiff_store::DatastoreTls {
            ca_file: Some(ca.to_path_buf()),
            cert_file: client.map(|c| c.0.to_path_buf()),
            key_file: client.map(|c| c.1.to_path_buf()),
        },
        ..no_compaction()
    }
}

/// A throwaway PostgreSQL that takes TCP clients over TLS only.
async fn tls_cluster(pki: &TestPki, client_certificates: bool) -> PgCluster {
    let tls = skiff_store::pgcluster::ServerTls {
        cert_file: pki.server_cert.clone(),
        key_file: pki.server_key.clone(),
        client_ca_file: client_certificates.then(|| pki.ca.clone()),
    };
    tokio::task::spawn_blocking(move || PgCluster::start_tls(&tls))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL with TLS: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path(), "good");
    let cluster = tls_cluster(&pki, false).await;
    let url = within("create database", cluster.create_database("tls"))
        .await
        .unwrap();
    let dummy = dir.path().join("db.sqlite");
    let store = within(
        "open postgres over TLS",
        Store::open_endpoint(&url, &dummy, with_tls(&pki.ca, None)),
    )
    .await
    .expect("open postgres over TLS with the server's CA");
    assert_eq!(store.engine_name(), "postgres");
    // Writes go through the pool, watch events through the LISTEN connection: both TLS.
    let mut w = store.watch("/tls/", store.current_revision()).unwrap();
    let rev = store.create("/tls/a", b"secret".to_vec()).await.unwrap();
    let got = store
        .get("/tls/a")
        .await
        .unwrap()
        .expect("the key is there");
    assert_eq!((got.mod_revision, &*got.value), (rev, &b"secret"[..]));
    let ev = next_event(&mut w).await;
    assert_eq!((ev.revision(), &*ev.kv.value), (rev, &b"secret"[..]));
    drop(w);
    drop(store);

    // libpq's verify-full is accepted and means what it says.
    let store = within(
        "open postgres with sslmode=verify-full",
        Store::open_endpoint(
            &format!("{url}?sslmode=verify-full"),
            &dummy,
            with_tls(&pki.ca, None),
        ),
    )
    .await
    .expect("sslmode=verify-full with the server's CA");
    assert_eq!(
        store.get("/tls/a").await.unwrap().unwrap().mod_revision,
        rev
    );
    drop(store);

    // A CA that did not sign the server's certificate: a TLS error naming the CA flag.
    let other = test_pki(dir.path(), "other");
    let untrusted = within(
        "open postgres with the wrong CA",
        Store::open_endpoint(&url, &dummy, with_tls(&other.ca, None)),
    )
    .await
    .expect_err("the server's certificate is not signed by that CA");
    let msg = untrusted.to_string();
    assert!(
        matches!(untrusted, StoreError::Tls { .. }) && msg.contains("--datastore-cafile"),
        "{msg}"
    );
    // sslmode=require without a CA file verifies against the system's roots, which do not
    // know the test CA.
    let system = within(
        "open postgres with sslmode=require and no CA file",
        Store::open_endpoint(&format!("{url}?sslmode=require"), &dummy, no_compaction()),
    )
    .await
    .expect_err("the system's roots do not know the test CA");
    assert!(matches!(system, StoreError::Tls { .. }), "{system}");
    // Without TLS the server turns the connection away (pg_hba has hostssl only).
    let plain = within(
        "open postgres without TLS",
        Store::open_endpoint(&url, &dummy, no_compaction()),
    )
    .await
    .expect_err("the server takes TLS connections only");
    let msg = plain.to_string();
    assert!(
        matches!(plain, StoreError::Credentials { .. }) && msg.contains("no encryption"),
        "{msg}"
    );
    // An unreadable CA file is named with its flag.
    let missing = dir.path().join("missing-ca.crt");
    let unreadable = Store::open_endpoint(&url, &dummy, with_tls(&missing, None))
        .await
        .expect_err("the CA file does not exist");
    let msg = unreadable.to_string();
    assert!(
        matches!(unreadable, StoreError::Endpoint(_))
            && msg.contains("--datastore-cafile")
            && msg.contains(&missing.display().to_string()),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_with_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = test_pki(dir.path(), "good");
    let cluster = tls_cluster(&pki, true).await;
    let url = within("create database", cluster.create_database("certs"))
        .await
        .unwrap();
    // The password is not what logs in: the certificate is.
    let url = url.replace(cluster.password(), "not-the-password");
    let dummy = dir.path().join("db.sqlite");
    let client = Some((pki.client_cert.as_path(), pki.client_key.as_path()));
    let store = within(
        "open postgres with a client certificate",
        Store::open_endpoint(&url, &dummy, with_tls(&pki.ca, client)),
    )
    .await
    .expect("open postgres with a client certificate");
    let mut w = store.watch("/certs/", store.current_revision()).unwrap();
    let rev = store.create("/certs/a", b"1".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision(), rev);
    drop(w);
    drop(store);

    // No client certificate: refused, and the error names the certificate flags.
    let refused = within(
        "open postgres without a client certificate",
        Store::open_endpoint(&url, &dummy, with_tls(&pki.ca, None)),
    )
    .await
    .expect_err("the server wants a client certificate");
    let msg = refused.to_string();
    assert!(
        matches!(refused, StoreError::Tls { .. })
            && msg.contains("certificate")
            && msg.contains("--datastore-certfile"),
        "{msg}"
    );
    // A client certificate from a CA the server does not trust.
    let other = test_pki(dir.path(), "other");
    let foreign = Some((other.client_cert.as_path(), other.client_key.as_path()));
    let untrusted = within(
        "open postgres with an untrusted client certificate",
        Store::open_endpoint(&url, &dummy, with_tls(&pki.ca, foreign)),
    )
    .await
    .expect_err("the server does not trust that client certificate");
    let msg = untrusted.to_string();
    assert!(
        matches!(untrusted, StoreError::Tls { .. }) && msg.contains("--datastore-certfile"),
        "{msg}"
    );
    // A certificate without its key is refused before connecting.
    let half = Options {
        tls: skiff_store::DatastoreTls {
            ca_file: Some(pki.ca.clone()),
            cert_file: Some(pki.client_cert.clone()),
            key_file: None,
        },
        ..no_compaction()
    };
    let half = Store::open_endpoint(&url, &dummy, half)
        .await
        .expect_err("a certificate needs its key");
    assert!(half.to_string().contains("give both or neither"), "{half}");
    drop(cluster);
}

/// etcd dies and comes back (same data, same port): the store reconnects by itself, and a
/// watcher resumes from its last revision with nothing lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_is_survived() {
    let mut server = tokio::task::spawn_blocking(EtcdServer::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot start a throwaway etcd: {e}"));
    let store = Store::open_etcd(&[server.endpoint()], no_compaction())
        .await
        .expect("open etcd store");
    let mut w = store.watch("/r/", store.current_revision()).unwrap();
    let r1 = store.create("/r/a", b"1".to_vec()).await.unwrap();
    assert_eq!(next_event(&mut w).await.revision(), r1);
    let server = tokio::task::spawn_blocking(move || {
        server.restart().expect("etcd restarts");
        server
    })
    .await
    .unwrap();
    // Writes fail while the connection is re-established, then go through.
    let deadline = tokio::time::Instant::now() + WAIT;
    let r2 = loop {
        match store.create("/r/b", b"2".to_vec()).await {
            Ok(rev) => break rev,
            // An attempt whose answer was lost may have applied: it counts as the write.
            Err(StoreError::AlreadyExists) => {
                break store.get("/r/b").await.unwrap().unwrap().mod_revision
            }
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("create after the restart: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("etcd is back but writes still fail: {e}"),
        }
    };
    let r3 = store.update("/r/a", b"3".to_vec(), r1).await.unwrap();
    assert_eq!(revisions_until(&mut w, r3).await, vec![r2, r3]);
    drop(server);
}
