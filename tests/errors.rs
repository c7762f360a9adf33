//! SPEC 10: a corpus of broken files and command lines. Each must exit 2
//! with a located, rustc-shaped message (file:line:col for file errors),
//! never a panic and never a debug dump.
use crate::common;
use common::Test;

/// (name, tasks.toml, what the message must contain). Every broken thing
/// is in task `a` (or global), so `tasker a` and `tasker --check` must both
/// refuse it.
const FILES: &[(&str, &str, &str)] = &[
    ("toml_unclosed_table", "[tasks.a\nrun = \"x\"\n", "invalid TOML"),
    ("toml_duplicate_key", "[tasks.a]\nrun = \"a\"\nrun = \"b\"\n", "invalid TOML"),
    ("toml_bad_string", "[tasks.a]\nrun = \"oops\n", "invalid TOML"),
    ("unknown_top_key", "[task.a]\nrun = \"x\"\n[tasks.a]\nrun = \"x\"\n", "did you mean `tasks`?"),
    ("unknown_task_key", "[tasks.a]\nhepl = \"x\"\nrun = \"x\"\n", "did you mean `help`?"),
    ("unknown_settings_key", "[settings]\nshel = [\"bash\", \"-c\"]\n[tasks.a]\nrun = \"x\"\n", "did you mean `shell`?"),
    ("unknown_arg_key", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"n\"\ndefualt = 1\n", "did you mean `default`?"),
    ("unknown_step_key", "[tasks.a]\nrun = [{ sh = \"x\", ignore_failur = true }]\n", "did you mean `ignore_failure`?"),
    ("unknown_respond_key", "[tasks.a]\nrun = \"x\"\nrespond = [{ on = \"x\", sned = \"y\" }]\n", "did you mean `send`?"),
    ("unknown_var_table_key", "[vars]\nv = { shh = \"date\" }\n[tasks.a]\nrun = \"x\"\n", "did you mean `sh`?"),
    ("wrong_type_run", "[tasks.a]\nrun = 5\n", "must be a string or an array of steps"),
    ("wrong_type_deps", "[tasks.b]\nrun = \"x\"\n[tasks.a]\ndeps = \"b\"\nrun = \"x\"\n", "must be an array"),
    ("wrong_type_bool", "[tasks.a]\nquiet = \"yes\"\nrun = \"x\"\n", "must be true or false"),
    ("wrong_type_jobs", "[settings]\njobs = \"4\"\n[tasks.a]\nrun = \"x\"\n", "must be an integer"),
    ("wrong_type_task", "[tasks]\na = \"echo\"\n", "must be a table"),
    ("wrong_type_step", "[tasks.a]\nrun = [1]\n", "a string or a table"),
    ("zero_jobs", "[settings]\njobs = 0\n[tasks.a]\nrun = \"x\"\n", "at least 1"),
    ("unknown_dep", "[tasks.build]\nrun = \"x\"\n[tasks.a]\ndeps = [\"biuld\"]\nrun = \"x\"\n", "did you mean `build`?"),
    ("unknown_post", "[tasks.build]\nrun = \"x\"\n[tasks.a]\npost = [\"biuld\"]\nrun = \"x\"\n", "did you mean `build`?"),
    ("unknown_task_step", "[tasks.build]\nrun = \"x\"\n[tasks.a]\nrun = [{ task = \"biuld --release\" }]\n", "did you mean `build`?"),
    ("unknown_templated_call", "[tasks.build]\nrun = \"x\"\n[tasks.a]\ndeps = [\"biuld {{ task }}\"]\nrun = \"x\"\n", "did you mean `build`?"),
    ("dep_with_unknown_flag", "[tasks.build]\nrun = \"x\"\n[[tasks.build.args]]\nname = \"release\"\ntype = \"bool\"\n[tasks.a]\ndeps = [\"build --relese\"]\nrun = \"x\"\n", "did you mean `--release`?"),
    ("dep_missing_argument", "[tasks.build]\nrun = \"x\"\n[[tasks.build.args]]\nname = \"target\"\n[tasks.a]\ndeps = [\"build\"]\nrun = \"x\"\n", "needs its argument `target`"),
    ("dep_unbalanced_quotes", "[tasks.build]\nrun = \"x\"\n[tasks.a]\ndeps = [\"build 'x\"]\nrun = \"x\"\n", "unbalanced quotes"),
    ("deps_use_task_results", "[tasks.v]\nrun = \"x\"\n[tasks.b]\nrun = \"x\"\n[[tasks.b.args]]\nname = \"x\"\n[tasks.a]\ndeps = [\"b {{ tasks.v.stdout }}\"]\nrun = \"x\"\n", "task = "),
    ("arg_default_wrong_type", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"port\"\ntype = \"int\"\ndefault = \"eighty\"\n", "must be an integer"),
    ("arg_duplicate_name", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"n\"\n[[tasks.a.args]]\nname = \"n\"\n", "declares argument `n` twice"),
    ("arg_duplicate_short", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"n\"\nshort = \"x\"\n[[tasks.a.args]]\nname = \"m\"\nshort = \"x\"\n", "share the short flag `-x`"),
    ("arg_positional_list_not_last", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"files\"\ntype = \"list\"\npositional = true\n[[tasks.a.args]]\nname = \"dest\"\npositional = true\n", "must be the last positional"),
    ("arg_choices_exclude_default", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"env\"\ndefault = \"dev\"\nchoices = [\"staging\", \"prod\"]\n", "reserved"),
    ("arg_choices_exclude_default2", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"target\"\ndefault = \"dev\"\nchoices = [\"staging\", \"prod\"]\n", "not one of its choices"),
    ("arg_unknown_type", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"n\"\ntype = \"integer\"\n", "unknown argument type `integer`"),
    ("arg_no_name", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\ntype = \"int\"\n", "has no `name`"),
    ("arg_bad_name", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"my-arg\"\n", "invalid argument name `my-arg`"),
    ("arg_positional_bool", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"b\"\ntype = \"bool\"\npositional = true\n", "cannot be positional"),
    ("arg_positional_count_says_its_flag", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"verbose\"\ntype = \"count\"\npositional = true\n", "help: `verbose` is set with --verbose"),
    ("arg_short_h", "[tasks.a]\nrun = \"x\"\n[[tasks.a.args]]\nname = \"host\"\nshort = \"h\"\n", "reserved"),
    ("regex_extract", "[tasks.a]\nrun = \"x\"\nextract = { version = 'v(\\d+' }\n", "invalid regex"),
    ("regex_expect", "[tasks.a]\nrun = \"x\"\nexpect = [\"ok\", \"[unclosed\"]\n", "invalid regex"),
    ("regex_fail_on", "[tasks.a]\nrun = \"x\"\nfail_on = [\"*panic\"]\n", "invalid regex"),
    ("regex_respond", "[tasks.a]\nrun = \"x\"\nrespond = [{ on = \"(?P<\", send = \"y\" }]\n", "invalid regex"),
    ("regex_ready", "[tasks.a]\nrun = \"x\"\nbackground = true\nready = \"a{2,1}\"\n", "invalid regex"),
    ("template_unclosed_expr", "[tasks.a]\nrun = \"echo {{ x \"\n", "template syntax error"),
    ("template_unclosed_block", "[tasks.a]\nrun = \"{% if true %}echo\"\n", "template syntax error"),
    ("template_bad_filter", "[tasks.a]\nrun = \"echo {{ task | nosuchfilter }}\"\n", "nosuchfilter"),
    ("template_in_env", "[env]\nX = \"{{ oops \"\n[tasks.a]\nrun = \"x\"\n", "template syntax error"),
    ("template_non_ascii_at_error", "[tasks.a]\nrun = \"{% for t iné x %}{% endfor %}\"\n", "template syntax error"),
    ("template_in_var", "[vars]\nv = \"{% for %}\"\n[tasks.a]\nrun = \"echo {{ v }}\"\n", "template syntax error"),
    ("template_unknown_name", "[tasks.a]\nrun = [\"echo ok\", { cmd = [\"echo\", \"{{ nmae }}\"] }]\n[[tasks.a.args]]\nname = \"name\"\ndefault = \"x\"\n", "did you mean `name`?"),
    ("var_cycle", "[vars]\nx = \"{{ y }}\"\ny = \"{{ z }}\"\nz = \"{{ x }}\"\n[tasks.a]\nrun = \"echo {{ x }}\"\n", "cycle among vars: x -> y -> z -> x"),
    ("bad_task_name", "[tasks.\"bad name\"]\nrun = \"x\"\n[tasks.a]\nrun = \"x\"\n", "invalid task name"),
    ("bad_alias", "[tasks.a]\nrun = \"x\"\naliases = [\"a b\"]\n", "invalid task name"),
    ("alias_clash", "[tasks.b]\nrun = \"x\"\n[tasks.a]\nrun = \"x\"\naliases = [\"b\"]\n", "already a task"),
    ("bad_var_name", "[vars]\n\"1v\" = \"x\"\n[tasks.a]\nrun = \"x\"\n", "invalid var name `1v`"),
    ("reserved_var_name", "[vars]\ntasks = \"x\"\n[tasks.a]\nrun = \"x\"\n", "reserved"),
    ("unknown_output_mode", "[settings]\noutput = \"prefix\"\n[tasks.a]\nrun = \"x\"\n", "did you mean `prefixed`?"),
    ("unknown_platform", "[tasks.a]\nrun = \"x\"\nplatforms = [\"linx\"]\n", "did you mean `linux`?"),
    ("bad_duration", "[tasks.a]\nrun = \"x\"\ntimeout = \"5 minutes\"\n", "not a duration"),
    ("bad_retry_delay", "[tasks.a]\nrun = \"x\"\nretries = 2\nretry_delay = \"soon\"\n", "not a duration"),
    ("negative_retries", "[tasks.a]\nrun = \"x\"\nretries = -1\n", "between 0 and 4294967295"),
    ("huge_retries", "[tasks.a]\nrun = \"x\"\nretries = 4294967296\n", "`retries` of task `a` must be between 0 and 4294967295"),
    ("huge_timeout", "[tasks.a]\nrun = \"x\"\ntimeout = \"1e20\"\n", "`timeout` of task `a` is too large"),
    ("huge_timeout_units", "[tasks.a]\nrun = \"x\"\ntimeout = \"99999999999999999999h\"\n", "`timeout` of task `a` is too large"),
    ("huge_retry_delay", "[tasks.a]\nrun = \"x\"\nretries = 1\nretry_delay = \"1e300\"\n", "`retry_delay` of task `a` is too large"),
    ("huge_ready_timeout", "[tasks.a]\nrun = \"x\"\nbackground = true\nready_timeout = \"inf\"\n", "`ready_timeout` of task `a` is too large"),
    ("ready_without_background", "[tasks.a]\nrun = \"x\"\nready = \"listening\"\n", "`ready` of task `a` only applies to a service"),
    ("ready_timeout_without_background", "[tasks.a]\nrun = \"x\"\nbackground = false\nready_timeout = \"5s\"\n", "`ready_timeout` of task `a` only applies to a service"),
    ("interactive_service", "[tasks.a]\nrun = \"x\"\nbackground = true\ninteractive = true\n", "`interactive` of task `a` cannot be true for a service"),
    ("matrix_too_large", "[tasks.a]\nrun = \"x\"\nmatrix = { a = [1,2,3,4,5,6,7,8,9,10], b = [1,2,3,4,5,6,7,8,9,10], c = [1,2,3,4,5,6,7,8,9,10], d = [1,2,3,4,5,6,7,8,9,10], e = [1,2,3,4,5,6,7,8,9,10], f = [1,2] }\n", "expands to 200000 runs, more than the 100000 allowed"),
    ("bad_hide", "[tasks.a]\nrun = \"x\"\nhide = \"both\"\n", "must be true, false"),
    ("unknown_default_task", "[settings]\ndefault = \"biuld\"\n[tasks.build]\nrun = \"x\"\n[tasks.a]\nrun = \"x\"\n", "did you mean `build`?"),
    ("step_two_kinds", "[tasks.a]\nrun = [{ sh = \"x\", cmd = [\"y\"] }]\n", "exactly one of"),
    ("step_no_kind", "[tasks.a]\nrun = [{ dir = \"x\" }]\n", "needs one of"),
    ("empty_cmd", "[tasks.a]\nrun = [{ cmd = [] }]\n", "at least a program"),
    ("empty_shell", "[tasks.a]\nshell = []\nrun = \"x\"\n", "at least a program"),
    ("matrix_arg_clash", "[tasks.a]\nrun = \"x\"\nmatrix = { n = [1, 2] }\n[[tasks.a.args]]\nname = \"n\"\ndefault = \"1\"\n", "both an argument and a matrix entry"),
    ("empty_matrix", "[tasks.a]\nrun = \"x\"\nmatrix = { n = [] }\n", "has no values"),
    ("extract_reserved", "[tasks.a]\nrun = \"x\"\nextract = { stdout = \"x\" }\n", "cannot be extracted"),
];

