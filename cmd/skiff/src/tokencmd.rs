//! `skiff token` as k3s has it: with no subcommand the server's node token; `create`, `list`,
//! `delete`, `generate` for bootstrap tokens (Secrets `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`, which the server accepts for agent joins until they expire),
//! and `rotate` for the server token in the data dir.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::Secret;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Extra group new tokens authenticate as (k3s: `system:bootstrappers:k3s:default-node-token`).
pub const DEFAULT_GROUP: &str = "system:bootstrappers:skiff:default-node-token";
const NAMESPACE: &str = "kube-system";
const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
const SECRET_PREFIX: &str = "bootstrap-token-";

#[derive(Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    pub cmd: Option<TokenCommand>,
    /// Data directory of the server (default /var/lib/skiff as root, ~/.skiff otherwise).
    #[arg(short = 'd', long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Admin kubeconfig to reach the server with (default: one made from the server's admin
    /// certificate under the data dir, for --server).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// Server the data-dir credentials talk to.
    #[arg(long, global = true, default_value = "https://127.0.0.1:6443")]
    pub server: String,
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create a bootstrap token on the server and print it (K10<ca hash>::<id>.<secret>).
    Create {
        /// The token to create, <id>.<secret> as `skiff token generate` prints (default: random).
        token: Option<String>,
        /// How long the token is valid, e.g. 30m, 24h; 0 never expires.
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// A human-friendly description of how the token is used.
        #[arg(long)]
        description: Option<String>,
        /// What the token may be used for: signing, authentication (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
        usages: Vec<String>,
        /// Extra groups the token authenticates as (each system:bootstrappers:…).
        #[arg(long, value_delimiter = ',', default_value = DEFAULT_GROUP)]
        groups: Vec<String>,
    },
    /// List the bootstrap tokens on the server.
    List {
        /// Output format: text or json.
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "json"])]
        output: String,
    },
    /// Delete bootstrap tokens (by id, <id>.<secret> or the full K10 token).
    Delete {
        #[arg(required = true)]
        tokens: Vec<String>,
    },
    /// Print a new random bootstrap token without creating it on the server.
    Generate,
    /// Replace the server token in the data dir; restart the server, and give agents that
    /// joined with the old token the new one.
    Rotate {
        /// The current token (checked against the data dir when given).
        #[arg(short = 't', long, env = "SKIFF_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// The new token or password (default: a random one).
        #[arg(long)]
        new_token: Option<String>,
    },
}

/// One bootstrap token as `token list` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    pub description: String,
    /// Unix seconds; `None` never expires.
    pub expires: Option<i64>,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

/// Parses a `--ttl`: Go-style durations (`24h`, `1h30m`, `90s`); `0` means no expiry.
pub fn parse_ttl(s: &str) -> Result<Option<Duration>> {
    let s = s.trim();
    if s == "0" || s.is_empty() {
        return Ok(None);
    }
    let bad =
        || anyhow::anyhow!("invalid --ttl {s:?}: use e.g. 30m, 24h or 1h30m (0 never expires)");
    let mut total = 0u64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            'h' => 3600,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0
            }
            'm' => 60,
            's' => 1,
            'd' => 86400,
            _ => return Err(bad()),
        };
        total += n * unit;
    }
    if !num.is_empty() {
        return Err(bad());
    }
    if total == 0 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs(total)))
}

