//! The reload task: loads the tree at start, then re-loads it after file events (debounced),
//! on a periodic re-scan, and re-renders when time-dependent rows come due.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dynalert_config::Loader;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::{MissedTickBehavior, sleep, sleep_until};
use tracing::{debug, error, info, warn};

use crate::options::ServeOptions;
use crate::state::{AppState, ReloadOutcome};
use crate::watch::DirWatcher;

/// A burst of events is flushed once quiet for the debounce period, and at the latest after
/// this many debounce periods, so a file rewritten continuously is still picked up.
const MAX_DEBOUNCE_PERIODS: u32 = 3;

/// The reload reason for file events (the others read the whole tree).
const CHANGE: &str = "change";

/// The reload reason for files the management API wrote: read at once, without debounce.
const WRITTEN: &str = "api write";

/// Shortest wait between two timer-driven renders.
const MIN_RENDER_INTERVAL: Duration = Duration::from_millis(10);

/// What a reload runs on a blocking thread, moved there and back each time.
struct Worker {
    loader: Loader,
    watcher: Option<DirWatcher>,
    /// Files the management API wrote since the last pass (relative paths).
    written: Vec<String>,
}

impl Worker {
    fn new(opts: &ServeOptions, wake: &Arc<Notify>) -> Self {
        let config_dir = opts.config_dir().unwrap_or(std::path::Path::new("."));
        let watcher = match DirWatcher::new(config_dir, wake.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(
                    "cannot watch files ({e}); changes are picked up by the re-scan every {:?}",
                    opts.reload_interval
                );
                None
            }
        };
        Worker {
            loader: Loader::new(config_dir).with_known_keys(opts.known_keys.iter().cloned()),
            watcher,
            written: Vec::new(),
        }
    }

    /// One pass of the loader, recorded in `state` and logged. Blocking. After file events
    /// only the reported paths are read again (the loader falls back to a full scan for
    /// anything but plain files); at start and on the periodic re-scan, everything is.
    fn reload(&mut self, state: &AppState, reason: &str) {
        let changes = self.watcher.as_mut().map(|watcher| {
            watcher.ensure_watching();
            watcher.take_changes()
        });
        let started = Instant::now();
        let written = std::mem::take(&mut self.written);
        let result = match changes {
            _ if reason == WRITTEN => {
                let root = self.loader.root().to_path_buf();
                let paths: Vec<_> = written.iter().map(|p| root.join(p)).collect();
                self.loader.reload_paths(&paths)
            }
            Some(changes) if reason == CHANGE && !changes.full => {
                let paths: Vec<_> = changes.paths.into_iter().collect();
                self.loader.reload_paths(&paths)
            }
            _ => self.loader.reload(),
        };
        match result {
            Ok(stats) if !stats.changed => {
                let outcome = ReloadOutcome::Loaded {
                    model: self.loader.model(),
                    changed: false,
                };
                state.record_reload(outcome, Utc::now());
                debug!(
                    reason,
                    files = stats.files,
                    load_ms = millis(started.elapsed()),
                    "config unchanged"
                );
            }
            Ok(stats) => {
                let load_time = started.elapsed();
                let model = self.loader.model();
                let outcome = ReloadOutcome::Loaded {
                    model: model.clone(),
                    changed: true,
                };
                let record = state.record_reload(outcome, Utc::now());
                for d in &model.diagnostics {
                    warn!("{d}");
                }
                info!(
                    reason,
                    generation = model.generation,
                    files = stats.files,
                    parsed = stats.parsed,
                    removed = stats.removed,
                    tenants = model.tenants.len(),
                    errors = model.error_count(),
                    warnings = model.diagnostics.len() - model.error_count(),
                    load_ms = millis(load_time),
                    render_ms = millis(started.elapsed() - load_time),
                    tenants_rendered = record.render.tenants_rendered,
                    ok = record.ok,
                    "config reloaded"
                );
            }
            Err(e) => {
                let message = e.to_string();
                let repeated = state.served().status.dir_error.as_deref() == Some(message.as_str());
                state.record_reload(ReloadOutcome::DirUnreadable(message), Utc::now());
                if repeated {
                    debug!(reason, "{e}; still serving the last good configuration");
                } else {
                    error!(reason, "{e}; serving the last good configuration");
                }
            }
        }
    }
}

