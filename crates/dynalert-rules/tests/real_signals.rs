//! Every key of every pack against the real `promtool` with its REAL expression: the rendered
//! rules (recording groups included, annotations dropped) are evaluated on input series named
//! and labelled as the exporters expose them, two instances (or replicas, pods, nodes) per
//! tenant, with thresholds from real dynalert output.
//!
//! `promtool.rs` proves the threshold logic on injected signals; this file proves that each
//! pack's selectors, label matching and arithmetic fire on the exporter's actual series. An
//! alert whose selector misses the exporter's names stays silent here and fails.
//!
//! The exporter data is in `common/exporters.rs`, one table per pack.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use Shape::{Absent, Counter, Gauge, Steps};
use common::exporters::{DYNALERT, cadvisor, mariadb, table};
use common::real::{
    Expected, Input, Row, SAMPLES, Shape, alert_labels, both, group, input, input_series,
    rendered_rules, row, write_real_signal_tests, write_rules, write_tests,
};
use common::served_series;
use dynalert_rules::pack::{AlertDecl, KeyDecl, Pack};
use dynalert_rules::{RenderOptions, catalogue};
use dynalert_testkit::require_binary;

fn promtool_test(promtool: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(["test", "rules", "tests.yml"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn pack(name: &str) -> &'static Pack {
    catalogue().iter().find(|p| p.pack == name).unwrap()
}

#[test]
fn every_key_of_every_pack_fires_on_its_exporters_real_series() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    assert_eq!(catalogue().len(), 6);
    for pack in catalogue() {
        let dir = tempfile::tempdir().unwrap();
        write_real_signal_tests(pack, &table(&pack.pack), dir.path());
        let (ok, output) = promtool_test(&promtool, dir.path());
        assert!(
            ok,
            "pack {}:\n{output}\n(files in {})",
            pack.pack,
            dir.keep().display()
        );
    }
}

/// Runs promtool on `dir`'s `tests.yml`; on failure the files are kept for a look.
fn assert_promtool_passes(promtool: &Path, dir: tempfile::TempDir, what: &str) {
    let (ok, output) = promtool_test(promtool, dir.path());
    assert!(ok, "{what}:\n{output}\n(files in {})", dir.keep().display());
}

fn with_owner(mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.insert("owner".into(), "team-a".into());
    labels.insert("tier".into(), "gold".into());
    labels
}

/// A dimensional key's critical tier on real cAdvisor series: per-container critical rows
/// win over the tenant-wide critical threshold in both directions, and containers without a
/// row fall back to it.
#[test]
fn a_dimensional_keys_critical_tier_fires_per_label_row_and_by_fallback() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let pack = pack("kubernetes");
    let dir = tempfile::tempdir().unwrap();
    write_rules(rendered_rules(pack, &RenderOptions::default()), dir.path());
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("_defaults.yaml"),
        dynalert_rules::defaults::defaults_yaml(&[pack]),
    )
    .unwrap();
    // app: no row, falls back to 95 (at 97: fires). cache: its own 85 (at 90: fires, where
    // the fallback would not). db: its own 99 (at 97: quiet, where the fallback would fire).
    // globex keeps the defaults (85 / 95) and runs at 80.
    let tenants = "tenants:\n  acme:\n    container_memory_usage: 50\n    \
         container_memory_usage_critical: 95\n    \
         \"container_memory_usage_critical{container='cache'}\": 85\n    \
         \"container_memory_usage_critical{container='db'}\": 99\n    \
         _metadata: {owner: team-a, tier: gold}\n  globex: {}\n";
    let mut series = served_series(
        pack,
        &conf,
        tenants,
        "dimensional critical",
        "dynalert",
        SAMPLES,
    );
    let limit = 536870912.0;
    let memory = |container: &str, percent: f64| {
        vec![
            input(
                &cadvisor("container_memory_working_set_bytes", container),
                [Gauge(percent / 100.0 * limit), Gauge(limit / 10.0)],
            ),
            both(
                &cadvisor("container_spec_memory_limit_bytes", container),
                Gauge(limit),
            ),
        ]
    };
    let acme: Vec<Input> = [("app", 97.0), ("cache", 90.0), ("db", 97.0)]
        .iter()
        .flat_map(|(c, p)| memory(c, *p))
        .collect();
    series.extend(input_series("kubernetes", "acme", "dynalert", &acme));
    series.extend(input_series(
        "kubernetes",
        "globex",
        "dynalert",
        &memory("app", 80.0),
    ));

    let key = "container_memory_usage";
    let alert = |severity: &str, container: &str| {
        with_owner(alert_labels(
            pack,
            key,
            severity,
            "acme",
            &[("container", container)],
        ))
    };
    let mut expected: Vec<Expected> = ["app", "cache", "db"]
        .iter()
        .map(|c| ("ContainerHighMemoryUsage".to_string(), alert("warning", c)))
        .collect();
    for c in ["app", "cache"] {
        expected.push((
            "ContainerHighMemoryUsageCritical".into(),
            alert("critical", c),
        ));
    }
    let checked = [
        "ContainerHighMemoryUsage".to_string(),
        "ContainerHighMemoryUsageCritical".to_string(),
    ];
    write_tests(
        vec![group(
            "per-container critical rows and fallback".into(),
            series,
            &checked,
            &expected,
        )],
        dir.path(),
    );
    assert_promtool_passes(&promtool, dir, "dimensional critical tier");
}

