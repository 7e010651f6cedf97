//! `promtool test rules` files for the rendered alert rules with their real expressions.
//!
//! The parent module swaps every signal for an injected series; here nothing is swapped. The
//! rules are what `dynalert rules render` writes (recording groups included, annotations
//! dropped as in the parent), and the input series are named and labelled the way each pack's
//! exporter exposes them: a selector that does not match the exporter's metric or label names
//! leaves its alert silent and fails the test. The thresholds come from real dynalert output
//! ([`super::served_series`]).
//!
//! The exporter data is a table, one [`Row`] per key (the tables are in `exporters.rs`): the
//! signal's value in the warning scenario (`mid`) and the critical one (`high`), and a
//! function from a signal value to the series two instances of the tenant expose for it.

use std::collections::BTreeMap;
use std::path::Path;

use dynalert_rules::pack::{KeyDecl, Pack, RuleGroup};
use dynalert_rules::render::{RenderOptions, pack_groups};

use super::{AlertTest, ExpAlert, RuleFile, Series, TestFile, TestGroup, number, served_series};

/// How one instance's series moves during the test (one sample a minute).
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// The instance does not expose the series (a primary has no replica status).
    Absent,
    Gauge(f64),
    /// A counter growing by this much every minute.
    Counter(f64),
    /// A gauge starting at `.0` and growing by `.1` every minute (an optime, a clock).
    Linear(f64, f64),
    /// `.0` changes during the hour before the evaluation, each adding `.2` to the value
    /// starting at `.1` (a restart counter, a process start time).
    Steps(u32, f64, f64),
}

/// One series as both instances of a tenant expose it. `$tenant`, `$i` (the instance, 0 or
/// 1) and `$job` (the platform pack's scrape job) in the selector are filled in per instance.
#[derive(Clone, Debug)]
pub struct Input {
    pub selector: String,
    pub replicas: [Shape; 2],
}

pub fn input(selector: &str, replicas: [Shape; 2]) -> Input {
    Input {
        selector: selector.to_string(),
        replicas,
    }
}

/// The same shape on both instances.
pub fn both(selector: &str, shape: Shape) -> Input {
    input(selector, [shape, shape])
}

/// One key of a pack: its exporter data as a function of the signal's value.
pub struct Row {
    pub key: &'static str,
    /// The signal in the warning scenario and in the critical scenario.
    pub mid: f64,
    pub high: f64,
    /// The dimension value the inputs carry (the alert carries it as the key's dimension).
    pub dim: Option<&'static str>,
    pub inputs: fn(f64) -> Vec<Input>,
    /// (warning, critical) thresholds of the firing and of the quiet tenant, where the ones
    /// derived from the levels do not fit the signal (a 0/1 signal, a count that cannot go
    /// below 0).
    pub firing: Option<(f64, f64)>,
    pub quiet: Option<(f64, f64)>,
}

pub fn row(key: &'static str, mid: f64, high: f64, inputs: fn(f64) -> Vec<Input>) -> Row {
    Row {
        key,
        mid,
        high,
        dim: None,
        inputs,
        firing: None,
        quiet: None,
    }
}

impl Row {
    pub fn dim(mut self, value: &'static str) -> Row {
        self.dim = Some(value);
        self
    }

    pub fn thresholds(mut self, firing: (f64, f64), quiet: (f64, f64)) -> Row {
        self.firing = Some(firing);
        self.quiet = Some(quiet);
        self
    }

    /// The firing tenant's thresholds: warning before `mid`, critical between `mid` and
    /// `high` (in the alerting direction, so this holds for `<` keys too).
    fn firing(&self) -> (f64, f64) {
        let d = self.high - self.mid;
        self.firing
            .unwrap_or((self.mid - d / 2.0, self.mid + d / 2.0))
    }

