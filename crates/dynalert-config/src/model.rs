//! The served model: what every surface (exporter, API, linter, `show`) reads.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::compile::{EffectivePlatform, TenantEntry};
use crate::diag::Diagnostic;
use crate::doc::ParsedFile;
use crate::limits::Limits;
use crate::resolve::{ResolvedTenant, resolve_tenant};

/// How a file takes part in the served model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    /// Its current content is served.
    Ok,
    /// It has errors; its last good content is served instead.
    ServingLastGood,
    /// It has errors and has never been good: nothing from it is served.
    NotServed,
}

pub struct Model {
    /// Increases with every reload that changed something.
    pub generation: u64,
    pub platforms: BTreeMap<String, Arc<EffectivePlatform>>,
    pub tenants: BTreeMap<String, TenantEntry>,
    /// Every finding of the current files (not of last-good copies still served).
    pub diagnostics: Vec<Diagnostic>,
    pub files: BTreeMap<String, FileStatus>,
    /// See [`Model::hash`]; computed when first asked for (a burst of API writes builds
    /// many models that nobody asks for it).
    hash: OnceLock<String>,
    /// The parsed files served (last good copies where the current one has errors), by path:
    /// what [`crate::validate::check_change`] compiles a proposed change against.
    pub sources: BTreeMap<String, Arc<ParsedFile>>,
    /// Keys known without a platform file declaring them (the rule packs' keys).
    pub builtin_keys: Arc<BTreeSet<String>>,
    /// The bounds the documents were held to, and a proposed write is.
    pub limits: Limits,
    /// The platform files this model serves in another version than the model before it,
    /// each with the tenants (sorted) whose values that change altered while their own
    /// documents stayed the same. Empty for a first load: there is nothing to compare with.
    pub platform_changes: BTreeMap<String, Vec<String>>,
}

impl Model {
    pub fn empty() -> Self {
        Model::new(
            0,
            BTreeMap::new(),
            BTreeMap::new(),
            Vec::new(),
            BTreeMap::new(),
        )
    }

    pub fn new(
        generation: u64,
        platforms: BTreeMap<String, Arc<EffectivePlatform>>,
        tenants: BTreeMap<String, TenantEntry>,
        diagnostics: Vec<Diagnostic>,
        files: BTreeMap<String, FileStatus>,
    ) -> Self {
        Model {
            generation,
            platforms,
            tenants,
            diagnostics,
            files,
            hash: OnceLock::new(),
            sources: BTreeMap::new(),
            builtin_keys: Arc::default(),
            limits: Limits::DEFAULT,
            platform_changes: BTreeMap::new(),
        }
    }

    /// Attaches the parsed files the model was built from, the built-in keys it knew and the
    /// limits it held them to.
    pub fn with_sources(
        mut self,
        sources: BTreeMap<String, Arc<ParsedFile>>,
        builtin_keys: Arc<BTreeSet<String>>,
        limits: Limits,
    ) -> Self {
        self.sources = sources;
        self.builtin_keys = builtin_keys;
        self.limits = limits;
        self
    }

    /// Attaches what the platform changes of this reload changed (see
    /// [`Model::platform_changes`]).
    pub fn with_platform_changes(mut self, changes: BTreeMap<String, Vec<String>>) -> Self {
        self.platform_changes = changes;
        self
    }

    /// SHA-256 of the served configuration in a canonical form: formatting, comments and
    /// file layout do not change it, values do.
    pub fn hash(&self) -> &str {
        self.hash.get_or_init(|| canonical_hash(&self.tenants))
    }

    /// One line per entry of [`Model::platform_changes`], for `/ready` and the reload log:
    /// `_defaults.yaml changed the thresholds of 2 tenant(s): db-a, db-b` (at most 20 names).
    pub fn platform_change_summaries(&self) -> impl Iterator<Item = String> + '_ {
        const NAMES: usize = 20;
        self.platform_changes.iter().map(|(file, tenants)| {
            let mut names = tenants[..tenants.len().min(NAMES)].join(", ");
            if tenants.len() > NAMES {
                names.push_str(&format!(" and {} more", tenants.len() - NAMES));
            }
            format!(
                "{file} changed the thresholds of {} tenant(s): {names}",
                tenants.len()
            )
        })
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Resolves every tenant at `at`, sorted by name.
    pub fn resolve_at(&self, at: DateTime<Utc>) -> Vec<ResolvedTenant<'_>> {
        self.tenants
            .values()
            .map(|e| resolve_tenant(e, at))
            .collect()
    }

    pub fn resolve_tenant_at(&self, tenant: &str, at: DateTime<Utc>) -> Option<ResolvedTenant<'_>> {
        self.tenants.get(tenant).map(|e| resolve_tenant(e, at))
    }
}

/// Combines the per-tenant and per-platform digests computed when they were parsed: SHA-256
/// over, per tenant in name order, the name's length (u64, little-endian), the name, and the
/// two 16-byte canonical digests (see [`crate::digest`]).
fn canonical_hash(tenants: &BTreeMap<String, TenantEntry>) -> String {
    let mut hasher = Sha256::new();
    for (name, entry) in tenants {
        hasher.update((name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(entry.doc.digest);
        hasher.update(entry.platform.digest);
    }
    hex::encode(hasher.finalize())
}
