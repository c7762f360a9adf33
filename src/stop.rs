//! How tasker is told to stop (SPEC 6), whatever it is doing at the time.
//!
//! - The stop signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are watched for
//!   the whole invocation, from before the first `sh` var runs. The first
//!   one is a request: the scheduler (when it runs) cancels every run and
//!   lets `finally` steps run; code that waits outside any run (an `sh` var,
//!   a prompt) sees `requested()` and gives up. A second one ends tasker at
//!   once: SIGKILL to every process group it started, then exit 128+N.
//! - Every process group tasker starts is registered here. A guard
//!   process, in a session of its own, holds the list; when tasker
//!   dies without a chance to clean up (SIGKILL of its group, the OOM
//!   killer), the guard sees its pipe close and kills what is left.
//!
//! Nothing here runs inside a signal handler: signal-hook turns signals
//! into messages for one thread.

use std::sync::{Mutex, OnceLock};

/// The signals that stop tasker.
#[cfg(unix)]
pub const SIGNALS: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// A spawned process tasker may have to stop: its group when it leads one,
/// else only itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub group: bool,
}

impl Proc {
    /// The target of kill(2): the group (negative) or the process; none
    /// for pids that would name every process or tasker's own group.
    pub fn target(self) -> Option<i32> {
        let pid = i32::try_from(self.pid).ok().filter(|&p| p > 1)?;
        Some(if self.group { -pid } else { pid })
    }
}

#[derive(Default)]
struct State {
    /// The first stop signal, once one came.
    signal: Option<i32>,
    /// Where a stop request goes while the scheduler runs.
    listener: Option<std::sync::Arc<dyn Fn(i32) + Send + Sync>>,
    /// Every process (group) started and not yet known to be gone.
    procs: Vec<Proc>,
    guard: Option<guard::Guard>,
}

fn state() -> std::sync::MutexGuard<'static, State> {
    static STATE: OnceLock<Mutex<State>> = OnceLock::new();
    let lock = STATE.get_or_init(Mutex::default).lock();
    // A panic while holding the lock leaves plain data: keep using it.
    lock.unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Start watching the stop signals. Called once, before anything that
/// starts a process.
pub fn install() {
    #[cfg(unix)]
    {
        static INSTALLED: OnceLock<()> = OnceLock::new();
        INSTALLED.get_or_init(|| {
            let Ok(mut signals) = signal_hook::iterator::Signals::new(SIGNALS) else {
                return;
            };
            for sig in SIGNALS {
                let _ = signal_hook::flag::register_usize(sig, &ARRIVED, sig as usize);
            }
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        request(sig);
                    }
                });
        });
    }
}

/// A stop request: the first is passed on to the scheduler; the second
/// ends tasker at once.
pub fn request(sig: i32) {
    let listener = {
        let mut state = state();
        if state.signal.is_some() {
            drop(state);
            hard_exit(sig);
        }
        state.signal = Some(sig);
        state.listener.clone()
    };
    // Called without the lock: the listener cancels runs, whose controls
    // take their own lock and then this one (to forget a process).
    match listener {
        Some(listener) => listener(sig),
        None => watchdog(sig),
    }
}

