//! The coordinator's side (SPEC 11): a run of a `distribute = true` task
//! goes to the queue as names and values; its output comes back as it is
//! produced and is printed `[NAME@WORKER]`; its result ends the run as a
//! local run would end. A cancel (fail-fast, timeout, a signal) reaches
//! the worker through the run's cancel key.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::queue::{self, Connection, Queue, RunKeys};
use super::wire::{self, RunResult, RunSpec, Tagged};
use super::{Project, COORDINATOR_LEASE, DEFAULT_QUEUE_TIMEOUT, REAP, RENEW};
use crate::context::Session;
use crate::error::{Error, Result};
use crate::exec::output::{Spool, Stream};
use crate::exec::{Console, Control, Failure, Finished, Fleet, Job, Outcome, Reason, RunOptions};
use crate::model::{Model, OutputMode};

/// How long one wait for a run's output lasts before the coordinator
/// looks at its cancel and its deadline again.
const POLL: Duration = Duration::from_millis(100);
/// Stream entries read at once (each at most 256 KiB of output).
const BATCH: usize = 16;
/// A line longer than this is printed in pieces.
const MAX_LINE: usize = 1024 * 1024;

/// The invocation's fleet: the queue, and the lease that tells workers
/// this invocation still waits for its runs.
pub struct Coordinator {
    queue: Arc<Queue>,
    invocation: String,
    next: AtomicU64,
    set: Vec<(String, String)>,
    queue_timeout: Duration,
    keeper: Mutex<Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>>,
}

/// The coordinator for the invocation, when it has a queue and runs go
/// out; an unreachable queue is an error before anything runs (exit 2).
pub fn coordinator(
    option: Option<&str>,
    model: &Model,
    set: &[(String, String)],
    dry_run: bool,
) -> Result<Option<Arc<dyn Fleet>>> {
    let Some(url) = super::queue_url(option, model) else {
        return Ok(None);
    };
    if !super::distributes(model) {
        return Ok(None);
    }
    if dry_run {
        return Ok(Some(Arc::new(DryRun)));
    }
    let queue = Queue::connect(&url, Project::of(model), true).map_err(|why| {
        Error::usage(why).with_help(
            "start the Redis server, or check --queue, TASKER_QUEUE and [settings] queue",
        )
    })?;
    let fleet = Coordinator {
        queue: Arc::new(queue),
        invocation: super::unique_id(),
        next: AtomicU64::new(0),
        set: set.to_vec(),
        queue_timeout: model
            .settings
            .queue_timeout
            .unwrap_or(DEFAULT_QUEUE_TIMEOUT),
        keeper: Mutex::new(None),
    };
    fleet.keep_lease().map_err(Error::usage)?;
    Ok(Some(Arc::new(fleet)))
}

