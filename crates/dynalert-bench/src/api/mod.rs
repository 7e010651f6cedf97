//! `api`: the management API's write path measured against issue 4's targets, on SQLite and on
//! PostgreSQL, everything on 127.0.0.1.
//!
//! Steps: generate N tenants × K keys → make an admin token and an `--auth-file` → per store:
//! start `dynalert serve --store … --import <tree>`, then
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

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use dynalert_testkit::Postgres;
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};

mod report;

use crate::support::{self, Memory, Meta, Output, Server, cpu_seconds, quantile, seconds};

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
    /// Writes timed until `/metrics` shows them, per row (a row stops after 60 s).
    #[arg(long, default_value_t = 200)]
    lag_writes: usize,
    /// The stores to measure (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Store::Sqlite, Store::Postgres])]
    stores: Vec<Store>,
    #[command(flatten)]
    #[serde(skip)]
    pub output: Output,
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
/// How long a write → `/metrics` row may run: it stops early when writes take seconds to show.
const LAG_MAX: Duration = Duration::from_secs(60);
/// Time between the starts of two `/metrics` polls while waiting for a value.
const POLL: Duration = Duration::from_millis(5);

#[derive(Serialize, Deserialize)]
pub struct Results {
    meta: Meta,
    args: Args,
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

pub fn run(args: &Args) -> Result<crate::Results> {
    let counts = [args.keys, args.clients, args.lag_writes];
    let valid = args.tenants >= 2 && !counts.contains(&0) && args.measure_secs > 0;
    ensure!(
        valid && !args.stores.is_empty(),
        "--tenants ≥ 2, counts ≥ 1, a store"
    );
    let (binary, meta, work) = args.output.start("api")?;
    let conf = work.path().join("conf.d");
    support::gen_tenants(&conf, args.tenants, args.keys)?;
    // gen-tenants names its files tenant-00001.yaml …, one tenant each, named as its file.
    let tenants: Vec<String> = (1..=args.tenants)
        .map(|i| format!("tenant-{i:05}"))
        .collect();
    let last = conf.join(format!("{}.yaml", tenants[args.tenants - 1]));
    ensure!(last.is_file(), "gen-tenants wrote no {last:?}");
    let auth_file = work.path().join("auth.yaml");
    let token = write_auth_file(&binary, &auth_file)?;
    let setup = Setup {
        args,
        binary: &binary,
        conf: conf.to_str().context("a non-UTF-8 path")?,
        auth_file: auth_file.to_str().context("a non-UTF-8 path")?,
        work: work.path(),
        token: &token,
        tenants: &tenants,
        counter: AtomicU64::new(1_000_000),
    };
    let (mut sqlite, mut postgres, mut postgres_version) = (None, None, None);
    if args.stores.contains(&Store::Sqlite) {
        println!("==> SQLite");
        let db = format!("sqlite:{}", work.path().join("dynalert.db").display());
        sqlite = Some(setup.measure_store(&db, "sqlite", false)?);
    }
    if args.stores.contains(&Store::Postgres) {
        println!("==> PostgreSQL");
        let server = Postgres::start()?.context("PostgreSQL is not installed")?;
        postgres_version = Some(server.psql("SHOW server_version")?.trim().to_owned());
        let url = server.create_database("dynalert_bench")?;
        postgres = Some(setup.measure_store(&url, "postgres", true)?);
    }
    let (meta, args) = (meta.finish(), args.clone());
    let results = Results {
        meta,
        args,
        postgres_version,
        sqlite,
        postgres,
    };
    Ok(crate::Results::Api(Box::new(results)))
}

/// An admin token (32 random hex digits) and an auth file with its hash, made by `dynalert
/// token hash` as a user would.
fn write_auth_file(binary: &Path, path: &Path) -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let token_file = path.with_extension("token");
    std::fs::write(&token_file, &token)?;
    let mut hash = Command::new(binary);
    let stdin = std::fs::File::open(&token_file)?;
    let hash = support::output(hash.args(["token", "hash"]).stdin(stdin))?;
    let hash = hash.trim();
    ensure!(hash.len() == 64, "dynalert token hash printed {hash:?}");
    let yaml = format!("tokens:\n  - name: bench\n    sha256: {hash}\n    role: admin\n");
    std::fs::write(path, yaml)?;
    Ok(token)
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
    counter: AtomicU64,
}

