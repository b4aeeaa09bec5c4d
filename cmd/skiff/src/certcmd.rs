//! `skiff certificate check|rotate` on a data dir, as k3s has them: `check` lists every
//! certificate of the server (`server/tls`) and the node (`agent/`) with its expiry; `rotate`
//! backs the files up (`server/tls-<unix time>`, `agent/tls-<unix time>`) and removes the
//! chosen leaf certificates and keys — never the CAs — so the next start issues new ones.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CertificateArgs {
    #[command(subcommand)]
    pub cmd: CertificateCommand,
    /// Data directory (default /var/lib/skiff as root, ~/.skiff otherwise).
    #[arg(short = 'd', long, global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum CertificateCommand {
    /// List the certificates with their expiry.
    Check {
        /// Output format: text or table.
        #[arg(short = 'o', long, default_value = "text", value_parser = ["text", "table"])]
        output: String,
    },
    /// Renew leaf certificates (not the CAs) while skiff is stopped; they are issued again,
    /// with new keys, when it starts.
    Rotate {
        /// Which to rotate (comma-separated or repeated): admin, api-server, kubelet
        /// (default: all).
        #[arg(short = 's', long = "service", value_delimiter = ',')]
        services: Vec<String>,
    },
}

/// A service's certificate files: (service, directory under the data dir, file stems).
pub const SERVICES: &[(&str, &str, &[&str])] = &[
    ("admin", "server/tls", &["client-admin"]),
    ("api-server", "server/tls", &["serving-kube-apiserver"]),
    ("kubelet", "agent", &["client-kubelet", "serving-kubelet"]),
];

/// CA files, which `check` lists and `rotate` never touches.
const CAS: &[(&str, &str)] = &[("server/tls", "server-ca"), ("server/tls", "client-ca")];

/// Certificates within this many days of expiry are WARNING (skiff re-issues them at start
/// from 90 days on).
const WARN_DAYS: i64 = 90;

/// One certificate of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct CertInfo {
    pub service: String,
    pub file: String,
    pub subject: String,
    pub usages: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// OK, WARNING, EXPIRED or NOT YET VALID at `now`.
pub fn status(c: &CertInfo, now: i64) -> &'static str {
    if now < c.not_before {
        "NOT YET VALID"
    } else if now >= c.not_after {
        "EXPIRED"
    } else if c.not_after - now < WARN_DAYS * 86400 {
        "WARNING"
    } else {
        "OK"
    }
}

/// The time left, in words: `10 years`, `1 year`, `5 months`, `12 days`, `3 hours`.
pub fn residual(secs: i64) -> String {
    if secs <= 0 {
        return "0 minutes".into();
    }
    let days = secs / 86400;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if days >= 360 {
        plural((days + 182) / 365, "year")
    } else if days >= 60 {
        plural(days / 30, "month")
    } else if days >= 2 {
        plural(days, "day")
    } else if secs >= 7200 {
        plural(secs / 3600, "hour")
    } else {
        plural(secs / 60, "minute")
    }
}

