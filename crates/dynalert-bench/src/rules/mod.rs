//! `rules`: the rule packs measured on a real Prometheus, side by side with the equivalent
//! hand-written per-tenant rules, at several tenant counts, all on 127.0.0.1.
//!
//! Per tenant count N: a synthetic exporter ([`synthetic`], served from this process) serves
//! the raw exporter series the packs read for N tenants × 2 instances; `dynalert serve` serves
//! a conf.d for the N tenants; the per-tenant variant is generated from the threshold rows it
//! actually serves ([`variants`]); then one Prometheus per variant (`baseline` without rules,
//! `packs`, `per-tenant`, with `--floor` the packs' signals against their defaults, with
//! `--extra` any rule files) scrapes the same two targets, one after the other, each alone on
//! the benchmark from its start to its last reload ([`measure`]). `--repeat N` measures each variant N times, the order reversed every other
//! time so that a drift of the machine does not always fall on the same variant; [`report`]
//! renders the tables from the repetitions.

mod keys;
mod measure;
mod report;
mod synthetic;
mod variants;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, ensure};
use dynalert_rules::defaults::defaults_yaml;
use dynalert_testkit::ScrapeTarget;
use serde::{Deserialize, Serialize};

use crate::support::{self, Meta, Output, Server, count_series};
use keys::Key;
use measure::{AlertId, CpuWatch, Instance, Rules};
use synthetic::{Synthetic, SyntheticExporter};
use variants::Served;

pub use report::markdown;

#[derive(clap::Args, Clone, Serialize, Deserialize)]
pub struct Args {
    /// Tenant counts, one round each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    tenants: Vec<usize>,
    /// Packs to compare (comma-separated). The synthetic exporter serves mariadb and redis.
    #[arg(long, value_delimiter = ',', default_value = "mariadb,redis")]
    packs: Vec<String>,
    /// Length of the measurement window of each Prometheus, after the warm-up.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// `scrape_interval` and `evaluation_interval` of every Prometheus, in seconds.
    #[arg(long, default_value_t = 5)]
    interval_secs: u64,
    /// `POST /-/reload` requests per Prometheus, after the measurement window.
    #[arg(long, default_value_t = 3)]
    reloads: usize,
    /// How long each Prometheus runs before it is measured: `rate(…[5m])` reads its full
    /// window only after 5 minutes of samples (before, it reads fewer samples).
    #[arg(long, default_value_t = 300)]
    history_secs: u64,
    /// Measure every variant of a round this many times, each time with a new Prometheus (in
    /// reverse order every other time), and report the medians next to each repetition's own
    /// ratios: one Prometheus measured once can move by half between runs on a shared machine.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Directory for a CPU profile of each Prometheus over 15 s after its window, as
    /// `<tenants>[-r<repetition>]-<variant>.pprof` (read it with `go tool pprof`).
    #[arg(long, value_name = "DIR")]
    pprof: Option<PathBuf>,
    /// Also measure the floor: the packs' signals against their defaults, one rule per alert
    /// for all tenants, no threshold lookup, maintenance or metadata; what no layout of the
    /// packs can go below.
    #[arg(long)]
    floor: bool,
    /// One more variant: a name and a glob of rule files, e.g. `--extra lean=/tmp/lean/*.yml`
    /// (repeatable).
    #[arg(long, value_name = "NAME=GLOB")]
    extra: Vec<String>,
    #[command(flatten)]
    #[serde(skip)]
    pub output: Output,
}

pub const BASELINE: &str = "baseline";
pub const PACKS: &str = "packs";
pub const PER_TENANT: &str = "per-tenant";
const FLOOR: &str = "floor";

/// The packs whose raw exporter series the synthetic exporter serves.
const SUPPORTED_PACKS: [&str; 2] = ["mariadb", "redis"];

#[derive(Serialize, Deserialize)]
pub struct Results {
    meta: Meta,
    args: Args,
    prometheus_version: String,
    keys: usize,
    alerts: usize,
    recording: usize,
    rounds: Vec<Round>,
}

#[derive(Serialize, Deserialize)]
pub struct Round {
    tenants: usize,
    /// `/proc/loadavg` after the measurements.
    load_average_after: String,
    threshold_rows: usize,
    dynalert_series: usize,
    exporter_series: usize,
    /// Tenants in maintenance.
    maintenance: BTreeSet<String>,
    /// Every repetition's measurements, in the variants' order (one without `--repeat`).
    repetitions: Vec<Vec<Measured>>,
}

