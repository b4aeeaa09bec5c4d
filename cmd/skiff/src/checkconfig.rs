//! `skiff check-config`: whether this host has what skiff needs (kernel options and modules,
//! cgroup controllers, containerd/runc/CNI plugins, nft/iptables, forwarding, swap), printed
//! one line per check in k3s's check-config shape, failing when a required item is missing.
//! [`gather`] reads the facts from /proc, /sys and PATH; [`evaluate`] and [`render`] are pure.

use anyhow::{bail, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What was read from the host.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Where the kernel config came from and its `CONFIG_X` → `y`/`m` entries.
    pub kernel_config: Option<(String, BTreeMap<String, String>)>,
    /// Modules loaded now (/proc/modules) or available (builtin or in modules.dep).
    pub modules: BTreeSet<String>,
    /// File systems the kernel knows (/proc/filesystems).
    pub filesystems: BTreeSet<String>,
    pub cgroup: Cgroups,
    /// Binary name → (path, first line of its `--version`), `None` when not on PATH.
    pub binaries: BTreeMap<String, Option<(PathBuf, String)>>,
    /// The CNI plugin directory found and the plugins in it.
    pub cni: Option<(PathBuf, BTreeSet<String>)>,
    /// `/proc/sys/net/ipv4/ip_forward`.
    pub ip_forward: Option<String>,
    /// Active swap areas (/proc/swaps minus its header).
    pub swaps: usize,
    /// The ports skiff listens on ([`PORTS`]) and whether they could be bound now.
    pub ports: Vec<(u16, &'static str, bool)>,
}

/// The cgroup setup.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Cgroups {
    #[default]
    None,
    /// v1 (or hybrid): enabled controllers from /proc/cgroups.
    V1(BTreeSet<String>),
    /// v2: controllers from /sys/fs/cgroup/cgroup.controllers.
    V2(BTreeSet<String>),
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Ok(String),
    /// Worth knowing, never fails the run.
    Warn(String),
    /// Missing: what it is, and the fix.
    Fail(String, String),
}

/// One check, in its section.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub section: &'static str,
    pub name: String,
    pub state: State,
    /// Only a failed required check fails the run.
    pub required: bool,
}

/// Kernel options: (option, module that provides it, what needs it).
const NECESSARY: &[(&str, &str, &str)] = &[
    ("CONFIG_NAMESPACES", "", "containers"),
    ("CONFIG_NET_NS", "", "pod networks"),
    ("CONFIG_PID_NS", "", "containers"),
    ("CONFIG_IPC_NS", "", "containers"),
    ("CONFIG_UTS_NS", "", "containers"),
    ("CONFIG_CGROUPS", "", "containers"),
    ("CONFIG_CGROUP_CPUACCT", "", "pod CPU accounting"),
    ("CONFIG_CGROUP_DEVICE", "", "containers"),
    ("CONFIG_CGROUP_FREEZER", "", "containers"),
    ("CONFIG_CGROUP_SCHED", "", "pod CPU limits"),
    ("CONFIG_CPUSETS", "", "containers"),
    ("CONFIG_MEMCG", "", "pod memory limits and eviction"),
    ("CONFIG_KEYS", "", "containers"),
    ("CONFIG_VETH", "veth", "pod interfaces"),
    ("CONFIG_BRIDGE", "bridge", "the cni0 bridge"),
    (
        "CONFIG_BRIDGE_NETFILTER",
        "br_netfilter",
        "Services between pods on one node",
    ),
    ("CONFIG_NF_CONNTRACK", "nf_conntrack", "Services"),
    ("CONFIG_NF_NAT", "nf_nat", "Services and masquerading"),
    (
        "CONFIG_NF_TABLES",
        "nf_tables",
        "the nftables service proxy",
    ),
    ("CONFIG_NFT_NAT", "nft_nat", "the nftables service proxy"),
    (
        "CONFIG_NFT_MASQ",
        "nft_masq",
        "pod traffic leaving the node",
    ),
    ("CONFIG_NFT_CT", "nft_ct", "the nftables service proxy"),
    ("CONFIG_POSIX_MQUEUE", "", "containers"),
];

