//! dynalert's rule packs: fixed sets of Prometheus rules, one per technology, that compare
//! each tenant's live metrics with that tenant's `user_threshold` rows, so the number of rules
//! does not grow with the number of tenants.
//!
//! [`pack`] is the file format, [`catalogue`] the packs embedded in the binary, [`generate`]
//! the alert rules derived from each pack's keys, [`render`] the output shapes (rule files,
//! ConfigMaps, PrometheusRules) and [`defaults`] a `_defaults.yaml` for the chosen packs.

pub mod defaults;
pub mod generate;
pub mod pack;
pub mod render;

use std::sync::OnceLock;

pub use pack::{Pack, PackError};
pub use render::{Format, RenderOptions, RenderedFile, render};

/// The pack files, embedded at build time.
const SOURCES: [(&str, &str); 6] = [
    ("elasticsearch", include_str!("../packs/elasticsearch.yaml")),
    ("kubernetes", include_str!("../packs/kubernetes.yaml")),
    ("mariadb", include_str!("../packs/mariadb.yaml")),
    ("mongodb", include_str!("../packs/mongodb.yaml")),
    ("platform", include_str!("../packs/platform.yaml")),
    ("redis", include_str!("../packs/redis.yaml")),
];

/// Every embedded pack, sorted by name. The files are checked by this crate's tests, so a
/// broken pack never ships; parsing them here cannot fail in a released binary.
pub fn catalogue() -> &'static [Pack] {
    static PACKS: OnceLock<Vec<Pack>> = OnceLock::new();
    PACKS.get_or_init(|| {
        SOURCES
            .iter()
            .map(|(name, text)| Pack::parse(name, text).unwrap_or_else(|e| panic!("embedded {e}")))
            .collect()
    })
}

/// Looks packs up by name (`mariadb,redis`); unknown names are an error listing the known.
pub fn select(names: &[String]) -> Result<Vec<&'static Pack>, String> {
    if names.is_empty() {
        return Ok(catalogue().iter().collect());
    }
    names
        .iter()
        .map(|n| {
            catalogue().iter().find(|p| p.pack == *n).ok_or_else(|| {
                let known: Vec<&str> = catalogue().iter().map(|p| p.pack.as_str()).collect();
                format!("unknown pack {n:?}; packs are {}", known.join(", "))
            })
        })
        .collect()
}

/// Every key the packs declare: the linter and the server treat them as known keys.
pub fn declared_keys() -> Vec<String> {
    catalogue()
        .iter()
        .flat_map(|p| p.keys.keys().cloned())
        .collect()
}
