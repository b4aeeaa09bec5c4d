//! Text helpers the API model shares: Go's `strconv.Quote` (upstream error messages quote
//! values with it) and the percent-decoding of URL query components and path segments.

use std::fmt::Write as _;
use unicode_general_category::{get_general_category, GeneralCategory};

/// Go's `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and the ASCII
/// space. Control, format, private-use and unassigned code points and every separator other
/// than U+0020 are not printable. The category table comes from `unicode-general-category`
/// rather than a hand-kept list.
fn is_go_printable(c: char) -> bool {
    use GeneralCategory as G;
    if c == ' ' {
        return true;
    }
    !matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::PrivateUse
            | G::Surrogate
            | G::Unassigned
            | G::SpaceSeparator
            | G::LineSeparator
            | G::ParagraphSeparator
    )
}

/// Go's `strconv.Quote` (and `%q` of a string): double quotes around the text, `\"` and `\\`,
/// the C escapes `\a \b \f \n \r \t \v`, `\xNN` for other ASCII controls and DEL, `\uNNNN` or
/// `\UNNNNNNNN` for every other code point Go does not print; printable Unicode stays as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// Decodes one query component the way a form-encoded query is read: `+` is a space and
/// `%XX` a byte; a `%` without two hex digits stays as it is, and bytes that are not UTF-8
/// become U+FFFD. The byte decoding is the `percent-encoding` crate's.
pub fn percent_decode_query(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// Decodes one URL path segment: `%XX` is a byte and `+` stays a plus; a `%` without two hex
/// digits stays as it is, and bytes that are not UTF-8 become U+FFFD.
pub fn percent_decode_path_segment(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go_strconv_quote() {
        assert_eq!(go_quote(""), r#""""#);
        assert_eq!(go_quote("a \"b\" \\c"), r#""a \"b\" \\c""#);
        assert_eq!(
            go_quote("\u{7}\u{8}\u{c}\n\r\t\u{b}"),
            r#""\a\b\f\n\r\t\v""#
        );
        assert_eq!(go_quote("\u{0}\u{1b}\u{7f}"), r#""\x00\x1b\x7f""#);
        // C1 controls, format characters and non-ASCII separators are escaped with \u.
        assert_eq!(go_quote("\u{85}"), r#""\u0085""#);
        assert_eq!(go_quote("a\u{ad}b"), r#""a\u00adb""#);
        assert_eq!(go_quote("\u{200b}\u{feff}"), r#""\u200b\ufeff""#);
        assert_eq!(go_quote("\u{a0}\u{2028}"), r#""\u00a0\u2028""#);
        // Private use and unassigned code points beyond the BMP take \U.
        assert_eq!(go_quote("\u{f0000}"), r#""\U000f0000""#);
        assert_eq!(go_quote("\u{e0001}"), r#""\U000e0001""#);
        // Printable Unicode is kept.
        assert_eq!(go_quote("héllo, 世界 🚀"), "\"héllo, 世界 🚀\"");
    }

    #[test]
    fn percent_decoding_of_query_components() {
        assert_eq!(
            percent_decode_query("metadata.name%3Dweb"),
            "metadata.name=web"
        );
        assert_eq!(percent_decode_query("a+b"), "a b");
        assert_eq!(percent_decode_query("a%2Bb"), "a+b");
        assert_eq!(percent_decode_query("100%"), "100%");
        assert_eq!(percent_decode_query("%zz"), "%zz");
        assert_eq!(percent_decode_query("%4"), "%4");
        assert_eq!(percent_decode_query("%e4%b8%96"), "世");
        assert_eq!(percent_decode_query("%ff"), "\u{fffd}");
    }

    #[test]
    fn percent_decoding_of_path_segments() {
        assert_eq!(percent_decode_path_segment("a%2Fb"), "a/b");
        assert_eq!(percent_decode_path_segment("a+b"), "a+b");
        assert_eq!(percent_decode_path_segment("c%20d"), "c d");
        assert_eq!(percent_decode_path_segment("50%"), "50%");
        assert_eq!(percent_decode_path_segment("%g1"), "%g1");
    }
}
