//! One Prometheus per variant (the testkit's launcher): sampling its own `/metrics`, its rules,
//! alerts and reloads; the warm-up and the measurement window.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dynalert_testkit::{Prometheus, ScrapeTarget};
use reqwest::blocking::Client;
use serde::{Deserialize, Serialize};

use super::{Args, Measured};
use crate::support::{self, Memory, TICKS_PER_SEC, cpu_seconds, median};

/// How long a CPU profile (`--pprof`) runs.
const PROFILE_SECS: u64 = 15;

pub struct Instance {
    pub variant: String,
    pub prometheus: Prometheus,
    /// From the launch to the first 200 of `/-/ready` (rule files loaded), polled every 50 ms.
    pub ready: f64,
    client: Client,
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

/// Rule counts and the groups' evaluation intervals (seconds, as Prometheus reports them),
/// from `/api/v1/rules`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Rules {
    pub groups: usize,
    pub alerting: usize,
    pub recording: usize,
    pub intervals: BTreeSet<String>,
}

/// An alert's identity across variants: alert name, tenant, severity, queue.
pub type AlertId = [String; 4];

impl Instance {
    pub fn start(
        args: &Args,
        variant: &str,
        rules: Option<&Path>,
        targets: &[ScrapeTarget],
    ) -> Result<Self> {
        let mut builder = Prometheus::builder().interval(Duration::from_secs(args.interval_secs));
        builder = targets
            .iter()
            .fold(builder, |builder, target| builder.scrape(target.clone()));
        if let Some(glob) = rules {
            builder = builder.rule_file(glob);
        }
        let started = Instant::now();
        let prometheus = builder.start()?.context("prometheus is not installed")?;
        let ready = started.elapsed().as_secs_f64();
        let (variant, client) = (variant.to_owned(), support::client(true)?);
        Ok(Self {
            variant,
            prometheus,
            ready,
            client,
        })
    }

    fn get(&self, path: &str) -> Result<Vec<u8>> {
        let url = format!("{}{path}", self.prometheus.url());
        Ok(self
            .client
            .get(url)
            .send()?
            .error_for_status()?
            .bytes()?
            .to_vec())
    }

    fn sample(&self) -> Result<Sample> {
        let body = String::from_utf8(self.get("/metrics")?)?;
        let sum = |name: &str| values(&body, name).iter().sum::<f64>();
        let evaluated = "prometheus_rule_group_last_evaluation_timestamp_seconds";
        let evaluated = values(&body, evaluated);
        Ok(Sample {
            at: Instant::now(),
            eval: sum("prometheus_rule_group_last_duration_seconds"),
            cpu: sum("process_cpu_seconds_total"),
            heap: sum("go_memstats_heap_inuse_bytes"),
            heap_goal: sum("go_memstats_next_gc_bytes"),
            rss: Memory::of(self.prometheus.pid())?.rss,
            head_series: sum("prometheus_tsdb_head_series"),
            failures: sum("prometheus_rule_evaluation_failures_total"),
            missed: sum("prometheus_rule_group_iterations_missed_total"),
            unevaluated: evaluated.iter().filter(|&&t| t <= 0.0).count(),
        })
    }

    /// Instant query answered with one number (0 for an empty result).
    fn number(&self, query: &str) -> Result<f64> {
        let samples = self.prometheus.query_samples(query)?;
        Ok(samples.first().map_or(0.0, |s| s.value))
    }

    /// The pending and firing alerts, from the `ALERTS` series.
    fn alert_set(&self) -> Result<BTreeSet<AlertId>> {
        let samples = self.prometheus.query_samples("ALERTS")?;
        let labels = ["alertname", "tenant", "severity", "queue"];
        let id = |s: &dynalert_testkit::Sample| labels.map(|l| s.label(l).unwrap_or("").to_owned());
        Ok(samples.iter().map(id).collect())
    }

    fn rules(&self) -> Result<Rules> {
        let data = self.prometheus.api_get("/api/v1/rules", &[])?;
        let groups = data["groups"]
            .as_array()
            .context("/api/v1/rules without groups")?;
        let rules = groups
            .iter()
            .flat_map(|g| g["rules"].as_array().into_iter().flatten());
        let of_kind = |kind: &str| rules.clone().filter(|rule| rule["type"] == kind).count();
        let (alerting, recording) = (of_kind("alerting"), of_kind("recording"));
        let intervals = groups.iter().map(|g| g["interval"].to_string()).collect();
        Ok(Rules {
            groups: groups.len(),
            alerting,
            recording,
            intervals,
        })
    }
}

/// Waits until the instance has run for `--history-secs` (and at least three intervals) and
/// every rule group has been evaluated.
pub fn warm_up(args: &Args, instance: &Instance) -> Result<()> {
    let interval = Duration::from_secs(args.interval_secs);
    let minimum = Duration::from_secs(args.history_secs).max(3 * interval);
    println!("history: {} runs for {minimum:?}", instance.variant);
    thread::sleep(minimum);
    for _ in 0..30 {
        if instance.sample()?.unevaluated == 0 {
            return Ok(());
        }
        thread::sleep(interval);
    }
    println!("warning: rule groups still not evaluated after the warm-up");
    Ok(())
}

