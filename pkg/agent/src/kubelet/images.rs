//! Image handling for a container: reference checks and default tag, the pull decision by
//! `imagePullPolicy`, registry credentials from the pod's `imagePullSecrets`, and the
//! ImageStatus → PullImage calls with upstream's events.

use std::time::{Duration, Instant};

use base64::Engine;
use k8s_cri::v1::{AuthConfig, ImageSpec, ImageStatusRequest, PodSandboxConfig, PullImageRequest};
use k8s_openapi::api::core::v1::{Container, Pod, Secret};
use kube::Api;

use super::events::{EventType, Recorder};
use crate::cri::Cri;

/// Why a container's image is not ready: the waiting reason and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

/// Whether `image` is a reference containerd can parse (lowercase repository path, optional
/// `:tag` and `@digest`).
pub fn valid_reference(image: &str) -> bool {
    if image.is_empty() || image.len() > 255 || image.chars().any(char::is_whitespace) {
        return false;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        let Some((alg, hex)) = d.split_once(':') else {
            return false;
        };
        if alg.is_empty() || hex.len() < 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            && !t.starts_with(['.', '-']);
        if !ok {
            return false;
        }
    }
    let mut parts = repo.split('/').peekable();
    let mut first = true;
    while let Some(p) = parts.next() {
        let is_domain =
            first && parts.peek().is_some() && (p.contains(['.', ':']) || p == "localhost");
        first = false;
        if p.is_empty() {
            return false;
        }
        let ok = if is_domain {
            p.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c))
        } else {
            p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                && p.starts_with(|c: char| c.is_ascii_alphanumeric())
                && p.ends_with(|c: char| c.is_ascii_alphanumeric())
        };
        if !ok {
            return false;
        }
    }
    true
}

/// The reference with `:latest` added when it has neither tag nor digest.
pub fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') || last.contains(':') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// The registry host of a reference (`docker.io` for Docker Hub names).
pub fn registry_host(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => {
            if first == "index.docker.io" {
                "docker.io".into()
            } else {
                first.to_string()
            }
        }
        _ => "docker.io".into(),
    }
}

/// What to do about an image before creating a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullDecision {
    Pull,
    UsePresent,
    /// `Never` and the image is absent: `ErrImageNeverPull`.
    NeverPull,
}

/// upstream's `shouldPullImage`: `Always` pulls, `Never` never does, `IfNotPresent` (and the
/// default for tagged images) pulls only when absent; untagged or `:latest` default to Always.
pub fn pull_decision(policy: Option<&str>, image: &str, present: bool) -> PullDecision {
    let policy = policy.unwrap_or_else(|| {
        let tagged = with_default_tag(image);
        if tagged.ends_with(":latest") && !image.contains('@') {
            "Always"
        } else {
            "IfNotPresent"
        }
    });
    match (policy, present) {
        ("Always", _) => PullDecision::Pull,
        ("Never", true) => PullDecision::UsePresent,
        ("Never", false) => PullDecision::NeverPull,
        (_, true) => PullDecision::UsePresent,
        (_, false) => PullDecision::Pull,
    }
}

fn normalize_registry_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        h => h.to_string(),
    }
}

/// Credentials for `image` from the contents of docker config secrets (`.dockerconfigjson`
/// `{"auths": {...}}` or the older `.dockercfg` map), in secret order.
pub fn auth_for(image: &str, docker_configs: &[serde_json::Value]) -> Vec<AuthConfig> {
    let host = registry_host(image);
    let mut out = Vec::new();
    for cfg in docker_configs {
        let auths = cfg.get("auths").unwrap_or(cfg);
        let Some(map) = auths.as_object() else {
            continue;
        };
        for (key, entry) in map {
            if normalize_registry_key(key) != host {
                continue;
            }
            let s = |k: &str| {
                entry
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_string()
            };
            let (mut username, mut password) = (s("username"), s("password"));
            let auth = s("auth");
            if username.is_empty() && !auth.is_empty() {
                if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(&auth) {
                    if let Some((u, p)) = String::from_utf8_lossy(&raw).split_once(':') {
                        username = u.to_string();
                        password = p.to_string();
                    }
                }
            }
            out.push(AuthConfig {
                username,
                password,
                auth,
                server_address: host.clone(),
                identity_token: s("identitytoken"),
                registry_token: s("registrytoken"),
            });
        }
    }
    out
}

