//! End-to-end: CustomResourceDefinitions with the stock kubectl — the CronTab CRD from the
//! Kubernetes docs applies and is Established; CronTabs are created, listed with their printer
//! columns (also by the short name), shown as YAML, refused with the documented 422 causes,
//! pruned (and refused under strict validation), scaled through the scale subresource,
//! patched (merge and JSON; strategic merge is refused as upstream), explained from the
//! OpenAPI v3 document, watched, deleted; deleting the CRD deletes its objects.

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
