//! The management API, the same suite against every store: a conf.d directory, an SQLite file
//! and a real PostgreSQL (Debian `postgresql`, started on a free loopback port). Then what
//! only some backends have to prove: two replicas on one PostgreSQL, and the authorization
//! matrix (every role against every endpoint).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use common::{NO_RESCAN, Reply, Server};
use dynalert_server::{ServeOptions, hash_token};
use dynalert_store::StoreSpec;
use reqwest::Method;
use serde_json::{Value, json};

const ADMIN: &str = "admin-token";
const VIEWER: &str = "viewer-token";
const TENANT_A: &str = "db-a-token";

const DEFAULTS: &str = "\
defaults:
  mysql_connections: 80
  mysql_connections_critical: 95
  redis_memory_usage: 85
optional: [mongodb_replication_lag]
profiles:
  big: {mysql_connections: 300}
";

/// The tree every backend starts from: a platform file, a tenant of its own file, and two
/// tenants sharing one file (which the API must refuse to rewrite).
const SEED: &[(&str, &str)] = &[
    ("_defaults.yaml", DEFAULTS),
    (
        "db-b.yaml",
        "tenants:\n  db-b:\n    mysql_connections: 50\n",
    ),
    ("team.yaml", "tenants:\n  t1: {}\n  t2: {}\n"),
];

#[derive(Clone, Copy, Debug)]
enum Backend {
    Dir,
    Sqlite,
    Postgres,
}

