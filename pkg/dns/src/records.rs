//! The cluster zone as data: a table of names built from Services and EndpointSlices (pure),
//! and the answer to one question against it, as the Kubernetes DNS specification and
//! CoreDNS's kubernetes plugin give them (network-wire.md §4).

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The schema version answered at `dns-version.<zone>` (CoreDNS's value).
pub const DNS_SCHEMA_VERSION: &str = "1.1.0";
/// TTL of the `dns-version` TXT record (CoreDNS's value).
pub const DNS_VERSION_TTL: u32 = 28800;

/// One piece of record data; owner names are absolute and lowercase, without the final dot.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Data {
    A(Ipv4Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Ptr(String),
    Txt(String),
}

/// The record types a question can ask for (the others get the NODATA/NXDOMAIN decision only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qtype {
    A,
    Aaaa,
    Cname,
    Srv,
    Ptr,
    Txt,
    Any,
    Other,
}

impl Data {
    fn matches(&self, q: Qtype) -> bool {
        matches!(
            (self, q),
            (_, Qtype::Any)
                | (Data::A(_), Qtype::A)
                | (Data::Cname(_), Qtype::Cname)
                | (Data::Srv { .. }, Qtype::Srv)
                | (Data::Ptr(_), Qtype::Ptr)
                | (Data::Txt(_), Qtype::Txt)
        )
    }
}

/// Every name skiff answers for, with its records. Names that only own children (like
/// `svc.<zone>` or `<ns>.svc.<zone>`) are present with no records: they exist (NODATA, not
/// NXDOMAIN).
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The cluster domain, lowercase, without the final dot.
    pub zone: String,
    /// False until the first full list of Services and EndpointSlices arrived (SERVFAIL).
    pub synced: bool,
    names: BTreeMap<String, Vec<Data>>,
    /// Namespaces known to exist (those holding a Service or an EndpointSlice): pod names
    /// `a-b-c-d.<ns>.pod.<zone>` answer in them (`pods insecure`, as k3s's Corefile).
    namespaces: BTreeSet<String>,
}

/// What to do with one question.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// Answer from the table. `soa` puts the zone's SOA in the authority section.
    Answer {
        rcode: Rcode,
        answers: Vec<(String, Data)>,
        additionals: Vec<(String, Data)>,
        soa: bool,
    },
    /// Not skiff's name: ask the node's resolvers.
    Forward,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    NxDomain,
    ServFail,
}

