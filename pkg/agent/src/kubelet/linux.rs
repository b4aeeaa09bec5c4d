//! (being written) kubelet linux.
