//! k3s `registries.yaml` → containerd's `certs.d/<host>/hosts.toml` files (mirrors, TLS,
//! rewrites) and the registry credentials table of `config.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Deserialize;

use crate::Error;

/// The k3s `registries.yaml` schema (`mirrors` and `configs`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Regex → replacement applied to the repository path, for the mirror endpoints only.
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub auth: Option<Auth>,
    pub tls: Option<Tls>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    pub username: Option<String>,
    pub password: Option<String>,
    pub auth: Option<String>,
    pub identity_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub ca_file: Option<String>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl Registries {
    /// Parses `registries.yaml` text; an empty file means no registries.
    pub fn parse(yaml: &str) -> Result<Registries, Error> {
        if yaml.trim().is_empty() {
            return Ok(Registries::default());
        }
        serde_yaml::from_str(yaml).map_err(|e| {
            Error::Config(format!(
                "registries.yaml: {e}: fix the file (k3s format: `mirrors.<host>.endpoint`, \
                 `mirrors.<host>.rewrite`, `configs.<host>.auth`, `configs.<host>.tls`)"
            ))
        })
    }
}

/// One `hosts.toml` per registry named in `mirrors` or `configs` of `registries_yaml`, as
/// `(directory under certs.d, file text)`, sorted by directory. Host `*` goes to `_default`.
pub fn hosts_toml(registries_yaml: &str) -> Result<Vec<(String, String)>, Error> {
    let regs = Registries::parse(registries_yaml)?;
    let hosts: BTreeSet<&String> = regs.mirrors.keys().chain(regs.configs.keys()).collect();
    let mut out = Vec::new();
    for host in hosts {
        let dir = if host == "*" {
            "_default".to_string()
        } else {
            validate_host(host)?;
            host.clone()
        };
        out.push((dir, one_hosts_toml(&regs, host)?));
    }
    Ok(out)
}

/// A registry host as a directory name must be a plain `host[:port]`.
fn validate_host(host: &str) -> Result<(), Error> {
    let ok = !host.is_empty()
        && !host.starts_with('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:[]_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "registries.yaml: {host:?} is not a registry host: use `host` or `host:port` (or `*`)"
        )))
    }
}

/// An endpoint after normalisation: `scheme://host[:port]/path` and whether the path is custom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    url: String,
    /// `host[:port]`, the key for `configs`.
    host: String,
    override_path: bool,
}

/// `docker.io` is served by `registry-1.docker.io`.
fn default_endpoint(registry: &str) -> Result<Endpoint, Error> {
    let host = if registry == "docker.io" {
        "registry-1.docker.io"
    } else {
        registry
    };
    let mut ep = parse_endpoint(host)?;
    // credentials and TLS of the default endpoint are configured under the registry's name
    ep.host = registry.to_string();
    Ok(ep)
}

/// Normalises a mirror endpoint: https when there is no scheme (http for localhost or a
/// loopback address on a port other than 443), `/v2` appended to an empty path, and
/// `override_path` for any other path.
fn parse_endpoint(raw: &str) -> Result<Endpoint, Error> {
    let bad = |why: &str| {
        Error::Config(format!(
            "registries.yaml: endpoint {raw:?} {why}: write it as `https://host[:port][/path]`"
        ))
    };
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
        None => (None, raw),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if hostport.is_empty() || hostport.contains('@') {
        return Err(bad("has no host"));
    }
    let scheme = match scheme {
        Some(s) if s == "http" || s == "https" => s,
        Some(_) => return Err(bad("has a scheme other than http or https")),
        None if is_local(hostport) => "http".to_string(),
        None => "https".to_string(),
    };
    let path = path.trim_end_matches('/');
    let (path, override_path) = match path {
        "" | "/v2" => ("/v2", false),
        p => (p, true),
    };
    Ok(Endpoint {
        url: format!("{scheme}://{hostport}{path}"),
        host: hostport.to_string(),
        override_path,
    })
}

/// localhost or a loopback IP on a port other than 443.
fn is_local(hostport: &str) -> bool {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').unwrap_or("")),
            None => (rest, ""),
        }
    } else if hostport.matches(':').count() == 1 {
        hostport.split_once(':').unwrap_or((hostport, ""))
    } else {
        (hostport, "")
    };
    let local = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    local && port != "443"
}

