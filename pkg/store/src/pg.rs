//! The PostgreSQL engine: the same revisioned log as SQLite, shared by several servers.
//!
//! Schema (kine's design): one `skiff_kv` row per write, its `id` the global revision, and a
//! unique `(name, prev_revision)` so two writers can never both succeed on the same version
//! of a key. The revision comes from a single-row counter (`skiff_meta.revision`) that every
//! write transaction locks and bumps, so revisions are dense and commit in order across
//! servers: a reader that sees revision N sees every revision below it. That is what makes
//! the cross-server watch simple and exact: each store LISTENs on `skiff_kv`, every write
//! transaction NOTIFYs on commit, and a notification (or a periodic poll, or a reconnect)
//! triggers a catch-up query `id > last ORDER BY id`, whose events are broadcast to this
//! process's watchers — nothing lost, nothing doubled. Writes from this process are
//! group-committed by one task as on SQLite.
//!
//! TLS (rustls): on when `--datastore-cafile/--datastore-certfile/--datastore-keyfile` are
//! given or the URL says `sslmode=require`; the server's certificate is then always verified
//! (against `--datastore-cafile`, else the system's roots) for the URL's host name. Unlike
//! libpq, `sslmode=require` without a CA file does not skip that check, and the default
//! `sslmode=prefer` without TLS files connects in plain text as before (it would otherwise
//! fail against every server whose certificate the system roots do not cover).

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, IsolationLevel, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::db::{build_event, KeyRange};
use crate::writer::{Request, WriteOp, WriteOutcome};
use crate::{Core, DatastoreTls, Event, Feed, KeyValue, ListResult, StoreError};

/// The NOTIFY channel every write transaction signals on commit.
const CHANNEL: &str = "skiff_kv";
/// Advisory lock ids: schema creation and compaction (one server at a time).
const SCHEMA_LOCK: i64 = 0x736b_6966_0001;
const COMPACT_LOCK: i64 = 0x736b_6966_0002;
/// The most writes committed in one transaction.
const MAX_BATCH: usize = 1024;
/// How many events one catch-up read returns.
const CATCH_UP_CHUNK: i64 = 1000;
/// How often the listener polls when no notification came (covers a lost notification).
const POLL: Duration = Duration::from_secs(2);
/// How long connecting may take before the datastore counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How many revisions one compaction step covers (one short transaction each).
const COMPACT_STEP: i64 = 2000;

/// Created once, under [`SCHEMA_LOCK`] (two servers starting together would race).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS skiff_kv (
    id BIGINT PRIMARY KEY,
    name TEXT COLLATE \"C\" NOT NULL,
    created BOOLEAN NOT NULL,
    deleted BOOLEAN NOT NULL,
    create_revision BIGINT NOT NULL,
    prev_revision BIGINT NOT NULL,
    value BYTEA NOT NULL,
    old_value BYTEA
);
CREATE INDEX IF NOT EXISTS skiff_kv_name_id ON skiff_kv (name, id);
CREATE UNIQUE INDEX IF NOT EXISTS skiff_kv_name_prev ON skiff_kv (name, prev_revision);
CREATE TABLE IF NOT EXISTS skiff_meta (
    key TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO skiff_meta (key, value) VALUES
    ('revision', 0), ('compact_revision', 0), ('compact_progress', 0)
    ON CONFLICT (key) DO NOTHING;
";

/// A connection pool to one PostgreSQL database and what is needed to open more.
pub(crate) struct Pg {
    pool: Pool,
    config: tokio_postgres::Config,
    /// The connector of every connection, pooled or listening (see [`connector`]).
    tls: MakeRustlsConnect,
    /// The endpoint without its password, for messages.
    pub(crate) display: String,
}

/// The endpoint as `user@host:port/db`, never with the password.
fn display_endpoint(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(h) => h.clone(),
            tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("");
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{host}:{port}/{db}")
}

/// Turns a driver error into a `StoreError` with the server's own message when it sent one.
pub(crate) fn pg_error(display: &str, err: tokio_postgres::Error) -> StoreError {
    if let Some(db) = err.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
            && db.message().contains("certificate")
        {
            // pg_hba's `cert` method: no client certificate, or not one for this user.
            return StoreError::Tls {
                endpoint: display.to_owned(),
                reason: db.message().to_owned(),
            };
        }
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return StoreError::Credentials {
                endpoint: display.to_owned(),
                reason: db.message().to_owned(),
            };
        }
        return StoreError::Postgres(format!("{}: {}", db.severity(), db.message()));
    }
    let tls = is_tls_failure(&err);
    if err.is_closed() && !tls {
        return StoreError::Unreachable {
            endpoint: display.to_owned(),
            reason: "the connection was closed".into(),
        };
    }
    // No server answer: the socket could not be opened, the TLS handshake failed (an
    // untrusted certificate, the wrong host name, a server without TLS, a refused client
    // certificate), or the connection broke.
    let mut reason = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    if tls {
        return StoreError::Tls {
            endpoint: display.to_owned(),
            reason,
        };
    }
    StoreError::Unreachable {
        endpoint: display.to_owned(),
        reason,
    }
}

