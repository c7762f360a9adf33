//! Templates (SPEC 4): minijinja with strict undefined and shell quoting by
//! default. Where the rendered text is later split into words (shell
//! commands, `pipe` stages, task calls) every `{{ }}` value is inserted as
//! one quoted word; `| safe` opts out. Elsewhere values go in as they are.

use std::collections::{BTreeMap, HashSet};

use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use crate::error::{Error, Result};
use crate::model::Template;

/// How `{{ }}` values are inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Text later split into words: each value is one POSIX-quoted word,
    /// a list is its elements quoted and joined by spaces.
    Shell,
    /// Text that is one value already (`env`, `dir`, `vars`, `confirm`,
    /// `send`): values as they are, a list joined by spaces.
    Plain,
}

impl Mode {
    fn template_name(self) -> &'static str {
        match self {
            Mode::Shell => "shell",
            Mode::Plain => "plain",
        }
    }
}

/// The names every template of a task can read besides its own arguments,
/// matrix entries and the file's vars: the one list, read by `--check`
/// and by the unknown-name error at run time.
pub const SCOPE_NAMES: &[&str] = &[
    "env",
    "tasks",
    "extra",
    "root",
    "invocation_dir",
    "task",
    "os",
    "arch",
];

/// Names whose values templates depend on structurally; arguments, vars
/// and matrix entries may not take them. (`root`, `task`, `os` and the like
/// may be shadowed: an argument or matrix entry `os` wins over the builtin.)
pub const RESERVED_NAMES: &[&str] = &["env", "tasks", "extra"];

/// Names minijinja provides itself; never reported as unknown.
const BUILTINS: &[&str] = &[
    "range",
    "dict",
    "namespace",
    "loop",
    "self",
    "super",
    "caller",
    "varargs",
    "kwargs",
];

/// The work one render may do, in minijinja's instructions: far beyond any
/// real template (a loop of a million items fits), and well under a second
/// of work in a release build.
const FUEL: u64 = 10_000_000;

/// The most text one render may make: well over anything a command line,
/// an environment or a prompt can carry (the kernel takes a few MiB at
/// most), so a template that makes more is a mistake, stopped before it
/// costs seconds and memory.
const MAX_TEXT: usize = 4 << 20;

