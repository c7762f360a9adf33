//! justfiles, read by hand for the subset task files use: recipes with
//! parameters (`+`/`*` variadic, defaults, `$` exported), dependencies
//! with arguments and `&&` after them, aliases, `set`, `export`, `:=`
//! assignments (backticks become `sh` vars), attributes, the `@` and `-`
//! line prefixes, shebang recipes and `{{ }}` holding names, strings and
//! the common functions. Anything else is a note, never an error.

use std::collections::{HashMap, HashSet};

use super::doc::*;
use super::text::{self, Piece};

pub(crate) fn parse(source: &str, file: &str) -> Doc {
    let mut parser = Parser {
        file: file.to_string(),
        lines: source.lines().collect(),
        doc: Doc {
            source: file.to_string(),
            ..Doc::default()
        },
        vars: HashMap::new(),
        export_all: false,
        aliases: Vec::new(),
    };
    parser.run();
    parser.doc
}

struct Parser<'a> {
    file: String,
    lines: Vec<&'a str>,
    doc: Doc,
    vars: HashMap<String, VarInfo>,
    export_all: bool,
    /// `alias NAME := RECIPE`, applied once every recipe is known.
    aliases: Vec<(String, String, Place)>,
}

/// Comments and attributes waiting for the recipe below them.
#[derive(Default)]
struct Pending {
    comments: Vec<String>,
    /// The comment line right above, just's doc comment.
    doc: Option<String>,
    attrs: Vec<(String, Option<String>, Place)>,
}

impl<'a> Parser<'a> {
    fn place(&self, index: usize) -> Place {
        Place {
            file: self.file.clone(),
            line: index + 1,
        }
    }

