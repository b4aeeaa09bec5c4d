//! Test images built offline from the host's static busybox: OCI archives (one layer, config,
//! manifest, index) that `skopeo` pushes to the test registry or an agent imports.
//!
//! Nothing is downloaded: the only input is `/bin/busybox` (Debian's `busybox-static`). The
//! archives are deterministic (fixed mtimes, owners and entry order), so the same busybox always
//! gives the same digests.

use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

/// The busybox the images are made of.
pub const BUSYBOX: &str = "/bin/busybox";

/// Busybox applets linked into every image (`/bin/<applet>` → `busybox`).
pub const APPLETS: &[&str] = &[
    "cat", "date", "echo", "env", "false", "grep", "head", "hostname", "httpd", "id", "kill", "ls",
    "mkdir", "nc", "ps", "rm", "sh", "sleep", "tail", "test", "touch", "true", "wc", "wget",
];

/// Media types of the OCI image spec.
const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// Everything that can go wrong while building an image archive.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot read {path} to build the test images: {source} (install busybox-static)")]
    Busybox {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot write the image archive {path}: {source} (check the temp dir is writable)")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What goes into one test image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// Repository path as a user writes it in a manifest, e.g. `library/nginx`.
    pub repository: String,
    pub tag: String,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// e.g. `80/tcp`.
    pub exposed_ports: Vec<String>,
    /// Extra files: (path inside the image without a leading `/`, content).
    pub files: Vec<(String, String)>,
}

impl ImageSpec {
    /// `nginx:1.27`: busybox `httpd -f -p 80` serving `/www/index.html`, which the command
    /// rewrites at start with the container's hostname (the pod name), so each replica answers
    /// with its own name.
    pub fn nginx() -> ImageSpec {
        ImageSpec {
            repository: "library/nginx".into(),
            tag: "1.27".into(),
            cmd: vec![
                "sh".into(),
                "-c".into(),
                "hostname > /www/index.html && exec httpd -f -p 80 -h /www".into(),
            ],
            env: vec!["PATH=/bin".into()],
            exposed_ports: vec!["80/tcp".into()],
            files: vec![("www/index.html".into(), "skiff test page\n".into())],
        }
    }

    /// `busybox:1.36`: plain busybox with a shell (`sh`, `sleep`, `wget`…).
    pub fn busybox() -> ImageSpec {
        ImageSpec {
            repository: "library/busybox".into(),
            tag: "1.36".into(),
            cmd: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            exposed_ports: vec![],
            files: vec![],
        }
    }

    /// The reference as pushed to a registry at `host` (`HOST/library/nginx:1.27`).
    pub fn reference(&self, host: &str) -> String {
        format!("{host}/{}:{}", self.repository, self.tag)
    }

    /// The fully qualified docker.io name containerd shows (`docker.io/library/nginx:1.27`).
    pub fn docker_io_name(&self) -> String {
        self.reference("docker.io")
    }
}

/// A built image: the OCI archive's bytes and the digests inside it.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub archive: Vec<u8>,
    pub manifest_digest: String,
    pub config_digest: String,
    pub layer_digest: String,
}

/// `sha256:<hex>` of `data`.
pub fn digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h
}

fn append_file<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
    data: &[u8],
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data)
}

fn append_dir<W: std::io::Write>(
    b: &mut tar::Builder<W>,
    path: &str,
    mode: u32,
) -> std::io::Result<()> {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    b.append_data(&mut h, path, std::io::empty())
}

