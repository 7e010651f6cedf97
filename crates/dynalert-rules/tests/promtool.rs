//! The rendered packs against the real `promtool` (Debian `prometheus`): every rendered file
//! passes `promtool check rules`, and generated `promtool test rules` unit tests prove each
//! alert of each pack fires per tenant exactly when it should.

mod common;

use std::path::Path;
use std::process::Command;

use dynalert_rules::{Format, RenderOptions, catalogue, render};
use dynalert_testkit::require_binary;

fn promtool(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn every_rendered_rule_file_passes_promtool_check_rules() {
    if require_binary("promtool").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let packs: Vec<_> = catalogue().iter().collect();
    let files = render(&packs, Format::Files, &RenderOptions::default());
    let mut names = Vec::new();
    for f in &files {
        std::fs::write(dir.path().join(&f.name), &f.content).unwrap();
        names.push(f.name.as_str());
    }
    let mut args = vec!["check", "rules"];
    args.extend(&names);
    let (ok, output) = promtool(&args, dir.path());
    assert!(ok, "{output}");
}

#[test]
fn configmaps_and_prometheusrules_hold_the_same_valid_rules() {
    if require_binary("promtool").is_none() {
        return;
    }
    #[derive(serde::Deserialize)]
    struct ConfigMap {
        data: std::collections::BTreeMap<String, String>,
    }
    #[derive(serde::Deserialize)]
    struct PrometheusRule {
        spec: serde_json_like::Spec,
    }
    mod serde_json_like {
        #[derive(serde::Deserialize, serde::Serialize)]
        pub struct Spec {
            pub groups: Vec<dynalert_rules::pack::RuleGroup>,
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let packs: Vec<_> = catalogue().iter().collect();
    let opts = RenderOptions {
        labels: [("release".to_string(), "prometheus".to_string())].into(),
        ..Default::default()
    };
    let files = render(&packs, Format::Files, &opts);
    for cm in render(&packs, Format::ConfigMap, &opts) {
        let parsed: ConfigMap = serde_saphyr::from_str(&cm.content).unwrap();
        for (name, content) in parsed.data {
            let file = files
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} not rendered as a file"));
            assert_eq!(
                content, file.content,
                "{name} differs between configmap and files"
            );
        }
    }
    for (i, pr) in render(&packs, Format::PrometheusRule, &opts)
        .into_iter()
        .enumerate()
    {
        assert!(pr.content.contains("release: prometheus"), "{}", pr.name);
        let parsed: PrometheusRule = serde_saphyr::from_str(&pr.content).unwrap();
        let path = dir.path().join(format!("pr{i}.yml"));
        std::fs::write(&path, serde_saphyr::to_string(&parsed.spec).unwrap()).unwrap();
        let (ok, output) = promtool(&["check", "rules", path.to_str().unwrap()], dir.path());
        assert!(ok, "{}: {output}", pr.name);
    }
}

#[test]
fn every_alert_of_every_pack_fires_per_tenant_exactly_when_it_should() {
    if require_binary("promtool").is_none() {
        return;
    }
    for pack in catalogue() {
        let dir = tempfile::tempdir().unwrap();
        common::write_unit_tests(pack, dir.path());
        let (ok, output) = promtool(&["test", "rules", "tests.yml"], dir.path());
        assert!(
            ok,
            "pack {}:\n{output}\n(files in {})",
            pack.pack,
            dir.keep().display()
        );
    }
}

#[test]
fn every_rendered_rule_file_loads_in_vmalert() {
    let Some(vmalert) = require_binary("vmalert") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let packs: Vec<_> = catalogue().iter().collect();
    for f in render(&packs, Format::Files, &RenderOptions::default()) {
        std::fs::write(dir.path().join(&f.name), &f.content).unwrap();
    }
    let dry_run = |pattern: &str| {
        Command::new(&vmalert)
            .args(["-dryRun", &format!("-rule={pattern}")])
            .output()
            .unwrap()
    };
    let out = dry_run(&format!("{}/*.yml", dir.path().display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The check is real: a broken file fails it.
    std::fs::write(
        dir.path().join("broken.yaml"),
        "groups:\n- name: x\n  rules:\n  - alert: A\n    expr: sum(\n",
    )
    .unwrap();
    assert!(
        !dry_run(&format!("{}/broken.yaml", dir.path().display()))
            .status
            .success()
    );
}

/// The platform pack's outage alerts on the series `dynalert serve` exports, over time:
/// PostgreSQL down under two replicas (both keep serving, `dynalert_store_up` 0, the served
/// thresholds' age growing a minute per minute) fires `DynalertStoreDown`, and
/// `DynalertServedThresholdsStale` once the age passes the platform tenant's
/// `dynalert_model_age` (so a deployment picks its own), but no stall; a replica whose reload
/// loop stalls fires `DynalertReloadStalled` alone.
#[test]
fn the_platform_pack_tells_a_store_outage_from_a_stalled_reload_loop() {
    use common::exporters::DYNALERT;
    use common::real::Shape::{Gauge, Linear};
    use common::real::{
        SAMPLES, alert_labels, group, input, input_series, rendered_rules, write_rules, write_tests,
    };

    if require_binary("promtool").is_none() {
        return;
    }
    let pack = catalogue().iter().find(|p| p.pack == "platform").unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_rules(rendered_rules(pack, &RenderOptions::default()), dir.path());
    let checked: Vec<String> = [
        "DynalertStoreDown",
        "DynalertServedThresholdsStale",
        "DynalertReloadStalled",
    ]
    .map(String::from)
    .to_vec();
    let key_of = |alert: &str| {
        pack.keys
            .iter()
            .find(|(_, d)| d.alert.name == alert)
            .unwrap_or_else(|| panic!("no key alerts as {alert}"))
            .0
            .as_str()
    };
    let fired = |alert: &str| {
        (
            alert.to_string(),
            alert_labels(pack, key_of(alert), "warning", "platform", &[]),
        )
    };
    // The platform tenant with the pack's defaults and its own age limit.
    let thresholds = |max_age: u32| {
        let conf = dir.path().join(format!("conf-{max_age}"));
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(conf.join("_defaults.yaml"), "defaults: {}\n").unwrap();
        let mut body = String::new();
        for (k, d) in &pack.keys {
            let value = match k.as_str() {
                "dynalert_model_age" => f64::from(max_age),
                _ => d.default,
            };
            body.push_str(&format!("    {k}: {}\n", common::number(value)));
            if let Some(c) = d.default_critical {
                body.push_str(&format!("    {k}_critical: {}\n", common::number(c)));
            }
        }
        let tenants = format!("tenants:\n  platform:\n{body}");
        common::served_series(pack, &conf, &tenants, "platform", "dynalert", SAMPLES)
    };
    let series = |max_age: u32, inputs: &[common::real::Input]| {
        let mut all = thresholds(max_age);
        all.extend(input_series("platform", "platform", "dynalert", inputs));
        all
    };
    let metric = |name: &str| format!("{name}{{{DYNALERT}}}");
    let up = input(&metric("up"), [Gauge(1.0), Gauge(1.0)]);

    // Evaluated at 70 minutes: the store went down at the start, so the age is 4,200 s.
    let outage = [
        up.clone(),
        input(&metric("dynalert_store_up"), [Gauge(0.0), Gauge(0.0)]),
        input(&metric("dynalert_reload_stalled"), [Gauge(0.0), Gauge(0.0)]),
        input(
            &metric("dynalert_model_age_seconds"),
            [Linear(0.0, 60.0), Linear(0.2, 60.0)],
        ),
    ];
    let stalled = [
        up,
        input(&metric("dynalert_store_up"), [Gauge(1.0), Gauge(1.0)]),
        input(&metric("dynalert_reload_stalled"), [Gauge(0.0), Gauge(1.0)]),
        // The stalled replica's age grows too, but stays under the default 30 minutes here.
        input(
            &metric("dynalert_model_age_seconds"),
            [Gauge(0.3), Linear(0.0, 20.0)],
        ),
    ];
    let groups = vec![
        group(
            "store down, thresholds older than the platform's 1h".into(),
            series(3600, &outage),
            &checked,
            &[
                fired("DynalertStoreDown"),
                fired("DynalertServedThresholdsStale"),
            ],
        ),
        group(
            "store down, thresholds younger than the platform's 2h".into(),
            series(7200, &outage),
            &checked,
            &[fired("DynalertStoreDown")],
        ),
        group(
            "one replica's reload loop stalled".into(),
            series(1800, &stalled),
            &checked,
            &[fired("DynalertReloadStalled")],
        ),
    ];
    write_tests(groups, dir.path());
    let (ok, output) = promtool(&["test", "rules", "tests.yml"], dir.path());
    assert!(ok, "{output}\n(files in {})", dir.keep().display());
}
