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
use dynalert_config::parse::is_platform_path;
use dynalert_store::{Decision, UpdateError, Updated, WriteMeta, check_path};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Api;
use super::document;
use super::problem::{Finding, Problem};
use super::request::{Format, IfMatch, body_text, etag, json_object};
use super::tenants::{HistoryQuery, history_entries, validate};

/// The platform file written when the request names none.
const DEFAULT_FILE: &str = "_defaults.yaml";

#[derive(Serialize)]
struct PlatformFile {
    file: String,
    revision: String,
    document: Value,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<Finding>,
}

/// `GET /platform`: every platform file, in path order (which is their merge order).
pub async fn get_all(State(api): State<Arc<Api>>, headers: HeaderMap) -> Result<Response, Problem> {
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
    Ok(Json(serde_json::json!({ "files": files })).into_response())
}

/// `?file=` of a request about one platform file.
#[derive(Deserialize)]
pub struct FileQuery {
    file: Option<String>,
}

/// The platform file a request names ([`DEFAULT_FILE`] when it names none), or `400` when
/// the name is not a platform file's path.
fn requested_file(query: Result<Query<FileQuery>, QueryRejection>) -> Result<String, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let file = query.file.unwrap_or_else(|| DEFAULT_FILE.to_string());
    check_path(&file).map_err(|e| Problem::bad_request(e.to_string()))?;
    if !is_platform_path(&file) {
        return Err(Problem::bad_request(format!(
            "{file:?} is not a platform file: its name must start with `_`"
        )));
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
pub async fn put(
    State(api): State<Arc<Api>>,
    query: Result<Query<FileQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let caller = api.auth.caller(&headers)?;
    caller.may_write_platform()?;
    let file = requested_file(query)?;
    let format = Format::of(&headers)?;
    let if_match = IfMatch::of(&headers)?;
    let text = body_text(body)?;
    let model = api.model()?;
    let content = match format {
        Format::Yaml => text,
        Format::Json => document::platform_file_from_map(&json_object(&text)?),
    };
    let warnings = validate(&model, &file, Some(&content)).map_err(Problem::invalid)?;
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
        Ok(Updated::Removed) => return Err(Problem::internal("a write removed the file")),
        Err(UpdateError::Refused(problem)) => return Err(problem),
        Err(UpdateError::Store(e)) => return Err(e.into()),
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
pub async fn history(
    State(api): State<Arc<Api>>,
    file: Result<Query<FileQuery>, QueryRejection>,
    limit: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let caller = api.auth.caller(&headers)?;
    caller.may_read_all()?;
    let file = requested_file(file)?;
    let Query(limit) = limit.map_err(|e| Problem::bad_request(e.body_text()))?;
    let entries = api
        .store
        .history(&object(&file), &file, limit.limit())
        .await?;
    let entries = history_entries(entries, |text| Ok(Some(platform_document(text)?)))?;
    Ok(Json(serde_json::json!({ "file": file, "entries": entries })).into_response())
}

/// A stored platform file as a mapping of its blocks. One that is not a mapping cannot be
/// written (the model refuses it), only left on disk by hand: it shows as `{}`, as a
/// tenant's non-mapping settings do.
fn platform_document(content: &str) -> Result<Map<String, Value>, Problem> {
    Ok(match document::file_value(content)? {
        Value::Object(blocks) => blocks,
        _ => Map::new(),
    })
}
