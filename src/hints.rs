//! Hints for a command line that went wrong, which need more than the
//! declaration of tasker's options: the tasks of the file it points at.

use crate::cli::Cli;
use crate::error::Error;
use clap::Parser;

/// An option tasker does not have, before the first task. When the first
/// task has it (`tasker --release build`), say to write it after the
/// task's name; otherwise suggest the nearest of tasker's options.
pub fn unknown_option(
    err: &clap::Error,
    head: &[std::ffi::OsString],
    tail: &[std::ffi::OsString],
) -> Error {
    use clap::error::{ContextKind, ContextValue};
    let flag = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(flag)) => flag.clone(),
        _ => String::from("?"),
    };
    let mut error = Error::usage(format!("unknown option `{flag}` of tasker"));
    let task_word = tail.iter().find(|w| *w != "--");
    if let Some(task) = task_word.and_then(|w| task_owning(head, &flag, &w.to_string_lossy())) {
        let word = head
            .iter()
            .map(|w| w.to_string_lossy())
            .find(|w| **w == *flag || w.starts_with(&format!("{flag}=")))
            .map_or(flag.clone(), |w| w.into_owned());
        return error
            .with_help(format!(
                "`{flag}` is a flag of task `{task}`: a task's flags go after its name, as in `tasker {task} {word}`"
            ));
    }
    if let Some(long) = flag.strip_prefix("--") {
        use clap::CommandFactory;
        let command = Cli::command();
        let longs = command.get_arguments().filter_map(|a| a.get_long());
        if let Some(near) = crate::error::closest(long, longs) {
            error = error.with_help(crate::error::did_you_mean(format_args!("--{near}")));
        }
    }
    error.with_help(
        "tasker's own options are listed by `tasker --help`; a task's flags go after its name",
    )
}

/// The name of task `word` when it has the flag `flag`, read from the file
/// the other options point at (none when there is no readable file).
fn task_owning(head: &[std::ffi::OsString], flag: &str, word: &str) -> Option<String> {
    let rest: Vec<&std::ffi::OsString> = head
        .iter()
        .filter(|w| {
            let w = w.to_string_lossy();
            *w != *flag && !w.starts_with(&format!("{flag}="))
        })
        .collect();
    let cli = Cli::try_parse_from(rest).ok()?;
    let mut cwd = std::env::current_dir().ok()?;
    if let Some(dir) = &cli.dir {
        cwd = cwd.join(dir);
    }
    let path = crate::file::find(&cwd, cli.file.as_deref()).ok()?;
    let model = crate::file::load(&path, &cwd).ok()?;
    let task = &model.tasks[model.task(word)?];
    let has = if let Some(long) = flag.strip_prefix("--") {
        let name = long.replace('-', "_");
        task.args.iter().any(|a| {
            a.name == name
                || (a.ty == crate::model::ArgType::Bool
                    && name.strip_prefix("no_") == Some(a.name.as_str()))
        })
    } else {
        let c = flag.chars().nth(1);
        task.args.iter().any(|a| a.short.is_some() && a.short == c)
    };
    has.then(|| task.name.clone())
}
