//! The markdown report of a results file: a summary line per tenant count, a table per round,
//! the alerts compared, the method.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::measure::Alert;
use super::synthetic::{INSTANCES, P_HIGH};
use super::{BASELINE, Measured, PACKS, PER_TENANT, Results, Round};
use crate::support::{median, seconds};

// The targets, at 1,000 tenants.
const TARGET_TENANTS: usize = 1000;
const TARGET_EVAL: f64 = 5.0;
const TARGET_CPU: f64 = 5.0;
const TARGET_LOAD: f64 = 50.0;

pub fn markdown(r: &Results) -> String {
    let a = &r.args;
    let mut md = r.meta.markdown("Rule packs benchmark");
    let repeated = if a.repeat > 1 {
        format!("every variant measured {} times; ", a.repeat)
    } else {
        String::new()
    };
    let _ = writeln!(
        md,
        "- {}\n- packs: {} ({} keys, {} alerting + {} recording rules as rendered); scrape and \
         evaluation interval {} s; {} s of history, then a {} s measurement window per \
         Prometheus; {} reloads per Prometheus; {repeated}whole run {:.0} s\n",
        r.prometheus_version,
        a.packs.join(", "),
        r.keys,
        r.alerts,
        r.recording,
        a.interval_secs,
        a.history_secs,
        a.settle_secs,
        a.reloads,
        r.meta.seconds
    );
    summary(r, &mut md);
    for round in &r.rounds {
        round_table(r, round, &mut md);
    }
    method(r, &mut md);
    md
}

impl Round {
    fn get(&self, variant: &str) -> Option<&Measured> {
        self.results.iter().find(|m| m.variant == variant)
    }

    fn base(&self, figure: fn(&Measured) -> f64) -> f64 {
        self.get(BASELINE).map_or(0.0, figure)
    }
}