    fn run(&mut self) {
        let mut pending = Pending::default();
        let mut i = 0;
        while i < self.lines.len() {
            let line = self.lines[i];
            let trimmed = line.trim();
            let at = self.place(i);
            i += 1;
            if trimmed.is_empty() {
                pending.doc = None;
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                if !comment.starts_with('!') {
                    pending.comments.push(comment.to_string());
                    pending.doc = Some(comment.trim().to_string());
                    continue;
                }
            }
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                for attr in split_top(&trimmed[1..trimmed.len() - 1], ',') {
                    let (name, arg) = attribute(&attr);
                    pending.attrs.push((name, arg, at.clone()));
                }
                continue;
            }
            if line.starts_with([' ', '\t']) {
                self.doc
                    .notes
                    .push(Note::new(&at, "an indented line outside any recipe"));
                continue;
            }
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            match words.as_slice() {
                ["alias", name, ":=", target, ..] => {
                    self.aliases
                        .push((name.to_string(), target.to_string(), at.clone()));
                }
                ["set", ..] => self.setting(&trimmed[3..], &at),
                ["export", rest @ ..] if rest.get(1) == Some(&":=") => {
                    self.assignment(trimmed["export".len()..].trim(), true, &at, &mut pending)
                }
                [_, ":=", ..] => self.assignment(trimmed, false, &at, &mut pending),
                ["import" | "import?" | "mod" | "mod?", ..] => self.doc.notes.push(Note::new(
                    &at,
                    format!(
                        "`{}` is not followed: import that file on its own, and [include] it",
                        words[0]
                    ),
                )),
                _ if recipe_header(trimmed) => {
                    let body_end = self.body_end(i);
                    let body = self.lines[i..body_end].to_vec();
                    let header_at = at.clone();
                    self.recipe(trimmed, &body, i, &header_at, std::mem::take(&mut pending));
                    i = body_end;
                    continue;
                }
                _ => self
                    .doc
                    .notes
                    .push(Note::new(&at, format!("not understood: `{trimmed}`"))),
            }
            pending = Pending::default();
        }
        self.apply_aliases();
    }

    /// The index past the last line of a recipe body starting at `from`:
    /// indented lines, and blank lines followed by one.
    fn body_end(&self, from: usize) -> usize {
        let mut end = from;
        let mut i = from;
        while i < self.lines.len() {
            let line = self.lines[i];
            if line.trim().is_empty() {
                i += 1;
                continue;
            }
            if !line.starts_with([' ', '\t']) {
                break;
            }
            i += 1;
            end = i;
        }
        end
    }

    fn setting(&mut self, rest: &str, at: &Place) {
        let (name, value) = match rest.split_once(":=") {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (rest.trim(), None),
        };
        let on = value.is_none_or(|v| v == "true");
        let string = || value.and_then(string_literal);
        match name {
            "shell" | "script-interpreter" => {
                let items = value.and_then(|v| {
                    let inner = v.strip_prefix('[')?.strip_suffix(']')?;
                    split_top(inner, ',')
                        .iter()
                        .map(|w| string_literal(w.trim()))
                        .collect::<Option<Vec<String>>>()
                });
                match (name, items) {
                    ("shell", Some(items)) => self.doc.shell = Some(items),
                    _ => self.doc.notes.push(Note::new(at, format!("`set {name}` left out"))),
                }
            }
            "dotenv-load" | "dotenv-required" if on => self.doc.dotenv = vec![".env".into()],
            "dotenv-filename" | "dotenv-path" => match string() {
                Some(path) => self.doc.dotenv = vec![path],
                None => self.doc.notes.push(Note::new(at, format!("`set {name}` left out"))),
            },
            "export" if on => self.export_all = true,
            "quiet" if on => self.doc.echo = Some(false),
            "dotenv-load" | "export" | "quiet" | "allow-duplicate-recipes"
            | "allow-duplicate-variables" => {}
            "windows-shell" | "windows-powershell" => self.doc.notes.push(Note::new(
                at,
                format!("`set {name}` left out: tasker does not run on Windows"),
            )),
            "positional-arguments" => self.doc.notes.push(Note::new(
                at,
                "`set positional-arguments` has no tasker equivalent: write `{{ name }}` where a recipe reads `$1`",
            )),
            _ => self.doc.notes.push(Note::new(
                at,
                format!("`set {name}` has no tasker equivalent; left out"),
            )),
        }
    }

    fn assignment(&mut self, text: &str, export: bool, at: &Place, pending: &mut Pending) {
        let Some((name, expr)) = text.split_once(":=") else {
            return;
        };
        let name = name.trim();
        let var = text::value_name(name);
        let mut notes = Vec::new();
        let scope = Scope {
            vars: &self.vars,
            params: &HashSet::new(),
        };
        let (value, splits) = match Expr::new(expr.trim(), &scope).whole() {
            Some(Term::Str(s)) => {
                let splits = text::splits(&s);
                (Value::Text(text::literal(&s)), splits)
            }
            Some(Term::Backtick(cmd)) => (Value::Sh(text::literal(&cmd)), true),
            Some(term) => match term.jinja() {
                Some(j) => (Value::Text(format!("{{{{ {j} }}}}")), true),
                None => (Value::Text(String::new()), true),
            },
            None => {
                notes.push(Note::new(
                    at,
                    format!("the value of `{name}` is not understood: `{}`", expr.trim()),
                ));
                (Value::Text(text::literal(expr.trim())), true)
            }
        };
        let text = match &value {
            Value::Text(t) if !t.contains("{{") && !t.contains("{%") => Some(t.clone()),
            _ => None,
        };
        self.vars.insert(
            name.to_string(),
            VarInfo {
                name: var.clone(),
                splits,
                text,
            },
        );
        self.doc.vars.push(Entry {
            name: var.clone(),
            value,
            comments: std::mem::take(&mut pending.comments),
            notes,
        });
        if export || self.export_all {
            self.doc.env.push(Entry {
                name: name.to_string(),
                value: Value::Text(format!("{{{{ {var} }}}}")),
                comments: Vec::new(),
                notes: Vec::new(),
            });
        }
    }

    fn apply_aliases(&mut self) {
        for (alias, target, at) in std::mem::take(&mut self.aliases) {
            match self.doc.tasks.iter_mut().find(|t| t.name == target) {
                Some(task) => task.aliases.push(text::task_name(&alias)),
                None => self.doc.notes.push(Note::new(
                    &at,
                    format!("alias `{alias}` of `{target}`, which is no recipe"),
                )),
            }
        }
    }

    fn recipe(
        &mut self,
        header: &str,
        body: &[&str],
        body_start: usize,
        at: &Place,
        pending: Pending,
    ) {
        let (quiet_recipe, header) = match header.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, header),
        };
        let name_end = header
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(header.len());
        let name = &header[..name_end];
        let mut task = Task::new(name, at);
        let (params_text, deps_text) = split_header(&header[name_end..]);
        let params = self.params(params_text, &mut task, at);
        let scope = Scope {
            vars: &self.vars,
            params: &params,
        };
        self.deps(deps_text, &scope, &mut task, at);
        apply_attributes(&mut task, name, pending.attrs, &mut self.doc.notes);
        task.comments = pending.comments;
        if task.help.is_none() {
            if let Some(doc) = pending.doc {
                task.comments.pop();
                task.help = Some(doc);
            }
        }
        let lines: Vec<(usize, &str)> = body
            .iter()
            .enumerate()
            .map(|(k, l)| (body_start + k, *l))
            .collect();
        let indent: String = lines
            .iter()
            .find(|(_, l)| !l.trim().is_empty())
            .map(|(_, l)| l.chars().take_while(|c| *c == ' ' || *c == '\t').collect())
            .unwrap_or_default();
        let shebang = lines
            .iter()
            .find(|(_, l)| !l.trim().is_empty())
            .is_some_and(|(_, l)| l.trim_start().starts_with("#!"));
        if shebang || task.shell.is_some() {
            self.script(&mut task, &lines, &indent, &scope);
        } else {
            self.linewise(&mut task, &lines, quiet_recipe, &scope);
        }
        if self.doc.default.is_none() && !task.private && !name.starts_with('_') {
            self.doc.default = Some(name.to_string());
        }
        self.doc.tasks.push(task);
    }

    /// Parameters become positional arguments; their tasker names.
    fn params(&self, text: &str, task: &mut Task, at: &Place) -> HashSet<String> {
        let mut names = HashSet::new();
        for word in split_top(text, ' ') {
            let word = word.trim();
            if word.is_empty() {
                continue;
            }
            let (variadic, word) = match word.strip_prefix(['+', '*']) {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            let (exported, word) = match word.strip_prefix('$') {
                Some(rest) => (true, rest),
                None => (false, word),
            };
            let (name, default) = match word.split_once('=') {
                Some((n, d)) => (n, Some(d)),
                None => (word, None),
            };
            let arg_name = text::value_name(name);
            let scope = Scope {
                vars: &self.vars,
                params: &names,
            };
            let default = match default.map(|d| Expr::new(d, &scope).whole()) {
                None => None,
                Some(Some(Term::Str(s))) => Some(text::literal(&s)),
                Some(Some(Term::Name(var)))
                    if scope.text_of(&var).is_some() && !KEYS.default_templates =>
                {
                    scope.text_of(&var).map(str::to_string)
                }
                Some(Some(term @ (Term::Name(_) | Term::Jinja(_)))) => {
                    if !KEYS.default_templates {
                        task.notes.push(Note::new(
                            at,
                            format!("the default of `{name}` is computed; tasker does not render a template default yet"),
                        ));
                    }
                    term.jinja().map(|j| format!("{{{{ {j} }}}}"))
                }
                Some(_) => {
                    task.notes.push(Note::new(
                        at,
                        format!("the default of `{name}` is not understood; it is left empty"),
                    ));
                    Some(String::new())
                }
            };
            if exported || self.export_all {
                let value = if variadic {
                    format!("{{{{ {arg_name} | join(' ') }}}}")
                } else {
                    format!("{{{{ {arg_name} }}}}")
                };
                task.env.push((name.to_string(), value));
            }
            task.args.push(Arg {
                name: arg_name.clone(),
                kind: if variadic {
                    ArgType::List
                } else {
                    ArgType::String
                },
                positional: true,
                default,
                help: None,
                choices: Vec::new(),
            });
            names.insert(name.to_string());
        }
        names
    }

    fn deps(&self, text: &str, scope: &Scope, task: &mut Task, at: &Place) {
        let mut after = false;
        for word in split_top(text, ' ') {
            let word = word.trim();
            if word.is_empty() {
                continue;
            }
            if word == "&&" {
                after = true;
                continue;
            }
            let call = match word.strip_prefix('(').and_then(|w| w.strip_suffix(')')) {
                Some(inner) => {
                    let parts = split_top(inner.trim(), ' ');
                    let mut parts = parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty());
                    let mut call = parts.next().unwrap_or("").to_string();
                    for arg in parts {
                        match Expr::new(arg, scope).whole() {
                            Some(Term::Str(s)) => {
                                call.push(' ');
                                call.push_str(&text::literal(&text::call_word(&s)));
                            }
                            Some(term) if term.jinja().is_some() => {
                                call.push_str(&format!(
                                    " {{{{ {} }}}}",
                                    term.jinja().unwrap_or_default()
                                ));
                            }
                            _ => task.notes.push(Note::new(
                                at,
                                format!("an argument of a dependency is not understood: `{arg}`"),
                            )),
                        }
                    }
                    call
                }
                None => word.to_string(),
            };
            if after {
                task.post.push(call);
            } else {
                task.deps.push(call);
            }
        }
    }

    /// A shebang recipe (or `[script]`): one script, with its interpreter
    /// as the task's shell.
    fn script(&self, task: &mut Task, lines: &[(usize, &str)], indent: &str, scope: &Scope) {
        let mut lines = lines.to_vec();
        while lines.last().is_some_and(|(_, l)| l.trim().is_empty()) {
            lines.pop();
        }
        let mut posix = true;
        if let Some(first) = lines.iter().position(|(_, l)| !l.trim().is_empty()) {
            let (i, line) = lines[first];
            if let Some(shebang) = line.trim().strip_prefix("#!") {
                let at = self.place(i);
                match interpreter(shebang) {
                    Some((shell, is_posix)) => {
                        task.shell = Some(shell);
                        posix = is_posix;
                    }
                    None => task.notes.push(Note::new(
                        &at,
                        format!(
                            "the interpreter `#!{}` is not known: set the task's `shell` by hand",
                            shebang.trim()
                        ),
                    )),
                }
                lines.drain(..=first);
            }
        }
        if let Some(shell) = &task.shell {
            posix = is_posix_shell(&shell[0]);
        }
        let mut script = String::new();
        for (i, line) in &lines {
            let line = line.strip_prefix(indent).unwrap_or(line.trim_start());
            script.push_str(&self.interpolate(line, scope, posix, &mut task.notes, *i));
            script.push('\n');
        }
        task.run = vec![Step::sh(script)];
    }

    fn linewise(
        &self,
        task: &mut Task,
        lines: &[(usize, &str)],
        quiet_recipe: bool,
        scope: &Scope,
    ) {
        let mut k = 0;
        while k < lines.len() {
            let (i, first) = lines[k];
            k += 1;
            let mut line = first.trim().to_string();
            if line.is_empty() {
                continue;
            }
            // A line ending in `\` goes on on the next one.
            while line.ends_with('\\') && k < lines.len() {
                line.push('\n');
                line.push_str(lines[k].1.trim());
                k += 1;
            }
            if line.starts_with('#') {
                continue;
            }
            let mut quiet = quiet_recipe;
            let mut ignore = false;
            loop {
                if let Some(rest) = line.strip_prefix('@') {
                    quiet = !quiet_recipe;
                    line = rest.to_string();
                } else if let Some(rest) = line.strip_prefix('-') {
                    ignore = true;
                    line = rest.to_string();
                } else {
                    break;
                }
            }
            let mut notes = Vec::new();
            let mut step = match just_call(&line) {
                Some(step) => step,
                None => Step::sh(self.interpolate(&line, scope, true, &mut notes, i)),
            };
            step.quiet = quiet && matches!(step.kind, StepKind::Sh(_));
            step.ignore_failure = ignore;
            step.notes = notes;
            task.run.push(step);
        }
    }

    /// A recipe line with its `{{ }}` made tasker's.
    fn interpolate(
        &self,
        line: &str,
        scope: &Scope,
        posix: bool,
        notes: &mut Vec<Note>,
        index: usize,
    ) -> String {
        let mut pieces = Vec::new();
        let mut rest = line;
        while let Some(open) = rest.find("{{") {
            if rest[open..].starts_with("{{{{") {
                pieces.push(Piece::Text(format!("{}{{{{", &rest[..open])));
                rest = &rest[open + 4..];
                continue;
            }
            let Some(close) = rest[open..].find("}}") else {
                break;
            };
            pieces.push(Piece::Text(rest[..open].to_string()));
            let inner = rest[open + 2..open + close].trim();
            rest = &rest[open + close + 2..];
            match Expr::new(inner, scope).whole() {
                Some(Term::Str(s)) => pieces.push(Piece::Text(s)),
                Some(Term::Name(name)) => {
                    let splits = scope.splits(&name);
                    pieces.push(Piece::Value { expr: name, splits })
                }
                Some(Term::Jinja(expr)) => pieces.push(Piece::Value { expr, splits: true }),
                Some(Term::Quoted(expr)) => pieces.push(Piece::Value {
                    expr,
                    splits: false,
                }),
                _ => {
                    notes.push(Note::new(
                        &self.place(index),
                        format!("`{{{{ {inner} }}}}` is not understood; kept as text"),
                    ));
                    pieces.push(Piece::Text(format!("{{{{ {inner} }}}}")));
                }
            }
        }
        pieces.push(Piece::Text(rest.to_string()));
        text::command(&pieces, posix)
    }
}

