//! The documents dynalert serves, whatever they came from (a directory, SQLite, PostgreSQL):
//! the current and the last good version of each, parsed once. A source hands over deltas
//! (documents upserted, paths removed); each delta yields the new served [`Model`] and a
//! [`ModelDiff`] saying which tenants and platforms it changed, for the outputs to act on.
//! A broken document never replaces what is served: its last good version stays.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use rayon::prelude::*;
use xxhash_rust::xxh3::xxh3_64;

use crate::compile::compile;
use crate::diag::Diagnostic;
use crate::diff::ModelDiff;
use crate::doc::ParsedFile;
use crate::limits::{self, Limits};
use crate::model::{FileStatus, Model};
use crate::parse::parse_file;
use crate::settle::{Holds, PlatformSlot, settle_platforms, tenants_changed_by_platform};
use crate::yaml::Pos;

struct Slot {
    content_hash: u64,
    current: Arc<ParsedFile>,
    good: Option<Arc<ParsedFile>>,
}

/// A document's content, or why its source could not read it (shown as an error at `line`).
#[derive(Clone, Debug)]
pub enum Body {
    Text(String),
    Unreadable { line: u32, message: String },
}

/// A document to apply: its body, and its parse when the caller has it (it must be
/// `parse_file(path, content)`, as [`crate::validate::check_write`] returns).
pub struct Upsert {
    pub path: String,
    pub body: Body,
    pub parsed: Option<Arc<ParsedFile>>,
}

impl Upsert {
    pub fn text(path: impl Into<String>, content: impl Into<String>) -> Self {
        Upsert {
            path: path.into(),
            body: Body::Text(content.into()),
            parsed: None,
        }
    }
}

/// What a source saw change: documents new or possibly changed, and paths removed.
#[derive(Default)]
pub struct Delta {
    pub upserts: Vec<Upsert>,
    pub removed: Vec<String>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removed.is_empty()
    }
}

/// Summary of one [`DocumentSet::apply`].
#[derive(Clone, Debug, Default)]
pub struct ApplyStats {
    /// Documents held after the delta.
    pub documents: usize,
    /// Documents parsed (content new or changed).
    pub parsed: usize,
    pub removed: usize,
    /// Whether a new model was built (the first apply always builds one).
    pub changed: bool,
}

/// What one delta did: the counts, and what changed in the served model.
pub struct Applied {
    pub stats: ApplyStats,
    pub diff: ModelDiff,
}

/// The documents we have, the last good version of each, and the model built from them.
pub struct DocumentSet {
    /// Keys known without a platform file declaring them (the rule packs' keys).
    builtin_keys: Arc<BTreeSet<String>>,
    limits: Limits,
    slots: BTreeMap<String, Slot>,
    /// Files whose tenants keep their previous values while a platform change breaks them.
    holds: Holds,
    model: Arc<Model>,
}

impl Default for DocumentSet {
    fn default() -> Self {
        Self::new()
    }
}

impl DocumentSet {
    pub fn new() -> Self {
        DocumentSet {
            builtin_keys: Arc::default(),
            limits: Limits::DEFAULT,
            slots: BTreeMap::new(),
            holds: Holds::default(),
            model: Arc::new(Model::empty()),
        }
    }

    /// Makes these keys known to every tenant, as if a root platform file listed them under
    /// `optional` (used for the keys the rule packs declare).
    pub fn with_known_keys(mut self, keys: impl IntoIterator<Item = String>) -> Self {
        Arc::make_mut(&mut self.builtin_keys).extend(keys);
        self
    }

