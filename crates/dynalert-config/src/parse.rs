//! Turns one file's text into a [`ParsedFile`]: structure and values only. Checks that need
//! other files (known keys, profiles, duplicate tenants) happen in [`crate::compile`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::comparison::Comparison;
use crate::diag::Diagnostic;
use crate::doc::*;
use crate::names::{self, suggestion};
use crate::text_error::{DimensionError, TextError};
use crate::value::{self, Severity};
use crate::yaml::{self, Node, NodeKind, Pos};

const PLATFORM_BLOCKS: &[&str] = &[
    "defaults",
    "optional",
    "state_filters",
    "profiles",
    "custom_alerts",
    "tenants",
];
const RESERVED_TENANT_KEYS: &[&str] = &[
    "_profile",
    "_state_maintenance",
    "_silent_mode",
    "_severity_dedup",
    "_metadata",
    "_rules",
];
/// Labels a dimension may not use: the series' own identity, and the labels Prometheus gives
/// a meaning of their own in histograms (`le`) and summaries (`quantile`), which make an
/// exposition with them invalid.
const RESERVED_LABELS: &[&str] = &[
    "tenant",
    "component",
    "metric",
    "severity",
    "le",
    "quantile",
];

/// Whether a path (relative, `/`-separated) names a platform file: its basename starts with `_`.
pub fn is_platform_path(path: &str) -> bool {
    path.rsplit('/').next().is_some_and(|b| b.starts_with('_'))
}

/// Parses one file. Never panics, whatever the bytes.
pub fn parse_file(path: &str, source: &str) -> ParsedFile {
    parse_tree(path, yaml::parse(source))
}

/// Parses one file already read as YAML (or the syntax error reading it gave): what
/// [`parse_file`] does after reading, and what a document sent through the API goes through
/// with its own positions (see [`crate::codec::SentTenant`]).
pub(crate) fn parse_tree(path: &str, tree: Result<Option<Node>, yaml::SyntaxError>) -> ParsedFile {
    let mut cx = Cx {
        file: path.to_string(),
        diags: Vec::new(),
        rejected: false,
    };
    let is_platform = is_platform_path(path);
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d).to_string();
    let mut platform = PlatformDoc::default();
    let mut tenants = Vec::new();
    match tree {
        Err(e) => cx.reject(e.pos, format!("YAML syntax error: {}", e.message)),
        Ok(None) => {}
        Ok(Some(root)) => match &root.kind {
            NodeKind::Map(blocks) => {
                for (key, value) in unique_entries(&mut cx, blocks, None) {
                    cx.block(is_platform, key, value, &mut platform, &mut tenants);
                }
            }
            _ if root.is_null() => {}
            _ => cx.reject(
                root.pos,
                format!(
                    "the file must be a mapping of blocks such as \"tenants:\", found a {}",
                    root.kind_name()
                ),
            ),
        },
    }
    ParsedFile {
        path: path.to_string(),
        dir,
        is_platform,
        platform,
        tenants,
        diagnostics: cx.diags,
        rejected: cx.rejected,
    }
}

struct Cx {
    file: String,
    diags: Vec<Diagnostic>,
    rejected: bool,
}

/// Who a diagnostic is about, so messages can name the tenant and key.
#[derive(Clone, Copy)]
struct Subject<'a> {
    tenant: Option<&'a str>,
    key: Option<&'a str>,
}

impl Cx {
    fn reject(&mut self, pos: Pos, message: impl Into<String>) {
        self.reject_about(pos, message, None, None);
    }

    fn reject_about(
        &mut self,
        pos: Pos,
        message: impl Into<String>,
        tenant: Option<&str>,
        key: Option<&str>,
    ) {
        let d = Diagnostic::error(&self.file, pos, message);
        self.push_about(d, tenant, key);
        self.rejected = true;
    }

    fn reject_in(&mut self, s: Subject<'_>, pos: Pos, message: impl Into<String>) {
        self.reject_about(pos, message, s.tenant, s.key);
    }

    /// A finding that does not reject the file.
    fn warn_in(&mut self, s: Subject<'_>, pos: Pos, message: impl Into<String>) {
        let d = Diagnostic::warning(&self.file, pos, message);
        self.push_about(d, s.tenant, s.key);
    }

