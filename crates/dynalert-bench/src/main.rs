//! `dynalert-bench`: dynalert measured against real components on 127.0.0.1, one subcommand
//! per benchmark. Every run writes its results as JSON and renders them into the markdown
//! section of `docs/benchmarks.md`; `report` renders a results file again.
//!
//! ```sh
//! cargo run -p dynalert-bench --release -- exporter --tenants 5000 --out-md docs/benchmarks.md
//! cargo run -p dynalert-bench --release -- rules --tenants 1000 --repeat 3 --floor
//! cargo run -p dynalert-bench --release -- api --stores sqlite --measure-secs 5
//! cargo run -p dynalert-bench -- report target/dynalert-bench/rules.json --out-md docs/benchmarks.md
//! ```

mod api;
mod exporter;
mod rules;
mod support;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};

#[derive(Parser)]
#[command(
    name = "dynalert-bench",
    about = "dynalert's benchmarks on real components"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// `dynalert serve` against the exporter targets, next to a Prometheus Pushgateway.
    Exporter(exporter::Args),
    /// The exporter's load and render in this process, on a conf.d tree (no servers): the
    /// figures `exporter` reports, alone, e.g. under `valgrind --tool=callgrind` with `--runs 1`.
    InProcess {
        /// A tree from `cargo xtask gen-tenants N --out DIR` (N ≥ 42: tenant-00042 is edited).
        dir: PathBuf,
        /// Loads and edits measured; the medians are reported.
        #[arg(long, default_value_t = 31)]
        runs: usize,
    },
    /// Rule packs vs. hand-written per-tenant rules on a real Prometheus, at N tenants.
    Rules(rules::Args),
    /// Management API writes (PATCH) and write → /metrics times, on SQLite and PostgreSQL.
    Api(api::Args),
    /// Render the markdown section of a results file written by a run.
    Report {
        /// The results file (`target/dynalert-bench/<benchmark>.json` by default).
        json: PathBuf,
        /// Markdown file whose section of this benchmark is replaced (else appended).
        #[arg(long)]
        out_md: Option<PathBuf>,
    },
}

/// One run's results, as written to its JSON file.
#[derive(Serialize, Deserialize)]
#[serde(tag = "bench", rename_all = "lowercase")]
enum Results {
    Exporter(Box<exporter::Results>),
    Rules(Box<rules::Results>),
    Api(Box<api::Results>),
}

impl Results {
    fn name(&self) -> &'static str {
        match self {
            Results::Exporter(_) => "exporter",
            Results::Rules(_) => "rules",
            Results::Api(_) => "api",
        }
    }

    /// Prints the section and writes it into `out_md` between this benchmark's markers.
    fn render(&self, out_md: Option<&PathBuf>) -> Result<()> {
        let section = match self {
            Results::Exporter(r) => exporter::markdown(r),
            Results::Rules(r) => rules::markdown(r),
            Results::Api(r) => api::markdown(r),
        };
        println!("\n{section}");
        match out_md {
            Some(path) => support::write_section(path, self.name(), &section),
            None => Ok(()),
        }
    }

    /// Writes the results file, then renders it.
    fn finish(self, output: &support::Output) -> Result<()> {
        let path = output.json_path(self.name());
        std::fs::create_dir_all(path.parent().context("a results file in no directory")?)?;
        let json = serde_json::to_string_pretty(&self)? + "\n";
        std::fs::write(&path, json).with_context(|| format!("writing {path:?}"))?;
        println!("results: {}", path.display());
        self.render(output.out_md.as_ref())
    }
}

fn report(json: &PathBuf, out_md: Option<&PathBuf>) -> Result<()> {
    let text = std::fs::read_to_string(json).with_context(|| format!("reading {json:?}"))?;
    let results: Results = serde_json::from_str(&text).context("not a results file")?;
    results.render(out_md)
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Exporter(args) => exporter::run(&args).and_then(|r| r.finish(&args.output)),
        Command::InProcess { dir, runs } => exporter::in_process(&dir, runs)
            .and_then(|figures| Ok(serde_json::to_string_pretty(&figures)?))
            .map(|json| println!("{json}")),
        Command::Rules(args) => rules::run(&args).and_then(|r| r.finish(&args.output)),
        Command::Api(args) => api::run(&args).and_then(|r| r.finish(&args.output)),
        Command::Report { json, out_md } => report(&json, out_md.as_ref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dynalert-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
