//! Steps and calls: `run`/`finally` entries, `deps`/`post` calls.

use super::*;

pub(super) fn steps(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<Step>> {
    match value.get_ref() {
        DeValue::String(_) => Ok(vec![Step {
            kind: StepKind::Sh(w.template(value, what)?),
            ignore_failure: false,
            quiet: false,
            dir: None,
            span: w.span(value.span()),
        }]),
        DeValue::Array(items) => items.iter().map(|item| step(w, item, what)).collect(),
        _ => Err(w.wrong_type(value, what, "a string or an array of steps")),
    }
}

pub(super) fn step(w: &Walker, item: &Value, what: impl std::fmt::Display + Copy) -> Result<Step> {
    let span = w.span(item.span());
    let table = match item.get_ref() {
        DeValue::String(_) => {
            return Ok(Step {
                kind: StepKind::Sh(w.template(item, what)?),
                ignore_failure: false,
                quiet: false,
                dir: None,
                span,
            })
        }
        DeValue::Table(t) => t,
        _ => {
            return Err(w.wrong_type(item, &format!("each step of {what}"), "a string or a table"))
        }
    };
    w.check_keys(table, STEP_KEYS, "a step")?;
    let kinds: Vec<&str> = STEP_KINDS
        .iter()
        .copied()
        .filter(|k| table.contains_key(*k))
        .collect();
    if kinds.len() != 1 {
        let message = if kinds.is_empty() {
            "a step table needs one of `sh`, `cmd`, `pipe` or `task`".to_string()
        } else {
            format!(
                "a step table takes exactly one of `sh`, `cmd`, `pipe` or `task`, found {}",
                kinds.join(" and ")
            )
        };
        return Err(Error::at(&span, message).with_label("in this step"));
    }
    let v = &table[kinds[0]];
    let kind = match kinds[0] {
        "sh" => StepKind::Sh(w.template(v, "`sh` of a step")?),
        "cmd" => {
            let words = templates(w, v, "`cmd` of a step")?;
            if words.is_empty() {
                return Err(w
                    .error(v.span(), "`cmd` needs at least a program")
                    .with_label("empty"));
            }
            StepKind::Cmd(words)
        }
        "pipe" => {
            let stages = templates(w, v, "`pipe` of a step")?;
            if stages.is_empty() {
                return Err(w
                    .error(v.span(), "`pipe` needs at least one stage")
                    .with_label("empty"));
            }
            StepKind::Pipe(stages)
        }
        _ => StepKind::Task(Call {
            template: w.template(v, "`task` of a step")?,
        }),
    };
    Ok(Step {
        kind,
        ignore_failure: table
            .get("ignore_failure")
            .map_or(Ok(false), |v| w.bool(v, "`ignore_failure` of a step"))?,
        quiet: table
            .get("quiet")
            .map_or(Ok(false), |v| w.bool(v, "`quiet` of a step"))?,
        dir: table
            .get("dir")
            .map(|v| w.template(v, "`dir` of a step"))
            .transpose()?,
        span,
    })
}

pub(super) fn templates(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<Template>> {
    w.array(value, what)?
        .iter()
        .map(|item| w.template(item, format_args!("each element of {what}")))
        .collect()
}

pub(super) fn calls(
    w: &Walker,
    value: Option<&Value>,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<Call>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let calls: Vec<Call> = templates(w, value, what)?
        .into_iter()
        .map(|template| Call { template })
        .collect();
    for call in &calls {
        if uses_task_results(&call.template.source) {
            return Err(Error::at(
                &call.template.span,
                format!("{what} cannot use `tasks.*`: calls in deps and post are resolved before anything runs"),
            )
            .with_label("uses a run's result")
            .with_help("call the task from a step instead: run = [{ task = \"...\" }], which is resolved when it is reached"));
        }
    }
    Ok(calls)
}

/// Whether a template reads `tasks.NAME` (a value only a run produces).
pub(super) fn uses_task_results(source: &str) -> bool {
    let mut rest = source;
    while let Some(open) = rest.find("{{").into_iter().chain(rest.find("{%")).min() {
        let inner = &rest[open + 2..];
        let close = inner
            .find("}}")
            .into_iter()
            .chain(inner.find("%}"))
            .min()
            .unwrap_or(inner.len());
        if contains_word_followed(&inner[..close], "tasks", ['.', '[']) {
            return true;
        }
        rest = &inner[close..];
    }
    false
}

pub(super) fn contains_word_followed(text: &str, word: &str, next: [char; 2]) -> bool {
    let bytes = text.as_bytes();
    let mut start = 0;
    while let Some(pos) = text[start..].find(word) {
        let at = start + pos;
        let before_ok = at == 0
            || !(bytes[at - 1].is_ascii_alphanumeric()
                || bytes[at - 1] == b'_'
                || bytes[at - 1] == b'.');
        let after = text[at + word.len()..].trim_start();
        if before_ok && after.starts_with(next) {
            return true;
        }
        start = at + word.len();
    }
    false
}
