//! The one walk of a conf.d directory: which `*.yaml`/`*.yml` files it holds, and their
//! content, read again only when a file looks changed. The serve loop's directory source, the
//! directory store, `--import` and the CLI all list files through here.
//!
//! Entries whose name starts with `.` are skipped (Kubernetes' `..data` and timestamped
//! folders, editors' swap files, the store's `.dynalert`); symlinks are followed (a ConfigMap
//! file is a symlink into `..data`), with a depth limit and a loop check.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One file's content as read, or why it could not be used.
#[derive(Debug)]
pub struct FileRead {
    /// Path relative to the root, `/`-separated.
    pub path: String,
    pub content: Result<String, Unreadable>,
}

/// Why a file's content cannot be used: at which line (1 when the file could not be read at
/// all) and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub line: u32,
    pub message: String,
}

/// What changed in the tree since the previous read.
#[derive(Debug, Default)]
pub struct TreeDelta {
    /// Files new or possibly changed (content equal to before is possible: the reader compares
    /// cheap fingerprints, the consumer compares content).
    pub reads: Vec<FileRead>,
    pub removed: Vec<String>,
}

/// Cheap identity of a file on disk. A ConfigMap swap gives every file a new inode, an
/// editor's save a new mtime or size.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

/// Files modified this recently are read again even with an unchanged fingerprint: a rewrite
/// of the same length within one timestamp tick would otherwise go unseen.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);

