//! Where threshold documents live. A document is one conf.d file: a relative path such as
//! `db-a.yaml` or `teams/_defaults.yaml` and its YAML text. Three backends hold them:
//!
//! - [`dir`]: a conf.d directory is the truth (GitOps); writes replace files atomically.
//! - [`sqlite`]: an embedded database file, the default for API-first use.
//! - [`postgres`]: shared by several `dynalert serve` replicas, which hear about each other's
//!   writes through `LISTEN/NOTIFY`.
//!
//! Every document has a revision, opaque to callers, that changes with every write. Writes go
//! through [`Store::update`], which hands the current document to a closure deciding the new
//! content (or refusing) while the document is locked, so a check of `If-Match` and the
//! validation of the new content happen atomically with the write; or through
//! [`Store::write_if`], for a writer that decided without a lock and only needs its content
//! stored if the revision it read is still current (databases commit such writes in
//! batches, see `group_commit.rs`). Every write appends an [`AuditEntry`]. The store does not
//! validate YAML: the caller runs the model first.

pub mod dir;
mod file_guard;
mod group_commit;
mod path;
pub mod postgres;
mod scan;
mod spec;
pub mod sqlite;
mod tree;

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

pub use file_guard::{DEFAULT_MAX_FILE_SIZE, Refusal};
pub use path::{PathError, check_path};
pub use scan::{FileRead, Listing, TreeDelta, TreeReader, Unreadable, list_files};
pub use spec::{SpecError, StoreSpec};
pub use tree::{read_tree, write_tree};

/// One stored document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Document {
    pub path: String,
    pub content: String,
    pub revision: String,
}

/// Who writes, and which API object the write is about (`tenant:db-a`, `platform:_defaults.yaml`).
#[derive(Clone, Debug)]
pub struct WriteMeta {
    pub actor: String,
    pub object: String,
}

/// One write, as kept in the audit history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub object: String,
    pub path: String,
    /// Content before the write; `None` when the write created the document.
    pub before: Option<String>,
    /// Content after the write; `None` when the write removed the document.
    pub after: Option<String>,
}

/// What an update closure decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Store this content (nothing is written when it equals the current content).
    Write(String),
    /// Remove the document.
    Remove,
}

/// The result of a successful [`Store::update`].
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    /// The document now has this content and revision.
    Written(Document),
    /// The content was already what the closure asked for: nothing was written or audited.
    Unchanged(Document),
    /// The document was removed (or did not exist).
    Removed,
}

/// Why the store could not do something. The message carries the cause, so the cause is not
/// exposed again as a `source` (an error chain would print it twice). The variants say what
/// failed, not what to answer: the server decides the HTTP status of each (a missing document,
/// a bad path, an unreachable or damaged store are different answers).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A document that must exist does not.
    #[error("no document {path}")]
    NotFound { path: String },
    /// The database cannot be reached now (connection, pool, TLS): retrying may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(sqlx::Error),
    /// The database refused a statement (a bug or a schema this version does not know).
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("database migration failed: {0}")]
    Migration(sqlx::migrate::MigrateError),
    #[error("{0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Path(PathError),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => StoreError::Unavailable(e),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Migration(e)
    }
}

impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Io(e)
    }
}

impl From<PathError> for StoreError {
    fn from(e: PathError) -> Self {
        StoreError::Path(e)
    }
}

/// Why an update did not happen: the closure refused, or the store failed (nothing written).
#[derive(Debug)]
pub enum UpdateError<E> {
    Refused(E),
    Store(StoreError),
}

impl<E> From<StoreError> for UpdateError<E> {
    fn from(e: StoreError) -> Self {
        UpdateError::Store(e)
    }
}

impl<E: fmt::Display> fmt::Display for UpdateError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpdateError::Refused(e) => e.fmt(f),
            UpdateError::Store(e) => e.fmt(f),
        }
    }
}

/// A conditional write found another revision than the one it was based on.
struct RevisionMoved;

