//! CronJob schedules with the semantics of `robfig/cron/v3`'s `ParseStandard`, which upstream's
//! CronJob controller uses: five fields (minute hour day-of-month month day-of-week), `*`/`?`,
//! ranges, steps, lists, month and weekday names, the descriptors `@yearly`/`@annually`,
//! `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly` and `@every <duration>`, a `TZ=`/
//! `CRON_TZ=` prefix, and robfig's day rule (when either day field is `*`, both must match,
//! otherwise either may). Times are computed in the schedule's IANA time zone (bundled tzdb).
//!
//! Written here rather than taken from a crate: the `cron` crate wants a seconds field and has
//! no `@every`, and `croner` accepts extensions (`L`, `W`, `#`) and applies a different day rule
//! by default, so neither gives Kubernetes' exact answers.

use k8s_openapi::jiff::Timestamp;
use std::fmt;

/// Errors parsing a schedule (messages as robfig's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("empty spec string")]
    Empty,
    #[error("expected exactly 5 fields, found {0}: {1}")]
    FieldCount(usize, String),
    #[error("unrecognized descriptor: {0}")]
    Descriptor(String),
    #[error("failed to parse duration {0}: use a Go duration such as 1h30m")]
    Duration(String),
    #[error("provided bad location {0}: use an IANA time zone name such as Europe/Berlin")]
    Location(String),
    #[error("{0}")]
    Field(String),
}

const STAR: u64 = 1 << 63;

#[derive(Clone, Copy)]
struct Bounds {
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

impl Bounds {
    /// A field without names.
    const fn numeric(min: u32, max: u32) -> Self {
        Bounds {
            min,
            max,
            names: &[],
        }
    }
}

const MINUTES: Bounds = Bounds::numeric(0, 59);
const HOURS: Bounds = Bounds::numeric(0, 23);
const DOM: Bounds = Bounds::numeric(1, 31);
const MONTHS: Bounds = Bounds {
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DOW: Bounds = Bounds {
    min: 0,
    max: 6,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

/// A parsed schedule.
#[derive(Clone, PartialEq, Eq)]
pub enum Schedule {
    /// Field bitmasks (bit 63 marks a `*`/`?` field).
    Spec {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
    },
    /// `@every`: a fixed delay in whole seconds (at least 1).
    Every(i64),
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Spec { .. } => write!(f, "Schedule::Spec"),
            Schedule::Every(s) => write!(f, "Schedule::Every({s}s)"),
        }
    }
}

/// A schedule and the time zone it is evaluated in.
#[derive(Debug, Clone)]
pub struct Cron {
    pub schedule: Schedule,
    pub tz: k8s_openapi::jiff::tz::TimeZone,
}

fn parse_int_or_name(s: &str, b: Bounds) -> Result<u32, ScheduleError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = b.names.iter().position(|n| *n == lower) {
        return u32::try_from(i)
            .map(|i| i + b.min)
            .map_err(|e| ScheduleError::Field(e.to_string()));
    }
    let v: i64 = s.parse().map_err(|_| {
        ScheduleError::Field(format!("failed to parse int from {s}: invalid syntax"))
    })?;
    if v < 0 {
        return Err(ScheduleError::Field(format!(
            "negative number ({v}) not allowed: {s}"
        )));
    }
    u32::try_from(v).map_err(|_| ScheduleError::Field(format!("value out of range: {s}")))
}

