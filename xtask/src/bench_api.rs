//! `cargo xtask bench-api`: the management API's write path measured against issue 4's targets,
//! on SQLite and on PostgreSQL, everything on 127.0.0.1.
//!
//! Steps: build release `dynalert` → generate N tenants × K keys → make an admin token and an
//! `--auth-file` → per store: start `dynalert serve --store … --import <tree>`, then
//!
//! 1. C clients (threads with one keep-alive connection each) PATCH `mysql_connections` of
//!    their own tenants with ever-changing values for a warm-up and a measured period; then
//!    again with all C on one tenant;
//! 2. one more client PATCHes a tenant no load client touches with a unique value, notes when
//!    the 200 arrived and polls `/metrics` until the tenant's line carries that value; idle,
//!    and while the load of (1) runs; on PostgreSQL also with a second replica on the same
//!    database, writing to one and polling the other;
//! 3. reads the servers' RSS at the end.
//!
//! It prints a markdown section and with `--out-md` writes it between the bench-api markers.
//! PostgreSQL is a throw-away cluster (Debian's server binaries, `initdb` in the work
//! directory, run as the `postgres` user through `setpriv` when we are root), with its
//! durability defaults (`fsync` and `synchronous_commit` on). Linux only: RSS and CPU time come
//! from `/proc`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use clap::{Args, Parser, ValueEnum};

use crate::bench_support::{
    ChildGuard, HTTP_TIMEOUT, Memory, WorkDir, date, free_port, load_average, machine, memory,
    start, target_dir, write_section,
};
use crate::gen_tenants::{self, GenTenantsArgs};

#[derive(Args)]
pub struct BenchApiArgs {
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
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Backend::Sqlite, Backend::Postgres])]
    stores: Vec<Backend>,
    /// Run this dynalert binary instead of building the release one (a profiling build, say).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// `RUST_LOG` of the servers; their logs are in the work directory (see --keep).
    #[arg(long, default_value = "info")]
    server_log: String,
    /// Keep the work directory (server and PostgreSQL logs, the SQLite file) and print it.
    #[arg(long)]
    keep: bool,
    /// Markdown file to write the results into (the section between the
    /// `<!-- bench-api:start -->` and `<!-- bench-api:end -->` markers, else appended).
    #[arg(long)]
    out_md: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backend {
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

// The targets of the issue.
const TARGET_WRITES_PER_SEC: f64 = 1000.0;
const TARGET_WRITE_P99_MS: f64 = 20.0;
const TARGET_LAG_P99_MS: f64 = 200.0;
const TARGET_REPLICA_LAG_P99_MS: f64 = 1000.0;

const START_MARKER: &str = "<!-- bench-api:start -->";
const END_MARKER: &str = "<!-- bench-api:end -->";

pub fn run(args: &BenchApiArgs) -> Result<()> {
    ensure!(
        args.tenants >= 2,
        "--tenants must be at least 2 (one is kept for the /metrics timing)"
    );
    ensure!(args.keys >= 1, "--keys must be at least 1");
    ensure!(args.clients >= 1, "--clients must be at least 1");
    ensure!(args.measure_secs >= 1, "--measure-secs must be at least 1");
    ensure!(args.lag_writes >= 1, "--lag-writes must be at least 1");
    ensure!(!args.stores.is_empty(), "--stores names no store");
    let load_at_start = load_average();
    let root = crate::workspace_root();
    let binary = match &args.binary {
        Some(path) => path.clone(),
        None => {
            crate::cargo_step(&root, &["build", "--release", "-p", "dynalert"])?;
            target_dir(&root).join("release/dynalert")
        }
    };
    ensure!(
        binary.is_file(),
        "no dynalert binary at {}",
        binary.display()
    );
    let work = WorkDir::new("dynalert-bench-api", args.keep)?;
    let conf = work.path().join("conf.d");
    generate(&conf, args)?;
    let tenants = tenant_names(&conf)?;
    ensure!(
        tenants.len() == args.tenants,
        "gen-tenants wrote {} tenants, expected {}",
        tenants.len(),
        args.tenants
    );
    let token = random_token()?;
    let auth_file = work.path().join("auth.yaml");
    write_auth_file(&binary, &token, &auth_file)?;
    let setup = Setup {
        args,
        binary: &binary,
        conf: &conf,
        auth_file: &auth_file,
        work: work.path(),
        token: &token,
        tenants: &tenants,
        counter: Arc::new(AtomicU64::new(1_000_000)),
    };

    let mut sqlite = None;
    let mut postgres = None;
    let mut postgres_version = None;
    for backend in &args.stores {
        match backend {
            Backend::Sqlite => {
                println!("==> SQLite");
                let db = work.path().join("dynalert.db");
                let spec = format!("sqlite:{}", db.display());
                sqlite = Some(setup.measure_store(&spec, "sqlite", false)?);
            }
            Backend::Postgres => {
                println!("==> PostgreSQL");
                let server = Postgres::start(&work.path().join("postgres"))?;
                postgres_version = Some(server.version());
                let url = server.create_database("dynalert_bench")?;
                postgres = Some(setup.measure_store(&url, "postgres", true)?);
            }
        }
    }

    let report = Report {
        args,
        load_at_start,
        load_at_end: load_average(),
        version: dynalert_version(&binary),
        commit: git_commit(&root),
        postgres_version,
        sqlite,
        postgres,
    };
    let section = report.markdown();
    println!("\n{section}");
    if let Some(path) = &args.out_md {
        write_section(path, (START_MARKER, END_MARKER), &section)?;
        println!("wrote the bench-api section of {}", path.display());
    }
    if args.keep {
        println!("work directory kept: {}", work.path().display());
    }
    Ok(())
}

/// Runs `gen_tenants::run` the way its command line does (its fields are private).
fn generate(dir: &Path, args: &BenchApiArgs) -> Result<()> {
    #[derive(Parser)]
    struct GenTenantsCli {
        #[command(flatten)]
        args: GenTenantsArgs,
    }
    let argv: [OsString; 6] = [
        "gen-tenants".into(),
        args.tenants.to_string().into(),
        "--out".into(),
        dir.into(),
        "--keys".into(),
        args.keys.to_string().into(),
    ];
    println!("==> gen-tenants {} --keys {}", args.tenants, args.keys);
    gen_tenants::run(&GenTenantsCli::try_parse_from(argv)?.args)
}

/// The tenants gen-tenants wrote: one `tenant-….yaml` per tenant, named as its file.
fn tenant_names(conf: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(conf).with_context(|| format!("reading {}", conf.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".yaml")
            && stem.starts_with("tenant-")
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
    File::open("/dev/urandom")
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
        .stderr(Stdio::inherit())
        .spawn()
        .context("running dynalert token hash")?;
    child
        .stdin
        .take()
        .context("no stdin")?
        .write_all(token.as_bytes())?;
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "dynalert token hash failed ({})",
        output.status
    );
    let hash = String::from_utf8(output.stdout)?.trim().to_owned();
    ensure!(
        hash.len() == 64 && hash.chars().all(|c| c.is_ascii_hexdigit()),
        "dynalert token hash printed {hash:?}"
    );
    let yaml = format!("tokens:\n  - name: bench\n    sha256: {hash}\n    role: admin\n");
    fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}

/// What every store's measurement shares.
struct Setup<'a> {
    args: &'a BenchApiArgs,
    binary: &'a Path,
    conf: &'a Path,
    auth_file: &'a Path,
    work: &'a Path,
    token: &'a str,
    tenants: &'a [String],
    /// The next value written: every write in the run gets its own.
    counter: Arc<AtomicU64>,
}

