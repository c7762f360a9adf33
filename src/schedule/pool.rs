//! The threads runs go on: kept for the next run when one ends, grown when
//! every thread is busy (a run waiting in a `task` step keeps its own).

use std::sync::mpsc;
use std::sync::Arc;

/// Threads that run jobs, kept for the next job when one ends: starting
/// a thread per run cost more than the scheduling itself. A run waiting in
/// a `task` step keeps its thread, so the pool grows when every thread is
/// busy; it never shrinks before the invocation ends.
pub(super) struct Pool<T> {
    idle: Arc<std::sync::atomic::AtomicUsize>,
    jobs: std::sync::Mutex<Option<mpsc::Sender<T>>>,
    queue: Arc<std::sync::Mutex<mpsc::Receiver<T>>>,
}

impl<T: Send> Pool<T> {
    pub(super) fn new() -> Pool<T> {
        let (jobs, queue) = mpsc::channel();
        Pool {
            idle: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            jobs: std::sync::Mutex::new(Some(jobs)),
            queue: Arc::new(std::sync::Mutex::new(queue)),
        }
    }

    /// Run `work(job)` on an idle thread, or on a new one (which the
    /// system may refuse).
    pub(super) fn start<'scope, 'env, F>(
        &self,
        scope: &'scope std::thread::Scope<'scope, 'env>,
        job: T,
        work: F,
    ) -> std::io::Result<()>
    where
        F: Fn(T) + Send + Clone + 'scope,
        T: 'scope,
    {
        use std::sync::atomic::Ordering;
        // Only this thread takes from `idle`, and each idle thread takes
        // exactly one job: a decrement here is a thread that will run it.
        let claimed = self
            .idle
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        let job = match (claimed, self.jobs.lock().unwrap().as_ref()) {
            (true, Some(jobs)) => match jobs.send(job) {
                Ok(()) => return Ok(()),
                Err(mpsc::SendError(job)) => job,
            },
            _ => job,
        };
        let idle = Arc::clone(&self.idle);
        let queue = Arc::clone(&self.queue);
        let first = job;
        std::thread::Builder::new()
            .stack_size(RUN_STACK)
            .spawn_scoped(scope, move || {
                work(first);
                loop {
                    idle.fetch_add(1, Ordering::SeqCst);
                    let next = queue.lock().unwrap().recv();
                    match next {
                        Ok(job) => work(job),
                        Err(_) => break,
                    }
                }
            })?;
        Ok(())
    }

    /// Let idle threads end, so the scope can join them.
    pub(super) fn close(&self) {
        self.jobs.lock().unwrap().take();
    }
}

/// The stack of a run's thread: as large as the main thread's, so that a
/// chain of vars as deep as the limit allows (SPEC 6, Limits) renders on
/// any thread. Only the pages a run touches are ever committed.
const RUN_STACK: usize = 8 << 20;
