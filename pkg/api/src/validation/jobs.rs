//! Jobs and CronJobs, with the cron schedule parser.

use super::*;

pub(super) fn validate_job(e: &mut Errs, obj: &Value, old: Option<&Value>) {
    let spec = obj.get("spec");
    let manual = spec
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true);
    let sel = spec
        .and_then(|s| s.get("selector"))
        .filter(|s| !s.is_null());
    if !manual && sel.is_some() && old.is_none() {
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if uid.is_empty() {
            e.required("metadata.uid", "");
        }
        let labels = spec.and_then(|s| s.pointer("/template/metadata/labels"));
        let lmap = string_map(labels);
        for (key, want) in [
            ("controller-uid", uid),
            ("job-name", name),
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
        ] {
            let p = format!("spec.template.metadata.labels[{key}]");
            match lmap.get(key) {
                None => e.required(&p, &format!("must be '{want}'")),
                Some(v) if v != want => e.invalid(
                    &p,
                    Bad::Raw(go_string_map(labels)),
                    &format!("must be '{want}'"),
                ),
                _ => {}
            }
        }
        let expected: BTreeMap<String, String> = [
            ("batch.kubernetes.io/controller-uid", uid),
            ("batch.kubernetes.io/job-name", name),
            ("controller-uid", uid),
            ("job-name", name),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if let Some(Ok(reqs)) = selector_requirements(sel) {
            if !requirements_match(&reqs, &expected) {
                e.invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(sel)),
                    "`selector` not auto-generated",
                );
            }
        }
    }
    validate_job_spec(e, spec, "spec");
    match sel {
        None => e.required("spec.selector", ""),
        Some(_) => validate_label_selector(e, sel, "spec.selector"),
    }
    if let Some(Ok(reqs)) = selector_requirements(sel) {
        let labels = spec.and_then(|s| s.pointer("/template/metadata/labels"));
        if !requirements_match(&reqs, &string_map(labels)) {
            e.invalid(
                "spec.template.metadata.labels",
                Bad::Raw(go_string_map(labels)),
                "`selector` does not match template `labels`",
            );
        }
    }
    if let Some(old) = old {
        let os = old.get("spec");
        let indexed = spec.map(|s| str_at(s, "completionMode")) == Some("Indexed");
        let field =
            |s: Option<&Value>, k: &str| s.and_then(|s| s.get(k)).filter(|v| !v.is_null()).cloned();
        if !indexed {
            let (o, n) = (field(os, "completions"), field(spec, "completions"));
            e.immutable("spec.completions", bad_json(n.as_ref()), o != n);
        }
        let (o, n) = (field(os, "selector"), field(spec, "selector"));
        let changed = !json_semantic_eq(
            o.as_ref().unwrap_or(&Value::Null),
            n.as_ref().unwrap_or(&Value::Null),
        );
        e.immutable(
            "spec.selector",
            Bad::Raw(go_label_selector(n.as_ref())),
            changed,
        );
        let (o, n) = (field(os, "template"), field(spec, "template"));
        let changed = !json_semantic_eq(
            o.as_ref().unwrap_or(&Value::Null),
            n.as_ref().unwrap_or(&Value::Null),
        );
        let rendered = format!(
            "core.PodTemplateSpec{}",
            n.as_ref().map_or("{}".to_string(), Value::to_string)
        );
        e.immutable("spec.template", Bad::Raw(rendered), changed);
        for key in [
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
        ] {
            let (o, n) = (field(os, key), field(spec, key));
            let changed = !json_semantic_eq(
                o.as_ref().unwrap_or(&Value::Null),
                n.as_ref().unwrap_or(&Value::Null),
            );
            e.immutable(&format!("spec.{key}"), bad_json(n.as_ref()), changed);
        }
    }
}

/// Upstream `validateJobSpec` (shared by Jobs and CronJob job templates).
pub(super) fn validate_job_spec(e: &mut Errs, spec: Option<&Value>, path: &str) {
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        e.nonnegative(&format!("{path}.{key}"), get(key));
    }
    if get("maxFailedIndexes").is_some() && get("backoffLimitPerIndex").is_none() {
        e.required(
            &format!("{path}.backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        );
    }
    let mode = get("completionMode").and_then(Value::as_str);
    if let Some(mode) = mode {
        if mode != "NonIndexed" && mode != "Indexed" {
            e.not_supported(
                &format!("{path}.completionMode"),
                bad_str(mode),
                &["NonIndexed", "Indexed"],
            );
        }
        if mode == "Indexed" && get("completions").is_none() {
            e.required(
                &format!("{path}.completions"),
                "when completion mode is Indexed",
            );
        }
    }
    if mode.is_none_or(|m| m == "NonIndexed") {
        for key in ["backoffLimitPerIndex", "maxFailedIndexes"] {
            if let Some(v) = get(key) {
                e.invalid(
                    &format!("{path}.{key}"),
                    bad_json(Some(v)),
                    "requires indexed completion mode",
                );
            }
        }
    }
    if let Some(p) = get("podReplacementPolicy").and_then(Value::as_str) {
        let rp = format!("{path}.podReplacementPolicy");
        if get("podFailurePolicy").is_some() {
            if p != "Failed" {
                e.not_supported(&rp, bad_str(p), &["Failed"]);
            }
        } else if p != "Failed" && p != "TerminatingOrFailed" {
            e.not_supported(&rp, bad_str(p), &["Failed", "TerminatingOrFailed"]);
        }
    }
    let template = get("template");
    validate_pod_template(e, template, &format!("{path}.template"));
    let rp = template
        .map(|t| str_at_path(t, "/spec/restartPolicy"))
        .unwrap_or_default();
    let rpp = format!("{path}.template.spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        e.required(&rpp, "valid values: \"OnFailure\", \"Never\"");
    } else if rp != "OnFailure" && rp != "Never" {
        e.not_supported(&rpp, bad_str(rp), &["OnFailure", "Never"]);
    } else if get("podFailurePolicy").is_some() && rp != "Never" {
        e.invalid(
            &rpp,
            bad_str(rp),
            "only \"Never\" is supported when podFailurePolicy is specified",
        );
    }
}

