//! Services (`background = true`, SPEC 6): a run that others depend on
//! starts as a service, gives its job slot back once ready, and is stopped
//! when no run still to come needs it.

use std::sync::Arc;

use super::calls::calls_tasks;
use super::{Event, Scheduler, State};
use crate::context::Session;
use crate::exec::{Outcome, Service};
use crate::graph::{Graph, RunId};

impl Scheduler<'_, '_> {
    /// Whether run `id` (of a `background` task or not) starts as a
    /// service: runs wait for it, or a `task` step called it. `None` when
    /// it is a service no run needs any more (what needed it will not run:
    /// a failure under -k); it is then marked as not run.
    pub(super) fn starts_as_service(&mut self, id: RunId, background: bool) -> Option<bool> {
        let service = background
            && (self.dependents(id).next().is_some() || !self.slots[id].users.is_empty());
        if service && !self.needed(id) {
            self.slots[id].state =
                State::Done(Outcome::NotRun("no run needs the service any more".into()));
            return None;
        }
        Some(service)
    }

    /// How the service `id` tells this loop it is ready (none under -n).
    pub(super) fn service_hooks(&self, id: RunId) -> Option<Service> {
        let events = self.events.clone()?;
        Some(Service {
            on_ready: Arc::new(move || {
                let _ = events.send(Event::Ready(id));
            }),
        })
    }

    /// A service became ready: it gives its job slot back and the runs
    /// that depend on it may start.
    pub(super) fn on_ready(&mut self, id: RunId) {
        if self.slots[id].state == State::Running {
            self.slots[id].state = State::Serving;
            self.running -= 1;
            self.serving += 1;
        }
    }

    /// Whether a run that waits for the service `id`, or called it, is
    /// still to come.
    fn needed(&self, id: RunId) -> bool {
        self.dependents(id)
            .chain(self.slots[id].users.iter().copied())
            .any(|r| !matches!(self.slots[r].state, State::Done(_)))
    }

    /// Stop the services that no run still to come depends on (SPEC 6).
    /// The stop is their end as planned: they end `Stopped`.
    pub(super) fn stop_unneeded_services(&self) {
        if !self.any_service {
            return;
        }
        for (id, slot) in self.slots.iter().enumerate() {
            if !slot.service || !matches!(slot.state, State::Running | State::Serving) {
                continue;
            }
            let Some(control) = &slot.control else {
                continue;
            };
            if !control.is_cancelled() && !self.needed(id) {
                control.cancel();
            }
        }
    }

    /// Even under -k, what runs on a dead service is stopped.
    pub(super) fn cancel_dependents(&self, id: RunId) {
        for r in self.dependents(id) {
            let slot = &self.slots[r];
            if let (State::Running | State::Waiting | State::Serving, Some(control)) =
                (&slot.state, &slot.control)
            {
                control.cancel();
            }
        }
    }
}

/// Whether a service of the graph has runs that depend on it (or may
/// have: a `task` step may call one): they run beside it, so nothing runs
/// one after the other on the main thread.
pub fn has_services(session: &Session, graph: &Graph) -> bool {
    let depended_on = graph.runs.iter().enumerate().any(|(id, run)| {
        session.model.tasks[run.task].background
            && graph
                .runs
                .iter()
                .any(|r| r.deps.contains(&id) || r.after.contains(&id))
    });
    depended_on || (session.model.tasks.iter().any(|t| t.background) && calls_tasks(session, graph))
}
