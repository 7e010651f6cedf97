//! `cargo xtask bench-exporter`: dynalert's exporter measured against the issue's targets, with
//! a Prometheus Pushgateway serving the same threshold series side by side, all on 127.0.0.1.
//!
//! Steps: build release `dynalert` → generate N tenants × K keys into a temporary directory →
//! run the in-process bench (`cargo bench -p dynalert-exposition --bench exporter`) → start
//! `dynalert serve`, time start → ready, scrape `/metrics` with and without gzip, read its RSS →
//! start a Pushgateway, PUT the threshold families of dynalert's body, measure it the same way →
//! print a markdown table, and with `--out-md` write it between the bench-exporter markers.
//! Linux only: RSS comes from `/proc/<pid>/status`.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::fs::{self};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use clap::{Args, Parser};

use crate::bench_support::{
    Memory, count_series, date, free_port, load_average, machine, memory, request, start,
    target_dir, write_section,
};
use crate::gen_tenants::{self, GenTenantsArgs};

#[derive(Args)]
pub struct BenchExporterArgs {
    /// Number of generated tenants (the in-process bench edits tenant-00042: at least 42).
    #[arg(long, default_value_t = 5000)]
    tenants: usize,
    /// Threshold keys every tenant overrides.
    #[arg(long, default_value_t = 30)]
    keys: usize,
    /// `/metrics` requests per server and encoding.
    #[arg(long, default_value_t = 20)]
    scrapes: usize,
    /// Markdown file to write the results into (the section between the
    /// `<!-- bench-exporter:start -->` and `<!-- bench-exporter:end -->` markers, else appended).
    #[arg(long)]
    out_md: Option<PathBuf>,
}

/// dynalert's threshold families (`dynalert_exposition::text::FAMILIES`): what is pushed to the
/// Pushgateway. Self-monitoring stays out: it describes dynalert, not the thresholds.
const THRESHOLD_FAMILIES: [&str; 7] = [
    "user_threshold",
    "user_threshold_state_filter",
    "user_state_filter",
    "user_silent_mode",
    "user_severity_dedup",
    "tenant_metadata_info",
    "dynalert_config_event",
];

// The targets of the issue.
const TARGET_COLD_MS: f64 = 200.0;
const TARGET_CHANGE_MS: f64 = 20.0;
const TARGET_SCRAPE_MS: f64 = 50.0;
const TARGET_RSS_MIB: f64 = 64.0;

const START_MARKER: &str = "<!-- bench-exporter:start -->";
const END_MARKER: &str = "<!-- bench-exporter:end -->";
pub fn run(args: &BenchExporterArgs) -> Result<()> {
    ensure!(
        args.tenants >= 42,
        "--tenants must be at least 42: the in-process bench edits tenant-00042.yaml"
    );
    ensure!(args.scrapes >= 1, "--scrapes must be at least 1");
    let load_average = load_average();
    let root = crate::workspace_root();
    crate::cargo_step(&root, &["build", "--release", "-p", "dynalert"])?;
    let work = TempDir::new("dynalert-bench-exporter")?;
    let conf = work.path().join("conf.d");
    generate(&conf, args)?;
    let in_process = in_process_bench(&root, &conf)?;

    let binary = target_dir(&root).join("release/dynalert");
    println!("==> dynalert serve");
    let dynalert = measure_dynalert(&binary, &conf, work.path(), args.scrapes)?;
    let pushed = threshold_families(&dynalert.scrapes.plain_body);
    println!("==> prometheus-pushgateway");
    let pushgateway = measure_pushgateway(&pushed, work.path(), args.scrapes)?;

    let report = Report {
        args,
        load_average,
        in_process,
        pushed_series: count_series(&pushed),
        dynalert,
        pushgateway,
    };
    let section = report.markdown();
    println!("\n{section}");
    if let Some(path) = &args.out_md {
        write_section(path, (START_MARKER, END_MARKER), &section)?;
        println!("wrote the bench-exporter section of {}", path.display());
    }
    Ok(())
}

