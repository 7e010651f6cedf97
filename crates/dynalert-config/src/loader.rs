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

use crate::compile::{Compiled, compile};
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

impl Fingerprint {
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
    slots: BTreeMap<String, FileSlot>,
    model: Arc<Model>,
}

impl Loader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Loader {
            root: root.into(),
            slots: BTreeMap::new(),
            model: Arc::new(Model::empty()),
        }
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
        let found = list_files(&self.root)?;
        let mut stats = ReloadStats { files: found.len(), ..Default::default() };
        let removed: Vec<String> = self
            .slots
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        stats.removed = removed.len();
        for path in &removed {
            self.slots.remove(path);
        }
        let candidates: Vec<(&String, &PathBuf, Option<Fingerprint>)> = found
            .iter()
            .map(|(rel, abs)| (rel, abs, std::fs::metadata(abs).ok().map(|m| Fingerprint::of(&m))))
            .filter(|(rel, _, fp)| match (self.slots.get(*rel), fp) {
                (Some(slot), Some(fp)) => slot.fingerprint != *fp,
                _ => true,
            })
            .collect();
        let read: Vec<(String, Fingerprint, u64, Option<ParsedFile>)> = candidates
            .par_iter()
            .map(|(rel, abs, fp)| {
                let (fingerprint, hash, parsed) = read_and_parse(rel, abs, *fp, &self.slots);
                ((*rel).clone(), fingerprint, hash, parsed)
            })
            .collect();
        for (rel, fingerprint, content_hash, parsed) in read {
            match (parsed, self.slots.get_mut(&rel)) {
                (None, Some(slot)) => slot.fingerprint = fingerprint,
                (Some(parsed), Some(slot)) => {
                    stats.parsed += 1;
                    *slot = FileSlot { fingerprint, content_hash, current: Arc::new(parsed), good: slot.good.take() };
                }
                (Some(parsed), None) => {
                    stats.parsed += 1;
                    let slot = FileSlot { fingerprint, content_hash, current: Arc::new(parsed), good: None };
                    self.slots.insert(rel, slot);
                }
                (None, None) => unreachable!("a new file is always parsed"),
            }
        }
        if stats.parsed == 0 && stats.removed == 0 && self.model.generation > 0 {
            return Ok(stats);
        }
        self.model = Arc::new(self.build_model());
        stats.changed = true;
        Ok(stats)
    }

    /// Runs the cross-file stage with per-file fallback to the last good version.
    fn build_model(&mut self) -> Model {
        let prev = self.model.clone();
        let mut serve: BTreeMap<String, Arc<ParsedFile>> = BTreeMap::new();
        for (path, slot) in &self.slots {
            let chosen = if slot.current.rejected { slot.good.clone() } else { Some(slot.current.clone()) };
            if let Some(f) = chosen {
                serve.insert(path.clone(), f);
            }
        }
        let Compiled { mut platforms, mut tenants, mut diagnostics, files_with_errors } =
            compile(&serve.values().cloned().collect::<Vec<_>>(), &prev.platforms, &prev.tenants);
        // Files whose new content fails a cross-file check fall back as a whole, too.
        let mut fell_back = false;
        for path in &files_with_errors {
            let Some(slot) = self.slots.get(path) else { continue };
            if serve.get(path).is_some_and(|f| Arc::ptr_eq(f, &slot.current)) {
                fell_back |= !slot.good.as_ref().is_some_and(|g| Arc::ptr_eq(g, &slot.current));
                match &slot.good {
                    // Unchanged and good before: the error comes from another file (a
                    // duplicate tenant, a removed default); keep serving it.
                    Some(good) if Arc::ptr_eq(good, &slot.current) => {}
                    Some(good) => {
                        serve.insert(path.clone(), good.clone());
                    }
                    None => {
                        serve.remove(path);
                    }
                }
            }
        }
        if fell_back {
            // The diagnostics users need are those of the current files (above), not of the
            // fallback copies, so only the served model is taken from this pass.
            let second = compile(&serve.values().cloned().collect::<Vec<_>>(), &prev.platforms, &prev.tenants);
            platforms = second.platforms;
            tenants = second.tenants;
        }
        let mut files = BTreeMap::new();
        for (path, slot) in self.slots.iter_mut() {
            diagnostics.extend(slot.current.diagnostics.iter().cloned());
            let accepted = !slot.current.rejected && !files_with_errors.contains(path);
            if accepted {
                slot.good = Some(slot.current.clone());
            }
            let status = match serve.get(path) {
                Some(f) if Arc::ptr_eq(f, &slot.current) && accepted => FileStatus::Ok,
                Some(_) => FileStatus::ServingLastGood,
                None => FileStatus::NotServed,
            };
            files.insert(path.clone(), status);
        }
        diagnostics.sort();
        diagnostics.dedup();
        Model::new(prev.generation + 1, platforms, tenants, diagnostics, files)
    }
}

fn read_and_parse(
    rel: &str,
    abs: &Path,
    fp: Option<Fingerprint>,
    slots: &BTreeMap<String, FileSlot>,
) -> (Fingerprint, u64, Option<ParsedFile>) {
    let fingerprint = fp.unwrap_or(Fingerprint { len: 0, modified: None, #[cfg(unix)] inode: (0, 0) });
    let bytes = match std::fs::read(abs) {
        Ok(b) => b,
        Err(e) => {
            let mut f = parse_file(rel, "");
            f.diagnostics.push(Diagnostic::error(rel, Pos { line: 1, col: 1 }, format!("cannot read file: {e}")));
            f.rejected = true;
            return (fingerprint, 0, Some(f));
        }
    };
    let mut hasher = DefaultHasher::new();
    bytes.hash(&mut hasher);
    let hash = hasher.finish();
    if slots.get(rel).is_some_and(|s| s.content_hash == hash) {
        return (fingerprint, hash, None);
    }
    let parsed = match std::str::from_utf8(&bytes) {
        Ok(text) => parse_file(rel, text),
        Err(e) => {
            let mut f = parse_file(rel, "");
            let line = bytes[..e.valid_up_to()].iter().filter(|b| **b == b'\n').count() as u32 + 1;
            f.diagnostics.push(Diagnostic::error(rel, Pos { line, col: 1 }, "file is not valid UTF-8"));
            f.rejected = true;
            f
        }
    };
    (fingerprint, hash, Some(parsed))
}

/// Every `*.yaml`/`*.yml` under `root`, by `/`-separated relative path. Entries starting with
/// `.` are skipped (Kubernetes' `..data` and timestamped folders); symlinks are followed.
pub fn list_files(root: &Path) -> io::Result<BTreeMap<String, PathBuf>> {
    let meta = std::fs::metadata(root)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read config directory {}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("{} is not a directory", root.display())));
    }
    let mut out = BTreeMap::new();
    let mut visited = BTreeSet::new();
    walk(root, "", &mut out, &mut visited, 0)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read config directory {}: {e}", root.display())))?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    out: &mut BTreeMap<String, PathBuf>,
    visited: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> io::Result<()> {
    // Symlinked directories could form a loop; canonical paths stop it.
    if depth > 32 || !visited.insert(std::fs::canonicalize(dir)?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let rel = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            walk(&path, &rel, out, visited, depth + 1)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.insert(rel, path);
        }
    }
    Ok(())
}
