//! Checks that need the template engine: every template of a task compiles
//! and reads only names in its scope. Run for the whole file by `--check`
//! and for each task of the run graph before anything runs; `-l` never
//! pays for it.

use crate::error::{Error, Result};
use crate::model::{Model, StepKind, Task, Template, VarValue};
use crate::template::Engine;

/// Check the whole file: `[env]`, `[vars]` and every task.
pub fn check_file(engine: &Engine, model: &Model) -> Result<()> {
    check_global_values(model)?;
    for (unit, file) in model.units.iter().enumerate() {
        for entry in &file.env {
            let what = format!("[env] entry `{}`", entry.name);
            check_template(engine, model, unit, None, &entry.value, &what)?;
        }
    }
    for var in &model.vars {
        if let VarValue::Template(t) | VarValue::Sh(t) = &var.value {
            let what = format!("var `{}`", var.name);
            check_template(engine, model, var.unit, None, t, &what)?;
        }
    }
    crate::context::check_var_cycles(engine, model, |_| false)?;
    crate::graph::check_literal_calls(model, None)?;
    for task in &model.tasks {
        check_task(engine, model, task)?;
    }
    Ok(())
}

/// `[env]` values and the commands of `sh` vars hold no NUL byte: checked
/// before any run, as each task's own values are.
pub fn check_global_values(model: &Model) -> Result<()> {
    for entry in model.units.iter().flat_map(|u| &u.env) {
        reaches_a_process(&entry.value, &format!("[env] entry `{}`", entry.name))?;
    }
    for var in &model.vars {
        if let VarValue::Sh(t) = &var.value {
            reaches_a_process(t, &format!("the command of var `{}`", var.name))?;
        }
    }
    Ok(())
}

/// Every template of `task`.
pub fn check_task(engine: &Engine, model: &Model, task: &Task) -> Result<()> {
    for (key, steps) in [("run", &task.run), ("finally", &task.finally)] {
        for (i, step) in steps.iter().enumerate() {
            let what = format!("step {} of `{key}` of task `{}`", i + 1, task.name);
            match &step.kind {
                StepKind::Sh(t) => reaches_a_process(t, &what)?,
                StepKind::Cmd(ts) | StepKind::Pipe(ts) => {
                    for t in ts {
                        reaches_a_process(t, &what)?;
                    }
                }
                StepKind::Task(_) => {}
            }
        }
    }
    for entry in &task.env {
        reaches_a_process(
            &entry.value,
            &format!("`env.{}` of task `{}`", entry.name, task.name),
        )?;
    }
    for (template, what) in task_templates(task) {
        check_template(engine, model, task.unit, Some(task), template, &what)?;
    }
    for (key, templates) in [
        ("status", task.status.iter().collect::<Vec<_>>()),
        (
            "preconditions",
            task.preconditions.iter().map(|p| &p.sh).collect(),
        ),
    ] {
        for t in templates {
            reaches_a_process(t, &format!("`{key}` of task `{}`", task.name))?;
        }
    }
    check_task_var_cycles(engine, task)?;
    Ok(())
}

