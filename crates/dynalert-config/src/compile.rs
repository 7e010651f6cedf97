//! Cross-file stage: merges platform files down the directory hierarchy and checks every
//! tenant against the platform that applies to it.
//!
//! `compile` is lenient: it reports every problem and leaves out only the offending item, so
//! the caller can decide (per file) whether to serve it or fall back to its last good version.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::diag::Diagnostic;
use crate::digest::{Canon, Digest};
use crate::doc::*;
use crate::names::suggestion;
use crate::series::{Series, collisions};
use crate::text_error::KeyError;
use crate::value::{Setting, Severity};

use rayon::prelude::*;

/// The platform configuration in force for tenants of one directory.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectivePlatform {
    pub defaults: BTreeMap<String, PlatformValue>,
    pub optional: BTreeSet<String>,
    pub state_filters: BTreeMap<String, StateFilter>,
    pub profiles: BTreeMap<String, BTreeMap<String, PlatformValue>>,
    pub custom_alerts: BTreeMap<String, CustomAlert>,
    /// Keys declared by defaults, optional and custom alerts, sorted (derived by `seal`).
    pub declared: Vec<String>,
    /// Digest of the values above, without positions: equal digests, equal platforms.
    pub digest: Digest,
}

impl EffectivePlatform {
    /// A key declared by a default, as optional, or by a custom alert.
    pub fn declares(&self, key: &str) -> bool {
        self.declared
            .binary_search_by(|k| k.as_str().cmp(key))
            .is_ok()
    }

    /// For `<base>_critical` where `<base>` is declared: the base key of the critical tier.
    pub fn tier_base<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_suffix("_critical").filter(|b| self.declares(b))
    }

    /// Whether a tenant may set this key (declared, or the critical tier of a declared key).
    pub fn is_known(&self, key: &str) -> bool {
        self.declares(key) || self.tier_base(key).is_some()
    }

    /// Every declared key, sorted.
    pub fn declared_keys(&self) -> &[String] {
        &self.declared
    }

    /// A state filter by name; `maintenance` exists even when no platform file declares it.
    pub fn filter(&self, name: &str) -> Option<&StateFilter> {
        static MAINTENANCE: StateFilter = StateFilter::BUILTIN_MAINTENANCE;
        self.state_filters
            .get(name)
            .or_else(|| (name == "maintenance").then_some(&MAINTENANCE))
    }

    /// The names of every state filter (declared ones and `maintenance`), sorted.
    pub fn filter_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.state_filters.keys().map(String::as_str).collect();
        if !self.state_filters.contains_key("maintenance") {
            let at = names.partition_point(|n| *n < "maintenance");
            names.insert(at, "maintenance");
        }
        names
    }

    /// Computes what is derived from the merged blocks: the declared key list and the digest.
    fn seal(mut self) -> Self {
        let mut declared: Vec<String> = self.defaults.keys().cloned().collect();
        declared.extend(self.optional.iter().cloned());
        declared.extend(self.custom_alerts.values().map(CustomAlert::key));
        declared.sort();
        declared.dedup();
        self.declared = declared;
        self.digest = self.compute_digest();
        self
    }

    /// The digest of the merged blocks, in canonical form (see [`crate::digest`]).
    fn compute_digest(&self) -> Digest {
        self.digest_of(|_| true, |_| true)
    }

    /// The digest of what a tenant with this profile (or none) that sets the keys `own`
    /// itself resolves against: without the other profiles, and without the values of those
    /// keys. Equal digests, equal values for that tenant.
    pub(crate) fn digest_for(&self, profile: Option<&str>, own: impl Fn(&str) -> bool) -> Digest {
        self.digest_of(|name| Some(name) == profile, |key| !own(key))
    }

    fn digest_of(&self, profile: impl Fn(&str) -> bool, key: impl Fn(&str) -> bool) -> Digest {
        fn kept<'m>(
            values: &'m BTreeMap<String, PlatformValue>,
            key: &impl Fn(&str) -> bool,
        ) -> Vec<(&'m String, &'m PlatformValue)> {
            values.iter().filter(|(k, _)| key(k)).collect()
        }
        let values = |values| kept(values, &key);
        Canon::digest(|c| {
            c.seq(values(&self.defaults).into_iter(), |c, (k, v)| {
                c.str(k).threshold(&v.value);
            });
            c.strs(self.optional.iter());
            c.seq(self.state_filters.iter(), |c, (name, f)| {
                c.str(name)
                    .severity(f.severity)
                    .bool(f.default_enabled)
                    .strs(f.reasons.iter());
            });
            let profiles: Vec<_> = self.profiles.iter().filter(|(p, _)| profile(p)).collect();
            c.seq(profiles.into_iter(), |c, (name, profile)| {
                c.str(name).seq(values(profile).into_iter(), |c, (k, v)| {
                    c.str(k).threshold(&v.value);
                });
            });
            c.seq(self.custom_alerts.iter(), |c, (name, a)| {
                c.str(name).str(&a.expr).str(a.op.as_str());
                c.opt(a.for_.as_ref(), |c, f| {
                    c.str(f);
                });
                c.opt(a.description.as_ref(), |c, d| {
                    c.str(d);
                });
            });
        })
    }

    /// Overlays one platform file: deeper or later files override per key.
    fn overlay(&mut self, doc: &PlatformDoc) {
        for (k, v) in &doc.defaults {
            self.defaults.insert(k.clone(), v.clone());
        }
        self.optional
            .extend(doc.optional.iter().map(|(k, _)| k.clone()));
        for (name, filter, _) in &doc.state_filters {
            self.state_filters.insert(name.clone(), filter.clone());
        }
        for (name, values, _) in &doc.profiles {
            let profile = self.profiles.entry(name.clone()).or_default();
            for (k, v) in values {
                profile.insert(k.clone(), v.clone());
            }
        }
        for (alert, _) in &doc.custom_alerts {
            self.custom_alerts.insert(alert.name.clone(), alert.clone());
        }
    }
}

