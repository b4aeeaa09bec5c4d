//! Small file helpers: optional reads, atomic writes with an exact mode, permission fixes.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::PkiError;

/// Reads a UTF-8 file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>, PkiError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io("read", path, e)),
    }
}

/// Creates `dir` and its parents when missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    fs::create_dir_all(dir).map_err(|e| PkiError::io("create directory", dir, e))
}

fn tmp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// Writes `data` to `path` atomically (temporary file in the same directory, fsync, rename)
/// and leaves it with exactly `mode`, whatever the umask. Parent directories are created.
/// The temporary file is private (0600) until it is complete.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        ensure_dir(parent)?;
    }
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| PkiError::io("create", &tmp, e))?;
        f.write_all(data)
            .map_err(|e| PkiError::io("write", &tmp, e))?;
        f.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("set permissions of", &tmp, e))?;
        f.sync_all().map_err(|e| PkiError::io("sync", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Sets the mode of an existing file when it differs (used to keep private keys at 0600).
pub(crate) fn enforce_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    let meta = fs::metadata(path).map_err(|e| PkiError::io("stat", path, e))?;
    if meta.permissions().mode() & 0o7777 != mode {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| PkiError::io("set permissions of", path, e))?;
    }
    Ok(())
}
