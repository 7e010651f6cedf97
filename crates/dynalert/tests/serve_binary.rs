//! The real binary over HTTP: hot reload of edits, additions, removals, renames, a broken file
//! keeping its last good content, and a Kubernetes ConfigMap `..data` swap. How soon a change
//! is served is the benchmarks' business; these tests wait for each change (up to
//! [`common::WAIT`], for one that never comes).

mod common;

use common::{Served, wait_until, write};
use serde_json::Value;

fn line(tenant: &str, value: &str) -> String {
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
    )
}

/// `/api/v1/config` once the files it reports are exactly `files` (sorted): the sign that a
/// reload has seen the tree as it is now.
fn wait_for_files(served: &Served, files: &[&str]) -> Value {
    wait_until(&format!("/api/v1/config listing {files:?}"), || {
        let config = served.get_json("/api/v1/config");
        let mut listed: Vec<&str> = config["files"]
            .as_object()
            .map(|files| files.keys().map(String::as_str).collect())
            .unwrap_or_default();
        listed.sort_unstable();
        if listed == files {
            Ok(config.clone())
        } else {
            Err(format!("{config:#}"))
        }
    })
}

#[test]
fn edits_additions_removals_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n",
    );
    write(
        &conf,
        "a.yaml",
        "tenants:\n  a:\n    mysql_connections: 70\n",
    );
    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("a", "70"));

    write(
        &conf,
        "a.yaml",
        "tenants:\n  a:\n    mysql_connections: 75\n",
    );
    served.wait_for_line(&line("a", "75"));

    write(&conf, "b.yaml", "tenants:\n  b: {}\n");
    served.wait_for_line(&line("b", "80"));

    // Once the server lists the renamed file (and no longer the old name), it has loaded the
    // tree after the rename: the tenant must still be served.
    std::fs::rename(conf.join("b.yaml"), conf.join("b-renamed.yaml")).unwrap();
    wait_for_files(&served, &["_defaults.yaml", "a.yaml", "b-renamed.yaml"]);
    assert!(
        served.metrics().contains(&line("b", "80")),
        "a renamed file keeps serving its tenant"
    );

    // A broken file keeps its last good content, and says so everywhere.
    write(
        &conf,
        "a.yaml",
        "tenants:\n  a:\n    mysql_connections: seventy\n",
    );
    let (code, _) = wait_until("the error in /ready", || {
        let (code, body) = served.get("/ready");
        if body.contains("a.yaml:") {
            Ok((code, body))
        } else {
            Err(body)
        }
    });
    assert_eq!(code, 200, "still ready: the rest of the tree is served");
    let metrics = served.metrics();
    assert!(metrics.contains(&line("a", "75")), "last good value kept");
    assert!(
        metrics.contains("dynalert_config_errors{file=\"a.yaml\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dynalert_config_last_reload_successful 0"));
    let config = served.get_json("/api/v1/config");
    assert_eq!(config["files"]["a.yaml"], "serving_last_good");
    assert_eq!(config["errors"][0]["file"], "a.yaml");
    assert_eq!(config["errors"][0]["line"], 3);

    std::fs::remove_file(conf.join("b-renamed.yaml")).unwrap();
    served.wait_for_metrics("tenant b no longer served", |m| !m.contains("tenant=\"b\""));
}

#[test]
fn kubernetes_configmap_symlink_swap() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "..2026_01_01/_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n",
    );
    write(&conf, "..2026_01_01/a.yaml", "tenants:\n  a: {}\n");
    std::os::unix::fs::symlink("..2026_01_01", conf.join("..data")).unwrap();
    for f in ["_defaults.yaml", "a.yaml"] {
        std::os::unix::fs::symlink(format!("..data/{f}"), conf.join(f)).unwrap();
    }
    let served = Served::start(&conf, dir.path());
    served.wait_for_line(&line("a", "80"));

    // What the kubelet does: write a new timestamped folder, point a temporary symlink at it,
    // and rename that over `..data` in one step.
    write(
        &conf,
        "..2026_01_02/_defaults.yaml",
        "defaults:\n  mysql_connections: 90\n",
    );
    write(&conf, "..2026_01_02/a.yaml", "tenants:\n  a: {}\n");
    std::os::unix::fs::symlink("..2026_01_02", conf.join("..data_tmp")).unwrap();
    std::fs::rename(conf.join("..data_tmp"), conf.join("..data")).unwrap();
    std::fs::remove_dir_all(conf.join("..2026_01_01")).unwrap();
    served.wait_for_line(&line("a", "90"));
}

#[test]
fn unreadable_directory_fails_fast() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args([
            "serve",
            "--config-dir",
            "/nonexistent/conf.d",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/conf.d"));
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  mysql_connections: 80\n",
    );
    let mut served = Served::start(&conf, dir.path());
    let status = served.terminate();
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        served.log_tail()
    );
    assert!(served.log_tail().contains("shutting down"));
}
