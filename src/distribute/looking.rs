//! `tasker --queue URL --workers`: the live workers of this project
//! (name, host, runs in progress, last heartbeat) and the pending count.

use std::fmt::Write as _;

use super::queue::{self, Queue};
use super::Project;
use crate::error::{Error, Result};
use crate::model::Model;

/// The listing, or an error (exit 2) when there is no queue or it does
/// not answer.
pub fn list_workers(option: Option<&str>, model: &Model) -> Result<String> {
    let url = super::queue_url(option, model).ok_or_else(|| {
        Error::usage("--workers needs a queue")
            .with_help("give --queue redis://HOST:PORT, set TASKER_QUEUE, or [settings] queue")
    })?;
    let q = Queue::connect(&url, Project::of(model), true).map_err(Error::usage)?;
    let mut con = q.connection().map_err(Error::usage)?;
    let (workers, pending) = queue::fleet(&mut con, &q).map_err(|e| Error::usage(q.lost(&e)))?;
    let now = super::now_ms();
    let mut rows = vec![[
        "worker".to_string(),
        "host".to_string(),
        "runs".to_string(),
        "last heartbeat".to_string(),
    ]];
    for (name, info, live) in workers.into_iter().filter(|w| w.2) {
        let _ = live;
        let info: serde_json::Value = serde_json::from_str(&info).unwrap_or_default();
        let text = |k: &str| {
            info.get(k)
                .map(|v| v.to_string().trim_matches('"').to_string())
        };
        let ago = info
            .get("heartbeat_ms")
            .and_then(serde_json::Value::as_u64)
            .map(|at| format!("{:.1}s ago", now.saturating_sub(at) as f64 / 1000.0));
        rows.push([
            name,
            text("host").unwrap_or_default(),
            format!(
                "{}/{}",
                text("running").unwrap_or_default(),
                text("jobs").unwrap_or_default()
            ),
            ago.unwrap_or_default(),
        ]);
    }
    let mut widths = [0usize; 4];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line = format!(
            "{:<a$}  {:<b$}  {:>c$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            a = widths[0],
            b = widths[1],
            c = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "{} live worker(s), {pending} run(s) pending on {}",
        rows.len() - 1,
        q.shown
    );
    Ok(out)
}