/// The root filesystem layer (an uncompressed tar): `/bin/busybox`, one symlink per applet,
/// the usual empty directories and the spec's extra files.
pub fn layer_tar(spec: &ImageSpec, busybox: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for (dir, mode) in [
        ("bin/", 0o755),
        ("dev/", 0o755),
        ("etc/", 0o755),
        ("proc/", 0o555),
        ("root/", 0o700),
        ("sys/", 0o555),
        ("tmp/", 0o1777),
        ("var/", 0o755),
        ("www/", 0o755),
    ] {
        append_dir(&mut b, dir, mode)?;
    }
    append_file(&mut b, "bin/busybox", 0o755, busybox)?;
    for applet in APPLETS {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")?;
    }
    append_file(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    append_file(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n")?;
    for (path, content) in &spec.files {
        append_file(&mut b, path, 0o644, content.as_bytes())?;
    }
    b.into_inner()
}

/// The image config JSON for `spec` whose single layer has `diff_id`.
pub fn config_json(spec: &ImageSpec, diff_id: &str) -> Vec<u8> {
    let ports: serde_json::Map<String, serde_json::Value> = spec
        .exposed_ports
        .iter()
        .map(|p| (p.clone(), serde_json::json!({})))
        .collect();
    let mut config = serde_json::json!({
        "Cmd": spec.cmd,
        "Env": spec.env,
        "WorkingDir": "/",
    });
    if !ports.is_empty() {
        config["ExposedPorts"] = serde_json::Value::Object(ports);
    }
    serde_json::to_vec(&serde_json::json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "skiff-e2e images.rs"}],
    }))
    .expect("a JSON value serialises")
}

/// Builds the OCI archive (a tar of an OCI image layout) of `spec` from busybox bytes.
pub fn build(spec: &ImageSpec, busybox: &[u8]) -> std::io::Result<BuiltImage> {
    let layer = layer_tar(spec, busybox)?;
    let layer_digest = digest(&layer);
    let config = config_json(spec, &layer_digest);
    let config_digest = digest(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MT_MANIFEST,
        "config": {"mediaType": MT_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": MT_LAYER, "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("a JSON value serialises");
    let manifest_digest = digest(&manifest);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": MT_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": spec.docker_io_name()},
        }],
    }))
    .expect("a JSON value serialises");

    let mut b = tar::Builder::new(Vec::new());
    append_file(
        &mut b,
        "oci-layout",
        0o644,
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    append_file(&mut b, "index.json", 0o644, &index)?;
    append_dir(&mut b, "blobs/", 0o755)?;
    append_dir(&mut b, "blobs/sha256/", 0o755)?;
    for blob in [&layer, &config, &manifest] {
        let hex = digest(blob);
        let hex = hex.trim_start_matches("sha256:");
        append_file(&mut b, &format!("blobs/sha256/{hex}"), 0o644, blob)?;
    }
    Ok(BuiltImage {
        archive: b.into_inner()?,
        manifest_digest,
        config_digest,
        layer_digest,
    })
}

/// Builds `spec` from [`BUSYBOX`] and writes its OCI archive to `out`.
pub fn write_archive(spec: &ImageSpec, out: &Path) -> Result<BuiltImage, ImageError> {
    let bb = std::fs::read(BUSYBOX).map_err(|source| ImageError::Busybox {
        path: BUSYBOX.into(),
        source,
    })?;
    let img = build(spec, &bb).map_err(|source| ImageError::Write {
        path: out.display().to_string(),
        source,
    })?;
    std::fs::write(out, &img.archive).map_err(|source| ImageError::Write {
        path: out.display().to_string(),
        source,
    })?;
    Ok(img)
}

/// The skopeo command (to run inside a namespace that reaches the registry) that pushes the
/// archive at `archive` to `registry` (`HOST:PORT`, plain HTTP) under `spec`'s name.
pub fn push_command(spec: &ImageSpec, archive: &Path, registry: &str) -> Command {
    let mut c = Command::new("skopeo");
    c.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
    ])
    .arg(format!("oci-archive:{}", archive.display()))
    .arg(format!("docker://{}", spec.reference(registry)));
    c
}

/// A k3s-format `registries.yaml` mirroring docker.io to `endpoint` (e.g. `http://192.0.2.254:5000`).
pub fn registries_yaml(endpoint: &str) -> String {
    format!("mirrors:\n  docker.io:\n    endpoint:\n      - \"{endpoint}\"\n")
}