/// What a render writes into, refusing to grow past `MAX_TEXT`.
#[derive(Default)]
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_TEXT {
            return Err(std::io::Error::other("the text is too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct Engine {
    env: Environment<'static>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    pub fn new() -> Engine {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // A render has a budget of work (SPEC 6, Limits): nested loops that
        // would run for minutes end in a located error instead.
        env.set_fuel(Some(FUEL));
        if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
        {
            env.set_syntax(syntax);
        }
        env.set_auto_escape_callback(|name| match name {
            "shell" => AutoEscape::Custom("shell".into()),
            _ => AutoEscape::None,
        });
        env.set_formatter(|out, state, value| {
            // A value too long for any render fails before it is quoted.
            if value.as_str().is_some_and(|s| s.len() > MAX_TEXT) {
                return Err(minijinja::Error::from(std::fmt::Error));
            }
            let text = match state.auto_escape() {
                AutoEscape::Custom(name) if name == "shell" && !value.is_safe() => {
                    quote_value(value)
                }
                _ => crate::model::plain_value(value),
            };
            out.write_str(&text).map_err(minijinja::Error::from)
        });
        Engine { env }
    }

    /// The top-level names the template reads (no builtins), or the syntax
    /// error, located in the file.
    pub fn names(&self, template: &Template, what: &str) -> Result<HashSet<String>> {
        let compiled = self
            .env
            .template_from_named_str("plain", &template.source)
            .map_err(|e| template_error(template, what, &e))?;
        let mut names = compiled.undeclared_variables(true);
        names.retain(|n| !BUILTINS.contains(&n.split('.').next().unwrap_or("")));
        Ok(names)
    }

    /// A filter or test the template uses that does not exist. minijinja
    /// only finds these when the expression is evaluated; `check` wants
    /// them before anything runs, also in branches that are not taken.
    pub fn unknown_filter_or_test(&self, template: &Template) -> Option<(String, &'static str)> {
        for (name, kind) in filters_and_tests(&template.source) {
            let probe = match kind {
                "filter" => format!("{{{{ 1 | {name} }}}}"),
                _ => format!("{{{{ 1 is {name} }}}}"),
            };
            if let Err(e) = self.env.render_str(&probe, ()) {
                if matches!(
                    e.kind(),
                    minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
                ) {
                    return Some((name, kind));
                }
            }
        }
        None
    }

    pub fn render(
        &self,
        template: &Template,
        mode: Mode,
        context: &BTreeMap<String, Value>,
        what: &str,
    ) -> Result<String> {
        if template.is_literal() {
            return Ok(template.source.clone());
        }
        let compiled = self
            .env
            .template_from_named_str(mode.template_name(), &template.source)
            .map_err(|e| template_error(template, what, &e))?;
        let mut text = Bounded::default();
        compiled
            .render_captured_to(Value::from(context.clone()), &mut text)
            .map_err(|e| template_error(template, what, &e))?;
        // Only whole `&str`s were written.
        String::from_utf8(text.0)
            .map_err(|_| Error::at(&template.span, "render made invalid UTF-8"))
    }

    /// A `cmd` element as the arguments it stands for: a template that is
    /// one expression whose value is a list gives one argument per item;
    /// anything else is exactly one argument.
    pub fn render_words(
        &self,
        template: &Template,
        context: &BTreeMap<String, Value>,
        what: &str,
    ) -> Result<Vec<String>> {
        if let Some(expr) = single_expression(&template.source) {
            if let Ok(value) = self
                .env
                .compile_expression(expr)
                .and_then(|e| e.eval(Value::from(context.clone())))
            {
                if value.kind() == minijinja::value::ValueKind::Seq {
                    if let Ok(items) = value.try_iter() {
                        let words: Vec<String> =
                            items.map(|i| crate::model::plain_value(&i)).collect();
                        if words.iter().map(String::len).sum::<usize>() > MAX_TEXT {
                            return Err(too_much_text(template, what));
                        }
                        return Ok(words);
                    }
                }
            }
            // Anything else (errors included, which the full render
            // locates) renders as a template.
        }
        Ok(vec![self.render(template, Mode::Plain, context, what)?])
    }
}

/// The expression of a template that is nothing but `{{ expression }}`.
fn single_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix('-').unwrap_or(inner);
    let inner = inner.strip_suffix('-').unwrap_or(inner);
    if ["{{", "}}", "{%", "%}", "{#", "#}"]
        .iter()
        .any(|t| inner.contains(t))
    {
        return None;
    }
    Some(inner)
}

fn too_much_text(template: &Template, what: &str) -> Error {
    Error::at(
        &template.span,
        format!(
            "the template of {what} makes too much text: a render may make at most {} MiB",
            MAX_TEXT >> 20
        ),
    )
    .with_label("this template")
    .with_help("a value here is far too long for a command; pass large data in a file")
}

/// A template error pointing at the template in the file, and at the very
/// spot when the TOML string holds the template verbatim.
pub fn template_error(template: &Template, what: &str, err: &minijinja::Error) -> Error {
    let mut span = template.span.clone();
    // minijinja marks one byte of a character it does not expect; the
    // mark covers the whole character.
    let range = err
        .range()
        .map(|r| crate::error::widen_to_chars(&template.source, r));
    if let Some(range) = range.clone() {
        let file_text = &span.file.text;
        let token = file_text.get(span.range.clone()).unwrap_or("");
        for quote in ["\"\"\"", "'''", "\"", "'"] {
            if let Some(inner) = token
                .strip_prefix(quote)
                .and_then(|t| t.strip_suffix(quote))
            {
                let inner = inner.strip_prefix('\n').unwrap_or(inner);
                if inner == template.source && range.end <= inner.len() {
                    let start = span.range.end - quote.len() - inner.len();
                    span.range = start + range.start..start + range.end;
                }
                break;
            }
        }
    }
    let detail = err
        .detail()
        .map(str::to_string)
        .unwrap_or_else(|| err.kind().to_string());
    if err.kind() == minijinja::ErrorKind::WriteFailure {
        // Only `Bounded` and the formatter's length check fail a write.
        return too_much_text(template, what);
    }
    if err.kind() == minijinja::ErrorKind::OutOfFuel {
        return Error::at(
            &span,
            format!(
                "the template of {what} does too much work: its render stopped after {FUEL} steps"
            ),
        )
        .with_label("this template")
        .with_help("a loop here runs too many times; render less, or do the work in a command");
    }
    let kind = match err.kind() {
        minijinja::ErrorKind::SyntaxError => "template syntax error",
        minijinja::ErrorKind::UndefinedError => "undefined value",
        _ => "template error",
    };
    let text = range.and_then(|r| template.source.get(r));
    let (message, label) = match text {
        Some(text) if err.kind() == minijinja::ErrorKind::UndefinedError => {
            let message = if detail == kind {
                format!("{kind} `{text}` in {what}")
            } else {
                format!("{kind} `{text}` in {what}: {detail}")
            };
            (message, format!("`{text}` is undefined"))
        }
        _ if detail == kind => (format!("{kind} in {what}"), kind.to_string()),
        _ => (format!("{kind} in {what}: {detail}"), kind.to_string()),
    };
    Error::at(&span, message).with_label(label)
}