/// Runs `gen_tenants::run`. Its arguments' fields are private to that module, so they are built
/// the way its command line builds them.
fn generate(dir: &Path, args: &BenchExporterArgs) -> Result<()> {
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

/// The in-process bench's figures (medians over its own runs) and its output lines.
struct InProcess {
    lines: Vec<String>,
    cold_ms: Option<f64>,
    change_ms: Option<f64>,
    threshold_series: Option<u64>,
}

fn in_process_bench(root: &Path, conf: &Path) -> Result<InProcess> {
    let mut argv: Vec<OsString> = ["bench", "-p", "dynalert-exposition", "--bench", "exporter"]
        .map(OsString::from)
        .into();
    argv.extend(["--".into(), conf.into()]);
    println!("==> cargo bench -p dynalert-exposition --bench exporter -- <tree>");
    // Compiler progress goes to stderr (shown); the bench prints its figures on stdout (kept).
    let output = crate::cargo()
        .args(&argv)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo bench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    ensure!(
        output.status.success(),
        "the in-process bench failed ({})",
        output.status
    );
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let median_after = |prefix: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split("median").nth(1))
            .and_then(|value| debug_duration_ms(value.trim()))
    };
    let threshold_series = lines
        .iter()
        .find_map(|line| line.split_once("threshold series: "))
        .and_then(|(_, n)| n.trim().parse().ok());
    Ok(InProcess {
        cold_ms: median_after("cold load + first render:"),
        change_ms: median_after("one changed file re-served:"),
        threshold_series,
        lines,
    })
}

/// Milliseconds of a `Duration` printed with `{:?}` (`850µs`, `12.3ms`, `1.2s`).
fn debug_duration_ms(text: &str) -> Option<f64> {
    // Longest suffixes first: "ms" also ends in "s".
    for (unit, per_ms) in [("ns", 1e-6), ("µs", 1e-3), ("ms", 1.0), ("s", 1e3)] {
        if let Some(number) = text.strip_suffix(unit) {
            return number.parse::<f64>().ok().map(|n| n * per_ms);
        }
    }
    None
}

/// What one server measured.
struct Server {
    /// From spawning the process to the first 200 of its readiness endpoint.
    ready: Duration,
    /// The PUT of the threshold series (Pushgateway only).
    push: Option<Duration>,
    scrapes: Scrapes,
    memory: Memory,
}

fn measure_dynalert(binary: &Path, conf: &Path, work: &Path, scrapes: usize) -> Result<Server> {
    let port = free_port()?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .arg("--config-dir")
        .arg(conf)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"));
    let (server, ready) = start(command, port, "/ready", &work.join("dynalert.log"))?;
    let scrapes = scrape(port, scrapes)?;
    Ok(Server {
        ready,
        push: None,
        memory: memory(server.child.id())?,
        scrapes,
    })
}

fn measure_pushgateway(body: &str, work: &Path, scrapes: usize) -> Result<Server> {
    let port = free_port()?;
    let mut command = Command::new("prometheus-pushgateway");
    // An empty persistence file keeps everything in memory: nothing is written to /var/lib.
    command
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--persistence.file=")
        .arg("--log.level=warn");
    let log = work.join("pushgateway.log");
    let (server, ready) = start(command, port, "/-/ready", &log)?;
    let headers = "Content-Type: text/plain; version=0.0.4\r\n";
    let (response, push) = request(
        port,
        "PUT",
        "/metrics/job/dynalert",
        headers,
        body.as_bytes(),
    )?;
    ensure!(
        (200..300).contains(&response.status),
        "the Pushgateway refused the push ({}): {}",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    println!("pushed {} bytes in {}", body.len(), ms(push));
    let scrapes = scrape(port, scrapes)?;
    Ok(Server {
        ready,
        push: Some(push),
        memory: memory(server.child.id())?,
        scrapes,
    })
}

/// `/metrics` timings, sorted, and the bodies of the last scrapes.
struct Scrapes {
    gzip: Vec<Duration>,
    gzip_bytes: usize,
    plain: Vec<Duration>,
    plain_body: String,
}

fn scrape(port: u16, count: usize) -> Result<Scrapes> {
    let mut gzip = Vec::new();
    let mut gzip_bytes = 0;
    for _ in 0..count {
        let (response, took) = request(port, "GET", "/metrics", "Accept-Encoding: gzip\r\n", b"")?;
        ensure!(
            response.status == 200,
            "/metrics answered {}",
            response.status
        );
        // A body that is not gzip would make the comparison meaningless.
        ensure!(
            response.body.starts_with(&[0x1f, 0x8b]),
            "/metrics did not gzip its body when asked"
        );
        gzip.push(took);
        gzip_bytes = response.body.len();
    }
    let mut plain = Vec::new();
    let mut plain_body = Vec::new();
    for _ in 0..count {
        let (response, took) = request(port, "GET", "/metrics", "", b"")?;
        ensure!(
            response.status == 200,
            "/metrics answered {}",
            response.status
        );
        plain.push(took);
        plain_body = response.body;
    }
    gzip.sort();
    plain.sort();
    Ok(Scrapes {
        gzip,
        gzip_bytes,
        plain,
        plain_body: String::from_utf8(plain_body).context("/metrics is not UTF-8")?,
    })
}

/// `sorted[q × len]`: the median for 0.5, the maximum for 1.0.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 * q) as usize).min(sorted.len() - 1);
    sorted[index]
}

