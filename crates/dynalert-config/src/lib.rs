//! dynalert's threshold model: the conf.d format, its validation and its resolution.
//!
//! Pure: documents in, model and diagnostics out; no I/O (the sources that read directories
//! and databases live in `dynalert-store` and the server). Every surface (exporter, API,
//! linter, `show`) goes through this crate so they cannot disagree.
//!
//! The facade:
//! - [`DocumentSet`] holds the documents and the last good version of each, and turns each
//!   [`Delta`] into a new [`Model`] and a [`ModelDiff`]; [`Timeline`] adds the changes the
//!   clock brings. [`load_documents`] does it once.
//! - [`Model::resolve_at`] / [`resolve_tenant`]: a tenant's effective values at an instant.
//! - [`validate`]: a proposed write checked against the served model; [`codec`]: documents
//!   as the API and the CLI exchange them; [`names`]: the naming rules every surface shares.
//!
//! Inside, a one-way chain: `yaml` → `doc` → `parse` (one document) → `compile` (hierarchy,
//! cross-file checks) → `model` → `resolve`; `digest` gives canonical hashes;
//! `settle` decides which version of each document is served when some have errors (no file
//! pays for another's), and `series` is the identity of a served row (two keys of one layer
//! may not share one).

pub mod codec;
mod comparison;
mod compile;
mod diag;
mod diff;
mod digest;
mod doc;
mod document_set;
mod limits;
mod model;
pub mod names;
mod parse;
mod resolve;
mod schedule;
mod series;
mod settle;
mod text_error;
mod timeline;
pub mod validate;
mod value;
mod yaml;

pub use comparison::Comparison;
pub use compile::{EffectivePlatform, TenantEntry};
pub use diag::{Diagnostic, Level};
pub use diff::{Difference, ModelDiff};
pub use doc::ParsedFile;
pub use document_set::{Applied, ApplyStats, Body, Delta, DocumentSet, Upsert, load_documents};
pub use limits::Limits;
pub use model::{FileStatus, Model};
pub use parse::{is_platform_path, parse_file};
pub use resolve::{
    ConfigEvent, KeyState, KeyView, Origin, ResolvedTenant, ThresholdRow, resolve_tenant,
};
pub use text_error::{DimensionError, KeyError, TextError};
pub use timeline::Timeline;
pub use value::{Setting, Severity, parse_instant};
