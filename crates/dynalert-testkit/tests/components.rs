//! Starts the real components and talks to them. Skips (with a visible message) when they are
//! not installed, unless DYNALERT_REQUIRE_COMPONENTS or CI is set.

use std::time::Duration;

use dynalert_testkit::{ChildGuard, Http, Prometheus, Pushgateway, ScrapeTarget};

#[test]
fn prometheus_answers_instant_queries() {
    let Some(prom) = Prometheus::start(&[], None).unwrap() else {
        return;
    };
    let samples = prom.query_samples("vector(1)").unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].value, 1.0);

    let data = prom.query("scalar(vector(2))").unwrap();
    assert_eq!(data["resultType"], "scalar");
    assert_eq!(
        prom.query_samples("scalar(vector(2))").unwrap()[0].value,
        2.0
    );
}

#[test]
fn prometheus_scrapes_a_target_and_reports_bad_promql() {
    let Some(first) = Prometheus::start(&[], None).unwrap() else {
        return;
    };
    let Some(second) =
        Prometheus::start(&[ScrapeTarget::new("first", first.port())], None).unwrap()
    else {
        return;
    };
    let up = second
        .wait_for(
            "up{job=\"first\"}",
            |s| s.len() == 1 && s[0].value == 1.0,
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(
        up[0].label("instance"),
        Some(format!("127.0.0.1:{}", first.port()).as_str())
    );

    let error = second.query("sum(").unwrap_err();
    assert!(format!("{error:#}").contains("bad_data"), "{error:#}");
}

#[test]
fn prometheus_loads_rule_files_on_reload() {
    let Some(prom) = Prometheus::start(&[], None).unwrap() else {
        return;
    };
    std::fs::write(
        prom.rules_dir().join("test.yml"),
        "groups:\n  - name: t\n    rules:\n      - record: dynalert_test_one\n        expr: vector(1)\n",
    )
    .unwrap();
    prom.reload().unwrap();
    prom.wait_for(
        "dynalert_test_one",
        |s| s.len() == 1,
        Duration::from_secs(15),
    )
    .unwrap();

    std::fs::write(prom.rules_dir().join("broken.yml"), "groups: [oops").unwrap();
    let error = prom.reload().unwrap_err();
    assert!(format!("{error:#}").contains("reload failed"), "{error:#}");
}

#[test]
fn prometheus_reports_a_config_it_cannot_load_with_its_log() {
    let Some(_) = dynalert_testkit::require_binary("prometheus") else {
        return;
    };
    let error = match Prometheus::start(&[], Some("not_a_prometheus_key: 1\n")) {
        Ok(_) => panic!("an unknown top-level key must stop Prometheus"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("exited"), "{error}");
    assert!(error.contains("not_a_prometheus_key"), "{error}");
}

#[test]
fn pushgateway_metrics_reach_prometheus() {
    let Some(gateway) = Pushgateway::start().unwrap() else {
        return;
    };
    gateway
        .push(
            "mysqld",
            "mysql_global_status_threads_connected{tenant=\"db-a\"} 42",
        )
        .unwrap();
    let Some(prom) = Prometheus::start(&[gateway.scrape_target("pushgateway")], None).unwrap()
    else {
        return;
    };
    let samples = prom
        .wait_for(
            "mysql_global_status_threads_connected",
            |s| s.len() == 1,
            Duration::from_secs(20),
        )
        .unwrap();
    assert_eq!(samples[0].value, 42.0);
    assert_eq!(
        samples[0].label("job"),
        Some("mysqld"),
        "honor_labels keeps the pushed job"
    );
    assert_eq!(samples[0].label("tenant"), Some("db-a"));

    gateway.delete("mysqld").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helpers_work_inside_a_tokio_runtime() {
    let Some(prom) = Prometheus::start(&[], None).unwrap() else {
        return;
    };
    assert_eq!(prom.query_samples("vector(3)").unwrap()[0].value, 3.0);
    drop(prom);
}

#[tokio::test]
async fn helpers_work_inside_a_current_thread_runtime() {
    let http = Http::new().unwrap();
    let port = dynalert_testkit::free_port();
    assert!(http.get(&format!("http://127.0.0.1:{port}/"), &[]).is_err());
    drop(http);
}

#[test]
fn child_guard_kills_its_process_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new("sleep");
    command.arg("600");
    let guard = ChildGuard::spawn("sleep", command, &dir.path().join("sleep.log")).unwrap();
    let pid = guard.id();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(guard);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}