/// A served tenant: its document and the platform that applies to it.
#[derive(Clone, Debug)]
pub struct TenantEntry {
    pub doc: Arc<TenantDoc>,
    pub platform: Arc<EffectivePlatform>,
}

/// The result of the cross-file stage.
pub struct Compiled {
    pub platforms: BTreeMap<String, Arc<EffectivePlatform>>,
    pub tenants: BTreeMap<String, TenantEntry>,
    pub diagnostics: Vec<Diagnostic>,
    /// Files that the diagnostics above found errors in.
    pub files_with_errors: BTreeSet<String>,
    /// Files with a tenant that is served from this compile (a single definition) and fails
    /// its checks against its platform: what it serves is a copy without the items in error.
    pub(crate) failed_files: BTreeSet<String>,
}

/// Builds the served model from the files to serve; `builtin_keys` are known to every
/// tenant without a platform file declaring them. `previous` lets unchanged platforms keep
/// their identity (so the exposition can reuse rendered text) and decides which copy of a
/// duplicated tenant stays served.
pub fn compile(
    files: &[Arc<ParsedFile>],
    builtin_keys: &BTreeSet<String>,
    previous_platforms: &BTreeMap<String, Arc<EffectivePlatform>>,
    previous_tenants: &BTreeMap<String, TenantEntry>,
) -> Compiled {
    let mut diags = Vec::new();
    let dirs = files.iter().map(|f| f.dir.as_str());
    let platform_files = files.iter().filter(|f| f.is_platform).map(|f| &**f);
    let platforms = build_platforms(platform_files, dirs, builtin_keys, previous_platforms);
    for f in files.iter().filter(|f| f.is_platform) {
        check_platform_file(f, &platforms[&f.dir], &mut diags);
    }
    // Every tenant with the directory of its file, grouped by name.
    let mut all: Vec<(&Arc<TenantDoc>, &str)> = files
        .iter()
        .flat_map(|f| f.tenants.iter().map(move |t| (t, f.dir.as_str())))
        .collect();
    all.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let mut tenants = Vec::with_capacity(all.len());
    // Both lists are sorted by name: the previous entries are walked alongside, not looked up.
    let mut previous = previous_tenants.iter().peekable();
    // Tenants of one directory come together: its platform is looked up once per run.
    let mut last_platform: Option<(&str, Arc<EffectivePlatform>)> = None;
    for copies in all.chunk_by(|a, b| a.0.name == b.0.name) {
        let name = copies[0].0.name.as_str();
        while previous.next_if(|(p, _)| p.as_str() < name).is_some() {}
        let prev = previous
            .next_if(|(p, _)| p.as_str() == name)
            .map(|(_, e)| e);
        let (doc, platform) = if copies.len() > 1 {
            report_duplicate(
                &copies.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
                &mut diags,
            );
            // Neither copy is served, but a typo in either is still a finding.
            for (copy, dir) in copies {
                check_tenant((*copy).clone(), &platform_for(&platforms, dir), &mut diags);
            }
            // Neither copy replaces the one served before, which follows the platform as long
            // as it passes its checks against it, and keeps its values otherwise.
            let Some(prev) = prev else { continue };
            let platform = platform_for(&platforms, &dir_of(&prev.doc.file));
            if passes(&prev.doc, &platform) {
                (prev.doc.clone(), platform)
            } else {
                (prev.doc.clone(), prev.platform.clone())
            }
        } else {
            let dir = copies[0].1;
            let platform = match &last_platform {
                Some((last, platform)) if *last == dir => platform.clone(),
                _ => {
                    let platform = platform_for(&platforms, dir);
                    last_platform = Some((dir, platform.clone()));
                    platform
                }
            };
            (copies[0].0.clone(), platform)
        };
        // Same document against the same platform as last time, and it was clean then
        // (a document with errors is served as a cleaned copy, so it is never the same).
        let unchanged =
            prev.is_some_and(|p| Arc::ptr_eq(&p.doc, &doc) && Arc::ptr_eq(&p.platform, &platform));
        tenants.push((name, doc, platform, unchanged));
    }
    // The checks are independent per tenant: run them on every core.
    let checked: Vec<(String, TenantEntry, Vec<Diagnostic>)> = tenants
        .into_par_iter()
        .map(|(name, doc, platform, unchanged)| {
            let mut found = Vec::new();
            let doc = if unchanged {
                doc
            } else {
                check_tenant(doc, &platform, &mut found)
            };
            (name.to_string(), TenantEntry { doc, platform }, found)
        })
        .collect();
    let mut tenants = Vec::with_capacity(checked.len());
    let mut failed_files = BTreeSet::new();
    for (name, entry, found) in checked {
        if found.iter().any(Diagnostic::is_error) {
            failed_files.insert(entry.doc.file.clone());
        }
        diags.extend(found);
        tenants.push((name, entry));
    }
    // Sorted input: the map is built in one pass.
    let tenants: BTreeMap<String, TenantEntry> = tenants.into_iter().collect();
    diags.sort();
    diags.dedup();
    let files_with_errors = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.clone())
        .collect();
    Compiled {
        platforms,
        tenants,
        diagnostics: diags,
        files_with_errors,
        failed_files,
    }
}