/// `just NAME ARGS` in a recipe: a call of that task. `just --list`
/// becomes tasker's.
fn just_call(line: &str) -> Option<Step> {
    let words = shell_words::split(line).ok()?;
    let (first, rest) = words.split_first()?;
    if first != "just" || rest.is_empty() {
        return None;
    }
    if matches!(rest, [l] if l == "--list" || l == "-l") {
        return Some(Step::sh("tasker --list"));
    }
    if rest.iter().any(|w| w.starts_with('-')) || line.contains(['$', '{', '`', '|', ';', '&', '>'])
    {
        return None;
    }
    Some(Step::task(
        rest.iter()
            .map(|w| text::literal(&text::call_word(w)))
            .collect::<Vec<_>>()
            .join(" "),
    ))
}

/// The shell of a shebang line, and whether it speaks POSIX shell.
fn interpreter(shebang: &str) -> Option<(Vec<String>, bool)> {
    let mut words: Vec<String> = shebang.split_whitespace().map(str::to_string).collect();
    if words.first().is_some_and(|w| w.ends_with("/env")) {
        words.remove(0);
        if words.first().is_some_and(|w| w == "-S") {
            words.remove(0);
        }
    }
    let program = words.first()?.clone();
    let base = program.rsplit('/').next().unwrap_or(&program).to_string();
    let flag = match base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.') {
        "sh" | "bash" | "zsh" | "dash" | "ksh" | "fish" | "python" | "pypy" => "-c",
        "node" | "perl" | "ruby" | "deno" => "-e",
        "pwsh" | "powershell" => "-Command",
        _ => return None,
    };
    words.push(flag.to_string());
    let posix = is_posix_shell(&program);
    Some((words, posix))
}

