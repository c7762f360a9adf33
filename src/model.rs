//! The validated model of a `tasks.toml`: plain data, built once by
//! `file::load`, never changed afterwards and free of I/O. Strings that are
//! templates keep their span so that a later error can point at them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{SourceFile, Span};

#[derive(Debug)]
pub struct Model {
    /// The file tasker was pointed at (the first of `units`).
    pub file: Arc<SourceFile>,
    /// The directory holding the file.
    pub root: std::path::PathBuf,
    pub settings: Settings,
    /// The files: the root file first, then each included file (SPEC 9)
    /// after the file that includes it.
    pub units: Vec<Unit>,
    /// The vars of every file, each knowing its unit.
    pub vars: Vec<Var>,
    pub tasks: Vec<Task>,
    /// Task names and aliases (full names: `docs:build`) to their index in
    /// `tasks`.
    pub lookup: HashMap<String, usize>,
}

/// The root unit: the file tasker was pointed at.
pub const ROOT_UNIT: usize = 0;

/// One file of the model: the root file or an included one. Its tasks,
/// vars and `[env]` know it by index.
#[derive(Debug)]
pub struct Unit {
    pub file: Arc<SourceFile>,
    /// What its task names start with: empty for the root file, `docs:`
    /// for a file included as `docs`, `docs:api:` for one included by it.
    pub prefix: String,
    /// The directory holding the file: its tasks' default `dir` (a `dir`
    /// they set is relative to the root, as every task's is).
    pub dir: std::path::PathBuf,
    /// Other beginnings its task names have, through include `aliases`:
    /// `d:` for a file included as `docs` with `aliases = ["d"]`.
    pub other_prefixes: Vec<String>,
    /// The unit that includes this one.
    pub parent: Option<usize>,
    /// Its `[env]`, over the includer's for its own tasks.
    pub env: Vec<EnvEntry>,
}

impl Model {
    pub fn task(&self, name: &str) -> Option<usize> {
        self.lookup.get(name).copied()
    }

    /// The task that `name` means in a call written in `unit`: a short name
    /// is one of the unit's own tasks, `:name` one of its includer's.
    pub fn resolve(&self, unit: usize, name: &str) -> Option<usize> {
        if unit == ROOT_UNIT {
            return self.task(name);
        }
        let here = &self.units[unit];
        match (name.strip_prefix(':'), here.parent) {
            (Some(rest), Some(parent)) => self.resolve(parent, rest),
            _ => self.task(&format!("{}{name}", here.prefix)),
        }
    }

    /// The names a call written in `unit` can use, for suggestions.
    pub fn names_in(&self, unit: usize) -> Vec<String> {
        let prefix = &self.units[unit].prefix;
        self.lookup
            .keys()
            .filter_map(|n| n.strip_prefix(prefix.as_str()))
            .map(str::to_string)
            .collect()
    }

    /// A var of the root file.
    pub fn var(&self, name: &str) -> Option<&Var> {
        self.var_in(ROOT_UNIT, name).map(|i| &self.vars[i])
    }

    /// The index of the var `name` as templates of `unit` see it: the
    /// unit's own, else its includer's, up to the root file's.
    pub fn var_in(&self, unit: usize, name: &str) -> Option<usize> {
        let mut at = Some(unit);
        while let Some(u) = at {
            if let Some(i) = self.vars.iter().position(|v| v.unit == u && v.name == name) {
                return Some(i);
            }
            at = self.units[u].parent;
        }
        None
    }

    /// The vars templates of `unit` can read, nearest first.
    pub fn vars_seen_from(&self, unit: usize) -> Vec<&Var> {
        let mut seen: Vec<&Var> = Vec::new();
        let mut at = Some(unit);
        while let Some(u) = at {
            for var in self.vars.iter().filter(|v| v.unit == u) {
                if !seen.iter().any(|s| s.name == var.name) {
                    seen.push(var);
                }
            }
            at = self.units[u].parent;
        }
        seen
    }

