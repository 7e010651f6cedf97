//! Reads a conf.d tree, re-parsing only files whose content changed, and keeps the last good
//! version of every file so a broken edit never replaces what is being served.

use std::collections::{BTreeMap, BTreeSet, hash_map::DefaultHasher};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use rayon::prelude::*;
use serde::Serialize;

use crate::compile::compile;
use crate::diag::Diagnostic;
use crate::doc::ParsedFile;
use crate::model::Model;
use crate::parse::parse_file;
use crate::yaml::Pos;

/// How a file takes part in the served model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Its current content is served.
    Ok,
    /// It has errors; its last good content is served instead.
    ServingLastGood,
    /// It has errors and has never been good: nothing from it is served.
    NotServed,
}

/// Cheap identity of a file on disk. A ConfigMap swap gives every file a new inode, an
/// editor's save a new mtime or size; content is compared too, so a touch changes nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

/// Files modified this recently are read again even with an unchanged fingerprint: a rewrite
/// of the same length within one timestamp tick would otherwise go unseen. Their content hash
/// still spares the parse when nothing changed.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);

impl Fingerprint {
    /// For a file that could not be read, or a document that is not a file.
    const UNKNOWN: Fingerprint = Fingerprint {
        len: 0,
        modified: None,
        #[cfg(unix)]
        inode: (0, 0),
    };

    fn is_recent(&self, now: SystemTime) -> bool {
        self.modified
            .is_none_or(|m| m > now || now.duration_since(m).is_ok_and(|age| age < RECENT))
    }

    fn of(meta: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Fingerprint {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        }
    }
}

struct FileSlot {
    fingerprint: Fingerprint,
    content_hash: u64,
    current: Arc<ParsedFile>,
    good: Option<Arc<ParsedFile>>,
}

/// A document to apply: its content, and its parse when the caller has it (it must be
/// `parse_file(path, content)`, as [`crate::validate::check_write`] returns).
pub struct Upsert {
    pub path: String,
    pub content: String,
    pub parsed: Option<Arc<ParsedFile>>,
}

/// Summary of one reload.
#[derive(Clone, Debug, Default)]
pub struct ReloadStats {
    pub files: usize,
    pub parsed: usize,
    pub removed: usize,
    /// Whether the served model changed.
    pub changed: bool,
}

/// Loads a conf.d tree and keeps it current across reloads.
pub struct Loader {
    root: PathBuf,
    /// Keys known without a platform file declaring them (the rule packs' keys).
    builtin_keys: Arc<BTreeSet<String>>,
    slots: BTreeMap<String, FileSlot>,
    model: Arc<Model>,
}

