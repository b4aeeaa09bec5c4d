//! Label selectors: `metav1.LabelSelector` validation and matching (through the one JSON
//! selector in `crate::selector`).

use super::*;

/// Validates a `metav1.LabelSelector` (upstream `ValidateLabelSelector`).
pub(super) fn validate_label_selector(e: &mut Errs, sel: Option<&Value>, path: &str) {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return;
    };
    validate_labels(e, sel.get("matchLabels"), &format!("{path}.matchLabels"));
    for (i, r) in arr(sel.get("matchExpressions")).iter().enumerate() {
        let rp = format!("{path}.matchExpressions[{i}]");
        let values = arr(r.get("values"));
        match str_at(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    e.required(
                        &format!("{rp}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    );
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    e.forbidden(
                        &format!("{rp}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    );
                }
            }
            op => e.invalid(
                &format!("{rp}.operator"),
                bad_str(op),
                "not a valid selector operator",
            ),
        }
        let key = str_at(r, "key");
        for m in validate_label_key(key) {
            e.invalid(&format!("{rp}.key"), bad_str(key), &m);
        }
        for (j, v) in values.iter().enumerate() {
            let v = scalar_string(v);
            for m in validate_label_value(&v) {
                e.invalid(&format!("{rp}.values[{j}]"), Bad::Str(v.clone()), &m);
            }
        }
    }
}

/// A parsed label selector (upstream `LabelSelectorAsSelector`, read by the one JSON selector
/// implementation in [`crate::selector`]). `None` for a nil selector (which selects nothing);
/// `Err` when it cannot be converted.
pub(super) fn selector_requirements(sel: Option<&Value>) -> Option<Result<LabelSelector, ()>> {
    let sel = sel.filter(|s| !s.is_null())?;
    Some(LabelSelector::from_json(sel).map_err(|_| ()))
}

pub(super) fn requirements_match(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    sel.matches_labels(labels)
}

/// Whether a label selector matches `labels`: a nil selector matches nothing, an empty one
/// everything. `None` when the selector is invalid.
pub fn label_selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> Option<bool> {
    match selector_requirements(sel) {
        None => Some(false),
        Some(Err(())) => None,
        Some(Ok(reqs)) => Some(requirements_match(&reqs, &string_map(labels))),
    }
}