/// `Jun 09, 2026 10:17 UTC`.
fn expires(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%b %d, %Y %H:%M UTC")
        .to_string()
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Every certificate in a PEM file (leaf first, then its CAs).
pub fn parse_pem(service: &str, file: &str, pem: &str) -> Result<Vec<CertInfo>> {
    let mut out = Vec::new();
    for der in pem_certs(pem) {
        let (_, cert) = x509_parser::parse_x509_certificate(&der)
            .map_err(|e| anyhow::anyhow!("{file}: unreadable certificate: {e}"))?;
        let subject = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_string();
        let usages = if cert.is_ca() {
            "CertSign".to_string()
        } else {
            match cert.extended_key_usage() {
                Ok(Some(eku)) => {
                    let mut u = Vec::new();
                    if eku.value.server_auth {
                        u.push("ServerAuth");
                    }
                    if eku.value.client_auth {
                        u.push("ClientAuth");
                    }
                    u.join(",")
                }
                _ => String::new(),
            }
        };
        out.push(CertInfo {
            service: service.to_string(),
            file: file.to_string(),
            subject,
            usages,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
        });
    }
    if out.is_empty() {
        bail!("{file} holds no PEM certificate");
    }
    Ok(out)
}

fn pem_certs(pem: &str) -> Vec<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .filter_map(|c| c.ok())
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// Every certificate on disk under `data_dir`, service by service; missing files are skipped
/// (an agent-only host has no server certificates).
pub fn collect(data_dir: &Path) -> Result<Vec<CertInfo>> {
    let mut out = Vec::new();
    let ca_files = CAS.iter().map(|(dir, stem)| ("ca", *dir, *stem));
    let leaf_files = SERVICES
        .iter()
        .flat_map(|(svc, dir, stems)| stems.iter().map(move |s| (*svc, *dir, *s)));
    for (svc, dir, stem) in ca_files.chain(leaf_files) {
        let file = format!("{stem}.crt");
        let path = data_dir.join(dir).join(&file);
        let Ok(pem) = std::fs::read_to_string(&path) else {
            continue;
        };
        out.extend(parse_pem(svc, &file, &pem)?);
    }
    Ok(out)
}

/// `check --output table` (k3s's columns).
pub fn table(certs: &[CertInfo], now: i64) -> String {
    let mut rows = vec![
        [
            "FILENAME",
            "SUBJECT",
            "USAGES",
            "EXPIRES",
            "RESIDUAL TIME",
            "STATUS",
        ]
        .map(String::from),
        [
            "--------",
            "-------",
            "------",
            "-------",
            "-------------",
            "------",
        ]
        .map(String::from),
    ];
    for c in certs {
        rows.push([
            c.file.clone(),
            c.subject.clone(),
            c.usages.clone(),
            expires(c.not_after),
            residual(c.not_after - now),
            status(c, now).to_string(),
        ]);
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.to_vec()).collect();
    crate::tokencmd::tabulate(&rows)
}

/// `check --output text`: a line per certificate.
pub fn text(certs: &[CertInfo], now: i64) -> String {
    let mut s = String::new();
    for c in certs {
        let state = match status(c, now) {
            "OK" => "is ok, expires at",
            "WARNING" => "will expire within 90 days at",
            "EXPIRED" => "expired at",
            _ => "is not yet valid; expires at",
        };
        s.push_str(&format!(
            "{}: certificate {} (CN={}) {state} {}\n",
            c.service,
            c.file,
            c.subject,
            rfc3339(c.not_after)
        ));
    }
    s
}

/// The files `rotate` removes for `services` (all when empty): paths relative to the data dir.
pub fn rotation_files(services: &[String]) -> Result<Vec<(String, String)>> {
    let names: Vec<&str> = SERVICES.iter().map(|(s, _, _)| *s).collect();
    for s in services {
        if !names.contains(&s.trim()) {
            bail!(
                "unknown --service {s:?}: use one of {} (the controller and scheduler certificates are issued afresh at every start)",
                names.join(", ")
            );
        }
    }
    let mut out = Vec::new();
    for (svc, dir, stems) in SERVICES {
        if !services.is_empty() && !services.iter().any(|s| s.trim() == *svc) {
            continue;
        }
        for stem in *stems {
            for ext in ["crt", "key"] {
                out.push((dir.to_string(), format!("{stem}.{ext}")));
            }
        }
    }
    Ok(out)
}

/// Processes holding `path` open (from /proc/*/fd), other than this one.
fn holders(path: &Path) -> Vec<u32> {
    let Ok(canon) = path.canonicalize() else {
        return vec![];
    };
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    let mut out = Vec::new();
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == canon))
        {
            out.push(pid);
        }
    }
    out
}

