//! The scheduler (SPEC 6): job slots, a ready set, one thread per running
//! run, fail-fast or keep-going, signals, and `task` steps that add runs
//! while the graph executes. Plain threads and one channel: every event
//! (a run ended, a step calls a task, a signal, a tick) reaches the loop
//! here, which alone changes the state of runs.
//!
//! This file holds the `Scheduler` (per-run slots and what each event
//! changes) and the two ways of driving it; beside it, `calls` (what a
//! `task` step's call adds and when it is answered), `services` (when a
//! service is ready, and which ones nothing needs any more), `lanes` (the
//! timeline's lane of each run) and `pool` (the threads runs go on).

mod calls;
mod lanes;
mod pool;
mod services;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::Invocation;
use crate::context::Session;
use crate::exec::{
    self, CallError, Calls, Control, Failure, Finished, Job, Outcome, Reason, RunOptions,
};
use crate::graph::{Graph, RunId};

pub use calls::calls_tasks;
use calls::{Caller, NoCalls, Waiter};
use lanes::Lanes;
pub use lanes::Timing;
use pool::Pool;
pub use services::has_services;

pub struct Options {
    pub jobs: usize,
    pub keep_going: bool,
    /// Show the live status line (a terminal, output passing through us).
    pub live_status: bool,
    /// Runs may overlap; otherwise every run has the terminal alone.
    pub may_overlap: bool,
}

enum Event {
    Done(RunId, Finished),
    Call {
        from: RunId,
        invocations: Vec<Invocation>,
        reply: mpsc::Sender<Result<(), CallError>>,
    },
    Signal(i32),
    /// A caller stopped waiting (its timeout): it runs again.
    CallTimedOut(RunId),
    /// A service is ready: the runs that depend on it may start.
    Ready(RunId),
    /// A pool thread changed the state: look again at what can start.
    Wake,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Pending,
    Running,
    /// A `task` step waits for the runs it called; its slot is free.
    Waiting,
    /// A service that is ready: it runs on, and its job slot is free for
    /// the runs that depend on it.
    Serving,
    Done(Outcome),
}

/// How each run ended, and the exit status of the invocation.
pub struct Summary {
    pub runs: Vec<(String, Outcome, Duration)>,
    /// Per run, a `finally` that failed after the run failed or was
    /// cancelled (its outcome already tells a `finally` that failed a
    /// successful run).
    pub finally_failures: Vec<Option<Failure>>,
    pub status: i32,
    /// Per run, when it ran and on which lane (none: it never started),
    /// for `--timings=html` and `--trace`.
    pub timings: Vec<Option<Timing>>,
    /// Per run, the runs it depends on.
    pub deps: Vec<Vec<RunId>>,
}

/// Per run: where it is, and what is known of it.
struct Slot {
    state: State,
    control: Option<Arc<Control>>,
    started_at: Option<Instant>,
    duration: Duration,
    /// A `finally` that failed after the run failed or was cancelled.
    finally: Option<Failure>,
    /// Started as a service, for runs that depend on it.
    service: bool,
    /// The runs whose `task` step called this service: they need it
    /// until they end.
    users: Vec<RunId>,
    timing: Option<Timing>,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            state: State::Pending,
            control: None,
            started_at: None,
            duration: Duration::ZERO,
            finally: None,
            service: false,
            users: Vec::new(),
            timing: None,
        }
    }
}

/// The state of an invocation's runs, changed only by the events of the
/// loop in `execute`: which runs can start, and what each event means.
struct Scheduler<'a, 's> {
    session: &'a Session<'s>,
    opts: &'a Options,
    graph: Graph,
    slots: Vec<Slot>,
    waiters: Vec<Waiter>,
    running: usize,
    /// Services that are ready and hold no job slot.
    serving: usize,
    /// Where a service says it is ready; none under -n, where services
    /// are shown, not started.
    events: Option<mpsc::Sender<Event>>,
    /// A service has started: each event may leave one unneeded.
    any_service: bool,
    interactive_running: bool,
    stopping: bool,
    first_failure: Option<i32>,
    signal_status: Option<i32>,
    /// Some run ended without success, or runs were added, since the runs
    /// that can never start were last marked.
    unsettled: bool,
    /// When the scheduler started: the zero of `Timing`.
    epoch: Instant,
    lanes: Lanes,
    /// No run before this one is pending: runs never become pending
    /// again, so the search for the next start begins here.
    first_pending: usize,
}

