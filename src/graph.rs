//! The graph of runs (SPEC 6), built before anything runs: the invoked
//! tasks, their deps and posts with every call's arguments resolved, and
//! matrix expansions. A run is a task plus argument values plus matrix
//! combination, and exists once however many callers it has.

use std::collections::HashMap;

use minijinja::value::Value;

use crate::args::{self, Invocation};
use crate::context::{Scope, Session, TaskVars};
use crate::cycles::{find_cycle, longest_chain};
use crate::error::{Error, Result};
use crate::model::{matrix_size, Call, MatrixValues, Model, StepKind, Task, MAX_MATRIX_RUNS};
use crate::template::Mode;

pub type RunId = usize;

/// How deep calls may nest before tasker assumes endless expansion.
const MAX_DEPTH: usize = 256;

#[derive(Clone, Debug)]
pub struct Run {
    pub task: usize,
    /// `build`, or `build[os=linux]` for a matrix run.
    pub name: String,
    /// What its templates see; `env` includes the task's own `env`.
    pub scope: Scope,
    /// Runs that must succeed before this one starts.
    pub deps: Vec<RunId>,
    /// Runs that must have ended (any way) before this one starts.
    pub after: Vec<RunId>,
    /// Runs that start once this one succeeded.
    pub posts: Vec<RunId>,
    /// The runs whose `post` this one is (also in `deps`): these edges are
    /// "after", not "needs", when deciding whether a post is already a dep.
    pub post_of: Vec<RunId>,
    /// How deep in calls (deps, posts, `task` steps) this run was added.
    pub depth: usize,
}

#[derive(Default)]
pub struct Graph {
    pub runs: Vec<Run>,
    keys: HashMap<String, RunId>,
}

impl Graph {
    /// The graph of the tasks named on the command line, checked for
    /// cycles. Unless `parallel`, each task's new runs wait for everything
    /// the task before it started, posts included.
    pub fn of_command_line(
        session: &Session,
        invocations: &[Invocation],
        parallel: bool,
    ) -> Result<Graph> {
        let mut graph = Graph::default();
        let mut previous = Vec::new();
        for inv in invocations {
            let before = graph.runs.len();
            let ids = graph.add_invocation(session, inv, 0)?;
            if !parallel && !previous.is_empty() {
                // Only the new runs that start first need the edges: the
                // others wait for those.
                for id in before..graph.runs.len() {
                    if graph.runs[id].deps.iter().any(|&d| d >= before) {
                        continue;
                    }
                    for &p in &previous {
                        if p != id && !graph.waits_on(p, id) {
                            graph.runs[id].after.push(p);
                        }
                    }
                }
            }
            previous = graph.with_posts(&ids);
        }
        graph.check_cycles()?;
        let mut tasks: Vec<usize> = graph.runs.iter().map(|r| r.task).collect();
        tasks.sort_unstable();
        tasks.dedup();
        check_literal_calls(session.model, Some(&tasks))?;
        Ok(graph)
    }

    /// Add the runs of one invocation (one per matrix combination) with
    /// everything they call; returns the invocation's own runs.
    pub fn add_invocation(
        &mut self,
        session: &Session,
        inv: &Invocation,
        depth: usize,
    ) -> Result<Vec<RunId>> {
        let task = &session.model.tasks[inv.task];
        if depth > MAX_DEPTH {
            return Err(Error::at(
                &task.span,
                format!("calls nest more than {MAX_DEPTH} deep at task `{}`: do its calls expand forever?", task.name),
            ));
        }
        let mut scope = session.unit_scope(task.unit)?;
        let values = std::sync::Arc::make_mut(&mut scope.values);
        values.insert("task".into(), Value::from(task.name.as_str()));
        values.insert("extra".into(), Value::from(inv.extra.clone()));
        let inv = &resolve_defaults(session, inv, &mut scope)?;
        let combos = matrix_combinations(session, task, &scope)?;
        let mut ids = Vec::with_capacity(combos.len());
        for combo in combos {
            let mut scope = scope.clone();
            let mut name = task.name.clone();
            if !combo.is_empty() {
                let parts: Vec<String> = combo
                    .iter()
                    .map(|(k, v)| format!("{k}={}", crate::model::plain_value(v)))
                    .collect();
                name = format!("{name}[{}]", parts.join(","));
            }
            if !combo.is_empty() {
                let values = std::sync::Arc::make_mut(&mut scope.values);
                for (k, v) in &combo {
                    values.insert(k.clone(), v.clone());
                }
            }
            let key = format!("{}\0{:?}\0{:?}\0{name}", inv.task, inv.values, inv.extra);
            if let Some(&id) = self.keys.get(&key) {
                ids.push(id);
                continue;
            }
            scope.task_vars = TaskVars::new(session.model, inv.task, &scope);
            scope.env =
                session.layer_env(&scope, &task.env, &format!("`env` of task `{}`", task.name))?;
            let id = self.runs.len();
            self.keys.insert(key, id);
            self.runs.push(Run {
                task: inv.task,
                name,
                scope,
                deps: Vec::new(),
                after: Vec::new(),
                posts: Vec::new(),
                post_of: Vec::new(),
                depth,
            });
            self.add_calls(session, id, depth)?;
            ids.push(id);
        }
        Ok(ids)
    }

