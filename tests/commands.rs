//! SPEC 3: steps, shells, environment layering, directories, statuses.
use crate::common;
use common::Test;

#[test]
fn a_string_step_runs_through_sh_e_c() {
    // `-e`: the first failing line of a script stops it.
    Test::with(
        r#"
        [tasks.t]
        run = """
        echo $0
        false
        echo after
        """
        "#,
    )
    .args(&["-q", "t"])
    .expect("sh\n", "error: t failed at `echo $0`: exit status 1\n", 1);
}

#[test]
fn settings_shell_replaces_the_shell() {
    Test::with(
        r#"
        [settings]
        shell = ["bash", "-c"]
        [tasks.t]
        run = "echo ${BASH_VERSION:+bash}"
        "#,
    )
    .args(&["-q", "t"])
    .expect("bash\n", "", 0);
}

#[test]
fn a_task_shell_overrides_settings_shell() {
    Test::with(
        r#"
        [settings]
        shell = ["bash", "-c"]
        [tasks.py]
        shell = ["python3", "-c"]
        run = "import sys; print('py', sys.version_info[0])"
        [tasks.sh]
        run = "echo ${BASH_VERSION:+bash}"
        "#,
    )
    .args(&["-q", "py", "sh"])
    .expect("py 3\nbash\n", "", 0);
}

#[test]
fn a_multi_line_string_is_one_script() {
    Test::with(
        r#"
        [tasks.t]
        run = """
        x=1
        for n in a b; do x=$((x+1)); done
        echo "x=$x"
        """
        "#,
    )
    .args(&["-q", "t"])
    .expect("x=3\n", "", 0);
}

#[test]
fn cmd_runs_without_a_shell() {
    Test::with(
        r#"
        [tasks.t]
        run = [{ cmd = ["printf", "%s|", "$HOME", "a b", "*"] }]
        "#,
    )
    .args(&["-q", "t"])
    .expect("$HOME|a b|*|", "", 0);
}

#[test]
fn pipe_connects_stages_without_a_shell() {
    Test::with(
        r#"
        [tasks.t]
        run = [{ pipe = ["printf 'a b c'", "wc -w"] }, { pipe = ["echo '$HOME' \"x y\"", "cat"] }]
        "#,
    )
    .args(&["-q", "t"])
    .code(0)
    .stdout("3\n$HOME x y\n");
}

#[test]
fn pipe_fails_when_any_stage_fails() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = [{ pipe = ["false", "cat"] }, "touch after"]
        "#,
    )
    .args(&["-q", "t"]);
    t.expect("", "error: t failed at `false | cat`: exit status 1\n", 1);
    assert!(!t.path().join("after").exists());
    Test::with(
        r#"
        [tasks.t]
        run = [{ pipe = ["echo hi", "sh -c 'cat; exit 4'"] }]
        "#,
    )
    .args(&["-q", "t"])
    .expect(
        "hi\n",
        "error: t failed at `echo hi | sh -c 'cat; exit 4'`: exit status 4\n",
        4,
    );
}

#[test]
fn task_steps_run_that_task_with_its_arguments_at_that_point() {
    Test::with(
        r#"
        [tasks.t]
        run = ["echo before", { task = "other --loud -n 2" }, "echo after"]
        [tasks.other]
        run = "echo other {{ loud }} {{ n }}"
        [[tasks.other.args]]
        name = "loud"
        type = "bool"
        [[tasks.other.args]]
        name = "n"
        type = "int"
        short = "n"
        "#,
    )
    .args(&["-q", "t"])
    .expect("before\nother true 2\nafter\n", "", 0);
}

#[test]
fn sh_step_with_ignore_failure_and_dir() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = [
          { sh = "exit 5", ignore_failure = true },
          { sh = "basename \"$PWD\"", dir = "sub" },
          "basename \"$PWD\"",
        ]
        "#,
    );
    std::fs::create_dir(t.path().join("sub")).unwrap();
    let t = t.args(&["-q", "t"]);
    let ran = t.code(0);
    let root = t.path().canonicalize().unwrap();
    let name = root.file_name().unwrap().to_str().unwrap();
    assert_eq!(ran.stdout_text(), format!("sub\n{name}\n"));
}

