//! What the exporters expose, per pack: one [`Row`] per key with the series two instances
//! of a tenant serve for a given value of the key's signal. Names and labels:
//! - mysqld_exporter 0.14 (Debian) scraping MariaDB 10.11, and redis_exporter 1.45 (Debian)
//!   scraping Redis 7: checked against the running programs (including a MariaDB replica's
//!   `mysql_slave_status_*` labels, `--collect.info_schema.innodb_metrics` and
//!   redis_exporter `--check-keys` output);
//! - percona/mongodb_exporter: `mongodb_ss_*` with the `conn_type`, `count_type` and
//!   `op_type` labels (opLatencies renamed by its special conversions), `mongodb_rs_members_*`
//!   with `member_idx` / `member_state`, `mongodb_dbstats_*` with `database`;
//! - prometheus-community/elasticsearch_exporter: node series labelled `cluster, host, name`
//!   and the `es_*_node` roles, `elasticsearch_cluster_health_status{color}`, index series
//!   `{cluster, index}`;
//! - cAdvisor (kubelet `/metrics/cadvisor`) and kube-state-metrics v2 (honor_labels);
//! - dynalert's own `/metrics` and Prometheus' `up` for the platform pack.
//!
//! Each table also serves series the signal must ignore (the pod cgroup and pause container,
//! `conn_type="available"`, `op_type="commands"`, other indices and keys): a selector that
//! is too wide fires for them and fails the tests.

use super::real::Shape::{Absent, Counter, Gauge, Linear, Steps};
use super::real::{Input, Row, both, input, row};

/// `up` of a 0/1 gauge for two instances: `level` percent of them down.
pub fn up_down(metric: &str, percent_down: f64) -> Vec<Input> {
    let down = (percent_down / 50.0).round() as usize;
    vec![input(
        metric,
        [
            Gauge(if down >= 1 { 0.0 } else { 1.0 }),
            Gauge(if down >= 2 { 0.0 } else { 1.0 }),
        ],
    )]
}

pub fn mariadb() -> Vec<Row> {
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

pub fn redis() -> Vec<Row> {
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

pub fn mongodb() -> Vec<Row> {
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
pub const ES_NODE: &str = r#"cluster="$tenant-es",host="10.0.0.$i",name="$tenant-es-$i",es_client_node="true",es_data_node="true",es_ingest_node="true",es_master_node="true""#;

pub fn es_node(metric: &str, extra: &str) -> String {
    let extra = if extra.is_empty() {
        String::new()
    } else {
        format!("{extra},")
    };
    format!("{metric}{{{extra}{ES_NODE}}}")
}

pub fn elasticsearch() -> Vec<Row> {
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
pub const CADVISOR: &str = r#"namespace="$tenant",pod="app-7c9d8-$i",id="/kubepods/burstable/pod$i",image="registry.example.com/app:1.4",name="k8s_app_app-7c9d8-$i",instance="node-$i",job="kubelet",metrics_path="/metrics/cadvisor",endpoint="https-metrics",service="kubelet""#;
/// kube-state-metrics' labels for the same pod (honor_labels keeps `namespace`).
pub const KSM: &str = r#"namespace="$tenant",pod="app-7c9d8-$i",uid="uid-$i",instance="10.1.0.5:8080",job="kube-state-metrics""#;

pub fn cadvisor(metric: &str, container: &str) -> String {
    format!(r#"{metric}{{container="{container}",{CADVISOR}}}"#)
}

pub fn ksm(metric: &str, extra: &str) -> String {
    format!("{metric}{{{extra}{KSM}}}")
}

pub fn kubernetes() -> Vec<Row> {
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

pub const DYNALERT: &str = r#"job="$job",instance="dynalert-$i:9090""#;

pub fn platform() -> Vec<Row> {
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
        row("dynalert_reload_stalled", 1.0, 2.0, |v| {
            vec![input(
                &format!("dynalert_reload_stalled{{{DYNALERT}}}"),
                [Gauge(1.0), Gauge(if v >= 2.0 { 1.0 } else { 0.0 })],
            )]
        }),
        row("dynalert_store_down", 1.0, 2.0, |v| {
            vec![input(
                &format!("dynalert_store_up{{{DYNALERT}}}"),
                [Gauge(0.0), Gauge(if v >= 2.0 { 0.0 } else { 1.0 })],
            )]
        }),
        // The oldest replica's age; the other one just read its store.
        row("dynalert_model_age", 1800.0, 3600.0, |v| {
            vec![input(
                &format!("dynalert_model_age_seconds{{{DYNALERT}}}"),
                [Gauge(v), Gauge(0.25)],
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

pub fn table(pack: &str) -> Vec<Row> {
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
