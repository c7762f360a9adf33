//! Walks the spanned TOML document into the model, checking every key,
//! name, type and argument declaration on the way. Templates are kept as
//! text (compiling them is `check`'s job, so that `-l` stays cheap); regexes
//! are compiled here.

use std::collections::HashMap;
use std::sync::Arc;

use toml::de::{DeTable, DeValue};

use super::toml_walk::{Value, Walker};
use crate::error::{Error, Result, SourceFile};
use crate::model::*;

pub(crate) const TOP_KEYS: &[&str] = &["settings", "env", "vars", "include", "tasks"];
pub(crate) const SETTINGS_KEYS: &[&str] = &["shell", "dotenv", "default", "jobs", "output", "echo"];
pub(crate) const TASK_KEYS: &[&str] = &[
    "help",
    "run",
    "deps",
    "post",
    "finally",
    "args",
    "env",
    "dir",
    "shell",
    "quiet",
    "private",
    "aliases",
    "group",
    "confirm",
    "platforms",
    "timeout",
    "retries",
    "retry_delay",
    "ignore_failure",
    "interactive",
    "pty",
    "background",
    "ready",
    "ready_timeout",
    "matrix",
    "sources",
    "outputs",
    "capture",
    "extract",
    "expect",
    "fail_on",
    "respond",
    "hide",
];
pub(crate) const ARG_KEYS: &[&str] = &[
    "name",
    "help",
    "type",
    "positional",
    "choices",
    "short",
    "default",
    "required",
    "env",
];
pub(crate) const STEP_KEYS: &[&str] = &["sh", "cmd", "pipe", "task", "ignore_failure", "dir"];
const STEP_KINDS: &[&str] = &["sh", "cmd", "pipe", "task"];
const RESPOND_KEYS: &[&str] = &["on", "send"];

/// Names whose values templates depend on structurally; arguments, vars
/// and matrix entries may not take them. (`root`, `task`, `os` and the like
/// may be shadowed: an argument or matrix entry `os` wins over the builtin.)
pub const RESERVED_NAMES: &[&str] = &["env", "tasks", "extra"];

/// `keep_tree`: never free the parsed TOML tree (for a process that exits
/// right after); a caller that loads many files frees each.
/// Long by design: the top-level tables in file order, then the checks
/// across tasks (aliases, defaults); each step is a few lines.
pub fn load(file: Arc<SourceFile>, root: std::path::PathBuf, keep_tree: bool) -> Result<Model> {
    // A file saved with CRLF line ends means the same as with LF (SPEC 2):
    // scripts must reach the shell without a `\r` on every line. In TOML a
    // raw CR can only be part of a line end, so dropping it changes nothing
    // else, and lines and columns stay the same.
    let file = if file.text.contains('\r') {
        Arc::new(SourceFile {
            display: file.display.clone(),
            path: file.path.clone(),
            text: file.text.replace("\r\n", "\n"),
        })
    } else {
        file
    };
    let walker = Walker {
        file: Arc::clone(&file),
    };
    let doc = toml::de::DeTable::parse(&file.text).map_err(|e| {
        let range = e.span().unwrap_or(0..0);
        let message = e.message().trim_end().to_string();
        walker
            .error(range, format!("invalid TOML: {message}"))
            .with_label("here")
    })?;
    // The parsed tree of tasker's one file lives until tasker exits:
    // freeing a large one costs more than the process's exit does.
    let owned;
    let doc = if keep_tree {
        Box::leak(Box::new(doc)).get_ref()
    } else {
        owned = doc;
        owned.get_ref()
    };
    walker.check_keys(doc, TOP_KEYS, "the file")?;

    let settings = match doc.get("settings") {
        Some(v) => settings(&walker, v)?,
        None => Settings::default(),
    };
    let env = match doc.get("env") {
        Some(v) => env_table(&walker, v, "[env]")?,
        None => Vec::new(),
    };
    let vars = match doc.get("vars") {
        Some(v) => vars(&walker, v)?,
        None => Vec::new(),
    };
    if let Some((key, _)) = doc.get_key_value("include") {
        return Err(walker
            .error(key.span(), "includes are not supported yet")
            .with_label("not supported yet")
            .with_help("this version of tasker cannot load included files; remove [include]"));
    }

    let mut tasks = Vec::new();
    let mut lookup = HashMap::new();
    if let Some(value) = doc.get("tasks") {
        let table = walker.table(value, "`tasks`")?;
        tasks.reserve_exact(table.len());
        lookup.reserve(table.len());
        for (key, value) in table.iter() {
            let name = key.get_ref().to_string();
            check_task_name(&walker, &name, key.span())?;
            let task = task(&walker, name, key.span(), value)?;
            tasks.push(task);
        }
    }
    for (index, task) in tasks.iter().enumerate() {
        lookup.insert(task.name.clone(), index);
    }
    for (index, task) in tasks.iter().enumerate() {
        for alias in &task.aliases {
            if let Some(&other) = lookup.get(alias) {
                let what = if tasks[other].name == *alias {
                    "a task".to_string()
                } else {
                    format!("an alias of `{}`", tasks[other].name)
                };
                return Err(Error::at(
                    &task.span,
                    format!("alias `{alias}` of task `{}` is already {what}", task.name),
                ));
            }
            lookup.insert(alias.clone(), index);
        }
    }

    let model = Model {
        file,
        root,
        settings,
        env,
        vars,
        tasks,
        lookup,
    };
    check_calls(&model)?;
    if let Some((name, span)) = &model.settings.default {
        if model.task(name).is_none() {
            return Err(
                Error::at(span, format!("settings.default names no task: `{name}`"))
                    .with_label("unknown task")
                    .suggest(name, model.callable_names()),
            );
        }
    }
    Ok(model)
}

