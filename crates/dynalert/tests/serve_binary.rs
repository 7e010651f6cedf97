//! The real binary over HTTP: hot reload of edits, additions, removals, renames, a broken file
//! keeping its last good content, and a Kubernetes ConfigMap `..data` swap.

mod common;

use std::time::Duration;

use common::{Served, write};

/// The bound: a change on disk is served within 1 s.
const SERVED_WITHIN: Duration = Duration::from_secs(1);
/// Polling stops later than that so a slow run reports how slow it was.
const GIVE_UP: Duration = Duration::from_secs(5);

fn line(tenant: &str, value: &str) -> String {
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
    )
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
    served.wait_for_line(&line("a", "70"), GIVE_UP);

    write(
        &conf,
        "a.yaml",
        "tenants:\n  a:\n    mysql_connections: 75\n",
    );
    let took = served.wait_for_line(&line("a", "75"), GIVE_UP);
    assert!(took <= SERVED_WITHIN, "edit served after {took:?}");

    write(&conf, "b.yaml", "tenants:\n  b: {}\n");
    let took = served.wait_for_line(&line("b", "80"), GIVE_UP);
    assert!(took <= SERVED_WITHIN, "new file served after {took:?}");

    std::fs::rename(conf.join("b.yaml"), conf.join("b-renamed.yaml")).unwrap();
    std::thread::sleep(Duration::from_millis(800));
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
    let start = std::time::Instant::now();
    loop {
        let (code, body) = served.get("/ready");
        if body.contains("a.yaml:") {
            assert_eq!(code, 200, "still ready: the rest of the tree is served");
            break;
        }
        assert!(
            start.elapsed() < GIVE_UP,
            "error never showed in /ready: {body}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
    let metrics = served.metrics();
    assert!(metrics.contains(&line("a", "75")), "last good value kept");
    assert!(
        metrics.contains("dynalert_config_errors{file=\"a.yaml\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dynalert_config_last_reload_successful 0"));
    let (_, config) = served.get("/api/v1/config");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["files"]["a.yaml"], "serving_last_good");
    assert_eq!(config["errors"][0]["file"], "a.yaml");
    assert_eq!(config["errors"][0]["line"], 3);

    std::fs::remove_file(conf.join("b-renamed.yaml")).unwrap();
    let start = std::time::Instant::now();
    while served.metrics().contains("tenant=\"b\"") {
        assert!(start.elapsed() < GIVE_UP, "removed tenant still served");
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        start.elapsed() <= SERVED_WITHIN,
        "removal served after {:?}",
        start.elapsed()
    );
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
    served.wait_for_line(&line("a", "80"), GIVE_UP);

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
    let took = served.wait_for_line(&line("a", "90"), GIVE_UP);
    assert!(
        took <= SERVED_WITHIN,
        "ConfigMap swap served after {took:?}"
    );
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
    let status = served.terminate(Duration::from_secs(10));
    assert!(
        status.success(),
        "exit {status:?}; log:\n{}",
        served.log_tail()
    );
    assert!(served.log_tail().contains("shutting down"));
}