#[test]
fn the_first_failing_step_stops_the_run() {
    let t = Test::with(
        r#"
        [tasks.t]
        run = ["echo one", "exit 3", "touch three"]
        "#,
    )
    .args(&["t"]);
    let ran = t.code(3);
    ran.stdout("one\n");
    assert!(!t.path().join("three").exists());
    insta::assert_snapshot!(ran.stderr_text());
}

#[test]
fn failure_message_names_task_step_and_status() {
    Test::with(
        r#"
        [tasks.build]
        run = [{ cmd = ["sh", "-c", "exit 9"] }]
        "#,
    )
    .args(&["-q", "build"])
    .code(9)
    .stderr_has("build")
    .stderr_has("sh -c 'exit 9'")
    .stderr_has("9");
}

#[test]
fn environment_layers_in_order() {
    // dotenv < tasker's env < [env] < task env.
    Test::with(
        r#"
        [settings]
        dotenv = [".env", ".env.local", ".env.missing"]
        [env]
        GLOBAL = "global"
        BOTH = "global"
        FROM_DOTENV = "{{ env.DOTENV_ONLY }}-seen"
        [tasks.t]
        env = { BOTH = "task", TASKONLY = "{{ env.GLOBAL }}+task" }
        run = "printf '%s\n' $DOTENV_ONLY $OVERRIDDEN $SHELL_WINS $GLOBAL $BOTH $TASKONLY $FROM_DOTENV $TASKER_TASK $TASKER_ROOT"
        "#,
    )
    .file(".env", "DOTENV_ONLY=dot\nOVERRIDDEN=first\nSHELL_WINS=dot\nGLOBAL=dot\n")
    .file(".env.local", "OVERRIDDEN=second\n")
    .env("SHELL_WINS", "shell")
    .args(&["-q", "t"])
    .expect(
        "dot\nsecond\nshell\nglobal\ntask\nglobal+task\ndot-seen\nt\n[TMP]\n",
        "",
        0,
    );
}

#[test]
fn a_malformed_dotenv_names_its_file_and_line() {
    let t = Test::with(
        r#"
        [settings]
        dotenv = [".env"]
        [tasks.t]
        run = "touch ran"
        "#,
    )
    .file(".env", "A=1\n# fine\nthis is not a pair\n")
    .args(&["t"]);
    let ran = t.code(2);
    ran.stderr_has(".env:3:1");
    assert!(!t.path().join("ran").exists());
    insta::assert_snapshot!(ran.stderr_text());
}

/// Make a FIFO at `path` (it is never opened by the test).
fn mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success());
}

#[test]
fn a_dotenv_path_that_is_a_fifo_or_a_device_is_an_error_not_a_hang() {
    let toml = r#"
        [settings]
        dotenv = [".env"]
        [tasks.t]
        run = "touch ran"
        "#;
    let t = Test::with(toml).args(&["t"]);
    mkfifo(&t.path().join(".env"));
    t.expect(
        "",
        "error: dotenv file `.env` is a FIFO, not a regular file\nhelp: settings.dotenv names files of KEY=VALUE lines\n",
        2,
    );
    assert!(!t.exists("ran"));
    // A symlink to /dev/zero would be read without end.
    let t = Test::with(toml).args(&["t"]);
    std::os::unix::fs::symlink("/dev/zero", t.path().join(".env")).unwrap();
    t.code(2)
        .stderr_has("error: dotenv file `.env` is a character device, not a regular file\n");
    assert!(!t.exists("ran"));
}

#[test]
fn a_file_with_crlf_line_ends_gives_scripts_plain_newlines() {
    let t = Test::new().args(&["-q", "t", "single"]);
    std::fs::write(
        t.path().join("tasks.toml"),
        "[tasks.t]\r\nrun = \"\"\"\r\nmkdir -p out\r\necho \"[$(ls)]\"\r\n\"\"\"\r\n[tasks.single]\r\nrun = [\"mkdir -p one\", { cmd = [\"mkdir\", \"-p\", \"two\"] }]\r\n",
    )
    .unwrap();
    t.expect("[out\ntasks.toml]\n", "", 0);
    let mut names: Vec<String> = std::fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "out", "tasks.toml", "two"]);
}

