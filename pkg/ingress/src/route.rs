//! The pure core of the ingress proxy: Ingresses + Services + EndpointSlices → a routing
//! table, and a request's host and path → the backend that serves it, following upstream's
//! matching rules (networking.k8s.io/v1 Ingress, `reference/network-wire.md` §5).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::networking::v1::{Ingress, IngressBackend, IngressClass};
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// `spec.controller` of the IngressClasses skiff serves.
pub const CONTROLLER: &str = "skiff.io/ingress-controller";
/// The IngressClass the server creates (the default class).
pub const DEFAULT_CLASS: &str = "skiff";
/// The legacy class annotation, still honoured when `spec.ingressClassName` is unset.
pub const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";
/// Label linking an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A Service port named by number or by name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

impl std::fmt::Display for PortRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PortRef::Number(n) => write!(f, "{n}"),
            PortRef::Name(n) => f.write_str(n),
        }
    }
}

/// One backend Service port and its ready endpoints (empty: answer 503).
#[derive(Debug)]
pub struct Backend {
    pub namespace: String,
    pub service: String,
    pub port: PortRef,
    pub endpoints: Vec<SocketAddr>,
    next: AtomicUsize,
}

impl Backend {
    pub fn new(namespace: &str, service: &str, port: PortRef, endpoints: Vec<SocketAddr>) -> Self {
        Backend {
            namespace: namespace.into(),
            service: service.into(),
            port,
            endpoints,
            next: AtomicUsize::new(0),
        }
    }

    /// The next endpoint in round-robin order, `None` without ready endpoints.
    pub fn pick(&self) -> Option<SocketAddr> {
        if self.endpoints.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.endpoints[i % self.endpoints.len()])
    }
}

/// How a path matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Exact,
    /// `Prefix`, and `ImplementationSpecific` (which skiff treats as Prefix).
    Prefix,
}

/// One path of one rule.
#[derive(Debug, Clone)]
struct PathRoute {
    path: String,
    /// The `/`-separated elements of `path`, empty ones dropped.
    elements: Vec<String>,
    kind: PathKind,
    backend: Arc<Backend>,
}

impl PathRoute {
    fn matches(&self, path: &str) -> bool {
        match self.kind {
            PathKind::Exact => self.path == path,
            PathKind::Prefix => {
                let mut req = path.split('/').filter(|e| !e.is_empty());
                self.elements.iter().all(|e| req.next() == Some(e.as_str()))
            }
        }
    }

    /// Precedence: the longest path first, Exact before Prefix on a tie.
    fn rank(&self) -> (std::cmp::Reverse<usize>, bool) {
        let len = self.path.trim_end_matches('/').len();
        (std::cmp::Reverse(len), self.kind != PathKind::Exact)
    }
}

/// A TLS section of an Ingress: the Secret serving `hosts` (empty: any host without its own).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TlsRef {
    pub namespace: String,
    pub secret: String,
    pub hosts: Vec<String>,
}

/// Everything the proxy needs to route a request.
#[derive(Debug, Default)]
pub struct RoutingTable {
    exact: HashMap<String, Vec<PathRoute>>,
    /// `*.foo.com` rules keyed by `foo.com`.
    wildcard: HashMap<String, Vec<PathRoute>>,
    /// Rules without a host.
    any: Vec<PathRoute>,
    default: Option<Arc<Backend>>,
    /// The TLS sections of every served Ingress, oldest Ingress first.
    pub tls: Vec<TlsRef>,
    /// Served Ingresses (namespace, name).
    pub ingresses: Vec<(String, String)>,
}

/// The names of the IngressClasses whose controller is skiff's.
pub fn our_classes(classes: &[&IngressClass]) -> BTreeSet<String> {
    classes
        .iter()
        .filter(|c| c.spec.as_ref().and_then(|s| s.controller.as_deref()) == Some(CONTROLLER))
        .filter_map(|c| c.metadata.name.clone())
        .collect()
}

/// Whether skiff serves `ing`: its class is one of ours, or it names no class at all.
pub fn served(ing: &Ingress, ours: &BTreeSet<String>) -> bool {
    let class = ing
        .spec
        .as_ref()
        .and_then(|s| s.ingress_class_name.clone())
        .or_else(|| {
            ing.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CLASS_ANNOTATION).cloned())
        });
    match class {
        None => true,
        Some(c) => ours.contains(&c),
    }
}

