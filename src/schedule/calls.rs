//! `task` steps: a step's call adds runs to the graph while it executes
//! (refused when the called runs would wait for the caller), the caller
//! waits with its job slot lent, and is answered when its runs ended.

use std::sync::mpsc;
use std::time::Instant;

use super::{Event, Scheduler, Slot, State};
use crate::args::Invocation;
use crate::context::Session;
use crate::exec::{CallError, Calls, Failure, Outcome, Reason};
use crate::graph::{Graph, RunId};

/// A `task` step waiting for the runs it called (its job slot lent).
pub(super) struct Waiter {
    pub(super) from: RunId,
    pub(super) targets: Vec<RunId>,
    reply: mpsc::Sender<Result<(), CallError>>,
}

/// The callee side of `task` steps: each call is an event of the loop,
/// answered on a channel of its own.
pub(super) struct Caller {
    pub(super) tx: mpsc::Sender<Event>,
}

impl Calls for Caller {
    fn call(
        &self,
        from: usize,
        invocations: Vec<Invocation>,
        deadline: Option<Instant>,
    ) -> Result<bool, CallError> {
        let (reply, answer) = mpsc::channel();
        // The loop is gone only when the invocation is ending.
        let lost = || CallError::Cancelled;
        self.tx
            .send(Event::Call {
                from,
                invocations,
                reply,
            })
            .map_err(|_| lost())?;
        let Some(deadline) = deadline else {
            return answer.recv().unwrap_or_else(|_| Err(lost())).map(|()| true);
        };
        match answer.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result.map(|()| true),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                // Tell the loop, which may have answered meanwhile: either
                // way the caller is running again from its point of view.
                let _ = self.tx.send(Event::CallTimedOut(from));
                Ok(false)
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(lost()),
        }
    }
}

/// The callee side of `task` steps when no task has one.
pub(super) struct NoCalls;

impl Calls for NoCalls {
    fn call(
        &self,
        _from: usize,
        _invocations: Vec<Invocation>,
        _deadline: Option<Instant>,
    ) -> Result<bool, CallError> {
        Err(CallError::Cancelled)
    }
}

impl Scheduler<'_, '_> {
    pub(super) fn on_call(
        &mut self,
        from: RunId,
        invocations: &[Invocation],
        reply: mpsc::Sender<Result<(), CallError>>,
    ) {
        if self.stopping {
            let _ = reply.send(Err(CallError::Cancelled));
            return;
        }
        let known = self.slots.len();
        let called = add_called(
            self.session,
            &mut self.graph,
            &self.waiters,
            from,
            invocations,
        );
        let grow = self.graph.runs.len() - known;
        self.unsettled = true;
        self.slots.extend((0..grow).map(|_| Slot::new()));
        match called {
            Ok(targets) => {
                for &t in &targets {
                    let task = &self.session.model.tasks[self.graph.runs[t].task];
                    if task.background && !self.slots[t].users.contains(&from) {
                        self.slots[t].users.push(from);
                    }
                }
                self.slots[from].state = State::Waiting;
                self.running -= 1;
                self.waiters.push(Waiter {
                    from,
                    targets,
                    reply,
                });
            }
            Err(f) => {
                // Runs added for a refused call never start.
                for slot in &mut self.slots[known..] {
                    slot.state =
                        State::Done(Outcome::NotRun("the `task` step calling it failed".into()));
                }
                let _ = reply.send(Err(CallError::Failed(f)));
            }
        }
    }

    /// A caller stopped waiting (its timeout): it runs again.
    pub(super) fn on_call_timed_out(&mut self, from: RunId) {
        if let Some(i) = self.waiters.iter().position(|w| w.from == from) {
            self.waiters.remove(i);
            self.slots[from].state = State::Running;
            self.running += 1;
        }
    }

