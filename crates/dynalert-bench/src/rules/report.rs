//! The markdown report of a rules results file: a table per round from one list of figures,
//! and the alerts compared. How the variants are built and each figure is taken is described
//! next to the section in `docs/benchmarks.md`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::measure::AlertId;
use super::synthetic::INSTANCES;
use super::{BASELINE, Measured, PACKS, PER_TENANT, Results, Round};
use crate::support::{median, mib, outcome, seconds, table};

/// The targets hold at this tenant count.
const TARGET_TENANTS: usize = 1000;

/// How a figure treats the baseline Prometheus (no rules).
#[derive(Clone, Copy, PartialEq)]
enum Base {
    Shown,
    /// `–` in the baseline's column: a figure of rules.
    Dash,
    /// The baseline of the same repetition subtracted (and `–` in its column).
    Subtracted,
}

/// What the packs are held to against per-tenant rules, at [`TARGET_TENANTS`].
#[derive(Clone, Copy, PartialEq)]
enum Target {
    None,
    /// Per-tenant ÷ packs at least this much, with the aim in words.
    Cheaper(f64, &'static str),
    NoMore,
}

/// A row: its label, the figure of one measurement, how it is shown, the baseline, the target.
/// A cell is the median of the figure over the repetitions.
struct Figure(
    &'static str,
    fn(&Measured) -> f64,
    fn(f64) -> String,
    Base,
    Target,
);

const AIM: Target = Target::Cheaper(5.0, " (aim 10×)");
const LOAD: Target = Target::Cheaper(50.0, "");
const NONE: Target = Target::None;
const NO_MORE: Target = Target::NoMore;

// A table: one figure per line.
#[rustfmt::skip]
const FIGURES: [Figure; 22] = [
    Figure("rule groups", |m| m.rules.groups as f64, count, Base::Shown, NONE),
    Figure("alerting + recording rules", |m| (m.rules.alerting + m.rules.recording) as f64, count, Base::Shown, NONE),
    Figure("evaluation time per cycle (Σ last group duration, median)", |m| median(&m.eval), seconds, Base::Dash, AIM),
    Figure("evaluation time per cycle, lowest sample", |m| m.eval.iter().copied().fold(f64::NAN, f64::min), seconds, Base::Dash, NONE),
    Figure("evaluation time per cycle, highest sample", |m| m.eval.iter().copied().fold(f64::NAN, f64::max), seconds, Base::Dash, NONE),
    Figure("group iterations missed in the window", |m| m.missed, count, Base::Dash, NONE),
    Figure("CPU (rate of `process_cpu_seconds_total`)", |m| m.cpu, cores, Base::Shown, NONE),
    Figure("CPU above the baseline", |m| m.cpu, cores, Base::Subtracted, AIM),
    Figure("CPU of other processes on the machine during the window", |m| m.others, cores, Base::Shown, NONE),
    Figure("heap in use (`go_memstats_heap_inuse_bytes`, median)", |m| m.heap, mib, Base::Shown, NO_MORE),
    Figure("heap in use above the baseline", |m| m.heap, mib, Base::Subtracted, NONE),
    Figure("GC heap goal (`go_memstats_next_gc_bytes`, median)", |m| m.heap_goal, mib, Base::Shown, NO_MORE),
    Figure("resident memory (VmRSS, median)", |m| m.rss, mib, Base::Shown, NONE),
    Figure("head series (`prometheus_tsdb_head_series`)", |m| m.head_series, count, Base::Shown, NO_MORE),
    Figure("head series above the baseline", |m| m.head_series, count, Base::Subtracted, NONE),
    Figure("rule load at start (`rules=` of the config load log line)", |m| m.load_at_start.unwrap_or(f64::NAN), seconds, Base::Shown, LOAD),
    Figure("rule load at reload (`rules=`, median)", |m| m.load_at_reload.unwrap_or(f64::NAN), seconds, Base::Shown, LOAD),
    Figure("process start → `/-/ready`", |m| m.ready, seconds, Base::Shown, NONE),
    Figure("`POST /-/reload` round trip (median)", |m| m.reload_request.unwrap_or(f64::NAN), seconds, Base::Shown, NONE),
    Figure("alerts pending or firing (`count(ALERTS)`)", |m| m.alerts, count, Base::Dash, NONE),
    Figure("… of them tenants in maintenance", |m| m.alerts_in_maintenance, count, Base::Dash, NONE),
    Figure("rule evaluation failures", |m| m.failures, count, Base::Dash, NONE),
];

impl Round {
    /// `variant`'s measurement in each repetition.
    fn each(&self, variant: &str) -> Vec<&Measured> {
        let repetitions = self.repetitions.iter();
        repetitions
            .filter_map(|results| results.iter().find(|m| m.variant == variant))
            .collect()
    }

