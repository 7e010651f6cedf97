//! The generated OpenAPI document held against the server: a snapshot of it (changes are
//! reviewed), every documented path and method answered by the real router, the routed paths
//! equal to the documented ones (`http.rs` tests), the main responses valid against the
//! document's schemas, and the statuses the one error mapping decides.

mod common;

use common::{Reply, Server};
use dynalert_server::{ServeOptions, hash_token};
use dynalert_store::StoreSpec;
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "openapi-admin-token";
const DEFAULTS: &str = "defaults:\n  mysql_connections: 80\n  redis_memory_usage: 85\n\
optional: [mysql_replication_lag]\nstate_filters:\n  maintenance: {severity: info, default_state: disable}\n";
const DB_A: &str = "mysql_connections: 70\nredis_memory_usage: disable\n\
mysql_replication_lag: {value: 600, expires: \"2099-12-01T00:00:00Z\", reason: \"INC-42\"}\n\
_state_maintenance: enable\n_silent_mode: warning\n_metadata: {owner: team-a, backup: nightly}\n";

/// An SQLite store seeded with `_defaults.yaml`, an admin token, and tenant `db-a`; the
/// directory holding them lives as long as the returned guard.
async fn with_tenant() -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed");
    std::fs::create_dir(&seed).unwrap();
    std::fs::write(seed.join("_defaults.yaml"), DEFAULTS).unwrap();
    let auth = dir.path().join("auth.yaml");
    let line = format!(
        "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n",
        hash_token(ADMIN)
    );
    std::fs::write(&auth, line).unwrap();
    let mut opts = ServeOptions::with_store(StoreSpec::Sqlite(dir.path().join("test.db")));
    opts.known_keys = dynalert_rules::declared_keys();
    opts.import = Some(seed);
    opts.auth_file = Some(auth);
    let server = Server::serve(opts).await;
    let yaml = [("content-type", "application/yaml")];
    let put = server
        .admin("PUT", "/api/v1/tenants/db-a", Some(DB_A), &yaml)
        .await;
    assert_eq!(put.status, 201, "{}", put.text);
    (dir, server)
}

/// Calls as the admin, the way this file's tests do.
impl Server {
    async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.request(method, path).bearer_auth(ADMIN);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body.to_string());
        }
        self.send(request).await
    }

    async fn document(&self) -> Value {
        let reply = self.admin("GET", "/api/v1/openapi.json", None, &[]).await;
        assert_eq!(reply.status, 200);
        serde_json::from_str(&reply.text).unwrap()
    }
}

/// The documented operations: (path, method).
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                ops.push((path.clone(), method.to_ascii_uppercase()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let (_dir, server) = with_tenant().await;
    let doc = server.document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        serde_json::to_value(dynalert_server::openapi()).unwrap()
    );
    insta::assert_json_snapshot!("openapi", doc);
}

#[tokio::test]
async fn every_documented_path_and_method_is_routed() {
    let (_dir, server) = with_tenant().await;
    let doc = server.document().await;
    let ops = operations(&doc);
    assert_eq!(ops.len(), 16, "{ops:?}");
    for (path, method) in &ops {
        let url = path.replace("{tenant}", "db-a");
        // No If-Match and an empty object: writes are refused (428, 422, …), never 404/405.
        let reply = server
            .admin(
                method,
                &url,
                Some("{}"),
                &[("content-type", "application/json")],
            )
            .await;
        assert!(
            ![404, 405].contains(&reply.status),
            "{method} {path}: {} {}",
            reply.status,
            reply.text
        );
    }
    // A method a documented path does not list is 405: the document lists all it answers.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["GET", "PUT", "PATCH", "POST", "DELETE"] {
            if item.get(method.to_ascii_lowercase()).is_none() {
                let reply = server
                    .admin(method, &path.replace("{tenant}", "db-a"), None, &[])
                    .await;
                assert_eq!(reply.status, 405, "{method} {path}");
            }
        }
    }
}

/// The schema of `status` of `method path` in `doc`, compiled with the document's
/// components so `#/components/...` references resolve.
fn validator(
    doc: &Value,
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
) -> jsonschema::Validator {
    let response =
        &doc["paths"][path][method.to_ascii_lowercase()]["responses"][status.to_string()];
    let media = content_type.split(';').next().unwrap();
    let schema = response["content"][media]["schema"].clone();
    assert!(
        !schema.is_null(),
        "{method} {path} {status} {media}: not documented"
    );
    let mut root = schema.as_object().unwrap().clone();
    root.insert("components".into(), doc["components"].clone());
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .unwrap()
}

/// A call and its status: (method, documented path, URL, body, headers, status).
type Case<'a> = (
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a [(&'a str, &'a str)],
    u16,
);

