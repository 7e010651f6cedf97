//! Resolution: what each tenant's thresholds are at one instant.
//!
//! Per key the first layer that has a live (not expired) value wins: tenant → profile →
//! deepest platform default. Schedules are evaluated at the instant; expiries are reported as
//! events while the expired entry stays in the files.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::compile::{EffectivePlatform, TenantEntry};
use crate::doc::{PlatformValue, SilentMode, TenantDoc, TenantThreshold};
use crate::names::split_key;
use crate::schedule::next_minute;
use crate::value::{Setting, Severity, Threshold};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Custom,
    Default,
    Profile,
    Disabled,
    Scheduled,
    Expired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Custom => "custom",
            KeyState::Default => "default",
            KeyState::Profile => "profile",
            KeyState::Disabled => "disabled",
            KeyState::Scheduled => "scheduled",
            KeyState::Expired => "expired",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub file: String,
    pub line: u32,
}

/// One key of one tenant as a person wants to see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyView {
    pub key: String,
    /// `None` when no row is exported (disabled, or no layer sets a value).
    pub value: Option<f64>,
    pub severity: Severity,
    pub state: KeyState,
    pub origin: Option<Origin>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One `user_threshold` series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThresholdRow {
    pub component: String,
    pub metric: String,
    pub severity: Severity,
    /// Dimension labels, sorted by label name.
    pub dims: Vec<(String, String)>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigEvent {
    pub key: String,
    pub event: &'static str,
}

/// Everything exported for one tenant at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedTenant {
    pub name: String,
    pub keys: Vec<KeyView>,
    pub rows: Vec<ThresholdRow>,
    /// `user_threshold_state_filter`: 1 custom, 0 default, -1 disabled.
    pub key_states: Vec<(String, i8)>,
    /// Active state filters with their severity.
    pub state_filters: Vec<(String, Severity)>,
    pub silent: Vec<Severity>,
    pub dedup: bool,
    /// owner, runbook_url, tier first (empty when unset), then any extra metadata sorted.
    pub metadata: Vec<(String, String)>,
    pub events: Vec<ConfigEvent>,
    /// The instant after which this resolution may change (a schedule minute or an expiry).
    #[serde(skip)]
    pub valid_until: Option<DateTime<Utc>>,
}

/// component, metric, severity, dimensions: what makes a `user_threshold` series unique.
type RowLabels = (String, String, Severity, Vec<(String, String)>);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Tenant,
    Profile,
    Default,
}

struct Candidate<'a> {
    layer: Layer,
    value: &'a Threshold,
    origin: Origin,
}

/// Tracks the earliest instant at which the resolution can change.
struct Horizon {
    at: DateTime<Utc>,
    until: Option<DateTime<Utc>>,
}

impl Horizon {
    fn note(&mut self, t: DateTime<Utc>) {
        if t > self.at {
            self.until = Some(self.until.map_or(t, |u| u.min(t)));
        }
    }

    fn consult(&mut self, threshold: &Threshold) {
        if let Some(e) = threshold.expires {
            self.note(e);
        }
        if threshold.schedule.is_some() {
            self.note(next_minute(self.at));
        }
    }
}

