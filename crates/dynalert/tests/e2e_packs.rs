//! End to end with every component real, all on 127.0.0.1: MariaDB + mysqld_exporter and
//! Redis + redis_exporter, scraped by a real Prometheus that injects the `tenant` label by
//! relabelling (two tenants reading the same exporters), `dynalert serve` on a conf.d tree,
//! the rendered mariadb and redis packs, and a real Alertmanager notifying a webhook in this
//! process.
//!
//! Real load (idle client connections, a Redis list used as a queue) pushes both tenants'
//! live values above tenant A's thresholds and below tenant B's: A's alerts fire and are
//! notified, B's do not. Then tenant files are edited while everything runs: lowering B's
//! thresholds makes B fire, and maintenance on A resolves A's alerts.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Served;
use dynalert_testkit::{
    Alertmanager, ClientConnections, Http, MariaDb, MysqldExporter, Prometheus, Redis,
    RedisExporter, ScrapeTarget, WebhookReceiver, wait_for_healthy_rules,
};
use serde_json::Value;

const TENANT_A: &str = "tenant-a";
const TENANT_B: &str = "tenant-b";
const CONNECTIONS_ALERT: &str = "MariaDBHighConnections";
const QUEUE_ALERT: &str = "RedisQueueBacklog";
/// The Redis list the exporter checks (`-check-single-keys`), i.e. the `queue` label.
const QUEUE: &str = "jobs";
/// Idle client connections opened on MariaDB: well above tenant A's `mysql_connections`
/// (and B's lowered one), well below B's original one and the critical default (95).
const CLIENT_CONNECTIONS: usize = 25;
/// Items pushed onto the queue: above A's (and B's lowered) threshold, below B's original.
const QUEUE_ITEMS: usize = 1000;
/// Upper bound of every wait; each normally takes a few seconds.
const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(500);
/// The `for:` the test gives every alert instead of the packs' minutes.
const TEST_FOR: &str = "5s";
/// Exporter series the packs read that this setup (one MariaDB primary, one Redis primary)
/// cannot have, and why. Every other series a pack reads must be served by the real exporters.
const NOT_ON_THIS_SETUP: &[(&str, &str)] = &[
    (
        "mysql_info_schema_innodb_metrics_lock_lock_deadlocks_total",
        "MySQL's deadlock counter; MariaDB's is mysql_global_status_innodb_deadlocks",
    ),
    ("mysql_slave_status_seconds_behind_master", "replicas only"),
    ("mysql_slave_status_slave_io_running", "replicas only"),
    ("mysql_slave_status_slave_sql_running", "replicas only"),
    ("redis_master_link_up", "replicas only"),
];

const TENANT_A_FILE: &str = "\
tenants:
  tenant-a:
    mysql_connections: 10
    # A per-queue (dimensional) threshold; tenant B below uses the tenant-wide key.
    \"redis_queue_length{queue='jobs'}\": 100
    _metadata:
      owner: team-a
";

const TENANT_B_FILE: &str = "\
tenants:
  tenant-b:
    mysql_connections: 400
    mysql_connections_critical: 450
    redis_queue_length: 100000
    _metadata:
      owner: team-b
";

const TENANT_B_FILE_LOWERED: &str = "\
tenants:
  tenant-b:
    mysql_connections: 10
    mysql_connections_critical: 450
    redis_queue_length: 100
    _metadata:
      owner: team-b
";

const TENANT_A_FILE_MAINTENANCE: &str = "\
tenants:
  tenant-a:
    mysql_connections: 10
    \"redis_queue_length{queue='jobs'}\": 100
    _state_maintenance: enable
    _metadata:
      owner: team-a
";

/// One run of the whole stack, whose start-up takes most of the time, checked step by step:
/// each step is a function named by what it checks, and the later ones build on the state
/// the earlier ones reached (load applied, files edited).
#[test]
fn pack_alerts_follow_each_tenants_thresholds_end_to_end() {
    // Check every component first, so that a machine missing one skips before anything starts.
    for binary in [
        "mariadbd",
        "mariadb-install-db",
        "mariadb",
        "prometheus-mysqld-exporter",
        "redis-server",
        "redis-cli",
        "prometheus-redis-exporter",
        "prometheus-alertmanager",
        "prometheus",
    ] {
        if dynalert_testkit::require_binary(binary).is_none() {
            return;
        }
    }
    let stack = Stack::start();
    everything_is_wired_and_nothing_fires_before_the_load(&stack);
    let connections = apply_real_load(&stack);
    let alerts = tenant_a_fires_and_tenant_b_does_not(&stack);
    assert_packs_read_what_the_exporters_serve(&stack.prom, &stack.rule_files);
    stack.progress("every exporter series the packs read is served by the real exporters");
    tenant_a_alerts_carry_its_labels_and_the_live_values(&alerts);
    alertmanager_notifies_tenant_a_and_nothing_for_b(&stack);
    lowering_b_thresholds_in_its_file_makes_b_fire(&stack);
    maintenance_on_a_resolves_a_and_b_keeps_firing(&stack);
    drop(connections);
    stack.progress("done");
}

