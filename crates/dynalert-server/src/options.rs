//! What `dynalert serve` is told on its command line: where to listen, which store to serve
//! and how eagerly to re-read it, and who may change it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dynalert_config::Limits;
use dynalert_store::StoreSpec;

/// Settings for [`crate::run`] and [`crate::serve_on`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address of the HTTP listener (`run` only; `serve_on` is handed a bound listener).
    pub listen: SocketAddr,
    /// Where the threshold documents live: a conf.d directory (GitOps), SQLite or PostgreSQL.
    pub store: StoreSpec,
    /// Period of the full re-scan (directory) or re-read (database) that backs up change
    /// notifications (events can be lost: an inotify queue overflow, a network filesystem, a
    /// watch limit reached, a database connection dropped).
    pub reload_interval: Duration,
    /// How often a PostgreSQL store is polled for other replicas' writes in case a
    /// notification was lost.
    pub poll_interval: Duration,
    /// How long the tree must stay quiet after a file change before it is re-read, so an
    /// editor's save or a ConfigMap swap (several events) costs one reload.
    pub debounce: Duration,
    /// Files of a conf.d tree larger than this many bytes are refused with a diagnostic.
    pub max_file_size: u64,
    /// Keys known without a platform file declaring them (the rule packs' keys).
    pub known_keys: Vec<String>,
    /// Bounds on one tenant's document.
    pub limits: Limits,
    /// Most `user_threshold` series served in all: an API write that would go over it is
    /// refused.
    pub max_series: usize,
    /// Bearer tokens and their roles. Without it the management API is read-only.
    pub auth_file: Option<PathBuf>,
    /// A conf.d tree to copy into an empty database store at start.
    pub import: Option<PathBuf>,
    /// The shortest time without a completed reload cycle that counts as a stall (`/ready`
    /// fails, `dynalert_reload_stalled` is 1). The limit is the larger of this and
    /// [`ServeOptions::STALL_PERIODS`] times the loop's longest healthy wait (its re-scan or
    /// poll period, or a full debounce); see [`ServeOptions::stall_limit`]. Not a command-line
    /// option: tests shorten it to see a stall without waiting a minute.
    pub stall_floor: Duration,
}

/// A duration option outside its bounds.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{option} {value}: must be between {min} and {max}", value = humantime::format_duration(*.value), min = humantime::format_duration(.bounds.0), max = humantime::format_duration(.bounds.1))]
pub struct OutOfBounds {
    pub option: &'static str,
    pub value: Duration,
    pub bounds: (Duration, Duration),
}

