//! The files under examples/ load, pass --check, and their tasks do what
//! their comments promise.
use crate::common;
use common::Test;
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// A test running in a fresh copy of examples/NAME (tasks may write files).
fn example(name: &str) -> Test {
    let mut t = Test::new();
    let from = examples().join(name);
    for entry in std::fs::read_dir(&from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let to = t.path().join(entry.file_name());
            std::fs::write(&to, text).unwrap();
            std::fs::set_permissions(&to, entry.metadata().unwrap().permissions()).unwrap();
        }
    }
    t = t.env("DEPLOY_PORT", "").env("TZ", "UTC");
    t
}

#[test]
fn every_example_passes_check_and_lists() {
    let mut count = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_type().unwrap().is_dir() {
            continue;
        }
        count += 1;
        let file = entry.path().join("tasks.toml");
        let file = file.to_str().unwrap();
        let ran = Test::new().args(&["-f", file, "--check"]).run_with(&[]);
        assert_eq!(ran.exit_code(), 0, "{file}: {}", ran.stderr_text());
        assert!(
            ran.stderr_text().ends_with("tasks)\n"),
            "{file}: {}",
            ran.stderr_text()
        );
        Test::new()
            .args(&["-f", file, "-l"])
            .code(0)
            .stdout_has("Tasks in ");
        let ran = Test::new()
            .args(&["-f", file, "-l", "--json"])
            .run_with(&[]);
        serde_json::from_str::<serde_json::Value>(ran.stdout_text()).expect("JSON listing");
    }
    assert!(count >= 5, "examples found: {count}");
}

#[test]
fn classics() {
    example("classics")
        .args(&["-q", "greet", "Bob"])
        .expect("Hello, Bob!\n", "", 0);
    let ran = example("classics").args(&["-q", "mytime"]).code(0);
    assert_eq!(ran.stdout_text().lines().count(), 1);
    // The default task is mytime.
    let ran = example("classics").args(&["-q"]).code(0);
    assert_eq!(ran.stdout_text().lines().count(), 1);
    // `date -u` is 29 bytes (plus newline) in the C locale; both
    // pipelines agree.
    let ran = example("classics")
        .args(&["-q", "count"])
        .env("LC_ALL", "C")
        .code(0);
    let counts: Vec<&str> = ran.stdout_text().split_whitespace().collect();
    assert_eq!(counts.len(), 2, "{}", ran.stdout_text());
    assert_eq!(counts[0], counts[1]);
    example("classics")
        .args(&["-q", "count-pipe"])
        .env("LC_ALL", "C")
        .code(0)
        .stdout(&format!("{}\n", counts[0]));
    let ran = example("classics").args(&["-q", "script"]).code(0);
    ran.stdout_has("hello number 3\nrunning as task script in [TMP]\n");
}

#[test]
fn arguments() {
    example("arguments")
        .args(&["-q", "deploy", "staging", "-t", "v1", "-t", "latest", "--dry-run"])
        .expect(
            "target: staging\nport: 8080\ntags: v1 latest\nimage:v1\nimage:latest\ndry run, nothing deployed\n",
            "",
            0,
        );
    example("arguments")
        .env("DEPLOY_PORT", "9000")
        .args(&["-q", "deploy", "prod"])
        .expect("target: prod\nport: 9000\ntags:\ndeployed\n", "", 0);
    example("arguments")
        .args(&["-q", "resize", "--width", "640", "--scale", "0.5"])
        .expect("resizing to 640 px wide at scale 0.5, 320 px\n", "", 0);
    example("arguments").args(&["-q", "log", "-vvv"]).expect(
        "verbosity 3\ndebug output enabled\n",
        "",
        0,
    );
    example("arguments")
        .args(&["-q", "hello", "-g", "Hi"])
        .expect("Hi, world\n", "", 0);
    example("arguments")
        .args(&["-q", "files", "a", "b c"])
        .expect("file: a\nfile: b c\n", "", 0);
    example("arguments")
        .args(&["-q", "words", "--", "-n", "two words", "x; echo pwned"])
        .expect("[-n]\n[two words]\n[x; echo pwned]\n", "", 0);
    example("arguments").args(&["-q", "glob"]).expect(
        "quoted, no expansion: *.toml\nsafe, expanded: tasks.toml\n",
        "",
        0,
    );
    example("arguments")
        .args(&["deploy", "--help"])
        .code(0)
        .stdout_has("Usage: tasker deploy <target>");
}

fn have(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn project_builds_runs_and_tests() {
    if !have("gcc") {
        eprintln!("skipped: no gcc");
        return;
    }
    let t = example("project").args(&["-q", "run", "tasker"]);
    t.expect("Hello, tasker!\n", "", 0);
    assert!(t.path().join("build/hello").exists());
    let ran = example("project").args(&["-q", "t"]).code(0);
    ran.stdout_has("all tests passed\n");
    // release asks first; without a terminal and without -y it fails.
    example("project")
        .args(&["release"])
        .code(1)
        .stdout_has("all tests passed\n")
        .stderr_has("--yes");
}

#[test]
fn project_dry_run_release_runs_nothing() {
    let t = example("project").args(&["--set", "version=9.9.9", "-n", "release"]);
    let ran = t.code(0);
    ran.stderr_has("hello-9.9.9.tar.gz")
        .stderr_has("echo released 9.9.9");
    assert!(!t.path().join("build").exists());
}
