//! A throwaway etcd for tests and benchmarks: Debian's `etcd` (etcd-server) in a temporary
//! directory, client and peer URLs on 127.0.0.1 at free ports, killed and removed on drop.
//! With TLS files it serves clients over https and asks them for a certificate signed by
//! the given CA (`--client-cert-auth`); health is then read from a plain metrics port.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::StoreError;

/// How long etcd may take to answer its health check.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running throwaway etcd.
#[derive(Debug)]
pub struct EtcdServer {
    child: Child,
    dir: PathBuf,
    port: u16,
    /// Where `/health` answers over plain HTTP.
    health_port: u16,
    tls: bool,
    /// How it was started, for [`EtcdServer::restart`].
    bin: OsString,
    args: Vec<OsString>,
}

/// The server side of a TLS etcd: its certificate and key, and the CA clients' certificates
/// must be signed by (PEM files).
#[derive(Clone, Debug)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_ca_file: PathBuf,
}

fn fail(msg: String) -> StoreError {
    StoreError::Io(std::io::Error::other(msg))
}

/// Runs `bin args`, its output appended to `dir/etcd.log`.
fn spawn(bin: &OsString, args: &[OsString], dir: &std::path::Path) -> Result<Child, StoreError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("etcd.log"))?;
    Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .map_err(|e| {
            fail(format!(
                "cannot run {}: {e}; run `apt-get install etcd-server` (or set SKIFF_ETCD_BIN)",
                PathBuf::from(bin).display()
            ))
        })
}

fn free_port() -> Result<u16, StoreError> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl EtcdServer {
    /// Starts etcd (`$SKIFF_ETCD_BIN` or `etcd` on PATH) and waits until it answers; fails
    /// with a message saying what to install when it is missing.
    pub fn start() -> Result<EtcdServer, StoreError> {
        Self::start_with(None)
    }

    /// Like [`EtcdServer::start`], serving clients over TLS with client certificates.
    pub fn start_tls(tls: &ServerTls) -> Result<EtcdServer, StoreError> {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Result<EtcdServer, StoreError> {
        let bin = std::env::var_os("SKIFF_ETCD_BIN").unwrap_or_else(|| "etcd".into());
        let dir = std::env::temp_dir().join(format!(
            "skiff-etcd-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let (port, peer) = (free_port()?, free_port()?);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client_url = format!("{scheme}://127.0.0.1:{port}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut args: Vec<OsString> = Vec::new();
        let health_port = match tls {
            Some(tls) => {
                let metrics = free_port()?;
                args.extend([
                    "--cert-file".into(),
                    tls.cert_file.clone().into(),
                    "--key-file".into(),
                    tls.key_file.clone().into(),
                    "--trusted-ca-file".into(),
                    tls.client_ca_file.clone().into(),
                    "--client-cert-auth".into(),
                    "--listen-metrics-urls".into(),
                    format!("http://127.0.0.1:{metrics}").into(),
                ]);
                metrics
            }
            None => port,
        };
        args.extend([
            "--name".into(),
            "skiff-test".into(),
            "--data-dir".into(),
            dir.join("data").into(),
            "--listen-client-urls".into(),
            client_url.clone().into(),
            "--advertise-client-urls".into(),
            client_url.into(),
            "--listen-peer-urls".into(),
            peer_url.clone().into(),
            "--initial-advertise-peer-urls".into(),
            peer_url.clone().into(),
            "--initial-cluster".into(),
            format!("skiff-test={peer_url}").into(),
        ]);
        let child = spawn(&bin, &args, &dir)?;
        let mut server = EtcdServer {
            child,
            dir,
            port,
            health_port,
            tls: tls.is_some(),
            bin,
            args,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Kills etcd (SIGKILL) and starts it again on the same data and ports, as after a crash;
    /// returns once it answers again.
    pub fn restart(&mut self) -> Result<(), StoreError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.bin, &self.args, &self.dir)?;
        self.wait_ready()
    }

    fn wait_ready(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                let log = std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default();
                return Err(fail(format!("etcd exited at start ({status}):\n{log}")));
            }
            if self.healthy() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(fail(format!(
                    "etcd did not become healthy within {}s",
                    READY_TIMEOUT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether `GET /health` answers `"health":"true"` (plain HTTP/1.0 on loopback).
    fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.health_port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .is_err()
        {
            return false;
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.contains("\"health\":\"true\"")
    }

    /// The client endpoint, `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
