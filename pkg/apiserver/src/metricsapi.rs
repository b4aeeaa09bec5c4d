//! `metrics.k8s.io/v1beta1` served by the API server itself, as metrics-server does in k3s:
//! every 15 s each Ready node's kubelet `/metrics/resource` is scraped through the kubelet
//! dialer (tunnel or direct), the last two samples are kept, and NodeMetrics / PodMetrics are
//! computed from them (CPU = Δ cumulative seconds / Δt, memory = working set).

use crate::error::{ApiError, ApiResult};
use crate::request::{Query, Target};
use crate::state::AppState;
use axum::body::Body;
use axum::response::Response;
use http::Method;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use skiff_api::rbac::{Attributes, UserInfo};
use skiff_api::selector::LabelSelector;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The API group and version served here.
pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";
/// How often kubelets are scraped.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// One cumulative sample of a node or a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub cpu_seconds: f64,
    /// Timestamp of the CPU sample (ms since the epoch).
    pub ts_ms: i64,
    pub memory_bytes: f64,
    /// `container_start_time_seconds` (0 for the node).
    pub start: f64,
}

/// `(namespace, pod, container)`.
pub type ContainerKey = (String, String, String);

/// One parsed scrape of `/metrics/resource`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub node: Option<Sample>,
    pub containers: BTreeMap<ContainerKey, Sample>,
}

/// The last two scrapes of every node.
#[derive(Default)]
pub struct MetricsStore {
    nodes: Mutex<HashMap<String, (Option<Scrape>, Scrape)>>,
}

impl MetricsStore {
    /// Records a new scrape of `node` (the previous last one becomes the older sample).
    pub fn record(&self, node: &str, s: Scrape) {
        let mut m = self.nodes.lock();
        let prev = m.remove(node).map(|(_, last)| last);
        m.insert(node.to_string(), (prev, s));
    }

    /// Forgets every node not in `keep`.
    pub fn retain(&self, keep: &[String]) {
        self.nodes.lock().retain(|n, _| keep.contains(n));
    }

    fn node_usage(&self, node: &str) -> Option<Usage> {
        let m = self.nodes.lock();
        let (prev, last) = m.get(node)?;
        usage(prev.as_ref()?.node.as_ref()?, last.node.as_ref()?)
    }

    /// Per pod: the usage of each of its containers (only pods whose every container has one).
    fn pod_usages(&self) -> BTreeMap<(String, String), Vec<(String, Usage)>> {
        let m = self.nodes.lock();
        let mut out: BTreeMap<(String, String), Vec<(String, Usage)>> = BTreeMap::new();
        let mut incomplete: Vec<(String, String)> = Vec::new();
        for (prev, last) in m.values() {
            let Some(prev) = prev else { continue };
            for (key, s) in &last.containers {
                let pod = (key.0.clone(), key.1.clone());
                match prev.containers.get(key).and_then(|p| usage(p, s)) {
                    Some(u) => out.entry(pod).or_default().push((key.2.clone(), u)),
                    None => incomplete.push(pod),
                }
            }
        }
        for p in incomplete {
            out.remove(&p);
        }
        out
    }
}

/// Usage between two samples: nano-cores, working-set bytes, the newer timestamp and Δt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub nano_cores: u64,
    pub memory_bytes: u64,
    pub ts_ms: i64,
    pub window_ms: i64,
}

/// The usage between `prev` and `last`; `None` when they cannot be compared (no time passed,
/// a restart reset the counter) or when metrics-server would drop them (zero CPU or memory).
pub fn usage(prev: &Sample, last: &Sample) -> Option<Usage> {
    let dt = last.ts_ms - prev.ts_ms;
    if dt <= 0 || last.cpu_seconds < prev.cpu_seconds || prev.start != last.start {
        return None;
    }
    if last.cpu_seconds <= 0.0 || last.memory_bytes <= 0.0 {
        return None;
    }
    let cores = (last.cpu_seconds - prev.cpu_seconds) / (dt as f64 / 1000.0);
    Some(Usage {
        nano_cores: (cores * 1e9).round() as u64,
        memory_bytes: last.memory_bytes as u64,
        ts_ms: last.ts_ms,
        window_ms: dt,
    })
}

