//! The timeline of an invocation, from the scheduler's record of each run
//! (start, end, lane): `--timings=html` writes a self-contained page (one
//! bar per run on a time axis, a lane per job slot, coloured by outcome,
//! deps on hover; nothing loaded from the network), and `--trace FILE`
//! writes Chrome trace-event JSON, which Perfetto and `chrome://tracing`
//! open. Both are built as text here; writing them is the caller's.

use std::fmt::Write as _;
use std::time::Duration;

use crate::report::{human_duration, result_word};
use crate::schedule::{Summary, Timing};

/// The name `--timings=html` writes in the working directory.
pub const HTML_FILE: &str = "tasker-timings.html";

/// The runs that started, with their index, in order of start.
fn started(summary: &Summary) -> Vec<(usize, &Timing)> {
    let mut runs: Vec<(usize, &Timing)> = summary
        .timings
        .iter()
        .enumerate()
        .filter_map(|(id, t)| t.as_ref().map(|t| (id, t)))
        .collect();
    runs.sort_by_key(|(id, t)| (t.start, *id));
    runs
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Chrome trace-event JSON: one complete (`"X"`) event per run that
/// started, on the thread of its lane, so that a run called by a `task`
/// step sits inside its caller; thread names say the lane.
pub fn trace(summary: &Summary) -> String {
    let runs = started(summary);
    let mut events = vec![serde_json::json!({
        "name": "process_name", "ph": "M", "pid": 1, "tid": 0,
        "args": { "name": "tasker" },
    })];
    let lanes = runs.iter().map(|(_, t)| t.lane + 1).max().unwrap_or(0);
    for lane in 1..=lanes {
        events.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 1, "tid": lane,
            "args": { "name": format!("lane {lane}") },
        }));
    }
    for (id, timing) in runs {
        let (name, outcome, _) = &summary.runs[id];
        // Both ends rounded down, so a nested run stays inside its caller.
        let start = micros(timing.start);
        let mut args = serde_json::json!({
            "outcome": result_word(outcome),
            "deps": dep_names(summary, id),
        });
        if let Some(caller) = timing.caller {
            args["called_by"] = summary.runs[caller].0.clone().into();
        }
        events.push(serde_json::json!({
            "name": name,
            "cat": "run",
            "ph": "X",
            "ts": start,
            "dur": micros(timing.end) - start,
            "pid": 1,
            "tid": timing.lane + 1,
            "args": args,
        }));
    }
    let doc = serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" });
    let mut text = serde_json::to_string(&doc).unwrap_or_default();
    text.push('\n');
    text
}

fn dep_names(summary: &Summary, id: usize) -> Vec<&str> {
    summary.deps[id]
        .iter()
        .map(|&d| summary.runs[d].0.as_str())
        .collect()
}