/// A store of any backend.
pub enum Store {
    Dir(dir::DirStore),
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// How many change notifications a slow subscriber may fall behind before it is told it
/// lagged (it then re-reads everything).
const NOTIFY_CAPACITY: usize = 4096;

fn notifier() -> broadcast::Sender<String> {
    broadcast::channel(NOTIFY_CAPACITY).0
}

impl Store {
    /// Opens (and, for databases, creates and migrates) the store `spec` names.
    pub async fn open(spec: &StoreSpec) -> Result<Store, StoreError> {
        Self::open_with_limit(spec, DEFAULT_MAX_FILE_SIZE).await
    }

    /// [`Store::open`]; a directory store refuses files over `max_file_size` bytes, as the
    /// loader does (`--max-file-size`).
    pub async fn open_with_limit(
        spec: &StoreSpec,
        max_file_size: u64,
    ) -> Result<Store, StoreError> {
        Ok(match spec {
            StoreSpec::Dir(path) => {
                Store::Dir(dir::DirStore::open_with_limit(path, max_file_size)?)
            }
            StoreSpec::Sqlite(path) => Store::Sqlite(sqlite::SqliteStore::open(path).await?),
            StoreSpec::Postgres(url) => Store::Postgres(postgres::PgStore::open(url).await?),
        })
    }

    /// Every document, sorted by path.
    pub async fn list(&self) -> Result<Vec<Document>, StoreError> {
        match self {
            Store::Dir(s) => s.list(),
            Store::Sqlite(s) => s.list().await,
            Store::Postgres(s) => s.list().await,
        }
    }

    /// The revision of every document, by path: what a poller compares to find changes.
    pub async fn revisions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        match self {
            Store::Dir(s) => Ok(s
                .list()?
                .into_iter()
                .map(|d| (d.path, d.revision))
                .collect()),
            Store::Sqlite(s) => s.revisions().await,
            Store::Postgres(s) => s.revisions().await,
        }
    }

    pub async fn get(&self, path: &str) -> Result<Option<Document>, StoreError> {
        check_path(path)?;
        match self {
            Store::Dir(s) => s.get(path),
            Store::Sqlite(s) => s.get(path).await,
            Store::Postgres(s) => s.get(path).await,
        }
    }

    /// The document at `path`, or [`StoreError::NotFound`].
    pub async fn get_existing(&self, path: &str) -> Result<Document, StoreError> {
        self.get(path).await?.ok_or_else(|| StoreError::NotFound {
            path: path.to_string(),
        })
    }

    /// The documents among `paths` that exist (one query on a database).
    pub async fn get_many(&self, paths: &[String]) -> Result<Vec<Document>, StoreError> {
        for path in paths {
            check_path(path)?;
        }
        match self {
            Store::Dir(s) => Ok(paths
                .iter()
                .map(|p| s.get(p))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .flatten()
                .collect()),
            Store::Sqlite(s) => s.get_many(paths).await,
            Store::Postgres(s) => s.get_many(paths).await,
        }
    }

    /// Writes `path` atomically: `decide` sees the current document (locked against other
    /// writers of this store) and returns the new content, a removal, or a refusal that
    /// leaves everything as it was. A write that changes something is audited with `meta`.
    pub async fn update<E, F>(
        &self,
        path: &str,
        meta: &WriteMeta,
        decide: F,
    ) -> Result<Updated, UpdateError<E>>
    where
        F: FnOnce(Option<&Document>) -> Result<Decision, E> + Send,
        E: Send,
    {
        check_path(path).map_err(StoreError::from)?;
        match self {
            Store::Dir(s) => s.update(path, meta, decide).await,
            Store::Sqlite(s) => s.update(path, meta, decide).await,
            Store::Postgres(s) => s.update(path, meta, decide).await,
        }
    }