/// Every component of the test, running. Fields drop in order: Prometheus first, the
/// databases last.
struct Stack {
    prom: Prometheus,
    rule_files: Vec<PathBuf>,
    _served: Served,
    conf_d: PathBuf,
    /// Holds conf.d, the rendered rules and dynalert's log.
    _dir: tempfile::TempDir,
    alertmanager: Alertmanager,
    webhook: WebhookReceiver,
    _redis_exporter: RedisExporter,
    redis: Redis,
    _mysqld_exporter: MysqldExporter,
    mariadb: MariaDb,
    started: Instant,
}

impl Stack {
    /// Starts the databases and their exporters, Alertmanager notifying a webhook in this
    /// process, `dynalert serve` on a conf.d of the packs' defaults and one file per tenant,
    /// and Prometheus scraping them all with the rendered packs.
    fn start() -> Stack {
        let started = Instant::now();
        let progress = |message: &str| say(started, message);
        let mariadb = MariaDb::start().unwrap().unwrap();
        progress(&format!("MariaDB up on port {}", mariadb.port()));
        let mysqld_exporter = MysqldExporter::start(&mariadb.exporter_dsn())
            .unwrap()
            .unwrap();
        progress(&format!(
            "mysqld_exporter up on port {} (mysql_up 1)",
            mysqld_exporter.port()
        ));
        let redis = Redis::start().unwrap().unwrap();
        progress(&format!("Redis up on port {}", redis.port()));
        let redis_exporter = RedisExporter::start(&redis.url(), &[&format!("db0={QUEUE}")])
            .unwrap()
            .unwrap();
        progress(&format!(
            "redis_exporter up on port {} (redis_up 1)",
            redis_exporter.port()
        ));

        let webhook = WebhookReceiver::start().unwrap();
        let alertmanager = Alertmanager::start_with_webhook(&webhook.url())
            .unwrap()
            .unwrap();
        progress(&format!("Alertmanager up on port {}", alertmanager.port()));

        // conf.d: the packs' defaults as generated by the CLI, and one file per tenant.
        let dir = tempfile::tempdir().unwrap();
        let conf_d = dir.path().join("conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        let defaults = dynalert(&["rules", "defaults", "--packs", "mariadb,redis"]);
        common::write(&conf_d, "_defaults.yaml", &defaults);
        common::write(&conf_d, "tenant-a.yaml", TENANT_A_FILE);
        common::write(&conf_d, "tenant-b.yaml", TENANT_B_FILE);
        let served = Served::start(&conf_d, dir.path());
        progress(&format!("dynalert serve up on port {}", served.port));

        // The packs, rendered by the CLI.
        let rules_dir = dir.path().join("rules");
        dynalert(&[
            "rules",
            "render",
            "--packs",
            "mariadb,redis",
            "--out",
            rules_dir.to_str().unwrap(),
        ]);
        let rule_files = shorten_for_durations(&rules_dir);

        // Prometheus: the same two exporters scraped once per tenant, the tenant label
        // injected by relabelling as in a real deployment; dynalert serve; the rules;
        // Alertmanager.
        let mut builder = Prometheus::builder().scrape(ScrapeTarget::new("dynalert", served.port));
        for tenant in [TENANT_A, TENANT_B] {
            let job = format!("{tenant}-exporters");
            builder = builder
                .scrape(
                    mysqld_exporter
                        .scrape_target(&job)
                        .with_relabel_label("tenant", tenant),
                )
                .scrape(
                    redis_exporter
                        .scrape_target(&job)
                        .with_relabel_label("tenant", tenant),
                );
        }
        for file in &rule_files {
            builder = builder.rule_file(file);
        }
        let prom = builder
            .extra_config(alertmanager.prometheus_alerting_config())
            .start()
            .unwrap()
            .unwrap();
        progress(&format!("Prometheus up on port {}", prom.port()));
        Stack {
            prom,
            rule_files,
            _served: served,
            conf_d,
            _dir: dir,
            alertmanager,
            webhook,
            _redis_exporter: redis_exporter,
            redis,
            _mysqld_exporter: mysqld_exporter,
            mariadb,
            started,
        }
    }

    fn progress(&self, message: &str) {
        say(self.started, message);
    }
}

fn say(started: Instant, message: &str) {
    eprintln!(
        "[e2e_packs {:>5.1}s] {message}",
        started.elapsed().as_secs_f64()
    );
}

/// Both tenants have a live signal and thresholds in Prometheus; once the rules have been
/// evaluated with them (twice, and without error), no connection alert is pending or firing:
/// idle, MariaDB is below even tenant A's threshold.
fn everything_is_wired_and_nothing_fires_before_the_load(stack: &Stack) {
    let prom = &stack.prom;
    for query in [
        "max by(tenant) (mysql_global_status_threads_connected)",
        "user_threshold{component=\"mysql\", metric=\"connections\", severity=\"warning\"}",
        "tenant_metadata_info",
    ] {
        let samples = prom
            .wait_for(
                query,
                |s| {
                    [TENANT_A, TENANT_B]
                        .iter()
                        .all(|t| s.iter().any(|s| s.label("tenant") == Some(t)))
                },
                WAIT,
            )
            .unwrap();
        stack.progress(&format!("{query}: {:?}", values_by_tenant(&samples)));
    }
    let http = Http::new().unwrap();
    let rules = wait_for_healthy_rules(&http, prom.url(), WAIT).unwrap();
    stack.progress(&format!(
        "{rules} rules evaluated with the thresholds in place"
    ));
    let alerts_in_prometheus = prom.api_get("/api/v1/alerts", &[]).unwrap();
    assert!(
        tenants_with(&alerts_in_prometheus, CONNECTIONS_ALERT, None).is_empty(),
        "no connection alert before the load: {alerts_in_prometheus}"
    );
}

/// Idle client connections on MariaDB and items on the Redis queue, above tenant A's
/// thresholds and below tenant B's. The connections stay open as long as the returned value.
fn apply_real_load(stack: &Stack) -> ClientConnections {
    let connections = stack
        .mariadb
        .open_idle_connections(CLIENT_CONNECTIONS)
        .unwrap();
    stack.progress(&format!(
        "{} idle MariaDB connections open (Threads_connected = {})",
        connections.len(),
        stack.mariadb.global_status("Threads_connected").unwrap()
    ));
    let length = stack.redis.rpush(QUEUE, QUEUE_ITEMS).unwrap();
    stack.progress(&format!("Redis list {QUEUE:?} has {length} items"));
    connections
}

/// Tenant A's alerts fire (its thresholds are below the live values); in the same answer,
/// tenant B's are neither pending nor firing. Returns that answer.
fn tenant_a_fires_and_tenant_b_does_not(stack: &Stack) -> Value {
    let alerts = wait_for_alerts(&stack.prom, "tenant A's alerts firing", |alerts| {
        [CONNECTIONS_ALERT, QUEUE_ALERT]
            .iter()
            .all(|name| tenants_with(alerts, name, Some("firing")).contains(&TENANT_A.to_owned()))
    });
    stack.progress("tenant A's alerts fire in Prometheus");
    for name in [CONNECTIONS_ALERT, QUEUE_ALERT] {
        assert!(
            !tenants_with(&alerts, name, None).contains(&TENANT_B.to_owned()),
            "{name} must be neither pending nor firing for {TENANT_B} (threshold above the live \
             value): {alerts}"
        );
    }
    alerts
}

/// Tenant A's alerts as Prometheus fires them: the pack's labels, the tenant's metadata
/// joined, the live value, the queue label; and the critical tier stays quiet.
fn tenant_a_alerts_carry_its_labels_and_the_live_values(alerts: &Value) {
    let connections_alert = find_alert(alerts, CONNECTIONS_ALERT, TENANT_A);
    assert_eq!(connections_alert["labels"]["severity"], "warning");
    assert_eq!(connections_alert["labels"]["pack"], "mariadb");
    assert_eq!(
        connections_alert["labels"]["owner"], "team-a",
        "metadata joined"
    );
    let value: f64 = connections_alert["value"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        value > CLIENT_CONNECTIONS as f64,
        "the alert's value is MariaDB's live Threads_connected: {connections_alert}"
    );
    let queue_alert = find_alert(alerts, QUEUE_ALERT, TENANT_A);
    assert_eq!(queue_alert["labels"]["queue"], QUEUE);
    assert_eq!(queue_alert["labels"]["pack"], "redis");
    assert!(
        tenants_with(alerts, "MariaDBHighConnectionsCritical", None).is_empty(),
        "the critical tier (95) is above the live value: {alerts}"
    );
}

/// Alertmanager notifies the webhook of tenant A's alerts, with A's labels; by then nothing
/// was notified for B, and Alertmanager holds A's alerts as active.
fn alertmanager_notifies_tenant_a_and_nothing_for_b(stack: &Stack) {
    let notified = stack
        .webhook
        .wait_for(
            "tenant A's two alerts, firing",
            |alerts| {
                [CONNECTIONS_ALERT, QUEUE_ALERT].iter().all(|name| {
                    alerts.iter().any(|a| {
                        a["status"] == "firing"
                            && a["labels"]["alertname"] == *name
                            && a["labels"]["tenant"] == TENANT_A
                            && a["labels"]["owner"] == "team-a"
                    })
                })
            },
            WAIT,
        )
        .unwrap();
    assert!(
        !notified.iter().any(|a| a["labels"]["tenant"] == TENANT_B),
        "nothing is notified for {TENANT_B}: {}",
        Value::Array(notified.clone())
    );
    let held = stack.alertmanager.alerts().unwrap();
    for name in [CONNECTIONS_ALERT, QUEUE_ALERT] {
        assert!(
            held.iter().any(|a| a["labels"]["alertname"] == name
                && a["labels"]["tenant"] == TENANT_A
                && a["status"]["state"] == "active"),
            "Alertmanager holds {name} for {TENANT_A} as active: {}",
            Value::Array(held.clone())
        );
    }
    stack.progress("the webhook received tenant A's alerts from Alertmanager");
}

/// B's thresholds lowered below the live values in its file: B fires and is notified too,
/// nothing restarted.
fn lowering_b_thresholds_in_its_file_makes_b_fire(stack: &Stack) {
    common::write(&stack.conf_d, "tenant-b.yaml", TENANT_B_FILE_LOWERED);
    stack.progress("lowered tenant B's thresholds in its file");
    wait_for_alerts(&stack.prom, "tenant B's alerts firing", |alerts| {
        [CONNECTIONS_ALERT, QUEUE_ALERT]
            .iter()
            .all(|name| tenants_with(alerts, name, Some("firing")).contains(&TENANT_B.to_owned()))
    });
    stack.progress("tenant B's alerts fire in Prometheus");
    stack
        .webhook
        .wait_for(
            "tenant B's two alerts, firing",
            |alerts| {
                [CONNECTIONS_ALERT, QUEUE_ALERT].iter().all(|name| {
                    alerts.iter().any(|a| {
                        a["status"] == "firing"
                            && a["labels"]["alertname"] == *name
                            && a["labels"]["tenant"] == TENANT_B
                    })
                })
            },
            WAIT,
        )
        .unwrap();
    stack.progress("the webhook received tenant B's alerts");
}

/// Maintenance on A in its file: A's alerts leave Prometheus and are notified as resolved,
/// while B's (no maintenance) keep firing.
fn maintenance_on_a_resolves_a_and_b_keeps_firing(stack: &Stack) {
    common::write(&stack.conf_d, "tenant-a.yaml", TENANT_A_FILE_MAINTENANCE);
    stack.progress("put tenant A in maintenance in its file");
    let alerts = wait_for_alerts(&stack.prom, "tenant A's alerts gone", |alerts| {
        [CONNECTIONS_ALERT, QUEUE_ALERT]
            .iter()
            .all(|name| !tenants_with(alerts, name, None).contains(&TENANT_A.to_owned()))
    });
    for name in [CONNECTIONS_ALERT, QUEUE_ALERT] {
        assert!(
            tenants_with(&alerts, name, Some("firing")).contains(&TENANT_B.to_owned()),
            "maintenance is per tenant: {name} still fires for {TENANT_B}: {alerts}"
        );
    }
    stack.progress("tenant A's alerts are gone from Prometheus; B's still fire");
    stack
        .webhook
        .wait_for(
            "tenant A's two alerts, resolved",
            |alerts| {
                [CONNECTIONS_ALERT, QUEUE_ALERT].iter().all(|name| {
                    alerts.iter().any(|a| {
                        a["status"] == "resolved"
                            && a["labels"]["alertname"] == *name
                            && a["labels"]["tenant"] == TENANT_A
                    })
                })
            },
            WAIT,
        )
        .unwrap();
    stack.progress("the webhook received tenant A's alerts as resolved");
}

/// Runs the real `dynalert` binary and returns its stdout, failing the test on an error.
fn dynalert(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "dynalert {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Rewrites every `for:` of the rendered rule files to [`TEST_FOR`] and returns the files.
///
/// The packs hold alerts for minutes (`for: 5m`, `10m`) so that a blip does not page anyone,
/// and the CLI deliberately has no option to render them shorter; waiting that long would make
/// this test take a quarter of an hour. Only the hold time changes: expressions, labels and
/// annotations are exactly what `dynalert rules render` produced.
fn shorten_for_durations(rules_dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut rewritten = 0;
    for entry in std::fs::read_dir(rules_dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let body = line.trim_start();
            if body.starts_with("for: ") {
                let indent = &line[..line.len() - body.len()];
                out.push_str(&format!("{indent}for: {TEST_FOR}\n"));
                rewritten += 1;
            } else {
                out.push_str(line);
                out.push('\n');
            }
        }
        std::fs::write(&path, out).unwrap();
        files.push(path);
    }
    assert!(rewritten > 0, "no `for:` found in {}", rules_dir.display());
    files.sort();
    files
}

/// Every `mysql_*` and `redis_*` series the rendered packs select is one the real exporters
/// serve (apart from [`NOT_ON_THIS_SETUP`]): a misspelt or renamed metric would leave its alert
/// silent forever, which no threshold test can see.
fn assert_packs_read_what_the_exporters_serve(prom: &Prometheus, rule_files: &[PathBuf]) {
    let read = exporter_series_read(rule_files);
    assert!(read.len() > 10, "too few exporter series found: {read:?}");
    for (name, _) in NOT_ON_THIS_SETUP {
        assert!(
            read.contains(*name),
            "{name} is excused but no pack reads it"
        );
    }
    let names = prom.api_get("/api/v1/label/__name__/values", &[]).unwrap();
    let served: BTreeSet<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !served.contains(name.as_str()))
        .filter(|name| !NOT_ON_THIS_SETUP.iter().any(|(n, _)| n == name))
        .collect();
    assert!(
        missing.is_empty(),
        "the packs read series the real exporters do not serve: {missing:?}"
    );
}

