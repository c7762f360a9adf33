//! go-task's Taskfile.yml and the Taskfiles it includes, read with saphyr
//! (YAML with line numbers). Included tasks join the one output file under
//! `NAMESPACE-NAME` (a tasks.toml holds no `:` in a name, and an import
//! prints one file). Go templates holding names (`{{.X}}`, `{{.CLI_ARGS}}`,
//! `default`, `if`/`else`/`end`) become tasker's; a task's vars passed by
//! its callers become its arguments.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

use super::doc::*;
use super::text::{self, Piece};
use crate::error::{Error, Result};

/// How deep includes may nest before they are taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// A YAML node reduced to what a Taskfile uses, with its line.
#[derive(Clone, Debug)]
struct Node {
    line: usize,
    /// The line of the key that holds this node (its own line else).
    key_line: usize,
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    Null,
    Text(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl Node {
    fn text(&self) -> Option<&str> {
        match &self.kind {
            Kind::Text(t) => Some(t),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn entries(&self) -> &[(String, Node)] {
        match &self.kind {
            Kind::Map(entries) => entries,
            _ => &[],
        }
    }

    /// A list, or one item as a list of one.
    fn items(&self) -> Vec<&Node> {
        match &self.kind {
            Kind::Seq(items) => items.iter().collect(),
            Kind::Null => Vec::new(),
            _ => vec![self],
        }
    }

    fn is_true(&self) -> bool {
        self.text() == Some("true")
    }
}

fn node_of(yaml: &MarkedYaml) -> Node {
    let line = yaml.span.start.line();
    let kind = match &yaml.data {
        YamlData::Value(Scalar::Null) => Kind::Null,
        YamlData::Value(Scalar::Boolean(b)) => Kind::Text(b.to_string()),
        YamlData::Value(Scalar::Integer(i)) => Kind::Text(i.to_string()),
        YamlData::Value(Scalar::FloatingPoint(f)) => Kind::Text(f.to_string()),
        YamlData::Value(Scalar::String(s)) => Kind::Text(s.to_string()),
        YamlData::Representation(s, _, _) => Kind::Text(s.to_string()),
        YamlData::Sequence(items) => Kind::Seq(items.iter().map(node_of).collect()),
        YamlData::Mapping(map) => Kind::Map(
            map.iter()
                .map(|(k, v)| {
                    let key = node_of(k);
                    let mut value = node_of(v);
                    value.key_line = key.line;
                    let key = match key.kind {
                        Kind::Text(t) => t,
                        _ => String::new(),
                    };
                    (key, value)
                })
                .collect(),
        ),
        YamlData::Tagged(_, inner) => node_of(inner).kind,
        YamlData::Alias(_) | YamlData::BadValue => Kind::Null,
    };
    Node {
        line,
        key_line: line,
        kind,
    }
}

/// One Taskfile: the root or an included one.
struct Unit {
    display: String,
    root: Node,
    /// The go-task namespace of its tasks (`docs:`), empty for the root.
    namespace: String,
    /// What its task names start with in the output (`docs-`).
    prefix: String,
    /// Where its tasks run, relative to the root (an include's `dir`).
    dir: Option<String>,
    internal: bool,
    aliases: Vec<String>,
    /// Vars the include passes in.
    passed: Vec<(String, Node)>,
    text: String,
}

pub(crate) fn parse(source: &str, file: &str, path: &Path, cwd: &Path) -> Result<Doc> {
    let root = load(source, file)?;
    let mut units = vec![Unit {
        display: file.to_string(),
        root,
        namespace: String::new(),
        prefix: String::new(),
        dir: None,
        internal: false,
        aliases: Vec::new(),
        passed: Vec::new(),
        text: source.to_string(),
    }];
    let mut notes = Vec::new();
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    load_includes(&mut units, 0, &base, &base, cwd, &mut notes, 0)?;
    let mut go = Go {
        doc: Doc {
            source: file.to_string(),
            notes,
            ..Doc::default()
        },
        names: HashMap::new(),
        callers: HashMap::new(),
        var_names: HashSet::new(),
    };
    go.name_tasks(&units);
    go.settings(&units[0]);
    for unit in &units {
        go.unit(unit);
    }
    Ok(go.doc)
}

fn load(source: &str, file: &str) -> Result<Node> {
    let docs = MarkedYaml::load_from_str(source).map_err(|e| {
        let mark = e.marker();
        super::error_at(
            file,
            source,
            mark.line(),
            mark.col() + 1,
            format!("`{file}` is not YAML: {}", e.info()),
        )
    })?;
    let root = docs.first().map(node_of).unwrap_or(Node {
        line: 1,
        key_line: 1,
        kind: Kind::Null,
    });
    if !matches!(root.kind, Kind::Map(_) | Kind::Null) {
        return Err(super::error_at(
            file,
            source,
            root.line,
            1,
            format!("`{file}` is not a Taskfile: it holds no mapping"),
        ));
    }
    Ok(root)
}

/// Read the includes of `units[index]` (and theirs), appending units.
fn load_includes(
    units: &mut Vec<Unit>,
    index: usize,
    dir: &Path,
    root_dir: &Path,
    cwd: &Path,
    notes: &mut Vec<Note>,
    depth: usize,
) -> Result<()> {
    let includes: Vec<(String, Node)> = units[index]
        .root
        .get("includes")
        .map(|n| n.entries().to_vec())
        .unwrap_or_default();
    for (namespace, entry) in includes {
        let at = Place {
            file: units[index].display.clone(),
            line: entry.line,
        };
        let (written, options) = match (&entry.kind, entry.get("taskfile")) {
            (Kind::Text(path), _) => (path.clone(), None),
            (_, Some(path)) => (path.text().unwrap_or("").to_string(), Some(&entry)),
            _ => {
                notes.push(Note::new(
                    &at,
                    format!("include `{namespace}` names no Taskfile"),
                ));
                continue;
            }
        };
        if written.contains("{{") {
            notes.push(Note::new(
                &at,
                format!("include `{namespace}` has a templated path; not followed"),
            ));
            continue;
        }
        let path = include_file(dir, &written);
        let optional = options
            .and_then(|o| o.get("optional"))
            .is_some_and(Node::is_true);
        let Some(text) = read_include(&path, optional, depth, &at, &namespace, &written, notes)?
        else {
            continue;
        };
        let display = crate::file::display_path(&path, cwd);
        let root = load(&text, &display)?;
        let get = |key: &str| options.and_then(|o| o.get(key));
        let flatten = get("flatten").is_some_and(Node::is_true);
        let parent = &units[index];
        let (ns, prefix) = if flatten {
            (parent.namespace.clone(), parent.prefix.clone())
        } else {
            (
                format!("{}{namespace}:", parent.namespace),
                format!("{}{}-", parent.prefix, text::task_name(&namespace)),
            )
        };
        let include_dir = get("dir")
            .and_then(Node::text)
            .map(|d| relative_dir(&dir.join(d), root_dir));
        include_notes(options, flatten, &prefix, &namespace, &at, notes);
        let child = Unit {
            display,
            root,
            namespace: ns,
            prefix,
            dir: include_dir.or_else(|| parent.dir.clone()),
            internal: parent.internal || get("internal").is_some_and(Node::is_true),
            aliases: get("aliases")
                .map(|a| {
                    a.items()
                        .iter()
                        .filter_map(|n| n.text())
                        .map(text::task_name)
                        .collect()
                })
                .unwrap_or_default(),
            passed: get("vars")
                .map(|v| v.entries().to_vec())
                .unwrap_or_default(),
            text,
        };
        units.push(child);
        let child_index = units.len() - 1;
        let child_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        load_includes(
            units,
            child_index,
            &child_dir,
            root_dir,
            cwd,
            notes,
            depth + 1,
        )?;
    }
    Ok(())
}

/// The Taskfile an include names: a file, or in a directory the first of
/// go-task's names that exists.
fn include_file(dir: &Path, written: &str) -> std::path::PathBuf {
    let path = dir.join(written);
    if !path.is_dir() {
        return path;
    }
    [
        "Taskfile.yml",
        "taskfile.yml",
        "Taskfile.yaml",
        "taskfile.yaml",
    ]
    .iter()
    .map(|n| path.join(n))
    .find(|p| p.is_file())
    .unwrap_or_else(|| path.join("Taskfile.yml"))
}

/// The text of an included Taskfile; `None` when it is not followed (too
/// deep, said in a note; or optional and missing).
fn read_include(
    path: &Path,
    optional: bool,
    depth: usize,
    at: &Place,
    namespace: &str,
    written: &str,
    notes: &mut Vec<Note>,
) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) if depth < MAX_INCLUDE_DEPTH => Ok(Some(text.replace("\r\n", "\n"))),
        Ok(_) => {
            notes.push(Note::new(
                at,
                format!("include `{namespace}` nests too deep; not followed"),
            ));
            Ok(None)
        }
        Err(_) if optional => Ok(None),
        Err(e) => Err(Error::usage(format!(
            "{}:{}: cannot read included Taskfile `{written}`: {e}",
            at.file, at.line
        ))),
    }
}

/// `dir` relative to the root file's directory, when it is under it.
fn relative_dir(dir: &Path, root_dir: &Path) -> String {
    dir.strip_prefix(root_dir)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| dir.display().to_string())
}

