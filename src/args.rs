//! Task arguments on the command line (SPEC 1): splits the words after
//! tasker's own options into task invocations, each with typed values. The
//! same parser reads the calls in `deps`, `post` and `task` steps.

use crate::error::{Error, Result};
use crate::model::{Arg, ArgType, ArgValue, Model, Task};

/// One task named on the command line (or in a call) with its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Invocation {
    pub task: usize,
    /// One value per declared argument, in declaration order.
    pub values: Vec<ArgValue>,
    /// The words after `--`.
    pub extra: Vec<String>,
    /// `-h`/`--help` was given after the task name.
    pub help: bool,
    /// The arguments left to a templated `default`: their value is still
    /// the template's text, rendered when the run is built (it needs the
    /// vars).
    pub defaults: Vec<usize>,
}

/// Where the words come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// The command line. A flag the task lacks may be one of tasker's own
    /// options put after the task; `own_option` names it (`--long`), for
    /// the hint. The caller passes what knows tasker's options (the `cli`
    /// stage, above this parser).
    CommandLine {
        own_option: fn(&str) -> Option<String>,
    },
    /// A call in the file (`deps`, `post`, a `task` step).
    Call,
}

/// The state of the task whose arguments are being read.
struct Current<'m> {
    index: usize,
    task: &'m Task,
    values: Vec<Option<ArgValue>>,
    given: Vec<bool>,
    extra: Vec<String>,
    help: bool,
}

impl<'m> Current<'m> {
    fn new(model: &'m Model, index: usize) -> Current<'m> {
        let task = &model.tasks[index];
        Current {
            index,
            task,
            values: vec![None; task.args.len()],
            given: vec![false; task.args.len()],
            extra: Vec::new(),
            help: false,
        }
    }

    /// The positional argument a bare word would fill next.
    fn open_positional(&self) -> Option<usize> {
        self.task
            .args
            .iter()
            .enumerate()
            .find(|(i, a)| a.positional && (a.ty == ArgType::List || !self.given[*i]))
            .map(|(i, _)| i)
    }

    fn set(&mut self, arg: usize, word: &str, via: &str) -> Result<()> {
        let spec = &self.task.args[arg];
        let value = spec.ty.parse_value(word).map_err(|why| {
            Error::usage(format!(
                "invalid value for {via} of task `{}`: {why}",
                self.task.name
            ))
        })?;
        check_choice(self.task, spec, &value, via)?;
        match (&mut self.values[arg], value) {
            (Some(ArgValue::List(items)), ArgValue::List(new)) => items.extend(new),
            (slot, value) => {
                if self.given[arg] && spec.ty != ArgType::List {
                    return Err(twice(self.task, spec));
                }
                *slot = Some(value);
            }
        }
        self.given[arg] = true;
        Ok(())
    }

    fn set_flag(&mut self, arg: usize, on: bool) -> Result<()> {
        let spec = &self.task.args[arg];
        match spec.ty {
            ArgType::Count => {
                let n = match self.values[arg] {
                    Some(ArgValue::Count(n)) => n + 1,
                    _ => 1,
                };
                self.values[arg] = Some(ArgValue::Count(n));
            }
            _ => {
                if self.given[arg] {
                    return Err(twice(self.task, spec));
                }
                self.values[arg] = Some(ArgValue::Bool(on));
            }
        }
        self.given[arg] = true;
        Ok(())
    }

    fn finish(self) -> Result<Invocation> {
        let mut values = Vec::with_capacity(self.values.len());
        let mut defaults = Vec::new();
        for (i, (spec, value)) in self.task.args.iter().zip(self.values).enumerate() {
            let value = match value {
                Some(v) => v,
                None if self.help => spec
                    .implicit_default()
                    .unwrap_or(ArgValue::Str(String::new())),
                None => match from_env(self.task, spec)? {
                    Some(v) => v,
                    None => {
                        if spec.default_template.is_some() {
                            defaults.push(i);
                        }
                        spec.implicit_default()
                            .ok_or_else(|| missing(self.task, spec))?
                    }
                },
            };
            values.push(value);
        }
        Ok(Invocation {
            task: self.index,
            values,
            extra: self.extra,
            help: self.help,
            defaults,
        })
    }
}

/// Split `words` into invocations. The first word must name a task.
/// A task call as written in the file or rendered from it (`deps`,
/// `post`, a `task` step): split like a shell would, then parsed like a
/// command line. Errors point at the call, in the file of `caller`, and
/// task names are read as `caller`'s file means them (SPEC 9).
pub fn parse_call(
    model: &Model,
    text: &str,
    span: &crate::error::Span,
    caller: &Task,
) -> Result<Vec<Invocation>> {
    let unit = caller.unit;
    let caller = caller.name.as_str();
    let words = shell_words::split(text).map_err(|e| {
        Error::at(
            span,
            format!("cannot split the call `{text}` of task `{caller}`: {e}"),
        )
        .with_label("unbalanced quotes")
    })?;
    if words.is_empty() {
        return Err(Error::at(span, format!("an empty call in task `{caller}`"))
            .with_label("names no task"));
    }
    parse_in(model, unit, &words, Source::Call).map_err(|e| e.relocate(span, caller))
}

/// Split command-line `words` into invocations (task name, flags, values,
/// positionals, `--`); the first word must name a task.
pub fn parse(model: &Model, words: &[String], source: Source) -> Result<Vec<Invocation>> {
    parse_in(model, crate::model::ROOT_UNIT, words, source)
}

/// `parse` with task names read as the file `unit` means them.
fn parse_in(
    model: &Model,
    unit: usize,
    words: &[String],
    source: Source,
) -> Result<Vec<Invocation>> {
    let mut done = Vec::new();
    let mut current: Option<Current> = None;
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        let Some(cur) = current.as_mut() else {
            current = Some(Current::new(model, lookup_task(model, unit, word)?));
            continue;
        };
        if word == "--" {
            cur.extra = words[i..].to_vec();
            break;
        }
        if word == "-h" || word == "--help" {
            if matches!(source, Source::Call) {
                return Err(Error::usage(format!(
                    "`{word}` cannot be used in a task call of `{}`",
                    cur.task.name
                )));
            }
            cur.help = true;
            continue;
        }
        if let Some(long) = word.strip_prefix("--") {
            cur.long_flag(long, words, &mut i, source)?;
            continue;
        }
        if word.len() > 1 && word.starts_with('-') && !looks_like_number(cur.task, word) {
            cur.short_flags(&word[1..], words, &mut i, source)?;
            continue;
        }
        // A bare word: a positional value or the next task.
        let is_task = model.resolve(unit, word).is_some();
        match cur.open_positional() {
            Some(arg) => {
                let spec = &cur.task.args[arg];
                let takes = match spec.ty {
                    ArgType::List => !is_task,
                    _ => spec.required() || !is_task,
                };
                if takes {
                    let name = spec.name.clone();
                    cur.set(arg, word, &format!("`{name}`"))?;
                    continue;
                }
            }
            None if !is_task => {
                let prev = current.take().expect("current task");
                return Err(unexpected(model, unit, prev.task, word));
            }
            None => {}
        }
        let prev = current.take().expect("current task");
        done.push(prev.finish()?);
        current = Some(Current::new(model, lookup_task(model, unit, word)?));
    }
    if let Some(cur) = current {
        done.push(cur.finish()?);
    }
    Ok(done)
}

