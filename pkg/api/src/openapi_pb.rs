//! `/openapi/v2` in protobuf (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! the Swagger 2.0 JSON document encoded as gnostic's `openapi.v2.Document` message, which
//! kubectl decodes for its client-side validation fallback (`kind: List`, unknown kinds).
//!
//! Hand-written on purpose: the document already exists as JSON, so walking it and writing
//! the protobuf wire format for the messages kubectl reads (Document, Info, Paths/PathItem/
//! Operation/parameters/responses, Definitions/Schema, vendor extensions as YAML — JSON is
//! YAML) is a few hundred lines, where prost would need the ~60 generated gnostic messages
//! and a JSON → struct conversion on top. Field numbers are gnostic's `OpenAPIv2.proto`.

use serde_json::{Map, Value};
use std::sync::OnceLock;

/// The media type kubectl asks for (not a valid MIME token because of the `@`).
pub const MEDIA_TYPE: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The media type answered (and also accepted), as kube-openapi does: Go's `mime` parser
/// in client-go refuses the `@` form in a Content-Type.
pub const CONTENT_TYPE: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// The served v2 document in protobuf, built once.
pub fn v2_protobuf() -> &'static [u8] {
    static PB: OnceLock<Vec<u8>> = OnceLock::new();
    PB.get_or_init(|| document(&crate::openapi::v2_tree()))
}

/// A protobuf message under construction.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(b);
                return;
            }
            self.0.push(b | 0x80);
        }
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn msg(&mut self, field: u32, m: Msg) {
        self.bytes(field, &m.0);
    }

    fn boolean(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Fields of `o` by key: strings, booleans, int64 and doubles.
    fn str_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(s) = o.get(key).and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn bool_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(b) = o.get(key).and_then(Value::as_bool) {
            self.boolean(field, b);
        }
    }

    fn int_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(n) = o.get(key).and_then(Value::as_i64) {
            self.int64(field, n);
        }
    }

    fn double_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        if let Some(n) = o.get(key).and_then(Value::as_f64) {
            self.double(field, n);
        }
    }

    fn strings_of(&mut self, field: u32, o: &Map<String, Value>, key: &str) {
        for s in o
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            self.bytes(field, s.as_bytes());
        }
    }

    /// An `Any` (its `yaml`, field 2) holding `v`.
    fn any(&mut self, field: u32, v: &Value) {
        let mut a = Msg::default();
        a.string(2, &v.to_string());
        self.msg(field, a);
    }

    /// `x-…` keys as repeated `NamedAny`.
    fn vendor_extensions(&mut self, field: u32, o: &Map<String, Value>) {
        for (k, v) in o.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Msg::default();
            named.string(1, k);
            named.any(2, v);
            self.msg(field, named);
        }
    }
}

fn obj(v: &Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

/// `openapi.v2.Document`.
pub fn document(doc: &Value) -> Vec<u8> {
    let d = obj(doc);
    let mut m = Msg::default();
    m.str_of(1, &d, "swagger");
    if let Some(info) = d.get("info") {
        let i = obj(info);
        let mut im = Msg::default();
        im.str_of(1, &i, "title");
        im.str_of(2, &i, "version");
        im.str_of(3, &i, "description");
        im.vendor_extensions(7, &i);
        m.msg(2, im);
    }
    m.str_of(3, &d, "host");
    m.str_of(4, &d, "basePath");
    m.strings_of(5, &d, "schemes");
    m.strings_of(6, &d, "consumes");
    m.strings_of(7, &d, "produces");
    if let Some(paths) = d.get("paths").and_then(Value::as_object) {
        let mut pm = Msg::default();
        for (path, item) in paths {
            let mut named = Msg::default();
            named.string(1, path);
            named.msg(2, path_item(item));
            pm.msg(2, named);
        }
        m.msg(8, pm);
    }
    if let Some(defs) = d.get("definitions").and_then(Value::as_object) {
        let mut dm = Msg::default();
        for (name, s) in defs {
            let mut named = Msg::default();
            named.string(1, name);
            named.msg(2, schema(s));
            dm.msg(1, named);
        }
        m.msg(9, dm);
    }
    if let Some(params) = d.get("parameters").and_then(Value::as_object) {
        let mut pm = Msg::default();
        for (name, p) in params {
            let mut named = Msg::default();
            named.string(1, name);
            named.msg(2, parameter(p));
            pm.msg(1, named);
        }
        m.msg(10, pm);
    }
    m.vendor_extensions(16, &d);
    m.0
}

fn path_item(v: &Value) -> Msg {
    let o = obj(v);
    let mut m = Msg::default();
    m.str_of(1, &o, "$ref");
    for (field, verb) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(op) = o.get(verb) {
            m.msg(field, operation(op));
        }
    }
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(9, parameters_item(p));
    }
    m.vendor_extensions(10, &o);
    m
}

