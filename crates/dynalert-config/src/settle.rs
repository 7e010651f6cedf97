//! Which version of each document is served when some have errors, so that no file pays for
//! another file's mistake:
//!
//! - platform files are judged against the *served* versions of the other platform files: a
//!   broken `_defaults.yaml` (its last good copy served) gives no other file a false error,
//!   and a valid edit elsewhere is served at once ([`settle_platforms`]);
//! - a valid platform change is served even when some tenant no longer passes its checks
//!   against it (its profile removed, a key it sets no longer declared): that tenant keeps the
//!   values it had, its last good document with the platform it was compiled against, and an
//!   error names the tenant's file and the platform files changed since ([`Holds`]);
//! - the tenants whose values a platform change altered are listed
//!   ([`tenants_changed_by_platform`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::compile::{
    EffectivePlatform, TenantEntry, ancestors, build_platforms, dir_of, platform_file_findings,
};
use crate::diag::Diagnostic;
use crate::doc::ParsedFile;
use crate::model::Model;

/// One platform file: its current version and its last good one.
pub(crate) struct PlatformSlot<'a> {
    pub current: &'a Arc<ParsedFile>,
    pub good: Option<&'a Arc<ParsedFile>>,
}

impl PlatformSlot<'_> {
    /// Content not known to be good: it must pass its checks to be served.
    fn is_new(&self) -> bool {
        self.good.is_none_or(|g| !Arc::ptr_eq(g, self.current))
    }
}

/// The platform files settled: the version of each that is served, the platforms they make,
/// and the findings of their current versions.
pub(crate) struct Settled {
    /// Per slot, in the order given: the version served (`None`: nothing).
    pub served: Vec<Option<Arc<ParsedFile>>>,
    pub platforms: BTreeMap<String, Arc<EffectivePlatform>>,
    /// The findings of each current version, judged against the others as served.
    pub diagnostics: Vec<Diagnostic>,
}

