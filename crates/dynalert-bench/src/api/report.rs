//! The markdown section of an API results file.

use std::fmt::Write as _;

use super::{KEY, LAG_TIMEOUT, Lag, POLL, Results, StoreResult, Throughput};
use crate::support::{mib, outcome, quantile, seconds, table};

// The targets of the issue, in seconds.
const TARGET_WRITES_PER_SEC: f64 = 1000.0;
const TARGET_WRITE_P99: f64 = 0.02;
const TARGET_LAG_P99: f64 = 0.2;
const TARGET_REPLICA_LAG_P99: f64 = 1.0;

/// The upper bound of a write → `/metrics` quantile, and its lower bound.
pub fn bounded(lag: &Lag, q: f64) -> String {
    let (high, low) = (quantile(&lag.lags, q), quantile(&lag.lows, q));
    format!("{} (≥ {})", seconds(high), seconds(low))
}

/// CPU seconds of a throughput run, and per write for the servers.
fn cpu_cell(run: &Throughput) -> String {
    let (cpu, writes) = (&run.cpu, run.latencies.len().max(1) as f64);
    let per_write = |s: f64| format!("{s:.1} s ({:.2} ms/write)", s * 1000.0 / writes);
    let mut text = format!("dynalert {}", per_write(cpu.server));
    if cpu.postgres > 0.0 {
        let _ = write!(text, ", postgres {}", per_write(cpu.postgres));
    }
    let _ = write!(text, ", clients {:.1} s", cpu.clients);
    text
}

/// `≤ 20.0 ms: SQLite met, PostgreSQL **missed**`, naming only the stores measured.
fn at_most(values: [Option<f64>; 2], target: f64) -> String {
    let stores = ["SQLite", "PostgreSQL"].into_iter().zip(values);
    let outcomes = stores.filter_map(|(name, v)| Some(format!("{name} {}", outcome(v? <= target))));
    format!(
        "≤ {}: {}",
        seconds(target),
        outcomes.collect::<Vec<_>>().join(", ")
    )
}

type Pick<T> = fn(&StoreResult) -> Option<&T>;

