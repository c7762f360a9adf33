//! SPEC 6 process control and SPEC 2 `timeout`, `retries`, `finally`:
//! stopping whole process trees (fail-fast, timeout, SIGINT, SIGTERM), exit
//! statuses, and cleanup that always runs.
//!
//! "No orphans" is proven by commands that write their PIDs (a grandchild's
//! too) and checks that those processes are gone once tasker exited.
use crate::common;
use common::{alive, Test};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Start a grandchild that writes its pid to `$1.gc.pid`, write our own
/// to `$1.pid`, say `$1.here`, then wait forever.
const SPAWN: &str = r#"
sh -c 'echo $$ > "$0.gc.pid"; exec sleep 60' "$1" &
echo $$ > "$1.pid"
while [ ! -s "$1.gc.pid" ]; do sleep 0.01; done
touch "$1.here"
wait
"#;

/// `sh waitfor.sh FILE`: wait (at most 10 s) for FILE.
const WAIT_FOR: &str = r#"
i=0
while [ ! -e "$1" ]; do
  i=$((i+1))
  if [ $i -gt 1000 ]; then echo "no $1" >&2; exit 9; fi
  sleep 0.01
done
"#;

fn test(toml: &str) -> Test {
    Test::with(toml)
        .file("spawn.sh", SPAWN)
        .file("waitfor.sh", WAIT_FOR)
}

fn pids(t: &Test, names: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    for name in names {
        for file in [format!("{name}.pid"), format!("{name}.gc.pid")] {
            let text = t.read(&file);
            let pid = text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{file} holds no pid: {text:?}"));
            pids.push(pid);
        }
    }
    pids
}

#[track_caller]
fn assert_gone(t: &Test, names: &[&str]) {
    for pid in pids(t, names) {
        assert!(!alive(pid), "process {pid} outlived tasker");
    }
}

