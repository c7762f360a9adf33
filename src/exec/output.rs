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
/// How often a run whose output never pauses is checked for having ended.
const EXIT_CHECK: Duration = Duration::from_millis(100);
/// A line longer than this is matched and shown in pieces.
const MAX_LINE: usize = 1024 * 1024;
/// Lines of hidden output shown when a run fails.
const HIDDEN_TAIL: usize = 200;
/// A kept hidden line is cut to this length.
const HIDDEN_LINE: usize = 4096;

/// The invocation's printer: every line tasker writes, and every line it
/// passes on from a run, goes through here so that lines never mix and the
/// live status can be cleared and redrawn around them.
pub struct Report {
    pub mode: OutputMode,
    pub err_style: Style,
    pub out_style: Style,
    /// `-q`: no status lines from tasker itself.
    pub quiet: bool,
    /// Set once a write found tasker's stdout or stderr closed.
    pub output_gone: std::sync::atomic::AtomicBool,
    /// The first write to tasker's stdout or stderr that failed otherwise.
    pub write_error: Mutex<Option<String>>,
    width: usize,
    term: Mutex<Term>,
    /// Signalled when a question was answered.
    answered: std::sync::Condvar,
    colors: Mutex<BTreeMap<String, usize>>,
}

#[derive(Default)]
struct Term {
    /// The live status line, when shown.
    status: Option<String>,
    /// A question is on the terminal: nothing else is written until it is
    /// answered.
    prompting: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Report {
    pub fn new(mode: OutputMode, names: &[String]) -> Report {
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .min(32);
        Report {
            mode,
            err_style: Style::for_stderr(),
            out_style: Style::for_stdout(),
            quiet: false,
            output_gone: std::sync::atomic::AtomicBool::new(false),
            write_error: Mutex::new(None),
            width,
            term: Mutex::new(Term::default()),
            answered: std::sync::Condvar::new(),
            colors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Write bytes to tasker's stdout or stderr, around the status line.
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        let mut term = self.term.lock().unwrap();
        while term.prompting {
            term = self.answered.wait(term).unwrap();
        }
        let clear = term.status.is_some();
        if clear {
            let _ = std::io::stderr().write_all(b"\r\x1b[2K");
        }
        let result = match stream {
            Stream::Stdout => {
                // Past std's line buffer: one write per chunk, where the
                // buffer would add one for a chunk's unfinished last line.
                let mut out = std::io::stdout().lock();
                out.flush()
                    .and_then(|_| crate::process::write_stdout(bytes))
            }
            Stream::Stderr => crate::process::write_fd(2, bytes),
        };
        if let Err(e) = result {
            // Whoever read our output went away (`tasker build | head -1`):
            // stop every run as for SIGTERM, then end quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                if !self
                    .output_gone
                    .swap(true, std::sync::atomic::Ordering::SeqCst)
                {
                    crate::process::stop_self();
                }
            } else {
                // Output was lost (a full disk, an I/O error): the
                // invocation fails with a message at the end.
                let stream = match stream {
                    Stream::Stdout => "stdout",
                    Stream::Stderr => "stderr",
                };
                self.write_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| format!("cannot write to tasker's {stream}: {e}"));
            }
        }
        if let (true, Some(status)) = (clear, &term.status) {
            let _ = std::io::stderr().write_all(status.as_bytes());
        }
    }

    /// A line of tasker's own on stderr.
    pub fn line(&self, text: &str) {
        let mut bytes = text.as_bytes().to_vec();
        bytes.push(b'\n');
        self.write(Stream::Stderr, &bytes);
    }

    /// `[build] $ cargo build`, dimmed on a terminal.
    pub fn echo_line(&self, run: &str, command: &str) -> String {
        let command = crate::echo::tidy(command);
        let mut lines = command.lines();
        let first = lines.next().unwrap_or("");
        let mut text = format!("[{run}] $ {first}");
        for more in lines {
            text.push('\n');
            text.push_str(&format!("[{run}]   {more}"));
        }
        self.err_style.dim(&text)
    }

    pub fn note_line(&self, run: &str, text: &str) -> String {
        self.err_style.yellow(&format!("[{run}] {text}"))
    }

    pub fn note(&self, run: &str, text: &str) {
        if !self.quiet {
            self.line(&self.note_line(run, text));
        }
    }