fn parse_range(expr: &str, b: Bounds) -> Result<u64, ScheduleError> {
    let (range, step) = match expr.split_once('/') {
        Some((r, s)) => {
            if s.contains('/') {
                return Err(ScheduleError::Field(format!("too many slashes: {expr}")));
            }
            (r, Some(s))
        }
        None => (expr, None),
    };
    let mut extra = 0u64;
    let (start, mut end, single) = if range == "*" || range == "?" {
        extra = STAR;
        (b.min, b.max, false)
    } else {
        match range.split_once('-') {
            Some((lo, hi)) => {
                if hi.contains('-') {
                    return Err(ScheduleError::Field(format!("too many hyphens: {expr}")));
                }
                (parse_int_or_name(lo, b)?, parse_int_or_name(hi, b)?, false)
            }
            None => {
                let v = parse_int_or_name(range, b)?;
                (v, v, true)
            }
        }
    };
    let step = match step {
        None => 1,
        Some(s) => {
            let st = parse_int_or_name(s, Bounds { names: &[], ..b })?;
            if single {
                end = b.max;
            }
            if st > 1 {
                extra = 0;
            }
            st
        }
    };
    if start < b.min {
        return Err(ScheduleError::Field(format!(
            "beginning of range ({start}) below minimum ({}): {expr}",
            b.min
        )));
    }
    if end > b.max {
        return Err(ScheduleError::Field(format!(
            "end of range ({end}) above maximum ({}): {expr}",
            b.max
        )));
    }
    if start > end {
        return Err(ScheduleError::Field(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        )));
    }
    if step == 0 {
        return Err(ScheduleError::Field(format!(
            "step of range should be a positive number: {expr}"
        )));
    }
    let mut bits = 0u64;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i += step;
    }
    Ok(bits | extra)
}

fn parse_field(field: &str, b: Bounds) -> Result<u64, ScheduleError> {
    field
        .split(',')
        .try_fold(0u64, |acc, r| Ok(acc | parse_range(r, b)?))
}

/// Parses a Go duration (`1h30m`, `90s`, `1.5h`).
fn parse_go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0.0);
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * unit;
    }
    Some(total)
}

/// Parses a schedule as `cron.ParseStandard` does; `time_zone` (the CronJob's `timeZone`)
/// wins over a `TZ=` prefix.
pub fn parse(spec: &str, time_zone: Option<&str>) -> Result<Cron, ScheduleError> {
    let mut spec = spec.trim();
    if spec.is_empty() {
        return Err(ScheduleError::Empty);
    }
    let mut zone: Option<String> = None;
    for prefix in ["TZ=", "CRON_TZ="] {
        if let Some(rest) = spec.strip_prefix(prefix) {
            let (z, r) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            zone = Some(z.to_string());
            spec = r.trim();
        }
    }
    if let Some(tz) = time_zone {
        zone = Some(tz.to_string());
    }
    let tz = match zone.as_deref() {
        None | Some("") | Some("UTC") => k8s_openapi::jiff::tz::TimeZone::UTC,
        Some(z) => k8s_openapi::jiff::tz::TimeZone::get(z)
            .map_err(|_| ScheduleError::Location(z.to_string()))?,
    };
    let schedule = if let Some(d) = spec.strip_prefix('@') {
        let std = match d {
            "yearly" | "annually" => "0 0 1 1 *",
            "monthly" => "0 0 1 * *",
            "weekly" => "0 0 * * 0",
            "daily" | "midnight" => "0 0 * * *",
            "hourly" => "0 * * * *",
            _ => {
                if let Some(dur) = d.strip_prefix("every ") {
                    let secs = parse_go_duration(dur)
                        .ok_or_else(|| ScheduleError::Duration(dur.to_string()))?;
                    // Whole seconds, at least one (robfig's `Every`).
                    let whole = secs.floor();
                    let whole = if whole < 1.0 { 1 } else { whole as i64 };
                    return Ok(Cron {
                        schedule: Schedule::Every(whole),
                        tz,
                    });
                }
                return Err(ScheduleError::Descriptor(spec.to_string()));
            }
        };
        return parse(std, None).map(|c| Cron { tz, ..c });
    } else {
        let fields: Vec<&str> = spec.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ScheduleError::FieldCount(fields.len(), spec.to_string()));
        }
        Schedule::Spec {
            minute: parse_field(fields[0], MINUTES)?,
            hour: parse_field(fields[1], HOURS)?,
            dom: parse_field(fields[2], DOM)?,
            month: parse_field(fields[3], MONTHS)?,
            dow: parse_field(fields[4], DOW)?,
        }
    };
    Ok(Cron { schedule, tz })
}

