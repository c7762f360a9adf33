//! The artifact of one run: a tar archive compressed with zstd (with its
//! content checksum, so a damaged artifact is found while it is read).
//! Its entries, in this order:
//!
//! - `tasker/meta.json`: `{"format": "tasker-artifact-1", "run": NAME,
//!   "results": {NAME: TEXT}}`, the run's captured and extracted values;
//! - `tasker/output`: the run's output as it was shown, as frames: one
//!   byte for the stream (1 stdout, 2 stderr), the length as a 4-byte
//!   little-endian number, then the bytes;
//! - `out/PATH`: each file, symbolic link and directory of the task's
//!   `outputs`, PATH relative to the task's directory, with its mode and
//!   mtime (to the nanosecond, in a pax `mtime` record before the entry).
//!
//! A restore unpacks into a directory beside the outputs and renames each
//! output into place whole (a directory output as one), after every entry
//! was read and checked: an entry outside the outputs (absolute, `..`, a
//! link pointing out, a device) refuses the whole artifact. Links are
//! judged on disk, not by their text: once everything is staged, each is
//! followed through the links staged with it, as the kernel will follow
//! it once in place, and no entry may be written through a staged link.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::sign::Tagger;
use crate::glob::{normalize, Patterns};

/// Bumped whenever the layout above changes; part of every cache key.
pub const FORMAT: &str = "tasker-artifact-1";
const META: &str = "tasker/meta.json";
const OUTPUT: &str = "tasker/output";
const OUT: &str = "out/";
/// A `meta.json` larger than this is not one tasker wrote.
const META_LIMIT: u64 = 64 << 20;

/// What an artifact says besides its files.
#[derive(Serialize, Deserialize)]
pub struct Meta {
    pub format: String,
    pub run: String,
    /// `tasks.NAME` values the run produced: captured output and extracts.
    pub results: BTreeMap<String, String>,
}

/// The output of a run as it is shown, kept in a scratch file as frames.
pub struct Log {
    file: File,
    /// A write failed: the log is incomplete and must not be uploaded.
    pub broken: bool,
}

impl Log {
    pub fn new() -> std::io::Result<Log> {
        Ok(Log {
            file: tempfile::tempfile()?,
            broken: false,
        })
    }

    /// Append what a stream (1 stdout, 2 stderr) showed.
    pub fn write(&mut self, stream: u8, bytes: &[u8]) {
        for piece in bytes.chunks(u32::MAX as usize) {
            let mut head = [stream, 0, 0, 0, 0];
            head[1..].copy_from_slice(&(piece.len() as u32).to_le_bytes());
            if self.file.write_all(&head).is_err() || self.file.write_all(piece).is_err() {
                self.broken = true;
            }
        }
    }

    pub fn into_file(self) -> File {
        self.file
    }
}

/// The frames of a log file, from its start: `(stream, bytes)`.
pub fn frames(file: File) -> impl Iterator<Item = (u8, Vec<u8>)> {
    let mut reader = BufReader::new(file);
    let rewound = reader.rewind().is_ok();
    std::iter::from_fn(move || {
        if !rewound {
            return None;
        }
        let mut head = [0u8; 5];
        reader.read_exact(&mut head).ok()?;
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut bytes = vec![0u8; len];
        reader.read_exact(&mut bytes).ok()?;
        Some((head[0], bytes))
    })
}

/// An artifact ready to upload: a scratch file, rewound.
pub struct Packed {
    pub file: File,
    pub size: u64,
    pub tag: Option<String>,
    /// Output entries (files, links, directories) it holds.
    pub entries: usize,
}

