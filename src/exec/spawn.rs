//! A step's processes: started with their streams wired, waited for, and
//! judged.

use super::child;
use super::*;
use crate::context::EnvView;

/// Each argv's program, resolved against the PATH the step gets: a
/// missing program is named precisely, and std can spawn without forking
/// since it need not search a changed PATH itself.
fn resolve_programs(
    argvs: &[Vec<String>],
    dir: &Path,
    path: Option<&str>,
) -> Result<Vec<std::path::PathBuf>, Reason> {
    argvs
        .iter()
        .map(|argv| {
            process::resolve_program(&argv[0], dir, path).ok_or_else(|| {
                // Without PATH only a name with a `/` can be found: say
                // so, rather than blame the program.
                if path.is_none() && !argv[0].contains('/') {
                    Reason::NoPath(argv[0].clone())
                } else {
                    Reason::NotFound(argv[0].clone())
                }
            })
        })
        .collect()
}

impl StepContext<'_, '_> {
    /// A step's processes from resolving the programs to the verdict, in
    /// the order they happen; `start`, `watch_step` and `verdict` hold the
    /// longest pieces.
    pub(super) fn spawn_and_wait(
        &self,
        echo: &str,
        argvs: &[Vec<String>],
        dir: &Path,
        env: EnvView,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let programs = match resolve_programs(argvs, dir, env.get("PATH")) {
            Ok(programs) => programs,
            Err(reason) => return Outcome::Failed(Failure::new(reason, Some(echo.to_string()))),
        };
        if let Some(why) = unreachable_value(argvs, env) {
            return Outcome::Failed(Failure::new(
                Reason::Unreachable(why),
                Some(echo.to_string()),
            ));
        }
        let alone = self.job.alone;
        // Every run's processes get a group of their own, so that stopping
        // the run stops its whole tree. On its own terminal (pty) a run
        // leads its own session. A run that has tasker's terminal alone
        // gets the terminal's foreground, as a shell would give it; a
        // pipeline in that place (several groups cannot share it) stays in
        // tasker's group instead, so that it can still read the terminal.
        let shares_terminal = alone && !self.job.task.pty && std::io::stdin().is_terminal();
        let foreground = shares_terminal && argvs.len() == 1 && process::owns_terminal();
        let new_group = !shares_terminal || foreground || self.job.task.pty;
        let (handle, io) = match self.start(argvs, programs, dir, env, sink, foreground, new_group)
        {
            Ok(started) => started,
            Err(Outcome::Failed(f)) => {
                return Outcome::Failed(Failure {
                    step: Some(echo.to_string()),
                    ..f
                })
            }
            Err(outcome) => return outcome,
        };
        sink.step_started();
        let pids = handle.pids();
        let procs: Vec<Proc> = pids
            .iter()
            .map(|&pid| Proc {
                pid,
                group: new_group,
            })
            .collect();
        let (status, timed_out) = self.watch_step(&handle, io, &procs, foreground, sink);
        self.control.forget(&pids);
        self.verdict(status, timed_out, foreground, echo, sink)
    }

    /// Wait for the started processes `procs` while `sink` reads their
    /// output; whether the step's timeout ended them comes back too.
    fn watch_step(
        &self,
        handle: &child::Child,
        io: output::StepIo,
        procs: &[Proc],
        foreground: bool,
        sink: &mut output::RunOutput,
    ) -> (std::io::Result<std::process::ExitStatus>, bool) {
        let stop = || self.control.stop(procs.to_vec());
        let timed_out = AtomicBool::new(false);
        let on_timeout = || {
            timed_out.store(true, Ordering::SeqCst);
            stop();
        };
        // What the main process left in its group: asked to stop at once,
        // then waited for (SIGKILL after the grace period).
        let leftovers = |wait: bool| {
            for proc in procs {
                if wait {
                    process::reap_within(*proc, self.control.grace());
                } else if proc.group {
                    process::terminate(*proc);
                }
            }
        };
        // A run that holds the terminal may be stopped there (Ctrl-Z):
        // tasker then stops too, as a shell's job does, until `fg`.
        let job_control = foreground.then(|| {
            let pid = procs[0].pid;
            std::thread::spawn(move || process::follow_job(pid))
        });
        let status = sink.watch(
            io,
            handle,
            self.deadline
                .map(|d| d.saturating_duration_since(Instant::now())),
            &on_timeout,
            &stop,
            &leftovers,
        );
        if foreground {
            process::reclaim_terminal();
        }
        if let Some(thread) = job_control {
            let _ = thread.join();
        }
        let dropped = sink.take_dropped_answers();
        if dropped > 0 && self.opts.verbose {
            sink.note(&format!(
                "{dropped} bytes of answers were dropped: the run did not read its stdin"
            ));
        }
        (status, timed_out.load(Ordering::SeqCst))
    }

