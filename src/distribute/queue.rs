//! The Redis side: connections, the key layout, and every step that must
//! be atomic, as a Lua script the server runs whole.
//!
//! Keys, under `NAMESPACE` (`PREFIX:PROJECT`):
//! - `pending`: a list of runs (JSON) no worker took yet; new runs go in
//!   on the left, workers take from the right, runs put back go right.
//! - `working:WORKER:SLOT`: a list, the run slot SLOT of WORKER took.
//! - `lease:WORKER`: exists while WORKER lives (TTL, renewed).
//! - `workers`: a hash, WORKER to what `--workers` shows.
//! - `coordinator:ID`: exists while the invocation ID waits (TTL).
//! - `run:RUN:queued`: set when the run was pushed (`withdrawn` once the
//!   coordinator took it back).
//! - `run:RUN:out`: a stream, the run's output, notes and end mark.
//! - `run:RUN:sent`: per sender of output, the last piece it added.
//! - `run:RUN:read`: bytes of output the coordinator has read.
//! - `run:RUN:attempts`: how many times a worker took the run.
//! - `run:RUN:begun`: which taking of the run counted the last attempt.
//! - `run:RUN:result`: how the run ended (JSON); written once.
//! - `run:RUN:cancel`: set when the coordinator cancels the run.
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
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use redis::io::tcp::{socket2::TcpKeepalive, TcpSettings};
use redis::{ConnectionLike, IntoConnectionInfo, Script};

use super::{Project, KEY_TTL, LEASE};

/// A Redis server and its idle connections.
pub struct Queue {
    client: redis::Client,
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
    pub attempts: String,
    pub begun: String,
    pub result: String,
    pub cancel: String,
}

/// How a server that went away is noticed. Sockets have no read or write
/// timeout: Linux never restarts a socket call that a signal handler
/// interrupted when the socket has one (whatever `SA_RESTART` says), and
/// tasker handles signals on any thread, so a busy worker or coordinator
/// lost replies to `EINTR`. Every command answers soon anyway (a blocking
/// one waits at most 1 s), so a long silence is a dead peer or a broken
/// network, which TCP finds: five keepalive probes after 5 s of silence,
/// 1 s apart, and at most 10 s for sent data to be acknowledged
/// (`TCP_USER_TIMEOUT`). A server whose process ends is noticed at once.
const SILENCE: Duration = Duration::from_secs(5);
const PROBE: Duration = Duration::from_secs(1);
const PROBES: u32 = 5;
const UNACKNOWLEDGED: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a step that can be repeated is tried, on a new
/// connection each time, and the first pause before the next try (then
/// doubled): about 1.5 s in all before the queue counts as lost.
const TRIES: u32 = 5;
const PAUSE: Duration = Duration::from_millis(100);

/// One connection to the server, opened when first used and opened again
/// after any failure: a connection whose command failed may still owe
/// that command's reply, and is never used again.
pub struct Connection {
    client: redis::Client,
    open: Option<redis::Connection>,
}

impl Connection {
    fn open(&mut self) -> R<&mut redis::Connection> {
        let con = match self.open.take() {
            Some(con) => con,
            None => self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?,
        };
        Ok(self.open.insert(con))
    }