/// Bytes on their way to a file, counted and fed to the tag.
struct Tee<W: Write> {
    inner: W,
    bytes: u64,
    tagger: Option<Tagger>,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        if let Some(t) = &mut self.tagger {
            t.update(&buf[..n]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Pack the outputs under `dir`, the log and the meta into a scratch file.
pub fn pack(
    dir: &Path,
    outputs: &[String],
    log: Option<File>,
    meta: &Meta,
    tagger: Option<Tagger>,
) -> std::io::Result<Packed> {
    let patterns = Patterns::new(outputs).map_err(std::io::Error::other)?;
    let entries = output_entries(&patterns, dir);
    let file = tempfile::tempfile()?;
    let tee = Tee {
        inner: BufWriter::with_capacity(256 * 1024, file),
        bytes: 0,
        tagger,
    };
    let mut encoder = zstd::Encoder::new(tee, 3)?;
    encoder.include_checksum(true)?;
    let mut builder = tar::Builder::new(encoder);
    builder.follow_symlinks(false);
    let meta = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
    append_data(&mut builder, META, meta.len() as u64, &meta[..])?;
    if let Some(mut log) = log {
        let len = log.seek(std::io::SeekFrom::End(0))?;
        log.rewind()?;
        append_data(&mut builder, OUTPUT, len, log)?;
    }
    for (path, is_dir) in &entries {
        let name = format!("{OUT}{path}");
        if let Ok(meta) = std::fs::symlink_metadata(dir.join(path)) {
            let mtime = filetime::FileTime::from_last_modification_time(&meta);
            pax_mtime(&mut builder, mtime)?;
        }
        if *is_dir {
            builder.append_dir(&name, dir.join(path))?;
        } else {
            builder.append_path_with_name(dir.join(path), &name)?;
        }
    }
    let tee = builder.into_inner()?.finish()?;
    let size = tee.bytes;
    let tag = tee.tagger.map(Tagger::tag);
    let mut file = tee.inner.into_inner().map_err(|e| e.into_error())?;
    file.rewind()?;
    Ok(Packed {
        file,
        size,
        tag,
        entries: entries.len(),
    })
}

/// A pax header with the next entry's mtime to the nanosecond (the tar
/// header holds whole seconds).
fn pax_mtime<W: Write>(
    builder: &mut tar::Builder<W>,
    mtime: filetime::FileTime,
) -> std::io::Result<()> {
    let body = format!(
        " mtime={}.{:09}\n",
        mtime.unix_seconds(),
        mtime.nanoseconds()
    );
    // A record starts with its own length, digits included.
    let mut len = body.len() + 1;
    while (body.len() + len.to_string().len()) != len {
        len = body.len() + len.to_string().len();
    }
    let record = format!("{len}{body}");
    let mut header = tar::Header::new_ustar();
    header.set_path("PaxHeader")?;
    header.set_size(record.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::XHeader);
    header.set_cksum();
    builder.append(&header, record.as_bytes())
}

/// The mtime of an entry: its pax record's, else its header's seconds.
fn entry_mtime<R: Read>(entry: &mut tar::Entry<R>) -> filetime::FileTime {
    let seconds = entry.header().mtime().unwrap_or(0) as i64;
    let mut mtime = filetime::FileTime::from_unix_time(seconds, 0);
    if let Ok(Some(extensions)) = entry.pax_extensions() {
        for ext in extensions.flatten() {
            if ext.key() != Ok("mtime") {
                continue;
            }
            let value = ext.value().unwrap_or("");
            let (s, n) = value.split_once('.').unwrap_or((value, "0"));
            if let Ok(s) = s.parse::<i64>() {
                let digits: String = n.chars().chain(std::iter::repeat('0')).take(9).collect();
                mtime = filetime::FileTime::from_unix_time(s, digits.parse().unwrap_or(0));
            }
        }
    }
    mtime
}

fn append_data<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    len: u64,
    data: impl Read,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(len);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    builder.append_data(&mut header, name, data)
}

/// Every file the outputs select, with the directories between them and
/// the outputs that name directories (so their modes and mtimes travel):
/// `(path, is_dir)`, parents before children.
fn output_entries(patterns: &Patterns, dir: &Path) -> Vec<(String, bool)> {
    let mut entries = BTreeMap::new();
    for found in patterns.walk(dir) {
        let mut ancestor = Path::new(&found.path).parent();
        while let Some(a) = ancestor.filter(|a| !a.as_os_str().is_empty()) {
            if patterns.matches(a) {
                entries.insert(a.to_string_lossy().into_owned(), true);
            }
            ancestor = a.parent();
        }
        entries.insert(found.path, false);
    }
    // Sorted as paths, so that a directory comes before what it holds.
    let mut list: Vec<(String, bool)> = entries.into_iter().collect();
    list.sort_by(|a, b| Path::new(&a.0).cmp(Path::new(&b.0)));
    list
}

/// What a restore gives back besides the files it put in place.
pub struct Restored {
    pub log: Option<File>,
    pub results: BTreeMap<String, String>,
    /// Output entries put in place.
    pub entries: usize,
}

/// Why a restore did not happen.
pub enum Refusal {
    /// A stop request came; nothing was put in place.
    Stopped,
    /// The artifact is damaged or unsafe, or the disk refused: in words.
    Bad(String),
}

/// A directory that is removed with everything in it when dropped.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A path beside the outputs, unique to this process and call.
fn beside(dir: &Path, what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(".tasker-{what}-{}-{n}", std::process::id()))
}

/// Unpack `artifact` and put the outputs in place under `dir`.
pub fn restore(
    artifact: File,
    dir: &Path,
    outputs: &[String],
    stopping: &dyn Fn() -> bool,
) -> Result<Restored, Refusal> {
    let bad = |why: String| Refusal::Bad(why);
    let patterns = Patterns::new(outputs).map_err(bad)?;
    let staging = Staging(beside(dir, "restore"));
    std::fs::create_dir(&staging.0)
        .map_err(|e| bad(format!("cannot unpack beside the outputs: {e}")))?;
    let unpacked = unpack(artifact, &staging.0, &patterns, stopping)?;
    let Some(meta) = unpacked.meta else {
        return Err(bad("it is not a tasker artifact (no meta.json)".into()));
    };
    if meta.format != FORMAT {
        return Err(bad(format!("its format `{}` is not {FORMAT}", meta.format)));
    }
    place(&staging.0.join(OUT), dir, &patterns, &unpacked.paths).map_err(bad)?;
    Ok(Restored {
        log: unpacked.log,
        results: meta.results,
        entries: unpacked.paths.len(),
    })
}

struct Unpacked {
    meta: Option<Meta>,
    log: Option<File>,
    /// The output entries unpacked, relative to the task's directory.
    paths: Vec<PathBuf>,
}

/// Read every entry into `staging`, checking each before it is written.
fn unpack(
    artifact: File,
    staging: &Path,
    patterns: &Patterns,
    stopping: &dyn Fn() -> bool,
) -> Result<Unpacked, Refusal> {
    let corrupt = |e: std::io::Error| Refusal::Bad(format!("it is corrupt ({e})"));
    let decoder = zstd::Decoder::new(artifact).map_err(corrupt)?;
    let mut archive = tar::Archive::new(decoder);
    // Set below, to the nanosecond, once everything is written.
    archive.set_preserve_mtime(false);
    archive.set_overwrite(true);
    let mut out = Unpacked {
        meta: None,
        log: None,
        paths: Vec::new(),
    };
    let mut mtimes = Vec::new();
    // Where the entries land: the task's directory, staged.
    let root = staging.join(OUT);
    let mut links = Vec::new();
    for entry in archive.entries().map_err(corrupt)? {
        if stopping() {
            return Err(Refusal::Stopped);
        }
        let mut entry = entry.map_err(corrupt)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        if name == META {
            if entry.size() > META_LIMIT {
                return Err(Refusal::Bad("its meta.json is too large".into()));
            }
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(corrupt)?;
            let meta = serde_json::from_str(&text)
                .map_err(|e| Refusal::Bad(format!("its meta.json is not valid ({e})")))?;
            out.meta = Some(meta);
            continue;
        }
        if name == OUTPUT {
            let mut log = tempfile::tempfile()
                .map_err(|e| Refusal::Bad(format!("cannot keep its output: {e}")))?;
            std::io::copy(&mut entry, &mut log).map_err(corrupt)?;
            out.log = Some(log);
            continue;
        }
        let rel = checked_path(&name, patterns).map_err(Refusal::Bad)?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Regular | tar::EntryType::Directory => {}
            tar::EntryType::Symlink => {
                let target = entry.link_name().ok().flatten().unwrap_or_default();
                check_link(&rel, &target, patterns).map_err(Refusal::Bad)?;
            }
            other => {
                return Err(Refusal::Bad(format!(
                    "`{}` is a {other:?} entry, which tasker never restores",
                    rel.display()
                )))
            }
        }
        check_place(&root, &rel, kind == tar::EntryType::Directory).map_err(Refusal::Bad)?;
        let mtime = entry_mtime(&mut entry);
        match entry.unpack_in(staging) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Refusal::Bad(format!(
                    "`{}` would land outside its outputs",
                    rel.display()
                )))
            }
            Err(e) => return Err(Refusal::Bad(format!("cannot unpack it ({e})"))),
        }
        mtimes.push(mtime);
        if kind == tar::EntryType::Symlink {
            links.push(rel.clone());
        }
        out.paths.push(rel);
    }
    for link in &links {
        check_lands(&root, link, patterns).map_err(Refusal::Bad)?;
    }
    // Last, and children before their directories: writing into a
    // directory moves its mtime.
    for (rel, mtime) in out.paths.iter().zip(&mtimes).rev() {
        let _ = filetime::set_symlink_file_times(staging.join(OUT).join(rel), *mtime, *mtime);
    }
    Ok(out)
}

