//! End-to-end: admission webhooks with the real kubectl. The test serves the webhooks itself
//! over HTTPS on loopback (a CA and a 127.0.0.1 certificate it generates with rcgen, plain
//! rustls on threads): a validating webhook refuses a ConfigMap labelled `deny=yes` with its
//! message and warns otherwise, a namespaceSelector exempts a namespace, a mutating webhook's
//! JSON patch adds a label, and a webhook that is down is skipped with `failurePolicy: Ignore`
//! and refuses with upstream's error under `Fail`.

use base64::Engine;
use serde_json::{json, Value};
use skiff_e2e::tlsserver::{TlsServer, TlsStream};
use skiff_e2e::*;
use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One keep-alive HTTPS connection: requests answered until the client leaves, the server
/// stops, or 30 s pass without a request.
fn serve(mut tls: TlsStream, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        if tls.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let mut len = 0usize;
        loop {
            let mut h = String::new();
            if tls.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; len];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let review: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let answer = serde_json::to_vec(&respond(&path, &review)).expect("json");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        let out = tls.get_mut();
        if out.write_all(head.as_bytes()).is_err()
            || out.write_all(&answer).is_err()
            || out.flush().is_err()
        {
            return;
        }
    }
}

/// The test webhooks: `/validate` denies `deny=yes` and warns otherwise, `/mutate` adds
/// `mutated=yes`, anything else allows.
fn respond(path: &str, review: &Value) -> Value {
    let req = &review["request"];
    let labels = &req["object"]["metadata"]["labels"];
    let mut resp = json!({"uid": req["uid"], "allowed": true});
    match path.split('?').next().unwrap_or("") {
        "/validate" => {
            if labels["deny"] == "yes" {
                resp["allowed"] = json!(false);
                // As controller-runtime's `admission.Denied`: 403 with reason Forbidden.
                resp["status"] =
                    json!({"code": 403, "reason": "Forbidden", "message": "no deny=yes here"});
            } else {
                resp["warnings"] = json!(["checked by the skiff-e2e webhook"]);
            }
        }
        "/mutate" => {
            let patch = if labels.is_object() {
                json!([{"op": "add", "path": "/metadata/labels/mutated", "value": "yes"}])
            } else {
                json!([{"op": "add", "path": "/metadata/labels", "value": {"mutated": "yes"}}])
            };
            resp["patchType"] = json!("JSONPatch");
            resp["patch"] = json!(base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&patch).expect("json")));
        }
        _ => {}
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
}

fn configmap(name: &str, ns: &str, labels: Value) -> String {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": ns, "labels": labels},
           "data": {"k": "v"}})
    .to_string()
}

/// A webhook configuration on ConfigMap creates; `hook` fields override the defaults.
fn config(kind: &str, name: &str, hook: Value) -> String {
    let mut h = json!({
        "name": format!("{name}.skiff.test"),
        "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                   "resources": ["configmaps"]}],
        "sideEffects": "None",
        "admissionReviewVersions": ["v1"],
        "timeoutSeconds": 5,
    });
    for (k, v) in hook.as_object().expect("object") {
        h[k] = v.clone();
    }
    json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
           "metadata": {"name": name}, "webhooks": [h]})
    .to_string()
}

