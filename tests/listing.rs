//! SPEC 8: listings, JSON listing, task help, closed stdout.
use crate::common;
use common::Test;

const FILE: &str = r#"
    [tasks.mytime]
    help = "Print the local time"
    run = "date"

    [tasks.build]
    help = """Compile the project

    The whole text shows in --help only."""
    deps = ["gen"]
    run = "echo build"
    [[tasks.build.args]]
    name = "release"
    type = "bool"
    help = "Optimised build"

    [tasks.docs-build]
    group = "docs"
    help = "Build the book"
    run = "true"

    [tasks.deploy]
    help = "Ship it"
    aliases = ["d", "ship"]
    run = "true"
    [[tasks.deploy.args]]
    name = "target"
    positional = true
    help = "Where to"
    choices = ["staging", "prod"]
    [[tasks.deploy.args]]
    name = "tag"
    type = "list"
    short = "t"
    [[tasks.deploy.args]]
    name = "port"
    type = "int"
    default = 8080
    env = "DEPLOY_PORT"
    [[tasks.deploy.args]]
    name = "verbose"
    type = "count"
    short = "v"
    [[tasks.deploy.args]]
    name = "ratio"
    type = "float"
    [[tasks.deploy.args]]
    name = "who"
    positional = true
    default = "me"
    [[tasks.deploy.args]]
    name = "files"
    type = "list"
    positional = true

    [tasks.docs-serve]
    group = "docs"
    run = "true"

    [tasks.gen]
    private = true
    help = "Generate code"
    run = "true"

    [tasks._helper]
    run = "true"
    "#;

#[test]
fn listing_shows_tasks_in_file_order_under_groups() {
    let ran = Test::with(FILE).args(&["-l"]).code(0);
    assert_eq!(ran.stderr_text(), "");
    assert!(!ran.stdout_text().contains("gen"));
    assert!(!ran.stdout_text().contains("_helper"));
    insta::assert_snapshot!(ran.stdout_text());
}

#[test]
fn listing_with_all_shows_private_tasks() {
    let ran = Test::with(FILE).args(&["-l", "--all"]).code(0);
    ran.stdout_has("    gen ").stdout_has("    _helper");
    insta::assert_snapshot!(ran.stdout_text());
}

#[test]
fn private_tasks_can_still_be_run() {
    Test::with(
        r#"
        [tasks._hidden]
        run = "echo hidden"
        [tasks.priv]
        private = true
        run = "echo priv"
        "#,
    )
    .args(&["-q", "_hidden", "priv"])
    .expect("hidden\npriv\n", "", 0);
}

#[test]
fn aliases_run_the_task() {
    Test::with(FILE)
        .args(&["-q", "d", "prod", "--ratio", "1"])
        .expect("", "", 0);
}

#[test]
fn listing_of_an_empty_file() {
    Test::with("").args(&["-l"]).expect(
        "
        Tasks in ./tasks.toml:
            (none)
        ",
        "",
        0,
    );
}

#[test]
fn listing_from_a_subdirectory_shows_the_relative_path() {
    Test::with("[tasks.a]\nrun = \"true\"\n")
        .cwd("sub")
        .args(&["-l"])
        .expect(
            "
            Tasks in ../tasks.toml:
                a
            ",
            "",
            0,
        );
}

