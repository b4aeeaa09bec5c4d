//! CEL (the Common Expression Language) as the Kubernetes API server uses it, on the `cel`
//! crate: one shared environment (the standard library plus the strings, lists and math
//! extensions), compilation with upstream's error texts (`compilation failed: ERROR:
//! <input>:1:8: …` with the source line and a caret), a check that an expression names only
//! the variables its caller declares (`self`/`oldSelf` for CRD rules, `object`, `request`,
//! `params` … for admission policies), JSON → CEL values (whole numbers are `int`, null
//! fields are absent as upstream treats them), evaluation with upstream's runtime error
//! wording, and a bounded cache of compiled programs shared by the CRD rules and the
//! ValidatingAdmissionPolicies.
//!
//! Simplified against upstream: there is no static type checking against a schema (a field a
//! schema does not declare is a runtime `no such key`, not a compile error), and no cost
//! estimation or runtime cost budget — every expression runs to completion.

pub mod policy;

use serde_json::Value as Json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock, Mutex};

pub use ::cel::Value;

static ENV: LazyLock<Arc<::cel::Env>> = LazyLock::new(|| {
    let mut env = ::cel::Env::stdlib();
    // The extension libraries upstream's base environment includes.
    for ext in [
        ::cel::extensions::strings as fn(&mut ::cel::Env) -> _,
        ::cel::extensions::lists,
        ::cel::extensions::math,
    ] {
        if let Err(e) = env.add_extension(ext) {
            tracing_free_log(&format!("cel: extension not added: {e}"));
        }
    }
    Arc::new(env)
});

/// The API crate has no logging dependency; a declaration conflict in the crate's own
/// extensions is a programming error that tests catch, so it is only written to stderr.
fn tracing_free_log(msg: &str) {
    eprintln!("{msg}");
}

/// A compiled expression.
#[derive(Debug)]
pub struct Expr {
    program: ::cel::Program,
    source: String,
    variables: BTreeSet<String>,
}

impl Expr {
    /// The expression's text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// True when the expression reads variable `name` (e.g. `oldSelf`: a transition rule).
    pub fn uses(&self, name: &str) -> bool {
        self.variables.contains(name)
    }

    /// Evaluates with the given variables.
    pub fn eval(&self, vars: &[(&str, &Value)]) -> Result<Value, String> {
        let mut ctx = ::cel::Context::with_env(ENV.clone());
        for (name, v) in vars {
            ctx.add_variable_from_value(*name, (*v).clone());
        }
        self.program.execute(&ctx).map_err(runtime_error)
    }

    /// Evaluates a predicate: anything but a bool is an error.
    pub fn eval_bool(&self, vars: &[(&str, &Value)]) -> Result<bool, String> {
        match self.eval(vars)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression must evaluate to a bool, got {}",
                type_name(&other)
            )),
        }
    }

    /// Evaluates a message expression: a string, trimmed.
    pub fn eval_string(&self, vars: &[(&str, &Value)]) -> Result<String, String> {
        match self.eval(vars)? {
            Value::String(s) => Ok(s.trim().to_string()),
            _ => Err("messageExpression failed to convert to string".into()),
        }
    }
}

/// CEL's name of a value's type, as its error messages print it.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Null => "null_type",
        _ => "dyn",
    }
}