/// Go's `Duration.String()` of a duration cut to milliseconds: `523ms`, `1.2s`, `1m2.5s`.
pub fn go_millis(d: Duration) -> String {
    let ms = d.as_millis() as u64;
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = |ms: u64| {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        let s = s.trim_end_matches('0').trim_end_matches('.').to_string();
        format!("{s}s")
    };
    if ms < 60_000 {
        secs(ms)
    } else {
        format!("{}m{}", ms / 60_000, secs(ms % 60_000))
    }
}

async fn pull_secrets(client: &kube::Client, pod: &Pod) -> Vec<serde_json::Value> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = Vec::new();
    let names = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default();
    for r in names {
        let Ok(secret) = api.get(&r.name).await else {
            tracing::warn!(secret = %r.name, "image pull secret not found: pulling without it");
            continue;
        };
        let data = secret.data.unwrap_or_default();
        for key in [".dockerconfigjson", ".dockercfg"] {
            if let Some(v) = data
                .get(key)
                .and_then(|b| serde_json::from_slice(&b.0).ok())
            {
                out.push(v);
            }
        }
    }
    out
}

async fn image_status(cri: &Cri, image: &str) -> Result<Option<k8s_cri::v1::Image>, String> {
    let mut images = cri.images.clone();
    let resp = images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .map_err(|s| s.message().to_string())?;
    Ok(resp.into_inner().image)
}