/// Whether the driver error comes from TLS: the handshake (tokio-postgres's own TLS error
/// kind, whose text is all that tells it apart) or a rustls error anywhere in the chain (with
/// TLS 1.3 a refused client certificate arrives as an alert after the handshake).
fn is_tls_failure(err: &tokio_postgres::Error) -> bool {
    if err
        .to_string()
        .starts_with("error performing TLS handshake")
    {
        return true;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(s) = source {
        // `io::Error::source` skips the error it wraps, so look inside it too.
        let wrapped = s
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .is_some_and(|inner| inner.is::<rustls::Error>());
        if wrapped || s.is::<rustls::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Reads one TLS file, naming the flag and path when it cannot be read.
fn read_tls_file(flag: &str, path: &std::path::Path) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| {
        StoreError::Endpoint(format!(
            "{flag} {}: {e}; give a readable PEM file",
            path.display()
        ))
    })
}

/// The certificates in PEM file `path` (at least one).
fn read_certs(
    flag: &str,
    path: &std::path::Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, StoreError> {
    let pem = read_tls_file(flag, path)?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            StoreError::Endpoint(format!(
                "{flag} {}: {e}; give a PEM file of certificates",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(StoreError::Endpoint(format!(
            "{flag} {}: no certificate in it; give a PEM file with a BEGIN CERTIFICATE block",
            path.display()
        )));
    }
    Ok(certs)
}

/// Decides whether connections use TLS — the files or `sslmode=require` turn it on, and
/// then `sslmode` becomes `require` so a server without TLS is an error, never a silent
/// fallback to plain text — and builds the connector every connection uses.
///
/// Plain connections get `sslmode=disable` and a connector that trusts no CA: tokio-postgres
/// never calls a connector then (no SSLRequest is sent, as with `NoTls`), and one connector
/// type keeps a single code path for pooled and listening connections.
fn connector(
    config: &mut tokio_postgres::Config,
    tls: &DatastoreTls,
    display: &str,
) -> Result<MakeRustlsConnect, StoreError> {
    let use_tls = match config.get_ssl_mode() {
        SslMode::Disable if tls.is_set() => {
            return Err(StoreError::Endpoint(format!(
                "{display}: sslmode=disable turns TLS off, but --datastore-cafile, --datastore-certfile or --datastore-keyfile was given; drop sslmode=disable from --datastore-endpoint or drop the files"
            )))
        }
        SslMode::Disable => false,
        SslMode::Require => true,
        // `prefer`, the default: TLS only with files (see the module comment).
        _ => tls.is_set(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Tls {
            endpoint: display.to_owned(),
            reason: format!("cannot set up TLS: {e}"),
        })?;
    if !use_tls {
        config.ssl_mode(SslMode::Disable);
        let unused = builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        return Ok(MakeRustlsConnect::new(unused));
    }
    config.ssl_mode(SslMode::Require);
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err(StoreError::Endpoint(
            "--datastore-certfile and --datastore-keyfile go together; give both or neither".into(),
        ));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_file {
        Some(path) => {
            for cert in read_certs("--datastore-cafile", path)? {
                roots.add(cert).map_err(|e| {
                    StoreError::Endpoint(format!(
                        "--datastore-cafile {}: {e}; give the PEM certificate of the CA that signed the datastore's certificate",
                        path.display()
                    ))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for err in &native.errors {
                tracing::debug!(error = %err, "reading the system's CA certificates");
            }
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                return Err(StoreError::Tls {
                    endpoint: display.to_owned(),
                    reason: "the system has no CA certificates to verify the server with".into(),
                });
            }
        }
    }
    let builder = builder.with_root_certificates(roots);
    let mut client = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => {
            let certs = read_certs("--datastore-certfile", cert)?;
            let pem = read_tls_file("--datastore-keyfile", key)?;
            let key_der = rustls_pemfile::private_key(&mut pem.as_slice())
                .map_err(|e| {
                    StoreError::Endpoint(format!(
                        "--datastore-keyfile {}: {e}; give a PEM private key",
                        key.display()
                    ))
                })?
                .ok_or_else(|| {
                    StoreError::Endpoint(format!(
                        "--datastore-keyfile {}: no private key in it; give a PEM private key",
                        key.display()
                    ))
                })?;
            builder.with_client_auth_cert(certs, key_der).map_err(|e| {
                StoreError::Endpoint(format!(
                    "--datastore-certfile {} and --datastore-keyfile {}: {e}; give a certificate and its own key",
                    cert.display(),
                    key.display()
                ))
            })?
        }
        _ => builder.with_no_client_auth(),
    };
    // What libpq 17 sends; PostgreSQL 17 requires it for `sslnegotiation=direct`.
    client.alpn_protocols = vec![b"postgresql".to_vec()];
    // (`display` would name tracing's helper inside the macro.)
    let endpoint = display;
    tracing::debug!(endpoint, ca_file = ?tls.ca_file, client_cert = tls.cert_file.is_some(),
        "datastore: postgres over TLS");
    Ok(MakeRustlsConnect::new(client))
}

fn pool_error(display: &str, err: deadpool_postgres::PoolError) -> StoreError {
    match err {
        deadpool_postgres::PoolError::Backend(e) => pg_error(display, e),
        deadpool_postgres::PoolError::Timeout(_) => StoreError::Unreachable {
            endpoint: display.to_owned(),
            reason: "timed out waiting for a connection".into(),
        },
        deadpool_postgres::PoolError::Closed => StoreError::Closed,
        other => StoreError::Postgres(other.to_string()),
    }
}

/// The URL with libpq's `sslmode=verify-ca` and `sslmode=verify-full` (which k3s users
/// write) as `sslmode=require`, which tokio-postgres knows and skiff always verifies fully.
fn libpq_sslmodes(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let params: Vec<&str> = query
        .split('&')
        .map(|p| match p {
            "sslmode=verify-ca" | "sslmode=verify-full" => "sslmode=require",
            other => other,
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

/// A connection's driver future, over TLS or not.
type Connection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// One fresh connection (not pooled), with its driver future.
async fn connect(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    display: &str,
) -> Result<(tokio_postgres::Client, Connection), StoreError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(tls.clone())).await {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(err)) => Err(pg_error(display, err)),
        Err(_) => Err(StoreError::Unreachable {
            endpoint: display.to_owned(),
            reason: format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        }),
    }
}

impl Pg {
    /// Connects (checking reachability and credentials at once), creates the schema and
    /// builds the pool.
    pub(crate) async fn open(
        url: &str,
        pool_size: usize,
        tls: &DatastoreTls,
    ) -> Result<Pg, StoreError> {
        let mut config = tokio_postgres::Config::from_str(&libpq_sslmodes(url)).map_err(|e| {
            StoreError::Endpoint(format!(
                "cannot parse the postgres endpoint: {e}; use postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            ))
        })?;
        let display = display_endpoint(&config);
        let tls = connector(&mut config, tls, &display)?;
        let (client, conn) = connect(&config, &tls, &display).await?;
        let driver = tokio::spawn(conn);
        let schema = client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
            ))
            .await;
        drop(client);
        let _ = driver.await;
        schema.map_err(|e| pg_error(&display, e))?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(2))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Postgres(format!("cannot build the connection pool: {e}")))?;
        Ok(Pg {
            pool,
            config,
            tls,
            display,
        })
    }

    fn err(&self, e: tokio_postgres::Error) -> StoreError {
        pg_error(&self.display, e)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.display, e))
    }

    /// The current and compact revisions stored in the database.
    pub(crate) async fn load_revisions(&self) -> Result<(i64, i64), StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key, value FROM skiff_meta WHERE key IN ('revision', 'compact_revision')",
                &[],
            )
            .await
            .map_err(|e| self.err(e))?;
        Ok(revisions(&rows))
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<KeyValue>, StoreError> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT id, deleted, create_revision, value FROM skiff_kv WHERE name = $1 \
                 ORDER BY id DESC LIMIT 1",
            )
            .await
            .map_err(|e| self.err(e))?;
        let row = client
            .query_opt(&stmt, &[&key])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.and_then(|r| {
            let deleted: bool = r.get(1);
            (!deleted).then(|| KeyValue {
                key: key.to_owned(),
                mod_revision: r.get(0),
                create_revision: r.get(2),
                value: Arc::from(r.get::<_, Vec<u8>>(3)),
            })
        }))
    }

    pub(crate) async fn list(
        &self,
        range: &KeyRange,
        revision: i64,
        start_after: Option<String>,
        limit: usize,
    ) -> Result<ListResult, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        let compact = compact_in(&tx).await.map_err(|e| self.err(e))?;
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
        let fetch: Option<i64> = (limit > 0).then_some(limit as i64 + 1);
        let inner = latest_rows_sql(range, exclusive);
        let sql = format!(
            "SELECT kv.id, kv.name, kv.create_revision, kv.value FROM ({inner}) AS m \
             JOIN skiff_kv kv ON kv.id = m.mid WHERE NOT kv.deleted ORDER BY kv.name LIMIT $4"
        );
        let stmt = tx.prepare_cached(&sql).await.map_err(|e| self.err(e))?;
        let end = range.end.clone().unwrap_or_default();
        let rows = tx
            .query(&stmt, &[&lower, &end, &revision, &fetch])
            .await
            .map_err(|e| self.err(e))?;
        let mut kvs: Vec<KeyValue> = rows
            .iter()
            .map(|r| KeyValue {
                mod_revision: r.get(0),
                key: r.get(1),
                create_revision: r.get(2),
                value: Arc::from(r.get::<_, Vec<u8>>(3)),
            })
            .collect();
        let more = limit > 0 && kvs.len() > limit;
        let mut remaining = 0;
        if more {
            kvs.truncate(limit);
            let last = kvs.last().map(|kv| kv.key.clone()).unwrap_or_default();
            let inner = latest_rows_sql(range, true);
            let sql = format!(
                "SELECT COUNT(*) FROM ({inner}) AS m JOIN skiff_kv kv ON kv.id = m.mid \
                 WHERE NOT kv.deleted"
            );
            let stmt = tx.prepare_cached(&sql).await.map_err(|e| self.err(e))?;
            remaining = tx
                .query_one(&stmt, &[&last, &end, &revision])
                .await
                .map_err(|e| self.err(e))?
                .get(0);
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(ListResult {
            kvs,
            revision,
            more,
            remaining,
        })
    }

    pub(crate) async fn count(&self, range: &KeyRange) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let inner = latest_rows_sql(range, false);
        let sql = format!(
            "SELECT COUNT(*) FROM ({inner}) AS m JOIN skiff_kv kv ON kv.id = m.mid \
             WHERE NOT kv.deleted"
        );
        let stmt = client.prepare_cached(&sql).await.map_err(|e| self.err(e))?;
        let end = range.end.clone().unwrap_or_default();
        let n = client
            .query_one(&stmt, &[&range.prefix, &end, &i64::MAX])
            .await
            .map_err(|e| self.err(e))?
            .get(0);
        Ok(n)
    }

    /// Up to `limit` events under `range` after `after`, in revision order, read in one
    /// snapshot that also checks the compact revision.
    pub(crate) async fn history(
        &self,
        range: &KeyRange,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        let compact = compact_in(&tx).await.map_err(|e| self.err(e))?;
        if after < compact {
            return Err(StoreError::Compacted {
                compact_revision: compact,
                requested: after,
            });
        }
        let upper = if range.end.is_some() {
            "name < $3"
        } else {
            "$3 = ''"
        };
        let sql = format!(
            "SELECT id, name, created, deleted, create_revision, prev_revision, value, old_value \
             FROM skiff_kv WHERE id > $1 AND name >= $2 AND {upper} ORDER BY id LIMIT $4"
        );
        let stmt = tx.prepare_cached(&sql).await.map_err(|e| self.err(e))?;
        let end = range.end.clone().unwrap_or_default();
        let rows = tx
            .query(&stmt, &[&after, &range.prefix, &end, &(limit as i64)])
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(rows.iter().map(event_from_row).collect())
    }
}

