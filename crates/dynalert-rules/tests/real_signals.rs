//! Every key of every pack against the real `promtool` with its REAL expression: the rendered
//! rules (recording groups included, annotations dropped) are evaluated on input series named
//! and labelled as the exporters expose them, two instances (or replicas, pods, nodes) per
//! tenant, with thresholds from real dynalert output.
//!
//! `promtool.rs` proves the threshold logic on injected signals; this file proves that each
//! pack's selectors, label matching and arithmetic fire on the exporter's actual series. An
//! alert whose selector misses the exporter's names stays silent here and fails.
//!
//! Names and labels, as the exporters expose them:
//! - mysqld_exporter 0.14 (Debian) scraping MariaDB 10.11, and redis_exporter 1.45 (Debian)
//!   scraping Redis 7: checked against the running programs (including a MariaDB replica's
//!   `mysql_slave_status_*` labels and redis_exporter `--check-keys` output);
//! - percona/mongodb_exporter: `mongodb_ss_*` with the `conn_type`, `count_type` and
//!   `op_type` labels (opLatencies renamed by its special conversions), `mongodb_rs_members_*`
//!   with `member_idx` / `member_state`, `mongodb_dbstats_*` with `database`;
//! - prometheus-community/elasticsearch_exporter: node series labelled `cluster, host, name`
//!   and the `es_*_node` roles, `elasticsearch_cluster_health_status{color}`, index series
//!   `{cluster, index}`;
//! - cAdvisor (kubelet `/metrics/cadvisor`) and kube-state-metrics v2 (honor_labels);
//! - dynalert's own `/metrics` and Prometheus' `up` for the platform pack.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use Shape::{Absent, Counter, Gauge, Linear, Steps};
use common::real::{
    Expected, Input, Row, SAMPLES, Shape, alert_labels, both, group, input, input_series,
    rendered_rules, row, write_real_signal_tests, write_rules, write_tests,
};
use common::served_series;
use dynalert_rules::pack::{AlertDecl, KeyDecl, Pack};
use dynalert_rules::{RenderOptions, catalogue};
use dynalert_testkit::require_binary;

fn promtool_test(promtool: &Path, dir: &Path) -> (bool, String) {
    let out = Command::new(promtool)
        .args(["test", "rules", "tests.yml"])
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn pack(name: &str) -> &'static Pack {
    catalogue().iter().find(|p| p.pack == name).unwrap()
}

/// `up` of a 0/1 gauge for two instances: `level` percent of them down.
fn up_down(metric: &str, percent_down: f64) -> Vec<Input> {
    let down = (percent_down / 50.0).round() as usize;
    vec![input(
        metric,
        [
            Gauge(if down >= 1 { 0.0 } else { 1.0 }),
            Gauge(if down >= 2 { 0.0 } else { 1.0 }),
        ],
    )]
}

fn mariadb() -> Vec<Row> {
    // The replica (instance 1) of the tenant's primary (instance 0): what
    // `SHOW SLAVE STATUS` labels become in mysqld_exporter.
    const SLAVE: &str =
        r#"channel_name="",connection_name="",master_host="$tenant-db-0",master_uuid="""#;
    vec![
        row("mysql_instances_down", 50.0, 100.0, |v| {
            up_down("mysql_up", v)
        }),
        row("mysql_connections", 120.0, 240.0, |v| {
            vec![input(
                "mysql_global_status_threads_connected",
                [Gauge(v), Gauge(v / 3.0)],
            )]
        }),
        row("mysql_connections_usage", 60.0, 90.0, |v| {
            vec![
                input(
                    "mysql_global_status_threads_connected",
                    [Gauge(v * 2.0), Gauge(v / 2.0)],
                ),
                both("mysql_global_variables_max_connections", Gauge(200.0)),
            ]
        }),
        row("mysql_threads_running", 20.0, 40.0, |v| {
            vec![input(
                "mysql_global_status_threads_running",
                [Gauge(v), Gauge(1.0)],
            )]
        }),
        row("mysql_slow_queries", 20.0, 40.0, |v| {
            vec![input(
                "mysql_global_status_slow_queries",
                [Counter(v * 0.75), Counter(v * 0.25)],
            )]
        }),
        row("mysql_aborted_connects", 20.0, 40.0, |v| {
            vec![
                input(
                    "mysql_global_status_aborted_connects",
                    [Counter(v * 0.75), Counter(v * 0.25)],
                ),
                // MariaDB's separate pre-authentication counter is not part of the signal.
                both(
                    "mysql_global_status_aborted_connects_preauth",
                    Counter(1000.0),
                ),
            ]
        }),
        row("mysql_deadlocks", 4.0, 8.0, |v| {
            vec![input(
                "mysql_global_status_innodb_deadlocks",
                [Counter(v * 0.75), Counter(v * 0.25)],
            )]
        }),
        row("mysql_row_lock_waits", 120.0, 240.0, |v| {
            vec![input(
                "mysql_global_status_innodb_row_lock_waits",
                [Counter(v * 0.75), Counter(v * 0.25)],
            )]
        }),
        row("mysql_replication_lag", 40.0, 80.0, |v| {
            vec![input(
                &format!("mysql_slave_status_seconds_behind_master{{{SLAVE}}}"),
                [Absent, Gauge(v)],
            )]
        }),
        // 1: the IO thread is "Connecting" (0); 2: both threads stopped.
        row("mysql_replication_stopped", 1.0, 2.0, |v| {
            vec![
                input(
                    &format!("mysql_slave_status_slave_io_running{{{SLAVE}}}"),
                    [Absent, Gauge(0.0)],
                ),
                input(
                    &format!("mysql_slave_status_slave_sql_running{{{SLAVE}}}"),
                    [Absent, Gauge(if v >= 2.0 { 0.0 } else { 1.0 })],
                ),
            ]
        }),
    ]
}

