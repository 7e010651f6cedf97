//! Alert rules generated from a pack's key declarations.
//!
//! Every alert has the same shape, so it is written once here rather than by hand per key:
//!
//! ```text
//! ( signal  > on(tenant) group_left()  max by(tenant) (user_threshold{component, metric, severity})
//!   unless on(tenant) (user_state_filter{filter="maintenance"} == 1) )
//! * on(tenant) group_left(owner, runbook_url, tier) max by(tenant, owner, runbook_url, tier) (tenant_metadata_info)
//! ```
//!
//! The signal is the key's normalization expression written inline, or the series a recording
//! rule of the pack records when several keys share it (a recorded series costs a head series
//! per tenant). The threshold is looked up inline too (a recording rule per threshold costs a
//! series per tenant and key, and the reference layout that did it was only 2-3x cheaper than
//! per-tenant rules). `max`, never `sum`: replicas of the exporter serve identical series. A
//! disabled key has no `user_threshold` row, so the comparison is empty and nothing fires.
//! Maintenance and metadata apply to the comparison's result, the firing rows only.
//!
//! Every active alert costs Prometheus a template expansion per label and annotation on every
//! evaluation (Prometheus 2.42 parses each one as a Go template, even plain text). So the
//! alerts' fixed labels (`severity`, `metric_group`, `pack`) are set by `label_replace` in the
//! expression, on the firing rows only, instead of under `labels:`: that halves the expansions,
//! and at 1,000 tenants cut the packs' CPU by 13 and 33 % in two runs (docs/benchmarks.md). The
//! annotations hold only `$labels`/`$value` templates: no `query` (it ran a PromQL query per
//! active alert and evaluation to print the threshold).

use std::collections::BTreeMap;

use dynalert_config::names::split_key;

use crate::pack::{KeyDecl, Pack, Rule, RuleGroup};

/// The alert group of a pack: a warning alert per key, and a critical one per key that has a
/// critical default.
pub fn alert_group(pack: &Pack) -> RuleGroup {
    let mut rules = Vec::new();
    for (key, decl) in &pack.keys {
        rules.push(alert_rule(pack, key, decl, "warning"));
        if decl.default_critical.is_some() {
            rules.push(alert_rule(pack, key, decl, "critical"));
        }
    }
    RuleGroup {
        name: format!("{}-alerts", pack.pack),
        interval: None,
        rules,
    }
}

fn alert_rule(pack: &Pack, key: &str, decl: &KeyDecl, severity: &str) -> Rule {
    let name = match severity {
        "critical" => format!("{}Critical", decl.alert.name),
        _ => decl.alert.name.clone(),
    };
    let dimension = decl
        .dimension
        .as_ref()
        .map(|d| format!(" {{{{ $labels.{d} }}}}"))
        .unwrap_or_default();
    let annotations = BTreeMap::from([
        (
            "summary".to_string(),
            format!("{} (tenant {{{{ $labels.tenant }}}})", decl.alert.summary),
        ),
        (
            "description".to_string(),
            format!(
                "{}: tenant {{{{ $labels.tenant }}}}{dimension} is at {{{{ $value | humanize }}}} {}, {} its {severity} threshold ({}).",
                decl.alert.description,
                decl.unit,
                if decl.op.fires_below() {
                    "below"
                } else {
                    "above"
                },
                threshold_reference(key, severity, decl.dimension.as_deref()),
            ),
        ),
        (
            "runbook_url".to_string(),
            "{{ $labels.runbook_url }}".to_string(),
        ),
    ]);
    Rule {
        record: None,
        alert: Some(name),
        expr: with_labels(
            &alert_expr(pack, key, decl, severity),
            &alert_labels(pack, key, severity),
        ),
        for_: Some(decl.alert.for_.clone()),
        labels: BTreeMap::new(),
        annotations,
    }
}

/// The fixed labels of a key's alert at a severity.
pub fn alert_labels(pack: &Pack, key: &str, severity: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("severity".to_string(), severity.to_string()),
        // Alertmanager inhibits the warning while the critical alert of the same key fires.
        ("metric_group".to_string(), key.to_string()),
        ("pack".to_string(), pack.pack.clone()),
    ])
}

/// `expr` with each of `labels` set on its result by `label_replace` (an empty regex on the
/// absent empty source label always matches), all of them on the expression's last line:
///
/// ```text
/// label_replace(label_replace(
///   <expr>
/// , "metric_group", "k", "", ""), "severity", "warning", "", "")
/// ```
pub fn with_labels(expr: &str, labels: &BTreeMap<String, String>) -> String {
    let opening = "label_replace(".repeat(labels.len());
    let closing: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("\"{name}\", \"{value}\", \"\", \"\")"))
        .collect();
    format!(
        "{opening}\n{}\n, {}\n",
        indent(expr.trim_end(), "  "),
        closing.join(", ")
    )
}