impl Loader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Loader {
            root: root.into(),
            builtin_keys: Arc::default(),
            slots: BTreeMap::new(),
            model: Arc::new(Model::empty()),
        }
    }

    /// Makes these keys known to every tenant, as if a root platform file listed them under
    /// `optional` (used for the keys the rule packs declare).
    pub fn with_known_keys(mut self, keys: impl IntoIterator<Item = String>) -> Self {
        Arc::make_mut(&mut self.builtin_keys).extend(keys);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn model(&self) -> Arc<Model> {
        self.model.clone()
    }

    /// Re-reads the tree. Fails only if the root itself cannot be read; problems in files
    /// become diagnostics in the model.
    pub fn reload(&mut self) -> io::Result<ReloadStats> {
        let scanned_at = SystemTime::now();
        // On the first load every file is read anyway, and its fingerprint comes from the
        // open file; only later scans need one `stat` per file to spot changes.
        let found = scan(&self.root, !self.slots.is_empty())?;
        let removed: Vec<String> = self
            .slots
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        let seen = found
            .into_iter()
            .map(|(rel, (abs, fp))| (rel, abs, fp))
            .collect();
        Ok(self.apply(seen, removed, scanned_at))
    }

    /// Re-reads only the given paths (absolute, as a file watcher reports them), which is
    /// what keeps a one-file edit in a large tree cheap. Anything that is not plainly a
    /// `.yaml`/`.yml` file inside the root (a directory, a hidden entry such as Kubernetes'
    /// `..data`, the root itself) falls back to a full [`Loader::reload`].
    pub fn reload_paths(&mut self, paths: &[PathBuf]) -> io::Result<ReloadStats> {
        let scanned_at = SystemTime::now();
        let root = std::path::absolute(&self.root)?;
        let mut seen = Vec::new();
        let mut removed = Vec::new();
        for path in paths {
            let path = &std::path::absolute(path)?;
            let Some(rel) = plain_relative_path(&root, path) else {
                return self.reload();
            };
            if !(rel.ends_with(".yaml") || rel.ends_with(".yml")) {
                let prefix = format!("{rel}/");
                let holds_files = self
                    .slots
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix));
                if path.is_dir() || holds_files {
                    return self.reload();
                }
                continue; // an editor's temporary file, a README: not configuration
            }
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() => {
                    seen.push((rel, path.clone(), Some(Fingerprint::of(&meta))))
                }
                Ok(_) => return self.reload(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.slots.contains_key(&rel) {
                        removed.push(rel);
                    }
                }
                Err(_) => return self.reload(),
            }
        }
        Ok(self.apply(seen, removed, scanned_at))
    }

    /// Takes documents that live somewhere else than a directory (a database store): each
    /// `upserts` entry is a path relative to the virtual root and its whole content; `removed`
    /// paths are dropped. Content equal to what is loaded is not parsed again, and the
    /// last-good rule applies as for files.
    pub fn apply_documents(
        &mut self,
        upserts: Vec<(String, String)>,
        removed: Vec<String>,
    ) -> ReloadStats {
        let upserts = upserts
            .into_iter()
            .map(|(path, content)| Upsert {
                path,
                content,
                parsed: None,
            })
            .collect();
        self.apply_upserts(upserts, removed)
    }

    /// [`Loader::apply_documents`], taking documents some of which come parsed already (by
    /// [`crate::validate::check_write`], before they were stored).
    pub fn apply_upserts(&mut self, upserts: Vec<Upsert>, removed: Vec<String>) -> ReloadStats {
        let mut stats = ReloadStats::default();
        for path in &removed {
            if self.slots.remove(path).is_some() {
                stats.removed += 1;
            }
        }
        let parsed: Vec<(String, u64, Option<Arc<ParsedFile>>)> = upserts
            .into_par_iter()
            .map(|upsert| {
                let hash = content_hash(upsert.content.as_bytes());
                let changed = self.slots.get(&upsert.path).map(|s| s.content_hash) != Some(hash);
                let parsed = changed.then(|| {
                    upsert
                        .parsed
                        .filter(|p| p.path == upsert.path)
                        .unwrap_or_else(|| Arc::new(parse_file(&upsert.path, &upsert.content)))
                });
                (upsert.path, hash, parsed)
            })
            .collect();
        for (path, content_hash, parsed) in parsed {
            if let Some(parsed) = parsed {
                stats.parsed += 1;
                self.store_parsed(path, Fingerprint::UNKNOWN, content_hash, parsed);
            }
        }
        stats.files = self.slots.len();
        if stats.parsed == 0 && stats.removed == 0 && self.model.generation > 0 {
            return stats;
        }
        self.model = Arc::new(self.build_model());
        stats.changed = true;
        stats
    }

    /// Puts a newly parsed version of `path` in its slot, keeping the slot's last good copy.
    fn store_parsed(
        &mut self,
        path: String,
        fingerprint: Fingerprint,
        content_hash: u64,
        parsed: Arc<ParsedFile>,
    ) {
        let good = self.slots.get_mut(&path).and_then(|slot| slot.good.take());
        let slot = FileSlot {
            fingerprint,
            content_hash,
            current: parsed,
            good,
        };
        self.slots.insert(path, slot);
    }

    /// Drops removed files, reads and parses the changed ones among `seen`, and rebuilds the
    /// model if anything changed.
    fn apply(
        &mut self,
        seen: Vec<(String, PathBuf, Option<Fingerprint>)>,
        removed: Vec<String>,
        scanned_at: SystemTime,
    ) -> ReloadStats {
        let mut stats = ReloadStats {
            removed: removed.len(),
            ..Default::default()
        };
        for path in &removed {
            self.slots.remove(path);
        }
        let candidates: Vec<&(String, PathBuf, Option<Fingerprint>)> = seen
            .iter()
            .filter(|(rel, _, fp)| {
                self.slots
                    .get(rel)
                    .zip(fp.as_ref())
                    .is_none_or(|(slot, fp)| slot.fingerprint != *fp || fp.is_recent(scanned_at))
            })
            .collect();
        let read: Vec<(String, Fingerprint, u64, Option<ParsedFile>)> = candidates
            .par_iter()
            .map(|(rel, abs, fp)| {
                let (fingerprint, hash, parsed) = read_and_parse(rel, abs, *fp, &self.slots);
                (rel.clone(), fingerprint, hash, parsed)
            })
            .collect();
        for (rel, fingerprint, content_hash, parsed) in read {
            match parsed {
                Some(parsed) => {
                    stats.parsed += 1;
                    self.store_parsed(rel, fingerprint, content_hash, Arc::new(parsed));
                }
                None => {
                    if let Some(slot) = self.slots.get_mut(&rel) {
                        slot.fingerprint = fingerprint;
                    }
                }
            }
        }
        stats.files = self.slots.len();
        if stats.parsed == 0 && stats.removed == 0 && self.model.generation > 0 {
            return stats;
        }
        self.model = Arc::new(self.build_model());
        stats.changed = true;
        stats
    }

    /// Runs the cross-file stage: first over the current content of every file (to report
    /// every problem, even in files that are rejected anyway), then, if some file must fall
    /// back, over what is actually served.
    fn build_model(&mut self) -> Model {
        let prev = self.model.clone();
        let current: Vec<Arc<ParsedFile>> =
            self.slots.values().map(|s| s.current.clone()).collect();
        let checked = compile(&current, &self.builtin_keys, &prev.platforms, &prev.tenants);
        let mut diagnostics = checked.diagnostics;
        // Slots are in path order: both maps are built from sorted lists in one pass.
        let mut serve: Vec<(String, Arc<ParsedFile>)> = Vec::with_capacity(self.slots.len());
        let mut files = Vec::with_capacity(self.slots.len());
        for (path, slot) in self.slots.iter_mut() {
            diagnostics.extend(slot.current.diagnostics.iter().cloned());
            let accepted = !slot.current.rejected && !checked.files_with_errors.contains(path);
            let unchanged_good = slot
                .good
                .as_ref()
                .is_some_and(|g| Arc::ptr_eq(g, &slot.current));
            if accepted {
                slot.good = Some(slot.current.clone());
            }
            // An unchanged file that was good stays served even if another file's change
            // now conflicts with it (a duplicate tenant, a removed default): the newcomer
            // is the one that falls back.
            let (served, status) = if accepted || (unchanged_good && !slot.current.rejected) {
                (
                    Some(slot.current.clone()),
                    if accepted {
                        FileStatus::Ok
                    } else {
                        FileStatus::ServingLastGood
                    },
                )
            } else if let Some(good) = &slot.good {
                (Some(good.clone()), FileStatus::ServingLastGood)
            } else {
                (None, FileStatus::NotServed)
            };
            if let Some(f) = served {
                serve.push((path.clone(), f));
            }
            files.push((path.clone(), status));
        }
        let serve: BTreeMap<String, Arc<ParsedFile>> = serve.into_iter().collect();
        let files: BTreeMap<String, FileStatus> = files.into_iter().collect();
        let all_current = serve.len() == current.len()
            && serve.values().zip(&current).all(|(a, b)| Arc::ptr_eq(a, b));
        let (platforms, tenants) = if all_current {
            (checked.platforms, checked.tenants)
        } else {
            let served: Vec<Arc<ParsedFile>> = serve.values().cloned().collect();
            let built = compile(&served, &self.builtin_keys, &prev.platforms, &prev.tenants);
            (built.platforms, built.tenants)
        };
        diagnostics.sort();
        diagnostics.dedup();
        Model::new(prev.generation + 1, platforms, tenants, diagnostics, files)
            .with_sources(serve, self.builtin_keys.clone())
    }
}

