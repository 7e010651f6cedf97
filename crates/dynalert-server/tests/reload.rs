//! Hot reload: changes on disk are served through the file watcher alone (the periodic
//! re-scan is an hour away in these tests), and a broken edit loses nothing. How soon a change
//! is served is measured by the benchmarks, not here: each wait below only gives up, after
//! [`WAIT`], on a change that never comes.

mod common;

use std::os::unix::fs::symlink;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_file_is_served() {
    let dir = conf_d();
    let server = Server::start(dir.path()).await;
    assert_eq!(
        threshold(
            &server.metrics().await,
            "db-a",
            "mysql_connections",
            "warning"
        ),
        Some(70.0)
    );

    std::fs::write(dir.path().join("a.yaml"), tenant("db-a", 75)).unwrap();
    server
        .wait_for_metrics("edit", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(75.0)
        })
        .await;

    // A platform default reaches every tenant that does not override it.
    std::fs::write(
        dir.path().join("_defaults.yaml"),
        DEFAULTS.replace("85", "90"),
    )
    .unwrap();
    server
        .wait_for_metrics("default", |m| {
            threshold(m, "db-a", "redis_memory_usage", "warning") == Some(90.0)
        })
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_removed_and_renamed_files_are_served() {
    let dir = conf_d();
    let server = Server::start(dir.path()).await;
    let has_b = |m: &str| threshold(m, "db-b", "mysql_connections", "warning") == Some(60.0);

    std::fs::create_dir(dir.path().join("team")).unwrap();
    std::fs::write(dir.path().join("team/b.yaml"), tenant("db-b", 60)).unwrap();
    server.wait_for_metrics("add", has_b).await;

    // Renamed to a name the loader skips: the tenant goes away.
    std::fs::rename(
        dir.path().join("team/b.yaml"),
        dir.path().join("team/b.yaml.off"),
    )
    .unwrap();
    server.wait_for_metrics("rename away", |m| !has_b(m)).await;

    // Renamed into place, as an editor's atomic save does.
    std::fs::rename(
        dir.path().join("team/b.yaml.off"),
        dir.path().join("team/b.yml"),
    )
    .unwrap();
    server.wait_for_metrics("rename back", has_b).await;

    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    server
        .wait_for_metrics("remove", |m| {
            threshold(m, "db-a", "mysql_connections", "warning").is_none() && has_b(m)
        })
        .await;
    assert_eq!(
        series(&server.metrics().await, "dynalert_tenants", &[]),
        Some(1.0)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_edit_keeps_the_last_good_values_and_is_reported_everywhere() {
    let dir = conf_d();
    let server = Server::start(dir.path()).await;
    let metrics = server.metrics().await;
    assert_eq!(
        series(&metrics, "dynalert_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert_eq!(
        series(&metrics, "dynalert_config_errors", &[("file", "a.yaml")]),
        None
    );

    std::fs::write(
        dir.path().join("a.yaml"),
        "tenants:\n  db-a:\n    mysql_connections: \"75\n",
    )
    .unwrap();
    server
        .wait_for_metrics("error metric", |m| {
            series(m, "dynalert_config_errors", &[("file", "a.yaml")]) == Some(1.0)
        })
        .await;
    let metrics = server.metrics().await;
    assert_eq!(
        threshold(&metrics, "db-a", "mysql_connections", "warning"),
        Some(70.0),
        "last good value kept"
    );
    assert_eq!(
        series(&metrics, "dynalert_config_last_reload_successful", &[]),
        Some(0.0)
    );
    assert_eq!(
        series(
            &metrics,
            "dynalert_config_reloads_total",
            &[("result", "failure")]
        ),
        Some(1.0)
    );

    let (code, ready) = server.get("/ready").await;
    assert_eq!(code, 200, "still ready: the last good content is served");
    assert!(ready.starts_with("ready\n"), "{ready}");
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("a.yaml:") && l.contains(": error: ")),
        "{ready}"
    );
    assert!(
        ready.contains("a.yaml: serving its last good content"),
        "{ready}"
    );

    let config = server.config().await;
    assert_eq!(config["status"], "errors");
    assert_eq!(config["reload_ok"], false);
    assert_eq!(config["files"]["a.yaml"], "serving_last_good");
    assert_eq!(config["errors"][0]["file"], "a.yaml");
    assert_eq!(config["errors"][0]["level"], "error");
    let key = &config["tenants"]["db-a"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == "mysql_connections")
        .unwrap();
    assert_eq!(key["value"], 70.0);

    std::fs::write(dir.path().join("a.yaml"), tenant("db-a", 76)).unwrap();
    server
        .wait_for_metrics("fix", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(76.0)
                && series(m, "dynalert_config_errors", &[("file", "a.yaml")]).is_none()
                && series(m, "dynalert_config_last_reload_successful", &[]) == Some(1.0)
        })
        .await;
    assert_eq!(server.get("/ready").await, (200, "ready\n".to_string()));
    assert_eq!(server.config().await["status"], "ok");
    server.stop().await;
}

