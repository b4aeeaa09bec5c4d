//! End-to-end: bad input (through kubectl and raw HTTPS), authentication and RBAC, and the
//! official Python client as a second independent client, against one shared `skiff server`.

use serde_json::{json, Value};
use skiff_e2e::*;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

fn k() -> &'static Cluster {
    static C: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match C.get_or_init(|| Cluster::try_start(&[])) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

#[track_caller]
fn expect(out: &Output, code: i32, stdout: &str, stderr: &str) {
    if out.code != code || out.stdout != stdout || out.stderr != stderr {
        panic!(
            "unexpected kubectl result\n{out}\n--- wanted exit code {code}, stdout ---\n{stdout}\n--- wanted stderr ---\n{stderr}\n--- server log tail ---\n{}",
            tail(&k().server_log(), 30)
        );
    }
}

/// Asserts a kubectl failure whose stderr starts with `prefix` (for messages whose tail is a
/// parser's own wording).
#[track_caller]
fn expect_err_prefix(out: &Output, prefix: &str) {
    if out.code != 1
        || !out.stdout.is_empty()
        || !out.stderr.starts_with(prefix)
        || !out.stderr.ends_with('\n')
    {
        panic!(
            "unexpected kubectl result\n{out}\n--- wanted exit code 1 and stderr starting with ---\n{prefix}\n--- server log tail ---\n{}",
            tail(&k().server_log(), 30)
        );
    }
}

/// Asserts an HTTP answer is a v1 Status with this code, reason and message.
#[track_caller]
fn expect_status(r: &HttpResponse, code: u16, reason: &str, message: &str) {
    let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
    let ok = r.status == code
        && r.content_type.starts_with("application/json")
        && v["kind"] == "Status"
        && v["apiVersion"] == "v1"
        && v["status"] == "Failure"
        && v["code"] == code
        && v["reason"] == reason
        && v["message"] == message;
    if !ok {
        panic!(
            "wanted HTTP {code} Status reason {reason:?} message {message:?}\ngot HTTP {} ({}) {}\n--- server log tail ---\n{}",
            r.status,
            r.content_type,
            r.body,
            tail(&k().server_log(), 30)
        );
    }
}

fn victim(ns: &str) -> (String, Value) {
    let out = k().kubectl(&["get", "cm", "victim", "-n", ns, "-o", "json"]);
    out.clean();
    let v = out.json();
    (
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("")
            .to_string(),
        v["data"].clone(),
    )
}

fn make_victim(ns: &str) -> (String, Value) {
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"victim"},"data":{"k":"v"}}"#;
    expect(
        &k().kubectl_stdin(&["create", "-f", "-", "-n", ns], cm),
        0,
        "configmap/victim created\n",
        "",
    );
    let before = victim(ns);
    assert_eq!(before.1, json!({"k": "v"}));
    before
}

#[test]
fn unknown_resource_type() {
    expect(
        &k().kubectl(&["get", "foo"]),
        1,
        "",
        "error: the server doesn't have a resource type \"foo\"\n",
    );
    expect(
        &k().kubectl(&["get", "--raw", "/apis/nope.example.com/v1/foos"]),
        1,
        "",
        "Error from server (NotFound): the server could not find the requested resource\n",
    );
}

