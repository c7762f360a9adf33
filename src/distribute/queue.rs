//! The Redis side: connections, the key layout, and every step that must
//! be atomic, as a Lua script the server runs whole.
//!
//! Keys, under `NAMESPACE` (`PREFIX:PROJECT`):
//! - `pending`: a list of runs (JSON) no worker took yet; new runs go in
//!   on the left, workers take from the right, runs put back go right.
//! - `working:WORKER`: a list, the runs WORKER took.
//! - `lease:WORKER`: exists while WORKER lives (TTL, renewed).
//! - `workers`: a hash, WORKER to what `--workers` shows.
//! - `coordinator:ID`: exists while the invocation ID waits (TTL).
//! - `run:RUN:out`: a stream, the run's output, notes and end mark.
//! - `run:RUN:read`: bytes of output the coordinator has read.
//! - `run:RUN:attempts`: how many times a worker took the run.
//! - `run:RUN:result`: how the run ended (JSON); written once.
//! - `run:RUN:cancel`: set when the coordinator cancels the run.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use redis::{Connection, Script};

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
    pub out: String,
    pub read: String,
    pub attempts: String,
    pub result: String,
    pub cancel: String,
}

/// The longest a reply may take: a blocking command waits at most 1 s, so
/// anything longer is a server that went away.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Queue {
    /// Connect (and ask once) or say why not.
    pub fn connect(url: &str, project: Project) -> Result<Queue, String> {
        let shown = hide_password(url);
        let client = redis::Client::open(url)
            .map_err(|e| format!("the queue URL `{shown}` is not valid: {e}"))?;
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
        let con = self
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.lost(&e))?;
        con.set_read_timeout(Some(REPLY_TIMEOUT))
            .and_then(|()| con.set_write_timeout(Some(REPLY_TIMEOUT)))
            .map_err(|e| self.lost(&e))?;
        Ok(con)
    }

    /// Keep a connection that worked for the next caller.
    pub fn give_back(&self, con: Connection) {
        self.idle.lock().unwrap().push(con);
    }

    pub fn key(&self, rest: &str) -> String {
        self.project.key(rest)
    }

    pub fn run_keys(&self, run: &str) -> RunKeys {
        let k = |what: &str| self.key(&format!("run:{run}:{what}"));
        RunKeys {
            out: k("out"),
            read: k("read"),
            attempts: k("attempts"),
            result: k("result"),
            cancel: k("cancel"),
        }
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

/// Put a new run at the back of the queue.
pub fn push(con: &mut Connection, q: &Queue, spec: &str) -> R<()> {
    redis::cmd("LPUSH")
        .arg(q.key("pending"))
        .arg(spec)
        .query(con)
}

/// Take the next run into `worker`'s working list, waiting at most `wait`.
pub fn take(con: &mut Connection, q: &Queue, worker: &str, wait: Duration) -> R<Option<String>> {
    redis::cmd("BLMOVE")
        .arg(q.key("pending"))
        .arg(q.key(&format!("working:{worker}")))
        .arg("RIGHT")
        .arg("LEFT")
        .arg(wait.as_secs_f64())
        .query(con)
}

static WITHDRAW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        if ARGV[2] == '1' then
          redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
        end
        return redis.call('LREM', KEYS[1], 1, ARGV[1])
        ",
    )
});

/// Take a run back from the pending list (and, when `cancel`, mark it
/// cancelled for the worker that may hold it). True when it was still
/// pending: no worker will ever run it.
pub fn withdraw(con: &mut Connection, q: &Queue, run: &str, spec: &str, cancel: bool) -> R<bool> {
    let removed: i64 = WITHDRAW
        .key(q.key("pending"))
        .key(q.run_keys(run).cancel)
        .arg(spec)
        .arg(if cancel { "1" } else { "0" })
        .arg(ttl())
        .invoke(con)?;
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
        if first then return 1 else return 0 end
        ",
    )
});

/// Record a run's result, unless one was recorded already (the first
/// wins), and drop the run from the worker's working list.
pub fn record(
    con: &mut Connection,
    q: &Queue,
    worker: &str,
    spec: &str,
    run: &str,
    result: &str,
) -> R<bool> {
    let keys = q.run_keys(run);
    let first: i64 = RECORD
        .key(keys.result)
        .key(keys.out)
        .key(q.key(&format!("working:{worker}")))
        .arg(result)
        .arg(spec)
        .arg(ttl())
        .invoke(con)?;
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
    spec: &str,
    run: &str,
    begun: bool,
) -> R<()> {
    let keys = q.run_keys(run);
    HAND_BACK
        .key(q.key(&format!("working:{worker}")))
        .key(q.key("pending"))
        .key(keys.attempts)
        .key(keys.result)
        .key(keys.out)
        .arg(spec)
        .arg(format!(
            "worker `{worker}` is stopping; the run goes back to the queue"
        ))
        .arg(if begun { "1" } else { "0" })
        .invoke(con)
}

static REAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
        local ns = ARGV[1]
        local back = 0
        for _, name in ipairs(redis.call('HKEYS', KEYS[1])) do
          if redis.call('EXISTS', ns .. ':lease:' .. name) == 0 then
            local working = ns .. ':working:' .. name
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
    REAP.key(q.key("workers"))
        .key(q.key("pending"))
        .arg(&q.project.namespace)
        .arg(ttl())
        .invoke(con)
}

/// Drop a run a worker took and cannot even read.
pub fn discard(con: &mut Connection, q: &Queue, worker: &str, spec: &str) -> R<()> {
    redis::cmd("LREM")
        .arg(q.key(&format!("working:{worker}")))
        .arg(1)
        .arg(spec)
        .query(con)
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

/// A worker that stopped cleanly: no lease, no entry.
pub fn retire_worker(con: &mut Connection, q: &Queue, worker: &str) -> R<()> {
    redis::pipe()
        .cmd("DEL")
        .arg(q.key(&format!("lease:{worker}")))
        .ignore()
        .cmd("HDEL")
        .arg(q.key("workers"))
        .arg(worker)
        .ignore()
        .query(con)
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
    redis::cmd("DEL")
        .arg(q.key(&format!("coordinator:{id}")))
        .query(con)
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
    let found: Vec<i64> = pipe.query(con)?;
    Ok(found
        .chunks(2)
        .map(|pair| (pair[0] == 1, pair.get(1) == Some(&0)))
        .collect())
}

/// A worker starts a run: count the attempt, and tell the coordinator.
pub fn begin(con: &mut Connection, q: &Queue, run: &str, worker: &str) -> R<u32> {
    let keys = q.run_keys(run);
    let (attempt,): (u32,) = redis::pipe()
        .cmd("INCR")
        .arg(&keys.attempts)
        .cmd("EXPIRE")
        .arg(&keys.attempts)
        .arg(ttl())
        .ignore()
        .cmd("XADD")
        .arg(&keys.out)
        .arg("*")
        .arg("start")
        .arg(worker)
        .ignore()
        .cmd("EXPIRE")
        .arg(&keys.out)
        .arg(ttl())
        .ignore()
        .query(con)?;
    Ok(attempt)
}

/// One piece of output: `stream` is `o` or `e`.
pub fn append(con: &mut Connection, out: &str, worker: &str, stream: &str, bytes: &[u8]) -> R<()> {
    redis::cmd("XADD")
        .arg(out)
        .arg("*")
        .arg("w")
        .arg(worker)
        .arg(stream)
        .arg(bytes)
        .query(con)
}

/// Bytes of a run's output the coordinator has read.
pub fn read_so_far(con: &mut Connection, read: &str) -> R<u64> {
    let n: Option<u64> = redis::cmd("GET").arg(read).query(con)?;
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
    let reply: Option<Vec<(String, Vec<Entry>)>> = redis::cmd("XREAD")
        .arg("COUNT")
        .arg(count)
        .arg("BLOCK")
        .arg(block.as_millis() as u64)
        .arg("STREAMS")
        .arg(out)
        .arg(last)
        .query(con)?;
    Ok(reply
        .into_iter()
        .flatten()
        .flat_map(|(_, entries)| entries)
        .collect())
}

/// The coordinator has read `total` bytes, up to the entry `last`: the
/// worker may send more, and the server may forget what was read.
pub fn acknowledge(con: &mut Connection, keys: &RunKeys, total: u64, last: &str) -> R<()> {
    redis::pipe()
        .cmd("SET")
        .arg(&keys.read)
        .arg(total)
        .arg("EX")
        .arg(ttl())
        .ignore()
        .cmd("XTRIM")
        .arg(&keys.out)
        .arg("MINID")
        .arg(last)
        .ignore()
        .query(con)
}

pub fn result(con: &mut Connection, keys: &RunKeys) -> R<Option<String>> {
    redis::cmd("GET").arg(&keys.result).query(con)
}

/// Whether `worker` still holds its lease.
pub fn alive(con: &mut Connection, q: &Queue, worker: &str) -> R<bool> {
    redis::cmd("EXISTS")
        .arg(q.key(&format!("lease:{worker}")))
        .query(con)
}

/// The coordinator is done with a run: its keys go.
pub fn forget(con: &mut Connection, keys: &RunKeys) -> R<()> {
    redis::cmd("DEL")
        .arg(&keys.out)
        .arg(&keys.read)
        .arg(&keys.attempts)
        .arg(&keys.result)
        .arg(&keys.cancel)
        .query(con)
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
