//! Lays a `Doc` out as the tasks.toml a person would write: settings, env
//! and vars first, then the tasks in the original's order, a string `run`
//! for one command, one step per line otherwise, inline argument tables.
//! Values go through the `toml` crate, so quoting is always right. Keys the
//! loader does not take yet (`KEYS`) become their nearest equivalent here,
//! with a note.

use std::fmt::Write as _;

use super::doc::*;

/// The text of the file, and every note in the order of the text.
pub(crate) struct Written {
    pub text: String,
    pub notes: Vec<Note>,
}

pub(crate) fn write(doc: &Doc, keys: Keys) -> Written {
    let mut w = Writer {
        out: String::new(),
        notes: Vec::new(),
    };
    let _ = writeln!(
        w.out,
        "# Imported from {} by `tasker --import`.",
        doc.source
    );
    if !doc.notes.is_empty() {
        w.out.push('\n');
        w.todos(&doc.notes, "");
    }
    w.settings(doc);
    let hoisted = if keys.task_vars {
        Vec::new()
    } else {
        hoisted_vars(doc)
    };
    w.entries("env", &doc.env, &[]);
    w.entries("vars", &doc.vars, &hoisted);
    for task in &doc.tasks {
        w.task(task, keys);
    }
    Written {
        text: w.out,
        notes: w.notes,
    }
}

/// Task vars moved into `[vars]` (the parsers named them so that they
/// clash with nothing), each with a comment naming its task.
fn hoisted_vars(doc: &Doc) -> Vec<Entry> {
    let mut out = Vec::new();
    for task in &doc.tasks {
        for var in &task.vars {
            let mut var = var.clone();
            var.comments.insert(0, format!(" of task `{}`", task.name));
            out.push(var);
        }
    }
    out
}

struct Writer {
    out: String,
    notes: Vec<Note>,
}

/// A TOML value written inline.
fn string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn strings(items: &[String]) -> String {
    let values = items
        .iter()
        .map(|s| toml::Value::String(s.clone()))
        .collect();
    toml::Value::Array(values).to_string()
}

/// A key as TOML writes it: bare when it can be.
fn key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_string()
    } else {
        string(name)
    }
}

fn value(v: &Value) -> String {
    match v {
        Value::Text(text) => string(text),
        Value::Sh(command) => format!("{{ sh = {} }}", string(command)),
    }
}

impl Writer {
    fn todos(&mut self, notes: &[Note], indent: &str) {
        for note in notes {
            let _ = writeln!(
                self.out,
                "{indent}# TODO: {} ({}:{})",
                note.text.replace('\n', " "),
                note.at.file,
                note.at.line
            );
            self.notes.push(note.clone());
        }
    }

    fn comments(&mut self, comments: &[String]) {
        for line in comments {
            let _ = writeln!(self.out, "#{line}");
        }
    }

    fn settings(&mut self, doc: &Doc) {
        let mut lines = Vec::new();
        if let Some(shell) = &doc.shell {
            lines.push(format!("shell = {}", strings(shell)));
        }
        if !doc.dotenv.is_empty() {
            lines.push(format!("dotenv = {}", strings(&doc.dotenv)));
        }
        if let Some(default) = &doc.default {
            lines.push(format!("default = {}", string(default)));
        }
        if let Some(output) = &doc.output {
            lines.push(format!("output = {}", string(output)));
        }
        if let Some(echo) = doc.echo {
            lines.push(format!("echo = {echo}"));
        }
        if !lines.is_empty() {
            self.out.push_str("\n[settings]\n");
            for line in lines {
                self.out.push_str(&line);
                self.out.push('\n');
            }
        }
    }

    fn entries(&mut self, table: &str, entries: &[Entry], more: &[Entry]) {
        if entries.is_empty() && more.is_empty() {
            return;
        }
        let _ = writeln!(self.out, "\n[{table}]");
        for entry in entries.iter().chain(more) {
            self.comments(&entry.comments);
            self.todos(&entry.notes, "");
            let _ = writeln!(self.out, "{} = {}", key(&entry.name), value(&entry.value));
        }
    }

