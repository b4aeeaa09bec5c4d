//! End-to-end: CustomResourceDefinitions with the stock kubectl — the CronTab CRD from the
//! Kubernetes docs applies and is Established; CronTabs are created, listed with their printer
//! columns (also by the short name), shown as YAML, refused with the documented 422 causes,
//! pruned (and refused under strict validation), scaled through the scale subresource,
//! patched (merge and JSON; strategic merge is refused as upstream), explained from the
//! OpenAPI v3 document, watched, deleted; deleting the CRD deletes its objects. Also: several
//! versions, cluster scope, defaults and CRD validation; CEL rules (`x-kubernetes-validations`)
//! and `kubectl get all` through the category `all`.

use skiff_e2e::*;
use std::time::Duration;

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                cronSpec:
                  type: string
                  pattern: '^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$'
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 1
                  maximum: 10
            status:
              type: object
              properties:
                replicas:
                  type: integer
                labelSelector:
                  type: string
      subresources:
        status: {}
        scale:
          specReplicasPath: .spec.replicas
          statusReplicasPath: .status.replicas
          labelSelectorPath: .status.labelSelector
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        description: The number of jobs launched by the CronJob
        jsonPath: .spec.replicas
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames:
    - ct
"#;

const CRONTAB: &str = r#"apiVersion: "stable.example.com/v1"
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
"#;

const INVALID: &str = r#"apiVersion: "stable.example.com/v1"
kind: CronTab
metadata:
  name: my-invalid-cron-object
spec:
  cronSpec: "* * * *"
  image: 42
  replicas: 15
"#;

const UNKNOWN_FIELD: &str = r#"apiVersion: "stable.example.com/v1"
kind: CronTab
metadata:
  name: with-unknown
spec:
  cronSpec: "* * * * *"
  bogus: 1
"#;