fn is_posix_shell(program: &str) -> bool {
    let base = program.rsplit('/').next().unwrap_or(program);
    matches!(base, "sh" | "bash" | "zsh" | "dash" | "ksh")
}

/// Whether a line starts a recipe: a name, then parameters, then a `:`
/// that is not `:=`.
fn recipe_header(line: &str) -> bool {
    let line = line.strip_prefix('@').unwrap_or(line);
    if !line.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return false;
    }
    let (_, rest) = split_header(line);
    let colon = find_top(line, ':');
    colon.is_some() && !line[colon.unwrap_or(0)..].starts_with(":=") && rest.len() < line.len()
}

/// A header after the name, split at its top-level `:` into parameters
/// and dependencies.
fn split_header(text: &str) -> (&str, &str) {
    match find_top(text, ':') {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    }
}

/// The first `c` outside quotes and parentheses.
fn find_top(text: &str, c: char) -> Option<usize> {
    let mut depth = 0;
    let mut quote: Option<char> = None;
    for (i, ch) in text.char_indices() {
        match (quote, ch) {
            (Some(q), _) if ch == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(ch),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, _) if ch == c && depth == 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// `text` split at each top-level `sep` (outside quotes and parentheses;
/// around `=` a separator is no separator, as in `name = 'x'`).
fn split_top(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    for (k, &ch) in chars.iter().enumerate() {
        match (quote, ch) {
            (Some(q), _) if ch == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(ch),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, _) if ch == sep && depth == 0 => {
                let next = chars[k + 1..].iter().find(|c| **c != sep);
                let glued = sep == ' ' && (current.trim_end().ends_with('=') || next == Some(&'='));
                if !glued {
                    parts.push(std::mem::take(&mut current));
                    continue;
                }
                if sep == ' ' {
                    continue;
                }
            }
            _ => {}
        }
        current.push(ch);
    }
    parts.push(current);
    parts
}

/// An attribute: its name, and its argument when it has one
/// (`group('dev')`, `group: 'dev'`).
fn attribute(text: &str) -> (String, Option<String>) {
    let text = text.trim();
    if let Some(open) = text.find('(') {
        let arg = text[open + 1..].trim_end_matches(')').trim();
        return (text[..open].trim().to_string(), string_literal(arg));
    }
    if let Some((name, arg)) = text.split_once(':') {
        return (name.trim().to_string(), string_literal(arg.trim()));
    }
    (text.to_string(), None)
}

fn apply_attributes(
    task: &mut Task,
    name: &str,
    attrs: Vec<(String, Option<String>, Place)>,
    notes: &mut Vec<Note>,
) {
    for (attr, arg, at) in attrs {
        match (attr.as_str(), arg) {
            ("private", _) => task.private = true,
            ("group", Some(group)) => task.group = Some(group),
            ("doc", Some(doc)) => task.help = Some(doc),
            ("confirm", Some(question)) => task.confirm = Some(text::literal(&question)),
            ("confirm", None) => task.confirm = Some(format!("Run recipe `{name}`?")),
            ("no-cd", _) => task.dir = Some("{{ invocation_dir }}".into()),
            ("working-directory", Some(dir)) => task.dir = Some(text::literal(&dir)),
            ("linux" | "macos" | "unix" | "windows", _) => task.platforms.push(attr.clone()),
            ("script", Some(interp)) => {
                let mut shell: Vec<String> =
                    interp.split_whitespace().map(str::to_string).collect();
                shell.push("-c".into());
                task.shell = Some(shell);
            }
            ("no-exit-message" | "no-quiet" | "exit-message" | "parallel" | "default", _) => {}
            (other, _) => notes.push(Note::new(
                &at,
                format!("attribute `[{other}]` of recipe `{name}` has no tasker equivalent"),
            )),
        }
    }
}

/// A just string literal's value: `'raw'`, `"escaped"`.
fn string_literal(text: &str) -> Option<String> {
    let text = text.trim();
    if text.len() >= 2 && text.starts_with('\'') && text.ends_with('\'') {
        return Some(text[1..text.len() - 1].to_string());
    }
    if text.len() >= 2 && text.starts_with('"') && text.ends_with('"') {
        let mut out = String::new();
        let mut chars = text[1..text.len() - 1].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        return Some(out);
    }
    None
}

/// The names an expression may read: the recipe's parameters and the
/// file's vars.
struct Scope<'s> {
    vars: &'s HashMap<String, VarInfo>,
    params: &'s HashSet<String>,
}