    /// Start the step's programs, wired to `sink`. An executable file
    /// without `#!` is started again through `sh`, as `sh` itself does.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &self,
        argvs: &[Vec<String>],
        mut programs: Vec<std::path::PathBuf>,
        dir: &Path,
        env: EnvView,
        sink: &mut output::RunOutput,
        foreground: bool,
        new_group: bool,
    ) -> Result<(child::Child, output::StepIo), Outcome> {
        let alone = self.job.alone;
        let path = env.get("PATH");
        let io_error = |e: std::io::Error| {
            Outcome::Failed(Failure::new(Reason::OutputSetup(e.to_string()), None))
        };
        let mut argvs = argvs.to_vec();
        let mut scripts_wrapped = false;
        loop {
            let mut io = match sink.prepare_step(alone) {
                Ok(io) => io,
                Err(e) => return Err(io_error(e)),
            };
            let pty = io.pty;
            // A relative program would be looked up after the child's
            // chdir: std's way handles that case.
            let own = child::OWN_SPAWN && argvs.len() == 1 && programs[0].is_absolute();
            let started = if own && !pty && !foreground {
                self.start_one(&argvs[0], &programs[0], dir, env, &mut io, new_group)
            } else {
                self.start_duct(&argvs, &programs, dir, env, &mut io, new_group, foreground)
            };
            match started {
                Ok(Some(h)) => return Ok((h, io)),
                Ok(None) => return Err(Outcome::Cancelled),
                // An executable file without `#!`: `sh` runs it as a shell
                // script, and so does tasker.
                Err(e) if e.raw_os_error() == Some(libc::ENOEXEC) && !scripts_wrapped => {
                    scripts_wrapped = true;
                    let shell = process::resolve_program("sh", dir, path)
                        .unwrap_or_else(|| "/bin/sh".into());
                    for (argv, program) in argvs.iter_mut().zip(programs.iter_mut()) {
                        if !process::has_binary_magic(program) {
                            let script = program.display().to_string();
                            argv.splice(0..1, ["sh".to_string(), script]);
                            *program = shell.clone();
                        }
                    }
                }
                Err(e) => {
                    return Err(Outcome::Failed(Failure::new(
                        spawn_failure(&e, &argvs, &programs, env),
                        None,
                    )))
                }
            }
        }
    }

    /// One program, started by tasker itself (`child::spawn_one`).
    fn start_one(
        &self,
        argv: &[String],
        program: &Path,
        dir: &Path,
        env: EnvView,
        io: &mut output::StepIo,
        new_group: bool,
    ) -> std::io::Result<Option<child::Child>> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let streams = io.streams();
            let started = self.control.spawn(
                || {
                    child::spawn_one(program, argv, dir, env, &streams, new_group)
                        .map(child::Child::Own)
                },
                new_group,
            );
            io.close_child_ends();
            started
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        {
            let _ = (argv, program, dir, env, io, new_group);
            unreachable!("no own spawn on this platform")
        }
    }

    /// A pipeline, or a program that needs code run in its child (a
    /// terminal of its own, the terminal's foreground): through duct.
    #[allow(clippy::too_many_arguments)]
    fn start_duct(
        &self,
        argvs: &[Vec<String>],
        programs: &[std::path::PathBuf],
        dir: &Path,
        env: EnvView,
        io: &mut output::StepIo,
        new_group: bool,
        foreground: bool,
    ) -> std::io::Result<Option<child::Child>> {
        let pty = io.pty;
        let mut expr: Option<duct::Expression> = None;
        for (argv, program) in argvs.iter().zip(programs) {
            let arg0 = argv[0].clone();
            let stage = duct::cmd(program, &argv[1..]).before_spawn(move |cmd| {
                process::configure(cmd, new_group && !pty && !foreground, &arg0);
                if pty {
                    process::take_terminal(cmd);
                }
                if foreground {
                    process::foreground(cmd);
                }
                Ok(())
            });
            expr = Some(match expr {
                None => stage,
                Some(left) => left.pipe(stage),
            });
        }
        let expr = expr.expect("at least one stage");
        let expr = with_env(expr.dir(dir), env).unchecked();
        let expr = io.apply(expr);
        self.control.spawn(
            || Ok(child::Child::Duct(Box::new(expr.start()?))),
            new_group,
        )
    }

    /// How the step ended, from what happened in order of precedence: a
    /// timeout, a pattern, a cancel, the user's interrupt, the status.
    pub(super) fn verdict(
        &self,
        status: std::io::Result<std::process::ExitStatus>,
        timed_out: bool,
        foreground: bool,
        echo: &str,
        sink: &mut output::RunOutput,
    ) -> Outcome {
        let status = match status {
            Ok(status) => status,
            Err(e) => {
                return Outcome::Failed(Failure::new(
                    Reason::LostProcess(e.to_string()),
                    Some(echo.to_string()),
                ))
            }
        };
        if timed_out {
            return self.timed_out(Some(echo));
        }
        if let Some(reason) = sink.take_pattern_failure() {
            // The pattern decided, not however the stopped process died.
            return Outcome::Failed(Failure::new(
                Reason::Pattern(reason),
                Some(echo.to_string()),
            ));
        }
        if self.control.is_cancelled() {
            return Outcome::Cancelled;
        }
        if foreground {
            // Ctrl-C (or Ctrl-\) typed at a run that held the terminal is
            // the user's interrupt of tasker, as in a shell: no retry, no
            // `ignore_failure`, nothing more starts.
            if let Some(sig) = process::interrupted_by(status) {
                crate::stop::request(sig);
                return Outcome::Cancelled;
            }
        }
        if let Some(reason) = process::failure(status) {
            return Outcome::Failed(Failure::new(reason, Some(echo.to_string())));
        }
        Outcome::Success
    }
}