/// One store's figures.
struct StoreResult {
    /// From spawning the first server to its first `/ready` 200 (import included).
    ready: Duration,
    own: Throughput,
    same: Throughput,
    paced: Throughput,
    lag_idle: Lag,
    lag_loaded: Lag,
    /// PostgreSQL only: written on one replica, read on another.
    replicas: Option<(Lag, Lag)>,
    /// VmRSS and VmHWM of each server at the end, in KiB.
    memory: Vec<Memory>,
}

impl Setup<'_> {
    fn serve(&self, spec: &str, name: &str, import: bool) -> Result<(ChildGuard, u16, Duration)> {
        let port = free_port()?;
        let mut command = Command::new(self.binary);
        command
            .arg("serve")
            .arg("--store")
            .arg(spec)
            .arg("--auth-file")
            .arg(self.auth_file)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("RUST_LOG", &self.args.server_log);
        if import {
            command.arg("--import").arg(self.conf);
        }
        let log = self.work.join(format!("{name}.log"));
        let (guard, ready) = start(command, port, "/ready", &log)?;
        println!("{name}: ready after {} (port {port})", ms(ready));
        Ok((guard, port, ready))
    }

    fn measure_store(&self, spec: &str, name: &str, replicas: bool) -> Result<StoreResult> {
        let (server, port, ready) = self.serve(spec, name, true)?;
        let pid = server.child.id();
        let args = self.args;
        // The last tenant is the one timed on /metrics; the load spreads over the others.
        let (lag_tenant, load_tenants) = self.tenants.split_last().context("no tenants")?;
        let own_sets = partition(load_tenants, args.clients);
        let same_sets = vec![vec![load_tenants[0].clone()]; args.clients];
        self.check_visible(port, port, lag_tenant)?;

        let own = self.throughput(port, &own_sets, pid, None, "own tenants")?;
        let same = self.throughput(port, &same_sets, pid, None, "one tenant")?;
        let paced = self.throughput(port, &own_sets, pid, Some(args.paced_rate), "paced")?;
        let lag_idle = self.lag(port, port, lag_tenant, None, "idle")?;
        let lag_loaded = self.lag(port, port, lag_tenant, Some(&own_sets), "under load")?;
        let mut memories = vec![memory(pid)?];
        let replicas = if replicas {
            let (second, second_port, _) = self.serve(spec, &format!("{name}-replica"), false)?;
            self.check_visible(port, second_port, lag_tenant)?;
            let idle = self.lag(port, second_port, lag_tenant, None, "replica, idle")?;
            let loaded = self.lag(
                port,
                second_port,
                lag_tenant,
                Some(&own_sets),
                "replica, under load",
            )?;
            memories = vec![memory(pid)?, memory(second.child.id())?];
            Some((idle, loaded))
        } else {
            None
        };
        Ok(StoreResult {
            ready,
            own,
            same,
            paced,
            lag_idle,
            lag_loaded,
            replicas,
            memory: memories,
        })
    }

    /// One write must show on `/metrics` of `read_port` before anything is timed: fails with
    /// the tenant's lines when the line format is not the expected one.
    fn check_visible(&self, write_port: u16, read_port: u16, tenant: &str) -> Result<()> {
        let value = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut writer = Conn::new(write_port);
        let body = patch_body(value);
        let response =
            writer.request("PATCH", &patch_path(tenant), &self.patch_headers(), &body)?;
        ensure!(
            response.status == 200,
            "PATCH {tenant} answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let mut reader = Conn::new(read_port);
        let started = Instant::now();
        let mut body = String::new();
        while started.elapsed() < LAG_TIMEOUT {
            body = String::from_utf8(reader.get("/metrics")?.body)?;
            if shows(&body, tenant, value) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        let lines: Vec<&str> = body
            .lines()
            .filter(|l| l.contains(&format!("tenant=\"{tenant}\"")))
            .take(10)
            .collect();
        bail!(
            "{KEY}={value} of {tenant} did not show on /metrics (port {read_port}) within \
             {LAG_TIMEOUT:?}; the tenant's lines:\n{}",
            lines.join("\n")
        )
    }

    fn patch_headers(&self) -> String {
        format!(
            "Authorization: Bearer {}\r\nContent-Type: application/merge-patch+json\r\n",
            self.token
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
        let args = self.args;
        let pace = rate.map(|r| Duration::from_secs_f64(sets.len() as f64 / r));
        let load = Load::start(port, sets, &self.patch_headers(), &self.counter, pace);
        thread::sleep(Duration::from_secs(args.warmup_secs));
        let cpu_before = CpuTimes::sample(pid);
        let from = Instant::now();
        thread::sleep(Duration::from_secs(args.measure_secs));
        let to = Instant::now();
        let cpu = CpuTimes::sample(pid).since(&cpu_before);
        let outcome = load.finish();
        let result = Throughput::of(&outcome, from, to, cpu);
        println!(
            "{what}: {:.0} writes/s, p50 {}, p90 {}, p99 {}, max {}, {} errors{}",
            result.per_sec,
            ms(quantile(&result.latencies, 0.5)),
            ms(quantile(&result.latencies, 0.9)),
            ms(quantile(&result.latencies, 0.99)),
            ms(quantile(&result.latencies, 1.0)),
            result.errors,
            first_errors(&result.first_errors),
        );
        println!("{what}: CPU {}", result.cpu.describe(to - from));
        Ok(result)
    }

    /// Times `lag_writes` writes on `write_port` until `/metrics` of `read_port` shows them,
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
        let headers = self.patch_headers();
        let load = load.map(|sets| Load::start(write_port, sets, &headers, &self.counter, None));
        if load.is_some() {
            thread::sleep(Duration::from_secs(args.warmup_secs));
        }
        let from = Instant::now();
        let mut writer = Conn::new(write_port);
        let mut reader = Conn::new(read_port);
        let poll = Duration::from_millis(args.poll_ms);
        let mut lag = Lag::default();
        let path = patch_path(tenant);
        for _ in 0..args.lag_writes {
            if from.elapsed() > Duration::from_secs(args.lag_max_secs) {
                lag.cut_short = true;
                break;
            }
            let value = self.counter.fetch_add(1, Ordering::Relaxed);
            match writer.request("PATCH", &path, &headers, &patch_body(value)) {
                Ok(response) if response.status == 200 => {}
                Ok(response) => {
                    lag.error(format!(
                        "{}: {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    ));
                    continue;
                }
                Err(e) => {
                    lag.error(format!("{e:#}"));
                    continue;
                }
            }
            let acknowledged = Instant::now();
            // When the last poll that did not show the value was sent.
            let mut not_yet: Option<Instant> = None;
            loop {
                let sent = Instant::now();
                if sent - acknowledged > LAG_TIMEOUT {
                    lag.timeouts += 1;
                    lag.lags.push(LAG_TIMEOUT);
                    lag.lows.push(LAG_TIMEOUT);
                    break;
                }
                let shown = match reader.get("/metrics") {
                    Ok(response) if response.status == 200 => {
                        lag.scrapes.push(sent.elapsed());
                        std::str::from_utf8(&response.body)
                            .is_ok_and(|body| shows(body, tenant, value))
                    }
                    Ok(response) => {
                        lag.error(format!("/metrics answered {}", response.status));
                        false
                    }
                    Err(e) => {
                        lag.error(format!("/metrics: {e:#}"));
                        false
                    }
                };
                if shown {
                    // The snapshot a response shows is taken as its request arrives: `sent`
                    // bounds the moment the value became visible from above, the previous
                    // poll from below.
                    lag.lags.push(sent - acknowledged);
                    lag.lows
                        .push(not_yet.map_or(Duration::ZERO, |at| at - acknowledged));
                    break;
                }
                not_yet = Some(sent);
                if let Some(rest) = (sent + poll).checked_duration_since(Instant::now()) {
                    thread::sleep(rest);
                }
            }
        }
        let to = Instant::now();
        if let Some(load) = load {
            let outcome = load.finish();
            let during = Throughput::of(&outcome, from, to, CpuTimes::default());
            lag.load = Some((during.per_sec, during.errors));
        }
        lag.lags.sort();
        lag.lows.sort();
        lag.scrapes.sort();
        println!(
            "write → /metrics, {what}: p50 {} (≥ {}), p99 {} (≥ {}), max {}, {} timeouts, \
             {} errors{}; scrape median {}{}",
            ms(quantile(&lag.lags, 0.5)),
            ms(quantile(&lag.lows, 0.5)),
            ms(quantile(&lag.lags, 0.99)),
            ms(quantile(&lag.lows, 0.99)),
            ms(quantile(&lag.lags, 1.0)),
            lag.timeouts,
            lag.errors,
            first_errors(&lag.first_errors),
            ms(quantile(&lag.scrapes, 0.5)),
            lag.load.map_or(String::new(), |(per_sec, errors)| format!(
                "; load meanwhile {per_sec:.0} writes/s, {errors} errors"
            )),
        );
        Ok(lag)
    }
}

fn patch_path(tenant: &str) -> String {
    format!("/api/v1/tenants/{tenant}")
}

fn patch_body(value: u64) -> Vec<u8> {
    format!("{{\"{KEY}\": {value}}}").into_bytes()
}

/// Whether a `/metrics` body has `tenant`'s line for [`KEY`] with exactly `value`.
fn shows(body: &str, tenant: &str, value: u64) -> bool {
    let line = format!("user_threshold{{tenant=\"{tenant}\",{KEY_LABELS}}} {value}\n");
    body.contains(&line)
}

/// `tenants` dealt round-robin into `n` sets (every set non-empty when there are ≥ n tenants).
fn partition(tenants: &[String], n: usize) -> Vec<Vec<String>> {
    let mut sets = vec![Vec::new(); n];
    for (i, tenant) in tenants.iter().enumerate() {
        sets[i % n].push(tenant.clone());
    }
    // Fewer tenants than clients: the extra clients share the first ones.
    for i in 0..n {
        if sets[i].is_empty() {
            sets[i] = vec![tenants[i % tenants.len()].clone()];
        }
    }
    sets
}

fn first_errors(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(" (first: {})", errors.join(" | "))
    }
}

/// One write as a load client saw it. A paced client's write counts from when it was due,
/// not from when it could be sent: a slow answer delays the next writes, and their wait is
/// part of their latency (no coordinated omission).
struct Sample {
    sent: Instant,
    took: Duration,
}

/// What the load clients saw, all of them together.
#[derive(Default)]
struct Outcome {
    samples: Vec<Sample>,
    errors: u64,
    first_errors: Vec<String>,
}

/// Client threads writing until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<Outcome>>,
}

impl Load {
    /// One client per set; with `pace`, each client sends one write per `pace`, the clients'
    /// schedules staggered evenly.
    fn start(
        port: u16,
        sets: &[Vec<String>],
        headers: &str,
        counter: &Arc<AtomicU64>,
        pace: Option<Duration>,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let clients = sets.len() as u32;
        let threads = sets
            .iter()
            .enumerate()
            .map(|(i, set)| {
                let (set, headers) = (set.clone(), headers.to_owned());
                let (stop, counter) = (stop.clone(), counter.clone());
                let schedule = pace.map(|every| Schedule {
                    next: start + every * i as u32 / clients,
                    every,
                });
                thread::spawn(move || client(port, &set, &headers, &stop, &counter, schedule))
            })
            .collect();
        Load { stop, threads }
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
            for e in outcome.first_errors {
                if all.first_errors.len() < ERRORS_KEPT {
                    all.first_errors.push(e);
                }
            }
        }
        all
    }
}

