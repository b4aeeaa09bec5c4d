//! Label and field selectors, parsed, validated, printed and matched the way apimachinery's
//! `labels.Parse`, `metav1.LabelSelectorAsSelector` and `fields.ParseSelector` do, plus the
//! per-kind field labels the API server accepts in `fieldSelector=`.

use crate::matchers::labels::{value_matches, Op};
use crate::text::go_quote;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// Why a selector could not be parsed or is not allowed. The messages are upstream's, so the
/// API server can put them straight into a `BadRequest` Status.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SelectorError {
    /// A `labelSelector=` string that does not parse or holds an invalid key or value.
    #[error("{0}")]
    Label(String),
    /// A `metav1.LabelSelector` object (`matchLabels` / `matchExpressions`) that is invalid.
    #[error("{0}")]
    LabelObject(String),
    /// A `fieldSelector=` string that does not parse.
    #[error("{0}")]
    Field(String),
    /// A field label the kind does not support.
    #[error("{0}")]
    UnsupportedField(String),
}

// ---------------------------------------------------------------------------------------------
// validation helpers (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push('\'');
        s.push_str(e);
        s.push_str("', ");
    }
    s.push_str("regex used for validation is '");
    s.push_str(fmt);
    s.push_str("')");
    s
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]` over the whole string.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_alphanumeric();
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    b.iter()
        .all(|&c| alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() {
        return false;
    }
    let lc = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    lc(b[0]) && lc(b[b.len() - 1]) && b.iter().all(|&c| lc(c) || c == b'-')
}

fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_string());
    }
    if !value.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_ERR,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `validation.IsQualifiedName`: the problems with a label key, empty when it is valid.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.len() {
        1 => parts[0],
        2 => {
            let prefix = parts[0];
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in dns1123_subdomain_errors(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            parts[1]
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 characters".to_string());
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_ERR,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `validation.IsValidLabelValue`: the problems with a label value, empty when it is valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_string());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `field.Invalid(path, value, detail).Error()` for a string value.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// `utilerrors.NewAggregate(errs).Error()`.
fn aggregate(errs: Vec<String>) -> Option<String> {
    let mut uniq: Vec<String> = Vec::new();
    for e in errs {
        if !uniq.contains(&e) {
            uniq.push(e);
        }
    }
    match uniq.len() {
        0 => None,
        1 => uniq.pop(),
        _ => Some(format!("[{}]", uniq.join(", "))),
    }
}

// ---------------------------------------------------------------------------------------------
// label selectors
// ---------------------------------------------------------------------------------------------

/// A label requirement operator (`selection.Operator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    /// As given; printing sorts them.
    pub values: Vec<String>,
}

impl Requirement {
    /// `labels.NewRequirement`: validates the key, the value count for the operator and each
    /// value, reporting errors under the `key` / `values` paths as upstream does.
    fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", key, &key_errs.join("; ")));
        }
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'in', 'notin' operators, values set can't be empty",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: exact-match compatibility requires one single value",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(format!(
                        "values: Invalid value: {}: values set must be empty for exists and does not exist",
                        go_string_slice(&values)
                    ));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(format!(
                        "values: Invalid value: {}: for 'Gt', 'Lt' operators, exactly one value is required",
                        go_string_slice(&values)
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            v,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let v_errs = label_value_errors(v);
            if !v_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    v,
                    &v_errs.join("; "),
                ));
            }
        }
        match aggregate(errs) {
            Some(e) => Err(e),
            None => Ok(Requirement {
                key: key.to_string(),
                operator,
                values,
            }),
        }
    }

    /// Whether the labels satisfy this requirement (`Requirement.Matches`).
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let got = labels.and_then(|l| l.get(&self.key)).map(label_str);
        self.matches_value(got.as_deref())
    }

    /// Whether an object whose label for this key is `have` (`None`: absent) satisfies the
    /// requirement.
    pub fn matches_value(&self, have: Option<&str>) -> bool {
        let op = match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => Op::In,
            Operator::NotIn | Operator::NotEquals => Op::NotIn,
            Operator::Exists => Op::Exists,
            Operator::DoesNotExist => Op::DoesNotExist,
            Operator::GreaterThan => Op::Gt,
            Operator::LessThan => Op::Lt,
        };
        value_matches(op, &self.values, have)
    }
}

