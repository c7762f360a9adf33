//! The record of a run's last success: one file per run identity under
//! `.tasker/fresh/`, written whole to a temporary file and renamed over the
//! old one, so that a reader (another tasker, or this one after a crash)
//! sees the old record or the new one, never half of either.
//!
//! The file is a JSON header line (format, run, fingerprint, parts, the
//! hash of each key of the definition, how the success came about and the
//! values the run captured and extracted), then
//! one line per source file: `HASH SIZE MTIME MTIME_NS CTIME CTIME_NS
//! INODE DEVICE PATH` (or `HASH - PATH` without a trusted stat), and a
//! last line `end`, so a truncated file is never mistaken for a whole one.
//! Plain lines, because a tree of 10,000 files is read on every check.

use crate::state::write_atomically;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::fingerprint::{Digest, Parts, FORMAT};

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

/// What was known about a file when it was hashed. A file whose `Stat` is
/// unchanged keeps its hash without being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stat {
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
    pub inode: u64,
    pub device: u64,
}

impl Stat {
    #[cfg(unix)]
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        use std::os::unix::fs::MetadataExt;
        Stat {
            size: meta.size(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
            inode: meta.ino(),
            device: meta.dev(),
        }
    }

    #[cfg(not(unix))]
    pub fn of(meta: &std::fs::Metadata) -> Stat {
        let secs = |t: std::io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or((0, 0), |d| (d.as_secs() as i64, d.subsec_nanos() as i64))
        };
        Stat {
            size: meta.len(),
            mtime: secs(meta.modified()),
            ctime: secs(meta.created()),
            inode: 0,
            device: 0,
        }
    }

    /// The later of mtime and ctime, in seconds and nanoseconds.
    pub fn last_change(&self) -> (i64, i64) {
        self.mtime.max(self.ctime)
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
pub fn read(path: &Path) -> Option<Record> {
    let bytes = std::fs::read(path).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut lines = Lines(text);
    let header: Header = serde_json::from_str(lines.next()?).ok()?;
    if header.format != FORMAT {
        return None;
    }
    let mut files = Vec::new();
    loop {
        let line = lines.next()?;
        if line == "end" {
            break;
        }
        files.push(parse_entry(line)?);
    }
    Some(Record {
        format: header.format,
        run: header.run,
        fingerprint: header.fingerprint,
        parts: header.parts,
        definition: header.definition,
        how: header.how,
        values: header.values,
        files,
    })
}

/// Lines split at `\n` with memchr: a record of 10,000 files is read on
/// every check.
struct Lines<'a>(&'a str);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = memchr::memchr(b'\n', self.0.as_bytes())?;
        let line = &self.0[..end];
        self.0 = &self.0[end + 1..];
        Some(line)
    }
}

/// `text` split at its first space.
fn split_space(text: &str) -> Option<(&str, &str)> {
    let at = memchr::memchr(b' ', text.as_bytes())?;
    Some((&text[..at], &text[at + 1..]))
}

fn parse_entry(line: &str) -> Option<Entry> {
    let (hash, rest) = split_space(line)?;
    let hash = Digest::from_hex(hash)?;
    let (stat, path) = match rest.strip_prefix("- ") {
        Some(path) => (None, path),
        None => {
            let mut fields = [0i64; 7];
            let mut rest = rest;
            for field in &mut fields {
                let (n, tail) = split_space(rest)?;
                *field = n.parse().ok()?;
                rest = tail;
            }
            let [size, ms, mns, cs, cns, inode, device] = fields;
            let stat = Stat {
                size: size as u64,
                mtime: (ms, mns),
                ctime: (cs, cns),
                inode: inode as u64,
                device: device as u64,
            };
            (Some(stat), rest)
        }
    };
    let path = if path.starts_with('"') {
        serde_json::from_str(path).ok()?
    } else {
        path.to_string()
    };
    Some(Entry { path, hash, stat })
}

fn render(record: &Record) -> Result<String, serde_json::Error> {
    use std::fmt::Write as _;
    let header = Header {
        format: record.format.clone(),
        run: record.run.clone(),
        fingerprint: record.fingerprint,
        parts: record.parts,
        definition: record.definition.clone(),
        how: record.how,
        values: record.values.clone(),
    };
    let mut out = serde_json::to_string(&header)?;
    out.push('\n');
    for e in &record.files {
        out.push_str(&e.hash.hex());
        match &e.stat {
            Some(s) => {
                let _ = write!(
                    out,
                    " {} {} {} {} {} {} {} ",
                    s.size,
                    s.mtime.0,
                    s.mtime.1,
                    s.ctime.0,
                    s.ctime.1,
                    s.inode as i64,
                    s.device as i64
                );
            }
            None => out.push_str(" - "),
        }
        // A path that could not stand alone on its line is quoted.
        if e.path.contains(['\n', '\r']) || e.path.starts_with('"') {
            out.push_str(&serde_json::to_string(&e.path)?);
        } else {
            out.push_str(&e.path);
        }
        out.push('\n');
    }
    out.push_str("end\n");
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
    let text = render(record).map_err(std::io::Error::other)?;
    write_atomically(path, text.as_bytes())
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
        assert_eq!(back.files.len(), 2);
        assert_eq!(back.files[1].path, "src/with space\nand newline");
        assert_eq!(back.files[1].stat, record().files[1].stat);
        assert_eq!(back.files[0].stat, None);
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
        // Cut exactly at a line end: the missing `end` tells.
        let cut = whole.len() - "end\n".len();
        std::fs::write(&path, &whole[..cut]).unwrap();
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