impl Coordinator {
    /// Hold this invocation's lease, and put back the runs of workers that
    /// died, until the fleet is dropped.
    fn keep_lease(&self) -> std::result::Result<(), String> {
        let q = &self.queue;
        let mut con = q.connection()?;
        queue::renew_coordinator(&mut con, q, &self.invocation, COORDINATOR_LEASE)
            .map_err(|e| q.lost(&e))?;
        let done = Arc::new(AtomicBool::new(false));
        let stop = Arc::clone(&done);
        let q = Arc::clone(&self.queue);
        let id = self.invocation.clone();
        let keeper = std::thread::spawn(move || {
            let mut renewed = Instant::now();
            let mut reaped = Instant::now();
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50));
                // A lost server fails the runs that wait on it; here
                // there is nothing to do but try again.
                if renewed.elapsed() >= RENEW {
                    renewed = Instant::now();
                    let _ = queue::renew_coordinator(&mut con, &q, &id, COORDINATOR_LEASE);
                }
                if reaped.elapsed() >= REAP {
                    reaped = Instant::now();
                    let _ = queue::reap(&mut con, &q);
                }
            }
            let _ = queue::retire_coordinator(&mut con, &q, &id);
        });
        *self.keeper.lock().unwrap() = Some((done, keeper));
        Ok(())
    }

    fn spec(&self, session: &Session, opts: &RunOptions, job: &Job) -> Result<RunSpec> {
        let task = job.task;
        let values = &job.run.scope.values;
        let pick = |names: Vec<&str>| -> BTreeMap<String, serde_json::Value> {
            names
                .into_iter()
                .filter_map(|n| values.get(n).map(|v| (n.to_string(), wire::to_json(v))))
                .collect()
        };
        let extra = values
            .get("extra")
            .and_then(|v| serde_json::from_value(wire::to_json(v)).ok())
            .unwrap_or_default();
        let read = crate::check::tasks_read(&session.engine, session.model, task)?;
        let tasks = session
            .results()
            .into_iter()
            .filter(|(name, _)| read.as_ref().is_none_or(|r| r.contains(name)))
            .map(|(name, v)| (name, wire::to_json(&v)))
            .collect();
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        Ok(RunSpec {
            id: format!("{}-{}-{n}", self.queue.project.file_hash, self.invocation),
            coordinator: self.invocation.clone(),
            file_hash: self.queue.project.file_hash.clone(),
            version: self.queue.project.version.clone(),
            task: task.name.clone(),
            name: job.run.name.clone(),
            args: pick(task.args.iter().map(|a| a.name.as_str()).collect()),
            matrix: pick(task.matrix.iter().map(|m| m.name.as_str()).collect()),
            extra,
            set: self.set.clone(),
            tasks,
            attempts: task.retries.saturating_add(1),
            echo: opts.echo,
            verbose: opts.verbose,
            quiet: opts.report.quiet,
        })
    }

    /// Send the run, show its output, and wait for its result.
    fn remote(
        &self,
        session: &Session,
        opts: &RunOptions,
        job: &Job,
        control: &Arc<Control>,
    ) -> std::result::Result<Ended, String> {
        let spec = match self.spec(session, opts, job) {
            Ok(spec) => spec,
            Err(e) => return Ok(Ended::local(Outcome::Failed(Failure::new(e, None)))),
        };
        let q = &self.queue;
        let text = spec.seal(q.project.secret.as_ref());
        let mut con = q.connection()?;
        let lost = |e: redis::RedisError| q.lost(&e);
        queue::push(&mut con, q, &spec.id, &text).map_err(lost)?;
        let keys = q.run_keys(&spec.id);
        let mut watch = Watch {
            printer: Printer::new(&job.run.name, &opts.report),
            worker: None,
            last: "0-0".into(),
            read: 0,
            ended: false,
        };
        let run = Sent {
            id: &spec.id,
            text: &text,
            keys: &keys,
        };
        let text = loop {
            if let Some(early) = self.follow(&mut con, &run, &mut watch, opts, control)? {
                return Ok(early);
            }
            match queue::result(&mut con, &keys).map_err(lost)? {
                Some(text) => break text,
                // Its end was read, and the server lost the run since (a
                // restart, empty or from a file that missed the last
                // second): it is followed on, and sent again as vanished.
                None => watch.ended = false,
            }
        };
        watch.printer.finish();
        let _ = queue::forget(&mut con, &keys);
        q.give_back(con);
        if let Err(why) = RunResult::verify(&text, q.project.secret.as_ref()) {
            return Ok(Ended::local(Outcome::Failed(Failure::new(
                Reason::ResultRefused(why.to_string()),
                None,
            ))));
        }
        let Some(result) = RunResult::read(&text) else {
            return Err("the run's result on the queue is unreadable".into());
        };
        Ok(Ended::remote(session, job, result))
    }
}

/// A run on the queue: its id, its JSON as queued, and its keys.
struct Sent<'a> {
    id: &'a str,
    text: &'a str,
    keys: &'a RunKeys,
}

