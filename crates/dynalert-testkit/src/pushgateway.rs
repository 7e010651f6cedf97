//! A real Prometheus Pushgateway on 127.0.0.1, for feeding synthetic "live" metrics to a
//! [`crate::Prometheus`] under test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

use crate::child::{ChildGuard, spawn_ready};
use crate::http::Http;
use crate::prometheus::ScrapeTarget;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `prometheus-pushgateway`, killed on drop. It keeps nothing on disk.
pub struct Pushgateway {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    http: Http,
    url: String,
    port: u16,
    _dir: TempDir,
}

impl Pushgateway {
    /// Starts the Pushgateway and waits for `/-/ready`. `Ok(None)` when it is not installed
    /// and components are not required (see [`crate::require_binary`]).
    pub fn start() -> Result<Option<Pushgateway>> {
        let Some(binary) = crate::require_binary("prometheus-pushgateway") else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-pushgateway-")
            .tempdir()
            .context("creating a temporary directory for the Pushgateway")?;
        let http = Http::new()?;
        let (child, port) = spawn_ready(
            "prometheus-pushgateway",
            &http,
            &dir.path().join("pushgateway.log"),
            "/-/ready",
            READY_TIMEOUT,
            |port| {
                let mut command = Command::new(&binary);
                command.arg(format!("--web.listen-address=127.0.0.1:{port}"));
                // In memory only: Debian's build persists to /var/lib/prometheus by default,
                // so every start loaded what any earlier run pushed (a benchmark's 380,000
                // series made the next test's scrape time out).
                command.arg("--persistence.file=");
                command
            },
        )?;
        Ok(Some(Pushgateway {
            child,
            http,
            url: format!("http://127.0.0.1:{port}"),
            port,
            _dir: dir,
        }))
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for reading its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// A scrape job for [`crate::Prometheus`] that keeps the pushed `job`/`instance` labels.
    pub fn scrape_target(&self, job: impl Into<String>) -> ScrapeTarget {
        ScrapeTarget::new(job, self.port).with_honor_labels()
    }

    /// Replaces every metric of group `job` with `exposition` (Prometheus text format),
    /// i.e. `PUT /metrics/job/<job>`.
    pub fn push(&self, job: &str, exposition: &str) -> Result<()> {
        let mut body = exposition.to_owned();
        if !body.ends_with('\n') {
            body.push('\n'); // the text format requires a final newline
        }
        let url = format!("{}/metrics/job/{job}", self.url);
        let response = self.http.put(&url, "text/plain; version=0.0.4", body)?;
        if !response.is_success() {
            bail!(
                "Pushgateway rejected the push to {url} (HTTP {}): {}",
                response.status,
                response.body.trim()
            );
        }
        Ok(())
    }

    /// Removes group `job` (`DELETE /metrics/job/<job>`).
    pub fn delete(&self, job: &str) -> Result<()> {
        let url = format!("{}/metrics/job/{job}", self.url);
        let response = self.http.delete(&url)?;
        if !response.is_success() {
            bail!(
                "Pushgateway delete of {url} failed (HTTP {})",
                response.status
            );
        }
        Ok(())
    }
}