struct ReloadTask {
    state: Arc<AppState>,
    opts: ServeOptions,
    /// Signalled by the file watcher.
    wake: Arc<Notify>,
    /// `None` only while a reload runs.
    worker: Option<Worker>,
}

/// Runs until `stop` turns true (or its sender is dropped).
pub(crate) async fn run(
    state: Arc<AppState>,
    opts: ServeOptions,
    mut written: broadcast::Receiver<String>,
    mut stop: watch::Receiver<bool>,
) {
    let wake = Arc::new(Notify::new());
    let worker = Some(Worker::new(&opts, &wake));
    let mut task = ReloadTask {
        state,
        opts,
        wake,
        worker,
    };
    task.reload("start").await;

    let mut rescan = periodic(task.opts.reload_interval);
    loop {
        let until_due = until_due(task.state.served().next_due);
        tokio::select! {
            _ = task.wake.notified() => {
                if !settle(&task.wake, task.opts.debounce, &mut stop).await {
                    break;
                }
                task.reload(CHANGE).await;
            }
            path = written.recv() => match path {
                Ok(path) => task.reload_written(path, &mut written).await,
                Err(_) => task.reload("re-scan").await,
            },
            _ = rescan.tick() => task.reload("re-scan").await,
            _ = until_due => task.refresh().await,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    debug!("reload task stopped");
}

/// Ticks every `period`, the first time one period from now.
pub(crate) fn periodic(period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Resolves when time-dependent rows come due (never if none will). The floor keeps a due
/// time that does not advance from spinning; a wall-clock jump is caught up with by the next
/// re-scan, which renders too.
pub(crate) async fn until_due(due: Option<chrono::DateTime<Utc>>) {
    match due {
        Some(due) => {
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            sleep(wait.max(MIN_RENDER_INTERVAL)).await
        }
        None => std::future::pending().await,
    }
}

/// Waits until no event arrived for `debounce` (bounded, see [`MAX_DEBOUNCE_PERIODS`]).
/// Returns false if asked to stop meanwhile.
async fn settle(wake: &Notify, debounce: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    let deadline = tokio::time::Instant::now() + debounce * MAX_DEBOUNCE_PERIODS;
    loop {
        let quiet = (tokio::time::Instant::now() + debounce).min(deadline);
        tokio::select! {
            _ = wake.notified() => {}
            _ = sleep_until(quiet) => return true,
            _ = stop.changed() => return false,
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
    }
}

impl ReloadTask {
    async fn reload(&mut self, reason: &'static str) {
        let Some(mut worker) = self.worker.take() else {
            return;
        };
        let state = self.state.clone();
        let job = tokio::task::spawn_blocking(move || {
            worker.reload(&state, reason);
            worker
        });
        match job.await {
            Ok(worker) => self.worker = Some(worker),
            Err(e) => {
                // A bug in the loader; start over rather than never reload again.
                error!("reload failed: {e}; re-reading the whole tree next time");
                self.worker = Some(Worker::new(&self.opts, &self.wake));
            }
        }
    }

    /// Reads the files the API wrote (this one and any other already announced) at once.
    async fn reload_written(&mut self, first: String, more: &mut broadcast::Receiver<String>) {
        let Some(worker) = self.worker.as_mut() else {
            return;
        };
        worker.written.push(first);
        while let Ok(path) = more.try_recv() {
            worker.written.push(path);
        }
        self.reload(WRITTEN).await;
    }

    async fn refresh(&self) {
        let state = self.state.clone();
        let now = Utc::now();
        if let Ok(stats) = tokio::task::spawn_blocking(move || state.refresh(now)).await {
            debug!(
                tenants = stats.tenants_rendered,
                shards = stats.shards_rebuilt,
                "time-dependent rows re-rendered"
            );
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
