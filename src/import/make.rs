//! Makefiles, read by hand for the subset task files use: variables (`=`,
//! `:=`, `?=`, `+=`, `$(shell)`, `$(wildcard)`), phony and file targets
//! with prerequisites, recipes with `@` and `-`, `$(VAR)`, `${VAR}`, `$@`,
//! `$<`, `$^`, `$$`, conditionals (decided at import time, as make would
//! in a clean environment) and `include`. Pattern rules, `define` and the
//! less common functions become notes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::doc::*;
use super::text::{self, Piece};

/// How deep `include` may nest before it is taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

pub(crate) fn parse(source: &str, file: &str, path: &Path) -> Doc {
    let mut make = Make {
        doc: Doc {
            source: file.to_string(),
            ..Doc::default()
        },
        vars: Vec::new(),
        rules: Vec::new(),
        phony: HashSet::new(),
        silent: false,
        default_goal: None,
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    make.read(source, file, &dir, 0);
    make.finish()
}

/// A variable as the Makefile left it.
struct Var {
    name: String,
    /// Its text as written, `$(X)` and all.
    raw: String,
    /// `?=`: the environment wins.
    from_env_first: bool,
    exported: bool,
    at: Place,
}

/// One target of a rule (a rule with several targets gives several).
struct Rule {
    target: String,
    prereqs: Vec<String>,
    recipe: Vec<(String, Place)>,
    comments: Vec<String>,
    help: Option<String>,
    notes: Vec<Note>,
    at: Place,
}

struct Make {
    doc: Doc,
    vars: Vec<Var>,
    rules: Vec<Rule>,
    phony: HashSet<String>,
    silent: bool,
    default_goal: Option<String>,
}

/// One open conditional: whether its branch is the one kept, and whether
/// a branch of it was kept already.
struct Cond {
    active: bool,
    taken: bool,
}

/// The logical line starting at `lines[*i]`: physical lines joined at a
/// trailing `\` (kept as line breaks in a recipe); `i` moves past it.
fn logical_line(lines: &[&str], i: &mut usize, is_recipe: bool) -> String {
    let mut line = lines[*i].to_string();
    *i += 1;
    while line.ends_with('\\') && *i < lines.len() {
        if is_recipe {
            line.push('\n');
            line.push_str(lines[*i].strip_prefix('\t').unwrap_or(lines[*i]));
        } else {
            line.pop();
            line.push(' ');
            line.push_str(lines[*i].trim_start());
        }
        *i += 1;
    }
    line
}

impl Make {
    fn var(&self, name: &str) -> Option<&Var> {
        self.vars.iter().find(|v| v.name == name)
    }

    fn read(&mut self, source: &str, file: &str, dir: &Path, depth: usize) {
        let lines: Vec<&str> = source.lines().collect();
        let mut comments: Vec<String> = Vec::new();
        let mut conds: Vec<Cond> = Vec::new();
        // The rules the recipe lines below belong to (`Some(empty)`: a
        // rule left out, whose recipe goes nowhere).
        let mut current: Option<Vec<usize>> = None;
        let mut i = 0;
        while i < lines.len() {
            let at = Place {
                file: file.to_string(),
                line: i + 1,
            };
            let is_recipe = lines[i].starts_with('\t') && current.is_some();
            let line = logical_line(&lines, &mut i, is_recipe);
            let active = conds.iter().all(|c| c.active);
            let trimmed = line.trim();
            if let Some(word) = conditional_word(trimmed) {
                self.conditional(word, trimmed, &at, &mut conds, active);
                continue;
            }
            if !active {
                continue;
            }
            if is_recipe {
                let command = line[1..].to_string();
                for &r in current.iter().flatten() {
                    self.rules[r].recipe.push((command.clone(), at.clone()));
                }
                continue;
            }
            if trimmed.is_empty() {
                if !comments.is_empty() {
                    comments.push(String::new());
                }
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                comments.push(comment.to_string());
                continue;
            }
            current = None;
            let words: Vec<&str> = trimmed.split_whitespace().collect();
            if self.directive(&words, &lines, &mut i, dir, &at, depth) {
                if words[0].ends_with("include") {
                    comments.clear();
                }
                continue;
            }
            let (exported, body) = match trimmed.strip_prefix("export ") {
                Some(rest) => (true, rest.trim()),
                None => (
                    false,
                    trimmed.strip_prefix("override ").unwrap_or(trimmed).trim(),
                ),
            };
            if let Some((name, op, value)) = assignment(body) {
                self.assign(name, op, value, exported, &at);
                comments.clear();
                continue;
            }
            if exported {
                for name in body.split_whitespace() {
                    if let Some(var) = self.vars.iter_mut().find(|v| v.name == name) {
                        var.exported = true;
                    }
                }
                continue;
            }
            match self.rule(body, &at, std::mem::take(&mut comments)) {
                Some(rules) => current = Some(rules),
                None => self
                    .doc
                    .notes
                    .push(Note::new(&at, format!("not understood: `{trimmed}`"))),
            }
        }
    }

    /// `include`, `define` (skipped to its `endef`, at `i`) and the
    /// directives tasker has no equivalent for; `false` when `words` are
    /// none of them.
    fn directive(
        &mut self,
        words: &[&str],
        lines: &[&str],
        i: &mut usize,
        dir: &Path,
        at: &Place,
        depth: usize,
    ) -> bool {
        match words[0] {
            "include" | "-include" | "sinclude" => {
                let optional = words[0] != "include";
                for name in &words[1..] {
                    self.include(name, optional, dir, at, depth);
                }
            }
            "define" => {
                self.doc.notes.push(Note::new(
                    at,
                    format!(
                        "`define {}` is left out: write the value as a var by hand",
                        words.get(1).unwrap_or(&"")
                    ),
                ));
                while *i < lines.len() && lines[*i].trim() != "endef" {
                    *i += 1;
                }
                *i += 1;
            }
            "unexport" | "vpath" | "VPATH" => {
                self.doc.notes.push(Note::new(
                    at,
                    format!("`{}` has no tasker equivalent", words[0]),
                ));
            }
            _ => return false,
        }
        true
    }

    fn conditional(
        &mut self,
        word: &str,
        line: &str,
        at: &Place,
        conds: &mut Vec<Cond>,
        active: bool,
    ) {
        match word {
            "endif" => {
                conds.pop();
            }
            "else" => {
                let rest = line["else".len()..].trim();
                let Some(cond) = conds.last_mut() else {
                    return;
                };
                if cond.taken {
                    cond.active = false;
                } else if rest.is_empty() {
                    cond.active = true;
                    cond.taken = true;
                } else {
                    let holds = self.holds(rest).unwrap_or(false);
                    cond.active = holds;
                    cond.taken = holds;
                }
            }
            _ => {
                let holds = match self.holds(line) {
                    Some(holds) => holds,
                    None => {
                        if active {
                            self.doc.notes.push(Note::new(
                                at,
                                format!("`{line}` cannot be decided at import time; its first branch is kept"),
                            ));
                        }
                        true
                    }
                };
                if active {
                    self.doc.notes.push(Note::new(
                        at,
                        format!(
                            "`{line}` was decided at import time: the {} branch is kept",
                            if holds { "first" } else { "other" }
                        ),
                    ));
                }
                conds.push(Cond {
                    active: holds,
                    taken: holds,
                });
            }
        }
    }

    /// Whether `ifeq (a,b)`, `ifdef X`... holds, as make would decide it
    /// in an empty environment; `None` when it reads what only a run knows.
    fn holds(&self, line: &str) -> Option<bool> {
        let (word, rest) = line.split_once(char::is_whitespace)?;
        let rest = rest.trim();
        match word {
            "ifdef" | "ifndef" => {
                let defined = self.var(rest).is_some_and(|v| !v.raw.is_empty());
                Some(defined == (word == "ifdef"))
            }
            "ifeq" | "ifneq" => {
                let inner = rest.strip_prefix('(')?.strip_suffix(')')?;
                let (a, b) = split_comma(inner)?;
                let same = self.expand(a.trim(), 0)? == self.expand(b.trim(), 0)?;
                Some(same == (word == "ifeq"))
            }
            _ => None,
        }
    }

    fn include(&mut self, name: &str, optional: bool, dir: &Path, at: &Place, depth: usize) {
        let Some(name) = self.expand(name, 0) else {
            self.doc
                .notes
                .push(Note::new(at, format!("`include {name}` is not followed")));
            return;
        };
        let path: PathBuf = dir.join(&name);
        match std::fs::read_to_string(&path) {
            Ok(text) if depth < MAX_INCLUDE_DEPTH => {
                let shown = format!("{}", Path::new(&at.file).with_file_name(&name).display());
                let child_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                self.read(&text.replace("\r\n", "\n"), &shown, &child_dir, depth + 1);
            }
            Ok(_) => self.doc.notes.push(Note::new(
                at,
                format!("`include {name}` nests too deep; not followed"),
            )),
            Err(_) if optional => {}
            Err(e) => self
                .doc
                .notes
                .push(Note::new(at, format!("cannot read included `{name}`: {e}"))),
        }
    }

    fn assign(&mut self, name: &str, op: &str, value: &str, exported: bool, at: &Place) {
        let value = value.trim().to_string();
        match name {
            "SHELL" => {
                self.doc.shell = Some(vec![value, "-c".into()]);
                return;
            }
            ".DEFAULT_GOAL" => {
                self.default_goal = Some(value);
                return;
            }
            ".SHELLFLAGS" | "MAKEFLAGS" | ".ONESHELL" => {
                self.doc.notes.push(Note::new(
                    at,
                    format!("`{name}` has no tasker equivalent; left out"),
                ));
                return;
            }
            _ => {}
        }
        if op == "!=" {
            self.vars.retain(|v| v.name != name);
            self.vars.push(Var {
                name: name.to_string(),
                raw: format!("$(shell {value})"),
                from_env_first: false,
                exported,
                at: at.clone(),
            });
            return;
        }
        if let Some(var) = self.vars.iter_mut().find(|v| v.name == name) {
            match op {
                "?=" => {}
                "+=" => {
                    if !var.raw.is_empty() {
                        var.raw.push(' ');
                    }
                    var.raw.push_str(&value);
                }
                _ => {
                    var.raw = value;
                    var.from_env_first = false;
                }
            }
            var.exported |= exported;
            return;
        }
        self.vars.push(Var {
            name: name.to_string(),
            raw: value,
            from_env_first: op == "?=",
            exported,
            at: at.clone(),
        });
    }

    /// A rule line: the indices of its targets' rules (new or merged).
    fn rule(&mut self, line: &str, at: &Place, comments: Vec<String>) -> Option<Vec<usize>> {
        let colon = line.find(':')?;
        let targets_text = &line[..colon];
        let mut rest = &line[colon + 1..];
        let double = rest.starts_with(':');
        if double {
            rest = &rest[1..];
        }
        let (rest, help) = match rest.split_once("##") {
            Some((r, h)) => (r, Some(h.trim().to_string())),
            None => (rest, None),
        };
        let (prereq_text, inline_recipe) = match rest.split_once(';') {
            Some((p, r)) => (p, Some(r.trim().to_string())),
            None => (rest, None),
        };
        let mut notes = Vec::new();
        if double {
            notes.push(Note::new(
                at,
                "a double-colon rule is read as an ordinary one",
            ));
        }
        if assignment(prereq_text.trim()).is_some() {
            notes.push(Note::new(
                at,
                format!("a target-specific variable is left out: `{}`", line.trim()),
            ));
            self.doc.notes.extend(notes);
            return Some(Vec::new());
        }
        let targets = match self.expand(targets_text, 0) {
            Some(t) => t,
            None => {
                self.doc.notes.push(Note::new(
                    at,
                    format!("targets not understood: `{}`", targets_text.trim()),
                ));
                return Some(Vec::new());
            }
        };
        let prereqs: Vec<String> = match self.expand(prereq_text, 0) {
            Some(p) => p
                .split_whitespace()
                .filter(|w| *w != "|")
                .map(str::to_string)
                .collect(),
            None => {
                notes.push(Note::new(
                    at,
                    format!("prerequisites not understood: `{}`", prereq_text.trim()),
                ));
                Vec::new()
            }
        };
        let mut indices = Vec::new();
        for target in targets.split_whitespace() {
            if self.special_target(target, &prereqs, at, line) {
                continue;
            }
            let index = match self.rules.iter().position(|r| r.target == target) {
                Some(index) => {
                    let rule = &mut self.rules[index];
                    rule.prereqs.extend(prereqs.iter().cloned());
                    if rule.help.is_none() {
                        rule.help = help.clone();
                    }
                    if !prereq_text.trim().is_empty() || inline_recipe.is_some() {
                        rule.recipe.clear();
                    }
                    index
                }
                None => {
                    self.rules.push(Rule {
                        target: target.to_string(),
                        prereqs: prereqs.clone(),
                        recipe: Vec::new(),
                        comments: comments.clone(),
                        help: help.clone(),
                        notes: notes.clone(),
                        at: at.clone(),
                    });
                    self.rules.len() - 1
                }
            };
            if let Some(recipe) = &inline_recipe {
                self.rules[index].recipe.push((recipe.clone(), at.clone()));
            }
            indices.push(index);
        }
        Some(indices)
    }

    /// A special target (`.PHONY`, `.SILENT`, any other `.NAME`) or a
    /// pattern rule: read, noted or left out here; `false` for a target
    /// that becomes a task.
    fn special_target(&mut self, target: &str, prereqs: &[String], at: &Place, line: &str) -> bool {
        match target {
            ".PHONY" => self.phony.extend(prereqs.iter().cloned()),
            ".SILENT" => self.silent = true,
            ".ONESHELL" => self.doc.notes.push(Note::new(
                at,
                "`.ONESHELL` is left out: each recipe line is a step of its own",
            )),
            t if t.starts_with('.')
                && t.chars()
                    .skip(1)
                    .all(|c| c.is_ascii_uppercase() || c == '_') => {}
            // Its recipe lines go nowhere.
            t if t.contains('%') => self.doc.notes.push(Note::new(
                at,
                format!(
                    "pattern rule `{}` is left out: write a task per file, or a matrix",
                    line.trim()
                ),
            )),
            _ => return false,
        }
        true
    }

    /// `text` with every variable expanded, as make reads targets and
    /// prerequisites; `None` when it calls a function.
    fn expand(&self, text: &str, depth: usize) -> Option<String> {
        if depth > 32 {
            return None;
        }
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let (reference, len) = reference(&rest[at..])?;
            rest = &rest[at + len..];
            match reference {
                Ref::Dollar => out.push('$'),
                Ref::Var(name) if !name.contains([' ', '(', '$', ':']) => {
                    if let Some(var) = self.var(&name) {
                        out.push_str(&self.expand(&var.raw, depth + 1)?);
                    }
                }
                _ => return None,
            }
        }
        out.push_str(rest);
        Some(out)
    }

    fn finish(mut self) -> Doc {
        for var in &self.vars {
            let (value, notes) = self.var_value(var);
            let tasker_name = text::value_name(&var.name);
            self.doc.vars.push(Entry {
                name: tasker_name.clone(),
                value,
                comments: Vec::new(),
                notes,
            });
            if var.exported {
                self.doc.env.push(Entry {
                    name: var.name.clone(),
                    value: Value::Text(format!("{{{{ {tasker_name} }}}}")),
                    comments: Vec::new(),
                    notes: Vec::new(),
                });
            }
        }
        let targets: HashSet<String> = self.rules.iter().map(|r| r.target.clone()).collect();
        let mut taken = HashSet::new();
        let names: HashMap<String, String> = self
            .rules
            .iter()
            .map(|r| {
                (
                    r.target.clone(),
                    text::unique(text::task_name(&r.target), &mut taken),
                )
            })
            .collect();
        let mut tasks = Vec::new();
        for rule in &self.rules {
            tasks.push(self.task(rule, &targets, &names));
        }
        self.doc.tasks = tasks;
        let default = self
            .default_goal
            .clone()
            .or_else(|| self.rules.first().map(|r| r.target.clone()));
        self.doc.default = default.and_then(|d| names.get(&d).cloned());
        self.doc
    }

    /// A var's value in `[vars]`: `$(shell)` and `$(wildcard)` as `sh`
    /// vars, references as templates.
    fn var_value(&self, var: &Var) -> (Value, Vec<Note>) {
        let mut notes = Vec::new();
        let raw = var.raw.trim();
        if let Some((Ref::Var(inner), len)) = reference(raw) {
            if len == raw.len() {
                if let Some(command) = inner.strip_prefix("shell ") {
                    return (
                        Value::Sh(self.template(command, &mut notes, &var.at)),
                        notes,
                    );
                }
                if let Some(patterns) = inner.strip_prefix("wildcard ") {
                    let patterns = self.template(patterns.trim(), &mut notes, &var.at);
                    return (
                        Value::Sh(format!("ls -d {patterns} 2>/dev/null | tr '\\n' ' '")),
                        notes,
                    );
                }
            }
        }
        let value = self.template(raw, &mut notes, &var.at);
        if var.from_env_first && !value.contains("{{") && !value.contains("{%") {
            let name = env_expr(&var.name);
            let quoted = format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"));
            return (
                Value::Text(format!("{{{{ {name} | default({quoted}) }}}}")),
                notes,
            );
        }
        (Value::Text(value), notes)
    }

    /// Text where values go in as they are (a var's value): references
    /// become `{{ NAME }}`.
    fn template(&self, raw: &str, notes: &mut Vec<Note>, at: &Place) -> String {
        let mut out = String::new();
        let mut rest = raw;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&text::literal(&rest[..dollar]));
            let Some((reference, len)) = reference(&rest[dollar..]) else {
                out.push_str(&text::literal(&rest[dollar..]));
                rest = "";
                break;
            };
            let written = &rest[dollar..dollar + len];
            rest = &rest[dollar + len..];
            match reference {
                Ref::Dollar => out.push('$'),
                Ref::Var(name) if is_name(&name) => {
                    out.push_str(&format!("{{{{ {} }}}}", self.expr_of(&name)));
                }
                Ref::Var(inner) if inner.starts_with("shell ") => {
                    out.push_str("$(");
                    out.push_str(&self.template(&inner[6..], notes, at));
                    out.push(')');
                }
                _ => {
                    notes.push(Note::new(
                        at,
                        format!("`{written}` is not understood; kept as text"),
                    ));
                    out.push_str(&text::literal(written));
                }
            }
        }
        out.push_str(&text::literal(rest));
        out
    }

    /// The tasker expression for make variable `name`: the var, or the
    /// environment (make reads it for names the file never sets).
    fn expr_of(&self, name: &str) -> String {
        if name == "CURDIR" {
            return "root".into();
        }
        match self.var(name) {
            Some(_) => text::value_name(name),
            None => format!("{} | default('')", env_expr(name)),
        }
    }

    fn task(
        &self,
        rule: &Rule,
        targets: &HashSet<String>,
        names: &HashMap<String, String>,
    ) -> Task {
        let mut task = Task::new(names[&rule.target].clone(), &rule.at);
        task.comments = rule.comments.clone();
        while task.comments.last().is_some_and(|c| c.is_empty()) {
            task.comments.pop();
        }
        task.notes = rule.notes.clone();
        task.help = rule.help.clone();
        if task.name != rule.target {
            task.comments.push(format!(" make {}", rule.target));
        }
        let phony = self.phony.contains(&rule.target);
        let mut seen = HashSet::new();
        for prereq in &rule.prereqs {
            if !seen.insert(prereq.clone()) {
                continue;
            }
            if targets.contains(prereq) {
                task.deps.push(names[prereq].clone());
            }
            if !phony && !self.phony.contains(prereq) {
                task.sources.push(prereq.clone());
            }
        }
        if !phony {
            task.outputs.push(rule.target.clone());
        }
        for (line, at) in &rule.recipe {
            let (step, notes) = self.step(line, rule, at);
            task.notes.extend(notes);
            if let Some(step) = step {
                task.run.push(step);
            }
        }
        task
    }

    /// One recipe line as a step (`None`: a comment line).
    fn step(&self, line: &str, rule: &Rule, at: &Place) -> (Option<Step>, Vec<Note>) {
        let mut rest = line.trim_start();
        let mut quiet = self.silent;
        let mut ignore = false;
        loop {
            if let Some(r) = rest.strip_prefix('@') {
                quiet = true;
                rest = r.trim_start();
            } else if let Some(r) = rest.strip_prefix('-') {
                ignore = true;
                rest = r.trim_start();
            } else if let Some(r) = rest.strip_prefix('+') {
                rest = r.trim_start();
            } else {
                break;
            }
        }
        if rest.is_empty() || rest.starts_with('#') {
            return (None, Vec::new());
        }
        let mut notes = Vec::new();
        let pieces = self.pieces(rest, rule, at, &mut notes);
        let mut step = Step::sh(text::command(&pieces, true));
        step.quiet = quiet;
        step.ignore_failure = ignore;
        (Some(step), notes)
    }

    /// A recipe line's pieces: text, and the values make inserts.
    fn pieces(&self, line: &str, rule: &Rule, at: &Place, notes: &mut Vec<Note>) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut rest = line;
        let text = |s: &str| Piece::Text(s.to_string());
        while let Some(dollar) = rest.find('$') {
            pieces.push(text(&rest[..dollar]));
            let Some((reference, len)) = reference(&rest[dollar..]) else {
                pieces.push(text(&rest[dollar..]));
                rest = "";
                break;
            };
            let written = rest[dollar..dollar + len].to_string();
            rest = &rest[dollar + len..];
            let mut unique = Vec::new();
            for p in &rule.prereqs {
                if !unique.contains(p) {
                    unique.push(p.clone());
                }
            }
            match reference {
                Ref::Dollar => pieces.push(text("$")),
                Ref::Auto('@') => pieces.push(text(&rule.target)),
                Ref::Auto('<') => {
                    pieces.push(text(rule.prereqs.first().map_or("", String::as_str)))
                }
                Ref::Auto('^' | '?') => pieces.push(text(&unique.join(" "))),
                Ref::Auto('+') => pieces.push(text(&rule.prereqs.join(" "))),
                Ref::Var(v) if v == "@D" || v == "@F" => {
                    let (dir, file) = match rule.target.rsplit_once('/') {
                        Some((d, f)) => (d, f),
                        None => (".", rule.target.as_str()),
                    };
                    pieces.push(text(if v == "@D" { dir } else { file }));
                }
                Ref::Var(v) if v == "MAKE" => pieces.push(text("make")),
                Ref::Var(v) if is_name(&v) => {
                    let splits = self.var(&v).is_none_or(splits_of);
                    pieces.push(Piece::Value {
                        expr: self.expr_of(&v),
                        splits,
                    });
                }
                Ref::Var(v) if v.starts_with("shell ") => {
                    pieces.push(text("$("));
                    pieces.extend(self.pieces(&v[6..], rule, at, notes));
                    pieces.push(text(")"));
                }
                _ => {
                    notes.push(Note::new(
                        at,
                        format!("`{written}` is not understood; kept as text"),
                    ));
                    pieces.push(text(&written));
                }
            }
        }
        pieces.push(text(rest));
        pieces
    }
}

