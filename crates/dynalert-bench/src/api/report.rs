//! The markdown section of an API results file.

use std::fmt::Write as _;

use super::{KEY, LAG_TIMEOUT, Lag, Results, StoreResult, Throughput};
use crate::support::{mib, quantile};

// The targets of the issue.
const TARGET_WRITES_PER_SEC: f64 = 1000.0;
const TARGET_WRITE_P99_MS: f64 = 20.0;
const TARGET_LAG_P99_MS: f64 = 200.0;
const TARGET_REPLICA_LAG_P99_MS: f64 = 1000.0;

pub fn ms(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.2} s")
    } else {
        format!("{:.2} ms", seconds * 1000.0)
    }
}

/// The upper bound of a write → `/metrics` quantile, and its lower bound.
pub fn bounded(lag: &Lag, q: f64) -> String {
    format!(
        "{} (≥ {})",
        ms(quantile(&lag.lags, q)),
        ms(quantile(&lag.lows, q))
    )
}

/// CPU seconds of a throughput run, and per write for the servers.
pub fn cpu_cell(run: &Throughput) -> String {
    let (cpu, writes) = (&run.cpu, run.latencies.len().max(1) as f64);
    let per_write = |s: f64| format!("{s:.1} s ({:.2} ms/write)", s * 1000.0 / writes);
    let mut text = format!("dynalert {}", per_write(cpu.server));
    if cpu.postgres > 0.0 {
        let _ = write!(text, ", postgres {}", per_write(cpu.postgres));
    }
    let _ = write!(text, ", clients {:.1} s", cpu.clients);
    text
}

/// `≥ 1000 writes/s on SQLite: met`, or `missed` in bold.
fn at_least(value: Option<f64>, target: f64, unit: &str) -> String {
    let outcome = match value {
        Some(v) if v >= target => "met",
        Some(_) => "**missed**",
        None => "not measured",
    };
    format!("≥ {target} {unit}: {outcome}")
}

/// `≤ 20 ms: SQLite met, PostgreSQL **missed**`, naming only the stores measured.
fn at_most_both(sqlite: Option<f64>, postgres: Option<f64>, target: f64, unit: &str) -> String {
    let outcomes: Vec<String> = [("SQLite", sqlite), ("PostgreSQL", postgres)]
        .into_iter()
        .filter_map(|(name, v)| {
            Some(format!(
                "{name} {}",
                if v? <= target { "met" } else { "**missed**" }
            ))
        })
        .collect();
    if outcomes.is_empty() {
        format!("≤ {target} {unit}")
    } else {
        format!("≤ {target} {unit}: {}", outcomes.join(", "))
    }
}