#[test]
fn a_dir_that_is_a_regular_file_says_so() {
    let toml = r#"
        [tasks.t]
        dir = "notes.txt"
        run = "true"
        [tasks.s]
        run = [{ sh = "true", dir = "notes.txt" }]
        "#;
    Test::with(toml)
        .file("notes.txt", "text\n")
        .args(&["-q", "t"])
        .expect(
            "",
            "error: t failed: `[TMP]/notes.txt` is a file, not a directory\n",
            1,
        );
    Test::with(toml)
        .file("notes.txt", "text\n")
        .args(&["-q", "s"])
        .expect(
            "",
            "error: s failed at `true`: `[TMP]/notes.txt` is a file, not a directory\n",
            1,
        );
}

#[test]
fn without_path_a_missing_program_says_path_is_not_set() {
    Test::with(
        r#"
        [tasks.t]
        run = "echo hi"
        [tasks.c]
        run = [{ cmd = ["true"] }]
        [tasks.abs]
        run = [{ cmd = ["/bin/sh", "-c", "echo absolute"] }]
        "#,
    )
    .env_remove("PATH")
    .args(&["-q", "-k", "t", "c", "abs"])
    .expect(
        "absolute\n",
        "error: t failed at `echo hi`: program not found: `sh`: PATH is not set in the step's environment\nerror: c failed at `true`: program not found: `true`: PATH is not set in the step's environment\n",
        127,
    );
}

#[test]
fn task_dir_is_relative_to_the_root() {
    let t = Test::with(
        r#"
        [tasks.t]
        dir = "a/b"
        run = "pwd"
        "#,
    )
    .cwd("a/b")
    .cwd("elsewhere")
    .args(&["-q", "t"]);
    t.expect("[TMP]/a/b\n", "", 0);
}

