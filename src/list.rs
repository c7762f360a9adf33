//! Listings and help (SPEC 8): `tasker -l`, `tasker -l --json` and
//! `tasker TASK --help`. Reads the model only; compiles no template and runs
//! nothing.

use std::fmt::Write as _;

use crate::model::{Arg, ArgType, ArgValue, Model, Task, ROOT_UNIT};
use crate::style::Style;
use crate::usage::{arg_usage, listing_usage, usage};

/// The human listing.
pub fn render(model: &Model, all: bool, style: Style) -> String {
    let shown: Vec<&Task> = model
        .tasks
        .iter()
        .filter(|t| all || !t.is_hidden())
        .collect();
    let usages: Vec<String> = shown.iter().map(|t| listing_usage(t)).collect();
    let default = model
        .settings
        .default
        .as_ref()
        .and_then(|(name, _)| model.task(name));
    let width = usages.iter().map(|u| u.chars().count()).max().unwrap_or(0) + 3;

    let mut out = String::new();
    let _ = writeln!(out, "Tasks in {}:", model.file.display);
    if shown.is_empty() {
        out.push_str("    (none)\n");
        return out;
    }
    // The root file's tasks first, then each included file's under its
    // namespace (SPEC 9); in each file, ungrouped tasks first, then each
    // group in order of first appearance.
    fn section(task: &Task) -> (usize, Option<&str>) {
        (task.unit, task.group.as_deref())
    }
    let mut sections: Vec<(usize, Option<&str>)> = vec![(ROOT_UNIT, None)];
    for task in &shown {
        if !sections.contains(&(task.unit, None)) {
            sections.push((task.unit, None));
        }
    }
    for task in &shown {
        if !sections.contains(&section(task)) {
            let at = sections
                .iter()
                .rposition(|s| s.0 == task.unit)
                .map_or(sections.len(), |i| i + 1);
            sections.insert(at, section(task));
        }
    }
    for (unit, group) in sections {
        let members: Vec<usize> = (0..shown.len())
            .filter(|&i| section(shown[i]) == (unit, group))
            .collect();
        if members.is_empty() {
            continue;
        }
        let prefix = &model.units[unit].prefix;
        let heading = match group {
            Some(g) if prefix.is_empty() => Some(format!("{g}:")),
            Some(g) => Some(format!("{prefix} {g}:")),
            None if prefix.is_empty() => None,
            None => Some(prefix.clone()),
        };
        if let Some(heading) = heading {
            let _ = writeln!(out, "  {}", style.bold(&heading));
        }
        for i in members {
            let task = shown[i];
            let usage = &usages[i];
            let start = out.len();
            out.push_str("    ");
            if style.color {
                out.push_str(&style.task(&task.name));
            } else {
                out.push_str(&task.name);
            }
            out.push_str(&usage[task.name.len()..]);
            let help = task.help_first_line();
            let mut marks = Vec::new();
            if default.is_some_and(|d| std::ptr::eq(&model.tasks[d], task)) {
                marks.push("[default]".to_string());
            }
            if !task.aliases.is_empty() {
                marks.push(format!("[aliases: {}]", task.aliases.join(", ")));
            }
            if !help.is_empty() || !marks.is_empty() {
                let pad = width - usage.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(help);
                if !marks.is_empty() {
                    if !help.is_empty() {
                        out.push_str("   ");
                    }
                    out.push_str(&marks.join(" "));
                }
            }
            let trimmed = out[start..].trim_end().len();
            out.truncate(start + trimmed);
            out.push('\n');
        }
    }
    out
}

/// What `-l --json` says of a task's up-to-date state.
#[derive(Default)]
pub struct Freshness {
    /// Whether a run with no arguments would be skipped (`None`: no
    /// sources, or it cannot be told).
    pub up_to_date: Option<bool>,
    /// When it would run, whether the remote cache holds it (`"hit"`,
    /// `"miss"`, `"unavailable"`; `None` when it was not asked).
    pub cache: Option<&'static str>,
    /// When it is up to date, how its recorded success came about:
    /// `"ran"` or `"restored"` (from the remote cache).
    pub recorded: Option<&'static str>,
}

