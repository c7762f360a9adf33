//! SPEC 1: what tasker shares with the tools around it: colour by the
//! terminal conventions (`--color`, `NO_COLOR`, `CLICOLOR`,
//! `CLICOLOR_FORCE`, `TERM`), completions that ask tasker at TAB time, and
//! the man page.
use crate::common;
use common::Test;

const TASKS: &str = r#"
    [tasks.build]
    help = "Compile"
    run = "echo build"
    [[tasks.build.args]]
    name = "release"
    type = "bool"
"#;

fn coloured(text: &str) -> bool {
    text.contains('\x1b')
}

#[test]
fn color_always_and_never_decide_alone() {
    // Into a pipe, auto means no colour; always colours anyway, even with
    // NO_COLOR; never wins over CLICOLOR_FORCE.
    let plain = Test::with(TASKS).arg("-l").run_with(&[]);
    assert_eq!(plain.exit_code(), 0);
    assert!(!coloured(plain.stdout_text()), "{:?}", plain.stdout_text());

    let always = Test::with(TASKS)
        .env("NO_COLOR", "1")
        .args(&["--color=always", "-l"])
        .run_with(&[]);
    assert_eq!(always.exit_code(), 0);
    insta::assert_snapshot!(format!("{:?}", always.stdout_text()), @r#""Tasks in ./tasks.toml:\n    \u{1b}[36mbuild\u{1b}[0m [--release]   Compile\n""#);

    let never = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "1")
        .args(&["--color", "never", "-l"])
        .run_with(&[]);
    assert_eq!(
        (never.stdout_text(), never.exit_code()),
        (plain.stdout_text(), 0)
    );
}

#[test]
fn a_located_error_met_by_a_run_is_coloured_by_the_report() {
    // The run keeps the error itself; the summary renders it, with the
    // colours tasker's other errors get.
    let file = "[tasks.a]\nrun = \"echo {{ 1 / 0 }}\"\n";
    let ran = Test::with(file).args(&["--color=always", "a"]).code(2);
    let stderr = ran.stderr_text();
    assert!(coloured(stderr), "{stderr:?}");
    assert!(stderr.contains("unable to calculate 1 / 0"), "{stderr}");
    let plain = Test::with(file).arg("a").code(2);
    let stderr = plain.stderr_text();
    assert!(!coloured(stderr), "{stderr:?}");
    assert!(stderr.contains(" --> ./tasks.toml:2:16"), "{stderr}");
}

#[test]
fn clicolor_force_colours_a_pipe_unless_no_color() {
    let forced = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "1")
        .arg("-l")
        .run_with(&[]);
    assert!(coloured(forced.stdout_text()), "{:?}", forced.stdout_text());
    // NO_COLOR wins over CLICOLOR_FORCE, as in the crates clap uses.
    let both = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .arg("-l")
        .run_with(&[]);
    assert!(!coloured(both.stdout_text()), "{:?}", both.stdout_text());
    // CLICOLOR_FORCE=0 forces nothing.
    let zero = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "0")
        .arg("-l")
        .run_with(&[]);
    assert!(!coloured(zero.stdout_text()), "{:?}", zero.stdout_text());
}

#[test]
fn errors_follow_the_same_decision() {
    // A file error, an unknown task, and an unknown option (whose
    // message is written before clap has parsed `--color`).
    for args in [
        &["--color=always", "nope"][..],
        &["--color", "always", "--bogus"][..],
    ] {
        let ran = Test::with(TASKS).args(args).run_with(&[]);
        assert_eq!(ran.exit_code(), 2, "{args:?}: {}", ran.stderr_text());
        assert!(
            coloured(ran.stderr_text()),
            "{args:?}: {:?}",
            ran.stderr_text()
        );
        let ran = Test::with(TASKS)
            .env("CLICOLOR_FORCE", "1")
            .args(&args[..args.len() - 1])
            .arg("--color=never")
            .arg(args[args.len() - 1])
            .run_with(&[]);
        assert_eq!(ran.exit_code(), 2);
        assert!(
            !coloured(ran.stderr_text()),
            "{args:?}: {:?}",
            ran.stderr_text()
        );
    }
    Test::with(TASKS).args(&["--color=blue", "-l"]).expect(
        "",
        "
            error: invalid value 'blue' for '--color <WHEN>'
              [possible values: auto, always, never]

            For more information, try '--help'.
            ",
        2,
    );
}

