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
use super::problem::Finding;
use super::problem::Problem;
use super::request::{Format, TenantPath, body_text, tenant_name};
use super::schema::{self, TenantDocument};
use super::tenants::tenant_path;
use crate::error::{ApiError, RequestError};
use utoipa::{IntoParams, ToSchema};

/// `?at=` of a view.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AtQuery {
    /// The instant to resolve at (RFC 3339, e.g. `2026-01-31T09:30:00Z`); default now.
    #[param(format = DateTime)]
    at: Option<String>,
}

/// A rule-pack alert that compares a live signal with a key.
#[derive(Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
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

/// One key of one tenant, with the rule-pack alerts that read it.
#[derive(Serialize, ToSchema)]
struct EffectiveKey<'a> {
    #[serde(flatten)]
    #[schema(value_type = schema::KeyView)]
    view: &'a KeyView<'a>,
    #[schema(value_type = Vec<AlertRef>)]
    used_by: &'a [AlertRef],
}

/// A tenant's effective configuration at one instant.
#[derive(Serialize, ToSchema)]
struct Effective<'a> {
    tenant: &'a str,
    /// The instant resolved at.
    at: DateTime<Utc>,
    keys: Vec<EffectiveKey<'a>>,
    #[schema(value_type = schema::StateFilters)]
    state_filters: BTreeMap<&'a str, Severity>,
    #[schema(value_type = Vec<schema::Severity>)]
    silent: &'a [Severity],
    /// `_severity_dedup`.
    dedup: bool,
    #[schema(value_type = schema::Metadata)]
    metadata: BTreeMap<&'a str, &'a str>,
    #[schema(value_type = Vec<schema::ConfigEvent>)]
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
#[utoipa::path(get, path = "/tenants/{tenant}/effective", operation_id = "getEffective", tag = "views",
    summary = "The effective configuration of one tenant",
    description = "Every known key: value, severity, state (custom, default, profile, disabled, scheduled, expired), where it came from, and the pack alerts that read it.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit."), AtQuery),
    responses(
        (status = 200, description = "The effective view", body = Effective),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn effective(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    query: Result<Query<AtQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?;
    caller.may_read_tenant(name)?;
    let at = instant(query)?;
    let model = api.model()?;
    let resolved = model
        .resolve_tenant_at(name, at)
        .ok_or_else(|| ApiError::NotFound(format!("no tenant {name:?} is served")))?;
    Ok(Json(Effective::of(&resolved, at)).into_response())
}

/// A tenant document to resolve without saving it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SimulateRequest {
    /// The tenant to simulate (it need not exist).
    tenant: String,
    /// Its settings; default none.
    #[serde(default)]
    #[schema(value_type = TenantDocument)]
    document: Map<String, Value>,
    /// The instant to resolve at; default now.
    #[serde(default)]
    #[schema(nullable = false)]
    at: Option<DateTime<Utc>>,
}

/// The effective view a document would give, and the `/metrics` lines it would export.
#[derive(Serialize, ToSchema)]
struct Simulation<'a> {
    #[serde(flatten)]
    effective: Effective<'a>,
    /// The tenant's lines of the text exposition format.
    metrics: String,
    /// Warnings of the document; present only when there are some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    warnings: Vec<Finding>,
}

/// `POST /simulate`: resolves `{"tenant", "document", "at"?}` against the current platform
/// configuration without saving it.
#[utoipa::path(post, path = "/simulate", operation_id = "simulate", tag = "views",
    summary = "Resolve a tenant document without saving it",
    description = "Resolves `{\"tenant\", \"document\", \"at\"}` against the platform configuration being served: the effective view and the exact `/metrics` lines, nothing saved.",
    request_body(content((SimulateRequest = "application/json"), (SimulateRequest = "application/yaml")), description = "The tenant, its settings and the instant."),
    responses(
        (status = 200, description = "The simulation", body = Simulation),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither JSON nor YAML", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model refused the document (the problem's `errors` say why); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn simulate(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let text = body_text(body)?;
    let request: SimulateRequest = match Format::of(&headers)? {
        Format::Json => {
            serde_json::from_str(&text).map_err(|e| RequestError::Simulation(e.to_string()))?
        }
        Format::Yaml => {
            serde_saphyr::from_str(&text).map_err(|e| RequestError::Simulation(e.to_string()))?
        }
    };
    let name = tenant_name(&request.tenant)?;
    caller.may_read_tenant(name)?;
    let at = request.at.unwrap_or_else(Utc::now);
    let model = api.model()?;
    let path = tenant_path(&model, name);
    let content = dynalert_config::codec::tenant_file(name, &request.document);
    let (found, simulated) = apply_change(&model, &path, Some(&content));
    let findings: Vec<Finding> = found.iter().map(Finding::from_diagnostic).collect();
    if findings.iter().any(|f| f.level == Level::Error) {
        return Err(ApiError::invalid(findings));
    }
    let resolved = simulated
        .resolve_tenant_at(name, at)
        .ok_or_else(|| ApiError::Internal("the simulated tenant did not resolve".into()))?;
    let mut families: [String; 7] = Default::default();
    dynalert_exposition::text::render_tenant(&resolved, &mut families);
    Ok(Json(Simulation {
        effective: Effective::of(&resolved, at),
        metrics: families.concat(),
        warnings: findings,
    })
    .into_response())
}

