//! Auto-deploying manifests (k3s's deploy controller): every `*.yaml`, `*.yml` and `*.json`
//! file in `<data>/server/manifests/` is applied at start and whenever it changes, by
//! server-side apply with field manager `skiff-deploy`; objects removed from a file, or whose
//! file was deleted, are deleted.
//!
//! State: one ConfigMap per file, `kube-system/skiff-addon-<name>` (labelled
//! `skiff.io/addon=true`; `<name>` is the file name without its extension, as k3s names its
//! `Addon` objects), holding the file's path, the SHA-256 of the content last applied in full
//! and the list of objects it created. That list is what pruning deletes, so it survives
//! restarts; an unchanged checksum is not re-applied after a restart. Progress and errors are
//! Events on that ConfigMap (`ApplyingManifest`, `AppliedManifest`, `ApplyManifestFailed`,
//! `DeletedManifest`) and log lines; one broken file never stops the others, and a failed file
//! is retried every [`RETRY`].
//!
//! Skipped like k3s: a file `X.skip` beside `X` skips `X`, and so does `--disable NAME` for
//! `NAME.yaml|yml|json` (a packaged add-on turned off); a skipped file counts as removed.
//! Objects without a namespace go to `kube-system`, the namespace k3s applies add-ons in.
//!
//! The directory is polled every [`POLL`]: a handful of small files, read and hashed, costs
//! less than an inotify watcher's extra dependency and needs no care for editors that replace
//! files by rename.

use crate::events::Recorder;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiCapabilities, ApiResource, Scope};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Field manager of every apply.
pub const FIELD_MANAGER: &str = "skiff-deploy";
/// Label on the tracking ConfigMaps.
pub const ADDON_LABEL: &str = "skiff.io/addon";
/// Namespace of the tracking ConfigMaps and of objects without a namespace.
pub const ADDON_NAMESPACE: &str = "kube-system";
/// How often the directory is looked at.
pub const POLL: Duration = Duration::from_millis(500);
/// How soon a file that failed is tried again (unchanged).
pub const RETRY: Duration = Duration::from_secs(10);

/// Where the manifests are and which add-ons are turned off.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `<data>/server/manifests`.
    pub dir: PathBuf,
    /// `--disable` names: `NAME.yaml|yml|json` are skipped.
    pub disabled: Vec<String>,
}

/// One object a manifest file holds (what pruning needs to find it again).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjRef {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    pub name: String,
}

impl std::fmt::Display for ObjRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{} {}", self.kind, self.name)
        } else {
            write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// A manifest file that counts (after the skip rules).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The add-on name: the file name without its extension.
    pub name: String,
    pub path: PathBuf,
    pub json: bool,
}

/// The files of a directory listing that are applied: `*.yaml|yml|json`, not hidden, without a
/// `<file>.skip` beside them and not named by `disabled`. Two files with one add-on name (`a.yaml`
/// and `a.json`): the first by file name wins, the other is returned in the second list.
pub fn select_files(
    dir: &Path,
    names: &[String],
    disabled: &[String],
) -> (Vec<ManifestFile>, Vec<String>) {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    let mut out: Vec<ManifestFile> = Vec::new();
    let mut clashes = Vec::new();
    for n in sorted {
        if n.starts_with('.') || names.iter().any(|o| *o == format!("{n}.skip")) {
            continue;
        }
        let Some((stem, ext)) = n.rsplit_once('.') else {
            continue;
        };
        if !matches!(ext, "yaml" | "yml" | "json") || stem.is_empty() {
            continue;
        }
        if disabled.iter().any(|d| d.trim() == stem) {
            continue;
        }
        if out.iter().any(|f| f.name == stem) {
            clashes.push(n.clone());
            continue;
        }
        out.push(ManifestFile {
            name: stem.to_string(),
            path: dir.join(n),
            json: ext == "json",
        });
    }
    (out, clashes)
}

/// The tracking ConfigMap's name for an add-on: `skiff-addon-<name>`, lower-cased, characters a
/// ConfigMap name cannot hold replaced by `-`, at most 253 characters.
pub fn configmap_name(addon: &str) -> String {
    let mut s: String = addon
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    s = s.trim_matches(|c| c == '-' || c == '.').to_string();
    let mut name = format!("skiff-addon-{s}");
    name.truncate(253);
    name.trim_end_matches(['-', '.']).to_string()
}