#[test]
fn malformed_json_and_yaml_are_rejected_and_harm_nothing() {
    let ns = k().namespace("t-malformed");
    let before = make_victim(&ns);
    // kubectl refuses to send what it cannot parse.
    let bad_yaml = k().write_file(
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [\n",
    );
    let bad_json = k().write_file(
        "bad.json",
        r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"#,
    );
    expect(
        &k().kubectl(&["create", "-f", bad_yaml.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "error: error parsing {}: error converting YAML to JSON: yaml: line 4: did not find expected key\n",
            bad_yaml.display()
        ),
    );
    expect(
        &k().kubectl(&["create", "-f", bad_json.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "error: error parsing {}: unexpected EOF\n",
            bad_json.display()
        ),
    );
    // The server rejects it when sent raw (kubectl create --raw sends no Content-Type: JSON).
    expect_err_prefix(
        &k().kubectl(&["create", "--raw", "/api/v1/namespaces/t-malformed/configmaps", "-f", bad_json.to_str().unwrap()]),
        "Error from server (BadRequest): the object provided is unrecognized (must be of type ConfigMap): couldn't get version/kind; json parse error: ",
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-malformed/configmaps",
        Some("application/yaml"),
        Some(b"a: [b\n"),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, json!("BadRequest")),
        "{}",
        r.body
    );
    // A field of the wrong JSON type.
    let wrong_type = k().write_file(
        "wrong-type.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"a":1}}"#,
    );
    expect_err_prefix(
        &k().kubectl(&["create", "--raw", "/api/v1/namespaces/t-malformed/configmaps", "-f", wrong_type.to_str().unwrap()]),
        "Error from server (BadRequest): ConfigMap in version \"v1\" cannot be handled as a ConfigMap: ",
    );
    // Protobuf that is not protobuf.
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-malformed/configmaps",
        Some("application/vnd.kubernetes.protobuf"),
        Some(b"k8s\x00\xff\xff\xff\xffgarbage"),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, json!("BadRequest")),
        "{}",
        r.body
    );
    // A raw create with a good body and no Content-Type works (JSON is the default).
    let good = k().write_file(
        "good.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"raw"},"data":{"a":"b"}}"#,
    );
    let out = k().kubectl(&[
        "create",
        "--raw",
        "/api/v1/namespaces/t-malformed/configmaps",
        "-f",
        good.to_str().unwrap(),
    ]);
    out.clean();
    assert_eq!(out.json()["metadata"]["name"], "raw", "{out}");
    assert_eq!(victim(&ns), before, "the stored object changed");
    expect(
        &k().kubectl(&["get", "cm", "x", "-n", &ns]),
        1,
        "",
        "Error from server (NotFound): configmaps \"x\" not found\n",
    );
}

#[test]
fn wrong_kind_and_name_or_namespace_mismatch() {
    let ns = k().namespace("t-mismatch");
    let before = make_victim(&ns);
    let secret = k().write_file(
        "secret.json",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s1"},"stringData":{"a":"b"}}"#,
    );
    expect_err_prefix(
        &k().kubectl(&["create", "--raw", "/api/v1/namespaces/t-mismatch/configmaps", "-f", secret.to_str().unwrap()]),
        "Error from server (BadRequest): Secret in version \"v1\" cannot be handled as a ConfigMap: ",
    );
    let deploy = k().write_file(
        "deploy-to-cm.json",
        r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d1"}}"#,
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-mismatch/configmaps",
        Some("application/json"),
        Some(&std::fs::read(&deploy).unwrap()),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (400, json!("BadRequest")),
        "{}",
        r.body
    );
    for what in ["secret/s1", "cm/s1", "cm/d1"] {
        let out = k().kubectl(&["get", what, "-n", &ns, "-o", "name"]);
        assert_eq!(out.code, 1, "{what} must not exist:\n{out}");
    }
    let renamed = k().write_file(
        "renamed.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"other"},"data":{"k":"changed"}}"#,
    );
    expect(
        &k().kubectl(&["replace", "--raw", "/api/v1/namespaces/t-mismatch/configmaps/victim", "-f", renamed.to_str().unwrap()]),
        1,
        "",
        "Error from server (BadRequest): the name of the object (other) does not match the name on the URL (victim)\n",
    );
    let other_ns = k().write_file(
        "other-ns.json",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"victim","namespace":"elsewhere"},"data":{"k":"changed"}}"#,
    );
    expect(
        &k().kubectl(&["replace", "--raw", "/api/v1/namespaces/t-mismatch/configmaps/victim", "-f", other_ns.to_str().unwrap()]),
        1,
        "",
        "Error from server (BadRequest): the namespace of the provided object does not match the namespace sent on the request\n",
    );
    expect(
        &k().kubectl(&["create", "--raw", "/api/v1/namespaces/t-mismatch/configmaps", "-f", other_ns.to_str().unwrap()]),
        1,
        "",
        "Error from server (BadRequest): the namespace of the provided object does not match the namespace sent on the request\n",
    );
    assert_eq!(victim(&ns), before, "the stored object changed");
    // Creating it again: 409 AlreadyExists; a stale resourceVersion: 409 Conflict.
    let dup = k().write_file("victim.json", r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"victim"},"data":{"k":"again"}}"#);
    expect(
        &k().kubectl(&["create", "-f", dup.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "Error from server (AlreadyExists): error when creating \"{}\": configmaps \"victim\" already exists\n",
            dup.display()
        ),
    );
    let stale = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"victim","resourceVersion":"1"},"data":{"k":"stale"}}"#;
    let r = k().http(
        Auth::Admin,
        "PUT",
        "/api/v1/namespaces/t-mismatch/configmaps/victim",
        Some("application/json"),
        Some(stale.as_bytes()),
    );
    expect_status(
        &r,
        409,
        "Conflict",
        "Operation cannot be fulfilled on configmaps \"victim\": the object has been modified; please apply your changes to the latest version and try again",
    );
    let r = k().http(
        Auth::Admin,
        "GET",
        "/api/v1/namespaces/t-mismatch/configmaps/nope",
        None,
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"configmaps \"nope\" not found","reason":"NotFound",
               "details":{"name":"nope","kind":"configmaps"},"code":404})
    );
    assert_eq!(victim(&ns), before, "the stored object changed");
}

