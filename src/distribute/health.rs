//! How long a Redis command may wait, and when the server counts as lost
//! (SPEC 11, timeouts), as one process sees it across all its
//! connections.
//!
//! Every command has a deadline: `COMMAND`, plus its block time for a
//! blocking one. A server that has not answered anything for `LOST_AFTER`
//! is lost: a step that fails then is not tried again, and no attempt
//! lasts much past that point. A coordinator's loss is final (it stops);
//! a worker's is not (it waits for the server to come back). A worker
//! that is stopping gives the server `STOP_GRACE` more and then nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The deadline of a command that does not block.
pub const COMMAND: Duration = Duration::from_secs(5);
/// A server silent this long is lost.
pub const LOST_AFTER: Duration = Duration::from_secs(10);
/// Before the server ever answered: an unreachable queue is an error
/// when the invocation starts, soon.
const FIRST_CONTACT: Duration = Duration::from_secs(3);
/// An attempt made once the server counts as lost still gets this long:
/// a worker waiting for the server must see it come back.
const LAST_TRY: Duration = Duration::from_secs(1);
/// A stopping worker waits this long for the server, from its stop.
pub const STOP_GRACE: Duration = Duration::from_millis(600);
/// An attempt a stopping worker starts after `STOP_GRACE` still gets
/// this long (a healthy server answers in a millisecond).
const STOPPING_TRY: Duration = Duration::from_millis(200);

pub struct Health {
    base: Instant,
    /// Milliseconds after `base` of the last reply; 0: none yet.
    heard_ms: AtomicU64,
    /// A loss is final (a coordinator).
    final_loss: bool,
    /// When a stopping worker stops waiting for the server.
    give_up: Mutex<Option<Instant>>,
    /// No attempt is made any more: the coordinator lost the server, or
    /// a stopping worker's server did not answer in its grace.
    gave_up: AtomicBool,
}

impl Health {
    /// `final_loss`: once lost, the server is never asked again.
    pub fn new(final_loss: bool) -> Health {
        Health {
            base: Instant::now(),
            heard_ms: AtomicU64::new(0),
            final_loss,
            give_up: Mutex::new(None),
            gave_up: AtomicBool::new(false),
        }
    }

    /// The server answered.
    pub fn heard(&self) {
        let ms = (self.base.elapsed().as_millis() as u64).max(1);
        self.heard_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// When silence began, and how long it may last.
    fn silence(&self) -> (Instant, Duration) {
        match self.heard_ms.load(Ordering::Relaxed) {
            0 => (self.base, FIRST_CONTACT),
            ms => (self.base + Duration::from_millis(ms), LOST_AFTER),
        }
    }

    /// The deadline of an attempt started at `started` that blocks the
    /// server for `block`: looked at again while it waits, since a stop
    /// may bring it closer.
    pub fn deadline(&self, started: Instant, block: Duration) -> Instant {
        if self.gave_up.load(Ordering::SeqCst) {
            return started;
        }
        let own = started + COMMAND + block;
        let (since, limit) = self.silence();
        let lost_at = (since + limit + block).max(started + LAST_TRY);
        let mut end = own.min(lost_at);
        if let Some(stop) = *self.give_up.lock().unwrap() {
            end = end.min(stop.max(started + STOPPING_TRY));
        }
        end
    }

    /// An attempt failed (not by the server's word): whether the step
    /// may be tried again, on a new connection.
    pub fn retry(&self) -> bool {
        if self.gave_up.load(Ordering::SeqCst) {
            return false;
        }
        let (since, limit) = self.silence();
        if since.elapsed() >= limit {
            if self.final_loss {
                self.gave_up.store(true, Ordering::SeqCst);
            }
            return false;
        }
        match *self.give_up.lock().unwrap() {
            Some(stop) if Instant::now() >= stop => {
                self.gave_up.store(true, Ordering::SeqCst);
                false
            }
            _ => true,
        }
    }

    /// How long to pause before trying again: `pause`, but never past a
    /// stopping worker's grace.
    pub fn pause(&self, pause: Duration) -> Duration {
        match *self.give_up.lock().unwrap() {
            Some(stop) => pause.min(stop.saturating_duration_since(Instant::now())),
            None => pause,
        }
    }

    /// No attempt is made any more.
    pub fn gave_up(&self) -> bool {
        self.gave_up.load(Ordering::SeqCst)
    }

    /// The worker stops: the server gets `STOP_GRACE` from now.
    pub fn stopping(&self) {
        let mut give_up = self.give_up.lock().unwrap();
        if give_up.is_none() {
            *give_up = Some(Instant::now() + STOP_GRACE);
        }
    }

    /// Why a step failed for good: the silence, when that was it.
    pub fn why(&self, e: redis::RedisError) -> redis::RedisError {
        let (since, limit) = self.silence();
        let silent = since.elapsed();
        if silent < limit {
            return e;
        }
        let said = format!(
            "the server has not answered for {} s ({e})",
            silent.as_secs()
        );
        redis::RedisError::from((redis::ErrorKind::Io, "no answer", said))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_has_its_block_time_plus_the_command_deadline() {
        let health = Health::new(false);
        health.heard();
        let now = Instant::now();
        assert_eq!(health.deadline(now, Duration::ZERO), now + COMMAND);
        let block = Duration::from_secs(1);
        assert_eq!(health.deadline(now, block), now + COMMAND + block);
    }

    #[test]
    fn a_stopping_worker_waits_its_grace_and_then_no_more() {
        let health = Health::new(false);
        health.heard();
        health.stopping();
        let now = Instant::now();
        let end = health.deadline(now, Duration::from_secs(1));
        assert!(end <= now + STOP_GRACE + Duration::from_millis(5));
        assert!(health.retry(), "within the grace a step is tried again");
    }

    #[test]
    fn before_the_server_ever_answered_it_is_lost_soon() {
        let health = Health::new(true);
        let now = Instant::now();
        assert!(health.deadline(now, Duration::ZERO) <= now + FIRST_CONTACT);
    }
}
