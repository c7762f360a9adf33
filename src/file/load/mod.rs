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
pub(crate) const SETTINGS_KEYS: &[&str] = &[
    "shell",
    "dotenv",
    "default",
    "jobs",
    "output",
    "echo",
    "remote_cache",
    "queue",
    "queue_timeout",
];
pub(crate) const REMOTE_CACHE_KEYS: &[&str] = &["url", "team"];
pub(crate) const STEP_KEYS: &[&str] = &[
    "sh",
    "cmd",
    "pipe",
    "task",
    "ignore_failure",
    "dir",
    "quiet",
];
const STEP_KINDS: &[&str] = &["sh", "cmd", "pipe", "task"];
const RESPOND_KEYS: &[&str] = &["on", "send"];
const PRECONDITION_KEYS: &[&str] = &["sh", "msg"];

pub use crate::template::RESERVED_NAMES;

/// `keep_tree`: never free the parsed TOML trees (for a process that exits
/// right after); a caller that loads many files frees each. `cwd` shapes
/// how included files are named in messages.
/// `part`: walk this part of the root file instead of all of it (the
/// load index made it).
pub fn load(
    file: Arc<SourceFile>,
    root: std::path::PathBuf,
    cwd: &std::path::Path,
    keep_tree: bool,
    part: Option<Arc<super::index::Part>>,
) -> Result<Model> {
    let mut loader = Loader {
        cwd: cwd.to_path_buf(),
        cwd_canonical: None,
        keep_tree,
        part,
        settings: None,
        units: Vec::new(),
        vars: Vec::new(),
        tasks: Vec::new(),
        seen: Vec::new(),
    };
    loader.unit(file, (String::new(), Vec::new()), root.clone(), None)?;
    let Loader {
        settings,
        units,
        vars,
        tasks,
        ..
    } = loader;
    let lookup = lookup(&tasks, &units)?;
    let model = Model {
        file: Arc::clone(&units[ROOT_UNIT].file),
        root,
        settings: settings.unwrap_or_default(),
        units,
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

/// What loading the root file and the files it includes builds up.
struct Loader {
    /// Where tasker stands, for the names of included files; made
    /// canonical once, at the first include.
    cwd: std::path::PathBuf,
    cwd_canonical: Option<std::path::PathBuf>,
    keep_tree: bool,
    part: Option<Arc<super::index::Part>>,
    settings: Option<Settings>,
    units: Vec<Unit>,
    vars: Vec<Var>,
    tasks: Vec<Task>,
    /// Every file loaded so far (canonical path), with the place that
    /// included it (`None` for the root file); filled from the first
    /// include on, so that a file without includes costs no lookup.
    seen: Vec<(std::path::PathBuf, Option<crate::error::Span>)>,
}

impl Loader {
    /// Load one file as unit number `self.units.len()`, then the files it
    /// includes. `dir` holds the file; `prefix` starts its task names.
    fn unit(
        &mut self,
        file: Arc<SourceFile>,
        (prefix, other_prefixes): (String, Vec<String>),
        dir: std::path::PathBuf,
        parent: Option<usize>,
    ) -> Result<()> {
        let file = without_cr(file);
        let part = if parent.is_none() {
            self.part.take()
        } else {
            None
        };
        let walker = Walker {
            file: Arc::clone(&file),
            part: part.clone(),
        };
        let text = part
            .as_ref()
            .map_or(file.text.as_str(), |p| p.text.as_str());
        let doc = toml::de::DeTable::parse(text).map_err(|e| {
            let range = e.span().unwrap_or(0..0);
            let message = e.message().trim_end().to_string();
            walker
                .error(range, format!("invalid TOML: {message}"))
                .with_label("here")
        })?;
        // The parsed tree of tasker's files lives until tasker exits:
        // freeing a large one costs more than the process's exit does.
        let owned;
        let doc = if self.keep_tree {
            Box::leak(Box::new(doc)).get_ref()
        } else {
            owned = doc;
            owned.get_ref()
        };
        walker.check_keys(doc, TOP_KEYS, "the file")?;
        let index = self.units.len();
        // An included file's `[settings]` are checked, and ignored (SPEC 9).
        if let Some(v) = doc.get("settings") {
            let settings = settings(&walker, v)?;
            if parent.is_none() {
                self.settings = Some(settings);
            }
        }
        let env = match doc.get("env") {
            Some(v) => env_table(&walker, v, "[env]")?,
            None => Vec::new(),
        };
        if let Some(v) = doc.get("vars") {
            self.vars.extend(
                vars(&walker, v)?
                    .into_iter()
                    .map(|var| Var { unit: index, ..var }),
            );
        }
        self.units.push(Unit {
            file: Arc::clone(&file),
            prefix: prefix.clone(),
            other_prefixes,
            dir,
            parent,
            env,
        });
        if let Some(value) = doc.get("tasks") {
            let table = walker.table(value, "`tasks`")?;
            self.tasks.reserve(table.len());
            for (key, value) in table.iter() {
                let name = key.get_ref();
                check_task_name(&walker, name, key.span())?;
                let mut task = task(&walker, format!("{prefix}{name}"), key.span(), value)?;
                task.unit = index;
                // `_name` is private by its short name (SPEC 2): the full
                // name starts with the namespace.
                task.private |= name.starts_with('_');
                if !prefix.is_empty() {
                    for alias in &mut task.aliases {
                        alias.insert_str(0, &prefix);
                    }
                }
                self.tasks.push(task);
            }
        }
        if let Some(value) = doc.get("include") {
            self.includes(&walker, value, index)?;
        }
        Ok(())
    }
}

/// A file saved with CRLF line ends means the same as with LF (SPEC 2):
/// scripts must reach the shell without a `\r` on every line. In TOML a
/// raw CR can only be part of a line end, so dropping it changes nothing
/// else, and lines and columns stay the same.
pub(in crate::file) fn without_cr(file: Arc<SourceFile>) -> Arc<SourceFile> {
    if !file.text.contains('\r') {
        return file;
    }
    Arc::new(SourceFile {
        display: file.display.clone(),
        path: file.path.clone(),
        text: file.text.replace("\r\n", "\n"),
    })
}

/// Names and aliases to task indexes; an alias that is already a name is
/// an error.
fn lookup(tasks: &[Task], units: &[Unit]) -> Result<HashMap<String, usize>> {
    let mut lookup = HashMap::with_capacity(tasks.len());
    for (index, task) in tasks.iter().enumerate() {
        lookup.insert(task.name.clone(), index);
    }
    for (index, task) in tasks.iter().enumerate() {
        // A file included with `aliases` answers to each other namespace
        // too (SPEC 9): `d:build` beside `docs:build`.
        let unit = &units[task.unit];
        let other_names: Vec<String> = unit
            .other_prefixes
            .iter()
            .flat_map(|other| {
                std::iter::once(&task.name)
                    .chain(&task.aliases)
                    .filter_map(|n| n.strip_prefix(unit.prefix.as_str()))
                    .map(move |short| format!("{other}{short}"))
            })
            .collect();
        for alias in task.aliases.iter().chain(&other_names) {
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
    Ok(lookup)
}

mod args;
pub(crate) mod definition;
mod include;
pub(crate) mod keys;
mod matrix;
mod names;
mod refs;
mod steps;
mod tables;
mod task;
pub(crate) use args::ARG_KEYS;
use args::*;
use matrix::*;
use names::*;
use refs::*;
use steps::*;
use tables::*;
pub(crate) use task::TASK_KEYS;
use task::*;
