//! Cross-references: every literal call names a task that exists and
//! passes it valid arguments.

use super::*;

/// Calls whose text is fixed are parsed now, so a typo in a dep is a load
/// error; templated calls are checked for a known task name at least.
pub(super) fn check_calls(model: &Model) -> Result<()> {
    for task in &model.tasks {
        for call in task.calls() {
            check_call(model, task, call)?;
        }
    }
    Ok(())
}

pub(super) fn check_call(model: &Model, task: &Task, call: &Call) -> Result<()> {
    let source = &call.template.source;
    if call.template.is_literal() {
        crate::args::parse_call(model, source, &call.template.span, task)?;
    } else {
        let first = source.split_whitespace().next().unwrap_or("");
        if !first.contains('{') && !first.is_empty() && model.resolve(task.unit, first).is_none() {
            return Err(Error::at(
                &call.template.span,
                format!("unknown task `{first}` in a call of task `{}`", task.name),
            )
            .with_label("unknown task")
            .suggest(first, model.names_in(task.unit).iter().map(String::as_str)));
        }
    }
    Ok(())
}
