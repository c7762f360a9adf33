//! SPEC 1 and 3 basics: run tasks in order, echo, exit statuses.
use crate::common;
use common::Test;

#[test]
fn runs_tasks_in_order_with_their_own_arguments() {
    Test::with(
        r#"
        [tasks.mytime]
        run = "echo time"
        [tasks.build]
        run = "echo build {% if release %}--release{% endif %}"
        [[tasks.build.args]]
        name = "release"
        type = "bool"
        [tasks.test]
        run = "echo test"
        "#,
    )
    .args(&["mytime", "build", "--release", "test"])
    .expect(
        "time\nbuild --release\ntest\n",
        "[mytime] $ echo time\n[build] $ echo build --release\n[test] $ echo test\n",
        0,
    );
}

// The harness checks a run whole: what a test does not speak of must be
// what a quiet success shows (status 0, nothing printed).

#[test]
#[should_panic(expected = "stdout is not empty, and the test did not say what it expects")]
fn a_run_whose_stdout_the_test_ignores_fails_it() {
    let _ran = Test::with("[tasks.t]\nrun = \"echo hi\"\n")
        .args(&["-q", "t"])
        .code(0);
}

#[test]
#[should_panic(expected = "the exit status is not 0, and the test did not say what it expects")]
fn a_run_whose_status_the_test_ignores_fails_it() {
    let ran = Test::with("[tasks.t]\nrun = \"exit 3\"\n").args(&["-q", "t"]);
    ran.run_with(&[])
        .stderr("error: t failed at `exit 3`: exit status 3\n");
}

#[test]
fn a_run_the_test_speaks_of_whole_passes() {
    let t = Test::with("[tasks.t]\nrun = \"echo hi; exit 3\"\n").args(&["-q", "t"]);
    t.code(3).stdout("hi\n").stderr_has("exit status 3");
    let ran = t.run_with(&[]);
    assert_eq!(ran.exit_code(), 3);
    assert_eq!(ran.stdout_text(), "hi\n");
    assert!(ran.stderr_text().starts_with("error: t failed"));
}
