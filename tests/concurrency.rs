//! SPEC 6, order and concurrency: the run graph (dedupe, cycles), job
//! slots, command-line order, `-p`, fail-fast and `-k`, `post`, `matrix`,
//! `interactive`, `task` steps and the summary at the end.
//!
//! Concurrency is proven with barriers (each side waits, bounded, for the
//! other's marker), and a limit on it with gates: every run stays in
//! progress until the test lets it go, so the test sees the limit reached
//! and a run's log shows any start inside another run. No assertion
//! depends on how long anything takes.
use crate::common;
use common::Test;

/// `sh barrier.sh ME OTHER`: say "here", then wait (at most 10 s) for the
/// other side; if it never comes, the runs did not overlap and this fails.
const BARRIER: &str = r#"
touch "$1.here"
i=0
while [ ! -e "$2.here" ]; do
  i=$((i+1))
  if [ $i -gt 1000 ]; then echo "$1 never met $2" >&2; exit 9; fi
  sleep 0.01
done
"#;

/// `sh held.sh NAME` (the runs `common::hold_each` drives): log
/// `start NAME`, say NAME.started, wait (at most
/// 20 s) until the test creates NAME.go, then log `end NAME`. Each line is
/// one short append, so the lines of runs in progress together interleave
/// whole, and the log's order is the order of the starts and ends.
const HELD: &str = r#"
echo "start $1" >> log
touch "$1.started"
i=0
while [ ! -e "$1.go" ]; do
  i=$((i+1))
  if [ $i -gt 2000 ]; then echo "$1 was never let go" >&2; exit 9; fi
  sleep 0.01
done
echo "end $1" >> log
"#;

fn test(toml: &str) -> Test {
    Test::with(toml)
        .file("barrier.sh", BARRIER)
        .file("held.sh", HELD)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines.sort();
    lines
}

// ---------------------------------------------------------------- job slots

#[test]
fn deps_of_one_task_run_concurrently() {
    test(
        r#"
        [tasks.top]
        deps = ["a", "b"]
        run = "true"
        [tasks.a]
        run = "sh barrier.sh a b"
        [tasks.b]
        run = "sh barrier.sh b a"
        "#,
    )
    .args(&["-q", "-j2", "top"])
    .expect("", "", 0);
}

#[test]
fn j1_is_fully_serial() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["a", "b", "c"]
        post = ["p", "q"]
        run = "sh held.sh top"
        [tasks.a]
        run = "sh held.sh a"
        [tasks.b]
        run = "sh held.sh b"
        [tasks.c]
        run = "sh held.sh c"
        [tasks.p]
        run = "sh held.sh p"
        [tasks.q]
        run = "sh held.sh q"
        [tasks.other]
        deps = ["d", "e"]
        run = "sh held.sh other"
        [tasks.d]
        run = "sh held.sh d"
        [tasks.e]
        run = "sh held.sh e"
        "#,
    )
    .args(&["-q", "-j1", "-p", "top", "other"]);
    let child = t.spawn();
    common::hold_each(
        &t,
        "",
        &["a", "b", "c", "d", "e", "other", "p", "q", "top"],
        1,
    );
    t.finish(child).expect("", "", 0);
}

#[test]
fn settings_jobs_1_is_serial_too() {
    let t = test(
        r#"
        [settings]
        jobs = 1
        [tasks.top]
        deps = ["a", "b"]
        run = "sh held.sh top"
        [tasks.a]
        run = "sh held.sh a"
        [tasks.b]
        run = "sh held.sh b"
        "#,
    )
    .args(&["-q", "top"]);
    let child = t.spawn();
    common::hold_each(&t, "", &["a", "b", "top"], 1);
    t.finish(child).expect("", "", 0);
}

#[test]
fn jobs_bounds_the_runs_in_progress() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["a", "b", "c", "d", "e", "f"]
        run = "true"
        [tasks.a]
        run = "sh held.sh a"
        [tasks.b]
        run = "sh held.sh b"
        [tasks.c]
        run = "sh held.sh c"
        [tasks.d]
        run = "sh held.sh d"
        [tasks.e]
        run = "sh held.sh e"
        [tasks.f]
        run = "sh held.sh f"
        "#,
    )
    .args(&["-q", "-j2", "top"]);
    let child = t.spawn();
    common::hold_each(&t, "", &["a", "b", "c", "d", "e", "f"], 2);
    t.finish(child).expect("", "", 0);
}

// ------------------------------------------------------------------- graph