impl Coordinator {
    /// Show the run's stream until its end mark. How the run ended instead
    /// when it never gets one: cancelled while still pending, taken by no
    /// worker in time, or cancelled and its worker gone.
    fn follow(
        &self,
        con: &mut Connection,
        run: &Sent,
        watch: &mut Watch,
        opts: &RunOptions,
        control: &Control,
    ) -> std::result::Result<Option<Ended>, String> {
        let q = &self.queue;
        let lost = |e: redis::RedisError| q.lost(&e);
        let queued = Instant::now();
        let mut cancelled = false;
        let mut checked = Instant::now();
        let mut looked = Instant::now();
        let mut missing = 0;
        while !watch.ended {
            // A server restarted empty lost the run: seen missing twice,
            // REAP apart (a run is briefly in no place a look can see,
            // between its taking and its start), it is sent again.
            if looked.elapsed() >= REAP {
                looked = Instant::now();
                // A result whose stream (and end mark) was lost ends the
                // wait too; while the stream is there, it is read to its end.
                if queue::result_without_stream(con, run.keys).map_err(lost)? {
                    watch.ended = true;
                    continue;
                }
                if queue::vanished(con, q, run.keys, run.text).map_err(lost)? {
                    // A cancelled run that no one holds will never answer.
                    if cancelled {
                        return Ok(Some(Ended::local(Outcome::Cancelled)));
                    }
                    missing += 1;
                } else {
                    missing = 0;
                }
                if missing >= 2 {
                    missing = 0;
                    if opts.verbose {
                        opts.report.note(
                            watch.printer.name,
                            "the run vanished from the queue; it is sent again",
                        );
                    }
                    queue::push_again(con, q, run.keys, run.text).map_err(lost)?;
                }
            }
            if control.is_cancelled() && !cancelled {
                cancelled = true;
                if queue::withdraw(con, q, run.id, run.text, true).map_err(lost)? {
                    return Ok(Some(Ended::local(Outcome::Cancelled)));
                }
            }
            if watch.worker.is_none()
                && !cancelled
                && queued.elapsed() >= self.queue_timeout
                && queue::withdraw(con, q, run.id, run.text, false).map_err(lost)?
            {
                return Ok(Some(self.not_taken()));
            }
            watch.read_some(con, run.keys, opts).map_err(lost)?;
            // After a cancel, a worker that died cannot answer.
            if let (true, Some(worker)) = (cancelled, &watch.worker) {
                if checked.elapsed() >= Duration::from_secs(1) {
                    checked = Instant::now();
                    if !queue::alive(con, q, worker).map_err(lost)? {
                        return Ok(Some(Ended::local(Outcome::Cancelled)));
                    }
                }
            }
        }
        Ok(None)
    }

    fn not_taken(&self) -> Ended {
        let why = format!(
            "no worker took the run within {} (queue_timeout) from the queue at {}",
            crate::outcome::human_duration(self.queue_timeout),
            self.queue.shown
        );
        Ended::local(Outcome::Failed(Failure::new(Reason::NotTaken(why), None)))
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        if let Some((done, keeper)) = self.keeper.lock().unwrap().take() {
            done.store(true, Ordering::SeqCst);
            let _ = keeper.join();
        }
    }
}

/// How a remote run ended, as the scheduler wants it.
struct Ended {
    outcome: Outcome,
    duration: Option<Duration>,
    finally: Option<Failure>,
}

impl Ended {
    fn local(outcome: Outcome) -> Ended {
        Ended {
            outcome,
            duration: None,
            finally: None,
        }
    }

    /// The worker's result: its `tasks.NAME` values recorded here, and
    /// its failure naming the worker.
    fn remote(session: &Session, job: &Job, result: RunResult) -> Ended {
        if let Some(values) = &result.values {
            session.record(&job.task.name, wire::from_json(values));
        }
        let on_worker = |mut f: Failure| {
            if let Reason::Remote { message, .. } = &mut f.reason {
                if !message.contains(&format!("`{}`", result.worker)) {
                    message.push_str(&format!(" (on worker `{}`)", result.worker));
                }
            }
            f
        };
        let outcome = match result.outcome.to_outcome(session.model) {
            Outcome::Failed(f) => Outcome::Failed(on_worker(f)),
            other => other,
        };
        Ended {
            outcome,
            duration: result.duration_ms.map(Duration::from_millis),
            finally: result
                .finally
                .map(|f| on_worker(f.to_failure(session.model))),
        }
    }
}

impl Fleet for Coordinator {
    fn run(
        &self,
        session: &Session,
        opts: &RunOptions,
        job: &Job,
        control: &Arc<Control>,
    ) -> Finished {
        let started = Instant::now();
        // A queue lost midway fails this run and stops the invocation as
        // fail-fast does, even under -k: nothing more can go out.
        let (ended, halt) = match self.remote(session, opts, job, control) {
            Ok(ended) => (unasked(ended, control), false),
            Err(why) => {
                let failure = Failure::new(Reason::QueueLost(why.to_string()), None);
                (Ended::local(Outcome::Failed(failure)), true)
            }
        };
        if matches!(ended.outcome, Outcome::Success | Outcome::Restored) {
            restore_outputs(session, opts, job);
        }
        Finished {
            outcome: ended.outcome,
            duration: ended.duration.unwrap_or_else(|| started.elapsed()),
            finally: ended.finally,
            halt,
        }
    }
}

