//! The platform half of process control: process groups and signals.
//! Everything else in tasker talks to processes through this module.

use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(3);

/// The exit status as tasker reports it: the code, or 128+N for a signal.
/// Open /dev/null on each of descriptors 0, 1 and 2 that is closed, and
/// ignore SIGPIPE: what a Rust program's runtime does before `main`, for
/// tasker's own entry point.
pub fn prepare_standard_streams() {
    #[cfg(unix)]
    // SAFETY: poll on a local array, open/dup2 of /dev/null and signal()
    // with SIG_IGN, before any thread exists.
    unsafe {
        let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        });
        if libc::poll(fds.as_mut_ptr(), 3, 0) >= 0 {
            for pfd in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 && null != pfd.fd {
                    libc::dup2(null, pfd.fd);
                    libc::close(null);
                }
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

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

    /// A pseudo-terminal: tasker's end and the run's end. Both are closed
    /// on exec (the run gets its end as stdin, stdout and stderr), and the
    /// terminal does not turn `\n` into `\r\n`, so lines read as written.
    pub fn open_pty() -> std::io::Result<(std::fs::File, std::fs::File)> {
        use std::os::fd::FromRawFd;
        let mut ours = -1;
        let mut theirs = -1;
        let mut size = libc::winsize {
            ws_row: 24,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors into the given ints; the
        // name pointer may be null and the termios pointer too.
        let rc = unsafe {
            libc::openpty(
                &mut ours,
                &mut theirs,
                std::ptr::null_mut(),
                // Mutable on macOS, const on Linux: a null of either.
                std::ptr::null_mut(),
                std::ptr::addr_of_mut!(size),
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just opened and are owned here.
        let (ours, theirs) = unsafe {
            (
                std::fs::File::from_raw_fd(ours),
                std::fs::File::from_raw_fd(theirs),
            )
        };
        for f in [&ours, &theirs] {
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on a descriptor we own.
            unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        {
            use std::os::fd::AsRawFd;
            // SAFETY: termios is plain data filled by tcgetattr.
            unsafe {
                let mut t: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(theirs.as_raw_fd(), &mut t) == 0 {
                    t.c_oflag &= !libc::ONLCR;
                    libc::tcsetattr(theirs.as_raw_fd(), libc::TCSANOW, &t);
                }
            }
        }
        Ok((ours, theirs))
    }

    /// Wait up to `timeout` until some of `files` can be read (data, end
    /// of stream or error); which ones can.
    pub fn wait_readable(files: &[&std::fs::File], timeout: std::time::Duration) -> Vec<bool> {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<libc::pollfd> = files
            .iter()
            .map(|f| libc::pollfd {
                fd: f.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if n <= 0 {
            return vec![false; fds.len()];
        }
        fds.iter()
            .map(|f| f.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0)
            .collect()
    }

    /// Make writes to `file` return WouldBlock rather than wait.
    pub fn set_nonblocking(file: &std::fs::File) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Write all of `bytes` to file descriptor `fd` (1 or 2), unbuffered.
    /// A descriptor a parent made non-blocking (shared with ssh or node)
    /// is waited on until it takes more, never skipped.
    pub fn write_fd(fd: i32, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            // SAFETY: write(2) from a valid slice to a descriptor that stays
            // open for the life of the process.
            let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            if n >= 0 {
                if n == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                bytes = &bytes[n as usize..];
                continue;
            }
            let err = std::io::Error::last_os_error();
            match err.kind() {
                std::io::ErrorKind::Interrupted => {}
                std::io::ErrorKind::WouldBlock => {
                    let mut pfd = libc::pollfd {
                        fd,
                        events: libc::POLLOUT,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd.
                    unsafe { libc::poll(&mut pfd, 1, 1000) };
                }
                _ => return Err(err),
            }
        }
        Ok(())
    }

    /// Write straight to file descriptor 1, unbuffered.
    pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
        write_fd(1, bytes)
    }

    /// Ask for a 1 MiB pipe buffer (Linux; elsewhere, or when refused,
    /// the pipe keeps its size).
    pub fn deepen_pipe(pipe: &std::fs::File) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: fcntl on a descriptor we own; failure is harmless.
            unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
        }
        #[cfg(not(target_os = "linux"))]
        let _ = pipe;
    }

    /// Ask tasker's own signal handling to stop everything, as SIGTERM.
    pub fn stop_self() {
        // SAFETY: kill(2) to this very process.
        unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
    }

    /// Whether tasker's stdin is a terminal whose foreground it holds.
    pub fn owns_terminal() -> bool {
        // SAFETY: plain queries on fd 0 and this process.
        unsafe { libc::isatty(0) == 1 && libc::tcgetpgrp(0) == libc::getpgrp() }
    }

    /// Run the child in a group of its own that holds the terminal's
    /// foreground: it reads the terminal and gets Ctrl-C like any program
    /// started by a shell, and tasker can still stop its whole tree.
    pub fn foreground(cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                with_sigttou_blocked(|| libc::tcsetpgrp(0, libc::getpid()));
                Ok(())
            });
        }
    }

    /// Follow a child that holds the terminal until it exits: when it is
    /// stopped there (Ctrl-Z), take the terminal back and stop tasker as
    /// well, so the shell sees its job stopped; when tasker is continued
    /// (`fg`), give the terminal back and continue the child.
    pub fn follow_job(pid: u32) {
        let Ok(pid) = i32::try_from(pid) else {
            return;
        };
        loop {
            // SAFETY: siginfo_t is plain data filled by waitid. WNOWAIT
            // leaves the child to whoever reaps it.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT,
                )
            };
            if rc != 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            if info.si_code != libc::CLD_STOPPED {
                return;
            }
            reclaim_terminal();
            // SAFETY: kill(2) on this process and on the child's group.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGSTOP);
                // Continued. In the foreground again (`fg`), the child gets
                // the terminal back; in the background (`bg`) it does not.
                if libc::tcgetpgrp(0) == libc::getpgrp() {
                    with_sigttou_blocked(|| libc::tcsetpgrp(0, pid));
                }
                libc::kill(-pid, libc::SIGCONT);
            }
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
        // SAFETY: plain calls on fd 0 and this process.
        with_sigttou_blocked(|| unsafe { libc::tcsetpgrp(0, libc::getpgrp()) });
    }

    /// A background group that sets the terminal's foreground gets
    /// SIGTTOU (which stops it) unless the signal is blocked.
    fn with_sigttou_blocked(f: impl FnOnce() -> i32) {
        // SAFETY: sigset_t is plain data initialised by sigemptyset; the
        // mask is restored before returning.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old);
            f();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }

    /// Make the child lead a new session whose controlling terminal is
    /// its stdin (the pty), so `ssh`, `sudo` and `read -p` treat it as a
    /// terminal. A session leader also leads its process group.
    pub fn take_terminal(cmd: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY as _, 0);
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

    fn signal(proc: Proc, sig: i32) -> bool {
        let Ok(pid) = i32::try_from(proc.pid) else {
            return false;
        };
        if pid <= 1 {
            return false;
        }
        let target = if proc.group { -pid } else { pid };
        // SAFETY: kill(2) has no memory effects; a stale pid yields ESRCH.
        unsafe { libc::kill(target, sig) == 0 }
    }

    pub fn terminate(proc: Proc) -> bool {
        signal(proc, libc::SIGTERM)
    }

    pub fn kill(proc: Proc) -> bool {
        signal(proc, libc::SIGKILL)
    }

    /// Whether something of `proc` still lives. Zombies do not count: a
    /// process whose parent died waits for the system's init to reap it,
    /// which some containers' init does only now and then.
    pub fn alive(proc: Proc) -> bool {
        signal(proc, 0) && !all_zombies(proc)
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
    wait_readable, write_fd, write_stdout,
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
    #[cfg(unix)]
    // SAFETY: tcflush on fd 0; harmless when it is not a terminal.
    unsafe {
        libc::tcflush(0, libc::TCIFLUSH);
    }
}

/// Read one line from the terminal on stdin, giving up when `stop` says
/// so (checked every 50 ms). `None`: stopped; `Some(None)`: end of input.
pub fn read_answer(stop: impl Fn() -> bool) -> Option<Option<String>> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    // SAFETY: fd 0 stays open for the life of the process; the File is
    // never dropped, so it is never closed. Read unbuffered: nothing typed
    // after the line is taken from the next reader.
    let stdin = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(0) });
    let mut line = Vec::new();
    loop {
        if stop() {
            return None;
        }
        if !wait_readable(&[&stdin], Duration::from_millis(50))[0] {
            continue;
        }
        let mut byte = [0u8; 1];
        match (&*stdin).read(&mut byte) {
            Ok(0) => {
                return Some(
                    (!line.is_empty()).then(|| String::from_utf8_lossy(&line).into_owned()),
                )
            }
            Ok(_) if byte[0] == b'\n' => {
                return Some(Some(String::from_utf8_lossy(&line).into_owned()))
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
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
