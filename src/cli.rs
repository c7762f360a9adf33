//! tasker's own options (SPEC 1), declared once with clap; help and errors
//! come from this declaration. Everything from the first task name on is
//! left to `args`.

use std::path::PathBuf;

use clap::Parser;

use crate::model::{CacheUse, OutputMode};
use crate::style::ColorChoice;

#[derive(Debug, Parser)]
#[command(
    name = "tasker",
    version,
    about = "Run the tasks that a tasks.toml declares",
    override_usage = "tasker [OPTIONS] [TASK [TASK ARGS...]]...",
    after_help = "With no task named, tasker runs settings.default when it is set and lists the tasks otherwise.\nA task's own help: tasker TASK --help",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// List the tasks (with --json as JSON; with --all private ones too)
    #[arg(short = 'l', long)]
    pub list: bool,
    /// With --list: print JSON
    #[arg(long, requires = "list")]
    pub json: bool,
    /// With --list: include private tasks
    #[arg(long, requires = "list")]
    pub all: bool,
    /// Use this file instead of searching for tasks.toml
    #[arg(short = 'f', long, value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Behave as if started in DIR
    #[arg(short = 'C', long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// At most N task runs at once (default: number of CPUs)
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Run the tasks named on the command line concurrently
    #[arg(short = 'p', long)]
    pub parallel: bool,
    /// After a failure, still run everything that does not depend on it
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Print every command that would run; run nothing
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// No command echo and no status lines from tasker itself
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More status: skipped runs and why, durations, dotenv files read
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Run tasks with sources even when they are up to date (and do not ask the remote cache)
    #[arg(short = 'B', long)]
    pub force: bool,
    /// Use the remote cache to read and write (the default when one is configured), only to read, or not at all
    #[arg(long, value_name = "MODE", value_enum)]
    pub remote_cache: Option<CacheUse>,
    /// Run, then run again whenever a source of the named tasks changes
    #[arg(short = 'w', long)]
    pub watch: bool,
    /// Answer yes to every confirm prompt
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// How output of overlapping runs is shown
    #[arg(long, value_name = "MODE", value_enum)]
    pub output: Option<OutputMode>,
    /// Override a [vars] entry (repeatable)
    #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, String)>,
    /// Send the runs of `distribute = true` tasks to workers through this Redis server
    #[arg(long, value_name = "URL")]
    pub queue: Option<String>,
    /// With --queue: serve runs from the queue until stopped
    #[arg(long, conflicts_with_all = ["workers", "dry_run", "watch"])]
    pub worker: bool,
    /// With --queue: list the live workers and the pending runs
    #[arg(long)]
    pub workers: bool,
    /// With --worker: this worker's name (default HOST:PID)
    #[arg(long, value_name = "NAME", requires = "worker")]
    pub name: Option<String>,
    /// Print a table of each run's duration at the end; =html writes a timeline page instead (tasker-timings.html)
    #[arg(
        long,
        value_name = "FORMAT",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "table",
        value_enum
    )]
    pub timings: Option<Timings>,
    /// Write the runs as Chrome trace-event JSON to FILE (Perfetto, chrome://tracing)
    #[arg(long, value_name = "FILE")]
    pub trace: Option<std::path::PathBuf>,
    /// Load and validate the whole file; run nothing
    #[arg(long)]
    pub check: bool,
    /// Print the task as written in the file, with its file and line
    #[arg(long, value_name = "TASK")]
    pub show: Option<String>,
    /// Print every var (or just VAR) with its value, sh vars evaluated
    #[arg(long, value_name = "VAR", num_args = 0..=1)]
    pub evaluate: Option<Option<String>>,
    /// Print the task names on one line, for scripts
    #[arg(long)]
    pub summary: bool,
    /// Pick a task and fill its arguments interactively (needs a terminal)
    #[arg(long)]
    pub choose: bool,
    /// Write a commented starter tasks.toml here
    #[arg(long)]
    pub init: bool,
    /// Print a tasks.toml made from a justfile, Taskfile.yml, Makefile or package.json
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
    /// Print the JSON Schema of tasks.toml
    #[arg(long)]
    pub schema: bool,
    /// Print the manual page (roff: tasker --man | man -l -)
    #[arg(long)]
    pub man: bool,
    /// When to colour tasker's own output (auto honours NO_COLOR, CLICOLOR, CLICOLOR_FORCE)
    #[arg(long, value_name = "WHEN", value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Print a completion script that asks tasker at each TAB
    #[arg(long, value_name = "SHELL", value_enum)]
    pub completions: Option<Shell>,
    // Filled by `first_task_word`, never by clap: see `main_with_args`.
    /// The tasks to run, each followed by its own arguments
    #[arg(value_name = "TASK")]
    pub tasks: Vec<String>,
}

/// The shells `--completions` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
    Elvish,
}

/// `--timings`: what is made of the runs' durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Timings {
    // A table on stderr at the end (a doc comment here would be help
    // text, and turn `--help` into its long form).
    Table,
    // A timeline page (tasker-timings.html).
    Html,
}

