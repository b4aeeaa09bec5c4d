//! The custom resource phase: create throughput of a custom resource whose CRD has a
//! structural schema (types, bounds, a pattern, a default) and CEL rules
//! (`x-kubernetes-validations`, one with `messageExpression`), against ConfigMap creates of
//! the same size in the same run — interleaved rounds on the same server, the same closed-loop
//! clients, so both see the same machine. Issue 13's target: the custom resource at ≥ 0.7x
//! the ConfigMaps' rate.

use crate::error::{BenchError, Result};
use crate::http::{Conn, Target};
use crate::load::{http_load, Limits, LoadResult, MakeRequest};
use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "bench.skiff.io";
const NAMESPACE: &str = "default";
/// How long the CRD may take to be served.
const SERVED_WITHIN: Duration = Duration::from_secs(20);

/// What the phase measured.
#[derive(Debug, Clone, Serialize, Default)]
pub struct CrdReport {
    pub clients: usize,
    pub rounds: usize,
    pub configmap: Vec<LoadResult>,
    pub custom: Vec<LoadResult>,
    /// Custom resource creates/s over ConfigMap creates/s, all rounds together.
    pub ratio: f64,
}

fn crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("benchwidgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "benchwidgets", "singular": "benchwidget", "kind": "BenchWidget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object",
                        "required": ["image", "replicas"],
                        "x-kubernetes-validations": [
                            {"rule": "self.minReplicas <= self.replicas",
                             "message": "replicas should be at least minReplicas"},
                            {"rule": "self.replicas <= 100",
                             "messageExpression": "'replicas ' + string(self.replicas) + ' is above 100'"}],
                        "properties": {
                            "image": {"type": "string", "pattern": "^[a-z0-9./:-]+$", "maxLength": 200},
                            "replicas": {"type": "integer", "minimum": 0},
                            "minReplicas": {"type": "integer", "default": 1},
                            "note": {"type": "string"}}}}}}
            }]
        }
    })
}

fn custom_body(name: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "BenchWidget",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"image": "registry.local/app:1.0", "replicas": 3, "note": "x".repeat(64)}
        })
        .to_string(),
    )
}

fn configmap_body(name: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "data": {"image": "registry.local/app:1.0", "replicas": "3", "note": "x".repeat(64)}
        })
        .to_string(),
    )
}

