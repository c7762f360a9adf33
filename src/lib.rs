//! tasker: runs the tasks a `tasks.toml` declares.
//!
//! The stages, each in its own module, in the order data flows (imports
//! follow the layer table of docs/architecture.md, which
//! tests/structure.rs checks):
//! `cli` (tasker's options) → `file` (find, read, validate into `model`) →
//! `args` (task arguments on the command line) → `graph` (runs, deps,
//! cycles) → `schedule` (job slots, fail-fast, signals) → `exec` (steps as
//! processes, output) → `report` (what the user reads at the end).

// The JSON Schema is written with `serde_json::json!`, which nests deeply.
#![recursion_limit = "256"]

mod args;
mod check;
mod cli;
mod completions;
mod context;
mod cycles;
mod distribute;
mod dotenv;
mod echo;
mod error;
mod exec;
#[doc(hidden)]
pub mod file;
mod fresh;
mod freshness;
#[doc(hidden)]
pub mod fuzzing;
mod glob;
mod graph;
mod hints;
mod import;
mod init;
mod inspect;
mod lint;
mod list;
mod man;
mod model;
mod outcome;
mod process;
mod quotes;
mod reference;
#[cfg(test)]
mod reference_docs;
mod remote;
mod report;
mod schedule;
mod schema;
mod state;
mod stop;
mod style;
mod template;
mod timeline;
mod usage;
mod watch;

use std::ffi::OsString;
use std::io::Write;
use std::sync::Arc;

use clap::Parser;

use crate::args::Source;
use crate::cli::Cli;
use crate::context::Session;
use crate::error::{Error, Result};
use crate::exec::{Console, RunOptions};
use crate::graph::Graph;
use crate::model::OutputMode;
use crate::style::Style;

/// What std's runtime would have done before `main` and tasker needs:
/// standard descriptors that are closed are opened on /dev/null (else the
/// first file tasker opens would become a child's stdin or stdout), and
/// SIGPIPE is ignored (a reader that left is an error tasker reports).
pub fn start() {
    process::prepare_standard_streams();
}

/// Run tasker with these arguments (the first is the program name) and
/// return the exit status.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    stop::reap_as_init();
    if args.get(1).is_some_and(|w| w == completions::ENTRY) {
        // A shell asking at TAB time; never an error on its screen.
        let words: Vec<String> = args[2..]
            .iter()
            .map(|w| w.to_string_lossy().into_owned())
            .collect();
        if let Ok(cwd) = std::env::current_dir() {
            print(&completions::complete(&words, &cwd));
        }
        return 0;
    }
    // tasker's options end at the first task name; the rest is the tasks'
    // own, and clap never sees it (so `-j4 build --jobs 2` is unambiguous).
    let split = cli::first_task_word(&args);
    let mut args = args;
    let mut tail = args.split_off(split);
    if tail.first().is_some_and(|w| w == "--") {
        tail.remove(0);
    }
    style::set_choice(cli::color_of(&args));
    let mut cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) if e.kind() == clap::error::ErrorKind::UnknownArgument => {
            let e = hints::unknown_option(&e, &args, &tail);
            let _ = writeln!(std::io::stderr(), "{}", e.render(Style::for_stderr().color));
            return e.exit_code();
        }
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    cli.tasks
        .extend(tail.into_iter().map(|w| w.to_string_lossy().into_owned()));
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{}", e.render(Style::for_stderr().color));
            e.exit_code()
        }
    }
}

/// Print to stdout; a closed stdout ends tasker quietly.
fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let written = out
        .flush()
        .and_then(|_| process::write_stdout(text.as_bytes()));
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// What an invocation does: one action, decided from the options alone.
enum Action {
    Init,
    Import(std::path::PathBuf),
    Schema,
    Man,
    Completions(cli::Shell),
    List,
    Summary,
    Show(String),
    Evaluate(Option<String>),
    Check,
    /// `--worker`: serve runs from the queue.
    Worker,
    /// `--workers`: list the live workers.
    Workers,
    /// Run tasks: those named, the chosen one, or the default.
    Run,
}

