//! `tasker --worker` (SPEC 11): takes runs from the queue, at most `-j`
//! at once, and runs each from its own `tasks.toml` through the normal
//! path of a run; its output and its result go back to the coordinator.
//! A run planned with another file or another tasker is refused. On a
//! stop signal the worker takes nothing new, stops its runs as fail-fast
//! does, hands them back to the queue and exits 0.
//!
//! Fencing (SPEC 11): the worker holds a lease under an epoch. When it
//! cannot renew the lease in time, it stops the runs it holds within 1 s
//! and records none of their results; the server refuses a result or a
//! start under any epoch but the live one.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use minijinja::value::Value;

use super::coordinator::NoCalls;
use super::outbox::Outbox;
use super::queue::{self, Begun, Connection, Lease, Queue, Recorded, RunSpecRef};
use super::wire::{self, Ended, RunResult, RunSpec, Tagged, WireFailure};
use super::{Project, FENCE_AFTER, MAX_JOBS, REAP, RENEW};
use crate::context::{Scope, Session};
use crate::error::{Error, Result};
use crate::exec::{self, Console, Control, Finished, Job, Outcome, Reason, RunOptions};
use crate::graph::Run;
use crate::model::{Model, Task};

/// How long a worker waits for a run before it looks at its stop flag.
const TAKE_WAIT: Duration = Duration::from_secs(1);
/// How often a worker asks whether its runs were cancelled: a cancel
/// reaches their processes well within the 1 s SPEC 11 allows.
const CANCEL_POLL: Duration = Duration::from_millis(200);
/// The grace period of a run its coordinator cancelled: with the poll
/// above, its process tree is gone within 1 s of the cancel (SPEC 11).
const CANCEL_GRACE: Duration = Duration::from_millis(600);

/// What the worker's options say.
pub struct Options {
    pub url: Option<String>,
    pub name: Option<String>,
    pub jobs: usize,
    pub quiet: bool,
    pub cwd: PathBuf,
    /// The worker's own remote cache, when one is configured.
    pub cache: Option<crate::remote::Config>,
}

/// How long a coordinator's lease must stay missing before its runs are
/// stopped: a server restarted empty has none until the next renewal.
const GONE_FOR: Duration = Duration::from_secs(3);

/// A run in progress here.
struct Running {
    coordinator: String,
    /// The lease lapsed: the run is stopped and its result not recorded.
    fenced: AtomicBool,
    /// Since when its coordinator's lease has been missing.
    gone_since: Mutex<Option<Instant>>,
    control: Arc<Control>,
    /// The coordinator cancelled it (or is gone): report, do not hand back.
    by_coordinator: AtomicBool,
    /// The coordinator is gone: its output has no reader.
    abandoned: Arc<AtomicBool>,
}

struct Worker<'m> {
    model: &'m Model,
    queue: Arc<Queue>,
    name: String,
    jobs: usize,
    quiet: bool,
    cwd: PathBuf,
    fresh: Arc<crate::fresh::Fresh>,
    cache: Option<crate::remote::Config>,
    runs: Arc<Runs>,
    lease: Arc<Mutex<LeaseState>>,
    log: Mutex<()>,
    /// The last fault said, and when: a server that is down is said once
    /// every 30 s, not at every attempt.
    fault: Mutex<Option<(String, Instant)>>,
}

/// The worker's lease as it knows it.
struct LeaseState {
    epoch: String,
    /// When the last renewal that succeeded was sent.
    renewed: Instant,
    /// The epoch is the server's, as far as the worker knows; false until
    /// the first renewal, and once the lease lapsed (a new epoch is then
    /// taken).
    valid: bool,
}

/// The runs in progress, and whether the worker is stopping: shared with
/// the stop signals' listener.
#[derive(Default)]
struct Runs {
    stopping: AtomicBool,
    running: Mutex<HashMap<String, Arc<Running>>>,
}

