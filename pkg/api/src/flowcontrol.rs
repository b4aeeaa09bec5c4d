//! The `flowcontrol.apiserver.k8s.io/v1` objects a fresh cluster has: upstream's mandatory
//! configuration (`exempt`, `catch-all`) and the suggested one skiff's clients match
//! (`probes`, leader election, nodes, controllers, service accounts, `global-default`). skiff
//! serves them for kubectl and client-go but does not queue requests by them.

use serde_json::{json, Value};

const AUTOUPDATE: &str = "apf.kubernetes.io/autoupdate-spec";

fn meta(name: &str) -> Value {
    json!({"name": name, "annotations": {AUTOUPDATE: "true"}})
}

fn limited(name: &str, shares: i64, lendable: i64, queuing: Option<(i64, i64, i64)>) -> Value {
    let limit_response = match queuing {
        Some((queues, hand, len)) => json!({"type": "Queue", "queuing": {
            "queues": queues, "handSize": hand, "queueLengthLimit": len}}),
        None => json!({"type": "Reject"}),
    };
    json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "PriorityLevelConfiguration",
        "metadata": meta(name),
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": shares,
            "lendablePercent": lendable,
            "limitResponse": limit_response}},
    })
}

/// The bootstrap PriorityLevelConfigurations, upstream's shares and queues.
pub fn bootstrap_priority_levels() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
            "kind": "PriorityLevelConfiguration",
            "metadata": meta("exempt"),
            "spec": {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}},
        }),
        limited("catch-all", 5, 0, None),
        limited("system", 30, 33, Some((64, 6, 50))),
        limited("node-high", 40, 25, Some((64, 6, 50))),
        limited("leader-election", 10, 0, Some((16, 4, 50))),
        limited("workload-high", 40, 50, Some((128, 6, 50))),
        limited("workload-low", 100, 90, Some((128, 6, 50))),
        limited("global-default", 20, 50, Some((128, 6, 50))),
    ]
}

fn group(name: &str) -> Value {
    json!({"kind": "Group", "group": {"name": name}})
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "user": {"name": name}})
}

fn all_resources(cluster_scope: bool) -> Value {
    json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": cluster_scope,
        "namespaces": ["*"]}])
}

fn schema(
    name: &str,
    level: &str,
    precedence: i64,
    by_user: Option<&str>,
    rules: Vec<Value>,
) -> Value {
    let mut spec = json!({
        "priorityLevelConfiguration": {"name": level},
        "matchingPrecedence": precedence,
        "rules": rules,
    });
    if let Some(m) = by_user {
        spec["distinguisherMethod"] = json!({"type": m});
    }
    json!({
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": meta(name),
        "spec": spec,
    })
}

/// The bootstrap FlowSchemas, in matching precedence order.
pub fn bootstrap_flow_schemas() -> Vec<Value> {
    let everything = |subjects: Vec<Value>| {
        json!({"subjects": subjects, "resourceRules": all_resources(true),
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]})
    };
    vec![
        schema(
            "exempt",
            "exempt",
            1,
            None,
            vec![everything(vec![group("system:masters")])],
        ),
        schema(
            "probes",
            "exempt",
            2,
            None,
            vec![
                json!({"subjects": [group("system:unauthenticated"), group("system:authenticated")],
                "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]}),
            ],
        ),
        schema(
            "system-leader-election",
            "leader-election",
            100,
            Some("ByUser"),
            vec![
                json!({"subjects": [user("system:kube-controller-manager"), user("system:kube-scheduler"),
                    json!({"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}})],
                "resourceRules": [{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"],
                    "resources": ["leases"], "namespaces": ["*"]}]}),
            ],
        ),
        schema(
            "system-nodes",
            "system",
            500,
            Some("ByUser"),
            vec![everything(vec![group("system:nodes")])],
        ),
        schema(
            "kube-controller-manager",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-controller-manager")])],
        ),
        schema(
            "kube-scheduler",
            "workload-high",
            800,
            Some("ByNamespace"),
            vec![everything(vec![user("system:kube-scheduler")])],
        ),
        schema(
            "kube-system-service-accounts",
            "workload-high",
            900,
            Some("ByNamespace"),
            vec![everything(vec![json!({"kind": "ServiceAccount",
                "serviceAccount": {"namespace": "kube-system", "name": "*"}})])],
        ),
        schema(
            "service-accounts",
            "workload-low",
            9000,
            Some("ByUser"),
            vec![everything(vec![group("system:serviceaccounts")])],
        ),
        schema(
            "global-default",
            "global-default",
            9900,
            Some("ByUser"),
            vec![everything(vec![
                group("system:unauthenticated"),
                group("system:authenticated"),
            ])],
        ),
        schema(
            "catch-all",
            "catch-all",
            10000,
            Some("ByUser"),
            vec![everything(vec![
                group("system:unauthenticated"),
                group("system:authenticated"),
            ])],
        ),
    ]
}

/// The status upstream's configuration controller writes on a FlowSchema: `Dangling` False
/// when its priority level exists, True (reason `NotFound`) otherwise.
pub fn flow_schema_status(schema: &Value, levels: &[&str], now: &str) -> Value {
    let level = schema
        .pointer("/spec/priorityLevelConfiguration/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let cond = if levels.contains(&level) {
        json!({"type": "Dangling", "status": "False", "lastTransitionTime": now, "reason": "Found",
            "message": format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} and it exists")})
    } else {
        json!({"type": "Dangling", "status": "True", "lastTransitionTime": now, "reason": "NotFound",
            "message": format!("This FlowSchema references the PriorityLevelConfiguration object named {level:?} but there is no such object")})
    };
    json!({"conditions": [cond]})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mandatory_objects_and_dangling_status() {
        let levels = bootstrap_priority_levels();
        let names: Vec<&str> = levels
            .iter()
            .map(|l| l["metadata"]["name"].as_str().unwrap())
            .collect();
        for want in ["exempt", "catch-all", "global-default"] {
            assert!(names.contains(&want), "{want}");
        }
        let schemas = bootstrap_flow_schemas();
        let precedences: Vec<i64> = schemas
            .iter()
            .map(|s| s["spec"]["matchingPrecedence"].as_i64().unwrap())
            .collect();
        assert!(precedences.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(schemas[0]["metadata"]["name"], "exempt");
        assert_eq!(schemas.last().unwrap()["metadata"]["name"], "catch-all");
        for s in &schemas {
            let st = flow_schema_status(s, &names, "2026-01-01T00:00:00Z");
            assert_eq!(
                st["conditions"][0]["status"], "False",
                "{}",
                s["metadata"]["name"]
            );
        }
        let st = flow_schema_status(&schemas[0], &["catch-all"], "t");
        assert_eq!(st["conditions"][0]["status"], "True");
        assert_eq!(st["conditions"][0]["reason"], "NotFound");
    }
}
