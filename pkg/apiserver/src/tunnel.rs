//! The server end of the agent tunnels: `POST /skiff.tunnel.v1.Tunnel/Connect` (gRPC over
//! the API port's HTTP/2) from a node authenticated as `system:node:<name>`; the session is
//! registered under the node name, replacing an older one, and the kubelet dialer opens
//! virtual connections through it.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::response::Response;
use futures::StreamExt;
use http::{Extensions, HeaderMap, Method, Uri};
use parking_lot::Mutex;
use skiff_api::rbac::UserInfo;
use skiff_tunnel::pb::tunnel_server::{Tunnel, TunnelServer};
use skiff_tunnel::{pb, Mux};
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tower::ServiceExt;

/// Connected sessions by node name.
#[derive(Default)]
pub struct Tunnels {
    sessions: Mutex<HashMap<String, (u64, Mux)>>,
    next: AtomicU64,
}

impl Tunnels {
    /// The live session of `node`.
    pub fn get(&self, node: &str) -> Option<Mux> {
        let s = self.sessions.lock();
        s.get(node)
            .filter(|(_, m)| !m.is_closed())
            .map(|(_, m)| m.clone())
    }

    /// Nodes with a connected tunnel, sorted.
    pub fn nodes(&self) -> Vec<String> {
        let mut v: Vec<String> = self.sessions.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Registers `mux` for `node`, closing an older session; returns the session id.
    fn register(&self, node: &str, mux: Mux) -> u64 {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        if let Some((_, old)) = self.sessions.lock().insert(node.to_string(), (id, mux)) {
            tracing::info!(%node, "a new tunnel replaces the node's previous one");
            old.close();
        }
        id
    }

    /// Removes session `id` of `node` if it is still the registered one.
    fn unregister(&self, node: &str, id: u64) {
        let mut s = self.sessions.lock();
        if s.get(node).is_some_and(|(i, _)| *i == id) {
            s.remove(node);
        }
    }
}

/// The authenticated node of a Connect call (request extension).
#[derive(Clone)]
struct TunnelNode(String);

struct TunnelService {
    st: Arc<AppState>,
}

type FrameStream =
    Pin<Box<dyn futures::Stream<Item = Result<pb::ServerFrame, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Tunnel for TunnelService {
    type ConnectStream = FrameStream;

    async fn connect(
        &self,
        req: tonic::Request<tonic::Streaming<pb::AgentFrame>>,
    ) -> Result<tonic::Response<FrameStream>, tonic::Status> {
        let Some(TunnelNode(node)) = req.extensions().get::<TunnelNode>().cloned() else {
            return Err(tonic::Status::permission_denied(
                "only nodes may open a tunnel",
            ));
        };
        let mut inbound = req.into_inner();
        let (tx, rx) = mpsc::channel(64);
        let mux = Mux::new(tx);
        let id = self.st.kubelets.tunnels.register(&node, mux.clone());
        tracing::info!(%node, "agent tunnel connected");
        let st = self.st.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(f)) => {
                        if let Some(f) = f.into_frame() {
                            mux.handle(f);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(%node, error = %e, "tunnel stream failed");
                        break;
                    }
                }
            }
            mux.close();
            st.kubelets.tunnels.unregister(&node, id);
            tracing::info!(%node, "agent tunnel disconnected");
        });
        let out = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|f| Ok::<_, tonic::Status>(pb::ServerFrame::from(f)));
        Ok(tonic::Response::new(Box::pin(out)))
    }
}

/// Serves a Connect call; only `system:node:<name>` users may open a tunnel.
pub async fn connect(
    st: &Arc<AppState>,
    user: &UserInfo,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
    body: Body,
) -> ApiResult<Response> {
    let Some(node) = crate::nodeauthz::node_identity(user) else {
        return Err(ApiError::forbidden(format!(
            "User {:?} cannot open a node tunnel: only nodes (system:node:<name> in group \
             system:nodes) may connect",
            user.name
        )));
    };
    let mut req = http::Request::new(body);
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    *req.extensions_mut() = extensions;
    req.extensions_mut().insert(TunnelNode(node.to_string()));
    let svc = TunnelServer::new(TunnelService { st: st.clone() });
    match svc.oneshot(req).await {
        Ok(resp) => Ok(resp.map(Body::new)),
        Err(never) => match never {},
    }
}
