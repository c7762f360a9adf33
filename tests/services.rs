//! SPEC 6, services: `background = true`, `ready`, `ready_timeout`; the
//! runs that depend on a service start once it is ready, share one run of
//! it, and it is stopped (its whole process tree) when nothing still to
//! come needs it, or however the invocation ends.
//!
//! Order is proven with marker files, processes with `kill -0` on recorded
//! pids; every wait is bounded.
use crate::common;
use common::{alive, Test};
use std::process::Command;
use std::time::{Duration, Instant};

/// Wait (at most 10 s) until `pid` is gone.
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

/// The pids written, one a line, in the test's files `names`.
#[track_caller]
fn pids_in(t: &Test, names: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    for name in names {
        for line in t.read(name).lines() {
            pids.push(
                line.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name} holds no pid: {line:?}")),
            );
        }
    }
    pids
}

#[test]
fn dependents_start_once_the_service_printed_its_ready_line() {
    // The marker is made just before the ready line, after a delay: a
    // dependent started any earlier would not find it.
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "echo booting; sleep 0.3; touch db.marker; echo ready; exec sleep 60"
        [tasks.test]
        deps = ["db"]
        run = "test -e db.marker && echo found the marker"
        "#,
    )
    .args(&["test"]);
    t.expect(
        "
        db   | booting
        db   | ready
        test | found the marker
        ",
        "
        [db] $ echo booting; sleep 0.3; touch db.marker; echo ready; exec sleep 60
        [test] $ test -e db.marker && echo found the marker
        ",
        0,
    );
}

#[test]
fn without_ready_dependents_start_once_the_service_started() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        run = ["touch db.setup", "echo $$ > db.pid; exec sleep 60"]
        [tasks.test]
        deps = ["db"]
        run = "test -e db.setup && echo ok; while [ ! -s db.pid ]; do sleep 0.01; done"
        "#,
    )
    .args(&["-q", "test"]);
    t.expect("test | ok\n", "", 0);
    for pid in pids_in(&t, &["db.pid"]) {
        assert_ends(pid);
    }
}

#[test]
fn a_service_that_is_never_ready_fails_with_its_name_and_last_lines() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        ready_timeout = "200ms"
        run = "echo $$ > db.pid; echo booting; echo still booting; exec sleep 60"
        [tasks.test]
        deps = ["db"]
        run = "touch test.ran"
        "#,
    )
    .args(&["-q", "test"]);
    t.expect(
        "
        db   | booting
        db   | still booting
        ",
        "
        error: db failed at `echo $$ > db.pid; echo booting; echo still booting; exec sleep 60`: the service was not ready after 200ms: no line matched `ready` (`^ready$`)
          its last lines of output:
          | booting
          | still booting
        ",
        124,
    );
    assert!(!t.exists("test.ran"));
    assert_ends(pids_in(&t, &["db.pid"])[0]);
}

#[test]
fn a_service_that_exits_before_it_is_ready_fails_and_nothing_that_needs_it_runs() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "echo cannot bind; exit 3"
        [tasks.test]
        deps = ["db"]
        run = "touch test.ran"
        "#,
    )
    .args(&["-q", "test"]);
    t.expect(
        "db   | cannot bind\n",
        "
        error: db failed at `echo cannot bind; exit 3`: the service ended before it was ready: exit status 3
          its last lines of output:
          | cannot bind
        ",
        3,
    );
    assert!(!t.exists("test.ran"));
}

#[test]
fn a_service_that_exits_with_status_0_before_it_is_ready_fails_too() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "true"
        [tasks.test]
        deps = ["db"]
        run = "touch test.ran"
        "#,
    )
    .args(&["-q", "test"]);
    t.expect(
        "",
        "
        error: db failed: the service exited before it was ready (exit status 0)
          it printed nothing
        ",
        1,
    );
    assert!(!t.exists("test.ran"));
}