/// The SHA-256 of a file's content, hex.
pub fn checksum(text: &[u8]) -> String {
    hex::encode(Sha256::digest(text))
}

/// The objects a manifest holds, in the order they are applied: YAML documents (or one JSON
/// document), `kind: *List` items flattened, empty documents dropped, Namespaces and
/// CustomResourceDefinitions first (what later objects may need). Every object must have
/// `apiVersion`, `kind` and `metadata.name`.
pub fn parse_manifest(text: &str, json: bool) -> Result<Vec<Value>, String> {
    let docs: Vec<Value> = if json {
        vec![serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?]
    } else {
        let mut docs = Vec::new();
        for (i, d) in serde_yaml::Deserializer::from_str(text).enumerate() {
            let v = Value::deserialize(d)
                .map_err(|e| format!("invalid YAML in document {}: {e}", i + 1))?;
            docs.push(v);
        }
        docs
    };
    let mut objs = Vec::new();
    for v in docs {
        if v.is_null() {
            continue;
        }
        let kind = v.get("kind").and_then(Value::as_str).unwrap_or_default();
        match v.get("items").and_then(Value::as_array) {
            Some(items) if kind.ends_with("List") => objs.extend(items.iter().cloned()),
            _ => objs.push(v),
        }
    }
    for (i, o) in objs.iter().enumerate() {
        if !o.is_object() {
            return Err(format!("object {} is not a map", i + 1));
        }
        for (field, v) in [
            ("apiVersion", o.get("apiVersion")),
            ("kind", o.get("kind")),
            ("metadata.name", o.pointer("/metadata/name")),
        ] {
            if v.and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(format!("object {} has no {field}", i + 1));
            }
        }
    }
    let rank = |o: &Value| match o["kind"].as_str() {
        Some("Namespace") => 0,
        Some("CustomResourceDefinition") => 1,
        _ => 2,
    };
    objs.sort_by_key(rank);
    Ok(objs)
}

/// The objects in `old` that `new` no longer holds, in reverse apply order.
pub fn to_prune(old: &[ObjRef], new: &[ObjRef]) -> Vec<ObjRef> {
    old.iter()
        .rev()
        .filter(|o| !new.contains(o))
        .cloned()
        .collect()
}

