//! The management API, the same suite against every store: a conf.d directory, an SQLite file
//! and a real PostgreSQL (Debian `postgresql`, started on a free loopback port). Then what
//! only some backends have to prove: two replicas on one PostgreSQL, and the authorization
//! matrix (every role against every endpoint).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use dynalert_server::{ServeError, ServeOptions, hash_token, serve_on};
use dynalert_store::StoreSpec;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

/// A server in this process, and what it needs kept alive.
struct ApiServer {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A response: status, headers we look at, body as JSON (or `Null`) and as text.
struct Reply {
    status: u16,
    etag: Option<String>,
    content_type: String,
    json: Value,
    text: String,
}

impl ApiServer {
    async fn start(store: StoreSpec, import: Option<&Path>, auth: Option<&Path>) -> ApiServer {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dynalert_server=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut opts = ServeOptions::with_store(store);
        opts.reload_interval = Duration::from_secs(3600);
        opts.known_keys = dynalert_rules::declared_keys();
        opts.import = import.map(Path::to_path_buf);
        opts.auth_file = auth.map(Path::to_path_buf);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, opts, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let server = ApiServer {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(task) = &server.task
                && task.is_finished()
            {
                panic!("the server stopped while starting");
            }
            let ready = server
                .client
                .get(format!("{}/ready", server.base))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(Instant::now() < deadline, "server not ready after 20 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some((content_type, body)) = body {
            request = request.header("content-type", content_type).body(body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
        };
        let etag = header("etag");
        let content_type = header("content-type").unwrap_or_default();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            etag,
            content_type,
            json,
            text,
        }
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, Some(ADMIN), &[], None).await
    }

    async fn put_yaml(&self, tenant: &str, yaml: &str, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        let path = format!("/tenants/{tenant}");
        let body = Some(("application/yaml", yaml.to_string()));
        self.call(Method::PUT, &path, Some(ADMIN), &headers, body)
            .await
    }

    async fn patch(&self, tenant: &str, patch: Value, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match.map(|m| ("if-match", m)).into_iter().collect();
        let path = format!("/tenants/{tenant}");
        let body = Some(("application/merge-patch+json", patch.to_string()));
        self.call(Method::PATCH, &path, Some(ADMIN), &headers, body)
            .await
    }

