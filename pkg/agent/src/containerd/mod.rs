//! containerd for the agent: the per-data-dir layout, generated config, registries, CNI
//! config, supervision of the containerd process, image import and skiff's own pause image.
//!
//! The kubelet (`crate::kubelet`) only needs [`Paths`], [`PAUSE_IMAGE`] and the [`crate::cri::Cri`]
//! connection to the socket that [`start`] brings up.

mod cni;
mod config;
mod import;
pub mod oci;
mod pause;
mod registries;
mod supervisor;

#[cfg(test)]
pub(crate) mod live_tests;

use std::path::{Path, PathBuf};

pub use cni::{
    cni_conflist, cni_conflist_with, write_cni_config, write_cni_config_with, CniNetwork,
    CNI_BRIDGE, CNI_CONFLIST,
};
pub use config::{containerd_config, detect_systemd_cgroup, ConfigInputs};
pub use import::{
    ensure_pause_image, import_archive, import_dir, list_images, normalize_image_name, ImageRow,
};
pub use pause::{pause_elf, pause_image};
pub use registries::{hosts_toml, registry_auth_toml, Registries};
pub use supervisor::{start, Supervisor};

use crate::Error;

/// skiff's own pause (sandbox) image: built in memory and imported, never pulled (`.invalid`
/// never resolves).
pub const PAUSE_IMAGE: &str = "skiff.invalid/pause:1.0";

/// Label that keeps containerd's CRI image garbage collection away from an image.
pub const PINNED_LABEL: &str = "io.cri-containerd.pinned";

/// The longest unix socket path the kernel accepts (`sun_path` is 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// Where one agent's containerd keeps everything; all under one data dir so that several
/// agents on one host never collide (except the CNI plugin binaries, which are shared).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// `<data>/agent/etc/containerd`
    pub config_dir: PathBuf,
    /// `<data>/agent/etc/containerd/config.toml` (generated)
    pub config_toml: PathBuf,
    /// `<data>/agent/etc/containerd/config.toml.tmpl` (used verbatim instead when present)
    pub config_tmpl: PathBuf,
    /// `<data>/agent/etc/containerd/certs.d` (one `<host>/hosts.toml` per registry)
    pub certs_d: PathBuf,
    /// containerd's root: `<data>/agent/containerd`
    pub root: PathBuf,
    /// containerd's state: `<data>/agent/run/containerd`
    pub state: PathBuf,
    /// `<data>/agent/run/containerd/containerd.sock`
    pub socket: PathBuf,
    /// `<data>/agent/etc/cni/net.d`
    pub cni_conf_dir: PathBuf,
    /// `/usr/lib/cni` (Debian's containernetworking-plugins), or `/opt/cni/bin` when only that exists
    pub cni_bin_dir: PathBuf,
    /// host-local IPAM state: `<data>/agent/cni`
    pub cni_state_dir: PathBuf,
    /// air-gap images imported at start: `<data>/agent/images`
    pub images_dir: PathBuf,
}

impl Paths {
    /// The layout under `data_dir`.
    pub fn new(data_dir: &Path) -> Paths {
        let agent = data_dir.join("agent");
        let config_dir = agent.join("etc").join("containerd");
        let state = agent.join("run").join("containerd");
        Paths {
            config_toml: config_dir.join("config.toml"),
            config_tmpl: config_dir.join("config.toml.tmpl"),
            certs_d: config_dir.join("certs.d"),
            config_dir,
            root: agent.join("containerd"),
            socket: state.join("containerd.sock"),
            state,
            cni_conf_dir: agent.join("etc").join("cni").join("net.d"),
            cni_bin_dir: cni_bin_dir(Path::new(DEBIAN_CNI_BIN), Path::new(UPSTREAM_CNI_BIN)),
            cni_state_dir: agent.join("cni"),
            images_dir: agent.join("images"),
        }
    }

    /// containerd's ttrpc socket (inside the state dir, beside the gRPC socket).
    pub fn ttrpc_socket(&self) -> PathBuf {
        self.state.join("containerd.sock.ttrpc")
    }

    /// Fails when a socket path is too long for the kernel, saying how to fix it.
    pub fn check_socket_lengths(&self) -> Result<(), Error> {
        for sock in [self.socket.clone(), self.ttrpc_socket()] {
            check_socket_path(&sock)?;
        }
        Ok(())
    }
}

