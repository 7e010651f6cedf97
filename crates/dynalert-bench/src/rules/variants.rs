//! The rule files of each variant, built from `dynalert_rules`' own structures: the packs as
//! rendered, the hand-written per-tenant rules (from the thresholds dynalert serves), and the
//! floor (the packs' signals against their defaults, nothing looked up).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use dynalert_rules::generate::{alert_labels, with_labels};
use dynalert_rules::pack::{Rule, RuleGroup};
use dynalert_rules::{Format, Pack, RenderOptions, render::pack_groups};
use dynalert_testkit::{Prometheus, Sample, ScrapeTarget};
use serde::Serialize;

use super::keys::{Alert, Key, restrict, string};

#[derive(Serialize)]
struct RuleFile<'a> {
    groups: &'a [RuleGroup],
}

fn write_rules(path: &Path, groups: &[RuleGroup]) -> Result<()> {
    let yaml = serde_saphyr::to_string(&RuleFile { groups })?;
    fs::write(path, yaml).with_context(|| format!("writing {path:?}"))
}

/// The packs' files as `dynalert rules render` writes them.
pub fn write_packs(packs: &[&Pack], dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    for file in dynalert_rules::render(packs, Format::Files, &RenderOptions::default()) {
        fs::write(dir.join(&file.name), file.content)?;
    }
    Ok(())
}

/// What `dynalert serve` serves: the `user_threshold` rows by tenant, component, metric and
/// severity (their other labels are dimensions), the non-empty `owner`, `runbook_url` and
/// `tier` of each tenant's `tenant_metadata_info`, the tenants in maintenance.
pub struct Served {
    pub rows: HashMap<[String; 4], Vec<Sample>>,
    metadata: HashMap<String, BTreeMap<String, String>>,
    pub maintenance: BTreeSet<String>,
}

