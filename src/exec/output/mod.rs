//! Where a run's output goes (SPEC 5 and the output modes of SPEC 6).
//! When nothing needs to read it, the child writes straight to tasker's
//! stdout and stderr. Otherwise each stream is read on its own thread in
//! chunks and handed to the terminal (raw, prefixed or held for grouping),
//! the capture buffer and the patterns, in memory bounded by the longest
//! line kept (1 MiB) and what `capture` asks to keep.

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::value::Value;

use super::{Failure, Outcome, Reason};
use crate::model::{Hide, OutputKeys, Task};
use crate::process::DRAIN;
use crate::style::Style;

pub use crate::model::OutputMode;

/// Bytes read from a child at once, once it has shown it writes fast.
const CHUNK: usize = 256 * 1024;
/// Bytes read at once at first.
const SMALL_CHUNK: usize = 8 * 1024;
/// How long to look for a process whose pipes closed before sleeping in
/// the wait for it.
const EXIT_SPIN: Duration = Duration::from_micros(200);
/// How often a run whose output never pauses is checked for having ended.
const EXIT_CHECK: Duration = Duration::from_millis(100);
/// A line longer than this is matched and shown in pieces.
const MAX_LINE: usize = 1024 * 1024;
/// Lines of hidden output shown when a run fails.
const HIDDEN_TAIL: usize = 200;
/// A kept hidden line is cut to this length.
const HIDDEN_LINE: usize = 4096;
/// Lines of a service's output kept for the message when it fails.
const SERVICE_TAIL: usize = 10;

mod console;
mod poll;
mod reader;
mod spool;

pub use console::{Console, Sink, Stream};
use reader::{KeysView, StreamReader};
pub use spool::Spool;

/// One run's output: the plan for each step's streams and everything read
/// from them.
pub struct RunOutput {
    report: Arc<Console>,
    name: String,
    keys: KeysView,
    /// Held output of a grouped run: stdout and stderr apart.
    held: Option<[Spool; 2]>,
    shared: Arc<Mutex<Shared>>,
    /// `-n`: the patterns that must match are not checked.
    pub dry_run: bool,
    /// This run's output mode (the invocation's, but interleaved for an
    /// interactive run).
    mode: OutputMode,
    /// The `finally` steps have begun (SPEC 5: expect and extract read
    /// the output of `run` only).
    in_finally: bool,
    /// The step about to start is the last of `run`: a service without
    /// `ready` is ready once it started.
    last_step: bool,
    /// The output as shown is kept for the remote cache: it passes through
    /// tasker even when nothing else reads it.
    recording: bool,
    /// A remote cache hit's values, which `tasks.NAME` shows instead.
    restored: Option<BTreeMap<String, String>>,
}

/// A service's readiness (SPEC 6): the first line that matches `ready`,
/// or without one the start of its last step, tells the scheduler once.
struct ServiceWatch {
    notify: Arc<dyn Fn() + Send + Sync>,
    ready: bool,
    /// Ready by then (`ready_timeout`), or the service is stopped.
    deadline: Option<Instant>,
    /// `ready_timeout`, for the deadline of each attempt.
    limit: Duration,
    /// The deadline passed first.
    late: bool,
    /// Its last lines of output, for the message if it fails.
    tail: VecDeque<Vec<u8>>,
    /// Ready, and the scheduler not told yet: the line that matched
    /// `ready` is printed first, so that what a waiting run prints comes
    /// after it.
    untold: bool,
}

impl ServiceWatch {
    fn become_ready(&mut self) {
        if !std::mem::replace(&mut self.ready, true) {
            (self.notify)();
        }
    }

    /// Ready by the line just read: the scheduler is told by `tell`.
    fn saw_ready(&mut self) {
        if !std::mem::replace(&mut self.ready, true) {
            self.untold = true;
        }
    }

    fn tell(&mut self) {
        if std::mem::take(&mut self.untold) {
            (self.notify)();
        }
    }
}

