//! `/tenants`: list, read, create or replace (PUT), change single keys (PATCH, a JSON merge
//! patch), delete, and the audit history of one tenant (its entries are shaped here for the
//! platform history too).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dynalert_config::ParsedFile;
use dynalert_config::codec::{self, SentTenant};
use dynalert_config::validate::{check_change, check_sent_tenant, check_write};
use dynalert_config::{Diagnostic, Level, Model};
use dynalert_store::{AuditEntry, Decision, Document, UpdateError, Updated, WriteMeta};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Api;
use super::auth::Caller;
use super::document::{self, FieldChange};
use super::parsed::ParsedFiles;
use super::problem::Finding;
use super::problem::Problem;
use super::request::{Format, IfMatch, TenantPath, body_text, etag, json_object, tenant_name};
use super::schema::{self, TenantDocument, TenantMergePatch};
use crate::error::{ApiError, RequestError};
use utoipa::{IntoParams, ToSchema};

/// One tenant as the API shows it.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantResource {
    pub tenant: String,
    /// The stored revision; the `ETag` is this, quoted.
    pub revision: String,
    /// The conf.d file that holds the tenant.
    pub file: String,
    /// Its settings: what is under `tenants: <name>:` in the file.
    #[schema(value_type = TenantDocument)]
    pub document: Map<String, Value>,
    /// Warnings of the accepted write; present only on writes that have some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    pub warnings: Vec<Finding>,
}

/// One served tenant in the list.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantSummary<'a> {
    tenant: &'a str,
    /// The stored revision of its file; `null` when the store does not hold that file (yet).
    #[schema(required = true)]
    revision: Option<String>,
    file: &'a str,
    /// Thresholds the tenant sets itself.
    overrides: usize,
    /// Whether the `maintenance` state filter is active now.
    maintenance: bool,
    /// Severities silenced now (`_silent_mode`); empty when none.
    #[schema(value_type = Vec<schema::Severity>)]
    silent: Vec<dynalert_config::Severity>,
}

/// Every served tenant.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantList<'a> {
    tenants: Vec<TenantSummary<'a>>,
}

/// `GET /tenants`: every served tenant (only its own for a tenant token).
#[utoipa::path(get, path = "/tenants", operation_id = "listTenants", tag = "tenants",
    summary = "List the served tenants",
    description = "Every served tenant with its revision, file, override count, maintenance and silent state; a tenant token sees only its own.",
    responses(
        (status = 200, description = "The tenants", body = TenantList),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let model = api.model()?;
    let revisions = api.store.revisions().await?;
    let now = Utc::now();
    let own = caller.own_tenant();
    let tenants: Vec<TenantSummary> = model
        .tenants
        .iter()
        .filter(|(name, _)| own.is_none_or(|o| o == name.as_str()))
        .map(|(name, entry)| {
            let resolved = dynalert_config::resolve_tenant(entry, now);
            TenantSummary {
                tenant: name,
                revision: revisions.get(&entry.doc.file).cloned(),
                file: &entry.doc.file,
                overrides: entry.doc.thresholds.len(),
                maintenance: resolved
                    .state_filters
                    .iter()
                    .any(|(f, _)| *f == "maintenance"),
                silent: resolved.silent.clone(),
            }
        })
        .collect();
    Ok(Json(TenantList { tenants }).into_response())
}

