//! A run's side of the remote cache (SPEC 7): asked before a run that the
//! local record would run; on a hit the outputs are restored and the
//! output shown again instead of running; after a success of its own the
//! run is packed here and uploaded in the background.

use super::*;
use crate::fresh::Check;
use crate::remote::{self, CacheState, Fetched, Refusal, Remote};

/// What asking the cache decided.
pub(super) enum Asked {
    /// Run the steps (a miss, no cache, or the cache cannot be used).
    Run,
    /// Restored from the cache: the run is over.
    Restored,
    /// Stopped while asking.
    Cancelled,
}

/// The remote cache, when it applies to this task: one with `sources`,
/// not opted out, and neither a service nor one that needs the terminal
/// (its output could not be kept without taking the terminal away).
fn remote_for<'a>(opts: &'a RunOptions, task: &Task) -> Option<&'a Arc<Remote>> {
    opts.remote
        .as_ref()
        .filter(|_| task.cache && !task.sources.is_empty() && !task.interactive && !task.background)
}

/// Ask the cache for a run the local record would run.
pub(super) fn ask(
    opts: &RunOptions,
    job: &Job,
    control: &Control,
    sink: &mut output::RunOutput,
    check: &Check,
) -> Asked {
    let Some(remote) = remote_for(opts, job.task) else {
        return Asked::Run;
    };
    if opts.dry_run {
        sink.note("would ask the remote cache");
        return Asked::Run;
    }
    if !opts.fresh.forced() {
        let key = remote::key(check.fingerprint());
        let stopping = || control.is_cancelled() || crate::stop::requested().is_some();
        let state = match remote.fetch(&key, &stopping) {
            Fetched::Hit(download) => match restore(opts, job, sink, check, remote, download) {
                Some(asked) => return asked,
                None => CacheState::Miss,
            },
            Fetched::Miss => {
                if opts.verbose {
                    sink.note("not in the remote cache");
                }
                CacheState::Miss
            }
            Fetched::Unavailable => CacheState::Unavailable,
            Fetched::Stopped => return Asked::Cancelled,
        };
        remote.note_state(&job.run.name, state);
    }
    if remote.writes() {
        sink.record();
    }
    Asked::Run
}

/// Put a hit's outputs in place and show its output; `None` when the
/// artifact was refused (said as a warning), so the run goes on as a miss.
fn restore(
    opts: &RunOptions,
    job: &Job,
    sink: &mut output::RunOutput,
    check: &Check,
    remote: &Remote,
    download: remote::Download,
) -> Option<Asked> {
    let (bytes, took) = (download.bytes, download.took);
    let started = Instant::now();
    // Only a stop signal ends a restore: once begun, it is short and whole.
    let signalled = || crate::stop::requested().is_some();
    match remote::restore(download, &check.dir, &job.task.outputs, &signalled) {
        Ok(restored) => {
            remote.note_state(&job.run.name, CacheState::Hit);
            let frames: Box<dyn Iterator<Item = (u8, Vec<u8>)>> = match restored.log {
                Some(log) => Box::new(remote::frames(log)),
                None => Box::new(std::iter::empty()),
            };
            sink.replay(frames, restored.results);
            sink.note(&if opts.verbose {
                format!(
                    "restored from the remote cache ({}, {} entries, downloaded in {}, restored in {})",
                    remote::human_bytes(bytes),
                    restored.entries,
                    crate::outcome::human_duration(took),
                    crate::outcome::human_duration(started.elapsed())
                )
            } else {
                "restored from the remote cache".to_string()
            });
            Some(Asked::Restored)
        }
        Err(Refusal::Stopped) => Some(Asked::Cancelled),
        Err(Refusal::Bad(why)) => {
            remote.warn(
                Some(&job.run.name),
                &format!("the remote cache's artifact is refused: {why}"),
            );
            None
        }
    }
}

/// After a success of its own: pack the run and upload it.
pub(super) fn upload(
    opts: &RunOptions,
    job: &Job,
    sink: &mut output::RunOutput,
    check: &Check,
    took: Duration,
) {
    let Some(remote) = remote_for(opts, job.task) else {
        return;
    };
    // Not kept: the cache was not asked (it cannot write), or -n.
    let Some(log) = sink.take_log() else {
        return;
    };
    if !remote.writes() {
        return;
    }
    let key = remote::key(check.fingerprint());
    let texts = sink.result_texts();
    match remote.pack(
        &key,
        &job.run.name,
        &check.dir,
        &job.task.outputs,
        Some(log),
        texts,
    ) {
        Ok(packed) => remote.upload(key, job.run.name.clone(), packed, took),
        Err(why) => remote.warn(
            Some(&job.run.name),
            &format!("not uploaded to the remote cache: {why}"),
        ),
    }
}

/// Before the runs start: ask the cache for every run that waits for
/// nothing, all at once, so that a graph of hits costs no round trip per
/// run. A run whose fingerprint turns out different asks again itself.
/// `over` ends it early (the runs ended first).
pub fn prefetch(session: &Session, runs: &[Run], opts: &RunOptions, over: &AtomicBool) {
    if opts.dry_run || opts.fresh.forced() {
        return;
    }
    for run in runs
        .iter()
        .filter(|r| r.deps.is_empty() && r.after.is_empty())
    {
        if crate::stop::requested().is_some() || over.load(Ordering::SeqCst) {
            return;
        }
        let task = &session.model.tasks[run.task];
        let Some(remote) = remote_for(opts, task) else {
            continue;
        };
        let Ok((scope, dir)) = scope_and_dir(session, task, run) else {
            continue;
        };
        if let Ok(check) = opts.fresh.check(session, task, run_ref(run), &scope, &dir) {
            if check.stale.is_some() {
                remote.prefetch(&remote::key(check.fingerprint()));
            }
        }
    }
}

/// A run that succeeded on a worker (SPEC 11): put its `outputs` in place
/// here from the remote cache, where the worker uploaded them, and record
/// the run up to date, so that the invocation leaves the files a local run
/// would. `Ok(false)` when the cache does not apply to the task.
pub fn restore_outputs(session: &Session, opts: &RunOptions, job: &Job) -> Result<bool, String> {
    let Some(remote) = remote_for(opts, job.task) else {
        return Ok(false);
    };
    if opts.dry_run {
        return Ok(false);
    }
    let (scope, dir) = scope_and_dir(session, job.task, &job.run).map_err(|r| r.to_string())?;
    let check = opts
        .fresh
        .check(session, job.task, run_ref(&job.run), &scope, &dir)?;
    let key = remote::key(check.fingerprint());
    let stopping = || crate::stop::requested().is_some();
    // A lookup made before the worker uploaded (the prefetch at the start)
    // says miss: then ask again.
    let fetched = match remote.fetch(&key, &stopping) {
        Fetched::Miss => remote.fetch(&key, &stopping),
        other => other,
    };
    match fetched {
        Fetched::Hit(download) => {
            let values = match remote::restore(download, &check.dir, &job.task.outputs, &stopping) {
                Ok(restored) => restored.results,
                Err(Refusal::Stopped) => return Ok(false),
                Err(Refusal::Bad(why)) => return Err(format!("its artifact is refused: {why}")),
            };
            // The worker ran it: recorded as a run of its own.
            check.save(crate::fresh::How::Ran, values)?;
            Ok(true)
        }
        Fetched::Miss => Err("the worker's outputs are not in the remote cache".into()),
        Fetched::Unavailable => Err("the remote cache cannot be reached".into()),
        Fetched::Stopped => Ok(false),
    }
}
