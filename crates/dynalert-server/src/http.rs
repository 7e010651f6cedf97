//! The HTTP surface: `/metrics`, `/health`, `/ready`, and the management API under
//! `/api/v1` (see [`crate::api`]).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::Utc;
use dynalert_config::FileStatus;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::Api;
use crate::state::{AppState, Served};

/// Prometheus text exposition format 0.0.4.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const PLAIN_TEXT: &str = "text/plain; charset=utf-8";

/// Every route with its description: what [`router`] serves and `/api/v1/openapi.json`
/// describes.
pub(crate) fn app() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::with_openapi(crate::api::openapi::base())
        .routes(routes!(metrics))
        .routes(routes!(health))
        .routes(routes!(ready))
        .nest("/api/v1", crate::api::routes())
}

pub(crate) fn router(api: Arc<Api>) -> Router {
    let (router, _) = app().split_for_parts();
    router
        .fallback(|| async {
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, PLAIN_TEXT)],
                "not found\n",
            )
        })
        .with_state(api)
}

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "serving",
    summary = "The thresholds and self-monitoring, for Prometheus",
    description = "Prometheus text exposition format 0.0.4 (`text/plain; version=0.0.4; charset=utf-8`): `user_threshold` and the other threshold families of every tenant, then `dynalert_*` and `process_*` series. Gzip-compressed when `Accept-Encoding` allows it. Unauthenticated (Prometheus scrapes it).",
    security(),
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain"),
        (status = 503, description = "The first load of the store is not done yet.", body = String, content_type = "text/plain"),
    ))]
async fn metrics(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let served = current(&api.state).await;
    if !served.status.first_load_done {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: first load pending\n".into(),
        );
    }
    let live = crate::self_metrics::Live {
        stall: api.state.heartbeat.stalled(),
        auth: api.auth.file_status(),
    };
    let tail = crate::self_metrics::render(&served, &live);
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

/// `GET /health`.
#[utoipa::path(get, path = "/health", operation_id = "getHealth", tag = "serving",
    summary = "Liveness",
    description = "`200 ok` as soon as the listener answers. Unauthenticated.",
    security(),
    responses((status = 200, description = "Alive.", body = String, content_type = "text/plain")))]
async fn health() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

/// 503 until the first load is done, then 200, and 503 again while the reload loop is stalled.
/// The body lists what is wrong in either case: an unreadable store, an auth file not in
/// effect, then errors one per line, then the files not served as they are on disk; last, the
/// platform files the last reload changed, with the tenants whose thresholds that altered.
#[utoipa::path(get, path = "/ready", operation_id = "getReady", tag = "serving",
    summary = "Readiness",
    description = "`503` until the first load of the store is done, then `200`; `503` again while the reload loop is stalled (it completed no cycle within its limit, so edits and API writes are not served). A store that cannot be read is not a stall: the last good thresholds stay served and `/ready` stays `200`. The body says `ready` (or `not ready: …`), then lists what is wrong: the store's read error, an auth file not in effect (the last good tokens are), then configuration errors one per line, then files not served as they are stored; last, the platform files the last reload changed, each with the tenants whose thresholds that altered. Unauthenticated.",
    security(),
    responses(
        (status = 200, description = "Ready.", body = String, content_type = "text/plain"),
        (status = 503, description = "The first load of the store is not done yet, or the reload loop is stalled.", body = String, content_type = "text/plain"),
    ))]
async fn ready(State(api): State<Arc<Api>>) -> Response {
    let served = api.state.served();
    let (code, mut body) = match (served.status.first_load_done, api.state.heartbeat.stalled()) {
        (false, _) => (
            StatusCode::SERVICE_UNAVAILABLE,
            String::from("not ready: first load pending\n"),
        ),
        (true, Some(stall)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {stall}\n"),
        ),
        (true, None) => (StatusCode::OK, String::from("ready\n")),
    };
    if let Some(e) = &served.status.dir_error {
        let _ = writeln!(body, "{e}; serving the last good configuration");
    }
    if let Some(e) = api.auth.file_status().and_then(|status| status.error) {
        let _ = writeln!(body, "{e}; keeping the last good tokens");
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
    for line in served.model.platform_change_summaries() {
        let _ = writeln!(body, "{line}");
    }
    text(code, body)
}

fn text(code: StatusCode, body: String) -> Response {
    (code, [(header::CONTENT_TYPE, PLAIN_TEXT)], body).into_response()
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
        let dir = tempfile::tempdir().unwrap();
        let store = dynalert_store::dir::DirStore::open(dir.path()).unwrap();
        let app = router(Arc::new(Api {
            state: Arc::new(AppState::new()),
            store: Arc::new(dynalert_store::Store::Dir(store)),
            auth: crate::api::Auth::none(),
            parsed: Default::default(),
            max_series: usize::MAX,
        }));
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

    /// The paths the router answers (read from its `Debug` output: axum has no other way to
    /// list them), equal to the paths the document lists.
    #[test]
    fn the_routed_paths_are_the_documented_paths() {
        let dir = tempfile::tempdir().unwrap();
        let store = dynalert_store::dir::DirStore::open(dir.path()).unwrap();
        let app = router(Arc::new(Api {
            state: Arc::new(AppState::new()),
            store: Arc::new(dynalert_store::Store::Dir(store)),
            auth: crate::api::Auth::none(),
            parsed: Default::default(),
            max_series: usize::MAX,
        }));
        let debug = format!("{app:?}");
        let mut routed = std::collections::BTreeSet::new();
        for (_, rest) in debug
            .split("RouteId(")
            .skip(1)
            .filter_map(|s| s.split_once("): \""))
        {
            routed.insert(rest.split('"').next().unwrap().to_string());
        }
        // axum's own routes for the fallback (`router` sets one), not ours.
        routed.remove("/");
        routed.remove("/{*__private__axum_fallback}");
        let documented: std::collections::BTreeSet<String> =
            crate::api::openapi().paths.paths.keys().cloned().collect();
        assert_eq!(routed, documented, "{debug}");
        assert!(
            documented.contains("/api/v1/tenants/{tenant}"),
            "{documented:?}"
        );
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
}