impl Current<'_> {
    /// `--name`, `--name=value`, `--no-name` or `--name value` (the value
    /// taken from `words` at `i`).
    fn long_flag(
        &mut self,
        long: &str,
        words: &[String],
        i: &mut usize,
        source: Source,
    ) -> Result<()> {
        let (name, inline) = match long.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (long, None),
        };
        let (arg, negated) = find_long(self.task, name)
            .map_err(|e| own_option_hint(e, source, self.task, &format!("--{name}")))?;
        let spec = &self.task.args[arg];
        let flag = spec.flag();
        match spec.ty {
            ArgType::Bool | ArgType::Count => {
                if let Some(value) = inline {
                    return Err(Error::usage(format!(
                        "`--{name}` of task `{}` is a flag and takes no value (got `{value}`)",
                        self.task.name
                    ))
                    .with_help(if spec.ty == ArgType::Bool {
                        format!("write `{flag}` or `--no-{}`", &flag[2..])
                    } else {
                        format!("repeat `{flag}` to count up")
                    }));
                }
                self.set_flag(arg, !negated)
            }
            _ => {
                let value = match inline {
                    Some(v) => v.to_string(),
                    None => take_value(words, i, self.task, &flag)?,
                };
                self.set(arg, &value, &format!("`{flag}`"))
            }
        }
    }

    /// A cluster of short flags (`-vvx`), the last of which may take a
    /// value (`-tTAG`, `-t=TAG`, or `-t TAG` from `words` at `i`).
    fn short_flags(
        &mut self,
        cluster: &str,
        words: &[String],
        i: &mut usize,
        source: Source,
    ) -> Result<()> {
        for (at, c) in cluster.char_indices() {
            let arg = find_short(self.task, c)
                .map_err(|e| own_option_hint(e, source, self.task, &format!("-{c}")))?;
            let spec = &self.task.args[arg];
            if matches!(spec.ty, ArgType::Bool | ArgType::Count) {
                self.set_flag(arg, true)?;
                continue;
            }
            let rest = &cluster[at + c.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let value = if rest.is_empty() {
                take_value(words, i, self.task, &format!("-{c}"))?
            } else {
                rest.to_string()
            };
            return self.set(arg, &value, &format!("`-{c}`"));
        }
        Ok(())
    }
}

