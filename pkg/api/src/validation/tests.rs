//! Unit tests of object validation: upstream field paths and messages kind by kind.

use super::*;
use crate::defaults::{apply_defaults, job_selector_and_labels};
use crate::registry::find_kind;
use serde_json::json;

fn res(api_version: &str, kind: &str) -> &'static ResourceInfo {
    find_kind(api_version, kind).unwrap()
}

fn defaulted(api_version: &str, kind: &str, mut obj: Value) -> Value {
    apply_defaults(res(api_version, kind), &mut obj);
    obj
}

/// Defaults then validates; returns `field: message` strings.
fn create(api_version: &str, kind: &str, obj: Value) -> Vec<String> {
    let obj = defaulted(api_version, kind, obj);
    validate_create(res(api_version, kind), &obj)
        .iter()
        .map(FieldCause::error_string)
        .collect()
}

fn update(api_version: &str, kind: &str, old: Value, new: Value) -> Vec<String> {
    let old = defaulted(api_version, kind, old);
    let new = defaulted(api_version, kind, new);
    validate_update(res(api_version, kind), &old, &new)
        .iter()
        .map(FieldCause::error_string)
        .collect()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default"})
}

fn pod_spec() -> Value {
    json!({"containers": [{"name": "web", "image": "nginx"}]})
}

