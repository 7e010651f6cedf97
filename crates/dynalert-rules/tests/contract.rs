//! The contract between the packs and the threshold model: every `user_threshold` selector in
//! every rendered rule names a (component, metric) that the model produces for a key the
//! pack declares, and every declared key is read by some rule. Also: the catalogue's minimum
//! sizes, and byte-stable rendering.

use std::collections::BTreeSet;

use dynalert_config::names::split_key;
use dynalert_rules::{Format, RenderOptions, catalogue, render};
use promql_parser::label::MatchOp;
use promql_parser::parser::{Expr, VectorSelector};
use promql_parser::util::{ExprVisitor, walk_expr};

/// Collects every vector selector of an expression.
struct Selectors(Vec<VectorSelector>);

impl ExprVisitor for Selectors {
    type Error = String;
    fn pre_visit(&mut self, expr: &Expr) -> Result<bool, String> {
        match expr {
            Expr::VectorSelector(vs) => self.0.push(vs.clone()),
            Expr::MatrixSelector(ms) => self.0.push(ms.vs.clone()),
            _ => {}
        }
        Ok(true)
    }
}

fn selectors(expr: &str) -> Vec<VectorSelector> {
    let parsed = promql_parser::parser::parse(expr).unwrap_or_else(|e| panic!("{e}\n{expr}"));
    let mut found = Selectors(Vec::new());
    walk_expr(&mut found, &parsed).unwrap();
    found.0
}

fn equal_matcher<'a>(vs: &'a VectorSelector, label: &str) -> Option<&'a str> {
    vs.matchers
        .matchers
        .iter()
        .find(|m| m.name == label && m.op == MatchOp::Equal)
        .map(|m| m.value.as_str())
}

#[test]
fn every_threshold_selector_names_a_declared_key_and_every_key_is_read() {
    for pack in catalogue() {
        let declared: BTreeSet<(&str, &str)> = pack.keys.keys().map(|k| split_key(k)).collect();
        let mut read = BTreeSet::new();
        let (recording, alerts) =
            dynalert_rules::render::pack_groups(pack, &RenderOptions::default());
        for rule in recording.iter().chain(&alerts).flat_map(|g| &g.rules) {
            for vs in selectors(&rule.expr) {
                if vs.name.as_deref() != Some("user_threshold") {
                    continue;
                }
                let component = equal_matcher(&vs, "component").expect("component matcher");
                let metric = equal_matcher(&vs, "metric").expect("metric matcher");
                assert!(
                    declared.contains(&(component, metric)),
                    "pack {}: rule {:?} reads {component}/{metric}, which no declared key produces",
                    pack.pack,
                    rule.alert.as_ref().or(rule.record.as_ref())
                );
                read.insert((component.to_string(), metric.to_string()));
            }
        }
        for (component, metric) in declared {
            assert!(
                read.contains(&(component.to_string(), metric.to_string())),
                "pack {}: key {component}_{metric} is declared but no rule reads it",
                pack.pack
            );
        }
    }
}

#[test]
fn signals_use_series_the_pack_records_or_exporter_metrics() {
    for pack in catalogue() {
        let recorded: BTreeSet<&str> = pack
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| r.record.as_deref())
            .collect();
        for (key, decl) in &pack.keys {
            for vs in selectors(&decl.signal) {
                let name = vs.name.clone().unwrap_or_default();
                if name.contains(':') {
                    assert!(
                        recorded.contains(name.as_str()),
                        "pack {}: key {key} reads {name}, which the pack does not record",
                        pack.pack
                    );
                }
            }
        }
    }
}

