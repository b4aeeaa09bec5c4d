//! Protobuf -> JSON: walks a message's bytes with the generated table and builds the JSON
//! value Kubernetes' own JSON serializer would produce for the same object.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{msg_at, Card, Field, Message, Special, Ty};
use super::wire::{Reader, FIXED64, LEN, VARINT};
use super::ProtoError;

/// Nesting deeper than this is rejected (recursive types like JSONSchemaProps).
pub const MAX_DEPTH: usize = 100;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) as Unix seconds.
pub const GO_ZERO_TIME_SECONDS: i64 = -62_135_596_800;

/// What has been collected for one field while reading a message.
enum Slot<'a> {
    Empty,
    Scalar(Value),
    /// Singular message: all occurrences, merged on decode as protobuf requires.
    Msg(Vec<&'a [u8]>),
    List(Vec<Value>),
    Map(Map<String, Value>),
}

fn malformed(msg: &Message, f: &Field, what: &str) -> ProtoError {
    ProtoError::Malformed(format!("{}.{}: {what}", msg.name, json_name(f)))
}

fn json_name(f: &Field) -> String {
    if f.json.is_empty() {
        format!("<inline {}>", f.tag)
    } else {
        f.json.to_string()
    }
}

/// Decode one message of type `msg` from `buf`.
pub fn message(msg: &Message, buf: &[u8], depth: usize) -> Result<Value, ProtoError> {
    message_parts(msg, &[buf], depth)
}

/// Decode one message given as several byte runs (repeated occurrences of a singular field
/// merge like one concatenated message).
fn message_parts(msg: &Message, parts: &[&[u8]], depth: usize) -> Result<Value, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::Malformed(format!(
            "{} nested more than {MAX_DEPTH} levels deep",
            msg.name
        )));
    }
    let mut slots: Vec<Slot> = msg.fields.iter().map(|_| Slot::Empty).collect();
    for buf in parts {
        read_fields(msg, buf, &mut slots, depth)?;
    }
    match msg.special {
        Special::None => Ok(Value::Object(assemble(msg, slots, depth)?)),
        special => shape_special(msg, special, slots, depth),
    }
}

fn read_fields<'a>(
    msg: &Message,
    buf: &'a [u8],
    slots: &mut [Slot<'a>],
    depth: usize,
) -> Result<(), ProtoError> {
    let mut r = Reader::new(buf);
    while !r.done() {
        let (tag, wire) = r.key()?;
        let Some(pos) = msg.fields.iter().position(|f| f.tag == tag) else {
            // Unknown (newer) fields are skipped, as the Go decoder does.
            r.skip(wire)?;
            continue;
        };
        let f = &msg.fields[pos];
        let slot = &mut slots[pos];
        match (f.card, f.ty) {
            (Card::One, Ty::M(_)) => {
                if wire != LEN {
                    return Err(malformed(msg, f, "expected a length-delimited message"));
                }
                let b = r.len_delimited()?;
                match slot {
                    Slot::Msg(v) => v.push(b),
                    _ => *slot = Slot::Msg(vec![b]),
                }
            }
            (Card::One, ty) => *slot = Slot::Scalar(scalar(msg, f, ty, wire, &mut r)?),
            (Card::Rep, ty) => {
                let mut items = match std::mem::replace(slot, Slot::Empty) {
                    Slot::List(v) => v,
                    _ => Vec::new(),
                };
                let packable = matches!(ty, Ty::Bool | Ty::I32 | Ty::I64 | Ty::F64);
                if packable && wire == LEN {
                    let packed = r.len_delimited()?;
                    let elem_wire = if ty == Ty::F64 { FIXED64 } else { VARINT };
                    let mut pr = Reader::new(packed);
                    while !pr.done() {
                        items.push(scalar(msg, f, ty, elem_wire, &mut pr)?);
                    }
                } else if let Ty::M(i) = ty {
                    if wire != LEN {
                        return Err(malformed(msg, f, "expected a length-delimited message"));
                    }
                    items.push(message(msg_at(i), r.len_delimited()?, depth + 1)?);
                } else {
                    items.push(scalar(msg, f, ty, wire, &mut r)?);
                }
                *slot = Slot::List(items);
            }
            (Card::Map, ty) => {
                if wire != LEN {
                    return Err(malformed(msg, f, "expected a length-delimited map entry"));
                }
                let (k, v) = map_entry(msg, f, ty, r.len_delimited()?, depth)?;
                match slot {
                    Slot::Map(m) => {
                        m.insert(k, v);
                    }
                    _ => {
                        let mut m = Map::new();
                        m.insert(k, v);
                        *slot = Slot::Map(m);
                    }
                }
            }
        }
    }
    Ok(())
}