impl Runs {
    /// Take nothing new; stop the runs, which are then handed back.
    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for running in self.running.lock().unwrap().values() {
            running.control.cancel();
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Wait `pause` before trying the queue again, or less when the
    /// worker stops meanwhile: a stop is obeyed within 1 s (SPEC 11).
    fn nap(&self, pause: Duration) {
        let end = Instant::now() + pause;
        while !self.stopping() {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}

/// Serve runs until a stop signal; the exit status.
pub fn serve(model: &Model, opts: Options) -> Result<i32> {
    let url = super::queue_url(opts.url.as_deref(), model).ok_or_else(|| {
        Error::usage("--worker needs a queue")
            .with_help("give --queue redis://HOST:PORT, set TASKER_QUEUE, or [settings] queue")
    })?;
    let queue = Queue::connect(&url, Project::of(model), false).map_err(Error::usage)?;
    let name = opts
        .name
        .unwrap_or_else(|| format!("{}:{}", super::host_name(), std::process::id()));
    if opts.jobs > MAX_JOBS && !opts.quiet {
        eprintln!(
            "worker `{name}`: -j{} is more than {MAX_JOBS} slots; it serves {MAX_JOBS}",
            opts.jobs
        );
    }
    let worker = Arc::new(Worker {
        model,
        queue: Arc::new(queue),
        name,
        jobs: opts.jobs.min(MAX_JOBS),
        quiet: opts.quiet,
        cwd: opts.cwd,
        fresh: Arc::new(crate::fresh::Fresh::new(&model.root, false, None)),
        cache: opts.cache,
        runs: Arc::default(),
        lease: Arc::new(Mutex::new(LeaseState {
            epoch: queue::token(),
            renewed: Instant::now(),
            valid: false,
        })),
        log: Mutex::new(()),
        fault: Mutex::new(None),
    });
    crate::stop::install();
    worker.heartbeat_once().map_err(Error::usage)?;
    let listener = Arc::clone(&worker.runs);
    let queue = Arc::clone(&worker.queue);
    // Whatever the server does, the worker is gone within 1 s of a stop
    // signal: the server gets `STOP_GRACE`, then nothing.
    let listening = crate::stop::listen(Arc::new(move |_sig| {
        queue.health().stopping();
        listener.stop();
    }));
    worker.say(&format!(
        "worker `{}` serving {} (at most {} at once)",
        worker.name, worker.queue.shown, worker.jobs
    ));
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let beat = scope.spawn(|| worker.heartbeat(&done));
        let watch = scope.spawn(|| worker.watch_lease(&done));
        let takers: Vec<_> = (0..worker.jobs)
            .map(|slot| {
                let worker = &worker;
                scope.spawn(move || worker.take_runs(slot))
            })
            .collect();
        for taker in takers {
            let _ = taker.join();
        }
        done.store(true, Ordering::SeqCst);
        let _ = beat.join();
        let _ = watch.join();
    });
    drop(listening);
    if let Ok(mut con) = worker.queue.connection() {
        let lists: Vec<String> = (0..worker.jobs)
            .map(|slot| worker.queue.working(&worker.name, slot))
            .collect();
        let epoch = worker.lease.lock().unwrap().epoch.clone();
        let lease = Lease {
            worker: &worker.name,
            epoch: &epoch,
        };
        let _ = queue::retire_worker(&mut con, &worker.queue, &lease, &lists);
    }
    worker.say(&format!("worker `{}` stopped", worker.name));
    Ok(0)
}

impl Worker<'_> {
    /// A line on the worker's own stderr.
    fn say(&self, text: &str) {
        if self.quiet {
            return;
        }
        let _lock = self.log.lock().unwrap();
        let _ = writeln!(std::io::stderr(), "{text}");
    }

    /// A fault of the queue, said unless it was just said.
    fn fault(&self, why: &str) {
        let mut last = self.fault.lock().unwrap();
        if let Some((text, at)) = &*last {
            if text == why && at.elapsed() < Duration::from_secs(30) {
                return;
            }
        }
        *last = Some((why.to_string(), Instant::now()));
        drop(last);
        self.say(&format!("worker `{}`: {why}", self.name));
    }

