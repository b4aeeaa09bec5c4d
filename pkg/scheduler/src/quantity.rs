//! Exact parsing of Kubernetes resource quantities (`100m`, `1.5Gi`, `2e3`) into the integer
//! units the scheduler sums: milli-units for cpu (`MilliValue()`), whole units for everything
//! else (`Value()`), both rounded up as upstream's `resource.Quantity` does.

/// Parses `s` and returns its value multiplied by 10^`scale10`, rounded up to an integer
/// (saturating at the bounds of `i64`). `None` when `s` is not a quantity.
fn scaled(s: &str, scale10: i32) -> Option<i64> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (num, suffix) = rest.split_at(num_end);
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if frac_part.contains('.') {
        return None;
    }
    let (exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let e = other.strip_prefix(['e', 'E'])?;
            (e.parse::<i32>().ok()?, 0)
        }
    };
    // Mantissa: all digits, with the decimal point folded into the exponent. Leading zeros
    // are dropped, and more than 30 significant digits would not fit: treat as saturated.
    let digits: String = format!("{int_part}{frac_part}");
    let trimmed = digits.trim_start_matches('0');
    let frac_len = i32::try_from(frac_part.len()).ok()?;
    let e10 = exp10.checked_add(scale10)?.checked_sub(frac_len)?;
    let value: i128 = if trimmed.is_empty() {
        0
    } else if trimmed.len() > 30 {
        i128::MAX
    } else {
        let mantissa: i128 = trimmed.parse().ok()?;
        let mut num = mantissa;
        for _ in 0..exp2 {
            num = num.saturating_mul(2);
        }
        if e10 >= 0 {
            for _ in 0..e10.min(40) {
                num = num.saturating_mul(10);
            }
            num
        } else {
            let mut den: i128 = 1;
            let mut overflow = false;
            for _ in 0..(-e10) {
                match den.checked_mul(10) {
                    Some(d) => den = d,
                    None => {
                        overflow = true;
                        break;
                    }
                }
            }
            if overflow {
                // The value is smaller than one unit: it rounds up to 1.
                1
            } else {
                // Ceiling division (num is positive).
                (num + den - 1) / den
            }
        }
    };
    let clamped = i64::try_from(value).unwrap_or(i64::MAX);
    Some(if negative { -clamped } else { clamped })
}

/// The quantity in milli-units, rounded up (`Quantity.MilliValue()`); cpu uses this.
pub fn milli_value(s: &str) -> Option<i64> {
    scaled(s, 3)
}

/// The quantity in whole units, rounded up (`Quantity.Value()`); memory, storage, pods and
/// extended resources use this.
pub fn value(s: &str) -> Option<i64> {
    scaled(s, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities_in_millis() {
        assert_eq!(milli_value("100m"), Some(100));
        assert_eq!(milli_value("1"), Some(1000));
        assert_eq!(milli_value("0.5"), Some(500));
        assert_eq!(milli_value("2.25"), Some(2250));
        assert_eq!(milli_value("1500u"), Some(2), "rounds up");
        assert_eq!(milli_value("1k"), Some(1_000_000));
        assert_eq!(milli_value("0"), Some(0));
        assert_eq!(milli_value("+4"), Some(4000));
    }

    #[test]
    fn memory_quantities_in_bytes() {
        assert_eq!(value("1Ki"), Some(1024));
        assert_eq!(value("128Mi"), Some(134_217_728));
        assert_eq!(value("1.5Gi"), Some(1_610_612_736));
        assert_eq!(value("1G"), Some(1_000_000_000));
        assert_eq!(value("129M"), Some(129_000_000));
        assert_eq!(value("1e3"), Some(1000));
        assert_eq!(value("1E3"), Some(1000));
        assert_eq!(value("110"), Some(110));
        assert_eq!(value("100m"), Some(1), "fractions round up");
        assert_eq!(value("8Ei"), Some(i64::MAX), "saturates");
    }

    #[test]
    fn rejects_garbage() {
        assert_eq!(value(""), None);
        assert_eq!(value("abc"), None);
        assert_eq!(value("1.2.3"), None);
        assert_eq!(value("12Qi"), None);
        assert_eq!(value("."), None);
    }
}