impl Setup<'_> {
    fn serve(&self, store: &str, name: &str, import: bool) -> Result<Server> {
        let mut args = vec!["--store", store, "--auth-file", self.auth_file];
        if import {
            args.extend(["--import", self.conf]);
        }
        let server = Server::start(self.binary, &args, &self.work.join(format!("{name}.log")))?;
        println!("{name}: ready after {}", seconds(server.ready));
        Ok(server)
    }

    fn measure_store(&self, store: &str, name: &str, replicas: bool) -> Result<StoreResult> {
        let server = self.serve(store, name, true)?;
        let (port, pid, clients) = (server.port, server.guard.id(), self.args.clients);
        // The last tenant is the one timed on /metrics; the load spreads over the others.
        let (lag_tenant, load_tenants) = self.tenants.split_last().context("no tenants")?;
        let own = partition(load_tenants, clients);
        let same = vec![vec![load_tenants[0].clone()]; clients];
        let rate = Some(self.args.paced_rate);
        let warm = Duration::from_secs(self.args.warmup_secs);
        let lag = |read: &Server, load: Option<&_>| {
            let Some(sets) = load else {
                return self.lag(port, read, lag_tenant);
            };
            let (outcome, (from, mut lag)) = self.with_load(port, sets, None, || {
                thread::sleep(warm);
                Ok((Instant::now(), self.lag(port, read, lag_tenant)?))
            })?;
            let during = Throughput::of(outcome, from, Instant::now(), CpuTimes::default());
            lag.load = Some((during.per_sec, during.errors.count));
            Ok(lag)
        };
        // Fields are evaluated in the order written: the runs one after the other.
        let mut result = StoreResult {
            own: self.throughput(port, &own, pid, None)?,
            same: self.throughput(port, &same, pid, None)?,
            paced: self.throughput(port, &own, pid, rate)?,
            lag_idle: lag(&server, None)?,
            lag_loaded: lag(&server, Some(&own))?,
            ready: server.ready,
            replicas: None,
            memory: vec![Memory::of(pid)?],
        };
        if replicas {
            let second = self.serve(store, &format!("{name}-replica"), false)?;
            result.replicas = Some((lag(&second, None)?, lag(&second, Some(&own))?));
            result.memory.push(Memory::of(second.guard.id())?);
        }
        Ok(result)
    }

    fn writer(&self, port: u16) -> Result<Writer<'_>> {
        let url = format!("http://127.0.0.1:{port}/api/v1/tenants/");
        Ok(Writer {
            client: support::client(true)?,
            url,
            setup: self,
        })
    }

    /// Runs `during` while one load client per set PATCHes the tenants of its set in turn, as
    /// soon as answered or, with `pace`, one write per `pace` each, the clients' schedules
    /// staggered evenly; what the clients saw, and what `during` returned.
    fn with_load<R>(
        &self,
        port: u16,
        sets: &[Vec<String>],
        pace: Option<Duration>,
        during: impl FnOnce() -> Result<R>,
    ) -> Result<(Outcome, R)> {
        let writers = sets
            .iter()
            .map(|_| self.writer(port))
            .collect::<Result<Vec<_>>>()?;
        let (stop, start) = (&AtomicBool::new(false), Instant::now());
        let stagger = |i: usize, every: Duration| start + every * i as u32 / sets.len() as u32;
        thread::scope(|scope| {
            let clients = writers
                .iter()
                .zip(sets)
                .enumerate()
                .map(|(i, (writer, set))| {
                    let schedule = pace.map(|every| (stagger(i, every), every));
                    scope.spawn(move || client(writer, set, stop, schedule))
                });
            let clients: Vec<_> = clients.collect();
            let result = during();
            stop.store(true, Ordering::Relaxed);
            let mut all = Outcome::default();
            for outcome in clients.into_iter().map(|c| c.join().unwrap_or_default()) {
                all.samples.extend(outcome.samples);
                all.errors.add(outcome.errors);
            }
            Ok((all, result?))
        })
    }

    /// Clients PATCH the tenants of their set in turn, as fast as answered or at `rate`
    /// writes/s all together: a warm-up, then a measured period.
    fn throughput(
        &self,
        port: u16,
        sets: &[Vec<String>],
        pid: u32,
        rate: Option<f64>,
    ) -> Result<Throughput> {
        let pace = rate.map(|r| Duration::from_secs_f64(sets.len() as f64 / r));
        let measured = Duration::from_secs(self.args.measure_secs);
        let (outcome, (from, cpu)) = self.with_load(port, sets, pace, || {
            thread::sleep(Duration::from_secs(self.args.warmup_secs));
            let (before, from) = (CpuTimes::sample(pid), Instant::now());
            thread::sleep(measured);
            Ok((from, CpuTimes::sample(pid).since(&before)))
        })?;
        let result = Throughput::of(outcome, from, from + measured, cpu);
        let [p50, p99] = [0.5, 0.99].map(|q| seconds(quantile(&result.latencies, q)));
        let (rate, errors) = (result.per_sec, &result.errors);
        println!("{rate:.0} writes/s, p50 {p50}, p99 {p99}, {errors}");
        Ok(result)
    }

    /// Times `--lag-writes` writes on `write_port` until `/metrics` of `read` shows them.
    /// Fails with the tenant's lines when `/metrics` has no line of the form [`shows`] reads.
    fn lag(&self, write_port: u16, read: &Server, tenant: &str) -> Result<Lag> {
        let (writer, url) = (self.writer(write_port)?, read.metrics_url());
        let reader = support::client(false)?;
        let (from, mut lag) = (Instant::now(), Lag::default());
        for _ in 0..self.args.lag_writes {
            if from.elapsed() > LAG_MAX {
                lag.cut_short = true;
                break;
            }
            let value = match writer.patch(tenant) {
                Ok(value) => value,
                Err(e) => {
                    lag.errors.note(format!("{e:#}"));
                    continue;
                }
            };
            // The snapshot a response shows is taken as its request arrives: from the 200 to
            // the sending of the first poll that shows the value is an upper bound.
            let (acknowledged, mut body) = (Instant::now(), String::new());
            loop {
                let sent = Instant::now();
                match support::timed(reader.get(&url)) {
                    Ok(response) if response.status == 200 => {
                        lag.scrapes.push(response.seconds);
                        body = String::from_utf8_lossy(&response.body).into_owned();
                    }
                    Ok(response) => lag.errors.note(format!("/metrics: {}", response.status)),
                    Err(e) => lag.errors.note(format!("/metrics: {e:#}")),
                }
                let (shown, waited) = (shows(&body, tenant, value), sent - acknowledged);
                if !shown && waited > LAG_TIMEOUT {
                    let lines = body.lines().filter(|l| l.contains(tenant)).take(10);
                    let lines = lines.collect::<Vec<_>>().join("\n");
                    let line = body.contains(&line_of(tenant, ""));
                    ensure!(line, "no {KEY} of {tenant}:\n{lines}");
                    lag.timeouts += 1;
                }
                if shown || waited > LAG_TIMEOUT {
                    lag.lags.push(waited.as_secs_f64());
                    break;
                }
                thread::sleep((sent + POLL).saturating_duration_since(Instant::now()));
            }
        }
        lag.lags.sort_by(f64::total_cmp);
        lag.scrapes.sort_by(f64::total_cmp);
        let [p50, p99] = [0.5, 0.99].map(|q| seconds(quantile(&lag.lags, q)));
        let (timeouts, errors) = (lag.timeouts, &lag.errors);
        println!("write → /metrics: p50 {p50}, p99 {p99}, {timeouts} timeouts, {errors}");
        Ok(lag)
    }
}

