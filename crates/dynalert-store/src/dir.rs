//! A conf.d directory as a store (GitOps mode). The files are the truth: a document's revision
//! is a hash of its bytes, so an edit by git or an editor changes it too. API writes replace a
//! file atomically (temporary file in the same directory, fsync, rename, fsync the directory),
//! so a reader or a crash sees the old or the new content, never half of it. The audit
//! history is appended to `.dynalert/audit.jsonl` under the root (hidden, so never loaded as
//! configuration).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};

use crate::file_guard::{self, Refusal};
use crate::{
    AuditEntry, Decision, Document, ImportStats, StoreError, UpdateError, Updated, WriteMeta,
    audit_now, document_object, notifier,
};

const AUDIT_DIR: &str = ".dynalert";
const AUDIT_FILE: &str = "audit.jsonl";

pub struct DirStore {
    root: PathBuf,
    /// Files larger than this are not read (`--max-file-size`).
    max_file_size: u64,
    /// One writer at a time: a write reads, decides and replaces under it.
    write_lock: Mutex<()>,
    /// Id of the last audit entry written.
    last_audit_id: AtomicI64,
    changes: broadcast::Sender<String>,
}

/// One line of the audit file.
#[derive(Serialize, Deserialize)]
struct AuditLine {
    id: i64,
    at: chrono::DateTime<chrono::Utc>,
    actor: String,
    object: String,
    path: String,
    before: Option<String>,
    after: Option<String>,
}

impl DirStore {
    /// Opens a directory that must exist.
    pub fn open(root: &Path) -> Result<DirStore, StoreError> {
        Self::open_with_limit(root, crate::DEFAULT_MAX_FILE_SIZE)
    }

    /// [`DirStore::open`], refusing to read files over `max_file_size` bytes.
    pub fn open_with_limit(root: &Path, max_file_size: u64) -> Result<DirStore, StoreError> {
        crate::scan::list_files(root)?;
        let store = DirStore {
            root: root.to_path_buf(),
            max_file_size,
            write_lock: Mutex::new(()),
            last_audit_id: AtomicI64::new(0),
            changes: notifier(),
        };
        remove_orphaned_temp_files(root, 0);
        store.reconcile_audit()?;
        Ok(store)
    }