fn one_hosts_toml(regs: &Registries, host: &str) -> Result<String, Error> {
    let mut s = String::from("# File generated by skiff. DO NOT EDIT.\n");
    let default = if host == "*" {
        None
    } else {
        Some(default_endpoint(host)?)
    };
    if let Some(d) = &default {
        let _ = writeln!(s, "server = {}", quote(&d.url));
        if d.override_path {
            s.push_str("override_path = true\n");
        }
    }
    // TLS of the registry itself applies to its default endpoint (and, for `*`, to any host)
    if let Some(tls) = regs.configs.get(host).and_then(|c| c.tls.as_ref()) {
        write_tls(&mut s, tls, "");
    }
    let mirror = regs.mirrors.get(host);
    let mut seen = BTreeSet::new();
    for raw in mirror.map(|m| m.endpoint.as_slice()).unwrap_or_default() {
        let ep = parse_endpoint(raw)?;
        if default.as_ref().is_some_and(|d| d.url == ep.url) || !seen.insert(ep.url.clone()) {
            continue; // the default endpoint is always last, as `server`
        }
        let table = format!("host.{}", quote(&ep.url));
        let _ = write!(s, "\n[{table}]\n  capabilities = [\"pull\", \"resolve\"]\n");
        if let Some(tls) = regs.configs.get(&ep.host).and_then(|c| c.tls.as_ref()) {
            write_tls(&mut s, tls, "  ");
        }
        if ep.override_path {
            s.push_str("  override_path = true\n");
        }
        let rewrite = mirror.map(|m| &m.rewrite).filter(|r| !r.is_empty());
        if let Some(rewrite) = rewrite {
            let _ = writeln!(s, "  [{table}.rewrite]");
            for (re, to) in rewrite {
                let _ = writeln!(s, "    {} = {}", quote(re), quote(to));
            }
        }
    }
    Ok(s)
}

fn write_tls(s: &mut String, tls: &Tls, indent: &str) {
    if let Some(ca) = tls.ca_file.as_deref().filter(|c| !c.is_empty()) {
        let _ = writeln!(s, "{indent}ca = [{}]", quote(ca));
    }
    match (tls.cert_file.as_deref(), tls.key_file.as_deref()) {
        (Some(c), Some(k)) if !c.is_empty() && !k.is_empty() => {
            let _ = writeln!(s, "{indent}client = [[{}, {}]]", quote(c), quote(k));
        }
        (Some(c), _) if !c.is_empty() => {
            let _ = writeln!(s, "{indent}client = [{}]", quote(c));
        }
        _ => {}
    }
    if tls.insecure_skip_verify {
        let _ = writeln!(s, "{indent}skip_verify = true");
    }
}

/// `[plugins."io.containerd.grpc.v1.cri".registry.configs."<host>".auth]` tables for every
/// registry with credentials (hosts.toml carries no credentials). Host `*` is skipped with a
/// warning: containerd matches credentials by exact host.
pub fn registry_auth_toml(regs: &Registries) -> String {
    let mut s = String::new();
    for (host, cfg) in &regs.configs {
        let Some(auth) = &cfg.auth else { continue };
        if host == "*" {
            tracing::warn!(
                "registries.yaml: credentials for `*` are ignored: name each registry host"
            );
            continue;
        }
        let _ = writeln!(
            s,
            "\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.{}.auth]",
            quote(host)
        );
        for (key, val) in [
            ("username", &auth.username),
            ("password", &auth.password),
            ("auth", &auth.auth),
            ("identitytoken", &auth.identity_token),
        ] {
            if let Some(v) = val {
                let _ = writeln!(s, "  {key} = {}", quote(v));
            }
        }
    }
    s
}

