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
    /// Full re-scan (directory) or re-read (SQLite) interval, a fallback for missed change
    /// events: 100ms to 1h (e.g. 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = interval("--reload-interval"))]
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
    /// How often a PostgreSQL store is polled for other replicas' writes, besides
    /// LISTEN/NOTIFY: 100ms to 1h.
    #[arg(long, default_value = "500ms", value_parser = interval("--poll-interval"))]
    poll_interval: Duration,
    /// How long a directory must stay quiet after a file event before it is re-read: 10ms to
    /// 1m.
    #[arg(long, default_value = "300ms", value_parser = bounded("--debounce", ServeOptions::DEBOUNCE_BOUNDS))]
    debounce: Duration,
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
        poll_interval: args.poll_interval,
        debounce: args.debounce,
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

fn interval(option: &'static str) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    bounded(option, ServeOptions::INTERVAL_BOUNDS)
}

/// Parses a duration (`500ms`, `30s`, `5m`, `1h 30m`) and refuses one outside `bounds`. A bare
/// number has no unit and is refused, except `0`, which is out of every bound.
fn bounded(
    option: &'static str,
    bounds: (Duration, Duration),
) -> impl Fn(&str) -> Result<Duration, String> + Clone {
    move |text| {
        let value = humantime::parse_duration(text)
            .map_err(|e| format!("{e} (a duration such as 500ms, 30s or 5m)"))?;
        dynalert_server::options::check_bounds(option, value, bounds).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_parsed_and_bounded() {
        let parse = interval("--reload-interval");
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse("1m 30s"), Ok(Duration::from_secs(90)));
        for zero in ["0", "0s", "0ms"] {
            assert_eq!(
                parse(zero).unwrap_err(),
                "--reload-interval 0s: must be between 100ms and 1h",
                "{zero}"
            );
        }
        assert!(
            parse("1ms")
                .unwrap_err()
                .starts_with("--reload-interval 1ms: must be")
        );
        assert!(
            parse("61m")
                .unwrap_err()
                .starts_with("--reload-interval 1h 1m: must be")
        );
        // Once wrapped to 0 (2^62 minutes is 2^64 * 15 seconds).
        assert!(
            parse("4611686018427387904m")
                .unwrap_err()
                .contains("too large")
        );
        assert!(parse("30").unwrap_err().contains("time unit needed"));
        assert!(parse("soon").is_err());
        let debounce = bounded("--debounce", ServeOptions::DEBOUNCE_BOUNDS);
        assert_eq!(debounce("10ms"), Ok(Duration::from_millis(10)));
        assert!(debounce("2m").unwrap_err().contains("between 10ms and 1m"));
    }
}
