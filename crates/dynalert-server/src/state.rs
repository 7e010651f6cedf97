//! The state a running server shares between its reload task and its HTTP handlers: the
//! served model, the exposition rendered from it, and the load status behind the
//! self-monitoring metrics and `/ready`.
//!
//! Handlers read an immutable [`Served`] view and never wait for a render; renders are
//! serialized by one lock that also holds the model they render, so a slow render started
//! for an older model can never overwrite a newer one.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dynalert_config::{Model, ModelDiff, Timeline};
use dynalert_exposition::{Exposition, RenderStats, Snapshot};

use crate::checked::CheckedDocuments;
use crate::health::Heartbeat;

/// What handlers see: everything from one consistent moment.
#[derive(Clone)]
pub(crate) struct Served {
    pub model: Arc<Model>,
    pub snapshot: Arc<Snapshot>,
    /// When time-dependent rows of `snapshot` next change (schedule window, expiry).
    pub next_due: Option<DateTime<Utc>>,
    pub status: LoadStatus,
}

/// Load history, as reported by `/ready`, `/api/v1/config` and the self-monitoring metrics.
///
/// A loader pass is *counted* as a reload when it is the first one, produced a new model, found
/// the root unreadable, or found it readable again; a periodic re-scan that finds nothing new
/// is not a reload. A reload is successful when the root was readable and the model has no
/// error diagnostics.
#[derive(Clone, Debug, Default)]
pub(crate) struct LoadStatus {
    pub first_load_done: bool,
    /// When the served model was built.
    pub loaded_at: Option<DateTime<Utc>>,
    pub last_reload_ok: bool,
    pub last_success_at: Option<DateTime<Utc>>,
    pub reloads_success: u64,
    pub reloads_failure: u64,
    /// Why the root could not be read on the last attempt (the last good model stays served).
    pub dir_error: Option<String>,
    /// When the source last answered, so the served model was last known to match it.
    pub synced_at: Option<Instant>,
}

impl LoadStatus {
    /// How long ago the served model was last known to match its source: grows while the
    /// source cannot be read (or the reload loop is stalled).
    pub fn model_age(&self) -> Option<Duration> {
        self.synced_at.map(|at| at.elapsed())
    }
}

/// What [`AppState::record_reload`] did with a loader pass.
pub(crate) struct ReloadRecord {
    pub ok: bool,
    pub render: RenderStats,
}

/// The result of one pass of the loader.
pub(crate) enum ReloadOutcome {
    /// A pass of the document set: its model, and what changed since the previous one.
    Loaded {
        model: Arc<Model>,
        diff: ModelDiff,
        changed: bool,
    },
    DirUnreadable(String),
}

/// The outputs and what they were last brought up to date with.
struct Renderer {
    exposition: Exposition,
    model: Arc<Model>,
    timeline: Timeline,
}

impl Renderer {
    /// Brings the outputs up to date with `diff` and whatever the clock changed by `now`.
    fn update(&mut self, mut diff: ModelDiff, now: DateTime<Utc>) -> RenderStats {
        self.timeline.advance(&self.model, &mut diff, now);
        self.exposition.update(&self.model, &diff, now)
    }
}

pub(crate) struct AppState {
    served: RwLock<Served>,
    renderer: Mutex<Renderer>,
    /// Documents the API validated, parsed, for the store sync to apply without parsing.
    pub checked: CheckedDocuments,
    /// The reload loop's completed cycles, for stall detection.
    pub heartbeat: Heartbeat,
}

impl AppState {
    /// A state with the default stall limit (tests of the HTTP surface).
    #[cfg(test)]
    pub fn new() -> Self {
        Self::with_stall_limit(crate::ServeOptions::DEFAULT_STALL_FLOOR)
    }

    /// A state whose reload loop counts as stalled after `limit` without a cycle.
    pub fn with_stall_limit(limit: Duration) -> Self {
        let exposition = Exposition::new();
        let model = Arc::new(Model::empty());
        let served = Served {
            model: model.clone(),
            snapshot: exposition.snapshot(),
            next_due: None,
            status: LoadStatus::default(),
        };
        AppState {
            served: RwLock::new(served),
            renderer: Mutex::new(Renderer {
                exposition,
                model,
                timeline: Timeline::new(),
            }),
            checked: CheckedDocuments::default(),
            heartbeat: Heartbeat::new(limit),
        }
    }

    pub fn served(&self) -> Served {
        self.served
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records a loader pass, renders what changed (a new model, or rows whose time came) and
    /// publishes the result. Blocking: rendering is CPU work.
    pub fn record_reload(&self, outcome: ReloadOutcome, now: DateTime<Utc>) -> ReloadRecord {
        let mut renderer = self.lock_renderer();
        let mut status = self.served().status;
        let mut diff = ModelDiff::default();
        let counted = match outcome {
            ReloadOutcome::Loaded {
                model,
                diff: changes,
                changed,
            } => {
                let counted = changed || !status.first_load_done || status.dir_error.is_some();
                if changed {
                    renderer.model = model;
                    diff = changes;
                    status.loaded_at = Some(now);
                }
                status.first_load_done = true;
                status.dir_error = None;
                status.synced_at = Some(Instant::now());
                counted
            }
            ReloadOutcome::DirUnreadable(message) => {
                status.dir_error = Some(message);
                true
            }
        };
        let ok = status.dir_error.is_none() && renderer.model.error_count() == 0;
        if counted {
            status.last_reload_ok = ok;
            if ok {
                status.reloads_success += 1;
                status.last_success_at = Some(now);
            } else {
                status.reloads_failure += 1;
            }
        }
        let render = renderer.update(diff, now);
        self.publish(&renderer, status);
        crate::memory::release_free_pages();
        ReloadRecord { ok, render }
    }

    /// Re-renders rows whose resolution changed with time (cheap when none did).
    pub fn refresh(&self, now: DateTime<Utc>) -> RenderStats {
        let mut renderer = self.lock_renderer();
        let stats = renderer.update(ModelDiff::default(), now);
        let status = self.served().status;
        self.publish(&renderer, status);
        stats
    }

    /// Called with the renderer locked, so publications happen in render order.
    fn publish(&self, renderer: &Renderer, status: LoadStatus) {
        let served = Served {
            model: renderer.model.clone(),
            snapshot: renderer.exposition.snapshot(),
            next_due: renderer.timeline.next_due(),
            status,
        };
        *self.served.write().unwrap_or_else(PoisonError::into_inner) = served;
    }

    fn lock_renderer(&self) -> MutexGuard<'_, Renderer> {
        // A panic inside a render leaves the previous publication in place; keep going.
        self.renderer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
