//! SPEC 5 and the output modes of SPEC 6: capture, extract, expect,
//! fail_on, respond, hide, prefixed and grouped output.
use crate::common;
use common::{alive, Test};

/// `python3 split.py FIRST SECOND` (each with `\n` escapes): write FIRST,
/// wait (at most 20 s, else fail) until the reader has taken every byte
/// of it from the pipe, then write SECOND. The reader thus sees the two
/// parts in two reads, whatever the machine's load.
const SPLIT: &str = r#"
import fcntl, os, struct, sys, termios, time
def write(text):
    os.write(1, text.encode().decode("unicode_escape").encode("latin-1"))
write(sys.argv[1])
end = time.time() + 20
while struct.unpack("i", fcntl.ioctl(1, termios.FIONREAD, b"\0\0\0\0"))[0]:
    if time.time() > end:
        sys.exit("the first part was never read")
    time.sleep(0.001)
write(sys.argv[2])
"#;

/// A shell snippet: create marker `me`, then wait (bounded) for `other`.
fn barrier(me: &str, other: &str) -> String {
    format!(
        "touch {me}; i=0; while [ ! -e {other} ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done; [ -e {other} ]"
    )
}

#[test]
fn capture_flows_into_later_steps_without_trailing_newlines() {
    Test::with(
        r#"
        [tasks.version]
        capture = true
        run = "echo 1.4.2; echo warn >&2; echo"
        [tasks.show]
        run = [
          { task = "version" },
          "echo 'v=[{{ tasks.version.stdout }}] e=[{{ tasks.version.stderr }}] code={{ tasks.version.exit_code }}'",
        ]
        "#,
    )
    .args(&["-q", "show"])
    .expect("1.4.2\n\nv=[1.4.2] e=[warn] code=0\n", "warn\n", 0);
}

#[test]
fn captured_output_of_a_dep_is_read_by_the_dependent() {
    Test::with(
        r#"
        [tasks.gen]
        capture = true
        hide = true
        run = "echo generated-42"
        [tasks.use]
        deps = ["gen"]
        run = "echo got {{ tasks.gen.stdout }} in {{ tasks.gen.duration_ms >= 0 }}"
        "#,
    )
    .args(&["-q", "use"])
    .expect("got generated-42 in true\n", "", 0);
}

#[test]
fn reading_a_run_that_did_not_happen_is_an_error_naming_it() {
    let ran = Test::with(
        r#"
        [tasks.version]
        capture = true
        run = "echo 1"
        [tasks.show]
        run = "echo {{ tasks.version.stdout }}"
        "#,
    )
    .args(&["show"])
    .code(2);
    ran.stderr_has("task `version` has not run in this invocation");
    assert_eq!(ran.stdout_text(), "");
}

#[test]
fn extract_takes_group_one_or_the_whole_match_from_stdout_or_stderr() {
    Test::with(
        r#"
        [tasks.probe]
        extract = { version = 'v(\d+\.\d+\.\d+)', build = '\d{4}-\d\d', warn = 'W\d+' }
        run = "echo 'tool v1.25.3 built 2024-05'; echo 'W42 deprecated' >&2"
        [tasks.use]
        run = [{ task = "probe" }, "echo {{ tasks.probe.version }} {{ tasks.probe.build }} {{ tasks.probe.warn }}"]
        "#,
    )
    .args(&["-q", "use"])
    .expect("tool v1.25.3 built 2024-05\n1.25.3 2024-05 W42\n", "W42 deprecated\n", 0);
}

/// Over many lines, each `extract` takes the first line it matches on its
/// own, wherever it lies in a block of output, and `^`/`$` are that line's
/// ends; a value found early stops nothing else from looking.
#[test]
fn extract_over_many_lines_takes_each_first_match() {
    Test::with(
        r#"
        [tasks.probe]
        extract = { late = '^line (19999)$', early = 'line (7\d)$', mid = '^(line 1234\d)\r?$' }
        expect = ['^line 15000$']
        hide = "stdout"
        run = "seq -f 'line %g' 1 20000"
        [tasks.use]
        run = [{ task = "probe" }, "echo {{ tasks.probe.early }} {{ tasks.probe.mid }} {{ tasks.probe.late }}"]
        "#,
    )
    .args(&["-q", "use"])
    .expect("70 line 12340 19999\n", "", 0);
}

