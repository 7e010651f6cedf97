//! `openapi.json` held against the implementation: the served document is OpenAPI 3.1 and
//! every reference in it resolves; it documents exactly the paths the router serves, each
//! with exactly the methods the router answers; and every response of a realistic session
//! (an admin's writes and reads, a viewer, a tenant token, no token, every refusal) has a
//! documented status, media type and headers, and a body that validates against the
//! documented schema (JSON Schema 2020-12, formats checked).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use dynalert_server::{ROUTE_PATHS, ServeError, ServeOptions, hash_token, serve_on};
use dynalert_store::StoreSpec;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const ADMIN: &str = "openapi-admin-token";
const VIEWER: &str = "openapi-viewer-token";
const TENANT_A: &str = "openapi-db-a-token";

/// The methods every documented path is tried with.
const METHODS: [&str; 5] = ["get", "put", "patch", "post", "delete"];

/// The routes outside `/api/v1` (the router in `http.rs`).
const SERVING_PATHS: [&str; 3] = ["/metrics", "/health", "/ready"];

const API: &str = "/api/v1";
const TENANTS: &str = "/api/v1/tenants";
const TENANT: &str = "/api/v1/tenants/{tenant}";
const EFFECTIVE: &str = "/api/v1/tenants/{tenant}/effective";
const HISTORY: &str = "/api/v1/tenants/{tenant}/history";
const PLATFORM: &str = "/api/v1/platform";
const PLATFORM_HISTORY: &str = "/api/v1/platform/history";
const SIMULATE: &str = "/api/v1/simulate";
const CONFIG: &str = "/api/v1/config";
const OPENAPI: &str = "/api/v1/openapi.json";

/// The largest body the API reads (`api::MAX_BODY`).
const MAX_BODY: usize = 1 << 20;

const DEFAULTS: &str = "\
defaults:
  mysql_connections: 80
  mysql_connections_critical: 95
  redis_memory_usage: 85
  redis_queue_length: 500
optional: [mysql_replication_lag, mysql_threads_running]
state_filters:
  maintenance: {severity: info, default_state: disable}
profiles:
  high-traffic: {mysql_connections: 300}
";

/// Two tenants in one file: the API refuses to rewrite either (`409`).
const SHARED: &str = "tenants:\n  db-x: {}\n  db-y:\n    mysql_connections: 60\n";