    /// `build  | ` padded to the longest name, coloured per run.
    pub fn prefix(&self, run: &str, stream: Stream) -> Vec<u8> {
        let style = match stream {
            Stream::Stdout => self.out_style,
            Stream::Stderr => self.err_style,
        };
        let n = {
            let mut colors = self.colors.lock().unwrap();
            let next = colors.len();
            *colors.entry(run.to_string()).or_insert(next)
        };
        let pad = self.width.saturating_sub(run.chars().count());
        let text = format!("{run}{} | ", " ".repeat(pad));
        style.nth(n, &text).into_bytes()
    }

    /// Put `question` alone on the terminal: wait until no other question
    /// is shown, clear the live status, and hold every other write until
    /// `end_question`.
    pub fn begin_question(&self, question: &str) {
        let mut term = self.term.lock().unwrap();
        while term.prompting {
            term = self.answered.wait(term).unwrap();
        }
        term.prompting = true;
        // Keys typed before the question is shown do not answer it.
        crate::process::discard_typed_input();
        let mut err = std::io::stderr();
        if term.status.is_some() {
            let _ = err.write_all(b"\r\x1b[2K");
        }
        let _ = err.write_all(question.as_bytes());
        let _ = err.flush();
    }

    /// The question was answered (or abandoned): writes go on.
    pub fn end_question(&self) {
        let mut term = self.term.lock().unwrap();
        term.prompting = false;
        if let Some(status) = &term.status {
            let _ = std::io::stderr().write_all(status.as_bytes());
        }
        self.answered.notify_all();
    }

    /// Show or clear the live status (only ever on a terminal).
    pub fn set_status(&self, status: Option<String>) {
        let mut term = self.term.lock().unwrap();
        if term.prompting {
            // Drawn again once the question is answered.
            term.status = status;
            return;
        }
        let mut err = std::io::stderr();
        if term.status.is_some() {
            let _ = err.write_all(b"\r\x1b[2K");
        }
        if let Some(s) = &status {
            let _ = err.write_all(s.as_bytes());
        }
        let _ = err.flush();
        term.status = status;
    }
}

/// One run's output: the plan for each step's streams and everything read
/// from them.
pub struct RunOutput {
    report: Arc<Report>,
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
}

/// The parts of the task's output keys this run needs.
#[derive(Clone)]
struct KeysView {
    capture: bool,
    hide: Hide,
    extract: Vec<(String, crate::model::Pattern)>,
    expect: Vec<crate::model::Pattern>,
    fail_on: Vec<crate::model::Pattern>,
    respond: Vec<(regex::bytes::Regex, Vec<u8>)>,
    reads: bool,
    pty: bool,
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

/// A file that holds grouped output until the run ends.
struct Spool {
    file: Option<File>,
    mem: Vec<u8>,
}

impl Spool {
    fn new() -> Spool {
        Spool {
            file: anonymous_file(),
            mem: Vec::new(),
        }
    }