#[test]
fn extract_that_never_matches_fails_the_run_naming_it() {
    let ran = Test::with(
        r#"
        [tasks.probe]
        extract = { version = 'v(\d+)' }
        run = "echo no version here"
        "#,
    )
    .args(&["probe"])
    .code(1);
    ran.stdout("no version here\n")
        .stderr_has("extract `version`")
        .stderr_has(r"v(\d+)");
}

#[test]
fn expect_fails_the_run_naming_the_missing_pattern() {
    Test::with(
        r#"
        [tasks.check]
        expect = ['status: ok', 'passed: \d+']
        run = "echo 'status: ok'"
        "#,
    )
    .args(&["-q", "check"])
    .expect(
        "status: ok\n",
        "error: check failed: expected output matching `passed: \\d+`, which never appeared\n",
        1,
    );
    Test::with(
        r#"
        [tasks.check]
        expect = ['status: ok', 'passed: \d+']
        run = "echo 'status: ok'; echo 'passed: 3' >&2"
        "#,
    )
    .args(&["-q", "check"])
    .expect("status: ok\n", "passed: 3\n", 0);
}

#[test]
fn anchors_mean_the_ends_of_each_line_whatever_the_reads() {
    // The lines arrive in one read: `\A` and `\z` still hold for a line
    // in the middle.
    Test::with(
        r#"
        [tasks.t]
        expect = ['\Aok\z', '^middle$']
        extract = { n = '\A(\d+)\z' }
        run = "printf 'first\nok\n42\nmiddle\nlast\n'"
        [tasks.use]
        run = [{ task = "t" }, "echo n={{ tasks.t.n }}"]
        "#,
    )
    .args(&["-q", "use"])
    .expect("first\nok\n42\nmiddle\nlast\nn=42\n", "", 0);
    // A line cut across two reads is still one line.
    Test::with(
        r#"
        [tasks.t]
        expect = ['\Aready now\z']
        run = "python3 split.py rea 'dy now\\n'"
        "#,
    )
    .file("split.py", SPLIT)
    .args(&["-q", "t"])
    .expect("ready now\n", "", 0);
}

#[test]
fn a_carriage_return_before_the_newline_does_not_defeat_the_end_anchor() {
    Test::with(
        r#"
        [tasks.t]
        expect = ['done$']
        extract = { word = '(\w+)$' }
        fail_on = ['^fatal$']
        run = "printf 'all done\r\nfatal!\r\n'"
        [tasks.use]
        run = [{ task = "t" }, "echo word={{ tasks.t.word }}"]
        "#,
    )
    .args(&["-q", "use"])
    .expect("all done\r\nfatal!\r\nword=done\n", "", 0);
    let ran = Test::with(
        r#"
        [tasks.t]
        fail_on = ['^fatal$']
        run = "printf 'fatal\r\n'; exit 0"
        "#,
    )
    .args(&["-q", "t"])
    .code(1);
    ran.stdout("fatal\r\n")
        .stderr_has("output matched fail_on `^fatal$`: fatal\n");
}

#[test]
fn a_verbose_regex_with_a_trailing_comment_is_valid() {
    // Compiled alone, as written: no wrapping that a `# comment` would
    // swallow.
    let toml = r#"
        [tasks.t]
        expect = ['(?x) \d+ \s passed  # the test count']
        extract = { n = '(?x) (\d+) \s passed # count' }
        fail_on = ['(?x) FAIL # any failure']
        run = "echo '3 passed'"
        [tasks.use]
        run = [{ task = "t" }, "echo n={{ tasks.t.n }}"]
        "#;
    Test::with(toml).args(&["--check", "-q"]).expect("", "", 0);
    Test::with(toml)
        .args(&["-q", "use"])
        .expect("3 passed\nn=3\n", "", 0);
}

