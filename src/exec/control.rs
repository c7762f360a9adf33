//! A run's control: the processes it started, and its cancel.

use super::*;

/// Shared between a run's worker and the scheduler, which may cancel it.
#[derive(Default)]
pub struct Control {
    cancelled: AtomicBool,
    procs: Mutex<Vec<Proc>>,
    /// The grace period between SIGTERM and SIGKILL, when shorter than
    /// `process::GRACE`.
    grace: Mutex<Option<Duration>>,
}

impl Control {
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// How long the run's processes get between SIGTERM and SIGKILL.
    pub fn grace(&self) -> Duration {
        self.grace.lock().unwrap().unwrap_or(process::GRACE)
    }

    /// Cancel with a shorter grace period: a worker stops the runs its
    /// coordinator cancelled within 1 s (SPEC 11).
    pub fn cancel_within(self: &Arc<Self>, grace: Duration) {
        *self.grace.lock().unwrap() = Some(grace);
        self.cancel();
    }

    /// Stop the run: SIGTERM to its process groups now, SIGKILL to what is
    /// left after the grace period.
    pub fn cancel(self: &Arc<Self>) {
        let procs = {
            let procs = self.procs.lock().unwrap();
            self.cancelled.store(true, Ordering::SeqCst);
            procs.clone()
        };
        self.stop(procs);
    }

    pub(super) fn stop(self: &Arc<Self>, procs: Vec<Proc>) {
        if procs.is_empty() {
            return;
        }
        for proc in &procs {
            process::terminate(*proc);
        }
        let me = Arc::clone(self);
        let grace = self.grace();
        std::thread::spawn(move || {
            std::thread::sleep(grace);
            let live = me.procs.lock().unwrap();
            for proc in procs.iter().filter(|p| live.contains(p)) {
                process::kill(*proc);
            }
        });
    }

    /// Start a process unless the run was cancelled, and register it in
    /// the same breath so that a cancel never misses it.
    pub(super) fn spawn(
        &self,
        start: impl FnOnce() -> std::io::Result<super::child::Child>,
        new_group: bool,
    ) -> Result<Option<super::child::Child>, std::io::Error> {
        let mut procs = self.procs.lock().unwrap();
        if self.is_cancelled() {
            return Ok(None);
        }
        let handle = start()?;
        for pid in handle.pids() {
            let proc = Proc {
                pid,
                group: new_group,
            };
            procs.push(proc);
            crate::stop::track(proc);
        }
        Ok(Some(handle))
    }

    pub(super) fn forget(&self, pids: &[u32]) {
        self.procs.lock().unwrap().retain(|p| {
            let gone = pids.contains(&p.pid);
            if gone {
                crate::stop::forget(*p);
            }
            !gone
        });
    }
}