#[test]
fn oversized_body_is_413() {
    let ns = k().namespace("t-big");
    let before = make_victim(&ns);
    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"blob":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 512 * 1024)
    );
    let file = k().write_file("big.json", &big);
    expect(
        &k().kubectl(&["create", "-f", file.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "Error from server (RequestEntityTooLarge): error when creating \"{}\": Request entity too large: limit is 3145728\n",
            file.display()
        ),
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-big/configmaps",
        Some("application/json"),
        Some(big.as_bytes()),
    );
    expect_status(
        &r,
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    let bigger = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"victim"}},"data":{{"k":"{}"}}}}"#,
        "y".repeat(4 * 1024 * 1024)
    );
    let r = k().http(
        Auth::Admin,
        "PUT",
        "/api/v1/namespaces/t-big/configmaps/victim",
        Some("application/json"),
        Some(bigger.as_bytes()),
    );
    expect_status(
        &r,
        413,
        "RequestEntityTooLarge",
        "Request entity too large: limit is 3145728",
    );
    assert_eq!(victim(&ns), before, "the stored object changed");
    expect(&k().kubectl(&["get", "--raw", "/readyz"]), 0, "ok", "");
}

#[test]
fn unsupported_media_type_is_415() {
    let ns = k().namespace("t-media");
    let before = make_victim(&ns);
    let body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"t"}}"#;
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-media/configmaps",
        Some("text/plain"),
        Some(body),
    );
    expect_status(
        &r,
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
    );
    // PATCH with a non-patch type.
    let r = k().http(
        Auth::Admin,
        "PATCH",
        "/api/v1/namespaces/t-media/configmaps/victim",
        Some("application/json"),
        Some(br#"{"data":{"k":"patched"}}"#),
    );
    let v = r.json();
    assert_eq!(
        (r.status, v["reason"].clone()),
        (415, json!("UnsupportedMediaType")),
        "{}",
        r.body
    );
    let msg = v["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(
            "the body of the request was in an unknown format - accepted media types include: "
        ) && msg.contains("application/strategic-merge-patch+json")
            && msg.contains("application/merge-patch+json")
            && msg.contains("application/json-patch+json")
            && msg.contains("application/apply-patch+yaml"),
        "{}",
        r.body
    );
    assert_eq!(victim(&ns), before, "the stored object changed");
}

