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
    assert_eq!((ran.stderr.as_str(), ran.code), (stderr, 0), "{ran:?}");
}

/// What `-v` says before the run: the line giving its reason.
#[track_caller]
fn reason(t: &Test, args: &[&str]) -> String {
    let mut all = vec!["-v"];
    all.extend(args);
    all.push("build");
    let ran = t.run_with(&all);
    ran.code(0);
    ran.stderr.lines().next().unwrap_or_default().to_string()
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
    t.run_with(&["build"]).code(0).stdout("hello\n");
    t.run_with(&["build"]).code(0).stdout("");
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
    t.run_with(&["build"]).code(0).stdout("");
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
    t.run_with(&["say", "ann"]).code(0).stdout("hello ann\n");
    t.run_with(&["say", "ann"]).code(0).stdout("");
    // Other argument values are another run, with a record of its own.
    t.run_with(&["say", "bob"]).code(0).stdout("hello bob\n");
    t.run_with(&["say", "ann"]).code(0).stdout("");
    // A var that changes the rendered command runs it again.
    t.run_with(&["--set", "greeting=hi", "say", "ann"])
        .code(0)
        .stdout("hi ann\n");
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
    t.run_with(&["build"]).code(1);
    let records = t.path().join(".tasker/fresh");
    let count = std::fs::read_dir(&records).map_or(0, |d| d.count());
    assert_eq!(count, 0);
    std::fs::write(t.path().join("ok"), "").unwrap();
    let ran = t.run_with(&["-v", "build"]);
    ran.code(0)
        .stderr_has("[build] not up to date: no earlier success is recorded");
    t.run_with(&["build"]).code(0);
    expect_quiet_skip(&t);
}

#[track_caller]
fn expect_quiet_skip(t: &Test) {
    let ran = t.run_with(&["build"]);
    assert_eq!((ran.stderr.as_str(), ran.code), (SKIPPED, 0), "{ran:?}");
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
    t.run_with(&["build"]).code(0);
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
    t.run_with(&["build"]).code(0).stdout("one\n");
    std::fs::write(t.path().join("a.c"), "still not this\n").unwrap();
    t.run_with(&["build"]).code(0).stdout("");
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
    insta::assert_snapshot!(ran.stderr);
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
    t.run_with(&["ship"]).code(0).stdout("shipped\n");
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
        let doc: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
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