pub(super) fn validate_cron_job(e: &mut Errs, obj: &Value, is_update: bool) {
    let spec = obj.get("spec");
    let get = |k: &str| spec.and_then(|s| s.get(k)).filter(|v| !v.is_null());
    let schedule = get("schedule").and_then(Value::as_str).unwrap_or_default();
    if schedule.is_empty() {
        e.required("spec.schedule", "");
    } else {
        if let Err(msg) = parse_cron(schedule) {
            e.invalid("spec.schedule", bad_str(schedule), &msg);
        }
        if schedule.contains("TZ") {
            e.invalid(
                "spec.schedule",
                bad_str(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            );
        }
    }
    e.nonnegative(
        "spec.startingDeadlineSeconds",
        get("startingDeadlineSeconds"),
    );
    if let Some(tz) = get("timeZone").and_then(Value::as_str) {
        let ok_part = |p: &str| {
            p != "."
                && p != ".."
                && !p.starts_with('-')
                && (1..=14).contains(&p.len())
                && p.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
        };
        if tz.is_empty() {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                "timeZone must be nil or non-empty string",
            );
        } else if !tz.split('/').all(ok_part) {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                &format!("unknown time zone {tz}"),
            );
        } else if tz.eq_ignore_ascii_case("Local") {
            e.invalid(
                "spec.timeZone",
                bad_str(tz),
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            );
        }
    }
    match get("concurrencyPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default()
    {
        "Allow" | "Forbid" | "Replace" => {}
        "" => e.required("spec.concurrencyPolicy", ""),
        other => e.not_supported(
            "spec.concurrencyPolicy",
            bad_str(other),
            &["Allow", "Forbid", "Replace"],
        ),
    }
    let jt_spec = get("jobTemplate").and_then(|j| j.get("spec"));
    validate_job_spec(e, jt_spec, "spec.jobTemplate.spec");
    if let Some(sel) = jt_spec
        .and_then(|s| s.get("selector"))
        .filter(|v| !v.is_null())
    {
        e.invalid(
            "spec.jobTemplate.spec.selector",
            Bad::Raw(go_label_selector(Some(sel))),
            "`selector` will be auto-generated",
        );
    }
    if jt_spec
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        e.not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Raw("true".into()),
            &["nil", "false"],
        );
    }
    e.nonnegative(
        "spec.successfulJobsHistoryLimit",
        get("successfulJobsHistoryLimit"),
    );
    e.nonnegative("spec.failedJobsHistoryLimit", get("failedJobsHistoryLimit"));
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !is_update && name.len() > 52 {
        e.invalid(
            "metadata.name",
            bad_str(name),
            "must be no more than 52 characters",
        );
    }
}

/// The `robfig/cron` standard parser's checks (5 fields or a descriptor), with its messages.
pub fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    let mut spec = spec.to_string();
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec
            .split_once(' ')
            .map(|(_, rest)| rest.trim().to_string())
            .unwrap_or_default();
    }
    if let Some(desc) = spec.strip_prefix('@') {
        return match desc {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => {
                let dur = &spec["@every ".len()..];
                if parse_go_duration(dur) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {spec}: time: invalid duration {}",
                        go_quote(dur)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [CronBounds; 5] = [
        (0, 59, None),
        (0, 23, None),
        (1, 31, None),
        (1, 12, Some((MONTHS, 1))),
        (0, 6, Some((DAYS, 0))),
    ];
    for (field, (min, max, names)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names)?;
        }
    }
    Ok(())
}

/// A cron field's minimum, maximum and optional names (with the value of the first name).
pub(super) type CronBounds = (i64, i64, Option<(&'static [&'static str], i64)>);

pub(super) fn cron_int(expr: &str) -> Result<i64, String> {
    let digits = expr.strip_prefix(['+', '-']).unwrap_or(expr);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        ));
    }
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: value out of range",
            go_quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n)
}

pub(super) fn cron_int_or_name(expr: &str, names: Option<(&[&str], i64)>) -> Result<i64, String> {
    if let Some((names, base)) = names {
        let lower = expr.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Ok(i as i64 + base);
        }
    }
    cron_int(expr)
}

pub(super) fn cron_range(
    expr: &str,
    min: i64,
    max: i64,
    names: Option<(&[&str], i64)>,
) -> Result<(), String> {
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end);
    if low_high[0] == "*" || low_high[0] == "?" {
        start = min;
        end = max;
    } else {
        start = cron_int_or_name(low_high[0], names)?;
        end = match low_high.len() {
            1 => start,
            2 => cron_int_or_name(low_high[1], names)?,
            _ => return Err(format!("too many hyphens: {expr}")),
        };
    }
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let s = cron_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            s
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Go's `time.ParseDuration` grammar: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` with known units.
pub(super) fn parse_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 || rest[..num_len] == *"." {
            return false;
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        if !matches!(
            &rest[..unit_len],
            "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h"
        ) {
            return false;
        }
        rest = &rest[unit_len..];
    }
    true
}
