//! A throwaway PostgreSQL cluster for tests and benchmarks: Debian's `initdb` + `pg_ctl` in a
//! temporary directory, listening on 127.0.0.1 at a free port with password (scram) auth,
//! stopped and removed on drop. As root it runs the server as the `postgres` user (or
//! `nobody`) through `runuser`, since `initdb` refuses to run as root. [`PgCluster::start_tls`]
//! turns `ssl` on and accepts TCP clients over TLS only (by password, or by client
//! certificate); the test's own connections go through the Unix socket.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::StoreError;

/// The superuser the cluster is created with.
pub const USER: &str = "skiff";

/// TLS for a throwaway cluster: the server's certificate and key (PEM files, copied into the
/// cluster's directory so the server user owns them) and, optionally, the CA whose client
/// certificates it accepts — then TCP clients log in by certificate only (pg_hba `cert`: the
/// certificate's common name is the user), else by password over TLS.
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: Option<PathBuf>,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct PgCluster {
    root: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
    password: String,
}

fn fail(msg: String) -> StoreError {
    StoreError::Io(std::io::Error::other(msg))
}

/// The newest `/usr/lib/postgresql/<version>/bin` (or `$SKIFF_PG_BIN`).
fn find_bin() -> Result<PathBuf, StoreError> {
    if let Some(dir) = std::env::var_os("SKIFF_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in entries.flatten() {
            let bin = entry.path().join("bin");
            let version = entry
                .file_name()
                .to_str()
                .and_then(|v| v.parse::<u32>().ok());
            if let Some(version) = version {
                if bin.join("initdb").exists() && best.as_ref().is_none_or(|(v, _)| version > *v) {
                    best = Some((version, bin));
                }
            }
        }
    }
    best.map(|(_, bin)| bin).ok_or_else(|| {
        fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
             run `apt-get install postgresql` (or set SKIFF_PG_BIN to its bin directory)"
                .into(),
        )
    })
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The uid and gid of a local user, from `id`.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        if !out.status.success() {
            return None;
        }
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    Some((id("-u")?, id("-g")?))
}

fn free_port() -> Result<u16, StoreError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl PgCluster {
    /// Creates and starts a cluster; fails with a message saying what to install when
    /// PostgreSQL is missing.
    pub fn start() -> Result<PgCluster, StoreError> {
        Self::start_with(None)
    }

    /// Creates and starts a cluster with `ssl = on` that takes TCP clients over TLS only.
    pub fn start_tls(tls: &ServerTls) -> Result<PgCluster, StoreError> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Result<PgCluster, StoreError> {
        let bin = find_bin()?;
        let (run_as, ids) = if is_root() {
            let user = ["postgres", "nobody"]
                .into_iter()
                .find_map(|u| user_ids(u).map(|ids| (u.to_string(), ids)))
                .ok_or_else(|| {
                    fail("running as root, but neither user postgres nor nobody exists; create one (initdb refuses root)".into())
                })?;
            (Some(user.0), Some(user.1))
        } else {
            (None, None)
        };
        let root = std::env::temp_dir().join(format!(
            "skiff-pg-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&root)?;
        let password = format!("pw{:x}", rand_suffix());
        let cluster = PgCluster {
            data: root.join("data"),
            root,
            bin,
            run_as,
            port: free_port()?,
            password,
        };
        let pwfile = cluster.root.join("pwfile");
        std::fs::write(&pwfile, format!("{}\n", cluster.password))?;
        if let Some((uid, gid)) = ids {
            std::os::unix::fs::chown(&cluster.root, Some(uid), Some(gid))?;
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))?;
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                path_str(&cluster.data)?,
                "-U",
                USER,
                "--pwfile",
                path_str(&pwfile)?,
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "--no-locale",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        if let Some(tls) = tls {
            cluster.configure_tls(tls, ids)?;
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            cluster.port,
            path_str(&cluster.root)?
        );
        let log = cluster.root.join("server.log");
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&cluster.data)?,
                "-l",
                path_str(&log)?,
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(cluster)
    }

    /// Copies the TLS files in (the key private to the server user, as PostgreSQL insists),
    /// turns `ssl` on and lets TCP clients in over TLS only.
    fn configure_tls(&self, tls: &ServerTls, ids: Option<(u32, u32)>) -> Result<(), StoreError> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let copy = |from: &Path, name: &str, mode: u32| -> Result<PathBuf, StoreError> {
            let to = self.root.join(name);
            std::fs::copy(from, &to)
                .map_err(|e| fail(format!("cannot copy {}: {e}", from.display())))?;
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(mode))?;
            if let Some((uid, gid)) = ids {
                std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
            }
            Ok(to)
        };
        let cert = copy(&tls.cert_file, "server.crt", 0o644)?;
        let key = copy(&tls.key_file, "server.key", 0o600)?;
        let mut conf = format!(
            "\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
            path_str(&cert)?,
            path_str(&key)?
        );
        let method = match &tls.client_ca_file {
            Some(ca) => {
                let ca = copy(ca, "client-ca.crt", 0o644)?;
                conf.push_str(&format!("ssl_ca_file = '{}'\n", path_str(&ca)?));
                "cert"
            }
            None => "scram-sha-256",
        };
        std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))?
            .write_all(conf.as_bytes())?;
        // Rewritten in place, so the file keeps its owner.
        std::fs::write(
            self.data.join("pg_hba.conf"),
            format!("local all all trust\nhostssl all all 127.0.0.1/32 {method}\n"),
        )?;
        Ok(())
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<(), StoreError> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        // Started from the cluster's directory: the server user may not enter the caller's.
        let out = cmd
            .args(args)
            .current_dir(&self.root)
            .output()
            .map_err(|e| {
                fail(format!(
                    "cannot run {}: {e}; run `apt-get install postgresql`",
                    exe.display()
                ))
            })?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.root.join("server.log")).unwrap_or_default();
            return Err(fail(format!(
                "{tool} failed ({}): {}{}\n{log}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The TCP port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser's password.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The URL of database `db` as the superuser.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{USER}:{}@127.0.0.1:{}/{db}",
            self.password, self.port
        )
    }

    /// Creates database `name` (through the Unix socket, which needs no TLS or password) and
    /// returns its URL.
    pub async fn create_database(&self, name: &str) -> Result<String, StoreError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.root)
            .port(self.port)
            .user(USER)
            .dbname("postgres");
        let (client, conn) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| crate::pg::pg_error("throwaway cluster", e))?;
        let driver = tokio::spawn(conn);
        let created = client
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| crate::pg::pg_error("throwaway cluster", e));
        drop(client);
        let _ = driver.await;
        created?;
        Ok(self.url(name))
    }
}

fn path_str(p: &Path) -> Result<&str, StoreError> {
    p.to_str()
        .ok_or_else(|| fail(format!("temporary path {} is not UTF-8", p.display())))
}

/// A few random bits from the clock and the process id (a test password, not a secret).
fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.finish()
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Ok(data) = path_str(&self.data) {
            let data = data.to_owned();
            if let Err(err) = self.run("pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]) {
                tracing::warn!(error = %err, "stopping the throwaway postgres failed");
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
