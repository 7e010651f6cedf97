//! The markdown report of a rules results file: a summary line per tenant count and a table
//! per round, both from one list of figures, and the alerts compared. How the variants are
//! built and each figure is taken is described next to the section in `docs/benchmarks.md`.

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

/// A row of a round's table: the median over the repetitions of `value`, shown by `show`.
struct Figure(
    &'static str,
    fn(&Measured) -> f64,
    fn(f64) -> String,
    Base,
    Target,
);

const AIM: Target = Target::Cheaper(5.0, " (aim 10×)");
const LOAD: Target = Target::Cheaper(50.0, "");

const FIGURES: [Figure; 16] = [
    Figure(
        "evaluation time per cycle (Σ last group duration, median)",
        |m| median(&m.eval),
        seconds,
        Base::Dash,
        AIM,
    ),
    Figure(
        "group iterations missed in the window",
        |m| m.missed,
        count,
        Base::Dash,
        Target::None,
    ),
    Figure(
        "CPU (rate of `process_cpu_seconds_total`)",
        |m| m.cpu,
        cores,
        Base::Shown,
        Target::None,
    ),
    Figure(
        "CPU above the baseline",
        |m| m.cpu,
        cores,
        Base::Subtracted,
        AIM,
    ),
    Figure(
        "CPU of other processes on the machine during the window",
        |m| m.others,
        cores,
        Base::Shown,
        Target::None,
    ),
    Figure(
        "heap in use (`go_memstats_heap_inuse_bytes`, median)",
        |m| m.heap,
        mib,
        Base::Shown,
        Target::NoMore,
    ),
    Figure(
        "heap in use above the baseline",
        |m| m.heap,
        mib,
        Base::Subtracted,
        Target::None,
    ),
    Figure(
        "GC heap goal (`go_memstats_next_gc_bytes`, median)",
        |m| m.heap_goal,
        mib,
        Base::Shown,
        Target::NoMore,
    ),
    Figure(
        "resident memory (VmRSS, median)",
        |m| m.rss,
        mib,
        Base::Shown,
        Target::None,
    ),
    Figure(
        "head series (`prometheus_tsdb_head_series`)",
        |m| m.head_series,
        count,
        Base::Shown,
        Target::NoMore,
    ),
    Figure(
        "head series above the baseline",
        |m| m.head_series,
        count,
        Base::Subtracted,
        Target::None,
    ),
    Figure(
        "rule load at start (`rules=` of the config load log line)",
        |m| m.load_at_start.unwrap_or(f64::NAN),
        seconds,
        Base::Shown,
        LOAD,
    ),
    Figure(
        "rule load at reload (`rules=`, median)",
        |m| m.load_at_reload.unwrap_or(f64::NAN),
        seconds,
        Base::Shown,
        LOAD,
    ),
    Figure(
        "process start → `/-/ready`",
        |m| m.ready,
        seconds,
        Base::Shown,
        Target::None,
    ),
    Figure(
        "`POST /-/reload` round trip (median)",
        |m| m.reload_request.unwrap_or(f64::NAN),
        seconds,
        Base::Shown,
        Target::None,
    ),
    Figure(
        "rule evaluation failures",
        |m| m.failures,
        count,
        Base::Dash,
        Target::None,
    ),
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
    let a = &r.args;
    let mut md = r.meta.markdown("Rule packs benchmark");
    let variants = r.rounds.first().and_then(|round| round.repetitions.first());
    let variants: Vec<&str> = variants
        .into_iter()
        .flatten()
        .map(|m| m.variant.as_str())
        .collect();
    let history = match a.history_secs >= 300 {
        true => String::new(),
        false => " (**less than 5 minutes**: `rate(…[5m])` reads fewer samples than in steady state, which flatters the ratios)".to_owned(),
    };
    let _ = writeln!(
        md,
        "- {}\n- packs: {} ({} keys, {} alerting + {} recording rules as rendered); variants: {}{}\n\
         - scrape and evaluation interval {} s; {} s of history{history}, then a {} s window in \
         slices of {} s, a slice thrown away while other processes use more than {:.0} % of a \
         core (for at most {} s); {} reloads; every variant measured {} time(s), the order \
         reversed every other time\n",
        r.prometheus_version,
        a.packs.join(", "),
        r.keys,
        r.alerts,
        r.recording,
        variants.join(", "),
        a.extra
            .iter()
            .map(|e| format!("; `--extra {e}`"))
            .collect::<String>(),
        a.interval_secs,
        a.history_secs,
        a.settle_secs,
        a.slice_secs,
        a.quiet_cores * 100.0,
        a.max_wait_secs,
        a.reloads,
        a.repeat
    );
    summary(r, &mut md);
    for round in &r.rounds {
        round_table(r, round, &variants, &mut md);
    }
    md
}

