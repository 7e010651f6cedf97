//! A real Alertmanager (Debian `prometheus-alertmanager`) on 127.0.0.1, and a webhook receiver
//! inside the test process that records what it notifies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::child::{ChildGuard, spawn_ready};
use crate::http::Http;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `prometheus-alertmanager` (clustering off), killed on drop.
pub struct Alertmanager {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    http: Http,
    url: String,
    port: u16,
    _dir: TempDir,
}

impl Alertmanager {
    /// Starts Alertmanager with `config_yaml` as its `alertmanager.yml` and waits for
    /// `/-/ready`. `Ok(None)` when it is not installed and components are not required.
    pub fn start(config_yaml: &str) -> Result<Option<Alertmanager>> {
        let Some(binary) = crate::require_binary("prometheus-alertmanager") else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-alertmanager-")
            .tempdir()
            .context("creating a temporary directory for Alertmanager")?;
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config_yaml)
            .with_context(|| format!("writing {}", config_path.display()))?;
        let storage = dir.path().join("data");
        let http = Http::new()?;
        let (child, port) = spawn_ready(
            "prometheus-alertmanager",
            &http,
            &dir.path().join("alertmanager.log"),
            "/-/ready",
            READY_TIMEOUT,
            |port| {
                let mut command = Command::new(&binary);
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.path={}", storage.display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    // An empty address turns clustering (and its gossip port) off.
                    .arg("--cluster.listen-address=");
                command
            },
        )?;
        Ok(Some(Alertmanager {
            child,
            http,
            url: format!("http://127.0.0.1:{port}"),
            port,
            _dir: dir,
        }))
    }

    /// Starts Alertmanager routing every alert to `webhook_url` within about a second
    /// ([`Alertmanager::webhook_config`]).
    pub fn start_with_webhook(webhook_url: &str) -> Result<Option<Alertmanager>> {
        Self::start(&Self::webhook_config(webhook_url))
    }

    /// A config sending every alert, grouped by `alertname` and `tenant`, to `webhook_url`:
    /// group_wait and group_interval 1 s, resolved notifications on.
    pub fn webhook_config(webhook_url: &str) -> String {
        let url = serde_json::to_string(webhook_url).expect("a string always serialises");
        format!(
            "route:\n  receiver: webhook\n  group_by: [alertname, tenant]\n  group_wait: 1s\n  \
             group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: webhook\n    webhook_configs:\n      - url: {url}\n        \
             send_resolved: true\n"
        )
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// The `alerting:` block that makes a [`crate::Prometheus`] send its alerts here (for
    /// [`crate::PrometheusBuilder::extra_config`]).
    pub fn prometheus_alerting_config(&self) -> String {
        format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [\"127.0.0.1:{}\"]\n",
            self.port
        )
    }

    /// The alerts Alertmanager holds (`GET /api/v2/alerts`), as JSON objects with `labels`,
    /// `status.state`, `startsAt`, ….
    pub fn alerts(&self) -> Result<Vec<Value>> {
        let url = format!("{}/api/v2/alerts", self.url);
        let response = self.http.get(&url, &[])?;
        if !response.is_success() {
            bail!("GET {url}: HTTP {}: {}", response.status, response.body);
        }
        match response.json()? {
            Value::Array(alerts) => Ok(alerts),
            other => bail!("GET {url} did not return an array: {other}"),
        }
    }
}

/// An HTTP server on 127.0.0.1 inside the test process that records the JSON body of every
/// `POST` it receives (Alertmanager's webhook notifications) and answers 200. Stopped on drop.
pub struct WebhookReceiver {
    port: u16,
    received: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebhookReceiver {
    pub fn start() -> Result<WebhookReceiver> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the webhook receiver's port")?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("webhook-receiver".into())
                .spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(stream) = stream else { continue };
                        match read_post_body(stream) {
                            Ok(Some(body)) => {
                                let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                                    Value::String(String::from_utf8_lossy(&body).into_owned())
                                });
                                received.lock().unwrap().push(value);
                            }
                            Ok(None) => {}
                            Err(error) => eprintln!("webhook receiver: {error:#}"),
                        }
                    }
                })
                .context("spawning the webhook receiver thread")?
        };
        Ok(WebhookReceiver {
            port,
            received,
            stop,
            thread: Some(thread),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>/alerts`, for [`Alertmanager::start_with_webhook`].
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/alerts", self.port)
    }

    /// Every notification body received so far, oldest first.
    pub fn notifications(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// The alerts of every notification so far, flattened (each has `status`, `labels`, …).
    pub fn alerts(&self) -> Vec<Value> {
        self.notifications()
            .iter()
            .filter_map(|n| n["alerts"].as_array())
            .flatten()
            .cloned()
            .collect()
    }

    /// Polls [`Self::alerts`] every 200 ms until `predicate` accepts them; fails after
    /// `timeout` with everything received so far.
    pub fn wait_for(
        &self,
        what: &str,
        predicate: impl Fn(&[Value]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let alerts = self.alerts();
            if predicate(&alerts) {
                return Ok(alerts);
            }
            if Instant::now() >= deadline {
                bail!(
                    "the webhook did not receive {what} within {timeout:?}; notifications so far: {}",
                    Value::Array(self.notifications())
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for WebhookReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP/1.1 request, answers `200 OK` (closing the connection), and returns the
/// body of a `POST` (`None` for other methods).
fn read_post_body(stream: TcpStream) -> Result<Option<Vec<u8>>> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(None); // a bare connect, e.g. the wake-up from Drop
    }
    let mut content_length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            bail!("connection closed inside the headers of {request_line:?}");
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().context("a bad Content-Length")?;
        }
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    let mut stream = stream;
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?;
    stream.flush()?;
    Ok(request_line.starts_with("POST ").then_some(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_receiver_records_posted_alerts() {
        let receiver = WebhookReceiver::start().unwrap();
        let http = Http::new().unwrap();
        let body = r#"{"status":"firing","alerts":[{"status":"firing","labels":{"tenant":"a"}}]}"#;
        let response = http
            .post(&receiver.url(), "application/json", body.to_owned())
            .unwrap();
        assert_eq!(response.status, 200);
        let alerts = receiver
            .wait_for("one alert", |a| a.len() == 1, Duration::from_secs(5))
            .unwrap();
        assert_eq!(alerts[0]["labels"]["tenant"], "a");
        assert_eq!(receiver.notifications()[0]["status"], "firing");
    }

    #[test]
    fn the_webhook_config_routes_everything_to_the_url_quickly() {
        let yaml = Alertmanager::webhook_config("http://127.0.0.1:1/alerts");
        assert!(yaml.contains("- url: \"http://127.0.0.1:1/alerts\"\n"));
        assert!(yaml.contains("group_wait: 1s\n"));
        assert!(yaml.contains("send_resolved: true\n"));
    }
}