/// The names after `|` (filters) and after `is`/`is not` (tests) inside
/// `{{ }}` and `{% %}`, skipping string literals.
fn filters_and_tests(source: &str) -> Vec<(String, &'static str)> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(open) = [rest.find("{{"), rest.find("{%")]
        .into_iter()
        .flatten()
        .min()
    {
        let inner = &rest[open + 2..];
        let close = [inner.find("}}"), inner.find("%}")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(inner.len());
        let code = strip_strings(&inner[..close]);
        let words: Vec<&str> = code
            .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '|'))
            .filter(|w| !w.is_empty())
            .collect();
        // `a|b` splits into one word: break the pipes out again.
        let mut tokens = Vec::new();
        for word in words {
            for (i, part) in word.split('|').enumerate() {
                if i > 0 {
                    tokens.push("|");
                }
                if !part.is_empty() {
                    tokens.push(part);
                }
            }
        }
        for (i, token) in tokens.iter().enumerate() {
            let next = |k: usize| tokens.get(i + k).copied();
            fn ident(t: Option<&str>) -> Option<&str> {
                t.filter(|t| {
                    t.chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                })
            }
            if *token == "|" {
                if let Some(name) = ident(next(1)) {
                    found.push((name.to_string(), "filter"));
                }
            } else if *token == "is" {
                let name = if next(1) == Some("not") {
                    next(2)
                } else {
                    next(1)
                };
                if let Some(name) = ident(name) {
                    found.push((name.to_string(), "test"));
                }
            }
        }
        rest = &inner[close..];
    }
    found
}

