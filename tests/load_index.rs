//! The load index: a run of one task of a large file loads only what the
//! task reaches (`.tasker/load-index`), and nothing a user reads changes.

use crate::common::Test;

/// A file over the index's size threshold: `n` filler tasks, then the
/// tasks under test.
fn large(tail: &str) -> String {
    let mut text = String::from("[settings]\njobs = 2\n\n[vars]\ngreeting = \"hello\"\n\n");
    for i in 0..1500 {
        text.push_str(&format!(
            "[tasks.filler{i}]\nhelp = \"Filler task number {i}\"\nrun = \"echo filler {i}\"\n\n"
        ));
    }
    text.push_str(tail);
    text
}

const TAIL: &str = r#"
[tasks.base]
run = "echo base {{ greeting }}"

[tasks.build]
help = "Build it"
deps = ["base"]
aliases = ["b"]
run = "echo build {{ release }}"

[[tasks.build.args]]
name = "release"
type = "bool"

[tasks.broken]
run = "echo {{ nosuch }}"

[tasks.dynamic]
run = [{ task = "{{ 'base' }}" }]
"#;

fn index_of(test: &Test) -> Option<String> {
    std::fs::read_to_string(test.path().join(".tasker/load-index")).ok()
}

#[test]
fn a_second_run_reads_the_index_and_prints_the_same() {
    let test = Test::with(&large(TAIL));
    let cases: &[&[&str]] = &[
        &["build", "--release"],
        &["b"],
        &["broken"],
        &["build", "--nope"],
        &["build", "--help"],
        &["-n", "build"],
        &["dynamic"],
        &["biuld"],
    ];
    for args in cases {
        std::fs::remove_dir_all(test.path().join(".tasker")).ok();
        let whole = test.run_with(args);
        assert!(
            index_of(&test).is_some(),
            "a run writes the index ({args:?})"
        );
        let part = test.run_with(args);
        assert_eq!(
            (whole.stdout_text(), whole.stderr_text(), whole.exit_code()),
            (part.stdout_text(), part.stderr_text(), part.exit_code()),
            "{args:?}"
        );
    }
    let verbose = test.run_with(&["-v", "base"]);
    verbose.stdout("base hello\n");
    let said = verbose
        .stderr_text()
        .lines()
        .find(|l| l.starts_with("tasker: loaded "))
        .unwrap_or_else(|| panic!("no load-index line: {}", verbose.stderr_text()));
    let size: usize = said["tasker: loaded ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(size < 200, "a part holds only what `base` needs: {said}");
    let index = index_of(&test).unwrap();
    assert!(
        index.lines().any(|l| l.starts_with("task b ")),
        "aliases are indexed"
    );
    assert!(
        !index.lines().any(|l| l.starts_with("task dynamic")),
        "a task with a templated call needs every task"
    );
}

#[test]
fn a_part_is_small_and_messages_name_the_files_own_lines() {
    let test = Test::with(&large(TAIL));
    test.run_with(&["base"])
        .expect("base hello\n", "[base] $ echo base hello\n", 0);
    let ran = test.run_with(&["broken"]);
    ran.code(2);
    // The line of `run = "echo {{ nosuch }}"` in the whole file.
    let text = std::fs::read_to_string(test.path().join("tasks.toml")).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("nosuch"))
        .map(|i| i + 1)
        .unwrap();
    assert!(
        ran.stderr_text().contains(&format!("tasks.toml:{line}:")),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn a_changed_file_is_loaded_whole_and_its_errors_are_reported() {
    let test = Test::with(&large(TAIL));
    test.run_with(&["build"]).expect(
        "base hello\nbuild false\n",
        "[base] $ echo base hello\n[build] $ echo build false\n",
        0,
    );
    assert!(index_of(&test).is_some());
    // An error far from `build`: the index no longer matches the content.
    let text = large(TAIL).replace("[tasks.filler7]", "[tasks.filler7]\nbogus = 1");
    std::fs::write(test.path().join("tasks.toml"), text).unwrap();
    let ran = test.run_with(&["build"]);
    assert_eq!(ran.exit_code(), 2, "{}", ran.stderr_text());
    assert!(
        ran.stderr_text().contains("unknown key `bogus`"),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn listing_and_check_always_read_the_whole_file() {
    let test = Test::with(&large(&TAIL.replace("{{ nosuch }}", "fine")));
    test.run_with(&["base"])
        .expect("base hello\n", "[base] $ echo base hello\n", 0);
    let listed = test.run_with(&["-l"]);
    assert!(
        listed.stdout_text().contains("filler1499"),
        "{}",
        listed.stdout_text()
    );
    let checked = test.run_with(&["--check"]);
    assert!(
        checked.stderr_text().contains("(1504 tasks)"),
        "{}",
        checked.stderr_text()
    );
}

/// Whatever sits at `.tasker/load-index` (a FIFO, garbage, ranges past the
/// end of the file), a run loads the whole file and goes on.
#[test]
fn a_broken_index_is_never_trusted_and_never_waited_for() {
    let test = Test::with(&large(TAIL));
    let index = test.path().join(".tasker/load-index");
    test.run_with(&["base"])
        .expect("base hello\n", "[base] $ echo base hello\n", 0);
    let good = std::fs::read_to_string(&index).unwrap();
    let hash = good.lines().nth(1).unwrap();
    let past_the_end = format!(
        "tasker-load-index 1\n{hash}\n{}\ndefault \ncommon\ntask base 0-99999999999 7-3\n",
        good.lines().nth(2).unwrap()
    );
    for broken in ["\u{0}garbage", past_the_end.as_str()] {
        std::fs::write(&index, broken).unwrap();
        let ran = test.run_with(&["-v", "base"]);
        assert_eq!(ran.exit_code(), 0, "{}", ran.stderr_text());
        assert!(
            ran.stdout_text().contains("base hello"),
            "{}",
            ran.stdout_text()
        );
        assert!(
            !ran.stderr_text().contains("load-index)"),
            "{}",
            ran.stderr_text()
        );
    }
    std::fs::remove_file(&index).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(&index)
        .status()
        .unwrap();
    assert!(status.success());
    test.run_with(&["base"])
        .expect("base hello\n", "[base] $ echo base hello\n", 0);
}

fn listing_cache(test: &Test) -> Option<String> {
    std::fs::read_to_string(test.path().join(".tasker/list-cache")).ok()
}

/// `-l` of a large file prints from the listing cache while the file's
/// bytes are the ones it was made from, and exactly what a whole load
/// prints; any change of the file, `--all`, or a damaged cache, and the
/// listing comes from the file again.
#[test]
fn the_listing_of_a_large_file_is_cached_and_always_exact() {
    let test = Test::with(&large(TAIL));
    let first = test.run_with(&["-l"]);
    first.code(0);
    assert!(
        first.stdout_text().contains("build [--release]"),
        "{}",
        first.stdout_text()
    );
    assert!(listing_cache(&test).is_some());
    // From the cache: the same bytes.
    let second = test.run_with(&["-l"]);
    assert_eq!(
        (second.stdout_text(), second.exit_code()),
        (first.stdout_text(), 0)
    );
    // `--all` is its own listing.
    let all = test.run_with(&["-l", "--all"]);
    all.code(0);
    assert_eq!(
        all.stdout_text(),
        first.stdout_text(),
        "no private task: the same text"
    );
    // A changed file lists anew.
    let changed = large(TAIL).replace("help = \"Build it\"", "help = \"Build it all\"");
    std::fs::write(test.path().join("tasks.toml"), &changed).unwrap();
    let third = test.run_with(&["-l"]);
    third.code(0);
    assert!(
        third.stdout_text().contains("Build it all"),
        "{}",
        third.stdout_text()
    );
    // A damaged cache is no listing.
    std::fs::write(test.path().join(".tasker/list-cache"), "garbage").unwrap();
    assert_eq!(test.run_with(&["-l"]).stdout_text(), third.stdout_text());
    // A broken file is an error, whatever the cache holds.
    std::fs::write(
        test.path().join("tasks.toml"),
        changed.replace("[tasks.base]", "[tasks.base]\nbogus = 1"),
    )
    .unwrap();
    test.run_with(&["-l"]).code(2).stderr_has("bogus");
}

#[test]
fn a_large_file_with_includes_is_never_listed_from_the_cache() {
    let test = Test::with(&format!("[include]\nlib = \"lib.toml\"\n\n{}", large(TAIL)))
        .file("lib.toml", "[tasks.one]\nhelp = \"One\"\nrun = \"true\"\n");
    let first = test.run_with(&["-l"]);
    first.code(0);
    assert!(
        first.stdout_text().contains("lib:one"),
        "{}",
        first.stdout_text()
    );
    assert!(listing_cache(&test).is_none());
}