#[test]
fn on_a_terminal_clicolor_0_and_color_never_turn_colours_off() {
    let toml = "[tasks.t]\nrun = \"echo hi\"\n[tasks.u]\nrun = \"nope-no-such-command\"\n";
    let on = Test::with(toml).env("TERM", "xterm");
    let (screen, _) = common::on_a_terminal(&on, &["-l"], &[]);
    assert!(coloured(&screen), "{screen:?}");
    let (screen, code) = common::on_a_terminal(&on, &["u"], &[]);
    assert!(coloured(&screen) && code != 0, "{screen:?}");
    for (t, option) in [
        (
            Test::with(toml).env("TERM", "xterm").env("CLICOLOR", "0"),
            "-q",
        ),
        (Test::with(toml).env("TERM", "xterm"), "--color=never"),
    ] {
        let (screen, _) = common::on_a_terminal(&t, &[option, "-l"], &[]);
        assert!(!coloured(&screen), "{screen:?}");
        let (screen, code) = common::on_a_terminal(&t, &[option, "u"], &[]);
        assert!(!coloured(&screen) && code != 0, "{screen:?}");
    }
}

const COMPLETING: &str = r#"
    [vars]
    stamp = { sh = "touch var-ran" }

    [tasks.build]
    aliases = ["b"]
    run = "echo build"
    [[tasks.build.args]]
    name = "release"
    type = "bool"
    [[tasks.build.args]]
    name = "target_env"
    short = "t"
    choices = ["staging", "prod"]
    default = "staging"

    [tasks.deploy]
    run = "echo {{ where }}"
    [[tasks.deploy.args]]
    name = "where"
    positional = true
    choices = ["eu", "us"]

    [tasks._secret]
    run = "true"
"#;

/// The candidates the hidden entry gives for word `index` of `words`.
fn complete(test: &Test, shell: &str, index: usize, words: &[&str]) -> String {
    let index = index.to_string();
    let mut args = vec!["--complete", shell, &index, "--", "tasker"];
    args.extend_from_slice(words);
    let ran = test.run_with(&args);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""), "{words:?}");
    ran.stdout_text().to_string()
}

#[test]
fn the_completion_entry_offers_tasks_flags_and_choices() {
    let t = Test::with(COMPLETING);
    let cases: &[(&str, usize, &[&str])] = &[
        ("task names and aliases, no private ones", 1, &[""]),
        ("tasker's own flags", 1, &["--c"]),
        ("the values of --output", 2, &["--output", ""]),
        ("the shells", 2, &["--completions", ""]),
        ("the values of --color", 3, &["-q", "--color", ""]),
        ("a task's flags", 2, &["build", "--"]),
        ("a flag's choices", 3, &["b", "--target-env", ""]),
        ("a short flag's choices", 3, &["b", "-t", "p"]),
        ("the choices after --flag=", 2, &["build", "--target-env=s"]),
        ("a required positional's choices only", 2, &["deploy", ""]),
        ("tasks after a filled positional", 3, &["deploy", "eu", "b"]),
        ("nothing after --", 3, &["build", "--", ""]),
        ("tasks after a leading --", 2, &["--", "d"]),
    ];
    let mut text = String::new();
    for (what, index, words) in cases {
        text.push_str(&format!(
            "# {what}: tasker {}\n{}\n",
            words.join(" "),
            complete(&t, "zsh", *index, words)
        ));
    }
    insta::assert_snapshot!(text);
    assert!(!t.exists("var-ran"), "completion ran an sh var");
}

