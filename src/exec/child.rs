//! A step's started processes, and the short way to start one.
//!
//! A step that is one program (no pipeline, no terminal of its own, not in
//! the terminal's foreground) is started with `posix_spawn` directly: its
//! argument and environment blocks are each one buffer of strings and one
//! array of pointers into it, where std's `Command` copied tasker's whole
//! environment into a map at every spawn. That is most steps of most runs,
//! and a graph of many short runs pays the start of each (bench/RESULTS.md,
//! fan-out). Pipelines, `pty` steps and foreground runs go through duct,
//! which wires several processes and runs code in the child.

use std::io;
use std::process::ExitStatus;
use std::time::Instant;

/// The processes of one step, however they were started.
pub(super) enum Child {
    Duct(Box<duct::Handle>),
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    Own(own::Spawned),
}

impl Child {
    pub(super) fn pids(&self) -> Vec<u32> {
        match self {
            Child::Duct(h) => h.pids(),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            Child::Own(s) => vec![s.pid()],
        }
    }

    /// Wait until the step's processes ended.
    pub fn wait(&self) -> io::Result<ExitStatus> {
        match self {
            Child::Duct(h) => h.wait().map(|o| o.status),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            Child::Own(s) => s.wait(),
        }
    }

    /// The status, if the step's processes ended already.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        match self {
            Child::Duct(h) => h.try_wait().map(|o| o.map(|o| o.status)),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            Child::Own(s) => s.try_wait(),
        }
    }

    /// Wait, but not beyond `deadline` (then `None`).
    pub fn wait_deadline(&self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
        match self {
            Child::Duct(h) => h.wait_deadline(deadline).map(|o| o.map(|o| o.status)),
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            Child::Own(s) => s.wait_deadline(deadline),
        }
    }
}

/// Whether this platform has the short way.
pub(super) const OWN_SPAWN: bool = cfg!(all(target_os = "linux", target_env = "gnu"));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) use own::spawn_one;