const OPTIONAL: &[(&str, &str, &str)] = &[
    ("CONFIG_USER_NS", "", "user namespaces"),
    ("CONFIG_SECCOMP", "", "seccomp profiles"),
    ("CONFIG_CGROUP_PIDS", "", "pod PID limits"),
    (
        "CONFIG_NFT_REJECT",
        "nft_reject",
        "rejecting Service traffic without endpoints",
    ),
    ("CONFIG_NFT_NUMGEN", "nft_numgen", "Service load balancing"),
    (
        "CONFIG_DUMMY",
        "dummy",
        "the cluster DNS address (skiff uses lo without it)",
    ),
];

const NETWORK: &[(&str, &str, &str)] = &[(
    "CONFIG_VXLAN",
    "vxlan",
    "the vxlan pod network (--flannel-backend vxlan)",
)];
const STORAGE: &[(&str, &str, &str)] = &[(
    "CONFIG_OVERLAY_FS",
    "overlay",
    "containerd's overlayfs snapshotter",
)];

/// Binaries: (name, required, what it is for).
const BINARIES: &[(&str, bool, &str)] = &[
    ("containerd", true, "the container runtime"),
    (
        "runc",
        true,
        "the OCI runtime containerd runs containers with",
    ),
    ("containerd-shim-runc-v2", true, "containerd's runc shim"),
    ("nft", true, "the service proxy and pod network rules"),
    ("ip", true, "iproute2"),
    ("iptables", false, "only for tools that still use iptables"),
    ("conntrack", false, "clearing stale UDP Service flows"),
];

/// Ports skiff listens on: (port, protocol, what).
pub const PORTS: &[(u16, &str, &str)] = &[
    (6443, "tcp", "the API server (--https-listen-port)"),
    (10250, "tcp", "the kubelet API (--kubelet-port)"),
    (8472, "udp", "the vxlan pod network"),
];

/// CNI plugins the generated conflist uses.
pub const CNI_PLUGINS: &[&str] = &["bridge", "host-local", "loopback", "portmap"];

/// Where skiff looks for CNI plugins, in order (as the agent does).
pub const CNI_DIRS: &[&str] = &["/usr/lib/cni", "/opt/cni/bin"];

fn package_hint(bin: &str) -> &'static str {
    match bin {
        "containerd" | "containerd-shim-runc-v2" => {
            "install containerd (apt-get install containerd)"
        }
        "runc" => "install runc (apt-get install runc)",
        "nft" => "install nftables (apt-get install nftables)",
        "ip" => "install iproute2 (apt-get install iproute2)",
        "iptables" => "install iptables (apt-get install iptables)",
        "conntrack" => "install conntrack (apt-get install conntrack)",
        _ => "install it",
    }
}

fn kernel_option(
    f: &Facts,
    section: &'static str,
    required: bool,
    opt: &str,
    module: &str,
    why: &str,
) -> Check {
    let fix = if module.is_empty() {
        format!("needed for {why}: use a kernel built with {opt}")
    } else {
        format!(
            "needed for {why}: load it with `modprobe {module}` or use a kernel built with {opt}"
        )
    };
    let evidence = !module.is_empty()
        && (f.modules.contains(module)
            || (module == "overlay" && f.filesystems.contains("overlay")));
    let state = match &f.kernel_config {
        Some((_, cfg)) => match cfg.get(opt).map(String::as_str) {
            Some("y") => State::Ok("enabled".into()),
            Some("m") if evidence => State::Ok("enabled (as module)".into()),
            Some("m") => State::Ok("enabled (as module, not loaded yet)".into()),
            _ => State::Fail("missing".into(), fix),
        },
        None if evidence => State::Ok("enabled".into()),
        None => State::Warn("unknown (no kernel config to read)".into()),
    };
    Check {
        section,
        name: opt.to_string(),
        state,
        required,
    }
}

