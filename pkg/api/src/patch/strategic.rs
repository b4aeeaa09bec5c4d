//! Strategic merge patch as apimachinery's `strategicpatch` applies it on the server: maps
//! merge, `null` deletes, lists are replaced unless their field has the `merge` strategy, and
//! the `$patch`, `$retainKeys`, `$setElementOrder/…` and `$deleteFromPrimitiveList/…`
//! directives steer the merge.

use serde_json::{Map, Value};

use super::schema::{self, ListStrategy};
use super::PatchError;

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch to an object of kind `group`/`kind`. Built-in kinds use the
/// patch metadata of [`schema`]; other kinds (custom resources) get the same rules with no
/// merge lists, i.e. JSON merge semantics plus the directives.
pub fn strategic_merge(
    group: &str,
    kind: &str,
    original: &Value,
    patch: &Value,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::BadRequest(
            "strategic merge patch must be a JSON object: send {\"field\": value, …}".into(),
        ));
    };
    let original = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    let ty = schema::root_type(group, kind);
    merge_map(original, patch.clone(), ty).map(Value::Object)
}

fn bad(msg: String) -> PatchError {
    PatchError::BadRequest(msg)
}

/// Merges `patch` into `original`, both objects of type `ty` (when known).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Option<&str>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.shift_remove(PATCH_DIRECTIVE) {
        match directive.as_str() {
            Some("replace") => return merge_map(Map::new(), patch, ty),
            Some("delete") => return Ok(Map::new()),
            Some("merge") => {}
            _ => {
                return Err(bad(format!(
                    "unknown $patch directive {directive}: use \"replace\", \"delete\" or \"merge\""
                )))
            }
        }
    }

    if let Some(keys) = patch.shift_remove(RETAIN_KEYS) {
        let keys: Vec<&str> = keys
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect())
            .ok_or_else(|| bad("$retainKeys must be a list of field names".into()))?;
        for (k, v) in &patch {
            if !k.starts_with('$') && !v.is_null() && !keys.contains(&k.as_str()) {
                return Err(bad(format!(
                    "field {k} is set in the patch but missing from $retainKeys: list every kept field"
                )));
            }
        }
        original.retain(|k, _| keys.contains(&k.as_str()));
    }

    // Lists with a `$setElementOrder` are merged first, then put in the requested order.
    let ordered: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for directive in ordered {
        let Some(order) = patch.shift_remove(&directive) else {
            continue;
        };
        let field = &directive[SET_ELEMENT_ORDER.len()..];
        let Value::Array(order) = order else {
            return Err(bad(format!("{directive} must be a list")));
        };
        let strategy = ty.and_then(|t| schema::list_strategy(t, field));
        if !strategy.as_ref().is_some_and(ListStrategy::merges) {
            // Only merging lists have an element order to set; the list itself (if patched)
            // is handled like any other field below.
            continue;
        }
        let merge_key = strategy.and_then(|s| s.merge_key);
        let patch_list = match patch.get(field) {
            Some(Value::Array(_)) => match patch.shift_remove(field) {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            },
            Some(_) => continue,
            None => Vec::new(),
        };
        let had_original = original.contains_key(field);
        let server = match original.get(field) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let elem_ty = ty.and_then(|t| schema::field_type(t, field));
        let merged = merge_list(server.clone(), patch_list, merge_key, elem_ty)?;
        let merged = normalize_order(merged, &order, &server, merge_key);
        if had_original || !merged.is_empty() {
            set_keep_position(&mut original, field, Value::Array(merged));
        }
    }

    for (key, value) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(remove) = value else {
                return Err(bad(format!("{key} must be a list of values to delete")));
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|v| !remove.contains(v));
            }
            continue;
        }
        if key.starts_with('$') {
            return Err(bad(format!(
                "unknown strategic merge patch directive {key}: remove it from the patch"
            )));
        }
        if value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let meta = ty.and_then(|t| schema::field_meta(t, &key));
        let sub_ty = meta.and_then(|m| m.elem());
        let strategy = meta.and_then(|m| m.strategy());
        let merges = strategy.as_ref().is_some_and(ListStrategy::merges);
        let replaces = strategy.is_some_and(|s| s.strategy == "replace");
        let current = original.get_mut(&key).map(std::mem::take);
        let merged = match (current, value) {
            (Some(Value::Object(o)), Value::Object(p)) if !replaces => {
                Value::Object(merge_map(o, p, sub_ty)?)
            }
            (_, Value::Object(p)) => Value::Object(merge_map(Map::new(), p, sub_ty)?),
            (Some(Value::Array(o)), Value::Array(p)) if merges => Value::Array(merge_list(
                o,
                p,
                strategy.and_then(|s| s.merge_key),
                sub_ty,
            )?),
            (_, Value::Array(p)) if merges => Value::Array(merge_list(
                Vec::new(),
                p,
                strategy.and_then(|s| s.merge_key),
                sub_ty,
            )?),
            (_, v) => v,
        };
        set_keep_position(&mut original, &key, merged);
    }
    Ok(original)
}