/// Tenant `db-a` as a person writes it: every kind of value the effective view shows.
const DB_A: &str = "\
# team A's database
mysql_connections: 70
redis_memory_usage: disable
\"redis_queue_length{queue='email'}\": 1000
mysql_replication_lag: {value: 600, expires: \"2099-12-01T00:00:00Z\", reason: \"migration INC-42\"}
mysql_threads_running:
  default: 40
  timezone: Europe/Berlin
  overrides:
    - {window: \"01:00-05:00\", value: 200}
_state_maintenance: enable
_silent_mode: warning
_metadata: {owner: team-a, runbook_url: \"https://runbooks.example/db-a\", backup: nightly}
";

// ---------------------------------------------------------------------------------------
// A server in this process.

struct Server {
    base: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ServeError>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Serves an SQLite store seeded with `_defaults.yaml` and `shared.yaml`, with the rule
    /// packs' keys known (as `dynalert serve` does), and tokens for an admin, a viewer and
    /// tenant `db-a` when `with_auth`. Returns once `/ready` is 200.
    async fn start(with_auth: bool) -> Server {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("dynalert_server=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let seed = dir.path().join("seed");
        std::fs::create_dir(&seed).unwrap();
        std::fs::write(seed.join("_defaults.yaml"), DEFAULTS).unwrap();
        std::fs::write(seed.join("shared.yaml"), SHARED).unwrap();
        let mut opts = ServeOptions::with_store(StoreSpec::Sqlite(dir.path().join("test.db")));
        opts.known_keys = dynalert_rules::declared_keys();
        opts.import = Some(seed);
        if with_auth {
            opts.auth_file = Some(auth_file(dir.path()));
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_on(listener, opts, async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_gzip()
            .no_proxy()
            .build()
            .unwrap();
        let server = Server {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ready = server.send("get", "/ready", &Call::anonymous()).await;
            if ready.status == 200 {
                return server;
            }
            assert!(Instant::now() < deadline, "server not ready after 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn send(&self, method: &str, path: &str, call: &Call) -> Reply {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}{}", self.base, call.query));
        if let Some(token) = call.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let result = tokio::time::timeout(Duration::from_secs(5), self.task.take().unwrap())
            .await
            .expect("server did not shut down within 5 s");
        result.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

fn auth_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("auth.yaml");
    let text = format!(
        "tokens:\n  - {{name: ops, sha256: {}, role: admin}}\n  - {{name: auditor, sha256: {}, role: viewer}}\n  - {{name: team-a, sha256: {}, role: 'tenant:db-a'}}\n",
        hash_token(ADMIN),
        hash_token(VIEWER),
        hash_token(TENANT_A)
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// One request: who sends it, to which tenant, with what.
#[derive(Clone, Default)]
struct Call {
    tenant: String,
    query: String,
    token: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Option<String>,
}

impl Call {
    fn anonymous() -> Call {
        Call::default()
    }

    fn by(token: &'static str) -> Call {
        Call {
            token: Some(token),
            ..Call::default()
        }
    }

    fn tenant(mut self, tenant: &str) -> Call {
        self.tenant = tenant.to_string();
        self
    }

    fn query(mut self, query: &str) -> Call {
        self.query = query.to_string();
        self
    }

    fn header(mut self, name: &'static str, value: &str) -> Call {
        self.headers.push((name, value.to_string()));
        self
    }

    fn if_match(self, tag: &str) -> Call {
        self.header("if-match", tag)
    }

    fn body(mut self, content_type: &str, body: impl Into<String>) -> Call {
        self.body = Some(body.into());
        self.header("content-type", content_type)
    }

    fn json(self, value: Value) -> Call {
        self.body("application/json", value.to_string())
    }

    fn merge_patch(self, value: Value) -> Call {
        self.body("application/merge-patch+json", value.to_string())
    }

    fn yaml(self, text: &str) -> Call {
        self.body("application/yaml", text)
    }

    fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(name, _)| *name == "content-type")
            .map(|(_, value)| value.as_str())
    }
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn etag(&self) -> String {
        self.header("etag")
            .unwrap_or_else(|| panic!("no ETag: {}", self.body))
            .to_string()
    }

    /// The media type without parameters, lowercase; empty without `Content-Type`.
    fn media_type(&self) -> String {
        media_type(self.header("content-type").unwrap_or(""))
    }
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

// ---------------------------------------------------------------------------------------
// The document, and checking replies against it.

/// The OpenAPI document, and what a session has seen of it.
struct Spec {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
    /// (path, method, status) of every checked reply.
    seen: BTreeSet<(String, String, u16)>,
}

impl Spec {
    fn new(doc: Value) -> Spec {
        Spec {
            doc,
            validators: HashMap::new(),
            seen: BTreeSet::new(),
        }
    }

    /// The value at a local `$ref` (`#/components/...`), following chains of them.
    fn resolve<'a>(&'a self, mut value: &'a Value) -> &'a Value {
        while let Some(target) = value.get("$ref").and_then(Value::as_str) {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{target}: not a local reference"));
            value = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{target} does not resolve"));
        }
        value
    }

    fn operation(&self, path: &str, method: &str) -> &Value {
        self.doc["paths"]
            .get(path)
            .and_then(|item| item.get(method))
            .unwrap_or_else(|| panic!("{method} {path} is not documented"))
    }

    /// Validates `instance` against `schema`, a schema of the document (its `$ref`s resolved
    /// against the document's `components`).
    fn validate(&mut self, schema: &Value, instance: &Value) -> Result<(), String> {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            let validator = compile(&self.doc, schema).unwrap_or_else(|e| panic!("{e}"));
            self.validators.insert(key.clone(), validator);
        }
        let errors: Vec<String> = self.validators[&key]
            .iter_errors(instance)
            .map(|e| format!("{} (at {:?})", e, e.instance_path().as_str()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Checks one reply to `method path` against the operation's documented responses: its
    /// status is documented, its media type is one the response lists (or it has no body
    /// when none is listed), its body validates against that media type's schema, documented
    /// required headers are present and valid, and the ETag and WWW-Authenticate it carries
    /// are documented. A problem document's `status` is the HTTP status.
    fn check_reply(&mut self, path: &str, method: &str, reply: &Reply) {
        let what = format!("{} {path} -> {}", method.to_uppercase(), reply.status);
        let operation = self.operation(path, method);
        let response = operation["responses"]
            .get(reply.status.to_string())
            .map(|r| self.resolve(r).clone())
            .unwrap_or_else(|| panic!("{what}: status not documented; body: {}", reply.body));
        match response.get("content").and_then(Value::as_object) {
            None => assert!(
                reply.body.is_empty(),
                "{what}: documented without a body, got {:?}",
                reply.body
            ),
            Some(content) => {
                let media = reply.media_type();
                let entry = content.get(&media).unwrap_or_else(|| {
                    panic!(
                        "{what}: media type {media:?} not documented (documented: {:?}); body: {}",
                        content.keys().collect::<Vec<_>>(),
                        reply.body
                    )
                });
                if let Some(schema) = entry.get("schema") {
                    let instance = if media.ends_with("json") {
                        reply.json()
                    } else {
                        Value::String(reply.body.clone())
                    };
                    if let Err(e) = self.validate(schema, &instance) {
                        panic!(
                            "{what}: body does not match the documented schema:\n{e}\nbody: {instance:#}"
                        );
                    }
                    if media == "application/problem+json" {
                        assert_eq!(instance["status"], json!(reply.status), "{what}");
                    }
                }
            }
        }
        let documented: BTreeMap<String, Value> = response
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(name, header)| (name.to_ascii_lowercase(), self.resolve(header).clone()))
                    .collect()
            })
            .unwrap_or_default();
        for (name, header) in &documented {
            match reply.header(name) {
                Some(value) => {
                    if let Some(schema) = header.get("schema") {
                        let value = Value::String(value.to_string());
                        if let Err(e) = self.validate(schema, &value) {
                            panic!("{what}: header {name}: {e}");
                        }
                    }
                }
                None => assert!(
                    header["required"] != json!(true),
                    "{what}: required header {name} missing"
                ),
            }
        }
        for name in ["etag", "www-authenticate"] {
            if reply.header(name).is_some() {
                assert!(
                    documented.contains_key(name),
                    "{what}: sends {name}, which is not documented"
                );
            }
        }
        self.seen
            .insert((path.to_string(), method.to_string(), reply.status));
    }

    /// Checks that a request the server accepted is one the document describes: its media
    /// type is listed in the request body, and its body validates against that schema.
    fn check_request(&mut self, path: &str, method: &str, call: &Call) {
        let Some(body) = &call.body else { return };
        let what = format!("{} {path} request", method.to_uppercase());
        let operation = self.operation(path, method);
        let request = self.resolve(
            operation
                .get("requestBody")
                .unwrap_or_else(|| panic!("{what}: a body was accepted but none is documented")),
        );
        let media = media_type(call.content_type().unwrap_or("application/json"));
        let schema = request["content"]
            .get(&media)
            .unwrap_or_else(|| panic!("{what}: {media} was accepted but is not documented"))
            .get("schema")
            .cloned();
        let Some(schema) = schema else { return };
        let instance: Value = if media.contains("yaml") {
            serde_saphyr::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}"))
        } else if body.trim().is_empty() {
            return;
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}"))
        };
        if let Err(e) = self.validate(&schema, &instance) {
            panic!("{what}: the accepted body does not match the documented schema:\n{e}");
        }
    }

    /// Every `/api/v1` operation was seen answering with success at least once; the
    /// documented statuses no reply showed are printed.
    fn assert_every_operation_succeeded(&self) {
        let mut unseen = Vec::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let statuses: Vec<u16> = self
                    .seen
                    .iter()
                    .filter(|(p, m, _)| p == path && m == method)
                    .map(|(_, _, s)| *s)
                    .collect();
                if path.starts_with(API) {
                    assert!(
                        statuses.iter().any(|s| (200..300).contains(s)),
                        "{method} {path} never succeeded in this session (saw {statuses:?})"
                    );
                }
                for status in operation["responses"].as_object().unwrap().keys() {
                    if !statuses.iter().any(|s| s.to_string() == *status) {
                        unseen.push(format!("{} {path} {status}", method.to_uppercase()));
                    }
                }
            }
        }
        eprintln!(
            "documented responses not produced by this session ({}):\n  {}",
            unseen.len(),
            unseen.join("\n  ")
        );
    }
}

/// A validator for `schema`, one of the document's schemas: compiled as a 2020-12 schema
/// that carries the document's `components`, so `#/components/...` references resolve.
fn compile(doc: &Value, schema: &Value) -> Result<jsonschema::Validator, String> {
    let mut root = match schema {
        Value::Object(map) => map.clone(),
        Value::Bool(true) => serde_json::Map::new(),
        other => return Err(format!("not a schema object: {other}")),
    };
    root.insert("components".into(), doc["components"].clone());
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&Value::Object(root))
        .map_err(|e| format!("invalid schema {schema}: {e}"))
}

/// A server and the document it serves, checking every reply.
struct Session {
    server: Server,
    spec: Spec,
}

impl Session {
    async fn start(with_auth: bool) -> Session {
        let server = Server::start(with_auth).await;
        let reply = server.send("get", OPENAPI, &Call::anonymous()).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let spec = Spec::new(reply.json());
        let mut session = Session { server, spec };
        session.spec.check_reply(OPENAPI, "get", &reply);
        session
    }

    /// Sends `call` to `method path` (`{tenant}` filled from the call), checks the reply
    /// against the document, and asserts its status.
    async fn expect(&mut self, status: u16, method: &str, path: &str, call: Call) -> Reply {
        let reply = self.send(method, path, &call).await;
        assert_eq!(
            reply.status,
            status,
            "{} {path}{} (tenant {:?}): {}",
            method.to_uppercase(),
            call.query,
            call.tenant,
            reply.body
        );
        reply
    }

    async fn send(&mut self, method: &str, path: &str, call: &Call) -> Reply {
        let concrete = path.replace("{tenant}", &call.tenant);
        let reply = self.server.send(method, &concrete, call).await;
        self.spec.check_reply(path, method, &reply);
        if (200..300).contains(&reply.status) {
            self.spec.check_request(path, method, call);
        }
        reply
    }

    /// Repeats `call` (checking each reply) until `done` holds: writes reach the served
    /// model (list, effective view) a moment after the store.
    async fn wait_for(
        &mut self,
        method: &str,
        path: &str,
        call: Call,
        done: impl Fn(&Reply) -> bool,
    ) -> Reply {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let reply = self.send(method, path, &call).await;
            if done(&reply) {
                return reply;
            }
            assert!(
                Instant::now() < deadline,
                "{method} {path}: not as expected after 5 s: {} {}",
                reply.status,
                reply.body
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn key<'a>(view: &'a Value, name: &str) -> &'a Value {
    view["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == name)
        .unwrap_or_else(|| panic!("no key {name} in {view:#}"))
}

fn tenant_names(list: &Value) -> Vec<&str> {
    list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tenant"].as_str().unwrap())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let server = Server::start(true).await;
    // Served without a token although an auth file is in force.
    let reply = server.send("get", OPENAPI, &Call::anonymous()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.media_type(), "application/json");
    let doc: Value = serde_json::from_str(&reply.body).expect("openapi.json is not JSON");
    let version = doc["openapi"].as_str().expect("no `openapi` version");
    assert!(version.starts_with("3.1"), "openapi {version}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    // Every $ref is local and resolves.
    let mut refs = Vec::new();
    collect_refs(&doc, String::new(), &mut refs);
    assert!(refs.len() > 50, "only {} references", refs.len());
    for (at, target) in &refs {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: {target} is not a reference into the document"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: {target} does not resolve"
        );
    }

    // Every schema is a valid JSON Schema 2020-12 schema (checked against the meta-schema).
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
        compile(&doc, &schema).unwrap();
    }
    let spec = Spec::new(doc.clone());

    // Operations: unique ids, documented statuses, every path template's parameter declared.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let declared = |op: &Value| -> BTreeSet<String> {
            item.get("parameters")
                .into_iter()
                .chain(op.get("parameters"))
                .flat_map(|p| p.as_array().unwrap())
                .map(|p| spec.resolve(p))
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        };
        let in_template: BTreeSet<String> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_string)
            .collect();
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
            let id = op["operationId"].as_str().unwrap().to_string();
            assert!(ids.insert(id.clone()), "operationId {id} twice");
            assert_eq!(
                declared(op),
                in_template,
                "{method} {path}: path parameters"
            );
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(
                    status.len() == 3 && status.parse::<u16>().is_ok(),
                    "{method} {path}: status {status}"
                );
                assert!(spec.resolve(response)["description"].is_string());
            }
        }
    }
    assert!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
            && doc["security"] == json!([{ "bearer": [] }]),
        "bearer security"
    );
    server.stop().await;
}

