//! A worker's run output on its way to the coordinator: the run's console
//! writes into a small buffer here, and one thread sends it to the run's
//! stream. The server holds at most `UNREAD_LIMIT` bytes the coordinator
//! has not read; past that the thread waits, the buffer fills, and the
//! run's writes wait in turn. Nothing is dropped while the coordinator
//! reads; only a coordinator that is gone (`abandoned`) stops the wait.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::queue::{self, Batch, Piece, Queue, RunKeys};
use super::UNREAD_LIMIT;
use crate::exec::output::{Sink, Stream};

/// Whether the worker's lease is fresh: output is sent only then.
pub type Fresh = Box<dyn Fn() -> bool + Send>;

/// Bytes a run may have written that are not yet sent: all of them go
/// in one transaction, one round trip.
const BUFFER: usize = 4 * 1024 * 1024;
/// Small writes are sent together, up to this size per entry.
const ENTRY: usize = 256 * 1024;
/// The longest pause between two looks at what the coordinator read.
const MAX_PAUSE: Duration = Duration::from_millis(10);

pub struct Outbox {
    inner: Arc<Inner>,
    sender: Option<std::thread::JoinHandle<()>>,
}

struct Inner {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    chunks: VecDeque<(Option<Stream>, Vec<u8>)>,
    bytes: usize,
    closed: bool,
    /// The server stopped answering: what was not sent is lost, and the
    /// run cannot report either.
    failed: Option<String>,
}

impl Outbox {
    /// Start sending to the run's stream.
    pub fn start(
        queue: Arc<Queue>,
        keys: RunKeys,
        worker: String,
        abandoned: Arc<AtomicBool>,
        fresh: Fresh,
    ) -> Outbox {
        let inner = Arc::new(Inner {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let shared = Arc::clone(&inner);
        let sender = std::thread::spawn(move || {
            let sent = send_all(&shared, &queue, &keys, &worker, &abandoned, &fresh);
            let mut state = shared.state.lock().unwrap();
            if let Err(e) = sent {
                state.failed = Some(e);
            }
            // Writers never wait for a sender that is gone.
            state.closed = true;
            state.chunks.clear();
            shared.changed.notify_all();
        });
        Outbox {
            inner,
            sender: Some(sender),
        }
    }

    /// Where the run's console writes.
    pub fn sink(&self) -> Sink {
        let inner = Arc::clone(&self.inner);
        Box::new(move |stream, bytes| inner.put(stream, bytes))
    }

    /// Send what is left, then stop; why output was lost, if it was.
    pub fn close(mut self) -> Option<String> {
        {
            let mut state = self.inner.state.lock().unwrap();
            state.closed = true;
            self.inner.changed.notify_all();
        }
        if let Some(sender) = self.sender.take() {
            let _ = sender.join();
        }
        self.inner.state.lock().unwrap().failed.take()
    }
}

impl Inner {
    fn put(&self, stream: Option<Stream>, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap();
        while state.bytes >= BUFFER && !state.closed {
            state = self.changed.wait(state).unwrap();
        }
        if state.closed {
            return;
        }
        state.bytes += bytes.len();
        match state.chunks.back_mut() {
            Some((s, last)) if *s == stream && last.len() + bytes.len() <= ENTRY => {
                last.extend_from_slice(bytes)
            }
            _ => {
                // Room for some later writes, so that a growing entry is
                // copied less often; small enough for interleaved streams.
                let mut chunk = Vec::with_capacity(bytes.len().max(ENTRY / 4));
                chunk.extend_from_slice(bytes);
                state.chunks.push_back((stream, chunk));
            }
        }
        self.changed.notify_all();
    }

    /// The next chunks to send; `None` once closed and empty.
    fn next(&self) -> Option<Vec<(Option<Stream>, Vec<u8>)>> {
        let mut state = self.state.lock().unwrap();
        while state.chunks.is_empty() && !state.closed {
            state = self.changed.wait(state).unwrap();
        }
        if state.chunks.is_empty() {
            return None;
        }
        state.bytes = 0;
        let chunks = state.chunks.drain(..).collect();
        self.changed.notify_all();
        Some(chunks)
    }
}

/// Whether `len` more bytes must wait for the coordinator to read, after
/// `written` sent of which it read `read`: they would leave more than
/// `UNREAD_LIMIT` unread. A batch larger than the limit on its own (one
/// very large write) goes once everything before it was read.
fn must_wait(written: u64, len: u64, read: u64) -> bool {
    written > read && written + len > read + UNREAD_LIMIT
}

fn send_all(
    inner: &Inner,
    queue: &Queue,
    keys: &RunKeys,
    worker: &str,
    abandoned: &AtomicBool,
    fresh: &Fresh,
) -> Result<(), String> {
    let mut con = queue.connection()?;
    let lost = |e: redis::RedisError| queue.lost(&e);
    // Each piece is numbered, so that a piece sent again after a lost
    // reply is shown once.
    let sender = queue::token();
    let mut seq = 0;
    let mut written: u64 = 0;
    let mut seen_read: u64 = 0;
    while let Some(chunks) = inner.next() {
        let len: u64 = chunks.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        // Wait for the coordinator to read, looking often at first: it
        // reads as fast as it prints, and a long first pause would leave
        // it idle.
        let mut pause = Duration::from_micros(500);
        while must_wait(written, len, seen_read) && !abandoned.load(Ordering::SeqCst) {
            seen_read = queue::read_so_far(&mut con, &keys.read).map_err(lost)?;
            if must_wait(written, len, seen_read) {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
        if !fresh() {
            abandoned.store(true, Ordering::SeqCst);
        }
        if abandoned.load(Ordering::SeqCst) {
            continue;
        }
        let pieces: Vec<Piece> = chunks
            .into_iter()
            .map(|(stream, bytes)| Piece {
                stream: match stream {
                    Some(Stream::Stdout) => "o",
                    Some(Stream::Stderr) => "e",
                    None => "t",
                },
                bytes,
            })
            .collect();
        seq += pieces.len() as u64;
        let batch = Batch {
            sender: &sender,
            seq,
            pieces: &pieces,
        };
        queue::append(&mut con, keys, worker, &batch).map_err(lost)?;
        written += len;
    }
    queue.give_back(con);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_waits_only_while_it_would_leave_too_much_unread() {
        const MIB: u64 = 1 << 20;
        assert!(!must_wait(0, MIB, 0));
        assert!(!must_wait(8 * MIB, 8 * MIB, 0));
        assert!(must_wait(8 * MIB, 8 * MIB + 1, 0));
        assert!(!must_wait(8 * MIB, 8 * MIB + 1, MIB));
        // Larger than the limit alone: waits for the rest, then goes.
        assert!(must_wait(MIB, 40 * MIB, 0));
        assert!(!must_wait(MIB, 40 * MIB, MIB));
        assert!(!must_wait(0, 40 * MIB, 0));
    }
}
