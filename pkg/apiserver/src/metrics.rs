//! Request metrics in the Prometheus text format at `/metrics`: the upstream
//! `apiserver_request_duration_seconds` histogram and `apiserver_request_total` counter (same
//! names and labels as kube-apiserver, so the upstream SLO queries work), plus process metrics.

use crate::request::Target;
use axum::http::Method;
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
use std::time::Duration;

/// Bucket bounds in seconds: upstream's (0.005 … 60) with finer steps below 5 ms, because skiff
/// answers most requests well under a millisecond and the SLO report wants that resolution.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0,
    3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

const LABELS: &[&str] = &[
    "verb",
    "dry_run",
    "group",
    "version",
    "resource",
    "subresource",
    "scope",
    "component",
];

/// The server's metric registry.
pub struct Metrics {
    registry: Registry,
    duration: HistogramVec,
    total: IntCounterVec,
}

/// What a request is, for its metric labels (filled in as the request is parsed).
#[derive(Debug, Clone, Default)]
pub struct RequestLabels {
    pub verb: &'static str,
    pub dry_run: bool,
    pub group: &'static str,
    pub version: &'static str,
    pub resource: &'static str,
    pub subresource: String,
    pub scope: &'static str,
}

impl RequestLabels {
    /// Labels of a resource request, the way kube-apiserver cleans them: `LIST`/`WATCH` for
    /// collection reads, `APPLY` for server-side apply, otherwise the HTTP method; scope
    /// `resource` for a named object, `namespace` for a collection in one namespace, `cluster`
    /// for the rest.
    pub fn of(method: &Method, target: &Target, watch: bool, apply: bool, dry_run: bool) -> Self {
        let verb = match (method.as_str(), target.name.is_some()) {
            ("GET", _) if watch => "WATCH",
            ("GET", false) => "LIST",
            ("GET", true) => "GET",
            ("PATCH", _) if apply => "APPLY",
            ("POST", _) => "POST",
            ("PUT", _) => "PUT",
            ("PATCH", _) => "PATCH",
            ("DELETE", _) => "DELETE",
            ("HEAD", _) => "HEAD",
            _ => "other",
        };
        let scope = if target.name.is_some() {
            "resource"
        } else if target.namespace.is_some() {
            "namespace"
        } else {
            "cluster"
        };
        RequestLabels {
            verb,
            dry_run,
            group: target.res.group,
            version: target.res.version,
            resource: target.res.plural,
            subresource: target.subresource.clone().unwrap_or_default(),
            scope,
        }
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "apiserver_request_duration_seconds",
                "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            )
            .buckets(BUCKETS.to_vec()),
            LABELS,
        )
        .expect("static histogram definition is valid");
        let mut total_labels = LABELS.to_vec();
        total_labels.push("code");
        let total = IntCounterVec::new(
            Opts::new(
                "apiserver_request_total",
                "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            ),
            &total_labels,
        )
        .expect("static counter definition is valid");
        // Registration only fails for duplicate names, which these are not.
        let _ = registry.register(Box::new(duration.clone()));
        let _ = registry.register(Box::new(total.clone()));
        #[cfg(target_os = "linux")]
        let _ = registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ));
        Metrics {
            registry,
            duration,
            total,
        }
    }

    /// Records one finished resource request.
    pub fn observe(&self, l: &RequestLabels, code: u16, elapsed: Duration) {
        let dry = if l.dry_run { "All" } else { "" };
        let values = [
            l.verb,
            dry,
            l.group,
            l.version,
            l.resource,
            l.subresource.as_str(),
            l.scope,
            "apiserver",
        ];
        self.duration
            .with_label_values(&values)
            .observe(elapsed.as_secs_f64());
        let code = code.to_string();
        let mut with_code = values.to_vec();
        with_code.push(&code);
        self.total.with_label_values(&with_code).inc();
    }

    /// The text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The `Content-Type` of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_api::registry;

    fn target(ns: Option<&str>, name: Option<&str>) -> Target {
        Target {
            res: registry::find("", "v1", "pods").expect("pods are registered"),
            namespace: ns.map(String::from),
            name: name.map(String::from),
            subresource: None,
            watch_prefix: false,
        }
    }

    #[test]
    fn verbs_and_scopes_follow_upstream_cleaning() {
        let get = RequestLabels::of(
            &Method::GET,
            &target(Some("d"), Some("p")),
            false,
            false,
            false,
        );
        assert_eq!((get.verb, get.scope), ("GET", "resource"));
        let list = RequestLabels::of(&Method::GET, &target(Some("d"), None), false, false, false);
        assert_eq!((list.verb, list.scope), ("LIST", "namespace"));
        let all = RequestLabels::of(&Method::GET, &target(None, None), false, false, false);
        assert_eq!((all.verb, all.scope), ("LIST", "cluster"));
        let watch = RequestLabels::of(&Method::GET, &target(None, None), true, false, false);
        assert_eq!(watch.verb, "WATCH");
        let apply = RequestLabels::of(
            &Method::PATCH,
            &target(Some("d"), Some("p")),
            false,
            true,
            false,
        );
        assert_eq!(apply.verb, "APPLY");
        let create = RequestLabels::of(&Method::POST, &target(Some("d"), None), false, false, true);
        assert_eq!(
            (create.verb, create.scope, create.dry_run),
            ("POST", "namespace", true)
        );
    }

    #[test]
    fn render_has_histogram_buckets_and_counts() {
        let m = Metrics::new();
        let l = RequestLabels::of(&Method::POST, &target(Some("d"), None), false, false, false);
        m.observe(&l, 201, Duration::from_micros(700));
        m.observe(&l, 201, Duration::from_millis(30));
        let text = String::from_utf8(m.render()).unwrap();
        let line = |prefix: &str| {
            text.lines()
                .find(|x| x.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_string()
        };
        let sel = r#"component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1""#;
        assert!(line(&format!(
            "apiserver_request_duration_seconds_bucket{{{sel},le=\"0.001\"}}"
        ))
        .ends_with(" 1"));
        assert!(line(&format!(
            "apiserver_request_duration_seconds_bucket{{{sel},le=\"0.05\"}}"
        ))
        .ends_with(" 2"));
        assert!(line(&format!(
            "apiserver_request_duration_seconds_count{{{sel}}}"
        ))
        .ends_with(" 2"));
        assert!(line("apiserver_request_total{code=\"201\",").ends_with(" 2"));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