/// `rotate`: refuses while a server has the data dir's database open, backs up and removes.
/// Returns what it did, a line per action.
pub fn rotate(data_dir: &Path, services: &[String], now: i64) -> Result<Vec<String>> {
    let db = data_dir.join("server").join("db").join("state.db");
    let running = holders(&db);
    if !running.is_empty() {
        bail!(
            "skiff (pid {}) is running on {}: stop it first (systemctl stop skiff), rotate, then start it",
            running
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            data_dir.display()
        );
    }
    let files = rotation_files(services)?;
    let mut done = Vec::new();
    // Back up every directory touched, whole (the server's tls dir as k3s does).
    let mut dirs: Vec<&str> = files.iter().map(|(d, _)| d.as_str()).collect();
    dirs.dedup();
    for dir in dirs {
        let src = data_dir.join(dir);
        if !src.is_dir() {
            continue;
        }
        // server/tls → server/tls-<now> (k3s's name); agent → agent/tls-<now>.
        let backup = if dir.ends_with("/tls") {
            data_dir.join(format!("{dir}-{now}"))
        } else {
            src.join(format!("tls-{now}"))
        };
        std::fs::create_dir_all(&backup)
            .with_context(|| format!("cannot create {}", backup.display()))?;
        for e in std::fs::read_dir(&src)?.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_file()
                && (name.ends_with(".crt") || name.ends_with(".key") || name.ends_with(".pub"))
            {
                std::fs::copy(&p, backup.join(&name))
                    .with_context(|| format!("cannot back up {}", p.display()))?;
            }
        }
        done.push(format!(
            "backed up {} to {}",
            src.display(),
            backup.display()
        ));
    }
    for (dir, file) in &files {
        let p = data_dir.join(dir).join(file);
        match std::fs::remove_file(&p) {
            Ok(()) => done.push(format!("removed {}", p.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    Ok(done)
}

/// Runs `skiff certificate …`.
pub fn run(args: CertificateArgs, default_data_dir: PathBuf) -> Result<()> {
    let data_dir = args.data_dir.unwrap_or(default_data_dir);
    let now = chrono::Utc::now().timestamp();
    match args.cmd {
        CertificateCommand::Check { output } => {
            let certs = collect(&data_dir)?;
            if certs.is_empty() {
                bail!(
                    "no certificates under {}: pass the --data-dir skiff runs with",
                    data_dir.display()
                );
            }
            if output == "table" {
                print!("{}", table(&certs, now));
            } else {
                print!("{}", text(&certs, now));
            }
            Ok(())
        }
        CertificateCommand::Rotate { services } => {
            for line in rotate(&data_dir, &services, now)? {
                println!("{line}");
            }
            println!("certificates rotated: start skiff to issue new ones");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        skiff_pki::load_or_create(
            &dir.path().join("server").join("tls"),
            &skiff_pki::PkiConfig::default(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn check_lists_each_certificate_with_its_expiry() {
        let dir = server_dir();
        let certs = collect(dir.path()).unwrap();
        let now = chrono::Utc::now().timestamp();
        let files: Vec<(&str, &str, &str)> = certs
            .iter()
            .map(|c| (c.file.as_str(), c.subject.as_str(), c.usages.as_str()))
            .collect();
        assert!(
            files.contains(&("client-admin.crt", "system:admin", "ClientAuth")),
            "{files:?}"
        );
        assert!(
            files.contains(&("serving-kube-apiserver.crt", "kube-apiserver", "ServerAuth")),
            "{files:?}"
        );
        assert!(
            files
                .iter()
                .any(|(f, _, u)| *f == "server-ca.crt" && *u == "CertSign"),
            "{files:?}"
        );
        let t = table(&certs, now);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("FILENAME"), "{t}");
        assert!(lines[1].starts_with("--------"), "{t}");
        let admin = lines.iter().find(|l| l.contains("system:admin")).unwrap();
        assert!(admin.contains("1 year") && admin.ends_with("OK"), "{admin}");
        let ca = lines
            .iter()
            .find(|l| l.starts_with("server-ca.crt"))
            .unwrap();
        assert!(ca.contains("10 years"), "{ca}");
        let txt = text(&certs, now);
        assert!(
            txt.lines().any(|l| l.starts_with(
                "admin: certificate client-admin.crt (CN=system:admin) is ok, expires at "
            )),
            "{txt}"
        );
    }

    #[test]
    fn statuses_and_residual_times() {
        let c = CertInfo {
            service: "admin".into(),
            file: "f".into(),
            subject: "s".into(),
            usages: String::new(),
            not_before: 100,
            not_after: 100 + 200 * 86400,
        };
        assert_eq!(status(&c, 50), "NOT YET VALID");
        assert_eq!(status(&c, 100), "OK");
        assert_eq!(status(&c, 100 + 150 * 86400), "WARNING");
        assert_eq!(status(&c, 100 + 200 * 86400), "EXPIRED");
        assert_eq!(residual(365 * 86400 - 300), "1 year");
        assert_eq!(residual(3650 * 86400), "10 years");
        assert_eq!(residual(200 * 86400), "6 months");
        assert_eq!(residual(12 * 86400), "12 days");
        assert_eq!(residual(3 * 3600 + 5), "3 hours");
        assert_eq!(residual(90), "1 minute");
        assert_eq!(expires(1_781_000_220), "Jun 09, 2026 10:17 UTC");
    }

    #[test]
    fn rotate_backs_up_and_removes_leaves_only_and_the_next_start_reissues() {
        let dir = server_dir();
        let tls = dir.path().join("server").join("tls");
        let ca_before = std::fs::read_to_string(tls.join("server-ca.crt")).unwrap();
        let admin_before = std::fs::read_to_string(tls.join("client-admin.crt")).unwrap();
        let serving_before =
            std::fs::read_to_string(tls.join("serving-kube-apiserver.crt")).unwrap();
        assert!(rotate(dir.path(), &["etcd".into()], 1).is_err());
        let done = rotate(dir.path(), &["admin".into()], 1_700_000_000).unwrap();
        assert!(done.iter().any(|l| l.starts_with("backed up")), "{done:?}");
        let backup = dir.path().join("server").join("tls-1700000000");
        assert_eq!(
            std::fs::read_to_string(backup.join("client-admin.crt")).unwrap(),
            admin_before
        );
        assert!(backup.join("server-ca.key").is_file());
        assert!(!tls.join("client-admin.crt").exists() && !tls.join("client-admin.key").exists());
        assert!(tls.join("serving-kube-apiserver.crt").exists());
        // The next start issues a new admin certificate from the same CA.
        let pki = skiff_pki::load_or_create(&tls, &skiff_pki::PkiConfig::default()).unwrap();
        assert_ne!(pki.admin_cert_pem(), admin_before);
        assert_eq!(pki.server_ca_pem(), ca_before);
        assert_eq!(
            std::fs::read_to_string(tls.join("serving-kube-apiserver.crt")).unwrap(),
            serving_before
        );
        // All services: the serving certificate goes too, the CAs stay.
        rotate(dir.path(), &[], 1_700_000_100).unwrap();
        assert!(!tls.join("serving-kube-apiserver.crt").exists());
        assert_eq!(
            std::fs::read_to_string(tls.join("server-ca.crt")).unwrap(),
            ca_before
        );
        assert!(tls.join("client-ca.key").exists());
    }
}
