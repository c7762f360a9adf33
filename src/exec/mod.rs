//! One run of a task: its directory, environment, confirmation, steps,
//! retries and `finally`, each step as processes started through duct in
//! their own process group. The scheduler decides when a run starts; this
//! module decides what it does and how it ended.

mod direct;
pub mod output;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::value::Value;

use crate::args::{self, Invocation};
use crate::context::{Env, Session};
use crate::error::Error;
use crate::graph::Run;
use crate::model::{Step, StepKind, Task};
use crate::template::Mode;

pub use crate::outcome::{Failure, Outcome, Reason};
use crate::process;
pub use crate::process::Proc;
pub use output::Console;

/// Why the runs a `task` step called did not all succeed.
#[derive(Debug)]
pub enum CallError {
    /// The invocation is stopping (a failure elsewhere, or a signal).
    Cancelled,
    /// A called run failed, or the call itself is wrong (a cycle).
    Failed(Failure),
}

/// What a worker needs from the scheduler while it runs.
pub trait Calls: Sync {
    /// Run these invocations (with their deps) now and wait for them, at
    /// most until `deadline` (then `Ok(false)`: the caller timed out).
    fn call(
        &self,
        from: usize,
        invocations: Vec<Invocation>,
        deadline: Option<Instant>,
    ) -> Result<bool, CallError>;
}

/// Shared between a run's worker and the scheduler, which may cancel it.
#[derive(Default)]
pub struct Control {
    cancelled: AtomicBool,
    procs: Mutex<Vec<Proc>>,
}

impl Control {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Stop the run: SIGTERM to its process groups now, SIGKILL to what is
    /// left after the grace period.
    pub fn cancel(self: &Arc<Self>) {
        let procs = {
            let procs = self.procs.lock().unwrap();
            self.cancelled.store(true, Ordering::SeqCst);
            procs.clone()
        };
        self.stop(procs);
    }

    fn stop(self: &Arc<Self>, procs: Vec<Proc>) {
        if procs.is_empty() {
            return;
        }
        for proc in &procs {
            process::terminate(*proc);
        }
        let me = Arc::clone(self);
        std::thread::spawn(move || {
            std::thread::sleep(process::GRACE);
            let live = me.procs.lock().unwrap();
            for proc in procs.iter().filter(|p| live.contains(p)) {
                process::kill(*proc);
            }
        });
    }

    /// Start a process unless the run was cancelled, and register it in
    /// the same breath so that a cancel never misses it.
    fn spawn(
        &self,
        expr: duct::Expression,
        new_group: bool,
    ) -> Result<Option<duct::Handle>, std::io::Error> {
        let mut procs = self.procs.lock().unwrap();
        if self.is_cancelled() {
            return Ok(None);
        }
        let handle = expr.start()?;
        drop(expr);
        for pid in handle.pids() {
            let proc = Proc {
                pid,
                group: new_group,
            };
            procs.push(proc);
            crate::stop::track(proc);
        }
        Ok(Some(handle))
    }

    fn forget(&self, pids: &[u32]) {
        self.procs.lock().unwrap().retain(|p| {
            let gone = pids.contains(&p.pid);
            if gone {
                crate::stop::forget(*p);
            }
            !gone
        });
    }
}

/// Settings of the invocation that shape every run.
pub struct RunOptions {
    pub echo: bool,
    pub yes: bool,
    pub verbose: bool,
    pub dry_run: bool,
    pub report: Arc<Console>,
    /// Up-to-date checks and records (`sources`).
    pub fresh: Arc<crate::fresh::Fresh>,
}

/// Everything one run needs, cloned out of the graph.
pub struct Job<'a> {
    pub id: usize,
    pub run: Run,
    pub task: &'a Task,
    /// This run may have the terminal (nothing overlaps it).
    pub alone: bool,
}

/// A run's result as it finished, with what `tasks.NAME` will show.
pub struct Finished {
    pub outcome: Outcome,
    pub duration: Duration,
    /// A failed `finally` after a run that failed or was cancelled: reported
    /// on its own line, so it hides nothing.
    pub finally: Option<Failure>,
}

