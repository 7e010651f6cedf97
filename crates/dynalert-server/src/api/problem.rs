//! Errors of the management API as RFC 9457 problem documents (`application/problem+json`),
//! carrying the model's diagnostics when a document was refused.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dynalert_config::{Diagnostic, Level};
use serde::Serialize;

/// One diagnostic as the API reports it: `field` is the threshold or reserved key concerned,
/// `line`/`column` are in the document the client sent when it sent one.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Finding {
    pub level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
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

/// An API error: status, a short title, a sentence saying what to do, and diagnostics.
#[derive(Debug)]
pub struct Problem {
    pub status: StatusCode,
    pub title: &'static str,
    pub detail: String,
    pub findings: Vec<Finding>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[Finding]>::is_empty")]
    errors: &'a [Finding],
}

impl Problem {
    pub fn new(status: StatusCode, title: &'static str, detail: impl Into<String>) -> Self {
        Problem {
            status,
            title,
            detail: detail.into(),
            findings: Vec::new(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, "Bad request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "Not found", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "Forbidden", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNAUTHORIZED, "Unauthorized", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::CONFLICT, "Conflict", detail)
    }

    pub fn stale(current: &str) -> Self {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "Precondition failed",
            format!(
                "If-Match does not name the current revision \"{current}\": someone changed it \
                 since you read it; GET it again, re-apply your change and send the new ETag"
            ),
        )
    }

    pub fn invalid(findings: Vec<Finding>) -> Self {
        let errors = findings.iter().filter(|f| f.level == Level::Error).count();
        Problem {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            title: "Invalid document",
            detail: format!(
                "the document has {errors} error{}; nothing was changed",
                if errors == 1 { "" } else { "s" }
            ),
            findings,
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", detail)
    }

    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "Not ready", detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = Body {
            kind: "about:blank",
            title: self.title,
            status: self.status.as_u16(),
            detail: &self.detail,
            errors: &self.findings,
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = (self.status, bytes).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"dynalert\""),
            );
        }
        response
    }
}

impl From<dynalert_store::StoreError> for Problem {
    fn from(e: dynalert_store::StoreError) -> Self {
        tracing::error!("store: {e}");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Store unavailable",
            format!("the store failed: {e}; nothing was changed, retry later"),
        )
    }
}