/// A run reported cancelled (or stopped, or not run) that this invocation
/// never cancelled did not succeed: it fails, so that the invocation
/// cannot exit 0 without every run's success (SPEC 11). A worker that saw
/// the invocation's lease gone (a server restarted empty) reports so.
fn unasked(ended: Ended, control: &Control) -> Ended {
    if control.is_cancelled() {
        return ended;
    }
    let what = match &ended.outcome {
        Outcome::Cancelled => "cancelled",
        Outcome::Stopped => "stopped",
        Outcome::NotRun(_) => "not run",
        _ => return ended,
    };
    let why = format!(
        "the run was reported {what} on its worker, though this invocation did not cancel it"
    );
    Ended {
        outcome: Outcome::Failed(Failure::new(Reason::WorkerSaid(why), None)),
        ..ended
    }
}

/// With a remote cache, a distributed run's `outputs` come back through
/// it (SPEC 11); a cache that cannot give them is a warning, as a cache
/// fault is everywhere.
fn restore_outputs(session: &Session, opts: &RunOptions, job: &Job) {
    match crate::exec::restore_outputs(session, opts, job) {
        Ok(true) if opts.verbose => opts
            .report
            .note(&job.run.name, "outputs restored from the remote cache"),
        Ok(_) => {}
        Err(why) => {
            let line = opts.report.note_line(
                &job.run.name,
                &format!("warning: the outputs of the worker's run are not here: {why}"),
            );
            opts.report.line(&line);
        }
    }
}

/// What the coordinator knows of a run's stream so far.
struct Watch<'a> {
    printer: Printer<'a>,
    worker: Option<String>,
    last: String,
    read: u64,
    ended: bool,
}

impl Watch<'_> {
    /// Read and show what the stream has, waiting a little for it.
    fn read_some(
        &mut self,
        con: &mut Connection,
        keys: &RunKeys,
        opts: &RunOptions,
    ) -> redis::RedisResult<()> {
        let entries = queue::entries(con, &keys.out, &self.last, POLL, BATCH)?;
        if entries.is_empty() {
            return Ok(());
        }
        let before = self.read;
        for (id, fields) in entries {
            self.last = id;
            self.entry(&fields, opts);
        }
        if self.read > before && !self.ended {
            queue::acknowledge(con, keys, self.read, &self.last)?;
        }
        Ok(())
    }

    fn entry(&mut self, fields: &[Vec<u8>], opts: &RunOptions) {
        let text =
            |i: usize| String::from_utf8_lossy(fields.get(i).map_or(&[][..], |f| f)).into_owned();
        match fields.first().map(Vec::as_slice) {
            Some(b"start") => {
                let worker = text(1);
                if opts.verbose {
                    opts.report
                        .note(self.printer.name, &format!("taken by worker `{worker}`"));
                }
                self.worker = Some(worker);
            }
            Some(b"w") => {
                let worker = text(1);
                let data = fields.get(3).map_or(&[][..], |d| d);
                self.read += data.len() as u64;
                // Only the worker that started the run last is shown: a
                // worker whose lease lapsed may still send a little.
                if self.worker.as_ref().is_some_and(|w| *w != worker) {
                    return;
                }
                match fields.get(2).map(Vec::as_slice) {
                    Some(b"o") => self.printer.output(&worker, Stream::Stdout, data),
                    Some(b"e") => self.printer.output(&worker, Stream::Stderr, data),
                    // tasker's own lines on the worker, already named.
                    _ => self.printer.own(data),
                }
            }
            Some(b"note") if !opts.report.quiet => {
                let line = opts.report.note_line(self.printer.name, &text(1));
                self.printer.own(format!("{line}\n").as_bytes());
            }
            Some(b"late") if opts.verbose => {
                let line = opts.report.note_line(self.printer.name, &text(1));
                self.printer.own(format!("{line}\n").as_bytes());
            }
            Some(b"end") => self.ended = true,
            _ => {}
        }
    }
}

