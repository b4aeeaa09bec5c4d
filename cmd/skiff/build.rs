//! Build facts for `/version` and `skiff --version`: git commit and tree state of the checkout,
//! build date (SOURCE_DATE_EPOCH when set), compiler version; `unknown` where they cannot be
//! told.
//!
//! Hand-written rather than vergen & co.: it is four `git` calls, and the rerun rules matter
//! here — the script reruns when HEAD or the current branch's ref moves (a commit or checkout),
//! never on ordinary edits, so a build does not recompile the binary crate every time. The tree
//! state is therefore the one at the last HEAD move or clean build of this crate. The facts live
//! in this thin binary crate (handed to the API server through `ServerConfig`), so a new commit
//! recompiles `skiff` only, not the library crates.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

/// Files whose change means HEAD moved: HEAD itself, the branch it points at (loose ref, else
/// the refs directory a new loose ref would appear in) and packed-refs.
fn head_files(root: &Path) -> Vec<PathBuf> {
    let abs = |p: String| {
        let p = PathBuf::from(p);
        if p.is_absolute() {
            p
        } else {
            root.join(p)
        }
    };
    let mut files = Vec::new();
    if let Some(head) = git(root, &["rev-parse", "--git-path", "HEAD"]) {
        files.push(abs(head));
    }
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        if let Some(r) = git(root, &["rev-parse", "--git-path", &branch]) {
            let r = abs(r);
            if r.is_file() {
                files.push(r);
            } else if let Some(parent) = r.parent().filter(|p| p.is_dir()) {
                files.push(parent.to_path_buf());
            }
        }
    }
    if let Some(packed) = git(root, &["rev-parse", "--git-path", "packed-refs"]) {
        files.push(abs(packed));
    }
    // A path that does not exist would make cargo rerun the script on every build.
    files.retain(|f| f.exists());
    files
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The workspace root is two levels up (cmd/skiff); a git checkout counts only when it is
    // this workspace's own, not some repository the sources were unpacked into.
    let root = manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let own_checkout = git(&root, &["rev-parse", "--show-toplevel"])
        .map(PathBuf::from)
        .and_then(|top| top.canonicalize().ok())
        .is_some_and(|top| root.canonicalize().is_ok_and(|r| r == top));
    let (commit, tree) = match own_checkout.then(|| git(&root, &["rev-parse", "HEAD"])) {
        Some(Some(commit)) => {
            for f in head_files(&root) {
                println!("cargo:rerun-if-changed={}", f.display());
            }
            let tree = match git(&root, &["status", "--porcelain", "--untracked-files=no"]) {
                Some(s) if s.is_empty() => "clean",
                Some(_) => "dirty",
                None => "unknown",
            };
            (commit, tree.to_string())
        }
        _ => ("unknown".to_string(), "unknown".to_string()),
    };
    let date = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(secs) => rfc3339(secs),
            Err(_) => {
                println!("cargo:warning=SOURCE_DATE_EPOCH={v:?} is not a number of seconds: build date unknown");
                "unknown".to_string()
            }
        },
        Err(_) => rfc3339(chrono::Utc::now().timestamp()),
    };
    let rustc_version = rustc_version();
    // "rustc 1.91.0 (f8297e351 2025-10-28)" → "rustc 1.91.0"
    let compiler = rustc_version
        .as_deref()
        .map(|s| s.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SKIFF_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=SKIFF_GIT_TREE_STATE={tree}");
    println!("cargo:rustc-env=SKIFF_BUILD_DATE={date}");
    println!("cargo:rustc-env=SKIFF_RUSTC_VERSION={compiler}");

    // Release binaries on Linux are linked as position-dependent executables (as k3s's Go binary
    // is): a PIE carries ~100,000 relative relocations that ld.so applies at every start, leaving
    // `.rela.dyn` mapped and `.data.rel.ro`/`.got` copied per process — ~4 MiB of each skiff
    // process's idle RSS (BENCHMARKS.md, "Idle memory"). The cost is that the executable's own
    // addresses are not randomised (shared libraries, stack and heap still are). RELR packing
    // (`-z pack-relative-relocs`) would keep PIE but needs glibc ≥ 2.36 at run time. Debug and
    // test builds stay PIE. `SKIFF_PIE=1` at build time keeps a release PIE.
    println!("cargo:rerun-if-env-changed=SKIFF_PIE");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let keep_pie = std::env::var("SKIFF_PIE").is_ok_and(|v| v == "1");
    if release && linux && !keep_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    text_order(release, rustc_version.as_deref());
}

/// `$RUSTC --version`, e.g. "rustc 1.91.0 (f8297e351 2025-10-28)".
fn rustc_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc).arg("--version").output().ok()?;
    String::from_utf8(out.stdout).ok()
}

/// Release binaries lay their code out in the order of `text-order.txt`: the functions an
/// agent runs first, then the rest of what `skiff server` runs (tools/text-order.sh records
/// them from a real run of the pod benchmark). The kernel maps code in 64 KiB fault-around
/// windows, so code used at start-up and while idle, spread over 50 MB, kept 3–4x its own size
/// resident; packed together it is about its own size (BENCHMARKS.md, "Code layout").
///
/// Only with the linker that understands the list: rust-lld, Rust's default linker for
/// x86_64-unknown-linux-gnu since 1.90. Symbols the list names that a build does not have
/// (another compiler, lock file or feature set changes their mangled names) are skipped: the
/// layout then falls back towards the default, never a failed link. `SKIFF_TEXT_ORDER=0` turns it
/// off.
fn text_order(release: bool, rustc_version: Option<&str>) {
    println!("cargo:rerun-if-env-changed=SKIFF_TEXT_ORDER");
    println!("cargo:rerun-if-changed=text-order.txt");
    let target = std::env::var("TARGET").unwrap_or_default();
    let off = std::env::var("SKIFF_TEXT_ORDER").is_ok_and(|v| v == "0");
    if !release
        || off
        || target != "x86_64-unknown-linux-gnu"
        || !default_linker_is_lld(rustc_version)
    {
        return;
    }
    let list =
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join("text-order.txt");
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc links x86_64 Linux binaries with its own lld by default (Rust ≥ 1.90) and the
/// build did not pick another linker (RUSTFLAGS or a configured `linker`).
fn default_linker_is_lld(rustc_version: Option<&str>) -> bool {
    // "rustc 1.95.0 (…)" → 95
    let minor = rustc_version.and_then(|s| {
        s.split_whitespace()
            .nth(1)?
            .split('.')
            .nth(1)?
            .parse::<u32>()
            .ok()
    });
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let other_linker = flags.contains("linker=")
        || flags.contains("linker-features=-lld")
        || std::env::var_os("RUSTC_LINKER").is_some();
    minor.is_some_and(|m| m >= 90) && !other_linker
}