/// The catalogue's minimum sizes (RULE-PACKS.md): normalized signals and alerts per pack. A
/// normalized signal is a key's signal (an inline expression, or a series the pack records
/// because several rules read it) or a series the pack records for something else (the
/// kubernetes pack's waiting reasons, read by state filters).
#[test]
fn catalogue_meets_the_minimum_sizes() {
    let minimum = [
        ("mariadb", 7, 8),
        ("kubernetes", 5, 4),
        ("redis", 7, 6),
        ("mongodb", 7, 6),
        ("elasticsearch", 7, 7),
        ("platform", 0, 4),
    ];
    for (name, signals, alerts) in minimum {
        let pack = catalogue()
            .iter()
            .find(|p| p.pack == name)
            .unwrap_or_else(|| panic!("pack {name} missing"));
        let normalized: BTreeSet<&str> = pack
            .keys
            .values()
            .map(|d| d.signal.trim())
            .chain(
                pack.groups
                    .iter()
                    .flat_map(|g| &g.rules)
                    .filter_map(|r| r.record.as_deref()),
            )
            .collect();
        let generated = dynalert_rules::generate::alert_group(pack).rules.len();
        assert!(
            normalized.len() >= signals,
            "{name}: {} normalized signals, want ≥ {signals}",
            normalized.len()
        );
        assert!(
            generated >= alerts,
            "{name}: {generated} alerts, want ≥ {alerts}"
        );
    }
}

/// Every recording rule of a pack is read: by a key's signal, or (kubernetes' waiting reasons)
/// declared as the input of something else in a comment. A recorded series that nothing reads
/// costs a head series per tenant for nothing.
#[test]
fn every_recorded_series_is_read() {
    for pack in catalogue() {
        let read: BTreeSet<String> = pack
            .keys
            .values()
            .flat_map(|d| selectors(&d.signal))
            .filter_map(|vs| vs.name)
            .collect();
        for record in pack
            .groups
            .iter()
            .flat_map(|g| &g.rules)
            .filter_map(|r| r.record.as_deref())
        {
            let for_state_filters =
                pack.pack == "kubernetes" && record.starts_with("tenant_reason:");
            assert!(
                read.contains(record) || for_state_filters,
                "pack {}: {record} is recorded but no key reads it",
                pack.pack
            );
        }
    }
}

/// Alert annotations are expanded for every active alert on every evaluation: they hold
/// `$labels` and `$value` templates only, never a `query` (a PromQL query per active alert and
/// evaluation).
/// A `dimension_label` names where the signal keeps a declared dimension's values; the
/// signal must keep that label (its `by` clause names it) for the rule to match on it.
#[test]
fn dimension_labels_belong_to_a_dimension_the_signal_keeps() {
    for pack in catalogue() {
        for (key, decl) in &pack.keys {
            let Some(label) = decl.dimension_label.as_deref() else {
                continue;
            };
            assert!(
                decl.dimension.is_some(),
                "pack {}, key {key}: dimension_label {label} without a dimension",
                pack.pack
            );
            assert!(
                decl.signal.contains(&format!("by(tenant, {label})")),
                "pack {}, key {key}: the signal does not keep `{label}`: {}",
                pack.pack,
                decl.signal
            );
        }
    }
}

#[test]
fn annotations_run_no_queries() {
    for pack in catalogue() {
        for rule in dynalert_rules::generate::alert_group(pack).rules {
            for (name, text) in rule.annotations.iter().chain(&rule.labels) {
                let actions = text.split("{{").skip(1).filter_map(|a| a.split_once("}}"));
                for (action, _) in actions {
                    assert!(
                        !action
                            .split(|c: char| !c.is_ascii_alphanumeric())
                            .any(|word| word == "query"),
                        "pack {}: {:?} {name}: {text}",
                        pack.pack,
                        rule.alert
                    );
                }
            }
        }
    }
}

#[test]
fn rendering_is_byte_stable() {
    let packs: Vec<_> = catalogue().iter().collect();
    for format in [Format::Files, Format::ConfigMap, Format::PrometheusRule] {
        let opts = RenderOptions {
            labels: [("release".to_string(), "prom".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(render(&packs, format, &opts), render(&packs, format, &opts));
    }
}
