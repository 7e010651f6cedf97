//! Reading one file of a conf.d tree without trusting it. A tree holds whatever a writer, a
//! git commit or a volume mount put there: a FIFO, a symlink to `/dev/zero` or to a secret
//! elsewhere on the host, a file of gigabytes. So:
//!
//! - only a regular file is read: its type is checked before opening (by the walk) and again
//!   on the open file, and the open is non-blocking, so a FIFO swapped in between the two
//!   cannot hang the reader;
//! - a symlink is followed only when its final target lies inside the configured tree (a
//!   ConfigMap's `file.yaml -> ..data/file.yaml` does); anything outside is refused unread, so
//!   its content can never reach a diagnostic, an API answer or `/metrics`;
//! - at most a size limit is read (`--max-file-size`), so a file that grows while it is read
//!   cannot exhaust memory either.
//!
//! A [`Refusal`] says what is wrong and never quotes content. The walk (`scan.rs`) and the
//! directory store read through here.

use std::fmt;
use std::fs::{File, FileType, Metadata};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Default of `--max-file-size`: 4 MiB. A ConfigMap holds at most 1 MiB in all and the API
/// accepts documents of at most 1 MiB; 4 MiB is room for about 4,000 tenants overriding 30
/// keys each in one file (`cargo xtask gen-tenants` writes ~1 KB per such tenant).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 4 << 20;

/// Why a file (or directory) of the tree was not read.
#[derive(Debug)]
pub enum Refusal {
    /// Gone: removed between listing and reading, or a dangling symlink.
    Missing,
    /// A FIFO, socket or device (named): opening or reading it can block or never end.
    NotRegular(&'static str),
    /// A symlink whose target lies outside the configured tree.
    OutsideTree,
    /// Larger than the limit (`size` when known before reading).
    TooLarge { size: Option<u64>, limit: u64 },
    /// The name is not UTF-8, so it cannot be a document path.
    NameNotUtf8,
    /// The operating system refused (permissions, a symlink loop, I/O).
    Io(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Missing => f.write_str("no such file (removed, or a dangling symlink)"),
            Refusal::NotRegular(kind) => {
                write!(f, "not a regular file ({kind}); only regular files are read")
            }
            Refusal::OutsideTree => f.write_str(
                "symlink leads outside the config directory; not read (symlinks are followed only within the tree)",
            ),
            Refusal::TooLarge {
                size: Some(size),
                limit,
            } => write!(
                f,
                "file is {size} bytes, over the {limit}-byte limit (--max-file-size); not read"
            ),
            Refusal::TooLarge { size: None, limit } => write!(
                f,
                "file grew past the {limit}-byte limit (--max-file-size) while being read; not read"
            ),
            Refusal::NameNotUtf8 => f.write_str("name is not valid UTF-8; not read (rename it)"),
            Refusal::Io(e) => write!(f, "cannot read: {e}"),
        }
    }
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::NotFound {
            Refusal::Missing
        } else {
            Refusal::Io(e)
        }
    }
}

/// The canonical path `path` leads to (every symlink followed) and what is there.
pub(crate) fn follow(path: &Path) -> Result<(PathBuf, Metadata), Refusal> {
    let target = std::fs::canonicalize(path)?;
    let meta = std::fs::metadata(&target)?;
    Ok((target, meta))
}

/// Refuses anything but a regular file, naming what it is.
pub(crate) fn check_regular(kind: FileType) -> Result<(), Refusal> {
    if kind.is_file() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let unix_kind = if kind.is_fifo() {
            Some("a FIFO")
        } else if kind.is_socket() {
            Some("a socket")
        } else if kind.is_char_device() {
            Some("a character device")
        } else if kind.is_block_device() {
            Some("a block device")
        } else {
            None
        };
        if let Some(unix_kind) = unix_kind {
            return Err(Refusal::NotRegular(unix_kind));
        }
    }
    Err(Refusal::NotRegular(if kind.is_dir() {
        "a directory"
    } else {
        "an unknown kind of file"
    }))
}

/// Reads a file the walk found inside the tree: at most `limit` bytes, only if the open file
/// is a regular file. Returns its metadata (from the open file) and content.
pub(crate) fn read_limited(path: &Path, limit: u64) -> Result<(Metadata, Vec<u8>), Refusal> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    check_regular(meta.file_type())?;
    if meta.len() > limit {
        return Err(Refusal::TooLarge {
            size: Some(meta.len()),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize + 1);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(Refusal::TooLarge { size: None, limit });
    }
    Ok((meta, bytes))
}

/// [`read_limited`] for a path that did not come from the walk (an API request's document):
/// refused unless it leads to a file inside `root`.
pub(crate) fn read_in_tree(
    root: &Path,
    path: &Path,
    limit: u64,
) -> Result<(Metadata, Vec<u8>), Refusal> {
    let root = std::fs::canonicalize(root)?;
    let (target, meta) = follow(path)?;
    if !target.starts_with(&root) {
        return Err(Refusal::OutsideTree);
    }
    check_regular(meta.file_type())?;
    read_limited(&target, limit)
}

/// Opens for reading without blocking: on a FIFO a plain `open` waits for a writer forever.
/// `O_NOCTTY` keeps a terminal swapped in from becoming ours.
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_up_to_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, b"0123456789").unwrap();
        let (meta, bytes) = read_limited(&path, 10).unwrap();
        assert_eq!((meta.len(), bytes.as_slice()), (10, &b"0123456789"[..]));
        let refused = read_limited(&path, 9).unwrap_err();
        assert!(
            matches!(
                refused,
                Refusal::TooLarge {
                    size: Some(10),
                    limit: 9
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            refused.to_string(),
            "file is 10 bytes, over the 9-byte limit (--max-file-size); not read"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.yaml");
        mkfifo(&path);
        // No writer ever opens it: a blocking open would hang this test.
        let refused = read_limited(&path, 1024).unwrap_err();
        assert!(
            matches!(refused, Refusal::NotRegular("a FIFO")),
            "{refused:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn an_endless_device_is_never_read() {
        // /dev/zero is a character device: refused on its type, before any byte is read.
        let refused = read_limited(Path::new("/dev/zero"), 1024).unwrap_err();
        assert!(
            matches!(refused, Refusal::NotRegular("a character device")),
            "{refused:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_request_path_must_lead_inside_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("conf.d");
        std::fs::create_dir_all(root.join("..2026_01_01")).unwrap();
        std::fs::write(root.join("..2026_01_01/a.yaml"), "tenants: {}\n").unwrap();
        std::os::unix::fs::symlink("..2026_01_01", root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.yaml", root.join("a.yaml")).unwrap();
        std::fs::write(dir.path().join("secret.yaml"), "SECRET\n").unwrap();
        std::os::unix::fs::symlink("../secret.yaml", root.join("leak.yaml")).unwrap();

        let (_, bytes) = read_in_tree(&root, &root.join("a.yaml"), 1024).unwrap();
        assert_eq!(bytes, b"tenants: {}\n");
        let refused = read_in_tree(&root, &root.join("leak.yaml"), 1024).unwrap_err();
        assert!(matches!(refused, Refusal::OutsideTree), "{refused:?}");
        assert!(!refused.to_string().contains("SECRET"));
        let missing = read_in_tree(&root, &root.join("none.yaml"), 1024).unwrap_err();
        assert!(matches!(missing, Refusal::Missing), "{missing:?}");
    }

    #[cfg(unix)]
    pub(crate) fn mkfifo(path: &Path) {
        let made = std::process::Command::new("mkfifo").arg(path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", path.display());
    }
}