/// The stable JSON shape of `tasker -l --json`.
/// `freshness` tells, per task index, whether a run of the task with no
/// arguments would be skipped (`None`: no sources, or it cannot be told),
/// and, when it would run, whether the remote cache holds it (`"hit"`,
/// `"miss"`, `"unavailable"`; `None` when it was not asked).
pub fn render_json(model: &Model, all: bool, freshness: &dyn Fn(usize) -> Freshness) -> String {
    let tasks: Vec<serde_json::Value> = model
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| all || !t.is_hidden())
        .map(|(index, task)| {
            let Freshness {
                up_to_date,
                cache,
                recorded,
            } = freshness(index);
            serde_json::json!({
                "name": task.name,
                "file": model.units[task.unit].file.path.display().to_string(),
                "help": task.help,
                "group": task.group,
                "aliases": task.aliases,
                "private": task.is_hidden(),
                "background": task.background,
                "deps": task.deps.iter().map(|c| c.template.source.as_str()).collect::<Vec<_>>(),
                "sources": task.sources,
                "outputs": task.outputs,
                "up_to_date": up_to_date,
                "cache": cache,
                "recorded": recorded,
                "args": task.args.iter().map(|a| serde_json::json!({
                    "name": a.name,
                    "type": a.ty.name(),
                    "help": a.help,
                    "default": a.default.as_ref().map(ArgValue::to_json),
                    "required": a.required(),
                    "positional": a.positional,
                    "short": a.short.map(|c| c.to_string()),
                    "choices": a.choices.iter().map(ArgValue::to_json).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let doc = serde_json::json!({
        "file": model.file.path.display().to_string(),
        "tasks": tasks,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// `tasker TASK --help`; `reads_extra` when the words after `--` reach a
/// command of the task.
pub fn task_help(task: &Task, reads_extra: bool, style: Style) -> String {
    let mut out = String::new();
    let extra = if reads_extra { " [-- EXTRA...]" } else { "" };
    let _ = writeln!(
        out,
        "{} tasker {}{extra}",
        style.bold("Usage:"),
        usage(task)
    );
    if let Some(help) = &task.help {
        out.push('\n');
        out.push_str(help.trim_end());
        out.push('\n');
    }
    if !task.args.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Arguments:"));
        out.push_str(&argument_lines(task));
    }
    if !task.aliases.is_empty() {
        let _ = writeln!(
            out,
            "\n{} {}",
            style.bold("Aliases:"),
            task.aliases.join(", ")
        );
    }
    if !task.deps.is_empty() {
        let deps: Vec<&str> = task
            .deps
            .iter()
            .map(|c| c.template.source.as_str())
            .collect();
        let _ = writeln!(out, "\n{} {}", style.bold("Deps:"), deps.join(", "));
    }
    if !task.post.is_empty() {
        let post: Vec<&str> = task
            .post
            .iter()
            .map(|c| c.template.source.as_str())
            .collect();
        let _ = writeln!(out, "\n{} {}", style.bold("Post:"), post.join(", "));
    }
    if let Some(question) = &task.confirm {
        let _ = writeln!(
            out,
            "\n{} {} [y/N]",
            style.bold("Confirm:"),
            question.source.trim()
        );
    }
    if !task.vars.is_empty() {
        let names: Vec<&str> = task.vars.iter().map(|v| v.name.as_str()).collect();
        let _ = writeln!(out, "\n{} {}", style.bold("Vars:"), names.join(", "));
    }
    if !task.status.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Up to date when these succeed:"));
        for status in &task.status {
            let _ = writeln!(out, "  {}", status.source.trim());
        }
    }
    if !task.preconditions.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Preconditions:"));
        for pre in &task.preconditions {
            let _ = match &pre.msg {
                Some(msg) => writeln!(out, "  {}  ({})", pre.sh.source.trim(), msg.source.trim()),
                None => writeln!(out, "  {}", pre.sh.source.trim()),
            };
        }
    }
    for (title, steps) in [("Steps:", &task.run), ("Finally:", &task.finally)] {
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", style.bold(title));
        for step in steps {
            out.push_str(&step_text(step));
        }
    }
    out
}

/// The arguments of a task's help, one line each: its form, its help,
/// and the facts (type, required, default, choices, env).
fn argument_lines(task: &Task) -> String {
    let mut out = String::new();
    let forms: Vec<String> = task.args.iter().map(arg_form).collect();
    let width = forms.iter().map(|f| f.chars().count()).max().unwrap_or(0) + 3;
    for (arg, form) in task.args.iter().zip(&forms) {
        let mut facts = vec![arg.ty.name().to_string()];
        if arg.required() {
            facts.push("required".into());
        }
        if let Some(default) = &arg.default {
            facts.push(format!("default: {}", default_text(default)));
        }
        if !arg.choices.is_empty() {
            let choices: Vec<String> = arg.choices.iter().map(ArgValue::display).collect();
            facts.push(format!("choices: {}", choices.join(", ")));
        }
        if let Some(env) = &arg.env {
            facts.push(format!("env: {env}"));
        }
        let mut line = format!("  {form:<width$}");
        if let Some(help) = &arg.help {
            line.push_str(help.trim());
            line.push(' ');
        }
        let _ = write!(line, "[{}]", facts.join(", "));
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// A script without its common indentation and its blank lines at either
/// end, as `"""` strings in TOML usually hold it.
fn dedent(script: &str) -> String {
    let lines: Vec<&str> = script.lines().collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let text: Vec<&str> = lines
        .iter()
        .map(|l| l.get(indent..).unwrap_or("").trim_end())
        .collect();
    text.join("\n").trim_matches('\n').to_string()
}

/// One step as the help shows it: `$ script` (each further line
/// indented), `$ program args` for `cmd`, `$ a | b` for `pipe`, and
/// `task NAME ARGS` for a task step.
fn step_text(step: &crate::model::Step) -> String {
    use crate::model::StepKind;
    let text = match &step.kind {
        StepKind::Sh(t) => format!("$ {}", dedent(&t.source)),
        StepKind::Cmd(words) => {
            let words: Vec<&str> = words.iter().map(|w| w.source.as_str()).collect();
            format!("$ {}", words.join(" "))
        }
        StepKind::Pipe(stages) => {
            let stages: Vec<&str> = stages.iter().map(|s| s.source.as_str()).collect();
            format!("$ {}", stages.join(" | "))
        }
        StepKind::Task(call) => format!("task {}", call.template.source.trim()),
    };
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        out.push_str(if i == 0 { "  " } else { "    " });
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn default_text(value: &ArgValue) -> String {
    match value {
        ArgValue::Str(s) => format!("{s:?}"),
        ArgValue::List(items) => format!("{items:?}"),
        other => other.display(),
    }
}

/// `<target>, --target TARGET` / `-t, --tag TAG` / `--release`.
fn arg_form(arg: &Arg) -> String {
    let long = match arg.ty {
        ArgType::Bool => format!("{}, --no-{}", arg.flag(), arg.long_name()),
        ArgType::Count => arg.flag(),
        _ => format!("{} {}", arg.flag(), arg.metavar()),
    };
    let mut form = String::new();
    if arg.positional {
        // The same bare form as the usage line: `<a>`, `[a]` or `[a]...`.
        let _ = write!(form, "{}, ", arg_usage(arg, false));
    }
    if let Some(c) = arg.short.filter(|_| !arg.short_only()) {
        let _ = write!(form, "-{c}, ");
    }
    form.push_str(&long);
    form
}
