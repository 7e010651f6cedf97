//! The command line: one module per subcommand.

mod limits;
mod lint;
mod rules;
mod serve;
mod show;
mod source;
mod stdout;
mod store;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "dynalert",
    version,
    about = "Multi-tenant dynamic alerting for Prometheus"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve tenant thresholds as Prometheus metrics, with hot reload.
    Serve(serve::Args),
    /// Check a conf.d tree and print every problem as file:line:col: severity: message.
    Lint(lint::Args),
    /// Show one tenant's effective thresholds.
    Show(show::Args),
    /// The rule packs: list them, render them, or print their defaults.
    Rules(rules::Args),
    /// Copy thresholds between a store and a conf.d directory (export, import).
    Store(store::Args),
    /// Hash an API token for the --auth-file.
    Token(token::Args),
}

#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Lint(args) => lint::run(args),
        Command::Show(args) => show::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Store(args) => store::run(args),
        Command::Token(args) => token::run(args),
    }
}

/// Parses `--at`: RFC 3339, or `now`.
pub fn parse_at(text: &str) -> Result<chrono::DateTime<chrono::Utc>, dynalert_config::TextError> {
    if text == "now" {
        return Ok(chrono::Utc::now());
    }
    dynalert_config::parse_instant(text)
}

/// Parses `--max-file-size`: bytes, or a number with a unit (`4MiB`, `512KiB`, `4MB`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = text
        .parse()
        .map_err(|e| format!("{text:?} is not a size like 4MiB: {e}"))?;
    match size.as_u64() {
        0 => Err("the size limit must be at least 1 byte".into()),
        bytes => Ok(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_in_bytes_or_binary_units() {
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("512K"), Ok(512_000));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert_eq!(parse_size("4MB"), Ok(4_000_000));
        assert!(parse_size("4 parsecs").is_err());
        assert!(parse_size("MiB").is_err());
    }
}