/// What an include becomes in one file (its tasks renamed), and its keys
/// that do not carry over.
fn include_notes(
    options: Option<&Node>,
    flatten: bool,
    prefix: &str,
    namespace: &str,
    at: &Place,
    notes: &mut Vec<Note>,
) {
    if !flatten {
        notes.push(Note::new(
            at,
            format!("the tasks of include `{namespace}` are named `{prefix}NAME` in this one file"),
        ));
    }
    for key in ["excludes", "checksum"] {
        if options.and_then(|o| o.get(key)).is_some() {
            notes.push(Note::new(
                at,
                format!("`{key}` of include `{namespace}` left out"),
            ));
        }
    }
}

struct Go {
    doc: Doc,
    /// go-task's full task names (`docs:build`) to tasker's.
    names: HashMap<String, String>,
    /// For each task (tasker name), the vars its callers pass: they
    /// become its arguments.
    callers: HashMap<String, Vec<String>>,
    /// Names taken in `[vars]`.
    var_names: HashSet<String>,
}

/// Where a template is: a shell command, or a value that goes in as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    Shell,
    Plain,
    Call,
}

/// The names a template may read, go-task's to tasker's.
#[derive(Clone, Default)]
struct Scope {
    /// Name → (tasker expression, whether the shell splits its value).
    names: HashMap<String, (String, bool)>,
    /// The Taskfile's directory, relative to the root (`TASKFILE_DIR`).
    taskfile_dir: Option<String>,
    task: String,
}

