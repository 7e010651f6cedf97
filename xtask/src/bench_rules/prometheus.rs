//! One Prometheus per variant: start, sample its own `/metrics`, query alerts and rules,
//! reload; the warm-up and the measurement windows.

use super::*;

pub(super) struct Instance {
    pub(super) variant: Variant,
    pub(super) port: u16,
    pub(super) guard: ChildGuard,
    /// From spawning the process to the first 200 of `/-/ready` (rule files loaded).
    pub(super) ready: Duration,
}

impl Instance {
    pub(super) fn start(
        args: &BenchRulesArgs,
        variant: Variant,
        rule_files: Option<&Path>,
        dir: &Path,
        [exporter, dynalert]: [u16; 2],
    ) -> Result<Self> {
        let dir = dir.join(format!("prometheus-{}", variant.name()));
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let interval = args.interval_secs;
        let rule_files = rule_files.map_or_else(
            || "rule_files: []\n".to_owned(),
            |glob| {
                format!(
                    "rule_files:\n  - {}\n",
                    yaml_string(&glob.to_string_lossy())
                )
            },
        );
        let config = format!(
            "global:\n  scrape_interval: {interval}s\n  scrape_timeout: {interval}s\n  \
             evaluation_interval: {interval}s\n{rule_files}scrape_configs:\n  \
             - job_name: exporters\n    honor_labels: true\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{exporter}\"]\n  \
             - job_name: dynalert\n    static_configs:\n      \
             - targets: [\"127.0.0.1:{dynalert}\"]\n"
        );
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config)?;
        let port = free_port()?;
        let mut command = Command::new(&args.prometheus);
        command
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-lifecycle");
        let (guard, ready) = start(command, port, "/-/ready", &dir.join("prometheus.log"))?;
        Ok(Self {
            variant,
            port,
            guard,
            ready,
        })
    }

    pub(super) fn sample(&self) -> Result<Sample> {
        let (response, _) = request(self.port, "GET", "/metrics", "", b"")?;
        let at = Instant::now();
        ensure!(
            response.status == 200,
            "{} /metrics answered {}",
            self.variant.name(),
            response.status
        );
        let body = String::from_utf8_lossy(&response.body);
        let sum = |name: &str| values(&body, name).iter().sum::<f64>();
        let last_evaluations = values(
            &body,
            "prometheus_rule_group_last_evaluation_timestamp_seconds",
        );
        Ok(Sample {
            at,
            eval: sum("prometheus_rule_group_last_duration_seconds"),
            cpu: sum("process_cpu_seconds_total"),
            heap: sum("go_memstats_heap_inuse_bytes"),
            heap_goal: sum("go_memstats_next_gc_bytes"),
            rss: rss_bytes(self.guard.child.id())?,
            head_series: sum("prometheus_tsdb_head_series"),
            failures: sum("prometheus_rule_evaluation_failures_total"),
            missed: sum("prometheus_rule_group_iterations_missed_total"),
            unevaluated: last_evaluations.iter().filter(|&&t| t <= 0.0).count(),
        })
    }

    /// Instant vector query answered with one number (0 for an empty result).
    pub(super) fn query_number(&self, query: &str) -> Result<f64> {
        let path = format!("/api/v1/query?query={}", url_encode(query));
        let (response, _) = request(self.port, "GET", &path, "", b"")?;
        ensure!(
            response.status == 200,
            "query {query:?} answered {}: {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let result = json.get("data").and_then(|d| d.get("result"));
        Ok(result
            .map(Json::array)
            .and_then(|r| r.first())
            .and_then(|sample| sample.get("value"))
            .map(Json::array)
            .and_then(|pair| pair.get(1))
            .and_then(Json::str)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0))
    }

    /// The pending and firing alerts, from the `ALERTS` series.
    pub(super) fn alert_set(&self) -> Result<BTreeSet<Alert>> {
        let path = format!("/api/v1/query?query={}", url_encode("ALERTS"));
        let (response, _) = request(self.port, "GET", &path, "", b"")?;
        ensure!(
            response.status == 200,
            "ALERTS query answered {}",
            response.status
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let result = json.get("data").and_then(|d| d.get("result"));
        Ok(result
            .map(Json::array)
            .unwrap_or(&[])
            .iter()
            .filter_map(|sample| sample.get("metric"))
            .map(|metric| {
                let label = |name: &str| {
                    metric
                        .get(name)
                        .and_then(Json::str)
                        .unwrap_or("")
                        .to_owned()
                };
                (
                    label("alertname"),
                    label("tenant"),
                    label("severity"),
                    label("queue"),
                )
            })
            .collect())
    }

    /// The rules as `/api/v1/rules` lists them, with their last evaluation times.
    pub(super) fn rules(&self) -> Result<Rules> {
        let (response, _) = request(self.port, "GET", "/api/v1/rules", "", b"")?;
        ensure!(
            response.status == 200,
            "/api/v1/rules answered {}",
            response.status
        );
        let json = parse_json(&String::from_utf8_lossy(&response.body))?;
        let groups = json
            .get("data")
            .and_then(|d| d.get("groups"))
            .map(Json::array)
            .unwrap_or(&[]);
        let time = |item: &Json| item.get("evaluationTime").and_then(Json::number);
        let mut rules = Rules {
            groups: groups.len(),
            ..Rules::default()
        };
        for group in groups {
            let name = group.get("name").and_then(Json::str).unwrap_or("?");
            rules
                .group_times
                .push((name.to_owned(), time(group).unwrap_or(0.0)));
            if let Some(interval) = group.get("interval").and_then(Json::number) {
                *rules.intervals.entry(interval.to_string()).or_default() += 1;
            }
            for rule in group.get("rules").map(Json::array).unwrap_or(&[]) {
                match rule.get("type").and_then(Json::str) {
                    Some("alerting") => rules.alerting += 1,
                    Some("recording") => rules.recording += 1,
                    _ => {}
                }
                let rule_name = rule.get("name").and_then(Json::str).unwrap_or("?");
                rules
                    .rule_times
                    .push((rule_name.to_owned(), time(rule).unwrap_or(0.0)));
            }
        }
        let by_time = |a: &(String, f64), b: &(String, f64)| b.1.total_cmp(&a.1);
        rules.group_times.sort_by(by_time);
        rules.rule_times.sort_by(by_time);
        rules.rule_times.truncate(5);
        Ok(rules)
    }

    /// Fetches a CPU profile over the next `seconds` into `path`, on a thread.
    pub(super) fn profile(&self, seconds: u64, path: PathBuf) -> JoinHandle<Result<()>> {
        let port = self.port;
        thread::spawn(move || {
            let url = format!("/debug/pprof/profile?seconds={seconds}");
            let (response, _) = request(port, "GET", &url, "", b"")?;
            ensure!(response.status == 200, "{url} answered {}", response.status);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(&path, &response.body).with_context(|| format!("writing {path:?}"))
        })
    }

    pub(super) fn reload(&self) -> Result<Duration> {
        let (response, took) = request(self.port, "POST", "/-/reload", "", b"")?;
        ensure!(
            response.status == 200,
            "{} reload answered {}: {}",
            self.variant.name(),
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        Ok(took)
    }
}

/// Rule counts and the last evaluation times (seconds) of the groups and of the 5 costliest
/// rules, from `/api/v1/rules`.
#[derive(Clone, Default)]
pub(super) struct Rules {
    pub(super) groups: usize,
    pub(super) alerting: usize,
    pub(super) recording: usize,
    pub(super) group_times: Vec<(String, f64)>,
    /// How many groups evaluate at each interval (seconds, as Prometheus reports it).
    pub(super) intervals: std::collections::BTreeMap<String, usize>,
    pub(super) rule_times: Vec<(String, f64)>,
}

/// One reading of a Prometheus's `/metrics`.
pub(super) struct Sample {
    pub(super) at: Instant,
    /// Σ `prometheus_rule_group_last_duration_seconds`.
    pub(super) eval: f64,
    pub(super) cpu: f64,
    pub(super) heap: f64,
    pub(super) heap_goal: f64,
    pub(super) rss: f64,
    pub(super) head_series: f64,
    pub(super) failures: f64,
    pub(super) missed: f64,
    /// Rule groups not evaluated yet.
    pub(super) unevaluated: usize,
}

/// What one Prometheus measured in a round.
#[derive(Clone)]
pub(super) struct Measured {
    pub(super) variant: Variant,
    pub(super) ready: Duration,
    /// `rules=` of Prometheus's "Completed loading of configuration file" log lines: at start,
    /// then after each reload.
    pub(super) load_at_start: Option<Duration>,
    pub(super) load_at_reload: Vec<Duration>,
    pub(super) reload_requests: Vec<Duration>,
    pub(super) rules: Rules,
    /// Samples of Σ `prometheus_rule_group_last_duration_seconds`, seconds.
    pub(super) eval: Vec<f64>,
    /// Cores: Δ`process_cpu_seconds_total` / Δt over the window.
    pub(super) cpu: f64,
    /// Cores the machine spent on other processes during the window (see [`CpuWatch`]), and
    /// the slices thrown away or kept although the machine was busy.
    pub(super) others: f64,
    pub(super) discarded: usize,
    pub(super) noisy: usize,
    pub(super) heap: Vec<f64>,
    /// `go_memstats_next_gc_bytes`: the GC's heap goal, twice the live heap after the last
    /// collection (GOGC=100); steadier than the heap in use, which follows the GC cycle.
    pub(super) heap_goal: Vec<f64>,
    pub(super) rss: Vec<f64>,
    pub(super) head_series: f64,
    pub(super) failures: f64,
    pub(super) missed: f64,
    /// `count(ALERTS)`: pending or firing, and of those, of tenants in maintenance.
    pub(super) alerts: f64,
    pub(super) alerts_in_maintenance: f64,
    /// `alertname tenant severity queue` of every pending or firing alert.
    pub(super) alert_set: BTreeSet<Alert>,
}

/// An alert's identity across variants: alert name, tenant, severity, queue.
pub(super) type Alert = (String, String, String, String);

/// Waits until the instances have run for `history` (and at least three intervals) and every
/// rule group has been evaluated.
pub(super) fn warm_up(
    args: &BenchRulesArgs,
    instances: &[Instance],
    history: Duration,
) -> Result<()> {
    let interval = Duration::from_secs(args.interval_secs);
    let started = Instant::now();
    let minimum = history.max(3 * interval);
    let names: Vec<&str> = instances.iter().map(|i| i.variant.name()).collect();
    println!(
        "history: {} run(s) for {:.0} s",
        names.join(", "),
        minimum.as_secs_f64()
    );
    thread::sleep(minimum);
    loop {
        let mut pending = 0;
        for instance in instances {
            pending += instance.sample()?.unevaluated;
        }
        if pending == 0 {
            break;
        }
        if started.elapsed() > minimum + 30 * interval {
            println!("warning: {pending} rule groups still not evaluated after the warm-up");
            break;
        }
        thread::sleep(interval);
    }
    Ok(())
}

/// What one measurement collected from one Prometheus, over one or several slices. CPU,
/// time and missed iterations are summed over the slices: the time between two slices (the
/// instance paused, then catching up) is not part of the window.
#[derive(Default)]
pub(super) struct Window {
    pub(super) samples: Vec<Sample>,
    pub(super) cpu_seconds: f64,
    pub(super) seconds: f64,
    pub(super) missed: f64,
    /// CPU seconds the machine spent on other processes (neither a Prometheus of the round,
    /// nor dynalert serve, nor this process with its synthetic exporter) during the slices.
    pub(super) others: f64,
    /// Slices thrown away because other processes were busy, and slices kept although they
    /// were (after `--max-wait-secs`).
    pub(super) discarded: usize,
    pub(super) noisy: usize,
}

impl Window {
    pub(super) fn add(&mut self, slice: Window) {
        self.samples.extend(slice.samples);
        self.cpu_seconds += slice.cpu_seconds;
        self.seconds += slice.seconds;
        self.missed += slice.missed;
        self.others += slice.others;
    }
}

/// Samples `instances` once per interval for `ticks` intervals, adding one slice to each
/// instance's window.
pub(super) fn slice(
    args: &BenchRulesArgs,
    instances: &[&Instance],
    ticks: u64,
    cpu: &CpuWatch,
    windows: &mut [Window],
) -> Result<()> {
    let interval = Duration::from_secs(args.interval_secs);
    let started = Instant::now();
    let others_before = cpu.others()?;
    let mut samples: Vec<Vec<Sample>> = instances.iter().map(|_| Vec::new()).collect();
    for tick in 0..=ticks {
        let due = started + interval * tick as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        for (instance, samples) in instances.iter().zip(&mut samples) {
            samples.push(instance.sample()?);
        }
    }
    let others = cpu.others()? - others_before;
    for (window, samples) in windows.iter_mut().zip(samples) {
        let (first, last) = (&samples[0], &samples[samples.len() - 1]);
        window.cpu_seconds += last.cpu - first.cpu;
        window.seconds += last.at.duration_since(first.at).as_secs_f64();
        window.missed += last.missed - first.missed;
        window.others += others;
        window.samples.extend(samples);
    }
    Ok(())
}

/// The figures of one instance's window, with its rules and alerts read now (the instance must
/// be running).
pub(super) fn measured(instance: &Instance, window: Window) -> Result<Measured> {
    let last = window.samples.last().context("a window without samples")?;
    let rules = instance.rules()?;
    let (alerts, alerts_in_maintenance, alert_set) = if instance.variant == Variant::Baseline {
        (0.0, 0.0, BTreeSet::new())
    } else {
        (
            instance.query_number("count(ALERTS)")?,
            instance.query_number(
                "count(ALERTS and on(tenant) max by(tenant) \
                 (user_state_filter{filter=\"maintenance\"}))",
            )?,
            instance.alert_set()?,
        )
    };
    let of = |f: fn(&Sample) -> f64| window.samples.iter().map(f).collect::<Vec<f64>>();
    Ok(Measured {
        variant: instance.variant.clone(),
        ready: instance.ready,
        load_at_start: None,
        load_at_reload: Vec::new(),
        reload_requests: Vec::new(),
        rules,
        eval: of(|s| s.eval),
        cpu: window.cpu_seconds / window.seconds,
        others: window.others / window.seconds,
        discarded: window.discarded,
        noisy: window.noisy,
        heap: of(|s| s.heap),
        heap_goal: of(|s| s.heap_goal),
        rss: of(|s| s.rss),
        head_series: last.head_series,
        failures: last.failures,
        missed: window.missed,
        alerts,
        alerts_in_maintenance,
        alert_set,
    })
}

/// `--concurrent`: every instance sampled at the same time for `--settle-secs`, in one piece;
/// then, if asked, a CPU profile of each over the same seconds, all at once.
pub(super) fn concurrent(
    args: &BenchRulesArgs,
    tag: &str,
    instances: &[Instance],
    cpu: &CpuWatch,
) -> Result<Vec<Measured>> {
    let ticks = (args.settle_secs / args.interval_secs).max(2);
    println!(
        "measuring every instance at once: a sample every {} s for {} s",
        args.interval_secs,
        ticks * args.interval_secs
    );
    let all: Vec<&Instance> = instances.iter().collect();
    let mut windows: Vec<Window> = instances.iter().map(|_| Window::default()).collect();
    slice(args, &all, ticks, cpu, &mut windows)?;
    if let Some(dir) = &args.pprof {
        let profiles: Vec<_> = instances
            .iter()
            .map(|instance| {
                let path = dir.join(format!("{tag}-{}.pprof", instance.variant.name()));
                instance.profile(ticks * args.interval_secs, path)
            })
            .collect();
        for profile in profiles {
            profile
                .join()
                .map_err(|_| anyhow::anyhow!("the profile thread panicked"))??;
        }
    }
    let mut results = Vec::new();
    for (instance, window) in instances.iter().zip(windows) {
        let mut result = measured(instance, window)?;
        reloads(args, instance, &mut result)?;
        results.push(result);
    }
    Ok(results)
}

/// One Prometheus running alone: its window in slices of `--slice-secs`, each slice during
/// which other processes used more than `--quiet-cores` measured again (for at most
/// `--max-wait-secs`); then, if asked, a CPU profile over one more slice; then its rules and
/// alerts are read and it is reloaded `--reloads` times.
pub(super) fn alone(
    args: &BenchRulesArgs,
    tag: &str,
    instance: &Instance,
    cpu: &CpuWatch,
) -> Result<Measured> {
    let interval = Duration::from_secs(args.interval_secs);
    let ticks = (args.slice_secs / args.interval_secs).max(1);
    let wanted = args.settle_secs as f64 - args.interval_secs as f64 / 2.0;
    let deadline = Instant::now() + Duration::from_secs(args.max_wait_secs);
    println!(
        "measuring {}: {} s in slices of {} s, a sample every {} s",
        instance.variant.name(),
        args.settle_secs,
        ticks * args.interval_secs,
        args.interval_secs
    );
    let mut window = Window::default();
    while window.seconds < wanted {
        let mut slice_window = Window::default();
        slice(
            args,
            &[instance],
            ticks,
            cpu,
            std::slice::from_mut(&mut slice_window),
        )?;
        let others = slice_window.others / slice_window.seconds;
        if others > args.quiet_cores {
            if Instant::now() < deadline {
                window.discarded += 1;
                println!(
                    "  slice thrown away: other processes used {:.0} % of a core",
                    others * 100.0
                );
                thread::sleep(interval);
                continue;
            }
            window.noisy += 1;
        }
        window.add(slice_window);
    }
    if let Some(dir) = &args.pprof {
        let path = dir.join(format!("{tag}-{}.pprof", instance.variant.name()));
        instance
            .profile(ticks * args.interval_secs, path)
            .join()
            .map_err(|_| anyhow::anyhow!("the profile thread panicked"))??;
    }
    let mut result = measured(instance, window)?;
    reloads(args, instance, &mut result)?;
    Ok(result)
}

/// CPU time of the machine outside the processes of the benchmark: all of `/proc/stat`'s busy
/// time minus that of the watched processes (the round's Prometheus instances, dynalert serve)
/// and of this process (the synthetic exporter's threads).
pub(super) struct CpuWatch {
    pids: Vec<u32>,
    ticks_per_second: f64,
}

impl CpuWatch {
    pub(super) fn new(pids: Vec<u32>) -> Self {
        let ticks_per_second = output(Command::new("getconf").arg("CLK_TCK"))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(100.0);
        Self {
            pids,
            ticks_per_second,
        }
    }

    /// Cumulative CPU seconds of the other processes (a counter, like `process_cpu_seconds_total`).
    pub(super) fn others(&self) -> Result<f64> {
        let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        let busy = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .map(machine_busy_ticks)
            .context("no cpu line in /proc/stat")?;
        let mut ours = process_ticks("self")?;
        for pid in &self.pids {
            // A process that has exited no longer counts.
            ours += process_ticks(&pid.to_string()).unwrap_or(0.0);
        }
        Ok((busy - ours) / self.ticks_per_second)
    }
}

/// Busy ticks of `/proc/stat`'s `cpu` line: user, nice, system, irq, softirq and steal (idle
/// and iowait left out; guest time is already part of user).
pub(super) fn machine_busy_ticks(fields: &str) -> f64 {
    let values: Vec<f64> = fields
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0.0))
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|&i| values.get(i))
        .sum()
}

