//! `-l --json`'s up-to-date and cache columns: the runs `tasker TASK`
//! would make of each task, built from the command line's parser and the
//! graph, then checked without running anything. It sits at the top, beside
//! the actions, because it reaches down to every stage; `fresh` below it
//! only checks one run it is handed.

use crate::args;
use crate::context::Session;
use crate::fresh;
use crate::graph::Graph;
use crate::list;
use crate::remote;
use crate::template::Mode;

/// The checks of the runs `tasker TASK` (no arguments) would make of the
/// task at `index`: `None` when it has no sources, or needs arguments, or
/// its runs cannot be built or rendered without running anything.
fn checks(fresh: &fresh::Fresh, session: &Session, index: usize) -> Option<Vec<fresh::Check>> {
    let task = &session.model.tasks[index];
    if task.sources.is_empty() {
        return None;
    }
    let words = [task.name.clone()];
    let invocations = args::parse(session.model, &words, crate::command_line()).ok()?;
    let graph = Graph::of_command_line(session, &invocations, false).ok()?;
    let mut checks = Vec::new();
    for run in graph.runs.iter().filter(|r| r.task == index) {
        let dir = match &task.dir {
            Some(t) => session
                .model
                .root
                .join(session.render(t, Mode::Plain, &run.scope, "`dir`").ok()?),
            None => session.model.base_dir(task).to_path_buf(),
        };
        let named = fresh::RunRef {
            name: &run.name,
            args: &run.scope,
        };
        checks.push(fresh.check(session, task, named, &run.scope, &dir).ok()?);
    }
    Some(checks)
}

/// For `-l --json`: whether the task is up to date and, when it is not,
/// whether the remote cache holds every run it would make.
pub fn listed(
    session: &Session,
    fresh: &fresh::Fresh,
    remote: Option<&remote::Remote>,
    task: usize,
) -> list::Freshness {
    let Some(checks) = checks(fresh, session, task) else {
        return list::Freshness::default();
    };
    let stale: Vec<&fresh::Check> = checks.iter().filter(|c| c.stale.is_some()).collect();
    let cache = match remote {
        Some(remote) if !stale.is_empty() && session.model.tasks[task].cache => {
            let mut state = remote::CacheState::Hit;
            for check in stale {
                match remote.exists(&remote::key(check.fingerprint())) {
                    Some(true) => {}
                    Some(false) => state = remote::CacheState::Miss,
                    None => {
                        state = remote::CacheState::Unavailable;
                        break;
                    }
                }
            }
            Some(state.name())
        }
        _ => None,
    };
    let up_to_date = checks.iter().all(|c| c.stale.is_none());
    // Restored wins: one restored run means the outputs came from the cache.
    let recorded = up_to_date.then(|| {
        let restored = checks
            .iter()
            .any(|c| matches!(c.recorded, Some((fresh::How::Restored, _))));
        if restored {
            fresh::How::Restored.name()
        } else {
            fresh::How::Ran.name()
        }
    });
    list::Freshness {
        up_to_date: Some(up_to_date),
        cache,
        recorded,
    }
}