#[test]
fn retries_retry_a_run_that_failed_a_pattern() {
    let t = Test::with(
        r#"
        [tasks.t]
        expect = ['^ready$']
        extract = { v = 'version (\d+)' }
        retries = 2
        run = "n=$(cat n 2>/dev/null || echo 0); echo $((n+1)) > n; if [ $n -ge 1 ]; then echo ready; echo version 7; else echo not yet; fi"
        [tasks.use]
        run = [{ task = "t" }, "echo v={{ tasks.t.v }}"]
        "#,
    )
    .args(&["-q", "use"]);
    t.expect("not yet\nready\nversion 7\nv=7\n", "", 0);
    assert_eq!(t.read("n"), "2\n");
    // Out of attempts, the last failure is the run's.
    let t = Test::with(
        r#"
        [tasks.t]
        extract = { v = 'version (\d+)' }
        retries = 1
        run = "echo attempt >> tries; echo none"
        "#,
    )
    .args(&["-q", "t"]);
    t.expect(
        "none\nnone\n",
        "error: t failed: extract `v` found nothing matching `version (\\d+)`\n",
        1,
    );
    assert_eq!(t.read("tries"), "attempt\nattempt\n");
}

#[test]
fn finally_output_never_satisfies_expect_or_extract() {
    Test::with(
        r#"
        [tasks.t]
        expect = ['^ready$']
        run = "echo starting"
        finally = "echo ready"
        "#,
    )
    .args(&["-q", "t"])
    .expect(
        "starting\nready\n",
        "error: t failed: expected output matching `^ready$`, which never appeared\n",
        1,
    );
    Test::with(
        r#"
        [tasks.t]
        extract = { v = 'v(\d)' }
        run = "echo v1"
        finally = "echo v2"
        [tasks.use]
        run = [{ task = "t" }, "echo got {{ tasks.t.v }}"]
        "#,
    )
    .args(&["-q", "use"])
    .expect("v1\nv2\ngot 1\n", "", 0);
}

#[test]
fn a_dumb_terminal_gets_no_colours_and_no_status_line() {
    // Two runs that overlap (each waits for the other), on a terminal:
    // prefixes are coloured and a live status is drawn, unless TERM says
    // the terminal cannot take escape codes.
    let toml = format!(
        r#"
        [tasks.a]
        run = "{}; echo from-a"
        [tasks.b]
        run = "{}; echo from-b"
        [tasks.both]
        deps = ["a", "b"]
        run = "echo both"
        "#,
        barrier("a.here", "b.here"),
        barrier("b.here", "a.here"),
    );
    let (screen, code) = common::on_a_terminal(
        &Test::with(&toml).env("TERM", "xterm"),
        &["-j2", "both"],
        &[],
    );
    assert_eq!(code, 0, "{screen}");
    assert!(
        screen.contains("\x1b["),
        "no colour on a capable terminal:\n{screen}"
    );
    for term in [Some("dumb"), None] {
        let t = match term {
            Some(term) => Test::with(&toml).env("TERM", term),
            None => Test::with(&toml).env_remove("TERM"),
        };
        let (screen, code) = common::on_a_terminal(&t, &["-j2", "both"], &[]);
        assert_eq!(code, 0, "{screen}");
        assert!(screen.contains("a    | from-a"), "{term:?}:\n{screen}");
        assert!(
            !screen.contains('\x1b'),
            "TERM={term:?} got escape codes:\n{screen:?}"
        );
    }
}

#[test]
fn fail_on_stops_the_process_tree_at_once_and_prints_the_line() {
    let test = Test::with(
        r#"
        [tasks.watch]
        fail_on = ['^FATAL']
        run = """
        sh -c 'echo $$ > child.pid; exec sleep 60' &
        while [ ! -s child.pid ]; do sleep 0.01; done
        echo 'INFO: fine'
        echo 'FATAL: disk full'
        sleep 60
        echo 'never printed'
        """
        "#,
    )
    .args(&["-q", "watch"]);
    let ran = test.code(1);
    assert_eq!(ran.stdout_text(), "INFO: fine\nFATAL: disk full\n");
    assert_eq!(
        ran.stderr_text(),
        "error: watch failed at `sh -c 'echo $$ > child.pid; exec sleep 60' &`: output matched fail_on `^FATAL`: FATAL: disk full\n"
    );
    let pid: u32 = test.read("child.pid").trim().parse().unwrap();
    assert!(
        !alive(pid),
        "the background child of the stopped run survived"
    );
}