fn instant(query: Result<Query<AtQuery>, QueryRejection>) -> Result<DateTime<Utc>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::from(RequestError::Query(e.body_text())))?;
    match query.at {
        None => Ok(Utc::now()),
        Some(text) => {
            parse_instant(&text).map_err(|error| RequestError::Instant { text, error }.into())
        }
    }
}

pub(crate) fn parse_instant(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text)
        // An unencoded `+` in a query string arrives as a space.
        .or_else(|e| DateTime::parse_from_rfc3339(&text.replace(' ', "+")).map_err(|_| e))
        .map(|t| t.with_timezone(&Utc))
}

/// Whether the served configuration loaded.
#[derive(Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
enum LoadState {
    /// Before the first load.
    Loading,
    Ok,
    /// A file or the store has an error.
    Errors,
}

/// The load status of the store and every tenant resolved.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ConfigStatus<'a> {
    /// `loading` before the first load; `errors` when a file or the store has an error.
    status: LoadState,
    /// The store served (`dir:…`, `sqlite:…`, `postgres://…` without password).
    store: String,
    generation: u64,
    /// The config hash (also `dynalert_config_hash_info`).
    hash: &'a str,
    /// When the served configuration was loaded; `null` before the first load.
    #[schema(required = true)]
    loaded_at: Option<DateTime<Utc>>,
    /// Whether the last reload succeeded.
    reload_ok: bool,
    /// Why the store could not be read; present only then.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reload_error: Option<&'a str>,
    /// The instant the tenants are resolved at.
    at: DateTime<Utc>,
    /// Every file (path → status).
    #[schema(value_type = BTreeMap<String, schema::FileStatus>)]
    files: &'a BTreeMap<String, FileStatus>,
    #[schema(value_type = Vec<schema::Diagnostic>)]
    errors: Vec<&'a Diagnostic>,
    #[schema(value_type = Vec<schema::Diagnostic>)]
    warnings: Vec<&'a Diagnostic>,
    /// Every served tenant (name → view).
    #[schema(value_type = BTreeMap<String, TenantView>)]
    tenants: BTreeMap<&'a str, TenantView<'a>>,
}

/// One tenant resolved (as in the effective view, without `used_by`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantView<'a> {
    #[schema(value_type = Vec<schema::KeyView>)]
    keys: &'a [KeyView<'a>],
    #[schema(value_type = schema::StateFilters)]
    state_filters: BTreeMap<&'a str, Severity>,
    #[schema(value_type = Vec<schema::Severity>)]
    silent: &'a [Severity],
    dedup: bool,
    #[schema(value_type = schema::Metadata)]
    metadata: BTreeMap<&'a str, &'a str>,
    #[schema(value_type = Vec<schema::ConfigEvent>)]
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
#[utoipa::path(get, path = "/config", operation_id = "getConfigStatus", tag = "status",
    summary = "The load status",
    description = "Load status, errors and warnings, config hash, and every tenant resolved at now or at `at`.",
    params(AtQuery),
    responses(
        (status = 200, description = "The load status", body = ConfigStatus),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn config(
    State(api): State<Arc<Api>>,
    query: Result<Query<AtQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    caller.may_read_all()?;
    let at = instant(query)?;
    let served = api.state.served();
    let (status, model) = (&served.status, &served.model);
    let resolved = model.resolve_at(at);
    let errors: Vec<&Diagnostic> = model.diagnostics.iter().filter(|d| d.is_error()).collect();
    let view = ConfigStatus {
        status: if !status.first_load_done {
            LoadState::Loading
        } else if errors.is_empty() && status.dir_error.is_none() {
            LoadState::Ok
        } else {
            LoadState::Errors
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
