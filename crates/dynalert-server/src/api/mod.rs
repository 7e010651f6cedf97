//! The management API under `/api/v1`: tenants, the platform configuration, the effective
//! view, the audit history of tenants and platform files, simulation and the load status,
//! described by `openapi.json`.
//!
//! Every write is checked by the model ([`dynalert_config::validate`]) before it reaches the
//! store, and stored with [`dynalert_store::Store::update`], which runs the `If-Match` check
//! and the write atomically. Handlers return [`Problem`]s for every refusal.
//!
//! Modules: `auth` (tokens and roles), `problem` (RFC 9457 errors), `document` (API documents
//! ↔ conf.d files), `emit` (JSON → YAML), `tenants`, `platform`, `views` (effective view,
//! simulate, status), `openapi`.

pub mod auth;
mod document;
mod emit;
mod openapi;
mod parsed;
mod platform;
mod problem;
mod request;
mod tenants;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use dynalert_config::Model;
use dynalert_store::Store;

pub use auth::Auth;
pub use problem::Problem;

use crate::state::AppState;

/// Largest request body accepted; larger ones get `413`.
pub const MAX_BODY: usize = 1 << 20;

/// What every handler reaches: the served state, the store and the tokens.
pub struct Api {
    pub state: Arc<AppState>,
    pub store: Arc<Store>,
    pub auth: Auth,
    /// Tenant files as PATCH last wrote them, so the next PATCH need not parse them.
    pub parsed: parsed::ParsedFiles,
}

impl Api {
    /// The served model, or `503` before the first load (nothing can be validated yet).
    pub fn model(&self) -> Result<Arc<Model>, Problem> {
        let served = self.state.served();
        if served.status.first_load_done {
            Ok(served.model)
        } else {
            Err(Problem::unavailable(
                "the first load of the store is not done yet; retry in a moment",
            ))
        }
    }
}

/// The path of every `/api/v1` route (relative to it): [`routes`] registers exactly these, so
/// a test can hold `openapi.json` against the router.
pub const ROUTE_PATHS: &[&str] = &[
    "/tenants",
    "/tenants/{tenant}",
    "/tenants/{tenant}/effective",
    "/tenants/{tenant}/history",
    "/platform",
    "/platform/history",
    "/simulate",
    "/config",
    "/openapi.json",
];

/// The `/api/v1` routes (paths relative to it).
pub fn routes() -> Router<Arc<Api>> {
    let mut router = Router::new();
    for &path in ROUTE_PATHS {
        let methods = match path {
            "/tenants" => get(tenants::list),
            "/tenants/{tenant}" => get(tenants::get_one)
                .put(tenants::put)
                .patch(tenants::patch)
                .delete(tenants::delete),
            "/tenants/{tenant}/effective" => get(views::effective),
            "/tenants/{tenant}/history" => get(tenants::history),
            "/platform" => get(platform::get_all).put(platform::put),
            "/platform/history" => get(platform::history),
            "/simulate" => post(views::simulate),
            "/config" => get(views::config),
            "/openapi.json" => get(openapi::document),
            _ => unreachable!("{path} is in ROUTE_PATHS but has no handlers"),
        };
        router = router.route(path, methods);
    }
    router.layer(DefaultBodyLimit::max(MAX_BODY))
}