/// A line begun in one read and ended in the next, with more lines after
/// it in the same read: `fail_on` finds it whole, and later lines of the
/// read that cannot match do not hide it.
#[test]
fn fail_on_finds_a_line_cut_across_reads() {
    let ran = Test::with(
        r#"
        [tasks.t]
        fail_on = ['^FATAL: disk$']
        run = "python3 split.py 'ok\\nFAT' 'AL: disk\\nmore\\n'; sleep 60"
        "#,
    )
    .file("split.py", SPLIT)
    .args(&["-q", "t"])
    .code(1);
    assert!(
        ran.stdout_text().starts_with("ok\nFATAL: disk\n"),
        "{}",
        ran.stdout_text()
    );
    assert!(
        ran.stderr_text()
            .contains("output matched fail_on `^FATAL: disk$`: FATAL: disk\n"),
        "{}",
        ran.stderr_text()
    );
}

#[test]
fn respond_answers_a_prompt_without_a_newline() {
    Test::with(
        r#"
        [tasks.ask]
        respond = [{ on = 'Proceed\? \[y/N\] ', send = "y\n" }]
        run = """
        printf 'Proceed? [y/N] '
        read -r answer
        echo "answered: $answer"
        """
        "#,
    )
    .args(&["-q", "ask"])
    .expect("Proceed? [y/N] answered: y\n", "", 0);
}

#[test]
fn respond_answers_several_prompts_and_each_occurrence_once() {
    Test::with(
        r#"
        [tasks.ask]
        respond = [
          { on = 'name: ', send = "{{ who }}\n" },
          { on = 'again\? ', send = "yes\n" },
        ]
        run = """
        printf 'name: '; read -r name
        for i in 1 2 3; do printf 'again? '; read -r a; echo "$i:$a"; done
        echo "hello $name"
        """
        [[tasks.ask.args]]
        name = "who"
        default = "Ada Lovelace"
        "#,
    )
    .args(&["-q", "ask"])
    .expect(
        "name: again? 1:yes\nagain? 2:yes\nagain? 3:yes\nhello Ada Lovelace\n",
        "",
        0,
    );
}

#[test]
fn hide_keeps_output_off_the_terminal_while_the_run_succeeds() {
    Test::with(
        r#"
        [tasks.quiet]
        hide = true
        run = "echo out; echo err >&2"
        [tasks.half]
        hide = "stderr"
        run = "echo out; echo err >&2"
        "#,
    )
    .args(&["-q", "quiet", "half"])
    .expect("out\n", "", 0);
}

#[test]
fn hidden_output_of_a_failed_run_shows_its_last_200_lines() {
    let ran = Test::with(
        r#"
        [tasks.build]
        hide = true
        run = "for i in $(seq 1 300); do echo line $i; done; exit 3"
        "#,
    )
    .args(&["-q", "build"])
    .code(3);
    assert_eq!(ran.stdout_text(), "");
    let lines: Vec<&str> = ran.stderr_text().lines().collect();
    assert_eq!(
        lines[0],
        "[build] failed; the last 200 lines of its hidden output:"
    );
    assert_eq!(lines[1], "line 101");
    assert_eq!(lines[200], "line 300");
    assert_eq!(lines[201], "error: build failed at `for i in $(seq 1 300); do echo line $i; done; exit 3`: exit status 3");
    assert_eq!(lines.len(), 202);
}

fn two_overlapping_runs() -> Test {
    Test::with(&format!(
        r#"
        [tasks.a]
        run = "echo a1; {}; echo a2; echo a-err >&2"
        [tasks.bee]
        run = "echo b1; {}; echo b2"
        [tasks.both]
        deps = ["a", "bee"]
        run = "echo done"
        "#,
        barrier("a.ready", "b.ready"),
        barrier("b.ready", "a.ready")
    ))
}

#[test]
fn prefixed_is_the_default_when_runs_overlap() {
    let ran = two_overlapping_runs().args(&["-q", "-j2", "both"]).code(0);
    let mut lines: Vec<&str> = ran.stdout_text().lines().collect();
    assert_eq!(lines.pop(), Some("both | done"));
    lines.sort();
    assert_eq!(lines, ["a    | a1", "a    | a2", "bee  | b1", "bee  | b2"]);
    assert_eq!(ran.stderr_text(), "a    | a-err\n");
}