impl Go {
    fn name_tasks(&mut self, units: &[Unit]) {
        let mut taken = HashSet::new();
        for unit in units {
            for (name, node) in unit
                .root
                .get("tasks")
                .map(Node::entries)
                .unwrap_or_default()
            {
                let full = format!("{}{name}", unit.namespace);
                let tasker = text::unique(
                    format!("{}{}", unit.prefix, text::task_name(name)),
                    &mut taken,
                );
                if unit.namespace.is_empty() && tasker != *name {
                    self.doc.notes.push(Note::new(
                        &Place {
                            file: unit.display.clone(),
                            line: node.key_line,
                        },
                        format!("task `{name}` is `{tasker}` (a task name holds no `:`; an [include] gives `ns:name`)"),
                    ));
                }
                self.names.insert(full, tasker);
            }
        }
        // Vars that callers pass.
        for unit in units {
            for (_, node) in unit
                .root
                .get("tasks")
                .map(Node::entries)
                .unwrap_or_default()
            {
                let mut calls: Vec<&Node> = node.get("deps").map(Node::items).unwrap_or_default();
                calls.extend(node.get("cmds").map(Node::items).unwrap_or_default());
                for call in calls {
                    let (Some(name), Some(vars)) =
                        (call.get("task").and_then(Node::text), call.get("vars"))
                    else {
                        continue;
                    };
                    if let Some(callee) = self.resolve(unit, name) {
                        let list = self.callers.entry(callee).or_default();
                        for (var, _) in vars.entries() {
                            if !list.contains(var) {
                                list.push(var.clone());
                            }
                        }
                    }
                }
            }
        }
    }

    /// The tasker name of task `name` as called from `unit`.
    fn resolve(&self, unit: &Unit, name: &str) -> Option<String> {
        let full = match name.strip_prefix(':') {
            Some(rest) => rest.to_string(),
            None => format!("{}{name}", unit.namespace),
        };
        self.names
            .get(&full)
            .or_else(|| self.names.get(name))
            .cloned()
    }

    fn settings(&mut self, root: &Unit) {
        let at = |n: &Node| Place {
            file: root.display.clone(),
            line: n.line,
        };
        for (key, value) in root.root.entries() {
            match key.as_str() {
                "version" | "tasks" | "includes" | "vars" | "env" => {}
                "dotenv" => {
                    self.doc.dotenv = value
                        .items()
                        .iter()
                        .filter_map(|n| n.text())
                        .map(str::to_string)
                        .collect()
                }
                "silent" if value.is_true() => self.doc.echo = Some(false),
                "output" => match value.text() {
                    Some("interleaved") => self.doc.output = Some("interleaved".into()),
                    Some("group") => self.doc.output = Some("grouped".into()),
                    Some("prefixed") => self.doc.output = Some("prefixed".into()),
                    _ => self.doc.notes.push(Note::new(
                        &at(value),
                        "this `output` has no tasker equivalent",
                    )),
                },
                "set" | "shopt" => {
                    let flags: Vec<String> = value
                        .items()
                        .iter()
                        .filter_map(|n| n.text())
                        .map(str::to_string)
                        .collect();
                    let mut shell = vec!["bash".to_string()];
                    for flag in flags {
                        shell.push(if key == "set" { "-o" } else { "-O" }.into());
                        shell.push(flag);
                    }
                    shell.push("-c".into());
                    self.doc.shell = Some(shell);
                }
                "method" | "run" | "interval" | "silent" => {}
                other => self.doc.notes.push(Note::new(
                    &at(value),
                    format!("`{other}` has no tasker equivalent; left out"),
                )),
            }
        }
    }