impl Scope<'_> {
    fn resolve(&self, name: &str) -> Option<String> {
        if self.params.contains(name) {
            return Some(text::value_name(name));
        }
        self.vars.get(name).map(|v| v.name.clone())
    }

    /// The value of a var written as plain text, by its tasker name.
    fn text_of(&self, tasker_name: &str) -> Option<&str> {
        self.vars
            .values()
            .find(|v| v.name == tasker_name)
            .and_then(|v| v.text.as_deref())
    }

    /// Whether the value of the name (a tasker name) is split by the
    /// shell: a var whose value has blanks, a backtick's output.
    fn splits(&self, tasker_name: &str) -> bool {
        self.vars
            .values()
            .find(|v| v.name == tasker_name)
            .is_some_and(|v| v.splits)
    }
}

/// A var of the justfile.
struct VarInfo {
    /// Its tasker name.
    name: String,
    /// Whether the shell splits its value (blanks, a backtick's output).
    splits: bool,
    /// Its value, when it is plain text.
    text: Option<String>,
}

/// What an expression is, once read.
enum Term {
    Str(String),
    Backtick(String),
    /// A parameter or var, by its tasker name.
    Name(String),
    /// A Jinja expression whose value the shell would split.
    Jinja(String),
    /// A Jinja expression for a value just quoted itself (`quote(x)`).
    Quoted(String),
}