impl Served {
    /// Scrapes dynalert on `port` with a short-lived Prometheus until it has the rows of all
    /// `tenants`, and reads them back with queries.
    pub fn query(port: u16, tenants: usize) -> Result<Served> {
        let prometheus = Prometheus::start(&[ScrapeTarget::new("dynalert", port)], None)?;
        let prometheus = prometheus.context("prometheus is not installed")?;
        let all = |s: &[Sample]| s.first().is_some_and(|s| s.value == tenants as f64);
        let query = "count(count by(tenant) (user_threshold))";
        prometheus.wait_for(query, all, Duration::from_secs(60))?;
        let mut rows: HashMap<_, Vec<Sample>> = HashMap::new();
        for mut row in prometheus.query_samples("user_threshold")? {
            let at = ["tenant", "component", "metric", "severity"];
            let at = at.map(|label| row.labels.remove(label).unwrap_or_default());
            row.labels
                .retain(|label, _| !["__name__", "job", "instance"].contains(&&**label));
            rows.entry(at).or_default().push(row);
        }
        let mut metadata = HashMap::new();
        for mut info in prometheus.query_samples("tenant_metadata_info")? {
            let tenant = info.labels.remove("tenant").unwrap_or_default();
            let fields = ["owner", "runbook_url", "tier"];
            info.labels
                .retain(|label, value| fields.contains(&&**label) && !value.is_empty());
            metadata.insert(tenant, info.labels);
        }
        let query = "user_state_filter{filter=\"maintenance\"} == 1";
        let maintenance = prometheus.query_samples(query)?.into_iter();
        let maintenance = maintenance
            .filter_map(|mut s| s.labels.remove("tenant"))
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
    let mut total = 0;
    for tenant in tenants {
        let metadata = served.metadata.get(tenant).cloned().unwrap_or_default();
        let mut rules = Vec::new();
        for (key, alert) in keys
            .iter()
            .flat_map(|k| k.alerts().into_iter().map(move |a| (k, a)))
        {
            let (component, metric) = key.component_metric();
            let at = [tenant, component, metric, alert.severity].map(str::to_owned);
            for (matchers, threshold, dimension) in conditions(key, tenant, served.rows.get(&at)) {
                let mut rule = per_tenant_rule(key, &alert, tenant, threshold);
                rule.labels
                    .extend(metadata.clone().into_iter().chain(dimension));
                rule.expr = key.against(&restrict(&key.signal, &matchers)?, threshold);
                rules.push(rule);
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

/// A per-tenant alerting rule: its matchers, threshold, and dimension label and value.
type Condition = (String, f64, Option<(String, String)>);

/// The rules one alert of a tenant needs: one for the tenant-wide row, or with a dimension,
/// one per value that has a row of its own and one for the tenant-wide row on the others.
fn conditions(key: &Key, tenant: &str, rows: Option<&Vec<Sample>>) -> Vec<Condition> {
    let tenant_matcher = format!("tenant={}", string(tenant));
    let rows = rows.into_iter().flatten();
    let wide = rows.clone().find(|r| r.labels.is_empty()).map(|r| r.value);
    let Some(label) = key.decl.dimension.as_deref() else {
        return wide
            .into_iter()
            .map(|t| (tenant_matcher.clone(), t, None))
            .collect();
    };
    // `<label>_re` rows (regex dimensions) are not generated here.
    let per_value: Vec<(&String, f64)> = rows
        .filter_map(|r| Some((r.labels.get(label)?, r.value)))
        .collect();
    let raw = key.decl.dimension_label.as_deref().unwrap_or(label);
    let mut conditions = Vec::new();
    // `disable` on one queue is served as +Inf: nothing to alert on.
    for (value, threshold) in per_value.iter().filter(|(_, t)| t.is_finite()) {
        let matchers = format!("{tenant_matcher}, {raw}={}", string(value));
        let dimension = Some((label.to_owned(), value.to_string()));
        conditions.push((matchers, *threshold, dimension));
    }
    if let Some(threshold) = wide {
        let values: Vec<&str> = per_value.iter().map(|(v, _)| v.as_str()).collect();
        let others = format!("{tenant_matcher}, {raw}!~{}", string(&values.join("|")));
        conditions.push((
            if values.is_empty() {
                tenant_matcher
            } else {
                others
            },
            threshold,
            None,
        ));
    }
    conditions
}

/// A per-tenant alerting rule with the pack's labels and annotations, its expression empty.
fn per_tenant_rule(key: &Key, alert: &Alert, tenant: &str, threshold: f64) -> Rule {
    let (decl, severity) = (key.decl, alert.severity);
    let mut labels = BTreeMap::new();
    labels.insert("severity".to_owned(), severity.to_owned());
    labels.insert("metric_group".to_owned(), key.name.to_owned());
    labels.insert("pack".to_owned(), key.pack.pack.clone());
    let (description, unit) = (&decl.alert.description, &decl.unit);
    let value = "{{ $value | humanize }}";
    let above = format!("above its {severity} threshold {threshold}");
    let description = format!("{description}: tenant {tenant} is at {value} {unit}, {above}.");
    let summary = format!("{} (tenant {tenant})", decl.alert.summary);
    let annotations = [("summary", summary), ("description", description)];
    Rule {
        record: None,
        alert: Some(alert.name.clone()),
        expr: String::new(),
        for_: Some(decl.alert.for_.clone()),
        labels,
        annotations: annotations
            .map(|(name, text)| (name.to_owned(), text))
            .into(),
    }
}

/// A lower bound for any layout of the packs: the packs' alert groups with each rule's `expr`
/// replaced by `(<the key's normalization expression>) <op> <the key's default>` (the critical
/// tier's default for a `…Critical` alert), the labels set around it by `label_replace` as the
/// packs set them: one rule per alert for all tenants, no threshold lookup, maintenance,
/// metadata or per-queue matching. Returns the number of rules.
pub fn write_floor(packs: &[&Pack], dir: &Path, keys: &[Key]) -> Result<usize> {
    fs::create_dir_all(dir)?;
    let alerts = keys.iter().flat_map(|k| {
        k.alerts()
            .into_iter()
            .map(move |a| (a.name.clone(), (k, a)))
    });
    let alerts: HashMap<String, (&Key, Alert)> = alerts.collect();
    let mut total = 0;
    for pack in packs {
        let (_, mut groups) = pack_groups(pack, &RenderOptions::default());
        for rule in groups.iter_mut().flat_map(|g| &mut g.rules) {
            let name = rule
                .alert
                .as_deref()
                .context("an alert group with a recording rule")?;
            let (key, alert) = alerts
                .get(name)
                .with_context(|| format!("alert {name} is not a key's"))?;
            let labels = alert_labels(pack, key.name, alert.severity);
            rule.expr = with_labels(&key.against(&key.signal, alert.default), &labels);
            total += 1;
        }
        write_rules(&dir.join(format!("{}-alert.yml", pack.pack)), &groups)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::super::keys::keys;
    use super::*;

    #[test]
    fn the_floor_rewrites_every_alert_of_the_packs() {
        let packs = dynalert_rules::select(&["mariadb".into(), "redis".into()]).unwrap();
        let (keys, _) = keys(&packs).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let alerts: usize = keys.iter().map(|k| k.alerts().len()).sum();
        assert_eq!(write_floor(&packs, dir.path(), &keys).unwrap(), alerts);
        let floor = fs::read_to_string(dir.path().join("redis-alert.yml")).unwrap();
        let looked_up = floor.contains("max by(tenant) (user_threshold");
        assert!(!looked_up && floor.contains("label_replace("), "{floor}");
    }

    #[test]
    fn per_tenant_rules_inline_the_served_numbers() {
        let packs = dynalert_rules::select(&["redis".into()]).unwrap();
        let (keys, _) = keys(&packs).unwrap();
        let queued = keys.iter().find(|k| k.decl.dimension.is_some()).unwrap();
        let (component, metric) = queued.component_metric();
        let row = |labels: &[(&str, &str)], value: f64| {
            let labels = labels
                .iter()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect();
            Sample { labels, value }
        };
        let rows = vec![
            row(&[], 100.0),
            row(&[("queue", "email")], 5.0),
            row(&[("queue", "jobs")], f64::INFINITY),
        ];
        let at = ["t1", component, metric, "warning"].map(str::to_owned);
        let served = Served {
            rows: HashMap::from([(at, rows)]),
            metadata: HashMap::from([(
                "t1".into(),
                BTreeMap::from([("owner".into(), "team-a".into())]),
            )]),
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