/// When a paced client's next write is due, and the time between two.
struct Schedule {
    next: Instant,
    every: Duration,
}

impl Schedule {
    /// Waits until the next write is due and returns when that was.
    fn wait(&mut self) -> Instant {
        let due = self.next;
        self.next += self.every;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        due
    }
}

/// One load client: PATCHes the tenants of `set` in turn on one keep-alive connection, as
/// soon as the previous one was answered or on `schedule`.
fn client(
    port: u16,
    set: &[String],
    headers: &str,
    stop: &AtomicBool,
    counter: &AtomicU64,
    mut schedule: Option<Schedule>,
) -> Outcome {
    let mut conn = Conn::new(port);
    let mut outcome = Outcome::default();
    let paths: Vec<String> = set.iter().map(|t| patch_path(t)).collect();
    let note = |outcome: &mut Outcome, message: String| {
        outcome.errors += 1;
        if outcome.first_errors.len() < ERRORS_KEPT {
            outcome.first_errors.push(message);
        }
    };
    for path in paths.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let sent = match &mut schedule {
            Some(schedule) => schedule.wait(),
            None => Instant::now(),
        };
        let value = counter.fetch_add(1, Ordering::Relaxed);
        match conn.request("PATCH", path, headers, &patch_body(value)) {
            Ok(response) if response.status == 200 => outcome.samples.push(Sample {
                sent,
                took: sent.elapsed(),
            }),
            Ok(response) => note(
                &mut outcome,
                format!(
                    "{path}: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ),
            ),
            Err(e) => {
                note(&mut outcome, format!("{path}: {e:#}"));
                // A dead server must not turn into a busy loop.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
    outcome
}

/// A throughput run's figures.
struct Throughput {
    per_sec: f64,
    /// Writes sent and answered within the measured period, sorted.
    latencies: Vec<Duration>,
    /// Non-200 answers and failed requests over the whole run, warm-up included.
    errors: u64,
    first_errors: Vec<String>,
    cpu: CpuTimes,
}

impl Throughput {
    fn of(outcome: &Outcome, from: Instant, to: Instant, cpu: CpuTimes) -> Throughput {
        let mut latencies: Vec<Duration> = outcome
            .samples
            .iter()
            .filter(|s| s.sent >= from && s.sent + s.took <= to)
            .map(|s| s.took)
            .collect();
        latencies.sort();
        Throughput {
            per_sec: latencies.len() as f64 / (to - from).as_secs_f64(),
            latencies,
            errors: outcome.errors,
            first_errors: outcome.first_errors.clone(),
            cpu,
        }
    }
}

/// Write → `/metrics` times.
#[derive(Default)]
struct Lag {
    /// One per acknowledged write, sorted: up to the first poll that showed it (an upper
    /// bound); a timed-out write counts as [`LAG_TIMEOUT`].
    lags: Vec<Duration>,
    /// The same writes up to the last poll that did not show them (a lower bound), sorted.
    lows: Vec<Duration>,
    timeouts: usize,
    errors: u64,
    first_errors: Vec<String>,
    /// How long each `/metrics` poll took, sorted: the resolution of the figures.
    scrapes: Vec<Duration>,
    /// The background load's writes/s and errors meanwhile, if there was one.
    load: Option<(f64, u64)>,
    /// Stopped at `--lag-max-secs` before all `--lag-writes` writes.
    cut_short: bool,
}

impl Lag {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_errors.len() < ERRORS_KEPT {
            self.first_errors.push(message);
        }
    }
}

/// `sorted[q × len]`: the median for 0.5, the maximum for 1.0; zero for no samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[index]
}

/// A keep-alive HTTP/1.1 connection, (re)connected on demand. Requests are not retried: a
/// failure is reported and the next request connects anew.
struct Conn {
    port: u16,
    stream: Option<(TcpStream, BufReader<TcpStream>)>,
}

impl Conn {
    fn new(port: u16) -> Conn {
        Conn { port, stream: None }
    }

    /// A GET on a connection of its own. `dynalert serve` leaves Nagle's algorithm on: a
    /// multi-megabyte response on a reused connection often stalls ~40 ms on the client's
    /// delayed ACK, which would blur the `/metrics` polls (a new connection starts in quick-ACK
    /// mode).
    fn get(&mut self, path: &str) -> Result<Response> {
        self.request("GET", path, "Connection: close\r\n", b"")
    }

    fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<Response> {
        let result = self.try_request(method, path, headers, body);
        if result.as_ref().map_or(true, |r| r.close) {
            self.stream = None;
        }
        result
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        headers: &str,
        body: &[u8],
    ) -> Result<Response> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(("127.0.0.1", self.port))
                .with_context(|| format!("connecting to 127.0.0.1:{}", self.port))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(HTTP_TIMEOUT))?;
            let reader = BufReader::with_capacity(1 << 16, stream.try_clone()?);
            self.stream = Some((stream, reader));
        }
        let (stream, reader) = self.stream.as_mut().context("not connected")?;
        let mut message = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n{headers}Content-Length: {}\r\n\r\n",
            self.port,
            body.len()
        )
        .into_bytes();
        message.extend_from_slice(body);
        stream.write_all(&message)?;
        read_response(reader)
    }
}

