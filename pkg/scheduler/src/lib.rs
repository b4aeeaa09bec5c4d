//! skiff's scheduler: a pure filter/score over nodes plus a thin binding loop.