/// Execute one run from start to end.
pub fn run_job(
    session: &Session,
    opts: &RunOptions,
    job: &Job,
    control: &Arc<Control>,
    calls: &dyn Calls,
) -> Finished {
    // A failure inside tasker on purpose, for the test that proves a panic
    // in a run's thread fails the run and stops the invocation (debug
    // builds only).
    #[cfg(debug_assertions)]
    if std::env::var_os("TASKER_TEST_PANIC_IN").is_some_and(|t| t == job.task.name.as_str()) {
        panic!("a panic asked for by TASKER_TEST_PANIC_IN");
    }
    let started = Instant::now();
    let mut sends = Vec::new();
    for responder in &job.task.output.respond {
        let what = format!("`respond.send` of task `{}`", job.task.name);
        match session.render(&responder.send, Mode::Plain, &job.run.scope, &what) {
            Ok(text) => sends.push(text.into_bytes()),
            Err(e) => {
                return Finished {
                    outcome: Outcome::Failed(Failure::new(e, None)),
                    duration: started.elapsed(),
                    finally: None,
                };
            }
        }
    }
    let mut sink = output::RunOutput::new(
        Arc::clone(&opts.report),
        job.run.name.clone(),
        job.task,
        sends,
    );
    sink.dry_run = opts.dry_run;
    let mut check = None;
    let (outcome, finally) =
        run_job_inner(session, opts, job, control, calls, &mut sink, &mut check);
    let outcome = sink.conclude(outcome);
    // Recorded only after a success of its own (not an ignored failure),
    // and never for a dry run.
    if let (Outcome::Success, Some(check), false) = (&outcome, check, opts.dry_run) {
        if let Err(why) = check.save() {
            sink.note(&format!("warning: {why}"));
        }
    }
    let duration = started.elapsed();
    let mut result = sink.results();
    let code = match &outcome {
        Outcome::Failed(f) => f.status(),
        Outcome::Cancelled => 130,
        _ => 0,
    };
    result.insert("exit_code".into(), Value::from(code));
    result.insert(
        "duration_ms".into(),
        Value::from(duration.as_millis() as u64),
    );
    if !opts.dry_run {
        session.record(&job.task.name, Value::from(result));
    }
    let outcome = match outcome {
        Outcome::Failed(f) if job.task.ignore_failure && !control.is_cancelled() => {
            opts.report
                .note(&job.run.name, &format!("failed ({}), ignored", f.reason));
            Outcome::Success
        }
        other => other,
    };
    Finished {
        outcome,
        duration,
        finally,
    }
}

fn run_job_inner(
    session: &Session,
    opts: &RunOptions,
    job: &Job,
    control: &Arc<Control>,
    calls: &dyn Calls,
    sink: &mut output::RunOutput,
    check: &mut Option<crate::fresh::Check>,
) -> (Outcome, Option<Failure>) {
    let (step_scope, dir) = match prelude(session, opts, job, control, sink, check) {
        Ok(ready) => ready,
        Err(outcome) => return (outcome, None),
    };
    let mut ctx = StepContext {
        session,
        opts,
        job,
        dir: &dir,
        control,
        calls,
        deadline: None,
    };
    let mut outcome = ctx.attempts(&step_scope, sink);
    let mut cleanup_failure = None;
    let task = job.task;
    if !task.finally.is_empty() {
        ctx.deadline = None;
        sink.begin_finally();
        if let Outcome::Failed(f) = ctx.run_finally(&task.finally, &step_scope, sink) {
            let f = Failure {
                in_finally: true,
                ..f
            };
            // A failed cleanup fails a run that succeeded; after a failure
            // or a cancel it is reported beside the run's own ending.
            if matches!(outcome, Outcome::Success) {
                outcome = Outcome::Failed(f);
            } else {
                cleanup_failure = Some(f);
            }
        }
    }
    (outcome, cleanup_failure)
}