/// `GET /tenants/{tenant}`, with its revision as `ETag`.
#[utoipa::path(get, path = "/tenants/{tenant}", operation_id = "getTenant", tag = "tenants",
    summary = "Read one tenant",
    description = "The tenant's settings (what is under `tenants: <name>:`), with its revision as `ETag`.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit.")),
    responses(
        (status = 200, description = "The tenant", body = TenantResource, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_one(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?;
    caller.may_read_tenant(name)?;
    let model = api.model()?;
    let path = tenant_path(&model, name);
    // A tenant whose file is missing is the store's not-found (404), like one whose file
    // exists but does not define it.
    let doc = api.store.get_existing(&path).await?;
    let Some(settings) = document::tenant_settings(&doc.content, name)? else {
        return Err(ApiError::NotFound(format!("no tenant {name:?}")));
    };
    Ok(resource_response(
        StatusCode::OK,
        TenantResource {
            tenant: name.to_string(),
            revision: doc.revision,
            file: path,
            document: settings,
            warnings: Vec::new(),
        },
    ))
}

/// `PUT /tenants/{tenant}`: creates the tenant, or replaces it given `If-Match`.
#[utoipa::path(put, path = "/tenants/{tenant}", operation_id = "putTenant", tag = "tenants",
    summary = "Create or replace one tenant",
    description = "Creates the tenant (no `If-Match`), or replaces it (`If-Match` with its current revision). The document is validated by the model against the platform configuration being served.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit."), ("If-Match" = Option<String>, Header, description = "The revision the change is based on, quoted (`\"42\"`), or `*`. Needed to replace an existing document (`428` without it); a stale one is `412`.")),
    request_body (content((TenantDocument = "application/json"), (TenantDocument = "application/yaml")), description = "The tenant's settings, JSON or YAML (`application/yaml`, `application/x-yaml`, `text/yaml`, `text/x-yaml`); stored as block YAML (comments of a YAML document are not kept); findings about it name `(request body)` with its own lines and columns."),
    responses(
        (status = 200, description = "Replaced", body = TenantResource, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 201, description = "Created", body = TenantResource, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant's file holds other tenants", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is not the current revision, or the object does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither JSON nor YAML", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model refused the document (the problem's `errors` say why); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "Replacing or deleting an existing object without `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn put(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?.to_string();
    caller.may_write_tenant(&name)?;
    let format = Format::of(&headers)?;
    let if_match = IfMatch::of(&headers)?;
    let text = body_text(body)?;
    // A body that is not a JSON object is a bad request (400) before the model sees it:
    // malformed JSON is malformed YAML too, which the model would refuse as invalid (422).
    let sent_json = match format {
        Format::Json => Some(json_object(&text)?),
        Format::Yaml => None,
    };
    let model = api.model()?;
    let path = tenant_path(&model, &name);
    let sent = match sent_json {
        Some(map) => SentTenant::from_json(&text, map),
        None => SentTenant::from_yaml(&text)
            .map_err(|finding| ApiError::invalid(vec![Finding::from_diagnostic(&finding)]))?,
    };
    // Checked as sent, so findings point at the sender's lines; then as it will be stored.
    judged(&check_sent_tenant(&model, &path, &name, &sent)).map_err(ApiError::invalid)?;
    api.check_series(served_keys(&model, &name), own_keys(sent.settings()))?;
    let content = codec::tenant_file(&name, sent.settings());
    let warnings = validate(&model, &path, Some(&content)).map_err(ApiError::invalid)?;
    let what = format!("tenant {name:?}");
    let mut existed = false;
    let updated = write(&api, &caller, &name, &path, |current| {
        if let Some(doc) = current {
            document::check_sole_tenant(&doc.content, &doc.path, &name)?;
        }
        let defined = current.filter(|d| defines(d, &name));
        existed = defined.is_some();
        if_match.allows(defined, &what)?;
        Ok(Decision::Write(content))
    })
    .await?;
    respond_written(updated, &name, &path, None, warnings, !existed)
}