/// Makes sure the container's image is present (pulling it by policy), sending the
/// `Pulling`/`Pulled`/`Failed` events; returns the image reference to create the container
/// with.
pub async fn ensure_image(
    cri: &Cri,
    client: &kube::Client,
    recorder: &Recorder,
    pod: &Pod,
    c: &Container,
    field_path: &str,
    sandbox: &PodSandboxConfig,
) -> Result<String, ImageError> {
    let spec_image = c.image.clone().unwrap_or_default();
    if !valid_reference(&spec_image) {
        let message = format!(
            "Failed to apply default image tag \"{spec_image}\": couldn't parse image name \"{spec_image}\": invalid reference format"
        );
        recorder.pod(
            pod,
            Some(field_path),
            EventType::Warning,
            "InspectFailed",
            &message,
        );
        return Err(ImageError {
            reason: "InvalidImageName",
            message,
        });
    }
    let image = with_default_tag(&spec_image);
    let present = image_status(cri, &image).await.map_err(|e| ImageError {
        reason: "ImageInspectError",
        message: format!("Failed to inspect image \"{spec_image}\": {e}"),
    })?;
    match pull_decision(
        c.image_pull_policy.as_deref(),
        &spec_image,
        present.is_some(),
    ) {
        PullDecision::UsePresent => {
            recorder.pod(
                pod,
                Some(field_path),
                EventType::Normal,
                "Pulled",
                &format!("Container image \"{spec_image}\" already present on machine"),
            );
            return Ok(present.map(|i| i.id).unwrap_or(image));
        }
        PullDecision::NeverPull => {
            let message = format!(
                "Container image \"{spec_image}\" is not present with pull policy of Never"
            );
            recorder.pod(
                pod,
                Some(field_path),
                EventType::Warning,
                "ErrImageNeverPull",
                &message,
            );
            return Err(ImageError {
                reason: "ErrImageNeverPull",
                message,
            });
        }
        PullDecision::Pull => {}
    }
    recorder.pod(
        pod,
        Some(field_path),
        EventType::Normal,
        "Pulling",
        &format!("Pulling image \"{spec_image}\""),
    );
    let started = Instant::now();
    let configs = pull_secrets(client, pod).await;
    let mut auths: Vec<Option<AuthConfig>> =
        auth_for(&image, &configs).into_iter().map(Some).collect();
    auths.push(None);
    let mut last_err = String::new();
    let mut images = cri.images.clone();
    for auth in auths {
        let req = PullImageRequest {
            image: Some(ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            auth,
            sandbox_config: Some(sandbox.clone()),
        };
        match images.pull_image(req).await {
            Ok(resp) => {
                let image_ref = resp.into_inner().image_ref;
                let elapsed = go_millis(started.elapsed());
                let size = image_status(cri, &image_ref)
                    .await
                    .ok()
                    .flatten()
                    .map(|i| i.size)
                    .unwrap_or(0);
                recorder.pod(
                    pod,
                    Some(field_path),
                    EventType::Normal,
                    "Pulled",
                    &format!(
                        "Successfully pulled image \"{spec_image}\" in {elapsed} ({elapsed} including waiting). Image size: {size} bytes."
                    ),
                );
                return Ok(image_ref);
            }
            Err(s) => last_err = s.message().to_string(),
        }
    }
    let message = format!("Failed to pull image \"{spec_image}\": {last_err}");
    recorder.pod(
        pod,
        Some(field_path),
        EventType::Warning,
        "Failed",
        &message,
    );
    recorder.pod(
        pod,
        Some(field_path),
        EventType::Warning,
        "Failed",
        "Error: ErrImagePull",
    );
    Err(ImageError {
        reason: "ErrImagePull",
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_like_docker_reference() {
        for ok in ["busybox", "busybox:1.36", "nginx:1.27", "localhost:5000/a/b:v1",
            "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "skiff.io/pause:3.10"] {
            assert!(valid_reference(ok), "{ok}");
        }
        for bad in [
            "",
            "Busybox",
            "busybox:",
            "bus box",
            "a//b",
            "busybox:-x",
            "UPPER/case:1",
            "x@sha256:zz",
        ] {
            assert!(!valid_reference(bad), "{bad}");
        }
    }

    #[test]
    fn default_tag_and_registry_host() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(with_default_tag("nginx:1.27"), "nginx:1.27");
        assert_eq!(registry_host("nginx"), "docker.io");
        assert_eq!(registry_host("library/nginx"), "docker.io");
        assert_eq!(registry_host("localhost:5000/app"), "localhost:5000");
        assert_eq!(registry_host("ghcr.io/x/y:1"), "ghcr.io");
    }

    #[test]
    fn pull_policy_decisions() {
        use PullDecision::*;
        assert_eq!(pull_decision(Some("Always"), "a:1", true), Pull);
        assert_eq!(pull_decision(Some("IfNotPresent"), "a:1", true), UsePresent);
        assert_eq!(pull_decision(Some("IfNotPresent"), "a:1", false), Pull);
        assert_eq!(pull_decision(Some("Never"), "a:1", false), NeverPull);
        assert_eq!(pull_decision(Some("Never"), "a:1", true), UsePresent);
        assert_eq!(pull_decision(None, "a", true), Pull);
        assert_eq!(pull_decision(None, "a:latest", true), Pull);
        assert_eq!(pull_decision(None, "a:1", true), UsePresent);
    }

    #[test]
    fn credentials_come_from_matching_docker_configs() {
        let auth = base64::engine::general_purpose::STANDARD.encode("bob:s3cret");
        let cfgs = vec![
            serde_json::json!({"auths": {"https://index.docker.io/v1/": {"auth": auth},
                                        "other.example": {"username": "x", "password": "y"}}}),
            serde_json::json!({"localhost:5000": {"username": "u", "password": "p"}}),
        ];
        let a = auth_for("nginx:1.27", &cfgs);
        assert_eq!(a.len(), 1);
        assert_eq!(
            (a[0].username.as_str(), a[0].password.as_str()),
            ("bob", "s3cret")
        );
        assert_eq!(a[0].server_address, "docker.io");
        let a = auth_for("localhost:5000/app:v1", &cfgs);
        assert_eq!(a[0].username, "u");
        assert!(auth_for("ghcr.io/x:1", &cfgs).is_empty());
    }

    #[test]
    fn pull_durations_print_like_go() {
        assert_eq!(go_millis(Duration::from_millis(523)), "523ms");
        assert_eq!(go_millis(Duration::from_millis(1200)), "1.2s");
        assert_eq!(go_millis(Duration::from_millis(1234)), "1.234s");
        assert_eq!(go_millis(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_millis(Duration::from_secs(2)), "2s");
    }
}