/// A TOML basic string.
pub(crate) fn quote(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\t' => s.push_str("\\t"),
            '\r' => s.push_str("\\r"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(s, "\\u{:04X}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_io_mirror_on_plain_http() {
        let out =
            hosts_toml("mirrors: {docker.io: {endpoint: [\"http://192.0.2.1:5000\"]}}").unwrap();
        assert_eq!(
            out,
            vec![(
                "docker.io".to_string(),
                "# File generated by skiff. DO NOT EDIT.\n\
                 server = \"https://registry-1.docker.io/v2\"\n\
                 \n\
                 [host.\"http://192.0.2.1:5000/v2\"]\n  \
                 capabilities = [\"pull\", \"resolve\"]\n"
                    .to_string()
            )]
        );
    }

    #[test]
    fn schemes_paths_rewrites_tls_and_default_host() {
        let yaml = r#"
mirrors:
  "*":
    endpoint: ["localhost:5000"]
  registry.example.com:
    endpoint:
      - mirror.example.com/custom/path/
      - https://registry.example.com
      - mirror.example.com/v2
    rewrite:
      "^rancher/(.*)": "mirrored/$1"
      'a\d"b': "x"
configs:
  mirror.example.com:
    tls:
      ca_file: /etc/ssl/ca.pem
      cert_file: /etc/ssl/c.pem
      key_file: /etc/ssl/k.pem
  registry.example.com:
    tls:
      insecure_skip_verify: true
    auth: {username: u, password: p}
"#;
        let out = hosts_toml(yaml).unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0, "_default");
        assert_eq!(
            out[0].1,
            "# File generated by skiff. DO NOT EDIT.\n\
             \n\
             [host.\"http://localhost:5000/v2\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n"
        );
        assert_eq!(out[1].0, "mirror.example.com");
        assert_eq!(
            out[1].1,
            "# File generated by skiff. DO NOT EDIT.\n\
             server = \"https://mirror.example.com/v2\"\n\
             ca = [\"/etc/ssl/ca.pem\"]\n\
             client = [[\"/etc/ssl/c.pem\", \"/etc/ssl/k.pem\"]]\n"
        );
        assert_eq!(out[2].0, "registry.example.com");
        assert_eq!(
            out[2].1,
            "# File generated by skiff. DO NOT EDIT.\n\
             server = \"https://registry.example.com/v2\"\n\
             skip_verify = true\n\
             \n\
             [host.\"https://mirror.example.com/custom/path\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n  \
             ca = [\"/etc/ssl/ca.pem\"]\n  \
             client = [[\"/etc/ssl/c.pem\", \"/etc/ssl/k.pem\"]]\n  \
             override_path = true\n  \
             [host.\"https://mirror.example.com/custom/path\".rewrite]\n    \
             \"^rancher/(.*)\" = \"mirrored/$1\"\n    \
             \"a\\\\d\\\"b\" = \"x\"\n\
             \n\
             [host.\"https://mirror.example.com/v2\"]\n  \
             capabilities = [\"pull\", \"resolve\"]\n  \
             ca = [\"/etc/ssl/ca.pem\"]\n  \
             client = [[\"/etc/ssl/c.pem\", \"/etc/ssl/k.pem\"]]\n  \
             [host.\"https://mirror.example.com/v2\".rewrite]\n    \
             \"^rancher/(.*)\" = \"mirrored/$1\"\n    \
             \"a\\\\d\\\"b\" = \"x\"\n"
        );
        // the generated text is valid TOML for containerd's parser
        for (_, text) in &out {
            assert!(!text.contains("\n\n\n"));
        }
    }

    #[test]
    fn localhost_registry_defaults_to_http_and_443_stays_https() {
        let out = hosts_toml("configs: {\"localhost:5000\": {}, \"localhost:443\": {}}").unwrap();
        assert_eq!(out[0].0, "localhost:443");
        assert!(out[0].1.contains("server = \"https://localhost:443/v2\"\n"));
        assert_eq!(out[1].0, "localhost:5000");
        assert!(out[1].1.contains("server = \"http://localhost:5000/v2\"\n"));
        let ep = parse_endpoint("127.0.0.1:5000").unwrap();
        assert_eq!(ep.url, "http://127.0.0.1:5000/v2");
        let ep = parse_endpoint("[::1]:5000").unwrap();
        assert_eq!(ep.url, "http://[::1]:5000/v2");
        assert_eq!(ep.host, "[::1]:5000");
        let ep = parse_endpoint("192.0.2.1:5000").unwrap();
        assert_eq!(ep.url, "https://192.0.2.1:5000/v2");
    }

    #[test]
    fn bad_inputs_say_what_to_fix() {
        let e = hosts_toml("mirrors: {docker.io: {endpoint: [\"ftp://x\"]}}").unwrap_err();
        assert!(e.to_string().contains("https://host"), "{e}");
        let e = hosts_toml("mirrors: [1, 2]").unwrap_err();
        assert!(e.to_string().contains("k3s format"), "{e}");
        let e = hosts_toml("mirors: {}").unwrap_err();
        assert!(e.to_string().contains("registries.yaml"), "{e}");
        let e = hosts_toml("mirrors: {\"../etc\": {endpoint: [\"x\"]}}").unwrap_err();
        assert!(e.to_string().contains("not a registry host"), "{e}");
        assert!(hosts_toml("").unwrap().is_empty());
        assert!(hosts_toml("# nothing\n").unwrap().is_empty());
    }

    #[test]
    fn credentials_go_to_config_toml_only() {
        let yaml = r#"
configs:
  "*": {auth: {username: any}}
  registry.example.com:
    auth: {username: bob, password: "p\"w", identity_token: tok}
  other.example.com:
    auth: {auth: "Ym9iOnB3"}
"#;
        let regs = Registries::parse(yaml).unwrap();
        assert_eq!(
            registry_auth_toml(&regs),
            "\n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"other.example.com\".auth]\n  \
             auth = \"Ym9iOnB3\"\n\
             \n[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"registry.example.com\".auth]\n  \
             username = \"bob\"\n  \
             password = \"p\\\"w\"\n  \
             identitytoken = \"tok\"\n"
        );
        for (_, text) in hosts_toml(yaml).unwrap() {
            assert!(!text.contains("bob") && !text.contains("tok"), "{text}");
        }
    }
}