/// `PATCH /tenants/{tenant}`: a JSON merge patch of its settings (`null` removes a key),
/// applied atomically to the stored document; `If-Match` is optional.
#[utoipa::path(patch, path = "/tenants/{tenant}", operation_id = "patchTenant", tag = "tenants",
    summary = "Change single keys of one tenant",
    description = "A JSON merge patch (RFC 7396) of the tenant's settings: members to set, `null` removes one. Atomic in the store with or without `If-Match`.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit."), ("If-Match" = Option<String>, Header, description = "The revision the patch is based on, quoted, or `*`; optional (a PATCH is atomic anyway), `412` when stale.")),
    request_body(content((TenantMergePatch = "application/merge-patch+json"), (TenantMergePatch = "application/json")), description = "The merge patch."),
    responses(
        (status = 200, description = "Patched", body = TenantResource, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant's file holds other tenants", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is not the current revision, or the object does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over 1 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is neither JSON nor YAML", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model refused the document (the problem's `errors` say why); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?.to_string();
    caller.may_write_tenant(&name)?;
    if Format::of_any(&headers)? != Format::Json {
        return Err(RequestError::NotMergePatch.into());
    }
    let if_match = IfMatch::of(&headers)?;
    let patch = Value::Object(json_object(&body_text(body)?)?);
    let model = api.model()?;
    let path = tenant_path(&model, &name);
    let job = PatchJob {
        name: &name,
        path: &path,
        patch: &patch,
        if_match: &if_match,
        model: &model,
        parsed: &api.parsed,
    };
    // Optimistically: read, patch and validate outside the store's write lock, then write
    // only if nobody wrote in between, so concurrent writers of other tenants never wait for
    // this one's validation. A writer that keeps losing the race does it under the lock.
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let current = api.store.get(&path).await?;
        let Patched {
            content,
            settings,
            warnings,
            parsed,
        } = job.apply(current.as_ref())?;
        api.check_series(served_keys(&model, &name), own_keys(&settings))?;
        api.state.checked.offer(&path, &content, parsed);
        let based_on = current.map(|d| d.revision);
        let meta = write_meta(&caller, &name);
        let written = api
            .store
            .write_if(&path, &meta, based_on.as_deref(), Decision::Write(content))
            .await?;
        if let Some(updated) = written {
            remember(&api.parsed, &updated, &name, &settings);
            return respond_written(updated, &name, &path, Some(settings), warnings, false);
        }
    }
    let mut outcome = (Map::new(), Vec::new());
    let updated = write(&api, &caller, &name, &path, |current| {
        let patched = job.apply(current)?;
        api.check_series(served_keys(&model, &name), own_keys(&patched.settings))?;
        outcome = (patched.settings, patched.warnings);
        Ok(Decision::Write(patched.content))
    })
    .await?;
    let (settings, warnings) = outcome;
    remember(&api.parsed, &updated, &name, &settings);
    respond_written(updated, &name, &path, Some(settings), warnings, false)
}

/// The thresholds tenant `name` sets itself in the served model.
fn served_keys(model: &Model, name: &str) -> usize {
    model
        .tenants
        .get(name)
        .map_or(0, |e| e.doc.thresholds.len())
}

/// The thresholds a tenant document sets (settings starting with `_` are not thresholds).
fn own_keys(settings: &Map<String, Value>) -> usize {
    settings.keys().filter(|k| !k.starts_with('_')).count()
}

/// Keeps what a PATCH wrote parsed for the next PATCH of the tenant.
fn remember(parsed: &ParsedFiles, updated: &Updated, name: &str, settings: &Map<String, Value>) {
    if let Updated::Written(doc) | Updated::Unchanged(doc) = updated {
        let file = document::TenantFile::sole(settings.clone());
        parsed.remember(&doc.path, &doc.revision, name, file);
    }
}

/// How often a PATCH is tried outside the write lock before it takes the lock to validate.
const OPTIMISTIC_ATTEMPTS: usize = 3;

/// A patched tenant file: its content, the settings in it, the model's warnings, and the
/// content as parsed for the check.
struct Patched {
    content: String,
    settings: Map<String, Value>,
    warnings: Vec<Finding>,
    parsed: Arc<ParsedFile>,
}

/// One PATCH request, applied to whatever the tenant's document is when it runs.
struct PatchJob<'a> {
    name: &'a str,
    path: &'a str,
    patch: &'a Value,
    if_match: &'a IfMatch,
    model: &'a Model,
    parsed: &'a ParsedFiles,
}

impl PatchJob<'_> {
    /// The patched file content, the settings in it and its warnings, or why the patch
    /// cannot apply.
    fn apply(&self, current: Option<&Document>) -> Result<Patched, ApiError> {
        let name = self.name;
        let file = current.map(|d| self.parsed.parse(d, name)).transpose()?;
        let (doc, file, settings) = match (current, file) {
            (Some(doc), Some(file)) => match &file.settings {
                Some(settings) => (doc, file.clone(), settings.clone()),
                None => return Err(ApiError::NotFound(format!("no tenant {name:?}"))),
            },
            _ => return Err(ApiError::NotFound(format!("no tenant {name:?}"))),
        };
        self.if_match
            .allows_optional(Some(doc), &format!("tenant {name:?}"))?;
        file.check_sole(&doc.path, name)?;
        let mut merged = Value::Object(settings);
        document::merge_patch(&mut merged, self.patch);
        let merged = match merged {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let content = codec::tenant_file(name, &merged);
        let (warnings, parsed) =
            validate_write(self.model, self.path, &content).map_err(ApiError::invalid)?;
        Ok(Patched {
            content,
            settings: merged,
            warnings,
            parsed,
        })
    }
}

