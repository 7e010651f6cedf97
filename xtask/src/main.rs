//! Project automation for dynalert, run as `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`). `main` only parses arguments; each command lives in its own module.

mod bench_api;
mod bench_exporter;
mod bench_rules;
mod bench_support;
mod deps;
mod gen_tenants;
mod summary;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "dynalert project automation")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole test suite as CI does: install components, fmt, clippy, tests.
    Test(test::TestArgs),
    /// Write a synthetic conf.d tree with N tenants (for load tests and benchmarks).
    GenTenants(gen_tenants::GenTenantsArgs),
    /// Benchmark `dynalert serve` against the targets, next to a Pushgateway.
    BenchExporter(bench_exporter::BenchExporterArgs),
    /// Rule packs vs. hand-written per-tenant rules on a real Prometheus, at N tenants.
    BenchRules(bench_rules::BenchRulesArgs),
    /// Management API writes (PATCH) and write → /metrics times, on SQLite and PostgreSQL.
    BenchApi(bench_api::BenchApiArgs),
    // Benchmarks join here as `Bench*` variants (`cargo xtask bench-…`), one module each.
}

/// The workspace root: xtask's manifest lives one level below it.
fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits inside the workspace")
        .to_owned()
}

/// The cargo that runs us (`cargo xtask` sets `CARGO`), so nested builds use the same one.
fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Runs `cargo ARGS` in `root`, echoing the command; fails if it fails.
fn cargo_step(root: &std::path::Path, args: &[&str]) -> anyhow::Result<()> {
    println!("==> cargo {}", args.join(" "));
    let status = cargo()
        .args(args)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .status()
        .map_err(|e| anyhow::anyhow!("running cargo {}: {e}", args.join(" ")))?;
    anyhow::ensure!(
        status.success(),
        "`cargo {}` failed ({status})",
        args.join(" ")
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::GenTenants(args) => gen_tenants::run(&args),
        Command::BenchExporter(args) => bench_exporter::run(&args),
        Command::BenchRules(args) => bench_rules::run(&args),
        Command::BenchApi(args) => bench_api::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
