//! Limits on what one tenant may set, and on the series served in all: a tenant token cannot
//! grow `/metrics` without bound, an over-limit file falls back to its last good version, and
//! an admin can always read, repair and delete.

mod common;

use common::{DEFAULTS, NO_RESCAN, Server, tenant};
use dynalert_config::Limits;
use dynalert_server::{ServeOptions, hash_token};
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const TENANT_A: &str = "db-a-token";

/// Keys every tenant may set (the defaults and the packs' keys are known).
fn keys(n: usize) -> Value {
    let names = [
        "mysql_connections",
        "redis_memory_usage",
        "mysql_slow_queries",
    ];
    Value::Object(
        names[..n]
            .iter()
            .map(|k| (k.to_string(), json!(10)))
            .collect(),
    )
}

fn rows(n: usize) -> Value {
    Value::Object(
        (0..n)
            .map(|i| (format!("redis_queue_length{{queue='q{i}'}}"), json!(5)))
            .collect(),
    )
}

async fn serve(dir: &std::path::Path, limits: Limits, max_series: usize) -> Server {
    let auth = dir.join("../auth.yaml");
    std::fs::write(
        &auth,
        format!(
            "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n  - {{name: team-a, sha256: {}, role: 'tenant:db-a'}}\n",
            hash_token(ADMIN),
            hash_token(TENANT_A)
        ),
    )
    .unwrap();
    let mut opts = ServeOptions::new(dir);
    opts.reload_interval = NO_RESCAN;
    opts.known_keys = dynalert_rules::declared_keys();
    opts.auth_file = Some(auth);
    opts.limits = limits;
    opts.max_series = max_series;
    Server::serve(opts).await
}

async fn patch(s: &Server, token: &str, tenant: &str, body: Value) -> common::Reply {
    let request = s
        .request(Method::PATCH, &format!("/api/v1/tenants/{tenant}"))
        .bearer_auth(token)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string());
    s.send(request).await
}

async fn config(s: &Server) -> Value {
    let request = s.request(Method::GET, "/api/v1/config").bearer_auth(ADMIN);
    s.send(request).await.json
}

fn conf_d() -> (tempfile::TempDir, std::path::PathBuf) {
    let top = tempfile::tempdir().unwrap();
    let dir = top.path().join("conf.d");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("_defaults.yaml"), DEFAULTS).unwrap();
    std::fs::write(dir.join("a.yaml"), tenant("db-a", 70)).unwrap();
    (top, dir)
}

#[tokio::test]
async fn a_tenant_token_cannot_set_more_keys_or_rows_than_the_limits() {
    let (_top, dir) = conf_d();
    let limits = Limits {
        tenant_keys: 2,
        tenant_dimension_rows: 3,
    };
    let s = serve(&dir, limits, usize::MAX).await;
    let at_limit = patch(&s, TENANT_A, "db-a", keys(2)).await;
    assert_eq!(at_limit.status, 200, "{}", at_limit.text);
    let over = patch(&s, TENANT_A, "db-a", keys(3)).await;
    assert_eq!(over.status, 422, "{}", over.text);
    assert!(
        over.text
            .contains("over the limit of 2 (--max-tenant-keys)"),
        "{}",
        over.text
    );
    let too_many_rows = patch(&s, TENANT_A, "db-a", rows(4)).await;
    assert_eq!(too_many_rows.status, 422, "{}", too_many_rows.text);
    assert!(
        too_many_rows.text.contains("--max-tenant-dimension-rows"),
        "{}",
        too_many_rows.text
    );
    // The refused writes changed nothing: the accepted one is what is served.
    let document = s
        .send(
            s.request(Method::GET, "/api/v1/tenants/db-a")
                .bearer_auth(ADMIN),
        )
        .await;
    assert_eq!(document.json["document"], keys(2), "{}", document.text);
}

#[tokio::test]
async fn a_write_over_the_series_limit_is_refused_and_an_admin_can_still_repair() {
    let (_top, dir) = conf_d();
    let s = serve(&dir, Limits::DEFAULT, 0).await;
    s.wait_for_metrics("db-a served", |body| body.contains("tenant=\"db-a\""))
        .await;
    // Already over a limit of 0 series: any write that adds a key is refused…
    let grow = patch(&s, TENANT_A, "db-a", json!({"redis_memory_usage": 50})).await;
    assert_eq!(grow.status, 422, "{}", grow.text);
    assert!(grow.text.contains("(--max-series)"), "{}", grow.text);
    // …one that removes keys or changes a value is not: the way out stays open.
    let repair = patch(&s, ADMIN, "db-a", json!({"mysql_connections": null})).await;
    assert_eq!(repair.status, 200, "{}", repair.text);
    let etag = repair.etag.clone().unwrap();
    let delete = s
        .send(
            s.request(Method::DELETE, "/api/v1/tenants/db-a")
                .bearer_auth(ADMIN)
                .header("if-match", etag),
        )
        .await;
    assert_eq!(delete.status, 204, "{}", delete.text);
}

#[tokio::test]
async fn an_over_limit_file_keeps_its_last_good_version_served() {
    let (_top, dir) = conf_d();
    let limits = Limits {
        tenant_keys: 1,
        tenant_dimension_rows: 1,
    };
    let s = serve(&dir, limits, usize::MAX).await;
    let line = "user_threshold{tenant=\"db-a\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 70";
    s.wait_for_line(line, true).await;
    std::fs::write(
        dir.join("a.yaml"),
        "tenants:\n  db-a:\n    mysql_connections: 71\n    redis_memory_usage: 60\n",
    )
    .unwrap();
    // The refusal is reported, and the last good version (70) is what stays served.
    let ready = s
        .wait_for_metrics("the over-limit file refused", |body| {
            body.contains("dynalert_config_last_reload_successful 0")
        })
        .await;
    assert!(ready.contains(line), "{ready}");
    let config = config(&s).await.to_string();
    assert!(
        config.contains("sets 2 keys, over the limit of 1 (--max-tenant-keys)"),
        "{config}"
    );
}
