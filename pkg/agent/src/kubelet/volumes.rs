//! Pod volumes on the node (`<root>/pods/<uid>/volumes/<plugin>/<name>`): emptyDir (tmpfs for
//! medium Memory), hostPath with type checks, configMap/secret/downwardAPI/projected written
//! atomically through a `..data` symlink, service account tokens, PVC-bound host paths; the
//! container mounts for them and the per-container termination-log file.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use base64::Engine;
use k8s_cri::v1::{Mount, MountPropagation};
use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    Container, DownwardAPIVolumeFile, KeyToPath, PersistentVolume, PersistentVolumeClaim, Pod,
    ServiceAccount, Volume,
};
use kube::api::{Api, PostParams};

use super::env::{pod_field_value, resource_field_value, ObjectCache};
use super::linux::{value, NodeResources};

/// What the kubelet needs to know to manage volumes.
pub struct VolumeContext {
    pub client: kube::Client,
    pub root_dir: PathBuf,
    pub node_name: String,
}

/// Where one pod volume lives on the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeHost {
    pub path: PathBuf,
    /// Always mounted read-only (API data volumes, read-only PVC sources).
    pub read_only: bool,
}

/// The pod's volumes after [`prepare`].
#[derive(Debug, Clone, Default)]
pub struct PreparedVolumes {
    pub volumes: HashMap<String, VolumeHost>,
    pub pod_dir: PathBuf,
}

/// The pod's directory on the node.
pub fn pod_dir(root_dir: &Path, pod_uid: &str) -> PathBuf {
    root_dir.join("pods").join(pod_uid)
}

/// The file a container's `terminationMessagePath` is bound to.
pub fn termination_message_path(root_dir: &Path, pod_uid: &str, container: &str) -> PathBuf {
    pod_dir(root_dir, pod_uid)
        .join("containers")
        .join(container)
        .join("termination-log")
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> String {
    format!("{what} {}: {e}", p.display())
}

// ---------------------------------------------------------------------------------------------
// Atomic writer

/// A file of an API data volume: relative path, content, mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    pub data: Vec<u8>,
    pub mode: u32,
}

/// Checks that `p` is a relative path without `..` that may appear in a volume.
pub fn check_relative(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("the path is empty".into());
    }
    let path = Path::new(p);
    if path.is_absolute() {
        return Err(format!("path {p:?} must be relative"));
    }
    if path.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(format!("path {p:?} must not contain '..'"));
    }
    if p.starts_with("..") {
        return Err(format!("path {p:?} must not start with '..'"));
    }
    Ok(())
}

fn read_current(dir: &Path) -> Option<BTreeMap<String, Payload>> {
    let data = dir.join("..data");
    let target = fs::read_link(&data).ok()?;
    let base = dir.join(target);
    let mut out = BTreeMap::new();
    fn walk(base: &Path, rel: &Path, out: &mut BTreeMap<String, Payload>) -> Option<()> {
        for e in fs::read_dir(base.join(rel)).ok()? {
            let e = e.ok()?;
            let r = rel.join(e.file_name());
            let meta = e.metadata().ok()?;
            if meta.is_dir() {
                walk(base, &r, out)?;
            } else {
                out.insert(
                    r.to_string_lossy().into_owned(),
                    Payload {
                        data: fs::read(base.join(&r)).ok()?,
                        mode: meta.permissions().mode() & 0o7777,
                    },
                );
            }
        }
        Some(())
    }
    walk(&base, Path::new(""), &mut out)?;
    Some(out)
}

