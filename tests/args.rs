//! SPEC 1, task arguments: the parse point by point, and every error of
//! point 6 (exit 2, nothing runs).
use crate::common;
use common::Test;

/// A task that prints each of its values, one per line, plus a marker file
/// proving it ran.
const DEPLOY: &str = r#"
    [tasks.deploy]
    run = "touch ran; printf '%s\n' target={{ target }} port={{ port }} tag={{ tag | join(',') }} dry={{ dry_run }} verbose={{ verbose }} scale={{ scale }}"
    [[tasks.deploy.args]]
    name = "target"
    positional = true
    choices = ["staging", "prod"]
    [[tasks.deploy.args]]
    name = "port"
    type = "int"
    short = "p"
    default = 8080
    env = "DEPLOY_PORT"
    [[tasks.deploy.args]]
    name = "tag"
    type = "list"
    short = "t"
    [[tasks.deploy.args]]
    name = "dry_run"
    type = "bool"
    short = "d"
    [[tasks.deploy.args]]
    name = "verbose"
    type = "count"
    short = "v"
    [[tasks.deploy.args]]
    name = "scale"
    type = "float"
    default = 1.5

    [tasks.build]
    run = "touch ran; echo build"
    "#;

fn deploy(args: &[&str]) -> String {
    let mut all = vec!["-q", "deploy"];
    all.extend_from_slice(args);
    let ran = Test::with(DEPLOY).args(&all).code(0);
    ran.stdout_text().to_string()
}

fn line(target: &str, port: &str, tag: &str, dry: &str, verbose: &str, scale: &str) -> String {
    format!(
        "target={target}\nport={port}\ntag={tag}\ndry={dry}\nverbose={verbose}\nscale={scale}\n"
    )
}

#[test]
fn defaults_fill_what_is_not_given() {
    assert_eq!(
        deploy(&["staging"]),
        line("staging", "8080", "", "false", "0", "1.5")
    );
}

#[test]
fn long_flag_with_separate_value() {
    assert_eq!(
        deploy(&["staging", "--port", "9000"]),
        line("staging", "9000", "", "false", "0", "1.5")
    );
}

#[test]
fn long_flag_with_equals_value() {
    assert_eq!(
        deploy(&["--target=prod", "--port=9001", "--scale=0.5"]),
        line("prod", "9001", "", "false", "0", "0.5")
    );
}

#[test]
fn short_flag_with_separate_and_attached_value() {
    assert_eq!(
        deploy(&["staging", "-p", "1"]),
        line("staging", "1", "", "false", "0", "1.5")
    );
    assert_eq!(
        deploy(&["staging", "-p2"]),
        line("staging", "2", "", "false", "0", "1.5")
    );
}

#[test]
fn dashes_on_the_command_line_for_underscores_in_the_file() {
    assert_eq!(
        deploy(&["staging", "--dry-run"]),
        line("staging", "8080", "", "true", "0", "1.5")
    );
}

#[test]
fn bool_flag_and_its_negation() {
    assert_eq!(
        deploy(&["staging", "--no-dry-run"]),
        line("staging", "8080", "", "false", "0", "1.5")
    );
    assert_eq!(
        deploy(&["staging", "-d"]),
        line("staging", "8080", "", "true", "0", "1.5")
    );
}

#[test]
fn count_counts_repeats_and_clusters() {
    assert_eq!(
        deploy(&["staging", "-v", "-v"]),
        line("staging", "8080", "", "false", "2", "1.5")
    );
    assert_eq!(
        deploy(&["staging", "-vv"]),
        line("staging", "8080", "", "false", "2", "1.5")
    );
    assert_eq!(
        deploy(&["staging", "-vdv", "--verbose"]),
        line("staging", "8080", "", "true", "3", "1.5")
    );
}

#[test]
fn list_repeats() {
    assert_eq!(
        deploy(&["staging", "--tag", "a", "-t", "b c", "-td"]),
        line("staging", "8080", "a,b c,d", "false", "0", "1.5")
    );
}