#[tokio::test]
async fn responses_match_the_documented_schemas() {
    let (_dir, server) = with_tenant().await;
    let doc = server.document().await;
    let json_type = [("content-type", "application/json")];
    let patch_type = [("content-type", "application/merge-patch+json")];
    let simulate = json!({"tenant": "db-b", "document": {"mysql_connections": 50}}).to_string();
    let calls: &[Case] = &[
        ("GET", "/api/v1/tenants", "/api/v1/tenants", None, &[], 200),
        (
            "GET",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-a",
            None,
            &[],
            200,
        ),
        (
            "PATCH",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-a",
            Some(r#"{"mysql_connections": 75}"#),
            &patch_type,
            200,
        ),
        (
            "PUT",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-c",
            Some(r#"{"mysql_connections": 60}"#),
            &json_type,
            201,
        ),
        (
            "PUT",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-c",
            Some(r#"{"mysql_connections": 60}"#),
            &json_type,
            428,
        ),
        (
            "PUT",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-d",
            Some(r#"{"mysql_connections": "lots"}"#),
            &json_type,
            422,
        ),
        (
            "PATCH",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/db-a",
            Some("[1]"),
            &patch_type,
            400,
        ),
        (
            "GET",
            "/api/v1/tenants/{tenant}",
            "/api/v1/tenants/nobody",
            None,
            &[],
            404,
        ),
        (
            "GET",
            "/api/v1/tenants/{tenant}/effective",
            "/api/v1/tenants/db-a/effective",
            None,
            &[],
            200,
        ),
        (
            "GET",
            "/api/v1/tenants/{tenant}/history",
            "/api/v1/tenants/db-a/history",
            None,
            &[],
            200,
        ),
        (
            "GET",
            "/api/v1/platform",
            "/api/v1/platform",
            None,
            &[],
            200,
        ),
        (
            "GET",
            "/api/v1/platform/history",
            "/api/v1/platform/history",
            None,
            &[],
            200,
        ),
        (
            "POST",
            "/api/v1/simulate",
            "/api/v1/simulate",
            Some(&simulate),
            &json_type,
            200,
        ),
        ("GET", "/api/v1/config", "/api/v1/config", None, &[], 200),
        (
            "GET",
            "/api/v1/config",
            "/api/v1/config?at=yesterday",
            None,
            &[],
            400,
        ),
    ];
    for &(method, path, url, body, headers, status) in calls {
        let reply = server.admin(method, url, body, headers).await;
        assert_eq!(reply.status, status, "{method} {url}: {}", reply.text);
        let instance: Value = serde_json::from_str(&reply.text).unwrap();
        let validator = validator(&doc, method, path, status, &reply.content_type);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {url} {status}: {errors:#?}\n{instance:#}"
        );
    }
    // A 401 without a token, and its header.
    let anonymous = server
        .client
        .get(format!("{}/api/v1/tenants", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
}

/// Statuses decided by `ApiError::status`, each through the real server.
#[tokio::test]
async fn store_errors_get_the_status_of_what_failed() {
    let (_dir, server) = with_tenant().await;
    // The tenant's file is missing in the store: the store's not-found, 404 (was 503 when
    // every store error was).
    let missing = server
        .admin("GET", "/api/v1/tenants/nobody", None, &[])
        .await;
    assert_eq!(
        (missing.status, missing.content_type.as_str()),
        (404, "application/problem+json")
    );
    // A platform file path that cannot name a document: 400.
    let bad_path = server
        .admin("PUT", "/api/v1/platform?file=../_x.yaml", Some("{}"), &[])
        .await;
    assert_eq!(bad_path.status, 400, "{}", bad_path.text);
    // A body over the limit: 413.
    let large = "#".repeat((1 << 20) + 1);
    let too_large = server
        .admin(
            "PUT",
            "/api/v1/tenants/db-a",
            Some(&large),
            &[("content-type", "application/yaml")],
        )
        .await;
    assert_eq!(too_large.status, 413);
}

#[tokio::test]
async fn a_damaged_store_is_unavailable() {
    let conf = tempfile::tempdir().unwrap();
    let root = conf.path().to_path_buf();
    let server = Server::serve(ServeOptions::new(&root)).await;
    // Damaged after start (a store that is damaged at start does not start).
    std::fs::write(root.join("db-z.yaml"), b"tenants:\n  db-z: {a: \"\xff\"}\n").unwrap();
    let reply = server.admin("GET", "/api/v1/tenants/db-z", None, &[]).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    let problem: Value = serde_json::from_str(&reply.text).unwrap();
    assert_eq!(problem["title"], "Store unavailable");
}
