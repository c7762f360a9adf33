//! SPEC 13: `tasker --import FILE`. Files in the style of real projects
//! go in; what comes out must pass `--check`, keep every name, and print
//! the expected commands under `-n`. Where the original tool is installed
//! (make is on CI; just and go-task are compared when a developer has
//! them), `tasker -n TASK` is compared with its dry run, task by task.

use crate::common::{Ran, Test};

const JUSTFILE: &str = r#"
# Tasks for the web service.

set shell := ["bash", "-uc"]

target := "debug"
flags := "--locked --all-features"
version := `echo 1.4.2`
export RUST_LOG := "info"

alias b := build
alias t := test

# Build the project
[group('dev')]
build profile=target: fmt
    cargo build --profile {{profile}} {{flags}}
    @echo "built {{profile}}"

# Run the tests, filtered
[group('dev')]
test +filters='': build
    cargo test {{filters}}

fmt:
    cargo fmt --all

lint:
    cargo clippy --all-targets -- -D warnings

_cleanup:
    -rm -rf target/tmp

[confirm("Deploy to production?")]
[group('ops')]
deploy where="staging" $TOKEN="none": (build "release") && _cleanup
    echo "deploying {{version}} to {{where}}"
    ./scripts/deploy.sh "{{where}}"

[no-cd]
here:
    pwd

[private]
stats:
    #!/usr/bin/env python3
    import sys
    print("profile {{target}}")
    for i in range(2):
        print(i)

count *files:
    wc -l {{files}} | tail -1
    echo {{ uppercase(target) }} {{ sha256_file('x') }} ${#files}
"#;

const MAKEFILE: &str = "# Build the demo program.
include common.mk

CC := cc
CFLAGS = -O2 -Wall
LDFLAGS += -lm
BIN = demo
OBJS = main.o util.o
VERSION := $(shell echo 1.2.3)

.PHONY: all clean install test dist

all: $(BIN) ## Build everything

$(BIN): $(OBJS)
\t$(CC) $(CFLAGS) -o $@ $^ $(LDFLAGS)

main.o: main.c
\t$(CC) $(CFLAGS) -c $< -o $@

util.o: util.c
\t$(CC) $(CFLAGS) -c $< -o $@

# Remove what the build made
clean:
\t-rm -f $(BIN) *.o
\trm -rf dist

install: all ## Install into PREFIX
\tinstall -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/$(BIN)

test: all
\tfor f in tests/*.sh; do echo \"running $$f\"; done
\t./$(BIN) --version $(VERSION)

dist: clean all
\tmkdir -p dist && tar czf dist/$(BIN)-$(VERSION).tar.gz $(BIN)

%.txt: %.md
\tpandoc $< -o $@
";

const COMMON_MK: &str = "# Shared settings
PREFIX ?= /usr/local
";

const TASKFILE: &str = r#"
version: '3'

vars:
  APP: demo
  GIT_SHA:
    sh: echo abc123
  LDFLAGS: -s -w

env:
  CGO_ENABLED: '0'

includes:
  docs:
    taskfile: ./docs
    dir: ./docs

tasks:
  default:
    cmds:
      - task: build

  # Compile the binary
  build:
    desc: Build the app
    aliases: [b]
    deps: [generate]
    sources: ['**/*.go']
    generates: [bin/demo]
    cmds:
      - go build -ldflags "{{.LDFLAGS}}" -o bin/{{.APP}} . {{.CLI_ARGS}}
      - echo built {{.GIT_SHA}}

  generate:
    cmds:
      - go generate ./...
    status:
      - test -f gen.go

  lint:fix:
    desc: Fix lint issues
    cmds:
      - golangci-lint run --fix

  release:
    prompt: Release {{.APP}}?
    preconditions:
      - sh: test -z "$(git status --porcelain)"
        msg: The tree is dirty
    cmds:
      - task: compile
        vars:
          GOOS: darwin
      - echo released

  compile:
    internal: true
    cmds:
      - GOOS={{.GOOS}} go build -o bin/{{.APP}}-{{.GOOS}} .
      - defer: echo cleanup

  cross:
    deps:
      - task: compile
        vars: {GOOS: linux}
    cmds:
      - echo cross {{if eq .APP "demo"}}ok{{else}}odd{{end}}
"#;

const DOCS_TASKFILE: &str = r#"
version: '3'
tasks:
  build:
    desc: Build the docs
    cmds:
      - mdbook build
  serve:
    deps: [build]
    cmds:
      - mdbook serve
      - task: :lint:fix
"#;

const PACKAGE_JSON: &str = r#"{
  "name": "web",
  "version": "1.0.0",
  "scripts": {
    "prebuild": "rimraf dist",
    "build": "tsc -p . && vite build",
    "postbuild": "echo built $npm_package_version",
    "build:css": "sass src/main.scss dist/main.css",
    "lint": "eslint .",
    "lint:fix": "npm run lint -- --fix",
    "test": "vitest run",
    "ci": "npm run lint && npm test && npm run build",
    "fmt": "prettier --write '{src,test}/**/*.ts'"
  }
}
"#;

