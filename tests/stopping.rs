//! SPEC 6, stopping: every stop signal in every state, the bounded drain
//! after a step exits, the user's interrupt and job control on a terminal,
//! SIGKILL of tasker's group, tasker as PID 1, one question at a time, and
//! responders that never stop the reading.
//!
//! Signals are sent from outside with `kill` on tasker's pid, as CI runners
//! and `timeout` do; terminals are real pseudo-terminals driven by python.
//! Every wait is bounded, and ordering is proven with files.
use crate::common;
use common::{alive, on_a_terminal, Test};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Wait (at most 20 s) until `name` exists in the test's directory.
#[track_caller]
fn wait_for_file(t: &Test, name: &str, child: &mut Child) {
    let start = Instant::now();
    while !t.path().join(name).exists() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("{name} never appeared");
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("tasker ended ({status}) before {name} appeared");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Wait for tasker to end, at most `limit`; kill it and fail otherwise.
#[track_caller]
fn finish(child: Child, limit: Duration) -> (i32, String, String) {
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if rx.recv_timeout(limit).is_err() {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            return true;
        }
        false
    });
    let out = child.wait_with_output().expect("wait for tasker");
    let _ = tx.send(());
    let killed = watchdog.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !killed,
        "tasker did not end within {limit:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn spawn(t: &Test) -> Child {
    t.command()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasker")
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig} {pid}");
}

/// The pid written in file `name`.
#[track_caller]
fn pid_in(t: &Test, name: &str) -> u32 {
    let text = std::fs::read_to_string(t.path().join(name))
        .unwrap_or_else(|e| panic!("cannot read {name}: {e}"));
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{name} holds no pid: {text:?}"))
}