/// How long tasker may take to end after a stop request that no scheduler
/// handles: the grace a stopped process group gets (an `sh` var's, 3 s),
/// and a little more.
const LAST_CHANCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Outside a scheduler (which stops its runs and lets `finally` steps run
/// for as long as they take), every wait of tasker gives up at a stop
/// request. Should one not, in a state nobody foresaw, tasker still ends:
/// the first signal is a request, and this makes sure it is obeyed.
fn watchdog(sig: i32) {
    let _ = std::thread::Builder::new()
        .name("stop-watchdog".into())
        .spawn(move || {
            std::thread::sleep(LAST_CHANCE);
            hard_exit(sig);
        });
}

/// Stop the runs in progress as SIGTERM would (process groups, grace,
/// SIGKILL), without it counting as a stop request: `-w` starts them again
/// after a change. Nothing happens when no scheduler listens.
#[cfg(unix)]
pub fn interrupt_runs() {
    let listener = state().listener.clone();
    if let Some(listener) = listener {
        listener(libc::SIGTERM);
    }
}

/// A stop signal as the signal handler saw it, before the thread above
/// passes it on: a wait that the signal itself cut short (a system call of
/// another thread interrupted) sees the request at once, not only once
/// that thread ran.
#[cfg(unix)]
static ARRIVED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The first stop signal, if one came.
pub fn requested() -> Option<i32> {
    #[cfg(unix)]
    {
        state()
            .signal
            .or(match ARRIVED.load(std::sync::atomic::Ordering::SeqCst) {
                0 => None,
                sig => i32::try_from(sig).ok(),
            })
    }
    #[cfg(not(unix))]
    state().signal
}

/// Pass stop requests to `listener` until the returned guard is dropped.
/// A request that came before is passed at once.
pub fn listen(listener: std::sync::Arc<dyn Fn(i32) + Send + Sync>) -> Listening {
    let early = {
        let mut state = state();
        state.listener = Some(listener.clone());
        state.signal
    };
    if let Some(sig) = early {
        listener(sig);
    }
    Listening
}

pub struct Listening;

impl Drop for Listening {
    fn drop(&mut self) {
        state().listener = None;
    }
}

/// SIGKILL to everything tasker started, then exit as killed by `sig`.
fn hard_exit(sig: i32) -> ! {
    let procs = std::mem::take(&mut state().procs);
    for proc in procs {
        kill_now(proc);
    }
    // SAFETY: _exit ends the process without running anything else; the
    // runs' threads may be stuck in a write or a render, holding locks
    // that exit's handlers would wait for.
    unsafe { libc::_exit(128 + sig) }
}

/// SIGKILL to `proc` (its group when it leads one), at once.
fn kill_now(proc: Proc) {
    use rustix::process::{kill_process, kill_process_group, Pid, Signal};
    let Some(pid) = proc.target().and_then(|t| Pid::from_raw(t.abs())) else {
        return;
    };
    let _ = if proc.group {
        kill_process_group(pid, Signal::KILL)
    } else {
        kill_process(pid, Signal::KILL)
    };
}

/// Start the guard now rather than at the first process: its start then
/// never delays a run that has just started (a service's ready line).
pub fn start_guard() {
    let mut state = state();
    if state.guard.is_none() {
        state.guard = guard::Guard::start();
    }
}

/// Remember a process tasker started, until `forget`.
pub fn track(proc: Proc) {
    let mut state = state();
    state.procs.push(proc);
    if state.guard.is_none() {
        state.guard = guard::Guard::start();
    }
    if let Some(guard) = &mut state.guard {
        guard.add(proc);
    }
}

/// The process is gone (or left on purpose): nothing to stop any more.
pub fn forget(proc: Proc) {
    let mut state = state();
    if let Some(i) = state.procs.iter().position(|p| *p == proc) {
        state.procs.swap_remove(i);
        if let Some(guard) = &mut state.guard {
            guard.remove(proc);
        }
    }
}

/// The guard: a small process, started once, that outlives tasker only to
/// kill what tasker left behind. It lives in a session of its own, so that
/// a SIGKILL to tasker's group does not reach it, holds no descriptor but
/// the read end of a pipe that only tasker can write to, and makes only
/// system calls.
///
/// Its list of targets is a table in a shared mapping: tasker writes a
/// process group there when it starts one and clears it when it is gone,
/// with no message and no wake-up of the guard. The guard sleeps in a read
/// of the pipe until tasker is gone (however it ended), then kills what
/// the table still holds.
///
/// On Linux it is started with clone(2) sharing tasker's memory (no fork:
/// copying the page tables, and the copy-on-write faults tasker would then
/// take on every page it writes, cost more than the rest of a one-step
/// run's start-up). It therefore touches nothing of tasker's but the
/// table: its stack is its own mapping, and it makes its system calls
/// through rustix, which on Linux never reads or writes the thread it was
/// cloned from (no errno, no cancellation point), and through libc only
/// where libc does neither. Elsewhere (macOS), and on Linux kernels
/// without close_range(2) (before 5.9), it is forked: the table is shared
/// with the forked guard all the same, and it calls only functions that
/// are safe after a fork.
mod guard {
    use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::Proc;
    /// Process groups the guard can hold at once.
    const CAPACITY: usize = 4096;
    /// The most descriptors a forked guard closes one by one.
    const MOST_DESCRIPTORS: u64 = 65536;

    pub struct Guard {
        /// Never written: its closing (tasker's exit) wakes the guard.
        _pipe: OwnedFd,
        /// Kill targets; 0 is a free slot.
        table: &'static [AtomicI32],
        /// Slots below this may be in use.
        used: usize,
    }

    impl Guard {
        pub fn start() -> Option<Guard> {
            let table = table()?;
            // Both ends close on exec; tasker keeps the write end only (the
            // guard has its own copy of the descriptor table).
            let (read, write) = os_pipe::pipe().ok()?;
            let read = OwnedFd::from(read);
            spawn(read.as_raw_fd(), table)?;
            Some(Guard {
                _pipe: write.into(),
                table,
                used: 0,
            })
        }

        pub fn add(&mut self, proc: Proc) {
            let Some(target) = proc.target() else {
                return;
            };
            let free = self.table[..self.used]
                .iter()
                .position(|slot| slot.load(Ordering::Relaxed) == 0);
            let slot = match free {
                Some(i) => i,
                None if self.used < CAPACITY => {
                    self.used += 1;
                    self.used - 1
                }
                None => return,
            };
            self.table[slot].store(target, Ordering::SeqCst);
        }

        pub fn remove(&mut self, proc: Proc) {
            let Some(target) = proc.target() else {
                return;
            };
            if let Some(slot) = self.table[..self.used]
                .iter()
                .find(|slot| slot.load(Ordering::Relaxed) == target)
            {
                slot.store(0, Ordering::SeqCst);
            }
            while self.used > 0 && self.table[self.used - 1].load(Ordering::Relaxed) == 0 {
                self.used -= 1;
            }
        }
    }

    /// The table of kill targets: a zeroed mapping (all slots free) that
    /// a forked guard shares, never unmapped (the guard reads it after
    /// tasker is gone).
    fn table() -> Option<&'static [AtomicI32]> {
        let len = CAPACITY * std::mem::size_of::<AtomicI32>();
        let table = map(len, true)?;
        // SAFETY: a fresh zeroed mapping of CAPACITY AtomicI32s, aligned
        // (page-aligned), valid for the rest of the process and only ever
        // accessed through atomics.
        Some(unsafe { std::slice::from_raw_parts(table.as_ptr().cast(), CAPACITY) })
    }

    /// An anonymous mapping of `len` zeroed bytes (shared with a forked
    /// child when `shared`).
    fn map(len: usize, shared: bool) -> Option<std::ptr::NonNull<u8>> {
        let sharing = if shared {
            libc::MAP_SHARED
        } else {
            libc::MAP_PRIVATE
        };
        let flags = sharing | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: a new anonymous mapping touches nothing that exists.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, flags, -1, 0) };
        if p == libc::MAP_FAILED {
            return None;
        }
        std::ptr::NonNull::new(p.cast())
    }

    /// The most descriptors tasker may have open (a forked guard closes
    /// every one but its pipe).
    fn descriptor_limit() -> i32 {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
        limit.unwrap_or(MOST_DESCRIPTORS).min(MOST_DESCRIPTORS) as i32
    }

    /// Start the guard on `pipe`'s read end and `table`; `None` when the
    /// system refused.
    #[cfg(target_os = "linux")]
    fn spawn(pipe: RawFd, table: &'static [AtomicI32]) -> Option<()> {
        /// What the cloned guard is given, at the base of its stack.
        struct Start {
            pipe: RawFd,
            table: &'static [AtomicI32],
        }
        /// The guard's stack: it calls a handful of functions, none deep.
        const STACK: usize = 64 * 1024;
        extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
            // SAFETY: `arg` is the Start written by `spawn`, and this is
            // the guard just cloned.
            unsafe {
                let start = &*arg.cast::<Start>();
                run(start.pipe, start.table, None)
            }
        }
        // SAFETY: close_range of an empty range above every descriptor
        // closes nothing; it only asks whether the kernel has the call
        // (errno is written here, in tasker, never in the guard).
        let has_close_range =
            unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) } == 0;
        // A debug build lets a test take the forked guard (macOS's) here.
        let forced = cfg!(debug_assertions)
            && std::env::var_os("TASKER_TEST_GUARD").is_some_and(|way| way == "fork");
        if !has_close_range || forced {
            return fork(pipe, table);
        }
        // A mapping of its own, never freed: the guard may outlive tasker.
        let stack = map(STACK, false)?.as_ptr();
        // SAFETY: the base of the fresh stack mapping holds the Start (the
        // stack grows down from the top, far above it); the top is 16-byte
        // aligned (mappings are page-aligned); the child runs `entry` on
        // that stack, in tasker's memory, which it reads only through the
        // Start, and exits without returning into tasker's code.
        let pid = unsafe {
            stack.cast::<Start>().write(Start { pipe, table });
            libc::clone(
                entry,
                stack.add(STACK).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                stack.cast(),
            )
        };
        (pid > 0).then_some(())
    }

    #[cfg(not(target_os = "linux"))]
    fn spawn(pipe: RawFd, table: &'static [AtomicI32]) -> Option<()> {
        fork(pipe, table)
    }

    /// Start the guard as a forked copy of tasker.
    fn fork(pipe: RawFd, table: &'static [AtomicI32]) -> Option<()> {
        let limit = descriptor_limit();
        // SAFETY: the child calls only async-signal-safe functions (what
        // `run` promises) and never returns into tasker's code.
        let pid = unsafe {
            match libc::fork() {
                0 => run(pipe, table, Some(limit)),
                pid => pid,
            }
        };
        (pid > 0).then_some(())
    }

    /// The guard's whole life: wait until the pipe closes (tasker ended,
    /// however), then SIGKILL what the table still holds.
    ///
    /// # Safety
    ///
    /// Only in the guard, just after `clone` (`close_limit` is `None`:
    /// close_range(2) is known to work) or `fork` (`Some`: descriptors
    /// below it are closed one by one), with `pipe` the read end of the
    /// pipe whose write end only tasker holds.
    unsafe fn run(pipe: RawFd, table: &[AtomicI32], close_limit: Option<i32>) -> ! {
        let _ = rustix::process::setsid();
        // tasker's signal handlers are not the guard's: they would run in
        // its memory. The mask is the cloning thread's: cleared.
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut default.sa_mask);
        for sig in super::SIGNALS {
            libc::sigaction(sig, &default, std::ptr::null_mut());
        }
        libc::sigprocmask(libc::SIG_SETMASK, &default.sa_mask, std::ptr::null_mut());
        // Hold nothing of tasker's: a pipe kept open here would keep a
        // reader of tasker's output waiting.
        match close_limit {
            Some(limit) => {
                for fd in (0..limit).filter(|&fd| fd != pipe) {
                    libc::close(fd);
                }
            }
            // Both ranges are valid: close_range(2) cannot fail here (the
            // probe before the clone saw it work), so errno stays tasker's.
            #[cfg(target_os = "linux")]
            None => {
                let keep = pipe as u32;
                if keep > 0 {
                    libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32);
                }
                libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32);
            }
            #[cfg(not(target_os = "linux"))]
            None => {}
        }
        #[cfg(target_os = "linux")]
        let _ = rustix::thread::set_name(c"tasker-guard");
        // Nothing is ever written; the read ends at EOF.
        let pipe = BorrowedFd::borrow_raw(pipe);
        let mut byte = [0u8; 1];
        loop {
            match rustix::io::read(pipe, &mut byte) {
                Ok(0) => break,
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => break,
            }
        }
        for slot in table {
            let target = slot.load(Ordering::SeqCst);
            if target != 0 {
                super::kill_now(Proc {
                    pid: target.unsigned_abs(),
                    group: target < 0,
                });
            }
        }
        libc::_exit(0)
    }
}

