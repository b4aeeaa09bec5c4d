//! skiff's agent (kubelet): join, node registration and lease heartbeat, pod sync, runtimes (simulated; containerd later).