/// One line per tenant count: packs / per-tenant of every figure with a target.
fn summary(r: &Results, md: &mut String) {
    let targeted: Vec<&Figure> = FIGURES.iter().filter(|f| f.4 != Target::None).collect();
    let mut header = vec!["tenants".to_owned()];
    header.extend(
        targeted
            .iter()
            .map(|f| f.0.split(" (").next().unwrap_or(f.0).to_owned()),
    );
    let mut rows = Vec::new();
    for round in &r.rounds {
        let mut row = vec![round.tenants.to_string()];
        for figure in &targeted {
            let (p, t) = (
                median(&round.values(PACKS, figure)),
                median(&round.values(PER_TENANT, figure)),
            );
            let (ratio, each) = round.ratios(figure);
            row.push(format!(
                "{} / {} ({}){}",
                figure.2(p),
                figure.2(t),
                times(ratio),
                range(&each)
            ));
        }
        rows.push(row);
    }
    md.push_str(&table(&header, &rows));
    md.push_str(
        "\nEach cell: packs / per-tenant (how many times the packs are cheaper: per-tenant ÷ \
         packs; above 1× the packs cost less), medians over the repetitions; with several, the \
         lowest and highest ratio of a single repetition in brackets.\n\n",
    );
}

fn round_table(r: &Results, round: &Round, variants: &[&str], md: &mut String) {
    let (n, c) = (round.tenants, &round.conf);
    let _ = writeln!(
        md,
        "### {n} tenants\n\nSynthetic exporter: {} series ({n} tenants × {INSTANCES} instances \
         per service); dynalert serve: {} series, {} `user_threshold` rows (tenant files: {} \
         custom values, {} disabled keys, {} raised critical tiers, {} per-queue rows, metadata \
         on {} tenants, maintenance on {}).\n",
        round.exporter_series,
        round.dynalert_series,
        round.threshold_rows,
        c.custom,
        c.disabled,
        c.critical,
        c.dimension_rows,
        c.metadata,
        c.maintenance
    );
    let at_target = n >= TARGET_TENANTS;
    let repeated = round.repetitions.len() > 1;
    let mut rows = Vec::new();
    let mut row = |label: String, cells: Vec<String>, ratio: String, target: String| {
        rows.push([vec![label], cells, vec![ratio, target]].concat());
    };
    let interval = r.args.interval_secs.to_string();
    let texts: [(&str, bool, &dyn Fn(&[&Measured]) -> String); 5] = [
        ("rule groups / alerting + recording rules", false, &|ms| {
            let rules = &ms[0].rules;
            format!(
                "{} / {} + {}",
                rules.groups, rules.alerting, rules.recording
            )
        }),
        ("evaluation interval of the rule groups", true, &|ms| {
            let intervals = ms[0]
                .rules
                .intervals
                .iter()
                .map(|(i, groups)| format!("{i} s ({groups} groups)"));
            let odd = ms[0].rules.intervals.keys().any(|i| *i != interval);
            let warning = if odd {
                ", **not the scrape interval**"
            } else {
                ""
            };
            intervals.collect::<Vec<_>>().join(", ") + warning
        }),
        (
            "evaluation time per cycle, min – max of the samples",
            true,
            &|ms| {
                let samples: Vec<f64> = ms.iter().flat_map(|m| m.eval.iter().copied()).collect();
                let (lo, hi) = samples
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &v| {
                        (l.min(v), h.max(v))
                    });
                format!("{} – {}", seconds(lo), seconds(hi))
            },
        ),
        (
            "slices thrown away (machine busy) / kept although busy",
            false,
            &|ms| {
                let sum = |f: fn(&Measured) -> usize| ms.iter().map(|m| f(m)).sum::<usize>();
                format!("{} / {}", sum(|m| m.discarded), sum(|m| m.noisy))
            },
        ),
        (
            "alerts pending or firing (`count(ALERTS)`), of them tenants in maintenance",
            true,
            &|ms| {
                let of =
                    |f: fn(&Measured) -> f64| median(&ms.iter().map(|m| f(m)).collect::<Vec<_>>());
                format!("{} ({})", of(|m| m.alerts), of(|m| m.alerts_in_maintenance))
            },
        ),
    ];
    for (label, rules_only, text) in texts {
        let cell = |v: &&str| match rules_only && *v == BASELINE {
            true => "–".to_owned(),
            false => text(&round.each(v)),
        };
        row(
            label.to_owned(),
            variants.iter().map(cell).collect(),
            "–".into(),
            "–".into(),
        );
    }
    for figure in &FIGURES {
        let dash = |v: &str| figure.3 != Base::Shown && v == BASELINE;
        let cell = |v: &&str| {
            if dash(v) {
                "–".into()
            } else {
                figure.2(median(&round.values(v, figure)))
            }
        };
        let (ratio, each) = round.ratios(figure);
        row(
            figure.0.to_owned(),
            variants.iter().map(cell).collect(),
            times(ratio),
            verdict(figure.4, ratio, at_target),
        );
        if repeated && matches!(figure.4, Target::Cheaper(..)) {
            let list = |values: Vec<f64>, show: &dyn Fn(f64) -> String| {
                values.into_iter().map(show).collect::<Vec<_>>().join(", ")
            };
            let cell = |v: &&str| {
                if dash(v) {
                    "–".into()
                } else {
                    list(round.values(v, figure), &figure.2)
                }
            };
            let label = format!("{}, each repetition", figure.0);
            row(
                label,
                variants.iter().map(cell).collect(),
                list(each, &times),
                "–".into(),
            );
        }
    }
    let mut header = vec!["metric"];
    header.extend(variants);
    header.extend(["per-tenant ÷ packs", "target"]);
    md.push_str(&table(&header, &rows));
    md.push('\n');
    let list = |items: &[(String, f64)]| {
        let items: Vec<String> = items
            .iter()
            .map(|(name, time)| format!("`{name}` {}", seconds(*time)))
            .collect();
        items.join(", ")
    };
    let others = variants
        .iter()
        .filter(|v| ![BASELINE, PER_TENANT].contains(v));
    for variant in others {
        let first = &round.each(variant)[0];
        let _ = writeln!(
            md,
            "Last evaluation in {variant}, by group: {}; costliest rules: {}.\n",
            list(&first.rules.group_times),
            list(&first.rules.rule_times)
        );
        md.push_str(&same_alerts(round, variant));
    }
    let groups: Vec<f64> = round.each(PER_TENANT).first().map_or(Vec::new(), |t| {
        t.rules.group_times.iter().map(|g| g.1).collect()
    });
    let _ = writeln!(
        md,
        "Last evaluation in per-tenant: median group {}, slowest group {}. Load average at the \
         end of the round: {}.\n",
        seconds(median(&groups)),
        seconds(groups.iter().copied().fold(f64::NAN, f64::max)),
        round.load_average_after
    );
}