/// The lines of `body` that belong to a threshold family, their HELP and TYPE included.
fn threshold_families(body: &str) -> String {
    let mut out = String::new();
    for line in body.lines() {
        let name = match line.strip_prefix("# ") {
            Some(comment) => comment.split(' ').nth(1).unwrap_or(""),
            None => line.split(['{', ' ']).next().unwrap_or(""),
        };
        if THRESHOLD_FAMILIES.contains(&name) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

struct Report<'a> {
    args: &'a BenchExporterArgs,
    load_average: String,
    in_process: InProcess,
    pushed_series: usize,
    dynalert: Server,
    pushgateway: Server,
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let (d, p) = (&self.dynalert, &self.pushgateway);
        let mut md = String::from("## Exporter benchmark\n\n");
        let command: Vec<String> = std::env::args().skip(1).collect();
        let _ = writeln!(md, "- command: `cargo xtask {}`", command.join(" "));
        let _ = writeln!(md, "- date: {}", date());
        let _ = writeln!(md, "- machine: {}", machine());
        // Other work on the machine skews every figure; the load says whether there was any.
        let _ = writeln!(md, "- load average at the start: {}", self.load_average);
        let _ = writeln!(
            md,
            "- workload: {} tenants × {} keys; {} `user_threshold` series; {} threshold-family \
             series pushed to the Pushgateway",
            self.args.tenants,
            self.args.keys,
            self.in_process
                .threshold_series
                .map_or("?".to_owned(), |n| n.to_string()),
            self.pushed_series
        );
        let _ = writeln!(
            md,
            "- scrapes: {} per server and encoding\n",
            self.args.scrapes
        );

        md.push_str("| metric | dynalert | pushgateway | target |\n|---|---|---|---|\n");
        let mut row = |metric: &str, dynalert: String, pushgateway: String, target: String| {
            let _ = writeln!(md, "| {metric} | {dynalert} | {pushgateway} | {target} |");
        };
        let none = || "–".to_owned();
        let (cold, change) = (self.in_process.cold_ms, self.in_process.change_ms);
        row(
            "cold load + first render (in-process, median)",
            cold.map_or("?".to_owned(), ms_f64),
            none(),
            verdict(cold, TARGET_COLD_MS, "ms"),
        );
        row(
            "one changed tenant file re-served (in-process, median)",
            change.map_or("?".to_owned(), ms_f64),
            none(),
            verdict(change, TARGET_CHANGE_MS, "ms"),
        );
        row("process start → ready", ms(d.ready), ms(p.ready), none());
        row(
            "push of the threshold series (one PUT)",
            none(),
            p.push.map_or_else(none, ms),
            none(),
        );
        for (label, q) in [("median", 0.5), ("p90", 0.9), ("max", 1.0)] {
            let (dq, pq) = (quantile(&d.scrapes.gzip, q), quantile(&p.scrapes.gzip, q));
            let target = if q < 1.0 {
                verdict(Some(to_ms(dq)), TARGET_SCRAPE_MS, "ms")
            } else {
                none()
            };
            row(&format!("`/metrics` gzip, {label}"), ms(dq), ms(pq), target);
        }
        row(
            "`/metrics` plain, median",
            ms(quantile(&d.scrapes.plain, 0.5)),
            ms(quantile(&p.scrapes.plain, 0.5)),
            none(),
        );
        row(
            "`/metrics` body, gzip",
            size(d.scrapes.gzip_bytes),
            size(p.scrapes.gzip_bytes),
            none(),
        );
        row(
            "`/metrics` body, plain",
            size(d.scrapes.plain_body.len()),
            size(p.scrapes.plain_body.len()),
            none(),
        );
        row(
            "series in `/metrics`",
            count_series(&d.scrapes.plain_body).to_string(),
            count_series(&p.scrapes.plain_body).to_string(),
            none(),
        );
        let mib = |kib: u64| kib as f64 / 1024.0;
        row(
            "RSS after the scrapes (VmRSS)",
            format!("{:.1} MiB", mib(d.memory.rss_kib)),
            format!("{:.1} MiB", mib(p.memory.rss_kib)),
            verdict(Some(mib(d.memory.rss_kib)), TARGET_RSS_MIB, "MiB"),
        );
        row(
            "peak RSS (VmHWM)",
            format!("{:.1} MiB", mib(d.memory.hwm_kib)),
            format!("{:.1} MiB", mib(p.memory.hwm_kib)),
            none(),
        );

        md.push_str(
            "\nLatencies are measured by the client on 127.0.0.1: a new connection per request \
             (not timed), from sending the request to the last byte of the response. The \
             Pushgateway serves the threshold families of dynalert's plain body, pushed with one \
             `PUT /metrics/job/dynalert`; it adds `job`/`instance` labels and its own metrics \
             (push timestamps, Go runtime, process). The in-process figures are the medians of \
             `cargo bench -p dynalert-exposition --bench exporter`:\n\n```text\n",
        );
        for line in &self.in_process.lines {
            let _ = writeln!(md, "{line}");
        }
        md.push_str("```\n");
        md
    }
}

