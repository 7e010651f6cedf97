//! Builds `promtool test rules` files for a pack from real dynalert output.
//!
//! Each scenario writes a conf.d (the pack's `_defaults.yaml` as `dynalert rules defaults`
//! prints it, plus one tenant file), loads and renders it with the same code `dynalert serve`
//! runs, and turns the exposition into input series scraped from two exporter replicas. If the
//! exporter's labels ever drift from what the rules select, these tests fail.
//!
//! The alert rules under test are the generated ones with each key's signal replaced by an
//! injected series `test_signal:<key>` (normalization is the exporters' side, exercised end to
//! end elsewhere) and without annotations (promtool compares them verbatim; the templates are
//! checked by `promtool check rules`).

#![allow(dead_code)]

pub mod exporters;
pub mod real;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use dynalert_rules::pack::{KeyDecl, Pack, RuleGroup};
use dynalert_rules::render::{RenderOptions, pack_groups};
use serde::Serialize;

#[derive(Serialize)]
pub struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: String,
    tests: Vec<TestGroup>,
}

#[derive(Serialize)]
pub struct TestGroup {
    name: String,
    interval: String,
    input_series: Vec<Series>,
    alert_rule_test: Vec<AlertTest>,
}

#[derive(Clone, Serialize)]
pub struct Series {
    pub series: String,
    pub values: String,
}

#[derive(Serialize)]
pub struct AlertTest {
    eval_time: String,
    alertname: String,
    exp_alerts: Vec<ExpAlert>,
}

#[derive(Serialize)]
pub struct ExpAlert {
    exp_labels: BTreeMap<String, String>,
}

#[derive(Serialize)]
pub struct RuleFile {
    groups: Vec<RuleGroup>,
}

/// Extra labels of a series or an alert (a dimension).
type Labels = Vec<(String, String)>;

/// One situation: what the tenant file says, what each key's live signal is, and the
/// (alert, extra labels) expected to fire.
struct Scenario {
    name: String,
    tenant_body: String,
    /// Whether dynalert's series are scraped at all (false: every replica down).
    dynalert_up: bool,
    signals: Vec<(String, Labels, f64)>,
    expected: Vec<(String, Labels)>,
}

fn delta(t: f64) -> f64 {
    (t.abs() * 0.5).max(1.0)
}

fn fires(op: &str, value: f64, threshold: f64) -> bool {
    if op == "<" {
        value < threshold
    } else {
        value > threshold
    }
}

/// A value past `t` in the alerting direction.
fn breach(op: &str, t: f64) -> f64 {
    if op == "<" {
        t - delta(t)
    } else {
        t + delta(t)
    }
}

/// A value on the quiet side of `t` (never negative: the signals are counts and ratios).
fn safe(op: &str, t: f64) -> f64 {
    if op == "<" {
        t + delta(t)
    } else if t - delta(t) >= 0.0 {
        t - delta(t)
    } else {
        t
    }
}

/// A threshold far away in the quiet direction, so that tier does not fire.
fn far(op: &str, t: f64) -> f64 {
    if op == "<" {
        t - 100.0 * delta(t)
    } else {
        t + 100.0 * delta(t)
    }
}

pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn critical_name(decl: &KeyDecl) -> String {
    format!("{}Critical", decl.alert.name)
}