/// True when `text` looks like a Rust debug dump of a struct.
fn has_debug_dump(text: &str) -> bool {
    ["Error {", "Span {", "Some(", "kind:", "DeValue", "Spanned"]
        .iter()
        .any(|d| text.contains(d))
}

#[track_caller]
fn assert_clean_file_error(name: &str, stderr: &str, needle: &str) {
    assert!(!stderr.contains("panicked"), "{name}: panic\n{stderr}");
    assert!(!has_debug_dump(stderr), "{name}: debug dump\n{stderr}");
    assert!(stderr.starts_with("error: "), "{name}:\n{stderr}");
    assert!(
        stderr.contains(needle),
        "{name}: lacks {needle:?}\n{stderr}"
    );
    // ` --> ./tasks.toml:LINE:COL`, then the line with a marker under it.
    let at = stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> ./tasks.toml:"))
        .unwrap_or_else(|| panic!("{name}: no file:line:col\n{stderr}"));
    let mut parts = at.split(':');
    let line: usize = parts.next().unwrap().parse().expect("line");
    let col: usize = parts.next().unwrap().parse().expect("col");
    assert!(line >= 1 && col >= 1, "{name}: {at}");
    assert!(stderr.contains('^'), "{name}: no marker\n{stderr}");
}

#[test]
fn every_broken_file_is_a_located_error_for_check_and_for_a_run() {
    let mut seen = std::collections::HashSet::new();
    for &(name, toml, needle) in FILES {
        assert!(seen.insert(name), "duplicate case {name}");
        for args in [&["--check"][..], &["a"][..]] {
            let t = Test::with(toml).args(args);
            let ran = t.run_with(&[]);
            assert_eq!(
                ran.exit_code(),
                2,
                "{name} {args:?}: exit {}\n{}",
                ran.exit_code(),
                ran.stderr_text()
            );
            assert_eq!(ran.stdout_text(), "", "{name} {args:?}: something ran");
            assert_clean_file_error(name, ran.stderr_text(), needle);
        }
    }
    assert!(FILES.len() >= 30);
}