#[test]
fn json_listing_has_the_stable_shape() {
    let t = Test::with(FILE).args(&["-l", "--json"]);
    let ran = t.code(0);
    let doc: serde_json::Value = serde_json::from_str(ran.stdout_text()).expect("valid JSON");
    let file = doc["file"].as_str().unwrap();
    assert!(file.ends_with("tasks.toml"), "{file}");
    let keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["file", "tasks"]);
    let tasks = doc["tasks"].as_array().unwrap();
    let names: Vec<&str> = tasks.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["mytime", "build", "docs-build", "deploy", "docs-serve"]
    );
    for task in tasks {
        let mut keys: Vec<&str> = task
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aliases",
                "args",
                "background",
                "cache",
                "deps",
                "file",
                "group",
                "help",
                "name",
                "outputs",
                "private",
                "recorded",
                "sources",
                "up_to_date"
            ]
        );
        for arg in task["args"].as_array().unwrap() {
            let mut keys: Vec<&str> = arg
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                [
                    "choices",
                    "default",
                    "help",
                    "name",
                    "positional",
                    "required",
                    "short",
                    "type"
                ]
            );
        }
    }
    assert_eq!(
        tasks[1],
        serde_json::json!({
            "name": "build",
            "file": "[TMP]/tasks.toml",
            "help": "Compile the project\n\nThe whole text shows in --help only.",
            "group": null,
            "aliases": [],
            "private": false,
            "background": false,
            "deps": ["gen"],
            "sources": [],
            "outputs": [],
            "up_to_date": null,
            "cache": null,
            "recorded": null,
            "args": [{
                "name": "release",
                "type": "bool",
                "help": "Optimised build",
                "default": null,
                "required": false,
                "positional": false,
                "short": null,
                "choices": [],
            }],
        })
    );
    let deploy = &tasks[3];
    assert_eq!(deploy["aliases"], serde_json::json!(["d", "ship"]));
    assert_eq!(
        deploy["args"][0],
        serde_json::json!({
            "name": "target", "type": "string", "help": "Where to", "default": null,
            "required": true, "positional": true, "short": null,
            "choices": ["staging", "prod"],
        })
    );
    assert_eq!(deploy["args"][1]["short"], "t");
    assert_eq!(deploy["args"][1]["type"], "list");
    assert_eq!(deploy["args"][2]["default"], 8080);
    assert_eq!(deploy["args"][2]["required"], false);
    assert_eq!(deploy["args"][3]["type"], "count");
    assert_eq!(deploy["args"][4]["required"], true);
    assert_eq!(tasks[2]["group"], "docs");

    let all = Test::with(FILE)
        .args(&["-l", "--json", "--all"])
        .run_with(&[]);
    let doc: serde_json::Value = serde_json::from_str(all.stdout_text()).unwrap();
    let gen = doc["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "gen")
        .expect("gen listed with --all");
    assert_eq!(gen["private"], true);
}

#[test]
fn task_help_shows_usage_help_arguments_and_deps() {
    let ran = Test::with(FILE).args(&["deploy", "--help"]).code(0);
    assert_eq!(ran.stderr_text(), "");
    insta::assert_snapshot!("deploy_help", ran.stdout_text());
    let ran = Test::with(FILE).args(&["build", "--help"]).code(0);
    insta::assert_snapshot!("build_help", ran.stdout_text());
}

#[test]
fn a_closed_stdout_stops_quietly() {
    use std::io::Read;
    // Enough tasks that the listing does not fit in a pipe buffer.
    let mut toml = String::new();
    for i in 0..4000 {
        toml.push_str(&format!(
            "[tasks.task{i}]\nhelp = \"A task with a reasonably long help line number {i}\"\nrun = \"true\"\n"
        ));
    }
    let t = Test::with(&toml).args(&["-l"]);
    let mut child = t.spawn();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let ran = t.finish(child);
    assert_eq!(&first, b"Tasks in ./tasks");
    // Quietly, and with success: the reader had what it wanted.
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
}

#[test]
fn a_closed_stdout_for_task_help_stops_quietly() {
    // A pipe whose reader is gone before tasker writes a byte: a closed
    // stdout, not an open /dev/null that takes everything.
    let t = Test::with(FILE).args(&["deploy", "--help"]);
    let (reader, writer) = os_pipe::pipe().unwrap();
    drop(reader);
    let mut cmd = t.command();
    cmd.stdout(writer);
    let out = common::output_of_with_stdout(&mut cmd);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).as_ref()
        ),
        (Some(0), "")
    );
}