/// Wait (at most 10 s) until `pid` is gone; the guard process that kills
/// what tasker left works after tasker is already dead.
#[track_caller]
fn assert_ends(pid: u32) {
    let start = Instant::now();
    while alive(pid) {
        if start.elapsed() > Duration::from_secs(10) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("process {pid} outlived tasker");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill_pid_in(t: &Test, name: &str) {
    if let Ok(text) = std::fs::read_to_string(t.path().join(name)) {
        let _ = Command::new("kill")
            .args(["-9", text.trim()])
            .stderr(Stdio::null())
            .status();
    }
}

// ------------------------------------------- daemons that inherit the pipes

/// A step that leaves a daemon (a session of its own) holding its stdout
/// and stderr: tasker reads what remains for at most a second, then goes
/// on. Each way of reading the output is tried.
#[test]
fn a_daemon_holding_the_pipes_never_keeps_tasker_waiting() {
    let daemon = "setsid sh -c 'echo $$ > daemon.pid; exec sleep 60' & while [ ! -s daemon.pid ]; do sleep 0.01; done; echo end";
    for (keys, args) in [
        ("capture = true", vec!["-q", "after"]),
        ("hide = true", vec!["-q", "after"]),
        ("fail_on = [\"never-printed\"]", vec!["-q", "after"]),
        ("", vec!["-q", "--output", "prefixed", "after"]),
        ("", vec!["-q", "--output", "grouped", "after"]),
    ] {
        let t = Test::with(&format!(
            r#"
            [tasks.d]
            {keys}
            run = "{daemon}"
            [tasks.after]
            deps = ["d"]
            run = "touch after.ran"
            "#
        ))
        .args(&args);
        let child = spawn(&t);
        let (code, _, stderr) = finish(child, Duration::from_secs(15));
        kill_pid_in(&t, "daemon.pid");
        assert_eq!(code, 0, "{keys} {args:?}: {stderr}");
        assert!(t.path().join("after.ran").exists(), "{keys} {args:?}");
    }
}

#[test]
fn an_sh_var_that_leaves_a_daemon_holding_its_stdout_gives_its_value() {
    let t = Test::with(
        r#"
        [vars]
        v = { sh = "setsid sh -c 'echo $$ > daemon.pid; exec sleep 60' 2>/dev/null & while [ ! -s daemon.pid ]; do sleep 0.01; done; echo value" }
        [tasks.t]
        run = "echo got {{ v }}"
        "#,
    )
    .args(&["-q", "t"]);
    let (code, stdout, stderr) = finish(spawn(&t), Duration::from_secs(15));
    kill_pid_in(&t, "daemon.pid");
    assert_eq!((code, stdout.as_str()), (0, "got value\n"), "{stderr}");
}

// ------------------------------------------------ every signal, every state

const SIGNALLED: &str = r#"
[tasks.top]
deps = ["one", "two"]
run = "touch top.ran"
[tasks.one]
run = "echo $$ > one.pid; touch one.here; sleep 60"
finally = "touch one.cleaned"
[tasks.two]
run = "echo $$ > two.pid; touch two.here; sleep 60"
finally = "touch two.cleaned"
"#;

#[test]
fn sighup_and_sigquit_stop_every_run_run_finally_and_exit_128_plus_n() {
    for (sig, code) in [("-HUP", 129), ("-QUIT", 131)] {
        let t = Test::with(SIGNALLED).args(&["-q", "-j2", "top"]);
        let mut child = spawn(&t);
        wait_for_file(&t, "one.here", &mut child);
        wait_for_file(&t, "two.here", &mut child);
        signal(child.id(), sig);
        let (status, _, stderr) = finish(child, Duration::from_secs(15));
        assert_eq!(status, code, "{sig}: {stderr}");
        assert!(t.path().join("one.cleaned").exists(), "{sig}");
        assert!(t.path().join("two.cleaned").exists(), "{sig}");
        assert!(!t.path().join("top.ran").exists(), "{sig}");
        assert!(!alive(pid_in(&t, "one.pid")));
        assert!(!alive(pid_in(&t, "two.pid")));
    }
}

#[test]
fn a_signal_while_an_sh_var_is_evaluated_stops_it_and_tasker() {
    for (sig, code) in [("-TERM", 143), ("-INT", 130)] {
        let t = Test::with(
            r#"
            [vars]
            slow = { sh = "echo $$ > var.pid; touch var.here; sleep 60; echo late" }
            [tasks.t]
            run = "echo {{ slow }} > t.ran"
            "#,
        )
        .args(&["-q", "t"]);
        let mut child = spawn(&t);
        wait_for_file(&t, "var.here", &mut child);
        signal(child.id(), sig);
        let (status, _, stderr) = finish(child, Duration::from_secs(15));
        assert_eq!(status, code, "{sig}: {stderr}");
        assert!(!alive(pid_in(&t, "var.pid")), "{sig}");
        assert!(!t.path().join("t.ran").exists());
    }
}

/// An `sh` var whose command closed its stdout and goes on: the signal
/// still stops it (nothing waits for it without looking).
#[test]
fn a_signal_stops_an_sh_var_that_closed_its_stdout() {
    let t = Test::with(
        r#"
        [vars]
        slow = { sh = "echo $$ > var.pid; exec >&-; touch var.here; sleep 60" }
        [tasks.t]
        run = "echo {{ slow }} > t.ran"
        "#,
    )
    .args(&["-q", "t"]);
    let mut child = spawn(&t);
    wait_for_file(&t, "var.here", &mut child);
    signal(child.id(), "-TERM");
    let (status, _, stderr) = finish(child, Duration::from_secs(15));
    assert_eq!(status, 143, "{stderr}");
    assert!(!alive(pid_in(&t, "var.pid")));
    assert!(!t.path().join("t.ran").exists());
}

#[test]
fn a_second_signal_ends_tasker_at_once_even_in_a_finally_that_hangs() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = "touch t.here; sleep 60"
        finally = "echo $$ > fin.pid; touch fin.here; sleep 60"
        "#,
    )
    .args(&["-q", "t"]);
    let mut child = spawn(&t);
    wait_for_file(&t, "t.here", &mut child);
    signal(child.id(), "-TERM");
    wait_for_file(&t, "fin.here", &mut child);
    signal(child.id(), "-INT");
    let (status, _, stderr) = finish(child, Duration::from_secs(5));
    assert_eq!(status, 130, "{stderr}");
    assert!(!alive(pid_in(&t, "fin.pid")));
}

/// The numbers of write(2) and writev(2): x86_64's, else the generic
/// table's (aarch64, riscv64).
const WRITE_CALLS: [&str; 2] = if cfg!(target_arch = "x86_64") {
    ["1", "20"]
} else {
    ["64", "66"]
};

/// Whether a thread of `pid` is blocked writing to its stdout (per
/// /proc/PID/task/*/syscall: the call's number, then its first argument,
/// the descriptor).
fn blocked_writing_stdout(pid: u32) -> bool {
    let Ok(threads) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    threads.flatten().any(|thread| {
        let call = std::fs::read_to_string(thread.path().join("syscall")).unwrap_or_default();
        let mut words = call.split_whitespace();
        matches!((words.next(), words.next()), (Some(n), Some("0x1")) if WRITE_CALLS.contains(&n))
    })
}