    fn info(&self) -> String {
        serde_json::json!({
            "host": super::host_name(),
            "pid": std::process::id(),
            "jobs": self.jobs,
            "running": self.runs.running.lock().unwrap().len(),
            "heartbeat_ms": super::now_ms(),
            "version": self.queue.project.version,
            "file_hash": self.queue.project.file_hash,
        })
        .to_string()
    }

    fn heartbeat_once(&self) -> std::result::Result<(), String> {
        let mut con = self.queue.connection()?;
        self.renew(&mut con).map_err(|e| self.queue.lost(&e))?;
        self.queue.give_back(con);
        if !self.lease.lock().unwrap().valid {
            self.say(&format!(
                "worker `{}`: another worker of that name holds the lease; waiting for it to lapse",
                self.name
            ));
        }
        Ok(())
    }

    /// Renew the lease, or take a new epoch when it lapsed.
    fn renew(&self, con: &mut Connection) -> redis::RedisResult<()> {
        let (epoch, valid) = {
            let lease = self.lease.lock().unwrap();
            (lease.epoch.clone(), lease.valid)
        };
        let sent = Instant::now();
        let next = if valid { epoch.clone() } else { queue::token() };
        let old = (!valid).then_some(epoch.as_str());
        let lease = Lease {
            worker: &self.name,
            epoch: &next,
        };
        let renewed = queue::renew_worker(con, &self.queue, &lease, old, &self.info())?;
        let mut state = self.lease.lock().unwrap();
        // The watch may have fenced the epoch while the renewal was on its
        // way: that epoch stays fenced.
        if state.epoch != epoch || state.valid != valid {
            return Ok(());
        }
        match (renewed, valid) {
            (true, _) => {
                *state = LeaseState {
                    epoch: next,
                    renewed: sent,
                    valid: true,
                };
            }
            (false, true) => {
                state.valid = false;
                drop(state);
                self.fence("its lease lapsed on the server");
            }
            (false, false) => {}
        }
        Ok(())
    }

