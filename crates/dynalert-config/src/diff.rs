//! What one model change changed, for the outputs to act on: the exposition re-renders the
//! tenants named here, and the rules and notification planes will regenerate what depends on
//! them. Changes are told by content (the canonical digests), not by pointer identity, so an
//! output needs no knowledge of how the model shares its parts.

use std::collections::{BTreeMap, BTreeSet};

use crate::digest::Digest;
use crate::model::Model;

/// Names added, changed and removed between two versions of a map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Difference {
    pub added: BTreeSet<String>,
    pub changed: BTreeSet<String>,
    pub removed: BTreeSet<String>,
}

impl Difference {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Every name that is new, different or gone.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.added.iter().chain(&self.changed).chain(&self.removed)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.added.contains(name) || self.changed.contains(name) || self.removed.contains(name)
    }

    /// Compares two sorted maps by a content digest per entry.
    fn between<V, D: PartialEq>(
        old: &BTreeMap<String, V>,
        new: &BTreeMap<String, V>,
        digest: impl Fn(&V) -> D,
    ) -> Self {
        let mut diff = Difference::default();
        for (name, value) in new {
            match old.get(name) {
                None => {
                    diff.added.insert(name.clone());
                }
                Some(before) if digest(before) != digest(value) => {
                    diff.changed.insert(name.clone());
                }
                Some(_) => {}
            }
        }
        diff.removed = old
            .keys()
            .filter(|name| !new.contains_key(*name))
            .cloned()
            .collect();
        diff
    }
}

/// What changed since the outputs last acted: tenants (a tenant changes when its document or
/// the platform in force for it does), platforms (by directory), and tenants whose values
/// changed by the clock alone (`due`, from a [`crate::Timeline`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDiff {
    pub tenants: Difference,
    pub platforms: Difference,
    /// Tenants whose documents did not change but whose resolved values did, because a
    /// schedule window opened or closed or something expired.
    pub due: BTreeSet<String>,
}

impl ModelDiff {
    pub fn between(old: &Model, new: &Model) -> Self {
        let tenant =
            |e: &crate::TenantEntry| -> (Digest, Digest) { (e.doc.digest, e.platform.digest) };
        ModelDiff {
            tenants: Difference::between(&old.tenants, &new.tenants, tenant),
            platforms: Difference::between(&old.platforms, &new.platforms, |p| p.digest),
            due: BTreeSet::new(),
        }
    }

    /// The diff from nothing: everything in `model` is added (start-up takes the same path as
    /// a reload).
    pub fn initial(model: &Model) -> Self {
        Self::between(&Model::empty(), model)
    }

    /// Only the clock moved: these tenants' values changed at `now`.
    pub fn due(due: BTreeSet<String>) -> Self {
        ModelDiff {
            due,
            ..ModelDiff::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tenants.is_empty() && self.platforms.is_empty() && self.due.is_empty()
    }

    /// Whether tenant `name`'s resolved values may differ from what outputs last saw.
    pub fn touches(&self, name: &str) -> bool {
        self.tenants.contains(name) || self.due.contains(name)
    }
}