#[test]
fn a_dep_shared_by_two_tasks_runs_once() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["a", "b", "c -n 2"]
        run = "true"
        [tasks.a]
        deps = ["c"]
        run = "true"
        [tasks.b]
        deps = ["c -n 1"]
        run = "true"
        [tasks.c]
        run = "echo c{{ n }} >> count"
        [[tasks.c.args]]
        name = "n"
        type = "int"
        default = 1
        "#,
    )
    .args(&["-q", "top", "c"]);
    t.expect("", "", 0);
    // `c` and `c -n 1` are one run (same values); `c -n 2` another.
    assert_eq!(sorted_lines(&t.read("count")), ["c1", "c2"]);
}

#[test]
fn a_task_that_is_dep_and_post_of_another_is_one_run() {
    test(
        r#"
        [tasks.top]
        deps = ["x"]
        post = ["x"]
        run = "echo top"
        [tasks.x]
        run = "echo x"
        "#,
    )
    .args(&["top"])
    .expect("x\ntop\n", "[x] $ echo x\n[top] $ echo top\n", 0);
}

#[test]
fn a_task_in_its_own_post_is_a_cycle() {
    let t = test(
        r#"
        [tasks.s]
        post = ["s"]
        run = "touch ran"
        "#,
    )
    .args(&["s"]);
    t.expect(
        "",
        r#"
        error: dependency cycle: s -> s
         --> ./tasks.toml:2:9
          |
        2 | post = ["s"]
          |         ^^^ a task in its own `post`
        "#,
        2,
    );
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_cycle_prints_its_path_and_nothing_runs() {
    let t = test(
        r#"
        [tasks.a]
        deps = ["b"]
        run = "touch ran"
        [tasks.b]
        deps = ["c"]
        run = "touch ran"
        [tasks.c]
        deps = ["a"]
        run = "touch ran"
        [tasks.first]
        run = "touch ran"
        "#,
    )
    .args(&["first", "a"]);
    t.expect(
        "",
        "error: dependency cycle: a -> b -> c -> a\nhelp: nothing was run; remove one of these calls\n",
        2,
    );
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_cycle_through_task_steps_is_found_before_anything_runs() {
    // SPEC 6: `task` steps whose call has no template are part of the
    // graph for cycle detection.
    let toml = r#"
        [tasks.a]
        run = ["touch ran", { task = "b" }]
        [tasks.b]
        deps = ["c"]
        run = "touch ran"
        [tasks.c]
        run = ["touch ran", { task = "a" }]
        [tasks.other]
        run = "echo other"
        "#;
    let expected = "error: dependency cycle: a -> b -> c -> a\nhelp: nothing was run; remove one of these calls\n";
    for args in [&["a"][..], &["c"][..], &["--check"][..]] {
        let t = test(toml).args(args);
        t.expect("", expected, 2);
        assert!(!t.path().join("ran").exists(), "{args:?}");
    }
    // A run that reaches no cycle is not stopped by one elsewhere.
    test(toml).args(&["-q", "other"]).expect("other\n", "", 0);
    // A templated call is resolved only when reached, so it is not in
    // the check; a literal call of a task that is merely named again is
    // no cycle.
    test(
        r#"
        [tasks.a]
        run = [{ task = "b" }, { task = "b" }]
        [tasks.b]
        run = "echo b"
        "#,
    )
    .args(&["--check", "-q"])
    .expect("", "", 0);
}

#[test]
fn posts_that_call_each_other_are_a_cycle() {
    let t = test(
        r#"
        [tasks.a]
        post = ["b"]
        run = "touch ran"
        [tasks.b]
        post = ["a"]
        run = "touch ran"
        "#,
    )
    .args(&["a"]);
    let ran = t.code(2);
    ran.stderr_has("dependency cycle: ");
    assert!(!t.path().join("ran").exists());
}

#[test]
fn a_dep_whose_post_is_the_dependent_is_one_run_each() {
    // `a` needs `b`, and `b` names `a` as its post: `a` runs once, after `b`.
    test(
        r#"
        [tasks.a]
        deps = ["b"]
        run = "echo a"
        [tasks.b]
        post = ["a"]
        run = "echo b"
        "#,
    )
    .args(&["-q", "a"])
    .expect("b\na\n", "", 0);
}

// ------------------------------------------------------- command-line order

/// `sh gate.sh NAME`: say NAME.started, then wait (at most 20 s) until the
/// test creates NAME.go: the run is in progress for exactly as long as the
/// test wants, and the test knows it is.
const GATE: &str = r#"
touch "$1.started"
i=0
while [ ! -e "$1.go" ]; do
  i=$((i+1))
  if [ $i -gt 2000 ]; then echo "$1 was never let go" >&2; exit 9; fi
  sleep 0.01
done
"#;

#[test]
fn command_line_tasks_run_in_order_after_the_previous_posts() {
    // `second` and its dep must not start before `first` and its posts
    // ended. The posts are held in progress until the test has seen both
    // of them start and `d` not started; `d` then checks the markers of
    // everything before it.
    let t = test(
        r#"
        [tasks.first]
        post = ["p", "q"]
        run = "touch first.done"
        [tasks.p]
        run = "sh gate.sh p; touch p.done"
        [tasks.q]
        run = "sh gate.sh q; touch q.done"
        [tasks.second]
        deps = ["d"]
        run = "test -e d.done && touch second.done"
        [tasks.d]
        run = "touch d.started; test -e first.done && test -e p.done && test -e q.done && touch d.done"
        "#,
    )
    .file("gate.sh", GATE)
    .args(&["-q", "-j4", "first", "second"]);
    let child = t.spawn();
    t.wait_for_file("p.started");
    t.wait_for_file("q.started");
    assert!(
        !t.exists("d.started"),
        "d started while the posts of first ran"
    );
    t.touch("p.go");
    t.touch("q.go");
    t.finish(child).expect("", "", 0);
    assert!(t.exists("second.done"));
}

#[test]
fn parallel_runs_command_line_tasks_concurrently() {
    test(
        r#"
        [tasks.a]
        run = "sh barrier.sh a b"
        [tasks.b]
        run = "sh barrier.sh b a"
        "#,
    )
    .args(&["-q", "-j2", "-p", "a", "b"])
    .expect("", "", 0);
}

#[test]
fn without_parallel_the_second_task_waits_even_when_the_first_fails_under_k() {
    let t = test(
        r#"
        [tasks.first]
        run = "sh gate.sh first; test ! -e second.started; exit 4"
        [tasks.second]
        run = "touch second.started"
        "#,
    )
    .file("gate.sh", GATE)
    .args(&["-q", "-k", "-j4", "first", "second"]);
    let child = t.spawn();
    t.wait_for_file("first.started");
    assert!(
        !t.exists("second.started"),
        "second started while first ran"
    );
    t.touch("first.go");
    t.finish(child).expect(
        "",
        "error: first failed at `sh gate.sh first; test ! -e second.started; exit 4`: exit status 4\n",
        4,
    );
    assert!(t.exists("second.started"));
}

// ------------------------------------------------------ fail-fast and -k

#[test]
fn fail_fast_starts_nothing_new_and_cancels_runs_in_progress() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["slow", "fail", "later"]
        run = "touch top.ran"
        [tasks.slow]
        run = "touch slow.here; sleep 60"
        [tasks.fail]
        run = "sh barrier.sh fail slow; exit 3"
        [tasks.later]
        run = "touch later.ran"
        "#,
    )
    .args(&["-q", "-j2", "top"]);
    t.expect(
        "",
        "error: slow cancelled\nerror: fail failed at `sh barrier.sh fail slow; exit 3`: exit status 3\n",
        3,
    );
    assert!(!t.path().join("later.ran").exists());
    assert!(!t.path().join("top.ran").exists());
}

