//! dynalert's threshold model: the conf.d format, its validation and its resolution.
//!
//! Pipeline: [`parse`] one file → [`compile`] the tree (hierarchy, cross-file checks) →
//! [`Model`] → [`Model::resolve_at`] an instant. [`Loader`] drives it over a directory and
//! keeps the last good version of every file. Every surface (exporter, API, linter, `show`)
//! goes through this crate so they cannot disagree.

pub mod compile;
pub mod diag;
pub mod digest;
pub mod doc;
pub mod loader;
pub mod model;
pub mod names;
pub mod parse;
pub mod resolve;
pub mod schedule;
pub mod validate;
pub mod value;
pub mod yaml;

pub use compile::{EffectivePlatform, TenantEntry};
pub use diag::{Diagnostic, Level};
pub use loader::{FileStatus, Loader, ReloadStats, Upsert};
pub use model::Model;
pub use resolve::{ConfigEvent, KeyState, KeyView, Origin, ResolvedTenant, ThresholdRow};
pub use value::Severity;

/// Loads a tree once, as `dynalert lint` and `dynalert show` do.
pub fn load_dir(root: &std::path::Path) -> std::io::Result<std::sync::Arc<Model>> {
    load_dir_with_keys(root, [])
}

/// [`load_dir`] with keys known beyond the tree's platform files (see [`Loader::with_known_keys`]).
pub fn load_dir_with_keys(
    root: &std::path::Path,
    keys: impl IntoIterator<Item = String>,
) -> std::io::Result<std::sync::Arc<Model>> {
    let mut loader = Loader::new(root).with_known_keys(keys);
    loader.reload()?;
    Ok(loader.model())
}
