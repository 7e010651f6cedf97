//! The served model: what every surface (exporter, API, linter, `show`) reads.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::compile::{EffectivePlatform, TenantEntry};
use crate::diag::Diagnostic;
use crate::loader::FileStatus;
use crate::resolve::{ResolvedTenant, resolve_tenant};

pub struct Model {
    /// Increases with every reload that changed something.
    pub generation: u64,
    pub platforms: BTreeMap<String, Arc<EffectivePlatform>>,
    pub tenants: BTreeMap<String, TenantEntry>,
    /// Every finding of the current files (not of last-good copies still served).
    pub diagnostics: Vec<Diagnostic>,
    pub files: BTreeMap<String, FileStatus>,
    /// SHA-256 of the served configuration in a canonical form: formatting, comments and
    /// file layout do not change it, values do.
    pub hash: String,
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
        let hash = canonical_hash(&tenants);
        Model {
            generation,
            platforms,
            tenants,
            diagnostics,
            files,
            hash,
        }
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    /// Resolves every tenant at `at`, sorted by name.
    pub fn resolve_at(&self, at: DateTime<Utc>) -> Vec<ResolvedTenant> {
        self.tenants
            .values()
            .map(|e| resolve_tenant(e, at))
            .collect()
    }

    pub fn resolve_tenant_at(&self, tenant: &str, at: DateTime<Utc>) -> Option<ResolvedTenant> {
        self.tenants.get(tenant).map(|e| resolve_tenant(e, at))
    }
}

/// Hashes what each tenant is configured with, including the platform layers that apply to
/// it, without positions or file names.
fn canonical_hash(tenants: &BTreeMap<String, TenantEntry>) -> String {
    let mut hasher = Sha256::new();
    let mut platform_ids: BTreeMap<*const EffectivePlatform, usize> = BTreeMap::new();
    let mut buf = String::new();
    for (name, entry) in tenants {
        let next = platform_ids.len();
        let id = *platform_ids
            .entry(Arc::as_ptr(&entry.platform))
            .or_insert_with(|| {
                buf.clear();
                write_platform(&mut buf, &entry.platform);
                hasher.update(format!("platform {next}\n").as_bytes());
                hasher.update(buf.as_bytes());
                next
            });
        buf.clear();
        let d = &entry.doc;
        let _ = writeln!(buf, "tenant {name} platform {id}");
        let mut thresholds: Vec<_> = d
            .thresholds
            .iter()
            .map(|t| (&t.key.raw, &t.value))
            .collect();
        thresholds.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in thresholds {
            let _ = writeln!(buf, " {k}={v:?}");
        }
        let _ = writeln!(
            buf,
            " profile={:?} states={:?} silent={:?} dedup={:?} metadata={:?} rules={:?}",
            d.profile.as_ref().map(|p| &p.0),
            d.states.iter().map(|(k, v)| (k, &v.0)).collect::<Vec<_>>(),
            d.silent.as_ref().map(|s| &s.0),
            d.dedup,
            d.metadata,
            d.rules
                .iter()
                .map(|r| (&r.alert, &r.expr, &r.for_, &r.labels, &r.annotations))
                .collect::<Vec<_>>(),
        );
        hasher.update(buf.as_bytes());
    }
    hex::encode(hasher.finalize())
}

fn write_platform(buf: &mut String, p: &EffectivePlatform) {
    for (k, v) in &p.defaults {
        let _ = writeln!(buf, " default {k}={:?}", v.value);
    }
    let _ = writeln!(buf, " optional {:?}", p.optional);
    let _ = writeln!(buf, " filters {:?}", p.state_filters);
    for (name, values) in &p.profiles {
        for (k, v) in values {
            let _ = writeln!(buf, " profile {name} {k}={:?}", v.value);
        }
    }
    let _ = writeln!(buf, " custom {:?}", p.custom_alerts);
}