/// A remote run's output, line by line, each line `[NAME@WORKER] `; or,
/// with `--output grouped`, held and shown whole, byte for byte, when the
/// run ends (the worker's own lines name it), as a local run's would be.
struct Printer<'a> {
    name: &'a str,
    report: &'a Console,
    /// Per stream: the unfinished line, and the worker it came from.
    partial: [(Vec<u8>, String); 2],
    /// Grouped output held until the run ends: stdout and stderr apart.
    held: Option<[Spool; 2]>,
}

impl<'a> Printer<'a> {
    fn new(name: &'a str, report: &'a Arc<Console>) -> Printer<'a> {
        Printer {
            name,
            report,
            partial: [(Vec::new(), String::new()), (Vec::new(), String::new())],
            held: (report.mode == OutputMode::Grouped).then(|| [Spool::new(), Spool::new()]),
        }
    }

    fn prefix(&self, worker: &str) -> Vec<u8> {
        format!("[{}@{worker}] ", self.name).into_bytes()
    }

    fn output(&mut self, worker: &str, stream: Stream, data: &[u8]) {
        let i = stream as usize;
        if let Some(held) = &mut self.held {
            held[i].write(data);
            return;
        }
        if self.partial[i].1 != worker {
            self.flush(stream);
            self.partial[i].1 = worker.to_string();
        }
        let prefix = self.prefix(worker);
        let mut out = Vec::with_capacity(data.len() + data.len() / 32);
        let mut rest = data;
        while let Some(at) = memchr::memchr(b'\n', rest) {
            let partial = std::mem::take(&mut self.partial[i].0);
            out.extend_from_slice(&prefix);
            out.extend_from_slice(&partial);
            out.extend_from_slice(&rest[..=at]);
            rest = &rest[at + 1..];
        }
        self.partial[i].0.extend_from_slice(rest);
        if self.partial[i].0.len() >= MAX_LINE {
            let piece = std::mem::take(&mut self.partial[i].0);
            out.extend_from_slice(&prefix);
            out.extend_from_slice(&piece);
            out.push(b'\n');
        }
        if !out.is_empty() {
            self.report.write(stream, &out);
        }
    }

    /// A line of tasker's about the run (already named): held with
    /// grouped output, so that it shows in its place.
    fn own(&mut self, bytes: &[u8]) {
        match &mut self.held {
            Some(held) => held[Stream::Stderr as usize].write(bytes),
            None => self.report.write(Stream::Stderr, bytes),
        }
    }

    /// An unfinished line is shown once its stream ends.
    fn flush(&mut self, stream: Stream) {
        let i = stream as usize;
        if self.partial[i].0.is_empty() {
            return;
        }
        let line = std::mem::take(&mut self.partial[i].0);
        let mut out = self.prefix(&self.partial[i].1.clone());
        out.extend_from_slice(&line);
        out.push(b'\n');
        self.report.write(stream, &out);
    }

    /// Show what is left: unfinished lines, or the whole held output.
    /// Called however the run ends (its drop), so nothing is lost.
    fn finish(&mut self) {
        if let Some(mut held) = self.held.take() {
            self.report.whole(|| {
                held[0].drain(self.report, Stream::Stdout);
                held[1].drain(self.report, Stream::Stderr);
            });
        }
        self.flush(Stream::Stdout);
        self.flush(Stream::Stderr);
    }
}

impl Drop for Printer<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

/// `-n` with a queue: says which runs would go to workers, and shows
/// their commands as this file renders them; nothing is sent.
pub struct DryRun;

impl Fleet for DryRun {
    fn run(
        &self,
        session: &Session,
        opts: &RunOptions,
        job: &Job,
        control: &Arc<Control>,
    ) -> Finished {
        opts.report
            .note(&job.run.name, "would run on a worker (distribute = true)");
        crate::exec::run_job(session, opts, job, control, &NoCalls)
    }
}

/// A distributed task has no `task` steps (a load error): no calls.
pub struct NoCalls;

impl crate::exec::Calls for NoCalls {
    fn call(
        &self,
        _from: usize,
        _invocations: Vec<crate::args::Invocation>,
        _deadline: Option<Instant>,
    ) -> std::result::Result<bool, crate::exec::CallError> {
        Err(crate::exec::CallError::Cancelled)
    }
}
