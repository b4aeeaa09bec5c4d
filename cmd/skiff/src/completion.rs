//! `skiff completion bash|zsh [-i]`: shell completion scripts generated from the clap
//! definitions (clap_complete); `-i` installs the script where the shell loads it from
//! (bash: /etc/bash_completion.d/skiff, as k3s does).

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// The shell: bash or zsh.
    #[arg(value_parser = ["bash", "zsh"])]
    pub shell: String,
    /// Install the script (bash: /etc/bash_completion.d/skiff, zsh:
    /// /usr/local/share/zsh/site-functions/_skiff) instead of printing it.
    #[arg(short = 'i', long)]
    pub install: bool,
}

/// Where `-i` writes the script for `shell`.
pub fn install_path(shell: &str) -> PathBuf {
    match shell {
        "zsh" => PathBuf::from("/usr/local/share/zsh/site-functions/_skiff"),
        _ => PathBuf::from("/etc/bash_completion.d/skiff"),
    }
}

/// The completion script for `shell` over the CLI `cmd`.
pub fn script(shell: &str, mut cmd: clap::Command) -> Vec<u8> {
    let mut out = Vec::new();
    let sh = match shell {
        "zsh" => clap_complete::Shell::Zsh,
        _ => clap_complete::Shell::Bash,
    };
    clap_complete::generate(sh, &mut cmd, "skiff", &mut out);
    out
}

fn install(path: &Path, text: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "cannot create {}: run as root to install completions",
                dir.display()
            )
        })?;
    }
    std::fs::write(path, text).with_context(|| {
        format!(
            "cannot write {}: run as root to install completions",
            path.display()
        )
    })
}

/// Runs `skiff completion …`.
pub fn run(args: CompletionArgs, cmd: clap::Command) -> Result<()> {
    let text = script(&args.shell, cmd);
    if args.install {
        let path = install_path(&args.shell);
        install(&path, &text)?;
        println!(
            "installed the {} completion to {}: it loads in new shells",
            args.shell,
            path.display()
        );
        return Ok(());
    }
    use std::io::Write;
    std::io::stdout().write_all(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli() -> clap::Command {
        clap::Command::new("skiff")
            .subcommand(
                clap::Command::new("server").arg(clap::Arg::new("data-dir").long("data-dir")),
            )
            .subcommand(clap::Command::new("token").subcommand(clap::Command::new("create")))
    }

    #[test]
    fn scripts_complete_subcommands_and_flags() {
        let bash = String::from_utf8(script("bash", cli())).unwrap();
        assert!(bash.contains("complete -F _skiff"), "{bash}");
        assert!(
            bash.contains("--data-dir") && bash.contains("create"),
            "{bash}"
        );
        let zsh = String::from_utf8(script("zsh", cli())).unwrap();
        assert!(zsh.starts_with("#compdef skiff"), "{zsh}");
        assert!(zsh.contains("--data-dir"), "{zsh}");
    }

    #[test]
    fn install_writes_where_the_shell_looks() {
        assert_eq!(
            install_path("bash"),
            PathBuf::from("/etc/bash_completion.d/skiff")
        );
        assert_eq!(
            install_path("zsh"),
            PathBuf::from("/usr/local/share/zsh/site-functions/_skiff")
        );
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d").join("skiff");
        install(&p, b"complete -F _skiff skiff\n").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"complete -F _skiff skiff\n");
    }
}