pub fn markdown(r: &Results) -> String {
    let args = &r.args;
    let mut md = r.meta.markdown("Management API benchmark");
    let _ = writeln!(md, "- dynalert: {}, commit {}", r.version, r.commit);
    let mut stores = Vec::new();
    if r.sqlite.is_some() {
        stores.push("SQLite (a file in the temp directory, WAL)".to_owned());
    }
    if let Some(version) = &r.postgres_version {
        stores.push(format!(
            "{version} (a fresh local cluster, default settings: fsync and synchronous_commit on)"
        ));
    }
    let _ = writeln!(
        md,
        "- stores: {}\n- workload: {} tenants × {} keys imported with `--import`; `PATCH \
         /api/v1/tenants/{{tenant}}` of `{KEY}` with a new value each time, by {} clients with \
         one keep-alive connection each; {} s warm-up, {} s measured\n- write → `/metrics`: {} \
         writes per row, `/metrics` (plain) polled every {} ms, a new connection per poll\n",
        stores.join("; "),
        args.tenants,
        args.keys,
        args.clients,
        args.warmup_secs,
        args.measure_secs,
        args.lag_writes,
        args.poll_ms
    );
    md.push_str("| figure | SQLite | PostgreSQL | target |\n|---|---|---|---|\n");
    let (s, p) = (r.sqlite.as_ref(), r.postgres.as_ref());
    let mut row = |figure: &str, cells: [String; 2], target: String| {
        let _ = writeln!(md, "| {figure} | {} | {} | {target} |", cells[0], cells[1]);
    };
    let both = |f: &dyn Fn(&StoreResult) -> String| {
        [s, p].map(|r| r.map_or_else(|| "not run".to_owned(), f))
    };
    let none = || "–".to_owned();
    type Pick = fn(&StoreResult) -> &Throughput;
    let runs: [(String, Pick, bool, bool); 3] = [
        (
            format!(
                "{} clients, each on its own tenants, as fast as answered",
                args.clients
            ),
            |r| &r.own,
            true,
            true,
        ),
        (
            format!(
                "{} clients, each on its own tenants, {:.0} writes/s offered (paced)",
                args.clients, args.paced_rate
            ),
            |r| &r.paced,
            false,
            true,
        ),
        (
            format!("{} clients, all on one tenant", args.clients),
            |r| &r.same,
            false,
            false,
        ),
    ];
    for (label, pick, throughput_target, latency_target) in runs {
        let q = |r: &StoreResult, q: f64| quantile(&pick(r).latencies, q);
        let target = at_least(
            s.map(|r| pick(r).per_sec),
            TARGET_WRITES_PER_SEC,
            "writes/s on SQLite",
        );
        row(
            &format!("PATCH throughput, {label}"),
            both(&|r| format!("{:.0} writes/s", pick(r).per_sec)),
            if throughput_target { target } else { none() },
        );
        row(
            "… latency p50 / p90",
            both(&|r| format!("{} / {}", ms(q(r, 0.5)), ms(q(r, 0.9)))),
            none(),
        );
        let p99 = |r: Option<&StoreResult>| r.map(|r| q(r, 0.99) * 1000.0);
        let target = at_most_both(p99(s), p99(p), TARGET_WRITE_P99_MS, "ms");
        row(
            "… latency p99",
            both(&|r| ms(q(r, 0.99))),
            if latency_target { target } else { none() },
        );
        row("… latency max", both(&|r| ms(q(r, 1.0))), none());
        row(
            "… errors (non-200, warm-up included)",
            both(&|r| pick(r).errors.to_string()),
            "0".to_owned(),
        );
        let available = args.measure_secs as usize
            * std::thread::available_parallelism().map_or(1, |n| n.get());
        row(
            &format!("… CPU seconds used while measured (of {available} available), per write"),
            both(&|r| cpu_cell(pick(r))),
            none(),
        );
    }
    let replicas = p.and_then(|r| r.replicas.as_ref());
    let lag_rows: [(String, Option<&Lag>, Option<&Lag>, f64); 4] = [
        (
            "one replica, idle".to_owned(),
            s.map(|r| &r.lag_idle),
            p.map(|r| &r.lag_idle),
            TARGET_LAG_P99_MS,
        ),
        (
            format!("one replica, under the {}-client load", args.clients),
            s.map(|r| &r.lag_loaded),
            p.map(|r| &r.lag_loaded),
            TARGET_LAG_P99_MS,
        ),
        (
            "two replicas (write on one, read the other), idle".to_owned(),
            None,
            replicas.map(|(idle, _)| idle),
            TARGET_REPLICA_LAG_P99_MS,
        ),
        (
            format!(
                "two replicas, under the {}-client load on the written one",
                args.clients
            ),
            None,
            replicas.map(|(_, loaded)| loaded),
            TARGET_REPLICA_LAG_P99_MS,
        ),
    ];
    for (label, sl, pl, target_ms) in lag_rows {
        let show = |f: &dyn Fn(&Lag) -> String| [sl, pl].map(|l| l.map_or_else(none, f));
        row(
            &format!("write → `/metrics`, {label}: p50"),
            show(&|l| bounded(l, 0.5)),
            none(),
        );
        let p99 = |l: Option<&Lag>| l.map(|l| quantile(&l.lags, 0.99) * 1000.0);
        row(
            "… p99",
            show(&|l| bounded(l, 0.99)),
            at_most_both(p99(sl), p99(pl), target_ms, "ms"),
        );
        let max = |l: &Lag| {
            let cut = if l.cut_short {
                " (stopped at --lag-max-secs)"
            } else {
                ""
            };
            let (max, n) = (ms(quantile(&l.lags, 1.0)), l.lags.len());
            format!(
                "{max}; {n} writes, {} timed out, {} errors{cut}",
                l.timeouts, l.errors
            )
        };
        row("… max", show(&max), none());
        if [sl, pl].iter().flatten().any(|l| l.load.is_some()) {
            let load = |l: &Lag| {
                l.load.map_or_else(none, |(rate, errors)| {
                    format!("{rate:.0} writes/s, {errors} errors")
                })
            };
            row("… background load meanwhile", show(&load), none());
        }
    }
    row(
        "`/metrics` poll (plain), median",
        both(&|r| ms(quantile(&r.lag_idle.scrapes, 0.5))),
        none(),
    );
    row(
        "start → ready, `--import` included",
        both(&|r| ms(r.ready)),
        none(),
    );
    let memory = |r: &StoreResult| {
        let each: Vec<String> = r
            .memory
            .iter()
            .map(|m| format!("{} ({})", mib(m.rss_kib), mib(m.hwm_kib)))
            .collect();
        each.join("; ")
    };
    row("RSS at the end, VmRSS (peak VmHWM)", both(&memory), none());
    let _ = write!(
        md,
        "\nLatencies are measured by the clients on 127.0.0.1, from sending a request to the \
         last byte of its response; a paced write from when it was due (each client sends one \
         every {clients}/{rate} s on a fixed schedule, so a slow answer delays the next writes \
         and that wait counts in their latency). \"As fast as answered\" runs the server at \
         saturation: with {clients} clients always waiting, its mean latency is {clients} ÷ \
         throughput. Throughput counts the 200s of writes sent and answered within the measured \
         period. A write's time to `/metrics` runs from its 200 to the sending of the first \
         `/metrics` request whose response has the new value (the server takes its snapshot as \
         a request arrives): an upper bound; in brackets the same quantile up to the last \
         request that did not have it yet, a lower bound. Polls start {poll} ms apart or back \
         to back when a poll takes longer (row `/metrics` poll). A write not seen within \
         {timeout} s counts as {timeout} s. CPU seconds come from `/proc/<pid>/stat`: dynalert, \
         all `postgres` processes, and the clients (the dynalert-bench process), all sharing \
         the machine's CPUs. Start → ready is polled every 50 ms. RSS is the dynalert \
         process's (both replicas' on PostgreSQL, the second one started for the replica rows \
         only).\n",
        clients = args.clients,
        rate = args.paced_rate,
        poll = args.poll_ms,
        timeout = LAG_TIMEOUT.as_secs(),
    );
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_name_each_store() {
        assert_eq!(
            at_most_both(Some(10.0), Some(30.0), 20.0, "ms"),
            "≤ 20 ms: SQLite met, PostgreSQL **missed**"
        );
        assert_eq!(
            at_most_both(None, Some(3.0), 20.0, "ms"),
            "≤ 20 ms: PostgreSQL met"
        );
        assert_eq!(
            at_least(Some(900.0), 1000.0, "writes/s"),
            "≥ 1000 writes/s: **missed**"
        );
    }
}