/// A reader of tasker's stdout that stopped reading (a paused pager):
/// the writes block, and a second signal still ends tasker.
#[test]
fn a_second_signal_ends_tasker_whose_stdout_nobody_reads() {
    let t = Test::with(
        r#"
        [tasks.t]
        capture = true
        run = "echo $$ > t.pid; touch t.here; while :; do echo a line of output that fills the pipe; done"
        [tasks.show]
        deps = ["t"]
        run = "true"
        "#,
    )
    .args(&["-q", "--output", "prefixed", "t"]);
    // stdout is a pipe nobody reads.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = t
        .command()
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_file(&t, "t.here", &mut child);
    // Wait until tasker is blocked writing to the full pipe (the loop
    // writes far more than it holds).
    let end = Instant::now() + Duration::from_secs(60);
    while !blocked_writing_stdout(child.id()) {
        assert!(Instant::now() < end, "tasker never blocked on its stdout");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child.id(), "-TERM");
    // The first signal stopped the run (its writer is gone), but tasker
    // itself is stuck writing to the full pipe.
    assert_ends(pid_in(&t, "t.pid"));
    signal(child.id(), "-TERM");
    let (status, _, stderr) = finish(child, Duration::from_secs(10));
    drop(reader);
    assert_eq!(status, 143, "{stderr}");
}

#[test]
fn a_render_that_would_run_for_minutes_is_a_located_error() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = "echo {% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
        "#,
    )
    .args(&["-q", "t"]);
    let (code, _, stderr) = finish(spawn(&t), Duration::from_secs(60));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("does too much work"), "{stderr}");
    assert!(stderr.contains("tasks.toml:2:"), "{stderr}");
}

// ------------------------------------------------ killed without cleanup

/// SIGKILL of tasker's whole process group, as CI cancels a job: every run
/// sits in a group of its own, and still none outlives tasker.
#[test]
fn sigkill_of_taskers_group_leaves_no_run_behind() {
    sigkill_of_the_group_leaves_no_run_behind(None);
}

/// The same with the guard macOS has (forked, not cloned), which a debug
/// build takes on Linux when a test asks: it shares the table of runs,
/// and holds none of tasker's descriptors but its own pipe's read end
/// (else it would never see tasker go).
#[test]
fn the_forked_guard_also_leaves_no_run_behind() {
    sigkill_of_the_group_leaves_no_run_behind(Some("fork"));
}

