//! What templates see (SPEC 4): the invocation-wide `Session` (vars,
//! environment layers, results of finished runs) and a run's `Scope`
//! (arguments, matrix values, `extra`). Vars are evaluated only when a
//! template that is about to be rendered reads them, at most once each.

use std::cell::Cell;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use minijinja::value::{Object, Value};

use crate::error::{closest, Error, Result};
use crate::model::{EnvEntry, Model, Template, VarValue, ROOT_UNIT};
use crate::template::{Engine, Mode};

pub type Env = BTreeMap<String, String>;

thread_local! {
    /// Set while this thread builds the `[env]` layer: vars evaluated then
    /// see the environment below `[env]`.
    static BUILDING_ENV: Cell<bool> = const { Cell::new(false) };
}

pub struct Session<'m> {
    pub model: &'m Model,
    pub engine: Engine,
    pub dry_run: bool,
    pub invocation_dir: PathBuf,
    overrides: BTreeMap<String, String>,
    base_env: OnceLock<Result<Arc<Env>>>,
    /// The values every scope starts from (`root`, `os`, ...), built once.
    root_values: OnceLock<Arc<BTreeMap<String, Value>>>,
    /// Per unit (file): the base environment with the `[env]` of the
    /// root file and of each includer down to the unit's own on top.
    unit_envs: Vec<OnceLock<Result<Arc<Env>>>>,
    var_order: OnceLock<Result<()>>,
    var_values: Lazies,
    results: Mutex<BTreeMap<String, Value>>,
    /// Dotenv files that were read, for `-v`.
    pub dotenv_read: Mutex<Vec<String>>,
}

/// The values one run's templates see besides vars.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    /// Shared between the scopes of a run (cheap to clone); changed with
    /// `Arc::make_mut`.
    pub values: Arc<BTreeMap<String, Value>>,
    pub env: Arc<Env>,
    /// The file whose vars templates of this scope see (SPEC 9).
    pub unit: usize,
    /// Variables a run puts over `env` for its steps (`TASKER_TASK`,
    /// `TASKER_ROOT`): kept beside the shared map rather than in a copy of
    /// it, which every run would pay for.
    pub added: Vec<(&'static str, String)>,
    /// The `vars` of the run's task, evaluated once per run when used.
    pub task_vars: Option<Arc<TaskVars>>,
}

/// A run's task `vars`: the scope they are rendered in (the run's
/// arguments and matrix values, the file's vars, the environment below the
/// task's `env`) and their values once known.
pub struct TaskVars {
    task: usize,
    base: Scope,
    values: Lazies,
}

impl TaskVars {
    /// The vars of task `task` for a run whose values `base` holds.
    pub fn new(model: &Model, task: usize, base: &Scope) -> Option<Arc<TaskVars>> {
        let count = model.tasks[task].vars.len();
        (count > 0).then(|| {
            Arc::new(TaskVars {
                task,
                base: Scope {
                    task_vars: None,
                    ..base.clone()
                },
                values: Lazies::new(count),
            })
        })
    }
}

impl std::fmt::Debug for TaskVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TaskVars(task {})", self.task)
    }
}

impl Scope {
    /// The environment the scope's processes get.
    pub fn process_env(&self) -> EnvView<'_> {
        EnvView {
            base: &self.env,
            added: &self.added,
        }
    }
}

/// An environment as processes get it: `base` with `added` over it.
#[derive(Clone, Copy)]
pub struct EnvView<'a> {
    pub base: &'a Env,
    pub added: &'a [(&'static str, String)],
}

impl<'a> EnvView<'a> {
    pub fn get(&self, key: &str) -> Option<&'a str> {
        match self.added.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(v),
            None => self.base.get(key).map(String::as_str),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every variable once, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let added = self.added;
        self.base
            .iter()
            .filter(move |(k, _)| !added.iter().any(|(a, _)| a == k))
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(added.iter().map(|(k, v)| (*k, v.as_str())))
    }

    /// The whole environment as one map, for templates that read `env`.
    pub fn to_map(self) -> Env {
        let mut env = self.base.clone();
        for (k, v) in self.added {
            env.insert((*k).to_string(), v.clone());
        }
        env
    }
}

