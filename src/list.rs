//! Listings and help (SPEC 8): `tasker -l`, `tasker -l --json` and
//! `tasker TASK --help`. Reads the model only; compiles no template and runs
//! nothing.

use std::fmt::Write as _;

use crate::model::{Arg, ArgType, ArgValue, Model, Task};
use crate::style::Style;

/// The usage form of a task: `deploy <target> [-t TAG]...`.
pub fn usage(task: &Task) -> String {
    let mut out = task.name.clone();
    for arg in &task.args {
        out.push(' ');
        out.push_str(&arg_usage(arg));
    }
    out
}

fn arg_usage(arg: &Arg) -> String {
    let flag = match arg.short {
        Some(c) => format!("-{c}"),
        None => arg.flag(),
    };
    if arg.positional {
        return match (arg.ty, arg.required()) {
            (ArgType::List, _) => format!("[{}]...", arg.name),
            (_, true) => format!("<{}>", arg.name),
            (_, false) => format!("[{}]", arg.name),
        };
    }
    match arg.ty {
        ArgType::Bool => format!("[{flag}]"),
        ArgType::Count => format!("[{flag}]..."),
        ArgType::List => format!("[{flag} {}]...", arg.metavar()),
        _ if arg.required() => format!("{flag} {}", arg.metavar()),
        _ => format!("[{flag} {}]", arg.metavar()),
    }
}

/// The human listing.
pub fn render(model: &Model, all: bool, style: Style) -> String {
    let shown: Vec<&Task> = model
        .tasks
        .iter()
        .filter(|t| all || !t.is_hidden())
        .collect();
    let usages: Vec<String> = shown.iter().map(|t| usage(t)).collect();
    let width = usages.iter().map(|u| u.chars().count()).max().unwrap_or(0) + 3;

    let mut out = String::new();
    let _ = writeln!(out, "Tasks in {}:", model.file.display);
    if shown.is_empty() {
        out.push_str("    (none)\n");
        return out;
    }
    // Ungrouped tasks first, then each group in order of first appearance.
    let mut groups: Vec<Option<&str>> = vec![None];
    for task in &shown {
        if let Some(g) = task.group.as_deref() {
            if !groups.contains(&Some(g)) {
                groups.push(Some(g));
            }
        }
    }
    for group in groups {
        let members: Vec<usize> = (0..shown.len())
            .filter(|&i| shown[i].group.as_deref() == group)
            .collect();
        if members.is_empty() {
            continue;
        }
        if let Some(g) = group {
            let _ = writeln!(out, "  {}", style.bold(&format!("{g}:")));
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
            if !help.is_empty() || !task.aliases.is_empty() {
                let pad = width - usage.chars().count();
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(help);
                if !task.aliases.is_empty() {
                    if !help.is_empty() {
                        out.push_str("   ");
                    }
                    out.push_str("[aliases: ");
                    out.push_str(&task.aliases.join(", "));
                    out.push(']');
                }
            }
            let trimmed = out[start..].trim_end().len();
            out.truncate(start + trimmed);
            out.push('\n');
        }
    }
    out
}

/// The stable JSON shape of `tasker -l --json`.
pub fn render_json(model: &Model, all: bool) -> String {
    let tasks: Vec<serde_json::Value> = model
        .tasks
        .iter()
        .filter(|t| all || !t.is_hidden())
        .map(|task| {
            serde_json::json!({
                "name": task.name,
                "help": task.help,
                "group": task.group,
                "aliases": task.aliases,
                "private": task.is_hidden(),
                "background": task.background,
                "deps": task.deps.iter().map(|c| c.template.source.as_str()).collect::<Vec<_>>(),
                "sources": task.sources,
                "outputs": task.outputs,
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

/// `tasker TASK --help`.
pub fn task_help(task: &Task, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} tasker {}", style.bold("Usage:"), usage(task));
    if let Some(help) = &task.help {
        out.push('\n');
        out.push_str(help.trim_end());
        out.push('\n');
    }
    if !task.args.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("Arguments:"));
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
        ArgType::Bool => format!("{}, --no-{}", arg.flag(), &arg.flag()[2..]),
        ArgType::Count => arg.flag(),
        _ => format!("{} {}", arg.flag(), arg.metavar()),
    };
    let mut form = String::new();
    if arg.positional {
        // The same bare form as the usage line: `<a>`, `[a]` or `[a]...`.
        let _ = write!(form, "{}, ", arg_usage(arg));
    }
    if let Some(c) = arg.short {
        let _ = write!(form, "-{c}, ");
    }
    form.push_str(&long);
    form
}
