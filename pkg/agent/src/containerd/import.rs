//! Images into containerd without a registry: OCI and docker archives (plain, gzip or zstd)
//! and skiff's pause image are written to the content store (under a lease, with the GC labels
//! that keep children alive) and registered in namespace `k8s.io`, where the CRI plugin sees them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::{
    CreateImageRequest, CreateRequest as CreateLeaseRequest, DeleteRequest as DeleteLeaseRequest,
    Image as CtrImage, Info as ContentInfo, InfoRequest, UpdateImageRequest,
    UpdateRequest as UpdateContentRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor as CtrDescriptor;
use containerd_client::with_namespace;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tonic::transport::Channel;
use tonic::{Code, Request};

use super::oci::{
    sha256_digest, Descriptor, IndexOrManifest, OciImage, ANNOTATION_CONTAINERD_NAME,
    ANNOTATION_REF_NAME, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST, MEDIA_OCI_CONFIG,
    MEDIA_OCI_INDEX, MEDIA_OCI_LAYER, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD,
    MEDIA_OCI_MANIFEST,
};
use super::pause::pause_image;
use super::{PAUSE_IMAGE, PINNED_LABEL};
use crate::cri::{Cri, CRI_NAMESPACE};
use crate::Error;

/// Bytes per content write message.
const CHUNK: usize = 1 << 20;
/// How long the CRI plugin may take to notice a new image.
const CRI_SEE_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest index/manifest/config JSON read into memory.
const MAX_JSON: u64 = 16 << 20;

/// One row of `skiff images ls`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRow {
    /// A repo tag (or repo digest, or `<none>`).
    pub name: String,
    /// `sha256:<config digest>`
    pub id: String,
    pub size: u64,
    pub pinned: bool,
}

fn rt(what: &str, s: tonic::Status) -> Error {
    Error::Runtime(format!(
        "containerd {what}: {} ({:?}): check containerd's log",
        s.message(),
        s.code()
    ))
}

/// containerd's image name for `reference`: `nginx:1.27` → `docker.io/library/nginx:1.27`,
/// `foo/bar` → `docker.io/foo/bar:latest`, `host:5000/x@sha256:…` stays.
pub fn normalize_image_name(reference: &str) -> Result<String, Error> {
    let bad = |why: &str| {
        Error::Runtime(format!(
            "image name {reference:?} {why}: name images like `nginx:1.27` or `registry.example.com/app:v1`"
        ))
    };
    let r = reference.trim();
    if r.is_empty() {
        return Err(bad("is empty"));
    }
    let (name, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let (domain, rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest.as_str(), None),
    };
    if repo.is_empty() || repo.starts_with('/') || repo.ends_with('/') || repo.contains("//") {
        return Err(bad("has an empty path component"));
    }
    if !repo
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
    {
        return Err(bad("must be lowercase letters, digits and . _ - /"));
    }
    if tag.is_some_and(|t| {
        t.is_empty()
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    }) {
        return Err(bad("has an invalid tag"));
    }
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
        });
        if !ok {
            return Err(bad("has an invalid digest"));
        }
    }
    let repo = if domain == "docker.io" && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_string()
    };
    let mut out = format!("{domain}/{repo}");
    match (tag, digest) {
        (Some(t), _) => {
            out.push(':');
            out.push_str(t);
        }
        (None, None) => out.push_str(":latest"),
        (None, Some(_)) => {}
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

/// The image names a top-level index.json entry carries.
fn names_of(desc: &Descriptor) -> Result<Vec<String>, Error> {
    let raw = desc
        .annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| desc.annotations.get(ANNOTATION_REF_NAME));
    raw.map(|n| normalize_image_name(n).map(|n| vec![n]))
        .unwrap_or(Ok(Vec::new()))
}

fn is_index(media_type: &str) -> bool {
    media_type == MEDIA_OCI_INDEX || media_type == MEDIA_DOCKER_LIST
}

fn is_manifest(media_type: &str) -> bool {
    media_type == MEDIA_OCI_MANIFEST || media_type == MEDIA_DOCKER_MANIFEST
}