    /// The quiet tenant's thresholds: both beyond `high`, so its data (the same levels as the
    /// firing tenant's, above the firing tenant's thresholds) stays below them.
    fn quiet(&self) -> (f64, f64) {
        let d = self.high - self.mid;
        self.quiet.unwrap_or((self.high + d, self.high + 2.0 * d))
    }
}

/// Evaluation time, in minutes: past every `for` of the packs (30m at most) and past a full
/// hour of data, so `increase(...[1h])` and `changes(...[1h])` see the whole window.
pub const EVAL_MINUTES: u32 = 70;
pub const SAMPLES: u32 = EVAL_MINUTES + 5;

impl Shape {
    fn values(self) -> Option<String> {
        let n = SAMPLES;
        Some(match self {
            Shape::Absent => return None,
            Shape::Gauge(v) => format!("{}+0x{n}", number(v)),
            Shape::Counter(c) => format!("0+{}x{n}", number(c)),
            Shape::Linear(start, step) => format!("{}+{}x{n}", number(start), number(step)),
            Shape::Steps(changes, start, jump) => {
                // Spread over minutes EVAL-50 .. EVAL-5: inside the last hour, with samples
                // on both sides.
                let first = EVAL_MINUTES - 50;
                let at: Vec<u32> = (0..changes)
                    .map(|k| first + k * 45 / changes.max(1))
                    .collect();
                (0..=n)
                    .map(|t| {
                        let done = at.iter().filter(|&&m| m <= t).count() as f64;
                        number(start + done * jump)
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        })
    }
}

/// The labels a pack's scrape job adds to its exporter's series (`None`: the table's
/// selectors carry them, as for cAdvisor / kube-state-metrics and dynalert itself).
fn scrape_labels(pack: &str) -> Option<&'static str> {
    match pack {
        "mariadb" => {
            Some(r#"tenant="$tenant",job="mysqld-exporter",instance="$tenant-db-$i:9104""#)
        }
        "redis" => Some(
            r#"tenant="$tenant",job="redis-exporter",instance="redis://$tenant-redis-$i:6379""#,
        ),
        "mongodb" => {
            Some(r#"tenant="$tenant",job="mongodb-exporter",instance="$tenant-mongo-$i:9216""#)
        }
        "elasticsearch" => {
            Some(r#"tenant="$tenant",job="elasticsearch-exporter",instance="$tenant-es-$i:9114""#)
        }
        _ => None,
    }
}

fn with_labels(selector: &str, extra: &str) -> String {
    match selector.strip_suffix('}') {
        Some(open) if open.ends_with('{') => format!("{open}{extra}}}"),
        Some(open) => format!("{open},{extra}}}"),
        None => format!("{selector}{{{extra}}}"),
    }
}

/// The promtool input series of `inputs` for one tenant.
pub fn input_series(pack: &str, tenant: &str, job: &str, inputs: &[Input]) -> Vec<Series> {
    let mut out = Vec::new();
    for input in inputs {
        let selector = match scrape_labels(pack) {
            Some(labels) => with_labels(&input.selector, labels),
            None => input.selector.clone(),
        };
        for (i, shape) in input.replicas.iter().enumerate() {
            if let Some(values) = shape.values() {
                let series = selector
                    .replace("$tenant", tenant)
                    .replace("$job", job)
                    .replace("$i", &i.to_string());
                out.push(Series { series, values });
            }
        }
    }
    out
}

fn fires(op: &str, value: f64, threshold: f64) -> bool {
    if op == "<" {
        value < threshold
    } else {
        value > threshold
    }
}

/// The rendered rule groups of a pack (recording and alerting) with the real expressions;
/// only the annotations are dropped (promtool would compare them verbatim).
pub fn rendered_rules(pack: &Pack, opts: &RenderOptions) -> Vec<RuleGroup> {
    let (recording, alerts) = pack_groups(pack, opts);
    let mut groups: Vec<RuleGroup> = recording.into_iter().chain(alerts).collect();
    for rule in groups.iter_mut().flat_map(|g| &mut g.rules) {
        rule.annotations.clear();
    }
    groups
}

pub fn write_rules(groups: Vec<RuleGroup>, dir: &Path) {
    let text = serde_saphyr::to_string(&RuleFile { groups }).unwrap();
    std::fs::write(dir.join("rules.yml"), text).unwrap();
}

/// An alert expected to fire: its name and its labels beyond `alertname`.
pub type Expected = (String, BTreeMap<String, String>);

/// One promtool test group: input series, and for every alert name checked, the alerts
/// expected at [`EVAL_MINUTES`] (an empty list: it must not fire).
pub fn group(
    name: String,
    input_series: Vec<Series>,
    checked: &[String],
    expected: &[Expected],
) -> TestGroup {
    TestGroup {
        name,
        interval: "1m".into(),
        input_series,
        alert_rule_test: checked
            .iter()
            .map(|alert| AlertTest {
                eval_time: format!("{EVAL_MINUTES}m"),
                alertname: alert.clone(),
                exp_alerts: expected
                    .iter()
                    .filter(|(name, _)| name == alert)
                    .map(|(_, labels)| ExpAlert {
                        exp_labels: labels.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

pub fn write_tests(groups: Vec<TestGroup>, dir: &Path) {
    let file = TestFile {
        rule_files: vec!["rules.yml".into()],
        evaluation_interval: "1m".into(),
        tests: groups,
    };
    std::fs::write(
        dir.join("tests.yml"),
        serde_saphyr::to_string(&file).unwrap(),
    )
    .unwrap();
}

/// The labels of a pack's alert for a key, for one tenant.
pub fn alert_labels(
    pack: &Pack,
    key: &str,
    severity: &str,
    tenant: &str,
    extra: &[(&str, &str)],
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("tenant".to_string(), tenant.to_string()),
        ("severity".to_string(), severity.to_string()),
        ("metric_group".to_string(), key.to_string()),
        ("pack".to_string(), pack.pack.clone()),
    ]);
    labels.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    labels
}

/// The tenants a conf.d serves (each with whether it must fire) and its exposition.
type Served = (Vec<(String, bool)>, Vec<Series>);

/// The tenant that must fire, and the one that must stay quiet (one tenant per conf.d for a
/// pseudo-tenant pack, whose only tenant is fixed).
const FIRING: &str = "acme";
const QUIET: &str = "globex";

/// Writes `rules.yml` and `tests.yml` proving every key of `pack` on its exporter's data.
///
/// Per key and level (`mid`, then `high`): the firing tenant's data crosses its own warning
/// threshold at `mid` and its own critical threshold at `high`, and its alerts carry the
/// expected labels; the quiet tenant has the same data, above the firing tenant's thresholds
/// but below its own, and nothing fires for it.
pub fn write_real_signal_tests(pack: &Pack, rows: &[Row], dir: &Path) {
    let mut declared: Vec<&String> = pack.keys.keys().collect();
    let mut covered: Vec<&str> = rows.iter().map(|r| r.key).collect();
    declared.sort();
    covered.sort();
    assert_eq!(
        declared, covered,
        "{}: the table must have one row per key",
        pack.pack
    );
    write_rules(rendered_rules(pack, &RenderOptions::default()), dir);

    // Both tenants in one conf.d, or for a pseudo-tenant pack one conf.d per role.
    let roles: Vec<(&str, bool)> = vec![(FIRING, true), (QUIET, false)];
    let tenant_of = |role: &str| pack.pseudo_tenant.clone().unwrap_or(role.to_string());
    let body = |firing: bool| -> String {
        let mut out = String::new();
        for r in rows {
            let (w, c) = if firing { r.firing() } else { r.quiet() };
            out.push_str(&format!("    {}: {}\n", r.key, number(w)));
            if pack.keys[r.key].default_critical.is_some() {
                out.push_str(&format!("    {}_critical: {}\n", r.key, number(c)));
            }
        }
        if firing && pack.pseudo_tenant.is_none() {
            out.push_str("    _metadata: {owner: team-a, tier: gold}\n");
        }
        out
    };
    let defaults = if pack.pseudo_tenant.is_some() {
        "defaults: {}\n".to_string()
    } else {
        dynalert_rules::defaults::defaults_yaml(&[pack])
    };
    let served = |name: &str, tenants: String| {
        let conf = dir.join(format!("conf-{name}"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("_defaults.yaml"), &defaults).unwrap();
        served_series(pack, &conf, &tenants, name, "dynalert", SAMPLES)
    };
    let confs: Vec<Served> = if pack.pseudo_tenant.is_some() {
        roles
            .iter()
            .map(|(role, firing)| {
                let tenant = tenant_of(role);
                let doc = format!("tenants:\n  {tenant}:\n{}", body(*firing));
                (vec![(tenant, *firing)], served(role, doc))
            })
            .collect()
    } else {
        let doc = format!(
            "tenants:\n  {FIRING}:\n{}  {QUIET}:\n{}",
            body(true),
            body(false)
        );
        vec![(
            roles.iter().map(|(r, f)| (r.to_string(), *f)).collect(),
            served("both", doc),
        )]
    };

    let mut groups = Vec::new();
    for r in rows {
        let decl: &KeyDecl = &pack.keys[r.key];
        let mut checked = vec![decl.alert.name.clone()];
        if decl.default_critical.is_some() {
            checked.push(format!("{}Critical", decl.alert.name));
        }
        let dim: Vec<(&str, &str)> = match (&decl.dimension, r.dim) {
            (Some(d), Some(v)) => vec![(d.as_str(), v)],
            (None, None) => Vec::new(),
            _ => panic!(
                "{}: a dimensional key's row names its value, no other",
                r.key
            ),
        };
        for (level_name, level) in [("warning level", r.mid), ("critical level", r.high)] {
            for (tenants, thresholds) in &confs {
                let mut series = thresholds.clone();
                let mut expected = Vec::new();
                for (tenant, firing) in tenants {
                    series.extend(input_series(
                        &pack.pack,
                        tenant,
                        "dynalert",
                        &(r.inputs)(level),
                    ));
                    let (w, c) = if *firing { r.firing() } else { r.quiet() };
                    let labels = |severity: &str| {
                        let mut l = alert_labels(pack, r.key, severity, tenant, &dim);
                        if *firing && pack.pseudo_tenant.is_none() {
                            l.insert("owner".into(), "team-a".into());
                            l.insert("tier".into(), "gold".into());
                        }
                        l
                    };
                    if fires(decl.op.as_str(), level, w) {
                        expected.push((checked[0].clone(), labels("warning")));
                    }
                    if decl.default_critical.is_some() && fires(decl.op.as_str(), level, c) {
                        expected.push((checked[1].clone(), labels("critical")));
                    }
                }
                // The plan itself must prove something: the firing tenant's warning fires at
                // both levels and its critical tier at the critical level; the quiet never.
                for (tenant, firing) in tenants {
                    let count = |alert: &str| {
                        expected
                            .iter()
                            .filter(|(a, l)| a == alert && l["tenant"] == *tenant)
                            .count()
                    };
                    assert_eq!(
                        count(&checked[0]),
                        usize::from(*firing),
                        "{} {level_name}",
                        r.key
                    );
                    if level == r.high && checked.len() > 1 {
                        assert_eq!(count(&checked[1]), usize::from(*firing), "{}", r.key);
                    }
                }
                let who: Vec<&str> = tenants.iter().map(|(t, _)| t.as_str()).collect();
                groups.push(group(
                    format!("{} {}: {level_name} ({})", pack.pack, r.key, who.join(", ")),
                    series,
                    &checked,
                    &expected,
                ));
            }
        }
    }
    write_tests(groups, dir);
}