/// A platform `custom_alerts` entry declares the key `custom_<name>`; tenants set it and its
/// `_critical` tier like any key, and dynalert serves both as
/// `user_threshold{component="custom", metric="<name>"}` rows. No renderer turns custom
/// alerts into rules yet, so the rule here is the packs' own alert shape generated from the
/// custom alert's definition (as the model parsed it) over real mysqld_exporter series.
#[test]
fn a_custom_alerts_key_critical_tier_fires_at_its_own_threshold() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let base = pack("mariadb");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("_defaults.yaml"),
        dynalert_rules::defaults::defaults_yaml(&[base])
            + "custom_alerts:\n  - name: open_files\n    \
               expr: 'max by(tenant) (mysql_global_status_open_files)'\n    \
               op: '>'\n    for: 5m\n    \
               description: Files open on the busiest MariaDB instance\n",
    )
    .unwrap();
    let tenants = "tenants:\n  acme:\n    custom_open_files: 1000\n    \
         custom_open_files_critical: 4000\n    _metadata: {owner: team-a, tier: gold}\n  \
         globex:\n    custom_open_files: 8000\n    custom_open_files_critical: 9000\n";
    let thresholds = served_series(base, &conf, tenants, "custom alert", "dynalert", SAMPLES);
    assert!(
        thresholds.iter().any(|s| s.series.contains(
            r#"user_threshold{tenant="acme",component="custom",metric="open_files",severity="critical""#
        )),
        "dynalert serves no critical row for custom_open_files"
    );

    let model = dynalert_config::load_documents(
        dynalert_store::read_tree(&conf).unwrap(),
        base.keys.keys().cloned(),
    );
    let custom = model
        .platforms
        .values()
        .find_map(|p| p.custom_alerts.get("open_files").cloned())
        .expect("the custom alert is in the model");
    let key = custom.key();
    let decl = KeyDecl {
        description: custom.description.clone().unwrap_or_default(),
        unit: String::new(),
        default: 0.0,
        default_critical: Some(0.0),
        signal: custom.expr.clone(),
        op: custom.op,
        dimension: None,
        dimension_label: None,
        alert: AlertDecl {
            name: "CustomOpenFiles".into(),
            for_: custom.for_.clone().unwrap_or_else(|| "0m".into()),
            summary: String::new(),
            description: String::new(),
        },
    };
    let custom_pack = Pack {
        pack: "custom".into(),
        description: "custom alerts".into(),
        exporter: "mysqld_exporter".into(),
        pseudo_tenant: None,
        keys: [(key.clone(), decl)].into(),
        groups: Vec::new(),
    };
    write_rules(
        rendered_rules(&custom_pack, &RenderOptions::default()),
        dir.path(),
    );

    let checked = [
        "CustomOpenFiles".to_string(),
        "CustomOpenFilesCritical".to_string(),
    ];
    let mut groups = Vec::new();
    // 2000 open files: acme's warning only; 5000: acme's critical too; globex never.
    for (open, critical) in [(2000.0, false), (5000.0, true)] {
        let mut series = thresholds.clone();
        let files = [input(
            "mysql_global_status_open_files",
            [Gauge(open), Gauge(10.0)],
        )];
        for tenant in ["acme", "globex"] {
            series.extend(input_series("mariadb", tenant, "dynalert", &files));
        }
        let labels = |severity| with_owner(alert_labels(&custom_pack, &key, severity, "acme", &[]));
        let mut expected = vec![(checked[0].clone(), labels("warning"))];
        if critical {
            expected.push((checked[1].clone(), labels("critical")));
        }
        groups.push(group(
            format!("{key} at {open}"),
            series,
            &checked,
            &expected,
        ));
    }
    write_tests(groups, dir.path());
    assert_promtool_passes(&promtool, dir, "custom alert");
}

