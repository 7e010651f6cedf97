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
//!    `--reference` the packs plus a recording rule per threshold lookup) scrapes the same two
//!    targets every `--interval-secs` and evaluates at the same interval;
//! 5. after a warm-up, each Prometheus's own `/metrics` is sampled once per interval for
//!    `--settle-secs`; then `count(ALERTS)` is queried, the rules are counted from
//!    `/api/v1/rules`, and each Prometheus is reloaded `--reloads` times;
//! 6. a markdown table per N, written with `--out-md` between the bench-rules markers.
//!
//! Every child process is killed on exit, errors included. Linux only: RSS comes from
//! `/proc/<pid>/status`.

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
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench_support::{
    ChildGuard, count_series, date, find, free_port, load_average, machine, request, start,
    target_dir, write_section,
};
use anyhow::{Context, Result, bail, ensure};
use clap::Args;

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
    /// Measure the Prometheus instances of a round at the same time instead of each alone
    /// with the others paused (on a 2-core machine they then compete for CPU).
    #[arg(long)]
    concurrent: bool,
    /// Also measure the reference project's layout: the packs plus a recording rule per
    /// threshold lookup (`tenant:alert_threshold:…`), the alerts reading the recorded series.
    #[arg(long)]
    reference: bool,
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

/// A key's dimension label, the raw exporter label it is copied from, and the values served.
struct Dimension {
    label: &'static str,
    raw_label: &'static str,
    values: &'static [&'static str],
}

const DIMENSIONS: &[Dimension] = &[Dimension {
    label: "queue",
    raw_label: "key",
    values: &["email", "jobs", "reports"],
}];

// The issue's targets, at 1,000 tenants.
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
    ensure!(
        args.interval_secs >= 1,
        "--interval-secs must be at least 1"
    );
    ensure!(
        args.settle_secs >= 2 * args.interval_secs,
        "--settle-secs must cover at least two intervals"
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
// The packs' keys

/// One threshold key of a pack, with its signal written over the raw exporter series.
struct Key {
    pack: String,
    name: String,
    component: String,
    metric: String,
    op: String,
    dimension: Option<String>,
    /// The normalization expression the key's signal records (one line).
    signal: String,
    default: f64,
    default_critical: Option<f64>,
    alert: String,
    /// `<alert>Critical`, if the pack has it.
    critical_alert: Option<String>,
    for_: String,
    summary: String,
    description: String,
    unit: String,
}

struct Catalogue {
    keys: Vec<Key>,
    /// Alerting rules of the chosen packs.
    alerts: usize,
    /// Recording rules of the rendered files.
    recording: usize,
}

impl Catalogue {
    fn new(list: &Json, packs: &[String], recording: &[(String, String)]) -> Result<Self> {
        let recorded: HashMap<&str, &str> = recording
            .iter()
            .map(|(name, expr)| (name.as_str(), expr.as_str()))
            .collect();
        let mut keys = Vec::new();
        let mut alerts = 0;
        for pack in list.array() {
            let name = pack.get("pack").and_then(Json::str).unwrap_or("");
            if !packs.iter().any(|p| p == name) {
                continue;
            }
            let pack_alerts: Vec<&str> = pack
                .get("alerts")
                .map(Json::array)
                .unwrap_or(&[])
                .iter()
                .filter_map(Json::str)
                .collect();
            alerts += pack_alerts.len();
            for (key_name, key) in pack.get("keys").map(Json::object).unwrap_or(&[]) {
                let text = |field: &str| -> Result<String> {
                    key.get(field)
                        .and_then(Json::str)
                        .map(str::to_owned)
                        .with_context(|| format!("key {key_name}: no {field}"))
                };
                let alert = key.get("alert").context("no alert")?;
                let alert_text = |field: &str| -> Result<String> {
                    alert
                        .get(field)
                        .and_then(Json::str)
                        .map(str::to_owned)
                        .with_context(|| format!("key {key_name}: no alert.{field}"))
                };
                let signal_name = text("signal")?;
                let signal = recorded
                    .get(signal_name.as_str())
                    .map_or_else(|| signal_name.clone(), |expr| (*expr).to_owned());
                let nested: Vec<String> = selector_names(&signal)
                    .into_iter()
                    .filter(|name| recorded.contains_key(name.as_str()))
                    .collect();
                ensure!(
                    nested.is_empty(),
                    "key {key_name}: its signal reads recorded series {nested:?}; \
                     the per-tenant variant inlines one level of recording rules only"
                );
                let (component, metric) = key_name
                    .split_once('_')
                    .with_context(|| format!("key {key_name} has no component"))?;
                let alert_name = alert_text("name")?;
                let critical = format!("{alert_name}Critical");
                keys.push(Key {
                    pack: name.to_owned(),
                    name: key_name.clone(),
                    component: component.to_owned(),
                    metric: metric.to_owned(),
                    op: text("op")?,
                    dimension: key.get("dimension").and_then(Json::str).map(str::to_owned),
                    signal,
                    default: key.get("default").and_then(Json::number).unwrap_or(0.0),
                    default_critical: key.get("default_critical").and_then(Json::number),
                    critical_alert: pack_alerts.contains(&critical.as_str()).then_some(critical),
                    alert: alert_name,
                    for_: alert_text("for")?,
                    summary: alert_text("summary")?,
                    description: alert_text("description")?,
                    unit: text("unit")?,
                });
            }
        }
        for pack in packs {
            ensure!(
                keys.iter().any(|key| &key.pack == pack),
                "`dynalert rules list` has no keys for pack {pack}"
            );
        }
        Ok(Self {
            keys,
            alerts,
            recording: recording.len(),
        })
    }
}

/// `(record, expr)` of every recording rule in the rendered files of `dir`, exprs on one line.
fn recording_rules(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut rules = Vec::new();
    for path in yaml_files(dir)? {
        let text = fs::read_to_string(&path).with_context(|| format!("reading {path:?}"))?;
        rules.extend(parse_recording_rules(&text));
    }
    Ok(rules)
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// The recording rules of a rule file as `dynalert rules render` writes it: `- record: NAME`
/// followed by `expr:` inline or as a block scalar.
fn parse_recording_rules(text: &str) -> Vec<(String, String)> {
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = text.lines().collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i].trim_start().strip_prefix("- record:") else {
            i += 1;
            continue;
        };
        let name = unquote(name.trim());
        let fields = indent_of(lines[i]) + 2;
        let mut expr = None;
        i += 1;
        while i < lines.len() {
            let line = lines[i];
            if line.trim().is_empty() {
                i += 1;
                continue;
            }
            if indent_of(line) < fields {
                break;
            }
            i += 1;
            if indent_of(line) != fields {
                continue;
            }
            let Some(value) = line.trim_start().strip_prefix("expr:") else {
                continue;
            };
            let value = value.trim();
            if value.starts_with('|') || value.starts_with('>') {
                let mut block = Vec::new();
                while i < lines.len()
                    && (lines[i].trim().is_empty() || indent_of(lines[i]) > fields)
                {
                    block.push(lines[i].trim());
                    i += 1;
                }
                expr = Some(block.join(" ").trim().to_owned());
            } else {
                expr = Some(unquote(value));
            }
        }
        if let Some(expr) = expr {
            rules.push((name, expr));
        }
    }
    rules
}

/// A YAML scalar without its quotes.
fn unquote(value: &str) -> String {
    if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
        value[1..value.len() - 1].replace("''", "'")
    } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
        let mut out = String::new();
        let mut chars = value[1..value.len() - 1].chars();
        while let Some(c) = chars.next() {
            match (c, c == '\\') {
                (_, true) => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => {}
                },
                (c, false) => out.push(c),
            }
        }
        out
    } else {
        value.to_owned()
    }
}

/// Fails when a pack reads a raw series that the synthetic exporter does not serve: the
/// comparison would then measure rules over missing data.
fn check_raw_series(catalogue: &Catalogue, packs: &[String]) -> Result<()> {
    let read: BTreeSet<String> = catalogue
        .keys
        .iter()
        .flat_map(|key| selector_names(&key.signal))
        .collect();
    let body = Synthetic::new(vec!["t".to_owned()], packs.to_vec()).render();
    let served: BTreeSet<&str> = body
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing: Vec<&String> = read
        .iter()
        .filter(|name| !served.contains(name.as_str()) && !NOT_SERVED.contains(&name.as_str()))
        .collect();
    ensure!(
        missing.is_empty(),
        "the packs read raw series the synthetic exporter does not serve: {missing:?} \
         (teach `Synthetic` about them)"
    );
    println!(
        "the packs read {} raw series, all served (left out on purpose: {})",
        read.len(),
        NOT_SERVED.join(", ")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PromQL: the vector selectors of an expression

/// Keywords whose parentheses hold label names, not expressions.
const LABEL_LIST_KEYWORDS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];
/// Other identifiers that are never metric names: operators, and the aggregation operators
/// (which may be followed by `by(…)` before their parentheses).
const KEYWORDS: [&str; 19] = [
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
];

/// The metric names of the vector selectors of `expr`.
fn selector_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    rewrite_selectors(expr, |name| {
        names.push(name.to_owned());
        None
    });
    names
}

/// `expr` with `matchers` (e.g. `tenant="t1"`) added to every vector selector.
fn restrict(expr: &str, matchers: &str) -> String {
    rewrite_selectors(expr, |_| Some(matchers.to_owned()))
}

