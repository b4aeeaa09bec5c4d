//! Label matching, once: the operators of apimachinery's `labels.Requirement` over a label
//! value, a validated `Requirement`, map selectors (`labels.SelectorFromSet`) and the adaptor
//! for k8s-openapi's `metav1.LabelSelector`. The `labelSelector=` strings and JSON selectors of
//! [`crate::selector`] match through [`value_matches`] too.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::BTreeMap;

/// A requirement operator as `metav1.LabelSelector` and `NodeSelectorRequirement` spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    /// Numeric comparison (node selectors and `labelSelector=` strings only).
    Gt,
    Lt,
}

impl Op {
    /// The operator named `s` (`In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`).
    pub fn parse(s: &str) -> Option<Op> {
        Some(match s {
            "In" => Op::In,
            "NotIn" => Op::NotIn,
            "Exists" => Op::Exists,
            "DoesNotExist" => Op::DoesNotExist,
            "Gt" => Op::Gt,
            "Lt" => Op::Lt,
            _ => return None,
        })
    }
}

/// `labels.Requirement.Matches` for one key: `have` is the object's value for the key (`None`
/// when the label is absent). `In` needs the value among `values`, `NotIn` an absent label or a
/// value outside them; `Gt`/`Lt` compare the label and the single requirement value (spaces
/// around it trimmed) as 64-bit integers and fail when either is not one.
pub fn value_matches<S: AsRef<str>>(op: Op, values: &[S], have: Option<&str>) -> bool {
    let listed = |v: &str| values.iter().any(|x| x.as_ref() == v);
    match op {
        Op::In => have.is_some_and(listed),
        Op::NotIn => have.is_none_or(|v| !listed(v)),
        Op::Exists => have.is_some(),
        Op::DoesNotExist => have.is_none(),
        Op::Gt | Op::Lt => {
            let (Some(Ok(have)), [want]) = (have.map(str::parse::<i64>), values) else {
                return false;
            };
            let Ok(want) = want.as_ref().trim().parse::<i64>() else {
                return false;
            };
            if op == Op::Gt {
                have > want
            } else {
                have < want
            }
        }
    }
}

/// One `key op values` requirement whose values fit its operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

impl Requirement {
    /// The value-count rules of `labels.NewRequirement`: `In`/`NotIn` need at least one value,
    /// `Exists`/`DoesNotExist` none, `Gt`/`Lt` exactly one integer. `None` when they are broken
    /// (upstream then rejects the whole selector, so callers match nothing).
    pub fn new(key: impl Into<String>, op: Op, values: Vec<String>) -> Option<Requirement> {
        let fits = match op {
            Op::In | Op::NotIn => !values.is_empty(),
            Op::Exists | Op::DoesNotExist => values.is_empty(),
            Op::Gt | Op::Lt => values.len() == 1 && values[0].trim().parse::<i64>().is_ok(),
        };
        fits.then(|| Requirement {
            key: key.into(),
            op,
            values,
        })
    }

    /// Whether `labels` satisfy the requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        value_matches(
            self.op,
            &self.values,
            labels.get(&self.key).map(String::as_str),
        )
    }
}

/// `labels.SelectorFromSet(selector).Matches(labels)`: every pair present with the same value;
/// an empty map matches everything (a Service's `spec.selector`, a pod's `nodeSelector`).
pub fn map_selector_matches(
    selector: &BTreeMap<String, String>,
    labels: &BTreeMap<String, String>,
) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The requirements of a `metav1.LabelSelector`, as `metav1.LabelSelectorAsSelector` builds
/// them: `matchLabels` pairs as `In [value]`, then `matchExpressions` (only `In`, `NotIn`,
/// `Exists` and `DoesNotExist` are allowed there). `None` when a requirement is invalid.
pub fn selector_requirements(sel: &LabelSelector) -> Option<Vec<Requirement>> {
    let mut reqs = Vec::new();
    for (k, v) in sel.match_labels.iter().flatten() {
        reqs.push(Requirement::new(k.clone(), Op::In, vec![v.clone()])?);
    }
    for e in sel.match_expressions.iter().flatten() {
        let op = Op::parse(&e.operator).filter(|op| !matches!(op, Op::Gt | Op::Lt))?;
        reqs.push(Requirement::new(
            e.key.clone(),
            op,
            e.values.clone().unwrap_or_default(),
        )?);
    }
    Some(reqs)
}

