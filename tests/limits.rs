//! SPEC 6, Limits: whatever the input, tasker ends with a result or a
//! clear error (exit 2), never a panic, a stack overflow or memory without
//! bound; `--check` finds what the file alone decides.
use crate::common;
use common::Test;

/// `--check`, `-l` and a run all refuse the file with this message, and
/// nothing runs.
#[track_caller]
fn refused_everywhere(toml: &str, task: &str, needle: &str) {
    for args in [&["--check"][..], &["-l"][..], &[task][..]] {
        let t = Test::with(toml).args(args);
        let ran = t.code(2);
        ran.stderr_has(needle);
        assert_eq!(ran.stdout_text(), "", "{args:?}");
        assert!(
            !ran.stderr_text().contains("panicked"),
            "{args:?}: {}",
            ran.stderr_text()
        );
        assert!(!t.path().join("ran").exists(), "{args:?}: something ran");
    }
}

#[test]
fn a_duration_too_large_is_a_located_error_even_for_listing() {
    let toml = "[tasks.a]\nrun = \"touch ran\"\ntimeout = \"1e20\"\n";
    refused_everywhere(toml, "a", "`timeout` of task `a` is too large: `1e20`");
    Test::with(toml).args(&["--check"]).expect(
        "",
        r#"
        error: `timeout` of task `a` is too large: `1e20`
         --> ./tasks.toml:3:11
          |
        3 | timeout = "1e20"
          |           ^^^^^^ too large
        help: a duration must fit after the current time; write a smaller one
        "#,
        2,
    );
    let toml = "[tasks.a]\nrun = \"touch ran\"\nretries = 1\nretry_delay = \"1e20\"\n";
    refused_everywhere(toml, "a", "`retry_delay` of task `a` is too large");
}

#[test]
fn retries_out_of_range_names_the_real_range() {
    refused_everywhere(
        "[tasks.a]\nrun = \"touch ran\"\nretries = 4294967296\n",
        "a",
        "`retries` of task `a` must be between 0 and 4294967295",
    );
}

/// `[vars]` where `v0` reads `v1`, which reads `v2`, ..., `v{n-1}` = "end".
fn var_chain(n: usize) -> String {
    let mut toml = String::from("[vars]\n");
    for i in 0..n - 1 {
        toml.push_str(&format!("v{i} = \"{{{{ v{} }}}}\"\n", i + 1));
    }
    toml.push_str(&format!("v{} = \"end\"\n", n - 1));
    toml
}

#[test]
fn a_chain_of_vars_deeper_than_256_is_an_error_not_a_stack_overflow() {
    let toml = format!(
        "{}[tasks.a]\nrun = \"touch ran; echo {{{{ v0 }}}}\"\n",
        var_chain(2000)
    );
    for args in [&["--check"][..], &["a"][..]] {
        let t = Test::with(&toml).args(args);
        t.code(2)
            .stderr_has(
                "var `v0` starts a chain of 2000 vars that read each other; at most 256 may",
            )
            .stderr_has("--> ./tasks.toml:2:1");
        assert!(!t.path().join("ran").exists());
    }
}

#[test]
fn a_chain_of_256_vars_is_evaluated_inside_a_run() {
    // Rendered by the run's own thread, which has the smallest stack.
    let toml = format!(
        "{}[tasks.a]\nrun = \"echo {{{{ v0 }}}}\"\n[tasks.b]\nrun = \"echo b\"\n",
        var_chain(256)
    );
    Test::with(&toml)
        .args(&["-q", "-j2", "-p", "--output", "grouped", "a", "b"])
        .code(0)
        .stdout_has("end\n");
    let toml = format!("{}[tasks.a]\nrun = \"echo {{{{ v0 }}}}\"\n", var_chain(257));
    Test::with(&toml)
        .args(&["--check"])
        .code(2)
        .stderr_has("chain of 257 vars");
}

