//! The poll(2) loop of one step: every stream of the step is read on the
//! calling thread, so a short run costs no thread beyond its own, which
//! matters for graphs of many runs. A stream that fills its buffer at once
//! has a fast producer: it gets a thread of its own, one read(2) per chunk.
//! The loop also watches the main process: once that ended, what is left
//! of its group is stopped and the pipes are drained, for at most `DRAIN`.

use std::fs::File;
use std::io::Read;
use std::process::ExitStatus;
use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};
use std::time::{Duration, Instant};

use super::reader::StreamReader;
use super::{RunOutput, EXIT_CHECK, SMALL_CHUNK};
use crate::exec::child::Child;
use crate::process::DRAIN;

/// What the loop calls at its moments: the timeout passed, the step must
/// stop (a service not ready in time), and what is left of the main
/// process's group (`true`: wait until it is gone).
pub(super) struct Hooks<'h> {
    pub(super) on_timeout: &'h (dyn Fn() + Sync),
    pub(super) stop: &'h (dyn Fn() + Sync),
    pub(super) leftovers: &'h (dyn Fn(bool) + Sync),
}

/// The state of the loop, which lives across its iterations.
pub(super) struct Polling<'r, 'scope> {
    /// Each stream's pipe and reader, while this thread reads it.
    pipes: Vec<Option<File>>,
    readers: Vec<Option<StreamReader<'r>>>,
    buf: Vec<u8>,
    /// The threads of fast streams.
    pub(super) fast: Vec<ScopedJoinHandle<'scope, ()>>,
    deadline: Option<Instant>,
    timed_out: bool,
    /// The main process's status, once it was seen to end.
    pub(super) status: Option<ExitStatus>,
    pub(super) exited_at: Option<Instant>,
    /// When the main process was last looked at.
    checked: Instant,
}

impl<'r: 'scope, 'scope> Polling<'r, 'scope> {
    pub(super) fn new(
        pipes: Vec<File>,
        readers: Vec<StreamReader<'r>>,
        deadline: Option<Instant>,
    ) -> Self {
        Polling {
            pipes: pipes.into_iter().map(Some).collect(),
            readers: readers.into_iter().map(Some).collect(),
            buf: vec![0u8; SMALL_CHUNK],
            fast: Vec::new(),
            deadline,
            timed_out: false,
            status: None,
            exited_at: None,
            checked: Instant::now(),
        }
    }

    /// Read until every pipe is closed or handed to a thread, or the drain
    /// after the main process's exit ran out.
    pub(super) fn run<'env>(
        &mut self,
        output: &RunOutput,
        scope: &'scope Scope<'scope, 'env>,
        drain_until: &'scope Mutex<Option<Instant>>,
        handle: &Child,
        hooks: &Hooks,
    ) {
        while self.pipes.iter().any(Option::is_some) {
            let Some(wake) = self.wake_after(output, hooks) else {
                break;
            };
            output.shared.lock().unwrap().flush_answers();
            let open: Vec<&File> = self.pipes.iter().flatten().collect();
            let ready = crate::process::wait_readable(&open, wake);
            self.read_ready(&ready, scope, drain_until);
            // Now and then, and whenever the output pauses, see whether
            // the main process ended while something else holds a pipe.
            if self.status.is_none()
                && (!ready.contains(&true) || self.checked.elapsed() >= EXIT_CHECK)
            {
                self.checked = Instant::now();
                // An error teaches nothing now; the wait at the end
                // reports it.
                if let Ok(Some(done)) = handle.try_wait() {
                    self.status = Some(done);
                    self.exited_at = Some(Instant::now());
                    (hooks.leftovers)(false);
                }
            }
        }
    }

    /// How long poll(2) may sleep: until the next look at the main
    /// process, the timeout, a service's deadline to be ready, or the end
    /// of the drain. `None` when the drain ran out.
    fn wake_after(&mut self, output: &RunOutput, hooks: &Hooks) -> Option<Duration> {
        let now = Instant::now();
        let mut wake = EXIT_CHECK;
        if let (Some(deadline), false, None) = (self.deadline, self.timed_out, self.status) {
            if now >= deadline {
                self.timed_out = true;
                (hooks.on_timeout)();
            } else {
                wake = wake.min(deadline - now);
            }
        }
        match output.ready_left(now) {
            Some(left) if left.is_zero() => (hooks.stop)(),
            Some(left) => wake = wake.min(left),
            None => {}
        }
        if let Some(at) = self.exited_at {
            let until = at + DRAIN;
            if now >= until {
                // What still holds the pipes left the group (a daemon):
                // stop reading, and go on.
                for (slot, reader) in self.pipes.iter_mut().zip(self.readers.iter_mut()) {
                    if let (Some(_), Some(reader)) = (slot.take(), reader.as_mut()) {
                        reader.finish();
                    }
                }
                return None;
            }
            wake = wake.min(until - now);
        }
        Some(wake)
    }

    /// Read each pipe poll(2) found ready (`ready`, in the order of the
    /// open pipes); a pipe that filled the buffer goes to a thread.
    fn read_ready<'env>(
        &mut self,
        ready: &[bool],
        scope: &'scope Scope<'scope, 'env>,
        drain_until: &'scope Mutex<Option<Instant>>,
    ) {
        let mut k = 0;
        for (slot, reader_slot) in self.pipes.iter_mut().zip(self.readers.iter_mut()) {
            let (Some(pipe), Some(reader)) = (slot.as_mut(), reader_slot.as_mut()) else {
                continue;
            };
            let is_ready = ready.get(k).copied().unwrap_or(false);
            k += 1;
            if !is_ready {
                continue;
            }
            match pipe.read(&mut self.buf) {
                Ok(0) => {
                    reader.finish();
                    *slot = None;
                }
                Ok(n) => {
                    reader.chunk(&self.buf[..n]);
                    if n == self.buf.len() && self.exited_at.is_none() {
                        let (Some(pipe), Some(mut reader)) = (slot.take(), reader_slot.take())
                        else {
                            continue;
                        };
                        crate::process::deepen_pipe(&pipe);
                        self.fast
                            .push(scope.spawn(move || reader.run(pipe, drain_until)));
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) => {}
                // A terminal whose other side closed reports EIO: the end.
                Err(_) => {
                    reader.finish();
                    *slot = None;
                }
            }
        }
    }
}
