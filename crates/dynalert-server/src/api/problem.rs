//! Errors of the management API as RFC 9457 problem documents (`application/problem+json`),
//! carrying the model's diagnostics when a document was refused. The status of each error is
//! decided in one place, [`ApiError::status`]; this module only renders it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynalert_config::{Diagnostic, Level};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// One diagnostic of the model, as the API reports it.
#[derive(Clone, Debug, Serialize, PartialEq, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    #[schema(value_type = super::schema::Level)]
    pub level: Level,
    /// The threshold or reserved key concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The tenant concerned, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The file, relative to the store root; `(request body)` when the line and column are in
    /// the body sent.
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
}

impl Finding {
    pub fn from_diagnostic(d: &Diagnostic) -> Self {
        Finding {
            level: d.level,
            field: d.key.clone(),
            tenant: d.tenant.clone(),
            file: d.file.clone(),
            line: d.line,
            column: d.col,
            message: d.message.clone(),
        }
    }
}

/// A problem's `type`: never more specific than the status (RFC 9457 §4.2.1).
#[derive(Clone, Copy, Serialize, ToSchema)]
pub enum ProblemType {
    #[serde(rename = "about:blank")]
    AboutBlank,
}

/// An RFC 9457 problem document.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    kind: ProblemType,
    title: &'a str,
    /// The HTTP status code.
    status: u16,
    /// What went wrong and what to do.
    detail: &'a str,
    /// The model's diagnostics; present only when there are some (always on a `422` of an
    /// invalid document).
    #[serde(skip_serializing_if = "<[Finding]>::is_empty")]
    #[schema(value_type = Option<Vec<Finding>>, min_items = 1)]
    errors: &'a [Finding],
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!("{status}: {self}");
        }
        let detail = self.to_string();
        let body = Problem {
            kind: ProblemType::AboutBlank,
            title: self.title(),
            status: status.as_u16(),
            detail: &detail,
            errors: self.findings(),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dynalert\""),
            );
        }
        response
    }
}