pub fn dir_of(path: &str) -> String {
    path.rsplit_once('/').map_or("", |(d, _)| d).to_string()
}

/// The effective platform of the root and of every directory in `dirs`, from the platform
/// files given (in path order, so that one directory's files merge in filename order).
pub(crate) fn build_platforms<'f>(
    platform_files: impl Iterator<Item = &'f ParsedFile>,
    dirs: impl Iterator<Item = &'f str>,
    builtin_keys: &BTreeSet<String>,
    previous: &BTreeMap<String, Arc<EffectivePlatform>>,
) -> BTreeMap<String, Arc<EffectivePlatform>> {
    let mut own: BTreeMap<&str, Vec<&ParsedFile>> = BTreeMap::new();
    for f in platform_files {
        own.entry(f.dir.as_str()).or_default().push(f);
    }
    let mut all_dirs: BTreeSet<&str> = BTreeSet::from([""]);
    let mut last_dir = None;
    for dir in dirs {
        // Files come in path order, so a directory's files are together.
        if last_dir != Some(dir) {
            all_dirs.insert(dir);
            last_dir = Some(dir);
        }
    }
    let mut out = BTreeMap::new();
    for dir in all_dirs {
        // Keys declared outside the tree (the rule packs') are known everywhere, as optional.
        let mut eff = EffectivePlatform {
            optional: builtin_keys.clone(),
            ..Default::default()
        };
        for ancestor in ancestors(dir) {
            for f in own.get(ancestor.as_str()).into_iter().flatten() {
                eff.overlay(&f.platform);
            }
        }
        let eff = eff.seal();
        let eff = match previous.get(dir) {
            // Full equality, not just the digest: origins (file:line) must stay current.
            Some(prev) if **prev == eff => prev.clone(),
            _ => Arc::new(eff),
        };
        out.insert(dir.to_string(), eff);
    }
    out
}

/// `a/b` → `""`, `a`, `a/b` (root first, so deeper files overlay shallower ones).
pub(crate) fn ancestors(dir: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut acc = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(part);
        out.push(acc.clone());
    }
    out
}

pub(crate) fn platform_for(
    platforms: &BTreeMap<String, Arc<EffectivePlatform>>,
    dir: &str,
) -> Arc<EffectivePlatform> {
    platforms.get(dir).cloned().unwrap_or_default()
}

