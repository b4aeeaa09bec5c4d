//! skiff's controllers: one module per control loop, each a reconcile function over kube-rs watchers with a pure planning core.