#[test]
fn keep_going_runs_everything_that_does_not_depend_on_the_failure() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["fail", "x"]
        run = "touch top.ran"
        [tasks.fail]
        run = "exit 3"
        [tasks.x]
        run = "touch x.ran"
        [tasks.other]
        deps = ["fail2"]
        post = ["p"]
        run = "touch other.ran"
        [tasks.fail2]
        run = "exit 5"
        [tasks.p]
        run = "touch p.ran"
        [tasks.last]
        run = "touch last.ran"
        "#,
    )
    .args(&["-q", "-k", "-j1", "top", "other", "last"]);
    t.expect(
        "",
        "error: fail failed at `exit 3`: exit status 3\nerror: fail2 failed at `exit 5`: exit status 5\n",
        3,
    );
    for ran in ["x.ran", "last.ran"] {
        assert!(t.path().join(ran).exists(), "{ran}");
    }
    for not in ["top.ran", "other.ran", "p.ran"] {
        assert!(!t.path().join(not).exists(), "{not}");
    }
}

#[test]
fn verbose_names_the_runs_that_did_not_run_and_why() {
    test(
        r#"
        [tasks.top]
        deps = ["mid"]
        run = "true"
        [tasks.mid]
        deps = ["fail"]
        run = "true"
        [tasks.fail]
        run = "exit 3"
        "#,
    )
    .args(&["-k", "-v", "top"])
    .code(3)
    .stderr_has(
        "error: top not run: `fail` failed\n\
         error: mid not run: `fail` failed\n\
         error: fail failed at `exit 3`: exit status 3\n",
    );
}

