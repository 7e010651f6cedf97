//! The documents a conf.d file holds, as parsed from one file, before any cross-file checks.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::comparison::Comparison;
use crate::digest::{Canon, Digest};
use crate::value::{Severity, Threshold};
use crate::yaml::Pos;

/// Something that can carry an expiry and a reason (`{state: enable, expires, reason}`).
#[derive(Clone, Debug, PartialEq, Hash)]
pub struct Temporal<T> {
    pub value: T,
    pub expires: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

impl<T> Temporal<T> {
    pub fn is_expired(&self, at: DateTime<Utc>) -> bool {
        self.expires.is_some_and(|e| at >= e)
    }
}

/// A threshold key as written: `mysql_connections`, `mysql_connections_critical`,
/// `redis_queue_length{queue='email'}`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyRef {
    /// The key as written in the file (used in messages and as the map key).
    raw: Box<str>,
    /// Where the key name without dimensions lies in `raw` (one allocation per key: a
    /// large tree holds 150,000 of them).
    name: (u16, u16),
    dims: Box<[Dimension]>,
}

impl KeyRef {
    /// `name` must be a slice of `raw`.
    pub fn new(raw: &str, name: &str, dims: Vec<Dimension>) -> Self {
        let start = name.as_ptr() as usize - raw.as_ptr() as usize;
        let end = start + name.len();
        assert!(
            raw.get(start..end) == Some(name),
            "the name is a slice of the raw key"
        );
        let span = (
            u16::try_from(start).unwrap_or(0),
            u16::try_from(end).unwrap_or(0),
        );
        KeyRef {
            raw: raw.into(),
            name: span,
            dims: dims.into(),
        }
    }

    pub fn raw(&self) -> &str {
        &self.raw
    }

    pub fn name(&self) -> &str {
        &self.raw[usize::from(self.name.0)..usize::from(self.name.1)]
    }

