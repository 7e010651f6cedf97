//! `dynalert serve`: the threshold exporter and management API, on a conf.d directory
//! (GitOps), an SQLite file (the default) or PostgreSQL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use dynalert_server::ServeOptions;
use dynalert_store::StoreSpec;

#[derive(clap::Args)]
pub struct Args {
    /// A conf.d directory to serve (GitOps mode; the same as --store dir:DIR).
    #[arg(long, conflicts_with = "store")]
    config_dir: Option<PathBuf>,
    /// Where thresholds live: sqlite:PATH, postgres://USER@HOST:PORT/DB or dir:PATH.
    /// Without it and without --config-dir: sqlite:dynalert.db in the working directory.
    #[arg(long, env = "DYNALERT_STORE")]
    store: Option<StoreSpec>,
    /// Seed an empty database store from this conf.d tree at start (skipped when the store
    /// already holds documents).
    #[arg(long, value_name = "DIR")]
    import: Option<PathBuf>,
    /// Bearer tokens and roles for the management API (see docs/api.md). Without it the API
    /// is read-only.
    #[arg(long, env = "DYNALERT_AUTH_FILE")]
    auth_file: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Full re-scan interval, a fallback for missed file events (e.g. 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    reload_interval: Duration,
    #[command(flatten)]
    limits: super::limits::LimitArgs,
    /// Most `user_threshold` series served in all; an API write that would go over it is
    /// refused with 422.
    #[arg(long, value_name = "N", default_value_t = ServeOptions::DEFAULT_MAX_SERIES)]
    max_series: usize,
    /// Files of a conf.d directory larger than this are reported, not read (e.g. 4MiB,
    /// 512KiB); their last good content stays served.
    #[arg(long, default_value = "4MiB", value_parser = super::parse_size)]
    max_file_size: u64,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    init_logging();
    let store = match (args.config_dir, args.store) {
        (Some(dir), _) => StoreSpec::Dir(dir),
        (None, Some(store)) => store,
        (None, None) => StoreSpec::default_sqlite(),
    };
    let opts = ServeOptions {
        listen: args.listen,
        reload_interval: args.reload_interval,
        max_file_size: args.max_file_size,
        known_keys: dynalert_rules::declared_keys(),
        limits: args.limits.limits(),
        max_series: args.max_series,
        auth_file: args.auth_file,
        import: args.import,
        ..ServeOptions::with_store(store)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(dynalert_server::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// Logs to stderr; `RUST_LOG` overrides the default `info` level.
pub fn init_logging() {
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