/// Copies `expr`, calling `matchers` with the metric name of every vector selector and adding
/// the matchers it returns to that selector. A small lexer, enough for the packs' expressions:
/// strings, ranges and label lists (`by(…)`, `on(…)`, …) are copied as they are, an identifier
/// followed by `(` is a function, and any other identifier that is not a keyword is a metric.
fn rewrite_selectors(expr: &str, mut matchers: impl FnMut(&str) -> Option<String>) -> String {
    let chars: Vec<char> = expr.chars().collect();
    let scan = |from: usize, keep: &dyn Fn(char) -> bool| {
        chars[from..]
            .iter()
            .position(|&c| !keep(c))
            .map_or(chars.len(), |p| from + p)
    };
    let mut out = String::with_capacity(expr.len() + 64);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            let end = string_end(&chars, i);
            out.extend(&chars[i..end]);
            i = end;
        } else if c == '[' {
            let end = chars[i..]
                .iter()
                .position(|&c| c == ']')
                .map_or(chars.len(), |p| i + p + 1);
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            // Numbers and durations (`5m`, `1e3`, `0x1f`).
            let end = scan(i, &|c| c.is_ascii_alphanumeric() || c == '.' || c == '_');
            out.extend(&chars[i..end]);
            i = end;
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let end = scan(i, &|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
            let word: String = chars[i..end].iter().collect();
            let lower = word.to_ascii_lowercase();
            let next = scan(end, &char::is_whitespace);
            out.push_str(&word);
            i = end;
            let keyword =
                LABEL_LIST_KEYWORDS.contains(&lower.as_str()) || KEYWORDS.contains(&lower.as_str());
            if chars.get(next) == Some(&'(') {
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    let close = chars[next..]
                        .iter()
                        .position(|&c| c == ')')
                        .map_or(chars.len(), |p| next + p + 1);
                    out.extend(&chars[i..close]);
                    i = close;
                }
            } else if !keyword {
                let added = matchers(&word);
                if chars.get(next) == Some(&'{') {
                    let close = selector_end(&chars, next);
                    out.extend(&chars[i..=next]);
                    if let Some(added) = added {
                        out.push_str(&added);
                        if chars[next + 1..close - 1]
                            .iter()
                            .any(|c| !c.is_whitespace())
                        {
                            out.push_str(", ");
                        }
                    }
                    out.extend(&chars[next + 1..close]);
                    i = close;
                } else if let Some(added) = added {
                    let _ = write!(out, "{{{added}}}");
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The index after the string literal that starts at `start`.
fn string_end(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut j = start + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
            continue;
        }
        if chars[j] == quote {
            return j + 1;
        }
        j += 1;
    }
    chars.len()
}

/// The index after the `}` closing the label matchers that open at `open`.
fn selector_end(chars: &[char], open: usize) -> usize {
    let mut j = open + 1;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => j = string_end(chars, j),
            '}' => return j + 1,
            _ => j += 1,
        }
    }
    chars.len()
}

/// A PromQL string literal (double quotes).
fn promql_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A regular expression matching exactly one of `values`, as a PromQL string.
fn promql_alternatives(values: &[&str]) -> String {
    let escaped: Vec<String> = values
        .iter()
        .map(|value| {
            value
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        c.to_string()
                    } else {
                        format!("\\{c}")
                    }
                })
                .collect()
        })
        .collect();
    promql_string(&escaped.join("|"))
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
    results: Vec<Measured>,
}

#[derive(Clone, PartialEq)]
enum Variant {
    Baseline,
    Packs,
    PerTenant,
    Reference,
    /// `--extra NAME=GLOB`.
    Extra(String),
}

impl Variant {
    fn name(&self) -> &str {
        match self {
            Variant::Baseline => "baseline",
            Variant::Packs => "packs",
            Variant::PerTenant => "per-tenant",
            Variant::Reference => "reference",
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
            && !["baseline", "packs", "per-tenant", "reference"].contains(&name),
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
    let (_dynalert, _) = start(command, dynalert_port, "/ready", &dir.join("dynalert.log"))?;
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
    for extra in &args.extra {
        let (variant, glob) = extra_variant(extra)?;
        variants.push((variant, Some(glob)));
    }

    let targets = [exporter.port, dynalert_port];
    let start = |variant: Variant, rule_files: Option<&Path>| -> Result<Instance> {
        let instance = Instance::start(args, variant, rule_files, &dir, targets)?;
        println!(
            "prometheus {:<10} on 127.0.0.1:{}: ready in {}",
            instance.variant.name(),
            instance.port,
            ms(instance.ready)
        );
        Ok(instance)
    };
    // Every instance starts alone: in isolated mode the running ones are paused meanwhile.
    let mut instances: Vec<Instance> = Vec::new();
    for (variant, rule_files) in &variants {
        let _paused = if args.concurrent {
            Paused(Vec::new())
        } else {
            Paused::new(&instances)?
        };
        instances.push(start(variant.clone(), rule_files.as_deref())?);
    }
    warm_up(args, &instances, Duration::from_secs(args.history_secs))?;
    let mut results = Vec::new();
    if args.concurrent {
        let all: Vec<&Instance> = instances.iter().collect();
        results = window(args, &all)?;
        for (instance, result) in instances.iter().zip(&mut results) {
            reloads(args, instance, result)?;
        }
    } else {
        // One at a time, the others paused: on a small machine instances running side by side
        // take CPU from each other.
        let interval = Duration::from_secs(args.interval_secs);
        for (k, instance) in instances.iter().enumerate() {
            let paused = Paused::new(
                instances
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != k)
                    .map(|(_, other)| other),
            )?;
            thread::sleep(interval);
            let mut result = window(args, &[instance])?.remove(0);
            reloads(args, instance, &mut result)?;
            results.push(result);
            drop(paused);
            // The resumed instances catch up (every group evaluates at once) before the next
            // window.
            thread::sleep(3 * interval);
        }
    }
    Ok(Round {
        tenants: n,
        load_average_after: load_average(),
        conf,
        threshold_rows: served.rows.len(),
        dynalert_series: served.series,
        exporter_series,
        maintenance: served.maintenance,
        results,
    })
}

/// `tenant-0001` …, wide enough for `n`.
fn tenant_names(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(4);
    (1..=n).map(|i| format!("tenant-{i:0width$}")).collect()
}

// ---------------------------------------------------------------------------------------------
// The conf.d

/// What the generated tenant files set.
#[derive(Default)]
struct Conf {
    custom: usize,
    disabled: usize,
    critical: usize,
    dimension_rows: usize,
    metadata: usize,
    maintenance: usize,
}

/// `_defaults.yaml` and one file per tenant: about a quarter of the keys with a custom value,
/// 4 % disabled, a tenth of the critical tiers raised, per-queue rows on 30 % of the tenants,
/// metadata on a third and maintenance on 2 %.
fn write_conf(
    dir: &Path,
    defaults: &str,
    catalogue: &Catalogue,
    tenants: &[String],
) -> Result<Conf> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join("_defaults.yaml"), defaults)?;
    let mut conf = Conf::default();
    for (index, tenant) in tenants.iter().enumerate() {
        let mut rng =
            SplitMix64(0x00D1_7A1E ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut body = String::new();
        for key in &catalogue.keys {
            if let Some(dimension) = key.dimension.as_deref().and_then(dimension)
                && rng.below(10) < 3
            {
                let _ = writeln!(
                    body,
                    "    \"{}{{{}='{}'}}\": {}",
                    key.name,
                    dimension.label,
                    dimension.values[0],
                    number(key.default * 0.4)
                );
                conf.dimension_rows += 1;
                if rng.below(3) == 0 {
                    let _ = writeln!(
                        body,
                        "    \"{}{{{}='{}'}}\": {}",
                        key.name,
                        dimension.label,
                        dimension.values[1],
                        number(key.default * 4.0)
                    );
                    conf.dimension_rows += 1;
                }
            }
            let roll = rng.below(100);
            let factor = [0.5, 0.75, 1.5, 2.0][rng.below(4) as usize];
            let mut warning = key.default;
            if roll < 4 {
                let _ = writeln!(body, "    {}: disable", key.name);
                conf.disabled += 1;
                continue;
            } else if roll < 30 && key.default > 0.0 {
                warning = key.default * factor;
                let _ = writeln!(body, "    {}: {}", key.name, number(warning));
                conf.custom += 1;
            }
            if let Some(critical) = key.default_critical
                && key.default > 0.0
                && rng.below(10) == 0
            {
                let raised = critical.max(warning) * 1.25;
                let _ = writeln!(body, "    {}_critical: {}", key.name, number(raised));
                conf.critical += 1;
            }
        }
        if rng.below(3) == 0 {
            let tier = ["gold", "silver", "bronze"][rng.below(3) as usize];
            let _ = writeln!(
                body,
                "    _metadata: {{owner: team-{}, runbook_url: \"https://runbooks.example.com/{tenant}\", tier: {tier}}}",
                rng.below(20)
            );
            conf.metadata += 1;
        }
        if index % 50 == 6 {
            body.push_str("    _state_maintenance: enable\n");
            conf.maintenance += 1;
        }
        let text = if body.is_empty() {
            format!("tenants:\n  {tenant}: {{}}\n")
        } else {
            format!("tenants:\n  {tenant}:\n{body}")
        };
        fs::write(dir.join(format!("{tenant}.yaml")), text)?;
    }
    Ok(conf)
}

fn dimension(label: &str) -> Option<&'static Dimension> {
    DIMENSIONS.iter().find(|d| d.label == label)
}

/// A threshold with at most two decimals.
fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
}

/// SplitMix64: deterministic, well mixed, no dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

// ---------------------------------------------------------------------------------------------
// What dynalert serves

/// One `user_threshold` row.
struct Row {
    tenant: String,
    component: String,
    metric: String,
    severity: String,
    /// Dimension labels.
    labels: Vec<(String, String)>,
    value: f64,
}

struct Served {
    rows: Vec<Row>,
    /// Non-empty `owner`, `runbook_url` and `tier` of `tenant_metadata_info`, per tenant.
    metadata: HashMap<String, Vec<(String, String)>>,
    maintenance: BTreeSet<String>,
    tenants: BTreeSet<String>,
    series: usize,
}

impl Served {
    fn parse(body: &str) -> Self {
        let mut served = Served {
            rows: Vec::new(),
            metadata: HashMap::new(),
            maintenance: BTreeSet::new(),
            tenants: BTreeSet::new(),
            series: count_series(body),
        };
        for line in body.lines() {
            let Some((name, mut labels, value)) = parse_sample(line) else {
                continue;
            };
            let mut take = |label: &str| {
                labels
                    .iter()
                    .position(|(l, _)| l == label)
                    .map(|p| labels.remove(p).1)
                    .unwrap_or_default()
            };
            match name {
                "user_threshold" => {
                    let row = Row {
                        tenant: take("tenant"),
                        component: take("component"),
                        metric: take("metric"),
                        severity: take("severity"),
                        labels,
                        value,
                    };
                    served.tenants.insert(row.tenant.clone());
                    served.rows.push(row);
                }
                "tenant_metadata_info" => {
                    let tenant = take("tenant");
                    let fields: Vec<(String, String)> = ["owner", "runbook_url", "tier"]
                        .into_iter()
                        .map(|label| (label.to_owned(), take(label)))
                        .filter(|(_, value)| !value.is_empty())
                        .collect();
                    served.metadata.insert(tenant, fields);
                }
                "user_state_filter" if value == 1.0 && take("filter") == "maintenance" => {
                    served.maintenance.insert(take("tenant"));
                }
                _ => {}
            }
        }
        served
    }
}

/// Label pairs, in the order of the exposition.
type Labels = Vec<(String, String)>;

