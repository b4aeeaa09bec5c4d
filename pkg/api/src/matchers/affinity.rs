//! Node selectors and required node affinity, once: upstream's
//! `component-helpers/scheduling/corev1/nodeaffinity` as the scheduler's NodeAffinity filter
//! and the DaemonSet controller's `NodeShouldRunDaemonPod` use it. Terms are ORed, the
//! requirements inside a term ANDed; `matchExpressions` take In/NotIn/Exists/DoesNotExist/Gt/Lt
//! over the node's labels and `matchFields` only `metadata.name` In/NotIn with one value.

use super::labels::{map_selector_matches, Op, Requirement};
use k8s_openapi::api::core::v1::{Node, NodeSelectorTerm, PodSpec};
use std::collections::BTreeMap;

/// A `matchFields` requirement: `metadata.name` equal (`In`) or not equal (`NotIn`) to `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FieldReq {
    equal: bool,
    name: String,
}

/// A parsed `NodeSelectorTerm`. A term with an invalid requirement, or with no requirement at
/// all, matches no node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    labels: Vec<Requirement>,
    fields: Vec<FieldReq>,
    valid: bool,
}

impl Term {
    /// Parses a term once so that matching many nodes does not re-read it.
    pub fn parse(t: &NodeSelectorTerm) -> Term {
        let mut valid = true;
        let mut labels = Vec::new();
        for r in t.match_expressions.iter().flatten() {
            let req = Op::parse(&r.operator).and_then(|op| {
                Requirement::new(r.key.clone(), op, r.values.clone().unwrap_or_default())
            });
            match req {
                Some(req) => labels.push(req),
                None => valid = false,
            }
        }
        let mut fields = Vec::new();
        for r in t.match_fields.iter().flatten() {
            let values = r.values.as_deref().unwrap_or(&[]);
            match (r.key.as_str(), r.operator.as_str(), values) {
                ("metadata.name", "In", [v]) => fields.push(FieldReq {
                    equal: true,
                    name: v.clone(),
                }),
                ("metadata.name", "NotIn", [v]) => fields.push(FieldReq {
                    equal: false,
                    name: v.clone(),
                }),
                _ => valid = false,
            }
        }
        if labels.is_empty() && fields.is_empty() {
            valid = false;
        }
        Term {
            labels,
            fields,
            valid,
        }
    }

    /// False when the term can match no node (an invalid or empty term).
    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Whether a node with these labels and this name satisfies every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        self.valid
            && self.labels.iter().all(|r| r.matches(labels))
            && self.fields.iter().all(|f| (f.name == name) == f.equal)
    }
}

/// Whether any of `terms` matches (a `NodeSelector`: its terms are ORed).
pub fn any_term_matches(terms: &[Term], labels: &BTreeMap<String, String>, name: &str) -> bool {
    terms.iter().any(|t| t.matches(labels, name))
}

/// Upstream's `nodeaffinity.GetRequiredNodeAffinity(pod)`: the pod's `nodeSelector` and the
/// terms of its required node affinity; a node must satisfy both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequiredNodeAffinity {
    node_selector: Option<BTreeMap<String, String>>,
    terms: Option<Vec<Term>>,
}

