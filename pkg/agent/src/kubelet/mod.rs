//! The kubelet: runs the pods bound to this node as containers over CRI (sync loop, pod status,
//! restarts, termination, adoption after a restart), with volumes, env, probes and hooks.

pub mod env;
pub mod events;
pub mod hooks;
pub mod linux;
pub mod probe;
pub mod volumes;