const DEBIAN_CNI_BIN: &str = "/usr/lib/cni";
const UPSTREAM_CNI_BIN: &str = "/opt/cni/bin";

/// Debian's plugin dir unless only the upstream one exists.
fn cni_bin_dir(debian: &Path, upstream: &Path) -> PathBuf {
    if !debian.is_dir() && upstream.is_dir() {
        upstream.to_path_buf()
    } else {
        debian.to_path_buf()
    }
}

/// A unix socket path must fit in `sun_path`.
pub fn check_socket_path(sock: &Path) -> Result<(), Error> {
    let len = sock.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(Error::Config(format!(
            "the containerd socket path {} is {len} bytes, more than the {MAX_SOCKET_PATH} a unix \
             socket allows: use a shorter --data-dir",
            sock.display()
        )));
    }
    Ok(())
}

/// How to start containerd.
#[derive(Debug, Clone)]
pub struct ContainerdOptions {
    /// The agent's data dir; see [`Paths::new`].
    pub data_dir: PathBuf,
    /// k3s-style `registries.yaml` (may be absent).
    pub private_registry: PathBuf,
    /// The containerd binary; default: `containerd` on `PATH`.
    pub binary: Option<PathBuf>,
}

/// Errors of this module, turned into [`Error::Runtime`] / [`Error::Config`] at the boundary.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// Writes `contents` to `path` atomically (temp file beside it, then rename).
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_err(format!("create {}", dir.display())))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    std::fs::write(&tmp, contents).map_err(io_err(format!("write {}", tmp.display())))?;
    std::fs::rename(&tmp, path).map_err(io_err(format!("rename to {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_under_the_data_dir() {
        let p = Paths::new(Path::new("/var/lib/skiff"));
        assert_eq!(
            p.config_toml,
            Path::new("/var/lib/skiff/agent/etc/containerd/config.toml")
        );
        assert_eq!(
            p.config_tmpl,
            Path::new("/var/lib/skiff/agent/etc/containerd/config.toml.tmpl")
        );
        assert_eq!(
            p.certs_d,
            Path::new("/var/lib/skiff/agent/etc/containerd/certs.d")
        );
        assert_eq!(p.root, Path::new("/var/lib/skiff/agent/containerd"));
        assert_eq!(p.state, Path::new("/var/lib/skiff/agent/run/containerd"));
        assert_eq!(
            p.socket,
            Path::new("/var/lib/skiff/agent/run/containerd/containerd.sock")
        );
        assert_eq!(
            p.cni_conf_dir,
            Path::new("/var/lib/skiff/agent/etc/cni/net.d")
        );
        assert_eq!(p.cni_state_dir, Path::new("/var/lib/skiff/agent/cni"));
        assert_eq!(p.images_dir, Path::new("/var/lib/skiff/agent/images"));
        assert!(p.check_socket_lengths().is_ok());
    }

    #[test]
    fn long_socket_paths_are_refused_with_a_hint() {
        let long = format!("/tmp/{}", "d".repeat(90));
        let e = Paths::new(Path::new(&long))
            .check_socket_lengths()
            .unwrap_err();
        assert!(e.to_string().contains("shorter --data-dir"), "{e}");
        assert!(check_socket_path(Path::new(&"x".repeat(107))).is_ok());
        assert!(check_socket_path(Path::new(&"x".repeat(108))).is_err());
    }

    #[test]
    fn cni_bin_dir_prefers_debian_and_falls_back() {
        let t = tempfile::tempdir().unwrap();
        let deb = t.path().join("deb");
        let up = t.path().join("up");
        assert_eq!(cni_bin_dir(&deb, &up), deb, "neither exists: name Debian's");
        std::fs::create_dir(&up).unwrap();
        assert_eq!(cni_bin_dir(&deb, &up), up);
        std::fs::create_dir(&deb).unwrap();
        assert_eq!(cni_bin_dir(&deb, &up), deb);
    }

    #[test]
    fn atomic_writes_replace_the_file() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("a/b/c.conf");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(f.parent().unwrap()).unwrap().count(), 1);
    }
}