/// What a service's output showed by the time its steps ended.
pub struct ServiceSeen {
    pub ready: bool,
    pub late: bool,
    pub tail: Vec<String>,
}

/// Keep `line` as the newest of at most `lines` lines, cut to HIDDEN_LINE.
fn keep_tail(tail: &mut VecDeque<Vec<u8>>, line: &[u8], lines: usize) {
    if tail.len() == lines {
        tail.pop_front();
    }
    tail.push_back(line[..line.len().min(HIDDEN_LINE)].to_vec());
}

/// What the two reader threads find, shared between them.
#[derive(Default)]
struct Shared {
    captured: [Vec<u8>; 2],
    extracted: Vec<Option<Vec<u8>>>,
    expected: Vec<bool>,
    failed_on: Option<String>,
    tail: VecDeque<Vec<u8>>,
    /// Where responders write: the run's stdin pipe or its terminal, in
    /// non-blocking mode.
    stdin: Option<File>,
    /// Answers not yet taken by the run: a run that does not read its
    /// stdin never stops tasker from reading its output.
    answers: Vec<u8>,
    /// Bytes of answers the run never took.
    dropped_answers: usize,
    /// Set for a service.
    service: Option<ServiceWatch>,
    /// The output as shown, for the remote cache.
    log: Option<crate::remote::Log>,
}

impl Shared {
    /// Write what the run's stdin takes now, keep the rest.
    fn flush_answers(&mut self) {
        let Some(stdin) = &mut self.stdin else {
            return;
        };
        while !self.answers.is_empty() {
            match stdin.write(&self.answers) {
                Ok(0) => break,
                Ok(n) => {
                    self.answers.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // The run closed its stdin: nobody will read the answers.
                Err(_) => {
                    self.answers.clear();
                    break;
                }
            }
        }
    }
}

/// How one step's streams are wired.
pub struct StepIo {
    stdin: StdinPlan,
    /// What tasker reads, each with the stream its bytes count as.
    readers: Vec<(File, Stream)>,
    /// The child's stdout and stderr, when they pass through tasker.
    writers: Option<(File, File)>,
    force_color: bool,
    /// The step runs on a pseudo-terminal of its own (`pty = true`).
    pub pty: bool,
}

enum StdinPlan {
    Inherit,
    Null,
    File(File),
}

/// A pipe's end as a plain file, so pipes and terminals read alike.
fn file<T: Into<std::os::fd::OwnedFd>>(end: T) -> File {
    File::from(end.into())
}

impl StepIo {
    /// The child's ends, for a start without duct.
    #[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
    pub(in crate::exec) fn streams(&self) -> crate::exec::child::Streams<'_> {
        const COLOR: &[(&str, &str)] = &[("CLICOLOR_FORCE", "1"), ("FORCE_COLOR", "1")];
        crate::exec::child::Streams {
            stdin: match &self.stdin {
                StdinPlan::Inherit => None,
                StdinPlan::Null => Some(None),
                StdinPlan::File(f) => Some(Some(f)),
            },
            stdout: self.writers.as_ref().map(|(out, _)| out),
            stderr: self.writers.as_ref().map(|(_, err)| err),
            vars: if self.force_color { COLOR } else { &[] },
        }
    }

    /// The child started: tasker keeps only its own ends, and sees EOF when
    /// the child is done.
    #[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
    pub(in crate::exec) fn close_child_ends(&mut self) {
        self.stdin = StdinPlan::Null;
        self.writers = None;
    }

    /// Wire the expression's streams. The child's ends move into it, so
    /// once the expression is dropped after start tasker holds only its
    /// own ends and sees EOF when the child is done.
    pub fn apply(&mut self, mut expr: duct::Expression) -> duct::Expression {
        expr = match std::mem::replace(&mut self.stdin, StdinPlan::Null) {
            StdinPlan::Inherit => expr,
            StdinPlan::Null => expr.stdin_null(),
            StdinPlan::File(f) => expr.stdin_file(f),
        };
        if let Some((out, err)) = self.writers.take() {
            expr = expr.stdout_file(out).stderr_file(err);
        }
        if self.force_color {
            expr = expr.env("CLICOLOR_FORCE", "1").env("FORCE_COLOR", "1");
        }
        expr
    }
}