/// SQL for "the latest row at or below a revision of every key in a range" ($1 lower bound,
/// $2 upper bound or '' for none, $3 revision).
fn latest_rows_sql(range: &KeyRange, lower_exclusive: bool) -> String {
    let lower = if lower_exclusive {
        "name > $1"
    } else {
        "name >= $1"
    };
    let upper = if range.end.is_some() {
        " AND name < $2"
    } else {
        " AND $2 = ''"
    };
    format!("SELECT MAX(id) AS mid FROM skiff_kv WHERE {lower}{upper} AND id <= $3 GROUP BY name")
}

/// (revision, compact revision) from `skiff_meta` rows of (key, value).
fn revisions(rows: &[Row]) -> (i64, i64) {
    let mut current = 0;
    let mut compact = 0;
    for row in rows {
        let key: &str = row.get(0);
        let value: i64 = row.get(1);
        match key {
            "revision" => current = value,
            "compact_revision" => compact = value,
            _ => {}
        }
    }
    (current.max(compact), compact)
}

async fn compact_in(tx: &deadpool_postgres::Transaction<'_>) -> Result<i64, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached("SELECT value FROM skiff_meta WHERE key = 'compact_revision'")
        .await?;
    Ok(tx.query_opt(&stmt, &[]).await?.map_or(0, |r| r.get(0)))
}

