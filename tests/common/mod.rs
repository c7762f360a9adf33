//! The shared harness of the integration tests: write a `tasks.toml` (and
//! any other files) into a fresh temporary directory, run the real binary
//! there, and pin what the user would see.
//!
//! Every run is checked whole. `Test::expect(stdout, stderr, status)` pins
//! all three; `Test::code(status)`, `Test::run_with(args)` and
//! `Test::finish(child)` give a `Ran` whose status must be 0 and whose
//! stdout and stderr must be empty when it is dropped, unless the test
//! said what it expects of each:
//!
//! ```text
//! t.expect("out\n", "", 0);                     // all three
//! t.code(1).stderr_has("error: ");              // stdout must be empty
//! t.run_with(&["-v", "b"]).code(0).stdout("x\n").stderr_has("[b] $ ");
//! let ran = t.run_with(&[]);                    // to check it yourself:
//! assert!(ran.stdout_text().contains("x"));     // stdout_text, stderr_text,
//! assert_eq!(ran.exit_code(), 0);               // exit_code count as said
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The environment that configures a remote cache.
pub const REMOTE_CACHE_VARS: [&str; 4] = [
    "TASKER_REMOTE_CACHE_URL",
    "TASKER_REMOTE_CACHE_TEAM",
    "TASKER_REMOTE_CACHE_TOKEN",
    "TASKER_REMOTE_CACHE_SIGNATURE_KEY",
];

#[must_use = "a Test does nothing until it is run"]
pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    cwd: Option<PathBuf>,
    env_removed: Vec<String>,
}

/// What a run printed and how it exited, with the temporary directory's
/// path replaced by `[TMP]` so the text is stable.
///
/// A run is checked whole, as a user sees it: when a `Ran` is dropped, its
/// exit status must be 0 and its stdout and stderr empty, unless the test
/// said what it expects of each, with an assertion (`code`, `stdout`,
/// `stderr`, `stdout_has`, `stderr_has`, `expect`) or by taking the text
/// or status to check it itself (`stdout_text`, `stderr_text`,
/// `exit_code`). So a test that forgets a stream fails on what it did not
/// look at, instead of passing by accident.
#[derive(Debug)]
#[must_use = "a run is checked when it is dropped: bind it, or chain what it should show"]
pub struct Ran {
    stdout: String,
    stderr: String,
    code: i32,
    /// Whether the test said what it expects of stdout, stderr, status.
    said: std::cell::Cell<[bool; 3]>,
    /// Where the test ran tasker, for the message of a default check.
    at: &'static std::panic::Location<'static>,
}

/// A run whose stdout, stderr and status were all asserted (by
/// `Test::expect`): free to drop unused.
pub struct Expected(Ran);

impl std::ops::Deref for Expected {
    type Target = Ran;
    fn deref(&self) -> &Ran {
        &self.0
    }
}