    /// The `[env]` entries that reach the tasks of `unit`: the root file's,
    /// then each includer's down to the unit's own.
    pub fn env_of(&self, unit: usize) -> Vec<&EnvEntry> {
        let mut chain = vec![unit];
        while let Some(parent) = self.units[chain[chain.len() - 1]].parent {
            chain.push(parent);
        }
        chain
            .iter()
            .rev()
            .flat_map(|&u| &self.units[u].env)
            .collect()
    }

    /// A task's default `dir`: the directory of the file declaring it.
    pub fn base_dir(&self, task: &Task) -> &std::path::Path {
        &self.units[task.unit].dir
    }

    /// Every name a task can be called by, for suggestions.
    pub fn callable_names(&self) -> impl Iterator<Item = &str> {
        self.lookup.keys().map(String::as_str)
    }
}

#[derive(Debug)]
pub struct Settings {
    pub shell: Vec<String>,
    pub dotenv: Vec<String>,
    pub default: Option<(String, Span)>,
    pub jobs: Option<usize>,
    pub output: Option<OutputMode>,
    pub echo: bool,
    /// `queue`: the Redis URL runs of `distribute = true` tasks go to.
    pub queue: Option<String>,
    /// `queue_timeout`: a distributed run no worker took by then fails.
    pub queue_timeout: Option<Duration>,
    /// `remote_cache = { url, team }` (SPEC 7); the environment may fill
    /// in or override either.
    pub remote_cache: Option<RemoteCache>,
}

/// Where the remote cache is, as the file says.
#[derive(Clone, Debug, Default)]
pub struct RemoteCache {
    pub url: Option<String>,
    pub team: Option<String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            shell: vec!["sh".into(), "-e".into(), "-c".into()],
            dotenv: Vec::new(),
            default: None,
            jobs: None,
            output: None,
            echo: true,
            remote_cache: None,
            queue: None,
            queue_timeout: None,
        }
    }
}

/// `--remote-cache`: how this invocation may use the remote cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CacheUse {
    #[value(name = "readwrite")]
    ReadWrite,
    Read,
    Off,
}

/// How the output of overlapping runs is shown: `--output` and
/// `settings.output` take the names clap derives from the variants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputMode {
    Interleaved,
    Prefixed,
    Grouped,
}

impl OutputMode {
    pub fn parse(s: &str) -> Option<OutputMode> {
        clap::ValueEnum::from_str(s, false).ok()
    }

    /// The names, in declaration order.
    pub fn names() -> Vec<String> {
        value_names::<OutputMode>()
    }
}

/// The names of a `ValueEnum`'s values, in declaration order.
pub fn value_names<E: clap::ValueEnum>() -> Vec<String> {
    E::value_variants()
        .iter()
        .filter_map(|v| Some(v.to_possible_value()?.get_name().to_string()))
        .collect()
}

/// A string that is rendered with minijinja before use.
#[derive(Clone, Debug)]
pub struct Template {
    pub source: String,
    pub span: Span,
}

impl Template {
    /// True when rendering cannot change the text.
    pub fn is_literal(&self) -> bool {
        !self.source.contains("{{") && !self.source.contains("{%") && !self.source.contains("{#")
    }
}

#[derive(Debug)]
pub struct EnvEntry {
    pub name: String,
    pub value: Template,
}

#[derive(Debug)]
pub struct Var {
    pub name: String,
    /// The file that declares it (index into `Model::units`).
    pub unit: usize,
    pub span: Span,
    pub value: VarValue,
}

#[derive(Debug)]
pub enum VarValue {
    /// A string, rendered as a template on first use.
    Template(Template),
    /// A value that is not a string: number, bool, array.
    Literal(minijinja::Value),
    /// The trimmed stdout of a shell command, run on first use.
    Sh(Template),
}