    /// Fence the lease when it was not renewed in time, whatever the
    /// server does (a renewal may hang on a frozen server), until `done`.
    fn watch_lease(&self, done: &AtomicBool) {
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            let mut lease = self.lease.lock().unwrap();
            if lease.valid && lease.renewed.elapsed() >= FENCE_AFTER {
                lease.valid = false;
                drop(lease);
                self.fence("it could not renew its lease in time");
            }
        }
    }

    /// The lease was lost: stop every run (their process trees within
    /// 1 s), and record none of their results.
    fn fence(&self, why: &str) {
        let running = self.runs.running.lock().unwrap();
        if !running.is_empty() {
            self.say(&format!(
                "worker `{}`: {why}; stopping {} run(s), whose results will not be recorded",
                self.name,
                running.len()
            ));
        }
        for run in running.values() {
            run.fenced.store(true, Ordering::SeqCst);
            run.abandoned.store(true, Ordering::SeqCst);
            run.control.cancel_within(CANCEL_GRACE);
        }
    }

    /// The live epoch, when the worker holds its lease.
    fn epoch(&self) -> Option<String> {
        let lease = self.lease.lock().unwrap();
        lease.valid.then(|| lease.epoch.clone())
    }

    /// Renew the lease, stop cancelled runs, and put back the runs of
    /// dead workers, until `done`.
    fn heartbeat(&self, done: &AtomicBool) {
        let mut renewed = Instant::now();
        let mut reaped = Instant::now() - REAP;
        let mut con = None;
        while !done.load(Ordering::SeqCst) {
            std::thread::sleep(CANCEL_POLL);
            let c = match con.take() {
                Some(c) => c,
                None => match self.queue.connection() {
                    Ok(c) => c,
                    Err(why) => {
                        self.fault(&why);
                        continue;
                    }
                },
            };
            let mut c = c;
            let beat = (|| -> redis::RedisResult<()> {
                if renewed.elapsed() >= RENEW || self.epoch().is_none() {
                    renewed = Instant::now();
                    self.renew(&mut c)?;
                }
                self.cancel_stopped(&mut c)?;
                if reaped.elapsed() >= REAP {
                    reaped = Instant::now();
                    let reap = queue::reap(&mut c, &self.queue)?;
                    for line in &reap.dropped {
                        self.say(&format!("worker `{}`: {line}", self.name));
                    }
                    if reap.back > 0 {
                        self.say(&format!(
                            "put {} run(s) of a stopped worker back",
                            reap.back
                        ));
                    }
                }
                Ok(())
            })();
            match beat {
                Ok(()) => con = Some(c),
                Err(e) => self.fault(&self.queue.lost(&e)),
            }
        }
    }

    /// Cancel the runs whose coordinator cancelled them or is gone.
    fn cancel_stopped(&self, con: &mut Connection) -> redis::RedisResult<()> {
        let runs: Vec<(String, Arc<Running>)> = self
            .runs
            .running
            .lock()
            .unwrap()
            .iter()
            .map(|(id, r)| (id.clone(), Arc::clone(r)))
            .collect();
        let ids: Vec<(String, String)> = runs
            .iter()
            .map(|(id, r)| (id.clone(), r.coordinator.clone()))
            .collect();
        let stopped = queue::stopped(con, &self.queue, &ids)?;
        for ((_, running), (cancelled, gone)) in runs.iter().zip(stopped) {
            // A coordinator whose lease is missing for a moment (a server
            // restarted empty) is not gone yet.
            let gone = {
                let mut since = running.gone_since.lock().unwrap();
                match (gone, *since) {
                    (false, _) => {
                        *since = None;
                        false
                    }
                    (true, None) => {
                        *since = Some(Instant::now());
                        false
                    }
                    (true, Some(at)) => at.elapsed() >= GONE_FOR,
                }
            };
            if !(cancelled || gone) || running.control.is_cancelled() {
                continue;
            }
            running.by_coordinator.store(true, Ordering::SeqCst);
            if gone {
                running.abandoned.store(true, Ordering::SeqCst);
            }
            running.control.cancel_within(CANCEL_GRACE);
        }
        Ok(())
    }

    /// One slot: take a run, run it, report; until the worker stops.
    ///
    /// The slot has a working list of its own. What it holds when the
    /// slot starts, or after a fault, is a run the slot took and did not
    /// finish: the reply of `take` was lost on the way (the server moved
    /// the run all the same), a step of the run failed, or a worker of
    /// the same name died before this one started. The slot serves those
    /// first, so no run stays in a list whose worker still lives.
    fn take_runs(&self, slot: usize) {
        let list = self.queue.working(&self.name, slot);
        let mut con = None;
        let mut look_back = true;
        loop {
            // A stopping worker looks back once more, to hand back what
            // its list holds.
            let last = self.runs.stopping();
            if last && !look_back {
                break;
            }
            let mut c = match con.take() {
                Some(c) => c,
                None => match self.queue.connection() {
                    Ok(c) => c,
                    Err(why) => {
                        self.fault(&why);
                        if last {
                            break;
                        }
                        self.runs.nap(TAKE_WAIT);
                        continue;
                    }
                },
            };
            if look_back {
                match queue::held(&mut c, &list) {
                    Ok(held) => {
                        // A stopping worker hands these back.
                        look_back = !held.iter().all(|text| self.serve_run(&mut c, &list, text));
                        if look_back {
                            self.runs.nap(TAKE_WAIT);
                        }
                    }
                    Err(e) => {
                        self.fault(&self.queue.lost(&e));
                        self.runs.nap(TAKE_WAIT);
                    }
                }
                if last {
                    break;
                }
                con = Some(c);
                continue;
            }
            match queue::take(&mut c, &self.queue, &list, TAKE_WAIT) {
                Ok(Some(text)) => look_back = !self.serve_run(&mut c, &list, &text),
                Ok(None) => {}
                Err(e) => {
                    self.fault(&self.queue.lost(&e));
                    look_back = true;
                }
            }
            con = Some(c);
        }
    }

    /// A run taken from the queue, from refusal or start to its report.
    /// False when the queue failed on the way, or the worker has no
    /// lease to start it under: the run is still in the slot's working
    /// list `list`.
    fn serve_run(&self, con: &mut Connection, list: &str, text: &str) -> bool {
        let q = &self.queue;
        let Some(spec) = RunSpec::read(text) else {
            self.say("dropped a run that is not tasker's JSON");
            return queue::discard(con, list, text).is_ok();
        };
        if self.runs.stopping() {
            return queue::hand_back(con, q, &self.name, list, text, &spec.id, false).is_ok();
        }
        let Some(epoch) = self.epoch() else {
            return false;
        };
        let lease = Lease {
            worker: &self.name,
            epoch: &epoch,
        };
        let run = RunSpecRef {
            id: &spec.id,
            coordinator: &spec.coordinator,
            text,
        };
        match queue::begin(con, q, &lease, list, &run, &queue::token()) {
            Ok(Begun::Started) => {}
            Ok(Begun::NotMine) => return false,
            Ok(Begun::Unwanted) => {
                self.say(&format!(
                    "[{}] dropped: its result is recorded or its invocation ended",
                    spec.name
                ));
                return true;
            }
            Ok(Begun::Cancelled) => {
                let result = RunResult {
                    worker: self.name.clone(),
                    outcome: Ended::Cancelled,
                    duration_ms: None,
                    values: None,
                    finally: None,
                };
                return self.report(con, &lease, list, text, &spec, &result);
            }
            Err(e) => {
                self.fault(&q.lost(&e));
                return false;
            }
        }
        if let Some(why) = self.refusal(&spec, text) {
            self.say(&format!("[{}] refused: {why}", spec.name));
            let result = RunResult::failed(&self.name, &Reason::Refused(why));
            return self.report(con, &lease, list, text, &spec, &result);
        }
        self.say(&format!("[{}] started", spec.name));
        match self.execute(&spec, &epoch) {
            Disposition::HandBack => {
                let back = queue::hand_back(con, q, &self.name, list, text, &spec.id, true);
                self.say(&format!("[{}] handed back", spec.name));
                back.is_ok()
            }
            Disposition::Fenced => {
                let back = self.put_back_lost(con, list, text, &spec);
                self.say(&format!(
                    "[{}] stopped: the lease lapsed, so its result is not recorded",
                    spec.name
                ));
                back
            }
            Disposition::Report(result) => self.report(con, &lease, list, text, &spec, &result),
        }
    }

    /// A run whose lease lapsed goes back for another worker (unless the
    /// look at leases of another process did that already).
    fn put_back_lost(&self, con: &mut Connection, list: &str, text: &str, spec: &RunSpec) -> bool {
        loop {
            match queue::lose(con, &self.queue, &self.name, list, text, &spec.id, false) {
                Ok(_) => return true,
                Err(e) => {
                    self.fault(&self.queue.lost(&e));
                    if self.runs.stopping() {
                        return false;
                    }
                    self.runs.nap(TAKE_WAIT);
                }
            }
        }
    }

    /// Record the result; while the queue fails, try again (the
    /// coordinator waits for it), unless the worker stops. False when it
    /// was not recorded.
    fn report(
        &self,
        con: &mut Connection,
        lease: &Lease,
        list: &str,
        text: &str,
        spec: &RunSpec,
        result: &RunResult,
    ) -> bool {
        let json = result.seal(self.queue.project.secret.as_ref());
        loop {
            match queue::record(con, &self.queue, lease, list, text, &spec.id, &json) {
                Ok(Recorded::First) => {
                    self.say(&format!("[{}] {}", spec.name, word(&result.outcome)));
                    return true;
                }
                Ok(Recorded::Second) => {
                    self.say(&format!(
                        "[{}] a result was recorded already; this one is ignored",
                        spec.name
                    ));
                    return true;
                }
                Ok(Recorded::Late) => {
                    self.say(&format!(
                        "[{}] ended after the lease lapsed, so its result is not recorded",
                        spec.name
                    ));
                    return self.put_back_lost(con, list, text, spec);
                }
                Err(e) => {
                    self.fault(&self.queue.lost(&e));
                    if self.runs.stopping() {
                        return false;
                    }
                    self.runs.nap(TAKE_WAIT);
                }
            }
        }
    }

    /// Why this worker must not run `spec` (as queued: `text`), if it
    /// must not.
    fn refusal(&self, spec: &RunSpec, text: &str) -> Option<String> {
        let me = &self.queue.project;
        let worker = &self.name;
        if let Err(why) = RunSpec::verify(text, me.secret.as_ref()) {
            return Some(format!("worker `{worker}` refused the run: {why}"));
        }
        if spec.version != me.version {
            return Some(format!(
                "worker `{worker}` refused the run: it runs tasker {}, the coordinator tasker {}",
                me.version, spec.version
            ));
        }
        if spec.file_hash != me.file_hash {
            return Some(format!(
                "worker `{worker}` refused the run: its tasks.toml differs from the coordinator's (content hash {} there, {} here)",
                spec.file_hash, me.file_hash
            ));
        }
        let task = match self.model.task(&spec.task).map(|i| &self.model.tasks[i]) {
            Some(task) if task.distribute && task.name == spec.task => task,
            _ => {
                return Some(format!(
                    "worker `{worker}` refused the run: its tasks.toml has no task `{}` with distribute = true",
                    spec.task
                ))
            }
        };
        check_values(self.model, task, spec)
            .err()
            .map(|why| format!("worker `{worker}` refused the run: {why}"))
    }

    /// Run `spec` here, started under the lease `epoch`.
    fn execute(&self, spec: &RunSpec, epoch: &str) -> Disposition {
        let started = Instant::now();
        let q = &self.queue;
        let keys = q.run_keys(&spec.id);
        let running = Arc::new(Running {
            coordinator: spec.coordinator.clone(),
            fenced: AtomicBool::new(false),
            gone_since: Mutex::new(None),
            control: Arc::new(Control::default()),
            by_coordinator: AtomicBool::new(false),
            abandoned: Arc::new(AtomicBool::new(false)),
        });
        // Output of a run whose lease is not fresh is dropped: the run is
        // being fenced.
        let lease = Arc::clone(&self.lease);
        let held = epoch.to_string();
        let fresh: super::outbox::Fresh = Box::new(move || {
            let lease = lease.lock().unwrap();
            lease.valid && lease.epoch == held && lease.renewed.elapsed() < FENCE_AFTER
        });
        let outbox = Outbox::start(
            Arc::clone(q),
            keys,
            self.name.clone(),
            Arc::clone(&running.abandoned),
            fresh,
        );
        let mut console = Console::to_sink(outbox.sink(), &format!("@{}", self.name));
        console.quiet = spec.quiet;
        let report = Arc::new(console);
        self.runs
            .running
            .lock()
            .unwrap()
            .insert(spec.id.clone(), Arc::clone(&running));
        if self.runs.stopping() {
            running.control.cancel();
        }
        // A fence between the start and the line above did not see it.
        if self.epoch().as_deref() != Some(epoch) {
            running.fenced.store(true, Ordering::SeqCst);
            running.control.cancel_within(CANCEL_GRACE);
        }
        let remote = self.cache.clone().map(|config| cache_of(config, &report));
        let opts = RunOptions {
            echo: spec.echo && self.model.settings.echo,
            yes: false,
            verbose: spec.verbose,
            dry_run: false,
            report,
            fresh: Arc::clone(&self.fresh),
            remote: remote.clone(),
            fleet: None,
            // Only attempts that ended with a result count (SPEC 11), and
            // a run has one result: a run taken again was lost.
            attempts_made: 0,
        };
        let (finished, values) = self.run_here(spec, &opts, &running.control);
        // The coordinator may restore the run's outputs from the cache as
        // soon as it has the result: the upload ends first.
        if let Some(remote) = remote {
            remote.finish();
        }
        self.runs.running.lock().unwrap().remove(&spec.id);
        drop(opts);
        let lost = outbox.close();
        if running.fenced.load(Ordering::SeqCst) {
            return Disposition::Fenced;
        }
        let handed_back = self.runs.stopping()
            && !running.by_coordinator.load(Ordering::SeqCst)
            && running.control.is_cancelled();
        let mut outcome = Ended::of(&finished.outcome, self.model);
        if let (Some(why), Ended::Success) = (lost, &outcome) {
            outcome = Ended::Failed {
                failure: WireFailure::plain(&Reason::OutputLost(why.to_string())),
            };
        }
        let result = RunResult {
            worker: self.name.clone(),
            outcome,
            duration_ms: Some(started.elapsed().as_millis() as u64),
            values,
            finally: finished
                .finally
                .as_ref()
                .map(|f| WireFailure::of(f, self.model)),
        };
        if handed_back {
            return Disposition::HandBack;
        }
        Disposition::Report(Box::new(result))
    }

    /// The run through the normal path of a run, in a session of its own
    /// that has the coordinator's `--set` and `tasks.NAME` values.
    fn run_here(
        &self,
        spec: &RunSpec,
        opts: &RunOptions,
        control: &Arc<Control>,
    ) -> (Finished, Option<serde_json::Value>) {
        let failed = |e: Error| Finished {
            outcome: Outcome::Failed(exec::Failure::new(e, None)),
            duration: Duration::ZERO,
            finally: None,
            halt: false,
        };
        let session = match Session::new(self.model, spec.set.clone(), false, self.cwd.clone()) {
            Ok(s) => s,
            Err(e) => return (failed(e), None),
        };
        for (name, value) in &spec.tasks {
            session.record(name, wire::from_json(value));
        }
        let Some(index) = self.model.task(&spec.task) else {
            return (failed(Error::usage("no such task")), None);
        };
        let task = &self.model.tasks[index];
        let scope = match scope_of(&session, task, spec) {
            Ok(scope) => scope,
            Err(e) => return (failed(e), None),
        };
        let job = Job {
            id: 0,
            run: Run {
                task: index,
                name: spec.name.clone(),
                scope,
                deps: Vec::new(),
                after: Vec::new(),
                posts: Vec::new(),
                post_of: Vec::new(),
                depth: 0,
            },
            task,
            alone: false,
            service: None,
        };
        let finished = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            exec::run_job(&session, opts, &job, control, &NoCalls)
        }))
        .unwrap_or_else(|_| failed(Error::usage("internal error in tasker: a panic in the run")));
        let values = session.result(&task.name).map(|v| wire::to_json(&v));
        (finished, values)
    }
}