struct Response {
    status: u16,
    body: Vec<u8>,
    /// The server closes the connection after this response.
    close: bool,
}

/// Reads one response (`Content-Length` or chunked body) and leaves the stream after it.
fn read_response(reader: &mut impl BufRead) -> Result<Response> {
    let mut line = String::new();
    ensure!(reader.read_line(&mut line)? > 0, "connection closed");
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad HTTP status line {line:?}"))?;
    let (mut length, mut chunked, mut close) = (None, false, false);
    loop {
        line.clear();
        ensure!(reader.read_line(&mut line)? > 0, "truncated HTTP header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            bail!("bad HTTP header {header:?}");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().context("bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            reader.read_line(&mut line)?;
            let size = line.trim_end().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size.trim(), 16)
                .with_context(|| format!("bad chunk size {line:?}"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    ensure!(reader.read_line(&mut line)? > 0, "truncated chunked body");
                    if line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            let mut chunk = vec![0; size + 2];
            reader.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..size]);
        }
    } else if let Some(length) = length {
        // `vec!` of zeros allocates zeroed memory: xtask is a debug build, where filling a
        // multi-megabyte body element by element (`resize`) would take longer than the scrape.
        body = vec![0; length];
        reader.read_exact(&mut body)?;
    } else {
        // Neither: the body runs to the end of the connection.
        reader.read_to_end(&mut body)?;
        close = true;
    }
    Ok(Response {
        status,
        body,
        close,
    })
}