/// The HTML page: a lane per row, a bar per run placed by its start and
/// length on a shared time axis; hovering a bar shows its name, time,
/// result, deps and caller. Below, the runs as a table, slowest first.
pub fn html(summary: &Summary, title: &str) -> String {
    let runs = started(summary);
    let total = runs
        .iter()
        .map(|(_, t)| t.end)
        .max()
        .unwrap_or_default()
        .max(Duration::from_millis(1));
    let lanes = runs.iter().map(|(_, t)| t.lane + 1).max().unwrap_or(0);
    let percent = |d: Duration| d.as_secs_f64() / total.as_secs_f64() * 100.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    let _ = writeln!(
        out,
        "<p>{} on {} in {}. Colours: {}.</p>",
        counted(runs.len(), "run"),
        counted(lanes, "lane"),
        human_duration(total),
        ["ok", "skipped", "failed", "cancelled", "stopped"]
            .map(|w| format!("<span class=\"key {w}\">{w}</span>"))
            .join(" ")
    );
    out.push_str("<div class=\"chart\">\n<div class=\"axis\">");
    for tick in 0..=10 {
        let at = total.mul_f64(f64::from(tick) / 10.0);
        let _ = write!(
            out,
            "<span class=\"tick\" style=\"left:{}%\">{}</span>",
            tick * 10,
            human_duration(at)
        );
    }
    out.push_str("</div>\n");
    for lane in 0..lanes {
        let _ = write!(
            out,
            "<div class=\"lane\"><span class=\"label\">lane {}</span>",
            lane + 1
        );
        for (id, timing) in runs.iter().filter(|(_, t)| t.lane == lane) {
            let (name, outcome, _) = &summary.runs[*id];
            let word = result_word(outcome);
            let length = timing.end.saturating_sub(timing.start);
            let mut hover = format!("{name}\n{} ({word})", human_duration(length));
            let deps = dep_names(summary, *id);
            if !deps.is_empty() {
                let _ = write!(hover, "\ndeps: {}", deps.join(", "));
            }
            if let Some(caller) = timing.caller {
                let _ = write!(hover, "\ncalled by: {}", summary.runs[caller].0);
            }
            // A run called by a `task` step on its caller's lane is drawn
            // inside the caller's bar, thinner.
            let nested = timing
                .caller
                .and_then(|c| summary.timings[c].as_ref())
                .is_some_and(|c| c.lane == lane);
            let word = if nested {
                format!("{word} nested")
            } else {
                word.to_string()
            };
            let _ = write!(
                out,
                "<div class=\"bar {word}\" data-run=\"{}\" style=\"left:{:.3}%;width:{:.3}%\" title=\"{}\">{}</div>",
                escape(name),
                percent(timing.start),
                percent(length),
                escape(&hover),
                escape(name)
            );
        }
        out.push_str("</div>\n");
    }
    out.push_str("</div>\n");
    table(&mut out, summary, &runs);
    out.push_str("</body>\n</html>\n");
    out
}

/// The runs as a table, slowest first.
fn table(out: &mut String, summary: &Summary, runs: &[(usize, &Timing)]) {
    let mut rows: Vec<&(usize, &Timing)> = runs.iter().collect();
    rows.sort_by_key(|(_, t)| std::cmp::Reverse(t.end.saturating_sub(t.start)));
    out.push_str(
        "<table>\n<tr><th>run</th><th>start</th><th>time</th><th>result</th><th>deps</th></tr>\n",
    );
    for (id, timing) in rows {
        let (name, outcome, _) = &summary.runs[*id];
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{word}\">{word}</td><td>{}</td></tr>",
            escape(name),
            human_duration(timing.start),
            human_duration(timing.end.saturating_sub(timing.start)),
            escape(&dep_names(summary, *id).join(", ")),
            word = result_word(outcome),
        );
    }
    out.push_str("</table>\n");
}

/// Text made safe inside HTML elements and quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
.chart { position: relative; margin: 1em 0 2em 5em; }
.axis { position: relative; height: 1.4em; border-bottom: 1px solid #999; }
.tick { position: absolute; transform: translateX(-50%); font-size: 11px; color: #555; }
.lane { position: relative; height: 1.6em; border-bottom: 1px solid #eee; }
.label { position: absolute; left: -5em; width: 4.5em; font-size: 11px; color: #555; line-height: 1.6em; }
.bar { position: absolute; top: 0.15em; height: 1.3em; min-width: 2px; overflow: hidden;
  white-space: nowrap; font-size: 11px; line-height: 1.3em; border-radius: 2px; color: #fff;
  box-sizing: border-box; padding: 0 2px; }
.bar.nested { top: 0.5em; height: 1em; line-height: 1em; border: 1px solid #fff; }
.bar:hover { outline: 2px solid #222; z-index: 1; }
.ok { background: #3a8f3a; } .skipped { background: #8c8c8c; } .failed { background: #c62828; }
.cancelled { background: #e08a00; } .stopped { background: #5a6fb0; } .not-run { background: #bbb; }
.key { padding: 0 0.4em; color: #fff; border-radius: 2px; }
table { border-collapse: collapse; }
td, th { padding: 0.2em 0.8em; text-align: left; border-bottom: 1px solid #eee; }
td.ok, td.skipped, td.failed, td.cancelled, td.stopped { color: #fff; }
";

/// `1 run`, `2 runs`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