    /// Hold `bytes` after everything held so far: in the file while it
    /// takes them, then (a full disk) in memory for the rest of the run,
    /// so that nothing is held twice or out of order.
    fn write(&mut self, mut bytes: &[u8]) {
        if self.mem.is_empty() {
            if let Some(f) = &mut self.file {
                while !bytes.is_empty() {
                    match f.write(bytes) {
                        Ok(0) => break,
                        Ok(n) => bytes = &bytes[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
        }
        self.mem.extend_from_slice(bytes);
    }

    fn drain(&mut self, report: &Report, stream: Stream) {
        if let Some(f) = &mut self.file {
            if f.rewind().is_ok() {
                let mut buf = vec![0; CHUNK];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    report.write(stream, &buf[..n]);
                }
            }
            let _ = f.set_len(0);
            let _ = f.rewind();
        }
        if !self.mem.is_empty() {
            report.write(stream, &self.mem);
            self.mem.clear();
        }
    }
}

/// A temporary file that disappears when closed.
fn anonymous_file() -> Option<File> {
    let dir = std::env::temp_dir();
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!("tasker-{}-{nanos}-{attempt}", std::process::id()));
        if let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            let _ = std::fs::remove_file(&path);
            return Some(file);
        }
    }
    None
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
    pub fn new(report: Arc<Report>, name: String, task: &Task, sends: Vec<Vec<u8>>) -> RunOutput {
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
        }
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
        let pipes = self.keys.reads || self.mode != OutputMode::Interleaved;
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
            && self.mode != OutputMode::Interleaved
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
    /// the step waiting.
    pub fn watch(
        &mut self,
        io: StepIo,
        handle: &duct::Handle,
        timeout: Option<Duration>,
        on_timeout: &(dyn Fn() + Sync),
        stop: &(dyn Fn() + Sync),
        leftovers: &(dyn Fn(bool) + Sync),
    ) -> std::io::Result<std::process::ExitStatus> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let wait = || -> std::io::Result<std::process::ExitStatus> {
            let output = match deadline {
                Some(deadline) => match handle.wait_deadline(deadline)? {
                    Some(output) => output,
                    None => {
                        on_timeout();
                        handle.wait()?
                    }
                },
                None => handle.wait()?,
            };
            Ok(output.status)
        };
        if io.readers.is_empty() {
            let status = wait();
            leftovers(true);
            return status;
        }
        // This thread reads every stream with poll(2), so a short run costs
        // no thread beyond its own, which matters for graphs of many runs.
        // A stream that fills its buffer at once has a fast producer: it
        // gets a thread of its own, one read(2) per chunk. This thread also
        // watches the main process: once that ended, what is left of its
        // group is stopped and the pipes are drained, for at most DRAIN.
        let held = Mutex::new(self.held.take());
        let drain_until: Mutex<Option<Instant>> = Mutex::new(None);
        let status = std::thread::scope(|scope| {
            let mut readers: Vec<Option<StreamReader>> = io
                .readers
                .iter()
                .map(|(_, stream)| {
                    Some(StreamReader {
                        report: &self.report,
                        keys: &self.keys,
                        shared: &self.shared,
                        held: &held,
                        stream: *stream,
                        line: Vec::new(),
                        respond_from: 0,
                        stop,
                        prefix: self.report.prefix(&self.name, *stream),
                        scratch: Vec::new(),
                        mode: self.mode,
                        in_finally: self.in_finally,
                    })
                })
                .collect();
            let mut pipes: Vec<Option<File>> =
                io.readers.into_iter().map(|(f, _)| Some(f)).collect();
            let mut buf = vec![0u8; SMALL_CHUNK];
            let mut fast = Vec::new();
            let mut status: Option<std::process::ExitStatus> = None;
            let mut timed_out = false;
            let mut checked = Instant::now();
            let mut exited_at: Option<Instant> = None;
            while pipes.iter().any(Option::is_some) {
                let now = Instant::now();
                let mut wake = EXIT_CHECK;
                if let (Some(deadline), false, None) = (deadline, timed_out, status) {
                    if now >= deadline {
                        timed_out = true;
                        on_timeout();
                    } else {
                        wake = wake.min(deadline - now);
                    }
                }
                if let Some(at) = exited_at {
                    let until = at + DRAIN;
                    if now >= until {
                        // What still holds the pipes left the group (a
                        // daemon): stop reading, and go on.
                        for (slot, reader) in pipes.iter_mut().zip(readers.iter_mut()) {
                            if let (Some(_), Some(reader)) = (slot.take(), reader.as_mut()) {
                                reader.finish();
                            }
                        }
                        break;
                    }
                    wake = wake.min(until - now);
                }
                self.shared.lock().unwrap().flush_answers();
                let open: Vec<&File> = pipes.iter().flatten().collect();
                let ready = crate::process::wait_readable(&open, wake);
                let mut k = 0;
                for (slot, reader_slot) in pipes.iter_mut().zip(readers.iter_mut()) {
                    let (Some(pipe), Some(reader)) = (slot.as_mut(), reader_slot.as_mut()) else {
                        continue;
                    };
                    let is_ready = ready.get(k).copied().unwrap_or(false);
                    k += 1;
                    if !is_ready {
                        continue;
                    }
                    match pipe.read(&mut buf) {
                        Ok(0) => {
                            reader.finish();
                            *slot = None;
                        }
                        Ok(n) => {
                            reader.chunk(&buf[..n]);
                            if n == buf.len() && exited_at.is_none() {
                                let (Some(pipe), Some(mut reader)) =
                                    (slot.take(), reader_slot.take())
                                else {
                                    continue;
                                };
                                crate::process::deepen_pipe(&pipe);
                                let drain_until = &drain_until;
                                fast.push(scope.spawn(move || reader.run(pipe, drain_until)));
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                            ) => {}
                        // A terminal whose other side closed reports EIO: the end.
                        Err(_) => {
                            reader.finish();
                            *slot = None;
                        }
                    }
                }
                // Now and then, and whenever the output pauses, see whether
                // the main process ended while something else holds a pipe.
                if status.is_none() && (!ready.contains(&true) || checked.elapsed() >= EXIT_CHECK) {
                    checked = Instant::now();
                    // An error teaches nothing now; the wait at the end
                    // reports it.
                    if let Ok(Some(output)) = handle.try_wait() {
                        status = Some(output.status);
                        exited_at = Some(Instant::now());
                        leftovers(false);
                    }
                }
            }
            let status = match status {
                Some(status) => Ok(status),
                None => {
                    let status = wait();
                    leftovers(false);
                    status
                }
            };
            *drain_until.lock().unwrap() = Some(exited_at.unwrap_or_else(Instant::now) + DRAIN);
            for reader in fast {
                let _ = reader.join();
            }
            leftovers(true);
            status
        });
        {
            let mut shared = self.shared.lock().unwrap();
            shared.flush_answers();
            shared.stdin = None;
            shared.dropped_answers += shared.answers.len();
            shared.answers.clear();
        }
        self.held = held.into_inner().ok().flatten();
        status
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
                    &format!(
                        "failed; the last {} lines of its hidden output:",
                        tail.len()
                    ),
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
            spools[0].drain(&self.report, Stream::Stdout);
            spools[1].drain(&self.report, Stream::Stderr);
        }
        outcome
    }

