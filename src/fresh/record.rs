//! The record of a run's last success: one file per run identity under
//! `.tasker/fresh/`, written whole to a temporary file and renamed over the
//! old one, so that a reader (another tasker, or this one after a crash)
//! sees the old record or the new one, never half of either.
//!
//! The file is a JSON header line (format, run, fingerprint, parts, the
//! hash of each key of the definition, how the success came about and the
//! values the run captured and extracted), then the source files in a
//! binary form that is read without a parse step: the number of files
//! (u32), then per file its content hash (32 bytes), a flag byte (1: a
//! trusted stat follows), the stat (size, mtime s and ns, ctime s and ns,
//! inode, device: seven 8-byte numbers), the path's length (u32) and the
//! path; all numbers little-endian. A last `end\n` tells a whole file from
//! a truncated one. A tree of 20,000 files is read on every check: reading
//! its record is one read(2) and a walk over the bytes, with no allocation
//! per file.

use crate::state::write_atomically;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fingerprint::{Digest, Parts, FORMAT};
use crate::glob::Stat;

/// How a recorded success came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum How {
    /// Its steps ran here (or on a worker).
    Ran,
    /// Its outputs, output and values came from the remote cache.
    Restored,
}

impl How {
    pub fn name(self) -> &'static str {
        match self {
            How::Ran => "ran",
            How::Restored => "restored",
        }
    }
}

/// One source file in a record: its path relative to the root, the hash
/// of its content, and its `Stat` when that can be trusted next time.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub hash: Digest,
    pub stat: Option<Stat>,
}

#[derive(Clone, Debug)]
pub struct Record {
    pub format: String,
    /// The run's name, for a human reading `.tasker/`.
    pub run: String,
    pub fingerprint: Digest,
    pub parts: Parts,
    /// Each fingerprinted key of the task's definition, with its hash: `-v`
    /// names the key that changed.
    pub definition: Vec<(String, Digest)>,
    /// How the success came about.
    pub how: How,
    /// What the run captured and extracted (`tasks.NAME` after a skip).
    pub values: BTreeMap<String, String>,
    pub files: Vec<Entry>,
}

/// The source files of a record read from disk: the file's bytes, read
/// entry by entry in order (checked whole when the record was read), so
/// that nothing is copied out per file.
#[derive(Debug, Default)]
pub struct Files {
    bytes: Vec<u8>,
    /// Where the first entry starts.
    start: usize,
    count: usize,
}

/// One entry of `Files`.
#[derive(Clone, Copy, Debug)]
pub struct FileRef<'a> {
    /// The path, as bytes (UTF-8, as written).
    pub path: &'a [u8],
    pub hash: Digest,
    pub stat: Option<Stat>,
}

impl Files {
    /// The entries in order (by path).
    pub fn iter(&self) -> impl Iterator<Item = FileRef<'_>> {
        let mut r = Reader {
            bytes: &self.bytes,
            at: self.start,
        };
        (0..self.count).map_while(move |_| r.entry())
    }
}

/// A record as read back: the header's fields and a view of its files.
#[derive(Debug)]
pub struct Recorded {
    pub fingerprint: Digest,
    pub parts: Parts,
    pub definition: Vec<(String, Digest)>,
    pub how: How,
    pub values: BTreeMap<String, String>,
    pub files: Files,
}

/// The header line.
#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    run: String,
    fingerprint: Digest,
    parts: Parts,
    definition: Vec<(String, Digest)>,
    how: How,
    values: BTreeMap<String, String>,
}

impl Record {
    pub fn new(
        run: String,
        fingerprint: Digest,
        parts: Parts,
        definition: Vec<(String, Digest)>,
        files: Vec<Entry>,
    ) -> Record {
        Record {
            format: FORMAT.to_string(),
            run,
            fingerprint,
            parts,
            definition,
            how: How::Ran,
            values: BTreeMap::new(),
            files,
        }
    }
}

/// The record at `path`. Missing, unreadable, truncated, foreign or of an
/// older format: none, and the run happens.
pub fn read(path: &Path) -> Option<Recorded> {
    let bytes = crate::state::read_regular(path)?;
    let end = memchr::memchr(b'\n', &bytes)?;
    let header: Header = serde_json::from_slice(&bytes[..end]).ok()?;
    if header.format != FORMAT {
        return None;
    }
    let files = parse_files(bytes, end + 1)?;
    Some(Recorded {
        fingerprint: header.fingerprint,
        parts: header.parts,
        definition: header.definition,
        how: header.how,
        values: header.values,
        files,
    })
}

/// The binary part of a record, from `at` to the end of `bytes`: checked
/// whole here (a truncated or damaged list is no record), read in order
/// later.
fn parse_files(bytes: Vec<u8>, at: usize) -> Option<Files> {
    let mut r = Reader { bytes: &bytes, at };
    let count = r.u32()? as usize;
    // Each entry takes at least 37 bytes: a count past that is damage.
    if count > bytes.len() / 37 {
        return None;
    }
    let start = r.at;
    for _ in 0..count {
        r.entry()?;
    }
    if r.take(4)? != b"end\n" || r.at != bytes.len() {
        return None;
    }
    Some(Files {
        bytes,
        start,
        count,
    })
}