/// The path of an output entry relative to the task's directory, when it
/// is one of the outputs.
fn checked_path(name: &str, patterns: &Patterns) -> Result<PathBuf, String> {
    let Some(rel) = name.strip_prefix(OUT) else {
        return Err(format!(
            "it holds `{name}`, which is no part of an artifact"
        ));
    };
    let rel = rel.trim_end_matches('/');
    let path = Path::new(rel);
    let plain = !rel.is_empty()
        && !rel.contains('\\')
        && path.components().all(|c| matches!(c, Component::Normal(_)));
    if !plain {
        return Err(format!("its entry `{rel}` would land outside the outputs"));
    }
    if !patterns.matches(path) {
        return Err(format!(
            "its entry `{rel}` is not one of the task's outputs"
        ));
    }
    Ok(path.to_path_buf())
}

/// A symbolic link must point, relatively, at something inside the
/// outputs.
fn check_link(rel: &Path, target: &Path, patterns: &Patterns) -> Result<(), String> {
    let from = rel.parent().unwrap_or(Path::new(""));
    let lands = normalize(&from.join(target));
    let inside = !target.as_os_str().is_empty()
        && target.is_relative()
        && lands
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && patterns.matches(&lands);
    if inside {
        Ok(())
    } else {
        Err(format!(
            "its link `{}` points outside the outputs (to `{}`)",
            rel.display(),
            target.display()
        ))
    }
}

