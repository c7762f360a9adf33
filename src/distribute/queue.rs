//! The Redis side: connections, the key layout, and every step that must
//! be atomic: a Lua script the server runs whole, or (for a piece of
//! output, which a script would copy) a `MULTI` transaction.
//!
//! Keys, under `NAMESPACE` (`PREFIX:PROJECT`):
//! - `pending`: a list of runs (JSON) no worker took yet; new runs go in
//!   on the left, workers take from the right, runs put back go right.
//! - `working:WORKER:SLOT`: a list, the run slot SLOT of WORKER took.
//! - `lease:WORKER`: while WORKER lives, its lease epoch (TTL, renewed).
//!   A run is started and its result recorded only under the epoch the
//!   worker holds: a worker whose lease lapsed is fenced off.
//! - `workers`: a hash, WORKER to what `--workers` shows.
//! - `coordinator:ID`: exists while the invocation ID waits (TTL).
//! - `run:RUN:queued`: set when the run was pushed (`withdrawn` once the
//!   coordinator took it back).
//! - `run:RUN:out`: a stream, the run's output, notes and end mark.
//! - `run:RUN:sent`: per sender of output, the last piece it added.
//! - `run:RUN:read`: bytes of output the coordinator has read.
//! - `run:RUN:begun`: which taking of the run started it last.
//! - `run:RUN:taker`: the worker that started it last.
//! - `run:RUN:lost`: a list, the workers that lost their lease while
//!   they held the run (at most `LOST_LIMIT` are read).
//! - `run:RUN:result`: how the run ended (JSON); written once.
//! - `run:RUN:cancel`: set when the coordinator cancels the run.
//!
//! Every key gets a TTL when it is created. Everything read from the
//! server may have been written by someone else: scripts loop only over
//! bounds tasker passes in, and malformed entries are dropped.
//!
//! A reply can be lost: a connection that breaks after the server did
//! the step and before its answer arrived. A connection that fails is
//! never used again as it was (`Connection` opens a new one), and every
//! step either can be repeated as it is (`again`), or is made so: a push,
//! a withdrawal, the start of an attempt and each piece of output carry
//! what the server needs to see it was done already. The one step that
//! is not repeated is `take` (`BLMOVE`): its run is in the slot's own
//! working list, which the slot reads back after any fault.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use redis::{ConnectionLike, Script};

use super::health::Health;
use super::link::{Link, Target};
use super::wire::{RunResult, Tagged};
use super::{Project, KEY_TTL, LEASE, LOST_LIMIT, MAX_JOBS};
use crate::outcome::Reason;

/// A Redis server and its idle connections.
pub struct Queue {
    target: Arc<Target>,
    /// The URL as messages show it, without a password.
    pub shown: String,
    pub project: Project,
    idle: Mutex<Vec<Connection>>,
}

/// A run's keys.
pub struct RunKeys {
    pub queued: String,
    pub out: String,
    pub sent: String,
    pub read: String,
    pub begun: String,
    pub taker: String,
    pub lost: String,
    pub result: String,
    pub cancel: String,
}

/// How many times a step that can be repeated is tried, on a new
/// connection each time, is bounded by time, not by count: until the
/// server counts as lost (`health`). The first pause before the next try,
/// then doubled up to `MAX_PAUSE`.
const PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// One connection to the server, opened when first used and opened again
/// after any failure: a connection whose command failed may still owe
/// that command's reply, and is never used again.
pub struct Connection {
    target: Arc<Target>,
    open: Option<Link>,
    /// The block time of the command in progress.
    block: Duration,
}

impl Connection {
    fn open(&mut self) -> R<&mut Link> {
        let link = match self.open.take() {
            Some(link) => link,
            None if self.target.health.gave_up() => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "the queue is not asked any more",
                )))
            }
            None => Link::open(&self.target)?,
        };
        let link = self.open.insert(link);
        link.block = self.block;
        Ok(link)
    }

    /// Keep the outcome; forget the connection when it failed.
    fn kept<T>(&mut self, reply: R<T>) -> R<T> {
        if reply.is_err() {
            self.open = None;
        }
        reply
    }

    /// `step`, a command that blocks the server for `block`: its deadline
    /// is that much later.
    fn blocking<T>(&mut self, block: Duration, step: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        self.block = block;
        let reply = step(self);
        self.block = Duration::ZERO;
        reply
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command(&mut self, cmd: &[u8]) -> R<redis::Value> {
        let reply = self.open().and_then(|con| con.req_packed_command(cmd));
        self.kept(reply)
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> R<Vec<redis::Value>> {
        let reply = self
            .open()
            .and_then(|con| con.req_packed_commands(cmd, offset, count));
        self.kept(reply)
    }

    fn get_db(&self) -> i64 {
        self.open.as_ref().map_or(0, ConnectionLike::get_db)
    }

    fn check_connection(&mut self) -> bool {
        let reply = self.open().map(|con| con.check_connection());
        matches!(self.kept(reply), Ok(true))
    }

    fn is_open(&self) -> bool {
        self.open.as_ref().is_none_or(ConnectionLike::is_open)
    }
}

/// Run `step` again, on a new connection, when the connection failed
/// (not when the server said no), until the server counts as lost: only
/// for steps that do nothing more when repeated.
fn again<T>(con: &mut Connection, mut step: impl FnMut(&mut Connection) -> R<T>) -> R<T> {
    let mut pause = PAUSE;
    loop {
        match step(con) {
            Err(e) if !matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                let health = &con.target.health;
                if !health.retry() {
                    return Err(health.why(e));
                }
                std::thread::sleep(health.pause(pause));
                pause = (pause * 2).min(MAX_PAUSE);
            }
            reply => return reply,
        }
    }
}