/// Go's `%#v` of a `[]string` built by `append([]string(nil), …)`.
fn go_string_slice(v: &[String]) -> String {
    if v.is_empty() {
        return "[]string(nil)".to_string();
    }
    let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

fn label_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let paren = matches!(self.operator, Operator::In | Operator::NotIn);
        if paren {
            f.write_str("(")?;
        }
        if self.values.len() == 1 {
            f.write_str(&self.values[0])?;
        } else {
            let mut vals = self.values.clone();
            vals.sort();
            f.write_str(&vals.join(","))?;
        }
        if paren {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: a conjunction of requirements, or the selector that matches
/// nothing (a null `metav1.LabelSelector`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (`labels.Everything()`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object (`labels.Nothing()`).
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses a `labelSelector=` string: `k=v`, `k==v`, `k!=v`, `k in (a,b)`, `k notin (a,b)`,
    /// `k`, `!k`, `k>1`, `k<1`, joined by commas. The empty string selects everything.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut p = Parser::new(s);
        let mut reqs = p.parse().map_err(SelectorError::Label)?;
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// Converts a `metav1.LabelSelector` (`{matchLabels, matchExpressions}`): `null` matches
    /// nothing, `{}` matches everything (`metav1.LabelSelectorAsSelector`).
    pub fn from_json(sel: &Value) -> Result<Self, SelectorError> {
        let obj = match sel {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(o) => o,
            _ => {
                return Err(SelectorError::LabelObject(
                    "label selector must be an object with matchLabels and matchExpressions"
                        .to_string(),
                ))
            }
        };
        let empty = Map::new();
        let match_labels = obj
            .get("matchLabels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let no_exprs = Vec::new();
        let exprs = obj
            .get("matchExpressions")
            .and_then(Value::as_array)
            .unwrap_or(&no_exprs);
        if match_labels.is_empty() && exprs.is_empty() {
            return Ok(LabelSelector::everything());
        }
        let mut reqs = Vec::with_capacity(match_labels.len() + exprs.len());
        for (k, v) in match_labels {
            let r = Requirement::new(k, Operator::Equals, vec![label_str(v)])
                .map_err(SelectorError::LabelObject)?;
            reqs.push(r);
        }
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let op_s = e.get("operator").and_then(Value::as_str).unwrap_or("");
            let op = match op_s {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::LabelObject(format!(
                        "{} is not a valid label selector operator",
                        go_quote(other)
                    )))
                }
            };
            let values: Vec<String> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(label_str).collect())
                .unwrap_or_default();
            let r = Requirement::new(key, op, values).map_err(SelectorError::LabelObject)?;
            reqs.push(r);
        }
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements: reqs,
            nothing: false,
        })
    }

    /// A selector from a plain `map[string]string` (a Service's or ReplicationController's
    /// `spec.selector`), like `labels.SelectorFromSet`: every pair must match; an empty map
    /// matches everything (callers that treat an empty service selector as "select nothing"
    /// must check `is_empty`).
    pub fn from_map(m: &Map<String, Value>) -> Self {
        let mut reqs: Vec<Requirement> = m
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![label_str(v)],
            })
            .collect();
        reqs.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements: reqs,
            nothing: false,
        }
    }

    /// Whether an object with these labels is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        if self.nothing {
            return false;
        }
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// [`Self::matches`] for labels held as a string map.
    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.nothing
            && self
                .requirements
                .iter()
                .all(|r| r.matches_value(labels.get(&r.key).map(String::as_str)))
    }

    /// True for the selector that matches everything (no requirements, not `nothing`).
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing (from a null `metav1.LabelSelector`).
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value this selector pins `key` to with `=`/`==`/single-valued `in`, if any.
    pub fn requires_exact(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| {
            let exact = matches!(
                r.operator,
                Operator::Equals | Operator::DoubleEquals | Operator::In
            );
            (r.key == key && exact && r.values.len() == 1).then(|| r.values[0].as_str())
        })
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical form (`selector.String()`): requirements sorted by key, joined by commas;
    /// empty for both everything and nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// `labels.FormatLabels`: `k=v` pairs sorted by key joined by commas, `<none>` when empty.