/// A task. The keys most tasks use live here; the others in `TaskMore`,
/// boxed and only when a task sets one, so a file of thousands of plain
/// tasks stays small. `Task` derefs to `TaskMore`: `task.timeout` reads
/// the same either way.
#[derive(Debug)]
pub struct Task {
    /// The full name: `docs:build` for a task of a file included as `docs`.
    pub name: String,
    /// The file that declares it (index into `Model::units`).
    pub unit: usize,
    /// The span of the task's table header or key.
    pub span: Span,
    pub help: Option<String>,
    pub run: Vec<Step>,
    pub deps: Vec<Call>,
    pub args: Vec<Arg>,
    pub quiet: bool,
    pub private: bool,
    pub aliases: Vec<String>,
    pub group: Option<String>,
    pub more: Option<Box<TaskMore>>,
}

#[derive(Debug)]
pub struct TaskMore {
    pub post: Vec<Call>,
    pub finally: Vec<Step>,
    pub env: Vec<EnvEntry>,
    pub dir: Option<Template>,
    pub shell: Option<Vec<String>>,
    pub confirm: Option<Template>,
    pub platforms: Vec<Platform>,
    pub timeout: Option<Duration>,
    pub retries: u32,
    pub retry_delay: Duration,
    pub ignore_failure: bool,
    pub interactive: bool,
    pub pty: bool,
    pub background: bool,
    pub ready: Option<Pattern>,
    pub ready_timeout: Option<Duration>,
    pub matrix: Vec<MatrixAxis>,
    pub sources: Vec<String>,
    pub outputs: Vec<String>,
    /// `cache = false` keeps the task's results out of the remote cache.
    pub cache: bool,
    pub output: OutputKeys,
    /// With a queue, runs go to workers on other machines (SPEC 11).
    pub distribute: bool,
    /// `vars`: the task's own vars, over `[vars]`, evaluated once per run
    /// and only when used; they may read the task's arguments.
    pub vars: Vec<Var>,
    /// `status`: after its deps, the run is up to date when every one of
    /// these commands exits 0 (go-task's `status`).
    pub status: Vec<Template>,
    /// `preconditions`: each must exit 0 before the first step.
    pub preconditions: Vec<Precondition>,
    /// For a task with `sources`: the hash of each fingerprinted key's
    /// value as written (every task key but the presentation ones), in
    /// the order of the task keys (SPEC 7).
    pub definition: Vec<(&'static str, [u8; 32])>,
}

/// What a task that sets none of the `TaskMore` keys has.
pub static NO_MORE: TaskMore = TaskMore::empty();

impl TaskMore {
    /// Every key at its default.
    pub const fn empty() -> TaskMore {
        TaskMore {
            post: Vec::new(),
            finally: Vec::new(),
            env: Vec::new(),
            dir: None,
            shell: None,
            confirm: None,
            platforms: Vec::new(),
            timeout: None,
            retries: 0,
            retry_delay: Duration::ZERO,
            ignore_failure: false,
            interactive: false,
            pty: false,
            background: false,
            ready: None,
            ready_timeout: None,
            matrix: Vec::new(),
            sources: Vec::new(),
            outputs: Vec::new(),
            cache: true,
            output: OutputKeys {
                capture: false,
                extract: Vec::new(),
                expect: Vec::new(),
                fail_on: Vec::new(),
                respond: Vec::new(),
                hide: Hide::None,
            },
            distribute: false,
            vars: Vec::new(),
            status: Vec::new(),
            preconditions: Vec::new(),
            definition: Vec::new(),
        }
    }
}

/// A command that must succeed before a run's first step, and what to
/// say when it does not.
#[derive(Debug)]
pub struct Precondition {
    pub sh: Template,
    pub msg: Option<Template>,
}

impl std::ops::Deref for Task {
    type Target = TaskMore;