    fn unit(&mut self, unit: &Unit) {
        let mut scope = Scope {
            taskfile_dir: unit.dir.clone(),
            ..Scope::default()
        };
        // The root's vars are everyone's; an included file's own ones are
        // named after its namespace where a name is taken.
        let mut vars: Vec<(String, Node)> = unit
            .root
            .get("vars")
            .map(|v| v.entries().to_vec())
            .unwrap_or_default();
        for (name, value) in &unit.passed {
            vars.retain(|(n, _)| n != name);
            vars.push((name.clone(), value.clone()));
        }
        if !unit.namespace.is_empty() {
            scope = self.root_scope(scope);
        }
        for (name, node) in &vars {
            let tasker = self.var_name(name, &unit.prefix);
            let (value, splits) = self.value(unit, node, &scope);
            scope.names.insert(name.clone(), (tasker.clone(), splits));
            self.doc.vars.push(Entry {
                name: tasker,
                value,
                comments: Vec::new(),
                notes: Vec::new(),
            });
        }
        for (name, node) in unit.root.get("env").map(Node::entries).unwrap_or_default() {
            let (value, _) = self.value(unit, node, &scope);
            let value = match value {
                Value::Sh(command) => {
                    let var = self.var_name(&format!("env_{name}"), &unit.prefix);
                    self.doc.vars.push(Entry {
                        name: var.clone(),
                        value: Value::Sh(command),
                        comments: Vec::new(),
                        notes: Vec::new(),
                    });
                    Value::Text(format!("{{{{ {var} }}}}"))
                }
                text => text,
            };
            self.doc.env.push(Entry {
                name: name.clone(),
                value,
                comments: Vec::new(),
                notes: Vec::new(),
            });
        }
        for (name, node) in unit
            .root
            .get("tasks")
            .map(Node::entries)
            .unwrap_or_default()
        {
            let task = self.task(unit, name, node, &scope);
            if unit.namespace.is_empty() && name == "default" {
                self.doc.default = Some(task.name.clone());
            }
            self.doc.tasks.push(task);
        }
    }

    /// The scope of the root file's vars, for an included file.
    fn root_scope(&self, mut scope: Scope) -> Scope {
        for var in &self.doc.vars {
            scope
                .names
                .entry(var.name.clone())
                .or_insert((var.name.clone(), true));
        }
        scope
    }

    /// A name for a var in `[vars]`: its own, or prefixed when taken.
    fn var_name(&mut self, name: &str, prefix: &str) -> String {
        let mut tasker = text::value_name(name);
        if self.var_names.contains(&tasker) {
            tasker = text::value_name(&format!("{prefix}{name}"));
            let base = tasker.clone();
            let mut n = 2;
            while self.var_names.contains(&tasker) {
                tasker = format!("{base}_{n}");
                n += 1;
            }
        }
        self.var_names.insert(tasker.clone());
        tasker
    }

    /// A var's value: text (a template) or `{ sh = ... }`, and whether
    /// the shell would split it.
    fn value(&mut self, unit: &Unit, node: &Node, scope: &Scope) -> (Value, bool) {
        let at = Place {
            file: unit.display.clone(),
            line: node.line,
        };
        let mut notes = Vec::new();
        let out = match (&node.kind, node.get("sh")) {
            (Kind::Text(t), _) => {
                let splits = text::splits(t);
                (
                    Value::Text(template(t, scope, Context::Plain, &at, &mut notes)),
                    splits,
                )
            }
            (_, Some(sh)) => {
                let command = sh.text().unwrap_or("");
                (
                    Value::Sh(template(command, scope, Context::Shell, &at, &mut notes)),
                    true,
                )
            }
            (Kind::Null, _) => (Value::Text(String::new()), true),
            _ => {
                notes.push(Note::new(
                    &at,
                    "a var that is neither text nor `sh` (`ref`, `map`, a list) is left empty",
                ));
                (Value::Text(String::new()), true)
            }
        };
        self.doc.notes.extend(notes);
        out
    }