#[test]
fn negative_numbers_are_values() {
    assert_eq!(
        deploy(&["staging", "--port", "-1", "--scale", "-2.5"]),
        line("staging", "-1", "", "false", "0", "-2.5")
    );
}

#[test]
fn env_default_is_used_when_set_and_the_flag_beats_it() {
    let t = Test::with(DEPLOY).env("DEPLOY_PORT", "7000");
    let ran = t.args(&["-q", "deploy", "prod"]).run_with(&[]);
    assert_eq!(
        ran.stdout_text(),
        line("prod", "7000", "", "false", "0", "1.5")
    );
    let ran = Test::with(DEPLOY)
        .env("DEPLOY_PORT", "7000")
        .args(&["-q", "deploy", "prod", "-p", "1"])
        .run_with(&[]);
    assert_eq!(
        ran.stdout_text(),
        line("prod", "1", "", "false", "0", "1.5")
    );
}

#[test]
fn an_empty_env_default_counts_as_unset() {
    let ran = Test::with(DEPLOY)
        .env("DEPLOY_PORT", "")
        .args(&["-q", "deploy", "prod"])
        .run_with(&[]);
    assert_eq!(
        ran.stdout_text(),
        line("prod", "8080", "", "false", "0", "1.5")
    );
}

#[test]
fn env_default_that_does_not_parse_is_an_error() {
    let t = Test::with(DEPLOY)
        .env("DEPLOY_PORT", "lots")
        .args(&["deploy", "prod"]);
    let ran = t.code(2);
    ran.stderr_has("DEPLOY_PORT");
    assert!(!t.path().join("ran").exists());
}

const POSITIONAL: &str = r#"
    [tasks.greet]
    run = "echo greet {{ who }}"
    [[tasks.greet.args]]
    name = "who"
    positional = true

    [tasks.hello]
    run = "echo hello {{ who }}"
    [[tasks.hello.args]]
    name = "who"
    positional = true
    default = "world"

    [tasks.files]
    run = "printf '[%s]' {{ paths }}; echo"
    [[tasks.files.args]]
    name = "paths"
    type = "list"
    positional = true

    [tasks.copy]
    run = "echo copy {{ from }} {{ to }}"
    [[tasks.copy.args]]
    name = "from"
    positional = true
    [[tasks.copy.args]]
    name = "to"
    positional = true

    [tasks.mytime]
    run = "echo mytime"

    [tasks.build]
    run = "echo build {{ release }}"
    [[tasks.build.args]]
    name = "release"
    type = "bool"
    "#;

fn positional(args: &[&str]) -> common::Ran {
    let mut all = vec!["-q"];
    all.extend_from_slice(args);
    Test::with(POSITIONAL).args(&all).run_with(&[])
}

#[test]
fn bare_tokens_fill_positionals_in_order() {
    positional(&["copy", "a", "b"]).code(0).stdout("copy a b\n");
}

#[test]
fn the_spec_example_runs_three_tasks() {
    positional(&["mytime", "build", "--release", "hello"])
        .code(0)
        .stdout("mytime\nbuild true\nhello world\n");
}

#[test]
fn a_required_positional_is_filled_even_by_a_task_name() {
    positional(&["greet", "mytime"])
        .code(0)
        .stdout("greet mytime\n");
}

#[test]
fn an_optional_positional_is_not_filled_by_a_task_name() {
    positional(&["hello", "mytime"])
        .code(0)
        .stdout("hello world\nmytime\n");
    positional(&["hello", "you", "mytime"])
        .code(0)
        .stdout("hello you\nmytime\n");
}

#[test]
fn a_positional_list_takes_bare_tokens_until_a_task_name() {
    positional(&["files", "a", "b c", "./x", "mytime"])
        .code(0)
        .stdout("[a][b c][./x]\nmytime\n");
    positional(&["files"]).code(0).stdout("[]\n");
}

