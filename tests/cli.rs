//! SPEC 1: tasker's own options, finding the file, the default task.
use crate::common;
use common::Test;

const HELLO: &str = r#"
    [tasks.hello]
    help = "Say hello"
    run = "echo hello"
    "#;

#[test]
fn finds_the_file_in_a_parent_directory() {
    Test::with(HELLO)
        .cwd("a/b")
        .args(&["hello"])
        .expect("hello\n", "[hello] $ echo hello\n", 0);
}

#[test]
fn runs_in_the_root_not_in_the_subdirectory() {
    Test::with(
        r#"
        [tasks.where]
        run = "pwd"
        "#,
    )
    .cwd("sub")
    .args(&["-q", "where"])
    .expect("[TMP]\n", "", 0);
}

#[test]
fn file_option_uses_that_file() {
    Test::new()
        .file("other/custom.toml", HELLO)
        .args(&["-f", "other/custom.toml", "hello"])
        .expect("hello\n", "[hello] $ echo hello\n", 0);
}

#[test]
fn file_option_with_a_missing_file_is_a_usage_error() {
    let ran = Test::new().args(&["-f", "nope.toml", "hello"]).code(2);
    ran.stderr_has("nope.toml");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn dir_option_behaves_as_if_started_there() {
    Test::new()
        .file("proj/tasks.toml", HELLO)
        .args(&["-C", "proj", "hello"])
        .expect("hello\n", "[hello] $ echo hello\n", 0);
}

#[test]
fn dir_option_with_a_missing_directory_is_a_usage_error() {
    Test::with(HELLO)
        .args(&["-C", "nowhere", "hello"])
        .code(2)
        .stderr_has("nowhere");
}

#[test]
fn no_file_says_where_it_looked_and_suggests_init() {
    // `-C` into a fresh temp dir: there is no tasks.toml above /tmp/...
    // unless someone left one in /tmp; the error must still name the dir.
    let t = Test::new();
    let ran = t.cwd("x").code(2);
    ran.stderr_has("no tasks.toml found in [TMP]/x")
        .stderr_has("tasker --init");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn a_tasks_toml_that_is_not_a_file_is_named_for_what_it_is() {
    // A directory in the way: said, not taken for "no file" (and not
    // skipped for a parent's tasks.toml).
    let t = Test::new().file("tasks.toml", HELLO).cwd("sub");
    std::fs::create_dir(t.path().join("sub/tasks.toml")).unwrap();
    t.args(&["hello"]).expect(
        "",
        "error: `[TMP]/sub/tasks.toml` is a directory, not a regular file\n",
        2,
    );
    // A FIFO is refused without being opened: no hang.
    let t = Test::new().args(&["-l"]);
    let status = std::process::Command::new("mkfifo")
        .arg(t.path().join("tasks.toml"))
        .status()
        .unwrap();
    assert!(status.success());
    t.expect(
        "",
        "error: `[TMP]/tasks.toml` is a FIFO, not a regular file\n",
        2,
    );
    // The same for -f.
    Test::new().args(&["-f", "/dev/zero", "-l"]).expect(
        "",
        "error: `/dev/zero` is a character device, not a regular file\n",
        2,
    );
}

#[test]
fn the_default_task_runs_when_no_task_is_named() {
    Test::with(
        r#"
        [settings]
        default = "hello"
        [tasks.hello]
        run = "echo hello"
        [tasks.other]
        run = "echo other"
        "#,
    )
    .expect("hello\n", "[hello] $ echo hello\n", 0);
}

#[test]
fn no_task_and_no_default_lists_the_tasks() {
    Test::with(HELLO).expect(
        "
        Tasks in ./tasks.toml:
            hello   Say hello
        ",
        "",
        0,
    );
}

#[test]
fn dry_run_prints_filled_in_commands_and_runs_nothing() {
    let t = Test::with(
        r#"
        [tasks.make]
        deps = ["gen"]
        run = ["touch marker-{{ name }}", { cmd = ["touch", "cmd-{{ name }}"] }]
        [[tasks.make.args]]
        name = "name"
        positional = true
        [tasks.gen]
        run = "touch gen-marker"
        "#,
    )
    .args(&["-n", "make", "a b"]);
    t.expect(
        "",
        "
        [gen] $ touch gen-marker
        [make] $ touch marker-'a b'
        [make] $ touch 'cmd-a b'
        ",
        0,
    );
    let names: Vec<_> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["tasks.toml"], "dry run created files");
}

#[test]
fn dry_run_shows_run_results_as_placeholders() {
    Test::with(
        r#"
        [tasks.version]
        capture = true
        run = "echo 1.2.3"
        [tasks.tag]
        run = [{ task = "version" }, "git tag v{{ tasks.version.stdout }}"]
        "#,
    )
    .args(&["-n", "tag"])
    .expect(
        "",
        "
        [tag] $ task version
        [version] $ echo 1.2.3
        [tag] $ git tag v<tasks.version.stdout>
        ",
        0,
    );
}

#[test]
fn quiet_hides_the_echo_but_not_the_output() {
    Test::with(HELLO)
        .args(&["-q", "hello"])
        .expect("hello\n", "", 0);
}

#[test]
fn settings_echo_false_hides_the_echo() {
    Test::with(
        r#"
        [settings]
        echo = false
        [tasks.hello]
        run = "echo hello"
        "#,
    )
    .args(&["hello"])
    .expect("hello\n", "", 0);
}

#[test]
fn task_quiet_hides_only_that_tasks_echo() {
    Test::with(
        r#"
        [tasks.a]
        quiet = true
        run = "echo a"
        [tasks.b]
        run = "echo b"
        "#,
    )
    .args(&["a", "b"])
    .expect("a\nb\n", "[b] $ echo b\n", 0);
}

const VARS: &str = r#"
    [vars]
    version = "1.0"
    [tasks.show]
    run = "echo {{ version }}"
    "#;

#[test]
fn set_overrides_a_var() {
    Test::with(VARS)
        .args(&["-q", "--set", "version=2.0 beta", "show"])
        .expect("2.0 beta\n", "", 0);
    Test::with(VARS)
        .args(&["-q", "show"])
        .expect("1.0\n", "", 0);
}

#[test]
fn set_of_an_unknown_var_suggests_the_nearest() {
    let t = Test::with(VARS).args(&["--set", "versoin=2", "show"]);
    let ran = t.code(2);
    assert_eq!(ran.stdout_text(), "");
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn jobs_zero_is_a_usage_error() {
    // Refused before anything runs, by the option's own parser.
    Test::with(HELLO).args(&["-j0", "hello"]).expect(
        "",
        "error: invalid value '0' for '--jobs <N>': must be at least 1 (-j1 runs one task at a time)\n\nFor more information, try '--help'.\n",
        2,
    );
}

#[test]
fn version_prints_the_version() {
    Test::new()
        .args(&["-V"])
        .expect(&format!("tasker {}\n", env!("CARGO_PKG_VERSION")), "", 0);
}

#[test]
fn help_prints_usage() {
    let ran = Test::new().args(&["--help"]).code(0);
    ran.stdout_has("Usage: tasker").stdout_has("--dry-run");
    // Help says only what is true: nothing is "not supported yet".
    ran.stdout_has("Run, then run again whenever a source of the named tasks changes")
        .stdout_has("Run tasks with sources even when they are up to date");
    assert!(
        !ran.stdout_text().contains("not supported"),
        "{}",
        ran.stdout_text()
    );
    insta::assert_snapshot!(ran.stdout_text());
}

#[test]
fn check_accepts_a_good_file() {
    Test::with(HELLO)
        .args(&["--check"])
        .expect("", "./tasks.toml: ok (1 task)\n", 0);
}

#[test]
fn check_rejects_a_bad_template_without_running_anything() {
    let ran = Test::with(
        r#"
        [tasks.ok]
        run = "touch ran"
        [tasks.bad]
        run = "echo {{ nope }}"
        "#,
    )
    .args(&["--check"])
    .code(2);
    ran.stderr_has("unknown name `nope`")
        .stderr_has("./tasks.toml:4:16");
}

#[test]
fn init_writes_a_starter_file_that_loads() {
    let t = Test::new().args(&["--init"]);
    let ran = t.code(0);
    ran.stderr_has("tasks.toml");
    assert!(t.read("tasks.toml").contains("[tasks."));
    // The starter is valid and runnable.
    Test::new()
        .file("tasks.toml", &t.read("tasks.toml"))
        .args(&["--check"])
        .expect("", "./tasks.toml: ok (3 tasks)\n", 0);
    Test::new()
        .file("tasks.toml", &t.read("tasks.toml"))
        .args(&["-q", "hello", "you"])
        .expect("Hello, you!\n", "", 0);
    // It shows arguments, deps, sources and outputs, and a pattern.
    let starter = t.read("tasks.toml");
    for key in [
        "[[tasks.hello.args]]",
        "deps = ",
        "sources = ",
        "outputs = ",
        "expect = ",
    ] {
        assert!(starter.contains(key), "no `{key}` in the starter");
    }
    // The task with sources runs once, then is up to date.
    let t = Test::new().file("tasks.toml", &starter);
    let first = t.run_with(&["-v", "-j1", "check"]);
    assert_eq!(first.exit_code(), 0, "{}", first.stderr_text());
    first.stdout_has("Hello, world!\nall good\n");
    assert!(
        first.stderr_text().contains("[stamp] $ mkdir"),
        "{}",
        first.stderr_text()
    );
    let second = t.run_with(&["-v", "-j1", "check"]);
    assert_eq!(second.exit_code(), 0, "{}", second.stderr_text());
    second.stdout_has("Hello, world!\nall good\n");
    assert!(
        second.stderr_text().contains("[stamp] up to date"),
        "{}",
        second.stderr_text()
    );
}

#[test]
fn init_refuses_to_overwrite() {
    let t = Test::with(HELLO).args(&["--init"]);
    let ran = t.code(2);
    ran.stderr_has("already exists");
    assert!(t.read("tasks.toml").contains("Say hello"));
}

#[test]
fn core_options_after_a_task_name_belong_to_the_task() {
    // `-n` after the task name is the task's (unknown) flag, not dry-run.
    let t = Test::with(HELLO).args(&["hello", "-n"]);
    let ran = t.code(2);
    ran.stderr_has("unknown flag `-n` for task `hello`");
}

#[test]
fn schema_prints_the_json_schema_without_needing_a_file() {
    let ran = Test::new().arg("--schema").code(0);
    assert_eq!(ran.stderr_text(), "");
    let schema: serde_json::Value = serde_json::from_str(ran.stdout_text()).expect("JSON");
    assert_eq!(schema["title"], "tasks.toml");
    assert!(
        schema["properties"]["tasks"]["additionalProperties"]["properties"]["fail_on"].is_object()
    );
}

#[test]
fn check_warns_where_a_value_sits_inside_quotes_in_a_command() {
    let test = Test::with(
        r#"
        [tasks.greet]
        run = 'echo "hello {{ name }}"'
        deps = ["say '{{ name }}'"]
        [[tasks.greet.args]]
        name = "name"
        default = "big world"
        [tasks.say]
        run = "echo hello {{ words }} \"{{ words | safe }}\""
        [[tasks.say.args]]
        name = "words"
        positional = true
        "#,
    );
    let ran = test.arg("--check").code(0);
    ran.stderr_has("warning: a value inside quotes in a command of task `greet`")
        .stderr_has("./tasks.toml: ok (2 tasks)");
    assert_eq!(ran.stdout_text(), "");
    assert_eq!(
        ran.stderr_text().matches("warning:").count(),
        2,
        "{}",
        ran.stderr_text()
    );
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn in_a_call_fixed_words_in_quotes_and_a_value_after_them_make_one_word() {
    // What the warning advises works: one argument, with the spaces.
    Test::with(
        r#"
        [tasks.greet]
        deps = ["say 'hello '{{ name }}"]
        run = "true"
        [[tasks.greet.args]]
        name = "name"
        default = "big world"
        [tasks.say]
        run = "echo [{{ words }}]"
        [[tasks.say.args]]
        name = "words"
        positional = true
        "#,
    )
    .args(&["-q", "greet"])
    .expect("[hello big world]\n", "", 0);
}

#[test]
fn a_one_letter_argument_is_a_short_flag_only() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = "echo {{ k }} {{ v }}"
        [[tasks.t.args]]
        name = "k"
        default = "x"
        [[tasks.t.args]]
        name = "v"
        type = "count"
        "#,
    );
    let ran = t.run_with(&["-q", "t", "-k", "3", "-vv"]);
    assert_eq!(
        (ran.stdout_text(), ran.exit_code()),
        ("3 2\n", 0),
        "{}",
        ran.stderr_text()
    );
    let ran = t.run_with(&["-q", "t", "--k", "3"]);
    assert_eq!(
        (ran.stderr_text(), ran.exit_code()),
        (
            "error: unknown flag `--k` for task `t`\nhelp: the flags of `t` are: -k, -v\n",
            2
        )
    );
    let ran = t.run_with(&["t", "--help"]);
    assert_eq!(
        ran.stdout_text(),
        "Usage: tasker t [-k K] [-v]...\n\nArguments:\n  -k K   [string, default: \"x\"]\n  -v     [count]\n\nSteps:\n  $ echo {{ k }} {{ v }}\n"
    );
}
