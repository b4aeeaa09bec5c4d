//! End-to-end: the API-machinery and storage groups with the real kubectl on a server without
//! nodes — RuntimeClass and the CSI objects with upstream's columns, flowcontrol's bootstrap
//! objects, `kubectl auth can-i --list` (SelfSubjectRulesReview) for the admin and a service
//! account, CertificateSigningRequests approved, denied and signed (a signed client
//! certificate works with kubectl), and the local APIServices.

use base64::Engine as _;
use skiff_e2e::*;
use std::time::Duration;

/// The rows of a `kubectl get` table, split on whitespace (the header first).
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}

fn row<'a>(rows: &'a [Vec<String>], name: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:?}"))
}

#[test]
fn runtime_class_csi_flowcontrol_and_rules_review() {
    let c = Cluster::start();
    let ns = c.namespace("apigroups");

    c.kubectl_stdin(
        &["apply", "-f", "-"],
        r#"
apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: gvisor}
handler: runsc
---
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata: {name: hostpath.csi.k8s.io}
spec:
  attachRequired: false
  podInfoOnMount: true
  volumeLifecycleModes: [Persistent, Ephemeral]
---
apiVersion: storage.k8s.io/v1
kind: CSINode
metadata: {name: node-a}
spec:
  drivers:
  - {name: hostpath.csi.k8s.io, nodeID: node-a}
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata: {name: va-1}
spec:
  attacher: hostpath.csi.k8s.io
  nodeName: node-a
  source: {persistentVolumeName: pv-1}
"#,
    )
    .success();
    c.kubectl_stdin(
        &["apply", "-n", &ns, "-f", "-"],
        r#"
apiVersion: storage.k8s.io/v1
kind: CSIStorageCapacity
metadata: {name: cap-1}
storageClassName: fast
capacity: 10Gi
"#,
    )
    .success();

    let out = c.kubectl(&["get", "runtimeclass"]);
    let t = rows(&out.success().stdout);
    assert_eq!(t[0], ["NAME", "HANDLER", "AGE"]);
    assert_eq!(row(&t, "gvisor")[1], "runsc");

    let t = rows(&c.kubectl(&["get", "csidrivers"]).success().stdout);
    assert_eq!(
        t[0],
        [
            "NAME",
            "ATTACHREQUIRED",
            "PODINFOONMOUNT",
            "STORAGECAPACITY",
            "TOKENREQUESTS",
            "REQUIRESREPUBLISH",
            "MODES",
            "AGE"
        ]
    );
    assert_eq!(
        row(&t, "hostpath.csi.k8s.io")[1..7],
        [
            "false",
            "true",
            "false",
            "<unset>",
            "false",
            "Persistent,Ephemeral"
        ]
    );
    let t = rows(&c.kubectl(&["get", "csinodes"]).success().stdout);
    assert_eq!(t[0], ["NAME", "DRIVERS", "AGE"]);
    assert_eq!(row(&t, "node-a")[1], "1");
    let t = rows(&c.kubectl(&["get", "volumeattachments"]).success().stdout);
    assert_eq!(t[0], ["NAME", "ATTACHER", "PV", "NODE", "ATTACHED", "AGE"]);
    assert_eq!(
        row(&t, "va-1")[1..5],
        ["hostpath.csi.k8s.io", "pv-1", "node-a", "false"]
    );
    let t = rows(
        &c.kubectl(&["get", "csistoragecapacities", "-n", &ns])
            .success()
            .stdout,
    );
    assert_eq!(t[0], ["NAME", "STORAGECLASSNAME", "CAPACITY"]);
    assert_eq!(row(&t, "cap-1")[1..3], ["fast", "10Gi"]);

    // flowcontrol: upstream's bootstrap objects, read by kubectl.
    let t = rows(&c.kubectl(&["get", "flowschemas"]).success().stdout);
    assert_eq!(
        t[0],
        [
            "NAME",
            "PRIORITYLEVEL",
            "MATCHINGPRECEDENCE",
            "DISTINGUISHERMETHOD",
            "AGE",
            "MISSINGPL"
        ]
    );
    let exempt = row(&t, "exempt");
    assert_eq!(
        [&exempt[1], &exempt[2], &exempt[3], &exempt[5]],
        ["exempt", "1", "<none>", "False"]
    );
    let catch_all = row(&t, "catch-all");
    assert_eq!(
        [&catch_all[1], &catch_all[2], &catch_all[3]],
        ["catch-all", "10000", "ByUser"]
    );
    assert_eq!(row(&t, "global-default")[1], "global-default");
    let t = rows(
        &c.kubectl(&["get", "prioritylevelconfigurations"])
            .success()
            .stdout,
    );
    assert_eq!(
        t[0],
        [
            "NAME",
            "TYPE",
            "NOMINALCONCURRENCYSHARES",
            "QUEUES",
            "HANDSIZE",
            "QUEUELENGTHLIMIT",
            "AGE"
        ]
    );
    assert_eq!(
        row(&t, "exempt")[1..6],
        ["Exempt", "<none>", "<none>", "<none>", "<none>"]
    );
    assert_eq!(
        row(&t, "global-default")[1..6],
        ["Limited", "20", "128", "6", "50"]
    );
    assert_eq!(row(&t, "catch-all")[1..4], ["Limited", "5", "<none>"]);

    // kubectl auth can-i --list: the admin holds cluster-admin's rules.
    let out = c.kubectl(&["auth", "can-i", "--list"]);
    let lines: Vec<&str> = out.success().stdout.lines().collect();
    let norm = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    assert_eq!(
        norm(lines[0]),
        "Resources Non-Resource URLs Resource Names Verbs"
    );
    assert_eq!(norm(lines[1]), "*.* [] [] [*]");
    assert_eq!(norm(lines[2]), "[*] [] [*]");
    assert!(
        lines
            .iter()
            .any(|l| norm(l) == "selfsubjectrulesreviews.authorization.k8s.io [] [] [create]"),
        "{out}"
    );

    // A service account with one Role: its rules, and nothing cluster-wide beyond discovery.
    c.kubectl(&["create", "serviceaccount", "bot", "-n", &ns])
        .success();
    c.kubectl(&[
        "create",
        "role",
        "cm-reader",
        "--verb=get,list",
        "--resource=configmaps",
        "--resource-name=settings",
        "-n",
        &ns,
    ])
    .success();
    c.kubectl(&[
        "create",
        "rolebinding",
        "bot-reads",
        "--role=cm-reader",
        &format!("--serviceaccount={ns}:bot"),
        "-n",
        &ns,
    ])
    .success();
    let sa = format!("system:serviceaccount:{ns}:bot");
    let out = c.kubectl(&["auth", "can-i", "--list", "--as", &sa, "-n", &ns]);
    let text = out.success().stdout.clone();
    let got: Vec<String> = text.lines().map(norm).collect();
    assert!(
        got.contains(&"configmaps [] [settings] [get list]".to_string()),
        "{text}"
    );
    assert!(!got.contains(&"*.* [] [] [*]".to_string()), "{text}");
    assert!(
        got.contains(&"[/version] [] [get]".to_string())
            || got.iter().any(|l| l.starts_with("[/version")),
        "{text}"
    );
    let out = c.kubectl(&[
        "auth",
        "can-i",
        "list",
        "configmaps",
        "--as",
        &sa,
        "-n",
        &ns,
    ]);
    assert_eq!(out.stdout.trim(), "no", "{out}");
}

