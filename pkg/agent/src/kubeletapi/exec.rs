//! `/exec/…`: runs a command in a container through containerd's task API (the container's
//! OCI process with new args, FIFOs for stdio, start, wait, resize, close stdin, delete) and
//! bridges it to the client's streams from `skiff-streaming`.
//!
//! Why not CRI `Exec`: its URL leads to containerd's stream server, whose WebSocket v4 has no
//! way to close stdin, so `echo hi | kubectl exec -i pod -- cat` would never end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, KillRequest,
    ResizePtyRequest, StartRequest, WaitRequest,
};
use skiff_streaming::{ExitStatus, Streams};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tonic::transport::Channel;

use crate::cri::{Cri, CRI_NAMESPACE};

/// The type URL containerd registers for an OCI process spec.
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";
/// After the process exited, output still flowing is copied; output idle this long is cut.
const DRAIN_IDLE: Duration = Duration::from_secs(2);

/// One exec: the container, the argv and which streams the client asked for.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub container_id: String,
    pub command: Vec<String>,
    pub tty: bool,
}

/// A containerd request in the CRI namespace.
pub fn ns<T>(msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "containerd-namespace",
        tonic::metadata::MetadataValue::from_static(CRI_NAMESPACE),
    );
    r
}

/// The exec's process spec: the container's OCI `process` with `args` replaced and
/// `terminal` set, plus `TERM=xterm` for a terminal (as containerd's CRI does).
pub fn process_spec(
    container_spec: &[u8],
    command: &[String],
    tty: bool,
) -> Result<Vec<u8>, String> {
    let spec: serde_json::Value = serde_json::from_slice(container_spec)
        .map_err(|e| format!("cannot read the container's OCI spec: {e}"))?;
    let mut process = spec
        .get("process")
        .cloned()
        .filter(serde_json::Value::is_object)
        .ok_or("the container's OCI spec has no process")?;
    process["args"] = serde_json::json!(command);
    process["terminal"] = serde_json::json!(tty);
    if let Some(obj) = process.as_object_mut() {
        obj.remove("consoleSize");
    }
    if tty {
        let mut env: Vec<String> = process["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        env.retain(|e| !e.starts_with("TERM="));
        env.push("TERM=xterm".into());
        process["env"] = serde_json::json!(env);
    }
    serde_json::to_vec(&process).map_err(|e| format!("cannot write the exec process spec: {e}"))
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 8] = rand::thread_rng().gen();
    hex::encode(bytes)
}

fn mkfifo(path: &Path) -> std::io::Result<()> {
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        path,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .map_err(std::io::Error::from)
}

/// Copies `r` to `w` until EOF, counting bytes; a write error (client gone) is returned.
async fn pump<R, W>(mut r: R, mut w: W, counter: Arc<AtomicU64>) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            // The FIFO side failing is the end of output, not a client error.
            Err(_) => return Ok(()),
        };
        w.write_all(&buf[..n]).await?;
        w.flush().await?;
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Runs the exec and reports its end on `streams.status`.
pub async fn run(cri: &Cri, run_dir: &Path, req: ExecRequest, streams: Streams) {
    let exec_id = random_id();
    let dir = run_dir.join("exec").join(&exec_id);
    let status = match run_in(cri.channel.clone(), &dir, &exec_id, &req, streams).await {
        Ok((status, sender)) => {
            if let Err(e) = sender.send(status).await {
                tracing::debug!(error = %e, "exec: cannot send the status");
            }
            None
        }
        Err(Failed { message, sender }) => Some((message, sender)),
    };
    if let Some((message, sender)) = status {
        tracing::info!(container = %req.container_id, error = %message, "exec failed");
        let _ = sender
            .send(ExitStatus::Error(format!(
                "error executing command in container: {message}"
            )))
            .await;
    }
    let mut tasks = TasksClient::new(cri.channel.clone());
    let _ = tasks
        .delete_process(ns(DeleteProcessRequest {
            container_id: req.container_id.clone(),
            exec_id: exec_id.clone(),
        }))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}

struct Failed {
    message: String,
    sender: skiff_streaming::StatusSender,
}