fn event_from_row(r: &Row) -> Event {
    build_event(
        r.get(0),
        r.get(1),
        r.get(2),
        r.get(3),
        r.get(4),
        r.get(5),
        Arc::from(r.get::<_, Vec<u8>>(6)),
        r.get::<_, Option<Vec<u8>>>(7),
    )
}

/// The latest row of a key, as a write batch needs it.
#[derive(Clone, Debug)]
pub(crate) struct Latest {
    pub(crate) id: i64,
    pub(crate) deleted: bool,
    pub(crate) create_revision: i64,
    pub(crate) value: Arc<[u8]>,
}

/// One row a write batch inserts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NewRow {
    pub(crate) id: i64,
    pub(crate) name: String,
    pub(crate) created: bool,
    pub(crate) deleted: bool,
    pub(crate) create_revision: i64,
    pub(crate) prev_revision: i64,
    pub(crate) value: Arc<[u8]>,
    pub(crate) old_value: Option<Arc<[u8]>>,
}

/// What a write batch does: the rows to insert and each write's answer.
pub(crate) struct BatchPlan {
    pub(crate) rows: Vec<NewRow>,
    pub(crate) results: Vec<Result<WriteOutcome, StoreError>>,
    /// The revision of the last row (`start` when nothing is written).
    pub(crate) revision: i64,
}