#[test]
fn crontab_crd_end_to_end() {
    arm_watchdog();
    let c = Cluster::start();
    let ns = c.namespace("crd");
    let crd_file = c.write_file("crontab-crd.yaml", CRD);
    let crd_path = crd_file.to_str().unwrap();
    c.expect(
        &c.kubectl(&["apply", "-f", crd_path]),
        0,
        "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created\n",
        "",
    );
    let established = c.kubectl(&[
        "get",
        "crd",
        "crontabs.stable.example.com",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status} {.status.acceptedNames.kind} {.metadata.finalizers}",
    ]);
    c.expect(
        &established,
        0,
        "True CronTab [\"customresourcecleanup.apiextensions.k8s.io\"]",
        "",
    );

    // Create, list by plural and short name, YAML.
    let ct = c.write_file("my-crontab.yaml", CRONTAB);
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", ct.to_str().unwrap()]),
        0,
        "crontab.stable.example.com/my-new-cron-object created\n",
        "",
    );
    let want = "NAME                 SPEC          REPLICAS   AGE\n\
                my-new-cron-object   * * * * */5              <age>\n";
    c.expect_table(&c.kubectl(&["get", "crontabs", "-n", &ns]), want);
    c.expect_table(&c.kubectl(&["get", "ct", "-n", &ns]), want);
    let yaml = c.kubectl(&["get", "ct", "-n", &ns, "-o", "yaml"]);
    yaml.clean();
    for line in [
        "- apiVersion: stable.example.com/v1",
        "  kind: CronTab",
        "    name: my-new-cron-object",
        "    generation: 1",
        "    cronSpec: '* * * * */5'",
        "    image: my-awesome-cron-image",
    ] {
        assert!(yaml.stdout.contains(line), "{line:?} missing:\n{yaml}");
    }

    // The documented validation failure.
    let bad = c.write_file("invalid.yaml", INVALID);
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", bad.to_str().unwrap()]),
        1,
        "",
        "The CronTab \"my-invalid-cron-object\" is invalid: \n\
         * spec.cronSpec: Invalid value: \"* * * *\": spec.cronSpec in body should match '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'\n\
         * spec.image: Invalid value: \"integer\": spec.image in body must be of type string: \"integer\"\n\
         * spec.replicas: Invalid value: 15: spec.replicas in body should be less than or equal to 10\n",
    );

    // Unknown fields: refused under kubectl's default strict validation, pruned otherwise.
    let unk = c.write_file("unknown.yaml", UNKNOWN_FIELD);
    let unk = unk.to_str().unwrap();
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", unk]),
        1,
        "",
        &format!(
            "Error from server (BadRequest): error when creating \"{unk}\": CronTab in version \"v1\" cannot be handled as a CronTab: strict decoding error: unknown field \"spec.bogus\"\n"
        ),
    );
    c.kubectl(&["apply", "-n", &ns, "-f", unk, "--validate=false"])
        .clean();
    c.expect(
        &c.kubectl(&[
            "get",
            "ct",
            "with-unknown",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec}",
        ]),
        0,
        "{\"cronSpec\":\"* * * * *\"}",
        "",
    );

    // Scale subresource, patches, status subresource.
    c.expect(
        &c.kubectl(&[
            "scale",
            "-n",
            &ns,
            "ct",
            "my-new-cron-object",
            "--replicas=3",
        ]),
        0,
        "crontab.stable.example.com/my-new-cron-object scaled\n",
        "",
    );
    c.kubectl(&[
        "patch",
        "-n",
        &ns,
        "ct",
        "my-new-cron-object",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"v2"}}"#,
    ])
    .clean();
    c.kubectl(&[
        "patch",
        "-n",
        &ns,
        "ct",
        "my-new-cron-object",
        "--subresource=status",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/status","value":{"replicas":3,"labelSelector":"app=cron"}}]"#,
    ])
    .clean();
    c.expect(
        &c.kubectl(&["patch", "-n", &ns, "ct", "my-new-cron-object", "-p", r#"{"spec":{"image":"v3"}}"#]),
        1,
        "",
        "error: application/strategic-merge-patch+json is not supported by stable.example.com/v1, Kind=CronTab: the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml\n",
    );
    c.expect(
        &c.kubectl(&[
            "get",
            "ct",
            "my-new-cron-object",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.replicas} {.spec.image} {.status.replicas} {.metadata.generation}",
        ]),
        0,
        "3 v2 3 3",
        "",
    );
    let scale = c.kubectl(&[
        "get",
        "--raw",
        &format!("/apis/stable.example.com/v1/namespaces/{ns}/crontabs/my-new-cron-object/scale"),
    ]);
    let scale = scale.clean().json();
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=cron");
    c.expect_table(
        &c.kubectl(&["get", "ct", "-n", &ns]),
        "NAME                 SPEC          REPLICAS   AGE\n\
         my-new-cron-object   * * * * */5   3          <age>\n\
         with-unknown         * * * * *                <age>\n",
    );

    // kubectl explain reads the CRD's schema from /openapi/v3.
    let explain = c.kubectl(&["explain", "crontab.spec"]);
    explain.clean();
    for line in [
        "GROUP:      stable.example.com",
        "KIND:       CronTab",
        "VERSION:    v1",
        "FIELD: spec <Object>",
        "  cronSpec\t<string>",
        "  replicas\t<integer>",
    ] {
        assert!(
            explain.stdout.contains(line),
            "{line:?} missing:\n{explain}"
        );
    }

    // Watch shows the deletion; the object goes.
    let watch = c.spawn_kubectl(&["get", "ct", "-n", &ns, "-w", "--output-watch-events"]);
    let first = watch.next_line(Duration::from_secs(10));
    assert!(
        first.as_deref().is_some_and(|l| l.starts_with("EVENT")),
        "watch header: {first:?}"
    );
    let mut added = 0;
    while added < 2 {
        let l = watch
            .next_line(Duration::from_secs(10))
            .unwrap_or_else(|| panic!("watch stopped early: {}", watch.stderr()));
        assert!(l.starts_with("ADDED"), "{l}");
        added += 1;
    }
    c.expect(
        &c.kubectl(&["delete", "ct", "with-unknown", "-n", &ns]),
        0,
        "crontab.stable.example.com \"with-unknown\" deleted\n",
        "",
    );
    let deleted = watch
        .next_line(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no DELETED event: {}", watch.stderr()));
    assert!(
        deleted.starts_with("DELETED") && deleted.contains("with-unknown"),
        "{deleted}"
    );
    drop(watch);

    // Deleting the CRD deletes its objects: recreated, it serves an empty collection.
    c.expect(
        &c.kubectl(&["delete", "crd", "crontabs.stable.example.com"]),
        0,
        "customresourcedefinition.apiextensions.k8s.io \"crontabs.stable.example.com\" deleted\n",
        "",
    );
    let gone = c.kubectl(&["get", "crd", "crontabs.stable.example.com"]);
    assert_eq!(gone.code, 1, "{gone}");
    let fresh = c.dir().join("fresh-cache");
    let fresh = fresh.to_str().unwrap();
    c.expect(
        &c.kubectl_env(&["get", "ct", "-n", &ns], &[("KUBECACHEDIR", fresh)]),
        1,
        "",
        "error: the server doesn't have a resource type \"ct\"\n",
    );
    c.kubectl(&["apply", "-f", crd_path]).clean();
    c.expect(
        &c.kubectl(&["get", "ct", "-n", &ns]),
        0,
        "",
        &format!("No resources found in {ns} namespace.\n"),
    );
}

const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Cluster
  names:
    plural: widgets
    singular: widget
    kind: Widget
  versions:
  - name: v1beta1
    served: true
    storage: false
    deprecated: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: string
                enum: [small, large]
                default: small
"#;

/// A cluster-scoped CRD with two versions: the deprecated one warns, both views of one object
/// differ only in apiVersion, defaults apply, the default table is NAME + AGE, and a CRD that
/// breaks upstream's rules is refused with its field paths.
#[test]
fn versions_scope_defaults_and_crd_validation() {
    arm_watchdog();
    let c = Cluster::start();
    let crd = c.write_file("widget-crd.yaml", WIDGET_CRD);
    c.kubectl(&["apply", "-f", crd.to_str().unwrap()]).clean();
    let w = c.write_file(
        "widget.yaml",
        "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  colour: red\n",
    );
    c.expect(
        &c.kubectl(&["create", "-f", w.to_str().unwrap()]),
        0,
        "widget.example.com/w1 created\n",
        "Warning: example.com/v1beta1 Widget is deprecated\n",
    );
    c.expect(
        &c.kubectl(&[
            "get",
            "widgets.v1.example.com",
            "w1",
            "-o",
            "jsonpath={.apiVersion} {.metadata.name}",
        ]),
        0,
        "example.com/v1 w1",
        "",
    );
    let w2 = c.write_file(
        "widget2.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w2\nspec:\n  colour: blue\n",
    );
    c.kubectl(&["create", "-f", w2.to_str().unwrap(), "--validate=false"])
        .clean();
    c.expect(
        &c.kubectl(&[
            "get",
            "widgets.v1.example.com",
            "w2",
            "-o",
            "jsonpath={.spec}",
        ]),
        0,
        "{\"size\":\"small\"}",
        "",
    );
    c.expect_table(
        &c.kubectl(&[
            "get",
            "widgets.v1.example.com",
            "--field-selector",
            "metadata.name=w2",
        ]),
        "NAME   AGE\nw2     <age>\n",
    );
    let bad = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.example\nspec:\n  group: example\n  scope: Namespaced\n  names:\n    plural: gadgets\n    kind: Gadget\n  versions:\n  - name: v1\n    served: true\n    storage: true\n",
    );
    c.expect(
        &bad,
        1,
        "",
        "The CustomResourceDefinition \"gadgets.example\" is invalid: \n\
         * spec.group: Invalid value: \"example\": should be a domain with at least one dot\n\
         * spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required\n",
    );
}

