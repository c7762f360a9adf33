//! How a run ended, as a type from the moment it is known until the report
//! prints it: an exit code is never mistaken for a signal, and the report
//! never guesses from the shape of a message.

use std::fmt;
use std::time::Duration;

use crate::error::Error;

/// How a run ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Success,
    /// Skipped for a reason that counts as success (platform).
    Skipped(String),
    /// Not run: its outputs, output and values came from the remote cache.
    Restored,
    /// Not run: nothing it depends on changed since its recorded success
    /// (SPEC 7); its values are the recorded ones.
    UpToDate,
    Failed(Failure),
    /// Stopped by tasker (fail-fast or a signal).
    Cancelled,
    /// Not started because a run it depends on failed.
    NotRun(String),
    /// A service that tasker stopped (nothing needed it any more, or the
    /// invocation ended): not a failure.
    Stopped,
}

impl Outcome {
    pub fn succeeded(&self) -> bool {
        matches!(
            self,
            Outcome::Success
                | Outcome::Skipped(_)
                | Outcome::Stopped
                | Outcome::Restored
                | Outcome::UpToDate
        )
    }
}

/// A failed run or step: what happened, where, and the exit status it
/// gives tasker.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub reason: Reason,
    /// The step that failed, as echoed.
    pub step: Option<String>,
    /// The failure is one of a `finally` step.
    pub in_finally: bool,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq)]
pub enum Reason {
    /// The process exited with this code (not 0).
    Exit(i32),
    /// The process was killed by this signal.
    Signal(i32),
    /// The attempt ran out of its `timeout`.
    TimedOut(Duration),
    /// No such program (on the PATH, or at that path).
    NotFound(String),
    /// A program named without a `/`, and the step's environment has no
    /// PATH to find it on.
    NoPath(String),
    /// The program exists but may not be executed (permission, a directory).
    NotExecutable(String),
    /// The program could not be started for another reason.
    CannotStart { program: String, error: String },
    /// A pattern decided (`fail_on`, `expect`, `extract`).
    Pattern(String),
    /// `confirm` was answered no.
    NotConfirmed,
    /// A located error (a template that did not render, a wrong call),
    /// kept whole: the report renders it, in colour on a terminal, and it
    /// names the task and step itself.
    Diagnostic(Box<Error>),
    /// A run called by a `task` step did not succeed.
    Called { task: String, reason: Box<Reason> },
    /// A service ended by itself, or was not ready in time; `tail` holds
    /// its last lines of output.
    Service { end: ServiceEnd, tail: Vec<String> },
    /// The working directory cannot be used (missing, not a directory).
    Dir(String),
    /// A `preconditions` command failed: its `msg`, or what failed.
    Precondition(String),
    /// `confirm` could not be asked, or got no answer.
    CannotAsk(String),
    /// The step's output could not be set up (pipes, files).
    OutputSetup(String),
    /// Waiting for the step's process failed.
    LostProcess(String),
    /// A value holds what no process can receive (a NUL byte).
    Unreachable(String),
    /// The arguments and environment are too big for the system.
    TooBig(String),
    /// The sources or outputs could not be checked for the fingerprint.
    Sources(String),
    /// A `task` step's call would wait for its caller.
    Cycle(String),
    /// A `task` step called a service that tasker had already stopped.
    ServiceGone(String),
    /// A `task` step called a run that did not run.
    CallNotRun { task: String, why: String },
    /// A `task` step called a run that ended neither well nor failed.
    CallUnfinished(String),
    /// No worker took a distributed run in time.
    NotTaken(String),
    /// The queue was lost while a run was out on it.
    QueueLost(String),
    /// The run's result on the queue failed its check.
    ResultRefused(String),
    /// The worker reported an end this invocation did not ask for.
    WorkerSaid(String),
    /// A worker refused the run (another file, another version).
    Refused(String),
    /// The run was lost with its workers too many times.
    LostTooOften(String),
    /// A worker ran the run but could not send all its output.
    OutputLost(String),
    /// A failure a worker reported, in its words, with the status it gave
    /// there.
    Remote { status: i32, message: String },
    /// A fault inside tasker, not in the run's commands.
    Internal(String),
}

