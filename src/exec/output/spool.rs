//! Where a grouped run's output waits until the run ends.

use super::*;

/// How much a spool holds in memory before it moves what it holds to a
/// file: most runs say far less, and never touch the disk.
const IN_MEMORY: usize = 64 * 1024;

/// Grouped output held until the run ends: in memory while it is small,
/// then in an unnamed temporary file, so that a run's output may be large
/// without tasker's memory growing with it.
pub struct Spool {
    file: Option<File>,
    /// Whether a file was asked for (once: a full or read-only disk is not
    /// asked again for every chunk).
    asked: bool,
    mem: Vec<u8>,
}

impl Spool {
    pub fn new() -> Spool {
        Spool {
            file: None,
            asked: false,
            mem: Vec::new(),
        }
    }

    /// Hold `bytes` after everything held so far. Past `IN_MEMORY`, what
    /// is held moves to a file, and what follows goes there while the file
    /// takes it; what the file does not take (a full disk) stays in
    /// memory for the rest of the run, so that nothing is held twice or
    /// out of order.
    pub fn write(&mut self, bytes: &[u8]) {
        if !self.asked && self.mem.len() + bytes.len() > IN_MEMORY {
            self.asked = true;
            if let Ok(mut f) = tempfile::tempfile() {
                let held = std::mem::take(&mut self.mem);
                let rest = write_some(&mut f, &held);
                self.mem.extend_from_slice(rest);
                self.file = Some(f);
            }
        }
        let rest = match &mut self.file {
            Some(f) if self.mem.is_empty() => write_some(f, bytes),
            _ => bytes,
        };
        self.mem.extend_from_slice(rest);
    }

    pub fn drain(&mut self, report: &Console, stream: Stream) {
        if let Some(f) = &mut self.file {
            if f.rewind().is_ok() {
                let mut buf = vec![0; CHUNK];
                while let Ok(n) = f.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    report.write(stream, &buf[..n]);
                }
            }
            let _ = f.set_len(0);
            let _ = f.rewind();
        }
        if !self.mem.is_empty() {
            report.write(stream, &self.mem);
            self.mem.clear();
        }
    }
}

/// Write what `file` takes of `bytes`; the rest is returned.
fn write_some<'b>(file: &mut File, mut bytes: &'b [u8]) -> &'b [u8] {
    while !bytes.is_empty() {
        match file.write(bytes) {
            Ok(0) => break,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    bytes
}