impl Fingerprint {
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

/// Reads a tree and, on later calls, only what looks changed.
pub struct TreeReader {
    root: PathBuf,
    /// Every file of the last read, with its fingerprint (`None` when it could not be read).
    known: BTreeMap<String, Option<Fingerprint>>,
}

impl TreeReader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TreeReader {
            root: root.into(),
            known: BTreeMap::new(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Walks the whole tree. Fails only if the root itself cannot be read; a file that cannot
    /// be read is reported as [`Unreadable`].
    pub fn read_all(&mut self) -> io::Result<TreeDelta> {
        let scanned_at = SystemTime::now();
        // On the first read every file is read anyway, and its fingerprint comes from the
        // open file; only later scans need one `stat` per file to spot changes.
        let found = scan(&self.root, !self.known.is_empty())?;
        let removed = self
            .known
            .keys()
            .filter(|k| !found.contains_key(*k))
            .cloned()
            .collect();
        let seen = found
            .into_iter()
            .map(|(rel, (abs, fp))| (rel, abs, fp))
            .collect();
        Ok(self.read(seen, removed, scanned_at))
    }

    /// Reads only the given paths (absolute, as a file watcher reports them), which keeps a
    /// one-file edit in a large tree cheap. Anything that is not plainly a `.yaml`/`.yml` file
    /// inside the root (a directory, a hidden entry such as `..data`, the root itself) falls
    /// back to [`TreeReader::read_all`].
    pub fn read_paths(&mut self, paths: &[PathBuf]) -> io::Result<TreeDelta> {
        let scanned_at = SystemTime::now();
        let root = std::path::absolute(&self.root)?;
        let mut seen = Vec::new();
        let mut removed = Vec::new();
        for path in paths {
            let path = &std::path::absolute(path)?;
            let Some(rel) = plain_relative_path(&root, path) else {
                return self.read_all();
            };
            if !is_config_file(&rel) {
                let prefix = format!("{rel}/");
                let holds_files = self
                    .known
                    .range(prefix.clone()..)
                    .next()
                    .is_some_and(|(k, _)| k.starts_with(&prefix));
                if path.is_dir() || holds_files {
                    return self.read_all();
                }
                continue; // an editor's temporary file, a README: not configuration
            }
            match std::fs::metadata(path) {
                Ok(meta) if meta.is_file() => {
                    seen.push((rel, path.clone(), Some(Fingerprint::of(&meta))))
                }
                Ok(_) => return self.read_all(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if self.known.contains_key(&rel) {
                        removed.push(rel);
                    }
                }
                Err(_) => return self.read_all(),
            }
        }
        Ok(self.read(seen, removed, scanned_at))
    }

    /// Reads the files among `seen` whose fingerprint changed (or is recent).
    fn read(
        &mut self,
        seen: Vec<(String, PathBuf, Option<Fingerprint>)>,
        removed: Vec<String>,
        scanned_at: SystemTime,
    ) -> TreeDelta {
        use rayon::prelude::*;
        for path in &removed {
            self.known.remove(path);
        }
        let candidates: Vec<&(String, PathBuf, Option<Fingerprint>)> = seen
            .iter()
            .filter(|(rel, _, fp)| match (self.known.get(rel), fp) {
                (Some(Some(known)), Some(fp)) => known != fp || fp.is_recent(scanned_at),
                _ => true,
            })
            .collect();
        let reads: Vec<(FileRead, Option<Fingerprint>)> = candidates
            .par_iter()
            .map(|(rel, abs, fp)| {
                let (read_fp, content) = read_file(abs);
                let read = FileRead {
                    path: rel.clone(),
                    content,
                };
                (read, fp.or(read_fp))
            })
            .collect();
        let mut delta = TreeDelta {
            reads: Vec::with_capacity(reads.len()),
            removed,
        };
        for (read, fingerprint) in reads {
            self.known.insert(read.path.clone(), fingerprint);
            delta.reads.push(read);
        }
        delta
    }
}

fn is_config_file(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The file's content and its fingerprint, taken from the open file (no second lookup).
fn read_file(path: &Path) -> (Option<Fingerprint>, Result<String, Unreadable>) {
    use std::io::Read;
    let read = || -> io::Result<(Fingerprint, Vec<u8>)> {
        let mut file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
        file.read_to_end(&mut bytes)?;
        Ok((Fingerprint::of(&meta), bytes))
    };
    match read() {
        Ok((fp, bytes)) => (Some(fp), utf8(bytes)),
        Err(e) => (
            None,
            Err(Unreadable {
                line: 1,
                message: format!("cannot read file: {e}"),
            }),
        ),
    }
}

fn utf8(bytes: Vec<u8>) -> Result<String, Unreadable> {
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        Unreadable {
            line: valid.iter().filter(|b| **b == b'\n').count() as u32 + 1,
            message: "file is not valid UTF-8".into(),
        }
    })
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

/// Every `*.yaml`/`*.yml` under `root`, by `/`-separated relative path.
pub fn list_files(root: &Path) -> io::Result<BTreeMap<String, PathBuf>> {
    Ok(scan(root, false)?
        .into_iter()
        .map(|(rel, (abs, _))| (rel, abs))
        .collect())
}

type Scanned = BTreeMap<String, (PathBuf, Option<Fingerprint>)>;

/// [`list_files`] with each file's fingerprint, from the one `stat` the walk needs anyway.
fn scan(root: &Path, fingerprints: bool) -> io::Result<Scanned> {
    let context = |e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot read config directory {}: {e}", root.display()),
        )
    };
    let meta = std::fs::metadata(root).map_err(context)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", root.display()),
        ));
    }
    let mut out = BTreeMap::new();
    let mut visited = BTreeSet::new();
    walk(root, "", fingerprints, &mut out, &mut visited, 0).map_err(context)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    prefix: &str,
    fingerprints: bool,
    out: &mut Scanned,
    visited: &mut BTreeSet<PathBuf>,
    depth: usize,
) -> io::Result<()> {
    use rayon::prelude::*;
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
    // A `stat` follows symlinks and gives the fingerprint; without fingerprints, only symlinks
    // need one. In parallel, since a large tree is thousands of files in one directory.
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
        } else if is_config_file(&name) {
            out.insert(rel, (path, fingerprint.filter(|_| fingerprints)));
        }
    }
    Ok(())
}
