//! SPEC 7: up-to-date checks of tasks with `sources`, their records under
//! `.tasker/`, and `-B`.

use crate::common;

use std::time::{Duration, Instant, SystemTime};

use common::Test;

const BUILD: &str = r#"
    [tasks.build]
    sources = ["src/**/*.txt", "!src/skip/**"]
    outputs = ["out.txt"]
    run = "cat src/*.txt > out.txt"
"#;

fn build() -> Test {
    Test::with(BUILD).file("src/a.txt", "aaaa\n")
}

const RAN: &str = "[build] $ cat src/*.txt > out.txt\n";
const SKIPPED: &str = "[build] up to date\n";

/// Run `build` and expect it ran (or was skipped), with nothing else said.
#[track_caller]
fn expect_build(t: &Test, args: &[&str], stderr: &str) {
    let mut all = args.to_vec();
    all.push("build");
    let ran = t.run_with(&all);
    assert_eq!((ran.stderr_text(), ran.exit_code()), (stderr, 0), "{ran:?}");
}

/// What `-v` says before the run: the line giving its reason.
#[track_caller]
fn reason(t: &Test, args: &[&str]) -> String {
    let mut all = vec!["-v"];
    all.extend(args);
    all.push("build");
    let ran = t.run_with(&all);
    // The callers look at why it ran; what it printed is not their point.
    ran.code(0).stdout_text();
    ran.stderr_text()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn an_unchanged_task_is_skipped_and_says_so() {
    let t = build();
    expect_build(&t, &[], RAN);
    assert_eq!(t.read("out.txt"), "aaaa\n");
    expect_build(&t, &[], SKIPPED);
    // Quiet: nothing at all.
    expect_build(&t, &["-q"], "");
    // A dry run says so too, and runs nothing.
    expect_build(&t, &["-n"], SKIPPED);
}

#[test]
fn the_first_run_says_why_it_ran() {
    let t = build();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: no earlier success is recorded"
    );
}

#[test]
fn a_changed_added_or_deleted_source_runs_it_again() {
    let t = build();
    expect_build(&t, &[], RAN);
    std::fs::write(t.path().join("src/a.txt"), "changed\n").unwrap();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: `src/a.txt` changed"
    );
    expect_build(&t, &[], SKIPPED);
    std::fs::write(t.path().join("src/b.txt"), "b\n").unwrap();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: `src/b.txt` is new"
    );
    std::fs::remove_file(t.path().join("src/b.txt")).unwrap();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: `src/b.txt` was deleted"
    );
    expect_build(&t, &[], SKIPPED);
}

#[test]
fn a_change_to_a_source_whose_name_is_not_utf8_runs_it_again() {
    // Its path cannot be written as text, so the file is not read by name
    // again: its stat stands for it, and a change is still seen.
    use std::os::unix::ffi::OsStrExt;
    let t = build();
    let odd = t
        .path()
        .join("src")
        .join(std::ffi::OsStr::from_bytes(b"odd\xff.txt"));
    std::fs::write(&odd, "one\n").unwrap();
    expect_build(&t, &[], RAN);
    expect_build(&t, &[], SKIPPED);
    std::fs::write(&odd, "two, longer\n").unwrap();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: `src/odd\u{fffd}.txt` changed"
    );
    expect_build(&t, &[], SKIPPED);
}

#[test]
fn excluded_and_unmatched_files_do_not_count() {
    let t = build();
    expect_build(&t, &[], RAN);
    std::fs::create_dir_all(t.path().join("src/skip")).unwrap();
    std::fs::write(t.path().join("src/skip/x.txt"), "x").unwrap();
    std::fs::write(t.path().join("src/a.md"), "x").unwrap();
    std::fs::create_dir_all(t.path().join("src/.git")).unwrap();
    std::fs::write(t.path().join("src/.git/y.txt"), "x").unwrap();
    expect_build(&t, &[], SKIPPED);
}

#[test]
fn a_missing_output_runs_it_again() {
    let t = build();
    expect_build(&t, &[], RAN);
    std::fs::remove_file(t.path().join("out.txt")).unwrap();
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: output `out.txt` is missing"
    );
    expect_build(&t, &[], SKIPPED);
}