/// The platform pack rendered for a deployment whose dynalert scrape job is not called
/// `dynalert` (`--exporter-job`): its alerts read that job's series, and the same series
/// under the default job name count as no dynalert at all.
#[test]
fn the_platform_pack_rendered_for_another_exporter_job_reads_that_job() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let job = "dynalert-prod";
    let pack = pack("platform");
    let opts = RenderOptions {
        exporter_job: job.into(),
        ..Default::default()
    };
    let rules = rendered_rules(pack, &opts);
    for rule in rules.iter().flat_map(|g| &g.rules) {
        assert!(
            rule.expr.contains(&format!("job=\"{job}\""))
                && !rule.expr.contains("__EXPORTER_JOB__"),
            "{:?}",
            rule.expr
        );
        assert!(!rule.expr.contains("job=\"dynalert\""), "{:?}", rule.expr);
    }
    let dir = tempfile::tempdir().unwrap();
    write_rules(rules, dir.path());

    // The platform tenant with the pack's defaults, served by the renamed job.
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("_defaults.yaml"), "defaults: {}\n").unwrap();
    let mut body = String::new();
    for (k, d) in &pack.keys {
        body.push_str(&format!("    {k}: {}\n", common::number(d.default)));
        if let Some(c) = d.default_critical {
            body.push_str(&format!("    {k}_critical: {}\n", common::number(c)));
        }
    }
    let thresholds = served_series(
        pack,
        &conf,
        &format!("tenants:\n  platform:\n{body}"),
        "platform defaults",
        job,
        SAMPLES,
    );
    // Replica 0 is down; replica 1 is up, its last reload failed and it restarted 5 times.
    let data = [
        input(&format!("up{{{DYNALERT}}}"), [Gauge(0.0), Gauge(1.0)]),
        input(
            &format!("dynalert_config_last_reload_successful{{{DYNALERT}}}"),
            [Absent, Gauge(0.0)],
        ),
        input(
            &format!("process_start_time_seconds{{{DYNALERT}}}"),
            [Absent, Steps(5, 1.7e9, 600.0)],
        ),
    ];
    let checked: Vec<String> = pack
        .keys
        .values()
        .flat_map(|d| {
            let critical = d
                .default_critical
                .map(|_| format!("{}Critical", d.alert.name));
            std::iter::once(d.alert.name.clone()).chain(critical)
        })
        .collect();
    let fired = |names: &[(&str, &str)]| -> Vec<Expected> {
        names
            .iter()
            .map(|(alert, severity)| {
                let key = pack
                    .keys
                    .iter()
                    .find(|(_, d)| alert.starts_with(&d.alert.name))
                    .unwrap()
                    .0;
                (
                    alert.to_string(),
                    alert_labels(pack, key, severity, "platform", &[]),
                )
            })
            .collect()
    };
    let mut on_job = thresholds.clone();
    on_job.extend(input_series("platform", "platform", job, &data));
    let mut on_default_name = thresholds;
    on_default_name.extend(input_series("platform", "platform", "dynalert", &data));
    let groups = vec![
        group(
            format!("series of job {job}"),
            on_job,
            &checked,
            &fired(&[
                ("DynalertReplicaDown", "warning"),
                ("DynalertTooFewReplicas", "warning"),
                ("DynalertConfigReloadFailing", "warning"),
                ("DynalertFrequentRestarts", "warning"),
            ]),
        ),
        group(
            "the same series under job dynalert".into(),
            on_default_name,
            &checked,
            &fired(&[
                ("DynalertAbsent", "warning"),
                ("DynalertAbsentCritical", "critical"),
                ("DynalertTooFewReplicas", "warning"),
            ]),
        ),
    ];
    write_tests(groups, dir.path());
    assert_promtool_passes(&promtool, dir, "platform pack with --exporter-job");
}

/// On MySQL, which has no `Innodb_deadlocks` status variable, the deadlock signal falls back
/// to `information_schema.innodb_metrics` (`--collect.info_schema.innodb_metrics`), where
/// `lock_deadlocks` is of type `counter` and so exported with `_total`. (MariaDB's copy of
/// that row is not a counter and comes without `_total`: the pack reads MariaDB's status
/// variable instead.)
#[test]
fn mysql_deadlocks_fall_back_to_the_innodb_metrics_counter_on_mysql() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let rows: Vec<Row> = mariadb()
        .into_iter()
        .map(|r| {
            if r.key != "mysql_deadlocks" {
                return r;
            }
            row("mysql_deadlocks", 4.0, 8.0, |v| {
                vec![input(
                    "mysql_info_schema_innodb_metrics_lock_lock_deadlocks_total",
                    [Counter(v * 0.75), Counter(v * 0.25)],
                )]
            })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    write_real_signal_tests(pack("mariadb"), &rows, dir.path());
    assert_promtool_passes(&promtool, dir, "mysql_deadlocks on MySQL");
}