fn check_platform_file(f: &ParsedFile, eff: &EffectivePlatform, diags: &mut Vec<Diagnostic>) {
    for (profile, values, _) in &f.platform.profiles {
        for (key, v) in values {
            if !eff.is_known(key) {
                diags.push(
                    Diagnostic::error(
                        &f.path,
                        v.pos,
                        format!(
                            "profile {profile:?} sets unknown key {key:?}{}; declare it in defaults or optional",
                            suggestion(key, eff.declared_keys().iter().map(String::as_str))
                        ),
                    )
                    .for_key(key),
                );
            }
        }
        same_series_in_block(f, &format!("profile {profile:?}"), values, eff, diags);
    }
    same_series_in_block(f, "defaults", &f.platform.defaults, eff, diags);
}

/// Two keys of one platform block that serve the same series (`x: "8:critical"` and
/// `x_critical: 7`): the later one is an error naming the earlier.
fn same_series_in_block(
    f: &ParsedFile,
    block: &str,
    values: &PlatformValues,
    eff: &EffectivePlatform,
    diags: &mut Vec<Diagnostic>,
) {
    let claims = values
        .iter()
        .map(|(key, v)| Series::claimed(key, eff.tier_base(key), &[], &v.value));
    for (later, earlier, series) in collisions(claims) {
        let ((key, v), (other, first)) = (&values[later], &values[earlier]);
        let e = same_series(other, first.pos, &series);
        diags.push(
            Diagnostic::error(&f.path, v.pos, format!("{block}: key {key:?} {e}")).for_key(key),
        );
    }
}

fn same_series(other: &str, pos: crate::yaml::Pos, series: &Series<'_>) -> KeyError {
    KeyError::SameSeries {
        other: other.to_string(),
        line: pos.line,
        col: pos.col,
        series: series.to_string(),
    }
}

/// Everything wrong in one platform file against the platforms given: its profiles and
/// blocks, and its own tenants against the platform of its directory (duplicates aside).
pub(crate) fn platform_file_findings(
    f: &ParsedFile,
    platforms: &BTreeMap<String, Arc<EffectivePlatform>>,
) -> Vec<Diagnostic> {
    let platform = platform_for(platforms, &f.dir);
    let mut found = Vec::new();
    check_platform_file(f, &platform, &mut found);
    for t in &f.tenants {
        check_tenant(t.clone(), &platform, &mut found);
    }
    found
}

/// Whether a tenant passes every check against a platform.
pub(crate) fn passes(doc: &Arc<TenantDoc>, platform: &EffectivePlatform) -> bool {
    let mut found = Vec::new();
    check_tenant(doc.clone(), platform, &mut found);
    !found.iter().any(Diagnostic::is_error)
}

/// What [`compile`] would report for one tenant file, against the platforms and tenants of a
/// compiled model that the file does not change: its tenants checked against their platform,
/// and names already defined in another file. Cheap, unlike compiling every file (a write
/// through the API). `None` when no compiled platform covers the file's directory (the model
/// has no file at all yet): then only a full compile knows.
pub(crate) fn check_tenant_file(
    file: &ParsedFile,
    platforms: &BTreeMap<String, Arc<EffectivePlatform>>,
    tenants: &BTreeMap<String, TenantEntry>,
) -> Option<Vec<Diagnostic>> {
    let platform = ancestors(&file.dir)
        .iter()
        .rev()
        .find_map(|dir| platforms.get(dir))?;
    let mut by_name: BTreeMap<&str, Vec<&Arc<TenantDoc>>> = BTreeMap::new();
    for t in &file.tenants {
        by_name.entry(t.name.as_str()).or_default().push(t);
    }
    let mut diags = Vec::new();
    for (name, mut copies) in by_name {
        if let Some(other) = tenants.get(name).filter(|e| e.doc.file != file.path) {
            copies.push(&other.doc);
        }
        if copies.len() > 1 {
            report_duplicate(&copies, &mut diags);
        }
        // Only this file's copies: the other file's findings are reported against it.
        for copy in copies.iter().filter(|c| c.file == file.path) {
            check_tenant((*copy).clone(), platform, &mut diags);
        }
    }
    Some(diags)
}

fn report_duplicate(copies: &[&Arc<TenantDoc>], diags: &mut Vec<Diagnostic>) {
    let files: Vec<&str> = copies.iter().map(|t| t.file.as_str()).collect();
    for t in copies {
        let others: Vec<&str> = files.iter().copied().filter(|f| *f != t.file).collect();
        let elsewhere = if others.is_empty() {
            "again in this file".to_string()
        } else {
            format!("also in {}", others.join(", "))
        };
        diags.push(
            Diagnostic::error(
                &t.file,
                t.pos,
                format!("defined {elsewhere}; neither copy replaces the one served before"),
            )
            .for_tenant(&t.name),
        );
    }
}