    fn deref(&self) -> &TaskMore {
        self.more.as_deref().unwrap_or(&NO_MORE)
    }
}

impl Task {
    /// Every call this task makes: `deps`, `post`, and the task steps of
    /// `run` and `finally`.
    pub fn calls(&self) -> impl Iterator<Item = &Call> {
        let steps = self
            .run
            .iter()
            .chain(&self.finally)
            .filter_map(|s| match &s.kind {
                StepKind::Task(call) => Some(call),
                _ => None,
            });
        self.deps.iter().chain(&self.post).chain(steps)
    }

    pub fn is_hidden(&self) -> bool {
        self.private || self.name.starts_with('_')
    }

    pub fn arg(&self, name: &str) -> Option<&Arg> {
        self.args.iter().find(|a| a.name == name)
    }

    pub fn help_first_line(&self) -> &str {
        self.help
            .as_deref()
            .and_then(|h| h.lines().find(|l| !l.trim().is_empty()))
            .map(str::trim)
            .unwrap_or("")
    }
}

/// The output keys of SPEC 5.
#[derive(Debug, Default)]
pub struct OutputKeys {
    pub capture: bool,
    pub extract: Vec<(String, Pattern)>,
    pub expect: Vec<Pattern>,
    pub fail_on: Vec<Pattern>,
    pub respond: Vec<Responder>,
    pub hide: Hide,
}

impl OutputKeys {
    /// True when tasker must read the run's output as it streams.
    pub fn reads_output(&self) -> bool {
        self.capture
            || !self.extract.is_empty()
            || !self.expect.is_empty()
            || !self.fail_on.is_empty()
            || !self.respond.is_empty()
            || self.hide != Hide::None
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Hide {
    #[default]
    None,
    Stdout,
    Stderr,
    Both,
}

impl Hide {
    pub fn stdout(self) -> bool {
        matches!(self, Hide::Stdout | Hide::Both)
    }
    pub fn stderr(self) -> bool {
        matches!(self, Hide::Stderr | Hide::Both)
    }
}

/// A regex, compiled at load so that a bad one is reported with its place.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub source: String,
    /// Matched against each line on its own (SPEC 5).
    pub regex: regex::bytes::Regex,
    pub span: Span,
}

#[derive(Debug)]
pub struct Responder {
    pub on: Pattern,
    pub send: Template,
}

#[derive(Debug)]
pub struct MatrixAxis {
    pub name: String,
    pub values: MatrixValues,
}

/// The most runs one task's matrix may expand to (SPEC 6, Limits).
pub const MAX_MATRIX_RUNS: u64 = 100_000;

/// The number of combinations of axes of these sizes, or, when it is
/// above `MAX_MATRIX_RUNS`, that number (saturated) as the error: counted
/// before anything is built.
pub fn matrix_size(sizes: impl IntoIterator<Item = usize>) -> Result<u64, u64> {
    let mut total: u64 = 1;
    for size in sizes {
        total = total.saturating_mul(size as u64);
    }
    if total > MAX_MATRIX_RUNS {
        Err(total)
    } else {
        Ok(total)
    }
}

#[derive(Debug)]
pub enum MatrixValues {
    List(Vec<minijinja::Value>),
    /// Rendered; each non-empty line is a value.
    Template(Template),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Linux,
    Macos,
    Windows,
    Unix,
}

impl Platform {
    pub const NAMES: [&'static str; 4] = ["linux", "macos", "windows", "unix"];

    pub fn parse(s: &str) -> Option<Platform> {
        match s {
            "linux" => Some(Platform::Linux),
            "macos" => Some(Platform::Macos),
            "windows" => Some(Platform::Windows),
            "unix" => Some(Platform::Unix),
            _ => None,
        }
    }

    pub fn is_current(self) -> bool {
        match self {
            Platform::Linux => cfg!(target_os = "linux"),
            Platform::Macos => cfg!(target_os = "macos"),
            Platform::Windows => cfg!(windows),
            Platform::Unix => cfg!(unix),
        }
    }
}

#[derive(Debug)]
pub struct Step {
    pub kind: StepKind,
    pub ignore_failure: bool,
    /// `quiet = true`: this step's command is not echoed (just's `@`).
    pub quiet: bool,
    pub dir: Option<Template>,
    pub span: Span,
}

#[derive(Debug)]
pub enum StepKind {
    /// A script handed to the shell.
    Sh(Template),
    /// A program and its arguments, no shell.
    Cmd(Vec<Template>),
    /// Stages connected stdout to stdin, each split into words.
    Pipe(Vec<Template>),
    /// Another task, run at this point.
    Task(Call),
}

/// A call of a task: a string parsed like the command line after rendering.
#[derive(Debug)]
pub struct Call {
    pub template: Template,
}

#[derive(Debug)]
pub struct Arg {
    pub name: String,
    pub span: Span,
    pub ty: ArgType,
    pub help: Option<String>,
    /// As written; for a templated default, its text.
    pub default: Option<ArgValue>,
    /// A `default` that is a template: rendered when the argument is not
    /// given, with the vars and the arguments before it in scope, then
    /// typed as if typed on the command line.
    pub default_template: Option<Template>,
    pub positional: bool,
    pub short: Option<char>,
    pub choices: Vec<ArgValue>,
    pub env: Option<String>,
    /// `required = false`: no default, and leaving it out is fine.
    pub optional: bool,
}

impl Arg {
    pub fn required(&self) -> bool {
        self.default.is_none()
            && !self.optional
            && !matches!(self.ty, ArgType::Bool | ArgType::Count | ArgType::List)
    }