/// What one Prometheus measured; times in seconds.
#[derive(Serialize, Deserialize)]
pub struct Measured {
    variant: String,
    ready: f64,
    /// `rules=` of Prometheus's "Completed loading of configuration file" log lines: at start,
    /// and the median of those after each reload.
    load_at_start: Option<f64>,
    load_at_reload: Option<f64>,
    /// The median round trip of `POST /-/reload`.
    reload_request: Option<f64>,
    rules: Rules,
    /// Samples of Σ `prometheus_rule_group_last_duration_seconds`.
    eval: Vec<f64>,
    /// Cores: Δ`process_cpu_seconds_total` / Δt over the window.
    cpu: f64,
    /// Cores the machine spent on other processes during the window.
    others: f64,
    /// Medians over the window, in bytes: the heap in use, the GC's heap goal
    /// (`go_memstats_next_gc_bytes`, steadier than the heap in use), the resident memory.
    heap: f64,
    heap_goal: f64,
    rss: f64,
    head_series: f64,
    failures: f64,
    missed: f64,
    /// `count(ALERTS)`: pending or firing, and of those, of tenants in maintenance.
    alerts: f64,
    alerts_in_maintenance: f64,
    /// Every pending or firing alert.
    alert_set: BTreeSet<AlertId>,
}

/// What every round shares.
struct Setup<'a> {
    args: &'a Args,
    dynalert: PathBuf,
    packs: Vec<&'static dynalert_rules::Pack>,
    keys: Vec<Key>,
    work: PathBuf,
}

pub fn run(args: &Args) -> Result<crate::Results> {
    let supported = args.packs.iter().all(|p| SUPPORTED_PACKS.contains(&&**p));
    ensure!(supported, "synthetic series for {SUPPORTED_PACKS:?} only");
    let (interval, window) = (args.interval_secs, args.settle_secs);
    let counts = [args.repeat, args.tenants.len(), args.packs.len()];
    let valid = !counts.contains(&0) && !args.tenants.contains(&0) && interval > 0;
    ensure!(
        valid && window >= 2 * interval,
        "counts ≥ 1, window ≥ two intervals"
    );
    let (dynalert, meta, work) = args.output.start("rules")?;
    let prometheus = dynalert_testkit::components::find_executable("prometheus");
    let prometheus = prometheus.context("prometheus is not installed")?;
    let version = support::output(Command::new(prometheus).arg("--version"))?;
    let packs = dynalert_rules::select(&args.packs).map_err(|e| anyhow!(e))?;
    let (keys, recording) = keys::keys(&packs)?;
    variants::write_packs(&packs, &work.path().join("packs"))?;
    let alerts = keys.iter().map(|k| k.alerts().len()).sum();
    // The work directory lives until the end of the run (dropping it removes it).
    let path = work.path().to_owned();
    let setup = Setup {
        args,
        dynalert,
        packs,
        work: path,
        keys,
    };
    let mut rounds = Vec::new();
    for &n in &args.tenants {
        println!("==> round: {n} tenants");
        rounds.push(run_round(&setup, n)?);
    }
    let results = Results {
        meta: meta.finish(),
        args: args.clone(),
        prometheus_version: version.lines().next().unwrap_or("").trim().to_owned(),
        keys: setup.keys.len(),
        alerts,
        recording,
        rounds,
    };
    Ok(crate::Results::Rules(Box::new(results)))
}

/// The variants of a round: their names and rule files (none for the baseline).
fn variants(setup: &Setup, dir: &Path, served: &Served, names: &[String]) -> Result<Vec<Variant>> {
    let (per_tenant, floor, keys) = (dir.join(PER_TENANT), dir.join(FLOOR), &setup.keys);
    let rules = variants::write_per_tenant(&per_tenant, keys, served, names)?;
    println!("per-tenant variant: {rules} alerting rules");
    let mut variants = vec![
        (BASELINE.to_owned(), None),
        (PACKS.to_owned(), Some(setup.work.join("packs/*.yml"))),
        (PER_TENANT.to_owned(), Some(per_tenant.join("*.yml"))),
    ];
    if setup.args.floor {
        let rules = variants::write_floor(&setup.packs, &floor, keys)?;
        println!("floor variant: {rules} alerting rules");
        variants.push((FLOOR.to_owned(), Some(floor.join("*.yml"))));
    }
    for extra in &setup.args.extra {
        let (name, glob) = extra.split_once('=').context("--extra NAME=GLOB")?;
        let valid = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c));
        let new = !name.is_empty() && !variants.iter().any(|(v, _)| v == name);
        ensure!(
            valid && new,
            "--extra {extra:?}: a new name of [a-zA-Z0-9_-]"
        );
        // Prometheus resolves relative rule files against its configuration file's directory.
        variants.push((name.to_owned(), Some(std::env::current_dir()?.join(glob))));
    }
    Ok(variants)
}

