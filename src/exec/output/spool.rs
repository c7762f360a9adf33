//! Where a grouped run's output waits until the run ends.

use super::*;

/// A file that holds grouped output until the run ends.
pub struct Spool {
    file: Option<File>,
    mem: Vec<u8>,
}

impl Spool {
    pub fn new() -> Spool {
        Spool {
            file: crate::scratch::anonymous_file().ok(),
            mem: Vec::new(),
        }
    }

    /// Hold `bytes` after everything held so far: in the file while it
    /// takes them, then (a full disk) in memory for the rest of the run,
    /// so that nothing is held twice or out of order.
    pub fn write(&mut self, mut bytes: &[u8]) {
        if self.mem.is_empty() {
            if let Some(f) = &mut self.file {
                while !bytes.is_empty() {
                    match f.write(bytes) {
                        Ok(0) => break,
                        Ok(n) => bytes = &bytes[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
        }
        self.mem.extend_from_slice(bytes);
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
