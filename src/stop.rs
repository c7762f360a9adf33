//! How tasker is told to stop (SPEC 6), whatever it is doing at the time.
//!
//! - The stop signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) are watched for
//!   the whole invocation, from before the first `sh` var runs. The first
//!   one is a request: the scheduler (when it runs) cancels every run and
//!   lets `finally` steps run; code that waits outside any run (an `sh` var,
//!   a prompt) sees `requested()` and gives up. A second one ends tasker at
//!   once: SIGKILL to every process group it started, then exit 128+N.
//! - Every process group tasker starts is registered here. On Linux a
//!   guard process, in a session of its own, holds the list; when tasker
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
    #[cfg(target_os = "linux")]
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

/// The first stop signal, if one came.
pub fn requested() -> Option<i32> {
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
    for target in procs.into_iter().filter_map(Proc::target) {
        // SAFETY: kill(2) has no memory effects.
        unsafe { libc::kill(target, libc::SIGKILL) };
    }
    // SAFETY: _exit ends the process without running anything else; the
    // runs' threads may be stuck in a write or a render.
    unsafe { libc::_exit(128 + sig) }
}

/// Start the guard now rather than at the first process: its fork then
/// never delays a run that has just started (a service's ready line).
pub fn start_guard() {
    #[cfg(target_os = "linux")]
    {
        let mut state = state();
        if state.guard.is_none() {
            state.guard = guard::Guard::start();
        }
    }
}

/// Remember a process tasker started, until `forget`.
pub fn track(proc: Proc) {
    let mut state = state();
    state.procs.push(proc);
    #[cfg(target_os = "linux")]
    {
        if state.guard.is_none() {
            state.guard = guard::Guard::start();
        }
        if let Some(guard) = &mut state.guard {
            guard.add(proc);
        }
    }
}

/// The process is gone (or left on purpose): nothing to stop any more.
pub fn forget(proc: Proc) {
    let mut state = state();
    if let Some(i) = state.procs.iter().position(|p| *p == proc) {
        state.procs.swap_remove(i);
        #[cfg(target_os = "linux")]
        if let Some(guard) = &mut state.guard {
            guard.remove(proc);
        }
    }
}

/// The guard: a small process, started once, that outlives tasker only to
/// kill what tasker left behind. It lives in a session of its own, so that
/// a SIGKILL to tasker's group does not reach it, holds no descriptor but
/// the read end of a pipe that only tasker can write to, and makes only
/// raw system calls.
///
/// Its list of targets is a table in a shared mapping: tasker writes a
/// process group there when it starts one and clears it when it is gone,
/// with no message and no wake-up of the guard. The guard sleeps in a read
/// of the pipe until tasker is gone (however it ended), then kills what
/// the table still holds.
///
/// It is started with clone(2) sharing tasker's memory (no fork: copying
/// the page tables, and the copy-on-write faults tasker would then take on
/// every page it writes, cost more than the rest of a one-step run's
/// start-up). It therefore touches nothing of tasker's but the table: its
/// stack is its own mapping, and it calls no libc function that reads the
/// thread it was cloned from (no cancellation points, no errno while
/// tasker lives). Kernels without close_range(2) (before 5.9) get a fork;
/// the table is shared with it all the same.
#[cfg(target_os = "linux")]
mod guard {
    use std::os::fd::{FromRawFd, OwnedFd, RawFd};
    use std::sync::atomic::{AtomicI32, Ordering};

    use super::Proc;
    /// Process groups the guard can hold at once.
    const CAPACITY: usize = 4096;
    /// The guard's stack: it calls a handful of functions, none deep.
    const STACK: usize = 64 * 1024;

    pub struct Guard {
        /// Never written: its closing (tasker's exit) wakes the guard.
        _pipe: OwnedFd,
        /// Kill targets; 0 is a free slot.
        table: &'static [AtomicI32],
        /// Slots below this may be in use.
        used: usize,
    }

    /// What the guard is given: its end of the pipe and the table.
    struct Start {
        pipe: RawFd,
        table: *const AtomicI32,
    }