#[test]
fn interleaved_is_the_default_when_runs_cannot_overlap() {
    Test::with(
        r#"
        [tasks.a]
        run = "echo a"
        [tasks.b]
        deps = ["a"]
        run = "echo b"
        "#,
    )
    .args(&["-q", "-j4", "b"])
    .expect("a\nb\n", "", 0);
}

#[test]
fn grouped_prints_each_run_whole_when_it_ends() {
    let ran = two_overlapping_runs()
        .args(&["-j2", "--output", "grouped", "both"])
        .code(0);
    // Each run's stdout arrives in one piece even though the runs overlapped.
    let out = ran.stdout_text();
    assert!(out.contains("a1\na2\n"), "{out}");
    assert!(out.contains("b1\nb2\n"), "{out}");
    assert!(out.ends_with("done\n"), "{out}");
    // Its echo lines and stderr stay together on stderr.
    assert!(
        ran.stderr_text().contains(&format!(
            "[a] $ echo a1; {}; echo a2; echo a-err >&2\na-err\n",
            barrier("a.ready", "b.ready")
        )),
        "{}",
        ran.stderr_text()
    );
}

/// Grouped output far larger than what a run holds in memory (it moves to
/// a file past 64 KiB) still arrives whole and in order, next to a run
/// that says little.
#[test]
fn grouped_output_of_a_large_run_is_whole() {
    let ran = Test::with(&format!(
        r#"
        [tasks.a]
        run = "sh -c 'seq 1 100000; {}; seq 100001 200000'"
        [tasks.b]
        run = "sh -c 'echo b1; {}; echo b2'"
        [tasks.both]
        deps = ["a", "b"]
        run = "true"
        "#,
        barrier("a.ready", "b.ready"),
        barrier("b.ready", "a.ready"),
    ))
    .args(&["-q", "-j2", "--output", "grouped", "both"])
    .code(0);
    let a: String = (1..=200000).map(|n| format!("{n}\n")).collect();
    let b = "b1\nb2\n";
    let out = ran.stdout_text();
    assert!(
        out == format!("{a}{b}") || out == format!("{b}{a}"),
        "grouped output was damaged ({} bytes)",
        out.len()
    );
}

#[test]
fn settings_output_sets_the_mode() {
    Test::with(
        r#"
        [settings]
        output = "prefixed"
        [tasks.hi]
        run = "echo hi"
        "#,
    )
    .args(&["-q", "hi"])
    .expect("hi | hi\n", "", 0);
}

#[test]
fn invalid_utf8_and_binary_output_pass_through_unchanged() {
    let test = Test::with(
        r#"
        [tasks.bin]
        fail_on = ['never-seen']
        capture = true
        run = "printf 'a\\377\\376\\000b\\nc\\200'"
        [tasks.plain]
        run = "printf 'a\\377\\376\\000b\\nc\\200'"
        "#,
    );
    for task in ["bin", "plain"] {
        let out = common::output_of(test.command().args(["-q", task]));
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(out.stdout, b"a\xff\xfe\x00b\nc\x80", "task {task}");
    }
}