/// A containerd `hosts.toml` (for `<config_path>/docker.io/`) sending docker.io pulls to
/// `endpoint` over plain HTTP.
pub fn hosts_toml(endpoint: &str) -> String {
    format!(
        "server = \"https://registry-1.docker.io\"\n\n[host.\"{endpoint}\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entries(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>, Option<String>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().display().to_string();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, data, link)
            })
            .collect()
    }

    #[test]
    fn archive_is_an_oci_layout_whose_digests_match_their_blobs() {
        let img = build(&ImageSpec::nginx(), b"not really busybox").unwrap();
        let files = entries(&img.archive);
        let get = |p: &str| {
            files
                .iter()
                .find(|(n, _, _)| n == p)
                .unwrap_or_else(|| panic!("{p} missing"))
                .1
                .clone()
        };
        let index: serde_json::Value = serde_json::from_slice(&get("index.json")).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(m["digest"], img.manifest_digest);
        assert_eq!(
            m["annotations"]["org.opencontainers.image.ref.name"],
            "docker.io/library/nginx:1.27"
        );
        for (name, _, _) in files
            .iter()
            .filter(|(n, _, _)| n.starts_with("blobs/sha256/") && !n.ends_with('/'))
        {
            let data = get(name);
            assert_eq!(
                digest(&data),
                format!("sha256:{}", name.trim_start_matches("blobs/sha256/"))
            );
        }
        let manifest: serde_json::Value = serde_json::from_slice(&get(&format!(
            "blobs/sha256/{}",
            img.manifest_digest.trim_start_matches("sha256:")
        )))
        .unwrap();
        assert_eq!(manifest["config"]["digest"], img.config_digest);
        assert_eq!(manifest["layers"][0]["digest"], img.layer_digest);
        let config: serde_json::Value = serde_json::from_slice(&get(&format!(
            "blobs/sha256/{}",
            img.config_digest.trim_start_matches("sha256:")
        )))
        .unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], img.layer_digest);
        assert_eq!(
            config["config"]["ExposedPorts"]["80/tcp"],
            serde_json::json!({})
        );
        assert_eq!(config["config"]["Cmd"][0], "sh");
    }

    #[test]
    fn layer_links_applets_to_busybox() {
        let layer = layer_tar(&ImageSpec::nginx(), b"BB").unwrap();
        let files = entries(&layer);
        let bb = files.iter().find(|(n, _, _)| n == "bin/busybox").unwrap();
        assert_eq!(bb.1, b"BB");
        let sh = files.iter().find(|(n, _, _)| n == "bin/sh").unwrap();
        assert_eq!(sh.2.as_deref(), Some("busybox"));
        assert!(files.iter().any(|(n, _, _)| n == "bin/httpd"));
        assert!(files.iter().any(|(n, _, _)| n == "www/index.html"));
    }

    #[test]
    fn builds_are_deterministic_and_images_differ() {
        let a = build(&ImageSpec::nginx(), b"x").unwrap();
        let b = build(&ImageSpec::nginx(), b"x").unwrap();
        assert_eq!(a.manifest_digest, b.manifest_digest);
        let c = build(&ImageSpec::busybox(), b"x").unwrap();
        assert_ne!(a.manifest_digest, c.manifest_digest);
        assert!(build(&ImageSpec::busybox(), b"x").unwrap().archive.len() > 1024);
    }

    #[test]
    fn registry_configs_name_the_endpoint() {
        assert_eq!(
            registries_yaml("http://192.0.2.254:5000"),
            "mirrors:\n  docker.io:\n    endpoint:\n      - \"http://192.0.2.254:5000\"\n"
        );
        assert!(
            hosts_toml("http://192.0.2.254:5000").contains("[host.\"http://192.0.2.254:5000\"]")
        );
        assert_eq!(
            ImageSpec::busybox().reference("192.0.2.254:5000"),
            "192.0.2.254:5000/library/busybox:1.36"
        );
    }
}
