//! Running across machines (SPEC 11): runs of `distribute = true` tasks
//! go through a Redis server to workers, which render and run them from
//! their own `tasks.toml`.
//!
//! - `queue`: connections, the key layout and the steps that must be
//!   atomic (Lua scripts, and transactions where a script would copy
//!   output).
//! - `link`: one connection, whose commands have deadlines and whose
//!   reads survive signals; `health`: those deadlines, and when the
//!   server counts as lost.
//! - `wire`: what travels: a run's names and values out, its result back.
//! - `coordinator`: the `exec::Fleet` of an invocation with `--queue`.
//! - `worker`: `tasker --worker`, which serves runs until stopped.
//! - `outbox`: a worker's run output on its way to the coordinator, with
//!   back pressure.
//! - `looking`: `--workers`.
//!
//! The queue is Redis's reliable-queue pattern: a run waits in the
//! pending list; a worker moves it to a working list of its own in one
//! step (`BLMOVE`) and holds a lease (a key with a TTL) while it works.
//! Whoever sees a lease gone (the coordinator or any worker) puts that
//! worker's runs back.

mod coordinator;
mod health;
mod link;
mod looking;
mod outbox;
mod queue;
mod wire;
mod worker;

use std::time::Duration;

pub use coordinator::coordinator;
pub use looking::list_workers;
pub use worker::{serve, Options as WorkerOptions};

use crate::model::Model;

/// A worker that has not renewed its lease for this long stops its runs
/// and will record none of their results: they are dead before the lease
/// can lapse on the server, and another worker take them (SPEC 11).
const FENCE_AFTER: Duration = Duration::from_secs(4);
/// A run lost with its worker this many times fails, naming the workers.
const LOST_LIMIT: usize = 3;
/// A worker's `-j` at most: the bound of every loop over its slots.
pub const MAX_JOBS: usize = 1024;
/// How long a worker's lease lives without renewal; it is renewed every
/// `RENEW`. A dead worker's runs go back to pending at most
/// `LEASE + REAP` after its death, within the 10 s that SPEC 11 allows.
const LEASE: Duration = Duration::from_secs(5);
const RENEW: Duration = Duration::from_millis(1000);
/// How often leases are checked, by the coordinator and by each worker.
const REAP: Duration = Duration::from_secs(2);
/// How long a coordinator's own lease lives: a run whose coordinator is
/// gone (killed, its machine lost) is stopped by its worker.
const COORDINATOR_LEASE: Duration = Duration::from_secs(15);
/// The unread output of one run a worker may leave on the server before
/// it waits for the coordinator.
const UNREAD_LIMIT: u64 = 16 * 1024 * 1024;
/// How long a run's keys live on the server after their last write.
const KEY_TTL: Duration = Duration::from_secs(24 * 3600);
/// `queue_timeout` when the file sets none.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(600);

/// The queue URL an invocation uses: `--queue`, else `TASKER_QUEUE`, else
/// `[settings] queue`.
pub fn queue_url(option: Option<&str>, model: &Model) -> Option<String> {
    option
        .map(str::to_string)
        .or_else(|| std::env::var("TASKER_QUEUE").ok().filter(|u| !u.is_empty()))
        .or_else(|| model.settings.queue.clone())
}

/// Whether any task of the file goes to workers.
pub fn distributes(model: &Model) -> bool {
    model.tasks.iter().any(|t| t.distribute)
}

/// Where one project's keys live, and what a run carries to prove which
/// file and which tasker it was planned with.
#[derive(Clone, Debug)]
pub struct Project {
    /// `PREFIX:PROJECT`: every key of this project starts with it.
    pub namespace: String,
    /// The content hash of the file (SPEC 11).
    pub file_hash: String,
    pub version: String,
    /// `TASKER_QUEUE_SECRET`: runs and results are signed with it.
    pub secret: Option<wire::Secret>,
}

impl Project {
    /// The prefix is `TASKER_QUEUE_PREFIX` (default `tasker`). The project
    /// key is a hash of the names of the tasks that go to workers: two
    /// projects on one server never meet, while checkouts of one project
    /// at different versions do, so that a worker with another file can
    /// refuse the run and say so (SPEC 11).
    pub fn of(model: &Model) -> Project {
        let prefix = std::env::var("TASKER_QUEUE_PREFIX")
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "tasker".into());
        let mut names: Vec<&str> = model
            .tasks
            .iter()
            .filter(|t| t.distribute)
            .map(|t| t.name.as_str())
            .collect();
        names.sort_unstable();
        let project = short_hash(names.join("\n").as_bytes());
        Project {
            namespace: format!("{prefix}:{project}"),
            file_hash: file_hash(model),
            version: env!("CARGO_PKG_VERSION").to_string(),
            secret: wire::Secret::from_env(),
        }
    }

    fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.namespace)
    }
}

/// The content hash of the file and every file it includes, each with
/// the prefix its tasks get.
fn file_hash(model: &Model) -> String {
    let mut hasher = blake3::Hasher::new();
    for unit in &model.units {
        for part in [unit.prefix.as_bytes(), unit.file.text.as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    hasher.finalize().to_hex()[..16].to_string()
}

fn short_hash(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_string()
}

/// This machine's name, for `--name`'s default and the worker list.
fn host_name() -> String {
    let name = rustix::system::uname();
    let name = name.nodename().to_bytes();
    if name.is_empty() {
        "localhost".into()
    } else {
        String::from_utf8_lossy(name).into_owned()
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An id no other invocation or worker on any machine picks.
fn unique_id() -> String {
    let seed = format!(
        "{}\0{}\0{:?}\0{}",
        host_name(),
        std::process::id(),
        std::time::SystemTime::now(),
        now_ms()
    );
    short_hash(seed.as_bytes())[..12].to_string()
}