    fn push_about(&mut self, mut d: Diagnostic, tenant: Option<&str>, key: Option<&str>) {
        d.tenant = tenant.map(str::to_string);
        d.key = key.map(str::to_string);
        self.diags.push(d);
    }

    fn block(
        &mut self,
        is_platform: bool,
        key: &Node,
        value: &Node,
        platform: &mut PlatformDoc,
        tenants: &mut Vec<Arc<TenantDoc>>,
    ) {
        let name = key.as_str().unwrap_or_default();
        if !is_platform && name != "tenants" {
            // A tenant cannot give itself platform powers; the block is dropped, the rest loads.
            let what = if PLATFORM_BLOCKS.contains(&name) {
                format!(
                    "block {name:?} is only allowed in platform files (names starting with \"_\"); it was ignored"
                )
            } else {
                format!(
                    "unknown block {name:?}{}: a tenant file may only contain \"tenants:\"; it was ignored",
                    suggestion(name, ["tenants"])
                )
            };
            self.diags
                .push(Diagnostic::error(&self.file, key.pos, what));
            return;
        }
        match name {
            "tenants" => self.tenants(value, tenants),
            "defaults" => platform.defaults = self.platform_values(value, "defaults"),
            "optional" => platform.optional = self.optional(value),
            "state_filters" => platform.state_filters = self.state_filters(value),
            "profiles" => platform.profiles = self.profiles(value),
            "custom_alerts" => platform.custom_alerts = self.custom_alerts(value),
            other => self.reject(
                key.pos,
                format!(
                    "unknown block {other:?}{}; platform files may contain {}",
                    suggestion(other, PLATFORM_BLOCKS.iter().copied()),
                    PLATFORM_BLOCKS.join(", ")
                ),
            ),
        }
    }