/// CPU seconds used by dynalert and, on PostgreSQL, by the postgres processes (the postmaster
/// and its children), plus this process (the clients).
#[derive(Clone, Copy, Default)]
struct CpuTimes {
    server: f64,
    postgres: f64,
    clients: f64,
}

impl CpuTimes {
    fn sample(server_pid: u32) -> CpuTimes {
        CpuTimes {
            server: process_cpu(server_pid).unwrap_or(0.0),
            postgres: postgres_cpu(),
            clients: process_cpu(std::process::id()).unwrap_or(0.0),
        }
    }

    fn since(&self, before: &CpuTimes) -> CpuTimes {
        CpuTimes {
            server: self.server - before.server,
            postgres: self.postgres - before.postgres,
            clients: self.clients - before.clients,
        }
    }

    fn describe(&self, period: Duration) -> String {
        let mut text = format!("dynalert {:.1} s", self.server);
        if self.postgres > 0.0 {
            let _ = write!(text, ", postgres {:.1} s", self.postgres);
        }
        let _ = write!(
            text,
            ", clients {:.1} s, of {:.0} CPU-s available",
            self.clients,
            period.as_secs_f64() * cpus() as f64
        );
        text
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on every Linux we run on).
const TICKS_PER_SEC: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` after the command name: state, ppid, …
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime (fields 14 and 15 of stat, 12 and 13 after the name) in seconds.
fn cpu_of(fields: &[String]) -> Option<f64> {
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

fn process_cpu(pid: u32) -> Option<f64> {
    cpu_of(&stat_fields(&pid.to_string())?)
}

/// All `postgres` processes' CPU seconds (ours is the only cluster on the machine while it
/// runs; backends that exited in between are missed).
fn postgres_cpu() -> f64 {
    let Ok(entries) = fs::read_dir("/proc") else {
        return 0.0;
    };
    let mut total = 0.0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let comm = fs::read_to_string(format!("/proc/{name}/comm")).unwrap_or_default();
        if comm.trim() == "postgres"
            && let Some(cpu) = stat_fields(&name).as_deref().and_then(cpu_of)
        {
            total += cpu;
        }
    }
    total
}

/// A throw-away PostgreSQL cluster on a free port, shut down immediately on drop.
struct Postgres {
    child: Child,
    port: u16,
    bin: PathBuf,
}

/// The superuser `initdb` creates; connections are trusted.
const PG_USER: &str = "dynalert";
/// The account the server runs as when we are root (Debian's package creates it).
const PG_ACCOUNT: &str = "postgres";

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres> {
        let bin = postgres_bin_dir()?;
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let as_root = running_as_root();
        if as_root {
            let status = Command::new("chown")
                .arg("-R")
                .arg(format!("{PG_ACCOUNT}:{PG_ACCOUNT}"))
                .arg(dir)
                .status()?;
            ensure!(status.success(), "chown {} failed", dir.display());
        }
        let command = |program: &str| {
            let program = bin.join(program);
            let mut command = if as_root {
                // setpriv execs the program: the child we hold is the server itself.
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={PG_ACCOUNT}"))
                    .arg(format!("--regid={PG_ACCOUNT}"))
                    .args(["--init-groups", "--"])
                    .arg(program);
                c
            } else {
                Command::new(program)
            };
            command.current_dir(dir).stdin(Stdio::null());
            command
        };
        let data = dir.join("data");
        let output = command("initdb")
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                PG_USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .arg("--no-sync")
            .output()
            .context("running initdb")?;
        ensure!(
            output.status.success(),
            "initdb failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port()?;
        let log = dir.join("postgres.log");
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command("postgres")
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-p", &port.to_string()])
            .args(["-c", "max_connections=200"])
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting postgres")?;
        let mut server = Postgres { child, port, bin };
        let started = Instant::now();
        loop {
            let ready = Command::new(server.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string()])
                .args(["-U", PG_USER, "-d", "postgres", "-t", "2"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "postgres exited ({status}):\n{}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
            }
            ensure!(
                started.elapsed() < Duration::from_secs(60),
                "postgres was not ready after 60 s:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(100));
        }
        println!(
            "postgres: ready after {} (port {port}, data in {})",
            ms(started.elapsed()),
            data.display()
        );
        Ok(server)
    }

    /// Creates database `name` and returns its URL.
    fn create_database(&self, name: &str) -> Result<String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", PG_USER, "-d", "postgres"])
            .args(["-c", &format!("CREATE DATABASE \"{name}\"")])
            .stdin(Stdio::null())
            .output()
            .context("running psql")?;
        ensure!(
            output.status.success(),
            "CREATE DATABASE failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(format!(
            "postgres://{PG_USER}@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// `postgres (PostgreSQL) 15.x` → `PostgreSQL 15.x`.
    fn version(&self) -> String {
        Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|v| {
                v.split(") ")
                    .nth(1)
                    .map(|n| format!("PostgreSQL {}", n.trim()))
            })
            .unwrap_or_else(|| "PostgreSQL".to_owned())
    }
}

impl Drop for Postgres {
    /// An immediate shutdown (SIGQUIT, through the shell: std has no signals): the data is
    /// thrown away, so no checkpoint. SIGKILL if it does not stop within 10 s.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` (Debian), else the directory of `postgres`
/// on the PATH.
fn postgres_bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(Vec<u32>, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let version = name
                        .split('.')
                        .map(|p| p.parse().ok())
                        .collect::<Option<Vec<u32>>>()?;
                    let bin = e.path().join("bin");
                    bin.join("postgres").is_file().then_some((version, bin))
                })
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
        .context("no PostgreSQL server binaries (initdb, postgres): install Debian's postgresql")
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `dynalert --version`, e.g. `dynalert 0.1.0`.
fn dynalert_version(binary: &Path) -> String {
    Command::new(binary)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned())
}

