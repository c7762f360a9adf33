//! SPEC 1: `--timings=html` writes a self-contained timeline page
//! (`tasker-timings.html` in the working directory), and `--trace FILE`
//! writes Chrome trace-event JSON: one complete event per run, a run
//! called by a `task` step nested inside its caller.
use crate::common;
use common::Test;

/// `outer` depends on `a` and `b`, and calls `inner` from a step; `bad`
/// fails (under -k the rest still runs).
const TASKS: &str = r#"
    [tasks.a]
    run = "true"
    [tasks.b]
    run = "true"
    [tasks.outer]
    deps = ["a", "b"]
    run = ["true", { task = "inner" }, "true"]
    [tasks.inner]
    run = "true"
    [tasks.bad]
    run = "exit 3"
"#;

/// The complete ("X") events of a trace file: name, tid, start, end.
fn complete_events(text: &str) -> Vec<(String, u64, u64, u64)> {
    let doc: serde_json::Value = serde_json::from_str(text).expect("the trace is JSON");
    doc["traceEvents"]
        .as_array()
        .expect("traceEvents")
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let ts = e["ts"].as_u64().expect("ts");
            let dur = e["dur"].as_u64().expect("dur");
            (
                e["name"].as_str().expect("name").to_string(),
                e["tid"].as_u64().expect("tid"),
                ts,
                ts + dur,
            )
        })
        .collect()
}

#[test]
fn trace_has_one_complete_event_per_run_with_task_steps_nested() {
    let t = Test::with(TASKS).args(&["-q", "-j2", "--trace", "out/trace.json", "outer"]);
    std::fs::create_dir(t.path().join("out")).unwrap();
    t.expect("", "", 0);
    let events = complete_events(&t.read("out/trace.json"));
    let mut names: Vec<&str> = events.iter().map(|e| e.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "inner", "outer"]);
    let find = |name: &str| events.iter().find(|e| e.0 == name).unwrap().clone();
    let (outer, inner) = (find("outer"), find("inner"));
    // Same thread, and inside the caller's span: viewers nest it there.
    assert_eq!(inner.1, outer.1, "{events:?}");
    assert!(outer.2 <= inner.2 && inner.3 <= outer.3, "{events:?}");
    // A dep ends before what depends on it starts.
    for dep in ["a", "b"] {
        assert!(find(dep).3 <= outer.2, "{events:?}");
    }
    // Lanes are named for the viewer.
    let doc: serde_json::Value = serde_json::from_str(&t.read("out/trace.json")).unwrap();
    assert!(doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["ph"] == "M" && e["name"] == "thread_name"));
}

#[test]
fn trace_says_where_it_went_and_records_failures() {
    let t = Test::with(TASKS).args(&["-k", "-j1", "--trace", "t.json", "bad", "a"]);
    let ran = t.run();
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    ran.stderr_has("tasker: trace written to [TMP]/t.json");
    let doc: serde_json::Value = serde_json::from_str(&t.read("t.json")).unwrap();
    let bad = doc["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "bad")
        .expect("an event for bad")
        .clone();
    assert_eq!(bad["args"]["outcome"], "failed");
}

/// The `<div class="bar ...">` elements of the page: (classes, run name).
fn bars(html: &str) -> Vec<(String, String)> {
    html.split("<div class=\"bar ")
        .skip(1)
        .map(|rest| {
            let classes = rest.split('"').next().unwrap().to_string();
            let run = rest
                .split("data-run=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .expect("a data-run attribute")
                .to_string();
            (classes, run)
        })
        .collect()
}

#[test]
fn timings_html_is_one_self_contained_page_with_a_bar_per_run() {
    let t = Test::with(TASKS).args(&["-k", "-j2", "--timings=html", "outer", "bad"]);
    let ran = t.run();
    assert_eq!(ran.code, 3, "{}", ran.stderr);
    ran.stderr_has("tasker: timings written to [TMP]/tasker-timings.html");
    // No table on stderr: the page replaces it.
    assert!(!ran.stderr.contains("result\n"), "{}", ran.stderr);
    let html = t.read("tasker-timings.html");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    let mut found = bars(&html);
    found.sort_by(|x, y| x.1.cmp(&y.1));
    let found: Vec<(&str, &str)> = found
        .iter()
        .map(|(c, r)| (c.as_str(), r.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("ok", "a"),
            ("ok", "b"),
            ("failed", "bad"),
            ("ok nested", "inner"),
            ("ok", "outer"),
        ]
    );
    // Self-contained: nothing to fetch.
    for needle in [
        "http://",
        "https://",
        "<script src",
        "<link",
        "@import",
        "url(",
    ] {
        assert!(!html.contains(needle), "the page holds `{needle}`");
    }
    // Hovering a bar shows its deps.
    assert!(html.contains("title=\"outer&#10;"), "{html}");
    assert!(html.contains("deps: a, b"), "{html}");
}

#[test]
fn timings_is_relative_to_the_directory_of_c_and_takes_only_known_forms() {
    let t = Test::new().file("sub/tasks.toml", "[tasks.x]\nrun = \"true\"\n");
    let ran = t.run_with(&["-q", "-C", "sub", "--timings=html", "x"]);
    assert_eq!((ran.code, ran.stderr.as_str()), (0, ""));
    assert!(t.exists("sub/tasker-timings.html"));
    let ran = t.run_with(&["-C", "sub", "--timings=svg", "x"]);
    ran.code(2).stderr_has("invalid value 'svg' for '--timings");
    // `--timings` alone is the table, and does not take the task's name.
    let ran = t.run_with(&["-q", "-C", "sub", "--timings", "x"]);
    ran.code(0).stderr_has("result\n");
}