    /// What `tasks.NAME` shows of this run's output.
    pub fn results(&self) -> BTreeMap<String, Value> {
        let shared = self.shared.lock().unwrap();
        let mut out = BTreeMap::new();
        if self.keys.capture {
            out.insert("stdout".into(), Value::from(trimmed(&shared.captured[0])));
            out.insert("stderr".into(), Value::from(trimmed(&shared.captured[1])));
        }
        for ((name, _), value) in self.keys.extract.iter().zip(&shared.extracted) {
            if let Some(v) = value {
                out.insert(
                    name.clone(),
                    Value::from(String::from_utf8_lossy(v).into_owned()),
                );
            }
        }
        out
    }
}

fn trimmed(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    text.trim_end_matches(['\n', '\r']).to_string()
}

impl KeysView {
    fn of(keys: &OutputKeys, sends: Vec<Vec<u8>>, pty: bool) -> KeysView {
        KeysView {
            capture: keys.capture,
            hide: keys.hide,
            extract: keys.extract.clone(),
            expect: keys.expect.clone(),
            fail_on: keys.fail_on.clone(),
            respond: keys
                .respond
                .iter()
                .zip(sends)
                .map(|(r, send)| (r.on.regex.clone(), send))
                .collect(),
            reads: keys.reads_output() || pty,
            pty,
        }
    }

    fn hidden(&self, stream: Stream) -> bool {
        match stream {
            Stream::Stdout => self.hide.stdout(),
            Stream::Stderr => self.hide.stderr(),
        }
    }

    fn line_patterns(&self) -> bool {
        !self.extract.is_empty() || !self.expect.is_empty() || !self.fail_on.is_empty()
    }
}

/// Reads one stream of one step.
struct StreamReader<'a> {
    report: &'a Report,
    keys: &'a KeysView,
    shared: &'a Mutex<Shared>,
    held: &'a Mutex<Option<[Spool; 2]>>,
    stream: Stream,
    /// The current line so far (at most MAX_LINE).
    line: Vec<u8>,
    /// Where in `line` responders look next, so each prompt is answered once.
    respond_from: usize,
    stop: &'a (dyn Fn() + Sync),
    prefix: Vec<u8>,
    /// Reused for the prefixed copy of each block.
    scratch: Vec<u8>,
    mode: OutputMode,
    /// The step is one of `finally`: expect and extract do not read it.
    in_finally: bool,
}

