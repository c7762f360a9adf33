//! Looking at a file without running it, as just users do: `--show TASK`
//! (the task as written), `--evaluate [VAR]` (vars with their values),
//! `--summary` (the names on one line) and `--choose` (pick a task and its
//! arguments on a terminal). Reads the model and, for `--evaluate`, the
//! session's vars; runs nothing but `sh` vars.

use std::fmt::Write as _;
use std::io::IsTerminal;

use crate::context::Session;
use crate::error::{Error, Result};
use crate::model::{ArgType, Model, Task, ROOT_UNIT};

/// `--summary`: the names of the tasks `-l` shows, in file order, on one
/// line; nothing at all when there are none.
pub fn summary(model: &Model) -> String {
    let names: Vec<&str> = model
        .tasks
        .iter()
        .filter(|t| !t.is_hidden())
        .map(|t| t.name.as_str())
        .collect();
    if names.is_empty() {
        return String::new();
    }
    format!("{}\n", names.join(" "))
}

/// The task named `word` (or aliased so), or an error suggesting the
/// nearest name.
fn find_task<'m>(model: &'m Model, word: &str, option: &str) -> Result<&'m Task> {
    if let Some(index) = model.task(word) {
        return Ok(&model.tasks[index]);
    }
    let mut names: Vec<&str> = model.callable_names().collect();
    names.sort_unstable();
    let err = Error::usage(format!("{option} {word}: unknown task `{word}`"));
    Err(err.suggest_or(
        word,
        names.iter().copied(),
        "run `tasker -l` to see the tasks",
    ))
}

/// `--show TASK`: the lines of the file that declare the task, comments
/// just above it included, each block under a `# FILE:LINE` heading.
pub fn show(model: &Model, word: &str) -> Result<String> {
    let task = find_task(model, word, "--show")?;
    // The file that declares it, where it has its short name (SPEC 9).
    let file = &task.span.file;
    let short = &task.name[model.units[task.unit].prefix.len()..];
    let lines = Lines::of(&file.text);
    let key_line = task.span.line_col().0 - 1;
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    if lines.header(key_line).is_some() {
        // `[tasks.NAME]`, and every `[tasks.NAME.…]` or `[[tasks.NAME.…]]`
        // table, wherever it stands.
        for (at, path) in lines.headers() {
            if path.len() >= 2 && path[0] == "tasks" && path[1] == short {
                let end = lines.block_end(at);
                match blocks.last_mut() {
                    Some(last) if last.1 == at => last.1 = end,
                    _ => blocks.push((at, end)),
                }
            }
        }
    } else {
        // `NAME = { ... }` under `[tasks]`: from the key to the end of
        // its value.
        blocks.push((key_line, lines.value_end(key_line)));
    }
    let mut out = String::new();
    for (i, (start, end)) in blocks.into_iter().enumerate() {
        let start = if i == 0 {
            lines.comments_above(start)
        } else {
            out.push('\n');
            start
        };
        let end = lines.trim_end(start, end);
        let _ = writeln!(out, "# {}:{}", file.display, start + 1);
        for line in &lines.text[start..end] {
            out.push_str(line.trim_end_matches(['\r', '\n']));
            out.push('\n');
        }
    }
    Ok(out)
}

/// The file's lines, with what `--show` needs to know about them.
struct Lines<'t> {
    text: Vec<&'t str>,
}