/// The Secret for a new bootstrap token (upstream's field names).
pub fn token_secret(
    id: &str,
    secret: &str,
    expires_unix: Option<i64>,
    description: Option<&str>,
    usages: &[String],
    groups: &[String],
) -> Result<serde_json::Value> {
    let mut data = BTreeMap::new();
    data.insert("token-id".to_string(), id.to_string());
    data.insert("token-secret".to_string(), secret.to_string());
    if let Some(exp) = expires_unix {
        data.insert("expiration".into(), rfc3339(exp));
    }
    if let Some(d) = description.filter(|d| !d.is_empty()) {
        data.insert("description".into(), d.to_string());
    }
    for u in usages.iter().map(|u| u.trim()).filter(|u| !u.is_empty()) {
        if !matches!(u, "signing" | "authentication") {
            bail!("invalid --usages value {u:?}: use signing and/or authentication");
        }
        data.insert(format!("usage-bootstrap-{u}"), "true".into());
    }
    let groups: Vec<&str> = groups
        .iter()
        .map(|g| g.trim())
        .filter(|g| !g.is_empty())
        .collect();
    for g in &groups {
        if !g.starts_with("system:bootstrappers:") {
            bail!(
                "invalid --groups value {g:?}: extra groups must start with system:bootstrappers:"
            );
        }
    }
    if !groups.is_empty() {
        data.insert("auth-extra-groups".into(), groups.join(","));
    }
    Ok(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{SECRET_PREFIX}{id}"), "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "stringData": data,
    }))
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The row of a token Secret (data decoded); `None` when it is not a bootstrap token.
pub fn token_row(secret: &Secret) -> Option<TokenRow> {
    if secret.type_.as_deref() != Some(SECRET_TYPE) {
        return None;
    }
    let data = secret.data.clone().unwrap_or_default();
    let get = |k: &str| {
        data.get(k)
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
    };
    let id = get("token-id")?;
    let expires = get("expiration")
        .and_then(|e| chrono::DateTime::parse_from_rfc3339(e.trim()).ok())
        .map(|t| t.timestamp());
    let mut usages: Vec<String> = data
        .keys()
        .filter_map(|k| k.strip_prefix("usage-bootstrap-"))
        .filter(|u| get(&format!("usage-bootstrap-{u}")).as_deref() == Some("true"))
        .map(str::to_string)
        .collect();
    usages.sort();
    let groups = get("auth-extra-groups")
        .map(|g| {
            g.split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    Some(TokenRow {
        id,
        description: get("description").unwrap_or_default(),
        expires,
        usages,
        groups,
    })
}

/// kubeadm's short durations (`ShortHumanDuration`): 45s, 12m, 23h, 6d, 2y; `<invalid>` once
/// past.
pub fn short_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h", s / 3600),
        s if s < 86400 * 365 => format!("{}d", s / 86400),
        s => format!("{}y", s / (86400 * 365)),
    }
}

/// Aligns tab-separated cells like Go's tabwriter with kubeadm's settings (min width 10,
/// padding 3): every column but the last as wide as its widest cell plus 3.
pub fn tabulate(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
                + 3
        })
        .map(|w| w.max(10))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `token list`'s table (kubeadm's columns and padding) at `now` (unix seconds).
pub fn list_table(rows: &[TokenRow], now: i64) -> String {
    let mut table = vec![[
        "TOKEN",
        "TTL",
        "EXPIRES",
        "USAGES",
        "DESCRIPTION",
        "EXTRA GROUPS",
    ]
    .map(String::from)
    .to_vec()];
    for r in rows {
        let (ttl, expires) = match r.expires {
            Some(e) => (short_duration(e - now), rfc3339(e)),
            None => ("<forever>".to_string(), "<never>".to_string()),
        };
        let none = |s: String| {
            if s.is_empty() {
                "<none>".to_string()
            } else {
                s
            }
        };
        table.push(vec![
            r.id.clone(),
            format!("{ttl:<9}"),
            expires,
            format!("{:<22}", none(r.usages.join(","))),
            format!("{:<56}", none(r.description.clone())),
            none(r.groups.join(",")),
        ]);
    }
    tabulate(&table)
}

/// The token id named by `s`: an id, `<id>.<secret>` or a full `K10…::<id>.<secret>`.
pub fn token_id(s: &str) -> Result<String> {
    let s = s.trim();
    let creds = s.rsplit_once("::").map_or(s, |(_, c)| c);
    if let Some((id, _)) = skiff_pki::parse_bootstrap_token(creds) {
        return Ok(id.to_string());
    }
    if creds.len() == 6
        && creds
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Ok(creds.to_string());
    }
    bail!("{s:?} is not a bootstrap token or token id: use the 6-character id `skiff token list` shows")
}

