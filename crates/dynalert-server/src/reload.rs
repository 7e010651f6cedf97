//! The one reload loop, whatever the source: loads every document at start, then applies what
//! the source reports after file events (debounced), store announcements (gathered briefly),
//! the periodic re-scan or poll, and re-renders when time-dependent rows come due. Each pass
//! goes source → [`Delta`] → document set → model + diff → served state.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dynalert_config::{Body, Delta, DocumentSet, Limits};
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
pub(crate) const MAX_DEBOUNCE_PERIODS: u32 = 3;

/// How long store announcements are gathered after the first one before they are applied
/// together: under a stream of API writes one pass then covers many of them.
const GATHER: Duration = Duration::from_millis(15);

/// Shortest wait between two timer-driven renders.
const MIN_RENDER_INTERVAL: Duration = Duration::from_millis(10);

/// How long a PostgreSQL store may take to answer one pass. A database behind a partition
/// that drops packets would otherwise hold the loop until TCP gives up (many minutes) and look
/// like a stalled loop; this way the pass fails like any unreachable store, the last good
/// model stays served, and the next poll tries again. Well under the shortest stall limit.
const STORE_ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// What the loop reads documents from: [`Source`] when serving, a scripted one in tests.
pub(crate) trait DocumentSource: Send + 'static {
    /// What changed since the last call, as far as `trigger` tells.
    fn read(
        &mut self,
        trigger: Trigger,
    ) -> impl std::future::Future<Output = Result<Delta, SourceError>> + Send;
    /// Forget what was read: the next [`Trigger::Full`] hands over every document again.
    fn forget(&mut self);
}

impl DocumentSource for Source {
    async fn read(&mut self, trigger: Trigger) -> Result<Delta, SourceError> {
        match self {
            // Dropping an unanswered query loses nothing: what was handed over is recorded
            // only once the store answered.
            Source::Database(_) => tokio::time::timeout(STORE_ANSWER_TIMEOUT, self.delta(trigger))
                .await
                .unwrap_or(Err(SourceError::NoAnswer(STORE_ANSWER_TIMEOUT))),
            // A directory read runs on a blocking thread holding the reader, which cannot be
            // abandoned midway: a read that hangs (a stuck network filesystem) is a stall.
            Source::Directory(_) => self.delta(trigger).await,
        }
    }

    fn forget(&mut self) {
        Source::forget(self)
    }
}

/// A source and what wakes the loop for it.
pub(crate) struct Feed<S> {
    pub source: S,
    /// Woken by file events (directory source).
    pub wake: Arc<Notify>,
    /// Paths the store announces as written.
    pub announced: broadcast::Receiver<String>,
    /// Period of the full re-scan or poll.
    pub period: Duration,
}

/// The source `opts` names on `store`, subscribed to its announcements before the first read,
/// so no write falls between the two.
pub(crate) fn feed(store: Arc<Store>, opts: &ServeOptions) -> Feed<Source> {
    let announced = store.subscribe();
    let wake = Arc::new(Notify::new());
    let (source, period) = match &opts.store {
        StoreSpec::Dir(root) => (
            Source::directory(root, wake.clone(), opts.reload_interval, opts.max_file_size),
            opts.reload_interval,
        ),
        StoreSpec::Postgres(_) => (Source::database(store), opts.poll_interval),
        _ => (Source::database(store), opts.reload_interval),
    };
    Feed {
        source,
        wake,
        announced,
        period,
    }
}

struct ReloadLoop<S> {
    state: Arc<AppState>,
    source: S,
    /// `None` only while a pass runs on a blocking thread.
    documents: Option<DocumentSet>,
    known_keys: Vec<String>,
    limits: Limits,
}

/// Runs until `stop` turns true (or its sender is dropped). Every completed cycle is recorded
/// in the state's heartbeat.
pub(crate) async fn run<S: DocumentSource>(
    state: Arc<AppState>,
    feed: Feed<S>,
    opts: ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    let Feed {
        source,
        wake,
        mut announced,
        period,
    } = feed;
    let mut pass = ReloadLoop {
        state,
        source,
        documents: Some(new_documents(&opts.known_keys, opts.limits)),
        known_keys: opts.known_keys.clone(),
        limits: opts.limits,
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

fn new_documents(known_keys: &[String], limits: Limits) -> DocumentSet {
    DocumentSet::new()
        .with_known_keys(known_keys.iter().cloned())
        .with_limits(limits)
}

/// Ticks every `period` (never zero: the options are bounded), the first time one period from
/// now.
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

impl<S: DocumentSource> ReloadLoop<S> {
    /// One pass: asks the source for a delta, applies it to the document set on a blocking
    /// thread, and records the outcome (which renders what the diff names). A pass that
    /// completes, with documents or with the source's error, is a heartbeat; one whose
    /// apply panicked is not, so a panic on every pass shows as a stall.
    async fn reload(&mut self, trigger: Trigger, reason: &'static str) {
        let started = Instant::now();
        let completed = match self.source.read(trigger).await {
            Ok(delta) => self.apply(delta, reason, started).await,
            // The directory reader panicked on its thread and is gone with it: no later read
            // could succeed, so the task ends as the panic would have ended it.
            Err(SourceError::Worker(e)) if e.is_panic() => {
                std::panic::resume_unwind(e.into_panic())
            }
            Err(e) => {
                self.failed(e, reason);
                true
            }
        };
        if completed {
            self.state.heartbeat.beat();
        }
    }

    /// Whether the pass completed (its blocking job did not panic).
    async fn apply(&mut self, mut delta: Delta, reason: &'static str, started: Instant) -> bool {
        let Some(mut documents) = self.documents.take() else {
            return false;
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
                self.documents = Some(new_documents(&self.known_keys, self.limits));
                self.source.forget();
                return false;
            }
        };
        self.documents = Some(documents);
        if !stats.changed {
            debug!(reason, documents = stats.documents, "config unchanged");
            return true;
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
        true
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

    async fn refresh(&mut self) {
        let state = self.state.clone();
        let now = Utc::now();
        if let Ok(stats) = tokio::task::spawn_blocking(move || state.refresh(now)).await {
            debug!(
                tenants = stats.tenants_rendered,
                shards = stats.shards_rebuilt,
                "time-dependent rows re-rendered"
            );
            self.state.heartbeat.beat();
        }
    }
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}