    pub fn dims(&self) -> &[Dimension] {
        &self.dims
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dimension {
    pub label: String,
    pub value: String,
    /// `=~`: exported as label `<label>_re` so the rule can match it as a regex.
    pub regex: bool,
}

impl Dimension {
    pub fn label_name(&self) -> std::borrow::Cow<'_, str> {
        if self.regex {
            format!("{}_re", self.label).into()
        } else {
            self.label.as_str().into()
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct TenantThreshold {
    pub key: KeyRef,
    pub value: Threshold,
    pub pos: Pos,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SilentMode {
    Warning,
    Critical,
    All,
    Disable,
}

/// A tenant-owned Prometheus alerting rule (`_rules:`), kept for the generated-rules plane.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRule {
    pub alert: String,
    pub expr: String,
    pub for_: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub pos: Pos,
}

/// One tenant as defined in one file.
#[derive(Clone, Debug, PartialEq)]
pub struct TenantDoc {
    pub name: String,
    pub file: String,
    pub pos: Pos,
    pub thresholds: Vec<TenantThreshold>,
    pub profile: Option<(String, Pos)>,
    /// `_state_<filter>`: whether the tenant switched the filter on or off.
    pub states: BTreeMap<String, (Temporal<bool>, Pos)>,
    pub silent: Option<(Temporal<SilentMode>, Pos)>,
    pub dedup: Option<bool>,
    pub metadata: BTreeMap<String, String>,
    pub rules: Vec<TenantRule>,
    /// Digest of what the tenant configures (not where): see [`crate::digest`].
    pub digest: Digest,
}

impl TenantDoc {
    pub fn new(name: &str, file: &str, pos: Pos) -> Self {
        TenantDoc {
            name: name.to_string(),
            file: file.to_string(),
            pos,
            thresholds: Vec::new(),
            profile: None,
            states: BTreeMap::new(),
            silent: None,
            dedup: None,
            metadata: BTreeMap::new(),
            rules: Vec::new(),
            digest: [0; 16],
        }
    }

    /// The digest of what the tenant configures, in canonical form (see [`crate::digest`]).
    pub fn compute_digest(&self) -> Digest {
        Canon::digest(|c| {
            c.str(&self.name);
            let mut thresholds: Vec<&TenantThreshold> = self.thresholds.iter().collect();
            thresholds.sort_by(|a, b| a.key.raw().cmp(b.key.raw()));
            c.seq(thresholds.into_iter(), |c, t| {
                c.str(t.key.raw()).threshold(&t.value);
            });
            c.opt(self.profile.as_ref(), |c, (p, _)| {
                c.str(p);
            });
            c.seq(self.states.iter(), |c, (name, (toggle, _))| {
                c.str(name).bool(toggle.value);
                c.temporal(toggle);
            });
            c.opt(self.silent.as_ref(), |c, (mode, _)| {
                c.tag(match mode.value {
                    SilentMode::Warning => 1,
                    SilentMode::Critical => 2,
                    SilentMode::All => 3,
                    SilentMode::Disable => 4,
                });
                c.temporal(mode);
            });
            c.opt(self.dedup, |c, d| {
                c.bool(d);
            });
            c.seq(self.metadata.iter(), |c, (k, v)| {
                c.str(k).str(v);
            });
            c.seq(self.rules.iter(), |c, r| {
                c.str(&r.alert).str(&r.expr).opt(r.for_.as_ref(), |c, f| {
                    c.str(f);
                });
                c.seq(r.labels.iter(), |c, (k, v)| {
                    c.str(k).str(v);
                });
                c.seq(r.annotations.iter(), |c, (k, v)| {
                    c.str(k).str(v);
                });
            });
        })
    }
}

impl Canon {
    /// The expiry and reason of a [`Temporal`] (its value is the caller's to write).
    fn temporal<T>(&mut self, t: &Temporal<T>) -> &mut Self {
        self.opt(t.expires, |c, at| {
            c.instant(at);
        })
        .opt(t.reason.as_ref(), |c, r| {
            c.str(r);
        })
    }
}

/// A platform threshold (default or profile value) with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct PlatformValue {
    pub value: Threshold,
    pub file: String,
    pub pos: Pos,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StateFilter {
    pub severity: Severity,
    pub default_enabled: bool,
    pub reasons: Vec<String>,
}

impl StateFilter {
    /// `maintenance` exists for every tenant even when no platform file declares it.
    pub const BUILTIN_MAINTENANCE: StateFilter = StateFilter {
        severity: Severity::Info,
        default_enabled: false,
        reasons: Vec::new(),
    };
}

#[derive(Clone, Debug, PartialEq)]
pub struct CustomAlert {
    pub name: String,
    pub expr: String,
    pub op: Comparison,
    pub for_: Option<String>,
    pub description: Option<String>,
}

impl CustomAlert {
    /// The threshold key tenants set for this alert.
    pub fn key(&self) -> String {
        format!("custom_{}", self.name)
    }
}

/// Keyed values of a `defaults` block or of one profile, in document order.
pub type PlatformValues = Vec<(String, PlatformValue)>;

/// The platform blocks of one platform file, in document order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlatformDoc {
    pub defaults: PlatformValues,
    pub optional: Vec<(String, Pos)>,
    pub state_filters: Vec<(String, StateFilter, Pos)>,
    pub profiles: Vec<(String, PlatformValues, Pos)>,
    pub custom_alerts: Vec<(CustomAlert, Pos)>,
}

/// Everything one file says, plus the problems found in it alone.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedFile {
    /// Path relative to the conf.d root, `/`-separated.
    pub path: String,
    /// Directory part of `path` (`""` for the root).
    pub dir: String,
    pub is_platform: bool,
    pub platform: PlatformDoc,
    pub tenants: Vec<Arc<TenantDoc>>,
    pub diagnostics: Vec<crate::Diagnostic>,
    /// Whether an error makes the whole file unusable (its last good content is served instead).
    /// A forbidden block in a tenant file is an error that only drops that block.
    pub rejected: bool,
}
