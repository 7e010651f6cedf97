//! Canonical digests of tenants and platforms: a 128-bit XXH3 over what they configure,
//! never over positions, file names, comments or formatting. Computed once per parsed
//! document, so the configuration hash of a large tree costs nothing on reload. (XXH3 rather
//! than SHA-256 here: the digest guards against accidental change, not against an attacker,
//! and SHA-256 over 5,000 tenants cost a seventh of a cold load.)

use std::hash::Hash;

use xxhash_rust::xxh3::Xxh3;

use crate::compile::EffectivePlatform;
use crate::doc::TenantDoc;

/// Digests are 16 bytes: XXH3-128.
pub type Digest = [u8; 16];

fn digest(feed: impl FnOnce(&mut Xxh3)) -> Digest {
    let mut h = Xxh3::new();
    feed(&mut h);
    h.digest128().to_le_bytes()
}

pub fn tenant_digest(d: &TenantDoc) -> Digest {
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

pub fn platform_digest(p: &EffectivePlatform) -> Digest {
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
