//! The rendered packs in a real Prometheus, fed by two `dynalert serve` replicas on the example
//! tree: every rule group loads and evaluates without error (duplicated exporter series must
//! not cause matching errors), and the recorded/alerting rules are all there.

mod common;

use std::time::{Duration, Instant};

use common::Served;
use dynalert_testkit::{Prometheus, ScrapeTarget};

#[test]
fn rendered_packs_evaluate_without_errors_with_two_replicas() {
    let dir = tempfile::tempdir().unwrap();
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/conf.d");
    let (log_a, log_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&log_a).unwrap();
    std::fs::create_dir_all(&log_b).unwrap();
    let a = Served::start(std::path::Path::new(examples), &log_a);
    let b = Served::start(std::path::Path::new(examples), &log_b);
    let rules = dir.path().join("rules");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args([
            "rules",
            "render",
            "--format",
            "files",
            "--exporter-job",
            "dynalert",
            "--out",
        ])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut builder = Prometheus::builder()
        .scrape(ScrapeTarget::new("dynalert", a.port))
        .scrape(ScrapeTarget::new("dynalert", b.port));
    for entry in std::fs::read_dir(&rules).unwrap() {
        builder = builder.rule_file(entry.unwrap().path());
    }
    let Some(prom) = builder.start().unwrap() else {
        return;
    };
    // Wait until every group has been evaluated at least twice with data from both replicas.
    prom.wait_for(
        "count(up{job=\"dynalert\"} == 1)",
        |s| s.first().is_some_and(|s| s.value == 2.0),
        Duration::from_secs(30),
    )
    .unwrap();
    let start = Instant::now();
    loop {
        let data = prom.api_get("/api/v1/rules", &[]).unwrap();
        let groups = data["groups"].as_array().unwrap().clone();
        let evaluated = groups.iter().all(|g| {
            g["lastEvaluation"]
                .as_str()
                .is_some_and(|t| !t.starts_with("0001"))
        });
        if evaluated && start.elapsed() > Duration::from_secs(3) {
            let mut rules = 0;
            for group in &groups {
                for rule in group["rules"].as_array().unwrap() {
                    rules += 1;
                    assert_eq!(
                        rule["health"], "ok",
                        "group {}: rule {}: {}",
                        group["name"], rule["name"], rule["lastError"]
                    );
                }
            }
            let rendered: usize = dynalert_rules_count();
            assert_eq!(rules, rendered, "every rendered rule is loaded");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "rule groups were not evaluated: {groups:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // The platform pack sees both replicas up: no DynalertReplicaDown / TooFewReplicas.
    let alerts = prom.api_get("/api/v1/alerts", &[]).unwrap();
    let names: Vec<&str> = alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    assert!(
        !names.iter().any(|n| n.starts_with("Dynalert")),
        "{names:?}"
    );
}

/// Rules in the rendered catalogue, counted through the CLI's JSON listing.
fn dynalert_rules_count() -> usize {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(["rules", "list", "--format", "json"])
        .output()
        .unwrap();
    let packs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    packs
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["recording_rules"].as_u64().unwrap() as usize + p["alerts"].as_array().unwrap().len()
        })
        .sum()
}