/// Why a run or step cannot start in `dir`, when it cannot: it does not
/// exist, or it is something other than a directory.
fn dir_problem(dir: &Path) -> Option<String> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => None,
        Ok(meta) => Some(format!(
            "`{}` is {}, not a directory",
            dir.display(),
            crate::error::kind_of(&meta.file_type())
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Some(format!("directory `{}` does not exist", dir.display()))
        }
        Err(e) => Some(format!("cannot use directory `{}`: {e}", dir.display())),
    }
}

/// Everything before the first step: the platform, the environment, the
/// directory and the `confirm` question. The scope the steps render in
/// and their directory, or how the run ended already.
fn prelude(
    session: &Session,
    opts: &RunOptions,
    job: &Job,
    control: &Arc<Control>,
    sink: &mut output::RunOutput,
    check: &mut Option<crate::fresh::Check>,
) -> Result<(crate::context::Scope, std::path::PathBuf), Outcome> {
    let failed = |reason: Reason| Outcome::Failed(Failure::new(reason, None));
    let task = job.task;
    if !task.platforms.is_empty() && !task.platforms.iter().any(|p| p.is_current()) {
        let wanted: Vec<&str> = task
            .platforms
            .iter()
            .map(|p| crate::model::Platform::NAMES[*p as usize])
            .collect();
        let note = format!("skipped: only for {}", wanted.join(", "));
        sink.note(&note);
        return Err(Outcome::Skipped(note));
    }
    if let Some(missing) = unsupported(task) {
        return Err(failed(Reason::other(
            2,
            format!("`{missing}` is not supported yet by this version of tasker"),
        )));
    }
    let scope = &job.run.scope;
    let mut env: Env = scope.env.as_ref().clone();
    env.insert("TASKER_TASK".into(), task.name.clone());
    env.insert(
        "TASKER_ROOT".into(),
        session.model.root.display().to_string(),
    );
    let mut step_scope = scope.clone();
    step_scope.env = Arc::new(env);

    let dir = match &task.dir {
        Some(t) => {
            let what = format!("`dir` of task `{}`", task.name);
            let d = session
                .render(t, Mode::Plain, &step_scope, &what)
                .map_err(|e| failed(e.into()))?;
            session.model.root.join(d)
        }
        None => session.model.root.clone(),
    };
    if let Some(why) = dir_problem(&dir).filter(|_| !opts.dry_run) {
        return Err(failed(Reason::other(1, why)));
    }
    if !task.sources.is_empty() {
        let c = opts
            .fresh
            .check(session, task, &job.run, &step_scope, &dir)
            .map_err(|why| failed(Reason::other(2, why)))?;
        if c.stale.is_none() {
            sink.note(&if opts.verbose {
                format!(
                    "up to date ({} source{}, {} read)",
                    c.files,
                    if c.files == 1 { "" } else { "s" },
                    c.read
                )
            } else {
                "up to date".to_string()
            });
            return Err(Outcome::Skipped("up to date".into()));
        }
        if opts.verbose {
            sink.note(&format!(
                "not up to date: {}",
                c.stale.as_deref().unwrap_or_default()
            ));
        }
        *check = Some(c);
    }
    if let Some(question) = &task.confirm {
        let what = format!("`confirm` of task `{}`", task.name);
        let text = session
            .render(question, Mode::Plain, &step_scope, &what)
            .map_err(|e| failed(e.into()))?;
        if opts.dry_run && !opts.yes {
            sink.note(&format!("would ask: {text} [y/N]"));
        }
        if !opts.yes && !opts.dry_run {
            match confirm(&text, &opts.report, control) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => return Err(failed(Reason::NotConfirmed)),
                Ok(None) => return Err(Outcome::Cancelled),
                Err(why) => return Err(failed(Reason::other(1, why))),
            }
        }
    }
    Ok((step_scope, dir))
}

/// Keys the loader accepts but this version cannot run.
fn unsupported(task: &Task) -> Option<&'static str> {
    if task.background {
        Some("background")
    } else {
        None
    }
}