/// The lowercase host of a `Host` header or URI authority, without port or trailing dot.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = if let Some(rest) = h.strip_prefix('[') {
        // [v6]:port
        rest.split(']').next().unwrap_or("")
    } else {
        match h.rsplit_once(':') {
            Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
            _ => h,
        }
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn age_key(ing: &Ingress) -> (String, String, String) {
    (
        ing.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        ing.metadata.namespace.clone().unwrap_or_default(),
        ing.metadata.name.clone().unwrap_or_default(),
    )
}

/// Endpoint lookup over the Services and EndpointSlices the proxy sees.
struct Resolver<'a> {
    services: HashMap<(&'a str, &'a str), &'a Service>,
    slices: HashMap<(&'a str, &'a str), Vec<&'a EndpointSlice>>,
    built: HashMap<(String, String, PortRef), Arc<Backend>>,
}

impl<'a> Resolver<'a> {
    fn new(services: &[&'a Service], slices: &[&'a EndpointSlice]) -> Self {
        let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
        for s in slices {
            let ns = s.metadata.namespace.as_deref().unwrap_or("");
            if let Some(svc) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            {
                by_service.entry((ns, svc.as_str())).or_default().push(s);
            }
        }
        Resolver {
            services: services
                .iter()
                .map(|s| {
                    (
                        (
                            s.metadata.namespace.as_deref().unwrap_or(""),
                            s.metadata.name.as_deref().unwrap_or(""),
                        ),
                        *s,
                    )
                })
                .collect(),
            slices: by_service,
            built: HashMap::new(),
        }
    }

    /// The ready endpoints of `ns/name:port`, sorted (none when the Service or port is absent).
    fn endpoints(&self, ns: &str, name: &str, port: &PortRef) -> Vec<SocketAddr> {
        let Some(svc) = self.services.get(&(ns, name)) else {
            return Vec::new();
        };
        let Some(spec) = svc.spec.as_ref() else {
            return Vec::new();
        };
        if spec.type_.as_deref() == Some("ExternalName") {
            return Vec::new();
        }
        let Some(sp) = spec.ports.iter().flatten().find(|p| match port {
            PortRef::Number(n) => p.port == *n,
            PortRef::Name(n) => p.name.as_deref() == Some(n.as_str()),
        }) else {
            return Vec::new();
        };
        if sp.protocol.as_deref().is_some_and(|p| p != "TCP") {
            return Vec::new();
        }
        let want = sp.name.clone().unwrap_or_default();
        let mut out = BTreeSet::new();
        for slice in self.slices.get(&(ns, name)).into_iter().flatten() {
            let Some(port) = slice.ports.iter().flatten().find(|p| {
                p.name.clone().unwrap_or_default() == want
                    && p.protocol.as_deref().unwrap_or("TCP") == "TCP"
            }) else {
                continue;
            };
            let Some(number) = port.port.and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            for ep in &slice.endpoints {
                let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
                if !ready {
                    continue;
                }
                for a in &ep.addresses {
                    if let Ok(ip) = a.parse::<IpAddr>() {
                        out.insert(SocketAddr::new(ip, number));
                    }
                }
            }
        }
        out.into_iter().collect()
    }

    /// The shared backend of `ns` + an Ingress backend (`None` for resource backends).
    fn backend(&mut self, ns: &str, b: &IngressBackend) -> Option<Arc<Backend>> {
        let svc = b.service.as_ref()?;
        let port = svc.port.as_ref()?;
        let port = match (&port.number, &port.name) {
            (Some(n), _) => PortRef::Number(*n),
            (None, Some(n)) => PortRef::Name(n.clone()),
            (None, None) => return None,
        };
        let key = (ns.to_string(), svc.name.clone(), port.clone());
        if let Some(b) = self.built.get(&key) {
            return Some(b.clone());
        }
        let eps = self.endpoints(ns, &svc.name, &port);
        let b = Arc::new(Backend::new(ns, &svc.name, port, eps));
        self.built.insert(key, b.clone());
        Some(b)
    }
}

