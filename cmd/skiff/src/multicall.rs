//! Multi-call: `skiff kubectl|crictl|ctr …` and the `kubectl`/`crictl`/`ctr` symlinks the
//! installer makes run the system's tool pointed at this node (admin kubeconfig, skiff's
//! containerd socket), as k3s does with its bundled tools.
//!
//! skiff does not bundle the tools: it finds the real program on `PATH` (skipping itself, so a
//! symlink to skiff never calls itself) and execs it with the environment filled in.

use anyhow::{bail, Result};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// A tool skiff can stand in for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Kubectl,
    Crictl,
    Ctr,
}

impl Tool {
    fn from_name(name: &OsStr) -> Option<Tool> {
        match name.to_str()? {
            "kubectl" => Some(Tool::Kubectl),
            "crictl" => Some(Tool::Crictl),
            "ctr" => Some(Tool::Ctr),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl",
            Tool::Crictl => "crictl",
            Tool::Ctr => "ctr",
        }
    }

    /// The Debian package that ships the real program.
    fn package(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl (https://kubernetes.io/docs/tasks/tools/)",
            Tool::Crictl => "cri-tools (crictl)",
            Tool::Ctr => "containerd",
        }
    }
}

/// Which tool this invocation asks for and its arguments: through a symlink named after the
/// tool (`kubectl get nodes`), or as a skiff subcommand (`skiff kubectl get nodes`).
pub fn dispatch(argv: &[OsString]) -> Option<(Tool, Vec<OsString>)> {
    let arg0 = Path::new(argv.first()?).file_name()?;
    if let Some(tool) = Tool::from_name(arg0) {
        return Some((tool, argv[1..].to_vec()));
    }
    let tool = Tool::from_name(argv.get(1)?)?;
    Some((tool, argv[2..].to_vec()))
}

/// What to run: the program and the variables to set.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    pub program: PathBuf,
    pub env: Vec<(&'static str, OsString)>,
}

/// The facts a plan depends on, gathered by [`run`] and given by tests.
pub struct Facts<'a> {
    /// Reads an environment variable.
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
    /// Whether a file exists.
    pub exists: &'a dyn Fn(&Path) -> bool,
    /// The real program, if one other than skiff is on PATH.
    pub program: Option<PathBuf>,
    /// skiff's data dir (`$SKIFF_DATA_DIR`, else /var/lib/skiff as root, ~/.skiff otherwise).
    pub data_dir: PathBuf,
}

/// Plans the exec; the error says what to install or which file is missing.
pub fn plan(tool: Tool, facts: &Facts<'_>) -> Result<Plan> {
    let Some(program) = facts.program.clone() else {
        bail!(
            "skiff {0}: no {0} on PATH besides skiff itself: install {1}",
            tool.name(),
            tool.package()
        );
    };
    let mut env = Vec::new();
    match tool {
        Tool::Kubectl => {
            // As k3s: the user's own KUBECONFIG or ~/.kube/config wins over the admin one.
            let own = (facts.env)("HOME")
                .map(|h| PathBuf::from(h).join(".kube").join("config"))
                .is_some_and(|p| (facts.exists)(&p));
            if (facts.env)("KUBECONFIG").is_none() && !own {
                let candidates: Vec<PathBuf> = (facts.env)("SKIFF_KUBECONFIG_OUTPUT")
                    .map(PathBuf::from)
                    .into_iter()
                    .chain([
                        PathBuf::from("/etc/skiff/skiff.yaml"),
                        facts.data_dir.join("skiff.yaml"),
                    ])
                    .collect();
                let Some(found) = candidates.iter().find(|p| (facts.exists)(p)) else {
                    bail!(
                        "skiff kubectl: no admin kubeconfig at {}: run it on the server as root \
                         (or set KUBECONFIG, e.g. to a copy of the server's /etc/skiff/skiff.yaml \
                         with server: set to its address)",
                        candidates
                            .iter()
                            .map(|p| p.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" or ")
                    );
                };
                env.push(("KUBECONFIG", found.clone().into_os_string()));
            }
        }
        Tool::Crictl => {
            if (facts.env)("CONTAINER_RUNTIME_ENDPOINT").is_none() {
                let sock = skiff_agent::containerd::Paths::new(&facts.data_dir).socket;
                let mut v = OsString::from("unix://");
                v.push(sock.as_os_str());
                env.push(("CONTAINER_RUNTIME_ENDPOINT", v));
            }
        }
        Tool::Ctr => {
            if (facts.env)("CONTAINERD_ADDRESS").is_none() {
                let sock = skiff_agent::containerd::Paths::new(&facts.data_dir).socket;
                env.push(("CONTAINERD_ADDRESS", sock.into_os_string()));
            }
            if (facts.env)("CONTAINERD_NAMESPACE").is_none() {
                env.push(("CONTAINERD_NAMESPACE", "k8s.io".into()));
            }
        }
    }
    Ok(Plan { program, env })
}

