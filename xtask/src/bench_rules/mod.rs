//! `cargo xtask bench-rules`: the rule packs measured on a real Prometheus, side by side with
//! the equivalent hand-written per-tenant rules, at several tenant counts, all on 127.0.0.1.
//!
//! Steps: build release `dynalert` → render the chosen packs (`dynalert rules render`, files as
//! shipped) → per tenant count N:
//!
//! 1. a synthetic exporter (a thread of this process) serves the raw exporter series the packs'
//!    recording rules read, for N tenants × 2 instances, with the `tenant` label already in the
//!    exposition (equivalent to relabelling); values are stable, a few percent of them above the
//!    usual thresholds so that alerts fire;
//! 2. a conf.d for the N tenants (`_defaults.yaml` from `dynalert rules defaults`, one file per
//!    tenant with a few custom values, critical tiers, disabled keys, per-queue rows, metadata on
//!    a third, maintenance on 2 %) is served by `dynalert serve`;
//! 3. the per-tenant variant is generated from the threshold rows `dynalert serve` actually
//!    serves (see [`write_per_tenant`]), so both variants alert on the same numbers;
//! 4. one Prometheus per variant (`baseline` without rules, `packs`, `per-tenant`, and with
//!    `--reference` the packs plus a recording rule per threshold lookup, with `--floor` the
//!    packs' signals against their defaults, nothing looked up) scrapes the same two targets
//!    every `--interval-secs` and evaluates at the same interval; they run one after the
//!    other, each alone on the machine from its start to its last reload;
//! 5. after `--history-secs`, the Prometheus's own `/metrics` is sampled once per interval for
//!    `--settle-secs`, in slices that are measured again while other processes keep the
//!    machine busy (see [`prometheus::alone`]); then `count(ALERTS)` is queried, the rules are
//!    counted from `/api/v1/rules`, and the Prometheus is reloaded `--reloads` times;
//! 6. a markdown table per N, written with `--out-md` between the bench-rules markers.
//!
//! Module by module: [`catalogue`] (the packs' keys), [`promql`] (selectors of an expression),
//! [`conf`] (the conf.d and what dynalert serves), [`variants`] (per-tenant, reference and
//! floor rules), [`synthetic`] (the exporter), [`prometheus`] (instances and measurement),
//! [`repeat`] (`--repeat`: the repetitions of a round combined), [`report`] (markdown),
//! [`json`].
//!
//! Every child process is killed on exit, errors included. Linux only: RSS comes from
//! `/proc/<pid>/status`, the other processes' CPU from `/proc/stat`.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::{self};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::bench_support::{
    ChildGuard, WorkDir, count_series, date, find, free_port, load_average, machine, request,
    start, target_dir, write_section,
};
use anyhow::{Context, Result, bail, ensure};
use clap::Args;

mod catalogue;
mod conf;
mod json;
mod prometheus;
mod promql;
mod repeat;
mod report;
mod synthetic;
mod variants;

use catalogue::*;
use conf::*;
use json::*;
use prometheus::*;
use promql::*;
use repeat::*;
use report::*;
use synthetic::*;
use variants::*;