    fn add_calls(&mut self, session: &Session, id: RunId, depth: usize) -> Result<()> {
        let task = &session.model.tasks[self.runs[id].task];
        for call in &task.deps {
            for inv in resolve_call(session, task, call, &self.runs[id].scope)? {
                let deps = self.add_invocation(session, &inv, depth + 1)?;
                self.runs[id].deps.extend(deps);
            }
        }
        for call in &task.post {
            for inv in resolve_call(session, task, call, &self.runs[id].scope)? {
                for post in self.add_invocation(session, &inv, depth + 1)? {
                    if post == id {
                        return Err(Error::at(
                            &call.template.span,
                            format!(
                                "dependency cycle: {} -> {}",
                                self.runs[id].name, self.runs[id].name
                            ),
                        )
                        .with_label("a task in its own `post`"));
                    }
                    // A post that this run needs (a dep, however deep) has
                    // run before it: that run is the post. Edges that posts
                    // added do not count, so that posts calling each other
                    // stay a cycle.
                    if self.needs(id, post) {
                        continue;
                    }
                    self.runs[post].deps.push(id);
                    self.runs[post].post_of.push(id);
                    self.runs[id].posts.push(post);
                }
            }
        }
        Ok(())
    }

    /// Whether two runs of the graph can be in progress at once: false only
    /// when the runs form one chain, each waiting for the one before.
    pub fn may_overlap(&self) -> bool {
        let n = self.runs.len();
        if n < 2 {
            return false;
        }
        // Kahn's algorithm; the order is forced iff one run is ready at a time.
        let mut waiting_on: Vec<usize> = self
            .runs
            .iter()
            .map(|r| {
                let mut w: Vec<usize> = r.deps.iter().chain(&r.after).copied().collect();
                w.sort_unstable();
                w.dedup();
                w.len()
            })
            .collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (id, r) in self.runs.iter().enumerate() {
            let mut w: Vec<usize> = r.deps.iter().chain(&r.after).copied().collect();
            w.sort_unstable();
            w.dedup();
            for d in w {
                dependents[d].push(id);
            }
        }
        let mut ready: Vec<usize> = (0..n).filter(|&i| waiting_on[i] == 0).collect();
        while let Some(id) = ready.pop() {
            if !ready.is_empty() {
                return true;
            }
            for &next in &dependents[id] {
                waiting_on[next] -= 1;
                if waiting_on[next] == 0 {
                    ready.push(next);
                }
            }
        }
        // Task steps add runs later; a run that calls a task overlaps nothing
        // (it waits), so the answer stands.
        false
    }

    /// Whether `a` (transitively) waits for `b`.
    pub fn waits_on(&self, a: RunId, b: RunId) -> bool {
        self.reaches(a, b, |run| {
            run.deps.iter().chain(&run.after).copied().collect()
        })
    }

    /// Whether `a` (transitively) needs `b` through declared deps, not
    /// through the edges that make a post wait for its run.
    fn needs(&self, a: RunId, b: RunId) -> bool {
        self.reaches(a, b, |run| {
            run.deps
                .iter()
                .filter(|d| !run.post_of.contains(d))
                .copied()
                .collect()
        })
    }

    /// Whether `b` is reachable from `a` along `edges`.
    fn reaches(&self, a: RunId, b: RunId, edges: impl Fn(&Run) -> Vec<RunId>) -> bool {
        crate::cycles::reaches(self.runs.len(), a, b, |r| edges(&self.runs[r]))
    }