#[test]
fn a_template_error_at_a_non_ascii_character_marks_the_whole_character() {
    // Found by the loader fuzz target: the marker split `é` and the
    // error printer panicked.
    let ran = Test::with("[tasks.a]\nrun = \"{% for t in x %}é{% endfor é %}\"\n")
        .args(&["--check"])
        .code(2);
    assert_clean_file_error("non-ascii", ran.stderr_text(), "unexpected character");
    assert!(
        ran.stderr_text().contains(" --> ./tasks.toml:2:35\n"),
        "{}",
        ran.stderr_text()
    );
    let lines: Vec<&str> = ran.stderr_text().lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("{% endfor é %}"))
        .unwrap();
    let marked = lines[at][..lines[at].rfind('é').unwrap()].chars().count();
    assert_eq!(
        lines[at + 1].find('^'),
        Some(marked),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn listing_still_reports_load_errors() {
    // `-l` compiles no template, but every load error stops it.
    let ran = Test::with("[tasks.a]\nhepl = \"x\"\n")
        .args(&["-l"])
        .code(2);
    assert_clean_file_error("listing", ran.stderr_text(), "did you mean `help`?");
}

/// One snapshot per class of error: what a user reads, exactly.
#[test]
fn representative_errors_read_well() {
    let classes = [
        "toml_unclosed_table",
        "unknown_task_key",
        "wrong_type_run",
        "unknown_dep",
        "deps_use_task_results",
        "arg_default_wrong_type",
        "arg_duplicate_short",
        "arg_positional_list_not_last",
        "arg_choices_exclude_default2",
        "regex_extract",
        "template_unclosed_expr",
        "template_unknown_name",
        "template_bad_filter",
        "var_cycle",
        "bad_task_name",
        "unknown_output_mode",
        "unknown_platform",
        "bad_duration",
    ];
    let mut all = String::new();
    for class in classes {
        let (_, toml, _) = FILES.iter().find(|(n, _, _)| *n == class).unwrap();
        let ran = Test::with(toml).args(&["--check"]).code(2);
        all.push_str(&format!("=== {class}\n{}\n", ran.stderr_text()));
    }
    insta::assert_snapshot!(all);
}

/// Command-line errors name the task or argument; they have no file
/// location to show.
#[test]
fn command_line_errors_name_the_task_or_argument() {
    let toml = r#"
        [vars]
        version = "1"
        [tasks.deploy]
        run = "x"
        [[tasks.deploy.args]]
        name = "target"
        positional = true
        choices = ["staging", "prod"]
        [[tasks.deploy.args]]
        name = "port"
        type = "int"
        default = 1
        "#;
    let cases: &[(&[&str], &str)] = &[
        (&["deplyo"], "did you mean `deploy`?"),
        (&["deploy", "prod", "--prot", "1"], "did you mean `--port`?"),
        (&["deploy"], "needs its argument `target`"),
        (
            &["deploy", "prod", "--port", "x"],
            "`--port` of task `deploy`",
        ),
        (&["deploy", "qa"], "choose one of: staging, prod"),
        (
            &["deploy", "prod", "--port", "1", "--port", "2"],
            "given twice",
        ),
        (
            &["--set", "vresion=2", "deploy", "prod"],
            "did you mean `version`?",
        ),
        (&["--set", "novalue", "deploy", "prod"], "NAME=VALUE"),
        (&["-j", "zero", "deploy", "prod"], "not a number"),
        (&["--output", "fancy", "deploy", "prod"], "fancy"),
        (&["--bogus"], "--bogus"),
    ];
    for (args, needle) in cases {
        let ran = Test::with(toml).args(args).run_with(&[]);
        assert_eq!(ran.exit_code(), 2, "{args:?}: {}", ran.stderr_text());
        assert_eq!(ran.stdout_text(), "", "{args:?}");
        assert!(
            ran.stderr_text().contains(needle),
            "{args:?} lacks {needle:?}:\n{}",
            ran.stderr_text()
        );
        assert!(!ran.stderr_text().contains("panicked"), "{args:?}");
        assert!(
            !has_debug_dump(ran.stderr_text()),
            "{args:?}: {}",
            ran.stderr_text()
        );
    }
}

mod never_panics {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Arbitrary (mostly TOML-looking) files never make tasker panic:
        /// it loads them or reports an error.
        #[test]
        fn arbitrary_files_never_panic(
            lines in proptest::collection::vec(prop_oneof![
                Just("[tasks.a]".to_string()),
                Just("[[tasks.a.args]]".to_string()),
                Just("[settings]".to_string()),
                Just("[vars]".to_string()),
                "[a-z_]{1,8} = \"[^\"\\\\]{0,12}\"",
                "[a-z_]{1,8} = [0-9]{1,3}",
                "[a-z_]{1,8} = \\[\"[a-z{}% ]{0,8}\"\\]",
                Just("run = \"echo {{ x }}\"".to_string()),
                Just("name = \"x\"".to_string()),
                Just("type = \"list\"".to_string()),
                Just("positional = true".to_string()),
                any::<String>(),
            ], 0..8)
        ) {
            let toml = lines.join("\n").replace('\0', "");
            for args in [&["--check"][..], &["-l"][..]] {
                let t = super::Test::new().file("tasks.toml", &toml).args(args);
                let ran = t.run_with(&[]);
                prop_assert!(ran.exit_code() == 0 || ran.exit_code() == 2, "{args:?} exit {}:\n{}\n{}", ran.exit_code(), toml, ran.stderr_text());
                prop_assert!(!ran.stderr_text().contains("panicked"), "{}", ran.stderr_text());
                // --check says nothing on stdout; a listing starts with its heading.
                prop_assert!(
                    if args[0] == "-l" && ran.exit_code() == 0 {
                        ran.stdout_text().starts_with("Tasks in ")
                    } else {
                        ran.stdout_text().is_empty()
                    },
                    "{args:?}: {}",
                    ran.stdout_text()
                );
            }
        }
    }
}

