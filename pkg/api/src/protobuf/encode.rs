//! JSON -> protobuf: the inverse of `decode`, driven by the same generated table (fields
//! written in field-number order, map entries sorted by key, as the Go encoder does).

use base64::Engine as _;
use serde_json::{Map, Value};

use super::decode::MAX_DEPTH;
use super::schema::{msg_at, Card, Field, Message, Special, Ty};
use super::wire::{put_bytes, put_key, put_varint, FIXED64, LEN, VARINT};
use super::ProtoError;

fn err(path: &str, what: impl std::fmt::Display) -> ProtoError {
    let path = if path.is_empty() { "<root>" } else { path };
    ProtoError::Unencodable(format!("{path}: {what}"))
}

/// Encode `v` as the message `msg` (without a key/length prefix).
pub fn message(msg: &Message, v: &Value, path: &str, depth: usize) -> Result<Vec<u8>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(err(
            path,
            format!("nested more than {MAX_DEPTH} levels deep"),
        ));
    }
    let mut out = Vec::new();
    match msg.special {
        Special::None => {
            let Value::Object(obj) = v else {
                return Err(err(path, "expected an object"));
            };
            let mut used = vec![false; obj.len()];
            fields(msg, obj, &mut used, &mut out, path, depth)?;
            if let Some((k, _)) = obj.iter().zip(&used).find(|(_, u)| !**u).map(|(kv, _)| kv) {
                return Err(err(path, format!("unknown field {k:?}")));
            }
        }
        Special::Time | Special::MicroTime => {
            if let Some(s) = v.as_str() {
                let t = chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|e| err(path, format!("time {s:?} is not RFC 3339 ({e})")))?;
                put_key(&mut out, 1, VARINT);
                put_varint(&mut out, t.timestamp() as u64);
                let nanos = t.timestamp_subsec_nanos() / 1000 * 1000;
                if msg.special == Special::MicroTime && nanos != 0 {
                    put_key(&mut out, 2, VARINT);
                    put_varint(&mut out, u64::from(nanos));
                }
            } else if !v.is_null() {
                return Err(err(path, "expected an RFC 3339 time string"));
            }
        }
        Special::Duration => {
            let s = v
                .as_str()
                .ok_or_else(|| err(path, "expected a duration string"))?;
            let ns =
                parse_go_duration(s).ok_or_else(|| err(path, format!("invalid duration {s:?}")))?;
            put_key(&mut out, 1, VARINT);
            put_varint(&mut out, ns as u64);
        }
        Special::IntOrString => {
            let (t, i, s) = match v {
                Value::String(s) => (1u64, 0i64, s.as_str()),
                Value::Number(_) => (
                    0,
                    int(v, i64::from(i32::MIN), i64::from(i32::MAX), path)?,
                    "",
                ),
                _ => return Err(err(path, "expected an integer or a string")),
            };
            put_key(&mut out, 1, VARINT);
            put_varint(&mut out, t);
            put_key(&mut out, 2, VARINT);
            put_varint(&mut out, i as u64);
            put_bytes(&mut out, 3, s.as_bytes());
        }
        Special::Quantity => {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(err(path, "expected a quantity string")),
            };
            put_bytes(&mut out, 1, s.as_bytes());
        }
        Special::RawJson => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| err(path, e))?;
                put_bytes(&mut out, 1, &raw);
            }
        }
        Special::ListWrapper => {
            let Value::Array(items) = v else {
                return Err(err(path, "expected an array"));
            };
            for (n, item) in items.iter().enumerate() {
                let s = item
                    .as_str()
                    .ok_or_else(|| err(&format!("{path}[{n}]"), "expected a string"))?;
                put_bytes(&mut out, 1, s.as_bytes());
            }
        }
        Special::SchemaOrBool => match v {
            Value::Bool(b) => {
                put_key(&mut out, 1, VARINT);
                put_varint(&mut out, u64::from(*b));
            }
            _ => {
                put_key(&mut out, 1, VARINT);
                put_varint(&mut out, 1);
                sub_message(msg, 2, v, &mut out, path, depth)?;
            }
        },
        Special::SchemaOrArray => match v {
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    sub_message(msg, 2, item, &mut out, &format!("{path}[{n}]"), depth)?;
                }
            }
            _ => sub_message(msg, 1, v, &mut out, path, depth)?,
        },
        Special::SchemaOrStringArray => match v {
            Value::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    let s = item
                        .as_str()
                        .ok_or_else(|| err(&format!("{path}[{n}]"), "expected a string"))?;
                    put_bytes(&mut out, 2, s.as_bytes());
                }
            }
            _ => sub_message(msg, 1, v, &mut out, path, depth)?,
        },
    }
    Ok(out)
}