/// Names of the `mysql_*` and `redis_*` series selected by the rules of `rule_files`.
fn exporter_series_read(rule_files: &[PathBuf]) -> BTreeSet<String> {
    struct Names(BTreeSet<String>);
    impl promql_parser::util::ExprVisitor for Names {
        type Error = String;
        fn pre_visit(&mut self, expr: &promql_parser::parser::Expr) -> Result<bool, String> {
            use promql_parser::parser::Expr;
            let selector = match expr {
                Expr::VectorSelector(vs) => Some(vs),
                Expr::MatrixSelector(ms) => Some(&ms.vs),
                _ => None,
            };
            if let Some(name) = selector.and_then(|vs| vs.name.as_ref()) {
                self.0.insert(name.clone());
            }
            Ok(true)
        }
    }
    let mut names = Names(BTreeSet::new());
    for file in rule_files {
        let text = std::fs::read_to_string(file).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        for rule in doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap().iter())
        {
            let expr = rule["expr"].as_str().unwrap();
            let parsed = promql_parser::parser::parse(expr).unwrap();
            promql_parser::util::walk_expr(&mut names, &parsed).unwrap();
        }
    }
    names
        .0
        .into_iter()
        .filter(|name| name.starts_with("mysql_") || name.starts_with("redis_"))
        .collect()
}