/// Creates the CRD and waits until its resource is served.
async fn install(target: &Target) -> Result<()> {
    let mut c = Conn::connect(target).await?;
    c.expect(
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        Some(Bytes::from(crd().to_string())),
        201,
    )
    .await?;
    let path = format!("/apis/{GROUP}/v1/namespaces/{NAMESPACE}/benchwidgets");
    let start = Instant::now();
    loop {
        let (status, _) = c.request(Method::GET, &path, None).await?;
        if status == 200 {
            return Ok(());
        }
        if start.elapsed() > SERVED_WITHIN {
            return Err(BenchError::Phase(format!(
                "the bench CRD was not served within {SERVED_WITHIN:?} (GET {path}: {status})"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One check that the rules run: a widget breaking a CEL rule is refused with its message.
async fn check_rule(target: &Target) -> Result<()> {
    let mut c = Conn::connect(target).await?;
    let body = serde_json::json!({
        "apiVersion": format!("{GROUP}/v1"), "kind": "BenchWidget",
        "metadata": {"name": "too-many", "namespace": NAMESPACE},
        "spec": {"image": "a", "replicas": 500}
    });
    let (status, answer) = c
        .request(
            Method::POST,
            &format!("/apis/{GROUP}/v1/namespaces/{NAMESPACE}/benchwidgets"),
            Some(Bytes::from(body.to_string())),
        )
        .await?;
    let text = String::from_utf8_lossy(&answer);
    if status != 422 || !text.contains("replicas 500 is above 100") {
        return Err(BenchError::Phase(format!(
            "a widget breaking the CEL rule was not refused with its message: {status} {text}"
        )));
    }
    Ok(())
}

/// Runs the phase: `rounds` interleaved pairs (ConfigMaps, then custom resources).
pub async fn run(
    target: &Target,
    server_pid: u32,
    clients: usize,
    rounds: usize,
    limits: Limits,
) -> Result<CrdReport> {
    install(target).await?;
    check_rule(target).await?;
    let mut report = CrdReport {
        clients,
        rounds,
        ..Default::default()
    };
    for round in 0..rounds {
        let cm_path = format!("/api/v1/namespaces/{NAMESPACE}/configmaps");
        let make: MakeRequest = Arc::new(move |i| {
            let name = format!("crd-bench-r{round}-{i}");
            (Method::POST, cm_path.clone(), Some(configmap_body(&name)))
        });
        let mut cm = http_load(target, clients, limits, 201, make, Some(server_pid)).await?;
        cm.round = round;
        let cr_path = format!("/apis/{GROUP}/v1/namespaces/{NAMESPACE}/benchwidgets");
        let make: MakeRequest = Arc::new(move |i| {
            let name = format!("crd-bench-r{round}-{i}");
            (Method::POST, cr_path.clone(), Some(custom_body(&name)))
        });
        let mut cr = http_load(target, clients, limits, 201, make, Some(server_pid)).await?;
        cr.round = round;
        for (what, r) in [("ConfigMap", &cm), ("custom resource", &cr)] {
            if r.ops == 0 {
                return Err(BenchError::Phase(format!(
                    "no {what} create succeeded: {}",
                    r.first_error.clone().unwrap_or_default()
                )));
            }
        }
        report.configmap.push(cm);
        report.custom.push(cr);
    }
    let rate = |rs: &[LoadResult]| {
        let ops: u64 = rs.iter().map(|r| r.ops).sum();
        let secs: f64 = rs.iter().map(|r| r.elapsed_s).sum();
        if secs > 0.0 {
            ops as f64 / secs
        } else {
            0.0
        }
    };
    let cm = rate(&report.configmap);
    report.ratio = if cm > 0.0 {
        rate(&report.custom) / cm
    } else {
        0.0
    };
    Ok(report)
}

/// The markdown section of the report.
pub fn markdown(r: &CrdReport) -> String {
    let mut o = format!(
        "\n### Custom resources (creates with a structural schema and CEL rules vs ConfigMaps, {} clients, {} interleaved rounds)\n\n\
         | round | kind | creates | creates/s | p50 ms | p99 ms | server CPU s |\n|---:|---|---:|---:|---:|---:|---:|\n",
        r.clients, r.rounds
    );
    for (cm, cr) in r.configmap.iter().zip(&r.custom) {
        for (kind, x) in [("ConfigMap", cm), ("BenchWidget (CRD + CEL)", cr)] {
            o.push_str(&format!(
                "| {} | {kind} | {} | {:.0} | {:.2} | {:.2} | {} |\n",
                x.round,
                x.ops,
                x.ops_per_s,
                x.latency.p50_ms,
                x.latency.p99_ms,
                x.server_cpu_s
                    .map(|c| format!("{c:.2}"))
                    .unwrap_or_else(|| "-".into())
            ));
        }
    }
    o.push_str(&format!(
        "\nCustom resource creates at {:.2}x the ConfigMap rate (target ≥ 0.7x).\n",
        r.ratio
    ));
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_same_payload() {
        let cr: serde_json::Value = serde_json::from_slice(&custom_body("a")).unwrap();
        let cm: serde_json::Value = serde_json::from_slice(&configmap_body("a")).unwrap();
        assert_eq!(cr["spec"]["note"], cm["data"]["note"]);
        assert_eq!(
            crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
                ["x-kubernetes-validations"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let md = markdown(&CrdReport {
            clients: 4,
            rounds: 1,
            configmap: vec![LoadResult::default()],
            custom: vec![LoadResult::default()],
            ratio: 0.9,
        });
        assert!(md.contains("at 0.90x the ConfigMap rate"));
    }
}
