//! Keeps the served model in step with a database store (SQLite, PostgreSQL): loads every
//! document at start, then applies each written document as the store announces it, and
//! compares all revisions on a timer in case an announcement was lost (another replica's
//! write while this one's listener reconnected).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use dynalert_config::{Loader, Upsert};
use dynalert_store::{Document, Store, StoreError};
use tokio::sync::broadcast::error::TryRecvError;
use tokio::sync::{broadcast, watch};

use tracing::{debug, error, info, warn};

use crate::options::ServeOptions;
use crate::reload::{periodic, until_due};
use crate::state::{AppState, ReloadOutcome};

/// What changed in the store since the loader last saw it.
#[derive(Default)]
struct Delta {
    upserts: Vec<Document>,
    removed: Vec<String>,
}

impl Delta {
    fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty()
    }
}

struct Sync {
    state: Arc<AppState>,
    store: Arc<Store>,
    /// `None` only while it works on a blocking thread.
    loader: Option<Loader>,
    /// The revision of every document the loader holds.
    known: BTreeMap<String, String>,
    known_keys: Vec<String>,
}

fn new_loader(known_keys: &[String]) -> Loader {
    // Documents are not files: the root is never read.
    Loader::new("").with_known_keys(known_keys.iter().cloned())
}

/// Runs until `stop` turns true (or its sender is dropped).
pub(crate) async fn run(
    state: Arc<AppState>,
    store: Arc<Store>,
    opts: ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    // Subscribed before the first read, so no write falls between the two.
    let mut changes = store.subscribe();
    let mut sync = Sync {
        state,
        store,
        loader: Some(new_loader(&opts.known_keys)),
        known: BTreeMap::new(),
        known_keys: opts.known_keys.clone(),
    };
    sync.resync("start").await;
    let period = match opts.store {
        dynalert_store::StoreSpec::Postgres(_) => opts.poll_interval,
        _ => opts.reload_interval,
    };
    let mut poll = periodic(period);
    loop {
        let until_due = until_due(sync.state.served().next_due);
        tokio::select! {
            first = changes.recv() => match collect(first, &mut changes).await {
                Some(paths) => sync.apply_paths(paths).await,
                None => sync.resync("notifications lagged").await,
            },
            _ = poll.tick() => sync.resync("poll").await,
            _ = until_due => sync.refresh().await,
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
    debug!("store sync stopped");
}

/// How long announcements are gathered after the first one before they are applied together:
/// under a stream of API writes one reload then covers many of them, instead of the server
/// spending its CPU re-rendering once per write.
const GATHER: Duration = Duration::from_millis(15);

/// The first announced path and every other one announced within [`GATHER`]; `None` when
/// some were missed (the receiver lagged, or an empty path asked for a full re-read).
async fn collect(
    first: Result<String, broadcast::error::RecvError>,
    changes: &mut broadcast::Receiver<String>,
) -> Option<Vec<String>> {
    let first = first.ok()?;
    tokio::time::sleep(GATHER).await;
    let mut paths = vec![first];
    loop {
        match changes.try_recv() {
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

impl Sync {
    /// Compares every revision with what the loader holds and applies the difference.
    async fn resync(&mut self, reason: &'static str) {
        match self.full_delta().await {
            Ok(delta) => self.apply(delta, reason).await,
            Err(e) => self.failed(e, reason),
        }
    }

    async fn full_delta(&self) -> Result<Delta, StoreError> {
        let revisions = self.store.revisions().await?;
        let removed = self
            .known
            .keys()
            .filter(|p| !revisions.contains_key(*p))
            .cloned()
            .collect();
        let changed: Vec<String> = revisions
            .iter()
            .filter(|(path, revision)| self.known.get(*path) != Some(*revision))
            .map(|(path, _)| path.clone())
            .collect();
        let upserts = if changed.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(&changed).await?
        };
        Ok(Delta { upserts, removed })
    }

    /// Reads the announced paths (one query) and applies what changed.
    async fn apply_paths(&mut self, paths: Vec<String>) {
        let docs = match self.store.get_many(&paths).await {
            Ok(docs) => docs,
            Err(e) => return self.failed(e, "change"),
        };
        let found: std::collections::BTreeSet<&str> =
            docs.iter().map(|d| d.path.as_str()).collect();
        let removed = paths
            .iter()
            .filter(|p| !found.contains(p.as_str()) && self.known.contains_key(*p))
            .cloned()
            .collect();
        let upserts = docs
            .into_iter()
            .filter(|d| self.known.get(&d.path) != Some(&d.revision))
            .collect();
        self.apply(Delta { upserts, removed }, "change").await;
    }

    async fn apply(&mut self, delta: Delta, reason: &'static str) {
        let first = !self.state.served().status.first_load_done;
        if delta.is_empty() && !first {
            if self.state.served().status.dir_error.is_some() {
                // The store answers again: clear the error.
                let model = self.loader.as_ref().map(Loader::model);
                if let Some(model) = model {
                    let outcome = ReloadOutcome::Loaded {
                        model,
                        changed: false,
                    };
                    self.state.record_reload(outcome, Utc::now());
                }
            }
            return;
        }
        for doc in &delta.upserts {
            self.known.insert(doc.path.clone(), doc.revision.clone());
        }
        for path in &delta.removed {
            self.known.remove(path);
        }
        let Some(mut loader) = self.loader.take() else {
            return;
        };
        let state = self.state.clone();
        let started = Instant::now();
        let job = tokio::task::spawn_blocking(move || {
            let upserts = delta
                .upserts
                .into_iter()
                .map(|d| Upsert {
                    parsed: state.checked.take(&d.path, &d.content),
                    path: d.path,
                    content: d.content,
                })
                .collect();
            let stats = loader.apply_upserts(upserts, delta.removed);
            let model = loader.model();
            let outcome = ReloadOutcome::Loaded {
                model: model.clone(),
                changed: stats.changed,
            };
            let record = state.record_reload(outcome, Utc::now());
            (loader, stats, model, record)
        });
        match job.await {
            Ok((loader, stats, model, record)) => {
                self.loader = Some(loader);
                if stats.changed {
                    for d in &model.diagnostics {
                        warn!("{d}");
                    }
                    info!(
                        reason,
                        generation = model.generation,
                        documents = stats.files,
                        parsed = stats.parsed,
                        removed = stats.removed,
                        tenants = model.tenants.len(),
                        errors = model.error_count(),
                        ms = started.elapsed().as_secs_f64() * 1e3,
                        tenants_rendered = record.render.tenants_rendered,
                        ok = record.ok,
                        "config reloaded"
                    );
                }
            }
            Err(e) => {
                error!("reload failed: {e}; re-reading every document");
                self.loader = Some(new_loader(&self.known_keys));
                self.known.clear();
            }
        }
    }

    fn failed(&self, e: StoreError, reason: &'static str) {
        let message = format!("store {}: {e}", self.store.describe());
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
        let _ = tokio::task::spawn_blocking(move || state.refresh(now)).await;
    }
}