fn collect_refs(value: &Value, at: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push((at.clone(), v.as_str().unwrap().to_string()));
                } else {
                    collect_refs(v, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                collect_refs(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_paths_are_the_routed_paths() {
    let server = Server::start(true).await;
    let doc = server.send("get", OPENAPI, &Call::anonymous()).await.json();
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let api: BTreeSet<String> = documented
        .iter()
        .filter_map(|p| p.strip_prefix(API))
        .map(str::to_string)
        .collect();
    let routed: BTreeSet<String> = ROUTE_PATHS.iter().map(|p| p.to_string()).collect();
    assert_eq!(api, routed, "documented /api/v1 paths vs api::ROUTE_PATHS");
    let others: BTreeSet<&str> = documented
        .iter()
        .copied()
        .filter(|p| !p.starts_with(API))
        .collect();
    assert_eq!(
        others,
        SERVING_PATHS.into_iter().collect::<BTreeSet<&str>>()
    );
    server.stop().await;
}

/// For every documented path and each method: the server answers `405` exactly when the
/// method is not documented for it (and its `Allow` lists the documented ones); a
/// documented method answers without a token exactly when the operation needs none. Sent
/// without a token, no request changes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_method_is_routed_and_no_other() {
    let server = Server::start(true).await;
    let doc = server.send("get", OPENAPI, &Call::anonymous()).await.json();
    let global_security = doc["security"].clone();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{tenant}", "db-x");
        let documented: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .filter(|m| METHODS.contains(m))
            .collect();
        for method in METHODS {
            let reply = server.send(method, &concrete, &Call::anonymous()).await;
            let what = format!("{} {concrete}", method.to_uppercase());
            if documented.contains(method) {
                assert!(
                    reply.status != 405 && reply.status != 404,
                    "{what}: documented, answered {}",
                    reply.status
                );
                let security = item[method].get("security").unwrap_or(&global_security);
                let open = security == &json!([]);
                assert_eq!(
                    reply.status == 401,
                    !open,
                    "{what}: documented security {security}, answered {} without a token",
                    reply.status
                );
            } else {
                assert_eq!(reply.status, 405, "{what}: not documented: {}", reply.body);
                let allowed: BTreeSet<String> = reply
                    .header("allow")
                    .unwrap_or_else(|| panic!("{what}: 405 without Allow"))
                    .split(',')
                    .map(|m| m.trim().to_ascii_lowercase())
                    .filter(|m| m != "head")
                    .collect();
                let documented: BTreeSet<String> =
                    documented.iter().map(|m| m.to_string()).collect();
                assert_eq!(allowed, documented, "{what}: Allow");
            }
        }
    }
    for path in ["/api/v1/nope", "/api/v1/tenants/db-x/nope", "/nope"] {
        for method in METHODS {
            let reply = server.send(method, path, &Call::anonymous()).await;
            assert_eq!(reply.status, 404, "{} {path}", method.to_uppercase());
        }
    }
    server.stop().await;
}

/// A realistic session with every role and every refusal; every reply is checked against
/// the document (status, media type, headers, schema), and every accepted request body
/// against the documented request body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reply_of_a_session_matches_the_document() {
    let mut s = Session::start(true).await;
    let admin = || Call::by(ADMIN);
    let viewer = || Call::by(VIEWER);
    let team_a = || Call::by(TENANT_A);

    // Unauthenticated endpoints.
    s.expect(200, "get", "/health", Call::anonymous()).await;
    s.expect(200, "get", "/ready", Call::anonymous()).await;
    s.expect(200, "get", "/metrics", Call::anonymous()).await;

    // No token, a wrong one, a malformed one.
    let denied = s.expect(401, "get", TENANTS, Call::anonymous()).await;
    assert_eq!(
        denied.header("www-authenticate"),
        Some("Bearer realm=\"dynalert\"")
    );
    s.expect(401, "get", TENANTS, Call::by("wrong")).await;
    s.expect(
        401,
        "get",
        CONFIG,
        Call::anonymous().header("authorization", "Basic b3BzOnMzY3JldA=="),
    )
    .await;
    for (method, path) in [
        ("get", TENANT),
        ("put", TENANT),
        ("patch", TENANT),
        ("delete", TENANT),
        ("get", EFFECTIVE),
        ("get", HISTORY),
        ("get", PLATFORM),
        ("put", PLATFORM),
        ("get", PLATFORM_HISTORY),
    ] {
        s.expect(401, method, path, Call::by("wrong").tenant("db-a"))
            .await;
    }

    // The status and the platform as imported.
    let config = s.expect(200, "get", CONFIG, admin()).await.json();
    assert_eq!(config["status"], "ok", "{config:#}");
    assert!(config["tenants"]["db-y"].is_object(), "{config:#}");
    s.expect(
        200,
        "get",
        CONFIG,
        viewer().query("?at=2026-01-31T09:30:00Z"),
    )
    .await;
    s.expect(400, "get", CONFIG, admin().query("?at=yesterday"))
        .await;
    s.expect(403, "get", CONFIG, team_a()).await;
    let platform = s.expect(200, "get", PLATFORM, viewer()).await.json();
    assert_eq!(platform["files"][0]["file"], "_defaults.yaml");
    s.expect(403, "get", PLATFORM, team_a()).await;

    // A platform file created from YAML, replaced from JSON with its ETag.
    let profiles = || admin().query("?file=_profiles.yaml");
    let created = s
        .expect(
            201,
            "put",
            PLATFORM,
            profiles().yaml("profiles:\n  big: {mysql_connections: 300}\n"),
        )
        .await;
    let tag = created.etag();
    assert_eq!(
        tag,
        format!("\"{}\"", created.json()["revision"].as_str().unwrap())
    );
    let replacement = json!({"profiles": {"big": {"mysql_connections": 310}}});
    s.expect(428, "put", PLATFORM, profiles().json(replacement.clone()))
        .await;
    s.expect(
        412,
        "put",
        PLATFORM,
        profiles().if_match("\"0\"").json(replacement.clone()),
    )
    .await;
    let replaced = s
        .expect(
            200,
            "put",
            PLATFORM,
            profiles().if_match(&tag).json(replacement.clone()),
        )
        .await;
    assert_eq!(replaced.json()["document"], replacement);
    s.expect(
        400,
        "put",
        PLATFORM,
        admin().query("?file=profiles.yaml").yaml("defaults: {}\n"),
    )
    .await;
    s.expect(
        400,
        "put",
        PLATFORM,
        admin().query("?file=../_x.yaml").yaml("defaults: {}\n"),
    )
    .await;
    let invalid = s
        .expect(
            422,
            "put",
            PLATFORM,
            admin()
                .query("?file=_broken.yaml")
                .yaml("defaults:\n  mysql_connections: lots\n"),
        )
        .await;
    assert!(!invalid.json()["errors"].as_array().unwrap().is_empty());
    // A file of comments only reads as an empty document, like an empty one.
    let empty = s
        .expect(
            201,
            "put",
            PLATFORM,
            admin()
                .query("?file=_later.yaml")
                .yaml("# profiles go here\n"),
        )
        .await;
    assert_eq!(empty.json()["document"], json!({}));
    s.expect(
        422,
        "put",
        PLATFORM,
        admin().query("?file=_list.yaml").yaml("- defaults\n"),
    )
    .await;
    s.expect(
        415,
        "put",
        PLATFORM,
        admin().body("text/plain", "defaults: {}\n"),
    )
    .await;
    s.expect(403, "put", PLATFORM, viewer().yaml("defaults: {}\n"))
        .await;
    s.expect(403, "put", PLATFORM, team_a().yaml("defaults: {}\n"))
        .await;

    // The platform history: a file's writes, oldest first, with the blocks that changed; a
    // refused write left none.
    let history = s
        .expect(
            200,
            "get",
            PLATFORM_HISTORY,
            viewer().query("?file=_profiles.yaml"),
        )
        .await
        .json();
    assert_eq!(history["file"], "_profiles.yaml");
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{history:#}");
    assert!(entries[0]["before"].is_null(), "{history:#}");
    assert_eq!(entries[1]["object"], "platform:_profiles.yaml");
    assert_eq!(entries[1]["actor"], "ops");
    assert_eq!(entries[1]["after"], replacement);
    assert_eq!(
        entries[1]["changes"],
        json!([{
            "field": "profiles",
            "before": {"big": {"mysql_connections": 300}},
            "after": {"big": {"mysql_connections": 310}}
        }])
    );
    let seeded = s.expect(200, "get", PLATFORM_HISTORY, admin()).await.json();
    assert_eq!(seeded["file"], "_defaults.yaml");
    assert_eq!(seeded["entries"][0]["object"], "document:_defaults.yaml");
    let refused = s
        .expect(
            200,
            "get",
            PLATFORM_HISTORY,
            admin().query("?file=_broken.yaml&limit=5"),
        )
        .await
        .json();
    assert_eq!(refused["entries"], json!([]));
    s.expect(
        400,
        "get",
        PLATFORM_HISTORY,
        admin().query("?file=profiles.yaml"),
    )
    .await;
    s.expect(400, "get", PLATFORM_HISTORY, admin().query("?limit=many"))
        .await;
    s.expect(403, "get", PLATFORM_HISTORY, team_a()).await;

    // Tenants: db-a from YAML, db-b from JSON.
    let created = s
        .expect(201, "put", TENANT, admin().tenant("db-a").yaml(DB_A))
        .await;
    let a = created.json();
    assert_eq!(
        created.etag(),
        format!("\"{}\"", a["revision"].as_str().unwrap())
    );
    assert_eq!(a["file"], "db-a.yaml");
    assert_eq!(a["document"]["mysql_connections"], 70);
    let created_b = s
        .expect(
            201,
            "put",
            TENANT,
            admin().tenant("db-b").json(json!({
                "mysql_connections": 50,
                "_metadata": {"owner": "team-b"}
            })),
        )
        .await;
    let tag_b = created_b.etag();

    // Replacing needs the current ETag; If-Match on a tenant that does not exist fails.
    let mut a_doc = a["document"].clone();
    a_doc["mysql_connections"] = json!(72);
    let put_a = || admin().tenant("db-a").json(a_doc.clone());
    s.expect(428, "put", TENANT, put_a()).await;
    s.expect(412, "put", TENANT, put_a().if_match("\"0\""))
        .await;
    s.expect(400, "put", TENANT, put_a().if_match("0")).await;
    s.expect(
        412,
        "put",
        TENANT,
        admin()
            .tenant("db-new")
            .if_match("*")
            .yaml("mysql_connections: 1\n"),
    )
    .await;
    let replaced = s
        .expect(200, "put", TENANT, put_a().if_match(&created.etag()))
        .await;
    let tag_a = replaced.etag();
    let read = s.expect(200, "get", TENANT, team_a().tenant("db-a")).await;
    assert_eq!(read.etag(), tag_a);
    assert_eq!(read.json()["document"]["mysql_connections"], 72);
    s.expect(200, "get", TENANT, viewer().tenant("db-b")).await;
    s.expect(403, "get", TENANT, team_a().tenant("db-b")).await;
    s.expect(404, "get", TENANT, admin().tenant("no-such-tenant"))
        .await;
    s.expect(400, "get", TENANT, admin().tenant("Not-A-Name"))
        .await;

    // Refused writes.
    let invalid = s
        .expect(
            422,
            "put",
            TENANT,
            admin()
                .tenant("db-c")
                .yaml("# typo below\nmysql_connectons: 90\n"),
        )
        .await
        .json();
    let finding = &invalid["errors"][0];
    assert_eq!(finding["file"], "(request body)", "{invalid:#}");
    assert_eq!(finding["line"], 2, "{invalid:#}");
    let huge = format!("mysql_connections: 1\n#{}\n", "x".repeat(MAX_BODY));
    s.expect(413, "put", TENANT, admin().tenant("db-c").yaml(&huge))
        .await;
    s.expect(413, "put", PLATFORM, admin().yaml(&huge)).await;
    let huge_patch = json!({ "_metadata": {"note": "x".repeat(MAX_BODY)} });
    s.expect(
        413,
        "patch",
        TENANT,
        admin().tenant("db-a").merge_patch(huge_patch),
    )
    .await;
    s.expect(
        415,
        "put",
        TENANT,
        admin()
            .tenant("db-c")
            .body("text/plain", "mysql_connections: 1\n"),
    )
    .await;
    s.expect(
        400,
        "put",
        TENANT,
        admin()
            .tenant("db-c")
            .body("application/json", "mysql_connections: 1"),
    )
    .await;
    s.expect(
        409,
        "put",
        TENANT,
        admin().tenant("db-x").yaml("mysql_connections: 1\n"),
    )
    .await;
    s.expect(
        403,
        "put",
        TENANT,
        viewer().tenant("db-c").yaml("mysql_connections: 1\n"),
    )
    .await;
    s.expect(
        403,
        "put",
        TENANT,
        team_a().tenant("db-c").yaml("mysql_connections: 1\n"),
    )
    .await;

    // PATCH: a JSON merge patch, If-Match optional.
    let patched = s
        .expect(
            200,
            "patch",
            TENANT,
            admin()
                .tenant("db-a")
                .merge_patch(json!({"redis_memory_usage": null, "mysql_connections": 75})),
        )
        .await;
    let doc = patched.json()["document"].clone();
    assert!(doc.get("redis_memory_usage").is_none() && doc["mysql_connections"] == 75);
    assert_ne!(patched.etag(), tag_a);
    s.expect(
        412,
        "patch",
        TENANT,
        admin()
            .tenant("db-a")
            .if_match(&tag_a)
            .merge_patch(json!({"mysql_connections": 1})),
    )
    .await;
    s.expect(
        200,
        "patch",
        TENANT,
        team_a()
            .tenant("db-a")
            .if_match(&patched.etag())
            .json(json!({"mysql_connections": 76})),
    )
    .await;
    s.expect(
        404,
        "patch",
        TENANT,
        admin()
            .tenant("no-such-tenant")
            .merge_patch(json!({"mysql_connections": 1})),
    )
    .await;
    s.expect(
        415,
        "patch",
        TENANT,
        admin().tenant("db-a").yaml("mysql_connections: 1\n"),
    )
    .await;
    s.expect(
        415,
        "patch",
        TENANT,
        admin().tenant("db-a").body("text/plain", "{}"),
    )
    .await;
    s.expect(
        400,
        "patch",
        TENANT,
        admin().tenant("db-a").merge_patch(json!([1])),
    )
    .await;
    s.expect(
        422,
        "patch",
        TENANT,
        admin()
            .tenant("db-a")
            .merge_patch(json!({"mysql_connections": "lots"})),
    )
    .await;
    s.expect(
        409,
        "patch",
        TENANT,
        admin()
            .tenant("db-y")
            .merge_patch(json!({"mysql_connections": 1})),
    )
    .await;
    s.expect(
        403,
        "patch",
        TENANT,
        viewer().tenant("db-a").merge_patch(json!({})),
    )
    .await;
    s.expect(
        403,
        "patch",
        TENANT,
        team_a().tenant("db-b").merge_patch(json!({})),
    )
    .await;

    // The effective view, once the writes are served.
    let effective = s
        .wait_for("get", EFFECTIVE, team_a().tenant("db-a"), |r| {
            r.status == 200 && r.body.contains("\"value\":76.0")
        })
        .await
        .json();
    assert!(
        !key(&effective, "mysql_connections")["used_by"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        key(&effective, "mysql_replication_lag")["reason"],
        "migration INC-42"
    );
    assert_eq!(
        key(&effective, "mysql_threads_running")["state"],
        "scheduled"
    );
    assert_eq!(effective["state_filters"]["maintenance"], "info");
    assert_eq!(effective["metadata"]["backup"], "nightly");
    s.expect(
        200,
        "get",
        EFFECTIVE,
        viewer()
            .tenant("db-a")
            .query("?at=2026-01-31T02:30:00%2B01:00"),
    )
    .await;
    s.expect(
        400,
        "get",
        EFFECTIVE,
        admin().tenant("db-a").query("?at=yesterday"),
    )
    .await;
    s.expect(404, "get", EFFECTIVE, admin().tenant("no-such-tenant"))
        .await;
    s.expect(403, "get", EFFECTIVE, team_a().tenant("db-b"))
        .await;
    s.expect(400, "get", EFFECTIVE, admin().tenant("-bad"))
        .await;

    // History: oldest first, with the changed keys.
    let history = s
        .expect(200, "get", HISTORY, team_a().tenant("db-a"))
        .await
        .json();
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4, "{history:#}");
    assert!(entries[0]["before"].is_null() && entries[0]["actor"] == "ops");
    assert_eq!(entries[0]["object"], "tenant:db-a");
    assert_eq!(entries[3]["actor"], "team-a");
    assert_eq!(
        entries[3]["changes"],
        json!([{"field": "mysql_connections", "before": 75, "after": 76}])
    );
    let newest = s
        .expect(
            200,
            "get",
            HISTORY,
            admin().tenant("db-a").query("?limit=1"),
        )
        .await
        .json();
    assert_eq!(newest["entries"].as_array().unwrap().len(), 1);
    s.expect(
        400,
        "get",
        HISTORY,
        admin().tenant("db-a").query("?limit=many"),
    )
    .await;
    let none = s
        .expect(200, "get", HISTORY, viewer().tenant("never-existed"))
        .await
        .json();
    assert_eq!(none["entries"], json!([]));
    s.expect(403, "get", HISTORY, team_a().tenant("db-b")).await;

    // Simulation: JSON and YAML, nothing saved.
    let simulated = s
        .expect(
            200,
            "post",
            SIMULATE,
            viewer().json(json!({
                "tenant": "db-new",
                "document": {
                    "mysql_connections": 90,
                    "_profile": "high-traffic",
                    "mysql_threads_running": {"value": 10, "expires": "2026-01-01T00:00:00Z"}
                },
                "at": "2026-01-31T09:30:00Z"
            })),
        )
        .await
        .json();
    assert_eq!(
        simulated["events"],
        json!([{"key": "mysql_threads_running", "event": "threshold_expired"}])
    );
    assert_eq!(key(&simulated, "mysql_threads_running")["state"], "expired");
    assert!(
        simulated["metrics"]
            .as_str()
            .unwrap()
            .contains("tenant=\"db-new\""),
        "{simulated:#}"
    );
    s.expect(
        200,
        "post",
        SIMULATE,
        team_a().yaml("tenant: db-a\ndocument:\n  mysql_connections: 99\n"),
    )
    .await;
    s.expect(
        403,
        "post",
        SIMULATE,
        team_a().json(json!({"tenant": "db-b"})),
    )
    .await;
    s.expect(
        400,
        "post",
        SIMULATE,
        admin().json(json!({"tenant": "db-a", "extra": 1})),
    )
    .await;
    s.expect(
        400,
        "post",
        SIMULATE,
        admin().json(json!({"tenant": "Not A Name"})),
    )
    .await;
    s.expect(
        422,
        "post",
        SIMULATE,
        admin().json(json!({"tenant": "db-a", "document": {"mysql_connectons": 1}})),
    )
    .await;
    s.expect(
        415,
        "post",
        SIMULATE,
        admin().body("text/plain", "tenant: db-a\n"),
    )
    .await;
    s.expect(413, "post", SIMULATE, admin().yaml(&huge)).await;
    s.expect(
        401,
        "post",
        SIMULATE,
        Call::by("wrong").yaml("tenant: db-a\n"),
    )
    .await;

    // The list, once both tenants are served; a tenant token sees its own only.
    let list = s
        .wait_for("get", TENANTS, viewer(), |r| {
            r.status == 200 && r.body.contains("\"db-b\"")
        })
        .await
        .json();
    let a = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "db-a")
        .unwrap();
    assert_eq!(a["maintenance"], true, "{list:#}");
    assert_eq!(a["silent"], json!(["warning"]), "{list:#}");
    let own = s.expect(200, "get", TENANTS, team_a()).await.json();
    assert_eq!(tenant_names(&own), ["db-a"]);

    // DELETE needs the current ETag.
    let delete_b = || admin().tenant("db-b");
    s.expect(428, "delete", TENANT, delete_b()).await;
    s.expect(412, "delete", TENANT, delete_b().if_match("\"0\""))
        .await;
    s.expect(
        403,
        "delete",
        TENANT,
        viewer().tenant("db-b").if_match(&tag_b),
    )
    .await;
    s.expect(
        403,
        "delete",
        TENANT,
        team_a().tenant("db-b").if_match(&tag_b),
    )
    .await;
    s.expect(409, "delete", TENANT, admin().tenant("db-x").if_match("*"))
        .await;
    s.expect(204, "delete", TENANT, delete_b().if_match(&tag_b))
        .await;
    s.expect(404, "delete", TENANT, delete_b().if_match(&tag_b))
        .await;
    s.expect(400, "delete", TENANT, admin().tenant("db_").if_match("*"))
        .await;
    s.expect(404, "get", TENANT, delete_b()).await;
    let history = s.expect(200, "get", HISTORY, delete_b()).await.json();
    let entries = history["entries"].as_array().unwrap();
    assert!(entries.last().unwrap()["after"].is_null(), "{history:#}");

    // Everything served, as the status sees it.
    let config = s
        .wait_for("get", CONFIG, admin(), |r| {
            r.status == 200 && !r.body.contains("\"db-b\"")
        })
        .await
        .json();
    assert_eq!(config["status"], "ok", "{config:#}");
    assert!(config["tenants"]["db-a"].is_object());
    s.expect(200, "get", "/metrics", Call::anonymous()).await;

    s.spec.assert_every_operation_succeeded();
    s.server.stop().await;
}

