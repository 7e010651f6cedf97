//! The variants generated per round from what dynalert serves: the hand-written per-tenant
//! rules, the reference project's layout (a recording rule per threshold lookup), and the
//! floor (the packs' signals against their defaults, nothing looked up).

use super::*;

/// The hand-written equivalent of the packs: per tenant one file with one group, and in it, for
/// every alert of the packs (warning and critical tier) for which `dynalert serve` serves the
/// tenant a threshold row, one alerting rule `(<the key's normalization expression with
/// tenant="…" in every selector>) <op> <the tenant's number>`. A disabled key has no rule; a
/// per-queue row gets its own rule on that queue's series, and the tenant-wide number a rule
/// on the other queues. Same alert names, `for:`, `severity`/`metric_group`/`pack` labels; the
/// tenant's metadata (and on a per-queue rule its queue) as static labels; no maintenance
/// (hand-written rules have none) and no recording rules. Returns the number of rules written.
pub(super) fn write_per_tenant(
    dir: &Path,
    catalogue: &Catalogue,
    served: &Served,
    tenants: &[String],
) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index: HashMap<(&str, &str, &str, &str), Vec<&Row>> = HashMap::new();
    for row in &served.rows {
        index
            .entry((&row.tenant, &row.component, &row.metric, &row.severity))
            .or_default()
            .push(row);
    }
    let mut total = 0;
    for tenant in tenants {
        let mut yaml = format!(
            "# Hand-written style: tenant {tenant}'s alerts, its thresholds inlined.\n\
             groups:\n- name: {tenant}\n  rules:\n"
        );
        let metadata = served.metadata.get(tenant).map_or(&[][..], Vec::as_slice);
        let tenant_matcher = format!("tenant={}", promql_string(tenant));
        for key in &catalogue.keys {
            for (severity, alert) in [
                ("warning", Some(&key.alert)),
                ("critical", key.critical_alert.as_ref()),
            ] {
                let Some(alert) = alert else { continue };
                let Some(rows) = index.get(&(tenant, &key.component, &key.metric, severity)) else {
                    continue;
                };
                // Static labels: the tenant's metadata, and on a per-queue rule its queue.
                let rule = |matchers: &str,
                            threshold: f64,
                            queue: Option<(&str, &str)>,
                            yaml: &mut String| {
                    let expr = key.against(&restrict(&key.signal, matchers), threshold);
                    let mut labels = metadata.to_vec();
                    labels.extend(queue.map(|(l, v)| (l.to_owned(), v.to_owned())));
                    write_rule(
                        yaml, key, alert, severity, &expr, threshold, tenant, &labels,
                    );
                };
                let mut wide = None;
                let mut per_value: Vec<(&str, f64)> = Vec::new();
                let dimension = key.dimension.as_deref();
                for row in rows {
                    let value_of = |label: &str| {
                        row.labels
                            .iter()
                            .find(|(l, _)| l == label)
                            .map(|(_, v)| v.as_str())
                    };
                    match dimension {
                        Some(label) => {
                            if let Some(value) = value_of(label) {
                                per_value.push((value, row.value));
                            } else if row.labels.is_empty() {
                                wide = Some(row.value);
                            }
                            // `<label>_re` rows (regex dimensions) are not generated here.
                        }
                        None if row.labels.is_empty() => wide = Some(row.value),
                        None => {}
                    }
                }
                match dimension {
                    Some(label) => {
                        let raw = key.dimension_label.as_deref().unwrap_or(label);
                        for (value, threshold) in &per_value {
                            // `disable` on one queue is served as +Inf: nothing to alert on.
                            if threshold.is_finite() {
                                let matchers =
                                    format!("{tenant_matcher}, {raw}={}", promql_string(value));
                                rule(&matchers, *threshold, Some((label, value)), &mut yaml);
                                total += 1;
                            }
                        }
                        if let Some(threshold) = wide {
                            let matchers = if per_value.is_empty() {
                                tenant_matcher.clone()
                            } else {
                                let values: Vec<&str> = per_value.iter().map(|(v, _)| *v).collect();
                                format!("{tenant_matcher}, {raw}!~{}", promql_alternatives(&values))
                            };
                            rule(&matchers, threshold, None, &mut yaml);
                            total += 1;
                        }
                    }
                    None => {
                        if let Some(threshold) = wide {
                            rule(&tenant_matcher, threshold, None, &mut yaml);
                            total += 1;
                        }
                    }
                }
            }
        }
        if yaml.ends_with("rules:\n") {
            yaml.push_str("    []\n");
        }
        fs::write(dir.join(format!("{tenant}.yml")), yaml)?;
    }
    Ok(total)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn write_rule(
    yaml: &mut String,
    key: &Key,
    alert: &str,
    severity: &str,
    expr: &str,
    threshold: f64,
    tenant: &str,
    labels: &[(String, String)],
) {
    let _ = writeln!(yaml, "  - alert: {alert}");
    let _ = writeln!(yaml, "    expr: {}", yaml_string(expr));
    let _ = writeln!(yaml, "    for: {}", key.for_);
    let _ = writeln!(yaml, "    labels:");
    let _ = writeln!(yaml, "      severity: {severity}");
    let _ = writeln!(yaml, "      metric_group: {}", key.name);
    let _ = writeln!(yaml, "      pack: {}", key.pack);
    for (label, value) in labels {
        let _ = writeln!(yaml, "      {label}: {}", yaml_string(value));
    }
    let _ = writeln!(yaml, "    annotations:");
    let _ = writeln!(
        yaml,
        "      summary: {}",
        yaml_string(&format!("{} (tenant {tenant})", key.summary))
    );
    let _ = writeln!(
        yaml,
        "      description: {}",
        yaml_string(&format!(
            "{}: tenant {tenant} is at {{{{ $value | humanize }}}} {}, above its {severity} \
             threshold {threshold}.",
            key.description, key.unit
        ))
    );
}

