//! The CertificateSigningRequest signer (kube-controller-manager's `csrsigning`): an approved,
//! not yet failed or issued request for `kubernetes.io/kube-apiserver-client` (client CA) or
//! `kubernetes.io/kubelet-serving` (server CA) whose usages pass upstream's checks gets
//! `status.certificate`; one that fails them gets a `Failed` condition with reason
//! `SignerValidationFailure` and upstream's message. Requests for other signers are left alone.

use crate::controller::{Action, Controller};
use crate::informer::{Factory, Store};
use crate::util::ObjectKey;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use skiff_pki::{Pki, KUBELET_SERVING_SIGNER, KUBE_APISERVER_CLIENT_SIGNER};
use std::sync::Arc;
use std::time::Duration;

/// What the signer does with one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Not approved, already failed or issued, or another signer's.
    Nothing,
    /// Refused: the `Failed` condition's message.
    Fail(String),
    /// Sign with these usages and requested duration.
    Sign {
        signer: String,
        usages: Vec<String>,
        seconds: Option<i64>,
    },
}

fn has_true(csr: &CertificateSigningRequest, type_: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

/// Decides what to do with `csr`, upstream's order: approval, failure, issued, signer, then
/// the signer's checks of the request.
pub fn plan(csr: &CertificateSigningRequest) -> Step {
    if !has_true(csr, "Approved") || has_true(csr, "Denied") || has_true(csr, "Failed") {
        return Step::Nothing;
    }
    if csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty())
    {
        return Step::Nothing;
    }
    let signer = csr.spec.signer_name.as_str();
    if signer != KUBE_APISERVER_CLIENT_SIGNER && signer != KUBELET_SERVING_SIGNER {
        return Step::Nothing;
    }
    let usages: Vec<&str> = csr
        .spec
        .usages
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let req = match skiff_pki::requested_subject(&csr.spec.request.0) {
        Ok(r) => r,
        Err(e) => return Step::Fail(format!("unable to parse csr: {e}")),
    };
    let checked = if signer == KUBE_APISERVER_CLIENT_SIGNER {
        skiff_pki::check_client_usages(&usages)
    } else {
        skiff_pki::check_kubelet_serving(&req, &usages)
    };
    match checked {
        Err(msg) => Step::Fail(msg),
        Ok(()) => Step::Sign {
            signer: signer.to_string(),
            usages: usages.iter().map(|u| u.to_string()).collect(),
            seconds: csr.spec.expiration_seconds.map(i64::from),
        },
    }
}

struct Ctx {
    client: kube::Client,
    csrs: Arc<Store<CertificateSigningRequest>>,
    pki: Arc<Pki>,
}

async fn reconcile(ctx: Arc<Ctx>, key: ObjectKey) -> Result<Action, kube::Error> {
    let Some(csr) = ctx.csrs.get("", &key.name) else {
        return Ok(Action::Done);
    };
    let api: kube::Api<CertificateSigningRequest> = kube::Api::all(ctx.client.clone());
    let pp = kube::api::PatchParams::default();
    let status = match plan(&csr) {
        Step::Nothing => return Ok(Action::Done),
        Step::Fail(message) => {
            tracing::info!(csr = %key.name, %message, "certificate request refused by its signer");
            let mut conditions: Vec<serde_json::Value> = csr
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect();
            let now = jiff::Timestamp::now()
                .strftime("%Y-%m-%dT%H:%M:%SZ")
                .to_string();
            conditions.push(serde_json::json!({"type": "Failed", "status": "True",
                "reason": "SignerValidationFailure", "message": message,
                "lastUpdateTime": now, "lastTransitionTime": now}));
            serde_json::json!({"conditions": conditions})
        }
        Step::Sign {
            signer,
            usages,
            seconds,
        } => {
            let usages: Vec<&str> = usages.iter().map(String::as_str).collect();
            match ctx
                .pki
                .sign_requested(&csr.spec.request.0, &signer, &usages, seconds)
            {
                Ok(pem) => {
                    tracing::info!(csr = %key.name, %signer, "certificate issued");
                    let b64 = k8s_openapi::ByteString(pem.into_bytes());
                    serde_json::json!({"certificate": b64})
                }
                Err(e) => {
                    tracing::warn!(csr = %key.name, error = %e, "signing failed, retrying");
                    return Ok(Action::RequeueAfter(Duration::from_secs(10)));
                }
            }
        }
    };
    let patch = serde_json::json!({ "status": status });
    match api
        .patch_status(&key.name, &pp, &kube::api::Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(Action::Done),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Action::Done),
        Err(e) => Err(e),
    }
}

/// Registers the signer when the server handed its CAs over (`Config::signer`).
pub fn start(factory: &Factory, cfg: Arc<crate::Config>) {
    let Some(pki) = cfg.signer.clone() else {
        return;
    };
    let csrs = factory.store::<CertificateSigningRequest>();
    let ctx = Arc::new(Ctx {
        client: factory.client(),
        csrs: csrs.clone(),
        pki,
    });
    Controller::new(factory, "csrsigning")
        .reconciles::<CertificateSigningRequest>()
        .backoff(Duration::from_millis(500), Duration::from_secs(30))
        .run(ctx, reconcile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request_pem(cn: &str) -> String {
        let key = skiff_pki::generate_key_pem().unwrap();
        skiff_pki::csr_pem(&key, cn).unwrap()
    }

    fn csr(
        signer: &str,
        usages: &[&str],
        conditions: serde_json::Value,
    ) -> CertificateSigningRequest {
        let req = k8s_openapi::ByteString(request_pem("alice").into_bytes());
        serde_json::from_value(json!({
            "metadata": {"name": "alice"},
            "spec": {"signerName": signer, "usages": usages, "request": req, "expirationSeconds": 3600},
            "status": {"conditions": conditions},
        }))
        .unwrap()
    }

    #[test]
    fn signs_only_approved_requests_of_its_signers() {
        let approved = json!([{"type": "Approved", "status": "True"}]);
        let client = ["digital signature", "client auth"];
        assert_eq!(
            plan(&csr(KUBE_APISERVER_CLIENT_SIGNER, &client, json!([]))),
            Step::Nothing
        );
        assert_eq!(
            plan(&csr(
                KUBE_APISERVER_CLIENT_SIGNER,
                &client,
                approved.clone()
            )),
            Step::Sign {
                signer: KUBE_APISERVER_CLIENT_SIGNER.into(),
                usages: vec!["digital signature".into(), "client auth".into()],
                seconds: Some(3600)
            }
        );
        assert_eq!(
            plan(&csr("example.com/mine", &client, approved.clone())),
            Step::Nothing
        );
        assert_eq!(
            plan(&csr(
                KUBE_APISERVER_CLIENT_SIGNER,
                &client,
                json!([{"type": "Approved", "status": "True"}, {"type": "Failed", "status": "True"}])
            )),
            Step::Nothing
        );
        assert_eq!(
            plan(&csr(
                KUBE_APISERVER_CLIENT_SIGNER,
                &["server auth"],
                approved.clone()
            )),
            Step::Fail("invalid usage for client certificate: server auth".into())
        );
        // A kubelet-serving request must come from a node identity with SANs.
        assert_eq!(
            plan(&csr(
                KUBELET_SERVING_SIGNER,
                &["digital signature", "server auth"],
                approved
            )),
            Step::Fail("subject organization is not system:nodes".into())
        );
    }
}