fn lookup_task(model: &Model, unit: usize, word: &str) -> Result<usize> {
    if let Some(index) = model.resolve(unit, word) {
        return Ok(index);
    }
    let err = if word.starts_with('-') {
        Error::usage(format!("`{word}` comes before any task name"))
            .with_help("tasker's own options go first; a task's flags go after the task's name")
    } else {
        Error::usage(format!("unknown task `{word}`"))
    };
    Err(with_task_suggestion(model, unit, err, word))
}

fn with_task_suggestion(model: &Model, unit: usize, err: Error, word: &str) -> Error {
    let mut names = model.names_in(unit);
    names.sort_unstable();
    err.suggest_or(
        word,
        names.iter().map(String::as_str),
        "run `tasker -l` to see the tasks",
    )
}

fn unexpected(model: &Model, unit: usize, task: &Task, word: &str) -> Error {
    let positional = task.args.iter().any(|a| a.positional);
    let err = if positional {
        Error::usage(format!(
            "unknown task `{word}` (task `{}` takes no more positional arguments)",
            task.name
        ))
    } else {
        Error::usage(format!(
            "unknown task `{word}` (task `{}` takes no positional arguments)",
            task.name
        ))
    };
    with_task_suggestion(model, unit, err, word)
}

fn find_long(task: &Task, name: &str) -> Result<(usize, bool)> {
    let normal = name.replace('-', "_");
    if let Some(i) = task
        .args
        .iter()
        .position(|a| a.name == normal && !a.short_only())
    {
        return Ok((i, false));
    }
    if let Some(rest) = normal.strip_prefix("no_") {
        if let Some(i) = task
            .args
            .iter()
            .position(|a| a.name == rest && a.ty == ArgType::Bool)
        {
            return Ok((i, true));
        }
    }
    Err(unknown_flag(task, &format!("--{name}")))
}

fn find_short(task: &Task, c: char) -> Result<usize> {
    task.args
        .iter()
        .position(|a| a.short == Some(c))
        .ok_or_else(|| unknown_flag(task, &format!("-{c}")))
}

fn unknown_flag(task: &Task, flag: &str) -> Error {
    let err = Error::usage(format!("unknown flag `{flag}` for task `{}`", task.name));
    if task.args.is_empty() {
        return err.with_help(format!("task `{}` takes no arguments", task.name));
    }
    let mut flags: Vec<String> = task.args.iter().map(Arg::flag).collect();
    for arg in &task.args {
        if arg.ty == ArgType::Bool {
            flags.push(format!("--no-{}", arg.long_name()));
        }
    }
    let err = err.suggest(flag, flags.iter().map(String::as_str));
    let listed: Vec<String> = task
        .args
        .iter()
        .map(|a| match a.short {
            Some(s) if !a.short_only() => format!("-{s}/{}", a.flag()),
            _ => a.flag(),
        })
        .collect();
    err.with_help(format!(
        "the flags of `{}` are: {}",
        task.name,
        listed.join(", ")
    ))
}

/// A flag the task does not have but tasker does (`tasker build -n`): say
/// where tasker's own options go. Calls in the file have no tasker options.
fn own_option_hint(err: Error, source: Source, task: &Task, flag: &str) -> Error {
    let Source::CommandLine { own_option } = source else {
        return err;
    };
    let Some(long) = own_option(flag) else {
        return err;
    };
    let what = if long == flag {
        format!("`{flag}`")
    } else {
        format!("`{flag}` ({long})")
    };
    let mut err = err;
    err.help.insert(
        0,
        format!(
            "{what} is an option of tasker itself: put it before the first task, as in `tasker {flag} {}`",
            task.name
        ),
    );
    err
}

fn take_value(words: &[String], i: &mut usize, task: &Task, flag: &str) -> Result<String> {
    match words.get(*i) {
        Some(v) => {
            *i += 1;
            Ok(v.clone())
        }
        None => Err(Error::usage(format!(
            "`{flag}` of task `{}` needs a value",
            task.name
        ))),
    }
}

