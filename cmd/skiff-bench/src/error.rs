//! The one error type of skiff-bench.

use std::path::PathBuf;

/// Everything that can stop a benchmark phase.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("i/o error while {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source} (is it installed and on PATH, or pass its path with a flag?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} did not become ready within {secs} s; see its log at {log}")]
    NotReady {
        what: String,
        secs: u64,
        log: PathBuf,
    },
    #[error("{what} exited before it was ready ({status}); see its log at {log}")]
    Exited {
        what: String,
        status: String,
        log: PathBuf,
    },
    #[error("kubeconfig {path} is unusable: {why}; check that the server wrote it completely")]
    Kubeconfig { path: PathBuf, why: String },
    #[error("tls setup failed: {0}; check the certificates in the kubeconfig")]
    Tls(String),
    #[error("http request {what} failed: {why}")]
    Http { what: String, why: String },
    #[error("unexpected status {status} for {what}: {body}")]
    Status {
        what: String,
        status: u16,
        body: String,
    },
    #[error("sqlite error: {0}; check that the temp dir is on a writable local file system")]
    Sqlite(#[from] rusqlite::Error),
    #[error("invalid argument {arg}: {why}")]
    Arg { arg: String, why: String },
    #[error("{0}")]
    Phase(String),
}

impl BenchError {
    /// Wraps an i/o error with what was being done.
    pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }

    /// An http failure for `what`.
    pub fn http(what: impl Into<String>, why: impl std::fmt::Display) -> BenchError {
        BenchError::Http {
            what: what.into(),
            why: why.to_string(),
        }
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, BenchError>;