/// The GC labels that make containerd keep a manifest's or index's children.
fn gc_labels(doc: &IndexOrManifest) -> BTreeMap<String, String> {
    let mut l = BTreeMap::new();
    for (i, m) in doc.manifests.iter().enumerate() {
        l.insert(
            format!("containerd.io/gc.ref.content.m.{i}"),
            m.digest.clone(),
        );
    }
    if let Some(c) = &doc.config {
        l.insert(
            "containerd.io/gc.ref.content.config".into(),
            c.digest.clone(),
        );
    }
    for (i, layer) in doc.layers.iter().enumerate() {
        l.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    l
}

/// The layer media type for a blob starting with `magic`.
fn layer_media_type(magic: &[u8]) -> &'static str {
    if magic.starts_with(&[0x1f, 0x8b]) {
        MEDIA_OCI_LAYER_GZIP
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MEDIA_OCI_LAYER_ZSTD
    } else {
        MEDIA_OCI_LAYER
    }
}

/// Where a blob's bytes come from.
enum Source<'a> {
    Mem(&'a [u8]),
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
    },
}

/// containerd's content and image services under one lease (so nothing is collected while an
/// import is half done).
struct Store {
    content: ContentClient<Channel>,
    images: ImagesClient<Channel>,
    leases: LeasesClient<Channel>,
    lease: String,
}