#[test]
fn keys_from_other_runners_point_to_ours() {
    let cases = [
        (
            "[tasks.a]\ndescription = \"x\"\nrun = \"true\"\n",
            "`description` is what other task runners call it; tasker's key is `help`",
        ),
        (
            "[tasks.a]\ncmds = [\"true\"]\n",
            "`cmds` is what other task runners call it; tasker's key is `run`",
        ),
        (
            "[tasks.a]\nscript = \"true\"\n",
            "`script` is what other task runners call it; tasker's key is `run`",
        ),
        (
            "[tasks.a]\ndepends = [\"b\"]\nrun = \"true\"\n",
            "`depends` is what other task runners call it; tasker's key is `deps`",
        ),
        (
            "[tasks.a]\nneeds = [\"b\"]\nrun = \"true\"\n",
            "`needs` is what other task runners call it; tasker's key is `deps`",
        ),
        (
            "[tasks.a]\nrun = [{ script = \"true\" }]\n",
            "`script` is what other task runners call it; tasker's key is `sh`",
        ),
    ];
    let mut all = String::new();
    for (file, hint) in cases {
        let ran = common::Test::with(file).arg("a").code(2);
        ran.stderr_has(hint);
        assert!(
            !ran.stderr_text().contains("did you mean"),
            "{}",
            ran.stderr_text()
        );
        all.push_str(ran.stderr_text());
    }
    insta::assert_snapshot!(all);
}

#[test]
fn a_colon_in_a_task_name_points_at_include_namespaces() {
    Test::with(
        r#"
        [tasks."lint:fix"]
        run = "true"
        "#,
    )
    .arg("--check")
    .expect(
        "",
        r#"
        error: invalid task name `lint:fix`: `:` separates an include namespace
         --> ./tasks.toml:1:8
          |
        1 | [tasks."lint:fix"]
          |        ^^^^^^^^^^ `:` in a task name
        help: name it `lint-fix`, or put its tasks in a file of their own and include it: [include] lint = "lint.toml" makes its task `fix` run as `lint:fix`
        "#,
        2,
    );
}
