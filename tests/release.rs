//! SPEC 12, releases: the project's own `tasks.toml` builds the release
//! archives. Its `dist` task is checked here by its dry run alone: a real
//! one cross-builds four release binaries, which is `tasker dist`'s job and
//! not the suite's (CI runs the static binary through `.ci/static-linux`).

use crate::common::Test;
use std::path::Path;

/// A copy of this repository's `tasks.toml`, beside a Cargo.toml of
/// version 1.2.3, so that the names do not change with each release.
fn project() -> Test {
    let tasks = Path::new(env!("CARGO_MANIFEST_DIR")).join("tasks.toml");
    let tasks = std::fs::read_to_string(tasks).expect("read tasks.toml");
    Test::new()
        .file("tasks.toml", &tasks)
        .file(
            "Cargo.toml",
            "[package]\nname = \"tasker\"\nversion = \"1.2.3\"\n",
        )
        .env("SOURCE_DATE_EPOCH", "0")
}

#[test]
fn the_project_tasks_pass_check() {
    project()
        .arg("--check")
        .code(0)
        .stderr_has("tasks.toml: ok (");
}

#[test]
fn dist_builds_every_target_in_one_cargo_and_sums_the_archives() {
    let ran = project().args(&["-n", "dist"]).code(0);
    ran.stdout("");
    let stderr = ran.stderr_text();
    let builds: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("cargo zigbuild"))
        .collect();
    assert_eq!(
        builds,
        ["[_dist-build] $ cargo zigbuild --release --locked \
          --target x86_64-unknown-linux-musl --target aarch64-unknown-linux-musl \
          --target x86_64-apple-darwin --target aarch64-apple-darwin"],
        "{stderr}"
    );
    for target in [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ] {
        assert!(
            stderr.contains(&format!(
                "[_dist-archive[target={target}]] $ name=tasker-1.2.3-{target}\n"
            )),
            "{stderr}"
        );
    }
    assert!(
        stderr.contains(
            "sha256sum tasker-1.2.3-x86_64-unknown-linux-musl.tar.gz \
             tasker-1.2.3-aarch64-unknown-linux-musl.tar.gz \
             tasker-1.2.3-x86_64-apple-darwin.tar.gz \
             tasker-1.2.3-aarch64-apple-darwin.tar.gz > SHA256SUMS\n"
        ),
        "{stderr}"
    );
}

#[test]
fn dist_of_some_targets_builds_and_sums_only_those() {
    let ran = project()
        .args(&["-n", "dist", "x86_64-unknown-linux-musl"])
        .code(0);
    ran.stdout("");
    insta::assert_snapshot!(ran.stderr_text());
}
