//! End-to-end: per-node identity. A node gets its kubelet certificates from
//! `/v1-skiff/{client,serving}-kubelet.crt` with a CSR made by openssl (its key never leaves
//! it) and the node token, guarded by its node password; then the real kubectl, with that
//! node's kubeconfig, meets the Node authorizer and NodeRestriction.

use skiff_e2e::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const NS: &str = "nodeauth";

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    run_command(cmd, None, Duration::from_secs(30))
}

/// The password part of the server's node token (`K10…::server:<password>`).
fn token_password(c: &Cluster) -> String {
    let token = std::fs::read_to_string(c.data_dir().join("server/token")).expect("server token");
    token.trim().rsplit(':').next().unwrap_or("").to_string()
}

/// A node's files: its key (made once) and what it got.
struct NodeFiles {
    dir: PathBuf,
}

impl NodeFiles {
    fn new(c: &Cluster, name: &str) -> NodeFiles {
        let dir = c.dir().join(format!("node-{name}"));
        std::fs::create_dir_all(&dir).unwrap();
        for kind in ["client", "serving"] {
            let key = dir.join(format!("{kind}.key"));
            if !key.exists() {
                run(&[
                    "openssl",
                    "ecparam",
                    "-name",
                    "prime256v1",
                    "-genkey",
                    "-noout",
                    "-out",
                    key.to_str().unwrap(),
                ])
                .success();
            }
        }
        NodeFiles { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// POSTs a DER CSR for `kind` ("client" | "serving") and returns (HTTP status, body).
fn request_cert(
    c: &Cluster,
    files: &NodeFiles,
    kind: &str,
    headers: &[(&str, &str)],
    token_password: &str,
) -> (u16, String) {
    let key = files.path(&format!("{kind}.key"));
    let csr = files.path(&format!("{kind}.csr"));
    run(&[
        "openssl",
        "req",
        "-new",
        "-key",
        key.to_str().unwrap(),
        "-subj",
        "/CN=whatever-the-node-asks",
        "-outform",
        "DER",
        "-out",
        csr.to_str().unwrap(),
    ])
    .success();
    let out = files.path(&format!("{kind}.answer"));
    let _ = std::fs::remove_file(&out);
    let url = format!("{}/v1-skiff/{kind}-kubelet.crt", c.server_url());
    let user = format!("node:{token_password}");
    let data = format!("@{}", csr.display());
    // HTTP/1.1: the server answers 401 before reading the body, which curl's HTTP/2 reports
    // as a framing error.
    let mut args: Vec<String> = [
        "curl",
        "--http1.1",
        "-sS",
        "--cacert",
        c.ca_file().to_str().unwrap(),
        "-u",
        &user,
        "--data-binary",
        &data,
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code}",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for (k, v) in headers {
        args.push("-H".into());
        args.push(format!("{k}: {v}"));
    }
    args.push(url);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let res = run(&refs);
    let status = res.stdout.trim().parse().unwrap_or(0);
    let body = std::fs::read_to_string(&out).unwrap_or_default();
    (status, format!("{body}{}", res.stderr))
}

/// Joins node `name` with `password`; on success writes its kubeconfig and returns its path.
fn join(c: &Cluster, name: &str, password: &str) -> Result<PathBuf, (u16, String)> {
    let files = NodeFiles::new(c, name);
    let headers = [
        ("Skiff-Node-Name", name),
        ("Skiff-Node-Password", password),
        ("Skiff-Node-IP", "192.0.2.10"),
    ];
    let pw = token_password(c);
    let (status, serving) = request_cert(c, &files, "serving", &headers, &pw);
    if status != 200 {
        return Err((status, serving));
    }
    std::fs::write(files.path("serving.crt"), &serving).unwrap();
    let (status, client) = request_cert(c, &files, "client", &headers, &pw);
    if status != 200 {
        return Err((status, client));
    }
    std::fs::write(files.path("client.crt"), &client).unwrap();
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: skiff\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: node\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: c\n  context:\n    cluster: skiff\n    user: node\ncurrent-context: c\n",
        c.server_url(),
        c.ca_file().display(),
        files.path("client.crt").display(),
        files.path("client.key").display(),
    );
    let path = files.path("kubeconfig");
    std::fs::write(&path, kubeconfig).unwrap();
    Ok(path)
}

fn subject_and_sans(cert: &Path) -> String {
    run(&[
        "openssl",
        "x509",
        "-in",
        cert.to_str().unwrap(),
        "-noout",
        "-subject",
        "-ext",
        "subjectAltName,extendedKeyUsage",
    ])
    .success()
    .stdout
    .clone()
}

/// A merge PATCH of node `name` with n1's client certificate, straight with curl.
fn node_patch(c: &Cluster, name: &str, patch: &str) -> (u16, String) {
    let dir = c.dir().join("node-n1");
    let out = dir.join("patch.answer");
    let url = format!("{}/api/v1/nodes/{name}", c.server_url());
    let res = run(&[
        "curl",
        "-sS",
        "--cacert",
        c.ca_file().to_str().unwrap(),
        "--cert",
        dir.join("client.crt").to_str().unwrap(),
        "--key",
        dir.join("client.key").to_str().unwrap(),
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/merge-patch+json",
        "--data-binary",
        patch,
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code}",
        &url,
    ]);
    let status = res.stdout.trim().parse().unwrap_or(0);
    (status, std::fs::read_to_string(&out).unwrap_or_default())
}

