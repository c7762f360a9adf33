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
    let ran = t.run_with(&[]);
    assert_eq!(ran.exit_code(), 3, "{}", ran.stderr_text());
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
    let ran = t.run_with(&[]);
    assert_eq!(ran.exit_code(), 3, "{}", ran.stderr_text());
    ran.stderr_has("tasker: timings written to [TMP]/tasker-timings.html");
    // No table on stderr: the page replaces it.
    assert!(
        !ran.stderr_text().contains("result\n"),
        "{}",
        ran.stderr_text()
    );
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
    assert_eq!((ran.exit_code(), ran.stderr_text()), (0, ""));
    assert!(t.exists("sub/tasker-timings.html"));
    let ran = t.run_with(&["-C", "sub", "--timings=svg", "x"]);
    ran.code(2).stderr_has("invalid value 'svg' for '--timings");
    // `--timings` alone is the table, and does not take the task's name.
    let ran = t.run_with(&["-q", "-C", "sub", "--timings", "x"]);
    ran.code(0).stderr_has("result\n");
}

/// The browser the page is opened in: Debian's `chromium`.
fn chromium() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    ["chromium", "chromium-browser"]
        .iter()
        .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// Opened in headless Chromium, the page shows, through its DOM, one bar
/// per run, failed runs in the colour of failure, and no script errors.
/// A probe added to a copy of the page reads the DOM once it is built
/// (with the colours the browser computed) and writes what it found into
/// the page, which `--dump-dom` prints.
#[test]
fn the_timeline_page_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI needs chromium for the browser test (.ci/run installs it)"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium); CI runs this test");
        return;
    };
    let t = Test::with(TASKS).args(&["-q", "-k", "-j2", "--timings=html", "outer", "bad"]);
    t.run_with(&[])
        .expect("", "error: bad failed at `exit 3`: exit status 3\n", 3);
    let html = t.read("tasker-timings.html");
    // Errors are caught from the first script on; the probe runs last.
    let catch = r#"<script>
window.__errors = [];
window.addEventListener("error", function (e) { window.__errors.push(String(e.message)); });
var __consoleError = console.error;
console.error = function () { window.__errors.push(Array.prototype.join.call(arguments, " ")); __consoleError.apply(console, arguments); };
</script>"#;
    let probe = r#"<script>
(function () {
  var bars = Array.prototype.map.call(document.querySelectorAll(".chart .bar"), function (b) {
    return { run: b.getAttribute("data-run"), classes: b.className,
             colour: getComputedStyle(b).backgroundColor,
             width: b.getBoundingClientRect().width };
  });
  var key = function (w) {
    var k = document.querySelector(".key." + w);
    return k ? getComputedStyle(k).backgroundColor : null;
  };
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({ bars: bars, failed: key("failed"), ok: key("ok"), errors: window.__errors });
  document.body.appendChild(out);
})();
</script>"#;
    assert!(html.contains("<head>") && html.contains("</body>"));
    let probed = html
        .replacen("<head>", &format!("<head>\n{catch}"), 1)
        .replacen("</body>", &format!("{probe}\n</body>"), 1);
    let page = t.path().join("probed.html");
    std::fs::write(&page, probed).unwrap();
    let profile = t.path().join("chromium-profile");
    let mut cmd = std::process::Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--enable-logging=stderr",
        "--v=0",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg("--dump-dom")
    .arg(format!("file://{}", page.display()));
    let out = common::output_of(&mut cmd);
    let dom = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    let json = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| panic!("the probe did not run:\n{dom}\n{log}"))
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let found: serde_json::Value = serde_json::from_str(&json).expect("the probe's JSON");
    // No script errors, in the page or in the browser's console log.
    assert_eq!(found["errors"], serde_json::json!([]), "{json}");
    assert!(!log.contains("Uncaught"), "{log}");
    // One bar per run, each drawn (a width on the screen).
    let bars = found["bars"].as_array().expect("bars");
    let mut runs: Vec<&str> = bars.iter().map(|b| b["run"].as_str().unwrap()).collect();
    runs.sort_unstable();
    assert_eq!(runs, ["a", "b", "bad", "inner", "outer"], "{json}");
    assert!(
        bars.iter().all(|b| b["width"].as_f64().unwrap() > 0.0),
        "{json}"
    );
    // The failed run has the colour the legend gives failure; the others
    // that of success, and the two differ.
    let (failed, ok) = (&found["failed"], &found["ok"]);
    assert_ne!(failed, ok, "{json}");
    for bar in bars {
        let want = if bar["run"] == "bad" { failed } else { ok };
        assert_eq!(&bar["colour"], want, "{json}");
    }
}
