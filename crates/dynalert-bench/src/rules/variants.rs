//! The rule files of each variant, built from `dynalert_rules`' own structures: the packs as
//! rendered, the hand-written per-tenant rules (from the thresholds dynalert serves), the
//! reference project's layout (a recording rule per threshold lookup), and the floor (the
//! packs' signals against their defaults, nothing looked up).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use dynalert_rules::generate::{alert_labels, threshold, with_labels};
use dynalert_rules::pack::{Rule, RuleGroup};
use dynalert_rules::{Format, Pack, RenderOptions, render::pack_groups};
use dynalert_testkit::{Prometheus, ScrapeTarget};
use serde::Serialize;

use super::keys::{Key, restrict, string};

#[derive(Serialize)]
struct RuleFile<'a> {
    groups: &'a [RuleGroup],
}

fn write_rules(path: &Path, groups: &[RuleGroup]) -> Result<()> {
    let yaml = serde_saphyr::to_string(&RuleFile { groups })?;
    fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

/// The packs' files as `dynalert rules render` writes them.
pub fn write_packs(packs: &[&Pack], dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    for file in dynalert_rules::render(packs, Format::Files, &RenderOptions::default()) {
        fs::write(dir.join(&file.name), file.content)?;
    }
    Ok(())
}

/// One `user_threshold` row as Prometheus scraped it from dynalert.
pub struct Row {
    tenant: String,
    component: String,
    metric: String,
    severity: String,
    /// Dimension labels.
    labels: Vec<(String, String)>,
    value: f64,
}

/// What `dynalert serve` serves: threshold rows, metadata, tenants in maintenance.
pub struct Served {
    pub rows: Vec<Row>,
    /// Non-empty `owner`, `runbook_url` and `tier` of `tenant_metadata_info`, per tenant.
    metadata: HashMap<String, Vec<(String, String)>>,
    pub maintenance: BTreeSet<String>,
}

impl Served {
    /// Scrapes dynalert on `port` with a short-lived Prometheus until it has the rows of all
    /// `tenants`, and reads them back with queries.
    pub fn query(port: u16, tenants: usize) -> Result<Served> {
        let prometheus = Prometheus::start(&[ScrapeTarget::new("dynalert", port)], None)?
            .context("prometheus is not installed")?;
        let all =
            |s: &[dynalert_testkit::Sample]| s.first().is_some_and(|s| s.value == tenants as f64);
        prometheus.wait_for(
            "count(count by(tenant) (user_threshold))",
            all,
            Duration::from_secs(60),
        )?;
        let mut rows = Vec::new();
        for mut sample in prometheus.query_samples("user_threshold")? {
            let mut take = |label: &str| sample.labels.remove(label).unwrap_or_default();
            let (tenant, component, metric, severity) = (
                take("tenant"),
                take("component"),
                take("metric"),
                take("severity"),
            );
            for scrape_label in ["__name__", "job", "instance"] {
                take(scrape_label);
            }
            rows.push(Row {
                tenant,
                component,
                metric,
                severity,
                labels: sample.labels.into_iter().collect(),
                value: sample.value,
            });
        }
        let mut metadata = HashMap::new();
        for sample in prometheus.query_samples("tenant_metadata_info")? {
            let fields = ["owner", "runbook_url", "tier"]
                .into_iter()
                .filter_map(|l| {
                    Some((
                        l.to_owned(),
                        sample.label(l).filter(|v| !v.is_empty())?.to_owned(),
                    ))
                })
                .collect();
            metadata.insert(sample.label("tenant").unwrap_or("").to_owned(), fields);
        }
        let maintenance = prometheus
            .query_samples("user_state_filter{filter=\"maintenance\"} == 1")?
            .iter()
            .filter_map(|s| s.label("tenant").map(str::to_owned))
            .collect();
        Ok(Served {
            rows,
            metadata,
            maintenance,
        })
    }
}

/// The hand-written equivalent of the packs: per tenant one file with one group, and in it, for
/// every alert of the packs (warning and critical tier) for which `dynalert serve` serves the
/// tenant a threshold row, one alerting rule `(<the key's normalization expression with
/// tenant="…" in every selector>) <op> <the tenant's number>`. A disabled key has no rule; a
/// per-queue row gets its own rule on that queue's series, and the tenant-wide number a rule
/// on the other queues. Same alert names, `for:`, `severity`/`metric_group`/`pack` labels; the
/// tenant's metadata (and on a per-queue rule its queue) as static labels; no maintenance
/// (hand-written rules have none) and no recording rules. Returns the number of rules written.
pub fn write_per_tenant(
    dir: &Path,
    keys: &[Key],
    served: &Served,
    tenants: &[String],
) -> Result<usize> {
    fs::create_dir_all(dir)?;
    let mut index: HashMap<(&str, &str, &str, &str), Vec<&Row>> = HashMap::new();
    for row in &served.rows {
        index
            .entry((&row.tenant, &row.component, &row.metric, &row.severity))
            .or_default()
            .push(row);
    }
    let mut total = 0;
    for tenant in tenants {
        let metadata = served.metadata.get(tenant).map_or(&[][..], Vec::as_slice);
        let tenant_matcher = format!("tenant={}", string(tenant));
        let mut rules = Vec::new();
        for key in keys {
            for (severity, alert) in [
                ("warning", Some(&key.alert)),
                ("critical", key.critical_alert.as_ref()),
            ] {
                let (Some(alert), Some(rows)) = (
                    alert,
                    index.get(&(tenant, &key.component, &key.metric, severity)),
                ) else {
                    continue;
                };
                let mut rule = |matchers: &str,
                                threshold: f64,
                                queue: Option<(&str, &str)>|
                 -> Result<()> {
                    let mut labels: BTreeMap<String, String> = metadata.iter().cloned().collect();
                    labels.extend(queue.map(|(l, v)| (l.to_owned(), v.to_owned())));
                    labels.extend([
                        ("severity".to_owned(), severity.to_owned()),
                        ("metric_group".to_owned(), key.name.clone()),
                        ("pack".to_owned(), key.pack.clone()),
                    ]);
                    let description = format!(
                        "{}: tenant {tenant} is at {{{{ $value | humanize }}}} {}, above its {severity} threshold {threshold}.",
                        key.description, key.unit
                    );
                    rules.push(Rule {
                        record: None,
                        alert: Some(alert.clone()),
                        expr: key.against(&restrict(&key.signal, matchers)?, threshold),
                        for_: Some(key.for_.clone()),
                        labels,
                        annotations: BTreeMap::from([
                            (
                                "summary".to_owned(),
                                format!("{} (tenant {tenant})", key.summary),
                            ),
                            ("description".to_owned(), description),
                        ]),
                    });
                    Ok(())
                };
                let find = |row: &Row, label: &str| {
                    row.labels
                        .iter()
                        .find(|(l, _)| l == label)
                        .map(|(_, v)| v.clone())
                };
                let wide = rows.iter().find(|r| r.labels.is_empty()).map(|r| r.value);
                let Some(label) = key.dimension.as_deref() else {
                    if let Some(threshold) = wide {
                        rule(&tenant_matcher, threshold, None)?;
                    }
                    continue;
                };
                // `<label>_re` rows (regex dimensions) are not generated here.
                let per_value: Vec<(String, f64)> = rows
                    .iter()
                    .filter_map(|r| Some((find(r, label)?, r.value)))
                    .collect();
                let raw = key.dimension_label.as_deref().unwrap_or(label);
                for (value, threshold) in &per_value {
                    // `disable` on one queue is served as +Inf: nothing to alert on.
                    if threshold.is_finite() {
                        rule(
                            &format!("{tenant_matcher}, {raw}={}", string(value)),
                            *threshold,
                            Some((label, value)),
                        )?;
                    }
                }
                if let Some(threshold) = wide {
                    let matchers = if per_value.is_empty() {
                        tenant_matcher.clone()
                    } else {
                        let values: Vec<&str> = per_value.iter().map(|(v, _)| v.as_str()).collect();
                        format!("{tenant_matcher}, {raw}!~{}", string(&values.join("|")))
                    };
                    rule(&matchers, threshold, None)?;
                }
            }
        }
        total += rules.len();
        let group = RuleGroup {
            name: tenant.clone(),
            interval: None,
            rules,
        };
        write_rules(&dir.join(format!("{tenant}.yml")), &[group])?;
    }
    Ok(total)
}

/// The key and severity of each of the packs' alerts.
fn by_alert(keys: &[Key]) -> HashMap<&str, (&Key, &'static str)> {
    let mut alerts = HashMap::new();
    for key in keys {
        alerts.insert(key.alert.as_str(), (key, "warning"));
        if let Some(critical) = &key.critical_alert {
            alerts.insert(critical.as_str(), (key, "critical"));
        }
    }
    alerts
}

/// A lower bound for any layout of the packs: the packs' alert groups with each rule's `expr`
/// replaced by `(<the key's normalization expression>) <op> <the key's default>` (the critical
/// tier's default for a `…Critical` alert), the labels set around it by `label_replace` as the
/// packs set them: one rule per alert for all tenants, no threshold lookup, maintenance,
/// metadata or per-queue matching. Returns the number of rules.
pub fn write_floor(packs: &[&Pack], dir: &Path, keys: &[Key]) -> Result<usize> {
    fs::create_dir_all(dir)?;
    let alerts = by_alert(keys);
    let mut total = 0;
    for pack in packs {
        let (_, mut groups) = pack_groups(pack, &RenderOptions::default());
        for rule in groups.iter_mut().flat_map(|g| &mut g.rules) {
            let name = rule
                .alert
                .as_deref()
                .context("an alert group with a recording rule")?;
            let (key, severity) = alerts
                .get(name)
                .with_context(|| format!("alert {name} is not a key's"))?;
            let default = match *severity {
                "critical" => key.default_critical.unwrap_or(key.default),
                _ => key.default,
            };
            let labels = alert_labels(pack, &key.name, severity);
            rule.expr = with_labels(&key.against(&key.signal, default), &labels);
            total += 1;
        }
        write_rules(&dir.join(format!("{}-alert.yml", pack.pack)), &groups)?;
    }
    Ok(total)
}

/// The packs with every threshold lookup (`max by(…) (user_threshold{…})`) recorded as
/// `<labels>:alert_threshold:<key>:<severity>` in a `<pack>-thresholds.yml` group and the
/// alerts reading the recorded series: the reference project's "record everything" layout.
pub fn write_reference(packs: &[&Pack], dir: &Path, keys: &[Key]) -> Result<()> {
    fs::create_dir_all(dir)?;
    let alerts = by_alert(keys);
    for pack in packs {
        let (recording, mut groups) = pack_groups(pack, &RenderOptions::default());
        let mut lookups: Vec<Rule> = Vec::new();
        for rule in groups.iter_mut().flat_map(|g| &mut g.rules) {
            let name = rule
                .alert
                .as_deref()
                .context("an alert group with a recording rule")?;
            let (key, severity) = alerts
                .get(name)
                .with_context(|| format!("alert {name} is not a key's"))?;
            let by = match &key.dimension {
                Some(d) => vec![
                    (format!("tenant, {d}"), format!(", {d}!=\"\"")),
                    ("tenant".to_owned(), format!(", {d}=\"\"")),
                ],
                None => vec![("tenant".to_owned(), String::new())],
            };
            for (by, matchers) in by {
                let lookup = threshold(&key.name, severity, &by, &matchers);
                let record = format!(
                    "{}:alert_threshold:{}:{severity}",
                    by.replace(", ", "_"),
                    key.name
                );
                ensure!(
                    rule.expr.contains(&lookup),
                    "alert {name} has no lookup {lookup}"
                );
                rule.expr = rule.expr.replace(&lookup, &record);
                lookups.push(Rule {
                    record: Some(record),
                    alert: None,
                    expr: lookup,
                    for_: None,
                    labels: BTreeMap::new(),
                    annotations: BTreeMap::new(),
                });
            }
        }
        let thresholds = RuleGroup {
            name: format!("{}-threshold-lookups", pack.pack),
            interval: None,
            rules: lookups,
        };
        write_rules(
            &dir.join(format!("{}-recording.yml", pack.pack)),
            &recording,
        )?;
        write_rules(&dir.join(format!("{}-alert.yml", pack.pack)), &groups)?;
        write_rules(
            &dir.join(format!("{}-thresholds.yml", pack.pack)),
            &[thresholds],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_and_reference_rewrite_every_alert_of_the_packs() {
        let packs = dynalert_rules::select(&["mariadb".into(), "redis".into()]).unwrap();
        let (keys, _) = super::super::keys::keys(&packs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let alerts: usize = keys
            .iter()
            .map(|k| 1 + usize::from(k.critical_alert.is_some()))
            .sum();
        assert_eq!(write_floor(&packs, dir.path(), &keys).unwrap(), alerts);
        let floor = fs::read_to_string(dir.path().join("redis-alert.yml")).unwrap();
        assert!(
            !floor.contains("max by(tenant) (user_threshold") && floor.contains("label_replace("),
            "{floor}"
        );
        write_reference(&packs, dir.path(), &keys).unwrap();
        let reference = fs::read_to_string(dir.path().join("mariadb-alert.yml")).unwrap();
        assert!(
            !reference.contains("max by(tenant) (user_threshold")
                && reference.contains("tenant:alert_threshold:mysql_")
        );
        let lookups = fs::read_to_string(dir.path().join("redis-thresholds.yml")).unwrap();
        assert!(
            lookups.contains("tenant_queue:alert_threshold:"),
            "{lookups}"
        );
    }

    #[test]
    fn per_tenant_rules_inline_the_served_numbers() {
        let packs = dynalert_rules::select(&["redis".into()]).unwrap();
        let (keys, _) = super::super::keys::keys(&packs).unwrap();
        let queued = keys.iter().find(|k| k.dimension.is_some()).unwrap();
        let row = |labels: &[(&str, &str)], value: f64| Row {
            tenant: "t1".into(),
            component: queued.component.clone(),
            metric: queued.metric.clone(),
            severity: "warning".into(),
            labels: labels
                .iter()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect(),
            value,
        };
        let served = Served {
            rows: vec![
                row(&[], 100.0),
                row(&[("queue", "email")], 5.0),
                row(&[("queue", "jobs")], f64::INFINITY),
            ],
            metadata: HashMap::from([("t1".into(), vec![("owner".into(), "team-a".into())])]),
            maintenance: BTreeSet::new(),
        };
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            write_per_tenant(dir.path(), &keys, &served, &["t1".into()]).unwrap(),
            2
        );
        let yaml = fs::read_to_string(dir.path().join("t1.yml")).unwrap();
        assert!(
            yaml.contains(r#"key="email""#) && yaml.contains(r#"key!~"email|jobs""#),
            "{yaml}"
        );
        assert!(
            yaml.contains("owner: team-a") && yaml.contains("queue: email"),
            "{yaml}"
        );
    }
}