/// The first `name` on PATH that is not this executable.
fn find_program(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok());
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .filter(|p| p.is_file())
        .find(|p| p.canonicalize().ok() != me)
}

/// Execs the real tool; returns only on failure.
pub fn run(tool: Tool, args: Vec<OsString>, data_dir: PathBuf) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let exists = |p: &Path| p.exists();
    let facts = Facts {
        env: &env,
        exists: &exists,
        program: find_program(tool.name()),
        data_dir,
    };
    let plan = match plan(tool, &facts) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let err = std::process::Command::new(&plan.program)
        .args(args)
        .envs(plan.env)
        .exec();
    anyhow::anyhow!(
        "skiff {}: cannot run {}: {err}",
        tool.name(),
        plan.program.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn dispatch_by_symlink_name_or_subcommand() {
        assert_eq!(
            dispatch(&os(&["/usr/local/bin/kubectl", "get", "nodes"])),
            Some((Tool::Kubectl, os(&["get", "nodes"])))
        );
        assert_eq!(
            dispatch(&os(&["skiff", "crictl", "ps"])),
            Some((Tool::Crictl, os(&["ps"])))
        );
        assert_eq!(dispatch(&os(&["ctr"])), Some((Tool::Ctr, vec![])));
        assert_eq!(dispatch(&os(&["skiff", "server"])), None);
        assert_eq!(dispatch(&os(&["skiff"])), None);
    }

    #[test]
    fn kubectl_gets_the_admin_kubeconfig_only_when_unset() {
        let env = |k: &str| (k == "SKIFF_KUBECONFIG_OUTPUT").then(|| OsString::from("/t/k.yaml"));
        let exists = |p: &Path| p == Path::new("/t/k.yaml");
        let facts = Facts {
            env: &env,
            exists: &exists,
            program: Some("/usr/bin/kubectl".into()),
            data_dir: "/d".into(),
        };
        let p = plan(Tool::Kubectl, &facts).unwrap();
        assert_eq!(p.program, PathBuf::from("/usr/bin/kubectl"));
        assert_eq!(p.env, vec![("KUBECONFIG", OsString::from("/t/k.yaml"))]);

        let env = |k: &str| (k == "KUBECONFIG").then(|| OsString::from("/mine"));
        let facts = Facts { env: &env, ..facts };
        assert!(plan(Tool::Kubectl, &facts).unwrap().env.is_empty());

        let env = |k: &str| (k == "HOME").then(|| OsString::from("/home/u"));
        let exists = |p: &Path| p == Path::new("/home/u/.kube/config");
        let facts = Facts {
            env: &env,
            exists: &exists,
            ..facts
        };
        assert!(plan(Tool::Kubectl, &facts).unwrap().env.is_empty());
    }

    #[test]
    fn kubectl_without_a_kubeconfig_says_where_it_looked() {
        let env = |_: &str| None;
        let exists = |_: &Path| false;
        let facts = Facts {
            env: &env,
            exists: &exists,
            program: Some("/usr/bin/kubectl".into()),
            data_dir: "/d".into(),
        };
        let e = plan(Tool::Kubectl, &facts).unwrap_err().to_string();
        assert!(e.contains("/etc/skiff/skiff.yaml or /d/skiff.yaml"), "{e}");
    }

    #[test]
    fn ctr_and_crictl_use_the_agent_socket() {
        let env = |_: &str| None;
        let exists = |_: &Path| false;
        let facts = Facts {
            env: &env,
            exists: &exists,
            program: Some("/usr/bin/ctr".into()),
            data_dir: "/d".into(),
        };
        let p = plan(Tool::Ctr, &facts).unwrap();
        assert_eq!(
            p.env,
            vec![
                (
                    "CONTAINERD_ADDRESS",
                    OsString::from("/d/agent/run/containerd/containerd.sock")
                ),
                ("CONTAINERD_NAMESPACE", OsString::from("k8s.io")),
            ]
        );
        let p = plan(Tool::Crictl, &facts).unwrap();
        assert_eq!(
            p.env,
            vec![(
                "CONTAINER_RUNTIME_ENDPOINT",
                OsString::from("unix:///d/agent/run/containerd/containerd.sock")
            )]
        );
        let facts = Facts {
            program: None,
            ..facts
        };
        let e = plan(Tool::Crictl, &facts).unwrap_err().to_string();
        assert!(e.contains("install cri-tools"), "{e}");
    }
}
