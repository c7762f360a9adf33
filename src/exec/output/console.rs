//! The console: every line tasker writes, and every line it passes on
//! from a run, around the live status and any question on the screen.

use super::*;

/// The invocation's printer: every line tasker writes, and every line it
/// passes on from a run, goes through here so that lines never mix and the
/// live status can be cleared and redrawn around them.
pub struct Console {
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
    /// Where everything goes instead of tasker's stdout and stderr: a
    /// worker's run sends its output to the coordinator (SPEC 11).
    sink: Option<Sink>,
    /// Added to the run's name in tasker's own lines (`@WORKER`).
    suffix: String,
    /// Held while one run's grouped output is written, which may take
    /// several writes: another run's never lands in the middle.
    whole: Mutex<()>,
}

/// Takes a console's bytes instead of tasker's stdout and stderr: a run's
/// output (`Some(stream)`) or tasker's own lines (`None`).
pub type Sink = Box<dyn Fn(Option<Stream>, &[u8]) + Send + Sync>;

#[derive(Default)]
struct Term {
    /// The live status line, when shown.
    status: Option<String>,
    /// A question is on the terminal: nothing else is written until it is
    /// answered.
    prompting: bool,
    /// What runs wrote while the question was shown, written once it is
    /// answered: a run goes on while a question waits, only its output
    /// waits (SPEC 6). Bounded by `HELD_WHILE_ASKING`; past it a writer
    /// waits for the answer.
    held: Vec<(Stream, Vec<u8>)>,
    held_bytes: usize,
}

/// The most output held while a question is shown.
const HELD_WHILE_ASKING: usize = 1 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Console {
    pub fn new(mode: OutputMode, names: &[String]) -> Console {
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(0)
            .min(32);
        Console {
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
            sink: None,
            suffix: String::new(),
            whole: Mutex::new(()),
        }
    }

    /// A console of one run whose every byte goes to `sink`, uncoloured
    /// and unprefixed: the run's output passes through tasker whatever
    /// its keys, so nothing reaches tasker's own stdout. tasker's lines
    /// about the run name it with `suffix` after it.
    pub fn to_sink(sink: Sink, suffix: &str) -> Console {
        let plain = Style { color: false };
        Console {
            err_style: plain,
            out_style: plain,
            sink: Some(sink),
            suffix: suffix.to_string(),
            ..Console::new(OutputMode::Interleaved, &[])
        }
    }

    /// Output goes to a sink, never to tasker's own stdout and stderr.
    pub fn has_sink(&self) -> bool {
        self.sink.is_some()
    }

    /// Run `f`, which writes one run's held output, with no other run's
    /// held output written at the same time.
    pub fn whole<R>(&self, f: impl FnOnce() -> R) -> R {
        let _whole = self.whole.lock().unwrap_or_else(|e| e.into_inner());
        f()
    }

    /// Write bytes to tasker's stdout or stderr, around the status line.
    pub fn write(&self, stream: Stream, bytes: &[u8]) {
        if let Some(sink) = &self.sink {
            sink(Some(stream), bytes);
            return;
        }
        let mut term = self.term.lock().unwrap();
        while term.prompting {
            if term.held_bytes + bytes.len() <= HELD_WHILE_ASKING {
                term.held_bytes += bytes.len();
                term.held.push((stream, bytes.to_vec()));
                return;
            }
            term = self.answered.wait(term).unwrap();
        }
        self.emit(&term, stream, bytes);
    }

    /// Write now, with `term` locked: clear the status line, write, draw it
    /// again.
    fn emit(&self, term: &Term, stream: Stream, bytes: &[u8]) {
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
            Stream::Stderr => crate::process::write_stderr(bytes),
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
        if let Some(sink) = &self.sink {
            sink(None, &bytes);
            return;
        }
        self.write(Stream::Stderr, &bytes);
    }

    /// `[build] $ cargo build`, dimmed on a terminal.
    pub fn echo_line(&self, run: &str, command: &str) -> String {
        let command = crate::echo::tidy(command);
        let mut lines = command.lines();
        let first = lines.next().unwrap_or("");
        let suffix = &self.suffix;
        let mut text = format!("[{run}{suffix}] $ {first}");
        for more in lines {
            text.push('\n');
            text.push_str(&format!("[{run}{suffix}]   {more}"));
        }
        self.err_style.dim(&text)
    }

    pub fn note_line(&self, run: &str, text: &str) -> String {
        self.err_style
            .yellow(&format!("[{run}{}] {text}", self.suffix))
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
        let held = std::mem::take(&mut term.held);
        term.held_bytes = 0;
        // Each write draws the status again after it; with none held, it
        // is drawn here.
        if held.is_empty() {
            if let Some(status) = &term.status {
                let _ = std::io::stderr().write_all(status.as_bytes());
            }
        }
        for (stream, bytes) in held {
            self.emit(&term, stream, &bytes);
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