/// `tenant → value` of a query's samples, for progress messages.
fn values_by_tenant(samples: &[dynalert_testkit::Sample]) -> Vec<(String, f64)> {
    samples
        .iter()
        .map(|s| (s.label("tenant").unwrap_or("?").to_owned(), s.value))
        .collect()
}

/// Tenants with an active alert `name` in Prometheus's `/api/v1/alerts` data, optionally only
/// in `state` (`pending` or `firing`).
fn tenants_with(alerts: &Value, name: &str, state: Option<&str>) -> Vec<String> {
    alerts["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == name)
        .filter(|a| state.is_none_or(|state| a["state"] == state))
        .filter_map(|a| a["labels"]["tenant"].as_str().map(str::to_owned))
        .collect()
}

fn find_alert<'a>(alerts: &'a Value, name: &str, tenant: &str) -> &'a Value {
    alerts["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == name && a["labels"]["tenant"] == tenant)
        .unwrap_or_else(|| panic!("no {name} for {tenant}: {alerts}"))
}

/// Polls Prometheus's `/api/v1/alerts` every [`POLL`] until `done` accepts it; panics after
/// [`WAIT`] with the last answer.
fn wait_for_alerts(prom: &Prometheus, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match prom.api_get("/api/v1/alerts", &[]) {
            Ok(alerts) if done(&alerts) => return alerts,
            Ok(alerts) => alerts.to_string(),
            Err(error) => format!("error: {error:#}"),
        };
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}; last /api/v1/alerts: {last}"
        );
        std::thread::sleep(POLL);
    }
}