impl StreamReader<'_> {
    /// Read a fast stream to its end, or until the drain after the main
    /// process's exit is over.
    fn run(&mut self, mut pipe: File, drain_until: &Mutex<Option<Instant>>) {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let readable = crate::process::wait_readable(&[&pipe], EXIT_CHECK)[0];
            if !readable {
                let until = *drain_until.lock().unwrap();
                if until.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                continue;
            }
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.chunk(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => break,
            }
        }
        self.finish();
    }

    /// The stream ended: whatever is left is a last line without newline.
    fn finish(&mut self) {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.lines(&line, false);
        }
    }

    fn chunk(&mut self, chunk: &[u8]) {
        if self.keys.capture {
            self.shared.lock().unwrap().captured[self.stream as usize].extend_from_slice(chunk);
        }
        let simple = !self.keys.line_patterns()
            && self.keys.respond.is_empty()
            && self.keys.hide == Hide::None
            && self.mode != OutputMode::Prefixed;
        if simple {
            self.show(chunk);
            return;
        }
        // Complete lines are handled in one block; the rest waits.
        let last_nl = memchr_last(chunk);
        match last_nl {
            Some(at) if self.line.is_empty() => {
                self.respond(&chunk[..=at]);
                self.respond_from = 0;
                self.lines(&chunk[..=at], true);
                self.line.extend_from_slice(&chunk[at + 1..]);
            }
            Some(at) => {
                // The line buffer's allocation is reused for every block:
                // a fresh one per chunk would cost page faults per chunk.
                self.line.extend_from_slice(&chunk[..=at]);
                let block = std::mem::take(&mut self.line);
                self.respond(&block);
                self.respond_from = 0;
                self.lines(&block, true);
                self.line = block;
                self.line.clear();
                self.line.extend_from_slice(&chunk[at + 1..]);
            }
            None => self.line.extend_from_slice(chunk),
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.respond(&line);
            self.line = line;
        }
        if self.line.len() >= MAX_LINE {
            let piece = std::mem::take(&mut self.line);
            self.respond_from = 0;
            self.lines(&piece, false);
            self.line = piece;
            self.line.clear();
        }
    }

    /// Answer prompts in `text` (the current line and what came before it
    /// in this block), each occurrence once.
    fn respond(&mut self, text: &[u8]) {
        if self.keys.respond.is_empty() {
            return;
        }
        while self.respond_from <= text.len() {
            let from = self.respond_from;
            let found = self
                .keys
                .respond
                .iter()
                .filter_map(|(re, send)| re.find_at(text, from).map(|m| (m.start(), m.end(), send)))
                .min_by_key(|(start, _, _)| *start);
            let Some((_, end, send)) = found else {
                break;
            };
            // An empty match answers nothing and must not loop.
            if end == from && end == text.len() {
                break;
            }
            self.respond_from = end.max(from + 1);
            let mut shared = self.shared.lock().unwrap();
            if shared.stdin.is_some() {
                shared.answers.extend_from_slice(send);
                shared.flush_answers();
            }
        }
    }

    /// A block of whole lines (ending in newline when `complete`).
    fn lines(&mut self, block: &[u8], complete: bool) {
        if self.keys.line_patterns() {
            self.patterns(block, complete);
        }
        if self.keys.hidden(self.stream) {
            let mut shared = self.shared.lock().unwrap();
            for line in block.split(|&b| b == b'\n') {
                if line.is_empty() && complete {
                    continue;
                }
                if shared.tail.len() == HIDDEN_TAIL {
                    shared.tail.pop_front();
                }
                shared
                    .tail
                    .push_back(line[..line.len().min(HIDDEN_LINE)].to_vec());
            }
            return;
        }
        if self.mode == OutputMode::Prefixed {
            let mut out = std::mem::take(&mut self.scratch);
            out.clear();
            let mut rest = block;
            while !rest.is_empty() {
                let end = memchr::memchr(b'\n', rest).map_or(rest.len(), |at| at + 1);
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(&rest[..end]);
                rest = &rest[end..];
            }
            if !complete {
                out.push(b'\n');
            }
            self.emit(&out);
            self.scratch = out;
        } else {
            self.emit(block);
        }
    }

    fn show(&mut self, chunk: &[u8]) {
        if !self.keys.hidden(self.stream) {
            self.emit(chunk);
        }
    }

    fn emit(&self, bytes: &[u8]) {
        let mut held = self.held.lock().unwrap();
        match &mut *held {
            Some(spools) => spools[self.stream as usize].write(bytes),
            None => {
                drop(held);
                self.report.write(self.stream, bytes);
            }
        }
    }

    /// Run extract, expect and fail_on over a block of lines (ending in a
    /// newline when `complete`), each line on its own (SPEC 5), so that the
    /// verdict never depends on how the output was cut into reads.
    fn patterns(&self, block: &[u8], complete: bool) {
        let mut shared = self.shared.lock().unwrap();
        // `finally` output is never read by expect and extract.
        let matching = !self.in_finally;
        for line in lines_of(block, complete) {
            let mut pending = false;
            if matching {
                for (i, (_, pattern)) in self.keys.extract.iter().enumerate() {
                    if shared.extracted[i].is_none() {
                        shared.extracted[i] = extracted(pattern, line);
                        pending |= shared.extracted[i].is_none();
                    }
                }
                for (i, pattern) in self.keys.expect.iter().enumerate() {
                    if !shared.expected[i] {
                        shared.expected[i] = pattern.regex.is_match(line);
                        pending |= !shared.expected[i];
                    }
                }
            }
            if shared.failed_on.is_none() && !self.keys.fail_on.is_empty() {
                pending = true;
                if let Some(pattern) = self.keys.fail_on.iter().find(|p| p.regex.is_match(line)) {
                    let text = String::from_utf8_lossy(&line[..line.len().min(500)]).into_owned();
                    shared.failed_on = Some(format!(
                        "output matched fail_on `{}`: {}",
                        pattern.source,
                        text.trim_end()
                    ));
                    drop(shared);
                    (self.stop)();
                    return;
                }
            }
            if !pending {
                return;
            }
        }
    }
}

