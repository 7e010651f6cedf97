//! What the benchmarks share: their common options, the run's description (machine, load,
//! binary), starting `dynalert serve`, timed HTTP requests, `/proc` readings, figures, tables.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use dynalert_testkit::{ChildGuard, Http};
use serde::{Deserialize, Serialize};

/// How long a server may take to become ready, and one HTTP response (a 35 MB plain body, a
/// slow Pushgateway, a CPU profile).
const TIMEOUT: Duration = Duration::from_secs(300);

/// Options every benchmark takes.
#[derive(clap::Args, Clone, Default)]
pub struct Output {
    /// Where to write the results (JSON); `target/dynalert-bench/<benchmark>.json` by default.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Markdown file whose section of this benchmark (between `<!-- bench-<name>:start -->`
    /// and `<!-- bench-<name>:end -->`) is replaced, else appended.
    #[arg(long)]
    pub out_md: Option<PathBuf>,
    /// Measure this dynalert binary instead of building the release one (another commit's
    /// build, a profiling build).
    #[arg(long, value_name = "PATH")]
    pub dynalert: Option<PathBuf>,
    /// Keep the work directory (configs, rule files, logs) and print its path.
    #[arg(long)]
    pub keep: bool,
}

impl Output {
    pub fn json_path(&self, bench: &str) -> PathBuf {
        let default = || target_dir().join(format!("dynalert-bench/{bench}.json"));
        self.json.clone().unwrap_or_else(default)
    }

    /// What every run starts with: the dynalert binary (`--dynalert`, else a fresh release
    /// build), the run's description, and a temporary work directory, removed at the end
    /// unless `--keep`.
    pub fn start(&self, bench: &str) -> Result<(PathBuf, Meta, tempfile::TempDir)> {
        if self.dynalert.is_none() {
            cargo(&["build", "--release", "-p", "dynalert"])?;
        }
        let built = || target_dir().join("release/dynalert");
        let binary = self.dynalert.clone().unwrap_or_else(built);
        ensure!(binary.is_file(), "no dynalert binary at {binary:?}");
        let (mut builder, prefix) = (tempfile::Builder::new(), format!("dynalert-bench-{bench}-"));
        let work = builder
            .prefix(&prefix)
            .disable_cleanup(self.keep)
            .tempdir()?;
        if self.keep {
            println!("work directory (kept): {}", work.path().display());
        }
        Ok((binary.clone(), Meta::start(&binary), work))
    }
}

/// Where, when and on what a run happened, for the report.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub command: String,
    pub date: String,
    pub machine: String,
    /// `dynalert --version` of the binary measured, and its path.
    pub dynalert: String,
    /// The benchmark's own commit (`git describe --dirty`).
    pub commit: String,
    /// The 1, 5 and 15 minute load averages at the start and at the end: other work on the
    /// machine skews every figure.
    pub load: [String; 2],
    pub seconds: f64,
    #[serde(skip)]
    started: Option<Instant>,
}

impl Meta {
    pub fn start(binary: &Path) -> Meta {
        let args = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
        let trimmed = |out: Result<String>| out.map_or("unknown".into(), |o| o.trim().to_owned());
        let version = trimmed(output(Command::new(binary).arg("--version")));
        let mut git = Command::new("git");
        git.args(["describe", "--always", "--dirty", "--abbrev=12"]);
        Meta {
            command: format!("cargo run -p dynalert-bench --release -- {args}"),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine: machine(),
            dynalert: format!("{version} ({})", binary.display()),
            commit: trimmed(output(git.current_dir(workspace_root()))),
            load: [load_average(), String::new()],
            seconds: 0.0,
            started: Some(Instant::now()),
        }
    }

    pub fn finish(mut self) -> Meta {
        self.load[1] = load_average();
        self.seconds = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        self
    }

    /// The title and the list that open every section.
    pub fn markdown(&self, title: &str) -> String {
        let (command, date, commit) = (&self.command, &self.date, &self.commit);
        let (machine, dynalert, seconds) = (&self.machine, &self.dynalert, self.seconds);
        let [start, end] = &self.load;
        format!(
            "## {title}\n\n- command: `{command}`\n- date: {date}, {seconds:.0} s; benchmark at \
             commit {commit}\n- machine: {machine}\n- load average at the start: {start}; at \
             the end: {end}\n- dynalert: {dynalert}\n"
        )
    }
}