    fn expect_map<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        s: Subject<'_>,
    ) -> Option<&'n [(Node, Node)]> {
        match &node.kind {
            NodeKind::Map(entries) => Some(entries),
            _ if node.is_null() => Some(&[]),
            _ => {
                self.reject_in(
                    s,
                    node.pos,
                    format!("{what} must be a mapping, found a {}", node.kind_name()),
                );
                None
            }
        }
    }

    fn tenants(&mut self, node: &Node, out: &mut Vec<Arc<TenantDoc>>) {
        let none = Subject {
            tenant: None,
            key: None,
        };
        let Some(entries) = self.expect_map(node, "\"tenants\"", none) else {
            return;
        };
        for (name_node, body) in unique_entries(self, entries, None) {
            let name = name_node.as_str().unwrap_or_default();
            if !names::is_valid_tenant(name) {
                self.reject_about(
                    name_node.pos,
                    format!("invalid tenant name {name:?}: use lowercase letters, digits, '.', '_' or '-' (at most 63, starting and ending with a letter or digit)"),
                    None,
                    None,
                );
                continue;
            }
            let mut doc = TenantDoc::new(name, &self.file, name_node.pos);
            let s = Subject {
                tenant: Some(name),
                key: None,
            };
            if let Some(keys) = self.expect_map(body, &format!("tenant {name:?}"), s) {
                for (key, value) in unique_entries(self, keys, Some(name)) {
                    self.tenant_entry(&mut doc, key, value);
                }
            }
            doc.digest = doc.compute_digest();
            out.push(Arc::new(doc));
        }
    }

    fn tenant_entry(&mut self, doc: &mut TenantDoc, key: &Node, value: &Node) {
        let raw = key.as_str().unwrap_or_default().to_string();
        let tenant = doc.name.clone();
        let s = Subject {
            tenant: Some(&tenant),
            key: Some(&raw),
        };
        if raw.starts_with('_') {
            self.reserved_entry(doc, &raw, key.pos, value, s);
            return;
        }
        let key_ref = match parse_key_ref(&raw) {
            Ok(k) => k,
            Err(message) => return self.reject_in(s, key.pos, message.to_string()),
        };
        if let Some(dim) = key_ref.dims().iter().find(|d| d.regex) {
            self.warn_in(
                s,
                key.pos,
                format!(
                    "served as label {}=\"{}\" for rules of your own: the shipped rule packs \
                     match exact values only (write {}='<value>' for them)",
                    dim.label_name(),
                    dim.value,
                    dim.label
                ),
            );
        }
        match value::parse_threshold(value) {
            Ok(threshold) => doc.thresholds.push(TenantThreshold {
                key: key_ref,
                value: threshold,
                pos: key.pos,
            }),
            Err(errors) => {
                for e in errors {
                    self.reject_in(s, e.pos, e.message);
                }
            }
        }
    }

    fn reserved_entry(
        &mut self,
        doc: &mut TenantDoc,
        raw: &str,
        pos: Pos,
        value: &Node,
        s: Subject<'_>,
    ) {
        if let Some(filter) = raw.strip_prefix("_state_") {
            if let Some(t) = self.temporal(value, "state", parse_on_off, s) {
                doc.states.insert(filter.to_string(), (t, pos));
            }
            return;
        }
        match raw {
            "_profile" => match value.as_str() {
                Some(p) if !value.is_null() => doc.profile = Some((p.to_string(), value.pos)),
                _ => self.reject_in(s, value.pos, "\"_profile\" must be a profile name"),
            },
            "_silent_mode" => {
                if let Some(t) = self.temporal(value, "mode", parse_silent_mode, s) {
                    doc.silent = Some((t, pos));
                }
            }
            "_severity_dedup" => match value.as_str().map(parse_on_off) {
                Some(Ok(on)) => doc.dedup = Some(on),
                _ => self.reject_in(
                    s,
                    value.pos,
                    "\"_severity_dedup\" must be enable or disable",
                ),
            },
            "_metadata" => doc.metadata = self.metadata(value, s),
            "_rules" => doc.rules = self.rules(value, s),
            other => self.reject_in(
                s,
                pos,
                format!(
                    "unknown reserved key {other:?}{}; reserved keys are {} and _state_<filter>",
                    suggestion(other, RESERVED_TENANT_KEYS.iter().copied()),
                    RESERVED_TENANT_KEYS.join(", ")
                ),
            ),
        }
    }

    /// `enable` or `{state: enable, expires: …, reason: …}` (field name varies).
    fn temporal<T>(
        &mut self,
        node: &Node,
        field: &str,
        parse: fn(&str) -> Result<T, TextError>,
        s: Subject<'_>,
    ) -> Option<Temporal<T>> {
        let entries = match &node.kind {
            NodeKind::Scalar { text, .. } => {
                return match parse(text) {
                    Ok(value) => Some(Temporal {
                        value,
                        expires: None,
                        reason: None,
                    }),
                    Err(m) => {
                        self.reject_in(s, node.pos, m.to_string());
                        None
                    }
                };
            }
            NodeKind::Map(entries) => entries,
            NodeKind::Seq(_) => {
                self.reject_in(
                    s,
                    node.pos,
                    format!("expected a value or {{{field}, expires, reason}}, found a list"),
                );
                return None;
            }
        };
        let (mut value, mut expires, mut reason) = (None, None, None);
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default();
            let text = v.as_str().unwrap_or_default();
            if name == field {
                match parse(text) {
                    Ok(x) => value = Some(x),
                    Err(m) => self.reject_in(s, v.pos, m.to_string()),
                }
            } else if name == "expires" {
                match value::parse_instant(text) {
                    Ok(t) => expires = Some(t),
                    Err(m) => self.reject_in(s, v.pos, m.to_string()),
                }
            } else if name == "reason" {
                reason = Some(text.to_string());
            } else {
                self.reject_in(
                    s,
                    k.pos,
                    format!(
                        "unknown field {name:?}{}; allowed: {field}, expires, reason",
                        suggestion(name, [field, "expires", "reason"])
                    ),
                );
            }
        }
        match value {
            Some(value) => Some(Temporal {
                value,
                expires,
                reason,
            }),
            None => {
                self.reject_in(s, node.pos, format!("missing \"{field}\""));
                None
            }
        }
    }

    fn metadata(&mut self, node: &Node, s: Subject<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Some(entries) = self.expect_map(node, "\"_metadata\"", s) else {
            return out;
        };
        for (k, v) in entries {
            let name = k.as_str().unwrap_or_default();
            if !names::is_valid_label_name(name) || RESERVED_LABELS.contains(&name) {
                self.reject_in(s, k.pos, format!("metadata key {name:?} cannot be a label name (letters, digits, '_'; not tenant/component/metric/severity)"));
                continue;
            }
            match &v.kind {
                NodeKind::Scalar { text, .. } => {
                    out.insert(
                        name.to_string(),
                        if v.is_null() {
                            String::new()
                        } else {
                            text.clone()
                        },
                    );
                }
                _ => self.reject_in(
                    s,
                    v.pos,
                    format!(
                        "metadata {name:?} must be a plain value, found a {}",
                        v.kind_name()
                    ),
                ),
            }
        }
        out
    }

    fn rules(&mut self, node: &Node, s: Subject<'_>) -> Vec<TenantRule> {
        let NodeKind::Seq(items) = &node.kind else {
            self.reject_in(s, node.pos, "\"_rules\" must be a list of alerting rules");
            return Vec::new();
        };
        let mut rules = Vec::new();
        for item in items {
            let Some(entries) = self.expect_map(item, "a rule", s) else {
                continue;
            };
            let mut rule = TenantRule {
                alert: String::new(),
                expr: String::new(),
                for_: None,
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
                pos: item.pos,
            };
            for (k, v) in entries {
                match k.as_str().unwrap_or_default() {
                    "alert" => rule.alert = v.as_str().unwrap_or_default().to_string(),
                    "expr" => rule.expr = v.as_str().unwrap_or_default().to_string(),
                    "for" => rule.for_ = v.as_str().map(str::to_string),
                    "labels" => rule.labels = self.string_map(v, s),
                    "annotations" => rule.annotations = self.string_map(v, s),
                    other => self.reject_in(s, k.pos, format!("unknown rule field {other:?}{}; allowed: alert, expr, for, labels, annotations", suggestion(other, ["alert", "expr", "for", "labels", "annotations"]))),
                }
            }
            if rule.alert.is_empty() || rule.expr.is_empty() {
                self.reject_in(s, item.pos, "a rule needs \"alert\" and \"expr\"");
                continue;
            }
            rules.push(rule);
        }
        rules
    }

    fn string_map(&mut self, node: &Node, s: Subject<'_>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(entries) = self.expect_map(node, "labels/annotations", s) {
            for (k, v) in entries {
                out.insert(
                    k.as_str().unwrap_or_default().to_string(),
                    v.as_str().unwrap_or_default().to_string(),
                );
            }
        }
        out
    }

    fn platform_values(&mut self, node: &Node, block: &str) -> PlatformValues {
        let none = Subject {
            tenant: None,
            key: None,
        };
        let Some(entries) = self.expect_map(node, &format!("\"{block}\""), none) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in unique_entries(self, entries, None) {
            let key = k.as_str().unwrap_or_default();
            let s = Subject {
                tenant: None,
                key: Some(key),
            };
            if key.contains('{') {
                self.reject_in(
                    s,
                    k.pos,
                    format!(
                        "dimensional key {key:?} is tenant-only: platform {block} set whole keys"
                    ),
                );
                continue;
            }
            if !names::is_valid_key(key) {
                self.reject_in(s, k.pos, format!("invalid key {key:?}: keys are lowercase letters, digits and '_', starting with a letter"));
                continue;
            }
            match value::parse_threshold(v) {
                Ok(value) => out.push((
                    key.to_string(),
                    PlatformValue {
                        value,
                        file: self.file.clone(),
                        pos: k.pos,
                    },
                )),
                Err(errors) => {
                    for e in errors {
                        self.reject_in(s, e.pos, e.message);
                    }
                }
            }
        }
        out
    }

    fn optional(&mut self, node: &Node) -> Vec<(String, Pos)> {
        let NodeKind::Seq(items) = &node.kind else {
            self.reject(node.pos, "\"optional\" must be a list of keys");
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            match item.as_str() {
                Some(k) if names::is_valid_key(k) => out.push((k.to_string(), item.pos)),
                _ => self.reject(
                    item.pos,
                    format!(
                        "invalid optional key {:?}",
                        item.as_str().unwrap_or_default()
                    ),
                ),
            }
        }
        out
    }

    fn state_filters(&mut self, node: &Node) -> Vec<(String, StateFilter, Pos)> {
        let none = Subject {
            tenant: None,
            key: None,
        };
        let Some(entries) = self.expect_map(node, "\"state_filters\"", none) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in unique_entries(self, entries, None) {
            let name = k.as_str().unwrap_or_default().to_string();
            if !names::is_valid_key(&name) {
                self.reject(k.pos, format!("invalid state filter name {name:?}"));
                continue;
            }
            let mut filter = StateFilter {
                severity: Severity::Warning,
                default_enabled: true,
                reasons: Vec::new(),
            };
            let Some(fields) = self.expect_map(v, &format!("state filter {name:?}"), none) else {
                continue;
            };
            for (fk, fv) in fields {
                let text = fv.as_str().unwrap_or_default();
                match fk.as_str().unwrap_or_default() {
                    "severity" => match Severity::parse(text) {
                        Ok(sev) => filter.severity = sev,
                        Err(m) => self.reject(fv.pos, m.to_string()),
                    },
                    "default_state" => match parse_on_off(text) {
                        Ok(on) => filter.default_enabled = on,
                        Err(m) => self.reject(fv.pos, m.to_string()),
                    },
                    "reasons" => match &fv.kind {
                        NodeKind::Seq(items) => filter.reasons = items.iter().filter_map(|i| i.as_str().map(str::to_string)).collect(),
                        _ => self.reject(fv.pos, "\"reasons\" must be a list"),
                    },
                    other => self.reject(fk.pos, format!("unknown state filter field {other:?}{}; allowed: severity, default_state, reasons", suggestion(other, ["severity", "default_state", "reasons"]))),
                }
            }
            out.push((name, filter, k.pos));
        }
        out
    }

    fn profiles(&mut self, node: &Node) -> Vec<(String, PlatformValues, Pos)> {
        let none = Subject {
            tenant: None,
            key: None,
        };
        let Some(entries) = self.expect_map(node, "\"profiles\"", none) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (k, v) in unique_entries(self, entries, None) {
            let name = k.as_str().unwrap_or_default().to_string();
            if !names::is_valid_tenant(&name) {
                self.reject(k.pos, format!("invalid profile name {name:?}: use lowercase letters, digits, '.', '_' or '-'"));
                continue;
            }
            let values = self.platform_values(v, &format!("profiles.{name}"));
            out.push((name, values, k.pos));
        }
        out
    }

    fn custom_alerts(&mut self, node: &Node) -> Vec<(CustomAlert, Pos)> {
        let NodeKind::Seq(items) = &node.kind else {
            self.reject(
                node.pos,
                "\"custom_alerts\" must be a list of {name, expr, op, for, description}",
            );
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in items {
            let none = Subject {
                tenant: None,
                key: None,
            };
            let Some(fields) = self.expect_map(item, "a custom alert", none) else {
                continue;
            };
            let mut alert = CustomAlert {
                name: String::new(),
                expr: String::new(),
                op: Comparison::Greater,
                for_: None,
                description: None,
            };
            let mut op_text = None;
            for (k, v) in fields {
                let text = v.as_str().unwrap_or_default().to_string();
                match k.as_str().unwrap_or_default() {
                    "name" => alert.name = text,
                    "expr" => alert.expr = text,
                    "op" => op_text = Some(text),
                    "for" => alert.for_ = Some(text),
                    "description" => alert.description = Some(text),
                    other => self.reject(k.pos, format!("unknown custom alert field {other:?}{}; allowed: name, expr, op, for, description", suggestion(other, ["name", "expr", "op", "for", "description"]))),
                }
            }
            if !names::is_valid_key(&alert.name) {
                self.reject(
                    item.pos,
                    format!(
                        "custom alert name {:?} must match ^[a-z][a-z0-9_]*$",
                        alert.name
                    ),
                );
            } else if alert.expr.trim().is_empty() {
                self.reject(
                    item.pos,
                    format!("custom alert {:?} needs an \"expr\"", alert.name),
                );
            } else {
                let op = match op_text {
                    None => Ok(Comparison::Greater),
                    Some(text) => Comparison::parse(&text).ok_or(text),
                };
                match op {
                    Ok(op) => {
                        alert.op = op;
                        out.push((alert, item.pos));
                    }
                    Err(text) => self.reject(
                        item.pos,
                        format!(
                            "custom alert {:?}: op {text:?} must be one of > >= < <= == !=",
                            alert.name
                        ),
                    ),
                }
            }
        }
        out
    }
}