fn check_task_name(walker: &Walker, name: &str, span: std::ops::Range<usize>) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(walker
            .error(span, format!("invalid task name `{name}`"))
            .with_label("invalid name")
            .with_help(
                "task names start with a letter or `_` and hold letters, digits, `_` and `-`",
            ))
    }
}

fn check_ident(
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

fn settings(w: &Walker, value: &Value) -> Result<Settings> {
    let table = w.table(value, "`settings`")?;
    w.check_keys(table, SETTINGS_KEYS, "[settings]")?;
    let mut settings = Settings::default();
    if let Some(v) = table.get("shell") {
        settings.shell = shell(w, v, "settings.shell")?;
    }
    if let Some(v) = table.get("dotenv") {
        settings.dotenv = w
            .string_or_strings(v, "settings.dotenv")?
            .into_iter()
            .map(|(s, _)| s)
            .collect();
    }
    if let Some(v) = table.get("default") {
        settings.default = Some((w.string(v, "settings.default")?, w.span(v.span())));
    }
    if let Some(v) = table.get("jobs") {
        let jobs = w.int(v, "settings.jobs")?;
        if jobs < 1 {
            return Err(w
                .error(v.span(), "settings.jobs must be at least 1")
                .with_label("must be 1 or more"));
        }
        settings.jobs = Some(jobs as usize);
    }
    if let Some(v) = table.get("output") {
        let text = w.string(v, "settings.output")?;
        settings.output = Some(OutputMode::parse(&text).ok_or_else(|| {
            w.error(v.span(), format!("unknown output mode `{text}`"))
                .with_label("unknown mode")
                .suggest(&text, OutputMode::NAMES)
                .with_help("the modes are interleaved, prefixed and grouped")
        })?);
    }
    if let Some(v) = table.get("echo") {
        settings.echo = w.bool(v, "settings.echo")?;
    }
    Ok(settings)
}

fn shell(w: &Walker, value: &Value, what: impl std::fmt::Display + Copy) -> Result<Vec<String>> {
    let words: Vec<String> = w
        .strings(value, what)?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    if words.is_empty() || words[0].is_empty() {
        return Err(w
            .error(value.span(), format!("{what} needs at least a program"))
            .with_label("empty")
            .with_help("for example [\"bash\", \"-eu\", \"-c\"]"));
    }
    Ok(words)
}

fn env_table(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<EnvEntry>> {
    let table = w.table(value, what)?;
    let mut entries = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(w
                .error(
                    key.span(),
                    format!("invalid environment variable name `{name}`"),
                )
                .with_label("invalid name"));
        }
        let value = match value.get_ref() {
            DeValue::String(_) => w.template(value, format_args!("{what} entry `{name}`"))?,
            DeValue::Integer(i) => literal_template(w, value, i.as_str()),
            DeValue::Float(f) => literal_template(w, value, f.as_str()),
            DeValue::Boolean(b) => literal_template(w, value, if *b { "true" } else { "false" }),
            _ => return Err(w.wrong_type(value, &format!("{what} entry `{name}`"), "a string")),
        };
        entries.push(EnvEntry { name, value });
    }
    Ok(entries)
}

