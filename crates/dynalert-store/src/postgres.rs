//! PostgreSQL, shared by several `dynalert serve` replicas.
//!
//! A write locks its document's path with a transaction-scoped advisory lock (a row lock
//! cannot cover a document that does not exist yet), so the read, the caller's decision and
//! the write are atomic against every replica. The same transaction sends `NOTIFY` with the
//! path; PostgreSQL delivers it on commit, and every replica's listener passes it on to its
//! subscribers. Notifications are lost while a listener reconnects, so readers also poll
//! [`PgStore::revisions`].
//!
//! PATCHes (conditional writes) share transactions, and so `fsync`s: see
//! `group_commit.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgPoolOptions};
use sqlx::{PgPool, Row};
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::group_commit::{BatchDocuments, Batches, GroupCommit, Job};
use crate::{
    AuditEntry, Decision, Document, ImportStats, StoreError, UpdateError, Updated, WriteMeta,
    audit_now, document_object, format_time, notifier, parse_time,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The `LISTEN` channel.
const CHANNEL: &str = "dynalert_documents";

/// Connections per replica.
const CONNECTIONS: u32 = 16;

/// Transactions committing batches of conditional writes at once: while one waits for its
/// `fsync`, the next batch gathers and runs.
const BATCH_WORKERS: usize = 4;

/// How long the listener waits before reconnecting after losing its connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);

pub struct PgStore {
    url: String,
    pool: PgPool,
    changes: broadcast::Sender<String>,
    listener: tokio::task::JoinHandle<()>,
    batches: GroupCommit,
}

impl Drop for PgStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl PgStore {
    /// Connects, migrates and starts listening for other replicas' writes.
    pub async fn open(url: &str) -> Result<PgStore, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        let changes = notifier();
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(CHANNEL).await?;
        let listener = tokio::spawn(forward_notifications(listener, changes.clone()));
        Ok(PgStore {
            url: url.to_string(),
            batches: GroupCommit::start(Writer { pool: pool.clone() }, BATCH_WORKERS),
            pool,
            changes,
            listener,
        })
    }

    pub fn describe(&self) -> String {
        crate::spec::redact_password(&self.url)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    pub async fn list(&self) -> Result<Vec<Document>, StoreError> {
        let rows = sqlx::query("SELECT path, content, revision FROM documents ORDER BY path")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(document_of).collect())
    }

    pub async fn revisions(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT path, revision FROM documents")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get("path"), r.get::<i64, _>("revision").to_string()))
            .collect())
    }

    pub async fn get(&self, path: &str) -> Result<Option<Document>, StoreError> {
        let row = sqlx::query("SELECT path, content, revision FROM documents WHERE path = $1")
            .bind(path)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(document_of))
    }

    pub async fn get_many(&self, paths: &[String]) -> Result<Vec<Document>, StoreError> {
        let rows = sqlx::query(
            "SELECT path, content, revision FROM documents WHERE path = ANY($1) ORDER BY path",
        )
        .bind(paths)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await.map_err(StoreError::from)?;
        lock_path(&mut tx, path).await?;
        let current = select_current(&mut tx, path).await?;
        let decision = decide(current.as_ref()).map_err(UpdateError::Refused)?;
        let updated = apply(&mut tx, path, current, decision, meta).await?;
        tx.commit().await.map_err(StoreError::from)?;
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
             WHERE object = $1 OR path = $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(object)
        .bind(path)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        // One import at a time, against every replica's writes of the same paths.
        sqlx::query("SELECT pg_advisory_xact_lock(0)")
            .execute(&mut *tx)
            .await?;
        // Every path's lock up front, in lock-key order like a PATCH batch's.
        let paths: Vec<&str> = docs.iter().map(|(p, _)| p.as_str()).collect();
        lock_paths(&mut tx, &paths).await?;
        let mut stats = ImportStats::default();
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
                _ => stats.written += 1,
            }
        }
        if prune {
            let keep: std::collections::BTreeSet<&str> =
                docs.iter().map(|(p, _)| p.as_str()).collect();
            let all: Vec<String> = sqlx::query_scalar("SELECT path FROM documents")
                .fetch_all(&mut *tx)
                .await?;
            let gone: Vec<String> = all
                .into_iter()
                .filter(|p| !keep.contains(p.as_str()))
                .collect();
            lock_paths(
                &mut tx,
                &gone.iter().map(String::as_str).collect::<Vec<_>>(),
            )
            .await?;
            for path in gone {
                let current = select_current(&mut tx, &path).await?;
                let meta = WriteMeta {
                    actor: actor.to_string(),
                    object: document_object(&path),
                };
                apply(&mut tx, &path, current, Decision::Remove, &meta).await?;
                stats.removed += 1;
            }
        }
        tx.commit().await?;
        Ok(stats)
    }
}