/// Mapping entries with duplicates reported (YAML forbids them; we never pick one silently).
fn unique_entries<'n>(
    cx: &mut Cx,
    entries: &'n [(Node, Node)],
    tenant: Option<&str>,
) -> Vec<(&'n Node, &'n Node)> {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        let name = k.as_str().unwrap_or_default();
        if !seen.insert(name) {
            cx.reject_about(k.pos, format!("duplicate key {name:?}"), tenant, Some(name));
            continue;
        }
        out.push((k, v));
    }
    out
}

pub fn parse_on_off(text: &str) -> Result<bool, TextError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "enable" | "enabled" | "on" | "true" => Ok(true),
        "disable" | "disabled" | "off" | "false" => Ok(false),
        _ => Err(TextError::OnOff(text.to_string())),
    }
}

fn parse_silent_mode(text: &str) -> Result<SilentMode, TextError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "warning" => Ok(SilentMode::Warning),
        "critical" => Ok(SilentMode::Critical),
        "all" => Ok(SilentMode::All),
        "disable" | "disabled" | "off" => Ok(SilentMode::Disable),
        _ => Err(TextError::SilentMode(text.to_string())),
    }
}

/// Parses `name` or `name{label='v', other=~"re"}`.
pub fn parse_key_ref(raw: &str) -> Result<KeyRef, TextError> {
    if raw.len() > 1024 {
        let start = &raw[..raw.floor_char_boundary(40)];
        return Err(TextError::KeyTooLong(start.to_string()));
    }
    let (name, rest) = match raw.find('{') {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    let name = name.trim();
    if !names::is_valid_key(name) {
        return Err(TextError::KeyName(name.to_string()));
    }
    let dims = match rest {
        None => Vec::new(),
        Some(rest) => parse_dimensions(rest).map_err(|reason| TextError::Dimensions {
            key: raw.to_string(),
            reason,
        })?,
    };
    Ok(KeyRef::new(raw, name, dims))
}

fn parse_dimensions(text: &str) -> Result<Vec<Dimension>, DimensionError> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.trim_end().strip_suffix('}'))
        .ok_or(DimensionError::NotBraced)?;
    let mut chars = inner.chars().peekable();
    let mut dims: Vec<Dimension> = Vec::new();
    loop {
        while chars.next_if(|c| c.is_whitespace() || *c == ',').is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let label: String =
            std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_'))
                .collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(DimensionError::NoOperator(label));
        }
        let regex = chars.next_if_eq(&'~').is_some();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let quote = chars
            .next()
            .filter(|c| *c == '\'' || *c == '"')
            .ok_or(DimensionError::Unquoted)?;
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return Err(DimensionError::Unterminated),
                Some('\\') => value.extend(chars.next()),
                Some(c) if c == quote => break,
                Some(c) => value.push(c),
            }
        }
        if !names::is_valid_label_name(&label) || RESERVED_LABELS.contains(&label.as_str()) {
            return Err(DimensionError::ReservedLabel(label));
        }
        let dim = Dimension {
            label,
            value,
            regex,
        };
        if dims.iter().any(|d| d.label_name() == dim.label_name()) {
            return Err(DimensionError::Repeated(dim.label));
        }
        dims.push(dim);
    }
    if dims.is_empty() {
        return Err(DimensionError::Empty);
    }
    dims.sort();
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensional_keys() {
        let k = parse_key_ref("redis_queue_length{queue='email'}").unwrap();
        assert_eq!(k.name(), "redis_queue_length");
        assert_eq!(
            k.dims(),
            vec![Dimension {
                label: "queue".into(),
                value: "email".into(),
                regex: false
            }]
        );
        let k = parse_key_ref(r#"redis_queue_length{queue=~"batch-.*", db = '0'}"#).unwrap();
        assert_eq!(k.dims().len(), 2);
        assert_eq!(
            k.dims().iter().find(|d| d.regex).unwrap().label_name(),
            "queue_re"
        );
        for bad in [
            "x{}",
            "x{queue}",
            "x{tenant='a'}",
            "x{q='a",
            "x{q=a}",
            "X{q='a'}",
            "x{q='a', q='b'}",
        ] {
            assert!(parse_key_ref(bad).is_err(), "{bad}");
        }
        // `le` and `quantile` would make the exposition invalid (promtool check metrics).
        for label in ["le", "quantile"] {
            assert_eq!(
                parse_key_ref(&format!("x{{{label}='0.5'}}")),
                Err(TextError::Dimensions {
                    key: format!("x{{{label}='0.5'}}"),
                    reason: DimensionError::ReservedLabel(label.into()),
                })
            );
        }
    }

    #[test]
    fn forbidden_block_in_tenant_file_drops_only_that_block() {
        let f = parse_file(
            "db-a.yaml",
            "defaults:\n  x_y: 1\ntenants:\n  db-a:\n    x_y: 2\n",
        );
        assert!(!f.rejected);
        assert_eq!(f.tenants.len(), 1);
        assert!(f.platform.defaults.is_empty());
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!((f.diagnostics[0].line, f.diagnostics[0].col), (1, 1));
    }

    #[test]
    fn value_errors_name_line_tenant_and_key() {
        let f = parse_file(
            "t.yaml",
            "tenants:\n  db-a:\n    mysql_connections: eighty\n",
        );
        assert!(f.rejected);
        let d = &f.diagnostics[0];
        assert_eq!((d.line, d.col), (3, 24));
        assert_eq!(d.tenant.as_deref(), Some("db-a"));
        assert_eq!(d.key.as_deref(), Some("mysql_connections"));
        assert_eq!(
            d.to_string(),
            "t.yaml:3:24: error: tenant \"db-a\", key \"mysql_connections\": \"eighty\" is not a number (expected e.g. 80, 0.5 or \"disable\")"
        );
    }

    #[test]
    fn reserved_keys() {
        let f = parse_file(
            "t.yaml",
            "tenants:\n  a:\n    _profile: big\n    _state_maintenance: {state: enable, expires: '2030-01-01T00:00:00Z', reason: r}\n    _silent_mode: all\n    _severity_dedup: disable\n    _metadata: {owner: team, tier: gold}\n    _rules:\n      - {alert: A, expr: up == 0}\n",
        );
        assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
        let t = &f.tenants[0];
        assert_eq!(t.profile.as_ref().unwrap().0, "big");
        assert!(t.states["maintenance"].0.value);
        assert_eq!(t.silent.as_ref().unwrap().0.value, SilentMode::All);
        assert_eq!(t.dedup, Some(false));
        assert_eq!(t.metadata["owner"], "team");
        assert_eq!(t.rules.len(), 1);
        let f = parse_file("t.yaml", "tenants:\n  a:\n    _profil: big\n");
        assert!(
            f.diagnostics[0]
                .message
                .contains("did you mean \"_profile\"")
        );
    }

    #[test]
    fn platform_blocks() {
        let f = parse_file(
            "_defaults.yaml",
            "defaults:\n  mysql_connections: 80\noptional: [mongodb_lag]\nstate_filters:\n  maintenance: {severity: info, default_state: disable}\nprofiles:\n  big: {mysql_connections: 300}\ncustom_alerts:\n  - {name: queue_age, expr: 'max by(tenant) (x)', op: '>'}\ntenants:\n  a: {}\n",
        );
        assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
        assert_eq!(f.platform.defaults.len(), 1);
        assert_eq!(f.platform.optional.len(), 1);
        assert!(!f.platform.state_filters[0].1.default_enabled);
        assert_eq!(f.platform.profiles[0].1.len(), 1);
        assert_eq!(f.platform.custom_alerts[0].0.key(), "custom_queue_age");
        assert_eq!(f.tenants.len(), 1);
    }

    #[test]
    fn syntax_errors_reject_the_file() {
        let f = parse_file("t.yaml", "tenants:\n  a: [\n");
        assert!(f.rejected);
        assert!(f.diagnostics[0].message.starts_with("YAML syntax error"));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let text = String::from_utf8_lossy(&bytes);
            let _ = parse_file("_x.yaml", &text);
            let _ = parse_file("x.yaml", &text);
        }
    }
}
