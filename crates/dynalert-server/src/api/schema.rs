#![allow(dead_code, reason = "schema-only types: described, never built")]
//! Schemas of the model's types the API serializes as they are (they live in
//! `dynalert-config`, which does not depend on utoipa): each mirrors the JSON its type
//! produces, and `tests/openapi.rs` validates real responses against them, so a change to
//! the model's serialization that is not made here fails a test.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use utoipa::ToSchema;

/// A severity.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

/// The level of a diagnostic.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Error,
    Warning,
}

/// Where a key's value comes from.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Custom,
    Default,
    Profile,
    Disabled,
    Scheduled,
    Expired,
    /// Another key of a more specific layer serves the same series; this key serves no row.
    Overridden,
}

/// `ok`: its content is served; `serving_last_good`: it has errors, its last good content is
/// served; `not_served`: it has errors and was never good.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileStatus {
    Ok,
    ServingLastGood,
    NotServed,
}

/// Where a value was set.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    file: String,
    line: u32,
}

/// One key of one tenant.
#[derive(ToSchema)]
pub struct KeyView {
    /// The key, with its dimensions when it has some.
    key: String,
    /// The exported threshold; `null` when no row is exported (disabled, overridden, or no
    /// layer sets a value).
    #[schema(required = true)]
    value: Option<f64>,
    severity: Severity,
    state: KeyState,
    /// The file and line that set the value; `null` when none did.
    #[schema(required = true)]
    origin: Option<Origin>,
    /// When the value in force expires; present only when it does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    expires: Option<DateTime<Utc>>,
    /// The reason given with an expiring value; present only when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// What expired and no longer applies.
#[derive(ToSchema)]
pub enum EventKind {
    #[serde(rename = "threshold_expired")]
    Threshold,
    #[serde(rename = "maintenance_expired")]
    Maintenance,
    #[serde(rename = "silence_expired")]
    Silence,
}

/// Something that expired and no longer applies.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigEvent {
    key: String,
    event: EventKind,
}

/// One diagnostic of the loaded configuration (note: `col` and `key` here, where a `Finding`
/// has `column` and `field`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Diagnostic {
    file: String,
    line: u32,
    col: u32,
    level: Level,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    key: Option<String>,
    message: String,
}

/// `_metadata`: owner, runbook_url and tier always (empty when unset), then any other members.
#[derive(ToSchema)]
pub struct Metadata {
    owner: String,
    runbook_url: String,
    tier: String,
    #[serde(flatten)]
    other: BTreeMap<String, String>,
}

/// Active state filters (name → severity).
pub type StateFilters = BTreeMap<String, Severity>;

/// A tenant's settings, as under `tenants: <name>:` in a conf.d file: threshold keys (a number,
/// a numeric string, `disable`, `"<value>:<severity>"`, a schedule `{default, timezone,
/// overrides}`, or `{value, expires, reason}`; dimensional keys like
/// `redis_queue_length{queue='email'}`) and reserved keys (`_profile`, `_state_<filter>`,
/// `_silent_mode`, `_severity_dedup`, `_metadata`, `_rules`). Checked by the model, not by
/// this schema.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct TenantDocument(serde_json::Map<String, serde_json::Value>);

/// A JSON merge patch of a tenant's settings: members to set, `null` to remove one.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct TenantMergePatch(serde_json::Map<String, serde_json::Value>);

/// A whole platform file: `defaults`, `optional`, `state_filters`, `profiles`,
/// `custom_alerts`, `tenants`. Checked by the model, not by this schema.
#[derive(ToSchema)]
#[schema(value_type = Object)]
pub struct PlatformDocument(serde_json::Map<String, serde_json::Value>);
