//! Anonymous scratch files: grouped output held until its run ends, and
//! remote cache artifacts on their way in or out. Each is removed from
//! the directory as soon as it is open, so nothing is left behind
//! whatever happens to tasker.

use std::fs::File;

/// A temporary file that disappears when closed.
pub fn anonymous_file() -> std::io::Result<File> {
    let dir = std::env::temp_dir();
    let mut last = None;
    for attempt in 0..16u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = dir.join(format!("tasker-{}-{nanos}-{attempt}", std::process::id()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => {
                let _ = std::fs::remove_file(&path);
                return Ok(file);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no temporary file")))
}