fn read_and_parse(
    rel: &str,
    abs: &Path,
    fingerprint: Option<Fingerprint>,
    slots: &BTreeMap<String, FileSlot>,
) -> (Fingerprint, u64, Option<ParsedFile>) {
    let unknown = Fingerprint::UNKNOWN;
    let (fingerprint, read) = match read_file(abs) {
        Ok((fp, bytes)) => (fingerprint.unwrap_or(fp), Ok(bytes)),
        Err(e) => (fingerprint.unwrap_or(unknown), Err(e)),
    };
    let bytes = match read {
        Ok(b) => b,
        Err(e) => {
            let mut f = parse_file(rel, "");
            f.diagnostics.push(Diagnostic::error(
                rel,
                Pos { line: 1, col: 1 },
                format!("cannot read file: {e}"),
            ));
            f.rejected = true;
            return (fingerprint, 0, Some(f));
        }
    };
    let hash = content_hash(&bytes);
    if slots.get(rel).is_some_and(|s| s.content_hash == hash) {
        return (fingerprint, hash, None);
    }
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) => parse_file(rel, text),
        Err(e) => {
            let mut f = parse_file(rel, "");
            let line = bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u32
                + 1;
            f.diagnostics.push(Diagnostic::error(
                rel,
                Pos { line, col: 1 },
                "file is not valid UTF-8",
            ));
            f.rejected = true;
            f
        }
    };
    (fingerprint, hash, Some(parsed))
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// The file's content and its fingerprint, taken from the open file (no second lookup).
fn read_file(path: &Path) -> io::Result<(Fingerprint, Vec<u8>)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.read_to_end(&mut bytes)?;
    Ok((Fingerprint::of(&meta), bytes))
}