const SCALER_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: scalers.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: scalers
    singular: scaler
    kind: Scaler
    categories:
    - all
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: "self.minReplicas <= self.replicas"
              message: "replicas should be greater than or equal to minReplicas"
            - rule: "self.replicas <= self.maxReplicas"
              messageExpression: "'replicas ' + string(self.replicas) + ' is above maxReplicas ' + string(self.maxReplicas)"
              fieldPath: .replicas
            properties:
              replicas:
                type: integer
              minReplicas:
                type: integer
              maxReplicas:
                type: integer
              mode:
                type: string
                x-kubernetes-validations:
                - rule: "self == oldSelf"
                  message: mode is immutable
                  reason: FieldValueForbidden
"#;

fn scaler(name: &str, replicas: i64, min: i64, max: i64, mode: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Scaler\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  minReplicas: {min}\n  maxReplicas: {max}\n  mode: {mode}\n"
    )
}

/// CEL rules (`x-kubernetes-validations`): a violated rule refuses the object with its
/// message (or messageExpression, at its fieldPath); a transition rule (`oldSelf`) applies on
/// update only; a rule that does not compile refuses the CRD. The CRD's category `all` puts
/// its objects in `kubectl get all`; field selectors on metadata.name work.
#[test]
fn cel_validation_rules() {
    arm_watchdog();
    let c = Cluster::start();
    let ns = c.namespace("cel");
    let crd = c.write_file("scaler-crd.yaml", SCALER_CRD);
    c.kubectl(&["apply", "-f", crd.to_str().unwrap()]).clean();
    let low = c.write_file("low.yaml", &scaler("low", 1, 2, 5, "fast"));
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", low.to_str().unwrap()]),
        1,
        "",
        "The Scaler \"low\" is invalid: spec: Invalid value: \"object\": replicas should be greater than or equal to minReplicas\n",
    );
    c.expect(
        &c.kubectl_stdin(&["create", "-n", &ns, "-f", "-"], &scaler("both", 9, 10, 5, "fast")),
        1,
        "",
        "The Scaler \"both\" is invalid: \n\
         * spec: Invalid value: \"object\": replicas should be greater than or equal to minReplicas\n\
         * spec.replicas: Invalid value: \"object\": replicas 9 is above maxReplicas 5\n",
    );
    let ok = c.write_file("ok.yaml", &scaler("ok", 3, 1, 5, "fast"));
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", ok.to_str().unwrap()]),
        0,
        "scaler.example.com/ok created\n",
        "",
    );
    let changed = c.write_file("changed.yaml", &scaler("ok", 4, 1, 5, "slow"));
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", changed.to_str().unwrap()]),
        1,
        "",
        "The Scaler \"ok\" is invalid: spec.mode: Forbidden: mode is immutable\n",
    );
    let grown = c.write_file("grown.yaml", &scaler("ok", 4, 1, 5, "fast"));
    c.expect(
        &c.kubectl(&["apply", "-n", &ns, "-f", grown.to_str().unwrap()]),
        0,
        "scaler.example.com/ok configured\n",
        "",
    );
    // The CRD is in category `all`: `kubectl get all` lists its objects.
    c.expect_table(
        &c.kubectl(&["get", "all", "-n", &ns]),
        "NAME                    AGE\nscaler.example.com/ok   <age>\n",
    );
    c.expect_table(
        &c.kubectl(&[
            "get",
            "scalers",
            "-n",
            &ns,
            "--field-selector",
            "metadata.name=ok",
        ]),
        "NAME   AGE\nok     <age>\n",
    );
    let bad = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gadgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names:\n    plural: gadgets\n    kind: Gadget\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n        type: object\n        x-kubernetes-validations:\n        - rule: \"self.spec.size <\"\n",
    );
    assert_eq!(bad.code, 1, "{bad}");
    assert!(
        bad.stderr.starts_with(
            "The CustomResourceDefinition \"gadgets.example.com\" is invalid: spec.validation.openAPIV3Schema.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.spec.size <\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}: compilation failed: ERROR: <input>:1:17: Syntax error: mismatched input '<EOF>' expecting"
        ) && bad.stderr.ends_with("\n | self.spec.size <\n | ................^\n"),
        "{bad}"
    );
}