/// One sample line: name, labels, value, timestamp.
type Line<'a> = (&'a str, Vec<(String, String)>, f64, Option<i64>);

/// Splits `name{labels} value [timestamp]` into its parts; labels unescaped.
fn parse_line(line: &str) -> Option<Line<'_>> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices();
        let mut key = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '}' => {
                    end = Some(i + 1);
                    break;
                }
                ',' | ' ' => {}
                '=' => {
                    // a quoted value follows
                    if chars.next().map(|(_, c)| c) != Some('"') {
                        return None;
                    }
                    let mut val = String::new();
                    loop {
                        match chars.next()?.1 {
                            '\\' => match chars.next()?.1 {
                                'n' => val.push('\n'),
                                other => val.push(other),
                            },
                            '"' => break,
                            other => val.push(other),
                        }
                    }
                    labels.push((std::mem::take(&mut key), val));
                }
                other => key.push(other),
            }
        }
        rest = &body[end?..];
    }
    let mut fields = rest.split_whitespace();
    let value = match fields.next()? {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let ts = fields.next().and_then(|t| t.parse().ok());
    Some((name, labels, value, ts))
}

/// Parses the kubelet's `/metrics/resource` text; samples without a timestamp get `now_ms`.
pub fn parse_resource_metrics(text: &str, now_ms: i64) -> Scrape {
    let mut node = Sample::default();
    let (mut node_cpu, mut node_mem) = (false, false);
    let mut cpu: BTreeMap<ContainerKey, (f64, i64)> = BTreeMap::new();
    let mut mem: BTreeMap<ContainerKey, f64> = BTreeMap::new();
    let mut start: BTreeMap<ContainerKey, f64> = BTreeMap::new();
    for line in text.lines() {
        let Some((name, labels, value, ts)) = parse_line(line) else {
            continue;
        };
        if !value.is_finite() {
            continue;
        }
        let ts = ts.unwrap_or(now_ms);
        let label = |k: &str| {
            labels
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let key = || (label("namespace"), label("pod"), label("container"));
        match name {
            "node_cpu_usage_seconds_total" => {
                node.cpu_seconds = value;
                node.ts_ms = ts;
                node_cpu = true;
            }
            "node_memory_working_set_bytes" => {
                node.memory_bytes = value;
                node_mem = true;
            }
            "container_cpu_usage_seconds_total" => {
                cpu.insert(key(), (value, ts));
            }
            "container_memory_working_set_bytes" => {
                mem.insert(key(), value);
            }
            "container_start_time_seconds" => {
                start.insert(key(), value);
            }
            _ => {}
        }
    }
    let containers = cpu
        .into_iter()
        .filter_map(|(k, (c, ts))| {
            let m = *mem.get(&k)?;
            let s = start.get(&k).copied().unwrap_or(0.0);
            Some((
                k,
                Sample {
                    cpu_seconds: c,
                    ts_ms: ts,
                    memory_bytes: m,
                    start: s,
                },
            ))
        })
        .collect();
    Scrape {
        node: (node_cpu && node_mem).then_some(node),
        containers,
    }
}

/// A CPU quantity in canonical DecimalSI form from nano-cores (`5123456n`, `5m`, `2`).
pub fn cpu_quantity(nano: u64) -> String {
    if nano == 0 {
        return "0".into();
    }
    let mut v = nano;
    let mut suffix = 0;
    const SUFFIXES: [&str; 4] = ["n", "u", "m", ""];
    while suffix < 3 && v.is_multiple_of(1000) {
        v /= 1000;
        suffix += 1;
    }
    format!("{v}{}", SUFFIXES[suffix])
}

/// A memory quantity in canonical BinarySI form (`53248Ki`, `52Mi`, `1000`).
pub fn memory_quantity(bytes: u64) -> String {
    if bytes < 1024 {
        return bytes.to_string();
    }
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    let mut v = bytes;
    let mut i = 0;
    while i < 6 && v.is_multiple_of(1024) {
        v /= 1024;
        i += 1;
    }
    format!("{v}{}", SUFFIXES[i])
}

/// Go's `time.Duration.String()` for a non-negative count of milliseconds.
pub fn go_duration(ms: i64) -> String {
    if ms <= 0 {
        return "0s".into();
    }
    let h = ms / 3_600_000;
    let m = (ms / 60_000) % 60;
    let s = (ms / 1000) % 60;
    let frac = ms % 1000;
    let mut secs = s.to_string();
    if frac != 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    if h > 0 {
        format!("{h}h{m}m{secs}s")
    } else if m > 0 {
        format!("{m}m{secs}s")
    } else {
        format!("{secs}s")
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn usage_json(u: &Usage) -> Value {
    json!({"cpu": cpu_quantity(u.nano_cores), "memory": memory_quantity(u.memory_bytes)})
}

fn metadata(obj: &Value, now: &str) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), crate::objects::name(obj).into());
    if let Some(ns) = crate::objects::namespace(obj) {
        m.insert("namespace".into(), ns.into());
    }
    m.insert("creationTimestamp".into(), now.into());
    if let Some(l) = obj.pointer("/metadata/labels") {
        m.insert("labels".into(), l.clone());
    }
    Value::Object(m)
}

