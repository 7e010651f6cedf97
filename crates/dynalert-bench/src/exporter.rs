//! `exporter`: dynalert's exporter measured against the issue's targets, with a Prometheus
//! Pushgateway serving the same threshold series side by side, all on 127.0.0.1.
//!
//! Steps: build release `dynalert` → generate N tenants × K keys (`cargo xtask gen-tenants`)
//! → run the in-process bench (`cargo bench -p dynalert-exposition --bench exporter`) → start
//! `dynalert serve`, time start → ready, scrape `/metrics` with and without gzip, read its RSS
//! → start a Pushgateway, PUT the threshold families of dynalert's body, measure it the same
//! way. Linux only: RSS comes from `/proc/<pid>/status`.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use dynalert_testkit::Pushgateway;
use serde::{Deserialize, Serialize};

use crate::support::{self, Memory, Meta, Output, count_series, mib, quantile, seconds, timed};

#[derive(clap::Args, Clone, Serialize, Deserialize)]
pub struct Args {
    /// Number of generated tenants (the in-process bench edits tenant-00042: at least 42).
    #[arg(long, default_value_t = 5000)]
    tenants: usize,
    /// Threshold keys every tenant overrides.
    #[arg(long, default_value_t = 30)]
    keys: usize,
    /// `/metrics` requests per server and encoding.
    #[arg(long, default_value_t = 20)]
    scrapes: usize,
    #[command(flatten)]
    #[serde(skip)]
    output: Output,
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

#[derive(Serialize, Deserialize)]
pub struct Results {
    meta: Meta,
    args: Args,
    in_process: InProcess,
    pushed_series: usize,
    dynalert: Measured,
    pushgateway: Measured,
}

/// The in-process bench's figures (medians over its own runs) and its output lines.
#[derive(Serialize, Deserialize)]
struct InProcess {
    lines: Vec<String>,
    cold_ms: Option<f64>,
    change_ms: Option<f64>,
    threshold_series: Option<u64>,
}

/// What one server measured; times in seconds, sorted.
#[derive(Serialize, Deserialize)]
struct Measured {
    ready: f64,
    /// The PUT of the threshold series (Pushgateway only).
    push: Option<f64>,
    gzip: Vec<f64>,
    gzip_bytes: usize,
    plain: Vec<f64>,
    plain_bytes: usize,
    series: usize,
    memory: Memory,
}

pub fn run(args: &Args) -> Result<(crate::Results, &Output)> {
    ensure!(
        args.tenants >= 42,
        "--tenants must be at least 42: the in-process bench edits tenant-00042.yaml"
    );
    ensure!(args.scrapes >= 1, "--scrapes must be at least 1");
    let meta = Meta::start();
    let binary = args.output.dynalert()?;
    let work = args.output.work_dir("exporter")?;
    let conf = work.path().join("conf.d");
    support::gen_tenants(&conf, args.tenants, args.keys)?;
    let in_process = in_process_bench(conf.to_str().context("a non-UTF-8 path")?)?;

    println!("==> dynalert serve");
    let conf_arg = conf.to_str().context("a non-UTF-8 path")?;
    let server = support::serve(
        &binary,
        &["--config-dir", conf_arg],
        &work.path().join("dynalert.log"),
        "info",
    )?;
    let url = format!("http://127.0.0.1:{}/metrics", server.port);
    let (dynalert, body) = scrape(&url, args.scrapes, server.ready, None)?;
    let dynalert = Measured {
        memory: Memory::of(server.guard.id())?,
        ..dynalert
    };
    drop(server);

    println!("==> prometheus-pushgateway");
    let pushed = threshold_families(&body);
    let started = Instant::now();
    let gateway = Pushgateway::start()?.context("prometheus-pushgateway is not installed")?;
    let ready = started.elapsed().as_secs_f64();
    let client = support::client(true)?;
    let push = timed(
        client
            .put(format!("{}/metrics/job/dynalert", gateway.url()))
            .header("Content-Type", "text/plain; version=0.0.4")
            .body(pushed.clone()),
    )?;
    ensure!(
        (200..300).contains(&push.status),
        "the Pushgateway refused the push ({}): {}",
        push.status,
        String::from_utf8_lossy(&push.body)
    );
    println!("pushed {} bytes in {}", pushed.len(), seconds(push.seconds));
    let url = format!("{}/metrics", gateway.url());
    let (pushgateway, _) = scrape(&url, args.scrapes, ready, Some(push.seconds))?;
    let pushgateway = Measured {
        memory: Memory::of(gateway.pid())?,
        ..pushgateway
    };

    let results = Results {
        meta: meta.finish(),
        args: args.clone(),
        in_process,
        pushed_series: count_series(&pushed),
        dynalert,
        pushgateway,
    };
    Ok((crate::Results::Exporter(Box::new(results)), &args.output))
}

/// `cargo bench -p dynalert-exposition --bench exporter -- <tree>`, its figures read back.
fn in_process_bench(conf: &str) -> Result<InProcess> {
    println!("==> cargo bench -p dynalert-exposition --bench exporter -- {conf}");
    // Compiler progress goes to stderr (shown); the bench prints its figures on stdout (kept).
    let stdout = support::output(
        Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args([
                "bench",
                "-p",
                "dynalert-exposition",
                "--bench",
                "exporter",
                "--",
                conf,
            ])
            .current_dir(support::workspace_root())
            .stderr(Stdio::inherit()),
    )?;
    print!("{stdout}");
    let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
    let median_after = |prefix: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(prefix))
            .and_then(|rest| rest.split("median").nth(1))
            .and_then(|value| debug_duration_ms(value.trim()))
    };
    Ok(InProcess {
        cold_ms: median_after("cold load + first render:"),
        change_ms: median_after("one changed file re-served:"),
        threshold_series: lines
            .iter()
            .find_map(|line| line.split_once("threshold series: "))
            .and_then(|(_, n)| n.trim().parse().ok()),
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

/// `count` scrapes of `url` with gzip, then `count` plain, each on a new connection; the
/// figures and the last plain body.
fn scrape(url: &str, count: usize, ready: f64, push: Option<f64>) -> Result<(Measured, String)> {
    let client = support::client(false)?;
    let mut runs = [Vec::new(), Vec::new()];
    let mut bodies = [Vec::new(), Vec::new()];
    for (gzip, (times, body)) in [true, false]
        .into_iter()
        .zip(runs.iter_mut().zip(&mut bodies))
    {
        for _ in 0..count {
            let mut request = client.get(url);
            if gzip {
                request = request.header("Accept-Encoding", "gzip");
            }
            let response = timed(request)?;
            ensure!(response.status == 200, "{url} answered {}", response.status);
            // A body that is not gzip would make the comparison meaningless.
            ensure!(
                !gzip || response.body.starts_with(&[0x1f, 0x8b]),
                "{url} did not gzip its body when asked"
            );
            times.push(response.seconds);
            *body = response.body;
        }
        times.sort_by(f64::total_cmp);
    }
    let [gzip, plain] = runs;
    let [gzip_body, plain_body] = bodies;
    let plain_body = String::from_utf8(plain_body).context("/metrics is not UTF-8")?;
    let measured = Measured {
        ready,
        push,
        gzip,
        gzip_bytes: gzip_body.len(),
        plain,
        plain_bytes: plain_body.len(),
        series: count_series(&plain_body),
        memory: Memory::default(),
    };
    Ok((measured, plain_body))
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

pub fn markdown(r: &Results) -> String {
    let (d, p) = (&r.dynalert, &r.pushgateway);
    let mut md = r.meta.markdown("Exporter benchmark");
    let series = r.in_process.threshold_series;
    let _ = writeln!(
        md,
        "- workload: {} tenants × {} keys; {} `user_threshold` series; {} threshold-family \
         series pushed to the Pushgateway\n- scrapes: {} per server and encoding\n",
        r.args.tenants,
        r.args.keys,
        series.map_or("?".to_owned(), |n| n.to_string()),
        r.pushed_series,
        r.args.scrapes
    );
    md.push_str("| metric | dynalert | pushgateway | target |\n|---|---|---|---|\n");
    let ms = |ms: Option<f64>| ms.map_or("?".to_owned(), |ms| seconds(ms / 1000.0));
    for (metric, value, target) in [
        (
            "cold load + first render",
            r.in_process.cold_ms,
            TARGET_COLD_MS,
        ),
        (
            "one changed tenant file re-served",
            r.in_process.change_ms,
            TARGET_CHANGE_MS,
        ),
    ] {
        let verdict = verdict(value, target, "ms");
        let _ = writeln!(
            md,
            "| {metric} (in-process, median) | {} | – | {verdict} |",
            ms(value)
        );
    }
    let mut row = |metric: &str, cell: &dyn Fn(&Measured) -> String, target: String| {
        let _ = writeln!(md, "| {metric} | {} | {} | {target} |", cell(d), cell(p));
    };
    let none = || "–".to_owned();
    row("process start → ready", &|m| seconds(m.ready), none());
    let push = |m: &Measured| m.push.map_or_else(none, seconds);
    row("push of the threshold series (one PUT)", &push, none());
    for (label, q) in [("median", 0.5), ("p90", 0.9), ("max", 1.0)] {
        let scrape = quantile(&d.gzip, q) * 1000.0;
        let target = (q < 1.0).then(|| verdict(Some(scrape), TARGET_SCRAPE_MS, "ms"));
        let cell = |m: &Measured| seconds(quantile(&m.gzip, q));
        row(
            &format!("`/metrics` gzip, {label}"),
            &cell,
            target.unwrap_or_else(none),
        );
    }
    let size = |bytes: usize| match bytes as f64 / 1024.0 {
        kib if kib >= 1024.0 => format!("{:.2} MiB", kib / 1024.0),
        kib => format!("{kib:.1} KiB"),
    };
    row(
        "`/metrics` plain, median",
        &|m| seconds(quantile(&m.plain, 0.5)),
        none(),
    );
    row("`/metrics` body, gzip", &|m| size(m.gzip_bytes), none());
    row("`/metrics` body, plain", &|m| size(m.plain_bytes), none());
    row("series in `/metrics`", &|m| m.series.to_string(), none());
    let rss = Some(d.memory.rss_kib as f64 / 1024.0);
    let target = verdict(rss, TARGET_RSS_MIB, "MiB");
    row(
        "RSS after the scrapes (VmRSS)",
        &|m| mib(m.memory.rss_kib),
        target,
    );
    row("peak RSS (VmHWM)", &|m| mib(m.memory.hwm_kib), none());
    md.push_str(
        "\nLatencies are measured by the client on 127.0.0.1: a new connection per request, \
         from sending the request to the last byte of the response. Start → ready is polled \
         every 50 ms. The Pushgateway serves the threshold families of dynalert's plain body, \
         pushed with one `PUT /metrics/job/dynalert`; it adds `job`/`instance` labels and its \
         own metrics (push timestamps, Go runtime, process). The in-process figures are the \
         medians of `cargo bench -p dynalert-exposition --bench exporter`:\n\n```text\n",
    );
    for line in &r.in_process.lines {
        let _ = writeln!(md, "{line}");
    }
    md.push_str("```\n");
    md
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