/// A custom resource defined in Rust with kube-rs's `CustomResource` derive (a second client
/// next to kubectl): the CRD generated from the type is accepted and Established, objects are
/// created, listed and watched through `Api<Gizmo>`, the status subresource is patched, and a
/// value outside the derived schema's type is refused.
mod kube_rs {
    use super::*;
    use futures::StreamExt;
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
    use kube::{CustomResource, CustomResourceExt};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
    #[kube(
        group = "kube-rs.skiff.test",
        version = "v1",
        kind = "Gizmo",
        namespaced,
        status = "GizmoStatus",
        shortname = "gz"
    )]
    pub struct GizmoSpec {
        pub size: i32,
        pub colour: String,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    pub struct GizmoStatus {
        pub ready: bool,
    }

    #[test]
    fn derived_custom_resource_through_kube_rs() {
        arm_watchdog();
        let c = Cluster::start();
        let ns = c.namespace("kube-rs");
        let kubeconfig = kube::config::Kubeconfig::read_from(c.kubeconfig()).expect("kubeconfig");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let cfg = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
                .await
                .expect("config");
            let client = kube::Client::try_from(cfg).expect("client");
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            crds.create(&PostParams::default(), &Gizmo::crd())
                .await
                .expect("create the derived CRD");
            let established = async {
                loop {
                    let crd = crds.get("gizmos.kube-rs.skiff.test").await.expect("get crd");
                    let conds = crd.status.and_then(|s| s.conditions).unwrap_or_default();
                    if conds.iter().any(|c| c.type_ == "Established" && c.status == "True") {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(20), established)
                .await
                .expect("the derived CRD is Established within 20 s");

            let gizmos: Api<Gizmo> = Api::namespaced(client.clone(), &ns);
            let mut watch = gizmos
                .watch(&WatchParams::default(), "0")
                .await
                .expect("watch")
                .boxed();
            let made = gizmos
                .create(
                    &PostParams::default(),
                    &Gizmo::new(
                        "g1",
                        GizmoSpec {
                            size: 3,
                            colour: "teal".into(),
                        },
                    ),
                )
                .await
                .expect("create g1");
            assert_eq!(made.spec.size, 3);
            let added = tokio::time::timeout(Duration::from_secs(10), watch.next())
                .await
                .expect("a watch event within 10 s")
                .expect("stream open")
                .expect("event");
            match added {
                WatchEvent::Added(g) => assert_eq!(g.metadata.name.as_deref(), Some("g1")),
                other => panic!("expected ADDED g1, got {other:?}"),
            }
            let listed = gizmos.list(&Default::default()).await.expect("list");
            let names: Vec<_> = listed.iter().filter_map(|g| g.metadata.name.clone()).collect();
            assert_eq!(names, ["g1"]);

            let patched = gizmos
                .patch_status(
                    "g1",
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({"status": {"ready": true}})),
                )
                .await
                .expect("patch status");
            assert_eq!(patched.status, Some(GizmoStatus { ready: true }));
            assert_eq!(patched.spec.colour, "teal", "a status write keeps the spec");

            // The derived schema says size is an integer.
            let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
                client.clone(),
                &ns,
                &kube::api::ApiResource::erase::<Gizmo>(&()),
            );
            let bad: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
                "apiVersion": "kube-rs.skiff.test/v1", "kind": "Gizmo",
                "metadata": {"name": "g2"}, "spec": {"size": "big", "colour": "red"}}))
            .expect("object");
            match raw.create(&PostParams::default(), &bad).await {
                Err(kube::Error::Api(e)) => {
                    assert_eq!(e.code, 422, "{e:?}");
                    assert!(e.message.contains("spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""), "{}", e.message);
                }
                other => panic!("a string size must be refused with 422, got {other:?}"),
            }
        });
    }
}
