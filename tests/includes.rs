//! SPEC 9: `[include]`. An included file's tasks are named `ns:task`, call
//! each other by short names and the includer's with `:name`, see their
//! file's `[vars]` and `[env]` over the includer's, and run in their file's
//! directory. Errors name the included file; listings, help, `--json`,
//! `--check` and completion see the included tasks.
use crate::common;
use common::Test;

/// A root file including `docs`, which includes `api`.
fn project() -> Test {
    Test::with(
        r#"
        [vars]
        who = "root"
        shared = "from-root"

        [env]
        LEVEL = "root"

        [include]
        docs = "docs/tasks.toml"

        [tasks.build]
        help = "Build it"
        run = "echo build who={{ who }} level=$LEVEL"

        [tasks.all]
        help = "Everything"
        deps = ["docs:site"]
        run = "echo all"
        "#,
    )
    .file(
        "docs/tasks.toml",
        r#"
        [settings]
        shell = ["no-such-shell"]

        [vars]
        who = "docs"

        [env]
        LEVEL = "docs"

        [include]
        api = { path = "api/tasks.toml" }

        [tasks.site]
        help = "Build the site"
        deps = ["prep", ":build", "api:ref"]
        run = "echo site who={{ who }} shared={{ shared }} level=$LEVEL in=$(basename $(pwd))"

        [tasks.prep]
        group = "inner"
        run = "echo prep"

        [tasks._hidden]
        run = "echo hidden"
        "#,
    )
    .file(
        "docs/api/tasks.toml",
        r#"
        [tasks.ref]
        help = "API reference"
        aliases = ["r"]
        run = "echo ref level=$LEVEL in=$(basename $(pwd))"
        "#,
    )
}

fn sorted_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines
}

#[test]
fn included_tasks_run_by_full_name_with_their_files_vars_env_and_dir() {
    let ran = project()
        .args(&["-q", "--output", "interleaved", "all"])
        .run_with(&[]);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    // Short names (`prep`), the includer's task (`:build`) and a nested
    // file's (`api:ref`) all resolve; each task sees its own file's vars
    // and [env] over its includer's, and runs in its file's directory.
    // The included file's [settings] (a shell that does not exist) are
    // ignored.
    assert_eq!(
        sorted_lines(ran.stdout_text()),
        [
            "all",
            "build who=root level=root",
            "prep",
            "ref level=docs in=api",
            "site who=docs shared=from-root level=docs in=docs",
        ]
    );
    // A nested task, called by its full name and by its alias.
    project()
        .args(&["-q", "docs:api:ref"])
        .expect("ref level=docs in=api\n", "", 0);
    project()
        .args(&["-q", "docs:api:r"])
        .expect("ref level=docs in=api\n", "", 0);
}

#[test]
fn a_task_dir_in_an_included_file_is_relative_to_the_root() {
    // Without `dir`, the included file's directory; with one, the root's
    // path, as for every task; a step's `dir` is relative to the task's.
    let t = Test::with("[include]\nsub = \"sub/tasks.toml\"\n")
        .file(
            "sub/tasks.toml",
            r#"
            [tasks.default-dir]
            run = "basename $(pwd)"
            [tasks.own-dir]
            dir = "sub/deeper"
            run = ["basename $(pwd)", { sh = "basename $(pwd)", dir = "inner" }]
            "#,
        )
        .file("sub/deeper/inner/keep", "");
    let ran = t.run_with(&["-q", "sub:default-dir", "sub:own-dir"]);
    assert_eq!(
        (ran.stdout_text(), ran.stderr_text(), ran.exit_code()),
        ("sub\ndeeper\ninner\n", "", 0)
    );
}

#[test]
fn a_template_in_an_included_file_reads_its_own_tasks_by_short_name() {
    Test::with("[include]\nsub = \"sub/tasks.toml\"\n")
        .file(
            "sub/tasks.toml",
            r#"
            [tasks.version]
            capture = true
            run = "echo 1.2"

            [tasks.show]
            run = [{ task = "version" }, "echo v{{ tasks.version.stdout }}"]
            "#,
        )
        .args(&["-q", "sub:show"])
        .expect("1.2\nv1.2\n", "", 0);
}

#[test]
fn set_overrides_a_var_in_every_file() {
    project()
        .args(&["-q", "--set", "who=cli", "docs:site"])
        .run_with(&[])
        .stdout_has("site who=cli shared=from-root");
}

