//! Server-side apply and field ownership: the `fieldsV1` field sets of objects, the
//! structured merge of an applied configuration into the live object, conflicts between
//! field managers, and `metadata.managedFields` bookkeeping for apply and ordinary writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Write as _;
use std::ops::Bound;

use serde_json::{json, Map, Value};

use super::schema::{self, ListType, Shape};
use super::{ApplyConflict, PatchError};

/// One step of a field path, ordered like upstream's path elements.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Pe {
    /// `f:name` — a field of an object.
    Field(String),
    /// `k:{"name":"web"}` — an item of a keyed list (canonical JSON of its key fields).
    Key(String),
    /// `v:"x"` — an item of a set (canonical JSON of the item).
    Value(String),
    /// `i:0` — an item of a list by position (only ever read from stored entries).
    Index(usize),
}

type Path = Vec<Pe>;
type FieldSet = BTreeSet<Path>;

/// Which part of an object a write may own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Everything but `status` (the main resource).
    Main,
    /// Only `status` (the status subresource).
    Status,
    /// Everything (for [`fields_of`]).
    All,
}

/// Paths under the object the server sets itself; nobody owns them (upstream strips the same).
const IGNORED: &[&[&str]] = &[
    &["apiVersion"],
    &["kind"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "creationTimestamp"],
    &["metadata", "selfLink"],
    &["metadata", "uid"],
    &["metadata", "clusterName"],
    &["metadata", "generation"],
    &["metadata", "managedFields"],
    &["metadata", "resourceVersion"],
];

fn ignored(path: &Path, scope: Scope) -> bool {
    let is_status = matches!(path.first(), Some(Pe::Field(f)) if f == "status");
    match scope {
        Scope::Main if is_status => return true,
        Scope::Status if !is_status => return true,
        _ => {}
    }
    IGNORED.iter().any(|ign| {
        ign.len() <= path.len()
            && ign
                .iter()
                .zip(path)
                .all(|(a, pe)| matches!(pe, Pe::Field(f) if f == a))
    })
}

/// How a value is tracked, from the schema of the field holding it.
enum Kind {
    /// One value (scalars, atomic maps/structs/lists, lists without declared type).
    Atomic,
    /// An object whose fields are tracked one by one; the type of its fields if known.
    Granular(Option<&'static str>),
    /// A list of objects identified by key fields.
    Keyed(&'static [&'static str], Option<&'static str>),
    /// A list of distinct primitives.
    Set,
}

fn kind_of(ty: Option<&str>, field: &str, value: &Value) -> Kind {
    let meta = ty.and_then(|t| schema::field_meta(t, field));
    match value {
        Value::Object(_) => match meta {
            Some(m) if m.map_atomic || m.shape == Shape::List => Kind::Atomic,
            Some(m)
                if m.shape == Shape::Struct && m.elem().is_some_and(schema::struct_is_atomic) =>
            {
                Kind::Atomic
            }
            Some(m) if m.shape == Shape::Struct => Kind::Granular(m.elem()),
            _ => Kind::Granular(None),
        },
        Value::Array(_) => match meta.and_then(|m| m.list_type()) {
            Some(ListType::Map(keys)) => Kind::Keyed(keys, meta.and_then(|m| m.elem())),
            Some(ListType::Set) => Kind::Set,
            _ => Kind::Atomic,
        },
        _ => Kind::Atomic,
    }
}

/// Canonical JSON text: object keys sorted, no spaces.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut s = String::from("{");
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&Value::String(k.clone()).to_string());
                s.push(':');
                s.push_str(&canonical(&m[k]));
            }
            s.push('}');
            s
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The declared default of a list-map key field: `protocol` (of container and service ports)
/// is `+default="TCP"` upstream, so an item without it is keyed as TCP.
fn key_default(field: &str) -> Option<&'static str> {
    (field == "protocol").then_some("TCP")
}

/// The key path element of a keyed-list item, or `None` if it has none of the key fields.
fn item_key(item: &Value, keys: &[&str]) -> Option<String> {
    let obj = item.as_object()?;
    let mut key = Map::new();
    for k in keys {
        if let Some(v) = obj.get(*k).filter(|v| !v.is_null()) {
            key.insert((*k).to_string(), v.clone());
        } else if let Some(default) = key_default(k) {
            key.insert((*k).to_string(), json!(default));
        }
    }
    (!key.is_empty()).then(|| canonical(&Value::Object(key)))
}

/// Key path elements of every item, or `None` if the list cannot be keyed (then atomic).
fn keyed_items(list: &[Value], keys: &[&str]) -> Option<Vec<String>> {
    let pes: Vec<String> = list
        .iter()
        .map(|i| item_key(i, keys))
        .collect::<Option<_>>()?;
    let distinct: HashSet<&String> = pes.iter().collect();
    (distinct.len() == pes.len()).then_some(pes)
}

fn collect_object(
    obj: &Map<String, Value>,
    ty: Option<&str>,
    path: &mut Path,
    out: &mut FieldSet,
    scope: Scope,
) {
    for (k, v) in obj {
        if v.is_null() {
            continue;
        }
        path.push(Pe::Field(k.clone()));
        if !ignored(path, scope) {
            collect_value(v, kind_of(ty, k, v), path, out, scope);
        }
        path.pop();
    }
}