/// What becomes of a run that ran here.
enum Disposition {
    Report(Box<RunResult>),
    /// The worker stops: the run goes back to the queue.
    HandBack,
    /// The lease lapsed: the run goes back, its result unrecorded.
    Fenced,
}

/// How the worker's log says a run ended.
fn word(outcome: &Ended) -> String {
    match outcome {
        Ended::Success => "done".to_string(),
        Ended::Skipped { why } => why.clone(),
        Ended::Failed { failure } => format!("failed: {}", failure.message),
        Ended::Cancelled => "cancelled".to_string(),
        Ended::NotRun { why } => why.clone(),
        Ended::Stopped => "stopped".to_string(),
        Ended::Restored => "restored from the remote cache".to_string(),
        Ended::UpToDate => "up to date".to_string(),
    }
}

/// The worker's remote cache for one run: its warnings go to the
/// coordinator with the run's output.
fn cache_of(config: crate::remote::Config, report: &Arc<Console>) -> Arc<crate::remote::Remote> {
    let to = Arc::clone(report);
    let warn: crate::remote::Warn = Arc::new(move |run, text| {
        let line = match run {
            Some(run) => to.note_line(run, &format!("warning: {text}")),
            None => format!("tasker: warning: {text}"),
        };
        to.line(&line);
    });
    crate::remote::Remote::new(config, warn, None)
}