/// Whether `variant` and per-tenant raise the same alerts in each repetition, tenants in
/// maintenance left out: once if all repetitions agree, else one line per repetition.
fn same_alerts(round: &Round, variant: &str) -> String {
    let outside = |m: &Measured| -> BTreeSet<AlertId> {
        m.alert_set
            .iter()
            .filter(|a| !round.maintenance.contains(&a.1))
            .cloned()
            .collect()
    };
    let show = |only: Vec<&AlertId>| match only.is_empty() {
        true => "none".to_owned(),
        false => {
            let examples = only.iter().take(3).map(|(name, tenant, severity, queue)| {
                format!("`{name}` {tenant} {severity} {queue}")
            });
            format!(
                "{} (e.g. {})",
                only.len(),
                examples.collect::<Vec<_>>().join(", ").trim_end()
            )
        }
    };
    let lines: Vec<String> = round
        .each(variant)
        .into_iter()
        .zip(round.each(PER_TENANT))
        .map(|(other, per_tenant)| {
            let (o, t) = (outside(other), outside(per_tenant));
            if o == t {
                format!("`{variant}` and per-tenant raise the same {} alerts (by name, tenant, severity and queue; tenants in maintenance left out).", o.len())
            } else {
                let (only_o, only_t) = (show(o.difference(&t).collect()), show(t.difference(&o).collect()));
                format!("`{variant}` and per-tenant differ (tenants in maintenance left out): only in {variant} {only_o}, only in per-tenant {only_t}.")
            }
        })
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => format!("{only}\n\n"),
        [first, ..] if lines.iter().all(|line| line == first) => {
            format!("In each of the {} repetitions: {first}\n\n", lines.len())
        }
        _ => lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("Repetition {}: {line}\n\n", i + 1))
            .collect(),
    }
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

