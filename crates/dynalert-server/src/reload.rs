//! The one reload loop, whatever the source: loads every document at start, then applies what
//! the source reports after file events (debounced), store announcements (gathered briefly),
//! the periodic re-scan or poll, and re-renders when time-dependent rows come due. Each pass
//! goes source → [`Delta`] → document set → model + diff → served state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dynalert_config::{Body, Delta, DocumentSet};
use dynalert_store::{Store, StoreSpec};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::{Notify, broadcast, watch};
use tokio::time::{MissedTickBehavior, sleep, sleep_until};
use tracing::{debug, error, info, warn};

use crate::options::ServeOptions;
use crate::source::{Source, SourceError, Trigger};
use crate::state::{AppState, ReloadOutcome};

/// A burst of file events is flushed once quiet for the debounce period, and at the latest
/// after this many debounce periods, so a file rewritten continuously is still picked up.
const MAX_DEBOUNCE_PERIODS: u32 = 3;

/// How long store announcements are gathered after the first one before they are applied
/// together: under a stream of API writes one pass then covers many of them.
const GATHER: Duration = Duration::from_millis(15);

/// Shortest wait between two timer-driven renders.
const MIN_RENDER_INTERVAL: Duration = Duration::from_millis(10);

struct ReloadLoop {
    state: Arc<AppState>,
    source: Source,
    /// `None` only while a pass runs on a blocking thread.
    documents: Option<DocumentSet>,
    known_keys: Vec<String>,
}

/// Runs until `stop` turns true (or its sender is dropped).
pub(crate) async fn run(
    state: Arc<AppState>,
    store: Arc<Store>,
    opts: ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    // Subscribed before the first read, so no write falls between the two.
    let mut announced = store.subscribe();
    let wake = Arc::new(Notify::new());
    let (source, period) = match &opts.store {
        StoreSpec::Dir(root) => (
            Source::directory(root, wake.clone(), opts.reload_interval),
            opts.reload_interval,
        ),
        StoreSpec::Postgres(_) => (Source::database(store), opts.poll_interval),
        _ => (Source::database(store), opts.reload_interval),
    };
    let mut pass = ReloadLoop {
        state,
        source,
        documents: Some(new_documents(&opts.known_keys)),
        known_keys: opts.known_keys.clone(),
    };
    pass.reload(Trigger::Full, "start").await;
    let mut rescan = periodic(period);
    loop {
        let until_due = until_due(pass.state.served().next_due);
        tokio::select! {
            _ = wake.notified() => {
                if !settle(&wake, opts.debounce, &mut stop).await {
                    break;
                }
                pass.reload(Trigger::FileEvents, "change").await;
            }
            first = announced.recv() => match gather(first, &mut announced).await {
                Some(paths) => pass.reload(Trigger::Written(paths), "write").await,
                None => pass.reload(Trigger::Full, "announcements lost").await,
            },
            _ = rescan.tick() => pass.reload(Trigger::Full, "re-scan").await,
            _ = until_due => pass.refresh().await,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    debug!("reload loop stopped");
}

fn new_documents(known_keys: &[String]) -> DocumentSet {
    DocumentSet::new().with_known_keys(known_keys.iter().cloned())
}

/// Ticks every `period`, the first time one period from now.
fn periodic(period: Duration) -> tokio::time::Interval {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticks
}

/// Resolves when time-dependent rows come due (never if none will). The floor keeps a due
/// time that does not advance from spinning; a wall-clock jump is caught up with by the next
/// re-scan, which renders too.
async fn until_due(due: Option<chrono::DateTime<Utc>>) {
    match due {
        Some(due) => {
            let wait = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            sleep(wait.max(MIN_RENDER_INTERVAL)).await
        }
        None => std::future::pending().await,
    }
}

/// Waits until no file event arrived for `debounce` (bounded, see [`MAX_DEBOUNCE_PERIODS`]).
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

/// The first announced path and every other one announced within [`GATHER`]; `None` when
/// some were missed (the receiver lagged, or an empty path asked for a full re-read).
async fn gather(
    first: Result<String, broadcast::error::RecvError>,
    announced: &mut broadcast::Receiver<String>,
) -> Option<Vec<String>> {
    let first = first.ok()?;
    tokio::time::sleep(GATHER).await;
    let mut paths = vec![first];
    loop {
        match announced.try_recv() {
            Ok(path) => paths.push(path),
            Err(TryRecvError::Empty) => break,
            Err(_) => return None,
        }
    }
    if paths.iter().any(String::is_empty) {
        return None;
    }
    paths.sort();
    paths.dedup();
    Some(paths)
}

impl ReloadLoop {
    /// One pass: asks the source for a delta, applies it to the document set on a blocking
    /// thread, and records the outcome (which renders what the diff names).
    async fn reload(&mut self, trigger: Trigger, reason: &'static str) {
        let started = Instant::now();
        match self.source.delta(trigger).await {
            Ok(delta) => self.apply(delta, reason, started).await,
            Err(e) => self.failed(e, reason),
        }
    }

    async fn apply(&mut self, mut delta: Delta, reason: &'static str, started: Instant) {
        let Some(mut documents) = self.documents.take() else {
            return;
        };
        let state = self.state.clone();
        let job = tokio::task::spawn_blocking(move || {
            // Documents the API validated arrive parsed already.
            for upsert in &mut delta.upserts {
                if let Body::Text(content) = &upsert.body {
                    upsert.parsed = state.checked.take(&upsert.path, content);
                }
            }
            let applied = documents.apply(delta);
            let model = documents.model();
            let load_time = started.elapsed();
            let outcome = ReloadOutcome::Loaded {
                model: model.clone(),
                diff: applied.diff,
                changed: applied.stats.changed,
            };
            let record = state.record_reload(outcome, Utc::now());
            (documents, applied.stats, model, record, load_time)
        });
        let (documents, stats, model, record, load_time) = match job.await {
            Ok(done) => done,
            Err(e) => {
                // A bug in the model; start over rather than never reload again.
                error!("reload failed: {e}; re-reading every document next time");
                self.documents = Some(new_documents(&self.known_keys));
                self.source.forget();
                return;
            }
        };
        self.documents = Some(documents);
        if !stats.changed {
            debug!(reason, documents = stats.documents, "config unchanged");
            return;
        }
        for d in &model.diagnostics {
            warn!("{d}");
        }
        info!(
            reason,
            generation = model.generation,
            documents = stats.documents,
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
        for line in model.platform_change_summaries() {
            info!(reason, "platform change served: {line}");
        }
    }

    fn failed(&self, e: SourceError, reason: &'static str) {
        let message = e.to_string();
        let repeated = self.state.served().status.dir_error.as_deref() == Some(message.as_str());
        self.state
            .record_reload(ReloadOutcome::DirUnreadable(message), Utc::now());
        if repeated {
            debug!(reason, "{e}; still serving the last good configuration");
        } else {
            error!(reason, "{e}; serving the last good configuration");
        }
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
