//! SPEC 3, 5 and 6: what reaches a process and what comes back. The
//! one-line shortcut that starts a command without `sh` is invisible (a
//! corpus run both ways), outcomes are typed (an exit code is never taken
//! for a signal), values that cannot reach a process are clear errors, and
//! output is never lost: not on a full spool disk, not on a non-blocking
//! stdout.
use crate::common;
use common::Test;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

// ------------------------------------------------- the invisible shortcut

/// Files the corpus commands use: a script without `#!` (sh runs it), a
/// file that is not executable, a directory, and a program on the PATH.
fn corpus_files(dir: &Path) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let write = |path: &Path, text: &str, mode: u32| {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        &bin.join("noshebang"),
        "echo script ran with \"$@\"\ntouch made-by-script\n",
        0o755,
    );
    write(&bin.join("noexec"), "echo never\n", 0o644);
    write(
        &bin.join("tool"),
        "#!/bin/sh\necho tool \"$#\" \"$@\"\n",
        0o755,
    );
    write(&dir.join("local.sh"), "echo local \"$1\"\nexit 3\n", 0o755);
    std::fs::create_dir_all(dir.join("adir")).unwrap();
}

/// One-line commands the shortcut may take. Each runs once through the
/// shortcut (the default shell) and once through `settings.shell` written
/// so that the shortcut does not apply; status, stdout, the step's stderr
/// and the files made must be the same.
const CORPUS: &[&str] = &[
    "true",
    "false",
    "tool a b",
    "tool a\u{a0}b",
    "tool a\u{b}b\u{c}c",
    "tool\ta\t\tb",
    "touch x\u{a0}y",
    "bin/noshebang one two",
    "./bin/noshebang",
    "noshebang x",
    "./bin/noexec",
    "./adir",
    "./local.sh arg",
    "no-such-program-anywhere",
    "ls -d adir",
    "sh -c 'exit 200'",
];

struct Result {
    code: i32,
    stdout: String,
    stderr: String,
    files: Vec<String>,
}

fn run_corpus_entry(command: &str, shortcut: bool) -> Result {
    let shell = if shortcut {
        String::new()
    } else {
        "[settings]\nshell = [\"/bin/sh\", \"-e\", \"-c\"]\n".into()
    };
    let toml = format!("{shell}[tasks.t]\nrun = {}\n", toml_string(command));
    let t = Test::with(&toml);
    corpus_files(t.path());
    let path = format!(
        "{}:{}",
        t.path().join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = common::output_of(t.command().args(["-q", "t"]).env("PATH", path));
    let mut files: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    // The step's own stderr: without tasker's summary line, which names
    // the failure in its own words.
    let stderr = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("error: t failed"))
        // sh names itself and the line in its messages.
        .map(|l| l.replace("/bin/sh: 1: ", "").replace("sh: 1: ", ""))
        .collect::<Vec<_>>()
        .join("\n");
    Result {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        files,
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{a0}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[test]
fn the_shortcut_gives_what_the_shell_gives_for_a_corpus_of_commands() {
    for command in CORPUS {
        let direct = run_corpus_entry(command, true);
        let shell = run_corpus_entry(command, false);
        assert_eq!(direct.code, shell.code, "status of {command:?}");
        assert_eq!(direct.stdout, shell.stdout, "stdout of {command:?}");
        assert_eq!(direct.files, shell.files, "files made by {command:?}");
        // sh reports a program it cannot find or run itself; tasker names
        // it in its summary instead. Any other stderr is the program's.
        if ![126, 127].contains(&shell.code) {
            assert_eq!(direct.stderr, shell.stderr, "stderr of {command:?}");
        }
    }
}

#[test]
fn cmd_and_pipe_programs_follow_the_same_rules() {
    let t = Test::with(
        r#"
        [tasks.script]
        run = [{ cmd = ["./bin/noshebang", "a b"] }]
        [tasks.piped]
        run = [{ pipe = ["./bin/noshebang x", "tr a-z A-Z"] }]
        [tasks.noexec]
        run = [{ cmd = ["./bin/noexec"] }]
        "#,
    );
    corpus_files(t.path());
    let out = common::output_of(t.command().args(["-q", "script"]));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "script ran with a b\n")
    );
    let out = common::output_of(t.command().args(["-q", "piped"]));
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "SCRIPT RAN WITH X\n")
    );
    let out = common::output_of(t.command().args(["-q", "noexec"]));
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: noexec failed at `./bin/noexec`: cannot execute `./bin/noexec`: permission denied\n"
    );
}

// --------------------------------------------------------- typed outcomes

