//! dynalert's threshold model: the conf.d format, its validation and its resolution.
//!
//! Pure: documents in, model and diagnostics out; no I/O (the sources that read directories
//! and databases live in `dynalert-store` and the server). Pipeline: [`parse`] one document →
//! [`compile`] the set (hierarchy, cross-file checks) → [`Model`] → [`Model::resolve_at`] an
//! instant. [`DocumentSet`] holds the documents and the last good version of each, and turns
//! each [`Delta`] into a new model and a [`ModelDiff`]; `settle` decides which version of
//! each document is served when some have errors (no file pays for another's), and `series`
//! is the identity of a served row (two keys of one layer may not share one). Every surface
//! (exporter, API, linter, `show`) goes through this crate so they cannot disagree.

pub mod codec;
mod comparison;
pub mod compile;
pub mod diag;
pub mod diff;
pub mod digest;
pub mod doc;
mod document_set;
pub mod model;
pub mod names;
pub mod parse;
pub mod resolve;
pub mod schedule;
mod series;
mod settle;
mod text_error;
mod timeline;
pub mod validate;
pub mod value;
pub mod yaml;

pub use comparison::Comparison;
pub use compile::{EffectivePlatform, TenantEntry};
pub use diag::{Diagnostic, Level};
pub use diff::{Difference, ModelDiff};
pub use document_set::{Applied, ApplyStats, Body, Delta, DocumentSet, Upsert, load_documents};
pub use model::{FileStatus, Model};
pub use resolve::{ConfigEvent, KeyState, KeyView, Origin, ResolvedTenant, ThresholdRow};
pub use text_error::{DimensionError, KeyError, TextError};
pub use timeline::Timeline;
pub use value::Severity;