/// ` (repetitions 3.9–4.4×)` for two repetitions or more, nothing for one.
fn range(ratios: &[f64]) -> String {
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match ratios.len() {
        0 | 1 => String::new(),
        _ => format!(" (repetitions {}–{})", times(lo), times(hi)),
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
    use super::super::synthetic::Conf;
    use super::*;

    fn measured(variant: &str, cpu: f64) -> Measured {
        let json = serde_json::json!({
            "variant": variant, "ready": 0.1, "load_at_start": 0.01, "load_at_reload": 0.01,
            "reload_request": 0.01, "rules": {"groups": 1, "alerting": 2, "recording": 0,
            "group_times": [], "intervals": {"5": 1}, "rule_times": []}, "eval": [cpu],
            "cpu": cpu, "others": 0.0, "discarded": 0, "noisy": 0, "heap": 1.0, "heap_goal": 2.0,
            "rss": 3.0, "head_series": 100.0, "failures": 0.0, "missed": 0.0, "alerts": 5.0,
            "alerts_in_maintenance": 0.0, "alert_set": [["A", "t1", "warning", ""]],
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn each_repetition_subtracts_its_own_baseline() {
        let repetitions = vec![
            vec![
                measured(BASELINE, 0.04),
                measured(PACKS, 0.30),
                measured(PER_TENANT, 1.04),
            ],
            vec![
                measured(BASELINE, 0.10),
                measured(PACKS, 0.30),
                measured(PER_TENANT, 0.70),
            ],
        ];
        let round = Round {
            tenants: 1000,
            load_average_after: String::new(),
            conf: Conf::default(),
            threshold_rows: 0,
            dynalert_series: 0,
            exporter_series: 0,
            maintenance: BTreeSet::new(),
            repetitions,
        };
        let above = &FIGURES[3];
        let close =
            |got: &[f64], want: &[f64]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9);
        assert!(close(&round.values(PACKS, above), &[0.26, 0.20]));
        let (ratio, each) = round.ratios(above);
        assert!(
            close(&each, &[1.00 / 0.26, 3.0]) && close(&[ratio], &[0.8 / 0.23]),
            "{each:?}"
        );
        assert_eq!(verdict(above.4, ratio, true), "≥ 5× (aim 10×): **missed**");
        assert!(same_alerts(&round, PACKS).starts_with(
            "In each of the 2 repetitions: `packs` and per-tenant raise the same 1 alerts"
        ));
    }
}