    fn task(&mut self, task: &Task, keys: Keys) {
        self.out.push('\n');
        self.comments(&task.comments);
        let _ = writeln!(self.out, "[tasks.{}]", key(&task.name));
        self.todos(&task.notes, "");
        let mut line = |k: &str, v: String| {
            let _ = writeln!(self.out, "{k} = {v}");
        };
        if let Some(help) = &task.help {
            line("help", string(help));
        }
        if let Some(group) = &task.group {
            line("group", string(group));
        }
        if !task.aliases.is_empty() {
            line("aliases", strings(&task.aliases));
        }
        if task.private {
            line("private", "true".into());
        }
        if let Some(confirm) = &task.confirm {
            line("confirm", string(confirm));
        }
        if let Some(dir) = &task.dir {
            line("dir", string(dir));
        }
        if let Some(shell) = &task.shell {
            line("shell", strings(shell));
        }
        if !task.platforms.is_empty() {
            line("platforms", strings(&task.platforms));
        }
        if task.interactive {
            line("interactive", "true".into());
        }
        if task.ignore_failure {
            line("ignore_failure", "true".into());
        }
        if !task.env.is_empty() {
            let pairs: Vec<String> = task
                .env
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), string(v)))
                .collect();
            line("env", format!("{{ {} }}", pairs.join(", ")));
        }
        if keys.task_vars && !task.vars.is_empty() {
            let pairs: Vec<String> = task
                .vars
                .iter()
                .map(|v| format!("{} = {}", key(&v.name), value(&v.value)))
                .collect();
            line("vars", format!("{{ {} }}", pairs.join(", ")));
        }
        if !task.deps.is_empty() {
            line("deps", strings(&task.deps));
        }
        if !task.sources.is_empty() {
            line("sources", strings(&task.sources));
        }
        if !task.outputs.is_empty() {
            line("outputs", strings(&task.outputs));
        }
        self.status(task, keys);
        let mut run = Vec::new();
        if keys.preconditions {
            self.preconditions(task);
        } else {
            run.extend(preconditions_as_steps(task));
        }
        run.extend(task.run.iter().cloned());
        // All steps quiet: the task is. Some: step `quiet` where taken.
        let all_quiet = !run.is_empty() && run.iter().all(|s| s.quiet || is_task(s));
        if task.quiet || all_quiet && run.iter().any(|s| s.quiet) {
            let _ = writeln!(self.out, "quiet = true");
            for step in &mut run {
                step.quiet = false;
            }
        } else if !keys.step_quiet {
            for step in run.iter_mut().filter(|s| s.quiet) {
                step.quiet = false;
                step.notes.push(Note::new(
                    task.at.as_ref().expect("a task knows its place"),
                    "a command that is not echoed (`@`) is echoed: tasker's step `quiet` is not there yet",
                ));
            }
        }
        self.steps("run", &run, keys);
        self.steps("finally", &task.finally, keys);
        if !task.post.is_empty() {
            let _ = writeln!(self.out, "post = {}", strings(&task.post));
        }
        self.args(&task.args);
    }

    fn status(&mut self, task: &Task, keys: Keys) {
        if task.status.is_empty() {
            return;
        }
        if keys.status {
            let _ = writeln!(self.out, "status = {}", strings(&task.status));
            return;
        }
        let at = task.at.clone().expect("a task knows its place");
        self.todos(
            &[Note::new(
                &at,
                format!(
                    "`status` of task `{}` left out (tasker's `status` is not there yet); it runs every time",
                    task.name
                ),
            )],
            "",
        );
        let _ = writeln!(self.out, "# status = {}", strings(&task.status));
    }

    fn preconditions(&mut self, task: &Task) {
        if task.preconditions.is_empty() {
            return;
        }
        let items: Vec<String> = task
            .preconditions
            .iter()
            .map(|p| match &p.msg {
                Some(msg) => format!("{{ sh = {}, msg = {} }}", string(&p.sh), string(msg)),
                None => string(&p.sh),
            })
            .collect();
        let _ = writeln!(self.out, "preconditions = [{}]", items.join(", "));
    }

    fn steps(&mut self, key: &str, steps: &[Step], keys: Keys) {
        if steps.is_empty() {
            return;
        }
        if let [only] = steps {
            if let (StepKind::Sh(command), false, false, true) = (
                &only.kind,
                only.ignore_failure,
                only.quiet,
                only.notes.is_empty(),
            ) {
                let _ = writeln!(self.out, "{key} = {}", string(command));
                return;
            }
        }
        let _ = writeln!(self.out, "{key} = [");
        for step in steps {
            self.todos(&step.notes, "  ");
            let _ = writeln!(self.out, "  {},", step_value(step, keys));
        }
        self.out.push_str("]\n");
    }

    fn args(&mut self, args: &[Arg]) {
        if args.is_empty() {
            return;
        }
        self.out.push_str("args = [\n");
        for arg in args {
            let mut fields = vec![format!("name = {}", string(&arg.name))];
            if arg.kind == ArgType::List {
                fields.push("type = \"list\"".into());
            }
            if arg.positional {
                fields.push("positional = true".into());
            }
            match (&arg.default, arg.kind) {
                (Some(default), ArgType::String) => {
                    fields.push(format!("default = {}", string(default)))
                }
                (Some(default), ArgType::List) => fields.push(format!(
                    "default = {}",
                    strings(&shell_words::split(default).unwrap_or_else(|_| vec![default.clone()]))
                )),
                (None, _) => {}
            }
            if !arg.choices.is_empty() {
                fields.push(format!("choices = {}", strings(&arg.choices)));
            }
            if let Some(help) = &arg.help {
                fields.push(format!("help = {}", string(help)));
            }
            let _ = writeln!(self.out, "  {{ {} }},", fields.join(", "));
        }
        self.out.push_str("]\n");
    }
}

