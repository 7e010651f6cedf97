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

fn threshold(tenant: &str, component_metric: (&str, &str), severity: &str, value: &str) -> String {
    let (component, metric) = component_metric;
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"{component}\",metric=\"{metric}\",severity=\"{severity}\"}} {value}"
    )
}

/// Waits until `/ready` says `what`, and returns its body.
fn wait_for_ready_line(served: &Served, what: &str) -> String {
    wait_until(&format!("/ready saying {what:?}"), || {
        let (_, body) = served.get("/ready");
        if body.contains(what) {
            Ok(body)
        } else {
            Err(body)
        }
    })
}

/// Issue 18 item 6: two keys of one tenant for one series are refused by `lint`, by the
/// loader (last good kept) and the views show what `/metrics` serves.
#[test]
fn two_keys_for_one_series_are_refused_and_the_views_show_what_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  redis_queue_length: 500\n  mysql_connections: 80\n  mysql_connections_critical: 95\n",
    );
    write(
        &conf,
        "t.yaml",
        "tenants:\n  t:\n    \"redis_queue_length{queue='a'}\": 1\n    mysql_connections: \"70:critical\"\n",
    );
    let served = Served::start(&conf, dir.path());
    let queue = "user_threshold{tenant=\"t\",component=\"redis\",metric=\"queue_length\",severity=\"warning\",queue=\"a\"} 1";
    let metrics = served.wait_for_line(queue);
    // Across layers the tenant's "70:critical" wins over the default tier, and says so.
    let critical = threshold("t", ("mysql", "connections"), "critical", "70");
    assert!(metrics.contains(&critical), "{metrics}");
    assert!(!metrics.contains(&threshold("t", ("mysql", "connections"), "critical", "95")));
    let effective = served.get_json("/api/v1/tenants/t/effective");
    let tier = effective["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "mysql_connections_critical")
        .unwrap_or_else(|| panic!("{effective:#}"));
    assert_eq!(
        (&tier["state"], &tier["value"]),
        (&"overridden".into(), &Value::Null)
    );

    write(
        &conf,
        "t.yaml",
        "tenants:\n  t:\n    \"redis_queue_length{queue='a'}\": 1\n    'redis_queue_length{ queue = \"a\" }': 2\n    mysql_connections: \"70:critical\"\n",
    );
    let error = "t.yaml:4:5: error: tenant \"t\", key \"redis_queue_length{ queue = \\\"a\\\" }\": serves the same series as key \"redis_queue_length{queue='a'}\" (line 3, column 5)";
    wait_for_ready_line(&served, error);
    let metrics = served.metrics();
    let rows: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("tenant=\"t\"") && l.contains("queue=\"a\""))
        .collect();
    assert_eq!(rows, vec![queue], "the last good version stays served");
    let effective = served.get_json("/api/v1/tenants/t/effective");
    let keys: Vec<&str> = effective["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["key"].as_str())
        .filter(|k| k.contains("{"))
        .collect();
    assert_eq!(keys, vec!["redis_queue_length{queue='a'}"]);
    let config = served.get_json("/api/v1/config");
    assert_eq!(config["files"]["t.yaml"], "serving_last_good");

    let lint = std::process::Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(["lint".as_ref(), conf.as_os_str()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&lint.stdout);
    assert_eq!(lint.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(error), "{stdout}");
}

/// Issue 18 item 7: a broken platform file gives no other file an error and blocks no edit;
/// a tenant broken by a platform change keeps the values it had, with an error naming both
/// files; a valid platform change is served and `/ready` and the log list whom it changed.
#[test]
fn platform_files_never_change_what_other_files_serve() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n",
    );
    write(
        &conf,
        "_profiles.yaml",
        "profiles:\n  high-traffic: {app_conn: 300, app_conn_critical: 400}\n",
    );
    write(
        &conf,
        "db-a.yaml",
        "tenants:\n  db-a:\n    _profile: high-traffic\n",
    );
    write(&conf, "db-b.yaml", "tenants:\n  db-b:\n    app_conn: 50\n");
    let served = Served::start(&conf, dir.path());
    let held = threshold("db-a", ("app", "conn"), "critical", "400");
    served.wait_for_line(&held);

    write(&conf, "_defaults.yaml", "defaults:\n  app_conn: [oops\n");
    wait_for_ready_line(&served, "_defaults.yaml: serving its last good content");
    write(&conf, "db-b.yaml", "tenants:\n  db-b:\n    app_conn: 60\n");
    served.wait_for_line(&threshold("db-b", ("app", "conn"), "warning", "60"));
    let (_, ready) = served.get("/ready");
    assert!(!ready.contains("db-b.yaml"), "{ready}");
    assert!(!ready.contains("_profiles.yaml"), "{ready}");

    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_mem: 85\n",
    );
    served.wait_for_line(&threshold("db-b", ("app", "mem"), "warning", "85"));

    // The profile goes away: db-a keeps 400, not the default 95.
    write(&conf, "_profiles.yaml", "profiles: {}\n");
    wait_for_ready_line(
        &served,
        "db-a.yaml:2:3: error: tenant \"db-a\": keeps the values it had before the change to _profiles.yaml",
    );
    assert!(served.metrics().contains(&held));

    // A valid platform change is served, and whom it changed is listed.
    write(
        &conf,
        "_defaults.yaml",
        "defaults:\n  app_conn: 80\n  app_conn_critical: 95\n  app_mem: 90\n",
    );
    served.wait_for_line(&threshold("db-b", ("app", "mem"), "warning", "90"));
    let summary = "_defaults.yaml changed the thresholds of 1 tenant(s): db-b";
    wait_for_ready_line(&served, summary);
    assert!(served.metrics().contains(&held));
    let log = dir.path().join("dynalert.log");
    wait_until("the platform change in the log", || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains(&format!("platform change served: {summary}")) {
            Ok(())
        } else {
            Err(text)
        }
    });
}