/// Builds the routing table from every Ingress skiff serves (see [`served`]). On the same
/// host and path the oldest Ingress wins; the oldest Ingress's `defaultBackend` is the default.
pub fn build(
    ingresses: &[&Ingress],
    classes: &[&IngressClass],
    services: &[&Service],
    slices: &[&EndpointSlice],
) -> RoutingTable {
    let ours = our_classes(classes);
    let mut mine: Vec<&Ingress> = ingresses
        .iter()
        .copied()
        .filter(|i| served(i, &ours))
        .collect();
    mine.sort_by_key(|i| age_key(i));
    let mut resolver = Resolver::new(services, slices);
    let mut table = RoutingTable::default();
    for ing in mine {
        let ns = ing.metadata.namespace.as_deref().unwrap_or("default");
        table.ingresses.push((
            ns.to_string(),
            ing.metadata.name.clone().unwrap_or_default(),
        ));
        let Some(spec) = ing.spec.as_ref() else {
            continue;
        };
        if table.default.is_none() {
            if let Some(b) = spec.default_backend.as_ref() {
                table.default = resolver.backend(ns, b);
            }
        }
        for tls in spec.tls.iter().flatten() {
            if let Some(secret) = tls.secret_name.clone().filter(|s| !s.is_empty()) {
                table.tls.push(TlsRef {
                    namespace: ns.to_string(),
                    secret,
                    hosts: tls
                        .hosts
                        .iter()
                        .flatten()
                        .map(|h| normalize_host(h))
                        .collect(),
                });
            }
        }
        for rule in spec.rules.iter().flatten() {
            let Some(http) = rule.http.as_ref() else {
                continue;
            };
            let group = match rule.host.as_deref().map(normalize_host) {
                None => &mut table.any,
                Some(h) if h.is_empty() => &mut table.any,
                Some(h) => match h.strip_prefix("*.") {
                    Some(suffix) => table.wildcard.entry(suffix.to_string()).or_default(),
                    None => table.exact.entry(h).or_default(),
                },
            };
            for p in &http.paths {
                let Some(backend) = resolver.backend(ns, &p.backend) else {
                    continue;
                };
                let path = p.path.clone().unwrap_or_else(|| "/".into());
                let kind = match p.path_type.as_str() {
                    "Exact" => PathKind::Exact,
                    _ => PathKind::Prefix,
                };
                // An older Ingress already routes this host + path.
                if group.iter().any(|r| r.path == path && r.kind == kind) {
                    continue;
                }
                group.push(PathRoute {
                    elements: path
                        .split('/')
                        .filter(|e| !e.is_empty())
                        .map(String::from)
                        .collect(),
                    path,
                    kind,
                    backend,
                });
            }
        }
    }
    // Stable sorts keep the older Ingress first among equal ranks.
    for g in table.exact.values_mut().chain(table.wildcard.values_mut()) {
        g.sort_by_key(|r| r.rank());
    }
    table.any.sort_by_key(|r| r.rank());
    table
}

impl RoutingTable {
    /// The backend for a request to `host` (a normalized host, see [`normalize_host`]) and
    /// `path` (without the query): the rules of the exact host, then of the `*.` wildcard
    /// one label up, then the rules without a host — the first group with a matching path
    /// decides (longest path, Exact before Prefix) — else the default backend.
    pub fn route(&self, host: &str, path: &str) -> Option<&Arc<Backend>> {
        let wildcard = host
            .split_once('.')
            .and_then(|(first, rest)| (!first.is_empty()).then(|| self.wildcard.get(rest)))
            .flatten();
        [self.exact.get(host), wildcard, Some(&self.any)]
            .into_iter()
            .flatten()
            .find_map(|g| g.iter().find(|r| r.matches(path)).map(|r| &r.backend))
            .or(self.default.as_ref())
    }

