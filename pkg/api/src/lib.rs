//! skiff's Kubernetes API model: the kind registry and the pure logic the API server applies
//! to objects (held as `serde_json::Value`) — no IO here.

pub mod cel;
pub mod crd;
pub mod defaults;
pub mod discovery;
pub mod flowcontrol;
pub mod hpa;
pub mod matchers;
pub mod openapi;
pub mod openapi_pb;
pub mod patch;
pub mod protobuf;
pub mod rbac;
pub mod registry;
pub mod selector;
pub mod table;
pub mod text;
pub mod validation;
pub mod webhook;
