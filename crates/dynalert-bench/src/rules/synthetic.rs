//! The synthetic data of a round: the raw mysqld_exporter and redis_exporter series the packs
//! read, for N tenants, served to Prometheus from this process; and the conf.d that
//! `dynalert serve` serves for the same tenants.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dynalert_testkit::StaticExporter;

use super::keys::Key;

/// Instances (exporter targets) per tenant and service; instance 1 is the replica.
pub const INSTANCES: usize = 2;
/// Share of instances whose value of a signal is above the usual thresholds.
pub const P_HIGH: f64 = 0.04;
/// Share of instances that are down (only their `*_up 0` is served).
const P_DOWN: f64 = 0.02;
/// The values served of the one dimension the packs have, `queue`.
const QUEUES: [&str; 3] = ["email", "jobs", "reports"];

/// A sample's value from (tenant index, instance, index of its extra label set), if served.
type Value<'a> = &'a dyn Fn(usize, usize, usize) -> Option<f64>;

/// The raw series of mysqld_exporter and redis_exporter for every tenant × 2 instances, with
/// the metric names and labels the packs read. Values are a pure function of tenant, instance
/// and metric (counters grow at a fixed rate), a few percent above the usual thresholds.
pub struct Synthetic {
    pub tenants: Vec<String>,
    pub packs: Vec<String>,
    pub started: Instant,
}

impl Synthetic {
    pub fn new(tenants: Vec<String>, packs: Vec<String>) -> Self {
        let started = Instant::now();
        Self {
            tenants,
            packs,
            started,
        }
    }