#[test]
fn validating_mutating_and_failing_webhooks() {
    let c = Cluster::start();
    let hooks = TlsServer::start("skiff-e2e webhook CA", "127.0.0.1", serve);
    let ns = c.namespace("hooked");
    let free = c.namespace("exempt");
    c.kubectl(&["label", "namespace", &free, "webhook-skip=true"])
        .clean();
    let url = |p: &str| format!("https://127.0.0.1:{}{p}", hooks.port);

    // A validating webhook on ConfigMaps outside namespaces labelled webhook-skip.
    let vwc = config(
        "ValidatingWebhookConfiguration",
        "deny",
        json!({"clientConfig": {"url": url("/validate"), "caBundle": hooks.ca_bundle()},
               "namespaceSelector": {"matchExpressions": [{"key": "webhook-skip", "operator": "DoesNotExist"}]}}),
    );
    c.expect(
        &c.kubectl_stdin(&["create", "-f", "-"], &vwc),
        0,
        "validatingwebhookconfiguration.admissionregistration.k8s.io/deny created\n",
        "",
    );
    c.expect_table(
        &c.kubectl(&["get", "validatingwebhookconfigurations"]),
        "NAME   WEBHOOKS   AGE\ndeny   1          <age>\n",
    );
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("bad", &ns, json!({"deny": "yes"})),
        ),
        1,
        "",
        "Error from server (Forbidden): error when creating \"STDIN\": admission webhook \"deny.skiff.test\" denied the request: no deny=yes here\n",
    );
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("fine", &ns, json!({"deny": "no"})),
        ),
        0,
        "configmap/fine created\n",
        "Warning: checked by the skiff-e2e webhook\n",
    );
    // The namespace selector exempts the labelled namespace.
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("bad", &free, json!({"deny": "yes"})),
        ),
        0,
        "configmap/bad created\n",
        "",
    );

    // A mutating webhook (objectSelector mutate=yes) adds a label by JSON patch.
    let mwc = config(
        "MutatingWebhookConfiguration",
        "label",
        json!({"clientConfig": {"url": url("/mutate"), "caBundle": hooks.ca_bundle()},
               "objectSelector": {"matchLabels": {"mutate": "yes"}}}),
    );
    c.kubectl_stdin(&["create", "-f", "-"], &mwc).clean();
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &configmap("patched", &free, json!({"mutate": "yes"})),
    )
    .clean();
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &configmap("untouched", &free, json!({"mutate": "no"})),
    )
    .clean();
    c.expect_table(
        &c.kubectl(&["get", "cm", "patched", "untouched", "-n", &free, "-L", "mutated"]),
        "NAME        DATA   AGE     MUTATED\npatched     1      <age>   yes\nuntouched   1      <age>   \n",
    );

    // A webhook that is down: Ignore lets the write through, Fail refuses it.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let down_port = closed.local_addr().expect("addr").port();
    drop(closed);
    let down_url = format!("https://127.0.0.1:{down_port}/validate");
    let down = |policy: &str| {
        config(
            "ValidatingWebhookConfiguration",
            "down",
            json!({"clientConfig": {"url": down_url, "caBundle": hooks.ca_bundle()},
                   "failurePolicy": policy,
                   "objectSelector": {"matchLabels": {"down-test": "yes"}}}),
        )
    };
    c.kubectl_stdin(&["apply", "-f", "-"], &down("Ignore"))
        .clean();
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("ignored", &free, json!({"down-test": "yes"})),
        ),
        0,
        "configmap/ignored created\n",
        "",
    );
    c.kubectl_stdin(&["apply", "-f", "-"], &down("Fail"))
        .clean();
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("refused", &free, json!({"down-test": "yes"})),
        ),
        1,
        "",
        &format!("Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: failed calling webhook \"down.skiff.test\": failed to call webhook: Post \"{down_url}?timeout=5s\": dial tcp 127.0.0.1:{down_port}: connect: connection refused\n"),
    );
    // A false matchCondition skips the webhook: the down one is not called for `skipped-*`.
    let skip = config(
        "ValidatingWebhookConfiguration",
        "down",
        json!({"clientConfig": {"url": down_url, "caBundle": hooks.ca_bundle()},
               "failurePolicy": "Fail",
               "objectSelector": {"matchLabels": {"down-test": "yes"}},
               "matchConditions": [{"name": "not-skipped",
                   "expression": "!object.metadata.name.startsWith('skipped')"}]}),
    );
    c.kubectl_stdin(&["apply", "-f", "-"], &skip).clean();
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("skipped-1", &free, json!({"down-test": "yes"})),
        ),
        0,
        "configmap/skipped-1 created\n",
        "",
    );
    c.expect(
        &c.kubectl_stdin(
            &["create", "-f", "-"],
            &configmap("refused", &free, json!({"down-test": "yes"})),
        ),
        1,
        "",
        &format!("Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: failed calling webhook \"down.skiff.test\": failed to call webhook: Post \"{down_url}?timeout=5s\": dial tcp 127.0.0.1:{down_port}: connect: connection refused\n"),
    );
    // Deleting the configuration removes the webhook at once.
    c.kubectl(&["delete", "validatingwebhookconfiguration", "down"])
        .clean();
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &configmap("refused", &free, json!({"down-test": "yes"})),
    )
    .clean();
    // An invalid configuration is refused with upstream's field errors.
    let bad = config(
        "ValidatingWebhookConfiguration",
        "bad",
        json!({"name": "short.name", "clientConfig": {"url": "http://127.0.0.1/x"}, "timeoutSeconds": 31}),
    );
    c.expect(
        &c.kubectl_stdin(&["create", "-f", "-"], &bad),
        1,
        "",
        "The ValidatingWebhookConfiguration \"bad\" is invalid: \n* webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots\n* webhooks[0].timeoutSeconds: Invalid value: 31: the timeout value must be between 1 and 30 seconds\n* webhooks[0].clientConfig.url: Invalid value: \"http\": 'https' is the only allowed URL scheme; desired format: https://host[/path]\n",
    );
}

/// `/openapi/v2` in protobuf: kubectl's validation fallback (a `kind: List`, a kind the server
/// does not serve) works as against upstream.
#[test]
fn openapi_v2_protobuf_validation_fallback() {
    let c = Cluster::start();
    let ns = c.namespace("listed");
    let list = |extra: Value| {
        let mut a = json!({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": "a", "namespace": ns}, "data": {"k": "v"}});
        for (k, v) in extra.as_object().expect("object") {
            a[k] = v.clone();
        }
        json!({"apiVersion": "v1", "kind": "List", "items": [a,
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": ns}}]})
        .to_string()
    };
    // Client-side validation of the items (from the protobuf definitions) catches a typo.
    let out = c.kubectl_stdin(&["create", "-f", "-"], &list(json!({"datax": {"k": "v"}})));
    c.expect(
        &out,
        1,
        "",
        "error: error validating \"STDIN\": error validating data: ValidationError(ConfigMap): unknown field \"datax\" in io.k8s.api.core.v1.ConfigMap; if you choose to ignore these errors, turn validation off with --validate=false\n",
    );
    c.expect(
        &c.kubectl_stdin(&["create", "-f", "-"], &list(json!({}))),
        0,
        "configmap/a created\nconfigmap/b created\n",
        "",
    );
    let widget =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    c.expect(
        &c.kubectl_stdin(&["create", "-f", "-"], &widget.to_string()),
        1,
        "",
        "error: resource mapping not found for name: \"w\" namespace: \"\" from \"STDIN\": no matches for kind \"Widget\" in version \"example.com/v1\"\nensure CRDs are installed first\n",
    );
}