#[test]
fn a_later_call_of_a_failed_run_fails_without_running_it_again() {
    let t = test(
        r#"
        [tasks.top]
        run = [{ task = "fail" }, "true"]
        [tasks.fail]
        run = "echo once >> count; exit 3"
        "#,
    )
    .args(&["-q", "-k", "-j1", "fail", "top"]);
    t.expect(
        "",
        r#"
        error: fail failed at `echo once >> count; exit 3`: exit status 3
        error: top failed at `task fail`: task `fail` failed: exit status 3
        "#,
        3,
    );
    assert_eq!(t.read("count"), "once\n");
}

// ------------------------------------------------------------ post, ignore

#[test]
fn posts_run_after_success_only_and_concurrently_with_each_other() {
    let t = test(
        r#"
        [tasks.ok]
        post = ["p", "q"]
        run = "touch ok.done"
        [tasks.p]
        run = "test -e ok.done && sh barrier.sh p q"
        [tasks.q]
        run = "test -e ok.done && sh barrier.sh q p"
        [tasks.bad]
        post = ["never"]
        run = "exit 2"
        [tasks.never]
        run = "touch never.ran"
        "#,
    )
    .args(&["-q", "-j2", "ok"]);
    t.expect("", "", 0);
    let t = test(
        r#"
        [tasks.bad]
        post = ["never"]
        run = "exit 2"
        [tasks.never]
        run = "touch never.ran"
        "#,
    )
    .args(&["-q", "bad"]);
    t.expect("", "error: bad failed at `exit 2`: exit status 2\n", 2);
    assert!(!t.path().join("never.ran").exists());
}

#[test]
fn ignore_failure_lets_dependents_run() {
    test(
        r#"
        [tasks.top]
        deps = ["flaky"]
        post = ["after"]
        run = "echo top"
        [tasks.flaky]
        ignore_failure = true
        run = "exit 3"
        [tasks.after]
        run = "echo after"
        "#,
    )
    .args(&["-j1", "top"])
    .expect(
        "top\nafter\n",
        r#"
        [flaky] $ exit 3
        [flaky] failed (exit status 3), ignored
        [top] $ echo top
        [after] $ echo after
        "#,
        0,
    );
}

#[test]
fn an_ignored_failure_is_still_visible_to_task_steps() {
    test(
        r#"
        [tasks.t]
        run = [{ task = "g" }, "echo code={{ tasks.g.exit_code }}"]
        [tasks.g]
        deps = ["pre"]
        ignore_failure = true
        run = "exit 3"
        [tasks.pre]
        run = "echo pre"
        "#,
    )
    .args(&["-j1", "t"])
    .expect(
        "pre\ncode=3\n",
        r#"
        [t] $ task g
        [pre] $ echo pre
        [g] $ exit 3
        [g] failed (exit status 3), ignored
        [t] $ echo code=3
        "#,
        0,
    );
}

// ------------------------------------------------------------------ matrix

#[test]
fn matrix_makes_one_named_run_per_combination() {
    test(
        r#"
        [tasks.build]
        matrix = { os = ["linux", "mac"], mode = ["a", "b"] }
        run = "echo {{ os }}-{{ mode }}"
        "#,
    )
    .args(&["-j1", "build"])
    .expect(
        "linux-a\nlinux-b\nmac-a\nmac-b\n",
        r#"
        [build[os=linux,mode=a]] $ echo linux-a
        [build[os=linux,mode=b]] $ echo linux-b
        [build[os=mac,mode=a]] $ echo mac-a
        [build[os=mac,mode=b]] $ echo mac-b
        "#,
        0,
    );
}

#[test]
fn matrix_run_names_spell_values_as_commands_do() {
    // One value-to-text function: the run's name and its command agree.
    test(
        r#"
        [tasks.t]
        matrix = { debug = [true, false], n = [1.5] }
        run = "echo {{ debug }} {{ n }}"
        "#,
    )
    .args(&["-j1", "t"])
    .expect(
        "true 1.5\nfalse 1.5\n",
        r#"
        [t[debug=true,n=1.5]] $ echo true 1.5
        [t[debug=false,n=1.5]] $ echo false 1.5
        "#,
        0,
    );
}