#[test]
fn a_templated_matrix_is_counted_before_it_is_built() {
    // 100^4 combinations: refused from the product of the axes' sizes,
    // at once, instead of being built.
    let toml = r#"
        [vars]
        hundred = "{% for i in range(100) %}{{ i }}\n{% endfor %}"
        [tasks.a]
        run = "touch ran"
        matrix = { a = "{{ hundred }}", b = "{{ hundred }}", c = "{{ hundred }}", d = "{{ hundred }}" }
        "#;
    let t = Test::with(toml).arg("a");
    t.code(2).stderr_has(
        "the matrix of task `a` expands to 100000000 runs, more than the 100000 allowed",
    );
    assert!(!t.path().join("ran").exists());
    // Below the limit a templated matrix expands as before.
    let toml = r#"
        [tasks.a]
        run = "echo {{ a }}{{ b }}"
        matrix = { a = "{% for i in range(2) %}{{ i }}\n{% endfor %}", b = "x\ny" }
        "#;
    Test::with(toml)
        .args(&["-q", "-j1", "a"])
        .expect("0x\n0y\n1x\n1y\n", "", 0);
}

/// Tasks `t0` .. `t{n-1}`, each a dep of the one before.
fn deps_chain(n: usize, touch: bool) -> String {
    let mut toml = String::new();
    for i in 0..n {
        toml.push_str(&format!("[tasks.t{i}]\n"));
        if touch {
            toml.push_str("run = \"touch ran\"\n");
        }
        if i + 1 < n {
            toml.push_str(&format!("deps = [\"t{}\"]\n", i + 1));
        }
    }
    toml
}

#[test]
fn a_literal_chain_of_calls_deeper_than_256_is_found_by_check() {
    let toml = deps_chain(300, true);
    for args in [&["--check"][..], &["t0"][..]] {
        let t = Test::with(&toml).args(args);
        t.code(2).stderr_has("calls nest ");
        assert!(!t.path().join("ran").exists());
    }
    Test::with(&toml)
        .args(&["--check"])
        .code(2)
        .stderr_has("error: calls nest 299 deep from task `t0`, more than the 256 allowed");
    // 256 levels of nesting (257 tasks) are allowed.
    Test::with(&deps_chain(257, false))
        .args(&["--check"])
        .expect("", "./tasks.toml: ok (257 tasks)\n", 0);
}

#[test]
fn a_chain_of_task_steps_counts_as_nesting_too() {
    let mut toml = String::new();
    for i in 0..300 {
        toml.push_str(&format!("[tasks.t{i}]\n"));
        if i + 1 < 300 {
            toml.push_str(&format!(
                "run = [\"touch ran\", {{ task = \"t{}\" }}]\n",
                i + 1
            ));
        }
    }
    let t = Test::with(&toml).args(&["--check"]);
    t.code(2).stderr_has("calls nest 299 deep from task `t0`");
}

#[test]
fn a_render_that_makes_too_much_text_is_a_located_error() {
    // Found by the render fuzz target: `{{ w * 10833451 }}` made 100 MB of
    // text and quoted it in seconds; twelve of them took half a GiB.
    let big = "{{ \\\"two words\\\" * 10833451 }}";
    for step in [
        format!("\"touch ran; echo {big}\""),
        format!("\"touch ran; echo {}\"", [big; 12].join(" ")),
        format!("[{{ cmd = [\"touch\", \"ran\", \"{big}\"] }}]"),
        "[{ cmd = [\"touch\", \"ran\", \"{{ [\\\"ab\\\" * 3000000, \\\"cd\\\" * 3000000] }}\"] }]"
            .to_string(),
    ] {
        let t = Test::with(&format!("[tasks.t]\nrun = {step}\n")).args(&["-q", "t"]);
        let ran = t.code(2);
        ran.stderr_has("the template of step 1 of task `t` makes too much text")
            .stderr_has(" --> ./tasks.toml:2:");
        assert_eq!(ran.stdout_text(), "", "{step}");
        assert!(!t.path().join("ran").exists(), "{step}: something ran");
    }
    // Up to the bound, text goes through whole.
    Test::with("[tasks.t]\nrun = \"echo {{ (\\\"ab\\\" * 1000000) | length }}\"\n")
        .args(&["-q", "t"])
        .expect("2000000\n", "", 0);
}