    /// `runs` and every post that follows them, transitively.
    pub fn with_posts(&self, runs: &[RunId]) -> Vec<RunId> {
        let mut out: Vec<RunId> = Vec::new();
        let mut stack: Vec<RunId> = runs.to_vec();
        while let Some(r) = stack.pop() {
            if out.contains(&r) {
                continue;
            }
            out.push(r);
            stack.extend(&self.runs[r].posts);
        }
        out
    }

    /// A cycle among the runs, printed `a -> b -> a`.
    pub fn check_cycles(&self) -> Result<()> {
        let cycle = find_cycle(self.runs.len(), |r| {
            let run = &self.runs[r];
            run.deps.iter().chain(&run.after).copied().collect()
        });
        match cycle {
            Some(cycle) => {
                let mut names: Vec<&str> =
                    cycle.iter().map(|&r| self.runs[r].name.as_str()).collect();
                names.push(names[0]);
                Err(
                    Error::usage(format!("dependency cycle: {}", names.join(" -> ")))
                        .with_help("nothing was run; remove one of these calls"),
                )
            }
            None => Ok(()),
        }
    }
}

/// The tasks that a call whose text is fixed names (none for a templated
/// call, which only a run can resolve).
fn literal_callees(model: &Model, caller: &Task, call: &Call) -> Vec<usize> {
    if !call.template.is_literal() {
        return Vec::new();
    }
    args::parse_call(model, &call.template.source, &call.template.span, caller)
        .map(|invocations| invocations.iter().map(|inv| inv.task).collect())
        .unwrap_or_default()
}

/// What the file alone says about calls, found before anything runs (and
/// by `--check`): a cycle through calls whose text is fixed, `task` steps
/// included (SPEC 6), and calls nested deeper than the limit. With `roots`,
/// only the tasks those reach are looked at.
pub fn check_literal_calls(model: &Model, roots: Option<&[usize]>) -> Result<()> {
    let n = model.tasks.len();
    // `calls[t]`: what t calls, in any way. `waits[t]`: what t cannot end
    // before (its deps and `task` steps, and the task a post follows).
    // Only the tasks reached from `roots` are parsed.
    let mut calls: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut waits: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut posts: Vec<(usize, usize)> = Vec::new();
    let mut reached = vec![false; n];
    let mut stack: Vec<usize> = match roots {
        Some(roots) => roots.to_vec(),
        None => (0..n).collect(),
    };
    while let Some(t) = stack.pop() {
        if std::mem::replace(&mut reached[t], true) {
            continue;
        }
        let task = &model.tasks[t];
        let steps = task
            .run
            .iter()
            .chain(&task.finally)
            .filter_map(|step| match &step.kind {
                StepKind::Task(call) => Some(call),
                _ => None,
            });
        for call in task.deps.iter().chain(steps) {
            for callee in literal_callees(model, task, call) {
                calls[t].push(callee);
                waits[t].push(callee);
            }
        }
        for call in &task.post {
            for callee in literal_callees(model, task, call) {
                calls[t].push(callee);
                posts.push((t, callee));
            }
        }
        stack.extend(&calls[t]);
    }
    // A post waits for the task it follows, unless that task needs it
    // already (then the post is the run that happened before: one run,
    // no cycle), as the graph of runs decides.
    let needs = waits.clone();
    for (t, post) in posts {
        if t == post || !crate::cycles::reaches(needs.len(), t, post, |i| needs[i].clone()) {
            waits[post].push(t);
        }
    }
    if let Some(cycle) = find_cycle(n, |t| waits[t].clone()) {
        let mut names: Vec<&str> = cycle
            .iter()
            .map(|&t| model.tasks[t].name.as_str())
            .collect();
        names.push(names[0]);
        return Err(
            Error::usage(format!("dependency cycle: {}", names.join(" -> ")))
                .with_help("nothing was run; remove one of these calls"),
        );
    }
    let chain = longest_chain(n, |t| calls[t].clone());
    if chain.len() > MAX_DEPTH + 1 {
        let first = &model.tasks[chain[0]];
        let last = &model.tasks[chain[chain.len() - 1]];
        return Err(Error::at(
            &first.span,
            format!(
                "calls nest {} deep from task `{}`, more than the {MAX_DEPTH} allowed",
                chain.len() - 1,
                first.name
            ),
        )
        .with_label("the chain of calls starts here")
        .with_help(format!("the chain: {} -> ... -> {}", first.name, last.name)));
    }
    Ok(())
}