/// A double-quoted YAML scalar.
pub(super) fn yaml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// The floor

/// A lower bound for any layout of the packs: the rendered alert files with each rule's `expr`
/// replaced by `(<the key's normalization expression>) <op> <the key's default>` (the
/// critical tier's default for a `…Critical` alert): one rule per alert for all tenants, with
/// the packs' groups, names, `for:`, labels (set in the expression, as the packs set them) and
/// annotations, and no threshold lookup, maintenance, metadata or per-queue matching. It
/// fires where the defaults say so, not where the tenants' numbers do, so its alerts differ
/// from the packs'. Returns the number of rules.
pub(super) fn write_floor(rendered: &Path, dir: &Path, catalogue: &Catalogue) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut exprs: HashMap<&str, String> = HashMap::new();
    for key in &catalogue.keys {
        exprs.insert(&key.alert, key.against(&key.signal, key.default));
        if let (Some(alert), Some(critical)) = (&key.critical_alert, key.default_critical) {
            exprs.insert(alert, key.against(&key.signal, critical));
        }
    }
    let mut total = 0;
    for path in yaml_files(rendered)? {
        let name = path.file_name().context("file name")?.to_string_lossy();
        if name.ends_with("-alert.yml") {
            let (text, rules) = floor_rules(&fs::read_to_string(&path)?, &exprs)
                .with_context(|| format!("{}", path.display()))?;
            fs::write(dir.join(&*name), text)?;
            total += rules;
        }
    }
    Ok(total)
}

/// An alert file as `dynalert rules render` writes it (`  - alert: NAME`, then `    expr:`
/// inline or as a block scalar), every `expr` replaced by the alert's entry in `exprs`. The
/// `label_replace` calls the packs wrap an expression in to set its labels (first and last
/// line of the block) stay around the replacement, so the floor sets its labels as they do.
fn floor_rules(text: &str, exprs: &HashMap<&str, String>) -> Result<(String, usize)> {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.lines().peekable();
    let mut alert = None;
    let mut rules = 0;
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("  - alert: ") {
            alert = Some(name.trim());
        } else if line.starts_with("    expr:") {
            let name = alert.take().context("an expr before its alert name")?;
            let expr = exprs
                .get(name)
                .with_context(|| format!("alert {name} is not in the catalogue"))?;
            let mut block = Vec::new();
            while let Some(next) = lines.next_if(|l| l.starts_with("      ")) {
                block.push(next);
            }
            match (block.first(), block.last()) {
                (Some(first), Some(last))
                    if first.trim_start().starts_with("label_replace(") && block.len() > 2 =>
                {
                    let body: Vec<String> = expr.lines().map(|l| format!("        {l}")).collect();
                    let _ = writeln!(out, "    expr: |\n{first}\n{}\n{last}", body.join("\n"));
                }
                _ => {
                    let _ = writeln!(out, "    expr: {}", yaml_string(expr));
                }
            }
            rules += 1;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    Ok((out, rules))
}

// ---------------------------------------------------------------------------------------------
// The reference layout

/// The rendered packs with every threshold lookup (`max by(…) (user_threshold{…})`) recorded as
/// `<labels>:alert_threshold:<key>:<severity>` in a `<pack>-thresholds.yml` group and the
/// alerts reading the recorded series: the reference project's "record everything" layout.
pub(super) fn write_reference(rendered: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for path in yaml_files(rendered)? {
        let name = path
            .file_name()
            .context("file name")?
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&path)?;
        let Some(pack) = name.strip_suffix("-alert.yml") else {
            fs::write(dir.join(&name), text)?;
            continue;
        };
        let (alerts, recorded) = record_thresholds(&text);
        let mut yaml = format!("groups:\n- name: {pack}-threshold-lookups\n  rules:\n");
        for (record, expr) in &recorded {
            let _ = writeln!(
                yaml,
                "  - record: {record}\n    expr: {}",
                yaml_string(expr)
            );
        }
        fs::write(dir.join(&name), alerts)?;
        fs::write(dir.join(format!("{pack}-thresholds.yml")), yaml)?;
    }
    Ok(())
}

