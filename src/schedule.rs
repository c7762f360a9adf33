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
    self, CallError, Calls, Control, Failure, Finished, Job, Outcome, Reason, RunOptions,
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
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Pending,
    Running,
    /// A `task` step waits for the runs it called; its slot is free.
    Waiting,
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

pub fn execute(
    session: &Session,
    mut graph: Graph,
    opts: &Options,
    run_opts: &RunOptions,
) -> Summary {
    let (tx, rx) = mpsc::channel::<Event>();
    // Stop requests (signals, or the user's interrupt of a run that held
    // the terminal) become events of this loop.
    let forward = tx.clone();
    let listening = crate::stop::listen(Box::new(move |sig| {
        let _ = forward.send(Event::Signal(sig));
    }));

    let mut states: Vec<State> = vec![State::Pending; graph.runs.len()];
    let mut controls: Vec<Option<Arc<Control>>> = vec![None; graph.runs.len()];
    let mut durations: Vec<Duration> = vec![Duration::ZERO; graph.runs.len()];
    let mut finally_failures: Vec<Option<Failure>> = vec![None; graph.runs.len()];
    let mut started_at: Vec<Option<Instant>> = vec![None; graph.runs.len()];
    let mut waiters: Vec<Waiter> = Vec::new();
    let mut running = 0usize;
    let mut interactive_running = false;
    let mut stopping = false;
    let mut first_failure: Option<i32> = None;
    let mut signal_status: Option<i32> = None;
    let mut status_shown = false;
    // Some run ended without success, or runs were added, since the runs
    // that can never start were last marked.
    let mut unsettled = true;

    let pool = Pool::new();
    std::thread::scope(|scope| {
        loop {
            // Runs that can never start: a run they need did not succeed.
            // Only a run that ended badly (or new runs) can change that.
            let mut changed = std::mem::take(&mut unsettled);
            while changed {
                changed = false;
                for id in 0..graph.runs.len() {
                    if states[id] != State::Pending {
                        continue;
                    }
                    let blocker = graph.runs[id].deps.iter().find_map(|&d| match &states[d] {
                        State::Done(o) if !o.succeeded() => Some((d, o)),
                        _ => None,
                    });
                    if let Some((dep, outcome)) = blocker {
                        // Name the run that failed, not the chain to it.
                        let name = &graph.runs[dep].name;
                        let why = match outcome {
                            Outcome::NotRun(why) => why.clone(),
                            Outcome::Cancelled => format!("`{name}` was cancelled"),
                            _ => format!("`{name}` failed"),
                        };
                        states[id] = State::Done(Outcome::NotRun(why));
                        changed = true;
                    }
                }
            }

            // Callers whose called runs have all ended.
            let mut i = 0;
            while i < waiters.len() {
                let w = &waiters[i];
                if !w
                    .targets
                    .iter()
                    .all(|&t| matches!(states[t], State::Done(_)))
                    && !stopping
                {
                    i += 1;
                    continue;
                }
                let failed = w.targets.iter().find_map(|&t| match &states[t] {
                    State::Done(o) if !o.succeeded() => Some((t, o.clone())),
                    _ => None,
                });
                // A target that failed says why, even while stopping.
                let answer = if let Some((t, outcome)) = failed {
                    Err(call_failure(&graph.runs[t].name, &outcome))
                } else if stopping {
                    Err(CallError::Cancelled)
                } else if running < opts.jobs && !interactive_running {
                    Ok(())
                } else {
                    i += 1;
                    continue;
                };
                let w = waiters.remove(i);
                states[w.from] = State::Running;
                running += 1;
                let _ = w.reply.send(answer);
            }

            // Start what is ready.
            if !stopping {
                for id in 0..graph.runs.len() {
                    if running >= opts.jobs || interactive_running {
                        break;
                    }
                    if states[id] != State::Pending || !ready(&graph, &states, id) {
                        continue;
                    }
                    let task = &session.model.tasks[graph.runs[id].task];
                    // Runs waiting in a `task` step have no process going, and
                    // may be waiting for this very run.
                    if task.interactive && running > 0 {
                        continue;
                    }
                    let control = Arc::new(Control::default());
                    controls[id] = Some(Arc::clone(&control));
                    states[id] = State::Running;
                    started_at[id] = Some(Instant::now());
                    running += 1;
                    interactive_running |= task.interactive;
                    let job = Job {
                        id,
                        run: graph.runs[id].clone(),
                        task,
                        alone: task.interactive || !opts.may_overlap,
                    };
                    let started = pool.start(scope, (job, control), |(job, control)| {
                        let caller = Caller { tx: tx.clone() };
                        let id = job.id;
                        // A failure inside tasker fails this run and stops
                        // the invocation like any failure; it never leaves
                        // the loop waiting for an event that cannot come.
                        let finished =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                exec::run_job(session, run_opts, &job, &control, &caller)
                            }))
                            .unwrap_or_else(|panic| internal_failure(&panic_text(&panic)));
                        let _ = tx.send(Event::Done(id, finished));
                    });
                    if let Err(e) = started {
                        let _ = tx.send(Event::Done(
                            id,
                            internal_failure(&format!("cannot start a thread: {e}")),
                        ));
                    }
                }
            }

            if running == 0 && waiters.is_empty() {
                break;
            }

            if opts.live_status {
                let names: Vec<String> = (0..graph.runs.len())
                    .filter(|&id| states[id] == State::Running)
                    .filter_map(|id| {
                        started_at[id]
                            .map(|t| format!("{} {}s", graph.runs[id].name, t.elapsed().as_secs()))
                    })
                    .collect();
                if names.len() >= 2 {
                    let mut text = format!("running: {}", names.join(", "));
                    if text.chars().count() > 100 {
                        text = text.chars().take(97).collect::<String>() + "...";
                    }
                    run_opts
                        .report
                        .set_status(Some(run_opts.report.err_style.dim(&text)));
                    status_shown = true;
                } else if status_shown {
                    run_opts.report.set_status(None);
                    status_shown = false;
                }
            }

            let event = if opts.live_status {
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
            match event {
                Event::Done(id, finished) => {
                    running -= 1;
                    if session.model.tasks[graph.runs[id].task].interactive {
                        interactive_running = false;
                    }
                    durations[id] = finished.duration;
                    finally_failures[id] = finished.finally;
                    let outcome = finished.outcome;
                    if let Outcome::Failed(f) = &outcome {
                        first_failure.get_or_insert(f.status());
                        if !opts.keep_going && !stopping {
                            stopping = true;
                            cancel_all(&states, &controls);
                        }
                    }
                    unsettled |= !outcome.succeeded();
                    states[id] = State::Done(outcome);
                }
                Event::Call {
                    from,
                    invocations,
                    reply,
                } => {
                    if stopping {
                        let _ = reply.send(Err(CallError::Cancelled));
                        continue;
                    }
                    let known = states.len();
                    let called = add_called(session, &mut graph, &waiters, from, &invocations);
                    let grow = graph.runs.len() - known;
                    unsettled = true;
                    states.extend(std::iter::repeat_n(State::Pending, grow));
                    controls.extend(std::iter::repeat_n(None, grow));
                    durations.extend(std::iter::repeat_n(Duration::ZERO, grow));
                    finally_failures.extend(std::iter::repeat_n(None, grow));
                    started_at.extend(std::iter::repeat_n(None, grow));
                    match called {
                        Ok(targets) => {
                            states[from] = State::Waiting;
                            running -= 1;
                            waiters.push(Waiter {
                                from,
                                targets,
                                reply,
                            });
                        }
                        Err(f) => {
                            // Runs added for a refused call never start.
                            for state in &mut states[known..] {
                                *state = State::Done(Outcome::NotRun(
                                    "the `task` step calling it failed".into(),
                                ));
                            }
                            let _ = reply.send(Err(CallError::Failed(f)));
                        }
                    }
                }
                Event::CallTimedOut(from) => {
                    if let Some(i) = waiters.iter().position(|w| w.from == from) {
                        waiters.remove(i);
                        states[from] = State::Running;
                        running += 1;
                    }
                }
                Event::Signal(sig) => {
                    // A second signal never comes here: it ends tasker.
                    signal_status.get_or_insert(128 + sig);
                    stopping = true;
                    cancel_all(&states, &controls);
                }
            }
        }
        pool.close();
    });
    if status_shown {
        run_opts.report.set_status(None);
    }
    drop(listening);

    let runs = graph
        .runs
        .iter()
        .enumerate()
        .map(|(id, run)| {
            let outcome = match &states[id] {
                State::Done(o) => o.clone(),
                _ => Outcome::NotRun("the invocation stopped first".into()),
            };
            (run.name.clone(), outcome, durations[id])
        })
        .collect();
    Summary {
        runs,
        finally_failures,
        status: signal_status.or(first_failure).unwrap_or(0),
    }
}