/// Whether the words after `--` can reach a command of `task`: one of its
/// templates, or a var, reads `extra`.
pub fn reads_extra(engine: &Engine, model: &Model, task: &Task) -> Result<bool> {
    let vars = model.vars.iter().filter_map(|v| match &v.value {
        VarValue::Template(t) | VarValue::Sh(t) => Some((t, format!("var `{}`", v.name))),
        VarValue::Literal(_) => None,
    });
    for (template, what) in task_templates(task).into_iter().chain(vars) {
        if template.is_literal() {
            continue;
        }
        let names = engine.names(template, &what)?;
        if names.iter().any(|n| n.split('.').next() == Some("extra")) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The runs whose `tasks.NAME` values `task`'s templates (or the vars)
/// read; `None` when one reads `tasks` as a whole (`tasks[name]`).
pub fn tasks_read(engine: &Engine, model: &Model, task: &Task) -> Result<Option<Vec<String>>> {
    let vars = model.vars.iter().filter_map(|v| match &v.value {
        VarValue::Template(t) | VarValue::Sh(t) => Some((t, format!("var `{}`", v.name))),
        VarValue::Literal(_) => None,
    });
    let mut read = Vec::new();
    for (template, what) in task_templates(task).into_iter().chain(vars) {
        if template.is_literal() {
            continue;
        }
        for name in engine.names(template, &what)? {
            let mut parts = name.split('.');
            if parts.next() != Some("tasks") {
                continue;
            }
            match parts.next() {
                Some(run) => read.push(run.to_string()),
                None => return Ok(None),
            }
        }
    }
    read.sort();
    read.dedup();
    Ok(Some(read))
}

/// Every template of `task`, each with words that say where it is.
fn task_templates(task: &Task) -> Vec<(&Template, String)> {
    let what = |key: &str| format!("`{key}` of task `{}`", task.name);
    let mut templates: Vec<(&Template, String)> = Vec::new();
    for (key, steps) in [("run", &task.run), ("finally", &task.finally)] {
        for (i, step) in steps.iter().enumerate() {
            let w = format!("step {} of `{key}` of task `{}`", i + 1, task.name);
            match &step.kind {
                StepKind::Sh(t) => templates.push((t, w)),
                StepKind::Cmd(ts) | StepKind::Pipe(ts) => {
                    templates.extend(ts.iter().map(|t| (t, w.clone())))
                }
                StepKind::Task(call) => templates.push((&call.template, w)),
            }
            if let Some(dir) = &step.dir {
                templates.push((
                    dir,
                    format!("`dir` of step {} of task `{}`", i + 1, task.name),
                ));
            }
        }
    }
    for call in task.deps.iter() {
        templates.push((&call.template, what("deps")));
    }
    for call in task.post.iter() {
        templates.push((&call.template, what("post")));
    }
    for entry in &task.env {
        templates.push((
            &entry.value,
            format!("`env.{}` of task `{}`", entry.name, task.name),
        ));
    }
    if let Some(dir) = &task.dir {
        templates.push((dir, what("dir")));
    }
    if let Some(confirm) = &task.confirm {
        templates.push((confirm, what("confirm")));
    }
    for responder in &task.output.respond {
        templates.push((&responder.send, what("respond.send")));
    }
    for axis in &task.matrix {
        if let crate::model::MatrixValues::Template(t) = &axis.values {
            templates.push((
                t,
                format!("matrix entry `{}` of task `{}`", axis.name, task.name),
            ));
        }
    }
    for var in &task.vars {
        if let VarValue::Template(t) | VarValue::Sh(t) = &var.value {
            templates.push((t, format!("var `{}` of task `{}`", var.name, task.name)));
        }
    }
    for status in &task.status {
        templates.push((status, what("status")));
    }
    for pre in &task.preconditions {
        templates.push((&pre.sh, what("preconditions")));
        if let Some(msg) = &pre.msg {
            templates.push((msg, what("preconditions")));
        }
    }
    for arg in &task.args {
        if let Some(t) = &arg.default_template {
            templates.push((
                t,
                format!(
                    "the default of argument `{}` of task `{}`",
                    arg.name, task.name
                ),
            ));
        }
    }
    templates
}

/// Task vars may read each other, never in a cycle.
fn check_task_var_cycles(engine: &Engine, task: &Task) -> Result<()> {
    let vars = &task.vars;
    let mut uses: Vec<Vec<usize>> = Vec::with_capacity(vars.len());
    for var in vars {
        let used = match &var.value {
            VarValue::Template(t) | VarValue::Sh(t) => engine
                .names(t, &format!("var `{}` of task `{}`", var.name, task.name))?
                .iter()
                .filter_map(|n| {
                    let top = n.split('.').next().unwrap_or(n);
                    vars.iter().position(|v| v.name == top)
                })
                .collect(),
            VarValue::Literal(_) => Vec::new(),
        };
        uses.push(used);
    }
    if let Some(cycle) = crate::cycles::find_cycle(vars.len(), |i| uses[i].clone()) {
        let mut path: Vec<&str> = cycle.iter().map(|&i| vars[i].name.as_str()).collect();
        path.push(path[0]);
        return Err(Error::at(
            &vars[cycle[0]].span,
            format!(
                "cycle among the vars of task `{}`: {}",
                task.name,
                path.join(" -> ")
            ),
        )
        .with_label("this var depends on itself"));
    }
    Ok(())
}

/// A text that becomes an argument, a script or an environment value
/// cannot hold a NUL byte: the system takes them as C strings.
fn reaches_a_process(template: &Template, what: &str) -> Result<()> {
    if !template.source.contains('\0') {
        return Ok(());
    }
    let mut span = template.span.clone();
    let token = span.file.text.get(span.range.clone()).unwrap_or("");
    if let Some(at) = token.find("\\u0000").or_else(|| token.find("\\x00")) {
        let start = span.range.start + at;
        span.range = start..start + 6;
    }
    Err(Error::at(
        &span,
        format!("{what} holds a NUL byte, which cannot reach a process"),
    )
    .with_label("a NUL byte"))
}

fn check_template(
    engine: &Engine,
    model: &Model,
    unit: usize,
    task: Option<&Task>,
    template: &Template,
    what: &str,
) -> Result<()> {
    if template.is_literal() {
        return Ok(());
    }
    let names = engine.names(template, what)?;
    if let Some((name, kind)) = engine.unknown_filter_or_test(template) {
        let mut span = template.span.clone();
        let token = span.file.text.get(span.range.clone()).unwrap_or("");
        if let (Some(offset), Some(at)) = (
            token.find(template.source.as_str()),
            crate::template::find_word(&template.source, &name),
        ) {
            let start = span.range.start + offset + at;
            span.range = start..start + name.len();
        }
        return Err(
            Error::at(&span, format!("unknown {kind} `{name}` in {what}"))
                .with_label(format!("no such {kind}"))
                .with_help(
                    "see the filters and tests of minijinja: https://docs.rs/minijinja/latest/minijinja/filters/",
                ),
        );
    }
    for path in names {
        let top = path.split('.').next().unwrap_or(&path);
        let known = crate::template::SCOPE_NAMES.contains(&top)
            || model.var_in(unit, top).is_some()
            || task.is_some_and(|t| {
                t.arg(top).is_some()
                    || t.matrix.iter().any(|m| m.name == top)
                    || t.vars.iter().any(|v| v.name == top)
            });
        if !known {
            let mut candidates: Vec<&str> = crate::template::SCOPE_NAMES.to_vec();
            let vars = model.vars_seen_from(unit);
            candidates.extend(vars.iter().map(|v| v.name.as_str()));
            if let Some(t) = task {
                candidates.extend(t.args.iter().map(|a| a.name.as_str()));
                candidates.extend(t.matrix.iter().map(|m| m.name.as_str()));
                candidates.extend(t.vars.iter().map(|v| v.name.as_str()));
            }
            return Err(crate::template::unknown_name(
                template, top, candidates, what,
            ));
        }
    }
    Ok(())
}
