//! Checks a proposed change to one document against the served model before it is stored, so
//! a write through the API is refused with the same diagnostics the loader and the linter
//! would give, instead of being stored and then served as "last good".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::codec::{SENT_DOCUMENT, SentTenant};
use crate::compile::{check_tenant_file, compile};
use crate::diag::Diagnostic;
use crate::doc::ParsedFile;
use crate::limits;
use crate::model::Model;
use crate::parse::{is_platform_path, parse_file, parse_tree};

/// The errors that writing `source` to `path` (or removing it, for `None`) would bring: every
/// error in that document, and errors in other documents that were clean before (a platform
/// change that drops a key some tenant sets, a tenant name already defined elsewhere).
/// Warnings of the document itself are returned too; the change is acceptable when none of
/// the returned diagnostics is an error.
pub fn check_change(model: &Model, path: &str, source: Option<&str>) -> Vec<Diagnostic> {
    match source {
        Some(source) => check_write(model, path, source).0,
        None if is_platform_path(path) => changed_model(model, path, None).0,
        // Removing a tenant file changes nothing for other files.
        None => Vec::new(),
    }
}

/// [`check_change`] of writing `source` to `path`, with the document as parsed for the check:
/// what the loader would parse again when the write is applied.
pub fn check_write(model: &Model, path: &str, source: &str) -> (Vec<Diagnostic>, Arc<ParsedFile>) {
    check_parsed(model, path, Arc::new(parse_limited(model, path, source)))
}

/// [`check_change`] of storing tenant `name`'s document as sent to `path`: findings about the
/// document are in the sender's lines and columns, under [`SENT_DOCUMENT`].
pub fn check_sent_tenant(
    model: &Model,
    path: &str,
    name: &str,
    sent: &SentTenant,
) -> Vec<Diagnostic> {
    let mut parsed = parse_tree(path, Ok(Some(sent.file_tree(name))));
    limits::enforce(&mut parsed, &model.limits);
    let mut found = check_parsed(model, path, Arc::new(parsed)).0;
    for d in &mut found {
        if d.file == path {
            d.file = SENT_DOCUMENT.to_string();
        }
    }
    found
}

/// A proposed document as the loader would hold it: parsed, and held to the model's limits.
fn parse_limited(model: &Model, path: &str, source: &str) -> ParsedFile {
    let mut parsed = parse_file(path, source);
    limits::enforce(&mut parsed, &model.limits);
    parsed
}

fn check_parsed(
    model: &Model,
    path: &str,
    parsed: Arc<ParsedFile>,
) -> (Vec<Diagnostic>, Arc<ParsedFile>) {
    if !is_platform_path(path) {
        // A tenant file changes nothing for other files: check it alone.
        if let Some(found) = check_tenant_file(&parsed, &model.platforms, &model.tenants) {
            let found = select(parsed.diagnostics.iter().cloned().chain(found), model, path);
            return (found, parsed);
        }
    }
    (changed_model(model, path, Some(parsed.clone())).0, parsed)
}

/// The findings a change is judged by: all of the changed document's, and errors elsewhere
/// that were not there before.
fn select(found: impl Iterator<Item = Diagnostic>, model: &Model, path: &str) -> Vec<Diagnostic> {
    let known: BTreeSet<&Diagnostic> = model.diagnostics.iter().collect();
    let mut found: Vec<Diagnostic> = found
        .filter(|d| d.file == path || (d.is_error() && !known.contains(d)))
        .collect();
    found.sort();
    found.dedup();
    found
}

/// [`check_change`], plus the model as it would be with the change: what a simulation
/// resolves. The model carries no diagnostics of its own.
pub fn apply_change(model: &Model, path: &str, source: Option<&str>) -> (Vec<Diagnostic>, Model) {
    changed_model(
        model,
        path,
        source.map(|text| Arc::new(parse_limited(model, path, text))),
    )
}