fn sigkill_of_the_group_leaves_no_run_behind(guard: Option<&str>) {
    let t = Test::with(
        r#"
        [tasks.top]
        deps = ["one", "two"]
        run = "true"
        [tasks.one]
        run = "sh -c 'echo $$ > one.gc.pid; exec sleep 60' & echo $$ > one.pid; touch one.here; wait"
        [tasks.two]
        run = "echo $$ > two.pid; touch two.here; sleep 60"
        "#,
    )
    .args(&["-q", "-j2", "top"]);
    let mut cmd = t.command();
    if let Some(way) = guard {
        cmd.env("TASKER_TEST_GUARD", way);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_file(&t, "one.here", &mut child);
    wait_for_file(&t, "two.here", &mut child);
    // Created before it is written: wait for the pid in it.
    while std::fs::read_to_string(t.path().join("one.gc.pid")).map_or(true, |s| !s.ends_with('\n'))
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(child.id(), "-KILL");
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.wait();
    for name in ["one.pid", "one.gc.pid", "two.pid"] {
        assert_ends(pid_in(&t, name));
    }
}

// ---------------------------------------------------------- tasker as PID 1

#[test]
fn as_pid_1_tasker_reaps_orphans_and_steps_cost_no_grace() {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let unshare_works = root
        && Command::new("unshare")
            .args(["-fp", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success());
    if !unshare_works {
        eprintln!("skipped: needs root and unshare(1) for a PID namespace");
        return;
    }
    let t = Test::with(
        r#"
        [tasks.t]
        run = [
            "(sleep 0.2 &); echo $$ > one.pid",
            "(sleep 0.2 &); true",
            "(sleep 0.2 &); true",
        ]
        "#,
    );
    let start = Instant::now();
    let out = Command::new("unshare")
        .args([
            "-fp",
            "--mount-proc",
            env!("CARGO_BIN_EXE_tasker"),
            "-q",
            "t",
        ])
        .current_dir(t.path())
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(out.status.success(), "{out:?}");
    // tasker itself is PID 1 in its namespace; its first step's shell is
    // not (tasker runs as a child of the reaping PID 1).
    assert_ne!(pid_in(&t, "one.pid"), 1);
    // Zombies no one reaps would hold each step for its 3 s grace and 1 s
    // more: 12 s in all.
    assert!(took < Duration::from_secs(6), "three steps took {took:?}");
}

// ---------------------------------------------------- responders, pressure

/// A run that prints prompts and never reads its stdin: the answers fill
/// the pipe, and the output is still read to the end.
#[test]
fn answers_a_run_never_reads_do_not_stop_the_reading() {
    let t = Test::with(
        r#"
        [tasks.t]
        respond = [{ on = "prompt", send = "an answer that is long enough to fill a pipe buffer quickly, line after line after line after line after line\n" }]
        run = "i=0; while [ $i -lt 3000 ]; do echo prompt $i; i=$((i+1)); done; echo finished"
        "#,
    )
    .args(&["-q", "t"]);
    let (code, stdout, stderr) = finish(spawn(&t), Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.ends_with("prompt 2999\nfinished\n"), "{stdout}");
}

// --------------------------------------------------- failures inside tasker

#[test]
fn task_steps_nest_at_most_256_deep() {
    let t = Test::with(
        r#"
        [tasks.r]
        args = [{ name = "n", type = "int", default = 0 }]
        run = [{ task = "r -n {{ n + 1 }}" }]
        "#,
    )
    .args(&["-q", "r"]);
    let (code, _, stderr) = finish(spawn(&t), Duration::from_secs(60));
    assert_eq!(code, 2, "{stderr}");
    // Once, with the chain shortened; the 256 callers waiting on it are
    // not listed one by one (SPEC 6).
    assert_eq!(
        stderr,
        common::dedent(
            "
            error: calls nest more than 256 deep at task `r`: do its calls expand forever?
             --> ./tasks.toml:1:8
              |
            1 | [tasks.r]
              |        ^
              called as r -> r -> r -> ... (251 more) ... -> r -> r -> r
            "
        )
    );
}

#[test]
fn a_failure_deep_in_task_steps_is_reported_once_with_its_chain() {
    let file = r#"
        [tasks.top]
        run = [{ task = "middle" }, "echo never"]
        [tasks.middle]
        run = [{ task = "bottom" }]
        [tasks.bottom]
        run = "exit 3"
        "#;
    let stderr = "
        error: bottom failed at `exit 3`: exit status 3
          called as top -> middle -> bottom
        ";
    Test::with(file).args(&["-q", "top"]).expect("", stderr, 3);
    Test::with(file)
        .args(&["-q", "-k", "top"])
        .expect("", stderr, 3);
}

// ------------------------------------------------------------- terminals

#[test]
fn ctrl_c_at_a_confirm_prompt_ends_it_at_once() {
    let t = Test::with(
        r#"
        [tasks.deploy]
        confirm = "Deploy?"
        run = "touch deployed"
        finally = "touch cleaned"
        "#,
    );
    let (out, code) = on_a_terminal(&t, &["-q", "deploy"], &[("[y/N] ", b"\x03")]);
    assert_eq!(code, 130, "{out}");
    assert!(!out.contains("got no answer"), "{out}");
    assert!(!t.path().join("deployed").exists());
}

/// Ctrl-C typed at a run that holds the terminal reaches only that run;
/// its death is the user's interrupt: no retry, no `ignore_failure`, no
/// next task, `finally` runs, exit 130.
#[test]
fn ctrl_c_at_a_run_holding_the_terminal_is_the_users_interrupt() {
    let t = Test::with(
        r#"
        [tasks.long]
        retries = 3
        ignore_failure = true
        # One program from "started" on: a shell between two commands may
        # take a Ctrl-C in its handler and lose it (dash does).
        run = [{ cmd = ["python3", "-c", "import os, time; open('attempt.%d' % os.getpid(), 'w'); print('started', flush=True); time.sleep(60)"] }]
        finally = "touch cleaned"
        [tasks.next]
        run = "touch next.ran"
        "#,
    );
    let (out, code) = on_a_terminal(&t, &["-q", "long", "next"], &[("started", b"\x03")]);
    assert_eq!(code, 130, "{out}");
    let attempts = std::fs::read_dir(t.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("attempt.")
        })
        .count();
    assert_eq!(attempts, 1, "{out}");
    assert!(t.path().join("cleaned").exists(), "{out}");
    assert!(!t.path().join("next.ran").exists(), "{out}");
}

/// Two overlapping runs ask at once: one question at a time, each on its
/// own line, and each answer goes to the question shown.
#[test]
fn concurrent_confirms_ask_one_at_a_time_and_bind_the_answer() {
    let t = Test::with(
        r#"
        [tasks.both]
        deps = ["a", "b"]
        run = "true"
        [tasks.a]
        confirm = "Deploy A?"
        run = "touch a.deployed"
        [tasks.b]
        confirm = "Deploy B?"
        run = "touch b.deployed"
        "#,
    );
    let (out, _) = on_a_terminal(
        &t,
        &["-q", "-j2", "-k", "both"],
        &[("[y/N] ", b"y\n"), ("[y/N] ", b"n\n")],
    );
    let first_a = out.find("Deploy A?");
    let first_b = out.find("Deploy B?");
    let (Some(a), Some(b)) = (first_a, first_b) else {
        panic!("both questions must be asked:\n{out}");
    };
    // Never two questions on one line.
    assert!(
        !out.lines()
            .any(|l| l.contains("Deploy A?") && l.contains("Deploy B?")),
        "{out}"
    );
    let (yes, no) = if a < b { ("a", "b") } else { ("b", "a") };
    assert!(t.path().join(format!("{yes}.deployed")).exists(), "{out}");
    assert!(!t.path().join(format!("{no}.deployed")).exists(), "{out}");
}

/// While one run waits at its question, a run whose question was answered
/// goes on at once: its command starts (the file appears before the
/// second answer is typed); only its output waits for the question to go,
/// and then comes whole, never inside the question's line (SPEC 6).
#[test]
fn a_pending_question_holds_only_the_output_of_an_answered_run() {
    let file = r#"
        [tasks.both]
        deps = ["a", "b"]
        run = "true"
        [tasks.a]
        confirm = "Deploy A?"
        run = "sh asked.sh; touch answered; echo deployed A"
        [tasks.b]
        confirm = "Deploy B?"
        run = "sh asked.sh; touch answered; echo deployed B"
        "#;
    // A run's command waits (bounded) until the test has seen the second
    // question up.
    let asked = r#"
        i=0
        while [ ! -e asked ]; do
          i=$((i+1)); if [ $i -gt 2000 ]; then exit 9; fi; sleep 0.01
        done
        "#;
    // The second answer typed late: only once the first run's command ran,
    // which it did once the second question was up.
    let t = Test::with(file)
        .file("asked.sh", asked)
        .env("NO_COLOR", "1");
    let (out, code) = on_a_terminal(
        &t,
        &["-j2", "both"],
        &[
            ("[y/N] ", b"y\n"),
            ("[y/N] ", b""),
            ("@touch:asked", b""),
            ("@file:answered", b"y\n"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("NEVER"), "{out}");
    let second = out.rfind("[y/N] y").expect("two answers");
    // The first run's output (its command ran while the second question
    // was up) waited for that question to go; its command ran meanwhile:
    // the file appeared before the second answer.
    let first_out = out.find("| deployed ").unwrap_or_else(|| panic!("{out}"));
    assert!(first_out > second, "{out}");
    assert_eq!(out.matches("| deployed ").count(), 2, "{out}");
    // Typed at once: the same, without waiting.
    let t = Test::with(file)
        .file("asked.sh", asked)
        .file("asked", "")
        .env("NO_COLOR", "1");
    let (out, code) = on_a_terminal(
        &t,
        &["-j2", "both"],
        &[("[y/N] ", b"y\n"), ("[y/N] ", b"y\n")],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("| deployed ").count(), 2, "{out}");
    assert!(
        !out.lines()
            .any(|l| l.contains("[y/N]") && l.contains("deployed")),
        "{out}"
    );
}

/// Ctrl-Z stops the run that holds the terminal and tasker with it, as a
/// shell's job; `fg` continues both, and the run has the terminal again.
/// python plays the job-control shell: it gives tasker the foreground and
/// waits for it with WUNTRACED.
#[test]
fn ctrl_z_stops_tasker_as_a_job_and_fg_resumes_it() {
    let t = Test::with(
        r#"
        [tasks.ask]
        run = "echo started; read -r x; echo got $x"
        "#,
    );
    let driver = r#"
import fcntl, os, select, signal, sys, termios, time
tasker = sys.argv[1]
master, slave = os.openpty()
shell = os.fork()
if shell == 0:
    os.close(master)
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for n in (0, 1, 2):
        os.dup2(slave, n)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    job = os.fork()
    if job == 0:
        os.setpgid(0, 0)
        os.tcsetpgrp(0, os.getpid())
        signal.signal(signal.SIGTTOU, signal.SIG_DFL)
        os.execv(tasker, [tasker, "-q", "ask"])
    os.setpgid(job, job)
    os.tcsetpgrp(0, job)
    log = open("shell.log", "w")
    _, st = os.waitpid(job, os.WUNTRACED)
    log.write("stopped\n" if os.WIFSTOPPED(st) else "ended %d\n" % st)
    log.flush()
    # fg
    os.tcsetpgrp(0, job)
    os.killpg(job, signal.SIGCONT)
    _, st = os.waitpid(job, os.WUNTRACED)
    log.write("exit %d\n" % os.waitstatus_to_exitcode(st) if not os.WIFSTOPPED(st) else "stopped again\n")
    log.close()
    os._exit(0)
os.close(slave)
out = b""
def pump(until, limit=40.0):
    global out
    end = time.time() + limit
    while not until() and time.time() < end:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                data = os.read(master, 1024)
            except OSError:
                return
            if not data:
                return
            out += data
def log():
    try:
        return open("shell.log").read()
    except OSError:
        return ""
pump(lambda: b"started" in out)
os.write(master, b"\x1a")
pump(lambda: "stopped" in log())
# Typed while tasker and the run are continued: the terminal keeps it
# for the run's read, whoever holds the foreground at that moment.
os.write(master, b"hello\n")
pump(lambda: "exit" in log() or "again" in log())
# The shell may log the exit before the last output is read here.
pump(lambda: b"got hello" in out, 5.0)
end = time.time() + 40
while os.waitpid(shell, os.WNOHANG)[0] == 0:
    if time.time() > end:
        os.kill(shell, 9)
        os.system("pkill -9 -s %d" % shell)
        os.waitpid(shell, 0)
        break
    time.sleep(0.02)
sys.stdout.write(out.decode(errors="replace").replace("\r\n", "\n"))
sys.stdout.write("\n--\n" + log())
"#;
    // The driver's output goes to a file: a stuck tasker holding a pipe
    // must not hold the test.
    let report = std::fs::File::create(t.path().join("driver.out")).unwrap();
    let child = Command::new("python3")
        .current_dir(t.path())
        .args(["-c", driver, env!("CARGO_BIN_EXE_tasker")])
        .stdin(Stdio::null())
        .stdout(report)
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 runs the job-control shell");
    let _ = finish(child, Duration::from_secs(120));
    let text = std::fs::read_to_string(t.path().join("driver.out")).unwrap_or_default();
    let log = text.rsplit("\n--\n").next().unwrap_or("");
    assert!(log.starts_with("stopped\n"), "{text}");
    assert!(log.contains("exit 0"), "{text}");
    assert!(text.contains("got hello"), "{text}");
}

/// A panic in a run's thread (asked for through a debug-build hook) fails
/// that run with a message and stops the invocation like any failure: on
/// the pool and on the main thread alike, never a hang.
#[test]
fn a_panic_in_a_run_fails_it_and_stops_the_invocation() {
    for args in [vec!["-q", "-j2", "top"], vec!["-q", "a"]] {
        let t = Test::with(
            r#"
            [tasks.top]
            deps = ["a", "b"]
            run = "touch top.ran"
            [tasks.a]
            run = "true"
            [tasks.b]
            run = "echo $$ > b.pid; sleep 60"
            "#,
        )
        .args(&args)
        .env("TASKER_TEST_PANIC_IN", "a");
        let (code, _, stderr) = finish(spawn(&t), Duration::from_secs(30));
        assert_eq!(code, 70, "{args:?}: {stderr}");
        assert!(stderr.contains("internal error in tasker"), "{stderr}");
        assert!(!t.path().join("top.ran").exists());
        if t.path().join("b.pid").exists() {
            assert!(!alive(pid_in(&t, "b.pid")));
        }
    }
}
