//! Helpers for writing small conf.d trees in tests.

#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;

use dynalert_config::{Loader, Model, ResolvedTenant};

pub fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

pub fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
}

pub fn loaded(root: &Path) -> Loader {
    let mut l = Loader::new(root);
    l.reload().unwrap();
    l
}

/// Resolution borrows from the model; tests keep the model alive for the whole run.
pub fn resolve(loader: &Loader, tenant: &str, at: DateTime<Utc>) -> ResolvedTenant<'static> {
    let model: &'static Arc<Model> = Box::leak(Box::new(loader.model()));
    model
        .resolve_tenant_at(tenant, at)
        .unwrap_or_else(|| panic!("tenant {tenant} not served"))
}

/// `component_metric@severity{dims}` → value, for compact assertions.
pub fn rows(t: &ResolvedTenant) -> Vec<(String, f64)> {
    t.rows
        .iter()
        .map(|r| {
            let dims: Vec<String> = r.dims.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let dims = if dims.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", dims.join(","))
            };
            (
                format!("{}_{}@{}{dims}", r.component, r.metric, r.severity),
                r.value,
            )
        })
        .collect()
}

pub fn row(t: &ResolvedTenant, id: &str) -> Option<f64> {
    rows(t).into_iter().find(|(k, _)| k == id).map(|(_, v)| v)
}
