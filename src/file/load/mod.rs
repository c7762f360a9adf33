//! Walks the spanned TOML document into the model, checking every key,
//! name, type and argument declaration on the way. Templates are kept as
//! text (compiling them is `check`'s job, so that `-l` stays cheap); regexes
//! are compiled here.

use std::collections::HashMap;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::toml_walk::{Value, Walker};
use crate::error::{Error, Result, SourceFile};
use crate::model::*;

pub(crate) const TOP_KEYS: &[&str] = &["settings", "env", "vars", "include", "tasks"];
pub(crate) const SETTINGS_KEYS: &[&str] = &["shell", "dotenv", "default", "jobs", "output", "echo"];
pub(crate) const TASK_KEYS: &[&str] = &[
    "help",
    "run",
    "deps",
    "post",
    "finally",
    "args",
    "env",
    "dir",
    "shell",
    "quiet",
    "private",
    "aliases",
    "group",
    "confirm",
    "platforms",
    "timeout",
    "retries",
    "retry_delay",
    "ignore_failure",
    "interactive",
    "pty",
    "background",
    "ready",
    "ready_timeout",
    "matrix",
    "sources",
    "outputs",
    "capture",
    "extract",
    "expect",
    "fail_on",
    "respond",
    "hide",
];
pub(crate) const ARG_KEYS: &[&str] = &[
    "name",
    "help",
    "type",
    "positional",
    "choices",
    "short",
    "default",
    "required",
    "env",
];
pub(crate) const STEP_KEYS: &[&str] = &["sh", "cmd", "pipe", "task", "ignore_failure", "dir"];
const STEP_KINDS: &[&str] = &["sh", "cmd", "pipe", "task"];
const RESPOND_KEYS: &[&str] = &["on", "send"];

pub use crate::template::RESERVED_NAMES;

/// `keep_tree`: never free the parsed TOML tree (for a process that exits
/// right after); a caller that loads many files frees each.
/// Long by design: the top-level tables in file order, then the checks
/// across tasks (aliases, defaults); each step is a few lines.
pub fn load(file: Arc<SourceFile>, root: std::path::PathBuf, keep_tree: bool) -> Result<Model> {
    // A file saved with CRLF line ends means the same as with LF (SPEC 2):
    // scripts must reach the shell without a `\r` on every line. In TOML a
    // raw CR can only be part of a line end, so dropping it changes nothing
    // else, and lines and columns stay the same.
    let file = if file.text.contains('\r') {
        Arc::new(SourceFile {
            display: file.display.clone(),
            path: file.path.clone(),
            text: file.text.replace("\r\n", "\n"),
        })
    } else {
        file
    };
    let walker = Walker {
        file: Arc::clone(&file),
    };
    let doc = toml::de::DeTable::parse(&file.text).map_err(|e| {
        let range = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().to_string();
        walker
            .error(range, format!("invalid TOML: {message}"))
            .with_label("here")
    })?;
    // The parsed tree of tasker's one file lives until tasker exits:
    // freeing a large one costs more than the process's exit does.
    let owned;
    let doc = if keep_tree {
        Box::leak(Box::new(doc)).get_ref()
    } else {
        owned = doc;
        owned.get_ref()
    };
    walker.check_keys(doc, TOP_KEYS, "the file")?;

    let settings = match doc.get("settings") {
        Some(v) => settings(&walker, v)?,
        None => Settings::default(),
    };
    let env = match doc.get("env") {
        Some(v) => env_table(&walker, v, "[env]")?,
        None => Vec::new(),
    };
    let vars = match doc.get("vars") {
        Some(v) => vars(&walker, v)?,
        None => Vec::new(),
    };
    if let Some((key, _)) = doc.get_key_value("include") {
        return Err(walker
            .error(key.span(), "includes are not supported yet")
            .with_label("not supported yet")
            .with_help("this version of tasker cannot load included files; remove [include]"));
    }

    let mut tasks = Vec::new();
    let mut lookup = HashMap::new();
    if let Some(value) = doc.get("tasks") {
        let table = walker.table(value, "`tasks`")?;
        tasks.reserve_exact(table.len());
        lookup.reserve(table.len());
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            check_task_name(&walker, &name, key.span())?;
            let task = task(&walker, name, key.span(), value)?;
            tasks.push(task);
        }
    }
    for (index, task) in tasks.iter().enumerate() {
        lookup.insert(task.name.clone(), index);
    }
    for (index, task) in tasks.iter().enumerate() {
        for alias in &task.aliases {
            if let Some(&other) = lookup.get(alias) {
                let what = if tasks[other].name == *alias {
                    "a task".to_string()
                } else {
                    format!("an alias of `{}`", tasks[other].name)
                };
                return Err(Error::at(
                    &task.span,
                    format!("alias `{alias}` of task `{}` is already {what}", task.name),
                ));
            }
            lookup.insert(alias.clone(), index);
        }
    }

    let model = Model {
        file,
        root,
        settings,
        env,
        vars,
        tasks,
        lookup,
    };
    check_calls(&model)?;
    if let Some((name, span)) = &model.settings.default {
        if model.task(name).is_none() {
            return Err(
                Error::at(span, format!("settings.default names no task: `{name}`"))
                    .with_label("unknown task")
                    .suggest(name, model.callable_names()),
            );
        }
    }
    Ok(model)
}

mod args;
mod matrix;
mod names;
mod refs;
mod steps;
mod tables;
mod task;
use args::*;
use matrix::*;
use names::*;
use refs::*;
use steps::*;
use tables::*;
use task::*;