/// Decides a batch of writes against the latest rows of their keys, in order: each accepted
/// write gets the next revision after `start` and sees the writes before it in the batch;
/// refused writes use up no revision.
pub(crate) fn plan_batch(
    mut latest: HashMap<String, Latest>,
    ops: Vec<WriteOp>,
    start: i64,
) -> BatchPlan {
    let mut rows = Vec::new();
    let mut results = Vec::with_capacity(ops.len());
    let mut revision = start;
    for op in ops {
        let next = revision + 1;
        let (key, row, deleted) = match op {
            WriteOp::Create { key, value } => {
                let current = latest.get(&key);
                if current.is_some_and(|l| !l.deleted) {
                    results.push(Err(StoreError::AlreadyExists));
                    continue;
                }
                let row = NewRow {
                    id: next,
                    name: key.clone(),
                    created: true,
                    deleted: false,
                    create_revision: next,
                    prev_revision: current.map_or(0, |l| l.id),
                    value: Arc::from(value),
                    old_value: None,
                };
                (key, row, None)
            }
            WriteOp::Update {
                key,
                value,
                expected,
            } => {
                let current = match latest.get(&key) {
                    Some(l) if !l.deleted => l,
                    _ => {
                        results.push(Err(StoreError::NotFound));
                        continue;
                    }
                };
                if expected != 0 && expected != current.id {
                    results.push(Err(StoreError::Conflict {
                        current_revision: current.id,
                    }));
                    continue;
                }
                let row = NewRow {
                    id: next,
                    name: key.clone(),
                    created: false,
                    deleted: false,
                    create_revision: current.create_revision,
                    prev_revision: current.id,
                    value: Arc::from(value),
                    old_value: Some(current.value.clone()),
                };
                (key, row, None)
            }
            WriteOp::Delete { key, expected } => {
                let current = match latest.get(&key) {
                    Some(l) if !l.deleted => l,
                    _ => {
                        results.push(Err(StoreError::NotFound));
                        continue;
                    }
                };
                if expected != 0 && expected != current.id {
                    results.push(Err(StoreError::Conflict {
                        current_revision: current.id,
                    }));
                    continue;
                }
                let prev = KeyValue {
                    key: key.clone(),
                    value: current.value.clone(),
                    create_revision: current.create_revision,
                    mod_revision: current.id,
                };
                let row = NewRow {
                    id: next,
                    name: key.clone(),
                    created: false,
                    deleted: true,
                    create_revision: current.create_revision,
                    prev_revision: current.id,
                    value: current.value.clone(),
                    old_value: None,
                };
                (key, row, Some(prev))
            }
        };
        latest.insert(
            key,
            Latest {
                id: row.id,
                deleted: row.deleted,
                create_revision: row.create_revision,
                value: row.value.clone(),
            },
        );
        rows.push(row);
        revision = next;
        results.push(Ok(WriteOutcome {
            revision: next,
            deleted,
        }));
    }
    BatchPlan {
        rows,
        results,
        revision,
    }
}

type WriteReply = oneshot::Sender<Result<WriteOutcome, StoreError>>;