#[derive(Args)]
pub struct BenchRulesArgs {
    /// Tenant counts, one round each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    tenants: Vec<usize>,
    /// Packs to compare (comma-separated). The synthetic exporter serves mariadb and redis.
    #[arg(long, value_delimiter = ',', default_value = "mariadb,redis")]
    packs: Vec<String>,
    /// Length of the measurement window of each round, after the warm-up.
    #[arg(long, default_value_t = 60)]
    settle_secs: u64,
    /// `scrape_interval` and `evaluation_interval` of every Prometheus, in seconds.
    #[arg(long, default_value_t = 5)]
    interval_secs: u64,
    /// `POST /-/reload` requests per Prometheus, after the measurement window.
    #[arg(long, default_value_t = 3)]
    reloads: usize,
    /// How long all Prometheus instances of a round run before any is measured:
    /// `rate(…[5m])` reads its full window only after 5 minutes of samples (before, it
    /// underestimates the rate and reads fewer samples).
    #[arg(long, default_value_t = 300)]
    history_secs: u64,
    /// Run and measure the Prometheus instances of a round at the same time instead of one
    /// after the other, each alone from its start to its last reload (on a 2-core machine
    /// they then compete for CPU).
    #[arg(long)]
    concurrent: bool,
    /// The measurement window is taken in slices of this many seconds; a slice during which
    /// other processes on the machine (a compiler, another benchmark) used more than
    /// `--quiet-cores` is thrown away and measured again.
    #[arg(long, default_value_t = 15)]
    slice_secs: u64,
    /// CPU (in cores) that processes outside the benchmark may use during a slice for it to
    /// count.
    #[arg(long, default_value_t = 0.25)]
    quiet_cores: f64,
    /// How long to keep measuring slices again while the machine is busy, per Prometheus;
    /// after that the noisy slices count too (the report says how busy the machine was).
    #[arg(long, default_value_t = 1800)]
    max_wait_secs: u64,
    /// Measure every variant of a round this many times, each time with a new Prometheus (in
    /// reverse order every other time), and report the medians next to each repetition's own
    /// ratios: one Prometheus measured once can move by half between runs on a shared machine.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Directory to write a CPU profile of each Prometheus into (`/debug/pprof/profile` over
    /// one slice after the window, as `<tenants>-<variant>.pprof`, with `--repeat` as
    /// `<tenants>-r<repetition>-<variant>.pprof`; read it with `go tool pprof`).
    #[arg(long, value_name = "DIR")]
    pprof: Option<PathBuf>,
    /// Also measure the reference project's layout: the packs plus a recording rule per
    /// threshold lookup (`tenant:alert_threshold:…`), the alerts reading the recorded series.
    #[arg(long)]
    reference: bool,
    /// Also measure the floor: the packs' signals against their defaults, one rule per alert
    /// for all tenants, no threshold lookup, maintenance or metadata; what no layout of the
    /// packs can go below.
    #[arg(long)]
    floor: bool,
    /// One more variant to measure like the others: a name and a glob of rule files, e.g.
    /// `--extra lean=/tmp/lean-packs/*.yml` for a modified pack layout (repeatable).
    #[arg(long, value_name = "NAME=GLOB")]
    extra: Vec<String>,
    /// The Prometheus binary (Debian's `prometheus` package).
    #[arg(long, default_value = "prometheus")]
    prometheus: PathBuf,
    /// Markdown file to write the results into (the section between the
    /// `<!-- bench-rules:start -->` and `<!-- bench-rules:end -->` markers, else appended).
    #[arg(long)]
    out_md: Option<PathBuf>,
    /// Keep the work directory (rule files, Prometheus configs and logs) and print its path.
    #[arg(long)]
    keep: bool,
}

const START_MARKER: &str = "<!-- bench-rules:start -->";
const END_MARKER: &str = "<!-- bench-rules:end -->";
/// The packs whose raw exporter series the synthetic exporter serves.
const SUPPORTED_PACKS: [&str; 2] = ["mariadb", "redis"];
/// Raw series a pack reads that the synthetic exporter leaves out on purpose.
const NOT_SERVED: [&str; 1] = [
    // MySQL's alternative to MariaDB's Innodb_deadlocks: the `or` branch of mysql_deadlocks.
    "mysql_info_schema_innodb_metrics_lock_lock_deadlocks_total",
];
/// Instances (exporter targets) per tenant and service; instance 1 is the replica.
const INSTANCES: usize = 2;
/// Share of instances whose value of a signal is above the usual thresholds.
const P_HIGH: f64 = 0.04;
/// Share of instances that are down (only their `*_up 0` is served).
const P_DOWN: f64 = 0.02;

/// A key's dimension label and the values served.
struct Dimension {
    label: &'static str,
    values: &'static [&'static str],
}