/// `metav1.LabelSelectorAsSelector(sel).Matches(labels)` for a typed selector: an empty
/// selector matches everything; an invalid one (unknown operator, values that do not fit the
/// operator) matches nothing.
pub fn selector_matches(sel: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    let empty = BTreeMap::new();
    let labels = labels.unwrap_or(&empty);
    selector_requirements(sel).is_some_and(|reqs| reqs.iter().all(|r| r.matches(labels)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn operators_over_one_value() {
        let ab = ["a", "b"];
        assert!(value_matches(Op::In, &ab, Some("a")));
        assert!(!value_matches(Op::In, &ab, Some("c")));
        assert!(!value_matches(Op::In, &ab, None));
        assert!(value_matches(Op::NotIn, &ab, Some("c")));
        assert!(value_matches(Op::NotIn, &ab, None));
        assert!(!value_matches(Op::NotIn, &ab, Some("b")));
        let none: [&str; 0] = [];
        assert!(value_matches(Op::Exists, &none, Some("")));
        assert!(!value_matches(Op::Exists, &none, None));
        assert!(value_matches(Op::DoesNotExist, &none, None));
        assert!(!value_matches(Op::DoesNotExist, &none, Some("x")));
        assert!(value_matches(Op::Gt, &["4"], Some("8")));
        assert!(!value_matches(Op::Gt, &["8"], Some("8")));
        assert!(value_matches(Op::Lt, &[" 16 "], Some("8")));
        assert!(
            !value_matches(Op::Lt, &["16"], Some("x")),
            "non-numeric label"
        );
        assert!(
            !value_matches(Op::Gt, &["x"], Some("8")),
            "non-numeric bound"
        );
        assert!(!value_matches(Op::Gt, &["1", "2"], Some("8")), "two bounds");
        assert!(!value_matches(Op::Gt, &["1"], None), "absent label");
    }

    #[test]
    fn requirements_check_their_values() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(Requirement::new("k", Op::In, v(&[])).is_none());
        assert!(Requirement::new("k", Op::NotIn, v(&[])).is_none());
        assert!(Requirement::new("k", Op::Exists, v(&["a"])).is_none());
        assert!(Requirement::new("k", Op::Gt, v(&["a"])).is_none());
        assert!(Requirement::new("k", Op::Lt, v(&["1", "2"])).is_none());
        let r = Requirement::new("k", Op::In, v(&["a"])).unwrap();
        assert!(r.matches(&labels(&[("k", "a")])));
        assert!(!r.matches(&labels(&[("j", "a")])));
        assert_eq!(Op::parse("Near"), None);
        assert_eq!(Op::parse("DoesNotExist"), Some(Op::DoesNotExist));
    }

    #[test]
    fn map_selectors() {
        let l = labels(&[("app", "web"), ("tier", "fe")]);
        assert!(map_selector_matches(&labels(&[("app", "web")]), &l));
        assert!(!map_selector_matches(&labels(&[("app", "db")]), &l));
        assert!(!map_selector_matches(&labels(&[("zone", "a")]), &l));
        assert!(map_selector_matches(&BTreeMap::new(), &l));
    }

    #[test]
    fn typed_label_selectors() {
        let req = |k: &str, op: &str, vals: &[&str]| LabelSelectorRequirement {
            key: k.into(),
            operator: op.into(),
            values: (!vals.is_empty()).then(|| vals.iter().map(|v| v.to_string()).collect()),
        };
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["fe", "be"]),
                req("canary", "DoesNotExist", &[]),
            ]),
        };
        assert!(selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "fe")]))
        ));
        assert!(!selector_matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "fe"), ("canary", "1")]))
        ));
        assert!(!selector_matches(&sel, Some(&labels(&[("app", "web")]))));
        assert!(!selector_matches(&sel, None));
        assert!(selector_matches(&LabelSelector::default(), None));
        // Operators a metav1.LabelSelector does not have, and misfit values, match nothing.
        for bad in [
            req("n", "Gt", &["1"]),
            req("app", "Near", &["web"]),
            req("app", "In", &[]),
            req("app", "Exists", &["web"]),
        ] {
            let s = LabelSelector {
                match_expressions: Some(vec![bad.clone()]),
                ..Default::default()
            };
            assert!(
                !selector_matches(&s, Some(&labels(&[("app", "web"), ("n", "5")]))),
                "{bad:?}"
            );
        }
        let not_in = LabelSelector {
            match_expressions: Some(vec![req("app", "NotIn", &["db"])]),
            ..Default::default()
        };
        assert!(selector_matches(&not_in, None));
        assert!(selector_matches(&not_in, Some(&labels(&[("app", "web")]))));
        assert!(!selector_matches(&not_in, Some(&labels(&[("app", "db")]))));
    }
}