/// Every check for `facts`, in output order.
pub fn evaluate(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    for (bin, required, why) in BINARIES {
        let state = match f.binaries.get(*bin).cloned().flatten() {
            Some((path, version)) if version.is_empty() => State::Ok(path.display().to_string()),
            Some((path, version)) => State::Ok(format!("{} ({version})", path.display())),
            None => State::Fail(
                "not found on PATH".into(),
                format!("{} — {why}", package_hint(bin)),
            ),
        };
        out.push(Check {
            section: "System",
            name: bin.to_string(),
            state,
            required: *required,
        });
    }
    let cni_name = format!("CNI plugins ({})", CNI_PLUGINS.join(", "));
    let cni_state = match &f.cni {
        Some((dir, have)) => {
            let missing: Vec<&str> = CNI_PLUGINS
                .iter()
                .copied()
                .filter(|p| !have.contains(*p))
                .collect();
            if missing.is_empty() {
                State::Ok(dir.display().to_string())
            } else {
                State::Fail(
                    format!("{} lacks {}", dir.display(), missing.join(", ")),
                    "install containernetworking-plugins".into(),
                )
            }
        }
        None => State::Fail(
            format!("none of {} exists", CNI_DIRS.join(", ")),
            "install containernetworking-plugins (apt-get install containernetworking-plugins)"
                .into(),
        ),
    };
    out.push(Check {
        section: "System",
        name: cni_name,
        state: cni_state,
        required: true,
    });
    for (port, proto, free) in &f.ports {
        let what = PORTS
            .iter()
            .find(|(p, pr, _)| p == port && pr == proto)
            .map_or("skiff", |(_, _, w)| *w);
        out.push(Check {
            section: "System",
            name: format!("port {port}/{proto}"),
            // A running skiff holds its own ports: worth a note, never a failure.
            state: if *free {
                State::Ok("free".into())
            } else {
                State::Warn(format!(
                    "in use: fine if skiff is running here, else stop the program holding it (needed for {what})"
                ))
            },
            required: false,
        });
    }
    out.push(Check {
        section: "System",
        name: "swap".into(),
        state: if f.swaps == 0 {
            State::Ok("disabled".into())
        } else {
            State::Warn(format!(
                "should be disabled ({} swap areas active; memory eviction cannot see swapped pages): swapoff -a",
                f.swaps
            ))
        },
        required: false,
    });
    out.push(Check {
        section: "System",
        name: "/proc/sys/net/ipv4/ip_forward".into(),
        state: match f.ip_forward.as_deref() {
            Some("1") => State::Ok("1".into()),
            Some(v) => State::Ok(format!("{v} (the agent sets it to 1 when it starts)")),
            None => State::Fail(
                "unreadable".into(),
                "mount /proc and use a kernel with IPv4 forwarding".into(),
            ),
        },
        required: true,
    });

    let cg = "Generally Necessary";
    let needed = ["cpu", "cpuset", "memory"];
    let (kind, have) = match &f.cgroup {
        Cgroups::None => ("", BTreeSet::new()),
        Cgroups::V1(c) => ("cgroups V1 mounted", c.clone()),
        Cgroups::V2(c) => ("cgroups V2 mounted", c.clone()),
    };
    let missing: Vec<&str> = needed
        .iter()
        .copied()
        .filter(|c| !have.contains(*c))
        .collect();
    let state = if kind.is_empty() {
        State::Fail(
            "no cgroup file system".into(),
            "mount cgroup2 on /sys/fs/cgroup (or the v1 hierarchies)".into(),
        )
    } else if missing.is_empty() {
        State::Ok(format!(
            "{kind}, {} controllers status: good",
            needed.join("|")
        ))
    } else {
        State::Fail(
            format!("{kind}, missing controllers: {}", missing.join("|")),
            "enable them on the kernel command line (e.g. cgroup_enable=memory cgroup_memory=1 on Raspberry Pi) and reboot"
                .into(),
        )
    };
    out.push(Check {
        section: cg,
        name: "cgroup hierarchy".into(),
        state,
        required: true,
    });
    for (opt, module, why) in NECESSARY {
        out.push(kernel_option(f, cg, true, opt, module, why));
    }
    for (opt, module, why) in OPTIONAL {
        out.push(kernel_option(
            f,
            "Optional Features",
            false,
            opt,
            module,
            why,
        ));
    }
    for (opt, module, why) in NETWORK {
        out.push(kernel_option(f, "Network Drivers", true, opt, module, why));
    }
    for (opt, module, why) in STORAGE {
        out.push(kernel_option(f, "Storage Drivers", true, opt, module, why));
    }
    out
}