/// An entry is written only where no staged link stands in its way: none
/// of its parents may be a link (the entry would land wherever that link
/// leads), and no entry may come twice (then it would replace a link, or
/// write through it), but a directory that is there already.
fn check_place(root: &Path, rel: &Path, is_dir: bool) -> Result<(), String> {
    let mut at = root.to_path_buf();
    let mut parts = rel.components().peekable();
    while let Some(part) = parts.next() {
        at.push(part);
        let Ok(meta) = std::fs::symlink_metadata(&at) else {
            // Nothing there, so nothing under it either.
            return Ok(());
        };
        let last = parts.peek().is_none();
        if meta.file_type().is_symlink() && !last {
            return Err(format!(
                "its entry `{}` would be written through the link `{}`",
                rel.display(),
                at.strip_prefix(root).unwrap_or(&at).display()
            ));
        }
        if last && !(is_dir && meta.is_dir()) {
            return Err(format!("its entry `{}` comes twice", rel.display()));
        }
    }
    Ok(())
}

/// How many links one path may lead through: Linux's limit (ELOOP).
const MAX_LINKS: usize = 40;

/// A staged link must lead, followed on disk, to one of the outputs.
fn check_lands(root: &Path, link: &Path, patterns: &Patterns) -> Result<(), String> {
    let target = std::fs::read_link(root.join(link)).unwrap_or_default();
    let said = |why: String| {
        format!(
            "its link `{}` (to `{}`) leads outside the outputs: {why}",
            link.display(),
            target.display()
        )
    };
    let lands = resolve_link(root, link).map_err(said)?;
    if patterns.matches(&lands) {
        return Ok(());
    }
    Err(said(if lands.as_os_str().is_empty() {
        "to the task's directory".to_string()
    } else {
        format!("to `{}`", lands.display())
    }))
}