/// The scenarios for a pack.
fn scenarios(pack: &Pack) -> Vec<Scenario> {
    let mut out = Vec::new();
    let keyed = |f: &dyn Fn(&str, &KeyDecl) -> Option<String>| -> String {
        pack.keys
            .iter()
            .filter_map(|(k, d)| f(k, d))
            .collect::<Vec<_>>()
            .join("")
    };

    // 1. A custom warning threshold, with the critical tier moved out of the way.
    let custom = |d: &KeyDecl| {
        if d.op.fires_below() {
            d.default + 3.0
        } else {
            d.default + 7.0
        }
    };
    let body = keyed(&|k, d| {
        Some(format!(
            "    {k}: {}\n    {k}_critical: {}\n",
            number(custom(d)),
            number(far(d.op.as_str(), custom(d)))
        ))
    }) + "    _metadata: {owner: team-x, tier: gold}\n";
    let mut above = Scenario::new("custom threshold, signal above it", &body);
    let mut below = Scenario::new("custom threshold, signal below it", &body);
    for (k, d) in &pack.keys {
        above.signal(k, d, breach(d.op.as_str(), custom(d)));
        above.expect(&d.alert.name, d);
        below.signal(k, d, safe(d.op.as_str(), custom(d)));
    }
    out.push(above);
    out.push(below);

    // 2. Nothing set: the pack defaults apply (warning between the tiers, critical beyond).
    let mut defaults = Scenario::new("defaults", "");
    let mut critical = Scenario::new("defaults, critical tier", "");
    for (k, d) in &pack.keys {
        let value = match d.default_critical {
            Some(c) if c != d.default => (d.default + c) / 2.0,
            _ => breach(d.op.as_str(), d.default),
        };
        defaults.signal(k, d, value);
        if fires(d.op.as_str(), value, d.default) {
            defaults.expect(&d.alert.name, d);
        }
        if d.default_critical
            .is_some_and(|c| fires(d.op.as_str(), value, c))
        {
            defaults.expect(&critical_name(d), d);
        }
        if let Some(c) = d.default_critical {
            let beyond = if d.op.fires_below() {
                breach(d.op.as_str(), c.min(d.default))
            } else {
                breach(d.op.as_str(), c.max(d.default))
            };
            critical.signal(k, d, beyond);
            critical.expect(&d.alert.name, d);
            critical.expect(&critical_name(d), d);
        } else {
            critical.signal(k, d, safe(d.op.as_str(), d.default));
        }
    }
    out.push(defaults);
    out.push(critical);

    // 3. Disabled keys never fire (the inherited critical tier goes with them).
    let body = keyed(&|k, _| Some(format!("    {k}: disable\n")));
    let mut disabled = Scenario::new("disabled", &body);
    for (k, d) in &pack.keys {
        disabled.signal(
            k,
            d,
            breach(
                d.op.as_str(),
                breach(
                    d.op.as_str(),
                    d.default.max(d.default_critical.unwrap_or(d.default)),
                ),
            ),
        );
    }
    out.push(disabled);

    // 4. Maintenance silences everything.
    let mut maintenance = Scenario::new("maintenance", "    _state_maintenance: enable\n");
    for (k, d) in &pack.keys {
        maintenance.signal(
            k,
            d,
            far(if d.op.fires_below() { ">" } else { "<" }, d.default),
        );
    }
    out.push(maintenance);

    // 5. Dimensions: a label value with its own (higher) row stays quiet; another falls back
    //    to the tenant-wide threshold and fires.
    let dims: Vec<(&String, &KeyDecl)> = pack
        .keys
        .iter()
        .filter(|(_, d)| d.dimension.is_some())
        .collect();
    if !dims.is_empty() {
        let body = dims
            .iter()
            .map(|(k, d)| {
                let dim = d.dimension.as_deref().unwrap();
                format!(
                    "    {k}: {}\n    {k}_critical: {}\n    \"{k}{{{dim}='own'}}\": {}\n",
                    number(custom(d)),
                    number(far(d.op.as_str(), custom(d))),
                    number(far(d.op.as_str(), custom(d)) / 2.0 + custom(d) / 2.0)
                )
            })
            .collect::<String>();
        let mut s = Scenario::new("dimension rows and fallback", &body);
        for (k, d) in &dims {
            let dim = d.dimension.clone().unwrap();
            let label = signal_label(d).to_string();
            let value = breach(d.op.as_str(), custom(d));
            s.signals
                .push((k.to_string(), vec![(label.clone(), "own".into())], value));
            s.signals
                .push((k.to_string(), vec![(label, "other".into())], value));
            s.expected
                .push((d.alert.name.clone(), vec![(dim, "other".into())]));
        }
        // Keys without a dimension keep a quiet signal here.
        for (k, d) in pack.keys.iter().filter(|(_, d)| d.dimension.is_none()) {
            s.signal(k, d, safe(d.op.as_str(), d.default));
        }
        out.push(s);
    }

    // 6. Pseudo-tenant packs must fire on their defaults while dynalert serves nothing.
    if pack.pseudo_tenant.is_some() {
        let mut absent = Scenario::new("dynalert absent: defaults", "");
        absent.dynalert_up = false;
        for (k, d) in &pack.keys {
            let value = breach(d.op.as_str(), d.default);
            absent.signal(k, d, value);
            absent.expect(&d.alert.name, d);
            if d.default_critical
                .is_some_and(|c| fires(d.op.as_str(), value, c))
            {
                absent.expect(&critical_name(d), d);
            }
        }
        out.push(absent);
    }
    out
}

/// The label a dimensional key's signal carries its values in (the alerts carry the dimension).
fn signal_label(decl: &KeyDecl) -> &str {
    decl.dimension_label
        .as_deref()
        .or(decl.dimension.as_deref())
        .expect("a dimensional key")
}