fn operation(v: &Value) -> Msg {
    let o = obj(v);
    let mut m = Msg::default();
    m.strings_of(1, &o, "tags");
    m.str_of(2, &o, "summary");
    m.str_of(3, &o, "description");
    m.str_of(5, &o, "operationId");
    m.strings_of(6, &o, "produces");
    m.strings_of(7, &o, "consumes");
    for p in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(8, parameters_item(p));
    }
    if let Some(rs) = o.get("responses").and_then(Value::as_object) {
        let mut rm = Msg::default();
        for (code, r) in rs {
            let ro = obj(r);
            let mut value = Msg::default();
            if let Some(rf) = ro.get("$ref").and_then(Value::as_str) {
                let mut jr = Msg::default();
                jr.string(1, rf);
                value.msg(2, jr);
            } else {
                let mut resp = Msg::default();
                resp.str_of(1, &ro, "description");
                if let Some(s) = ro.get("schema") {
                    let mut item = Msg::default();
                    item.msg(1, schema(s));
                    resp.msg(2, item);
                }
                resp.vendor_extensions(5, &ro);
                value.msg(1, resp);
            }
            let mut named = Msg::default();
            named.string(1, code);
            named.msg(2, value);
            rm.msg(1, named);
        }
        m.msg(9, rm);
    }
    m.strings_of(10, &o, "schemes");
    m.bool_of(11, &o, "deprecated");
    m.vendor_extensions(13, &o);
    m
}

/// `ParametersItem`: a `$ref` or a parameter.
fn parameters_item(v: &Value) -> Msg {
    let mut m = Msg::default();
    if let Some(rf) = v.get("$ref").and_then(Value::as_str) {
        let mut jr = Msg::default();
        jr.string(1, rf);
        m.msg(2, jr);
    } else {
        m.msg(1, parameter(v));
    }
    m
}

/// `Parameter`: a body parameter or one of the non-body sub-schemas.
fn parameter(v: &Value) -> Msg {
    let o = obj(v);
    let mut m = Msg::default();
    let place = o.get("in").and_then(Value::as_str).unwrap_or("");
    if place == "body" {
        let mut b = Msg::default();
        b.str_of(1, &o, "description");
        b.str_of(2, &o, "name");
        b.str_of(3, &o, "in");
        b.bool_of(4, &o, "required");
        if let Some(s) = o.get("schema") {
            b.msg(5, schema(s));
        }
        b.vendor_extensions(6, &o);
        m.msg(1, b);
        return m;
    }
    // Header, path and query share one layout after `name` apart from allowEmptyValue
    // (query and formData only), which shifts the later fields by one.
    let (which, empty_value) = match place {
        "header" => (1, false),
        "formData" => (2, true),
        "path" => (4, false),
        _ => (3, true),
    };
    let mut s = Msg::default();
    s.bool_of(1, &o, "required");
    s.str_of(2, &o, "in");
    s.str_of(3, &o, "description");
    s.str_of(4, &o, "name");
    let base = if empty_value {
        s.bool_of(5, &o, "allowEmptyValue");
        6
    } else {
        5
    };
    s.str_of(base, &o, "type");
    s.str_of(base + 1, &o, "format");
    s.str_of(base + 3, &o, "collectionFormat");
    if let Some(d) = o.get("default") {
        s.any(base + 4, d);
    }
    s.bool_of(base + 14, &o, "uniqueItems");
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        s.any(base + 15, e);
    }
    s.vendor_extensions(base + 17, &o);
    let mut nb = Msg::default();
    nb.msg(which, s);
    m.msg(2, nb);
    m
}