/// The management API as this file's tests call it: paths under `/api/v1`, as the admin
/// unless a token is given.
impl Server {
    async fn api(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Reply {
        let mut request = self.request(method, &format!("/api/v1{path}"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        self.send(request).await
    }

    async fn admin_get(&self, path: &str) -> Reply {
        self.api(Method::GET, path, Some(ADMIN), &[], None).await
    }

    async fn put_yaml(&self, tenant: &str, yaml: &str, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        let path = format!("/tenants/{tenant}");
        let body = Some(("application/yaml", yaml.to_string()));
        self.api(Method::PUT, &path, Some(ADMIN), &headers, body)
            .await
    }

    async fn patch(&self, tenant: &str, patch: Value, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        let path = format!("/tenants/{tenant}");
        let body = Some(("application/merge-patch+json", patch.to_string()));
        self.api(Method::PATCH, &path, Some(ADMIN), &headers, body)
            .await
    }

    /// Waits until the served model knows `tenant` (the API validates against it).
    async fn await_tenant(&self, tenant: &str) {
        let line = format!(
            "user_threshold_state_filter{{tenant=\"{tenant}\",metric_key=\"mysql_connections\"}}"
        );
        self.wait_for_metrics(&format!("tenant {tenant}"), |m| m.contains(&line))
            .await;
    }
}

fn threshold_line(tenant: &str, value: &str) -> String {
    format!(
        "user_threshold{{tenant=\"{tenant}\",component=\"mysql\",metric=\"connections\",severity=\"warning\"}} {value}"
    )
}

/// Writes the auth file: admin, viewer, and a token confined to tenant db-a.
fn auth_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("auth.yaml");
    let text = format!(
        "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n  - {{name: dashboards, sha256: {}, role: viewer}}\n  - {{name: team-a, sha256: {}, role: 'tenant:db-a'}}\n",
        hash_token(ADMIN),
        hash_token(VIEWER),
        hash_token(TENANT_A)
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, content) in files {
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
    }
}

/// What keeps a backend alive for the length of a test.
struct Fixture {
    store: StoreSpec,
    /// The conf.d tree to import (databases) or served (directory).
    seed: tempfile::TempDir,
    work: tempfile::TempDir,
    _postgres: Option<dynalert_testkit::Postgres>,
}

impl Fixture {
    /// `None` when the backend's component is missing on a developer machine (skipped
    /// with a message; CI fails instead).
    fn new(backend: Backend) -> Option<Fixture> {
        let seed = tempfile::tempdir().unwrap();
        write_tree(seed.path(), SEED);
        let work = tempfile::tempdir().unwrap();
        let (store, postgres) = match backend {
            Backend::Dir => (StoreSpec::Dir(seed.path().to_path_buf()), None),
            Backend::Sqlite => (StoreSpec::Sqlite(work.path().join("dynalert.db")), None),
            Backend::Postgres => {
                let pg = dynalert_testkit::Postgres::start().unwrap()?;
                let url = pg.create_database("api_suite").unwrap();
                (StoreSpec::Postgres(url), Some(pg))
            }
        };
        Some(Fixture {
            store,
            seed,
            work,
            _postgres: postgres,
        })
    }

    async fn serve(&self, auth: bool) -> Server {
        let mut opts = ServeOptions::with_store(self.store.clone());
        opts.reload_interval = NO_RESCAN;
        opts.known_keys = dynalert_rules::declared_keys();
        opts.import = match self.store {
            StoreSpec::Dir(_) => None,
            _ => Some(self.seed.path().to_path_buf()),
        };
        opts.auth_file = auth.then(|| auth_file(self.work.path()));
        Server::serve(opts).await
    }
}

async fn tenant_lifecycle(s: &Server) {
    // Create: 201, an ETag, the document as sent, served on /metrics.
    let created = s
        .put_yaml("db-a", "# team A\nmysql_connections: 70\n", None)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let tag = created.etag.clone().expect("an ETag");
    assert_eq!(created.json["document"], json!({"mysql_connections": 70}));
    assert_eq!(created.json["file"], "db-a.yaml");
    s.wait_for_line(&threshold_line("db-a", "70"), true).await;

    let got = s.admin_get("/tenants/db-a").await;
    assert_eq!((got.status, got.etag.as_deref()), (200, Some(tag.as_str())));
    assert_eq!(got.json["document"], json!({"mysql_connections": 70}));

    // Replacing needs the current revision.
    let blind = s.put_yaml("db-a", "mysql_connections: 60\n", None).await;
    assert_eq!(blind.status, 428, "{}", blind.text);
    assert_eq!(blind.content_type, "application/problem+json");
    let stale = s
        .put_yaml("db-a", "mysql_connections: 60\n", Some("\"stale\""))
        .await;
    assert_eq!(stale.status, 412, "{}", stale.text);
    let replaced = s
        .put_yaml("db-a", "mysql_connections: 60\n", Some(&tag))
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text);
    let tag2 = replaced.etag.clone().unwrap();
    assert_ne!(tag2, tag);
    let reused = s
        .put_yaml("db-a", "mysql_connections: 61\n", Some(&tag))
        .await;
    assert_eq!(reused.status, 412, "an old ETag stays stale");

    // JSON replaces too, and is stored as YAML.
    let body = json!({"mysql_connections": 65, "_metadata": {"owner": "team-a"}}).to_string();
    let headers = [("if-match", tag2.as_str())];
    let json_put = s
        .api(
            Method::PUT,
            "/tenants/db-a",
            Some(ADMIN),
            &headers,
            Some(("application/json", body)),
        )
        .await;
    assert_eq!(json_put.status, 200, "{}", json_put.text);
    s.wait_for_line(&threshold_line("db-a", "65"), true).await;

    // PATCH sets and removes single keys; If-Match optional.
    let patched = s
        .patch("db-a", json!({"mysql_connections": 55}), None)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.json["document"],
        json!({"mysql_connections": 55, "_metadata": {"owner": "team-a"}})
    );
    s.wait_for_line(&threshold_line("db-a", "55"), true).await;
    let removed = s
        .patch("db-a", json!({"mysql_connections": null}), None)
        .await;
    assert_eq!(removed.status, 200);
    s.wait_for_line(&threshold_line("db-a", "80"), true).await; // back to the default
    let stale_patch = s
        .patch("db-a", json!({"mysql_connections": 1}), Some(&tag2))
        .await;
    assert_eq!(stale_patch.status, 412);
    // A PATCH after another kind of write starts from what that write stored, not from what
    // the previous PATCH wrote.
    let current = s.admin_get("/tenants/db-a").await.etag.unwrap();
    let put = s
        .put_yaml("db-a", "redis_memory_usage: 70\n", Some(&current))
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    let after_put = s
        .patch("db-a", json!({"mysql_connections": 44}), None)
        .await;
    assert_eq!(
        after_put.json["document"],
        json!({"redis_memory_usage": 70, "mysql_connections": 44})
    );

