//! All six rendered packs evaluated with data, in a real Prometheus and in a real vmalert.
//!
//! Two `dynalert serve` replicas (so every threshold series is duplicated, as in production)
//! serve the packs' generated defaults plus three tenants: `hot`, whose thresholds sit below
//! the live values for one or more keys of every pack; `muted`, the same thresholds but in
//! maintenance; `cool`, on the defaults, which the live values stay below; and `platform`, the platform pack's tenant (defined by the generated
//! defaults), edited there to ask for more replicas than run. Each of `hot`, `muted` and `cool`
//! has a stand-in exporter (a static `/metrics` endpoint
//! with the series mysqld_exporter, redis_exporter, percona mongodb_exporter,
//! elasticsearch_exporter, cAdvisor and kube-state-metrics serve, under their real names and
//! labels), scraped by its own job that injects `tenant` by relabelling.
//!
//! After several evaluations: every rule has health "ok" and no error, no evaluation failed,
//! every series a pack reads exists, and each pack has an alert pending (or firing) for the
//! tenant above its threshold, and none for `muted` or `cool`. vmalert then evaluates the same files
//! against that Prometheus, with the same outcome; its recording rules' results go to a
//! second Prometheus (a remote-write sink), so they do not mix with the first's.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Served;
use dynalert_testkit::{
    Http, Prometheus, ScrapeTarget, StaticExporter, Vmalert, rule_evaluation_failures,
    wait_for_healthy_rules,
};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(250);

/// `hot` sets a threshold below the live value for one key of every pack (and a per-queue
/// one); `muted` too, but is in maintenance; `cool` keeps the defaults, above every live value.
const TENANTS: &str = "\
tenants:
  hot:
    mysql_connections: 10
    redis_connected_clients: 100
    \"redis_queue_length{queue='jobs'}\": 10
    mongodb_connections: 100
    es_heap_usage: 50
    container_memory_usage: 50
    _metadata:
      owner: team-hot
  muted:
    mysql_connections: 10
    redis_connected_clients: 100
    \"redis_queue_length{queue='jobs'}\": 10
    mongodb_connections: 100
    es_heap_usage: 50
    container_memory_usage: 50
    _state_maintenance: enable
  cool:
    _metadata:
      owner: team-cool
";

/// `(pack, tenant, alert)` that must be pending or firing; every pack has at least one.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("mariadb", "hot", "MariaDBHighConnections"),
    ("redis", "hot", "RedisHighConnectedClients"),
    ("redis", "hot", "RedisQueueBacklog"),
    ("mongodb", "hot", "MongoDBHighConnections"),
    ("elasticsearch", "hot", "ElasticsearchHighHeapUsage"),
    ("kubernetes", "hot", "ContainerHighMemoryUsage"),
    ("platform", "platform", "DynalertTooFewReplicas"),
];

