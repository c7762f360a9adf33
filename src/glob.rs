//! `sources` and `outputs` patterns: globs relative to a task's directory,
//! `**` across directories, `*` within one, and a leading `!` to exclude.
//! Walking starts at each pattern's literal prefix, so `src/**/*.rs` never
//! reads the rest of the tree; `.git` and `.tasker` are never entered, and
//! symbolic links to directories are not followed (no loop can form).
//! A pattern may be absolute (`/opt/sdk/include/**`) or climb out of the
//! directory with `..`: the paths it finds are then absolute, or start
//! with `..`, and everything else works the same.

use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

/// Directories never walked, whatever the patterns say.
const NEVER_WALKED: [&str; 2] = [".git", ".tasker"];

/// A compiled list of patterns.
#[derive(Clone, Debug)]
pub struct Patterns {
    includes: GlobSet,
    excludes: GlobSet,
    /// Where walking starts: each include's literal leading directories.
    bases: Vec<PathBuf>,
    /// Includes that name one path, with no glob character: a file, or a
    /// directory meaning everything under it.
    literals: Vec<PathBuf>,
}

/// A file found by the patterns.
pub struct Found {
    /// Relative to the directory the patterns are relative to (`/` joined).
    pub path: String,
    pub stat: Stat,
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

    /// From a stat the system filled (as `of`: the same values, so that a
    /// record written through either agrees).
    #[cfg(unix)]
    // The fields' types differ between systems (`st_dev` is 32 bits on
    // macOS): the casts are needed somewhere, if not here.
    #[allow(clippy::unnecessary_cast)]
    pub fn of_raw(st: &rustix::fs::Stat) -> Stat {
        Stat {
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as i64),
            inode: st.st_ino as u64,
            device: st.st_dev as u64,
        }
    }

    /// The later of mtime and ctime, in seconds and nanoseconds.
    pub fn last_change(&self) -> (i64, i64) {
        self.mtime.max(self.ctime)
    }
}

fn is_glob(component: &str) -> bool {
    component.contains(['*', '?', '[', '{', '\\'])
}

fn glob(pattern: &str) -> Result<Glob, String> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map_err(|e| format!("`{pattern}` is not a valid glob: {}", e.kind()))
}

/// Why `pattern` cannot be used, if it cannot: for the loader, which
/// reports it at its place in the file.
pub fn check(pattern: &str) -> Result<(), String> {
    let body = pattern.strip_prefix('!').unwrap_or(pattern);
    if body.is_empty() {
        return Err("an empty pattern matches nothing".into());
    }
    glob(body).map(|_| ())
}

impl Patterns {
    pub fn new(patterns: &[String]) -> Result<Patterns, String> {
        let mut includes = GlobSetBuilder::new();
        let mut excludes = GlobSetBuilder::new();
        let mut bases = Vec::new();
        let mut literals = Vec::new();
        for pattern in patterns {
            check(pattern)?;
            if let Some(body) = pattern.strip_prefix('!') {
                let body = body.trim_end_matches('/');
                excludes.add(glob(body)?);
                // `!gen` excludes what is under `gen` too.
                excludes.add(glob(&format!("{body}/**"))?);
                continue;
            }
            let body = pattern.trim_end_matches('/');
            let body = body.strip_prefix("./").unwrap_or(body);
            let parts: Vec<&str> = body.split('/').collect();
            match parts.iter().position(|p| is_glob(p)) {
                None => literals.push(PathBuf::from(body)),
                Some(first_glob) => {
                    includes.add(glob(body)?);
                    // Joined as text: an absolute pattern's base keeps its
                    // leading `/` (its first part is empty).
                    let base = parts[..first_glob].join("/");
                    bases.push(PathBuf::from(if base.is_empty() && body.starts_with('/') {
                        "/".to_string()
                    } else {
                        base
                    }));
                }
            }
        }
        // A base inside another base is walked with it.
        bases.sort();
        bases.dedup();
        let mut outer: Vec<PathBuf> = Vec::new();
        for base in bases {
            if !outer.iter().any(|o| base.starts_with(o)) {
                outer.push(base);
            }
        }
        let built = |b: GlobSetBuilder| b.build().map_err(|e| e.to_string());
        Ok(Patterns {
            includes: built(includes)?,
            excludes: built(excludes)?,
            bases: outer,
            literals,
        })
    }