/// Writes `files` into `dir` the way upstream's AtomicWriter does: the data goes into a fresh
/// `..<timestamp>` directory, `..data` is swapped to it with one rename, and each top-level
/// name is a symlink through `..data`; readers see either all old or all new keys. Returns
/// whether anything changed. `group` (fsGroup) owns the files when set.
pub fn write_atomic(
    dir: &Path,
    files: &BTreeMap<String, Payload>,
    group: Option<u32>,
) -> Result<bool, String> {
    for p in files.keys() {
        check_relative(p)?;
    }
    fs::create_dir_all(dir).map_err(|e| io_err("cannot create", dir, e))?;
    if read_current(dir).as_ref() == Some(files) {
        return Ok(false);
    }
    let old_target = fs::read_link(dir.join("..data")).ok();
    let ts = chrono::Utc::now()
        .format("..%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let ts_dir = dir.join(&ts);
    fs::create_dir(&ts_dir).map_err(|e| io_err("cannot create", &ts_dir, e))?;
    fs::set_permissions(&ts_dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| io_err("cannot chmod", &ts_dir, e))?;
    for (rel, p) in files {
        let path = ts_dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err("cannot create", parent, e))?;
        }
        let mut f = fs::File::create(&path).map_err(|e| io_err("cannot write", &path, e))?;
        f.write_all(&p.data)
            .map_err(|e| io_err("cannot write", &path, e))?;
        if let Some(g) = group {
            std::os::unix::fs::chown(&path, None, Some(g))
                .map_err(|e| io_err("cannot chown", &path, e))?;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(p.mode))
            .map_err(|e| io_err("cannot chmod", &path, e))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&ts, &tmp).map_err(|e| io_err("cannot link", &tmp, e))?;
    fs::rename(&tmp, dir.join("..data"))
        .map_err(|e| io_err("cannot swap", &dir.join("..data"), e))?;

    // The visible names: one symlink per top-level entry.
    let top: std::collections::BTreeSet<String> = files
        .keys()
        .map(|k| k.split('/').next().unwrap_or(k).to_string())
        .collect();
    for name in &top {
        let link = dir.join(name);
        let want = Path::new("..data").join(name);
        if fs::read_link(&link).ok().as_deref() != Some(want.as_path()) {
            let _ = fs::remove_file(&link);
            std::os::unix::fs::symlink(&want, &link)
                .map_err(|e| io_err("cannot link", &link, e))?;
        }
    }
    for e in fs::read_dir(dir)
        .map_err(|e| io_err("cannot read", dir, e))?
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") || top.contains(&name) {
            continue;
        }
        if e.file_type().map(|t| t.is_symlink()).unwrap_or(false) {
            let _ = fs::remove_file(e.path());
        }
    }
    if let Some(old) = old_target {
        let old = dir.join(old);
        if old != ts_dir {
            let _ = fs::remove_dir_all(old);
        }
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// hostPath

/// What a hostPath `type` found or did; errors are upstream's messages.
pub fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    let p = path.display();
    let meta = fs::metadata(path).ok();
    let is_dir = || meta.as_ref().is_some_and(|m| m.is_dir());
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_none() {
                fs::create_dir_all(path).map_err(|e| io_err("cannot create", path, e))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(|e| io_err("cannot chmod", path, e))?;
                return Ok(());
            }
            if is_dir() { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a directory")) }
        }
        "Directory" => {
            if is_dir() { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a directory")) }
        }
        "FileOrCreate" => {
            if meta.is_none() {
                fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| io_err("cannot create", path, e))?;
                fs::set_permissions(path, fs::Permissions::from_mode(0o644)).map_err(|e| io_err("cannot chmod", path, e))?;
                return Ok(());
            }
            if meta.as_ref().is_some_and(|m| m.is_file()) { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a file")) }
        }
        "File" => {
            if meta.as_ref().is_some_and(|m| m.is_file()) { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a file")) }
        }
        "Socket" => {
            if meta.as_ref().is_some_and(|m| m.file_type().is_socket()) { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a socket file")) }
        }
        "CharDevice" => {
            if meta.as_ref().is_some_and(|m| m.file_type().is_char_device()) { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a character device")) }
        }
        "BlockDevice" => {
            if meta.as_ref().is_some_and(|m| m.file_type().is_block_device()) { Ok(()) } else { Err(format!("hostPath type check failed: {p} is not a block device")) }
        }
        other => Err(format!("invalid HostPathType {other:?}: use DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice or BlockDevice")),
    }
}

// ---------------------------------------------------------------------------------------------
// Mounts (tmpfs)

/// Decodes the octal escapes (`\040`) of /proc/self/mountinfo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Mount points of `mountinfo` at or under `dir`, deepest first.
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    out.dedup();
    out
}

fn is_mount_point(p: &Path) -> bool {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts_under(&info, p).iter().any(|m| m == p)
}

fn run(cmd: &str, args: &[&str]) -> Result<(), String> {
    let out = std::process::Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {cmd}: {e}: install it"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The `mount -t tmpfs` options for an emptyDir of medium Memory.
pub fn tmpfs_options(size_limit: Option<&str>) -> String {
    match size_limit.and_then(value) {
        Some(bytes) if bytes > 0 => format!("mode=0777,size={bytes}"),
        _ => "mode=0777".to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// prepare

fn plugin_dir(pod_dir: &Path, plugin: &str, name: &str) -> PathBuf {
    pod_dir
        .join("volumes")
        .join(format!("kubernetes.io~{plugin}"))
        .join(name)
}

fn mode_of(item_mode: Option<i32>, default_mode: Option<i32>) -> u32 {
    (item_mode.or(default_mode).unwrap_or(0o644) as u32) & 0o7777
}

/// Files of a configMap or secret volume (`items` or all keys).
pub fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    optional: bool,
    kind: &str,
) -> Result<BTreeMap<String, Payload>, String> {
    let mut out = BTreeMap::new();
    match items {
        Some(items) if !items.is_empty() => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        check_relative(&it.path)?;
                        out.insert(
                            it.path.clone(),
                            Payload {
                                data: v.clone(),
                                mode: mode_of(it.mode, default_mode),
                            },
                        );
                    }
                    None if optional => {}
                    None => {
                        return Err(match kind {
                            "configmap" => {
                                format!("configmap references non-existent config key: {}", it.key)
                            }
                            _ => format!("references non-existent secret key: {}", it.key),
                        })
                    }
                }
            }
        }
        _ => {
            for (k, v) in data {
                out.insert(
                    k.clone(),
                    Payload {
                        data: v.clone(),
                        mode: mode_of(None, default_mode),
                    },
                );
            }
        }
    }
    Ok(out)
}

async fn configmap_data(
    objects: &mut ObjectCache,
    name: &str,
    optional: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    match objects.configmap(name).await? {
        Some(cm) => {
            let mut d: BTreeMap<String, Vec<u8>> = cm
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                .collect();
            for (k, v) in cm.binary_data.iter().flatten() {
                d.insert(k.clone(), v.0.clone());
            }
            Ok(Some(d))
        }
        None if optional => Ok(None),
        None => Err(format!("configmap {name:?} not found")),
    }
}

async fn secret_data(
    objects: &mut ObjectCache,
    name: &str,
    optional: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    match objects.secret(name).await? {
        Some(s) => Ok(Some(
            s.data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.0.clone()))
                .collect(),
        )),
        None if optional => Ok(None),
        None => Err(format!("secret {name:?} not found")),
    }
}

/// Downward API files (`fieldRef` / `resourceFieldRef`).
pub fn downward_files(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: Option<i32>,
    node: &NodeResources,
) -> Result<BTreeMap<String, Payload>, String> {
    let status = pod.status.as_ref();
    let pod_ip = status.and_then(|s| s.pod_ip.clone()).unwrap_or_default();
    let host_ip = status.and_then(|s| s.host_ip.clone()).unwrap_or_default();
    let mut out = BTreeMap::new();
    for it in items {
        check_relative(&it.path)?;
        let v = if let Some(f) = &it.field_ref {
            pod_field_value(pod, &f.field_path, &pod_ip, &host_ip)?
        } else if let Some(r) = &it.resource_field_ref {
            resource_field_value(pod, "", r, node)?
        } else {
            return Err(format!(
                "downwardAPI item {:?} has neither fieldRef nor resourceFieldRef: fix the pod spec",
                it.path
            ));
        };
        out.insert(
            it.path.clone(),
            Payload {
                data: v.into_bytes(),
                mode: mode_of(it.mode, default_mode),
            },
        );
    }
    Ok(out)
}

