//! SPEC 4: templates, quoting that is safe by default, vars.
use crate::common;
use common::Test;

const ECHO_ARG: &str = r#"
    [tasks.show]
    run = "printf '[%s]' {{ v }}; echo"
    [[tasks.show.args]]
    name = "v"
    positional = true
    "#;

#[test]
fn an_argument_with_a_command_stays_one_harmless_word() {
    let t = Test::with(ECHO_ARG).args(&["-q", "show", "x; touch pwned"]);
    t.expect("[x; touch pwned]\n", "", 0);
    assert!(!t.path().join("pwned").exists());
    let t = Test::with(ECHO_ARG).args(&["-q", "show", "$(touch pwned2)`touch pwned3`"]);
    t.expect("[$(touch pwned2)`touch pwned3`]\n", "", 0);
    assert!(!t.path().join("pwned2").exists());
    assert!(!t.path().join("pwned3").exists());
}

#[test]
fn the_echo_shows_the_quoted_command() {
    Test::with(ECHO_ARG).args(&["show", "a b"]).expect(
        "[a b]\n",
        "[show] $ printf '[%s]' 'a b'; echo\n",
        0,
    );
}

#[test]
fn a_value_with_spaces_stays_one_argument() {
    Test::with(ECHO_ARG)
        .args(&["-q", "show", "two  spaced words"])
        .expect("[two  spaced words]\n", "", 0);
}

#[test]
fn a_list_becomes_its_elements_each_quoted() {
    Test::with(
        r#"
        [tasks.show]
        run = "printf '[%s]' {{ items }}; echo"
        [[tasks.show.args]]
        name = "items"
        type = "list"
        positional = true
        "#,
    )
    .args(&["-q", "show", "a b", "c", "*", "'q'"])
    .expect("[a b][c][*]['q']\n", "", 0);
}

#[test]
fn safe_inserts_unquoted() {
    Test::with(
        r#"
        [tasks.show]
        run = "echo {{ v | safe }}"
        [[tasks.show.args]]
        name = "v"
        default = "a   b; echo second"
        "#,
    )
    .args(&["-q", "show"])
    .expect("a b\nsecond\n", "", 0);
}

#[test]
fn cmd_elements_are_unquoted_and_empty_ones_dropped() {
    Test::with(
        r#"
        [tasks.show]
        run = [{ cmd = ["printf", "[%s]", "{{ v }}", "{% if flag %}--flag{% endif %}", "{{ items }}", "x{{ v }}y"] }]
        [[tasks.show.args]]
        name = "v"
        default = "a b'c"
        [[tasks.show.args]]
        name = "flag"
        type = "bool"
        [[tasks.show.args]]
        name = "items"
        type = "list"
        "#,
    )
    .args(&["-q", "show", "--items", "1 2", "--items", "3"])
    .expect("[a b'c][1 2][3][xa b'cy]", "", 0);
}

#[test]
fn env_dir_and_vars_are_unquoted() {
    let t = Test::with(
        r#"
        [vars]
        greeting = "hello {{ who }}"
        who = "big world"
        [tasks.show]
        dir = "{{ sub }}"
        env = { GREETING = "{{ greeting }}!" }
        run = ["printf '%s\n' \"$GREETING\" {{ greeting }}", "basename \"$PWD\""]
        [[tasks.show.args]]
        name = "sub"
        default = "a dir"
        "#,
    );
    std::fs::create_dir(t.path().join("a dir")).unwrap();
    t.args(&["-q", "show"])
        .expect("hello big world!\nhello big world\na dir\n", "", 0);
}

#[test]
fn confirm_text_is_unquoted() {
    Test::with(
        r#"
        [tasks.drop]
        confirm = "Drop {{ db }}?"
        run = "echo dropped"
        [[tasks.drop.args]]
        name = "db"
        default = "the db"
        "#,
    )
    .args(&["drop"])
    .code(1)
    .stderr_has("Drop the db?");
}