/// A mark no other step of any process uses: it names one taking of a
/// run, or one sender of its output.
pub fn token() -> String {
    static PROCESS: LazyLock<String> = LazyLock::new(super::unique_id);
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}.{}", *PROCESS, NEXT.fetch_add(1, Ordering::SeqCst))
}

impl Queue {
    /// Connect (and ask once) or say why not.
    /// `final_loss`: a server lost once is never asked again (a
    /// coordinator stops then; a worker waits for it).
    pub fn connect(url: &str, project: Project, final_loss: bool) -> Result<Queue, String> {
        let shown = hide_password(url);
        let invalid =
            |e: &dyn std::fmt::Display| format!("the queue URL `{shown}` is not valid: {e}");
        let health = Arc::new(Health::new(final_loss));
        let target = Target::new(url, health).map_err(|e| invalid(&e))?;
        let queue = Queue {
            target: Arc::new(target),
            shown,
            project,
            idle: Mutex::new(Vec::new()),
        };
        let mut con = queue.connection()?;
        let _: String =
            again(&mut con, |con| redis::cmd("PING").query(con)).map_err(|e| queue.lost(&e))?;
        queue.give_back(con);
        Ok(queue)
    }

    /// How the server answers, as this process sees it.
    pub fn health(&self) -> &Health {
        &self.target.health
    }

    /// The message for a server that does not answer.
    pub fn lost(&self, e: &dyn std::fmt::Display) -> String {
        format!("cannot reach the queue at {}: {e}", self.shown)
    }

    /// An idle connection, or a new one.
    pub fn connection(&self) -> Result<Connection, String> {
        if let Some(con) = self.idle.lock().unwrap().pop() {
            return Ok(con);
        }
        let mut con = Connection {
            target: Arc::clone(&self.target),
            open: None,
            block: Duration::ZERO,
        };
        again(&mut con, |con| con.open().map(|_| ())).map_err(|e| self.lost(&e))?;
        Ok(con)
    }

    /// Keep a connection that worked for the next caller.
    pub fn give_back(&self, con: Connection) {
        if con.open.is_some() {
            self.idle.lock().unwrap().push(con);
        }
    }

    pub fn key(&self, rest: &str) -> String {
        self.project.key(rest)
    }

    pub fn run_keys(&self, run: &str) -> RunKeys {
        let k = |what: &str| self.key(&format!("run:{run}:{what}"));
        RunKeys {
            queued: k("queued"),
            out: k("out"),
            sent: k("sent"),
            read: k("read"),
            begun: k("begun"),
            taker: k("taker"),
            lost: k("lost"),
            result: k("result"),
            cancel: k("cancel"),
        }
    }

    /// A worker's lease.
    pub fn lease_key(&self, worker: &str) -> String {
        self.key(&format!("lease:{worker}"))
    }

    /// The working list of a worker's slot.
    pub fn working(&self, worker: &str, slot: usize) -> String {
        self.key(&format!("working:{worker}:{slot}"))
    }
}

/// `redis://:secret@host` shown as `redis://:***@host`.
fn hide_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((user, host)) if user.contains(':') => {
            let name = user.split(':').next().unwrap_or("");
            format!("{scheme}://{name}:***@{host}")
        }
        _ => url.to_string(),
    }
}

type R<T> = redis::RedisResult<T>;

fn ttl() -> u64 {
    KEY_TTL.as_secs()
}

static PUSH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2]) then
          redis.call('LPUSH', KEYS[1], ARGV[1])
          redis.call('EXPIRE', KEYS[1], ARGV[2])
        end
        return 1
        ",
    )
});