    /// Records, as written by `filesystem`, every document whose content differs from what
    /// the audit history last saw of it: edits by git or an editor while no server ran, and
    /// a write a crash interrupted after its rename but before its audit line. The history
    /// then stays a chain: each entry's `before` is the previous entry's `after`.
    fn reconcile_audit(&self) -> Result<(), StoreError> {
        let entries = self.read_audit()?;
        self.last_audit_id
            .store(entries.last().map_or(0, |e| e.id), Ordering::SeqCst);
        let mut audited: std::collections::BTreeMap<&str, Option<&str>> = Default::default();
        for e in &entries {
            audited.insert(&e.path, e.after.as_deref());
        }
        let (docs, unusable) = self.documents()?;
        let on_disk: std::collections::BTreeMap<&str, &str> = docs
            .iter()
            .map(|d| (d.path.as_str(), d.content.as_str()))
            .collect();
        let mut paths: Vec<&str> = audited.keys().chain(on_disk.keys()).copied().collect();
        paths.sort();
        paths.dedup();
        for path in paths {
            // A file never written through the store has no history to continue; one that
            // cannot be read now (a FIFO, too large, …) was not changed by anyone we know of.
            let Some(&last) = audited.get(path) else {
                continue;
            };
            if unusable.contains(path) {
                continue;
            }
            let now = on_disk.get(path).copied();
            if last != now {
                self.append_audit(AuditLine {
                    id: self.last_audit_id.load(Ordering::SeqCst) + 1,
                    at: audit_now(),
                    actor: "filesystem".into(),
                    object: document_object(path),
                    path: path.to_string(),
                    before: last.map(str::to_string),
                    after: now.map(str::to_string),
                })?;
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn subscribe(&self) -> broadcast::Receiver<String> {
        self.changes.subscribe()
    }

    /// Every document that can be read. Files the loader reports as unreadable (not UTF-8,
    /// a FIFO, over the size limit, leading outside the tree) are left out, so one bad file
    /// does not make the whole store unreadable.
    pub fn list(&self) -> Result<Vec<Document>, StoreError> {
        Ok(self.documents()?.0)
    }

    /// The documents that can be read, and the paths of those that cannot.
    fn documents(&self) -> Result<(Vec<Document>, std::collections::BTreeSet<String>), StoreError> {
        let listing = crate::scan::list_files(&self.root)?;
        let mut docs = Vec::with_capacity(listing.files.len());
        let mut unusable: std::collections::BTreeSet<String> =
            listing.refused.into_keys().collect();
        for (path, abs) in listing.files {
            let read = file_guard::read_limited(&abs, self.max_file_size);
            match document_of(&path, read) {
                Ok(Some(doc)) => docs.push(doc),
                Ok(None) => continue, // removed since the listing
                Err(e) => {
                    tracing::debug!("{e}; left out of the store listing");
                    unusable.insert(path);
                }
            }
        }
        Ok((docs, unusable))
    }

    pub fn get(&self, path: &str) -> Result<Option<Document>, StoreError> {
        let abs = self.root.join(path);
        document_of(
            path,
            file_guard::read_in_tree(&self.root, &abs, self.max_file_size),
        )
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
        let _writer = self.write_lock.lock().await;
        let current = self.get(path)?;
        let decision = decide(current.as_ref()).map_err(UpdateError::Refused)?;
        let updated = self.apply(path, current, decision, meta)?;
        Ok(updated)
    }

    /// Writes one decision under the write lock: the file, then its audit line.
    fn apply(
        &self,
        path: &str,
        current: Option<Document>,
        decision: Decision,
        meta: &WriteMeta,
    ) -> Result<Updated, StoreError> {
        let target = self.root.join(path);
        let (updated, after) = match decision {
            Decision::Write(content) => {
                if let Some(doc) = current.as_ref().filter(|d| d.content == content) {
                    return Ok(Updated::Unchanged(doc.clone()));
                }
                write_atomically(&target, content.as_bytes())?;
                let doc = Document {
                    path: path.to_string(),
                    revision: revision_of(content.as_bytes()),
                    content: content.clone(),
                };
                (Updated::Written(doc), Some(content))
            }
            Decision::Remove => {
                if current.is_none() {
                    return Ok(Updated::Removed);
                }
                remove_durably(&target)?;
                (Updated::Removed, None)
            }
        };
        self.append_audit(AuditLine {
            id: self.last_audit_id.load(Ordering::SeqCst) + 1,
            at: audit_now(),
            actor: meta.actor.clone(),
            object: meta.object.clone(),
            path: path.to_string(),
            before: current.map(|d| d.content),
            after,
        })?;
        let _ = self.changes.send(path.to_string());
        Ok(updated)
    }

    pub fn history(
        &self,
        object: &str,
        path: &str,
        limit: u32,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let mut found: Vec<AuditEntry> = self
            .read_audit()?
            .into_iter()
            .filter(|e| e.object == object || e.path == path)
            .collect();
        let skip = found.len().saturating_sub(limit as usize);
        found.drain(..skip);
        Ok(found)
    }

    pub async fn import(
        &self,
        docs: &[(String, String)],
        prune: bool,
        actor: &str,
    ) -> Result<ImportStats, StoreError> {
        let _writer = self.write_lock.lock().await;
        let mut stats = ImportStats::default();
        for (path, content) in docs {
            let current = self.get(path)?;
            let meta = import_meta(actor, path);
            match self.apply(path, current, Decision::Write(content.clone()), &meta)? {
                Updated::Unchanged(_) => stats.unchanged += 1,
                _ => stats.written += 1,
            }
        }
        if prune {
            let keep: std::collections::BTreeSet<&str> =
                docs.iter().map(|(p, _)| p.as_str()).collect();
            for doc in self.list()? {
                if !keep.contains(doc.path.as_str()) {
                    let meta = import_meta(actor, &doc.path);
                    let path = doc.path.clone();
                    self.apply(&path, Some(doc), Decision::Remove, &meta)?;
                    stats.removed += 1;
                }
            }
        }
        Ok(stats)
    }

    fn audit_path(&self) -> PathBuf {
        self.root.join(AUDIT_DIR).join(AUDIT_FILE)
    }

    fn append_audit(&self, line: AuditLine) -> Result<(), StoreError> {
        let dir = self.root.join(AUDIT_DIR);
        fs::create_dir_all(&dir)?;
        let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
        text.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.audit_path())?;
        // One write call of a whole line: an interrupted append leaves at most a torn last
        // line, which reading skips.
        file.write_all(text.as_bytes())?;
        file.sync_data()?;
        self.last_audit_id.store(line.id, Ordering::SeqCst);
        Ok(())
    }

    fn read_audit(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let file = match File::open(self.audit_path()) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut entries = Vec::new();
        for line in io::BufReader::new(file).lines() {
            let line = line?;
            // A torn last line (a crash mid-append) is not an entry.
            let Ok(l) = serde_json::from_str::<AuditLine>(&line) else {
                continue;
            };
            entries.push(AuditEntry {
                id: l.id,
                at: l.at,
                actor: l.actor,
                object: l.object,
                path: l.path,
                before: l.before,
                after: l.after,
            });
        }
        Ok(entries)
    }
}

fn import_meta(actor: &str, path: &str) -> WriteMeta {
    WriteMeta {
        actor: actor.to_string(),
        object: document_object(path),
    }
}

/// The revision of a file's content: a hash, so external edits change it as well.
pub fn revision_of(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
}

/// A document from a guarded read of its file (`None`: there is no such file).
fn document_of(
    path: &str,
    read: Result<(fs::Metadata, Vec<u8>), Refusal>,
) -> Result<Option<Document>, StoreError> {
    match read {
        Ok((_, bytes)) => {
            let revision = revision_of(&bytes);
            let content = String::from_utf8(bytes).map_err(|_| {
                StoreError::Corrupt(format!("{path} is not valid UTF-8; fix it on disk"))
            })?;
            Ok(Some(Document {
                path: path.to_string(),
                content,
                revision,
            }))
        }
        Err(Refusal::Missing) => Ok(None),
        Err(Refusal::Io(e)) => Err(io::Error::new(e.kind(), format!("{path}: {e}")).into()),
        Err(why) => Err(StoreError::Corrupt(format!(
            "{path}: {why}; fix it on disk"
        ))),
    }
}

/// Replaces `target` with `bytes` so that a crash leaves either the old or the new file:
/// the temporary file is hidden (the loader skips it) and in the same directory (rename is
/// atomic only within one file system).
pub fn write_atomically(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = target
        .file_name()
        .map_or_else(Default::default, |n| n.to_string_lossy());
    // `.<name>.<pid>.tmp`: see `temp_file_pid`.
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, target)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn remove_durably(target: &Path) -> io::Result<()> {
    match fs::remove_file(target) {
        Ok(()) => sync_dir(target.parent().unwrap_or(Path::new("."))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes temporary files that a writer killed mid-write left behind (hidden, so they were
/// never served). A file of a process that still runs is left alone.
fn remove_orphaned_temp_files(dir: &Path, depth: usize) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if !name.starts_with('.') && depth < 32 {
                remove_orphaned_temp_files(&path, depth + 1);
            }
        } else if let Some(pid) = temp_file_pid(&name)
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = fs::remove_file(&path);
        }
    }
}

/// The writer's pid in a temporary file name `.<name>.<pid>.tmp`.
fn temp_file_pid(name: &str) -> Option<u32> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (_, pid) = inner.rsplit_once('.')?;
    pid.parse().ok()
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_of_dead_writers_are_removed_at_open() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        // pid_max is at most 2^22 on Linux: this writer cannot be running.
        let dead = root.path().join("sub/.a.yaml.4294967.tmp");
        let live = root
            .path()
            .join(format!(".b.yaml.{}.tmp", std::process::id()));
        let other = root.path().join(".editor.swp");
        for f in [&dead, &live, &other] {
            std::fs::write(f, "half").unwrap();
        }
        DirStore::open(root.path()).unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists());
    }

    #[tokio::test]
    async fn changes_made_on_disk_meanwhile_continue_the_history() {
        let root = tempfile::tempdir().unwrap();
        let meta = WriteMeta {
            actor: "api".into(),
            object: "tenant:a".into(),
        };
        {
            let store = DirStore::open(root.path()).unwrap();
            for content in ["tenants:\n  a: {}\n", "tenants:\n  a: {x: 1}\n"] {
                let decide = |_: Option<&Document>| Ok::<_, ()>(Decision::Write(content.into()));
                store.update("a.yaml", &meta, decide).await.unwrap();
            }
        }
        // What a crash between rename and audit, or a `git pull`, leaves.
        std::fs::write(root.path().join("a.yaml"), "tenants:\n  a: {x: 2}\n").unwrap();
        std::fs::write(root.path().join("b.yaml"), "tenants:\n  b: {}\n").unwrap();
        let store = DirStore::open(root.path()).unwrap();
        let history = store.history("tenant:a", "a.yaml", 10).unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history[2].actor, "filesystem");
        assert_eq!(history[2].before, history[1].after);
        assert_eq!(history[2].after.as_deref(), Some("tenants:\n  a: {x: 2}\n"));
        assert!(store.history("x", "b.yaml", 10).unwrap().is_empty());
        // Opening again finds nothing new.
        drop(store);
        let store = DirStore::open(root.path()).unwrap();
        assert_eq!(store.history("tenant:a", "a.yaml", 10).unwrap().len(), 3);
    }
}