#[test]
fn the_listing_shows_included_tasks_under_their_namespace() {
    let ran = project().arg("-l").run_with(&[]);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    insta::assert_snapshot!(ran.stdout_text(), @r"
    Tasks in ./tasks.toml:
        build          Build it
        all            Everything
      docs:
        docs:site      Build the site
      docs: inner:
        docs:prep
      docs:api:
        docs:api:ref   API reference   [aliases: docs:api:r]
    ");
    // A task whose short name starts with `_` is private, as in the root
    // file: listed with --all only, and runnable.
    let all = project().args(&["-l", "--all"]).run_with(&[]);
    assert!(
        all.stdout_text().contains("    docs:_hidden\n"),
        "{}",
        all.stdout_text()
    );
    project()
        .args(&["-q", "docs:_hidden"])
        .expect("hidden\n", "", 0);
}

#[test]
fn json_gives_full_names_and_the_file_of_each_task() {
    let ran = project().args(&["-l", "--json"]).run_with(&[]);
    assert_eq!(ran.exit_code(), 0, "{}", ran.stderr_text());
    let doc: serde_json::Value = serde_json::from_str(ran.stdout_text()).expect("JSON");
    let tasks: Vec<(String, String)> = doc["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["file"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("build", "[TMP]/tasks.toml"),
        ("all", "[TMP]/tasks.toml"),
        ("docs:site", "[TMP]/docs/tasks.toml"),
        ("docs:prep", "[TMP]/docs/tasks.toml"),
        ("docs:api:ref", "[TMP]/docs/api/tasks.toml"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(n, f)| (n.to_string(), f.to_string()))
        .collect();
    assert_eq!(tasks, expected);
    assert_eq!(doc["file"], "[TMP]/tasks.toml");
}

#[test]
fn help_and_show_work_for_an_included_task() {
    let ran = project().args(&["docs:site", "--help"]).run_with(&[]);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    insta::assert_snapshot!(ran.stdout_text());
    let ran = project().args(&["--show", "docs:api:ref"]).run_with(&[]);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    insta::assert_snapshot!(ran.stdout_text(), @r#"
    # ./docs/api/tasks.toml:1
    [tasks.ref]
    help = "API reference"
    aliases = ["r"]
    run = "echo ref level=$LEVEL in=$(basename $(pwd))"
    "#);
}

#[test]
fn completion_offers_included_tasks() {
    let t = project();
    let ran = t.run_with(&["--complete", "zsh", "1", "--", "tasker", "docs:"]);
    assert_eq!(
        (ran.stdout_text(), ran.exit_code()),
        ("docs:site\ndocs:prep\ndocs:api:ref\ndocs:api:r\n", 0)
    );
    // Bash splits `docs:a` into `docs`, `:`, `a` and replaces the last
    // piece only.
    let ran = t.run_with(&["--complete", "bash", "3", "--", "tasker", "docs", ":", "a"]);
    assert_eq!(
        (ran.stdout_text(), ran.exit_code()),
        ("api:ref\napi:r\n", 0)
    );
}

/// The error text of `tasker -l` for this project.
fn load_error(t: Test) -> String {
    let ran = t.arg("-l").run_with(&[]);
    assert_eq!(
        (ran.exit_code(), ran.stdout_text()),
        (2, ""),
        "{}",
        ran.stderr_text()
    );
    ran.stderr_text().to_string()
}

#[test]
fn a_missing_included_file_is_an_error_at_its_entry() {
    let text = load_error(
        Test::with("[include]\ndocs = \"docs/tasks.toml\"\nmore = { path = \"more.toml\" }\n")
            .file("docs/tasks.toml", ""),
    );
    insta::assert_snapshot!(text, @r#"
    error: included file `more.toml` not found
     --> ./tasks.toml:3:17
      |
    3 | more = { path = "more.toml" }
      |                 ^^^^^^^^^^^ no such file
    help: looked for [TMP]/more.toml
    "#);
}

#[test]
fn a_file_included_twice_is_an_error_naming_both_paths() {
    let text = load_error(
        Test::with("[include]\na = \"a/tasks.toml\"\nb = \"b/tasks.toml\"\n")
            .file("a/tasks.toml", "[tasks.t]\nrun = \"true\"\n")
            .file("b/tasks.toml", "[include]\nagain = \"../a/tasks.toml\"\n"),
    );
    insta::assert_snapshot!(text, @r#"
    error: `../a/tasks.toml` is included twice: here and as "a/tasks.toml" at ./tasks.toml:2:5
     --> ./b/tasks.toml:2:9
      |
    2 | again = "../a/tasks.toml"
      |         ^^^^^^^^^^^^^^^^^ included again here
    help: a file can be included once; call its tasks by their namespace from anywhere
    "#);
    // A file that includes the file that includes it is the same mistake.
    let text = load_error(
        Test::with("[include]\na = \"a/tasks.toml\"\n")
            .file("a/tasks.toml", "[include]\nup = \"../tasks.toml\"\n"),
    );
    insta::assert_snapshot!(text, @r#"
    error: `../tasks.toml` is included twice: it is ./tasks.toml, the file tasker started from
     --> ./a/tasks.toml:2:6
      |
    2 | up = "../tasks.toml"
      |      ^^^^^^^^^^^^^^^ included again here
    help: a file can be included once; call its tasks by their namespace from anywhere
    "#);
}

#[test]
fn errors_inside_an_included_file_name_that_file_line_and_column() {
    let with = |text: &str| {
        load_error(Test::with("[include]\nsub = \"sub/tasks.toml\"\n").file("sub/tasks.toml", text))
    };
    let mut all = String::new();
    for text in [
        "[tasks.t]\nrun = \"true\"\nhlep = \"x\"\n",
        "[tasks.t\nrun = \"true\"\n",
        "[tasks.t]\ndeps = [\"nope\"]\nrun = \"true\"\n",
        "[tasks.t]\ndeps = [\":nope\"]\nrun = \"true\"\n",
        "[include]\nx = 3\n",
        "[include]\n\"a b\" = \"x.toml\"\n",
    ] {
        all.push_str(&with(text));
        all.push_str("\n\n");
    }
    insta::assert_snapshot!(all);
}

#[test]
fn check_checks_the_templates_of_included_files() {
    let ran = Test::with("[vars]\nroot_only = \"r\"\n[include]\nsub = \"sub/tasks.toml\"\n")
        .file(
            "sub/tasks.toml",
            "[vars]\nmine = \"m\"\n[tasks.t]\nrun = \"echo {{ mine }} {{ root_only }} {{ nope }}\"\n",
        )
        .arg("--check")
        .run_with(&[]);
    assert_eq!(ran.exit_code(), 2);
    insta::assert_snapshot!(ran.stderr_text());
    // The includer does not see the included file's vars.
    let ran =
        Test::with("[include]\nsub = \"sub/tasks.toml\"\n[tasks.t]\nrun = \"echo {{ mine }}\"\n")
            .file("sub/tasks.toml", "[vars]\nmine = \"m\"\n")
            .arg("--check")
            .code(2);
    ran.stderr_has("unknown name `mine`");
}

#[test]
fn includes_nest_at_most_64_deep() {
    // f0 includes f1, which includes f2, ...: the 65th level is refused at
    // its entry, without a stack overflow.
    let mut t = Test::with("[include]\nn = \"f1.toml\"\n");
    for i in 1..=70 {
        t = t.file(
            &format!("f{i}.toml"),
            &format!("[include]\nn = \"f{}.toml\"\n", i + 1),
        );
    }
    let text = load_error(t);
    assert!(
        text.starts_with("error: includes nest more than 64 deep\n --> ./f64.toml:2:5"),
        "{text}"
    );
}

#[test]
fn an_include_with_aliases_answers_to_each_namespace() {
    let t = Test::with(
        r#"
        [include]
        docs = { path = "docs/tasks.toml", aliases = ["d"] }
        [tasks.all]
        deps = ["d:site"]
        run = "echo all"
        "#,
    )
    .file(
        "docs/tasks.toml",
        r#"
        [include]
        api = { path = "api.toml", aliases = ["a"] }
        [tasks.site]
        aliases = ["s"]
        run = "echo site"
        "#,
    )
    .file("docs/api.toml", "[tasks.ref]\nrun = 'echo ref'\n");
    for (name, out) in [
        ("docs:site", "site\n"),
        ("d:site", "site\n"),
        ("d:s", "site\n"),
        ("d:a:ref", "ref\n"),
        ("docs:a:ref", "ref\n"),
        ("d:api:ref", "ref\n"),
        ("all", "site\nall\n"),
    ] {
        let ran = t.run_with(&["-q", name]);
        assert_eq!(
            (ran.stdout_text(), ran.exit_code()),
            (out, 0),
            "{name}: {}",
            ran.stderr_text()
        );
    }
    t.run_with(&["--check"])
        .expect("", "./tasks.toml: ok (3 tasks)\n", 0);
    Test::with("[include]\ndocs = { path = 'x.toml', aliases = ['a:b'] }\n")
        .file("x.toml", "")
        .arg("--check")
        .code(2)
        .stderr_has("invalid include namespace `a:b`");
}
