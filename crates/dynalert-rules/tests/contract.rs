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
    for (name, records, alerts) in minimum {
        let pack = catalogue()
            .iter()
            .find(|p| p.pack == name)
            .unwrap_or_else(|| panic!("pack {name} missing"));
        let recorded: usize = pack.groups.iter().map(|g| g.rules.len()).sum();
        let generated = dynalert_rules::generate::alert_group(pack).rules.len();
        assert!(
            recorded >= records,
            "{name}: {recorded} recording rules, want ≥ {records}"
        );
        assert!(
            generated >= alerts,
            "{name}: {generated} alerts, want ≥ {alerts}"
        );
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
