//! The one walk of a conf.d directory: which `*.yaml`/`*.yml` files it holds, and their
//! content, read again only when a file looks changed. The serve loop's directory source, the
//! directory store, `--import` and the CLI all list files through here.
//!
//! Entries whose name starts with `.` are skipped (Kubernetes' `..data` and timestamped
//! folders, editors' swap files, the store's `.dynalert`). Symlinks are followed when their
//! target lies inside the tree (a ConfigMap file is a symlink into `..data`), with a depth
//! limit and a loop check. What cannot be used is reported by name, never read or quoted
//! (`file_guard.rs`): a FIFO or device, a symlink leading outside the tree, a file over the
//! size limit, a name that is not UTF-8. A subdirectory that cannot be read is reported as
//! that directory (`sub/`), and the files read from it before are kept, not removed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs::FileType;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::file_guard::{self, DEFAULT_MAX_FILE_SIZE, Refusal};

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
    max_file_size: u64,
    /// Every file of the last read, with its fingerprint (`None` when it could not be read).
    known: BTreeMap<String, Option<Fingerprint>>,
}

impl TreeReader {
    /// A reader of the tree at `root`, refusing files over [`DEFAULT_MAX_FILE_SIZE`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TreeReader {
            root: root.into(),
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            known: BTreeMap::new(),
        }
    }

    /// Refuses files larger than `limit` bytes (reported, not read).
    pub fn with_max_file_size(mut self, limit: u64) -> Self {
        self.max_file_size = limit;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Forgets what was read: the next [`TreeReader::read_all`] hands over every file again.
    pub fn forget(&mut self) {
        self.known.clear();
    }

    /// Walks the whole tree. Fails only if the root itself cannot be read; a file or
    /// subdirectory that cannot be used is reported as [`Unreadable`].
    pub fn read_all(&mut self) -> io::Result<TreeDelta> {
        let scanned_at = SystemTime::now();
        // On the first read every file is read anyway, and its fingerprint comes from the
        // open file; only later scans need one `stat` per file to spot changes.
        let walked = scan(&self.root, !self.known.is_empty())?;
        // What a subdirectory held stays known while the directory cannot be read.
        let removed = self
            .known
            .keys()
            .filter(|k| !walked.found.contains_key(*k) && !walked.is_blind(k))
            .cloned()
            .collect();
        Ok(self.read(walked.found.into_iter().collect(), removed, scanned_at))
    }

    /// Reads only the given paths (absolute, as a file watcher reports them), which keeps a
    /// one-file edit in a large tree cheap. Anything that is not plainly a regular
    /// `.yaml`/`.yml` file inside the root (a directory, a hidden entry such as `..data`, the
    /// root itself, a FIFO, a symlink leading out) falls back to [`TreeReader::read_all`],
    /// whose walk decides about it.
    pub fn read_paths(&mut self, paths: &[PathBuf]) -> io::Result<TreeDelta> {
        let scanned_at = SystemTime::now();
        let root = std::path::absolute(&self.root)?;
        let Ok(canonical_root) = std::fs::canonicalize(&root) else {
            return self.read_all();
        };
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
            match file_guard::follow(path) {
                Ok((target, meta)) if meta.is_file() && target.starts_with(&canonical_root) => {
                    let fingerprint = Some(Fingerprint::of(&meta));
                    let abs = path.clone();
                    seen.push((rel, Found::File { abs, fingerprint }));
                }
                Err(Refusal::Missing) => {
                    if self.known.contains_key(&rel) {
                        removed.push(rel);
                    }
                }
                _ => return self.read_all(),
            }
        }
        Ok(self.read(seen, removed, scanned_at))
    }

    /// Reads the files among `seen` whose fingerprint changed (or is recent), and reports the
    /// refused entries again (the document set drops repeats).
    fn read(
        &mut self,
        seen: Vec<(String, Found)>,
        removed: Vec<String>,
        scanned_at: SystemTime,
    ) -> TreeDelta {
        use rayon::prelude::*;
        for path in &removed {
            self.known.remove(path);
        }
        let known = &self.known;
        let limit = self.max_file_size;
        let reads: Vec<(FileRead, Option<Fingerprint>)> = seen
            .into_par_iter()
            .filter(|(rel, found)| match (known.get(rel), found) {
                (
                    Some(Some(known)),
                    Found::File {
                        fingerprint: Some(fp),
                        ..
                    },
                ) => known != fp || fp.is_recent(scanned_at),
                _ => true,
            })
            .map(|(path, found)| match found {
                Found::File { abs, fingerprint } => {
                    let (read_fp, content) = read_file(&abs, limit);
                    // A file that failed is tried again on every scan, changed or not.
                    let fingerprint = content.is_ok().then(|| fingerprint.or(read_fp)).flatten();
                    (FileRead { path, content }, fingerprint)
                }
                Found::Refused { why, dir } => {
                    let content = Err(Unreadable {
                        line: 1,
                        message: if dir {
                            dir_message(&why)
                        } else {
                            why.to_string()
                        },
                    });
                    (FileRead { path, content }, None)
                }
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
fn read_file(path: &Path, limit: u64) -> (Option<Fingerprint>, Result<String, Unreadable>) {
    match file_guard::read_limited(path, limit) {
        Ok((meta, bytes)) => (Some(Fingerprint::of(&meta)), utf8(bytes)),
        Err(why) => (
            None,
            Err(Unreadable {
                line: 1,
                message: why.to_string(),
            }),
        ),
    }
}

/// What a refused directory's diagnostic says.
fn dir_message(why: &Refusal) -> String {
    let reason = match why {
        Refusal::Io(e) => format!("cannot read directory: {e}"),
        Refusal::OutsideTree => {
            "symlink to a directory outside the config directory; not followed".into()
        }
        Refusal::NameNotUtf8 => "directory name is not valid UTF-8; not read (rename it)".into(),
        other => other.to_string(),
    };
    format!("{reason}; the files read from it before stay served")
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

/// The files of a tree, as the walk found them.
#[derive(Debug, Default)]
pub struct Listing {
    /// Every `*.yaml`/`*.yml` file that may be read, by `/`-separated relative path.
    pub files: BTreeMap<String, PathBuf>,
    /// Files and directories (`sub/`) that are not read, and why.
    pub refused: BTreeMap<String, Refusal>,
}

/// Every `*.yaml`/`*.yml` under `root`, and what was refused.
pub fn list_files(root: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for (rel, found) in scan(root, false)?.found {
        match found {
            Found::File { abs, .. } => {
                listing.files.insert(rel, abs);
            }
            Found::Refused { why, .. } => {
                listing.refused.insert(rel, why);
            }
        }
    }
    Ok(listing)
}

/// What the walk found at one relative path.
enum Found {
    /// A regular file inside the tree (its fingerprint when asked for).
    File {
        abs: PathBuf,
        fingerprint: Option<Fingerprint>,
    },
    /// Not read, for this reason; `dir` when it is a directory (its path ends in `/`).
    Refused { why: Refusal, dir: bool },
}

#[derive(Default)]
struct Walked {
    found: BTreeMap<String, Found>,
    /// Directories not read (`sub/`): what was known under them is kept.
    blind: Vec<String>,
}

impl Walked {
    fn is_blind(&self, rel: &str) -> bool {
        self.blind.iter().any(|dir| rel.starts_with(dir.as_str()))
    }
}

/// [`list_files`] with each file's fingerprint, from the one `stat` the walk needs anyway.
fn scan(root: &Path, fingerprints: bool) -> io::Result<Walked> {
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
    let mut walk = Walk {
        root: std::fs::canonicalize(root).map_err(context)?,
        fingerprints,
        visited: BTreeSet::new(),
        out: Walked::default(),
    };
    walk.dir(root, "", 0).map_err(context)?;
    Ok(walk.out)
}

struct Walk {
    /// The root's canonical path: symlinks are followed only to targets under it.
    root: PathBuf,
    fingerprints: bool,
    visited: BTreeSet<PathBuf>,
    out: Walked,
}

/// One directory entry, classified.
enum Entry {
    Skip,
    Dir(PathBuf),
    File(Option<Fingerprint>),
    Refused(Refusal),
    RefusedDir(Refusal),
}

impl Walk {
    /// Walks `dir`, `prefix` being its relative path (empty for the root). Only the root's
    /// own failure is an error; a subdirectory's is reported as that directory.
    fn dir(&mut self, dir: &Path, prefix: &str, depth: usize) -> io::Result<()> {
        use rayon::prelude::*;
        let canonical = std::fs::canonicalize(dir);
        // Symlinked directories could form a loop; canonical paths stop it.
        if let Ok(canonical) = &canonical
            && (depth > 32 || !self.visited.insert(canonical.clone()))
        {
            return Ok(());
        }
        let entries = match canonical.and_then(|_| read_entries(dir)) {
            Ok(entries) => entries,
            Err(e) if prefix.is_empty() => return Err(e),
            Err(e) => {
                self.refuse_dir(prefix, Refusal::from(e));
                return Ok(());
            }
        };
        // Symlinks need a lookup to see where they lead, regular files one for their
        // fingerprint. In parallel, since a large tree is thousands of files in one directory.
        let classified: Vec<(String, PathBuf, Entry)> = entries
            .into_par_iter()
            .map(|(name, kind)| {
                let path = dir.join(&name);
                let (shown, utf8) = match name.to_str() {
                    Some(text) => (text.to_string(), true),
                    None => (name.to_string_lossy().into_owned(), false),
                };
                let entry = self.classify(&path, &shown, utf8, kind);
                (shown, path, entry)
            })
            .collect();
        for (name, path, entry) in classified {
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            match entry {
                Entry::Skip => {}
                Entry::Dir(path) => self.dir(&path, &rel, depth + 1)?,
                Entry::File(fingerprint) => {
                    let abs = path;
                    self.out.found.insert(rel, Found::File { abs, fingerprint });
                }
                Entry::Refused(why) => {
                    self.out
                        .found
                        .insert(rel, Found::Refused { why, dir: false });
                }
                Entry::RefusedDir(why) => self.refuse_dir(&rel, why),
            }
        }
        Ok(())
    }

    fn refuse_dir(&mut self, rel: &str, why: Refusal) {
        let key = format!("{rel}/");
        self.out.blind.push(key.clone());
        self.out
            .found
            .insert(key, Found::Refused { why, dir: true });
    }

    /// What an entry is to the walk: a directory to enter, a file to read, something to
    /// report without reading it, or nothing of interest (not configuration, dangling).
    fn classify(&self, path: &Path, name: &str, utf8: bool, kind: FileType) -> Entry {
        let config = is_config_file(name);
        if kind.is_symlink() {
            let (target, meta) = match file_guard::follow(path) {
                Ok(found) => found,
                // Dangling, as a ConfigMap file is for a moment during a swap: as if absent.
                Err(Refusal::Missing) => return Entry::Skip,
                Err(why) if config => return Entry::Refused(why),
                Err(_) => return Entry::Skip,
            };
            let is_dir = meta.is_dir();
            let refuse = |why| {
                if is_dir {
                    Entry::RefusedDir(why)
                } else {
                    Entry::Refused(why)
                }
            };
            return if !is_dir && !config {
                Entry::Skip
            } else if !utf8 {
                refuse(Refusal::NameNotUtf8)
            } else if !target.starts_with(&self.root) {
                refuse(Refusal::OutsideTree)
            } else if is_dir {
                Entry::Dir(path.to_path_buf())
            } else if let Err(why) = file_guard::check_regular(meta.file_type()) {
                Entry::Refused(why)
            } else {
                Entry::File(self.fingerprints.then(|| Fingerprint::of(&meta)))
            };
        }
        if kind.is_dir() {
            return if utf8 {
                Entry::Dir(path.to_path_buf())
            } else {
                Entry::RefusedDir(Refusal::NameNotUtf8)
            };
        }
        if !config {
            return Entry::Skip;
        }
        if !utf8 {
            return Entry::Refused(Refusal::NameNotUtf8);
        }
        if let Err(why) = file_guard::check_regular(kind) {
            return Entry::Refused(why);
        }
        if !self.fingerprints {
            return Entry::File(None);
        }
        match std::fs::metadata(path) {
            Ok(meta) => Entry::File(Some(Fingerprint::of(&meta))),
            Err(e) => match Refusal::from(e) {
                Refusal::Missing => Entry::Skip,
                why => Entry::Refused(why),
            },
        }
    }
}

/// The entries of a directory, hidden ones left out.
fn read_entries(dir: &Path) -> io::Result<Vec<(OsString, FileType)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if !name.as_encoded_bytes().starts_with(b".") {
            entries.push((name, entry.file_type()?));
        }
    }
    Ok(entries)
}