/// CPUs, the CPU model and the total memory.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"));
    let model = model.and_then(|rest| Some(rest.split_once(':')?.1.trim()));
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let gib = kib_field(&meminfo, "MemTotal:").unwrap_or(0) as f64 / 1024.0 / 1024.0;
    let model = model.unwrap_or("unknown CPU");
    format!("{cpus} CPUs ({model}), {gib:.1} GiB RAM")
}

pub fn load_average() -> String {
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The workspace root (this crate's manifest is two levels below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    workspace_root().join(target)
}

/// Runs `cargo ARGS` in the workspace, its output shown; fails if it fails.
pub fn cargo(args: &[&str]) -> Result<()> {
    println!("==> cargo {}", args.join(" "));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .current_dir(workspace_root())
        .stdin(Stdio::null());
    let status = command.status().context("running cargo")?;
    ensure!(status.success(), "`cargo {}`: {status}", args.join(" "));
    Ok(())
}

/// `cargo xtask gen-tenants N --out DIR --keys K`: the generator stays in xtask.
pub fn gen_tenants(dir: &Path, tenants: usize, keys: usize) -> Result<()> {
    let (tenants, keys) = (tenants.to_string(), keys.to_string());
    let dir = dir.to_str().context("a work directory that is not UTF-8")?;
    cargo(&[
        "xtask",
        "gen-tenants",
        &tenants,
        "--out",
        dir,
        "--keys",
        &keys,
    ])
}

/// Runs `command` to completion and returns its standard output.
pub fn output(command: &mut Command) -> Result<String> {
    let out = command
        .output()
        .with_context(|| format!("running {command:?}"))?;
    let (status, stderr) = (out.status, String::from_utf8_lossy(&out.stderr));
    ensure!(status.success(), "{command:?}: {status}: {stderr}");
    Ok(String::from_utf8(out.stdout)?)
}

/// A `dynalert serve` started and answering `/ready`; stopped on drop.
pub struct Server {
    pub guard: ChildGuard,
    pub port: u16,
    /// From spawning to the first 2xx of `/ready` (polled every 50 ms).
    pub ready: f64,
}

impl Server {
    /// `dynalert serve ARGS --listen 127.0.0.1:<free port>`, its log in `log`.
    pub fn start(binary: &Path, args: &[&str], log: &Path) -> Result<Server> {
        let port = dynalert_testkit::free_port();
        let mut command = Command::new(binary);
        command.arg("serve").args(args).env("RUST_LOG", "info");
        command.args(["--listen", &format!("127.0.0.1:{port}")]);
        let started = Instant::now();
        let mut guard = ChildGuard::spawn("dynalert serve", command, log)?;
        let url = format!("http://127.0.0.1:{port}/ready");
        guard.wait_ready(&Http::new()?, &url, TIMEOUT)?;
        let ready = started.elapsed().as_secs_f64();
        Ok(Server { guard, port, ready })
    }

    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.port)
    }
}

/// An HTTP client for measurements. Without `keep_alive` every request has a connection of
/// its own, as a scraper's first request does. Bodies are never decompressed: the gzip figures
/// count the bytes sent.
pub fn client(keep_alive: bool) -> Result<reqwest::blocking::Client> {
    let builder = reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .no_gzip();
    let idle = if keep_alive { usize::MAX } else { 0 };
    Ok(builder.pool_max_idle_per_host(idle).build()?)
}

/// A response: status, body, and the seconds from sending the request to its last byte.
pub struct Timed {
    pub status: u16,
    pub body: Vec<u8>,
    pub seconds: f64,
}

pub fn timed(request: reqwest::blocking::RequestBuilder) -> Result<Timed> {
    let started = Instant::now();
    let response = request.send()?;
    let status = response.status().as_u16();
    let body = response.bytes()?.to_vec();
    let seconds = started.elapsed().as_secs_f64();
    Ok(Timed {
        status,
        body,
        seconds,
    })
}

/// Resident memory now and at its peak, in bytes.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Memory {
    pub rss: f64,
    pub peak: f64,
}