/// A NodeMetrics object for `node` when both samples exist.
pub fn node_metrics(node: &Value, u: &Usage, now: &str) -> Value {
    json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(node, now),
        "timestamp": rfc3339(u.ts_ms),
        "window": go_duration(u.window_ms),
        "usage": usage_json(u),
    })
}

/// A PodMetrics object from its containers' usage.
pub fn pod_metrics(pod: &Value, containers: &[(String, Usage)], now: &str) -> Value {
    let ts = containers.iter().map(|(_, u)| u.ts_ms).max().unwrap_or(0);
    let window = containers.first().map(|(_, u)| u.window_ms).unwrap_or(0);
    let items: Vec<Value> = containers
        .iter()
        .map(|(name, u)| json!({"name": name, "usage": usage_json(u)}))
        .collect();
    json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(pod, now),
        "timestamp": rfc3339(ts),
        "window": go_duration(window),
        "containers": items,
    })
}

/// A metrics.k8s.io request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsPath {
    Nodes(Option<String>),
    Pods {
        namespace: Option<String>,
        name: Option<String>,
    },
}

/// Parses `/apis/metrics.k8s.io/v1beta1/...` resource paths (not the discovery documents).
pub fn parse_path(path: &str) -> Option<MetricsPath> {
    let rest = path
        .trim_end_matches('/')
        .strip_prefix("/apis/metrics.k8s.io/v1beta1/")?;
    let segs: Vec<&str> = rest.split('/').collect();
    match segs.as_slice() {
        ["nodes"] => Some(MetricsPath::Nodes(None)),
        ["nodes", n] => Some(MetricsPath::Nodes(Some(n.to_string()))),
        ["pods"] => Some(MetricsPath::Pods {
            namespace: None,
            name: None,
        }),
        ["namespaces", ns, "pods"] => Some(MetricsPath::Pods {
            namespace: Some(ns.to_string()),
            name: None,
        }),
        ["namespaces", ns, "pods", p] => Some(MetricsPath::Pods {
            namespace: Some(ns.to_string()),
            name: Some(p.to_string()),
        }),
        _ => None,
    }
}

fn attributes(p: &MetricsPath, path: &str) -> Attributes {
    let (resource, ns, name) = match p {
        MetricsPath::Nodes(n) => ("nodes", None, n.clone()),
        MetricsPath::Pods { namespace, name } => ("pods", namespace.clone(), name.clone()),
    };
    Attributes {
        verb: if name.is_some() { "get" } else { "list" }.into(),
        resource_request: true,
        api_group: GROUP.into(),
        resource: resource.into(),
        subresource: String::new(),
        name: name.unwrap_or_default(),
        namespace: ns.unwrap_or_default(),
        path: path.to_string(),
    }
}

async fn list(st: &AppState, plural: &str, ns: Option<&str>, q: &Query) -> ApiResult<Vec<Value>> {
    let res = skiff_api::registry::find("", "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} not registered")))?;
    let target = Target {
        res,
        namespace: ns.map(str::to_string),
        name: None,
        subresource: None,
        watch_prefix: false,
    };
    let mut lq = Query::default();
    if let Some(sel) = q.get("labelSelector") {
        lq.map.insert("labelSelector".into(), sel.into());
        lq.multi.insert("labelSelector".into(), vec![sel.into()]);
    }
    Ok(crate::rest::list_objects(st, &target, &lq).await?.items)
}

