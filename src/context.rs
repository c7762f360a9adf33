//! What templates see (SPEC 4): the invocation-wide `Session` (vars,
//! environment layers, results of finished runs) and a run's `Scope`
//! (arguments, matrix values, `extra`). Vars are evaluated only when a
//! template that is about to be rendered reads them, at most once each,
//! by the one evaluator in `resolve`.

mod resolve;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use minijinja::value::{Object, Value};

use crate::error::{Error, Result};
use crate::model::{EnvEntry, Model, Template, ROOT_UNIT};
use crate::template::Mode;
pub use resolve::check_var_cycles;
use resolve::{EnvReads, Lazies, Node, VarGraph};

pub type Env = BTreeMap<String, String>;

pub struct Session<'m> {
    pub model: &'m Model,
    pub engine: crate::template::Engine,
    pub dry_run: bool,
    pub invocation_dir: PathBuf,
    overrides: BTreeMap<String, String>,
    base_env: OnceLock<Result<Arc<Env>>>,
    /// The values every scope starts from (`root`, `os`, ...), built once.
    root_values: OnceLock<Arc<BTreeMap<String, Value>>>,
    /// Per unit (file): the base environment with the `[env]` of the
    /// root file and of each includer down to the unit's own on top.
    env_values: Lazies<Arc<Env>>,
    /// Per unit: what its `[env]` reads.
    env_reads: Vec<OnceLock<Result<EnvReads>>>,
    var_graph: OnceLock<Result<VarGraph>>,
    var_values: Lazies<Value>,
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
    values: Lazies<Value>,
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

impl TaskVars {
    /// The scope task vars render in: the run's values, and each other.
    fn scope(self: &Arc<Self>) -> Scope {
        Scope {
            task_vars: Some(Arc::clone(self)),
            ..self.base.clone()
        }
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
                let names: Vec<&str> = model.vars.iter().map(|v| v.name.as_str()).collect();
                let otherwise = if names.is_empty() {
                    "the file declares no [vars]".to_string()
                } else {
                    format!("the vars are: {}", names.join(", "))
                };
                return Err(err.suggest_or(&name, names.iter().copied(), otherwise));
            }
            map.insert(name, value);
        }
        let session = Session {
            model,
            engine: crate::template::Engine::new(),
            dry_run,
            invocation_dir,
            overrides: map,
            base_env: OnceLock::new(),
            root_values: OnceLock::new(),
            env_values: Lazies::new(model.units.len()),
            env_reads: model.units.iter().map(|_| OnceLock::new()).collect(),
            var_graph: OnceLock::new(),
            var_values: Lazies::new(model.vars.len()),
            results: Mutex::new(BTreeMap::new()),
            dotenv_read: Mutex::new(Vec::new()),
        };
        // Found now, so that a cycle stops the invocation before any run.
        session.var_graph()?;
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
        let known = self.resolve(vec![Node::Env(unit)], &Scope::default())?;
        Ok(known.env(unit).unwrap_or_default())
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
    /// evaluate the lazy values it uses, then render.
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
        self.render_resolved(template, mode, scope, what)
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
        self.render_words_resolved(template, scope, what)
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
        let known = self.resolve(vec![Node::Var(index)], &Scope::default())?;
        Ok(known.var(index).unwrap_or_default())
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
}

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