impl<'a, 's> Scheduler<'a, 's> {
    fn new(session: &'a Session<'s>, opts: &'a Options, graph: Graph) -> Self {
        let slots = graph.runs.iter().map(|_| Slot::new()).collect();
        Scheduler {
            session,
            opts,
            graph,
            slots,
            waiters: Vec::new(),
            running: 0,
            serving: 0,
            events: None,
            any_service: false,
            interactive_running: false,
            stopping: false,
            first_failure: None,
            signal_status: None,
            unsettled: true,
            epoch: Instant::now(),
            lanes: Lanes::default(),
            first_pending: 0,
        }
    }

    /// Mark the runs that can never start: a run they need did not
    /// succeed. Only a run that ended badly (or new runs) can change that.
    fn settle(&mut self) {
        let mut changed = std::mem::take(&mut self.unsettled);
        while changed {
            changed = false;
            for id in 0..self.graph.runs.len() {
                if self.slots[id].state != State::Pending {
                    continue;
                }
                let blocker =
                    self.graph.runs[id]
                        .deps
                        .iter()
                        .find_map(|&d| match &self.slots[d].state {
                            // A service that was stopped serves no more.
                            State::Done(o) if !o.succeeded() || *o == Outcome::Stopped => {
                                Some((d, o))
                            }
                            _ => None,
                        });
                if let Some((dep, outcome)) = blocker {
                    // Name the run that failed, not the chain to it.
                    let name = &self.graph.runs[dep].name;
                    let why = match outcome {
                        Outcome::NotRun(why) => why.clone(),
                        Outcome::Cancelled => format!("`{name}` was cancelled"),
                        Outcome::Stopped => format!("service `{name}` had stopped"),
                        _ => format!("`{name}` failed"),
                    };
                    self.slots[id].state = State::Done(Outcome::NotRun(why));
                    changed = true;
                }
            }
        }
    }

    /// The next run to start, marked as running, when one is ready and a
    /// job slot is free.
    fn next_start(&mut self) -> Option<(Job<'a>, Arc<Control>)> {
        if self.stopping {
            return None;
        }
        while self
            .slots
            .get(self.first_pending)
            .is_some_and(|slot| slot.state != State::Pending)
        {
            self.first_pending += 1;
        }
        for id in self.first_pending..self.graph.runs.len() {
            if self.running >= self.opts.jobs || self.interactive_running {
                return None;
            }
            if self.slots[id].state != State::Pending || !self.ready(id) {
                continue;
            }
            let task = &self.session.model.tasks[self.graph.runs[id].task];
            // Runs waiting in a `task` step have no process going, and may
            // be waiting for this very run.
            if task.interactive && self.running > 0 {
                continue;
            }
            let Some(service) = self.starts_as_service(id, task.background) else {
                continue;
            };
            let control = Arc::new(Control::default());
            self.slots[id].timing = Some(self.start_timing(id));
            let slot = &mut self.slots[id];
            slot.control = Some(Arc::clone(&control));
            slot.state = State::Running;
            slot.started_at = Some(Instant::now());
            slot.service = service;
            self.any_service |= service;
            self.running += 1;
            self.interactive_running |= task.interactive;
            let job = Job {
                id,
                run: self.graph.runs[id].clone(),
                task,
                // A service never has the terminal: what needs it runs
                // beside it.
                alone: !service && (task.interactive || !self.opts.may_overlap),
                service: service.then(|| self.service_hooks(id)).flatten(),
            };
            return Some((job, control));
        }
        None
    }

