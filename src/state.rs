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
    result
}