/// Start tasker, wait until `marker` exists, send `signal`, and return
/// its exit status and stderr.
fn interrupt(t: &Test, marker: &str, signal: &str) -> (i32, String) {
    let mut child = t
        .command()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tasker");
    let start = Instant::now();
    while !t.path().join(marker).exists() {
        if start.elapsed() > Duration::from_secs(20) || child.try_wait().unwrap().is_some() {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{marker} never appeared:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // Bounded: a tasker that ignores the signal is killed and fails.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if rx.recv_timeout(Duration::from_secs(30)).is_err() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    });
    let out = child.wait_with_output().unwrap();
    let _ = tx.send(());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

// --------------------------------------------------------- exit statuses

#[test]
fn a_command_killed_by_a_signal_exits_128_plus_n() {
    test(
        r#"
        [tasks.k]
        run = "kill -9 $$"
        "#,
    )
    .args(&["-q", "k"])
    .expect(
        "",
        "error: k failed at `kill -9 $$`: killed by signal 9\n",
        137,
    );
}

#[test]
fn the_exit_status_is_the_failed_commands_own() {
    test("[tasks.x]\nrun = \"exit 42\"\n")
        .args(&["-q", "x"])
        .expect("", "error: x failed at `exit 42`: exit status 42\n", 42);
}

// -------------------------------------------------------------- fail-fast

#[test]
fn fail_fast_leaves_no_process_behind() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["one", "two", "fail"]
        run = "true"
        [tasks.one]
        run = "sh spawn.sh one"
        [tasks.two]
        run = "sh spawn.sh two"
        [tasks.fail]
        run = "sh waitfor.sh one.here && sh waitfor.sh two.here && exit 3"
        "#,
    )
    .args(&["-q", "-j3", "top"]);
    t.expect(
        "",
        r#"
        error: one cancelled
        error: two cancelled
        error: fail failed at `sh waitfor.sh one.here && sh waitfor.sh two.here && exit 3`: exit status 3
        "#,
        3,
    );
    assert_gone(&t, &["one", "two"]);
}

#[test]
fn a_process_tree_that_ignores_sigterm_is_killed() {
    // Everything in the group ignores SIGTERM: only the SIGKILL that
    // follows the grace period ends it.
    let t = test(
        r#"
        [tasks.top]
        deps = ["stubborn", "fail"]
        run = "true"
        [tasks.stubborn]
        run = "trap '' TERM; sh spawn.sh stubborn"
        finally = "touch cleaned"
        [tasks.fail]
        run = "sh waitfor.sh stubborn.here && exit 3"
        "#,
    )
    .args(&["-q", "-j2", "top"]);
    t.expect(
        "",
        r#"
        error: stubborn cancelled
        error: fail failed at `sh waitfor.sh stubborn.here && exit 3`: exit status 3
        "#,
        3,
    );
    assert_gone(&t, &["stubborn"]);
    assert!(t.path().join("cleaned").exists());
}

// ---------------------------------------------------------------- timeout

#[test]
fn a_timeout_kills_the_whole_tree_and_exits_124() {
    let t = test(
        r#"
        [tasks.t]
        timeout = "1s"
        run = "sh spawn.sh t"
        finally = "touch cleaned"
        "#,
    )
    .args(&["-q", "t"]);
    t.expect(
        "",
        "error: t failed at `sh spawn.sh t`: timed out after 1.0s\n",
        124,
    );
    assert_gone(&t, &["t"]);
    assert!(t.path().join("cleaned").exists());
}

#[test]
fn a_timeout_bounds_the_whole_run_not_each_step() {
    test(
        r#"
        [tasks.t]
        timeout = "1s"
        run = ["touch a", "sleep 0.7", "sleep 0.7", "sleep 0.7", "touch never"]
        "#,
    )
    .args(&["-q", "t"])
    .expect(
        "",
        "error: t failed at `sleep 0.7`: timed out after 1.0s\n",
        124,
    );
}

// ---------------------------------------------------------------- signals

const SIGNALLED: &str = r#"
[tasks.top]
deps = ["one", "two"]
run = "touch top.ran"
[tasks.one]
run = "sh spawn.sh one"
finally = "touch one.cleaned"
[tasks.two]
run = "sh waitfor.sh one.here && sh spawn.sh two"
finally = "touch two.cleaned"
"#;

#[test]
fn sigint_stops_every_run_runs_finally_and_exits_130() {
    let t = test(SIGNALLED).args(&["-q", "-j2", "top"]);
    let (code, stderr) = interrupt(&t, "two.here", "-INT");
    assert_eq!(
        (code, stderr.as_str()),
        (130, "error: one cancelled\nerror: two cancelled\n")
    );
    assert_gone(&t, &["one", "two"]);
    assert!(t.path().join("one.cleaned").exists());
    assert!(t.path().join("two.cleaned").exists());
    assert!(!t.path().join("top.ran").exists());
}

#[test]
fn sigterm_stops_every_run_and_exits_143() {
    let t = test(SIGNALLED).args(&["-q", "-j2", "top"]);
    let (code, stderr) = interrupt(&t, "two.here", "-TERM");
    assert_eq!(
        (code, stderr.as_str()),
        (143, "error: one cancelled\nerror: two cancelled\n")
    );
    assert_gone(&t, &["one", "two"]);
    assert!(t.path().join("one.cleaned").exists());
}

#[test]
fn sigint_reaches_a_run_waiting_in_a_task_step_and_one_in_retry_delay() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["caller", "flaky"]
        run = "true"
        [tasks.caller]
        run = [{ task = "inner" }, "touch caller.resumed"]
        finally = "touch caller.cleaned"
        [tasks.inner]
        run = "sh spawn.sh inner"
        [tasks.flaky]
        retries = 5
        retry_delay = "60s"
        run = "touch flaky.tried; exit 1"
        finally = "touch flaky.cleaned"
        "#,
    )
    .args(&["-q", "-j4", "top"]);
    let (code, stderr) = interrupt(&t, "inner.here", "-INT");
    assert_eq!(code, 130, "{stderr}");
    assert_gone(&t, &["inner"]);
    assert!(t.path().join("caller.cleaned").exists());
    assert!(!t.path().join("caller.resumed").exists());
    assert!(t.path().join("flaky.cleaned").exists());
}

// ---------------------------------------------------------------- retries

#[test]
fn retries_run_again_until_success() {
    let t = test(
        r#"
        [tasks.r]
        retries = 3
        retry_delay = "10ms"
        run = "echo try >> count; test $(wc -l < count) -ge 3"
        "#,
    )
    .args(&["r"]);
    t.expect(
        "",
        r#"
        [r] $ echo try >> count; test $(wc -l < count) -ge 3
        [r] attempt 1 failed: exit status 1
        [r] retrying (1 of 3)
        [r] $ echo try >> count; test $(wc -l < count) -ge 3
        [r] attempt 2 failed: exit status 1
        [r] retrying (2 of 3)
        [r] $ echo try >> count; test $(wc -l < count) -ge 3
        "#,
        0,
    );
    assert_eq!(t.read("count"), "try\ntry\ntry\n");
}

#[test]
fn retries_give_up_after_n_plus_one_attempts() {
    let t = test(
        r#"
        [tasks.r]
        retries = 2
        run = "echo try >> count; exit 5"
        "#,
    )
    .args(&["-q", "r"]);
    t.expect(
        "",
        "error: r failed at `echo try >> count; exit 5`: exit status 5\n",
        5,
    );
    assert_eq!(t.read("count"), "try\ntry\ntry\n");
}

// ---------------------------------------------------------------- finally

#[test]
fn finally_runs_after_success_and_after_failure() {
    let t = test(
        r#"
        [tasks.ok]
        run = "echo ok"
        finally = "echo cleanup ok"
        [tasks.bad]
        run = ["exit 4", "echo never"]
        finally = ["echo cleanup bad", "echo more"]
        "#,
    )
    .args(&["-k", "-j1", "ok", "bad"]);
    t.expect(
        "ok\ncleanup ok\ncleanup bad\nmore\n",
        r#"
        [ok] $ echo ok
        [ok] $ echo cleanup ok
        [bad] $ exit 4
        [bad] $ echo cleanup bad
        [bad] $ echo more
        error: bad failed at `exit 4`: exit status 4
        "#,
        4,
    );
}