/// A reference at the start of `text` (which starts with `$`), and its
/// length in bytes.
enum Ref {
    /// `$$`
    Dollar,
    /// `$(...)`, `${...}` or `$X`: what is inside.
    Var(String),
    /// `$@`, `$<`, `$^`, `$+`, `$?`, `$*`.
    Auto(char),
}

fn reference(text: &str) -> Option<(Ref, usize)> {
    let mut chars = text.char_indices().skip(1);
    let (_, c) = chars.next()?;
    match c {
        '$' => Some((Ref::Dollar, 2)),
        '(' | '{' => {
            let close = if c == '(' { ')' } else { '}' };
            let mut depth = 0;
            for (i, ch) in chars {
                if ch == c {
                    depth += 1;
                } else if ch == close {
                    if depth == 0 {
                        return Some((Ref::Var(text[2..i].to_string()), i + 1));
                    }
                    depth -= 1;
                }
            }
            None
        }
        '@' | '<' | '^' | '+' | '?' | '*' => Some((Ref::Auto(c), 2)),
        c if c.is_ascii_alphanumeric() || c == '_' => Some((Ref::Var(c.to_string()), 2)),
        _ => None,
    }
}

fn is_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// `env.NAME`, or `env['NAME']` for a name Jinja cannot write bare.
fn env_expr(name: &str) -> String {
    if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        format!("env.{name}")
    } else {
        format!("env['{name}']")
    }
}

