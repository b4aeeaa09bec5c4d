//! Ages and durations as apimachinery prints them, and the JSON path helpers the printers
//! read objects with.

use super::*;

/// apimachinery's `duration.HumanDuration`: about two significant figures (`45s`, `5m30s`,
/// `95m`, `5h10m`, `30h`, `3d4h`, `689d`, `2y45d`, `9y`); up to one second in the future
/// reads `0s`, further is `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.num_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.num_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.num_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{}h", hours / 24, h);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{}d", hours / 24 / 365, dy);
    }
    format!("{}y", hours / 24 / 365)
}

/// The AGE cell: time since `metadata.creationTimestamp`, `<unknown>` when it is missing.
pub fn age(obj: &Value, now: DateTime<Utc>) -> String {
    translate_timestamp(at(obj, "metadata.creationTimestamp"), now)
}

/// Time since an RFC 3339 timestamp value, `<unknown>` when missing or unparseable.
pub fn translate_timestamp(ts: Option<&Value>, now: DateTime<Utc>) -> String {
    match ts.and_then(parse_time) {
        Some(t) => human_duration(now - t),
        None => "<unknown>".to_string(),
    }
}

pub(super) fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    let s = v.as_str()?;
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    // Go's zero time (0001-01-01T00:00:00Z) counts as unset.
    (t.timestamp() != -62_135_596_800 || t.timestamp_subsec_nanos() != 0).then_some(t)
}

pub(super) fn is_time(v: Option<&Value>) -> bool {
    v.and_then(parse_time).is_some()
}

pub(super) fn time_at(obj: &Value, path: &str) -> Option<DateTime<Utc>> {
    at(obj, path).and_then(parse_time)
}

// --- JSON access ---

pub(super) fn at<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(obj, |v, k| v.get(k))
}

pub(super) fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

pub(super) fn st<'a>(obj: &'a Value, path: &str) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn str_or<'a>(obj: &'a Value, path: &str, default: &'a str) -> &'a str {
    at(obj, path).and_then(Value::as_str).unwrap_or(default)
}

pub(super) fn int(obj: &Value, path: &str) -> i64 {
    int_or(obj, path, 0)
}

pub(super) fn int_or(obj: &Value, path: &str, default: i64) -> i64 {
    at(obj, path).and_then(Value::as_i64).unwrap_or(default)
}

pub(super) fn arr<'a>(obj: &'a Value, path: &str) -> &'a [Value] {
    at(obj, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn map_at<'a>(obj: &'a Value, path: &str) -> Option<&'a Map<String, Value>> {
    at(obj, path).and_then(Value::as_object)
}

pub(super) fn name(obj: &Value) -> &str {
    st(obj, "metadata.name")
}