#[test]
fn a_failing_finally_fails_a_successful_run() {
    test(
        r#"
        [tasks.x]
        run = "true"
        finally = "exit 6"
        "#,
    )
    .args(&["-q", "x"])
    .expect(
        "",
        "error: x: `finally` failed at `exit 6`: exit status 6\n",
        6,
    );
}

#[test]
fn a_failing_finally_does_not_hide_the_runs_failure() {
    test(
        r#"
        [tasks.x]
        run = "exit 3"
        finally = "exit 6"
        "#,
    )
    .args(&["-q", "x"])
    .expect(
        "",
        r#"
        error: x failed at `exit 3`: exit status 3
        error: x: `finally` failed at `exit 6`: exit status 6
        "#,
        3,
    );
}

#[test]
fn finally_runs_after_cancellation_and_its_failure_is_reported() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["slow", "fail"]
        run = "true"
        [tasks.slow]
        run = "touch slow.here; sleep 60"
        finally = "touch slow.cleaned; exit 9"
        [tasks.fail]
        run = "sh waitfor.sh slow.here && exit 3"
        "#,
    )
    .args(&["-q", "-j2", "top"]);
    t.expect(
        "",
        r#"
        error: slow cancelled
        error: slow: `finally` failed at `touch slow.cleaned; exit 9`: exit status 9
        error: fail failed at `sh waitfor.sh slow.here && exit 3`: exit status 3
        "#,
        3,
    );
    assert!(t.path().join("slow.cleaned").exists());
}

#[test]
fn a_timeout_holds_while_a_task_step_waits() {
    // The called run writes its pid whole (renamed into place) once it is
    // running. Under load it may not have started before a short timeout:
    // then the case is run again with a longer one, so the check always
    // happens and never reads a pid that is not there yet.
    for (limit, shown) in [("300ms", "300ms"), ("2s", "2.0s"), ("10s", "10.0s")] {
        let test = Test::with(&format!(
            r#"
            [tasks.caller]
            timeout = "{limit}"
            run = [{{ task = "slow" }}, "echo never"]
            [tasks.slow]
            run = "echo $$ > slow.tmp; mv slow.tmp slow.pid; exec sleep 60"
            "#
        ))
        .args(&["-q", "caller"]);
        let ran = test.code(124);
        ran.stderr_has(&format!(
            "caller failed at `task slow`: timed out after {shown}"
        ));
        assert!(!ran.stdout_text().contains("never"));
        if !test.exists("slow.pid") {
            continue;
        }
        let pid: u32 = test.read("slow.pid").trim().parse().unwrap();
        assert!(!alive(pid), "the called run outlived tasker");
        return;
    }
    panic!("the called run never started, even within 10 s");
}

/// Started with its standard descriptors closed (as some daemons and CI
/// wrappers start programs), tasker gives its runs /dev/null there, never
/// a file of its own that happened to take the number.
#[test]
fn closed_standard_descriptors_reach_runs_as_dev_null() {
    let t = test(
        r#"
        [tasks.t]
        run = "cat; echo read-nothing > out.txt"
        "#,
    );
    let script = format!(
        "exec 0<&- 1>&-; exec '{}' -q t",
        env!("CARGO_BIN_EXE_tasker")
    );
    let out = std::process::Command::new("sh")
        .current_dir(t.path())
        .args(["-c", &script])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Bad file descriptor"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("out.txt")).unwrap(),
        "read-nothing\n"
    );
}

/// A step's program starts as a program expects: no signal blocked and
/// SIGPIPE at its default (tasker ignores it for itself), whether tasker
/// starts the program itself or as a stage of a pipe.
#[cfg(target_os = "linux")]
#[test]
fn programs_start_with_no_signal_blocked_and_sigpipe_at_its_default() {
    let ran = Test::with(
        r#"
        [tasks.one]
        run = "grep -E '^Sig(Blk|Ign)' /proc/self/status"

        [tasks.piped]
        run = [{ pipe = ["grep -E '^Sig(Blk|Ign)' /proc/self/status", "cat"] }]
        "#,
    )
    .args(&["-q", "one", "piped"])
    .code(0);
    let lines: Vec<&str> = ran.stdout_text().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    for line in lines {
        let (name, mask) = line.split_once(':').unwrap();
        let mask = u64::from_str_radix(mask.trim(), 16).unwrap();
        match name {
            "SigBlk" => assert_eq!(mask, 0, "a blocked signal: {line}"),
            "SigIgn" => assert_eq!(mask & (1 << (13 - 1)), 0, "SIGPIPE ignored: {line}"),
            other => panic!("unexpected line {other}"),
        }
    }
}