/// The pool, as the group commit uses it.
struct Writer {
    pool: PgPool,
}

impl Batches for Writer {
    /// Four round trips whatever the batch's size: `BEGIN`; every path's lock, then every
    /// document (one function call); every write; `COMMIT`.
    async fn commit(&self, jobs: &[Job]) -> Result<Vec<Option<Updated>>, StoreError> {
        let paths: Vec<&str> = jobs.iter().map(|j| j.path.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let stored = sqlx::query("SELECT path, content, revision FROM dynalert_lock_and_read($1)")
            .bind(&paths)
            .fetch_all(&mut *tx)
            .await?;
        let mut documents = BatchDocuments::new(stored.iter().map(document_of).collect());
        // Decided in queue order: the locks, not the order of the writes, keep batches apart.
        let mut outcomes: Vec<Option<Updated>> = jobs.iter().map(|_| None).collect();
        let mut changes = Vec::new();
        for (index, job) in jobs.iter().enumerate() {
            let Some((decision, before)) = documents.decide(job) else {
                continue;
            };
            match Change::of(&job.path, before, decision) {
                Ok(change) => {
                    documents.hold(&job.path);
                    changes.push((index, change));
                }
                Err(updated) => {
                    documents.record(&job.path, &updated);
                    outcomes[index] = Some(updated);
                }
            }
        }
        if !changes.is_empty() {
            let ids = write_changes(&mut tx, jobs, &changes).await?;
            for ((index, change), id) in changes.into_iter().zip(ids) {
                outcomes[index] = Some(change.updated(id));
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// What one job writes: the document's content before and after (`None`: absent).
struct Change {
    path: String,
    before: Option<String>,
    after: Option<String>,
}

impl Change {
    /// The change `decision` makes to `current`, or (`Err`) its outcome when it changes
    /// nothing: the same content again, or removing what is not there.
    fn of(path: &str, current: Option<Document>, decision: Decision) -> Result<Change, Updated> {
        let after = match decision {
            Decision::Write(content) => {
                if let Some(doc) = current.as_ref().filter(|d| d.content == content) {
                    return Err(Updated::Unchanged(doc.clone()));
                }
                Some(content)
            }
            Decision::Remove if current.is_none() => return Err(Updated::Removed),
            Decision::Remove => None,
        };
        Ok(Change {
            path: path.to_string(),
            before: current.map(|d| d.content),
            after,
        })
    }

    /// The outcome once written with audit entry `id` (the document's new revision).
    fn updated(self, id: i64) -> Updated {
        match self.after {
            Some(content) => Updated::Written(Document {
                path: self.path,
                content,
                revision: id.to_string(),
            }),
            None => Updated::Removed,
        }
    }
}

/// Writes every change of a batch in one statement (at most one per path: see
/// [`BatchDocuments::hold`]) and returns their audit entries' ids, in the changes' order.
async fn write_changes(
    tx: &mut Tx,
    jobs: &[Job],
    changes: &[(usize, Change)],
) -> Result<Vec<i64>, StoreError> {
    let at = format_time(audit_now());
    let actors: Vec<&str> = changes
        .iter()
        .map(|(i, _)| jobs[*i].meta.actor.as_str())
        .collect();
    let objects: Vec<&str> = changes
        .iter()
        .map(|(i, _)| jobs[*i].meta.object.as_str())
        .collect();
    let paths: Vec<&str> = changes.iter().map(|(_, c)| c.path.as_str()).collect();
    let befores: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.before.as_deref()).collect();
    let afters: Vec<Option<&str>> = changes.iter().map(|(_, c)| c.after.as_deref()).collect();
    let rows: Vec<(i64, String)> = sqlx::query_as(WRITE_BATCH_AUDITED)
        .bind(&at)
        .bind(&actors)
        .bind(&objects)
        .bind(&paths)
        .bind(&befores)
        .bind(&afters)
        .bind(CHANNEL)
        .fetch_all(&mut **tx)
        .await?;
    // Ids follow the insertion order, which is the changes' order; the paths say so too.
    if rows.len() != changes.len() || rows.iter().zip(&paths).any(|((_, p), path)| p != path) {
        return Err(StoreError::Io(std::io::Error::other(
            "the batch's audit entries came back out of order",
        )));
    }
    Ok(rows.into_iter().map(|(id, _)| id).collect())
}

/// Takes the advisory locks of `paths` in one statement, in the order of their lock keys, so
/// that two batches (of this replica or another) cannot each wait for a lock the other holds.
async fn lock_paths(tx: &mut Tx, paths: &[&str]) -> Result<(), StoreError> {
    sqlx::query(
        "SELECT pg_advisory_xact_lock(1, key) FROM \
         (SELECT DISTINCT hashtext(path) AS key FROM unnest($1::text[]) AS path ORDER BY key) AS keys",
    )
    .bind(paths)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

type Tx = sqlx::Transaction<'static, sqlx::Postgres>;

/// Serializes writers of one path across replicas until the transaction ends.
async fn lock_path(tx: &mut Tx, path: &str) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock(1, hashtext($1))")
        .bind(path)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Passes every replica's write notifications on to this process's subscribers; after a lost
/// connection it reconnects and tells subscribers to re-read everything (an empty path).
async fn forward_notifications(mut listener: PgListener, changes: broadcast::Sender<String>) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                let _ = changes.send(notification.payload().to_string());
            }
            Ok(None) => {
                info!("PostgreSQL listener reconnected; re-reading every document");
                let _ = changes.send(String::new());
            }
            Err(e) => {
                warn!("PostgreSQL listener: {e}; retrying");
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
}

async fn select_current(tx: &mut Tx, path: &str) -> Result<Option<Document>, StoreError> {
    let row = sqlx::query("SELECT path, content, revision FROM documents WHERE path = $1")
        .bind(path)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.as_ref().map(document_of))
}

/// Writes one decision inside `tx`: the audit entry first, whose id becomes the revision.
async fn apply(
    tx: &mut Tx,
    path: &str,
    current: Option<Document>,
    decision: Decision,
    meta: &WriteMeta,
) -> Result<Updated, StoreError> {
    let change = match Change::of(path, current, decision) {
        Ok(change) => change,
        Err(outcome) => return Ok(outcome),
    };
    // One statement: the audit entry, the document written (or removed) with the entry's id
    // as its revision, and the notification (one round trip instead of three).
    let statement = match change.after {
        Some(_) => WRITE_AUDITED,
        None => REMOVE_AUDITED,
    };
    let id: i64 = sqlx::query_scalar(statement)
        .bind(format_time(audit_now()))
        .bind(&meta.actor)
        .bind(&meta.object)
        .bind(path)
        .bind(change.before.as_deref())
        .bind(change.after.as_deref())
        .bind(CHANNEL)
        .fetch_one(&mut **tx)
        .await?;
    Ok(change.updated(id))
}

/// Audits a write of `$6` to `$4`, writes it with the entry's id as revision, notifies `$7`.
const WRITE_AUDITED: &str = "\
    WITH entry AS ( \
        INSERT INTO audit (at, actor, object, path, before, after) \
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING id \
    ), written AS ( \
        INSERT INTO documents (path, content, revision) SELECT $4, $6, id FROM entry \
        ON CONFLICT (path) DO UPDATE SET content = excluded.content, revision = excluded.revision \
    ) \
    SELECT entry.id FROM entry CROSS JOIN pg_notify($7, $4)";

/// Audits and applies a batch's changes: `$1` the time, then one array element per change
/// (`$2` actor, `$3` object, `$4` path, `$5` before, `$6` after, NULL when removed), each path
/// at most once; notifies `$7` of every path. Returns each entry's id with its path, in order.
const WRITE_BATCH_AUDITED: &str = "\
    WITH changes AS ( \
        SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
            WITH ORDINALITY AS c(actor, object, path, before, after, n) \
    ), entries AS ( \
        INSERT INTO audit (at, actor, object, path, before, after) \
        SELECT $1, actor, object, path, before, after FROM changes ORDER BY n \
        RETURNING id, path, after \
    ), written AS ( \
        INSERT INTO documents (path, content, revision) \
        SELECT path, after, id FROM entries WHERE after IS NOT NULL \
        ON CONFLICT (path) DO UPDATE SET content = excluded.content, revision = excluded.revision \
    ), removed AS ( \
        DELETE FROM documents WHERE path IN (SELECT path FROM entries WHERE after IS NULL) \
    ) \
    SELECT entries.id, entries.path FROM entries CROSS JOIN LATERAL pg_notify($7, entries.path) \
    ORDER BY entries.id";

/// Audits the removal of `$4` (`$6` is NULL), removes it, notifies `$7`.
const REMOVE_AUDITED: &str = "\
    WITH entry AS ( \
        INSERT INTO audit (at, actor, object, path, before, after) \
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING id \
    ), removed AS ( \
        DELETE FROM documents WHERE path = $4 \
    ) \
    SELECT entry.id FROM entry CROSS JOIN pg_notify($7, $4)";

fn document_of(row: &sqlx::postgres::PgRow) -> Document {
    Document {
        path: row.get("path"),
        content: row.get("content"),
        revision: row.get::<i64, _>("revision").to_string(),
    }
}

fn audit_of(row: &sqlx::postgres::PgRow) -> Result<AuditEntry, StoreError> {
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
