//! End-to-end test harness: boots the built `skiff server` in a temp dir and drives the real kubectl.
//!
//! The harness builds nothing: it runs the binary named by `SKIFF_BIN`, else
//! `$CARGO_TARGET_DIR/debug/skiff`, else `<workspace>/target/debug/skiff` (build it first with
//! `cargo build -p skiff`). Every server runs under a small bash wrapper that kills it and removes
//! its temp dir as soon as the test process goes away, so a server held in a `static` (one shared
//! server per test file) does not outlive the tests even though statics are never dropped.
//!
//! Modules: `cluster` (server boot, credentials, namespaces), `command` (binaries, running a
//! command with a timeout), `kubectl` (the kubectl runner and exact-output assertions), `http`
//! (curl requests), `waits` (polling for pods and nodes), `nodes` (hollow and sim agent
//! processes), `tables` (kubectl table parsing and normalising), `objects` (JSON scrubbing, pod
//! rows); `images`, `netns` and `multinode` (a server and agents on containerd in node netns) for the multi-node tests. Everything is re-exported here, so tests
//! `use skiff_e2e::*`.

pub mod images;
pub mod multinode;
pub mod netns;
pub mod tlsserver;

mod cluster;
mod command;
mod http;
mod kubectl;
mod nodes;
mod objects;
mod tables;
mod waits;

pub use cluster::*;
pub use command::*;
pub use http::*;
pub use kubectl::*;
pub use nodes::*;
pub use objects::*;
pub use tables::*;
pub use waits::*;
