//! `--repeat N`: every variant of a round measured N times, each time by a new Prometheus.
//!
//! One Prometheus measured once is a weak verdict on a shared VM: at 1,000 tenants the same
//! per-tenant rules used 74 %, 96 % and 135 % of a core in three runs of one day. The report
//! therefore shows the medians over the repetitions and, next to them, the ratio of each
//! repetition on its own (packs and per-tenant of the same repetition, each minus that
//! repetition's baseline), so a reader sees how firm a verdict is.

use super::{BASELINE, Measured, PACKS, PER_TENANT, Round};
use crate::support::median;

/// The order of the variants in repetition `k` (from 1): as given in odd repetitions,
/// reversed in even ones, so that a drift of the machine over the run (a neighbour starting
/// work) does not always fall on the variant measured last.
pub fn order<T: Clone>(variants: &[T], k: usize) -> Vec<T> {
    let mut ordered = variants.to_vec();
    if k.is_multiple_of(2) {
        ordered.reverse();
    }
    ordered
}

/// The repetitions of a round as one measurement per variant, in the variants' order of the
/// first repetition: the median of each single figure (CPU, head series, alert counts, start
/// and load at start), every sample of the sampled ones (evaluation time, heap, load at reload),
/// the sum of the counts (slices thrown away, failures, missed iterations). Rule counts and
/// alerts come from the first repetition: the report compares each repetition's alerts itself.
pub fn combine(repetitions: &[Vec<Measured>]) -> Vec<Measured> {
    let Some(first) = repetitions.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|m| combine_variant(m, &of_variant(repetitions, &m.variant)))
        .collect()
}

/// `variant`'s measurement in each repetition that has one, in order.
pub fn of_variant<'a>(repetitions: &'a [Vec<Measured>], variant: &str) -> Vec<&'a Measured> {
    repetitions
        .iter()
        .filter_map(|results| results.iter().find(|m| m.variant == variant))
        .collect()
}

fn combine_variant(first: &Measured, all: &[&Measured]) -> Measured {
    let single =
        |figure: fn(&Measured) -> f64| median(&all.iter().map(|m| figure(m)).collect::<Vec<f64>>());
    let samples = |figure: fn(&Measured) -> &Vec<f64>| -> Vec<f64> {
        all.iter().flat_map(|m| figure(m).iter().copied()).collect()
    };
    let loads_at_start: Vec<f64> = all.iter().filter_map(|m| m.load_at_start).collect();
    Measured {
        variant: first.variant.clone(),
        ready: single(|m| m.ready),
        load_at_start: (!loads_at_start.is_empty()).then(|| median(&loads_at_start)),
        load_at_reload: samples(|m| &m.load_at_reload),
        reload_requests: samples(|m| &m.reload_requests),
        rules: first.rules.clone(),
        eval: samples(|m| &m.eval),
        cpu: single(|m| m.cpu),
        others: single(|m| m.others),
        discarded: all.iter().map(|m| m.discarded).sum(),
        noisy: all.iter().map(|m| m.noisy).sum(),
        heap: samples(|m| &m.heap),
        heap_goal: samples(|m| &m.heap_goal),
        rss: samples(|m| &m.rss),
        head_series: single(|m| m.head_series),
        failures: all.iter().map(|m| m.failures).sum(),
        missed: all.iter().map(|m| m.missed).sum(),
        alerts: single(|m| m.alerts),
        alerts_in_maintenance: single(|m| m.alerts_in_maintenance),
        alert_set: first.alert_set.clone(),
    }
}

impl Round {
    /// CPU above the baseline of `variant` in each repetition, the baseline of the same
    /// repetition subtracted.
    pub fn cpu_each(&self, variant: &str) -> Vec<f64> {
        self.repetitions
            .iter()
            .filter_map(|results| {
                let m = results.iter().find(|m| m.variant == variant)?;
                let base = results
                    .iter()
                    .find(|m| m.variant == BASELINE)
                    .map_or(0.0, |b| b.cpu);
                Some(m.cpu - base)
            })
            .collect()
    }

    /// The median evaluation time per cycle of `variant` in each repetition.
    pub fn eval_each(&self, variant: &str) -> Vec<f64> {
        of_variant(&self.repetitions, variant)
            .iter()
            .map(|m| median(&m.eval))
            .collect()
    }