/// A service that dies while a dependent runs: the dependent is stopped as
/// in fail-fast, with `-k` too (where a run that does not need the service
/// still finishes).
#[test]
fn a_service_that_dies_while_its_dependents_run_fails_and_stops_them() {
    const FILE: &str = r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "echo ready; while [ ! -e die ]; do sleep 0.01; done; echo dying; exit 5"
        [tasks.test]
        deps = ["db"]
        run = "echo $$ > test.pid; touch die; exec sleep 60"
        finally = "touch test.cleaned"
        [tasks.other]
        run = "while [ ! -e test.cleaned ]; do sleep 0.01; done; touch other.done"
        [tasks.all]
        deps = ["test", "other"]
        run = "touch all.ran"
        "#;
    for keep_going in [false, true] {
        let mut args = vec!["-q", "-j3", "test"];
        if keep_going {
            args = vec!["-q", "-j3", "-k", "all"];
        }
        let t = Test::with(FILE).args(&args);
        let ran = t.code(5);
        ran.stdout_has(" | ready\n")
            .stdout_has(" | dying\n")
            .stderr_has("error: db failed at `echo ready; while")
            .stderr_has(
                "the service ended while runs that depend on it were still to come: exit status 5",
            )
            .stderr_has("  | ready\n  | dying\n")
            .stderr_has("error: test cancelled\n");
        assert!(t.exists("test.cleaned"));
        assert_ends(pids_in(&t, &["test.pid"])[0]);
        assert!(!t.exists("all.ran"));
        // Under -k, a run that needs no service goes on to its end.
        assert_eq!(t.exists("other.done"), keep_going, "-k: {keep_going}");
    }
}

#[test]
fn dependents_share_one_run_of_a_service_per_set_of_arguments_even_with_one_job() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "echo {{ port }} >> starts; echo ready; exec sleep 60"
        [[tasks.db.args]]
        name = "port"
        [tasks.a]
        deps = ["db --port 1"]
        run = "touch a.ran"
        [tasks.b]
        deps = ["db --port 1"]
        run = "touch b.ran"
        [tasks.c]
        deps = ["db --port 2"]
        run = "touch c.ran"
        [tasks.all]
        deps = ["a", "b", "c"]
        run = "echo all done"
        "#,
    )
    .args(&["-q", "-j1", "all"]);
    // A ready service holds no job slot: -j1 runs it beside its dependents.
    t.code(0).stdout_has("all | all done\n");
    let mut starts: Vec<String> = t.read("starts").lines().map(String::from).collect();
    starts.sort();
    assert_eq!(starts, ["1", "2"]);
    assert!(t.exists("a.ran") && t.exists("b.ran") && t.exists("c.ran"));
}

/// A service stops as soon as nothing still to come needs it, not at the
/// end of the invocation: a later task sees it gone.
#[test]
fn a_service_stops_once_no_run_to_come_needs_it() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        run = "echo $$ > db.pid; exec sleep 60"
        finally = "touch db.stopped"
        [tasks.test]
        deps = ["db"]
        run = "true"
        [tasks.later]
        run = "for i in $(seq 1000); do test -e db.stopped && break; sleep 0.01; done; test -e db.stopped && echo the service had stopped"
        "#,
    )
    .args(&["-q", "--timings", "test", "later"]);
    let ran = t.code(0);
    ran.stdout_has("later | the service had stopped\n")
        .stderr_has("stopped\n");
    assert!(
        ran.stderr_text()
            .lines()
            .any(|l| l.starts_with("db ") && l.ends_with("  stopped")),
        "{}",
        ran.stderr_text()
    );
}

/// A `task` step that calls a service goes on once it is ready; the
/// service then runs until its caller ends.
#[test]
fn a_task_step_that_calls_a_service_goes_on_once_it_is_ready() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "echo $$ > db.pid; echo ready; exec sleep 60"
        finally = "touch db.stopped"
        [tasks.test]
        run = [{ task = "db" }, "test -s db.pid && echo db is up", "test ! -e db.stopped && echo still up"]
        "#,
    )
    .args(&["-q", "test"]);
    t.expect(
        "
        db   | ready
        test | db is up
        test | still up
        ",
        "",
        0,
    );
    assert!(t.exists("db.stopped"));
    assert_ends(pids_in(&t, &["db.pid"])[0]);
}