fn create(c: &Cluster, json: &str) {
    c.kubectl_stdin(&["create", "--validate=false", "-f", "-"], json)
        .success();
}

#[test]
fn node_identity_authorizer_and_restriction() {
    let c = Cluster::start();
    c.namespace(NS);
    let pw = token_password(&c);

    // ---- the supervisor's answers to bad requests
    let files = NodeFiles::new(&c, "probe");
    let (status, body) = request_cert(&c, &files, "client", &[("Skiff-Node-Password", "x")], &pw);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("node name not set"), "{body}");
    let (status, body) = request_cert(&c, &files, "client", &[("Skiff-Node-Name", "probe")], &pw);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("node password not set"), "{body}");
    let (status, body) = request_cert(
        &c,
        &files,
        "client",
        &[("Skiff-Node-Name", "probe"), ("Skiff-Node-Password", "x")],
        "wrong-token",
    );
    assert_eq!(status, 401, "{body}");

    // ---- n1 joins; its certificates carry the node identity
    let n1 = join(&c, "n1", "password-of-n1").unwrap_or_else(|e| panic!("join n1: {e:?}"));
    let node_dir = c.dir().join("node-n1");
    let client = subject_and_sans(&node_dir.join("client.crt"));
    assert!(
        client.contains("O = system:nodes") && client.contains("CN = system:node:n1"),
        "{client}"
    );
    assert!(client.contains("TLS Web Client Authentication"), "{client}");
    let serving = subject_and_sans(&node_dir.join("serving.crt"));
    assert!(serving.contains("CN = n1"), "{serving}");
    for san in [
        "DNS:n1",
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:192.0.2.10",
    ] {
        assert!(serving.contains(san), "missing {san}: {serving}");
    }
    let pw_secret = c
        .kubectl(&[
            "get",
            "secret",
            "-n",
            "kube-system",
            "n1.node-password.skiff",
            "-o",
            "jsonpath={.type} {.immutable}",
        ])
        .success()
        .stdout
        .clone();
    assert_eq!(pw_secret.trim(), "skiff.io/node-password true");

    // ---- the same name from another host (another password) is refused with the fix
    match join(&c, "n1", "another-host") {
        Ok(_) => panic!("a second host joined as n1"),
        Err((status, body)) => {
            assert_eq!(status, 403, "{body}");
            assert!(body.contains("--node-name"), "{body}");
            assert!(body.contains("kubectl delete node n1"), "{body}");
        }
    }
    // The right password again is fine (agent restart).
    join(&c, "n1", "password-of-n1").unwrap_or_else(|e| panic!("rejoin n1: {e:?}"));

    // ---- the node registers itself; other nodes are not its business
    let node_kubectl = |args: &[&str]| c.kubectl_with_kubeconfig(&n1, args);
    let node_json = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","labels":{"kubernetes.io/hostname":"n1"}}}"#;
    run_command(
        {
            let mut cmd = Command::new(kubectl_bin());
            cmd.args(["create", "--validate=false", "-f", "-"])
                .env("KUBECONFIG", &n1)
                .env("HOME", c.dir().join("home"));
            cmd
        },
        Some(node_json.as_bytes()),
        Duration::from_secs(30),
    )
    .success();
    create(
        &c,
        r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"other"}}"#,
    );
    node_kubectl(&["get", "node", "n1", "-o", "name"]).success();
    let out = node_kubectl(&["get", "node", "other"]);
    assert_ne!(out.code, 0);
    assert!(
        out.stderr.contains(
            "User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope: node 'n1' cannot read 'other', only its own Node object"
        ),
        "{out}"
    );
    // Listing every Node is allowed (skiff addition: the node's pod network and service proxy
    // need the other nodes' pod CIDRs and addresses), reading another one by name is not.
    let out = node_kubectl(&["get", "nodes", "-o", "name"]);
    assert_eq!(out.stdout, "node/n1\nnode/other\n", "{out}");
    // kubectl patch reads the object first: refused by the authorizer already.
    let out = node_kubectl(&[
        "patch",
        "node",
        "other",
        "-p",
        r#"{"metadata":{"labels":{"stolen":"yes"}}}"#,
    ]);
    assert!(
        out.code != 0
            && out
                .stderr
                .contains("cannot read 'other', only its own Node object"),
        "{out}"
    );
    // A bare PATCH gets past the authorizer and meets NodeRestriction.
    let (status, body) = node_patch(&c, "other", r#"{"metadata":{"labels":{"stolen":"yes"}}}"#);
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(
            r#"nodes \"other\" is forbidden: node \"n1\" is not allowed to modify node \"other\""#
        ),
        "{body}"
    );
    let (status, body) = node_patch(
        &c,
        "n1",
        r#"{"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is not allowed to modify taints"), "{body}");
    node_kubectl(&["label", "node", "n1", "team=blue"]).success();
    let out = node_kubectl(&[
        "label",
        "node",
        "n1",
        "node-restriction.kubernetes.io/pool=a",
    ]);
    assert!(
        out.stderr
            .contains("is not allowed to modify labels: node-restriction.kubernetes.io/pool"),
        "{out}"
    );

    // ---- pods: every pod (skiff: NetworkPolicy peers); secrets only through a pod bound to
    // the node
    create(
        &c,
        &format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"db","namespace":"{NS}"}},"stringData":{{"p":"x"}}}}"#
        ),
    );
    create(
        &c,
        &format!(
            r#"{{"apiVersion":"v1","kind":"Secret","metadata":{{"name":"unrelated","namespace":"{NS}"}},"stringData":{{"p":"y"}}}}"#
        ),
    );
    create(
        &c,
        &format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"web","namespace":"{NS}"}},"spec":{{"nodeName":"n1","containers":[{{"name":"c","image":"busybox"}}],"volumes":[{{"name":"s","secret":{{"secretName":"db"}}}}]}}}}"#
        ),
    );
    let out = node_kubectl(&["get", "pods", "-A", "-o", "name"]);
    assert!(out.success().stdout.contains("pod/web"), "{out}");
    let out = node_kubectl(&[
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=n1",
        "-o",
        "name",
    ]);
    assert!(out.success().stdout.contains("pod/web"), "{out}");
    wait_for(Duration::from_secs(20), "the graph to see pod web", || {
        (node_kubectl(&["get", "secret", "db", "-n", NS, "-o", "name"]).code == 0).then_some(())
    });
    let out = node_kubectl(&["get", "secret", "unrelated", "-n", NS]);
    assert!(
        out.stderr.contains(&format!(
            "secrets \"unrelated\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{NS}\": no relationship found between node 'n1' and this object"
        )),
        "{out}"
    );
    node_kubectl(&["get", "pod", "web", "-n", NS, "-o", "name"]).success();
    // The node may not delete a pod bound elsewhere.
    create(
        &c,
        &format!(
            r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"elsewhere","namespace":"{NS}"}},"spec":{{"nodeName":"other","containers":[{{"name":"c","image":"busybox"}}]}}}}"#
        ),
    );
    wait_for(
        Duration::from_secs(20),
        "the graph to see pod elsewhere",
        || {
            let out = node_kubectl(&["delete", "pod", "elsewhere", "-n", NS, "--wait=false"]);
            out.stderr
                .contains("can only delete pods with spec.nodeName set to itself")
                .then_some(())
        },
    );

    // ---- the graph follows deletion: the pod gone, the secret is out of reach again
    c.kubectl(&[
        "delete",
        "pod",
        "web",
        "-n",
        NS,
        "--grace-period=0",
        "--force",
    ])
    .success();
    wait_for(
        Duration::from_secs(30),
        "secret db to be out of reach",
        || {
            let out = node_kubectl(&["get", "secret", "db", "-n", NS]);
            out.stderr.contains("no relationship found").then_some(())
        },
    );

    // ---- deleting the node frees its name: the password secret goes too
    c.kubectl(&["delete", "node", "n1"]).success();
    wait_for(
        Duration::from_secs(90),
        "the password secret of the deleted node to go",
        || {
            let out = c.kubectl(&[
                "get",
                "secret",
                "-n",
                "kube-system",
                "n1.node-password.skiff",
            ]);
            (out.code != 0 && out.stderr.contains("NotFound")).then_some(())
        },
    );
    join(&c, "n1", "a-new-host").unwrap_or_else(|e| panic!("join after delete: {e:?}"));
}