const DIMENSIONS: &[Dimension] = &[Dimension {
    label: "queue",
    values: &["email", "jobs", "reports"],
}];

// The targets, at 1,000 tenants.
const TARGET_TENANTS: usize = 1000;
const TARGET_EVAL: f64 = 5.0;
const TARGET_CPU: f64 = 5.0;
const TARGET_LOAD: f64 = 50.0;

pub fn run(args: &BenchRulesArgs) -> Result<()> {
    ensure!(
        !args.tenants.is_empty() && args.tenants.iter().all(|&n| n >= 1),
        "--tenants needs one or more counts of at least 1"
    );
    ensure!(
        !args.packs.is_empty(),
        "--packs must name at least one pack"
    );
    for pack in &args.packs {
        ensure!(
            SUPPORTED_PACKS.contains(&pack.as_str()),
            "pack {pack:?}: the synthetic exporter serves the series of {} only",
            SUPPORTED_PACKS.join(", ")
        );
    }
    ensure!(args.repeat >= 1, "--repeat must be at least 1");
    ensure!(
        args.interval_secs >= 1,
        "--interval-secs must be at least 1"
    );
    ensure!(
        args.settle_secs >= 2 * args.interval_secs,
        "--settle-secs must cover at least two intervals"
    );
    ensure!(
        args.slice_secs >= args.interval_secs && args.slice_secs <= args.settle_secs,
        "--slice-secs must be between --interval-secs and --settle-secs"
    );
    let started = Instant::now();
    let load_average = load_average();
    let root = crate::workspace_root();
    crate::cargo_step(&root, &["build", "--release", "-p", "dynalert"])?;
    let dynalert = target_dir(&root).join("release/dynalert");
    let prometheus_version = output(Command::new(&args.prometheus).arg("--version"))
        .map(|text| text.lines().next().unwrap_or("").trim().to_owned())
        .with_context(|| format!("running {} --version", args.prometheus.display()))?;

    let work = WorkDir::new("dynalert-bench-rules", args.keep)?;
    let packs = args.packs.join(",");
    let rendered = work.path().join("packs");
    println!("==> dynalert rules render --packs {packs}");
    output(
        Command::new(&dynalert)
            .args(["rules", "render", "--packs", &packs, "--out"])
            .arg(&rendered),
    )?;
    let recording = recording_rules(&rendered)?;
    let list = parse_json(&output(
        Command::new(&dynalert).args(["rules", "list", "--format", "json"]),
    )?)
    .context("parsing `dynalert rules list --format json`")?;
    let catalogue = Catalogue::new(&list, &args.packs, &recording)?;
    check_raw_series(&catalogue, &args.packs)?;
    let defaults = output(Command::new(&dynalert).args(["rules", "defaults", "--packs", &packs]))?;

    let setup = Setup {
        args,
        dynalert,
        rendered,
        catalogue,
        defaults,
        work: work.path(),
    };
    let mut rounds = Vec::new();
    for &n in &args.tenants {
        println!("==> round: {n} tenants");
        rounds.push(run_round(&setup, n)?);
    }
    let report = Report {
        args,
        load_average,
        prometheus_version,
        catalogue: &setup.catalogue,
        rounds,
        took: started.elapsed(),
    };
    let section = report.markdown();
    println!("\n{section}");
    if let Some(path) = &args.out_md {
        write_section(path, (START_MARKER, END_MARKER), &section)?;
        println!("wrote the bench-rules section of {}", path.display());
    }
    if args.keep {
        println!("work directory kept: {}", work.path().display());
    }
    Ok(())
}

/// What every round shares.
struct Setup<'a> {
    args: &'a BenchRulesArgs,
    dynalert: PathBuf,
    /// The rendered pack files.
    rendered: PathBuf,
    catalogue: Catalogue,
    /// `dynalert rules defaults --packs …`.
    defaults: String,
    work: &'a Path,
}

// ---------------------------------------------------------------------------------------------
// One round

