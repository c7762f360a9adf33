//! SPEC 1, inspection: `--show`, `--evaluate`, `--summary` and `--choose`
//! (on a real pseudo-terminal).
use crate::common;
use common::Test;

const FILE: &str = r#"
    [vars]
    version = "1.2.3"
    sha = { sh = "printf 'abc123\n\n'" }
    tags = ["a", "b"]
    quote = 'say "hi"'

    # Compile it.
    [tasks.build]
    help = "Compile the project"
    run = "echo build release={{ release }}"
    [[tasks.build.args]]
    name = "release"
    type = "bool"

    [tasks.deploy]
    help = "Ship it"
    aliases = ["d"]
    run = "echo deploy {{ target }} to {{ region }} port {{ port }}"
    [[tasks.deploy.args]]
    name = "target"
    positional = true
    help = "Where to"
    [[tasks.deploy.args]]
    name = "region"
    choices = ["eu", "us"]
    [[tasks.deploy.args]]
    name = "port"
    type = "int"
    default = 80

    [tasks._helper]
    run = "true"

    [tasks.lint]
    run = "echo lint"

    [tasks.deploy.env]
    STAGE = "1"
    "#;

#[test]
fn summary_prints_the_names_on_one_line() {
    Test::with(FILE)
        .arg("--summary")
        .expect("build deploy lint\n", "", 0);
    Test::with("[tasks._only]\nrun = 'true'\n")
        .arg("--summary")
        .expect("", "", 0);
}

#[test]
fn show_prints_the_task_as_written_with_its_file_and_line() {
    let ran = Test::with(FILE).args(&["--show", "build"]).expect(
        r#"
        # ./tasks.toml:7
        # Compile it.
        [tasks.build]
        help = "Compile the project"
        run = "echo build release={{ release }}"
        [[tasks.build.args]]
        name = "release"
        type = "bool"
        "#,
        "",
        0,
    );
    // An alias finds its task; a table of the task further down is shown
    // under its own line number.
    let deploy = Test::with(FILE).args(&["--show", "d"]).code(0);
    assert!(deploy
        .stdout_text()
        .contains("# ./tasks.toml:37\n[tasks.deploy.env]\nSTAGE = \"1\"\n"));
    insta::assert_snapshot!(format!("{}\n{}", ran.stdout_text(), deploy.stdout_text()));
}

#[test]
fn show_of_an_unknown_task_suggests_the_nearest() {
    Test::with(FILE).args(&["--show", "biuld"]).expect(
        "",
        "
        error: --show biuld: unknown task `biuld`
        help: did you mean `build`?
        ",
        2,
    );
}

#[test]
fn evaluate_prints_every_var_with_sh_vars_run() {
    let ran = Test::with(FILE).arg("--evaluate").expect(
        r#"
        version = "1.2.3"
        sha     = "abc123"
        tags    = ["a", "b"]
        quote   = "say \"hi\""
        "#,
        "",
        0,
    );
    insta::assert_snapshot!(ran.stdout_text());
    Test::with(FILE)
        .args(&["--evaluate", "sha"])
        .expect("abc123\n", "", 0);
    Test::with(FILE)
        .args(&["--set", "version=2.0", "--evaluate", "version"])
        .expect("2.0\n", "", 0);
    Test::with(FILE).args(&["--evaluate", "shaa"]).expect(
        "",
        "
        error: --evaluate shaa: there is no var `shaa` in ./tasks.toml
        help: did you mean `sha`?
        ",
        2,
    );
}

#[test]
fn choose_outside_a_terminal_is_a_clear_error() {
    let ran = Test::with(FILE).arg("--choose").expect(
        "",
        "
        error: --choose needs a terminal to pick a task on
        help: name the task instead (`tasker TASK`); `tasker -l` lists them, `tasker --summary` prints their names for scripts
        ",
        2,
    );
    insta::assert_snapshot!(ran.stderr_text());
}

/// Run `tasker ARGS` on a pseudo-terminal (python's `pty`), and for each
/// (text, keys) step, wait until the screen shows the text, then type the
/// keys. Returns what the terminal showed and the exit status.
fn on_a_terminal(test: &Test, args: &[&str], steps: &[(&str, &[u8])]) -> (String, i32) {
    common::on_a_terminal(test, args, steps)
}