#[test]
fn a_missing_dir_fails_with_status_1_naming_it() {
    let ran = Test::with(
        r#"
        [tasks.t]
        dir = "nope"
        run = "echo hi"
        "#,
    )
    .args(&["t"])
    .code(1);
    ran.stderr_has("nope");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn a_missing_program_fails_with_127_naming_it() {
    for (toml, program) in [
        (
            "[tasks.t]\nshell = [\"no-such-shell\", \"-c\"]\nrun = \"echo hi\"\n",
            "no-such-shell",
        ),
        (
            "[tasks.t]\nrun = [{ cmd = [\"no-such-cmd\", \"x\"] }]\n",
            "no-such-cmd",
        ),
        (
            "[tasks.t]\nrun = [{ pipe = [\"echo hi\", \"no-such-stage -l\"] }]\n",
            "no-such-stage",
        ),
        (
            "[settings]\nshell = [\"no-such-shell\", \"-c\"]\n[tasks.t]\nrun = \"echo hi\"\n",
            "no-such-shell",
        ),
    ] {
        let ran = Test::with(toml).args(&["t"]).code(127);
        ran.stderr_has(&format!("`{program}`"));
        assert_eq!(ran.stdout_text(), "");
    }
}

#[test]
fn the_exit_status_is_the_commands() {
    Test::with("[tasks.t]\nrun = \"exit 42\"\n")
        .args(&["-q", "t"])
        .expect("", "error: t failed at `exit 42`: exit status 42\n", 42);
}

#[test]
fn death_by_signal_is_128_plus_n() {
    Test::with("[tasks.t]\nrun = \"kill -TERM $$\"\n")
        .args(&["-q", "t"])
        .code(143)
        .stderr_has("signal 15");
}

#[test]
fn platforms_elsewhere_skip_with_a_note() {
    let other = if cfg!(target_os = "linux") {
        "macos"
    } else {
        "linux"
    };
    let t = Test::with(&format!(
        "[tasks.t]\nplatforms = [\"{other}\", \"windows\"]\nrun = \"touch ran\"\n[tasks.here]\nplatforms = [\"unix\"]\nrun = \"echo here\"\n"
    ))
    .args(&["t", "here"]);
    let ran = t.code(0);
    ran.stdout("here\n").stderr_has("[t] skipped");
    assert!(!t.path().join("ran").exists());
}

#[test]
fn confirm_without_a_terminal_fails_unless_yes() {
    let toml = "[tasks.t]\nconfirm = \"Really?\"\nrun = \"touch ran\"\n";
    let t = Test::with(toml).args(&["t"]);
    let ran = t.code(1);
    ran.stderr_has("Really?").stderr_has("--yes");
    assert!(!t.path().join("ran").exists());
    let t = Test::with(toml).args(&["-y", "t"]);
    t.expect("", "[t] $ touch ran\n", 0);
    assert!(t.path().join("ran").exists());
}

#[test]
fn ignore_failure_at_task_level_counts_as_success() {
    let t = Test::with(
        r#"
        [tasks.t]
        ignore_failure = true
        run = ["exit 3", "touch not-reached"]
        [tasks.next]
        run = "echo next"
        "#,
    )
    .args(&["t", "next"]);
    let ran = t.code(0);
    ran.stdout("next\n").stderr_has("ignored");
    assert!(!t.path().join("not-reached").exists());
}

#[test]
fn steps_see_stdin_when_alone() {
    Test::with("[tasks.t]\nrun = \"cat\"\n")
        .args(&["-q", "t"])
        .stdin("from stdin\n")
        .expect("from stdin\n", "", 0);
}

#[test]
fn a_task_with_sources_runs_the_first_time_without_a_note() {
    Test::with(
        r#"
        [tasks.build]
        sources = ["src/**"]
        run = "echo built"
        "#,
    )
    .args(&["build"])
    .expect("built\n", "[build] $ echo built\n", 0);
}

/// Drive tasker on a pseudo-terminal, as a user at a shell would: python's
/// `pty` module gives it a terminal; `keys` is typed once `wait_for` shows.
fn on_a_terminal(test: &Test, task: &str, wait_for: &str, keys: &[u8]) -> (String, i32) {
    common::on_a_terminal(test, &["-q", task], &[(wait_for, keys)])
}

#[test]
fn a_run_alone_on_a_terminal_reads_it() {
    let test = Test::with(
        r#"
        [tasks.ask]
        run = "printf 'name? '; read -r x; echo got $x"
        "#,
    );
    let (out, code) = on_a_terminal(&test, "ask", "name? ", b"hello\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("got hello"), "{out}");
}

#[test]
fn ctrl_c_on_the_terminal_reaches_the_run_and_its_children() {
    let test = Test::with(
        r#"
        [tasks.long]
        run = "sh -c 'echo $$ > child.pid; exec sleep 60' & while [ ! -s child.pid ]; do sleep 0.01; done; echo started; wait"
        "#,
    );
    let (out, code) = on_a_terminal(&test, "long", "started", b"\x03");
    assert_eq!(code, 130, "{out}");
    let pid: u32 = test.read("child.pid").trim().parse().unwrap();
    assert!(
        !common::alive(pid),
        "a child of the interrupted run survived"
    );
}

#[test]
fn confirm_asks_on_the_terminal() {
    let test = Test::with(
        r#"
        [tasks.deploy]
        confirm = "Deploy {{ target }}?"
        run = "echo deploying"
        [[tasks.deploy.args]]
        name = "target"
        default = "prod"
        "#,
    );
    let (out, code) = on_a_terminal(&test, "deploy", "Deploy prod? [y/N] ", b"y\n");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("deploying"), "{out}");
    let (out, code) = on_a_terminal(&test, "deploy", "Deploy prod? [y/N] ", b"n\n");
    assert_eq!(code, 1, "{out}");
    assert!(!out.contains("deploying"), "{out}");
    assert!(out.contains("not confirmed"), "{out}");
}

#[test]
fn prefixed_output_on_a_terminal_asks_runs_to_keep_their_colours() {
    let test = Test::with(
        r#"
        [settings]
        output = "prefixed"
        [tasks.show]
        run = "echo c=${CLICOLOR_FORCE:-} f=${FORCE_COLOR:-}"
        [tasks.kept]
        capture = true
        run = "echo c=${CLICOLOR_FORCE:-} f=${FORCE_COLOR:-}"
        "#,
    );
    let (out, code) = on_a_terminal(&test, "show", "", b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("c=1 f=1"), "{out}");
    // Captured output is read by tasker itself: it stays plain.
    let (out, code) = on_a_terminal(&test, "kept", "", b"");
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("c= f="), "{out}");
}