/// Where the link at `link` (relative to `root`, the staged task
/// directory) leads, relative to `root`: followed as the kernel follows a
/// path, one name at a time, through the links staged beside it. Past a
/// name that is not staged (or not a directory), nothing is known of what
/// the disk will hold there, so the rest of the way may only descend.
fn resolve_link(root: &Path, link: &Path) -> Result<PathBuf, String> {
    let mut at = link.parent().map(Path::to_path_buf).unwrap_or_default();
    // The names still to follow, the next one last.
    let mut pending = link_steps(root, link)?;
    let mut followed = 1;
    let mut known = true;
    while let Some(step) = pending.pop() {
        let Some(name) = step else {
            if !known {
                return Err(format!(
                    "it climbs with `..` out of `{}`, which the artifact does not hold as a directory",
                    at.display()
                ));
            }
            if !at.pop() {
                return Err("it climbs above the task's directory".into());
            }
            continue;
        };
        let next = at.join(name);
        if known {
            match std::fs::symlink_metadata(root.join(&next)) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    followed += 1;
                    if followed > MAX_LINKS {
                        return Err(format!(
                            "it goes through more than {MAX_LINKS} links (a loop?)"
                        ));
                    }
                    pending.extend(link_steps(root, &next)?);
                    continue;
                }
                Ok(meta) if meta.is_dir() => {}
                _ => known = false,
            }
        }
        at = next;
    }
    Ok(at)
}

/// The target of the staged link at `link`, as names to follow (`None`
/// for `..`), the first one last.
fn link_steps(root: &Path, link: &Path) -> Result<Vec<Option<std::ffi::OsString>>, String> {
    let target = std::fs::read_link(root.join(link))
        .map_err(|e| format!("`{}` cannot be read ({e})", link.display()))?;
    if target.as_os_str().is_empty() {
        return Err(format!("`{}` is empty", link.display()));
    }
    let mut steps = Vec::new();
    for part in target.components().rev() {
        match part {
            Component::Normal(name) => steps.push(Some(name.to_os_string())),
            Component::ParentDir => steps.push(None),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "`{}` is absolute (`{}`)",
                    link.display(),
                    target.display()
                ))
            }
        }
    }
    Ok(steps)
}

