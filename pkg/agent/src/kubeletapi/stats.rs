//! `/stats/summary` and `/metrics/resource`: the node's CPU and memory from /proc, the
//! containers' from CRI `ListContainerStats`, CPU rates from the previous sample, and the
//! Prometheus text metrics-server scrapes.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

/// Linux's USER_HZ: the unit of /proc/stat times.
const USER_HZ: u64 = 100;

/// The node's CPU and memory at one instant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSample {
    pub time_ns: i64,
    /// Cumulative busy CPU time of all cores.
    pub cpu_ns: u64,
    pub memory: MemInfo,
    /// Boot time, Unix seconds.
    pub boot_time: i64,
}

/// The /proc/meminfo fields the summary needs, in bytes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemInfo {
    pub total: u64,
    pub free: u64,
    pub available: u64,
    pub inactive_file: u64,
}

impl MemInfo {
    /// Used memory (total − free), as cAdvisor's root cgroup usage.
    pub fn usage(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }

    /// Usage minus inactive file pages (cAdvisor's working set).
    pub fn working_set(&self) -> u64 {
        self.usage().saturating_sub(self.inactive_file)
    }
}

/// Cumulative busy CPU of all cores (user, nice, system, irq, softirq, steal) from /proc/stat,
/// and the boot time.
pub fn parse_proc_stat(text: &str) -> Option<(u64, i64)> {
    let mut cpu = None;
    let mut btime = 0;
    for line in text.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
                if v.len() < 8 {
                    return None;
                }
                let busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
                cpu = Some(busy * (1_000_000_000 / USER_HZ));
            }
            Some("btime") => btime = f.next().and_then(|x| x.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    cpu.map(|c| (c, btime))
}

/// The fields of /proc/meminfo the summary uses.
pub fn parse_meminfo(text: &str) -> MemInfo {
    let mut m = MemInfo::default();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(v)) = (f.next(), f.next().and_then(|v| v.parse::<u64>().ok())) else {
            continue;
        };
        let bytes = v * 1024;
        match key {
            "MemTotal:" => m.total = bytes,
            "MemFree:" => m.free = bytes,
            "MemAvailable:" => m.available = bytes,
            "Inactive(file):" => m.inactive_file = bytes,
            _ => {}
        }
    }
    m
}

/// Reads the node's sample from /proc now.
pub fn read_node(now_ns: i64) -> NodeSample {
    let (cpu_ns, boot_time) = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|t| parse_proc_stat(&t))
        .unwrap_or_default();
    let memory = std::fs::read_to_string("/proc/meminfo")
        .map(|t| parse_meminfo(&t))
        .unwrap_or_default();
    NodeSample {
        time_ns: now_ns,
        cpu_ns,
        memory,
        boot_time,
    }
}

/// One running container's sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerSample {
    pub id: String,
    pub namespace: String,
    pub pod: String,
    pub pod_uid: String,
    pub name: String,
    /// Unix nanoseconds.
    pub start_ns: i64,
    /// The pod sandbox's creation, Unix nanoseconds.
    pub pod_start_ns: i64,
    pub cpu_time_ns: i64,
    pub cpu_ns: u64,
    pub memory_time_ns: i64,
    pub working_set: u64,
    pub usage: u64,
    pub rss: u64,
}

/// CPU rates from the previous cumulative sample of each key (node or container id).
#[derive(Debug, Default)]
pub struct Rates {
    prev: HashMap<String, (i64, u64)>,
}

impl Rates {
    /// Records `(time, cumulative)` for `key` and returns the rate in nanocores since the
    /// previous sample (`None` on the first sample or when time did not advance).
    pub fn observe(&mut self, key: &str, time_ns: i64, cpu_ns: u64) -> Option<u64> {
        let rate = self.prev.get(key).and_then(|&(t0, c0)| {
            let dt = time_ns - t0;
            (dt > 0 && cpu_ns >= c0)
                .then(|| ((cpu_ns - c0) as u128 * 1_000_000_000 / dt as u128) as u64)
        });
        if self.prev.get(key).is_none_or(|&(t0, _)| time_ns > t0) {
            self.prev.insert(key.to_string(), (time_ns, cpu_ns));
        }
        rate
    }

    /// Forgets keys not in `live` (containers that went away).
    pub fn retain(&mut self, live: &[&str]) {
        self.prev
            .retain(|k, _| k == "node" || live.contains(&k.as_str()));
    }
}