/// `name{labels} value` of a text exposition line.
fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut labels = Vec::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut chars = inner.char_indices().peekable();
        loop {
            while chars.next_if(|(_, c)| *c == ',' || *c == ' ').is_some() {}
            match chars.peek() {
                Some((at, '}')) => {
                    rest = &inner[at + 1..];
                    break;
                }
                None => return None,
                _ => {}
            }
            let mut label = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                label.push(c);
            }
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            loop {
                match chars.next()?.1 {
                    '"' => break,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            }
            labels.push((label.trim().to_owned(), value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some((name, labels, value))
}

// ---------------------------------------------------------------------------------------------
// The per-tenant variant

/// The hand-written equivalent of the packs: per tenant one file with one group, and in it, for
/// every alert of the packs (warning and critical tier) for which `dynalert serve` serves the
/// tenant a threshold row, one alerting rule `(<the key's normalization expression with
/// tenant="…" in every selector>) <op> <the tenant's number>`. A disabled key has no rule; a
/// per-queue row gets its own rule on that queue's series, and the tenant-wide number a rule
/// on the other queues. Same alert names, `for:`, `severity`/`metric_group`/`pack` labels; the
/// tenant's metadata (and on a per-queue rule its queue) as static labels; no maintenance
/// (hand-written rules have none) and no recording rules. Returns the number of rules written.
fn write_per_tenant(
    dir: &Path,
    catalogue: &Catalogue,
    served: &Served,
    tenants: &[String],
) -> Result<usize> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut index: HashMap<(&str, &str, &str, &str), Vec<&Row>> = HashMap::new();
    for row in &served.rows {
        index
            .entry((&row.tenant, &row.component, &row.metric, &row.severity))
            .or_default()
            .push(row);
    }
    let mut total = 0;
    for tenant in tenants {
        let mut yaml = format!(
            "# Hand-written style: tenant {tenant}'s alerts, its thresholds inlined.\n\
             groups:\n- name: {tenant}\n  rules:\n"
        );
        let metadata = served.metadata.get(tenant).map_or(&[][..], Vec::as_slice);
        let tenant_matcher = format!("tenant={}", promql_string(tenant));
        for key in &catalogue.keys {
            for (severity, alert) in [
                ("warning", Some(&key.alert)),
                ("critical", key.critical_alert.as_ref()),
            ] {
                let Some(alert) = alert else { continue };
                let Some(rows) = index.get(&(tenant, &key.component, &key.metric, severity)) else {
                    continue;
                };
                // Static labels: the tenant's metadata, and on a per-queue rule its queue.
                let rule = |matchers: &str,
                            threshold: f64,
                            queue: Option<(&str, &str)>,
                            yaml: &mut String| {
                    let expr = format!(
                        "({}) {} {}",
                        restrict(&key.signal, matchers),
                        key.op,
                        threshold
                    );
                    let mut labels = metadata.to_vec();
                    labels.extend(queue.map(|(l, v)| (l.to_owned(), v.to_owned())));
                    write_rule(
                        yaml, key, alert, severity, &expr, threshold, tenant, &labels,
                    );
                };
                let mut wide = None;
                let mut per_value: Vec<(&str, f64)> = Vec::new();
                let dimension = key.dimension.as_deref();
                for row in rows {
                    let value_of = |label: &str| {
                        row.labels
                            .iter()
                            .find(|(l, _)| l == label)
                            .map(|(_, v)| v.as_str())
                    };
                    match dimension {
                        Some(label) => {
                            if let Some(value) = value_of(label) {
                                per_value.push((value, row.value));
                            } else if row.labels.is_empty() {
                                wide = Some(row.value);
                            }
                            // `<label>_re` rows (regex dimensions) are not generated here.
                        }
                        None if row.labels.is_empty() => wide = Some(row.value),
                        None => {}
                    }
                }
                match dimension {
                    Some(label) => {
                        let raw = dimension_raw_label(label);
                        for (value, threshold) in &per_value {
                            // `disable` on one queue is served as +Inf: nothing to alert on.
                            if threshold.is_finite() {
                                let matchers =
                                    format!("{tenant_matcher}, {raw}={}", promql_string(value));
                                rule(&matchers, *threshold, Some((label, value)), &mut yaml);
                                total += 1;
                            }
                        }
                        if let Some(threshold) = wide {
                            let matchers = if per_value.is_empty() {
                                tenant_matcher.clone()
                            } else {
                                let values: Vec<&str> = per_value.iter().map(|(v, _)| *v).collect();
                                format!("{tenant_matcher}, {raw}!~{}", promql_alternatives(&values))
                            };
                            rule(&matchers, threshold, None, &mut yaml);
                            total += 1;
                        }
                    }
                    None => {
                        if let Some(threshold) = wide {
                            rule(&tenant_matcher, threshold, None, &mut yaml);
                            total += 1;
                        }
                    }
                }
            }
        }
        if yaml.ends_with("rules:\n") {
            yaml.push_str("    []\n");
        }
        fs::write(dir.join(format!("{tenant}.yml")), yaml)?;
    }
    Ok(total)
}

/// The raw exporter label a dimension is copied from (the label itself when not listed).
fn dimension_raw_label(label: &str) -> &str {
    dimension(label).map_or(label, |d| d.raw_label)
}

#[allow(clippy::too_many_arguments)]
fn write_rule(
    yaml: &mut String,
    key: &Key,
    alert: &str,
    severity: &str,
    expr: &str,
    threshold: f64,
    tenant: &str,
    labels: &[(String, String)],
) {
    let _ = writeln!(yaml, "  - alert: {alert}");
    let _ = writeln!(yaml, "    expr: {}", yaml_string(expr));
    let _ = writeln!(yaml, "    for: {}", key.for_);
    let _ = writeln!(yaml, "    labels:");
    let _ = writeln!(yaml, "      severity: {severity}");
    let _ = writeln!(yaml, "      metric_group: {}", key.name);
    let _ = writeln!(yaml, "      pack: {}", key.pack);
    for (label, value) in labels {
        let _ = writeln!(yaml, "      {label}: {}", yaml_string(value));
    }
    let _ = writeln!(yaml, "    annotations:");
    let _ = writeln!(
        yaml,
        "      summary: {}",
        yaml_string(&format!("{} (tenant {tenant})", key.summary))
    );
    let _ = writeln!(
        yaml,
        "      description: {}",
        yaml_string(&format!(
            "{}: tenant {tenant} is at {{{{ $value | humanize }}}} {}, above its {severity} \
             threshold {threshold}.",
            key.description, key.unit
        ))
    );
}

/// A double-quoted YAML scalar.
fn yaml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// The reference layout

/// The rendered packs with every threshold lookup (`max by(…) (user_threshold{…})`) recorded as
/// `<labels>:alert_threshold:<key>:<severity>` in a `<pack>-thresholds.yml` group and the
/// alerts reading the recorded series: the reference project's "record everything" layout.
fn write_reference(rendered: &Path, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for path in yaml_files(rendered)? {
        let name = path
            .file_name()
            .context("file name")?
            .to_string_lossy()
            .into_owned();
        let text = fs::read_to_string(&path)?;
        let Some(pack) = name.strip_suffix("-alert.yml") else {
            fs::write(dir.join(&name), text)?;
            continue;
        };
        let (alerts, recorded) = record_thresholds(&text);
        let mut yaml = format!("groups:\n- name: {pack}-threshold-lookups\n  rules:\n");
        for (record, expr) in &recorded {
            let _ = writeln!(
                yaml,
                "  - record: {record}\n    expr: {}",
                yaml_string(expr)
            );
        }
        fs::write(dir.join(&name), alerts)?;
        fs::write(dir.join(format!("{pack}-thresholds.yml")), yaml)?;
    }
    Ok(())
}

/// `text` with each threshold lookup replaced by a recorded series, and the recording rules.
fn record_thresholds(text: &str) -> (String, Vec<(String, String)>) {
    let mut lookups: Vec<(String, String)> = Vec::new();
    let mut from = 0;
    while let Some(found) = text[from..].find("(user_threshold{") {
        let at = from + found;
        let line_start = text[..at].rfind('\n').map_or(0, |p| p + 1);
        let (Some(start), Some(end)) = (
            text[line_start..at]
                .rfind("max by(")
                .map(|p| line_start + p),
            text[at..].find("})").map(|p| at + p + 2),
        ) else {
            from = at + 1;
            continue;
        };
        let expr = &text[start..end];
        if !lookups.iter().any(|(e, _)| e == expr) {
            let by = expr["max by(".len()..]
                .split(')')
                .next()
                .unwrap_or("tenant")
                .split(',')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("_");
            let matcher = |label: &str| {
                let needle = format!("{label}=\"");
                expr.find(&needle)
                    .map(|p| &expr[p + needle.len()..])
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("")
                    .to_owned()
            };
            let base = format!(
                "{by}:alert_threshold:{}_{}:{}",
                matcher("component"),
                matcher("metric"),
                matcher("severity")
            );
            let mut name = base.clone();
            let mut k = 2;
            while lookups.iter().any(|(_, n)| *n == name) {
                name = format!("{base}_{k}");
                k += 1;
            }
            lookups.push((expr.to_owned(), name));
        }
        from = end;
    }
    let mut out = text.to_owned();
    for (expr, name) in &lookups {
        out = out.replace(expr.as_str(), name);
    }
    let recorded = lookups
        .into_iter()
        .map(|(expr, name)| (name, expr))
        .collect();
    (out, recorded)
}

// ---------------------------------------------------------------------------------------------
// The synthetic exporter

/// The raw series of mysqld_exporter and redis_exporter for every tenant × 2 instances, with
/// the metric names and labels the packs read. Values are a pure function of tenant, instance
/// and metric (counters grow at a fixed rate), a few percent above the usual thresholds.
struct Synthetic {
    tenants: Vec<String>,
    packs: Vec<String>,
    started: Instant,
}

impl Synthetic {
    fn new(tenants: Vec<String>, packs: Vec<String>) -> Self {
        Self {
            tenants,
            packs,
            started: Instant::now(),
        }
    }

    fn render(&self) -> String {
        let t = self.started.elapsed().as_secs_f64();
        let mut out = String::with_capacity(self.tenants.len() * 8192);
        for pack in &self.packs {
            match pack.as_str() {
                "mariadb" => self.mariadb(&mut out, t),
                "redis" => self.redis(&mut out, t),
                _ => {}
            }
        }
        out
    }

    /// `# TYPE`, then one sample per tenant, instance and extra label set for which `value`
    /// (tenant index, instance, extra index) gives a number.
    fn family(
        &self,
        out: &mut String,
        (name, kind, service): (&str, &str, &str),
        extra: &[&str],
        value: impl Fn(usize, usize, usize) -> Option<f64>,
    ) {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let extra = if extra.is_empty() { &[""][..] } else { extra };
        for (i, tenant) in self.tenants.iter().enumerate() {
            for j in 0..INSTANCES {
                for (k, labels) in extra.iter().enumerate() {
                    if let Some(v) = value(i, j, k) {
                        let _ = write!(
                            out,
                            "{name}{{tenant=\"{tenant}\",instance=\"{tenant}-{service}-{j}:9100\""
                        );
                        if !labels.is_empty() {
                            out.push(',');
                            out.push_str(labels);
                        }
                        let _ = writeln!(out, "}} {v}");
                    }
                }
            }
        }
    }

    fn mariadb(&self, out: &mut String, t: f64) {
        let s = "mysql";
        let up = |i, j| unit(i, j, 1) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        let replica = |i, j| (j == 1 && up(i, j)).then_some(());
        self.family(out, ("mysql_up", "gauge", s), &[], |i, j, _| {
            Some(if up(i, j) { 1.0 } else { 0.0 })
        });
        let gauges = [
            (
                "mysql_global_status_threads_connected",
                2,
                (5.0, 60.0),
                (85.0, 140.0),
            ),
            (
                "mysql_global_status_threads_running",
                3,
                (1.0, 20.0),
                (45.0, 80.0),
            ),
        ];
        for (name, salt, normal, high) in gauges {
            self.family(out, (name, "gauge", s), &[], |i, j, _| {
                live(i, j, level(i, j, salt, normal, high).round())
            });
        }
        self.family(
            out,
            ("mysql_global_variables_max_connections", "gauge", s),
            &[],
            |i, j, _| live(i, j, 151.0),
        );
        // Per-minute rates, usual and high. Rates jitter a little from one evaluation to the
        // next, so both ranges stay clear of every threshold a tenant can have (custom values
        // are 0.5 to 2 times the defaults of 10, 10, 1 and 60 per minute).
        let counters = [
            (
                "mysql_global_status_slow_queries",
                4,
                (0.0, 2.0),
                (25.0, 40.0),
            ),
            (
                "mysql_global_status_aborted_connects",
                5,
                (0.0, 2.0),
                (25.0, 40.0),
            ),
            (
                "mysql_global_status_innodb_deadlocks",
                6,
                (0.0, 0.2),
                (2.5, 5.0),
            ),
            (
                "mysql_global_status_innodb_row_lock_waits",
                7,
                (0.0, 12.0),
                (130.0, 200.0),
            ),
        ];
        for (name, salt, normal, high) in counters {
            self.family(out, (name, "untyped", s), &[], |i, j, _| {
                live(
                    i,
                    j,
                    counter(i, j, salt, level(i, j, salt, normal, high) / 60.0, t),
                )
            });
        }
        self.family(
            out,
            ("mysql_slave_status_seconds_behind_master", "gauge", s),
            &[],
            |i, j, _| replica(i, j).map(|()| level(i, j, 8, (0.0, 5.0), (40.0, 300.0)).round()),
        );
        for (name, salt) in [
            ("mysql_slave_status_slave_io_running", 9),
            ("mysql_slave_status_slave_sql_running", 10),
        ] {
            self.family(out, (name, "gauge", s), &[], |i, j, _| {
                replica(i, j).map(|()| {
                    if unit(i, j, salt) < P_HIGH / 2.0 {
                        0.0
                    } else {
                        1.0
                    }
                })
            });
        }
    }

    fn redis(&self, out: &mut String, t: f64) {
        let s = "redis";
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        const COMMANDS: [&str; 4] = [
            "cmd=\"get\"",
            "cmd=\"set\"",
            "cmd=\"lpush\"",
            "cmd=\"brpop\"",
        ];
        let up = |i, j| unit(i, j, 31) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        self.family(out, ("redis_up", "gauge", s), &[], |i, j, _| {
            Some(if up(i, j) { 1.0 } else { 0.0 })
        });
        // A tenth of the instances have no maxmemory (0) and are left out of the ratio.
        let max_memory = |i, j| if unit(i, j, 32) < 0.1 { 0.0 } else { GIB };
        self.family(
            out,
            ("redis_memory_max_bytes", "gauge", s),
            &[],
            |i, j, _| live(i, j, max_memory(i, j)),
        );
        self.family(
            out,
            ("redis_memory_used_bytes", "gauge", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    (GIB * level(i, j, 33, (0.2, 0.8), (0.9, 0.99))).round(),
                )
            },
        );
        self.family(
            out,
            ("redis_connected_clients", "gauge", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    level(i, j, 34, (10.0, 800.0), (1100.0, 2000.0)).round(),
                )
            },
        );
        let keys: Vec<String> = DIMENSIONS[0]
            .values
            .iter()
            .map(|queue| format!("db=\"db0\",key=\"{queue}\""))
            .collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.family(out, ("redis_key_size", "gauge", s), &keys, |i, j, k| {
            live(
                i,
                j,
                level(i, j, 35 + k as u64, (0.0, 300.0), (600.0, 5000.0)).round(),
            )
        });
        self.family(
            out,
            ("redis_rejected_connections_total", "counter", s),
            &[],
            |i, j, _| {
                live(
                    i,
                    j,
                    counter(i, j, 40, level(i, j, 40, (0.0, 0.0), (1.0, 5.0)) / 60.0, t),
                )
            },
        );
        // Calls per second per command, and the instance's mean latency in ms.
        let calls = |i, j, k: usize| level(i, j, 41 + k as u64, (50.0, 500.0), (50.0, 500.0));
        let latency_ms = |i, j| level(i, j, 50, (0.01, 2.0), (22.0, 30.0));
        self.family(
            out,
            ("redis_commands_total", "counter", s),
            &COMMANDS,
            |i, j, k| {
                live(
                    i,
                    j,
                    counter(i, j, 41 + k as u64, calls(i, j, k), t).floor(),
                )
            },
        );
        self.family(
            out,
            ("redis_commands_duration_seconds_total", "counter", s),
            &COMMANDS,
            |i, j, k| {
                live(
                    i,
                    j,
                    counter(
                        i,
                        j,
                        45 + k as u64,
                        calls(i, j, k) * latency_ms(i, j) / 1000.0,
                        t,
                    ),
                )
            },
        );
        self.family(
            out,
            ("redis_commands_failed_calls_total", "counter", s),
            &COMMANDS,
            |i, j, k| {
                live(
                    i,
                    j,
                    counter(
                        i,
                        j,
                        60 + k as u64,
                        level(i, j, 60, (0.0, 0.007), (0.2, 0.5)),
                        t,
                    ),
                )
            },
        );
        self.family(
            out,
            ("redis_commands_rejected_calls_total", "counter", s),
            &COMMANDS,
            |i, j, k| live(i, j, counter(i, j, 65 + k as u64, 0.0, t)),
        );
        self.family(out, ("redis_master_link_up", "gauge", s), &[], |i, j, _| {
            (j == 1 && up(i, j)).then(|| if unit(i, j, 70) < P_HIGH { 0.0 } else { 1.0 })
        });
    }
}