    fn excluded(&self, path: &Path) -> bool {
        self.excludes.is_match(path)
    }

    /// True when `path` (relative to the patterns' directory) is one the
    /// patterns select. For watching: events name paths, not patterns.
    pub fn matches(&self, path: &Path) -> bool {
        if self.excluded(path) || path.components().any(|c| is_never_walked(c.as_os_str())) {
            return false;
        }
        self.includes.is_match(path) || self.literals.iter().any(|l| path.starts_with(l))
    }

    /// The outermost literal pattern (a file, or a directory meaning
    /// everything under it) that selects `path`, if one does: the unit a
    /// restore puts in place whole.
    pub fn literal_of(&self, path: &Path) -> Option<&Path> {
        self.literals
            .iter()
            .filter(|l| path.starts_with(l))
            .min_by_key(|l| l.components().count())
            .map(PathBuf::as_path)
    }

    /// The directories to watch for changes, relative to the patterns'
    /// directory (a literal file's parent: editors replace files).
    pub fn watch_roots(&self) -> Vec<PathBuf> {
        let mut roots: Vec<PathBuf> = self.bases.clone();
        for literal in &self.literals {
            roots.push(literal.parent().map(Path::to_path_buf).unwrap_or_default());
        }
        roots.sort();
        roots.dedup();
        roots
    }

    /// Every file the patterns select under `dir`, sorted by path (as
    /// bytes). A missing base or literal selects nothing; unreadable
    /// directories are passed over. Directories are read, and files
    /// stat'ed, on several threads once there are several directories to
    /// read (as git's preload of its index does): a tree of 20,000 files
    /// costs 20,000 stat calls, and one core alone is the bottleneck.
    pub fn walk(&self, dir: &Path) -> Vec<Found> {
        let mut out = Vec::new();
        let mut roots = Vec::new();
        for literal in &self.literals {
            if self.excluded(literal) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(dir.join(literal)) else {
                continue;
            };
            let rel = slashed(literal);
            if meta.is_dir() {
                roots.push(Job {
                    abs: dir.join(literal),
                    rel,
                    glob: false,
                });
            } else if meta.is_file() {
                // A FIFO or a device named as a source is not read: its
                // hash would wait for a writer for ever.
                out.push(Found {
                    path: rel,
                    stat: Stat::of(&meta),
                });
            }
        }
        for base in &self.bases {
            let rel = slashed(base);
            roots.push(Job {
                abs: dir.join(&rel),
                rel,
                glob: true,
            });
        }
        out.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        let mut runs = walk_dirs(self, roots);
        runs.push(out);
        let mut out = merge(runs);
        // Bases never nest, but a literal may lie under a base.
        if !self.literals.is_empty() {
            out.dedup_by(|a, b| a.path == b.path);
        }
        out
    }

    /// Whether a file found under a root of kind `glob` is selected.
    fn selects(&self, rel: &str, glob: bool) -> bool {
        let path = Path::new(rel);
        (!glob || self.includes.is_match(path)) && !self.excluded(path)
    }
}

/// A directory to read: its absolute path, its path as found (relative to
/// the patterns' directory), and whether its files must match the globs
/// (under a base) or are all selected (under a literal directory).
struct Job {
    abs: PathBuf,
    rel: String,
    glob: bool,
}

/// The directories still to read, and how many are being read.
struct Queue {
    jobs: Vec<Job>,
    busy: usize,
}

/// At most this many threads read directories (the calling one included).
/// More than the cores, as git's preload of its index does (up to 20):
/// a stat waits on the disk when the inode cache is cold, and on a busy
/// machine each thread is one more share of the processors.
const MAX_WALKERS: usize = 16;