/// `text` with each threshold lookup replaced by a recorded series, and the recording rules.
pub(super) fn record_thresholds(text: &str) -> (String, Vec<(String, String)>) {
    let mut lookups: Vec<(String, String)> = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("(user_threshold{") {
        let at = from + found;
        let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
        let (Some(start), Some(end)) = (
            text[line_start..at]
                .rfind("max by(")
                .map(|p| line_start + p),
            text[at..].find("})").map(|p| at + p + 2),
        ) else {
            from = at + 1;
            continue;
        };
        let expr = &text[start..end];
        if !lookups.iter().any(|(e, _)| e == expr) {
            let by = expr["max by(".len()..]
                .split(')')
                .next()
                .unwrap_or("tenant")
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("_");
            let matcher = |label: &str| {
                let needle = format!("{label}=\"");
                expr.find(&needle)
                    .map(|p| &expr[p + needle.len()..])
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .to_owned()
            };
            let base = format!(
                "{by}:alert_threshold:{}_{}:{}",
                matcher("component"),
                matcher("metric"),
                matcher("severity")
            );
            let mut name = base.clone();
            let mut k = 2;
            while lookups.iter().any(|(_, n)| *n == name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            lookups.push((expr.to_owned(), name));
        }
        from = end;
    }
    let mut out = text.to_owned();
    for (expr, name) in &lookups {
        out = out.replace(expr.as_str(), name);
    }
    let recorded = lookups
        .into_iter()
        .map(|(expr, name)| (name, expr))
        .collect();
    (out, recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_threshold_lookups() {
        let text = "    expr: |\n      (\n        s\n          > on(tenant) group_left()\n        \
                    max by(tenant) (user_threshold{component=\"mysql\", metric=\"connections\", severity=\"warning\"})\n      )\n    \
                    annotations:\n      description: \"{{ printf `max(user_threshold{tenant=%q})` }}\"\n";
        let (alerts, recorded) = record_thresholds(text);
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            recorded[0].0,
            "tenant:alert_threshold:mysql_connections:warning"
        );
        assert!(
            alerts.contains(
                "group_left()\n        tenant:alert_threshold:mysql_connections:warning\n"
            )
        );
        assert!(alerts.contains("`max(user_threshold{tenant=%q})`"));
    }

    fn key(name: &str, signal: &str, dimension: Option<(&str, &str)>, critical: bool) -> Key {
        let (component, metric) = name.split_once('_').unwrap();
        Key {
            pack: "p".into(),
            name: name.into(),
            component: component.into(),
            metric: metric.into(),
            op: ">".into(),
            dimension: dimension.map(|(label, _)| label.to_owned()),
            dimension_label: dimension
                .filter(|(label, raw)| label != raw)
                .map(|(_, raw)| raw.to_owned()),
            signal: signal.into(),
            default: 10.0,
            default_critical: critical.then_some(20.0),
            alert: "A".into(),
            critical_alert: critical.then(|| "ACritical".to_owned()),
            for_: "5m".into(),
            summary: "s".into(),
            description: "d".into(),
            unit: "u".into(),
        }
    }

    #[test]
    fn the_floor_sets_the_labels_as_the_packs_do() {
        let exprs = HashMap::from([("A", "(c\n  + d) > 10".to_owned())]);
        let text = "  - alert: A\n    expr: |\n      label_replace(label_replace(\n        (\n          \
                    c > on(tenant) t\n        )\n      , \"pack\", \"p\", \"\", \"\"), \"severity\", \
                    \"warning\", \"\", \"\")\n    for: 5m\n";
        assert_eq!(
            floor_rules(text, &exprs).unwrap(),
            (
                "  - alert: A\n    expr: |\n      label_replace(label_replace(\n        (c\n          + d) > 10\n      \
                 , \"pack\", \"p\", \"\", \"\"), \"severity\", \"warning\", \"\", \"\")\n    for: 5m\n"
                    .to_owned(),
                1
            )
        );
    }

    #[test]
    fn floor_compares_every_signal_with_its_default() {
        let exprs = HashMap::from([
            ("A", "(max by(tenant) (c)) > 10".to_owned()),
            ("ACritical", "(max by(tenant) (c)) > 20".to_owned()),
        ]);
        let text = "groups:\n- name: p-alerts\n  rules:\n  - alert: A\n    expr: |\n      (\n        \
                    (max by(tenant) (c))\n          > on(tenant) group_left()\n        \
                    max by(tenant) (user_threshold{severity=\"warning\"})\n      )\n    for: 5m\n    \
                    labels:\n      severity: warning\n    annotations:\n      summary: s\n  \
                    - alert: ACritical\n    expr: x > on(tenant) user_threshold\n    for: 5m\n";
        let (floor, rules) = floor_rules(text, &exprs).unwrap();
        assert_eq!(rules, 2);
        assert_eq!(
            floor,
            "groups:\n- name: p-alerts\n  rules:\n  - alert: A\n    \
             expr: \"(max by(tenant) (c)) > 10\"\n    for: 5m\n    labels:\n      \
             severity: warning\n    annotations:\n      summary: s\n  - alert: ACritical\n    \
             expr: \"(max by(tenant) (c)) > 20\"\n    for: 5m\n"
        );
        let unknown = text.replace("alert: A\n", "alert: B\n");
        assert!(floor_rules(&unknown, &exprs).is_err());
    }

    #[test]
    fn per_tenant_rules_follow_the_served_rows() {
        let catalogue = Catalogue {
            keys: vec![
                key(
                    "redis_queue_length",
                    "max by(tenant, key) (redis_key_size)",
                    Some(("queue", "key")),
                    false,
                ),
                key("mysql_connections", "max by(tenant) (c)", None, true),
                key(
                    "mysql_deadlocks",
                    "sum by(tenant) (rate(d[5m]))",
                    None,
                    false,
                ),
            ],
            alerts: 4,
            recording: 3,
        };
        let body = "user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\"} 500\n\
                    user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\",queue=\"email\"} 200\n\
                    user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\",queue=\"jobs\"} +Inf\n\
                    user_threshold{tenant=\"t1\",component=\"mysql\",metric=\"connections\",severity=\"critical\"} 95\n\
                    user_threshold{tenant=\"t1\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 80\n\
                    tenant_metadata_info{tenant=\"t1\",owner=\"team-a\",runbook_url=\"\",tier=\"\"} 1\n\
                    user_state_filter{tenant=\"t1\",filter=\"maintenance\",severity=\"info\"} 1\n";
        let served = Served::parse(body);
        assert!(served.maintenance.contains("t1"));
        let dir = WorkDir::new("xtask-bench-rules-test", false).unwrap();
        let written =
            write_per_tenant(dir.path(), &catalogue, &served, &["t1".to_owned()]).unwrap();
        let yaml = fs::read_to_string(dir.path().join("t1.yml")).unwrap();
        // email at its own number, jobs (disabled: +Inf) nowhere, the other queues at 500;
        // both connection tiers; deadlocks has no row (disabled): no rule.
        assert_eq!(written, 4, "{yaml}");
        assert!(
            yaml.contains("redis_key_size{tenant=\\\"t1\\\", key=\\\"email\\\"}"),
            "{yaml}"
        );
        assert!(yaml.contains("key!~\\\"email|jobs\\\"}"), "{yaml}");
        assert!(
            yaml.contains("(max by(tenant) (c{tenant=\\\"t1\\\"})) > 95"),
            "{yaml}"
        );
        assert!(yaml.contains("  - alert: ACritical\n"), "{yaml}");
        assert!(
            yaml.contains("      owner: \"team-a\"\n      queue: \"email\"\n"),
            "{yaml}"
        );
        assert!(
            !yaml.contains("runbook_url") && !yaml.contains("rate(d"),
            "{yaml}"
        );
    }
}
