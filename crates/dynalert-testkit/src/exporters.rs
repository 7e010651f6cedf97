//! Real Prometheus exporters (Debian `prometheus-mysqld-exporter`, `prometheus-redis-exporter`)
//! on 127.0.0.1, pointed at a [`crate::MariaDb`] or [`crate::Redis`].

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::child::{ChildGuard, spawn_ready};
use crate::http::Http;
use crate::prometheus::ScrapeTarget;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running exporter, killed on drop.
struct Exporter {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    http: Http,
    port: u16,
    _dir: TempDir,
}

impl Exporter {
    /// Spawns the exporter, waits for `/metrics`, then until `up_line` (e.g. `mysql_up 1`)
    /// is in it, so that a wrong password or address fails here and not in a later query.
    fn start(
        name: &str,
        up_line: &str,
        command_for_port: impl Fn(u16, &Path) -> Command,
    ) -> Result<Option<Exporter>> {
        let Some(binary) = crate::require_binary(name) else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("dynalert-{name}-"))
            .tempdir()
            .with_context(|| format!("creating a temporary directory for {name}"))?;
        let http = Http::new()?;
        let (child, port) = spawn_ready(
            name,
            &http,
            &dir.path().join(format!("{name}.log")),
            "/metrics",
            READY_TIMEOUT,
            |port| command_for_port(port, &binary),
        )?;
        let exporter = Exporter {
            child,
            http,
            port,
            _dir: dir,
        };
        exporter.wait_for_line(up_line)?;
        Ok(Some(exporter))
    }

    fn metrics(&self) -> Result<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        let response = self.http.get(&url, &[])?;
        if !response.is_success() {
            bail!("GET {url}: HTTP {}: {}", response.status, response.body);
        }
        Ok(response.body)
    }

    fn wait_for_line(&self, line: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let body = self.metrics()?;
            if body.lines().any(|l| l.trim() == line) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let ups: Vec<&str> = body.lines().filter(|l| l.contains("_up")).collect();
                bail!(
                    "{} never reported `{line}` within {READY_TIMEOUT:?} (its *_up lines: {ups:?}); log {}:\n{}",
                    self.child.name(),
                    self.child.log_path().display(),
                    self.child.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// A running `prometheus-mysqld-exporter` (0.14), killed on drop.
pub struct MysqldExporter {
    inner: Exporter,
}

impl MysqldExporter {
    /// Starts the exporter with `dsn` as its `DATA_SOURCE_NAME` (see
    /// [`crate::MariaDb::exporter_dsn`]) and the default collectors, and waits until it reports
    /// `mysql_up 1`. `Ok(None)` when it is not installed and components are not required.
    pub fn start(dsn: &str) -> Result<Option<MysqldExporter>> {
        let inner = Exporter::start(
            "prometheus-mysqld-exporter",
            "mysql_up 1",
            |port, binary| {
                let mut command = Command::new(binary);
                command
                    .env("DATA_SOURCE_NAME", dsn)
                    // Never fall back to the invoking user's credentials.
                    .arg("--config.my-cnf=/dev/null")
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"));
                command
            },
        )?;
        Ok(inner.map(|inner| MysqldExporter { inner }))
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    pub fn log_path(&self) -> &Path {
        self.inner.child.log_path()
    }

    /// The exporter's current `/metrics` text.
    pub fn metrics(&self) -> Result<String> {
        self.inner.metrics()
    }

    /// A scrape job for [`crate::Prometheus`] reading this exporter.
    pub fn scrape_target(&self, job: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget::new(job, self.inner.port)
    }
}

/// A running `prometheus-redis-exporter` (oliver006/redis_exporter 1.45), killed on drop.
pub struct RedisExporter {
    inner: Exporter,
}

impl RedisExporter {
    /// Starts the exporter for `redis_url` (see [`crate::Redis::url`]) and waits until it
    /// reports `redis_up 1`. `single_keys` go to `-check-single-keys` (`key` or `db0=key`):
    /// for each, the exporter exports `redis_key_size{db, key}` (a list's length).
    /// `Ok(None)` when it is not installed and components are not required.
    pub fn start(redis_url: &str, single_keys: &[&str]) -> Result<Option<RedisExporter>> {
        let inner = Exporter::start("prometheus-redis-exporter", "redis_up 1", |port, binary| {
            let mut command = Command::new(binary);
            command
                .arg(format!("-redis.addr={redis_url}"))
                .arg(format!("-web.listen-address=127.0.0.1:{port}"));
            if !single_keys.is_empty() {
                command.arg(format!("-check-single-keys={}", single_keys.join(",")));
            }
            command
        })?;
        Ok(inner.map(|inner| RedisExporter { inner }))
    }

    pub fn port(&self) -> u16 {
        self.inner.port
    }

    pub fn log_path(&self) -> &Path {
        self.inner.child.log_path()
    }

    /// The exporter's current `/metrics` text.
    pub fn metrics(&self) -> Result<String> {
        self.inner.metrics()
    }

    /// A scrape job for [`crate::Prometheus`] reading this exporter.
    pub fn scrape_target(&self, job: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget::new(job, self.inner.port)
    }
}