/// Put a new run at the back of the queue, once however often it is
/// asked.
pub fn push(con: &mut Connection, q: &Queue, run: &str, spec: &str) -> R<()> {
    let keys = q.run_keys(run);
    again(con, |con| {
        PUSH.key(q.key("pending"))
            .key(&keys.queued)
            .arg(spec)
            .arg(ttl())
            .invoke(con)
    })
}

/// Take the next run into the slot's working list `list`, waiting at
/// most `wait`. Never repeated: when the reply is lost, the run is in
/// `list` (see `held`). The list gets its TTL at once (`BLMOVE` cannot
/// give one); a list left without it, by a worker killed in between,
/// is emptied by the next look at leases.
pub fn take(con: &mut Connection, q: &Queue, list: &str, wait: Duration) -> R<Option<String>> {
    let run: Option<String> = con.blocking(wait, |con| {
        redis::cmd("BLMOVE")
            .arg(q.key("pending"))
            .arg(list)
            .arg("RIGHT")
            .arg("LEFT")
            .arg(wait.as_secs_f64())
            .query(con)
    })?;
    if run.is_some() {
        let _: R<()> = redis::cmd("EXPIRE").arg(list).arg(ttl()).query(con);
    }
    Ok(run)
}

/// The runs a slot's working list holds: runs the slot took and did not
/// finish (at most `MAX_HELD`: anything past that was not put there by
/// one slot taking one run at a time).
pub fn held(con: &mut Connection, list: &str) -> R<Vec<String>> {
    again(con, |con| {
        redis::cmd("LRANGE")
            .arg(list)
            .arg(0)
            .arg(MAX_HELD - 1)
            .query(con)
    })
}

/// Runs read from one working list at once.
const MAX_HELD: usize = 16;

static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[2] == '1' then
          redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
        end
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) > 0 then
          redis.call('SET', KEYS[3], 'withdrawn', 'EX', ARGV[3])
        end
        if redis.call('GET', KEYS[3]) == 'withdrawn' then return 1 end
        return 0
        ",
    )
});

/// Take a run back from the pending list (and, when `cancel`, mark it
/// cancelled for the worker that may hold it). True when it was still
/// pending, now or at an earlier call: no worker will ever run it.
pub fn withdraw(con: &mut Connection, q: &Queue, run: &str, spec: &str, cancel: bool) -> R<bool> {
    let keys = q.run_keys(run);
    let removed: i64 = again(con, |con| {
        WITHDRAW
            .key(q.key("pending"))
            .key(&keys.cancel)
            .key(&keys.queued)
            .arg(spec)
            .arg(if cancel { "1" } else { "0" })
            .arg(ttl())
            .invoke(con)
    })?;
    Ok(removed > 0)
}

static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
        if redis.call('GET', KEYS[4]) ~= ARGV[4] or not redis.call('LPOS', KEYS[3], ARGV[2]) then
          if redis.call('EXISTS', KEYS[2]) == 1 then
            redis.call('XADD', KEYS[2], '*', 'late', ARGV[5])
            redis.call('EXPIRE', KEYS[2], ARGV[3])
          end
          return 2
        end
        local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3])
        if first then
          redis.call('XADD', KEYS[2], '*', 'end', '1')
          redis.call('EXPIRE', KEYS[2], ARGV[3])
        end
        redis.call('LREM', KEYS[3], 1, ARGV[2])
        if first then return 1 end
        return 0
        ",
    )
});

/// What became of a result a worker sent.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// It is the run's result.
    First,
    /// Another result was recorded first.
    Second,
    /// The worker's lease lapsed since it took the run (or the run left
    /// its working list): the result is ignored (SPEC 11, fencing).
    Late,
}

/// What the coordinator says (with `-v`) of a worker that ran a run
/// after its lease lapsed.
fn late_note(worker: &str) -> String {
    format!("the lease of worker `{worker}` lapsed while it held the run: its result is ignored")
}

/// The lease a worker holds: its key and its epoch.
pub struct Lease<'a> {
    pub worker: &'a str,
    pub epoch: &'a str,
}

/// Record a run's result, unless another was recorded already (the first
/// wins) or the worker's lease `lease` lapsed since it took the run, and
/// drop the run from the slot's working list `list`.
pub fn record(
    con: &mut Connection,
    q: &Queue,
    lease: &Lease,
    list: &str,
    spec: &str,
    run: &str,
    result: &str,
) -> R<Recorded> {
    let keys = q.run_keys(run);
    let late = late_note(lease.worker);
    let first: i64 = again(con, |con| {
        RECORD
            .key(&keys.result)
            .key(&keys.out)
            .key(list)
            .key(q.lease_key(lease.worker))
            .arg(result)
            .arg(spec)
            .arg(ttl())
            .arg(lease.epoch)
            .arg(&late)
            .invoke(con)
    })?;
    Ok(match first {
        1 => Recorded::First,
        2 => Recorded::Late,
        _ => Recorded::Second,
    })
}

