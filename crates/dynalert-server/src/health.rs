//! Whether the reload loop is alive. The loop records each cycle it completes (a pass over
//! its source, whether the source answered with documents or with an error, or a re-render of
//! due rows; not a pass whose model or render step panicked, so a bug that panics every pass
//! shows as a stall); `/ready`, `/metrics` and the watchdog compare the time since the last one with
//! the loop's limit. A loop that completes no cycle within it is stalled: file edits and API
//! writes are no longer served, and `/ready` says so. A source that answers with errors (a
//! database down) is not a stall: those cycles complete, and the last good model stays
//! served.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// When the reload loop last completed a cycle, and how long it may go without one.
pub(crate) struct Heartbeat {
    last: Mutex<Instant>,
    limit: Duration,
}

/// The reload loop completed no cycle for `since`, longer than `limit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stall {
    pub since: Duration,
    pub limit: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the reload loop is stalled: no cycle completed for {:.1}s (limit {:.1}s); \
             file edits and API writes are not being served",
            self.since.as_secs_f64(),
            self.limit.as_secs_f64()
        )
    }
}

impl Heartbeat {
    /// Starts counting now: a first load that never finishes is a stall too.
    pub fn new(limit: Duration) -> Self {
        Heartbeat {
            last: Mutex::new(Instant::now()),
            limit,
        }
    }

    /// The loop completed a cycle.
    pub fn beat(&self) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// `Some` while the loop has completed no cycle within its limit.
    pub fn stalled(&self) -> Option<Stall> {
        self.stalled_at(Instant::now())
    }

    fn stalled_at(&self, now: Instant) -> Option<Stall> {
        let last = *self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let since = now.saturating_duration_since(last);
        (since > self.limit).then_some(Stall {
            since,
            limit: self.limit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_beat_within_the_limit_is_alive_and_none_past_it_is_a_stall() {
        let limit = Duration::from_secs(60);
        let heartbeat = Heartbeat::new(limit);
        let last = *heartbeat.last.lock().unwrap();
        assert_eq!(heartbeat.stalled_at(last + limit), None);
        let later = last + limit + Duration::from_millis(1);
        let stall = heartbeat.stalled_at(later).unwrap();
        assert_eq!(stall.since, limit + Duration::from_millis(1));
        assert!(
            stall
                .to_string()
                .contains("no cycle completed for 60.0s (limit 60.0s)"),
            "{stall}"
        );
        heartbeat.beat();
        let beat = *heartbeat.last.lock().unwrap();
        assert!(beat >= last);
        assert_eq!(heartbeat.stalled_at(beat + limit), None);
    }
}
