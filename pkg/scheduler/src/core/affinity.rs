//! The NodeAffinity plugin's PreFilter (node names pinned by `matchFields`) and its preferred
//! terms; the term matching itself is `skiff_api::matchers::affinity`.

use k8s_openapi::api::core::v1::{NodeAffinity, NodeSelectorTerm};
use skiff_api::matchers::affinity::Term;
use std::collections::{BTreeMap, HashSet};

/// What the PreFilter of NodeAffinity computes from `matchFields metadata.name In`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum NodeNames {
    All,
    Only(HashSet<String>),
    Conflict,
}

/// NodeAffinity's PreFilter: when every required term pins node names with
/// `matchFields metadata.name In`, only those nodes are worth filtering.
pub(super) fn prefilter_node_names(terms: &[NodeSelectorTerm]) -> NodeNames {
    let mut union: Option<HashSet<String>> = None;
    for t in terms {
        let mut term_names: Option<HashSet<String>> = None;
        for r in t.match_fields.iter().flatten() {
            if r.key == "metadata.name" && r.operator == "In" {
                let s: HashSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => s,
                    Some(prev) => prev.intersection(&s).cloned().collect(),
                });
            }
        }
        match term_names {
            // A term without a name constraint admits every node (terms are ORed).
            None => return NodeNames::All,
            Some(s) => union.get_or_insert_with(HashSet::new).extend(s),
        }
    }
    match union {
        None => NodeNames::All,
        Some(s) if s.is_empty() => NodeNames::Conflict,
        Some(s) => NodeNames::Only(s),
    }
}

/// The preferred terms that can score (weight not zero, term valid), with their weights.
pub(super) fn preferred_terms(node_affinity: Option<&NodeAffinity>) -> Vec<(i64, Term)> {
    node_affinity
        .and_then(|na| {
            na.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .map(|ps| {
            ps.iter()
                .filter(|p| p.weight != 0)
                .map(|p| (i64::from(p.weight), Term::parse(&p.preference)))
                .filter(|(_, t)| t.is_valid())
                .collect()
        })
        .unwrap_or_default()
}

/// NodeAffinity's Score before normalizing: the sum of the weights of the preferred terms the
/// node matches.
pub(super) fn preferred_score(
    preferred: &[(i64, Term)],
    labels: &BTreeMap<String, String>,
    name: &str,
) -> i64 {
    preferred
        .iter()
        .filter(|(_, t)| t.matches(labels, name))
        .map(|(w, _)| *w)
        .sum()
}