const SHOWN: &str = r#"
    [settings]
    default = "build"

    [tasks.build]
    help = "Compile the project"
    run = [
      "cargo build {% if release %}--release{% endif %}",
      { task = "gen --fast" },
      { cmd = ["ls", "-l", "dist"] },
      { pipe = ["ls", "wc -l"] },
      """
      echo one
        echo two
      """,
    ]
    finally = "rm -f tmp"
    [[tasks.build.args]]
    name = "release"
    type = "bool"

    [tasks.gen]
    run = "echo gen"
    [[tasks.gen.args]]
    name = "fast"
    type = "bool"

    [tasks.deploy]
    help = "Ship it"
    confirm = "Deploy {{ target }}?"
    run = "echo deploying {{ target }} to {{ region }}"
    [[tasks.deploy.args]]
    name = "target"
    positional = true
    choices = ["staging", "prod"]
    [[tasks.deploy.args]]
    name = "region"
    choices = ["eu-west-1", "eu-central-1", "us-east-1"]
    default = "eu-west-1"
    [[tasks.deploy.args]]
    name = "mode"
    choices = ["fast", "safe"]
    default = "safe"

    [tasks.pytest]
    help = "Run the tests"
    run = "pytest {{ extra }}"
    "#;

#[test]
fn listing_marks_the_default_task_and_shows_short_choices() {
    let ran = Test::with(SHOWN).arg("-l").expect(
        "
        Tasks in ./tasks.toml:
            build [--release]                                              Compile the project   [default]
            gen [--fast]
            deploy <staging|prod> [--region REGION] [--mode <fast|safe>]   Ship it
            pytest                                                         Run the tests
        ",
        "",
        0,
    );
    insta::assert_snapshot!(ran.stdout_text());
}

#[test]
fn task_help_shows_the_steps_the_confirm_question_and_extra() {
    let build = Test::with(SHOWN).args(&["build", "--help"]).code(0);
    let deploy = Test::with(SHOWN).args(&["deploy", "--help"]).code(0);
    let pytest = Test::with(SHOWN).args(&["pytest", "--help"]).code(0);
    assert!(
        build.stdout_text().contains("  task gen --fast\n"),
        "{}",
        build.stdout_text()
    );
    assert!(deploy
        .stdout_text()
        .contains("Confirm: Deploy {{ target }}? [y/N]\n"));
    assert!(pytest
        .stdout_text()
        .starts_with("Usage: tasker pytest [-- EXTRA...]\n"));
    assert!(!build.stdout_text().contains("EXTRA"));
    insta::assert_snapshot!(format!(
        "{}\n---\n{}\n---\n{}",
        build.stdout_text(),
        deploy.stdout_text(),
        pytest.stdout_text()
    ));
}

#[test]
fn dry_run_shows_the_confirm_question_it_would_ask() {
    Test::with(SHOWN).args(&["-n", "deploy", "prod"]).expect(
        "",
        "
        [deploy] would ask: Deploy prod? [y/N]
        [deploy] $ echo deploying prod to eu-west-1
        ",
        0,
    );
    // With --yes there is nothing to ask.
    Test::with(SHOWN)
        .args(&["-n", "-y", "deploy", "prod"])
        .expect("", "[deploy] $ echo deploying prod to eu-west-1\n", 0);
}

#[test]
fn the_echo_drops_the_blanks_that_empty_template_blocks_leave() {
    let ran = Test::with(SHOWN).args(&["-n", "build"]).expect(
        "",
        "
        [build] $ cargo build
        [build] $ task gen --fast
        [gen] $ echo gen
        [build] $ ls -l dist
        [build] $ ls | wc -l
        [build] $ echo one
        [build]     echo two
        [build] $ rm -f tmp
        ",
        0,
    );
    insta::assert_snapshot!(ran.stderr_text());
    Test::with(
        r#"
        [tasks.t]
        run = "echo a {% if false %}b{% endif %} c  'd  e'"
        "#,
    )
    .arg("t")
    .expect("a c d  e\n", "[t] $ echo a c 'd  e'\n", 0);
}

#[test]
fn task_help_shows_vars_status_and_preconditions() {
    Test::with(
        r#"
        [tasks.gen]
        vars = { out = "gen.go" }
        status = ["test -f {{ out }}"]
        preconditions = [{ sh = "command -v go", msg = "install Go" }, "true"]
        run = "go generate"
        "#,
    )
    .args(&["gen", "--help"])
    .expect(
        "
        Usage: tasker gen

        Vars: out

        Up to date when these succeed:
          test -f {{ out }}

        Preconditions:
          command -v go  (install Go)
          true

        Steps:
          $ go generate
        ",
        "",
        0,
    );
}