impl<'m> Session<'m> {
    pub fn new(
        model: &'m Model,
        overrides: Vec<(String, String)>,
        dry_run: bool,
        invocation_dir: PathBuf,
    ) -> Result<Session<'m>> {
        let mut map = BTreeMap::new();
        for (name, value) in overrides {
            if !model.vars.iter().any(|v| v.name == name) {
                let err = Error::usage(format!(
                    "--set {name}: there is no var `{name}` in {}",
                    model.file.display
                ));
                let err = match closest(&name, model.vars.iter().map(|v| v.name.as_str())) {
                    Some(near) => err.with_help(format!("did you mean `{near}`?")),
                    None if model.vars.is_empty() => err.with_help("the file declares no [vars]"),
                    None => err.with_help(format!(
                        "the vars are: {}",
                        model
                            .vars
                            .iter()
                            .map(|v| v.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                return Err(err);
            }
            map.insert(name, value);
        }
        let session = Session {
            model,
            engine: Engine::new(),
            dry_run,
            invocation_dir,
            overrides: map,
            base_env: OnceLock::new(),
            root_values: OnceLock::new(),
            unit_envs: model.units.iter().map(|_| OnceLock::new()).collect(),
            var_order: OnceLock::new(),
            var_values: Lazies::new(model.vars.len()),
            results: Mutex::new(BTreeMap::new()),
            dotenv_read: Mutex::new(Vec::new()),
        };
        // Found now, so that a cycle stops the invocation before any run.
        session.check_var_cycles()?;
        Ok(session)
    }

    /// Dotenv files, then tasker's own environment.
    pub fn base_env(&self) -> Result<Arc<Env>> {
        self.base_env
            .get_or_init(|| {
                let mut env = Env::new();
                for name in &self.model.settings.dotenv {
                    let path = self.model.root.join(name);
                    if crate::dotenv::read_into(&path, name, &mut env)? {
                        self.dotenv_read.lock().unwrap().push(name.clone());
                    }
                }
                for (k, v) in std::env::vars_os() {
                    if let (Ok(k), Ok(v)) = (k.into_string(), v.into_string()) {
                        env.insert(k, v);
                    }
                }
                Ok(Arc::new(env))
            })
            .clone()
    }

    /// The environment of the tasks of `unit`: the base environment, the
    /// root file's `[env]`, and each included file's down to the unit's.
    pub fn unit_env(&self, unit: usize) -> Result<Arc<Env>> {
        if BUILDING_ENV.with(Cell::get) {
            return self.base_env();
        }
        self.unit_envs[unit]
            .get_or_init(|| {
                let below = match self.model.units[unit].parent {
                    Some(parent) => self.unit_env(parent)?,
                    None => self.base_env()?,
                };
                BUILDING_ENV.with(|b| b.set(true));
                let scope = Scope {
                    unit,
                    ..self.root_scope(below)
                };
                let what = match unit {
                    ROOT_UNIT => "[env]".to_string(),
                    _ => format!("[env] of {}", self.model.units[unit].file.display),
                };
                let result = self.layer_env(&scope, &self.model.units[unit].env, &what);
                BUILDING_ENV.with(|b| b.set(false));
                result
            })
            .clone()
    }

    /// The scope of templates of `unit` outside any task: its vars and
    /// its environment.
    pub fn unit_scope(&self, unit: usize) -> Result<Scope> {
        Ok(Scope {
            unit,
            ..self.root_scope(self.unit_env(unit)?)
        })
    }

    /// `scope.env` with `entries` rendered on top; each entry sees the
    /// ones before it.
    pub fn layer_env(&self, scope: &Scope, entries: &[EnvEntry], what: &str) -> Result<Arc<Env>> {
        if entries.is_empty() {
            return Ok(Arc::clone(&scope.env));
        }
        let mut scope = scope.clone();
        for entry in entries {
            let value = self.render(
                &entry.value,
                Mode::Plain,
                &scope,
                &format!("{what} entry `{}`", entry.name),
            )?;
            Arc::make_mut(&mut scope.env).insert(entry.name.clone(), value);
        }
        Ok(scope.env)
    }

    /// The scope of templates outside any task (vars, `[env]`).
    pub fn root_scope(&self, env: Arc<Env>) -> Scope {
        let values = self.root_values.get_or_init(|| {
            let mut values = BTreeMap::new();
            values.insert(
                "root".into(),
                Value::from(self.model.root.display().to_string()),
            );
            values.insert(
                "invocation_dir".into(),
                Value::from(self.invocation_dir.display().to_string()),
            );
            values.insert("os".into(), Value::from(std::env::consts::OS));
            values.insert("arch".into(), Value::from(std::env::consts::ARCH));
            Arc::new(values)
        });
        Scope {
            values: Arc::clone(values),
            env,
            unit: ROOT_UNIT,
            added: Vec::new(),
            task_vars: None,
        }
    }

    /// Record a finished run for `{{ tasks.NAME... }}`.
    pub fn record(&self, task: &str, result: Value) {
        self.results
            .lock()
            .unwrap()
            .insert(task.to_string(), result);
    }

    /// What `tasks.NAME` holds, when `task` ran in this invocation.
    pub fn result(&self, task: &str) -> Option<Value> {
        self.results.lock().unwrap().get(task).cloned()
    }

    /// Every `tasks.NAME` recorded so far.
    pub fn results(&self) -> BTreeMap<String, Value> {
        self.results.lock().unwrap().clone()
    }

    /// Render a template of a run: check every top-level name it reads,
    /// evaluate the vars it uses, then render.
    pub fn render(
        &self,
        template: &Template,
        mode: Mode,
        scope: &Scope,
        what: &str,
    ) -> Result<String> {
        if template.is_literal() {
            return Ok(template.source.clone());
        }
        let context = self.context_for(template, scope, what)?;
        self.engine.render(template, mode, &context, what)
    }

    /// A `cmd` element as its arguments: a list value is one per item.
    pub fn render_words(
        &self,
        template: &Template,
        scope: &Scope,
        what: &str,
    ) -> Result<Vec<String>> {
        if template.is_literal() {
            return Ok(vec![template.source.clone()]);
        }
        let context = self.context_for(template, scope, what)?;
        self.engine.render_words(template, &context, what)
    }

    fn context_for(
        &self,
        template: &Template,
        scope: &Scope,
        what: &str,
    ) -> Result<BTreeMap<String, Value>> {
        let names = self.engine.names(template, what)?;
        let mut context = BTreeMap::new();
        let mut seen = HashSet::new();
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        for path in &names {
            let top = path.split('.').next().unwrap_or(path);
            if !seen.insert(top.to_string()) && top != "tasks" {
                continue;
            }
            match top {
                "env" => {
                    context.insert("env".into(), Value::from(scope.process_env().to_map()));
                }
                "tasks" => {
                    if self.dry_run {
                        context.insert(
                            "tasks".into(),
                            Value::from_object(crate::template::Placeholder("tasks".into())),
                        );
                        continue;
                    }
                    let results = self.results.lock().unwrap().clone();
                    let prefix = self.model.units[scope.unit].prefix.clone();
                    if let Some(name) = path.split('.').nth(1) {
                        if !results.contains_key(name)
                            && !results.contains_key(&format!("{prefix}{name}"))
                        {
                            return Err(Error::at(
                                &template.span,
                                format!("{what} reads `tasks.{name}`, but task `{name}` has not run in this invocation"),
                            )
                            .with_label("no such run yet")
                            .with_help(format!(
                                "run `{name}` first, e.g. as a step before this one: {{ task = \"{name}\" }}"
                            )));
                        }
                    }
                    context.insert(
                        "tasks".into(),
                        Value::from_object(TaskResults(results, prefix)),
                    );
                }
                _ => {
                    let task_var = scope.task_vars.as_ref().and_then(|vars| {
                        let own = &self.model.tasks[vars.task].vars;
                        own.iter().position(|v| v.name == top).map(|i| (vars, i))
                    });
                    if let Some(value) = scope.values.get(top) {
                        context.insert(top.to_string(), value.clone());
                    } else if let Some((vars, i)) = task_var {
                        context.insert(top.to_string(), self.task_var(vars, i)?);
                    } else if let Some(index) = self.model.var_in(scope.unit, top) {
                        context.insert(top.to_string(), self.var_at(index)?);
                    } else {
                        return Err(self.unknown_name(template, top, scope, what));
                    }
                }
            }
        }
        Ok(context)
    }

    fn unknown_name(&self, template: &Template, name: &str, scope: &Scope, what: &str) -> Error {
        let mut known: Vec<&str> = scope.values.keys().map(String::as_str).collect();
        if let Some(vars) = &scope.task_vars {
            known.extend(
                self.model.tasks[vars.task]
                    .vars
                    .iter()
                    .map(|v| v.name.as_str()),
            );
        }
        let vars = self.model.vars_seen_from(scope.unit);
        known.extend(vars.iter().map(|v| v.name.as_str()));
        known.extend(crate::template::SCOPE_NAMES);
        crate::template::unknown_name(template, name, known, what)
    }

    /// The value of the root file's var `name` (after `--set`),
    /// evaluating it on first use.
    pub fn var(&self, name: &str) -> Result<Value> {
        let index = self
            .model
            .var_in(ROOT_UNIT, name)
            .expect("caller checked the var exists");
        self.var_at(index)
    }

    /// The value of the var at `index` of `model.vars` (after `--set`),
    /// evaluating it on first use in the scope of the file declaring it.
    fn var_at(&self, index: usize) -> Result<Value> {
        let var = &self.model.vars[index];
        let name = var.name.as_str();
        if let Some(value) = self.overrides.get(name) {
            return Ok(Value::from(value.as_str()));
        }
        self.check_var_cycles()?;
        if let Some(value) = self.var_values.done(index) {
            return Ok(value);
        }
        // The scope before the claim: building the file's `[env]` may read
        // this very var (which then sees the environment below `[env]`),
        // and no template renders while a claim waits on it.
        let scope = self.unit_scope(var.unit)?;
        let what = format!("var `{name}`");
        self.var_values
            .get_or_eval(index, &what, || match &var.value {
                VarValue::Literal(v) => Ok(v.clone()),
                VarValue::Template(t) => {
                    Ok(Value::from(self.render(t, Mode::Plain, &scope, &what)?))
                }
                VarValue::Sh(t) => {
                    let script = self.render(t, Mode::Shell, &scope, &what)?;
                    let dir = &self.model.units[var.unit].dir;
                    Ok(Value::from(
                        self.run_sh_var(name, &script, &scope.env, dir, &var.span)?,
                    ))
                }
            })
    }

    /// The value of var `index` of a run's task `vars`, evaluated on first
    /// use in the run's scope.
    fn task_var(&self, vars: &Arc<TaskVars>, index: usize) -> Result<Value> {
        if let Some(value) = vars.values.done(index) {
            return Ok(value);
        }
        let task = &self.model.tasks[vars.task];
        let var = &task.vars[index];
        let what = format!("var `{}` of task `{}`", var.name, task.name);
        vars.values.get_or_eval(index, &what, || {
            // Task vars may read each other: the scope sees them all.
            let scope = Scope {
                task_vars: Some(Arc::clone(vars)),
                ..vars.base.clone()
            };
            match &var.value {
                VarValue::Literal(v) => Ok(v.clone()),
                VarValue::Template(t) => {
                    Ok(Value::from(self.render(t, Mode::Plain, &scope, &what)?))
                }
                VarValue::Sh(t) => {
                    let script = self.render(t, Mode::Shell, &scope, &what)?;
                    let dir = &self.model.units[task.unit].dir;
                    Ok(Value::from(self.run_sh_var(
                        &var.name, &script, &scope.env, dir, &var.span,
                    )?))
                }
            }
        })
    }

    fn run_sh_var(
        &self,
        name: &str,
        script: &str,
        env: &Env,
        dir: &std::path::Path,
        span: &crate::error::Span,
    ) -> Result<String> {
        let shell = &self.model.settings.shell;
        let mut cmd = std::process::Command::new(&shell[0]);
        cmd.args(&shell[1..])
            .arg(script)
            .current_dir(dir)
            .env_clear()
            .envs(env)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit());
        let captured = crate::process::run_captured(cmd).map_err(|e| {
            Error::at(
                span,
                format!("var `{name}`: cannot run `{}`: {e}", shell[0]),
            )
            .with_label("this var runs a command")
        })?;
        let (status, stdout) = match captured {
            crate::process::Captured::Exited(status, stdout) => (status, stdout),
            crate::process::Captured::Stopped(sig) => {
                return Err(Error::run(
                    128 + sig,
                    format!("var `{name}`: stopped by a signal while its command ran"),
                ));
            }
        };
        if !status.success() {
            let status = crate::process::status_code(status);
            return Err(Error::at(
                span,
                format!("var `{name}`: its command `{script}` failed with status {status}"),
            )
            .with_label("this var runs a command"));
        }
        let text = String::from_utf8_lossy(&stdout);
        Ok(text.trim().to_string())
    }

    /// Vars may read vars; a cycle among them is an error, found once for
    /// the whole table before the first var is evaluated.
    fn check_var_cycles(&self) -> Result<()> {
        self.var_order
            .get_or_init(|| {
                check_var_cycles(&self.engine, self.model, |name| {
                    self.overrides.contains_key(name)
                })
            })
            .clone()
    }
}

/// A cycle among the vars of `model` is an error (vars set with `--set`,
/// `overridden`, read nothing). Checked when a session starts, before any
/// run, and by `--check`.
pub fn check_var_cycles(
    engine: &Engine,
    model: &Model,
    overridden: impl Fn(&str) -> bool,
) -> Result<()> {
    let vars = &model.vars;
    let mut uses: Vec<Vec<usize>> = Vec::with_capacity(vars.len());
    for var in vars {
        let template = match &var.value {
            VarValue::Template(t) | VarValue::Sh(t) if !overridden(&var.name) => t,
            _ => {
                uses.push(Vec::new());
                continue;
            }
        };
        let names = engine.names(template, &format!("var `{}`", var.name))?;
        let mut used: Vec<usize> = names
            .iter()
            .filter_map(|n| {
                let top = n.split('.').next().unwrap_or(n);
                model.var_in(var.unit, top)
            })
            .collect();
        used.sort_unstable();
        used.dedup();
        uses.push(used);
    }
    if let Some(cycle) = crate::cycles::find_cycle(vars.len(), |i| uses[i].clone()) {
        let mut path: Vec<&str> = cycle.iter().map(|&i| vars[i].name.as_str()).collect();
        // Close the loop, as run cycles print: `a -> b -> a`.
        path.push(path[0]);
        return Err(Error::at(
            &vars[cycle[0]].span,
            format!("cycle among vars: {}", path.join(" -> ")),
        )
        .with_label("this var depends on itself"));
    }
    // Evaluating a var evaluates the vars it reads first, one level of
    // nesting each: a bounded depth keeps that off the edge of the stack.
    let chain = crate::cycles::longest_chain(vars.len(), |i| uses[i].clone());
    if chain.len() > MAX_VAR_DEPTH {
        return Err(Error::at(
            &vars[chain[0]].span,
            format!(
                "var `{}` starts a chain of {} vars that read each other; at most {MAX_VAR_DEPTH} may",
                vars[chain[0]].name,
                chain.len()
            ),
        )
        .with_label("reads a var that reads a var ...")
        .with_help(format!(
            "the chain: {} -> ... -> {}",
            vars[chain[0]].name,
            vars[chain[chain.len() - 1]].name
        )));
    }
    Ok(())
}

/// Values computed on first use, once each, by whichever thread needs one
/// first. No lock is held while a value is computed: computing renders
/// templates, which may need other lazy values (SPEC 6: no command of
/// tasker waits on itself). A thread that needs a value another thread is
/// computing waits for it, and gives up at a stop request.
pub struct Lazies {
    slots: Mutex<Vec<Lazy>>,
    changed: Condvar,
}

#[derive(Clone)]
enum Lazy {
    Empty,
    /// Being computed by this thread.
    Busy(ThreadId),
    Done(Value),
}

impl Lazies {
    pub fn new(len: usize) -> Lazies {
        Lazies {
            slots: Mutex::new(vec![Lazy::Empty; len]),
            changed: Condvar::new(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Lazy>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value at `index`, when it is known.
    pub fn done(&self, index: usize) -> Option<Value> {
        match &self.slots()[index] {
            Lazy::Done(value) => Some(value.clone()),
            _ => None,
        }
    }

    /// The value at `index`, computed with `eval` when nobody has yet.
    /// `eval` runs with no lock held; a failure leaves the slot empty.
    pub fn get_or_eval(
        &self,
        index: usize,
        what: &str,
        eval: impl FnOnce() -> Result<Value>,
    ) -> Result<Value> {
        let me = std::thread::current().id();
        {
            let mut slots = self.slots();
            loop {
                match &slots[index] {
                    Lazy::Done(value) => return Ok(value.clone()),
                    Lazy::Empty => break,
                    // Cycles are found before anything is evaluated; this is
                    // the last line of defence, an error rather than a hang.
                    Lazy::Busy(owner) if *owner == me => {
                        return Err(Error::usage(format!("{what} needs its own value")));
                    }
                    Lazy::Busy(_) => {
                        if let Some(sig) = crate::stop::requested() {
                            return Err(Error::run(
                                128 + sig,
                                format!("{what}: stopped while waiting for its value"),
                            ));
                        }
                        slots = self
                            .changed
                            .wait_timeout(slots, Duration::from_millis(50))
                            .unwrap_or_else(|e| e.into_inner())
                            .0;
                    }
                }
            }
            slots[index] = Lazy::Busy(me);
        }
        // Released however `eval` ends, a panic included: a slot left busy
        // would keep every other thread that needs it waiting.
        let mut claim = Claim {
            lazies: self,
            index,
            value: None,
        };
        let value = eval()?;
        claim.value = Some(value.clone());
        Ok(value)
    }
}

/// A slot being computed; dropping it records the value (or frees the
/// slot) and wakes the threads waiting for it.
struct Claim<'a> {
    lazies: &'a Lazies,
    index: usize,
    value: Option<Value>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.lazies.slots()[self.index] = match self.value.take() {
            Some(value) => Lazy::Done(value),
            None => Lazy::Empty,
        };
        self.lazies.changed.notify_all();
    }
}

/// How deep vars may read each other (SPEC 6, Limits).
pub const MAX_VAR_DEPTH: usize = 256;

/// `tasks`: the results of runs that finished in this invocation.
#[derive(Debug)]
/// With the prefix of the file whose template reads them: a short name
/// there means one of that file's own tasks first (SPEC 9).
struct TaskResults(BTreeMap<String, Value>, String);

impl Object for TaskResults {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let own = self.0.get(&format!("{}{name}", self.1));
        Some(match own.or_else(|| self.0.get(name)) {
            Some(value) => value.clone(),
            None => Value::from(minijinja::Error::new(
                minijinja::ErrorKind::UndefinedError,
                format!("task `{name}` has not run in this invocation"),
            )),
        })
    }
}