    pub fn render(&self) -> String {
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

    /// `# TYPE`, then one sample per tenant, instance and extra label set (`,name="value"`…)
    /// for which `value` gives a number.
    fn family(&self, out: &mut String, name: &str, kind: &str, extra: &[String], value: Value) {
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let service = name.split('_').next().unwrap_or(name);
        let none = [String::new()];
        let extra = if extra.is_empty() { &none } else { extra };
        for (i, tenant) in self.tenants.iter().enumerate() {
            let each = (0..INSTANCES).flat_map(|j| extra.iter().enumerate().map(move |e| (j, e)));
            for (j, (k, labels)) in each {
                let Some(v) = value(i, j, k) else { continue };
                let instance = format!("{tenant}-{service}-{j}:9100");
                let _ = writeln!(
                    out,
                    "{name}{{tenant=\"{tenant}\",instance=\"{instance}\"{labels}}} {v}"
                );
            }
        }
    }

    fn mariadb(&self, out: &mut String, t: f64) {
        let up = |i, j| unit(i, j, 1) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        let replica = |i, j, v: f64| (j == 1 && up(i, j)).then_some(v);
        let mut family = |name: &str, kind, value: Value| {
            self.family(out, &format!("mysql_{name}"), kind, &[], value);
        };
        let up_value = |i, j, _| Some(f64::from(u8::from(up(i, j))));
        family("up", "gauge", &up_value);
        for (name, salt, normal, high) in [
            ("threads_connected", 2, (5.0, 60.0), (85.0, 140.0)),
            ("threads_running", 3, (1.0, 20.0), (45.0, 80.0)),
        ] {
            let value = |i, j, _| live(i, j, level(i, j, salt, normal, high).round());
            family(&format!("global_status_{name}"), "gauge", &value);
        }
        family("global_variables_max_connections", "gauge", &|i, j, _| {
            live(i, j, 151.0)
        });
        // Per-minute rates, usual and high. Rates jitter a little from one evaluation to the
        // next, so both ranges stay clear of every threshold a tenant can have (custom values
        // are 0.5 to 2 times the defaults of 10, 10, 1 and 60 per minute).
        for (name, salt, normal, high) in [
            ("slow_queries", 4, (0.0, 2.0), (25.0, 40.0)),
            ("aborted_connects", 5, (0.0, 2.0), (25.0, 40.0)),
            ("innodb_deadlocks", 6, (0.0, 0.2), (2.5, 5.0)),
            ("innodb_row_lock_waits", 7, (0.0, 12.0), (130.0, 200.0)),
        ] {
            let per_second = move |i, j| level(i, j, salt, normal, high) / 60.0;
            let value = |i, j, _| live(i, j, counter(i, j, salt, per_second(i, j), t));
            family(&format!("global_status_{name}"), "untyped", &value);
        }
        let lag = |i, j, _| replica(i, j, level(i, j, 8, (0.0, 5.0), (40.0, 300.0)).round());
        family("slave_status_seconds_behind_master", "gauge", &lag);
        for (name, salt) in [("io", 9), ("sql", 10)] {
            let running = |i, j| f64::from(u8::from(unit(i, j, salt) >= P_HIGH / 2.0));
            let running = |i, j, _| replica(i, j, running(i, j));
            family(
                &format!("slave_status_slave_{name}_running"),
                "gauge",
                &running,
            );
        }
    }

    fn redis(&self, out: &mut String, t: f64) {
        const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
        let commands = ["get", "set", "lpush", "brpop"].map(|cmd| format!(",cmd=\"{cmd}\""));
        let up = |i, j| unit(i, j, 31) >= P_DOWN;
        let live = |i, j, v: f64| up(i, j).then_some(v);
        let keys = QUEUES.map(|queue| format!(",db=\"db0\",key=\"{queue}\""));
        let mut family = |name: &str, kind, extra: &[String], value: Value| {
            self.family(out, &format!("redis_{name}"), kind, extra, value);
        };
        // A gauge of live instances, rounded.
        let gauge = |salt: u64, normal, high| {
            move |i, j, k| live(i, j, level(i, j, salt + k as u64, normal, high).round())
        };
        let up_value = |i, j, _| Some(f64::from(u8::from(up(i, j))));
        family("up", "gauge", &[], &up_value);
        // A tenth of the instances have no maxmemory (0) and are left out of the ratio.
        let max_memory = |i, j, _| live(i, j, if unit(i, j, 32) < 0.1 { 0.0 } else { GIB });
        family("memory_max_bytes", "gauge", &[], &max_memory);
        let used = |i, j, _| (GIB * level(i, j, 33, (0.2, 0.8), (0.9, 0.99))).round();
        let used = |i, j, k| live(i, j, used(i, j, k));
        family("memory_used_bytes", "gauge", &[], &used);
        let (clients, sizes) = (
            gauge(34, (10.0, 800.0), (1100.0, 2000.0)),
            gauge(35, (0.0, 300.0), (600.0, 5000.0)),
        );
        family("connected_clients", "gauge", &[], &clients);
        family("key_size", "gauge", &keys, &sizes);
        let rejected = |i, j| level(i, j, 40, (0.0, 0.0), (1.0, 5.0)) / 60.0;
        let rejected = |i, j, _| live(i, j, counter(i, j, 40, rejected(i, j), t));
        family("rejected_connections_total", "counter", &[], &rejected);
        // Calls per second per command, and the instance's mean latency in ms.
        let calls = |i, j, k: usize| level(i, j, 41 + k as u64, (50.0, 500.0), (50.0, 500.0));
        let latency_ms = |i, j| level(i, j, 50, (0.01, 2.0), (22.0, 30.0));
        // INFO's total_commands_processed: the calls of every command.
        let all_calls = |i, j| (0..commands.len()).map(|k| calls(i, j, k)).sum();
        let processed = |i, j, _| live(i, j, counter(i, j, 41, all_calls(i, j), t).floor());
        family("commands_processed_total", "counter", &[], &processed);
        let busy = |i, j, k: usize| calls(i, j, k) * latency_ms(i, j) / 1000.0;
        let duration = |i, j, k: usize| live(i, j, counter(i, j, 45 + k as u64, busy(i, j, k), t));
        family(
            "commands_duration_seconds_total",
            "counter",
            &commands,
            &duration,
        );
        // INFO's total_error_replies (failed and rejected commands of every command).
        let errors = |i, j| commands.len() as f64 * level(i, j, 60, (0.0, 0.007), (0.2, 0.5));
        let errors = |i, j, _| live(i, j, counter(i, j, 60, errors(i, j), t));
        family("total_error_replies", "counter", &[], &errors);
        let link =
            |i, j, _| (j == 1 && up(i, j)).then(|| f64::from(u8::from(unit(i, j, 70) >= P_HIGH)));
        family("master_link_up", "gauge", &[], &link);
    }
}

/// Uniform in [0, 1), a pure function of tenant, instance and salt.
pub fn unit(i: usize, j: usize, salt: u64) -> f64 {
    let seed = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ ((j as u64) << 56)
        ^ salt.wrapping_mul(0xD6E8_FEB8_6659_FD93);
    (mix(mix(seed)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A value in `normal`, or for a share `P_HIGH` of the instances in `high`.
pub fn level(i: usize, j: usize, salt: u64, normal: (f64, f64), high: (f64, f64)) -> f64 {
    let u = unit(i, j, salt);
    if u < P_HIGH {
        high.0 + (high.1 - high.0) * u / P_HIGH
    } else {
        normal.0 + (normal.1 - normal.0) * (u - P_HIGH) / (1.0 - P_HIGH)
    }
}

/// A counter that started somewhere below 1000 and grows by `per_second`.
pub fn counter(i: usize, j: usize, salt: u64, per_second: f64, t: f64) -> f64 {
    (1000.0 * unit(i, j, salt ^ 0xC0FF_EE00)).floor() + per_second * t
}

/// `_defaults.yaml` and one file per tenant: about a quarter of the keys with a custom value,
/// 4 % disabled, a tenth of the critical tiers raised, per-queue rows on 30 % of the tenants,
/// metadata on a third and maintenance on 2 %.
pub fn write_conf(dir: &Path, defaults: &str, keys: &[Key], tenants: &[String]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join("_defaults.yaml"), defaults)?;
    for (index, tenant) in tenants.iter().enumerate() {
        let mut seed = 0x00D1_7A1E ^ (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // SplitMix64: deterministic, well mixed, no dependency.
        let mut below = |n: u64| {
            seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
            mix(seed) % n
        };
        let mut body = String::new();
        for key in keys {
            let (name, default) = (key.name, key.decl.default);
            if key.decl.dimension.as_deref() == Some("queue") && below(10) < 3 {
                let rows = if below(3) == 0 { 2 } else { 1 };
                for (queue, factor) in QUEUES.iter().zip([0.4, 4.0]).take(rows) {
                    let value = number(default * factor);
                    let _ = writeln!(body, "    \"{name}{{queue='{queue}'}}\": {value}");
                }
            }
            let roll = below(100);
            let factor = [0.5, 0.75, 1.5, 2.0][below(4) as usize];
            let mut warning = default;
            if roll < 4 {
                let _ = writeln!(body, "    {name}: disable");
                continue;
            } else if roll < 30 && default > 0.0 {
                warning = default * factor;
                let _ = writeln!(body, "    {name}: {}", number(warning));
            }
            if let Some(critical) = key.decl.default_critical
                && default > 0.0
                && below(10) == 0
            {
                let raised = number(critical.max(warning) * 1.25);
                let _ = writeln!(body, "    {name}_critical: {raised}");
            }
        }
        if below(3) == 0 {
            let tier = ["gold", "silver", "bronze"][below(3) as usize];
            let (owner, runbook) = (below(20), format!("https://runbooks.example.com/{tenant}"));
            let _ = writeln!(
                body,
                "    _metadata: {{owner: team-{owner}, runbook_url: \"{runbook}\", tier: {tier}}}"
            );
        }
        if index % 50 == 6 {
            body.push_str("    _state_maintenance: enable\n");
        }
        let text = match body.is_empty() {
            true => format!("tenants:\n  {tenant}: {{}}\n"),
            false => format!("tenants:\n  {tenant}:\n{body}"),
        };
        fs::write(dir.join(format!("{tenant}.yaml")), text)?;
    }
    Ok(())
}

/// A threshold with at most two decimals.
fn number(value: f64) -> String {
    let rounded = (value * 100.0).round() / 100.0;
    format!("{rounded}")
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The synthetic series served on 127.0.0.1 by the testkit's [`StaticExporter`], rendered
/// again every `interval` (Prometheus's scrape interval) so that the counters grow, until it
/// is dropped.
pub struct SyntheticExporter {
    pub exporter: Arc<StaticExporter>,
    /// Dropping it stops the rendering thread.
    _stop: mpsc::Sender<()>,
}

impl SyntheticExporter {
    pub fn start(synthetic: Synthetic, interval: Duration) -> Result<Self> {
        let exporter = Arc::new(StaticExporter::start(synthetic.render())?);
        let (stop, stopped) = mpsc::channel::<()>();
        let served = exporter.clone();
        std::thread::spawn(move || {
            while stopped.recv_timeout(interval) == Err(mpsc::RecvTimeoutError::Timeout) {
                served.set(synthetic.render());
            }
        });
        Ok(Self {
            exporter,
            _stop: stop,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_values_are_stable_and_some_are_high() {
        let tenants: Vec<String> = (1..=200).map(|i| format!("tenant-{i:04}")).collect();
        let body = Synthetic::new(tenants, vec!["mariadb".into(), "redis".into()]).render();
        let values = |name: &str| super::super::measure::values(&body, name);
        let connected = values("mysql_global_status_threads_connected");
        assert!(connected.iter().any(|&v| v > 95.0));
        assert!(connected.iter().filter(|&&v| v > 80.0).count() < connected.len() / 5);
        assert!(values("mysql_up").contains(&0.0));
        let key_size = r#"redis_key_size{tenant="tenant-0001",instance="tenant-0001-redis-0:9100",db="db0",key="email"}"#;
        assert!(body.contains(key_size));
    }
}
