//! `.tasker/`: what tasker keeps beside a `tasks.toml` (up-to-date records,
//! the load index). Made on first use with a `.gitignore` that keeps it
//! out of version control; every file in it is written whole, atomically.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// `root/.tasker/sub`, made (with the `.gitignore`) when missing.
pub fn dir(root: &Path, sub: &str) -> std::io::Result<PathBuf> {
    let tasker = root.join(".tasker");
    match std::fs::create_dir(&tasker) {
        Ok(()) => write_atomically(&tasker.join(".gitignore"), b"*\n")?,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let dir = tasker.join(sub);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The bytes of `path` when it is a regular file: opened without blocking,
/// so that a FIFO (or a device) put in `.tasker/` never holds tasker. Any
/// other kind of file, or a failure, is none: the caller treats it as no
/// state at all.
pub fn read_regular(path: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let mut file = options.open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Write to a temporary file beside `path` (unique to this process and
/// call), flush it to disk, then rename it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    if let Some(dir) = path.parent() {
        sweep_once(dir);
    }
    result
}

/// Remove the temporary files that writers killed mid-write left in `dir`
/// (at most once per process and directory). A writer's temporary file
/// names its process id; a file whose process is still alive is being
/// written, and is left alone.
fn sweep_once(dir: &Path) {
    static SWEPT: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|p| p.into_inner());
        if swept.iter().any(|d| d == dir) {
            return;
        }
        swept.push(dir.to_path_buf());
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(writer_of) else {
            continue;
        };
        let gone = pid != me && !crate::process::alive(crate::stop::Proc { pid, group: false });
        if gone {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The process id in a temporary file's name, `.NAME.PID.N.tmp`.
fn writer_of(name: &str) -> Option<u32> {
    let body = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = body.rsplitn(3, '.');
    let counter = parts.next()?;
    let pid = parts.next()?;
    let _file = parts.next().filter(|f| !f.is_empty())?;
    counter.parse::<u64>().ok()?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_names_its_writer() {
        assert_eq!(writer_of(".build-abc.1234.7.tmp"), Some(1234));
        assert_eq!(writer_of(".load-index.99.0.tmp"), Some(99));
        assert_eq!(writer_of("build-abc.1234.7.tmp"), None);
        assert_eq!(writer_of(".build-abc.x.7.tmp"), None);
        assert_eq!(writer_of(".1234.7.tmp"), None);
        assert_eq!(writer_of(".gitignore"), None);
    }
}