/// `-5` or `-1.5` is a value, not a flag, when the task has no such short
/// flag and a numeric positional is waiting for it.
fn looks_like_number(task: &Task, word: &str) -> bool {
    let digit = word[1..].chars().next().is_some_and(|c| c.is_ascii_digit());
    digit
        && word.parse::<f64>().is_ok()
        && !task
            .args
            .iter()
            .any(|a| a.short.is_some_and(|s| s.is_ascii_digit()))
}

pub(crate) fn check_choice(task: &Task, spec: &Arg, value: &ArgValue, via: &str) -> Result<()> {
    if spec.choices.is_empty() {
        return Ok(());
    }
    let ok = match value {
        ArgValue::List(items) => items
            .iter()
            .all(|i| spec.choices.contains(&ArgValue::Str(i.clone()))),
        other => spec.choices.contains(other),
    };
    if ok {
        return Ok(());
    }
    let shown = value.display();
    let choices: Vec<String> = spec.choices.iter().map(ArgValue::display).collect();
    let err = Error::usage(format!(
        "`{shown}` is not a valid value for {via} of task `{}`",
        task.name
    ));
    let err = err.suggest(&shown, choices.iter().map(String::as_str));
    Err(err.with_help(format!("choose one of: {}", choices.join(", "))))
}