fn json_ok(v: &Value) -> ApiResult<Response> {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(v).unwrap_or_default()))
        .map_err(|e| ApiError::internal(format!("response build failed: {e}")))
}

fn list_body(kind: &str, items: Vec<Value>) -> Value {
    json!({
        "kind": kind,
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items,
    })
}

/// Serves a metrics.k8s.io resource path; `None` for other paths.
pub async fn serve(
    st: &AppState,
    user: &UserInfo,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
) -> Option<ApiResult<Response>> {
    let p = parse_path(path)?;
    Some(serve_path(st, user, method, path, raw_query, p).await)
}

async fn serve_path(
    st: &AppState,
    user: &UserInfo,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    p: MetricsPath,
) -> ApiResult<Response> {
    let q = Query::parse(raw_query);
    crate::nodeauthz::authorize(st, user, &attributes(&p, path), &q)?;
    if method != Method::GET {
        return Err(ApiError::method_not_allowed());
    }
    if q.get("labelSelector")
        .is_some_and(|s| LabelSelector::parse(s).is_err())
    {
        return Err(ApiError::bad_request(format!(
            "unable to parse labelSelector {:?}",
            q.get("labelSelector").unwrap_or("")
        )));
    }
    let now = rfc3339(chrono::Utc::now().timestamp_millis());
    let store = &st.kubelets.metrics;
    match p {
        MetricsPath::Nodes(name) => {
            let nodes = match &name {
                Some(n) => vec![crate::rest::get_object(
                    st,
                    skiff_api::registry::find("", "v1", "nodes")
                        .ok_or_else(|| ApiError::internal("nodes not registered"))?,
                    None,
                    n,
                )
                .await
                .map_err(|e| {
                    if e.code == 404 {
                        ApiError::not_found(GROUP, "nodemetrics", n)
                    } else {
                        e
                    }
                })?],
                None => list(st, "nodes", None, &q).await?,
            };
            let items: Vec<Value> = nodes
                .iter()
                .filter_map(|n| {
                    let u = store.node_usage(crate::objects::name(n))?;
                    Some(node_metrics(n, &u, &now))
                })
                .collect();
            match name {
                Some(n) => match items.into_iter().next() {
                    Some(one) => json_ok(&one),
                    None => Err(ApiError::not_found(GROUP, "nodemetrics", &n)),
                },
                None => json_ok(&list_body("NodeMetricsList", items)),
            }
        }
        MetricsPath::Pods { namespace, name } => {
            let usages = store.pod_usages();
            let pods = match (&namespace, &name) {
                (Some(ns), Some(n)) => {
                    let res = skiff_api::registry::find("", "v1", "pods")
                        .ok_or_else(|| ApiError::internal("pods not registered"))?;
                    match crate::rest::get_object(st, res, Some(ns), n).await {
                        Ok(p) => vec![p],
                        Err(e) if e.code == 404 => vec![],
                        Err(e) => return Err(e),
                    }
                }
                _ => list(st, "pods", namespace.as_deref(), &q).await?,
            };
            let items: Vec<Value> = pods
                .iter()
                .filter_map(|p| {
                    let key = (
                        crate::objects::namespace(p).unwrap_or("").to_string(),
                        crate::objects::name(p).to_string(),
                    );
                    let c = usages.get(&key)?;
                    Some(pod_metrics(p, c, &now))
                })
                .collect();
            match (namespace, name) {
                (Some(ns), Some(n)) => match items.into_iter().next() {
                    Some(one) => json_ok(&one),
                    None => Err(ApiError::not_found(
                        GROUP,
                        "podmetrics",
                        &format!("{ns}/{n}"),
                    )),
                },
                _ => json_ok(&list_body("PodMetricsList", items)),
            }
        }
    }
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(|t| t.as_str()) == Some("Ready")
                    && c.get("status").and_then(|s| s.as_str()) == Some("True")
            })
        })
}

