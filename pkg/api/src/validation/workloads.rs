//! Workloads: ReplicaSets, ReplicationControllers, Deployments, DaemonSets and StatefulSets.

use super::*;

pub(super) fn validate_rc(e: &mut Errs, obj: &Value) {
    let spec = obj.get("spec");
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let selector = spec.and_then(|s| s.get("selector"));
    let sel_empty = selector
        .and_then(Value::as_object)
        .is_none_or(Map::is_empty);
    if sel_empty {
        e.required("spec.selector", "");
    }
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    let template = spec
        .and_then(|s| s.get("template"))
        .filter(|t| !t.is_null());
    let Some(t) = template else {
        e.required("spec.template", "");
        return;
    };
    if !sel_empty {
        let want = string_map(selector);
        let have = string_map(t.pointer("/metadata/labels"));
        if !want.iter().all(|(k, v)| have.get(k) == Some(v)) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_string_map(t.pointer("/metadata/labels"))),
                "`selector` does not match template `labels`",
            );
        }
    }
    validate_pod_template(e, Some(t), "spec.template");
    let rp = str_at_path(t, "/spec/restartPolicy");
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
    }
    if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
        e.forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in ReplicationController is not Supported",
        );
    }
}

pub(super) fn str_at_path<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The selector checks shared by Deployments and ReplicaSets; returns the parsed selector.
pub(super) fn validate_required_selector(e: &mut Errs, spec: Option<&Value>, what: &str) {
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    match sel {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, Some(sel), "spec.selector");
            let n =
                sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len();
            if n == 0 {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(Some(sel))),
                    &format!("empty selector is invalid for {what}"),
                );
            }
        }
    }
}

/// Upstream `ValidatePodTemplateSpecForReplicaSet`.
pub(super) fn validate_template_for_replica_set(e: &mut Errs, spec: Option<&Value>, owner: &str) {
    let sel = spec.and_then(|s| s.get("selector"));
    let template = spec.and_then(|s| s.get("template"));
    match selector_requirements(sel) {
        Some(Err(())) => {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(sel)),
                "invalid label selector",
            );
            return;
        }
        Some(Ok(reqs)) if !reqs.is_empty() => {
            let labels = template.and_then(|t| t.pointer("/metadata/labels"));
            if !requirements_match(&reqs, &string_map(labels)) {
                e.invalid(
                    "spec.template.metadata.labels",
                    Bad::Raw(go_string_map(labels)),
                    "`selector` does not match template `labels`",
                );
            }
        }
        _ => {}
    }
    validate_pod_template(e, template, "spec.template");
    if let Some(t) = template.filter(|t| !t.is_null()) {
        let rp = str_at_path(t, "/spec/restartPolicy");
        if rp != "Always" {
            e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
        }
        if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
            e.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                &format!("activeDeadlineSeconds in {owner} is not Supported"),
            );
        }
    }
}

pub(super) fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) if is_valid_percent(s) => {
            s.trim_end_matches('%').parse().unwrap_or(0)
        }
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

pub(super) fn validate_positive_int_or_percent(e: &mut Errs, v: Option<&Value>, path: &str) {
    match v {
        Some(Value::String(s)) if !is_valid_percent(s) => {
            e.invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                &regex_error(
                    "a valid percent string must be a numeric string followed by an ending '%'",
                    "[0-9]+%",
                    &["1%", "93%"],
                ),
            );
        }
        Some(Value::Number(_)) => e.nonnegative(path, v),
        _ => {}
    }
}

pub(super) fn not_more_than_100_percent(e: &mut Errs, v: Option<&Value>, path: &str) {
    if let Some(Value::String(s)) = v {
        if is_valid_percent(s) && int_or_percent_value(v) > 100 {
            e.invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                "must not be greater than 100%",
            );
        }
    }
}

