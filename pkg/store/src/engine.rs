//! The storage engines behind [`crate::Store`]: the read side of each (writes go through each
//! engine's write task, fed by the store's request queue).
//!
//! An enum rather than a `dyn` trait: the set of engines is closed and known here, and the
//! enum keeps the read futures `Send` without boxing each call.

use std::sync::Arc;

use crate::db::{self, KeyRange, ReadPool};
use crate::etcd::Etcd;
use crate::pg::Pg;
use crate::{Core, Event, KeyValue, ListResult, StoreError};

pub(crate) enum Engine {
    /// One SQLite file, read through a pool of read-only connections.
    Sqlite(ReadPool),
    /// A PostgreSQL database, possibly shared with other servers.
    Postgres(Arc<Pg>),
    /// An etcd cluster, possibly shared with other servers.
    Etcd(Arc<Etcd>),
}

impl Engine {
    /// `core` is the store state this engine belongs to (etcd reports revisions into it).
    pub(crate) async fn get(&self, core: &Core, key: &str) -> Result<Option<KeyValue>, StoreError> {
        match self {
            Engine::Sqlite(pool) => {
                let key = key.to_owned();
                pool.run(move |conn| db::get(conn, &key)).await
            }
            Engine::Postgres(pg) => pg.get(key).await,
            Engine::Etcd(etcd) => etcd.get(core, key).await,
        }
    }

    pub(crate) async fn list(
        &self,
        core: &Core,
        range: KeyRange,
        revision: i64,
        start_after: Option<String>,
        limit: usize,
    ) -> Result<ListResult, StoreError> {
        match self {
            Engine::Sqlite(pool) => {
                pool.run(move |conn| db::list(conn, &range, revision, start_after, limit))
                    .await
            }
            Engine::Postgres(pg) => pg.list(&range, revision, start_after, limit).await,
            Engine::Etcd(etcd) => etcd.list(core, &range, revision, start_after, limit).await,
        }
    }

    pub(crate) async fn count(&self, core: &Core, range: KeyRange) -> Result<i64, StoreError> {
        match self {
            Engine::Sqlite(pool) => pool.run(move |conn| db::count(conn, &range)).await,
            Engine::Postgres(pg) => pg.count(&range).await,
            Engine::Etcd(etcd) => etcd.count(core, &range).await,
        }
    }

    /// Up to `limit` events under `range` after `after`, in revision order (SQLite and
    /// PostgreSQL; etcd watchers read history through etcd's own watch).
    pub(crate) async fn history(
        &self,
        range: KeyRange,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        match self {
            Engine::Sqlite(pool) => {
                pool.run(move |conn| db::history(conn, &range, after, limit))
                    .await
            }
            Engine::Postgres(pg) => pg.history(&range, after, limit).await,
            Engine::Etcd(_) => Err(StoreError::Etcd(
                "history is read through etcd watches, not the log reader".into(),
            )),
        }
    }

    /// The newest revision the engine has committed, for engines other servers write too
    /// (`None` for SQLite, whose only writer is this process).
    pub(crate) async fn shared_revision(&self) -> Result<Option<i64>, StoreError> {
        match self {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(pg) => Ok(Some(pg.load_revisions().await?.0)),
            Engine::Etcd(etcd) => Ok(Some(etcd.load_revisions().await?.0)),
        }
    }
}
