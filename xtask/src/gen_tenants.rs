//! `cargo xtask gen-tenants N --out DIR`: a realistic synthetic conf.d tree for load tests.
//!
//! `DIR/_defaults.yaml` holds `defaults:` for K keys (`<component>_<metric>`, plus a
//! `<key>_critical` tier for every fourth key) and `DIR/tenant-00001.yaml` … each define one
//! tenant that overrides all K keys: mostly numbers, some `disable`, some `"N:critical"`, a few
//! critical tiers, and `_metadata` on about a third. The same N, K and seed give the same bytes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct GenTenantsArgs {
    /// Number of tenants (one file each).
    n: usize,
    /// Output directory (created; earlier generated files in it are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Number of threshold keys every tenant overrides.
    #[arg(long, default_value_t = 30)]
    keys: usize,
    /// Seed for the values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

/// Components have no `_`, so a key splits back into component and metric at its first `_`.
const COMPONENTS: &[&str] = &[
    "mysql",
    "redis",
    "postgres",
    "kafka",
    "mongodb",
    "nginx",
    "rabbitmq",
    "elasticsearch",
    "haproxy",
    "node",
    "container",
    "etcd",
    "memcached",
    "cassandra",
    "clickhouse",
    "jvm",
];

/// How a metric's values look.
#[derive(Clone, Copy, PartialEq)]
enum Unit {
    /// Whole numbers without an upper bound (connections, seconds, …).
    Count,
    /// Whole percentages; a critical tier stays at or below 99.
    Percent,
    /// Percentages with one decimal.
    PercentTenths,
}

/// A metric suffix with its default threshold and the range tenants pick from.
struct Metric {
    name: &'static str,
    default: f64,
    low: f64,
    high: f64,
    unit: Unit,
}

const fn metric(name: &'static str, default: f64, low: f64, high: f64, unit: Unit) -> Metric {
    Metric {
        name,
        default,
        low,
        high,
        unit,
    }
}

const METRICS: &[Metric] = &[
    metric("connections", 80.0, 20.0, 500.0, Unit::Count),
    metric("memory_usage", 85.0, 60.0, 95.0, Unit::Percent),
    metric("cpu_usage", 80.0, 50.0, 95.0, Unit::Percent),
    metric("disk_usage", 85.0, 70.0, 95.0, Unit::Percent),
    metric("replication_lag_seconds", 30.0, 5.0, 600.0, Unit::Count),
    metric("slow_queries", 10.0, 1.0, 100.0, Unit::Count),
    metric("error_rate", 5.0, 0.5, 20.0, Unit::PercentTenths),
    metric("latency_p99_ms", 500.0, 50.0, 3000.0, Unit::Count),
    metric("queue_length", 1000.0, 100.0, 50000.0, Unit::Count),
    metric("threads_running", 40.0, 10.0, 200.0, Unit::Count),
    metric("open_files", 10000.0, 1000.0, 65000.0, Unit::Count),
    metric("restarts", 3.0, 1.0, 10.0, Unit::Count),
];

const OWNERS: &[&str] = &[
    "team-db",
    "team-web",
    "team-infra",
    "team-payments",
    "team-search",
];
const TIERS: &[&str] = &["gold", "silver", "bronze"];

/// One threshold key of the catalogue.
struct Key {
    name: String,
    metric: &'static Metric,
    /// The default critical tier, if this key has one.
    critical_default: Option<f64>,
}