/// Sleep, waking early when the run is cancelled; true if it was.
fn wait_cancellable(control: &Control, total: Duration) -> bool {
    let Some(deadline) = Instant::now().checked_add(total) else {
        while !control.is_cancelled() {
            std::thread::sleep(Duration::from_millis(20));
        }
        return true;
    };
    while Instant::now() < deadline {
        if control.is_cancelled() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20).min(deadline - Instant::now()));
    }
    control.is_cancelled()
}

/// Ask `question` on the terminal: one question at a time, alone on the
/// screen, and answered only by what is typed after it is shown. `None`
/// when the run was cancelled meanwhile (Ctrl-C ends the question at once).
fn confirm(question: &str, report: &Console, control: &Control) -> Result<Option<bool>, String> {
    if !std::io::stdin().is_terminal() {
        return Err(format!(
            "`{question}` needs an answer, and there is no terminal (use --yes)"
        ));
    }
    report.begin_question(&format!("{question} [y/N] "));
    let answer = process::read_answer(|| control.is_cancelled());
    if answer.is_none() {
        let _ = std::io::stderr().write_all(b"\n");
    }
    report.end_question();
    match answer {
        None => Ok(None),
        Some(None) => Err(format!("`{question}` got no answer")),
        Some(Some(line)) => Ok(Some(matches!(
            line.trim().to_lowercase().as_str(),
            "y" | "yes"
        ))),
    }
}

struct StepContext<'a, 's> {
    session: &'a Session<'s>,
    opts: &'a RunOptions,
    job: &'a Job<'a>,
    dir: &'a Path,
    control: &'a Arc<Control>,
    calls: &'a dyn Calls,
    /// When the attempt times out (`timeout`).
    deadline: Option<Instant>,
}

/// A step ready to start: rendered and split into programs.
enum Prepared {
    Processes {
        echo: String,
        argvs: Vec<Vec<String>>,
    },
    Calls {
        echo: String,
        invocations: Vec<Invocation>,
    },
}

impl StepContext<'_, '_> {
    /// The `run` steps, once and then once per retry while they fail.
    fn attempts(&mut self, scope: &crate::context::Scope, sink: &mut output::RunOutput) -> Outcome {
        let task = self.job.task;
        let control = self.control;
        let mut outcome = Outcome::Success;
        for attempt in 0..=task.retries {
            if attempt > 0 {
                sink.note(&format!("retrying ({attempt} of {})", task.retries));
                if !task.retry_delay.is_zero() && wait_cancellable(control, task.retry_delay) {
                    return Outcome::Cancelled;
                }
                sink.reset_attempt();
            }
            // `timeout` bounds each attempt's steps together, not each step.
            // A limit too far away to add to the clock is no limit.
            self.deadline = task
                .timeout
                .and_then(|limit| Instant::now().checked_add(limit));
            outcome = self.run_steps(&task.run, scope, sink);
            // A pattern that must have matched decides each attempt, so that
            // `retries` retries it like any failure (SPEC 5).
            if outcome == Outcome::Success && !control.is_cancelled() {
                if let Some(failure) = sink.unmatched_pattern() {
                    outcome = Outcome::Failed(failure);
                }
            }
            if !matches!(outcome, Outcome::Failed(_)) || control.is_cancelled() {
                break;
            }
            if let Outcome::Failed(f) = &outcome {
                if attempt < task.retries {
                    sink.note(&format!("attempt {} failed: {}", attempt + 1, f.reason));
                }
            }
        }
        outcome
    }

    fn run_steps(
        &self,
        steps: &[Step],
        scope: &crate::context::Scope,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        for (index, step) in steps.iter().enumerate() {
            if self.control.is_cancelled() {
                return Outcome::Cancelled;
            }
            if self.deadline.is_some_and(|d| Instant::now() >= d) {
                return self.timed_out(None);
            }
            match self.run_step(index, step, scope, sink) {
                Outcome::Failed(f) if step.ignore_failure && !self.control.is_cancelled() => {
                    sink.note(&format!("step failed ({}), ignored", f.reason));
                }
                Outcome::Success | Outcome::Skipped(_) => {}
                other => return other,
            }
        }
        Outcome::Success
    }

