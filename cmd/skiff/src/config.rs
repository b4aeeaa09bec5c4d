//! The config file (`/etc/skiff/config.yaml`, `--config`): k3s-style YAML whose keys are the
//! long names of the subcommand's flags, merged into the command line from the clap
//! definitions, so every flag is a key without a list to keep in step.
//!
//! Rules (k3s's): a flag given on the command line wins over its key; a list flag (`node-label`,
//! `tls-san`, …) takes a YAML list (or one value) whose items are added after the command
//! line's; a boolean flag takes `true`/`false`; a key that names no flag is an error naming the
//! key. A value from the file wins over an environment variable (the file's keys become flags,
//! as in k3s). A missing file is no error: the default path usually does not exist.

use anyhow::{bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory};
use std::ffi::OsString;
use std::path::PathBuf;

/// Subcommands that read the config file (k3s reads it for servers and agents).
const CONFIG_COMMANDS: &[&str] = &["server", "agent"];

/// The command line with the config file's keys added as flags (`--key=value` after the given
/// arguments), for the subcommands that read one; other command lines come back unchanged.
pub fn merged_args<C: CommandFactory>(argv: Vec<OsString>) -> Result<Vec<OsString>> {
    // A lenient first parse (a required flag may come from the file) tells the subcommand, the
    // config path and which flags the command line set; errors surface in the real parse.
    let Ok(pre) = C::command()
        .ignore_errors(true)
        .try_get_matches_from(argv.clone())
    else {
        return Ok(argv);
    };
    let Some((name, sub)) = pre.subcommand() else {
        return Ok(argv);
    };
    if !CONFIG_COMMANDS.contains(&name) {
        return Ok(argv);
    }
    let Some(path) = config_path(sub) else {
        return Ok(argv);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(argv),
        Err(e) => bail!(
            "cannot read the config file {}: {e} (fix its permissions, or point --config elsewhere)",
            path.display()
        ),
    };
    let cmd = C::command();
    let sub_cmd = cmd
        .find_subcommand(name)
        .context("the parsed subcommand is not defined")?;
    let extra = config_args(&cmd, sub_cmd, sub, &text)
        .with_context(|| format!("config file {}", path.display()))?;
    Ok(argv
        .into_iter()
        .chain(extra.into_iter().map(OsString::from))
        .collect())
}

/// `--config` as parsed (command line, `SKIFF_CONFIG_FILE`, or the default).
fn config_path(sub: &ArgMatches) -> Option<PathBuf> {
    match sub.try_get_one::<PathBuf>("config") {
        Ok(Some(p)) => Some(p.clone()),
        _ => sub
            .try_get_raw("config")
            .ok()
            .flatten()
            .and_then(|mut v| v.next())
            .map(PathBuf::from),
    }
}

/// The flags that the YAML document `text` adds to a command line of `sub_cmd` whose parse
/// (so far) is `given`. `root` holds the global flags (`log`).
pub fn config_args(
    root: &clap::Command,
    sub_cmd: &clap::Command,
    given: &ArgMatches,
    text: &str,
) -> Result<Vec<String>> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).context("not valid YAML: fix the syntax")?;
    let map = match doc {
        serde_yaml::Value::Null => return Ok(Vec::new()),
        serde_yaml::Value::Mapping(m) => m,
        _ => bail!(
            "the document must be a mapping of flag names to values, e.g. https-listen-port: 7443"
        ),
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let Some(key) = k.as_str() else {
            bail!("key {k:?} is not a string: keys are flag names such as https-listen-port");
        };
        if key == "config" {
            bail!("key \"config\": a config file cannot name another one; remove the key");
        }
        let arg = sub_cmd
            .get_arguments()
            .chain(root.get_arguments().filter(|a| a.is_global_set()))
            .find(|a| a.get_long() == Some(key) && !a.is_hide_set())
            .filter(|a| {
                !matches!(
                    a.get_action(),
                    ArgAction::Help
                        | ArgAction::HelpShort
                        | ArgAction::HelpLong
                        | ArgAction::Version
                )
            });
        let Some(arg) = arg else {
            bail!(
                "unknown key {key:?}: keys are the long names of `skiff {}` flags without the dashes, e.g. {} (see skiff {} --help)",
                sub_cmd.get_name(),
                example_key(sub_cmd),
                sub_cmd.get_name()
            );
        };
        let from_command_line = given
            .try_contains_id(arg.get_id().as_str())
            .unwrap_or(false)
            && given.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine);
        match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => {
                let on = match &v {
                    serde_yaml::Value::Bool(b) => *b,
                    serde_yaml::Value::String(s) if s == "true" || s == "false" => s == "true",
                    _ => bail!("key {key:?} is a switch: give true or false"),
                };
                let wanted = matches!(arg.get_action(), ArgAction::SetTrue) == on;
                if wanted && !from_command_line {
                    out.push(format!("--{key}"));
                }
            }
            ArgAction::Append => {
                let items = match v {
                    serde_yaml::Value::Sequence(items) => items,
                    one => vec![one],
                };
                for item in items {
                    out.push(format!("--{key}={}", scalar(key, &item)?));
                }
            }
            _ => {
                if matches!(v, serde_yaml::Value::Sequence(_)) {
                    bail!("key {key:?} takes one value, not a list");
                }
                let value = scalar(key, &v)?;
                if !from_command_line {
                    out.push(format!("--{key}={value}"));
                }
            }
        }
    }
    Ok(out)
}

/// A key's value as the command line would spell it.
fn scalar(key: &str, v: &serde_yaml::Value) -> Result<String> {
    Ok(match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => bail!("key {key:?} has no value: give one or remove the key"),
        _ => bail!("key {key:?} takes a plain value (a string, number or boolean)"),
    })
}

/// A real key of `cmd` for error messages.
fn example_key(cmd: &clap::Command) -> &str {
    let longs: Vec<&str> = cmd.get_arguments().filter_map(|a| a.get_long()).collect();
    ["https-listen-port", "node-name"]
        .into_iter()
        .find(|k| longs.contains(k))
        .or(longs.into_iter().find(|k| *k != "config"))
        .unwrap_or("data-dir")
}
