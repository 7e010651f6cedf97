//! The errors of the server crate and the one place that maps them to HTTP.
//!
//! [`ServeError`] is what stops `dynalert serve` from starting or serving. [`ApiError`] is why
//! a management API request was refused; [`ApiError::status`] decides the HTTP status of every
//! variant of every error it carries, with no catch-all arm, so a new variant (here or in
//! [`StoreError`]) does not compile until someone decides its status. Its one `IntoResponse`
//! renders an RFC 9457 problem document ([`crate::api::Problem`]).

use std::net::SocketAddr;
use std::path::PathBuf;

use axum::http::StatusCode;
use dynalert_store::StoreError;

use crate::api::Finding;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The conf.d root is missing, not a directory or not readable. Checked before binding so
    /// a misconfigured deployment fails at once instead of serving nothing.
    // Causes are part of each message, not a `source`: an error chain would print them twice.
    #[error("{error}")]
    ConfigDir {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot open store {store}: {error}")]
    Store {
        store: String,
        error: dynalert_store::StoreError,
    },
    #[error("cannot import {dir}: {message}")]
    Import { dir: PathBuf, message: String },
    #[error("{0}")]
    Auth(String),
    #[error("cannot listen on {addr}: {error}")]
    Bind {
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Http(std::io::Error),
    /// A duration option outside its bounds (a zero period panicked the reload task).
    #[error("{0}")]
    Options(#[from] crate::options::OutOfBounds),
    /// A task serving depends on ended while nobody asked it to (a panic): the process must
    /// exit, since it would go on answering with thresholds that no longer change.
    #[error("the {task} task {reason}")]
    TaskEnded { task: &'static str, reason: String },
}

/// Why an API request was refused. Each variant's message is the problem's `detail`: what went
/// wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Precondition(#[from] PreconditionError),
    #[error(transparent)]
    Document(#[from] DocumentError),
    /// The store failed or refused; see [`ApiError::status`] for which is which.
    #[error("{}", store_detail(.0))]
    Store(#[from] StoreError),
    /// The tenant (or other object) named by the request does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write would take the served configuration over a configured limit.
    #[error("{0}")]
    OverLimit(String),
    /// Nothing can be validated before the first load of the store.
    #[error("the first load of the store is not done yet; retry in a moment")]
    NotReady,
    /// A bug: something the server guarantees did not hold.
    #[error("{0}")]
    Internal(String),
}

/// Who is calling, and whether the caller may do what it asks.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("send Authorization: Bearer <token>")]
    MissingToken,
    #[error("the Authorization header is not ASCII")]
    NotAscii,
    #[error("the Authorization header must be `Bearer <token>`")]
    NotBearer,
    #[error("unknown bearer token")]
    UnknownToken,
    #[error("the management API is read-only: no --auth-file was given to dynalert serve")]
    ReadOnly,
    #[error("a viewer token cannot write")]
    ViewerCannotWrite,
    #[error("this token cannot access tenant {0:?}")]
    OtherTenant(String),
    #[error("a tenant token (tenant:{0}) can read only its own tenant")]
    TenantOnly(String),
    #[error("only an admin token can change platform configuration")]
    NotAdmin,
}

/// A request that cannot be read: its path, query, headers or body.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A path segment that does not decode (not UTF-8, say).
    #[error("{0}")]
    Path(String),
    #[error(
        "invalid tenant name {0:?}: use 1-63 characters a-z 0-9 . _ -, starting and ending \
         with a letter or digit"
    )]
    TenantName(String),
    /// A query string that does not parse (`limit=x`).
    #[error("{0}")]
    Query(String),
    #[error("`at` must be an RFC 3339 instant such as 2026-01-31T09:30:00Z: {text:?}: {error}")]
    Instant {
        text: String,
        error: chrono::ParseError,
    },
    #[error("{0}")]
    PlatformPath(#[from] dynalert_store::PathError),
    #[error("{0:?} is not a platform file: its name must start with `_`")]
    NotPlatformFile(String),
    #[error("If-Match is not ASCII")]
    IfMatchNotAscii,
    #[error("If-Match {0:?}: an entity tag is quoted, like \"42\"")]
    IfMatchUnquoted(String),
    #[error("cannot read the body: {0}")]
    Body(String),
    #[error("the body is over {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the body is not UTF-8 (byte {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    #[error("the body is not JSON: {0} (line {line}, column {column})", line = .0.line(), column = .0.column())]
    NotJson(serde_json::Error),
    #[error("the body must be a JSON object, found {0}")]
    NotObject(&'static str),
    #[error("invalid simulation request: {0}")]
    Simulation(String),
    #[error("Content-Type {0:?}: send application/json or application/yaml")]
    UnsupportedMedia(String),
    #[error("PATCH takes a JSON merge patch (application/merge-patch+json)")]
    NotMergePatch,
}

/// `If-Match` and the current revision disagree.
#[derive(Debug, thiserror::Error)]
pub enum PreconditionError {
    #[error(
        "{what} exists: send If-Match: \"{revision}\" (its ETag) so a concurrent change is \
         not overwritten"
    )]
    Required { what: String, revision: String },
    #[error("If-Match was sent but {what} does not exist")]
    Missing { what: String },
    #[error(
        "If-Match does not name the current revision \"{current}\": someone changed it since \
         you read it; GET it again, re-apply your change and send the new ETag"
    )]
    Stale { current: String },
}

