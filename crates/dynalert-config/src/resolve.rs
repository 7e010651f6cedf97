//! Resolution: what each tenant's thresholds are at one instant.
//!
//! Per key the first layer that has a live (not expired) value wins: tenant → profile →
//! deepest platform default. Schedules are evaluated at the instant; expiries are reported as
//! events while the expired entry stays in the files.
//!
//! The result borrows from the model: resolution runs for every tenant on every render, so
//! it allocates as little as it can.

use std::borrow::Cow;
use std::cmp::Reverse;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::compile::{EffectivePlatform, TenantEntry};
use crate::doc::{PlatformValue, SilentMode, TenantDoc, TenantThreshold};
use crate::schedule::next_minute;
use crate::series::{Series, severity_of};
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
    /// Another key of a more specific layer serves the same series (a tenant's `"70:critical"`
    /// over the platform's `<key>_critical`): this key serves no row.
    Overridden,
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
            KeyState::Overridden => "overridden",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Origin<'a> {
    pub file: &'a str,
    pub line: u32,
}

/// One key of one tenant as a person wants to see it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyView<'a> {
    pub key: &'a str,
    /// `None` when no row is exported (disabled, overridden, or no layer sets a value).
    pub value: Option<f64>,
    pub severity: Severity,
    pub state: KeyState,
    pub origin: Option<Origin<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
}

/// One `user_threshold` series.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThresholdRow<'a> {
    pub component: &'a str,
    pub metric: &'a str,
    pub severity: Severity,
    /// Dimension labels, sorted by label name.
    pub dims: Vec<(Cow<'a, str>, &'a str)>,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConfigEvent<'a> {
    pub key: Cow<'a, str>,
    pub event: &'static str,
}

/// Everything exported for one tenant at one instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResolvedTenant<'a> {
    pub name: &'a str,
    pub keys: Vec<KeyView<'a>>,
    pub rows: Vec<ThresholdRow<'a>>,
    /// `user_threshold_state_filter`: 1 custom, 0 default, -1 disabled.
    pub key_states: Vec<(&'a str, i8)>,
    /// Active state filters with their severity.
    pub state_filters: Vec<(&'a str, Severity)>,
    pub silent: Vec<Severity>,
    pub dedup: bool,
    /// owner, runbook_url, tier first (empty when unset), then any extra metadata sorted.
    pub metadata: Vec<(&'a str, &'a str)>,
    pub events: Vec<ConfigEvent<'a>>,
    /// The instant after which this resolution may change (a schedule minute or an expiry).
    #[serde(skip)]
    pub valid_until: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Tenant,
    Profile,
    Default,
}

struct Candidate<'a> {
    layer: Layer,
    value: &'a Threshold,
    origin: Origin<'a>,
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
        if let Some(e) = threshold.expires() {
            self.note(e);
        }
        if threshold.schedule().is_some() {
            self.note(next_minute(self.at));
        }
    }
}

