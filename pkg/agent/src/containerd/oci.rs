//! OCI image pieces built in memory (layer tars, config, manifest, index) and OCI archives
//! (`oci-layout`, `index.json`, `blobs/sha256/…`): skiff's pause image and test images.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::Error;

pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The annotation an OCI layout uses to name a manifest.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation with the full image name.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Descriptor {
    pub fn of(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest: sha256_digest(bytes),
            size: bytes.len() as i64,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }
}

/// An image index or manifest, as much of it as import needs.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IndexOrManifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    pub config: Option<Descriptor>,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The GOARCH name of this machine's architecture.
pub fn goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        other => other,
    }
}

/// A file in a layer.
#[derive(Debug, Clone)]
pub enum LayerEntry {
    Dir {
        path: String,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// An uncompressed layer tar with `entries` (owner root, mtime 0: reproducible bytes).
pub fn layer_tar(entries: &[LayerEntry]) -> Result<Vec<u8>, Error> {
    let mut b = tar::Builder::new(Vec::new());
    let err = |e: std::io::Error| Error::Runtime(format!("build a layer tar: {e}"));
    for e in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match e {
            LayerEntry::Dir { path } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, path, std::io::empty()).map_err(err)?;
            }
            LayerEntry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice()).map_err(err)?;
            }
            LayerEntry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).map_err(err)?;
            }
        }
    }
    b.into_inner().map_err(err)
}

/// A single-platform image: blobs (leaves first) and the manifest's descriptor.
#[derive(Debug, Clone)]
pub struct OciImage {
    /// `(media type, bytes)`: layers, config, manifest.
    pub blobs: Vec<(String, Vec<u8>)>,
    /// The manifest, with this machine's platform.
    pub manifest: Descriptor,
}

impl OciImage {
    /// An image of uncompressed `layers` for this machine's platform; `config` is the
    /// `config` section of the image config (`Entrypoint`, `Cmd`, `Env`, …).
    pub fn build(layers: Vec<Vec<u8>>, config: serde_json::Value) -> Result<OciImage, Error> {
        let layer_descs: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor::of(MEDIA_OCI_LAYER, l))
            .collect();
        let diff_ids: Vec<&str> = layer_descs.iter().map(|d| d.digest.as_str()).collect();
        let cfg = json!({
            "architecture": goarch(),
            "os": "linux",
            "config": config,
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        });
        let cfg = serde_json::to_vec(&cfg).map_err(json_err)?;
        let cfg_desc = Descriptor::of(MEDIA_OCI_CONFIG, &cfg);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": cfg_desc,
            "layers": layer_descs,
        });
        let manifest = serde_json::to_vec(&manifest).map_err(json_err)?;
        let mut manifest_desc = Descriptor::of(MEDIA_OCI_MANIFEST, &manifest);
        manifest_desc.platform = Some(Platform {
            architecture: goarch().to_string(),
            os: "linux".to_string(),
            variant: None,
        });
        let mut blobs: Vec<(String, Vec<u8>)> = layers
            .into_iter()
            .map(|l| (MEDIA_OCI_LAYER.to_string(), l))
            .collect();
        blobs.push((MEDIA_OCI_CONFIG.to_string(), cfg));
        blobs.push((MEDIA_OCI_MANIFEST.to_string(), manifest));
        Ok(OciImage {
            blobs,
            manifest: manifest_desc,
        })
    }

    /// An index over the manifest; `ref_name` becomes its `org.opencontainers.image.ref.name`.
    pub fn index(&self, ref_name: Option<&str>) -> Result<Vec<u8>, Error> {
        let mut m = self.manifest.clone();
        if let Some(r) = ref_name {
            m.annotations
                .insert(ANNOTATION_REF_NAME.to_string(), r.to_string());
        }
        serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_INDEX,
            "manifests": [m],
        }))
        .map_err(json_err)
    }

    /// Writes an OCI archive (a tar of an OCI image layout) naming the image `ref_name`.
    pub fn write_archive(&self, ref_name: &str, path: &Path) -> Result<(), Error> {
        let file = std::fs::File::create(path)
            .map_err(super::io_err(format!("create {}", path.display())))?;
        let mut b = tar::Builder::new(std::io::BufWriter::new(file));
        let err = |e: std::io::Error| Error::Runtime(format!("write an OCI archive: {e}"));
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            h.set_mtime(0);
            b.append_data(&mut h, name, data)
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(err)?;
        for (_, blob) in &self.blobs {
            let d = sha256_digest(blob);
            let hex = d.trim_start_matches("sha256:");
            add(&format!("blobs/sha256/{hex}"), blob).map_err(err)?;
        }
        add("index.json", &self.index(Some(ref_name))?).map_err(err)?;
        let mut w = b.into_inner().map_err(err)?;
        w.flush().map_err(err)
    }
}

fn json_err(e: serde_json::Error) -> Error {
    Error::Runtime(format!("encode image JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_blobs_reference_each_other_by_digest() {
        let layer = layer_tar(&[
            LayerEntry::Dir { path: "bin".into() },
            LayerEntry::File {
                path: "bin/x".into(),
                mode: 0o755,
                data: b"hello".to_vec(),
            },
            LayerEntry::Symlink {
                path: "bin/y".into(),
                target: "x".into(),
            },
        ])
        .unwrap();
        let img = OciImage::build(vec![layer.clone()], json!({"Cmd": ["/bin/x"]})).unwrap();
        assert_eq!(img.blobs.len(), 3);
        let manifest: IndexOrManifest = serde_json::from_slice(&img.blobs[2].1).unwrap();
        assert_eq!(manifest.layers[0].digest, sha256_digest(&layer));
        let cfg_desc = manifest.config.unwrap();
        assert_eq!(cfg_desc.digest, sha256_digest(&img.blobs[1].1));
        let cfg: serde_json::Value = serde_json::from_slice(&img.blobs[1].1).unwrap();
        assert_eq!(cfg["rootfs"]["diff_ids"][0], sha256_digest(&layer));
        assert_eq!(cfg["config"]["Cmd"][0], "/bin/x");
        assert_eq!(img.manifest.digest, sha256_digest(&img.blobs[2].1));
        let index: IndexOrManifest =
            serde_json::from_slice(&img.index(Some("x:1")).unwrap()).unwrap();
        assert_eq!(index.manifests[0].annotations[ANNOTATION_REF_NAME], "x:1");
        assert_eq!(index.manifests[0].digest, img.manifest.digest);

        // the layer unpacks to what went in
        let mut ar = tar::Archive::new(layer.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["bin", "bin/x", "bin/y"]);
    }

    #[test]
    fn archives_hold_layout_index_and_blobs() {
        let img = OciImage::build(vec![layer_tar(&[]).unwrap()], json!({})).unwrap();
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("a.tar");
        img.write_archive("busybox:1", &path).unwrap();
        let mut ar = tar::Archive::new(std::fs::File::open(&path).unwrap());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 5);
        assert_eq!(names[0], "oci-layout");
        assert_eq!(names[4], "index.json");
        assert!(names[1..4].iter().all(|n| n.starts_with("blobs/sha256/")));
    }
}
