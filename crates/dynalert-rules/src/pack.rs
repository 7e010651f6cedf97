//! The pack file format: the threshold keys a pack declares and its normalization rules.
//!
//! The pack is the single source of truth for its keys: the alert rules are generated from
//! the key declarations ([`crate::generate`]), so every declared key is read by a rule and no
//! rule reads a key the pack does not declare.

use std::collections::BTreeMap;

use dynalert_config::Comparison;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    pub pack: String,
    pub description: String,
    /// What produces the live metrics (for people; not used by the renderer).
    pub exporter: String,
    /// For packs whose signals are not per tenant (dynalert watching itself): the fixed
    /// tenant label the signals carry. Its thresholds fall back to the keys' defaults when
    /// no `user_threshold` row is served (e.g. while every dynalert replica is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pseudo_tenant: Option<String>,
    pub keys: BTreeMap<String, KeyDecl>,
    /// Normalization (recording) rule groups, as Prometheus rule groups.
    #[serde(default)]
    pub groups: Vec<RuleGroup>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyDecl {
    pub description: String,
    pub unit: String,
    pub default: f64,
    #[serde(default)]
    pub default_critical: Option<f64>,
    /// PromQL giving one series per tenant (labels: `tenant`, plus the dimension's label if
    /// one is declared: `dimension_label` when given, else `dimension`).
    pub signal: String,
    /// `>` (alert above the threshold) or `<` (alert below it).
    #[serde(default = "greater")]
    pub op: Comparison,
    /// A label of the signal that tenants may set per-value thresholds for.
    #[serde(default)]
    pub dimension: Option<String>,
    /// The signal's label that holds the dimension's values, when the exporter names it
    /// otherwise (redis_exporter's `key` for a `queue`). The rule renames the few threshold
    /// rows to it and the firing rows back, instead of renaming every live series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension_label: Option<String>,
    pub alert: AlertDecl,
}

fn greater() -> Comparison {
    Comparison::Greater
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertDecl {
    pub name: String,
    #[serde(rename = "for")]
    pub for_: String,
    pub summary: String,
    pub description: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    pub rules: Vec<Rule>,
}

/// A Prometheus recording or alerting rule, as it appears in a rule file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    pub expr: String,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("pack {pack}: {message}")]
    Invalid { pack: String, message: String },
    #[error("pack {pack}: {source}")]
    Yaml {
        pack: String,
        source: Box<serde_saphyr::Error>,
    },
}

impl Pack {
    /// Parses and checks one pack file.
    pub fn parse(name: &str, text: &str) -> Result<Pack, PackError> {
        let pack: Pack = serde_saphyr::from_str(text).map_err(|source| PackError::Yaml {
            pack: name.to_string(),
            source: Box::new(source),
        })?;
        pack.check(name)?;
        Ok(pack)
    }

    fn check(&self, name: &str) -> Result<(), PackError> {
        let invalid = |message: String| PackError::Invalid {
            pack: name.to_string(),
            message,
        };
        if self.pack != name {
            return Err(invalid(format!("declares itself as {:?}", self.pack)));
        }
        let mut alerts = std::collections::BTreeSet::new();
        for (key, decl) in &self.keys {
            if !dynalert_config::names::is_valid_key(key) || !key.contains('_') {
                return Err(invalid(format!("key {key:?} must be <component>_<metric>")));
            }
            if !matches!(decl.op, Comparison::Greater | Comparison::Less) {
                return Err(invalid(format!(
                    "key {key}: op must be > or <, not {}",
                    decl.op
                )));
            }
            if decl.alert.name.is_empty()
                || !decl.alert.name.chars().all(|c| c.is_ascii_alphanumeric())
            {
                return Err(invalid(format!(
                    "key {key}: alert name {:?} must be CamelCase",
                    decl.alert.name
                )));
            }
            for name in [
                decl.alert.name.clone(),
                format!("{}Critical", decl.alert.name),
            ] {
                if !alerts.insert(name.clone()) {
                    return Err(invalid(format!("alert {name} is generated twice")));
                }
            }
        }
        for rule in self.groups.iter().flat_map(|g| &g.rules) {
            if rule.record.is_none() || rule.alert.is_some() {
                return Err(invalid(format!(
                    "normalization groups hold recording rules only (alerts are generated from keys): {:?}",
                    rule.expr
                )));
            }
        }
        Ok(())
    }
}