/// `iat`/`exp`/`aud` of a JWT's payload (not verified; it is our own token).
pub fn jwt_times(token: &str) -> Option<(i64, i64, Vec<String>)> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let aud = match &v["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    Some((v["iat"].as_i64()?, v["exp"].as_i64()?, aud))
}

/// Whether a token issued at `iat` expiring at `exp` needs a refresh at `now` (80% of its life
/// passed, or older than 24 h — upstream's token manager).
pub fn token_needs_refresh(iat: i64, exp: i64, now: i64) -> bool {
    let life = (exp - iat).max(0);
    now >= exp || now - iat > life * 8 / 10 || now - iat > 24 * 3600
}

async fn service_account_token(
    ctx: &VolumeContext,
    pod: &Pod,
    existing: Option<&Payload>,
    audience: Option<&str>,
    expiration: i64,
) -> Result<Vec<u8>, String> {
    let audiences: Vec<String> = audience
        .filter(|a| !a.is_empty())
        .map(|a| vec![a.to_string()])
        .unwrap_or_default();
    if let Some(p) = existing {
        if let Some((iat, exp, aud)) = jwt_times(&String::from_utf8_lossy(&p.data)) {
            let aud_ok = audiences.is_empty() || audiences.iter().all(|a| aud.contains(a));
            if aud_ok && !token_needs_refresh(iat, exp, chrono::Utc::now().timestamp()) {
                return Ok(p.data.clone());
            }
        }
    }
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.as_deref())
        .filter(|s| !s.is_empty())
        .unwrap_or("default");
    let api: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), ns);
    let req = TokenRequest {
        spec: TokenRequestSpec {
            audiences,
            expiration_seconds: Some(expiration),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
        },
        ..Default::default()
    };
    let got = api
        .create_token_request(sa, &PostParams::default(), &req)
        .await
        .map_err(|e| {
            format!("failed to fetch token: {e}: check that service account {ns}/{sa} exists")
        })?;
    let token = got
        .status
        .map(|s| s.token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            format!("failed to fetch token: the server returned no token for {ns}/{sa}")
        })?;
    Ok(token.into_bytes())
}

fn fs_group(pod: &Pod) -> Option<u32> {
    pod.spec
        .as_ref()
        .and_then(|s| s.security_context.as_ref())
        .and_then(|s| s.fs_group)
        .and_then(|g| u32::try_from(g).ok())
}

