//! `api`: the management API's write path measured against issue 4's targets, on SQLite and on
//! PostgreSQL, everything on 127.0.0.1.
//!
//! Steps: build release `dynalert` → generate N tenants × K keys → make an admin token and an
//! `--auth-file` → per store: start `dynalert serve --store … --import <tree>`, then
//!
//! 1. C clients (threads with one keep-alive connection each) PATCH `mysql_connections` of
//!    their own tenants with ever-changing values for a warm-up and a measured period; then
//!    paced at a fixed rate; then again with all C on one tenant;
//! 2. one more client PATCHes a tenant no load client touches with a unique value, notes when
//!    the 200 arrived and polls `/metrics` until the tenant's line carries that value; idle,
//!    and while the load of (1) runs; on PostgreSQL also with a second replica on the same
//!    database, writing to one and polling the other;
//! 3. reads the servers' RSS at the end.
//!
//! PostgreSQL is the testkit's throw-away cluster, with its durability defaults (`fsync` and
//! `synchronous_commit` on). Linux only: RSS and CPU time come from `/proc`.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::ValueEnum;
use dynalert_testkit::Postgres;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};

mod report;

use crate::support::{self, Memory, Meta, Output, TICKS_PER_SEC, process_ticks, quantile};
use report::{bounded, cpu_cell, ms};

pub use report::markdown;

