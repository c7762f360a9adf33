//! The one evaluator of lazy values: the vars, each file's `[env]` and a
//! run's task `vars`. What each of them reads is known before any is
//! computed (the names its templates read), so the values a template needs
//! are computed first, what they read before them, one at a time and
//! without recursion; the template then renders from values that are all
//! there. Nothing renders while a value it reads is half computed, no
//! claim on a value is held while waiting for another, and computing a
//! value never calls back into the evaluator (SPEC 6: no command of tasker
//! waits on itself).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use minijinja::value::Value;

use super::{Env, Scope, Session, TaskResults};
use crate::error::{Error, Result};
use crate::model::{Model, Template, VarValue};
use crate::template::{Engine, Mode};

/// A value the evaluator computes once: per invocation (`Var`, `Env`) or
/// per run (`TaskVar`, of the scope's `task_vars`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum Node {
    /// `model.vars[i]`.
    Var(usize),
    /// The environment of the tasks of a unit: its `[env]` over its
    /// includer's, down to the dotenv files and tasker's environment.
    Env(usize),
    /// The run's task var `i`.
    TaskVar(usize),
}

/// What a top-level name of a template is, where the template is.
enum Read {
    /// A value of the scope (an argument, `matrix`, `root`, ...).
    Value,
    Env,
    Tasks,
    TaskVar(usize),
    Var(usize),
}

/// The values a walk computed or found computed, for the templates that
/// render after it.
#[derive(Default)]
pub(super) struct Known {
    vars: HashMap<usize, Value>,
    task_vars: HashMap<usize, Value>,
    envs: HashMap<usize, Arc<Env>>,
}

impl Known {
    fn has(&self, node: Node) -> bool {
        match node {
            Node::Var(i) => self.vars.contains_key(&i),
            Node::TaskVar(i) => self.task_vars.contains_key(&i),
            Node::Env(u) => self.envs.contains_key(&u),
        }
    }

    pub(super) fn env(&self, unit: usize) -> Option<Arc<Env>> {
        self.envs.get(&unit).cloned()
    }

    pub(super) fn var(&self, index: usize) -> Option<Value> {
        self.vars.get(&index).cloned()
    }
}

/// What each var reads, found once per invocation (and by `--check`).
pub(super) struct VarGraph {
    /// The vars each var's template reads.
    uses: Vec<Vec<usize>>,
    /// Whether its value depends on the environment: it reads `env`, or
    /// it is an `sh` var (its command runs in that environment).
    needs_env: Vec<bool>,
}

/// What a file's `[env]` reads: the vars its entries read, and every var
/// those read in turn. A var among these sees the environment below that
/// `[env]` (SPEC 4), so that `[env]` can use it.
pub(super) struct EnvReads {
    direct: Vec<usize>,
    reached: HashSet<usize>,
}

