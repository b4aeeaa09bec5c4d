//! End-to-end: HorizontalPodAutoscaler with the real kubectl on a server without nodes —
//! `kubectl autoscale` and `kubectl get hpa` print what upstream prints; one object served as
//! `autoscaling/v2` and `autoscaling/v1` (v2-only fields in v1's annotations); the controller
//! reports its conditions (no pod metrics without nodes) and enforces `minReplicas` through
//! the Deployment's scale subresource.

use skiff_e2e::*;
use std::time::Duration;

/// The controller syncs every 15 s; a second sync may be needed to show a rescale.
const SYNC_WAIT: Duration = Duration::from_secs(40);

fn jsonpath(c: &Cluster, ns: &str, what: &str, path: &str) -> String {
    c.jsonpath(ns, what, path)
}

#[test]
fn autoscale_get_hpa_versions_and_min_replicas() {
    let c = Cluster::start();
    let ns = c.namespace("hpa");
    for (name, replicas) in [("web", "1"), ("api", "1"), ("mem", "2")] {
        c.kubectl(&[
            "create",
            "deployment",
            name,
            "--image=busybox",
            "--replicas",
            replicas,
            "-n",
            &ns,
        ])
        .clean();
    }

    let out = c.kubectl(&[
        "autoscale",
        "deployment",
        "web",
        "--cpu-percent=50",
        "--min=1",
        "--max=10",
        "-n",
        &ns,
    ]);
    c.expect(
        &out,
        0,
        "horizontalpodautoscaler.autoscaling/web autoscaled\n",
        "",
    );

    // Both versions serve the one object.
    assert_eq!(
        jsonpath(
            &c,
            &ns,
            "horizontalpodautoscalers.v1.autoscaling/web",
            "{.spec.targetCPUUtilizationPercentage}"
        ),
        "50"
    );
    assert_eq!(
        jsonpath(
            &c,
            &ns,
            "horizontalpodautoscalers.v2.autoscaling/web",
            "{.spec.metrics[0].resource.name} {.spec.metrics[0].resource.target.averageUtilization}"
        ),
        "cpu 50"
    );

    // The controller looked: scale read, no pod metrics (no nodes), the target's replicas.
    let reasons = wait_for(SYNC_WAIT, "the HPA's conditions", || {
        let r = jsonpath(
            &c,
            &ns,
            "hpa/web",
            "{.status.conditions[?(@.type==\"AbleToScale\")].reason} {.status.conditions[?(@.type==\"ScalingActive\")].reason} {.status.currentReplicas}",
        );
        (r.split(' ').count() == 3 && !r.starts_with(' ')).then_some(r)
    });
    assert_eq!(reasons, "SucceededGetScale FailedGetResourceMetric 1");
    let active = jsonpath(
        &c,
        &ns,
        "hpa/web",
        "{.status.conditions[?(@.type==\"ScalingActive\")].message}",
    );
    assert!(
        active.starts_with("the HPA was unable to compute the replica count: failed to get cpu utilization: unable to get metrics for resource cpu"),
        "{active}"
    );
    // v1 carries the conditions in its annotation.
    let ann = jsonpath(
        &c,
        &ns,
        "horizontalpodautoscalers.v1.autoscaling/web",
        "{.metadata.annotations.autoscaling\\.alpha\\.kubernetes\\.io/conditions}",
    );
    assert!(ann.contains("FailedGetResourceMetric"), "{ann}");

    // minReplicas above the Deployment's count: the controller scales it up.
    c.kubectl(&[
        "autoscale",
        "deployment",
        "api",
        "--cpu-percent=80",
        "--min=3",
        "--max=5",
        "-n",
        &ns,
    ])
    .clean();
    wait_for(SYNC_WAIT, "the Deployment scaled to minReplicas", || {
        (jsonpath(&c, &ns, "deployment/api", "{.spec.replicas}") == "3").then_some(())
    });
    let events = c.kubectl(&[
        "get",
        "events",
        "-n",
        &ns,
        "-o",
        "jsonpath={range .items[?(@.involvedObject.name==\"api\")]}{.reason}: {.message}{\"\\n\"}{end}",
    ]);
    assert!(
        events.stdout.contains(
            "SuccessfulRescale: New size: 3; reason: Current number of replicas below Spec.MinReplicas"
        ),
        "{events}"
    );

    // A v2 object with two metrics and a behavior, created as users write it.
    let v2 = format!(
        r#"apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: mem
  namespace: {ns}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: mem}}
  minReplicas: 2
  maxReplicas: 6
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 60}}}}
  - type: Resource
    resource: {{name: memory, target: {{type: AverageValue, averageValue: 100Mi}}}}
  behavior:
    scaleDown: {{stabilizationWindowSeconds: 60}}
"#
    );
    c.kubectl_stdin(&["apply", "-f", "-"], &v2).clean();
    let v1_metrics = jsonpath(
        &c,
        &ns,
        "horizontalpodautoscalers.v1.autoscaling/mem",
        "{.spec.targetCPUUtilizationPercentage} {.metadata.annotations.autoscaling\\.alpha\\.kubernetes\\.io/metrics}",
    );
    assert_eq!(
        v1_metrics,
        r#"60 [{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]"#
    );
    assert_eq!(
        jsonpath(
            &c,
            &ns,
            "hpa/mem",
            "{.spec.behavior.scaleDown.stabilizationWindowSeconds} {.spec.behavior.scaleUp.policies[0].type}"
        ),
        "60 Pods",
        "behavior defaults filled in"
    );

    // Validation as upstream's (on the v2 shape).
    let bad = format!(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {{name: bad, namespace: {ns}}}\n\
         spec: {{scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: web}}, minReplicas: 3, maxReplicas: 2}}\n"
    );
    let out = c.kubectl_stdin(&["create", "-f", "-"], &bad);
    c.expect(
        &out,
        1,
        "",
        "The HorizontalPodAutoscaler \"bad\" is invalid: spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`\n",
    );

    // `kubectl get hpa` once the controller has seen all three.
    wait_for(SYNC_WAIT, "every HPA's replicas", || {
        let r = c.kubectl(&[
            "get",
            "hpa",
            "-n",
            &ns,
            "-o",
            "jsonpath={.items[*].status.currentReplicas}",
        ]);
        (r.stdout == "3 2 1").then_some(())
    });
    c.expect_table(
        &c.kubectl(&["get", "hpa", "-n", &ns]),
        &table(&[
            &[
                "NAME",
                "REFERENCE",
                "TARGETS",
                "MINPODS",
                "MAXPODS",
                "REPLICAS",
                "AGE",
            ],
            &[
                "api",
                "Deployment/api",
                "cpu: <unknown>/80%",
                "3",
                "5",
                "3",
                "<age>",
            ],
            &[
                "mem",
                "Deployment/mem",
                "cpu: <unknown>/60%, memory: <unknown>/100Mi",
                "2",
                "6",
                "2",
                "<age>",
            ],
            &[
                "web",
                "Deployment/web",
                "cpu: <unknown>/50%",
                "1",
                "10",
                "1",
                "<age>",
            ],
        ]),
    );
}