    /// Bounds on what one tenant may set; a file over them falls back to its last good copy.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn model(&self) -> Arc<Model> {
        self.model.clone()
    }

    /// Applies a delta: removed paths are dropped, upserted documents whose content differs
    /// from what is held are parsed (in parallel), and the model is rebuilt if anything
    /// changed. The first apply always builds a model, even from nothing.
    pub fn apply(&mut self, delta: Delta) -> Applied {
        let mut stats = ApplyStats::default();
        for path in &delta.removed {
            if self.slots.remove(path).is_some() {
                stats.removed += 1;
            }
        }
        let parsed: Vec<(String, u64, Option<Arc<ParsedFile>>)> = delta
            .upserts
            .into_par_iter()
            .map(|upsert| {
                let hash = body_hash(&upsert.body);
                let changed = self.slots.get(&upsert.path).map(|s| s.content_hash) != Some(hash);
                let parsed = changed.then(|| {
                    upsert
                        .parsed
                        .filter(|p| p.path == upsert.path)
                        .unwrap_or_else(|| {
                            let mut file = parse_body(&upsert.path, &upsert.body);
                            limits::enforce(&mut file, &self.limits);
                            Arc::new(file)
                        })
                });
                (upsert.path, hash, parsed)
            })
            .collect();
        for (path, content_hash, parsed) in parsed {
            if let Some(parsed) = parsed {
                stats.parsed += 1;
                let good = self.slots.get_mut(&path).and_then(|slot| slot.good.take());
                let slot = Slot {
                    content_hash,
                    current: parsed,
                    good,
                };
                self.slots.insert(path, slot);
            }
        }
        stats.documents = self.slots.len();
        if stats.parsed == 0 && stats.removed == 0 && self.model.generation > 0 {
            return Applied {
                stats,
                diff: ModelDiff::default(),
            };
        }
        let previous = std::mem::replace(&mut self.model, Arc::new(Model::empty()));
        self.model = Arc::new(self.build_model(&previous));
        stats.changed = true;
        Applied {
            stats,
            diff: ModelDiff::between(&previous, &self.model),
        }
    }

    /// Runs the cross-file stage. Every file is judged against the *served* versions of the
    /// others, never against another file's broken content: the platform files first
    /// ([`settle_platforms`]), then the tenant files against the platforms as served (this
    /// pass also reports every problem of files that are rejected anyway). A file with errors
    /// falls back to its last good version; tenants that a platform change breaks keep the
    /// values they had ([`Holds`]).
    fn build_model(&mut self, prev: &Model) -> Model {
        let dirs: Vec<&str> = self
            .slots
            .values()
            .map(|s| s.current.dir.as_str())
            .collect();
        let platform_slots: Vec<PlatformSlot<'_>> = self
            .slots
            .values()
            .filter(|s| s.current.is_platform)
            .map(|s| PlatformSlot {
                current: &s.current,
                good: s.good.as_ref(),
            })
            .collect();
        let settled = settle_platforms(&platform_slots, &dirs, &self.builtin_keys, &prev.platforms);
        let mut platform_served = settled.served.into_iter();
        // Per file in path order: the version judged (tenant files: the current one).
        let judged: Vec<(&String, &Slot, Option<Arc<ParsedFile>>)> = self
            .slots
            .iter()
            .map(|(path, slot)| match slot.current.is_platform {
                true => (path, slot, platform_served.next().flatten()),
                false => (path, slot, Some(slot.current.clone())),
            })
            .collect();
        let judged_files: Vec<Arc<ParsedFile>> =
            judged.iter().filter_map(|(_, _, f)| f.clone()).collect();
        let judge = compile(
            &judged_files,
            &self.builtin_keys,
            &settled.platforms,
            &prev.tenants,
        );
        let mut diagnostics = settled.diagnostics;
        // What the judging pass says about a platform file served in its last good version
        // is about that old copy: its current version was judged by the settling above.
        let judged_current: BTreeSet<&str> = judged
            .iter()
            .filter(|(_, slot, f)| f.as_ref().is_some_and(|f| Arc::ptr_eq(f, &slot.current)))
            .map(|(path, _, _)| path.as_str())
            .collect();
        diagnostics.extend(
            judge
                .diagnostics
                .iter()
                .filter(|d| judged_current.contains(d.file.as_str()))
                .cloned(),
        );
        let with_errors: BTreeSet<String> = diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.file.clone())
            .collect();
        let mut serve: Vec<(String, Arc<ParsedFile>)> = Vec::with_capacity(judged.len());
        let mut files = Vec::with_capacity(judged.len());
        let mut accepted = Vec::new();
        for (path, slot, judged) in judged {
            diagnostics.extend(slot.current.diagnostics.iter().cloned());
            // Platform files were settled already; a tenant file is served as judged if it
            // passed, else in its last good version.
            let passed = !slot.current.rejected && !judge.files_with_errors.contains(path);
            let served = if slot.current.is_platform || passed {
                judged
            } else {
                slot.good.clone()
            };
            let current = served
                .as_ref()
                .is_some_and(|f| Arc::ptr_eq(f, &slot.current));
            let good = slot
                .good
                .as_ref()
                .is_some_and(|g| Arc::ptr_eq(g, &slot.current));
            let status = match &served {
                None => FileStatus::NotServed,
                // A good file that another file's change gives errors is served as it was.
                Some(_) if current && good && with_errors.contains(path) => {
                    FileStatus::ServingLastGood
                }
                Some(_) if current => FileStatus::Ok,
                Some(_) => FileStatus::ServingLastGood,
            };
            if current && !with_errors.contains(path) {
                accepted.push(path.clone());
            }
            if let Some(f) = served {
                serve.push((path.clone(), f));
            }
            files.push((path.clone(), status));
        }
        for path in accepted {
            if let Some(slot) = self.slots.get_mut(&path) {
                slot.good = Some(slot.current.clone());
            }
        }
        // Slots are in path order: both maps are built from sorted lists in one pass.
        let serve: BTreeMap<String, Arc<ParsedFile>> = serve.into_iter().collect();
        let files: BTreeMap<String, FileStatus> = files.into_iter().collect();
        let as_judged = serve.len() == judged_files.len()
            && serve
                .values()
                .zip(&judged_files)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        let built = if as_judged {
            judge
        } else {
            let served: Vec<Arc<ParsedFile>> = serve.values().cloned().collect();
            compile(
                &served,
                &self.builtin_keys,
                &settled.platforms,
                &prev.tenants,
            )
        };
        let mut tenants = built.tenants;
        let slots = &self.slots;
        let current_pos = |path: &str, tenant: &str| {
            let current = &slots.get(path)?.current;
            current
                .tenants
                .iter()
                .find(|t| t.name == tenant)
                .map(|t| t.pos)
        };
        self.holds.apply(
            &built.failed_files,
            prev,
            &serve,
            &mut tenants,
            current_pos,
            &mut diagnostics,
        );
        let platform_changes = tenants_changed_by_platform(prev, &tenants, &serve);
        diagnostics.sort();
        diagnostics.dedup();
        Model::new(
            prev.generation + 1,
            built.platforms,
            tenants,
            diagnostics,
            files,
        )
        .with_sources(serve, self.builtin_keys.clone(), self.limits)
        .with_platform_changes(platform_changes)
    }
}