static HAND_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 and redis.call('EXISTS', KEYS[3]) == 0 then
          redis.call('RPUSH', KEYS[2], ARGV[1])
          redis.call('EXPIRE', KEYS[2], ARGV[4])
          if ARGV[3] == '1' then
            redis.call('XADD', KEYS[4], '*', 'note', ARGV[2])
            redis.call('EXPIRE', KEYS[4], ARGV[4])
          end
        end
        return 1
        ",
    )
});

/// A stopping worker puts a run it took back at the front of the queue;
/// the attempt does not count. `begun`: the coordinator was told it
/// started, and is told it goes back.
pub fn hand_back(
    con: &mut Connection,
    q: &Queue,
    worker: &str,
    list: &str,
    spec: &str,
    run: &str,
    begun: bool,
) -> R<()> {
    let keys = q.run_keys(run);
    again(con, |con| {
        HAND_BACK
            .key(list)
            .key(q.key("pending"))
            .key(&keys.result)
            .key(&keys.out)
            .arg(spec)
            .arg(format!(
                "worker `{worker}` is stopping; the run goes back to the queue"
            ))
            .arg(if begun { "1" } else { "0" })
            .arg(ttl())
            .invoke(con)
    })
}

static LOSE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[6] == '1' and redis.call('EXISTS', KEYS[7]) == 1 then return {'0'} end
        if ARGV[6] == '0' and redis.call('EXISTS', KEYS[5]) == 1 then
          redis.call('XADD', KEYS[5], '*', 'late', ARGV[7])
          redis.call('EXPIRE', KEYS[5], ARGV[3])
        end
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return {'0'} end
        if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[4]) == 1 then return {'0'} end
        local n = redis.call('RPUSH', KEYS[6], ARGV[2])
        redis.call('EXPIRE', KEYS[6], ARGV[3])
        local limit = tonumber(ARGV[4])
        if n >= limit then
          local failed = redis.call('LRANGE', KEYS[6], 0, limit - 1)
          table.insert(failed, 1, '2')
          return failed
        end
        redis.call('RPUSH', KEYS[2], ARGV[1])
        redis.call('EXPIRE', KEYS[2], ARGV[3])
        redis.call('XADD', KEYS[5], '*', 'note', ARGV[5])
        redis.call('EXPIRE', KEYS[5], ARGV[3])
        return {'1'}
        ",
    )
});

/// What became of a run whose worker lost its lease.
#[derive(Debug, PartialEq, Eq)]
pub enum Lost {
    /// It was not in the list any more, or is done or cancelled.
    Nothing,
    /// Back in pending for another worker.
    Back,
    /// Lost `LOST_LIMIT` times: it failed, naming the workers.
    Failed,
}

/// Put a run whose worker lost its lease back in pending: not an attempt
/// of the run, unless it is the `LOST_LIMIT`th loss, which fails it.
/// `dead_only`: only when `worker` has no lease (the reaper's view, taken
/// in the same step as the move).
pub fn lose(
    con: &mut Connection,
    q: &Queue,
    worker: &str,
    list: &str,
    spec: &str,
    run: &str,
    dead_only: bool,
) -> R<Lost> {
    let keys = q.run_keys(run);
    let note = if dead_only {
        format!("worker `{worker}` stopped answering; the run goes back to the queue")
    } else {
        format!("worker `{worker}` lost its lease; the run goes back to the queue")
    };
    let reply: Vec<String> = again(con, |con| {
        LOSE.key(list)
            .key(q.key("pending"))
            .key(&keys.result)
            .key(&keys.cancel)
            .key(&keys.out)
            .key(&keys.lost)
            .key(q.lease_key(worker))
            .arg(spec)
            .arg(worker)
            .arg(ttl())
            .arg(LOST_LIMIT)
            .arg(&note)
            .arg(if dead_only { "1" } else { "0" })
            .arg(late_note(worker))
            .invoke(con)
    })?;
    match reply.first().map(String::as_str) {
        Some("1") => Ok(Lost::Back),
        Some("2") => {
            let names: Vec<String> = reply[1..]
                .iter()
                .map(|n| n.chars().take(80).collect())
                .collect();
            let message = format!(
                "the run was lost {LOST_LIMIT} times, with workers `{}`",
                names.join("`, `")
            );
            let result = RunResult::failed(worker, &Reason::LostTooOften(message))
                .seal(q.project.secret.as_ref());
            fail(con, &keys, &result)?;
            Ok(Lost::Failed)
        }
        _ => Ok(Lost::Nothing),
    }
}

static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
          redis.call('XADD', KEYS[2], '*', 'end', '1')
          redis.call('EXPIRE', KEYS[2], ARGV[2])
        end
        return 1
        ",
    )
});

