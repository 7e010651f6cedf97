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