    fn task(&mut self, unit: &Unit, name: &str, node: &Node, outer: &Scope) -> Task {
        let full = format!("{}{name}", unit.namespace);
        let tasker = self.names[&full].clone();
        let at = Place {
            file: unit.display.clone(),
            line: node.key_line,
        };
        let mut task = Task::new(tasker.clone(), &at);
        task.comments = comments_above(&unit.text, node.key_line.saturating_sub(1));
        let mut scope = outer.clone();
        scope.task = name.to_string();
        // Shorthands: `task: cmd` and `task: [cmd, cmd]`.
        let body = match &node.kind {
            Kind::Map(_) => node.clone(),
            _ => Node {
                kind: Kind::Map(vec![("cmds".into(), node.clone())]),
                ..node.clone()
            },
        };
        let mut notes = Vec::new();
        let passed = self.task_args(&body, outer, &tasker, &mut task, &mut scope);
        let own_vars = body
            .get("vars")
            .map(|v| v.entries().to_vec())
            .unwrap_or_default();
        // The task's own vars (not those its callers may pass).
        for (var, value) in own_vars.iter().filter(|(var, _)| !passed.contains(var)) {
            let var_name = if KEYS.task_vars {
                text::value_name(var)
            } else {
                self.var_name(var, &format!("{tasker}_"))
            };
            let (value, splits) = self.value(unit, value, &scope);
            scope.names.insert(var.clone(), (var_name.clone(), splits));
            task.vars.push(Entry {
                name: var_name,
                value,
                comments: Vec::new(),
                notes: Vec::new(),
            });
        }
        for (key, value) in body.entries() {
            self.task_key(unit, key, value, &scope, &mut task, &mut notes);
        }
        if unit.internal {
            task.private = true;
        }
        for alias in &unit.aliases {
            task.aliases
                .push(format!("{alias}-{}", text::task_name(name)));
        }
        if let Some(dir) = &unit.dir {
            task.dir.get_or_insert_with(|| dir.clone());
        }
        task.notes.extend(notes);
        task
    }

