//! The platform half of process control: process groups and signals.
//! Everything else in tasker talks to processes through this module.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// Open /dev/null on each of descriptors 0, 1 and 2 that is closed, and
/// ignore SIGPIPE: what a Rust program's runtime does before `main`, for
/// tasker's own entry point.
pub fn prepare_standard_streams() {
    #[cfg(unix)]
    {
        use std::os::fd::{AsRawFd, IntoRawFd};
        for fd in [
            rustix::stdio::stdin(),
            rustix::stdio::stdout(),
            rustix::stdio::stderr(),
        ] {
            if rustix::io::fcntl_getfd(fd) != Err(rustix::io::Errno::BADF) {
                continue;
            }
            // A new descriptor is the lowest one free, and those below
            // `fd` are open by now: this is `fd`. Not closed on exec: it
            // is a child's as much as tasker's.
            let null = std::fs::File::options()
                .read(true)
                .write(true)
                .open("/dev/null");
            if let Ok(null) = null {
                if null.as_raw_fd() == fd.as_raw_fd() {
                    let _ = rustix::io::fcntl_setfd(&null, rustix::io::FdFlags::empty());
                    let _ = null.into_raw_fd();
                }
            }
        }
        // SAFETY: SIG_IGN runs no code of tasker's, and nothing else sets
        // SIGPIPE's disposition (this runs before any thread exists).
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    }
}

/// The exit status as tasker reports it: the code, or 128+N for a signal.
pub fn status_code(status: ExitStatus) -> i32 {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return 128 + signal;
        }
    }
    status.code().unwrap_or(1)
}

/// Why a process that ended did not succeed, from its status as the
/// system gives it: an exit code, or a signal (never guessed from 128+N).
pub fn failure(status: ExitStatus) -> Option<crate::outcome::Reason> {
    use crate::outcome::Reason;
    if status.success() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return Some(Reason::Signal(signal));
        }
    }
    Some(Reason::Exit(status.code().unwrap_or(1)))
}

pub use crate::stop::Proc;

#[cfg(unix)]
mod imp {
    use crate::stop::Proc;
    use rustix::process::{Pid, Signal};
    use std::os::fd::AsFd;