    /// Keep the outcome; forget the connection when it failed.
    fn kept<T>(&mut self, reply: R<T>) -> R<T> {
        if reply.is_err() {
            self.open = None;
        }
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
/// (not when the server said no): only for steps that do nothing more
/// when repeated.
fn again<T>(con: &mut Connection, mut step: impl FnMut(&mut Connection) -> R<T>) -> R<T> {
    let mut tried = 1;
    loop {
        match step(con) {
            Err(e) if tried < TRIES && !matches!(e.kind(), redis::ErrorKind::Server(_)) => {
                std::thread::sleep(PAUSE * (1 << (tried - 1)));
                tried += 1;
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
    pub fn connect(url: &str, project: Project) -> Result<Queue, String> {
        let shown = hide_password(url);
        let invalid = |e: redis::RedisError| format!("the queue URL `{shown}` is not valid: {e}");
        let info = url.into_connection_info().map_err(invalid)?;
        let tcp = TcpSettings::default()
            .set_nodelay(true)
            .set_keepalive(
                TcpKeepalive::new()
                    .with_time(SILENCE)
                    .with_interval(PROBE)
                    .with_retries(PROBES),
            )
            .set_user_timeout(UNACKNOWLEDGED);
        let client = redis::Client::open(info.set_tcp_settings(tcp)).map_err(invalid)?;
        let queue = Queue {
            client,
            shown,
            project,
            idle: Mutex::new(Vec::new()),
        };
        let mut con = queue.connection()?;
        let _: String = redis::cmd("PING")
            .query(&mut con)
            .map_err(|e| queue.lost(&e))?;
        queue.give_back(con);
        Ok(queue)
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
            client: self.client.clone(),
            open: None,
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
            attempts: k("attempts"),
            begun: k("begun"),
            result: k("result"),
            cancel: k("cancel"),
        }
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
/// `list` (see `held`).
pub fn take(con: &mut Connection, q: &Queue, list: &str, wait: Duration) -> R<Option<String>> {
    redis::cmd("BLMOVE")
        .arg(q.key("pending"))
        .arg(list)
        .arg("RIGHT")
        .arg("LEFT")
        .arg(wait.as_secs_f64())
        .query(con)
}

/// The runs a slot's working list holds: runs the slot took and did not
/// finish.
pub fn held(con: &mut Connection, list: &str) -> R<Vec<String>> {
    again(con, |con| {
        redis::cmd("LRANGE").arg(list).arg(0).arg(-1).query(con)
    })
}

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
        local first = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[3])
        if first then
          redis.call('XADD', KEYS[2], '*', 'end', '1')
          redis.call('EXPIRE', KEYS[2], ARGV[3])
        end
        redis.call('LREM', KEYS[3], 1, ARGV[2])
        if first or redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
        return 0
        ",
    )
});

/// Record a run's result, unless another was recorded already (the first
/// wins), and drop the run from the slot's working list `list`. True when
/// this result is the one recorded.
pub fn record(
    con: &mut Connection,
    q: &Queue,
    list: &str,
    spec: &str,
    run: &str,
    result: &str,
) -> R<bool> {
    let keys = q.run_keys(run);
    let first: i64 = again(con, |con| {
        RECORD
            .key(&keys.result)
            .key(&keys.out)
            .key(list)
            .arg(result)
            .arg(spec)
            .arg(ttl())
            .invoke(con)
    })?;
    Ok(first == 1)
}

static HAND_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 and redis.call('EXISTS', KEYS[4]) == 0 then
          redis.call('RPUSH', KEYS[2], ARGV[1])
          if ARGV[3] == '1' then
            redis.call('DECR', KEYS[3])
            redis.call('XADD', KEYS[5], '*', 'note', ARGV[2])
          end
        end
        return 1
        ",
    )
});

/// A stopping worker puts a run it took back at the front of the queue;
/// the attempt (`begun`: counted already) does not count.
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
            .key(&keys.attempts)
            .key(&keys.result)
            .key(&keys.out)
            .arg(spec)
            .arg(format!(
                "worker `{worker}` is stopping; the run goes back to the queue"
            ))
            .arg(if begun { "1" } else { "0" })
            .invoke(con)
    })
}

static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local ns = ARGV[1]
        local back = 0
        local workers = redis.call('HGETALL', KEYS[1])
        for i = 1, #workers, 2 do
          local name = workers[i]
          if redis.call('EXISTS', ns .. ':lease:' .. name) == 0 then
            local ok, info = pcall(cjson.decode, workers[i + 1])
            local slots = ok and type(info) == 'table' and tonumber(info.jobs) or 0
            for slot = 0, slots - 1 do
              local working = ns .. ':working:' .. name .. ':' .. slot
              while true do
                local job = redis.call('RPOP', working)
                if not job then break end
                local ok, spec = pcall(cjson.decode, job)
                if ok and type(spec) == 'table' and spec.id then
                  local run = ns .. ':run:' .. spec.id
                  local tried = tonumber(redis.call('GET', run .. ':attempts') or '0')
                  local gone = redis.call('EXISTS', run .. ':result') == 1
                    or redis.call('EXISTS', run .. ':cancel') == 1
                  if gone then
                  elseif tried >= (tonumber(spec.attempts) or 1) then
                    local message = 'worker `' .. name .. '` stopped answering, and the run was attempted '
                      .. tried .. ' time(s) in all'
                    local result = cjson.encode({worker = name, duration_ms = 0,
                      outcome = {kind = 'failed', failure = {status = 1, message = message}}})
                    if redis.call('SET', run .. ':result', result, 'NX', 'EX', ARGV[2]) then
                      redis.call('XADD', run .. ':out', '*', 'end', '1')
                    end
                  else
                    redis.call('RPUSH', KEYS[2], job)
                    redis.call('XADD', run .. ':out', '*', 'note',
                      'worker `' .. name .. '` stopped answering; the run goes back to the queue')
                    back = back + 1
                  end
                end
              end
            end
            redis.call('HDEL', KEYS[1], name)
          end
        end
        return back
        ",
    )
});

/// Put the runs of every worker whose lease expired back on the queue
/// (or fail those out of attempts). Returns how many went back.
pub fn reap(con: &mut Connection, q: &Queue) -> R<i64> {
    again(con, |con| {
        REAP.key(q.key("workers"))
            .key(q.key("pending"))
            .arg(&q.project.namespace)
            .arg(ttl())
            .invoke(con)
    })
}