    impl Guard {
        pub fn start() -> Option<Guard> {
            // Never unmapped: the guard reads it after tasker is gone.
            let table = map(CAPACITY * std::mem::size_of::<AtomicI32>(), true);
            if table.is_null() {
                return None;
            }
            let mut fds = [0 as RawFd; 2];
            // SAFETY: pipe2 fills two descriptors; both close on exec.
            if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
                return None;
            }
            let pid = spawn(fds[0], table.cast());
            // SAFETY: both descriptors are ours; tasker keeps the write end
            // only (the guard has its own copy of the descriptor table).
            unsafe { libc::close(fds[0]) };
            if pid <= 0 {
                // SAFETY: the write end was made above and is not shared.
                unsafe { libc::close(fds[1]) };
                return None;
            }
            Some(Guard {
                // SAFETY: fds[1] is an open descriptor owned from here on.
                _pipe: unsafe { OwnedFd::from_raw_fd(fds[1]) },
                // SAFETY: a zeroed shared mapping of CAPACITY AtomicI32s
                // (all free), valid for the rest of the process.
                table: unsafe { std::slice::from_raw_parts(table.cast(), CAPACITY) },
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

    /// Start the guard on `pipe`'s read end and `table`; its pid, or -1.
    fn spawn(pipe: RawFd, table: *const AtomicI32) -> libc::pid_t {
        // SAFETY: an empty range above every descriptor closes nothing; it
        // only asks whether the kernel has close_range(2).
        let has_close_range =
            unsafe { libc::syscall(libc::SYS_close_range, u32::MAX, u32::MAX, 0) } == 0;
        if !has_close_range {
            // SAFETY: the child only makes system calls and exits.
            return match unsafe { libc::fork() } {
                0 => unsafe { run(pipe, table) },
                pid => pid,
            };
        }
        // Mappings of its own, never freed: the guard may outlive tasker.
        let stack = map(STACK, false);
        if stack.is_null() {
            return -1;
        }
        let start = map(std::mem::size_of::<Start>(), false).cast::<Start>();
        if start.is_null() {
            return -1;
        }
        // SAFETY: `start` is a fresh mapping big enough for a Start; the
        // stack's top is 16-byte aligned (mappings are page-aligned); the
        // child runs `entry` on that stack, in a copy of tasker's memory
        // map that it only reads through `start`, and exits without
        // returning into tasker's code.
        unsafe {
            start.write(Start { pipe, table });
            libc::clone(
                entry,
                stack.add(STACK).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                start.cast(),
            )
        }
    }

    /// An anonymous mapping of `len` zeroed bytes (shared with a forked
    /// child when `shared`), or null.
    fn map(len: usize, shared: bool) -> *mut u8 {
        // SAFETY: a new anonymous mapping touches nothing existing.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                if shared {
                    libc::MAP_SHARED
                } else {
                    libc::MAP_PRIVATE
                } | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        // SAFETY: `arg` is the Start written by `spawn`.
        unsafe {
            let start = &*arg.cast::<Start>();
            run(start.pipe, start.table)
        }
    }

    /// The guard's whole life: wait until the pipe closes (tasker ended,
    /// however), then SIGKILL what the table still holds.
    unsafe fn run(pipe: RawFd, table: *const AtomicI32) -> ! {
        libc::setsid();
        for sig in super::SIGNALS {
            default_action(sig);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &none as *const libc::sigset_t,
            std::ptr::null_mut::<libc::sigset_t>(),
            8usize,
        );
        // Hold nothing of tasker's: a pipe kept open here would keep a
        // reader of tasker's output waiting.
        close_all_but(pipe);
        let name = b"tasker-guard\0";
        libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
        let mut byte = 0u8;
        // The raw call: read(2) in libc is a cancellation point that reads
        // the calling thread's descriptor, which is tasker's. Nothing is
        // ever written; the read ends at EOF (with every signal at its
        // default action, it is never interrupted).
        while libc::syscall(libc::SYS_read, pipe, &mut byte as *mut u8, 1usize) > 0 {}
        for i in 0..CAPACITY {
            let target = (*table.add(i)).load(Ordering::SeqCst);
            if target != 0 {
                libc::syscall(libc::SYS_kill, target, libc::SIGKILL);
            }
        }
        libc::syscall(libc::SYS_exit, 0);
        unreachable_exit()
    }

    /// Never reached: exit(2) does not return.
    fn unreachable_exit() -> ! {
        loop {
            std::hint::spin_loop();
        }
    }

    /// The kernel's own sigaction record (rt_sigaction(2) takes this, not
    /// libc's): the guard must not run tasker's signal handlers.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }

    unsafe fn default_action(sig: i32) {
        let act = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            &act as *const KernelSigaction,
            std::ptr::null_mut::<KernelSigaction>(),
            8usize,
        );
    }

    /// Close every descriptor but `keep`: close_range(2) where the kernel
    /// has it (the clone path checked), one by one after a fork.
    unsafe fn close_all_but(keep: RawFd) {
        let keep = keep as u32;
        let below = keep == 0 || libc::syscall(libc::SYS_close_range, 0u32, keep - 1, 0u32) == 0;
        let above = libc::syscall(libc::SYS_close_range, keep + 1, u32::MAX, 0u32) == 0;
        if !(below && above) {
            for fd in 0..1024 {
                if fd != keep {
                    libc::syscall(libc::SYS_close, fd);
                }
            }
        }
    }
}

/// As PID 1 (a container's first process), orphans become tasker's
/// children, and nobody else would reap them: their zombies would keep a
/// step's process group alive. tasker then splits in two at start-up,
/// before any thread exists: the first process stays PID 1, reaps every
/// child that ends and passes on the signals sent to it with kill(2); the
/// second goes on as tasker. Signals the terminal sends reach both
/// already (they share the foreground group) and are not passed twice.
#[cfg(target_os = "linux")]
pub fn reap_as_init() {
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        return;
    }
    // SAFETY: plain signal-mask calls and fork, while tasker has a single
    // thread; the first process only makes system calls afterwards.
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

#[cfg(not(target_os = "linux"))]
pub fn reap_as_init() {}
