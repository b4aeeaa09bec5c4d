//! The error list the validators append to (`field.ErrorList`): Required, Invalid,
//! NotSupported, Duplicate, Forbidden, TooLong and friends.

use super::*;

#[derive(Default)]
pub(super) struct Errs(pub(super) Vec<FieldCause>);

impl Errs {
    pub(super) fn push(&mut self, reason: &str, field: &str, message: String) {
        self.0.push(FieldCause {
            reason: reason.to_string(),
            message,
            field: field.to_string(),
        });
    }

    pub(super) fn with_detail(head: String, detail: &str) -> String {
        if detail.is_empty() {
            head
        } else {
            format!("{head}: {detail}")
        }
    }

    pub(super) fn required(&mut self, field: &str, detail: &str) {
        let m = Self::with_detail("Required value".into(), detail);
        self.push("FieldValueRequired", field, m);
    }

    pub(super) fn invalid(&mut self, field: &str, v: Bad, detail: &str) {
        let m = Self::with_detail(format!("Invalid value: {}", v.render()), detail);
        self.push("FieldValueInvalid", field, m);
    }

    pub(super) fn not_supported(&mut self, field: &str, v: Bad, valid: &[&str]) {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let q: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", q.join(", "))
        };
        let m = Self::with_detail(format!("Unsupported value: {}", v.render()), &detail);
        self.push("FieldValueNotSupported", field, m);
    }

    pub(super) fn duplicate(&mut self, field: &str, v: Bad) {
        self.push(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {}", v.render()),
        );
    }

    pub(super) fn not_found(&mut self, field: &str, v: Bad) {
        self.push(
            "FieldValueNotFound",
            field,
            format!("Not found: {}", v.render()),
        );
    }

    pub(super) fn forbidden(&mut self, field: &str, detail: &str) {
        let m = Self::with_detail("Forbidden".into(), detail);
        self.push("FieldValueForbidden", field, m);
    }

    pub(super) fn too_long(&mut self, field: &str, max: usize) {
        self.push(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        );
    }

    pub(super) fn type_invalid(&mut self, field: &str, v: Bad, detail: &str) {
        let m = Self::with_detail(format!("Invalid value: {}", v.render()), detail);
        self.push("FieldValueTypeInvalid", field, m);
    }

    pub(super) fn nonnegative(&mut self, field: &str, v: Option<&Value>) {
        if let Some(n) = v.and_then(Value::as_i64) {
            if n < 0 {
                self.invalid(field, Bad::Int(n), IS_NEGATIVE);
            }
        }
    }

    pub(super) fn immutable(&mut self, field: &str, new: Bad, changed: bool) {
        if changed {
            self.invalid(field, new, FIELD_IMMUTABLE);
        }
    }
}