async fn prepare_volume(
    ctx: &VolumeContext,
    pod: &Pod,
    pod_dir: &Path,
    v: &Volume,
    objects: &mut ObjectCache,
) -> Result<VolumeHost, String> {
    let node = NodeResources::host();
    let group = fs_group(pod);
    if let Some(ed) = &v.empty_dir {
        let dir = plugin_dir(pod_dir, "empty-dir", &v.name);
        let fresh = !dir.exists();
        fs::create_dir_all(&dir).map_err(|e| io_err("cannot create", &dir, e))?;
        if ed.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
            let opts = tmpfs_options(ed.size_limit.as_ref().map(|q| q.0.as_str()));
            run(
                "mount",
                &["-t", "tmpfs", "-o", &opts, "tmpfs", &dir.to_string_lossy()],
            )?;
        }
        if fresh || ed.medium.as_deref() == Some("Memory") {
            let mut mode = 0o777;
            if let Some(g) = group {
                std::os::unix::fs::chown(&dir, None, Some(g))
                    .map_err(|e| io_err("cannot chown", &dir, e))?;
                mode |= 0o2000;
            }
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                .map_err(|e| io_err("cannot chmod", &dir, e))?;
        }
        return Ok(VolumeHost {
            path: dir,
            read_only: false,
        });
    }
    if let Some(hp) = &v.host_path {
        let path = PathBuf::from(&hp.path);
        check_host_path(&path, hp.type_.as_deref().unwrap_or(""))?;
        return Ok(VolumeHost {
            path,
            read_only: false,
        });
    }
    if let Some(cm) = &v.config_map {
        let optional = cm.optional == Some(true);
        let dir = plugin_dir(pod_dir, "configmap", &v.name);
        let data = configmap_data(objects, &cm.name, optional)
            .await?
            .unwrap_or_default();
        let files = key_files(
            &data,
            cm.items.as_deref(),
            cm.default_mode,
            optional,
            "configmap",
        )?;
        write_atomic(&dir, &files, group)?;
        return Ok(VolumeHost {
            path: dir,
            read_only: true,
        });
    }
    if let Some(s) = &v.secret {
        let optional = s.optional == Some(true);
        let name = s.secret_name.clone().unwrap_or_default();
        let dir = plugin_dir(pod_dir, "secret", &v.name);
        let data = secret_data(objects, &name, optional)
            .await?
            .unwrap_or_default();
        let files = key_files(
            &data,
            s.items.as_deref(),
            s.default_mode,
            optional,
            "secret",
        )?;
        write_atomic(&dir, &files, group)?;
        return Ok(VolumeHost {
            path: dir,
            read_only: true,
        });
    }
    if let Some(d) = &v.downward_api {
        let dir = plugin_dir(pod_dir, "downward-api", &v.name);
        let files = downward_files(
            pod,
            d.items.as_deref().unwrap_or_default(),
            d.default_mode,
            &node,
        )?;
        write_atomic(&dir, &files, group)?;
        return Ok(VolumeHost {
            path: dir,
            read_only: true,
        });
    }
    if let Some(p) = &v.projected {
        let dir = plugin_dir(pod_dir, "projected", &v.name);
        let current = read_current(&dir).unwrap_or_default();
        let mut files: BTreeMap<String, Payload> = BTreeMap::new();
        for src in p.sources.iter().flatten() {
            if let Some(t) = &src.service_account_token {
                check_relative(&t.path)?;
                let token = service_account_token(
                    ctx,
                    pod,
                    current.get(&t.path),
                    t.audience.as_deref(),
                    t.expiration_seconds.unwrap_or(3600),
                )
                .await?;
                // Token files are 0600 unless fsGroup asks for group read (upstream: 0600/0640).
                let mode = match (group, p.default_mode) {
                    (Some(_), _) => 0o640,
                    (None, Some(m)) => (m as u32) & 0o7777,
                    (None, None) => 0o600,
                };
                files.insert(t.path.clone(), Payload { data: token, mode });
            }
            if let Some(cm) = &src.config_map {
                let optional = cm.optional == Some(true);
                if let Some(data) = configmap_data(objects, &cm.name, optional).await? {
                    files.extend(key_files(
                        &data,
                        cm.items.as_deref(),
                        p.default_mode,
                        optional,
                        "configmap",
                    )?);
                }
            }
            if let Some(s) = &src.secret {
                let optional = s.optional == Some(true);
                if let Some(data) = secret_data(objects, &s.name, optional).await? {
                    files.extend(key_files(
                        &data,
                        s.items.as_deref(),
                        p.default_mode,
                        optional,
                        "secret",
                    )?);
                }
            }
            if let Some(d) = &src.downward_api {
                files.extend(downward_files(
                    pod,
                    d.items.as_deref().unwrap_or_default(),
                    p.default_mode,
                    &node,
                )?);
            }
            if src.cluster_trust_bundle.is_some() {
                return Err("clusterTrustBundle projections are not supported by skiff: remove them from the pod".into());
            }
        }
        write_atomic(&dir, &files, group)?;
        return Ok(VolumeHost {
            path: dir,
            read_only: true,
        });
    }
    if let Some(pvc_src) = &v.persistent_volume_claim {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let claim = &pvc_src.claim_name;
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), ns);
        let pvc = pvcs
            .get_opt(claim)
            .await
            .map_err(|e| format!("cannot get persistentvolumeclaim {ns}/{claim}: {e}"))?
            .ok_or_else(|| format!("persistentvolumeclaim {claim:?} not found"))?;
        let bound = pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
        let pv_name = pvc
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.clone())
            .filter(|n| !n.is_empty());
        let Some(pv_name) = pv_name.filter(|_| bound) else {
            return Err(format!("persistentvolumeclaim {claim:?} is not bound"));
        };
        let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
        let pv = pvs
            .get_opt(&pv_name)
            .await
            .map_err(|e| format!("cannot get persistentvolume {pv_name}: {e}"))?
            .ok_or_else(|| format!("persistentvolume {pv_name:?} not found"))?;
        let spec = pv.spec.unwrap_or_default();
        let read_only = pvc_src.read_only == Some(true);
        if let Some(hp) = spec.host_path {
            let path = PathBuf::from(&hp.path);
            check_host_path(&path, hp.type_.as_deref().unwrap_or(""))?;
            return Ok(VolumeHost { path, read_only });
        }
        if let Some(local) = spec.local {
            let path = PathBuf::from(&local.path);
            if !path.exists() {
                return Err(format!("path {:?} does not exist: create it on node {} or fix persistentvolume {pv_name}", local.path, ctx.node_name));
            }
            return Ok(VolumeHost { path, read_only });
        }
        return Err(format!(
            "persistentvolume {pv_name} is neither hostPath nor local: skiff mounts only those"
        ));
    }
    Err(format!("volume {:?} has a type skiff does not support: use emptyDir, hostPath, configMap, secret, downwardAPI, projected or persistentVolumeClaim", v.name))
}

/// Makes every volume of `pod` ready on the node (idempotent; call again to refresh API data
/// and tokens). The error is the FailedMount message.
pub async fn prepare(ctx: &VolumeContext, pod: &Pod) -> Result<PreparedVolumes, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    if uid.is_empty() {
        return Err("the pod has no uid".into());
    }
    let dir = pod_dir(&ctx.root_dir, uid);
    fs::create_dir_all(dir.join("volumes")).map_err(|e| io_err("cannot create", &dir, e))?;
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut objects = ObjectCache::new(&ctx.client, ns);
    let mut out = PreparedVolumes {
        volumes: HashMap::new(),
        pod_dir: dir.clone(),
    };
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let host = prepare_volume(ctx, pod, &dir, v, &mut objects)
            .await
            .map_err(|e| format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name))?;
        out.volumes.insert(v.name.clone(), host);
    }
    for c in pod.spec.iter().flat_map(|s| {
        s.init_containers
            .iter()
            .flatten()
            .chain(s.containers.iter())
    }) {
        let f = termination_message_path(&ctx.root_dir, uid, &c.name);
        if let Some(parent) = f.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err("cannot create", parent, e))?;
        }
        if !f.exists() {
            fs::File::create(&f).map_err(|e| io_err("cannot create", &f, e))?;
            fs::set_permissions(&f, fs::Permissions::from_mode(0o666))
                .map_err(|e| io_err("cannot chmod", &f, e))?;
        }
    }
    Ok(out)
}

/// The CRI propagation of a `mountPropagation`.
pub fn propagation(mode: Option<&str>, privileged: bool) -> Result<MountPropagation, String> {
    match mode.unwrap_or("None") {
        "None" | "" => Ok(MountPropagation::PropagationPrivate),
        "HostToContainer" => Ok(MountPropagation::PropagationHostToContainer),
        "Bidirectional" if privileged => Ok(MountPropagation::PropagationBidirectional),
        "Bidirectional" => {
            Err("Bidirectional mount propagation is available only to privileged containers".into())
        }
        other => Err(format!(
            "invalid mount propagation mode {other:?}: use None, HostToContainer or Bidirectional"
        )),
    }
}

