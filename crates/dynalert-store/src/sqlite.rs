//! An embedded SQLite file: the default store for API-first use.
//!
//! Writes go through a pool of one connection, so they are serialized inside the process and
//! never meet `SQLITE_BUSY` upgrading a read lock; reads use a separate pool and, in WAL mode,
//! never wait for the writer. `synchronous=NORMAL` with WAL keeps every committed write
//! across a crash of the process (what `kill -9` does); a power loss may lose the last
//! commits before a checkpoint, which is SQLite's documented trade-off for this mode.
//!
//! PATCHes (conditional writes) share transactions: see `group_commit.rs`.
//!
//! Checkpoints (copying the WAL into the database file, with an `fsync` of each) run on a
//! connection of their own a few times a second, not in the writer's commits: under a stream
//! of writes the automatic checkpoint ran several times a second inside a commit, and a slow
//! `fsync` stalled every write queued behind it (the longest PATCHes took 0.3-0.8 s).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use tokio::sync::broadcast;

use crate::group_commit::{BatchDocuments, Batches, GroupCommit, Job};
use crate::{
    AuditEntry, Decision, Document, ImportStats, StoreError, UpdateError, Updated, WriteMeta,
    audit_now, document_object, format_time, notifier, parse_time,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers in parallel with the one writer.
const READERS: u32 = 4;
/// How often the checkpointer copies the WAL into the database file. Between two, the WAL
/// grows by what was written meanwhile (a few MB at a thousand writes per second).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

pub struct SqliteStore {
    path: PathBuf,
    writer: SqlitePool,
    reader: SqlitePool,
    changes: broadcast::Sender<String>,
    checkpointer: tokio::task::JoinHandle<()>,
    /// Conditional writes, committed in batches on the writer connection.
    batches: GroupCommit,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

impl SqliteStore {
    /// Opens the database file, creating and migrating it when needed.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        // No ping before each use: the connection is a thread in this process.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        MIGRATOR.run(&writer).await?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(READERS)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await?;
        let changes = notifier();
        // One worker: there is one writer connection.
        let batches = GroupCommit::start(
            Writer {
                pool: writer.clone(),
                changes: changes.clone(),
            },
            1,
        );
        Ok(SqliteStore {
            path: path.to_path_buf(),
            writer,
            reader,
            changes,
            checkpointer: tokio::spawn(checkpoint_periodically(checkpointer)),
            batches,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub async fn list(&self) -> Result<Vec<Document>, StoreError> {
        let rows = sqlx::query("SELECT path, content, revision FROM documents ORDER BY path")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows.iter().map(document_of).collect())
    }

    pub async fn revisions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT path, revision FROM documents")
            .fetch_all(&self.reader)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("path"), r.get::<i64, _>("revision").to_string()))
            .collect())
    }

    pub async fn get(&self, path: &str) -> Result<Option<Document>, StoreError> {
        let row = sqlx::query("SELECT path, content, revision FROM documents WHERE path = ?1")
            .bind(path)
            .fetch_optional(&self.reader)
            .await?;
        Ok(row.as_ref().map(document_of))
    }

    pub async fn get_many(&self, paths: &[String]) -> Result<Vec<Document>, StoreError> {
        // One statement; SQLite has no array parameter, JSON carries the list.
        let list = serde_json::to_string(paths).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rows = sqlx::query(
            "SELECT path, content, revision FROM documents \
             WHERE path IN (SELECT value FROM json_each(?1)) ORDER BY path",
        )
        .bind(list)
        .fetch_all(&self.reader)
        .await?;
        Ok(rows.iter().map(document_of).collect())
    }

    pub async fn update<E, F>(
        &self,
        path: &str,
        meta: &WriteMeta,
        decide: F,
    ) -> Result<Updated, UpdateError<E>>
    where
        F: FnOnce(Option<&Document>) -> Result<Decision, E>,
    {
        let mut tx = self.writer.begin().await.map_err(StoreError::from)?;
        let current = select_current(&mut tx, path).await?;
        let decision = decide(current.as_ref()).map_err(UpdateError::Refused)?;
        let updated = apply(&mut tx, path, current, decision, meta).await?;
        tx.commit().await.map_err(StoreError::from)?;
        if !matches!(updated, Updated::Unchanged(_)) {
            let _ = self.changes.send(path.to_string());
        }
        Ok(updated)
    }

    pub(crate) async fn write_if(&self, job: Job) -> Result<Option<Updated>, StoreError> {
        self.batches.write(job).await
    }

    pub async fn history(
        &self,
        object: &str,
        path: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor, object, path, before, after FROM audit \
             WHERE object = ?1 OR path = ?2 ORDER BY id DESC LIMIT ?3",
        )
        .bind(object)
        .bind(path)
        .bind(i64::from(limit))
        .fetch_all(&self.reader)
        .await?;
        let mut entries = rows.iter().map(audit_of).collect::<Result<Vec<_>, _>>()?;
        entries.reverse();
        Ok(entries)
    }

    pub async fn import(
        &self,
        docs: &[(String, String)],
        prune: bool,
        actor: &str,
    ) -> Result<ImportStats, StoreError> {
        let mut tx = self.writer.begin().await?;
        let mut stats = ImportStats::default();
        let mut touched = Vec::new();
        for (path, content) in docs {
            let current = select_current(&mut tx, path).await?;
            let meta = WriteMeta {
                actor: actor.to_string(),
                object: document_object(path),
            };
            match apply(
                &mut tx,
                path,
                current,
                Decision::Write(content.clone()),
                &meta,
            )
            .await?
            {
                Updated::Unchanged(_) => stats.unchanged += 1,
                _ => {
                    stats.written += 1;
                    touched.push(path.clone());
                }
            }
        }
        if prune {
            let keep: std::collections::BTreeSet<&str> =
                docs.iter().map(|(p, _)| p.as_str()).collect();
            let all: Vec<String> = sqlx::query_scalar("SELECT path FROM documents")
                .fetch_all(&mut *tx)
                .await?;
            for path in all.into_iter().filter(|p| !keep.contains(p.as_str())) {
                let current = select_current(&mut tx, &path).await?;
                let meta = WriteMeta {
                    actor: actor.to_string(),
                    object: document_object(&path),
                };
                apply(&mut tx, &path, current, Decision::Remove, &meta).await?;
                stats.removed += 1;
                touched.push(path);
            }
        }
        tx.commit().await?;
        for path in touched {
            let _ = self.changes.send(path);
        }
        Ok(stats)
    }
}

