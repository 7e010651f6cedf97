//! A bounded fuzz of the write path (issue 18): random merge patches and documents, sent as
//! JSON and as YAML through the API of a server on SQLite. Whatever arrives, the server never
//! answers 5xx, and what `/metrics` serves for the tenant is what `/effective` reports.
//! `PROPTEST_CASES` raises the number of cases for a longer run.

mod common;

use std::collections::BTreeMap;

use common::{DEFAULTS, NO_RESCAN, Server};
use dynalert_server::{ServeOptions, hash_token};
use dynalert_store::StoreSpec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "admin-token";

/// Keys a tenant may set, keys it may not, and reserved settings, so the cases reach past
/// the first "unknown key" check.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("mysql_connections".to_string()),
        Just("redis_memory_usage".to_string()),
        Just("mysql_connections_critical".to_string()),
        "[a-z ='\"~_{},]{0,12}".prop_map(|l| format!("redis_queue_length{{{l}}}")),
        "[a-z]{1,3}".prop_map(|v| format!("redis_queue_length{{queue='{v}'}}")),
        Just("_profile".to_string()),
        Just("_state_maintenance".to_string()),
        Just("_silent_mode".to_string()),
        Just("_metadata".to_string()),
        Just("_severity_dedup".to_string()),
        ".{0,16}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!("5:critical")),
        Just(json!("70:warning")),
        Just(json!("disable")),
        Just(json!("enable")),
        Just(json!("2026-12-01T00:00:00Z")),
        ".{0,12}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("default".to_string()),
                    Just("overrides".to_string()),
                    Just("window".to_string()),
                    Just("value".to_string()),
                    Just("state".to_string()),
                    Just("expires".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..3
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Write {
    Patch(BTreeMap<String, Value>),
    PutJson(BTreeMap<String, Value>),
    PutYaml(String),
}

fn write() -> impl Strategy<Value = Write> {
    let document = || prop::collection::btree_map(key(), value(), 0..4);
    prop_oneof![
        3 => document().prop_map(Write::Patch),
        1 => document().prop_map(Write::PutJson),
        1 => ".{0,60}".prop_map(Write::PutYaml),
    ]
}

async fn send(s: &Server, write: &Write) -> (u16, String) {
    let url = "/api/v1/tenants/fuzz";
    let (method, media, body) = match write {
        Write::Patch(map) => (
            Method::PATCH,
            "application/merge-patch+json",
            serde_json::to_string(map).unwrap(),
        ),
        Write::PutJson(map) => (
            Method::PUT,
            "application/json",
            serde_json::to_string(map).unwrap(),
        ),
        Write::PutYaml(text) => (Method::PUT, "application/yaml", text.clone()),
    };
    let request = s
        .request(method, url)
        .bearer_auth(ADMIN)
        .header("content-type", media)
        // A replacement needs a precondition; `*` is "whatever is there".
        .header("if-match", "*")
        .body(body);
    let reply = s.send(request).await;
    (reply.status, reply.text)
}

/// The finite `user_threshold` values served for the tenant, sorted.
fn served_values(metrics: &str) -> Vec<String> {
    let mut values: Vec<String> = metrics
        .lines()
        .filter(|l| l.starts_with("user_threshold{tenant=\"fuzz\""))
        .filter_map(|l| l.rsplit_once(' ').map(|(_, v)| v.to_string()))
        .filter(|v| v != "+Inf")
        .map(|v| normal(v.parse::<f64>().unwrap()))
        .collect();
    values.sort();
    values
}

/// The values `/effective` reports for the tenant, sorted (`null`: no row, or `+Inf`).
fn effective_values(effective: &Value) -> Vec<String> {
    let mut values: Vec<String> = effective["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k["value"].as_f64())
        .map(normal)
        .collect();
    values.sort();
    values
}

fn normal(v: f64) -> String {
    format!("{v:e}")
}

/// Waits for a moment when `/effective` and `/metrics` show the same snapshot, and returns
/// both views' values (a reload between the two reads is retried).
async fn consistent_views(s: &Server) -> (Vec<String>, Vec<String>) {
    let get = |path: &'static str| {
        let request = s.request(Method::GET, path).bearer_auth(ADMIN);
        s.send(request)
    };
    let mut last = (vec!["no consistent snapshot".to_string()], Vec::new());
    for _ in 0..50 {
        let before = get("/api/v1/tenants/fuzz/effective").await;
        let metrics = get("/metrics").await;
        let after = get("/api/v1/tenants/fuzz/effective").await;
        if before.status == 404 && after.status == 404 {
            return (Vec::new(), served_values(&metrics.text));
        }
        // `at` is the instant of each request; the rest tells snapshots apart.
        let without_at = |mut v: Value| {
            v.as_object_mut().map(|o| o.remove("at"));
            v
        };
        if without_at(before.json) == without_at(after.json.clone()) {
            last = (effective_values(&after.json), served_values(&metrics.text));
            if last.0 == last.1 {
                return last;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    last
}

#[test]
fn no_write_gets_a_5xx_and_metrics_match_the_effective_view() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let work = tempfile::tempdir().unwrap();
    let seed = work.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    std::fs::write(seed.join("_defaults.yaml"), DEFAULTS).unwrap();
    let auth = work.path().join("auth.yaml");
    let tokens = format!(
        "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n",
        hash_token(ADMIN)
    );
    std::fs::write(&auth, tokens).unwrap();
    let mut opts = ServeOptions::with_store(StoreSpec::Sqlite(work.path().join("fuzz.db")));
    opts.reload_interval = NO_RESCAN;
    opts.known_keys = dynalert_rules::declared_keys();
    opts.auth_file = Some(auth);
    opts.import = Some(seed);
    let server = runtime.block_on(Server::serve(opts));
    let created = runtime.block_on(async {
        let request = server
            .request(Method::PUT, "/api/v1/tenants/fuzz")
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{\"mysql_connections\": 70}");
        server.send(request).await
    });
    assert_eq!(created.status, 201, "{}", created.text);
    let accepted = std::cell::Cell::new(0u32);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&write(), |write| {
        runtime.block_on(async {
            let (status, body) = send(&server, &write).await;
            prop_assert!(status < 500, "{write:?} → {status}: {body}");
            accepted.set(accepted.get() + u32::from(status == 200));
            let (effective, served) = consistent_views(&server).await;
            prop_assert_eq!(effective, served, "after {:?} → {}", write, status);
            Ok(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // A fuzz whose every write is refused would check nothing but the refusals.
    assert!(
        accepted.get() >= cases / 8,
        "only {} of {cases} writes were accepted",
        accepted.get()
    );
    eprintln!("{} of {cases} writes accepted", accepted.get());
}