/// Upstream's (cel-go's) wording of the runtime errors clients see most.
fn runtime_error(e: ::cel::ExecutionError) -> String {
    use ::cel::ExecutionError as E;
    match e {
        E::NoSuchKey(k) => format!("no such key: {k}"),
        E::NoSuchOverload(_) => "no such overload".into(),
        E::UndeclaredReference(r) => format!("no such attribute: {r}"),
        E::DivisionByZero(_) => "division by zero".into(),
        E::RemainderByZero(_) => "modulus by zero".into(),
        E::Overflow(..) => "integer overflow".into(),
        E::IndexOutOfBounds(i) => format!("index out of bounds: {}", value_text(&i)),
        E::ValuesNotComparable(..) | E::UnsupportedBinaryOperator(..) => "no such overload".into(),
        other => other.to_string(),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::String(s) => s.to_string(),
        Value::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Compiles `source`, refusing variables outside `declared` as cel-go's checker does. The
/// error is upstream's detail: `compilation failed: ERROR: <input>:L:C: msg\n | src\n | ..^`.
pub fn compile(source: &str, declared: &[&str]) -> Result<Expr, String> {
    let program = ENV.compile(source).map_err(|errs| {
        let parts: Vec<String> = errs
            .errors
            .iter()
            .map(|e| located(source, e.pos.0, e.pos.1, &e.msg))
            .collect();
        format!("compilation failed: {}", parts.join("\n"))
    })?;
    let mut free = Vec::new();
    free_variables(program.expression(), &mut Vec::new(), &mut free);
    for (name, id) in &free {
        if !declared.contains(&name.as_str()) && !TYPE_NAMES.contains(&name.as_str()) {
            let start = program
                .source_info()
                .offset_for(*id)
                .map(|(s, _)| s as usize)
                .unwrap_or(0);
            let (line, col) = line_col(source, start);
            return Err(format!(
                "compilation failed: {}",
                located(
                    source,
                    line,
                    col,
                    &format!("undeclared reference to '{name}' (in container '')")
                )
            ));
        }
    }
    let variables = free.into_iter().map(|(n, _)| n).collect();
    Ok(Expr {
        program,
        source: source.to_string(),
        variables,
    })
}

/// Identifiers that name CEL types (`type(x) == string`), never variables.
const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
    "dyn",
];

/// The 1-based line and column (in characters) of byte offset `at`.
fn line_col(source: &str, at: usize) -> (isize, isize) {
    let at = at.min(source.len());
    let before = source.get(..at).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line as isize, col as isize)
}

/// The identifiers an expression reads that no comprehension binds, with their node ids, in
/// source order of first use.
fn free_variables(e: &::cel::IdedExpr, bound: &mut Vec<String>, out: &mut Vec<(String, u64)>) {
    use ::cel::common::ast::{EntryExpr, Expr};
    let entry = |x: &EntryExpr, bound: &mut Vec<String>, out: &mut Vec<(String, u64)>| match x {
        EntryExpr::StructField(f) => free_variables(&f.value, bound, out),
        EntryExpr::MapEntry(m) => {
            free_variables(&m.key, bound, out);
            free_variables(&m.value, bound, out);
        }
    };
    match &e.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@')
                && !bound.contains(name)
                && !out.iter().any(|(n, _)| n == name)
            {
                out.push((name.clone(), e.id));
            }
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                free_variables(t, bound, out);
            }
            for a in &c.args {
                free_variables(a, bound, out);
            }
        }
        Expr::Select(s) => free_variables(&s.operand, bound, out),
        Expr::List(l) => {
            for x in &l.elements {
                free_variables(x, bound, out);
            }
        }
        Expr::Map(m) => {
            for x in &m.entries {
                entry(&x.expr, bound, out);
            }
        }
        Expr::Struct(s) => {
            for x in &s.entries {
                entry(&x.expr, bound, out);
            }
        }
        Expr::Comprehension(c) => {
            free_variables(&c.iter_range, bound, out);
            free_variables(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2.clone());
            }
            bound.push(c.accu_var.clone());
            free_variables(&c.loop_cond, bound, out);
            free_variables(&c.loop_step, bound, out);
            free_variables(&c.result, bound, out);
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// cel-go's rendering of an error at a 1-based line/column: the message, then the source line
/// and a caret under the column.
fn located(source: &str, line: isize, col: isize, msg: &str) -> String {
    let mut out = format!("ERROR: <input>:{line}:{col}: {msg}");
    if let Some(text) = source.lines().nth((line.max(1) - 1) as usize) {
        let text = text.replace('\t', " ");
        out.push_str(&format!("\n | {text}\n | "));
        out.push_str(&".".repeat((col.max(1) - 1) as usize));
        out.push('^');
    }
    out
}