#[derive(clap::Args, Clone, Serialize, Deserialize)]
pub struct Args {
    /// Generated tenants imported into every store (`cargo xtask gen-tenants`); at least 2.
    #[arg(long, default_value_t = 1000)]
    tenants: usize,
    /// Threshold keys every tenant overrides.
    #[arg(long, default_value_t = 30)]
    keys: usize,
    /// Concurrent writers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Writes per second offered in the paced run (spread evenly over the clients, sent on a
    /// fixed schedule whether or not the previous write has been answered).
    #[arg(long, default_value_t = 1000.0)]
    paced_rate: f64,
    /// Seconds of load before a measured period starts.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Seconds a throughput run is measured.
    #[arg(long, default_value_t = 20)]
    measure_secs: u64,
    /// Writes timed until `/metrics` shows them, per row.
    #[arg(long, default_value_t = 200)]
    lag_writes: usize,
    /// Longest a write → `/metrics` row may run; it stops early, with fewer writes, when
    /// writes take seconds to show.
    #[arg(long, default_value_t = 60)]
    lag_max_secs: u64,
    /// Milliseconds between the starts of two `/metrics` polls while waiting for a value.
    #[arg(long, default_value_t = 5)]
    poll_ms: u64,
    /// The stores to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Store::Sqlite, Store::Postgres])]
    stores: Vec<Store>,
    /// `RUST_LOG` of the servers; their logs are in the work directory (see --keep).
    #[arg(long, default_value = "info")]
    server_log: String,
    #[command(flatten)]
    #[serde(skip)]
    output: Output,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
enum Store {
    Sqlite,
    Postgres,
}

/// The key every write sets: `user_threshold{…,component="mysql",metric="connections",
/// severity="warning"}` (gen-tenants' first key, present for every N ≥ 1 keys).
const KEY: &str = "mysql_connections";
const KEY_LABELS: &str = r#"component="mysql",metric="connections",severity="warning""#;
/// How long one write may take to show on `/metrics` before it counts as lost.
const LAG_TIMEOUT: Duration = Duration::from_secs(10);
/// Error messages kept per run (the count covers all of them).
const ERRORS_KEPT: usize = 5;

#[derive(Serialize, Deserialize)]
pub struct Results {
    meta: Meta,
    args: Args,
    version: String,
    commit: String,
    postgres_version: Option<String>,
    sqlite: Option<StoreResult>,
    postgres: Option<StoreResult>,
}

/// One store's figures; times in seconds.
#[derive(Serialize, Deserialize)]
struct StoreResult {
    /// From spawning the first server to its first `/ready` 200 (import included).
    ready: f64,
    own: Throughput,
    paced: Throughput,
    same: Throughput,
    lag_idle: Lag,
    lag_loaded: Lag,
    /// PostgreSQL only: written on one replica, read on another (idle, under load).
    replicas: Option<(Lag, Lag)>,
    /// Each server's at the end.
    memory: Vec<Memory>,
}

pub fn run(args: &Args) -> Result<(crate::Results, &Output)> {
    ensure!(
        args.tenants >= 2,
        "--tenants must be at least 2 (one is kept for the /metrics timing)"
    );
    ensure!(
        args.keys >= 1 && args.clients >= 1,
        "--keys and --clients must be at least 1"
    );
    ensure!(
        args.measure_secs >= 1 && args.lag_writes >= 1,
        "--measure-secs and --lag-writes must be at least 1"
    );
    ensure!(!args.stores.is_empty(), "--stores names no store");
    let meta = Meta::start();
    let binary = args.output.dynalert()?;
    let work = args.output.work_dir("api")?;
    let conf = work.path().join("conf.d");
    support::gen_tenants(&conf, args.tenants, args.keys)?;
    let tenants = tenant_names(&conf)?;
    ensure!(
        tenants.len() == args.tenants,
        "gen-tenants wrote {} tenants",
        tenants.len()
    );
    let token = random_token()?;
    let auth_file = work.path().join("auth.yaml");
    write_auth_file(&binary, &token, &auth_file)?;
    let setup = Setup {
        args,
        binary: &binary,
        conf: conf.to_str().context("a non-UTF-8 path")?,
        auth_file: auth_file.to_str().context("a non-UTF-8 path")?,
        work: work.path(),
        token: &token,
        tenants: &tenants,
        counter: Arc::new(AtomicU64::new(1_000_000)),
    };
    let (mut sqlite, mut postgres, mut postgres_version) = (None, None, None);
    for store in &args.stores {
        match store {
            Store::Sqlite => {
                println!("==> SQLite");
                let db = work.path().join("dynalert.db");
                sqlite = Some(setup.measure_store(
                    &format!("sqlite:{}", db.display()),
                    "sqlite",
                    false,
                )?);
            }
            Store::Postgres => {
                println!("==> PostgreSQL");
                let server = Postgres::start()?.context("PostgreSQL is not installed")?;
                postgres_version = Some(postgres_server_version());
                let url = server.create_database("dynalert_bench")?;
                postgres = Some(setup.measure_store(&url, "postgres", true)?);
            }
        }
    }
    let version = support::output(Command::new(&binary).arg("--version"))
        .map_or_else(|_| "unknown".to_owned(), |v| v.trim().to_owned());
    let results = Results {
        meta: meta.finish(),
        args: args.clone(),
        version,
        commit: git_commit(),
        postgres_version,
        sqlite,
        postgres,
    };
    Ok((crate::Results::Api(Box::new(results)), &args.output))
}

/// The tenants gen-tenants wrote: one `tenant-….yaml` per tenant, named as its file.
fn tenant_names(conf: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(conf).with_context(|| format!("reading {}", conf.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name
            .strip_suffix(".yaml")
            .filter(|s| s.starts_with("tenant-"))
        {
            names.push(stem.to_owned());
        }
    }
    names.sort();
    Ok(names)
}

/// 32 random hex digits.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// An auth file with one admin token, hashed by `dynalert token hash` as a user would.
fn write_auth_file(binary: &Path, token: &str, path: &Path) -> Result<()> {
    let mut child = Command::new(binary)
        .args(["token", "hash"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("running dynalert token hash")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(token.as_bytes())?;
    let output = child.wait_with_output()?;
    let hash = String::from_utf8(output.stdout)?.trim().to_owned();
    ensure!(
        output.status.success() && hash.len() == 64,
        "dynalert token hash failed ({}): {hash:?}",
        output.status
    );
    let yaml = format!("tokens:\n  - name: bench\n    sha256: {hash}\n    role: admin\n");
    std::fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

/// `PostgreSQL 15.x`, from the server binary the testkit runs.
fn postgres_server_version() -> String {
    dynalert_testkit::components::find_postgres_executable("postgres")
        .and_then(|postgres| support::output(Command::new(postgres).arg("--version")).ok())
        .and_then(|v| {
            v.split(") ")
                .nth(1)
                .map(|n| format!("PostgreSQL {}", n.trim()))
        })
        .unwrap_or_else(|| "PostgreSQL".to_owned())
}

/// The commit checked out, with a note when the crates have uncommitted changes.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        support::output(
            Command::new("git")
                .args(args)
                .current_dir(support::workspace_root()),
        )
        .ok()
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let status = [
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "crates",
        "Cargo.toml",
        "Cargo.lock",
    ];
    match git(&status) {
        Some(changes) if !changes.trim().is_empty() => {
            format!("{} with uncommitted changes in crates/", commit.trim())
        }
        _ => commit.trim().to_owned(),
    }
}

/// What every store's measurement shares.
struct Setup<'a> {
    args: &'a Args,
    binary: &'a Path,
    conf: &'a str,
    auth_file: &'a str,
    work: &'a Path,
    token: &'a str,
    tenants: &'a [String],
    /// The next value written: every write in the run gets its own.
    counter: Arc<AtomicU64>,
}

impl Setup<'_> {
    fn serve(&self, store: &str, name: &str, import: bool) -> Result<support::Server> {
        let mut args = vec!["--store", store, "--auth-file", self.auth_file];
        if import {
            args.extend(["--import", self.conf]);
        }
        let log = self.work.join(format!("{name}.log"));
        let server = support::serve(self.binary, &args, &log, &self.args.server_log)?;
        println!(
            "{name}: ready after {} (port {})",
            support::seconds(server.ready),
            server.port
        );
        Ok(server)
    }

    fn measure_store(&self, store: &str, name: &str, replicas: bool) -> Result<StoreResult> {
        let server = self.serve(store, name, true)?;
        let (port, pid) = (server.port, server.guard.id());
        // The last tenant is the one timed on /metrics; the load spreads over the others.
        let (lag_tenant, load_tenants) = self.tenants.split_last().context("no tenants")?;
        let own_sets = partition(load_tenants, self.args.clients);
        let same_sets = vec![vec![load_tenants[0].clone()]; self.args.clients];
        self.check_visible(port, port, lag_tenant)?;
        let paced = Some(self.args.paced_rate);
        let own = self.throughput(port, &own_sets, pid, None, "own tenants")?;
        let same = self.throughput(port, &same_sets, pid, None, "one tenant")?;
        let paced = self.throughput(port, &own_sets, pid, paced, "paced")?;
        let lag_idle = self.lag(port, port, lag_tenant, None, "idle")?;
        let lag_loaded = self.lag(port, port, lag_tenant, Some(&own_sets), "under load")?;
        let mut memory = vec![Memory::of(pid)?];
        let replicas = if replicas {
            let second = self.serve(store, &format!("{name}-replica"), false)?;
            self.check_visible(port, second.port, lag_tenant)?;
            let idle = self.lag(port, second.port, lag_tenant, None, "replica, idle")?;
            let loaded = self.lag(
                port,
                second.port,
                lag_tenant,
                Some(&own_sets),
                "replica, under load",
            )?;
            memory.push(Memory::of(second.guard.id())?);
            Some((idle, loaded))
        } else {
            None
        };
        Ok(StoreResult {
            ready: server.ready,
            own,
            paced,
            same,
            lag_idle,
            lag_loaded,
            replicas,
            memory,
        })
    }

    fn writer(&self, port: u16) -> Result<Writer> {
        Writer::new(port, self.token, &self.counter)
    }

    /// One write must show on `/metrics` of `read_port` before anything is timed: fails with
    /// the tenant's lines when the line format is not the expected one.
    fn check_visible(&self, write_port: u16, read_port: u16, tenant: &str) -> Result<()> {
        let value = self.writer(write_port)?.patch(tenant)?;
        let reader = support::client(false)?;
        let url = format!("http://127.0.0.1:{read_port}/metrics");
        let started = Instant::now();
        let mut body = String::new();
        while started.elapsed() < LAG_TIMEOUT {
            body = reader.get(&url).send()?.text()?;
            if shows(&body, tenant, value) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let needle = format!("tenant=\"{tenant}\"");
        let lines: Vec<&str> = body
            .lines()
            .filter(|l| l.contains(&needle))
            .take(10)
            .collect();
        bail!(
            "{KEY}={value} of {tenant} did not show on {url} within {LAG_TIMEOUT:?}; the \
             tenant's lines:\n{}",
            lines.join("\n")
        )
    }

    /// Clients PATCH the tenants of their set in turn, as fast as answered or at `rate`
    /// writes/s all together: a warm-up, then a measured period.
    fn throughput(
        &self,
        port: u16,
        sets: &[Vec<String>],
        pid: u32,
        rate: Option<f64>,
        what: &str,
    ) -> Result<Throughput> {
        let pace = rate.map(|r| Duration::from_secs_f64(sets.len() as f64 / r));
        let load = Load::start(self, port, sets, pace)?;
        thread::sleep(Duration::from_secs(self.args.warmup_secs));
        let cpu_before = CpuTimes::sample(pid);
        let from = Instant::now();
        thread::sleep(Duration::from_secs(self.args.measure_secs));
        let to = Instant::now();
        let cpu = CpuTimes::sample(pid).since(&cpu_before);
        let result = Throughput::of(load.finish(), from, to, cpu);
        println!(
            "{what}: {:.0} writes/s, p50 {}, p99 {}, max {}, {} errors{}; CPU {}",
            result.per_sec,
            ms(quantile(&result.latencies, 0.5)),
            ms(quantile(&result.latencies, 0.99)),
            ms(quantile(&result.latencies, 1.0)),
            result.errors,
            first_errors(&result.first_errors),
            cpu_cell(&result),
        );
        Ok(result)
    }

    /// Times `--lag-writes` writes on `write_port` until `/metrics` of `read_port` shows them,
    /// with the load of `load` in the background when given.
    fn lag(
        &self,
        write_port: u16,
        read_port: u16,
        tenant: &str,
        load: Option<&[Vec<String>]>,
        what: &str,
    ) -> Result<Lag> {
        let args = self.args;
        let load = load
            .map(|sets| Load::start(self, write_port, sets, None))
            .transpose()?;
        if load.is_some() {
            thread::sleep(Duration::from_secs(args.warmup_secs));
        }
        let from = Instant::now();
        let writer = self.writer(write_port)?;
        let reader = support::client(false)?;
        let url = format!("http://127.0.0.1:{read_port}/metrics");
        let poll = Duration::from_millis(args.poll_ms);
        let mut lag = Lag::default();
        for _ in 0..args.lag_writes {
            if from.elapsed() > Duration::from_secs(args.lag_max_secs) {
                lag.cut_short = true;
                break;
            }
            let value = match writer.patch(tenant) {
                Ok(value) => value,
                Err(e) => {
                    note(&mut lag.errors, &mut lag.first_errors, format!("{e:#}"));
                    continue;
                }
            };
            let acknowledged = Instant::now();
            // When the last poll that did not show the value was sent.
            let mut not_yet: Option<Instant> = None;
            loop {
                let sent = Instant::now();
                if sent - acknowledged > LAG_TIMEOUT {
                    lag.timeouts += 1;
                    lag.lags.push(LAG_TIMEOUT.as_secs_f64());
                    lag.lows.push(LAG_TIMEOUT.as_secs_f64());
                    break;
                }
                let shown = match support::timed(reader.get(&url)) {
                    Ok(response) if response.status == 200 => {
                        lag.scrapes.push(response.seconds);
                        std::str::from_utf8(&response.body)
                            .is_ok_and(|body| shows(body, tenant, value))
                    }
                    Ok(response) => {
                        note(
                            &mut lag.errors,
                            &mut lag.first_errors,
                            format!("/metrics answered {}", response.status),
                        );
                        false
                    }
                    Err(e) => {
                        note(
                            &mut lag.errors,
                            &mut lag.first_errors,
                            format!("/metrics: {e:#}"),
                        );
                        false
                    }
                };
                if shown {
                    // The snapshot a response shows is taken as its request arrives: `sent`
                    // bounds the moment the value became visible from above, the previous
                    // poll from below.
                    lag.lags.push((sent - acknowledged).as_secs_f64());
                    lag.lows
                        .push(not_yet.map_or(0.0, |at| (at - acknowledged).as_secs_f64()));
                    break;
                }
                not_yet = Some(sent);
                if let Some(rest) = (sent + poll).checked_duration_since(Instant::now()) {
                    thread::sleep(rest);
                }
            }
        }
        if let Some(load) = load {
            let during = Throughput::of(load.finish(), from, Instant::now(), CpuTimes::default());
            lag.load = Some((during.per_sec, during.errors));
        }
        for samples in [&mut lag.lags, &mut lag.lows, &mut lag.scrapes] {
            samples.sort_by(f64::total_cmp);
        }
        println!(
            "write → /metrics, {what}: p50 {}, p99 {}, max {}, {} timeouts, {} errors{}; scrape median {}",
            bounded(&lag, 0.5),
            bounded(&lag, 0.99),
            ms(quantile(&lag.lags, 1.0)),
            lag.timeouts,
            lag.errors,
            first_errors(&lag.first_errors),
            ms(quantile(&lag.scrapes, 0.5)),
        );
        Ok(lag)
    }
}

/// A client with one keep-alive connection that PATCHes `KEY` with a new value each time.
struct Writer {
    client: Client,
    base: String,
    token: String,
    counter: Arc<AtomicU64>,
}

impl Writer {
    fn new(port: u16, token: &str, counter: &Arc<AtomicU64>) -> Result<Writer> {
        Ok(Writer {
            client: support::client(true)?,
            base: format!("http://127.0.0.1:{port}/api/v1/tenants/"),
            token: token.to_owned(),
            counter: counter.clone(),
        })
    }

    /// Writes the next value to `tenant`; the value, or the error (a non-200 included).
    fn patch(&self, tenant: &str) -> Result<u64> {
        let value = self.counter.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .patch(format!("{}{tenant}", self.base))
            .bearer_auth(&self.token)
            .header("Content-Type", "application/merge-patch+json")
            .body(format!("{{\"{KEY}\": {value}}}"))
            .send()?;
        let status = response.status();
        ensure!(
            status.is_success(),
            "{tenant}: {status} {}",
            response.text().unwrap_or_default()
        );
        Ok(value)
    }
}

/// Whether a `/metrics` body has `tenant`'s line for [`KEY`] with exactly `value`.
fn shows(body: &str, tenant: &str, value: u64) -> bool {
    body.contains(&format!(
        "user_threshold{{tenant=\"{tenant}\",{KEY_LABELS}}} {value}\n"
    ))
}

/// `tenants` dealt round-robin into `n` sets (every set non-empty when there are ≥ n tenants).
fn partition(tenants: &[String], n: usize) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new(); n];
    for (i, tenant) in tenants.iter().enumerate() {
        sets[i % n].push(tenant.clone());
    }
    // Fewer tenants than clients: the extra clients share the first ones.
    for (i, set) in sets.iter_mut().enumerate() {
        if set.is_empty() {
            set.push(tenants[i % tenants.len()].clone());
        }
    }
    sets
}