pub(super) fn validate_deployment_spec(e: &mut Errs, spec: Option<&Value>) {
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    validate_required_selector(e, spec, "deployment");
    validate_template_for_replica_set(e, spec, "ReplicaSet");
    let strategy = spec.and_then(|s| s.get("strategy"));
    let ru = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|v| !v.is_null());
    match strategy.map(|s| str_at(s, "type")).unwrap_or_default() {
        "Recreate" => {
            if ru.is_some() {
                e.forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                );
            }
        }
        "RollingUpdate" => match ru {
            None => e.required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            ),
            Some(ru) => {
                let mu = ru.get("maxUnavailable");
                let ms = ru.get("maxSurge");
                let p = "spec.strategy.rollingUpdate";
                validate_positive_int_or_percent(e, mu, &format!("{p}.maxUnavailable"));
                validate_positive_int_or_percent(e, ms, &format!("{p}.maxSurge"));
                if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                    e.invalid(
                        &format!("{p}.maxUnavailable"),
                        Bad::Raw(go_int_or_string(mu)),
                        "may not be 0 when `maxSurge` is 0",
                    );
                }
                not_more_than_100_percent(e, mu, &format!("{p}.maxUnavailable"));
            }
        },
        other => {
            let rendered = format!(
                "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{}}}",
                go_quote(other),
                if ru.is_some() {
                    "(*apps.RollingUpdateDeployment)(…)"
                } else {
                    "(*apps.RollingUpdateDeployment)(nil)"
                }
            );
            e.not_supported(
                "spec.strategy",
                Bad::Raw(rendered),
                &["Recreate", "RollingUpdate"],
            );
        }
    }
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    e.nonnegative(
        "spec.revisionHistoryLimit",
        spec.and_then(|s| s.get("revisionHistoryLimit")),
    );
    if let Some(pd) = spec
        .and_then(|s| s.get("progressDeadlineSeconds"))
        .and_then(Value::as_i64)
    {
        e.nonnegative(
            "spec.progressDeadlineSeconds",
            spec.and_then(|s| s.get("progressDeadlineSeconds")),
        );
        let min_ready = spec
            .and_then(|s| s.get("minReadySeconds"))
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if pd <= min_ready {
            e.invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(pd),
                "must be greater than minReadySeconds",
            );
        }
    }
}

pub(super) fn validate_replica_set_spec(e: &mut Errs, spec: Option<&Value>) {
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    validate_required_selector(e, spec, "deployment");
    validate_template_for_replica_set(e, spec, "ReplicaSet");
}

pub(super) fn validate_daemon_set_spec(e: &mut Errs, spec: Option<&Value>) {
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    validate_label_selector(e, sel, "spec.selector");
    let template = spec.and_then(|s| s.get("template"));
    let labels = template.and_then(|t| t.pointer("/metadata/labels"));
    if label_selector_matches(sel, labels) == Some(false) {
        e.invalid(
            "spec.template.metadata.labels",
            Bad::Raw(go_string_map(labels)),
            "`selector` does not match template `labels`",
        );
    }
    if let Some(sel) = sel {
        if sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len() == 0 {
            e.invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(Some(sel))),
                "empty selector is invalid for daemonset",
            );
        }
    }
    validate_pod_template(e, template, "spec.template");
    if let Some(t) = template.filter(|t| !t.is_null()) {
        let rp = str_at_path(t, "/spec/restartPolicy");
        if rp != "Always" {
            e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
        }
        if is_set(t.pointer("/spec/activeDeadlineSeconds")) {
            e.forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in DaemonSet is not Supported",
            );
        }
    }
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let strategy = spec.and_then(|s| s.get("updateStrategy"));
    let ty = strategy.map(|s| str_at(s, "type")).unwrap_or_default();
    match ty {
        "OnDelete" => {}
        "RollingUpdate" => match strategy
            .and_then(|s| s.get("rollingUpdate"))
            .filter(|v| !v.is_null())
        {
            None => e.required("spec.updateStrategy.rollingUpdate", ""),
            Some(ru) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                validate_positive_int_or_percent(e, mu, &format!("{p}.maxUnavailable"));
                validate_positive_int_or_percent(e, ms, &format!("{p}.maxSurge"));
                not_more_than_100_percent(e, mu, &format!("{p}.maxUnavailable"));
                not_more_than_100_percent(e, ms, &format!("{p}.maxSurge"));
                let has_u = int_or_percent_value(mu) != 0;
                let has_s = int_or_percent_value(ms) != 0;
                if has_u && has_s {
                    e.invalid(
                        &format!("{p}.maxSurge"),
                        Bad::Raw(go_int_or_string(ms)),
                        "may not be set when maxUnavailable is non-zero",
                    );
                } else if !has_u && !has_s {
                    e.required(
                        &format!("{p}.maxUnavailable"),
                        "cannot be 0 when maxSurge is 0",
                    );
                }
            }
        },
        other => {
            let rendered = format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            );
            e.not_supported(
                "spec.updateStrategy",
                Bad::Raw(rendered),
                &["RollingUpdate", "OnDelete"],
            );
        }
    }
    e.nonnegative(
        "spec.revisionHistoryLimit",
        spec.and_then(|s| s.get("revisionHistoryLimit")),
    );
}