/// The values of a run from the queue, checked as this worker's own
/// command line and file would check them (SPEC 11, untrusted queues):
/// each argument's type and `choices`, a list only for a `list`
/// argument, matrix values the file lists, `--set` only for its vars.
fn check_values(model: &Model, task: &Task, spec: &RunSpec) -> std::result::Result<(), String> {
    for name in spec.args.keys() {
        if !task.args.iter().any(|a| &a.name == name) {
            return Err(format!("task `{}` has no argument `{name}`", task.name));
        }
    }
    for arg in &task.args {
        if let Some(v) = spec.args.get(&arg.name) {
            crate::args::value_from_json(task, arg, v).map_err(|e| e.to_string())?;
        }
    }
    for (name, value) in &spec.matrix {
        let Some(axis) = task.matrix.iter().find(|a| &a.name == name) else {
            return Err(format!("task `{}` has no matrix entry `{name}`", task.name));
        };
        let fits = match &axis.values {
            crate::model::MatrixValues::List(values) => {
                values.iter().any(|v| &wire::to_json(v) == value)
            }
            // Rendered on the coordinator: one line of text.
            crate::model::MatrixValues::Template(_) => {
                value.as_str().is_some_and(|s| !s.contains('\n'))
            }
        };
        if !fits {
            let shown: String = value.to_string().chars().take(80).collect();
            return Err(format!(
                "`{shown}` is not a value of matrix entry `{name}` of task `{}`",
                task.name
            ));
        }
    }
    for (name, _) in &spec.set {
        if !model.vars.iter().any(|v| &v.name == name) {
            return Err(format!(
                "--set {name}: there is no var `{name}` in its tasks.toml"
            ));
        }
    }
    Ok(())
}