/// The write task: group-commits every queued write in one transaction that holds the
/// revision counter; compactions run beside it.
pub(crate) async fn run_writer(pg: Arc<Pg>, core: Arc<Core>, mut rx: mpsc::Receiver<Request>) {
    let compaction = Arc::new(tokio::sync::Mutex::new(()));
    while let Some(first) = rx.recv().await {
        let mut writes: Vec<(WriteOp, WriteReply)> = Vec::new();
        let mut next = Some(first);
        while let Some(req) = next.take() {
            match req {
                Request::Write { op, reply } => writes.push((op, reply)),
                Request::Compact { revision, reply } => {
                    let (pg, core, lock) = (pg.clone(), core.clone(), compaction.clone());
                    tokio::spawn(async move {
                        let _one = lock.lock().await;
                        let _ = reply.send(compact(&pg, &core, revision).await);
                    });
                }
            }
            if writes.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if writes.is_empty() {
            continue;
        }
        let (ops, replies): (Vec<_>, Vec<_>) = writes.into_iter().unzip();
        match commit_batch(&pg, ops).await {
            Ok(plan) => {
                core.current_rev.fetch_max(plan.revision, Ordering::SeqCst);
                core.commits.fetch_add(1, Ordering::Relaxed);
                for (reply, result) in replies.into_iter().zip(plan.results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "store write batch failed");
                let msg = err.to_string();
                for reply in replies {
                    let _ = reply.send(Err(StoreError::Postgres(format!(
                        "write not acknowledged: {msg}"
                    ))));
                }
            }
        }
    }
}

/// One batch in one transaction, in two pipelined round trips (plus the commit's flush):
/// BEGIN + counter lock + latest rows of the keys, then the rows + counter + NOTIFY + COMMIT.
async fn commit_batch(pg: &Pg, ops: Vec<WriteOp>) -> Result<BatchPlan, StoreError> {
    let client = pg.client().await?;
    let result = commit_batch_on(pg, &client, ops).await;
    if result.is_err() {
        // Never hand a connection back to the pool inside a transaction.
        let _ = client.batch_execute("ROLLBACK").await;
    }
    result
}

async fn commit_batch_on(
    pg: &Pg,
    client: &deadpool_postgres::Object,
    ops: Vec<WriteOp>,
) -> Result<BatchPlan, StoreError> {
    // Locks the counter until commit: writers of every server take turns here.
    let lock = client
        .prepare_cached("SELECT value FROM skiff_meta WHERE key = 'revision' FOR UPDATE")
        .await
        .map_err(|e| pg.err(e))?;
    let lookup = client
        .prepare_cached(
            "SELECT DISTINCT ON (name) name, id, deleted, create_revision, value FROM skiff_kv \
             WHERE name = ANY($1) ORDER BY name, id DESC",
        )
        .await
        .map_err(|e| pg.err(e))?;
    let insert = client
        .prepare_cached(
            "INSERT INTO skiff_kv (id, name, created, deleted, create_revision, prev_revision, \
             value, old_value) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bool[], \
             $4::bool[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[])",
        )
        .await
        .map_err(|e| pg.err(e))?;
    let bump = client
        .prepare_cached(
            "WITH u AS (UPDATE skiff_meta SET value = $1 WHERE key = 'revision' RETURNING value) \
             SELECT pg_notify('skiff_kv', value::text) FROM u",
        )
        .await
        .map_err(|e| pg.err(e))?;
    let mut keys: Vec<&str> = ops
        .iter()
        .map(|op| match op {
            WriteOp::Create { key, .. }
            | WriteOp::Update { key, .. }
            | WriteOp::Delete { key, .. } => key.as_str(),
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // Pipelined: requests go out in the order the futures are first polled.
    let lookup_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&keys];
    let (_, lock_rows, rows) = tokio::try_join!(
        client.batch_execute("BEGIN"),
        client.query(&lock, &[]),
        client.query(&lookup, &lookup_params),
    )
    .map_err(|e| pg.err(e))?;
    let start: i64 = lock_rows
        .first()
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Postgres("the revision counter row is missing".into()))?;
    let latest: HashMap<String, Latest> = rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                Latest {
                    id: r.get(1),
                    deleted: r.get(2),
                    create_revision: r.get(3),
                    value: Arc::from(r.get::<_, Vec<u8>>(4)),
                },
            )
        })
        .collect();
    let plan = plan_batch(latest, ops, start);
    if plan.rows.is_empty() {
        client
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| pg.err(e))?;
        return Ok(plan);
    }
    let ids: Vec<i64> = plan.rows.iter().map(|r| r.id).collect();
    let names: Vec<&str> = plan.rows.iter().map(|r| r.name.as_str()).collect();
    let created: Vec<bool> = plan.rows.iter().map(|r| r.created).collect();
    let deleted: Vec<bool> = plan.rows.iter().map(|r| r.deleted).collect();
    let creates: Vec<i64> = plan.rows.iter().map(|r| r.create_revision).collect();
    let prevs: Vec<i64> = plan.rows.iter().map(|r| r.prev_revision).collect();
    let values: Vec<&[u8]> = plan.rows.iter().map(|r| &*r.value).collect();
    let olds: Vec<Option<&[u8]>> = plan.rows.iter().map(|r| r.old_value.as_deref()).collect();
    // A failed INSERT aborts the transaction: the COMMIT then rolls back and the error of
    // the INSERT is what try_join reports.
    let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
        &ids, &names, &created, &deleted, &creates, &prevs, &values, &olds,
    ];
    let bump_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&plan.revision];
    tokio::try_join!(
        client.execute(&insert, &insert_params),
        client.execute(&bump, &bump_params),
        client.batch_execute("COMMIT"),
    )
    .map_err(|e| pg.err(e))?;
    Ok(plan)
}

/// Raises the compact revision to `revision`, then removes history at or below it in short
/// steps. Steps hold an advisory lock, so with several servers one compacts at a time and
/// none repeats another's work.
pub(crate) async fn compact(pg: &Pg, core: &Core, revision: i64) -> Result<(), StoreError> {
    let mut client = pg.client().await?;
    let row = client
        .query_one(
            "UPDATE skiff_meta SET value = GREATEST(value, $1) WHERE key = 'compact_revision' \
             RETURNING value",
            &[&revision],
        )
        .await
        .map_err(|e| pg.err(e))?;
    let target: i64 = row.get(0);
    core.compact_rev.fetch_max(target, Ordering::SeqCst);
    loop {
        let tx = client.transaction().await.map_err(|e| pg.err(e))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&COMPACT_LOCK])
            .await
            .map_err(|e| pg.err(e))?;
        let lo: i64 = tx
            .query_one(
                "SELECT value FROM skiff_meta WHERE key = 'compact_progress'",
                &[],
            )
            .await
            .map_err(|e| pg.err(e))?
            .get(0);
        if lo >= target {
            tx.commit().await.map_err(|e| pg.err(e))?;
            break;
        }
        let hi = (lo + COMPACT_STEP).min(target);
        // A row is superseded when a newer row of its key points back at it.
        tx.execute(
            "DELETE FROM skiff_kv WHERE id IN (SELECT prev_revision FROM skiff_kv \
             WHERE id > $1 AND id <= $2 AND prev_revision > 0)",
            &[&lo, &hi],
        )
        .await
        .map_err(|e| pg.err(e))?;
        tx.execute(
            "DELETE FROM skiff_kv WHERE id > $1 AND id <= $2 AND deleted",
            &[&lo, &hi],
        )
        .await
        .map_err(|e| pg.err(e))?;
        tx.execute(
            "UPDATE skiff_meta SET value = $1 WHERE key = 'compact_progress'",
            &[&hi],
        )
        .await
        .map_err(|e| pg.err(e))?;
        tx.commit().await.map_err(|e| pg.err(e))?;
    }
    tracing::debug!(revision = target, "store compacted");
    Ok(())
}

