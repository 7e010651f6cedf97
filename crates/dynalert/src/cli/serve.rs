//! `dynalert serve`: the threshold exporter (GitOps mode on a conf.d directory).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dynalert_server::ServeOptions;

#[derive(clap::Args)]
pub struct Args {
    /// The conf.d directory to serve.
    #[arg(long)]
    config_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Full re-scan interval, a fallback for missed file events (e.g. 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    reload_interval: Duration,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let opts = ServeOptions {
        listen: args.listen,
        reload_interval: args.reload_interval,
        known_keys: dynalert_rules::declared_keys(),
        ..ServeOptions::new(args.config_dir)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dynalert_server::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// `500ms`, `30s`, `5m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s"))?;
    Ok(match unit {
        "ms" => Duration::from_millis(n),
        "s" | "" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return Err(format!("{text:?}: unit must be ms, s, m or h")),
    })
}