    /// `finally` runs even after a cancel: its processes get a fresh
    /// control of their own.
    fn run_finally(
        &self,
        steps: &[Step],
        scope: &crate::context::Scope,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let control = Arc::new(Control::default());
        let ctx = StepContext {
            control: &control,
            ..*self
        };
        ctx.run_steps(steps, scope, sink)
    }

    fn run_step(
        &self,
        index: usize,
        step: &Step,
        scope: &crate::context::Scope,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let prepared = match self.prepare(index, step, scope) {
            Ok(p) => p,
            Err(e) => {
                return Outcome::Failed(Failure::new(e, Some(format!("step {}", index + 1))));
            }
        };
        let dir = match &step.dir {
            Some(t) => match self
                .session
                .render(t, Mode::Plain, scope, "`dir` of a step")
            {
                Ok(d) => self.dir.join(d),
                Err(e) => return Outcome::Failed(Failure::new(e, None)),
            },
            None => self.dir.to_path_buf(),
        };
        match prepared {
            Prepared::Calls { echo, invocations } => {
                if self.echo_on() {
                    sink.echo(&format!("task {echo}"));
                }
                match self.calls.call(self.job.id, invocations, self.deadline) {
                    Ok(true) => Outcome::Success,
                    // The called runs go on (others may need them); this
                    // run's time is up.
                    Ok(false) => self.timed_out(Some(&format!("task {echo}"))),
                    Err(CallError::Cancelled) => Outcome::Cancelled,
                    Err(CallError::Failed(f)) => Outcome::Failed(Failure {
                        step: Some(format!("task {echo}")),
                        ..f
                    }),
                }
            }
            Prepared::Processes { echo, argvs } => {
                if self.echo_on() {
                    sink.echo(&echo);
                }
                if self.opts.dry_run {
                    return Outcome::Success;
                }
                if let Some(why) = dir_problem(&dir) {
                    return Outcome::Failed(Failure::new(Reason::other(1, why), Some(echo)));
                }
                self.spawn_and_wait(&echo, &argvs, &dir, &scope.env, sink)
            }
        }
    }

    fn timed_out(&self, step: Option<&str>) -> Outcome {
        let limit = self.job.task.timeout.unwrap_or_default();
        Outcome::Failed(Failure::new(
            Reason::TimedOut(limit),
            step.map(String::from),
        ))
    }

    fn echo_on(&self) -> bool {
        self.opts.echo && !self.job.task.quiet
    }

    fn prepare(
        &self,
        index: usize,
        step: &Step,
        scope: &crate::context::Scope,
    ) -> Result<Prepared, Error> {
        let session = self.session;
        let task = self.job.task;
        let what = format!("step {} of task `{}`", index + 1, task.name);
        Ok(match &step.kind {
            StepKind::Sh(t) => {
                let script = session.render(t, Mode::Shell, scope, &what)?;
                let shell = task.shell.as_ref().unwrap_or(&session.model.settings.shell);
                let argv = direct::argv(shell, &script).unwrap_or_else(|| {
                    let mut argv = shell.clone();
                    argv.push(script.clone());
                    argv
                });
                Prepared::Processes {
                    echo: script.trim_end_matches('\n').to_string(),
                    argvs: vec![argv],
                }
            }
            StepKind::Cmd(elements) => {
                let mut argv = Vec::new();
                for t in elements {
                    // Elements that render to nothing are dropped (an
                    // optional flag).
                    argv.extend(
                        session
                            .render_words(t, scope, &what)?
                            .into_iter()
                            .filter(|w| !w.is_empty()),
                    );
                }
                if argv.is_empty() {
                    return Err(Error::at(
                        &step.span,
                        format!("{what}: `cmd` renders to no program"),
                    ));
                }
                Prepared::Processes {
                    echo: join_words(&argv),
                    argvs: vec![argv],
                }
            }
            StepKind::Pipe(stages) => {
                let mut argvs = Vec::new();
                for t in stages {
                    let text = session.render(t, Mode::Shell, scope, &what)?;
                    let words = shell_words::split(&text).map_err(|e| {
                        Error::at(
                            &t.span,
                            format!("{what}: cannot split `{text}` into words: {e}"),
                        )
                    })?;
                    if words.is_empty() {
                        return Err(Error::at(
                            &t.span,
                            format!("{what}: a `pipe` stage renders to nothing"),
                        ));
                    }
                    argvs.push(words);
                }
                Prepared::Processes {
                    echo: argvs
                        .iter()
                        .map(|a| join_words(a))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    argvs,
                }
            }
            StepKind::Task(call) => {
                let text = session.render(&call.template, Mode::Shell, scope, &what)?;
                let invocations =
                    args::parse_call(session.model, &text, &call.template.span, &task.name)?;
                Prepared::Calls {
                    echo: text,
                    invocations,
                }
            }
        })
    }