    /// Whether any Ingress is served at all.
    pub fn is_empty(&self) -> bool {
        self.ingresses.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn ing(name: &str, created: &str, spec: Value) -> Ingress {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
            "spec": spec,
        }))
        .unwrap()
    }

    fn svc(name: &str, ports: Value) -> Service {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": ports},
        }))
        .unwrap()
    }

    fn slice(svc: &str, port_name: &str, port: i32, eps: Value) -> EndpointSlice {
        serde_json::from_value(json!({
            "metadata": {"name": format!("{svc}-x"), "namespace": "default",
                "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": eps,
        }))
        .unwrap()
    }

    fn path(p: &str, ty: &str, svc: &str) -> Value {
        json!({"path": p, "pathType": ty,
            "backend": {"service": {"name": svc, "port": {"number": 80}}}})
    }

    /// A table whose backends are Services named after what they route, all on port 80.
    fn table(ings: &[Ingress]) -> RoutingTable {
        let refs: Vec<&Ingress> = ings.iter().collect();
        build(&refs, &[], &[], &[])
    }

    fn hit(t: &RoutingTable, host: &str, path: &str) -> Option<String> {
        t.route(host, path).map(|b| b.service.clone())
    }

    fn paths(list: Value) -> Ingress {
        ing(
            "i",
            "2024-01-01T00:00:00Z",
            json!({"rules": [{"http": {"paths": list}}]}),
        )
    }

    #[test]
    fn upstream_path_examples() {
        // (paths, request, expected)
        let prefix_root = table(&[paths(json!([path("/", "Prefix", "root")]))]);
        assert_eq!(hit(&prefix_root, "h", "/"), Some("root".into()));
        assert_eq!(hit(&prefix_root, "h", "/anything/x"), Some("root".into()));

        let exact_foo = table(&[paths(json!([path("/foo", "Exact", "foo")]))]);
        assert_eq!(hit(&exact_foo, "h", "/foo"), Some("foo".into()));
        assert_eq!(hit(&exact_foo, "h", "/bar"), None);
        assert_eq!(hit(&exact_foo, "h", "/foo/"), None);

        let exact_foo_slash = table(&[paths(json!([path("/foo/", "Exact", "foo")]))]);
        assert_eq!(hit(&exact_foo_slash, "h", "/foo"), None);

        let foo_prefix = table(&[paths(json!([path("/foo", "Prefix", "foo")]))]);
        assert_eq!(hit(&foo_prefix, "h", "/foo"), Some("foo".into()));
        assert_eq!(hit(&foo_prefix, "h", "/foo/"), Some("foo".into()));
        let foo_slash_prefix = table(&[paths(json!([path("/foo/", "Prefix", "foo")]))]);
        assert_eq!(hit(&foo_slash_prefix, "h", "/foo"), Some("foo".into()));
        assert_eq!(hit(&foo_slash_prefix, "h", "/foo/"), Some("foo".into()));

        let aaa_bb = table(&[paths(json!([path("/aaa/bb", "Prefix", "bb")]))]);
        assert_eq!(hit(&aaa_bb, "h", "/aaa/bbb"), None);
        let aaa_bbb = table(&[paths(json!([path("/aaa/bbb", "Prefix", "bbb")]))]);
        assert_eq!(hit(&aaa_bbb, "h", "/aaa/bbb"), Some("bbb".into()));
        assert_eq!(hit(&aaa_bbb, "h", "/aaa/bbb/"), Some("bbb".into()));
        assert_eq!(hit(&aaa_bbb, "h", "/aaa/bbb/ccc"), Some("bbb".into()));
        assert_eq!(hit(&aaa_bbb, "h", "/aaa/bbbxyz"), None);

        let root_and_aaa = table(&[paths(json!([
            path("/", "Prefix", "root"),
            path("/aaa", "Prefix", "aaa")
        ]))]);
        assert_eq!(hit(&root_and_aaa, "h", "/aaa/ccc"), Some("aaa".into()));
        assert_eq!(hit(&root_and_aaa, "h", "/ccc"), Some("root".into()));

        let aaa_only = table(&[paths(json!([path("/aaa", "Prefix", "aaa")]))]);
        assert_eq!(hit(&aaa_only, "h", "/ccc"), None);

        // Prefix and Exact /foo both present: Exact wins whatever the order.
        for list in [
            json!([
                path("/foo", "Prefix", "prefix"),
                path("/foo", "Exact", "exact")
            ]),
            json!([
                path("/foo", "Exact", "exact"),
                path("/foo", "Prefix", "prefix")
            ]),
        ] {
            let t = table(&[paths(list)]);
            assert_eq!(hit(&t, "h", "/foo"), Some("exact".into()));
            assert_eq!(hit(&t, "h", "/foo/x"), Some("prefix".into()));
        }

        // ImplementationSpecific acts as Prefix.
        let is = table(&[paths(json!([path(
            "/docs",
            "ImplementationSpecific",
            "docs"
        )]))]);
        assert_eq!(hit(&is, "h", "/docs/a"), Some("docs".into()));
        assert_eq!(hit(&is, "h", "/docsx"), None);
    }

    #[test]
    fn hosts_exact_wildcard_and_any() {
        let t = table(&[ing(
            "i",
            "2024-01-01T00:00:00Z",
            json!({"defaultBackend": {"service": {"name": "dflt", "port": {"number": 80}}},
                "rules": [
                {"host": "foo.bar.com", "http": {"paths": [path("/", "Prefix", "exact")]}},
                {"host": "*.foo.com", "http": {"paths": [path("/", "Prefix", "wild")]}},
                {"http": {"paths": [path("/open", "Prefix", "any")]}},
            ]}),
        )]);
        assert_eq!(hit(&t, "foo.bar.com", "/x"), Some("exact".into()));
        assert_eq!(hit(&t, "bar.foo.com", "/x"), Some("wild".into()));
        // One label only: not deeper, not the bare domain.
        assert_eq!(hit(&t, "baz.bar.foo.com", "/x"), Some("dflt".into()));
        assert_eq!(hit(&t, "foo.com", "/x"), Some("dflt".into()));
        assert_eq!(hit(&t, "other.com", "/open/a"), Some("any".into()));
        assert_eq!(hit(&t, "other.com", "/closed"), Some("dflt".into()));
        // Host headers are case-insensitive and may carry a port.
        assert_eq!(normalize_host("Foo.Bar.COM:8080"), "foo.bar.com");
        assert_eq!(normalize_host("[::1]:80"), "::1");
        assert_eq!(normalize_host("www.letschat.com."), "www.letschat.com");
    }

    #[test]
    fn classes_oldest_ingress_and_tls() {
        let class: IngressClass = serde_json::from_value(json!({
            "metadata": {"name": "skiff"}, "spec": {"controller": CONTROLLER}}))
        .unwrap();
        let other: IngressClass = serde_json::from_value(json!({
            "metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}}))
        .unwrap();
        let rule =
            |svc: &str| json!([{"host": "a.com", "http": {"paths": [path("/", "Prefix", svc)]}}]);
        let newer = ing(
            "newer",
            "2024-02-01T00:00:00Z",
            json!({"ingressClassName": "skiff", "rules": rule("newer"),
                "tls": [{"hosts": ["a.com"], "secretName": "a-tls"}]}),
        );
        let older = ing(
            "older",
            "2024-01-01T00:00:00Z",
            json!({"rules": rule("older")}),
        );
        let nginx = ing(
            "nginx",
            "2023-01-01T00:00:00Z",
            json!({"ingressClassName": "nginx", "rules": rule("nginx")}),
        );
        let legacy: Ingress = serde_json::from_value(json!({
            "metadata": {"name": "legacy", "namespace": "default",
                "annotations": {CLASS_ANNOTATION: "nginx"}},
            "spec": {"rules": rule("legacy")}}))
        .unwrap();
        let t = build(
            &[&newer, &nginx, &older, &legacy],
            &[&class, &other],
            &[],
            &[],
        );
        assert_eq!(hit(&t, "a.com", "/"), Some("older".into()));
        assert_eq!(
            t.ingresses,
            vec![
                ("default".to_string(), "older".to_string()),
                ("default".to_string(), "newer".to_string())
            ]
        );
        assert_eq!(
            t.tls,
            vec![TlsRef {
                namespace: "default".into(),
                secret: "a-tls".into(),
                hosts: vec!["a.com".into()]
            }]
        );
    }

    #[test]
    fn endpoints_by_port_number_or_name_ready_only() {
        let s = svc(
            "web",
            json!([{"name": "http", "port": 8080, "targetPort": 80, "protocol": "TCP"}]),
        );
        let sl = slice(
            "web",
            "http",
            80,
            json!([
                {"addresses": ["10.42.1.5"], "conditions": {"ready": true}},
                {"addresses": ["10.42.2.6"]},
                {"addresses": ["10.42.2.7"], "conditions": {"ready": false}},
            ]),
        );
        let by_number = ing(
            "n",
            "2024-01-01T00:00:00Z",
            json!({"rules": [{"host": "n.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 8080}}}}]}}]}),
        );
        let by_name = ing(
            "m",
            "2024-01-01T00:00:01Z",
            json!({"rules": [{"host": "m.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"name": "http"}}}}]}}]}),
        );
        let missing = ing(
            "z",
            "2024-01-01T00:00:02Z",
            json!({"rules": [{"host": "z.com", "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 9999}}}}]}}]}),
        );
        let t = build(&[&by_number, &by_name, &missing], &[], &[&s], &[&sl]);
        let want: Vec<SocketAddr> = vec![
            "10.42.1.5:80".parse().unwrap(),
            "10.42.2.6:80".parse().unwrap(),
        ];
        for host in ["n.com", "m.com"] {
            assert_eq!(t.route(host, "/").unwrap().endpoints, want, "{host}");
        }
        let gone = t.route("z.com", "/").unwrap();
        assert!(gone.endpoints.is_empty());
        assert_eq!(gone.pick(), None);
        // Round robin over the ready endpoints.
        let b = t.route("n.com", "/").unwrap();
        let picks: Vec<SocketAddr> = (0..4).filter_map(|_| b.pick()).collect();
        assert_eq!(picks, vec![want[0], want[1], want[0], want[1]]);
    }
}