/// The commit checked out, with a note when what goes into the binary (the crates, the
/// manifests) has uncommitted changes.
fn git_commit(root: &Path) -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
    };
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".to_owned();
    };
    let dirty = git(&[
        "status",
        "--porcelain",
        "--untracked-files=no",
        "--",
        "crates",
        "Cargo.toml",
        "Cargo.lock",
    ])
    .is_some_and(|s| !s.trim().is_empty());
    if dirty {
        format!("{} with uncommitted changes in crates/", commit.trim())
    } else {
        commit.trim().to_owned()
    }
}

struct Report<'a> {
    args: &'a BenchApiArgs,
    load_at_start: String,
    load_at_end: String,
    version: String,
    commit: String,
    postgres_version: Option<String>,
    sqlite: Option<StoreResult>,
    postgres: Option<StoreResult>,
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let args = self.args;
        let mut md = String::from("## Management API benchmark\n\n");
        let command: Vec<String> = std::env::args().skip(1).collect();
        let _ = writeln!(md, "- command: `cargo xtask {}`", command.join(" "));
        let _ = writeln!(md, "- date: {}", date());
        let _ = writeln!(md, "- machine: {}", machine());
        let _ = writeln!(
            md,
            "- load average at the start: {}; at the end: {}",
            self.load_at_start, self.load_at_end
        );
        let _ = writeln!(md, "- dynalert: {}, commit {}", self.version, self.commit);
        let mut stores = Vec::new();
        if self.sqlite.is_some() {
            stores.push("SQLite (a file in the temp directory, WAL)".to_owned());
        }
        if let Some(version) = &self.postgres_version {
            stores.push(format!(
                "{version} (a fresh local cluster, default settings: fsync and \
                 synchronous_commit on)"
            ));
        }
        let _ = writeln!(md, "- stores: {}", stores.join("; "));
        let _ = writeln!(
            md,
            "- workload: {} tenants × {} keys imported with `--import`; `PATCH \
             /api/v1/tenants/{{tenant}}` of `{KEY}` with a new value each time, by {} clients \
             with one keep-alive connection each; {} s warm-up, {} s measured",
            args.tenants, args.keys, args.clients, args.warmup_secs, args.measure_secs
        );
        let _ = writeln!(
            md,
            "- write → `/metrics`: {} writes per row, `/metrics` (plain) polled every {} ms, \
             a new connection per poll\n",
            args.lag_writes, args.poll_ms
        );

        let (s, p) = (self.sqlite.as_ref(), self.postgres.as_ref());
        md.push_str("| figure | SQLite | PostgreSQL | target |\n|---|---|---|---|\n");
        let mut row = |figure: &str, sqlite: String, postgres: String, target: String| {
            let _ = writeln!(md, "| {figure} | {sqlite} | {postgres} | {target} |");
        };
        let cell = |r: Option<&StoreResult>, f: &dyn Fn(&StoreResult) -> String| {
            r.map_or_else(|| "not run".to_owned(), f)
        };
        let none = || "–".to_owned();
        // Which targets a row is held to: (throughput, p99 latency). The paced run's throughput
        // is what it offers; its latency is the p99 at the target rate.
        for (label, pick, (throughput_target, latency_target)) in [
            (
                format!(
                    "{} clients, each on its own tenants, as fast as answered",
                    args.clients
                ),
                (|r: &StoreResult| &r.own) as fn(&StoreResult) -> &Throughput,
                (true, true),
            ),
            (
                format!(
                    "{} clients, each on its own tenants, {:.0} writes/s offered (paced)",
                    args.clients, args.paced_rate
                ),
                |r: &StoreResult| &r.paced,
                (false, true),
            ),
            (
                format!("{} clients, all on one tenant", args.clients),
                |r: &StoreResult| &r.same,
                (false, false),
            ),
        ] {
            row(
                &format!("PATCH throughput, {label}"),
                cell(s, &|r| format!("{:.0} writes/s", pick(r).per_sec)),
                cell(p, &|r| format!("{:.0} writes/s", pick(r).per_sec)),
                if throughput_target {
                    at_least(
                        s.map(|r| pick(r).per_sec),
                        TARGET_WRITES_PER_SEC,
                        "writes/s on SQLite",
                    )
                } else {
                    none()
                },
            );
            row(
                "… latency p50 / p90",
                cell(s, &|r| p50_p90(&pick(r).latencies)),
                cell(p, &|r| p50_p90(&pick(r).latencies)),
                none(),
            );
            row(
                "… latency p99",
                cell(s, &|r| ms(quantile(&pick(r).latencies, 0.99))),
                cell(p, &|r| ms(quantile(&pick(r).latencies, 0.99))),
                if latency_target {
                    at_most_both(
                        s.map(|r| to_ms(quantile(&pick(r).latencies, 0.99))),
                        p.map(|r| to_ms(quantile(&pick(r).latencies, 0.99))),
                        TARGET_WRITE_P99_MS,
                        "ms",
                    )
                } else {
                    none()
                },
            );
            row(
                "… latency max",
                cell(s, &|r| ms(quantile(&pick(r).latencies, 1.0))),
                cell(p, &|r| ms(quantile(&pick(r).latencies, 1.0))),
                none(),
            );
            row(
                "… errors (non-200, warm-up included)",
                cell(s, &|r| pick(r).errors.to_string()),
                cell(p, &|r| pick(r).errors.to_string()),
                "0".to_owned(),
            );
            row(
                &format!(
                    "… CPU seconds used while measured (of {} available), per write",
                    args.measure_secs as usize * cpus()
                ),
                cell(s, &|r| cpu_cell(pick(r))),
                cell(p, &|r| cpu_cell(pick(r))),
                none(),
            );
        }
        let lag_rows = |row: &mut dyn FnMut(&str, String, String, String),
                        label: &str,
                        sqlite: Option<&Lag>,
                        postgres: Option<&Lag>,
                        target_ms: f64| {
            let show = |lag: Option<&Lag>, f: &dyn Fn(&Lag) -> String| {
                lag.map_or_else(|| "–".to_owned(), f)
            };
            row(
                &format!("write → `/metrics`, {label}: p50"),
                show(sqlite, &|l| bounded(l, 0.5)),
                show(postgres, &|l| bounded(l, 0.5)),
                "–".to_owned(),
            );
            row(
                "… p99",
                show(sqlite, &|l| bounded(l, 0.99)),
                show(postgres, &|l| bounded(l, 0.99)),
                at_most_both(
                    sqlite.map(|l| to_ms(quantile(&l.lags, 0.99))),
                    postgres.map(|l| to_ms(quantile(&l.lags, 0.99))),
                    target_ms,
                    "ms",
                ),
            );
            row(
                "… max",
                show(sqlite, &lag_max),
                show(postgres, &lag_max),
                "–".to_owned(),
            );
            if sqlite.is_some_and(|l| l.load.is_some())
                || postgres.is_some_and(|l| l.load.is_some())
            {
                let load = |l: &Lag| {
                    l.load.map_or_else(
                        || "–".to_owned(),
                        |(per_sec, errors)| format!("{per_sec:.0} writes/s, {errors} errors"),
                    )
                };
                row(
                    "… background load meanwhile",
                    show(sqlite, &load),
                    show(postgres, &load),
                    "–".to_owned(),
                );
            }
        };
        let mut dyn_row = |figure: &str, a: String, b: String, c: String| row(figure, a, b, c);
        lag_rows(
            &mut dyn_row,
            "one replica, idle",
            s.map(|r| &r.lag_idle),
            p.map(|r| &r.lag_idle),
            TARGET_LAG_P99_MS,
        );
        lag_rows(
            &mut dyn_row,
            &format!("one replica, under the {}-client load", args.clients),
            s.map(|r| &r.lag_loaded),
            p.map(|r| &r.lag_loaded),
            TARGET_LAG_P99_MS,
        );
        let replicas = p.and_then(|r| r.replicas.as_ref());
        lag_rows(
            &mut dyn_row,
            "two replicas (write on one, read the other), idle",
            None,
            replicas.map(|(idle, _)| idle),
            TARGET_REPLICA_LAG_P99_MS,
        );
        lag_rows(
            &mut dyn_row,
            &format!(
                "two replicas, under the {}-client load on the written one",
                args.clients
            ),
            None,
            replicas.map(|(_, loaded)| loaded),
            TARGET_REPLICA_LAG_P99_MS,
        );
        dyn_row(
            "`/metrics` poll (plain), median",
            cell(s, &|r| ms(quantile(&r.lag_idle.scrapes, 0.5))),
            cell(p, &|r| ms(quantile(&r.lag_idle.scrapes, 0.5))),
            none(),
        );
        dyn_row(
            "start → ready, `--import` included",
            cell(s, &|r| ms(r.ready)),
            cell(p, &|r| ms(r.ready)),
            none(),
        );
        dyn_row(
            "RSS at the end, VmRSS (peak VmHWM)",
            cell(s, &memory_cell),
            cell(p, &memory_cell),
            none(),
        );

        let _ = write!(
            md,
            "\nLatencies are measured by the clients on 127.0.0.1, from sending a request to the \
             last byte of its response; a paced write from when it was due (each client sends one \
             every {clients}/{rate} s on a fixed schedule, so a slow answer delays the next \
             writes and that wait counts in their latency). \"As fast as answered\" runs the \
             server at saturation: with {clients} clients always waiting, its mean latency is \
             {clients} ÷ throughput. Throughput counts the 200s of writes sent and answered \
             within the measured period. A write's time to `/metrics` runs from its 200 to the \
             sending of the first `/metrics` request whose response has the new value (the \
             server takes its snapshot as a request arrives): an upper bound; in brackets the \
             same quantile up to the last request that did not have it yet, a lower bound. \
             Polls start {} ms apart or back to back when a poll takes longer (row `/metrics` \
             poll). A write not seen within {} s counts as {} s. CPU seconds come \
             from `/proc/<pid>/stat`: dynalert, all `postgres` processes, and the clients (the \
             xtask process), all sharing the machine's CPUs. RSS is the dynalert process's \
             (both replicas' on PostgreSQL, the second one started for the replica rows only).\n",
            args.poll_ms,
            LAG_TIMEOUT.as_secs(),
            LAG_TIMEOUT.as_secs(),
            clients = args.clients,
            rate = args.paced_rate,
        );
        md
    }
}