#[test]
fn minus_b_runs_it_anyway() {
    let t = build();
    expect_build(&t, &[], RAN);
    expect_build(&t, &["-B"], RAN);
    assert_eq!(reason(&t, &["-B"]), "[build] not up to date: -B was given");
}

#[test]
fn editing_the_commands_or_env_in_the_file_runs_it_again() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["in.txt"]
        env = { GREETING = "hello" }
        run = "echo $GREETING"
        "#,
    )
    .file("in.txt", "x");
    t.run_with(&["build"])
        .expect("hello\n", "[build] $ echo $GREETING\n", 0);
    t.run_with(&["build"]).expect("", "[build] up to date\n", 0);
    let edit = |from: &str, to: &str| {
        let path = t.path().join("tasks.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace(from, to)).unwrap();
    };
    edit("echo $GREETING", "echo $GREETING world");
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: its commands changed"
    );
    edit("\"hello\"", "\"goodbye\"");
    assert_eq!(reason(&t, &[]), "[build] not up to date: its env changed");
    t.run_with(&["build"]).expect("", "[build] up to date\n", 0);
}

#[test]
fn commands_count_as_rendered_with_their_argument_values() {
    let t = Test::with(
        r#"
        [vars]
        greeting = "hello"

        [tasks.say]
        args = [{ name = "who", positional = true }]
        sources = ["in.txt"]
        run = "echo {{ greeting }} {{ who }}"
        "#,
    )
    .file("in.txt", "x");
    t.run_with(&["say", "ann"])
        .expect("hello ann\n", "[say] $ echo hello ann\n", 0);
    t.run_with(&["say", "ann"])
        .expect("", "[say] up to date\n", 0);
    // Other argument values are another run, with a record of its own.
    t.run_with(&["say", "bob"])
        .expect("hello bob\n", "[say] $ echo hello bob\n", 0);
    t.run_with(&["say", "ann"])
        .expect("", "[say] up to date\n", 0);
    // A var that changes the rendered command runs it again.
    t.run_with(&["--set", "greeting=hi", "say", "ann"]).expect(
        "hi ann\n",
        "[say] $ echo hi ann\n",
        0,
    );
}

#[test]
fn nothing_is_recorded_after_a_failure() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["in.txt"]
        run = "test -e ok"
        "#,
    )
    .file("in.txt", "x");
    t.run_with(&["build"]).expect(
        "",
        "[build] $ test -e ok\nerror: build failed at `test -e ok`: exit status 1\n",
        1,
    );
    let records = t.path().join(".tasker/fresh");
    let count = std::fs::read_dir(&records).map_or(0, |d| d.count());
    assert_eq!(count, 0);
    std::fs::write(t.path().join("ok"), "").unwrap();
    let ran = t.run_with(&["-v", "build"]);
    ran.code(0)
        .stderr_has("[build] not up to date: no earlier success is recorded");
    t.run_with(&["build"]).expect("", "[build] up to date\n", 0);
    expect_quiet_skip(&t);
}

#[track_caller]
fn expect_quiet_skip(t: &Test) {
    let ran = t.run_with(&["build"]);
    assert_eq!(
        (ran.stderr_text(), ran.exit_code()),
        (SKIPPED, 0),
        "{ran:?}"
    );
}

#[test]
fn an_ignored_failure_records_nothing() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["in.txt"]
        ignore_failure = true
        run = "exit 3"
        "#,
    )
    .file("in.txt", "x");
    t.run_with(&["build"]).expect(
        "",
        "[build] $ exit 3\n[build] failed (exit status 3), ignored\n",
        0,
    );
    t.run_with(&["-v", "build"])
        .code(0)
        .stderr_has("not up to date: no earlier success is recorded");
}

