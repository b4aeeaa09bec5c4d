//! (being written) kubelet env.
