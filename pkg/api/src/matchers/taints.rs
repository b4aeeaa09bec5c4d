//! Taints against tolerations, once: upstream's `Toleration.ToleratesTaint` and
//! `FindMatchingUntoleratedTaint`, used by the scheduler, the DaemonSet controller and the
//! node lifecycle controller's taint manager.

use k8s_openapi::api::core::v1::{Taint, Toleration};

/// `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key every key;
/// `Exists` then tolerates any value and `Equal` (or no operator) needs the same value. Other
/// operators tolerate nothing.
///
/// An empty key with `Equal` compares only the values, as upstream's code does (validation
/// rejects that toleration, so it only reaches here from an unvalidated spec).
pub fn tolerates(t: &Toleration, taint: &Taint) -> bool {
    if t.effect
        .as_deref()
        .is_some_and(|e| !e.is_empty() && e != taint.effect)
    {
        return false;
    }
    if t.key
        .as_deref()
        .is_some_and(|k| !k.is_empty() && k != taint.key)
    {
        return false;
    }
    match t.operator.as_deref().unwrap_or("") {
        "Exists" => true,
        "" | "Equal" => t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        _ => false,
    }
}

/// `TolerationsTolerateTaint`: whether any of `tolerations` tolerates `taint`.
pub fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates(t, taint))
}

/// `FindMatchingUntoleratedTaint`: the first taint passing `filter` that no toleration
/// tolerates.
pub fn first_untolerated<'a>(
    taints: &'a [Taint],
    tolerations: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .filter(|t| filter(t))
        .find(|taint| !tolerated(tolerations, taint))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: Option<&str>, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: value.map(Into::into),
            effect: effect.into(),
            time_added: None,
        }
    }

    fn tol(
        key: Option<&str>,
        op: Option<&str>,
        value: Option<&str>,
        effect: Option<&str>,
    ) -> Toleration {
        Toleration {
            key: key.map(Into::into),
            operator: op.map(Into::into),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            toleration_seconds: None,
        }
    }

    #[test]
    fn upstream_toleration_rules() {
        let kv = taint("k", Some("v"), "NoSchedule");
        // Equal (also spelled as no operator) needs the key and the value.
        assert!(tolerates(
            &tol(Some("k"), Some("Equal"), Some("v"), None),
            &kv
        ));
        assert!(tolerates(&tol(Some("k"), None, Some("v"), None), &kv));
        assert!(!tolerates(
            &tol(Some("k"), Some("Equal"), Some("w"), None),
            &kv
        ));
        assert!(!tolerates(
            &tol(Some("j"), Some("Equal"), Some("v"), None),
            &kv
        ));
        assert!(!tolerates(&tol(Some("k"), Some("Equal"), None, None), &kv));
        // Exists ignores the value; with no key it tolerates every taint.
        assert!(tolerates(
            &tol(Some("k"), Some("Exists"), Some("x"), None),
            &kv
        ));
        assert!(!tolerates(&tol(Some("j"), Some("Exists"), None, None), &kv));
        assert!(tolerates(&tol(None, Some("Exists"), None, None), &kv));
        assert!(tolerates(
            &tol(Some(""), Some("Exists"), None, Some("")),
            &kv
        ));
        // An empty effect matches every effect; a set one only its own.
        assert!(tolerates(
            &tol(Some("k"), Some("Exists"), None, Some("NoSchedule")),
            &kv
        ));
        assert!(!tolerates(
            &tol(Some("k"), Some("Exists"), None, Some("NoExecute")),
            &kv
        ));
        assert!(!tolerates(
            &tol(None, Some("Exists"), None, Some("PreferNoSchedule")),
            &kv
        ));
        // Unknown operators tolerate nothing.
        assert!(!tolerates(
            &tol(Some("k"), Some("Gt"), Some("v"), None),
            &kv
        ));
    }

    /// The case where the scheduler's copy and the DaemonSet controller's copy disagreed: a
    /// toleration with no key and operator `Equal`. The DaemonSet copy demanded a key; upstream
    /// skips the key check for an empty key and compares the values only.
    #[test]
    fn equal_without_a_key_compares_values_only() {
        let no_value = taint("dedicated", None, "NoSchedule");
        let valued = taint("dedicated", Some("gpu"), "NoSchedule");
        let empty_equal = tol(None, Some("Equal"), None, None);
        assert!(tolerates(&empty_equal, &no_value));
        assert!(!tolerates(&empty_equal, &valued));
        let gpu_equal = tol(None, Some("Equal"), Some("gpu"), None);
        assert!(tolerates(&gpu_equal, &valued));
        assert!(tolerates(&tol(Some(""), None, Some("gpu"), None), &valued));
    }

    #[test]
    fn untolerated_taints_are_found_through_the_filter() {
        let taints = vec![
            taint("soft", None, "PreferNoSchedule"),
            taint("a", None, "NoSchedule"),
            taint("b", None, "NoExecute"),
        ];
        let hard = |t: &Taint| t.effect == "NoSchedule" || t.effect == "NoExecute";
        assert_eq!(
            first_untolerated(&taints, &[], hard).map(|t| t.key.as_str()),
            Some("a")
        );
        let tols = vec![tol(Some("a"), Some("Exists"), None, None)];
        assert_eq!(
            first_untolerated(&taints, &tols, hard).map(|t| t.key.as_str()),
            Some("b")
        );
        let all = vec![tol(None, Some("Exists"), None, None)];
        assert_eq!(first_untolerated(&taints, &all, |_| true), None);
        assert!(tolerated(&all, &taints[0]));
        assert!(!tolerated(&[], &taints[0]));
    }
}