fn record_files(t: &Test) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(t.path().join(".tasker/fresh"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

#[test]
fn a_corrupt_record_means_run_it() {
    let t = build();
    expect_build(&t, &[], RAN);
    let records = record_files(&t);
    assert_eq!(records.len(), 1);
    let whole = std::fs::read(&records[0]).unwrap();
    for broken in [&whole[..whole.len() / 2], b"", b"\xff\x00garbage", b"[]"] {
        std::fs::write(&records[0], broken).unwrap();
        assert_eq!(
            reason(&t, &[]),
            "[build] not up to date: no earlier success is recorded"
        );
    }
    expect_build(&t, &[], SKIPPED);
}

#[test]
fn the_records_directory_is_ignored_by_git() {
    let t = build();
    expect_build(&t, &[], RAN);
    assert_eq!(t.read(".tasker/.gitignore"), "*\n");
}

#[test]
fn two_processes_at_once_leave_a_whole_record() {
    let t = build();
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = t.command();
            cmd.arg("build")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = common::wait_bounded(child, std::time::Duration::from_secs(60));
        assert!(out.status.success());
    }
    // One record, whole, and no temporary file left.
    assert_eq!(record_files(&t).len(), 1);
    expect_build(&t, &[], SKIPPED);
}

/// Wait (bounded) until a file's last change is older than tasker's
/// window for timestamps too fresh to trust.
fn age(path: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let meta = std::fs::metadata(path).unwrap();
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if meta.ctime() + 3 <= now {
            return;
        }
        assert!(Instant::now() < deadline, "the clock does not move");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn unchanged_files_are_not_read_again_but_a_same_size_edit_with_the_old_mtime_is_caught() {
    let t = build();
    let source = t.path().join("src/a.txt");
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_500_000_000);
    std::fs::File::options()
        .write(true)
        .open(&source)
        .unwrap()
        .set_modified(old)
        .unwrap();
    age(&source);
    expect_build(&t, &[], RAN);
    // The stat cache: the file is seen, not read.
    assert_eq!(reason(&t, &[]), "[build] up to date (1 source, 0 read)");
    // Same size, same inode, and the mtime put back: only ctime moved.
    std::fs::write(&source, "bbbb\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&source)
        .unwrap()
        .set_modified(old)
        .unwrap();
    assert_eq!(std::fs::metadata(&source).unwrap().modified().unwrap(), old);
    assert_eq!(
        reason(&t, &[]),
        "[build] not up to date: `src/a.txt` changed"
    );
    assert_eq!(t.read("out.txt"), "bbbb\n");
}

#[test]
fn a_file_too_fresh_to_trust_is_read_again() {
    let t = build();
    expect_build(&t, &[], RAN);
    // Written a moment ago: its timestamps could repeat after an edit.
    assert_eq!(reason(&t, &[]), "[build] up to date (1 source, 1 read)");
}

#[test]
fn sources_are_relative_to_the_task_dir() {
    let t = Test::with(
        r#"
        [tasks.build]
        dir = "sub"
        sources = ["*.c"]
        run = "cat *.c"
        "#,
    )
    .file("sub/a.c", "one\n")
    .file("a.c", "not this\n");
    t.run_with(&["build"])
        .expect("one\n", "[build] $ cat *.c\n", 0);
    std::fs::write(t.path().join("a.c"), "still not this\n").unwrap();
    t.run_with(&["build"]).expect("", "[build] up to date\n", 0);
    std::fs::write(t.path().join("sub/a.c"), "two\n").unwrap();
    t.run_with(&["-v", "build"])
        .code(0)
        .stdout("two\n")
        .stderr_has("not up to date: `sub/a.c` changed");
}

#[test]
fn a_bad_glob_is_an_error_at_its_place() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["src/[a"]
        run = "true"
        "#,
    );
    let ran = t.run_with(&["build"]);
    ran.code(2);
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn a_skipped_run_counts_as_a_success_for_what_follows() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["in.txt"]
        run = "true"

        [tasks.ship]
        deps = ["build"]
        run = "echo shipped"
        "#,
    )
    .file("in.txt", "x");
    t.run_with(&["ship"])
        .expect("shipped\n", "[build] $ true\n[ship] $ echo shipped\n", 0);
    let ran = t.run_with(&["ship"]);
    ran.code(0).stdout("shipped\n").stderr_has(SKIPPED);
}

