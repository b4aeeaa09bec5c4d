//! End-to-end: auto-deploying manifests (`<data>/server/manifests/`, as k3s): a ConfigMap +
//! Deployment file appears in the cluster within 2 s, an edit updates the objects and prunes
//! one removed from the file, a broken file is reported (Warning event, log line) without
//! blocking a good one, `X.skip` and deleting the file delete the objects.

use skiff_e2e::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn manifests_dir(c: &Cluster) -> PathBuf {
    c.data_dir().join("server").join("manifests")
}

fn web_manifest(ns: &str, value: &str, replicas: u32, extra: bool) -> String {
    let mut s = format!(
        r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: {ns}
data:
  greeting: {value}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sleep", "3600"]
"#
    );
    if extra {
        s.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-extra\n  namespace: {ns}\ndata:\n  a: \"1\"\n"
        ));
    }
    s
}

/// `kubectl get KIND NAME -n NS -o jsonpath=PATH`: `Some(output)` when the object exists.
fn get(c: &Cluster, ns: &str, what: &str, path: &str) -> Option<String> {
    let out = c.kubectl(&["get", what, "-n", ns, "-o", &format!("jsonpath={path}")]);
    if out.code == 0 {
        Some(out.stdout)
    } else {
        assert!(
            out.stderr.contains("NotFound"),
            "unexpected kubectl failure:\n{out}"
        );
        None
    }
}

fn write(path: &std::path::Path, text: &str) {
    // Write beside and rename, as editors and config tools do: the poller never reads half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write manifest");
    std::fs::rename(&tmp, path).expect("rename manifest");
}

#[test]
fn manifests_are_applied_updated_reported_and_pruned() {
    let c = Cluster::start();
    let ns = c.namespace("addons");
    let dir = manifests_dir(&c);
    wait_for(Duration::from_secs(10), "the manifests dir", || {
        dir.is_dir().then_some(())
    });

    // Dropped in: both objects appear within 2 s.
    let web = dir.join("web.yaml");
    let start = Instant::now();
    write(&web, &web_manifest(&ns, "hello", 1, true));
    wait_for(Duration::from_secs(10), "the manifest's objects", || {
        let cm = get(&c, &ns, "configmap/web-config", "{.data.greeting}")?;
        let d = get(&c, &ns, "deployment/web", "{.spec.replicas}")?;
        get(&c, &ns, "configmap/web-extra", "{.data.a}")?;
        Some((cm, d))
    });
    let took = start.elapsed();
    println!("manifest applied and visible in {} ms", took.as_millis());
    assert!(
        took < Duration::from_secs(2),
        "took {took:?}, want under 2 s"
    );
    let managers = c.jsonpath(
        &ns,
        "configmap/web-config",
        "{.metadata.managedFields[*].manager}",
    );
    assert_eq!(
        managers, "skiff-deploy",
        "server-side apply by skiff-deploy"
    );
    let tracked = c.jsonpath(
        "kube-system",
        "configmap/skiff-addon-web",
        "{.data.addon} {.data.objects}",
    );
    assert!(
        tracked.starts_with("web [") && tracked.contains(r#""kind":"Deployment""#),
        "{tracked}"
    );

    // Edited: the objects follow; the one removed from the file is deleted.
    write(&web, &web_manifest(&ns, "bonjour", 3, false));
    wait_for(Duration::from_secs(10), "the edit applied", || {
        let cm = get(&c, &ns, "configmap/web-config", "{.data.greeting}")?;
        let d = get(&c, &ns, "deployment/web", "{.spec.replicas}")?;
        (cm == "bonjour" && d == "3").then_some(())
    });
    wait_for(Duration::from_secs(10), "web-extra pruned", || {
        get(&c, &ns, "configmap/web-extra", "{.metadata.name}")
            .is_none()
            .then_some(())
    });

    // A broken file next to a good one: the good one is applied, the broken one reported.
    write(
        &dir.join("broken.yaml"),
        "apiVersion: v1\nkind: [ConfigMap\n",
    );
    write(
        &dir.join("good.json"),
        &format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"good","namespace":"{ns}"}},"data":{{"ok":"yes"}}}}"#
        ),
    );
    wait_for(Duration::from_secs(10), "the good manifest", || {
        get(&c, &ns, "configmap/good", "{.data.ok}").filter(|v| v == "yes")
    });
    let reason = wait_for(Duration::from_secs(10), "the broken file's event", || {
        let out = c.kubectl(&[
            "get",
            "events",
            "-n",
            "kube-system",
            "-o",
            "jsonpath={range .items[?(@.involvedObject.name==\"skiff-addon-broken\")]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
        ]);
        out.stdout
            .lines()
            .find(|l| l.contains("ApplyManifestFailed"))
            .map(str::to_string)
    });
    assert!(
        reason.starts_with("Warning ApplyManifestFailed: ")
            && reason.contains("broken.yaml: invalid YAML in document 1"),
        "{reason}"
    );
    assert!(c.server_log().contains("manifest not applied"), "log line");

    // `good.json.skip` beside it: skipped like k3s, so its objects go.
    write(&dir.join("good.json.skip"), "");
    wait_for(
        Duration::from_secs(10),
        "the skipped manifest's objects deleted",
        || {
            get(&c, &ns, "configmap/good", "{.metadata.name}")
                .is_none()
                .then_some(())
        },
    );

    // Deleted: its objects and its tracking ConfigMap go.
    std::fs::remove_file(&web).expect("remove manifest");
    wait_for(
        Duration::from_secs(10),
        "the deleted manifest's objects deleted",
        || {
            let cm = get(&c, &ns, "configmap/web-config", "{.metadata.name}");
            let d = get(&c, &ns, "deployment/web", "{.metadata.name}");
            (cm.is_none() && d.is_none()).then_some(())
        },
    );
    wait_for(
        Duration::from_secs(10),
        "the tracking ConfigMap deleted",
        || {
            get(
                &c,
                "kube-system",
                "configmap/skiff-addon-web",
                "{.metadata.name}",
            )
            .is_none()
            .then_some(())
        },
    );
}
