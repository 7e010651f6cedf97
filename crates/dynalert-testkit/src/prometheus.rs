//! A real Prometheus server on 127.0.0.1 with its config and TSDB in a temporary directory.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use tempfile::TempDir;

use crate::child::{ChildGuard, spawn_ready};
use crate::http::Http;

const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// One scrape job in the generated `prometheus.yml`: `127.0.0.1:<port>`.
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    pub job: String,
    pub port: u16,
    /// Defaults to Prometheus's `/metrics`.
    pub metrics_path: Option<String>,
    /// Keep the target's own `job`/`instance` labels (needed for a Pushgateway).
    pub honor_labels: bool,
    /// Labels set on every series of the job by `relabel_configs` (`target_label` +
    /// `replacement`), as a real deployment injects `tenant` into its exporters' series.
    pub relabel_labels: Vec<(String, String)>,
}

impl ScrapeTarget {
    pub fn new(job: impl Into<String>, port: u16) -> Self {
        Self {
            job: job.into(),
            port,
            metrics_path: None,
            honor_labels: false,
            relabel_labels: Vec::new(),
        }
    }

    pub fn with_metrics_path(mut self, path: impl Into<String>) -> Self {
        self.metrics_path = Some(path.into());
        self
    }

    pub fn with_honor_labels(mut self) -> Self {
        self.honor_labels = true;
        self
    }

    /// Sets label `name` to `value` on every series of the job through a `relabel_configs`
    /// rule (e.g. `tenant`), rather than through the target's static labels.
    pub fn with_relabel_label(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.relabel_labels.push((name.into(), value.into()));
        self
    }
}

/// One element of an instant-query result: its labels and value (a scalar has no labels).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Options for [`Prometheus`] beyond [`Prometheus::start`]'s.
#[derive(Debug, Clone, Default)]
pub struct PrometheusBuilder {
    targets: Vec<ScrapeTarget>,
    rule_files: Vec<PathBuf>,
    extra_config_yaml: Option<String>,
    extra_args: Vec<String>,
    /// Scrape and evaluation interval; 1 s when not set.
    interval: Option<Duration>,
}

impl PrometheusBuilder {
    pub fn scrape(mut self, target: ScrapeTarget) -> Self {
        self.targets.push(target);
        self
    }

    /// A rule file (or glob) to load in addition to `<rules_dir>/*.yml` and `*.yaml`.
    pub fn rule_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.rule_files.push(path.into());
        self
    }

    /// YAML appended to the generated config at top level (for example an `alerting:` block).
    /// It must not repeat `global`, `rule_files` or `scrape_configs`, which are generated.
    pub fn extra_config(mut self, yaml: impl Into<String>) -> Self {
        self.extra_config_yaml = Some(yaml.into());
        self
    }

    /// The scrape and evaluation interval (and scrape timeout), in whole seconds; 1 s by
    /// default, which suits tests; a benchmark runs at a deployment's pace instead.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = Some(interval);
        self
    }

    /// An extra command-line flag, e.g. `--web.enable-remote-write-receiver`.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// Starts the server and waits for `/-/ready`. `Ok(None)` when Prometheus is not installed
    /// and components are not required (see [`crate::require_binary`]).
    pub fn start(self) -> Result<Option<Prometheus>> {
        let Some(binary) = crate::require_binary("prometheus") else {
            return Ok(None);
        };
        let dir = tempfile::Builder::new()
            .prefix("dynalert-prometheus-")
            .tempdir()
            .context("creating a temporary directory for Prometheus")?;
        let rules_dir = dir.path().join("rules");
        std::fs::create_dir(&rules_dir)
            .with_context(|| format!("creating {}", rules_dir.display()))?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, self.render_config(&rules_dir))
            .with_context(|| format!("writing {}", config_path.display()))?;

        let http = Http::new()?;
        let data_dir = dir.path().join("data");
        let (child, port) = spawn_ready(
            "prometheus",
            &http,
            &dir.path().join("prometheus.log"),
            "/-/ready",
            READY_TIMEOUT,
            |port| {
                let mut command = Command::new(&binary);
                command
                    .arg(format!("--config.file={}", config_path.display()))
                    .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--web.enable-lifecycle")
                    .args(&self.extra_args);
                command
            },
        )?;
        Ok(Some(Prometheus {
            child,
            http,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        }))
    }

    fn render_config(&self, rules_dir: &Path) -> String {
        let seconds = self.interval.map_or(1, |i| i.as_secs().max(1));
        let mut yaml = format!(
            "global:\n  scrape_interval: {seconds}s\n  scrape_timeout: {seconds}s\n  \
             evaluation_interval: {seconds}s\n"
        );
        yaml.push_str("rule_files:\n");
        let default_globs = ["*.yml", "*.yaml"].map(|glob| rules_dir.join(glob));
        for file in default_globs.iter().chain(&self.rule_files) {
            let _ = writeln!(yaml, "  - {}", quote(&file.to_string_lossy()));
        }
        if self.targets.is_empty() {
            yaml.push_str("scrape_configs: []\n");
        } else {
            yaml.push_str("scrape_configs:\n");
        }
        // Targets of the same job (e.g. two replicas) share one scrape config, as in a real
        // deployment; the first target's options apply to the job.
        let mut jobs: Vec<(&ScrapeTarget, Vec<u16>)> = Vec::new();
        for target in &self.targets {
            match jobs.iter_mut().find(|(first, _)| first.job == target.job) {
                Some((_, ports)) => ports.push(target.port),
                None => jobs.push((target, vec![target.port])),
            }
        }
        for (target, ports) in jobs {
            let _ = writeln!(yaml, "  - job_name: {}", quote(&target.job));
            if target.honor_labels {
                yaml.push_str("    honor_labels: true\n");
            }
            if let Some(path) = &target.metrics_path {
                let _ = writeln!(yaml, "    metrics_path: {}", quote(path));
            }
            let addresses: Vec<String> =
                ports.iter().map(|p| format!("\"127.0.0.1:{p}\"")).collect();
            let _ = writeln!(
                yaml,
                "    static_configs:\n      - targets: [{}]",
                addresses.join(", ")
            );
            if !target.relabel_labels.is_empty() {
                yaml.push_str("    relabel_configs:\n");
                for (name, value) in &target.relabel_labels {
                    let _ = writeln!(
                        yaml,
                        "      - target_label: {}\n        replacement: {}",
                        quote(name),
                        quote(value)
                    );
                }
            }
        }
        if let Some(extra) = &self.extra_config_yaml {
            yaml.push_str(extra);
            if !extra.ends_with('\n') {
                yaml.push('\n');
            }
        }
        yaml
    }
}