    /// A pseudo-terminal: tasker's end and the run's end. Both are closed
    /// on exec (the run gets its end as stdin, stdout and stderr), and the
    /// terminal does not turn `\n` into `\r\n`, so lines read as written.
    pub fn open_pty() -> std::io::Result<(std::fs::File, std::fs::File)> {
        use rustix::termios::{OutputModes, Winsize};
        let size = Winsize {
            ws_row: 24,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = rustix_openpty::openpty(None, Some(&size))?;
        if let Ok(mut modes) = rustix::termios::tcgetattr(&pty.user) {
            modes.output_modes.remove(OutputModes::ONLCR);
            let _ = rustix::termios::tcsetattr(
                &pty.user,
                rustix::termios::OptionalActions::Now,
                &modes,
            );
        }
        Ok((pty.controller.into(), pty.user.into()))
    }

    /// Wait up to `timeout` until some of `files` can be read (data, end
    /// of stream or error); which ones can. A descriptor the system cannot
    /// poll counts as readable: the read that follows says what it holds.
    pub fn wait_readable<F: AsFd>(files: &[&F], timeout: std::time::Duration) -> Vec<bool> {
        use rustix::event::{PollFd, PollFlags};
        let mut fds: Vec<PollFd> = files
            .iter()
            .map(|f| PollFd::new(*f, PollFlags::IN))
            .collect();
        let timeout = rustix::event::Timespec::try_from(timeout).ok();
        if !rustix::event::poll(&mut fds, timeout.as_ref()).is_ok_and(|n| n > 0) {
            return vec![false; fds.len()];
        }
        let ready = PollFlags::IN | PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL;
        fds.iter().map(|f| f.revents().intersects(ready)).collect()
    }

    /// Make writes to `file` return WouldBlock rather than wait.
    pub fn set_nonblocking(file: &std::fs::File) -> std::io::Result<()> {
        use rustix::fs::OFlags;
        let flags = rustix::fs::fcntl_getfl(file)?;
        rustix::fs::fcntl_setfl(file, flags | OFlags::NONBLOCK)?;
        Ok(())
    }

    /// Write all of `bytes` to `fd`, unbuffered. A descriptor a parent made
    /// non-blocking (shared with ssh or node) is waited on until it takes
    /// more, never skipped.
    fn write_all_to(fd: std::os::fd::BorrowedFd, mut bytes: &[u8]) -> std::io::Result<()> {
        use rustix::io::Errno;
        while !bytes.is_empty() {
            match rustix::io::write(fd, bytes) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(Errno::INTR) => {}
                Err(Errno::AGAIN) => {
                    use rustix::event::{PollFd, PollFlags};
                    let wait = rustix::event::Timespec {
                        tv_sec: 1,
                        tv_nsec: 0,
                    };
                    let _ =
                        rustix::event::poll(&mut [PollFd::new(&fd, PollFlags::OUT)], Some(&wait));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Write straight to file descriptor 1, unbuffered.
    pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
        write_all_to(rustix::stdio::stdout(), bytes)
    }

    /// Write straight to file descriptor 2, unbuffered.
    pub fn write_stderr(bytes: &[u8]) -> std::io::Result<()> {
        write_all_to(rustix::stdio::stderr(), bytes)
    }

    /// Ask for a 1 MiB pipe buffer (Linux; elsewhere, or when refused,
    /// the pipe keeps its size).
    pub fn deepen_pipe(pipe: &std::fs::File) {
        #[cfg(target_os = "linux")]
        let _ = rustix::pipe::fcntl_setpipe_size(pipe, 1 << 20);
        #[cfg(not(target_os = "linux"))]
        let _ = pipe;
    }

    /// Ask tasker's own signal handling to stop everything, as SIGTERM.
    pub fn stop_self() {
        let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::TERM);
    }

    /// Whether tasker's stdin is a terminal whose foreground it holds.
    pub fn owns_terminal() -> bool {
        let stdin = rustix::stdio::stdin();
        rustix::termios::isatty(stdin)
            && rustix::termios::tcgetpgrp(stdin).ok() == Some(rustix::process::getpgrp())
    }

    /// Run the child in a group of its own that holds the terminal's
    /// foreground: it reads the terminal and gets Ctrl-C like any program
    /// started by a shell, and tasker can still stop its whole tree.
    pub fn foreground(cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        // SAFETY: between fork and exec the closure makes system calls
        // only (rustix's, and the signal mask's), and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                let _ = rustix::process::setpgid(None, None);
                let me = rustix::process::getpid();
                with_sigttou_blocked(|| rustix::termios::tcsetpgrp(rustix::stdio::stdin(), me));
                Ok(())
            });
        }
    }

    /// Follow a child that holds the terminal until it exits: when it is
    /// stopped there (Ctrl-Z), take the terminal back and stop tasker as
    /// well, so the shell sees its job stopped; when tasker is continued
    /// (`fg`), give the terminal back and continue the child.
    pub fn follow_job(pid: u32) {
        use rustix::process::{WaitId, WaitIdOptions};
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            return;
        };
        loop {
            // WNOWAIT leaves the child to whoever reaps it.
            let options = WaitIdOptions::EXITED | WaitIdOptions::STOPPED | WaitIdOptions::NOWAIT;
            let status = match rustix::process::waitid(WaitId::Pid(pid), options) {
                Ok(Some(status)) => status,
                Err(rustix::io::Errno::INTR) => continue,
                _ => return,
            };
            if !status.stopped() {
                return;
            }
            reclaim_terminal();
            let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::STOP);
            // Continued. In the foreground again (`fg`), the child gets the
            // terminal back; in the background (`bg`) it does not.
            let stdin = rustix::stdio::stdin();
            if rustix::termios::tcgetpgrp(stdin).ok() == Some(rustix::process::getpgrp()) {
                with_sigttou_blocked(|| rustix::termios::tcsetpgrp(stdin, pid));
            }
            let _ = rustix::process::kill_process_group(pid, Signal::CONT);
        }
    }

    /// The signal that ended a process, when it is the user's interrupt
    /// typed at the terminal (SIGINT or SIGQUIT).
    pub fn interrupted_by(status: std::process::ExitStatus) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        status
            .signal()
            .filter(|&s| s == libc::SIGINT || s == libc::SIGQUIT)
    }

    /// Take the terminal's foreground back after a `foreground` child.
    pub fn reclaim_terminal() {
        let me = rustix::process::getpgrp();
        with_sigttou_blocked(|| rustix::termios::tcsetpgrp(rustix::stdio::stdin(), me));
    }

    /// A background group that sets the terminal's foreground gets
    /// SIGTTOU (which stops it) unless the signal is blocked. The calling
    /// thread's mask only: it is restored before returning. A terminal
    /// that refuses (gone, or not ours) leaves things as they are.
    fn with_sigttou_blocked(set_foreground: impl FnOnce() -> rustix::io::Result<()>) {
        // SAFETY: sigset_t is plain data that sigemptyset initialises, and
        // pthread_sigmask changes this thread's mask only (async-signal-
        // safe, so also after a fork).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            let _ = set_foreground();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }

    /// Make the child lead a new session whose controlling terminal is
    /// its stdin (the pty), so `ssh`, `sudo` and `read -p` treat it as a
    /// terminal. A session leader also leads its process group.
    pub fn take_terminal(cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec the closure makes two system calls
        // and allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                let _ = rustix::process::setsid();
                let _ = rustix::process::ioctl_tiocsctty(rustix::stdio::stdin());
                Ok(())
            });
        }
    }

    /// Put the child in a group of its own (so tasker can stop its whole
    /// tree) and give it the program name it was called by as argv[0].
    pub fn configure(cmd: &mut std::process::Command, new_group: bool, arg0: &str) {
        use std::os::unix::process::CommandExt;
        cmd.arg0(arg0);
        if new_group {
            cmd.process_group(0);
        }
    }

    /// Send `sig` to `proc` (its group when it leads one); `None` sends
    /// nothing and only asks whether it exists. Never to pid 1 or to every
    /// process; a stale pid yields ESRCH.
    fn signal(proc: Proc, sig: Option<Signal>) -> bool {
        use rustix::process as p;
        let Some(pid) = i32::try_from(proc.pid)
            .ok()
            .filter(|&pid| pid > 1)
            .and_then(Pid::from_raw)
        else {
            return false;
        };
        match (proc.group, sig) {
            (true, Some(sig)) => p::kill_process_group(pid, sig),
            (true, None) => p::test_kill_process_group(pid),
            (false, Some(sig)) => p::kill_process(pid, sig),
            (false, None) => p::test_kill_process(pid),
        }
        .is_ok()
    }

    pub fn terminate(proc: Proc) -> bool {
        signal(proc, Some(Signal::TERM))
    }

    pub fn kill(proc: Proc) -> bool {
        signal(proc, Some(Signal::KILL))
    }

    /// Whether something of `proc` still lives. Zombies do not count: a
    /// process whose parent died waits for the system's init to reap it,
    /// which some containers' init does only now and then.
    pub fn alive(proc: Proc) -> bool {
        signal(proc, None) && !all_zombies(proc)
    }

    /// Whether every process of `proc` is a zombie (Linux: read from
    /// /proc; elsewhere never said).
    fn all_zombies(proc: Proc) -> bool {
        if !cfg!(target_os = "linux") {
            return false;
        }
        // (state, process group) of a process, from /proc/PID/stat: the
        // fields after the command name, which may hold anything but ')'.
        let stat = |pid: &str| -> Option<(u8, u32)> {
            let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
            let after = text.iter().rposition(|&b| b == b')')? + 2;
            let mut fields = text.get(after..)?.split(|&b| b == b' ');
            let state = *fields.next()?.first()?;
            let group = std::str::from_utf8(fields.nth(1)?).ok()?.parse().ok()?;
            Some((state, group))
        };
        if !proc.group {
            return stat(&proc.pid.to_string()).is_some_and(|(state, _)| state == b'Z');
        }
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return false;
        };
        !dir.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.bytes().all(|b| b.is_ascii_digit())
                && stat(&name).is_some_and(|(state, group)| group == proc.pid && state != b'Z')
        })
    }
}

