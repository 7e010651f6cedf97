//! The markdown section of an API results file: a row per store and throughput run, a row per
//! store and write → `/metrics` run, then the targets.

use std::fmt::Write as _;

use super::{KEY, LAG_TIMEOUT, Lag, POLL, Results, StoreResult, Throughput};
use crate::support::{mib, outcome, quantile, seconds, table};

// The targets of the issue, in seconds.
const TARGET_WRITES_PER_SEC: f64 = 1000.0;
const TARGET_WRITE_P99: f64 = 0.02;
const TARGET_LAG_P99: f64 = 0.2;
const TARGET_REPLICA_LAG_P99: f64 = 1.0;

pub fn markdown(r: &Results) -> String {
    let a = &r.args;
    let stores = [("SQLite", &r.sqlite), ("PostgreSQL", &r.postgres)];
    let stores: Vec<_> = stores
        .into_iter()
        .filter_map(|(n, s)| Some((n, s.as_ref()?)))
        .collect();
    let mut md = r.meta.markdown("Management API benchmark");
    let postgres = r.postgres_version.as_deref().unwrap_or("not run");
    let _ = writeln!(
        md,
        "- stores: SQLite (a file in the temp directory, WAL); PostgreSQL {postgres} (a fresh \
         local cluster, default settings)\n- workload: {} tenants × {} keys imported with \
         `--import`; `PATCH /api/v1/tenants/{{tenant}}` of `{KEY}` with a new value each time, \
         by {} clients with one keep-alive connection each; {} s warm-up, {} s measured; paced: \
         {} writes/s offered, each client one write every {}/{} s on a fixed schedule\n- write → \
         `/metrics`: {} writes per row, `/metrics` (plain) polled every {} ms, a new connection \
         per poll; a write not seen within {} s counts as that; \"under load\": the clients of \
         \"own tenants\" writing meanwhile\n",
        a.tenants,
        a.keys,
        a.clients,
        a.warmup_secs,
        a.measure_secs,
        a.paced_rate,
        a.clients,
        a.paced_rate,
        a.lag_writes,
        POLL.as_millis(),
        LAG_TIMEOUT.as_secs()
    );
    let mut rows = Vec::new();
    for (store, s) in &stores {
        let runs = [
            ("own tenants", &s.own),
            ("paced", &s.paced),
            ("one tenant", &s.same),
        ];
        for (run, t) in runs {
            let mut row = vec![format!("{store}, {run}"), format!("{:.0}", t.per_sec)];
            row.extend([0.5, 0.9, 0.99, 1.0].map(|q| seconds(quantile(&t.latencies, q))));
            row.extend([t.errors.count.to_string(), cpu_per_write(t)]);
            rows.push(row);
        }
    }
    let header = "PATCH|writes/s|p50|p90|p99|max|errors|CPU per write".split('|');
    md += &table(&header.collect::<Vec<_>>(), &rows);
    rows.clear();
    for (store, s) in &stores {
        let replicas = s.replicas.as_ref().into_iter();
        let replicas = replicas.flat_map(|(i, l)| [("replicas, idle", i), ("replicas, loaded", l)]);
        let runs = [("idle", &s.lag_idle), ("under load", &s.lag_loaded)];
        for (run, l) in runs.into_iter().chain(replicas) {
            let mut row = vec![format!("{store}, {run}")];
            row.extend([0.5, 0.99, 1.0].map(|q| seconds(quantile(&l.lags, q))));
            let cut = if l.cut_short {
                " (stopped after 60 s)"
            } else {
                ""
            };
            let (writes, timeouts, errors) = (l.lags.len(), l.timeouts, l.errors.count);
            row.push(format!("{writes} / {timeouts} / {errors}{cut}"));
            let load = l
                .load
                .map(|(rate, errors)| format!("{rate:.0}/s, {errors} errors"));
            row.push(load.unwrap_or_else(|| "–".into()));
            rows.push(row);
        }
    }
    let header = "write → `/metrics`|p50|p99|max|writes / timeouts / errors|load".split('|');
    md += &format!("\n{}\n", table(&header.collect::<Vec<_>>(), &rows));
    for (store, s) in &stores {
        let rss = s
            .memory
            .iter()
            .map(|m| format!("{} (peak {})", mib(m.rss), mib(m.peak)));
        let rss = rss.collect::<Vec<_>>().join(", ");
        let (ready, poll) = (
            seconds(s.ready),
            seconds(quantile(&s.lag_idle.scrapes, 0.5)),
        );
        let _ = write!(
            md,
            "- {store}: start → ready {ready} (`--import` included); "
        );
        let _ = writeln!(md, "`/metrics` poll median {poll}; RSS at the end {rss}");
    }
    md + &targets(&stores)
}

/// CPU seconds of a throughput run per write: dynalert's, and PostgreSQL's if it ran.
fn cpu_per_write(run: &Throughput) -> String {
    let per_write = |s: f64| format!("{:.2} ms", s * 1000.0 / run.latencies.len().max(1) as f64);
    let (server, postgres) = (per_write(run.cpu.server), per_write(run.cpu.postgres));
    if run.cpu.postgres > 0.0 {
        format!("{server} + postgres {postgres}")
    } else {
        server
    }
}

/// The targets of the issue and how each store fared.
fn targets(stores: &[(&str, &StoreResult)]) -> String {
    let verdicts = |target: f64, figure: &dyn Fn(&StoreResult) -> Option<f64>| {
        let met = |(name, s): &(&str, &StoreResult)| {
            Some(format!("{name} {}", outcome(figure(s)? <= target)))
        };
        stores.iter().filter_map(met).collect::<Vec<_>>().join(", ")
    };
    let p99 = |t: &Throughput| quantile(&t.latencies, 0.99);
    let lag = |l: &Lag| quantile(&l.lags, 0.99);
    let sqlite = stores.iter().find(|(name, _)| *name == "SQLite");
    let rate = sqlite.map(|(_, s)| outcome(s.own.per_sec >= TARGET_WRITES_PER_SEC));
    let rate = rate.unwrap_or("not run");
    format!(
        "\nTargets: ≥ {TARGET_WRITES_PER_SEC} writes/s on SQLite (own tenants): {rate}; write p99 \
         ≤ {} (own tenants): {}; paced: {}; write → `/metrics` p99 ≤ {} (one replica, idle and \
         under load): {}; ≤ {} across two replicas: {}.\n",
        seconds(TARGET_WRITE_P99),
        verdicts(TARGET_WRITE_P99, &|s| Some(p99(&s.own))),
        verdicts(TARGET_WRITE_P99, &|s| Some(p99(&s.paced))),
        seconds(TARGET_LAG_P99),
        verdicts(TARGET_LAG_P99, &|s| Some(
            lag(&s.lag_idle).max(lag(&s.lag_loaded))
        )),
        seconds(TARGET_REPLICA_LAG_P99),
        verdicts(TARGET_REPLICA_LAG_P99, &|s| s
            .replicas
            .as_ref()
            .map(|(i, l)| lag(i).max(lag(l)))),
    )
}