fn deployment(sel: Value, labels: Value) -> Value {
    json!({"metadata": meta("web"), "spec": {"selector": sel,
        "template": {"metadata": {"labels": labels}, "spec": pod_spec()}}})
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn format_checks_match_upstream_messages() {
    assert!(is_dns1123_subdomain("web.example.com").is_empty());
    assert_eq!(is_dns1123_subdomain("Foo"), vec![SUBDOMAIN_MSG.to_string()]);
    assert_eq!(
        is_dns1123_subdomain(&"a".repeat(254)),
        vec!["must be no more than 253 characters".to_string()]
    );
    assert_eq!(
        is_dns1123_label("a.b"),
        vec!["must not contain dots".to_string()]
    );
    assert_eq!(is_dns1123_label("-a"), vec![LABEL_MSG.to_string()]);
    assert_eq!(
        is_dns1035_label("1abc"),
        vec!["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
    );
    assert!(validate_label_key("app.kubernetes.io/name").is_empty());
    assert_eq!(
        validate_label_key("/x"),
        vec!["prefix part must be non-empty".to_string()]
    );
    assert_eq!(
        validate_label_key("a/b/c"),
        vec!["a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')".to_string()]
    );
    assert_eq!(
        validate_label_key("-bad"),
        vec!["name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_string()]
    );
    assert!(validate_label_value("").is_empty());
    assert_eq!(
        validate_label_value("x y"),
        vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_string()]
    );
    assert_eq!(
        validate_label_value(&"a".repeat(64))[0],
        "must be no more than 63 characters"
    );
    assert_eq!(
        is_config_map_key("a b"),
        vec!["a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string()]
    );
    assert_eq!(
        is_config_map_key(".."),
        vec!["must not be '..'".to_string()]
    );
}

#[test]
fn quantities_parse() {
    assert_eq!(parse_quantity("100m"), Some(0.1));
    assert_eq!(parse_quantity("1Gi"), Some(1073741824.0));
    assert_eq!(parse_quantity("2e3"), Some(2000.0));
    assert_eq!(parse_quantity("1.5"), Some(1.5));
    assert_eq!(parse_quantity("abc"), None);
    assert_eq!(parse_quantity("1Zi"), None);
}

#[test]
fn go_rendering() {
    assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
    assert_eq!(
        go_string_map(Some(&json!({"b": "2", "a": "1"}))),
        "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
    );
    assert_eq!(go_string_map(None), "map[string]string(nil)");
    assert_eq!(
        go_label_selector(Some(&json!({"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}]}))),
        "v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"k\", Operator:\"In\", Values:[]string{\"a\"}}}}"
    );
}

#[test]
fn metadata_rules() {
    let cases: Vec<(&str, &str, Value, Vec<String>)> = vec![
        ("v1", "ConfigMap", json!({"metadata": {"namespace": "default"}}),
         vec!["metadata.name: Required value: name or generateName is required".into()]),
        ("v1", "ConfigMap", json!({"metadata": {"generateName": "cm-", "namespace": "default"}}), vec![]),
        ("v1", "ConfigMap", json!({"metadata": meta("Foo")}),
         vec![format!("metadata.name: Invalid value: \"Foo\": {SUBDOMAIN_MSG}")]),
        ("v1", "ConfigMap", json!({"metadata": {"name": "a"}}),
         vec!["metadata.namespace: Required value".into()]),
        ("v1", "Namespace", json!({"metadata": {"name": "dev.x"}}),
         vec!["metadata.name: Invalid value: \"dev.x\": must not contain dots".into()]),
        ("v1", "Namespace", json!({"metadata": {"name": "dev", "namespace": "x"}}),
         vec!["metadata.namespace: Forbidden: not allowed on this type".into()]),
        ("v1", "ConfigMap", json!({"metadata": {"name": "a", "namespace": "default", "labels": {"app": "x y"}}}),
         vec!["metadata.labels: Invalid value: \"x y\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into()]),
        ("v1", "ConfigMap", json!({"metadata": {"name": "a", "namespace": "default", "annotations": {"a": "x".repeat(256 * 1024)}}}),
         vec!["metadata.annotations: Too long: may not be more than 262144 bytes".into()]),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", json!({"metadata": {"name": "a/b"}}),
         vec!["metadata.name: Invalid value: \"a/b\": may not contain '/'".into()]),
        ("rbac.authorization.k8s.io/v1", "ClusterRole", json!({"metadata": {"name": "system:aggregate-to-view"}}), vec![]),
    ];
    for (av, kind, obj, want) in cases {
        assert_eq!(create(av, kind, obj.clone()), want, "{kind} {obj}");
    }
}

#[test]
fn deployment_rules() {
    let ok = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    assert_eq!(create("apps/v1", "Deployment", ok), Vec::<String>::new());

    let mismatch = deployment(json!({"matchLabels": {"app": "web"}}), json!({"app": "x"}));
    let obj = defaulted("apps/v1", "Deployment", mismatch);
    let causes = validate_create(res("apps/v1", "Deployment"), &obj);
    assert_eq!(
        causes,
        vec![FieldCause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`".into(),
            field: "spec.template.metadata.labels".into(),
        }]
    );
    assert_eq!(
        invalid_message(res("apps/v1", "Deployment"), "web", &causes),
        "Deployment.apps \"web\" is invalid: spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
    );

    let mut bad = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    bad["spec"]["replicas"] = json!(-1);
    bad["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    bad["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let got = create("apps/v1", "Deployment", bad);
    assert_eq!(
        got,
        vec![
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0".to_string(),
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"".to_string(),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0".to_string(),
        ]
    );

    let no_sel = json!({"metadata": meta("web"), "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()}}});
    assert_eq!(
        create("apps/v1", "Deployment", no_sel),
        vec!["spec.selector: Required value".to_string()]
    );

    let empty_sel = deployment(json!({}), json!({"app": "web"}));
    assert_eq!(
        create("apps/v1", "Deployment", empty_sel),
        vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment".to_string()]
    );

    let mut pct = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    pct["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "120%"}});
    assert_eq!(
        create("apps/v1", "Deployment", pct),
        vec![
            "spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"x\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')".to_string(),
            "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%".to_string(),
        ]
    );

    let mut strat = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    strat["spec"]["strategy"] = json!({"type": "Blue"});
    assert_eq!(
        create("apps/v1", "Deployment", strat),
        vec!["spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"".to_string()]
    );
}

#[test]
fn aggregate_message_lists_several_causes() {
    let causes = validate_create(
        res("v1", "ConfigMap"),
        &json!({"metadata": {"name": "Bad", "namespace": "default"}, "data": {"a b": "x"}}),
    );
    assert_eq!(causes.len(), 2);
    assert_eq!(
        invalid_message(res("v1", "ConfigMap"), "Bad", &causes),
        format!("ConfigMap \"Bad\" is invalid: [metadata.name: Invalid value: \"Bad\": {SUBDOMAIN_MSG}, data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')]")
    );
    // Duplicates collapse; no causes gives the bare sentence.
    let dup = vec![causes[0].clone(), causes[0].clone()];
    assert_eq!(
        invalid_message(res("v1", "ConfigMap"), "Bad", &dup),
        format!(
            "ConfigMap \"Bad\" is invalid: metadata.name: Invalid value: \"Bad\": {SUBDOMAIN_MSG}"
        )
    );
    assert_eq!(
        invalid_message(res("v1", "Pod"), "p", &[]),
        "Pod \"p\" is invalid"
    );
}

#[test]
fn pod_rules() {
    let pod = |spec: Value| json!({"metadata": meta("p"), "spec": spec});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (pod_spec(), vec![]),
        (json!({}), vec!["spec.containers: Required value"]),
        (json!({"containers": [{"name": "Web_1", "image": "nginx"}]}),
         vec!["spec.containers[0].name: Invalid value: \"Web_1\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"]),
        (json!({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}),
         vec!["spec.containers[1].name: Duplicate value: \"a\""]),
        (json!({"containers": [{"name": "a"}]}), vec!["spec.containers[0].image: Required value"]),
        (json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "FOO"}]}]}),
         vec!["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
              "spec.containers[0].ports[0].protocol: Unsupported value: \"FOO\": supported values: \"SCTP\", \"TCP\", \"UDP\""]),
        (json!({"containers": [{"name": "a", "image": "x", "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 81, "name": "http"}]}]}),
         vec!["spec.containers[0].ports[1].name: Duplicate value: \"http\""]),
        (json!({"containers": [{"name": "a", "image": "x", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]}),
         vec!["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]),
        (json!({"containers": [{"name": "a", "image": "x", "resources": {"limits": {"gpu": "1"}}}]}),
         vec!["spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
              "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers"]),
        (json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x"}]}),
         vec!["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]),
        (json!({"containers": [{"name": "a", "image": " x"}]}),
         vec!["spec.containers[0].image: Invalid value: \" x\": must not have leading or trailing whitespace"]),
        (json!({"containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}]}),
         vec!["spec.containers[0].volumeMounts[0].name: Not found: \"data\""]),
        (json!({"volumes": [{"name": "v", "configMap": {"name": "c"}, "secret": {"secretName": "s"}}], "containers": [{"name": "a", "image": "x"}]}),
         vec!["spec.volumes[0].configMap: Forbidden: may not specify more than 1 volume type"]),
        (json!({"containers": [{"name": "a", "image": "x", "livenessProbe": {"httpGet": {"port": "80"}, "successThreshold": 2}}]}),
         vec!["spec.containers[0].livenessProbe.httpGet.port: Invalid value: \"80\": must contain at least one letter (a-z)",
              "spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
        (json!({"containers": [{"name": "a", "image": "x", "readinessProbe": {}}]}),
         vec!["spec.containers[0].readinessProbe: Required value: must specify a handler type"]),
        (json!({"containers": [{"name": "a", "image": "x", "env": [{"name": "A=B"}]}]}),
         vec!["spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"]),
        (json!({"tolerations": [{"operator": "Equal", "value": "x"}], "containers": [{"name": "a", "image": "x"}]}),
         vec!["spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\""]),
    ];
    for (spec, want) in cases {
        assert_eq!(create("v1", "Pod", pod(spec.clone())), want, "{spec}");
    }
}

#[test]
fn pod_update_rules() {
    let old = json!({"metadata": meta("p"), "spec": {"containers": [{"name": "a", "image": "nginx:1"}],
        "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]}});
    let mut image = old.clone();
    image["spec"]["containers"][0]["image"] = json!("nginx:2");
    image["spec"]["activeDeadlineSeconds"] = json!(100);
    image["spec"]["tolerations"][0]["tolerationSeconds"] = json!(10);
    image["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "n", "operator": "Exists"}));
    assert_eq!(
        update("v1", "Pod", old.clone(), image),
        Vec::<String>::new()
    );

    let mut env = old.clone();
    env["spec"]["containers"][0]["env"] = json!([{"name": "A", "value": "1"}]);
    let got = update("v1", "Pod", old.clone(), env);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"), "{}", got[0]);

    let mut more = old.clone();
    more["spec"]["containers"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "b", "image": "x"}));
    assert_eq!(
        update("v1", "Pod", old.clone(), more),
        vec![
            "spec.containers: Forbidden: pod updates may not add or remove containers".to_string()
        ]
    );

    let mut tol = old.clone();
    tol["spec"]["tolerations"] = json!([]);
    assert_eq!(
        update("v1", "Pod", old.clone(), tol),
        vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".to_string()]
    );

    let mut renamed = old.clone();
    renamed["metadata"]["name"] = json!("q");
    assert_eq!(
        update("v1", "Pod", old, renamed),
        vec!["metadata.name: Invalid value: \"q\": field is immutable".to_string()]
    );
}

#[test]
fn workload_update_rules() {
    let old = deployment(
        json!({"matchLabels": {"app": "web"}}),
        json!({"app": "web"}),
    );
    let mut new = deployment(
        json!({"matchLabels": {"app": "web2"}}),
        json!({"app": "web2"}),
    );
    new["spec"]["replicas"] = json!(3);
    assert_eq!(
        update("apps/v1", "Deployment", old.clone(), new),
        vec!["spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable".to_string()]
    );
    let mut scaled = old.clone();
    scaled["spec"]["replicas"] = json!(5);
    assert_eq!(
        update("apps/v1", "Deployment", old, scaled),
        Vec::<String>::new()
    );

    let sts = json!({"metadata": meta("db"), "spec": {"serviceName": "db",
        "selector": {"matchLabels": {"app": "db"}},
        "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec()}}});
    assert_eq!(
        create("apps/v1", "StatefulSet", sts.clone()),
        Vec::<String>::new()
    );
    let mut svc = sts.clone();
    svc["spec"]["serviceName"] = json!("other");
    assert_eq!(
        update("apps/v1", "StatefulSet", sts.clone(), svc),
        vec!["spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden".to_string()]
    );
    let mut scaled = sts.clone();
    scaled["spec"]["replicas"] = json!(3);
    assert_eq!(
        update("apps/v1", "StatefulSet", sts, scaled),
        Vec::<String>::new()
    );

    let ds = json!({"metadata": meta("agent"), "spec": {"selector": {"matchLabels": {"app": "a"}},
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec()}}});
    assert_eq!(create("apps/v1", "DaemonSet", ds), Vec::<String>::new());
    let no_sel = json!({"metadata": meta("agent"), "spec": {
        "template": {"metadata": {"labels": {"app": "a"}}, "spec": pod_spec()}}});
    assert_eq!(
        create("apps/v1", "DaemonSet", no_sel),
        vec!["spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"a\"}: `selector` does not match template `labels`".to_string()]
    );
}

fn job(uid: &str) -> Value {
    let mut j = defaulted(
        "batch/v1",
        "Job",
        json!({"metadata": {"name": "pi", "namespace": "default", "uid": uid},
               "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}}),
    );
    job_selector_and_labels(&mut j, uid);
    j
}

#[test]
fn job_rules() {
    let ok = job("u1");
    assert!(validate_create(res("batch/v1", "Job"), &ok).is_empty());

    let mut always = ok.clone();
    always["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let got: Vec<String> = validate_create(res("batch/v1", "Job"), &always)
        .iter()
        .map(FieldCause::error_string)
        .collect();
    assert_eq!(
        got,
        vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".to_string()]
    );

    let mut manual = ok.clone();
    manual["spec"]["selector"] = json!({"matchLabels": {"x": "y"}});
    let got: Vec<String> = validate_create(res("batch/v1", "Job"), &manual)
        .iter()
        .map(FieldCause::error_string)
        .collect();
    assert_eq!(
        got,
        vec![
            "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"x\":\"y\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated".to_string(),
            "spec.template.metadata.labels: Invalid value: map[string]string{\"batch.kubernetes.io/controller-uid\":\"u1\", \"batch.kubernetes.io/job-name\":\"pi\", \"controller-uid\":\"u1\", \"job-name\":\"pi\"}: `selector` does not match template `labels`".to_string(),
        ]
    );

    let mut changed = ok.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    changed["spec"]["parallelism"] = json!(2);
    let got: Vec<String> = validate_update(res("batch/v1", "Job"), &ok, &changed)
        .iter()
        .map(FieldCause::error_string)
        .collect();
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("spec.template: Invalid value: core.PodTemplateSpec{"));
    assert!(got[0].ends_with(": field is immutable"));

    let mut completions = ok.clone();
    completions["spec"]["completions"] = json!(3);
    let got: Vec<String> = validate_update(res("batch/v1", "Job"), &ok, &completions)
        .iter()
        .map(FieldCause::error_string)
        .collect();
    assert_eq!(
        got,
        vec!["spec.completions: Invalid value: 3: field is immutable".to_string()]
    );
}

#[test]
fn cron_job_rules() {
    let cj = |schedule: &str| {
        json!({"metadata": meta("tick"), "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}})
    };
    for ok in [
        "*/5 * * * *",
        "0 0 1 jan mon",
        "@hourly",
        "@every 1h30m",
        "0-30/10 8-17 * * 1-5",
    ] {
        assert_eq!(
            create("batch/v1", "CronJob", cj(ok)),
            Vec::<String>::new(),
            "{ok}"
        );
    }
    let cases = [
        ("bad", "spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]"),
        ("61 * * * *", "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"),
        ("* * * * 7", "spec.schedule: Invalid value: \"* * * * 7\": end of range (7) above maximum (6): 7"),
        ("*/0 * * * *", "spec.schedule: Invalid value: \"*/0 * * * *\": step of range should be a positive number: */0"),
        ("x * * * *", "spec.schedule: Invalid value: \"x * * * *\": failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"),
        ("@often", "spec.schedule: Invalid value: \"@often\": unrecognized descriptor: @often"),
        ("", "spec.schedule: Required value"),
    ];
    for (schedule, want) in cases {
        assert_eq!(
            create("batch/v1", "CronJob", cj(schedule)),
            vec![want.to_string()],
            "{schedule}"
        );
    }
    let mut long = cj("* * * * *");
    long["metadata"]["name"] = json!("a".repeat(53));
    assert_eq!(
        create("batch/v1", "CronJob", long),
        vec![format!(
            "metadata.name: Invalid value: \"{}\": must be no more than 52 characters",
            "a".repeat(53)
        )]
    );
}

#[test]
fn service_rules() {
    let svc = |spec: Value| json!({"metadata": meta("web"), "spec": spec});
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"selector": {"app": "web"}, "ports": [{"port": 80}]}), vec![]),
        (json!({"selector": {"app": "web"}}), vec!["spec.ports: Required value"]),
        (json!({"clusterIP": "None"}), vec![]),
        (json!({"type": "ExternalName", "externalName": "db.example.com"}), vec![]),
        (json!({"type": "ExternalName"}), vec!["spec.externalName: Required value"]),
        (json!({"ports": [{"port": 80}, {"port": 443}]}),
         vec!["spec.ports[0].name: Required value", "spec.ports[1].name: Required value"]),
        (json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80}]}),
         vec!["spec.ports[1]: Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}"]),
        (json!({"ports": [{"port": 0, "targetPort": 80}]}),
         vec!["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
        (json!({"type": "Magic", "ports": [{"port": 80}]}),
         vec!["spec.type: Unsupported value: \"Magic\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""]),
        (json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}), vec![]),
        (json!({"ports": [{"port": 80, "nodePort": 30080}]}),
         vec!["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ];
    for (spec, want) in cases {
        assert_eq!(create("v1", "Service", svc(spec.clone())), want, "{spec}");
    }
    let bad_name = json!({"metadata": meta("1web"), "spec": {"ports": [{"port": 80}]}});
    assert_eq!(
        create("v1", "Service", bad_name),
        vec!["metadata.name: Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')".to_string()]
    );

    let old = svc(
        json!({"clusterIP": "10.43.0.5", "clusterIPs": ["10.43.0.5"], "ports": [{"port": 80}]}),
    );
    let unset = svc(json!({"ports": [{"port": 81}]}));
    assert_eq!(
        update("v1", "Service", old.clone(), unset),
        Vec::<String>::new()
    );
    let moved = svc(json!({"clusterIP": "10.43.0.9", "ports": [{"port": 80}]}));
    assert_eq!(
        update("v1", "Service", old, moved),
        vec![
            "spec.clusterIPs[0]: Invalid value: []string{\"10.43.0.9\"}: may not change once set"
                .to_string()
        ]
    );
}

#[test]
fn config_and_secret_rules() {
    let cm =
        json!({"metadata": meta("c"), "data": {"ok.key": "v"}, "binaryData": {"ok.key": "eA=="}});
    assert_eq!(
        create("v1", "ConfigMap", cm),
        vec![
            "data[ok.key]: Invalid value: \"ok.key\": duplicate of key present in binaryData"
                .to_string()
        ]
    );
    let big = json!({"metadata": meta("c"), "data": {"a": "x".repeat(1024 * 1024 + 1)}});
    assert_eq!(
        create("v1", "ConfigMap", big),
        vec!["[]: Too long: may not be more than 1048576 bytes".to_string()]
    );
    let frozen = json!({"metadata": meta("c"), "immutable": true, "data": {"a": "1"}});
    let mut thawed = frozen.clone();
    thawed["data"]["a"] = json!("2");
    thawed["immutable"] = json!(false);
    assert_eq!(
        update("v1", "ConfigMap", frozen, thawed),
        vec![
            "immutable: Forbidden: field is immutable when `immutable` is set".to_string(),
            "data: Forbidden: field is immutable when `immutable` is set".to_string(),
        ]
    );

    let tls =
        json!({"metadata": meta("s"), "type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
    assert_eq!(
        create("v1", "Secret", tls.clone()),
        vec!["data[tls.key]: Required value".to_string()]
    );
    let basic = json!({"metadata": meta("s"), "type": "kubernetes.io/basic-auth", "data": {}});
    assert_eq!(
        create("v1", "Secret", basic),
        vec![
            "data[username]: Required value".to_string(),
            "data[password]: Required value".to_string()
        ]
    );
    let opaque = json!({"metadata": meta("s"), "stringData": {"password": "x"}});
    assert_eq!(create("v1", "Secret", opaque.clone()), Vec::<String>::new());
    let mut retyped = opaque.clone();
    retyped["type"] = json!("kubernetes.io/basic-auth");
    assert_eq!(
        update("v1", "Secret", opaque, retyped),
        vec!["type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable".to_string()]
    );
}

#[test]
fn rbac_rules() {
    let rb = json!({"metadata": meta("rb"), "roleRef": {"kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "User", "name": "alice"}]});
    assert_eq!(
        create("rbac.authorization.k8s.io/v1", "RoleBinding", rb.clone()),
        Vec::<String>::new()
    );
    let mut other = rb.clone();
    other["roleRef"]["name"] = json!("edit");
    assert_eq!(
        update("rbac.authorization.k8s.io/v1", "RoleBinding", rb.clone(), other),
        vec!["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef".to_string()]
    );
    let no_ref = json!({"metadata": {"name": "crb"}, "subjects": [{"kind": "ServiceAccount", "name": "sa"}]});
    assert_eq!(
        create("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", no_ref),
        vec![
            "roleRef.apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"".to_string(),
            "roleRef.kind: Unsupported value: \"\": supported values: \"ClusterRole\"".to_string(),
            "roleRef.name: Required value".to_string(),
            "subjects[0].namespace: Required value".to_string(),
        ]
    );
    let role =
        json!({"metadata": meta("r"), "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
    assert_eq!(
        create("rbac.authorization.k8s.io/v1", "Role", role),
        vec!["rules[0].verbs: Required value: verbs must contain at least one value".to_string()]
    );
}

#[test]
fn other_kind_rules() {
    let ns_old = json!({"metadata": {"name": "dev", "uid": "1"}});
    let ns_new = json!({"metadata": {"name": "dev", "uid": "2"}});
    assert_eq!(
        update("v1", "Namespace", ns_old, ns_new),
        vec!["metadata.uid: Invalid value: \"2\": field is immutable".to_string()]
    );

    let node = json!({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "a", "effect": "NoSchedule"}, {"key": "a", "value": "x", "effect": "NoSchedule"}, {"key": "b", "effect": "Sometimes"}]}});
    assert_eq!(
        create("v1", "Node", node),
        vec![
            "metadata.taints[1]: Duplicate value: core.Taint{Key:\"a\", Value:\"x\", Effect:\"NoSchedule\", TimeAdded:<nil>}: taints must be unique by key and effect pair".to_string(),
            "metadata.taints[2].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\"".to_string(),
        ]
    );

    let pvc = json!({"metadata": meta("data"), "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    assert_eq!(
        create("v1", "PersistentVolumeClaim", pvc.clone()),
        Vec::<String>::new()
    );
    assert_eq!(
        create(
            "v1",
            "PersistentVolumeClaim",
            json!({"metadata": meta("d"), "spec": {}})
        ),
        vec![
            "spec.accessModes: Required value: at least 1 access mode is required".to_string(),
            "spec.resources[storage]: Required value".to_string(),
        ]
    );
    let mut grown = pvc.clone();
    grown["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    let got = update("v1", "PersistentVolumeClaim", pvc, grown);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n"));

    let ing = json!({"metadata": meta("web"), "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
        {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    assert_eq!(
        create("networking.k8s.io/v1", "Ingress", ing),
        vec![
            "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
                .to_string()
        ]
    );

    let pc = json!({"metadata": {"name": "high"}, "value": 2_000_000_000});
    assert_eq!(
        create("scheduling.k8s.io/v1", "PriorityClass", pc),
        vec![
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"
                .to_string()
        ]
    );

    let sc_old = json!({"metadata": {"name": "local"}, "provisioner": "rancher.io/local-path"});
    let mut sc_new = sc_old.clone();
    sc_new["parameters"] = json!({"a": "b"});
    assert_eq!(
        update("storage.k8s.io/v1", "StorageClass", sc_old, sc_new),
        vec!["parameters: Forbidden: updates to parameters are forbidden.".to_string()]
    );

    let lease = json!({"metadata": meta("l"), "spec": {"leaseDurationSeconds": 0}});
    assert_eq!(
        create("coordination.k8s.io/v1", "Lease", lease),
        vec!["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0".to_string()]
    );

    let ep = json!({"metadata": meta("web"), "subsets": [{"addresses": [{"ip": "10.42.0.5"}], "ports": [{"port": 80}]}]});
    assert_eq!(create("v1", "Endpoints", ep), Vec::<String>::new());

    let slice = json!({"metadata": meta("web-abc"), "addressType": "IPv4", "endpoints": [{"addresses": ["x"]}]});
    assert_eq!(
        create("discovery.k8s.io/v1", "EndpointSlice", slice),
        vec![
            "endpoints[0].addresses[0]: Invalid value: \"x\": must be a valid IPv4 address"
                .to_string()
        ]
    );
}

#[test]
fn selector_matching() {
    let labels = json!({"app": "web", "tier": "fe"});
    let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["fe", "be"]},
        {"key": "gone", "operator": "DoesNotExist"}]});
    assert_eq!(
        label_selector_matches(Some(&sel), Some(&labels)),
        Some(true)
    );
    assert_eq!(label_selector_matches(None, Some(&labels)), Some(false));
    assert_eq!(
        label_selector_matches(Some(&json!({})), Some(&labels)),
        Some(true)
    );
    let bad = json!({"matchExpressions": [{"key": "a", "operator": "Near"}]});
    assert_eq!(label_selector_matches(Some(&bad), Some(&labels)), None);
}

#[test]
fn type_invalid_renders_the_value() {
    let c = type_invalid("spec.replicas", &json!("three"), "must be an integer");
    assert_eq!(c.reason, "FieldValueTypeInvalid");
    assert_eq!(c.message, "Invalid value: \"three\": must be an integer");
}