    /// Whether the run's deps succeeded (or serve: a service that is
    /// ready) and the runs it comes after ended or serve.
    fn ready(&self, id: RunId) -> bool {
        let run = &self.graph.runs[id];
        // Deps start in order, so the last ones are the likeliest to be
        // still running: looking from the end answers "not yet" at once
        // for a run that waits for many.
        run.deps.iter().rev().all(|&d| match &self.slots[d].state {
            State::Serving => true,
            State::Done(o) => o.succeeded() && *o != Outcome::Stopped,
            _ => false,
        }) && run
            .after
            .iter()
            .all(|&a| matches!(self.slots[a].state, State::Done(_) | State::Serving))
    }

    /// The runs that wait for `id`: through deps or command-line order.
    fn dependents(&self, id: RunId) -> impl Iterator<Item = RunId> + '_ {
        self.graph
            .runs
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.deps.contains(&id) || r.after.contains(&id))
            .map(|(r, _)| r)
    }

    /// Nothing runs, nobody waits, no service serves: the invocation is
    /// over.
    fn finished(&self) -> bool {
        self.running == 0 && self.serving == 0 && self.waiters.is_empty()
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Done(id, finished) => self.on_done(id, finished),
            Event::Call {
                from,
                invocations,
                reply,
            } => self.on_call(from, &invocations, reply),
            Event::CallTimedOut(from) => self.on_call_timed_out(from),
            Event::Signal(sig) => self.on_signal(sig),
            Event::Ready(id) => self.on_ready(id),
            Event::Wake => {}
        }
    }

    fn on_done(&mut self, id: RunId, finished: Finished) {
        if let Some(timing) = &mut self.slots[id].timing {
            timing.end = self.epoch.elapsed();
            self.lanes.free(id, timing.lane);
        }
        if self.slots[id].state == State::Serving {
            self.serving -= 1;
        } else {
            self.running -= 1;
        }
        if self.session.model.tasks[self.graph.runs[id].task].interactive {
            self.interactive_running = false;
        }
        let slot = &mut self.slots[id];
        slot.duration = finished.duration;
        slot.finally = finished.finally;
        let outcome = finished.outcome;
        if let Outcome::Failed(f) = &outcome {
            self.first_failure.get_or_insert(f.status());
            if (!self.opts.keep_going || finished.halt) && !self.stopping {
                self.stopping = true;
                self.cancel_all();
            } else if self.slots[id].service {
                // Even under -k, what runs on a dead service is stopped.
                self.cancel_dependents(id);
            }
        }
        self.unsettled |= !outcome.succeeded();
        self.slots[id].state = State::Done(outcome);
    }

    fn on_signal(&mut self, sig: i32) {
        // A second signal never comes here: it ends tasker.
        self.signal_status.get_or_insert(128 + sig);
        self.stopping = true;
        self.cancel_all();
    }

    fn cancel_all(&self) {
        for slot in &self.slots {
            if matches!(slot.state, State::Running | State::Waiting | State::Serving) {
                if let Some(control) = &slot.control {
                    control.cancel();
                }
            }
        }
    }

    /// The live status: what runs, for how long, when two or more do.
    fn status_line(&self) -> Option<String> {
        let names: Vec<String> = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot.state, State::Running | State::Serving))
            .filter_map(|(id, slot)| {
                slot.started_at
                    .map(|t| format!("{} {}s", self.graph.runs[id].name, t.elapsed().as_secs()))
            })
            .collect();
        if names.len() < 2 {
            return None;
        }
        let mut text = format!("running: {}", names.join(", "));
        if text.chars().count() > 100 {
            text = text.chars().take(97).collect::<String>() + "...";
        }
        Some(text)
    }

    fn into_summary(self) -> Summary {
        let mut finally_failures = Vec::with_capacity(self.slots.len());
        let mut timings = Vec::with_capacity(self.slots.len());
        let mut deps = Vec::with_capacity(self.slots.len());
        let runs = self
            .graph
            .runs
            .into_iter()
            .zip(self.slots)
            .map(|(run, slot)| {
                let outcome = match slot.state {
                    State::Done(o) => o,
                    _ => Outcome::NotRun("the invocation stopped first".into()),
                };
                finally_failures.push(slot.finally);
                timings.push(slot.timing);
                deps.push(run.deps);
                (run.name, outcome, slot.duration)
            })
            .collect();
        Summary {
            runs,
            finally_failures,
            status: self.signal_status.or(self.first_failure).unwrap_or(0),
            timings,
            deps,
        }
    }
}