/// Read the directories of `roots` and all below them, on up to
/// `MAX_WALKERS` threads: one more starts whenever more directories wait
/// than threads read them. Returns each thread's selected files, each list
/// sorted by path (the threads sort their own in parallel; `merge` joins
/// them).
fn walk_dirs(patterns: &Patterns, roots: Vec<Job>) -> Vec<Vec<Found>> {
    if roots.is_empty() {
        return Vec::new();
    }
    let queue = std::sync::Mutex::new(Queue {
        jobs: roots,
        busy: 0,
    });
    let wake = std::sync::Condvar::new();
    let sorted = |mut found: Vec<Found>| {
        found.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        found
    };
    std::thread::scope(|scope| {
        let work = || {
            // A copy of its own: a regex shares its search caches through
            // a pool that only its first user reads without a lock.
            let patterns = patterns.clone();
            let mut found = Vec::new();
            walker(&patterns, &queue, &wake, &mut found, &mut |_| {});
            sorted(found)
        };
        let mut helpers = Vec::new();
        let mut start_helpers = |waiting: usize| {
            while helpers.len() + 1 < MAX_WALKERS && helpers.len() < waiting {
                // A thread the system refuses (a process limit) is one
                // walker less: the others, this one included, do its share.
                match std::thread::Builder::new().spawn_scoped(scope, work) {
                    Ok(helper) => helpers.push(helper),
                    Err(_) => break,
                }
            }
        };
        let mut mine = Vec::new();
        walker(patterns, &queue, &wake, &mut mine, &mut start_helpers);
        let mut runs = vec![sorted(mine)];
        for helper in helpers {
            if let Ok(found) = helper.join() {
                runs.push(found);
            }
        }
        runs
    })
}

/// Lists each sorted by path, joined into one sorted list. The order is
/// found first (a heap of each list's next path: a few comparisons per
/// file), then each file is moved once; sorting the joined lists again
/// moved and compared every file several times (3 ms of 30 for 20,000).
fn merge(mut runs: Vec<Vec<Found>>) -> Vec<Found> {
    use std::cmp::Reverse;
    runs.retain(|r| !r.is_empty());
    if runs.len() <= 1 {
        return runs.pop().unwrap_or_default();
    }
    let total = runs.iter().map(Vec::len).sum();
    let mut order: Vec<(usize, usize)> = Vec::with_capacity(total);
    {
        let mut next = vec![0usize; runs.len()];
        let mut heads: std::collections::BinaryHeap<Reverse<(&str, usize)>> = runs
            .iter()
            .enumerate()
            .map(|(r, run)| Reverse((run[0].path.as_str(), r)))
            .collect();
        while let Some(Reverse((_, r))) = heads.pop() {
            order.push((r, next[r]));
            next[r] += 1;
            if let Some(found) = runs[r].get(next[r]) {
                heads.push(Reverse((found.path.as_str(), r)));
            }
        }
    }
    order
        .into_iter()
        .map(|(r, i)| {
            let found = &mut runs[r][i];
            Found {
                path: std::mem::take(&mut found.path),
                stat: found.stat,
            }
        })
        .collect()
}

/// One thread's share of a walk: take a directory, read it, queue its
/// subdirectories, keep its selected files; until no directory is left
/// and none is being read. `more` is told how many directories wait.
fn walker(
    patterns: &Patterns,
    queue: &std::sync::Mutex<Queue>,
    wake: &std::sync::Condvar,
    out: &mut Vec<Found>,
    more: &mut dyn FnMut(usize),
) {
    let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
    let mut subdirs = Vec::new();
    loop {
        let job = {
            let mut q = lock();
            loop {
                if let Some(job) = q.jobs.pop() {
                    q.busy += 1;
                    break job;
                }
                if q.busy == 0 {
                    wake.notify_all();
                    return;
                }
                q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
            }
        };
        read_dir(patterns, &job, &mut subdirs, out);
        let waiting = {
            let mut q = lock();
            q.busy -= 1;
            // One waiting thread per new directory; all of them once the
            // walk is over (no directory left, none being read).
            for _ in 0..subdirs.len() {
                wake.notify_one();
            }
            q.jobs.append(&mut subdirs);
            if q.busy == 0 && q.jobs.is_empty() {
                wake.notify_all();
            }
            q.jobs.len()
        };
        if waiting > 0 {
            more(waiting);
        }
    }
}