    /// Per-tenant ÷ packs of a figure (`Round::cpu_each`, `Round::eval_each`) in each
    /// repetition: how many times the packs are cheaper in each.
    pub fn cheaper_each(&self, each: fn(&Round, &str) -> Vec<f64>) -> Vec<f64> {
        let (per_tenant, packs) = (each(self, PER_TENANT), each(self, PACKS));
        per_tenant.iter().zip(&packs).map(|(t, p)| t / p).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::measure::Rules;
    use super::super::synthetic::Conf;
    use super::*;

    fn measured(variant: &str, cpu: f64, eval: &[f64], discarded: usize) -> Measured {
        Measured {
            variant: variant.to_owned(),
            ready: 0.1,
            load_at_start: Some(0.01),
            load_at_reload: vec![0.012],
            reload_requests: vec![0.013],
            rules: Rules::default(),
            eval: eval.to_vec(),
            cpu,
            others: 0.01,
            discarded,
            noisy: 0,
            heap: vec![1.0],
            heap_goal: vec![2.0],
            rss: vec![3.0],
            head_series: 100.0,
            failures: 0.0,
            missed: 1.0,
            alerts: 5.0,
            alerts_in_maintenance: 0.0,
            alert_set: BTreeSet::new(),
        }
    }

    #[test]
    fn even_repetitions_measure_the_variants_in_reverse() {
        assert_eq!(order(&[1, 2, 3], 1), [1, 2, 3]);
        assert_eq!(order(&[1, 2, 3], 2), [3, 2, 1]);
        assert_eq!(order(&[1, 2, 3], 3), [1, 2, 3]);
    }

    #[test]
    fn repetitions_combine_into_medians_samples_and_sums() {
        // The second repetition ran in reverse order: combining matches variants, not places.
        let repetitions = vec![
            vec![
                measured(BASELINE, 0.04, &[], 0),
                measured(PACKS, 0.30, &[1.0, 1.2], 1),
            ],
            vec![
                measured(PACKS, 0.20, &[0.9], 0),
                measured(BASELINE, 0.05, &[], 2),
            ],
            vec![
                measured(BASELINE, 0.03, &[], 0),
                measured(PACKS, 0.25, &[1.1], 0),
            ],
        ];
        let combined = combine(&repetitions);
        assert_eq!(combined.len(), 2);
        assert_eq!(combined[0].variant, BASELINE);
        assert!((combined[0].cpu - 0.04).abs() < 1e-12);
        assert_eq!(combined[0].discarded, 2);
        let packs = &combined[1];
        assert_eq!(packs.variant, PACKS);
        assert!((packs.cpu - 0.25).abs() < 1e-12);
        assert_eq!(packs.eval, [1.0, 1.2, 0.9, 1.1]);
        assert_eq!(packs.load_at_reload.len(), 3);
        assert!((packs.missed - 3.0).abs() < 1e-12);
        assert_eq!(packs.discarded, 1);
    }

    #[test]
    fn each_repetition_subtracts_its_own_baseline() {
        let repetitions = vec![
            vec![
                measured(BASELINE, 0.04, &[], 0),
                measured(PACKS, 0.30, &[], 0),
                measured(PER_TENANT, 1.04, &[], 0),
            ],
            vec![
                measured(PER_TENANT, 0.70, &[], 0),
                measured(PACKS, 0.30, &[], 0),
                measured(BASELINE, 0.10, &[], 0),
            ],
        ];
        let round = Round {
            tenants: 10,
            load_average_after: String::new(),
            conf: Conf::default(),
            threshold_rows: 0,
            dynalert_series: 0,
            exporter_series: 0,
            maintenance: BTreeSet::new(),
            results: combine(&repetitions),
            repetitions,
        };
        let close = |got: &[f64], want: &[f64]| {
            got.len() == want.len() && got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-9)
        };
        let (packs, per_tenant) = (round.cpu_each(PACKS), round.cpu_each(PER_TENANT));
        assert!(close(&packs, &[0.26, 0.20]), "{packs:?}");
        assert!(close(&per_tenant, &[1.00, 0.60]), "{per_tenant:?}");
        assert!(close(
            &round.cheaper_each(Round::cpu_each),
            &[1.00 / 0.26, 3.0]
        ));
    }
}