#[test]
fn the_json_listing_says_whether_each_task_is_up_to_date() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["src/**/*.txt"]
        outputs = ["out.txt"]
        run = "cat src/*.txt > out.txt"

        [tasks.plain]
        run = "true"

        [tasks.greet]
        args = [{ name = "who" }]
        sources = ["src/**"]
        run = "echo {{ who }}"
        "#,
    )
    .file("src/a.txt", "a\n");
    let states = |t: &Test| -> Vec<serde_json::Value> {
        let ran = t.run_with(&["-l", "--json"]);
        ran.code(0);
        let doc: serde_json::Value = serde_json::from_str(ran.stdout_text()).unwrap();
        doc["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|task| task["up_to_date"].clone())
            .collect()
    };
    use serde_json::Value::{Bool, Null};
    assert_eq!(states(&t), [Bool(false), Null, Null]);
    expect_build(&t, &[], "[build] $ cat src/*.txt > out.txt\n");
    assert_eq!(states(&t), [Bool(true), Null, Null]);
    std::fs::remove_file(t.path().join("out.txt")).unwrap();
    assert_eq!(states(&t), [Bool(false), Null, Null]);
}

/// The task keys, as the reference's table lists them (a unit test holds
/// that table equal to the loader's list).
fn task_keys() -> Vec<String> {
    let reference = include_str!("../docs/reference.md");
    let start = reference
        .find("\n### Task keys\n")
        .expect("a Task keys table");
    reference[start..]
        .lines()
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|l| {
            let cell = l.trim_matches('|').split(" | ").next()?.trim();
            Some(cell.trim_matches('`').to_string())
        })
        .collect()
}

/// Every task key, changed in a file whose task was up to date: the run
/// happens again, except for the keys that change only how a task is shown.
#[test]
fn every_task_key_but_presentation_is_fingerprinted() {
    // key, presentation?, extra lines for both versions, value before, after
    let cases: &[(&str, bool, &str, &str, &str)] = &[
        ("help", true, "", "'one'", "'two'"),
        ("run", false, "", "'echo hi'", "'echo hi2'"),
        ("deps", false, "", "['a']", "['b']"),
        ("post", false, "", "['a']", "['b']"),
        ("finally", false, "", "['true']", "['true', 'true']"),
        (
            "args",
            false,
            "",
            "[{ name = 'n', default = '1' }]",
            "[{ name = 'n', default = '1', choices = ['1', '2'] }]",
        ),
        ("env", false, "", "{ A = '1' }", "{ A = '2' }"),
        ("dir", false, "", "'.'", "'./.'"),
        ("shell", false, "", "['bash', '-c']", "['sh', '-c']"),
        ("quiet", false, "", "false", "true"),
        ("private", true, "", "false", "true"),
        ("aliases", true, "", "['b1']", "['b2']"),
        ("group", true, "", "'one'", "'two'"),
        ("confirm", false, "", "'sure?'", "'really?'"),
        ("platforms", false, "", "['linux', 'macos']", "['linux']"),
        ("timeout", false, "", "'10s'", "'20s'"),
        ("retries", false, "", "1", "2"),
        ("retry_delay", false, "", "'1s'", "'2s'"),
        ("ignore_failure", false, "", "false", "true"),
        ("interactive", false, "", "false", "true"),
        ("pty", false, "", "false", "true"),
        ("background", false, "", "false", "true"),
        ("ready", false, "background = true\n", "'hi'", "'h'"),
        (
            "ready_timeout",
            false,
            "background = true\n",
            "'10s'",
            "'20s'",
        ),
        (
            "matrix",
            false,
            "",
            "{ x = ['1'] }",
            "{ x = ['1'], y = ['2'] }",
        ),
        (
            "sources",
            false,
            "",
            "['src/*.txt']",
            "['src/*.txt', '!src/none']",
        ),
        ("outputs", false, "", "['src/a.txt']", "['src']"),
        ("cache", false, "", "true", "false"),
        ("capture", false, "", "false", "true"),
        ("extract", false, "", "{ v = 'h(i)' }", "{ v = '(h)i' }"),
        ("expect", false, "", "['hi']", "['h']"),
        ("fail_on", false, "", "['nope']", "['nope2']"),
        (
            "respond",
            false,
            "",
            "[{ on = 'x', send = 'y' }]",
            "[{ on = 'x', send = 'z' }]",
        ),
        ("hide", false, "", "false", "true"),
        ("distribute", false, "", "false", "true"),
        ("vars", false, "", "{ v = '1' }", "{ v = '2' }"),
        ("status", false, "", "['true']", "['true', 'true']"),
        ("preconditions", false, "", "['true']", "['true', 'true']"),
    ];
    let keys = task_keys();
    let listed: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let mut sorted_keys: Vec<&str> = keys.iter().map(String::as_str).collect();
    sorted_keys.sort_unstable();
    let mut sorted_cases = listed.clone();
    sorted_cases.sort_unstable();
    assert_eq!(
        sorted_cases, sorted_keys,
        "the cases must cover every task key"
    );

    let file = |key: &str, extra: &str, value: &str| {
        let run = if key == "run" {
            ""
        } else {
            "run = 'echo hi'\n"
        };
        let sources = if key == "sources" {
            ""
        } else {
            "sources = ['src/*.txt']\n"
        };
        format!(
            "[tasks.a]\nrun = 'true'\n[tasks.b]\nrun = 'true'\n\
             [tasks.build]\n{run}{sources}{extra}{key} = {value}\n"
        )
    };
    for (key, presentation, extra, before, after) in cases {
        let t = Test::with(&file(key, extra, before)).file("src/a.txt", "a\n");
        // Each run succeeds; what it prints is the task's own business.
        let first = t.run_with(&["-y", "build"]);
        first.code(0).stdout_has("hi").stderr_has("] $ echo hi");
        let second = t.run_with(&["-y", "build"]);
        second.code(0).stdout_text();
        let up_to_date = |ran: &common::Ran| ran.stderr_text().contains("up to date");
        if up_to_date(&second) {
            std::fs::write(t.path().join("tasks.toml"), file(key, extra, after)).unwrap();
            let third = t.run_with(&["-y", "build"]);
            third.code(0).stdout_text();
            assert_eq!(
                up_to_date(&third),
                *presentation,
                "changing `{key}` from {before} to {after}: {third:?}"
            );
        } else {
            // A run that is never recorded (a service, stopped by tasker)
            // is never skipped: no change can be missed.
            assert!(
                ["background", "ready", "ready_timeout"].contains(key),
                "`{key}` = {before}: the second run was not up to date: {first:?} {second:?}"
            );
            assert!(!up_to_date(&first));
        }
    }
}