/// What the exporters of one tenant serve: healthy values, below every default, above `hot`'s
/// thresholds. Kubernetes series carry the tenant as their namespace, as in a cluster.
fn exposition(namespace: &str) -> String {
    let pod = format!(r#"namespace="{namespace}",pod="api-7d9f6b-x2k4q""#);
    let es = r#"cluster="es-logs",host="10.0.3.7",name="es-data-0""#;
    let fs = format!(
        r#"{es},mount="/usr/share/elasticsearch/data (/dev/sdb)",path="/usr/share/elasticsearch/data/nodes/0""#
    );
    let slave = r#"channel_name="",connection_name="",master_host="10.0.1.5",master_uuid="""#;
    let member = |idx: &str, state: &str| format!(r#"member_idx="{idx}",member_state="{state}""#);
    format!(
        r#"# mysqld_exporter
mysql_up 1
mysql_global_status_threads_connected 50
mysql_global_status_threads_running 4
mysql_global_variables_max_connections 500
mysql_global_status_aborted_connects 12
mysql_global_status_innodb_deadlocks 0
mysql_global_status_innodb_row_lock_waits 3
mysql_global_status_slow_queries 2
mysql_info_schema_innodb_metrics_lock_lock_deadlocks_total 0
mysql_slave_status_seconds_behind_master{{{slave}}} 1
mysql_slave_status_slave_io_running{{{slave}}} 1
mysql_slave_status_slave_sql_running{{{slave}}} 1
# redis_exporter
redis_up 1
redis_connected_clients 200
redis_memory_used_bytes 536870912
redis_memory_max_bytes 2147483648
redis_total_error_replies 3
redis_commands_duration_seconds_total{{cmd="get"}} 1.5
redis_commands_processed_total{{cmd="get"}} 150000
redis_rejected_connections_total 0
redis_master_link_up 1
redis_key_size{{db="db0",key="jobs"}} 100
redis_key_size{{db="db0",key="emails"}} 100
# mongodb_exporter (percona)
mongodb_up 1
mongodb_ss_connections{{conn_type="current"}} 300
mongodb_ss_connections{{conn_type="available"}} 51000
mongodb_ss_connections{{conn_type="totalCreated"}} 9000
mongodb_ss_wt_cache_bytes_currently_in_the_cache 1000000000
mongodb_ss_wt_cache_maximum_bytes_configured 4000000000
mongodb_dbstats_storageSize{{database="orders"}} 2000000000
mongodb_dbstats_indexSize{{database="orders"}} 500000000
mongodb_ss_opLatencies_latency{{op_type="reads"}} 1234567
mongodb_ss_opLatencies_latency{{op_type="writes"}} 2345678
mongodb_ss_opLatencies_ops{{op_type="reads"}} 100000
mongodb_ss_opLatencies_ops{{op_type="writes"}} 50000
mongodb_ss_globalLock_currentQueue{{count_type="total"}} 1
mongodb_ss_globalLock_currentQueue{{count_type="readers"}} 1
mongodb_ss_globalLock_currentQueue{{count_type="writers"}} 0
mongodb_rs_members_optimeDate{{{primary}}} 1764720000000
mongodb_rs_members_optimeDate{{{secondary}}} 1764719998000
# elasticsearch_exporter
elasticsearch_cluster_health_status{{cluster="es-logs",color="green"}} 1
elasticsearch_cluster_health_status{{cluster="es-logs",color="yellow"}} 0
elasticsearch_cluster_health_status{{cluster="es-logs",color="red"}} 0
elasticsearch_cluster_health_unassigned_shards{{cluster="es-logs"}} 0
elasticsearch_filesystem_data_available_bytes{{{fs}}} 60000000000
elasticsearch_filesystem_data_size_bytes{{{fs}}} 100000000000
elasticsearch_indices_docs_primary{{cluster="es-logs",index="logs-2026.12.03"}} 1200000
elasticsearch_jvm_memory_used_bytes{{area="heap",{es}}} 4800000000
elasticsearch_jvm_memory_max_bytes{{area="heap",{es}}} 8000000000
elasticsearch_jvm_memory_used_bytes{{area="non-heap",{es}}} 200000000
elasticsearch_indices_search_query_time_seconds{{{es}}} 120
elasticsearch_indices_search_query_total{{{es}}} 40000
elasticsearch_thread_pool_rejected_count{{{es},type="search"}} 0
elasticsearch_thread_pool_rejected_count{{{es},type="write"}} 0
# cAdvisor
container_memory_working_set_bytes{{{pod},container="api"}} 734003200
container_spec_memory_limit_bytes{{{pod},container="api"}} 1048576000
container_cpu_cfs_throttled_periods_total{{{pod},container="api"}} 10
container_cpu_cfs_periods_total{{{pod},container="api"}} 1000
# kube-state-metrics
kube_pod_status_phase{{{pod},phase="Running"}} 1
kube_pod_status_phase{{{pod},phase="Pending"}} 0
kube_pod_status_phase{{{pod},phase="Unknown"}} 0
kube_pod_status_phase{{{pod},phase="Succeeded"}} 0
kube_pod_status_phase{{{pod},phase="Failed"}} 0
kube_pod_container_status_restarts_total{{{pod},container="api"}} 1
kube_pod_container_status_last_terminated_reason{{{pod},container="api",reason="Error"}} 1
kube_pod_container_status_waiting_reason{{{pod},container="api",reason="CrashLoopBackOff"}} 0
"#,
        primary = member("mongo-0.mongo:27017", "PRIMARY"),
        secondary = member("mongo-1.mongo:27017", "SECONDARY"),
    )
}

#[test]
fn rendered_packs_evaluate_with_exporter_data_in_prometheus_and_vmalert() {
    let dir = tempfile::tempdir().unwrap();
    let (conf_d, rules) = (dir.path().join("conf.d"), dir.path().join("rules"));
    std::fs::create_dir_all(&conf_d).unwrap();
    // The generated defaults, with the platform tenant wanting one replica more than run.
    let defaults = String::from_utf8(dynalert(&["rules", "defaults"])).unwrap();
    let replicas = "\n    dynalert_replicas_min: 2\n";
    assert_eq!(defaults.matches(replicas).count(), 1, "{defaults}");
    let defaults = defaults.replace(replicas, "\n    dynalert_replicas_min: 3\n");
    std::fs::write(conf_d.join("_defaults.yaml"), defaults).unwrap();
    common::write(&conf_d, "tenants.yaml", TENANTS);
    let rules_arg = rules.display().to_string();
    dynalert(&[
        "rules",
        "render",
        "--format",
        "files",
        "--exporter-job",
        "dynalert",
        "--out",
        &rules_arg,
    ]);

    let (log_a, log_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&log_a).unwrap();
    std::fs::create_dir_all(&log_b).unwrap();
    let a = Served::start(&conf_d, &log_a);
    let b = Served::start(&conf_d, &log_b);
    let hot = StaticExporter::start(exposition("hot")).unwrap();
    let muted = StaticExporter::start(exposition("muted")).unwrap();
    let cool = StaticExporter::start(exposition("cool")).unwrap();

    let mut builder = Prometheus::builder()
        .scrape(ScrapeTarget::new("dynalert", a.port))
        .scrape(ScrapeTarget::new("dynalert", b.port))
        .scrape(
            hot.scrape_target("exporters-hot")
                .with_relabel_label("tenant", "hot"),
        )
        .scrape(
            muted
                .scrape_target("exporters-muted")
                .with_relabel_label("tenant", "muted"),
        )
        .scrape(
            cool.scrape_target("exporters-cool")
                .with_relabel_label("tenant", "cool"),
        );
    for entry in std::fs::read_dir(&rules).unwrap() {
        builder = builder.rule_file(entry.unwrap().path());
    }
    let Some(prom) = builder.start().unwrap() else {
        return;
    };
    let http = Http::new().unwrap();
    prom.wait_for(
        r#"count(up{job=~"dynalert|exporters-.*"} == 1)"#,
        |s| s.first().is_some_and(|s| s.value == 5.0),
        WAIT,
    )
    .unwrap();

    let prom_alerts = format!("{}/api/v1/alerts", prom.url());
    wait_for_expected_alerts(&http, &prom_alerts, "Prometheus");
    let loaded = wait_for_healthy_rules(&http, prom.url(), WAIT).unwrap();
    assert_eq!(
        loaded,
        rendered_rule_count(),
        "every rendered rule is loaded"
    );
    let failures = rule_evaluation_failures(&http, prom.url()).unwrap();
    assert!(!failures.is_empty(), "no rule group reported its failures");
    assert!(failures.iter().all(|(_, n)| *n == 0.0), "{failures:#?}");
    every_series_read_exists(&prom, &rules);

    // The same files in vmalert, querying that Prometheus.
    let Some(sink) = Prometheus::builder()
        .arg("--web.enable-remote-write-receiver")
        .start()
        .unwrap()
    else {
        return;
    };
    let glob = rules.join("*.yml");
    let Some(vmalert) = Vmalert::start(
        &[glob.as_path()],
        prom.url(),
        &[format!("-remoteWrite.url={}", sink.url())],
    )
    .unwrap() else {
        return;
    };
    let vm_alerts = format!("{}/api/v1/alerts", vmalert.url());
    wait_for_expected_alerts(&http, &vm_alerts, "vmalert");
    let in_vmalert = wait_for_healthy_rules(&http, vmalert.url(), WAIT)
        .unwrap_or_else(|e| panic!("vmalert: {e:#}\n{}", vmalert.log_tail()));
    assert_eq!(in_vmalert, loaded, "vmalert loads every rendered rule");
    // vmalert's recording rules produced series, written to the sink.
    sink.wait_for(
        r#"tenant_container:container_memory_usage_percent:max{tenant="hot"}"#,
        |s| s.first().is_some_and(|s| (s.value - 70.0).abs() < 0.01),
        WAIT,
    )
    .unwrap_or_else(|e| panic!("{e:#}\nvmalert log:\n{}", vmalert.log_tail()));
    drop((a, b, hot, muted, cool));
}

/// Runs this build's `dynalert` CLI and returns its stdout.
fn dynalert(args: &[&str]) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_dynalert"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dynalert {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Polls an `/api/v1/alerts` answer (Prometheus's or vmalert's) until every [`EXPECTED`]
/// alert is pending or firing and nothing else is: no alert for `muted` or `cool`, no platform alert but
/// `DynalertTooFewReplicas` (both replicas are up and load their files), and `RedisQueueBacklog`
/// for the `jobs` queue (its own threshold) but not `emails` (the tenant-wide default). Right
/// after the start some alerts are briefly pending (no replica scraped yet), hence the polling.
fn wait_for_expected_alerts(http: &Http, url: &str, what: &str) {
    let start = Instant::now();
    loop {
        let r = http.get(url, &[]).unwrap();
        // vmalert answers `"alerts": null` while none is active.
        let alerts = r.json().unwrap()["data"]["alerts"].clone();
        let alerts = alerts.as_array().cloned().unwrap_or_default();
        let active: Vec<&Value> = alerts
            .iter()
            .filter(|a| a["state"] == "pending" || a["state"] == "firing")
            .collect();
        let label = |a: &Value, name: &str| a["labels"][name].as_str().unwrap_or("").to_string();
        let mut problems = Vec::new();
        for (pack, tenant, alert) in EXPECTED {
            if !active.iter().any(|a| {
                label(a, "pack") == *pack
                    && label(a, "tenant") == *tenant
                    && label(a, "alertname") == *alert
            }) {
                problems.push(format!("{alert} ({pack}) is not active for {tenant}"));
            }
        }
        for a in &active {
            let (name, tenant) = (label(a, "alertname"), label(a, "tenant"));
            if tenant == "muted" || tenant == "cool" {
                problems.push(format!("{name} is active for {tenant}"));
            }
            if label(a, "pack") == "platform" && name != "DynalertTooFewReplicas" {
                problems.push(format!("{name} is active"));
            }
        }
        let queues: BTreeSet<String> = active
            .iter()
            .filter(|a| label(a, "alertname") == "RedisQueueBacklog")
            .map(|a| label(a, "queue"))
            .collect();
        if queues != BTreeSet::from(["jobs".to_string()]) {
            problems.push(format!("RedisQueueBacklog is active for queues {queues:?}"));
        }
        if problems.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < WAIT,
            "{what}: {problems:#?}\nactive alerts: {active:#?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Every series a rule reads is in Prometheus: the exporters' (so no rule is evaluated on
/// nothing), dynalert's, and the recorded ones that the data produces.
fn every_series_read_exists(prom: &Prometheus, rules: &Path) {
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
    let mut read = Names(BTreeSet::new());
    for entry in std::fs::read_dir(rules).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        for rule in doc["groups"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|g| g["rules"].as_array().unwrap())
        {
            let parsed = promql_parser::parser::parse(rule["expr"].as_str().unwrap()).unwrap();
            promql_parser::util::walk_expr(&mut read, &parsed).unwrap();
        }
    }
    let names = prom.api_get("/api/v1/label/__name__/values", &[]).unwrap();
    let served: BTreeSet<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Recorded series exist only when their input matches (no OOM kill, no waiting pod here).
    let missing: Vec<&String> = read
        .0
        .iter()
        .filter(|name| !name.contains(':') && !served.contains(name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the packs read series that neither the stand-in exporters nor dynalert serve: {missing:?}"
    );
}

/// Rules in the rendered catalogue, counted through the CLI's JSON listing.
fn rendered_rule_count() -> usize {
    let packs: Value =
        serde_json::from_slice(&dynalert(&["rules", "list", "--format", "json"])).unwrap();
    let packs = packs.as_array().unwrap();
    // Every pack has an expected alert, so none is evaluated without data.
    for pack in packs {
        let name = pack["pack"].as_str().unwrap();
        assert!(
            EXPECTED.iter().any(|(p, _, _)| *p == name),
            "pack {name} has no expected alert in this test"
        );
    }
    packs
        .iter()
        .map(|p| {
            p["recording_rules"].as_u64().unwrap() as usize + p["alerts"].as_array().unwrap().len()
        })
        .sum()
}