/// Record `result` (JSON) as a run's result unless one is, and end its
/// stream.
fn fail(con: &mut Connection, keys: &RunKeys, result: &str) -> R<()> {
    again(con, |con| {
        FAIL.key(&keys.result)
            .key(&keys.out)
            .arg(result)
            .arg(ttl())
            .invoke(con)
    })
}

/// What a look at leases did.
#[derive(Default)]
pub struct Reaped {
    /// Runs put back in pending.
    pub back: usize,
    /// What was dropped as malformed, said by the caller.
    pub dropped: Vec<String>,
}

/// Worker entries looked at in one pass, at most (a pass is a loop in
/// tasker: what others wrote to the server bounds nothing in it).
const REAP_ENTRIES: usize = 10_000;

/// Put the runs of every worker whose lease expired back on the queue
/// (or fail those lost `LOST_LIMIT` times), and drop their entries. The
/// loop runs here, over bounds tasker checks: a worker's slots are at
/// most `MAX_JOBS`, a list is read `MAX_HELD` runs at a time.
pub fn reap(con: &mut Connection, q: &Queue) -> R<Reaped> {
    let mut reaped = Reaped::default();
    let workers = q.key("workers");
    let mut cursor = 0u64;
    let mut seen = 0;
    loop {
        let (next, batch): (u64, Vec<(String, String)>) = again(con, |con| {
            redis::cmd("HSCAN")
                .arg(&workers)
                .arg(cursor)
                .arg("COUNT")
                .arg(100)
                .query(con)
        })?;
        seen += batch.len();
        let mut pipe = redis::pipe();
        for (name, _) in &batch {
            pipe.cmd("EXISTS").arg(q.lease_key(name));
        }
        let live: Vec<i64> = if batch.is_empty() {
            Vec::new()
        } else {
            again(con, |con| pipe.query(con))?
        };
        for ((name, info), live) in batch.iter().zip(live) {
            if live == 0 {
                reap_worker(con, q, name, info, &mut reaped)?;
            }
        }
        cursor = next;
        if cursor == 0 || seen >= REAP_ENTRIES {
            return Ok(reaped);
        }
    }
}

/// One worker whose lease is gone: its slots' runs go back, its entry
/// goes.
fn reap_worker(
    con: &mut Connection,
    q: &Queue,
    name: &str,
    info: &str,
    reaped: &mut Reaped,
) -> R<()> {
    let jobs = serde_json::from_str::<serde_json::Value>(info)
        .ok()
        .and_then(|v| v.get("jobs").and_then(serde_json::Value::as_u64));
    let shown: String = name.chars().take(80).collect();
    let Some(jobs) = jobs else {
        reaped
            .dropped
            .push(format!("dropped the malformed worker entry `{shown}`"));
        return forget_worker(con, q, name);
    };
    if jobs as usize > MAX_JOBS {
        reaped.dropped.push(format!(
            "worker entry `{shown}` says {jobs} slots; only the first {MAX_JOBS} are looked at"
        ));
    }
    let slots = (jobs as usize).min(MAX_JOBS);
    let lists: Vec<String> = (0..slots).map(|slot| q.working(name, slot)).collect();
    let mut pipe = redis::pipe();
    for list in &lists {
        pipe.cmd("LLEN").arg(list);
    }
    let lens: Vec<i64> = if lists.is_empty() {
        Vec::new()
    } else {
        again(con, |con| pipe.query(con))?
    };
    for (list, len) in lists.iter().zip(lens) {
        if len > 0 {
            reap_list(con, q, name, list, reaped)?;
        }
    }
    forget_worker(con, q, name)
}

/// The runs of one working list of a dead worker.
fn reap_list(
    con: &mut Connection,
    q: &Queue,
    name: &str,
    list: &str,
    reaped: &mut Reaped,
) -> R<()> {
    for text in held(con, list)? {
        let Some(id) = run_id(&text) else {
            reaped
                .dropped
                .push(format!("dropped a malformed run from `{list}`"));
            discard(con, list, &text)?;
            continue;
        };
        if lose(con, q, name, list, &text, &id, true)? == Lost::Back {
            reaped.back += 1;
        }
    }
    Ok(())
}

/// The id of a run as queued, when it reads as one.
pub fn run_id(text: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    let json = text.find('{').map_or(text, |at| &text[at..]);
    let id = serde_json::from_str::<Id>(json).ok()?.id;
    let fits = !id.is_empty()
        && id.len() <= 200
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    fits.then_some(id)
}

static FORGET_WORKER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[1]) == 0 then
          redis.call('HDEL', KEYS[2], ARGV[1])
        end
        return 1
        ",
    )
});