/// Resolves one tenant at `at`.
pub fn resolve_tenant(entry: &TenantEntry, at: DateTime<Utc>) -> ResolvedTenant {
    let doc = &entry.doc;
    let platform = &entry.platform;
    let mut horizon = Horizon { at, until: None };
    let mut events = Vec::new();
    let mut keys = Vec::new();
    // Rows keyed by their labels; a collision keeps the most specific layer.
    let mut rows: BTreeMap<RowLabels, (Layer, f64)> = BTreeMap::new();
    let mut key_states = Vec::new();

    let tenant_values: BTreeMap<&str, &TenantThreshold> = doc
        .thresholds
        .iter()
        .filter(|t| t.key.dims.is_empty())
        .map(|t| (t.key.name.as_str(), t))
        .collect();
    let profile = doc
        .profile
        .as_ref()
        .and_then(|(p, _)| platform.profiles.get(p));
    let mut universe: BTreeSet<&str> = platform.defaults.keys().map(String::as_str).collect();
    universe.extend(platform.optional.iter().map(String::as_str));
    let custom_keys: Vec<String> = platform.custom_alerts.values().map(|a| a.key()).collect();
    universe.extend(custom_keys.iter().map(String::as_str));
    universe.extend(tenant_values.keys().copied());
    universe.extend(
        profile
            .into_iter()
            .flat_map(|p| p.keys().map(String::as_str)),
    );

    for key in universe {
        let mut candidates = Vec::new();
        if let Some(t) = tenant_values.get(key) {
            candidates.push(Candidate {
                layer: Layer::Tenant,
                value: &t.value,
                origin: Origin {
                    file: doc.file.clone(),
                    line: t.pos.line,
                },
            });
        }
        if let Some(v) = profile.and_then(|p| p.get(key)) {
            candidates.push(platform_candidate(Layer::Profile, v));
        }
        if let Some(v) = platform.defaults.get(key) {
            candidates.push(platform_candidate(Layer::Default, v));
        }
        let tier_base = platform.tier_base(key);
        let view = resolve_key(key, candidates, tier_base, at, &mut horizon, &mut events);
        let view = inherit_tier_disable(view, doc, tier_base, &tenant_values, at);
        let (row_key, severity) = (tier_base.unwrap_or(key), view.severity);
        if let Some(value) = view.value {
            let (component, metric) = split_key(row_key);
            let layer = layer_of(view.state);
            let slot = (
                component.to_string(),
                metric.to_string(),
                severity,
                Vec::new(),
            );
            if rows.get(&slot).is_none_or(|(l, _)| layer < *l) {
                rows.insert(slot, (layer, value));
            }
        }
        if let Some(state) = state_filter_value(&view) {
            key_states.push((key.to_string(), state));
        }
        keys.push(view);
    }

    for t in doc.thresholds.iter().filter(|t| !t.key.dims.is_empty()) {
        horizon.consult(&t.value);
        let tier_base = platform.tier_base(&t.key.name);
        let row_key = tier_base.unwrap_or(&t.key.name);
        let origin = Some(Origin {
            file: doc.file.clone(),
            line: t.pos.line,
        });
        if t.value.is_expired(at) {
            events.push(ConfigEvent {
                key: t.key.raw.clone(),
                event: "threshold_expired",
            });
            keys.push(KeyView {
                key: t.key.raw.clone(),
                value: None,
                severity: default_severity(&t.value.base, tier_base),
                state: KeyState::Expired,
                origin,
                expires: t.value.expires,
                reason: t.value.reason.clone(),
            });
            continue;
        }
        let setting = t.value.setting_at(at);
        let severity = default_severity(&setting, tier_base);
        // A disabled dimension must still shadow the tenant-wide threshold for its label
        // value, so it is exported as +Inf (a comparison that never fires).
        let value = match setting {
            Setting::Value { value, .. } => value,
            Setting::Disabled => f64::INFINITY,
        };
        let dims = t
            .key
            .dims
            .iter()
            .map(|d| (d.label_name(), d.value.clone()))
            .collect();
        let (component, metric) = split_key(row_key);
        rows.insert(
            (component.into(), metric.into(), severity, dims),
            (Layer::Tenant, value),
        );
        keys.push(KeyView {
            key: t.key.raw.clone(),
            value: Some(value),
            severity,
            state: if t.value.schedule.is_some() {
                KeyState::Scheduled
            } else if setting == Setting::Disabled {
                KeyState::Disabled
            } else {
                KeyState::Custom
            },
            origin,
            expires: t.value.expires,
            reason: t.value.reason.clone(),
        });
    }

    let state_filters = active_filters(doc, platform, at, &mut horizon, &mut events);
    let silent = silent_targets(doc, at, &mut horizon, &mut events);
    ResolvedTenant {
        name: doc.name.clone(),
        keys,
        rows: rows
            .into_iter()
            .map(
                |((component, metric, severity, dims), (_, value))| ThresholdRow {
                    component,
                    metric,
                    severity,
                    dims,
                    value,
                },
            )
            .collect(),
        key_states,
        state_filters,
        silent,
        dedup: doc.dedup.unwrap_or(true),
        metadata: metadata(doc),
        events,
        valid_until: horizon.until,
    }
}

fn platform_candidate(layer: Layer, v: &PlatformValue) -> Candidate<'_> {
    Candidate {
        layer,
        value: &v.value,
        origin: Origin {
            file: v.file.clone(),
            line: v.pos.line,
        },
    }
}

fn default_severity(setting: &Setting, tier_base: Option<&str>) -> Severity {
    match setting {
        Setting::Value {
            severity: Some(s), ..
        } => *s,
        _ if tier_base.is_some() => Severity::Critical,
        _ => Severity::Warning,
    }
}

fn layer_of(state: KeyState) -> Layer {
    match state {
        KeyState::Custom | KeyState::Scheduled | KeyState::Disabled => Layer::Tenant,
        KeyState::Profile => Layer::Profile,
        KeyState::Default | KeyState::Expired => Layer::Default,
    }
}