fn rfc3339_ns(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn rfc3339_precise(ns: i64) -> String {
    DateTime::<Utc>::from_timestamp(
        ns.div_euclid(1_000_000_000),
        ns.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default()
    .to_rfc3339_opts(SecondsFormat::Nanos, true)
}

fn cpu_json(time_ns: i64, cumulative: u64, rate: Option<u64>) -> Value {
    let mut v = json!({"time": rfc3339_precise(time_ns), "usageCoreNanoSeconds": cumulative});
    if let Some(r) = rate {
        v["usageNanoCores"] = json!(r);
    }
    v
}

/// (namespace, name, uid) of a pod.
type PodKey = (String, String, String);

/// The `/stats/summary` document (kubelet stats/v1alpha1), `rates` already applied.
pub fn summary(
    node_name: &str,
    node: &NodeSample,
    node_rate: Option<u64>,
    containers: &[(ContainerSample, Option<u64>)],
) -> Value {
    let mem = &node.memory;
    let mut pods: BTreeMap<PodKey, Vec<&(ContainerSample, Option<u64>)>> = BTreeMap::new();
    for c in containers {
        pods.entry((c.0.namespace.clone(), c.0.pod.clone(), c.0.pod_uid.clone()))
            .or_default()
            .push(c);
    }
    let pods: Vec<Value> = pods
        .into_iter()
        .map(|((ns, name, uid), cs)| {
            let time = cs
                .iter()
                .map(|c| c.0.cpu_time_ns)
                .max()
                .unwrap_or(node.time_ns);
            let cpu: u64 = cs.iter().map(|c| c.0.cpu_ns).sum();
            let rate = cs.iter().map(|c| c.1).sum::<Option<u64>>();
            let ws: u64 = cs.iter().map(|c| c.0.working_set).sum();
            let usage: u64 = cs.iter().map(|c| c.0.usage).sum();
            let rss: u64 = cs.iter().map(|c| c.0.rss).sum();
            let start = cs
                .iter()
                .map(|c| c.0.pod_start_ns)
                .min()
                .unwrap_or_default();
            let containers: Vec<Value> = cs
                .iter()
                .map(|(c, r)| {
                    json!({
                        "name": c.name,
                        "startTime": rfc3339_ns(c.start_ns),
                        "cpu": cpu_json(c.cpu_time_ns, c.cpu_ns, *r),
                        "memory": {
                            "time": rfc3339_precise(c.memory_time_ns),
                            "usageBytes": c.usage,
                            "workingSetBytes": c.working_set,
                            "rssBytes": c.rss,
                        },
                    })
                })
                .collect();
            json!({
                "podRef": {"name": name, "namespace": ns, "uid": uid},
                "startTime": rfc3339_ns(start),
                "containers": containers,
                "cpu": cpu_json(time, cpu, rate),
                "memory": {
                    "time": rfc3339_precise(time),
                    "usageBytes": usage,
                    "workingSetBytes": ws,
                    "rssBytes": rss,
                },
            })
        })
        .collect();
    json!({
        "node": {
            "nodeName": node_name,
            "startTime": rfc3339_ns(node.boot_time * 1_000_000_000),
            "cpu": cpu_json(node.time_ns, node.cpu_ns, node_rate),
            "memory": {
                "time": rfc3339_precise(node.time_ns),
                "availableBytes": mem.total.saturating_sub(mem.working_set()),
                "usageBytes": mem.usage(),
                "workingSetBytes": mem.working_set(),
            },
            "systemContainers": [],
        },
        "pods": pods,
    })
}

/// A float the way Prometheus' Go client prints it (Go's `strconv.FormatFloat(v, 'g', -1,
/// 64)`): shortest digits, exponent form when the exponent is < -4 or >= 6.
pub fn prom_float(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let e = format!("{v:e}");
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

fn label_value(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// The `/metrics/resource` Prometheus text (upstream's resource metrics collector: names,
/// help, types, labels, millisecond timestamps).
pub fn resource_metrics(
    node: &NodeSample,
    containers: &[ContainerSample],
    scrape_error: bool,
) -> String {
    let ms = |ns: i64| ns / 1_000_000;
    let mut out = String::new();
    let header = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {name} [STABLE] {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
    };
    let clabels = |c: &ContainerSample| {
        format!(
            "container=\"{}\",namespace=\"{}\",pod=\"{}\"",
            label_value(&c.name),
            label_value(&c.namespace),
            label_value(&c.pod)
        )
    };
    if !containers.is_empty() {
        header(
            &mut out,
            "container_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the container in core-seconds",
            "counter",
        );
        for c in containers {
            let _ = writeln!(
                out,
                "container_cpu_usage_seconds_total{{{}}} {} {}",
                clabels(c),
                prom_float(c.cpu_ns as f64 / 1e9),
                ms(c.cpu_time_ns)
            );
        }
        header(
            &mut out,
            "container_memory_working_set_bytes",
            "Current working set of the container in bytes",
            "gauge",
        );
        for c in containers {
            let _ = writeln!(
                out,
                "container_memory_working_set_bytes{{{}}} {} {}",
                clabels(c),
                prom_float(c.working_set as f64),
                ms(c.memory_time_ns)
            );
        }
        header(
            &mut out,
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds",
            "gauge",
        );
        for c in containers {
            let _ = writeln!(
                out,
                "container_start_time_seconds{{{}}} {} {}",
                clabels(c),
                prom_float(c.start_ns as f64 / 1e9),
                ms(c.start_ns)
            );
        }
    }
    header(
        &mut out,
        "node_cpu_usage_seconds_total",
        "Cumulative cpu time consumed by the node in core-seconds",
        "counter",
    );
    let _ = writeln!(
        out,
        "node_cpu_usage_seconds_total {} {}",
        prom_float(node.cpu_ns as f64 / 1e9),
        ms(node.time_ns)
    );
    header(
        &mut out,
        "node_memory_working_set_bytes",
        "Current working set of the node in bytes",
        "gauge",
    );
    let _ = writeln!(
        out,
        "node_memory_working_set_bytes {} {}",
        prom_float(node.memory.working_set() as f64),
        ms(node.time_ns)
    );
    if !containers.is_empty() {
        let mut pods: BTreeMap<(&str, &str), (u64, u64, i64, i64)> = BTreeMap::new();
        for c in containers {
            let e = pods.entry((&c.pod, &c.namespace)).or_default();
            e.0 += c.cpu_ns;
            e.1 += c.working_set;
            e.2 = e.2.max(c.cpu_time_ns);
            e.3 = e.3.max(c.memory_time_ns);
        }
        header(
            &mut out,
            "pod_cpu_usage_seconds_total",
            "Cumulative cpu time consumed by the pod in core-seconds",
            "counter",
        );
        for ((pod, ns), (cpu, _, t, _)) in &pods {
            let _ = writeln!(
                out,
                "pod_cpu_usage_seconds_total{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                label_value(ns),
                label_value(pod),
                prom_float(*cpu as f64 / 1e9),
                ms(*t)
            );
        }
        header(
            &mut out,
            "pod_memory_working_set_bytes",
            "Current working set of the pod in bytes",
            "gauge",
        );
        for ((pod, ns), (_, ws, _, t)) in &pods {
            let _ = writeln!(
                out,
                "pod_memory_working_set_bytes{{namespace=\"{}\",pod=\"{}\"}} {} {}",
                label_value(ns),
                label_value(pod),
                prom_float(*ws as f64),
                ms(*t)
            );
        }
    }
    header(
        &mut out,
        "resource_scrape_error",
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    );
    let _ = writeln!(out, "resource_scrape_error {}", u8::from(scrape_error));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_and_meminfo_parse() {
        let stat = "cpu  100 20 30 4000 50 6 7 8 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\nbtime 1765000000\n";
        let (cpu, btime) = parse_proc_stat(stat).unwrap();
        // user+nice+system+irq+softirq+steal = 171 ticks of 10 ms
        assert_eq!(cpu, 1_710_000_000);
        assert_eq!(btime, 1_765_000_000);
        assert!(parse_proc_stat("intr 1 2\n").is_none());
        let mi = parse_meminfo(
            "MemTotal:       1000 kB\nMemFree:         200 kB\nMemAvailable:    600 kB\n\
             Inactive(file):  300 kB\n",
        );
        assert_eq!(mi.total, 1_024_000);
        assert_eq!(mi.usage(), 800 * 1024);
        assert_eq!(mi.working_set(), 500 * 1024);
    }

    #[test]
    fn rates_come_from_the_previous_sample() {
        let mut r = Rates::default();
        assert_eq!(r.observe("c1", 1_000_000_000, 5_000_000), None);
        // 0.5 s of CPU over 2 s = 250 millicores
        assert_eq!(
            r.observe("c1", 3_000_000_000, 505_000_000),
            Some(250_000_000)
        );
        // same timestamp again: no rate, previous kept
        assert_eq!(r.observe("c1", 3_000_000_000, 505_000_000), None);
        assert_eq!(r.observe("c1", 4_000_000_000, 505_000_000), Some(0));
        r.retain(&[]);
        assert_eq!(r.observe("c1", 5_000_000_000, 1), None);
    }

    #[test]
    fn floats_print_like_go() {
        assert_eq!(prom_float(0.0), "0");
        assert_eq!(prom_float(1.318146), "1.318146");
        assert_eq!(prom_float(14045184.0), "1.4045184e+07");
        assert_eq!(prom_float(123456.0), "123456");
        assert_eq!(prom_float(1.7335488e9), "1.7335488e+09");
        assert_eq!(prom_float(1e21), "1e+21");
        assert_eq!(prom_float(0.00001), "1e-05");
        assert_eq!(prom_float(0.0001), "0.0001");
    }

    fn sample(name: &str, pod: &str) -> ContainerSample {
        ContainerSample {
            id: format!("id-{name}"),
            namespace: "default".into(),
            pod: pod.into(),
            pod_uid: format!("uid-{pod}"),
            name: name.into(),
            start_ns: 1_765_000_000_000_000_000,
            pod_start_ns: 1_764_999_999_000_000_000,
            cpu_time_ns: 1_765_000_100_123_456_789,
            cpu_ns: 1_500_000_000,
            memory_time_ns: 1_765_000_100_123_456_789,
            working_set: 2_097_152,
            usage: 3_000_000,
            rss: 1_000_000,
        }
    }

    #[test]
    fn resource_metrics_text_is_upstreams() {
        let node = NodeSample {
            time_ns: 1_765_000_100_000_000_000,
            cpu_ns: 12_500_000_000,
            memory: MemInfo {
                total: 4_000_000_000,
                free: 1_000_000_000,
                available: 2_500_000_000,
                inactive_file: 500_000_000,
            },
            boot_time: 1_764_000_000,
        };
        let text = resource_metrics(
            &node,
            &[sample("web", "web-1"), sample("side", "web-1")],
            false,
        );
        assert!(text.contains(
            "# HELP container_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by \
             the container in core-seconds\n# TYPE container_cpu_usage_seconds_total counter\n\
             container_cpu_usage_seconds_total{container=\"web\",namespace=\"default\",pod=\"web-1\"} 1.5 1765000100123\n"
        ), "{text}");
        assert!(text.contains(
            "container_memory_working_set_bytes{container=\"side\",namespace=\"default\",pod=\"web-1\"} 2.097152e+06 1765000100123\n"
        ));
        assert!(text.contains(
            "container_start_time_seconds{container=\"web\",namespace=\"default\",pod=\"web-1\"} 1.765e+09 1765000000000\n"
        ));
        assert!(text.contains("node_cpu_usage_seconds_total 12.5 1765000100000\n"));
        assert!(text.contains("node_memory_working_set_bytes 2.5e+09 1765000100000\n"));
        assert!(text.contains(
            "pod_cpu_usage_seconds_total{namespace=\"default\",pod=\"web-1\"} 3 1765000100123\n"
        ));
        assert!(text.contains("pod_memory_working_set_bytes{namespace=\"default\",pod=\"web-1\"} 4.194304e+06 1765000100123\n"));
        assert!(text.ends_with("# TYPE resource_scrape_error gauge\nresource_scrape_error 0\n"));
        let empty = resource_metrics(&node, &[], true);
        assert!(!empty.contains("container_"));
        assert!(empty.ends_with("resource_scrape_error 1\n"));
    }

    #[test]
    fn summary_groups_containers_into_pods() {
        let node = NodeSample {
            time_ns: 1_765_000_100_000_000_000,
            cpu_ns: 10,
            memory: MemInfo {
                total: 1000,
                free: 400,
                available: 500,
                inactive_file: 100,
            },
            boot_time: 1_764_000_000,
        };
        let s = summary(
            "n1",
            &node,
            Some(7),
            &[
                (sample("web", "p"), Some(100)),
                (sample("side", "p"), Some(50)),
            ],
        );
        assert_eq!(s["node"]["nodeName"], "n1");
        assert_eq!(s["node"]["cpu"]["usageNanoCores"], 7);
        assert_eq!(s["node"]["memory"]["workingSetBytes"], 500);
        assert_eq!(s["node"]["memory"]["availableBytes"], 500);
        assert_eq!(s["node"]["startTime"], "2025-11-24T16:00:00Z");
        let pods = s["pods"].as_array().unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0]["podRef"]["uid"], "uid-p");
        assert_eq!(pods[0]["cpu"]["usageNanoCores"], 150);
        assert_eq!(pods[0]["cpu"]["usageCoreNanoSeconds"], 3_000_000_000u64);
        assert_eq!(pods[0]["memory"]["workingSetBytes"], 4_194_304);
        assert_eq!(pods[0]["containers"].as_array().unwrap().len(), 2);
        // a container without a rate yet leaves the pod without one
        let s = summary("n1", &node, None, &[(sample("web", "p"), None)]);
        assert!(s["pods"][0]["cpu"].get("usageNanoCores").is_none());
        assert!(s["node"]["cpu"].get("usageNanoCores").is_none());
    }
}