/// The host path of `subPath` inside a volume: created as a directory when absent, and it must
/// not lead outside the volume through `..` or symlinks.
pub fn sub_path(volume: &Path, sub: &str) -> Result<PathBuf, String> {
    check_relative(sub).map_err(|e| format!("invalid subPath: {e}"))?;
    let p = volume.join(sub);
    if fs::symlink_metadata(&p).is_err() {
        fs::create_dir_all(&p).map_err(|e| io_err("cannot create subPath", &p, e))?;
        let _ = fs::set_permissions(&p, fs::Permissions::from_mode(0o755));
    }
    let real = fs::canonicalize(&p).map_err(|e| io_err("cannot resolve subPath", &p, e))?;
    let base = fs::canonicalize(volume).map_err(|e| io_err("cannot resolve volume", volume, e))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "subPath {sub:?} leads outside the volume: fix the volumeMount"
        ));
    }
    Ok(real)
}

/// The CRI mounts of container `c`: its volumeMounts and the termination-log file (truncated
/// here, so each container instance starts with an empty message).
pub fn container_mounts(
    pod: &Pod,
    c: &Container,
    v: &PreparedVolumes,
) -> Result<Vec<Mount>, String> {
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|s| s.privileged)
        .unwrap_or(false);
    let mut out = Vec::new();
    for m in c.volume_mounts.iter().flatten() {
        let host = v.volumes.get(&m.name).ok_or_else(|| {
            format!(
                "volume {:?} of container {:?} is not prepared: check that the pod declares it",
                m.name, c.name
            )
        })?;
        if m.sub_path_expr.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(format!(
                "subPathExpr of volumeMount {:?} is not supported by skiff yet: use subPath",
                m.name
            ));
        }
        let host_path = match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
            Some(sub) => sub_path(&host.path, sub)?,
            None => host.path.clone(),
        };
        out.push(Mount {
            container_path: m.mount_path.clone(),
            host_path: host_path.to_string_lossy().into_owned(),
            readonly: host.read_only || m.read_only == Some(true),
            propagation: propagation(m.mount_propagation.as_deref(), privileged)? as i32,
            ..Default::default()
        });
    }
    if let Some(tpath) = c
        .termination_message_path
        .as_deref()
        .filter(|p| !p.is_empty())
    {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let root = v
            .pod_dir
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("/"));
        let f = termination_message_path(root, uid, &c.name);
        if let Some(parent) = f.parent() {
            fs::create_dir_all(parent).map_err(|e| io_err("cannot create", parent, e))?;
        }
        fs::File::create(&f).map_err(|e| io_err("cannot create", &f, e))?;
        fs::set_permissions(&f, fs::Permissions::from_mode(0o666))
            .map_err(|e| io_err("cannot chmod", &f, e))?;
        if !out.iter().any(|m| m.container_path == tpath) {
            out.push(Mount {
                container_path: tpath.to_string(),
                host_path: f.to_string_lossy().into_owned(),
                readonly: false,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// Unmounts what [`prepare`] mounted under the pod's directory and removes it.
pub async fn cleanup(ctx: &VolumeContext, pod_uid: &str) -> Result<(), String> {
    if pod_uid.is_empty() {
        return Ok(());
    }
    let dir = pod_dir(&ctx.root_dir, pod_uid);
    if !dir.exists() {
        return Ok(());
    }
    let info = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
    for m in mounts_under(&info, &dir) {
        run("umount", &[&m.to_string_lossy()])?;
    }
    fs::remove_dir_all(&dir).map_err(|e| io_err("cannot remove", &dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(kv: &[(&str, &str)]) -> BTreeMap<String, Payload> {
        kv.iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    Payload {
                        data: v.as_bytes().to_vec(),
                        mode: 0o644,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn atomic_writer_layout_and_refresh() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("vol");
        assert!(write_atomic(&dir, &files(&[("a", "1"), ("sub/b", "2")]), None).unwrap());
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "1");
        assert_eq!(fs::read_to_string(dir.join("sub/b")).unwrap(), "2");
        assert_eq!(fs::read_link(dir.join("a")).unwrap(), Path::new("..data/a"));
        assert_eq!(
            fs::read_link(dir.join("sub")).unwrap(),
            Path::new("..data/sub")
        );
        let first = fs::read_link(dir.join("..data")).unwrap();
        assert!(first.to_string_lossy().starts_with(".."));
        assert_eq!(
            fs::metadata(dir.join("a")).unwrap().permissions().mode() & 0o777,
            0o644
        );

        // Same content: nothing changes.
        assert!(!write_atomic(&dir, &files(&[("a", "1"), ("sub/b", "2")]), None).unwrap());
        assert_eq!(fs::read_link(dir.join("..data")).unwrap(), first);

        // Refresh: a key changes, one disappears, one appears; the old data dir is gone.
        assert!(write_atomic(&dir, &files(&[("a", "9"), ("c", "3")]), None).unwrap());
        let second = fs::read_link(dir.join("..data")).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read_to_string(dir.join("a")).unwrap(), "9");
        assert_eq!(fs::read_to_string(dir.join("c")).unwrap(), "3");
        assert!(fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join(&first).exists());
        let names: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 4, "{names:?}"); // ..data, ..<ts>, a, c

        assert!(write_atomic(&dir, &files(&[("../x", "1")]), None).is_err());
        assert!(write_atomic(&dir, &files(&[("/abs", "1")]), None).is_err());
    }

    #[test]
    fn key_files_honour_items_modes_and_optional() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("k1".to_string(), b"v1".to_vec()),
            ("k2".to_string(), b"v2".to_vec()),
        ]
        .into();
        let all = key_files(&data, None, Some(0o400), false, "configmap").unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["k1"].mode, 0o400);
        let items: Vec<KeyToPath> = serde_json::from_value(
            serde_json::json!([{"key": "k2", "path": "dir/two", "mode": 0o600}]),
        )
        .unwrap();
        let some = key_files(&data, Some(&items), None, false, "configmap").unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), vec!["dir/two"]);
        assert_eq!(
            (some["dir/two"].mode, some["dir/two"].data.as_slice()),
            (0o600, b"v2".as_slice())
        );
        let missing: Vec<KeyToPath> =
            serde_json::from_value(serde_json::json!([{"key": "x", "path": "x"}])).unwrap();
        assert_eq!(
            key_files(&data, Some(&missing), None, false, "configmap").unwrap_err(),
            "configmap references non-existent config key: x"
        );
        assert_eq!(
            key_files(&data, Some(&missing), None, false, "secret").unwrap_err(),
            "references non-existent secret key: x"
        );
        assert!(key_files(&data, Some(&missing), None, true, "secret")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn host_path_types_check_and_create() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("d/e");
        check_host_path(&d, "DirectoryOrCreate").unwrap();
        assert!(d.is_dir());
        check_host_path(&d, "Directory").unwrap();
        assert_eq!(
            check_host_path(&d, "File").unwrap_err(),
            format!("hostPath type check failed: {} is not a file", d.display())
        );
        let f = t.path().join("f");
        check_host_path(&f, "FileOrCreate").unwrap();
        assert!(f.is_file());
        check_host_path(&f, "File").unwrap();
        assert!(check_host_path(&f, "Directory")
            .unwrap_err()
            .ends_with("is not a directory"));
        assert!(check_host_path(&f, "DirectoryOrCreate")
            .unwrap_err()
            .ends_with("is not a directory"));
        assert!(check_host_path(&t.path().join("nope"), "Directory").is_err());
        assert!(check_host_path(&t.path().join("nope"), "").is_ok());
        assert!(check_host_path(&f, "Socket")
            .unwrap_err()
            .ends_with("is not a socket file"));
        let sock = t.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        check_host_path(&sock, "Socket").unwrap();
        check_host_path(Path::new("/dev/null"), "CharDevice").unwrap();
        assert!(check_host_path(Path::new("/dev/null"), "BlockDevice")
            .unwrap_err()
            .ends_with("is not a block device"));
        assert!(check_host_path(&f, "Weird").is_err());
    }

    #[test]
    fn sub_paths_are_created_and_confined() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        fs::create_dir(&vol).unwrap();
        let p = sub_path(&vol, "a/b").unwrap();
        assert!(p.is_dir() && p.ends_with("vol/a/b"));
        assert!(sub_path(&vol, "../x").is_err());
        std::os::unix::fs::symlink("/etc", vol.join("esc")).unwrap();
        assert!(sub_path(&vol, "esc")
            .unwrap_err()
            .contains("outside the volume"));
    }

    #[test]
    fn mountinfo_parsing_finds_nested_mounts() {
        let info = "22 1 0:21 / /proc rw - proc proc rw\n\
                    30 22 0:40 / /var/lib/skiff/pods/u1/volumes/kubernetes.io~empty-dir/m rw - tmpfs tmpfs rw\n\
                    31 30 0:41 / /var/lib/skiff/pods/u1/volumes/kubernetes.io~empty-dir/m/in\\040ner rw - tmpfs tmpfs rw\n\
                    32 1 0:42 / /var/lib/skiff/pods/u10 rw - tmpfs tmpfs rw\n";
        let got = mounts_under(info, Path::new("/var/lib/skiff/pods/u1"));
        assert_eq!(
            got,
            vec![
                PathBuf::from("/var/lib/skiff/pods/u1/volumes/kubernetes.io~empty-dir/m/in ner"),
                PathBuf::from("/var/lib/skiff/pods/u1/volumes/kubernetes.io~empty-dir/m"),
            ]
        );
        assert_eq!(tmpfs_options(Some("64Mi")), "mode=0777,size=67108864");
        assert_eq!(tmpfs_options(None), "mode=0777");
    }

    #[test]
    fn tokens_refresh_after_eighty_percent() {
        assert!(!token_needs_refresh(0, 3600, 2000));
        assert!(token_needs_refresh(0, 3600, 2881));
        assert!(token_needs_refresh(0, 3600, 3600));
        assert!(token_needs_refresh(0, 365 * 86400, 86401));
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"iat":10,"exp":20,"aud":["a","b"]}"#);
        assert_eq!(
            jwt_times(&format!("h.{payload}.s")),
            Some((10, 20, vec!["a".into(), "b".into()]))
        );
        assert_eq!(jwt_times("garbage"), None);
    }

    #[test]
    fn propagation_modes() {
        assert_eq!(
            propagation(None, false).unwrap(),
            MountPropagation::PropagationPrivate
        );
        assert_eq!(
            propagation(Some("HostToContainer"), false).unwrap(),
            MountPropagation::PropagationHostToContainer
        );
        assert!(propagation(Some("Bidirectional"), false).is_err());
        assert_eq!(
            propagation(Some("Bidirectional"), true).unwrap(),
            MountPropagation::PropagationBidirectional
        );
    }

    #[test]
    fn downward_files_render_labels_and_resources() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"b": "2", "a": "1"}},
            "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "32Mi"}}}]}
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}, "mode": 0o400}
        ])).unwrap();
        let node = NodeResources {
            milli_cpu: 1000,
            memory_bytes: 1 << 30,
            ephemeral_storage_bytes: 0,
        };
        let f = downward_files(&pod, &items, None, &node).unwrap();
        assert_eq!(f["labels"].data, b"a=\"1\"\nb=\"2\"");
        assert_eq!(
            (f["mem"].data.as_slice(), f["mem"].mode),
            (b"32".as_slice(), 0o400)
        );
    }
}

