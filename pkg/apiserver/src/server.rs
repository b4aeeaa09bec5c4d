//! The TLS listener: accepts connections with rustls, records the client certificate, and
//! serves HTTP/1.1 and HTTP/2 (with upgrades) through the request dispatcher.

use crate::handlers::{self, PeerCert};
use crate::state::AppState;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How often the server pings an idle HTTP/2 client, and how long it waits for the answer.
const HTTP2_PING_INTERVAL: Duration = Duration::from_secs(15);
const HTTP2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until the listener fails.
pub async fn serve(st: Arc<AppState>, listener: TcpListener, tls: Arc<rustls::ServerConfig>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let (tcp, peer_addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let st = st.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer_addr, error = %e, "tls handshake failed");
                    return;
                }
            };
            let peer = PeerCert(
                tls.get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| skiff_pki::client_cert_identity(c.as_ref()).ok())
                    .map(Arc::new),
            );
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                let st = st.clone();
                async move { Ok::<_, Infallible>(handlers::handle(st, req.map(Body::new)).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            // HTTP/2 PINGs find a peer that vanished without closing (a node that lost power or
            // its network): its agent tunnel and watches end within 25 s instead of when TCP
            // gives up, so requests for that node answer 503 at once.
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive_interval(Some(HTTP2_PING_INTERVAL))
                .keep_alive_timeout(HTTP2_PING_TIMEOUT);
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                .await
            {
                tracing::debug!(%peer_addr, error = %e, "connection ended with an error");
            }
        });
    }
}
