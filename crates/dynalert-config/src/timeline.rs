//! When each tenant's resolved values next change by the clock alone: a schedule window opens
//! or closes, a maintenance or a threshold expires. The model does not change then, but its
//! outputs must; [`Timeline::take_due`] names the tenants whose time came, for the
//! [`ModelDiff`]'s `due`, so every output reacts to the clock the way it reacts to an edit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};

use crate::diff::ModelDiff;
use crate::model::Model;
use crate::resolve::resolve_tenant;

#[derive(Default)]
pub struct Timeline {
    by_instant: BTreeMap<DateTime<Utc>, BTreeSet<String>>,
    of_tenant: HashMap<String, DateTime<Utc>>,
}

impl Timeline {
    pub fn new() -> Self {
        Self::default()
    }

    /// What every output's update goes through: follows the model change `diff` (empty when
    /// only the clock moved) and adds to it the tenants whose time came by `now`.
    pub fn advance(&mut self, model: &Model, diff: &mut ModelDiff, now: DateTime<Utc>) {
        self.follow(model, diff, now);
        diff.due = self.take_due(model, now);
    }

    /// Follows a model change: the tenants `diff` adds or changes are scheduled from `now`,
    /// the removed ones forgotten.
    pub fn follow(&mut self, model: &Model, diff: &ModelDiff, now: DateTime<Utc>) {
        for name in &diff.tenants.removed {
            self.unschedule(name);
        }
        for name in diff.tenants.added.iter().chain(&diff.tenants.changed) {
            self.schedule(model, name, now);
        }
    }

    /// The tenants of `model` whose values changed by `now` without an edit, each scheduled
    /// again for its following change.
    pub fn take_due(&mut self, model: &Model, now: DateTime<Utc>) -> BTreeSet<String> {
        let later = self
            .by_instant
            .split_off(&(now + chrono::Duration::nanoseconds(1)));
        let due: BTreeSet<String> = std::mem::replace(&mut self.by_instant, later)
            .into_values()
            .flatten()
            .collect();
        for name in &due {
            self.of_tenant.remove(name);
            self.schedule(model, name, now);
        }
        due
    }

    /// The earliest instant at which some tenant's values change.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.by_instant.keys().next().copied()
    }

    fn schedule(&mut self, model: &Model, name: &str, now: DateTime<Utc>) {
        self.unschedule(name);
        let next = model
            .tenants
            .get(name)
            .and_then(|entry| resolve_tenant(entry, now).valid_until);
        if let Some(at) = next {
            self.by_instant
                .entry(at)
                .or_default()
                .insert(name.to_string());
            self.of_tenant.insert(name.to_string(), at);
        }
    }

    fn unschedule(&mut self, name: &str) {
        let Some(at) = self.of_tenant.remove(name) else {
            return;
        };
        if let Some(names) = self.by_instant.get_mut(&at) {
            names.remove(name);
            if names.is_empty() {
                self.by_instant.remove(&at);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn model(windowed: &str) -> std::sync::Arc<Model> {
        let tenants = format!(
            "tenants:\n  windowed:\n    mysql_connections:\n      default: 40\n      overrides:\n        - window: \"{windowed}\"\n          value: 200\n  fixed:\n    mysql_connections: 50\n"
        );
        crate::load_documents(
            [
                (
                    "_defaults.yaml".into(),
                    "defaults:\n  mysql_connections: 80\n".into(),
                ),
                ("t.yaml".to_string(), tenants),
            ],
            [],
        )
    }

    fn utc(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 18, h, m, 0).unwrap()
    }

    /// Schedules are checked minute by minute (the resolver's horizon); a tenant without
    /// schedules or expiries is never due.
    #[test]
    fn only_a_tenant_with_a_schedule_is_due() {
        let m = model("01:00-05:00");
        let mut timeline = Timeline::new();
        let mut diff = ModelDiff::initial(&m);
        timeline.advance(&m, &mut diff, utc(0, 59));
        assert!(diff.due.is_empty());
        assert_eq!(timeline.next_due(), Some(utc(1, 0)));
        let mut early = ModelDiff::default();
        timeline.advance(&m, &mut early, utc(0, 59) + chrono::Duration::seconds(30));
        assert!(early.is_empty(), "nothing is due before its time");
        let mut opened = ModelDiff::default();
        timeline.advance(&m, &mut opened, utc(1, 0));
        assert_eq!(opened.due.iter().collect::<Vec<_>>(), ["windowed"]);
        assert_eq!(timeline.next_due(), Some(utc(1, 1)));
    }

    #[test]
    fn an_edit_reschedules_and_a_removal_forgets() {
        let mut timeline = Timeline::new();
        let before = model("01:00-05:00");
        timeline.advance(&before, &mut ModelDiff::initial(&before), utc(0, 0));
        let after = model("03:00-05:00");
        let mut edit = ModelDiff::between(&before, &after);
        timeline.advance(&after, &mut edit, utc(0, 30));
        assert!(
            edit.due.is_empty(),
            "an edited tenant is rendered as changed, not due"
        );
        assert_eq!(timeline.next_due(), Some(utc(0, 31)));
        let empty = Model::empty();
        timeline.advance(&empty, &mut ModelDiff::between(&after, &empty), utc(0, 40));
        assert_eq!(timeline.next_due(), None);
    }
}