/// Where a child's standard streams come from: `None` inherits tasker's
/// own.
#[cfg_attr(not(all(target_os = "linux", target_env = "gnu")), allow(dead_code))]
pub(super) struct Streams<'a> {
    /// `Some(None)`: /dev/null.
    pub stdin: Option<Option<&'a std::fs::File>>,
    pub stdout: Option<&'a std::fs::File>,
    pub stderr: Option<&'a std::fs::File>,
    /// Variables set over the step's environment.
    pub vars: &'static [(&'static str, &'static str)],
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod own {
    use std::ffi::CString;
    use std::io;
    use std::os::fd::{AsRawFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::process::ExitStatusExt;
    use std::path::Path;
    use std::process::ExitStatus;
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use rustix::process::{Pid, WaitOptions};

    /// A process started by `spawn_one`, reaped at most once.
    pub struct Spawned {
        pid: Pid,
        status: Mutex<Option<ExitStatus>>,
    }

    /// `NUL`-terminated strings laid end to end, and pointers to each,
    /// ending with a null pointer: the `argv` and `envp` of execve(2).
    struct Block {
        bytes: Vec<u8>,
        ends: Vec<usize>,
    }

    impl Block {
        fn with_capacity(bytes: usize, count: usize) -> Block {
            Block {
                bytes: Vec::with_capacity(bytes),
                ends: Vec::with_capacity(count),
            }
        }

        fn push(&mut self, parts: &[&[u8]]) {
            for part in parts {
                self.bytes.extend_from_slice(part);
            }
            self.bytes.push(0);
            self.ends.push(self.bytes.len());
        }

        /// Pointers into `bytes`, valid while `self` is neither moved nor
        /// changed.
        fn pointers(&self) -> Vec<*mut libc::c_char> {
            let mut start = 0;
            let mut out = Vec::with_capacity(self.ends.len() + 1);
            for &end in &self.ends {
                out.push(self.bytes[start..].as_ptr() as *mut libc::c_char);
                start = end;
            }
            out.push(std::ptr::null_mut());
            out
        }
    }

    /// Closes what `posix_spawn` needs, on every way out.
    struct Attrs {
        attr: libc::posix_spawnattr_t,
        actions: libc::posix_spawn_file_actions_t,
    }

    impl Drop for Attrs {
        fn drop(&mut self) {
            // SAFETY: both were initialised in `spawn_one` before `Attrs`
            // was made, and are destroyed once.
            unsafe {
                libc::posix_spawn_file_actions_destroy(&mut self.actions);
                libc::posix_spawnattr_destroy(&mut self.attr);
            }
        }
    }

    fn check(rc: libc::c_int) -> io::Result<()> {
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    }

    /// The argument and environment blocks of a spawn: `argv` as it is,
    /// and `env` with `extra` over it.
    fn blocks(
        argv: &[String],
        env: crate::context::EnvView,
        extra: &[(&str, &str)],
    ) -> (Block, Block) {
        let mut args = Block::with_capacity(argv.iter().map(|a| a.len() + 1).sum(), argv.len());
        for arg in argv {
            args.push(&[arg.as_bytes()]);
        }
        let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
        let mut vars =
            Block::with_capacity(size + 64, env.base.len() + env.added.len() + extra.len());
        for (key, value) in env.iter() {
            if !extra.iter().any(|(k, _)| *k == key) {
                vars.push(&[key.as_bytes(), b"=", value.as_bytes()]);
            }
        }
        for (key, value) in extra {
            vars.push(&[key.as_bytes(), b"=", value.as_bytes()]);
        }
        (args, vars)
    }

    /// Start `program` with `argv` (its first word is what the process sees
    /// as its name), in `dir`, with exactly `env` (and `streams.vars` over
    /// it), in
    /// a process group of its own when `new_group`. Signals come as a
    /// program expects them: none blocked, SIGPIPE at its default.
    pub fn spawn_one(
        program: &Path,
        argv: &[String],
        dir: &Path,
        env: crate::context::EnvView,
        streams: &super::Streams,
        new_group: bool,
    ) -> io::Result<Spawned> {
        let nul = |_| io::Error::from(io::ErrorKind::InvalidInput);
        let program = CString::new(program.as_os_str().as_bytes()).map_err(nul)?;
        let dir = CString::new(dir.as_os_str().as_bytes()).map_err(nul)?;
        let (args, vars) = blocks(argv, env, streams.vars);
        let argv = args.pointers();
        let envp = vars.pointers();

        // SAFETY: the attribute objects are initialised before use and
        // destroyed by `Attrs`; every pointer handed to posix_spawn points
        // into a NUL-terminated buffer that outlives the call; the
        // descriptors are open files borrowed for the call.
        unsafe {
            let mut attrs: Attrs = std::mem::zeroed();
            if let Err(e) = check(libc::posix_spawnattr_init(&mut attrs.attr)) {
                std::mem::forget(attrs);
                return Err(e);
            }
            if let Err(e) = check(libc::posix_spawn_file_actions_init(&mut attrs.actions)) {
                libc::posix_spawnattr_destroy(&mut attrs.attr);
                std::mem::forget(attrs);
                return Err(e);
            }
            let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            check(libc::posix_spawnattr_setsigmask(&mut attrs.attr, &empty))?;
            // tasker ignores SIGPIPE for itself; the program gets it back.
            let mut default: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut default);
            libc::sigaddset(&mut default, libc::SIGPIPE);
            check(libc::posix_spawnattr_setsigdefault(
                &mut attrs.attr,
                &default,
            ))?;
            if new_group {
                flags |= libc::POSIX_SPAWN_SETPGROUP;
                check(libc::posix_spawnattr_setpgroup(&mut attrs.attr, 0))?;
            }
            check(libc::posix_spawnattr_setflags(
                &mut attrs.attr,
                flags as libc::c_short,
            ))?;
            let dup = |actions: &mut libc::posix_spawn_file_actions_t, from: RawFd, to| {
                check(libc::posix_spawn_file_actions_adddup2(actions, from, to))
            };
            match streams.stdin {
                None => {}
                Some(None) => check(libc::posix_spawn_file_actions_addopen(
                    &mut attrs.actions,
                    0,
                    c"/dev/null".as_ptr(),
                    libc::O_RDONLY,
                    0,
                ))?,
                Some(Some(f)) => dup(&mut attrs.actions, f.as_raw_fd(), 0)?,
            }
            if let Some(f) = streams.stdout {
                dup(&mut attrs.actions, f.as_raw_fd(), 1)?;
            }
            if let Some(f) = streams.stderr {
                dup(&mut attrs.actions, f.as_raw_fd(), 2)?;
            }
            check(libc::posix_spawn_file_actions_addchdir_np(
                &mut attrs.actions,
                dir.as_ptr(),
            ))?;
            let mut pid: libc::pid_t = 0;
            check(libc::posix_spawn(
                &mut pid,
                program.as_ptr(),
                &attrs.actions,
                &attrs.attr,
                argv.as_ptr(),
                envp.as_ptr(),
            ))?;
            Ok(Spawned {
                pid: Pid::from_raw(pid).ok_or(io::ErrorKind::InvalidData)?,
                status: Mutex::new(None),
            })
        }
    }

    impl Spawned {
        pub fn pid(&self) -> u32 {
            self.pid.as_raw_nonzero().get().unsigned_abs()
        }

        fn reap(&self, options: WaitOptions) -> io::Result<Option<ExitStatus>> {
            let mut done = self.status.lock().unwrap();
            if let Some(status) = *done {
                return Ok(Some(status));
            }
            loop {
                match rustix::process::waitpid(Some(self.pid), options) {
                    Ok(Some((_, raw))) => {
                        let status = ExitStatus::from_raw(raw.as_raw());
                        *done = Some(status);
                        return Ok(Some(status));
                    }
                    Ok(None) => return Ok(None),
                    Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }

        pub fn wait(&self) -> io::Result<ExitStatus> {
            loop {
                if let Some(status) = self.reap(WaitOptions::empty())? {
                    return Ok(status);
                }
            }
        }

        pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
            self.reap(WaitOptions::NOHANG)
        }

        /// Wait with a bound: poll(2) on a pidfd, which becomes readable as
        /// the process ends; on a kernel without pidfds, short naps.
        pub fn wait_deadline(&self, deadline: Instant) -> io::Result<Option<ExitStatus>> {
            use rustix::event::{PollFd, PollFlags, Timespec};
            let pidfd =
                rustix::process::pidfd_open(self.pid, rustix::process::PidfdFlags::empty()).ok();
            loop {
                if let Some(status) = self.try_wait()? {
                    return Ok(Some(status));
                }
                let now = Instant::now();
                if now >= deadline {
                    return Ok(None);
                }
                let left = deadline - now;
                match &pidfd {
                    Some(fd) => {
                        let left = Timespec::try_from(left.max(Duration::from_millis(1))).ok();
                        let _ = rustix::event::poll(
                            &mut [PollFd::new(fd, PollFlags::IN)],
                            left.as_ref(),
                        );
                    }
                    None => std::thread::sleep(left.min(Duration::from_millis(5))),
                }
            }
        }
    }
}