fn note(errors: &mut u64, first: &mut Vec<String>, message: String) {
    *errors += 1;
    if first.len() < ERRORS_KEPT {
        first.push(message);
    }
}

fn first_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" (first: {})", errors.join(" | "))
    }
}

/// What the load clients saw, all of them together: (due or sent, seconds) of every 200.
/// A paced client's write counts from when it was due, not from when it could be sent: a slow
/// answer delays the next writes, and their wait is part of their latency.
#[derive(Default)]
struct Outcome {
    samples: Vec<(Instant, f64)>,
    errors: u64,
    first_errors: Vec<String>,
}

/// Client threads writing until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Outcome>>,
}

impl Load {
    /// One client per set; with `pace`, each client sends one write per `pace`, the clients'
    /// schedules staggered evenly.
    fn start(
        setup: &Setup,
        port: u16,
        sets: &[Vec<String>],
        pace: Option<Duration>,
    ) -> Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let mut threads = Vec::new();
        for (i, set) in sets.iter().enumerate() {
            let (set, stop, writer) = (set.clone(), stop.clone(), setup.writer(port)?);
            let first = pace.map(|every| start + every * i as u32 / sets.len() as u32);
            threads.push(thread::spawn(move || {
                client(&writer, &set, &stop, first.zip(pace))
            }));
        }
        Ok(Load { stop, threads })
    }

    fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Outcome::default();
        for thread in self.threads {
            let outcome = thread.join().unwrap_or_else(|_| Outcome {
                errors: 1,
                first_errors: vec!["a client thread panicked".into()],
                ..Outcome::default()
            });
            all.samples.extend(outcome.samples);
            all.errors += outcome.errors;
            let room = ERRORS_KEPT.saturating_sub(all.first_errors.len());
            all.first_errors
                .extend(outcome.first_errors.into_iter().take(room));
        }
        all
    }
}

