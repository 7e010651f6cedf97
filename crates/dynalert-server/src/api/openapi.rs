//! `GET /openapi.json`: the API described in OpenAPI 3.1, generated from the handlers'
//! `#[utoipa::path]` annotations and the body types' `ToSchema`, collected by the same
//! `OpenApiRouter` that routes them (`crate::http::app`), so a route cannot be served without
//! being documented. `tests/openapi.rs` snapshots the document, calls every path and method
//! it lists, and validates responses against its schemas.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::Modify;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "dynalert management API",
        version = "v1",
        description = "The management API of `dynalert serve`, under `/api/v1`. Documents are \
            JSON; where a document is sent, YAML is accepted too (`application/yaml`, \
            `application/x-yaml`, `text/yaml`, `text/x-yaml`). Errors are \
            `application/problem+json` (RFC 9457) carrying the model's diagnostics. Bodies \
            over 1 MiB are `413`. Every write is validated by the same model code as the \
            exporter and the linter, and needs `If-Match` to replace an existing document \
            (`428` without it, `412` when stale).\n\nAccess: bearer tokens from \
            `--auth-file` (stored as SHA-256 hashes, re-read on change), each with a role: \
            `admin` (everything), `viewer` (read only), `tenant:<name>` (read and write that \
            tenant only). Without `--auth-file` no token is checked: every read is open and \
            every write is `403` (the API is read-only). `/api/v1/openapi.json`, `/metrics`, \
            `/health` and `/ready` need no token.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    servers((url = "/", description = "The `dynalert serve` listener.")),
    security(("bearer" = [])),
    tags(
        (name = "tenants", description = "Tenant documents and their audit history."),
        (name = "platform", description = "Platform files: defaults, optional keys, state filters, profiles, and their audit history."),
        (name = "views", description = "Read-only resolutions: effective view and simulation."),
        (name = "status", description = "Load status of the configuration."),
        (name = "meta", description = "This description."),
        (name = "serving", description = "Prometheus scrape and probes, outside `/api/v1`; no token."),
    ),
    modifiers(&BearerScheme),
)]
pub(crate) struct Base;

/// The `bearer` security scheme every operation but the unauthenticated ones uses.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some(
            "A token listed (by its SHA-256) in the `--auth-file` of `dynalert serve`, with \
             role `admin`, `viewer` or `tenant:<name>`. Without an auth file tokens are not \
             checked: reads are open to everyone and writes are refused (`403`)."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The description of everything the server routes.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::http::app().into_openapi()
}

/// The description of the document, built once.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| openapi().to_pretty_json().unwrap_or_default());

/// `GET /openapi.json`.
#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApi", tag = "meta",
    summary = "This description",
    description = "The API described in OpenAPI 3.1, generated from the server's handlers and types. Needs no token.",
    security(),
    responses((status = 200, description = "The OpenAPI document.", body = Object, content_type = "application/json")))]
pub async fn document() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
        .into_response()
}