/// Drop a run a worker took and cannot even read.
pub fn discard(con: &mut Connection, list: &str, spec: &str) -> R<()> {
    again(con, |con| {
        redis::cmd("LREM").arg(list).arg(1).arg(spec).query(con)
    })
}

/// Announce or renew a worker: its lease, and what `--workers` shows.
pub fn renew_worker(con: &mut Connection, q: &Queue, worker: &str, info: &str) -> R<()> {
    redis::pipe()
        .cmd("SET")
        .arg(q.key(&format!("lease:{worker}")))
        .arg("1")
        .arg("PX")
        .arg(LEASE.as_millis() as u64)
        .ignore()
        .cmd("HSET")
        .arg(q.key("workers"))
        .arg(worker)
        .arg(info)
        .ignore()
        .query(con)
}

static RETIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        redis.call('DEL', KEYS[1])
        for i = 1, #ARGV - 1 do
          if redis.call('EXISTS', ARGV[i]) == 1 then return 0 end
        end
        redis.call('HDEL', KEYS[2], ARGV[#ARGV])
        return 1
        ",
    )
});

/// A worker that stopped cleanly: no lease, and no entry unless one of
/// its working lists (`lists`) still holds a run, which the next look at
/// leases then puts back.
pub fn retire_worker(con: &mut Connection, q: &Queue, worker: &str, lists: &[String]) -> R<()> {
    again(con, |con| {
        RETIRE
            .key(q.key(&format!("lease:{worker}")))
            .key(q.key("workers"))
            .arg(lists)
            .arg(worker)
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
        if redis.call('GET', KEYS[3]) == ARGV[1] then
          return tonumber(redis.call('GET', KEYS[1]) or '1')
        end
        redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[3])
        local attempt = redis.call('INCR', KEYS[1])
        redis.call('EXPIRE', KEYS[1], ARGV[3])
        redis.call('XADD', KEYS[2], '*', 'start', ARGV[2])
        redis.call('EXPIRE', KEYS[2], ARGV[3])
        return attempt
        ",
    )
});

/// A worker starts a run: count the attempt, and tell the coordinator.
/// `taking` (a `token`) names this taking of the run: asked again, the
/// server counts it once.
pub fn begin(con: &mut Connection, q: &Queue, run: &str, worker: &str, taking: &str) -> R<u32> {
    let keys = q.run_keys(run);
    again(con, |con| {
        BEGIN
            .key(&keys.attempts)
            .key(&keys.out)
            .key(&keys.begun)
            .arg(taking)
            .arg(worker)
            .arg(ttl())
            .invoke(con)
    })
}

/// One piece of output: `stream` is `o` or `e`. `sender` (a `token`) and
/// `seq` (1, 2, ... per sender) make a piece asked twice appear once.
pub struct Piece<'a> {
    pub sender: &'a str,
    pub seq: u64,
    pub stream: &'a str,
    pub bytes: &'a [u8],
}

/// Add a piece to the run's stream, and note its number for its sender,
/// in one transaction: asked again after a failure, the number says
/// whether it is there already. (Not a script: a Lua call copying each
/// piece halved the throughput of a run's output.)
pub fn append(con: &mut Connection, keys: &RunKeys, worker: &str, piece: &Piece) -> R<()> {
    let mut first = true;
    again(con, |con| {
        if !std::mem::take(&mut first) {
            let last: Option<u64> = redis::cmd("HGET")
                .arg(&keys.sent)
                .arg(piece.sender)
                .query(con)?;
            if last.is_some_and(|n| n >= piece.seq) {
                return Ok(());
            }
        }
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("XADD")
            .arg(&keys.out)
            .arg("*")
            .arg("w")
            .arg(worker)
            .arg(piece.stream)
            .arg(piece.bytes)
            .ignore()
            .cmd("HSET")
            .arg(&keys.sent)
            .arg(piece.sender)
            .arg(piece.seq)
            .ignore();
        if piece.seq == 1 {
            pipe.cmd("EXPIRE").arg(&keys.sent).arg(ttl()).ignore();
        }
        pipe.query(con)
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
        redis::cmd("XREAD")
            .arg("COUNT")
            .arg(count)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(out)
            .arg(last)
            .query(con)
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

pub fn result(con: &mut Connection, keys: &RunKeys) -> R<Option<String>> {
    again(con, |con| redis::cmd("GET").arg(&keys.result).query(con))
}

/// Whether `worker` still holds its lease.
pub fn alive(con: &mut Connection, q: &Queue, worker: &str) -> R<bool> {
    again(con, |con| {
        redis::cmd("EXISTS")
            .arg(q.key(&format!("lease:{worker}")))
            .query(con)
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
            .arg(&keys.attempts)
            .arg(&keys.begun)
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