    /// The flag as written on the command line: underscores become
    /// dashes; a one-letter name is a short flag only (`-k`), as invoke
    /// has it.
    pub fn flag(&self) -> String {
        if self.short_only() {
            format!("-{}", self.name)
        } else {
            format!("--{}", self.long_name())
        }
    }

    /// The name as a long flag spells it (`dry-run`), without the dashes.
    pub fn long_name(&self) -> String {
        self.name.replace('_', "-")
    }

    /// A one-letter argument: `-k`, and no `--k` beside it.
    pub fn short_only(&self) -> bool {
        self.name.len() == 1 && self.short == self.name.chars().next()
    }

    /// The value an argument has when nothing sets it.
    pub fn implicit_default(&self) -> Option<ArgValue> {
        match (&self.default, self.ty) {
            (Some(v), _) => Some(v.clone()),
            (None, ArgType::Bool) => Some(ArgValue::Bool(false)),
            (None, ArgType::Count) => Some(ArgValue::Count(0)),
            (None, ArgType::List) => Some(ArgValue::List(Vec::new())),
            (None, _) if self.optional => Some(ArgValue::Unset),
            (None, _) => None,
        }
    }

    /// `NAME` in upper case, for usage lines.
    pub fn metavar(&self) -> String {
        self.name.to_uppercase()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgType {
    String,
    Bool,
    Int,
    Float,
    List,
    Count,
}

impl ArgType {
    pub const NAMES: [&'static str; 6] = ["string", "bool", "int", "float", "list", "count"];

    pub fn parse(s: &str) -> Option<ArgType> {
        match s {
            "string" => Some(ArgType::String),
            "bool" => Some(ArgType::Bool),
            "int" => Some(ArgType::Int),
            "float" => Some(ArgType::Float),
            "list" => Some(ArgType::List),
            "count" => Some(ArgType::Count),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Bool => "bool",
            ArgType::Int => "int",
            ArgType::Float => "float",
            ArgType::List => "list",
            ArgType::Count => "count",
        }
    }

    /// Parse one command-line word as a value of this type (for `list`, one
    /// element).
    pub fn parse_value(self, word: &str) -> Result<ArgValue, String> {
        match self {
            ArgType::String => Ok(ArgValue::Str(word.to_string())),
            ArgType::List => Ok(ArgValue::List(vec![word.to_string()])),
            ArgType::Int => word
                .trim()
                .parse::<i64>()
                .map(ArgValue::Int)
                .map_err(|_| format!("`{word}` is not an integer")),
            ArgType::Float => match word.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(ArgValue::Float(f)),
                _ => Err(format!("`{word}` is not a number")),
            },
            ArgType::Bool => match word {
                "true" | "yes" | "1" | "on" => Ok(ArgValue::Bool(true)),
                "false" | "no" | "0" | "off" | "" => Ok(ArgValue::Bool(false)),
                _ => Err(format!("`{word}` is not true or false")),
            },
            ArgType::Count => word
                .trim()
                .parse::<u64>()
                .map(ArgValue::Count)
                .map_err(|_| format!("`{word}` is not a count")),
        }
    }
}

/// A typed argument value.
#[derive(Clone, Debug, PartialEq)]
pub enum ArgValue {
    Str(String),
    Bool(bool),
    Int(i64),
    Float(f64),
    List(Vec<String>),
    Count(u64),
    /// An optional argument (`required = false`) that was not given:
    /// `none` to templates, so `{% if name %}` is false.
    Unset,
}

impl ArgValue {
    pub fn to_value(&self) -> minijinja::Value {
        match self {
            ArgValue::Str(s) => minijinja::Value::from(s.as_str()),
            ArgValue::Bool(b) => minijinja::Value::from(*b),
            ArgValue::Int(i) => minijinja::Value::from(*i),
            ArgValue::Float(f) => minijinja::Value::from(*f),
            ArgValue::List(l) => minijinja::Value::from(l.clone()),
            ArgValue::Count(c) => minijinja::Value::from(*c),
            ArgValue::Unset => minijinja::Value::from(()),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ArgValue::Str(s) => s.as_str().into(),
            ArgValue::Bool(b) => (*b).into(),
            ArgValue::Int(i) => (*i).into(),
            ArgValue::Float(f) => (*f).into(),
            ArgValue::List(l) => l.clone().into(),
            ArgValue::Count(c) => (*c).into(),
            ArgValue::Unset => serde_json::Value::Null,
        }
    }

    /// How the value reads in help and run names.
    /// The value as messages and listings show it: spelled as commands
    /// get it (one value-to-text function, so `1.0` and `true` read the
    /// same everywhere); a list's items are joined with commas.
    pub fn display(&self) -> String {
        match self {
            ArgValue::List(l) => l.join(","),
            ArgValue::Unset => String::new(),
            other => plain_value(&other.to_value()),
        }
    }
}

/// A value as text, the one way tasker spells values (`true`, not `True`):
/// in commands, `env`, and the names of matrix runs.
pub fn plain_value(value: &minijinja::value::Value) -> String {
    if value.is_none() || value.is_undefined() {
        return String::new();
    }
    if let Some(s) = value.as_str() {
        return s.to_string();
    }
    // minijinja shows bools as Python does (`True`); commands, TOML and
    // every shell spell them `true` and `false`.
    if value.kind() == minijinja::value::ValueKind::Bool {
        return value.is_true().to_string();
    }
    if value.kind() == minijinja::value::ValueKind::Seq {
        if let Ok(items) = value.try_iter() {
            return items.map(|i| plain_value(&i)).collect::<Vec<_>>().join(" ");
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::{matrix_size, MAX_MATRIX_RUNS};

    #[test]
    fn matrix_size_is_the_product_up_to_the_limit() {
        assert_eq!(matrix_size([]), Ok(1));
        assert_eq!(matrix_size([100, 1000]), Ok(MAX_MATRIX_RUNS));
        assert_eq!(matrix_size([100, 1001]), Err(100_100));
        assert_eq!(matrix_size([0, 1 << 40]), Ok(0));
        assert_eq!(matrix_size([usize::MAX, usize::MAX]), Err(u64::MAX));
    }
}