/// An admin client: `--kubeconfig`, else the admin certificate under the data dir.
async fn admin_client(args: &TokenArgs, data_dir: &Path) -> Result<kube::Client> {
    let yaml = match &args.kubeconfig {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read --kubeconfig {}", p.display()))?,
        None => {
            let tls = data_dir.join("server").join("tls");
            let read = |f: &str| {
                std::fs::read_to_string(tls.join(f)).with_context(|| {
                    format!(
                        "cannot read {}: run this on the server (as root) or pass --data-dir or --kubeconfig",
                        tls.join(f).display()
                    )
                })
            };
            skiff_pki::render_kubeconfig(
                &args.server,
                &read("server-ca.crt")?,
                &read("client-admin.crt")?,
                &read("client-admin.key")?,
            )?
        }
    };
    Ok(skiff_controllers::client_from_kubeconfig_yaml(&yaml).await?)
}

fn unreachable_hint(e: kube::Error) -> anyhow::Error {
    anyhow::anyhow!("{e}: is the server running? pass --server or --kubeconfig to reach it")
}

/// Runs `skiff token …`.
pub async fn run(args: TokenArgs, default_data_dir: PathBuf) -> Result<()> {
    let data_dir = args.data_dir.clone().unwrap_or(default_data_dir);
    let Some(cmd) = &args.cmd else {
        let p = data_dir.join("server").join("token");
        let tok = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "cannot read {}: is a server using this data dir?",
                p.display()
            )
        })?;
        println!("{}", tok.trim());
        return Ok(());
    };
    match cmd {
        TokenCommand::Generate => {
            println!("{}", skiff_pki::generate_bootstrap_token());
            Ok(())
        }
        TokenCommand::Rotate { token, new_token } => {
            let out = rotate(&data_dir, token.as_deref(), new_token.as_deref())?;
            println!("{out}");
            eprintln!(
                "the server token was rotated: restart the server (without an old --token/SKIFF_TOKEN setting), \
                 and give agents that joined with the old token the new one"
            );
            Ok(())
        }
        TokenCommand::Create {
            token,
            ttl,
            description,
            usages,
            groups,
        } => {
            let token = match token {
                Some(t) => t.trim().to_string(),
                None => skiff_pki::generate_bootstrap_token(),
            };
            let Some((id, secret)) = skiff_pki::parse_bootstrap_token(&token) else {
                bail!("{token:?} is not a bootstrap token: use the form [a-z0-9]{{6}}.[a-z0-9]{{16}}, e.g. from `skiff token generate`");
            };
            let expires =
                parse_ttl(ttl)?.map(|d| chrono::Utc::now().timestamp() + d.as_secs() as i64);
            let obj = token_secret(id, secret, expires, description.as_deref(), usages, groups)?;
            let client = admin_client(&args, &data_dir).await?;
            let api: kube::Api<Secret> = kube::Api::namespaced(client.clone(), NAMESPACE);
            let obj: Secret = serde_json::from_value(obj)?;
            match api.create(&Default::default(), &obj).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    bail!("a bootstrap token with id {id} already exists: pick another token or delete it first")
                }
                Err(e) => return Err(unreachable_hint(e)),
            }
            let req = http::Request::get("/cacerts").body(Vec::new())?;
            let ca = client.request_text(req).await.map_err(unreachable_hint)?;
            println!("K10{}::{id}.{secret}", skiff_pki::ca_hash(&ca));
            Ok(())
        }
        TokenCommand::List { output } => {
            let client = admin_client(&args, &data_dir).await?;
            let api: kube::Api<Secret> = kube::Api::namespaced(client, NAMESPACE);
            let lp = kube::api::ListParams::default().fields(&format!("type={SECRET_TYPE}"));
            let list = api.list(&lp).await.map_err(unreachable_hint)?;
            let mut rows: Vec<TokenRow> = list.items.iter().filter_map(token_row).collect();
            rows.sort_by(|a, b| a.id.cmp(&b.id));
            if output == "json" {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                print!("{}", list_table(&rows, chrono::Utc::now().timestamp()));
            }
            Ok(())
        }
        TokenCommand::Delete { tokens } => {
            let ids = tokens
                .iter()
                .map(|t| token_id(t))
                .collect::<Result<Vec<_>>>()?;
            let client = admin_client(&args, &data_dir).await?;
            let api: kube::Api<Secret> = kube::Api::namespaced(client, NAMESPACE);
            for id in ids {
                match api
                    .delete(&format!("{SECRET_PREFIX}{id}"), &Default::default())
                    .await
                {
                    Ok(_) => println!("bootstrap token {id:?} deleted"),
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        bail!("bootstrap token {id:?} not found: `skiff token list` shows the ids")
                    }
                    Err(e) => return Err(unreachable_hint(e)),
                }
            }
            Ok(())
        }
    }
}

