//! One run of a task: its directory, environment, confirmation, steps,
//! retries and `finally`, each step as processes in their own process
//! group (one program started by tasker itself, a pipeline through duct).
//! The scheduler decides when a run starts; this module decides what it
//! does and how it ended.

mod cache;
mod child;
mod control;
mod direct;
pub mod output;
mod prepare;
mod spawn;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::value::Value;

use crate::args::{self, Invocation};
use crate::context::Session;
use crate::error::Error;
use crate::graph::Run;
use crate::model::{Step, StepKind, Task};
use crate::template::Mode;

pub use crate::outcome::{Failure, Outcome, Reason, ServiceEnd};

/// How long a service may take to be ready when `ready_timeout` is not set.
pub const SERVICE_READY_TIMEOUT: Duration = Duration::from_secs(30);
use crate::process;
pub use crate::process::Proc;
pub use cache::prefetch;
pub use cache::restore_outputs;
pub use control::Control;
pub use output::Console;
use prepare::Prepared;

/// The run as the up-to-date check names it.
fn run_ref(run: &Run) -> crate::fresh::RunRef<'_> {
    crate::fresh::RunRef {
        name: &run.name,
        args: &run.scope,
    }
}

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

/// Settings of the invocation that shape every run.
pub struct RunOptions {
    pub echo: bool,
    pub yes: bool,
    pub verbose: bool,
    pub dry_run: bool,
    pub report: Arc<Console>,
    /// Up-to-date checks and records (`sources`).
    pub fresh: Arc<crate::fresh::Fresh>,
    /// The remote cache, when one is configured and not off.
    pub remote: Option<Arc<crate::remote::Remote>>,
    /// Where runs of `distribute = true` tasks go, with a queue (SPEC 11).
    pub fleet: Option<Arc<dyn Fleet>>,
    /// Attempts made elsewhere already (a worker that died with the run):
    /// they count against `retries`.
    pub attempts_made: u32,
}

/// Runs somewhere else: the coordinator's side of the queue (SPEC 11).
/// A run given to it ends as a local run would, with its output shown and
/// its results recorded for `tasks.NAME`.
pub trait Fleet: Send + Sync {
    fn run(
        &self,
        session: &Session,
        opts: &RunOptions,
        job: &Job,
        control: &Arc<Control>,
    ) -> Finished;
}

/// Everything one run needs, cloned out of the graph.
pub struct Job<'a> {
    pub id: usize,
    pub run: Run,
    pub task: &'a Task,
    /// This run may have the terminal (nothing overlaps it).
    pub alone: bool,
    /// The run is a service that other runs wait for (SPEC 6).
    pub service: Option<Service>,
}

/// What a service's run needs beyond any run's: how it tells the
/// scheduler that it is ready, from the thread that reads its output.
#[derive(Clone)]
pub struct Service {
    pub on_ready: Arc<dyn Fn() + Send + Sync>,
}