#[test]
fn a_ten_megabyte_line_is_matched_and_passed_on_whole() {
    let test = Test::with(
        r#"
        [tasks.big]
        extract = { tail = 'x(END\d)$' }
        fail_on = ['never-seen']
        run = "head -c 10000000 /dev/zero | tr '\\0' 'x'; echo END7"
        [tasks.use]
        run = [{ task = "big" }, "echo {{ tasks.big.tail }} >&2"]
        "#,
    );
    let out = common::output_of(test.command().args(["-q", "use"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), 10_000_000 + 5);
    assert!(out.stdout.ends_with(b"xxEND7\n"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "END7\n");
}

#[test]
fn prefixed_output_never_breaks_a_line() {
    let ran = Test::with(
        r#"
        [tasks.long]
        run = "python3 split.py 'part1 ' 'part2\\nsecond\\n'; printf 'no newline at end'"
        "#,
    )
    .file("split.py", SPLIT)
    .args(&["-q", "--output", "prefixed", "long"])
    .code(0);
    ran.stdout("long | part1 part2\nlong | second\nlong | no newline at end\n");
}

#[test]
fn pty_gives_the_run_a_terminal_and_one_stream() {
    Test::with(
        r#"
        [tasks.tty]
        pty = true
        capture = true
        run = "if [ -t 0 ] && [ -t 1 ] && [ -t 2 ]; then echo terminal; else echo none; fi; echo err >&2"
        [tasks.show]
        run = [{ task = "tty" }, "echo got {{ tasks.tty.stdout }} / {{ tasks.tty.stderr }}."]
        "#,
    )
    .args(&["-q", "show"])
    // Both streams arrive as the run's stdout, lines as written.
    .expect("terminal\nerr\ngot terminal\nerr / .\n", "", 0);
}

#[test]
fn pty_lets_respond_answer_prompts_that_need_a_terminal() {
    // bash prints a `read -p` prompt only when its input is a terminal.
    Test::with(
        r#"
        [tasks.ask]
        pty = true
        shell = ["bash", "-c"]
        respond = [
          { on = 'Your name: ', send = "tasker\n" },
          { on = 'Continue\? \[y/N\] ', send = "y\n" },
        ]
        run = """
        read -r -p 'Your name: ' name
        read -r -p 'Continue? [y/N] ' answer
        echo "name=$name answer=$answer"
        """
        "#,
    )
    .args(&["-q", "ask"])
    // The terminal echoes what was typed, as a terminal does.
    .expect(
        "Your name: tasker\nContinue? [y/N] y\nname=tasker answer=y\n",
        "",
        0,
    );
}

#[test]
fn pty_run_is_stopped_whole_by_fail_on() {
    let test = Test::with(
        r#"
        [tasks.watch]
        pty = true
        fail_on = ['^FATAL']
        run = """
        sh -c 'echo $$ > child.pid; exec sleep 60' &
        while [ ! -s child.pid ]; do sleep 0.01; done
        echo 'FATAL: stop'
        sleep 60
        """
        "#,
    )
    .args(&["-q", "watch"]);
    let ran = test.code(1);
    ran.stdout("FATAL: stop\n")
        .stderr_has("output matched fail_on `^FATAL`: FATAL: stop");
    let pid: u32 = test.read("child.pid").trim().parse().unwrap();
    assert!(!alive(pid), "the run's background child survived");
}

#[test]
fn a_reader_that_goes_away_stops_the_runs_quietly() {
    use std::io::BufRead;
    let test = Test::with(
        r#"
        [tasks.many]
        capture = true
        run = "sh -c 'echo $$ > many.pid; while true; do echo line; done'"
        "#,
    )
    .args(&["-q", "many"]);
    let mut child = test
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "line\n");
    drop(out);
    let output = common::wait_bounded(child, std::time::Duration::from_secs(60));
    assert_eq!(output.status.code(), Some(141));
    assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    let pid: u32 = test.read("many.pid").trim().parse().unwrap();
    assert!(!alive(pid), "the run outlived tasker");
}

#[test]
fn an_interactive_run_is_never_prefixed_or_grouped() {
    for mode in ["prefixed", "grouped"] {
        Test::with(
            r#"
            [tasks.plain]
            run = "echo plain"
            [tasks.ui]
            interactive = true
            run = "echo ui"
            "#,
        )
        .args(&["-q", "--output", mode, "plain", "ui"])
        .expect(
            if mode == "prefixed" {
                "plain | plain\nui\n"
            } else {
                "plain\nui\n"
            },
            "",
            0,
        );
    }
}

#[test]
fn a_respond_send_that_does_not_render_is_one_located_error() {
    let ran = Test::with(
        r#"
        [tasks.ask]
        respond = [{ on = 'x', send = "{{ env.NOPE_X }}" }]
        run = "echo never"
        "#,
    )
    .args(&["-q", "ask"])
    .code(2);
    ran.stderr_has("--> ./tasks.toml:2:35");
    assert_eq!(
        ran.stderr_text().matches("error:").count(),
        1,
        "{}",
        ran.stderr_text()
    );
    assert_eq!(ran.stdout_text(), "");
}
