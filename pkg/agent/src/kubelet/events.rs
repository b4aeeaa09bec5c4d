//! (being written) kubelet events.