fn literal_template(w: &Walker, value: &Value, text: &str) -> Template {
    Template {
        source: text.to_string(),
        span: w.span(value.span()),
    }
}

fn vars(w: &Walker, value: &Value) -> Result<Vec<Var>> {
    let table = w.table(value, "`vars`")?;
    let mut vars = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        check_ident(w, &name, key.span(), "a var")?;
        let what = format!("var `{name}`");
        let value = match value.get_ref() {
            DeValue::String(_) => VarValue::Template(w.template(value, &what)?),
            DeValue::Table(t) => {
                w.check_keys(
                    t,
                    &["sh"],
                    format_args!("{what} (a table var runs a command)"),
                )?;
                let sh = t.get("sh").ok_or_else(|| {
                    w.error(value.span(), format!("{what} is a table without `sh`"))
                        .with_help("write `name = { sh = \"command\" }` to use a command's output")
                })?;
                VarValue::Sh(w.template(sh, &format!("{what}.sh"))?)
            }
            _ => VarValue::Literal(literal_value(w, value, &what)?),
        };
        vars.push(Var {
            name,
            span: w.span(key.span()),
            value,
        });
    }
    Ok(vars)
}

/// A TOML value as a template value (numbers, bools, strings and arrays).
fn literal_value(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<minijinja::Value> {
    Ok(match value.get_ref() {
        DeValue::String(s) => minijinja::Value::from(s.as_ref()),
        DeValue::Integer(_) => minijinja::Value::from(w.int(value, what)?),
        DeValue::Float(_) => minijinja::Value::from(w.float(value, what)?),
        DeValue::Boolean(b) => minijinja::Value::from(*b),
        DeValue::Array(items) => minijinja::Value::from(
            items
                .iter()
                .map(|item| literal_value(w, item, what))
                .collect::<Result<Vec<_>>>()?,
        ),
        _ => return Err(w.wrong_type(value, what, "a string, number, bool or array")),
    })
}

/// "`KEY` of task `NAME`" (or of argument), formatted only when an error
/// needs it.
#[derive(Clone, Copy)]
struct KeyOf<'a> {
    key: &'static str,
    owner: &'static str,
    name: &'a str,
}