#[test]
fn strict_field_validation_and_invalid_objects() {
    let ns = k().namespace("t-invalid");
    let before = make_victim(&ns);
    // apply/create send fieldValidation=Strict (the OpenAPI v3 document advertises it).
    let unknown = k().write_file(
        "unknown.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: u\nfoo: bar\ndata:\n  a: b\n",
    );
    expect(
        &k().kubectl(&["create", "-f", unknown.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "Error from server (BadRequest): error when creating \"{}\": ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"foo\"\n",
            unknown.display()
        ),
    );
    // A value of the wrong JSON type: Go's decoder names the struct holding the field, the
    // path without list indices, and the Go type.
    let wrong_type = k().write_file(
        "wrongtype.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wt\nspec:\n  replicas: \"3\"\n  selector:\n    matchLabels: {app: wt}\n  template:\n    metadata:\n      labels: {app: wt}\n    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n",
    );
    expect(
        &k().kubectl(&["create", "-f", wrong_type.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        &format!(
            "Error from server (BadRequest): error when creating \"{}\": Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32\n",
            wrong_type.display()
        ),
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-invalid/pods",
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"wt"},"spec":{"containers":{"name":"c","image":"i"}}}"#),
    );
    expect_status(
        &r,
        400,
        "BadRequest",
        "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container",
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-invalid/configmaps?fieldValidation=Strict",
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1"},"data":{"b":"2"}}"#),
    );
    expect_status(
        &r,
        400,
        "BadRequest",
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"data\"",
    );
    // Without Strict the unknown field is dropped and the object created.
    let r = k().http(
        Auth::Admin,
        "POST",
        "/api/v1/namespaces/t-invalid/configmaps?fieldValidation=Ignore",
        Some("application/json"),
        Some(br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"lax"},"foo":"bar"}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.json().get("foo").is_none(), "{}", r.body);

    let bad_name = k().write_file(
        "badname.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Bad_Name\n",
    );
    expect(
        &k().kubectl(&["create", "-f", bad_name.to_str().unwrap(), "-n", &ns]),
        1,
        "",
        "The ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')\n",
    );
    let no_image = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"noimg"},
"spec":{"selector":{"matchLabels":{"app":"x"}},"template":{"metadata":{"labels":{"app":"x"}},"spec":{"containers":[{"name":"c"}]}}}}"#;
    expect(
        &k().kubectl_stdin(&["create", "-f", "-", "-n", &ns], no_image),
        1,
        "",
        "The Deployment \"noimg\" is invalid: spec.template.spec.containers[0].image: Required value\n",
    );
    let r = k().http(
        Auth::Admin,
        "POST",
        "/apis/apps/v1/namespaces/t-invalid/deployments",
        Some("application/json"),
        Some(no_image.as_bytes()),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"Deployment.apps \"noimg\" is invalid: spec.template.spec.containers[0].image: Required value",
               "reason":"Invalid",
               "details":{"name":"noimg","group":"apps","kind":"Deployment",
                          "causes":[{"reason":"FieldValueRequired","message":"Required value",
                                     "field":"spec.template.spec.containers[0].image"}]},
               "code":422})
    );
    // An update that breaks validation is refused and leaves the object as it was.
    let r = k().http(
        Auth::Admin,
        "PATCH",
        "/api/v1/namespaces/t-invalid/configmaps/victim",
        Some("application/merge-patch+json"),
        Some(br#"{"data":{"bad key!":"x"}}"#),
    );
    assert_eq!(
        (r.status, r.json()["reason"].clone()),
        (422, json!("Invalid")),
        "{}",
        r.body
    );
    assert_eq!(victim(&ns), before, "the stored object changed");
    // (-o name prints nothing at all for an empty list.)
    expect(
        &k().kubectl(&["get", "deploy", "-n", &ns, "-o", "name"]),
        0,
        "",
        "",
    );
}

