//! `serve` with a scripted source in place of the store's, over HTTP on a loopback port: a
//! reload task that panics ends `serve` with an error (the process then exits non-zero); a
//! source that stops answering stalls the loop, which fails `/ready` and sets
//! `dynalert_reload_stalled` until a cycle completes again; a source that answers with errors
//! (a store down) is no stall: `/ready` stays 200, the last good thresholds stay served,
//! `dynalert_store_up` is 0 and the served model's age grows.
//!
//! The stall floor is shortened to 300 ms (`ServeOptions::stall_floor`), so a stall shows
//! without waiting a minute. Every wait polls for the state it expects. A shutdown ends
//! `serve` even while the loop is stalled.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dynalert_config::{Delta, Upsert};
use tokio::sync::{Notify, broadcast, oneshot};
use tokio::task::JoinHandle;

use crate::reload::{DocumentSource, Feed};
use crate::source::{SourceError, Trigger};
use crate::{ServeError, ServeOptions, prepare, serve_feed};

/// How long a test waits for what it expects before it fails.
const GIVE_UP: Duration = Duration::from_secs(20);

const THRESHOLD: &str = "user_threshold{tenant=\"a\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 70";

/// What the scripted source does when the loop reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    /// Hands over two documents the first time, nothing new afterwards.
    Answer,
    /// Fails as an unreachable store does.
    Fail,
    /// Never answers until told to behave otherwise (and woken).
    Hang,
    Panic,
    /// Fails as a directory source whose reader panicked on its blocking thread.
    ReaderPanics,
}

struct Scripted {
    behaviour: Arc<Mutex<Behaviour>>,
    woken: Arc<Notify>,
    handed_over: bool,
}

impl DocumentSource for Scripted {
    async fn read(&mut self, _trigger: Trigger) -> Result<Delta, SourceError> {
        loop {
            let behaviour = *self.behaviour.lock().unwrap();
            match behaviour {
                Behaviour::Answer if self.handed_over => return Ok(Delta::default()),
                Behaviour::Answer => {
                    self.handed_over = true;
                    return Ok(Delta {
                        upserts: vec![
                            Upsert::text("_defaults.yaml", "defaults:\n  mysql_connections: 80\n"),
                            Upsert::text("a.yaml", "tenants:\n  a:\n    mysql_connections: 70\n"),
                        ],
                        removed: Vec::new(),
                    });
                }
                Behaviour::Fail => return Err(SourceError::NoAnswer(Duration::from_secs(20))),
                Behaviour::Hang => self.woken.notified().await,
                Behaviour::Panic => panic!("injected: the source panicked"),
                Behaviour::ReaderPanics => {
                    let lost =
                        tokio::task::spawn_blocking(|| panic!("injected: the reader panicked"));
                    return Err(SourceError::Worker(lost.await.unwrap_err()));
                }
            }
        }
    }

    fn forget(&mut self) {
        self.handed_over = false;
    }
}

struct Running {
    base: String,
    client: reqwest::Client,
    behaviour: Arc<Mutex<Behaviour>>,
    woken: Arc<Notify>,
    task: JoinHandle<Result<(), ServeError>>,
    stop: oneshot::Sender<()>,
    _announcer: broadcast::Sender<String>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn start() -> Running {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("dynalert_server=debug")
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = ServeOptions::new(dir.path());
        opts.reload_interval = Duration::from_millis(100);
        opts.debounce = Duration::from_millis(10);
        opts.stall_floor = Duration::from_millis(300);
        let prepared = prepare(&opts).await.unwrap();
        let behaviour = Arc::new(Mutex::new(Behaviour::Answer));
        let woken = Arc::new(Notify::new());
        let announcer = broadcast::channel(16).0;
        let feed = Feed {
            source: Scripted {
                behaviour: behaviour.clone(),
                woken: woken.clone(),
                handed_over: false,
            },
            wake: Arc::new(Notify::new()),
            announced: announcer.subscribe(),
            period: opts.reload_interval,
        };
        assert_eq!(
            opts.stall_limit(feed.period),
            Duration::from_millis(300),
            "three periods of 100 ms"
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_feed(listener, opts, prepared, feed, async move {
            let _ = stopped.await;
        }));
        let running = Running {
            base,
            client: reqwest::Client::builder().no_proxy().build().unwrap(),
            behaviour,
            woken,
            task,
            stop,
            _announcer: announcer,
            _dir: dir,
        };
        running
            .wait_until("ready", |code, body, _| code == 200 && body == "ready\n")
            .await;
        running
    }

    fn behave(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
        self.woken.notify_one();
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let code = response.status().as_u16();
        (code, response.text().await.unwrap())
    }

