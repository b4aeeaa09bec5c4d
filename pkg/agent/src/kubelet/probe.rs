//! (being written) kubelet probe.