#[test]
fn bash_pieces_split_at_equals_get_their_own_part_back() {
    // Bash splits `--target-env=p` into `--target-env`, `=`, `p` and
    // replaces only `p`: the candidates are the rest of that piece.
    let t = Test::with(COMPLETING);
    assert_eq!(
        complete(&t, "bash", 4, &["build", "--target-env", "=", "p"]),
        "prod\n"
    );
    assert_eq!(
        complete(&t, "bash", 3, &["build", "--target-env", "="]),
        "=staging\n=prod\n"
    );
}

#[test]
fn the_completion_entry_does_without_its_dashes() {
    // Windows PowerShell drops a bare `--` on its way to a program.
    let t = Test::with(COMPLETING);
    let ran = t.run_with(&["--complete", "powershell", "1", "tasker", "de"]);
    assert_eq!((ran.stdout_text(), ran.exit_code()), ("deploy\n", 0));
}

#[test]
fn completion_without_a_file_offers_options_only() {
    let t = Test::new();
    assert_eq!(complete(&t, "bash", 1, &[""]), "");
    assert!(complete(&t, "bash", 1, &["--ver"]).contains("--version\n"));
    // A broken file is no error on the shell's screen either.
    let t = Test::with("[tasks.x\n");
    assert_eq!(complete(&t, "bash", 1, &[""]), "");
}

#[test]
fn the_completion_entry_follows_f_and_c() {
    let t = Test::new()
        .file("sub/tasks.toml", "[tasks.in-sub]\nrun = \"true\"\n")
        .file("other.toml", "[tasks.from-other]\nrun = \"true\"\n");
    assert_eq!(complete(&t, "fish", 3, &["-C", "sub", ""]), "in-sub\n");
    assert_eq!(
        complete(&t, "fish", 2, &["--file=other.toml", ""]),
        "from-other\n"
    );
}

/// Load the bash script into a real bash, set `COMP_WORDS`/`COMP_CWORD`,
/// call its function in `dir`, and return `COMPREPLY`, one a line.
fn bash_completes(test: &Test, dir: &str, words: &[&str]) -> String {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_tasker"));
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let script = format!(
        "eval \"$(tasker --completions bash)\"\n\
         cd {dir}\n\
         COMP_WORDS=(tasker {words})\n\
         COMP_CWORD={cword}\n\
         _tasker\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        words = quoted.join(" "),
        cword = words.len(),
    );
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .current_dir(test.path())
        .env("PATH", path)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn bash_asks_tasker_in_the_directory_it_is_in() {
    // One script, two directories with different tasks: each TAB reads
    // the file found from where the shell is.
    let t = Test::new()
        .file("one/tasks.toml", "[tasks.alpha]\nrun = \"true\"\n[tasks.apple]\nrun = \"true\"\n")
        .file(
            "two/tasks.toml",
            "[tasks.avocado]\nrun = \"true\"\n[[tasks.avocado.args]]\nname = \"size\"\nchoices = [\"small\", \"large\"]\n",
        );
    assert_eq!(bash_completes(&t, "one", &["a"]), "alpha\napple\n");
    assert_eq!(bash_completes(&t, "two", &["a"]), "avocado\n");
    assert_eq!(
        bash_completes(&t, "two", &["avocado", "--size", ""]),
        "small\nlarge\n"
    );
    assert_eq!(bash_completes(&t, "one", &["alpha", "--"]), "--help\n");
}

#[test]
fn every_shell_script_calls_tasker_back() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let ran = Test::with(COMPLETING)
            .args(&["--completions", shell])
            .run_with(&[]);
        assert_eq!(ran.exit_code(), 0);
        assert!(ran.stdout_text().contains("tasker --complete"), "{shell}");
        // Nothing of the file is frozen into the script.
        assert!(
            !ran.stdout_text().contains("deploy"),
            "{shell}: {}",
            ran.stdout_text()
        );
    }
    let ran = Test::with(COMPLETING)
        .args(&["--completions", "tcsh"])
        .code(2);
    // clap refuses it, naming the shells, as for every closed set of values.
    ran.stderr_has("invalid value 'tcsh' for '--completions <SHELL>'")
        .stderr_has("[possible values: bash, zsh, fish, powershell, elvish]");
}

