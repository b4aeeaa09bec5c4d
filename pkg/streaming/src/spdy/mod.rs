//! SPDY/3.1, hand-written: no maintained Rust SPDY crate exists (SPDY was retired in favour of
//! HTTP/2, but kubectl and the apiserver still use it for exec, attach and port-forward).

pub mod frame;
pub mod session;
pub mod zlib;
