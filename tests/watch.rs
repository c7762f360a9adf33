//! SPEC 7: `-w` runs again after a change, stopping the runs in progress
//! with their whole process trees; Ctrl-C ends it with nothing left.

use crate::common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::{alive, Test};

/// tasker in watch mode, killed if a test fails before it ends.
struct Watching {
    child: Option<Child>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Watching {
    fn start(t: &Test, args: &[&str]) -> Watching {
        let mut cmd = t.command();
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(t.path().join("stdout.log")).unwrap())
            .stderr(std::fs::File::create(t.path().join("stderr.log")).unwrap());
        Watching {
            child: Some(cmd.spawn().expect("spawn tasker")),
        }
    }

    /// Ctrl-C, then the exit status (bounded).
    fn interrupt(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("tasker -w did not end after Ctrl-C");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Wait until `what` holds, at most 20 s.
#[track_caller]
fn wait_until(why: &str, mut what: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !what() {
        assert!(Instant::now() < deadline, "timed out waiting until {why}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A file's text; empty while the run has not written it yet.
fn text(t: &Test, name: &str) -> String {
    std::fs::read_to_string(t.path().join(name)).unwrap_or_default()
}

fn lines(t: &Test, name: &str) -> Vec<u32> {
    text(t, name)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

#[test]
fn a_change_restarts_a_long_running_run_and_ctrl_c_leaves_nothing() {
    let t = Test::with(
        r#"
        [tasks.serve]
        sources = ["src/*.txt"]
        run = "sleep 1000 & echo $! >> children; echo $$ >> pids; wait"
        "#,
    )
    .file("src/a.txt", "one\n");
    let mut watching = Watching::start(&t, &["-w", "serve"]);
    for round in 1..=3 {
        wait_until(&format!("run {round} started"), || {
            lines(&t, "pids").len() == round && lines(&t, "children").len() == round
        });
        if round > 1 {
            // The previous run's shell and its child (same group) are gone.
            let (pids, children) = (lines(&t, "pids"), lines(&t, "children"));
            wait_until("the old tree is gone", || {
                !alive(pids[round - 2]) && !alive(children[round - 2])
            });
        }
        if round < 3 {
            std::fs::write(t.path().join("src/a.txt"), format!("change {round}\n")).unwrap();
        }
    }
    assert_eq!(watching.interrupt(), 130);
    for pid in lines(&t, "pids").into_iter().chain(lines(&t, "children")) {
        wait_until("nothing is left", || !alive(pid));
    }
    let stderr = text(&t, "stderr.log");
    assert_eq!(
        stderr
            .matches("[watch] `src/a.txt` changed; running again\n")
            .count(),
        2,
        "{stderr}"
    );
    // Stopped for a change is not a failure to report.
    assert_eq!(stderr.matches("cancelled").count(), 1, "{stderr}");
}

#[test]
fn a_finished_run_runs_again_after_a_change_and_waits_between() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["src/**/*.txt"]
        run = "cat src/a.txt >> log"
        "#,
    )
    .file("src/a.txt", "one\n");
    let mut watching = Watching::start(&t, &["-w", "build"]);
    let waiting = "[watch] done; waiting for changes (Ctrl-C ends)\n";
    wait_until("the first run is done", || {
        text(&t, "stderr.log").matches(waiting).count() == 1
    });
    assert_eq!(text(&t, "log"), "one\n");
    std::fs::write(t.path().join("src/a.txt"), "two\n").unwrap();
    wait_until("the second run is done", || {
        text(&t, "stderr.log").matches(waiting).count() == 2
    });
    assert_eq!(text(&t, "log"), "one\ntwo\n");
    assert_eq!(watching.interrupt(), 130);
    assert_eq!(
        text(&t, "stderr.log"),
        format!(
            "[build] $ cat src/a.txt >> log\n{waiting}\
             [watch] `src/a.txt` changed; running again\n\
             [build] $ cat src/a.txt >> log\n{waiting}"
        )
    );
}

#[test]
fn without_sources_the_root_is_watched() {
    let t = Test::with(
        r#"
        [tasks.build]
        run = "echo ran >> log"
        "#,
    )
    .file(".gitignore", "log\n*.log\n");
    let mut watching = Watching::start(&t, &["-w", "build"]);
    // The root is watched once the first run showed no task declares
    // sources.
    wait_until("the first run is done", || {
        text(&t, "stderr.log").contains("waiting for changes")
    });
    assert_eq!(text(&t, "log"), "ran\n");
    std::fs::write(t.path().join("notes.md"), "x").unwrap();
    wait_until("the second run", || text(&t, "log") == "ran\nran\n");
    assert_eq!(watching.interrupt(), 130);
}

#[test]
fn watch_and_dry_run_do_not_mix() {
    Test::with("[tasks.t]\nrun = \"true\"\n")
        .args(&["-w", "-n", "t"])
        .expect(
            "",
            "error: -w/--watch runs tasks; it cannot be combined with -n/--dry-run\n",
            2,
        );
}

#[test]
fn a_run_that_ignores_sigterm_is_killed_after_the_grace_and_restarted() {
    let t = Test::with(
        r#"
        [tasks.stubborn]
        sources = ["src/*.txt"]
        run = "trap '' TERM; sleep 1000 & echo $! >> children; echo $$ >> pids; wait"
        "#,
    )
    .file("src/a.txt", "one\n");
    let mut watching = Watching::start(&t, &["-w", "stubborn"]);
    wait_until("the first run started", || lines(&t, "children").len() == 1);
    std::fs::write(t.path().join("src/a.txt"), "two\n").unwrap();
    wait_until("the second run started", || {
        lines(&t, "children").len() == 2
    });
    let (pids, children) = (lines(&t, "pids"), lines(&t, "children"));
    assert!(
        !alive(pids[0]) && !alive(children[0]),
        "the old tree survived"
    );
    assert_eq!(watching.interrupt(), 130);
    for pid in [pids[1], children[1]] {
        wait_until("nothing is left", || !alive(pid));
    }
}

#[test]
fn sources_outside_the_root_are_watched_too() {
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("b.txt"), "b\n").unwrap();
    let t = Test::new()
        .file(
            "proj/tasks.toml",
            &format!(
                r#"
                [tasks.build]
                sources = ["../shared/*.txt", "{}/*.txt"]
                run = "echo ran >> log"
                "#,
                elsewhere.path().display()
            ),
        )
        .file("shared/a.txt", "a\n")
        .cwd("proj");
    let mut watching = Watching::start(&t, &["-w", "build"]);
    let waiting = "waiting for changes";
    wait_until("the first run is done", || {
        text(&t, "stderr.log").matches(waiting).count() == 1
    });
    std::fs::write(t.path().join("shared/a.txt"), "a2\n").unwrap();
    wait_until("a run after the change through `..`", || {
        text(&t, "stderr.log").matches(waiting).count() == 2
    });
    std::fs::write(elsewhere.path().join("b.txt"), "b2\n").unwrap();
    wait_until("a run after the change of an absolute source", || {
        text(&t, "stderr.log").matches(waiting).count() == 3
    });
    assert_eq!(text(&t, "proj/log"), "ran\nran\nran\n");
    assert_eq!(watching.interrupt(), 130);
    let stderr = text(&t, "stderr.log");
    assert!(
        stderr.contains("[watch] `../shared/a.txt` changed; running again"),
        "{stderr}"
    );
}