    /// Long by design: a step's processes from resolving the programs to
    /// the verdict, in the order they happen; `start` and `verdict` hold
    /// the two longest pieces.
    fn spawn_and_wait(
        &self,
        echo: &str,
        argvs: &[Vec<String>],
        dir: &Path,
        env: &BTreeMap<String, String>,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let path = env.get("PATH").map(String::as_str);
        // Resolved here, against the PATH the step gets: a missing program
        // is named precisely, and std can spawn without forking since it
        // need not search a changed PATH itself.
        let mut programs = Vec::with_capacity(argvs.len());
        for argv in argvs {
            match process::resolve_program(&argv[0], dir, path) {
                Some(program) => programs.push(program),
                None => {
                    // Without PATH only a name with a `/` can be found:
                    // say so, rather than blame the program.
                    let reason = if path.is_none() && !argv[0].contains('/') {
                        Reason::NoPath(argv[0].clone())
                    } else {
                        Reason::NotFound(argv[0].clone())
                    };
                    return Outcome::Failed(Failure::new(reason, Some(echo.to_string())));
                }
            }
        }
        if let Some(why) = unreachable_value(argvs, env) {
            return Outcome::Failed(Failure::new(Reason::other(2, why), Some(echo.to_string())));
        }
        let alone = self.job.alone;
        // Every run's processes get a group of their own, so that stopping
        // the run stops its whole tree. On its own terminal (pty) a run
        // leads its own session. A run that has tasker's terminal alone
        // gets the terminal's foreground, as a shell would give it; a
        // pipeline in that place (several groups cannot share it) stays in
        // tasker's group instead, so that it can still read the terminal.
        let shares_terminal = alone && !self.job.task.pty && std::io::stdin().is_terminal();
        let foreground = shares_terminal && argvs.len() == 1 && process::owns_terminal();
        let new_group = !shares_terminal || foreground || self.job.task.pty;
        let (handle, io) = match self.start(argvs, programs, dir, env, sink, foreground, new_group)
        {
            Ok(started) => started,
            Err(Outcome::Failed(f)) => {
                return Outcome::Failed(Failure {
                    step: Some(echo.to_string()),
                    ..f
                })
            }
            Err(outcome) => return outcome,
        };
        let pids = handle.pids();
        let procs: Vec<Proc> = pids
            .iter()
            .map(|&pid| Proc {
                pid,
                group: new_group,
            })
            .collect();
        let stop = || self.control.stop(procs.clone());
        let timed_out = AtomicBool::new(false);
        let on_timeout = || {
            timed_out.store(true, Ordering::SeqCst);
            stop();
        };
        // What the main process left in its group: asked to stop at once,
        // then waited for (SIGKILL after the grace period).
        let leftovers = |wait: bool| {
            for proc in &procs {
                if wait {
                    process::reap(*proc);
                } else if proc.group {
                    process::terminate(*proc);
                }
            }
        };
        // A run that holds the terminal may be stopped there (Ctrl-Z):
        // tasker then stops too, as a shell's job does, until `fg`.
        let job_control = foreground.then(|| {
            let pid = pids[0];
            std::thread::spawn(move || process::follow_job(pid))
        });
        let status = sink.watch(
            io,
            &handle,
            self.deadline
                .map(|d| d.saturating_duration_since(Instant::now())),
            &on_timeout,
            &stop,
            &leftovers,
        );
        if foreground {
            process::reclaim_terminal();
        }
        if let Some(thread) = job_control {
            let _ = thread.join();
        }
        let dropped = sink.take_dropped_answers();
        if dropped > 0 && self.opts.verbose {
            sink.note(&format!(
                "{dropped} bytes of answers were dropped: the run did not read its stdin"
            ));
        }
        self.control.forget(&pids);
        self.verdict(
            status,
            timed_out.load(Ordering::SeqCst),
            foreground,
            echo,
            sink,
        )
    }