impl Scenario {
    fn new(name: &str, tenant_body: &str) -> Self {
        Scenario {
            name: name.to_string(),
            tenant_body: tenant_body.to_string(),
            dynalert_up: true,
            signals: Vec::new(),
            expected: Vec::new(),
        }
    }

    /// The key's signal (both label values `a` and `b` for a dimensional key).
    fn signal(&mut self, key: &str, decl: &KeyDecl, value: f64) {
        match &decl.dimension {
            None => self.signals.push((key.to_string(), Vec::new(), value)),
            Some(_) => {
                for v in ["a", "b"] {
                    let label = signal_label(decl).to_string();
                    self.signals
                        .push((key.to_string(), vec![(label, v.into())], value));
                }
            }
        }
    }

    fn expect(&mut self, alert: &str, decl: &KeyDecl) {
        match &decl.dimension {
            None => self.expected.push((alert.to_string(), Vec::new())),
            Some(dim) => {
                for v in ["a", "b"] {
                    self.expected
                        .push((alert.to_string(), vec![(dim.clone(), v.into())]));
                }
            }
        }
    }
}

/// dynalert's exposition for one scenario, as promtool input series from two replicas.
fn dynalert_series(
    pack: &Pack,
    tenant: &str,
    scenario: &Scenario,
    samples: u32,
    dir: &Path,
) -> Vec<Series> {
    let conf = dir.join(format!(
        "conf-{}",
        scenario.name.replace([' ', ',', ':'], "-")
    ));
    std::fs::create_dir_all(&conf).unwrap();
    let defaults = if pack.pseudo_tenant.is_some() {
        "defaults: {}\n".to_string()
    } else {
        dynalert_rules::defaults::defaults_yaml(&[pack])
    };
    std::fs::write(conf.join("_defaults.yaml"), defaults).unwrap();
    // A pseudo-tenant's defaults live in that tenant (see `rules defaults`): fill in what the
    // scenario leaves unset.
    let mut body = scenario.tenant_body.clone();
    if pack.pseudo_tenant.is_some() {
        for (k, d) in &pack.keys {
            if !body.contains(&format!("    {k}:")) {
                body.push_str(&format!("    {k}: {}\n", number(d.default)));
            }
            let unset = !body.contains(&format!("    {k}_critical:"))
                && !body.contains(&format!("    {k}: disable"));
            if let Some(c) = d.default_critical.filter(|_| unset) {
                body.push_str(&format!("    {k}_critical: {}\n", number(c)));
            }
        }
    }
    served_series(
        pack,
        &conf,
        &format!("tenants:\n  {tenant}:\n{body}"),
        &scenario.name,
        "dynalert",
        samples,
    )
}

/// Writes `tenants` as the conf.d's tenant file, loads the conf.d (whose `_defaults.yaml` is
/// already there) with the pack's keys, and returns dynalert's exposition of it as promtool
/// input series scraped from two replicas of the scrape job `job`.
pub fn served_series(
    pack: &Pack,
    conf: &Path,
    tenants: &str,
    what: &str,
    job: &str,
    samples: u32,
) -> Vec<Series> {
    std::fs::write(conf.join("tenant.yaml"), tenants).unwrap();
    let keys = pack.keys.keys().cloned();
    let model = dynalert_config::load_documents(dynalert_store::read_tree(conf).unwrap(), keys);
    assert!(
        model.diagnostics.is_empty(),
        "{what}: {:?}",
        model.diagnostics
    );
    let at = Utc.with_ymd_and_hms(2026, 11, 18, 12, 0, 0).unwrap();
    let text = dynalert_exposition::render_once(&model, at);
    let mut series = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (selector, value) = line.rsplit_once(' ').unwrap();
        let value = if value == "+Inf" { "Inf" } else { value };
        for replica in ["r1", "r2"] {
            let labelled =
                selector.replacen('}', &format!(",job=\"{job}\",instance=\"{replica}\"}}"), 1);
            series.push(Series {
                series: labelled,
                values: format!("{value}+0x{samples}"),
            });
        }
    }
    series
}

fn signal_series(tenant: &str, scenario: &Scenario, samples: u32) -> Vec<Series> {
    scenario
        .signals
        .iter()
        .map(|(key, extra, value)| {
            let mut labels = format!("tenant=\"{tenant}\"");
            for (k, v) in extra {
                labels.push_str(&format!(",{k}=\"{v}\""));
            }
            Series {
                series: format!("test_signal:{key}{{{labels}}}"),
                values: format!("{}+0x{samples}", number(*value)),
            }
        })
        .collect()
}