const STDOUT: usize = 0;
const STDERR: usize = 1;
const CODE: usize = 2;

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().expect("temp dir"),
            args: Vec::new(),
            env: Vec::new(),
            stdin: None,
            cwd: None,
            env_removed: Vec::new(),
        }
    }

    /// A test whose `tasks.toml` is `text` (leading indentation removed).
    pub fn with(text: &str) -> Test {
        Test::new().file("tasks.toml", text)
    }

    pub fn file(self, name: &str, text: &str) -> Test {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, dedent(text)).expect("write file");
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn arg(mut self, arg: &str) -> Test {
        self.args.push(arg.to_string());
        self
    }

    pub fn args(mut self, args: &[&str]) -> Test {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Run without this variable in the environment.
    pub fn env_remove(mut self, key: &str) -> Test {
        self.env_removed.push(key.into());
        self
    }

    pub fn stdin(mut self, text: &str) -> Test {
        self.stdin = Some(text.into());
        self
    }

    /// Run from this subdirectory of the test directory.
    pub fn cwd(mut self, sub: &str) -> Test {
        let path = self.dir.path().join(sub);
        std::fs::create_dir_all(&path).expect("mkdir");
        self.cwd = Some(path);
        self
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tasker"));
        cmd.current_dir(self.cwd.as_deref().unwrap_or(self.dir.path()))
            .args(&self.args)
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .env_remove("FORCE_COLOR")
            .env("TASKER_TEST", "1");
        // A remote cache configured on the machine running the tests
        // reaches no test that does not ask for one.
        for name in REMOTE_CACHE_VARS {
            cmd.env_remove(name);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for key in &self.env_removed {
            cmd.env_remove(key);
        }
        cmd
    }

    /// Run tasker and assert its exit status; stdout and stderr are
    /// checked when the result is dropped (empty unless the test says
    /// otherwise, see `Ran`).
    #[track_caller]
    pub fn code(&self, code: i32) -> Ran {
        let ran = self.run();
        ran.code(code);
        ran
    }

    #[track_caller]
    fn run(&self) -> Ran {
        let mut cmd = self.command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tasker");
        if let Some(text) = &self.stdin {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            let _ = stdin.write_all(text.as_bytes());
        }
        let output = wait_bounded(child, Duration::from_secs(60));
        self.ran(output)
    }

    #[track_caller]
    fn ran(&self, output: Output) -> Ran {
        let dir = self.dir.path().display().to_string();
        let real = std::fs::canonicalize(self.dir.path())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| dir.clone());
        let clean = |bytes: &[u8]| {
            String::from_utf8_lossy(bytes)
                .replace(&real, "[TMP]")
                .replace(&dir, "[TMP]")
        };
        Ran {
            stdout: clean(&output.stdout),
            stderr: clean(&output.stderr),
            code: output.status.code().unwrap_or(-1),
            said: Default::default(),
            at: std::panic::Location::caller(),
        }
    }

    /// Run and assert exactly this stdout, stderr and exit status. The
    /// result needs no further use (everything is checked), but gives the
    /// texts to a test that compares them with another run's.
    #[track_caller]
    pub fn expect(&self, stdout: &str, stderr: &str, code: i32) -> Expected {
        let ran = self.run();
        ran.expect(stdout, stderr, code);
        Expected(ran)
    }

    /// Run in the same directory with these arguments after the
    /// builder's: for tests that run tasker several times over one tree.
    /// Checked as every run is (see `Ran`).
    #[track_caller]
    pub fn run_with(&self, args: &[&str]) -> Ran {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn tasker");
        self.ran(wait_bounded(child, Duration::from_secs(60)))
    }

    /// Start tasker in the background (stdin empty, output piped), for a
    /// test that acts while it runs; end it with `finish`.
    pub fn spawn(&self) -> std::process::Child {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tasker")
    }

    /// Wait for a tasker started by `spawn` to end (at most 60 s; then it
    /// is killed and the test fails on what it printed). Checked as every
    /// run is (see `Ran`).
    #[track_caller]
    pub fn finish(&self, child: std::process::Child) -> Ran {
        self.finish_within(child, Duration::from_secs(60))
    }

    /// As `finish`, killing tasker (status -1) after `limit`.
    #[track_caller]
    pub fn finish_within(&self, child: std::process::Child, limit: Duration) -> Ran {
        self.ran(wait_bounded(child, limit))
    }

    /// Wait until the run has created `name`, at most 20 s (then fail).
    #[track_caller]
    pub fn wait_for_file(&self, name: &str) {
        let path = self.dir.path().join(name);
        let end = std::time::Instant::now() + Duration::from_secs(20);
        while !path.exists() {
            assert!(std::time::Instant::now() < end, "{name} never appeared");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Create an empty file (a go signal for a run that waits for it).
    pub fn touch(&self, name: &str) {
        std::fs::write(self.dir.path().join(name), "").expect("touch");
    }

    /// The text of a file the run wrote; a missing or unreadable file
    /// fails the test (a missing file is not an empty one).
    #[track_caller]
    pub fn read(&self, name: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
    }

    /// Whether the run created this file (or directory).
    pub fn exists(&self, name: &str) -> bool {
        self.dir.path().join(name).exists()
    }
}

impl Ran {
    fn say(&self, what: usize) {
        let mut said = self.said.get();
        said[what] = true;
        self.said.set(said);
    }

    /// Assert exactly this stdout, stderr and exit status.
    #[track_caller]
    pub fn expect(&self, stdout: &str, stderr: &str, code: i32) -> &Ran {
        self.say(STDOUT);
        self.say(STDERR);
        self.say(CODE);
        assert_eq!(
            (self.stdout.as_str(), self.stderr.as_str(), self.code),
            (dedent(stdout).as_str(), dedent(stderr).as_str(), code),
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Ran {
        self.say(CODE);
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Ran {
        self.say(STDOUT);
        assert_eq!(self.stdout, dedent(expected), "stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn stderr(&self, expected: &str) -> &Ran {
        self.say(STDERR);
        assert_eq!(self.stderr, dedent(expected), "stdout:\n{}", self.stdout);
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Ran {
        self.say(STDERR);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Ran {
        self.say(STDOUT);
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }

    /// The stdout, for a test that checks it itself.
    pub fn stdout_text(&self) -> &str {
        self.say(STDOUT);
        &self.stdout
    }

    /// The stderr, for a test that checks it itself.
    pub fn stderr_text(&self) -> &str {
        self.say(STDERR);
        &self.stderr
    }

    /// The exit status (-1 for a signal), for a test that checks it itself.
    pub fn exit_code(&self) -> i32 {
        self.say(CODE);
        self.code
    }
}

impl Drop for Ran {
    /// What the test did not speak of must be what a quiet success shows.
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let said = self.said.get();
        let unsaid = [
            (!said[STDOUT] && !self.stdout.is_empty()).then_some("stdout is not empty"),
            (!said[STDERR] && !self.stderr.is_empty()).then_some("stderr is not empty"),
            (!said[CODE] && self.code != 0).then_some("the exit status is not 0"),
        ];
        let unsaid: Vec<&str> = unsaid.into_iter().flatten().collect();
        assert!(
            unsaid.is_empty(),
            "the run at {} was not checked whole: {}, and the test did not say what it expects\n--- status {} ---\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.at,
            unsaid.join(", "),
            self.code,
            self.stdout,
            self.stderr
        );
    }
}

/// Drive a tasker whose runs `names` each log `start NAME` to `{dir}log`,
/// say `{dir}NAME.started`, wait (bounded) until `{dir}NAME.go` exists,
/// and log `end NAME` (`dir` is "" or a subdirectory with its `/`), with
/// at most `slots` of them meant to be in progress at once. Again and
/// again: wait until as many runs as may be are in progress, check that no
/// more are, and let one go, waiting for its end. The limit is thus
/// reached at every step (were runs serial where they may overlap, the
/// wait fails), and a run started beyond it while the others were held
/// shows in the log, which is checked at the end: never more than `slots`
/// runs between their start and end, and each name run once. Nothing here
/// depends on how long anything takes.
#[track_caller]
pub fn hold_each(t: &Test, dir: &str, names: &[&str], slots: usize) {
    let log_of = || std::fs::read_to_string(t.path().join(format!("{dir}log"))).unwrap_or_default();
    let in_progress = || -> Vec<&str> {
        names
            .iter()
            .copied()
            .filter(|n| {
                t.exists(&format!("{dir}{n}.started")) && !t.exists(&format!("{dir}{n}.go"))
            })
            .collect()
    };
    for left in (1..=names.len()).rev() {
        let want = slots.min(left);
        let end = Instant::now() + Duration::from_secs(20);
        let now = loop {
            let now = in_progress();
            if now.len() >= want {
                break now;
            }
            assert!(
                Instant::now() < end,
                "only {now:?} in progress, {want} expected; log:\n{}",
                log_of()
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(now.len(), want, "{now:?} in progress at once");
        let name = now[0];
        t.touch(&format!("{dir}{name}.go"));
        let ended = format!("end {name}\n");
        let end = Instant::now() + Duration::from_secs(20);
        while !log_of().contains(&ended) {
            assert!(Instant::now() < end, "{name} never ended");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let log = log_of();
    let mut running: Vec<&str> = Vec::new();
    let mut started: Vec<&str> = Vec::new();
    for line in log.lines() {
        match line.split_once(' ') {
            Some(("start", name)) => {
                running.push(name);
                started.push(name);
                assert!(running.len() <= slots, "{running:?} at once:\n{log}");
            }
            Some(("end", name)) => running.retain(|n| *n != name),
            _ => panic!("unexpected line {line:?} in the log:\n{log}"),
        }
    }
    started.sort_unstable();
    let mut expected = names.to_vec();
    expected.sort_unstable();
    assert_eq!(started, expected, "each run once:\n{log}");
}

/// Run a command to its end with its output piped, as `Command::output`
/// does, but killed after 60 s: a tasker that hangs fails the test
/// instead of blocking the run.
pub fn output_of(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, Duration::from_secs(60))
}

/// As `output_of`, for a command whose stdout the caller has set.
pub fn output_of_with_stdout(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_bounded(child, Duration::from_secs(60))
}

/// Kill a child that hangs, so a broken test fails instead of blocking CI.
pub fn wait_bounded(child: std::process::Child, limit: Duration) -> Output {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    let output = child.wait_with_output().expect("wait for tasker");
    let _ = tx.send(());
    output
}

/// Remove the common leading indentation and a leading newline, so tests
/// can indent their files and expected output.
pub fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim().is_empty() {
            out.push_str(if line.ends_with('\n') { "\n" } else { "" });
        } else {
            out.push_str(&line[indent.min(line.len())..]);
        }
    }
    // A closing line of only indentation is no content.
    if let Some(pos) = out.rfind('\n') {
        if out[pos + 1..].trim().is_empty() {
            out.truncate(pos + 1);
        }
    }
    out
}

/// Is the process alive?
pub fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
        && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

/// Run tasker with `args` on a pseudo-terminal of its own (python's `pty`
/// module), in the test's directory and environment. For each step, wait
/// until its text has been shown (or, for `@file:NAME`, until the run
/// created that file; `@touch:NAME` creates it at once), then type its
/// keys. Returns what the
/// terminal showed (CRLF as LF), with a last line `exit N`, and N.
///
/// Every wait is bounded: text that never shows is said in the output
/// (`NEVER SHOWN: ...`), and a tasker that does not end 20 s after its
/// terminal went quiet is killed and fails the test, so a hang is a
/// failure with the screen printed, never a test run that blocks.
pub fn on_a_terminal(test: &Test, args: &[&str], steps: &[(&str, &[u8])]) -> (String, i32) {
    let driver = r#"
import os, pty, select, signal, sys, time
args = sys.argv[2].split("\x1f") if sys.argv[2] else []
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], [sys.argv[1]] + args)
out = b""
def read_until(needle, count=1, limit=20.0):
    global out
    end = time.time() + limit
    while (needle is None or out.count(needle) < count) and time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return
            if not data:
                return
            out += data
    if needle is not None and out.count(needle) < count:
        sys.stdout.write("NEVER SHOWN: %r\n" % needle)
steps = sys.argv[3:]
seen = {}
for i in range(0, len(steps), 2):
    if steps[i].startswith("@touch:"):
        # Create this file (a go signal for a run that waits for it).
        open(steps[i][len("@touch:"):], "w").close()
        os.write(fd, bytes.fromhex(steps[i + 1]))
        continue
    if steps[i].startswith("@file:"):
        # Wait until the run created this file (a step that ran).
        name = steps[i][len("@file:"):]
        end = time.time() + 20
        while not os.path.exists(name) and time.time() < end:
            read_until(None, limit=0.05)
        if not os.path.exists(name):
            sys.stdout.write("NEVER CREATED: %s\n" % name)
        os.write(fd, bytes.fromhex(steps[i + 1]))
        continue
    needle = steps[i].encode()
    # A prompt given twice waits for its second appearance.
    seen[needle] = seen.get(needle, 0) + 1
    read_until(needle, seen[needle])
    os.write(fd, bytes.fromhex(steps[i + 1]))
read_until(None)
code = None
end = time.time() + 20
while code is None and time.time() < end:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        code = os.waitstatus_to_exitcode(status)
    else:
        time.sleep(0.01)
if code is None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    code = "hung"
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
sys.stdout.write("\nexit %s\n" % code)
"#;
    let mut cmd = Command::new("python3");
    cmd.current_dir(test.cwd.as_deref().unwrap_or(test.path()))
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("CLICOLOR")
        .env_remove("FORCE_COLOR")
        .env("TASKER_TEST", "1")
        .args([
            "-c",
            driver,
            env!("CARGO_BIN_EXE_tasker"),
            &args.join("\x1f"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &test.env {
        cmd.env(k, v);
    }
    for key in &test.env_removed {
        cmd.env_remove(key);
    }
    for (text, keys) in steps {
        let hex: String = keys.iter().map(|b| format!("{b:02x}")).collect();
        cmd.args([text.to_string(), hex]);
    }
    let child = cmd.spawn().expect("python3 runs the terminal driver");
    let output = wait_bounded(child, Duration::from_secs(120));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = text
        .trim_end()
        .rsplit_once("exit ")
        .map(|(_, c)| c.to_string());
    let code = match status.as_deref().map(str::parse::<i32>) {
        Some(Ok(code)) => code,
        _ => panic!(
            "tasker {args:?} did not end on its terminal ({status:?}):\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    };
    (text, code)
}