/// A skipped run reads as the real one did: its captured and extracted
/// values are recorded with its success, and `--timings` and `-l --json`
/// say it was up to date.
#[test]
fn a_skipped_run_keeps_the_values_it_captured_and_extracted() {
    let t = Test::with(
        r#"
        [tasks.ver]
        sources = ["src/*.txt"]
        capture = true
        extract = { version = 'version (\S+)' }
        run = "cat src/v.txt"

        [tasks.show]
        deps = ["ver"]
        run = "echo 'v={{ tasks.ver.version }} out={{ tasks.ver.stdout }}'"
        "#,
    )
    .file("src/v.txt", "version 1.2.3\n");
    let first = t.run_with(&["-q", "show"]);
    first
        .code(0)
        .stdout("version 1.2.3\nv=1.2.3 out=version 1.2.3\n");
    let second = t.run_with(&["--timings", "show"]);
    second.code(0).stdout("v=1.2.3 out=version 1.2.3\n");
    assert!(
        second.stderr_text().contains("[ver] up to date"),
        "{second:?}"
    );
    let row = second
        .stderr_text()
        .lines()
        .find(|l| l.starts_with("ver "))
        .unwrap_or_default();
    assert!(row.ends_with("up-to-date"), "{}", second.stderr_text());
    let listed: serde_json::Value =
        serde_json::from_str(t.run_with(&["-l", "--json"]).stdout_text()).unwrap();
    assert_eq!(listed["tasks"][0]["up_to_date"], true);
    assert_eq!(listed["tasks"][0]["recorded"], "ran");
    assert_eq!(listed["tasks"][1]["recorded"], serde_json::Value::Null);
    // A changed source: the new values, from a real run.
    std::fs::write(t.path().join("src/v.txt"), "version 2.0\n").unwrap();
    t.run_with(&["-q", "show"])
        .code(0)
        .stdout("version 2.0\nv=2.0 out=version 2.0\n");
}

