//! Pure builders of the CRI configs for a pod: the sandbox (metadata, hostname, DNS, host
//! ports, labels) and each container (metadata, command, labels and annotations, log path),
//! plus the container spec hash used to notice spec changes after a restart.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, DnsConfig, ImageSpec, PodSandboxConfig, PodSandboxMetadata,
    PortMapping, Protocol,
};
use k8s_openapi::api::core::v1::{Container, Pod};
use sha2::{Digest, Sha256};

use super::status::pod_labels;

/// Container label with the container's name.
pub const LABEL_CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const ANN_HASH: &str = "io.kubernetes.container.hash";
pub const ANN_RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
pub const ANN_TERMINATION_PATH: &str = "io.kubernetes.container.terminationMessagePath";
pub const ANN_TERMINATION_POLICY: &str = "io.kubernetes.container.terminationMessagePolicy";
pub const ANN_GRACE: &str = "io.kubernetes.pod.terminationGracePeriod";
pub const ANN_TYPE: &str = "io.kubernetes.container.type";

/// Settings the sandbox needs from the kubelet's configuration.
pub struct SandboxEnv<'a> {
    pub cluster_dns: &'a [Ipv4Addr],
    pub cluster_domain: &'a str,
    /// The host's `/etc/resolv.conf` text (for `dnsPolicy: Default` and host-network pods).
    pub host_resolv_conf: &'a str,
    /// `<pod_log_dir>/<ns>_<name>_<uid>`.
    pub log_directory: String,
    pub attempt: u32,
}

/// `<ns>_<name>_<uid>`: the pod's log directory name.
pub fn log_dir_name(pod: &Pod) -> String {
    format!(
        "{}_{}_{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

/// The pod's hostname (none for host-network pods): `spec.hostname` or the pod name cut to
/// 63 characters, or the FQDN with `setHostnameAsFQDN` and a subdomain.
pub fn hostname(pod: &Pod, cluster_domain: &str) -> String {
    let spec = pod.spec.clone().unwrap_or_default();
    if spec.host_network.unwrap_or(false) {
        return String::new();
    }
    let name = spec
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| pod.metadata.name.clone().unwrap_or_default());
    let mut host: String = name.chars().take(63).collect();
    while host.ends_with(['-', '.']) {
        host.pop();
    }
    match spec.subdomain.as_deref() {
        Some(sub) if !sub.is_empty() && spec.set_hostname_as_fqdn.unwrap_or(false) => format!(
            "{host}.{sub}.{}.svc.{cluster_domain}",
            pod.metadata.namespace.as_deref().unwrap_or("default")
        ),
        _ => host,
    }
}

/// Nameservers, searches and options of a resolv.conf text.
pub fn parse_resolv_conf(text: &str) -> DnsConfig {
    let mut dns = DnsConfig::default();
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => dns.servers.extend(words.next().map(str::to_string)),
            Some("search") | Some("domain") => {
                dns.searches = words.map(str::to_string).collect();
            }
            Some("options") => dns.options.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    dns
}

fn merge_option(options: &mut Vec<String>, opt: String) {
    let key = opt.split(':').next().unwrap_or("").to_string();
    options.retain(|o| o.split(':').next() != Some(key.as_str()));
    options.push(opt);
}

/// The pod's DNS config by `dnsPolicy` (upstream `pkg/kubelet/network/dns`), with
/// `spec.dnsConfig` merged in.
pub fn dns_config(pod: &Pod, env: &SandboxEnv<'_>) -> DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let host = parse_resolv_conf(env.host_resolv_conf);
    let cluster =
        policy == "ClusterFirstWithHostNet" || (policy == "ClusterFirst" && !host_network);
    let mut dns = match policy {
        "None" => DnsConfig::default(),
        _ if cluster && !env.cluster_dns.is_empty() => {
            let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
            let d = env.cluster_domain;
            let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.to_string()];
            searches.extend(
                host.searches
                    .iter()
                    .filter(|s| !searches.contains(s))
                    .cloned()
                    .collect::<Vec<_>>(),
            );
            DnsConfig {
                servers: env.cluster_dns.iter().map(|ip| ip.to_string()).collect(),
                searches,
                options: vec!["ndots:5".into()],
            }
        }
        _ => host,
    };
    if let Some(pc) = &spec.dns_config {
        for s in pc.nameservers.iter().flatten() {
            if !dns.servers.contains(s) {
                dns.servers.push(s.clone());
            }
        }
        for s in pc.searches.iter().flatten() {
            if !dns.searches.contains(s) {
                dns.searches.push(s.clone());
            }
        }
        for o in pc.options.iter().flatten() {
            let opt = match &o.value {
                Some(v) => format!("{}:{v}", o.name.as_deref().unwrap_or_default()),
                None => o.name.clone().unwrap_or_default(),
            };
            merge_option(&mut dns.options, opt);
        }
    }
    dns.servers.truncate(3);
    dns.searches.truncate(32);
    dns
}

