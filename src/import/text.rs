//! Text that every parser produces the same way: names tasker accepts, and
//! command lines whose values are tasker templates. Other runners insert a
//! value as plain text, which the shell then splits; tasker quotes it. A
//! value keeps tasker's quoting where the result is the same, and opts out
//! with `| safe` where the original relied on the shell splitting it.

use std::collections::HashSet;

/// Names a template has in scope besides args and vars, and words Jinja
/// keeps for itself: an argument or var of that name is renamed.
const TAKEN_NAMES: &[&str] = &[
    "env",
    "tasks",
    "extra",
    "root",
    "invocation_dir",
    "task",
    "os",
    "arch",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
    "and",
    "or",
    "not",
    "in",
    "is",
    "if",
    "else",
    "loop",
    "self",
];

/// A task name tasker accepts for `name`: letters, digits, `_` and `-`,
/// every other run of characters (`:`, `/`, `.`) a `-`.
pub(crate) fn task_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    match out.chars().next() {
        None => "task".to_string(),
        Some(c) if c.is_ascii_alphabetic() || c == '_' => out,
        Some(_) => format!("_{out}"),
    }
}

/// An argument or var name tasker accepts for `name`.
pub(crate) fn value_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if TAKEN_NAMES.contains(&out.as_str()) {
        out.push('_');
    }
    out
}

/// `name`, or `name-2`, `name-3`... when it is taken; the result is taken.
pub(crate) fn unique(name: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut n = 2;
    while taken.contains(&candidate) {
        candidate = format!("{name}-{n}");
        n += 1;
    }
    taken.insert(candidate.clone());
    candidate
}

/// `text` as literal template text: the openers of Jinja tags (`{{`, `{%`,
/// `{#`, as in `${#list}` or `--format '{{.Id}}'`) are written as values.
pub(crate) fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        match after.chars().next() {
            Some(c @ ('{' | '%' | '#')) => {
                out.push_str(&format!("{{{{ '{{{c}' | safe }}}}"));
                rest = &after[1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// One piece of a command line: text as written, or a value the original
/// runner inserted there.
#[derive(Clone, Debug)]
pub(crate) enum Piece {
    Text(String),
    Value {
        /// A tasker expression: `name`, `env.HOME`, `extra`.
        expr: String,
        /// The original relied on the shell splitting the value into
        /// words (a var holding `-O2 -Wall`): inserted as it is.
        splits: bool,
    },
    /// Template text already in tasker's syntax, written as it is.
    Template(String),
}

/// The template for a command line made of `pieces`. `posix`: the text is
/// a POSIX shell command (else, a script in another language, every value
/// goes in as it is, as the original inserted it).
pub(crate) fn command(pieces: &[Piece], posix: bool) -> String {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    // A closing quote to drop at the start of the next text: the value
    // before it was alone in its quotes, and tasker quotes it itself.
    let mut drop_quote: Option<char> = None;
    for (i, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => {
                let text = match drop_quote.take() {
                    Some(q) => {
                        quote = None;
                        &text[q.len_utf8()..]
                    }
                    None => text.as_str(),
                };
                quote = scan_quotes(text, quote);
                out.push_str(&literal(text));
            }
            Piece::Template(text) => out.push_str(text),
            Piece::Value { expr, splits } => {
                let alone = quote.filter(|q| {
                    out.ends_with(*q)
                        && opened_last(&out, *q)
                        && match pieces.get(i + 1) {
                            Some(Piece::Text(next)) => closes_word(next, *q),
                            _ => false,
                        }
                });
                if !posix {
                    out.push_str(&format!("{{{{ {expr} | safe }}}}"));
                } else if let Some(q) = alone {
                    out.pop();
                    drop_quote = Some(q);
                    out.push_str(&format!("{{{{ {expr} }}}}"));
                } else if quote.is_some() || *splits {
                    out.push_str(&format!("{{{{ {expr} | safe }}}}"));
                } else {
                    out.push_str(&format!("{{{{ {expr} }}}}"));
                }
            }
        }
    }
    out
}

/// Whether the quote `q` that ends `out` opened there and starts a word
/// (so dropping it and its closing quote leaves the value a word alone).
fn opened_last(out: &str, q: char) -> bool {
    let before = &out[..out.len() - q.len_utf8()];
    before.is_empty() || before.ends_with(|c: char| c.is_whitespace() || "=;&|(".contains(c))
}

/// Whether `text` starts with the closing quote `q` and a word ends there.
fn closes_word(text: &str, q: char) -> bool {
    let Some(rest) = text.strip_prefix(q) else {
        return false;
    };
    rest.is_empty() || rest.starts_with(|c: char| c.is_whitespace() || ";&|)".contains(c))
}

/// The quote open after `text`, given the one open before it.
fn scan_quotes(text: &str, mut quote: Option<char>) -> Option<char> {
    let mut escaped = false;
    for c in text.chars() {
        match (quote, c) {
            _ if escaped => escaped = false,
            (Some('\''), '\'') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '"') => quote = None,
            (None, '"' | '\'') => quote = Some(c),
            _ => {}
        }
    }
    quote
}

/// Whether a static value would be split by the shell or read specially
/// by it: such a value is inserted as it is.
pub(crate) fn splits(value: &str) -> bool {
    value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || "'\"\\$`*?[]<>|&;()~#{}".contains(c))
}

/// `word` as one word of a task call (quoted when it needs to be).
pub(crate) fn call_word(word: &str) -> String {
    shell_words::quote(word).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Piece {
        Piece::Text(t.to_string())
    }

    fn value(expr: &str, splits: bool) -> Piece {
        Piece::Value {
            expr: expr.to_string(),
            splits,
        }
    }

    #[test]
    fn names_become_names_tasker_takes() {
        assert_eq!(task_name("lint:fix"), "lint-fix");
        assert_eq!(task_name("build/app.o"), "build-app-o");
        assert_eq!(task_name("2fast"), "_2fast");
        assert_eq!(task_name(":::"), "task");
        assert_eq!(value_name("out-dir"), "out_dir");
        assert_eq!(value_name("os"), "os_");
        assert_eq!(value_name("1x"), "_1x");
        let mut taken = HashSet::new();
        assert_eq!(unique("a".into(), &mut taken), "a");
        assert_eq!(unique("a".into(), &mut taken), "a-2");
    }

    #[test]
    fn literal_text_keeps_jinja_openers_as_text() {
        assert_eq!(literal("echo ${#a}"), "echo ${{ '{#' | safe }}a}");
        assert_eq!(
            literal("docker inspect -f '{{.Id}}'"),
            "docker inspect -f '{{ '{{' | safe }}.Id}}'"
        );
        assert_eq!(literal("a {x} b"), "a {x} b");
    }

    #[test]
    fn a_value_alone_in_quotes_loses_them_and_one_among_text_is_safe() {
        let pieces = [text("echo \""), value("name", false), text("\" done")];
        assert_eq!(command(&pieces, true), "echo {{ name }} done");
        let pieces = [text("echo \"hi "), value("name", false), text("\"")];
        assert_eq!(command(&pieces, true), "echo \"hi {{ name | safe }}\"");
        let pieces = [text("cc "), value("CFLAGS", true), text(" -c")];
        assert_eq!(command(&pieces, true), "cc {{ CFLAGS | safe }} -c");
        let pieces = [text("print('"), value("x", false), text("')")];
        assert_eq!(command(&pieces, false), "print('{{ x | safe }}')");
    }
}