/// Drop a worker's entry, unless it came back meanwhile.
fn forget_worker(con: &mut Connection, q: &Queue, name: &str) -> R<()> {
    again(con, |con| {
        FORGET_WORKER
            .key(q.lease_key(name))
            .key(q.key("workers"))
            .arg(name)
            .invoke(con)
    })
}

/// Drop a run a worker took and cannot even read.
pub fn discard(con: &mut Connection, list: &str, spec: &str) -> R<()> {
    again(con, |con| {
        redis::cmd("LREM").arg(list).arg(1).arg(spec).query(con)
    })
}

static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local held = redis.call('GET', KEYS[1])
        if held == ARGV[1] then
          redis.call('PEXPIRE', KEYS[1], ARGV[2])
        elseif ARGV[6] == '1' and (not held or held == ARGV[7]) then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
        else
          return 0
        end
        redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
        redis.call('EXPIRE', KEYS[2], ARGV[5])
        return 1
        ",
    )
});

/// Renew a worker's lease under `epoch`, with what `--workers` shows.
/// `fresh`: a new epoch, which replaces `old` or no lease. False when the
/// lease is not the worker's any more (it lapsed, or another took it).
pub fn renew_worker(
    con: &mut Connection,
    q: &Queue,
    lease: &Lease,
    fresh: Option<&str>,
    info: &str,
) -> R<bool> {
    let renewed: i64 = RENEW
        .key(q.lease_key(lease.worker))
        .key(q.key("workers"))
        .arg(lease.epoch)
        .arg(LEASE.as_millis() as u64)
        .arg(lease.worker)
        .arg(info)
        .arg(ttl())
        .arg(if fresh.is_some() { "1" } else { "0" })
        .arg(fresh.unwrap_or(""))
        .invoke(con)?;
    Ok(renewed == 1)
}

static RETIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[1]) == ARGV[#ARGV] then
          redis.call('DEL', KEYS[1])
        end
        for i = 1, #ARGV - 2 do
          if redis.call('EXISTS', ARGV[i]) == 1 then return 0 end
        end
        redis.call('HDEL', KEYS[2], ARGV[#ARGV - 1])
        return 1
        ",
    )
});

/// A worker that stopped cleanly: no lease, and no entry unless one of
/// its working lists (`lists`) still holds a run, which the next look at
/// leases then puts back.
pub fn retire_worker(con: &mut Connection, q: &Queue, lease: &Lease, lists: &[String]) -> R<()> {
    again(con, |con| {
        RETIRE
            .key(q.lease_key(lease.worker))
            .key(q.key("workers"))
            .arg(lists)
            .arg(lease.worker)
            .arg(lease.epoch)
            .invoke(con)
    })
}

pub fn renew_coordinator(con: &mut Connection, q: &Queue, id: &str, lease: Duration) -> R<()> {
    redis::cmd("SET")
        .arg(q.key(&format!("coordinator:{id}")))
        .arg("1")
        .arg("PX")
        .arg(lease.as_millis() as u64)
        .query(con)
}

pub fn retire_coordinator(con: &mut Connection, q: &Queue, id: &str) -> R<()> {
    again(con, |con| {
        redis::cmd("DEL")
            .arg(q.key(&format!("coordinator:{id}")))
            .query(con)
    })
}

/// For each run (id, coordinator): whether its coordinator cancelled it,
/// and whether that coordinator is gone.
pub fn stopped(con: &mut Connection, q: &Queue, runs: &[(String, String)]) -> R<Vec<(bool, bool)>> {
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for (run, coordinator) in runs {
        pipe.cmd("EXISTS").arg(q.run_keys(run).cancel);
        pipe.cmd("EXISTS")
            .arg(q.key(&format!("coordinator:{coordinator}")));
    }
    let found: Vec<i64> = again(con, |con| pipe.query(con))?;
    Ok(found
        .chunks(2)
        .map(|pair| (pair[0] == 1, pair.get(1) == Some(&0)))
        .collect())
}

static BEGIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('GET', KEYS[6]) == ARGV[3] then return 1 end
        if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 2 end
        if not redis.call('LPOS', KEYS[2], ARGV[2]) then return 3 end
        if redis.call('EXISTS', KEYS[3]) == 1 or redis.call('EXISTS', KEYS[5]) == 0 then
          redis.call('LREM', KEYS[2], 1, ARGV[2])
          return 3
        end
        if redis.call('EXISTS', KEYS[4]) == 1 then return 4 end
        redis.call('SET', KEYS[6], ARGV[3], 'EX', ARGV[5])
        redis.call('SET', KEYS[7], ARGV[4], 'EX', ARGV[5])
        redis.call('XADD', KEYS[8], '*', 'start', ARGV[4])
        redis.call('EXPIRE', KEYS[8], ARGV[5])
        return 1
        ",
    )
});