impl RunOutput {
    pub fn new(report: Arc<Console>, name: String, task: &Task, sends: Vec<Vec<u8>>) -> RunOutput {
        let keys = KeysView::of(&task.output, sends, task.pty);
        // An interactive run has the terminal: never prefixed or grouped.
        let mode = if task.interactive {
            OutputMode::Interleaved
        } else {
            report.mode
        };
        let grouped = mode == OutputMode::Grouped;
        let shared = Shared {
            extracted: vec![None; keys.extract.len()],
            expected: vec![false; keys.expect.len()],
            ..Shared::default()
        };
        RunOutput {
            held: grouped.then(|| [Spool::new(), Spool::new()]),
            report,
            name,
            keys,
            shared: Arc::new(Mutex::new(shared)),
            dry_run: false,
            mode,
            in_finally: false,
            last_step: false,
            recording: false,
            restored: None,
        }
    }

    /// Keep the output as it is shown, for the remote cache. A scratch
    /// file that cannot be made means nothing is kept (and nothing
    /// uploaded).
    pub fn record(&mut self) {
        if let Ok(log) = crate::remote::Log::new() {
            self.shared.lock().unwrap().log = Some(log);
            self.recording = true;
        }
    }

    /// The output kept since `record`.
    pub fn take_log(&mut self) -> Option<crate::remote::Log> {
        self.recording = false;
        self.shared.lock().unwrap().log.take()
    }

    /// Show a remote cache hit's output, as its run showed it, in this
    /// run's output mode; `tasks.NAME` gets its values.
    pub fn replay(
        &mut self,
        frames: impl Iterator<Item = (u8, Vec<u8>)>,
        results: BTreeMap<String, String>,
    ) {
        let keys = KeysView::of(&OutputKeys::default(), Vec::new(), false);
        let held = Mutex::new(self.held.take());
        let shared = Mutex::new(Shared::default());
        let stop = || {};
        let mut readers = [Stream::Stdout, Stream::Stderr].map(|stream| StreamReader {
            report: &self.report,
            keys: &keys,
            shared: &shared,
            held: &held,
            stream,
            line: Vec::new(),
            respond_from: 0,
            stop: &stop,
            prefix: self.report.prefix(&self.name, stream),
            scratch: Vec::new(),
            mode: self.mode,
            in_finally: false,
            recording: false,
        });
        for (stream, bytes) in frames {
            match stream {
                1 => readers[0].chunk(&bytes),
                2 => readers[1].chunk(&bytes),
                _ => {}
            }
        }
        for reader in &mut readers {
            reader.finish();
        }
        drop(readers);
        self.held = held.into_inner().ok().flatten();
        self.restored = Some(results);
    }

    /// A run skipped as up to date: its values are the ones recorded with
    /// its last success.
    pub fn recorded(&mut self, results: BTreeMap<String, String>) {
        self.restored = Some(results);
    }

    /// This run is a service: read its output for `ready` (and keep its
    /// last lines) from now on, and call `notify` once it is ready.
    pub fn serve(&mut self, task: &Task, notify: Arc<dyn Fn() + Send + Sync>) {
        self.keys.ready = task.ready.clone();
        self.keys.service = true;
        self.keys.reads = true;
        let limit = task.ready_timeout.unwrap_or(super::SERVICE_READY_TIMEOUT);
        self.shared.lock().unwrap().service = Some(ServiceWatch {
            notify,
            ready: false,
            limit,
            deadline: Instant::now().checked_add(limit),
            late: false,
            tail: VecDeque::new(),
            untold: false,
        });
    }

    /// The next step is (or is not) the last one of its list.
    pub fn step_starting(&mut self, last: bool) {
        self.last_step = last;
    }

