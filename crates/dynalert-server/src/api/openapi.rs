//! `GET /openapi.json`: the API described in OpenAPI 3.1. The document is written by hand in
//! `openapi.json` next to this file; `tests/openapi.rs` holds it against the router
//! (`ROUTE_PATHS`, the methods each path answers) and every reply of a session
//! against its schemas, so a route, method, status or field that is missing from it, or
//! documented but not served, fails the tests.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The OpenAPI document.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
