//! A dynalert server on 127.0.0.1:0 serving a temporary conf.d, and helpers to read it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use dynalert_server::{ServeError, ServeOptions, serve_on};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a change may take to be served (CONFIG.md, "Reload and failure behaviour").
pub const SERVE_WITHIN: Duration = Duration::from_secs(1);
/// How long tests wait before giving up (generous: a slow machine must fail the assertion on
/// the measured time, not time out without saying how long it took).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(3);

pub struct Server {
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    /// Starts serving `dir` and waits until `/ready` is 200. The periodic re-scan is an hour
    /// away, so every change a test sees came through the file watcher.
    pub async fn start(dir: &Path) -> Server {
        // Logs go to the test's captured output, shown when it fails.
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dynalert_server=debug"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut opts = ServeOptions::new(dir);
        opts.reload_interval = Duration::from_secs(3600);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, opts, async move {
            let _ = stopped.await;
        }));
        // Plain client: no automatic gzip, so tests see exactly what was sent.
        let client = reqwest::Client::builder()
            .no_gzip()
            .no_proxy()
            .build()
            .unwrap();
        let server = Server {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, _) = server.get("/ready").await;
            if code == 200 {
                return server;
            }
            assert!(Instant::now() < deadline, "server not ready after 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        body
    }

    pub async fn config(&self) -> serde_json::Value {
        let (code, body) = self.get("/api/v1/config").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/metrics` every 50 ms until `done` holds; returns how long it took from the call.
    pub async fn wait_for_metrics(&self, what: &str, done: impl Fn(&str) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let body = self.metrics().await;
            if done(&body) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < GIVE_UP_AFTER,
                "{what}: not served after {GIVE_UP_AFTER:?}; /metrics:\n{body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the server as SIGTERM would and checks it exits cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap())
            .await
            .expect("server did not shut down within 5 s");
        result.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Asserts a change was served within [`SERVE_WITHIN`] and prints the measurement.
pub fn assert_served_in_time(what: &str, took: Duration) {
    eprintln!("{what}: served after {} ms", took.as_millis());
    assert!(
        took <= SERVE_WITHIN,
        "{what}: served after {took:?}, more than {SERVE_WITHIN:?}"
    );
}

/// One sample of the text format: name, labels, value.
pub type Sample = (String, BTreeMap<String, String>, f64);

/// Parses the samples of a text-format body (label values in tests hold no `"` or `,`).
pub fn samples(body: &str) -> Vec<Sample> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in {line:?}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv
                        .split_once("=\"")
                        .unwrap_or_else(|| panic!("bad labels in {line:?}"));
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            (name.to_string(), labels, value)
        })
        .collect()
}

/// The value of `user_threshold` for a tenant's key (no dimensions) at `severity`.
pub fn threshold(body: &str, tenant: &str, key: &str, severity: &str) -> Option<f64> {
    let (component, metric) = key.split_once('_').unwrap();
    samples(body).into_iter().find_map(|(name, labels, value)| {
        let wanted = [
            ("tenant", tenant),
            ("component", component),
            ("metric", metric),
            ("severity", severity),
        ];
        (name == "user_threshold"
            && labels.len() == wanted.len()
            && wanted
                .iter()
                .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v)))
        .then_some(value)
    })
}

/// The value of a series with exactly these labels.
pub fn series(body: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(body).into_iter().find_map(|(n, l, value)| {
        (n == name
            && l.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
        .then_some(value)
    })
}

pub const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n  redis_memory_usage: 85\n";

pub fn tenant(name: &str, connections: u32) -> String {
    format!("tenants:\n  {name}:\n    mysql_connections: {connections}\n")
}

/// A conf.d with `_defaults.yaml` and tenant `db-a` (mysql_connections 70) in `a.yaml`.
pub fn conf_d() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("_defaults.yaml"), DEFAULTS).unwrap();
    std::fs::write(dir.path().join("a.yaml"), tenant("db-a", 70)).unwrap();
    dir
}