/// `token rotate`: checks `old` (when given) against `<data>/server/token`, writes the new
/// token with this server's CA hash and returns it.
pub fn rotate(data_dir: &Path, old: Option<&str>, new: Option<&str>) -> Result<String> {
    let server_dir = data_dir.join("server");
    let token_file = server_dir.join("token");
    let current = std::fs::read_to_string(&token_file).with_context(|| {
        format!(
            "cannot read {}: run this on the server (as root) or pass --data-dir",
            token_file.display()
        )
    })?;
    let current = skiff_pki::parse_token(&current)?;
    if let Some(old) = old {
        if skiff_pki::parse_token(old)?.password != current.password {
            bail!(
                "--token does not match the server token in {}: pass the current token (or leave --token out)",
                token_file.display()
            );
        }
    }
    let ca_file = server_dir.join("tls").join("server-ca.crt");
    let ca = std::fs::read_to_string(&ca_file)
        .with_context(|| format!("cannot read {}", ca_file.display()))?;
    let new = match new {
        Some(n) => {
            let p = skiff_pki::parse_token(n)?;
            if p.bootstrap().is_some() && p.username.is_empty() {
                bail!("--new-token must be a password or a K10…::server:<password> token, not a bootstrap token");
            }
            if p.password == current.password {
                bail!("--new-token is the current token: pick a new one");
            }
            n.to_string()
        }
        None => random_password(),
    };
    // A given token replaces the stored one (and is checked against this CA's hash).
    Ok(skiff_pki::load_or_create_token(
        &server_dir,
        &ca,
        Some(&new),
    )?)
}