/// Run the graph: runs start when their deps succeeded and a job slot is
/// free, each on a thread of its own (from a pool), and every event comes
/// back here. When no two runs can overlap (one job slot, or a chain) and
/// no run calls a task, the runs go one after the other on this thread:
/// no pool, no hand-off between threads.
pub fn execute(session: &Session, graph: Graph, opts: &Options, run_opts: &RunOptions) -> Summary {
    let serial = (opts.jobs == 1 || !opts.may_overlap)
        && !calls_tasks(session, &graph)
        && !has_services(session, &graph);
    let mut scheduler = Scheduler::new(session, opts, graph);
    let (tx, rx) = mpsc::channel::<Event>();
    if !run_opts.dry_run {
        scheduler.events = Some(tx.clone());
        if has_services(session, &scheduler.graph) {
            crate::stop::start_guard();
        }
    }
    // Stop requests (signals, or the user's interrupt of a run that held
    // the terminal) become events of this loop. A run on this very thread
    // cannot read them: its control is cancelled from here as well.
    let current: Arc<std::sync::Mutex<Option<Arc<Control>>>> = Arc::default();
    let forward = tx.clone();
    let current_run = Arc::clone(&current);
    let listening = crate::stop::listen(Arc::new(move |sig| {
        if let Some(control) = current_run.lock().unwrap().as_ref() {
            control.cancel();
        }
        let _ = forward.send(Event::Signal(sig));
    }));
    if serial {
        run_serially(&mut scheduler, &current, &rx, run_opts);
    } else {
        run_on_threads(&mut scheduler, &tx, &rx, run_opts);
    }
    drop(listening);
    scheduler.into_summary()
}

/// One run at a time, on this thread.
fn run_serially(
    scheduler: &mut Scheduler,
    current: &std::sync::Mutex<Option<Arc<Control>>>,
    rx: &mpsc::Receiver<Event>,
    run_opts: &RunOptions,
) {
    // Calls cannot happen: no task calls a task.
    let caller = NoCalls;
    loop {
        while let Ok(event) = rx.try_recv() {
            scheduler.on_event(event);
        }
        scheduler.settle();
        let Some((job, control)) = scheduler.next_start() else {
            break;
        };
        *current.lock().unwrap() = Some(Arc::clone(&control));
        if crate::stop::requested().is_some() {
            control.cancel();
        }
        let finished = run_guarded(scheduler.session, run_opts, &job, &control, &caller);
        *current.lock().unwrap() = None;
        scheduler.on_done(job.id, finished);
    }
    while let Ok(event) = rx.try_recv() {
        scheduler.on_event(event);
    }
}

