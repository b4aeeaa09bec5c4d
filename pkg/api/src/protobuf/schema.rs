//! The shape of the generated message table (`schema_gen.rs`) and lookups into it: which
//! protobuf field number maps to which JSON name, wire type, nested message, map or list.

use super::schema_gen::{KINDS, MESSAGES, META_V1_PREFIX};

/// A zero value of this scalar is kept in JSON (Go pointer field, or no `omitempty`).
pub const KEEP_ZERO: u8 = 1;
/// The message field's JSON keys are promoted into the parent object (Go embedded struct).
pub const INLINE: u8 = 2;

/// The value type of a field (or of a map's values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
    /// A nested message: index into [`MESSAGES`].
    M(u16),
}

/// Cardinality: singular, repeated, or a `map<string, Ty>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Card {
    One,
    Rep,
    Map,
}

/// One field of a message, listed in Go declaration (= JSON output) order.
#[derive(Debug)]
pub struct Field {
    pub tag: u32,
    pub json: &'static str,
    pub ty: Ty,
    pub card: Card,
    pub flags: u8,
}

impl Field {
    pub const fn new(tag: u32, json: &'static str, ty: Ty, card: Card, flags: u8) -> Field {
        Field {
            tag,
            json,
            ty,
            card,
            flags,
        }
    }

    pub fn keep_zero(&self) -> bool {
        self.flags & KEEP_ZERO != 0
    }

    pub fn inline(&self) -> bool {
        self.flags & INLINE != 0
    }
}

/// Messages whose JSON form is not an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    None,
    /// `metav1.Time`: RFC 3339 with seconds, `null` when zero.
    Time,
    /// `metav1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `metav1.Duration`: Go duration string (`1h0m0s`).
    Duration,
    /// `intstr.IntOrString`: a JSON number or string.
    IntOrString,
    /// `resource.Quantity`: its string form.
    Quantity,
    /// `runtime.RawExtension`, `metav1.FieldsV1`, apiextensions `JSON`: embedded JSON bytes.
    RawJson,
    /// A Go slice type wrapped in a message (`Verbs`, `ExtraValue`): field 1 as a JSON array.
    ListWrapper,
    /// `JSONSchemaPropsOrArray`: a schema object or an array of schemas.
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema object or a boolean.
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema object or an array of strings.
    SchemaOrStringArray,
}

/// One protobuf message type.
#[derive(Debug)]
pub struct Message {
    /// Dotted name after the `k8s-pb` module path (`api.apps.v1.Deployment`).
    pub name: &'static str,
    pub special: Special,
    pub fields: &'static [Field],
}

impl Message {
    pub const fn new(name: &'static str, special: Special, fields: &'static [Field]) -> Message {
        Message {
            name,
            special,
            fields,
        }
    }

    pub fn field(&self, tag: u32) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.tag == tag)
    }
}

/// The message for a top-level `apiVersion`/`kind`, falling back to the `meta.k8s.io/v1`
/// kinds (Status, DeleteOptions, List) that any group version may carry.
pub fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    if let Ok(i) = KINDS.binary_search_by(|(av, k, _)| (*av, *k).cmp(&(api_version, kind))) {
        return MESSAGES.get(usize::from(KINDS[i].2));
    }
    let name = format!("{META_V1_PREFIX}{kind}");
    MESSAGES
        .binary_search_by(|m| m.name.cmp(name.as_str()))
        .ok()
        .map(|i| &MESSAGES[i])
}

/// The message at a table index.
pub fn msg_at(index: u16) -> &'static Message {
    &MESSAGES[usize::from(index)]
}

/// Every `(apiVersion, kind)` the table can decode.
pub fn kinds() -> impl Iterator<Item = (&'static str, &'static str)> {
    KINDS.iter().map(|(av, k, _)| (*av, *k))
}

/// How many message types the table holds.
pub fn message_count() -> usize {
    MESSAGES.len()
}