impl Term {
    fn jinja(&self) -> Option<String> {
        match self {
            Term::Str(s) => Some(jinja_string(s)),
            Term::Backtick(_) => None,
            Term::Name(n) | Term::Jinja(n) | Term::Quoted(n) => Some(n.clone()),
        }
    }
}

fn jinja_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// A just expression read into a `Term`: strings, backticks, names,
/// `+` and `/`, parentheses and the common functions. `None`: something
/// else, which the caller notes.
struct Expr<'e, 's> {
    text: &'e str,
    at: usize,
    scope: &'e Scope<'s>,
}

impl<'e, 's> Expr<'e, 's> {
    fn new(text: &'e str, scope: &'e Scope<'s>) -> Self {
        Expr { text, at: 0, scope }
    }

    /// The whole text as one expression.
    fn whole(mut self) -> Option<Term> {
        let term = self.expr()?;
        self.blanks();
        (self.at == self.text.len()).then_some(term)
    }

    fn blanks(&mut self) {
        while self.text[self.at..].starts_with([' ', '\t']) {
            self.at += 1;
        }
    }

    fn eat(&mut self, s: &str) -> bool {
        self.blanks();
        if self.text[self.at..].starts_with(s) {
            self.at += s.len();
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Term> {
        let mut left = self.term()?;
        loop {
            let joiner = if self.eat("+") {
                " ~ "
            } else if self.eat("/") {
                " ~ '/' ~ "
            } else {
                return Some(left);
            };
            let right = self.term()?;
            left = match (left, right) {
                (Term::Str(a), Term::Str(b)) if joiner == " ~ " => Term::Str(a + &b),
                (a, b) => Term::Jinja(format!("{}{joiner}{}", a.jinja()?, b.jinja()?)),
            };
        }
    }

    fn term(&mut self) -> Option<Term> {
        self.blanks();
        let rest = &self.text[self.at..];
        let first = rest.chars().next()?;
        if first == '(' {
            self.at += 1;
            let inner = self.expr()?;
            return self.eat(")").then_some(inner);
        }
        if matches!(first, '\'' | '"' | '`') {
            let close = rest[1..].find(first)? + 1;
            let quoted = &rest[..=close];
            self.at += close + 1;
            return match first {
                '`' => Some(Term::Backtick(quoted[1..close].to_string())),
                _ => string_literal(quoted).map(Term::Str),
            };
        }
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(rest.len());
        if len == 0 {
            return None;
        }
        let name = &rest[..len];
        self.at += len;
        if !self.eat("(") {
            return self.scope.resolve(name).map(Term::Name);
        }
        let mut args = Vec::new();
        if !self.eat(")") {
            loop {
                args.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                if !self.eat(",") {
                    return None;
                }
            }
        }
        call(name, args)
    }
}

/// just's functions that tasker's templates can say.
fn call(name: &str, args: Vec<Term>) -> Option<Term> {
    let jinja: Vec<Option<String>> = args.iter().map(Term::jinja).collect();
    let arg = |k: usize| jinja.get(k).cloned().flatten();
    let env_of = |k: usize| match args.get(k) {
        Some(Term::Str(var))
            if !var.is_empty() && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            Some(format!("env.{var}"))
        }
        Some(_) => Some(format!("env[{}]", arg(k)?)),
        None => None,
    };
    let out = match (name, args.len()) {
        ("justfile_directory" | "justfile_dir" | "source_directory", 0) => "root".to_string(),
        ("invocation_directory" | "invocation_dir", 0) => "invocation_dir".to_string(),
        ("os", 0) => "os".to_string(),
        ("arch", 0) => "arch".to_string(),
        ("os_family", 0) => "'unix'".to_string(),
        ("env_var" | "env", 1) => env_of(0)?,
        ("env_var_or_default" | "env", 2) => format!("{} | default({})", env_of(0)?, arg(1)?),
        ("uppercase", 1) => format!("({}) | upper", arg(0)?),
        ("lowercase", 1) => format!("({}) | lower", arg(0)?),
        ("trim", 1) => format!("({}) | trim", arg(0)?),
        ("replace", 3) => format!("({}) | replace({}, {})", arg(0)?, arg(1)?, arg(2)?),
        ("join", _) if !args.is_empty() => jinja
            .iter()
            .cloned()
            .collect::<Option<Vec<_>>>()?
            .join(" ~ '/' ~ "),
        ("quote", 1) => return Some(Term::Quoted(arg(0)?)),
        _ => return None,
    };
    Some(Term::Jinja(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_into_parameters_and_dependencies() {
        assert!(recipe_header(
            "build target='x y' +flags: (dep 'a:b') other"
        ));
        assert!(!recipe_header("version := '1'"));
        assert!(recipe_header("@test:"));
        assert_eq!(
            split_top("target = 'x y' +flags $port=\"80\"", ' '),
            ["target='x y'", "+flags", "$port=\"80\""]
        );
        assert_eq!(
            split_header(" a: (dep 'x:y') && post"),
            (" a", " (dep 'x:y') && post")
        );
    }

    #[test]
    fn expressions_become_tasker_expressions() {
        let vars = HashMap::from([(
            "version".to_string(),
            VarInfo {
                name: "version".into(),
                splits: false,
                text: None,
            },
        )]);
        let params = HashSet::from(["target".to_string()]);
        let scope = Scope {
            vars: &vars,
            params: &params,
        };
        let jinja = |t: &str| Expr::new(t, &scope).whole().and_then(|t| t.jinja());
        assert_eq!(jinja("target"), Some("target".into()));
        assert_eq!(jinja("'v' + version"), Some("'v' ~ version".into()));
        assert_eq!(
            jinja("justfile_directory() / 'out'"),
            Some("root ~ '/' ~ 'out'".into())
        );
        assert_eq!(
            jinja("env_var_or_default('HOME', '/tmp')"),
            Some("env.HOME | default('/tmp')".into())
        );
        assert_eq!(jinja("sha256_file('x')"), None);
        assert_eq!(jinja("unknown"), None);
        assert_eq!(
            interpreter("/usr/bin/env python3"),
            Some((vec!["python3".into(), "-c".into()], false))
        );
    }
}