pub fn markdown(r: &Results) -> String {
    let a = &r.args;
    let mut md = r.meta.markdown("Management API benchmark");
    let mut stores = Vec::new();
    if r.sqlite.is_some() {
        stores.push("SQLite (a file in the temp directory, WAL)".to_owned());
    }
    if let Some(version) = &r.postgres_version {
        stores.push(format!(
            "PostgreSQL {version} (a fresh local cluster, default settings)"
        ));
    }
    let _ = writeln!(
        md,
        "- stores: {}\n- workload: {} tenants × {} keys imported with `--import`; `PATCH \
         /api/v1/tenants/{{tenant}}` of `{KEY}` with a new value each time, by {} clients with \
         one keep-alive connection each; {} s warm-up, {} s measured; paced: each client one \
         write every {}/{} s\n- write → `/metrics`: {} writes per row, `/metrics` (plain) \
         polled every {} ms, a new connection per poll; a write not seen within {} s counts as \
         that\n",
        stores.join("; "),
        a.tenants,
        a.keys,
        a.clients,
        a.warmup_secs,
        a.measure_secs,
        a.clients,
        a.paced_rate,
        a.lag_writes,
        POLL.as_millis(),
        LAG_TIMEOUT.as_secs()
    );
    let both = [r.sqlite.as_ref(), r.postgres.as_ref()];
    let dash = || "–".to_owned();
    let mut rows = Vec::new();
    let mut row = |label: String, [s, p]: [String; 2], target: String| {
        rows.push(vec![label, s, p, target]);
    };
    let runs: [(String, Pick<Throughput>, bool); 3] = [
        (
            format!(
                "{} clients, each on its own tenants, as fast as answered",
                a.clients
            ),
            |r| Some(&r.own),
            true,
        ),
        (
            format!(
                "{} clients, each on its own tenants, {:.0} writes/s offered (paced)",
                a.clients, a.paced_rate
            ),
            |r| Some(&r.paced),
            true,
        ),
        (
            format!("{} clients, all on one tenant", a.clients),
            |r| Some(&r.same),
            false,
        ),
    ];
    let available =
        a.measure_secs as usize * std::thread::available_parallelism().map_or(1, |n| n.get());
    for (i, (label, pick, targets)) in runs.into_iter().enumerate() {
        let cell = |f: &dyn Fn(&Throughput) -> String| {
            both.map(|r| r.and_then(pick).map_or_else(|| "not run".into(), f))
        };
        let q = |q: f64| both.map(|r| r.and_then(pick).map(|t| quantile(&t.latencies, q)));
        let sqlite = both[0].and_then(pick).filter(|_| i == 0);
        let rate = sqlite.map_or_else(dash, |t| {
            let met = outcome(t.per_sec >= TARGET_WRITES_PER_SEC);
            format!("≥ {TARGET_WRITES_PER_SEC} writes/s on SQLite: {met}")
        });
        row(
            format!("PATCH throughput, {label}"),
            cell(&|t| format!("{:.0} writes/s", t.per_sec)),
            rate,
        );
        row(
            "… latency p50 / p90".into(),
            cell(&|t| {
                format!(
                    "{} / {}",
                    seconds(quantile(&t.latencies, 0.5)),
                    seconds(quantile(&t.latencies, 0.9))
                )
            }),
            dash(),
        );
        row(
            "… latency p99".into(),
            cell(&|t| seconds(quantile(&t.latencies, 0.99))),
            if targets {
                at_most(q(0.99), TARGET_WRITE_P99)
            } else {
                dash()
            },
        );
        row(
            "… latency max".into(),
            cell(&|t| seconds(quantile(&t.latencies, 1.0))),
            dash(),
        );
        row(
            "… errors (non-200, warm-up included)".into(),
            cell(&|t| t.errors.count.to_string()),
            "0".into(),
        );
        row(
            format!("… CPU seconds used while measured (of {available} available), per write"),
            cell(&cpu_cell),
            dash(),
        );
    }
    let lags: [(String, Pick<Lag>, f64); 4] = [
        (
            "one replica, idle".into(),
            |r| Some(&r.lag_idle),
            TARGET_LAG_P99,
        ),
        (
            format!("one replica, under the {}-client load", a.clients),
            |r| Some(&r.lag_loaded),
            TARGET_LAG_P99,
        ),
        (
            "two replicas (write on one, read the other), idle".into(),
            |r| r.replicas.as_ref().map(|l| &l.0),
            TARGET_REPLICA_LAG_P99,
        ),
        (
            format!(
                "two replicas, under the {}-client load on the written one",
                a.clients
            ),
            |r| r.replicas.as_ref().map(|l| &l.1),
            TARGET_REPLICA_LAG_P99,
        ),
    ];
    for (label, pick, target) in lags {
        let lag = both.map(|r| r.and_then(pick));
        let cell = |f: &dyn Fn(&Lag) -> String| lag.map(|l| l.map_or_else(dash, f));
        row(
            format!("write → `/metrics`, {label}: p50"),
            cell(&|l| bounded(l, 0.5)),
            dash(),
        );
        let p99 = lag.map(|l| l.map(|l| quantile(&l.lags, 0.99)));
        row(
            "… p99".into(),
            cell(&|l| bounded(l, 0.99)),
            at_most(p99, target),
        );
        let max = |l: &Lag| {
            let cut = if l.cut_short {
                " (stopped after 60 s)"
            } else {
                ""
            };
            let max = seconds(quantile(&l.lags, 1.0));
            format!(
                "{max}; {} writes, {} timed out, {} errors{cut}",
                l.lags.len(),
                l.timeouts,
                l.errors.count
            )
        };
        row("… max".into(), cell(&max), dash());
        if lag.iter().flatten().any(|l| l.load.is_some()) {
            let load = |l: &Lag| {
                l.load.map_or_else(dash, |(rate, errors)| {
                    format!("{rate:.0} writes/s, {errors} errors")
                })
            };
            row("… background load meanwhile".into(), cell(&load), dash());
        }
    }
    let cell =
        |f: &dyn Fn(&StoreResult) -> String| both.map(|r| r.map_or_else(|| "not run".into(), f));
    row(
        "`/metrics` poll (plain), median".into(),
        cell(&|r| seconds(quantile(&r.lag_idle.scrapes, 0.5))),
        dash(),
    );
    row(
        "start → ready, `--import` included".into(),
        cell(&|r| seconds(r.ready)),
        dash(),
    );
    let memory = |r: &StoreResult| {
        let each: Vec<String> = r
            .memory
            .iter()
            .map(|m| format!("{} ({})", mib(m.rss), mib(m.peak)))
            .collect();
        each.join("; ")
    };
    row(
        "RSS at the end, VmRSS (peak VmHWM)".into(),
        cell(&memory),
        dash(),
    );
    md.push_str(&table(&["figure", "SQLite", "PostgreSQL", "target"], &rows));
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_name_each_store() {
        assert_eq!(
            at_most([Some(0.01), Some(0.03)], 0.02),
            "≤ 20.0 ms: SQLite met, PostgreSQL **missed**"
        );
        assert_eq!(
            at_most([None, Some(0.003)], 0.02),
            "≤ 20.0 ms: PostgreSQL met"
        );
    }
}