/// A client with one keep-alive connection that PATCHes `KEY` with a new value each time.
struct Writer<'a> {
    client: Client,
    url: String,
    setup: &'a Setup<'a>,
}

impl Writer<'_> {
    /// Writes the next value to `tenant`; the value, or the error (a non-200 included).
    fn patch(&self, tenant: &str) -> Result<u64> {
        let value = self.setup.counter.fetch_add(1, Ordering::Relaxed);
        let request = self.client.patch(format!("{}{tenant}", self.url));
        let request = request.bearer_auth(self.setup.token);
        let request = request.header("Content-Type", "application/merge-patch+json");
        let response = request
            .body(serde_json::json!({ KEY: value }).to_string())
            .send()?;
        let status = response.status();
        let text = response.text().unwrap_or_default();
        ensure!(status.is_success(), "{tenant}: {status} {text}");
        Ok(value)
    }
}

/// Whether a `/metrics` body has `tenant`'s line for [`KEY`] with exactly `value`.
fn shows(body: &str, tenant: &str, value: u64) -> bool {
    body.contains(&line_of(tenant, &format!("{value}\n")))
}

fn line_of(tenant: &str, value: &str) -> String {
    format!("user_threshold{{tenant=\"{tenant}\",{KEY_LABELS}}} {value}")
}

/// `tenants` dealt round-robin into `n` sets; with fewer tenants than sets, the extra sets
/// share the first tenants.
fn partition(tenants: &[String], n: usize) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new(); n];
    let dealt = tenants.iter().cycle().take(tenants.len().max(n));
    dealt
        .enumerate()
        .for_each(|(i, tenant)| sets[i % n].push(tenant.clone()));
    sets
}

/// Failed requests: how many, and the first message.
#[derive(Default, Serialize, Deserialize)]
struct Errors {
    count: u64,
    first: Option<String>,
}

impl Errors {
    fn note(&mut self, message: String) {
        self.add(Errors {
            count: 1,
            first: Some(message),
        });
    }