/// Whether the shell splits a var's value: blanks in it, a command's
/// output, another var's value.
fn splits_of(var: &Var) -> bool {
    text::splits(var.raw.trim())
}

/// `NAME OP VALUE` when `line` is an assignment.
fn assignment(line: &str) -> Option<(&str, &str, &str)> {
    let ops = ["::=", ":::=", ":=", "?=", "+=", "!=", "="];
    let at = line.find('=')?;
    let before = &line[..at];
    let op_start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| matches!(c, ':' | '?' | '+' | '!'))
        .last()
        .map_or(at, |(i, _)| i);
    let op = &line[op_start..=at];
    let name = line[..op_start].trim();
    if !ops.contains(&op) || name.is_empty() || name.contains([' ', '\t', ':', '$', '(']) {
        return None;
    }
    Some((name, op, &line[at + 1..]))
}

fn conditional_word(line: &str) -> Option<&str> {
    let word = line.split_whitespace().next()?;
    matches!(
        word,
        "ifeq" | "ifneq" | "ifdef" | "ifndef" | "else" | "endif"
    )
    .then_some(word)
}

/// `a,b` split at its top-level comma.
fn split_comma(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return Some((&text[..i], &text[i + 1..])),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_and_rules_are_told_apart() {
        assert_eq!(assignment("CC := gcc"), Some(("CC", ":=", " gcc")));
        assert_eq!(assignment("CFLAGS += -O2"), Some(("CFLAGS", "+=", " -O2")));
        assert_eq!(
            assignment("PREFIX ?= /usr"),
            Some(("PREFIX", "?=", " /usr"))
        );
        assert_eq!(assignment("X = a=b"), Some(("X", "=", " a=b")));
        assert_eq!(assignment("build: main.o"), None);
        assert_eq!(assignment("test: CFLAGS=-g"), None);
        assert!(matches!(reference("$(CC) x"), Some((Ref::Var(v), 5)) if v == "CC"));
        assert!(matches!(reference("$$x"), Some((Ref::Dollar, 2))));
        assert!(matches!(reference("${A}"), Some((Ref::Var(v), 4)) if v == "A"));
    }
}
