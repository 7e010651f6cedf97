//! Moving documents between a store and a conf.d directory on disk: what `--import`,
//! `dynalert store import` and `dynalert store export` read and write.

use std::io;
use std::path::Path;

use crate::Document;
use crate::dir::write_atomically;

/// Every `*.yaml`/`*.yml` file under `root` (hidden entries skipped, as the loader does), as
/// (relative path, content). A file that is not UTF-8 is an error naming it.
pub fn read_tree(root: &Path) -> io::Result<Vec<(String, String)>> {
    let files = crate::scan::list_files(root)?;
    let mut docs = Vec::with_capacity(files.len());
    for (path, abs) in files {
        let bytes = std::fs::read(&abs)?;
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