    fn add(&mut self, other: Errors) {
        self.count += other.count;
        self.first = self.first.take().or(other.first);
    }
}

impl std::fmt::Display for Errors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let first = self
            .first
            .as_ref()
            .map_or(String::new(), |e| format!(" (first: {e})"));
        write!(f, "{} errors{first}", self.count)
    }
}

/// What the load clients saw, all of them together: (due or sent, seconds) of every 200.
/// A paced client's write counts from when it was due, not from when it could be sent: a slow
/// answer delays the next writes, and their wait is part of their latency.
#[derive(Default)]
struct Outcome {
    samples: Vec<(Instant, f64)>,
    errors: Errors,
}

/// One load client: PATCHes the tenants of `set` in turn, as soon as the previous one was
/// answered or on the schedule `(next, every)`, until `stop`.
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
                let due = std::mem::replace(next, *next + *every);
                thread::sleep(due.saturating_duration_since(Instant::now()));
                due
            }
            None => Instant::now(),
        };
        match writer.patch(tenant) {
            Ok(_) => outcome.samples.push((sent, sent.elapsed().as_secs_f64())),
            Err(e) => {
                outcome.errors.note(format!("{e:#}"));
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
    errors: Errors,
    cpu: CpuTimes,
}

impl Throughput {
    fn of(outcome: Outcome, from: Instant, to: Instant, cpu: CpuTimes) -> Throughput {
        let within = |&&(sent, took): &&(Instant, f64)| {
            sent >= from && sent + Duration::from_secs_f64(took) <= to
        };
        let mut latencies: Vec<f64> = outcome.samples.iter().filter(within).map(|s| s.1).collect();
        latencies.sort_by(f64::total_cmp);
        let per_sec = latencies.len() as f64 / (to - from).as_secs_f64();
        Throughput {
            per_sec,
            latencies,
            errors: outcome.errors,
            cpu,
        }
    }
}

/// Write → `/metrics` times, in seconds.
#[derive(Default, Serialize, Deserialize)]
struct Lag {
    /// One per acknowledged write, sorted: from its 200 to the sending of the first poll that
    /// showed it; a timed-out write counts as [`LAG_TIMEOUT`].
    lags: Vec<f64>,
    timeouts: usize,
    errors: Errors,
    /// How long each `/metrics` poll took, sorted: the resolution of the figures.
    scrapes: Vec<f64>,
    /// The background load's writes/s and errors meanwhile, if there was one.
    load: Option<(f64, u64)>,
    /// Stopped at [`LAG_MAX`] before all `--lag-writes` writes.
    cut_short: bool,
}

/// CPU seconds used by dynalert and by all `postgres` processes (the postmaster and its
/// backends; ours is the only cluster while it runs).
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
struct CpuTimes {
    server: f64,
    postgres: f64,
}

impl CpuTimes {
    fn sample(server_pid: u32) -> CpuTimes {
        let comm = |pid: &String| std::fs::read_to_string(format!("/proc/{pid}/comm"));
        let pids = std::fs::read_dir("/proc").into_iter().flatten().flatten();
        let pids = pids.map(|entry| entry.file_name().to_string_lossy().into_owned());
        let postgres = pids.filter(|pid| comm(pid).is_ok_and(|c| c.trim() == "postgres"));
        let server = cpu_seconds(&server_pid.to_string()).unwrap_or(0.0);
        CpuTimes {
            server,
            postgres: postgres.filter_map(|pid| cpu_seconds(&pid)).sum(),
        }
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server - before.server,
            postgres: self.postgres - before.postgres,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_written_value() {
        let (one, two) = (line_of("t-1", "1000123\n"), line_of("t-2", "77\n"));
        let body = format!("# TYPE user_threshold gauge\n{one}{two}");
        assert!(one.starts_with(r#"user_threshold{tenant="t-1",component="mysql",metric="#));
        assert!(shows(&body, "t-1", 1000123) && !shows(&body, "t-1", 100012));
        assert!(shows(&body, "t-2", 77) && !shows(&body, "t-2", 7));
    }

    #[test]
    fn deals_tenants_to_clients() {
        let tenants: Vec<String> = (1..=5).map(|i| format!("t{i}")).collect();
        assert_eq!(
            partition(&tenants, 2),
            [vec!["t1", "t3", "t5"], vec!["t2", "t4"]]
        );
        assert_eq!(partition(&tenants[..1], 2), [vec!["t1"], vec!["t1"]]);
        let mut errors = Errors::default();
        (0..7).for_each(|i| errors.note(format!("e{i}")));
        assert_eq!(errors.to_string(), "7 errors (first: e0)");
    }
}