    /// Start the step's programs, wired to `sink`. An executable file
    /// without `#!` is started again through `sh`, as `sh` itself does.
    #[allow(clippy::too_many_arguments)]
    fn start(
        &self,
        argvs: &[Vec<String>],
        mut programs: Vec<std::path::PathBuf>,
        dir: &Path,
        env: &BTreeMap<String, String>,
        sink: &mut output::RunOutput,
        foreground: bool,
        new_group: bool,
    ) -> Result<(duct::Handle, output::StepIo), Outcome> {
        let alone = self.job.alone;
        let path = env.get("PATH").map(String::as_str);
        let io_error = |e: std::io::Error| {
            Outcome::Failed(Failure::new(
                Reason::other(1, format!("cannot set up output: {e}")),
                None,
            ))
        };
        let mut argvs = argvs.to_vec();
        let mut scripts_wrapped = false;
        loop {
            let mut io = match sink.prepare_step(alone) {
                Ok(io) => io,
                Err(e) => return Err(io_error(e)),
            };
            let pty = io.pty;
            let mut expr: Option<duct::Expression> = None;
            for (argv, program) in argvs.iter().zip(&programs) {
                let arg0 = argv[0].clone();
                let stage = duct::cmd(program, &argv[1..]).before_spawn(move |cmd| {
                    process::configure(cmd, new_group && !pty && !foreground, &arg0);
                    if pty {
                        process::take_terminal(cmd);
                    }
                    if foreground {
                        process::foreground(cmd);
                    }
                    Ok(())
                });
                expr = Some(match expr {
                    None => stage,
                    Some(left) => left.pipe(stage),
                });
            }
            let expr = expr.expect("at least one stage");
            let expr = with_env(expr.dir(dir), env).unchecked();
            let expr = io.apply(expr);
            match self.control.spawn(expr, new_group) {
                Ok(Some(h)) => return Ok((h, io)),
                Ok(None) => return Err(Outcome::Cancelled),
                // An executable file without `#!`: `sh` runs it as a shell
                // script, and so does tasker.
                Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) && !scripts_wrapped => {
                    scripts_wrapped = true;
                    let shell = process::resolve_program("sh", dir, path)
                        .unwrap_or_else(|| "/bin/sh".into());
                    for (argv, program) in argvs.iter_mut().zip(programs.iter_mut()) {
                        if !process::has_binary_magic(program) {
                            let script = program.display().to_string();
                            argv.splice(0..1, ["sh".to_string(), script]);
                            *program = shell.clone();
                        }
                    }
                }
                Err(e) => {
                    return Err(Outcome::Failed(Failure::new(
                        spawn_failure(&e, &argvs, &programs, env),
                        None,
                    )))
                }
            }
        }
    }

    /// How the step ended, from what happened in order of precedence: a
    /// timeout, a pattern, a cancel, the user's interrupt, the status.
    fn verdict(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
        timed_out: bool,
        foreground: bool,
        echo: &str,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                return Outcome::Failed(Failure::new(
                    Reason::other(1, format!("lost the process: {e}")),
                    Some(echo.to_string()),
                ))
            }
        };
        if timed_out {
            return self.timed_out(Some(echo));
        }
        if let Some(reason) = sink.take_pattern_failure() {
            // The pattern decided, not however the stopped process died.
            return Outcome::Failed(Failure::new(
                Reason::Pattern(reason),
                Some(echo.to_string()),
            ));
        }
        if self.control.is_cancelled() {
            return Outcome::Cancelled;
        }
        if foreground {
            // Ctrl-C (or Ctrl-\) typed at a run that held the terminal is
            // the user's interrupt of tasker, as in a shell: no retry, no
            // `ignore_failure`, nothing more starts.
            if let Some(sig) = process::interrupted_by(status) {
                crate::stop::request(sig);
                return Outcome::Cancelled;
            }
        }
        if let Some(reason) = process::failure(status) {
            return Outcome::Failed(Failure::new(reason, Some(echo.to_string())));
        }
        Outcome::Success
    }
}

