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
    let plain = Test::with(TASKS).arg("-l").run();
    assert_eq!(plain.code, 0);
    assert!(!coloured(&plain.stdout), "{:?}", plain.stdout);

    let always = Test::with(TASKS)
        .env("NO_COLOR", "1")
        .args(&["--color=always", "-l"])
        .run();
    assert_eq!(always.code, 0);
    insta::assert_snapshot!(format!("{:?}", always.stdout), @r#""Tasks in ./tasks.toml:\n    \u{1b}[36mbuild\u{1b}[0m [--release]   Compile\n""#);

    let never = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "1")
        .args(&["--color", "never", "-l"])
        .run();
    assert_eq!(
        (never.stdout.as_str(), never.code),
        (plain.stdout.as_str(), 0)
    );
}

#[test]
fn clicolor_force_colours_a_pipe_unless_no_color() {
    let forced = Test::with(TASKS).env("CLICOLOR_FORCE", "1").arg("-l").run();
    assert!(coloured(&forced.stdout), "{:?}", forced.stdout);
    // NO_COLOR wins over CLICOLOR_FORCE, as in the crates clap uses.
    let both = Test::with(TASKS)
        .env("CLICOLOR_FORCE", "1")
        .env("NO_COLOR", "1")
        .arg("-l")
        .run();
    assert!(!coloured(&both.stdout), "{:?}", both.stdout);
    // CLICOLOR_FORCE=0 forces nothing.
    let zero = Test::with(TASKS).env("CLICOLOR_FORCE", "0").arg("-l").run();
    assert!(!coloured(&zero.stdout), "{:?}", zero.stdout);
}

#[test]
fn errors_follow_the_same_decision() {
    // A file error, an unknown task, and an unknown option (whose
    // message is written before clap has parsed `--color`).
    for args in [
        &["--color=always", "nope"][..],
        &["--color", "always", "--bogus"][..],
    ] {
        let ran = Test::with(TASKS).args(args).run();
        assert_eq!(ran.code, 2, "{args:?}: {}", ran.stderr);
        assert!(coloured(&ran.stderr), "{args:?}: {:?}", ran.stderr);
        let ran = Test::with(TASKS)
            .env("CLICOLOR_FORCE", "1")
            .args(&args[..args.len() - 1])
            .arg("--color=never")
            .arg(args[args.len() - 1])
            .run();
        assert_eq!(ran.code, 2);
        assert!(!coloured(&ran.stderr), "{args:?}: {:?}", ran.stderr);
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
    assert_eq!((ran.code, ran.stderr.as_str()), (0, ""), "{words:?}");
    ran.stdout
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
    assert_eq!((ran.stdout.as_str(), ran.code), ("deploy\n", 0));
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
        let ran = Test::with(COMPLETING).args(&["--completions", shell]).run();
        assert_eq!(ran.code, 0);
        assert!(ran.stdout.contains("tasker --complete"), "{shell}");
        // Nothing of the file is frozen into the script.
        assert!(!ran.stdout.contains("deploy"), "{shell}: {}", ran.stdout);
    }
    let ran = Test::with(COMPLETING)
        .args(&["--completions", "tcsh"])
        .run();
    ran.code(2).stderr_has("unknown shell `tcsh`");
}

#[test]
fn the_man_page_has_the_options_and_the_file_format() {
    // No file is needed; the page is roff on stdout.
    let ran = Test::new().arg("--man").run();
    assert_eq!((ran.code, ran.stderr.as_str()), (0, ""));
    insta::assert_snapshot!(ran.stdout);
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
    let ran = Test::new().arg("--schema").run();
    assert_eq!(ran.code, 0);
    assert!(
        ran.stdout == shipped,
        "schema/tasks.schema.json is stale: run `tasker --schema > schema/tasks.schema.json`"
    );
}