async fn scrape_one(st: &AppState, node: &Value) -> Result<Scrape, String> {
    let ep = crate::kubelet::endpoint(node);
    let path = node
        .pointer("/metadata/annotations/metrics.k8s.io~1resource-metrics-path")
        .and_then(|p| p.as_str())
        .unwrap_or("/metrics/resource")
        .to_string();
    let mut req = http::Request::new(Body::empty());
    *req.uri_mut() = path
        .parse()
        .map_err(|_| format!("bad metrics path {path:?}"))?;
    let resp = crate::kubelet::send(st, &ep, req)
        .await
        .map_err(|e| e.message)?;
    if !resp.status().is_success() {
        return Err(format!("kubelet answered {}", resp.status()));
    }
    let body = http_body_util::Limited::new(resp.into_body(), 64 << 20)
        .collect()
        .await
        .map_err(|e| format!("reading the metrics failed: {e}"))?
        .to_bytes();
    let text = String::from_utf8_lossy(&body);
    Ok(parse_resource_metrics(
        &text,
        chrono::Utc::now().timestamp_millis(),
    ))
}

/// One scrape round over every Ready node.
pub async fn scrape_all(st: &Arc<AppState>) {
    let nodes = match list(st, "nodes", None, &Query::default()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::debug!(error = %e.message, "metrics: listing nodes failed");
            return;
        }
    };
    let ready: Vec<&Value> = nodes.iter().filter(|n| is_ready(n)).collect();
    let results = futures::future::join_all(ready.iter().map(|n| async move {
        let name = crate::objects::name(n).to_string();
        let r = match tokio::time::timeout(SCRAPE_TIMEOUT, scrape_one(st, n)).await {
            Ok(r) => r,
            Err(_) => Err("timed out".into()),
        };
        (name, r)
    }))
    .await;
    let mut ok = Vec::new();
    for (name, r) in results {
        match r {
            Ok(s) => {
                st.kubelets.metrics.record(&name, s);
                ok.push(name);
            }
            Err(e) => tracing::debug!(node = %name, error = %e, "metrics: scrape failed"),
        }
    }
    st.kubelets.metrics.retain(&ok);
}

