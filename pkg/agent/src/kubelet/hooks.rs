//! (being written) kubelet hooks.