struct Round {
    tenants: usize,
    /// `/proc/loadavg` after the measurements.
    load_average_after: String,
    conf: Conf,
    threshold_rows: usize,
    dynalert_series: usize,
    exporter_series: usize,
    /// Tenants in maintenance.
    maintenance: BTreeSet<String>,
    /// The repetitions combined (see [`repeat::combine`]); what the tables show.
    results: Vec<Measured>,
    /// Every repetition's own measurements (one repetition without `--repeat`).
    repetitions: Vec<Vec<Measured>>,
}

#[derive(Clone, PartialEq)]
enum Variant {
    Baseline,
    Packs,
    PerTenant,
    Reference,
    Floor,
    /// `--extra NAME=GLOB`.
    Extra(String),
}

impl Variant {
    /// The variants the harness generates itself; an `--extra` may not take their names.
    const BUILT_IN: [Variant; 5] = [
        Variant::Baseline,
        Variant::Packs,
        Variant::PerTenant,
        Variant::Reference,
        Variant::Floor,
    ];

    fn name(&self) -> &str {
        match self {
            Variant::Baseline => "baseline",
            Variant::Packs => "packs",
            Variant::PerTenant => "per-tenant",
            Variant::Reference => "reference",
            Variant::Floor => "floor",
            Variant::Extra(name) => name,
        }
    }
}

/// `NAME=GLOB` of `--extra`, the glob made absolute (Prometheus resolves relative rule files
/// against its configuration file's directory).
fn extra_variant(text: &str) -> Result<(Variant, PathBuf)> {
    let (name, glob) = text
        .split_once('=')
        .with_context(|| format!("--extra {text:?}: expected NAME=GLOB"))?;
    ensure!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !Variant::BUILT_IN.iter().any(|v| v.name() == name),
        "--extra {text:?}: the name must be new and made of letters, digits, - and _"
    );
    let glob = std::env::current_dir()?.join(glob);
    Ok((Variant::Extra(name.to_owned()), glob))
}

