//! `exporter`: dynalert's exporter measured against the targets, with a Prometheus
//! Pushgateway serving the same threshold series side by side, all on 127.0.0.1.
//!
//! Steps: generate N tenants × K keys (`cargo xtask gen-tenants`) → load and render them in
//! this process ([`in_process`]) → start `dynalert serve`, time start → ready, scrape
//! `/metrics` with and without gzip, read its RSS → start a Pushgateway, PUT the threshold
//! families of dynalert's body, measure it the same way. Linux only: RSS comes from `/proc`.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use chrono::Utc;
use dynalert_config::{Delta, DocumentSet, ModelDiff, Upsert};
use dynalert_exposition::{Exposition, text::FAMILIES};
use dynalert_store::{TreeDelta, TreeReader};
use dynalert_testkit::Pushgateway;
use serde::{Deserialize, Serialize};

use crate::support::{self, Memory, Meta, Output, Server, count_series, median, mib};
use crate::support::{outcome, quantile, seconds, table, timed};

#[derive(clap::Args, Clone, Serialize, Deserialize)]
pub struct Args {
    /// Number of generated tenants (the in-process part edits tenant-00042: at least 42).
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
    pub output: Output,
}

/// Loads and edits measured in process by `exporter`.
const IN_PROCESS_RUNS: usize = 31;

// The targets of the issue, in seconds and bytes.
const TARGET_COLD: f64 = 0.2;
const TARGET_CHANGE: f64 = 0.02;
const TARGET_SCRAPE: f64 = 0.05;
const TARGET_RSS: f64 = 64.0 * 1024.0 * 1024.0;

#[derive(Serialize, Deserialize)]
pub struct Results {
    meta: Meta,
    args: Args,
    in_process: InProcess,
    pushed_series: usize,
    dynalert: Measured,
    pushgateway: Measured,
}

/// The in-process figures: medians over the runs, in seconds.
#[derive(Serialize, Deserialize)]
pub struct InProcess {
    runs: usize,
    tenants: usize,
    threshold_series: usize,
    plain_bytes: usize,
    gzip_bytes: usize,
    /// The tree read, parsed and compiled into a model.
    load: f64,
    /// `load` and the first render.
    cold: f64,
    /// One tenant file edited and served again, and of that: reading it and rebuilding the
    /// model (the rest is updating the rendering).
    change: f64,
    change_load: f64,
}

/// What one server measured; times in seconds, sorted.
#[derive(Default, Serialize, Deserialize)]
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

pub fn run(args: &Args) -> Result<crate::Results> {
    let valid = args.tenants >= 42 && args.scrapes >= 1;
    ensure!(
        valid,
        "--tenants ≥ 42 (tenant-00042 is edited), --scrapes ≥ 1"
    );
    let (binary, meta, work) = args.output.start("exporter")?;
    let conf = work.path().join("conf.d");
    support::gen_tenants(&conf, args.tenants, args.keys)?;
    println!("==> in process: load, render, edit ({IN_PROCESS_RUNS} runs)");
    let in_process = in_process(&conf, IN_PROCESS_RUNS)?;

    println!("==> dynalert serve");
    let config_dir = ["--config-dir", conf.to_str().context("a non-UTF-8 path")?];
    let server = Server::start(&binary, &config_dir, &work.path().join("dynalert.log"))?;
    let (mut dynalert, body) = scrape(&server.metrics_url(), args.scrapes)?;
    dynalert.ready = server.ready;
    dynalert.memory = Memory::of(server.guard.id())?;
    drop(server);

    println!("==> prometheus-pushgateway");
    let pushed = threshold_families(&body);
    let started = Instant::now();
    let gateway = Pushgateway::start()?.context("prometheus-pushgateway is not installed")?;
    let ready = started.elapsed().as_secs_f64();
    // Not `Pushgateway::push`: the testkit's client gives up after 15 s, and tens of MiB take
    // the Pushgateway seconds on a busy machine.
    let put = support::client(true)?.put(format!("{}/metrics/job/dynalert", gateway.url()));
    let put = put.header("Content-Type", "text/plain; version=0.0.4");
    let push = timed(put.body(pushed.clone()))?;
    ensure!(
        push.status == 200,
        "the Pushgateway answered {}",
        push.status
    );
    let (mut pushgateway, _) = scrape(&format!("{}/metrics", gateway.url()), args.scrapes)?;
    pushgateway.ready = ready;
    pushgateway.push = Some(push.seconds);
    pushgateway.memory = Memory::of(gateway.pid())?;

    let results = Results {
        meta: meta.finish(),
        args: args.clone(),
        in_process,
        pushed_series: count_series(&pushed),
        dynalert,
        pushgateway,
    };
    Ok(crate::Results::Exporter(Box::new(results)))
}

