//! The markdown report: a summary line per tenant count, a table per round, the method.

use super::*;

pub(super) struct Report<'a> {
    pub(super) args: &'a BenchRulesArgs,
    pub(super) load_average: String,
    pub(super) prometheus_version: String,
    pub(super) catalogue: &'a Catalogue,
    pub(super) rounds: Vec<Round>,
    pub(super) took: Duration,
}

impl Report<'_> {
    pub(super) fn markdown(&self) -> String {
        let mut md = String::from("## Rule packs benchmark\n\n");
        let command: Vec<String> = std::env::args().skip(1).collect();
        let _ = writeln!(md, "- command: `cargo xtask {}`", command.join(" "));
        let _ = writeln!(md, "- date: {}", date());
        let _ = writeln!(md, "- machine: {}", machine());
        let _ = writeln!(md, "- load average at the start: {}", self.load_average);
        let _ = writeln!(md, "- {}", self.prometheus_version);
        let _ = writeln!(
            md,
            "- packs: {} ({} keys, {} alerting + {} recording rules as rendered); \
             scrape and evaluation interval {} s; {} s of history, then a {} s measurement \
             window per Prometheus; {} reloads per Prometheus; {}whole run {:.0} s\n",
            self.args.packs.join(", "),
            self.catalogue.keys.len(),
            self.catalogue.alerts,
            self.catalogue.recording,
            self.args.interval_secs,
            self.args.history_secs,
            self.args.settle_secs,
            self.args.reloads,
            if self.args.repeat > 1 {
                format!("every variant measured {} times; ", self.args.repeat)
            } else {
                String::new()
            },
            self.took.as_secs_f64()
        );
        self.summary(&mut md);
        for round in &self.rounds {
            self.round(&mut md, round);
        }
        md.push_str(&self.method());
        md
    }

    /// One line per tenant count: the figures the issue has targets for.
    pub(super) fn summary(&self, md: &mut String) {
        md.push_str(
            "| tenants | evaluation time per cycle | CPU above the baseline | GC heap goal | \
             head series | rule load at reload |\n|---|---|---|---|---|---|\n",
        );
        for round in &self.rounds {
            let (Some(p), Some(t)) = (round.get(Variant::Packs), round.get(Variant::PerTenant))
            else {
                continue;
            };
            let base = round.get(Variant::Baseline);
            let cpu = |m: &Measured| m.cpu - base.map_or(0.0, |b| b.cpu);
            let pair = |a: String, b: String, ratio: String| format!("{a} / {b} ({ratio})");
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                round.tenants,
                pair(
                    seconds(median(&p.eval)),
                    seconds(median(&t.eval)),
                    times(median(&t.eval), median(&p.eval))
                ) + &range_of_repetitions(&round.cheaper_each(Round::eval_each)),
                pair(cores(cpu(p)), cores(cpu(t)), times(cpu(t), cpu(p)))
                    + &range_of_repetitions(&round.cheaper_each(Round::cpu_each)),
                pair(
                    mib(median(&p.heap_goal)),
                    mib(median(&t.heap_goal)),
                    times(median(&t.heap_goal), median(&p.heap_goal))
                ),
                pair(
                    p.head_series.to_string(),
                    t.head_series.to_string(),
                    times(t.head_series, p.head_series)
                ),
                pair(
                    opt_duration(reload_median(p)),
                    opt_duration(reload_median(t)),
                    times(secs(reload_median(t)), secs(reload_median(p)))
                ),
            );
        }
        md.push_str(
            "\nEach cell: packs / per-tenant (how many times the packs are cheaper: per-tenant ÷ \
             packs, above 1× means the packs cost less).",
        );
        if self.args.repeat > 1 {
            let _ = write!(
                md,
                " Medians over {} repetitions; in brackets, the lowest and highest ratio of a \
                 single repetition.",
                self.args.repeat
            );
        }
        md.push_str("\n\n");
    }

    pub(super) fn round(&self, md: &mut String, round: &Round) {
        let n = round.tenants;
        let _ = writeln!(md, "### {n} tenants\n");
        let c = &round.conf;
        let _ = writeln!(
            md,
            "Synthetic exporter: {} series ({n} tenants × {INSTANCES} instances per service); \
             dynalert serve: {} series, {} `user_threshold` rows (tenant files: {} custom values, \
             {} disabled keys, {} raised critical tiers, {} per-queue rows, metadata on {} \
             tenants, maintenance on {}).\n",
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
        let columns: Vec<&Measured> = round.results.iter().collect();
        md.push_str("| metric |");
        for m in &columns {
            let _ = write!(md, " {} |", m.variant.name());
        }
        md.push_str(" per-tenant ÷ packs | target |\n|---|");
        for _ in &columns {
            md.push_str("---|");
        }
        md.push_str("---|---|\n");
        let (Some(packs), Some(per_tenant)) =
            (round.get(Variant::Packs), round.get(Variant::PerTenant))
        else {
            return;
        };
        let base_cpu = round.get(Variant::Baseline).map_or(0.0, |b| b.cpu);
        let base_heap = round
            .get(Variant::Baseline)
            .map_or(0.0, |b| median(&b.heap));
        let base_series = round.get(Variant::Baseline).map_or(0.0, |b| b.head_series);
        let at_target = n >= TARGET_TENANTS;
        let mut row =
            |metric: &str, cell: &dyn Fn(&Measured) -> String, ratio: String, target: String| {
                let _ = write!(md, "| {metric} |");
                for m in &columns {
                    let _ = write!(md, " {} |", cell(m));
                }
                let _ = writeln!(md, " {ratio} | {target} |");
            };
        let none = || "–".to_owned();
        let rules = |m: &Measured| m.variant != Variant::Baseline;
        // A figure of each repetition, listed: `each` is `Round::cpu_each` or `Round::eval_each`.
        let repetition_cell = |each: fn(&Round, &Variant) -> Vec<f64>,
                               format: fn(f64) -> String| {
            move |m: &Measured| {
                if rules(m) {
                    list_of(&each(round, &m.variant), format)
                } else {
                    none()
                }
            }
        };
        row(
            "rule groups / alerting + recording rules",
            &|m| {
                let r = &m.rules;
                format!("{} / {} + {}", r.groups, r.alerting, r.recording)
            },
            times(
                (per_tenant.rules.alerting + per_tenant.rules.recording) as f64,
                (packs.rules.alerting + packs.rules.recording) as f64,
            ),
            none(),
        );
        let global = self.args.interval_secs.to_string();
        row(
            "evaluation interval of the rule groups",
            &|m| {
                if !rules(m) {
                    return none();
                }
                let mut intervals: Vec<String> = m
                    .rules
                    .intervals
                    .iter()
                    .map(|(interval, groups)| {
                        if m.rules.intervals.len() == 1 {
                            format!("{interval} s")
                        } else {
                            format!("{interval} s ({groups} groups)")
                        }
                    })
                    .collect();
                if m.rules.intervals.keys().any(|i| *i != global) {
                    intervals.push("**not the scrape interval**".to_owned());
                }
                intervals.join(", ")
            },
            none(),
            format!("{global} s for every variant"),
        );
        row(
            "evaluation time per cycle (Σ last group duration, median)",
            &|m| {
                if rules(m) {
                    seconds(median(&m.eval))
                } else {
                    none()
                }
            },
            times(median(&per_tenant.eval), median(&packs.eval)),
            ratio_target(
                median(&per_tenant.eval) / median(&packs.eval),
                TARGET_EVAL,
                at_target,
                " (aim 10×)",
            ),
        );
        if round.repetitions.len() > 1 {
            row(
                "evaluation time per cycle, median of each repetition",
                &repetition_cell(Round::eval_each, seconds),
                list_of(&round.cheaper_each(Round::eval_each), |r| times(r, 1.0)),
                none(),
            );
        }
        row(
            "evaluation time per cycle, min – max of the samples",
            &|m| {
                if rules(m) {
                    let (lo, hi) = min_max(&m.eval);
                    format!("{} – {}", seconds(lo), seconds(hi))
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "group iterations missed in the window",
            &|m| {
                if rules(m) {
                    format!("{}", m.missed)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "CPU (rate of `process_cpu_seconds_total`)",
            &|m| cores(m.cpu),
            none(),
            none(),
        );
        let cpu_ratio = (per_tenant.cpu - base_cpu) / (packs.cpu - base_cpu);
        row(
            "CPU above the baseline",
            &|m| {
                if rules(m) {
                    cores(m.cpu - base_cpu)
                } else {
                    none()
                }
            },
            times(per_tenant.cpu - base_cpu, packs.cpu - base_cpu),
            ratio_target(cpu_ratio, TARGET_CPU, at_target, " (aim 10×)"),
        );
        if round.repetitions.len() > 1 {
            row(
                "CPU above the baseline, each repetition (its own baseline subtracted)",
                &repetition_cell(Round::cpu_each, cores_short),
                list_of(&round.cheaper_each(Round::cpu_each), |r| times(r, 1.0)),
                none(),
            );
        }
        row(
            "CPU of other processes on the machine during the window",
            &|m| cores(m.others),
            none(),
            none(),
        );
        if !self.args.concurrent {
            row(
                "slices thrown away (machine busy) / kept although busy",
                &|m| format!("{} / {}", m.discarded, m.noisy),
                none(),
                none(),
            );
        }
        row(
            "heap in use (`go_memstats_heap_inuse_bytes`, median)",
            &|m| mib(median(&m.heap)),
            times(median(&per_tenant.heap), median(&packs.heap)),
            no_more_target(median(&packs.heap), median(&per_tenant.heap), at_target),
        );
        row(
            "heap in use above the baseline",
            &|m| {
                if rules(m) {
                    mib(median(&m.heap) - base_heap)
                } else {
                    none()
                }
            },
            times(
                median(&per_tenant.heap) - base_heap,
                median(&packs.heap) - base_heap,
            ),
            none(),
        );
        row(
            "GC heap goal (`go_memstats_next_gc_bytes`, median)",
            &|m| mib(median(&m.heap_goal)),
            times(median(&per_tenant.heap_goal), median(&packs.heap_goal)),
            no_more_target(
                median(&packs.heap_goal),
                median(&per_tenant.heap_goal),
                at_target,
            ),
        );
        row(
            "resident memory (VmRSS, median)",
            &|m| mib(median(&m.rss)),
            times(median(&per_tenant.rss), median(&packs.rss)),
            none(),
        );
        row(
            "head series (`prometheus_tsdb_head_series`)",
            &|m| format!("{}", m.head_series),
            times(per_tenant.head_series, packs.head_series),
            no_more_target(packs.head_series, per_tenant.head_series, at_target),
        );
        row(
            "head series above the baseline",
            &|m| {
                if rules(m) {
                    format!("{}", m.head_series - base_series)
                } else {
                    none()
                }
            },
            times(
                per_tenant.head_series - base_series,
                packs.head_series - base_series,
            ),
            none(),
        );
        let load_ratio = secs(reload_median(per_tenant)) / secs(reload_median(packs));
        row(
            "rule load at start (`rules=` of the config load log line)",
            &|m| opt_duration(m.load_at_start),
            times(secs(per_tenant.load_at_start), secs(packs.load_at_start)),
            ratio_target(
                secs(per_tenant.load_at_start) / secs(packs.load_at_start),
                TARGET_LOAD,
                at_target,
                "",
            ),
        );
        row(
            "rule load at reload (`rules=`, median)",
            &|m| opt_duration(reload_median(m)),
            times(secs(reload_median(per_tenant)), secs(reload_median(packs))),
            ratio_target(load_ratio, TARGET_LOAD, at_target, ""),
        );
        row(
            "process start → `/-/ready`",
            &|m| ms(m.ready),
            times(per_tenant.ready.as_secs_f64(), packs.ready.as_secs_f64()),
            none(),
        );
        row(
            "`POST /-/reload` round trip (median)",
            &|m| {
                let mut requests: Vec<f64> = m
                    .reload_requests
                    .iter()
                    .map(Duration::as_secs_f64)
                    .collect();
                requests.sort_by(f64::total_cmp);
                seconds(median(&requests))
            },
            none(),
            none(),
        );
        row(
            "alerts pending or firing (`count(ALERTS)`), of them tenants in maintenance",
            &|m| {
                if rules(m) {
                    format!("{} ({})", m.alerts, m.alerts_in_maintenance)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        row(
            "rule evaluation failures",
            &|m| {
                if rules(m) {
                    format!("{}", m.failures)
                } else {
                    none()
                }
            },
            none(),
            none(),
        );
        md.push('\n');
        for m in &round.results {
            if !matches!(m.variant, Variant::Baseline | Variant::PerTenant) {
                let list = |items: &[(String, f64)]| {
                    let items: Vec<String> = items
                        .iter()
                        .map(|(name, time)| format!("`{name}` {}", seconds(*time)))
                        .collect();
                    items.join(", ")
                };
                let _ = writeln!(
                    md,
                    "Last evaluation in {}, by group: {}; costliest rules: {}.\n",
                    m.variant.name(),
                    list(&m.rules.group_times),
                    list(&m.rules.rule_times)
                );
            }
        }
        for m in &round.results {
            if !matches!(m.variant, Variant::Baseline | Variant::PerTenant) {
                md.push_str(&alerts_in_repetitions(round, &m.variant));
            }
        }
        if let Some(per_tenant) = round.get(Variant::PerTenant) {
            let times: Vec<f64> = per_tenant.rules.group_times.iter().map(|g| g.1).collect();
            let (_, slowest) = min_max(&times);
            let _ = writeln!(
                md,
                "Last evaluation in per-tenant: median group {}, slowest group {}. Load \
                 average at the end of the round: {}.\n",
                seconds(median(&times)),
                seconds(slowest),
                round.load_average_after
            );
        }
    }

    pub(super) fn method(&self) -> String {
        let mut md = String::from("### What was measured\n\n");
        md.push_str(
            "- **baseline**: a Prometheus without rules scraping the same two targets; its CPU, \
             heap and series are subtracted where a row says \"above the baseline\".\n\
             - **packs**: the files of `dynalert rules render` for the packs, as shipped: one \
             alerting rule per alert for all tenants (the key's normalized signal, inline or \
             recorded as the pack declares it; threshold looked up inline with \
             `max by(tenant)`; `unless` maintenance; metadata join; per-queue match with \
             tenant-wide fallback; the `severity`/`metric_group`/`pack` labels set by \
             `label_replace` on the firing rows), and the recording rules of the signals the \
             pack records.\n\
             - **per-tenant**: the hand-written equivalent, generated per round: one file and \
             group per tenant; for every alert of the packs (warning and critical tier) for \
             which `dynalert serve` serves the tenant a threshold row, one alerting rule \
             `(<the key's normalization expression with tenant=\"…\" in every selector>) > \
             <the tenant's number>`. Disabled keys have no rule; a per-queue row gets a rule on \
             that queue's series and the tenant-wide number a rule on the other queues \
             (`key!~\"…\"`). Same alert names, `for:`, `severity`/`metric_group`/`pack` labels \
             (under `labels:`, as hand-written rules have them); the tenant's metadata (and \
             on a per-queue rule its queue) as static labels. No maintenance (tenants in \
             maintenance keep alerting, counted in brackets in the alerts row) and no \
             recording rules.\n",
        );
        if self.args.reference {
            md.push_str(
                "- **reference**: the reference project's layout: the packs plus a recording \
                 rule per threshold lookup (`tenant:alert_threshold:<key>:<severity>`), the \
                 alerts reading the recorded series.\n",
            );
        }
        if self.args.floor {
            md.push_str(
                "- **floor**: a lower bound for any layout of the packs: the packs' alert files \
                 with each rule's `expr` replaced by `(<the key's normalization expression>) <op> <the key's \
                 default>`: the same groups, alert names, `for:`, labels and annotations, one rule \
                 per alert for all tenants, and no threshold lookup, maintenance, metadata or \
                 per-queue matching. It fires on the defaults, so its alerts differ from the \
                 packs'.\n",
            );
        }
        for extra in &self.args.extra {
            if let Some((name, glob)) = extra.split_once('=') {
                let _ = writeln!(md, "- **{name}** (`--extra`): the rule files `{glob}`.");
            }
        }
        let _ = writeln!(
            md,
            "- Live series: a synthetic exporter (a thread of the xtask process) serves, for \
             every tenant, two mysqld_exporter and two redis_exporter instances' worth of the \
             series the packs read (the `tenant` label in the exposition, scraped with \
             `honor_labels`), about {:.0} % of values above the default thresholds, 2 % of \
             instances down. Every Prometheus scrapes the same two targets (the synthetic \
             exporter and `dynalert serve`) and evaluates its rules at the same interval; the \
             row \"evaluation interval of the rule groups\" shows what each one actually ran.",
            P_HIGH * 100.0,
        );
        if self.args.concurrent {
            md.push_str(
                "- Measurement: all Prometheus instances of a round are measured at the same \
                 time (`--concurrent`): on a small machine they take CPU from each other.\n",
            );
        } else {
            let _ = writeln!(
                md,
                "- Measurement: one Prometheus at a time, alone from its start to its last \
                 reload (the next one starts after it has stopped): nothing else of the \
                 benchmark competes with it for the 2 cores, and no instance is paused, so \
                 `rate(…[5m])` always reads a full window of samples. The window is taken in \
                 slices of {} s; a slice during which processes outside the benchmark (a \
                 compiler, another job) used more than {:.0} % of a core is thrown away and \
                 measured again (for at most {} s per Prometheus, after which noisy slices \
                 count and the table says so). The row \"CPU of other processes\" is that \
                 outside load over the slices kept.",
                self.args.slice_secs,
                self.args.quiet_cores * 100.0,
                self.args.max_wait_secs
            );
        }
        if self.args.repeat > 1 {
            let _ = writeln!(
                md,
                "- Repetitions: every variant measured {} times per round, each time by a new \
                 Prometheus with an empty data directory, the variants in reverse order every \
                 other repetition. The tables show medians over the repetitions (of the sampled \
                 figures, over all samples of all repetitions); the rows \"… each repetition\" \
                 show every repetition on its own, its CPU minus the baseline of the same \
                 repetition, and the ratio of the packs and per-tenant of the same repetition.",
                self.args.repeat
            );
        }
        let _ = writeln!(
            md,
            "- History: every Prometheus scraped and evaluated for {} s before its \
             measurement. {}",
            self.args.history_secs,
            if self.args.history_secs >= 300 {
                "`rate(…[5m])` reads a full window, as in a Prometheus that has been running for \
                 a while."
            } else {
                "**Less than 5 minutes**: `rate(…[5m])` still underestimates rates and reads \
                 fewer samples than in steady state, which lowers the raw-sample work both \
                 variants share and so flatters the ratios."
            }
        );
        md.push_str(
            "- Evaluation time: Σ `prometheus_rule_group_last_duration_seconds` over the groups, \
             sampled once per interval over the window; the median of the samples. It is wall \
             time: groups evaluated at the same moment (1,000 per-tenant groups on 2 cores) \
             stretch each other's durations. CPU is the steadier measure of work.\n\
             - CPU: Δ`process_cpu_seconds_total` / Δt over the window, minus the baseline's.\n\
             - Memory: the heap in use follows the GC cycle (tens of MiB either way between \
             samples); the GC heap goal (twice the live heap after the last collection) is \
             steadier. Both, and RSS, are medians over the window's samples.\n\
             - Rule load: the `rules=` duration Prometheus logs with \"Completed loading of \
             configuration file\" at start and after each `POST /-/reload` (unchanged files \
             are parsed again; unchanged groups keep running). Targets (≥ 5× cheaper \
             evaluation and CPU, no more memory or series, ≥ 50× faster load) are the issue's, \
             at 1,000 tenants.\n",
        );
        md
    }
}

/// [`same_alerts`] in every repetition: once if all repetitions agree, else repetition by
/// repetition.
fn alerts_in_repetitions(round: &Round, variant: &Variant) -> String {
    let lines: Vec<String> = round
        .repetitions
        .iter()
        .filter_map(|results| {
            let find = |v: &Variant| results.iter().find(|m| m.variant == *v);
            Some(same_alerts(
                round,
                find(variant)?,
                find(&Variant::PerTenant)?,
            ))
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

/// Whether a variant (the packs, the reference, an extra) and per-tenant raise the same alerts,
/// tenants in maintenance left out.
pub(super) fn same_alerts(round: &Round, packs: &Measured, per_tenant: &Measured) -> String {
    let name = match &packs.variant {
        Variant::Packs => "Packs".to_owned(),
        other => format!("`{}`", other.name()),
    };
    let outside = |m: &Measured| -> BTreeSet<Alert> {
        m.alert_set
            .iter()
            .filter(|alert| !round.maintenance.contains(&alert.1))
            .cloned()
            .collect()
    };
    let (p, t) = (outside(packs), outside(per_tenant));
    let show = |only: Vec<&Alert>| {
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
        if only.is_empty() {
            "none".to_owned()
        } else {
            format!("{} (e.g. {})", only.len(), examples.join(", "))
        }
    };
    let only_packs: Vec<&Alert> = p.difference(&t).collect();
    let only_per_tenant: Vec<&Alert> = t.difference(&p).collect();
    if only_packs.is_empty() && only_per_tenant.is_empty() {
        format!(
            "{name} and per-tenant raise the same {} alerts (by name, tenant, severity and \
             queue; tenants in maintenance left out).\n\n",
            p.len()
        )
    } else {
        format!(
            "{name} and per-tenant differ (tenants in maintenance left out): only in {} {}, \
             only in per-tenant {}.\n\n",
            packs.variant.name(),
            show(only_packs),
            show(only_per_tenant)
        )
    }
}

impl Round {
    pub(super) fn get(&self, variant: Variant) -> Option<&Measured> {
        self.results.iter().find(|m| m.variant == variant)
    }
}

pub(super) fn reload_median(m: &Measured) -> Option<Duration> {
    let mut loads = m.load_at_reload.clone();
    loads.sort();
    loads.get(loads.len() / 2).copied()
}

pub(super) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

pub(super) fn min_max(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

pub(super) fn secs(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64())
}

/// `a ÷ b` as `12.3×`.
pub(super) fn times(a: f64, b: f64) -> String {
    let ratio = a / b;
    if ratio.is_finite() && b != 0.0 {
        if ratio >= 10.0 {
            format!("{ratio:.0}×")
        } else {
            format!("{ratio:.2}×")
        }
    } else {
        "–".to_owned()
    }
}

/// `≥ 5×: met` at the target's tenant count, the bare target below it.
pub(super) fn ratio_target(ratio: f64, at_least: f64, at_target: bool, aim: &str) -> String {
    if !at_target {
        return format!("≥ {at_least}×{aim} at 1,000 tenants");
    }
    let outcome = if !ratio.is_finite() {
        "not measured"
    } else if ratio >= at_least {
        "met"
    } else {
        "**missed**"
    };
    format!("≥ {at_least}×{aim}: {outcome}")
}

pub(super) fn no_more_target(packs: f64, per_tenant: f64, at_target: bool) -> String {
    if !at_target {
        return "packs ≤ per-tenant at 1,000 tenants".to_owned();
    }
    let outcome = if packs <= per_tenant {
        "met"
    } else {
        "**missed**"
    };
    format!("packs ≤ per-tenant: {outcome}")
}

pub(super) fn seconds(s: f64) -> String {
    if !s.is_finite() {
        "–".to_owned()
    } else if s >= 1.0 {
        format!("{s:.2} s")
    } else if s >= 0.01 {
        format!("{:.1} ms", s * 1000.0)
    } else {
        format!("{:.2} ms", s * 1000.0)
    }
}

pub(super) fn ms(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

pub(super) fn opt_duration(d: Option<Duration>) -> String {
    d.map_or_else(|| "–".to_owned(), ms)
}

/// ` (repetitions 3.9–4.4×)` for two repetitions or more, nothing for one.
pub(super) fn range_of_repetitions(ratios: &[f64]) -> String {
    if ratios.len() < 2 {
        return String::new();
    }
    let (lo, hi) = min_max(ratios);
    format!(" (repetitions {}–{})", times(lo, 1.0), times(hi, 1.0))
}

/// `a, b, c` of the values formatted by `format`.
pub(super) fn list_of(values: &[f64], format: fn(f64) -> String) -> String {
    let items: Vec<String> = values.iter().map(|&v| format(v)).collect();
    items.join(", ")
}

/// `29.1 %` (of a core), for lists where `cores` would repeat "of a core".
pub(super) fn cores_short(c: f64) -> String {
    format!("{:.1} %", c * 100.0)
}

pub(super) fn cores(c: f64) -> String {
    format!("{:.1} % of a core", c * 100.0)
}

pub(super) fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}