/// Against a real API server started in-process (`skiff_apiserver::start` on 127.0.0.1, a port
/// of its own, a temp data dir; no controllers, so the test creates what the service-account
/// controller would). Needs root for the memory emptyDir's tmpfs: runs unless
/// `SKIFF_E2E_NODES=0`, fails when not root.
#[cfg(test)]
mod live {
    use super::*;
    use crate::containerd::live_tests::should_run_with;
    use crate::kubelet::env::container_env;
    use crate::kubelet::events::{EventType, Recorder};
    use k8s_openapi::api::core::v1::{ConfigMap, Event, Namespace, Secret, Service};
    use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
    use std::time::Duration;

    /// Starts the API server under `dir` and returns an admin client and the server CA (PEM).
    async fn server(dir: &Path) -> (kube::Client, String) {
        // A free port (the `kubernetes` Endpoints carry the configured port, so not 0).
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let srv = skiff_apiserver::start(skiff_apiserver::ServerConfig {
            data_dir: dir.to_path_buf(),
            bind_address: std::net::Ipv4Addr::LOCALHOST.into(),
            port,
            ..Default::default()
        })
        .await
        .expect("the in-process API server starts");
        let pki = &srv.state.pki;
        let kc = skiff_pki::render_kubeconfig(
            &format!("https://{}", srv.local_addr),
            pki.server_ca_pem(),
            pki.admin_cert_pem(),
            pki.admin_key_pem(),
        )
        .unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(&kc).unwrap();
        let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .unwrap();
        (
            kube::Client::try_from(cfg).unwrap(),
            pki.server_ca_pem().to_string(),
        )
    }