/// Loads `dir` as `serve` does (the store's tree reader feeding the document set), renders it,
/// `runs` times; then edits tenant-00042.yaml `runs` times, each time reading only that path
/// again, as `serve` does after a file event, and bringing the rendering up to date.
pub fn in_process(dir: &Path, runs: usize) -> Result<InProcess> {
    ensure!(runs >= 1, "--runs must be at least 1");
    let victim = dir.join("tenant-00042.yaml");
    let original = fs::read_to_string(&victim).with_context(|| format!("reading {victim:?}"))?;
    let (mut load, mut cold, mut served) = (Vec::new(), Vec::new(), None);
    for _ in 0..runs {
        let start = Instant::now();
        let (mut reader, mut set) = (TreeReader::new(dir), DocumentSet::new());
        let diff = apply(&mut set, reader.read_all()?);
        load.push(start.elapsed().as_secs_f64());
        let mut exposition = Exposition::new();
        exposition.update(&set.model(), &diff, Utc::now());
        exposition.snapshot();
        cold.push(start.elapsed().as_secs_f64());
        served = Some((reader, set, exposition));
    }
    let (mut reader, mut set, mut exposition) = served.expect("at least one run");
    let (mut change, mut change_load) = (Vec::new(), Vec::new());
    for i in 0..runs {
        // Values that differ from the previous edit's: a comment alone renders nothing.
        let edited = original.replacen("tenants:", &format!("# edit {i}\ntenants:"), 1);
        fs::write(&victim, edited.replace(": 8", [": 9", ": 7"][i % 2]))?;
        let start = Instant::now();
        let diff = apply(&mut set, reader.read_paths(std::slice::from_ref(&victim))?);
        change_load.push(start.elapsed().as_secs_f64());
        let stats = exposition.update(&set.model(), &diff, Utc::now());
        exposition.snapshot().gzip_body(b"");
        change.push(start.elapsed().as_secs_f64());
        ensure!(stats.shards_rebuilt == 1, "edit {i} rebuilt {stats:?}");
    }
    fs::write(&victim, original)?;
    let snapshot = exposition.snapshot();
    let gzip_bytes = snapshot
        .gzip_body(b"")
        .iter()
        .map(|piece| piece.len())
        .sum();
    Ok(InProcess {
        runs,
        tenants: set.model().tenants.len(),
        threshold_series: snapshot.threshold_series(),
        plain_bytes: snapshot.plain_len(b""),
        gzip_bytes,
        load: median(&load),
        cold: median(&cold),
        change: median(&change),
        change_load: median(&change_load),
    })
}

/// Hands what the tree reader read to the document set; what changed in the model.
fn apply(set: &mut DocumentSet, tree: TreeDelta) -> ModelDiff {
    let upserts = tree.reads.into_iter();
    let upserts = upserts.filter_map(|r| Some(Upsert::text(r.path, r.content.ok()?)));
    set.apply(Delta {
        upserts: upserts.collect(),
        removed: tree.removed,
    })
    .diff
}

/// `count` scrapes of `url` with gzip, then `count` plain, each on a new connection; the
/// figures and the last plain body.
fn scrape(url: &str, count: usize) -> Result<(Measured, String)> {
    let client = support::client(false)?;
    let mut measured = Measured::default();
    let mut body = Vec::new();
    for gzip in [true, false] {
        let times = if gzip {
            &mut measured.gzip
        } else {
            &mut measured.plain
        };
        let encoding = if gzip { "gzip" } else { "identity" };
        for _ in 0..count {
            let response = timed(client.get(url).header("Accept-Encoding", encoding))?;
            ensure!(response.status == 200, "{url} answered {}", response.status);
            // A body that is not gzip would make the comparison meaningless.
            let gzipped = response.body.starts_with(&[0x1f, 0x8b]);
            ensure!(gzipped == gzip, "{url} ignored Accept-Encoding: {encoding}");
            times.push(response.seconds);
            body = response.body;
        }
        times.sort_by(f64::total_cmp);
        measured.gzip_bytes = if gzip {
            body.len()
        } else {
            measured.gzip_bytes
        };
    }
    let body = String::from_utf8(body).context("/metrics is not UTF-8")?;
    (measured.plain_bytes, measured.series) = (body.len(), count_series(&body));
    Ok((measured, body))
}