/// One load client: PATCHes the tenants of `set` in turn, as soon as the previous one was
/// answered or on the schedule `(next, every)`.
fn client(
    writer: &Writer,
    set: &[String],
    stop: &AtomicBool,
    mut schedule: Option<(Instant, Duration)>,
) -> Outcome {
    let mut outcome = Outcome::default();
    for tenant in set.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = match &mut schedule {
            Some((next, every)) => {
                let due = *next;
                *next += *every;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    thread::sleep(wait);
                }
                due
            }
            None => Instant::now(),
        };
        match writer.patch(tenant) {
            Ok(_) => outcome.samples.push((sent, sent.elapsed().as_secs_f64())),
            Err(e) => {
                note(
                    &mut outcome.errors,
                    &mut outcome.first_errors,
                    format!("{e:#}"),
                );
                // A dead server must not turn into a busy loop.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    outcome
}

/// A throughput run's figures.
#[derive(Serialize, Deserialize)]
struct Throughput {
    per_sec: f64,
    /// Seconds of the writes sent and answered within the measured period, sorted.
    latencies: Vec<f64>,
    /// Non-200 answers and failed requests over the whole run, warm-up included.
    errors: u64,
    first_errors: Vec<String>,
    cpu: CpuTimes,
}

impl Throughput {
    fn of(outcome: Outcome, from: Instant, to: Instant, cpu: CpuTimes) -> Throughput {
        let mut latencies: Vec<f64> = outcome
            .samples
            .iter()
            .filter(|(sent, took)| *sent >= from && *sent + Duration::from_secs_f64(*took) <= to)
            .map(|(_, took)| *took)
            .collect();
        latencies.sort_by(f64::total_cmp);
        Throughput {
            per_sec: latencies.len() as f64 / (to - from).as_secs_f64(),
            latencies,
            errors: outcome.errors,
            first_errors: outcome.first_errors,
            cpu,
        }
    }
}

/// Write → `/metrics` times, in seconds.
#[derive(Default, Serialize, Deserialize)]
struct Lag {
    /// One per acknowledged write, sorted: up to the first poll that showed it (an upper
    /// bound); a timed-out write counts as [`LAG_TIMEOUT`].
    lags: Vec<f64>,
    /// The same writes up to the last poll that did not show them (a lower bound), sorted.
    lows: Vec<f64>,
    timeouts: usize,
    errors: u64,
    first_errors: Vec<String>,
    /// How long each `/metrics` poll took, sorted: the resolution of the figures.
    scrapes: Vec<f64>,
    /// The background load's writes/s and errors meanwhile, if there was one.
    load: Option<(f64, u64)>,
    /// Stopped at `--lag-max-secs` before all `--lag-writes` writes.
    cut_short: bool,
}

/// CPU seconds used by dynalert and by all `postgres` processes (the postmaster and its
/// backends; ours is the only cluster while it runs), and by this process (the clients).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct CpuTimes {
    server: f64,
    postgres: f64,
    clients: f64,
}