/// A run ended by a failure inside tasker, not by its commands.
fn internal_failure(why: &str) -> Finished {
    Finished {
        outcome: Outcome::Failed(Failure::new(
            Reason::other(70, format!("internal error in tasker: {why}")),
            None,
        )),
        duration: Duration::ZERO,
        finally: None,
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
        Outcome::NotRun(why) => Failure::new(
            Reason::other(1, format!("task `{name}` did not run: {why}")),
            None,
        ),
        _ => Failure::new(
            Reason::other(1, format!("task `{name}` did not succeed")),
            None,
        ),
    })
}

fn ready(graph: &Graph, states: &[State], id: RunId) -> bool {
    let run = &graph.runs[id];
    run.deps
        .iter()
        .all(|&d| matches!(&states[d], State::Done(o) if o.succeeded()))
        && run
            .after
            .iter()
            .all(|&a| matches!(states[a], State::Done(_)))
}

fn cancel_all(states: &[State], controls: &[Option<Arc<Control>>]) {
    for (id, state) in states.iter().enumerate() {
        if matches!(state, State::Running | State::Waiting) {
            if let Some(control) = &controls[id] {
                control.cancel();
            }
        }
    }
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
                Reason::other(
                    2,
                    format!(
                        "cycle: `{}` calls `{}`, which waits for it",
                        graph.runs[from].name, graph.runs[t].name
                    ),
                ),
                None,
            ));
        }
    }
    if let Err(e) = graph.check_cycles() {
        return Err(Failure::new(Reason::other(2, e.message), None));
    }
    Ok(targets)
}

/// Whether run `a` is, or (transitively) waits for, run `b`: through deps,
/// command-line order, and the `task` steps that wait for their targets.
fn waits_for(graph: &Graph, waiters: &[Waiter], a: RunId, b: RunId) -> bool {
    let mut seen = vec![false; graph.runs.len()];
    let mut stack = vec![a];
    while let Some(r) = stack.pop() {
        if r == b {
            return true;
        }
        if std::mem::replace(&mut seen[r], true) {
            continue;
        }
        let run = &graph.runs[r];
        stack.extend(run.deps.iter().chain(&run.after));
        for w in waiters.iter().filter(|w| w.from == r) {
            stack.extend(&w.targets);
        }
    }
    false
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
        std::thread::Builder::new().spawn_scoped(scope, move || {
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