fn sub_message(
    msg: &Message,
    tag: u32,
    v: &Value,
    out: &mut Vec<u8>,
    path: &str,
    depth: usize,
) -> Result<(), ProtoError> {
    let f = msg
        .field(tag)
        .ok_or_else(|| err(path, format!("{} has no field {tag}", msg.name)))?;
    let Ty::M(i) = f.ty else {
        return Err(err(
            path,
            format!("{} field {tag} is not a message", msg.name),
        ));
    };
    let b = message(msg_at(i), v, path, depth + 1)?;
    put_bytes(out, tag, &b);
    Ok(())
}

/// Write the fields of `msg` found in `obj` (marking the keys used; inline fields read the
/// same object).
fn fields(
    msg: &Message,
    obj: &Map<String, Value>,
    used: &mut [bool],
    out: &mut Vec<u8>,
    path: &str,
    depth: usize,
) -> Result<(), ProtoError> {
    let mut order: Vec<&Field> = msg.fields.iter().collect();
    order.sort_by_key(|f| f.tag);
    for f in order {
        if f.inline() {
            let Ty::M(i) = f.ty else { continue };
            let inner = msg_at(i);
            let mut b = Vec::new();
            fields(inner, obj, used, &mut b, path, depth + 1)?;
            put_bytes(out, f.tag, &b);
            continue;
        }
        let Some(pos) = obj.keys().position(|k| k == f.json) else {
            continue;
        };
        used[pos] = true;
        let v = &obj[f.json];
        if v.is_null() {
            // Go writes a zero (null) Time as an empty message
            if let (Card::One, Ty::M(i)) = (f.card, f.ty) {
                if matches!(msg_at(i).special, Special::Time | Special::MicroTime) {
                    put_bytes(out, f.tag, &[]);
                }
            }
            continue;
        }
        let fpath = if path.is_empty() {
            f.json.to_string()
        } else {
            format!("{path}.{}", f.json)
        };
        match f.card {
            Card::One => value(f.tag, f.ty, v, out, &fpath, depth)?,
            Card::Rep => {
                let Value::Array(items) = v else {
                    return Err(err(&fpath, "expected an array"));
                };
                for (n, item) in items.iter().enumerate() {
                    value(f.tag, f.ty, item, out, &format!("{fpath}[{n}]"), depth)?;
                }
            }
            Card::Map => {
                let Value::Object(m) = v else {
                    return Err(err(&fpath, "expected an object"));
                };
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, k.as_bytes());
                    value(2, f.ty, &m[k], &mut entry, &format!("{fpath}.{k}"), depth)?;
                    put_bytes(out, f.tag, &entry);
                }
            }
        }
    }
    Ok(())
}

fn int(v: &Value, min: i64, max: i64, path: &str) -> Result<i64, ProtoError> {
    let n = v
        .as_i64()
        .or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e18)
                .map(|x| x as i64)
        })
        .ok_or_else(|| err(path, "expected an integer"))?;
    if n < min || n > max {
        return Err(err(path, format!("{n} is out of range")));
    }
    Ok(n)
}

/// Write one keyed value of type `ty`.
fn value(
    tag: u32,
    ty: Ty,
    v: &Value,
    out: &mut Vec<u8>,
    path: &str,
    depth: usize,
) -> Result<(), ProtoError> {
    match ty {
        Ty::Str => {
            let s = v.as_str().ok_or_else(|| err(path, "expected a string"))?;
            put_bytes(out, tag, s.as_bytes());
        }
        Ty::Bytes => {
            let s = v
                .as_str()
                .ok_or_else(|| err(path, "expected a base64 string"))?;
            let b = base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| err(path, format!("invalid base64 ({e})")))?;
            put_bytes(out, tag, &b);
        }
        Ty::Bool => {
            let b = v.as_bool().ok_or_else(|| err(path, "expected a boolean"))?;
            put_key(out, tag, VARINT);
            put_varint(out, u64::from(b));
        }
        Ty::I32 => {
            let n = int(v, i64::from(i32::MIN), i64::from(i32::MAX), path)?;
            put_key(out, tag, VARINT);
            put_varint(out, n as u64);
        }
        Ty::I64 => {
            let n = int(v, i64::MIN, i64::MAX, path)?;
            put_key(out, tag, VARINT);
            put_varint(out, n as u64);
        }
        Ty::F64 => {
            let x = v.as_f64().ok_or_else(|| err(path, "expected a number"))?;
            put_key(out, tag, FIXED64);
            out.extend_from_slice(&x.to_le_bytes());
        }
        Ty::M(i) => {
            let b = message(msg_at(i), v, path, depth + 1)?;
            put_key(out, tag, LEN);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(&b);
        }
    }
    Ok(())
}

/// Parse a Go duration string (`1h2m3.5s`, `300ms`, `-1.5µs`) into nanoseconds.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * scale;
        rest = &rest[unit_end..];
    }
    let ns = total.round();
    if ns.is_nan() || ns.abs() >= 9.2e18 {
        return None;
    }
    Some(if neg { -(ns as i64) } else { ns as i64 })
}