fn map_entry(
    msg: &Message,
    f: &Field,
    ty: Ty,
    buf: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let mut r = Reader::new(buf);
    let mut key = String::new();
    let mut val: Option<Value> = None;
    while !r.done() {
        match r.key()? {
            (1, LEN) => {
                key = String::from_utf8(r.len_delimited()?.to_vec())
                    .map_err(|_| malformed(msg, f, "map key is not valid UTF-8"))?;
            }
            (2, wire) => {
                val = Some(match ty {
                    Ty::M(i) => {
                        if wire != LEN {
                            return Err(malformed(msg, f, "expected a length-delimited message"));
                        }
                        message(msg_at(i), r.len_delimited()?, depth + 1)?
                    }
                    ty => scalar(msg, f, ty, wire, &mut r)?,
                });
            }
            (_, wire) => r.skip(wire)?,
        }
    }
    let val = match val {
        Some(v) => v,
        None => match ty {
            Ty::M(i) => message(msg_at(i), &[], depth + 1)?,
            ty => zero(ty),
        },
    };
    Ok((key, val))
}

fn zero(ty: Ty) -> Value {
    match ty {
        Ty::Str | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::I32 | Ty::I64 => Value::from(0),
        Ty::F64 => Value::from(0.0),
        Ty::M(_) => Value::Null,
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        _ => false,
    }
}

fn scalar(msg: &Message, f: &Field, ty: Ty, wire: u8, r: &mut Reader) -> Result<Value, ProtoError> {
    let want = match ty {
        Ty::Str | Ty::Bytes => LEN,
        Ty::F64 => FIXED64,
        _ => VARINT,
    };
    if wire != want {
        return Err(malformed(
            msg,
            f,
            &format!("wire type {wire} does not match the field type (want {want})"),
        ));
    }
    Ok(match ty {
        Ty::Str => Value::String(
            String::from_utf8(r.len_delimited()?.to_vec())
                .map_err(|_| malformed(msg, f, "string is not valid UTF-8"))?,
        ),
        Ty::Bytes => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(r.len_delimited()?))
        }
        Ty::Bool => Value::Bool(r.varint()? != 0),
        // int32 values are sign-extended to 64 bits on the wire; truncation is the protobuf rule.
        Ty::I32 => Value::from(r.varint()? as i64 as i32),
        Ty::I64 => Value::from(r.varint()? as i64),
        Ty::F64 => {
            let x = f64::from_bits(r.fixed64()?);
            Value::Number(
                serde_json::Number::from_f64(x)
                    .ok_or_else(|| malformed(msg, f, "number is not finite"))?,
            )
        }
        Ty::M(_) => return Err(malformed(msg, f, "message where a scalar was expected")),
    })
}

/// Build the JSON object of a plain message, in the table's (Go declaration) order.
fn assemble(
    msg: &Message,
    slots: Vec<Slot>,
    depth: usize,
) -> Result<Map<String, Value>, ProtoError> {
    let mut out = Map::new();
    for (f, slot) in msg.fields.iter().zip(slots) {
        let v = match slot {
            Slot::Empty => continue,
            Slot::Scalar(v) => {
                if !f.keep_zero() && is_zero(&v) {
                    continue;
                }
                v
            }
            Slot::Msg(parts) => {
                let Ty::M(i) = f.ty else { continue };
                let v = message_parts(msg_at(i), &parts, depth + 1)?;
                if f.inline() {
                    if let Value::Object(inner) = v {
                        for (k, v) in inner {
                            out.insert(k, v);
                        }
                    }
                    continue;
                }
                v
            }
            Slot::List(items) => Value::Array(items),
            Slot::Map(m) => Value::Object(m),
        };
        out.insert(f.json.to_string(), v);
    }
    Ok(out)
}

fn take_scalar(slots: &mut [Slot], i: usize) -> Option<Value> {
    match std::mem::replace(slots.get_mut(i)?, Slot::Empty) {
        Slot::Scalar(v) => Some(v),
        _ => None,
    }
}

fn take_list(slots: &mut [Slot], i: usize) -> Vec<Value> {
    match slots.get_mut(i).map(|s| std::mem::replace(s, Slot::Empty)) {
        Some(Slot::List(v)) => v,
        _ => Vec::new(),
    }
}

/// Index of a field by number in a special message.
fn idx(msg: &Message, tag: u32) -> usize {
    msg.fields
        .iter()
        .position(|f| f.tag == tag)
        .unwrap_or(usize::MAX)
}

fn take_msg(
    msg: &Message,
    slots: &mut [Slot],
    tag: u32,
    depth: usize,
) -> Result<Option<Value>, ProtoError> {
    let i = idx(msg, tag);
    let Some(f) = msg.fields.get(i) else {
        return Ok(None);
    };
    match (std::mem::replace(&mut slots[i], Slot::Empty), f.ty) {
        (Slot::Msg(parts), Ty::M(m)) => Ok(Some(message_parts(msg_at(m), &parts, depth + 1)?)),
        _ => Ok(None),
    }
}