    /// `figure` of `variant` in each repetition, the baseline of the same repetition
    /// subtracted if the figure says so.
    fn values(&self, variant: &str, figure: &Figure) -> Vec<f64> {
        let value = |results: &Vec<Measured>| {
            let find = |v: &str| results.iter().find(|m| m.variant == v);
            let base = find(BASELINE).filter(|_| figure.3 == Base::Subtracted);
            Some(figure.1(find(variant)?) - base.map_or(0.0, figure.1))
        };
        self.repetitions.iter().filter_map(value).collect()
    }

    /// Per-tenant ÷ packs of `figure`: of the medians, and in each repetition.
    fn ratios(&self, figure: &Figure) -> (f64, Vec<f64>) {
        let (t, p) = (self.values(PER_TENANT, figure), self.values(PACKS, figure));
        let each = t.iter().zip(&p).map(|(t, p)| t / p).collect();
        (median(&t) / median(&p), each)
    }
}

pub fn markdown(r: &Results) -> String {
    let (a, version, keys) = (&r.args, &r.prometheus_version, r.keys);
    let (alerts, recording, packs) = (r.alerts, r.recording, a.packs.join(", "));
    let first = r.rounds.first().and_then(|round| round.repetitions.first());
    let variants: Vec<&str> = first.into_iter().flatten().map(|m| &*m.variant).collect();
    let extra: String = a.extra.iter().map(|e| format!("; `--extra {e}`")).collect();
    let short = " (**less than 5 minutes**: `rate(…[5m])` reads fewer samples than in steady \
                 state, which flatters the ratios)";
    let history = if a.history_secs >= 300 { "" } else { short };
    let (interval, seconds, window) = (a.interval_secs, a.history_secs, a.settle_secs);
    let mut md = r.meta.markdown("Rule packs benchmark");
    let _ = writeln!(
        md,
        "- {version}\n- packs: {packs} ({keys} keys, {alerts} alerting + {recording} recording \
         rules as rendered); variants: {}{extra}\n- scrape and evaluation interval {interval} s; \
         {seconds} s of history{history}, then a {window} s window; {} reloads; every variant \
         measured {} time(s), the order reversed every other time\n",
        variants.join(", "),
        a.reloads,
        a.repeat
    );
    for round in &r.rounds {
        round_table(r, round, &variants, &mut md);
    }
    md
}

fn round_table(r: &Results, round: &Round, variants: &[&str], md: &mut String) {
    let (n, load, rows) = (
        round.tenants,
        &round.load_average_after,
        round.threshold_rows,
    );
    let (exporter, dynalert) = (round.exporter_series, round.dynalert_series);
    let maintenance = round.maintenance.len();
    let _ = writeln!(
        md,
        "### {n} tenants\n\nSynthetic exporter: {exporter} series ({n} tenants × {INSTANCES} \
         instances per service); dynalert serve: {dynalert} series, {rows} `user_threshold` rows, \
         {maintenance} tenants in maintenance. Load average after the round: {load}.\n"
    );
    let (at_target, repeated) = (n >= TARGET_TENANTS, round.repetitions.len() > 1);
    let mut rows = Vec::new();
    for figure in &FIGURES {
        let dash = |v: &str| figure.3 != Base::Shown && v == BASELINE;
        let cells = |show: &dyn Fn(Vec<f64>) -> String| {
            let value = |v: &str| show(round.values(v, figure));
            let cell = |v: &&str| if dash(v) { "–".into() } else { value(v) };
            variants.iter().map(cell).collect::<Vec<String>>()
        };
        let (ratio, each) = round.ratios(figure);
        let ends = vec![times(ratio), verdict(figure.4, ratio, at_target)];
        rows.push(
            [
                vec![figure.0.into()],
                cells(&|v| figure.2(median(&v))),
                ends,
            ]
            .concat(),
        );
        if repeated && matches!(figure.4, Target::Cheaper(..)) {
            let label = format!("{}, each repetition", figure.0);
            let ends = vec![list(&each, times), "–".into()];
            rows.push([vec![label], cells(&|v| list(&v, figure.2)), ends].concat());
        }
    }
    let mut header = vec!["metric"];
    header.extend(variants.iter().chain(&["per-tenant ÷ packs", "target"]));
    md.push_str(&table(&header, &rows));
    md.push('\n');
    let interval = r.args.interval_secs.to_string();
    for variant in variants {
        let each = round.each(variant);
        let intervals: BTreeSet<_> = each.iter().flat_map(|m| &m.rules.intervals).collect();
        if intervals.iter().any(|i| **i != interval) {
            let _ = writeln!(
                md,
                "**Not the scrape interval**: {variant} at {intervals:?} s.\n"
            );
        }
        if ![BASELINE, PER_TENANT].contains(variant) {
            md.push_str(&same_alerts(round, variant));
        }
    }
}

/// Whether `variant` and per-tenant raise the same alerts in each repetition, tenants in
/// maintenance left out: once if all repetitions agree, else one line per repetition.
fn same_alerts(round: &Round, variant: &str) -> String {
    let outside = |m: &Measured| -> BTreeSet<AlertId> {
        let alerts = m.alert_set.iter();
        alerts
            .filter(|a| !round.maintenance.contains(&a[1]))
            .cloned()
            .collect()
    };
    let show = |only: Vec<&AlertId>| {
        let examples = only
            .iter()
            .take(3)
            .map(|id| format!("`{}`", id.join(" ").trim_end()));
        let examples = examples.collect::<Vec<_>>().join(", ");
        format!("{} (e.g. {examples})", only.len())
    };
    let line = |(other, per_tenant)| {
        let (o, t) = (outside(other), outside(per_tenant));
        let (only_o, only_t) = (
            show(o.difference(&t).collect()),
            show(t.difference(&o).collect()),
        );
        let same = format!("raise the same {} alerts", o.len());
        let differ = format!("differ: only in {variant} {only_o}, only in per-tenant {only_t}");
        format!(
            "`{variant}` and per-tenant {}",
            if o == t { same } else { differ }
        )
    };
    let lines: Vec<String> = round
        .each(variant)
        .into_iter()
        .zip(round.each(PER_TENANT))
        .map(line)
        .collect();
    let why = " (by name, tenant, severity and queue; tenants in maintenance left out).\n\n";
    let repetitions = lines.len();
    match lines.as_slice() {
        [] => String::new(),
        [only] => format!("{only}{why}"),
        [first, ..] if lines.iter().all(|line| line == first) => {
            format!("In each of the {repetitions} repetitions: {first}{why}")
        }
        _ => lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("Repetition {}: {line}{why}", i + 1))
            .collect(),
    }
}