/// `Schema`.
fn schema(v: &Value) -> Msg {
    let o = obj(v);
    let mut m = Msg::default();
    m.str_of(1, &o, "$ref");
    m.str_of(2, &o, "format");
    m.str_of(3, &o, "title");
    m.str_of(4, &o, "description");
    if let Some(d) = o.get("default") {
        m.any(5, d);
    }
    m.double_of(6, &o, "multipleOf");
    m.double_of(7, &o, "maximum");
    m.bool_of(8, &o, "exclusiveMaximum");
    m.double_of(9, &o, "minimum");
    m.bool_of(10, &o, "exclusiveMinimum");
    m.int_of(11, &o, "maxLength");
    m.int_of(12, &o, "minLength");
    m.str_of(13, &o, "pattern");
    m.int_of(14, &o, "maxItems");
    m.int_of(15, &o, "minItems");
    m.bool_of(16, &o, "uniqueItems");
    m.int_of(17, &o, "maxProperties");
    m.int_of(18, &o, "minProperties");
    m.strings_of(19, &o, "required");
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.any(20, e);
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut ap = Msg::default();
            ap.key(2, 0);
            ap.varint(*b as u64);
            m.msg(21, ap);
        }
        Some(s @ Value::Object(_)) => {
            let mut ap = Msg::default();
            ap.msg(1, schema(s));
            m.msg(21, ap);
        }
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => {
            let mut ti = Msg::default();
            ti.string(1, t);
            m.msg(22, ti);
        }
        Some(Value::Array(ts)) => {
            let mut ti = Msg::default();
            for t in ts.iter().filter_map(Value::as_str) {
                ti.bytes(1, t.as_bytes());
            }
            m.msg(22, ti);
        }
        _ => {}
    }
    match o.get("items") {
        Some(s @ Value::Object(_)) => {
            let mut ii = Msg::default();
            ii.msg(1, schema(s));
            m.msg(23, ii);
        }
        Some(Value::Array(ss)) => {
            let mut ii = Msg::default();
            for s in ss {
                ii.msg(1, schema(s));
            }
            m.msg(23, ii);
        }
        _ => {}
    }
    for s in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.msg(24, schema(s));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        let mut pm = Msg::default();
        for (name, s) in props {
            let mut named = Msg::default();
            named.string(1, name);
            named.msg(2, schema(s));
            pm.msg(1, named);
        }
        m.msg(25, pm);
    }
    m.str_of(26, &o, "discriminator");
    m.bool_of(27, &o, "readOnly");
    if let Some(e) = o.get("example") {
        m.any(30, e);
    }
    m.vendor_extensions(31, &o);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal protobuf reader for the test: (field, wire type, payload) triples.
    fn fields(mut b: &[u8]) -> Vec<(u32, u8, Vec<u8>)> {
        fn varint(b: &mut &[u8]) -> u64 {
            let mut v = 0u64;
            let mut shift = 0;
            loop {
                let x = b[0];
                *b = &b[1..];
                v |= ((x & 0x7f) as u64) << shift;
                if x & 0x80 == 0 {
                    return v;
                }
                shift += 7;
            }
        }
        let mut out = Vec::new();
        while !b.is_empty() {
            let k = varint(&mut b);
            let (field, wire) = ((k >> 3) as u32, (k & 7) as u8);
            let payload = match wire {
                0 => varint(&mut b).to_le_bytes().to_vec(),
                1 => {
                    let p = b[..8].to_vec();
                    b = &b[8..];
                    p
                }
                2 => {
                    let n = varint(&mut b) as usize;
                    let p = b[..n].to_vec();
                    b = &b[n..];
                    p
                }
                w => panic!("wire type {w}"),
            };
            out.push((field, wire, payload));
        }
        out
    }

    fn get(b: &[u8], field: u32) -> Vec<Vec<u8>> {
        fields(b)
            .into_iter()
            .filter(|(f, _, _)| *f == field)
            .map(|(_, _, p)| p)
            .collect()
    }

    fn text(b: &[u8], field: u32) -> String {
        String::from_utf8(get(b, field).remove(0)).unwrap()
    }

    #[test]
    fn documents_encode_as_gnostic_messages() {
        let doc = json!({
            "swagger": "2.0",
            "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {"/api/v1/namespaces/{name}": {"patch": {
                "x-kubernetes-group-version-kind": {"group": "", "kind": "Namespace", "version": "v1"},
                "parameters": [{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true},
                               {"$ref": "#/parameters/body-78PwaGsr"}],
                "responses": {"200": {"description": "OK", "schema": {"$ref": "#/definitions/x"}}}}}},
            "definitions": {"io.k8s.api.core.v1.ConfigMap": {
                "type": "object", "required": ["a"],
                "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}},
                               "n": {"type": "integer", "format": "int32", "minimum": 1.5}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "ConfigMap", "version": "v1"}]}},
        });
        let pb = document(&doc);
        assert_eq!(text(&pb, 1), "2.0");
        assert_eq!(text(&get(&pb, 2)[0], 2), "v1.32.0");
        // Paths → NamedPathItem → PathItem.patch → Operation.
        let named = &get(&get(&pb, 8)[0], 2)[0];
        assert_eq!(text(named, 1), "/api/v1/namespaces/{name}");
        let op = &get(&get(named, 2)[0], 8)[0];
        let ext = &get(op, 13)[0];
        assert_eq!(text(ext, 1), "x-kubernetes-group-version-kind");
        assert_eq!(
            text(&get(ext, 2)[0], 2),
            r#"{"group":"","kind":"Namespace","version":"v1"}"#
        );
        let params = get(op, 8);
        // ParametersItem.parameter.non_body_parameter.query_parameter_sub_schema.name
        let query = &get(&get(&get(&params[0], 1)[0], 2)[0], 3)[0];
        assert_eq!(text(query, 4), "fieldValidation");
        assert_eq!(text(query, 6), "string");
        assert_eq!(get(query, 20)[0][0], 1);
        assert_eq!(
            text(&get(&params[1], 2)[0], 1),
            "#/parameters/body-78PwaGsr"
        );
        // Definitions → NamedSchema → Schema.
        let def = &get(&get(&pb, 9)[0], 1)[0];
        assert_eq!(text(def, 1), "io.k8s.api.core.v1.ConfigMap");
        let s = &get(def, 2)[0];
        assert_eq!(text(&get(s, 22)[0], 1), "object");
        assert_eq!(text(s, 19), "a");
        let props = get(&get(s, 25)[0], 1);
        assert_eq!(text(&props[0], 1), "data");
        let data = &get(&props[0], 2)[0];
        let ap = &get(&get(data, 21)[0], 1)[0];
        assert_eq!(text(&get(ap, 22)[0], 1), "string");
        let n = &get(&props[1], 2)[0];
        assert_eq!(text(n, 2), "int32");
        assert_eq!(get(n, 9)[0], 1.5f64.to_le_bytes().to_vec());
        assert_eq!(
            text(&get(&get(s, 31)[0], 2)[0], 2),
            r#"[{"group":"","kind":"ConfigMap","version":"v1"}]"#
        );
    }

    #[test]
    fn the_served_document_encodes() {
        let pb = v2_protobuf();
        assert!(pb.len() > 100_000, "{}", pb.len());
        assert_eq!(text(pb, 1), "2.0");
    }
}