fn collect_value(v: &Value, kind: Kind, path: &mut Path, out: &mut FieldSet, scope: Scope) {
    match (kind, v) {
        (Kind::Granular(sub), Value::Object(m)) if !m.is_empty() => {
            collect_object(m, sub, path, out, scope)
        }
        (Kind::Keyed(keys, elem), Value::Array(a)) if !a.is_empty() => match keyed_items(a, keys) {
            Some(pes) => {
                for (item, pe) in a.iter().zip(pes) {
                    path.push(Pe::Key(pe));
                    out.insert(path.clone());
                    if let Value::Object(m) = item {
                        collect_object(m, elem, path, out, scope);
                    }
                    path.pop();
                }
            }
            None => {
                out.insert(path.clone());
            }
        },
        (Kind::Set, Value::Array(a)) if !a.is_empty() => {
            for item in a {
                path.push(Pe::Value(canonical(item)));
                out.insert(path.clone());
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

fn field_set(ty: Option<&str>, obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    if let Value::Object(m) = obj {
        collect_object(m, ty, &mut Vec::new(), &mut out, scope);
    }
    out
}

/// Where an object being walked sits, for the paths [`ignored`] names (all within the first
/// two levels).
#[derive(Clone, Copy, PartialEq, Eq)]
enum At {
    Root,
    RootMetadata,
    Deeper,
}

/// [`ignored`] for the field `key` of an object at `at`, without building its path.
fn ignored_field(at: At, key: &str, scope: Scope) -> bool {
    match at {
        At::Root => {
            let is_status = key == "status";
            match scope {
                Scope::Main if is_status => return true,
                Scope::Status if !is_status => return true,
                _ => {}
            }
            IGNORED.iter().any(|ign| ign.len() == 1 && ign[0] == key)
        }
        // Under `metadata`, which is not `status`: ignored whenever the scope is Status.
        At::RootMetadata => {
            scope == Scope::Status || IGNORED.iter().any(|ign| ign.len() == 2 && ign[1] == key)
        }
        At::Deeper => false,
    }
}

/// The children of one `fieldsV1` node: keys already in their text form (`f:name`, `k:{…}`,
/// `v:…`), not yet sorted.
type Children = Vec<(String, Value)>;

/// `prefix` + `text` in one allocation of the final size (the `fieldsV1` key of a path element).
fn key_text(prefix: &str, text: &str) -> String {
    let mut k = String::with_capacity(prefix.len() + text.len());
    k.push_str(prefix);
    k.push_str(text);
    k
}

/// The `fieldsV1` children of the tracked fields of `obj` (see [`collect_object`]).
fn fields_v1_object(obj: &Map<String, Value>, ty: Option<&str>, at: At, scope: Scope) -> Children {
    let mut out = Vec::with_capacity(obj.len());
    for (k, v) in obj {
        if v.is_null() || ignored_field(at, k, scope) {
            continue;
        }
        let below = match (at, k.as_str()) {
            (At::Root, "metadata") => At::RootMetadata,
            _ => At::Deeper,
        };
        if let Some(node) = fields_v1_value(v, kind_of(ty, k, v), below, scope) {
            out.push((key_text("f:", k), node));
        }
    }
    out
}

/// A `fieldsV1` node: `"."` first when the node is itself a member with children, then the
/// children ordered by path element. All children of one node have the same kind of element
/// (fields of an object, keys of a keyed list, values of a set), so ordering their texts orders
/// the elements; equal set values collapse into one.
fn fields_v1_node(mut children: Children, member: bool) -> Value {
    children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    children.dedup_by(|a, b| a.0 == b.0);
    let dot = member && !children.is_empty();
    let mut m = Map::with_capacity(children.len() + usize::from(dot));
    if dot {
        m.insert(".".into(), Value::Object(Map::new()));
    }
    for (k, child) in children {
        m.insert(k, child);
    }
    Value::Object(m)
}

/// The `fieldsV1` node of a tracked value (see [`collect_value`]); `None` when nothing in it
/// is tracked.
fn fields_v1_value(v: &Value, kind: Kind, at: At, scope: Scope) -> Option<Value> {
    match (kind, v) {
        (Kind::Granular(sub), Value::Object(m)) if !m.is_empty() => {
            let children = fields_v1_object(m, sub, at, scope);
            (!children.is_empty()).then(|| fields_v1_node(children, false))
        }
        (Kind::Keyed(keys, elem), Value::Array(a)) if !a.is_empty() => match keyed_items(a, keys) {
            Some(pes) => {
                let items = a
                    .iter()
                    .zip(pes)
                    .map(|(item, pe)| {
                        let children = match item {
                            Value::Object(m) => fields_v1_object(m, elem, At::Deeper, scope),
                            _ => Vec::new(),
                        };
                        (key_text("k:", &pe), fields_v1_node(children, true))
                    })
                    .collect();
                Some(fields_v1_node(items, false))
            }
            None => Some(Value::Object(Map::new())),
        },
        (Kind::Set, Value::Array(a)) if !a.is_empty() => {
            let items = a
                .iter()
                .map(|item| (key_text("v:", &canonical(item)), Value::Object(Map::new())))
                .collect();
            Some(fields_v1_node(items, false))
        }
        _ => Some(Value::Object(Map::new())),
    }
}

/// `to_fields_v1(&field_set(ty, obj, scope))`, built in one walk of the object (no path is
/// cloned per field); `None` when the set is empty.
fn fields_v1_of(ty: Option<&str>, obj: &Value, scope: Scope) -> Option<Value> {
    let Value::Object(m) = obj else { return None };
    let children = fields_v1_object(m, ty, At::Root, scope);
    (!children.is_empty()).then(|| fields_v1_node(children, false))
}

fn pe_text(pe: &Pe) -> String {
    match pe {
        Pe::Field(f) => format!("f:{f}"),
        Pe::Key(k) => format!("k:{k}"),
        Pe::Value(v) => format!("v:{v}"),
        Pe::Index(i) => format!("i:{i}"),
    }
}

#[derive(Default)]
struct Tree {
    member: bool,
    children: BTreeMap<Pe, Tree>,
}

fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Tree::default();
    for path in set {
        let mut node = &mut root;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }
    fn emit(t: &Tree) -> Value {
        let mut m = Map::new();
        if t.member && !t.children.is_empty() {
            m.insert(".".into(), json!({}));
        }
        for (pe, child) in &t.children {
            m.insert(pe_text(pe), emit(child));
        }
        Value::Object(m)
    }
    emit(&root)
}

fn parse_pe(text: &str) -> Option<Pe> {
    let (kind, rest) = text.split_at_checked(2)?;
    match kind {
        "f:" => Some(Pe::Field(rest.to_string())),
        "k:" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| Pe::Key(canonical(&v))),
        "v:" => serde_json::from_str::<Value>(rest)
            .ok()
            .map(|v| Pe::Value(canonical(&v))),
        "i:" => rest.parse().ok().map(Pe::Index),
        _ => None,
    }
}

fn from_fields_v1(v: &Value) -> FieldSet {
    fn walk(m: &Map<String, Value>, path: &mut Path, out: &mut FieldSet) {
        for (k, child) in m {
            if k == "." {
                if !path.is_empty() {
                    out.insert(path.clone());
                }
                continue;
            }
            let Some(pe) = parse_pe(k) else { continue };
            path.push(pe);
            match child {
                Value::Object(c) if !c.is_empty() => walk(c, path, out),
                _ => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = FieldSet::new();
    if let Value::Object(m) = v {
        walk(m, &mut Vec::new(), &mut out);
    }
    out
}

/// The `fieldsV1` set of every field of `obj` that a manager can own, e.g.
/// `{"f:metadata":{"f:labels":{"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"web\"}":{".":{},"f:image":{},"f:name":{}}}}}`:
/// items of keyed lists as `k:{…}` (a member with their fields below), items of sets as `v:…`,
/// atomic values (lists without a declared type, atomic maps and structs) as leaves. The
/// fields the server sets (`apiVersion`, `kind`, `metadata.name`, `.uid`, …) are left out.
pub fn fields_of(group: &str, kind: &str, obj: &Value) -> Value {
    to_fields_v1(&field_set(schema::root_type(group, kind), obj, Scope::All))
}

/// Upstream's text of a field path: `.spec.replicas`, `.spec.containers[name="web"].image`,
/// `.metadata.finalizers[="x"]`.
fn path_text(path: &Path) -> String {
    let mut s = String::new();
    for pe in path {
        match pe {
            Pe::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Pe::Key(k) => {
                s.push('[');
                if let Ok(Value::Object(m)) = serde_json::from_str::<Value>(k) {
                    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    s.push_str(&parts.join(","));
                }
                s.push(']');
            }
            Pe::Value(v) => {
                let _ = write!(s, "[={v}]");
            }
            Pe::Index(i) => {
                let _ = write!(s, "[{i}]");
            }
        }
    }
    s
}

// ---------- navigating values by path ----------

fn find_item(list: &[Value], pe: &Pe) -> Option<usize> {
    match pe {
        Pe::Key(k) => {
            let Ok(Value::Object(key)) = serde_json::from_str::<Value>(k) else {
                return None;
            };
            let names: Vec<&str> = key.keys().map(String::as_str).collect();
            list.iter()
                .position(|item| item_key(item, &names).as_ref() == Some(k))
        }
        Pe::Value(v) => list.iter().position(|item| canonical(item) == *v),
        Pe::Index(i) => (*i < list.len()).then_some(*i),
        Pe::Field(_) => None,
    }
}

fn get_path<'a>(mut v: &'a Value, path: &[Pe]) -> Option<&'a Value> {
    for pe in path {
        v = match (pe, v) {
            (Pe::Field(f), Value::Object(m)) => m.get(f)?,
            (_, Value::Array(a)) => &a[find_item(a, pe)?],
            _ => return None,
        };
    }
    Some(v)
}

fn get_path_mut<'a>(mut v: &'a mut Value, path: &[Pe]) -> Option<&'a mut Value> {
    for pe in path {
        v = match (pe, v) {
            (Pe::Field(f), Value::Object(m)) => m.get_mut(f)?,
            (_, Value::Array(a)) => {
                let i = find_item(a, pe)?;
                &mut a[i]
            }
            _ => return None,
        };
    }
    Some(v)
}

/// Removes the value at `path`; returns whether something was removed.
fn remove_path(root: &mut Value, path: &[Pe]) -> bool {
    let Some((last, parent)) = path.split_last() else {
        return false;
    };
    match (last, get_path_mut(root, parent)) {
        (Pe::Field(f), Some(Value::Object(m))) => m.shift_remove(f).is_some(),
        (_, Some(Value::Array(a))) => match find_item(a, last) {
            Some(i) => {
                a.remove(i);
                true
            }
            None => false,
        },
        _ => false,
    }
}

fn has_descendant(set: &FieldSet, path: &Path) -> bool {
    set.range::<Path, _>((Bound::Excluded(path), Bound::Unbounded))
        .next()
        .is_some_and(|q| q.len() > path.len() && q.starts_with(path))
}

// ---------- structured merge ----------

fn merge_object(live: &mut Map<String, Value>, config: &Map<String, Value>, ty: Option<&str>) {
    for (k, cv) in config {
        if cv.is_null() {
            continue;
        }
        let kind = kind_of(ty, k, cv);
        match (live.get_mut(k), kind, cv) {
            (Some(Value::Object(lo)), Kind::Granular(sub), Value::Object(co)) => {
                merge_object(lo, co, sub)
            }
            (Some(Value::Array(la)), Kind::Keyed(keys, elem), Value::Array(ca)) => {
                if let Some(merged) = merge_keyed(la, ca, keys, elem) {
                    *la = merged;
                } else {
                    *la = ca.clone();
                }
            }
            (Some(Value::Array(la)), Kind::Set, Value::Array(ca)) => {
                let lpes: Vec<String> = la.iter().map(canonical).collect();
                let cpes: Vec<String> = ca.iter().map(canonical).collect();
                *la = interleave(la, &lpes, ca, &cpes, |_, c| c.clone());
            }
            (Some(slot), _, _) => *slot = strip_nulls(cv),
            (None, _, _) => {
                live.insert(k.clone(), strip_nulls(cv));
            }
        }
    }
}

fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn merge_keyed(
    live: &[Value],
    config: &[Value],
    keys: &[&str],
    elem: Option<&'static str>,
) -> Option<Vec<Value>> {
    let lpes = keyed_items(live, keys)?;
    let cpes = keyed_items(config, keys)?;
    Some(interleave(live, &lpes, config, &cpes, |l, c| {
        match (l, c) {
            (Value::Object(lo), Value::Object(co)) => {
                let mut lo = lo.clone();
                merge_object(&mut lo, co, elem);
                Value::Object(lo)
            }
            (_, c) => strip_nulls(c),
        }
    }))
}

/// Merges two identified lists keeping both orders, as structured-merge-diff does: live-only
/// items stay where they were, configured items follow the configuration's order.
fn interleave(
    lhs: &[Value],
    lpes: &[String],
    rhs: &[Value],
    rpes: &[String],
    merge: impl Fn(&Value, &Value) -> Value,
) -> Vec<Value> {
    let lindex: HashMap<&String, usize> = lpes.iter().enumerate().map(|(i, p)| (p, i)).collect();
    let rset: HashSet<&String> = rpes.iter().collect();
    let mut shared: std::collections::VecDeque<&String> =
        rpes.iter().filter(|p| lindex.contains_key(p)).collect();
    let mut done: HashSet<&String> = HashSet::new();
    let mut out = Vec::with_capacity(lhs.len() + rhs.len());
    let (mut li, mut ri) = (0, 0);
    while li < lhs.len() || ri < rhs.len() {
        if li < lhs.len() && ri < rhs.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                out.push(merge(&lhs[li], &rhs[ri]));
                done.insert(pe);
                if shared.front() == Some(&pe) {
                    shared.pop_front();
                }
                li += 1;
                ri += 1;
                continue;
            }
            if rset.contains(pe) && shared.front().is_some_and(|s| *s != pe) {
                li += 1;
                continue;
            }
        }
        if li < lhs.len() {
            let pe = &lpes[li];
            if !rset.contains(pe) {
                out.push(lhs[li].clone());
                li += 1;
                continue;
            } else if done.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rhs.len() {
            let pe = &rpes[ri];
            done.insert(pe);
            out.push(match lindex.get(pe) {
                Some(&i) => merge(&lhs[i], &rhs[ri]),
                None => merge(&Value::Null, &rhs[ri]),
            });
            if shared.front() == Some(&pe) {
                shared.pop_front();
            }
            ri += 1;
        }
    }
    out
}