fn run_round(setup: &Setup, n: usize) -> Result<Round> {
    let args = setup.args;
    let dir = setup.work.join(format!("n{n}"));
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tenants = tenant_names(n);
    let conf_dir = dir.join("conf.d");
    let conf = write_conf(&conf_dir, &setup.defaults, &setup.catalogue, &tenants)?;

    // Declared before the Prometheus instances: dropped (stopped) after them.
    let exporter = SyntheticExporter::start(tenants.clone(), args.packs.clone())?;
    let exporter_series = count_series(&exporter.synthetic.render());
    println!(
        "synthetic exporter on 127.0.0.1:{}: {exporter_series} series",
        exporter.port
    );
    let dynalert_port = free_port()?;
    let mut command = Command::new(&setup.dynalert);
    command
        .arg("serve")
        .arg("--config-dir")
        .arg(&conf_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{dynalert_port}"));
    let (dynalert, _) = start(command, dynalert_port, "/ready", &dir.join("dynalert.log"))?;
    let (response, _) = request(dynalert_port, "GET", "/metrics", "", b"")?;
    ensure!(
        response.status == 200,
        "dynalert /metrics answered {}",
        response.status
    );
    let served = Served::parse(&String::from_utf8_lossy(&response.body));
    ensure!(
        served.tenants.len() == n,
        "dynalert serves thresholds for {} tenants, expected {n}",
        served.tenants.len()
    );
    println!(
        "dynalert serve on 127.0.0.1:{dynalert_port}: {} series, {} user_threshold rows",
        served.series,
        served.rows.len()
    );

    let per_tenant_dir = dir.join("per-tenant");
    let per_tenant_rules = write_per_tenant(&per_tenant_dir, &setup.catalogue, &served, &tenants)?;
    println!("per-tenant variant: {per_tenant_rules} alerting rules in {n} files");
    let mut variants = vec![
        (Variant::Baseline, None),
        (Variant::Packs, Some(setup.rendered.join("*.yml"))),
        (Variant::PerTenant, Some(per_tenant_dir.join("*.yml"))),
    ];
    if args.reference {
        let reference_dir = dir.join("reference");
        write_reference(&setup.rendered, &reference_dir)?;
        variants.push((Variant::Reference, Some(reference_dir.join("*.yml"))));
    }
    if args.floor {
        let floor_dir = dir.join("floor");
        let floor_rules = write_floor(&setup.rendered, &floor_dir, &setup.catalogue)?;
        println!("floor variant: {floor_rules} alerting rules");
        variants.push((Variant::Floor, Some(floor_dir.join("*.yml"))));
    }
    for extra in &args.extra {
        let (variant, glob) = extra_variant(extra)?;
        variants.push((variant, Some(glob)));
    }

    let targets = [exporter.port, dynalert_port];
    let mut repetitions = Vec::new();
    for k in 1..=args.repeat {
        // A new data directory per repetition: a Prometheus must not replay the last one's WAL.
        let (rep_dir, tag) = if args.repeat == 1 {
            (dir.clone(), n.to_string())
        } else {
            println!("==> {n} tenants, repetition {k} of {}", args.repeat);
            (dir.join(format!("repetition-{k}")), format!("{n}-r{k}"))
        };
        let ordered = order(&variants, k);
        let mut results = measure(args, &ordered, &rep_dir, &tag, targets, &dynalert)?;
        // The tables keep the variants' order whatever order they were measured in.
        results.sort_by_key(|m| variants.iter().position(|(v, _)| *v == m.variant));
        repetitions.push(results);
    }
    Ok(Round {
        tenants: n,
        load_average_after: load_average(),
        conf,
        threshold_rows: served.rows.len(),
        dynalert_series: served.series,
        exporter_series,
        maintenance: served.maintenance,
        results: combine(&repetitions),
        repetitions,
    })
}

/// One repetition of a round: every variant's Prometheus started, warmed up and measured, in
/// the order given.
fn measure(
    args: &BenchRulesArgs,
    variants: &[(Variant, Option<PathBuf>)],
    dir: &Path,
    tag: &str,
    targets: [u16; 2],
    dynalert: &ChildGuard,
) -> Result<Vec<Measured>> {
    let start = |variant: Variant, rule_files: Option<&Path>| -> Result<Instance> {
        let instance = Instance::start(args, variant, rule_files, dir, targets)?;
        println!(
            "prometheus {:<10} on 127.0.0.1:{}: ready in {}",
            instance.variant.name(),
            instance.port,
            ms(instance.ready)
        );
        Ok(instance)
    };
    let history = Duration::from_secs(args.history_secs);
    if args.concurrent {
        let mut instances: Vec<Instance> = Vec::new();
        for (variant, rule_files) in variants {
            instances.push(start(variant.clone(), rule_files.as_deref())?);
        }
        warm_up(args, &instances, history)?;
        let mut watched: Vec<u32> = instances.iter().map(|i| i.guard.child.id()).collect();
        watched.push(dynalert.child.id());
        return concurrent(args, tag, &instances, &CpuWatch::new(watched));
    }
    // One Prometheus at a time, from its start to its last reload: nothing else of the
    // benchmark competes with it, and nothing pauses it.
    let mut results = Vec::new();
    for (variant, rule_files) in variants {
        let instance = start(variant.clone(), rule_files.as_deref())?;
        warm_up(args, std::slice::from_ref(&instance), history)?;
        let cpu = CpuWatch::new(vec![instance.guard.child.id(), dynalert.child.id()]);
        results.push(alone(args, tag, &instance, &cpu)?);
    }
    Ok(results)
}

/// `tenant-0001` …, wide enough for `n`.
fn tenant_names(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(4);
    (1..=n).map(|i| format!("tenant-{i:0width$}")).collect()
}

// ---------------------------------------------------------------------------------------------
// Processes, HTTP, files (the same helpers as bench-exporter's)

/// Runs `command` to completion and returns its standard output.
fn output(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    ensure!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}