/// `DELETE /tenants/{tenant}`: needs `If-Match`.
#[utoipa::path(delete, path = "/tenants/{tenant}", operation_id = "deleteTenant", tag = "tenants",
    summary = "Delete one tenant",
    description = "Removes the tenant's file; needs `If-Match`. Refused (`422`) when the platform configuration would not load without it.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit."), ("If-Match" = String, Header, description = "The tenant's current revision, quoted (`\"42\"`), or `*`; `428` without it, `412` when stale.")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such tenant", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The tenant's file holds other tenants", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "`If-Match` is not the current revision, or the object does not exist", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The model refused the document (the problem's `errors` say why); nothing changed", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "Replacing or deleting an existing object without `If-Match`", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?.to_string();
    caller.may_write_tenant(&name)?;
    let if_match = IfMatch::of(&headers)?;
    let model = api.model()?;
    let path = tenant_path(&model, &name);
    let what = format!("tenant {name:?}");
    write(&api, &caller, &name, &path, |current| {
        let Some(doc) = current.filter(|d| defines(d, &name)) else {
            return Err(ApiError::NotFound(format!("no tenant {name:?}")));
        };
        if_match.allows(Some(doc), &what)?;
        document::check_sole_tenant(&doc.content, &doc.path, &name)?;
        validate(&model, &path, None).map_err(ApiError::invalid)?;
        Ok(Decision::Remove)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `?limit=N` of a history request (tenant or platform).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// How many of the newest entries to return (oldest first): default 100, at most 1000.
    #[param(minimum = 1)]
    limit: Option<u32>,
}

impl HistoryQuery {
    /// How many of the newest entries to return: 100 unless asked, within 1..=[`HISTORY_MAX`].
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, HISTORY_MAX)
    }
}

/// Most entries one history request returns.
const HISTORY_MAX: u32 = 1000;

/// One audit entry as a history shows it (tenant and platform alike).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    id: i64,
    at: DateTime<Utc>,
    /// The token name that wrote (`anonymous` without an auth file, `import` for an import,
    /// `filesystem` for a change found on disk at start).
    actor: String,
    /// What the write was about: `tenant:<name>` or `platform:<file>` for a write through the
    /// API, `document:<file>` for a whole document written outside it (an import, a change
    /// found on disk at start).
    object: String,
    file: String,
    /// The document before the write: the tenant's settings (tenant history) or the whole
    /// platform file (platform history); `null` when it did not exist.
    #[schema(value_type = Option<Object>, required = true)]
    before: Option<Map<String, Value>>,
    /// The document after the write, as `before`; `null` when it was deleted.
    #[schema(value_type = Option<Object>, required = true)]
    after: Option<Map<String, Value>>,
    changes: Vec<FieldChange>,
}

/// The audit history of one tenant.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TenantHistory<'a> {
    tenant: &'a str,
    /// Oldest first.
    entries: Vec<HistoryEntry>,
}

/// Audit entries as a history shows them, oldest first as given: `document` reads the
/// history's document out of a stored file content (`None` when that content lacks it).
pub fn history_entries(
    entries: Vec<AuditEntry>,
    document: impl Fn(&str) -> Result<Option<Map<String, Value>>, ApiError>,
) -> Result<Vec<HistoryEntry>, ApiError> {
    let read = |content: Option<&str>| content.map(&document).transpose().map(Option::flatten);
    let empty = Map::new();
    entries
        .into_iter()
        .map(|e| {
            let before = read(e.before.as_deref())?;
            let after = read(e.after.as_deref())?;
            let changes = document::changed_fields(
                before.as_ref().unwrap_or(&empty),
                after.as_ref().unwrap_or(&empty),
            );
            Ok(HistoryEntry {
                id: e.id,
                at: e.at,
                actor: e.actor,
                object: e.object,
                file: e.path,
                before,
                after,
                changes,
            })
        })
        .collect()
}