    /// Answer the `task` steps whose called runs have all ended (or that
    /// must give up: the invocation is stopping), when a job slot is free.
    pub(super) fn answer_waiters(&mut self) {
        let mut i = 0;
        while i < self.waiters.len() {
            let w = &self.waiters[i];
            // A service called by a `task` step has done its part once it
            // is ready.
            let ended = w
                .targets
                .iter()
                .all(|&t| matches!(self.slots[t].state, State::Done(_) | State::Serving));
            if !ended && !self.stopping {
                i += 1;
                continue;
            }
            let failed = w.targets.iter().find_map(|&t| match &self.slots[t].state {
                State::Done(o) if !o.succeeded() || *o == Outcome::Stopped => Some((t, o.clone())),
                _ => None,
            });
            // A target that failed says why, even while stopping.
            let answer = if let Some((t, outcome)) = failed {
                Err(call_failure(&self.graph.runs[t].name, &outcome))
            } else if self.stopping {
                Err(CallError::Cancelled)
            } else if self.running < self.opts.jobs && !self.interactive_running {
                Ok(())
            } else {
                i += 1;
                continue;
            };
            let w = self.waiters.remove(i);
            self.slots[w.from].state = State::Running;
            self.running += 1;
            let _ = w.reply.send(answer);
        }
    }
}

/// Whether any task of the graph has a `task` step, which may add runs
/// and waits for them on its own thread.
pub fn calls_tasks(session: &Session, graph: &Graph) -> bool {
    graph.runs.iter().any(|run| {
        let task = &session.model.tasks[run.task];
        task.run
            .iter()
            .chain(&task.finally)
            .any(|step| matches!(step.kind, crate::model::StepKind::Task(_)))
    })
}

fn call_failure(name: &str, outcome: &Outcome) -> CallError {
    CallError::Failed(match outcome {
        Outcome::Failed(f) => Failure::new(
            Reason::Called {
                task: name.to_string(),
                reason: Box::new(f.reason.clone()),
            },
            None,
        ),
        Outcome::Cancelled => return CallError::Cancelled,
        Outcome::Stopped => Failure::new(Reason::ServiceGone(name.to_string()), None),
        Outcome::NotRun(why) => Failure::new(
            Reason::CallNotRun {
                task: name.to_string(),
                why: why.clone(),
            },
            None,
        ),
        _ => Failure::new(Reason::CallUnfinished(name.to_string()), None),
    })
}

/// Add the runs a `task` step calls; refuse a call that would wait for
/// the caller itself.
fn add_called(
    session: &Session,
    graph: &mut Graph,
    waiters: &[Waiter],
    from: RunId,
    invocations: &[Invocation],
) -> Result<Vec<RunId>, Failure> {
    let mut targets = Vec::new();
    let depth = graph.runs[from].depth + 1;
    for inv in invocations {
        let ids = graph
            .add_invocation(session, inv, depth)
            .map_err(|e| Failure::new(e, None))?;
        targets.extend(ids);
    }
    // A command-line task that an earlier one calls runs now, as part of
    // that call: drop the order edges ("after the previous task") that
    // would make it wait for its caller.
    for &t in &targets {
        let mut stack = vec![t];
        let mut seen = vec![false; graph.runs.len()];
        while let Some(r) = stack.pop() {
            if std::mem::replace(&mut seen[r], true) {
                continue;
            }
            let after = std::mem::take(&mut graph.runs[r].after);
            graph.runs[r].after = after
                .into_iter()
                .filter(|&p| !waits_for(graph, waiters, p, from))
                .collect();
            stack.extend(graph.runs[r].deps.iter().copied());
        }
    }
    for &t in &targets {
        if waits_for(graph, waiters, t, from) {
            return Err(Failure::new(
                Reason::Cycle(format!(
                    "cycle: `{}` calls `{}`, which waits for it",
                    graph.runs[from].name, graph.runs[t].name
                )),
                None,
            ));
        }
    }
    if let Err(e) = graph.check_cycles() {
        return Err(Failure::new(Reason::Cycle(e.message), None));
    }
    Ok(targets)
}

/// Whether run `a` is, or (transitively) waits for, run `b`: through deps,
/// command-line order, and the `task` steps that wait for their targets.
fn waits_for(graph: &Graph, waiters: &[Waiter], a: RunId, b: RunId) -> bool {
    a == b
        || crate::cycles::reaches(graph.runs.len(), a, b, |r| {
            let run = &graph.runs[r];
            let mut next: Vec<RunId> = run.deps.iter().chain(&run.after).copied().collect();
            for w in waiters.iter().filter(|w| w.from == r) {
                next.extend(&w.targets);
            }
            next
        })
}
