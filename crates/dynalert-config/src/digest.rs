//! Canonical digests of tenants and platforms: SHA-256 over what they configure, never over
//! positions, file names, comments or formatting. Computed once per parsed document, so the
//! configuration hash of a large tree costs nothing on reload.

use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};

use crate::compile::EffectivePlatform;
use crate::doc::TenantDoc;

/// Feeds `Hash` implementations into SHA-256.
struct Sha(Sha256);

impl Hasher for Sha {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("use the SHA-256 output, not a u64")
    }
}

fn digest(feed: impl FnOnce(&mut Sha)) -> [u8; 32] {
    let mut h = Sha(Sha256::new());
    feed(&mut h);
    h.0.finalize().into()
}

pub fn tenant_digest(d: &TenantDoc) -> [u8; 32] {
    digest(|h| {
        d.name.hash(h);
        let mut thresholds: Vec<_> = d
            .thresholds
            .iter()
            .map(|t| (t.key.raw(), &t.value))
            .collect();
        thresholds.sort_by(|a, b| a.0.cmp(b.0));
        thresholds.hash(h);
        d.profile.as_ref().map(|p| &p.0).hash(h);
        for (name, (toggle, _)) in &d.states {
            (name, toggle).hash(h);
        }
        d.silent.as_ref().map(|s| &s.0).hash(h);
        d.dedup.hash(h);
        d.metadata.hash(h);
        for r in &d.rules {
            (&r.alert, &r.expr, &r.for_, &r.labels, &r.annotations).hash(h);
        }
    })
}

pub fn platform_digest(p: &EffectivePlatform) -> [u8; 32] {
    digest(|h| {
        for (k, v) in &p.defaults {
            (k, &v.value).hash(h);
        }
        p.optional.hash(h);
        for (name, f) in &p.state_filters {
            (name, f.severity, f.default_enabled, &f.reasons).hash(h);
        }
        for (name, values) in &p.profiles {
            name.hash(h);
            for (k, v) in values {
                (k, &v.value).hash(h);
            }
        }
        for (name, a) in &p.custom_alerts {
            (name, &a.expr, &a.op, &a.for_, &a.description).hash(h);
        }
    })
}