pub fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let Some(m) = m else {
        return "<none>".to_string();
    };
    let mut pairs: Vec<(&String, String)> = m.iter().map(|(k, v)| (k, label_str(v))).collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let s = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s
    }
}

/// `metav1.FormatLabelSelector`: the canonical string, `<none>` when empty (or null) and
/// `<error>` when the selector is invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match LabelSelector::from_json(sel.unwrap_or(&Value::Null)) {
        Err(_) => "<error>".to_string(),
        Ok(s) => {
            let out = s.to_string();
            if out.is_empty() {
                "<none>".to_string()
            } else {
                out
            }
        }
    }
}

// --- the label selector lexer and parser (labels/selector.go) ---

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn read(&mut self) -> u8 {
        let c = self.s.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        c
    }

    fn unread(&mut self) {
        self.pos = self.pos.saturating_sub(1);
    }

    fn lex(&mut self) -> (Tok, String) {
        let mut c = self.read();
        while is_whitespace(c) {
            c = self.read();
        }
        if c == 0 {
            return (Tok::EndOfString, String::new());
        }
        self.unread();
        if is_special(c) {
            self.scan_special()
        } else {
            self.scan_identifier()
        }
    }

    fn scan_identifier(&mut self) -> (Tok, String) {
        let start = self.pos;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if is_special(c) || is_whitespace(c) {
                self.unread();
                break;
            }
        }
        let end = self.pos.min(self.s.len());
        let lit = String::from_utf8_lossy(&self.s[start..end]).into_owned();
        match keyword(&lit) {
            Some(t) => (t, lit),
            None => (Tok::Identifier, lit),
        }
    }

    fn scan_special(&mut self) -> (Tok, String) {
        let mut buf = String::new();
        let mut last: Option<(Tok, String)> = None;
        loop {
            let c = self.read();
            if c == 0 {
                break;
            }
            if !is_special(c) {
                self.unread();
                break;
            }
            buf.push(c as char);
            if let Some(t) = keyword(&buf) {
                last = Some((t, buf.clone()));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        match last {
            Some(t) => t,
            None => (Tok::Error, format!("error expected: keyword found '{buf}'")),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    items: Vec<(Tok, String)>,
    position: usize,
}

impl Parser {
    fn new(s: &str) -> Self {
        let mut l = Lexer {
            s: s.as_bytes(),
            pos: 0,
        };
        let mut items = Vec::new();
        loop {
            let (t, lit) = l.lex();
            items.push((t, lit));
            if t == Tok::EndOfString {
                break;
            }
        }
        Parser { items, position: 0 }
    }

    fn peek(&self, ctx: Ctx) -> (Tok, String) {
        let idx = self.position.min(self.items.len() - 1);
        let (mut t, lit) = self.items[idx].clone();
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            t = Tok::Identifier;
        }
        (t, lit)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.peek(ctx);
        self.position += 1;
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut reqs = Vec::new();
        loop {
            let (t, lit) = self.peek(Ctx::Values);
            match t {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.peek(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::EndOfString => return Ok(reqs),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = op {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values)
    }

    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let mut op = None;
        let (mut t, mut lit) = self.consume(Ctx::Values);
        if t == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (t, lit) = self.consume(Ctx::Values);
        }
        if t != Tok::Identifier {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let errs = qualified_name_errors(&lit);
        if !errs.is_empty() {
            return Err(invalid("<nil>", &lit, &errs.join("; ")));
        }
        let (next, _) = self.peek(Ctx::Values);
        if next == Tok::EndOfString || next == Tok::Comma {
            if op != Some(Operator::DoesNotExist) {
                op = Some(Operator::Exists);
            }
        } else if op == Some(Operator::DoesNotExist) {
            return Err(format!("found '{lit}', expected: ',' or 'end of string'"));
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (t, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match t {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!(
                    "found '{lit}', expected: in, notin, =, ==, !=, gt, lt"
                ))
            }
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (t, lit) = self.consume(Ctx::Values);
        if t != Tok::OpenPar {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let (t, lit) = self.peek(Ctx::Values);
        match t {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (t, _) = self.consume(Ctx::Values);
                if t != Tok::ClosedPar {
                    return Err(format!("found '{lit}', expected: ')'"));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut set: Vec<String> = Vec::new();
        let insert = |set: &mut Vec<String>, v: String| {
            if !set.contains(&v) {
                set.push(v);
            }
        };
        loop {
            let (t, lit) = self.consume(Ctx::Values);
            match t {
                Tok::Identifier => {
                    insert(&mut set, lit);
                    let (t2, l2) = self.peek(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => break,
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        insert(&mut set, String::new());
                    }
                    let (t2, _) = self.peek(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        insert(&mut set, String::new());
                        break;
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        insert(&mut set, String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
        set.sort();
        Ok(set)
    }

    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (t, _) = self.peek(Ctx::Values);
        if t == Tok::EndOfString || t == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (t, lit) = self.consume(Ctx::Values);
        if t == Tok::Identifier {
            return Ok(vec![lit]);
        }
        Err(format!("found '{lit}', expected: identifier"))
    }
}

// ---------------------------------------------------------------------------------------------
// field selectors
// ---------------------------------------------------------------------------------------------

/// One `field=value` / `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    /// Unescaped.
    pub value: String,
    /// `!=` rather than `=`/`==`.
    pub negated: bool,
}

/// A parsed field selector: a conjunction of terms; no terms selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

/// `fields.EscapeValue`.
pub fn escape_field_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            '=' => out.push_str("\\="),
            c => out.push(c),
        }
    }
    out
}

/// `fields.UnescapeValue`.
fn unescape_field_value(s: &str) -> Result<String, String> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    ))
                }
            }
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                ))
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}

fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

/// Field labels every kind without its own list accepts (`runtime.DefaultMetaV1FieldSelectorConversion`).
const DEFAULT_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// A kind's supported field labels and the wording of its rejection.
type FieldList = (&'static [&'static str], fn(&str) -> String);