fn resolve_key(
    key: &str,
    candidates: Vec<Candidate<'_>>,
    tier_base: Option<&str>,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent>,
) -> KeyView {
    let mut expired = false;
    for c in candidates {
        horizon.consult(c.value);
        if c.value.is_expired(at) {
            expired = true;
            events.push(ConfigEvent {
                key: key.to_string(),
                event: "threshold_expired",
            });
            continue;
        }
        let setting = c.value.setting_at(at);
        let state = match (c.layer, setting) {
            _ if expired => KeyState::Expired,
            (Layer::Tenant, _) if c.value.schedule.is_some() => KeyState::Scheduled,
            (_, Setting::Disabled) => KeyState::Disabled,
            (Layer::Tenant, _) => KeyState::Custom,
            (Layer::Profile, _) => KeyState::Profile,
            (Layer::Default, _) => KeyState::Default,
        };
        return KeyView {
            key: key.to_string(),
            value: match setting {
                Setting::Value { value, .. } => Some(value),
                Setting::Disabled => None,
            },
            severity: default_severity(&setting, tier_base),
            state,
            origin: Some(c.origin),
            expires: c.value.expires,
            reason: c.value.reason.clone(),
        };
    }
    KeyView {
        key: key.to_string(),
        value: None,
        severity: default_severity(&Setting::Disabled, tier_base),
        state: if expired {
            KeyState::Expired
        } else {
            KeyState::Default
        },
        origin: None,
        expires: None,
        reason: None,
    }
}

/// A tenant that disables `<key>` also drops the inherited `<key>_critical` tier, unless it
/// set the tier itself: "disable" should silence the whole alert, not just its warning.
fn inherit_tier_disable(
    view: KeyView,
    doc: &TenantDoc,
    tier_base: Option<&str>,
    tenant_values: &BTreeMap<&str, &TenantThreshold>,
    at: DateTime<Utc>,
) -> KeyView {
    let Some(base) = tier_base else { return view };
    if tenant_values.contains_key(view.key.as_str()) {
        return view;
    }
    match tenant_values.get(base) {
        Some(t) if !t.value.is_expired(at) && t.value.setting_at(at) == Setting::Disabled => {
            KeyView {
                value: None,
                state: KeyState::Disabled,
                origin: Some(Origin {
                    file: doc.file.clone(),
                    line: t.pos.line,
                }),
                expires: None,
                reason: None,
                ..view
            }
        }
        _ => view,
    }
}

fn state_filter_value(view: &KeyView) -> Option<i8> {
    match (view.value, view.state) {
        (None, KeyState::Disabled | KeyState::Scheduled) => Some(-1),
        (None, _) => None,
        (Some(_), KeyState::Custom | KeyState::Scheduled) => Some(1),
        (Some(_), _) => Some(0),
    }
}

fn active_filters(
    doc: &TenantDoc,
    platform: &EffectivePlatform,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent>,
) -> Vec<(String, Severity)> {
    let mut out = Vec::new();
    for name in platform.filter_names() {
        let Some(filter) = platform.filter(&name) else {
            continue;
        };
        let mut enabled = filter.default_enabled;
        if let Some((toggle, _)) = doc.states.get(&name) {
            if let Some(e) = toggle.expires {
                horizon.note(e);
            }
            if toggle.is_expired(at) {
                // Every `_state_<filter>` is a maintenance-like switch; the key says which.
                let event = "maintenance_expired";
                events.push(ConfigEvent {
                    key: format!("_state_{name}"),
                    event,
                });
            } else {
                enabled = toggle.value;
            }
        }
        if enabled {
            out.push((name, filter.severity));
        }
    }
    out
}

fn silent_targets(
    doc: &TenantDoc,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent>,
) -> Vec<Severity> {
    let Some((silent, _)) = &doc.silent else {
        return Vec::new();
    };
    if let Some(e) = silent.expires {
        horizon.note(e);
    }
    if silent.is_expired(at) {
        events.push(ConfigEvent {
            key: "_silent_mode".into(),
            event: "silence_expired",
        });
        return Vec::new();
    }
    match silent.value {
        SilentMode::Warning => vec![Severity::Warning],
        SilentMode::Critical => vec![Severity::Critical],
        SilentMode::All => vec![Severity::Critical, Severity::Warning],
        SilentMode::Disable => Vec::new(),
    }
}

fn metadata(doc: &TenantDoc) -> Vec<(String, String)> {
    const FIXED: [&str; 3] = ["owner", "runbook_url", "tier"];
    let mut out: Vec<(String, String)> = FIXED
        .iter()
        .map(|k| {
            (
                k.to_string(),
                doc.metadata.get(*k).cloned().unwrap_or_default(),
            )
        })
        .collect();
    out.extend(
        doc.metadata
            .iter()
            .filter(|(k, _)| !FIXED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    out
}