#[test]
fn the_man_page_has_the_options_and_the_file_format() {
    // No file is needed; the page is roff on stdout.
    let ran = Test::new().arg("--man").run_with(&[]);
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    insta::assert_snapshot!(ran.stdout_text());
}

#[test]
fn the_shipped_schema_file_is_what_schema_prints() {
    // schema/tasks.schema.json is for editors that fetch a schema by URL or
    // path; regenerate it with `tasker --schema > schema/tasks.schema.json`.
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/tasks.schema.json"
    ))
    .expect("schema/tasks.schema.json is shipped");
    let ran = Test::new().arg("--schema").run_with(&[]);
    assert_eq!(ran.exit_code(), 0);
    assert!(
        ran.stdout_text() == shipped,
        "schema/tasks.schema.json is stale: run `tasker --schema > schema/tasks.schema.json`"
    );
}

/// A file that uses every key of the format (with an included file):
/// valid for tasker, and for the JSON Schema.
const EVERY_KEY: &str = r#"
    [settings]
    shell = ["sh", "-e", "-c"]
    dotenv = [".env"]
    default = "build"
    jobs = 2
    output = "prefixed"
    echo = true
    remote_cache = { url = "https://cache.example.com", team = "web" }
    queue = "redis://127.0.0.1:6379/0"
    queue_timeout = "2m"

    [env]
    RUST_LOG = "info"
    LEVEL = 3

    [vars]
    version = "1.2.3"
    count = 4
    ratio = 0.5
    on = true
    list = ["a", "b"]
    sha = { sh = "echo abc" }

    [include]
    docs = "docs/tasks.toml"
    more = { path = "more/tasks.toml", aliases = ["m"] }

    [tasks.build]
    help = "Compile"
    run = [
        "echo {{ version }}",
        { sh = "echo sh", ignore_failure = true, dir = ".", quiet = true },
        { cmd = ["echo", "cmd"], dir = "." },
        { pipe = ["echo pipe", "cat"], ignore_failure = false },
        { task = "gen --release", dir = "." },
    ]
    deps = ["gen"]
    post = ["docs:site"]
    finally = [{ sh = "echo cleanup" }]
    env = { MODE = "{{ mode }}" }
    dir = "."
    shell = ["bash", "-c"]
    quiet = false
    private = false
    aliases = ["b"]
    group = "main"
    platforms = ["linux", "macos", "unix"]
    timeout = "5m"
    retries = 1
    retry_delay = "1s"
    ignore_failure = false
    sources = ["src/**/*.rs"]
    outputs = ["target/out"]
    cache = true
    capture = true
    extract = { size = 'size: (\d+)' }
    expect = ["done"]
    fail_on = ["panicked"]
    respond = [{ on = "Continue\\?", send = "y" }]
    hide = "stderr"
    matrix = { os = ["linux", "macos"] }
    [[tasks.build.args]]
    name = "mode"
    help = "The mode"
    type = "string"
    positional = true
    choices = ["fast", "safe"]
    default = "fast"
    env = "BUILD_MODE"
    [[tasks.build.args]]
    name = "note"
    required = false
    [[tasks.build.args]]
    name = "verbose"
    short = "v"
    type = "count"

    [tasks.gen]
    run = "echo gen"
    distribute = true
    [[tasks.gen.args]]
    name = "release"
    type = "bool"

    [tasks.deploy]
    confirm = "Deploy {{ who }}?"
    vars = { who = "it" }
    status = ["false"]
    preconditions = ["true", { sh = "true", msg = "never" }]
    interactive = true
    pty = false
    run = "echo deploy"

    [tasks.server]
    background = true
    ready = "listening"
    ready_timeout = "10s"
    run = "echo listening"
"#;

/// Every property name the schema declares, anywhere in it.
fn schema_keys(schema: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match schema {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(props)) = map.get("properties") {
                out.extend(props.keys().cloned());
            }
            map.values().for_each(|v| schema_keys(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| schema_keys(v, out)),
        _ => {}
    }
}

