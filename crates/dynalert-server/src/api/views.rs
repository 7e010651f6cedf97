//! Read-only views: a tenant's effective configuration, a simulation of a document that is
//! not saved, and the load status of the whole store.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dynalert_config::validate::apply_change;
use dynalert_config::{
    ConfigEvent, Diagnostic, FileStatus, KeyView, Level, ResolvedTenant, Severity,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Api;
use super::document;
use super::problem::{Finding, Problem};
use super::request::{Format, TenantPath, body_text, tenant_name};
use super::tenants::tenant_path;

#[derive(Deserialize)]
pub struct AtQuery {
    at: Option<String>,
}

/// An alert of a rule pack that compares a live signal with a key.
#[derive(Clone, Serialize)]
struct AlertRef {
    pack: &'static str,
    alert: String,
}

/// Key → the pack alerts reading it (`<key>_critical` → the `…Critical` alert).
fn alerts_by_key() -> &'static BTreeMap<String, Vec<AlertRef>> {
    static MAP: OnceLock<BTreeMap<String, Vec<AlertRef>>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map: BTreeMap<String, Vec<AlertRef>> = BTreeMap::new();
        for pack in dynalert_rules::catalogue() {
            for (key, decl) in &pack.keys {
                let name = &decl.alert.name;
                map.entry(key.clone()).or_default().push(AlertRef {
                    pack: &pack.pack,
                    alert: name.clone(),
                });
                map.entry(format!("{key}_critical"))
                    .or_default()
                    .push(AlertRef {
                        pack: &pack.pack,
                        alert: format!("{name}Critical"),
                    });
            }
        }
        map
    })
}

fn base_key(key: &str) -> &str {
    key.split_once('{').map_or(key, |(base, _)| base)
}

#[derive(Serialize)]
struct EffectiveKey<'a> {
    #[serde(flatten)]
    view: &'a KeyView<'a>,
    used_by: &'a [AlertRef],
}

#[derive(Serialize)]
struct Effective<'a> {
    tenant: &'a str,
    at: DateTime<Utc>,
    keys: Vec<EffectiveKey<'a>>,
    state_filters: BTreeMap<&'a str, Severity>,
    silent: &'a [Severity],
    dedup: bool,
    metadata: BTreeMap<&'a str, &'a str>,
    events: &'a [ConfigEvent<'a>],
}

impl<'a> Effective<'a> {
    fn of(t: &'a ResolvedTenant<'a>, at: DateTime<Utc>) -> Self {
        let alerts = alerts_by_key();
        Effective {
            tenant: t.name,
            at,
            keys: t
                .keys
                .iter()
                .map(|view| EffectiveKey {
                    view,
                    // A dimensional key (`redis_queue_length{queue='email'}`) is read by
                    // the alerts of its base key.
                    used_by: alerts.get(base_key(view.key)).map_or(&[], Vec::as_slice),
                })
                .collect(),
            state_filters: t.state_filters.iter().copied().collect(),
            silent: &t.silent,
            dedup: t.dedup,
            metadata: t.metadata.iter().copied().collect(),
            events: &t.events,
        }
    }
}

/// `GET /tenants/{tenant}/effective?at=`: every known key with its value, severity, state,
/// where it came from and the pack alerts that read it.
pub async fn effective(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    query: Result<Query<AtQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?;
    caller.may_read_tenant(name)?;
    let at = instant(query)?;
    let model = api.model()?;
    let resolved = model
        .resolve_tenant_at(name, at)
        .ok_or_else(|| Problem::not_found(format!("no tenant {name:?} is served")))?;
    Ok(Json(Effective::of(&resolved, at)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    tenant: String,
    #[serde(default)]
    document: Map<String, Value>,
    #[serde(default)]
    at: Option<DateTime<Utc>>,
}

#[derive(Serialize)]
struct Simulation<'a> {
    #[serde(flatten)]
    effective: Effective<'a>,
    /// The `/metrics` lines this tenant would get.
    metrics: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Finding>,
}

/// `POST /simulate`: resolves `{"tenant", "document", "at"?}` against the current platform
/// configuration without saving it.
pub async fn simulate(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let caller = api.auth.caller(&headers)?;
    let text = body_text(body)?;
    let request: SimulateRequest = match Format::of(&headers)? {
        Format::Json => serde_json::from_str(&text)
            .map_err(|e| Problem::bad_request(format!("invalid simulation request: {e}")))?,
        Format::Yaml => serde_saphyr::from_str(&text)
            .map_err(|e| Problem::bad_request(format!("invalid simulation request: {e}")))?,
    };
    let name = tenant_name(&request.tenant)?;
    caller.may_read_tenant(name)?;
    let at = request.at.unwrap_or_else(Utc::now);
    let model = api.model()?;
    let path = tenant_path(&model, name);
    let content = document::tenant_file_from_map(name, &request.document);
    let (found, simulated) = apply_change(&model, &path, Some(&content));
    let findings: Vec<Finding> = found.iter().map(Finding::from_diagnostic).collect();
    if findings.iter().any(|f| f.level == Level::Error) {
        return Err(Problem::invalid(findings));
    }
    let resolved = simulated
        .resolve_tenant_at(name, at)
        .ok_or_else(|| Problem::internal("the simulated tenant did not resolve"))?;
    let mut families: [String; 7] = Default::default();
    dynalert_exposition::text::render_tenant(&resolved, &mut families);
    Ok(Json(Simulation {
        effective: Effective::of(&resolved, at),
        metrics: families.concat(),
        warnings: findings,
    })
    .into_response())
}

fn instant(query: Result<Query<AtQuery>, QueryRejection>) -> Result<DateTime<Utc>, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    match query.at {
        None => Ok(Utc::now()),
        Some(text) => parse_instant(&text).map_err(|e| {
            Problem::bad_request(format!(
                "`at` must be an RFC 3339 instant such as 2026-01-31T09:30:00Z: {text:?}: {e}"
            ))
        }),
    }
}

pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text)
        // An unencoded `+` in a query string arrives as a space.
        .or_else(|e| DateTime::parse_from_rfc3339(&text.replace(' ', "+")).map_err(|_| e))
        .map(|t| t.with_timezone(&Utc))
}

#[derive(Serialize)]
struct ConfigView<'a> {
    /// `loading` before the first load, `errors` if any file or the store has an error.
    status: &'static str,
    store: String,
    generation: u64,
    hash: &'a str,
    loaded_at: Option<DateTime<Utc>>,
    reload_ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reload_error: Option<&'a str>,
    /// The instant the tenants are resolved at.
    at: DateTime<Utc>,
    files: &'a BTreeMap<String, FileStatus>,
    errors: Vec<&'a Diagnostic>,
    warnings: Vec<&'a Diagnostic>,
    tenants: BTreeMap<&'a str, TenantView<'a>>,
}

#[derive(Serialize)]
struct TenantView<'a> {
    keys: &'a [KeyView<'a>],
    state_filters: BTreeMap<&'a str, Severity>,
    silent: &'a [Severity],
    dedup: bool,
    metadata: BTreeMap<&'a str, &'a str>,
    events: &'a [ConfigEvent<'a>],
}

impl<'a> From<&'a ResolvedTenant<'a>> for TenantView<'a> {
    fn from(t: &'a ResolvedTenant<'a>) -> Self {
        TenantView {
            keys: &t.keys,
            state_filters: t.state_filters.iter().copied().collect(),
            silent: &t.silent,
            dedup: t.dedup,
            metadata: t.metadata.iter().copied().collect(),
            events: &t.events,
        }
    }
}

/// `GET /config?at=`: the load status, every finding, the config hash, and every tenant
/// resolved at now or at `at`.
pub async fn config(
    State(api): State<Arc<Api>>,
    query: Result<Query<AtQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = api.auth.caller(&headers)?;
    caller.may_read_all()?;
    let at = instant(query)?;
    let served = api.state.served();
    let (status, model) = (&served.status, &served.model);
    let resolved = model.resolve_at(at);
    let errors: Vec<&Diagnostic> = model.diagnostics.iter().filter(|d| d.is_error()).collect();
    let view = ConfigView {
        status: if !status.first_load_done {
            "loading"
        } else if errors.is_empty() && status.dir_error.is_none() {
            "ok"
        } else {
            "errors"
        },
        store: api.store.describe(),
        generation: model.generation,
        hash: model.hash(),
        loaded_at: status.loaded_at,
        reload_ok: status.last_reload_ok,
        reload_error: status.dir_error.as_deref(),
        at,
        files: &model.files,
        errors,
        warnings: model.diagnostics.iter().filter(|d| !d.is_error()).collect(),
        tenants: resolved
            .iter()
            .map(|t| (t.name, TenantView::from(t)))
            .collect(),
    };
    Ok(Json(view).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_with_an_unencoded_plus() {
        let want: DateTime<Utc> = "2026-01-01T09:00:00Z".parse().unwrap();
        assert_eq!(parse_instant("2026-01-01T10:00:00 01:00").unwrap(), want);
        assert_eq!(parse_instant("2026-01-01T09:00:00Z").unwrap(), want);
        assert!(parse_instant("yesterday").is_err());
    }

    #[test]
    fn every_pack_key_names_its_alerts() {
        let map = alerts_by_key();
        let refs = &map["mysql_connections"];
        assert!(refs.iter().any(|r| r.pack == "mariadb"), "{:?}", refs.len());
        assert!(
            map["mysql_connections_critical"][0]
                .alert
                .ends_with("Critical")
        );
    }
}