fn minutes(duration: &str) -> u32 {
    let (n, unit) = duration.split_at(duration.len() - 1);
    let n: u32 = n
        .parse()
        .unwrap_or_else(|_| panic!("duration {duration:?}"));
    match unit {
        "s" => n.div_ceil(60),
        "m" => n,
        "h" => n * 60,
        _ => panic!("duration {duration:?}"),
    }
}

/// Writes `rules.yml` and `tests.yml` for a pack into `dir`.
pub fn write_unit_tests(pack: &Pack, dir: &Path) {
    let tenant = pack
        .pseudo_tenant
        .clone()
        .unwrap_or_else(|| "t1".to_string());
    // The same pack with every key's signal (inline expression or recorded series) replaced
    // by the injected series: the alerts are generated exactly as for the real pack.
    let mut injected = pack.clone();
    for (key, decl) in injected.keys.iter_mut() {
        decl.signal = format!("test_signal:{key}");
    }
    let (_, mut alerts) = pack_groups(&injected, &RenderOptions::default());
    for rule in alerts.iter_mut().flat_map(|g| &mut g.rules) {
        rule.annotations.clear();
        assert!(
            rule.expr.contains("test_signal:"),
            "{}: no signal in {}",
            pack.pack,
            rule.expr
        );
    }
    let rules = serde_saphyr::to_string(&RuleFile {
        groups: alerts.clone(),
    })
    .unwrap();
    std::fs::write(dir.join("rules.yml"), rules).unwrap();

    let longest = pack
        .keys
        .values()
        .map(|d| minutes(&d.alert.for_))
        .max()
        .unwrap_or(0);
    let eval = longest + 3;
    let samples = eval + 5;
    let alert_names: Vec<(String, &KeyDecl, String)> = alerts
        .iter()
        .flat_map(|g| &g.rules)
        .map(|r| {
            // The labels are in the expression now; the name says the key and the tier.
            let name = r.alert.clone().unwrap();
            let (decl, severity) = pack
                .keys
                .values()
                .find_map(|d| {
                    if name == d.alert.name {
                        Some((d, "warning"))
                    } else if name == format!("{}Critical", d.alert.name) {
                        Some((d, "critical"))
                    } else {
                        None
                    }
                })
                .unwrap_or_else(|| panic!("alert {name} belongs to no key"));
            (name, decl, severity.to_string())
        })
        .collect();
    let mut tests = Vec::new();
    for scenario in scenarios(pack) {
        let mut input_series = signal_series(&tenant, &scenario, samples);
        if scenario.dynalert_up {
            input_series.extend(dynalert_series(pack, &tenant, &scenario, samples, dir));
        }
        let alert_rule_test = alert_names
            .iter()
            .map(|(name, decl, severity)| {
                let key = pack
                    .keys
                    .iter()
                    .find(|(_, d)| std::ptr::eq(*d, *decl))
                    .unwrap()
                    .0;
                let exp_alerts = scenario
                    .expected
                    .iter()
                    .filter(|(alert, _)| alert == name)
                    .map(|(_, extra)| {
                        let mut labels = BTreeMap::from([
                            ("tenant".to_string(), tenant.clone()),
                            ("severity".to_string(), severity.clone()),
                            ("metric_group".to_string(), key.clone()),
                            ("pack".to_string(), pack.pack.clone()),
                        ]);
                        labels.extend(extra.iter().cloned());
                        if pack.pseudo_tenant.is_none()
                            && scenario.tenant_body.contains("owner: team-x")
                        {
                            labels.insert("owner".into(), "team-x".into());
                            labels.insert("tier".into(), "gold".into());
                        }
                        ExpAlert { exp_labels: labels }
                    })
                    .collect();
                AlertTest {
                    eval_time: format!("{eval}m"),
                    alertname: name.clone(),
                    exp_alerts,
                }
            })
            .collect();
        tests.push(TestGroup {
            name: format!("{}: {}", pack.pack, scenario.name),
            interval: "1m".into(),
            input_series,
            alert_rule_test,
        });
    }
    let file = TestFile {
        rule_files: vec!["rules.yml".into()],
        evaluation_interval: "1m".into(),
        tests,
    };
    std::fs::write(
        dir.join("tests.yml"),
        serde_saphyr::to_string(&file).unwrap(),
    )
    .unwrap();
}
