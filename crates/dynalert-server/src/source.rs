//! Where the documents come from: a conf.d directory (read by `dynalert_store::TreeReader`,
//! woken by the file watcher) or a database store (SQLite, PostgreSQL, compared by revision).
//! Each turns a [`Trigger`] into a [`Delta`] for the document set; the reload loop does not
//! know which source it drives.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use dynalert_config::{Body, Delta, Model, Upsert};
use dynalert_store::{FileRead, Store, StoreError, TreeDelta, TreeReader};
use tokio::sync::Notify;
use tracing::warn;

use crate::watch::DirWatcher;

/// Why the reload loop asks its source for documents.
#[derive(Debug)]
pub(crate) enum Trigger {
    /// Start, the periodic re-scan or poll, or announcements that were lost: compare
    /// everything.
    Full,
    /// The store announced these documents (relative paths) as written.
    Written(Vec<String>),
    /// The file watcher saw events (directory source only).
    FileEvents,
}

/// The source could not be read at all (the root or the database): the last good model stays
/// served.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SourceError {
    #[error("{0}")]
    Directory(std::io::Error),
    #[error("store {store}: {error}")]
    Store { store: String, error: StoreError },
    #[error("directory reader lost: {0}")]
    Worker(#[from] tokio::task::JoinError),
    /// The store took longer than this to answer (a partition that drops packets).
    #[error("the store did not answer within {0:?}")]
    NoAnswer(std::time::Duration),
}

pub(crate) enum Source {
    Directory(DirectorySource),
    Database(DatabaseSource),
}

impl Source {
    /// A conf.d directory; files over `max_file_size` bytes are reported, not read.
    pub fn directory(
        root: &Path,
        wake: Arc<Notify>,
        rescan: std::time::Duration,
        max_file_size: u64,
    ) -> Self {
        let watcher = match DirWatcher::new(root, wake) {
            Ok(w) => Some(w),
            Err(e) => {
                warn!(
                    "cannot watch files ({e}); changes are picked up by the re-scan every {rescan:?}"
                );
                None
            }
        };
        Source::Directory(DirectorySource {
            reader: Some(TreeReader::new(root).with_max_file_size(max_file_size)),
            watcher,
        })
    }

    pub fn database(store: Arc<Store>) -> Self {
        Source::Database(DatabaseSource {
            store,
            known: BTreeMap::new(),
        })
    }

    /// What changed since the last call, as far as `trigger` tells.
    pub async fn delta(&mut self, trigger: Trigger) -> Result<Delta, SourceError> {
        match self {
            Source::Directory(dir) => dir.delta(trigger).await,
            Source::Database(db) => db.delta(trigger).await,
        }
    }

    /// Forgets what was read, so the next [`Trigger::Full`] hands over every document again
    /// (after the document set was lost to a panic).
    pub fn forget(&mut self) {
        match self {
            Source::Directory(dir) => {
                if let Some(reader) = dir.reader.as_mut() {
                    reader.forget();
                }
            }
            Source::Database(db) => db.known.clear(),
        }
    }
}

pub(crate) struct DirectorySource {
    /// `None` only while a read runs on a blocking thread.
    reader: Option<TreeReader>,
    watcher: Option<DirWatcher>,
}

impl DirectorySource {
    async fn delta(&mut self, trigger: Trigger) -> Result<Delta, SourceError> {
        let events = self.watcher.as_mut().map(|watcher| {
            watcher.ensure_watching();
            watcher.take_changes()
        });
        let Some(mut reader) = self.reader.take() else {
            return Ok(Delta::default());
        };
        let job = tokio::task::spawn_blocking(move || {
            let root = reader.root().to_path_buf();
            let read = match (trigger, events) {
                (Trigger::Written(paths), _) => {
                    let paths: Vec<_> = paths.iter().map(|p| root.join(p)).collect();
                    reader.read_paths(&paths)
                }
                (Trigger::FileEvents, Some(events)) if !events.full => {
                    let paths: Vec<_> = events.paths.into_iter().collect();
                    reader.read_paths(&paths)
                }
                _ => reader.read_all(),
            };
            (reader, read)
        });
        let (reader, read) = job.await?;
        self.reader = Some(reader);
        read.map(delta_of_tree).map_err(SourceError::Directory)
    }
}

pub(crate) struct DatabaseSource {
    store: Arc<Store>,
    /// The revision of every document handed over.
    known: BTreeMap<String, String>,
}

impl DatabaseSource {
    async fn delta(&mut self, trigger: Trigger) -> Result<Delta, SourceError> {
        let failed = |error| SourceError::Store {
            store: self.store.describe(),
            error,
        };
        let (docs, removed) = match trigger {
            Trigger::Written(paths) => {
                let docs = self.store.get_many(&paths).await.map_err(failed)?;
                let found: BTreeSet<&str> = docs.iter().map(|d| d.path.as_str()).collect();
                let removed: Vec<String> = paths
                    .iter()
                    .filter(|p| !found.contains(p.as_str()) && self.known.contains_key(*p))
                    .cloned()
                    .collect();
                (docs, removed)
            }
            Trigger::Full | Trigger::FileEvents => {
                let revisions = self.store.revisions().await.map_err(failed)?;
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
                let docs = if changed.is_empty() {
                    Vec::new()
                } else {
                    self.store.get_many(&changed).await.map_err(failed)?
                };
                (docs, removed)
            }
        };
        for path in &removed {
            self.known.remove(path);
        }
        let mut upserts = Vec::with_capacity(docs.len());
        for doc in docs {
            if self.known.get(&doc.path) != Some(&doc.revision) {
                self.known.insert(doc.path.clone(), doc.revision);
                upserts.push(Upsert::text(doc.path, doc.content));
            }
        }
        Ok(Delta { upserts, removed })
    }
}

/// The document set's view of what a directory read found.
fn delta_of_tree(tree: TreeDelta) -> Delta {
    let upserts = tree
        .reads
        .into_iter()
        .map(|FileRead { path, content }| Upsert {
            path,
            body: match content {
                Ok(text) => Body::Text(text),
                Err(e) => Body::Unreadable {
                    line: e.line,
                    message: e.message,
                },
            },
            parsed: None,
        })
        .collect();
    Delta {
        upserts,
        removed: tree.removed,
    }
}

/// Loads a conf.d directory once, as `lint` and `show` do: the same reader and document set as
/// `serve`, so an unreadable or non-UTF-8 file is a diagnostic, not a failure; files over
/// `max_file_size` bytes are refused (`--max-file-size`).
pub fn load_dir(
    root: &Path,
    max_file_size: u64,
    mut set: dynalert_config::DocumentSet,
) -> std::io::Result<Arc<Model>> {
    let tree = TreeReader::new(root)
        .with_max_file_size(max_file_size)
        .read_all()?;
    set.apply(delta_of_tree(tree));
    Ok(set.model())
}