fn parse_jobs(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (-j1 runs one task at a time)".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{text}` is not a number")),
    }
}

fn parse_set(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// tasker's own option `flag` (`-n`, `--dry-run`, `--jobs=4`) in its long
/// form, when it is one. Read from the one declaration above.
pub fn own_option(flag: &str) -> Option<String> {
    use clap::CommandFactory;
    let command = Cli::command();
    let found = command.get_arguments().find(|arg| {
        if let Some(long) = flag.strip_prefix("--") {
            arg.get_long() == Some(long.split('=').next().unwrap_or(long))
        } else {
            let mut chars = flag.chars().skip(1);
            chars.next().is_some_and(|c| arg.get_short() == Some(c)) && chars.next().is_none()
        }
    })?;
    Some(format!("--{}", found.get_long()?))
}

/// The `--color` among tasker's own options (the last one wins), read
/// before clap parses them so that clap's own errors follow it too. A
/// value that is no choice leaves `auto`; clap reports it.
pub fn color_of(options: &[std::ffi::OsString]) -> ColorChoice {
    use clap::ValueEnum;
    let mut choice = ColorChoice::Auto;
    let mut words = options.iter().skip(1).map(|w| w.to_string_lossy());
    while let Some(word) = words.next() {
        let value = match word.strip_prefix("--color") {
            Some("") => words.next().map(|w| w.into_owned()),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        };
        if let Some(found) = value.and_then(|v| ColorChoice::from_str(&v, false).ok()) {
            choice = found;
        }
    }
    choice
}

/// The index of the first word after tasker's own options (the first task
/// name), skipping the values of options that take one. Which options
/// take a value, and how, is read from the one declaration above.
pub fn first_task_word(args: &[std::ffi::OsString]) -> usize {
    use clap::CommandFactory;
    let mut command = Cli::command();
    // Built, every argument knows how many values it takes.
    command.build();
    let long = |name: &str| command.get_arguments().find(|a| a.get_long() == Some(name));
    let short = |c: char| command.get_arguments().find(|a| a.get_short() == Some(c));
    let mut i = 1;
    while i < args.len() {
        let word = args[i].to_string_lossy();
        if word == "--" || !word.starts_with('-') || word == "-" {
            return i;
        }
        let next_is_value = || {
            args.get(i + 1)
                .is_some_and(|next| !next.to_string_lossy().starts_with('-'))
        };
        let takes_next = if let Some(name) = word.strip_prefix("--") {
            !name.contains('=') && long(name).is_some_and(|a| takes_next_word(a, next_is_value))
        } else {
            // A cluster like `-qj 4` or `-j4`: the first value-taking
            // letter takes the rest of the cluster, or the next word.
            let cluster: Vec<char> = word[1..].chars().collect();
            let taking = cluster
                .iter()
                .position(|c| short(*c).is_some_and(|a| a.get_action().takes_values()));
            match taking {
                Some(at) if at + 1 == cluster.len() => {
                    short(cluster[at]).is_some_and(|a| takes_next_word(a, next_is_value))
                }
                _ => false,
            }
        };
        i += if takes_next { 2 } else { 1 };
    }
    args.len()
}

/// Whether `arg`, written alone, takes the next word as its value: an
/// option that needs one always does; one whose value is optional
/// (`--evaluate [VAR]`) does when the next word is no option; one whose
/// value must follow `=` (`--timings=html`) never does.
fn takes_next_word(arg: &clap::Arg, next_is_value: impl Fn() -> bool) -> bool {
    if !arg.get_action().takes_values() || arg.is_require_equals_set() {
        return false;
    }
    match arg.get_num_args() {
        Some(range) if range.min_values() == 0 => next_is_value(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::first_task_word;

    fn split(words: &[&str]) -> usize {
        let args: Vec<std::ffi::OsString> = std::iter::once("tasker")
            .chain(words.iter().copied())
            .map(Into::into)
            .collect();
        first_task_word(&args) - 1
    }

    #[test]
    fn options_end_at_the_first_task_name() {
        assert_eq!(split(&["build", "-j", "2"]), 0);
        assert_eq!(split(&["-j4", "build"]), 1);
        assert_eq!(split(&["-j", "4", "build"]), 2);
        assert_eq!(split(&["-qj", "4", "build", "--release"]), 2);
        assert_eq!(split(&["--jobs=4", "-f", "x.toml", "build"]), 3);
        assert_eq!(split(&["--set", "a=b", "-n"]), 3);
        assert_eq!(split(&["-l"]), 1);
        assert_eq!(split(&["--show", "build"]), 2);
        assert_eq!(split(&["--evaluate", "version"]), 2);
        assert_eq!(split(&["--evaluate", "-q"]), 2);
        assert_eq!(split(&["--evaluate"]), 1);
        assert_eq!(split(&["--timings", "build"]), 1);
        assert_eq!(split(&["--timings=html", "build"]), 1);
        assert_eq!(split(&["--color", "never", "--output", "grouped", "a"]), 4);
        assert_eq!(split(&["--import", "Makefile"]), 2);
        assert_eq!(split(&["-qC", "dir", "a"]), 2);
    }
}