/// Why an argument or environment value cannot reach a process: the
/// system takes them as C strings, which end at a NUL byte.
fn unreachable_value(argvs: &[Vec<String>], env: &BTreeMap<String, String>) -> Option<String> {
    for argv in argvs {
        for (i, word) in argv.iter().enumerate() {
            if word.contains('\0') {
                let what = if i == 0 {
                    "the program name".to_string()
                } else {
                    format!("argument {i} of `{}`", argv[0])
                };
                return Some(format!(
                    "{what} holds a NUL byte, which cannot reach a process: {}",
                    shell_words::quote(&word.replace('\0', "\\0"))
                ));
            }
        }
    }
    let (name, _) = env
        .iter()
        .find(|(k, v)| v.contains('\0') || k.contains('\0'))?;
    Some(format!(
        "environment variable `{}` holds a NUL byte, which cannot reach a process",
        name.replace('\0', "\\0")
    ))
}

/// Why the system refused to start a step's programs, as `sh` would say it.
fn spawn_failure(
    e: &std::io::Error,
    argvs: &[Vec<String>],
    programs: &[std::path::PathBuf],
    env: &BTreeMap<String, String>,
) -> Reason {
    let first = argvs[0][0].clone();
    match e.raw_os_error() {
        Some(libc::EACCES) => {
            let culprit = argvs
                .iter()
                .zip(programs)
                .find(|(_, p)| !process::is_executable(p))
                .map_or(first, |(argv, _)| argv[0].clone());
            Reason::NotExecutable(culprit)
        }
        Some(libc::E2BIG) => {
            let args: usize = argvs.iter().flatten().map(|w| w.len() + 1).sum();
            let environ: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            let largest = env
                .iter()
                .max_by_key(|(k, v)| k.len() + v.len())
                .map(|(k, v)| {
                    format!(
                        "; the largest environment variable is `{k}` ({} bytes)",
                        v.len()
                    )
                })
                .unwrap_or_default();
            let longest = argvs.iter().flatten().map(String::len).max().unwrap_or(0);
            Reason::other(
                2,
                format!(
                    "the arguments ({args} bytes, the longest {longest}) and the environment ({environ} bytes) are too big for the system to start `{first}`{largest}"
                ),
            )
        }
        _ => Reason::CannotStart {
            program: first,
            error: e.to_string(),
        },
    }
}

/// Give the expression exactly `env`, by naming only what differs from
/// tasker's own environment: far cheaper per spawn than replacing it whole.
fn with_env(mut expr: duct::Expression, env: &BTreeMap<String, String>) -> duct::Expression {
    static OWN: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    });
    for (key, value) in env {
        if own.get(key) != Some(value) {
            expr = expr.env(key, value);
        }
    }
    for key in own.keys() {
        if !env.contains_key(key) {
            expr = expr.env_remove(key);
        }
    }
    expr
}

/// Words joined for display, each quoted when the shell would need it.
pub fn join_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_words::quote(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