/// Port mappings for every container port with a hostPort.
pub fn port_mappings(pod: &Pod) -> Vec<PortMapping> {
    let spec = pod.spec.clone().unwrap_or_default();
    spec.containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| PortMapping {
            protocol: match p.protocol.as_deref() {
                Some("UDP") => Protocol::Udp,
                Some("SCTP") => Protocol::Sctp,
                _ => Protocol::Tcp,
            } as i32,
            container_port: p.container_port,
            host_port: p.host_port.unwrap_or(0),
            host_ip: p.host_ip.clone().unwrap_or_default(),
        })
        .collect()
}

/// The sandbox config, without its `linux` part (see `linux::sandbox_config`).
pub fn sandbox_config(pod: &Pod, env: &SandboxEnv<'_>) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            attempt: env.attempt,
        }),
        hostname: hostname(pod, env.cluster_domain),
        log_directory: env.log_directory.clone(),
        dns_config: Some(dns_config(pod, env)),
        port_mappings: port_mappings(pod),
        labels: pod_labels(pod).into_iter().collect(),
        annotations: pod
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        linux: None,
        windows: None,
    }
}

/// A short, stable hash of the container spec (`io.kubernetes.container.hash`).
pub fn container_hash(c: &Container) -> String {
    let bytes = serde_json::to_vec(c).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..4])
}

/// Which kind of container a spec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Init,
    Regular,
}

