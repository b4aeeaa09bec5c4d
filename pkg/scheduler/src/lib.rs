//! skiff's scheduler: a pure filter/score over nodes (`core`) plus a thin binding loop
//! (`run`) that talks to the API server only through kube-rs.

pub mod core;
pub mod events;
pub mod quantity;
pub mod run;
pub mod volumes;

pub use crate::core::{
    schedule, schedule_with_rng, schedule_with_volumes, FitError, NodeInfo, PodInfo, Resources,
};
pub use crate::run::{run, run_with, Options};

/// Errors of the scheduling loop.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("the {0} watch ended unexpectedly: restart the scheduler")]
    WatchEnded(&'static str),
}