fn to_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ms(d: Duration) -> String {
    ms_f64(to_ms(d))
}

fn ms_f64(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.2} ms")
    }
}

fn size(bytes: usize) -> String {
    let kib = bytes as f64 / 1024.0;
    if kib >= 1024.0 {
        format!("{:.2} MiB", kib / 1024.0)
    } else {
        format!("{kib:.1} KiB")
    }
}

/// `≤ 200 ms: met`, or `missed` in bold so that it stands out in the table.
fn verdict(value: Option<f64>, target: f64, unit: &str) -> String {
    let outcome = match value {
        Some(v) if v <= target => "met",
        Some(_) => "**missed**",
        None => "not measured",
    };
    format!("≤ {target} {unit}: {outcome}")
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench_support::parse_response;

    #[test]
    fn keeps_only_threshold_families() {
        let body = "# HELP user_threshold T.\n# TYPE user_threshold gauge\n\
                    user_threshold{tenant=\"a\"} 1\n# HELP dynalert_tenants N.\n\
                    # TYPE dynalert_tenants gauge\ndynalert_tenants 1\n\
                    tenant_metadata_info{tenant=\"a\"} 1\nuser_threshold_state_filter 0\n";
        assert_eq!(
            threshold_families(body),
            "# HELP user_threshold T.\n# TYPE user_threshold gauge\n\
             user_threshold{tenant=\"a\"} 1\ntenant_metadata_info{tenant=\"a\"} 1\n\
             user_threshold_state_filter 0\n"
        );
        assert_eq!(count_series(body), 4);
    }

    #[test]
    fn reads_debug_durations() {
        assert_eq!(debug_duration_ms("12.5ms"), Some(12.5));
        assert_eq!(debug_duration_ms("850µs"), Some(0.85));
        assert_eq!(debug_duration_ms("1.5s"), Some(1500.0));
        assert_eq!(debug_duration_ms("soon"), None);
    }

    #[test]
    fn decodes_chunked_responses() {
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        let response = parse_response(raw).unwrap();
        assert_eq!(
            (response.status, response.body.as_slice()),
            (200, &b"abcde"[..])
        );
    }

    #[test]
    fn replaces_the_marked_section_or_appends_one() {
        let dir = TempDir::new("xtask-bench-exporter-test").unwrap();
        let path = dir.path().join("BENCH.md");
        write_section(&path, (START_MARKER, END_MARKER), "one\n").unwrap();
        fs::write(
            &path,
            format!("# Title\n\n{}\ntail\n", fs::read_to_string(&path).unwrap()),
        )
        .unwrap();
        write_section(&path, (START_MARKER, END_MARKER), "two\n").unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("# Title\n\n{START_MARKER}\ntwo\n{END_MARKER}\n\ntail\n")
        );
    }
}