fn memchr_last(bytes: &[u8]) -> Option<usize> {
    memchr::memrchr(b'\n', bytes)
}

/// The lines of a block as patterns see them: without the `\n`, and
/// without a `\r` before it. An incomplete block is one piece of a line.
fn lines_of(block: &[u8], complete: bool) -> impl Iterator<Item = &[u8]> {
    let body = if complete {
        block.strip_suffix(b"\n").unwrap_or(block)
    } else {
        block
    };
    let mut pieces = body.split(|&b| b == b'\n').peekable();
    std::iter::from_fn(move || {
        let line = pieces.next()?;
        let ended = complete || pieces.peek().is_some();
        Some(match line.strip_suffix(b"\r") {
            Some(stripped) if ended => stripped,
            _ => line,
        })
    })
}

/// The value a regex extracts from a line it matches: group 1 when it has
/// groups, else the whole match.
fn extracted(pattern: &crate::model::Pattern, line: &[u8]) -> Option<Vec<u8>> {
    let regex = &pattern.regex;
    let caps = regex.captures(line)?;
    let m = if regex.captures_len() > 1 {
        caps.get(1).or_else(|| caps.get(0))?
    } else {
        caps.get(0)?
    };
    Some(m.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(source: &str) -> crate::model::Pattern {
        let file = std::sync::Arc::new(crate::error::SourceFile {
            display: "t".into(),
            path: "t".into(),
            text: String::new(),
        });
        crate::model::Pattern {
            source: source.into(),
            regex: regex::bytes::Regex::new(source).unwrap(),
            span: crate::error::Span::new(&file, 0..0),
        }
    }

    fn first_match<'b>(source: &str, block: &'b [u8], complete: bool) -> Option<&'b [u8]> {
        let p = pattern(source);
        lines_of(block, complete).find(|line| p.regex.is_match(line))
    }

    #[test]
    fn each_line_is_matched_on_its_own() {
        assert_eq!(first_match(r"^b\s+c", b"a\nb c\n", true), Some(&b"b c"[..]));
        assert_eq!(first_match(r"a\s+b", b"xa\nb\n", true), None);
        assert_eq!(
            first_match(r"a\s+b", b"xa\nb\na  b\n", true),
            Some(&b"a  b"[..])
        );
        assert_eq!(first_match(r"c$", b"abc\nd\n", true), Some(&b"abc"[..]));
        // \A and \z are the line's ends, wherever the line sits in a read.
        assert_eq!(
            first_match(r"\Aok\z", b"x\nok\ny\n", true),
            Some(&b"ok"[..])
        );
        assert_eq!(first_match(r"\Ak", b"x\nok\n", true), None);
    }

    #[test]
    fn a_carriage_return_before_the_newline_is_not_part_of_the_line() {
        assert_eq!(first_match(r"done$", b"done\r\n", true), Some(&b"done"[..]));
        assert_eq!(
            lines_of(b"a\r\nb\r\r\n", true).collect::<Vec<_>>(),
            [&b"a"[..], &b"b\r"[..]]
        );
        // A piece of a line keeps its `\r`: no newline follows it yet.
        assert_eq!(lines_of(b"a\r", false).collect::<Vec<_>>(), [&b"a\r"[..]]);
        assert_eq!(lines_of(b"\n", true).collect::<Vec<_>>(), [&b""[..]]);
    }

    #[test]
    fn extract_takes_group_one_or_whole_match() {
        assert_eq!(
            extracted(&pattern(r"v(\d+\.\d+)"), b"version v1.25 ok"),
            Some(b"1.25".to_vec())
        );
        assert_eq!(extracted(&pattern(r"\d+"), b"id 42"), Some(b"42".to_vec()));
    }
}