    async fn metrics(&self) -> String {
        let response = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Waits until `/metrics` has (or, with `present = false`, lacks) `line`; returns how long.
    async fn await_metrics(&self, line: &str, present: bool) -> Duration {
        let started = Instant::now();
        loop {
            let body = self.metrics().await;
            if body.lines().any(|l| l == line) == present {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "after 5 s /metrics still {} {line:?}",
                if present { "lacks" } else { "has" }
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the served model knows `tenant` (the API validates against it).
    async fn await_tenant(&self, tenant: &str) {
        let line = format!(
            "user_threshold_state_filter{{tenant=\"{tenant}\",metric_key=\"mysql_connections\"}}"
        );
        let started = Instant::now();
        while !self.metrics().await.contains(&line) {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{tenant} not served"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
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

    async fn serve(&self, auth: bool) -> ApiServer {
        let import = match self.store {
            StoreSpec::Dir(_) => None,
            _ => Some(self.seed.path()),
        };
        let auth = auth.then(|| auth_file(self.work.path()));
        ApiServer::start(self.store.clone(), import, auth.as_deref()).await
    }
}

async fn tenant_lifecycle(s: &ApiServer) {
    // Create: 201, an ETag, the document as sent, served on /metrics.
    let created = s
        .put_yaml("db-a", "# team A\nmysql_connections: 70\n", None)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let tag = created.etag.clone().expect("an ETag");
    assert_eq!(created.json["document"], json!({"mysql_connections": 70}));
    assert_eq!(created.json["file"], "db-a.yaml");
    let took = s.await_metrics(&threshold_line("db-a", "70"), true).await;
    assert!(took < Duration::from_secs(1), "served after {took:?}");

    let got = s.get("/tenants/db-a").await;
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
        .call(
            Method::PUT,
            "/tenants/db-a",
            Some(ADMIN),
            &headers,
            Some(("application/json", body)),
        )
        .await;
    assert_eq!(json_put.status, 200, "{}", json_put.text);
    s.await_metrics(&threshold_line("db-a", "65"), true).await;

    // PATCH sets and removes single keys; If-Match optional.
    let patched = s
        .patch("db-a", json!({"mysql_connections": 55}), None)
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.json["document"],
        json!({"mysql_connections": 55, "_metadata": {"owner": "team-a"}})
    );
    s.await_metrics(&threshold_line("db-a", "55"), true).await;
    let removed = s
        .patch("db-a", json!({"mysql_connections": null}), None)
        .await;
    assert_eq!(removed.status, 200);
    s.await_metrics(&threshold_line("db-a", "80"), true).await; // back to the default
    let stale_patch = s
        .patch("db-a", json!({"mysql_connections": 1}), Some(&tag2))
        .await;
    assert_eq!(stale_patch.status, 412);
    // A PATCH after another kind of write starts from what that write stored, not from what
    // the previous PATCH wrote.
    let current = s.get("/tenants/db-a").await.etag.unwrap();
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
    let current = s.get("/tenants/db-a").await.etag.unwrap();
    let blind = s
        .call(Method::DELETE, "/tenants/db-a", Some(ADMIN), &[], None)
        .await;
    assert_eq!(blind.status, 428);
    let deleted = s
        .call(
            Method::DELETE,
            "/tenants/db-a",
            Some(ADMIN),
            &[("if-match", &current)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(s.get("/tenants/db-a").await.status, 404);
    s.await_metrics(&threshold_line("db-a", "80"), false).await;
}

async fn invalid_documents_change_nothing(s: &ApiServer) {
    let before = s.get("/tenants/db-b").await;
    assert_eq!(before.status, 200, "{}", before.text);
    let history = s.get("/tenants/db-b/history").await.json["entries"].clone();
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
    assert_eq!(s.get("/tenants/db-escape").await.status, 404);
    let patch = s
        .patch("db-b", json!({"mysql_connections": "5:urgent"}), None)
        .await;
    assert_eq!(patch.status, 422, "{}", patch.text);
    assert_eq!(patch.json["errors"][0]["field"], "mysql_connections");
    let after = s.get("/tenants/db-b").await;
    assert_eq!(after.etag, before.etag, "a refused write changes nothing");
    assert_eq!(after.json, before.json);
    assert_eq!(
        s.get("/tenants/db-b/history").await.json["entries"],
        history
    );
    s.await_metrics(&threshold_line("db-b", "50"), true).await;
}

async fn request_errors(s: &ApiServer) {
    assert_eq!(s.get("/tenants/nobody").await.status, 404);
    assert_eq!(s.get("/tenants/nobody/effective").await.status, 404);
    assert_eq!(s.patch("nobody", json!({"a": 1}), None).await.status, 404);
    for bad in ["Bad_Name", "a..b%2F..%2Fetc", "-x"] {
        let r = s.get(&format!("/tenants/{bad}")).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.text);
    }
    let huge = format!("mysql_connections: 1\n# {}\n", "x".repeat(1 << 20));
    assert_eq!(s.put_yaml("big", &huge, None).await.status, 413);
    let text_plain = s
        .call(
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
            let r = s.call(method.clone(), path, Some(ADMIN), &[], body).await;
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
    let no_token = s.call(Method::GET, "/tenants", None, &[], None).await;
    assert_eq!(no_token.status, 401);
    let wrong = s
        .call(Method::GET, "/tenants", Some("nope"), &[], None)
        .await;
    assert_eq!(wrong.status, 401);
}

async fn history_effective_and_simulate(s: &ApiServer) {
    let created = s.put_yaml("hist", "mysql_connections: 10\n", None).await;
    assert_eq!(created.status, 201, "{}", created.text);
    s.patch(
        "hist",
        json!({"mysql_connections": 11, "_profile": "big"}),
        None,
    )
    .await;
    let history = s.get("/tenants/hist/history").await;
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

    s.await_metrics(&threshold_line("hist", "11"), true).await;
    let effective = s.get("/tenants/hist/effective").await;
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

    let before = s.get("/tenants/hist").await;
    let sim = s
        .call(
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
    let after = s.get("/tenants/hist").await;
    assert_eq!(after.etag, before.etag, "simulate saves nothing");
    let bad_sim = s
        .call(
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

async fn platform_changes(s: &ApiServer) {
    let platform = s.get("/platform").await;
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
        s.call(
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
    s.await_metrics(&threshold_line("t1", "81"), true).await;
    platform_history_shows_the_write(s, history, &earlier, started).await;
    let unchanged = put(raised, ok.etag.clone()).await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert_eq!(
        platform_history(s, history).await.len(),
        earlier.len() + 1,
        "an unchanged write is not audited"
    );
    let not_platform = s
        .call(
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
async fn platform_history(s: &ApiServer, path: &str) -> Vec<Value> {
    let reply = s.get(path).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    assert_eq!(reply.json["file"], "_defaults.yaml", "{}", reply.text);
    reply.json["entries"].as_array().unwrap().clone()
}

/// After `platform_changes` raised the default `mysql_connections` 80 -> 81: one entry more
/// than `earlier`, by the admin, about `platform:_defaults.yaml`, with both whole documents
/// and the one block that changed. The default file and `limit` work as for tenants.
async fn platform_history_shows_the_write(
    s: &ApiServer,
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
    let by_default = s.get("/platform/history").await;
    assert_eq!(
        by_default.json["entries"],
        json!(entries),
        "file defaults to _defaults.yaml"
    );
    let newest = platform_history(s, &format!("{path}&limit=1")).await;
    assert_eq!(newest, std::slice::from_ref(entry));
    for bad in ["?file=defaults.yaml", "?file=../_x.yaml", "?limit=many"] {
        let reply = s.get(&format!("/platform/history{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
        assert_eq!(reply.content_type, "application/problem+json");
    }
}

/// 50 clients write the same tenant, each with the revision it read, retrying on 412.
/// Every accepted write must be in the history, in an unbroken chain, and the final state
/// must be the last accepted write.
async fn concurrent_writers_lose_nothing(s: &ApiServer) {
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
    let history = s.get("/tenants/race/history?limit=1000").await.json["entries"].clone();
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
    let now = s.get("/tenants/race").await;
    assert_eq!(value(&now.json["document"]), Some(last));
    s.await_metrics(&threshold_line("race", &last.to_string()), true)
        .await;
}

/// 20 clients PATCH the same tenant at once, each its own key: a merge patch is a
/// read-modify-write, and none of them may undo another's.
async fn concurrent_patches_of_one_tenant_all_land(s: &ApiServer) {
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
    let document = s.get("/tenants/patched").await.json["document"].clone();
    let keys = document.as_object().unwrap();
    assert_eq!(keys.len(), 20, "every key landed: {document}");
    for queue in 0..20 {
        assert_eq!(
            keys[&format!("redis_queue_length{{queue='q{queue}'}}")],
            queue + 100
        );
    }
    let history = s.get("/tenants/patched/history?limit=1000").await.json["entries"].clone();
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
    let list = s.call(Method::GET, "/tenants", None, &[], None).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let write = s
        .call(
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

/// A write through one replica is on the other's /metrics within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres() {
    let Some(fixture) = Fixture::new(Backend::Postgres) else {
        return;
    };
    let one = fixture.serve(true).await;
    let two = fixture.serve(true).await;
    let mut seen = Vec::new();
    for value in 1..=5 {
        let r = one
            .patch("db-b", json!({"mysql_connections": value}), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        seen.push(
            two.await_metrics(&threshold_line("db-b", &value.to_string()), true)
                .await,
        );
    }
    let created = two
        .put_yaml("made-on-two", "mysql_connections: 7\n", None)
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    seen.push(
        one.await_metrics(&threshold_line("made-on-two", "7"), true)
            .await,
    );
    let worst = seen.iter().max().unwrap();
    eprintln!("replica propagation: {seen:?}");
    assert!(*worst < Duration::from_secs(1), "took {worst:?}");
}

/// Every role against every endpoint: what each may do, and the exact refusal otherwise.
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

    let roles: [(&str, Option<&str>); 5] = [
        ("none", None),
        ("invalid", Some("wrong-token")),
        ("admin", Some(ADMIN)),
        ("viewer", Some(VIEWER)),
        ("tenant:db-a", Some(TENANT_A)),
    ];
    // Writes that succeed leave the state as it was, so every role sees the same setup:
    // PATCH sets the value it already has; PUT/DELETE target a tenant that does not exist
    // or carry a stale If-Match, so an authorized caller gets past the role check to a
    // precondition or lookup error instead of changing anything.
    struct Case {
        method: Method,
        path: &'static str,
        body: Option<(&'static str, &'static str)>,
        headers: &'static [(&'static str, &'static str)],
        /// Expected status for admin, viewer, tenant:db-a (none/invalid are always 401).
        expect: [u16; 3],
    }
    let cases = [
        Case {
            method: Method::GET,
            path: "/tenants",
            body: None,
            headers: &[],
            expect: [200, 200, 200],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-a",
            body: None,
            headers: &[],
            expect: [200, 200, 200],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-b",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::PUT,
            path: "/tenants/db-a",
            body: Some(("application/yaml", "mysql_connections: 70\n")),
            headers: &[("if-match", "\"stale\"")],
            expect: [412, 403, 412],
        },
        Case {
            method: Method::PUT,
            path: "/tenants/db-b",
            body: Some(("application/yaml", "mysql_connections: 50\n")),
            headers: &[("if-match", "\"stale\"")],
            expect: [412, 403, 403],
        },
        Case {
            method: Method::PATCH,
            path: "/tenants/db-a",
            body: Some((
                "application/merge-patch+json",
                "{\"mysql_connections\": 70}",
            )),
            headers: &[],
            expect: [200, 403, 200],
        },
        Case {
            method: Method::PATCH,
            path: "/tenants/db-b",
            body: Some((
                "application/merge-patch+json",
                "{\"mysql_connections\": 50}",
            )),
            headers: &[],
            expect: [200, 403, 403],
        },
        Case {
            method: Method::DELETE,
            path: "/tenants/db-a",
            body: None,
            headers: &[("if-match", "\"stale\"")],
            expect: [412, 403, 412],
        },
        Case {
            method: Method::DELETE,
            path: "/tenants/db-b",
            body: None,
            headers: &[("if-match", "\"stale\"")],
            expect: [412, 403, 403],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-a/effective",
            body: None,
            headers: &[],
            expect: [200, 200, 200],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-b/effective",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-a/history",
            body: None,
            headers: &[],
            expect: [200, 200, 200],
        },
        Case {
            method: Method::GET,
            path: "/tenants/db-b/history",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::GET,
            path: "/platform",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::PUT,
            path: "/platform",
            body: Some(("application/yaml", DEFAULTS)),
            headers: &[("if-match", "\"stale\"")],
            expect: [412, 403, 403],
        },
        Case {
            method: Method::GET,
            path: "/platform/history",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::GET,
            path: "/platform/history?file=_defaults.yaml&limit=5",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
        // The role is checked before the file name.
        Case {
            method: Method::GET,
            path: "/platform/history?file=defaults.yaml",
            body: None,
            headers: &[],
            expect: [400, 400, 403],
        },
        Case {
            method: Method::POST,
            path: "/simulate",
            body: Some((
                "application/json",
                "{\"tenant\": \"db-a\", \"document\": {}}",
            )),
            headers: &[],
            expect: [200, 200, 200],
        },
        Case {
            method: Method::POST,
            path: "/simulate",
            body: Some((
                "application/json",
                "{\"tenant\": \"db-b\", \"document\": {}}",
            )),
            headers: &[],
            expect: [200, 200, 403],
        },
        Case {
            method: Method::GET,
            path: "/config",
            body: None,
            headers: &[],
            expect: [200, 200, 403],
        },
    ];
    let mut failures = Vec::new();
    let mut table = BTreeMap::new();
    for case in &cases {
        for (i, (role, token)) in roles.iter().enumerate() {
            let want = if i < 2 { 401 } else { case.expect[i - 2] };
            let body = case.body.map(|(t, b)| (t, b.to_string()));
            let got = s
                .call(case.method.clone(), case.path, *token, case.headers, body)
                .await;
            table.insert(
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
    // The tenant token's list shows only its tenant.
    let own = s
        .call(Method::GET, "/tenants", Some(TENANT_A), &[], None)
        .await;
    let names: Vec<&str> = own.json["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db-a"]);
    // The write it made is attributed to it.
    let history = s.get("/tenants/db-a/history").await;
    let actors: Vec<&str> = history.json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(
        actors,
        ["ops"],
        "unchanged PATCHes are not audited: {table:?}"
    );
    // A viewer reads the platform history: here the import that seeded the store, as the
    // whole document it wrote (the refused PUT above left nothing).
    let platform = s
        .call(Method::GET, "/platform/history", Some(VIEWER), &[], None)
        .await;
    let entries = platform.json["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{}", platform.text);
    assert_eq!(entries[0]["actor"], "import");
    assert_eq!(entries[0]["object"], "document:_defaults.yaml");
    assert_eq!(entries[0]["before"], Value::Null);
    assert_eq!(entries[0]["after"]["defaults"]["mysql_connections"], 80);
    // The openapi document is public.
    assert_eq!(
        s.call(Method::GET, "/openapi.json", None, &[], None)
            .await
            .status,
        200
    );
}