/// utime + stime of `/proc/<pid>/stat`, in ticks.
fn process_ticks(pid: &str) -> Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may hold spaces: count fields after it.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the name: state (field 3 of the man page) … utime (14), stime (15).
    let field = |n: usize| -> f64 {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0.0)
    };
    Ok(field(14) + field(15))
}

/// `--reloads` times `POST /-/reload`, then the rule load times of the log: at start and after
/// each reload. After the window: reloads must not disturb it.
pub(super) fn reloads(
    args: &BenchRulesArgs,
    instance: &Instance,
    result: &mut Measured,
) -> Result<()> {
    for _ in 0..args.reloads {
        result.reload_requests.push(instance.reload()?);
        thread::sleep(Duration::from_millis(200));
    }
    let loads = config_loads(&instance.guard.log);
    result.load_at_start = loads.first().copied();
    result.load_at_reload = loads.into_iter().skip(1).collect();
    Ok(())
}

/// `rules=` of every "Completed loading of configuration file" line of a Prometheus log.
pub(super) fn config_loads(log: &Path) -> Vec<Duration> {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter(|line| line.contains("Completed loading of configuration file"))
        .filter_map(|line| {
            let field = line
                .split_whitespace()
                .find_map(|f| f.strip_prefix("rules="))?;
            go_duration(field)
        })
        .collect()
}