    /// Lazily unmounts whatever is left under a dir (a failed test's tmpfs) when dropped.
    struct UnmountUnder(PathBuf);

    impl Drop for UnmountUnder {
        fn drop(&mut self) {
            let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            for m in mounts_under(&info, &self.0) {
                let _ = std::process::Command::new("umount")
                    .args(["-l", &m.to_string_lossy()])
                    .status();
            }
        }
    }

    async fn create<K>(c: &kube::Client, ns: &str, v: serde_json::Value) -> K
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + serde::Serialize
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(c.clone(), ns);
        api.create(&PostParams::default(), &serde_json::from_value(v).unwrap())
            .await
            .unwrap()
    }

    async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
        what: &str,
        mut f: impl FnMut() -> F,
    ) -> T {
        for _ in 0..100 {
            if let Some(v) = f().await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn env_events_and_volumes_against_a_real_server() {
        if !should_run_with(&[("/usr/bin/umount", "mount")]) {
            return;
        }
        let server_dir = tempfile::tempdir().unwrap();
        let (c, ca) = tokio::time::timeout(Duration::from_secs(30), server(server_dir.path()))
            .await
            .expect("the API server started within 30 s");
        let ns = format!("kin-{}", rand::random::<u32>());
        let nss: Api<Namespace> = Api::all(c.clone());
        nss.create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
        // What the service-account controller would create (controllers do not run here).
        let _: ServiceAccount = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "default"}}),
        )
        .await;
        let _: ConfigMap = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca}}),
        )
        .await;
        let _: ConfigMap = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "cfg"},
            "data": {"a": "1", "b": "bee"}}),
        )
        .await;
        let _: Secret = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "s"},
            "stringData": {"k": "v"}}),
        )
        .await;
        let svc: Service = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "web"},
            "spec": {"ports": [{"port": 80, "name": "http"}]}}),
        )
        .await;
        let web_ip = svc.spec.unwrap().cluster_ip.unwrap();
        let hostdir = tempfile::tempdir().unwrap();
        let pod: Pod = create(&c, &ns, serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "x"}},
            "spec": {
                "containers": [{"name": "c", "image": "busybox",
                    "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                                {"secretRef": {"name": "missing", "optional": true}}],
                    "env": [
                        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                        {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                        {"name": "MSG", "value": "$(A)-$(CFG_b)-$(WEB_SERVICE_HOST)-$$(A)"},
                        {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "zz", "optional": true}}}
                    ],
                    "volumeMounts": [
                        {"name": "cm", "mountPath": "/cm"},
                        {"name": "mem", "mountPath": "/mem", "subPath": "sub"},
                        {"name": "proj", "mountPath": "/var/run/secrets/x"}
                    ]}],
                "volumes": [
                    {"name": "cm", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "dir/a"}]}},
                    {"name": "sec", "secret": {"secretName": "s", "defaultMode": 0o400}},
                    {"name": "mem", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "host", "hostPath": {"path": hostdir.path().join("h").to_string_lossy(), "type": "DirectoryOrCreate"}},
                    {"name": "down", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                    {"name": "proj", "projected": {"sources": [
                        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}},
                        {"configMap": {"name": "cfg", "items": [{"key": "b", "path": "b"}]}},
                        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}
                    ]}}
                ]
            }
        })).await;
        let container = pod.spec.as_ref().unwrap().containers[0].clone();

        // env
        let env = container_env(&c, &pod, &container, "10.42.0.9", "192.0.2.1")
            .await
            .unwrap();
        let get = |k: &str| env.iter().find(|kv| kv.key == k).map(|kv| kv.value.clone());
        assert_eq!(get("CFG_a").as_deref(), Some("1"));
        assert_eq!(get("A").as_deref(), Some("1"));
        assert_eq!(get("K").as_deref(), Some("v"));
        assert_eq!(get("NAME").as_deref(), Some("p"));
        assert_eq!(get("OPT"), None);
        assert_eq!(get("MSG"), Some(format!("1-bee-{web_ip}-$(A)")));
        assert_eq!(get("WEB_SERVICE_PORT_HTTP").as_deref(), Some("80"));
        assert!(get("KUBERNETES_SERVICE_HOST").is_some(), "{env:?}");
        let mut bad = container.clone();
        bad.env = Some(
            serde_json::from_value(serde_json::json!([
            {"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "zz"}}}]))
            .unwrap(),
        );
        assert_eq!(
            container_env(&c, &pod, &bad, "", "").await.unwrap_err(),
            format!("couldn't find key zz in ConfigMap {ns}/cfg")
        );
        bad.env = Some(
            serde_json::from_value(serde_json::json!([
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "nope", "key": "zz"}}}]))
            .unwrap(),
        );
        assert_eq!(
            container_env(&c, &pod, &bad, "", "").await.unwrap_err(),
            "secret \"nope\" not found"
        );

        // events: a repeat bumps the count of the same Event
        let rec = Recorder::new(c.clone(), "node-a");
        rec.pod(
            &pod,
            Some("spec.containers{c}"),
            EventType::Warning,
            "Unhealthy",
            "Readiness probe failed: x",
        );
        rec.pod(
            &pod,
            Some("spec.containers{c}"),
            EventType::Warning,
            "Unhealthy",
            "Readiness probe failed: x",
        );
        let events: Api<Event> = Api::namespaced(c.clone(), &ns);
        let ev = eventually("the event with count 2", || {
            let events = events.clone();
            async move {
                let l = events.list(&ListParams::default()).await.ok()?;
                l.items.into_iter().find(|e| e.count == Some(2))
            }
        })
        .await;
        let from_kubelet = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.reporting_component.as_deref() == Some("kubelet"))
            .count();
        assert_eq!(from_kubelet, 1, "the repeat updated the first event");
        assert_eq!(ev.source.unwrap().host.as_deref(), Some("node-a"));
        assert_eq!(ev.involved_object.uid, pod.metadata.uid);

        // volumes
        let root = tempfile::tempdir().unwrap();
        let _unmount = UnmountUnder(root.path().to_path_buf());
        let ctx = VolumeContext {
            client: c.clone(),
            root_dir: root.path().to_path_buf(),
            node_name: "node-a".into(),
        };
        let sas: Api<ServiceAccount> = Api::namespaced(c.clone(), &ns);
        eventually("the default service account", || {
            let sas = sas.clone();
            async move { sas.get_opt("default").await.ok().flatten() }
        })
        .await;
        let v = prepare(&ctx, &pod).await.unwrap();
        let uid = pod.metadata.uid.clone().unwrap();
        let cm = &v.volumes["cm"];
        assert!(cm.read_only);
        assert_eq!(fs::read_to_string(cm.path.join("dir/a")).unwrap(), "1");
        let sec = &v.volumes["sec"].path;
        assert_eq!(fs::read_to_string(sec.join("k")).unwrap(), "v");
        assert_eq!(
            fs::metadata(sec.join("k")).unwrap().permissions().mode() & 0o777,
            0o400
        );
        assert!(
            is_mount_point(&v.volumes["mem"].path),
            "memory emptyDir is a tmpfs"
        );
        assert!(hostdir.path().join("h").is_dir());
        assert_eq!(
            fs::read_to_string(v.volumes["down"].path.join("labels")).unwrap(),
            "app=\"x\""
        );
        let proj = &v.volumes["proj"].path;
        let token = fs::read_to_string(proj.join("token")).unwrap();
        let (iat, exp, _) = jwt_times(&token).expect("a JWT");
        assert_eq!(exp - iat, 3600);
        assert_eq!(fs::read_to_string(proj.join("b")).unwrap(), "bee");
        assert_eq!(fs::read_to_string(proj.join("ns")).unwrap(), ns);

        let mounts = container_mounts(&pod, &container, &v).unwrap();
        // The service account admission added kube-api-access-xxxxx (token, ca.crt, namespace).
        assert_eq!(mounts.len(), 5, "{mounts:?}");
        assert!(mounts[1]
            .host_path
            .ends_with("kubernetes.io~empty-dir/mem/sub"));
        assert_eq!(
            mounts[3].container_path,
            "/var/run/secrets/kubernetes.io/serviceaccount"
        );
        let api_access = PathBuf::from(&mounts[3].host_path);
        assert!(fs::read_to_string(api_access.join("ca.crt"))
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
        assert_eq!(
            fs::read_to_string(api_access.join("namespace")).unwrap(),
            ns
        );
        assert!(jwt_times(&fs::read_to_string(api_access.join("token")).unwrap()).is_some());
        assert_eq!(mounts[4].container_path, "/dev/termination-log");
        assert_eq!(
            PathBuf::from(&mounts[4].host_path),
            termination_message_path(root.path(), &uid, "c")
        );

        // refresh: a configMap change swaps the files, the token is kept while fresh
        let cms: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
        cms.patch(
            "cfg",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"a": "2", "b": "bea"}})),
        )
        .await
        .unwrap();
        prepare(&ctx, &pod).await.unwrap();
        assert_eq!(fs::read_to_string(cm.path.join("dir/a")).unwrap(), "2");
        assert_eq!(fs::read_to_string(proj.join("b")).unwrap(), "bea");
        assert_eq!(fs::read_to_string(proj.join("token")).unwrap(), token);

        // an unbound claim fails like upstream
        let _: PersistentVolumeClaim = create(
            &c,
            &ns,
            serde_json::json!({"metadata": {"name": "claim"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "none",
                     "resources": {"requests": {"storage": "1Gi"}}}}),
        )
        .await;
        let mut with_pvc = pod.clone();
        with_pvc.spec.as_mut().unwrap().volumes = Some(
            serde_json::from_value(serde_json::json!([
            {"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}]))
            .unwrap(),
        );
        assert_eq!(
            prepare(&ctx, &with_pvc).await.unwrap_err(),
            "MountVolume.SetUp failed for volume \"data\" : persistentvolumeclaim \"claim\" is not bound"
        );

        cleanup(&ctx, &uid).await.unwrap();
        assert!(!pod_dir(root.path(), &uid).exists());
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(mounts_under(&info, root.path()).is_empty());
        nss.delete(&ns, &DeleteParams::default()).await.unwrap();
    }
}