/// `TASKER_TASK` and `TASKER_ROOT` reach every step, over the task's own
/// `env`: a program started without a shell, a pipe's stages and a
/// template's `env` alike.
#[test]
fn tasker_task_and_root_reach_programs_pipes_and_templates() {
    Test::with(
        r#"
        [tasks.t]
        env = { TASKER_TASK = "mine" }
        run = [
            "printenv TASKER_TASK",
            { pipe = ["printenv TASKER_TASK", "cat"] },
            "echo {{ env.TASKER_TASK }}",
            "printenv TASKER_ROOT",
        ]
        "#,
    )
    .args(&["-q", "t"])
    .expect("t\nt\nt\n[TMP]\n", "", 0);
}

// ------------------------------------------- status, preconditions, quiet

#[test]
fn status_makes_a_run_up_to_date_when_every_command_succeeds() {
    let file = r#"
        [tasks.gen]
        status = ["test -f out.txt", "true"]
        run = "echo made >> out.txt"
        "#;
    let t = Test::with(file);
    let ran = t.run_with(&["gen"]);
    assert_eq!(
        (ran.stderr_text(), ran.exit_code()),
        ("[gen] $ echo made >> out.txt\n", 0)
    );
    let ran = t.run_with(&["gen"]);
    assert_eq!(
        (ran.stderr_text(), ran.exit_code()),
        ("[gen] up to date\n", 0)
    );
    assert_eq!(t.read("out.txt"), "made\n");
    // -B runs it anyway; -n says what it would check and runs nothing.
    t.run_with(&["-B", "gen"])
        .expect("", "[gen] $ echo made >> out.txt\n", 0);
    assert_eq!(t.read("out.txt"), "made\nmade\n");
    let ran = t.run_with(&["-n", "gen"]);
    assert_eq!(
        ran.stderr_text(),
        "[gen] up to date when `test -f out.txt` succeeds\n[gen] up to date when `true` succeeds\n[gen] $ echo made >> out.txt\n"
    );
}

#[test]
fn a_failing_precondition_fails_the_run_with_its_message_and_no_step_runs() {
    let file = r#"
        [tasks.deploy]
        preconditions = ["true", { sh = "test -f key", msg = "no key for {{ target }}: run setup" }]
        run = "echo deploy {{ target }}"
        [[tasks.deploy.args]]
        name = "target"
        default = "prod"
        [tasks.plain]
        preconditions = ["exit 3"]
        run = "echo never"
        "#;
    Test::with(file).args(&["-q", "deploy"]).expect(
        "",
        "error: deploy failed: no key for prod: run setup\n",
        1,
    );
    Test::with(file).args(&["-q", "plain"]).expect(
        "",
        "error: plain failed: precondition `exit 3` failed with status 3\n",
        1,
    );
    Test::with(file)
        .file("key", "")
        .args(&["-q", "deploy"])
        .expect("deploy prod\n", "", 0);
}

#[test]
fn a_quiet_step_is_not_echoed_but_dry_run_prints_it() {
    let file = r#"
        [tasks.t]
        run = [{ sh = "echo one", quiet = true }, "echo two"]
        "#;
    Test::with(file)
        .arg("t")
        .expect("one\ntwo\n", "[t] $ echo two\n", 0);
    Test::with(file)
        .args(&["-n", "t"])
        .expect("", "[t] $ echo one\n[t] $ echo two\n", 0);
}