/// `code` with the contents of quoted strings blanked out.
fn strip_strings(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut quote = None;
    let mut escaped = false;
    for c in code.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// One value as POSIX shell words.
pub fn quote_value(value: &Value) -> String {
    if value.is_none() || value.is_undefined() {
        return "''".to_string();
    }
    if let Some(s) = value.as_str() {
        return shell_words::quote(s).into_owned();
    }
    if let Some(p) = value.downcast_object_ref::<Placeholder>() {
        return format!("<{}>", p.0);
    }
    if value.kind() == minijinja::value::ValueKind::Seq {
        if let Ok(items) = value.try_iter() {
            return items
                .map(|item| quote_value(&item))
                .collect::<Vec<_>>()
                .join(" ");
        }
    }
    shell_words::quote(&crate::model::plain_value(value)).into_owned()
}

/// Under `-n`, a value only a run would produce: prints as
/// `<tasks.NAME.field>`.
#[derive(Debug)]
pub struct Placeholder(pub String);

impl minijinja::value::Object for Placeholder {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        Some(Value::from_object(Placeholder(format!(
            "{}.{}",
            self.0, key
        ))))
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// "unknown name `x` in ...", marking the name itself in the file when the
/// template stands there verbatim, with the nearest known name suggested.
pub fn unknown_name<'a>(
    template: &Template,
    name: &str,
    known: impl IntoIterator<Item = &'a str>,
    what: &str,
) -> Error {
    let mut span = template.span.clone();
    let token = span.file.text.get(span.range.clone()).unwrap_or("");
    if let (Some(offset), Some(at)) = (
        token.find(template.source.as_str()),
        find_word(&template.source, name),
    ) {
        let start = span.range.start + offset + at;
        span.range = start..start + name.len();
    }
    Error::at(&span, format!("unknown name `{name}` in {what}"))
        .with_label("not an argument, var or template value")
        .suggest(name, known)
}

/// Where `name` occurs as a whole word.
pub fn find_word(source: &str, name: &str) -> Option<usize> {
    let bytes = source.as_bytes();
    let mut from = 0;
    while let Some(pos) = source[from..].find(name) {
        let at = from + pos;
        let end = at + name.len();
        let word = |i: usize| bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_';
        if (at == 0 || !word(at - 1) && bytes[at - 1] != b'.') && (end >= bytes.len() || !word(end))
        {
            return Some(at);
        }
        from = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{SourceFile, Span};
    use std::sync::Arc;

    fn template(source: &str) -> Template {
        let file = Arc::new(SourceFile {
            display: "t".into(),
            path: "t".into(),
            text: source.into(),
        });
        Template {
            source: source.into(),
            span: Span::new(&file, 0..source.len()),
        }
    }

    fn render(source: &str, mode: Mode, pairs: &[(&str, Value)]) -> String {
        let context = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        Engine::new()
            .render(&template(source), mode, &context, "test")
            .unwrap()
    }

    #[test]
    fn shell_mode_quotes_each_value_as_one_word() {
        let v = Value::from("x; rm -rf ~");
        assert_eq!(
            render("echo {{ v }}", Mode::Shell, &[("v", v)]),
            "echo 'x; rm -rf ~'"
        );
        let list = Value::from(vec!["a b", "c"]);
        assert_eq!(
            render("ls {{ l }}", Mode::Shell, &[("l", list)]),
            "ls 'a b' c"
        );
        assert_eq!(
            render("x {{ e }}", Mode::Shell, &[("e", Value::from(""))]),
            "x ''"
        );
        assert_eq!(
            render("n={{ n }}", Mode::Shell, &[("n", Value::from(3))]),
            "n=3"
        );
        assert_eq!(
            render(
                "{{ t }} {{ f }}",
                Mode::Shell,
                &[("t", Value::from(true)), ("f", Value::from(false))]
            ),
            "true false"
        );
    }

    #[test]
    fn safe_opts_out_of_quoting() {
        let v = Value::from("a | b");
        assert_eq!(render("{{ v | safe }}", Mode::Shell, &[("v", v)]), "a | b");
    }

    #[test]
    fn plain_and_words_modes_do_not_quote() {
        let v = Value::from("a b");
        assert_eq!(render("{{ v }}", Mode::Plain, &[("v", v.clone())]), "a b");
    }

    #[test]
    fn undefined_names_are_errors() {
        let context = BTreeMap::new();
        let err = Engine::new()
            .render(&template("{{ nope }}"), Mode::Shell, &context, "test")
            .unwrap_err();
        assert!(err.message.contains("undefined"), "{}", err.message);
    }

    #[test]
    fn finds_unknown_filters_and_tests_but_not_pipes_in_strings() {
        let engine = Engine::new();
        let found = |s: &str| engine.unknown_filter_or_test(&template(s));
        assert_eq!(
            found("{{ x | upper | join(',') }} {% if x is defined %}{% endif %}"),
            None
        );
        assert_eq!(found("{{ 'a|b' ~ \"c | d\" }}"), None);
        assert_eq!(
            found("{% if false %}{{ x|nosuch }}{% endif %}"),
            Some(("nosuch".into(), "filter"))
        );
        assert_eq!(
            found("{{ x is not nosuchtest }}"),
            Some(("nosuchtest".into(), "test"))
        );
    }

    #[test]
    fn names_lists_what_a_template_reads() {
        let names = Engine::new()
            .names(&template("{{ a }} {% for x in b %}{{ x }}{% endfor %} {{ tasks.t.stdout }} {{ range(3) }}"), "t")
            .unwrap();
        let mut names: Vec<_> = names.into_iter().collect();
        names.sort();
        assert_eq!(names, ["a", "b", "tasks.t.stdout"]);
    }
}
