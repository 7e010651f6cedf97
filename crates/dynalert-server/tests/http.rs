//! The HTTP surface of `dynalert serve`: status endpoints, `/metrics` (plain and gzip) and
//! `/api/v1/config`.

mod common;

use std::io::Read as _;

use common::*;
use dynalert_server::{ServeError, ServeOptions, serve_on};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_ready_and_unknown_paths() {
    let dir = conf_d();
    std::fs::write(
        dir.path().join("broken.yaml"),
        "tenants:\n  db-x:\n    mysql_connections: \"90\n",
    )
    .unwrap();
    let server = Server::start(dir.path()).await;
    assert_eq!(server.get("/health").await, (200, "ok\n".to_string()));
    let (code, ready) = server.get("/ready").await;
    assert_eq!(code, 200);
    let mut lines = ready.lines();
    assert_eq!(lines.next(), Some("ready"));
    let error = lines.next().unwrap();
    assert!(
        error.starts_with("broken.yaml:") && error.contains(": error: "),
        "{ready}"
    );
    assert!(ready.contains("broken.yaml: not served"), "{ready}");
    assert_eq!(server.get("/nope").await.0, 404);
    assert_eq!(server.get("/api/v1/nope").await.0, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_carry_thresholds_and_self_monitoring() {
    let dir = conf_d();
    let server = Server::start(dir.path()).await;
    let response = server
        .client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(response.headers().get("content-encoding").is_none());
    let length = response.content_length();
    let body = response.text().await.unwrap();
    assert_eq!(length, Some(body.len() as u64));

    assert_eq!(
        threshold(&body, "db-a", "mysql_connections", "warning"),
        Some(70.0)
    );
    assert_eq!(
        threshold(&body, "db-a", "redis_memory_usage", "warning"),
        Some(85.0)
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        series(&body, "dynalert_build_info", &[("version", version)]),
        Some(1.0)
    );
    assert_eq!(
        series(&body, "dynalert_config_last_reload_successful", &[]),
        Some(1.0)
    );
    let last = series(
        &body,
        "dynalert_config_last_reload_success_timestamp_seconds",
        &[],
    )
    .unwrap();
    assert!(
        (last - chrono::Utc::now().timestamp() as f64).abs() < 60.0,
        "{last}"
    );
    assert_eq!(
        series(
            &body,
            "dynalert_config_reloads_total",
            &[("result", "success")]
        ),
        Some(1.0)
    );
    assert_eq!(
        series(
            &body,
            "dynalert_config_reloads_total",
            &[("result", "failure")]
        ),
        Some(0.0)
    );
    assert_eq!(series(&body, "dynalert_tenants", &[]), Some(1.0));
    assert_eq!(series(&body, "dynalert_threshold_series", &[]), Some(2.0));
    let hash = server.config().await["hash"].as_str().unwrap().to_string();
    assert_eq!(
        series(&body, "dynalert_config_hash_info", &[("hash", &hash)]),
        Some(1.0)
    );
    for name in [
        "dynalert_build_info",
        "dynalert_config_last_reload_successful",
        "dynalert_config_last_reload_success_timestamp_seconds",
        "dynalert_config_reloads_total",
        "dynalert_config_errors",
        "dynalert_config_hash_info",
        "dynalert_tenants",
        "dynalert_threshold_series",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
    ] {
        assert!(
            body.contains(&format!("# HELP {name} ")),
            "no HELP for {name}"
        );
        assert!(
            body.contains(&format!("# TYPE {name} ")),
            "no TYPE for {name}"
        );
    }
    server.stop().await;
}

/// Threshold families and self-monitoring, without the self-monitoring values that change
/// from one scrape to the next.
/// Without the series that change from one scrape to the next.
fn stable_part(body: &str) -> String {
    body.lines()
        .filter(|l| !l.starts_with("process_") && !l.starts_with("dynalert_model_age_seconds "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_one_member_with_the_plain_content() {
    let dir = conf_d();
    std::fs::write(dir.path().join("b.yaml"), tenant("db-b", 55)).unwrap();
    let server = Server::start(dir.path()).await;
    let url = format!("{}/metrics", server.base);
    let plain = server.metrics().await;
    let response = server
        .client
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let length = response.content_length();
    let compressed = response.bytes().await.unwrap();
    assert_eq!(length, Some(compressed.len() as u64));

    // GzDecoder reads exactly one member: anything after it would be left unread.
    let mut decoder = flate2::read::GzDecoder::new(&compressed[..]);
    let mut unzipped = String::new();
    decoder.read_to_string(&mut unzipped).unwrap();
    let rest = decoder.into_inner();
    assert!(
        rest.is_empty(),
        "{} bytes after the first gzip member",
        rest.len()
    );
    assert_eq!(stable_part(&unzipped), stable_part(&plain));
    assert_eq!(
        threshold(&unzipped, "db-b", "mysql_connections", "warning"),
        Some(55.0)
    );

    // A client that decompresses by itself (as Prometheus does) sees the same text.
    let auto = reqwest::Client::builder().no_proxy().build().unwrap();
    let text = auto.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(stable_part(&text), stable_part(&plain));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_api_resolves_at_an_instant() {
    let dir = conf_d();
    let scheduled = "tenants:\n  db-a:\n    mysql_connections:\n      default: 70\n      timezone: Europe/Berlin\n      overrides:\n        - {window: \"01:00-05:00\", value: 200}\n";
    std::fs::write(dir.path().join("a.yaml"), scheduled).unwrap();
    let server = Server::start(dir.path()).await;
    let value_at = |config: &serde_json::Value| {
        let keys = config["tenants"]["db-a"]["keys"]
            .as_array()
            .unwrap()
            .clone();
        keys.into_iter()
            .find(|k| k["key"] == "mysql_connections")
            .unwrap()
    };

    // 02:00 in Berlin (winter, UTC+1) is inside the window, 12:00 is not.
    let (code, body) = server.get("/api/v1/config?at=2026-01-15T01:00:00Z").await;
    assert_eq!(code, 200, "{body}");
    let night: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(night["at"], "2026-01-15T01:00:00Z");
    assert_eq!(value_at(&night)["value"], 200.0);
    assert_eq!(value_at(&night)["state"], "scheduled");
    let (_, body) = server
        .get("/api/v1/config?at=2026-01-15T12:00:00%2B01:00")
        .await;
    let noon: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(value_at(&noon)["value"], 70.0);

    assert_eq!(noon["status"], "ok");
    assert_eq!(noon["reload_ok"], true);
    assert_eq!(noon["files"]["a.yaml"], "ok");
    assert_eq!(noon["errors"], serde_json::json!([]));
    assert!(noon["generation"].as_u64().unwrap() >= 1);
    assert_eq!(noon["hash"].as_str().unwrap().len(), 64);
    assert!(noon["loaded_at"].is_string());
    let tenant = &noon["tenants"]["db-a"];
    assert_eq!(tenant["dedup"], true);
    assert_eq!(tenant["metadata"]["owner"], "");
    assert!(
        tenant["state_filters"].is_object()
            && tenant["silent"].is_array()
            && tenant["events"].is_array()
    );

    let response = server
        .client
        .get(format!("{}/api/v1/config?at=tomorrow", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 400);
    assert!(
        problem["detail"].as_str().unwrap().contains("RFC 3339"),
        "{problem}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_root_fails_before_binding() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("missing");
    // The address is taken: if `run` bound before checking, it would fail with Bind.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut opts = ServeOptions::new(&missing);
    opts.listen = taken.local_addr().unwrap();
    let err = dynalert_server::run(opts).await.unwrap_err();
    assert!(matches!(err, ServeError::ConfigDir { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    let file = tmp.path().join("file.yaml");
    std::fs::write(&file, "").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = serve_on(listener, ServeOptions::new(&file), std::future::pending())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is not a directory"), "{err}");
}