/// 32 random characters ([a-z0-9], about 165 bits), taken from two fresh bootstrap tokens.
fn random_password() -> String {
    let a = skiff_pki::generate_bootstrap_token().replace('.', "");
    let b = skiff_pki::generate_bootstrap_token().replace('.', "");
    format!("{a}{b}")[..32].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_parse_like_go_durations() {
        assert_eq!(parse_ttl("24h").unwrap(), Some(Duration::from_secs(86400)));
        assert_eq!(parse_ttl("1h30m").unwrap(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("90s").unwrap(), Some(Duration::from_secs(90)));
        assert_eq!(parse_ttl("0").unwrap(), None);
        assert_eq!(parse_ttl("0s").unwrap(), None);
        assert!(parse_ttl("24").is_err());
        assert!(parse_ttl("1w").is_err());
        assert!(parse_ttl("h").is_err());
    }

    #[test]
    fn the_secret_has_upstreams_fields() {
        let s = token_secret(
            "abcdef",
            "0123456789abcdef",
            Some(1_900_000_000),
            Some("for edge boxes"),
            &["signing".into(), "authentication".into()],
            &[DEFAULT_GROUP.into()],
        )
        .unwrap();
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(s["metadata"]["namespace"], "kube-system");
        assert_eq!(s["type"], "bootstrap.kubernetes.io/token");
        let d = &s["stringData"];
        assert_eq!(d["token-id"], "abcdef");
        assert_eq!(d["token-secret"], "0123456789abcdef");
        assert_eq!(d["expiration"], "2030-03-17T17:46:40Z");
        assert_eq!(d["usage-bootstrap-signing"], "true");
        assert_eq!(d["usage-bootstrap-authentication"], "true");
        assert_eq!(d["description"], "for edge boxes");
        assert_eq!(d["auth-extra-groups"], DEFAULT_GROUP);
        assert!(token_secret("abcdef", "x", None, None, &["bogus".into()], &[]).is_err());
        assert!(token_secret("abcdef", "x", None, None, &[], &["system:masters".into()]).is_err());
        let forever = token_secret("abcdef", "x", None, None, &[], &[]).unwrap();
        assert!(forever["stringData"].get("expiration").is_none());
    }

    #[test]
    fn a_secret_reads_back_as_its_row() {
        let v = token_secret(
            "abcdef",
            "0123456789abcdef",
            Some(1_900_000_000),
            None,
            &["authentication".into(), "signing".into()],
            &[DEFAULT_GROUP.into()],
        )
        .unwrap();
        // The server stores stringData as data.
        let data: serde_json::Map<String, serde_json::Value> = v["stringData"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, s)| {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD.encode(s.as_str().unwrap());
                (k.clone(), serde_json::Value::String(b))
            })
            .collect();
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "metadata": v["metadata"], "type": v["type"], "data": data,
        }))
        .unwrap();
        let row = token_row(&secret).unwrap();
        assert_eq!(
            row,
            TokenRow {
                id: "abcdef".into(),
                description: String::new(),
                expires: Some(1_900_000_000),
                usages: vec!["authentication".into(), "signing".into()],
                groups: vec![DEFAULT_GROUP.into()],
            }
        );
        let opaque: Secret = serde_json::from_value(serde_json::json!({"type": "Opaque"})).unwrap();
        assert!(token_row(&opaque).is_none());
    }

    #[test]
    fn the_list_has_kubeadms_columns() {
        let rows = [
            TokenRow {
                id: "abcdef".into(),
                description: "e2e".into(),
                expires: Some(1_000 + 23 * 3600 + 59 * 60),
                usages: vec!["authentication".into(), "signing".into()],
                groups: vec![DEFAULT_GROUP.into()],
            },
            TokenRow {
                id: "zzzzzz".into(),
                description: String::new(),
                expires: None,
                usages: vec![],
                groups: vec![],
            },
        ];
        let t = list_table(&rows, 1_000);
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines[0].starts_with("TOKEN     TTL         EXPIRES                USAGES"),
            "{t}"
        );
        assert!(lines[0].ends_with("EXTRA GROUPS"), "{t}");
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "abcdef",
                "23h",
                "1970-01-02T00:15:40Z",
                "authentication,signing",
                "e2e",
                DEFAULT_GROUP
            ]
        );
        let cols: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "zzzzzz",
                "<forever>",
                "<never>",
                "<none>",
                "<none>",
                "<none>"
            ]
        );
        // Every column starts where its header does.
        let at = |l: &str, w: &str| l.find(w).unwrap();
        assert_eq!(at(lines[0], "DESCRIPTION"), at(lines[1], "e2e"));
        assert_eq!(at(lines[0], "EXTRA GROUPS"), at(lines[1], DEFAULT_GROUP));
    }

    #[test]
    fn short_durations_match_kubeadm() {
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(61), "1m");
        assert_eq!(short_duration(86399), "23h");
        assert_eq!(short_duration(86400 * 3), "3d");
        assert_eq!(short_duration(86400 * 800), "2y");
        assert_eq!(short_duration(-5), "<invalid>");
    }

    #[test]
    fn delete_takes_an_id_a_token_or_a_full_token() {
        assert_eq!(token_id("abcdef").unwrap(), "abcdef");
        assert_eq!(token_id("abcdef.0123456789abcdef").unwrap(), "abcdef");
        let full = format!("K10{}::abcdef.0123456789abcdef", "a".repeat(64));
        assert_eq!(token_id(&full).unwrap(), "abcdef");
        assert!(token_id("ABCDEF").is_err());
        assert!(token_id("server-password").is_err());
    }

    #[test]
    fn rotate_checks_the_old_token_and_writes_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let pki = skiff_pki::load_or_create(
            &dir.path().join("server").join("tls"),
            &skiff_pki::PkiConfig::default(),
        )
        .unwrap();
        let old = skiff_pki::load_or_create_token(
            &dir.path().join("server"),
            pki.server_ca_pem(),
            Some("oldpassword"),
        )
        .unwrap();
        assert!(rotate(dir.path(), Some("wrong"), Some("newpassword")).is_err());
        assert!(rotate(dir.path(), None, Some("oldpassword")).is_err());
        let new = rotate(dir.path(), Some(&old), Some("newpassword")).unwrap();
        let hash = skiff_pki::ca_hash(pki.server_ca_pem());
        assert_eq!(new, format!("K10{hash}::server:newpassword"));
        let on_disk = std::fs::read_to_string(dir.path().join("server/token")).unwrap();
        assert_eq!(on_disk.trim(), new);
        let generated = rotate(dir.path(), None, None).unwrap();
        let p = skiff_pki::parse_token(&generated).unwrap();
        assert_eq!(p.password.len(), 32);
        assert_ne!(p.password, "newpassword");
    }
}
