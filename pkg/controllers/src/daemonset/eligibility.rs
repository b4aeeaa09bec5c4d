//! Which nodes a DaemonSet runs on: upstream's `NodeShouldRunDaemonPod` (node name, nodeSelector
//! and required node affinity, taints against the pod's tolerations plus the automatic DaemonSet
//! tolerations) and the node-pinning affinity daemon pods are created with.

use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
    Toleration,
};
use skiff_api::matchers::affinity::RequiredNodeAffinity;
use skiff_api::matchers::taints::first_untolerated;

/// Upstream `AddOrUpdateDaemonPodTolerations`: daemon pods survive node problems and cordons.
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let list = spec.tolerations.get_or_insert_with(Vec::new);
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.to_string()),
            operator: Some("Exists".to_string()),
            effect: Some(effect.to_string()),
            ..Default::default()
        };
        // AddOrUpdateTolerationInPodSpec: an equal-in-kind toleration is replaced, else appended.
        match list.iter_mut().find(|x| {
            x.key == t.key
                && x.operator.as_deref().unwrap_or("Equal") == "Exists"
                && x.effect == t.effect
        }) {
            Some(x) => *x = t,
            None => list.push(t),
        }
    }
}

/// Upstream `nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`: the nodeSelector and the
/// required node affinity terms (any term may match).
pub fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    RequiredNodeAffinity::from_spec(spec).matches(node)
}

/// What upstream's `NodeShouldRunDaemonPod` answers for a DaemonSet pod spec (with the daemon
/// tolerations already added) on a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fit {
    /// A new daemon pod should be created here.
    pub should_run: bool,
    /// An existing daemon pod may stay (it tolerates the NoExecute taints).
    pub should_continue_running: bool,
}

pub fn node_should_run(spec: &PodSpec, node: &Node) -> Fit {
    let name = node.metadata.name.as_deref().unwrap_or("");
    let pinned = spec.node_name.as_deref().unwrap_or("");
    if (!pinned.is_empty() && pinned != name) || !fits_node_affinity(spec, node) {
        return Fit {
            should_run: false,
            should_continue_running: false,
        };
    }
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    if first_untolerated(taints, tolerations, |t| {
        t.effect == "NoSchedule" || t.effect == "NoExecute"
    })
    .is_some()
    {
        let no_exec = first_untolerated(taints, tolerations, |t| t.effect == "NoExecute").is_some();
        return Fit {
            should_run: false,
            should_continue_running: !no_exec,
        };
    }
    Fit {
        should_run: true,
        should_continue_running: true,
    }
}

/// Upstream `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes the
/// single term `matchFields: metadata.name In [node]`; preferred terms and other affinities stay.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let term = NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: "metadata.name".into(),
            operator: "In".into(),
            values: Some(vec![node.to_string()]),
        }]),
        match_expressions: None,
    };
    let mut a = affinity.unwrap_or_default();
    let na = a.node_affinity.get_or_insert_with(NodeAffinity::default);
    na.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![term],
    });
    a
}

