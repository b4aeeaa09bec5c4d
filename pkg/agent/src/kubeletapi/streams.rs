//! The streaming routes: `/exec/…`, `/attach/…` (remote command) and `/portForward/…`:
//! resolve the pod or container, negotiate the protocol with `skiff-streaming`, answer 101 and
//! run the session in a task once the connection is upgraded.

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use super::server::{boxed, text, Body, State};
use super::{pods, query_pairs};

/// `/exec/…` and `/attach/…`: resolve the running container, negotiate the stream protocol,
/// then run the command (or attach) once the connection is upgraded.
pub async fn remotecommand(
    state: Arc<State>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
    container: &str,
    exec: bool,
    query: &[(String, String)],
) -> Response<Body> {
    let opts = match skiff_streaming::StreamOptions::from_query(req.uri().query().unwrap_or("")) {
        Ok(o) => o,
        Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
    };
    let command: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "command")
        .map(|(_, v)| v.clone())
        .collect();
    if exec && command.is_empty() {
        return text(StatusCode::BAD_REQUEST, "you must specify a command to run");
    }
    let target =
        match pods::resolve(&state.cri, state.client.as_ref(), ns, pod, container, true).await {
            Ok(t) => t,
            Err(e) => return e.into(),
        };
    let tty = opts.tty;
    let (resp, pending) = skiff_streaming::accept_remotecommand(&mut req, opts);
    if let Some(pending) = pending {
        let id = target.container.id.clone();
        tokio::spawn(async move {
            let streams = match pending.await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "kubelet API: stream setup failed");
                    return;
                }
            };
            if exec {
                let r = super::exec::ExecRequest {
                    container_id: id,
                    command,
                    tty,
                };
                super::exec::run(&state.cri, &state.cfg.run_dir, r, streams).await;
            } else {
                super::attach::run(&state.cri, &id, tty, streams).await;
            }
        });
    }
    boxed(resp)
}

/// `/portForward/{ns}/{pod}`: negotiate, then forward each connection into the pod.
pub async fn port_forward(
    state: Arc<State>,
    mut req: Request<Incoming>,
    ns: &str,
    pod: &str,
) -> Response<Body> {
    let q = req.uri().query().unwrap_or("").to_string();
    let has_port = query_pairs(Some(&q)).iter().any(|(k, _)| k == "port");
    let ports = if has_port {
        match skiff_streaming::ports_from_query(&q) {
            Ok(p) => p,
            Err(msg) => return text(StatusCode::BAD_REQUEST, msg),
        }
    } else {
        Vec::new()
    };
    let sandbox = match pods::find_sandbox(&state.cri, ns, pod).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("pod \"{pod}\" does not exist"),
            )
        }
        Err(e) => return e.into(),
    };
    let (resp, pending) = skiff_streaming::accept_portforward(&mut req, ports);
    if let Some(pending) = pending {
        tokio::spawn(async move {
            let session = match pending.await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "kubelet API: port-forward setup failed");
                    return;
                }
            };
            let uid = pods::sandbox_uid(&sandbox);
            super::portforward::run(&state.cri, &sandbox.id, &uid, session).await;
        });
    }
    boxed(resp)
}