/// Uniform in [0, 1), a pure function of tenant, instance and salt.
fn unit(i: usize, j: usize, salt: u64) -> f64 {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ((j as u64) << 56)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (mix(mix(seed)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A value in `normal`, or for a share `P_HIGH` of the instances in `high`.
fn level(i: usize, j: usize, salt: u64, normal: (f64, f64), high: (f64, f64)) -> f64 {
    let u = unit(i, j, salt);
    if u < P_HIGH {
        high.0 + (high.1 - high.0) * u / P_HIGH
    } else {
        normal.0 + (normal.1 - normal.0) * (u - P_HIGH) / (1.0 - P_HIGH)
    }
}

/// A counter that started somewhere below 1000 and grows by `per_second`.
fn counter(i: usize, j: usize, salt: u64, per_second: f64, t: f64) -> f64 {
    (1000.0 * unit(i, j, salt ^ 0xC0FF_EE00)).floor() + per_second * t
}

/// The synthetic exporter served over HTTP/1.1 on 127.0.0.1 by a thread of this process,
/// stopped (and joined) on drop.
struct SyntheticExporter {
    port: u16,
    synthetic: Arc<Synthetic>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyntheticExporter {
    fn start(tenants: Vec<String>, packs: Vec<String>) -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the synthetic exporter")?;
        let port = listener.local_addr()?.port();
        let synthetic = Arc::new(Synthetic::new(tenants, packs));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (synthetic, stop) = (Arc::clone(&synthetic), Arc::clone(&stop));
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let synthetic = Arc::clone(&synthetic);
                    thread::spawn(move || {
                        let _ = serve_scrape(stream, &synthetic);
                    });
                }
            })
        };
        Ok(Self {
            port,
            synthetic,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for SyntheticExporter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept so that the thread sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers one request: the exposition on `/metrics`, 404 elsewhere; then closes.
fn serve_scrape(mut stream: TcpStream, synthetic: &Synthetic) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut buffer = [0; 4096];
    while find(&head, b"\r\n\r\n").is_none() && head.len() < 64 * 1024 {
        match stream.read(&mut buffer)? {
            0 => return Ok(()),
            n => head.extend_from_slice(&buffer[..n]),
        }
    }
    let request = String::from_utf8_lossy(&head);
    let path = request.split(' ').nth(1).unwrap_or("");
    let (status, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        ("200 OK", synthetic.render())
    } else {
        ("404 Not Found", "not found\n".to_owned())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Prometheus

struct Instance {
    variant: Variant,
    port: u16,
    guard: ChildGuard,
    /// From spawning the process to the first 200 of `/-/ready` (rule files loaded).
    ready: Duration,
}

impl Instance {
    fn start(
        args: &BenchRulesArgs,
        variant: Variant,
        rule_files: Option<&Path>,
        dir: &Path,
        [exporter, dynalert]: [u16; 2],
    ) -> Result<Self> {
        let dir = dir.join(format!("prometheus-{}", variant.name()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let interval = args.interval_secs;
        let rule_files = rule_files.map_or_else(
            || "rule_files: []\n".to_owned(),
            |glob| {
                format!(
                    "rule_files:\n  - {}\n",
                    yaml_string(&glob.to_string_lossy())
                )
            },
        );
        let config = format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n  \
             evaluation_interval: {interval}s\n{rule_files}scrape_configs:\n  \
             - job_name: exporters\n    honor_labels: true\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{exporter}\"]\n  \
             - job_name: dynalert\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{dynalert}\"]\n"
        );
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config)?;
        let port = free_port()?;
        let mut command = Command::new(&args.prometheus);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle");
        let (guard, ready) = start(command, port, "/-/ready", &dir.join("prometheus.log"))?;
        Ok(Self {
            variant,
            port,
            guard,
            ready,
        })
    }

    fn sample(&self) -> Result<Sample> {
        let (response, _) = request(self.port, "GET", "/metrics", "", b"")?;
        let at = Instant::now();
        ensure!(
            response.status == 200,
            "{} /metrics answered {}",
            self.variant.name(),
            response.status
        );
        let body = String::from_utf8_lossy(&response.body);
        let sum = |name: &str| values(&body, name).iter().sum::<f64>();
        let last_evaluations = values(
            &body,
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
        );
        Ok(Sample {
            at,
            eval: sum("prometheus_rule_group_last_duration_seconds"),
            cpu: sum("process_cpu_seconds_total"),
            heap: sum("go_memstats_heap_inuse_bytes"),
            heap_goal: sum("go_memstats_next_gc_bytes"),
            rss: rss_bytes(self.guard.child.id())?,
            head_series: sum("prometheus_tsdb_head_series"),
            failures: sum("prometheus_rule_evaluation_failures_total"),
            missed: sum("prometheus_rule_group_iterations_missed_total"),
            unevaluated: last_evaluations.iter().filter(|&&t| t <= 0.0).count(),
        })
    }

    /// Instant vector query answered with one number (0 for an empty result).
    fn query_number(&self, query: &str) -> Result<f64> {
        let path = format!("/api/v1/query?query={}", url_encode(query));
        let (response, _) = request(self.port, "GET", &path, "", b"")?;
        ensure!(
            response.status == 200,
            "query {query:?} answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let result = json.get("data").and_then(|d| d.get("result"));
        Ok(result
            .map(Json::array)
            .and_then(|r| r.first())
            .and_then(|sample| sample.get("value"))
            .map(Json::array)
            .and_then(|pair| pair.get(1))
            .and_then(Json::str)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0))
    }

    /// The pending and firing alerts, from the `ALERTS` series.
    fn alert_set(&self) -> Result<BTreeSet<Alert>> {
        let path = format!("/api/v1/query?query={}", url_encode("ALERTS"));
        let (response, _) = request(self.port, "GET", &path, "", b"")?;
        ensure!(
            response.status == 200,
            "ALERTS query answered {}",
            response.status
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let result = json.get("data").and_then(|d| d.get("result"));
        Ok(result
            .map(Json::array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|sample| sample.get("metric"))
            .map(|metric| {
                let label = |name: &str| {
                    metric
                        .get(name)
                        .and_then(Json::str)
                        .unwrap_or("")
                        .to_owned()
                };
                (
                    label("alertname"),
                    label("tenant"),
                    label("severity"),
                    label("queue"),
                )
            })
            .collect())
    }

    /// The rules as `/api/v1/rules` lists them, with their last evaluation times.
    fn rules(&self) -> Result<Rules> {
        let (response, _) = request(self.port, "GET", "/api/v1/rules", "", b"")?;
        ensure!(
            response.status == 200,
            "/api/v1/rules answered {}",
            response.status
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let groups = json
            .get("data")
            .and_then(|d| d.get("groups"))
            .map(Json::array)
            .unwrap_or(&[]);
        let time = |item: &Json| item.get("evaluationTime").and_then(Json::number);
        let mut rules = Rules {
            groups: groups.len(),
            ..Rules::default()
        };
        for group in groups {
            let name = group.get("name").and_then(Json::str).unwrap_or("?");
            rules
                .group_times
                .push((name.to_owned(), time(group).unwrap_or(0.0)));
            for rule in group.get("rules").map(Json::array).unwrap_or(&[]) {
                match rule.get("type").and_then(Json::str) {
                    Some("alerting") => rules.alerting += 1,
                    Some("recording") => rules.recording += 1,
                    _ => {}
                }
                let rule_name = rule.get("name").and_then(Json::str).unwrap_or("?");
                rules
                    .rule_times
                    .push((rule_name.to_owned(), time(rule).unwrap_or(0.0)));
            }
        }
        let by_time = |a: &(String, f64), b: &(String, f64)| b.1.total_cmp(&a.1);
        rules.group_times.sort_by(by_time);
        rules.rule_times.sort_by(by_time);
        rules.rule_times.truncate(5);
        Ok(rules)
    }

    fn reload(&self) -> Result<Duration> {
        let (response, took) = request(self.port, "POST", "/-/reload", "", b"")?;
        ensure!(
            response.status == 200,
            "{} reload answered {}: {}",
            self.variant.name(),
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        Ok(took)
    }
}

/// Rule counts and the last evaluation times (seconds) of the groups and of the 5 costliest
/// rules, from `/api/v1/rules`.
#[derive(Default)]
struct Rules {
    groups: usize,
    alerting: usize,
    recording: usize,
    group_times: Vec<(String, f64)>,
    rule_times: Vec<(String, f64)>,
}

/// One reading of a Prometheus's `/metrics`.
struct Sample {
    at: Instant,
    /// Σ `prometheus_rule_group_last_duration_seconds`.
    eval: f64,
    cpu: f64,
    heap: f64,
    heap_goal: f64,
    rss: f64,
    head_series: f64,
    failures: f64,
    missed: f64,
    /// Rule groups not evaluated yet.
    unevaluated: usize,
}

/// What one Prometheus measured in a round.
struct Measured {
    variant: Variant,
    ready: Duration,
    /// `rules=` of Prometheus's "Completed loading of configuration file" log lines: at start,
    /// then after each reload.
    load_at_start: Option<Duration>,
    load_at_reload: Vec<Duration>,
    reload_requests: Vec<Duration>,
    rules: Rules,
    /// Samples of Σ `prometheus_rule_group_last_duration_seconds`, seconds.
    eval: Vec<f64>,
    /// Cores: Δ`process_cpu_seconds_total` / Δt over the window.
    cpu: f64,
    heap: Vec<f64>,
    /// `go_memstats_next_gc_bytes`: the GC's heap goal, twice the live heap after the last
    /// collection (GOGC=100); steadier than the heap in use, which follows the GC cycle.
    heap_goal: Vec<f64>,
    rss: Vec<f64>,
    head_series: f64,
    failures: f64,
    missed: f64,
    /// `count(ALERTS)`: pending or firing, and of those, of tenants in maintenance.
    alerts: f64,
    alerts_in_maintenance: f64,
    /// `alertname tenant severity queue` of every pending or firing alert.
    alert_set: BTreeSet<Alert>,
}

/// An alert's identity across variants: alert name, tenant, severity, queue.
type Alert = (String, String, String, String);

/// Waits until the instances have run for `history` (and at least three intervals) and every
/// rule group has been evaluated.
fn warm_up(args: &BenchRulesArgs, instances: &[Instance], history: Duration) -> Result<()> {
    let interval = Duration::from_secs(args.interval_secs);
    let started = Instant::now();
    let minimum = history.max(3 * interval);
    println!(
        "history: all instances run together for {:.0} s",
        minimum.as_secs_f64()
    );
    thread::sleep(minimum);
    loop {
        let mut pending = 0;
        for instance in instances {
            pending += instance.sample()?.unevaluated;
        }
        if pending == 0 {
            break;
        }
        if started.elapsed() > minimum + 30 * interval {
            println!("warning: {pending} rule groups still not evaluated after the warm-up");
            break;
        }
        thread::sleep(interval);
    }
    Ok(())
}

/// Samples the instances once per interval for `--settle-secs`, then reads their rules and
/// alerts.
fn window(args: &BenchRulesArgs, instances: &[&Instance]) -> Result<Vec<Measured>> {
    let interval = Duration::from_secs(args.interval_secs);
    let ticks = (args.settle_secs / args.interval_secs).max(2);
    let names: Vec<&str> = instances.iter().map(|i| i.variant.name()).collect();
    println!(
        "measuring {}: a sample every {} s for {} s",
        names.join(", "),
        args.interval_secs,
        ticks * args.interval_secs
    );
    let window = Instant::now();
    let mut samples: Vec<Vec<Sample>> = instances.iter().map(|_| Vec::new()).collect();
    for tick in 0..=ticks {
        let due = window + interval * tick as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        for (instance, samples) in instances.iter().zip(&mut samples) {
            samples.push(instance.sample()?);
        }
    }

    let mut results = Vec::new();
    for (instance, samples) in instances.iter().zip(samples) {
        let (first, last) = (&samples[0], &samples[samples.len() - 1]);
        let seconds = last.at.duration_since(first.at).as_secs_f64();
        let rules = instance.rules()?;
        let (alerts, alerts_in_maintenance, alert_set) = if instance.variant == Variant::Baseline {
            (0.0, 0.0, BTreeSet::new())
        } else {
            (
                instance.query_number("count(ALERTS)")?,
                instance.query_number(
                    "count(ALERTS and on(tenant) max by(tenant) \
                     (user_state_filter{filter=\"maintenance\"}))",
                )?,
                instance.alert_set()?,
            )
        };
        results.push(Measured {
            variant: instance.variant.clone(),
            ready: instance.ready,
            load_at_start: None,
            load_at_reload: Vec::new(),
            reload_requests: Vec::new(),
            rules,
            eval: samples.iter().map(|s| s.eval).collect(),
            cpu: (last.cpu - first.cpu) / seconds,
            heap: samples.iter().map(|s| s.heap).collect(),
            heap_goal: samples.iter().map(|s| s.heap_goal).collect(),
            rss: samples.iter().map(|s| s.rss).collect(),
            head_series: last.head_series,
            failures: last.failures,
            missed: last.missed - first.missed,
            alerts,
            alerts_in_maintenance,
            alert_set,
        });
    }
    Ok(results)
}

/// `--reloads` times `POST /-/reload`, then the rule load times of the log: at start and after
/// each reload. After the window: reloads must not disturb it.
fn reloads(args: &BenchRulesArgs, instance: &Instance, result: &mut Measured) -> Result<()> {
    for _ in 0..args.reloads {
        result.reload_requests.push(instance.reload()?);
        thread::sleep(Duration::from_millis(200));
    }
    let loads = config_loads(&instance.guard.log);
    result.load_at_start = loads.first().copied();
    result.load_at_reload = loads.into_iter().skip(1).collect();
    Ok(())
}

/// Processes stopped with SIGSTOP, continued (SIGCONT) on drop: while one Prometheus is
/// measured, the others leave it the machine.
struct Paused(Vec<u32>);

impl Paused {
    fn new<'a>(instances: impl IntoIterator<Item = &'a Instance>) -> Result<Self> {
        let mut paused = Paused(Vec::new());
        for instance in instances {
            let pid = instance.guard.child.id();
            send_signal(pid, "STOP")?;
            paused.0.push(pid);
        }
        Ok(paused)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = send_signal(pid, "CONT");
        }
    }
}

/// `kill -<signal> <pid>` (std has no other way to send a signal than SIGKILL).
fn send_signal(pid: u32, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{signal} {pid} failed ({status})");
    Ok(())
}

/// `rules=` of every "Completed loading of configuration file" line of a Prometheus log.
fn config_loads(log: &Path) -> Vec<Duration> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains("Completed loading of configuration file"))
        .filter_map(|line| {
            let field = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("rules="))?;
            go_duration(field)
        })
        .collect()
}

/// A Go `time.Duration` string (`1m2.5s`, `12.3ms`, `850µs`).
fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        seconds += number
            * match &rest[..unit_end] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "µs" | "μs" | "us" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(seconds))
}