async fn run_in(
    channel: Channel,
    dir: &Path,
    exec_id: &str,
    req: &ExecRequest,
    streams: Streams,
) -> Result<(ExitStatus, skiff_streaming::StatusSender), Failed> {
    let Streams {
        stdin,
        stdout,
        stderr,
        resize,
        status,
    } = streams;
    let fail = |message: String, sender| Failed { message, sender };
    let mut containers = ContainersClient::new(channel.clone());
    let container = match containers
        .get(ns(GetContainerRequest {
            id: req.container_id.clone(),
        }))
        .await
    {
        Ok(r) => r.into_inner().container,
        Err(s) => {
            return Err(fail(
                format!(
                    "failed to load container {}: {}",
                    req.container_id,
                    s.message()
                ),
                status,
            ))
        }
    };
    let spec = container
        .and_then(|c| c.spec)
        .map(|a| a.value)
        .unwrap_or_default();
    let process = match process_spec(&spec, &req.command, req.tty) {
        Ok(p) => p,
        Err(e) => return Err(fail(e, status)),
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        return Err(fail(
            format!("cannot create the exec directory {}: {e}", dir.display()),
            status,
        ));
    }
    let fifo = |name: &str, wanted: bool| -> std::io::Result<Option<PathBuf>> {
        if !wanted {
            return Ok(None);
        }
        let p = dir.join(name);
        mkfifo(&p)?;
        Ok(Some(p))
    };
    let paths = (|| {
        Ok::<_, std::io::Error>((
            fifo("stdin", stdin.is_some())?,
            fifo("stdout", stdout.is_some())?,
            fifo("stderr", stderr.is_some() && !req.tty)?,
        ))
    })();
    let (in_path, out_path, err_path) = match paths {
        Ok(p) => p,
        Err(e) => return Err(fail(format!("cannot create the exec FIFOs: {e}"), status)),
    };
    // Our FIFO ends are open before the shim opens its own: read ends non-blocking, the stdin
    // write end read-write (so opening it does not wait for the shim).
    let open = || -> std::io::Result<_> {
        let opts = tokio::net::unix::pipe::OpenOptions::new();
        let out_rx = out_path
            .as_ref()
            .map(|p| opts.open_receiver(p))
            .transpose()?;
        let err_rx = err_path
            .as_ref()
            .map(|p| opts.open_receiver(p))
            .transpose()?;
        let mut rw = tokio::net::unix::pipe::OpenOptions::new();
        rw.read_write(true);
        let in_tx = in_path.as_ref().map(|p| rw.open_sender(p)).transpose()?;
        Ok((out_rx, err_rx, in_tx))
    };
    let (out_rx, err_rx, in_tx) = match open() {
        Ok(x) => x,
        Err(e) => return Err(fail(format!("cannot open the exec FIFOs: {e}"), status)),
    };
    let path_str = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut tasks = TasksClient::new(channel.clone());
    let cid = req.container_id.clone();
    let exec = ExecProcessRequest {
        container_id: cid.clone(),
        stdin: path_str(&in_path),
        stdout: path_str(&out_path),
        stderr: path_str(&err_path),
        terminal: req.tty,
        spec: Some(prost_types::Any {
            type_url: PROCESS_TYPE_URL.into(),
            value: process,
        }),
        exec_id: exec_id.to_string(),
    };
    if let Err(s) = tasks.exec(ns(exec)).await {
        return Err(fail(
            format!(
                "failed to exec in container: failed to create exec \"{exec_id}\": {}",
                s.message()
            ),
            status,
        ));
    }
    let wait = {
        let mut tasks = tasks.clone();
        let (cid, exec_id) = (cid.clone(), exec_id.to_string());
        tokio::spawn(async move {
            tasks
                .wait(ns(WaitRequest {
                    container_id: cid,
                    exec_id,
                }))
                .await
                .map(|r| r.into_inner().exit_status)
        })
    };
    if let Err(s) = tasks
        .start(ns(StartRequest {
            container_id: cid.clone(),
            exec_id: exec_id.to_string(),
        }))
        .await
    {
        wait.abort();
        return Err(fail(
            format!(
                "failed to exec in container: failed to start exec \"{exec_id}\": {}",
                s.message()
            ),
            status,
        ));
    }
    let moved = Arc::new(AtomicU64::new(0));
    // A client that went away (its output stream fails) ends the process.
    let kill = {
        let tasks = tasks.clone();
        let (cid, exec_id) = (cid.clone(), exec_id.to_string());
        move || {
            let mut tasks = tasks.clone();
            let (cid, exec_id) = (cid.clone(), exec_id.clone());
            async move {
                let _ = tasks
                    .kill(ns(KillRequest {
                        container_id: cid,
                        exec_id,
                        signal: 9,
                        all: false,
                    }))
                    .await;
            }
        }
    };
    let output = |rx: Option<tokio::net::unix::pipe::Receiver>,
                  w: Option<Box<dyn AsyncWrite + Send + Unpin>>| {
        let moved = moved.clone();
        let kill = kill.clone();
        tokio::spawn(async move {
            let (Some(rx), Some(w)) = (rx, w) else { return };
            if pump(rx, w, moved).await.is_err() {
                kill().await;
            }
        })
    };
    let mut out_task = output(out_rx, stdout);
    let mut err_task = output(err_rx, if req.tty { None } else { stderr });
    let in_task = tokio::spawn({
        let mut tasks = tasks.clone();
        let (cid, exec_id) = (cid.clone(), exec_id.to_string());
        async move {
            let (Some(mut r), Some(mut w)) = (stdin, in_tx) else {
                return;
            };
            let _ = tokio::io::copy(&mut r, &mut w).await;
            drop(w);
            // The shim holds stdin open until told to close it.
            let _ = tasks
                .close_io(ns(CloseIoRequest {
                    container_id: cid,
                    exec_id,
                    stdin: true,
                }))
                .await;
        }
    });
    let resize_task = tokio::spawn({
        let mut tasks = tasks.clone();
        let (cid, exec_id) = (cid.clone(), exec_id.to_string());
        async move {
            let Some(mut rx) = resize else { return };
            while let Some(size) = rx.recv().await {
                let r = tasks
                    .resize_pty(ns(ResizePtyRequest {
                        container_id: cid.clone(),
                        exec_id: exec_id.clone(),
                        width: size.width.into(),
                        height: size.height.into(),
                    }))
                    .await;
                if let Err(s) = r {
                    tracing::debug!(error = %s.message(), "exec: resize failed");
                }
            }
        }
    });
    let exit = wait.await;
    // Drain the output the process left in the FIFOs while it keeps flowing (a background
    // child holding the FIFOs open must not keep the session alive forever).
    {
        let outputs = async {
            let _ = (&mut out_task).await;
            let _ = (&mut err_task).await;
        };
        tokio::pin!(outputs);
        let mut last = moved.load(Ordering::Relaxed);
        let mut idle = Duration::ZERO;
        let step = Duration::from_millis(100);
        loop {
            tokio::select! {
                _ = &mut outputs => break,
                _ = tokio::time::sleep(step) => {
                    let now = moved.load(Ordering::Relaxed);
                    if now == last {
                        idle += step;
                        if idle >= DRAIN_IDLE {
                            break;
                        }
                    } else {
                        idle = Duration::ZERO;
                        last = now;
                    }
                }
            }
        }
    }
    out_task.abort();
    err_task.abort();
    in_task.abort();
    resize_task.abort();
    match exit {
        Ok(Ok(0)) => Ok((ExitStatus::Success, status)),
        Ok(Ok(code)) => Ok((ExitStatus::Code(code as i32), status)),
        Ok(Err(s)) => Err(fail(
            format!("failed to wait for exec \"{exec_id}\": {}", s.message()),
            status,
        )),
        Err(e) => Err(fail(format!("exec wait task failed: {e}"), status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exec_process_is_the_containers_with_new_args() {
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 1000, "gid": 1000},
                "args": ["nginx", "-g", "daemon off;"],
                "env": ["PATH=/bin", "TERM=dumb"],
                "cwd": "/srv",
                "consoleSize": {"height": 1, "width": 1},
            },
            "root": {"path": "rootfs"},
        });
        let bytes = serde_json::to_vec(&spec).unwrap();
        let cmd = vec!["sh".to_string(), "-c".to_string(), "exit 3".to_string()];
        let p: serde_json::Value =
            serde_json::from_slice(&process_spec(&bytes, &cmd, false).unwrap()).unwrap();
        assert_eq!(p["args"], serde_json::json!(cmd));
        assert_eq!(p["terminal"], false);
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["cwd"], "/srv");
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "TERM=dumb"]));
        assert!(p.get("consoleSize").is_none());
        assert!(p.get("root").is_none());
        let t: serde_json::Value =
            serde_json::from_slice(&process_spec(&bytes, &cmd, true).unwrap()).unwrap();
        assert_eq!(t["terminal"], true);
        assert_eq!(t["env"], serde_json::json!(["PATH=/bin", "TERM=xterm"]));
        assert!(process_spec(b"{}", &cmd, false).is_err());
        assert!(process_spec(b"not json", &cmd, false).is_err());
    }

    #[tokio::test]
    async fn pump_copies_until_eof_and_counts() {
        let (mut a, b) = tokio::io::duplex(64);
        let counter = Arc::new(AtomicU64::new(0));
        let mut out = Vec::new();
        let writer = tokio::spawn(async move {
            a.write_all(b"hello world").await.unwrap();
            drop(a);
        });
        pump(b, &mut out, counter.clone()).await.unwrap();
        writer.await.unwrap();
        assert_eq!(out, b"hello world");
        assert_eq!(counter.load(Ordering::Relaxed), 11);
    }
}
