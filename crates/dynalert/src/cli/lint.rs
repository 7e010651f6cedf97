//! `dynalert lint DIR`: the same loader as `serve`, reporting instead of serving.

use std::path::PathBuf;
use std::process::ExitCode;

use dynalert_config::Diagnostic;

use super::Format;

#[derive(clap::Args)]
pub struct Args {
    /// The conf.d directory to check (shorthand for --config-dir).
    dir: Option<PathBuf>,
    #[command(flatten)]
    source: super::source::Source,
    #[arg(long, value_enum, default_value_t)]
    format: Format,
}

/// Exit 0 when clean, 1 when there are findings; usage errors exit 2 from `main`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loaded = args.source.or_dir(args.dir)?;
    let model = &loaded.model;
    // Paths as the user can open them: relative to where they ran the command.
    let shown: Vec<Diagnostic> = model
        .diagnostics
        .iter()
        .map(|d| Diagnostic {
            file: loaded.shown_path(&d.file),
            ..d.clone()
        })
        .collect();
    match args.format {
        Format::Json => {
            super::stdout::write(&format!("{}\n", serde_json::to_string_pretty(&shown)?))?
        }
        Format::Text => {
            super::stdout::write(&shown.iter().map(|d| format!("{d}\n")).collect::<String>())?;
            let errors = shown.iter().filter(|d| d.is_error()).count();
            let files: std::collections::BTreeSet<&str> =
                shown.iter().map(|d| d.file.as_str()).collect();
            eprintln!(
                "{} error(s), {} warning(s) in {} file(s); {} file(s) checked, {} tenant(s) served",
                errors,
                shown.len() - errors,
                files.len(),
                model.files.len(),
                model.tenants.len()
            );
        }
    }
    Ok(if shown.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