#[test]
fn matrix_runs_overlap_and_a_failed_one_is_named_in_the_summary() {
    test(
        r#"
        [tasks.build]
        matrix = { os = ["linux", "mac"] }
        run = "sh barrier.sh {{ os }} {% if os == 'linux' %}mac{% else %}linux{% endif %}; test {{ os }} = linux"
        "#,
    )
    .args(&["-q", "-j2", "-k", "build"])
    .expect(
        "",
        "error: build[os=mac] failed at `sh barrier.sh mac linux; test mac = linux`: exit status 1\n",
        1,
    );
}

#[test]
fn a_template_matrix_is_fed_by_a_var() {
    test(
        r#"
        [vars]
        targets = { sh = "printf 'x86\n\narm\n'" }
        [tasks.build]
        matrix = { target = "{{ targets }}" }
        run = "echo {{ target }}"
        [tasks.all]
        deps = ["build"]
        run = "echo all"
        "#,
    )
    .args(&["-j1", "all"])
    .expect(
        "x86\narm\nall\n",
        "[build[target=x86]] $ echo x86\n[build[target=arm]] $ echo arm\n[all] $ echo all\n",
        0,
    );
}

// ------------------------------------------------------------- interactive

#[test]
fn an_interactive_run_overlaps_nothing() {
    // Whichever starts first is held in progress until the test has seen
    // what else started: `i` alone, or any of the others without `i` (they
    // may overlap each other). Each run also checks, when it starts and
    // when it is let go, that no run of the other kind is in progress.
    let t = test(
        r#"
        [tasks.top]
        deps = ["i", "a", "b", "c"]
        run = "true"
        [tasks.i]
        interactive = true
        run = "mkdir excl; test -z \"$(ls | grep '^on\\.')\"; sh gate.sh i; test -z \"$(ls | grep '^on\\.')\"; rmdir excl"
        [tasks.a]
        run = "touch on.a; test ! -d excl; sh gate.sh a; test ! -d excl; rm on.a"
        [tasks.b]
        run = "touch on.b; test ! -d excl; sh gate.sh b; test ! -d excl; rm on.b"
        [tasks.c]
        run = "touch on.c; test ! -d excl; sh gate.sh c; test ! -d excl; rm on.c"
        "#,
    )
    .file("gate.sh", GATE)
    .args(&["-q", "-j4", "top"]);
    let child = t.spawn();
    let started = |t: &Test| -> Vec<&str> {
        ["i", "a", "b", "c"]
            .into_iter()
            .filter(|n| t.exists(&format!("{n}.started")) && !t.exists(&format!("{n}.go")))
            .collect()
    };
    let mut released = Vec::new();
    while released.len() < 4 {
        // Wait for the next run to be in progress, then look at what else is.
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let now = loop {
            let now = started(&t);
            if !now.is_empty() {
                break now;
            }
            assert!(
                std::time::Instant::now() < end,
                "nothing started; released {released:?}"
            );
            std::thread::yield_now();
        };
        if now.contains(&"i") {
            assert_eq!(now, ["i"], "an interactive run overlapped others");
        }
        for name in now {
            t.touch(&format!("{name}.go"));
            released.push(name);
        }
    }
    t.finish(child).expect("", "", 0);
}

#[test]
fn an_interactive_task_called_from_a_task_step_runs() {
    test(
        r#"
        [tasks.top]
        run = [{ task = "i" }, "echo top"]
        [tasks.i]
        interactive = true
        run = "echo i"
        "#,
    )
    .args(&["-q", "-j4", "top"])
    .expect("i\ntop\n", "", 0);
}

// -------------------------------------------------------------- task steps

#[test]
fn a_task_step_runs_the_task_with_its_deps_at_that_point() {
    test(
        r#"
        [tasks.top]
        run = ["echo one", { task = "gen --word hi" }, "echo got {{ tasks.gen.stdout }}"]
        [tasks.gen]
        deps = ["pre"]
        capture = true
        run = "echo {{ word }}"
        [[tasks.gen.args]]
        name = "word"
        [tasks.pre]
        run = "echo pre"
        "#,
    )
    .args(&["-q", "-j1", "top"])
    .expect("one\npre\nhi\ngot hi\n", "", 0);
}