    /// A task's arguments: the vars its callers pass (with the default the
    /// task or the file gives), and the vars it `requires`. Returns the
    /// names passed.
    fn task_args(
        &self,
        body: &Node,
        outer: &Scope,
        tasker: &str,
        task: &mut Task,
        scope: &mut Scope,
    ) -> Vec<String> {
        // Arguments: vars that callers pass, and `requires`.
        let passed = self.callers.get(tasker).cloned().unwrap_or_default();
        let own_vars = body
            .get("vars")
            .map(|v| v.entries().to_vec())
            .unwrap_or_default();
        for var in &passed {
            let default = own_vars
                .iter()
                .find(|(n, _)| n == var)
                .and_then(|(_, v)| v.text().map(str::to_string))
                .or_else(|| {
                    outer
                        .names
                        .get(var)
                        .and_then(|(expr, _)| self.static_var(expr))
                })
                .unwrap_or_default();
            task.args.push(Arg {
                name: text::value_name(var),
                kind: ArgType::String,
                positional: false,
                default: Some(text::literal(&default)),
                help: None,
                choices: Vec::new(),
            });
            scope
                .names
                .insert(var.clone(), (text::value_name(var), false));
        }
        for required in body
            .get("requires")
            .and_then(|r| r.get("vars"))
            .map(Node::items)
            .unwrap_or_default()
        {
            let (var, choices) = match required.text() {
                Some(var) => (var.to_string(), Vec::new()),
                None => (
                    required
                        .get("name")
                        .and_then(Node::text)
                        .unwrap_or("")
                        .to_string(),
                    required
                        .get("enum")
                        .map(|e| {
                            e.items()
                                .iter()
                                .filter_map(|n| n.text())
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                ),
            };
            if var.is_empty() || passed.contains(&var) || outer.names.contains_key(&var) {
                continue;
            }
            task.args.push(Arg {
                name: text::value_name(&var),
                kind: ArgType::String,
                positional: false,
                default: None,
                help: None,
                choices,
            });
            scope
                .names
                .insert(var.clone(), (text::value_name(&var), false));
        }
        passed
    }

    /// One key of a task's table, read into `task`.
    fn task_key(
        &mut self,
        unit: &Unit,
        key: &str,
        value: &Node,
        scope: &Scope,
        task: &mut Task,
        notes: &mut Vec<Note>,
    ) {
        let place = Place {
            file: unit.display.clone(),
            line: value.key_line,
        };
        let texts = || -> Vec<String> {
            value
                .items()
                .iter()
                .filter_map(|n| n.text())
                .map(str::to_string)
                .collect()
        };
        match key {
            "desc" => task.help = value.text().map(str::to_string),
            "summary" => {
                let summary = value.text().unwrap_or("").trim_end().to_string();
                task.help = Some(match task.help.take() {
                    Some(desc) => format!("{desc}\n\n{summary}"),
                    None => summary,
                });
            }
            "aliases" => task.aliases = texts().iter().map(|a| text::task_name(a)).collect(),
            "internal" => task.private |= value.is_true(),
            "silent" => task.quiet |= value.is_true(),
            "interactive" => task.interactive = value.is_true(),
            "ignore_error" => task.ignore_failure = value.is_true(),
            "prompt" => task.confirm = Some(template(value.text().unwrap_or(""), scope, Context::Plain, &place, notes)),
            "dir" => {
                let dir = template(value.text().unwrap_or(""), scope, Context::Plain, &place, notes);
                task.dir = Some(match &unit.dir {
                    Some(base) if !dir.starts_with('/') => format!("{base}/{dir}"),
                    _ => dir,
                });
            }
            "env" => {
                for (k, v) in value.entries() {
                    let text = v.text().unwrap_or("");
                    task.env.push((k.clone(), template(text, scope, Context::Plain, &place, notes)));
                }
            }
            "sources" => task.sources = globs(&texts(), scope, &place, notes),
            "generates" => task.outputs = globs(&texts(), scope, &place, notes),
            "status" => {
                task.status = texts()
                    .iter()
                    .map(|c| template(c, scope, Context::Shell, &place, notes))
                    .collect()
            }
            "preconditions" => task.preconditions = preconditions(value, scope, &place, notes),
            "platforms" => {
                for platform in texts() {
                    match platform.as_str() {
                        "linux" | "windows" => task.platforms.push(platform),
                        "darwin" => task.platforms.push("macos".into()),
                        other => notes.push(Note::new(&place, format!("platform `{other}` has no tasker equivalent"))),
                    }
                }
            }
            "deps" => {
                for dep in value.items() {
                    match self.call(unit, dep, scope, &place, notes) {
                        Some(call) => task.deps.push(call),
                        None => notes.push(Note::new(&place, "a dependency that is not understood")),
                    }
                }
            }
            "cmds" | "cmd" => {
                for cmd in value.items() {
                    self.command(unit, cmd, scope, task, notes);
                }
            }
            "run" if value.text() == Some("always") => notes.push(Note::new(
                &place,
                "`run: always` is left out: tasker runs a task once per invocation for one set of arguments",
            )),
            "vars" | "requires" | "run" | "method" | "watch" | "label" => {}
            other => notes.push(Note::new(&place, format!("`{other}` has no tasker equivalent; left out"))),
        }
    }

    /// The text of a var, when it is plain (for an argument's default).
    fn static_var(&self, tasker_name: &str) -> Option<String> {
        match &self.doc.vars.iter().find(|v| v.name == tasker_name)?.value {
            Value::Text(t) if !t.contains("{{") && !t.contains("{%") => Some(t.clone()),
            _ => None,
        }
    }

    /// A task call: `name` or `{ task: name, vars: {...} }`.
    fn call(
        &self,
        unit: &Unit,
        node: &Node,
        scope: &Scope,
        at: &Place,
        notes: &mut Vec<Note>,
    ) -> Option<String> {
        let name = node
            .text()
            .or_else(|| node.get("task").and_then(Node::text))?;
        let Some(mut call) = self.resolve(unit, name) else {
            notes.push(Note::new(
                at,
                format!("a call of `{name}`, which is no task"),
            ));
            return None;
        };
        for (var, value) in node.get("vars").map(Node::entries).unwrap_or_default() {
            let value = value.text().unwrap_or("");
            let name = text::value_name(var);
            // A one-letter argument is a short flag only (`-A`).
            let dashes = if name.chars().count() == 1 { "-" } else { "--" };
            call.push_str(&format!(
                " {dashes}{} {}",
                name.replace('_', "-"),
                word(value, scope, at, notes)
            ));
        }
        Some(call)
    }

    fn command(
        &self,
        unit: &Unit,
        cmd: &Node,
        scope: &Scope,
        task: &mut Task,
        notes: &mut Vec<Note>,
    ) {
        let at = Place {
            file: unit.display.clone(),
            line: cmd.line,
        };
        if let Some(text) = cmd.text() {
            task.run
                .push(Step::sh(template(text, scope, Context::Shell, &at, notes)));
            return;
        }
        if let Some(deferred) = cmd.get("defer") {
            match deferred.text() {
                Some(text) => {
                    task.finally
                        .push(Step::sh(template(text, scope, Context::Shell, &at, notes)))
                }
                None => {
                    if let Some(call) = self.call(unit, deferred, scope, &at, notes) {
                        task.finally.push(Step::task(call));
                    }
                }
            }
            return;
        }
        if cmd.get("for").is_some() {
            notes.push(Note::new(
                &at,
                "a `for` loop in `cmds` is left out: write the loop in the shell",
            ));
            return;
        }
        if cmd.get("platforms").is_some() {
            notes.push(Note::new(&at, "`platforms` of one command is left out"));
        }
        let mut step = if cmd.get("task").is_some() {
            match self.call(unit, cmd, scope, &at, notes) {
                Some(call) => Step::task(call),
                None => return,
            }
        } else {
            let text = cmd.get("cmd").and_then(Node::text).unwrap_or("");
            Step::sh(template(text, scope, Context::Shell, &at, notes))
        };
        step.quiet =
            cmd.get("silent").is_some_and(Node::is_true) && matches!(step.kind, StepKind::Sh(_));
        step.ignore_failure = cmd.get("ignore_error").is_some_and(Node::is_true);
        task.run.push(step);
    }
}

/// One word of a task call: a value's template, quoted by tasker.
fn word(value: &str, scope: &Scope, at: &Place, notes: &mut Vec<Note>) -> String {
    if value.contains("{{") {
        template(value, scope, Context::Call, at, notes)
    } else {
        text::literal(&text::call_word(value))
    }
}

/// The comment lines right above line `index` (0-based) of `text`.
fn comments_above(text: &str, index: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = index;
    while i > 0 {
        i -= 1;
        match lines.get(i).map(|l| l.trim()) {
            Some(l) if l.starts_with('#') => out.push(l[1..].to_string()),
            _ => break,
        }
    }
    out.reverse();
    out
}

/// `sources` or `generates`: globs, which tasker never renders.
fn globs(texts: &[String], scope: &Scope, place: &Place, notes: &mut Vec<Note>) -> Vec<String> {
    texts
        .iter()
        .map(|g| {
            static_text(g, scope).unwrap_or_else(|| {
                notes.push(Note::new(
                    place,
                    format!("the glob `{g}` reads a value; globs are not templates in tasker"),
                ));
                g.clone()
            })
        })
        .collect()
}

/// `preconditions`: each a command, or `sh` with a `msg`.
fn preconditions(
    value: &Node,
    scope: &Scope,
    place: &Place,
    notes: &mut Vec<Note>,
) -> Vec<Precondition> {
    let mut out = Vec::new();
    for item in value.items() {
        let (sh, msg) = match item.text() {
            Some(sh) => (sh.to_string(), None),
            None => (
                item.get("sh")
                    .and_then(Node::text)
                    .unwrap_or("")
                    .to_string(),
                item.get("msg").and_then(Node::text).map(str::to_string),
            ),
        };
        out.push(Precondition {
            sh: template(&sh, scope, Context::Shell, place, notes),
            msg: msg.map(|m| template(&m, scope, Context::Plain, place, notes)),
            at: place.clone(),
        });
    }
    out
}

/// A glob with its templates filled in from plain vars; `None` when a
/// value is only known at run time.
fn static_text(glob: &str, scope: &Scope) -> Option<String> {
    if !glob.contains("{{") {
        return Some(glob.to_string());
    }
    let _ = scope;
    None
}

/// A Go template made tasker's.
fn template(
    source: &str,
    scope: &Scope,
    context: Context,
    at: &Place,
    notes: &mut Vec<Note>,
) -> String {
    let mut pieces = Vec::new();
    let mut rest = source;
    while let Some(open) = rest.find("{{") {
        let Some(close) = rest[open..].find("}}") else {
            break;
        };
        pieces.push(Piece::Text(rest[..open].to_string()));
        let inner = rest[open + 2..open + close]
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim();
        let written = &rest[open..open + close + 2];
        rest = &rest[open + close + 2..];
        match action(inner, scope) {
            Some(piece) => pieces.push(piece),
            None => {
                notes.push(Note::new(
                    at,
                    format!("`{written}` is not understood; kept as text"),
                ));
                pieces.push(Piece::Text(written.to_string()));
            }
        }
    }
    pieces.push(Piece::Text(rest.to_string()));
    match context {
        Context::Shell | Context::Call => text::command(&pieces, true),
        Context::Plain => pieces
            .iter()
            .map(|p| match p {
                Piece::Text(t) => text::literal(t),
                Piece::Value { expr, .. } => format!("{{{{ {expr} }}}}"),
                Piece::Template(t) => t.clone(),
            })
            .collect(),
    }
}

/// One `{{ }}` action: a value, or an `if`/`else`/`end` tag.
fn action(inner: &str, scope: &Scope) -> Option<Piece> {
    let words: Vec<&str> = inner.split_whitespace().collect();
    match words.as_slice() {
        ["if", cond @ ..] => Some(Piece::Template(format!(
            "{{% if {} %}}",
            condition(cond, scope)?
        ))),
        ["else"] => Some(Piece::Template("{% else %}".into())),
        ["else", "if", cond @ ..] => Some(Piece::Template(format!(
            "{{% elif {} %}}",
            condition(cond, scope)?
        ))),
        ["end"] => Some(Piece::Template("{% endif %}".into())),
        _ => {
            let mut parts = inner.split('|').map(str::trim);
            let (mut expr, mut splits) = operand(parts.next()?, scope)?;
            for filter in parts {
                let words: Vec<&str> = filter.split_whitespace().collect();
                match words.as_slice() {
                    ["default", value] => {
                        expr = format!("{expr} | default({})", operand(value, scope)?.0);
                    }
                    ["upper" | "lower" | "trim"] => expr = format!("{expr} | {filter}"),
                    ["quote" | "shellQuote"] => splits = false,
                    _ => return None,
                }
            }
            Some(Piece::Value { expr, splits })
        }
    }
}

/// An operand: `.NAME`, `"text"`, `OS`, `ARCH`.
fn operand(word: &str, scope: &Scope) -> Option<(String, bool)> {
    if let Some(name) = word.strip_prefix('.') {
        return Some(match name {
            "CLI_ARGS" => ("extra".into(), false),
            "TASK" => (format!("'{}'", scope.task), false),
            "ROOT_DIR" | "ROOT_TASKFILE" => ("root".into(), true),
            "USER_WORKING_DIR" => ("invocation_dir".into(), true),
            "TASKFILE_DIR" => match &scope.taskfile_dir {
                Some(dir) => (format!("root ~ '/{dir}'"), true),
                None => ("root".into(), true),
            },
            _ if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.is_empty() =>
            {
                return None
            }
            _ => match scope.names.get(name) {
                Some((expr, splits)) => (expr.clone(), *splits),
                // go-task reads the environment for names no var sets.
                None => (format!("env.{name} | default('')"), true),
            },
        });
    }
    if word.len() >= 2 && word.starts_with('"') && word.ends_with('"') {
        let inner = &word[1..word.len() - 1];
        return Some((
            format!("'{}'", inner.replace('\\', "\\\\").replace('\'', "\\'")),
            false,
        ));
    }
    match word {
        "OS" => Some(("os".into(), false)),
        "ARCH" => Some(("arch".into(), false)),
        _ => None,
    }
}

/// An `if` condition: `.X`, `not .X`, `eq .X "y"`, `ne .X "y"`.
fn condition(words: &[&str], scope: &Scope) -> Option<String> {
    match words {
        [value] => Some(operand(value, scope)?.0),
        ["not", value] => Some(format!("not {}", operand(value, scope)?.0)),
        ["eq", a, b] => Some(format!(
            "{} == {}",
            operand(a, scope)?.0,
            operand(b, scope)?.0
        )),
        ["ne", a, b] => Some(format!(
            "{} != {}",
            operand(a, scope)?.0,
            operand(b, scope)?.0
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_templates_become_tasker_templates() {
        let mut scope = Scope::default();
        scope.names.insert("MODE".into(), ("MODE".into(), false));
        let at = Place {
            file: "Taskfile.yml".into(),
            line: 1,
        };
        let mut notes = Vec::new();
        let mut t = |s: &str| template(s, &scope, Context::Shell, &at, &mut notes);
        assert_eq!(t("go build {{.CLI_ARGS}}"), "go build {{ extra }}");
        assert_eq!(t("echo {{.MODE}}"), "echo {{ MODE }}");
        assert_eq!(
            t("echo {{.HOME}}"),
            "echo {{ env.HOME | default('') | safe }}"
        );
        assert_eq!(
            t("{{if eq .MODE \"release\"}}-O{{else}}-g{{end}}"),
            "{% if MODE == 'release' %}-O{% else %}-g{% endif %}"
        );
        assert_eq!(
            t("{{.MODE | default \"dev\"}}"),
            "{{ MODE | default('dev') }}"
        );
        assert_eq!(t("{{range .LIST}}"), "{{ '{{' | safe }}range .LIST}}");
        assert_eq!(notes.len(), 1);
    }
}