    /// Polls `/ready` and `/metrics` until `done(ready code, ready body, metrics)`.
    async fn wait_until(&self, what: &str, done: impl Fn(u16, &str, &str) -> bool) -> Seen {
        let start = Instant::now();
        loop {
            let (code, ready) = self.get("/ready").await;
            let (_, metrics) = self.get("/metrics").await;
            if done(code, &ready, &metrics) {
                return Seen {
                    code,
                    ready,
                    metrics,
                };
            }
            assert!(
                start.elapsed() < GIVE_UP,
                "{what}: not seen within {GIVE_UP:?}; /ready {code} {ready}\n{metrics}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

struct Seen {
    code: u16,
    ready: String,
    metrics: String,
}

fn value(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_task_that_panics_ends_serve_with_an_error() {
    let running = Running::start().await;
    running.behave(Behaviour::Panic);
    let ended = tokio::time::timeout(GIVE_UP, running.task)
        .await
        .expect("serve did not end after its reload task panicked")
        .unwrap();
    match ended {
        Err(ServeError::TaskEnded { task, reason }) => {
            assert_eq!(task, "reload");
            assert!(
                reason.contains("panicked: injected: the source panicked"),
                "{reason}"
            );
        }
        other => panic!("expected the reload task's end as an error, got {other:?}"),
    }
}

/// The directory reader cannot be recovered after a panic on its thread (it is lost with it):
/// the reload task ends as if it had panicked itself, instead of reading nothing forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_panics_ends_serve_with_an_error() {
    let running = Running::start().await;
    running.behave(Behaviour::ReaderPanics);
    let ended = tokio::time::timeout(GIVE_UP, running.task)
        .await
        .expect("serve did not end after its reader panicked")
        .unwrap();
    match ended {
        Err(ServeError::TaskEnded { reason, .. }) => {
            assert!(
                reason.contains("panicked: injected: the reader panicked"),
                "{reason}"
            );
        }
        other => panic!("expected the reload task's end as an error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_loop_fails_ready_and_sets_the_stall_metric_until_a_cycle_completes() {
    let running = Running::start().await;
    let seen = running.wait_until("metrics", |_, _, m| !m.is_empty()).await;
    assert_eq!(value(&seen.metrics, "dynalert_reload_stalled"), Some(0.0));

    running.behave(Behaviour::Hang);
    let seen = running.wait_until("stall", |code, _, _| code == 503).await;
    assert!(
        seen.ready
            .starts_with("not ready: the reload loop is stalled: no cycle completed for"),
        "{}",
        seen.ready
    );
    assert_eq!(value(&seen.metrics, "dynalert_reload_stalled"), Some(1.0));
    assert!(seen.metrics.contains(THRESHOLD), "still served");

    running.behave(Behaviour::Answer);
    let seen = running
        .wait_until("recovery", |code, _, _| code == 200)
        .await;
    assert_eq!(seen.ready, "ready\n");
    assert_eq!(value(&seen.metrics, "dynalert_reload_stalled"), Some(0.0));
    assert!(!running.task.is_finished(), "a stall does not end serve");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_source_is_not_a_stall() {
    let running = Running::start().await;
    running.behave(Behaviour::Fail);
    let down = running
        .wait_until("store down", |_, _, m| {
            value(m, "dynalert_store_up") == Some(0.0)
        })
        .await;
    assert_eq!(down.code, 200, "{}", down.ready);
    assert!(
        down.ready
            .contains("did not answer within 20s; serving the last good"),
        "{}",
        down.ready
    );
    // Past three stall limits without a successful read: the failed reads were cycles.
    let seen = running
        .wait_until("model age", |_, _, m| {
            value(m, "dynalert_model_age_seconds").is_some_and(|age| age > 1.0)
        })
        .await;
    let (code, ready) = running.get("/ready").await;
    assert_eq!(code, 200, "{ready}");
    assert_eq!(value(&seen.metrics, "dynalert_reload_stalled"), Some(0.0));
    assert_eq!(value(&seen.metrics, "dynalert_store_up"), Some(0.0));
    assert!(seen.metrics.contains(THRESHOLD), "the last good thresholds");

    running.behave(Behaviour::Answer);
    let seen = running
        .wait_until("store back, model fresh", |code, ready, m| {
            (code, ready) == (200, "ready\n")
                && value(m, "dynalert_store_up") == Some(1.0)
                && value(m, "dynalert_model_age_seconds").is_some_and(|age| age < 1.0)
        })
        .await;
    assert_eq!(value(&seen.metrics, "dynalert_reload_stalled"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_ends_serve_even_with_a_stalled_loop() {
    let running = Running::start().await;
    running.behave(Behaviour::Hang);
    running.wait_until("stall", |code, _, _| code == 503).await;
    drop(running.stop);
    let ended = tokio::time::timeout(GIVE_UP, running.task)
        .await
        .expect("serve did not end on shutdown")
        .unwrap();
    assert!(ended.is_ok(), "{ended:?}");
}