/// Absolute globs, and globs that climb out of the root, are checked like
/// any other.
#[test]
fn absolute_sources_and_sources_outside_the_root_are_checked() {
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir(elsewhere.path().join("inc")).unwrap();
    std::fs::write(elsewhere.path().join("inc/b.h"), "b\n").unwrap();
    let t = Test::new()
        .file(
            "proj/tasks.toml",
            &format!(
                r#"
                [tasks.build]
                sources = ["../shared/**/*.txt", "{}/inc/*.h"]
                run = "true"
                "#,
                elsewhere.path().display()
            ),
        )
        .file("shared/deep/a.txt", "a\n")
        .cwd("proj");
    t.run_with(&["-v", "build"]).code(0).stderr_has(
        "[build] not up to date: no earlier success is recorded\n[build] $ true\n[build] done in ",
    );
    t.run_with(&["-v", "build"])
        .code(0)
        .stderr_has("[build] up to date (2 sources, ");
    std::fs::write(t.path().join("shared/deep/a.txt"), "a2\n").unwrap();
    t.run_with(&["-v", "build"])
        .code(0)
        .stderr_has("[build] not up to date: `../shared/deep/a.txt` changed");
    let header = elsewhere.path().join("inc/b.h");
    std::fs::write(&header, "b2\n").unwrap();
    t.run_with(&["-v", "build"]).code(0).stderr_has(&format!(
        "[build] not up to date: `{}` changed",
        header.display()
    ));
    std::fs::write(elsewhere.path().join("inc/c.h"), "c\n").unwrap();
    t.run_with(&["-v", "build"]).code(0).stderr_has("is new");
    assert_eq!(t.run_with(&["build"]).stderr_text(), "[build] up to date\n");
}

/// A temporary record file of a writer that was killed is removed by the
/// next write; one of a writer still alive is left alone.
#[test]
fn temporary_files_of_killed_writers_are_removed_by_the_next_write() {
    let t = build();
    expect_build(&t, &[], RAN);
    let records = t.path().join(".tasker/fresh");
    let mut dead = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    dead.wait().unwrap();
    let mut live = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .unwrap();
    let killed = records.join(format!(".build-0123.{dead_pid}.0.tmp"));
    let writing = records.join(format!(".build-0123.{}.0.tmp", live.id()));
    std::fs::write(&killed, vec![b'x'; 1 << 20]).unwrap();
    std::fs::write(&writing, "half").unwrap();
    std::fs::write(t.path().join("src/a.txt"), "changed\n").unwrap();
    expect_build(&t, &[], RAN);
    let (killed_left, writing_left) = (killed.exists(), writing.exists());
    let _ = live.kill();
    let _ = live.wait();
    assert!(!killed_left, "the killed writer's file is still there");
    assert!(writing_left, "the live writer's file was removed");
}

/// A FIFO where a record or a source should be never holds tasker: a record
/// that is a FIFO is no record (the run happens), and a FIFO named as a
/// source is not read.
#[test]
fn a_fifo_for_a_record_or_a_source_never_blocks() {
    let t = Test::with(
        r#"
        [tasks.build]
        sources = ["src/*.txt", "pipe"]
        run = "true"
        "#,
    )
    .file("src/a.txt", "a\n");
    let mkfifo = |path: &std::path::Path| {
        let ok = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfifo {}", path.display());
    };
    mkfifo(&t.path().join("pipe"));
    let first = t.run_with(&["-v", "build"]);
    first.code(0).stderr_has("no earlier success is recorded");
    t.run_with(&["-v", "build"])
        .code(0)
        .stderr_has("[build] up to date (1 source, ");
    let records: Vec<_> = std::fs::read_dir(t.path().join(".tasker/fresh"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(records.len(), 1);
    std::fs::remove_file(&records[0]).unwrap();
    mkfifo(&records[0]);
    t.run_with(&["-v", "build"])
        .code(0)
        .stderr_has("no earlier success is recorded");
}