/// The vars of `model` and what each reads (vars set with `--set`,
/// `overridden`, read nothing): a cycle among them is an error, and so is
/// a chain deeper than SPEC 6 allows.
pub(super) fn var_graph(
    engine: &Engine,
    model: &Model,
    overridden: impl Fn(&str) -> bool,
) -> Result<VarGraph> {
    let vars = &model.vars;
    let mut uses: Vec<Vec<usize>> = Vec::with_capacity(vars.len());
    let mut needs_env = Vec::with_capacity(vars.len());
    for var in vars {
        let template = match &var.value {
            VarValue::Template(t) | VarValue::Sh(t) if !overridden(&var.name) => t,
            _ => {
                uses.push(Vec::new());
                needs_env.push(false);
                continue;
            }
        };
        let names = engine.names(template, &format!("var `{}`", var.name))?;
        let tops: HashSet<&str> = names.iter().map(|n| top(n)).collect();
        let mut used: Vec<usize> = tops
            .iter()
            .filter_map(|t| model.var_in(var.unit, t))
            .collect();
        used.sort_unstable();
        used.dedup();
        uses.push(used);
        needs_env.push(tops.contains("env") || matches!(var.value, VarValue::Sh(_)));
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
    Ok(VarGraph { uses, needs_env })
}

/// How deep vars may read each other (SPEC 6, Limits).
const MAX_VAR_DEPTH: usize = 256;

fn top(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

impl Session<'_> {
    /// What a top-level name means in `scope`: its values first, then the
    /// run's task vars, then the vars its file sees.
    fn read(&self, name: &str, scope: &Scope) -> Option<Read> {
        match name {
            "env" => return Some(Read::Env),
            "tasks" => return Some(Read::Tasks),
            _ => {}
        }
        if scope.values.contains_key(name) {
            return Some(Read::Value);
        }
        if let Some(vars) = &scope.task_vars {
            let own = &self.model.tasks[vars.task].vars;
            if let Some(i) = own.iter().position(|v| v.name == name) {
                return Some(Read::TaskVar(i));
            }
        }
        self.model.var_in(scope.unit, name).map(Read::Var)
    }

    /// The values `names` (read by `template` in `scope`) need computed,
    /// or the error for a name that is nothing there.
    fn needs(
        &self,
        template: &Template,
        names: &[String],
        scope: &Scope,
        what: &str,
    ) -> Result<Vec<Node>> {
        let mut nodes = Vec::new();
        for name in names {
            match self.read(top(name), scope) {
                Some(Read::Var(i)) => nodes.push(Node::Var(i)),
                Some(Read::TaskVar(i)) => nodes.push(Node::TaskVar(i)),
                Some(_) => {}
                None => return Err(self.unknown_name(template, top(name), scope, what)),
            }
        }
        Ok(nodes)
    }

    /// What `template` reads, top-level names sorted and each once
    /// (`tasks.NAME` paths kept whole: each is checked).
    fn names_of(&self, template: &Template, what: &str) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.engine.names(template, what)?.into_iter().collect();
        names.sort();
        let mut seen = HashSet::new();
        names.retain(|n| top(n) == "tasks" || seen.insert(top(n).to_string()));
        Ok(names)
    }

    /// Render `template` in `scope`: the lazy values it reads are computed
    /// first, then it renders from them.
    pub(super) fn render_resolved(
        &self,
        template: &Template,
        mode: Mode,
        scope: &Scope,
        what: &str,
    ) -> Result<String> {
        let names = self.names_of(template, what)?;
        let needs = self.needs(template, &names, scope, what)?;
        let known = self.resolve(needs, scope)?;
        let context = self.context(template, &names, scope, what, &known)?;
        self.engine.render(template, mode, &context, what)
    }

    /// `render_resolved` for a `cmd` element: a list value is one word per
    /// item.
    pub(super) fn render_words_resolved(
        &self,
        template: &Template,
        scope: &Scope,
        what: &str,
    ) -> Result<Vec<String>> {
        let names = self.names_of(template, what)?;
        let needs = self.needs(template, &names, scope, what)?;
        let known = self.resolve(needs, scope)?;
        let context = self.context(template, &names, scope, what, &known)?;
        self.engine.render_words(template, &context, what)
    }

    /// Compute `roots` and everything they read, what is read first; a
    /// value another thread is computing is waited for. `scope` holds the
    /// run's task vars, if any.
    pub(super) fn resolve(&self, roots: Vec<Node>, scope: &Scope) -> Result<Known> {
        let mut known = Known::default();
        // Depth first, without recursion: a node is pushed once to have
        // what it reads pushed above it, and once more to be computed
        // when all of that is known.
        let mut stack: Vec<(Node, bool)> = roots.into_iter().rev().map(|n| (n, false)).collect();
        let mut path: Vec<Node> = Vec::new();
        while let Some((node, ready)) = stack.pop() {
            if known.has(node) {
                continue;
            }
            if ready {
                path.pop();
                self.compute(node, scope, &mut known)?;
                continue;
            }
            if self.take_done(node, scope, &mut known) {
                continue;
            }
            if let Some(at) = path.iter().position(|n| *n == node) {
                return Err(self.cycle(&path[at..], scope));
            }
            path.push(node);
            stack.push((node, true));
            for dep in self.reads_of(node, scope)?.into_iter().rev() {
                if !known.has(dep) {
                    stack.push((dep, false));
                }
            }
        }
        Ok(known)
    }

    /// A value computed earlier (by this invocation or run), into `known`.
    fn take_done(&self, node: Node, scope: &Scope, known: &mut Known) -> bool {
        match node {
            Node::Var(i) => match self.overrides.get(&self.model.vars[i].name) {
                Some(value) => known.vars.insert(i, Value::from(value.as_str())).is_none(),
                None => self
                    .var_values
                    .done(i)
                    .map(|v| known.vars.insert(i, v))
                    .is_some(),
            },
            Node::Env(u) => self
                .env_values
                .done(u)
                .map(|e| known.envs.insert(u, e))
                .is_some(),
            Node::TaskVar(i) => scope
                .task_vars
                .as_ref()
                .and_then(|vars| vars.values.done(i))
                .map(|v| known.task_vars.insert(i, v))
                .is_some(),
        }
    }

    /// The values `node` reads.
    fn reads_of(&self, node: Node, scope: &Scope) -> Result<Vec<Node>> {
        match node {
            Node::Var(i) => {
                let graph = self.var_graph()?;
                let mut reads: Vec<Node> = graph.uses[i].iter().map(|&v| Node::Var(v)).collect();
                if graph.needs_env[i] {
                    reads.extend(self.env_of_var(i)?.map(Node::Env));
                }
                Ok(reads)
            }
            Node::Env(u) => {
                let mut reads: Vec<Node> = self.model.units[u]
                    .parent
                    .map(Node::Env)
                    .into_iter()
                    .collect();
                reads.extend(self.env_reads(u)?.direct.iter().map(|&v| Node::Var(v)));
                Ok(reads)
            }
            Node::TaskVar(i) => {
                let Some(vars) = &scope.task_vars else {
                    return Ok(Vec::new());
                };
                let task = &self.model.tasks[vars.task];
                let var = &task.vars[i];
                let what = format!("var `{}` of task `{}`", var.name, task.name);
                let own = vars.scope();
                match &var.value {
                    VarValue::Template(t) | VarValue::Sh(t) => {
                        let names = self.names_of(t, &what)?;
                        self.needs(t, &names, &own, &what)
                    }
                    VarValue::Literal(_) => Ok(Vec::new()),
                }
            }
        }
    }

    /// The environment var `index` sees: its file's (`Env` of its unit),
    /// or, when that file's `[env]` reads it, the one below that `[env]`
    /// (the includer's, or `None`: the dotenv files and tasker's own).
    fn env_of_var(&self, index: usize) -> Result<Option<usize>> {
        let unit = self.model.vars[index].unit;
        Ok(if self.env_reads(unit)?.reached.contains(&index) {
            self.model.units[unit].parent
        } else {
            Some(unit)
        })
    }

    pub(super) fn var_graph(&self) -> Result<&VarGraph> {
        self.var_graph
            .get_or_init(|| {
                var_graph(&self.engine, self.model, |name| {
                    self.overrides.contains_key(name)
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn env_reads(&self, unit: usize) -> Result<&EnvReads> {
        self.env_reads[unit]
            .get_or_init(|| {
                let graph = self.var_graph()?;
                let mut direct = Vec::new();
                for entry in &self.model.units[unit].env {
                    let what = format!("[env] entry `{}`", entry.name);
                    for name in self.engine.names(&entry.value, &what)? {
                        if let Some(i) = self.model.var_in(unit, top(&name)) {
                            direct.push(i);
                        }
                    }
                }
                direct.sort_unstable();
                direct.dedup();
                let mut reached: HashSet<usize> = HashSet::new();
                let mut todo = direct.clone();
                while let Some(v) = todo.pop() {
                    if reached.insert(v) {
                        todo.extend(graph.uses[v].iter().copied());
                    }
                }
                Ok(EnvReads { direct, reached })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Compute `node`, whose reads are all in `known`, once for the
    /// invocation (or run): a thread that finds another computing it
    /// waits for that value instead.
    fn compute(&self, node: Node, scope: &Scope, known: &mut Known) -> Result<()> {
        match node {
            Node::Var(i) => {
                let name = &self.model.vars[i].name;
                let what = format!("var `{name}`");
                let value = self
                    .var_values
                    .get_or_eval(i, &what, || self.compute_var(i, known, &what))?;
                known.vars.insert(i, value);
            }
            Node::Env(u) => {
                let what = match u {
                    crate::model::ROOT_UNIT => "[env]".to_string(),
                    _ => format!("[env] of {}", self.model.units[u].file.display),
                };
                let env = self
                    .env_values
                    .get_or_eval(u, &what, || self.compute_env(u, known, &what))?;
                known.envs.insert(u, env);
            }
            Node::TaskVar(i) => {
                let Some(vars) = &scope.task_vars else {
                    return Ok(());
                };
                let task = &self.model.tasks[vars.task];
                let var = &task.vars[i];
                let what = format!("var `{}` of task `{}`", var.name, task.name);
                let value = vars.values.get_or_eval(i, &what, || {
                    let own = vars.scope();
                    match &var.value {
                        VarValue::Literal(v) => Ok(v.clone()),
                        VarValue::Template(t) => {
                            let text = self.render_known(t, Mode::Plain, &own, &what, known)?;
                            Ok(Value::from(text))
                        }
                        VarValue::Sh(t) => {
                            let script = self.render_known(t, Mode::Shell, &own, &what, known)?;
                            let dir = &self.model.units[task.unit].dir;
                            let out =
                                self.run_sh_var(&var.name, &script, &own.env, dir, &var.span)?;
                            Ok(Value::from(out))
                        }
                    }
                })?;
                known.task_vars.insert(i, value);
            }
        }
        Ok(())
    }

    fn compute_var(&self, index: usize, known: &Known, what: &str) -> Result<Value> {
        let var = &self.model.vars[index];
        let env = if !self.var_graph()?.needs_env[index] {
            Arc::new(Env::new())
        } else if let Some(unit) = self.env_of_var(index)? {
            known.env(unit).ok_or_else(|| not_computed(what, "env"))?
        } else {
            self.base_env()?
        };
        let scope = Scope {
            unit: var.unit,
            ..self.root_scope(env)
        };
        match &var.value {
            VarValue::Literal(v) => Ok(v.clone()),
            VarValue::Template(t) => Ok(Value::from(self.render_known(
                t,
                Mode::Plain,
                &scope,
                what,
                known,
            )?)),
            VarValue::Sh(t) => {
                let script = self.render_known(t, Mode::Shell, &scope, what, known)?;
                let dir = &self.model.units[var.unit].dir;
                Ok(Value::from(self.run_sh_var(
                    &var.name, &script, &scope.env, dir, &var.span,
                )?))
            }
        }
    }

    /// A unit's environment: its includer's (or the base one) with the
    /// unit's `[env]` entries rendered on top, each seeing those before.
    fn compute_env(&self, unit: usize, known: &Known, what: &str) -> Result<Arc<Env>> {
        let below = match self.model.units[unit].parent {
            Some(parent) => known.env(parent).ok_or_else(|| not_computed(what, "env"))?,
            None => self.base_env()?,
        };
        let mut scope = Scope {
            unit,
            ..self.root_scope(below)
        };
        for entry in &self.model.units[unit].env {
            let what = format!("{what} entry `{}`", entry.name);
            let value = self.render_known(&entry.value, Mode::Plain, &scope, &what, known)?;
            Arc::make_mut(&mut scope.env).insert(entry.name.clone(), value);
        }
        Ok(scope.env)
    }

    /// Render `template` from values already computed (`known`).
    fn render_known(
        &self,
        template: &Template,
        mode: Mode,
        scope: &Scope,
        what: &str,
        known: &Known,
    ) -> Result<String> {
        if template.is_literal() {
            return Ok(template.source.clone());
        }
        let names = self.names_of(template, what)?;
        let context = self.context(template, &names, scope, what, known)?;
        self.engine.render(template, mode, &context, what)
    }

    /// The values `names` (read by `template`) have in `scope`, lazy ones
    /// from `known`.
    fn context(
        &self,
        template: &Template,
        names: &[String],
        scope: &Scope,
        what: &str,
        known: &Known,
    ) -> Result<BTreeMap<String, Value>> {
        let mut context = BTreeMap::new();
        for path in names {
            let name = top(path);
            let value = match self.read(name, scope) {
                Some(Read::Env) => Value::from(scope.process_env().to_map()),
                Some(Read::Tasks) => self.tasks_value(template, path, scope, what)?,
                Some(Read::Value) => scope.values[name].clone(),
                Some(Read::TaskVar(i)) => known
                    .task_vars
                    .get(&i)
                    .cloned()
                    .ok_or_else(|| not_computed(what, name))?,
                Some(Read::Var(i)) => known.var(i).ok_or_else(|| not_computed(what, name))?,
                None => return Err(self.unknown_name(template, name, scope, what)),
            };
            context.insert(name.to_string(), value);
        }
        Ok(context)
    }

    /// `tasks`, for a template that reads `path` (`tasks.NAME...`): the
    /// results so far, or an error when `NAME` has not run.
    fn tasks_value(
        &self,
        template: &Template,
        path: &str,
        scope: &Scope,
        what: &str,
    ) -> Result<Value> {
        if self.dry_run {
            return Ok(Value::from_object(crate::template::Placeholder(
                "tasks".into(),
            )));
        }
        let results = self.results.lock().unwrap().clone();
        let prefix = self.model.units[scope.unit].prefix.clone();
        if let Some(name) = path.split('.').nth(1) {
            if !results.contains_key(name) && !results.contains_key(&format!("{prefix}{name}")) {
                return Err(Error::at(
                    &template.span,
                    format!(
                        "{what} reads `tasks.{name}`, but task `{name}` has not run in this invocation"
                    ),
                )
                .with_label("no such run yet")
                .with_help(format!(
                    "run `{name}` first, e.g. as a step before this one: {{ task = \"{name}\" }}"
                )));
            }
        }
        Ok(Value::from_object(TaskResults(results, prefix)))
    }

    /// The error for a cycle the walk found: `path` starts at the value
    /// read again.
    fn cycle(&self, path: &[Node], scope: &Scope) -> Error {
        let name = |node: &Node| match *node {
            Node::Var(i) => self.model.vars[i].name.clone(),
            Node::Env(u) => match u {
                crate::model::ROOT_UNIT => "[env]".to_string(),
                _ => format!("[env] of {}", self.model.units[u].file.display),
            },
            Node::TaskVar(i) => scope
                .task_vars
                .as_ref()
                .map(|v| self.model.tasks[v.task].vars[i].name.clone())
                .unwrap_or_default(),
        };
        let mut names: Vec<String> = path.iter().map(name).collect();
        names.push(names[0].clone());
        let span = match path[0] {
            Node::Var(i) => Some(&self.model.vars[i].span),
            Node::TaskVar(i) => scope
                .task_vars
                .as_ref()
                .map(|v| &self.model.tasks[v.task].vars[i].span),
            Node::Env(_) => None,
        };
        let message = match (path[0], &scope.task_vars) {
            (Node::TaskVar(_), Some(vars)) => format!(
                "cycle among the vars of task `{}`: {}",
                self.model.tasks[vars.task].name,
                names.join(" -> ")
            ),
            _ => format!("cycle among vars: {}", names.join(" -> ")),
        };
        match span {
            Some(span) => Error::at(span, message).with_label("this var depends on itself"),
            None => Error::usage(message),
        }
    }
}

fn not_computed(what: &str, name: &str) -> Error {
    Error::usage(format!("{what}: `{name}` was read before it was computed"))
}

/// Values computed on first use, once each, by whichever thread needs one
/// first. No lock is held while a value is computed, and the evaluator
/// holds no claim while it waits for another: a thread that needs a value
/// another thread is computing waits for it, and gives up at a stop
/// request.
pub struct Lazies<T> {
    slots: Mutex<Vec<Lazy<T>>>,
    changed: Condvar,
}

#[derive(Clone)]
enum Lazy<T> {
    Empty,
    /// Being computed by this thread.
    Busy(ThreadId),
    Done(T),
}

impl<T: Clone> Lazies<T> {
    pub fn new(len: usize) -> Lazies<T> {
        Lazies {
            slots: Mutex::new(vec![Lazy::Empty; len]),
            changed: Condvar::new(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Lazy<T>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value at `index`, when it is known.
    pub fn done(&self, index: usize) -> Option<T> {
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
        eval: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let me = std::thread::current().id();
        {
            let mut slots = self.slots();
            loop {
                match &slots[index] {
                    Lazy::Done(value) => return Ok(value.clone()),
                    Lazy::Empty => break,
                    // The walk computes what a value reads before it: this
                    // is the last line of defence, an error, not a hang.
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
struct Claim<'a, T> {
    lazies: &'a Lazies<T>,
    index: usize,
    value: Option<T>,
}

impl<T> Drop for Claim<'_, T> {
    fn drop(&mut self) {
        let mut slots = self.lazies.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots[self.index] = match self.value.take() {
            Some(value) => Lazy::Done(value),
            None => Lazy::Empty,
        };
        drop(slots);
        self.lazies.changed.notify_all();
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
    var_graph(engine, model, overridden).map(|_| ())
}