fn shape_special(
    msg: &Message,
    special: Special,
    mut s: Vec<Slot>,
    depth: usize,
) -> Result<Value, ProtoError> {
    let int = |v: Option<Value>| v.and_then(|v| v.as_i64()).unwrap_or(0);
    Ok(match special {
        Special::None => Value::Object(assemble(msg, s, depth)?),
        Special::Time | Special::MicroTime => {
            let (secs, nanos) = (
                take_scalar(&mut s, idx(msg, 1)),
                take_scalar(&mut s, idx(msg, 2)),
            );
            if secs.is_none() && nanos.is_none() {
                // an empty message is Go's zero time
                return Ok(Value::Null);
            }
            let (secs, nanos) = (int(secs), int(nanos));
            time_json(secs, nanos, special == Special::MicroTime).ok_or_else(|| {
                ProtoError::Malformed(format!("{}: time {secs}s is out of range", msg.name))
            })?
        }
        Special::Duration => Value::String(go_duration(int(take_scalar(&mut s, idx(msg, 1))))),
        Special::IntOrString => {
            if int(take_scalar(&mut s, idx(msg, 1))) == 1 {
                take_scalar(&mut s, idx(msg, 3)).unwrap_or_else(|| Value::String(String::new()))
            } else {
                Value::from(int(take_scalar(&mut s, idx(msg, 2))))
            }
        }
        Special::Quantity => {
            take_scalar(&mut s, idx(msg, 1)).unwrap_or_else(|| Value::String("0".into()))
        }
        Special::RawJson => match take_scalar(&mut s, idx(msg, 1)) {
            Some(Value::String(b64)) if !b64.is_empty() => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|e| ProtoError::Malformed(format!("{}: {e}", msg.name)))?;
                serde_json::from_slice(&raw).map_err(|e| {
                    ProtoError::Malformed(format!("{} does not hold JSON ({e})", msg.name))
                })?
            }
            _ => Value::Null,
        },
        Special::ListWrapper => Value::Array(take_list(&mut s, idx(msg, 1))),
        Special::SchemaOrBool => match take_msg(msg, &mut s, 2, depth)? {
            Some(schema) => schema,
            None => Value::Bool(
                take_scalar(&mut s, idx(msg, 1))
                    .and_then(|v| v.as_bool())
                    .unwrap_or(false),
            ),
        },
        Special::SchemaOrArray => {
            let list = take_list(&mut s, idx(msg, 2));
            let schema = take_msg(msg, &mut s, 1, depth)?;
            if !list.is_empty() {
                Value::Array(list)
            } else {
                schema.unwrap_or(Value::Null)
            }
        }
        Special::SchemaOrStringArray => {
            let list = take_list(&mut s, idx(msg, 2));
            let schema = take_msg(msg, &mut s, 1, depth)?;
            if !list.is_empty() {
                Value::Array(list)
            } else {
                schema.unwrap_or(Value::Null)
            }
        }
    })
}

/// `metav1.Time` / `MicroTime` JSON: `null` for Go's zero time, else UTC RFC 3339 with
/// whole seconds (Time drops nanos, as the Go decoder does) or 6 fractional digits.
pub fn time_json(secs: i64, nanos: i64, micro: bool) -> Option<Value> {
    if secs == GO_ZERO_TIME_SECONDS && (nanos == 0 || !micro) {
        return Some(Value::Null);
    }
    let nanos = if micro { (nanos / 1000) * 1000 } else { 0 };
    let t = chrono::DateTime::from_timestamp(secs, u32::try_from(nanos).ok()?)?;
    let fmt = if micro {
        "%Y-%m-%dT%H:%M:%S%.6fZ"
    } else {
        "%Y-%m-%dT%H:%M:%SZ"
    };
    Some(Value::String(t.format(fmt).to_string()))
}

/// Go's `time.Duration.String()` (`1h2m3.5s`, `1.5ms`, `0s`).
pub fn go_duration(d: i64) -> String {
    let neg = d < 0;
    let u = d.unsigned_abs();
    let frac = |v: u64, prec: u32| {
        let p = 10u64.pow(prec);
        let (whole, rest) = (v / p, v % p);
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = format!("{rest:0width$}", width = prec as usize);
            format!("{whole}.{}", digits.trim_end_matches('0'))
        }
    };
    let s = if u == 0 {
        "0s".to_string()
    } else if u < 1_000 {
        format!("{u}ns")
    } else if u < 1_000_000 {
        format!("{}µs", frac(u, 3))
    } else if u < 1_000_000_000 {
        format!("{}ms", frac(u, 6))
    } else {
        let secs = frac(u % 60_000_000_000, 9);
        let mins = u / 60_000_000_000;
        if mins == 0 {
            format!("{secs}s")
        } else if mins < 60 {
            format!("{mins}m{secs}s")
        } else {
            format!("{}h{}m{secs}s", mins / 60, mins % 60)
        }
    };
    if neg {
        format!("-{s}")
    } else {
        s
    }
}