/// Upstream `GetTargetNodeName`: `spec.nodeName`, or the node a daemon pod's affinity pins it to.
pub fn target_node(spec: &PodSpec) -> Option<&str> {
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return Some(n);
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().find_map(|t| {
        t.match_fields.as_ref()?.iter().find_map(|f| {
            let vals = f.values.as_deref()?;
            (f.key == "metadata.name" && f.operator == "In" && vals.len() == 1)
                .then(|| vals[0].as_str())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NodeSpec;
    use k8s_openapi::api::core::v1::Taint;
    use skiff_api::matchers::taints::tolerates;

    pub fn node(name: &str, labels: &[(&str, &str)], taints: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = Some(name.into());
        n.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        n.spec = Some(NodeSpec {
            taints: Some(
                taints
                    .iter()
                    .map(|(k, e)| Taint {
                        key: k.to_string(),
                        effect: e.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        });
        n
    }

    fn daemon_spec() -> PodSpec {
        let mut s = PodSpec::default();
        add_daemon_tolerations(&mut s);
        s
    }

    #[test]
    fn automatic_tolerations_cover_node_problems_and_cordons() {
        let s = daemon_spec();
        let n = node(
            "a",
            &[],
            &[
                ("node.kubernetes.io/not-ready", "NoExecute"),
                ("node.kubernetes.io/unreachable", "NoExecute"),
                ("node.kubernetes.io/unschedulable", "NoSchedule"),
                ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ],
        );
        assert!(node_should_run(&s, &n).should_run);
        assert!(s
            .tolerations
            .as_ref()
            .unwrap()
            .iter()
            .all(|t| t.toleration_seconds.is_none()));
        // Not twice when added again.
        let mut s2 = s.clone();
        add_daemon_tolerations(&mut s2);
        assert_eq!(s2.tolerations.as_ref().unwrap().len(), 6);
        let mut hn = PodSpec {
            host_network: Some(true),
            ..Default::default()
        };
        add_daemon_tolerations(&mut hn);
        assert_eq!(hn.tolerations.as_ref().unwrap().len(), 7);
    }

    #[test]
    fn taints_decide_run_and_continue() {
        let s = daemon_spec();
        let fit = |should_run, should_continue_running| Fit {
            should_run,
            should_continue_running,
        };
        let ns = node("a", &[], &[("dedicated", "NoSchedule")]);
        assert_eq!(node_should_run(&s, &ns), fit(false, true));
        let ne = node("a", &[], &[("dedicated", "NoExecute")]);
        assert_eq!(node_should_run(&s, &ne), fit(false, false));
        let mut tol = s.clone();
        tol.tolerations.as_mut().unwrap().push(Toleration {
            key: Some("dedicated".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        });
        assert!(node_should_run(&tol, &ne).should_run);
        // PreferNoSchedule never blocks.
        assert!(node_should_run(&s, &node("a", &[], &[("x", "PreferNoSchedule")])).should_run);
    }

    #[test]
    fn toleration_matching_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Default::default()
        };
        let eq = |v: &str| Toleration {
            key: Some("k".into()),
            operator: Some("Equal".into()),
            value: Some(v.into()),
            ..Default::default()
        };
        assert!(tolerates(&eq("v"), &taint));
        assert!(!tolerates(&eq("w"), &taint));
        let all = Toleration {
            operator: Some("Exists".into()),
            ..Default::default()
        };
        assert!(tolerates(&all, &taint));
        let wrong_effect = Toleration {
            effect: Some("NoExecute".into()),
            ..all.clone()
        };
        assert!(!tolerates(&wrong_effect, &taint));
    }

    #[test]
    fn node_selector_and_affinity() {
        let mut s = daemon_spec();
        s.node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        assert!(node_should_run(&s, &node("a", &[("disk", "ssd")], &[])).should_run);
        assert!(!node_should_run(&s, &node("b", &[("disk", "hdd")], &[])).should_continue_running);
        s.node_selector = None;
        s.affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".into(),
                            operator: "NotIn".into(),
                            values: Some(vec!["z1".into()]),
                        }]),
                        match_fields: None,
                    }],
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(node_should_run(&s, &node("a", &[("zone", "z2")], &[])).should_run);
        assert!(!node_should_run(&s, &node("a", &[("zone", "z1")], &[])).should_run);
        // Pinning replaces the required terms with the node name and is found back.
        let pinned = pin_to_node(s.affinity.clone(), "b");
        let mut ps = s.clone();
        ps.affinity = Some(pinned);
        assert_eq!(target_node(&ps), Some("b"));
        assert!(fits_node_affinity(&ps, &node("b", &[("zone", "z1")], &[])));
        assert!(!fits_node_affinity(&ps, &node("a", &[], &[])));
        ps.node_name = Some("c".into());
        assert_eq!(target_node(&ps), Some("c"));
        assert!(!node_should_run(&ps, &node("a", &[], &[])).should_run);
    }
}
