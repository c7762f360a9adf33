//! Names: task names and identifiers (args, vars, matrix entries).

use super::*;

pub(super) fn check_task_name(
    walker: &Walker,
    name: &str,
    span: std::ops::Range<usize>,
) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else if name.contains(':') {
        // go-task's `lint:fix`: `:` is where tasker's include namespaces
        // end, never part of a name.
        Err(walker
            .error(span, format!("invalid task name `{name}`: `:` separates an include namespace"))
            .with_label("`:` in a task name")
            .with_help(format!(
                "name it `{}`, or put its tasks in a file of their own and include it: [include] {} = \"{}.toml\" makes its task `{}` run as `{name}`",
                name.replace(':', "-"),
                name.split(':').next().unwrap_or(name),
                name.split(':').next().unwrap_or(name),
                name.rsplit(':').next().unwrap_or(name),
            )))
    } else {
        Err(walker
            .error(span, format!("invalid task name `{name}`"))
            .with_label("invalid name")
            .with_help(
                "task names start with a letter or `_` and hold letters, digits, `_` and `-`",
            ))
    }
}

pub(super) fn check_ident(
    walker: &Walker,
    name: &str,
    span: std::ops::Range<usize>,
    what: &str,
) -> Result<()> {
    // `what` comes with its article ("an argument"); some messages need
    // the bare noun.
    let noun = what.split_once(' ').map_or(what, |(_, noun)| noun);
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(walker
            .error(span, format!("invalid {noun} name `{name}`"))
            .with_label("invalid name")
            .with_help(format!(
                "{noun} names start with a letter or `_` and hold letters, digits and `_`"
            )));
    }
    if RESERVED_NAMES.contains(&name) {
        return Err(walker
            .error(span, format!("`{name}` is reserved and cannot name {what}"))
            .with_label("reserved name")
            .with_help(format!(
                "templates already use: {}",
                RESERVED_NAMES.join(", ")
            )));
    }
    Ok(())
}
