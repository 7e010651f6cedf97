//! `dynalert rules`: the rule-pack catalogue, rendered for the ruler a deployment runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use dynalert_rules::{Format, Pack, RenderOptions, RenderedFile};

use super::Format as OutputFormat;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The packs, their alerts and their keys.
    List {
        #[arg(long, value_enum, default_value_t)]
        format: OutputFormat,
    },
    /// Write the packs' rules as files, ConfigMaps or PrometheusRule objects.
    Render(RenderArgs),
    /// Print a `_defaults.yaml` with every key of the chosen packs and its default.
    Defaults {
        /// Packs, comma-separated (default: all).
        #[arg(long, value_delimiter = ',')]
        packs: Vec<String>,
    },
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Packs, comma-separated (default: all).
    #[arg(long, value_delimiter = ',')]
    packs: Vec<String>,
    #[arg(long, value_enum, default_value_t = RenderFormat::Files)]
    format: RenderFormat,
    /// Directory to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Label for ConfigMaps / PrometheusRules, e.g. `--label release=prometheus` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Namespace for ConfigMaps / PrometheusRules.
    #[arg(long)]
    namespace: Option<String>,
    /// The scrape job name of `dynalert serve` (used by the platform pack).
    #[arg(long, default_value = "dynalert", value_parser = parse_exporter_job)]
    exporter_job: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum RenderFormat {
    Files,
    Configmap,
    Prometheusrule,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::List { format } => list(format),
        Command::Render(args) => render(args),
        Command::Defaults { packs } => {
            let packs = dynalert_rules::select(&packs).map_err(anyhow::Error::msg)?;
            super::stdout::write(&dynalert_rules::defaults::defaults_yaml(&packs))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(format: OutputFormat) -> anyhow::Result<ExitCode> {
    let packs = dynalert_rules::catalogue();
    match format {
        OutputFormat::Json => {
            super::stdout::write(&(serde_json::to_string_pretty(&list_json(packs))? + "\n"))?
        }
        OutputFormat::Text => {
            let mut table = Table::new();
            table.load_preset(UTF8_FULL_CONDENSED);
            table.set_header([
                "PACK", "KEY", "DEFAULT", "CRITICAL", "UNIT", "ALERT", "SIGNAL",
            ]);
            for pack in packs {
                for (key, decl) in &pack.keys {
                    // Both names in full, so that grepping for a paged alert finds its key.
                    let alert = match decl.default_critical {
                        Some(_) => format!("{0}\n{0}Critical", decl.alert.name),
                        None => decl.alert.name.clone(),
                    };
                    table.add_row([
                        pack.pack.clone(),
                        key.clone(),
                        format!("{} {}", decl.op, decl.default),
                        decl.default_critical
                            .map(|c| c.to_string())
                            .unwrap_or_else(|| "-".into()),
                        decl.unit.clone(),
                        alert,
                        decl.signal.trim().to_string(),
                    ]);
                }
            }
            super::stdout::write(&format!("{table}\n"))?;
            let recording: usize = packs
                .iter()
                .flat_map(|p| &p.groups)
                .map(|g| g.rules.len())
                .sum();
            let alerts: usize = packs
                .iter()
                .map(|p| dynalert_rules::generate::alert_group(p).rules.len())
                .sum();
            super::stdout::write(&format!(
                "{} packs, {recording} recording rules, {alerts} alerts\n",
                packs.len()
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn list_json(packs: &[Pack]) -> serde_json::Value {
    let packs: Vec<serde_json::Value> = packs
        .iter()
        .map(|p| {
            let alerts: Vec<String> = dynalert_rules::generate::alert_group(p)
                .rules
                .into_iter()
                .filter_map(|r| r.alert)
                .collect();
            serde_json::json!({
                "pack": p.pack,
                "description": p.description,
                "exporter": p.exporter,
                "keys": p.keys,
                "recording_rules": p.groups.iter().map(|g| g.rules.len()).sum::<usize>(),
                "alerts": alerts,
            })
        })
        .collect();
    serde_json::Value::Array(packs)
}

fn render(args: RenderArgs) -> anyhow::Result<ExitCode> {
    let packs = dynalert_rules::select(&args.packs).map_err(anyhow::Error::msg)?;
    let format = match args.format {
        RenderFormat::Files => Format::Files,
        RenderFormat::Configmap => Format::ConfigMap,
        RenderFormat::Prometheusrule => Format::PrometheusRule,
    };
    if !args.labels.is_empty() && format == Format::Files {
        bail!("--label applies to configmap and prometheusrule output only");
    }
    let opts = RenderOptions {
        exporter_job: args.exporter_job,
        namespace: args.namespace,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let written = write_all(&args.out, &dynalert_rules::render(&packs, format, &opts))?;
    super::stdout::write(
        &written
            .iter()
            .map(|path| format!("{}\n", path.display()))
            .collect::<String>(),
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Writes every file or none: each goes to a hidden temporary file first and is renamed into
/// place once all of them were written, so a failure (disk full, a directory in the way)
/// leaves `out` as it was, and a ruler watching `out` never reads half a file.
fn write_all(out: &Path, files: &[RenderedFile]) -> anyhow::Result<Vec<PathBuf>> {
    let targets: Vec<PathBuf> = files.iter().map(|f| out.join(&f.name)).collect();
    // A rename onto a directory fails; find that before anything is written.
    if let Some(dir) = targets.iter().find(|t| t.is_dir()) {
        bail!("cannot write {}: it is a directory", dir.display());
    }
    let mut staged = Vec::new();
    for (file, target) in files.iter().zip(&targets) {
        let tmp = out.join(format!(".{}.tmp", file.name));
        if let Err(e) = std::fs::write(&tmp, &file.content) {
            for path in staged.iter().chain([&tmp]) {
                let _ = std::fs::remove_file(path);
            }
            return Err(e).with_context(|| format!("writing {}", target.display()));
        }
        staged.push(tmp);
    }
    for (tmp, target) in staged.iter().zip(&targets) {
        std::fs::rename(tmp, target).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(targets)
}

/// The platform pack puts the job name inside a PromQL string (`job="NAME"`) as it is: a quote
/// or backslash would make every platform rule unparsable, and an empty name selects no
/// target, so the absent alert would page forever.
fn parse_exporter_job(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("the scrape job name must not be empty".into());
    }
    if let Some(c) = text
        .chars()
        .find(|c| matches!(c, '"' | '\\') || c.is_control())
    {
        return Err(format!(
            "{text:?}: a scrape job name with {c:?} cannot be rendered into the rules"
        ));
    }
    Ok(text.to_string())
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected key=value"))?;
    if k.is_empty() {
        return Err(format!("{text:?}: empty label name"));
    }
    Ok((k.to_string(), v.to_string()))
}
