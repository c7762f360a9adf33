//! The timeline's record of each run: when it started and ended, and the
//! lane it ran on, for `--timings=html` and `--trace`.

use std::time::Duration;

use super::Scheduler;
use crate::graph::RunId;

/// When a run started and ended, counted from the start of the
/// scheduler, and the lane it ran on.
#[derive(Clone, Debug)]
pub struct Timing {
    pub start: Duration,
    pub end: Duration,
    pub lane: usize,
    /// The run whose `task` step called it.
    pub caller: Option<RunId>,
}

/// The lanes of the timeline, one per job slot in use: a run takes the
/// lowest free lane, except that a run called by a waiting `task` step
/// takes its caller's lane (the caller lent it its job slot), so that it
/// nests inside its caller. A lane holds a stack of such runs.
#[derive(Default)]
pub(super) struct Lanes(Vec<Vec<RunId>>);

impl Lanes {
    pub(super) fn take(&mut self, id: RunId, lent: Option<usize>) -> usize {
        let lane = lent.unwrap_or_else(|| {
            self.0.iter().position(Vec::is_empty).unwrap_or_else(|| {
                self.0.push(Vec::new());
                self.0.len() - 1
            })
        });
        self.0[lane].push(id);
        lane
    }

    pub(super) fn free(&mut self, id: RunId, lane: usize) {
        self.0[lane].retain(|&r| r != id);
    }

    fn top(&self, lane: usize) -> Option<RunId> {
        self.0[lane].last().copied()
    }
}

impl Scheduler<'_, '_> {
    /// The timing of run `id`, starting now, on its lane.
    pub(super) fn start_timing(&mut self, id: RunId) -> Timing {
        let caller = self
            .waiters
            .iter()
            .find(|w| w.targets.contains(&id))
            .map(|w| w.from);
        let lent = caller
            .and_then(|c| self.slots[c].timing.as_ref().map(|t| t.lane))
            .filter(|&lane| self.lanes.top(lane) == caller);
        let start = self.epoch.elapsed();
        Timing {
            start,
            end: start,
            lane: self.lanes.take(id, lent),
            caller,
        }
    }
}