/// Import `name` in `test`'s directory, write the result as tasks.toml,
/// and check that it passes `--check`.
fn import(test: &Test, name: &str) -> Ran {
    let ran = test.run_with(&["--import", name]);
    assert_eq!(ran.exit_code(), 0, "stderr:\n{}", ran.stderr_text());
    std::fs::write(test.path().join("tasks.toml"), ran.stdout_text()).unwrap();
    let check = test.run_with(&["--check"]);
    assert_eq!(
        check.exit_code(),
        0,
        "--check:\n{}\n{}",
        check.stderr_text(),
        ran.stdout_text()
    );
    check.stderr_has("./tasks.toml: ok (");
    ran
}

/// The commands `tasker -n TASK` prints, one per run step (task steps
/// left out: the callee's commands follow).
fn dry_run(test: &Test, task: &str) -> Vec<String> {
    let ran = test.run_with(&["-n", "-y", task]);
    assert_eq!(
        ran.exit_code(),
        0,
        "tasker -n {task}:\n{}",
        ran.stderr_text()
    );
    let mut out: Vec<String> = Vec::new();
    for line in ran.stderr_text().lines() {
        if let Some((_, command)) = line.split_once("] $ ") {
            out.push(command.to_string());
        } else if let Some(more) = line.strip_prefix('[').and_then(|l| l.split_once("]   ")) {
            // The lines of a script after its first.
            if let Some(last) = out.last_mut() {
                last.push('\n');
                last.push_str(more.1);
            }
        }
    }
    out.retain(|c| !c.starts_with("task "));
    out
}

/// The task names `tasker --summary` prints.
fn names(test: &Test) -> Vec<String> {
    let ran = test.run_with(&["--summary"]);
    ran.stdout_text()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Commands compared word by word, as the shell would split them: the
/// original runner and tasker quote the same words differently.
fn words(commands: &[String]) -> Vec<Vec<String>> {
    commands
        .iter()
        .map(|c| {
            let c = c.replace("\\\n", " ");
            shell_words::split(&c).unwrap_or_else(|_| vec![c.clone()])
        })
        .collect()
}

/// The path of `tool` when it is installed, else a printed note.
fn installed(tool: &str) -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        println!("`{tool}` is not installed: its dry runs are not compared");
    }
    found
}

fn original(test: &Test, program: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(program);
    cmd.args(args).current_dir(test.path());
    crate::common::output_of(&mut cmd)
}

#[test]
fn a_justfile_becomes_tasks_with_arguments_groups_and_aliases() {
    let test = Test::new().file("justfile", JUSTFILE);
    let ran = import(&test, "justfile");
    insta::assert_snapshot!(format!(
        "{}\n--- stderr ---\n{}",
        ran.stdout_text(),
        ran.stderr_text()
    ));
    let names = names(&test);
    for name in ["build", "test", "fmt", "lint", "deploy", "here", "count"] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(
        dry_run(&test, "build"),
        [
            "cargo fmt --all",
            "cargo build --profile debug --locked --all-features",
            "echo \"built debug\""
        ]
    );
    assert_eq!(
        dry_run(&test, "deploy"),
        [
            "cargo fmt --all",
            "cargo build --profile release --locked --all-features",
            "echo \"built release\"",
            "echo \"deploying 1.4.2 to staging\"",
            "./scripts/deploy.sh staging",
            "rm -rf target/tmp"
        ]
    );
    assert_eq!(dry_run(&test, "t"), dry_run(&test, "test"));
    assert_eq!(
        dry_run(&test, "stats"),
        ["import sys\nprint(\"profile debug\")\nfor i in range(2):\n    print(i)"]
    );
    let Some(just) = installed("just") else {
        return;
    };
    for task in ["build", "test", "fmt", "lint", "_cleanup", "here"] {
        let out = original(&test, &just, &["-n", task]);
        assert!(out.status.success(), "just -n {task}");
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            words(&dry_run(&test, task)),
            words(&theirs),
            "just -n {task}"
        );
    }
}