/// What the run's templates see, built as the coordinator's graph built
/// it: its file's scope, the task's name, `extra`, the arguments and the
/// matrix values, then the task's `env` over the environment.
fn scope_of(session: &Session, task: &Task, spec: &RunSpec) -> Result<Scope> {
    let mut scope = session.unit_scope(task.unit)?;
    let values = Arc::make_mut(&mut scope.values);
    values.insert("task".into(), Value::from(task.name.as_str()));
    values.insert("extra".into(), Value::from(spec.extra.clone()));
    for arg in &task.args {
        let value = match (spec.args.get(&arg.name), arg.implicit_default()) {
            (Some(v), _) => crate::args::value_from_json(task, arg, v)?.to_value(),
            (None, Some(default)) => default.to_value(),
            (None, None) => {
                return Err(Error::usage(format!(
                    "the run has no value for argument `{}` of task `{}`",
                    arg.name, task.name
                )))
            }
        };
        values.insert(arg.name.clone(), value);
    }
    for axis in &task.matrix {
        let Some(v) = spec.matrix.get(&axis.name) else {
            return Err(Error::usage(format!(
                "the run has no value for matrix entry `{}` of task `{}`",
                axis.name, task.name
            )));
        };
        values.insert(axis.name.clone(), wire::from_json(v));
    }
    scope.task_vars = crate::context::TaskVars::new(
        session.model,
        session.model.task(&task.name).unwrap_or_default(),
        &scope,
    );
    scope.env = session.layer_env(&scope, &task.env, &format!("`env` of task `{}`", task.name))?;
    Ok(scope)
}