/// Whether a run may start (SPEC 11: a run is started only while it is
/// wanted, and only under the lease that holds it).
#[derive(Debug, PartialEq, Eq)]
pub enum Begun {
    /// Started: the coordinator is told.
    Started,
    /// The worker's lease is not the one it took the run under: the run
    /// goes back, not counted.
    NotMine,
    /// Its result is recorded, its invocation ended, or it left the
    /// working list: dropped, nothing runs.
    Unwanted,
    /// Its coordinator cancelled it: reported cancelled.
    Cancelled,
}

/// A worker starts a run, if it is still wanted and its lease holds.
/// `taking` (a `token`) names this taking of the run: asked again, the
/// server starts it once.
pub fn begin(
    con: &mut Connection,
    q: &Queue,
    lease: &Lease,
    list: &str,
    spec: &RunSpecRef,
    taking: &str,
) -> R<Begun> {
    let keys = q.run_keys(spec.id);
    let n: i64 = again(con, |con| {
        BEGIN
            .key(q.lease_key(lease.worker))
            .key(list)
            .key(&keys.result)
            .key(&keys.cancel)
            .key(q.key(&format!("coordinator:{}", spec.coordinator)))
            .key(&keys.begun)
            .key(&keys.taker)
            .key(&keys.out)
            .arg(lease.epoch)
            .arg(spec.text)
            .arg(taking)
            .arg(lease.worker)
            .arg(ttl())
            .invoke(con)
    })?;
    Ok(match n {
        1 => Begun::Started,
        2 => Begun::NotMine,
        4 => Begun::Cancelled,
        _ => Begun::Unwanted,
    })
}

/// A run as a worker holds it: its id, its coordinator, its JSON as
/// queued.
pub struct RunSpecRef<'a> {
    pub id: &'a str,
    pub coordinator: &'a str,
    pub text: &'a str,
}

/// One piece of output: `stream` is `o`, `e` or `t` (tasker's own).
pub struct Piece {
    pub stream: &'static str,
    pub bytes: Vec<u8>,
}

/// Pieces of output sent together: `sender` (a `token`) and `seq` (the
/// number of the last piece, counted 1, 2, ... per sender) make pieces
/// asked twice appear once.
pub struct Batch<'a> {
    pub sender: &'a str,
    pub seq: u64,
    pub pieces: &'a [Piece],
}

/// Add a batch of pieces to the run's stream, and note the number of its
/// last for its sender, in one transaction: one round trip for all of
/// them, and, asked again after a failure, the number says whether they
/// are there already (all or none: the transaction is atomic). (Not a
/// script: a Lua call copying each piece halved the throughput of a run's
/// output.)
pub fn append(con: &mut Connection, keys: &RunKeys, worker: &str, batch: &Batch) -> R<()> {
    let mut first = true;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for piece in batch.pieces {
        pipe.cmd("XADD")
            .arg(&keys.out)
            .arg("*")
            .arg("w")
            .arg(worker)
            .arg(piece.stream)
            .arg(&piece.bytes)
            .ignore();
    }
    pipe.cmd("HSET")
        .arg(&keys.sent)
        .arg(batch.sender)
        .arg(batch.seq)
        .ignore()
        // Each time: the coordinator may have forgotten the run's keys,
        // and a key is never left without a TTL.
        .cmd("EXPIRE")
        .arg(&keys.sent)
        .arg(ttl())
        .ignore()
        .cmd("EXPIRE")
        .arg(&keys.out)
        .arg(ttl())
        .ignore();
    again(con, |con| {
        if !std::mem::take(&mut first) {
            let last: Option<u64> = redis::cmd("HGET")
                .arg(&keys.sent)
                .arg(batch.sender)
                .query(con)?;
            if last.is_some_and(|n| n >= batch.seq) {
                return Ok(());
            }
        }
        pipe.query(con)
    })
}

/// Whether a run the coordinator waits for vanished from the server: no
/// result, and neither pending nor held by a live worker (its `queued`
/// mark gone, as after a restart without persistence).
pub fn vanished(con: &mut Connection, q: &Queue, keys: &RunKeys, spec: &str) -> R<bool> {
    let mut pipe = redis::pipe();
    pipe.cmd("EXISTS")
        .arg(&keys.result)
        .cmd("GET")
        .arg(&keys.queued)
        .cmd("LPOS")
        .arg(q.key("pending"))
        .arg(spec)
        .cmd("GET")
        .arg(&keys.taker);
    let (result, queued, pending, taker): (i64, Option<String>, Option<i64>, Option<String>) =
        again(con, |con| pipe.query(con))?;
    if result == 1 || pending.is_some() {
        return Ok(false);
    }
    if queued.is_none() {
        return Ok(true);
    }
    match taker {
        Some(worker) => Ok(!alive(con, q, &worker)?),
        None => Ok(true),
    }
}