impl Action {
    fn of(cli: &Cli) -> Action {
        if cli.init {
            Action::Init
        } else if let Some(path) = &cli.import {
            Action::Import(path.clone())
        } else if cli.schema {
            Action::Schema
        } else if cli.man {
            Action::Man
        } else if let Some(shell) = cli.completions {
            Action::Completions(shell)
        } else if cli.list {
            Action::List
        } else if cli.summary {
            Action::Summary
        } else if let Some(word) = &cli.show {
            Action::Show(word.clone())
        } else if let Some(only) = &cli.evaluate {
            Action::Evaluate(only.clone())
        } else if cli.check {
            Action::Check
        } else if cli.worker {
            Action::Worker
        } else if cli.workers {
            Action::Workers
        } else {
            Action::Run
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    let cwd = working_dir(&cli)?;
    let action = Action::of(&cli);
    match action {
        Action::Init => return init::write_starter(&cwd),
        Action::Import(path) => {
            let imported = import::import(&path, &cwd)?;
            print(&imported.toml);
            let mut err = std::io::stderr().lock();
            for note in &imported.notes {
                let _ = writeln!(err, "{note}");
            }
            return Ok(0);
        }
        Action::Schema => {
            print(&schema::render());
            return Ok(0);
        }
        Action::Man => {
            print(&man::render());
            return Ok(0);
        }
        Action::Completions(shell) => {
            print(completions::render(shell));
            return Ok(0);
        }
        _ => {}
    }

    let path = file::find(&cwd, cli.file.as_deref())?;
    if matches!(action, Action::Run) && !cli.choose {
        // Never freed: tasker exits right after, and freeing a large model
        // costs more than the exit.
        let (model, part) = file::load_to_run(&path, &cwd, &cli.tasks)?;
        let model = std::mem::ManuallyDrop::new(model);
        let Some(size) = part else {
            return run_tasks(&cli, &model, cwd);
        };
        if cli.verbose {
            let _ = writeln!(
                std::io::stderr(),
                "tasker: loaded {size} of {} bytes of {} (.tasker/load-index)",
                model.file.text.len(),
                model.file.display
            );
        }
        // A word the part does not know (a typo, say) is explained by the
        // whole file, with its suggestions. A coordinator names its queue
        // by every distributed task of the file: it loads the whole file.
        if distribute::queue_url(cli.queue.as_deref(), &model).is_none() {
            if let Ok(invocations) = invocations(&cli, &model) {
                return run_invocations(&cli, &model, invocations, cwd);
            }
        }
    }
    if matches!(action, Action::List) && !cli.json {
        let style = Style::for_stdout();
        let render = |model: &model::Model| list::render(model, cli.all, style);
        print(&file::listing(&path, &cwd, cli.all, style.color, &render)?);
        return Ok(0);
    }
    let model = std::mem::ManuallyDrop::new(file::load(&path, &cwd)?);
    match action {
        // `-l` alone returned above, through the listing cache.
        Action::List => {
            // Whether a task is up to date needs its commands rendered:
            // `sh` vars may run, and a stop signal stops them.
            stop::install();
            let session = Session::new(&model, cli.set.clone(), false, cwd)?;
            let fresh = fresh::Fresh::new(&model.root, false, None);
            let warn: remote::Warn = Arc::new(|_, text| {
                let style = Style::for_stderr();
                let _ = writeln!(
                    std::io::stderr(),
                    "{}",
                    style.yellow(&format!("tasker: warning: {text}"))
                );
            });
            let remote = remote_cache(&cli, &model)?.map(|c| remote::Remote::new(c, warn, None));
            let freshness = |task| freshness::listed(&session, &fresh, remote.as_deref(), task);
            print(&list::render_json(&model, cli.all, &freshness))
        }
        Action::Summary => print(&inspect::summary(&model)),
        Action::Show(word) => print(&inspect::show(&model, &word)?),
        Action::Evaluate(only) => {
            // `sh` vars run: a stop signal stops them.
            stop::install();
            let session = Session::new(&model, cli.set.clone(), false, cwd)?;
            print(&inspect::evaluate(&session, only.as_deref())?);
        }
        Action::Check => check(&cli, &model)?,
        Action::Worker => return serve(&cli, &model, cwd),
        Action::Workers => print(&distribute::list_workers(cli.queue.as_deref(), &model)?),
        _ => return run_tasks(&cli, &model, cwd),
    }
    Ok(0)
}

/// The remote cache's configuration: the file, the environment and
/// `--remote-cache`; `None` when it is off.
fn remote_cache(cli: &Cli, model: &model::Model) -> Result<Option<remote::Config>> {
    let env = |name: &str| std::env::var(name).ok();
    remote::Config::resolve(model.settings.remote_cache.as_ref(), cli.remote_cache, &env)
        .map_err(Error::usage)
}

/// `--worker`: serve the queue's runs until stopped.
fn serve(cli: &Cli, model: &model::Model, cwd: std::path::PathBuf) -> Result<i32> {
    if !cli.tasks.is_empty() {
        return Err(Error::usage(
            "--worker takes no task: it runs what the queue sends",
        ));
    }
    let jobs = cli
        .jobs
        .or(model.settings.jobs)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    distribute::serve(
        model,
        distribute::WorkerOptions {
            url: cli.queue.clone(),
            name: cli.name.clone(),
            jobs,
            quiet: cli.quiet,
            cwd,
            cache: remote_cache(cli, model)?,
        },
    )
}

/// The directory tasker works from: the current one, or `-C`'s.
fn working_dir(cli: &Cli) -> Result<std::path::PathBuf> {
    let mut cwd = std::env::current_dir()
        .map_err(|e| Error::usage(format!("cannot read the current directory: {e}")))?;
    if let Some(dir) = &cli.dir {
        cwd = cwd.join(dir);
        if !cwd.is_dir() {
            return Err(Error::usage(format!(
                "-C {}: no such directory",
                dir.display()
            )));
        }
    }
    Ok(cwd)
}

/// `--check`: every error the file alone decides, then the warnings.
fn check(cli: &Cli, model: &model::Model) -> Result<()> {
    check::check_file(&template::Engine::new(), model)?;
    let color = Style::for_stderr().color;
    for warning in lint::quoted_values(model) {
        let _ = writeln!(std::io::stderr(), "{}", warning.render(color));
    }
    if !cli.quiet {
        let _ = writeln!(
            std::io::stderr(),
            "{}: ok ({} task{})",
            model.file.display,
            model.tasks.len(),
            if model.tasks.len() == 1 { "" } else { "s" }
        );
    }
    Ok(())
}

/// Task words from tasker's own command line: the parser is told which of
/// them are tasker's own options (for the hint to put them first).
fn command_line() -> Source {
    Source::CommandLine {
        own_option: cli::own_option,
    }
}

/// The invocations the command line asks for: the tasks named, the one
/// chosen (`--choose`), or the default task. `None` when there is nothing
/// to run (a listing or a task's help was printed instead).
fn invocations(cli: &Cli, model: &model::Model) -> Result<Option<Vec<args::Invocation>>> {
    let words: Vec<String> = if cli.choose {
        inspect::choose(model)?
    } else if cli.tasks.is_empty() {
        match &model.settings.default {
            Some((name, _)) => vec![name.clone()],
            None => {
                print(&list::render(model, false, Style::for_stdout()));
                return Ok(None);
            }
        }
    } else {
        cli.tasks.clone()
    };
    let invocations = args::parse(model, &words, command_line())?;
    if let Some(inv) = invocations.iter().find(|i| i.help) {
        let task = &model.tasks[inv.task];
        let reads_extra = check::reads_extra(&template::Engine::new(), model, task)?;
        print(&list::task_help(task, reads_extra, Style::for_stdout()));
        return Ok(None);
    }
    for inv in &invocations {
        let task = &model.tasks[inv.task];
        if !inv.extra.is_empty() && !check::reads_extra(&template::Engine::new(), model, task)? {
            return Err(Error::usage(format!(
                "task `{}` does not read the words after `--` ({})",
                task.name,
                shell_words::join(&inv.extra)
            ))
            .with_help(format!(
                "they reach a task as `{{{{ extra }}}}`, and no command of `{}` uses it; to pass them on, write `{{{{ extra }}}}` in its `run`",
                task.name
            )));
        }
    }
    Ok(Some(invocations))
}

/// Build the graph of runs, run it, and say how it went.
fn run_tasks(cli: &Cli, model: &model::Model, cwd: std::path::PathBuf) -> Result<i32> {
    let invocations = invocations(cli, model)?;
    run_invocations(cli, model, invocations, cwd)
}

/// Run what `invocations` found to run (nothing: a help was printed).
fn run_invocations(
    cli: &Cli,
    model: &model::Model,
    invocations: Option<Vec<args::Invocation>>,
    cwd: std::path::PathBuf,
) -> Result<i32> {
    let Some(invocations) = invocations else {
        return Ok(0);
    };
    if cli.watch && cli.dry_run {
        return Err(Error::usage(
            "-w/--watch runs tasks; it cannot be combined with -n/--dry-run",
        ));
    }
    // From here on processes start (`sh` vars first): every stop signal
    // is watched.
    stop::install();
    // An unreachable queue stops the invocation before anything runs.
    let fleet = distribute::coordinator(cli.queue.as_deref(), model, &cli.set, cli.dry_run)?;
    if !cli.watch {
        let fresh = Arc::new(fresh::Fresh::new(&model.root, cli.force, None));
        return run_once(cli, model, &invocations, cwd, fresh, fleet);
    }
    let watch = watch::Watch::new(&model.root).map_err(Error::usage)?;
    let fresh = Arc::new(fresh::Fresh::new(
        &model.root,
        cli.force,
        Some(Arc::clone(&watch) as Arc<dyn fresh::SourceWatch>),
    ));
    watch.run(cli.quiet, &mut || {
        run_once(
            cli,
            model,
            &invocations,
            cwd.clone(),
            Arc::clone(&fresh),
            fleet.clone(),
        )
    })
}

/// Run the command line's tasks once (`-w` does it again after changes).
fn run_once(
    cli: &Cli,
    model: &model::Model,
    invocations: &[args::Invocation],
    cwd: std::path::PathBuf,
    fresh: Arc<fresh::Fresh>,
    fleet: Option<Arc<dyn exec::Fleet>>,
) -> Result<i32> {
    check::check_global_values(model)?;
    let session = Session::new(model, cli.set.clone(), cli.dry_run, cwd)?;
    let graph = Graph::of_command_line(&session, invocations, cli.parallel)?;
    let mut checked = vec![false; model.tasks.len()];
    for run in &graph.runs {
        if !std::mem::replace(&mut checked[run.task], true) {
            check::check_task(&session.engine, model, &model.tasks[run.task])?;
        }
    }

    let (jobs, may_overlap) = job_slots(cli, &session, &graph);
    let mode = match cli.output {
        Some(mode) => mode,
        None => model.settings.output.unwrap_or(if may_overlap {
            OutputMode::Prefixed
        } else {
            OutputMode::Interleaved
        }),
    };
    let names: Vec<String> = graph.runs.iter().map(|r| r.name.clone()).collect();
    let mut report = Console::new(mode, &names);
    report.quiet = cli.quiet;
    let report = Arc::new(report);
    if cli.verbose {
        // The graph's templates already read the environment, dotenv
        // files included.
        for name in session.dotenv_read.lock().unwrap().iter() {
            report.line(&format!("tasker: read {name}"));
        }
    }
    let remote = remote_cache(cli, model)?.map(|config| remote_for_run(cli, config, &report));
    let run_opts = RunOptions {
        echo: !cli.quiet && model.settings.echo,
        yes: cli.yes,
        verbose: cli.verbose,
        dry_run: cli.dry_run,
        report: Arc::clone(&report),
        fresh,
        remote,
        fleet,
        attempts_made: 0,
    };
    let opts = schedule::Options {
        jobs,
        keep_going: cli.keep_going,
        live_status: mode != OutputMode::Interleaved && style::status_line_allowed() && !cli.quiet,
        may_overlap,
    };
    let summary = execute(&session, graph, &opts, &run_opts);
    if run_opts.fresh.restarting() {
        // `-w` stopped the runs for a change, and says so itself.
        return Ok(summary.status);
    }
    let cache = |run: &str| {
        run_opts
            .remote
            .as_ref()
            .and_then(|r| r.state_of(run))
            .map(remote::CacheState::name)
    };
    Ok(conclude(
        cli,
        &report,
        &summary,
        &session.invocation_dir,
        &cache,
    ))
}

/// How many job slots the runs get, and whether runs may overlap.
fn job_slots(cli: &Cli, session: &Session, graph: &Graph) -> (usize, bool) {
    // Runs that can never overlap (one run, a chain) and call no task need
    // no count of CPUs (reading it costs a few system calls on every
    // start): they go one after the other on this thread.
    // A service runs beside the runs that depend on it, whatever `-j`
    // says (it holds no job slot once ready); under -n it is only shown.
    let services = !cli.dry_run && schedule::has_services(session, graph);
    let serial = !graph.may_overlap() && !schedule::calls_tasks(session, graph) && !services;
    let jobs = if cli.dry_run || serial {
        1
    } else {
        cli.jobs
            .or(session.model.settings.jobs)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    };
    let may_overlap = (jobs > 1 && graph.may_overlap()) || services;
    (jobs, may_overlap)
}

/// The remote cache of a run of tasks: its warnings and notes go through
/// the run's console.
fn remote_for_run(cli: &Cli, config: remote::Config, report: &Arc<Console>) -> Arc<remote::Remote> {
    let warn_to = Arc::clone(report);
    let warn: remote::Warn = Arc::new(move |run, text| {
        let line = match run {
            Some(run) => format!("[{run}] warning: {text}"),
            None => format!("tasker: warning: {text}"),
        };
        warn_to.line(&warn_to.err_style.yellow(&line));
    });
    let note_to = Arc::clone(report);
    let note: remote::Note = Arc::new(move |run, text| note_to.note(run, text));
    remote::Remote::new(config, warn, cli.verbose.then_some(note))
}

/// Run the graph. With a remote cache, the cache is asked for every run
/// that waits for nothing while the first runs start, and the uploads end
/// before tasker does.
fn execute(
    session: &Session,
    graph: Graph,
    opts: &schedule::Options,
    run_opts: &RunOptions,
) -> schedule::Summary {
    let Some(remote) = &run_opts.remote else {
        return schedule::execute(session, graph, opts, run_opts);
    };
    let runs: Vec<graph::Run> = graph.runs.clone();
    let over = std::sync::atomic::AtomicBool::new(false);
    let mut summary = std::thread::scope(|scope| {
        scope.spawn(|| exec::prefetch(session, &runs, run_opts, &over));
        let summary = schedule::execute(session, graph, opts, run_opts);
        over.store(true, std::sync::atomic::Ordering::SeqCst);
        summary
    });
    // A stop signal while the uploads end abandons them, and the
    // invocation ends as interrupted.
    if !remote.finish() && summary.status == 0 {
        summary.status = stop::requested().map_or(130, |sig| 128 + sig);
    }
    summary
}

/// What the user reads at the end, and the exit status.
fn conclude(
    cli: &Cli,
    report: &Console,
    summary: &schedule::Summary,
    cwd: &std::path::Path,
    cache: &dyn Fn(&str) -> Option<&'static str>,
) -> i32 {
    if report.output_gone.load(std::sync::atomic::Ordering::SeqCst) {
        // The reader left: say nothing more, and end as a program killed
        // by SIGPIPE would, so `set -o pipefail` scripts still notice.
        return 141;
    }
    if cli.verbose {
        for (name, outcome, duration) in &summary.runs {
            match outcome {
                exec::Outcome::Success => report.line(&format!(
                    "[{name}] done in {}",
                    report::human_duration(*duration)
                )),
                exec::Outcome::Skipped(why) => report.line(&format!("[{name}] {why}")),
                exec::Outcome::UpToDate => report.line(&format!("[{name}] up to date")),
                exec::Outcome::Restored => {
                    report.line(&format!("[{name}] restored from the remote cache"))
                }
                exec::Outcome::Stopped => report.line(&format!(
                    "[{name}] served for {}, then stopped",
                    report::human_duration(*duration)
                )),
                _ => {}
            }
        }
    }
    report::print_failures(report, summary, cli.verbose);
    if let Some(lost) = report.write_error.lock().unwrap().take() {
        report.line(&format!("{} {lost}", report.err_style.red("error:")));
        return summary.status.max(1);
    }
    if cli.timings == Some(cli::Timings::Table) {
        report.write(
            exec::output::Stream::Stderr,
            report::timings(&summary.runs, cache).as_bytes(),
        );
    }
    match write_timelines(cli, report, summary, cwd) {
        Ok(()) => summary.status,
        Err(e) => {
            report.line(&format!("{} {e}", report.err_style.red("error:")));
            summary.status.max(1)
        }
    }
}

/// `--timings=html` and `--trace FILE`: the timeline written where the
/// user asked (relative to the working directory), its path said on
/// stderr as cargo does.
fn write_timelines(
    cli: &Cli,
    report: &Console,
    summary: &schedule::Summary,
    cwd: &std::path::Path,
) -> std::result::Result<(), String> {
    let mut files = Vec::new();
    if cli.timings == Some(cli::Timings::Html) {
        let title = format!("tasker timings: {}", command_line_tasks());
        files.push((
            cwd.join(timeline::HTML_FILE),
            timeline::html(summary, &title),
            "timings",
        ));
    }
    if let Some(path) = &cli.trace {
        files.push((cwd.join(path), timeline::trace(summary), "trace"));
    }
    for (path, text, what) in files {
        std::fs::write(&path, text)
            .map_err(|e| format!("cannot write the {what} to `{}`: {e}", path.display()))?;
        if !cli.quiet {
            report.line(&format!("tasker: {what} written to {}", path.display()));
        }
    }
    Ok(())
}

/// The words of the command line from the first task on, for titles.
fn command_line_tasks() -> String {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first = cli::first_task_word(&args);
    args[first.min(args.len())..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