/// Sets `key` without moving it when it already exists (new keys go last).
fn set_keep_position(map: &mut Map<String, Value>, key: &str, value: Value) {
    match map.get_mut(key) {
        Some(slot) => *slot = value,
        None => {
            map.insert(key.to_string(), value);
        }
    }
}

/// Merges the items of a `merge`-strategy list: primitives are unioned, objects matched by
/// `merge_key` and merged, with `$patch: delete|replace|merge` items honoured.
fn merge_list(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: Option<&str>,
    elem_ty: Option<&str>,
) -> Result<Vec<Value>, PatchError> {
    let Some(merge_key) = merge_key else {
        if patch.iter().any(Value::is_object) {
            // A merge list without a key can only hold primitives; replace otherwise.
            return Ok(patch);
        }
        for item in patch {
            if !original.contains(&item) {
                original.push(item);
            }
        }
        return Ok(original);
    };

    let is_replace = |v: &Value| v.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("replace");
    if patch.iter().any(is_replace) {
        // `{"$patch": "replace"}` among the items: the list becomes the other items.
        let mut rest = Vec::new();
        for item in patch.into_iter().filter(|v| !is_replace(v)) {
            rest.push(match item {
                Value::Object(o) => Value::Object(merge_map(Map::new(), o, elem_ty)?),
                other => other,
            });
        }
        return Ok(rest);
    }

    let mut items = Vec::with_capacity(patch.len());
    for item in patch {
        let Value::Object(mut item) = item else {
            return Err(bad(format!(
                "list item {item} is not an object: items of a list merged by {merge_key} must be objects"
            )));
        };
        match item.get(PATCH_DIRECTIVE).map(|d| d.as_str()) {
            None => items.push(item),
            Some(Some("delete")) => {
                let key = item.get(merge_key).ok_or_else(|| {
                    bad(format!(
                        "$patch: delete item {} lacks the merge key {merge_key}: name the item to delete",
                        Value::Object(item.clone())
                    ))
                })?;
                original.retain(|o| o.get(merge_key) != Some(key));
            }
            Some(Some("merge")) => {
                item.shift_remove(PATCH_DIRECTIVE);
                items.push(item);
            }
            Some(_) => {
                return Err(bad(format!(
                    "unknown $patch directive in list item {}: use \"replace\", \"delete\" or \"merge\"",
                    Value::Object(item)
                )))
            }
        }
    }
    for item in items {
        let key = item.get(merge_key).cloned().ok_or_else(|| {
            bad(format!(
                "list item {} does not contain the merge key {merge_key}: add it",
                Value::Object(item.clone())
            ))
        })?;
        match original.iter().position(|o| o.get(merge_key) == Some(&key)) {
            Some(pos) => {
                let current = match std::mem::take(&mut original[pos]) {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                original[pos] = Value::Object(merge_map(current, item, elem_ty)?);
            }
            None => original.push(Value::Object(merge_map(Map::new(), item, elem_ty)?)),
        }
    }
    Ok(original)
}

/// Position of `item` in a `$setElementOrder` or server list (by merge key for objects).
fn index_in(list: &[Value], item: &Value, merge_key: Option<&str>) -> Option<usize> {
    match merge_key {
        Some(k) => {
            let key = item.get(k)?;
            list.iter().position(|o| o.get(k) == Some(key))
        }
        None => list.iter().position(|o| o == item),
    }
}

/// Orders a merged list as `$setElementOrder` asks: the items it names in its order, the
/// server-only items interleaved where they stood in the server's list.
fn normalize_order(
    merged: Vec<Value>,
    order: &[Value],
    server: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| index_in(order, item, merge_key).is_some());
    named.sort_by_key(|item| index_in(order, item, merge_key));
    server_only.sort_by_key(|item| index_in(server, item, merge_key).unwrap_or(usize::MAX));

    // Insert each server-only item before the first named item that the server had after it.
    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => match (
                index_in(server, l, merge_key),
                index_in(server, r, merge_key),
            ) {
                (Some(li), Some(ri)) => li < ri,
                _ => false,
            },
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web", "namespace": "default",
                "annotations": {"deployment.kubernetes.io/revision": "1"},
                "labels": {"app": "web"},
                "finalizers": ["a.example/x", "b.example/y"]
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web", "image": "nginx:1.25",
                                "env": [
                                    {"name": "A", "value": "1"},
                                    {"name": "B", "value": "1"},
                                    {"name": "C", "value": "3"}
                                ],
                                "ports": [
                                    {"containerPort": 80, "protocol": "TCP"},
                                    {"containerPort": 443, "protocol": "TCP"}
                                ],
                                "imagePullPolicy": "IfNotPresent"
                            },
                            {"name": "sidecar", "image": "busybox", "args": ["sleep", "1d"]}
                        ],
                        "volumes": [{"name": "data", "emptyDir": {}}],
                        "restartPolicy": "Always"
                    }
                }
            },
            "status": {"replicas": 2}
        })
    }

    fn smp(orig: &Value, patch: Value) -> Value {
        strategic_merge("apps", "Deployment", orig, &patch).unwrap()
    }

    #[test]
    fn kubectl_three_way_patch_example() {
        // The patch kubectl 1.32 sent for an edited manifest (kubectl-wire.md).
        let patch = json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":null,"type":"Recreate"},
         "template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],"$setElementOrder/volumes":[{"name":"data"}],
          "containers":[{"$setElementOrder/env":[{"name":"B"},{"name":"C"}],"$setElementOrder/ports":[{"containerPort":80}],
            "args":["-a"],"env":[{"name":"B","value":"2"},{"$patch":"delete","name":"A"}],"image":"nginx:1.27","name":"web",
            "ports":[{"$patch":"delete","containerPort":443}]},{"$patch":"delete","name":"sidecar"}],
          "volumes":[{"$retainKeys":["hostPath","name"],"emptyDir":null,"hostPath":{"path":"/tmp"},"name":"data"}]}}}});
        let out = smp(&deployment(), patch);
        assert_eq!(
            out["spec"]["strategy"],
            json!({"type": "Recreate"}),
            "retainKeys drops rollingUpdate"
        );
        let pod = &out["spec"]["template"]["spec"];
        assert_eq!(
            pod["containers"],
            json!([{
                "name": "web", "image": "nginx:1.27",
                // B updated, A deleted, C untouched, in the order kubectl set.
                "env": [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                "imagePullPolicy": "IfNotPresent",
                "args": ["-a"]
            }])
        );
        assert_eq!(
            pod["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/tmp"}}])
        );
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(out["spec"]["replicas"], 2);
        assert_eq!(out["status"], json!({"replicas": 2}));
        assert_eq!(out["metadata"], deployment()["metadata"]);
    }

    #[test]
    fn set_element_order_reorders_and_adds() {
        let patch = json!({"spec":{"template":{"spec":{
            "$setElementOrder/containers":[{"name":"new"},{"name":"sidecar"},{"name":"web"}],
            "containers":[{"name":"new","image":"alpine"}]}}}});
        let out = smp(&deployment(), patch);
        let names: Vec<&str> = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["new", "sidecar", "web"]);
    }

    #[test]
    fn set_element_order_keeps_server_only_items_in_place() {
        let orig = json!({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"c"}]}});
        // The client knows only a and c and wants c first; b exists only on the server.
        let patch = json!({"spec":{"$setElementOrder/containers":[{"name":"c"},{"name":"a"}]}});
        let out = strategic_merge("", "Pod", &orig, &patch).unwrap();
        let names: Vec<&str> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        // As upstream's mergeSortedSlice: b stood before c on the server, so it stays first.
        assert_eq!(names, ["b", "c", "a"]);
    }

    #[test]
    fn patch_delete_on_list_items_and_maps() {
        let patch = json!({"spec":{"template":{"spec":{"containers":[
            {"name":"web","env":[{"$patch":"delete","name":"B"},{"$patch":"delete","name":"C"}]},
            {"$patch":"delete","name":"sidecar"}]}}}});
        let out = smp(&deployment(), patch);
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 1);
        assert_eq!(cs[0]["env"], json!([{"name": "A", "value": "1"}]));

        let out = smp(
            &deployment(),
            json!({"spec":{"strategy":{"$patch":"delete"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({}));
    }

    #[test]
    fn patch_replace_on_maps_and_lists() {
        let out = smp(
            &deployment(),
            json!({"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let out = smp(
            &deployment(),
            json!({"spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"only","image":"x"}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "only", "image": "x"}])
        );
    }

    #[test]
    fn retain_keys_recreate_switch() {
        let patch = json!({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}});
        let out = smp(&deployment(), patch);
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
        let wrong =
            json!({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}});
        assert!(matches!(
            strategic_merge("apps", "Deployment", &deployment(), &wrong),
            Err(PatchError::BadRequest(_))
        ));
    }

    #[test]
    fn primitive_merge_list_union_and_delete() {
        let out = smp(
            &deployment(),
            json!({"metadata":{"finalizers":["c.example/z","a.example/x"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example/x", "b.example/y", "c.example/z"])
        );
        let out = smp(
            &deployment(),
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":["a.example/x"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b.example/y"]));
        let out = smp(
            &deployment(),
            json!({"metadata":{"$setElementOrder/finalizers":["b.example/y","a.example/x"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["b.example/y", "a.example/x"])
        );
    }

    #[test]
    fn non_merge_lists_are_replaced_and_null_deletes() {
        let out = smp(
            &deployment(),
            json!({"metadata":{"labels":{"app":null,"tier":"fe"}},
                   "spec":{"replicas":null,"template":{"spec":{"containers":[{"name":"sidecar","args":["x"]}]}}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"tier": "fe"}));
        assert!(out["spec"].get("replicas").is_none());
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2, "containers merge by name");
        assert_eq!(cs[1]["args"], json!(["x"]), "args is replaced whole");
    }

    #[test]
    fn keyed_merges_for_other_kinds() {
        let svc = json!({"spec":{"ports":[{"port":80,"targetPort":8080},{"port":443}]}});
        let out = strategic_merge(
            "",
            "Service",
            &svc,
            &json!({"spec":{"ports":[{"port":80,"nodePort":30080}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port":80,"targetPort":8080,"nodePort":30080},{"port":443}])
        );
        let node = json!({"status":{"addresses":[{"type":"InternalIP","address":"10.0.0.1"}],
            "conditions":[{"type":"Ready","status":"False"},{"type":"MemoryPressure","status":"False"}]}});
        let out = strategic_merge(
            "",
            "Node",
            &node,
            &json!({"status":{"conditions":[{"type":"Ready","status":"True"}],
                              "addresses":[{"type":"Hostname","address":"n1"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["status"]["conditions"][0],
            json!({"type":"Ready","status":"True"})
        );
        assert_eq!(out["status"]["conditions"].as_array().unwrap().len(), 2);
        assert_eq!(out["status"]["addresses"].as_array().unwrap().len(), 2);
        let owned = json!({"metadata":{"ownerReferences":[{"uid":"1","name":"a"}]}});
        let out = strategic_merge(
            "apps",
            "ReplicaSet",
            &owned,
            &json!({"metadata":{"ownerReferences":[{"uid":"2","name":"b"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["metadata"]["ownerReferences"].as_array().unwrap().len(),
            2
        );
    }

    #[test]
    fn unknown_kinds_merge_like_json_merge() {
        let cr = json!({"spec":{"items":[1,2],"m":{"a":1,"b":2}}});
        let out = strategic_merge(
            "example.com",
            "Widget",
            &cr,
            &json!({"spec":{"items":[3],"m":{"a":null,"c":3}}}),
        )
        .unwrap();
        assert_eq!(out, json!({"spec":{"items":[3],"m":{"b":2,"c":3}}}));
    }

    #[test]
    fn new_values_lose_directives_and_nulls() {
        let out = smp(
            &json!({}),
            json!({"spec":{"template":{"spec":{"containers":[
                {"name":"a","env":[{"name":"X","value":"1"},{"$patch":"delete","name":"Y"}],"tty":null}]}}}}),
        );
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name":"a","env":[{"name":"X","value":"1"}]}])
        );
    }

    #[test]
    fn malformed_patches_are_bad_requests() {
        for p in [
            json!([1]),
            json!({"spec":{"$patch":"explode"}}),
            json!({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}}),
            json!({"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}),
            json!({"$bogus":1}),
        ] {
            assert!(
                matches!(
                    strategic_merge("apps", "Deployment", &deployment(), &p),
                    Err(PatchError::BadRequest(_))
                ),
                "{p}"
            );
        }
    }
}