/// Without an auth file every read is open (a token sent is ignored) and every write is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_auth_file_reads_are_open_and_writes_forbidden() {
    let mut s = Session::start(false).await;
    let anyone = Call::anonymous;
    let list = s.expect(200, "get", TENANTS, anyone()).await.json();
    assert_eq!(tenant_names(&list), ["db-x", "db-y"]);
    s.expect(200, "get", TENANTS, Call::by("whatever")).await;
    s.expect(200, "get", TENANT, anyone().tenant("db-y")).await;
    s.expect(200, "get", EFFECTIVE, anyone().tenant("db-y"))
        .await;
    s.expect(200, "get", HISTORY, anyone().tenant("db-y")).await;
    s.expect(200, "get", PLATFORM, anyone()).await;
    s.expect(200, "get", PLATFORM_HISTORY, anyone()).await;
    s.expect(200, "get", CONFIG, anyone()).await;
    s.expect(
        200,
        "post",
        SIMULATE,
        anyone().json(json!({"tenant": "db-y", "document": {"mysql_connections": 1}})),
    )
    .await;
    s.expect(
        403,
        "put",
        TENANT,
        anyone().tenant("db-c").yaml("mysql_connections: 1\n"),
    )
    .await;
    s.expect(
        403,
        "patch",
        TENANT,
        anyone()
            .tenant("db-y")
            .merge_patch(json!({"mysql_connections": 2})),
    )
    .await;
    s.expect(403, "delete", TENANT, anyone().tenant("db-y").if_match("*"))
        .await;
    s.expect(403, "put", PLATFORM, Call::by(ADMIN).yaml("defaults: {}\n"))
        .await;
    s.server.stop().await;
}