fn obj_ref(o: &Value, namespace: &str) -> ObjRef {
    ObjRef {
        api_version: o["apiVersion"].as_str().unwrap_or_default().to_string(),
        kind: o["kind"].as_str().unwrap_or_default().to_string(),
        namespace: namespace.to_string(),
        name: o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// What is known about one add-on (from its ConfigMap, kept in memory).
#[derive(Debug, Clone, Default)]
struct Addon {
    /// Checksum of the content last applied in full.
    checksum: String,
    objects: Vec<ObjRef>,
    /// Content that failed, and when (retried after [`RETRY`]).
    failed: Option<(String, Instant)>,
}

struct Deployer {
    client: kube::Client,
    settings: Settings,
    recorder: Recorder,
    addons: HashMap<String, Addon>,
    kinds: HashMap<(String, String), (ApiResource, ApiCapabilities)>,
    clash_logged: Vec<String>,
}

/// Starts the deploy loop on its own task (restarted after a failure).
pub fn spawn(client: kube::Client, settings: Settings) {
    tokio::spawn(async move {
        loop {
            let mut d = Deployer {
                recorder: Recorder::new(client.clone(), "skiff-deploy"),
                client: client.clone(),
                settings: settings.clone(),
                addons: HashMap::new(),
                kinds: HashMap::new(),
                clash_logged: Vec::new(),
            };
            if let Err(e) = d.run().await {
                tracing::warn!(controller = "deploy", error = %e, "manifest deployer failed, restarting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

impl Deployer {
    async fn run(&mut self) -> Result<(), crate::Error> {
        if let Err(e) = std::fs::create_dir_all(&self.settings.dir) {
            return Err(crate::Error::Other(format!(
                "cannot create the manifests dir {}: {e}; check its parent's permissions",
                self.settings.dir.display()
            )));
        }
        self.load().await?;
        tracing::info!(controller = "deploy", dir = %self.settings.dir.display(), "auto-deploying manifests");
        loop {
            self.pass().await;
            tokio::time::sleep(POLL).await;
        }
    }

    fn configmaps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), ADDON_NAMESPACE)
    }

    /// Reads the tracking ConfigMaps once; memory is the truth from then on.
    async fn load(&mut self) -> Result<(), crate::Error> {
        let list = self
            .configmaps()
            .list(&ListParams::default().labels(&format!("{ADDON_LABEL}=true")))
            .await?;
        for cm in list.items {
            let data = cm.data.unwrap_or_default();
            let Some(name) = data.get("addon").cloned() else {
                continue;
            };
            let objects = data
                .get("objects")
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or_default();
            let checksum = data.get("checksum").cloned().unwrap_or_default();
            self.addons.insert(
                name,
                Addon {
                    checksum,
                    objects,
                    failed: None,
                },
            );
        }
        Ok(())
    }

    async fn pass(&mut self) {
        let names: Vec<String> = match std::fs::read_dir(&self.settings.dir) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect(),
            Err(e) => {
                tracing::warn!(controller = "deploy", dir = %self.settings.dir.display(), error = %e, "cannot read the manifests dir");
                return;
            }
        };
        let (files, clashes) = select_files(&self.settings.dir, &names, &self.settings.disabled);
        for c in clashes {
            if !self.clash_logged.contains(&c) {
                tracing::warn!(controller = "deploy", file = %c, "another manifest has the same name without extension; rename one of them (this one is ignored)");
                self.clash_logged.push(c);
            }
        }
        for f in &files {
            let Ok(bytes) = std::fs::read(&f.path) else {
                continue;
            };
            let sum = checksum(&bytes);
            let known = self.addons.get(&f.name);
            let applied = known.is_some_and(|a| a.checksum == sum);
            let waiting = known
                .and_then(|a| a.failed.as_ref())
                .is_some_and(|(s, at)| *s == sum && at.elapsed() < RETRY);
            if applied || waiting {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes).into_owned();
            self.apply_file(f, &text, sum).await;
        }
        let gone: Vec<String> = self
            .addons
            .keys()
            .filter(|n| !files.iter().any(|f| &f.name == *n))
            .cloned()
            .collect();
        for name in gone {
            self.remove_addon(&name).await;
        }
    }

    fn addon_ref(&self, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("ConfigMap".into()),
            namespace: Some(ADDON_NAMESPACE.into()),
            name: Some(configmap_name(name)),
            ..Default::default()
        }
    }

    async fn event(&self, name: &str, type_: &str, reason: &str, message: &str) {
        self.recorder
            .record_ref(self.addon_ref(name), type_, reason, message)
            .await;
    }

    /// A Normal event on the add-on: `<verb> manifest at "<path>"`, as k3s words it.
    async fn progress(&self, file: &ManifestFile, reason: &str, verb: &str) {
        let msg = format!("{verb} manifest at {:?}", file.path.display().to_string());
        self.event(&file.name, "Normal", reason, &msg).await;
    }

    /// Writes the tracking ConfigMap (server-side apply; the deployer owns it whole).
    async fn save(&self, file: &ManifestFile, addon: &Addon) -> Result<(), kube::Error> {
        let cm = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": configmap_name(&file.name),
                "namespace": ADDON_NAMESPACE,
                "labels": { ADDON_LABEL: "true" },
            },
            "data": {
                "addon": file.name,
                "source": file.path.display().to_string(),
                "checksum": addon.checksum,
                "objects": encode_objects(&addon.objects),
            },
        });
        self.configmaps()
            .patch(
                &configmap_name(&file.name),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&cm),
            )
            .await
            .map(|_| ())
    }

    async fn resolve(
        &mut self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, ApiCapabilities), String> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(k) = self.kinds.get(&key) {
            return Ok(k.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let found = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| format!("the server does not serve {kind} in {api_version}: {e}"))?;
        self.kinds.insert(key, found.clone());
        Ok(found)
    }

    fn api_for(&self, ar: &ApiResource, caps: &ApiCapabilities, ns: &str) -> Api<DynamicObject> {
        if caps.scope == Scope::Namespaced {
            Api::namespaced_with(self.client.clone(), ns, ar)
        } else {
            Api::all_with(self.client.clone(), ar)
        }
    }

    async fn apply_file(&mut self, file: &ManifestFile, text: &str, sum: String) {
        let mut addon = self.addons.get(&file.name).cloned().unwrap_or_default();
        let fail =
            |addon: &mut Addon, sum: &str| addon.failed = Some((sum.to_string(), Instant::now()));
        tracing::info!(controller = "deploy", file = %file.path.display(), "applying manifest");
        let objs = match parse_manifest(text, file.json) {
            Ok(o) => o,
            Err(e) => {
                let msg = format!(
                    "{}: {e}; fix the file (nothing in it was applied)",
                    file.path.display()
                );
                tracing::warn!(controller = "deploy", file = %file.path.display(), error = %e, "manifest not applied");
                fail(&mut addon, &sum);
                // The ConfigMap exists so the Event has an object to hang on.
                if let Err(e) = self.save(file, &addon).await {
                    tracing::warn!(controller = "deploy", error = %e, "cannot write the add-on's ConfigMap");
                }
                self.event(&file.name, "Warning", "ApplyManifestFailed", &msg)
                    .await;
                self.addons.insert(file.name.clone(), addon);
                return;
            }
        };
        self.progress(file, "ApplyingManifest", "Applying").await;
        let mut applied = Vec::new();
        let mut errors = Vec::new();
        for o in &objs {
            let api_version = o["apiVersion"].as_str().unwrap_or_default();
            let kind = o["kind"].as_str().unwrap_or_default();
            let name = o["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let (ar, caps) = match self.resolve(api_version, kind).await {
                Ok(k) => k,
                Err(e) => {
                    errors.push(format!("{kind} {name}: {e}"));
                    continue;
                }
            };
            let namespaced = caps.scope == Scope::Namespaced;
            let ns = if namespaced {
                o["metadata"]["namespace"]
                    .as_str()
                    .filter(|s| !s.is_empty())
                    .unwrap_or(ADDON_NAMESPACE)
                    .to_string()
            } else {
                String::new()
            };
            let mut body = o.clone();
            if namespaced {
                body["metadata"]["namespace"] = Value::String(ns.clone());
            }
            let r = obj_ref(o, &ns);
            match self
                .api_for(&ar, &caps, &ns)
                .patch(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
            {
                Ok(_) => applied.push(r),
                Err(e) => errors.push(format!("{r}: {}", kube_message(&e))),
            }
        }
        if errors.is_empty() {
            let gone = to_prune(&addon.objects, &applied);
            for r in &gone {
                if let Err(e) = self.delete(r).await {
                    errors.push(format!("deleting {r}: {e}"));
                }
            }
        }
        if errors.is_empty() {
            addon.checksum = sum;
            addon.objects = applied;
            addon.failed = None;
        } else {
            // Keep tracking what was there before as well as what is there now.
            for r in applied {
                if !addon.objects.contains(&r) {
                    addon.objects.push(r);
                }
            }
            fail(&mut addon, &sum);
        }
        if let Err(e) = self.save(file, &addon).await {
            tracing::warn!(controller = "deploy", error = %e, "cannot write the add-on's ConfigMap");
            addon.checksum.clear();
        }
        if errors.is_empty() {
            tracing::info!(controller = "deploy", file = %file.path.display(), objects = addon.objects.len(), "applied manifest");
            self.progress(file, "AppliedManifest", "Applied").await;
        } else {
            let msg = format!(
                "{}: {}; fix the file or the cluster (retried every {}s)",
                file.path.display(),
                errors.join("; "),
                RETRY.as_secs()
            );
            tracing::warn!(controller = "deploy", file = %file.path.display(), errors = %errors.join("; "), "manifest applied with errors");
            self.event(&file.name, "Warning", "ApplyManifestFailed", &msg)
                .await;
        }
        self.addons.insert(file.name.clone(), addon);
    }

    async fn delete(&mut self, r: &ObjRef) -> Result<(), String> {
        let (ar, caps) = self.resolve(&r.api_version, &r.kind).await?;
        match self
            .api_for(&ar, &caps, &r.namespace)
            .delete(&r.name, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(kube_message(&e)),
        }
    }

    /// The file is gone (or skipped): delete its objects, then its ConfigMap.
    async fn remove_addon(&mut self, name: &str) {
        let Some(addon) = self.addons.get(name).cloned() else {
            return;
        };
        let mut errors = Vec::new();
        for r in addon.objects.iter().rev() {
            if let Err(e) = self.delete(r).await {
                errors.push(format!("{r}: {e}"));
            }
        }
        if !errors.is_empty() {
            tracing::warn!(controller = "deploy", addon = name, errors = %errors.join("; "), "cannot delete every object of a removed manifest; retrying");
            return;
        }
        self.event(
            name,
            "Normal",
            "DeletedManifest",
            &format!(
                "Deleted the {} objects of removed manifest {name:?}",
                addon.objects.len()
            ),
        )
        .await;
        match self
            .configmaps()
            .delete(&configmap_name(name), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                tracing::warn!(controller = "deploy", addon = name, error = %e, "cannot delete the add-on's ConfigMap; retrying");
                return;
            }
        }
        tracing::info!(
            controller = "deploy",
            addon = name,
            objects = addon.objects.len(),
            "deleted the objects of a removed manifest"
        );
        self.addons.remove(name);
    }
}