/// Lowercase, no final dot.
fn norm(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The reverse name of an IPv4 address (`d.c.b.a.in-addr.arpa`).
pub fn reverse_name(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
}

/// The hostname of an endpoint without one: its address with dashes (`10-42-0-5`).
fn dashed(ip: Ipv4Addr) -> String {
    ip.to_string().replace('.', "-")
}

fn is_ready(ep: &k8s_openapi::api::discovery::v1::Endpoint) -> bool {
    // nil means ready (EndpointConditions docs); the slice controller already marks
    // endpoints ready for publishNotReadyAddresses Services.
    ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
}

/// CoreDNS's SRV weight: an even share of 100 among `n` records, at least 1.
fn srv_weight(n: usize) -> u16 {
    (100 / n.max(1)).clamp(1, 100) as u16
}

impl Table {
    /// An empty, unsynced table for `zone`.
    pub fn new(zone: &str) -> Table {
        Table {
            zone: norm(zone),
            ..Table::default()
        }
    }

    /// Builds the zone from every Service and EndpointSlice (the whole table each time:
    /// rebuilding a few thousand names takes microseconds and keeps the rules in one place).
    pub fn build<'a>(
        zone: &str,
        services: impl IntoIterator<Item = &'a Service>,
        slices: impl IntoIterator<Item = &'a EndpointSlice>,
    ) -> Table {
        let mut t = Table::new(zone);
        t.synced = true;
        let zone = t.zone.clone();
        t.add(
            &format!("dns-version.{zone}"),
            Data::Txt(DNS_SCHEMA_VERSION.into()),
        );
        t.touch(&format!("svc.{zone}"));
        t.touch(&format!("pod.{zone}"));
        // EndpointSlices by (namespace, service name).
        let mut by_svc: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let ns = s.metadata.namespace.clone().unwrap_or_default();
            t.namespaces.insert(ns.clone());
            if s.address_type != "IPv4" {
                continue;
            }
            if let Some(name) = s
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("kubernetes.io/service-name"))
            {
                by_svc.entry((ns, name.clone())).or_default().push(s);
            }
        }
        for svc in services {
            let (Some(name), Some(ns)) = (&svc.metadata.name, &svc.metadata.namespace) else {
                continue;
            };
            t.namespaces.insert(ns.clone());
            let Some(spec) = &svc.spec else { continue };
            let fqdn = format!("{}.{}.svc.{zone}", name.to_ascii_lowercase(), ns);
            let named_ports: Vec<(String, String, u16)> = spec
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    let n = p.name.as_deref().filter(|n| !n.is_empty())?;
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    Some((n.to_ascii_lowercase(), proto, p.port as u16))
                })
                .collect();
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = spec.external_name.as_deref().filter(|s| !s.is_empty()) {
                    t.add(&fqdn, Data::Cname(norm(target)));
                }
                continue;
            }
            let headless = spec.cluster_ip.as_deref() == Some("None");
            if !headless {
                let ip = spec
                    .cluster_ip
                    .as_deref()
                    .and_then(|s| s.parse::<Ipv4Addr>().ok());
                let Some(ip) = ip else { continue };
                t.add(&fqdn, Data::A(ip));
                t.add(&reverse_name(ip), Data::Ptr(fqdn.clone()));
                let w = srv_weight(1);
                for (port, proto, number) in &named_ports {
                    t.add(
                        &format!("_{port}._{proto}.{fqdn}"),
                        Data::Srv {
                            priority: 0,
                            weight: w,
                            port: *number,
                            target: fqdn.clone(),
                        },
                    );
                }
                continue;
            }
            // Headless: one record per ready endpoint, deduplicated by address.
            let mut eps: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
            for s in by_svc
                .get(&(ns.clone(), name.clone()))
                .into_iter()
                .flatten()
            {
                for ep in s.endpoints.iter().filter(|e| is_ready(e)) {
                    for a in &ep.addresses {
                        let Ok(ip) = a.parse::<Ipv4Addr>() else {
                            continue;
                        };
                        let host = ep
                            .hostname
                            .as_deref()
                            .filter(|h| !h.is_empty())
                            .map(str::to_ascii_lowercase)
                            .unwrap_or_else(|| dashed(ip));
                        eps.entry(ip).or_insert(host);
                    }
                }
            }
            if eps.is_empty() {
                // No ready endpoint: the name does not exist (NXDOMAIN), the namespace does.
                t.touch(&format!("{ns}.svc.{zone}"));
                continue;
            }
            let w = srv_weight(eps.len() * named_ports.len().max(1));
            for (ip, host) in &eps {
                let host_fqdn = format!("{host}.{fqdn}");
                t.add(&fqdn, Data::A(*ip));
                t.add(&host_fqdn, Data::A(*ip));
                t.add(&reverse_name(*ip), Data::Ptr(host_fqdn.clone()));
                for (port, proto, number) in &named_ports {
                    t.add(
                        &format!("_{port}._{proto}.{fqdn}"),
                        Data::Srv {
                            priority: 0,
                            weight: w,
                            port: *number,
                            target: host_fqdn.clone(),
                        },
                    );
                }
            }
        }
        for ns in t.namespaces.clone() {
            t.touch(&format!("{ns}.svc.{zone}"));
            t.touch(&format!("{ns}.pod.{zone}"));
        }
        t
    }

    /// Makes `name` and its ancestors inside the zone exist.
    fn touch(&mut self, name: &str) {
        let mut n = name;
        loop {
            self.names.entry(n.to_string()).or_default();
            if n == self.zone || !n.ends_with(&self.zone) {
                break;
            }
            match n.split_once('.') {
                Some((_, rest)) => n = rest,
                None => break,
            }
        }
    }

    fn add(&mut self, name: &str, d: Data) {
        let in_zone = self.in_zone(name);
        if in_zone {
            self.touch(name);
        }
        let v = self.names.entry(name.to_string()).or_default();
        if !v.contains(&d) {
            v.push(d);
            v.sort();
        }
    }

    fn in_zone(&self, name: &str) -> bool {
        name == self.zone
            || name
                .strip_suffix(self.zone.as_str())
                .is_some_and(|p| p.ends_with('.'))
    }

    /// Answers one question (`qname` in any case, with or without the final dot).
    pub fn resolve(&self, qname: &str, qtype: Qtype) -> Resolution {
        let name = norm(qname);
        let in_zone = self.in_zone(&name);
        let reverse = name.ends_with(".in-addr.arpa") || name.ends_with(".ip6.arpa");
        if !in_zone && !reverse {
            return Resolution::Forward;
        }
        if !self.synced {
            if in_zone {
                return answer(Rcode::ServFail, vec![], vec![], false);
            }
            return Resolution::Forward;
        }
        let Some(records) = self.records_of(&name) else {
            if reverse {
                // k3s: `fallthrough in-addr.arpa ip6.arpa` — addresses skiff does not own
                // are asked upstream.
                return Resolution::Forward;
            }
            return answer(Rcode::NxDomain, vec![], vec![], true);
        };
        // An alias answers every type but CNAME with itself plus what its target has here.
        if let Some(Data::Cname(target)) = records.iter().find(|d| matches!(d, Data::Cname(_))) {
            let mut answers = vec![(name.clone(), Data::Cname(target.clone()))];
            if qtype != Qtype::Cname && qtype != Qtype::Any {
                if let Some(rs) = self.records_of(target) {
                    answers.extend(
                        rs.into_iter()
                            .filter(|d| d.matches(qtype))
                            .map(|d| (target.clone(), d)),
                    );
                }
            }
            return answer(Rcode::NoError, answers, vec![], false);
        }
        let answers: Vec<(String, Data)> = records
            .into_iter()
            .filter(|d| d.matches(qtype))
            .map(|d| (name.clone(), d))
            .collect();
        if answers.is_empty() {
            return answer(Rcode::NoError, vec![], vec![], true);
        }
        // SRV targets' addresses go in the additional section (CoreDNS).
        let mut additionals = Vec::new();
        for (_, d) in &answers {
            if let Data::Srv { target, .. } = d {
                for a in self.names.get(target).into_iter().flatten() {
                    if matches!(a, Data::A(_))
                        && !additionals.contains(&(target.clone(), a.clone()))
                    {
                        additionals.push((target.clone(), a.clone()));
                    }
                }
            }
        }
        answer(Rcode::NoError, answers, additionals, false)
    }

    /// The records of `name`, or None when it does not exist (computed pod names included).
    fn records_of(&self, name: &str) -> Option<Vec<Data>> {
        if let Some(v) = self.names.get(name) {
            return Some(v.clone());
        }
        // `a-b-c-d.<ns>.pod.<zone>` in a namespace that exists.
        let rest = name.strip_suffix(&format!(".pod.{}", self.zone))?;
        let (label, ns) = rest.split_once('.')?;
        if ns.contains('.') || !self.namespaces.contains(ns) {
            return None;
        }
        let ip: Ipv4Addr = label.replace('-', ".").parse().ok()?;
        Some(vec![Data::A(ip)])
    }
}