/// Resolves one tenant at `at`.
pub fn resolve_tenant(entry: &TenantEntry, at: DateTime<Utc>) -> ResolvedTenant<'_> {
    let doc: &TenantDoc = &entry.doc;
    let platform: &EffectivePlatform = &entry.platform;
    let mut horizon = Horizon { at, until: None };
    let mut events = Vec::new();

    // The tenant's whole-key values, sorted for lookup.
    let mut tenant_values: Vec<(&str, &TenantThreshold)> = doc
        .thresholds
        .iter()
        .filter(|t| t.key.dims().is_empty())
        .map(|t| (t.key.name(), t))
        .collect();
    tenant_values.sort_unstable_by_key(|(k, _)| *k);
    let tenant_value = |key: &str| {
        tenant_values
            .binary_search_by_key(&key, |(k, _)| k)
            .ok()
            .map(|i| tenant_values[i].1)
    };
    let profile = doc
        .profile
        .as_ref()
        .and_then(|(p, _)| platform.profiles.get(p));

    // Every key the tenant has: declared ones, plus tiers and profile keys set on top.
    // All three lists are sorted already: merge rather than sort.
    let declared = platform.declared_keys().iter().map(String::as_str);
    let mut universe = merge_sorted(declared, tenant_values.iter().map(|(k, _)| *k));
    if let Some(p) = profile {
        universe = merge_sorted(universe.into_iter(), p.keys().map(String::as_str));
    }

    let mut keys = Vec::with_capacity(universe.len() + doc.thresholds.len());
    let mut rows: Vec<(ThresholdRow<'_>, Rank<'_>, usize)> = Vec::with_capacity(universe.len());
    let mut key_states = Vec::with_capacity(universe.len());
    // The universe is in key order, and so are the tenant's values, the profile and the
    // defaults: each is walked alongside it rather than searched for every key.
    let mut own_values = tenant_values.iter().map(|(k, t)| (*k, *t)).peekable();
    let mut profile_values = profile.map(|p| p.iter().map(|(k, v)| (k.as_str(), v)).peekable());
    let mut default_values = platform
        .defaults
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .peekable();
    for key in universe {
        let own = seek(&mut own_values, key);
        let tenant = own.map(|t| Candidate {
            layer: Layer::Tenant,
            value: &t.value,
            origin: Origin {
                file: &doc.file,
                line: t.pos.line,
            },
        });
        let from_profile = profile_values
            .as_mut()
            .and_then(|values| seek(values, key))
            .map(|v| platform_candidate(Layer::Profile, v));
        let from_default =
            seek(&mut default_values, key).map(|v| platform_candidate(Layer::Default, v));
        let tier_base = platform.tier_base(key);
        let (view, layer) = resolve_key(
            key,
            [tenant, from_profile, from_default],
            tier_base,
            at,
            &mut horizon,
            &mut events,
        );
        let view = inherit_tier_disable(
            view,
            doc,
            tier_base,
            own.is_some(),
            tier_base.and_then(tenant_value),
            at,
        );
        if let (Some(value), Some(origin)) = (view.value, &view.origin) {
            let series = Series::of(key, tier_base, &[], view.severity);
            // The view is pushed below (it has an origin): `keys.len()` is its index.
            rows.push((
                ThresholdRow::new(series, value),
                Rank::of(layer, origin.file),
                keys.len(),
            ));
        }
        if let Some(state) = state_filter_value(&view) {
            key_states.push((key, state));
        }
        // A key no layer sets (an optional key the tenant left alone) has no effective
        // threshold: nothing to show.
        if view.origin.is_some() || view.state == KeyState::Expired {
            keys.push(view);
        }
    }

    for t in doc.thresholds.iter().filter(|t| !t.key.dims().is_empty()) {
        let (view, row) = resolve_dimension(t, doc, platform, at, &mut horizon, &mut events);
        rows.extend(row.map(|r| (r, Rank::of(Layer::Tenant, &doc.file), keys.len())));
        keys.push(view);
    }
    let rows = unique_rows(rows, &mut keys);

    ResolvedTenant {
        name: &doc.name,
        keys,
        rows,
        key_states,
        state_filters: active_filters(doc, platform, at, &mut horizon, &mut events),
        silent: silent_targets(doc, at, &mut horizon, &mut events),
        dedup: doc.dedup.unwrap_or(true),
        metadata: metadata(doc),
        events,
        valid_until: horizon.until,
    }
}

/// The value of `key` in a list sorted by key, advanced past every key before it: called with
/// ascending keys, it walks the list once.
fn seek<'a, V>(
    values: &mut std::iter::Peekable<impl Iterator<Item = (&'a str, V)>>,
    key: &str,
) -> Option<V> {
    while values.next_if(|(k, _)| *k < key).is_some() {}
    values.next_if(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Merges two sorted lists of keys into one sorted list without duplicates.
fn merge_sorted<'a>(
    a: impl Iterator<Item = &'a str>,
    b: impl Iterator<Item = &'a str>,
) -> Vec<&'a str> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let mut out = Vec::with_capacity(a.size_hint().0 + b.size_hint().0);
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) if x < y => a.next(),
            (Some(x), Some(y)) if x > y => b.next(),
            (Some(_), Some(_)) => {
                b.next();
                a.next()
            }
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}

/// How specific the source of a row is. Where keys of different layers serve the same series
/// (a tenant's `"70:critical"` and the platform's `<key>_critical`), the most specific wins:
/// the tenant over its profile over the defaults and, among platform files, the deeper one or,
/// in one directory, the later one (the order in which they override each other per key).
/// Two keys of one layer never do: the checks refuse them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank<'a> {
    layer: Layer,
    depth: Reverse<usize>,
    file: Reverse<&'a str>,
}