/// A fresh ECDSA key and a PKCS#10 request for `cn` in `org` (rcgen, as a user's openssl).
fn key_and_request(cn: &str, org: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    let req = params.serialize_request(&key).expect("request");
    (key.serialize_pem(), req.pem().expect("pem"))
}

fn csr_yaml(name: &str, request_pem: &str, usages: &str, signer: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(request_pem);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  request: {b64}\n  signerName: {signer}\n  expirationSeconds: 86400\n  usages: {usages}\n"
    )
}

#[test]
fn certificate_signing_requests() {
    let c = Cluster::start();
    let (key, req) = key_and_request("jane", "dev-team");
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &csr_yaml(
            "jane",
            &req,
            "[digital signature, key encipherment, client auth]",
            "kubernetes.io/kube-apiserver-client",
        ),
    )
    .success();
    let admin = c
        .kubectl(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .success()
        .stdout
        .clone();
    let t = rows(&c.kubectl(&["get", "csr"]).success().stdout);
    assert_eq!(
        t[0],
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let jane = row(&t, "jane");
    assert_eq!(
        [&jane[2], &jane[3], &jane[4], &jane[5]],
        [
            "kubernetes.io/kube-apiserver-client",
            admin.as_str(),
            "24h",
            "Pending"
        ]
    );

    let out = c.kubectl(&["certificate", "approve", "jane"]);
    c.expect(
        &out,
        0,
        "certificatesigningrequest.certificates.k8s.io/jane approved\n",
        "",
    );
    let cert_b64 = wait_for(Duration::from_secs(20), "jane's certificate", || {
        let s = c.jsonpath("", "csr/jane", "{.status.certificate}");
        (!s.is_empty()).then_some(s)
    });
    let t = rows(&c.kubectl(&["get", "csr", "jane"]).success().stdout);
    assert_eq!(row(&t, "jane")[5], "Approved,Issued");

    // The signed certificate is a working kubectl identity.
    let cert = base64::engine::general_purpose::STANDARD
        .decode(cert_b64.trim())
        .expect("base64 certificate");
    let ca = std::fs::read(c.ca_file()).expect("ca");
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let kc = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: jane\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: c\n  context:\n    cluster: skiff\n    user: jane\ncurrent-context: c\n",
        c.server_url(),
        b64(&ca),
        b64(&cert),
        b64(key.as_bytes())
    );
    let kc_path = c.write_file("jane.kubeconfig", &kc);
    let out = c.kubectl_with_kubeconfig(&kc_path, &["auth", "whoami"]);
    let t = rows(&out.success().stdout);
    assert_eq!(t[0], ["ATTRIBUTE", "VALUE"]);
    assert_eq!(row(&t, "Username")[1], "jane");
    assert_eq!(
        row(&t, "Groups")[1..],
        ["[dev-team", "system:authenticated]"]
    );

    // A client request with a server usage fails its signer's checks.
    let (_, req) = key_and_request("bad", "dev-team");
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &csr_yaml(
            "bad-usage",
            &req,
            "[client auth, server auth]",
            "kubernetes.io/kube-apiserver-client",
        ),
    )
    .success();
    c.kubectl(&["certificate", "approve", "bad-usage"])
        .success();
    let reason = wait_for(Duration::from_secs(20), "the Failed condition", || {
        let s = c.jsonpath(
            "",
            "csr/bad-usage",
            "{.status.conditions[?(@.type==\"Failed\")].reason}: {.status.conditions[?(@.type==\"Failed\")].message}",
        );
        (s.len() > 2).then_some(s)
    });
    assert_eq!(
        reason,
        "SignerValidationFailure: invalid usage for client certificate: server auth"
    );
    let t = rows(&c.kubectl(&["get", "csr", "bad-usage"]).success().stdout);
    assert_eq!(row(&t, "bad-usage")[5], "Approved,Failed");

    // Denied requests are never signed.
    let (_, req) = key_and_request("nope", "dev-team");
    c.kubectl_stdin(
        &["create", "-f", "-"],
        &csr_yaml(
            "denied",
            &req,
            "[client auth]",
            "kubernetes.io/kube-apiserver-client",
        ),
    )
    .success();
    let out = c.kubectl(&["certificate", "deny", "denied"]);
    c.expect(
        &out,
        0,
        "certificatesigningrequest.certificates.k8s.io/denied denied\n",
        "",
    );
    std::thread::sleep(Duration::from_secs(2));
    let t = rows(&c.kubectl(&["get", "csr", "denied"]).success().stdout);
    assert_eq!(row(&t, "denied")[5], "Denied");

    // An invalid request is refused at create with the field.
    let out = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {name: broken}\nspec:\n  request: bm90IGEgcmVxdWVzdA==\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n",
    );
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("The CertificateSigningRequest \"broken\" is invalid: spec.request: Invalid value: \"<request>\": PEM block type must be CERTIFICATE REQUEST"),
        "{out}"
    );
}

