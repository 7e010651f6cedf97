//! Tenant files as PATCH last saw them, parsed, by path and revision.
//!
//! A merge patch needs the tenant's current settings as JSON, and parsing the stored YAML was
//! a tenth of the server's CPU under a stream of PATCHes. The file a PATCH writes is known
//! parsed already (it was built from the merged settings), so the next PATCH of that tenant
//! starts from it while the stored revision is still the one written. Any other revision is
//! parsed again, so a write through another replica, a PUT or a file edit is never missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dynalert_store::Document;

use super::document::TenantFile;
use crate::error::ApiError;

/// Files kept at most; past that the cache starts over (a burst on more tenants than this
/// parses as if there were no cache).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub struct ParsedFiles {
    by_path: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    revision: String,
    tenant: String,
    file: Arc<TenantFile>,
}

impl ParsedFiles {
    /// `doc` parsed as tenant `name`'s file, from the cache when it holds that revision.
    pub fn parse(&self, doc: &Document, name: &str) -> Result<Arc<TenantFile>, ApiError> {
        if let Some(entry) = self.lock().get(&doc.path)
            && entry.revision == doc.revision
            && entry.tenant == name
        {
            return Ok(entry.file.clone());
        }
        Ok(Arc::new(TenantFile::parse(&doc.content, name)?))
    }

    /// Remembers what a write stored at `revision` of `path`.
    pub fn remember(&self, path: &str, revision: &str, tenant: &str, file: TenantFile) {
        let mut map = self.lock();
        if map.len() >= CAPACITY && !map.contains_key(path) {
            map.clear();
        }
        map.insert(
            path.to_string(),
            Entry {
                revision: revision.to_string(),
                tenant: tenant.to_string(),
                file: Arc::new(file),
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // The map holds no invariant a panicking holder could break.
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }
}