/// Move each output from `staged` to its place under `dir`: a directory
/// output as one rename, replacing what was there.
fn place(staged: &Path, dir: &Path, patterns: &Patterns, paths: &[PathBuf]) -> Result<(), String> {
    let units: BTreeSet<&Path> = paths
        .iter()
        .map(|p| patterns.literal_of(p).unwrap_or(p))
        .collect();
    for unit in units {
        let from = staged.join(unit);
        let to = dir.join(unit);
        let failed = |e: std::io::Error| format!("cannot put `{}` in place: {e}", unit.display());
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        let old_is_dir = std::fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir());
        if old_is_dir {
            // Out of the way first, then the new one in, then the old one
            // gone: a reader sees the old output or the new one.
            let old = beside(to.parent().unwrap_or(dir), "old");
            std::fs::rename(&to, &old).map_err(failed)?;
            if let Err(e) = std::fs::rename(&from, &to) {
                let _ = std::fs::rename(&old, &to);
                return Err(failed(e));
            }
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&from, &to).map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Patterns {
        Patterns::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn entries_outside_the_outputs_are_refused() {
        let p = patterns(&["dist", "*.o"]);
        assert!(checked_path("out/dist/app.js", &p).is_ok());
        assert!(checked_path("out/a.o", &p).is_ok());
        for bad in [
            "out/../etc/passwd",
            "out//etc/passwd",
            "out/dist/../../x",
            "out/src/main.c",
            "out/",
            "other/dist/a",
            "out/./dist/a",
        ] {
            assert!(checked_path(bad, &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_must_stay_inside_the_outputs() {
        let p = patterns(&["dist"]);
        let link = |rel: &str, target: &str| check_link(Path::new(rel), Path::new(target), &p);
        assert!(link("dist/latest", "v2").is_ok());
        assert!(link("dist/a/b", "../c").is_ok());
        assert!(link("dist/x", "/etc/passwd").is_err());
        assert!(link("dist/x", "../src").is_err());
        assert!(link("dist/x", "../../..").is_err());
        assert!(link("dist/x", "").is_err());
    }

    /// A staged task directory: `dirs`, then `links` as (path, target).
    fn staged(dirs: &[&str], files: &[&str], links: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        for f in files {
            std::fs::write(root.path().join(f), "x").unwrap();
        }
        for (link, target) in links {
            std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
        }
        root
    }

    #[test]
    fn a_link_is_followed_through_the_links_staged_with_it() {
        let root = staged(
            &["dist/v1", "dist/sub"],
            &["dist/b.txt", "dist/v1/app"],
            &[
                ("dist/latest", "v1"),
                ("dist/a", "b.txt"),
                ("dist/to-a", "a"),
                ("dist/app", "latest/app"),
                ("dist/sub/up", "../v1"),
                ("dist/s", "."),
                ("dist/up", "s/.."),
                ("dist/up2", "up/.."),
                ("dist/via", "up/dist/v1"),
                ("dist/later", "not-yet/x"),
                ("dist/loop1", "loop2"),
                ("dist/loop2", "loop1"),
                ("dist/abs", "/etc"),
                ("dist/to-abs", "abs/passwd"),
                ("dist/file-up", "b.txt/../.."),
                ("dist/gone-up", "missing/../.."),
            ],
        );
        let lands = |link: &str| resolve_link(root.path(), Path::new(link));
        for (link, to) in [
            ("dist/latest", "dist/v1"),
            ("dist/a", "dist/b.txt"),
            ("dist/to-a", "dist/b.txt"),
            ("dist/app", "dist/v1/app"),
            ("dist/sub/up", "dist/v1"),
            ("dist/s", "dist"),
            ("dist/up", ""),
            // Out and back in: it leads where it says, through the task's
            // directory and the staged `dist`.
            ("dist/via", "dist/v1"),
            ("dist/later", "dist/not-yet/x"),
        ] {
            assert_eq!(lands(link), Ok(PathBuf::from(to)), "{link}");
        }
        for (link, why) in [
            ("dist/up2", "climbs above the task's directory"),
            ("dist/loop1", "more than 40 links"),
            ("dist/to-abs", "is absolute"),
            ("dist/file-up", "does not hold as a directory"),
            ("dist/gone-up", "does not hold as a directory"),
        ] {
            let err = lands(link).unwrap_err();
            assert!(err.contains(why), "{link}: {err}");
        }
        // Only `dist` is an output: landing in the task's directory leaves.
        let p = patterns(&["dist"]);
        assert!(check_lands(root.path(), Path::new("dist/latest"), &p).is_ok());
        assert!(check_lands(root.path(), Path::new("dist/via"), &p).is_ok());
        let err = check_lands(root.path(), Path::new("dist/up"), &p).unwrap_err();
        assert_eq!(
            err,
            "its link `dist/up` (to `s/..`) leads outside the outputs: to the task's directory"
        );
    }

    #[test]
    fn no_entry_is_written_through_a_staged_link() {
        let root = staged(&["dist/v1"], &["dist/a.txt"], &[("dist/latest", "v1")]);
        let place = |rel: &str, is_dir: bool| check_place(root.path(), Path::new(rel), is_dir);
        assert!(place("dist/v1/b.txt", false).is_ok());
        assert!(place("dist/new/b.txt", false).is_ok());
        assert!(place("dist/v1", true).is_ok());
        assert_eq!(
            place("dist/latest/b.txt", false),
            Err(
                "its entry `dist/latest/b.txt` would be written through the link `dist/latest`"
                    .into()
            )
        );
        assert!(place("dist/latest/deeper/b.txt", false).is_err());
        for (rel, is_dir) in [
            ("dist/latest", true),
            ("dist/latest", false),
            ("dist/a.txt", false),
        ] {
            assert_eq!(
                place(rel, is_dir),
                Err(format!("its entry `{rel}` comes twice")),
            );
        }
    }

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn meta() -> Meta {
        Meta {
            format: FORMAT.into(),
            run: "build".into(),
            results: BTreeMap::from([("version".to_string(), "1.2".to_string())]),
        }
    }

    #[test]
    fn a_packed_artifact_restores_elsewhere_with_modes_and_mtimes() {
        use std::os::unix::fs::PermissionsExt;
        let from = tree(&[("dist/a.js", "a"), ("dist/sub/b.js", "b"), ("x.o", "o")]);
        let script = from.path().join("dist/run.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o751)).unwrap();
        std::os::unix::fs::symlink("sub/b.js", from.path().join("dist/link")).unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options()
            .write(true)
            .open(from.path().join("x.o"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut log = Log::new().unwrap();
        log.write(1, b"hello\n");
        log.write(2, b"warn\n");
        let outputs = vec!["dist".to_string(), "*.o".to_string()];
        let packed = pack(from.path(), &outputs, Some(log.into_file()), &meta(), None).unwrap();
        assert_eq!(packed.entries, 7);

        let to = tree(&[("dist/stale.js", "old"), ("src/keep.c", "c")]);
        let restored = restore(packed.file, to.path(), &outputs, &|| false)
            .ok()
            .unwrap();
        assert_eq!(restored.results["version"], "1.2");
        let frames: Vec<_> = frames(restored.log.unwrap()).collect();
        assert_eq!(
            frames,
            vec![(1, b"hello\n".to_vec()), (2, b"warn\n".to_vec())]
        );
        let read = |p: &str| std::fs::read_to_string(to.path().join(p)).unwrap();
        assert_eq!(read("dist/a.js"), "a");
        assert_eq!(read("dist/sub/b.js"), "b");
        assert_eq!(read("dist/link"), "b");
        assert_eq!(read("src/keep.c"), "c");
        // A directory output is replaced whole.
        assert!(!to.path().join("dist/stale.js").exists());
        let mode = std::fs::metadata(to.path().join("dist/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o751);
        let mtime = std::fs::metadata(to.path().join("x.o"))
            .unwrap()
            .modified()
            .unwrap();
        assert_eq!(mtime, old);
        // Nothing is left beside the outputs.
        let names: Vec<String> = std::fs::read_dir(to.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tasker")), "{names:?}");
    }

    #[test]
    fn a_damaged_artifact_changes_nothing() {
        let from = tree(&[("dist/a.js", "new")]);
        let outputs = vec!["dist".to_string()];
        let mut packed = pack(from.path(), &outputs, None, &meta(), None).unwrap();
        let mut bytes = Vec::new();
        packed.file.read_to_end(&mut bytes).unwrap();
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
        let mut damaged = tempfile::tempfile().unwrap();
        damaged.write_all(&bytes).unwrap();
        damaged.rewind().unwrap();
        let to = tree(&[("dist/a.js", "old")]);
        assert!(matches!(
            restore(damaged, to.path(), &outputs, &|| false),
            Err(Refusal::Bad(_))
        ));
        assert_eq!(
            std::fs::read_to_string(to.path().join("dist/a.js")).unwrap(),
            "old"
        );
        assert_eq!(std::fs::read_dir(to.path()).unwrap().count(), 1);
    }
}