impl RequiredNodeAffinity {
    /// Reads the constraints of a pod spec.
    pub fn from_spec(spec: &PodSpec) -> RequiredNodeAffinity {
        let terms = spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|na| {
                na.required_during_scheduling_ignored_during_execution
                    .as_ref()
            })
            .map(|ns| ns.node_selector_terms.iter().map(Term::parse).collect());
        RequiredNodeAffinity {
            node_selector: spec.node_selector.clone().filter(|m| !m.is_empty()),
            terms,
        }
    }

    /// Whether a node with these labels and this name satisfies the nodeSelector and one of
    /// the required terms (no required affinity admits every node; an empty term list none).
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>, name: &str) -> bool {
        self.node_selector
            .as_ref()
            .is_none_or(|sel| map_selector_matches(sel, labels))
            && self
                .terms
                .as_ref()
                .is_none_or(|terms| any_term_matches(terms, labels, name))
    }

    /// [`Self::matches_labels`] for a node object.
    pub fn matches(&self, node: &Node) -> bool {
        let empty = BTreeMap::new();
        self.matches_labels(
            node.metadata.labels.as_ref().unwrap_or(&empty),
            node.metadata.name.as_deref().unwrap_or(""),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn labels() -> BTreeMap<String, String> {
        [("zone", "a"), ("cores", "8"), ("gpu", "yes")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn term(exprs: Value, fields: Value) -> Term {
        Term::parse(
            &serde_json::from_value(json!({"matchExpressions": exprs, "matchFields": fields}))
                .unwrap(),
        )
    }

    fn e(k: &str, op: &str, vals: Value) -> Value {
        json!([{"key": k, "operator": op, "values": vals}])
    }

    fn f(op: &str, vals: Value) -> Value {
        json!([{"key": "metadata.name", "operator": op, "values": vals}])
    }

    #[test]
    fn term_operators() {
        let l = labels();
        let none = json!([]);
        let m = |t: Term| t.matches(&l, "n");
        assert!(m(term(e("zone", "In", json!(["a", "b"])), none.clone())));
        assert!(!m(term(e("zone", "In", json!(["b"])), none.clone())));
        assert!(m(term(e("zone", "NotIn", json!(["b"])), none.clone())));
        assert!(m(term(e("missing", "NotIn", json!(["b"])), none.clone())));
        assert!(m(term(e("gpu", "Exists", json!(null)), none.clone())));
        assert!(!m(term(
            e("gpu", "DoesNotExist", json!(null)),
            none.clone()
        )));
        assert!(m(term(e("cores", "Gt", json!(["4"])), none.clone())));
        assert!(m(term(e("cores", "Lt", json!(["16"])), none.clone())));
        assert!(!m(term(e("zone", "Lt", json!(["16"])), none.clone())));
        // Invalid requirements make the whole term match nothing, even NotIn.
        assert!(!term(e("zone", "In", json!([])), none.clone()).is_valid());
        assert!(!term(e("cores", "Gt", json!(["x"])), none.clone()).is_valid());
        assert!(!term(e("cores", "Gt", json!(["1", "2"])), none.clone()).is_valid());
        assert!(!m(term(e("missing", "Near", json!(["b"])), none.clone())));
        assert!(!m(term(e("gpu", "Exists", json!(["yes"])), none.clone())));
        // Expressions inside a term are ANDed.
        let both = json!([
            {"key": "zone", "operator": "In", "values": ["a"]},
            {"key": "gpu", "operator": "DoesNotExist"}
        ]);
        assert!(!m(term(both, none.clone())));
        assert!(
            !m(term(none.clone(), none.clone())),
            "an empty term matches nothing"
        );
    }

    #[test]
    fn match_fields_only_know_the_node_name() {
        let l = labels();
        let none = json!([]);
        assert!(term(none.clone(), f("In", json!(["n"]))).matches(&l, "n"));
        assert!(!term(none.clone(), f("In", json!(["m"]))).matches(&l, "n"));
        assert!(term(none.clone(), f("NotIn", json!(["m"]))).matches(&l, "n"));
        assert!(!term(none.clone(), f("NotIn", json!(["n"]))).matches(&l, "n"));
        // One value only, metadata.name only, In/NotIn only.
        assert!(!term(none.clone(), f("In", json!(["n", "m"]))).is_valid());
        assert!(!term(none.clone(), f("Exists", json!(null))).is_valid());
        let other = json!([{"key": "metadata.uid", "operator": "In", "values": ["n"]}]);
        assert!(!term(none.clone(), other).is_valid());
        // Fields and expressions of one term are ANDed.
        assert!(term(e("zone", "In", json!(["a"])), f("In", json!(["n"]))).matches(&l, "n"));
        assert!(!term(e("zone", "In", json!(["b"])), f("In", json!(["n"]))).matches(&l, "n"));
    }

    #[test]
    fn required_affinity_needs_the_node_selector_and_one_term() {
        let spec = |v: Value| -> PodSpec {
            serde_json::from_value(json!({"containers": [], "nodeSelector": v["nodeSelector"],
                "affinity": v["affinity"]}))
            .unwrap()
        };
        let required = |terms: Value| {
            json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": terms}}})
        };
        let l = labels();
        let none = RequiredNodeAffinity::from_spec(&spec(json!({})));
        assert!(none.matches_labels(&l, "n"));
        assert!(none.matches_labels(&BTreeMap::new(), "n"));
        let sel = RequiredNodeAffinity::from_spec(&spec(json!({"nodeSelector": {"zone": "a"}})));
        assert!(sel.matches_labels(&l, "n"));
        assert!(!sel.matches_labels(&BTreeMap::new(), "n"));
        // Terms are ORed.
        let ored = RequiredNodeAffinity::from_spec(&spec(json!({"affinity": required(json!([
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n"]}]}
        ]))})));
        assert!(ored.matches_labels(&l, "n"));
        assert!(!ored.matches_labels(&l, "m"));
        // The nodeSelector and the terms must both hold.
        let both = RequiredNodeAffinity::from_spec(&spec(json!({
            "nodeSelector": {"zone": "b"},
            "affinity": required(json!([{"matchFields": [
                {"key": "metadata.name", "operator": "In", "values": ["n"]}]}]))
        })));
        assert!(!both.matches_labels(&l, "n"));
        // No terms at all: nothing matches.
        let empty =
            RequiredNodeAffinity::from_spec(&spec(json!({"affinity": required(json!([]))})));
        assert!(!empty.matches_labels(&l, "n"));
        let mut node = Node::default();
        node.metadata.name = Some("n".into());
        node.metadata.labels = Some(l.clone());
        assert!(ored.matches(&node));
        assert!(!both.matches(&node));
    }
}
