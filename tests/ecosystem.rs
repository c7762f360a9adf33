//! SPEC 1: what tasker shares with the tools around it: colour by the
//! terminal conventions (`--color`, `NO_COLOR`, `CLICOLOR`,
//! `CLICOLOR_FORCE`, `TERM`), completions that ask tasker at TAB time, and
//! the man page.
mod common;
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