impl<'a> Rank<'a> {
    fn of(layer: Layer, file: &'a str) -> Self {
        Rank {
            layer,
            depth: Reverse(file.matches('/').count()),
            file: Reverse(file),
        }
    }
}

/// Sorts rows by their labels and keeps, per series, the row of the most specific source
/// (see [`Rank`]); the views of the keys whose rows lost say so, so that what a person reads
/// is what is served.
fn unique_rows<'a>(
    mut rows: Vec<(ThresholdRow<'a>, Rank<'a>, usize)>,
    keys: &mut [KeyView<'a>],
) -> Vec<ThresholdRow<'a>> {
    let order = |(a, ra, _): &(ThresholdRow<'_>, Rank<'_>, usize),
                 (b, rb, _): &(ThresholdRow<'_>, Rank<'_>, usize)| {
        same_series(a, b).then(ra.cmp(rb))
    };
    // Rows come in key order, which is nearly always series order already.
    if !rows.is_sorted_by(|a, b| order(a, b).is_le()) {
        rows.sort_by(order);
    }
    let mut unique: Vec<ThresholdRow<'a>> = Vec::with_capacity(rows.len());
    for (row, _, view) in rows {
        if unique
            .last()
            .is_some_and(|kept| same_series(kept, &row).is_eq())
        {
            let view = &mut keys[view];
            view.value = None;
            view.state = KeyState::Overridden;
        } else {
            unique.push(row);
        }
    }
    unique
}

impl<'a> ThresholdRow<'a> {
    fn new(series: Series<'a>, value: f64) -> Self {
        ThresholdRow {
            component: series.component,
            metric: series.metric,
            severity: series.severity,
            dims: series.dims,
            value,
        }
    }
}

/// Orders rows by their labels (equal: the same series).
fn same_series(a: &ThresholdRow<'_>, b: &ThresholdRow<'_>) -> std::cmp::Ordering {
    (a.component, a.metric, a.severity)
        .cmp(&(b.component, b.metric, b.severity))
        .then_with(|| a.dims.cmp(&b.dims))
}

fn platform_candidate(layer: Layer, v: &PlatformValue) -> Candidate<'_> {
    Candidate {
        layer,
        value: &v.value,
        origin: Origin {
            file: &v.file,
            line: v.pos.line,
        },
    }
}

fn resolve_key<'a>(
    key: &'a str,
    candidates: [Option<Candidate<'a>>; 3],
    tier_base: Option<&str>,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent<'a>>,
) -> (KeyView<'a>, Layer) {
    let mut expired = false;
    for c in candidates.into_iter().flatten() {
        horizon.consult(c.value);
        if c.value.is_expired(at) {
            expired = true;
            events.push(ConfigEvent {
                key: Cow::Borrowed(key),
                event: "threshold_expired",
            });
            continue;
        }
        let setting = c.value.setting_at(at);
        let state = match (c.layer, setting) {
            _ if expired => KeyState::Expired,
            (Layer::Tenant, _) if c.value.schedule().is_some() => KeyState::Scheduled,
            (_, Setting::Disabled) => KeyState::Disabled,
            (Layer::Tenant, _) => KeyState::Custom,
            (Layer::Profile, _) => KeyState::Profile,
            (Layer::Default, _) => KeyState::Default,
        };
        let view = KeyView {
            key,
            value: match setting {
                Setting::Value { value, .. } => Some(value),
                Setting::Disabled => None,
            },
            severity: severity_of(&setting, tier_base),
            state,
            origin: Some(c.origin),
            expires: c.value.expires(),
            reason: c.value.reason(),
        };
        return (view, c.layer);
    }
    let view = KeyView {
        key,
        value: None,
        severity: severity_of(&Setting::Disabled, tier_base),
        state: if expired {
            KeyState::Expired
        } else {
            KeyState::Default
        },
        origin: None,
        expires: None,
        reason: None,
    };
    (view, Layer::Default)
}

