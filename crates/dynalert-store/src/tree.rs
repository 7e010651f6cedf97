//! Moving documents between a store and a conf.d directory on disk: what `--import`,
//! `dynalert store import` and `dynalert store export` read and write.

use std::io;
use std::path::Path;

use crate::Document;
use crate::dir::write_atomically;

/// Every `*.yaml`/`*.yml` file under `root` (hidden entries skipped, as the loader does), as
/// (relative path, content). A file that cannot be read as the loader would (not UTF-8, a
/// FIFO, over [`crate::DEFAULT_MAX_FILE_SIZE`], leading outside the tree) is an error naming it.
pub fn read_tree(root: &Path) -> io::Result<Vec<(String, String)>> {
    let listing = crate::scan::list_files(root)?;
    if let Some((path, why)) = listing.refused.into_iter().next() {
        return Err(refused(&root.join(path), why));
    }
    let mut docs = Vec::with_capacity(listing.files.len());
    for (path, abs) in listing.files {
        let (_, bytes) = crate::file_guard::read_limited(&abs, crate::DEFAULT_MAX_FILE_SIZE)
            .map_err(|why| refused(&abs, why))?;
        let content = String::from_utf8(bytes).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not valid UTF-8", abs.display()),
            )
        })?;
        docs.push((path, content));
    }
    Ok(docs)
}

fn refused(path: &Path, why: crate::Refusal) -> io::Error {
    let kind = match &why {
        crate::Refusal::Io(e) => e.kind(),
        crate::Refusal::Missing => io::ErrorKind::NotFound,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, format!("{}: {why}", path.display()))
}

/// Writes every document under `root` (created if missing), each file replaced atomically.
/// Returns how many files were written.
pub fn write_tree(root: &Path, docs: &[Document]) -> io::Result<usize> {
    std::fs::create_dir_all(root)?;
    for doc in docs {
        crate::check_path(&doc.path).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        write_atomically(&root.join(&doc.path), doc.content.as_bytes())?;
    }
    Ok(docs.len())
}