#[cfg(windows)]
mod imp {
    use crate::stop::Proc;

    pub fn configure(_cmd: &mut std::process::Command, _new_group: bool, _arg0: &str) {}

    pub fn terminate(proc: Proc) -> bool {
        kill(proc)
    }

    pub fn kill(proc: Proc) -> bool {
        std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &proc.pid.to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn alive(_proc: Proc) -> bool {
        false
    }
}

pub use imp::{
    alive, configure, deepen_pipe, follow_job, foreground, interrupted_by, kill, open_pty,
    owns_terminal, reclaim_terminal, set_nonblocking, stop_self, take_terminal, terminate,
    wait_readable, write_stderr, write_stdout,
};

/// Make sure nothing of `proc` is left: SIGTERM, then SIGKILL after the
/// grace period. Returns at once when nothing is left.
pub fn reap(proc: Proc) {
    reap_within(proc, GRACE);
}

/// `reap` with a grace period of its own.
pub fn reap_within(proc: Proc, grace: Duration) {
    if !proc.group || !alive(proc) {
        return;
    }
    terminate(proc);
    let deadline = Instant::now() + grace;
    while alive(proc) {
        if Instant::now() >= deadline {
            kill(proc);
            // SIGKILL cannot be caught; wait briefly until the group is
            // gone, so that nothing is left when tasker exits. (A group of
            // zombies nobody reaps stays "alive": the bound ends the wait.)
            let until = Instant::now() + Duration::from_secs(1);
            while alive(proc) && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// How a command whose output tasker reads whole (an `sh` var) ended.
pub enum Captured {
    Exited(ExitStatus, Vec<u8>),
    /// A stop signal came first; the command was stopped.
    Stopped(i32),
}

/// Run `cmd` in a process group of its own and read its stdout whole, as
/// a step's: its leftovers are stopped when it exits, its pipe is drained
/// for at most a second after that, and a stop signal stops it at once.
pub fn run_captured(mut cmd: std::process::Command) -> std::io::Result<Captured> {
    use std::io::Read;
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn()?;
    let proc = Proc {
        pid: child.id(),
        group: cfg!(unix),
    };
    crate::stop::track(proc);
    let pipe = std::fs::File::from(std::os::fd::OwnedFd::from(
        child.stdout.take().expect("stdout is piped"),
    ));
    let mut pipe = Some(pipe);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut status = None;
    let mut exited_at: Option<Instant> = None;
    let result = loop {
        if let Some(sig) = crate::stop::requested() {
            reap(proc);
            let _ = child.wait();
            break Captured::Stopped(sig);
        }
        if status.is_none() {
            status = child.try_wait()?;
            if status.is_some() {
                exited_at = Some(Instant::now());
                terminate(proc);
            }
        }
        let drained = exited_at.is_some_and(|t| t.elapsed() >= DRAIN);
        let Some(file) = pipe.as_mut().filter(|_| !drained) else {
            match status {
                Some(status) => break Captured::Exited(status, out),
                // The pipe closed but the command goes on: wait for it
                // in short steps, so that a stop request still ends it.
                None => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            }
        };
        if wait_readable(&[file], Duration::from_millis(50))[0] {
            match file.read(&mut buf) {
                Ok(0) => pipe = None,
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => pipe = None,
            }
        }
    };
    reap(proc);
    crate::stop::forget(proc);
    Ok(result)
}

/// How long a step's output is read after its main process exited.
pub const DRAIN: Duration = Duration::from_secs(1);

/// Drop what was typed on the terminal and not yet read.
pub fn discard_typed_input() {
    // Harmless when stdin is not a terminal.
    #[cfg(unix)]
    let _ = rustix::termios::tcflush(
        rustix::stdio::stdin(),
        rustix::termios::QueueSelector::IFlush,
    );
}

/// Read one line from the terminal on stdin, giving up when `stop` says
/// so (checked every 50 ms). `None`: stopped; `Some(None)`: end of input.
/// Read unbuffered: nothing typed after the line is taken from the next
/// reader.
pub fn read_answer(stop: impl Fn() -> bool) -> Option<Option<String>> {
    let stdin = rustix::stdio::stdin();
    let mut line = Vec::new();
    loop {
        if stop() {
            return None;
        }
        if !wait_readable(&[&stdin], Duration::from_millis(50))[0] {
            continue;
        }
        let mut byte = [0u8; 1];
        match rustix::io::read(stdin, &mut byte) {
            Ok(0) => {
                return Some(
                    (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()),
                )
            }
            Ok(_) if byte[0] == b'\n' => {
                return Some(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            Ok(_) => line.push(byte[0]),
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return Some(None),
        }
    }
}

/// The file a program name stands for: a path (relative to `dir`) that
/// exists, or the first executable of that name on `path` (the PATH the
/// step will get). Names found on a PATH are remembered for the rest of
/// the invocation: a graph of many runs searches each name once.
pub fn resolve_program(
    program: &str,
    dir: &std::path::Path,
    path: Option<&str>,
) -> Option<std::path::PathBuf> {
    use std::collections::HashMap;
    use std::path::PathBuf;
    use std::sync::{Mutex, OnceLock};
    static FOUND: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();

    if program.contains('/') {
        let full = dir.join(program);
        return full.exists().then_some(full);
    }
    let path = path?;
    // A relative PATH entry depends on the directory: not remembered.
    let cacheable = std::env::split_paths(path).all(|d| d.is_absolute());
    let key = (program.to_string(), path.to_string());
    let found = FOUND.get_or_init(Mutex::default);
    if cacheable {
        if let Some(hit) = found.lock().ok()?.get(&key) {
            return Some(hit.clone());
        }
    }
    // An empty or relative entry of `path` is read from `dir`, where the
    // step runs.
    let hit = which::which_in(program, Some(path), dir).ok()?;
    if cacheable {
        if let Ok(mut map) = found.lock() {
            map.insert(key, hit.clone());
        }
    }
    Some(hit)
}

/// Whether the file starts as a program the system runs itself (`#!` or
/// an ELF header), not as a script `sh` must read.
pub fn has_binary_magic(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    let n = std::fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    head[..n].starts_with(b"#!") || head[..n] == *b"\x7fELF"
}

pub fn is_executable(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}
