//! [`Server`]: `dynalert serve` inside the test's process, on a port of 127.0.0.1 the OS
//! picks, answering real HTTP until it is stopped or dropped. Every in-process server of these
//! tests starts here, and is handed to the test only once `/ready` answers 200.

use std::path::Path;
use std::time::{Duration, Instant};

use dynalert_server::{ServeError, ServeOptions, serve_on};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for something it expects (readiness, a change being served, a
/// clean shutdown) before it fails saying what never happened. A guard against hanging, not a
/// measurement: how fast the server is belongs to the benchmarks (`dynalert-bench`).
pub const WAIT: Duration = Duration::from_secs(30);
/// A re-scan period no test outlives: every change a test sees came through the file
/// watcher or the store's notifications.
pub const NO_RESCAN: Duration = Duration::from_secs(3600);
/// Pause between two looks at a condition being waited for.
const POLL: Duration = Duration::from_millis(20);

pub struct Server {
    pub base: String,
    /// Plain client: no automatic gzip (tests see exactly what was sent), no proxy.
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

/// A response: status, the headers tests look at, and the body as text and as JSON (`Null`
/// when it is not JSON).
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub content_type: String,
    pub text: String,
    pub json: Value,
}

impl Server {
    /// Serves the conf.d `dir` with the defaults of `dynalert serve`, except the periodic
    /// re-scan ([`NO_RESCAN`]).
    pub async fn start(dir: &Path) -> Server {
        let mut opts = ServeOptions::new(dir);
        opts.reload_interval = NO_RESCAN;
        Server::serve(opts).await
    }

    /// Serves `opts` (`listen` is ignored: the server gets its own loopback port) and returns
    /// once `/ready` answers 200. Panics with the server's error if it stops first, and after
    /// [`WAIT`] without readiness.
    pub async fn serve(opts: ServeOptions) -> Server {
        init_logging();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, opts, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_gzip()
            .no_proxy()
            .build()
            .unwrap();
        let mut server = Server {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
        };
        server.wait_until_ready().await;
        server
    }

    async fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                let ended = self.task.take().unwrap().await;
                panic!("the server stopped before it was ready: {ended:?}");
            }
            let last = match self.client.get(self.url("/ready")).send().await {
                Ok(response) if response.status() == 200 => return,
                Ok(response) => format!(
                    "HTTP {}: {}",
                    response.status(),
                    response.text().await.unwrap_or_default()
                ),
                Err(error) => error.to_string(),
            };
            assert!(
                Instant::now() < deadline,
                "the server never became ready (gave up after {WAIT:?}); last /ready: {last}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` (from the root: `/metrics`, `/api/v1/…`), to finish and [`send`].
    ///
    /// [`send`]: Server::send
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Sends `request` and reads the whole reply.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let etag = header("etag");
        let content_type = header("content-type").unwrap_or_default();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            etag,
            content_type,
            text,
            json,
        }
    }

    /// `GET path` without credentials: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let reply = self.send(self.request(Method::GET, path)).await;
        (reply.status, reply.text)
    }

    pub async fn metrics(&self) -> String {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        body
    }

    pub async fn config(&self) -> Value {
        let (code, body) = self.get("/api/v1/config").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Polls `/metrics` until `done` holds and returns that body; fails after [`WAIT`] with
    /// `what` and the last body.
    pub async fn wait_for_metrics(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let body = self.metrics().await;
            if done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: never served (gave up after {WAIT:?}); /metrics:\n{body}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Polls `/metrics` until it has (`present`) or lacks (`!present`) the exact line `line`.
    pub async fn wait_for_line(&self, line: &str, present: bool) -> String {
        let what = format!(
            "a /metrics {} {line:?}",
            if present { "with" } else { "without" }
        );
        self.wait_for_metrics(&what, |body| body.lines().any(|l| l == line) == present)
            .await
    }

    /// Stops the server as SIGTERM would and checks that it exits cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let ended = tokio::time::timeout(WAIT, self.task.take().unwrap())
            .await
            .unwrap_or_else(|_| panic!("the server never shut down (gave up after {WAIT:?})"));
        ended.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The server's logs go to the test's captured output, shown when it fails.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dynalert_server=debug"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}
