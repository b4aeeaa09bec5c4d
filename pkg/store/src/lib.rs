//! skiff's revisioned key-value log with watch (kine-style), on SQLite in WAL mode.
