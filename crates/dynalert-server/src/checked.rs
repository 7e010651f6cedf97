//! Documents the API has just validated, parsed, handed to the store sync that applies them.
//!
//! A PATCH parses the tenant file it generated to check it against the model; when the write
//! comes back from the store, the loader would parse the same text again (5 % of the server's
//! CPU under a stream of PATCHes). A parse depends only on the path and the text, so the sync
//! takes the parsed file whenever the stored text is the one that was checked, whichever
//! write stored it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use dynalert_config::ParsedFile;

/// Documents kept at most; past that the map starts over (a document not found is parsed).
const CAPACITY: usize = 4096;

#[derive(Default)]
pub(crate) struct CheckedDocuments {
    by_path: Mutex<HashMap<String, (String, Arc<ParsedFile>)>>,
}

impl CheckedDocuments {
    /// Offers `parsed`, the parse of `content` at `path`, to the next reader of that path.
    pub fn offer(&self, path: &str, content: &str, parsed: Arc<ParsedFile>) {
        let mut map = self.lock();
        if map.len() >= CAPACITY && !map.contains_key(path) {
            map.clear();
        }
        map.insert(path.to_string(), (content.to_string(), parsed));
    }

    /// The parse of `content` at `path`, if one was offered for exactly that text.
    pub fn take(&self, path: &str, content: &str) -> Option<Arc<ParsedFile>> {
        let (offered, parsed) = self.lock().remove(path)?;
        (offered == content).then_some(parsed)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, (String, Arc<ParsedFile>)>> {
        // The map holds no invariant a panicking holder could break.
        self.by_path.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_offered_text_is_taken() {
        let checked = CheckedDocuments::default();
        let text = "tenants:\n  a: {}\n";
        let parsed = Arc::new(dynalert_config::parse_file("a.yaml", text));
        checked.offer("a.yaml", text, parsed.clone());
        assert!(checked.take("a.yaml", "tenants:\n  b: {}\n").is_none());
        // A miss forgets the offer: another write came in between.
        assert!(checked.take("a.yaml", text).is_none());
        checked.offer("a.yaml", text, parsed.clone());
        assert!(Arc::ptr_eq(&checked.take("a.yaml", text).unwrap(), &parsed));
        assert!(checked.take("a.yaml", text).is_none(), "taken twice");
    }
}
