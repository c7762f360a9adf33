//! A step made ready to start: rendered and split into programs, or into
//! the task calls of a `task` step.

use super::*;

/// A step ready to start: rendered and split into programs.
pub(super) enum Prepared {
    Processes {
        echo: String,
        argvs: Vec<Vec<String>>,
    },
    Calls {
        echo: String,
        invocations: Vec<Invocation>,
    },
}

impl StepContext<'_, '_> {
    pub(super) fn prepare(
        &self,
        index: usize,
        step: &Step,
        scope: &crate::context::Scope,
    ) -> Result<Prepared, Error> {
        let session = self.session;
        let task = self.job.task;
        let what = format!("step {} of task `{}`", index + 1, task.name);
        Ok(match &step.kind {
            StepKind::Sh(t) => {
                let script = session.render(t, Mode::Shell, scope, &what)?;
                let shell = task.shell.as_ref().unwrap_or(&session.model.settings.shell);
                let argv = direct::argv(shell, &script).unwrap_or_else(|| {
                    let mut argv = shell.clone();
                    argv.push(script.clone());
                    argv
                });
                Prepared::Processes {
                    echo: script.trim_end_matches('\n').to_string(),
                    argvs: vec![argv],
                }
            }
            StepKind::Cmd(elements) => {
                let mut argv = Vec::new();
                for t in elements {
                    // Elements that render to nothing are dropped (an
                    // optional flag).
                    argv.extend(
                        session
                            .render_words(t, scope, &what)?
                            .into_iter()
                            .filter(|w| !w.is_empty()),
                    );
                }
                if argv.is_empty() {
                    return Err(Error::at(
                        &step.span,
                        format!("{what}: `cmd` renders to no program"),
                    ));
                }
                Prepared::Processes {
                    echo: join_words(&argv),
                    argvs: vec![argv],
                }
            }
            StepKind::Pipe(stages) => {
                let mut argvs = Vec::new();
                for t in stages {
                    let text = session.render(t, Mode::Shell, scope, &what)?;
                    let words = shell_words::split(&text).map_err(|e| {
                        Error::at(
                            &t.span,
                            format!("{what}: cannot split `{text}` into words: {e}"),
                        )
                    })?;
                    if words.is_empty() {
                        return Err(Error::at(
                            &t.span,
                            format!("{what}: a `pipe` stage renders to nothing"),
                        ));
                    }
                    argvs.push(words);
                }
                Prepared::Processes {
                    echo: argvs
                        .iter()
                        .map(|a| join_words(a))
                        .collect::<Vec<_>>()
                        .join(" | "),
                    argvs,
                }
            }
            StepKind::Task(call) => {
                let text = session.render(&call.template, Mode::Shell, scope, &what)?;
                let invocations =
                    args::parse_call(session.model, &text, &call.template.span, task)?;
                Prepared::Calls {
                    echo: text,
                    invocations,
                }
            }
        })
    }
}

/// Words joined for display, each quoted when the shell would need it.
pub fn join_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| shell_words::quote(w).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