/// [`apply_change`] with the proposed document parsed already (`None`: removed).
fn changed_model(
    model: &Model,
    path: &str,
    proposed: Option<Arc<ParsedFile>>,
) -> (Vec<Diagnostic>, Model) {
    let mut files: Vec<_> = model
        .sources
        .iter()
        .filter(|(p, _)| p.as_str() != path)
        .map(|(_, f)| f.clone())
        .collect();
    files.extend(proposed.iter().cloned());
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let compiled = compile(
        &files,
        &model.builtin_keys,
        &model.platforms,
        &model.tenants,
    );
    let known: BTreeSet<&Diagnostic> = model.diagnostics.iter().collect();
    let mut found: Vec<Diagnostic> = proposed
        .iter()
        .flat_map(|f| f.diagnostics.iter().cloned())
        .chain(
            compiled
                .diagnostics
                .into_iter()
                .filter(|d| d.file == path || (d.is_error() && !known.contains(d))),
        )
        .collect();
    found.sort();
    found.dedup();
    let changed = Model::new(
        model.generation,
        compiled.platforms,
        compiled.tenants,
        Vec::new(),
        BTreeMap::new(),
    );
    (found, changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(docs: &[(&str, &str)]) -> Arc<Model> {
        let docs = docs.iter().map(|(p, c)| (p.to_string(), c.to_string()));
        crate::load_documents(docs, [])
    }

    const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n";

    /// The quick check of a tenant file must say what compiling everything says.
    fn check_change(model: &Model, path: &str, source: Option<&str>) -> Vec<Diagnostic> {
        let quick = super::check_change(model, path, source);
        let full = apply_change(model, path, source).0;
        assert_eq!(quick, full, "quick and full checks disagree on {path}");
        quick
    }

    #[test]
    fn a_clean_tenant_passes() {
        let m = model(&[("_defaults.yaml", DEFAULTS)]);
        let found = check_change(
            &m,
            "a.yaml",
            Some("tenants:\n  a:\n    mysql_connections: 5\n"),
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn an_unknown_key_is_an_error_with_its_line() {
        let m = model(&[("_defaults.yaml", DEFAULTS)]);
        let found = check_change(
            &m,
            "a.yaml",
            Some("tenants:\n  a:\n    mysql_conections: 5\n"),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            (found[0].line, found[0].key.as_deref()),
            (3, Some("mysql_conections"))
        );
        assert!(
            found[0].message.contains("did you mean"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn dropping_a_default_a_tenant_sets_breaks_that_tenant() {
        let m = model(&[
            ("_defaults.yaml", DEFAULTS),
            ("a.yaml", "tenants:\n  a:\n    mysql_connections: 5\n"),
        ]);
        let found = check_change(&m, "_defaults.yaml", Some("defaults:\n  redis_memory: 1\n"));
        assert!(
            found.iter().any(|d| d.file == "a.yaml" && d.is_error()),
            "{found:?}"
        );
        assert!(
            check_change(&m, "_defaults.yaml", None)
                .iter()
                .any(|d| d.file == "a.yaml")
        );
    }

    #[test]
    fn a_tenant_defined_in_another_document_is_refused() {
        let m = model(&[
            ("_defaults.yaml", DEFAULTS),
            ("a.yaml", "tenants:\n  a: {}\n"),
        ]);
        let found = check_change(&m, "b.yaml", Some("tenants:\n  a: {}\n"));
        assert!(
            found.iter().any(|d| d.is_error() && d.file == "b.yaml"),
            "{found:?}"
        );
    }

    #[test]
    fn tenants_in_subdirectories_use_their_own_platform() {
        let m = model(&[
            ("_defaults.yaml", DEFAULTS),
            (
                "team/_defaults.yaml",
                "optional: [team_key]\nprofiles:\n  p: {}\n",
            ),
            ("team/x.yaml", "tenants:\n  x: {}\n"),
        ]);
        let ok = "tenants:\n  y:\n    team_key: 1\n    _profile: p\n";
        assert!(check_change(&m, "team/deeper/y.yaml", Some(ok)).is_empty());
        let found = check_change(&m, "y.yaml", Some(ok));
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(check_change(&m, "x.yaml", None).is_empty());
    }

    #[test]
    fn errors_that_were_already_there_do_not_block_other_writes() {
        let m = model(&[
            ("_defaults.yaml", DEFAULTS),
            ("bad.yaml", "tenants:\n  bad:\n    nope: 1\n"),
        ]);
        let found = check_change(&m, "a.yaml", Some("tenants:\n  a: {}\n"));
        assert!(found.is_empty(), "{found:?}");
    }
}