/// A Go `time.Duration` string (`1m2.5s`, `12.3ms`, `850µs`).
pub(super) fn go_duration(text: &str) -> Option<Duration> {
    let mut rest = text;
    let mut seconds = 0.0;
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        seconds += number
            * match &rest[..unit_end] {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 1e-3,
                "µs" | "μs" | "us" => 1e-6,
                "ns" => 1e-9,
                _ => return None,
            };
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(seconds))
}

/// The values of every sample of `name` in a text exposition.
pub(super) fn values(body: &str, name: &str) -> Vec<f64> {
    body.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let rest = if rest.starts_with('{') {
                &rest[rest.rfind('}')? + 1..]
            } else if rest.starts_with(' ') {
                rest
            } else {
                return None;
            };
            rest.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

pub(super) fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(super) fn rss_bytes(pid: u32) -> Result<f64> {
    Ok(crate::bench_support::memory(pid)?.rss_kib as f64 * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_busy_cpu_ticks_and_own_process_ticks() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        assert_eq!(machine_busy_ticks("10 1 5 1000 7 2 3 4 9 0"), 25.0);
        assert_eq!(machine_busy_ticks("10 1"), 11.0);
        assert!(process_ticks("self").unwrap() >= 0.0);
        let watch = CpuWatch::new(Vec::new());
        assert!(watch.ticks_per_second >= 1.0);
        assert!(watch.others().unwrap().is_finite());
    }

    #[test]
    fn parses_samples_and_go_durations() {
        let (name, labels, value) =
            parse_sample(r#"user_threshold{tenant="a",queue="x\"y",severity="warning"} +Inf"#)
                .unwrap();
        assert_eq!(name, "user_threshold");
        assert_eq!(labels[1], ("queue".to_owned(), "x\"y".to_owned()));
        assert_eq!(value, f64::INFINITY);
        assert_eq!(parse_sample("up 1").map(|s| s.2), Some(1.0));
        assert_eq!(
            go_duration("9.365337ms"),
            Some(Duration::from_nanos(9_365_337))
        );
        assert_eq!(go_duration("1m2.5s"), Some(Duration::from_millis(62_500)));
        assert_eq!(go_duration("812ns"), Some(Duration::from_nanos(812)));
        assert_eq!(go_duration("2.5µs"), Some(Duration::from_nanos(2_500)));
        assert_eq!(values("a_b{x=\"}\"} 2\na 1\na_b 3\n", "a_b"), [2.0, 3.0]);
    }
}
