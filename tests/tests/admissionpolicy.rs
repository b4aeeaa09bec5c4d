//! End-to-end: ValidatingAdmissionPolicies with the stock kubectl on a server without nodes —
//! a policy bound with `Deny` refuses a Deployment with too many replicas (create and update)
//! with upstream's text; a policy with ConfigMap params reads its limit from the binding's
//! ConfigMap and words its denial with `messageExpression` (and with `parameterNotFoundAction:
//! Deny` refuses while the ConfigMap is missing); a `Warn` binding admits with a Warning; CEL
//! that does not compile is refused when the policy is created.

use skiff_e2e::*;

const MAX_REPLICAS: &str = r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: max-replicas
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: ["apps"]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["deployments"]
  validations:
  - expression: "object.spec.replicas <= 5"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: max-replicas-binding
spec:
  policyName: max-replicas
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels:
        policy: strict
"#;

fn params_policy(ns: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: config-keys
spec:
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE", "UPDATE"]
      resources: ["configmaps"]
    objectSelector:
      matchLabels:
        checked: "yes"
  validations:
  - expression: "size(object.data) <= int(params.data.maxKeys)"
    messageExpression: "'at most ' + params.data.maxKeys + ' keys, got ' + string(size(object.data))"
    reason: Forbidden
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: config-keys-binding
spec:
  policyName: config-keys
  validationActions: [Deny]
  paramRef:
    name: limits
    namespace: {ns}
    parameterNotFoundAction: Deny
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: named
spec:
  matchConstraints:
    resourceRules:
    - apiGroups: [""]
      apiVersions: ["v1"]
      operations: ["CREATE"]
      resources: ["configmaps"]
  validations:
  - expression: "!object.metadata.name.startsWith('tmp-')"
    message: names starting with tmp- are discouraged
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: named-warn
spec:
  policyName: named
  validationActions: [Warn]
"#
    )
}

#[test]
fn policies_deny_warn_and_read_params() {
    arm_watchdog();
    let c = Cluster::start();
    let ns = c.namespace("vap");
    c.kubectl(&["label", "namespace", &ns, "policy=strict"])
        .clean();
    let f = c.write_file("max-replicas.yaml", MAX_REPLICAS);
    c.expect(
        &c.kubectl(&["apply", "-f", f.to_str().unwrap()]),
        0,
        "validatingadmissionpolicy.admissionregistration.k8s.io/max-replicas created\n\
         validatingadmissionpolicybinding.admissionregistration.k8s.io/max-replicas-binding created\n",
        "",
    );
    c.expect(
        &c.kubectl(&[
            "create", "deployment", "x", "--image=a", "--replicas=6", "-n", &ns,
        ]),
        1,
        "",
        "error: failed to create deployment: deployments.apps \"x\" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5\n",
    );
    c.expect(
        &c.kubectl(&[
            "create",
            "deployment",
            "x",
            "--image=a",
            "--replicas=5",
            "-n",
            &ns,
        ]),
        0,
        "deployment.apps/x created\n",
        "",
    );
    c.expect(
        &c.kubectl(&[
            "patch", "deployment", "x", "-n", &ns, "--type=merge", "-p",
            r#"{"spec":{"replicas":9}}"#,
        ]),
        1,
        "",
        "The deployments \"x\" is invalid: : ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: failed expression: object.spec.replicas <= 5\n",
    );
    // Outside the binding's namespaces the policy does not apply.
    let other = c.namespace("vap-other");
    c.kubectl(&[
        "create",
        "deployment",
        "y",
        "--image=a",
        "--replicas=6",
        "-n",
        &other,
    ])
    .clean();

    // Params from a ConfigMap; a missing one denies (parameterNotFoundAction: Deny).
    let p = c.write_file("params.yaml", &params_policy(&ns));
    c.kubectl(&["apply", "-f", p.to_str().unwrap()]).clean();
    let cm = |name: &str, keys: usize| {
        let mut s = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    checked: \"yes\"\ndata:\n"
        );
        for i in 0..keys {
            s.push_str(&format!("  k{i}: v\n"));
        }
        s
    };
    c.expect(
        &c.kubectl_stdin(&["create", "-n", &ns, "-f", "-"], &cm("three", 3)),
        1,
        "",
        "The configmaps \"three\" is invalid: : ValidatingAdmissionPolicy 'config-keys' with binding 'config-keys-binding' denied request: failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction\n",
    );
    c.kubectl(&[
        "create",
        "configmap",
        "limits",
        "-n",
        &ns,
        "--from-literal=maxKeys=2",
    ])
    .clean();
    c.expect(
        &c.kubectl_stdin(&["create", "-n", &ns, "-f", "-"], &cm("three", 3)),
        1,
        "",
        "Error from server (Forbidden): error when creating \"STDIN\": configmaps \"three\" is forbidden: ValidatingAdmissionPolicy 'config-keys' with binding 'config-keys-binding' denied request: at most 2 keys, got 3\n",
    );
    c.expect(
        &c.kubectl_stdin(&["create", "-n", &ns, "-f", "-"], &cm("two", 2)),
        0,
        "configmap/two created\n",
        "",
    );

    // Warn: admitted, with the failure as a Warning.
    c.expect(
        &c.kubectl(&["create", "configmap", "tmp-a", "-n", &ns]),
        0,
        "configmap/tmp-a created\n",
        "Warning: Validation failed for ValidatingAdmissionPolicy 'named' with binding 'named-warn': names starting with tmp- are discouraged\n",
    );

    // CEL that does not compile is refused at create.
    let bad = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: bad\nspec:\n  matchConstraints:\n    resourceRules:\n    - apiGroups: [\"\"]\n      apiVersions: [\"v1\"]\n      operations: [\"CREATE\"]\n      resources: [\"pods\"]\n  validations:\n  - expression: \"object.spec.replicas <\"\n",
    );
    assert_eq!(bad.code, 1, "{bad}");
    assert!(
        bad.stderr.starts_with(
            "The ValidatingAdmissionPolicy \"bad\" is invalid: spec.validations[0].expression: Invalid value: \"object.spec.replicas <\": compilation failed: ERROR: <input>:1:23: Syntax error: mismatched input '<EOF>' expecting"
        ) && bad.stderr.contains("\n | object.spec.replicas <\n | ......................^"),
        "{bad}"
    );
    c.expect(
        &c.kubectl(&[
            "get",
            "validatingadmissionpolicybinding",
            "max-replicas-binding",
            "-o",
            "jsonpath={.spec.policyName} {.spec.validationActions}",
        ]),
        0,
        "max-replicas [\"Deny\"]",
        "",
    );
}