/// A JSON string is a valid YAML double-quoted scalar, so this quotes any text safely.
fn quote(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serialises")
}

/// A running Prometheus (`/usr/bin/prometheus`), killed and its directory removed on drop.
///
/// Scrape and evaluation intervals are 1 s. Rule files written to [`Prometheus::rules_dir`]
/// are loaded at start and on [`Prometheus::reload`].
pub struct Prometheus {
    // Field order matters: the process must be killed before its directory is removed.
    child: ChildGuard,
    http: Http,
    url: String,
    port: u16,
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets`, with `extra_config_yaml` appended at top level.
    /// `Ok(None)` when Prometheus is not installed and components are not required.
    pub fn start(
        targets: &[ScrapeTarget],
        extra_config_yaml: Option<&str>,
    ) -> Result<Option<Prometheus>> {
        let mut builder = Self::builder();
        builder.targets = targets.to_vec();
        builder.extra_config_yaml = extra_config_yaml.map(str::to_owned);
        builder.start()
    }

    pub fn builder() -> PrometheusBuilder {
        PrometheusBuilder::default()
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's process id (for reading its memory and CPU time from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Rule files (`*.yml`, `*.yaml`) put here are loaded on start and [`Self::reload`].
    pub fn rules_dir(&self) -> PathBuf {
        self.dir.path().join("rules")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("prometheus.yml")
    }

    /// Where Prometheus's stdout and stderr go.
    pub fn log_path(&self) -> &Path {
        self.child.log_path()
    }

    /// Re-reads the config and rule files (`POST /-/reload`); fails with Prometheus's message
    /// if they do not load.
    pub fn reload(&self) -> Result<()> {
        let response = self.http.post(
            &format!("{}/-/reload", self.url),
            "text/plain",
            String::new(),
        )?;
        if !response.is_success() {
            bail!(
                "Prometheus reload failed (HTTP {}): {}",
                response.status,
                response.body.trim()
            );
        }
        Ok(())
    }

    /// `GET <url><path>` on the HTTP API (e.g. `/api/v1/rules`), returning the `data` member
    /// of a `"status": "success"` answer, and the API's error otherwise.
    pub fn api_get(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let url = format!("{}{path}", self.url);
        let response = self.http.get(&url, params)?;
        let mut body = response.json()?;
        if body["status"] != "success" {
            bail!(
                "Prometheus API {path} {params:?} failed (HTTP {}): {}: {}",
                response.status,
                body["errorType"].as_str().unwrap_or("?"),
                body["error"].as_str().unwrap_or(&response.body)
            );
        }
        Ok(body["data"].take())
    }

    /// Instant query: the `data` member of the answer (`{"resultType": …, "result": …}`).
    pub fn query(&self, promql: &str) -> Result<Value> {
        self.api_get("/api/v1/query", &[("query", promql)])
    }

    /// Instant query reduced to samples: one per vector element, or one label-less sample for
    /// a scalar.
    pub fn query_samples(&self, promql: &str) -> Result<Vec<Sample>> {
        let data = self.query(promql)?;
        samples_from(&data).with_context(|| format!("query `{promql}` returned {data}"))
    }

    /// Runs `promql` every 200 ms until `predicate` accepts its samples, and returns them;
    /// fails after `timeout` with the last result (or query error) in the message.
    pub fn wait_for(
        &self,
        promql: &str,
        predicate: impl Fn(&[Sample]) -> bool,
        timeout: Duration,
    ) -> Result<Vec<Sample>> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.query_samples(promql) {
                Ok(samples) if predicate(&samples) => return Ok(samples),
                Ok(samples) => format!("{samples:?}"),
                Err(error) => format!("error: {error:#}"),
            };
            if Instant::now() >= deadline {
                bail!("timed out after {timeout:?} waiting for `{promql}`; last result: {last}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn samples_from(data: &Value) -> Result<Vec<Sample>> {
    match data["resultType"].as_str() {
        Some("vector") => data["result"]
            .as_array()
            .context("vector result is not an array")?
            .iter()
            .map(|element| {
                let labels = element["metric"]
                    .as_object()
                    .context("vector element has no metric object")?
                    .iter()
                    .map(|(name, value)| (name.clone(), value.as_str().unwrap_or("").to_owned()))
                    .collect();
                Ok(Sample {
                    labels,
                    value: parse_value(&element["value"])?,
                })
            })
            .collect(),
        Some("scalar") => Ok(vec![Sample {
            labels: BTreeMap::new(),
            value: parse_value(&data["result"])?,
        }]),
        other => bail!("expected a vector or scalar result, got {other:?}"),
    }
}

/// Prometheus encodes a value as `[<unix time>, "<number>"]`.
fn parse_value(pair: &Value) -> Result<f64> {
    let text = pair[1]
        .as_str()
        .context("sample value is not [time, \"number\"]")?;
    text.parse()
        .with_context(|| format!("sample value {text:?} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_lists_targets_on_loopback_and_quotes_names() {
        let builder = Prometheus::builder()
            .scrape(ScrapeTarget::new("dyn\"alert", 9100).with_metrics_path("/m"))
            .scrape(ScrapeTarget::new("pgw", 9200).with_honor_labels())
            .scrape(ScrapeTarget::new("db", 9300).with_relabel_label("tenant", "db-a"))
            .extra_config("alerting:\n  alertmanagers: []");
        let yaml = builder.render_config(Path::new("/tmp/x/rules"));
        assert!(yaml.contains("scrape_interval: 1s"));
        assert!(yaml.contains("  - \"/tmp/x/rules/*.yml\"\n"));
        assert!(yaml.contains("  - job_name: \"dyn\\\"alert\"\n    metrics_path: \"/m\"\n"));
        assert!(yaml.contains("targets: [\"127.0.0.1:9100\"]"));
        assert!(yaml.contains("  - job_name: \"pgw\"\n    honor_labels: true\n"));
        assert!(yaml.contains(
            "    relabel_configs:\n      - target_label: \"tenant\"\n        replacement: \"db-a\"\n"
        ));
        assert!(yaml.ends_with("alerting:\n  alertmanagers: []\n"));
    }

    #[test]
    fn interval_sets_scrape_and_evaluation_pace() {
        let yaml = Prometheus::builder()
            .interval(Duration::from_secs(5))
            .render_config(Path::new("/r"));
        assert!(
            yaml.contains("scrape_interval: 5s\n  scrape_timeout: 5s\n  evaluation_interval: 5s\n")
        );
    }

    #[test]
    fn empty_target_list_is_valid_yaml() {
        let yaml = Prometheus::builder().render_config(Path::new("/r"));
        assert!(yaml.contains("scrape_configs: []\n"));
    }

    #[test]
    fn samples_parse_vectors_scalars_and_special_values() {
        let vector = serde_json::json!({
            "resultType": "vector",
            "result": [{"metric": {"job": "a"}, "value": [1.5, "+Inf"]}]
        });
        let samples = samples_from(&vector).unwrap();
        assert_eq!(samples[0].label("job"), Some("a"));
        assert_eq!(samples[0].value, f64::INFINITY);

        let scalar = serde_json::json!({"resultType": "scalar", "result": [1.5, "2"]});
        assert_eq!(samples_from(&scalar).unwrap()[0].value, 2.0);

        let matrix = serde_json::json!({"resultType": "matrix", "result": []});
        assert!(samples_from(&matrix).is_err());
    }
}