/// The listener: follows every server's commits (LISTEN/NOTIFY, a poll as a safety net,
/// catch-up by revision after a reconnect) and broadcasts the events in revision order.
pub(crate) async fn run_listener(
    pg: Arc<Pg>,
    core: Arc<Core>,
    events: broadcast::Sender<Feed>,
    mut last: i64,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = std::time::Instant::now();
        let Err(err) = listen_once(&pg, &core, &events, &mut last).await;
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(100);
        }
        tracing::warn!(error = %err, endpoint = %pg.display, retry_in = ?backoff,
            "datastore watch connection lost; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// One listening connection's life: returns only with the error that ended it. The task
/// running it is aborted when the store is dropped.
async fn listen_once(
    pg: &Pg,
    core: &Core,
    events: &broadcast::Sender<Feed>,
    last: &mut i64,
) -> Result<std::convert::Infallible, StoreError> {
    let (mut client, mut conn) = connect(&pg.config, &pg.tls, &pg.display).await?;
    let (ntx, mut nrx) = mpsc::unbounded_channel::<()>();
    // Drives the connection and turns notifications into wake-ups; ends with the connection.
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(msg) = futures::StreamExt::next(&mut messages).await {
            match msg {
                Ok(AsyncMessage::Notification(_)) => {
                    if ntx.send(()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "datastore watch connection ended");
                    return;
                }
            }
        }
    });
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _driver = Abort(driver);
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .map_err(|e| pg.err(e))?;
    loop {
        catch_up(pg, &mut client, core, events, last).await?;
        tokio::select! {
            got = nrx.recv() => {
                if got.is_none() {
                    return Err(StoreError::Unreachable {
                        endpoint: pg.display.clone(),
                        reason: "the watch connection closed".into(),
                    });
                }
                while nrx.try_recv().is_ok() {}
            }
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

/// Reads and broadcasts every event after `last`; also refreshes the compact revision.
async fn catch_up(
    pg: &Pg,
    client: &mut tokio_postgres::Client,
    core: &Core,
    events: &broadcast::Sender<Feed>,
    last: &mut i64,
) -> Result<(), StoreError> {
    loop {
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| pg.err(e))?;
        let meta = tx
            .query(
                "SELECT key, value FROM skiff_meta WHERE key IN ('revision', 'compact_revision')",
                &[],
            )
            .await
            .map_err(|e| pg.err(e))?;
        let (current, compact) = revisions(&meta);
        core.compact_rev.fetch_max(compact, Ordering::SeqCst);
        if *last < compact {
            // Events this process never saw were compacted away: every watcher re-reads from
            // the database (those that needed them get `Compacted`).
            tx.commit().await.map_err(|e| pg.err(e))?;
            core.current_rev.fetch_max(current, Ordering::SeqCst);
            *last = current;
            let _ = events.send(Feed::Resync);
            return Ok(());
        }
        let rows = tx
            .query(
                "SELECT id, name, created, deleted, create_revision, prev_revision, value, \
                 old_value FROM skiff_kv WHERE id > $1 ORDER BY id LIMIT $2",
                &[&*last, &CATCH_UP_CHUNK],
            )
            .await
            .map_err(|e| pg.err(e))?;
        tx.commit().await.map_err(|e| pg.err(e))?;
        // The revision is published before its events, as the SQLite writer does: a watcher
        // that starts at or after it has every later event coming through the broadcast.
        core.current_rev.fetch_max(current, Ordering::SeqCst);
        let short = (rows.len() as i64) < CATCH_UP_CHUNK;
        for row in &rows {
            let event = event_from_row(row);
            *last = event.revision();
            let _ = events.send(Feed::Event(event));
        }
        if short {
            *last = (*last).max(current);
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn latest(id: i64, deleted: bool, create: i64, value: &[u8]) -> Latest {
        Latest {
            id,
            deleted,
            create_revision: create,
            value: Arc::from(value),
        }
    }

    #[test]
    fn plan_batch_applies_writes_in_order_and_refused_ones_use_no_revision() {
        let mut current = HashMap::new();
        current.insert("/a".to_string(), latest(7, false, 3, b"a7"));
        current.insert("/gone".to_string(), latest(8, true, 2, b"g"));
        let ops = vec![
            WriteOp::Create {
                key: "/a".into(),
                value: b"x".to_vec(),
            },
            WriteOp::Update {
                key: "/a".into(),
                value: b"a11".to_vec(),
                expected: 7,
            },
            WriteOp::Update {
                key: "/a".into(),
                value: b"late".to_vec(),
                expected: 7,
            },
            WriteOp::Create {
                key: "/gone".into(),
                value: b"again".to_vec(),
            },
            WriteOp::Delete {
                key: "/a".into(),
                expected: 0,
            },
            WriteOp::Delete {
                key: "/missing".into(),
                expected: 0,
            },
            WriteOp::Create {
                key: "/a".into(),
                value: b"new".to_vec(),
            },
        ];
        let plan = plan_batch(current, ops, 10);
        assert_eq!(plan.revision, 14);
        let outcome: Vec<Result<i64, String>> = plan
            .results
            .iter()
            .map(|r| match r {
                Ok(o) => Ok(o.revision),
                Err(e) => Err(format!("{e:?}")),
            })
            .collect();
        assert_eq!(
            outcome,
            vec![
                Err("AlreadyExists".into()),
                Ok(11),
                Err("Conflict { current_revision: 11 }".into()),
                Ok(12),
                Ok(13),
                Err("NotFound".into()),
                Ok(14),
            ]
        );
        let shape: Vec<(i64, &str, bool, bool, i64, i64)> = plan
            .rows
            .iter()
            .map(|r| {
                (
                    r.id,
                    r.name.as_str(),
                    r.created,
                    r.deleted,
                    r.create_revision,
                    r.prev_revision,
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (11, "/a", false, false, 3, 7),
                (12, "/gone", true, false, 12, 8),
                (13, "/a", false, true, 3, 11),
                (14, "/a", true, false, 14, 13),
            ]
        );
        assert_eq!(plan.rows[0].old_value.as_deref(), Some(&b"a7"[..]));
        // A delete records the deleted value and answers with it.
        assert_eq!(&*plan.rows[2].value, b"a11");
        let deleted = plan.results[4].as_ref().unwrap().deleted.as_ref().unwrap();
        assert_eq!((&*deleted.value, deleted.mod_revision), (&b"a11"[..], 11));
    }

    #[test]
    fn plan_batch_with_only_refusals_writes_nothing() {
        let plan = plan_batch(
            HashMap::new(),
            vec![WriteOp::Update {
                key: "/none".into(),
                value: vec![],
                expected: 0,
            }],
            5,
        );
        assert!(plan.rows.is_empty());
        assert_eq!(plan.revision, 5);
    }

    #[test]
    fn tls_follows_the_files_and_sslmode() {
        let mode = |url: &str, tls: &DatastoreTls| {
            let mut config = tokio_postgres::Config::from_str(&libpq_sslmodes(url)).unwrap();
            connector(&mut config, tls, "db").map(|_| config.get_ssl_mode())
        };
        let none = DatastoreTls::default();
        let dir = std::env::temp_dir();
        let missing = dir.join("skiff-no-such-ca.pem");
        let ca = DatastoreTls {
            ca_file: Some(missing.clone()),
            ..Default::default()
        };
        // The default (prefer) without files stays plain; disable stays plain.
        assert_eq!(mode("postgres://u@h/db", &none).unwrap(), SslMode::Disable);
        assert_eq!(
            mode("postgres://u@h/db?sslmode=disable", &none).unwrap(),
            SslMode::Disable
        );
        // Files are read (and must exist) once TLS is on; the flag and path are named.
        let err = mode("postgres://u@h/db", &ca).unwrap_err().to_string();
        assert!(
            err.contains("--datastore-cafile") && err.contains(&missing.display().to_string()),
            "{err}"
        );
        let err = mode("postgres://u@h/db?sslmode=disable", &ca)
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode=disable"), "{err}");
        let half = DatastoreTls {
            cert_file: Some(missing),
            ..Default::default()
        };
        let err = mode("postgres://u@h/db?sslmode=require", &half)
            .unwrap_err()
            .to_string();
        assert!(err.contains("give both or neither"), "{err}");
        assert_eq!(
            libpq_sslmodes("postgres://u@h/db?connect_timeout=5&sslmode=verify-full"),
            "postgres://u@h/db?connect_timeout=5&sslmode=require"
        );
        assert_eq!(libpq_sslmodes("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn endpoints_are_shown_without_passwords() {
        let shown = |url: &str| display_endpoint(&tokio_postgres::Config::from_str(url).unwrap());
        assert_eq!(
            shown("postgres://skiff:secret@127.0.0.1:5433/cluster"),
            "postgres://skiff@127.0.0.1:5433/cluster"
        );
        assert_eq!(
            shown("postgresql://u:hunter2@db/x"),
            "postgres://u@db:5432/x"
        );
    }
}