/// A variant's name and rule files (none for the baseline).
type Variant = (String, Option<PathBuf>);

fn run_round(setup: &Setup, n: usize) -> Result<Round> {
    let (args, dir) = (setup.args, setup.work.join(format!("n{n}")));
    let width = n.to_string().len().max(4);
    let tenants: Vec<String> = (1..=n).map(|i| format!("tenant-{i:0width$}")).collect();
    let (conf_dir, defaults) = (dir.join("conf.d"), defaults_yaml(&setup.packs));
    synthetic::write_conf(&conf_dir, &defaults, &setup.keys, &tenants)?;

    // Declared before the Prometheus instances: dropped (stopped) after them.
    let synthetic = Synthetic::new(tenants.clone(), args.packs.clone());
    let exporter_series = count_series(&synthetic.render());
    let exporter = SyntheticExporter::start(synthetic, Duration::from_secs(args.interval_secs))?;
    println!("synthetic exporter: {exporter_series} series");
    let conf_arg = conf_dir.to_str().context("a non-UTF-8 path")?;
    let config_dir = ["--config-dir", conf_arg];
    let dynalert = Server::start(&setup.dynalert, &config_dir, &dir.join("dynalert.log"))?;
    let dynalert_series = count_series(&reqwest::blocking::get(dynalert.metrics_url())?.text()?);
    let served = Served::query(dynalert.port, n)?;
    let variants = variants(setup, &dir, &served, &tenants)?;

    let exporters = exporter
        .exporter
        .scrape_target("exporters")
        .with_honor_labels();
    let targets = [exporters, ScrapeTarget::new("dynalert", dynalert.port)];
    let mut repetitions = Vec::new();
    for k in 1..=args.repeat {
        let tag = if args.repeat == 1 {
            n.to_string()
        } else {
            format!("{n}-r{k}")
        };
        println!("==> {n} tenants, repetition {k} of {}", args.repeat);
        let mut order = variants.clone();
        if k.is_multiple_of(2) {
            order.reverse();
        }
        // One Prometheus at a time, from its start to its last reload: nothing else of the
        // benchmark competes with it, and nothing pauses it. Each has a new data directory.
        let mut results = Vec::new();
        for (variant, rule_files) in order {
            let instance = Instance::start(args, &variant, rule_files.as_deref(), &targets)?;
            println!("{variant}: ready in {}", support::seconds(instance.ready));
            measure::warm_up(args, &instance)?;
            let cpu = CpuWatch {
                pids: vec![instance.prometheus.pid(), dynalert.guard.id()],
            };
            results.push(measure::alone(args, &tag, &instance, &cpu)?);
        }
        // The tables keep the variants' order whatever order they were measured in.
        results.sort_by_key(|m| variants.iter().position(|(v, _)| *v == m.variant));
        repetitions.push(results);
    }
    Ok(Round {
        tenants: n,
        load_average_after: support::load_average(),
        threshold_rows: served.rows.values().map(Vec::len).sum(),
        dynalert_series,
        exporter_series,
        maintenance: served.maintenance,
        repetitions,
    })
}

#[cfg(test)]
mod tests {
    use super::keys::{parse, selector_names};
    use super::*;

    /// The comparison would measure rules over missing data if a pack read a raw series that
    /// the synthetic exporter does not serve.
    #[test]
    fn the_synthetic_exporter_serves_every_raw_series_the_packs_read() {
        let names = SUPPORTED_PACKS.map(str::to_owned);
        let (keys, _) = keys::keys(&dynalert_rules::select(&names).unwrap()).unwrap();
        let body = Synthetic::new(vec!["t".to_owned()], names.to_vec()).render();
        let served: BTreeSet<&str> = body
            .lines()
            .filter_map(|line| line.split(['{', ' ']).next())
            .collect();
        for key in &keys {
            let read = selector_names(&parse(&key.signal).unwrap());
            // MySQL's alternative to MariaDB's Innodb_deadlocks: the `or` branch of mysql_deadlocks.
            let alternative = "mysql_info_schema_innodb_metrics_lock_lock_deadlocks_total";
            let missing = read
                .iter()
                .filter(|n| !served.contains(n.as_str()) && *n != alternative);
            assert_eq!(missing.count(), 0, "{}: {read:?}", key.name);
        }
    }
}