/// `path` relative to `root` with `/` separators, if it lies strictly inside `root` and no
/// component is hidden (starts with `.`).
fn plain_relative_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(p) => p.to_str().filter(|p| !p.starts_with('.')),
            _ => None,
        })
        .collect::<Option<_>>()?;
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Every `*.yaml`/`*.yml` under `root`, by `/`-separated relative path. Entries starting with
/// `.` are skipped (Kubernetes' `..data` and timestamped folders); symlinks are followed.
pub fn list_files(root: &Path) -> io::Result<BTreeMap<String, PathBuf>> {
    Ok(scan(root, false)?
        .into_iter()
        .map(|(rel, (abs, _))| (rel, abs))
        .collect())
}

/// [`list_files`] with each file's fingerprint, from the one `stat` the walk needs anyway.
fn scan(
    root: &Path,
    fingerprints: bool,
) -> io::Result<BTreeMap<String, (PathBuf, Option<Fingerprint>)>> {
    let meta = std::fs::metadata(root).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read config directory {}: {e}", root.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut out = BTreeMap::new();
    let mut visited = BTreeSet::new();
    walk(root, "", fingerprints, &mut out, &mut visited, 0).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read config directory {}: {e}", root.display()),
        )
    })?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    fingerprints: bool,
    out: &mut BTreeMap<String, (PathBuf, Option<Fingerprint>)>,
    visited: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> io::Result<()> {
    // Symlinked directories could form a loop; canonical paths stop it.
    if depth > 32 || !visited.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            entries.push((name, entry.file_type()?));
        }
    }
    // A `stat` follows symlinks (a ConfigMap file is a symlink into `..data`) and gives the
    // fingerprint; without fingerprints, only symlinks need one. In parallel, since a large
    // tree is thousands of files in one directory.
    let stats: Vec<(String, Option<bool>, Option<Fingerprint>)> = entries
        .into_par_iter()
        .map(|(name, kind)| {
            if !fingerprints && !kind.is_symlink() {
                return (name, Some(kind.is_dir()), None);
            }
            match std::fs::metadata(dir.join(&name)) {
                Ok(meta) => (name, Some(meta.is_dir()), Some(Fingerprint::of(&meta))),
                Err(_) => (name, None, None),
            }
        })
        .collect();
    for (name, is_dir, fingerprint) in stats {
        let Some(is_dir) = is_dir else { continue };
        let path = dir.join(&name);
        let rel = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if is_dir {
            walk(&path, &rel, fingerprints, out, visited, depth + 1)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.insert(rel, (path, fingerprint.filter(|_| fingerprints)));
        }
    }
    Ok(())
}
