//! `/platform`: the platform files (defaults, optional keys, state filters, profiles), read
//! by admins and viewers, written by admins one file at a time, and the audit history of
//! one file.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use dynalert_config::is_platform_path;
use dynalert_store::{Decision, Updated, WriteMeta, check_path};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Api;
use super::document;
use super::problem::Finding;
use super::problem::Problem;
use super::request::{Format, IfMatch, body_text, etag, json_object};
use super::schema::PlatformDocument;
use super::tenants::{HistoryEntry, HistoryQuery, history_entries, validate};
use crate::error::{ApiError, RequestError};
use utoipa::{IntoParams, ToSchema};

/// The platform file written when the request names none.
const DEFAULT_FILE: &str = "_defaults.yaml";

/// One platform file.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlatformFile {
    file: String,
    /// The stored revision; the `ETag` is this, quoted.
    revision: String,
    #[schema(value_type = PlatformDocument)]
    document: Value,
    /// Warnings of the accepted write; present only on writes that have some.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(min_items = 1)]
    warnings: Vec<Finding>,
}

/// Every platform file.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlatformFiles {
    /// In path order (merge order).
    files: Vec<PlatformFile>,
}

/// The audit history of one platform file.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PlatformHistory {
    file: String,
    /// Oldest first.
    entries: Vec<HistoryEntry>,
}

/// `GET /platform`: every platform file, in path order (which is their merge order).
#[utoipa::path(get, path = "/platform", operation_id = "getPlatform", tag = "platform",
    summary = "Read the platform configuration",
    description = "Every platform file (defaults, optional keys, state filters, profiles) with its revision, in path order (merge order); admin and viewer.",
    responses(
        (status = 200, description = "The platform files", body = PlatformFiles),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get_all(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    caller.may_read_all()?;
    let mut files = Vec::new();
    for doc in api.store.list().await? {
        if is_platform_path(&doc.path) {
            files.push(PlatformFile {
                document: document::file_value(&doc.content)?,
                file: doc.path,
                revision: doc.revision,
                warnings: Vec::new(),
            });
        }
    }
    Ok(Json(PlatformFiles { files }).into_response())
}

/// `?file=` of a request about one platform file.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// The platform file: a path relative to the store root whose name starts with `_`;
    /// default `_defaults.yaml`.
    file: Option<String>,
}

/// The platform file a request names ([`DEFAULT_FILE`] when it names none), or `400` when
/// the name is not a platform file's path.
fn requested_file(query: Result<Query<FileQuery>, QueryRejection>) -> Result<String, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::from(RequestError::Query(e.body_text())))?;
    let file = query.file.unwrap_or_else(|| DEFAULT_FILE.to_string());
    check_path(&file).map_err(RequestError::PlatformPath)?;
    if !is_platform_path(&file) {
        return Err(RequestError::NotPlatformFile(file).into());
    }
    Ok(file)
}

/// The audit object of a platform file.
fn object(file: &str) -> String {
    format!("platform:{file}")
}

/// `PUT /platform?file=_defaults.yaml`: replaces (given `If-Match`) or creates one platform
/// file. The whole configuration is checked with it, so a change that would break a tenant
/// (a default it sets removed, a profile it uses gone) is refused with that tenant's errors.
#[utoipa::path(put, path = "/platform", operation_id = "putPlatformFile", tag = "platform",
    summary = "Create or replace one platform file",
    description = "Creates or replaces (with `If-Match`) one platform file; admin only. The whole configuration is checked with it: a change that would break a tenant is refused with that tenant's errors.",
    params(FileQuery, ("If-Match" = Option<String>, Header, description = "The revision the change is based on, quoted (`\"42\"`), or `*`. Needed to replace an existing document (`428` without it); a stale one is `412`.")),
    request_body(content((PlatformDocument = "application/json"), (PlatformDocument = "application/yaml")), description = "The whole platform file, JSON or YAML; YAML is stored as sent."),
    responses(
        (status = 200, description = "Replaced", body = PlatformFile, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 201, description = "Created", body = PlatformFile, headers(("ETag" = String, description = "The stored revision, quoted."))),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
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
    query: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    caller.may_write_platform()?;
    let file = requested_file(query)?;
    let format = Format::of(&headers)?;
    let if_match = IfMatch::of(&headers)?;
    let text = body_text(body)?;
    let model = api.model()?;
    let content = match format {
        Format::Yaml => text,
        Format::Json => dynalert_config::codec::platform_file(&json_object(&text)?),
    };
    let warnings = validate(&model, &file, Some(&content)).map_err(ApiError::invalid)?;
    let meta = WriteMeta {
        actor: caller.actor(),
        object: object(&file),
    };
    let what = format!("platform file {file:?}");
    let mut existed = false;
    let result = api
        .store
        .update(&file, &meta, |current| {
            existed = current.is_some();
            if_match.allows(current, &what)?;
            Ok(Decision::Write(content))
        })
        .await;
    let doc = match result {
        Ok(Updated::Written(doc) | Updated::Unchanged(doc)) => doc,
        Ok(Updated::Removed) => return Err(ApiError::Internal("a write removed the file".into())),
        Err(e) => return Err(e.into()),
    };
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let tag = etag(&doc.revision);
    let body = PlatformFile {
        document: document::file_value(&doc.content)?,
        file: doc.path,
        revision: doc.revision,
        warnings,
    };
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

/// `GET /platform/history?file=_defaults.yaml&limit=N`: the newest N writes of one platform
/// file, oldest first, each with the whole document before and after and the top-level
/// blocks that changed.
#[utoipa::path(get, path = "/platform/history", operation_id = "getPlatformHistory", tag = "platform",
    summary = "The audit history of one platform file",
    description = "The newest writes of one platform file (oldest first), each with the whole document before and after and the blocks that changed; admin and viewer.",
    params(FileQuery, HistoryQuery),
    responses(
        (status = 200, description = "The history", body = PlatformHistory),
        (status = 400, description = "The request cannot be read: an invalid tenant name, query, header or body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No token, or an unknown one (auth file configured)", body = Problem, content_type = "application/problem+json", headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"dynalert\"`"))),
        (status = 403, description = "The token's role may not do this; any write without an auth file", body = Problem, content_type = "application/problem+json"),
        (status = 500, description = "A bug: a stored document the server wrote does not read back, or the database refused a statement", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The first load is not done, or the store is unavailable", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(api): State<Arc<Api>>,
    file: Result<Query<FileQuery>, QueryRejection>,
    limit: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = api.auth.caller(&headers)?;
    caller.may_read_all()?;
    let file = requested_file(file)?;
    let Query(limit) = limit.map_err(|e| ApiError::from(RequestError::Query(e.body_text())))?;
    let entries = api
        .store
        .history(&object(&file), &file, limit.limit())
        .await?;
    let entries = history_entries(entries, |text| Ok(Some(platform_document(text)?)))?;
    Ok(Json(PlatformHistory { file, entries }).into_response())
}

/// A stored platform file as a mapping of its blocks. One that is not a mapping cannot be
/// written (the model refuses it), only left on disk by hand: it shows as `{}`, as a
/// tenant's non-mapping settings do.
fn platform_document(content: &str) -> Result<Map<String, Value>, ApiError> {
    Ok(match document::file_value(content)? {
        Value::Object(blocks) => blocks,
        _ => Map::new(),
    })
}
