//! A real vmalert (Debian `victoria-metrics`) on 127.0.0.1, evaluating rule files against a
//! Prometheus-compatible datasource such as a [`crate::Prometheus`] under test.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::child::{ChildGuard, spawn_ready};
use crate::http::Http;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `vmalert` evaluating every second, killed on drop.
pub struct Vmalert {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    http: Http,
    url: String,
    _dir: TempDir,
}

impl Vmalert {
    /// Starts vmalert on `rule_globs` (each a `-rule` pattern), querying `datasource_url`, and
    /// waits for `/health`. `args` are extra flags, e.g. `-remoteWrite.url=…` (vmalert refuses
    /// recording rules without one) or `-external.label=…`. vmalert also refuses alerting
    /// rules without a notifier: unless `args` name one, it gets a loopback port nobody
    /// listens on. `Ok(None)` when vmalert is not installed and components are not required.
    pub fn start(
        rule_globs: &[&Path],
        datasource_url: &str,
        args: &[String],
    ) -> Result<Option<Vmalert>> {
        let Some(binary) = crate::require_binary("vmalert") else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-vmalert-")
            .tempdir()
            .context("creating a temporary directory for vmalert")?;
        let notifier = (!args.iter().any(|a| a.starts_with("-notifier.")))
            .then(|| format!("-notifier.url=http://127.0.0.1:{}", crate::free_port()));
        let http = Http::new()?;
        let (child, port) = spawn_ready(
            "vmalert",
            &http,
            &dir.path().join("vmalert.log"),
            "/health",
            READY_TIMEOUT,
            |port| {
                let mut command = Command::new(&binary);
                command
                    .args(
                        rule_globs
                            .iter()
                            .map(|glob| format!("-rule={}", glob.display())),
                    )
                    .arg(format!("-datasource.url={datasource_url}"))
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .arg("-evaluationInterval=1s")
                    .args(&notifier)
                    .args(args);
                command
            },
        )?;
        Ok(Some(Vmalert {
            child,
            http,
            url: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        }))
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// The last lines vmalert logged, for error messages.
    pub fn log_tail(&self) -> String {
        self.child.log_tail()
    }

    /// `GET <url><path>` on vmalert's Prometheus-compatible API (`/api/v1/rules`,
    /// `/api/v1/alerts`), returning the `data` member of a `"status": "success"` answer.
    pub fn api_get(&self, path: &str) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        let response = self.http.get(&url, &[])?;
        let mut body = response.json()?;
        if body["status"] != "success" {
            bail!(
                "vmalert API {path} failed (HTTP {}): {}",
                response.status,
                response.body
            );
        }
        Ok(body["data"].take())
    }
}