/// A tenant that disables `<key>` also drops the inherited `<key>_critical` tier, unless it
/// set the tier itself: "disable" should silence the whole alert, not just its warning.
fn inherit_tier_disable<'a>(
    view: KeyView<'a>,
    doc: &'a TenantDoc,
    tier_base: Option<&str>,
    tenant_set_tier: bool,
    tenant_base: Option<&'a TenantThreshold>,
    at: DateTime<Utc>,
) -> KeyView<'a> {
    if tier_base.is_none() || tenant_set_tier {
        return view;
    }
    match tenant_base {
        Some(t) if !t.value.is_expired(at) && t.value.setting_at(at) == Setting::Disabled => {
            KeyView {
                value: None,
                state: KeyState::Disabled,
                origin: Some(Origin {
                    file: &doc.file,
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

/// A dimensional entry (tenant-only): its view and, unless expired, its row.
fn resolve_dimension<'a>(
    t: &'a TenantThreshold,
    doc: &'a TenantDoc,
    platform: &EffectivePlatform,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent<'a>>,
) -> (KeyView<'a>, Option<ThresholdRow<'a>>) {
    horizon.consult(&t.value);
    let tier_base = platform.tier_base(t.key.name());
    let origin = Some(Origin {
        file: &doc.file,
        line: t.pos.line,
    });
    if t.value.is_expired(at) {
        events.push(ConfigEvent {
            key: Cow::Borrowed(t.key.raw()),
            event: "threshold_expired",
        });
        let view = KeyView {
            key: t.key.raw(),
            value: None,
            severity: severity_of(&t.value.base, tier_base),
            state: KeyState::Expired,
            origin,
            expires: t.value.expires(),
            reason: t.value.reason(),
        };
        return (view, None);
    }
    let setting = t.value.setting_at(at);
    let severity = severity_of(&setting, tier_base);
    // A disabled dimension must still shadow the tenant-wide threshold for its label value,
    // so it is exported as +Inf (a comparison that never fires).
    let value = match setting {
        Setting::Value { value, .. } => value,
        Setting::Disabled => f64::INFINITY,
    };
    let series = Series::of(t.key.name(), tier_base, t.key.dims(), severity);
    let state = if t.value.schedule().is_some() {
        KeyState::Scheduled
    } else if setting == Setting::Disabled {
        KeyState::Disabled
    } else {
        KeyState::Custom
    };
    let view = KeyView {
        key: t.key.raw(),
        value: Some(value),
        severity,
        state,
        origin,
        expires: t.value.expires(),
        reason: t.value.reason(),
    };
    (view, Some(ThresholdRow::new(series, value)))
}

fn state_filter_value(view: &KeyView<'_>) -> Option<i8> {
    match (view.value, view.state) {
        (None, KeyState::Disabled | KeyState::Scheduled) => Some(-1),
        (None, _) => None,
        (Some(_), KeyState::Custom | KeyState::Scheduled) => Some(1),
        (Some(_), _) => Some(0),
    }
}

fn active_filters<'a>(
    doc: &'a TenantDoc,
    platform: &'a EffectivePlatform,
    at: DateTime<Utc>,
    horizon: &mut Horizon,
    events: &mut Vec<ConfigEvent<'a>>,
) -> Vec<(&'a str, Severity)> {
    let mut out = Vec::new();
    for name in platform.filter_names() {
        let Some(filter) = platform.filter(name) else {
            continue;
        };
        let mut enabled = filter.default_enabled;
        if let Some((toggle, _)) = doc.states.get(name) {
            if let Some(e) = toggle.expires {
                horizon.note(e);
            }
            if toggle.is_expired(at) {
                // Every `_state_<filter>` is a maintenance-like switch; the key says which.
                let key = Cow::Owned(format!("_state_{name}"));
                events.push(ConfigEvent {
                    key,
                    event: "maintenance_expired",
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
    events: &mut Vec<ConfigEvent<'_>>,
) -> Vec<Severity> {
    let Some((silent, _)) = &doc.silent else {
        return Vec::new();
    };
    if let Some(e) = silent.expires {
        horizon.note(e);
    }
    if silent.is_expired(at) {
        events.push(ConfigEvent {
            key: Cow::Borrowed("_silent_mode"),
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

fn metadata(doc: &TenantDoc) -> Vec<(&str, &str)> {
    const FIXED: [&str; 3] = ["owner", "runbook_url", "tier"];
    let mut out: Vec<(&str, &str)> = FIXED
        .iter()
        .map(|k| (*k, doc.metadata.get(*k).map_or("", String::as_str)))
        .collect();
    out.extend(
        doc.metadata
            .iter()
            .filter(|(k, _)| !FIXED.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    out
}
