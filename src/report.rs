//! What tasker says at the end of a run: one line per failed or cancelled
//! run, and the `--timings` table.

use std::fmt::Write as _;
use std::time::Duration;

use crate::exec::{Console, Failure, Outcome, Reason};
use crate::schedule::Summary;

pub use crate::outcome::human_duration;

/// One line per run that failed or was cancelled (and, verbose, per run
/// that did not start because a run it needs failed), in graph order; a
/// failed `finally` gets a line of its own after its run's.
///
/// An error deep in a chain of `task` steps is reported once (SPEC 6): by
/// the run where it happened, with the chain of calls that led there. The
/// callers that failed or were cancelled only because of it get no line.
pub fn print_failures(report: &Console, summary: &Summary, verbose: bool) {
    let in_chain = callers_of_failures(summary);
    for (id, (name, outcome, _)) in summary.runs.iter().enumerate() {
        let chain = if in_chain[id] {
            continue;
        } else {
            call_chain(summary, id)
        };
        let line = match outcome {
            // A full diagnostic (a template that did not render) already
            // names the task and the step: it is the summary, shown whole.
            Outcome::Failed(Failure {
                reason: Reason::Diagnostic(e),
                ..
            }) => {
                report.line(e.render(report.err_style.color).trim_end());
                None
            }
            Outcome::Failed(f) => Some(failure_line(name, f)),
            Outcome::Cancelled => Some(format!("{name} cancelled")),
            Outcome::NotRun(why) if verbose => Some(format!("{name} not run: {why}")),
            _ => None,
        };
        if let Some(line) = line {
            report.line(&format!("{} {line}", report.err_style.red("error:")));
        }
        if matches!(outcome, Outcome::Failed(_)) && chain.len() > 1 {
            let names: Vec<&str> = chain.iter().map(|&r| summary.runs[r].0.as_str()).collect();
            report.line(&format!(
                "  {} {}",
                report.err_style.dim("called as"),
                shorten_chain(&names)
            ));
        }
        if let Outcome::Failed(Failure {
            reason: Reason::Service { tail, .. },
            ..
        }) = outcome
        {
            print_service_tail(report, tail);
        }
        if let Some(f) = summary.finally_failures.get(id).and_then(Option::as_ref) {
            let line = failure_line(name, f);
            report.line(&format!("{} {line}", report.err_style.red("error:")));
        }
    }
}

/// Per run: whether it is the caller (however far up) of a failed run
/// and itself failed because of that call or was cancelled meanwhile.
fn callers_of_failures(summary: &Summary) -> Vec<bool> {
    let mut quiet = vec![false; summary.runs.len()];
    for (id, (_, outcome, _)) in summary.runs.iter().enumerate() {
        let failed_here =
            matches!(outcome, Outcome::Failed(f) if !matches!(f.reason, Reason::Called { .. }));
        if !failed_here {
            continue;
        }
        let mut at = caller(summary, id);
        while let Some(c) = at {
            let outcome = &summary.runs[c].1;
            let because = matches!(outcome, Outcome::Cancelled)
                || matches!(outcome, Outcome::Failed(f) if matches!(f.reason, Reason::Called { .. }));
            if !because || std::mem::replace(&mut quiet[c], true) {
                break;
            }
            at = caller(summary, c);
        }
    }
    quiet
}

/// The run whose `task` step called `id`.
fn caller(summary: &Summary, id: usize) -> Option<usize> {
    summary.timings.get(id)?.as_ref()?.caller
}

/// The runs from the outermost caller down to `id`.
fn call_chain(summary: &Summary, id: usize) -> Vec<usize> {
    let mut chain = vec![id];
    // Bounded by the number of runs: callers form no cycle, and a bound
    // costs nothing.
    while let Some(c) = caller(summary, chain[chain.len() - 1]) {
        if chain.len() > summary.runs.len() {
            break;
        }
        chain.push(c);
    }
    chain.reverse();
    chain
}

/// How many links of a long call chain are shown at each end.
const CHAIN_ENDS: usize = 3;

/// `a -> b -> c`, or for a long chain its first and last few links with
/// the count of those left out between.
fn shorten_chain(names: &[&str]) -> String {
    if names.len() <= 2 * CHAIN_ENDS + 1 {
        return names.join(" -> ");
    }
    let left_out = names.len() - 2 * CHAIN_ENDS;
    format!(
        "{} -> ... ({left_out} more) ... -> {}",
        names[..CHAIN_ENDS].join(" -> "),
        names[names.len() - CHAIN_ENDS..].join(" -> ")
    )
}

/// A failed service's last lines of output, under its summary line.
fn print_service_tail(report: &Console, tail: &[String]) {
    if tail.is_empty() {
        report.line("  it printed nothing");
        return;
    }
    report.line("  its last lines of output:");
    for line in tail {
        report.line(&format!("  | {line}"));
    }
}

/// `build failed at `cargo build`: exit status 101`, or for a cleanup
/// step `build: `finally` failed at `rm -r tmp`: exit status 1`.
fn failure_line(name: &str, f: &Failure) -> String {
    let why = &f.reason;
    let what = if f.in_finally {
        format!("{name}: `finally` failed")
    } else {
        format!("{name} failed")
    };
    match &f.step {
        // The step as its echo showed it.
        Some(step) => format!(
            "{what} at `{}`: {why}",
            first_line(&crate::echo::tidy(step))
        ),
        None => format!("{what}: {why}"),
    }
}

/// The first line of a step (a script may span lines).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

/// The `--timings` table: every run that started, slowest first, with
/// what the remote cache said of it when it was asked (`cache`).
pub fn timings(
    runs: &[(String, Outcome, Duration)],
    cache: &dyn Fn(&str) -> Option<&'static str>,
) -> String {
    let mut rows: Vec<&(String, Outcome, Duration)> = runs
        .iter()
        .filter(|(_, o, _)| !matches!(o, Outcome::NotRun(_)))
        .collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    let width = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(3)
        .max(3);
    let cached = rows.iter().any(|r| cache(&r.0).is_some());
    let mut out = format!("{:<width$}  {:>9}  result", "run", "time");
    if cached {
        out.push_str("     cache");
    }
    out.push('\n');
    for (name, outcome, duration) in rows {
        let result = result_word(outcome);
        let mut line = format!("{name:<width$}  {:>9}  {result}", human_duration(*duration));
        if let Some(state) = cache(name) {
            let _ = write!(
                line,
                "{:pad$}{state}",
                "",
                pad = 11usize.saturating_sub(result.len())
            );
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How a run ended, in one word for tables and the timeline.
pub fn result_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Success => "ok",
        Outcome::Skipped(_) => "skipped",
        Outcome::Restored => "restored",
        Outcome::UpToDate => "up-to-date",
        Outcome::Failed(_) => "failed",
        Outcome::Cancelled => "cancelled",
        Outcome::NotRun(_) => "not-run",
        Outcome::Stopped => "stopped",
    }
}