/// Read one directory: files selected go to `out` with their stat,
/// directories to `subdirs`. Symbolic links to files count as those files;
/// links to directories are not entered (no loop can form). The file type
/// comes with the entry (a stat of its own where the file system gives
/// none), and a file's stat is made relative to the open directory, only
/// for a file the patterns select.
fn read_dir(patterns: &Patterns, job: &Job, subdirs: &mut Vec<Job>, out: &mut Vec<Found>) {
    use rustix::fs::{AtFlags, FileType, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let Ok(fd) = rustix::fs::open(&job.abs, flags, Mode::empty()) else {
        return;
    };
    each_entry(&fd, |raw, kind| {
        let bytes = raw.to_bytes();
        if bytes == b"." || bytes == b".." {
            return;
        }
        let kind = match kind {
            FileType::Unknown => match rustix::fs::statat(&fd, raw, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => FileType::from_raw_mode(st.st_mode),
                Err(_) => return,
            },
            kind => kind,
        };
        // One allocation of the right size per path: 20,000 files are
        // 20,000 of these, on threads that share the allocator's locks.
        let name = String::from_utf8_lossy(bytes);
        let mut child = String::with_capacity(job.rel.len() + 1 + name.len());
        child.push_str(&job.rel);
        if !job.rel.is_empty() && !job.rel.ends_with('/') {
            child.push('/');
        }
        child.push_str(&name);
        let stat_of = |follow: bool| {
            let flags = if follow {
                AtFlags::empty()
            } else {
                AtFlags::SYMLINK_NOFOLLOW
            };
            rustix::fs::statat(&fd, raw, flags).ok()
        };
        match kind {
            FileType::Directory => {
                let os = std::ffi::OsStr::from_bytes(bytes);
                if !is_never_walked(os) {
                    subdirs.push(Job {
                        abs: job.abs.join(os),
                        rel: child,
                        glob: job.glob,
                    });
                }
            }
            FileType::RegularFile if patterns.selects(&child, job.glob) => {
                if let Some(st) = stat_of(false) {
                    out.push(Found {
                        path: child,
                        stat: Stat::of_raw(&st),
                    });
                }
            }
            FileType::Symlink if patterns.selects(&child, job.glob) => {
                if let Some(st) = stat_of(true) {
                    if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile {
                        out.push(Found {
                            path: child,
                            stat: Stat::of_raw(&st),
                        });
                    }
                }
            }
            _ => {}
        }
    });
}

/// Call `f` with the name and type of each entry of the directory `fd`.
/// On Linux the names are read in place from the kernel's buffer
/// (`getdents64`), with no allocation per entry.
#[cfg(target_os = "linux")]
fn each_entry(fd: &rustix::fd::OwnedFd, mut f: impl FnMut(&std::ffi::CStr, rustix::fs::FileType)) {
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 32 * 1024];
    let mut dir = rustix::fs::RawDir::new(fd, &mut buf);
    while let Some(Ok(entry)) = dir.next() {
        f(entry.file_name(), entry.file_type());
    }
}

#[cfg(not(target_os = "linux"))]
fn each_entry(fd: &rustix::fd::OwnedFd, mut f: impl FnMut(&std::ffi::CStr, rustix::fs::FileType)) {
    let Ok(mut dir) = rustix::fs::Dir::read_from(fd) else {
        return;
    };
    while let Some(Ok(entry)) = dir.read() {
        f(entry.file_name(), entry.file_type());
    }
}

/// A relative path as `/`-joined text.
fn slashed(path: &Path) -> String {
    let text = path.to_string_lossy();
    if std::path::MAIN_SEPARATOR == '/' {
        text.into_owned()
    } else {
        text.replace(std::path::MAIN_SEPARATOR, "/")
    }
}

fn is_never_walked(name: &std::ffi::OsStr) -> bool {
    NEVER_WALKED.iter().any(|n| name == *n)
}