/// A cursor over a record's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let piece = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(piece)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// The next file entry.
    fn entry(&mut self) -> Option<FileRef<'a>> {
        let hash = Digest(self.take(32)?.try_into().ok()?);
        let stat = match self.take(1)?[0] {
            0 => None,
            1 => {
                let mut n = [0u64; 7];
                for field in &mut n {
                    *field = self.u64()?;
                }
                Some(Stat {
                    size: n[0],
                    mtime: (n[1] as i64, n[2] as i64),
                    ctime: (n[3] as i64, n[4] as i64),
                    inode: n[5],
                    device: n[6],
                })
            }
            _ => return None,
        };
        let len = self.u32()? as usize;
        let path = self.take(len)?;
        Some(FileRef { path, hash, stat })
    }
}

fn render(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
    let header = Header {
        format: record.format.clone(),
        run: record.run.clone(),
        fingerprint: record.fingerprint,
        parts: record.parts,
        definition: record.definition.clone(),
        how: record.how,
        values: record.values.clone(),
    };
    let paths: usize = record.files.iter().map(|e| e.path.len()).sum();
    let mut out = serde_json::to_vec(&header)?;
    out.reserve(8 + record.files.len() * 93 + paths);
    out.push(b'\n');
    let count = u32::try_from(record.files.len()).map_err(serde::ser::Error::custom)?;
    out.extend_from_slice(&count.to_le_bytes());
    for e in &record.files {
        out.extend_from_slice(&e.hash.0);
        match &e.stat {
            Some(s) => {
                out.push(1);
                for n in [
                    s.size,
                    s.mtime.0 as u64,
                    s.mtime.1 as u64,
                    s.ctime.0 as u64,
                    s.ctime.1 as u64,
                    s.inode,
                    s.device,
                ] {
                    out.extend_from_slice(&n.to_le_bytes());
                }
            }
            None => out.push(0),
        }
        let len = u32::try_from(e.path.len()).map_err(serde::ser::Error::custom)?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(e.path.as_bytes());
    }
    out.extend_from_slice(b"end\n");
    Ok(out)
}

/// The directory of the records under `root`.
fn records_dir(root: &Path) -> std::io::Result<PathBuf> {
    crate::state::dir(root, "fresh")
}

/// Where the record of the run identified by `identity` lives.
pub fn path_for(root: &Path, run: &str, identity: &str) -> PathBuf {
    let hash = blake3::hash(identity.as_bytes()).to_hex();
    // The name helps a human; the hash makes it unique and safe.
    let readable: String = run
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    root.join(".tasker")
        .join("fresh")
        .join(format!("{readable}-{}", &hash.as_str()[..24]))
}

/// Write `record` to `path` atomically.
pub fn write(root: &Path, path: &Path, record: &Record) -> std::io::Result<()> {
    records_dir(root)?;
    let bytes = render(record).map_err(std::io::Error::other)?;
    write_atomically(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        let d = Digest([7; 32]);
        Record::new(
            "build".into(),
            d,
            Parts {
                declared: d,
                commands: d,
                args: d,
                env: d,
                definition: d,
            },
            vec![("expect".into(), d)],
            vec![
                Entry {
                    path: "src/a.rs".into(),
                    hash: d,
                    stat: None,
                },
                Entry {
                    path: "src/with space\nand newline".into(),
                    hash: d,
                    stat: Some(Stat {
                        size: 5,
                        mtime: (-1, 2),
                        ctime: (3, 4),
                        inode: u64::MAX,
                        device: 7,
                    }),
                },
            ],
        )
    }

    #[test]
    fn a_written_record_reads_back_and_gitignores_its_directory() {
        let root = tempfile::tempdir().unwrap();
        let path = path_for(root.path(), "build", "build\0");
        write(root.path(), &path, &record()).unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.fingerprint, record().fingerprint);
        let files: Vec<FileRef> = back.files.iter().collect();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].path, b"src/with space\nand newline");
        assert_eq!(files[1].stat, record().files[1].stat);
        assert_eq!(files[0].stat, None);
        assert_eq!(files[0].hash, Digest([7; 32]));
        assert_eq!(back.definition, record().definition);
        assert_eq!(
            std::fs::read_to_string(root.path().join(".tasker/.gitignore")).unwrap(),
            "*\n"
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn broken_records_read_as_none() {
        let root = tempfile::tempdir().unwrap();
        let path = path_for(root.path(), "build", "build\0");
        write(root.path(), &path, &record()).unwrap();
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        assert!(read(&path).is_none());
        std::fs::write(&path, b"{\"format\":\"something else\"}").unwrap();
        assert!(read(&path).is_none());
        // Cut exactly before the end mark: the missing `end` tells.
        let cut = whole.len() - "end\n".len();
        std::fs::write(&path, &whole[..cut]).unwrap();
        assert!(read(&path).is_none());
        // Every shorter prefix, and a byte more, read as none too.
        for cut in (0..whole.len()).step_by(7) {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(read(&path).is_none(), "cut at {cut}");
        }
        let mut longer = whole.clone();
        longer.push(b'x');
        std::fs::write(&path, &longer).unwrap();
        assert!(read(&path).is_none());
        std::fs::write(&path, [0xff, 0xfe, 0]).unwrap();
        assert!(read(&path).is_none());
    }

    #[test]
    fn identities_get_distinct_paths() {
        let root = Path::new("/r");
        assert_ne!(path_for(root, "t", "t\0a"), path_for(root, "t", "t\0b"));
        assert!(path_for(root, "a/../b", "x")
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("a____b-"));
    }
}
