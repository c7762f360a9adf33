//! The top-level tables: `[settings]`, `[env]`, `[vars]`.

use super::*;

pub(super) fn settings(w: &Walker, value: &Value) -> Result<Settings> {
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
            let names = OutputMode::names();
            w.error(v.span(), format!("unknown output mode `{text}`"))
                .with_label("unknown mode")
                .suggest(&text, names.iter().map(String::as_str))
                .with_help(format!("the modes are {}", crate::error::listed(&names)))
        })?);
    }
    if let Some(v) = table.get("echo") {
        settings.echo = w.bool(v, "settings.echo")?;
    }
    if let Some(v) = table.get("remote_cache") {
        settings.remote_cache = Some(remote_cache(w, v)?);
    }
    if let Some(v) = table.get("queue") {
        settings.queue = Some(w.string(v, "settings.queue")?);
    }
    if let Some(v) = table.get("queue_timeout") {
        settings.queue_timeout = Some(w.duration(v, "settings.queue_timeout")?);
    }
    Ok(settings)
}

/// `remote_cache = { url = "https://...", team = "..." }`. The token is
/// never read from the file: only from TASKER_REMOTE_CACHE_TOKEN.
fn remote_cache(w: &Walker, value: &Value) -> Result<RemoteCache> {
    let table = w.table(value, "settings.remote_cache")?;
    if let Some((key, _)) = table.get_key_value("token") {
        return Err(w
            .error(
                key.span(),
                "the remote cache's token is never read from the file",
            )
            .with_label("not here")
            .with_help("set TASKER_REMOTE_CACHE_TOKEN in the environment (a CI secret)"));
    }
    w.check_keys(table, REMOTE_CACHE_KEYS, "settings.remote_cache")?;
    let mut cache = RemoteCache::default();
    if let Some(v) = table.get("url") {
        let url = w.string(v, "settings.remote_cache.url")?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(w
                .error(
                    v.span(),
                    format!("the remote cache URL `{url}` is not an http:// or https:// URL"),
                )
                .with_label("not an http(s) URL")
                .with_help("for example url = \"https://cache.example.com\""));
        }
        cache.url = Some(url);
    }
    if let Some(v) = table.get("team") {
        cache.team = Some(w.string(v, "settings.remote_cache.team")?);
    }
    Ok(cache)
}

pub(super) fn shell(
    w: &Walker,
    value: &Value,
    what: impl std::fmt::Display + Copy,
) -> Result<Vec<String>> {
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

pub(super) fn env_table(
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

pub(super) fn literal_template(w: &Walker, value: &Value, text: &str) -> Template {
    Template {
        source: text.to_string(),
        span: w.span(value.span()),
    }
}

pub(super) fn vars(w: &Walker, value: &Value) -> Result<Vec<Var>> {
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
            unit: ROOT_UNIT,
            span: w.span(key.span()),
            value,
        });
    }
    Ok(vars)
}

/// A TOML value as a template value (numbers, bools, strings and arrays).
pub(super) fn literal_value(
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