#[test]
fn authentication_and_rbac() {
    let ns = k().namespace("t-rbac");
    // Anonymous: 401 except for health and version.
    let r = k().http(Auth::Anonymous, "GET", "/api/v1/namespaces", None, None);
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})
    );
    for path in ["/healthz", "/livez", "/readyz"] {
        let r = k().http(Auth::Anonymous, "GET", path, None, None);
        assert_eq!((r.status, r.body.as_str()), (200, "ok"), "{path}");
    }
    let r = k().http(Auth::Anonymous, "GET", "/version", None, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["major"], "1", "{}", r.body);
    let bogus = k().token_kubeconfig("bogus.kubeconfig", "not-a-real-token");
    expect(
        &k().kubectl_with_kubeconfig(&bogus, &["get", "pods", "-n", &ns]),
        1,
        "",
        "error: You must be logged in to the server (Unauthorized)\n",
    );

    // A service account without bindings is authenticated but forbidden.
    expect(
        &k().kubectl(&["create", "serviceaccount", "nobody", "-n", &ns]),
        0,
        "serviceaccount/nobody created\n",
        "",
    );
    let out = k().kubectl(&["create", "token", "nobody", "-n", &ns]);
    out.clean();
    let token = out.stdout.trim().to_string();
    assert_eq!(token.split('.').count(), 3, "not a JWT: {out}");
    let kc = k().token_kubeconfig("nobody.kubeconfig", &token);
    let forbidden_pods = "Error from server (Forbidden): pods is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot list resource \"pods\" in API group \"\" in the namespace \"t-rbac\"\n";
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["get", "pods", "-n", &ns]),
        1,
        "",
        forbidden_pods,
    );
    expect(
        &k().kubectl(&[
            "get",
            "pods",
            "-n",
            &ns,
            "--as=system:serviceaccount:t-rbac:nobody",
        ]),
        1,
        "",
        forbidden_pods,
    );
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["get", "nodes"]),
        1,
        "",
        "Error from server (Forbidden): nodes is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot list resource \"nodes\" in API group \"\" at the cluster scope\n",
    );
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["get", "deployments.apps", "-n", &ns]),
        1,
        "",
        "Error from server (Forbidden): deployments.apps is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot list resource \"deployments\" in API group \"apps\" in the namespace \"t-rbac\"\n",
    );
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["create", "configmap", "c", "-n", &ns]),
        1,
        "",
        "error: failed to create configmap: configmaps is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"t-rbac\"\n",
    );
    let r = k().http(
        Auth::Token(token),
        "GET",
        "/api/v1/namespaces/t-rbac/pods",
        None,
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
               "message":"pods is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot list resource \"pods\" in API group \"\" in the namespace \"t-rbac\"",
               "reason":"Forbidden","details":{"kind":"pods"},"code":403})
    );

    // Bound to the default "view" role it may read pods but not secrets, nor write.
    expect(
        &k().kubectl(&[
            "create",
            "rolebinding",
            "nobody-view",
            "--clusterrole=view",
            "--serviceaccount=t-rbac:nobody",
            "-n",
            &ns,
        ]),
        0,
        "rolebinding.rbac.authorization.k8s.io/nobody-view created\n",
        "",
    );
    let out = wait_for(
        Duration::from_secs(5),
        "the view binding to take effect",
        || {
            let o = k().kubectl_with_kubeconfig(&kc, &["get", "pods", "-n", &ns]);
            (o.code == 0).then_some(o)
        },
    );
    expect(&out, 0, "", "No resources found in t-rbac namespace.\n");
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["get", "secrets", "-n", &ns]),
        1,
        "",
        "Error from server (Forbidden): secrets is forbidden: User \"system:serviceaccount:t-rbac:nobody\" cannot list resource \"secrets\" in API group \"\" in the namespace \"t-rbac\"\n",
    );
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["auth", "can-i", "delete", "pods", "-n", &ns]),
        1,
        "no\n",
        "",
    );
    expect(
        &k().kubectl_with_kubeconfig(&kc, &["auth", "can-i", "get", "pods", "-n", &ns]),
        0,
        "yes\n",
        "",
    );
}

#[test]
fn node_token_is_printed_and_accepted() {
    let mut c = Command::new(skiff_bin());
    c.args(["token", "-d"]).arg(k().data_dir());
    let out = run_command(c, None, Duration::from_secs(30));
    out.success();
    let token = out.stdout.trim().to_string();
    let (head, password) = token
        .split_once("::server:")
        .unwrap_or_else(|| panic!("token {token:?} is not K10<hash>::server:<password>"));
    assert!(head.starts_with("K10") && head.len() == 3 + 64, "{token}");
    assert!(!password.is_empty(), "{token}");
    let mode = std::fs::metadata(k().kubeconfig()).map(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.permissions().mode() & 0o777
    });
    assert_eq!(mode.ok(), Some(0o600), "kubeconfig mode");
}

#[test]
fn python_kubernetes_client_lists_creates_and_watches() {
    let ns = k().namespace("t-python");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/test_client.py");
    let mut c = Command::new("python3");
    c.arg(&script)
        .arg(&ns)
        .env("KUBECONFIG", k().kubeconfig())
        .env("HOME", k().dir().join("home"));
    let out = run_command(c, None, Duration::from_secs(120));
    assert!(
        out.code == 0 && out.stdout.ends_with("ok\n"),
        "the Python client failed (install it with `pip install kubernetes` if it is missing):\n{out}\n--- server log tail ---\n{}",
        tail(&k().server_log(), 30)
    );
    assert_eq!(
        k().kubectl(&["get", "cm", "py-cm", "-n", &ns, "-o", "jsonpath={.data.k}"])
            .stdout,
        "v"
    );
}