    // Delete needs If-Match too.
    let current = s.admin_get("/tenants/db-a").await.etag.unwrap();
    let blind = s
        .api(Method::DELETE, "/tenants/db-a", Some(ADMIN), &[], None)
        .await;
    assert_eq!(blind.status, 428);
    let deleted = s
        .api(
            Method::DELETE,
            "/tenants/db-a",
            Some(ADMIN),
            &[("if-match", &current)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(s.admin_get("/tenants/db-a").await.status, 404);
    s.wait_for_line(&threshold_line("db-a", "80"), false).await;
}

async fn invalid_documents_change_nothing(s: &Server) {
    let before = s.admin_get("/tenants/db-b").await;
    assert_eq!(before.status, 200, "{}", before.text);
    let history = s.admin_get("/tenants/db-b/history").await.json["entries"].clone();
    let etag = before.etag.clone().unwrap();
    let bad = s
        .put_yaml(
            "db-b",
            "mysql_connections: 50\nmysql_conections: 60\nredis_memory_usage: lots\n",
            Some(&etag),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(bad.content_type, "application/problem+json");
    let errors = bad.json["errors"].as_array().unwrap();
    let unknown = errors
        .iter()
        .find(|e| e["field"] == "mysql_conections")
        .unwrap_or_else(|| panic!("no finding for the misspelt key: {}", bad.text));
    assert_eq!(unknown["line"], 2, "lines are the body's own: {unknown}");
    assert_eq!(unknown["column"], 1, "{unknown}");
    assert_eq!(unknown["file"], "(request body)", "{unknown}");
    let sent_as_json = s
        .api(
            Method::PUT,
            "/tenants/db-b",
            Some(ADMIN),
            &[("if-match", &etag)],
            Some((
                "application/json",
                "{\"mysql_connections\": 50,\n  \"mysql_conections\": 60}".into(),
            )),
        )
        .await;
    assert_eq!(sent_as_json.status, 422, "{}", sent_as_json.text);
    let finding = &sent_as_json.json["errors"][0];
    assert_eq!(
        (&finding["line"], &finding["column"]),
        (&json!(2), &json!(3)),
        "{finding}"
    );
    assert!(
        unknown["message"]
            .as_str()
            .unwrap()
            .contains("did you mean")
    );
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "redis_memory_usage" && e["line"] == 3),
        "{}",
        bad.text
    );
    let syntax = s
        .put_yaml("db-b", "mysql_connections: [1,\n", Some(&etag))
        .await;
    assert_eq!(syntax.status, 422, "{}", syntax.text);
    // A lone carriage return is a YAML line break: the line after it must not escape the
    // tenant's indentation and define another tenant in db-b's file.
    let escape = s
        .put_yaml(
            "db-b",
            "mysql_connections: 50\r  db-escape:\r    mysql_connections: 1\n",
            Some(&etag),
        )
        .await;
    assert_eq!(escape.status, 422, "{}", escape.text);
    assert_eq!(s.admin_get("/tenants/db-escape").await.status, 404);
    let patch = s
        .patch("db-b", json!({"mysql_connections": "5:urgent"}), None)
        .await;
    assert_eq!(patch.status, 422, "{}", patch.text);
    assert_eq!(patch.json["errors"][0]["field"], "mysql_connections");
    // Two keys for one series (issue 18 item 6): only one row could be served.
    let twice = s
        .put_yaml(
            "db-b",
            "mysql_connections: 50\n\"mysql_connections{pool='a'}\": 1\n'mysql_connections{ pool = \"a\" }': 2\n",
            Some(&etag),
        )
        .await;
    assert_eq!(twice.status, 422, "{}", twice.text);
    let finding = &twice.json["errors"][0];
    assert_eq!(
        (&finding["line"], &finding["field"]),
        (&json!(3), &json!("mysql_connections{ pool = \"a\" }")),
        "{finding}"
    );
    assert!(
        finding["message"]
            .as_str()
            .unwrap()
            .contains("same series as key \"mysql_connections{pool='a'}\" (line 2, column 1)"),
        "{finding}"
    );
    let after = s.admin_get("/tenants/db-b").await;
    assert_eq!(after.etag, before.etag, "a refused write changes nothing");
    assert_eq!(after.json, before.json);
    assert_eq!(
        s.admin_get("/tenants/db-b/history").await.json["entries"],
        history
    );
    // A valid write after the refused ones: once it is served, /metrics has caught up with the
    // store, and none of the refused documents' values may be there.
    let valid = s
        .patch("db-b", json!({"redis_memory_usage": 70}), None)
        .await;
    assert_eq!(valid.status, 200, "{}", valid.text);
    let redis = "user_threshold{tenant=\"db-b\",component=\"redis\",metric=\"memory_usage\",severity=\"warning\"} 70";
    let metrics = s.wait_for_line(redis, true).await;
    assert!(
        metrics.lines().any(|l| l == threshold_line("db-b", "50")),
        "db-b keeps mysql_connections 50:\n{metrics}"
    );
    assert!(
        !metrics.contains("tenant=\"db-escape\""),
        "no tenant escaped db-b's file:\n{metrics}"
    );
}

async fn request_errors(s: &Server) {
    assert_eq!(s.admin_get("/tenants/nobody").await.status, 404);
    assert_eq!(s.admin_get("/tenants/nobody/effective").await.status, 404);
    assert_eq!(s.patch("nobody", json!({"a": 1}), None).await.status, 404);
    for bad in ["Bad_Name", "a..b%2F..%2Fetc", "-x"] {
        let r = s.admin_get(&format!("/tenants/{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let huge = format!("mysql_connections: 1\n# {}\n", "x".repeat(1 << 20));
    assert_eq!(s.put_yaml("big", &huge, None).await.status, 413);
    let text_plain = s
        .api(
            Method::PUT,
            "/tenants/x",
            Some(ADMIN),
            &[],
            Some(("text/plain", "a: 1".into())),
        )
        .await;
    assert_eq!(text_plain.status, 415);
    // Malformed JSON is a bad request (400, as documented), never a document the model
    // refused (422): a tenant's JSON body used to reach the YAML validation first.
    for (method, path, media) in [
        (Method::PUT, "/tenants/x", "application/json"),
        (
            Method::PATCH,
            "/tenants/db-b",
            "application/merge-patch+json",
        ),
        (
            Method::PUT,
            "/platform?file=_defaults.yaml",
            "application/json",
        ),
    ] {
        for bad in ["{\"mysql_connections\": 70,", "[1, 2", "{\"a\": }", ""] {
            let body = Some((media, bad.to_string()));
            let r = s.api(method.clone(), path, Some(ADMIN), &[], body).await;
            assert_eq!(r.status, 400, "{method} {path} {bad:?}: {}", r.text);
            assert_eq!(r.content_type, "application/problem+json");
            let detail = r.json["detail"].as_str().unwrap_or_default();
            assert!(
                detail.contains("not JSON"),
                "{method} {path} {bad:?}: {detail}"
            );
        }
    }
    let shared = s.put_yaml("t1", "mysql_connections: 1\n", None).await;
    assert_eq!(shared.status, 409, "{}", shared.text);
    assert!(
        shared.json["detail"]
            .as_str()
            .unwrap()
            .contains("team.yaml")
    );
    let no_token = s.api(Method::GET, "/tenants", None, &[], None).await;
    assert_eq!(no_token.status, 401);
    let wrong = s
        .api(Method::GET, "/tenants", Some("nope"), &[], None)
        .await;
    assert_eq!(wrong.status, 401);
}

async fn history_effective_and_simulate(s: &Server) {
    let created = s.put_yaml("hist", "mysql_connections: 10\n", None).await;
    assert_eq!(created.status, 201, "{}", created.text);
    s.patch(
        "hist",
        json!({"mysql_connections": 11, "_profile": "big"}),
        None,
    )
    .await;
    let history = s.admin_get("/tenants/hist/history").await;
    let entries = history.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{}", history.text);
    assert_eq!(entries[0]["actor"], "ops");
    assert_eq!(entries[0]["object"], "tenant:hist");
    assert_eq!(entries[1]["object"], "tenant:hist");
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(entries[1]["before"], json!({"mysql_connections": 10}));
    assert_eq!(
        entries[1]["changes"],
        json!([
            {"field": "_profile", "before": null, "after": "big"},
            {"field": "mysql_connections", "before": 10, "after": 11}
        ])
    );

    s.wait_for_line(&threshold_line("hist", "11"), true).await;
    let effective = s.admin_get("/tenants/hist/effective").await;
    assert_eq!(effective.status, 200, "{}", effective.text);
    let keys = effective.json["keys"].as_array().unwrap();
    let key = |name: &str| keys.iter().find(|k| k["key"] == name).unwrap().clone();
    let conn = key("mysql_connections");
    assert_eq!(
        (conn["value"].clone(), conn["state"].clone()),
        (json!(11.0), json!("custom"))
    );
    assert!(
        conn["used_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["pack"] == "mariadb"),
        "{conn}"
    );
    assert_eq!(key("redis_memory_usage")["state"], "default");

    let before = s.admin_get("/tenants/hist").await;
    let sim = s
        .api(
            Method::POST,
            "/simulate",
            Some(ADMIN),
            &[],
            Some((
                "application/json",
                json!({"tenant": "hist", "document": {"mysql_connections": "disable"}}).to_string(),
            )),
        )
        .await;
    assert_eq!(sim.status, 200, "{}", sim.text);
    let metrics = sim.json["metrics"].as_str().unwrap();
    assert!(
        metrics.contains(
            "user_threshold_state_filter{tenant=\"hist\",metric_key=\"mysql_connections\"} -1"
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains("metric=\"connections\",severity=\"warning\""),
        "{metrics}"
    );
    let after = s.admin_get("/tenants/hist").await;
    assert_eq!(after.etag, before.etag, "simulate saves nothing");
    let bad_sim = s
        .api(
            Method::POST,
            "/simulate",
            Some(ADMIN),
            &[],
            Some((
                "application/json",
                json!({"tenant": "x", "document": {"nope": 1}}).to_string(),
            )),
        )
        .await;
    assert_eq!(bad_sim.status, 422, "{}", bad_sim.text);
}

async fn platform_changes(s: &Server) {
    let platform = s.admin_get("/platform").await;
    assert_eq!(platform.status, 200);
    let files = platform.json["files"].as_array().unwrap();
    let defaults = files
        .iter()
        .find(|f| f["file"] == "_defaults.yaml")
        .unwrap();
    let etag = format!("\"{}\"", defaults["revision"].as_str().unwrap());
    let raised = DEFAULTS.replace("mysql_connections: 80", "mysql_connections: 81");
    let put = |body: String, tag: Option<String>| async move {
        let headers: Vec<(&str, String)> = tag.map(|t| ("if-match", t)).into_iter().collect();
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        s.api(
            Method::PUT,
            "/platform?file=_defaults.yaml",
            Some(ADMIN),
            &headers,
            Some(("application/yaml", body)),
        )
        .await
    };
    let history = "/platform/history?file=_defaults.yaml";
    let earlier = platform_history(s, history).await;
    assert_eq!(put(raised.clone(), None).await.status, 428);
    // Dropping the profile tenant `hist` uses would break it: refused, naming its file.
    let breaking = put(
        "defaults:\n  mysql_connections: 80\n".into(),
        Some(etag.clone()),
    )
    .await;
    assert_eq!(breaking.status, 422, "{}", breaking.text);
    assert!(breaking.text.contains("hist.yaml"), "{}", breaking.text);
    assert_eq!(
        platform_history(s, history).await,
        earlier,
        "a refused platform write leaves no audit entry"
    );
    let started = chrono::Utc::now();
    let ok = put(raised.clone(), Some(etag)).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    s.wait_for_line(&threshold_line("t1", "81"), true).await;
    platform_history_shows_the_write(s, history, &earlier, started).await;
    let unchanged = put(raised, ok.etag.clone()).await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert_eq!(
        platform_history(s, history).await.len(),
        earlier.len() + 1,
        "an unchanged write is not audited"
    );
    let not_platform = s
        .api(
            Method::PUT,
            "/platform?file=defaults.yaml",
            Some(ADMIN),
            &[],
            Some(("application/yaml", "defaults: {}\n".into())),
        )
        .await;
    assert_eq!(not_platform.status, 400);
}

/// The entries of a platform history request that must succeed.
async fn platform_history(s: &Server, path: &str) -> Vec<Value> {
    let reply = s.admin_get(path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    assert_eq!(reply.json["file"], "_defaults.yaml", "{}", reply.text);
    reply.json["entries"].as_array().unwrap().clone()
}

/// After `platform_changes` raised the default `mysql_connections` 80 -> 81: one entry more
/// than `earlier`, by the admin, about `platform:_defaults.yaml`, with both whole documents
/// and the one block that changed. The default file and `limit` work as for tenants.
async fn platform_history_shows_the_write(
    s: &Server,
    path: &str,
    earlier: &[Value],
    started: chrono::DateTime<chrono::Utc>,
) {
    let entries = platform_history(s, path).await;
    assert_eq!(entries.len(), earlier.len() + 1, "{entries:#?}");
    assert_eq!(entries[..earlier.len()], *earlier, "older entries stay");
    let entry = entries.last().unwrap();
    let defaults = |connections: u64| {
        json!({
            "mysql_connections": connections,
            "mysql_connections_critical": 95,
            "redis_memory_usage": 85
        })
    };
    let document = |connections: u64| {
        json!({
            "defaults": defaults(connections),
            "optional": ["mongodb_replication_lag"],
            "profiles": {"big": {"mysql_connections": 300}}
        })
    };
    assert_eq!(entry["actor"], "ops", "{entry:#}");
    assert_eq!(entry["object"], "platform:_defaults.yaml", "{entry:#}");
    assert_eq!(entry["file"], "_defaults.yaml", "{entry:#}");
    assert_eq!(entry["before"], document(80), "{entry:#}");
    assert_eq!(entry["after"], document(81), "{entry:#}");
    assert_eq!(
        entry["changes"],
        json!([{"field": "defaults", "before": defaults(80), "after": defaults(81)}])
    );
    let at = chrono::DateTime::parse_from_rfc3339(entry["at"].as_str().unwrap()).unwrap();
    let slack = chrono::Duration::seconds(1);
    assert!(
        at >= started - slack && at <= chrono::Utc::now() + slack,
        "written at {at}, the request started at {started}"
    );
    if let Some(previous) = earlier.last() {
        assert_eq!(previous["after"], entry["before"], "{previous:#}");
        assert!(previous["id"].as_i64() < entry["id"].as_i64());
    }
    let by_default = s.admin_get("/platform/history").await;
    assert_eq!(
        by_default.json["entries"],
        json!(entries),
        "file defaults to _defaults.yaml"
    );
    let newest = platform_history(s, &format!("{path}&limit=1")).await;
    assert_eq!(newest, std::slice::from_ref(entry));
    for bad in ["?file=defaults.yaml", "?file=../_x.yaml", "?limit=many"] {
        let reply = s.admin_get(&format!("/platform/history{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert_eq!(reply.content_type, "application/problem+json");
    }
}

/// 50 clients write the same tenant, each with the revision it read, retrying on 412.
/// Every accepted write must be in the history, in an unbroken chain, and the final state
/// must be the last accepted write.
async fn concurrent_writers_lose_nothing(s: &Server) {
    assert_eq!(
        s.put_yaml("race", "mysql_connections: 0\n", None)
            .await
            .status,
        201
    );
    s.await_tenant("race").await;
    let mut tasks = Vec::new();
    for client in 1..=50u32 {
        let client_http = s.client.clone();
        let base = s.base.clone();
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/api/v1/tenants/race");
            let mut attempts = 0;
            loop {
                attempts += 1;
                assert!(attempts < 500, "client {client} never got through");
                let got = client_http
                    .get(&url)
                    .bearer_auth(ADMIN)
                    .send()
                    .await
                    .unwrap();
                let tag = got.headers()["etag"].to_str().unwrap().to_string();
                let put = client_http
                    .put(&url)
                    .bearer_auth(ADMIN)
                    .header("if-match", &tag)
                    .header("content-type", "application/yaml")
                    .body(format!("mysql_connections: {client}\n"))
                    .send()
                    .await
                    .unwrap();
                match put.status().as_u16() {
                    200 => return client,
                    412 => continue,
                    other => panic!("client {client}: {other} {}", put.text().await.unwrap()),
                }
            }
        }));
    }
    let mut accepted = Vec::new();
    for t in tasks {
        accepted.push(t.await.unwrap());
    }
    let history = s.admin_get("/tenants/race/history?limit=1000").await.json["entries"].clone();
    let entries = history.as_array().unwrap();
    assert_eq!(entries.len(), 51, "creation + one entry per accepted write");
    let value = |v: &Value| v["mysql_connections"].as_u64();
    let mut written: Vec<u64> = Vec::new();
    for pair in entries.windows(2) {
        assert_eq!(
            pair[1]["before"], pair[0]["after"],
            "each write replaced what the previous one wrote"
        );
    }
    for e in &entries[1..] {
        written.push(value(&e["after"]).unwrap());
    }
    written.sort();
    assert_eq!(
        written,
        (1..=50).collect::<Vec<u64>>(),
        "every client's write is there once"
    );
    let last = value(&entries[50]["after"]).unwrap();
    let now = s.admin_get("/tenants/race").await;
    assert_eq!(value(&now.json["document"]), Some(last));
    s.wait_for_line(&threshold_line("race", &last.to_string()), true)
        .await;
}

/// 20 clients PATCH the same tenant at once, each its own key: a merge patch is a
/// read-modify-write, and none of them may undo another's.
async fn concurrent_patches_of_one_tenant_all_land(s: &Server) {
    assert_eq!(s.put_yaml("patched", "{}", None).await.status, 201);
    s.await_tenant("patched").await;
    let mut tasks = Vec::new();
    for queue in 0..20 {
        let client = s.client.clone();
        let url = format!("{}/api/v1/tenants/patched", s.base);
        tasks.push(tokio::spawn(async move {
            let key = format!("redis_queue_length{{queue='q{queue}'}}");
            let response = client
                .patch(&url)
                .bearer_auth(ADMIN)
                .header("content-type", "application/merge-patch+json")
                .body(json!({ key: queue + 100 }).to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let document = s.admin_get("/tenants/patched").await.json["document"].clone();
    let keys = document.as_object().unwrap();
    assert_eq!(keys.len(), 20, "every key landed: {document}");
    for queue in 0..20 {
        assert_eq!(
            keys[&format!("redis_queue_length{{queue='q{queue}'}}")],
            queue + 100
        );
    }
    let history = s
        .admin_get("/tenants/patched/history?limit=1000")
        .await
        .json["entries"]
        .clone();
    assert_eq!(history.as_array().unwrap().len(), 21);
}

async fn suite(backend: Backend) {
    let Some(fixture) = Fixture::new(backend) else {
        return;
    };
    let s = fixture.serve(true).await;
    let started = Instant::now();
    tenant_lifecycle(&s).await;
    invalid_documents_change_nothing(&s).await;
    request_errors(&s).await;
    history_effective_and_simulate(&s).await;
    platform_changes(&s).await;
    concurrent_writers_lose_nothing(&s).await;
    concurrent_patches_of_one_tenant_all_land(&s).await;
    eprintln!("{backend:?}: API suite took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_on_a_directory() {
    suite(Backend::Dir).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_on_sqlite() {
    suite(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn api_on_postgres() {
    suite(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_an_auth_file_the_api_is_read_only() {
    let fixture = Fixture::new(Backend::Sqlite).unwrap();
    let s = fixture.serve(false).await;
    let list = s.api(Method::GET, "/tenants", None, &[], None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let write = s
        .api(
            Method::PUT,
            "/tenants/x",
            None,
            &[],
            Some(("application/yaml", "{}".into())),
        )
        .await;
    assert_eq!(write.status, 403, "{}", write.text);
    assert!(write.text.contains("read-only"), "{}", write.text);
}

/// A write through either replica is served by the other. (How soon is a benchmark's
/// figure: `docs/benchmarks.md`, cross-replica propagation.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres() {
    let Some(fixture) = Fixture::new(Backend::Postgres) else {
        return;
    };
    let one = fixture.serve(true).await;
    let two = fixture.serve(true).await;
    for value in 1..=5 {
        let r = one
            .patch("db-b", json!({"mysql_connections": value}), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        two.wait_for_line(&threshold_line("db-b", &value.to_string()), true)
            .await;
    }
    let created = two
        .put_yaml("made-on-two", "mysql_connections: 7\n", None)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    one.wait_for_line(&threshold_line("made-on-two", "7"), true)
        .await;
}

/// Every role against every endpoint: what each may do, and the exact refusal otherwise;
/// then what the matrix's calls must (not) have left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn authorization_matrix() {
    let fixture = Fixture::new(Backend::Sqlite).unwrap();
    let s = fixture.serve(true).await;
    // db-a exists (own tenant of the tenant token); db-b is another tenant.
    assert_eq!(
        s.put_yaml("db-a", "mysql_connections: 70\n", None)
            .await
            .status,
        201
    );
    s.await_tenant("db-a").await;

    let statuses = every_role_gets_its_status_from_every_endpoint(&s).await;
    a_tenant_token_lists_only_its_tenant(&s).await;
    unchanged_writes_leave_no_audit_entry(&s, &statuses).await;
    a_viewer_reads_the_platform_history(&s).await;
    the_openapi_document_is_public(&s).await;
}

/// The callers of the matrix: none, an unknown token, then one token per role.
const ROLES: [(&str, Option<&str>); 5] = [
    ("none", None),
    ("invalid", Some("wrong-token")),
    ("admin", Some(ADMIN)),
    ("viewer", Some(VIEWER)),
    ("tenant:db-a", Some(TENANT_A)),
];

/// One call of the matrix.
struct Case {
    method: Method,
    path: &'static str,
    body: Option<(&'static str, &'static str)>,
    headers: &'static [(&'static str, &'static str)],
    /// Expected status for admin, viewer, tenant:db-a (none/invalid are always 401).
    expect: [u16; 3],
}

const STALE: &[(&str, &str)] = &[("if-match", "\"stale\"")];

impl Case {
    fn new(method: Method, path: &'static str, expect: [u16; 3]) -> Case {
        Case {
            method,
            path,
            body: None,
            headers: &[],
            expect,
        }
    }

    fn body(self, content_type: &'static str, body: &'static str) -> Case {
        Case {
            body: Some((content_type, body)),
            ..self
        }
    }

    fn stale(self) -> Case {
        Case {
            headers: STALE,
            ..self
        }
    }
}

/// Every endpoint, with what each role gets. Writes that succeed leave the state as it was,
/// so every role sees the same setup: PATCH sets the value it already has; PUT/DELETE carry a
/// stale If-Match, so an authorized caller gets past the role check to a precondition error
/// instead of changing anything.
fn authorization_cases() -> Vec<Case> {
    let yaml = "application/yaml";
    let patch = "application/merge-patch+json";
    let json = "application/json";
    vec![
        Case::new(Method::GET, "/tenants", [200, 200, 200]),
        Case::new(Method::GET, "/tenants/db-a", [200, 200, 200]),
        Case::new(Method::GET, "/tenants/db-b", [200, 200, 403]),
        Case::new(Method::PUT, "/tenants/db-a", [412, 403, 412])
            .body(yaml, "mysql_connections: 70\n")
            .stale(),
        Case::new(Method::PUT, "/tenants/db-b", [412, 403, 403])
            .body(yaml, "mysql_connections: 50\n")
            .stale(),
        Case::new(Method::PATCH, "/tenants/db-a", [200, 403, 200])
            .body(patch, "{\"mysql_connections\": 70}"),
        Case::new(Method::PATCH, "/tenants/db-b", [200, 403, 403])
            .body(patch, "{\"mysql_connections\": 50}"),
        Case::new(Method::DELETE, "/tenants/db-a", [412, 403, 412]).stale(),
        Case::new(Method::DELETE, "/tenants/db-b", [412, 403, 403]).stale(),
        Case::new(Method::GET, "/tenants/db-a/effective", [200, 200, 200]),
        Case::new(Method::GET, "/tenants/db-b/effective", [200, 200, 403]),
        Case::new(Method::GET, "/tenants/db-a/history", [200, 200, 200]),
        Case::new(Method::GET, "/tenants/db-b/history", [200, 200, 403]),
        Case::new(Method::GET, "/platform", [200, 200, 403]),
        Case::new(Method::PUT, "/platform", [412, 403, 403])
            .body(yaml, DEFAULTS)
            .stale(),
        Case::new(Method::GET, "/platform/history", [200, 200, 403]),
        Case::new(
            Method::GET,
            "/platform/history?file=_defaults.yaml&limit=5",
            [200, 200, 403],
        ),
        // The role is checked before the file name.
        Case::new(
            Method::GET,
            "/platform/history?file=defaults.yaml",
            [400, 400, 403],
        ),
        Case::new(Method::POST, "/simulate", [200, 200, 200])
            .body(json, "{\"tenant\": \"db-a\", \"document\": {}}"),
        Case::new(Method::POST, "/simulate", [200, 200, 403])
            .body(json, "{\"tenant\": \"db-b\", \"document\": {}}"),
        Case::new(Method::GET, "/config", [200, 200, 403]),
    ]
}

/// Runs every case as every role; every refusal is problem+json. Returns the status each
/// call got, for the messages of later checks.
async fn every_role_gets_its_status_from_every_endpoint(s: &Server) -> BTreeMap<String, u16> {
    let mut failures = Vec::new();
    let mut statuses = BTreeMap::new();
    for case in &authorization_cases() {
        for (i, (role, token)) in ROLES.iter().enumerate() {
            let want = if i < 2 { 401 } else { case.expect[i - 2] };
            let body = case.body.map(|(t, b)| (t, b.to_string()));
            let got = s
                .api(case.method.clone(), case.path, *token, case.headers, body)
                .await;
            statuses.insert(
                format!("{} {} as {role}", case.method, case.path),
                got.status,
            );
            if got.status != want {
                failures.push(format!(
                    "{} {} as {role}: want {want}, got {} {}",
                    case.method, case.path, got.status, got.text
                ));
            }
            if got.status >= 400 {
                assert_eq!(got.content_type, "application/problem+json", "{}", got.text);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    statuses
}

async fn a_tenant_token_lists_only_its_tenant(s: &Server) {
    let own = s
        .api(Method::GET, "/tenants", Some(TENANT_A), &[], None)
        .await;
    let names: Vec<&str> = own.json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-a"]);
}

/// The matrix's accepted PATCHes (by the admin and by db-a's own token) set the value db-a
/// already had: its history still holds only its creation, by the admin.
async fn unchanged_writes_leave_no_audit_entry(s: &Server, statuses: &BTreeMap<String, u16>) {
    let history = s.admin_get("/tenants/db-a/history").await;
    let actors: Vec<&str> = history.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["ops"],
        "unchanged PATCHes are not audited: {statuses:?}"
    );
}

/// A viewer reads the platform history: here the import that seeded the store, as the whole
/// document it wrote (the matrix's refused PUTs left nothing).
async fn a_viewer_reads_the_platform_history(s: &Server) {
    let platform = s
        .api(Method::GET, "/platform/history", Some(VIEWER), &[], None)
        .await;
    let entries = platform.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", platform.text);
    assert_eq!(entries[0]["actor"], "import");
    assert_eq!(entries[0]["object"], "document:_defaults.yaml");
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(entries[0]["after"]["defaults"]["mysql_connections"], 80);
}

async fn the_openapi_document_is_public(s: &Server) {
    assert_eq!(
        s.api(Method::GET, "/openapi.json", None, &[], None)
            .await
            .status,
        200
    );
}