impl std::fmt::Display for KeyOf<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` of {} `{}`", self.key, self.owner, self.name)
    }
}

/// Long by design: one pass over a task table's keys, in the order of the
/// reference's table of task keys, each read with its own located error.
/// Split into pieces, the shared lookups (`get`, `key`) would be passed
/// around instead of read in one place.
fn task(w: &Walker, name: String, span: std::ops::Range<usize>, value: &Value) -> Result<Task> {
    let table = w.table(value, format_args!("task `{name}`"))?;
    w.check_keys(table, TASK_KEYS, format_args!("task `{name}`"))?;
    // Messages are formatted only when there is an error to report.
    let key = |k: &'static str| KeyOf {
        key: k,
        owner: "task",
        name: &name,
    };
    // Tasks have a handful of keys: a scan beats hashing each lookup.
    let entries: Vec<(&str, &Value)> = table
        .iter()
        .map(|(k, v)| (k.get_ref().as_ref(), v))
        .collect();
    let get = |k: &str| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let get_bool =
        |k: &'static str| -> Result<bool> { get(k).map_or(Ok(false), |v| w.bool(v, key(k))) };
    let get_duration = |k: &'static str| -> Result<Option<std::time::Duration>> {
        get(k).map(|v| w.duration(v, key(k))).transpose()
    };
    let get_patterns = |k: &'static str| -> Result<Vec<Pattern>> {
        match get(k) {
            None => Ok(Vec::new()),
            Some(v) => w
                .strings(v, key(k))?
                .into_iter()
                .map(|(s, span)| pattern(s, span))
                .collect(),
        }
    };

    let help = table
        .get("help")
        .map(|v| w.string(v, key("help")))
        .transpose()?;
    let run = match get("run") {
        Some(v) => steps(w, v, key("run"))?,
        None => Vec::new(),
    };
    let finally = match get("finally") {
        Some(v) => steps(w, v, key("finally"))?,
        None => Vec::new(),
    };
    let deps = calls(w, get("deps"), key("deps"))?;
    let post = calls(w, get("post"), key("post"))?;
    let args = match get("args") {
        Some(v) => args(w, v, &name)?,
        None => Vec::new(),
    };
    let env = match get("env") {
        Some(v) => env_table(w, v, key("env"))?,
        None => Vec::new(),
    };
    let dir = table
        .get("dir")
        .map(|v| w.template(v, key("dir")))
        .transpose()?;
    let shell = table
        .get("shell")
        .map(|v| shell(w, v, key("shell")))
        .transpose()?;
    let aliases = match get("aliases") {
        Some(v) => {
            let aliases = w.strings(v, key("aliases"))?;
            for (alias, span) in &aliases {
                check_task_name(w, alias, span.range.clone())?;
            }
            aliases.into_iter().map(|(a, _)| a).collect()
        }
        None => Vec::new(),
    };
    let group = table
        .get("group")
        .map(|v| w.string(v, key("group")))
        .transpose()?;
    let confirm = table
        .get("confirm")
        .map(|v| w.template(v, key("confirm")))
        .transpose()?;
    let platforms = match get("platforms") {
        Some(v) => w
            .strings(v, key("platforms"))?
            .into_iter()
            .map(|(p, span)| {
                Platform::parse(&p).ok_or_else(|| {
                    Error::at(&span, format!("unknown platform `{p}`"))
                        .with_label("unknown platform")
                        .suggest(&p, Platform::NAMES)
                        .with_help("platforms are linux, macos, windows and unix")
                })
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let retries = match get("retries") {
        Some(v) => {
            let n = w.int(v, key("retries"))?;
            u32::try_from(n).map_err(|_| {
                w.error(
                    v.span(),
                    format!("{} must be between 0 and {}", key("retries"), u32::MAX),
                )
                .with_label("out of range")
            })?
        }
        None => 0,
    };
    // `ready` and `ready_timeout` describe a service; on any other task
    // they would be silently ignored.
    if !get_bool("background")? {
        if let Some((k, v)) = entries
            .iter()
            .find(|(k, _)| *k == "ready" || *k == "ready_timeout")
        {
            let k = if *k == "ready" {
                "ready"
            } else {
                "ready_timeout"
            };
            return Err(w
                .error(
                    v.span(),
                    format!("{} only applies to a service", key(k)),
                )
                .with_label("needs `background = true`")
                .with_help(
                    "a task with `background = true` is a service; `ready` says when it is ready (services are not supported yet by this version of tasker)",
                ));
        }
    }
    let ready = match get("ready") {
        Some(v) => Some(pattern(w.string(v, key("ready"))?, w.span(v.span()))?),
        None => None,
    };
    let matrix = match get("matrix") {
        Some(v) => matrix(w, v, key("matrix"))?,
        None => Vec::new(),
    };
    for axis in &matrix {
        if args.iter().any(|a| a.name == axis.name) {
            return Err(Error::at(
                &w.span(span.clone()),
                format!(
                    "task `{name}` has both an argument and a matrix entry named `{}`",
                    axis.name
                ),
            ));
        }
    }
    let patterns = |k: &'static str| -> Result<Vec<String>> {
        let Some(v) = get(k) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for (text, at) in w.strings(v, key(k))? {
            if let Err(why) = crate::fresh::glob::check(&text) {
                return Err(Error::at(&at, format!("`{k}` of task `{name}`: {why}")));
            }
            out.push(text);
        }
        Ok(out)
    };
    let sources = patterns("sources")?;
    let outputs = patterns("outputs")?;
    let extract = match get("extract") {
        Some(v) => {
            let t = w.table(v, key("extract"))?;
            let mut out = Vec::new();
            for (k, v) in t.iter() {
                let field = k.get_ref().to_string();
                check_ident(w, &field, k.span(), "an extract")?;
                if ["stdout", "stderr", "exit_code", "duration_ms"].contains(&field.as_str()) {
                    return Err(w
                        .error(
                            k.span(),
                            format!("`{field}` is a result every run has and cannot be extracted"),
                        )
                        .with_label("reserved name"));
                }
                let source = w.string(v, &format!("extract `{field}`"))?;
                out.push((field, pattern(source, w.span(v.span()))?));
            }
            out
        }
        None => Vec::new(),
    };
    let respond = match get("respond") {
        Some(v) => w
            .array(v, key("respond"))?
            .iter()
            .map(|item| {
                let t = w.table(item, "each entry of `respond`")?;
                w.check_keys(t, RESPOND_KEYS, "a `respond` entry")?;
                let on = t.get("on").ok_or_else(|| {
                    w.error(
                        item.span(),
                        "a `respond` entry needs `on`, the pattern to answer",
                    )
                })?;
                let send = t.get("send").ok_or_else(|| {
                    w.error(
                        item.span(),
                        "a `respond` entry needs `send`, the text to write",
                    )
                })?;
                Ok(Responder {
                    on: pattern(w.string(on, "respond.on")?, w.span(on.span()))?,
                    send: w.template(send, "respond.send")?,
                })
            })
            .collect::<Result<_>>()?,
        None => Vec::new(),
    };
    let hide = match get("hide") {
        None => Hide::None,
        Some(v) => match v.get_ref() {
            DeValue::Boolean(true) => Hide::Both,
            DeValue::Boolean(false) => Hide::None,
            DeValue::String(s) if s == "stdout" => Hide::Stdout,
            DeValue::String(s) if s == "stderr" => Hide::Stderr,
            _ => {
                return Err(w
                    .error(
                        v.span(),
                        format!(
                            "{} must be true, false, \"stdout\" or \"stderr\"",
                            key("hide")
                        ),
                    )
                    .with_label("invalid value"))
            }
        },
    };

    let more = TaskMore {
        post,
        finally,
        env,
        dir,
        shell,
        confirm,
        platforms,
        timeout: get_duration("timeout")?,
        retries,
        retry_delay: get_duration("retry_delay")?.unwrap_or_default(),
        ignore_failure: get_bool("ignore_failure")?,
        interactive: get_bool("interactive")?,
        pty: get_bool("pty")?,
        background: get_bool("background")?,
        ready,
        ready_timeout: get_duration("ready_timeout")?,
        matrix,
        sources,
        outputs,
        output: OutputKeys {
            capture: get_bool("capture")?,
            extract,
            expect: get_patterns("expect")?,
            fail_on: get_patterns("fail_on")?,
            respond,
            hide,
        },
    };
    // Only a task that sets one of these keys pays for them.
    let common = [
        "help", "run", "deps", "args", "quiet", "private", "aliases", "group",
    ];
    let has_more = entries.iter().any(|(k, _)| !common.contains(k));
    Ok(Task {
        span: w.span(span),
        help,
        run,
        deps,
        args,
        quiet: get_bool("quiet")?,
        private: get_bool("private")?,
        aliases,
        group,
        more: has_more.then(|| Box::new(more)),
        name,
    })
}

fn pattern(source: String, span: crate::error::Span) -> Result<Pattern> {
    // Compiled alone, exactly as written: a regex is valid exactly when
    // the regex crate accepts it (SPEC 5), `(?x)` with a `# comment` too.
    match regex::bytes::Regex::new(&source) {
        Ok(regex) => Ok(Pattern {
            source,
            regex,
            span,
        }),
        Err(e) => {
            let detail = match &e {
                regex::Error::Syntax(text) => text
                    .lines()
                    .rev()
                    .find(|l| l.starts_with("error:"))
                    .map(|l| l.trim_start_matches("error:").trim().to_string())
                    .unwrap_or_else(|| text.clone()),
                other => other.to_string(),
            };
            Err(
                Error::at(&span, format!("invalid regex `{source}`: {detail}"))
                    .with_label("invalid regex"),
            )
        }
    }
}