/// Deployments, ReplicaSets and DaemonSets: `spec.selector` may not change after creation.
pub(super) fn immutable_selector(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let Some(old) = old else {
        return;
    };
    let (o, n) = (old.pointer("/spec/selector"), obj.pointer("/spec/selector"));
    let changed = !json_semantic_eq(o.unwrap_or(&Value::Null), n.unwrap_or(&Value::Null));
    e.immutable("spec.selector", Bad::Raw(go_label_selector(n)), changed);
}

pub(super) const STS_UPDATABLE: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

pub(super) fn validate_stateful_set(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    match spec
        .map(|s| str_at(s, "podManagementPolicy"))
        .unwrap_or_default()
    {
        "" => e.required("spec.podManagementPolicy", ""),
        "OrderedReady" | "Parallel" => {}
        other => e.invalid(
            "spec.podManagementPolicy",
            bad_str(other),
            "must be 'OrderedReady' or 'Parallel'",
        ),
    }
    let strategy = spec.and_then(|s| s.get("updateStrategy"));
    let ru = strategy
        .and_then(|s| s.get("rollingUpdate"))
        .filter(|v| !v.is_null());
    match strategy.map(|s| str_at(s, "type")).unwrap_or_default() {
        "" => e.required("spec.updateStrategy", ""),
        "OnDelete" => {
            if let Some(ru) = ru {
                e.invalid(
                    "spec.updateStrategy.rollingUpdate",
                    Bad::Raw(ru.to_string()),
                    "only allowed for updateStrategy 'RollingUpdate'",
                );
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = ru {
                e.nonnegative("spec.updateStrategy.rollingUpdate.partition", ru.get("partition"));
                if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let p = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                    validate_positive_int_or_percent(e, Some(mu), p);
                    if int_or_percent_value(Some(mu)) == 0 {
                        e.invalid(p, Bad::Raw(go_int_or_string(Some(mu))), "cannot be 0");
                    }
                    not_more_than_100_percent(e, Some(mu), p);
                }
            }
        }
        other => e.invalid(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                go_quote(other)
            )),
            "must be 'RollingUpdate' or 'OnDelete'",
        ),
    }
    e.nonnegative("spec.replicas", spec.and_then(|s| s.get("replicas")));
    e.nonnegative(
        "spec.minReadySeconds",
        spec.and_then(|s| s.get("minReadySeconds")),
    );
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    match sel {
        None => e.required("spec.selector", ""),
        Some(sel) => {
            validate_label_selector(e, Some(sel), "spec.selector");
            if sorted_map(sel.get("matchLabels")).len() + arr(sel.get("matchExpressions")).len()
                == 0
            {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(Some(sel))),
                    "empty selector is invalid for statefulset",
                );
            }
        }
    }
    let template = spec.and_then(|s| s.get("template"));
    match selector_requirements(sel) {
        Some(Err(())) => e.invalid("spec.selector", Bad::Raw(go_label_selector(sel)), ""),
        _ => {
            let labels = template.and_then(|t| t.pointer("/metadata/labels"));
            if let Some(Ok(reqs)) = selector_requirements(sel) {
                if !reqs.is_empty() && !requirements_match(&reqs, &string_map(labels)) {
                    e.invalid(
                        "spec.template.metadata.labels",
                        Bad::Raw(go_string_map(labels)),
                        "`selector` does not match template `labels`",
                    );
                }
            }
            validate_labels(e, labels, "spec.template.labels");
            validate_annotations(
                e,
                template.and_then(|t| t.pointer("/metadata/annotations")),
                "spec.template.annotations",
            );
        }
    }
    let rp = template
        .map(|t| str_at_path(t, "/spec/restartPolicy"))
        .unwrap_or_default();
    if rp != "Always" {
        e.not_supported("spec.template.spec.restartPolicy", bad_str(rp), &["Always"]);
    }
    if let Some(ads) = template
        .and_then(|t| t.pointer("/spec/activeDeadlineSeconds"))
        .filter(|v| !v.is_null())
    {
        e.invalid(
            "spec.template.spec.activeDeadlineSeconds",
            bad_json(Some(ads)),
            "must not be specified",
        );
    }
    if let Some(old) = old {
        let strip = |v: Option<&Value>| {
            let mut s = v.cloned().unwrap_or(Value::Null);
            if let Some(m) = s.as_object_mut() {
                for k in STS_UPDATABLE {
                    m.remove(*k);
                }
            }
            s
        };
        if !json_semantic_eq(&strip(old.get("spec")), &strip(spec)) {
            e.forbidden(
                "spec",
                "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            );
        }
    }
}