/// A run's result as it finished, with what `tasks.NAME` will show.
pub struct Finished {
    pub outcome: Outcome,
    pub duration: Duration,
    /// A failed `finally` after a run that failed or was cancelled: reported
    /// on its own line, so it hides nothing.
    pub finally: Option<Failure>,
    /// The failure stops the invocation as fail-fast does, even under
    /// `-k`: the queue of a distributed run was lost (SPEC 11).
    pub halt: bool,
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
                    halt: false,
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
    // Recorded (and uploaded) only after a success of its own (not an
    // ignored failure), and never for a dry run.
    if let (Outcome::Success | Outcome::Restored, Some(check), false) =
        (&outcome, check, opts.dry_run)
    {
        let how = if outcome == Outcome::Restored {
            crate::fresh::How::Restored
        } else {
            crate::fresh::How::Ran
        };
        if let Err(why) = check.save(how, sink.result_texts()) {
            sink.note(&format!("warning: {why}"));
        }
        if outcome == Outcome::Success {
            cache::upload(opts, job, &mut sink, &check, started.elapsed());
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
        halt: false,
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
    if let Some(service) = &job.service {
        sink.serve(job.task, Arc::clone(&service.on_ready));
    }
    if opts.dry_run && job.task.background {
        sink.note(&match &job.task.ready {
            Some(p) => format!(
                "a service: not started under -n; its dependents would start once a line matches `{}`",
                p.source
            ),
            None => "a service: not started under -n; its dependents would start once it started"
                .to_string(),
        });
    }
    let mut outcome = ctx.attempts(&step_scope, sink);
    if job.service.is_some() {
        outcome = service_outcome(outcome, control, sink, job.task);
    }
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
            // A failed cleanup fails a run that succeeded (or a service
            // stopped as planned); after a failure or a cancel it is
            // reported beside the run's own ending.
            if matches!(outcome, Outcome::Success | Outcome::Stopped) {
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
    let (step_scope, dir) = scope_and_dir(session, task, &job.run).map_err(failed)?;
    if let Some(why) = dir_problem(&dir).filter(|_| !opts.dry_run) {
        return Err(failed(Reason::Dir(why)));
    }
    // `status` says "up to date" only when every command exits 0; with
    // `sources`, both must say so. Never under -n or -B.
    let status_fresh = |sink: &mut output::RunOutput| -> Result<bool, Outcome> {
        if task.status.is_empty() || opts.dry_run || opts.fresh.forced() {
            return Ok(false);
        }
        for (i, t) in task.status.iter().enumerate() {
            let what = format!("`status` {} of task `{}`", i + 1, task.name);
            let code = check_command(session, task, &step_scope, &dir, t, &what, false)?;
            if opts.verbose {
                sink.note(&format!("status {}: exit status {code}", i + 1));
            }
            if code != 0 {
                return Ok(false);
            }
        }
        Ok(true)
    };
    if opts.dry_run {
        for t in &task.status {
            sink.note(&format!("up to date when `{}` succeeds", t.source));
        }
    }
    if task.sources.is_empty() && status_fresh(sink)? {
        sink.note("up to date");
        return Err(Outcome::UpToDate);
    }
    if !task.sources.is_empty() {
        let mut c = opts
            .fresh
            .check(session, task, run_ref(&job.run), &step_scope, &dir)
            .map_err(|why| failed(Reason::Sources(why)))?;
        if c.stale.is_none() && (task.status.is_empty() || status_fresh(sink)?) {
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
            // `tasks.NAME` reads as after the run that was recorded.
            if let Some((_, values)) = c.recorded.take() {
                sink.recorded(values);
            }
            return Err(Outcome::UpToDate);
        }
        if opts.verbose {
            sink.note(&format!(
                "not up to date: {}",
                c.stale.as_deref().unwrap_or_default()
            ));
        }
        // Sources unchanged but `status` said no: the run happens, and no
        // cache holds a result for it.
        let asked = if c.stale.is_none() {
            cache::Asked::Run
        } else {
            cache::ask(opts, job, control, sink, &c)
        };
        *check = Some(c);
        match asked {
            cache::Asked::Run => {}
            cache::Asked::Restored => return Err(Outcome::Restored),
            cache::Asked::Cancelled => return Err(Outcome::Cancelled),
        }
    }
    preconditions_and_confirm(session, opts, job, control, sink, &step_scope, &dir)?;
    Ok((step_scope, dir))
}

/// The last of the prelude: the `preconditions` (each must succeed) and
/// the `confirm` question, in the scope the steps render in.
fn preconditions_and_confirm(
    session: &Session,
    opts: &RunOptions,
    job: &Job,
    control: &Arc<Control>,
    sink: &mut output::RunOutput,
    step_scope: &crate::context::Scope,
    dir: &Path,
) -> Result<(), Outcome> {
    let failed = |reason: Reason| Outcome::Failed(Failure::new(reason, None));
    let task = job.task;
    for (i, pre) in task.preconditions.iter().enumerate() {
        if opts.dry_run {
            sink.note(&format!("requires `{}` to succeed", pre.sh.source));
            continue;
        }
        let what = format!("`preconditions` {} of task `{}`", i + 1, task.name);
        let code = check_command(session, task, step_scope, dir, &pre.sh, &what, true)?;
        if code != 0 {
            let why = match &pre.msg {
                Some(msg) => session
                    .render(msg, Mode::Plain, step_scope, &what)
                    .map_err(|e| failed(e.into()))?,
                None => format!("precondition `{}` failed with status {code}", pre.sh.source),
            };
            return Err(failed(Reason::Precondition(why)));
        }
    }
    if let Some(question) = &task.confirm {
        let what = format!("`confirm` of task `{}`", task.name);
        let text = session
            .render(question, Mode::Plain, step_scope, &what)
            .map_err(|e| failed(e.into()))?;
        if opts.dry_run && !opts.yes {
            sink.note(&format!("would ask: {text} [y/N]"));
        }
        if !opts.yes && !opts.dry_run {
            match confirm(&text, &opts.report, control) {
                Ok(Some(true)) => {}
                Ok(Some(false)) => return Err(failed(Reason::NotConfirmed)),
                Ok(None) => return Err(Outcome::Cancelled),
                Err(why) => return Err(failed(Reason::CannotAsk(why))),
            }
        }
    }
    Ok(())
}

/// Run a `status` or `preconditions` command the way the task's scripts
/// run (its shell, directory and environment), unechoed, its output
/// dropped (a precondition's stderr shown): its exit status.
fn check_command(
    session: &Session,
    task: &Task,
    scope: &crate::context::Scope,
    dir: &Path,
    template: &crate::model::Template,
    what: &str,
    show_stderr: bool,
) -> Result<i32, Outcome> {
    let failed = |reason: Reason| Outcome::Failed(Failure::new(reason, None));
    let script = session
        .render(template, Mode::Shell, scope, what)
        .map_err(|e| failed(e.into()))?;
    let shell = task.shell.as_ref().unwrap_or(&session.model.settings.shell);
    let mut cmd = std::process::Command::new(&shell[0]);
    cmd.args(&shell[1..])
        .arg(&script)
        .current_dir(dir)
        .env_clear()
        .envs(scope.process_env().iter())
        .stdin(std::process::Stdio::null())
        .stderr(if show_stderr {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        });
    match process::run_captured(cmd) {
        Ok(process::Captured::Exited(status, _)) => Ok(process::status_code(status)),
        Ok(process::Captured::Stopped(_)) => Err(Outcome::Cancelled),
        Err(e) => Err(failed(Reason::NotFound(format!(
            "{} ({what}): {e}",
            shell[0]
        )))),
    }
}

/// The scope a run's steps render in (its environment with `TASKER_TASK`
/// and `TASKER_ROOT`), and its directory.
fn scope_and_dir(
    session: &Session,
    task: &Task,
    run: &Run,
) -> Result<(crate::context::Scope, std::path::PathBuf), Reason> {
    let mut step_scope = run.scope.clone();
    step_scope.added = vec![
        ("TASKER_TASK", task.name.clone()),
        ("TASKER_ROOT", session.model.root.display().to_string()),
    ];
    let dir = match &task.dir {
        Some(t) => {
            let what = format!("`dir` of task `{}`", task.name);
            let d = session.render(t, Mode::Plain, &step_scope, &what)?;
            session.model.root.join(d)
        }
        None => session.model.base_dir(task).to_path_buf(),
    };
    Ok((step_scope, dir))
}

/// How a service's steps ended, seen from the runs that wait for it:
/// stopped by tasker (nothing needs it any more, or the invocation ends)
/// is no failure; ending by itself, or not being ready in time, is one,
/// with its last lines of output.
fn service_outcome(
    outcome: Outcome,
    control: &Control,
    sink: &output::RunOutput,
    task: &Task,
) -> Outcome {
    if control.is_cancelled() {
        return Outcome::Stopped;
    }
    let Some(seen) = sink.service_seen() else {
        return outcome;
    };
    let (how, step) = match outcome {
        Outcome::Success => (None, None),
        Outcome::Failed(f) => (Some(Box::new(f.reason)), f.step),
        other => return other,
    };
    let end = if seen.late {
        ServiceEnd::NotReady {
            pattern: task.ready.as_ref().map(|p| p.source.clone()),
            limit: task.ready_timeout.unwrap_or(SERVICE_READY_TIMEOUT),
        }
    } else {
        ServiceEnd::Exited {
            ready: seen.ready,
            how,
        }
    };
    Outcome::Failed(Failure::new(
        Reason::Service {
            end,
            tail: seen.tail,
        },
        step,
    ))
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

impl StepContext<'_, '_> {
    /// The `run` steps, once and then once per retry while they fail.
    fn attempts(&mut self, scope: &crate::context::Scope, sink: &mut output::RunOutput) -> Outcome {
        let task = self.job.task;
        let control = self.control;
        let mut outcome = Outcome::Success;
        let first = self.opts.attempts_made.min(task.retries);
        for attempt in first..=task.retries {
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
            sink.step_starting(index + 1 == steps.len());
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
                if self.echo_on() && (!step.quiet || self.opts.dry_run) {
                    sink.echo(&format!("task {echo}"));
                }
                sink.step_started();
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
                if self.echo_on() && (!step.quiet || self.opts.dry_run) {
                    sink.echo(&echo);
                }
                if self.opts.dry_run {
                    return Outcome::Success;
                }
                if let Some(why) = dir_problem(&dir) {
                    return Outcome::Failed(Failure::new(Reason::Dir(why), Some(echo)));
                }
                self.spawn_and_wait(&echo, &argvs, &dir, scope.process_env(), sink)
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
}
