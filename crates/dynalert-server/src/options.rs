//! What `dynalert serve` is told on its command line: where to listen, which conf.d tree to
//! serve and how eagerly to re-read it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Settings for [`crate::run`] and [`crate::serve_on`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Address of the HTTP listener (`run` only; `serve_on` is handed a bound listener).
    pub listen: SocketAddr,
    /// Root of the conf.d tree.
    pub config_dir: PathBuf,
    /// Period of the full re-scan that backs up the file watcher (events can be lost: an
    /// inotify queue overflow, a network filesystem, a watch limit reached).
    pub reload_interval: Duration,
    /// How long the tree must stay quiet after a change before it is re-read, so an editor's
    /// save or a ConfigMap swap (several events) costs one reload.
    pub debounce: Duration,
    /// Keys known without a platform file declaring them (the rule packs' keys).
    pub known_keys: Vec<String>,
}

impl ServeOptions {
    pub const DEFAULT_LISTEN: SocketAddr =
        SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 8080);
    pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(300);

    /// Defaults for everything but the tree: listen on `0.0.0.0:8080`, re-scan every 30 s,
    /// debounce 300 ms.
    pub fn new(config_dir: impl Into<PathBuf>) -> Self {
        ServeOptions {
            listen: Self::DEFAULT_LISTEN,
            config_dir: config_dir.into(),
            reload_interval: Self::DEFAULT_RELOAD_INTERVAL,
            debounce: Self::DEFAULT_DEBOUNCE,
            known_keys: Vec::new(),
        }
    }
}