/// The layout kubelet gives a ConfigMap volume, and its atomic update: a new timestamped
/// directory, a `..data_tmp` symlink to it renamed over `..data`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kubernetes_configmap_swap_is_served() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let first = root.join("..2026_01_01");
    std::fs::create_dir_all(&first).unwrap();
    std::fs::write(first.join("_defaults.yaml"), DEFAULTS).unwrap();
    std::fs::write(first.join("a.yaml"), tenant("db-a", 70)).unwrap();
    symlink("..2026_01_01", root.join("..data")).unwrap();
    symlink("..data/a.yaml", root.join("a.yaml")).unwrap();
    symlink("..data/_defaults.yaml", root.join("_defaults.yaml")).unwrap();
    let server = Server::start(&root).await;
    let metrics = server.metrics().await;
    assert_eq!(
        threshold(&metrics, "db-a", "mysql_connections", "warning"),
        Some(70.0)
    );
    assert_eq!(
        series(&metrics, "dynalert_tenants", &[]),
        Some(1.0),
        "hidden directories are not read twice"
    );

    let second = root.join("..2026_01_02");
    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("_defaults.yaml"), DEFAULTS.replace("85", "91")).unwrap();
    std::fs::write(second.join("a.yaml"), tenant("db-a", 71)).unwrap();
    symlink("..2026_01_02", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(&first).unwrap();
    server
        .wait_for_metrics("swap", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(71.0)
                && threshold(m, "db-a", "redis_memory_usage", "warning") == Some(91.0)
        })
        .await;
    server.stop().await;
}

/// git-sync and similar tools swap a symlinked root; the parent watch sees it, and later
/// edits in the new target are watched too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_root_symlink_is_followed() {
    let tmp = tempfile::tempdir().unwrap();
    for (rev, value) in [("rev1", 70), ("rev2", 72)] {
        std::fs::create_dir(tmp.path().join(rev)).unwrap();
        std::fs::write(tmp.path().join(rev).join("_defaults.yaml"), DEFAULTS).unwrap();
        std::fs::write(tmp.path().join(rev).join("a.yaml"), tenant("db-a", value)).unwrap();
    }
    let root = tmp.path().join("current");
    symlink("rev1", &root).unwrap();
    let server = Server::start(&root).await;

    symlink("rev2", tmp.path().join("current.tmp")).unwrap();
    std::fs::rename(tmp.path().join("current.tmp"), &root).unwrap();
    server
        .wait_for_metrics("root swap", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(72.0)
        })
        .await;

    std::fs::write(tmp.path().join("rev2/a.yaml"), tenant("db-a", 73)).unwrap();
    server
        .wait_for_metrics("edit after swap", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(73.0)
        })
        .await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expiry_is_served_without_a_file_change() {
    let dir = conf_d();
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let doc = format!(
        "tenants:\n  db-a:\n    mysql_connections: {{value: 600, expires: \"{expires}\", reason: test}}\n"
    );
    std::fs::write(dir.path().join("a.yaml"), doc).unwrap();
    let server = Server::start(dir.path()).await;
    assert_eq!(
        threshold(
            &server.metrics().await,
            "db-a",
            "mysql_connections",
            "warning"
        ),
        Some(600.0)
    );
    let metrics = server
        .wait_for_metrics("the default after the expiry", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(80.0)
        })
        .await;
    let event = [
        ("tenant", "db-a"),
        ("key", "mysql_connections"),
        ("event", "threshold_expired"),
    ];
    assert_eq!(
        series(&metrics, "dynalert_config_event", &event),
        Some(1.0),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_root_keeps_serving_and_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("conf.d");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("_defaults.yaml"), DEFAULTS).unwrap();
    std::fs::write(root.join("a.yaml"), tenant("db-a", 70)).unwrap();
    let server = Server::start(&root).await;

    std::fs::rename(&root, tmp.path().join("conf.d.away")).unwrap();
    server
        .wait_for_metrics("unreadable root", |m| {
            series(m, "dynalert_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await;
    let metrics = server.metrics().await;
    assert_eq!(
        threshold(&metrics, "db-a", "mysql_connections", "warning"),
        Some(70.0)
    );
    assert_eq!(
        series(
            &metrics,
            "dynalert_config_reloads_total",
            &[("result", "failure")]
        ),
        Some(1.0)
    );
    let (code, ready) = server.get("/ready").await;
    assert_eq!(code, 200, "the last good configuration is still served");
    assert!(ready.contains("cannot read config directory"), "{ready}");
    let config = server.config().await;
    assert_eq!(config["status"], "errors");
    assert!(
        config["reload_error"].as_str().unwrap().contains("conf.d"),
        "{config}"
    );

    std::fs::rename(tmp.path().join("conf.d.away"), &root).unwrap();
    server
        .wait_for_metrics("root back", |m| {
            series(m, "dynalert_config_last_reload_successful", &[]) == Some(1.0)
        })
        .await;
    assert_eq!(server.get("/ready").await, (200, "ready\n".to_string()));

    // The root is watched again.
    std::fs::write(root.join("a.yaml"), tenant("db-a", 74)).unwrap();
    server
        .wait_for_metrics("edit after return", |m| {
            threshold(m, "db-a", "mysql_connections", "warning") == Some(74.0)
        })
        .await;
    server.stop().await;
}
