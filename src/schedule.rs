//! The scheduler (SPEC 6): job slots, a ready set, one thread per running
//! run, fail-fast or keep-going, signals, and `task` steps that add runs
//! while the graph executes. Plain threads and one channel: every event
//! (a run ended, a step calls a task, a signal, a tick) reaches the loop
//! here, which alone changes the state of runs.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::args::Invocation;
use crate::context::Session;
use crate::exec::{
    self, CallError, Calls, Control, Failure, Finished, Job, Outcome, Reason, RunOptions, Service,
};
use crate::graph::{Graph, RunId};

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
struct Lanes(Vec<Vec<RunId>>);

impl Lanes {
    fn take(&mut self, id: RunId, lent: Option<usize>) -> usize {
        let lane = lent.unwrap_or_else(|| {
            self.0.iter().position(Vec::is_empty).unwrap_or_else(|| {
                self.0.push(Vec::new());
                self.0.len() - 1
            })
        });
        self.0[lane].push(id);
        lane
    }

    fn free(&mut self, id: RunId, lane: usize) {
        self.0[lane].retain(|&r| r != id);
    }

    fn top(&self, lane: usize) -> Option<RunId> {
        self.0[lane].last().copied()
    }
}

struct Waiter {
    from: RunId,
    targets: Vec<RunId>,
    reply: mpsc::Sender<Result<(), CallError>>,
}

struct Caller {
    tx: mpsc::Sender<Event>,
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

    /// Answer the `task` steps whose called runs have all ended (or that
    /// must give up: the invocation is stopping), when a job slot is free.
    fn answer_waiters(&mut self) {
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
            let service = task.background
                && (self.dependents(id).next().is_some() || !self.slots[id].users.is_empty());
            if service && !self.needed(id) {
                // What needed it will not run (a failure under -k).
                self.slots[id].state =
                    State::Done(Outcome::NotRun("no run needs the service any more".into()));
                continue;
            }
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

    /// How the service `id` tells this loop it is ready (none under -n).
    fn service_hooks(&self, id: RunId) -> Option<Service> {
        let events = self.events.clone()?;
        Some(Service {
            on_ready: Arc::new(move || {
                let _ = events.send(Event::Ready(id));
            }),
        })
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

    /// Whether a run that waits for the service `id`, or called it, is
    /// still to come.
    fn needed(&self, id: RunId) -> bool {
        self.dependents(id)
            .chain(self.slots[id].users.iter().copied())
            .any(|r| !matches!(self.slots[r].state, State::Done(_)))
    }

    /// Stop the services that no run still to come depends on (SPEC 6).
    /// The stop is their end as planned: they end `Stopped`.
    fn stop_unneeded_services(&self) {
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
            Event::CallTimedOut(from) => {
                if let Some(i) = self.waiters.iter().position(|w| w.from == from) {
                    self.waiters.remove(i);
                    self.slots[from].state = State::Running;
                    self.running += 1;
                }
            }
            Event::Signal(sig) => self.on_signal(sig),
            Event::Ready(id) => self.on_ready(id),
            Event::Wake => {}
        }
    }

    /// A service became ready: it gives its job slot back and the runs
    /// that depend on it may start.
    fn on_ready(&mut self, id: RunId) {
        if self.slots[id].state == State::Running {
            self.slots[id].state = State::Serving;
            self.running -= 1;
            self.serving += 1;
        }
    }

    /// The timing of run `id`, starting now, on its lane.
    fn start_timing(&mut self, id: RunId) -> Timing {
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

    fn on_call(
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

    fn on_signal(&mut self, sig: i32) {
        // A second signal never comes here: it ends tasker.
        self.signal_status.get_or_insert(128 + sig);
        self.stopping = true;
        self.cancel_all();
    }

    fn cancel_dependents(&self, id: RunId) {
        for r in self.dependents(id) {
            let slot = &self.slots[r];
            if let (State::Running | State::Waiting | State::Serving, Some(control)) =
                (&slot.state, &slot.control)
            {
                control.cancel();
            }
        }
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

/// The callee side of `task` steps when no task has one.
struct NoCalls;

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

/// Threads that run jobs, kept for the next job when one ends: starting
/// a thread per run cost more than the scheduling itself. A run waiting in
/// a `task` step keeps its thread, so the pool grows when every thread is
/// busy; it never shrinks before the invocation ends.
struct Pool<T> {
    idle: Arc<std::sync::atomic::AtomicUsize>,
    jobs: std::sync::Mutex<Option<mpsc::Sender<T>>>,
    queue: Arc<std::sync::Mutex<mpsc::Receiver<T>>>,
}

impl<T: Send> Pool<T> {
    fn new() -> Pool<T> {
        let (jobs, queue) = mpsc::channel();
        Pool {
            idle: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            jobs: std::sync::Mutex::new(Some(jobs)),
            queue: Arc::new(std::sync::Mutex::new(queue)),
        }
    }

    /// Run `work(job)` on an idle thread, or on a new one (which the
    /// system may refuse).
    fn start<'scope, 'env, F>(
        &self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        job: T,
        work: F,
    ) -> std::io::Result<()>
    where
        F: Fn(T) + Send + Clone + 'scope,
        T: 'scope,
    {
        use std::sync::atomic::Ordering;
        // Only this thread takes from `idle`, and each idle thread takes
        // exactly one job: a decrement here is a thread that will run it.
        let claimed = self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let job = match (claimed, self.jobs.lock().unwrap().as_ref()) {
            (true, Some(jobs)) => match jobs.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job,
            },
            _ => job,
        };
        let idle = Arc::clone(&self.idle);
        let queue = Arc::clone(&self.queue);
        let first = job;
        std::thread::Builder::new()
            .stack_size(RUN_STACK)
            .spawn_scoped(scope, move || {
                work(first);
                loop {
                    idle.fetch_add(1, Ordering::SeqCst);
                    let next = queue.lock().unwrap().recv();
                    match next {
                        Ok(job) => work(job),
                        Err(_) => break,
                    }
                }
            })?;
        Ok(())
    }

    /// Let idle threads end, so the scope can join them.
    fn close(&self) {
        self.jobs.lock().unwrap().take();
    }
}

/// The stack of a run's thread: as large as the main thread's, so that a
/// chain of vars as deep as the limit allows (SPEC 6, Limits) renders on
/// any thread. Only the pages a run touches are ever committed.
const RUN_STACK: usize = 8 << 20;