/// Scrapes forever, every [`SCRAPE_INTERVAL`].
pub async fn run_scraper(st: Arc<AppState>) {
    let mut tick = tokio::time::interval(SCRAPE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        scrape_all(&st).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the container in core-seconds
# TYPE container_cpu_usage_seconds_total counter
container_cpu_usage_seconds_total{container="web",namespace="default",pod="web-1"} 1.5 1700000000000
container_memory_working_set_bytes{container="web",namespace="default",pod="web-1"} 5.4525952e+07 1700000000000
container_start_time_seconds{container="web",namespace="default",pod="web-1"} 1.69e+09 1700000000000
node_cpu_usage_seconds_total 100 1700000000000
node_memory_working_set_bytes 1.073741824e+09 1700000000000
pod_cpu_usage_seconds_total{namespace="default",pod="web-1"} 1.5 1700000000000
resource_scrape_error 0
"#;

    #[test]
    fn parses_resource_metrics() {
        let s = parse_resource_metrics(TEXT, 1);
        let node = s.node.clone().unwrap();
        assert_eq!(node.cpu_seconds, 100.0);
        assert_eq!(node.ts_ms, 1_700_000_000_000);
        assert_eq!(node.memory_bytes, 1_073_741_824.0);
        let c = &s.containers[&("default".into(), "web-1".into(), "web".into())];
        assert_eq!(c.cpu_seconds, 1.5);
        assert_eq!(c.memory_bytes, 54_525_952.0);
        assert_eq!(c.start, 1.69e9);
        assert_eq!(s.containers.len(), 1);
        let escaped = parse_line(r#"m{a="x\"y",b="1\\2"} 3"#).unwrap();
        assert_eq!(
            escaped.1,
            vec![("a".into(), "x\"y".into()), ("b".into(), "1\\2".into())]
        );
        assert_eq!(escaped.3, None);
        assert!(parse_resource_metrics("garbage {\n", 0).node.is_none());
    }

    #[test]
    fn usage_and_quantities_like_metrics_server() {
        let a = Sample {
            cpu_seconds: 10.0,
            ts_ms: 1000,
            memory_bytes: 54_525_952.0,
            start: 5.0,
        };
        let b = Sample {
            cpu_seconds: 10.25,
            ts_ms: 16_000,
            ..a.clone()
        };
        let u = usage(&a, &b).unwrap();
        assert_eq!(u.nano_cores, 16_666_667);
        assert_eq!(u.window_ms, 15_000);
        assert_eq!(cpu_quantity(u.nano_cores), "16666667n");
        assert_eq!(cpu_quantity(5_000_000), "5m");
        assert_eq!(cpu_quantity(2_000_000_000), "2");
        assert_eq!(cpu_quantity(0), "0");
        assert_eq!(memory_quantity(54_525_952), "52Mi");
        assert_eq!(memory_quantity(53_248 * 1024 + 1024), "53249Ki");
        assert_eq!(memory_quantity(1000), "1000");
        assert_eq!(go_duration(15_000), "15s");
        assert_eq!(go_duration(10_500), "10.5s");
        assert_eq!(go_duration(75_250), "1m15.25s");
        // restart or no time passed: nothing comparable
        let restarted = Sample {
            start: 6.0,
            ..b.clone()
        };
        assert!(usage(&a, &restarted).is_none());
        assert!(usage(&b, &a).is_none());
    }

    #[test]
    fn store_needs_two_scrapes_and_whole_pods() {
        let store = MetricsStore::default();
        let first = parse_resource_metrics(TEXT, 0);
        store.record("n1", first.clone());
        assert!(store.node_usage("n1").is_none());
        assert!(store.pod_usages().is_empty());
        let mut second = first.clone();
        if let Some(n) = second.node.as_mut() {
            n.cpu_seconds += 1.5;
            n.ts_ms += 15_000;
        }
        for s in second.containers.values_mut() {
            s.cpu_seconds += 0.15;
            s.ts_ms += 15_000;
        }
        // a second container appearing only now makes its pod incomplete
        second.containers.insert(
            ("default".into(), "web-1".into(), "side".into()),
            Sample {
                cpu_seconds: 1.0,
                ts_ms: 1_700_000_015_000,
                memory_bytes: 1.0,
                start: 1.0,
            },
        );
        store.record("n1", second.clone());
        let nu = store.node_usage("n1").unwrap();
        assert_eq!(cpu_quantity(nu.nano_cores), "100m");
        assert!(store.pod_usages().is_empty());
        second
            .containers
            .remove(&("default".into(), "web-1".into(), "side".into()));
        let mut third = second.clone();
        for s in third.containers.values_mut() {
            s.cpu_seconds += 0.15;
            s.ts_ms += 15_000;
        }
        store.record("n1", third);
        let pods = store.pod_usages();
        let c = &pods[&("default".into(), "web-1".into())];
        assert_eq!(c[0].0, "web");
        assert_eq!(cpu_quantity(c[0].1.nano_cores), "10m");
        let pm = pod_metrics(
            &json!({"metadata": {"name": "web-1", "namespace": "default", "labels": {"app": "web"}}}),
            c,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(pm["containers"][0]["usage"]["memory"], "52Mi");
        assert_eq!(pm["window"], "15s");
        assert_eq!(pm["metadata"]["labels"]["app"], "web");
        store.retain(&[]);
        assert!(store.node_usage("n1").is_none());
    }

    #[test]
    fn metrics_paths() {
        assert_eq!(
            parse_path("/apis/metrics.k8s.io/v1beta1/nodes"),
            Some(MetricsPath::Nodes(None))
        );
        assert_eq!(
            parse_path("/apis/metrics.k8s.io/v1beta1/namespaces/d/pods/p"),
            Some(MetricsPath::Pods {
                namespace: Some("d".into()),
                name: Some("p".into())
            })
        );
        assert_eq!(parse_path("/apis/metrics.k8s.io/v1beta1"), None);
        assert_eq!(parse_path("/apis/metrics.k8s.io/v1beta1/x"), None);
        let a = attributes(
            &MetricsPath::Pods {
                namespace: None,
                name: None,
            },
            "/p",
        );
        assert_eq!((a.verb.as_str(), a.api_group.as_str()), ("list", GROUP));
    }
}