fn redis() -> Vec<Row> {
    vec![
        row("redis_instances_down", 50.0, 100.0, |v| {
            up_down("redis_up", v)
        }),
        row("redis_memory_usage", 90.0, 98.0, |v| {
            vec![
                input(
                    "redis_memory_used_bytes",
                    [Gauge(v / 100.0 * 1e9), Gauge(v / 400.0 * 1e9)],
                ),
                both("redis_memory_max_bytes", Gauge(1e9)),
            ]
        }),
        row("redis_connected_clients", 1500.0, 3000.0, |v| {
            vec![input("redis_connected_clients", [Gauge(v), Gauge(10.0)])]
        }),
        // --check-keys: the queue's LLEN as redis_key_size{db, key}; another key stays short.
        row("redis_queue_length", 800.0, 1600.0, |v| {
            vec![
                input(
                    r#"redis_key_size{db="db0",key="jobs"}"#,
                    [Gauge(v), Gauge(v / 3.0)],
                ),
                both(r#"redis_key_size{db="db0",key="mail"}"#, Gauge(3.0)),
            ]
        })
        .dim("jobs"),
        row("redis_rejected_connections", 2.0, 4.0, |v| {
            vec![input(
                "redis_rejected_connections_total",
                [Counter(v * 0.75), Counter(v * 0.25)],
            )]
        }),
        row("redis_command_errors", 20.0, 40.0, |v| {
            vec![
                input(
                    "redis_total_error_replies",
                    [Counter(v * 0.75), Counter(v * 0.25)],
                ),
                both(r#"redis_errors_total{err="WRONGTYPE"}"#, Counter(v)),
            ]
        }),
        // 1000 commands a minute per instance; the first instance takes `v` ms on average.
        row("redis_command_latency", 20.0, 40.0, |v| {
            vec![
                input(
                    r#"redis_commands_duration_seconds_total{cmd="get"}"#,
                    [Counter(v * 0.6), Counter(v * 0.1)],
                ),
                input(
                    r#"redis_commands_duration_seconds_total{cmd="set"}"#,
                    [Counter(v * 0.4), Counter(v * 0.1)],
                ),
                input(
                    r#"redis_commands_total{cmd="get"}"#,
                    [Counter(600.0), Counter(600.0)],
                ),
                input(
                    r#"redis_commands_total{cmd="set"}"#,
                    [Counter(400.0), Counter(400.0)],
                ),
                both("redis_commands_processed_total", Counter(1000.0)),
            ]
        }),
        // Two replicas of the tenant's primary: one link down, then both.
        row("redis_master_link_down", 1.0, 2.0, |v| {
            vec![input(
                "redis_master_link_up",
                [Gauge(0.0), Gauge(if v >= 2.0 { 0.0 } else { 1.0 })],
            )]
        }),
    ]
}

fn mongodb() -> Vec<Row> {
    vec![
        row("mongodb_instances_down", 50.0, 100.0, |v| {
            up_down("mongodb_up", v)
        }),
        row("mongodb_connections", 800.0, 1600.0, |v| {
            vec![
                input(
                    r#"mongodb_ss_connections{conn_type="current"}"#,
                    [Gauge(v), Gauge(v / 4.0)],
                ),
                both(
                    r#"mongodb_ss_connections{conn_type="available"}"#,
                    Gauge(50000.0),
                ),
                both(
                    r#"mongodb_ss_connections{conn_type="totalCreated"}"#,
                    Counter(100.0),
                ),
            ]
        }),
        // current + available = 1000 on the busiest instance.
        row("mongodb_connections_usage", 60.0, 95.0, |v| {
            vec![
                input(
                    r#"mongodb_ss_connections{conn_type="current"}"#,
                    [Gauge(v * 10.0), Gauge(10.0)],
                ),
                input(
                    r#"mongodb_ss_connections{conn_type="available"}"#,
                    [Gauge(1000.0 - v * 10.0), Gauge(990.0)],
                ),
                both(
                    r#"mongodb_ss_connections{conn_type="totalCreated"}"#,
                    Counter(100.0),
                ),
            ]
        }),
        // Each member's exporter reports the optimes of both members (epoch milliseconds).
        row("mongodb_replication_lag", 60.0, 120.0, |v| {
            vec![
                both(
                    r#"mongodb_rs_members_optimeDate{member_idx="$tenant-mongo-0:27017",member_state="PRIMARY",rs_nm="rs0"}"#,
                    Linear(1.7e12, 60000.0),
                ),
                both(
                    r#"mongodb_rs_members_optimeDate{member_idx="$tenant-mongo-1:27017",member_state="SECONDARY",rs_nm="rs0"}"#,
                    Linear(1.7e12 - v * 1000.0, 60000.0),
                ),
            ]
        }),
        row("mongodb_queued_operations", 40.0, 80.0, |v| {
            vec![
                input(
                    r#"mongodb_ss_globalLock_currentQueue{count_type="total"}"#,
                    [Gauge(v), Gauge(0.0)],
                ),
                input(
                    r#"mongodb_ss_globalLock_currentQueue{count_type="readers"}"#,
                    [Gauge(v / 2.0), Gauge(0.0)],
                ),
                input(
                    r#"mongodb_ss_globalLock_currentQueue{count_type="writers"}"#,
                    [Gauge(v / 2.0), Gauge(0.0)],
                ),
            ]
        }),
        row("mongodb_cache_usage", 80.0, 97.0, |v| {
            vec![
                input(
                    "mongodb_ss_wt_cache_bytes_currently_in_the_cache",
                    [Gauge(v / 100.0 * 8e9), Gauge(1e9)],
                ),
                both("mongodb_ss_wt_cache_maximum_bytes_configured", Gauge(8e9)),
            ]
        }),
        // Per minute, per instance: 600 reads and 400 writes; microseconds of latency such
        // that the first instance averages `v` ms. Commands are slow and must not count.
        row("mongodb_operation_latency", 150.0, 300.0, |v| {
            vec![
                input(
                    r#"mongodb_ss_opLatencies_latency{op_type="reads"}"#,
                    [Counter(600.0 * v * 1000.0), Counter(600.0 * 1000.0)],
                ),
                input(
                    r#"mongodb_ss_opLatencies_latency{op_type="writes"}"#,
                    [Counter(400.0 * v * 1000.0), Counter(400.0 * 1000.0)],
                ),
                both(
                    r#"mongodb_ss_opLatencies_ops{op_type="reads"}"#,
                    Counter(600.0),
                ),
                both(
                    r#"mongodb_ss_opLatencies_ops{op_type="writes"}"#,
                    Counter(400.0),
                ),
                both(
                    r#"mongodb_ss_opLatencies_latency{op_type="commands"}"#,
                    Counter(1e12),
                ),
                both(
                    r#"mongodb_ss_opLatencies_ops{op_type="commands"}"#,
                    Counter(1.0),
                ),
            ]
        }),
        // Both members report the same databases; admin stays small.
        row("mongodb_database_size", 300.0, 450.0, |v| {
            let gib = 1073741824.0;
            vec![
                both(
                    r#"mongodb_dbstats_storageSize{database="orders"}"#,
                    Gauge(v * 0.8 * gib),
                ),
                both(
                    r#"mongodb_dbstats_indexSize{database="orders"}"#,
                    Gauge(v * 0.2 * gib),
                ),
                both(
                    r#"mongodb_dbstats_storageSize{database="admin"}"#,
                    Gauge(1e6),
                ),
                both(r#"mongodb_dbstats_indexSize{database="admin"}"#, Gauge(1e5)),
            ]
        })
        .dim("orders"),
    ]
}

/// The node a tenant's exporter instance `$i` watches (one exporter per node).
const ES_NODE: &str = r#"cluster="$tenant-es",host="10.0.0.$i",name="$tenant-es-$i",es_client_node="true",es_data_node="true",es_ingest_node="true",es_master_node="true""#;

fn es_node(metric: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{extra},")
    };
    format!("{metric}{{{extra}{ES_NODE}}}")
}

fn elasticsearch() -> Vec<Row> {
    vec![
        // 1: yellow, 2: red. Both exporters report the cluster's health.
        row("es_cluster_status", 1.0, 2.0, |v| {
            ["green", "yellow", "red"]
                .iter()
                .enumerate()
                .map(|(n, color)| {
                    both(
                        &format!(r#"elasticsearch_cluster_health_status{{cluster="$tenant-es",color="{color}"}}"#),
                        Gauge(if n as f64 == v { 1.0 } else { 0.0 }),
                    )
                })
                .collect()
        }),
        row("es_heap_usage", 70.0, 97.0, |v| {
            vec![
                input(
                    &es_node("elasticsearch_jvm_memory_used_bytes", r#"area="heap""#),
                    [Gauge(v / 100.0 * 4e9), Gauge(1e9)],
                ),
                both(
                    &es_node("elasticsearch_jvm_memory_max_bytes", r#"area="heap""#),
                    Gauge(4e9),
                ),
                both(
                    &es_node("elasticsearch_jvm_memory_used_bytes", r#"area="non-heap""#),
                    Gauge(3.9e9),
                ),
            ]
        }),
        row("es_disk_usage", 70.0, 95.0, |v| {
            let fs = r#"mount="/usr/share/elasticsearch/data (/dev/sdb)",path="/usr/share/elasticsearch/data/nodes/0""#;
            vec![
                input(
                    &es_node("elasticsearch_filesystem_data_available_bytes", fs),
                    [Gauge((100.0 - v) / 100.0 * 1e12), Gauge(0.9e12)],
                ),
                both(
                    &es_node("elasticsearch_filesystem_data_size_bytes", fs),
                    Gauge(1e12),
                ),
            ]
        }),
        // Both exporters report the cluster's count: it is counted once.
        row("es_unassigned_shards", 3.0, 6.0, |v| {
            vec![both(
                r#"elasticsearch_cluster_health_unassigned_shards{cluster="$tenant-es"}"#,
                Gauge(v),
            )]
        }),
        row("es_rejected_requests", 4.0, 8.0, |v| {
            vec![
                input(
                    &es_node("elasticsearch_thread_pool_rejected_count", r#"type="write""#),
                    [Counter(v * 0.75), Counter(v * 0.25)],
                ),
                both(
                    &es_node("elasticsearch_thread_pool_rejected_count", r#"type="search""#),
                    Counter(0.0),
                ),
            ]
        }),
        // 600 queries a minute per node; the first node averages `v` ms.
        row("es_search_latency", 800.0, 1600.0, |v| {
            vec![
                input(
                    &es_node("elasticsearch_indices_search_query_time_seconds", ""),
                    [Counter(600.0 * v / 1000.0), Counter(60.0)],
                ),
                both(
                    &es_node("elasticsearch_indices_search_query_total", ""),
                    Counter(600.0),
                ),
            ]
        }),
        row("es_index_docs", 1.5e9, 3e9, |v| {
            vec![
                both(
                    r#"elasticsearch_indices_docs_primary{cluster="$tenant-es",index="logs-2026.11"}"#,
                    Gauge(v),
                ),
                both(
                    r#"elasticsearch_indices_docs_primary{cluster="$tenant-es",index=".kibana_1"}"#,
                    Gauge(100.0),
                ),
            ]
        })
        .dim("logs-2026.11"),
    ]
}

/// cAdvisor's labels for a container of pod `$i` of the tenant's `app` deployment (scraped
/// from the kubelet of node `$i`), without `container`.
const CADVISOR: &str = r#"namespace="$tenant",pod="app-7c9d8-$i",id="/kubepods/burstable/pod$i",image="registry.example.com/app:1.4",name="k8s_app_app-7c9d8-$i",instance="node-$i",job="kubelet",metrics_path="/metrics/cadvisor",endpoint="https-metrics",service="kubelet""#;
/// kube-state-metrics' labels for the same pod (honor_labels keeps `namespace`).
const KSM: &str = r#"namespace="$tenant",pod="app-7c9d8-$i",uid="uid-$i",instance="10.1.0.5:8080",job="kube-state-metrics""#;

fn cadvisor(metric: &str, container: &str) -> String {
    format!(r#"{metric}{{container="{container}",{CADVISOR}}}"#)
}

fn ksm(metric: &str, extra: &str) -> String {
    format!("{metric}{{{extra}{KSM}}}")
}

fn kubernetes() -> Vec<Row> {
    vec![
        // 600 CFS periods a minute (100ms). The pod cgroup (container="") and the pause
        // container are throttled all the time and must not count.
        row("container_cpu_throttle", 40.0, 80.0, |v| {
            let mut out = vec![
                input(
                    &cadvisor("container_cpu_cfs_throttled_periods_total", "app"),
                    [Counter(6.0 * v), Counter(6.0 * v / 4.0)],
                ),
                both(
                    &cadvisor("container_cpu_cfs_periods_total", "app"),
                    Counter(600.0),
                ),
            ];
            for c in ["", "POD"] {
                out.push(both(
                    &cadvisor("container_cpu_cfs_throttled_periods_total", c),
                    Counter(600.0),
                ));
                out.push(both(
                    &cadvisor("container_cpu_cfs_periods_total", c),
                    Counter(600.0),
                ));
            }
            out
        })
        .dim("app"),
        // A 512 MiB limit; the pod cgroup has no limit (0) and must not divide.
        row("container_memory_usage", 90.0, 98.0, |v| {
            let limit = 536870912.0;
            vec![
                input(
                    &cadvisor("container_memory_working_set_bytes", "app"),
                    [Gauge(v / 100.0 * limit), Gauge(limit / 10.0)],
                ),
                both(
                    &cadvisor("container_spec_memory_limit_bytes", "app"),
                    Gauge(limit),
                ),
                both(
                    &cadvisor("container_memory_working_set_bytes", ""),
                    Gauge(limit),
                ),
                both(
                    &cadvisor("container_spec_memory_limit_bytes", ""),
                    Gauge(0.0),
                ),
                both(
                    &cadvisor("container_memory_working_set_bytes", "POD"),
                    Gauge(limit),
                ),
                both(
                    &cadvisor("container_spec_memory_limit_bytes", "POD"),
                    Gauge(1.0),
                ),
            ]
        })
        .dim("app"),
        // Restarts in the last hour, shared by the two pods.
        row("container_restarts", 10.0, 20.0, |v| {
            let per_pod = (v / 2.0) as u32;
            vec![both(
                &ksm(
                    "kube_pod_container_status_restarts_total",
                    r#"container="app","#,
                ),
                Steps(per_pod, 0.0, 1.0),
            )]
        })
        .dim("app"),
        // 1: pod 0 restarted after an OOM kill (pod 1 after an error); 2: both OOM-killed.
        row("container_oom_killed", 1.0, 2.0, |v| {
            vec![
                both(
                    &ksm(
                        "kube_pod_container_status_restarts_total",
                        r#"container="app","#,
                    ),
                    Steps(1, 4.0, 1.0),
                ),
                input(
                    &ksm(
                        "kube_pod_container_status_last_terminated_reason",
                        r#"container="app",reason="OOMKilled","#,
                    ),
                    [Gauge(1.0), if v >= 2.0 { Gauge(1.0) } else { Absent }],
                ),
                input(
                    &ksm(
                        "kube_pod_container_status_last_terminated_reason",
                        r#"container="app",reason="Error","#,
                    ),
                    [Absent, if v >= 2.0 { Absent } else { Gauge(1.0) }],
                ),
            ]
        })
        .dim("app"),
        // One series per phase per pod, 1 for the current one: 1 pod Pending, then both.
        row("pod_not_running", 1.0, 2.0, |v| {
            ["Pending", "Running", "Succeeded", "Failed", "Unknown"]
                .iter()
                .map(|phase| {
                    let pending = |pod: f64| if v > pod { "Pending" } else { "Running" };
                    let shape = |pod: f64| Gauge(if pending(pod) == *phase { 1.0 } else { 0.0 });
                    input(
                        &ksm("kube_pod_status_phase", &format!(r#"phase="{phase}","#)),
                        [shape(0.0), shape(1.0)],
                    )
                })
                .collect()
        }),
    ]
}

const DYNALERT: &str = r#"job="$job",instance="dynalert-$i:9090""#;

fn platform() -> Vec<Row> {
    vec![
        row("dynalert_replicas_down", 1.0, 2.0, |v| {
            vec![input(
                &format!("up{{{DYNALERT}}}"),
                [Gauge(0.0), Gauge(if v >= 2.0 { 0.0 } else { 1.0 })],
            )]
        }),
        // The signal is 1 (no replica up) or nothing: both tiers fire on it; the quiet
        // thresholds are 1.
        row("dynalert_absent", 1.0, 1.0, |_| {
            vec![both(&format!("up{{{DYNALERT}}}"), Gauge(0.0))]
        })
        .thresholds((0.5, 0.5), (1.0, 1.0)),
        // Alerts below: 1 healthy replica, then none; the quiet tenant requires 0.
        row("dynalert_replicas_min", 1.0, 0.0, |v| {
            vec![input(
                &format!("up{{{DYNALERT}}}"),
                [Gauge(0.0), Gauge(if v >= 1.0 { 1.0 } else { 0.0 })],
            )]
        })
        .thresholds((1.5, 1.5), (0.0, 0.0)),
        row("dynalert_reload_failures", 1.0, 2.0, |v| {
            vec![input(
                &format!("dynalert_config_last_reload_successful{{{DYNALERT}}}"),
                [Gauge(0.0), Gauge(if v >= 2.0 { 0.0 } else { 1.0 })],
            )]
        }),
        // Each restart sets a new process start time.
        row("dynalert_restarts", 4.0, 8.0, |v| {
            let each = (v / 2.0) as u32;
            vec![both(
                &format!("process_start_time_seconds{{{DYNALERT}}}"),
                Steps(each, 1.7e9, 600.0),
            )]
        }),
    ]
}

fn table(pack: &str) -> Vec<Row> {
    match pack {
        "mariadb" => mariadb(),
        "redis" => redis(),
        "mongodb" => mongodb(),
        "elasticsearch" => elasticsearch(),
        "kubernetes" => kubernetes(),
        "platform" => platform(),
        other => panic!("no exporter table for pack {other}: add one here"),
    }
}

#[test]
fn every_key_of_every_pack_fires_on_its_exporters_real_series() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    assert_eq!(catalogue().len(), 6);
    for pack in catalogue() {
        let dir = tempfile::tempdir().unwrap();
        write_real_signal_tests(pack, &table(&pack.pack), dir.path());
        let (ok, output) = promtool_test(&promtool, dir.path());
        assert!(
            ok,
            "pack {}:\n{output}\n(files in {})",
            pack.pack,
            dir.keep().display()
        );
    }
}

/// Runs promtool on `dir`'s `tests.yml`; on failure the files are kept for a look.
fn assert_promtool_passes(promtool: &Path, dir: tempfile::TempDir, what: &str) {
    let (ok, output) = promtool_test(promtool, dir.path());
    assert!(ok, "{what}:\n{output}\n(files in {})", dir.keep().display());
}

fn with_owner(mut labels: BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels.insert("owner".into(), "team-a".into());
    labels.insert("tier".into(), "gold".into());
    labels
}

/// A dimensional key's critical tier on real cAdvisor series: per-container critical rows
/// win over the tenant-wide critical threshold in both directions, and containers without a
/// row fall back to it.
#[test]
fn a_dimensional_keys_critical_tier_fires_per_label_row_and_by_fallback() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let pack = pack("kubernetes");
    let dir = tempfile::tempdir().unwrap();
    write_rules(rendered_rules(pack, &RenderOptions::default()), dir.path());
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("_defaults.yaml"),
        dynalert_rules::defaults::defaults_yaml(&[pack]),
    )
    .unwrap();
    // app: no row, falls back to 95 (at 97: fires). cache: its own 85 (at 90: fires, where
    // the fallback would not). db: its own 99 (at 97: quiet, where the fallback would fire).
    // globex keeps the defaults (85 / 95) and runs at 80.
    let tenants = "tenants:\n  acme:\n    container_memory_usage: 50\n    \
         container_memory_usage_critical: 95\n    \
         \"container_memory_usage_critical{container='cache'}\": 85\n    \
         \"container_memory_usage_critical{container='db'}\": 99\n    \
         _metadata: {owner: team-a, tier: gold}\n  globex: {}\n";
    let mut series = served_series(
        pack,
        &conf,
        tenants,
        "dimensional critical",
        "dynalert",
        SAMPLES,
    );
    let limit = 536870912.0;
    let memory = |container: &str, percent: f64| {
        vec![
            input(
                &cadvisor("container_memory_working_set_bytes", container),
                [Gauge(percent / 100.0 * limit), Gauge(limit / 10.0)],
            ),
            both(
                &cadvisor("container_spec_memory_limit_bytes", container),
                Gauge(limit),
            ),
        ]
    };
    let acme: Vec<Input> = [("app", 97.0), ("cache", 90.0), ("db", 97.0)]
        .iter()
        .flat_map(|(c, p)| memory(c, *p))
        .collect();
    series.extend(input_series("kubernetes", "acme", "dynalert", &acme));
    series.extend(input_series(
        "kubernetes",
        "globex",
        "dynalert",
        &memory("app", 80.0),
    ));

    let key = "container_memory_usage";
    let alert = |severity: &str, container: &str| {
        with_owner(alert_labels(
            pack,
            key,
            severity,
            "acme",
            &[("container", container)],
        ))
    };
    let mut expected: Vec<Expected> = ["app", "cache", "db"]
        .iter()
        .map(|c| ("ContainerHighMemoryUsage".to_string(), alert("warning", c)))
        .collect();
    for c in ["app", "cache"] {
        expected.push((
            "ContainerHighMemoryUsageCritical".into(),
            alert("critical", c),
        ));
    }
    let checked = [
        "ContainerHighMemoryUsage".to_string(),
        "ContainerHighMemoryUsageCritical".to_string(),
    ];
    write_tests(
        vec![group(
            "per-container critical rows and fallback".into(),
            series,
            &checked,
            &expected,
        )],
        dir.path(),
    );
    assert_promtool_passes(&promtool, dir, "dimensional critical tier");
}

/// A platform `custom_alerts` entry declares the key `custom_<name>`; tenants set it and its
/// `_critical` tier like any key, and dynalert serves both as
/// `user_threshold{component="custom", metric="<name>"}` rows. No renderer turns custom
/// alerts into rules yet, so the rule here is the packs' own alert shape generated from the
/// custom alert's definition (as the model parsed it) over real mysqld_exporter series.
#[test]
fn a_custom_alerts_key_critical_tier_fires_at_its_own_threshold() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let base = pack("mariadb");
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(
        conf.join("_defaults.yaml"),
        dynalert_rules::defaults::defaults_yaml(&[base])
            + "custom_alerts:\n  - name: open_files\n    \
               expr: 'max by(tenant) (mysql_global_status_open_files)'\n    \
               op: '>'\n    for: 5m\n    \
               description: Files open on the busiest MariaDB instance\n",
    )
    .unwrap();
    let tenants = "tenants:\n  acme:\n    custom_open_files: 1000\n    \
         custom_open_files_critical: 4000\n    _metadata: {owner: team-a, tier: gold}\n  \
         globex:\n    custom_open_files: 8000\n    custom_open_files_critical: 9000\n";
    let thresholds = served_series(base, &conf, tenants, "custom alert", "dynalert", SAMPLES);
    assert!(
        thresholds.iter().any(|s| s.series.contains(
            r#"user_threshold{tenant="acme",component="custom",metric="open_files",severity="critical""#
        )),
        "dynalert serves no critical row for custom_open_files"
    );

    let model = dynalert_config::load_dir_with_keys(&conf, base.keys.keys().cloned()).unwrap();
    let custom = model
        .platforms
        .values()
        .find_map(|p| p.custom_alerts.get("open_files").cloned())
        .expect("the custom alert is in the model");
    let key = custom.key();
    let decl = KeyDecl {
        description: custom.description.clone().unwrap_or_default(),
        unit: String::new(),
        default: 0.0,
        default_critical: Some(0.0),
        signal: custom.expr.clone(),
        op: custom.op.clone(),
        dimension: None,
        dimension_label: None,
        alert: AlertDecl {
            name: "CustomOpenFiles".into(),
            for_: custom.for_.clone().unwrap_or_else(|| "0m".into()),
            summary: String::new(),
            description: String::new(),
        },
    };
    let custom_pack = Pack {
        pack: "custom".into(),
        description: "custom alerts".into(),
        exporter: "mysqld_exporter".into(),
        pseudo_tenant: None,
        keys: [(key.clone(), decl)].into(),
        groups: Vec::new(),
    };
    write_rules(
        rendered_rules(&custom_pack, &RenderOptions::default()),
        dir.path(),
    );

    let checked = [
        "CustomOpenFiles".to_string(),
        "CustomOpenFilesCritical".to_string(),
    ];
    let mut groups = Vec::new();
    // 2000 open files: acme's warning only; 5000: acme's critical too; globex never.
    for (open, critical) in [(2000.0, false), (5000.0, true)] {
        let mut series = thresholds.clone();
        let files = [input(
            "mysql_global_status_open_files",
            [Gauge(open), Gauge(10.0)],
        )];
        for tenant in ["acme", "globex"] {
            series.extend(input_series("mariadb", tenant, "dynalert", &files));
        }
        let labels = |severity| with_owner(alert_labels(&custom_pack, &key, severity, "acme", &[]));
        let mut expected = vec![(checked[0].clone(), labels("warning"))];
        if critical {
            expected.push((checked[1].clone(), labels("critical")));
        }
        groups.push(group(
            format!("{key} at {open}"),
            series,
            &checked,
            &expected,
        ));
    }
    write_tests(groups, dir.path());
    assert_promtool_passes(&promtool, dir, "custom alert");
}

/// The platform pack rendered for a deployment whose dynalert scrape job is not called
/// `dynalert` (`--exporter-job`): its alerts read that job's series, and the same series
/// under the default job name count as no dynalert at all.
#[test]
fn the_platform_pack_rendered_for_another_exporter_job_reads_that_job() {
    let Some(promtool) = require_binary("promtool") else {
        return;
    };
    let job = "dynalert-prod";
    let pack = pack("platform");
    let opts = RenderOptions {
        exporter_job: job.into(),
        ..Default::default()
    };
    let rules = rendered_rules(pack, &opts);
    for rule in rules.iter().flat_map(|g| &g.rules) {
        assert!(
            rule.expr.contains(&format!("job=\"{job}\""))
                && !rule.expr.contains("__EXPORTER_JOB__"),
            "{:?}",
            rule.expr
        );
        assert!(!rule.expr.contains("job=\"dynalert\""), "{:?}", rule.expr);
    }
    let dir = tempfile::tempdir().unwrap();
    write_rules(rules, dir.path());

    // The platform tenant with the pack's defaults, served by the renamed job.
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    std::fs::write(conf.join("_defaults.yaml"), "defaults: {}\n").unwrap();
    let mut body = String::new();
    for (k, d) in &pack.keys {
        body.push_str(&format!("    {k}: {}\n", common::number(d.default)));
        if let Some(c) = d.default_critical {
            body.push_str(&format!("    {k}_critical: {}\n", common::number(c)));
        }
    }
    let thresholds = served_series(
        pack,
        &conf,
        &format!("tenants:\n  platform:\n{body}"),
        "platform defaults",
        job,
        SAMPLES,
    );
    // Replica 0 is down; replica 1 is up, its last reload failed and it restarted 5 times.
    let data = [
        input(&format!("up{{{DYNALERT}}}"), [Gauge(0.0), Gauge(1.0)]),
        input(
            &format!("dynalert_config_last_reload_successful{{{DYNALERT}}}"),
            [Absent, Gauge(0.0)],
        ),
        input(
            &format!("process_start_time_seconds{{{DYNALERT}}}"),
            [Absent, Steps(5, 1.7e9, 600.0)],
        ),
    ];
    let checked: Vec<String> = pack
        .keys
        .values()
        .flat_map(|d| {
            let critical = d
                .default_critical
                .map(|_| format!("{}Critical", d.alert.name));
            std::iter::once(d.alert.name.clone()).chain(critical)
        })
        .collect();
    let fired = |names: &[(&str, &str)]| -> Vec<Expected> {
        names
            .iter()
            .map(|(alert, severity)| {
                let key = pack
                    .keys
                    .iter()
                    .find(|(_, d)| alert.starts_with(&d.alert.name))
                    .unwrap()
                    .0;
                (
                    alert.to_string(),
                    alert_labels(pack, key, severity, "platform", &[]),
                )
            })
            .collect()
    };
    let mut on_job = thresholds.clone();
    on_job.extend(input_series("platform", "platform", job, &data));
    let mut on_default_name = thresholds;
    on_default_name.extend(input_series("platform", "platform", "dynalert", &data));
    let groups = vec![
        group(
            format!("series of job {job}"),
            on_job,
            &checked,
            &fired(&[
                ("DynalertReplicaDown", "warning"),
                ("DynalertTooFewReplicas", "warning"),
                ("DynalertConfigReloadFailing", "warning"),
                ("DynalertFrequentRestarts", "warning"),
            ]),
        ),
        group(
            "the same series under job dynalert".into(),
            on_default_name,
            &checked,
            &fired(&[
                ("DynalertAbsent", "warning"),
                ("DynalertAbsentCritical", "critical"),
                ("DynalertTooFewReplicas", "warning"),
            ]),
        ),
    ];
    write_tests(groups, dir.path());
    assert_promtool_passes(&promtool, dir, "platform pack with --exporter-job");
}