/// A well-formed document the API will not store.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The model found errors (the findings include its warnings).
    #[error(
        "the document has {} error{}; nothing was changed",
        error_count(.0),
        if error_count(.0) == 1 { "" } else { "s" }
    )]
    Invalid(Vec<Finding>),
    /// A tenant body that escaped its indentation and defines more than the tenant.
    #[error(
        "the body must hold the settings of tenant {0:?} only; as sent it also defines other \
         entries (check its line breaks and indentation); nothing was changed"
    )]
    DefinesOthers(String),
    /// The tenant shares its file with others: the API edits single-tenant files only.
    #[error(
        "{path} holds more than tenant {tenant:?}; the API edits files that hold one tenant \
         only: move {tenant:?} to a file of its own (in the conf.d tree, or export, edit and \
         import) and retry"
    )]
    SharedFile { path: String, tenant: String },
}

fn error_count(findings: &[Finding]) -> usize {
    findings
        .iter()
        .filter(|f| f.level == dynalert_config::Level::Error)
        .count()
}

fn store_detail(e: &StoreError) -> String {
    if store_status(e).is_server_error() {
        format!("the store failed: {e}; nothing was changed, retry later")
    } else {
        e.to_string()
    }
}

impl ApiError {
    /// A document the model refused, with every finding.
    pub fn invalid(findings: Vec<Finding>) -> ApiError {
        DocumentError::Invalid(findings).into()
    }

    /// The HTTP status of this error: the one mapping of the API.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(e) => match e {
                AuthError::MissingToken
                | AuthError::NotAscii
                | AuthError::NotBearer
                | AuthError::UnknownToken => StatusCode::UNAUTHORIZED,
                AuthError::ReadOnly
                | AuthError::ViewerCannotWrite
                | AuthError::OtherTenant(_)
                | AuthError::TenantOnly(_)
                | AuthError::NotAdmin => StatusCode::FORBIDDEN,
            },
            ApiError::Request(e) => match e {
                RequestError::Path(_)
                | RequestError::TenantName(_)
                | RequestError::Query(_)
                | RequestError::Instant { .. }
                | RequestError::PlatformPath(_)
                | RequestError::NotPlatformFile(_)
                | RequestError::IfMatchNotAscii
                | RequestError::IfMatchUnquoted(_)
                | RequestError::Body(_)
                | RequestError::NotUtf8 { .. }
                | RequestError::NotJson(_)
                | RequestError::NotObject(_)
                | RequestError::Simulation(_) => StatusCode::BAD_REQUEST,
                RequestError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                RequestError::UnsupportedMedia(_) | RequestError::NotMergePatch => {
                    StatusCode::UNSUPPORTED_MEDIA_TYPE
                }
            },
            ApiError::Precondition(e) => match e {
                PreconditionError::Required { .. } => StatusCode::PRECONDITION_REQUIRED,
                PreconditionError::Missing { .. } | PreconditionError::Stale { .. } => {
                    StatusCode::PRECONDITION_FAILED
                }
            },
            ApiError::OverLimit(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Document(e) => match e {
                DocumentError::Invalid(_) | DocumentError::DefinesOthers(_) => {
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                DocumentError::SharedFile { .. } => StatusCode::CONFLICT,
            },
            ApiError::Store(e) => store_status(e),
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem's `title`: short, the same for every error of a kind.
    pub fn title(&self) -> &'static str {
        match self {
            ApiError::Document(DocumentError::Invalid(_) | DocumentError::DefinesOthers(_)) => {
                "Invalid document"
            }
            ApiError::Store(e) if store_status(e) == StatusCode::SERVICE_UNAVAILABLE => {
                "Store unavailable"
            }
            ApiError::NotReady => "Not ready",
            other => other.status().canonical_reason().unwrap_or("Error"),
        }
    }

    /// The model's diagnostics of a refused document (empty for every other error).
    pub fn findings(&self) -> &[Finding] {
        match self {
            ApiError::Document(DocumentError::Invalid(findings)) => findings,
            _ => &[],
        }
    }
}

/// The status of a store error: the store's own words for what failed, decided here.
fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
        StoreError::Path(_) => StatusCode::BAD_REQUEST,
        StoreError::Unavailable(_)
        | StoreError::Io(_)
        | StoreError::Corrupt(_)
        | StoreError::Migration(_) => StatusCode::SERVICE_UNAVAILABLE,
        StoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<dynalert_store::UpdateError<ApiError>> for ApiError {
    fn from(e: dynalert_store::UpdateError<ApiError>) -> Self {
        match e {
            dynalert_store::UpdateError::Refused(e) => e,
            dynalert_store::UpdateError::Store(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynalert_store::PathError;

    #[test]
    fn store_errors_have_the_status_of_what_failed() {
        let not_found = StoreError::NotFound {
            path: "db-a.yaml".into(),
        };
        assert_eq!(ApiError::from(not_found).status(), StatusCode::NOT_FOUND);
        let path = StoreError::Path(PathError {
            path: "../x.yaml".into(),
            reason: "must be relative",
        });
        assert_eq!(ApiError::from(path).status(), StatusCode::BAD_REQUEST);
        let io = StoreError::Io(std::io::Error::other("disk gone"));
        assert_eq!(ApiError::from(io).status(), StatusCode::SERVICE_UNAVAILABLE);
        let corrupt = StoreError::Corrupt("a.yaml is not valid UTF-8".into());
        let corrupt = ApiError::from(corrupt);
        assert_eq!(corrupt.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(corrupt.title(), "Store unavailable");
        assert!(corrupt.to_string().contains("retry later"), "{corrupt}");
    }
}