impl Reason {
    /// The exit status this failure gives tasker (SPEC 1).
    pub fn status(&self) -> i32 {
        match self {
            Reason::Exit(code) => *code,
            Reason::Signal(sig) => 128 + sig,
            Reason::TimedOut(_) => 124,
            Reason::NotFound(_) | Reason::NoPath(_) => 127,
            Reason::NotExecutable(_) | Reason::CannotStart { .. } => 126,
            Reason::Pattern(_) | Reason::NotConfirmed => 1,
            Reason::Diagnostic(e) => e.exit_code(),
            Reason::Remote { status, .. } => *status,
            Reason::Dir(_)
            | Reason::Precondition(_)
            | Reason::CannotAsk(_)
            | Reason::OutputSetup(_)
            | Reason::LostProcess(_)
            | Reason::ServiceGone(_)
            | Reason::CallNotRun { .. }
            | Reason::CallUnfinished(_)
            | Reason::NotTaken(_)
            | Reason::QueueLost(_)
            | Reason::WorkerSaid(_)
            | Reason::LostTooOften(_)
            | Reason::OutputLost(_) => 1,
            // What the file or the invocation asked cannot be done, as a
            // usage error.
            Reason::Unreachable(_)
            | Reason::TooBig(_)
            | Reason::Sources(_)
            | Reason::Cycle(_)
            | Reason::ResultRefused(_)
            | Reason::Refused(_) => 2,
            // EX_SOFTWARE
            Reason::Internal(_) => 70,
            Reason::Called { reason, .. } => reason.status(),
            Reason::Service { end, .. } => match end {
                ServiceEnd::NotReady { .. } => 124,
                ServiceEnd::Exited { how: Some(how), .. } => how.status(),
                ServiceEnd::Exited { how: None, .. } => 1,
            },
        }
    }
}

impl From<Error> for Reason {
    fn from(e: Error) -> Reason {
        Reason::Diagnostic(Box::new(e))
    }
}

impl fmt::Display for Reason {
    /// One line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Exit(code) => write!(f, "exit status {code}"),
            Reason::Signal(sig) => write!(f, "killed by signal {sig}"),
            Reason::TimedOut(limit) => write!(f, "timed out after {}", human_duration(*limit)),
            Reason::NotFound(program) => write!(f, "program not found: `{program}`"),
            Reason::NoPath(program) => write!(
                f,
                "program not found: `{program}`: PATH is not set in the step's environment"
            ),
            Reason::NotExecutable(program) => {
                write!(f, "cannot execute `{program}`: permission denied")
            }
            Reason::CannotStart { program, error } => {
                write!(f, "cannot start `{program}`: {error}")
            }
            Reason::Pattern(text) => f.write_str(text),
            Reason::NotConfirmed => f.write_str("not confirmed"),
            Reason::Diagnostic(e) => f.write_str(&e.message),
            Reason::Called { task, reason } => write!(f, "task `{task}` failed: {reason}"),
            Reason::Service { end, .. } => end.fmt(f),
            Reason::OutputSetup(why) => write!(f, "cannot set up output: {why}"),
            Reason::LostProcess(why) => write!(f, "lost the process: {why}"),
            Reason::ServiceGone(task) => write!(f, "service `{task}` had already been stopped"),
            Reason::CallNotRun { task, why } => write!(f, "task `{task}` did not run: {why}"),
            Reason::CallUnfinished(task) => write!(f, "task `{task}` did not succeed"),
            Reason::QueueLost(why) => write!(f, "the queue was lost while the run was out: {why}"),
            Reason::ResultRefused(why) => {
                write!(f, "refused the run's result from the queue: {why}")
            }
            Reason::Internal(why) => write!(f, "internal error in tasker: {why}"),
            Reason::OutputLost(why) => write!(f, "its output was lost: {why}"),
            Reason::Dir(text)
            | Reason::Precondition(text)
            | Reason::CannotAsk(text)
            | Reason::Unreachable(text)
            | Reason::TooBig(text)
            | Reason::Sources(text)
            | Reason::Cycle(text)
            | Reason::NotTaken(text)
            | Reason::WorkerSaid(text)
            | Reason::Refused(text)
            | Reason::LostTooOften(text)
            | Reason::Remote { message: text, .. } => f.write_str(text),
        }
    }
}

/// How a service ended when tasker did not stop it.
#[derive(Clone, Debug, PartialEq)]
pub enum ServiceEnd {
    /// Not ready within `ready_timeout`: no line matched `ready` (or,
    /// without one, its last step had not started).
    NotReady {
        pattern: Option<String>,
        limit: Duration,
    },
    /// It exited (`how` is none for status 0), before it was ready or
    /// while runs that depend on it were still to come.
    Exited {
        ready: bool,
        how: Option<Box<Reason>>,
    },
}

impl fmt::Display for ServiceEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceEnd::NotReady { pattern, limit } => {
                let limit = human_duration(*limit);
                match pattern {
                    Some(p) => write!(
                        f,
                        "the service was not ready after {limit}: no line matched `ready` (`{p}`)"
                    ),
                    None => write!(
                        f,
                        "the service was not ready after {limit}: its last step had not started"
                    ),
                }
            }
            ServiceEnd::Exited { ready, how } => {
                let when = if *ready {
                    "while runs that depend on it were still to come"
                } else {
                    "before it was ready"
                };
                match how {
                    Some(how) => write!(f, "the service ended {when}: {how}"),
                    None => write!(f, "the service exited {when} (exit status 0)"),
                }
            }
        }
    }
}

impl Failure {
    pub fn new(reason: impl Into<Reason>, step: Option<String>) -> Failure {
        Failure {
            reason: reason.into(),
            step,
            in_finally: false,
        }
    }

    pub fn status(&self) -> i32 {
        self.reason.status()
    }
}

/// `850ms`, `2.5s`, `3m05s`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}