/// The writer connection, as the group commit uses it.
struct Writer {
    pool: SqlitePool,
    changes: broadcast::Sender<String>,
}

impl Batches for Writer {
    async fn commit(&self, jobs: &[Job]) -> Result<Vec<Option<Updated>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // One query reads every document of the batch (each query is a hand-off to SQLite's
        // thread and back).
        let paths = jobs.iter().map(|j| j.path.as_str());
        let mut documents = BatchDocuments::new(select_documents(&mut tx, paths).await?);
        let mut outcomes = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Some((decision, before)) = documents.decide(job) else {
                outcomes.push(None);
                continue;
            };
            let updated = apply(&mut tx, &job.path, before, decision, &job.meta).await?;
            documents.record(&job.path, &updated);
            outcomes.push(Some(updated));
        }
        tx.commit().await?;
        for (job, outcome) in jobs.iter().zip(&outcomes) {
            if matches!(outcome, Some(Updated::Written(_) | Updated::Removed)) {
                let _ = self.changes.send(job.path.clone());
            }
        }
        Ok(outcomes)
    }
}

type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

async fn select_current(tx: &mut Tx, path: &str) -> Result<Option<Document>, StoreError> {
    let row = sqlx::query("SELECT path, content, revision FROM documents WHERE path = ?1")
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.as_ref().map(document_of))
}

/// The stored documents among `paths`, by path (the paths passed as one JSON array).
async fn select_documents(
    tx: &mut Tx,
    paths: impl Iterator<Item = &str>,
) -> Result<Vec<Document>, StoreError> {
    let paths = serde_json::to_string(&paths.collect::<Vec<_>>()).expect("strings serialize");
    let rows = sqlx::query(
        "SELECT path, content, revision FROM documents \
         WHERE path IN (SELECT value FROM json_each(?1))",
    )
    .bind(paths)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows.iter().map(document_of).collect())
}

/// Writes one decision inside `tx`: the audit entry first, whose id becomes the revision.
async fn apply(
    tx: &mut Tx,
    path: &str,
    current: Option<Document>,
    decision: Decision,
    meta: &WriteMeta,
) -> Result<Updated, StoreError> {
    let after = match &decision {
        Decision::Write(content) => {
            if let Some(doc) = current.as_ref().filter(|d| &d.content == content) {
                return Ok(Updated::Unchanged(doc.clone()));
            }
            Some(content.as_str())
        }
        Decision::Remove if current.is_none() => return Ok(Updated::Removed),
        Decision::Remove => None,
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO audit (at, actor, object, path, before, after) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
    )
    .bind(format_time(audit_now()))
    .bind(&meta.actor)
    .bind(&meta.object)
    .bind(path)
    .bind(current.as_ref().map(|d| d.content.as_str()))
    .bind(after)
    .fetch_one(&mut **tx)
    .await?;
    match after {
        Some(content) => {
            sqlx::query(
                "INSERT INTO documents (path, content, revision) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (path) DO UPDATE SET content = excluded.content, \
                 revision = excluded.revision",
            )
            .bind(path)
            .bind(content)
            .bind(id)
            .execute(&mut **tx)
            .await?;
            Ok(Updated::Written(Document {
                path: path.to_string(),
                content: content.to_string(),
                revision: id.to_string(),
            }))
        }
        None => {
            sqlx::query("DELETE FROM documents WHERE path = ?1")
                .bind(path)
                .execute(&mut **tx)
                .await?;
            Ok(Updated::Removed)
        }
    }
}

fn document_of(row: &sqlx::sqlite::SqliteRow) -> Document {
    Document {
        path: row.get("path"),
        content: row.get("content"),
        revision: row.get::<i64, _>("revision").to_string(),
    }
}

fn audit_of(row: &sqlx::sqlite::SqliteRow) -> Result<AuditEntry, StoreError> {
    Ok(AuditEntry {
        id: row.get("id"),
        at: parse_time(row.get("at"))?,
        actor: row.get("actor"),
        object: row.get("object"),
        path: row.get("path"),
        before: row.get("before"),
        after: row.get("after"),
    })
}

/// Copies committed WAL frames into the database file every [`CHECKPOINT_EVERY`]. `PASSIVE`
/// never waits for the writer or readers: frames still in use are copied next time.
async fn checkpoint_periodically(pool: SqlitePool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %e, "SQLite checkpoint failed; retrying");
        }
    }
}