/// `path` with `.` and `..` resolved without touching the disk.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Patterns {
        Patterns::new(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn selects(list: &[&str], path: &str) -> bool {
        patterns(list).matches(Path::new(path))
    }

    #[test]
    fn star_stays_within_a_directory() {
        assert!(selects(&["src/*.rs"], "src/main.rs"));
        assert!(!selects(&["src/*.rs"], "src/exec/mod.rs"));
        assert!(!selects(&["*.rs"], "src/main.rs"));
    }

    #[test]
    fn double_star_crosses_directories() {
        assert!(selects(&["src/**/*.rs"], "src/main.rs"));
        assert!(selects(&["src/**/*.rs"], "src/a/b/c.rs"));
        assert!(selects(&["**/*.rs"], "deep/in/here.rs"));
        assert!(!selects(&["src/**/*.rs"], "tests/a.rs"));
    }

    #[test]
    fn excludes_win_over_includes() {
        let list = ["src/**", "!src/gen/**", "!**/*.bak"];
        assert!(selects(&list, "src/a.rs"));
        assert!(!selects(&list, "src/gen/a.rs"));
        assert!(!selects(&list, "src/old.bak"));
        // An excluded directory by its name alone excludes its contents.
        assert!(!selects(&["src/**", "!src/gen"], "src/gen/x/y.rs"));
    }

    #[test]
    fn a_literal_directory_selects_what_is_under_it() {
        assert!(selects(&["assets"], "assets/logo.png"));
        assert!(selects(&["Cargo.toml"], "Cargo.toml"));
        assert!(!selects(&["Cargo.toml"], "Cargo.lock"));
    }

    #[test]
    fn git_and_tasker_directories_are_never_selected() {
        assert!(!selects(&["**"], ".git/HEAD"));
        assert!(!selects(&["**"], "sub/.tasker/x"));
        assert!(selects(&["**"], ".github/ci.yml"));
    }

    #[test]
    fn character_classes_and_alternatives() {
        assert!(selects(&["src/[ab].c"], "src/a.c"));
        assert!(!selects(&["src/[ab].c"], "src/c.c"));
        assert!(selects(&["*.{c,h}"], "x.h"));
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        assert!(check("src/[a").unwrap_err().contains("src/[a"));
        assert!(check("!").is_err());
        assert!(check("src/**/*.rs").is_ok());
    }

    #[test]
    fn bases_are_the_literal_prefixes_without_nesting() {
        let p = patterns(&["src/**/*.rs", "src/gen/*.c", "docs/*.md", "build.rs"]);
        assert_eq!(p.bases, vec![PathBuf::from("docs"), PathBuf::from("src")]);
        assert_eq!(p.literals, vec![PathBuf::from("build.rs")]);
    }

    #[test]
    fn walking_finds_sorted_files_and_skips_git_and_dir_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for f in [
            "src/b.rs",
            "src/a.rs",
            "src/x/c.rs",
            ".git/d.rs",
            "src/gen/e.rs",
        ] {
            std::fs::create_dir_all(root.join(f).parent().unwrap()).unwrap();
            std::fs::write(root.join(f), "x").unwrap();
        }
        // A loop: src/x/loop -> src.
        std::os::unix::fs::symlink(root.join("src"), root.join("src/x/loop")).unwrap();
        std::os::unix::fs::symlink(root.join("src/a.rs"), root.join("src/link.rs")).unwrap();
        let found: Vec<String> = patterns(&["**/*.rs", "!src/gen"])
            .walk(root)
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(found, ["src/a.rs", "src/b.rs", "src/link.rs", "src/x/c.rs"]);
    }

    #[test]
    fn a_walk_over_many_directories_finds_every_file_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut expected = Vec::new();
        for d in 0..40 {
            for f in 0..7 {
                let rel = format!("src/d{d}/sub{}/f{f}.txt", d % 3);
                let path = dir.path().join(&rel);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, "x").unwrap();
                expected.push(rel);
            }
        }
        std::fs::write(dir.path().join("src/top.txt"), "x").unwrap();
        expected.push("src/top.txt".into());
        std::fs::write(dir.path().join("src/d1.txt"), "x").unwrap();
        expected.push("src/d1.txt".into());
        expected.sort();
        let found: Vec<String> = patterns(&["src/**/*.txt", "src/d1.txt"])
            .walk(dir.path())
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(found, expected);
    }

    #[test]
    fn merging_sorted_lists_keeps_the_order() {
        let stat = Stat {
            size: 0,
            mtime: (0, 0),
            ctime: (0, 0),
            inode: 0,
            device: 0,
        };
        let list = |paths: &[&str]| -> Vec<Found> {
            paths
                .iter()
                .map(|p| Found {
                    path: p.to_string(),
                    stat,
                })
                .collect()
        };
        let merged: Vec<String> = merge(vec![
            list(&["a", "c", "e"]),
            list(&[]),
            list(&["b", "d"]),
            list(&["a/b", "f"]),
        ])
        .into_iter()
        .map(|f| f.path)
        .collect();
        assert_eq!(merged, ["a", "a/b", "b", "c", "d", "e", "f"]);
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
