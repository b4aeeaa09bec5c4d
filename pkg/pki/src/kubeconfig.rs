//! Writes kubeconfig files in the k3s shape (cluster, context and user all named `default`,
//! credentials embedded as base64 data).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use crate::fsutil::write_atomic;
use crate::PkiError;

/// Renders the kubeconfig YAML.
pub fn render_kubeconfig(
    server_url: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<String, PkiError> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": "default",
            "cluster": {
                "certificate-authority-data": STANDARD.encode(ca_pem),
                "server": server_url,
            },
        }],
        "contexts": [{
            "name": "default",
            "context": {"cluster": "default", "user": "default"},
        }],
        "current-context": "default",
        "preferences": {},
        "users": [{
            "name": "default",
            "user": {
                "client-certificate-data": STANDARD.encode(cert_pem),
                "client-key-data": STANDARD.encode(key_pem),
            },
        }],
    });
    serde_yaml::to_string(&doc).map_err(|e| PkiError::Render(e.to_string()))
}

/// Writes a kubeconfig to `path` atomically with exactly `mode` (k3s default 0600),
/// creating parent directories.
pub fn write_kubeconfig(
    path: &Path,
    mode: u32,
    server_url: &str,
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<(), PkiError> {
    let yaml = render_kubeconfig(server_url, ca_pem, cert_pem, key_pem)?;
    write_atomic(path, yaml.as_bytes(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_parseable_kubeconfig_with_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/skiff/skiff.yaml");
        write_kubeconfig(
            &path,
            0o644,
            "https://127.0.0.1:6443",
            "CA\n",
            "CERT\n",
            "KEY\n",
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o644);
        let v: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["apiVersion"].as_str(), Some("v1"));
        assert_eq!(v["kind"].as_str(), Some("Config"));
        assert_eq!(v["current-context"].as_str(), Some("default"));
        let cluster = &v["clusters"][0];
        assert_eq!(cluster["name"].as_str(), Some("default"));
        assert_eq!(
            cluster["cluster"]["server"].as_str(),
            Some("https://127.0.0.1:6443")
        );
        let decode = |v: &serde_yaml::Value| {
            String::from_utf8(STANDARD.decode(v.as_str().unwrap()).unwrap()).unwrap()
        };
        assert_eq!(
            decode(&cluster["cluster"]["certificate-authority-data"]),
            "CA\n"
        );
        assert_eq!(
            v["contexts"][0]["context"]["user"].as_str(),
            Some("default")
        );
        assert_eq!(
            v["contexts"][0]["context"]["cluster"].as_str(),
            Some("default")
        );
        let user = &v["users"][0];
        assert_eq!(user["name"].as_str(), Some("default"));
        assert_eq!(decode(&user["user"]["client-certificate-data"]), "CERT\n");
        assert_eq!(decode(&user["user"]["client-key-data"]), "KEY\n");

        // Rewriting tightens the mode exactly and leaves no temporary files.
        write_kubeconfig(
            &path,
            0o600,
            "https://10.0.0.1:6443",
            "CA\n",
            "CERT\n",
            "KEY\n",
        )
        .unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(entries.len(), 1);
    }
}