/// The report (k3s's layout: sections, `- name: state` lines, `STATUS: pass` or
/// `STATUS: N (fail)`) and how many required checks failed.
pub fn render(f: &Facts, checks: &[Check]) -> (String, usize) {
    let mut s = String::new();
    let mut section = "";
    let mut failed = 0;
    for c in checks {
        if c.section != section {
            if !section.is_empty() {
                s.push('\n');
            }
            if c.section == "Generally Necessary" {
                match &f.kernel_config {
                    Some((src, _)) => s.push_str(&format!("info: reading kernel config from {src} ...\n\n")),
                    None => s.push_str(
                        "warning: no kernel config found (/proc/config.gz, /boot/config-<release>): kernel options are judged from loaded modules only\n\n",
                    ),
                }
            }
            section = c.section;
            s.push_str(section);
            s.push_str(":\n");
        }
        let line = match &c.state {
            State::Ok(d) => format!("- {}: {d}", c.name),
            State::Warn(d) => format!("- {}: {d}", c.name),
            State::Fail(d, fix) if c.required => {
                failed += 1;
                format!("- {}: {d} (fail: {fix})", c.name)
            }
            State::Fail(d, fix) => format!("- {}: {d} (optional: {fix})", c.name),
        };
        s.push_str(&line);
        s.push('\n');
    }
    s.push('\n');
    if failed == 0 {
        s.push_str("STATUS: pass\n");
    } else {
        s.push_str(&format!("STATUS: {failed} (fail)\n"));
    }
    (s, failed)
}

/// Parses `CONFIG_X=y|m` lines.
pub fn parse_kernel_config(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| k.starts_with("CONFIG_"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

/// Module names from /proc/modules, modules.builtin or modules.dep text (`-` as `_`).
pub fn parse_module_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split([' ', ':']).next())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let base = w.rsplit('/').next().unwrap_or(w);
            let base = base.split(".ko").next().unwrap_or(base);
            base.replace('-', "_")
        })
        .collect()
}

fn read_kernel_config(release: &str) -> Option<(String, BTreeMap<String, String>)> {
    if let Ok(f) = std::fs::File::open("/proc/config.gz") {
        let mut text = String::new();
        if flate2::read::GzDecoder::new(f)
            .read_to_string(&mut text)
            .is_ok()
        {
            return Some(("/proc/config.gz".into(), parse_kernel_config(&text)));
        }
    }
    let boot = format!("/boot/config-{release}");
    let text = std::fs::read_to_string(&boot).ok()?;
    Some((boot, parse_kernel_config(&text)))
}

fn find_on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

