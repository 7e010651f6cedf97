//! Self-monitoring: the `dynalert_*` and `process_*` series appended to `/metrics` after the
//! threshold families, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::api::auth::AuthFileStatus;
use crate::health::Stall;
use crate::state::Served;

/// What a scrape reports besides the served view, looked at when it is asked.
pub(crate) struct Live {
    pub stall: Option<Stall>,
    /// `None` without an auth file.
    pub auth: Option<AuthFileStatus>,
}

/// Renders the self-monitoring families for one scrape.
pub(crate) fn render(served: &Served, live: &Live) -> String {
    let mut out = String::with_capacity(2048);
    let status = &served.status;
    let model = &served.model;
    gauge(
        &mut out,
        "dynalert_build_info",
        "dynalert version; always 1.",
        &[(&[("version", env!("CARGO_PKG_VERSION"))], 1.0)],
    );
    gauge(
        &mut out,
        "dynalert_config_last_reload_successful",
        "1 if the last reload read the directory and found no errors.",
        &[(&[], bool_value(status.last_reload_ok))],
    );
    gauge(
        &mut out,
        "dynalert_config_last_reload_success_timestamp_seconds",
        "When the last successful reload happened (0: never).",
        &[(&[], status.last_success_at.map_or(0.0, seconds))],
    );
    family(
        &mut out,
        "dynalert_config_reloads_total",
        "counter",
        "Reloads that changed the served configuration or failed, by result.",
    );
    sample(
        &mut out,
        "dynalert_config_reloads_total",
        &[("result", "success")],
        status.reloads_success as f64,
    );
    sample(
        &mut out,
        "dynalert_config_reloads_total",
        &[("result", "failure")],
        status.reloads_failure as f64,
    );
    gauge(
        &mut out,
        "dynalert_store_up",
        "1 if the last read of the store (directory or database) succeeded; 0 while it cannot be read (the last good thresholds stay served).",
        &[(&[], bool_value(status.dir_error.is_none()))],
    );
    if let Some(age) = status.model_age() {
        gauge(
            &mut out,
            "dynalert_model_age_seconds",
            "Seconds since the served thresholds were last known to match the store; grows while it cannot be read or the reload loop is stalled.",
            &[(&[], age.as_secs_f64())],
        );
    }
    gauge(
        &mut out,
        "dynalert_reload_stalled",
        "1 while the reload loop has completed no cycle within its limit: edits and API writes are not served (see /ready).",
        &[(&[], bool_value(live.stall.is_some()))],
    );
    if let Some(auth) = &live.auth {
        gauge(
            &mut out,
            "dynalert_auth_file_last_reload_successful",
            "1 if the auth file on disk is the one in effect; 0 while it is missing or invalid (the last good tokens stay in effect).",
            &[(&[], bool_value(auth.error.is_none()))],
        );
    }

    let mut errors: BTreeMap<&str, u32> = BTreeMap::new();
    for d in model.diagnostics.iter().filter(|d| d.is_error()) {
        *errors.entry(d.file.as_str()).or_default() += 1;
    }
    family(
        &mut out,
        "dynalert_config_errors",
        "gauge",
        "Error diagnostics per file in the current load.",
    );
    for (file, count) in errors {
        sample(
            &mut out,
            "dynalert_config_errors",
            &[("file", file)],
            f64::from(count),
        );
    }
    gauge(
        &mut out,
        "dynalert_config_hash_info",
        "Canonical hash of the served configuration; always 1.",
        &[(&[("hash", model.hash())], 1.0)],
    );
    gauge(
        &mut out,
        "dynalert_tenants",
        "Tenants served.",
        &[(&[], served.snapshot.tenants() as f64)],
    );
    gauge(
        &mut out,
        "dynalert_threshold_series",
        "user_threshold series served.",
        &[(&[], served.snapshot.threshold_series() as f64)],
    );
    process::render(&mut out);
    out
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(&[(&str, &str)], f64)]) {
    family(out, name, "gauge", help);
    for (labels, value) in samples {
        sample(out, name, labels, *value);
    }
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"");
            escape_label_value(out, v);
            out.push('"');
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// Escapes as the text format requires: backslash, double quote and line feed.
fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn bool_value(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

/// `process_*` series from `/proc/self` (Linux). Elsewhere, or when a file cannot be read,
/// the series are left out rather than reported as 0.
mod process {
    use super::{family, gauge, sample};

    /// Clock ticks per second of the times in `/proc/*/stat`: the kernel's `USER_HZ`, which is
    /// 100 on every architecture Rust targets for Linux except Alpha.
    const TICKS_PER_SECOND: f64 = 100.0;

    pub(super) fn render(out: &mut String) {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields: Vec<&str> = stat
            .as_deref()
            // The command name may hold spaces and parentheses; fields after it are plain.
            .and_then(|s| s.rsplit_once(')'))
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // `fields[0]` is field 3 of proc(5), so field n is at n - 3.
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        if let (Some(utime), Some(stime)) = (field(14), field(15)) {
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
            );
            sample(
                out,
                "process_cpu_seconds_total",
                &[],
                (utime + stime) / TICKS_PER_SECOND,
            );
        }
        if let (Some(start), Some(boot)) = (field(22), boot_time()) {
            let value = boot + start / TICKS_PER_SECOND;
            gauge(
                out,
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                &[(&[], value)],
            );
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if let Some(kib) = status_kib(&status, "VmRSS:") {
            gauge(
                out,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &[(&[], kib * 1024.0)],
            );
        }
        if let Some(kib) = status_kib(&status, "VmSize:") {
            gauge(
                out,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                &[(&[], kib * 1024.0)],
            );
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            let open = dir.count() as f64;
            gauge(
                out,
                "process_open_fds",
                "Number of open file descriptors.",
                &[(&[], open)],
            );
        }
        if let Some(max) = max_open_files() {
            gauge(
                out,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &[(&[], max)],
            );
        }
    }

    fn boot_time() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        stat.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn status_kib(status: &str, key: &str) -> Option<f64> {
        let line = status.lines().find_map(|l| l.strip_prefix(key))?;
        line.trim().trim_end_matches("kB").trim().parse().ok()
    }

    fn max_open_files() -> Option<f64> {
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        // "Max open files   <soft>   <hard>   files"
        line["Max open files".len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        sample(&mut out, "x", &[("file", "a\"b\\c\nd.yaml")], 2.0);
        assert_eq!(out, "x{file=\"a\\\"b\\\\c\\nd.yaml\"} 2\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn process_metrics_are_read_from_proc() {
        let mut out = String::new();
        process::render(&mut out);
        for name in [
            "process_cpu_seconds_total",
            "process_start_time_seconds",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                out.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name} missing from\n{out}"
            );
        }
        let start: f64 = out
            .lines()
            .find_map(|l| l.strip_prefix("process_start_time_seconds "))
            .unwrap()
            .parse()
            .unwrap();
        let now = Utc::now().timestamp() as f64;
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "start {start}, now {now}"
        );
    }
}