#[test]
fn a_bare_token_after_the_positionals_must_name_a_task() {
    let ran = positional(&["copy", "a", "b", "c"]);
    ran.code(2).stderr_has("unknown task `c`");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn double_dash_passes_the_rest_verbatim_as_extra() {
    Test::with(
        r#"
        [tasks.words]
        run = "printf '[%s]' {{ extra }}; echo"
        [tasks.mytime]
        run = "echo mytime"
        "#,
    )
    .args(&[
        "-q",
        "words",
        "--",
        "-n",
        "two words",
        "x; echo pwned",
        "--",
        "mytime",
    ])
    .expect("[-n][two words][x; echo pwned][--][mytime]\n", "", 0);
}

#[test]
fn help_after_a_task_prints_its_help_and_runs_nothing() {
    let mut texts = Vec::new();
    for flag in ["-h", "--help"] {
        let t = Test::with(DEPLOY).args(&["deploy", flag]);
        let ran = t.code(0);
        assert_eq!(ran.stderr_text(), "");
        assert!(!t.path().join("ran").exists());
        texts.push(ran.stdout_text().to_string());
    }
    assert_eq!(texts[0], texts[1]);
    insta::assert_snapshot!(texts[0]);
}

#[test]
fn help_works_even_with_a_required_argument_missing_and_other_tasks() {
    let t = Test::with(DEPLOY).args(&["build", "deploy", "--help"]);
    let ran = t.code(0);
    ran.stdout_has("Usage: tasker deploy <target>");
    assert!(!t.path().join("ran").exists());
}

// Point 6: each error names the task, exits 2, and nothing runs: `build`
// goes first on the command line and would create `ran`.

fn fails(args: &[&str]) -> String {
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    let t = Test::with(DEPLOY).args(&all);
    let ran = t.code(2);
    assert_eq!(ran.stdout_text(), "", "something ran");
    assert!(!t.path().join("ran").exists(), "something ran");
    assert!(
        !ran.stderr_text().contains("panicked"),
        "{}",
        ran.stderr_text()
    );
    ran.stderr_text().to_string()
}

#[test]
fn error_unknown_task_suggests_the_closest() {
    let err = fails(&["deplyo", "prod"]);
    assert!(err.contains("unknown task `deplyo`"), "{err}");
    assert!(err.contains("did you mean `deploy`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_unknown_flag_lists_the_tasks_flags() {
    let err = fails(&["deploy", "prod", "--prot", "1"]);
    assert!(err.contains("`deploy`"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_unknown_short_flag() {
    let err = fails(&["deploy", "prod", "-x"]);
    assert!(err.contains("unknown flag `-x` for task `deploy`"), "{err}");
}

#[test]
fn error_missing_required_argument() {
    let err = fails(&["deploy", "--port", "1"]);
    assert!(err.contains("`deploy`") && err.contains("target"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_value_not_an_int() {
    let err = fails(&["deploy", "prod", "--port", "eighty"]);
    assert!(err.contains("`deploy`") && err.contains("eighty"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_value_not_a_float() {
    let err = fails(&["deploy", "prod", "--scale", "half"]);
    assert!(err.contains("`deploy`") && err.contains("half"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_value_outside_choices() {
    let err = fails(&["deploy", "stagin"]);
    assert!(err.contains("did you mean `staging`?"), "{err}");
    insta::assert_snapshot!(err);
}

#[test]
fn error_flag_given_twice() {
    let err = fails(&["deploy", "prod", "--port", "1", "-p", "2"]);
    assert!(err.contains("twice") && err.contains("`deploy`"), "{err}");
    insta::assert_snapshot!(err);
    let err = fails(&["deploy", "prod", "-d", "--no-dry-run"]);
    assert!(err.contains("twice"), "{err}");
    let err = fails(&["deploy", "prod", "--target", "staging"]);
    assert!(err.contains("twice"), "{err}");
}

#[test]
fn error_flag_without_its_value() {
    let err = fails(&["deploy", "prod", "--port"]);
    assert!(err.contains("needs a value"), "{err}");
}

#[test]
fn error_value_given_to_a_bool_flag() {
    let err = fails(&["deploy", "prod", "--dry-run=yes"]);
    assert!(err.contains("takes no value"), "{err}");
}

#[test]
fn error_flag_before_any_task() {
    let ran = Test::with(DEPLOY).args(&["--bogus"]).code(2);
    assert!(!ran.stderr_text().contains("panicked"));
}

#[test]
fn calls_in_deps_use_the_same_parser() {
    Test::with(
        r#"
        [tasks.all]
        deps = ["deploy prod -t x --tag 'y z' -vv"]
        run = "true"
        [tasks.deploy]
        run = "printf '%s\n' {{ target }} {{ tag | join(',') }} {{ verbose }}"
        [[tasks.deploy.args]]
        name = "target"
        positional = true
        [[tasks.deploy.args]]
        name = "tag"
        type = "list"
        short = "t"
        [[tasks.deploy.args]]
        name = "verbose"
        type = "count"
        short = "v"
        "#,
    )
    .args(&["-q", "all"])
    .expect("prod\nx,y z\n2\n", "", 0);
}

mod never_panics {
    use proptest::prelude::*;

    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("deploy".to_string()),
            Just("build".to_string()),
            Just("--".to_string()),
            Just("-h".to_string()),
            Just("--port".to_string()),
            Just("--port=".to_string()),
            Just("-vv".to_string()),
            Just("-p".to_string()),
            Just("-tx".to_string()),
            Just("--no-dry-run".to_string()),
            Just("--dry-run=x".to_string()),
            Just("-1".to_string()),
            Just("prod".to_string()),
            "-{0,2}[a-z=é0-9-]{0,6}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever the words, tasker answers with a status, never a panic
        /// (101) or a crash.
        #[test]
        fn parsing_never_panics(words in proptest::collection::vec(word(), 0..7)) {
            let words: Vec<String> = words.into_iter().map(|w| w.replace('\0', "")).collect();
            let mut all = vec!["-n".to_string(), "-q".to_string()];
            all.extend(words);
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            let ran = super::Test::with(super::DEPLOY).args(&refs).run_with(&[]);
            prop_assert!(ran.exit_code() == 0 || ran.exit_code() == 2, "code {}: {}", ran.exit_code(), ran.stderr_text());
            prop_assert!(!ran.stderr_text().contains("panicked"), "{}", ran.stderr_text());
            // An error is said on stderr only; a success may list or help.
            let stdout = ran.stdout_text();
            prop_assert!(ran.exit_code() == 0 || stdout.is_empty(), "{}", stdout);
        }
    }
}

/// A task without flags, a task with a positional, and one whose run reads
/// the words after `--`.
const MISPLACED: &str = r#"
    [tasks.build]
    run = "echo build release={{ release }}"
    [[tasks.build.args]]
    name = "release"
    type = "bool"
    [tasks.deploy]
    run = "echo deploy {{ target }}"
    [[tasks.deploy.args]]
    name = "target"
    positional = true
    [tasks.lint]
    run = "echo lint"
    [tasks.pytest]
    run = "echo pytest {{ extra }}"
    "#;

#[test]
fn a_tasker_option_after_a_task_says_to_put_it_first() {
    let ran = Test::with(MISPLACED).args(&["build", "-n"]).expect(
        "",
        "
        error: unknown flag `-n` for task `build`
        help: `-n` (--dry-run) is an option of tasker itself: put it before the first task, as in `tasker -n build`
        help: the flags of `build` are: --release
        ",
        2,
    );
    let ran2 = Test::with(MISPLACED)
        .args(&["deploy", "staging", "-y"])
        .code(2);
    insta::assert_snapshot!(format!("{}{}", ran.stderr_text(), ran2.stderr_text()));
    // Long forms are recognised too; a task's own `-n` would win.
    Test::with(MISPLACED)
        .args(&["build", "--keep-going"])
        .code(2)
        .stderr_has("`--keep-going` is an option of tasker itself: put it before the first task, as in `tasker --keep-going build`");
}

#[test]
fn a_task_flag_before_the_task_says_to_put_it_after() {
    let ran = Test::with(MISPLACED).args(&["--release", "build"]).expect(
        "",
        "
        error: unknown option `--release` of tasker
        help: `--release` is a flag of task `build`: a task's flags go after its name, as in `tasker build --release`
        ",
        2,
    );
    assert!(!ran.stderr_text().contains("-- --release"));
    // Neither tasker's nor the task's: the nearest of tasker's options.
    let other = Test::with(MISPLACED).args(&["--dry-runn", "build"]).code(2);
    insta::assert_snapshot!(format!("{}{}", ran.stderr_text(), other.stderr_text()));
}

#[test]
fn words_after_double_dash_for_a_task_that_never_reads_them_are_an_error() {
    let ran = Test::with(MISPLACED)
        .args(&["lint", "--", "--strict"])
        .expect(
            "",
            "
            error: task `lint` does not read the words after `--` (--strict)
            help: they reach a task as `{{ extra }}`, and no command of `lint` uses it; to pass them on, write `{{ extra }}` in its `run`
            ",
            2,
        );
    insta::assert_snapshot!(ran.stderr_text());
    Test::with(MISPLACED)
        .args(&["-q", "pytest", "--", "-x", "a b"])
        .expect("pytest -x a b\n", "", 0);
}

#[test]
fn required_false_makes_an_argument_optional_without_a_default() {
    let test = Test::with(
        r#"
        [tasks.greet]
        run = "echo hello{% if name %} {{ name }}{% endif %}{% if times is not none %} x{{ times }}{% endif %}"
        [[tasks.greet.args]]
        name = "name"
        positional = true
        required = false
        [[tasks.greet.args]]
        name = "times"
        type = "int"
        required = false
        "#,
    );
    let run = |args: &[&str]| {
        let mut all = vec!["-q"];
        all.extend(args);
        common::output_of(test.command().args(&all))
    };
    assert_eq!(String::from_utf8_lossy(&run(&["greet"]).stdout), "hello\n");
    assert_eq!(
        String::from_utf8_lossy(&run(&["greet", "Ann", "--times", "2"]).stdout),
        "hello Ann x2\n"
    );
    let listed = common::output_of(test.command().args(["-l", "--json"]));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(json["tasks"][0]["args"][0]["required"], false);
    assert_eq!(
        json["tasks"][0]["args"][0]["default"],
        serde_json::Value::Null
    );
    let listed = common::output_of(test.command().arg("-l"));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("greet [name] [--times TIMES]"));
}

#[test]
fn required_is_refused_where_it_means_nothing() {
    let ran = Test::with(
        r#"
        [tasks.t]
        run = "true"
        [[tasks.t.args]]
        name = "n"
        default = "x"
        required = false
        "#,
    )
    .arg("t")
    .code(2);
    ran.stderr_has("an argument with a `default` cannot set `required`")
        .stderr_has("tasks.toml:6:12");
    let bool_ran = Test::with(
        r#"
        [tasks.t]
        run = "true"
        [[tasks.t.args]]
        name = "b"
        type = "bool"
        required = true
        "#,
    )
    .arg("t")
    .run_with(&[]);
    bool_ran
        .code(2)
        .stderr_has("a bool argument cannot set `required`");
    insta::assert_snapshot!(format!("{}{}", ran.stderr_text(), bool_ran.stderr_text()));
}

#[test]
fn a_value_reads_the_same_in_help_errors_and_commands() {
    // One value-to-text function: a float 2.0 is `2.0` everywhere.
    let toml = r#"
        [tasks.t]
        run = "echo {{ ratio }}"
        [[tasks.t.args]]
        name = "ratio"
        type = "float"
        default = 2.0
        choices = [2.0, 0.5]
        "#;
    Test::with(toml).args(&["-q", "t"]).expect("2.0\n", "", 0);
    Test::with(toml)
        .args(&["t", "--help"])
        .code(0)
        .stdout_has("[float, default: 2.0, choices: 2.0, 0.5]");
    Test::with(toml)
        .args(&["-q", "t", "--ratio", "3"])
        .code(2)
        .stderr_has("error: `3.0` is not a valid value for `--ratio` of task `t`")
        .stderr_has("choose one of: 2.0, 0.5");
}