fn is_task(step: &Step) -> bool {
    matches!(step.kind, StepKind::Task(_))
}

fn step_value(step: &Step, keys: Keys) -> String {
    let (kind, text) = match &step.kind {
        StepKind::Sh(command) => ("sh", command),
        StepKind::Task(call) => ("task", call),
    };
    let mut fields = Vec::new();
    if step.ignore_failure {
        fields.push("ignore_failure = true".to_string());
    }
    if step.quiet && keys.step_quiet {
        fields.push("quiet = true".to_string());
    }
    if kind == "sh" && fields.is_empty() {
        return string(text);
    }
    fields.insert(0, format!("{kind} = {}", string(text)));
    format!("{{ {} }}", fields.join(", "))
}

/// Preconditions as the first steps of the run, each failing with its
/// message, until tasker has the key.
fn preconditions_as_steps(task: &Task) -> Vec<Step> {
    task.preconditions
        .iter()
        .map(|p| {
            let msg = p.msg.clone().unwrap_or_else(|| format!("failed: {}", p.sh));
            let mut step = Step::sh(format!(
                "{} || {{ echo {} >&2; exit 1; }}",
                p.sh,
                super::text::literal(&shell_words::quote(&msg))
            ));
            step.notes.push(Note::new(
                &p.at,
                "a precondition became a first step (tasker's `preconditions` is not there yet)",
            ));
            step
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place {
        Place {
            file: "./justfile".into(),
            line: 3,
        }
    }

    #[test]
    fn one_command_is_a_string_and_more_are_one_per_line() {
        let mut doc = Doc {
            source: "./justfile".into(),
            ..Doc::default()
        };
        let mut build = Task::new("build", &place());
        build.help = Some("Build it".into());
        build.run.push(Step::sh("cargo build"));
        let mut test = Task::new("test", &place());
        test.run.push(Step::task("build"));
        let mut careless = Step::sh("rm -f \"x\"");
        careless.ignore_failure = true;
        test.run.push(careless);
        test.args.push(Arg {
            name: "filter".into(),
            kind: ArgType::String,
            positional: true,
            default: Some(String::new()),
            help: None,
            choices: Vec::new(),
        });
        doc.tasks = vec![build, test];
        let written = write(&doc, KEYS);
        assert_eq!(
            written.text,
            r#"# Imported from ./justfile by `tasker --import`.

[tasks.build]
help = "Build it"
run = "cargo build"

[tasks.test]
run = [
  { task = "build" },
  { sh = 'rm -f "x"', ignore_failure = true },
]
args = [
  { name = "filter", positional = true, default = "" },
]
"#
        );
    }

    #[test]
    fn keys_a_tasker_lacks_become_their_nearest_equivalent() {
        let mut doc = Doc::default();
        let mut task = Task::new("gen", &place());
        task.status.push("test -f out".into());
        task.preconditions.push(Precondition {
            sh: "test -f in".into(),
            msg: Some("no input".into()),
            at: place(),
        });
        let mut quiet = Step::sh("echo hi");
        quiet.quiet = true;
        task.run = vec![quiet, Step::sh("gen")];
        doc.tasks.push(task);
        let none = Keys {
            task_vars: false,
            status: false,
            preconditions: false,
            step_quiet: false,
            default_templates: false,
        };
        let today = write(&doc, none);
        assert!(today.text.contains("# status = [\"test -f out\"]"));
        assert!(today
            .text
            .contains("\"test -f in || { echo 'no input' >&2; exit 1; }\""));
        assert_eq!(today.notes.len(), 3, "{}", today.text);
        let all = Keys {
            task_vars: true,
            status: true,
            preconditions: true,
            step_quiet: true,
            default_templates: true,
        };
        const { assert!(KEYS.status && KEYS.preconditions && KEYS.step_quiet) };
        let later = write(&doc, all);
        assert!(later.text.contains("status = [\"test -f out\"]\n"));
        assert!(later
            .text
            .contains("preconditions = [{ sh = \"test -f in\", msg = \"no input\" }]"));
        assert!(later.text.contains("{ sh = \"echo hi\", quiet = true }"));
        assert!(later.notes.is_empty(), "{:?}", later.notes);
    }
}
