//! The usage form of a task (`deploy <target> [-t TAG]...`): one wording
//! for the listing, a task's help, `--choose` and the argument parser's
//! errors. Reads the model only; a service below `args` and `list`, so the
//! parser names a task's usage without reaching up to the listings.

use crate::model::{Arg, ArgType, ArgValue, Task};

/// The usage form of a task: `deploy <target> [-t TAG]...`.
pub fn usage(task: &Task) -> String {
    usage_with(task, false)
}

/// The usage form `-l` shows, where an argument with a few short choices
/// shows them: `deploy <staging|prod>`.
pub fn listing_usage(task: &Task) -> String {
    usage_with(task, true)
}

fn usage_with(task: &Task, choices: bool) -> String {
    let mut out = task.name.clone();
    for arg in &task.args {
        out.push(' ');
        out.push_str(&arg_usage(arg, choices));
    }
    out
}

/// `staging|prod`, when an argument has a few choices that read well
/// inline.
fn short_choices(arg: &Arg) -> Option<String> {
    const MOST: usize = 5;
    const WIDEST: usize = 24;
    if arg.choices.is_empty() || arg.choices.len() > MOST {
        return None;
    }
    let text: Vec<String> = arg.choices.iter().map(ArgValue::display).collect();
    let text = text.join("|");
    (text.chars().count() <= WIDEST).then_some(text)
}

pub fn arg_usage(arg: &Arg, show_choices: bool) -> String {
    let flag = match arg.short {
        Some(c) => format!("-{c}"),
        None => arg.flag(),
    };
    let choices = show_choices.then(|| short_choices(arg)).flatten();
    if arg.positional {
        let name = choices.as_deref().unwrap_or(&arg.name);
        return match (arg.ty, arg.required()) {
            (ArgType::List, _) => format!("[{name}]..."),
            (_, true) => format!("<{name}>"),
            (_, false) => format!("[{name}]"),
        };
    }
    let value = match &choices {
        Some(c) => format!("<{c}>"),
        None => arg.metavar(),
    };
    match arg.ty {
        ArgType::Bool => format!("[{flag}]"),
        ArgType::Count => format!("[{flag}]..."),
        ArgType::List => format!("[{flag} {value}]..."),
        _ if arg.required() => format!("{flag} {value}"),
        _ => format!("[{flag} {value}]"),
    }
}