#[test]
fn a_task_step_that_would_wait_for_its_caller_is_an_error() {
    // Templated calls are resolved only when reached (a literal one is in
    // the cycle check before anything runs).
    let ran = test(
        r#"
        [tasks.a]
        run = [{ task = "{{ 'b' }}" }]
        [tasks.b]
        deps = ["a"]
        run = "touch b.ran"
        "#,
    )
    .args(&["-q", "a"])
    .code(2);
    ran.stderr_has("error: a failed at `task b`: ");
}

#[test]
fn task_steps_calling_each_other_are_an_error_not_a_deadlock() {
    test(
        r#"
        [tasks.a]
        run = [{ task = "{{ 'b' }}" }]
        [tasks.b]
        run = [{ task = "{{ 'a' }}" }]
        "#,
    )
    .args(&["-q", "a"])
    .expect(
        "",
        r#"
        error: b failed at `task a`: cycle: `b` calls `a`, which waits for it
          called as a -> b
        "#,
        2,
    );
}

#[test]
fn a_run_waiting_in_a_task_step_is_cancelled_by_a_failure() {
    let t = test(
        r#"
        [tasks.top]
        deps = ["caller", "fail"]
        run = "true"
        [tasks.caller]
        run = [{ task = "slow" }, "touch caller.resumed"]
        finally = "touch caller.cleaned"
        [tasks.slow]
        run = "touch slow.here; sleep 60"
        [tasks.fail]
        run = "sh barrier.sh fail slow; exit 6"
        "#,
    )
    .args(&["-q", "-j4", "top"]);
    t.expect(
        "",
        r#"
        error: caller cancelled
        error: fail failed at `sh barrier.sh fail slow; exit 6`: exit status 6
        error: slow cancelled
        "#,
        6,
    );
    assert!(!t.path().join("caller.resumed").exists());
    assert!(t.path().join("caller.cleaned").exists());
}

// ---------------------------------------------------------------- timings

/// A duration as tasker prints it, at any size: `250ms`, `1.5s`, `2m05s`.
fn is_duration(word: &str) -> bool {
    let number = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit() || c == '.');
    if let Some(ms) = word.strip_suffix("ms") {
        return ms.chars().all(|c| c.is_ascii_digit()) && !ms.is_empty();
    }
    if let Some((m, s)) = word.strip_suffix('s').and_then(|w| w.split_once('m')) {
        return number(m) && number(s);
    }
    word.strip_suffix('s').is_some_and(number)
}

#[test]
fn durations_of_any_size_have_the_timings_shape() {
    for word in ["0ms", "999ms", "1.0s", "59.9s", "1m00s", "12m34s"] {
        assert!(is_duration(word), "{word}");
    }
    for word in ["ok", "failed", "ms", "1.0", "result", "time"] {
        assert!(!is_duration(word), "{word}");
    }
}

#[test]
fn timings_prints_a_table_of_every_run() {
    let ran = test(
        r#"
        [tasks.top]
        deps = ["dep"]
        run = "true"
        [tasks.dep]
        run = "true"
        [tasks.bad]
        run = "exit 1"
        "#,
    )
    .args(&["-q", "-k", "-j1", "--timings", "top", "bad"])
    .code(1);
    let lines: Vec<&str> = ran.stderr_text().lines().collect();
    assert_eq!(lines.len(), 5, "{}", ran.stderr_text());
    assert_eq!(lines[0], "error: bad failed at `exit 1`: exit status 1");
    let shape = |line: &str| -> Vec<String> {
        line.split_whitespace()
            .map(|w| {
                if is_duration(w) {
                    "TIME".into()
                } else {
                    w.into()
                }
            })
            .collect()
    };
    assert_eq!(shape(lines[1]), ["run", "time", "result"]);
    let mut rows: Vec<Vec<String>> = lines[2..].iter().map(|l| shape(l)).collect();
    rows.sort();
    assert_eq!(
        rows,
        [
            ["bad", "TIME", "failed"],
            ["dep", "TIME", "ok"],
            ["top", "TIME", "ok"]
        ]
    );
}

#[test]
fn a_command_line_task_called_by_an_earlier_one_runs_in_that_call() {
    let t = test(
        r#"
        [tasks.first]
        run = [{ task = "second" }, "echo first"]
        [tasks.second]
        run = "echo second; echo x >> count"
        "#,
    )
    .args(&["-q", "first", "second"]);
    t.expect("second\nfirst\n", "", 0);
    assert_eq!(t.read("count"), "x\n");
}
