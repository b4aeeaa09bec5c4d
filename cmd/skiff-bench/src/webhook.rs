//! The admission webhook phase: ConfigMap create latency through a no-op validating webhook
//! against the same creates without one, interleaved rounds on the main server. The webhook
//! is served by the bench itself over HTTPS on loopback (its own CA, rcgen); one
//! ValidatingWebhookConfiguration selects only ConfigMaps labelled `bench-webhook: "yes"`, so
//! both sides go through the same rule matching and differ only by the call. The overhead
//! per request is the p50/p99 difference.

use crate::error::{BenchError, Result};
use crate::http::{Conn, Target};
use crate::load::{http_load, Limits, LoadResult, MakeRequest};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Method;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const NAMESPACE: &str = "default";
const CONFIG: &str = "bench-noop";

/// What the phase measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct WebhookReport {
    pub clients: usize,
    pub rounds: usize,
    pub plain: Vec<LoadResult>,
    pub hooked: Vec<LoadResult>,
    /// AdmissionReviews the bench's webhook answered.
    pub calls: u64,
}

/// The loopback HTTPS webhook: allows everything; stops when dropped.
struct Hook {
    port: u16,
    ca_pem: String,
    calls: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn phase_err(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Phase(format!("webhook phase: {what}: {e}"))
}

async fn start_hook() -> Result<Hook> {
    let ca_key = rcgen::KeyPair::generate().map_err(|e| phase_err("ca key", e))?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| phase_err("ca params", e))?;
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca =
        rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(|e| phase_err("ca", e))?;
    let key = rcgen::KeyPair::generate().map_err(|e| phase_err("key", e))?;
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .map_err(|e| phase_err("params", e))?
        .signed_by(&key, &ca)
        .map_err(|e| phase_err("certificate", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| phase_err("tls", e))?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .map_err(|e| phase_err("tls", e))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| phase_err("bind", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| phase_err("bind", e))?
        .port();
    let calls = Arc::new(AtomicU64::new(0));
    let calls2 = calls.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let calls = calls2.clone();
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let calls = calls.clone();
                        async move {
                            let body = req.into_body().collect().await?.to_bytes();
                            let review: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            calls.fetch_add(1, Ordering::Relaxed);
                            let answer = serde_json::json!({
                            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                            "response": {"uid": review["request"]["uid"], "allowed": true}});
                            Ok::<_, hyper::Error>(hyper::Response::new(Full::new(Bytes::from(
                                answer.to_string(),
                            ))))
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Ok(Hook {
        port,
        ca_pem: ca.pem(),
        calls,
        task,
    })
}

fn configmap_body(name: &str, hooked: bool) -> Bytes {
    let labels = if hooked {
        serde_json::json!({"bench-webhook": "yes"})
    } else {
        serde_json::json!({"bench-webhook": "no"})
    };
    Bytes::from(
        serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "data": {"note": "x".repeat(64)}
        })
        .to_string(),
    )
}

