//! The shared harness of the integration tests: write a `tasks.toml` (and
//! any other files) into a fresh temporary directory, run the real binary
//! there, and pin what the user would see.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    stdin: Option<String>,
    cwd: Option<PathBuf>,
}

/// What a run printed and how it exited, with the temporary directory's
/// path replaced by `[TMP]` so the text is stable.
#[derive(Debug)]
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

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
            .env_remove("FORCE_COLOR")
            .env("TASKER_TEST", "1");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self) -> Ran {
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
        }
    }

    /// Run and assert exactly this stdout, stderr and exit status.
    #[track_caller]
    pub fn expect(&self, stdout: &str, stderr: &str, code: i32) -> Ran {
        let ran = self.run();
        assert_eq!(
            (ran.stdout.as_str(), ran.stderr.as_str(), ran.code),
            (dedent(stdout).as_str(), dedent(stderr).as_str(), code),
            "\n--- stdout ---\n{}\n--- stderr ---\n{}",
            ran.stdout,
            ran.stderr
        );
        ran
    }

    /// Run in the same directory with these arguments after the
    /// builder's: for tests that run tasker several times over one tree.
    pub fn run_with(&self, args: &[&str]) -> Ran {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().expect("spawn tasker");
        self.ran(wait_bounded(child, Duration::from_secs(60)))
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

impl Ran {
    #[track_caller]
    pub fn code(&self, code: i32) -> &Ran {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Ran {
        assert_eq!(self.stdout, dedent(expected), "stderr:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Ran {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Ran {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}:\n{}",
            self.stdout
        );
        self
    }
}

/// Kill a child that hangs, so a broken test fails instead of blocking CI.
fn wait_bounded(child: std::process::Child, limit: Duration) -> Output {
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
