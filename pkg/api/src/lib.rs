//! skiff's Kubernetes API model: the kind registry and the pure logic the API server applies
//! to objects (held as `serde_json::Value`) — no IO here.

pub mod defaults;
pub mod registry;
pub mod validation;