    /// A step's processes started: a service without `ready` is ready
    /// when its last step of `run` starts.
    pub fn step_started(&mut self) {
        if !self.last_step || self.in_finally || self.keys.ready.is_some() {
            return;
        }
        if let Some(service) = &mut self.shared.lock().unwrap().service {
            service.become_ready();
        }
    }

    /// What a service's output showed; none for any other run.
    pub fn service_seen(&self) -> Option<ServiceSeen> {
        let shared = self.shared.lock().unwrap();
        let service = shared.service.as_ref()?;
        Some(ServiceSeen {
            ready: service.ready,
            late: service.late,
            tail: service
                .tail
                .iter()
                .map(|l| String::from_utf8_lossy(l).into_owned())
                .collect(),
        })
    }

    /// How long a service still has to be ready, while it is not; once
    /// the time is up it is marked late and this says zero, once.
    fn ready_left(&self, now: Instant) -> Option<Duration> {
        if !self.keys.service {
            return None;
        }
        let mut shared = self.shared.lock().unwrap();
        let service = shared.service.as_mut()?;
        if service.ready || service.late {
            return None;
        }
        let left = service.deadline?.saturating_duration_since(now);
        service.late = left.is_zero();
        Some(left)
    }

    /// A line of tasker's about this run: held with a grouped run's output.
    pub fn echo(&mut self, command: &str) {
        let line = self.report.echo_line(&self.name, command);
        self.own_line(&line);
    }

    pub fn note(&mut self, text: &str) {
        if self.report.quiet {
            return;
        }
        let line = self.report.note_line(&self.name, text);
        self.own_line(&line);
    }

    fn own_line(&mut self, line: &str) {
        match &mut self.held {
            Some(spools) => {
                spools[1].write(line.as_bytes());
                spools[1].write(b"\n");
            }
            None => self.report.line(line),
        }
    }

    /// Start a new attempt after a retry: forget what the failed one saw.
    pub fn reset_attempt(&mut self) {
        let mut shared = self.shared.lock().unwrap();
        shared.extracted.iter_mut().for_each(|e| *e = None);
        shared.expected.iter_mut().for_each(|e| *e = false);
        shared.captured = [Vec::new(), Vec::new()];
        shared.failed_on = None;
        // A service retried before it was ready gets its whole time again.
        if let Some(service) = shared.service.as_mut().filter(|s| !s.ready) {
            service.late = false;
            service.deadline = Instant::now().checked_add(service.limit);
        }
    }

    /// Plan the streams of the next step.
    pub fn prepare_step(&mut self, alone: bool) -> std::io::Result<StepIo> {
        if self.keys.pty {
            // One terminal for stdin, stdout and stderr: what the run
            // writes arrives as one stream, and responders type into it.
            let (terminal, child) = crate::process::open_pty()?;
            if !self.keys.respond.is_empty() {
                // Non-blocking for both directions (one open file): the
                // reads below wait in poll(2) anyway.
                let answers = terminal.try_clone()?;
                crate::process::set_nonblocking(&answers)?;
                self.shared.lock().unwrap().stdin = Some(answers);
            }
            return Ok(StepIo {
                stdin: StdinPlan::File(child.try_clone()?),
                readers: vec![(terminal, Stream::Stdout)],
                writers: Some((child.try_clone()?, child)),
                force_color: false,
                pty: true,
            });
        }
        let pipes = self.keys.reads
            || self.mode != OutputMode::Interleaved
            || self.recording
            || self.report.has_sink();
        let stdin = if !self.keys.respond.is_empty() {
            let (r, w) = os_pipe::pipe()?;
            let w = file(w);
            crate::process::set_nonblocking(&w)?;
            self.shared.lock().unwrap().stdin = Some(w);
            StdinPlan::File(file(r))
        } else if alone {
            StdinPlan::Inherit
        } else {
            StdinPlan::Null
        };
        let (readers, writers) = if pipes {
            let (out_r, out_w) = os_pipe::pipe()?;
            let (err_r, err_w) = os_pipe::pipe()?;

            (
                vec![(file(out_r), Stream::Stdout), (file(err_r), Stream::Stderr)],
                Some((file(out_w), file(err_w))),
            )
        } else {
            (Vec::new(), None)
        };
        // Only output that passes through just to be prefixed or grouped
        // keeps its colours: captured or matched output stays plain.
        let force_color = pipes
            && !self.keys.reads
            && (self.mode != OutputMode::Interleaved || self.recording)
            && crate::style::runs_keep_colors(self.report.out_style);
        Ok(StepIo {
            stdin,
            readers,
            writers,
            force_color,
            pty: false,
        })
    }