impl<'t> Lines<'t> {
    fn of(text: &'t str) -> Lines<'t> {
        Lines {
            text: text.split_inclusive('\n').collect(),
        }
    }

    /// The dotted key of a `[table]` or `[[array]]` header line, unquoted.
    fn header(&self, at: usize) -> Option<Vec<String>> {
        let line = self.text.get(at)?.trim();
        let inner = line.strip_prefix('[')?;
        let inner = inner.strip_prefix('[').unwrap_or(inner);
        let mut path = Vec::new();
        let mut part = String::new();
        let mut quote: Option<char> = None;
        for c in inner.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => part.push(c),
                (None, '"' | '\'') => quote = Some(c),
                (None, '.') => path.push(std::mem::take(&mut part)),
                (None, ']') => {
                    path.push(part);
                    return Some(path);
                }
                (None, c) if c.is_whitespace() => {}
                (None, c) => part.push(c),
            }
        }
        None
    }

    fn headers(&self) -> impl Iterator<Item = (usize, Vec<String>)> + '_ {
        (0..self.text.len()).filter_map(|at| self.header(at).map(|path| (at, path)))
    }

    /// The line after the last of the table whose header is at `at`.
    fn block_end(&self, at: usize) -> usize {
        (at + 1..self.text.len())
            .find(|&i| self.header(i).is_some() && !self.in_multiline_string(i))
            .unwrap_or(self.text.len())
    }

    /// Whether line `at` lies inside a `"""` or `'''` string begun above
    /// (a script may hold a line that looks like a header).
    fn in_multiline_string(&self, at: usize) -> bool {
        let before: usize = self.text[..at]
            .iter()
            .map(|l| l.matches("\"\"\"").count() + l.matches("'''").count())
            .sum();
        before % 2 == 1
    }

    /// The line after the end of an inline value that starts at `at`: the
    /// first line where brackets and braces opened since `at` are closed.
    fn value_end(&self, at: usize) -> usize {
        let mut depth = 0i32;
        for (i, line) in self.text.iter().enumerate().skip(at) {
            let mut quote: Option<char> = None;
            for c in line.chars() {
                match (quote, c) {
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'') => quote = Some(c),
                    (None, '#') => break,
                    (None, '{' | '[') => depth += 1,
                    (None, '}' | ']') => depth -= 1,
                    _ => {}
                }
            }
            if depth <= 0 {
                return i + 1;
            }
        }
        self.text.len()
    }

    /// The first of the comment lines directly above line `at` (or `at`).
    fn comments_above(&self, at: usize) -> usize {
        let mut start = at;
        while start > 0 && self.text[start - 1].trim_start().starts_with('#') {
            start -= 1;
        }
        start
    }

    /// `end`, less the blank and comment lines that close the block (they
    /// belong to what follows).
    fn trim_end(&self, start: usize, mut end: usize) -> usize {
        while end > start + 1 {
            let line = self.text[end - 1].trim();
            if line.is_empty() || line.starts_with('#') {
                end -= 1;
            } else {
                break;
            }
        }
        end
    }
}

