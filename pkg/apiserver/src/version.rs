//! `/version`: the Kubernetes version skiff serves plus the facts of the build that made this
//! binary (git commit and tree state, build date), handed in by `skiff` through `ServerConfig`.

use serde_json::{json, Value};

/// What the binary knows about its own build. Every field is `"unknown"` when the build could
/// not tell (built outside a git checkout, no `git` on the build machine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    /// The full commit hash the binary was built from.
    pub git_commit: String,
    /// `clean` or `dirty` (tracked files differed from the commit when it was built).
    pub git_tree_state: String,
    /// RFC 3339 UTC, from `SOURCE_DATE_EPOCH` when the build set it.
    pub build_date: String,
    /// The compiler that built the binary, e.g. `rustc 1.91.0`.
    pub compiler_version: String,
}

impl Default for BuildInfo {
    fn default() -> Self {
        let unknown = || "unknown".to_string();
        BuildInfo {
            git_commit: unknown(),
            git_tree_state: unknown(),
            build_date: unknown(),
            compiler_version: unknown(),
        }
    }
}

/// The Kubernetes release whose API skiff serves.
const KUBE_MAJOR: &str = "1";
const KUBE_MINOR: &str = "32";

/// The `version.Info` object `GET /version` answers (what `kubectl version` shows as the
/// server version). `gitVersion` is a semantic version kubectl can compare with its own.
pub fn info(build: &BuildInfo) -> Value {
    json!({
        "major": KUBE_MAJOR,
        "minor": KUBE_MINOR,
        "gitVersion": format!("v{KUBE_MAJOR}.{KUBE_MINOR}.0+skiff-{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": build.git_commit,
        "gitTreeState": build.git_tree_state,
        "buildDate": build.build_date,
        "goVersion": build.compiler_version,
        "compiler": "rustc",
        "platform": platform(std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// `GOOS/GOARCH` spelling of the platform (kubectl and users expect Go's architecture names).
fn platform(os: &str, arch: &str) -> String {
    let arch = match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{os}/{arch}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_facts_are_served_as_given() {
        let b = BuildInfo {
            git_commit: "0123456789abcdef0123456789abcdef01234567".into(),
            git_tree_state: "dirty".into(),
            build_date: "2026-12-07T02:00:00Z".into(),
            compiler_version: "rustc 1.91.0".into(),
        };
        let v = info(&b);
        assert_eq!(v["gitCommit"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(v["gitTreeState"], "dirty");
        assert_eq!(v["buildDate"], "2026-12-07T02:00:00Z");
        assert_eq!(v["goVersion"], "rustc 1.91.0");
        assert_eq!(v["major"], "1");
        assert_eq!(v["minor"], "32");
        let gv = v["gitVersion"].as_str().unwrap();
        assert!(gv.starts_with("v1.32.0+skiff-"), "{gv}");
    }

    #[test]
    fn an_unknown_build_says_unknown() {
        let v = info(&BuildInfo::default());
        for k in ["gitCommit", "gitTreeState", "buildDate", "goVersion"] {
            assert_eq!(v[k], "unknown", "{k}");
        }
    }

    #[test]
    fn platforms_use_go_architecture_names() {
        assert_eq!(platform("linux", "x86_64"), "linux/amd64");
        assert_eq!(platform("linux", "aarch64"), "linux/arm64");
        assert_eq!(platform("linux", "riscv64"), "linux/riscv64");
    }
}