fn answer(
    rcode: Rcode,
    answers: Vec<(String, Data)>,
    additionals: Vec<(String, Data)>,
    soa: bool,
) -> Resolution {
    Resolution::Answer {
        rcode,
        answers,
        additionals,
        soa,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    fn table() -> Table {
        let services = vec![
            svc(
                json!({"metadata": {"name": "mongo", "namespace": "default"},
                "spec": {"clusterIP": "10.43.0.20", "ports": [
                    {"name": "db", "port": 27017, "protocol": "TCP"},
                    {"port": 8080}]}}),
            ),
            svc(json!({"metadata": {"name": "web", "namespace": "shop"},
                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})),
            svc(json!({"metadata": {"name": "empty", "namespace": "shop"},
                "spec": {"clusterIP": "None"}})),
            svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "db.example.org."}})),
            svc(
                json!({"metadata": {"name": "alias", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "Mongo.default.svc.cluster.local"}}),
            ),
        ];
        let slices = vec![
            slice(json!({"metadata": {"name": "web-abc", "namespace": "shop",
                    "labels": {"kubernetes.io/service-name": "web"}},
                "addressType": "IPv4",
                "endpoints": [
                    {"addresses": ["10.42.0.5"], "hostname": "web-0", "conditions": {"ready": true}},
                    {"addresses": ["10.42.1.7"], "conditions": {}},
                    {"addresses": ["10.42.1.9"], "hostname": "web-2", "conditions": {"ready": false}}],
                "ports": [{"name": "http", "port": 80}]})),
            slice(json!({"metadata": {"name": "empty-x", "namespace": "shop",
                    "labels": {"kubernetes.io/service-name": "empty"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.42.0.8"], "conditions": {"ready": false}}]})),
        ];
        Table::build("cluster.local", &services, &slices)
    }

    fn ok(answers: Vec<(&str, Data)>) -> Resolution {
        Resolution::Answer {
            rcode: Rcode::NoError,
            answers: answers
                .into_iter()
                .map(|(n, d)| (n.to_string(), d))
                .collect(),
            additionals: vec![],
            soa: false,
        }
    }

    fn nodata() -> Resolution {
        answer(Rcode::NoError, vec![], vec![], true)
    }

    fn nxdomain() -> Resolution {
        answer(Rcode::NxDomain, vec![], vec![], true)
    }

    fn a(s: &str) -> Data {
        Data::A(s.parse().unwrap())
    }

    #[test]
    fn answers_follow_the_dns_spec() {
        let t = table();
        let cases: Vec<(&str, Qtype, Resolution)> = vec![
            // ClusterIP: A, case-insensitive, with or without the final dot.
            (
                "mongo.default.svc.cluster.local",
                Qtype::A,
                ok(vec![("mongo.default.svc.cluster.local", a("10.43.0.20"))]),
            ),
            (
                "MONGO.Default.svc.cluster.local.",
                Qtype::A,
                ok(vec![("mongo.default.svc.cluster.local", a("10.43.0.20"))]),
            ),
            // IPv4-only: AAAA and TXT are NODATA with the SOA.
            ("mongo.default.svc.cluster.local", Qtype::Aaaa, nodata()),
            ("mongo.default.svc.cluster.local", Qtype::Txt, nodata()),
            // PTR of the ClusterIP.
            (
                "20.0.43.10.in-addr.arpa",
                Qtype::Ptr,
                ok(vec![(
                    "20.0.43.10.in-addr.arpa",
                    Data::Ptr("mongo.default.svc.cluster.local".into()),
                )]),
            ),
            // Unnamed ports have no SRV; the parent labels exist.
            (
                "_8080._tcp.mongo.default.svc.cluster.local",
                Qtype::Srv,
                nxdomain(),
            ),
            ("_tcp.mongo.default.svc.cluster.local", Qtype::Srv, nodata()),
            // Headless: ready endpoints only (nil ready = ready), dashed name without hostname.
            (
                "web.shop.svc.cluster.local",
                Qtype::A,
                ok(vec![
                    ("web.shop.svc.cluster.local", a("10.42.0.5")),
                    ("web.shop.svc.cluster.local", a("10.42.1.7")),
                ]),
            ),
            (
                "web-0.web.shop.svc.cluster.local",
                Qtype::A,
                ok(vec![("web-0.web.shop.svc.cluster.local", a("10.42.0.5"))]),
            ),
            (
                "10-42-1-7.web.shop.svc.cluster.local",
                Qtype::A,
                ok(vec![(
                    "10-42-1-7.web.shop.svc.cluster.local",
                    a("10.42.1.7"),
                )]),
            ),
            ("web-2.web.shop.svc.cluster.local", Qtype::A, nxdomain()),
            (
                "5.0.42.10.in-addr.arpa",
                Qtype::Ptr,
                ok(vec![(
                    "5.0.42.10.in-addr.arpa",
                    Data::Ptr("web-0.web.shop.svc.cluster.local".into()),
                )]),
            ),
            // Headless with no ready endpoint: NXDOMAIN; its namespace still exists.
            ("empty.shop.svc.cluster.local", Qtype::A, nxdomain()),
            ("shop.svc.cluster.local", Qtype::A, nodata()),
            ("svc.cluster.local", Qtype::A, nodata()),
            ("cluster.local", Qtype::A, nodata()),
            // ExternalName: CNAME, no address chased outside the zone…
            (
                "ext.default.svc.cluster.local",
                Qtype::A,
                ok(vec![(
                    "ext.default.svc.cluster.local",
                    Data::Cname("db.example.org".into()),
                )]),
            ),
            // …and the target's records when it is in the zone.
            (
                "alias.default.svc.cluster.local",
                Qtype::A,
                ok(vec![
                    (
                        "alias.default.svc.cluster.local",
                        Data::Cname("mongo.default.svc.cluster.local".into()),
                    ),
                    ("mongo.default.svc.cluster.local", a("10.43.0.20")),
                ]),
            ),
            // Unknown service, unknown namespace: NXDOMAIN.
            ("nope.default.svc.cluster.local", Qtype::A, nxdomain()),
            ("mongo.nope.svc.cluster.local", Qtype::A, nxdomain()),
            // Pods insecure, in namespaces that exist.
            (
                "10-42-0-9.shop.pod.cluster.local",
                Qtype::A,
                ok(vec![("10-42-0-9.shop.pod.cluster.local", a("10.42.0.9"))]),
            ),
            ("10-42-0-9.nope.pod.cluster.local", Qtype::A, nxdomain()),
            ("not-an-ip.shop.pod.cluster.local", Qtype::A, nxdomain()),
            // Schema version.
            (
                "dns-version.cluster.local",
                Qtype::Txt,
                ok(vec![(
                    "dns-version.cluster.local",
                    Data::Txt(DNS_SCHEMA_VERSION.into()),
                )]),
            ),
            // Outside the zone, and addresses skiff does not own: upstream.
            ("example.org", Qtype::A, Resolution::Forward),
            ("clusterxlocal", Qtype::A, Resolution::Forward),
            ("1.1.168.192.in-addr.arpa", Qtype::Ptr, Resolution::Forward),
        ];
        for (name, q, want) in cases {
            assert_eq!(t.resolve(name, q), want, "{name} {q:?}");
        }
    }

    #[test]
    fn srv_records_name_named_ports_with_targets_in_additional() {
        let t = table();
        assert_eq!(
            t.resolve("_db._tcp.mongo.default.svc.cluster.local", Qtype::Srv),
            Resolution::Answer {
                rcode: Rcode::NoError,
                answers: vec![(
                    "_db._tcp.mongo.default.svc.cluster.local".into(),
                    Data::Srv {
                        priority: 0,
                        weight: 100,
                        port: 27017,
                        target: "mongo.default.svc.cluster.local".into()
                    }
                )],
                additionals: vec![("mongo.default.svc.cluster.local".into(), a("10.43.0.20"))],
                soa: false,
            }
        );
        // Headless: one per ready endpoint, weight split evenly, target the endpoint's name.
        let Resolution::Answer {
            answers,
            additionals,
            ..
        } = t.resolve("_http._tcp.web.shop.svc.cluster.local", Qtype::Srv)
        else {
            panic!("an answer")
        };
        let targets: Vec<(u16, &str)> = answers
            .iter()
            .map(|(_, d)| match d {
                Data::Srv { weight, target, .. } => (*weight, target.as_str()),
                d => panic!("not SRV: {d:?}"),
            })
            .collect();
        assert_eq!(
            targets,
            [
                (50, "10-42-1-7.web.shop.svc.cluster.local"),
                (50, "web-0.web.shop.svc.cluster.local")
            ]
        );
        assert_eq!(additionals.len(), 2);
    }

    #[test]
    fn before_the_first_sync_zone_names_fail_and_others_forward() {
        let t = Table::new("cluster.local");
        assert_eq!(
            t.resolve("mongo.default.svc.cluster.local", Qtype::A),
            answer(Rcode::ServFail, vec![], vec![], false)
        );
        assert_eq!(t.resolve("example.org", Qtype::A), Resolution::Forward);
    }

    #[test]
    fn srv_weight_is_an_even_share_of_100_at_least_1() {
        assert_eq!(srv_weight(1), 100);
        assert_eq!(srv_weight(3), 33);
        assert_eq!(srv_weight(250), 1);
    }
}
