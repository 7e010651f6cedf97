//! The management API under `/api/v1`: tenants, the platform configuration, the effective
//! view, the audit history of tenants and platform files, simulation and the load status,
//! described by `openapi.json`.
//!
//! Every write is checked by the model ([`dynalert_config::validate`]) before it reaches the
//! store, and stored with [`dynalert_store::Store::update`], which runs the `If-Match` check
//! and the write atomically. Handlers return an [`ApiError`] for every refusal; its status is
//! decided in one place, [`ApiError::status`].
//!
//! Modules: `auth` (tokens and roles), `problem` (RFC 9457 errors), `document` (API documents
//! ↔ conf.d files, through the model's codec), `tenants`, `platform`, `views` (effective view,
//! simulate, status), `schema` (schemas of the model's types), `openapi` (the document).

pub mod auth;
mod document;
pub(crate) mod openapi;
mod parsed;
mod platform;
mod problem;
mod request;
mod schema;
mod tenants;
mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use dynalert_config::Model;
use dynalert_store::Store;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::Auth;
pub use openapi::openapi;
pub use problem::Finding;

use crate::error::ApiError;

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
    /// Most `user_threshold` series served in all (`--max-series`).
    pub max_series: usize,
}

impl Api {
    /// The served model, or `503` before the first load (nothing can be validated yet).
    /// `422` when a tenant going from `before` to `after` keys of its own would take the
    /// served series over `--max-series`; a write that adds no key always passes, so an
    /// admin can always repair.
    pub fn check_series(&self, before: usize, after: usize) -> Result<(), ApiError> {
        let served = self.state.served().snapshot.threshold_series();
        if after <= before || served + (after - before) <= self.max_series {
            return Ok(());
        }
        Err(ApiError::OverLimit(format!(
            "the write adds {} series to the {served} served, over the limit of {} (--max-series)",
            after - before,
            self.max_series
        )))
    }

    pub fn model(&self) -> Result<Arc<Model>, ApiError> {
        let served = self.state.served();
        if served.status.first_load_done {
            Ok(served.model)
        } else {
            Err(ApiError::NotReady)
        }
    }
}

/// The `/api/v1` routes (paths relative to it), each registered with its description: a
/// route is served exactly when it is documented (a plain `.route()` is refused by clippy,
/// see `clippy.toml`).
pub fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::new()
        .routes(routes!(tenants::list))
        .routes(routes!(
            tenants::get_one,
            tenants::put,
            tenants::patch,
            tenants::delete
        ))
        .routes(routes!(views::effective))
        .routes(routes!(tenants::history))
        .routes(routes!(platform::get_all, platform::put))
        .routes(routes!(platform::history))
        .routes(routes!(views::simulate))
        .routes(routes!(views::config))
        .routes(routes!(openapi::document))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}
