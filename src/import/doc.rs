//! The tasks.toml an import builds, as plain data: what each parser fills
//! in and the writer lays out. Nothing here knows another runner's syntax;
//! the one piece of knowledge shared by the parsers is which keys the
//! tasker of today accepts (`KEYS`).

/// Keys that SPEC 2 names but the loader of this tasker may not take yet.
/// An import writes the closest thing that passes `--check` where a key is
/// `false`, and the place is marked with a TODO; flip a key to `true` when
/// the loader takes it, and the import writes it directly.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Keys {
    /// `vars` in a task table.
    pub task_vars: bool,
    /// A task's `status` commands (go-task's `status`).
    pub status: bool,
    /// A task's `preconditions`.
    pub preconditions: bool,
    /// `quiet = true` on one step (just's and make's `@`).
    pub step_quiet: bool,
    /// An argument `default` that is a template, rendered when the
    /// argument is not given.
    pub default_templates: bool,
}

/// What the loader takes today.
pub(crate) const KEYS: Keys = Keys {
    task_vars: true,
    status: true,
    preconditions: true,
    step_quiet: true,
    default_templates: true,
};

/// A place in one of the files read: where a note points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Place {
    /// The file as shown to the user.
    pub file: String,
    /// 1-based.
    pub line: usize,
}

/// A construct that did not carry over: said on stderr and marked with a
/// `# TODO` comment where it would have gone.
#[derive(Clone, Debug)]
pub(crate) struct Note {
    pub at: Place,
    pub text: String,
}

impl Note {
    pub fn new(at: &Place, text: impl Into<String>) -> Note {
        Note {
            at: at.clone(),
            text: text.into(),
        }
    }
}

/// A value of `[vars]` or `[env]`: text (a template) or the stdout of a
/// command.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Text(String),
    Sh(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub name: String,
    pub value: Value,
    pub comments: Vec<String>,
    pub notes: Vec<Note>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum StepKind {
    /// A shell command (a template).
    Sh(String),
    /// A task call.
    Task(String),
}

#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub kind: StepKind,
    pub ignore_failure: bool,
    /// Not echoed (just's and make's `@`).
    pub quiet: bool,
    pub notes: Vec<Note>,
}

impl Step {
    pub fn sh(command: impl Into<String>) -> Step {
        Step {
            kind: StepKind::Sh(command.into()),
            ignore_failure: false,
            quiet: false,
            notes: Vec::new(),
        }
    }

    pub fn task(call: impl Into<String>) -> Step {
        Step {
            kind: StepKind::Task(call.into()),
            ..Step::sh("")
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgType {
    String,
    List,
}

#[derive(Clone, Debug)]
pub(crate) struct Arg {
    pub name: String,
    pub kind: ArgType,
    pub positional: bool,
    /// A template; `None` is a required argument (a list: an empty one).
    pub default: Option<String>,
    pub help: Option<String>,
    pub choices: Vec<String>,
}

/// A precondition: a command that must exit 0, and what to say when not.
#[derive(Clone, Debug)]
pub(crate) struct Precondition {
    pub sh: String,
    pub msg: Option<String>,
    pub at: Place,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Task {
    pub name: String,
    /// Comment lines written above the task (without `#`).
    pub comments: Vec<String>,
    pub notes: Vec<Note>,
    pub help: Option<String>,
    pub group: Option<String>,
    pub aliases: Vec<String>,
    pub private: bool,
    pub confirm: Option<String>,
    pub dir: Option<String>,
    pub shell: Option<Vec<String>>,
    pub quiet: bool,
    pub interactive: bool,
    pub ignore_failure: bool,
    pub platforms: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The task's own vars; written as `vars` once `KEYS.task_vars`.
    pub vars: Vec<Entry>,
    pub deps: Vec<String>,
    pub post: Vec<String>,
    pub sources: Vec<String>,
    pub outputs: Vec<String>,
    pub status: Vec<String>,
    pub preconditions: Vec<Precondition>,
    pub run: Vec<Step>,
    pub finally: Vec<Step>,
    pub args: Vec<Arg>,
    /// Where the task was declared, for notes the writer adds.
    pub at: Option<Place>,
}

impl Task {
    pub fn new(name: impl Into<String>, at: &Place) -> Task {
        Task {
            name: name.into(),
            at: Some(at.clone()),
            ..Task::default()
        }
    }
}

/// A whole tasks.toml.
#[derive(Clone, Debug, Default)]
pub(crate) struct Doc {
    /// The file imported, as shown to the user.
    pub source: String,
    /// Notes that belong to no task: written at the top.
    pub notes: Vec<Note>,
    pub shell: Option<Vec<String>>,
    pub dotenv: Vec<String>,
    pub default: Option<String>,
    pub echo: Option<bool>,
    pub output: Option<String>,
    pub env: Vec<Entry>,
    pub vars: Vec<Entry>,
    pub tasks: Vec<Task>,
}