/// `GET /tenants/{tenant}/history?limit=N`: the newest N writes, oldest first, with diffs.
#[utoipa::path(get, path = "/tenants/{tenant}/history", operation_id = "getTenantHistory", tag = "tenants",
    summary = "The audit history of one tenant",
    description = "The newest writes (oldest first): actor, time, object, file, settings before and after, and the fields that changed.",
    params(("tenant" = String, Path, description = "The tenant's name: 1-63 characters a-z 0-9 . _ -, starting and ending with a letter or digit."), HistoryQuery),
    responses(
        (status = 200, description = "The history", body = TenantHistory),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(api): State<Arc<Api>>,
    TenantPath(tenant): TenantPath,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    let name = tenant_name(&tenant)?;
    caller.may_read_tenant(name)?;
    let Query(query) = query.map_err(|e| ApiError::from(RequestError::Query(e.body_text())))?;
    let model = api.model()?;
    let path = tenant_path(&model, name);
    let entries = api
        .store
        .history(&object(name), &path, query.limit())
        .await?;
    let entries = history_entries(entries, |text| document::tenant_settings(text, name))?;
    Ok(Json(TenantHistory {
        tenant: name,
        entries,
    })
    .into_response())
}

/// The audit object of a tenant.
fn object(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// Where tenant `name` lives: its file in the served model, or the file a new one gets.
pub fn tenant_path(model: &Model, name: &str) -> String {
    model
        .tenants
        .get(name)
        .map(|e| e.doc.file.clone())
        .unwrap_or_else(|| document::default_tenant_path(name))
}

/// Whether a stored document defines tenant `name`.
fn defines(doc: &Document, name: &str) -> bool {
    document::tenant_settings(&doc.content, name).is_ok_and(|s| s.is_some())
}

/// Runs the model's checks on a proposed document: its warnings when acceptable, every
/// finding when it has errors.
pub fn validate(
    model: &Model,
    path: &str,
    content: Option<&str>,
) -> Result<Vec<Finding>, Vec<Finding>> {
    judged(&check_change(model, path, content))
}

/// [`validate`] of writing `content`, with the document as parsed for the check (the loader
/// can apply it without parsing it again).
fn validate_write(
    model: &Model,
    path: &str,
    content: &str,
) -> Result<(Vec<Finding>, Arc<ParsedFile>), Vec<Finding>> {
    let (found, parsed) = check_write(model, path, content);
    judged(&found).map(|warnings| (warnings, parsed))
}

/// The findings as warnings of an acceptable change, or all of them when one is an error.
fn judged(found: &[Diagnostic]) -> Result<Vec<Finding>, Vec<Finding>> {
    let found: Vec<Finding> = found.iter().map(Finding::from_diagnostic).collect();
    if found.iter().any(|f| f.level == Level::Error) {
        Err(found)
    } else {
        Ok(found)
    }
}

/// Stores a tenant write, audited as the caller's.
async fn write<F, E>(
    api: &Api,
    caller: &Caller,
    name: &str,
    path: &str,
    decide: F,
) -> Result<Updated, UpdateError<E>>
where
    F: FnOnce(Option<&Document>) -> Result<Decision, E> + Send,
    E: Send,
{
    api.store
        .update(path, &write_meta(caller, name), decide)
        .await
}

/// A write of tenant `name`, audited as the caller's.
fn write_meta(caller: &Caller, name: &str) -> WriteMeta {
    WriteMeta {
        actor: caller.actor(),
        object: object(name),
    }
}

/// The written tenant; `settings` when the caller has them already (else read from the file).
fn respond_written(
    updated: Updated,
    name: &str,
    path: &str,
    settings: Option<Map<String, Value>>,
    warnings: Vec<Finding>,
    created: bool,
) -> Result<Response, ApiError> {
    let doc = match updated {
        Updated::Written(doc) | Updated::Unchanged(doc) => doc,
        Updated::Removed => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let settings = match settings {
        Some(settings) => settings,
        None => document::tenant_settings(&doc.content, name)?.unwrap_or_default(),
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(resource_response(
        status,
        TenantResource {
            tenant: name.to_string(),
            revision: doc.revision,
            file: path.to_string(),
            document: settings,
            warnings,
        },
    ))
}

fn resource_response(status: StatusCode, resource: TenantResource) -> Response {
    let tag = etag(&resource.revision);
    let mut response = (status, Json(resource)).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    response
}