impl Memory {
    /// `VmRSS` and `VmHWM` of process `pid`.
    pub fn of(pid: u32) -> Result<Memory> {
        let path = format!("/proc/{pid}/status");
        let status = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let [rss, peak] = ["VmRSS:", "VmHWM:"].map(|name| kib_field(&status, name));
        let (rss, peak) = rss
            .zip(peak)
            .with_context(|| format!("no VmRSS in {path}"))?;
        let [rss, peak] = [rss, peak].map(|kib| kib as f64 * 1024.0);
        Ok(Memory { rss, peak })
    }
}

/// A `Name:   1234 kB` line of a `/proc` file, in KiB.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let value = text.lines().find_map(|line| line.strip_prefix(name))?;
    value.trim().trim_end_matches("kB").trim().parse().ok()
}

/// Clock ticks per second of `/proc` (USER_HZ: 100 on every Linux we run on).
pub const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `/proc/<pid>/stat` (`self` for this process), in seconds.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: count the fields after it,
    // state (field 3 of the man page) first; utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
    Some((field(14)? + field(15)?) / TICKS_PER_SEC)
}

/// Samples in a text exposition: the lines that are neither comments nor blank.
pub fn count_series(body: &str) -> usize {
    let samples = body
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    samples.count()
}

/// Replaces the section of benchmark `name` in `path`, or appends one (the file may not exist).
pub fn write_section(path: &Path, name: &str, section: &str) -> Result<()> {
    let start = format!("<!-- bench-{name}:start -->");
    let end = format!("<!-- bench-{name}:end -->");
    let old = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => return Err(error).with_context(|| format!("reading {path:?}")),
    };
    let block = format!("{start}\n{section}{end}");
    let new = match (old.find(&start), old.find(&end)) {
        (Some(s), Some(e)) if s < e => format!("{}{block}{}", &old[..s], &old[e + end.len()..]),
        _ if old.is_empty() => format!("{block}\n"),
        _ => format!("{}\n\n{block}\n", old.trim_end()),
    };
    fs::write(path, new).with_context(|| format!("writing {path:?}"))
}

/// `sorted[q × len]`: the median for 0.5, the maximum for 1.0; NaN for no samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n => sorted[((n as f64 * q) as usize).min(n - 1)],
    }
}

/// The median, the mean of the two middle values for an even count; NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// Seconds as `1.23 s`, `45.6 ms` or `0.78 ms`; `–` when not measured.
pub fn seconds(s: f64) -> String {
    match s {
        s if !s.is_finite() => "–".to_owned(),
        s if s >= 1.0 => format!("{s:.2} s"),
        s if s >= 0.01 => format!("{:.1} ms", s * 1000.0),
        s => format!("{:.2} ms", s * 1000.0),
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

/// How a figure fares against its target: `met`, or `missed` in bold so that it stands out.
pub fn outcome(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// A markdown table: the header, then one row per line.
pub fn table<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> String {
    let line = |cells: Vec<&str>| format!("| {} |\n", cells.join(" | "));
    let mut md = line(header.iter().map(AsRef::as_ref).collect());
    md += &line(vec!["---"; header.len()]);
    for row in rows {
        md += &line(row.iter().map(String::as_str).collect());
    }
    md
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_marked_section_or_appends_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("BENCH.md");
        write_section(&path, "x", "one\n").unwrap();
        let first = fs::read_to_string(&path).unwrap();
        fs::write(&path, format!("# Title\n\n{first}\ntail\n")).unwrap();
        write_section(&path, "x", "two\n").unwrap();
        let expected = "# Title\n\n<!-- bench-x:start -->\ntwo\n<!-- bench-x:end -->\n\ntail\n";
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn figures_of_samples_and_processes() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!([0.5, 1.0].map(|q| quantile(&sorted, q)), [51.0, 100.0]);
        assert!(quantile(&[], 0.5).is_nan());
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), 2.5);
        assert_eq!(seconds(0.0456), "45.6 ms");
        assert!(cpu_seconds("self").is_some());
        assert!(Memory::of(std::process::id()).unwrap().rss > 0.0);
        let table = table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(table, "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