fn p50_p90(sorted: &[Duration]) -> String {
    format!(
        "{} / {}",
        ms(quantile(sorted, 0.5)),
        ms(quantile(sorted, 0.9))
    )
}

/// The upper bound of a write → `/metrics` quantile, and its lower bound.
fn bounded(lag: &Lag, q: f64) -> String {
    format!(
        "{} (≥ {})",
        ms(quantile(&lag.lags, q)),
        ms(quantile(&lag.lows, q))
    )
}

fn lag_max(lag: &Lag) -> String {
    let mut text = format!(
        "{}; {} writes, {} timed out, {} errors",
        ms(quantile(&lag.lags, 1.0)),
        lag.lags.len(),
        lag.timeouts,
        lag.errors
    );
    if lag.cut_short {
        text.push_str(" (stopped at --lag-max-secs)");
    }
    text
}

/// CPU seconds of a throughput run, and per write for the servers.
fn cpu_cell(run: &Throughput) -> String {
    let (cpu, writes) = (&run.cpu, run.latencies.len().max(1) as f64);
    let mut text = format!(
        "dynalert {:.1} s ({:.2} ms/write)",
        cpu.server,
        cpu.server * 1000.0 / writes
    );
    if cpu.postgres > 0.0 {
        let _ = write!(
            text,
            ", postgres {:.1} s ({:.2} ms/write)",
            cpu.postgres,
            cpu.postgres * 1000.0 / writes
        );
    }
    let _ = write!(text, ", clients {:.1} s", cpu.clients);
    text
}