/// The full alert expression for one key and severity.
///
/// Metadata is joined with `*` (an inner join): dynalert serves a `tenant_metadata_info` row
/// for every tenant it serves thresholds for, from the same scrape, so a tenant that has a
/// threshold always has the row (with empty labels when it set no metadata) and still alerts.
/// Pseudo-tenant packs skip the join: they must fire when dynalert serves nothing at all.
pub fn alert_expr(pack: &Pack, key: &str, decl: &KeyDecl, severity: &str) -> String {
    let guarded = format!(
        "(\n  {}\n  unless on(tenant) ({MAINTENANCE} == 1)\n)",
        indent(&comparison(pack, key, decl, severity), "  ").trim_start()
    );
    if pack.pseudo_tenant.is_some() {
        return guarded + "\n";
    }
    format!(
        "{guarded}\n* on(tenant) group_left(owner, runbook_url, tier)\n  \
         max by(tenant, owner, runbook_url, tier) (tenant_metadata_info)\n"
    )
}

/// The state filter that silences every alert of a tenant (served only while active).
const MAINTENANCE: &str = "user_state_filter{filter=\"maintenance\"}";

/// The key's signal as an operand: a recorded series as it is, an inline expression in
/// parentheses (it may hold operators that bind looser than the comparison, such as `or`).
pub fn signal_operand(decl: &KeyDecl) -> String {
    let signal = decl.signal.trim();
    if signal
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        signal.to_string()
    } else if signal.contains('\n') {
        format!("(\n{}\n)", indent(signal, "  "))
    } else {
        format!("({signal})")
    }
}

/// `signal OP threshold`, matched per tenant; with a dimension, per (tenant, label value)
/// first, falling back to the tenant-wide threshold for label values without their own row.
fn comparison(pack: &Pack, key: &str, decl: &KeyDecl, severity: &str) -> String {
    let (signal, op) = (signal_operand(decl), decl.op.as_str());
    match decl.dimension.as_deref() {
        None => {
            let mut wide = threshold(key, severity, "tenant", "");
            if let Some(tenant) = &pack.pseudo_tenant {
                let default = if severity == "critical" {
                    decl.default_critical
                } else {
                    Some(decl.default)
                };
                let default = default.unwrap_or(decl.default);
                // The default stands in only while dynalert serves nothing for the
                // pseudo-tenant (every replica down, or no such tenant configured); a
                // served tenant that disabled the key keeps it disabled.
                wide = format!(
                    "(\n  {wide}\n  or\n  (label_replace(vector({default}), \"tenant\", \"{tenant}\", \"\", \"\")\n     \
                     unless on(tenant) max by(tenant) (tenant_metadata_info))\n)"
                );
            }
            format!("{signal}\n  {op} on(tenant) group_left()\n{wide}")
        }
        Some(d) => dimensional_comparison(key, decl, severity, d, &signal),
    }
}

/// The per-label-value match with its tenant-wide fallback:
///
/// ```text
/// (signal > on(tenant, d) own) or ((signal unless on(tenant, d) own) > on(tenant) wide)
/// ```
///
/// When the signal carries the values in another label (`dimension_label`), the threshold
/// rows are renamed to it for the match and the firing rows back to `d` afterwards: both are
/// a few series, where renaming the signal would touch every live one.
fn dimensional_comparison(
    key: &str,
    decl: &KeyDecl,
    severity: &str,
    d: &str,
    signal: &str,
) -> String {
    let op = decl.op.as_str();
    let by_value = threshold(
        key,
        severity,
        &format!("tenant, {d}"),
        &format!(", {d}!=\"\""),
    );
    let wide = threshold(key, severity, "tenant", &format!(", {d}=\"\""));
    let (label, own) = match decl.dimension_label.as_deref() {
        Some(label) => (label, rename(&by_value, d, label)),
        None => (d, by_value),
    };
    let (first, second) = (indent(signal, "    "), indent(signal, "      "));
    // Parenthesized as a whole: `or` binds looser than the `unless` that follows.
    let matched = format!(
        "(\n  (\n{first}\n      {op} on(tenant, {label}) group_left()\n    {own}\n  )\n  or\n  (\n    \
         (\n{second}\n      unless on(tenant, {label}) {own}\n    )\n      {op} on(tenant) group_left()\n    \
         {wide}\n  )\n)"
    );
    if label == d {
        return matched;
    }
    format!(
        "max without({label}) (\n  label_replace(\n{},\n    \"{d}\", \"$1\", \"{label}\", \"(.*)\"\n  )\n)",
        indent(&matched, "    ")
    )
}

/// `expr` with `to` holding the values of its `from` label.
fn rename(expr: &str, from: &str, to: &str) -> String {
    format!("label_replace({expr}, \"{to}\", \"$1\", \"{from}\", \"(.*)\")")
}

/// The threshold lookup for a key: `max by(...) (user_threshold{...})`.
pub fn threshold(key: &str, severity: &str, by: &str, extra_matchers: &str) -> String {
    let (component, metric) = split_key(key);
    format!(
        "max by({by}) (user_threshold{{component=\"{component}\", metric=\"{metric}\", severity=\"{severity}\"{extra_matchers}}})"
    )
}

/// Where the alert's description tells the reader to find the threshold: the series to query,
/// with the alert's tenant filled in (a plain `$labels` template, no query per evaluation).
fn threshold_reference(key: &str, severity: &str, dimension: Option<&str>) -> String {
    let (component, metric) = split_key(key);
    let dimension = dimension
        .map(|d| format!(" with {d}=\"{{{{ $labels.{d} }}}}\", or else without {d}"))
        .unwrap_or_default();
    format!(
        "user_threshold{{tenant=\"{{{{ $labels.tenant }}}}\", component=\"{component}\", metric=\"{metric}\", severity=\"{severity}\"}}{dimension}"
    )
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