/// Parses a body; a body the source could not read is an error at the line it gave.
fn parse_body(path: &str, body: &Body) -> ParsedFile {
    match body {
        Body::Text(text) => parse_file(path, text),
        Body::Unreadable { line, message } => {
            let mut f = parse_file(path, "");
            f.diagnostics.push(Diagnostic::error(
                path,
                Pos {
                    line: *line,
                    col: 1,
                },
                message.clone(),
            ));
            f.rejected = true;
            f
        }
    }
}

/// Tells contents apart (not a security boundary: an equal hash only spares a parse).
fn body_hash(body: &Body) -> u64 {
    match body {
        Body::Text(text) => xxh3_64(text.as_bytes()),
        // By its reason, so a file that stays unreadable for another reason (a FIFO replaced
        // by an oversized file) is reported anew; the next good read has a text hash.
        Body::Unreadable { line, message } => {
            xxh3_64(format!("\0unreadable:{line}:{message}").as_bytes())
        }
    }
}

/// Builds a model from documents once, as `lint`, `show` and tests do.
pub fn load_documents(
    documents: impl IntoIterator<Item = (String, String)>,
    known_keys: impl IntoIterator<Item = String>,
) -> Arc<Model> {
    let mut set = DocumentSet::new().with_known_keys(known_keys);
    let upserts = documents
        .into_iter()
        .map(|(path, content)| Upsert::text(path, content))
        .collect();
    set.apply(Delta {
        upserts,
        removed: Vec::new(),
    });
    set.model()
}
