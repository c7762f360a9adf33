//! One task table: the declaration of its keys (`TASK_KEYS`: each key's
//! reader, reference row and schema), the checks between keys, and output
//! patterns.

use serde_json::json;

use super::keys::{self, key, presentation, shape, Key, KeyOf};
use super::*;

/// Every key of a task table, in the order of the reference's table of
/// task keys, which is generated from this one (see `keys`).
pub(crate) const TASK_KEYS: &[Key<Task>] = &[
    presentation(
        "help",
        ["string", "none", r#"`help = "Compile the project"`"#, "first line shown by `-l`, the whole text by `tasker TASK --help`"],
        shape::string,
        |w, v, k, t| w.string(v, k).map(|value| t.help = Some(value)),
    ),
    key(
        "run",
        ["string, or array of steps", "none", r#"`run = "cargo build"`"#, "the commands (section 3); a string is one shell script"],
        shape::steps,
        |w, v, k, t| steps(w, v, k).map(|value| t.run = value),
    ),
    key(
        "deps",
        ["array of task calls", "`[]`", r#"`deps = ["gen", "fetch --quiet"]`"#, "runs that must succeed first; they run concurrently"],
        shape::strings,
        |w, v, k, t| calls(w, Some(v), k).map(|value| t.deps = value),
    ),
    key(
        "post",
        ["array of task calls", "`[]`", r#"`post = ["notify"]`"#, "runs that start after this one succeeds"],
        shape::strings,
        |w, v, k, t| calls(w, Some(v), k).map(|value| more(t).post = value),
    ),
    key(
        "finally",
        ["string, or array of steps", "none", r#"`finally = "rm -rf tmp"`"#, "cleanup that runs after `run` however it ended (section 6)"],
        shape::steps,
        |w, v, k, t| steps(w, v, k).map(|value| more(t).finally = value),
    ),
    key(
        "args",
        ["array of tables", "`[]`", r#"`[[tasks.deploy.args]]` then `name = "target"`"#, "the task's arguments (below)"],
        || json!({ "type": "array", "items": keys::object(ARG_KEYS, &["name"]) }),
        |w, v, k, t| args(w, v, k.name).map(|value| t.args = value),
    ),
    key(
        "env",
        ["table of strings", "`{}`", r#"`env = { RUST_LOG = "debug" }`"#, "environment for this task, over `[env]`; values are templates"],
        shape::env,
        |w, v, k, t| env_table(w, v, k).map(|value| more(t).env = value),
    ),
    key(
        "dir",
        ["string (template)", "the directory of its file", r#"`dir = "frontend"`"#, "working directory, relative to the root (the directory of the root file, also for a task of an included file)"],
        shape::string,
        |w, v, k, t| w.template(v, k).map(|value| more(t).dir = Some(value)),
    ),
    key(
        "shell",
        ["array of strings", "`settings.shell`", r#"`shell = ["python3", "-c"]`"#, "the program that runs this task's scripts"],
        shape::strings,
        |w, v, k, t| shell(w, v, k).map(|value| more(t).shell = Some(value)),
    ),
    key(
        "quiet",
        ["bool", "`false`", "`quiet = true`", "do not echo this task's commands"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| t.quiet = value),
    ),
    presentation(
        "private",
        ["bool", "`false`", "`private = true`", "leave out of `-l` (a name starting with `_` does the same); it can still be run"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| t.private = value),
    ),
    presentation(
        "aliases",
        ["array of strings", "`[]`", r#"`aliases = ["b"]`"#, "other names for the task"],
        shape::strings,
        |w, v, k, t| {
            let aliases = w.strings(v, k)?;
            for (alias, span) in &aliases {
                check_task_name(w, alias, span.range.clone())?;
            }
            t.aliases = aliases.into_iter().map(|(a, _)| a).collect();
            Ok(())
        },
    ),
    presentation(
        "group",
        ["string", "none", r#"`group = "docs"`"#, "heading under which `-l` shows the task"],
        shape::string,
        |w, v, k, t| w.string(v, k).map(|value| t.group = Some(value)),
    ),
    key(
        "confirm",
        ["string (template)", "none", r#"`confirm = "Deploy {{ target }}?"`"#, "ask this yes/no question first; no terminal or no answer fails the run unless `--yes`"],
        shape::string,
        |w, v, k, t| w.template(v, k).map(|value| more(t).confirm = Some(value)),
    ),
    key(
        "platforms",
        ["array of strings", "every platform", r#"`platforms = ["linux", "macos"]`"#, "any of `linux`, `macos`, `windows`, `unix`; elsewhere the run is skipped with a note"],
        || json!({ "type": "array", "items": { "enum": Platform::NAMES } }),
        |w, v, k, t| platforms(w, v, k).map(|value| more(t).platforms = value),
    ),
    key(
        "timeout",
        ["duration", "none", r#"`timeout = "5m"`"#, "past it the run's processes are stopped and it fails with 124"],
        shape::duration,
        |w, v, k, t| w.duration(v, k).map(|value| more(t).timeout = Some(value)),
    ),
    key(
        "retries",
        ["integer", "`0`", "`retries = 2`", "run again up to this many times after a failure"],
        || json!({ "type": "integer", "minimum": 0 }),
        |w, v, k, t| {
            let n = w.int(v, k)?;
            more(t).retries = u32::try_from(n).map_err(|_| {
                w.error(v.span(), format!("{k} must be between 0 and {}", u32::MAX))
                    .with_label("out of range")
            })?;
            Ok(())
        },
    ),
    key(
        "retry_delay",
        ["duration", r#"`"0s"`"#, r#"`retry_delay = "5s"`"#, "wait between attempts"],
        shape::duration,
        |w, v, k, t| w.duration(v, k).map(|value| more(t).retry_delay = value),
    ),
    key(
        "ignore_failure",
        ["bool", "`false`", "`ignore_failure = true`", "a failure is reported but counts as success"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).ignore_failure = value),
    ),
    key(
        "interactive",
        ["bool", "`false`", "`interactive = true`", "the run has the terminal alone: nothing overlaps it, its output is never prefixed"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).interactive = value),
    ),
    key(
        "pty",
        ["bool", "`false`", "`pty = true`", "the commands get a pseudo-terminal (section 5)"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).pty = value),
    ),
    key(
        "background",
        ["bool", "`false`", "`background = true`", "a service: it runs while the runs that depend on it run, and is stopped after them (section 6)"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).background = value),
    ),
    key(
        "ready",
        ["string (regex)", "none: ready once started", r#"`ready = "listening on"`"#, "the line of its output that says a service is up; only with `background = true`"],
        shape::string,
        |w, v, k, t| pattern(w.string(v, k)?, w.span(v.span())).map(|value| more(t).ready = Some(value)),
    ),
    key(
        "ready_timeout",
        ["duration", r#"`"30s"`"#, r#"`ready_timeout = "10s"`"#, "how long a service may take to be ready; only with `background = true`"],
        shape::duration,
        |w, v, k, t| w.duration(v, k).map(|value| more(t).ready_timeout = Some(value)),
    ),
    key(
        "matrix",
        ["table", "none", r#"`matrix = { os = ["linux", "macos"] }`"#, "one run per combination of values (section 6)"],
        || json!({ "type": "object", "additionalProperties": { "oneOf": [{ "type": "array" }, { "type": "string" }] } }),
        |w, v, k, t| matrix(w, v, k).map(|value| more(t).matrix = value),
    ),
    key(
        "sources",
        ["array of globs", "`[]`", r#"`sources = ["src/**/*.rs"]`"#, "the files the task reads: it is skipped when none changed since its last success (section 7)"],
        shape::strings,
        |w, v, k, t| globs(w, v, k).map(|value| more(t).sources = value),
    ),
    key(
        "outputs",
        ["array of globs", "`[]`", r#"`outputs = ["dist/app"]`"#, "the files the task makes: it is not up to date while one is missing (section 7)"],
        shape::strings,
        |w, v, k, t| globs(w, v, k).map(|value| more(t).outputs = value),
    ),
    key(
        "cache",
        ["bool", "`true`", "`cache = false`", "`false` keeps this task's results out of the remote cache: never asked, never uploaded (section 7)"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).cache = value),
    ),
    key(
        "capture",
        ["bool", "`false`", "`capture = true`", "keep stdout and stderr for templates: `tasks.NAME.stdout` (section 5)"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).output.capture = value),
    ),
    key(
        "extract",
        ["table of regexes", "`{}`", "`extract = { version = 'v([0-9.]+)' }`", "the first match becomes `tasks.NAME.version`; no match fails the run"],
        || json!({ "type": "object", "additionalProperties": { "type": "string" } }),
        |w, v, k, t| extract(w, v, k).map(|value| more(t).output.extract = value),
    ),
    key(
        "expect",
        ["array of regexes", "`[]`", r#"`expect = ["tests passed"]`"#, "each must match some line, or the run fails"],
        shape::strings,
        |w, v, k, t| patterns(w, v, k).map(|value| more(t).output.expect = value),
    ),
    key(
        "fail_on",
        ["array of regexes", "`[]`", r#"`fail_on = ["(?i)fatal"]`"#, "the first matching line stops the run and fails it"],
        shape::strings,
        |w, v, k, t| patterns(w, v, k).map(|value| more(t).output.fail_on = value),
    ),
    key(
        "respond",
        ["array of `{ on, send }`", "`[]`", r#"`respond = [{ on = "Password:", send = "{{ env.PW }}\n" }]`"#, "write `send` to the run's stdin each time `on` appears"],
        || json!({ "type": "array", "items": {
            "type": "object", "required": ["on", "send"], "additionalProperties": false,
            "properties": { "on": { "type": "string" }, "send": { "type": "string" } } } }),
        |w, v, k, t| respond(w, v, k).map(|value| more(t).output.respond = value),
    ),
    key(
        "hide",
        [r#"bool, `"stdout"` or `"stderr"`"#, "`false`", r#"`hide = "stdout"`"#, "keep output off the terminal; shown after all if the run fails"],
        || json!({ "oneOf": [{ "type": "boolean" }, { "enum": ["stdout", "stderr"] }] }),
        |w, v, k, t| hide(w, v, k).map(|value| more(t).output.hide = value),
    ),
    key(
        "distribute",
        ["bool", "`false`", "`distribute = true`", "with a queue, this task's runs go to workers on other machines (section 11); not with `interactive`, `confirm`, `background` or `task` steps"],
        shape::boolean,
        |w, v, k, t| w.bool(v, k).map(|value| more(t).distribute = value),
    ),
    key(
        "vars",
        ["table", "`{}`", r#"`vars = { version = { sh = "next-version {{ level }}" } }`"#, "vars of this task alone, over `[vars]`, written the same way; they may read the task's arguments and `[vars]`, and are evaluated once per run, only when used (their `sh` sees the environment below the task's `env`)"],
        shape::vars,
        |w, v, _, t| vars(w, v).map(|value| more(t).vars = value),
    ),
    key(
        "status",
        ["array of commands", "`[]`", r#"`status = ["test -f gen.go"]`"#, "after its deps, the run is up to date when every command exits 0 (with `sources`, both must say so); `-B` runs it anyway, `-n` says what it would check"],
        shape::strings,
        |w, v, k, t| templates(w, v, k).map(|value| more(t).status = value),
    ),
    key(
        "preconditions",
        ["array of commands or `{ sh, msg }`", "`[]`", r#"`preconditions = [{ sh = "test -f .env", msg = "run setup first" }]`"#, "after its deps and before its first step, each must exit 0; a failing one fails the run with its `msg` (or the command), and no step runs"],
        || json!({ "type": "array", "items": { "oneOf": [
            { "type": "string" },
            { "type": "object", "required": ["sh"], "additionalProperties": false,
              "properties": { "sh": { "type": "string" }, "msg": { "type": "string" } } }
        ] } }),
        |w, v, k, t| preconditions(w, v, k).map(|value| more(t).preconditions = value),
    ),
];

/// The keys few tasks set, made when the first of them is read: a file
/// of thousands of plain tasks stays small.
fn more(task: &mut Task) -> &mut TaskMore {
    task.more.get_or_insert_with(|| Box::new(TaskMore::empty()))
}

/// One task table: every key read in `TASK_KEYS` order, then the checks
/// that relate keys to each other.
pub(super) fn task(
    w: &Walker,
    name: String,
    span: std::ops::Range<usize>,
    value: &Value,
) -> Result<Task> {
    let table = w.table(value, format_args!("task `{name}`"))?;
    w.check_keys(table, keys::names(TASK_KEYS), format_args!("task `{name}`"))?;
    // Tasks have a handful of keys: a scan beats hashing each lookup.
    let entries: Vec<(&str, &Value)> = table
        .iter()
        .map(|(k, v)| (k.get_ref().as_ref(), v))
        .collect();
    let mut task = Task {
        name: String::new(),
        unit: ROOT_UNIT,
        span: w.span(span),
        help: None,
        run: Vec::new(),
        deps: Vec::new(),
        args: Vec::new(),
        quiet: false,
        private: false,
        aliases: Vec::new(),
        group: None,
        more: None,
    };
    keys::read_keys(w, TASK_KEYS, &entries, ("task", &name), &mut task)?;
    let get = |k: &str| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    check_task(w, &name, &task, &entries)?;
    if let Some(more) = &mut task.more {
        // Only a run with sources is ever fingerprinted.
        if get("sources").is_some() {
            more.definition = definition::definition(get);
        }
    }
    task.name = name;
    Ok(task)
}

/// What no single key decides: keys that only a service takes, names
/// shared by arguments, vars and matrix entries, and what a distributed
/// task may not be.
fn check_task(w: &Walker, name: &str, task: &Task, entries: &[(&str, &Value)]) -> Result<()> {
    let get = |k: &str| entries.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let key = |k: &'static str| KeyOf {
        key: k,
        owner: "task",
        name,
    };
    // `ready` and `ready_timeout` describe a service; on any other task
    // they would be silently ignored. The first in the file is named.
    if !task.background {
        let service_key = |k: &str| match k {
            "ready" => Some("ready"),
            "ready_timeout" => Some("ready_timeout"),
            _ => None,
        };
        if let Some((k, v)) = entries
            .iter()
            .find_map(|(k, v)| Some((service_key(k)?, *v)))
        {
            return Err(w
                .error(v.span(), format!("{} only applies to a service", key(k)))
                .with_label("needs `background = true`")
                .with_help(
                    "a task with `background = true` is a service; `ready` says when it is ready, `ready_timeout` how long that may take",
                ));
        }
    }
    // A service runs beside what needs it; `interactive` would let
    // nothing start beside it, and so would wait for itself.
    if let (true, true, Some(v)) = (task.background, task.interactive, get("interactive")) {
        return Err(w
            .error(
                v.span(),
                format!("{} cannot be true for a service", key("interactive")),
            )
            .with_label("a service has `background = true`")
            .with_help(
                "a service runs beside the runs that depend on it, and an interactive run has the terminal alone",
            ));
    }
    if let Some(axis) = task
        .matrix
        .iter()
        .find(|axis| task.arg(&axis.name).is_some())
    {
        return Err(Error::at(
            &task.span,
            format!(
                "task `{name}` has both an argument and a matrix entry named `{}`",
                axis.name
            ),
        ));
    }
    if let Some(var) = task.vars.iter().find(|var| task.arg(&var.name).is_some()) {
        return Err(Error::at(
            &var.span,
            format!(
                "task `{name}` has both an argument and a var named `{}`",
                var.name
            ),
        )
        .with_label("also an argument"));
    }
    if task.distribute {
        check_distributable(w, name, task, get("distribute"))?;
    }
    Ok(())
}

/// `platforms`: each one tasker knows.
fn platforms(w: &Walker, v: &Value, k: KeyOf) -> Result<Vec<Platform>> {
    w.strings(v, k)?
        .into_iter()
        .map(|(p, span)| {
            Platform::parse(&p).ok_or_else(|| {
                Error::at(&span, format!("unknown platform `{p}`"))
                    .with_label("unknown platform")
                    .suggest(&p, Platform::NAMES)
                    .with_help("platforms are linux, macos, windows and unix")
            })
        })
        .collect()
}

/// `sources` and `outputs`: globs the walker can match.
fn globs(w: &Walker, v: &Value, k: KeyOf) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (text, at) in w.strings(v, k)? {
        if let Err(why) = crate::glob::check(&text) {
            return Err(Error::at(&at, format!("{k}: {why}")));
        }
        out.push(text);
    }
    Ok(out)
}

/// `expect` and `fail_on`: regexes.
fn patterns(w: &Walker, v: &Value, k: KeyOf) -> Result<Vec<Pattern>> {
    w.strings(v, k)?
        .into_iter()
        .map(|(s, span)| pattern(s, span))
        .collect()
}

/// `extract`: a name for each regex, none a result every run has.
fn extract(w: &Walker, v: &Value, k: KeyOf) -> Result<Vec<(String, Pattern)>> {
    let t = w.table(v, k)?;
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
    Ok(out)
}

/// `respond`: `{ on, send }` tables.
fn respond(w: &Walker, v: &Value, k: KeyOf) -> Result<Vec<Responder>> {
    w.array(v, k)?
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
        .collect()
}

/// `hide`: true, false, "stdout" or "stderr".
fn hide(w: &Walker, v: &Value, k: KeyOf) -> Result<Hide> {
    match v.get_ref() {
        DeValue::Boolean(true) => Ok(Hide::Both),
        DeValue::Boolean(false) => Ok(Hide::None),
        DeValue::String(s) if s == "stdout" => Ok(Hide::Stdout),
        DeValue::String(s) if s == "stderr" => Ok(Hide::Stderr),
        _ => Err(w
            .error(
                v.span(),
                format!("{k} must be true, false, \"stdout\" or \"stderr\""),
            )
            .with_label("invalid value")),
    }
}

/// A task that needs this terminal, is a service, or calls tasks cannot
/// run on a worker (SPEC 11): a load error at its `distribute` key.
fn check_distributable(w: &Walker, name: &str, more: &Task, at: Option<&Value>) -> Result<()> {
    let calls = more
        .run
        .iter()
        .chain(&more.finally)
        .any(|s| matches!(s.kind, StepKind::Task(_)));
    let why = if more.interactive {
        "it is `interactive`: it needs this terminal"
    } else if more.confirm.is_some() {
        "it has `confirm`: the question needs this terminal"
    } else if more.background {
        "it is a service (`background`)"
    } else if calls {
        "it has `task` steps, which run here"
    } else {
        return Ok(());
    };
    let span = at.map(|v| v.span()).unwrap_or_default();
    Err(w
        .error(span, format!("task `{name}` cannot be distributed: {why}"))
        .with_label("distribute = true")
        .with_help("only runs that need nothing of this machine can go to workers; remove `distribute` or the key that ties the task here"))
}

/// `preconditions`: commands, or `{ sh, msg }` tables.
fn preconditions(w: &Walker, value: &Value, what: KeyOf) -> Result<Vec<Precondition>> {
    w.array(value, what)?
        .iter()
        .map(|item| match item.get_ref() {
            DeValue::String(_) => Ok(Precondition {
                sh: w.template(item, format_args!("each entry of {what}"))?,
                msg: None,
            }),
            DeValue::Table(t) => {
                w.check_keys(t, PRECONDITION_KEYS, "a `preconditions` entry")?;
                let sh = t.get("sh").ok_or_else(|| {
                    w.error(
                        item.span(),
                        "a `preconditions` entry needs `sh`, the command that must succeed",
                    )
                })?;
                Ok(Precondition {
                    sh: w.template(sh, "`sh` of a precondition")?,
                    msg: t
                        .get("msg")
                        .map(|m| w.template(m, "`msg` of a precondition"))
                        .transpose()?,
                })
            }
            _ => Err(w.wrong_type(
                item,
                &format!("each entry of {what}"),
                "a string or a table `{ sh = \"...\", msg = \"...\" }`",
            )),
        })
        .collect()
}

pub(super) fn pattern(source: String, span: crate::error::Span) -> Result<Pattern> {
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