fn steps(w: &Walker, value: &Value, what: impl std::fmt::Display + Copy) -> Result<Vec<Step>> {
    match value.get_ref() {
        DeValue::String(_) => Ok(vec![Step {
            kind: StepKind::Sh(w.template(value, what)?),
            ignore_failure: false,
            dir: None,
            span: w.span(value.span()),
        }]),
        DeValue::Array(items) => items.iter().map(|item| step(w, item, what)).collect(),
        _ => Err(w.wrong_type(value, what, "a string or an array of steps")),
    }
}

fn step(w: &Walker, item: &Value, what: impl std::fmt::Display + Copy) -> Result<Step> {
    let span = w.span(item.span());
    let table = match item.get_ref() {
        DeValue::String(_) => {
            return Ok(Step {
                kind: StepKind::Sh(w.template(item, what)?),
                ignore_failure: false,
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
        dir: table
            .get("dir")
            .map(|v| w.template(v, "`dir` of a step"))
            .transpose()?,
        span,
    })
}

fn templates(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<Template>> {
    w.array(value, what)?
        .iter()
        .map(|item| w.template(item, format_args!("each element of {what}")))
        .collect()
}

fn calls(
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
fn uses_task_results(source: &str) -> bool {
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

fn contains_word_followed(text: &str, word: &str, next: [char; 2]) -> bool {
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

fn matrix(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<MatrixAxis>> {
    let table = w.table(value, what)?;
    let mut axes = Vec::new();
    for (key, value) in table.iter() {
        let name = key.get_ref().to_string();
        check_ident(w, &name, key.span(), "a matrix entry")?;
        let values = match value.get_ref() {
            DeValue::String(_) => {
                MatrixValues::Template(w.template(value, format_args!("matrix entry `{name}`"))?)
            }
            DeValue::Array(items) => {
                if items.is_empty() {
                    return Err(w
                        .error(value.span(), format!("matrix entry `{name}` has no values"))
                        .with_label("empty"));
                }
                MatrixValues::List(
                    items
                        .iter()
                        .map(|item| literal_value(w, item, format_args!("matrix entry `{name}`")))
                        .collect::<Result<_>>()?,
                )
            }
            _ => {
                return Err(w.wrong_type(
                    value,
                    &format!("matrix entry `{name}`"),
                    "an array of values or a template string",
                ))
            }
        };
        axes.push(MatrixAxis { name, values });
    }
    // Arrays fix the size now; an axis that is a template is counted when
    // it is rendered (`graph`), against the same limit.
    let fixed = axes.iter().map(|axis| match &axis.values {
        MatrixValues::List(values) => values.len(),
        MatrixValues::Template(_) => 1,
    });
    if let Err(size) = matrix_size(fixed) {
        return Err(w
            .error(
                value.span(),
                format!("{what} expands to {size} runs, more than the {MAX_MATRIX_RUNS} allowed"),
            )
            .with_label("too many combinations"));
    }
    Ok(axes)
}

fn args(w: &Walker, value: &Value, task: &str) -> Result<Vec<Arg>> {
    let items = w.array(value, format_args!("`args` of task `{task}`"))?;
    let mut args: Vec<Arg> = Vec::new();
    for item in items {
        let arg = arg(w, item, task)?;
        if let Some(prev) = args.iter().find(|a| a.name == arg.name) {
            return Err(Error::at(
                &arg.span,
                format!("task `{task}` declares argument `{}` twice", arg.name),
            )
            .with_label("second declaration")
            .with_help(format!("the first is at line {}", prev.span.line_col().0)));
        }
        if let (Some(short), Some(prev)) = (
            arg.short,
            args.iter()
                .find(|a| a.short.is_some() && a.short == arg.short),
        ) {
            return Err(Error::at(
                &arg.span,
                format!(
                    "arguments `{}` and `{}` of task `{task}` share the short flag `-{short}`",
                    prev.name, arg.name
                ),
            )
            .with_label("clashing short flag"));
        }
        if arg.positional {
            if let Some(list) = args.iter().find(|a| a.positional && a.ty == ArgType::List) {
                return Err(Error::at(
                    &list.span,
                    format!(
                        "positional list `{}` of task `{task}` must be the last positional argument",
                        list.name
                    ),
                )
                .with_label("not last")
                .with_help(format!("move `{}` after `{}`", list.name, arg.name)));
            }
        }
        args.push(arg);
    }
    Ok(args)
}

/// Long by design: one argument table, key by key, with the checks that
/// relate keys to each other (type and default, choices, required).
fn arg(w: &Walker, item: &Value, task: &str) -> Result<Arg> {
    let table: &DeTable = w.table(item, format_args!("each entry of `args` of task `{task}`"))?;
    w.check_keys(
        table,
        ARG_KEYS,
        format_args!("an argument of task `{task}`"),
    )?;
    let name_value = table.get("name").ok_or_else(|| {
        w.error(
            item.span(),
            format!("an argument of task `{task}` has no `name`"),
        )
        .with_label("needs `name`")
    })?;
    let name = w.string(name_value, "`name` of an argument")?;
    check_ident(w, &name, name_value.span(), "an argument")?;
    if name == "help" {
        return Err(w
            .error(
                name_value.span(),
                "`help` cannot name an argument: --help shows the task's help",
            )
            .with_label("reserved name"));
    }
    let what = |k: &'static str| KeyOf {
        key: k,
        owner: "argument",
        name: &name,
    };
    let ty = match table.get("type") {
        Some(v) => {
            let text = w.string(v, what("type"))?;
            ArgType::parse(&text).ok_or_else(|| {
                w.error(v.span(), format!("unknown argument type `{text}`"))
                    .with_label("unknown type")
                    .suggest(&text, ArgType::NAMES)
                    .with_help(format!("the types are {}", ArgType::NAMES.join(", ")))
            })?
        }
        None => ArgType::String,
    };
    let positional = table
        .get("positional")
        .map_or(Ok(false), |v| w.bool(v, what("positional")))?;
    if positional && matches!(ty, ArgType::Bool | ArgType::Count) {
        return Err(w
            .error(
                table["positional"].span(),
                format!("a {} argument cannot be positional", ty.name()),
            )
            .with_label("not allowed here")
            .with_help(format!("`{name}` is set with {}", format_flag(&name))));
    }
    let short = match table.get("short") {
        Some(v) => {
            let text = w.string(v, what("short"))?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() && c != 'h' => Some(c),
                (Some('h'), None) => {
                    return Err(w
                        .error(v.span(), "`-h` is reserved for the task's help")
                        .with_label("reserved"))
                }
                _ => {
                    return Err(w
                        .error(
                            v.span(),
                            format!("{} must be one letter or digit", what("short")),
                        )
                        .with_label("not a single character"))
                }
            }
        }
        None => None,
    };
    let help = table
        .get("help")
        .map(|v| w.string(v, what("help")))
        .transpose()?;
    let env = table
        .get("env")
        .map(|v| w.string(v, what("env")))
        .transpose()?;
    let default = match table.get("default") {
        Some(v) => Some(typed_value(w, v, ty, what("default"))?),
        None => None,
    };
    let choices = match table.get("choices") {
        Some(v) => {
            if matches!(ty, ArgType::Bool | ArgType::Count) {
                return Err(w
                    .error(
                        v.span(),
                        format!("a {} argument cannot have choices", ty.name()),
                    )
                    .with_label("not allowed here"));
            }
            let element_ty = if ty == ArgType::List {
                ArgType::String
            } else {
                ty
            };
            let items = w.array(v, what("choices"))?;
            if items.is_empty() {
                return Err(w
                    .error(v.span(), format!("{} is empty", what("choices")))
                    .with_label("empty"));
            }
            items
                .iter()
                .map(|item| {
                    typed_value(
                        w,
                        item,
                        element_ty,
                        &format!("each entry of {}", what("choices")),
                    )
                })
                .collect::<Result<Vec<_>>>()?
        }
        None => Vec::new(),
    };
    if let (Some(default), false) = (&default, choices.is_empty()) {
        let fits = match default {
            ArgValue::List(items) => items
                .iter()
                .all(|i| choices.contains(&ArgValue::Str(i.clone()))),
            other => choices.contains(other),
        };
        if !fits {
            return Err(w
                .error(
                    table["default"].span(),
                    format!("the default of argument `{name}` is not one of its choices"),
                )
                .with_label("not in `choices`")
                .with_help(format!(
                    "the choices are {}",
                    choices
                        .iter()
                        .map(ArgValue::display)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
        }
    }
    let optional = match table.get("required") {
        Some(v) => !required_key(w, v, ty, default.is_some(), what("required"))?,
        None => false,
    };
    Ok(Arg {
        span: w.span(name_value.span()),
        name,
        ty,
        help,
        default,
        positional,
        short,
        choices,
        env,
        optional,
    })
}

/// `required = true | false`, which only a string, int or float argument
/// without a default can take: the others are optional already.
fn required_key(
    w: &Walker,
    v: &Value,
    ty: ArgType,
    has_default: bool,
    what: impl std::fmt::Display + Copy,
) -> Result<bool> {
    let required = w.bool(v, what)?;
    if matches!(ty, ArgType::Bool | ArgType::Count | ArgType::List) {
        return Err(w
            .error(
                v.span(),
                format!("a {} argument cannot set `required`", ty.name()),
            )
            .with_label("not allowed here")
            .with_help(format!(
                "a {} argument is optional already: left out, it is {}",
                ty.name(),
                match ty {
                    ArgType::Bool => "false",
                    ArgType::Count => "0",
                    _ => "empty",
                }
            )));
    }
    if has_default {
        return Err(w
            .error(
                v.span(),
                "an argument with a `default` cannot set `required`",
            )
            .with_label("not allowed with `default`")
            .with_help("an argument with a default is optional; remove `required`"));
    }
    Ok(required)
}

fn format_flag(name: &str) -> String {
    format!("--{}", name.replace('_', "-"))
}

/// A TOML value as an argument value of type `ty`.
fn typed_value(
    w: &Walker,
    value: &Value,
    ty: ArgType,
    what: impl std::fmt::Display + Copy,
) -> Result<ArgValue> {
    Ok(match ty {
        ArgType::String => ArgValue::Str(w.string(value, what)?),
        ArgType::Bool => ArgValue::Bool(w.bool(value, what)?),
        ArgType::Int => ArgValue::Int(w.int(value, what)?),
        ArgType::Float => ArgValue::Float(w.float(value, what)?),
        ArgType::Count => {
            let n = w.int(value, what)?;
            ArgValue::Count(u64::try_from(n).map_err(|_| {
                w.error(value.span(), format!("{what} must be 0 or more"))
                    .with_label("negative")
            })?)
        }
        ArgType::List => ArgValue::List(
            w.strings(value, what)?
                .into_iter()
                .map(|(s, _)| s)
                .collect(),
        ),
    })
}

/// Calls whose text is fixed are parsed now, so a typo in a dep is a load
/// error; templated calls are checked for a known task name at least.
fn check_calls(model: &Model) -> Result<()> {
    for task in &model.tasks {
        let steps = task
            .run
            .iter()
            .chain(&task.finally)
            .filter_map(|s| match &s.kind {
                StepKind::Task(call) => Some(call),
                _ => None,
            });
        for call in task.deps.iter().chain(&task.post).chain(steps) {
            check_call(model, task, call)?;
        }
    }
    Ok(())
}

fn check_call(model: &Model, task: &Task, call: &Call) -> Result<()> {
    let source = &call.template.source;
    if call.template.is_literal() {
        let words = shell_words::split(source).map_err(|e| {
            Error::at(
                &call.template.span,
                format!("cannot split task call `{source}`: {e}"),
            )
            .with_label("unbalanced quotes")
        })?;
        if words.is_empty() {
            return Err(
                Error::at(&call.template.span, "empty task call").with_label("names no task")
            );
        }
        crate::args::parse(model, &words, crate::args::Source::Call)
            .map_err(|e| e.relocate(&call.template.span, &task.name))?;
    } else {
        let first = source.split_whitespace().next().unwrap_or("");
        if !first.contains('{') && !first.is_empty() && model.task(first).is_none() {
            return Err(Error::at(
                &call.template.span,
                format!("unknown task `{first}` in a call of task `{}`", task.name),
            )
            .with_label("unknown task")
            .suggest(first, model.callable_names()));
        }
    }
    Ok(())
}