impl Store {
    async fn open(cri: &Cri) -> Result<Store, Error> {
        let mut leases = LeasesClient::new(cri.channel.clone());
        let expire = (chrono::Utc::now() + chrono::Duration::hours(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let req = CreateLeaseRequest {
            id: String::new(),
            labels: HashMap::from([("containerd.io/gc.expire".to_string(), expire)]),
        };
        let lease = leases
            .create(with_namespace!(req, CRI_NAMESPACE))
            .await
            .map_err(|s| rt("create a lease", s))?
            .into_inner()
            .lease
            .map(|l| l.id)
            .ok_or_else(|| Error::Runtime("containerd created a lease without an id".into()))?;
        Ok(Store {
            content: ContentClient::new(cri.channel.clone()),
            images: ImagesClient::new(cri.channel.clone()),
            leases,
            lease,
        })
    }

    fn req<T>(&self, msg: T) -> Request<T> {
        let mut r = with_namespace!(msg, CRI_NAMESPACE);
        if let Ok(v) = self.lease.parse() {
            r.metadata_mut().insert("containerd-lease", v);
        }
        r
    }

    async fn close(mut self) {
        let req = DeleteLeaseRequest {
            id: self.lease.clone(),
            sync: false,
        };
        if let Err(s) = self
            .leases
            .delete(with_namespace!(req, CRI_NAMESPACE))
            .await
        {
            tracing::warn!(lease = %self.lease, error = %s.message(), "cannot delete the import lease; it expires in an hour");
        }
    }

    /// Writes one blob (or, when it is there already, just adds `labels` to it).
    async fn put(
        &mut self,
        digest: &str,
        size: u64,
        src: Source<'_>,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let info = self
            .content
            .info(self.req(InfoRequest {
                digest: digest.to_string(),
            }))
            .await;
        match info {
            Ok(_) => return self.label(digest, labels).await,
            Err(s) if s.code() == Code::NotFound => {}
            Err(s) => return Err(rt(&format!("content info {digest}"), s)),
        }
        if self.write(digest, size, src, labels).await? {
            Ok(())
        } else {
            // written by someone else meanwhile
            self.label(digest, labels).await
        }
    }

    async fn label(
        &mut self,
        digest: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if labels.is_empty() {
            return Ok(());
        }
        let req = UpdateContentRequest {
            info: Some(ContentInfo {
                digest: digest.to_string(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: labels.keys().map(|k| format!("labels.{k}")).collect(),
            }),
        };
        self.content
            .update(self.req(req))
            .await
            .map_err(|s| rt(&format!("label content {digest}"), s))?;
        Ok(())
    }

    /// Streams one blob and commits it; `false` when containerd already has it.
    async fn write(
        &mut self,
        digest: &str,
        size: u64,
        src: Source<'_>,
        labels: &BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let (tx, rx) = tokio::sync::mpsc::channel::<WriteContentRequest>(4);
        let reference = format!("skiff-import-{digest}");
        let base = WriteContentRequest {
            r#ref: reference,
            total: size as i64,
            expected: digest.to_string(),
            ..Default::default()
        };
        let produce = {
            let base = base.clone();
            async move {
                let mut offset = 0u64;
                let send = |data: Vec<u8>, offset: u64| {
                    let msg = WriteContentRequest {
                        action: WriteAction::Write as i32,
                        offset: offset as i64,
                        data,
                        ..base.clone()
                    };
                    let tx = tx.clone();
                    async move { tx.send(msg).await.is_ok() }
                };
                match src {
                    Source::Mem(bytes) => {
                        for chunk in bytes.chunks(CHUNK) {
                            if !send(chunk.to_vec(), offset).await {
                                return Ok(());
                            }
                            offset += chunk.len() as u64;
                        }
                    }
                    Source::File {
                        path,
                        offset: start,
                        len,
                    } => {
                        let mut f = tokio::fs::File::open(path)
                            .await
                            .map_err(super::io_err(format!("open {}", path.display())))?;
                        f.seek(SeekFrom::Start(start))
                            .await
                            .map_err(super::io_err(format!("seek {}", path.display())))?;
                        while offset < len {
                            let n = CHUNK.min((len - offset) as usize);
                            let mut buf = vec![0u8; n];
                            f.read_exact(&mut buf)
                                .await
                                .map_err(super::io_err(format!("read {}", path.display())))?;
                            if !send(buf, offset).await {
                                return Ok(());
                            }
                            offset += n as u64;
                        }
                    }
                }
                let commit = WriteContentRequest {
                    action: WriteAction::Commit as i32,
                    offset: offset as i64,
                    labels: labels.clone().into_iter().collect(),
                    ..base
                };
                let _ = tx.send(commit).await;
                Ok::<(), Error>(())
            }
        };
        let mut content = self.content.clone();
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let request = self.req(stream);
        let consume = async move {
            let mut resp = content.write(request).await?.into_inner();
            while let Some(m) = resp.message().await? {
                if m.action == WriteAction::Commit as i32 {
                    return Ok(m);
                }
            }
            Err(tonic::Status::aborted(
                "containerd closed the write stream before the commit",
            ))
        };
        let (produced, consumed) = tokio::join!(produce, consume);
        produced?;
        let done = match consumed {
            Ok(m) => m,
            Err(s) if s.code() == Code::AlreadyExists => return Ok(false),
            Err(s) => return Err(rt(&format!("write content {digest}"), s)),
        };
        if done.digest != digest {
            return Err(Error::Runtime(format!(
                "containerd stored {} for blob {digest}: the archive is corrupt",
                done.digest
            )));
        }
        Ok(true)
    }

    /// Creates or updates the image record `name` → `target`.
    async fn register(&mut self, name: &str, target: &Descriptor) -> Result<(), Error> {
        let image = CtrImage {
            name: name.to_string(),
            labels: HashMap::from([(PINNED_LABEL.to_string(), "pinned".to_string())]),
            target: Some(CtrDescriptor {
                media_type: target.media_type.clone(),
                digest: target.digest.clone(),
                size: target.size,
                annotations: HashMap::new(),
            }),
            created_at: None,
            updated_at: None,
        };
        let created = self
            .images
            .create(self.req(CreateImageRequest {
                image: Some(image.clone()),
                source_date_epoch: None,
            }))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(s) if s.code() == Code::AlreadyExists => {
                self.images
                    .update(self.req(UpdateImageRequest {
                        image: Some(image),
                        update_mask: None,
                        source_date_epoch: None,
                    }))
                    .await
                    .map_err(|s| rt(&format!("update image {name}"), s))?;
                Ok(())
            }
            Err(s) => Err(rt(&format!("create image {name}"), s)),
        }
    }
}

/// Waits until the CRI plugin reports every name in `names` (it learns of new images from
/// containerd's events).
async fn wait_cri_sees(cri: &Cri, names: &[String]) -> Result<(), Error> {
    let deadline = tokio::time::Instant::now() + CRI_SEE_TIMEOUT;
    for name in names {
        loop {
            if image_present(cri, name).await? {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Runtime(format!(
                    "containerd's CRI plugin does not list the imported image {name}: check \
                     containerd's log"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

async fn image_present(cri: &Cri, name: &str) -> Result<bool, Error> {
    let req = k8s_cri::v1::ImageStatusRequest {
        image: Some(k8s_cri::v1::ImageSpec {
            image: name.to_string(),
            ..Default::default()
        }),
        verbose: false,
    };
    let resp = cri
        .images
        .clone()
        .image_status(req)
        .await
        .map_err(|s| rt(&format!("CRI image status {name}"), s))?;
    Ok(resp.into_inner().image.is_some())
}

/// Imports skiff's pause image unless the CRI plugin already has it.
pub async fn ensure_pause_image(cri: &Cri) -> Result<(), Error> {
    if image_present(cri, PAUSE_IMAGE).await? {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let img = pause_image()?;
    let index = img.index(None)?;
    let index_desc = Descriptor::of(MEDIA_OCI_INDEX, &index);
    let mut store = Store::open(cri).await?;
    let result = async {
        put_built(&mut store, &img).await?;
        let doc: IndexOrManifest = serde_json::from_slice(&index)
            .map_err(|e| Error::Runtime(format!("decode the pause index: {e}")))?;
        store
            .put(
                &index_desc.digest,
                index.len() as u64,
                Source::Mem(&index),
                &gc_labels(&doc),
            )
            .await?;
        store.register(PAUSE_IMAGE, &index_desc).await
    }
    .await;
    store.close().await;
    result?;
    wait_cri_sees(cri, &[PAUSE_IMAGE.to_string()]).await?;
    tracing::info!(image = PAUSE_IMAGE, elapsed = ?started.elapsed(), "imported skiff's pause image");
    Ok(())
}

/// Writes the blobs of an in-memory image, leaves first.
async fn put_built(store: &mut Store, img: &OciImage) -> Result<(), Error> {
    for (media_type, bytes) in &img.blobs {
        let labels = if is_manifest(media_type) {
            let doc: IndexOrManifest = serde_json::from_slice(bytes)
                .map_err(|e| Error::Runtime(format!("decode a built manifest: {e}")))?;
            gc_labels(&doc)
        } else {
            BTreeMap::new()
        };
        let digest = sha256_digest(bytes);
        store
            .put(&digest, bytes.len() as u64, Source::Mem(bytes), &labels)
            .await?;
    }
    Ok(())
}

/// Imports every `*.tar`, `*.tar.gz`/`*.tgz` and `*.tar.zst`/`*.tzst` in `dir` (sorted by
/// name; a missing dir has none). A bad file does not stop the others; the error names it.
pub async fn import_dir(cri: &Cri, dir: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(super::io_err(format!("read {}", dir.display()))(e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_archive_name(p))
        .collect();
    files.sort();
    let mut names = Vec::new();
    let mut failed = Vec::new();
    for f in files {
        match import_archive(cri, &f).await {
            Ok(n) => names.extend(n),
            Err(e) => {
                tracing::warn!(file = %f.display(), error = %e, "image import failed");
                failed.push(format!("{}: {e}", f.display()));
            }
        }
    }
    if failed.is_empty() {
        Ok(names)
    } else {
        Err(Error::Runtime(format!(
            "some image archives in {} were not imported ({}); the others were",
            dir.display(),
            failed.join("; ")
        )))
    }
}

fn is_archive_name(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"]
        .iter()
        .any(|s| n.ends_with(s))
}

/// Imports an OCI archive or a docker archive (`docker save`), plain, gzip or zstd
/// compressed, into namespace `k8s.io`; returns the image names registered (pinned).
pub async fn import_archive(cri: &Cri, path: &Path) -> Result<Vec<String>, Error> {
    let started = std::time::Instant::now();
    let owned = path.to_path_buf();
    let archive = tokio::task::spawn_blocking(move || Archive::open(&owned))
        .await
        .map_err(|e| Error::Runtime(format!("archive reader task: {e}")))??;
    let mut store = Store::open(cri).await?;
    let result = if archive.has("index.json") {
        import_oci(&mut store, &archive).await
    } else if archive.has("manifest.json") {
        import_docker(&mut store, &archive).await
    } else {
        Err(Error::Runtime(format!(
            "{} has neither index.json nor manifest.json: import an OCI archive or a `docker save` archive",
            path.display()
        )))
    };
    store.close().await;
    let names = result?;
    wait_cri_sees(cri, &names).await?;
    tracing::info!(file = %path.display(), images = ?names, elapsed = ?started.elapsed(), "imported images");
    Ok(names)
}

async fn import_oci(store: &mut Store, ar: &Archive) -> Result<Vec<String>, Error> {
    let index: IndexOrManifest = ar.json("index.json").await?;
    let mut names = Vec::new();
    let mut done = HashSet::new();
    for top in &index.manifests {
        let these = names_of(top)?;
        if these.is_empty() {
            tracing::warn!(digest = %top.digest, file = %ar.name, "an image in the archive has no name; skipped");
            continue;
        }
        put_tree(store, ar, top, &mut done).await?;
        for name in these {
            store.register(&name, top).await?;
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(Error::Runtime(format!(
            "{} names no image: give its index.json entries an `{ANNOTATION_REF_NAME}` annotation",
            ar.name
        )));
    }
    Ok(names)
}

/// Writes `top` and everything under it that the archive holds (manifests of other platforms
/// may be absent; a manifest's own config and layers may not).
async fn put_tree(
    store: &mut Store,
    ar: &Archive,
    top: &Descriptor,
    done: &mut HashSet<String>,
) -> Result<(), Error> {
    // (descriptor, required): visit parents first, write children first
    let mut todo = vec![(top.clone(), true)];
    let mut plan: Vec<(Descriptor, BTreeMap<String, String>)> = Vec::new();
    while let Some((d, required)) = todo.pop() {
        if done.contains(&d.digest) {
            continue;
        }
        let blob = blob_path(&d.digest)?;
        if !ar.has(&blob) {
            if required {
                return Err(Error::Runtime(format!(
                    "{} lacks blob {} ({}): the archive is incomplete; export it again",
                    ar.name, d.digest, d.media_type
                )));
            }
            tracing::debug!(digest = %d.digest, "blob of another platform is not in the archive");
            continue;
        }
        done.insert(d.digest.clone());
        let mut labels = BTreeMap::new();
        if is_index(&d.media_type) || is_manifest(&d.media_type) {
            let doc: IndexOrManifest = ar.json(&blob).await?;
            labels = gc_labels(&doc);
            for m in &doc.manifests {
                todo.push((m.clone(), false));
            }
            if let Some(c) = &doc.config {
                todo.push((c.clone(), true));
            }
            for l in &doc.layers {
                todo.push((l.clone(), true));
            }
        }
        plan.push((d, labels));
    }
    for (d, labels) in plan.into_iter().rev() {
        let (offset, len) = ar.get(&blob_path(&d.digest)?).unwrap_or((0, 0));
        let src = Source::File {
            path: &ar.tar,
            offset,
            len,
        };
        store.put(&d.digest, len, src, &labels).await?;
    }
    Ok(())
}

fn blob_path(digest: &str) -> Result<String, Error> {
    match digest.split_once(':') {
        Some((alg, hex))
            if !alg.is_empty()
                && !hex.is_empty()
                && alg.chars().all(|c| c.is_ascii_alphanumeric())
                && hex.chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Ok(format!("blobs/{alg}/{hex}"))
        }
        _ => Err(Error::Runtime(format!(
            "{digest:?} is not a content digest: the archive is corrupt"
        ))),
    }
}

#[derive(Debug, Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

async fn import_docker(store: &mut Store, ar: &Archive) -> Result<Vec<String>, Error> {
    let entries: Vec<DockerEntry> = ar.json("manifest.json").await?;
    let mut names = Vec::new();
    for e in entries {
        let tags = e.repo_tags.unwrap_or_default();
        if tags.is_empty() {
            tracing::warn!(config = %e.config, file = %ar.name, "an image in the archive has no RepoTags; skipped");
            continue;
        }
        let config = ar.read(&e.config, MAX_JSON).await?;
        let config_desc = Descriptor::of(MEDIA_OCI_CONFIG, &config);
        let mut layers = Vec::new();
        for l in &e.layers {
            let (offset, len) = ar.get(l).ok_or_else(|| {
                Error::Runtime(format!(
                    "{} lacks layer {l}: the archive is incomplete; save it again",
                    ar.name
                ))
            })?;
            let tar = ar.tar.clone();
            let (digest, magic) =
                tokio::task::spawn_blocking(move || hash_range(&tar, offset, len))
                    .await
                    .map_err(|e| Error::Runtime(format!("hash task: {e}")))??;
            layers.push((
                Descriptor {
                    media_type: layer_media_type(&magic).to_string(),
                    digest,
                    size: len as i64,
                    annotations: BTreeMap::new(),
                    platform: None,
                },
                offset,
            ));
        }
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": config_desc,
            "layers": layers.iter().map(|(d, _)| d).collect::<Vec<_>>(),
        }))
        .map_err(|e| Error::Runtime(format!("encode a manifest: {e}")))?;
        let manifest_desc = Descriptor::of(MEDIA_OCI_MANIFEST, &manifest);
        for (d, offset) in &layers {
            let src = Source::File {
                path: &ar.tar,
                offset: *offset,
                len: d.size as u64,
            };
            store
                .put(&d.digest, d.size as u64, src, &BTreeMap::new())
                .await?;
        }
        store
            .put(
                &config_desc.digest,
                config.len() as u64,
                Source::Mem(&config),
                &BTreeMap::new(),
            )
            .await?;
        let doc: IndexOrManifest = serde_json::from_slice(&manifest)
            .map_err(|e| Error::Runtime(format!("decode a built manifest: {e}")))?;
        store
            .put(
                &manifest_desc.digest,
                manifest.len() as u64,
                Source::Mem(&manifest),
                &gc_labels(&doc),
            )
            .await?;
        for t in tags {
            let name = normalize_image_name(&t)?;
            store.register(&name, &manifest_desc).await?;
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(Error::Runtime(format!(
            "{} names no image: save it with a tag (`docker save name:tag`)",
            ar.name
        )));
    }
    Ok(names)
}

/// sha256 of a file range and its first bytes.
fn hash_range(path: &Path, offset: u64, len: u64) -> Result<(String, Vec<u8>), Error> {
    let mut f =
        std::fs::File::open(path).map_err(super::io_err(format!("open {}", path.display())))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(super::io_err(format!("seek {}", path.display())))?;
    let mut r = f.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut magic = Vec::new();
    loop {
        let n = r
            .read(&mut buf)
            .map_err(super::io_err(format!("read {}", path.display())))?;
        if n == 0 {
            break;
        }
        if magic.is_empty() {
            magic = buf[..n.min(8)].to_vec();
        }
        h.update(&buf[..n]);
    }
    Ok((format!("sha256:{}", hex::encode(h.finalize())), magic))
}

/// An uncompressed tar on disk (a decompressed temp copy for .gz/.zst) and where each file's
/// bytes are in it.
struct Archive {
    /// For messages.
    name: String,
    tar: PathBuf,
    files: HashMap<String, (u64, u64)>,
    _temp: Option<TempFile>,
}

/// Removed when dropped.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Archive {
    fn open(path: &Path) -> Result<Archive, Error> {
        let name = path.display().to_string();
        let mut f = std::fs::File::open(path).map_err(super::io_err(format!("open {name}")))?;
        let mut magic = [0u8; 4];
        let n = f
            .read(&mut magic)
            .map_err(super::io_err(format!("read {name}")))?;
        f.seek(SeekFrom::Start(0))
            .map_err(super::io_err(format!("seek {name}")))?;
        let kind = layer_media_type(&magic[..n]);
        let (tar, temp) = if kind == MEDIA_OCI_LAYER {
            (path.to_path_buf(), None)
        } else {
            let tmp = std::env::temp_dir().join(format!(
                "skiff-import-{}-{:016x}.tar",
                std::process::id(),
                rand::random::<u64>()
            ));
            let guard = TempFile(tmp.clone());
            let mut out = std::fs::File::create(&tmp)
                .map_err(super::io_err(format!("create {}", tmp.display())))?;
            let copied = if kind == MEDIA_OCI_LAYER_GZIP {
                std::io::copy(&mut flate2::read::MultiGzDecoder::new(f), &mut out)
            } else {
                zstd::stream::read::Decoder::new(f)
                    .and_then(|mut d| std::io::copy(&mut d, &mut out))
            };
            copied.map_err(|e| {
                Error::Runtime(format!(
                    "decompress {name}: {e}: the file is damaged or not an image archive"
                ))
            })?;
            (tmp, Some(guard))
        };
        let files = index_tar(&tar).map_err(|e| {
            Error::Runtime(format!(
                "read {name} as a tar archive: {e}: import an OCI or docker archive"
            ))
        })?;
        Ok(Archive {
            name,
            tar,
            files,
            _temp: temp,
        })
    }

    fn has(&self, name: &str) -> bool {
        self.files.contains_key(name)
    }

    fn get(&self, name: &str) -> Option<(u64, u64)> {
        self.files.get(name).copied()
    }

    async fn read(&self, name: &str, max: u64) -> Result<Vec<u8>, Error> {
        let (offset, len) = self.get(name).ok_or_else(|| {
            Error::Runtime(format!(
                "{} lacks {name}: the archive is incomplete",
                self.name
            ))
        })?;
        if len > max {
            return Err(Error::Runtime(format!(
                "{name} in {} is {len} bytes, too large for image metadata",
                self.name
            )));
        }
        let mut f = tokio::fs::File::open(&self.tar)
            .await
            .map_err(super::io_err(format!("open {}", self.name)))?;
        f.seek(SeekFrom::Start(offset))
            .await
            .map_err(super::io_err(format!("seek {}", self.name)))?;
        let mut buf = vec![0u8; len as usize];
        f.read_exact(&mut buf)
            .await
            .map_err(super::io_err(format!("read {}", self.name)))?;
        Ok(buf)
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<T, Error> {
        let bytes = self.read(name, MAX_JSON).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Runtime(format!(
                "{name} in {}: {e}: the archive is corrupt",
                self.name
            ))
        })
    }
}

/// Normalises a path inside an archive: no `./`, no trailing `/`, `..` resolved.
fn clean(p: &Path) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

/// File name → (offset of its data, size), following symlinks and hard links.
fn index_tar(tar: &Path) -> std::io::Result<HashMap<String, (u64, u64)>> {
    let mut ar = tar::Archive::new(std::fs::File::open(tar)?);
    let mut files = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    for entry in ar.entries()? {
        let entry = entry?;
        let path = entry.path()?.into_owned();
        let name = clean(&path);
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                files.insert(name, (entry.raw_file_position(), entry.size()));
            }
            tar::EntryType::Symlink => {
                if let Some(target) = entry.link_name()? {
                    let dir = path.parent().unwrap_or(Path::new(""));
                    links.push((name, clean(&dir.join(target))));
                }
            }
            tar::EntryType::Link => {
                if let Some(target) = entry.link_name()? {
                    links.push((name, clean(&target)));
                }
            }
            _ => {}
        }
    }
    // links may point at links: resolve a few rounds
    for _ in 0..8 {
        let mut changed = false;
        for (name, target) in &links {
            if !files.contains_key(name) {
                if let Some(v) = files.get(target).copied() {
                    files.insert(name.clone(), v);
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(files)
}

/// Every image the CRI plugin knows, one row per tag (`skiff images ls`), sorted by name.
pub async fn list_images(cri: &Cri) -> Result<Vec<ImageRow>, Error> {
    let resp = cri
        .images
        .clone()
        .list_images(k8s_cri::v1::ListImagesRequest { filter: None })
        .await
        .map_err(|s| rt("CRI list images", s))?;
    // containerd 1.6's CRI does not report `pinned`: read the label from the image records
    let req = containerd_client::services::v1::ListImagesRequest {
        filters: vec![format!("labels.\"{PINNED_LABEL}\"==pinned")],
    };
    let pinned_names: HashSet<String> = ImagesClient::new(cri.channel.clone())
        .list(with_namespace!(req, CRI_NAMESPACE))
        .await
        .map_err(|s| rt("list images", s))?
        .into_inner()
        .images
        .into_iter()
        .map(|i| i.name)
        .collect();
    let mut rows = Vec::new();
    for img in resp.into_inner().images {
        let pinned = img.pinned
            || img
                .repo_tags
                .iter()
                .chain(&img.repo_digests)
                .any(|n| pinned_names.contains(n));
        let names: Vec<String> = if !img.repo_tags.is_empty() {
            img.repo_tags.clone()
        } else if !img.repo_digests.is_empty() {
            img.repo_digests.clone()
        } else {
            vec!["<none>".to_string()]
        };
        for name in names {
            rows.push(ImageRow {
                name,
                id: img.id.clone(),
                size: img.size,
                pinned,
            });
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised_like_containerd() {
        for (input, want) in [
            ("nginx:1.27", "docker.io/library/nginx:1.27"),
            ("nginx", "docker.io/library/nginx:latest"),
            ("foo/bar", "docker.io/foo/bar:latest"),
            ("docker.io/nginx:1", "docker.io/library/nginx:1"),
            (
                "index.docker.io/library/nginx:1",
                "docker.io/library/nginx:1",
            ),
            ("localhost/app", "localhost/app:latest"),
            ("localhost:5000/app:v1", "localhost:5000/app:v1"),
            (
                "registry.example.com/a/b/c:v2",
                "registry.example.com/a/b/c:v2",
            ),
            ("skiff.invalid/pause:1.0", "skiff.invalid/pause:1.0"),
            (
                "nginx@sha256:abcdef0123",
                "docker.io/library/nginx@sha256:abcdef0123",
            ),
            (
                "nginx:1@sha256:abcdef0123",
                "docker.io/library/nginx:1@sha256:abcdef0123",
            ),
        ] {
            assert_eq!(normalize_image_name(input).unwrap(), want, "{input}");
            assert_eq!(
                normalize_image_name(want).unwrap(),
                want,
                "idempotent: {want}"
            );
        }
        for bad in ["", "Nginx:1", "a//b", "nginx:", "nginx@sha256:xyz", "/x"] {
            assert!(normalize_image_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names_come_from_containerd_or_oci_annotations() {
        let mut d = Descriptor::of(MEDIA_OCI_MANIFEST, b"{}");
        assert!(names_of(&d).unwrap().is_empty());
        d.annotations
            .insert(ANNOTATION_REF_NAME.into(), "busybox:1.36".into());
        assert_eq!(names_of(&d).unwrap(), ["docker.io/library/busybox:1.36"]);
        d.annotations.insert(
            ANNOTATION_CONTAINERD_NAME.into(),
            "registry.example.com/busybox:1.36".into(),
        );
        assert_eq!(names_of(&d).unwrap(), ["registry.example.com/busybox:1.36"]);
    }

    #[test]
    fn gc_labels_name_every_child() {
        let doc: IndexOrManifest = serde_json::from_value(serde_json::json!({
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": "sha256:c", "size": 1},
            "layers": [
                {"mediaType": MEDIA_OCI_LAYER, "digest": "sha256:l0", "size": 1},
                {"mediaType": MEDIA_OCI_LAYER, "digest": "sha256:l1", "size": 1}
            ]
        }))
        .unwrap();
        let l = gc_labels(&doc);
        assert_eq!(l["containerd.io/gc.ref.content.config"], "sha256:c");
        assert_eq!(l["containerd.io/gc.ref.content.l.0"], "sha256:l0");
        assert_eq!(l["containerd.io/gc.ref.content.l.1"], "sha256:l1");
        let idx: IndexOrManifest = serde_json::from_value(serde_json::json!({
            "manifests": [{"mediaType": MEDIA_OCI_MANIFEST, "digest": "sha256:m", "size": 1}]
        }))
        .unwrap();
        assert_eq!(
            gc_labels(&idx)["containerd.io/gc.ref.content.m.0"],
            "sha256:m"
        );
    }

    #[test]
    fn archive_kinds_are_told_by_magic_and_name() {
        assert_eq!(layer_media_type(&[0x1f, 0x8b, 8, 0]), MEDIA_OCI_LAYER_GZIP);
        assert_eq!(
            layer_media_type(&[0x28, 0xb5, 0x2f, 0xfd]),
            MEDIA_OCI_LAYER_ZSTD
        );
        assert_eq!(layer_media_type(b"bin/"), MEDIA_OCI_LAYER);
        assert!(is_archive_name(Path::new("/x/a.tar")));
        assert!(is_archive_name(Path::new("/x/a.TAR.ZST")));
        assert!(is_archive_name(Path::new("/x/a.tar.gz")));
        assert!(!is_archive_name(Path::new("/x/a.txt")));
        assert!(!is_archive_name(Path::new("/x/a.tar.lz4")));
        assert_eq!(blob_path("sha256:ab12").unwrap(), "blobs/sha256/ab12");
        assert!(blob_path("sha256:../../etc").is_err());
    }

    #[test]
    fn compressed_archives_are_indexed_with_links() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        b.append_data(&mut h, "./dir/a.json", &b"hello"[..])
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "other/b.json", "../dir/a.json")
            .unwrap();
        let plain = b.into_inner().unwrap();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut e, &plain).unwrap();
            e.finish().unwrap()
        };
        let zst = zstd::encode_all(plain.as_slice(), 1).unwrap();
        for (name, bytes) in [("p.tar", &plain), ("g.tar.gz", &gz), ("z.tar.zst", &zst)] {
            let path = t.path().join(name);
            std::fs::write(&path, bytes).unwrap();
            let ar = Archive::open(&path).unwrap();
            assert!(ar.has("dir/a.json"), "{name}");
            assert_eq!(ar.get("other/b.json"), ar.get("dir/a.json"), "{name}");
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let data = rt.block_on(ar.read("other/b.json", 100)).unwrap();
            assert_eq!(data, b"hello");
            let temp = ar._temp.as_ref().map(|t| t.0.clone());
            drop(ar);
            if let Some(temp) = temp {
                assert!(!temp.exists(), "temp copy removed");
            }
        }
        let junk = t.path().join("junk.tar");
        std::fs::write(&junk, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        assert!(Archive::open(&junk).is_err());
    }
}