/// One Prometheus running alone: sampled once per interval over `--settle-secs`, the CPU that
/// other processes on the machine used meanwhile noted; then, if asked, a CPU profile; then
/// its rules and alerts are read and it is reloaded `--reloads` times.
pub fn alone(args: &Args, tag: &str, instance: &Instance, cpu: &CpuWatch) -> Result<Measured> {
    let interval = Duration::from_secs(args.interval_secs);
    println!("measuring {} for {} s", instance.variant, args.settle_secs);
    let (started, others) = (Instant::now(), cpu.others()?);
    let mut samples = Vec::new();
    for tick in 0..=(args.settle_secs / args.interval_secs) as u32 {
        thread::sleep((started + interval * tick).saturating_duration_since(Instant::now()));
        samples.push(instance.sample()?);
    }
    let others = cpu.others()? - others;
    if let Some(dir) = &args.pprof {
        let profile = instance.get(&format!("/debug/pprof/profile?seconds={PROFILE_SECS}"))?;
        let path = dir.join(format!("{tag}-{}.pprof", instance.variant));
        fs::create_dir_all(dir)?;
        fs::write(&path, profile).with_context(|| format!("writing {}", path.display()))?;
    }
    measured(args, instance, &samples, others)
}

/// The figures of the window's samples, with the rules and alerts read now; then the reloads.
fn measured(args: &Args, instance: &Instance, samples: &[Sample], others: f64) -> Result<Measured> {
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    let seconds = (last.at - first.at).as_secs_f64();
    let median_of =
        |figure: fn(&Sample) -> f64| median(&samples.iter().map(figure).collect::<Vec<_>>());
    let mut reload_requests = Vec::new();
    for _ in 0..args.reloads {
        let started = Instant::now();
        instance.prometheus.reload()?;
        reload_requests.push(started.elapsed().as_secs_f64());
        thread::sleep(Duration::from_millis(200));
    }
    let loads = config_loads(instance.prometheus.log_path());
    let maintenance =
        "count(ALERTS and on(tenant) max by(tenant) (user_state_filter{filter=\"maintenance\"}))";
    Ok(Measured {
        variant: instance.variant.clone(),
        ready: instance.ready,
        load_at_start: loads.first().copied(),
        load_at_reload: (loads.len() > 1).then(|| median(&loads[1..])),
        reload_request: (args.reloads > 0).then(|| median(&reload_requests)),
        rules: instance.rules()?,
        eval: samples.iter().map(|s| s.eval).collect(),
        cpu: (last.cpu - first.cpu) / seconds,
        others: others / seconds,
        heap: median_of(|s| s.heap),
        heap_goal: median_of(|s| s.heap_goal),
        rss: median_of(|s| s.rss),
        head_series: last.head_series,
        failures: last.failures,
        missed: last.missed - first.missed,
        alerts: instance.number("count(ALERTS)")?,
        alerts_in_maintenance: instance.number(maintenance)?,
        alert_set: instance.alert_set()?,
    })
}

/// CPU time of the machine outside the processes of the benchmark: all of `/proc/stat`'s busy
/// time minus that of the watched processes (the Prometheus, dynalert serve) and of this
/// process (the synthetic exporter).
pub struct CpuWatch {
    pub pids: Vec<u32>,
}

impl CpuWatch {
    /// Cumulative CPU seconds of the other processes (a counter).
    fn others(&self) -> Result<f64> {
        let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let line = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "));
        let busy = line
            .map(machine_busy_ticks)
            .context("no cpu line in /proc/stat")?;
        // A process that has exited no longer counts.
        let ours: f64 = self
            .pids
            .iter()
            .filter_map(|pid| cpu_seconds(&pid.to_string()))
            .sum();
        Ok(busy / TICKS_PER_SEC - ours - cpu_seconds("self").unwrap_or(0.0))
    }
}

/// Busy ticks of `/proc/stat`'s `cpu` line: user, nice, system, irq, softirq and steal (idle
/// and iowait left out; guest time is already part of user).
fn machine_busy_ticks(fields: &str) -> f64 {
    let values: Vec<f64> = fields
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| values.get(i))
        .sum()
}

/// `rules=` (seconds) of every "Completed loading of configuration file" line of a log: at
/// start, then after each reload.
fn config_loads(log: &Path) -> Vec<f64> {
    let log = fs::read_to_string(log).unwrap_or_default();
    let lines = log
        .lines()
        .filter(|line| line.contains("Completed loading of configuration file"));
    let rules = lines.filter_map(|line| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix("rules="))
    });
    rules.filter_map(go_duration).collect()
}

/// A Go `time.Duration` string (`1m2.5s`, `12.3ms`, `850µs`) in seconds.
fn go_duration(mut rest: &str) -> Option<f64> {
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let unit_len = rest[number_end..].find(|c: char| c.is_ascii_digit());
        let unit_end = unit_len.map_or(rest.len(), |len| number_end + len);
        let unit = match &rest[number_end..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "µs" | "μs" | "us" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        seconds += rest[..number_end].parse::<f64>().ok()? * unit;
        rest = &rest[unit_end..];
    }
    Some(seconds)
}

/// The values of every sample of `name` in a text exposition.
pub fn values(body: &str, name: &str) -> Vec<f64> {
    let value = |line: &str| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.rfind('}')? + 1..],
            ' ' => rest,
            _ => return None,
        };
        rest.split_whitespace().next()?.parse().ok()
    };
    body.lines().filter_map(value).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_busy_cpu_ticks_and_reads_go_durations() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        assert_eq!(machine_busy_ticks("10 1 5 1000 7 2 3 4 9 0"), 25.0);
        assert!(CpuWatch { pids: Vec::new() }.others().unwrap().is_finite());
        let close = |got: Option<f64>, want: f64| (got.unwrap() - want).abs() < 1e-12;
        assert!(close(go_duration("9.365337ms"), 0.009365337));
        assert!(close(go_duration("1m2.5s"), 62.5));
        assert!(close(go_duration("2.5µs"), 2.5e-6));
        assert_eq!(values("a_b{x=\"}\"} 2\na 1\na_b 3\n", "a_b"), [2.0, 3.0]);
    }
}