fn has(bits: u64, v: i64) -> bool {
    (0..63).contains(&v) && bits & (1 << v) != 0
}

impl Cron {
    /// The first activation strictly after `after` (robfig `Next`); `None` when there is none
    /// within five years (an impossible date such as February 30).
    pub fn next(&self, after: Timestamp) -> Option<Timestamp> {
        use k8s_openapi::jiff::{civil::DateTime, ToSpan};
        let (minute, hour, dom, month, dow) = match &self.schedule {
            Schedule::Every(secs) => {
                // Delay from `after` rounded down to the second.
                let base = after.as_second();
                return Timestamp::from_second(base + secs).ok();
            }
            Schedule::Spec {
                minute,
                hour,
                dom,
                month,
                dow,
            } => (*minute, *hour, *dom, *month, *dow),
        };
        let local = after.to_zoned(self.tz.clone()).datetime();
        let mut c: DateTime = local
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = c.year() + 5;
        let day_matches = |d: &DateTime| {
            let dm = has(dom, i64::from(d.day()));
            let wm = has(dow, i64::from(d.weekday().to_sunday_zero_offset()));
            if dom & STAR != 0 || dow & STAR != 0 {
                dm && wm
            } else {
                dm || wm
            }
        };
        loop {
            if c.year() > limit {
                return None;
            }
            if !has(month, i64::from(c.month())) {
                c = c
                    .first_of_month()
                    .start_of_day()
                    .checked_add(1.month())
                    .ok()?;
                continue;
            }
            if !day_matches(&c) {
                c = c.start_of_day().checked_add(1.day()).ok()?;
                continue;
            }
            if !has(hour, i64::from(c.hour())) {
                c = c
                    .with()
                    .minute(0)
                    .build()
                    .ok()?
                    .checked_add(1.hour())
                    .ok()?;
                continue;
            }
            if !has(minute, i64::from(c.minute())) {
                c = c.checked_add(1.minute()).ok()?;
                continue;
            }
            let t = c.to_zoned(self.tz.clone()).ok()?.timestamp();
            if t > after {
                return Some(t);
            }
            c = c.checked_add(1.minute()).ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::podutil::tests::at;

    fn next(spec: &str, tz: Option<&str>, after: &str) -> String {
        parse(spec, tz)
            .unwrap()
            .next(at(after))
            .unwrap()
            .to_string()
    }

    /// Checks `spec | after | next` lines (no time zone), one assertion a line.
    fn check(cases: &str) {
        for line in cases.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split(" | ").collect();
            assert_eq!(next(f[0], None, f[1]), f[2], "{line}");
        }
    }

    #[test]
    fn basic_fields() {
        check(
            "
            * * * * * | 2024-01-01T10:00:00Z | 2024-01-01T10:01:00Z
            * * * * * | 2024-01-01T10:00:30Z | 2024-01-01T10:01:00Z
            */15 * * * * | 2024-01-01T10:01:00Z | 2024-01-01T10:15:00Z
            5 4 * * * | 2024-01-01T10:00:00Z | 2024-01-02T04:05:00Z
            0 0 1 jan * | 2024-03-01T00:00:00Z | 2025-01-01T00:00:00Z
            0 9-17/4 * * MON-FRI | 2024-01-06T00:00:00Z | 2024-01-08T09:00:00Z
            30 6,18 * * * | 2024-01-01T07:00:00Z | 2024-01-01T18:30:00Z
            0 0 29 2 * | 2024-03-01T00:00:00Z | 2028-02-29T00:00:00Z
            10/20 * * * * | 2024-01-01T10:31:00Z | 2024-01-01T10:50:00Z
            ",
        );
    }

    #[test]
    fn day_of_month_and_week_rule() {
        // Both restricted: either matches (the 13th, or a Friday). One is `*`: both must
        // match, so every Friday. `?` is a star; `*/2` is not.
        check(
            "
            0 0 13 * 5 | 2024-01-01T00:00:00Z | 2024-01-05T00:00:00Z
            0 0 * * 5 | 2024-01-06T00:00:00Z | 2024-01-12T00:00:00Z
            0 0 ? * 5 | 2024-01-06T00:00:00Z | 2024-01-12T00:00:00Z
            0 0 */2 * 5 | 2024-01-06T00:00:00Z | 2024-01-07T00:00:00Z
            ",
        );
    }

    #[test]
    fn descriptors_and_every() {
        check(
            "
            @hourly | 2024-01-01T10:20:00Z | 2024-01-01T11:00:00Z
            @daily | 2024-01-01T10:20:00Z | 2024-01-02T00:00:00Z
            @midnight | 2024-01-01T10:20:00Z | 2024-01-02T00:00:00Z
            @weekly | 2024-01-01T10:20:00Z | 2024-01-07T00:00:00Z
            @monthly | 2024-01-15T10:20:00Z | 2024-02-01T00:00:00Z
            @yearly | 2024-01-15T10:20:00Z | 2025-01-01T00:00:00Z
            @annually | 2024-01-15T10:20:00Z | 2025-01-01T00:00:00Z
            @every 1h30m | 2024-01-01T10:00:00Z | 2024-01-01T11:30:00Z
            @every 500ms | 2024-01-01T10:00:00Z | 2024-01-01T10:00:01Z
            ",
        );
    }

    #[test]
    fn time_zones() {
        // 09:00 in New York is 14:00 UTC in winter and 13:00 UTC in summer.
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2024-01-10T00:00:00Z"
            ),
            "2024-01-10T14:00:00Z"
        );
        assert_eq!(
            next(
                "0 9 * * *",
                Some("America/New_York"),
                "2024-07-10T00:00:00Z"
            ),
            "2024-07-10T13:00:00Z"
        );
        assert_eq!(
            next("TZ=Asia/Tokyo 0 9 * * *", None, "2024-01-10T00:00:00Z"),
            "2024-01-11T00:00:00Z"
        );
        assert_eq!(
            next(
                "CRON_TZ=Asia/Tokyo 0 9 * * *",
                Some("UTC"),
                "2024-01-10T00:00:00Z"
            ),
            "2024-01-10T09:00:00Z"
        );
        // A time in the spring-forward gap runs after the jump.
        assert_eq!(
            next(
                "30 2 * * *",
                Some("America/New_York"),
                "2024-03-10T05:00:00Z"
            ),
            "2024-03-10T07:30:00Z"
        );
        assert!(matches!(
            parse("* * * * *", Some("Mars/Olympus")),
            Err(ScheduleError::Location(_))
        ));
    }

    #[test]
    fn errors() {
        assert_eq!(parse("", None).unwrap_err(), ScheduleError::Empty);
        let fields = |spec: &str| match parse(spec, None) {
            Err(ScheduleError::FieldCount(n, _)) => n,
            other => panic!("{spec}: {other:?}"),
        };
        assert_eq!(fields("* * * *"), 4);
        assert_eq!(fields("0 0 * * * *"), 6);
        assert!(matches!(
            parse("@fortnightly", None),
            Err(ScheduleError::Descriptor(_))
        ));
        let err = |spec: &str| parse(spec, None).unwrap_err().to_string();
        assert!(err("60 * * * *").contains("above maximum"));
        assert!(err("* * 0 * *").contains("below minimum"));
        assert!(err("5-1 * * * *").contains("beyond end"));
        assert!(err("*/0 * * * *").contains("positive"));
        assert!(
            parse("* * * * 7", None).is_err(),
            "robfig's weekdays are 0-6"
        );
        assert!(parse("@every soon", None).is_err());
        assert_eq!(
            parse("0 0 30 2 *", None)
                .unwrap()
                .next(at("2024-01-01T00:00:00Z")),
            None
        );
    }
}
