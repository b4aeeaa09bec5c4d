//! (being written) kubelet volumes.
