//! Project automation for dynalert, run as `cargo xtask <command>` (the alias is in
//! `.cargo/config.toml`). `main` only parses arguments; each command lives in its own module.

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
    /// `cargo run -p dynalert-bench --release -- exporter ARGS` (see docs/benchmarks.md).
    BenchExporter(BenchArgs),
    /// `cargo run -p dynalert-bench --release -- rules ARGS`.
    BenchRules(BenchArgs),
    /// `cargo run -p dynalert-bench --release -- api ARGS`.
    BenchApi(BenchArgs),
}

/// The benchmarks live in `crates/dynalert-bench`; these commands only forward to it.
#[derive(clap::Args)]
struct BenchArgs {
    /// Arguments of the benchmark (`--help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

/// Runs benchmark `name` of dynalert-bench, built in release mode, with `args`.
fn bench(name: &str, args: &BenchArgs) -> anyhow::Result<()> {
    let mut argv = vec!["run", "--release", "-p", "dynalert-bench", "--", name];
    argv.extend(args.args.iter().map(String::as_str));
    cargo_step(&workspace_root(), &argv)
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
        Command::BenchExporter(args) => bench("exporter", &args),
        Command::BenchRules(args) => bench("rules", &args),
        Command::BenchApi(args) => bench("api", &args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