/// Decides which version of each platform file is served. A current version is served unless
/// it cannot be parsed, or it is new content with errors against the others as served (its
/// profiles, blocks and own tenants); then its last good version is. A current version that
/// was good and is unchanged stays served even if another file's change gives it errors: the
/// newcomer never pushes out what was there.
pub(crate) fn settle_platforms(
    slots: &[PlatformSlot<'_>],
    dirs: &[&str],
    builtin_keys: &BTreeSet<String>,
    previous: &BTreeMap<String, Arc<EffectivePlatform>>,
) -> Settled {
    let build = |served: &[Option<Arc<ParsedFile>>]| {
        let files = served.iter().flatten().map(|f| &**f);
        build_platforms(files, dirs.iter().copied(), builtin_keys, previous)
    };
    let serves_current = |served: &[Option<Arc<ParsedFile>>], i: usize| {
        served[i]
            .as_ref()
            .is_some_and(|f| Arc::ptr_eq(f, slots[i].current))
    };
    // New content served that has errors against the rest as served.
    let failing = |served: &[Option<Arc<ParsedFile>>],
                   platforms: &BTreeMap<String, Arc<EffectivePlatform>>|
     -> Vec<usize> {
        (0..slots.len())
            .filter(|&i| serves_current(served, i) && slots[i].is_new())
            .filter(|&i| {
                platform_file_findings(slots[i].current, platforms)
                    .iter()
                    .any(Diagnostic::is_error)
            })
            .collect()
    };
    let mut served: Vec<Option<Arc<ParsedFile>>> = slots
        .iter()
        .map(|s| match s.current.rejected {
            true => s.good.cloned(),
            false => Some(s.current.clone()),
        })
        .collect();
    let mut platforms = build(&served);
    loop {
        let fall_back = failing(&served, &platforms);
        if fall_back.is_empty() {
            break;
        }
        for i in fall_back {
            served[i] = slots[i].good.cloned();
        }
        platforms = build(&served);
    }
    // A file may have failed only because of another one that fell back later: try again.
    for i in 0..slots.len() {
        if slots[i].current.rejected || serves_current(&served, i) {
            continue;
        }
        let mut trial = served.clone();
        trial[i] = Some(slots[i].current.clone());
        let trial_platforms = build(&trial);
        if failing(&trial, &trial_platforms).is_empty() {
            (served, platforms) = (trial, trial_platforms);
        }
    }
    let mut diagnostics = Vec::new();
    for (i, slot) in slots.iter().enumerate() {
        if serves_current(&served, i) {
            diagnostics.extend(platform_file_findings(slot.current, &platforms));
        } else {
            let mut trial = served.clone();
            trial[i] = Some(slot.current.clone());
            diagnostics.extend(platform_file_findings(slot.current, &build(&trial)));
        }
    }
    Settled {
        served,
        platforms,
        diagnostics,
    }
}

/// The tenants of one file held on the entries served before, because the file's served
/// version no longer passes its checks against the platform.
struct Hold {
    entries: Vec<(String, TenantEntry)>,
    /// The served platform files over the file's directory when those entries were built.
    platform_files: BTreeMap<String, Arc<ParsedFile>>,
}

/// The files held, across reloads (a hold lasts until the file passes again or is removed).
#[derive(Default)]
pub(crate) struct Holds(BTreeMap<String, Hold>);

impl Holds {
    /// Replaces the entries of every file in `failed` (files whose served tenants fail their
    /// checks) by the entries that file served before, and reports each held tenant with an
    /// error naming the platform files changed since. `current_pos` gives where a tenant is in
    /// its file now (the held document may be an older version).
    pub fn apply(
        &mut self,
        failed: &BTreeSet<String>,
        previous: &Model,
        served: &BTreeMap<String, Arc<ParsedFile>>,
        tenants: &mut BTreeMap<String, TenantEntry>,
        current_pos: impl Fn(&str, &str) -> Option<crate::yaml::Pos>,
        diagnostics: &mut Vec<Diagnostic>,
    ) {
        self.0.retain(|path, _| failed.contains(path));
        if failed.is_empty() {
            return;
        }
        tenants.retain(|_, e| !failed.contains(&e.doc.file));
        for path in failed {
            let dir = dir_of(path);
            let hold = self.0.entry(path.clone()).or_insert_with(|| Hold {
                entries: previous
                    .tenants
                    .iter()
                    .filter(|(_, e)| e.doc.file == *path)
                    .map(|(n, e)| (n.clone(), e.clone()))
                    .collect(),
                platform_files: platform_files_over(&dir, &previous.sources),
            });
            let changed = changed_files(&hold.platform_files, &platform_files_over(&dir, served));
            let change = match changed.as_slice() {
                [] => "the platform change".to_string(),
                [one] => format!("the change to {one}"),
                many => format!("the changes to {}", many.join(", ")),
            };
            for (name, entry) in &hold.entries {
                tenants.insert(name.clone(), entry.clone());
                let pos = current_pos(path, name).unwrap_or(entry.doc.pos);
                diagnostics.push(
                    Diagnostic::error(
                        path,
                        pos,
                        format!(
                            "keeps the values it had before {change}: against the platform as \
                             it is now it has the errors reported for this file; fix them or \
                             the platform"
                        ),
                    )
                    .for_tenant(name),
                );
            }
        }
    }
}

/// The platform files among `sources` that apply to tenants of `dir`.
fn platform_files_over(
    dir: &str,
    sources: &BTreeMap<String, Arc<ParsedFile>>,
) -> BTreeMap<String, Arc<ParsedFile>> {
    let over = ancestors(dir);
    sources
        .iter()
        .filter(|(_, f)| f.is_platform && over.contains(&f.dir))
        .map(|(p, f)| (p.clone(), f.clone()))
        .collect()
}

/// Paths added, removed or with other content between two sets of files.
fn changed_files(
    before: &BTreeMap<String, Arc<ParsedFile>>,
    after: &BTreeMap<String, Arc<ParsedFile>>,
) -> Vec<String> {
    let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    paths
        .into_iter()
        .filter(|p| match (before.get(*p), after.get(*p)) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
            _ => true,
        })
        .cloned()
        .collect()
}

/// Per platform file changed between two models, the tenants whose values the change altered
/// while their own documents stayed the same (tenants held on their previous values are not
/// among them: nothing changed for them).
pub(crate) fn tenants_changed_by_platform(
    previous: &Model,
    tenants: &BTreeMap<String, TenantEntry>,
    sources: &BTreeMap<String, Arc<ParsedFile>>,
) -> BTreeMap<String, Vec<String>> {
    let platform_only = |m: &BTreeMap<String, Arc<ParsedFile>>| {
        m.iter()
            .filter(|(_, f)| f.is_platform)
            .map(|(p, f)| (p.clone(), f.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    let changed = changed_files(&platform_only(&previous.sources), &platform_only(sources));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if changed.is_empty() {
        return out;
    }
    for (name, entry) in tenants {
        let Some(before) = previous.tenants.get(name) else {
            continue;
        };
        if Arc::ptr_eq(&before.platform, &entry.platform) || before.doc.digest != entry.doc.digest {
            continue;
        }
        // Equal document digests: the same profile and keys before and now. What the tenant
        // sets itself and the profiles it does not use cannot change its values.
        let doc = &entry.doc;
        let profile = doc.profile.as_ref().map(|(p, _)| p.as_str());
        let own: BTreeSet<&str> = doc.thresholds.iter().map(|t| t.key.raw()).collect();
        let relevant = |p: &EffectivePlatform| p.digest_for(profile, |k| own.contains(k));
        if relevant(&before.platform) == relevant(&entry.platform) {
            continue;
        }
        let over = ancestors(&dir_of(&entry.doc.file));
        for file in changed.iter().filter(|f| over.contains(&dir_of(f))) {
            out.entry(file.clone()).or_default().push(name.clone());
        }
    }
    out
}
