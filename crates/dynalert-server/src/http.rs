//! The HTTP surface: `/metrics`, `/health`, `/ready` and `/api/v1/config`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use dynalert_config::{ConfigEvent, Diagnostic, FileStatus, KeyView, ResolvedTenant, Severity};
use serde::{Deserialize, Serialize};

use crate::state::{AppState, Served};

/// Prometheus text exposition format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

pub(crate) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/api/v1/config", get(config))
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, PLAIN_TEXT)],
                "not found\n",
            )
        })
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let served = current(&state).await;
    if !served.status.first_load_done {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: first load pending\n".into(),
        );
    }
    let tail = crate::self_metrics::render(&served);
    let gzip = accepts_gzip(&headers);
    let (length, body) = if gzip {
        let chunks = served.snapshot.gzip_body(tail.as_bytes());
        let length: usize = chunks.iter().map(Bytes::len).sum();
        (
            length,
            Body::from_stream(futures_util::stream::iter(
                chunks.into_iter().map(Ok::<_, Infallible>),
            )),
        )
    } else {
        let length = served.snapshot.plain_len(tail.as_bytes());
        let chunks = served.snapshot.clone().plain_stream(Bytes::from(tail));
        (
            length,
            Body::from_stream(futures_util::stream::iter(chunks.map(Ok::<_, Infallible>))),
        )
    };
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// The served view, first brought up to date if a time-dependent row came due since the last
/// render (the reload task's timer may not have fired yet).
async fn current(state: &Arc<AppState>) -> Served {
    let served = state.served();
    let now = Utc::now();
    if served.next_due.is_none_or(|due| due > now) {
        return served;
    }
    let renderer = state.clone();
    match tokio::task::spawn_blocking(move || renderer.refresh(now)).await {
        Ok(_) => state.served(),
        Err(_) => served,
    }
}

/// Whether `Accept-Encoding` allows gzip: `gzip` or `x-gzip` with a non-zero q, or else `*`
/// with a non-zero q.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    let items = headers
        .get_all(header::ACCEPT_ENCODING)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','));
    for item in items {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=")?.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            gzip = Some(q);
        } else if coding == "*" {
            any = Some(q);
        }
    }
    gzip.or(any).is_some_and(|q| q > 0.0)
}

async fn health() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// 503 until the first load is done, then 200. The body lists what is wrong with the files
/// in either case: errors one per line, then the files not served as they are on disk.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let served = state.served();
    let (code, mut body) = if served.status.first_load_done {
        (StatusCode::OK, String::from("ready\n"))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            String::from("not ready: first load pending\n"),
        )
    };
    if let Some(e) = &served.status.dir_error {
        let _ = writeln!(body, "{e}");
    }
    for d in served.model.diagnostics.iter().filter(|d| d.is_error()) {
        let _ = writeln!(body, "{d}");
    }
    for (file, status) in &served.model.files {
        match status {
            FileStatus::Ok => {}
            FileStatus::ServingLastGood => {
                let _ = writeln!(body, "{file}: serving its last good content");
            }
            FileStatus::NotServed => {
                let _ = writeln!(body, "{file}: not served (no good version yet)");
            }
        }
    }
    text(code, body)
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, PLAIN_TEXT)], body).into_response()
}

#[derive(Deserialize)]
struct ConfigQuery {
    at: Option<String>,
}

#[derive(Serialize)]
struct ConfigView<'a> {
    /// `loading` before the first load, `errors` if any file or the root has an error.
    status: &'static str,
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

/// The load status and every tenant resolved at now or at `?at=<RFC 3339>`.
async fn config(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ConfigQuery>, QueryRejection>,
) -> Response {
    let at = match query.map(|Query(q)| q.at) {
        Ok(None) => Utc::now(),
        Ok(Some(text)) => match parse_instant(&text) {
            Ok(at) => at,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    "invalid `at`",
                    &format!(
                        "`at` must be an RFC 3339 instant such as 2026-01-31T09:30:00Z: {text:?}: {e}"
                    ),
                );
            }
        },
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid query", &e.body_text()),
    };
    let served = state.served();
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
        generation: model.generation,
        hash: &model.hash,
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
    json(StatusCode::OK, "application/json", &view)
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    DateTime::parse_from_rfc3339(text)
        // An unencoded `+` in a query string arrives as a space.
        .or_else(|e| DateTime::parse_from_rfc3339(&text.replace(' ', "+")).map_err(|_| e))
        .map(|t| t.with_timezone(&Utc))
}

/// An RFC 9457 problem document.
fn problem(code: StatusCode, title: &str, detail: &str) -> Response {
    let body = serde_json::json!({ "type": "about:blank", "title": title, "status": code.as_u16(), "detail": detail });
    json(code, "application/problem+json", &body)
}

fn json(code: StatusCode, content_type: &'static str, value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => (code, [(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode JSON: {e}\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use tower::ServiceExt as _;

    async fn get(app: Router, path: &str) -> (StatusCode, String) {
        let response = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (code, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn before_the_first_load_only_health_is_ok() {
        let app = router(Arc::new(AppState::new()));
        assert_eq!(
            get(app.clone(), "/health").await,
            (StatusCode::OK, "ok\n".into())
        );
        assert_eq!(
            get(app.clone(), "/ready").await,
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: first load pending\n".into()
            )
        );
        assert_eq!(
            get(app.clone(), "/metrics").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let (code, body) = get(app.clone(), "/api/v1/config").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains(r#""status":"loading""#), "{body}");
        assert_eq!(get(app, "/nope").await.0, StatusCode::NOT_FOUND);
    }

    #[test]
    fn accept_encoding_negotiation() {
        let accepts = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_str(value).unwrap(),
            );
            accepts_gzip(&h)
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("deflate, *"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts("gzip;q=0, *"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn instants_with_an_unencoded_plus() {
        let want: DateTime<Utc> = "2026-01-01T09:00:00Z".parse().unwrap();
        assert_eq!(parse_instant("2026-01-01T10:00:00 01:00").unwrap(), want);
        assert_eq!(parse_instant("2026-01-01T09:00:00Z").unwrap(), want);
        assert!(parse_instant("yesterday").is_err());
    }
}
