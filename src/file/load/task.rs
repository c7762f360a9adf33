//! One task table: its keys, in the order of the reference, and its
//! output patterns.

use super::*;

/// "`KEY` of task `NAME`" (or of argument), formatted only when an error
/// needs it.
#[derive(Clone, Copy)]
pub(super) struct KeyOf<'a> {
    pub(super) key: &'static str,
    pub(super) owner: &'static str,
    pub(super) name: &'a str,
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
pub(super) fn task(
    w: &Walker,
    name: String,
    span: std::ops::Range<usize>,
    value: &Value,
) -> Result<Task> {
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
                    "a task with `background = true` is a service; `ready` says when it is ready, `ready_timeout` how long that may take",
                ));
        }
    }
    // A service runs beside what needs it; `interactive` would let
    // nothing start beside it, and so would wait for itself.
    if get_bool("background")? && get_bool("interactive")? {
        if let Some((_, v)) = entries.iter().find(|(k, _)| *k == "interactive") {
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
            if let Err(why) = crate::glob::check(&text) {
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

    let vars = match get("vars") {
        Some(v) => {
            let vars = vars(w, v)?;
            if let Some(var) = vars
                .iter()
                .find(|var| args.iter().any(|a| a.name == var.name))
            {
                return Err(Error::at(
                    &var.span,
                    format!(
                        "task `{name}` has both an argument and a var named `{}`",
                        var.name
                    ),
                )
                .with_label("also an argument"));
            }
            vars
        }
        None => Vec::new(),
    };
    let status = match get("status") {
        Some(v) => templates(w, v, key("status"))?,
        None => Vec::new(),
    };
    let preconditions = match get("preconditions") {
        Some(v) => preconditions(w, v, key("preconditions"))?,
        None => Vec::new(),
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
        cache: get("cache").map_or(Ok(true), |v| w.bool(v, key("cache")))?,
        output: OutputKeys {
            capture: get_bool("capture")?,
            extract,
            expect: get_patterns("expect")?,
            fail_on: get_patterns("fail_on")?,
            respond,
            hide,
        },
        distribute: get_bool("distribute")?,
        vars,
        status,
        preconditions,
        // Only a run with sources is ever fingerprinted.
        definition: if get("sources").is_some() {
            definition::definition(get)
        } else {
            Vec::new()
        },
    };
    if more.distribute {
        check_distributable(w, &name, &more, &run, get("distribute"))?;
    }
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
        unit: ROOT_UNIT,
    })
}

/// A task that needs this terminal, is a service, or calls tasks cannot
/// run on a worker (SPEC 11): a load error at its `distribute` key.
fn check_distributable(
    w: &Walker,
    name: &str,
    more: &TaskMore,
    run: &[Step],
    at: Option<&Value>,
) -> Result<()> {
    let calls = run
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