static PUSH_AGAIN: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
        redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
        redis.call('LPUSH', KEYS[1], ARGV[1])
        redis.call('EXPIRE', KEYS[1], ARGV[2])
        return 1
        ",
    )
});

/// Put a run that vanished back in pending (unless its result came).
pub fn push_again(con: &mut Connection, q: &Queue, keys: &RunKeys, spec: &str) -> R<()> {
    again(con, |con| {
        PUSH_AGAIN
            .key(q.key("pending"))
            .key(&keys.queued)
            .key(&keys.result)
            .arg(spec)
            .arg(ttl())
            .invoke(con)
    })
}

/// Bytes of a run's output the coordinator has read.
pub fn read_so_far(con: &mut Connection, read: &str) -> R<u64> {
    let n: Option<u64> = again(con, |con| redis::cmd("GET").arg(read).query(con))?;
    Ok(n.unwrap_or(0))
}

/// An entry of a run's stream: its id and its fields, name then value.
pub type Entry = (String, Vec<Vec<u8>>);

/// The entries after `last`, waiting at most `block` for the first.
pub fn entries(
    con: &mut Connection,
    out: &str,
    last: &str,
    block: Duration,
    count: usize,
) -> R<Vec<Entry>> {
    let reply: Option<Vec<(String, Vec<Entry>)>> = again(con, |con| {
        con.blocking(block, |con| {
            redis::cmd("XREAD")
                .arg("COUNT")
                .arg(count)
                .arg("BLOCK")
                .arg(block.as_millis() as u64)
                .arg("STREAMS")
                .arg(out)
                .arg(last)
                .query(con)
        })
    })?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .collect())
}

/// The coordinator has read `total` bytes, up to the entry `last`: the
/// worker may send more, and the server may forget what was read.
pub fn acknowledge(con: &mut Connection, keys: &RunKeys, total: u64, last: &str) -> R<()> {
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&keys.read)
        .arg(total)
        .arg("EX")
        .arg(ttl())
        .ignore()
        .cmd("XTRIM")
        .arg(&keys.out)
        .arg("MINID")
        .arg(last)
        .ignore();
    again(con, |con| pipe.query(con))
}

/// Whether the run has a result and no stream left to read.
pub fn result_without_stream(con: &mut Connection, keys: &RunKeys) -> R<bool> {
    let mut pipe = redis::pipe();
    pipe.cmd("EXISTS")
        .arg(&keys.result)
        .cmd("EXISTS")
        .arg(&keys.out);
    let (result, out): (i64, i64) = again(con, |con| pipe.query(con))?;
    Ok(result == 1 && out == 0)
}

pub fn result(con: &mut Connection, keys: &RunKeys) -> R<Option<String>> {
    again(con, |con| redis::cmd("GET").arg(&keys.result).query(con))
}

/// Whether `worker` still holds its lease.
pub fn alive(con: &mut Connection, q: &Queue, worker: &str) -> R<bool> {
    again(con, |con| {
        redis::cmd("EXISTS").arg(q.lease_key(worker)).query(con)
    })
}

/// The coordinator is done with a run: its keys go.
pub fn forget(con: &mut Connection, keys: &RunKeys) -> R<()> {
    again(con, |con| {
        redis::cmd("DEL")
            .arg(&keys.queued)
            .arg(&keys.out)
            .arg(&keys.sent)
            .arg(&keys.read)
            .arg(&keys.begun)
            .arg(&keys.taker)
            .arg(&keys.lost)
            .arg(&keys.result)
            .arg(&keys.cancel)
            .query(con)
    })
}

/// A worker's name, what it last said of itself (JSON), and whether its
/// lease is alive.
pub type WorkerEntry = (String, String, bool);

/// Every worker entry and the pending count, for `--workers`.
pub fn fleet(con: &mut Connection, q: &Queue) -> R<(Vec<WorkerEntry>, u64)> {
    let workers: Vec<(String, String)> = redis::cmd("HGETALL").arg(q.key("workers")).query(con)?;
    let mut out = Vec::new();
    for (name, info) in workers {
        let live = alive(con, q, &name)?;
        out.push((name, info, live));
    }
    let pending: u64 = redis::cmd("LLEN").arg(q.key("pending")).query(con)?;
    Ok((out, pending))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_is_never_shown() {
        assert_eq!(
            super::hide_password("redis://:secret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            super::hide_password("rediss://user:pw@h"),
            "rediss://user:***@h"
        );
        assert_eq!(super::hide_password("redis://h:1"), "redis://h:1");
    }
}
