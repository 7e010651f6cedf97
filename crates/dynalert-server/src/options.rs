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
}

impl ServeOptions {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(500);
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);
    /// Room for 50,000 tenants with 30 keys each (1.8 million series) and growth.
    pub const DEFAULT_MAX_SERIES: usize = 4_000_000;

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
        }
    }

    /// The conf.d directory, when the store is one.
    pub fn config_dir(&self) -> Option<&Path> {
        match &self.store {
            StoreSpec::Dir(path) => Some(path),
            _ => None,
        }
    }
}
