//! Patching objects: strategic merge patch, JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and server-side apply with `metadata.managedFields` tracking.

pub mod apply;
pub mod schema;
mod strategic;

use serde_json::Value;

pub use apply::{fields_of, server_side_apply, track_update};
pub use strategic::strategic_merge;

/// Why a patch could not be applied.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum PatchError {
    /// The patch document itself is malformed (HTTP 400 BadRequest).
    #[error("{0}")]
    BadRequest(String),
    /// The patch is well formed but cannot be applied to this object (HTTP 422 Invalid).
    #[error("{0}")]
    Invalid(String),
    /// Server-side apply found fields owned by other managers (HTTP 409 Conflict); `message`
    /// is upstream's text, `conflicts` one entry per conflicting (manager, field).
    #[error("{message}")]
    Conflict {
        message: String,
        conflicts: Vec<ApplyConflict>,
    },
}

/// One field of a server-side apply conflict: who owns it and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyConflict {
    /// The owning manager as upstream prints it, e.g. `"kubectl-client-side-apply" using apps/v1`.
    pub manager: String,
    /// The field path as upstream prints it, e.g. `.spec.replicas` or
    /// `.spec.template.spec.containers[name="web"].image`.
    pub field: String,
}

/// Applies a JSON merge patch (RFC 7386): objects merge recursively, `null` deletes, anything
/// else (arrays included) replaces.
pub fn json_merge(original: &Value, patch: &Value) -> Value {
    let mut doc = original.clone();
    json_patch::merge(&mut doc, patch);
    doc
}

/// Applies a JSON patch (RFC 6902): a list of `add`/`remove`/`replace`/`move`/`copy`/`test`
/// operations, all or nothing.
pub fn json_patch(original: &Value, ops: &Value) -> Result<Value, PatchError> {
    let patch: json_patch::Patch = serde_json::from_value(ops.clone()).map_err(|e| {
        PatchError::BadRequest(format!(
            "invalid json patch: {e}: send a list of RFC 6902 operations"
        ))
    })?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &patch).map_err(|e| {
        let op = patch.0.get(e.operation).map(op_name).unwrap_or("unknown");
        PatchError::Invalid(format!(
            "json patch operation {} ({op} {}) failed: {}",
            e.operation,
            if e.path.is_root() {
                "/".to_string()
            } else {
                e.path.to_string()
            },
            e.kind
        ))
    })?;
    Ok(doc)
}

fn op_name(op: &json_patch::PatchOperation) -> &'static str {
    match op {
        json_patch::PatchOperation::Add(_) => "add",
        json_patch::PatchOperation::Remove(_) => "remove",
        json_patch::PatchOperation::Replace(_) => "replace",
        json_patch::PatchOperation::Move(_) => "move",
        json_patch::PatchOperation::Copy(_) => "copy",
        json_patch::PatchOperation::Test(_) => "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_merge_follows_rfc7386() {
        let orig = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        let patch = json!({"a": "z", "c": {"f": null}, "l": [3]});
        assert_eq!(
            json_merge(&orig, &patch),
            json!({"a": "z", "c": {"d": "e"}, "l": [3]})
        );
    }

    #[test]
    fn json_patch_applies_operations() {
        let orig = json!({"spec": {"replicas": 1, "template": {"a": 1}}, "metadata": {}});
        let ops = json!([
            {"op": "replace", "path": "/spec/template", "value": {"b": 2}},
            {"op": "add", "path": "/metadata/annotations", "value": {"x": "y"}},
            {"op": "test", "path": "/spec/replicas", "value": 1}
        ]);
        assert_eq!(
            json_patch(&orig, &ops).unwrap(),
            json!({"spec": {"replicas": 1, "template": {"b": 2}}, "metadata": {"annotations": {"x": "y"}}})
        );
    }

    #[test]
    fn json_patch_errors_name_the_failing_op() {
        let orig = json!({"spec": {"replicas": 1}});
        let ops = json!([
            {"op": "replace", "path": "/spec/replicas", "value": 2},
            {"op": "remove", "path": "/spec/missing"}
        ]);
        let err = json_patch(&orig, &ops).unwrap_err();
        match &err {
            PatchError::Invalid(m) => {
                assert!(m.contains("operation 1"), "{m}");
                assert!(m.contains("remove /spec/missing"), "{m}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let test_fail = json!([{"op": "test", "path": "/spec/replicas", "value": 5}]);
        assert!(matches!(
            json_patch(&orig, &test_fail),
            Err(PatchError::Invalid(_))
        ));
        let malformed = json!([{"op": "frobnicate", "path": "/x"}]);
        assert!(matches!(
            json_patch(&orig, &malformed),
            Err(PatchError::BadRequest(_))
        ));
        assert!(matches!(
            json_patch(&orig, &json!({"op": "add"})),
            Err(PatchError::BadRequest(_))
        ));
    }
}