fn version_of(path: &Path, bin: &str) -> String {
    let flag = if bin == "ip" { "-V" } else { "--version" };
    if matches!(bin, "containerd-shim-runc-v2" | "conntrack") {
        return String::new();
    }
    std::process::Command::new(path)
        .arg(flag)
        .stdin(std::process::Stdio::null())
        .output()
        .ok()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// Reads the facts from this host.
pub fn gather() -> Facts {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let mut modules =
        parse_module_names(&std::fs::read_to_string("/proc/modules").unwrap_or_default());
    for f in ["modules.builtin", "modules.dep"] {
        let p = Path::new("/lib/modules").join(&release).join(f);
        modules.extend(parse_module_names(
            &std::fs::read_to_string(p).unwrap_or_default(),
        ));
    }
    let filesystems = std::fs::read_to_string("/proc/filesystems")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    let cgroup = match std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers") {
        Ok(c) => Cgroups::V2(c.split_whitespace().map(str::to_string).collect()),
        Err(_) => match std::fs::read_to_string("/proc/cgroups") {
            Ok(t) => Cgroups::V1(
                t.lines()
                    .filter(|l| !l.starts_with('#'))
                    .filter_map(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        (f.len() >= 4 && f[3] == "1").then(|| f[0].to_string())
                    })
                    .collect(),
            ),
            Err(_) => Cgroups::None,
        },
    };
    let binaries = BINARIES
        .iter()
        .map(|(b, _, _)| {
            let found = find_on_path(b).map(|p| {
                let v = version_of(&p, b);
                (p, v)
            });
            (b.to_string(), found)
        })
        .collect();
    let cni = CNI_DIRS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .map(|d| {
            let have = std::fs::read_dir(&d)
                .map(|rd| {
                    rd.filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            (d, have)
        });
    let swaps = std::fs::read_to_string("/proc/swaps")
        .map(|t| t.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0);
    Facts {
        kernel_config: read_kernel_config(&release),
        modules,
        filesystems,
        cgroup,
        binaries,
        cni,
        ip_forward: std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .ok()
            .map(|s| s.trim().to_string()),
        swaps,
        ports: PORTS
            .iter()
            .map(|(port, proto, _)| {
                let addr = std::net::SocketAddr::from(([0, 0, 0, 0], *port));
                let free = if *proto == "udp" {
                    std::net::UdpSocket::bind(addr).is_ok()
                } else {
                    std::net::TcpListener::bind(addr).is_ok()
                };
                (*port, *proto, free)
            })
            .collect(),
    }
}

/// Runs `skiff check-config`: prints the report; an error when a required item is missing.
pub fn run() -> Result<()> {
    let facts = gather();
    let checks = evaluate(&facts);
    let (text, failed) = render(&facts, &checks);
    print!("{text}");
    if failed > 0 {
        bail!("{failed} required item(s) missing: fix the lines marked `fail` above and run `skiff check-config` again");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good_host() -> Facts {
        let mut cfg: BTreeMap<String, String> = NECESSARY
            .iter()
            .chain(OPTIONAL)
            .chain(NETWORK)
            .chain(STORAGE)
            .map(|(o, _, _)| (o.to_string(), "y".to_string()))
            .collect();
        cfg.insert("CONFIG_VXLAN".into(), "m".into());
        Facts {
            kernel_config: Some(("/proc/config.gz".into(), cfg)),
            modules: ["vxlan".to_string()].into(),
            filesystems: ["overlay".to_string()].into(),
            cgroup: Cgroups::V2(["cpu", "cpuset", "memory", "pids"].map(String::from).into()),
            binaries: BINARIES
                .iter()
                .map(|(b, _, _)| {
                    (
                        b.to_string(),
                        Some((PathBuf::from(format!("/usr/bin/{b}")), String::new())),
                    )
                })
                .collect(),
            cni: Some((
                PathBuf::from("/usr/lib/cni"),
                CNI_PLUGINS.iter().map(|s| s.to_string()).collect(),
            )),
            ip_forward: Some("0".into()),
            swaps: 0,
            ports: vec![(6443, "tcp", true), (8472, "udp", false)],
        }
    }

    fn line<'a>(text: &'a str, name: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(&format!("- {name}:")))
            .unwrap_or_else(|| panic!("no line for {name} in\n{text}"))
    }

    #[test]
    fn a_good_host_passes_with_one_line_per_check() {
        let f = good_host();
        let checks = evaluate(&f);
        let (text, failed) = render(&f, &checks);
        assert_eq!(failed, 0, "{text}");
        assert!(text.ends_with("STATUS: pass\n"), "{text}");
        assert!(text.contains("info: reading kernel config from /proc/config.gz"));
        for section in [
            "System:",
            "Generally Necessary:",
            "Optional Features:",
            "Network Drivers:",
            "Storage Drivers:",
        ] {
            assert!(text.lines().any(|l| l == section), "{section} in\n{text}");
        }
        assert_eq!(
            line(&text, "CONFIG_VXLAN"),
            "- CONFIG_VXLAN: enabled (as module)"
        );
        assert_eq!(line(&text, "CONFIG_MEMCG"), "- CONFIG_MEMCG: enabled");
        assert_eq!(
            line(&text, "cgroup hierarchy"),
            "- cgroup hierarchy: cgroups V2 mounted, cpu|cpuset|memory controllers status: good"
        );
        assert!(line(&text, "/proc/sys/net/ipv4/ip_forward").contains("the agent sets it"));
        assert_eq!(line(&text, "port 6443/tcp"), "- port 6443/tcp: free");
        assert!(line(&text, "port 8472/udp")
            .starts_with("- port 8472/udp: in use: fine if skiff is running"));
        assert_eq!(
            text.lines().filter(|l| l.starts_with("- ")).count(),
            checks.len()
        );
    }

    #[test]
    fn missing_required_items_fail_with_their_fix() {
        let mut f = good_host();
        if let Some((_, cfg)) = &mut f.kernel_config {
            cfg.remove("CONFIG_BRIDGE_NETFILTER");
            cfg.remove("CONFIG_USER_NS");
        }
        f.cgroup = Cgroups::V1(["cpu", "cpuset"].map(String::from).into());
        f.binaries.insert("runc".into(), None);
        f.binaries.insert("iptables".into(), None);
        f.cni = Some((PathBuf::from("/opt/cni/bin"), ["bridge".to_string()].into()));
        f.swaps = 1;
        let (text, failed) = render(&f, &evaluate(&f));
        assert_eq!(failed, 4, "{text}");
        assert!(text.ends_with("STATUS: 4 (fail)\n"), "{text}");
        let br = line(&text, "CONFIG_BRIDGE_NETFILTER");
        assert!(
            br.contains("missing (fail:") && br.contains("modprobe br_netfilter"),
            "{br}"
        );
        assert!(line(&text, "runc").contains("apt-get install runc"));
        assert!(line(&text, "cgroup hierarchy").contains("missing controllers: memory"));
        assert!(
            line(&text, "CNI plugins (bridge, host-local, loopback, portmap)")
                .contains("lacks host-local, loopback, portmap")
        );
        // Optional ones are reported, not counted.
        assert!(line(&text, "CONFIG_USER_NS").contains("(optional:"));
        assert!(line(&text, "iptables").contains("(optional:"));
        assert!(line(&text, "swap").contains("should be disabled"));
    }

    #[test]
    fn without_a_kernel_config_modules_decide_and_nothing_is_guessed_missing() {
        let mut f = good_host();
        f.kernel_config = None;
        f.modules = ["br_netfilter".to_string()].into();
        let (text, failed) = render(&f, &evaluate(&f));
        assert_eq!(failed, 0, "{text}");
        assert!(text.contains("warning: no kernel config found"));
        assert_eq!(
            line(&text, "CONFIG_BRIDGE_NETFILTER"),
            "- CONFIG_BRIDGE_NETFILTER: enabled"
        );
        assert_eq!(
            line(&text, "CONFIG_OVERLAY_FS"),
            "- CONFIG_OVERLAY_FS: enabled"
        );
        assert!(line(&text, "CONFIG_VXLAN").contains("unknown"));
    }

    #[test]
    fn kernel_config_and_module_lists_parse() {
        let cfg = parse_kernel_config(
            "# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"x\"\n",
        );
        assert_eq!(cfg.get("CONFIG_A").map(String::as_str), Some("y"));
        assert_eq!(cfg.get("CONFIG_B").map(String::as_str), Some("m"));
        assert!(!cfg.contains_key("CONFIG_C"));
        let m = parse_module_names(
            "br_netfilter 32768 0 - Live 0x0\nkernel/drivers/net/vxlan/vxlan.ko.xz: kernel/net/ipv4/udp_tunnel.ko\nkernel/fs/overlayfs/overlay.ko\nnf-tables 1 0\n",
        );
        assert!(
            m.contains("br_netfilter")
                && m.contains("vxlan")
                && m.contains("overlay")
                && m.contains("nf_tables"),
            "{m:?}"
        );
    }
}