#[test]
fn an_exit_code_above_128_is_an_exit_code_not_a_signal() {
    let t = Test::with(
        r#"
        [tasks.e200]
        run = "exit 200"
        [tasks.e255]
        run = "exit 255"
        [tasks.c129]
        run = [{ cmd = ["python3", "-c", "import sys; sys.exit(129)"] }]
        [tasks.killed]
        run = "kill -9 $$"
        "#,
    );
    for (task, code, why) in [
        ("e200", 200, "exit status 200"),
        ("e255", 255, "exit status 255"),
        ("c129", 129, "exit status 129"),
        ("killed", 137, "killed by signal 9"),
    ] {
        let out = common::output_of(t.command().args(["-q", task]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{task}: {stderr}");
        assert!(stderr.ends_with(&format!(": {why}\n")), "{task}: {stderr}");
    }
}

// ------------------------------------------ values that cannot reach a process

#[test]
fn a_nul_byte_in_a_literal_env_value_is_found_by_check() {
    let t = Test::with(
        r#"
        [env]
        TOKEN = "abc\u0000def"
        [tasks.t]
        run = "echo $TOKEN"
        "#,
    );
    for args in [vec!["--check"], vec!["t"]] {
        let out = common::output_of(t.command().args(&args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("error: [env] entry `TOKEN` holds a NUL byte, which cannot reach a process\n --> ./tasks.toml:2:13"),
            "{stderr}"
        );
        assert!(!t.path().join("ran").exists());
    }
}

#[test]
fn a_nul_byte_that_arrives_at_run_time_names_the_value() {
    let t = Test::with(
        r#"
        [settings]
        dotenv = [".env"]
        [tasks.t]
        run = "touch ran; echo $FROM_FILE"
        "#,
    );
    std::fs::write(t.path().join(".env"), b"FROM_FILE=a\0b\n").unwrap();
    let out = common::output_of(t.command().args(["-q", "t"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("environment variable `FROM_FILE` holds a NUL byte"),
        "{stderr}"
    );
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_list_value_in_cmd_is_several_arguments_and_a_string_is_one() {
    let t = Test::with(
        r#"
        [tasks.t]
        args = [
            { name = "files", type = "list", default = ["a b", "c"] },
            { name = "one", default = "x y" },
        ]
        run = [{ cmd = ["printf", "<%s>", "{{ files }}", "{{ one }}", "--all={{ files }}"] }]
        "#,
    );
    let out = common::output_of(t.command().args(["-q", "t"]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "<a b><c><x y><--all=a b c>"
    );
}

#[test]
fn an_environment_too_big_for_the_system_is_a_clear_error() {
    let t = Test::with(
        r#"
        [tasks.t]
        env = { HUGE = "{{ 'x' * 3000000 }}" }
        run = "echo never"
        "#,
    );
    let out = common::output_of(t.command().args(["-q", "t"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("too big for the system"), "{stderr}");
    assert!(stderr.contains("`HUGE`"), "{stderr}");
}

// ------------------------------------------------------ output never lost

/// Numbered lines, enough to overflow a small spool disk many times.
const MANY_LINES: &str = r#"
[tasks.a]
run = "seq 1 200000"
[tasks.b]
run = "seq 1 100"
[tasks.both]
deps = ["a", "b"]
run = "true"
"#;

#[test]
fn grouped_output_is_whole_when_the_spool_disk_is_full() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !root {
        eprintln!("skipped: mounting a tiny tmpfs needs root");
        return;
    }
    let t = Test::with(MANY_LINES);
    let spool = t.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&spool)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let out = common::output_of(
        t.command()
            .args(["-q", "-j2", "--output", "grouped", "both"])
            .env("TMPDIR", &spool),
    );
    let _ = Command::new("umount").arg(&spool).status();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected_a: String = (1..=200000).map(|n| format!("{n}\n")).collect();
    let expected_b: String = (1..=100).map(|n| format!("{n}\n")).collect();
    assert!(
        stdout == format!("{expected_a}{expected_b}")
            || stdout == format!("{expected_b}{expected_a}"),
        "grouped output was damaged ({} bytes)",
        stdout.len()
    );
}

/// A parent that set O_NONBLOCK on the pipe it shares with tasker (ssh and
/// node do): tasker waits until the pipe takes more, and loses nothing.
#[test]
fn a_non_blocking_stdout_loses_nothing() {
    let t = Test::with(
        r#"
        [tasks.t]
        capture = true
        run = "seq 1 300000"
        [tasks.show]
        deps = ["t"]
        run = "true"
        "#,
    );
    let driver = r#"
import fcntl, os, subprocess, sys, time
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([sys.argv[1], "-q", "--output", "prefixed", "show"], stdout=w)
os.close(w)
total = 0
lines = 0
while True:
    time.sleep(0.001)
    data = os.read(r, 4096)
    if not data:
        break
    total += len(data)
    lines += data.count(b"\n")
p.wait(timeout=60)
print(p.returncode, lines)
"#;
    let mut out = Command::new("python3");
    out.current_dir(t.path())
        .args(["-c", driver, env!("CARGO_BIN_EXE_tasker")]);
    let out = common::output_of(&mut out);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "0 300000\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