pub fn run(args: &GenTenantsArgs) -> Result<()> {
    if args.keys == 0 {
        bail!("--keys must be at least 1");
    }
    let started = Instant::now();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    remove_generated_files(&args.out)?;

    let keys = key_catalogue(args.keys);
    write(
        &args.out.join("_defaults.yaml"),
        &render_defaults(&keys, args.seed),
    )?;
    let width = args.n.to_string().len().max(5);
    for index in 1..=args.n {
        let name = format!("tenant-{index:0width$}");
        let text = render_tenant(&name, &keys, args.seed, index as u64);
        write(&args.out.join(format!("{name}.yaml")), &text)?;
    }
    println!(
        "wrote _defaults.yaml ({} keys) and {} tenant files to {} in {:.0} ms",
        keys.len(),
        args.n,
        args.out.display(),
        started.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Removes the files an earlier run wrote, so a smaller N does not leave stale tenants.
fn remove_generated_files(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let generated =
            name == "_defaults.yaml" || (name.starts_with("tenant-") && name.ends_with(".yaml"));
        if generated && entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// The first `count` keys. Consecutive keys change both component and metric
/// (`mysql_connections`, `redis_memory_usage`, …); past every pair, components get a number.
fn key_catalogue(count: usize) -> Vec<Key> {
    let (c, m) = (COMPONENTS.len(), METRICS.len());
    (0..count)
        .map(|i| {
            let (generation, i_in_gen) = (i / (c * m), i % (c * m));
            let (round, component_index) = (i_in_gen / c, i_in_gen % c);
            let metric = &METRICS[(round + component_index) % m];
            let component = match generation {
                0 => COMPONENTS[component_index].to_owned(),
                g => format!("{}{}", COMPONENTS[component_index], g + 1),
            };
            let critical_default = (i % 4 == 0).then(|| critical_above(metric, metric.default));
            Key {
                name: format!("{component}_{}", metric.name),
                metric,
                critical_default,
            }
        })
        .collect()
}

/// A critical tier strictly above `warning`, kept below 100 for percentages.
fn critical_above(metric: &Metric, warning: f64) -> f64 {
    let step = if metric.unit == Unit::PercentTenths {
        0.1
    } else {
        1.0
    };
    let raised = round(metric, warning * 1.25).max(warning + step);
    match metric.unit {
        Unit::Count => raised,
        Unit::Percent | Unit::PercentTenths => raised.min(99.0),
    }
}

fn round(metric: &Metric, value: f64) -> f64 {
    match metric.unit {
        Unit::Count | Unit::Percent => value.round(),
        Unit::PercentTenths => (value * 10.0).round() / 10.0,
    }
}

fn render_defaults(keys: &[Key], seed: u64) -> String {
    let mut yaml = format!(
        "# Generated by `cargo xtask gen-tenants` (seed {seed}, {} keys). Synthetic data.\ndefaults:\n",
        keys.len()
    );
    for key in keys {
        let _ = writeln!(yaml, "  {}: {}", key.name, key.metric.default);
        if let Some(critical) = key.critical_default {
            let _ = writeln!(yaml, "  {}_critical: {critical}", key.name);
        }
    }
    yaml
}

fn render_tenant(name: &str, keys: &[Key], seed: u64, index: u64) -> String {
    let mut rng = SplitMix64::new(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut yaml = format!("tenants:\n  {name}:\n");
    for key in keys {
        let metric = key.metric;
        let value = round(
            metric,
            metric.low + rng.next_f64() * (metric.high - metric.low),
        );
        let roll = rng.below(100);
        let _ = match roll {
            0..=4 => writeln!(yaml, "    {}: disable", key.name),
            // "N:critical" only where no `_critical` tier exists, so the two never collide.
            5..=14 if key.critical_default.is_none() => {
                writeln!(yaml, "    {}: \"{value}:critical\"", key.name)
            }
            _ => writeln!(yaml, "    {}: {value}", key.name),
        };
        if key.critical_default.is_some() && roll >= 5 && rng.below(5) == 0 {
            let _ = writeln!(
                yaml,
                "    {}_critical: {}",
                key.name,
                critical_above(metric, value)
            );
        }
    }
    if rng.below(3) == 0 {
        let owner = OWNERS[rng.below(OWNERS.len() as u64) as usize];
        let tier = TIERS[rng.below(TIERS.len() as u64) as usize];
        let _ = writeln!(yaml, "    _metadata: {{owner: {owner}, tier: {tier}}}");
    }
    yaml
}

/// SplitMix64: a tiny, well-mixed deterministic generator (no `rand` dependency needed).
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform enough in [0, n) for synthetic data (modulo bias is negligible here).
    fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_key(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn catalogue_has_unique_well_formed_keys_beyond_one_generation() {
        let count = COMPONENTS.len() * METRICS.len() * 2 + 7;
        let keys = key_catalogue(count);
        let mut names: Vec<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        assert!(names.iter().all(|n| is_key(n)), "{names:?}");
        assert_eq!(names[..2], ["mysql_connections", "redis_memory_usage"]);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count);
    }

    #[test]
    fn tenants_override_every_key_deterministically() {
        let keys = key_catalogue(30);
        let a = render_tenant("tenant-00001", &keys, 7, 1);
        assert_eq!(a, render_tenant("tenant-00001", &keys, 7, 1));
        assert_ne!(a, render_tenant("tenant-00001", &keys, 8, 1));
        for key in &keys {
            assert!(
                a.contains(&format!("\n    {}: ", key.name)),
                "{} missing",
                key.name
            );
        }
        assert!(a.starts_with("tenants:\n  tenant-00001:\n"));
    }

    #[test]
    fn a_thousand_tenants_use_every_value_form() {
        let keys = key_catalogue(30);
        let all: String = (1..=1000)
            .map(|i| render_tenant("t", &keys, 42, i))
            .collect();
        for form in [
            ": disable\n",
            ":critical\"\n",
            "_critical: ",
            "_metadata: {owner: ",
        ] {
            assert!(all.contains(form), "no {form:?}");
        }
        for tenant in all.split("tenants:") {
            let values: std::collections::HashMap<&str, f64> = tenant
                .lines()
                .filter_map(|line| line.trim().split_once(": "))
                .filter_map(|(key, value)| Some((key, value.parse().ok()?)))
                .collect();
            for (key, critical) in &values {
                if let Some(base) = key.strip_suffix("_critical").and_then(|b| values.get(b)) {
                    assert!(critical > base, "{key}: {critical} <= {base}");
                }
            }
        }
        let defaults = render_defaults(&keys, 42);
        assert!(defaults.contains("  mysql_connections: 80\n  mysql_connections_critical: 100\n"));
    }
}