/// The container config, without envs, mounts and `linux` (filled in by the caller).
pub fn container_config(
    pod: &Pod,
    c: &Container,
    kind: Kind,
    restart_count: i32,
    image_ref: &str,
) -> ContainerConfig {
    let mut labels: HashMap<String, String> = [
        (
            super::LABEL_POD_NAME,
            pod.metadata.name.clone().unwrap_or_default(),
        ),
        (
            super::LABEL_POD_NAMESPACE,
            pod.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            super::LABEL_POD_UID,
            pod.metadata.uid.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    labels.insert(LABEL_CONTAINER_NAME.into(), c.name.clone());
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .unwrap_or(30);
    let annotations: HashMap<String, String> = [
        (ANN_HASH, container_hash(c)),
        (ANN_RESTART_COUNT, restart_count.to_string()),
        (
            ANN_TERMINATION_PATH,
            c.termination_message_path
                .clone()
                .unwrap_or_else(|| "/dev/termination-log".into()),
        ),
        (
            ANN_TERMINATION_POLICY,
            c.termination_message_policy
                .clone()
                .unwrap_or_else(|| "File".into()),
        ),
        (ANN_GRACE, grace.to_string()),
        (
            ANN_TYPE,
            match kind {
                Kind::Init => "init",
                Kind::Regular => "container",
            }
            .to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: c.name.clone(),
            attempt: restart_count.max(0) as u32,
        }),
        image: Some(ImageSpec {
            image: image_ref.to_string(),
            user_specified_image: c.image.clone().unwrap_or_default(),
            ..Default::default()
        }),
        command: c.command.clone().unwrap_or_default(),
        args: c.args.clone().unwrap_or_default(),
        working_dir: c.working_dir.clone().unwrap_or_default(),
        labels,
        annotations,
        log_path: format!("{}/{}.log", c.name, restart_count),
        stdin: c.stdin.unwrap_or(false),
        stdin_once: c.stdin_once.unwrap_or(false),
        tty: c.tty.unwrap_or(false),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"},
                         "annotations": {"a": "b"}},
            "spec": spec,
        }))
        .unwrap()
    }

    fn env<'a>(dns: &'a [Ipv4Addr], host: &'a str) -> SandboxEnv<'a> {
        SandboxEnv {
            cluster_dns: dns,
            cluster_domain: "cluster.local",
            host_resolv_conf: host,
            log_directory: "/var/log/pods/shop_web-1_u-1".into(),
            attempt: 0,
        }
    }

    const HOST: &str = "# host\nnameserver 10.255.255.53\nsearch corp.example\noptions edns0\n";
    const DNS: [Ipv4Addr; 1] = [Ipv4Addr::new(10, 43, 0, 10)];

    #[test]
    fn cluster_first_uses_cluster_dns_and_namespace_searches() {
        let p = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        let d = dns_config(&p, &env(&DNS, HOST));
        assert_eq!(d.servers, vec!["10.43.0.10"]);
        assert_eq!(
            d.searches,
            vec![
                "shop.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(d.options, vec!["ndots:5"]);
    }

    #[test]
    fn host_network_cluster_first_falls_back_to_the_host_unless_with_host_net() {
        let p = pod(serde_json::json!({"hostNetwork": true, "containers": [{"name": "c"}]}));
        let d = dns_config(&p, &env(&DNS, HOST));
        assert_eq!(d.servers, vec!["10.255.255.53"]);
        assert_eq!(d.options, vec!["edns0"]);
        let p = pod(
            serde_json::json!({"hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet",
            "containers": [{"name": "c"}]}),
        );
        assert_eq!(dns_config(&p, &env(&DNS, HOST)).servers, vec!["10.43.0.10"]);
        assert_eq!(hostname(&p, "cluster.local"), "");
    }

    #[test]
    fn none_policy_takes_only_the_pod_dns_config_and_options_override() {
        let p = pod(serde_json::json!({"dnsPolicy": "None", "dnsConfig": {
            "nameservers": ["1.2.3.4"], "searches": ["a.b"],
            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]},
            "containers": [{"name": "c"}]}));
        let d = dns_config(&p, &env(&DNS, HOST));
        assert_eq!(d.servers, vec!["1.2.3.4"]);
        assert_eq!(d.searches, vec!["a.b"]);
        assert_eq!(d.options, vec!["ndots:2", "edns0"]);
        let p = pod(
            serde_json::json!({"dnsConfig": {"options": [{"name": "ndots", "value": "1"}]},
            "containers": [{"name": "c"}]}),
        );
        assert_eq!(dns_config(&p, &env(&DNS, HOST)).options, vec!["ndots:1"]);
    }

    #[test]
    fn hostnames_follow_spec_hostname_and_fqdn_rules() {
        let p = pod(serde_json::json!({"containers": [{"name": "c"}]}));
        assert_eq!(hostname(&p, "cluster.local"), "web-1");
        let p = pod(serde_json::json!({"hostname": "db-0", "subdomain": "db",
            "containers": [{"name": "c"}]}));
        assert_eq!(hostname(&p, "cluster.local"), "db-0");
        let p = pod(serde_json::json!({"hostname": "db-0", "subdomain": "db",
            "setHostnameAsFQDN": true, "containers": [{"name": "c"}]}));
        assert_eq!(
            hostname(&p, "cluster.local"),
            "db-0.db.shop.svc.cluster.local"
        );
        let long = format!("{}-x", "a".repeat(62));
        let p = pod(serde_json::json!({"hostname": long, "containers": [{"name": "c"}]}));
        assert_eq!(hostname(&p, "cluster.local"), "a".repeat(62));
    }

    #[test]
    fn sandbox_config_carries_labels_ports_and_log_dir() {
        let p = pod(serde_json::json!({"containers": [{"name": "c", "ports": [
            {"containerPort": 80, "hostPort": 8080},
            {"containerPort": 53, "hostPort": 5353, "protocol": "UDP", "hostIP": "127.0.0.1"},
            {"containerPort": 9090}]}]}));
        let cfg = sandbox_config(&p, &env(&DNS, HOST));
        assert_eq!(cfg.metadata.as_ref().unwrap().uid, "u-1");
        assert_eq!(cfg.labels["io.kubernetes.pod.uid"], "u-1");
        assert_eq!(cfg.labels["io.kubernetes.pod.namespace"], "shop");
        assert_eq!(cfg.labels["app"], "web");
        assert_eq!(cfg.annotations["a"], "b");
        assert_eq!(cfg.log_directory, "/var/log/pods/shop_web-1_u-1");
        assert_eq!(cfg.port_mappings.len(), 2);
        assert_eq!(cfg.port_mappings[1].protocol, Protocol::Udp as i32);
        assert_eq!(cfg.port_mappings[1].host_ip, "127.0.0.1");
        assert_eq!(log_dir_name(&p), "shop_web-1_u-1");
    }

    #[test]
    fn container_config_has_attempt_log_path_and_annotations() {
        let p = pod(serde_json::json!({"terminationGracePeriodSeconds": 5,
            "containers": [{"name": "web", "image": "busybox", "command": ["sh"], "args": ["-c", "x"]}]}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let cfg = container_config(&p, c, Kind::Regular, 3, "sha256:abc");
        assert_eq!(cfg.metadata.as_ref().unwrap().attempt, 3);
        assert_eq!(cfg.log_path, "web/3.log");
        assert_eq!(cfg.labels[LABEL_CONTAINER_NAME], "web");
        assert_eq!(cfg.labels["io.kubernetes.pod.uid"], "u-1");
        assert_eq!(cfg.annotations[ANN_RESTART_COUNT], "3");
        assert_eq!(cfg.annotations[ANN_GRACE], "5");
        assert_eq!(cfg.annotations[ANN_HASH], container_hash(c));
        assert_eq!(cfg.image.as_ref().unwrap().image, "sha256:abc");
        assert_eq!(cfg.command, vec!["sh"]);
        let mut changed = c.clone();
        changed.image = Some("busybox:2".into());
        assert_ne!(container_hash(&changed), container_hash(c));
    }
}