// ---------- managedFields ----------

#[derive(Debug, Clone)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    set: FieldSet,
}

impl Entry {
    fn same_identity(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How upstream names this manager in conflict messages.
    fn printed(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            let _ = write!(s, " with subresource {sub:?}");
        }
        if self.operation == "Update" {
            let _ = write!(s, " using {}", self.api_version);
        }
        s
    }

    fn seconds(&self) -> i64 {
        self.time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp())
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), json!(self.manager));
        m.insert("operation".into(), json!(self.operation));
        m.insert("apiVersion".into(), json!(self.api_version));
        if let Some(t) = &self.time {
            m.insert("time".into(), json!(t));
        }
        m.insert("fieldsType".into(), json!("FieldsV1"));
        m.insert("fieldsV1".into(), to_fields_v1(&self.set));
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), json!(s));
        }
        Value::Object(m)
    }
}

/// Whether `obj` carries `metadata.managedFields` entries [`read_entries`] would keep (an
/// array holding an object with an `operation` string).
fn sends_entries(obj: &Value) -> bool {
    match obj.pointer("/metadata/managedFields") {
        Some(Value::Array(entries)) => entries
            .iter()
            .any(|e| e.get("operation").is_some_and(Value::is_string)),
        _ => false,
    }
}

fn read_entries(obj: &Value) -> Vec<Entry> {
    let Some(Value::Array(entries)) = obj.pointer("/metadata/managedFields") else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).map(str::to_string);
            Some(Entry {
                manager: s("manager").unwrap_or_default(),
                operation: s("operation")?,
                api_version: s("apiVersion").unwrap_or_default(),
                time: s("time"),
                subresource: s("subresource").filter(|s| !s.is_empty()),
                set: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Stores the entries (non-empty ones, in upstream's order) in `metadata.managedFields`.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    entries.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then(a.seconds().cmp(&b.seconds()))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    let Value::Object(root) = obj else { return };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else { return };
    if entries.is_empty() {
        meta.shift_remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

/// What changed between two versions of an object, as field sets.
struct Comparison {
    /// Fields set now that were absent before, and leaves whose value changed.
    changed: FieldSet,
    /// Fields that were set before and are absent now.
    removed: FieldSet,
}

fn compare(ty: Option<&str>, old: &Value, new: &Value, scope: Scope) -> Comparison {
    let before = field_set(ty, old, scope);
    let after = field_set(ty, new, scope);
    let mut changed: FieldSet = after.difference(&before).cloned().collect();
    for p in after.intersection(&before) {
        if !has_descendant(&after, p)
            && !has_descendant(&before, p)
            && get_path(old, p) != get_path(new, p)
        {
            changed.insert(p.clone());
        }
    }
    let removed = before.difference(&after).cloned().collect();
    Comparison { changed, removed }
}

/// Whether `path` is one of the key fields of a keyed-list item (kept while the item is).
fn is_key_field(path: &Path) -> bool {
    match path.as_slice() {
        [.., Pe::Key(k), Pe::Field(f)] => serde_json::from_str::<Value>(k)
            .ok()
            .is_some_and(|key| key.get(f).is_some()),
        _ => false,
    }
}

/// Removes from `obj` every path of `remove` no one keeps, then any object or list left empty
/// by that (up to, not including, the top-level fields' parent).
fn prune(obj: &mut Value, remove: &FieldSet, keep: &FieldSet) {
    // Parents sort before their children: a removed item takes its fields with it.
    for path in remove {
        if has_descendant(keep, path) || is_key_field(path) || !remove_path(obj, path) {
            continue;
        }
        let mut parent = path.clone();
        parent.pop();
        while parent.len() > 1 && !keep.contains(&parent) {
            let empty = match get_path(obj, &parent) {
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Array(a)) => a.is_empty(),
                _ => false,
            };
            if !empty || !remove_path(obj, &parent) {
                break;
            }
            parent.pop();
        }
    }
}

/// Server-side apply (`PATCH` with `application/apply-patch+yaml`): merges the applied
/// configuration into the live object (`None` creates it) and returns the new object with
/// `metadata.managedFields` updated.
///
/// Keyed lists merge by their keys, sets by value, atomic values are replaced. Fields this
/// manager applied before but omits now are removed unless another manager owns them. A
/// field another manager owns whose value would change is a conflict (HTTP 409) unless
/// `force`, which moves its ownership to this manager. `status` and the server-set metadata
/// are ignored; the live `status` is kept.
#[allow(clippy::too_many_arguments)]
pub fn server_side_apply(
    group: &str,
    kind: &str,
    api_version: &str,
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now_rfc3339: &str,
) -> Result<Value, PatchError> {
    let ty = schema::root_type(group, kind);
    let Value::Object(config) = applied else {
        return Err(PatchError::BadRequest(
            "an applied configuration must be an object: send a full manifest".into(),
        ));
    };
    let mut config = config.clone();
    config.shift_remove("status");
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        let sent = meta.shift_remove("managedFields");
        if sent.is_some_and(|m| !m.is_null() && m.as_array().is_none_or(|a| !a.is_empty())) {
            return Err(PatchError::BadRequest(
                "metadata.managedFields must be nil: remove it from the applied configuration"
                    .into(),
            ));
        }
    }
    let config = Value::Object(config);

    let live_obj = live.cloned().unwrap_or_else(|| json!({}));
    let mut entries = read_entries(&live_obj);
    if live.is_some() && entries.is_empty() {
        // Objects written before any field tracking belong to a pseudo manager, as upstream.
        entries.push(Entry {
            manager: "before-first-apply".into(),
            operation: "Update".into(),
            api_version: api_version.into(),
            time: None,
            subresource: None,
            set: field_set(ty, &live_obj, Scope::Main),
        });
    }
    let mine = entries
        .iter()
        .position(|e| e.same_identity(manager, "Apply", None));
    let last_set = mine.map(|i| entries[i].set.clone()).unwrap_or_default();
    let config_set = field_set(ty, &config, Scope::Main);

    let mut merged = live_obj.clone();
    if let (Value::Object(m), Value::Object(c)) = (&mut merged, &config) {
        merge_object(m, c, ty);
    }

    let mut keep = config_set.clone();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != mine {
            keep.extend(e.set.iter().cloned());
        }
    }
    let remove: FieldSet = last_set.difference(&keep).cloned().collect();
    prune(&mut merged, &remove, &keep);

    let cmp = compare(ty, &live_obj, &merged, Scope::Main);
    let mut conflicts: Vec<(usize, Path)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        conflicts.extend(e.set.intersection(&cmp.changed).map(|p| (i, p.clone())));
    }
    if !conflicts.is_empty() && !force {
        return Err(conflict_error(&entries, conflicts));
    }
    for (i, path) in &conflicts {
        entries[*i].set.remove(path);
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != mine {
            e.set = e.set.difference(&cmp.removed).cloned().collect();
        }
    }
    // A no-op apply keeps the entry's time, so the object is unchanged and need not be written.
    let unchanged = mine
        .filter(|&i| {
            conflicts.is_empty()
                && cmp.changed.is_empty()
                && cmp.removed.is_empty()
                && entries[i].set == config_set
                && entries[i].api_version == api_version
        })
        .and_then(|i| entries[i].time.clone());
    let entry = Entry {
        manager: manager.into(),
        operation: "Apply".into(),
        api_version: api_version.into(),
        time: Some(unchanged.unwrap_or_else(|| now_rfc3339.into())),
        subresource: None,
        set: config_set,
    };
    match mine {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    write_entries(&mut merged, entries);
    Ok(merged)
}

fn conflict_error(entries: &[Entry], conflicts: Vec<(usize, Path)>) -> PatchError {
    let list: Vec<ApplyConflict> = conflicts
        .iter()
        .map(|(i, p)| ApplyConflict {
            manager: entries[*i].printed(),
            field: path_text(p),
        })
        .collect();
    let message = if let [only] = list.as_slice() {
        format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager, only.field
        )
    } else {
        let mut by_manager: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for (c, (i, _)) in list.iter().zip(&conflicts) {
            by_manager
                .entry(entries[*i].manager.clone() + "\0" + &c.manager)
                .or_default()
                .push(&c.field);
        }
        let mut lines = Vec::new();
        for (key, fields) in by_manager {
            let printed = key.split_once('\0').map_or(key.as_str(), |(_, p)| p);
            lines.push(format!("conflicts with {printed}:"));
            lines.extend(fields.iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            list.len(),
            lines.join("\n")
        )
    };
    PatchError::Conflict {
        message,
        conflicts: list,
    }
}

/// Records field ownership for a non-apply write (create, update, patch) by `manager`: the
/// fields that differ between `old` (`None` on create: every field) and `new` become owned by
/// the manager's `Update` entry and leave every other manager's set; fields removed leave every
/// set; entries left empty are dropped. `subresource` `Some("status")` tracks only `status`,
/// otherwise `status` is ignored. Writes `new.metadata.managedFields` (a no-op write keeps
/// the old entries as they were).
#[allow(clippy::too_many_arguments)]
pub fn track_update(
    group: &str,
    kind: &str,
    api_version: &str,
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now_rfc3339: &str,
) {
    let ty = schema::root_type(group, kind);
    let scope = if subresource == Some("status") {
        Scope::Status
    } else {
        Scope::Main
    };
    if old.is_none() && subresource.is_none() && !sends_entries(new) {
        // A create without entries of its own (the common case): the writer owns every field
        // it set, one entry, built straight from the object.
        let fields = fields_v1_of(ty, new, scope);
        let Value::Object(root) = new else { return };
        let meta = root
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(meta) = meta else { return };
        match fields {
            None => {
                meta.shift_remove("managedFields");
            }
            Some(fields) => {
                let mut e = Map::new();
                e.insert("manager".into(), json!(manager));
                e.insert("operation".into(), json!("Update"));
                e.insert("apiVersion".into(), json!(api_version));
                e.insert("time".into(), json!(now_rfc3339));
                e.insert("fieldsType".into(), json!("FieldsV1"));
                e.insert("fieldsV1".into(), fields);
                meta.insert("managedFields".into(), Value::Array(vec![Value::Object(e)]));
            }
        }
        return;
    }
    let empty = json!({});
    let old_obj = old.unwrap_or(&empty);
    let mut entries = match subresource {
        // Subresource writers cannot set managedFields.
        Some(_) => read_entries(old_obj),
        None => match new.pointer("/metadata/managedFields") {
            // `[{}]` resets field tracking, as upstream.
            Some(Value::Array(a))
                if a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty) =>
            {
                Vec::new()
            }
            // Entries sent with the object win (e.g. kubectl's client-side to server-side
            // apply upgrade); none or unreadable ones fall back to the stored entries.
            _ => match read_entries(new) {
                sent if !sent.is_empty() => sent,
                _ => read_entries(old_obj),
            },
        },
    };
    let cmp = compare(ty, old_obj, new, scope);
    if cmp.changed.is_empty() && cmp.removed.is_empty() {
        write_entries(new, entries);
        return;
    }
    let subresource = subresource.filter(|s| !s.is_empty());
    let mine = entries.iter().position(|e| {
        e.same_identity(manager, "Update", subresource) && e.api_version == api_version
    });
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) != mine {
            e.set = e
                .set
                .iter()
                .filter(|p| !cmp.changed.contains(*p) && !cmp.removed.contains(*p))
                .cloned()
                .collect();
        }
    }
    let previous = mine.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut set: FieldSet = previous.difference(&cmp.removed).cloned().collect();
    set.extend(cmp.changed);
    let entry = Entry {
        manager: manager.into(),
        operation: "Update".into(),
        api_version: api_version.into(),
        time: Some(now_rfc3339.into()),
        subresource: subresource.map(str::to_string),
        set,
    };
    match mine {
        Some(i) => entries[i] = entry,
        None => entries.push(entry),
    }
    write_entries(new, entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_walk_fields_match_the_field_set_form() {
        let objects = [
            (
                "apps",
                "Deployment",
                json!({
                    "apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": "w", "namespace": "d", "uid": "u", "labels": {"b": "1", "a": "2"},
                        "finalizers": ["z", "a", "z"], "annotations": {"x": "y"}},
                    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "w"}},
                        "template": {"metadata": {"labels": {"app": "w"}}, "spec": {
                            "tolerations": [{"key": "k", "operator": "Exists"}],
                            "containers": [
                                {"name": "z", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"},
                                    {"containerPort": 53, "protocol": "UDP"}], "env": [{"name": "B", "value": "1"},
                                    {"name": "A", "value": "2"}], "args": ["x", "y"]},
                                {"name": "a", "image": "j", "resources": {"limits": {"cpu": "1"}}}
                            ]}}},
                    "status": {"replicas": 2, "conditions": [{"type": "Available", "status": "True"}]}
                }),
            ),
            (
                "",
                "Service",
                json!({
                    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                    "spec": {"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "UDP"}],
                        "selector": {"app": "w"}, "clusterIPs": ["10.43.0.5"]}
                }),
            ),
            (
                "",
                "ConfigMap",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}),
            ),
        ];
        for (group, kind, obj) in objects {
            let ty = schema::root_type(group, kind);
            for scope in [Scope::Main, Scope::Status, Scope::All] {
                let set = field_set(ty, &obj, scope);
                let want = (!set.is_empty()).then(|| to_fields_v1(&set));
                let got = fields_v1_of(ty, &obj, scope);
                assert_eq!(got, want, "{kind}");
                // Same order too (maps keep insertion order).
                assert_eq!(
                    serde_json::to_string(&got).unwrap(),
                    serde_json::to_string(&want).unwrap(),
                    "{kind}"
                );
            }
        }
    }

    const T0: &str = "2025-01-01T00:00:00Z";
    const T1: &str = "2025-01-01T00:01:00Z";
    const T2: &str = "2025-01-01T00:02:00Z";

    fn manifest(image: &str, replicas: Option<i64>) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": image,
                        "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}
                }
            }
        });
        if let Some(r) = replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    fn apply(
        live: Option<&Value>,
        cfg: &Value,
        mgr: &str,
        force: bool,
        now: &str,
    ) -> Result<Value, PatchError> {
        server_side_apply("apps", "Deployment", "apps/v1", live, cfg, mgr, force, now)
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["manager"].as_str().unwrap().to_string(),
                            e["operation"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn entry<'a>(obj: &'a Value, mgr: &str) -> &'a Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == mgr)
            .unwrap()
    }

    #[test]
    fn fields_of_matches_upstream_shape() {
        let f = fields_of("apps", "Deployment", &manifest("nginx", Some(1)));
        assert_eq!(
            f,
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {
                            ".": {},
                            "f:image": {},
                            "f:name": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {
                                ".": {}, "f:containerPort": {}, "f:protocol": {}
                            }}
                        }}}
                    }
                }
            })
        );
        let pod = json!({"metadata": {"finalizers": ["a", "b"]}, "spec": {"tolerations": [{"key": "x"}]}});
        assert_eq!(
            fields_of("", "Pod", &pod),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}, "v:\"b\"": {}}},
                   "f:spec": {"f:tolerations": {}}})
        );
        // fieldsV1 round-trips.
        let set = field_set(
            schema::root_type("apps", "Deployment"),
            &manifest("x", Some(1)),
            Scope::All,
        );
        assert_eq!(from_fields_v1(&to_fields_v1(&set)), set);
    }

    #[test]
    fn apply_creates_and_reapplies_without_conflict() {
        let created = apply(None, &manifest("nginx:1.25", Some(2)), "kubectl", false, T0).unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(managers(&created), [("kubectl".into(), "Apply".into())]);
        let e = entry(&created, "kubectl");
        assert_eq!(e["apiVersion"], "apps/v1");
        assert_eq!(e["time"], T0);
        assert_eq!(e["fieldsType"], "FieldsV1");
        assert_eq!(
            e["fieldsV1"],
            fields_of("apps", "Deployment", &manifest("nginx:1.25", Some(2)))
        );

        let updated = apply(
            Some(&created),
            &manifest("nginx:1.27", Some(2)),
            "kubectl",
            false,
            T1,
        )
        .unwrap();
        assert_eq!(
            updated["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        assert_eq!(managers(&updated), [("kubectl".into(), "Apply".into())]);
        assert_eq!(entry(&updated, "kubectl")["time"], T1);

        // Applying the same manifest again changes nothing at all.
        let again = apply(
            Some(&updated),
            &manifest("nginx:1.27", Some(2)),
            "kubectl",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(again, updated);
    }

    #[test]
    fn two_appliers_conflict_on_replicas_unless_forced() {
        let live = apply(None, &manifest("nginx", Some(2)), "alice", false, T0).unwrap();
        let bob = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 5}});
        let err = apply(Some(&live), &bob, "bob", false, T1).unwrap_err();
        match &err {
            PatchError::Conflict { message, conflicts } => {
                assert_eq!(
                    message,
                    "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
                );
                assert_eq!(
                    conflicts,
                    &[ApplyConflict {
                        manager: "\"alice\"".into(),
                        field: ".spec.replicas".into()
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Same value: shared ownership, no conflict.
        let same = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"}, "spec": {"replicas": 2}});
        let shared = apply(Some(&live), &same, "bob", false, T1).unwrap();
        assert!(entry(&shared, "alice")["fieldsV1"]["f:spec"]["f:replicas"].is_object());
        assert!(entry(&shared, "bob")["fieldsV1"]["f:spec"]["f:replicas"].is_object());

        let forced = apply(Some(&live), &bob, "bob", true, T1).unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        assert!(entry(&forced, "alice")["fieldsV1"]["f:spec"]
            .get("f:replicas")
            .is_none());
        assert!(entry(&forced, "alice")["fieldsV1"]["f:spec"]["f:template"].is_object());
        // Alice re-applying her old value now conflicts with bob.
        let err = apply(
            Some(&forced),
            &manifest("nginx", Some(2)),
            "alice",
            false,
            T2,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("conflict with \"bob\": .spec.replicas"),
            "{err}"
        );
    }

    #[test]
    fn omitted_fields_are_removed_unless_owned_elsewhere() {
        let mut cfg = manifest("nginx", Some(2));
        cfg["metadata"]["labels"]["tier"] = json!("fe");
        cfg["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "sidecar", "image": "busybox"}));
        let live = apply(None, &cfg, "kubectl", false, T0).unwrap();
        // Another writer sets an annotation and a label of its own.
        let mut edited = live.clone();
        edited["metadata"]["annotations"] = json!({"note": "x"});
        edited["metadata"]["labels"]["owner"] = json!("ops");
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&live),
            &mut edited,
            "kubectl-edit",
            None,
            T1,
        );

        // Re-apply without replicas, the tier label and the sidecar.
        let out = apply(
            Some(&edited),
            &manifest("nginx", None),
            "kubectl",
            false,
            T2,
        )
        .unwrap();
        assert!(out["spec"].get("replicas").is_none());
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "owner": "ops"})
        );
        assert_eq!(out["metadata"]["annotations"], json!({"note": "x"}));
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0]["name"], "web");

        // A field also owned by another manager survives when omitted.
        let mut scaled = out.clone();
        scaled["spec"]["replicas"] = json!(4);
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&out),
            &mut scaled,
            "kubectl-scale",
            Some("scale"),
            T2,
        );
        let mut with_replicas = manifest("nginx", Some(4));
        with_replicas["spec"]["replicas"] = json!(4);
        let both = apply(Some(&scaled), &with_replicas, "kubectl", false, T2).unwrap();
        let again = apply(Some(&both), &manifest("nginx", None), "kubectl", false, T2).unwrap();
        assert_eq!(again["spec"]["replicas"], 4);
    }

    #[test]
    fn client_side_apply_then_server_side_conflicts() {
        let mut created = manifest("nginx", Some(1));
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            None,
            &mut created,
            "kubectl-client-side-apply",
            None,
            T0,
        );
        assert_eq!(
            managers(&created),
            [("kubectl-client-side-apply".into(), "Update".into())]
        );
        let e = entry(&created, "kubectl-client-side-apply");
        assert_eq!(e["time"], T0);
        assert!(e.get("subresource").is_none());
        assert_eq!(e["fieldsV1"]["f:spec"]["f:replicas"], json!({}));

        let err = apply(
            Some(&created),
            &manifest("nginx", Some(3)),
            "kubectl",
            false,
            T1,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas"
        );

        // kubectl scale: the scale subresource takes replicas over.
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(3);
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&created),
            &mut scaled,
            "kubectl",
            Some("scale"),
            T1,
        );
        let csa = entry(&scaled, "kubectl-client-side-apply");
        assert!(csa["fieldsV1"]["f:spec"].get("f:replicas").is_none());
        let sc = entry(&scaled, "kubectl");
        assert_eq!(sc["subresource"], "scale");
        assert_eq!(sc["fieldsV1"], json!({"f:spec": {"f:replicas": {}}}));
        let err = apply(
            Some(&scaled),
            &manifest("nginx:2", Some(5)),
            "kubectl",
            false,
            T2,
        )
        .unwrap_err();
        match err {
            PatchError::Conflict { message, conflicts } => {
                assert_eq!(conflicts.len(), 2, "{message}");
                assert_eq!(
                    message,
                    "Apply failed with 2 conflicts: conflicts with \"kubectl\" with subresource \"scale\" using apps/v1:\n- .spec.replicas\nconflicts with \"kubectl-client-side-apply\" using apps/v1:\n- .spec.template.spec.containers[name=\"web\"].image"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        let forced = apply(
            Some(&scaled),
            &manifest("nginx:2", Some(5)),
            "kubectl",
            true,
            T2,
        )
        .unwrap();
        assert_eq!(forced["spec"]["replicas"], 5);
        assert_eq!(
            managers(&forced),
            [
                ("kubectl".into(), "Apply".into()),
                ("kubectl-client-side-apply".into(), "Update".into())
            ],
            "the scale entry lost its only field and is dropped; Apply sorts first"
        );
    }

    #[test]
    fn track_update_moves_ownership_and_ignores_status() {
        let mut v1 = manifest("nginx", Some(1));
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            None,
            &mut v1,
            "kubectl-create",
            None,
            T0,
        );
        let mut v2 = v1.clone();
        v2["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        v2["status"] = json!({"replicas": 1});
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&v1),
            &mut v2,
            "kubectl-set",
            None,
            T1,
        );
        let set = entry(&v2, "kubectl-set");
        assert_eq!(
            set["fieldsV1"],
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {"f:image": {}}}}}}})
        );
        let create = entry(&v2, "kubectl-create");
        assert!(
            create["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
                ["k:{\"name\":\"web\"}"]
                .get("f:image")
                .is_none()
        );

        // Status writers own status only.
        let mut v3 = v2.clone();
        v3["status"] = json!({"replicas": 1, "readyReplicas": 1});
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&v2),
            &mut v3,
            "skiff-controller",
            Some("status"),
            T2,
        );
        assert_eq!(
            entry(&v3, "skiff-controller")["fieldsV1"],
            json!({"f:status": {"f:readyReplicas": {}}}),
            "status.replicas was written through the main resource, so nobody owns it"
        );
        // A no-op write changes nothing.
        let mut v4 = v3.clone();
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&v3),
            &mut v4,
            "other",
            None,
            T2,
        );
        assert_eq!(v4, v3);
    }

    #[test]
    fn apply_over_untracked_object_conflicts_with_before_first_apply() {
        let live = manifest("nginx", Some(1));
        let err = apply(
            Some(&live),
            &manifest("nginx", Some(2)),
            "kubectl",
            false,
            T0,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"before-first-apply\" using apps/v1: .spec.replicas"
        );
    }

    #[test]
    fn keyed_lists_merge_and_atomic_lists_replace() {
        let live = apply(None, &manifest("nginx", Some(1)), "a", false, T0).unwrap();
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "side", "image": "busybox", "args": ["x"]},
            {"name": "web", "env": [{"name": "E", "value": "1"}]}
        ]}}}});
        let out = apply(Some(&live), &cfg, "b", false, T1).unwrap();
        let cs = out["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        let names: Vec<&str> = cs.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["side", "web"]);
        assert_eq!(cs[1]["image"], "nginx");
        assert_eq!(cs[1]["env"], json!([{"name": "E", "value": "1"}]));
        let cfg2 = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": [{"name": "side", "args": ["y", "z"]}]}}}});
        let out2 = apply(Some(&out), &cfg2, "b", true, T2).unwrap();
        let cs = out2["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(cs.len(), 2, "web is still owned by a");
        let side = cs.iter().find(|c| c["name"] == "side").unwrap();
        assert_eq!(side["args"], json!(["y", "z"]));
        assert!(
            side.get("image").is_none(),
            "b dropped the image it owned alone"
        );
    }

    #[test]
    fn port_keys_default_protocol_to_tcp() {
        // The live object was defaulted (protocol: TCP); the manifest omits protocol.
        let mut live = manifest("nginx", Some(1));
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            None,
            &mut live,
            "kubectl-create",
            None,
            T0,
        );
        let mut cfg = manifest("nginx", Some(1));
        cfg["spec"]["template"]["spec"]["containers"][0]["ports"] =
            json!([{"containerPort": 80, "name": "http"}]);
        let out = apply(Some(&live), &cfg, "kubectl", false, T1).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP", "name": "http"}])
        );
        let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"port": 80}, {"port": 53, "protocol": "UDP"}]}});
        assert_eq!(
            fields_of("", "Service", &svc)["f:spec"]["f:ports"],
            json!({
                "k:{\"port\":53,\"protocol\":\"UDP\"}": {".": {}, "f:port": {}, "f:protocol": {}},
                "k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}
            })
        );
    }

    #[test]
    fn managed_fields_sent_with_an_update_are_honoured() {
        let mut live = manifest("nginx", Some(1));
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            None,
            &mut live,
            "kubectl-client-side-apply",
            None,
            T0,
        );
        // kubectl's upgrade to server-side apply rewrites the entry as an Apply by "kubectl".
        let mut upgraded = live.clone();
        upgraded["metadata"]["managedFields"][0]["manager"] = json!("kubectl");
        upgraded["metadata"]["managedFields"][0]["operation"] = json!("Apply");
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&live),
            &mut upgraded,
            "kubectl",
            None,
            T1,
        );
        assert_eq!(managers(&upgraded), [("kubectl".into(), "Apply".into())]);
        let out = apply(
            Some(&upgraded),
            &manifest("nginx", Some(3)),
            "kubectl",
            false,
            T2,
        )
        .unwrap();
        assert_eq!(out["spec"]["replicas"], 3);

        // `[{}]` resets tracking: the writer then owns only what it changed.
        let mut reset = live.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        reset["spec"]["replicas"] = json!(2);
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&live),
            &mut reset,
            "editor",
            None,
            T1,
        );
        assert_eq!(managers(&reset), [("editor".into(), "Update".into())]);
        assert_eq!(
            entry(&reset, "editor")["fieldsV1"],
            json!({"f:spec": {"f:replicas": {}}})
        );

        // Subresource writes cannot touch managedFields.
        let mut status = live.clone();
        status["metadata"]["managedFields"] = json!([]);
        status["status"] = json!({"replicas": 1});
        track_update(
            "apps",
            "Deployment",
            "apps/v1",
            Some(&live),
            &mut status,
            "ctrl",
            Some("status"),
            T1,
        );
        assert_eq!(managers(&status).len(), 2);

        let mut bad = manifest("nginx", Some(1));
        bad["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Apply"}]);
        assert!(matches!(
            apply(None, &bad, "kubectl", false, T0),
            Err(PatchError::BadRequest(_))
        ));
    }

    /// The general path of `track_update` for a create (field set, then entries) — what the
    /// one-walk fast path must reproduce.
    fn track_create_general(group: &str, kind: &str, obj: &Value) -> Value {
        let ty = schema::root_type(group, kind);
        let mut out = obj.clone();
        let set = field_set(ty, obj, Scope::Main);
        let entries = if set.is_empty() {
            vec![]
        } else {
            vec![Entry {
                manager: "m".into(),
                operation: "Update".into(),
                api_version: "v9".into(),
                time: Some(T0.into()),
                subresource: None,
                set,
            }]
        };
        write_entries(&mut out, entries);
        out
    }

    #[test]
    fn create_fast_path_matches_the_field_set_path() {
        let objects = [
            ("apps", "Deployment", manifest("nginx", Some(3))),
            (
                "",
                "Pod",
                json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "p", "namespace": "d", "uid": "u", "labels": {"a": "b"},
                        "annotations": {}, "finalizers": ["x", "y", "x"], "generateName": "p-",
                        "ownerReferences": [{"apiVersion": "v1", "kind": "RS", "name": "r", "uid": "1"}],
                        "creationTimestamp": "2025-01-01T00:00:00Z", "resourceVersion": "5",
                        "managedFields": [{}]},
                    "spec": {"containers": [
                        {"name": "web", "image": "nginx", "ports": [{"containerPort": 80},
                            {"containerPort": 80, "protocol": "UDP"}],
                         "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
                         "resources": {"requests": {"cpu": "1"}}, "volumeMounts": [{"name": "v", "mountPath": "/m"}],
                         "securityContext": null},
                        {"name": "side", "image": "busybox", "args": ["a", "b"]}],
                        "volumes": [{"name": "v", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}}]}}],
                        "tolerations": [{"key": "k", "operator": "Exists"}],
                        "nodeSelector": {}, "dnsConfig": {"options": [{"name": "ndots"}]},
                        "affinity": {"nodeAffinity": null}},
                    "status": {"phase": "Pending"}}),
            ),
            (
                "",
                "Service",
                json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "name": "a"},
                    {"port": 80, "name": "a"}], "selector": {"app": "x"}, "clusterIPs": ["10.0.0.1"]}}),
            ),
            (
                "",
                "ConfigMap",
                json!({"metadata": {"name": "c", "labels": {}}, "data": {"k": "v", "e": ""}}),
            ),
            (
                "example.com",
                "Widget",
                json!({"metadata": {"name": "w"}, "spec": {"a": [1, 2], "b": {"c": null}}}),
            ),
            (
                "",
                "ConfigMap",
                json!({"metadata": {"name": "only-ignored", "uid": "u"}}),
            ),
            ("", "ConfigMap", json!({"kind": "ConfigMap"})),
        ];
        for (group, kind, obj) in objects {
            let mut fast = obj.clone();
            track_update(group, kind, "v9", None, &mut fast, "m", None, T0);
            assert_eq!(
                fast,
                track_create_general(group, kind, &obj),
                "{kind} {obj}"
            );
        }
        // Entries sent with a create still go the general way (and are kept).
        let mut sent = json!({"metadata": {"name": "c", "managedFields": [{"manager": "other",
            "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:gone": {}}}}]}, "data": {"k": "v"}});
        track_update("", "ConfigMap", "v1", None, &mut sent, "m", None, T0);
        let managers: Vec<&str> = sent["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(managers, ["other", "m"]);
    }
}