/// The field labels a kind registers a conversion for, or `None` for the default list.
/// The second element is how the kind's conversion function words a rejection.
fn supported_fields(group: &str, kind: &str) -> Option<FieldList> {
    fn core(label: &str) -> String {
        format!("field label not supported: {label}")
    }
    fn job(label: &str) -> String {
        format!(
            "field label {} not supported for batchv1.Job",
            go_quote(label)
        )
    }
    let list: &'static [&'static str] = match (group, kind) {
        ("", "Pod") => &[
            "metadata.name",
            "metadata.namespace",
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.podIPs",
            "status.nominatedNodeName",
            "spec.host",
        ],
        ("", "Node") => &["metadata.name", "spec.unschedulable"],
        ("", "ReplicationController") => {
            &["metadata.name", "metadata.namespace", "status.replicas"]
        }
        ("", "Event") => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
            "metadata.namespace",
            "metadata.name",
        ],
        ("", "Namespace") => &["status.phase", "metadata.name"],
        ("", "Secret") => &["type", "metadata.namespace", "metadata.name"],
        ("", "Service") => &[
            "metadata.namespace",
            "metadata.name",
            "spec.clusterIP",
            "spec.type",
        ],
        ("batch", "Job") => {
            return Some((
                &["metadata.name", "metadata.namespace", "status.successful"],
                job,
            ))
        }
        _ => return None,
    };
    Some((list, core))
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses a `fieldSelector=` string: `a=b`, `a==b`, `a!=b` joined by commas, with `\`
    /// escaping `\`, `,` and `=` in values (`fields.ParseSelector`).
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_field_value(rhs).map_err(SelectorError::Field)?;
            terms.push(FieldTerm {
                field: lhs.to_string(),
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The terms, in parse (sorted) order.
    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    /// True when it has no terms (matches everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Applies the kind's field label conversion (`scheme.ConvertFieldLabel`): rejects labels
    /// the kind does not support, and renames the legacy pod label `spec.host` to
    /// `spec.nodeName`.
    pub fn convert_for(&self, group: &str, kind: &str) -> Result<FieldSelector, SelectorError> {
        let mut out = self.clone();
        for t in &mut out.terms {
            match supported_fields(group, kind) {
                Some((list, err)) => {
                    if !list.contains(&t.field.as_str()) {
                        return Err(SelectorError::UnsupportedField(err(&t.field)));
                    }
                    if group.is_empty() && kind == "Pod" && t.field == "spec.host" {
                        t.field = "spec.nodeName".to_string();
                    }
                }
                None => {
                    if !DEFAULT_FIELDS.contains(&t.field.as_str()) {
                        return Err(SelectorError::UnsupportedField(format!(
                            "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                            go_quote(&t.field)
                        )));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Checks every field label is one the kind supports (see `convert_for`).
    pub fn check_supported(&self, group: &str, kind: &str) -> Result<(), SelectorError> {
        self.convert_for(group, kind).map(|_| ())
    }

    /// Whether the object's selectable fields satisfy every term; a missing field reads as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|t| {
            let got = field_value(obj, &t.field);
            (got == t.value) != t.negated
        })
    }

    /// The name this selector pins with `metadata.name=X` (`RequiresExactMatch`), so the
    /// server can look one object up instead of scanning.
    pub fn name_equals(&self) -> Option<&str> {
        self.requires_exact("metadata.name")
    }

    /// The value this selector pins `field` to with `=`/`==`, if any.
    pub fn requires_exact(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = if t.negated { "!=" } else { "=" };
            write!(f, "{}{}{}", t.field, op, escape_field_value(&t.value))?;
        }
        Ok(())
    }
}

fn scalar_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

fn path<'a>(obj: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(obj, |v, k| v.get(k))
}

/// The value of a selectable field as the registry's `ToSelectableFields` computes it from
/// the object: bools and counts print as Go does, defaults fill missing fields.
pub fn field_value(obj: &Value, field: &str) -> String {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    match field {
        "spec.hostNetwork" | "spec.unschedulable" => path(obj, field)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
        "status.replicas" => path(obj, field)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        "status.successful" if kind == "Job" => path(obj, "status.succeeded")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
        "status.podIP" if kind == "Pod" => path(obj, "status.podIPs")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|p| p.get("ip"))
            .and_then(Value::as_str)
            .or_else(|| path(obj, "status.podIP").and_then(Value::as_str))
            .unwrap_or("")
            .to_string(),
        // Not part of the pod's selectable field set upstream: always reads as empty.
        "status.podIPs" if kind == "Pod" => String::new(),
        "source" if kind == "Event" => {
            let c = path(obj, "source.component")
                .and_then(Value::as_str)
                .unwrap_or("");
            if c.is_empty() {
                scalar_string(obj.get("reportingComponent").unwrap_or(&Value::Null))
            } else {
                c.to_string()
            }
        }
        _ => path(obj, field).map(scalar_string).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn parses_and_prints_label_selectors() {
        let cases = [
            ("", ""),
            ("x=a", "x=a"),
            ("x=a,y=b", "x=a,y=b"),
            ("y=b,x=a", "x=a,y=b"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x in (b,a)", "x in (a,b)"),
            ("x notin (a)", "x notin (a)"),
            ("x", "x"),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            (" x = a , y ", "x=a,y"),
            ("x=", "x="),
            ("x in ()", "x in ()"),
            ("x=in", "x=in"),
            ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
            ("x in (a,,b)", "x in (,a,b)"),
        ];
        for (input, want) in cases {
            let s = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.to_string(), want, "input {input:?}");
        }
    }

    #[test]
    fn rejects_bad_label_selectors_with_upstream_messages() {
        let err = |s: &str| LabelSelector::parse(s).unwrap_err().to_string();
        assert_eq!(err("x=a,"), "found '', expected: identifier after ','");
        assert_eq!(
            err("x y"),
            "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(err("x=a b"), "found 'b', expected: ',' or 'end of string'");
        assert_eq!(
            err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("x in a"),
            "unable to parse requirement: found 'a' expected: '('"
        );
        assert_eq!(
            err("!x=a"),
            "unable to parse requirement: found 'x', expected: ',' or 'end of string'"
        );
        assert_eq!(
            err("x>a"),
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
        assert_eq!(
            err("app=a b"),
            "found 'b', expected: ',' or 'end of string'"
        );
        assert_eq!(
            err("app=-bad"),
            "unable to parse requirement: values[0][app]: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            err("-k=v"),
            "unable to parse requirement: <nil>: Invalid value: \"-k\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert!(err("Example.com/k=v").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"Example.com/k\": prefix part a lowercase RFC 1123 subdomain"
        ));
        assert!(err("x=>").contains("expected: identifier"));
    }

    #[test]
    fn matches_labels() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(Some(&l));
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app=db"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(m("app in (db,web)"));
        assert!(!m("app notin (db,web)"));
        assert!(m("missing notin (a)"));
        assert!(m("!missing"));
        assert!(!m("!app"));
        assert!(m("n>4"));
        assert!(!m("n<5"));
        assert!(!m("app>1"));
        assert!(!LabelSelector::parse("app").unwrap().matches(None));
        assert!(LabelSelector::parse("!app").unwrap().matches(None));
    }

    #[test]
    fn converts_metav1_label_selectors() {
        let s = LabelSelector::from_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(s.to_string(), "app=web,!canary,tier in (back,front)");
        let l = labels(json!({"app": "web", "tier": "back"}));
        assert!(s.matches(Some(&l)));
        let l2 = labels(json!({"app": "web", "tier": "back", "canary": "1"}));
        assert!(!s.matches(Some(&l2)));

        let empty = LabelSelector::from_json(&json!({})).unwrap();
        assert!(empty.is_empty() && empty.matches(None));
        let none = LabelSelector::from_json(&Value::Null).unwrap();
        assert!(none.is_nothing() && !none.is_empty() && !none.matches(Some(&l)));

        let bad = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        );
        assert_eq!(
            bad.unwrap_err().to_string(),
            "\"Gt\" is not a valid label selector operator"
        );
        let empty_in = LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
        );
        assert_eq!(
            empty_in.unwrap_err().to_string(),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        let bad_key = LabelSelector::from_json(&json!({"matchLabels": {"a b": "c"}}));
        assert!(bad_key
            .unwrap_err()
            .to_string()
            .starts_with("key: Invalid value: \"a b\": name part must consist"));
    }

    #[test]
    fn requirements_sort_by_key_only() {
        let s = LabelSelector::from_json(&json!({"matchLabels": {"b": "1", "a": "2"}})).unwrap();
        assert_eq!(s.to_string(), "a=2,b=1");
        assert_eq!(s.requires_exact("b"), Some("1"));
    }

    #[test]
    fn from_map_and_formatting() {
        let m = labels(json!({"tier": "front", "app": "web"}));
        let s = LabelSelector::from_map(&m);
        assert_eq!(s.to_string(), "app=web,tier=front");
        assert!(s.matches(Some(&m)));
        assert!(!s.matches(Some(&labels(json!({"app": "web"})))));
        assert_eq!(format_labels(Some(&m)), "app=web,tier=front");
        assert_eq!(format_labels(Some(&Map::new())), "<none>");
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        assert_eq!(
            format_label_selector(Some(&json!({"matchLabels": {"app": "web"}}))),
            "app=web"
        );
        assert_eq!(
            format_label_selector(Some(
                &json!({"matchExpressions": [{"key": "a", "operator": "Bogus"}]})
            )),
            "<error>"
        );
    }

    #[test]
    fn parses_field_selectors() {
        let s =
            FieldSelector::parse("spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed")
                .unwrap();
        assert_eq!(
            s.to_string(),
            "spec.nodeName=n1,status.phase!=Failed,status.phase!=Succeeded"
        );
        let s = FieldSelector::parse("metadata.name==web").unwrap();
        assert_eq!(s.name_equals(), Some("web"));
        assert_eq!(s.to_string(), "metadata.name=web");
        let s = FieldSelector::parse(r"a=x\,y\=z\\,b=c").unwrap();
        assert_eq!(s.terms()[0].value, r"x,y=z\");
        assert_eq!(s.to_string(), r"a=x\,y\=z\\,b=c");
        assert!(FieldSelector::parse("").unwrap().is_empty());
        assert!(FieldSelector::parse("metadata.name!=x")
            .unwrap()
            .name_equals()
            .is_none());
        assert_eq!(
            FieldSelector::parse("foo").unwrap_err().to_string(),
            "invalid selector: 'foo'; can't understand 'foo'"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\c").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \c"
        );
        assert_eq!(
            FieldSelector::parse(r"a=b\").unwrap_err().to_string(),
            r"invalid field selector: invalid escape sequence: \"
        );
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err().to_string(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn checks_supported_field_labels() {
        let sel = |s: &str| FieldSelector::parse(s).unwrap();
        assert!(sel("spec.nodeName=n,status.phase=Running")
            .check_supported("", "Pod")
            .is_ok());
        assert_eq!(
            sel("foo=bar")
                .check_supported("", "Pod")
                .unwrap_err()
                .to_string(),
            "field label not supported: foo"
        );
        assert_eq!(
            sel("foo=bar")
                .check_supported("apps", "Deployment")
                .unwrap_err()
                .to_string(),
            "\"foo\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert!(sel("metadata.name=x")
            .check_supported("apps", "Deployment")
            .is_ok());
        assert!(
            sel("involvedObject.name=x,involvedObject.kind=Pod,type=Warning")
                .check_supported("", "Event")
                .is_ok()
        );
        assert!(sel("spec.unschedulable=true")
            .check_supported("", "Node")
            .is_ok());
        assert!(sel("metadata.namespace=x")
            .check_supported("", "Node")
            .is_err());
        assert!(sel("type=Opaque").check_supported("", "Secret").is_ok());
        assert!(sel("status.phase=Active")
            .check_supported("", "Namespace")
            .is_ok());
        assert_eq!(
            sel("status.active=1")
                .check_supported("batch", "Job")
                .unwrap_err()
                .to_string(),
            "field label \"status.active\" not supported for batchv1.Job"
        );
        assert!(sel("status.successful=1")
            .check_supported("batch", "Job")
            .is_ok());
        let conv = sel("spec.host=n1").convert_for("", "Pod").unwrap();
        assert_eq!(conv.to_string(), "spec.nodeName=n1");
    }

    #[test]
    fn matches_object_fields() {
        let pod = json!({
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "default"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always"},
            "status": {"phase": "Running", "podIPs": [{"ip": "10.42.0.5"}]}
        });
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&pod);
        assert!(m("metadata.name=web-1"));
        assert!(m(
            "spec.nodeName=n1,status.phase!=Succeeded,status.phase!=Failed"
        ));
        assert!(!m("spec.nodeName=n2"));
        assert!(m("spec.hostNetwork=false"));
        assert!(m("status.podIP=10.42.0.5"));
        assert!(m("status.nominatedNodeName="));
        assert!(m("status.podIPs="));
        let ev = json!({
            "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"},
            "reportingComponent": "kubelet",
            "type": "Normal"
        });
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&ev);
        assert!(m(
            "involvedObject.name=web-1,involvedObject.kind=Pod,involvedObject.uid=u1"
        ));
        assert!(m("source=kubelet"));
        assert!(m("reportingComponent=kubelet"));
        let job = json!({"kind": "Job", "status": {"succeeded": 2}});
        assert!(FieldSelector::parse("status.successful=2")
            .unwrap()
            .matches(&job));
        let node = json!({"kind": "Node", "spec": {"unschedulable": true}});
        assert!(FieldSelector::parse("spec.unschedulable=true")
            .unwrap()
            .matches(&node));
    }
}