/// Checks one tenant against its platform; returns the document without the items in error.
fn check_tenant(
    doc: Arc<TenantDoc>,
    platform: &EffectivePlatform,
    diags: &mut Vec<Diagnostic>,
) -> Arc<TenantDoc> {
    let before = diags.len();
    let mut bad_keys = BTreeSet::new();
    for t in &doc.thresholds {
        if let Err(message) = check_key(&t.key, &t.value.base, platform) {
            diags.push(
                Diagnostic::error(&doc.file, t.pos, message.to_string())
                    .for_tenant(&doc.name)
                    .for_key(t.key.raw()),
            );
            bad_keys.insert(t.key.raw().to_string());
        }
    }
    same_series_in_tenant(&doc, platform, &mut bad_keys, diags);
    let bad_profile = doc
        .profile
        .as_ref()
        .filter(|(p, _)| !platform.profiles.contains_key(p));
    if let Some((p, pos)) = bad_profile {
        let known = platform.profiles.keys().map(String::as_str);
        diags.push(
            Diagnostic::error(
                &doc.file,
                *pos,
                format!("unknown profile {p:?}{}", suggestion(p, known)),
            )
            .for_tenant(&doc.name)
            .for_key("_profile"),
        );
    }
    let filters = platform.filter_names();
    let bad_filters: Vec<String> = doc
        .states
        .iter()
        .filter(|(f, _)| !filters.contains(&f.as_str()))
        .map(|(f, (_, pos))| {
            let key = format!("_state_{f}");
            diags.push(
                Diagnostic::error(
                    &doc.file,
                    *pos,
                    format!(
                        "unknown state filter {f:?}{}",
                        suggestion(f, filters.iter().copied())
                    ),
                )
                .for_tenant(&doc.name)
                .for_key(&key),
            );
            f.clone()
        })
        .collect();
    if diags.len() == before {
        return doc;
    }
    let mut cleaned = (*doc).clone();
    cleaned
        .thresholds
        .retain(|t| !bad_keys.contains(t.key.raw()));
    if bad_profile.is_some() {
        cleaned.profile = None;
    }
    for f in bad_filters {
        cleaned.states.remove(&f);
    }
    cleaned.digest = cleaned.compute_digest();
    Arc::new(cleaned)
}

/// Two keys of one tenant that serve the same series (`x{q='a'}` and `x{ q = "a" }`): the
/// later one is an error naming the earlier. Keys in error already are left out.
fn same_series_in_tenant(
    doc: &TenantDoc,
    platform: &EffectivePlatform,
    bad_keys: &mut BTreeSet<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let keys: Vec<&TenantThreshold> = doc
        .thresholds
        .iter()
        .filter(|t| !bad_keys.contains(t.key.raw()))
        .collect();
    let claims = keys.iter().map(|t| {
        let name = t.key.name();
        Series::claimed(name, platform.tier_base(name), t.key.dims(), &t.value)
    });
    for (later, earlier, series) in collisions(claims) {
        let (t, first) = (keys[later], keys[earlier]);
        let e = same_series(first.key.raw(), first.pos, &series);
        diags.push(
            Diagnostic::error(&doc.file, t.pos, e.to_string())
                .for_tenant(&doc.name)
                .for_key(t.key.raw()),
        );
        bad_keys.insert(t.key.raw().to_string());
    }
}

fn check_key(key: &KeyRef, base: &Setting, platform: &EffectivePlatform) -> Result<(), KeyError> {
    let suggest = || {
        suggestion(
            key.name(),
            platform.declared_keys().iter().map(String::as_str),
        )
    };
    if !platform.is_known(key.name()) {
        let (name, suggestion) = (key.name().to_string(), suggest());
        return Err(if key.dims().is_empty() {
            KeyError::Unknown { name, suggestion }
        } else {
            KeyError::UnknownBase { name, suggestion }
        });
    }
    let tier = platform.tier_base(key.name()).is_some() && !platform.declares(key.name());
    if let Setting::Value {
        severity: Some(sev),
        ..
    } = base
        && tier
        && *sev != Severity::Critical
    {
        return Err(KeyError::TierSeverity {
            name: key.name().to_string(),
            severity: *sev,
        });
    }
    Ok(())
}