    /// Writes `decision` to `path` only if the document still has revision `based_on`
    /// (`None`: only if it does not exist), audited with `meta`. This is the write of an
    /// optimistic writer that decided without holding a lock; `Ok(None)` means another write
    /// came first and nothing was written. On a database, such writes that arrive together
    /// share one transaction.
    pub async fn write_if(
        &self,
        path: &str,
        meta: &WriteMeta,
        based_on: Option<&str>,
        decision: Decision,
    ) -> Result<Option<Updated>, StoreError> {
        check_path(path)?;
        let job = group_commit::Job {
            path: path.to_string(),
            meta: meta.clone(),
            based_on: based_on.map(str::to_string),
            decision,
        };
        match self {
            Store::Dir(s) => {
                let written = s
                    .update(path, meta, |now| job.decide(now).ok_or(RevisionMoved))
                    .await;
                match written {
                    Ok(updated) => Ok(Some(updated)),
                    Err(UpdateError::Refused(RevisionMoved)) => Ok(None),
                    Err(UpdateError::Store(e)) => Err(e),
                }
            }
            Store::Sqlite(s) => s.write_if(job).await,
            Store::Postgres(s) => s.write_if(job).await,
        }
    }

    /// Audit entries about `object` or that wrote `path` (imports write whole documents),
    /// oldest first: the newest `limit` of them.
    pub async fn history(
        &self,
        object: &str,
        path: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        match self {
            Store::Dir(s) => s.history(object, path, limit),
            Store::Sqlite(s) => s.history(object, path, limit).await,
            Store::Postgres(s) => s.history(object, path, limit).await,
        }
    }

    /// Paths written from now on, by this process or (PostgreSQL) by any replica. A receiver
    /// that lags must re-read everything; notifications can also be lost with a database
    /// connection, so a reader should poll [`Store::revisions`] as well.
    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        match self {
            Store::Dir(s) => s.subscribe(),
            Store::Sqlite(s) => s.subscribe(),
            Store::Postgres(s) => s.subscribe(),
        }
    }

    /// Writes every document of `docs` (skipping those already equal), and with `prune`
    /// removes the documents not among them: what `dynalert store import` and `--import`
    /// do. On a database it is one transaction: all or nothing.
    pub async fn import(
        &self,
        docs: &[(String, String)],
        prune: bool,
        actor: &str,
    ) -> Result<ImportStats, StoreError> {
        for (path, _) in docs {
            check_path(path)?;
        }
        match self {
            Store::Dir(s) => s.import(docs, prune, actor).await,
            Store::Sqlite(s) => s.import(docs, prune, actor).await,
            Store::Postgres(s) => s.import(docs, prune, actor).await,
        }
    }

    /// A short description for logs: the backend and where it is (no password).
    pub fn describe(&self) -> String {
        match self {
            Store::Dir(s) => format!("dir:{}", s.root().display()),
            Store::Sqlite(s) => format!("sqlite:{}", s.path().display()),
            Store::Postgres(s) => s.describe(),
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportStats {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
}

/// The audit object of a document written outside the API (an import): `tenant:`/`platform:`
/// objects are the API's; a document as a whole is `document:<path>`.
pub fn document_object(path: &str) -> String {
    format!("document:{path}")
}

/// Now, rounded to milliseconds (what the audit keeps).
fn audit_now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

fn format_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("audit time {text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_say_whether_the_store_is_reachable() {
        let unavailable = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(
            matches!(unavailable, StoreError::Unavailable(_)),
            "{unavailable:?}"
        );
        let damaged = StoreError::from(sqlx::Error::Decode("not a number".into()));
        assert!(matches!(damaged, StoreError::Corrupt(_)), "{damaged:?}");
        let refused = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(refused, StoreError::Database(_)), "{refused:?}");
    }

    #[tokio::test]
    async fn a_missing_document_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Dir(dir::DirStore::open(dir.path()).unwrap());
        let missing = store.get_existing("db-a.yaml").await.unwrap_err();
        assert!(
            matches!(missing, StoreError::NotFound { .. }),
            "{missing:?}"
        );
    }
}