/// Programs compiled before, by (declared variables, source). Bounded: cleared when full.
static CACHE: LazyLock<Mutex<HashMap<String, Arc<Expr>>>> = LazyLock::new(Default::default);
const CACHE_MAX: usize = 4096;

/// [`compile`] through the shared cache.
pub fn compile_cached(source: &str, declared: &[&str]) -> Result<Arc<Expr>, String> {
    let key = format!("{}\u{0}{source}", declared.join(","));
    if let Some(e) = CACHE.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(e);
    }
    let e = Arc::new(compile(source, declared)?);
    if let Ok(mut c) = CACHE.lock() {
        if c.len() >= CACHE_MAX {
            c.clear();
        }
        c.insert(key, e.clone());
    }
    Ok(e)
}

/// A JSON value as a CEL value: whole numbers are `int` (upstream's `integer` fields), other
/// numbers `double`, and null-valued object fields are left out (absent for `has()`).
pub fn to_cel(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(a) => Value::List(Arc::new(a.iter().map(to_cel).collect())),
        Json::Object(m) => {
            let map: HashMap<::cel::objects::Key, Value> = m
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (::cel::objects::Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Value::Map(::cel::objects::Map { map: Arc::new(map) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, self_: Json) -> Result<bool, String> {
        let e = compile(src, &["self", "oldSelf"])?;
        e.eval_bool(&[("self", &to_cel(&self_))])
    }

    #[test]
    fn evaluates_rules_over_json() {
        let obj = json!({"replicas": 3, "minReplicas": 1, "name": "web", "tags": ["a", "b"],
            "ratio": 0.5, "gone": null, "labels": {"app": "x"}});
        for (src, want) in [
            ("self.replicas >= self.minReplicas", true),
            ("self.replicas > 5", false),
            ("self.name.startsWith('w') && size(self.name) == 3", true),
            ("self.tags.all(t, t.size() == 1)", true),
            ("self.tags.exists(t, t == 'c')", false),
            ("has(self.gone)", false),
            ("has(self.name)", true),
            ("self.ratio < 1.0", true),
            ("'app' in self.labels && self.labels['app'] == 'x'", true),
            ("self.name.matches('^w.*$')", true),
            ("self.name.upperAscii() == 'WEB'", true),
        ] {
            assert_eq!(run(src, obj.clone()), Ok(want), "{src}");
        }
    }

    #[test]
    fn runtime_errors_use_upstreams_words() {
        assert_eq!(
            run("self.missing > 1", json!({"a": 1})),
            Err("no such key: missing".into())
        );
        assert_eq!(
            run("self.a / 0 == 1", json!({"a": 1})),
            Err("division by zero".into())
        );
        assert_eq!(
            run("self.a", json!({"a": 1})),
            Err("expression must evaluate to a bool, got int".into())
        );
    }

    #[test]
    fn compile_errors_point_at_the_column() {
        let e = compile("self.replicas <", &["self"]).unwrap_err();
        assert!(
            e.starts_with("compilation failed: ERROR: <input>:1:"),
            "{e}"
        );
        assert!(e.contains("\n | self.replicas <\n | ."), "{e}");
        assert!(e.ends_with('^'), "{e}");
        let e = compile("self.a == other.b", &["self"]).unwrap_err();
        assert_eq!(
            e,
            "compilation failed: ERROR: <input>:1:11: undeclared reference to 'other' (in container '')\n | self.a == other.b\n | ..........^"
        );
    }

    #[test]
    fn transition_rules_and_messages() {
        let e = compile("self.x >= oldSelf.x", &["self", "oldSelf"]).unwrap();
        assert!(e.uses("oldSelf"));
        let m = compile("'x is ' + string(self.x) + ' '", &["self"]).unwrap();
        assert_eq!(
            m.eval_string(&[("self", &to_cel(&json!({"x": 4})))]),
            Ok("x is 4".into())
        );
        let cached = compile_cached("self.x > 1", &["self"]).unwrap();
        let again = compile_cached("self.x > 1", &["self"]).unwrap();
        assert!(Arc::ptr_eq(&cached, &again));
    }
}