fn list(values: &[f64], show: fn(f64) -> String) -> String {
    values
        .iter()
        .map(|&v| show(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `≥ 5×: met` at the target's tenant count, the bare target below it.
fn verdict(target: Target, ratio: f64, at_target: bool) -> String {
    let (goal, met) = match target {
        Target::None => return "–".to_owned(),
        Target::Cheaper(at_least, aim) => (format!("≥ {at_least}×{aim}"), ratio >= at_least),
        Target::NoMore => ("packs ≤ per-tenant".to_owned(), ratio >= 1.0),
    };
    match (at_target, ratio.is_finite()) {
        (false, _) => format!("{goal} at {TARGET_TENANTS} tenants"),
        (true, false) => format!("{goal}: not measured"),
        (true, true) => format!("{goal}: {}", outcome(met)),
    }
}

/// A ratio as `12×` or `1.23×`; `–` when not measured.
fn times(ratio: f64) -> String {
    match ratio {
        r if !r.is_finite() => "–".to_owned(),
        r if r >= 10.0 => format!("{r:.0}×"),
        r => format!("{r:.2}×"),
    }
}

fn cores(c: f64) -> String {
    format!("{:.1} % of a core", c * 100.0)
}

fn count(n: f64) -> String {
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(variant: &str, cpu: f64) -> Measured {
        let json = serde_json::json!({
            "variant": variant, "ready": 0.1, "load_at_start": 0.01, "load_at_reload": 0.01,
            "reload_request": 0.01, "rules": {"groups": 1, "alerting": 2, "recording": 0,
            "intervals": ["5"]}, "eval": [cpu],
            "cpu": cpu, "others": 0.0, "heap": 1.0, "heap_goal": 2.0,
            "rss": 3.0, "head_series": 100.0, "failures": 0.0, "missed": 0.0, "alerts": 5.0,
            "alerts_in_maintenance": 0.0, "alert_set": [["A", "t1", "warning", ""]],
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_repetition_subtracts_its_own_baseline() {
        let variants = [BASELINE, PACKS, PER_TENANT];
        let repetition = |cpu: [f64; 3]| {
            variants
                .iter()
                .zip(cpu)
                .map(|(v, c)| measured(v, c))
                .collect()
        };
        let json = serde_json::json!({
            "tenants": 1000, "load_average_after": "",
            "threshold_rows": 0, "dynalert_series": 0, "exporter_series": 0, "maintenance": [],
            "repetitions": [],
        });
        let mut round: Round = serde_json::from_value(json).unwrap();
        round.repetitions = vec![
            repetition([0.04, 0.30, 1.04]),
            repetition([0.10, 0.30, 0.70]),
        ];
        let above = &FIGURES[7];
        let close =
            |got: &[f64], want: &[f64]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9);
        assert!(close(&round.values(PACKS, above), &[0.26, 0.20]));
        let (ratio, each) = round.ratios(above);
        assert!(
            close(&each, &[1.00 / 0.26, 3.0]) && close(&[ratio], &[0.8 / 0.23]),
            "{each:?}"
        );
        assert_eq!(verdict(above.4, ratio, true), "≥ 5× (aim 10×): **missed**");
        let same = same_alerts(&round, PACKS);
        assert!(same.starts_with(
            "In each of the 2 repetitions: `packs` and per-tenant raise the same 1 alerts"
        ));
    }
}