fn cpus() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn memory_cell(r: &StoreResult) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    r.memory
        .iter()
        .map(|m| format!("{:.1} MiB ({:.1} MiB)", mib(m.rss_kib), mib(m.hwm_kib)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn to_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> String {
    let ms = to_ms(d);
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
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
        .filter_map(|(name, value)| {
            let v = value?;
            Some(format!(
                "{name} {}",
                if v <= target { "met" } else { "**missed**" }
            ))
        })
        .collect();
    if outcomes.is_empty() {
        format!("≤ {target} {unit}")
    } else {
        format!("≤ {target} {unit}: {}", outcomes.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keep_alive_responses_one_after_another() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabc\
                    HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n\
                    3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n\
                    HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let mut reader = std::io::Cursor::new(&raw[..]);
        let first = read_response(&mut reader).unwrap();
        assert_eq!(
            (first.status, &first.body[..], first.close),
            (200, &b"abc"[..], false)
        );
        let second = read_response(&mut reader).unwrap();
        assert_eq!((second.status, &second.body[..]), (404, &b"abcde"[..]));
        let third = read_response(&mut reader).unwrap();
        assert_eq!(
            (third.status, third.body.len(), third.close),
            (500, 0, true)
        );
        assert!(read_response(&mut reader).is_err());
    }

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

    #[test]
    fn quantiles_of_sorted_samples() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&d, 0.99), Duration::from_millis(100));
        assert_eq!(quantile(&d, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }

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