/// Every key used in a document, anywhere in it.
fn used_keys(doc: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
    match doc {
        serde_json::Value::Object(map) => {
            out.extend(map.keys().cloned());
            map.values().for_each(|v| used_keys(v, out));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| used_keys(v, out)),
        _ => {}
    }
}

fn every_key_as_json() -> serde_json::Value {
    let text = common::dedent(EVERY_KEY);
    let value: toml::Value = toml::from_str(&text).expect("EVERY_KEY is TOML");
    serde_json::to_value(value).expect("TOML converts to JSON")
}

fn shipped_schema() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schema/tasks.schema.json"
    ))
    .expect("schema/tasks.schema.json is shipped");
    serde_json::from_str(&text).expect("the schema is JSON")
}

#[test]
fn a_file_using_every_key_passes_the_schema_and_check() {
    let schema = shipped_schema();
    let doc = every_key_as_json();
    let (mut declared, mut used) = Default::default();
    schema_keys(&schema, &mut declared);
    used_keys(&doc, &mut used);
    let missing: Vec<&String> = declared.difference(&used).collect();
    assert!(
        missing.is_empty(),
        "add these keys to EVERY_KEY in tests/ecosystem.rs: {missing:?}"
    );
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    // And tasker itself takes it.
    Test::with(EVERY_KEY)
        .file("docs/tasks.toml", "[tasks.site]\nrun = \"echo site\"\n")
        .file("more/tasks.toml", "")
        .arg("--check")
        .expect("", "./tasks.toml: ok (5 tasks)\n", 0);
}

#[test]
fn the_schema_rejects_a_wrong_value() {
    let schema = shipped_schema();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let mut doc = every_key_as_json();
    assert!(validator.is_valid(&doc));
    let cases: [(&str, serde_json::Value); 4] = [
        ("/settings/output", "sideways".into()),
        ("/tasks/build/hide", "everything".into()),
        ("/tasks/build/args/0/type", "number".into()),
        ("/tasks/build/platforms/0", "beos".into()),
    ];
    for (pointer, wrong) in cases {
        let right = std::mem::replace(doc.pointer_mut(pointer).expect(pointer), wrong);
        assert!(!validator.is_valid(&doc), "{pointer} was accepted");
        *doc.pointer_mut(pointer).unwrap() = right;
    }
    // An unknown key too, as tasker's loader says.
    doc["tasks"]["build"]["hlep"] = "x".into();
    assert!(!validator.is_valid(&doc));
}

#[test]
fn the_zsh_and_fish_scripts_parse_where_those_shells_are_installed() {
    // Each shell's own parser, without running the script; a shell that
    // is not installed is skipped (the tests install no shell).
    for (shell, check) in [("zsh", "-n"), ("fish", "--no-execute")] {
        let installed = std::process::Command::new(shell)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            eprintln!("skipped: {shell} is not installed, its completion script is not parsed");
            continue;
        }
        let t = Test::new().args(&["--completions", shell]);
        let ran = t.run_with(&[]);
        assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""), "{shell}");
        let path = t.path().join(format!("completion.{shell}"));
        std::fs::write(&path, ran.stdout_text()).unwrap();
        let out = std::process::Command::new(shell)
            .arg(check)
            .arg(&path)
            .output()
            .expect("the shell runs");
        assert!(
            out.status.success(),
            "{shell} cannot parse its script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn fish_completions_carry_task_descriptions() {
    let t = Test::with(
        r#"
        [tasks.build]
        help = "Compile the project\nwith every feature"
        aliases = ["b"]
        run = "true"
        [tasks.bare]
        run = "true"
        "#,
    );
    // fish shows what follows a tab as the candidate's description.
    assert_eq!(
        complete(&t, "fish", 1, &[""]),
        "build\tCompile the project\nb\tCompile the project\nbare\n"
    );
    // Other shells get names alone.
    assert_eq!(complete(&t, "bash", 1, &[""]), "build\nb\nbare\n");
}