/// `retries` starts a service again that was not ready in time, with its
/// whole `ready_timeout` again.
#[test]
fn a_retried_service_gets_its_ready_timeout_again() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        ready_timeout = "300ms"
        retries = 1
        run = "if [ -e tried ]; then echo ready; else touch tried; fi; exec sleep 60"
        [tasks.test]
        deps = ["db"]
        run = "echo ok"
        "#,
    )
    .args(&["-q", "test"]);
    let ran = t.code(0);
    ran.stdout_has("test | ok\n");
}

#[test]
fn verbose_says_how_long_a_service_served() {
    let ran = Test::with(
        r#"
        [tasks.db]
        background = true
        run = "exec sleep 60"
        [tasks.test]
        deps = ["db"]
        run = "true"
        "#,
    )
    .args(&["-v", "test"])
    .code(0);
    assert!(
        ran.stderr_text()
            .lines()
            .any(|l| l.starts_with("[db] served for ") && l.ends_with(", then stopped")),
        "{}",
        ran.stderr_text()
    );
}

/// The command-line order makes a dependent too: `tasker db e2e` runs e2e
/// once db is ready, then stops db.
#[test]
fn a_later_task_on_the_command_line_starts_once_the_service_is_ready() {
    Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^ready$'
        run = "touch db.marker; echo ready; exec sleep 60"
        [tasks.e2e]
        run = "test -e db.marker && echo e2e ran"
        "#,
    )
    .args(&["-q", "db", "e2e"])
    .expect("db  | ready\ne2e | e2e ran\n", "", 0);
}

/// Under -k, a service whose dependents can no longer run is never
/// started (-j1 makes the failure come first).
#[test]
fn a_service_nothing_can_use_any_more_is_not_started() {
    let t = Test::with(
        r#"
        [tasks.fails]
        run = "exit 4"
        [tasks.db]
        background = true
        run = "touch db.ran; exec sleep 60"
        [tasks.test]
        deps = ["fails", "db"]
        run = "touch test.ran"
        "#,
    )
    .args(&["-k", "-j1", "-v", "test"]);
    let ran = t.code(4);
    ran.stderr_has("error: db not run: no run needs the service any more\n");
    assert!(!t.exists("db.ran") && !t.exists("test.ran"));
}

/// A service named alone (nothing depends on it) runs like any task.
#[test]
fn a_service_nothing_depends_on_runs_to_its_end_like_any_task() {
    Test::with(
        r#"
        [tasks.db]
        background = true
        ready = '^never$'
        run = "echo done by itself"
        "#,
    )
    .args(&["-q", "db"])
    .expect("done by itself\n", "", 0);
}

#[test]
fn dry_run_shows_a_service_without_starting_it() {
    let t = Test::with(
        r#"
        [tasks.db]
        background = true
        ready = 'listening'
        run = "touch db.ran; sleep 60"
        [tasks.test]
        deps = ["db"]
        run = "touch test.ran"
        "#,
    )
    .args(&["-n", "test"]);
    t.expect(
        "",
        "
        [db] a service: not started under -n; its dependents would start once a line matches `listening`
        [db] $ touch db.ran; sleep 60
        [test] $ touch test.ran
        ",
        0,
    );
    assert!(!t.exists("db.ran") && !t.exists("test.ran"));
}

#[test]
fn the_json_listing_shows_background() {
    let ran = Test::with(
        r#"
        [tasks.db]
        background = true
        run = "sleep 60"
        "#,
    )
    .args(&["-l", "--json"])
    .code(0);
    let json: serde_json::Value = serde_json::from_str(ran.stdout_text()).unwrap();
    assert_eq!(
        json["tasks"][0]["background"],
        serde_json::Value::Bool(true)
    );
}

// ------------------------------------------------ the whole tree, every end