/// The API's own message for an API error, else the error.
fn kube_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// The `objects` entry of a tracking ConfigMap.
pub fn encode_objects(objs: &[ObjRef]) -> String {
    serde_json::to_string(objs).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_selected_like_k3s() {
        let dir = Path::new("/m");
        let (files, clashes) = select_files(
            dir,
            &names(&[
                "web.yaml",
                "db.yml",
                "x.json",
                "notes.txt",
                ".hidden.yaml",
                "skipped.yaml",
                "skipped.yaml.skip",
                "traefik.yaml",
                "web.json",
            ]),
            &names(&["traefik"]),
        );
        let got: Vec<(&str, bool)> = files.iter().map(|f| (f.name.as_str(), f.json)).collect();
        assert_eq!(got, [("db", false), ("web", true), ("x", true)]);
        assert_eq!(files[1].path, Path::new("/m/web.json"));
        assert_eq!(clashes, ["web.yaml"], "web.json sorts first and wins");
    }

    #[test]
    fn configmap_names_are_valid() {
        assert_eq!(configmap_name("web"), "skiff-addon-web");
        assert_eq!(configmap_name("My_App v2"), "skiff-addon-my-app-v2");
        assert_eq!(configmap_name("a".repeat(300).as_str()).len(), 253);
    }

    #[test]
    fn multi_document_yaml_with_lists_and_order() {
        let text = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: n}\ndata: {a: \"1\"}\n---\n# empty\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: n}\n- apiVersion: apps/v1\n  kind: Deployment\n  metadata: {name: d}\n";
        let objs = parse_manifest(text, false).unwrap();
        let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["Namespace", "ConfigMap", "Deployment"]);
        assert_eq!(objs[1]["data"]["a"], "1");
    }

    #[test]
    fn broken_manifests_say_what_is_wrong() {
        let e = parse_manifest("apiVersion: v1\nkind: [\n", false).unwrap_err();
        assert!(e.starts_with("invalid YAML in document 1"), "{e}");
        let e =
            parse_manifest("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", false).unwrap_err();
        assert_eq!(e, "object 1 has no metadata.name");
        let e = parse_manifest("{\"kind\": ", true).unwrap_err();
        assert!(e.starts_with("invalid JSON"), "{e}");
        let ok = parse_manifest(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}"#,
            true,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn pruning_keeps_what_the_file_still_holds() {
        let r = |k: &str, n: &str| ObjRef {
            api_version: "v1".into(),
            kind: k.into(),
            namespace: "ns".into(),
            name: n.into(),
        };
        let old = vec![
            r("Namespace", "ns"),
            r("ConfigMap", "a"),
            r("ConfigMap", "b"),
        ];
        let new = vec![r("Namespace", "ns"), r("ConfigMap", "a")];
        assert_eq!(to_prune(&old, &new), [r("ConfigMap", "b")]);
        assert_eq!(
            to_prune(&old, &[]),
            [
                r("ConfigMap", "b"),
                r("ConfigMap", "a"),
                r("Namespace", "ns")
            ],
            "reverse order: the namespace last"
        );
        let enc = encode_objects(&new[1..]);
        assert_eq!(
            enc,
            r#"[{"apiVersion":"v1","kind":"ConfigMap","namespace":"ns","name":"a"}]"#
        );
        let back: Vec<ObjRef> = serde_json::from_str(&enc).unwrap();
        assert_eq!(back, new[1..]);
    }

    #[test]
    fn checksums_differ_by_content() {
        assert_eq!(checksum(b"a").len(), 64);
        assert_ne!(checksum(b"a"), checksum(b"b"));
    }
}