/// Runs the phase: `rounds` interleaved pairs (no webhook, then through the webhook).
pub async fn run(
    target: &Target,
    server_pid: u32,
    clients: usize,
    rounds: usize,
    limits: Limits,
) -> Result<WebhookReport> {
    let hook = start_hook().await?;
    let config = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIG},
        "webhooks": [{
            "name": "noop.bench.skiff.io",
            "clientConfig": {"url": format!("https://127.0.0.1:{}/validate", hook.port),
                             "caBundle": base64::engine::general_purpose::STANDARD.encode(&hook.ca_pem)},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}],
            "objectSelector": {"matchLabels": {"bench-webhook": "yes"}},
            "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
        }]
    });
    let mut c = Conn::connect(target).await?;
    c.expect(
        Method::POST,
        "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
        Some(Bytes::from(config.to_string())),
        201,
    )
    .await?;
    let mut report = WebhookReport {
        clients,
        rounds,
        ..Default::default()
    };
    let path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
    for round in 0..rounds {
        for hooked in [false, true] {
            let p = path.clone();
            let make: MakeRequest = Arc::new(move |i| {
                let name = format!("hook-bench-{hooked}-r{round}-{i}");
                (Method::POST, p.clone(), Some(configmap_body(&name, hooked)))
            });
            let mut r = http_load(target, clients, limits, 201, make, Some(server_pid)).await?;
            r.round = round;
            if r.ops == 0 {
                return Err(BenchError::Phase(format!(
                    "webhook phase: no ConfigMap create succeeded (webhook {hooked}): {}",
                    r.first_error.clone().unwrap_or_default()
                )));
            }
            if hooked {
                report.hooked.push(r);
            } else {
                report.plain.push(r);
            }
        }
    }
    report.calls = hook.calls.load(Ordering::Relaxed);
    let hooked_ops: u64 = report.hooked.iter().map(|r| r.ops).sum();
    if report.calls < hooked_ops {
        return Err(BenchError::Phase(format!(
            "webhook phase: {hooked_ops} hooked creates but only {} webhook calls",
            report.calls
        )));
    }
    let _ = c
        .request(
            Method::DELETE,
            &format!(
                "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/{CONFIG}"
            ),
            None,
        )
        .await;
    Ok(report)
}

/// The markdown section of the report.
pub fn markdown(r: &WebhookReport) -> String {
    let mut o = format!(
        "\n### Admission webhook round trip (ConfigMap creates through a no-op validating webhook on loopback HTTPS vs none, {} clients, {} interleaved rounds)\n\n\
         | round | webhook | creates | creates/s | p50 ms | p99 ms |\n|---:|---|---:|---:|---:|---:|\n",
        r.clients, r.rounds
    );
    for (plain, hooked) in r.plain.iter().zip(&r.hooked) {
        for (what, x) in [("none", plain), ("no-op", hooked)] {
            o.push_str(&format!(
                "| {} | {what} | {} | {:.0} | {:.2} | {:.2} |\n",
                x.round, x.ops, x.ops_per_s, x.latency.p50_ms, x.latency.p99_ms
            ));
        }
    }
    let (p50, p99) = overhead(r);
    o.push_str(&format!(
        "\nWebhook overhead per create: p50 {p50:+.2} ms, p99 {p99:+.2} ms ({} webhook calls).\n",
        r.calls
    ));
    o
}

/// Mean over rounds of (hooked − plain) at p50 and p99, in ms.
pub fn overhead(r: &WebhookReport) -> (f64, f64) {
    let n = r.plain.len().min(r.hooked.len()).max(1) as f64;
    let d = |f: fn(&LoadResult) -> f64| {
        r.plain
            .iter()
            .zip(&r.hooked)
            .map(|(p, h)| f(h) - f(p))
            .sum::<f64>()
            / n
    };
    (d(|x| x.latency.p50_ms), d(|x| x.latency.p99_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hooked_bodies_carry_the_selected_label() {
        let h: serde_json::Value = serde_json::from_slice(&configmap_body("a", true)).unwrap();
        let p: serde_json::Value = serde_json::from_slice(&configmap_body("a", false)).unwrap();
        assert_eq!(h["metadata"]["labels"]["bench-webhook"], "yes");
        assert_eq!(p["metadata"]["labels"]["bench-webhook"], "no");
        assert_eq!(h["data"], p["data"]);
        let mut plain = LoadResult::default();
        plain.latency.p50_ms = 1.0;
        plain.latency.p99_ms = 3.0;
        let mut hooked = LoadResult::default();
        hooked.latency.p50_ms = 1.5;
        hooked.latency.p99_ms = 4.0;
        let r = WebhookReport {
            clients: 1,
            rounds: 1,
            plain: vec![plain],
            hooked: vec![hooked],
            calls: 1,
        };
        assert_eq!(overhead(&r), (0.5, 1.0));
        assert!(markdown(&r).contains("p50 +0.50 ms, p99 +1.00 ms"));
    }
}