#[test]
fn local_apiservices() {
    let c = Cluster::start();
    let t = rows(&c.kubectl(&["get", "apiservices"]).success().stdout);
    assert_eq!(t[0], ["NAME", "SERVICE", "AVAILABLE", "AGE"]);
    for name in [
        "v1.",
        "v1.apps",
        "v1.certificates.k8s.io",
        "v1.flowcontrol.apiserver.k8s.io",
        "v1.node.k8s.io",
        "v2.autoscaling",
        "v1beta1.metrics.k8s.io",
    ] {
        assert_eq!(row(&t, name)[1..3], ["Local", "True"], "{name}");
    }
}

// --- an aggregated API server: a tiny `wardle.example.com/v1alpha1` on loopback ---

use serde_json::{json, Value};
use skiff_e2e::tlsserver::{TlsServer, TlsStream};
use std::io::{BufRead, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// One keep-alive connection of the `wardle.example.com/v1alpha1` server (its certificate names
/// `api.wardle.svc`, the name the aggregator checks); every wait bounded.
fn serve_wardle(mut tls: TlsStream, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        let mut line = String::new();
        if tls.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
        let (mut len, mut accept, mut user) = (0usize, String::new(), String::new());
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
                match k.to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "accept" => accept = v.trim().to_string(),
                    "x-remote-user" => user = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0u8; len];
        if tls.read_exact(&mut body).is_err() {
            return;
        }
        let (ct, answer) = wardle_answer(&path, &accept, &user);
        let answer = serde_json::to_vec(&answer).expect("json");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
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

fn wardle_answer(path: &str, accept: &str, user: &str) -> (&'static str, Value) {
    let path = path.split('?').next().unwrap_or("");
    let resource = json!({"resource": "flunders", "responseKind": {"group": "wardle.example.com",
        "version": "v1alpha1", "kind": "Flunder"}, "scope": "Namespaced",
        "singularResource": "flunder", "verbs": ["get", "list"]});
    match path {
        "/apis" => (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
            json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                "metadata": {}, "items": [{"metadata": {"name": "wardle.example.com"},
                "versions": [{"version": "v1alpha1", "resources": [resource], "freshness": "Current"}]}]}),
        ),
        "/apis/wardle.example.com/v1alpha1" => (
            "application/json",
            json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "wardle.example.com/v1alpha1",
                "resources": [{"name": "flunders", "singularName": "flunder", "namespaced": true,
                    "kind": "Flunder", "verbs": ["get", "list"]}]}),
        ),
        _ if accept.contains("as=Table") => (
            "application/json;as=Table;v=v1;g=meta.k8s.io",
            json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
                "columnDefinitions": [
                    {"name": "Name", "type": "string", "format": "name", "description": "", "priority": 0},
                    {"name": "Asked-By", "type": "string", "format": "", "description": "", "priority": 0}],
                "rows": [{"cells": ["my-flunder", user],
                    "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": {"name": "my-flunder", "namespace": "wardle"}}}]}),
        ),
        _ => (
            "application/json",
            json!({"kind": "FlunderList", "apiVersion": "wardle.example.com/v1alpha1",
                "metadata": {}, "items": [{"kind": "Flunder",
                "apiVersion": "wardle.example.com/v1alpha1",
                "metadata": {"name": "my-flunder", "namespace": "wardle"}}]}),
        ),
    }
}