#[test]
fn an_unknown_name_is_an_error_before_anything_runs() {
    let t = Test::with(
        r#"
        [tasks.first]
        run = "touch ran"
        [tasks.deploy]
        run = "echo {{ targte }}"
        [[tasks.deploy.args]]
        name = "target"
        default = "x"
        "#,
    )
    .args(&["first", "deploy"]);
    let ran = t.code(2);
    ran.stderr_has("`targte`").stderr_has("`deploy`");
    assert_eq!(ran.stdout_text(), "");
    assert!(!t.path().join("ran").exists());
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn an_unknown_env_key_is_an_error_when_rendered() {
    let ran = Test::with(
        r#"
        [tasks.show]
        run = "echo {{ env.SURELY_NOT_SET_ANYWHERE }}"
        "#,
    )
    .args(&["show"])
    .code(2);
    ran.stderr_has("SURELY_NOT_SET_ANYWHERE");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn vars_use_vars_and_env() {
    Test::with(
        r#"
        [vars]
        name = "tasker"
        full = "{{ name }}-{{ env.MY_VERSION }}"
        [tasks.show]
        run = "echo {{ full }}"
        "#,
    )
    .env("MY_VERSION", "9")
    .args(&["-q", "show"])
    .expect("tasker-9\n", "", 0);
}

#[test]
fn a_var_that_env_reads_sees_the_environment_below_env_whoever_reads_it_first() {
    // `who` is read by `[env]` (through `greeting`), so it sees the
    // environment below `[env]`: GREETING unset. The first step reads it
    // before anything built `[env]`, the second only through `$GREETING`;
    // both see the same values, and each `sh` runs once.
    let test = Test::with(
        r#"
        [env]
        GREETING = "hi {{ greeting }}"
        [vars]
        who = { sh = "echo ran >> sh.log; echo ${GREETING:-unset}" }
        greeting = "{{ who }}!"
        other = { sh = "echo $GREETING" }
        [tasks.first]
        run = "echo {{ who }} / $GREETING / {{ other }}"
        [tasks.second]
        run = "echo $GREETING / {{ who }}"
        "#,
    )
    .args(&["-q", "first", "second"]);
    test.expect("unset / hi unset! / hi unset!\nhi unset! / unset\n", "", 0);
    assert_eq!(test.read("sh.log"), "ran\n");
}

#[test]
fn an_included_files_env_reads_a_root_var_in_the_roots_environment() {
    // The included file's `[env]` reads the root's var `base`, which reads
    // `env`: it sees the root's `[env]` (below the included one), not only
    // the environment tasker started with.
    Test::with(
        r#"
        [env]
        LEVEL = "root"
        [vars]
        base = "level-{{ env.LEVEL }}"
        [include]
        sub = "sub/tasks.toml"
        "#,
    )
    .file(
        "sub/tasks.toml",
        r#"
        [env]
        FROM = "{{ base }}"
        [tasks.show]
        run = "echo $FROM"
        "#,
    )
    .args(&["-q", "sub:show"])
    .expect("level-root\n", "", 0);
}

#[test]
fn builtin_values_are_in_scope() {
    Test::with(
        r#"
        [tasks.show]
        run = "printf '%s\n' {{ task }} {{ root }} {{ invocation_dir }} {{ os }}"
        "#,
    )
    .cwd("sub")
    .args(&["-q", "show"])
    .expect(
        &format!("show\n[TMP]\n[TMP]/sub\n{}\n", std::env::consts::OS),
        "",
        0,
    );
}

const SH_VAR: &str = r#"
    [vars]
    stamp = { sh = "echo ran >> side-effect; echo 42" }
    [tasks.uses]
    run = "echo {{ stamp }} {{ stamp }}"
    [tasks.also]
    run = "echo also {{ stamp }}"
    [tasks.plain]
    run = "echo plain"
    "#;

#[test]
fn sh_vars_do_not_run_for_a_listing_or_a_task_that_does_not_use_them() {
    let t = Test::with(SH_VAR).args(&["-l"]);
    t.expect(
        "Tasks in ./tasks.toml:\n    uses\n    also\n    plain\n",
        "",
        0,
    );
    assert!(!t.path().join("side-effect").exists());
    let t = Test::with(SH_VAR).args(&["-q", "plain"]);
    t.expect("plain\n", "", 0);
    assert!(!t.path().join("side-effect").exists());
    let t = Test::with(SH_VAR).args(&["--check"]);
    t.expect("", "./tasks.toml: ok (3 tasks)\n", 0);
    assert!(!t.path().join("side-effect").exists());
}

#[test]
fn sh_vars_run_once_per_invocation() {
    let t = Test::with(SH_VAR).args(&["-q", "uses", "also"]);
    t.expect("42 42\nalso 42\n", "", 0);
    assert_eq!(t.read("side-effect"), "ran\n");
}

#[test]
fn sh_vars_run_for_a_dry_run() {
    let t = Test::with(SH_VAR).args(&["-n", "uses"]);
    t.expect("", "[uses] $ echo 42 42\n", 0);
    assert_eq!(t.read("side-effect"), "ran\n");
}

#[test]
fn set_never_runs_the_sh_of_a_var() {
    let t = Test::with(SH_VAR).args(&["-q", "--set", "stamp=7", "uses"]);
    t.expect("7 7\n", "", 0);
    assert!(!t.path().join("side-effect").exists());
}

#[test]
fn a_failing_sh_var_fails_before_the_run() {
    let ran = Test::with(
        r#"
        [vars]
        v = { sh = "exit 3" }
        [tasks.uses]
        run = "echo {{ v }}"
        "#,
    )
    .args(&["uses"])
    .run_with(&[]);
    assert_ne!(ran.exit_code(), 0);
    ran.stderr_has("var `v`");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn a_cycle_among_vars_is_an_error() {
    let ran = Test::with(
        r#"
        [vars]
        a = "{{ b }}"
        b = "x{{ a }}"
        [tasks.show]
        run = "echo {{ a }}"
        "#,
    )
    .args(&["show"])
    .code(2);
    ran.stderr_has("cycle");
    assert_eq!(ran.stdout_text(), "");
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn if_for_and_filters_work() {
    Test::with(
        r#"
        [tasks.show]
        run = """
        {% for t in tags %}echo tag {{ t | upper }}
        {% endfor %}{% if release %}echo release{% else %}echo debug{% endif %}
        echo {{ name | replace("a", "o") }} {{ tags | length }} {{ name | default("x") }}
        """
        [[tasks.show.args]]
        name = "tags"
        type = "list"
        short = "t"
        [[tasks.show.args]]
        name = "release"
        type = "bool"
        [[tasks.show.args]]
        name = "name"
        default = "banana"
        "#,
    )
    .args(&["-q", "show", "-t", "a", "-t", "b c", "--release"])
    .expect("tag A\ntag B C\nrelease\nbonono 2 banana\n", "", 0);
}

#[test]
fn int_and_float_arguments_are_numbers_in_templates() {
    Test::with(
        r#"
        [tasks.show]
        run = "echo {{ w * 2 }} {{ (w * s) | int }} {% if w > 100 %}big{% endif %}"
        [[tasks.show.args]]
        name = "w"
        type = "int"
        default = 150
        [[tasks.show.args]]
        name = "s"
        type = "float"
        default = 0.5
        "#,
    )
    .args(&["-q", "show"])
    .expect("300 75 big\n", "", 0);
}

#[test]
fn extra_is_a_list_of_words() {
    Test::with(
        r#"
        [tasks.show]
        run = "printf '[%s]' {{ extra }}; echo {{ extra | length }}"
        "#,
    )
    .args(&["-q", "show", "--", "a b", "$HOME", ""])
    .expect("[a b][$HOME][]3\n", "", 0);
}

mod quoting_property {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Any string given as an argument reaches the command unchanged,
        /// as one word.
        #[test]
        fn any_argument_reaches_the_command_as_one_word(
            v in prop_oneof![
                any::<String>(),
                "[ a-z'\"$`;|&<>(){}\\\\*?!#~=%\\n\\t-]{0,16}",
                "[\\u{80}-\\u{10FFFF}]{0,4}",
            ]
        ) {
            let v = v.replace('\0', "");
            let t = super::Test::with(
                r#"
                [tasks.show]
                run = "printf '%s' {{ val }}"
                [[tasks.show.args]]
                name = "val"
                "#,
            )
            .args(&["-q", "show", &format!("--val={v}")]);
            let ran = t.run_with(&[]);
            prop_assert_eq!(ran.exit_code(), 0, "stderr: {}", ran.stderr_text());
            prop_assert_eq!(ran.stdout_text(), v);
        }
    }
}

// ---------------------------------------------------- task vars, defaults

#[test]
fn task_vars_read_arguments_and_vars_and_are_evaluated_once_only_when_used() {
    let file = r#"
        [vars]
        major = "1"

        [tasks.release]
        vars = { version = { sh = "echo run >> evaluated; echo {{ major }}.{{ level }}" }, tag = "v{{ version }}" }
        confirm = "Release {{ tag }}?"
        run = ["echo {{ tag }}", "echo {{ version }}"]
        [[tasks.release.args]]
        name = "level"
        type = "int"
        default = 2

        [tasks.other]
        vars = { never = { sh = "echo no >> evaluated" } }
        run = "echo other"
        "#;
    let t = Test::with(file).args(&["-q", "-y", "release", "--level", "7"]);
    t.expect("v1.7\n1.7\n", "", 0);
    assert_eq!(t.read("evaluated"), "run\n");
    let t = Test::with(file).args(&["-q", "other"]);
    t.expect("other\n", "", 0);
    assert!(!t.exists("evaluated"));
    Test::with(file).args(&["-n", "release"]).expect(
        "",
        "
            [release] would ask: Release v1.2? [y/N]
            [release] $ echo v1.2
            [release] $ echo 1.2
            ",
        0,
    );
}

#[test]
fn task_vars_are_checked_and_a_cycle_among_them_is_an_error() {
    Test::with(
        r#"
        [tasks.t]
        vars = { a = "{{ b }}", b = "{{ a }}" }
        run = "echo {{ a }}"
        "#,
    )
    .arg("--check")
    .code(2)
    .stderr_has("error: cycle among the vars of task `t`: a -> b -> a");
    Test::with(
        r#"
        [tasks.t]
        vars = { a = "{{ nope }}" }
        run = "echo {{ a }}"
        "#,
    )
    .arg("--check")
    .code(2)
    .stderr_has("nope");
    Test::with(
        r#"
        [tasks.t]
        vars = { n = "1" }
        run = "echo {{ n }}"
        [[tasks.t.args]]
        name = "n"
        "#,
    )
    .arg("--check")
    .code(2)
    .stderr_has("error: task `t` has both an argument and a var named `n`");
}

#[test]
fn a_templated_default_is_rendered_with_vars_task_vars_and_earlier_arguments() {
    let file = r#"
        [vars]
        branch = { sh = "echo main" }

        [tasks.deploy]
        vars = { suffix = "-{{ region }}" }
        run = "echo {{ target }} {{ port }}"
        [[tasks.deploy.args]]
        name = "region"
        default = "eu"
        [[tasks.deploy.args]]
        name = "target"
        default = "{{ branch }}{{ suffix }}"
        [[tasks.deploy.args]]
        name = "port"
        type = "int"
        default = "{{ 8000 + 80 }}"
        "#;
    Test::with(file)
        .args(&["-q", "deploy"])
        .expect("main-eu 8080\n", "", 0);
    Test::with(file)
        .args(&["-q", "deploy", "--region", "us", "--port", "1"])
        .expect("main-us 1\n", "", 0);
    Test::with(file)
        .args(&["-q", "deploy", "--target", "x"])
        .expect("x 8080\n", "", 0);
    // Help shows the default as written.
    Test::with(file)
        .args(&["deploy", "--help"])
        .code(0)
        .stdout_has("{{ branch }}{{ suffix }}");
    // A default that renders to a value of the wrong type is a clear error.
    Test::with(
        r#"
        [tasks.t]
        run = "echo {{ n }}"
        [[tasks.t.args]]
        name = "n"
        type = "int"
        default = "{{ 'many' }}"
        "#,
    )
    .args(&["t"])
    .code(2)
    .stderr_has(
        "the default of argument `n` of task `t` renders to `many`: `many` is not an integer",
    );
}

#[test]
fn the_power_operator_works_on_ints_and_floats() {
    // Floats reach the C library's `pow`, which the binary defines itself
    // (src/main.rs).
    Test::with(
        r#"
        [tasks.p]
        run = "echo {{ 2 ** 10 }} {{ 2 ** 0.5 }} {{ 10 ** -2 }} {{ 2.5 ** 2 }}"
        "#,
    )
    .args(&["-q", "p"])
    .expect("1024 1.4142135623730951 0.01 6.25\n", "", 0);
}

/// The binary defines `pow` itself, so glibc's maths library is not
/// loaded at every start (src/main.rs).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_binary_does_not_load_the_maths_library() {
    let out = std::process::Command::new("readelf")
        .args(["-d", env!("CARGO_BIN_EXE_tasker")])
        .output()
        .expect("readelf (binutils) runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("libc.so.6"), "{text}");
    assert!(!text.contains("libm.so"), "{text}");
}