/// The values of every sample of `name` in a text exposition.
fn values(body: &str, name: &str) -> Vec<f64> {
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let rest = if rest.starts_with('{') {
                &rest[rest.rfind('}')? + 1..]
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None;
            };
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn rss_bytes(pid: u32) -> Result<f64> {
    let path = format!("/proc/{pid}/status");
    let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map(|kib| kib * 1024.0)
        .with_context(|| format!("no VmRSS in {path}"))
}

// ---------------------------------------------------------------------------------------------
// Report

struct Report<'a> {
    args: &'a BenchRulesArgs,
    load_average: String,
    prometheus_version: String,
    catalogue: &'a Catalogue,
    rounds: Vec<Round>,
    took: Duration,
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let mut md = String::from("## Rule packs benchmark\n\n");
        let command: Vec<String> = std::env::args().skip(1).collect();
        let _ = writeln!(md, "- command: `cargo xtask {}`", command.join(" "));
        let _ = writeln!(md, "- date: {}", date());
        let _ = writeln!(md, "- machine: {}", machine());
        let _ = writeln!(md, "- load average at the start: {}", self.load_average);
        let _ = writeln!(md, "- {}", self.prometheus_version);
        let _ = writeln!(
            md,
            "- packs: {} ({} keys, {} alerting + {} recording rules as rendered); \
             scrape and evaluation interval {} s; {} s of history, then a {} s measurement \
             window per Prometheus; {} reloads per Prometheus; whole run {:.0} s\n",
            self.args.packs.join(", "),
            self.catalogue.keys.len(),
            self.catalogue.alerts,
            self.catalogue.recording,
            self.args.interval_secs,
            self.args.history_secs,
            self.args.settle_secs,
            self.args.reloads,
            self.took.as_secs_f64()
        );
        self.summary(&mut md);
        for round in &self.rounds {
            self.round(&mut md, round);
        }
        md.push_str(&self.method());
        md
    }

    /// One line per tenant count: the figures the issue has targets for.
    fn summary(&self, md: &mut String) {
        md.push_str(
            "| tenants | evaluation time per cycle | CPU above the baseline | GC heap goal | \
             head series | rule load at reload |\n|---|---|---|---|---|---|\n",
        );
        for round in &self.rounds {
            let (Some(p), Some(t)) = (round.get(Variant::Packs), round.get(Variant::PerTenant))
            else {
                continue;
            };
            let base = round.get(Variant::Baseline);
            let cpu = |m: &Measured| m.cpu - base.map_or(0.0, |b| b.cpu);
            let pair = |a: String, b: String, ratio: String| format!("{a} / {b} ({ratio})");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                round.tenants,
                pair(
                    seconds(median(&p.eval)),
                    seconds(median(&t.eval)),
                    times(median(&t.eval), median(&p.eval))
                ),
                pair(cores(cpu(p)), cores(cpu(t)), times(cpu(t), cpu(p))),
                pair(
                    mib(median(&p.heap_goal)),
                    mib(median(&t.heap_goal)),
                    times(median(&t.heap_goal), median(&p.heap_goal))
                ),
                pair(
                    p.head_series.to_string(),
                    t.head_series.to_string(),
                    times(t.head_series, p.head_series)
                ),
                pair(
                    opt_duration(reload_median(p)),
                    opt_duration(reload_median(t)),
                    times(secs(reload_median(t)), secs(reload_median(p)))
                ),
            );
        }
        md.push_str(
            "\nEach cell: packs / per-tenant (how many times the packs are cheaper: per-tenant ÷ \
             packs, above 1× means the packs cost less).\n\n",
        );
    }

    fn round(&self, md: &mut String, round: &Round) {
        let n = round.tenants;
        let _ = writeln!(md, "### {n} tenants\n");
        let c = &round.conf;
        let _ = writeln!(
            md,
            "Synthetic exporter: {} series ({n} tenants × {INSTANCES} instances per service); \
             dynalert serve: {} series, {} `user_threshold` rows (tenant files: {} custom values, \
             {} disabled keys, {} raised critical tiers, {} per-queue rows, metadata on {} \
             tenants, maintenance on {}).\n",
            round.exporter_series,
            round.dynalert_series,
            round.threshold_rows,
            c.custom,
            c.disabled,
            c.critical,
            c.dimension_rows,
            c.metadata,
            c.maintenance
        );
        let columns: Vec<&Measured> = round.results.iter().collect();
        md.push_str("| metric |");
        for m in &columns {
            let _ = write!(md, " {} |", m.variant.name());
        }
        md.push_str(" per-tenant ÷ packs | target |\n|---|");
        for _ in &columns {
            md.push_str("---|");
        }
        md.push_str("---|---|\n");
        let (Some(packs), Some(per_tenant)) =
            (round.get(Variant::Packs), round.get(Variant::PerTenant))
        else {
            return;
        };
        let base_cpu = round.get(Variant::Baseline).map_or(0.0, |b| b.cpu);
        let base_heap = round
            .get(Variant::Baseline)
            .map_or(0.0, |b| median(&b.heap));
        let base_series = round.get(Variant::Baseline).map_or(0.0, |b| b.head_series);
        let at_target = n >= TARGET_TENANTS;
        let mut row =
            |metric: &str, cell: &dyn Fn(&Measured) -> String, ratio: String, target: String| {
                let _ = write!(md, "| {metric} |");
                for m in &columns {
                    let _ = write!(md, " {} |", cell(m));
                }
                let _ = writeln!(md, " {ratio} | {target} |");
            };
        let none = || "–".to_owned();
        let rules = |m: &Measured| m.variant != Variant::Baseline;
        row(
            "rule groups / alerting + recording rules",
            &|m| {
                let r = &m.rules;
                format!("{} / {} + {}", r.groups, r.alerting, r.recording)
            },
            times(
                (per_tenant.rules.alerting + per_tenant.rules.recording) as f64,
                (packs.rules.alerting + packs.rules.recording) as f64,
            ),
            none(),
        );
        row(
            "evaluation time per cycle (Σ last group duration, median)",
            &|m| {
                if rules(m) {
                    seconds(median(&m.eval))
                } else {
                    none()
                }
            },
            times(median(&per_tenant.eval), median(&packs.eval)),
            ratio_target(
                median(&per_tenant.eval) / median(&packs.eval),
                TARGET_EVAL,
                at_target,
                " (aim 10×)",
            ),
        );
        row(
            "evaluation time per cycle, min – max of the samples",
            &|m| {
                if rules(m) {
                    let (lo, hi) = min_max(&m.eval);
                    format!("{} – {}", seconds(lo), seconds(hi))
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "group iterations missed in the window",
            &|m| {
                if rules(m) {
                    format!("{}", m.missed)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "CPU (rate of `process_cpu_seconds_total`)",
            &|m| cores(m.cpu),
            none(),
            none(),
        );
        let cpu_ratio = (per_tenant.cpu - base_cpu) / (packs.cpu - base_cpu);
        row(
            "CPU above the baseline",
            &|m| {
                if rules(m) {
                    cores(m.cpu - base_cpu)
                } else {
                    none()
                }
            },
            times(per_tenant.cpu - base_cpu, packs.cpu - base_cpu),
            ratio_target(cpu_ratio, TARGET_CPU, at_target, " (aim 10×)"),
        );
        row(
            "heap in use (`go_memstats_heap_inuse_bytes`, median)",
            &|m| mib(median(&m.heap)),
            times(median(&per_tenant.heap), median(&packs.heap)),
            no_more_target(median(&packs.heap), median(&per_tenant.heap), at_target),
        );
        row(
            "heap in use above the baseline",
            &|m| {
                if rules(m) {
                    mib(median(&m.heap) - base_heap)
                } else {
                    none()
                }
            },
            times(
                median(&per_tenant.heap) - base_heap,
                median(&packs.heap) - base_heap,
            ),
            none(),
        );
        row(
            "GC heap goal (`go_memstats_next_gc_bytes`, median)",
            &|m| mib(median(&m.heap_goal)),
            times(median(&per_tenant.heap_goal), median(&packs.heap_goal)),
            no_more_target(
                median(&packs.heap_goal),
                median(&per_tenant.heap_goal),
                at_target,
            ),
        );
        row(
            "resident memory (VmRSS, median)",
            &|m| mib(median(&m.rss)),
            times(median(&per_tenant.rss), median(&packs.rss)),
            none(),
        );
        row(
            "head series (`prometheus_tsdb_head_series`)",
            &|m| format!("{}", m.head_series),
            times(per_tenant.head_series, packs.head_series),
            no_more_target(packs.head_series, per_tenant.head_series, at_target),
        );
        row(
            "head series above the baseline",
            &|m| {
                if rules(m) {
                    format!("{}", m.head_series - base_series)
                } else {
                    none()
                }
            },
            times(
                per_tenant.head_series - base_series,
                packs.head_series - base_series,
            ),
            none(),
        );
        let load_ratio = secs(reload_median(per_tenant)) / secs(reload_median(packs));
        row(
            "rule load at start (`rules=` of the config load log line)",
            &|m| opt_duration(m.load_at_start),
            times(secs(per_tenant.load_at_start), secs(packs.load_at_start)),
            ratio_target(
                secs(per_tenant.load_at_start) / secs(packs.load_at_start),
                TARGET_LOAD,
                at_target,
                "",
            ),
        );
        row(
            "rule load at reload (`rules=`, median)",
            &|m| opt_duration(reload_median(m)),
            times(secs(reload_median(per_tenant)), secs(reload_median(packs))),
            ratio_target(load_ratio, TARGET_LOAD, at_target, ""),
        );
        row(
            "process start → `/-/ready`",
            &|m| ms(m.ready),
            times(per_tenant.ready.as_secs_f64(), packs.ready.as_secs_f64()),
            none(),
        );
        row(
            "`POST /-/reload` round trip (median)",
            &|m| {
                let mut requests: Vec<f64> = m
                    .reload_requests
                    .iter()
                    .map(Duration::as_secs_f64)
                    .collect();
                requests.sort_by(f64::total_cmp);
                seconds(median(&requests))
            },
            none(),
            none(),
        );
        row(
            "alerts pending or firing (`count(ALERTS)`), of them tenants in maintenance",
            &|m| {
                if rules(m) {
                    format!("{} ({})", m.alerts, m.alerts_in_maintenance)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "rule evaluation failures",
            &|m| {
                if rules(m) {
                    format!("{}", m.failures)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        md.push('\n');
        for m in &round.results {
            if !matches!(m.variant, Variant::Baseline | Variant::PerTenant) {
                let list = |items: &[(String, f64)]| {
                    let items: Vec<String> = items
                        .iter()
                        .map(|(name, time)| format!("`{name}` {}", seconds(*time)))
                        .collect();
                    items.join(", ")
                };
                let _ = writeln!(
                    md,
                    "Last evaluation in {}, by group: {}; costliest rules: {}.\n",
                    m.variant.name(),
                    list(&m.rules.group_times),
                    list(&m.rules.rule_times)
                );
            }
        }
        md.push_str(&same_alerts(round, packs, per_tenant));
        if let Some(per_tenant) = round.get(Variant::PerTenant) {
            let times: Vec<f64> = per_tenant.rules.group_times.iter().map(|g| g.1).collect();
            let (_, slowest) = min_max(&times);
            let _ = writeln!(
                md,
                "Last evaluation in per-tenant: median group {}, slowest group {}. Load \
                 average at the end of the round: {}.\n",
                seconds(median(&times)),
                seconds(slowest),
                round.load_average_after
            );
        }
    }

    fn method(&self) -> String {
        let mut md = String::from("### What was measured\n\n");
        md.push_str(
            "- **baseline**: a Prometheus without rules scraping the same two targets; its CPU, \
             heap and series are subtracted where a row says \"above the baseline\".\n\
             - **packs**: the files of `dynalert rules render` for the packs, as shipped: \
             normalization recording rules, then one alerting rule per alert for all tenants \
             (threshold looked up inline with `max by(tenant)`, `unless` maintenance, metadata \
             join, per-queue match with tenant-wide fallback).\n\
             - **per-tenant**: the hand-written equivalent, generated per round: one file and \
             group per tenant; for every alert of the packs (warning and critical tier) for \
             which `dynalert serve` serves the tenant a threshold row, one alerting rule \
             `(<the key's normalization expression with tenant=\"…\" in every selector>) > \
             <the tenant's number>`. Disabled keys have no rule; a per-queue row gets a rule on \
             that queue's series and the tenant-wide number a rule on the other queues \
             (`key!~\"…\"`). Same alert names, `for:`, `severity`/`metric_group`/`pack` labels; \
             the tenant's metadata (and on a per-queue rule its queue) as static labels. No \
             maintenance (tenants in maintenance keep alerting, counted in brackets in the \
             alerts row) and no recording rules.\n",
        );
        if self.args.reference {
            md.push_str(
                "- **reference**: the reference project's layout: the packs plus a recording \
                 rule per threshold lookup (`tenant:alert_threshold:<key>:<severity>`), the \
                 alerts reading the recorded series.\n",
            );
        }
        for extra in &self.args.extra {
            if let Some((name, glob)) = extra.split_once('=') {
                let _ = writeln!(md, "- **{name}** (`--extra`): the rule files `{glob}`.");
            }
        }
        let _ = writeln!(
            md,
            "- Live series: a synthetic exporter (a thread of the xtask process) serves, for \
             every tenant, two mysqld_exporter and two redis_exporter instances' worth of the \
             series the packs read (the `tenant` label in the exposition, scraped with \
             `honor_labels`), about {:.0} % of values above the default thresholds, 2 % of \
             instances down. {}",
            P_HIGH * 100.0,
            if self.args.concurrent {
                "All Prometheus instances of a round are measured at the same time \
                 (`--concurrent`): on a small machine they take CPU from each other."
            } else {
                "Each Prometheus starts alone (the others paused); then all run together so that \
                 they build up history; then each is measured alone while the others are paused \
                 (SIGSTOP), so that it has the machine to itself. A pause leaves a gap in the \
                 paused instances' samples: `rate()` over a counter is unaffected (the increase \
                 is still counted), it just reads fewer samples."
            }
        );
        let _ = writeln!(
            md,
            "- History: every Prometheus of a round scraped and evaluated for {} s before the \
             first measurement. {}",
            self.args.history_secs,
            if self.args.history_secs >= 300 {
                "`rate(…[5m])` reads a full window, as in a Prometheus that has been running for \
                 a while."
            } else {
                "**Less than 5 minutes**: `rate(…[5m])` still underestimates rates and reads \
                 fewer samples than in steady state, which lowers the raw-sample work both \
                 variants share and so flatters the ratios."
            }
        );
        md.push_str(
            "- Evaluation time: Σ `prometheus_rule_group_last_duration_seconds` over the groups, \
             sampled once per interval over the window; the median of the samples. It is wall \
             time: groups evaluated at the same moment (1,000 per-tenant groups on 2 cores) \
             stretch each other's durations, and a pack alert's `query` annotation template \
             runs a query per active alert on every evaluation. CPU is the steadier measure of \
             work.\n\
             - CPU: Δ`process_cpu_seconds_total` / Δt over the window, minus the baseline's.\n\
             - Memory: the heap in use follows the GC cycle (tens of MiB either way between \
             samples); the GC heap goal (twice the live heap after the last collection) is \
             steadier. Both, and RSS, are medians over the window's samples.\n\
             - Rule load: the `rules=` duration Prometheus logs with \"Completed loading of \
             configuration file\" at start and after each `POST /-/reload` (unchanged files \
             are parsed again; unchanged groups keep running). Targets (≥ 5× cheaper \
             evaluation and CPU, no more memory or series, ≥ 50× faster load) are the issue's, \
             at 1,000 tenants.\n",
        );
        md
    }
}

/// Whether packs and per-tenant raise the same alerts, tenants in maintenance left out.
fn same_alerts(round: &Round, packs: &Measured, per_tenant: &Measured) -> String {
    let outside = |m: &Measured| -> BTreeSet<Alert> {
        m.alert_set
            .iter()
            .filter(|alert| !round.maintenance.contains(&alert.1))
            .cloned()
            .collect()
    };
    let (p, t) = (outside(packs), outside(per_tenant));
    let show = |only: Vec<&Alert>| {
        let examples: Vec<String> = only
            .iter()
            .take(3)
            .map(|(name, tenant, severity, queue)| {
                let queue = if queue.is_empty() {
                    String::new()
                } else {
                    format!(" queue={queue}")
                };
                format!("`{name}` {tenant} {severity}{queue}")
            })
            .collect();
        if only.is_empty() {
            "none".to_owned()
        } else {
            format!("{} (e.g. {})", only.len(), examples.join(", "))
        }
    };
    let only_packs: Vec<&Alert> = p.difference(&t).collect();
    let only_per_tenant: Vec<&Alert> = t.difference(&p).collect();
    if only_packs.is_empty() && only_per_tenant.is_empty() {
        format!(
            "Packs and per-tenant raise the same {} alerts (by name, tenant, severity and queue; \
             tenants in maintenance left out).\n\n",
            p.len()
        )
    } else {
        format!(
            "Packs and per-tenant differ (tenants in maintenance left out): only in packs {}, \
             only in per-tenant {}.\n\n",
            show(only_packs),
            show(only_per_tenant)
        )
    }
}

impl Round {
    fn get(&self, variant: Variant) -> Option<&Measured> {
        self.results.iter().find(|m| m.variant == variant)
    }
}

fn reload_median(m: &Measured) -> Option<Duration> {
    let mut loads = m.load_at_reload.clone();
    loads.sort();
    loads.get(loads.len() / 2).copied()
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

/// `a ÷ b` as `12.3×`.
fn times(a: f64, b: f64) -> String {
    let ratio = a / b;
    if ratio.is_finite() && b != 0.0 {
        if ratio >= 10.0 {
            format!("{ratio:.0}×")
        } else {
            format!("{ratio:.2}×")
        }
    } else {
        "–".to_owned()
    }
}

/// `≥ 5×: met` at the target's tenant count, the bare target below it.
fn ratio_target(ratio: f64, at_least: f64, at_target: bool, aim: &str) -> String {
    if !at_target {
        return format!("≥ {at_least}×{aim} at 1,000 tenants");
    }
    let outcome = if !ratio.is_finite() {
        "not measured"
    } else if ratio >= at_least {
        "met"
    } else {
        "**missed**"
    };
    format!("≥ {at_least}×{aim}: {outcome}")
}

fn no_more_target(packs: f64, per_tenant: f64, at_target: bool) -> String {
    if !at_target {
        return "packs ≤ per-tenant at 1,000 tenants".to_owned();
    }
    let outcome = if packs <= per_tenant {
        "met"
    } else {
        "**missed**"
    };
    format!("packs ≤ per-tenant: {outcome}")
}

fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "–".to_owned()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{:.2} ms", s * 1000.0)
    }
}

fn ms(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

fn opt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "–".to_owned(), ms)
}

fn cores(c: f64) -> String {
    format!("{:.1} % of a core", c * 100.0)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// JSON (the CLI's `rules list` and Prometheus's API), without a dependency

#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        self.object().iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    fn number(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }

    fn array(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            _ => &[],
        }
    }

    fn object(&self) -> &[(String, Json)] {
        match self {
            Json::Object(fields) => fields,
            _ => &[],
        }
    }
}

fn parse_json(text: &str) -> Result<Json> {
    let mut parser = JsonParser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    ensure!(
        parser.pos == parser.bytes.len(),
        "JSON: trailing characters at byte {}",
        parser.pos
    );
    Ok(value)
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl JsonParser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn value(&mut self) -> Result<Json> {
        self.skip_ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut fields = Vec::new();
                if self.close(b'}') {
                    return Ok(Json::Object(fields));
                }
                loop {
                    self.skip_ws();
                    let key = self.string()?;
                    self.skip_ws();
                    ensure!(
                        self.peek() == Some(b':'),
                        "JSON: no ':' at byte {}",
                        self.pos
                    );
                    self.pos += 1;
                    fields.push((key, self.value()?));
                    if self.separator(b'}')? {
                        return Ok(Json::Object(fields));
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                if self.close(b']') {
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value()?);
                    if self.separator(b']')? {
                        return Ok(Json::Array(items));
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(&self.bytes[start..self.pos])?;
                let number = text
                    .parse()
                    .with_context(|| format!("JSON: bad value at byte {start}"))?;
                Ok(Json::Number(number))
            }
            None => bail!("JSON: unexpected end"),
        }
    }

    /// Consumes `end` if it comes next.
    fn close(&mut self, end: u8) -> bool {
        self.skip_ws();
        let found = self.peek() == Some(end);
        if found {
            self.pos += 1;
        }
        found
    }

    /// After an item: `,` (false) or `end` (true).
    fn separator(&mut self, end: u8) -> Result<bool> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(false)
            }
            Some(b) if b == end => {
                self.pos += 1;
                Ok(true)
            }
            _ => bail!(
                "JSON: expected ',' or '{}' at byte {}",
                end as char,
                self.pos
            ),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json> {
        ensure!(
            self.bytes[self.pos..].starts_with(word.as_bytes()),
            "JSON: bad literal at byte {}",
            self.pos
        );
        self.pos += word.len();
        Ok(value)
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .bytes
            .get(self.pos..self.pos + 4)
            .context("JSON: truncated \\u escape")?;
        self.pos += 4;
        Ok(u32::from_str_radix(std::str::from_utf8(digits)?, 16)?)
    }

    fn string(&mut self) -> Result<String> {
        ensure!(
            self.peek() == Some(b'"'),
            "JSON: no string at byte {}",
            self.pos
        );
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.pos += 1;
            }
            // Stops only at ASCII bytes: the run ends on a character boundary.
            out.push_str(std::str::from_utf8(&self.bytes[start..self.pos])?);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let escape = *self
                        .bytes
                        .get(self.pos + 1)
                        .context("JSON: truncated escape")?;
                    self.pos += 2;
                    match escape {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xD800..0xDC00).contains(&code)
                                && self.bytes[self.pos..].starts_with(b"\\u")
                            {
                                self.pos += 2;
                                let low = self.hex4()?;
                                code = 0x10000
                                    + ((code - 0xD800) << 10)
                                    + (low.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            out.push(char::from_u32(code).unwrap_or('\u{FFFD}'));
                        }
                        other => out.push(other as char),
                    }
                }
                _ => bail!("JSON: unterminated string"),
            }
        }
    }
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

/// A directory under the system temp dir, removed on drop unless kept.
struct WorkDir {
    path: PathBuf,
    keep: bool,
}

impl WorkDir {
    fn new(prefix: &str, keep: bool) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self { path, keep })
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricts_every_selector_and_nothing_else() {
        let t = "tenant=\"t1\"";
        assert_eq!(
            restrict("100 * (1 - avg by(tenant) (redis_up))", t),
            "100 * (1 - avg by(tenant) (redis_up{tenant=\"t1\"}))"
        );
        assert_eq!(
            restrict(
                "60 * sum by(tenant) (rate(mysql_x_total[5m])) or on (tenant) y offset 5m",
                t
            ),
            "60 * sum by(tenant) (rate(mysql_x_total{tenant=\"t1\"}[5m])) or on (tenant) \
             y{tenant=\"t1\"} offset 5m"
        );
        assert_eq!(
            restrict("max by(tenant) (m{conn_type=\"current\"}) > bool 1e-3", t),
            "max by(tenant) (m{tenant=\"t1\", conn_type=\"current\"}) > bool 1e-3"
        );
        assert_eq!(
            restrict(
                "max by(tenant, queue) (label_replace(redis_key_size, \"queue\", \"$1\", \"key\", \"(.*)\"))",
                t
            ),
            "max by(tenant, queue) (label_replace(redis_key_size{tenant=\"t1\"}, \"queue\", \"$1\", \
             \"key\", \"(.*)\"))"
        );
        assert_eq!(
            restrict("sum(a{}) by (tenant) + on(tenant) group_left(owner) b", t),
            "sum(a{tenant=\"t1\"}) by (tenant) + on(tenant) group_left(owner) b{tenant=\"t1\"}"
        );
        assert_eq!(
            selector_names(
                "sum by(tenant) (x == bool 0) + on(tenant) sum by(tenant) (y_z:w == bool 0)"
            ),
            ["x", "y_z:w"]
        );
    }

    #[test]
    fn reads_rendered_recording_rules() {
        let text = "groups:\n- name: g\n  rules:\n  - record: a:b:max\n    expr: max by(tenant) (x)\n\
                    \x20 - record: c\n    expr: |\n      max by(tenant) (\n        y / z\n      )\n\
                    \x20   labels:\n      k: v\n- name: h\n  rules:\n  - record: 'd'\n    expr: \"e{a=\\\"b\\\"}\"\n";
        assert_eq!(
            parse_recording_rules(text),
            [
                ("a:b:max".to_owned(), "max by(tenant) (x)".to_owned()),
                ("c".to_owned(), "max by(tenant) ( y / z )".to_owned()),
                ("d".to_owned(), "e{a=\"b\"}".to_owned()),
            ]
        );
    }

    #[test]
    fn parses_json() {
        let json = parse_json(
            r#"{"a": [1, -2.5e1, true, null], "b": {"c": "x\"\u003e\ud83d\ude00"}, "d": []}"#,
        )
        .unwrap();
        assert_eq!(json.get("a").unwrap().array()[1], Json::Number(-25.0));
        assert_eq!(
            json.get("b").and_then(|b| b.get("c")).and_then(Json::str),
            Some("x\">😀")
        );
        assert!(parse_json("[1,]").is_err());
    }

    #[test]
    fn parses_samples_and_go_durations() {
        let (name, labels, value) =
            parse_sample(r#"user_threshold{tenant="a",queue="x\"y",severity="warning"} +Inf"#)
                .unwrap();
        assert_eq!(name, "user_threshold");
        assert_eq!(labels[1], ("queue".to_owned(), "x\"y".to_owned()));
        assert_eq!(value, f64::INFINITY);
        assert_eq!(parse_sample("up 1").map(|s| s.2), Some(1.0));
        assert_eq!(
            go_duration("9.365337ms"),
            Some(Duration::from_nanos(9_365_337))
        );
        assert_eq!(go_duration("1m2.5s"), Some(Duration::from_millis(62_500)));
        assert_eq!(go_duration("812ns"), Some(Duration::from_nanos(812)));
        assert_eq!(go_duration("2.5µs"), Some(Duration::from_nanos(2_500)));
        assert_eq!(values("a_b{x=\"}\"} 2\na 1\na_b 3\n", "a_b"), [2.0, 3.0]);
    }

    #[test]
    fn records_threshold_lookups() {
        let text = "    expr: |\n      (\n        s\n          > on(tenant) group_left()\n        \
                    max by(tenant) (user_threshold{component=\"mysql\", metric=\"connections\", severity=\"warning\"})\n      )\n    \
                    annotations:\n      description: \"{{ printf `max(user_threshold{tenant=%q})` }}\"\n";
        let (alerts, recorded) = record_thresholds(text);
        assert_eq!(recorded.len(), 1);
        assert_eq!(
            recorded[0].0,
            "tenant:alert_threshold:mysql_connections:warning"
        );
        assert!(
            alerts.contains(
                "group_left()\n        tenant:alert_threshold:mysql_connections:warning\n"
            )
        );
        assert!(alerts.contains("`max(user_threshold{tenant=%q})`"));
    }

    #[test]
    fn synthetic_values_are_stable_and_some_are_high() {
        let synthetic = Synthetic::new(tenant_names(200), vec!["mariadb".into(), "redis".into()]);
        let body = synthetic.render();
        let connected = values(&body, "mysql_global_status_threads_connected");
        assert!(connected.iter().any(|&v| v > 95.0));
        assert!(connected.iter().filter(|&&v| v > 80.0).count() < connected.len() / 5);
        assert!(values(&body, "mysql_up").contains(&0.0));
        assert!(body.contains("redis_key_size{tenant=\"tenant-0001\",instance=\"tenant-0001-redis-0:9100\",db=\"db0\",key=\"email\"}"));
        assert_eq!(
            level(3, 1, 7, (0.0, 1.0), (2.0, 3.0)),
            level(3, 1, 7, (0.0, 1.0), (2.0, 3.0))
        );
    }

    fn key(name: &str, signal: &str, dimension: Option<&str>, critical: bool) -> Key {
        let (component, metric) = name.split_once('_').unwrap();
        Key {
            pack: "p".into(),
            name: name.into(),
            component: component.into(),
            metric: metric.into(),
            op: ">".into(),
            dimension: dimension.map(str::to_owned),
            signal: signal.into(),
            default: 10.0,
            default_critical: critical.then_some(20.0),
            alert: "A".into(),
            critical_alert: critical.then(|| "ACritical".to_owned()),
            for_: "5m".into(),
            summary: "s".into(),
            description: "d".into(),
            unit: "u".into(),
        }
    }

    #[test]
    fn per_tenant_rules_follow_the_served_rows() {
        let catalogue = Catalogue {
            keys: vec![
                key(
                    "redis_queue_length",
                    "max by(tenant, queue) (label_replace(redis_key_size, \"queue\", \"$1\", \"key\", \"(.*)\"))",
                    Some("queue"),
                    false,
                ),
                key("mysql_connections", "max by(tenant) (c)", None, true),
                key(
                    "mysql_deadlocks",
                    "sum by(tenant) (rate(d[5m]))",
                    None,
                    false,
                ),
            ],
            alerts: 4,
            recording: 3,
        };
        let body = "user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\"} 500\n\
                    user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\",queue=\"email\"} 200\n\
                    user_threshold{tenant=\"t1\",component=\"redis\",metric=\"queue_length\",severity=\"warning\",queue=\"jobs\"} +Inf\n\
                    user_threshold{tenant=\"t1\",component=\"mysql\",metric=\"connections\",severity=\"critical\"} 95\n\
                    user_threshold{tenant=\"t1\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 80\n\
                    tenant_metadata_info{tenant=\"t1\",owner=\"team-a\",runbook_url=\"\",tier=\"\"} 1\n\
                    user_state_filter{tenant=\"t1\",filter=\"maintenance\",severity=\"info\"} 1\n";
        let served = Served::parse(body);
        assert!(served.maintenance.contains("t1"));
        let dir = WorkDir::new("xtask-bench-rules-test", false).unwrap();
        let written =
            write_per_tenant(dir.path(), &catalogue, &served, &["t1".to_owned()]).unwrap();
        let yaml = fs::read_to_string(dir.path().join("t1.yml")).unwrap();
        // email at its own number, jobs (disabled: +Inf) nowhere, the other queues at 500;
        // both connection tiers; deadlocks has no row (disabled): no rule.
        assert_eq!(written, 4, "{yaml}");
        assert!(
            yaml.contains("redis_key_size{tenant=\\\"t1\\\", key=\\\"email\\\"}"),
            "{yaml}"
        );
        assert!(yaml.contains("key!~\\\"email|jobs\\\"}"), "{yaml}");
        assert!(
            yaml.contains("(max by(tenant) (c{tenant=\\\"t1\\\"})) > 95"),
            "{yaml}"
        );
        assert!(yaml.contains("  - alert: ACritical\n"), "{yaml}");
        assert!(
            yaml.contains("      owner: \"team-a\"\n      queue: \"email\"\n"),
            "{yaml}"
        );
        assert!(
            !yaml.contains("runbook_url") && !yaml.contains("rate(d"),
            "{yaml}"
        );
    }
}
