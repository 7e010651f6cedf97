//! Helpers for writing small conf.d trees in tests, and [`Loader`]: a conf.d directory read
//! the way `dynalert serve` reads it (the store's tree reader feeding a document set).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;

use dynalert_config::{ApplyStats, Body, Delta, DocumentSet, Model, ResolvedTenant, Upsert};
use dynalert_store::{TreeDelta, TreeReader};

pub struct Loader {
    reader: TreeReader,
    documents: DocumentSet,
}

impl Loader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Loader {
            reader: TreeReader::new(root),
            documents: DocumentSet::new(),
        }
    }

    pub fn reload(&mut self) -> std::io::Result<ApplyStats> {
        let tree = self.reader.read_all()?;
        Ok(self.apply(tree))
    }

    pub fn reload_paths(&mut self, paths: &[PathBuf]) -> std::io::Result<ApplyStats> {
        let tree = self.reader.read_paths(paths)?;
        Ok(self.apply(tree))
    }

    pub fn model(&self) -> Arc<Model> {
        self.documents.model()
    }

    fn apply(&mut self, tree: TreeDelta) -> ApplyStats {
        let upserts = tree
            .reads
            .into_iter()
            .map(|read| Upsert {
                path: read.path,
                body: match read.content {
                    Ok(text) => Body::Text(text),
                    Err(e) => Body::Unreadable {
                        line: e.line,
                        message: e.message,
                    },
                },
                parsed: None,
            })
            .collect();
        let delta = Delta {
            upserts,
            removed: tree.removed,
        };
        self.documents.apply(delta).stats
    }
}

/// Loads a tree once.
pub fn load_dir(root: &Path) -> std::io::Result<Arc<Model>> {
    let mut l = Loader::new(root);
    l.reload()?;
    Ok(l.model())
}

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