#[test]
fn choose_picks_a_task_by_fuzzy_search_then_asks_its_required_arguments() {
    let test = Test::with(FILE);
    let (out, code) = on_a_terminal(
        &test,
        &["-q", "--choose"],
        &[
            ("Task", b"dply"),
            // The fuzzy search has narrowed the list to `deploy`.
            ("Ship it", b"\r"),
            ("target (Where to)", b"staging\r"),
            ("region", b"\x1b[B\r"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("NEVER SHOWN"), "{out}");
    assert!(out.contains("deploy staging to us port 80"), "{out}");
}

#[test]
fn choose_re_asks_a_value_that_does_not_parse_and_esc_cancels() {
    let test = Test::with(
        r#"
        [tasks.scale]
        run = "echo scale to {{ n }}"
        [[tasks.scale.args]]
        name = "n"
        type = "int"
        "#,
    );
    let (out, code) = on_a_terminal(
        &test,
        &["-q", "--choose"],
        &[
            ("Task", b"\r"),
            ("n", b"many\r"),
            ("not an integer", b"\x15\x7f\x7f\x7f\x7f3\r"),
        ],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("scale to 3"), "{out}");
    let (out, code) = on_a_terminal(&test, &["--choose"], &[("Task", b"\x1b")]);
    assert_eq!(code, 130, "{out}");
    assert!(out.contains("no task chosen"), "{out}");
    assert!(!out.contains("scale to"), "{out}");
}

#[test]
fn choose_does_not_ask_for_an_argument_its_environment_variable_gives() {
    let test = Test::with(
        r#"
        [tasks.deploy]
        run = "echo deploy {{ target }}"
        [[tasks.deploy.args]]
        name = "target"
        env = "DEPLOY_TARGET"
        "#,
    )
    .env("DEPLOY_TARGET", "qa");
    let (out, code) = on_a_terminal(&test, &["-q", "--choose"], &[("Task", b"\r")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deploy qa"), "{out}");
    assert!(!out.contains("target:"), "{out}");
}

/// Vars, `[env]` and `sh` vars that read each other, in every order a
/// first use can come in. A var that `[env]` reads sees the environment
/// below `[env]` (`sha` is `abc-`), whichever use comes first.
const READ_EACH_OTHER: &str = r#"
    [env]
    APP_LOG = "{{ log }}"
    APP_SHA = "{{ sha }}"

    [vars]
    log = "warn"
    sha = { sh = "echo abc-$APP_LOG" }
    label = "{{ sha }}-{{ env.APP_LOG }}"

    [tasks.build]
    help = "Build it"
    vars = { stamp = { sh = "echo {{ label }}+$APP_LOG" }, shown = "[{{ stamp }}]" }
    run = "echo {{ shown }} $APP_SHA"
    "#;

/// Run with a bound: a tasker that waits on itself is killed after 20 s
/// (status -1) and fails the caller's check of its status, rather than
/// hanging.
#[track_caller]
fn ends(test: Test) -> common::Ran {
    let child = test.spawn();
    test.finish_within(child, std::time::Duration::from_secs(20))
}

#[test]
fn inspection_never_waits_on_itself() {
    let ran = ends(Test::with(READ_EACH_OTHER).arg("--evaluate"));
    assert_eq!(
        (ran.stdout_text(), ran.exit_code()),
        (
            "log   = \"warn\"\nsha   = \"abc-\"\nlabel = \"abc--warn\"\n",
            0
        ),
        "{}",
        ran.stderr_text()
    );
    // Each var first, alone: the one `[env]` reads starts the chain too.
    for (var, value) in [("log", "warn"), ("sha", "abc-"), ("label", "abc--warn")] {
        let ran = ends(Test::with(READ_EACH_OTHER).args(&["--evaluate", var]));
        assert_eq!(
            ran.stdout_text(),
            format!("{value}\n"),
            "{}",
            ran.stderr_text()
        );
    }
    let ran = ends(Test::with(READ_EACH_OTHER).args(&["-n", "build"]));
    assert_eq!(
        (ran.stderr_text(), ran.exit_code()),
        ("[build] $ echo '[abc--warn+warn]' $APP_SHA\n", 0)
    );
    ends(Test::with(READ_EACH_OTHER).args(&["--show", "build"])).expect(
        r#"
        # ./tasks.toml:10
        [tasks.build]
        help = "Build it"
        vars = { stamp = { sh = "echo {{ label }}+$APP_LOG" }, shown = "[{{ stamp }}]" }
        run = "echo {{ shown }} $APP_SHA"
        "#,
        "",
        0,
    );
    let ran = ends(Test::with(READ_EACH_OTHER).arg("--summary"));
    assert_eq!(ran.stdout_text(), "build\n");
    ends(Test::with(READ_EACH_OTHER).args(&["build"])).expect(
        "[abc--warn+warn] abc-\n",
        "[build] $ echo '[abc--warn+warn]' $APP_SHA\n",
        0,
    );
}
