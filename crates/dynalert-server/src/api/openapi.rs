//! `GET /openapi.json`: the API described in OpenAPI 3.1. The document is written by hand in
//! `openapi.json` next to this file; a test walks it against the router, so a route that is
//! missing from it, or documented but not served, fails the build.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The OpenAPI document.
pub const DOCUMENT: &str = include_str!("openapi.json");

pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT).into_response()
}