#[test]
fn a_makefile_becomes_phony_and_file_tasks_with_sources_and_outputs() {
    let test = Test::new()
        .file("Makefile", MAKEFILE)
        .file("common.mk", COMMON_MK)
        .file("main.c", "int main(void) { return 0; }\n")
        .file("util.c", "int util;\n");
    let ran = import(&test, "Makefile");
    insta::assert_snapshot!(format!(
        "{}\n--- stderr ---\n{}",
        ran.stdout_text(),
        ran.stderr_text()
    ));
    let names = names(&test);
    for name in [
        "all", "demo", "main-o", "util-o", "clean", "install", "test", "dist",
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(
        dry_run(&test, "test"),
        [
            "cc -O2 -Wall -c main.c -o main.o",
            "cc -O2 -Wall -c util.c -o util.o",
            "cc -O2 -Wall -o demo main.o util.o -lm",
            "for f in tests/*.sh; do echo \"running $f\"; done",
            "./demo --version 1.2.3"
        ]
    );
    let Some(make) = installed("make") else {
        return;
    };
    for (task, target) in [
        ("all", "all"),
        ("demo", "demo"),
        ("main-o", "main.o"),
        ("clean", "clean"),
        ("install", "install"),
        ("test", "test"),
    ] {
        let out = original(&test, &make, &["-n", target]);
        assert!(out.status.success(), "make -n {target}");
        let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(
            words(&dry_run(&test, task)),
            words(&theirs),
            "make -n {target}"
        );
    }
}

#[test]
fn a_taskfile_and_its_includes_become_one_file() {
    let test = Test::new()
        .file("Taskfile.yml", TASKFILE)
        .file("docs/Taskfile.yml", DOCS_TASKFILE);
    let ran = import(&test, "Taskfile.yml");
    insta::assert_snapshot!(format!(
        "{}\n--- stderr ---\n{}",
        ran.stdout_text(),
        ran.stderr_text()
    ));
    let names = names(&test);
    for name in [
        "default",
        "build",
        "generate",
        "lint-fix",
        "release",
        "cross",
        "docs-build",
        "docs-serve",
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(
        dry_run(&test, "build"),
        [
            "go generate ./...",
            "go build -ldflags '-s -w' -o bin/demo .",
            "echo built abc123"
        ]
    );
    assert_eq!(
        dry_run(&test, "cross"),
        [
            "GOOS=linux go build -o bin/demo-linux .",
            "echo cleanup",
            "echo cross ok"
        ]
    );
    assert_eq!(dry_run(&test, "b"), dry_run(&test, "build"));
    let Some(task) = installed("task") else {
        return;
    };
    for (ours, theirs) in [
        ("build", "build"),
        ("lint-fix", "lint:fix"),
        ("cross", "cross"),
        ("docs-serve", "docs:serve"),
        ("default", "default"),
    ] {
        let out = original(&test, &task, &["--dry", theirs]);
        assert!(out.status.success(), "task --dry {theirs}");
        let printed: Vec<String> = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.strip_prefix("task: [").and_then(|l| l.split_once("] ")))
            .map(|(_, command)| command.to_string())
            .collect();
        assert_eq!(
            words(&dry_run(&test, ours)),
            words(&printed),
            "task --dry {theirs}"
        );
    }
}

#[test]
fn package_json_scripts_run_their_pre_and_post_scripts_and_call_each_other() {
    let test = Test::new().file("package.json", PACKAGE_JSON);
    let ran = import(&test, "package.json");
    insta::assert_snapshot!(format!(
        "{}\n--- stderr ---\n{}",
        ran.stdout_text(),
        ran.stderr_text()
    ));
    let names = names(&test);
    for name in [
        "prebuild",
        "build",
        "postbuild",
        "build-css",
        "lint",
        "lint-fix",
        "test",
        "ci",
        "fmt",
    ] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    assert_eq!(
        dry_run(&test, "ci"),
        [
            "eslint .",
            "vitest run",
            "rimraf dist",
            "tsc -p . && vite build",
            "echo built $npm_package_version"
        ]
    );
    assert_eq!(dry_run(&test, "lint-fix"), ["eslint . --fix"]);
}

#[test]
fn a_file_that_cannot_be_imported_is_a_clear_error() {
    Test::new()
        .args(&["--import", "justfile"])
        .expect("", "error: no file at `justfile`\n", 2);
    Test::new()
        .file("build.gradle", "task hello {}\n")
        .args(&["--import", "build.gradle"])
        .code(2)
        .stderr_has("error: cannot tell what kind of file `build.gradle` is\nhelp: --import reads a justfile");
    let ran = Test::new()
        .file("Taskfile.yml", "version: '3'\ntasks:\n  a: [x\n")
        .args(&["--import", "Taskfile.yml"])
        .code(2);
    ran.stderr_has("is not YAML").stderr_has("Taskfile.yml:");
    let ran = Test::new()
        .file(
            "package.json",
            "{\n  \"scripts\": {\n    \"a\": 1,\n  }\n}\n",
        )
        .args(&["--import", "package.json"])
        .code(2);
    ran.stderr_has("is not a package.json")
        .stderr_has("package.json:");
    Test::new().arg("--import").arg(".").expect(
        "",
        "error: cannot tell what kind of file `.` is\nhelp: --import reads a justfile, a Taskfile.yml, a Makefile or a package.json, known by their names (also *.just, *.yml, *.mk)\n",
        2,
    );
}