fn reload_median(m: &Measured) -> f64 {
    let mut loads = m.load_at_reload.clone();
    loads.sort_by(f64::total_cmp);
    loads.get(loads.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One line per tenant count: the figures the issue has targets for.
fn summary(r: &Results, md: &mut String) {
    md.push_str(
        "| tenants | evaluation time per cycle | CPU above the baseline | GC heap goal | head \
         series | rule load at reload |\n|---|---|---|---|---|---|\n",
    );
    for round in &r.rounds {
        let (Some(p), Some(t)) = (round.get(PACKS), round.get(PER_TENANT)) else {
            continue;
        };
        let base_cpu = round.base(|b| b.cpu);
        let pair = |p: f64, t: f64, format: fn(f64) -> String| {
            format!("{} / {} ({})", format(p), format(t), times(t, p))
        };
        let _ = writeln!(
            md,
            "| {} | {}{} | {}{} | {} | {} | {} |",
            round.tenants,
            pair(median(&p.eval), median(&t.eval), seconds),
            range_of_repetitions(&round.cheaper_each(Round::eval_each)),
            pair(p.cpu - base_cpu, t.cpu - base_cpu, cores),
            range_of_repetitions(&round.cheaper_each(Round::cpu_each)),
            pair(median(&p.heap_goal), median(&t.heap_goal), mib),
            pair(p.head_series, t.head_series, |s| s.to_string()),
            pair(reload_median(p), reload_median(t), seconds),
        );
    }
    md.push_str(
        "\nEach cell: packs / per-tenant (how many times the packs are cheaper: per-tenant ÷ \
         packs, above 1× means the packs cost less).",
    );
    if r.args.repeat > 1 {
        let _ = write!(
            md,
            " Medians over {} repetitions; in brackets, the lowest and highest ratio of a single \
             repetition.",
            r.args.repeat
        );
    }
    md.push_str("\n\n");
}

fn round_table(r: &Results, round: &Round, md: &mut String) {
    let n = round.tenants;
    let c = &round.conf;
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
    md.push_str("| metric |");
    for m in &round.results {
        let _ = write!(md, " {} |", m.variant);
    }
    md.push_str(" per-tenant ÷ packs | target |\n|---|");
    md.push_str(&"---|".repeat(round.results.len() + 2));
    md.push('\n');
    let (Some(p), Some(t)) = (round.get(PACKS), round.get(PER_TENANT)) else {
        return;
    };
    let at_target = n >= TARGET_TENANTS;
    let repeated = round.repetitions.len() > 1;
    let (base_cpu, base_series) = (round.base(|b| b.cpu), round.base(|b| b.head_series));
    let base_heap = round.base(|b| median(&b.heap));
    let none = || "–".to_owned();
    // A row: its label, a cell per variant (`–` for the baseline where `rules_only`), the
    // ratio per-tenant ÷ packs of `figure`, and the target.
    let mut row = |label: &str,
                   rules_only: bool,
                   cell: &dyn Fn(&Measured) -> String,
                   ratio: String,
                   target: String| {
        let _ = write!(md, "| {label} |");
        for m in &round.results {
            let text = if rules_only && m.variant == BASELINE {
                none()
            } else {
                cell(m)
            };
            let _ = write!(md, " {text} |");
        }
        let _ = writeln!(md, " {ratio} | {target} |");
    };
    let ratio = |figure: &dyn Fn(&Measured) -> f64| times(figure(t), figure(p));
    let rules = |m: &Measured| (m.rules.alerting + m.rules.recording) as f64;
    row(
        "rule groups / alerting + recording rules",
        false,
        &|m| {
            format!(
                "{} / {} + {}",
                m.rules.groups, m.rules.alerting, m.rules.recording
            )
        },
        ratio(&rules),
        none(),
    );
    let global = r.args.interval_secs.to_string();
    let intervals = |m: &Measured| {
        let one = m.rules.intervals.len() == 1;
        let mut list: Vec<String> = m
            .rules
            .intervals
            .iter()
            .map(|(i, groups)| {
                if one {
                    format!("{i} s")
                } else {
                    format!("{i} s ({groups} groups)")
                }
            })
            .collect();
        if m.rules.intervals.keys().any(|i| *i != global) {
            list.push("**not the scrape interval**".to_owned());
        }
        list.join(", ")
    };
    row(
        "evaluation interval of the rule groups",
        true,
        &intervals,
        none(),
        format!("{global} s for every variant"),
    );
    let eval = |m: &Measured| median(&m.eval);
    row(
        "evaluation time per cycle (Σ last group duration, median)",
        true,
        &|m| seconds(eval(m)),
        ratio(&eval),
        ratio_target(eval(t) / eval(p), TARGET_EVAL, at_target, " (aim 10×)"),
    );
    if repeated {
        row(
            "evaluation time per cycle, median of each repetition",
            true,
            &|m| list_of(&round.eval_each(&m.variant), seconds),
            list_of(&round.cheaper_each(Round::eval_each), |r| times(r, 1.0)),
            none(),
        );
    }
    let min_max = |m: &Measured| {
        let (lo, hi) = m
            .eval
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        format!("{} – {}", seconds(lo), seconds(hi))
    };
    row(
        "evaluation time per cycle, min – max of the samples",
        true,
        &min_max,
        none(),
        none(),
    );
    row(
        "group iterations missed in the window",
        true,
        &|m| m.missed.to_string(),
        none(),
        none(),
    );
    row(
        "CPU (rate of `process_cpu_seconds_total`)",
        false,
        &|m| cores(m.cpu),
        none(),
        none(),
    );
    let above = |m: &Measured| m.cpu - base_cpu;
    row(
        "CPU above the baseline",
        true,
        &|m| cores(above(m)),
        ratio(&above),
        ratio_target(above(t) / above(p), TARGET_CPU, at_target, " (aim 10×)"),
    );
    if repeated {
        row(
            "CPU above the baseline, each repetition (its own baseline subtracted)",
            true,
            &|m| {
                list_of(&round.cpu_each(&m.variant), |c| {
                    format!("{:.1} %", c * 100.0)
                })
            },
            list_of(&round.cheaper_each(Round::cpu_each), |r| times(r, 1.0)),
            none(),
        );
    }
    row(
        "CPU of other processes on the machine during the window",
        false,
        &|m| cores(m.others),
        none(),
        none(),
    );
    let slices = |m: &Measured| format!("{} / {}", m.discarded, m.noisy);
    row(
        "slices thrown away (machine busy) / kept although busy",
        false,
        &slices,
        none(),
        none(),
    );
    let heap = |m: &Measured| median(&m.heap);
    let no_more =
        |figure: &dyn Fn(&Measured) -> f64| no_more_target(figure(p), figure(t), at_target);
    row(
        "heap in use (`go_memstats_heap_inuse_bytes`, median)",
        false,
        &|m| mib(heap(m)),
        ratio(&heap),
        no_more(&heap),
    );
    let heap_above = |m: &Measured| heap(m) - base_heap;
    row(
        "heap in use above the baseline",
        true,
        &|m| mib(heap_above(m)),
        ratio(&heap_above),
        none(),
    );
    let goal = |m: &Measured| median(&m.heap_goal);
    row(
        "GC heap goal (`go_memstats_next_gc_bytes`, median)",
        false,
        &|m| mib(goal(m)),
        ratio(&goal),
        no_more(&goal),
    );
    let rss = |m: &Measured| median(&m.rss);
    row(
        "resident memory (VmRSS, median)",
        false,
        &|m| mib(rss(m)),
        ratio(&rss),
        none(),
    );
    let series = |m: &Measured| m.head_series;
    let head = "head series (`prometheus_tsdb_head_series`)";
    row(
        head,
        false,
        &|m| m.head_series.to_string(),
        ratio(&series),
        no_more(&series),
    );
    let series_above = |m: &Measured| m.head_series - base_series;
    row(
        "head series above the baseline",
        true,
        &|m| series_above(m).to_string(),
        ratio(&series_above),
        none(),
    );
    let at_start = |m: &Measured| m.load_at_start.unwrap_or(f64::NAN);
    row(
        "rule load at start (`rules=` of the config load log line)",
        false,
        &|m| seconds(at_start(m)),
        ratio(&at_start),
        ratio_target(at_start(t) / at_start(p), TARGET_LOAD, at_target, ""),
    );
    row(
        "rule load at reload (`rules=`, median)",
        false,
        &|m| seconds(reload_median(m)),
        ratio(&reload_median),
        ratio_target(
            reload_median(t) / reload_median(p),
            TARGET_LOAD,
            at_target,
            "",
        ),
    );
    row(
        "process start → `/-/ready`",
        false,
        &|m| seconds(m.ready),
        ratio(&|m| m.ready),
        none(),
    );
    let reload = |m: &Measured| seconds(median(&m.reload_requests));
    row(
        "`POST /-/reload` round trip (median)",
        false,
        &reload,
        none(),
        none(),
    );
    let alerts = |m: &Measured| format!("{} ({})", m.alerts, m.alerts_in_maintenance);
    let label = "alerts pending or firing (`count(ALERTS)`), of them tenants in maintenance";
    row(label, true, &alerts, none(), none());
    row(
        "rule evaluation failures",
        true,
        &|m| m.failures.to_string(),
        none(),
        none(),
    );
    md.push('\n');
    let list = |items: &[(String, f64)]| {
        let items: Vec<String> = items
            .iter()
            .map(|(name, time)| format!("`{name}` {}", seconds(*time)))
            .collect();
        items.join(", ")
    };
    for m in round
        .results
        .iter()
        .filter(|m| m.variant != BASELINE && m.variant != PER_TENANT)
    {
        let _ = writeln!(
            md,
            "Last evaluation in {}, by group: {}; costliest rules: {}.\n",
            m.variant,
            list(&m.rules.group_times),
            list(&m.rules.rule_times)
        );
    }
    for m in round
        .results
        .iter()
        .filter(|m| m.variant != BASELINE && m.variant != PER_TENANT)
    {
        md.push_str(&alerts_in_repetitions(round, &m.variant));
    }
    let groups: Vec<f64> = t.rules.group_times.iter().map(|g| g.1).collect();
    let slowest = groups.iter().copied().fold(f64::NAN, f64::max);
    let _ = writeln!(
        md,
        "Last evaluation in per-tenant: median group {}, slowest group {}. Load average at the \
         end of the round: {}.\n",
        seconds(median(&groups)),
        seconds(slowest),
        round.load_average_after
    );
}

/// [`same_alerts`] in every repetition: once if all repetitions agree, else one by one.
fn alerts_in_repetitions(round: &Round, variant: &str) -> String {
    let lines: Vec<String> = round
        .repetitions
        .iter()
        .filter_map(|results| {
            let find = |v: &str| results.iter().find(|m| m.variant == v);
            Some(same_alerts(round, find(variant)?, find(PER_TENANT)?))
        })
        .collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => only.clone(),
        [first, ..] if lines.iter().all(|line| line == first) => {
            format!("In each of the {} repetitions: {first}", lines.len())
        }
        _ => lines
            .iter()
            .enumerate()
            .map(|(i, line)| format!("Repetition {}: {line}", i + 1))
            .collect(),
    }
}

/// Whether a variant and per-tenant raise the same alerts, tenants in maintenance left out.
fn same_alerts(round: &Round, other: &Measured, per_tenant: &Measured) -> String {
    let name = if other.variant == PACKS {
        "Packs".to_owned()
    } else {
        format!("`{}`", other.variant)
    };
    let outside = |m: &Measured| -> BTreeSet<Alert> {
        m.alert_set
            .iter()
            .filter(|a| !round.maintenance.contains(&a.1))
            .cloned()
            .collect()
    };
    let (o, t) = (outside(other), outside(per_tenant));
    let show = |only: Vec<&Alert>| {
        if only.is_empty() {
            return "none".to_owned();
        }
        let examples: Vec<String> = only
            .iter()
            .take(3)
            .map(|(name, tenant, severity, queue)| {
                let queue = if queue.is_empty() {
                    String::new()
                } else {
                    format!(" queue={queue}")
                };
                format!("`{name}` {tenant} {severity}{queue}")
            })
            .collect();
        format!("{} (e.g. {})", only.len(), examples.join(", "))
    };
    let (only_other, only_per_tenant): (Vec<&Alert>, Vec<&Alert>) =
        (o.difference(&t).collect(), t.difference(&o).collect());
    if only_other.is_empty() && only_per_tenant.is_empty() {
        format!(
            "{name} and per-tenant raise the same {} alerts (by name, tenant, severity and queue; \
             tenants in maintenance left out).\n\n",
            o.len()
        )
    } else {
        format!(
            "{name} and per-tenant differ (tenants in maintenance left out): only in {} {}, only \
             in per-tenant {}.\n\n",
            other.variant,
            show(only_other),
            show(only_per_tenant)
        )
    }
}

fn method(r: &Results, md: &mut String) {
    let a = &r.args;
    md.push_str(
        "### What was measured\n\n\
         - **baseline**: a Prometheus without rules scraping the same two targets; its CPU, heap \
         and series are subtracted where a row says \"above the baseline\".\n\
         - **packs**: the pack files as `dynalert rules render` writes them (`dynalert_rules::render`), \
         as shipped: one alerting rule per alert for all tenants (the key's normalized signal, \
         inline or recorded as the pack declares it; threshold looked up inline with \
         `max by(tenant)`; `unless` maintenance; metadata join; per-queue match with tenant-wide \
         fallback; the `severity`/`metric_group`/`pack` labels set by `label_replace` on the \
         firing rows), and the recording rules of the signals the pack records.\n\
         - **per-tenant**: the hand-written equivalent, generated per round: one file and group \
         per tenant; for every alert of the packs (warning and critical tier) for which `dynalert \
         serve` serves the tenant a threshold row, one alerting rule `(<the key's normalization \
         expression with tenant=\"…\" in every selector>) > <the tenant's number>`. Disabled \
         keys have no rule; a per-queue row gets a rule on that queue's series and the \
         tenant-wide number a rule on the other queues (`key!~\"…\"`). Same alert names, `for:`, \
         `severity`/`metric_group`/`pack` labels (under `labels:`, as hand-written rules have \
         them); the tenant's metadata (and on a per-queue rule its queue) as static labels. No \
         maintenance (tenants in maintenance keep alerting, counted in brackets in the alerts \
         row) and no recording rules.\n",
    );
    if a.reference {
        md.push_str(
            "- **reference**: the reference project's layout: the packs plus a recording rule per \
             threshold lookup (`tenant:alert_threshold:<key>:<severity>`), the alerts reading the \
             recorded series.\n",
        );
    }
    if a.floor {
        md.push_str(
            "- **floor**: a lower bound for any layout of the packs: the packs' alert rules with \
             each `expr` replaced by `(<the key's normalization expression>) <op> <the key's \
             default>` inside the packs' own `label_replace` calls: the same groups, alert names, \
             `for:`, labels and annotations, one rule per alert for all tenants, and no threshold \
             lookup, maintenance, metadata or per-queue matching. It fires on the defaults, so its \
             alerts differ from the packs'.\n",
        );
    }
    for extra in &a.extra {
        if let Some((name, glob)) = extra.split_once('=') {
            let _ = writeln!(md, "- **{name}** (`--extra`): the rule files `{glob}`.");
        }
    }
    let _ = writeln!(
        md,
        "- Live series: a synthetic exporter (the testkit's static exporter in the \
         dynalert-bench process, rendered again every interval) serves, for every tenant, two \
         mysqld_exporter and two redis_exporter instances' worth of the series the packs read \
         (the `tenant` label in the exposition, scraped with `honor_labels`), about {:.0} % of \
         values above the default thresholds, 2 % of instances down. Every Prometheus scrapes \
         the same two targets (the synthetic exporter and `dynalert serve`) and evaluates its \
         rules at the same interval; the row \"evaluation interval of the rule groups\" shows \
         what each one actually ran.\n\
         - Measurement: one Prometheus at a time (the testkit's launcher, start → ready polled \
         every 50 ms), alone from its start to its last reload: nothing else of the benchmark \
         competes with it for the CPUs, and no instance is paused, so `rate(…[5m])` always \
         reads a full window of samples. The window is taken in slices of {} s; a slice during \
         which processes outside the benchmark used more than {:.0} % of a core is thrown away \
         and measured again (for at most {} s per Prometheus, after which noisy slices count \
         and the table says so). The row \"CPU of other processes\" is that outside load over \
         the slices kept.",
        P_HIGH * 100.0,
        a.slice_secs,
        a.quiet_cores * 100.0,
        a.max_wait_secs
    );
    if a.repeat > 1 {
        let _ = writeln!(
            md,
            "- Repetitions: every variant measured {} times per round, each time by a new \
             Prometheus with an empty data directory, the variants in reverse order every other \
             repetition. The tables show medians over the repetitions (of the sampled figures, \
             over all samples of all repetitions); the rows \"… each repetition\" show every \
             repetition on its own, its CPU minus the baseline of the same repetition, and the \
             ratio of the packs and per-tenant of the same repetition.",
            a.repeat
        );
    }
    let history = if a.history_secs >= 300 {
        "`rate(…[5m])` reads a full window, as in a Prometheus that has been running for a while."
    } else {
        "**Less than 5 minutes**: `rate(…[5m])` still underestimates rates and reads fewer \
         samples than in steady state, which lowers the raw-sample work both variants share and \
         so flatters the ratios."
    };
    let _ = writeln!(
        md,
        "- History: every Prometheus scraped and evaluated for {} s before its measurement. {history}",
        a.history_secs
    );
    md.push_str(
        "- Evaluation time: Σ `prometheus_rule_group_last_duration_seconds` over the groups, \
         sampled once per interval over the window; the median of the samples. It is wall time: \
         groups evaluated at the same moment (1,000 per-tenant groups on 2 cores) stretch each \
         other's durations. CPU is the steadier measure of work.\n\
         - CPU: Δ`process_cpu_seconds_total` / Δt over the window, minus the baseline's.\n\
         - Memory: the heap in use follows the GC cycle (tens of MiB either way between \
         samples); the GC heap goal (twice the live heap after the last collection) is steadier. \
         Both, and RSS, are medians over the window's samples.\n\
         - Rule load: the `rules=` duration Prometheus logs with \"Completed loading of \
         configuration file\" at start and after each `POST /-/reload` (unchanged files are \
         parsed again; unchanged groups keep running). Targets (≥ 5× cheaper evaluation and \
         CPU, no more memory or series, ≥ 50× faster load) are the issue's, at 1,000 tenants.\n",
    );
}

/// `a ÷ b` as `12.3×`.
fn times(a: f64, b: f64) -> String {
    match a / b {
        ratio if !ratio.is_finite() || b == 0.0 => "–".to_owned(),
        ratio if ratio >= 10.0 => format!("{ratio:.0}×"),
        ratio => format!("{ratio:.2}×"),
    }
}

/// `≥ 5×: met` at the target's tenant count, the bare target below it.
fn ratio_target(ratio: f64, at_least: f64, at_target: bool, aim: &str) -> String {
    if !at_target {
        return format!("≥ {at_least}×{aim} at 1,000 tenants");
    }
    let outcome = match ratio {
        r if !r.is_finite() => "not measured",
        r if r >= at_least => "met",
        _ => "**missed**",
    };
    format!("≥ {at_least}×{aim}: {outcome}")
}

fn no_more_target(packs: f64, per_tenant: f64, at_target: bool) -> String {
    match (at_target, packs <= per_tenant) {
        (false, _) => "packs ≤ per-tenant at 1,000 tenants".to_owned(),
        (true, true) => "packs ≤ per-tenant: met".to_owned(),
        (true, false) => "packs ≤ per-tenant: **missed**".to_owned(),
    }
}

/// ` (repetitions 3.9–4.4×)` for two repetitions or more, nothing for one.
fn range_of_repetitions(ratios: &[f64]) -> String {
    if ratios.len() < 2 {
        return String::new();
    }
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(" (repetitions {}–{})", times(lo, 1.0), times(hi, 1.0))
}

fn list_of(values: &[f64], format: fn(f64) -> String) -> String {
    values
        .iter()
        .map(|&v| format(v))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cores(c: f64) -> String {
    format!("{:.1} % of a core", c * 100.0)
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}