/// As PID 1 (a container's first process), orphans become tasker's
/// children, and nobody else would reap them: their zombies would keep a
/// step's process group alive. tasker then splits in two at start-up,
/// before any thread exists: the first process stays PID 1, reaps every
/// child that ends and passes on the signals sent to it with kill(2); the
/// second goes on as tasker. Signals the terminal sends reach both
/// already (they share the foreground group) and are not passed twice.
/// Linux only: a container's PID 1 is Linux's.
#[cfg(target_os = "linux")]
pub fn reap_as_init() {
    if !rustix::process::getpid().is_init() {
        return;
    }
    // SAFETY: plain signal-mask calls on zeroed sigset_t values that
    // sigemptyset initialises, and fork while tasker has a single thread;
    // the first process makes only system calls afterwards.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in
            SIGNALS
                .iter()
                .chain(&[libc::SIGCHLD, libc::SIGUSR1, libc::SIGUSR2, libc::SIGWINCH])
        {
            libc::sigaddset(&mut set, *sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, &mut old);
        let child = libc::fork();
        if child <= 0 {
            // tasker proper (or no fork possible: tasker goes on alone).
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            return;
        }
        let wake = libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        };
        loop {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            let sig = libc::sigtimedwait(&set, &mut info, &wake);
            // si_code <= 0: sent by a process (kill, sigqueue), not by the
            // terminal to the whole group.
            if sig > 0 && sig != libc::SIGCHLD && info.si_code <= 0 {
                libc::kill(child, sig);
            }
            loop {
                let mut status = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    let code = if libc::WIFSIGNALED(status) {
                        128 + libc::WTERMSIG(status)
                    } else {
                        libc::WEXITSTATUS(status)
                    };
                    libc::_exit(code);
                }
            }
        }
    }
}

/// Elsewhere tasker is never a container's first process.
#[cfg(not(target_os = "linux"))]
pub fn reap_as_init() {}