    /// Wait for the step's processes while reading their output. `stop`
    /// ends the step's processes (timeout, `fail_on`). Once the main
    /// process exited, `leftovers(false)` asks what is left of its group to
    /// stop, and `leftovers(true)` waits until it is gone (SIGKILL after the
    /// grace period). What the pipes still hold is read for at most
    /// `DRAIN` after the exit: a daemon that inherited them never keeps
    /// the step waiting. The reading itself is `poll::Polling`'s.
    pub(in crate::exec) fn watch(
        &mut self,
        io: StepIo,
        handle: &crate::exec::child::Child,
        timeout: Option<Duration>,
        on_timeout: &(dyn Fn() + Sync),
        stop: &(dyn Fn() + Sync),
        leftovers: &(dyn Fn(bool) + Sync),
    ) -> std::io::Result<std::process::ExitStatus> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let wait = || -> std::io::Result<std::process::ExitStatus> {
            let output = match deadline {
                Some(deadline) => match handle.wait_deadline(deadline)? {
                    Some(status) => status,
                    None => {
                        on_timeout();
                        handle.wait()?
                    }
                },
                None => handle.wait()?,
            };
            Ok(output)
        };
        if io.readers.is_empty() {
            let status = wait();
            leftovers(true);
            return status;
        }
        let hooks = poll::Hooks {
            on_timeout,
            stop,
            leftovers,
        };
        let held = Mutex::new(self.held.take());
        let drain_until: Mutex<Option<Instant>> = Mutex::new(None);
        let status = std::thread::scope(|scope| {
            let (pipes, streams): (Vec<File>, Vec<Stream>) = io.readers.into_iter().unzip();
            let readers = streams
                .into_iter()
                .map(|stream| self.reader(&held, stream, stop))
                .collect();
            let mut polling = poll::Polling::new(pipes, readers, deadline);
            polling.run(self, scope, &drain_until, handle, &hooks);
            // The pipes close as the main process exits, a moment before
            // it can be waited for: look again for a little while rather
            // than sleep in the wait and be woken a second time.
            let mut status = polling.status;
            if status.is_none() && deadline.is_none() {
                status = spin_for_exit(handle);
            }
            let status = match status {
                Some(status) => Ok(status),
                None => {
                    let status = wait();
                    leftovers(false);
                    status
                }
            };
            *drain_until.lock().unwrap() =
                Some(polling.exited_at.unwrap_or_else(Instant::now) + DRAIN);
            for reader in polling.fast {
                let _ = reader.join();
            }
            leftovers(true);
            status
        });
        self.drop_answers();
        self.held = held.into_inner().ok().flatten();
        status
    }

    /// The reader of one of the step's streams.
    fn reader<'r>(
        &'r self,
        held: &'r Mutex<Option<[Spool; 2]>>,
        stream: Stream,
        stop: &'r (dyn Fn() + Sync),
    ) -> StreamReader<'r> {
        StreamReader {
            report: &self.report,
            keys: &self.keys,
            shared: &self.shared,
            held,
            stream,
            line: Vec::new(),
            respond_from: 0,
            stop,
            prefix: self.report.prefix(&self.name, stream),
            scratch: Vec::new(),
            mode: self.mode,
            in_finally: self.in_finally,
            recording: self.recording,
        }
    }

    /// The step is over: answers it never took are counted and dropped.
    fn drop_answers(&self) {
        let mut shared = self.shared.lock().unwrap();
        shared.flush_answers();
        shared.stdin = None;
        shared.dropped_answers += shared.answers.len();
        shared.answers.clear();
    }

    /// Bytes of answers the last step never read, once.
    pub fn take_dropped_answers(&mut self) -> usize {
        std::mem::take(&mut self.shared.lock().unwrap().dropped_answers)
    }

    /// Why a pattern stopped the step, once.
    pub fn take_pattern_failure(&mut self) -> Option<String> {
        self.shared.lock().unwrap().failed_on.take()
    }

    /// The output of `run` is over: expect and extract read no more.
    pub fn begin_finally(&mut self) {
        self.in_finally = true;
    }

    /// Why the attempt that just succeeded fails after all: an `expect`
    /// pattern that never matched, or an `extract` that found nothing.
    /// Under -n nothing ran, so nothing is checked.
    pub fn unmatched_pattern(&self) -> Option<Failure> {
        if self.dry_run {
            return None;
        }
        let shared = self.shared.lock().unwrap();
        if let Some(i) = shared.expected.iter().position(|m| !m) {
            return Some(Failure::new(
                Reason::Pattern(format!(
                    "expected output matching `{}`, which never appeared",
                    self.keys.expect[i].source
                )),
                None,
            ));
        }
        let i = shared.extracted.iter().position(Option::is_none)?;
        let (name, pattern) = &self.keys.extract[i];
        Some(Failure::new(
            Reason::Pattern(format!(
                "extract `{name}` found nothing matching `{}`",
                pattern.source
            )),
            None,
        ))
    }

    /// Show held or hidden output, and return the final outcome.
    pub fn conclude(&mut self, outcome: Outcome) -> Outcome {
        let failed = matches!(outcome, Outcome::Failed(_));
        if failed && self.keys.hide != Hide::None {
            let tail: Vec<Vec<u8>> = self.shared.lock().unwrap().tail.drain(..).collect();
            if !tail.is_empty() {
                let header = self.report.note_line(
                    &self.name,
                    &match tail.len() {
                        1 => "failed; the last line of its hidden output:".to_string(),
                        n => format!("failed; the last {n} lines of its hidden output:"),
                    },
                );
                self.own_line(&header);
                let mut text = Vec::new();
                for line in tail {
                    text.extend_from_slice(&line);
                    text.push(b'\n');
                }
                match &mut self.held {
                    Some(spools) => spools[1].write(&text),
                    None => self.report.write(Stream::Stderr, &text),
                }
            }
        }
        if let Some(mut spools) = self.held.take() {
            self.report.whole(|| {
                spools[0].drain(&self.report, Stream::Stdout);
                spools[1].drain(&self.report, Stream::Stderr);
            });
        }
        outcome
    }

    /// What `tasks.NAME` shows of this run's output.
    pub fn results(&self) -> BTreeMap<String, Value> {
        self.result_texts()
            .into_iter()
            .map(|(k, v)| (k, Value::from(v)))
            .collect()
    }

    /// The same, as text: what a remote cache artifact keeps.
    pub fn result_texts(&self) -> BTreeMap<String, String> {
        if let Some(restored) = &self.restored {
            return restored.clone();
        }
        let shared = self.shared.lock().unwrap();
        let mut out = BTreeMap::new();
        if self.keys.capture {
            out.insert("stdout".into(), trimmed(&shared.captured[0]));
            out.insert("stderr".into(), trimmed(&shared.captured[1]));
        }
        for ((name, _), value) in self.keys.extract.iter().zip(&shared.extracted) {
            if let Some(v) = value {
                out.insert(name.clone(), String::from_utf8_lossy(v).into_owned());
            }
        }
        out
    }
}

fn trimmed(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches(['\n', '\r']).to_string()
}

/// The main process's status, if it ends within `EXIT_SPIN`.
fn spin_for_exit(handle: &crate::exec::child::Child) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + EXIT_SPIN;
    while Instant::now() < until {
        if let Ok(Some(done)) = handle.try_wait() {
            return Some(done);
        }
        std::thread::yield_now();
    }
    None
}
