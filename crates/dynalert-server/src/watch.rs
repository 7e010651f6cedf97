//! File watching: turns filesystem events under the conf.d root into wake-ups for the reload
//! task (which debounces them).
//!
//! The root is watched recursively and its parent non-recursively. The parent watch sees the
//! root itself being replaced: a symlinked root swapped by git-sync, a directory renamed into
//! place or re-created. When that happens the root watch is re-established on the new
//! directory ([`DirWatcher::ensure_watching`], called before every reload). Kubernetes'
//! ConfigMap swap (`..data` re-pointed by a rename) happens inside the root and is seen by the
//! root watch. notify gives up on a recursive watch at the first directory it may not read;
//! then every other directory is watched on its own, again before every reload (so new and
//! readable-again directories are picked up), and the periodic re-scan covers the rest.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

/// What changed since the last reload, as the watcher reported it.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    pub paths: BTreeSet<PathBuf>,
    /// Events may have been lost, or did not say where: re-read everything.
    pub full: bool,
}

pub(crate) struct DirWatcher {
    watcher: RecommendedWatcher,
    changes: Arc<Mutex<Changes>>,
    root: PathBuf,
    /// The directory the root watch was placed on, while there is one.
    watched_root: Option<DirIdentity>,
    /// Some directory under the root could not be watched: the others are, one by one.
    partial: bool,
    watching_parent: bool,
    /// Whether a failure to watch was logged at warn level already.
    warned: bool,
}

/// Which directory a path leads to; changes when the root is replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
struct DirIdentity {
    canonical: PathBuf,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl DirIdentity {
    fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_dir())?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(DirIdentity {
            canonical: std::fs::canonicalize(path).ok()?,
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
        })
    }
}

impl DirWatcher {
    /// Creates the watcher; every relevant event calls `wake.notify_one()`. Call
    /// [`DirWatcher::ensure_watching`] to place the watches.
    pub fn new(root: &Path, wake: Arc<Notify>) -> notify::Result<Self> {
        let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
        let filter_root = root.clone();
        let changes = Arc::new(Mutex::new(Changes::default()));
        let record = changes.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<Event>| {
            let mut changes = record.lock().unwrap_or_else(PoisonError::into_inner);
            match event {
                Ok(event) if is_relevant(&event, &filter_root) => {
                    debug!(kind = ?event.kind, paths = ?event.paths, "config change");
                    changes.full |= event.need_rescan() || event.paths.is_empty();
                    changes.paths.extend(event.paths);
                    wake.notify_one();
                }
                Ok(_) => {}
                Err(e) => {
                    // Events may have been lost: re-scan to be safe.
                    warn!("file watcher: {e}; re-scanning");
                    changes.full = true;
                    wake.notify_one();
                }
            }
        })?;
        Ok(DirWatcher {
            watcher,
            changes,
            root,
            watched_root: None,
            partial: false,
            watching_parent: false,
            warned: false,
        })
    }

    /// Takes what changed since the last call.
    pub fn take_changes(&self) -> Changes {
        std::mem::take(&mut *self.changes.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Places the parent watch if missing, and (re-)places the root watch when the root now
    /// leads to another directory. Failures are logged; the periodic re-scan still works.
    pub fn ensure_watching(&mut self) {
        if !self.watching_parent
            && let Some(parent) = self.root.parent().filter(|p| p.is_dir())
        {
            let parent = parent.to_path_buf();
            self.watching_parent = self.watch(&parent, RecursiveMode::NonRecursive);
        }
        let current = DirIdentity::of(&self.root);
        if current == self.watched_root && !self.partial {
            return;
        }
        if self.watched_root.is_some() && current != self.watched_root {
            // The old directory may be gone already; its watches die with it then.
            let _ = self.watcher.unwatch(&self.root);
            self.watched_root = None;
        }
        if current.is_none() {
            return;
        }
        let root = self.root.clone();
        if let Err(e) = self.watcher.watch(&root, RecursiveMode::Recursive) {
            let watched = self.watch_each_dir();
            if watched == 0 {
                self.log_once(format!(
                    "cannot watch {}: {e}; relying on the periodic re-scan",
                    root.display()
                ));
                return;
            }
            if !self.partial {
                warn!(
                    "cannot watch every directory under {} ({e}); watching the {watched} others, the periodic re-scan covers the rest",
                    root.display()
                );
            }
            self.partial = true;
        } else {
            if self.partial {
                info!(root = %root.display(), "every directory is watched again");
            }
            self.partial = false;
        }
        debug!(root = %root.display(), partial = self.partial, "watching");
        self.watched_root = current;
    }

    /// Watches every directory under the root that can be watched, each on its own (symlinks
    /// not followed); returns how many are watched.
    fn watch_each_dir(&mut self) -> usize {
        let mut watched = 0;
        let mut pending = vec![(self.root.clone(), 0)];
        while let Some((dir, depth)) = pending.pop() {
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => watched += 1,
                Err(e) => debug!("cannot watch {}: {e}", dir.display()),
            }
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if depth < 32 && entry.file_type().is_ok_and(|t| t.is_dir()) {
                    pending.push((entry.path(), depth + 1));
                }
            }
        }
        watched
    }

    /// Places one watch; a failure is logged once (it is retried before every reload).
    fn watch(&mut self, path: &Path, mode: RecursiveMode) -> bool {
        match self.watcher.watch(path, mode) {
            Ok(()) => true,
            Err(e) => {
                self.log_once(format!(
                    "cannot watch {}: {e}; relying on the periodic re-scan",
                    path.display()
                ));
                false
            }
        }
    }

    /// Logs at warn level the first time, at debug level after.
    fn log_once(&mut self, message: String) {
        if std::mem::replace(&mut self.warned, true) {
            debug!("{message}");
        } else {
            warn!("{message}");
        }
    }
}

/// Whether an event can mean a change of the served files. Opening and reading files (the
/// loader's own reads among them) is not, or every reload would trigger the next one.
fn is_relevant(event: &Event, root: &Path) -> bool {
    if event.need_rescan() {
        return true;
    }
    if matches!(event.kind, EventKind::Access(kind) if kind != AccessKind::Close(AccessMode::Write))
    {
        return false;
    }
    // The parent watch reports its other entries too; only the root's own entry matters.
    event.paths.is_empty() || event.paths.iter().any(|p| p.starts_with(root))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RenameMode};

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn reads_are_not_changes() {
        let root = Path::new("/etc/conf.d");
        assert!(!is_relevant(
            &event(
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                "/etc/conf.d/a.yaml"
            ),
            root
        ));
        assert!(!is_relevant(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Read)),
                "/etc/conf.d/a.yaml"
            ),
            root
        ));
        assert!(is_relevant(
            &event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/etc/conf.d/a.yaml"
            ),
            root
        ));
        assert!(is_relevant(
            &event(EventKind::Create(CreateKind::File), "/etc/conf.d/x/b.yaml"),
            root
        ));
    }

    #[test]
    fn parent_events_count_only_for_the_root_entry() {
        let root = Path::new("/etc/conf.d");
        let renamed = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(is_relevant(&event(renamed, "/etc/conf.d"), root));
        assert!(!is_relevant(&event(renamed, "/etc/passwd"), root));
        assert!(!is_relevant(&event(renamed, "/etc/conf.d.bak"), root));
        assert!(is_relevant(
            &Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan),
            root
        ));
    }
}