impl ServeOptions {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);
    /// Room for 50,000 tenants with 30 keys each (1.8 million series) and growth.
    pub const DEFAULT_MAX_SERIES: usize = 4_000_000;
    pub const DEFAULT_STALL_FLOOR: Duration = Duration::from_secs(60);
    /// How many of its longest healthy waits the reload loop may go without completing a
    /// cycle before it counts as stalled.
    pub const STALL_PERIODS: u32 = 3;

    /// Bounds of `reload_interval` and `poll_interval`. A zero period cannot tick at all (it
    /// panicked the reload task), a 1 ms one re-read the store a thousand times a second for
    /// a third of a core; past an hour a missed change waits too long.
    pub const INTERVAL_BOUNDS: (Duration, Duration) =
        (Duration::from_millis(100), Duration::from_secs(3600));
    /// Bounds of `debounce`: below 10 ms an editor's save is several reloads; past a minute an
    /// edit waits too long.
    pub const DEBOUNCE_BOUNDS: (Duration, Duration) =
        (Duration::from_millis(10), Duration::from_secs(60));

    /// Defaults for serving the conf.d tree `config_dir`: listen on `0.0.0.0:8080`, re-scan
    /// every 30 s, debounce 300 ms.
    pub fn new(config_dir: impl Into<PathBuf>) -> Self {
        Self::with_store(StoreSpec::Dir(config_dir.into()))
    }

    /// The same defaults for any store.
    pub fn with_store(store: StoreSpec) -> Self {
        ServeOptions {
            listen: Self::DEFAULT_LISTEN,
            store,
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            debounce: Self::DEFAULT_DEBOUNCE,
            max_file_size: dynalert_store::DEFAULT_MAX_FILE_SIZE,
            known_keys: Vec::new(),
            limits: Limits::DEFAULT,
            max_series: Self::DEFAULT_MAX_SERIES,
            auth_file: None,
            import: None,
            stall_floor: Self::DEFAULT_STALL_FLOOR,
        }
    }

    /// Refuses durations outside their bounds, naming the command-line option.
    pub fn validate(&self) -> Result<(), OutOfBounds> {
        check_bounds(
            "--reload-interval",
            self.reload_interval,
            Self::INTERVAL_BOUNDS,
        )?;
        check_bounds("--poll-interval", self.poll_interval, Self::INTERVAL_BOUNDS)?;
        check_bounds("--debounce", self.debounce, Self::DEBOUNCE_BOUNDS)?;
        Ok(())
    }

    /// How long the reload loop may go without completing a cycle before it counts as
    /// stalled, when it re-reads its source every `period`: [`Self::STALL_PERIODS`] times the
    /// longest wait of a healthy loop (the period, or a debounce stretched by a stream of file
    /// events), and never less than `stall_floor`.
    pub fn stall_limit(&self, period: Duration) -> Duration {
        let longest_wait = period.max(self.debounce * crate::reload::MAX_DEBOUNCE_PERIODS);
        longest_wait
            .saturating_mul(Self::STALL_PERIODS)
            .max(self.stall_floor)
    }

    /// The conf.d directory, when the store is one.
    pub fn config_dir(&self) -> Option<&Path> {
        match &self.store {
            StoreSpec::Dir(path) => Some(path),
            _ => None,
        }
    }
}

/// `value` if it lies within `bounds` (inclusive), else why not.
pub fn check_bounds(
    option: &'static str,
    value: Duration,
    bounds: (Duration, Duration),
) -> Result<Duration, OutOfBounds> {
    if (bounds.0..=bounds.1).contains(&value) {
        Ok(value)
    } else {
        Err(OutOfBounds {
            option,
            value,
            bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_outside_their_bounds_are_refused_by_name() {
        let mut opts = ServeOptions::new("conf.d");
        assert_eq!(opts.validate(), Ok(()));
        opts.reload_interval = Duration::ZERO;
        assert_eq!(
            opts.validate().unwrap_err().to_string(),
            "--reload-interval 0s: must be between 100ms and 1h"
        );
        opts.reload_interval = Duration::from_secs(3600);
        opts.poll_interval = Duration::from_millis(99);
        assert!(
            opts.validate()
                .unwrap_err()
                .to_string()
                .starts_with("--poll-interval 99ms")
        );
        opts.poll_interval = Duration::from_millis(100);
        opts.debounce = Duration::from_secs(61);
        assert_eq!(
            opts.validate().unwrap_err().to_string(),
            "--debounce 1m 1s: must be between 10ms and 1m"
        );
    }

    #[test]
    fn the_stall_limit_is_three_of_the_longest_waits_and_at_least_the_floor() {
        let mut opts = ServeOptions::new("conf.d");
        let secs = Duration::from_secs;
        // The floor wins for short periods.
        assert_eq!(opts.stall_limit(Duration::from_millis(500)), secs(60));
        assert_eq!(opts.stall_limit(secs(30)), secs(90));
        assert_eq!(opts.stall_limit(secs(3600)), secs(3 * 3600));
        // A long debounce is a long healthy wait too.
        opts.debounce = secs(60);
        assert_eq!(opts.stall_limit(secs(1)), secs(3 * 3 * 60));
        // The floor is an option for tests.
        opts.debounce = Duration::from_millis(10);
        opts.stall_floor = Duration::from_millis(200);
        assert_eq!(
            opts.stall_limit(Duration::from_millis(100)),
            Duration::from_millis(300)
        );
    }
}