impl CpuTimes {
    fn sample(server_pid: u32) -> CpuTimes {
        let postgres: f64 = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "postgres")
            })
            .filter_map(|pid| process_ticks(&pid))
            .sum();
        let ticks = |pid: &str| process_ticks(pid).unwrap_or(0.0) / TICKS_PER_SEC;
        CpuTimes {
            server: ticks(&server_pid.to_string()),
            postgres: postgres / TICKS_PER_SEC,
            clients: ticks("self"),
        }
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server - before.server,
            postgres: self.postgres - before.postgres,
            clients: self.clients - before.clients,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_written_value() {
        let body = "# TYPE user_threshold gauge\n\
            user_threshold{tenant=\"t-1\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 1000123\n\
            user_threshold{tenant=\"t-2\",component=\"mysql\",metric=\"connections\",severity=\"warning\"} 77\n";
        assert!(shows(body, "t-1", 1000123));
        assert!(!shows(body, "t-1", 100012));
        assert!(!shows(body, "t-2", 7));
        assert!(shows(body, "t-2", 77));
    }

    #[test]
    fn deals_tenants_to_clients() {
        let tenants: Vec<String> = (1..=5).map(|i| format!("t{i}")).collect();
        assert_eq!(
            partition(&tenants, 2),
            [vec!["t1", "t3", "t5"], vec!["t2", "t4"]]
        );
        assert_eq!(partition(&tenants[..1], 2), [vec!["t1"], vec!["t1"]]);
    }
}