#[test]
fn remote_apiservice_is_proxied_and_checked() {
    let c = Cluster::start();
    let wardle = TlsServer::start("wardle CA", "api.wardle.svc", serve_wardle);
    c.namespace("wardle");
    let ca = base64::engine::general_purpose::STANDARD.encode(&wardle.ca_pem);
    let register = |service_name: &str| {
        format!(
            "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {{name: v1alpha1.wardle.example.com}}\nspec:\n  group: wardle.example.com\n  version: v1alpha1\n  groupPriorityMinimum: 1000\n  versionPriority: 15\n  caBundle: {ca}\n  service: {{namespace: wardle, name: {service_name}, port: {}}}\n",
            wardle.port
        )
    };
    // Registered before its Service exists: ServiceNotFound.
    c.kubectl_stdin(&["apply", "-f", "-"], &register("api"))
        .success();
    let available = |want: &str| {
        wait_for(Duration::from_secs(30), want, || {
            let t = rows(
                &c.kubectl(&["get", "apiservice", "v1alpha1.wardle.example.com"])
                    .stdout,
            );
            let r = t.get(1)?;
            let cell = r[2..r.len() - 1].join(" ");
            (cell == want).then_some(r[1].clone())
        })
    };
    assert_eq!(available("False (ServiceNotFound)"), "wardle/api");
    // The Service names the test server on loopback (ExternalName: the proxy dials it).
    c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Service\nmetadata: {name: api, namespace: wardle}\nspec:\n  type: ExternalName\n  externalName: 127.0.0.1\n",
    )
    .success();
    available("True");

    // kubectl finds the remote resource by discovery and lists it through the proxy.
    let out = c.kubectl(&["get", "flunders", "-n", "wardle"]);
    let t = rows(&out.success().stdout);
    assert_eq!(t[0], ["NAME", "ASKED-BY"]);
    let admin = c
        .kubectl(&[
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
        .success()
        .stdout
        .clone();
    assert_eq!(row(&t, "my-flunder")[1], admin);
    let list = c
        .kubectl(&[
            "get",
            "--raw",
            "/apis/wardle.example.com/v1alpha1/namespaces/wardle/flunders",
        ])
        .success()
        .json();
    assert_eq!(list["items"][0]["metadata"]["name"], "my-flunder");
    let groups = c.kubectl(&["get", "--raw", "/apis"]).success().json();
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "wardle.example.com"),
        "{groups}"
    );
    // A user without RBAC for the group is refused by skiff before the proxy.
    let out = c.kubectl(&["get", "flunders", "-n", "wardle", "--as", "nobody"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("forbidden"), "{out}");

    // The server goes away: FailedDiscoveryCheck.
    drop(wardle);
    available("False (FailedDiscoveryCheck)");
}