/// A service with children of its own (recorded in `svc.pids`), and a
/// dependent that records its pid, says it started, then does `dep`;
/// `keys` are more keys of the dependent.
fn tree(dep: &str, keys: &str) -> Test {
    Test::with(&format!(
        r#"
        [tasks.svc]
        background = true
        ready = '^ready$'
        run = """
        sleep 60 & echo $! >> svc.pids
        sh -c 'sleep 60 & echo $! >> svc.pids; wait' &
        echo $! >> svc.pids
        echo $$ >> svc.pids
        echo ready
        wait
        """
        [tasks.dep]
        deps = ["svc"]
        run = "echo $$ > dep.pid; touch dep.started; {dep}"
        {keys}
        "#
    ))
}

/// Wait until the service's four pids are written and the dependent runs.
fn wait_for_tree(t: &Test) {
    t.wait_for_file("dep.started");
    let end = Instant::now() + Duration::from_secs(20);
    while t.read("svc.pids").lines().count() < 4 {
        assert!(Instant::now() < end, "svc.pids is incomplete");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_services_whole_tree_is_gone_after_success_failure_and_timeout() {
    for (dep, keys, keep_going, code) in [
        ("true", "", false, 0),
        ("exit 7", "", false, 7),
        ("exit 7", "", true, 7),
        ("exec sleep 60", "timeout = '300ms'", false, 124),
    ] {
        let mut args = vec!["-q", "dep"];
        if keep_going {
            args.insert(0, "-k");
        }
        let t = tree(dep, keys).args(&args);
        let ran = t.run_with(&[]);
        assert_eq!(ran.exit_code(), code, "{dep}: {}", ran.stderr_text());
        ran.stdout("svc | ready\n");
        for pid in pids_in(&t, &["svc.pids", "dep.pid"]) {
            assert_ends(pid);
        }
        // The stop is no failure: only the dependent's is reported.
        assert!(
            !ran.stderr_text().contains("svc"),
            "{dep}: {}",
            ran.stderr_text()
        );
    }
}

#[test]
fn the_services_whole_tree_is_gone_after_every_stop_signal() {
    for (sig, code) in [("-TERM", 143), ("-INT", 130), ("-HUP", 129), ("-QUIT", 131)] {
        let t = tree("exec sleep 60", "").args(&["-q", "dep"]);
        let child = t.spawn();
        wait_for_tree(&t);
        let ok = Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let ran = t.finish(child);
        assert_eq!(ran.exit_code(), code, "{sig}: {}", ran.stderr_text());
        ran.stdout("svc | ready\n").stderr("error: dep cancelled\n");
        for pid in pids_in(&t, &["svc.pids", "dep.pid"]) {
            assert_ends(pid);
        }
    }
}

/// Ctrl-C typed on a real terminal reaches tasker's whole foreground
/// group; the service, in a group of its own, is stopped by tasker.
#[test]
fn ctrl_c_on_a_terminal_leaves_nothing_of_the_service() {
    let t = tree("echo waiting; exec sleep 60", "");
    let (screen, code) = common::on_a_terminal(&t, &["-q", "dep"], &[("waiting", b"\x03")]);
    assert_eq!(code, 130, "{screen}");
    for pid in pids_in(&t, &["svc.pids", "dep.pid"]) {
        assert_ends(pid);
    }
}

// ------------------------------------------------------------ the example

/// The web server of examples/concurrency (README and docs/reference.md
/// show it): started, fetched from, stopped.
#[test]
fn the_http_server_example_serves_its_dependent_and_is_stopped() {
    let file =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/concurrency/tasks.toml");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let ran = Test::new()
        .args(&[
            "-q",
            "-f",
            file.to_str().unwrap(),
            "--set",
            &format!("port={port}"),
            "fetch-page",
        ])
        .code(0);
    ran.stdout_has("fetch-page | HTTP 200 ")
        .stderr_has(" \"GET / HTTP/1.1\" 200 -\n");
    // Nothing listens on the port any more.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err());
}
