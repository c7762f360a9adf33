//! `.tasker/`: what tasker keeps beside a `tasks.toml` (up-to-date records,
//! the load index). Made on first use with a `.gitignore` that keeps it
//! out of version control; every file in it is written whole, atomically.

use std::io::Write;
use std::path::{Path, PathBuf};

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

/// Write to a temporary file beside `path`, named `.NAME.PID.RANDOM.tmp`
/// (the sweep below reads the writer's process id from it), flush it to
/// disk, then rename it over `path`. A write that fails removes its
/// temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = path.parent().filter(|d| !d.as_os_str().is_empty());
    let result = (|| {
        let prefix = format!(".{name}.{}.", std::process::id());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".tmp");
        // As `File::create` makes a file (the umask applies), rather than
        // tempfile's owner-only default: the files of `.tasker/` read as
        // any other file of the project.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let mut temp = builder.tempfile_in(parent.unwrap_or(Path::new(".")))?;
        temp.write_all(bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(path).map(drop).map_err(|e| e.error)
    })();
    if let Some(dir) = parent {
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

/// The process id in a temporary file's name, `.NAME.PID.RANDOM.tmp`
/// (RANDOM is letters and digits: tempfile's, or the counter of a tasker
/// before it).
fn writer_of(name: &str) -> Option<u32> {
    let body = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = body.rsplitn(3, '.');
    let random = parts.next()?;
    let pid = parts.next()?;
    let _file = parts.next().filter(|f| !f.is_empty())?;
    if random.is_empty() || !random.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_temporary_file_names_its_writer() {
        assert_eq!(writer_of(".build-abc.1234.7.tmp"), Some(1234));
        assert_eq!(writer_of(".build-abc.1234.Xa9q2Z.tmp"), Some(1234));
        assert_eq!(writer_of(".build-abc.1234..tmp"), None);
        assert_eq!(writer_of(".build-abc.1234.a-b.tmp"), None);
        assert_eq!(writer_of(".load-index.99.0.tmp"), Some(99));
        assert_eq!(writer_of("build-abc.1234.7.tmp"), None);
        assert_eq!(writer_of(".build-abc.x.7.tmp"), None);
        assert_eq!(writer_of(".1234.7.tmp"), None);
        assert_eq!(writer_of(".gitignore"), None);
    }

    #[test]
    fn a_write_leaves_no_temporary_file_and_names_its_writer_while_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["record"]);
        // The name tempfile gives a temporary file is one the sweep reads.
        let temp = tempfile::Builder::new()
            .prefix(&format!(".record.{}.", std::process::id()))
            .suffix(".tmp")
            .tempfile_in(dir.path())
            .unwrap();
        let name = temp.path().file_name().unwrap().to_str().unwrap();
        assert_eq!(writer_of(name), Some(std::process::id()));
    }

    #[cfg(unix)]
    #[test]
    fn a_written_file_has_the_permissions_of_a_created_one() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("created");
        std::fs::File::create(&created).unwrap();
        let written = dir.path().join("written");
        write_atomically(&written, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
        assert_eq!(mode(&written), mode(&created));
    }
}