/// Why an argument or environment value cannot reach a process: the
/// system takes them as C strings, which end at a NUL byte.
pub(super) fn unreachable_value(argvs: &[Vec<String>], env: EnvView) -> Option<String> {
    for argv in argvs {
        for (i, word) in argv.iter().enumerate() {
            if word.contains('\0') {
                let what = if i == 0 {
                    "the program name".to_string()
                } else {
                    format!("argument {i} of `{}`", argv[0])
                };
                return Some(format!(
                    "{what} holds a NUL byte, which cannot reach a process: {}",
                    shell_words::quote(&word.replace('\0', "\\0"))
                ));
            }
        }
    }
    let (name, _) = env
        .iter()
        .find(|(k, v)| v.contains('\0') || k.contains('\0'))?;
    Some(format!(
        "environment variable `{}` holds a NUL byte, which cannot reach a process",
        name.replace('\0', "\\0")
    ))
}

/// Why the system refused to start a step's programs, as `sh` would say it.
pub(super) fn spawn_failure(
    e: &std::io::Error,
    argvs: &[Vec<String>],
    programs: &[std::path::PathBuf],
    env: EnvView,
) -> Reason {
    let first = argvs[0][0].clone();
    match e.raw_os_error() {
        Some(libc::EACCES) => {
            let culprit = argvs
                .iter()
                .zip(programs)
                .find(|(_, p)| !process::is_executable(p))
                .map_or(first, |(argv, _)| argv[0].clone());
            Reason::NotExecutable(culprit)
        }
        Some(libc::E2BIG) => {
            let args: usize = argvs.iter().flatten().map(|w| w.len() + 1).sum();
            let environ: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
            let largest = env
                .iter()
                .max_by_key(|(k, v)| k.len() + v.len())
                .map(|(k, v)| {
                    format!(
                        "; the largest environment variable is `{k}` ({} bytes)",
                        v.len()
                    )
                })
                .unwrap_or_default();
            let longest = argvs.iter().flatten().map(String::len).max().unwrap_or(0);
            Reason::TooBig(format!(
                "the arguments ({args} bytes, the longest {longest}) and the environment ({environ} bytes) are too big for the system to start `{first}`{largest}"
            ))
        }
        _ => Reason::CannotStart {
            program: first,
            error: e.to_string(),
        },
    }
}

/// Give the expression exactly `env`, by naming only what differs from
/// tasker's own environment: far cheaper per spawn than replacing it whole.
pub(super) fn with_env(mut expr: duct::Expression, env: EnvView) -> duct::Expression {
    static OWN: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
    let own = OWN.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect()
    });
    for (key, value) in env.iter() {
        if own.get(key).map(String::as_str) != Some(value) {
            expr = expr.env(key, value);
        }
    }
    for key in own.keys() {
        if !env.contains_key(key) {
            expr = expr.env_remove(key);
        }
    }
    expr
}