/// Render a call in the caller's scope and parse it like a command line.
pub fn resolve_call(
    session: &Session,
    task: &Task,
    call: &Call,
    scope: &Scope,
) -> Result<Vec<Invocation>> {
    let what = format!("a call of task `{}`", task.name);
    let text = session.render(&call.template, Mode::Shell, scope, &what)?;
    args::parse_call(session.model, &text, &call.template.span, task)
}

/// Every combination of the task's matrix, in declaration order (the last
/// axis varies fastest). One empty combination when there is no matrix.
fn matrix_combinations(
    session: &Session,
    task: &Task,
    scope: &Scope,
) -> Result<Vec<Vec<(String, Value)>>> {
    let mut axes: Vec<Vec<Value>> = Vec::with_capacity(task.matrix.len());
    for axis in &task.matrix {
        axes.push(match &axis.values {
            MatrixValues::List(values) => values.clone(),
            MatrixValues::Template(t) => {
                let what = format!("matrix entry `{}` of task `{}`", axis.name, task.name);
                session
                    .render(t, Mode::Plain, scope, &what)?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(Value::from)
                    .collect()
            }
        });
    }
    // Counted before a single combination is built (SPEC 6, Limits).
    if let Err(size) = matrix_size(axes.iter().map(Vec::len)) {
        return Err(Error::at(
            &task.span,
            format!(
                "the matrix of task `{}` expands to {size} runs, more than the {MAX_MATRIX_RUNS} allowed",
                task.name
            ),
        )
        .with_label("too many combinations"));
    }
    let mut combos: Vec<Vec<(String, Value)>> = vec![Vec::new()];
    for (axis, values) in task.matrix.iter().zip(&axes) {
        let mut next = Vec::with_capacity(combos.len() * values.len());
        for combo in &combos {
            for value in values {
                let mut c = combo.clone();
                c.push((axis.name.clone(), value.clone()));
                next.push(c);
            }
        }
        combos = next;
    }
    Ok(combos)
}

/// The invocation with its templated defaults rendered (SPEC 2), each
/// with the vars, the task's vars and the arguments before it in scope,
/// then typed as if typed on the command line; every argument lands in
/// `scope`.
fn resolve_defaults(session: &Session, inv: &Invocation, scope: &mut Scope) -> Result<Invocation> {
    let task = &session.model.tasks[inv.task];
    let mut inv = inv.clone();
    for (i, arg) in task.args.iter().enumerate() {
        if let (true, Some(template)) = (inv.defaults.contains(&i), &arg.default_template) {
            let what = format!(
                "the default of argument `{}` of task `{}`",
                arg.name, task.name
            );
            let mut before = scope.clone();
            before.task_vars = TaskVars::new(session.model, inv.task, scope);
            let text = session.render(template, Mode::Plain, &before, &what)?;
            let value = arg.ty.parse_value(&text).map_err(|why| {
                Error::at(&template.span, format!("{what} renders to `{text}`: {why}"))
                    .with_label("this default")
            })?;
            crate::args::check_choice(
                task,
                arg,
                &value,
                &format!("the default of {}", arg.flag()),
            )?;
            inv.values[i] = value;
        }
        std::sync::Arc::make_mut(&mut scope.values)
            .insert(arg.name.clone(), inv.values[i].to_value());
    }
    inv.defaults.clear();
    Ok(inv)
}

#[cfg(test)]
mod tests {
    fn graph(edges: &[&[usize]]) -> super::Graph {
        let mut g = super::Graph::default();
        for (i, deps) in edges.iter().enumerate() {
            g.runs.push(super::Run {
                task: 0,
                name: format!("r{i}"),
                scope: Default::default(),
                deps: deps.to_vec(),
                after: Vec::new(),
                posts: Vec::new(),
                post_of: Vec::new(),
                depth: 0,
            });
        }
        g
    }

    #[test]
    fn only_a_chain_cannot_overlap() {
        assert!(!graph(&[&[]]).may_overlap());
        assert!(!graph(&[&[], &[0], &[1]]).may_overlap());
        assert!(graph(&[&[], &[]]).may_overlap());
        assert!(graph(&[&[], &[0], &[0], &[1, 2]]).may_overlap());
    }
}