/// `--evaluate`: every var with its value, `sh` vars run, aligned as
/// `name = value` with values written as TOML would; `--evaluate VAR`:
/// that one value alone, as plain text.
pub fn evaluate(session: &Session, only: Option<&str>) -> Result<String> {
    let model = session.model;
    if let Some(name) = only {
        if model.var(name).is_none() {
            let err = Error::usage(format!(
                "--evaluate {name}: there is no var `{name}` in {}",
                model.file.display
            ));
            let otherwise = if model.vars.is_empty() {
                "the file declares no [vars]"
            } else {
                "`tasker --evaluate` prints them all"
            };
            return Err(err.suggest_or(
                name,
                model.vars.iter().map(|v| v.name.as_str()),
                otherwise,
            ));
        }
        let value = session.var(name)?;
        return Ok(format!("{}\n", plain(&value)));
    }
    // The root file's vars: those are the ones `--set` and commands of
    // the root file's tasks see.
    let vars = || model.vars.iter().filter(|v| v.unit == ROOT_UNIT);
    let width = vars().map(|v| v.name.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for var in vars() {
        let value = session.var(&var.name)?;
        let _ = writeln!(out, "{:<width$} = {}", var.name, toml_value(&value));
    }
    Ok(out)
}

/// A template value as plain text: strings as they are, the rest as TOML.
fn plain(value: &minijinja::Value) -> String {
    match value.as_str() {
        Some(s) => s.to_string(),
        None => toml_value(value),
    }
}

/// A template value written as a TOML value.
fn toml_value(value: &minijinja::Value) -> String {
    use minijinja::value::ValueKind;
    match value.kind() {
        ValueKind::String => toml_string(value.as_str().unwrap_or("")),
        ValueKind::Bool => value.is_true().to_string(),
        ValueKind::Number => value.to_string(),
        ValueKind::Seq => {
            let items: Vec<String> = value
                .try_iter()
                .map(|items| items.map(|i| toml_value(&i)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        _ => toml_string(&value.to_string()),
    }
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `--choose`: a fuzzy picker over the tasks `-l` shows, then a prompt for
/// each required argument of the chosen one. Returns the words of the
/// command line that the choice stands for (`deploy --target staging`).
pub fn choose(model: &Model) -> Result<Vec<String>> {
    if !std::io::stdin().is_terminal() || !std::io::stderr().is_terminal() {
        return Err(Error::usage("--choose needs a terminal to pick a task on")
            .with_help("name the task instead (`tasker TASK`); `tasker -l` lists them, `tasker --summary` prints their names for scripts"));
    }
    let tasks: Vec<&Task> = model.tasks.iter().filter(|t| !t.is_hidden()).collect();
    if tasks.is_empty() {
        return Err(Error::usage(format!(
            "--choose: {} declares no task to choose",
            model.file.display
        )));
    }
    let usages: Vec<String> = tasks.iter().map(|t| crate::usage::usage(t)).collect();
    let width = usages.iter().map(|u| u.chars().count()).max().unwrap_or(0) + 3;
    let items: Vec<String> = tasks
        .iter()
        .zip(&usages)
        .map(|(task, usage)| {
            let help = task.help_first_line();
            if help.is_empty() {
                usage.clone()
            } else {
                format!("{usage:<width$}{help}")
            }
        })
        .collect();
    let term = dialoguer::console::Term::stderr();
    let picked = dialoguer::FuzzySelect::new()
        .with_prompt("Task (type to search, Enter to run, Esc to cancel)")
        .items(&items)
        .default(0)
        .interact_on_opt(&term)
        .map_err(prompt_error)?
        .ok_or_else(|| Error::run(130, "no task chosen"))?;
    let task = tasks[picked];
    let mut words = vec![task.name.clone()];
    // An argument whose `env` variable is set has its value already.
    let from_env = |name: &Option<String>| {
        name.as_ref()
            .and_then(std::env::var_os)
            .is_some_and(|v| !v.is_empty())
    };
    for arg in task
        .args
        .iter()
        .filter(|a| a.required() && !from_env(&a.env))
    {
        let label = match &arg.help {
            Some(help) => format!("{} ({})", arg.name, help.trim()),
            None => arg.name.clone(),
        };
        let value = if arg.choices.is_empty() {
            let ty = arg.ty;
            dialoguer::Input::<String>::new()
                .with_prompt(label)
                .validate_with(move |text: &String| -> std::result::Result<(), String> {
                    ty.parse_value(text).map(|_| ())
                })
                .interact_text_on(&term)
                .map_err(prompt_error)?
        } else {
            let choices: Vec<String> = arg
                .choices
                .iter()
                .map(crate::model::ArgValue::display)
                .collect();
            let at = dialoguer::Select::new()
                .with_prompt(label)
                .items(&choices)
                .default(0)
                .interact_on_opt(&term)
                .map_err(prompt_error)?
                .ok_or_else(|| Error::run(130, "no value chosen"))?;
            choices[at].clone()
        };
        debug_assert!(!matches!(arg.ty, ArgType::Bool | ArgType::Count));
        words.push(arg.flag());
        words.push(value);
    }
    Ok(words)
}

fn prompt_error(err: dialoguer::Error) -> Error {
    let dialoguer::Error::IO(io) = &err;
    if io.kind() == std::io::ErrorKind::Interrupted {
        return Error::run(130, "no task chosen");
    }
    Error::usage(format!("--choose: the terminal failed: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(text: &str) -> Model {
        crate::file::load_str(text, "tasks.toml", std::path::Path::new("/")).expect("valid file")
    }

    #[test]
    fn show_finds_every_table_of_the_task_and_the_comments_above_it() {
        let m = model(
            "[vars]\nv = 1\n\n# Builds it.\n[tasks.build]\nrun = \"\"\"\n[not.a.header]\n\"\"\"\n[[tasks.build.args]]\nname = \"r\"\n\n# The next one.\n[tasks.other]\nrun = \"x\"\n\n[tasks.build.env]\nA = \"1\"\n",
        );
        assert_eq!(
            show(&m, "build").unwrap(),
            "# tasks.toml:4\n# Builds it.\n[tasks.build]\nrun = \"\"\"\n[not.a.header]\n\"\"\"\n[[tasks.build.args]]\nname = \"r\"\n\n# tasks.toml:16\n[tasks.build.env]\nA = \"1\"\n"
        );
    }

    #[test]
    fn show_reads_inline_tables() {
        let m =
            model("[tasks]\na = { run = \"x\" }\nb = { run = [\n  \"y\",\n] }\nc.run = \"z\"\n");
        assert_eq!(
            show(&m, "a").unwrap(),
            "# tasks.toml:2\na = { run = \"x\" }\n"
        );
        assert_eq!(
            show(&m, "b").unwrap(),
            "# tasks.toml:3\nb = { run = [\n  \"y\",\n] }\n"
        );
        assert!(show(&m, "nope").is_err());
    }

    #[test]
    fn toml_values() {
        use minijinja::Value;
        assert_eq!(toml_value(&Value::from("a\"b\n")), r#""a\"b\n""#);
        assert_eq!(toml_value(&Value::from(vec![1, 2])), "[1, 2]");
        assert_eq!(toml_value(&Value::from(true)), "true");
    }
}