/// The lines of `body` that belong to one of dynalert's threshold families, their HELP and
/// TYPE included: what is pushed to the Pushgateway. Self-monitoring stays out: it describes
/// dynalert, not the thresholds.
fn threshold_families(body: &str) -> String {
    let is_threshold = |line: &&str| {
        let name = match line.strip_prefix("# ") {
            Some(comment) => comment.split(' ').nth(1),
            None => line.split(['{', ' ']).next(),
        };
        FAMILIES.iter().any(|(family, _)| Some(*family) == name)
    };
    body.lines()
        .filter(is_threshold)
        .map(|line| format!("{line}\n"))
        .collect()
}

pub fn markdown(r: &Results) -> String {
    let (a, i, d) = (&r.args, &r.in_process, &r.dynalert);
    let (tenants, keys, scrapes, runs) = (a.tenants, a.keys, a.scrapes, i.runs);
    let (series, pushed) = (i.threshold_series, r.pushed_series);
    let (render, update) = (i.cold - i.load, i.change - i.change_load);
    let figures = [i.load, render, i.cold, i.change, i.change_load, update];
    let [load, render, cold, change, reread, update] = figures.map(seconds);
    let mut md = r.meta.markdown("Exporter benchmark");
    let _ = writeln!(
        md,
        "- workload: {tenants} tenants × {keys} keys; {series} `user_threshold` series; {pushed} \
         threshold-family series pushed to the Pushgateway; {scrapes} scrapes per server and \
         encoding, each on a new connection\n- in process, medians of {runs} runs: the tree read, \
         parsed and compiled in {load}, rendered {render} later (cold load + first render \
         {cold}); one changed tenant file re-served in {change} ({reread} reading it and \
         rebuilding the model, {update} updating the rendering)\n"
    );
    let row = |name: &str, m: &Measured| {
        let push = m.push.map_or("–".into(), seconds);
        let mut row = vec![name.to_owned(), seconds(m.ready), push];
        row.extend([0.5, 0.9, 1.0].map(|q| seconds(quantile(&m.gzip, q))));
        let [gzip, plain] = [m.gzip_bytes, m.plain_bytes].map(|bytes| mib(bytes as f64));
        let rss = format!("{} (peak {})", mib(m.memory.rss), mib(m.memory.peak));
        let plain_median = seconds(quantile(&m.plain, 0.5));
        row.extend([
            plain_median,
            format!("{gzip} / {plain}"),
            m.series.to_string(),
            rss,
        ]);
        row
    };
    let header = "server|start → ready|push (one PUT)|gzip median|p90|max|plain median|\
                  body gzip / plain|series|RSS after the scrapes";
    let header: Vec<&str> = header.split('|').collect();
    let rows = [row("dynalert", d), row("pushgateway", &r.pushgateway)];
    md += &table(&header, &rows);
    let scrape_p90 = quantile(&d.gzip, 0.9);
    let met = [
        i.cold <= TARGET_COLD,
        i.change <= TARGET_CHANGE,
        scrape_p90 <= TARGET_SCRAPE,
    ];
    let [cold, change, scrape] = met.map(outcome);
    let targets = [TARGET_COLD, TARGET_CHANGE, TARGET_SCRAPE].map(seconds);
    let [cold_target, change_target, scrape_target] = targets;
    let (rss_target, rss) = (mib(TARGET_RSS), outcome(d.memory.rss <= TARGET_RSS));
    let _ = writeln!(
        md,
        "\nTargets: cold load + first render ≤ {cold_target}: {cold}; one changed file ≤ \
         {change_target}: {change}; `/metrics` with gzip ≤ {scrape_target} (median and p90): \
         {scrape}; RSS ≤ {rss_target}: {rss}."
    );
    md
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
}