/// A value that came from elsewhere as JSON (a run from the queue, SPEC
/// 11), checked as the command line checks a word: its type, a list only
/// for a `list` argument, its `choices`; `null` only for an optional
/// argument left out.
pub fn value_from_json(task: &Task, spec: &Arg, json: &serde_json::Value) -> Result<ArgValue> {
    use serde_json::Value as J;
    let value = match (spec.ty, json) {
        (ArgType::String, J::String(s)) => Some(ArgValue::Str(s.clone())),
        (ArgType::Bool, J::Bool(b)) => Some(ArgValue::Bool(*b)),
        (ArgType::Int, J::Number(n)) => n.as_i64().map(ArgValue::Int),
        (ArgType::Float, J::Number(n)) => n.as_f64().filter(|f| f.is_finite()).map(ArgValue::Float),
        (ArgType::Count, J::Number(n)) => n.as_u64().map(ArgValue::Count),
        (ArgType::List, J::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(ArgValue::List),
        (_, J::Null) if spec.optional && spec.default.is_none() => Some(ArgValue::Unset),
        _ => None,
    };
    let via = format!("argument `{}`", spec.name);
    let Some(value) = value else {
        let shown: String = json.to_string().chars().take(80).collect();
        return Err(Error::usage(format!(
            "invalid value for {via} of task `{}`: `{shown}` is not of type {}",
            task.name,
            spec.ty.name()
        )));
    };
    check_choice(task, spec, &value, &via)?;
    Ok(value)
}

fn twice(task: &Task, spec: &Arg) -> Error {
    Error::usage(format!(
        "`{}` of task `{}` was given twice",
        spec.flag(),
        task.name
    ))
    .with_help("only list and count arguments can be repeated")
}

fn missing(task: &Task, spec: &Arg) -> Error {
    let how = if spec.positional {
        format!("<{}> or {} {}", spec.name, spec.flag(), spec.metavar())
    } else {
        format!("{} {}", spec.flag(), spec.metavar())
    };
    Error::usage(format!(
        "task `{}` needs its argument `{}`",
        task.name, spec.name
    ))
    .with_help(format!(
        "usage: tasker {}  (give {how})",
        crate::usage::usage(task)
    ))
}

/// The value of the variable named by the argument's `env` key, when set.
fn from_env(task: &Task, spec: &Arg) -> Result<Option<ArgValue>> {
    let Some(name) = &spec.env else {
        return Ok(None);
    };
    // An empty variable counts as unset, as `${NAME:-default}` does.
    let text = match std::env::var(name) {
        Ok(text) if !text.is_empty() => text,
        _ => return Ok(None),
    };
    let via = format!("`{}` (from ${name})", spec.name);
    let value = match spec.ty {
        ArgType::List => ArgValue::List(text.split_whitespace().map(String::from).collect()),
        ty => ty.parse_value(&text).map_err(|why| {
            Error::usage(format!(
                "invalid value for {via} of task `{}`: {why}",
                task.name
            ))
        })?,
    };
    check_choice(task, spec, &value, &via)?;
    Ok(Some(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ArgValue::*;

    const FILE: &str = r#"
[tasks.build]
run = "true"
[[tasks.build.args]]
name = "release"
type = "bool"
[[tasks.build.args]]
name = "verbose"
type = "count"
short = "v"
[[tasks.build.args]]
name = "tag"
type = "list"
short = "t"
[[tasks.build.args]]
name = "out_dir"
default = "target"

[tasks.deploy]
run = "true"
[[tasks.deploy.args]]
name = "target"
positional = true
choices = ["staging", "prod"]
[[tasks.deploy.args]]
name = "port"
type = "int"
default = 8080

[tasks.greet]
run = "true"
[[tasks.greet.args]]
name = "who"
positional = true
default = "world"

[tasks.lint]
run = "true"
[[tasks.lint.args]]
name = "files"
type = "list"
positional = true

[tasks.test]
run = "true"
"#;

    fn model() -> Model {
        crate::file::load_str(FILE, "tasks.toml", std::path::Path::new("/")).expect("valid file")
    }

    fn parse_words(words: &str) -> Result<Vec<Invocation>> {
        let words: Vec<String> = words.split_whitespace().map(String::from).collect();
        parse(
            &model(),
            &words,
            Source::CommandLine {
                own_option: crate::cli::own_option,
            },
        )
    }

    fn values(words: &str) -> Vec<(String, Vec<ArgValue>, Vec<String>)> {
        let m = model();
        parse_words(words)
            .unwrap()
            .into_iter()
            .map(|i| (m.tasks[i.task].name.clone(), i.values, i.extra))
            .collect()
    }

    fn error(words: &str) -> String {
        let e = parse_words(words).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let mut text = e.message.clone();
        for h in &e.help {
            text.push_str(" | ");
            text.push_str(h);
        }
        text
    }

    fn build(release: bool, verbose: u64, tags: &[&str], out: &str) -> Vec<ArgValue> {
        vec![
            Bool(release),
            Count(verbose),
            List(tags.iter().map(|t| t.to_string()).collect()),
            Str(out.into()),
        ]
    }

    #[test]
    fn every_flag_form_sets_its_argument() {
        let got = values("build --release -vv -v --tag a -tb -t=c --out-dir=dist");
        assert_eq!(
            got,
            [(
                "build".into(),
                build(true, 3, &["a", "b", "c"], "dist"),
                vec![]
            )]
        );
        let got = values("build --no-release --out_dir x --verbose");
        assert_eq!(got, [("build".into(), build(false, 1, &[], "x"), vec![])]);
    }

    #[test]
    fn tasks_follow_each_other_with_their_own_arguments() {
        let got = values("test build --release deploy prod --port 9 test");
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names, ["test", "build", "deploy", "test"]);
        assert_eq!(got[2].1, vec![Str("prod".into()), Int(9)]);
    }

    #[test]
    fn a_required_positional_takes_a_task_name_an_optional_one_does_not() {
        // `test` went to `target` (and is not one of its choices).
        assert!(error("deploy test").starts_with("`test` is not a valid value for `target`"));
        let got = values("greet test");
        assert_eq!(got.len(), 2, "optional positional left the task name");
        assert_eq!(got[0].1, vec![Str("world".into())]);
        let got = values("greet Bob test");
        assert_eq!(got[0].1, vec![Str("Bob".into())]);
    }

    #[test]
    fn a_positional_list_takes_words_until_a_task_name() {
        let got = values("lint a.rs b.rs test");
        assert_eq!(got[0].1, vec![List(vec!["a.rs".into(), "b.rs".into()])]);
        assert_eq!(got[1].0, "test");
    }

    #[test]
    fn double_dash_passes_the_rest_verbatim() {
        let got = values("build -- --release test x");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, build(false, 0, &[], "target"));
        assert_eq!(got[0].2, ["--release", "test", "x"]);
    }

    #[test]
    fn help_after_a_task_is_noted_even_with_missing_arguments() {
        let invs = parse_words("deploy --help").unwrap();
        assert!(invs[0].help);
    }

    #[test]
    fn mistakes_are_usage_errors_that_say_what_to_do() {
        assert_eq!(
            error("biuld"),
            "unknown task `biuld` | did you mean `build`?"
        );
        assert!(error("build --relase")
            .starts_with("unknown flag `--relase` for task `build` | did you mean `--release`?"));
        assert!(error("deploy").starts_with("task `deploy` needs its argument `target`"));
        assert!(error("deploy prod --port x").contains("`x` is not an integer"));
        assert!(error("deploy qa").contains("choose one of: staging, prod"));
        assert!(error("build --out-dir a --out-dir b").contains("was given twice"));
        assert!(error("build --release=yes").contains("takes no value"));
        assert!(error("build --out-dir").contains("needs a value"));
        assert!(error("test extra").starts_with("unknown task `extra`"));
    }
}