/// Runs on threads of a pool; this thread only handles events. A thread
/// whose run ended records the end itself and takes the next ready run
/// at once, under the scheduler's lock: a graph of many short runs costs
/// no hand-off between threads per run. This thread wakes only for what
/// the pool threads cannot settle alone: a free job slot with more runs
/// ready, a `task` step, a service, a signal, the end.
fn run_on_threads(
    scheduler: &mut Scheduler,
    tx: &mpsc::Sender<Event>,
    rx: &mpsc::Receiver<Event>,
    run_opts: &RunOptions,
) {
    let session = scheduler.session;
    let live_status = scheduler.opts.live_status;
    let mut status_shown = false;
    let pool = Pool::new();
    let shared = std::sync::Mutex::new(scheduler);
    let shared = &shared;
    std::thread::scope(|scope| {
        loop {
            let mut scheduler = shared.lock().unwrap();
            scheduler.settle();
            scheduler.answer_waiters();
            while let Some((job, control)) = scheduler.next_start() {
                let id = job.id;
                let events = tx.clone();
                let started = pool.start(scope, (job, control), move |(job, control)| {
                    let caller = Caller { tx: events.clone() };
                    let mut next = Some((job, control));
                    while let Some((job, control)) = next.take() {
                        let finished = run_guarded(session, run_opts, &job, &control, &caller);
                        next = take_next(shared, job.id, finished, &events);
                    }
                });
                if let Err(e) = started {
                    let _ = tx.send(Event::Done(
                        id,
                        internal_failure(&format!("cannot start a thread: {e}")),
                    ));
                }
            }
            scheduler.stop_unneeded_services();
            if scheduler.finished() {
                break;
            }
            if live_status {
                match scheduler.status_line() {
                    Some(text) => {
                        run_opts
                            .report
                            .set_status(Some(run_opts.report.err_style.dim(&text)));
                        status_shown = true;
                    }
                    None if status_shown => {
                        run_opts.report.set_status(None);
                        status_shown = false;
                    }
                    None => {}
                }
            }
            drop(scheduler);
            let event = if live_status {
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Ok(e) => e,
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(e) => e,
                    Err(_) => break,
                }
            };
            shared.lock().unwrap().on_event(event);
        }
        pool.close();
    });
    if status_shown {
        run_opts.report.set_status(None);
    }
}

/// On a pool thread whose run `id` ended: record the end and take the
/// next ready run, when the event loop has nothing else to decide. The
/// loop is woken when it may have more to do: a job slot is still free,
/// nothing could be taken, or `task` steps and services wait on ends.
fn take_next<'a>(
    shared: &std::sync::Mutex<&mut Scheduler<'a, '_>>,
    id: RunId,
    finished: Finished,
    events: &mpsc::Sender<Event>,
) -> Option<(Job<'a>, Arc<Control>)> {
    let mut scheduler = shared.lock().unwrap();
    if scheduler.slots[id].state == State::Waiting {
        // A `task` step of this run stopped waiting (its timeout) and told
        // the loop, which has not heard it yet: the end must come after
        // that event, so it goes the same way.
        drop(scheduler);
        let _ = events.send(Event::Done(id, finished));
        return None;
    }
    scheduler.on_done(id, finished);
    let alone = scheduler.waiters.is_empty() && !scheduler.any_service;
    let next = if alone {
        scheduler.settle();
        scheduler.next_start()
    } else {
        None
    };
    let wake = next.is_none() || scheduler.running < scheduler.opts.jobs;
    drop(scheduler);
    if wake {
        let _ = events.send(Event::Wake);
    }
    next
}

/// Run a job; a failure inside tasker (a panic) fails this run and stops
/// the invocation like any failure, and never leaves the loop waiting for
/// an event that cannot come.
fn run_guarded(
    session: &Session,
    run_opts: &RunOptions,
    job: &Job,
    control: &Arc<Control>,
    calls: &dyn Calls,
) -> Finished {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match &run_opts.fleet {
        Some(fleet) if job.task.distribute => fleet.run(session, run_opts, job, control),
        _ => exec::run_job(session, run_opts, job, control, calls),
    }))
    .unwrap_or_else(|panic| internal_failure(&panic_text(&panic)))
}

/// A run ended by a failure inside tasker, not by its commands.
fn internal_failure(why: &str) -> Finished {
    Finished {
        outcome: Outcome::Failed(Failure::new(Reason::Internal(why.to_string()), None)),
        duration: Duration::ZERO,
        finally: None,
        halt: false,
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
